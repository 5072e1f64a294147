/* SPDX-License-Identifier: MIT */
/*
 * Tests of the worker caches' trimming (proxy/proxy.c wpool_*): buffers and
 * request arenas that stay unused for a whole interval are freed down to
 * PX_TRIM_KEEP, the least recently used first; what an interval used is
 * kept; putting a buffer back starts the interval.
 */
#include <stdlib.h>

#include "../check.h"
#include "core/arena.h"
#include "core/loop.h"
#include "proxy/internal.h"

struct fixture {
	struct proxy p;
	struct worker w;
};

static void fixture_init(struct fixture *f)
{
	memset(f, 0, sizeof(*f));
	f->p.buf_size = 1024;
	f->w.p = &f->p;
	f->w.loop = loop_new();
	f->w.cap_free_bufs = 64;
	f->w.free_bufs = calloc(64, sizeof(char *));
}

static void fixture_fini(struct fixture *f)
{
	timer_cancel(f->w.loop, &f->w.trim_timer);
	for (size_t i = 0; i < f->w.n_free_bufs; i++)
		free(f->w.free_bufs[i]);
	free(f->w.free_bufs);
	for (size_t i = 0; i < f->w.n_free_arenas; i++)
		arena_free(f->w.free_arenas[i]);
	loop_free(f->w.loop);
}

TEST(wpool_trims_what_an_interval_left_unused)
{
	struct fixture f;
	fixture_init(&f);
	struct worker *w = &f.w;
	struct buf b[20] = {{0}};

	for (int i = 0; i < 20; i++)
		CHECK_EQ_INT(wbuf_get(w, &b[i]), 0);
	CHECK(!timer_is_armed(&w->trim_timer));
	for (int i = 0; i < 20; i++)
		wbuf_put(w, &b[i]);
	CHECK(timer_is_armed(&w->trim_timer)); /* the first put started an interval */
	CHECK_EQ_INT(w->n_free_bufs, 20);
	/* the interval began with one free buffer: nothing stayed unused */
	CHECK_EQ_INT(wpool_trim(w), 0);
	CHECK_EQ_INT(w->n_free_bufs, 20);

	/* an interval that used 5 at most: 15 idle, 7 of them above the floor */
	char *used[5];
	for (int i = 0; i < 5; i++) {
		CHECK_EQ_INT(wbuf_get(w, &b[i]), 0);
		used[i] = b[i].data;
	}
	for (int i = 0; i < 5; i++)
		wbuf_put(w, &b[i]);
	CHECK_EQ_INT(wpool_trim(w), 7);
	CHECK_EQ_INT(w->n_free_bufs, 13);
	/* the ones in use lately are kept (they may still be in the cache) */
	for (int i = 0; i < 5; i++) {
		bool kept = false;
		for (size_t k = 0; k < w->n_free_bufs; k++)
			kept |= w->free_bufs[k] == used[i];
		CHECK(kept);
	}

	/* an interval without traffic: down to the floor, then nothing */
	CHECK_EQ_INT(wpool_trim(w), 13 - PX_TRIM_KEEP);
	CHECK_EQ_INT(w->n_free_bufs, PX_TRIM_KEEP);
	CHECK_EQ_INT(wpool_trim(w), 0);

	/* request arenas follow the same rule */
	for (int i = 0; i < 12; i++)
		w->free_arenas[w->n_free_arenas++] = arena_new(1024);
	w->low_free_arenas = 12;
	CHECK_EQ_INT(wpool_trim(w), 12 - PX_TRIM_KEEP);
	CHECK_EQ_INT(w->n_free_arenas, PX_TRIM_KEEP);
	fixture_fini(&f);
}
