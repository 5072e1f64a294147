/* SPDX-License-Identifier: MIT */
/* Tests of core/loop.c: timer order, cancel, fd readiness, defer, wake. */
#include <pthread.h>
#include <unistd.h>

#include "../check.h"
#include "core/loop.h"

static struct loop *tl;
static int order[8];
static int n_order;

static void on_timer(struct timer *t)
{
	order[n_order++] = (int)(intptr_t)t->arg;
	if (n_order == 3)
		loop_stop(tl);
}

TEST(loop_timers_fire_in_due_order_and_cancel_works)
{
	struct timer t1 = {0}, t2 = {0}, t3 = {0}, t4 = {0};
	tl = loop_new();
	n_order = 0;
	timer_add(tl, &t1, 30, on_timer, (void *)(intptr_t)3);
	timer_add(tl, &t2, 10, on_timer, (void *)(intptr_t)1);
	timer_add(tl, &t4, 15, on_timer, (void *)(intptr_t)9);
	timer_add(tl, &t3, 20, on_timer, (void *)(intptr_t)2);
	timer_cancel(tl, &t4);
	CHECK(!timer_is_armed(&t4));
	loop_run(tl);
	CHECK_EQ_INT(n_order, 3);
	CHECK_EQ_INT(order[0], 1);
	CHECK_EQ_INT(order[1], 2);
	CHECK_EQ_INT(order[2], 3);
	loop_free(tl);
}

static int got_read;
static void on_readable(struct loop_io *io, uint32_t ev)
{
	char c;
	if ((ev & LOOP_READ) && read(io->fd, &c, 1) == 1 && c == 'x')
		got_read++;
	loop_io_del(tl, io);
	loop_stop(tl);
}

static void on_deferred(void *arg)
{
	int *fd = arg;
	ssize_t w = write(*fd, "x", 1);
	(void)w;
}

TEST(loop_io_readiness_and_defer)
{
	int p[2];
	struct loop_io io;
	CHECK_EQ_INT(pipe(p), 0);
	tl = loop_new();
	got_read = 0;
	CHECK_EQ_INT(loop_io_add(tl, &io, p[0], LOOP_READ, on_readable, NULL), 0);
	loop_defer(tl, on_deferred, &p[1]);
	loop_run(tl);
	CHECK_EQ_INT(got_read, 1);
	loop_free(tl);
	close(p[0]);
	close(p[1]);
}

static int woken;
static void on_wake_cb(struct loop *l, void *arg)
{
	(void)arg;
	woken++;
	loop_stop(l);
}

static void *waker(void *arg)
{
	usleep(10000);
	loop_wake(arg);
	return NULL;
}

TEST(loop_wake_from_another_thread)
{
	pthread_t th;
	tl = loop_new();
	woken = 0;
	CHECK_EQ_INT(loop_set_wake(tl, on_wake_cb, NULL), 0);
	pthread_create(&th, NULL, waker, tl);
	loop_run(tl);
	pthread_join(th, NULL);
	CHECK_EQ_INT(woken, 1);
	loop_free(tl);
}

TEST(loop_wake_before_set_wake_is_not_lost)
{
	tl = loop_new();
	woken = 0;
	loop_wake(tl); /* before anyone listens */
	CHECK_EQ_INT(loop_set_wake(tl, on_wake_cb, NULL), 0);
	loop_run(tl); /* stops in on_wake_cb */
	CHECK_EQ_INT(woken, 1);
	loop_free(tl);
}

TEST(loop_stop_before_run_returns_at_once_and_loop_runs_again)
{
	struct timer t = {0};
	tl = loop_new();
	loop_stop(tl);
	CHECK_EQ_INT(loop_run(tl), 0); /* returns at once */
	n_order = 0;
	timer_add(tl, &t, 1, on_timer, (void *)(intptr_t)5);
	n_order = 2; /* the third timer call stops the loop */
	loop_run(tl);
	CHECK_EQ_INT(n_order, 3);
	CHECK_EQ_INT(order[2], 5);
	loop_free(tl);
}
