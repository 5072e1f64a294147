/* SPDX-License-Identifier: MIT */
/* Tests of core/bigblock.c: what is kept, for whom, and when it goes. */
#include <string.h>

#include "../check.h"
#include "core/arena.h"
#include "core/bigblock.h"

#ifdef __SANITIZE_ADDRESS__
#define UNDER_ASAN 1
#else
#define UNDER_ASAN 0
#endif

/* Under AddressSanitizer every free goes back, so that it checks later
 * uses: nothing is kept even when asked (the other tests need keeping). */
TEST(bigblock_keeps_nothing_under_asan)
{
	size_t got = 0;
	void *p;

	bigblock_keep(true);
	p = bigblock_alloc(BIGBLOCK_MIN, &got);
	CHECK(p != NULL);
	bigblock_free(p, got);
	CHECK_EQ_INT(bigblock_kept(), UNDER_ASAN ? 0 : BIGBLOCK_MIN);
	bigblock_keep(false);
	CHECK_EQ_INT(bigblock_kept(), 0);
}

TEST(bigblock_keeps_only_while_keeping)
{
	size_t got = 0, got2 = 0;
	void *p;

	if (UNDER_ASAN)
		return;
	bigblock_keep(false);
	p = bigblock_alloc(BIGBLOCK_MIN, &got);
	CHECK(p != NULL);
	CHECK_EQ_INT(got, BIGBLOCK_MIN);
	bigblock_free(p, got);
	CHECK_EQ_INT(bigblock_kept(), 0); /* off: straight back */

	bigblock_keep(true);
	p = bigblock_alloc(2 * BIGBLOCK_MIN, &got);
	CHECK(p != NULL);
	memset(p, 7, got);
	bigblock_free(p, got);
	CHECK_EQ_INT(bigblock_kept(), 2 * BIGBLOCK_MIN);
	/* a request of more than half of it takes it, whole */
	void *q = bigblock_alloc(BIGBLOCK_MIN + 1, &got2);
	CHECK(q == p);
	CHECK_EQ_INT(got2, 2 * BIGBLOCK_MIN);
	CHECK_EQ_INT(bigblock_kept(), 0);
	bigblock_free(q, got2);
	/* a small request does not take a block twice its size */
	void *r = bigblock_alloc(BIGBLOCK_MIN / 2, &got);
	CHECK(r != q);
	CHECK_EQ_INT(got, BIGBLOCK_MIN / 2);
	CHECK_EQ_INT(bigblock_kept(), 2 * BIGBLOCK_MIN);
	bigblock_free(r, got); /* under the minimum: never kept */
	CHECK_EQ_INT(bigblock_kept(), 2 * BIGBLOCK_MIN);
	bigblock_keep(false);
	CHECK_EQ_INT(bigblock_kept(), 0);
}

TEST(bigblock_keeps_at_most_its_bound)
{
	enum { N = 4 };
	size_t size = BIGBLOCK_KEEP_BYTES / 3, got[N];
	void *v[N];

	if (UNDER_ASAN)
		return;
	bigblock_keep(true);
	for (int i = 0; i < N; i++) {
		v[i] = bigblock_alloc(size, &got[i]);
		CHECK(v[i] != NULL);
	}
	for (int i = 0; i < N; i++)
		bigblock_free(v[i], got[i]);
	CHECK(bigblock_kept() <= BIGBLOCK_KEEP_BYTES);
	CHECK_EQ_INT(bigblock_kept(), 3 * size);
	bigblock_keep(false);
}

/* An arena's big chunks go through the cache: freeing one arena and
 * building the next reuses the memory. */
TEST(bigblock_serves_arena_chunks)
{
	if (UNDER_ASAN)
		return;
	bigblock_keep(true);
	struct arena *a = arena_new(16384);
	char *big = arena_alloc(a, 3 * BIGBLOCK_MIN);
	CHECK(big != NULL);
	memset(big, 1, 3 * BIGBLOCK_MIN);
	arena_free(a);
	CHECK(bigblock_kept() >= 3 * BIGBLOCK_MIN);
	a = arena_new(16384);
	char *again = arena_zalloc(a, 3 * BIGBLOCK_MIN);
	CHECK(again == big);
	CHECK(again[0] == 0 && again[3 * BIGBLOCK_MIN - 1] == 0); /* zeroed */
	CHECK_EQ_INT(bigblock_kept(), 0);
	arena_free(a);
	bigblock_keep(false);
}
