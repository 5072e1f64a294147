/* SPDX-License-Identifier: MIT */
/*
 * Tests of the idle connection pools of proxy/upstream.c (up_pool_*), the
 * one piece conn.c and upx.c pool their connections with: the most
 * recently pooled connection made under the asked TLS context is taken,
 * others stay; a full pool or a draining worker keeps nothing; the idle
 * deadline takes a connection out and closes it; a connection that closed
 * while idle leaves the pool; close_all closes every one.
 */
#include <stdlib.h>

#include "../check.h"
#include "core/loop.h"
#include "proxy/internal.h"

static int n_closed;

static void on_close(struct up_idle *n)
{
	n_closed++;
	n->close = NULL; /* closed twice would show as a NULL call */
}

static struct up_idle *mk(struct up_idle *n, struct tls_client *tc)
{
	memset(n, 0, sizeof(*n));
	n->tls_ctx = tc;
	n->close = on_close;
	return n;
}

TEST(up_pool_takes_the_newest_under_the_same_tls_context)
{
	struct worker w = {0};
	struct up_pool p = {0};
	struct up_idle a, b, c;
	struct tls_client *tc = (struct tls_client *)&w; /* any address names a context */
	w.loop = loop_new();

	CHECK(up_pool_put(&w, &p, mk(&a, NULL)));
	CHECK(up_pool_put(&w, &p, mk(&b, tc)));
	CHECK(up_pool_put(&w, &p, mk(&c, NULL)));
	CHECK_EQ_INT(p.n, 3);
	CHECK(timer_is_armed(&a.timer));
	CHECK(up_pool_take(&w, &p, NULL) == &c); /* LIFO */
	CHECK(!timer_is_armed(&c.timer) && c.pool == NULL);
	CHECK(up_pool_take(&w, &p, tc) == &b);
	CHECK(up_pool_take(&w, &p, tc) == NULL); /* a plain one is no TLS one */
	CHECK(up_pool_take(&w, &p, NULL) == &a);
	CHECK(up_pool_take(&w, &p, NULL) == NULL);
	CHECK_EQ_INT(p.n, 0);
	CHECK_EQ_INT(n_closed, 0);
	loop_free(w.loop);
}

TEST(up_pool_keeps_nothing_when_full_or_draining)
{
	struct worker w = {0};
	struct up_pool p = {0};
	struct up_idle *v = calloc(PX_UP_IDLE_MAX + 1, sizeof(*v));
	w.loop = loop_new();

	for (int i = 0; i < PX_UP_IDLE_MAX; i++)
		CHECK(up_pool_put(&w, &p, mk(&v[i], NULL)));
	CHECK(!up_pool_put(&w, &p, mk(&v[PX_UP_IDLE_MAX], NULL)));
	CHECK(!timer_is_armed(&v[PX_UP_IDLE_MAX].timer));
	CHECK(up_pool_take(&w, &p, NULL) == &v[PX_UP_IDLE_MAX - 1]);
	w.draining = true;
	CHECK(!up_pool_put(&w, &p, mk(&v[PX_UP_IDLE_MAX], NULL)));
	CHECK_EQ_INT(p.n, PX_UP_IDLE_MAX - 1);
	n_closed = 0;
	up_pool_close_all(&w, &p);
	CHECK_EQ_INT(n_closed, PX_UP_IDLE_MAX - 1);
	CHECK(p.head == NULL && p.n == 0);
	CHECK(!timer_is_armed(&v[0].timer));
	free(v);
	loop_free(w.loop);
}

TEST(up_pool_deadline_and_remove_take_one_out)
{
	struct worker w = {0};
	struct up_pool p = {0};
	struct up_idle a, b, c;
	w.loop = loop_new();

	up_pool_put(&w, &p, mk(&a, NULL));
	up_pool_put(&w, &p, mk(&b, NULL));
	up_pool_put(&w, &p, mk(&c, NULL));
	/* b's idle deadline passes: out of the pool, then closed */
	n_closed = 0;
	timer_cancel(w.loop, &b.timer);
	b.timer.cb(&b.timer);
	CHECK_EQ_INT(n_closed, 1);
	CHECK_EQ_INT(p.n, 2);
	CHECK(b.pool == NULL);
	/* a closes while idle: its owner takes it out (twice is harmless) */
	up_pool_remove(&w, &a);
	up_pool_remove(&w, &a);
	CHECK(!timer_is_armed(&a.timer));
	CHECK_EQ_INT(p.n, 1);
	CHECK(p.head == &c && c.next == NULL);
	CHECK(up_pool_take(&w, &p, NULL) == &c);
	CHECK_EQ_INT(n_closed, 1);
	loop_free(w.loop);
}
