/* SPDX-License-Identifier: MIT */
/* Tests of core/arena.c: alignment, big blocks, cleanups, reset. */
#include <stdint.h>

#include "../check.h"
#include "core/arena.h"

static int cleanup_calls;
static void count_cleanup(void *arg) { cleanup_calls += *(int *)arg; }

TEST(arena_allocations_are_aligned_and_distinct)
{
	struct arena *a = arena_new(256);
	char *p = arena_alloc(a, 3), *q = arena_alloc(a, 5);
	CHECK(p && q && p != q);
	CHECK_EQ_INT((uintptr_t)p % 16, 0);
	CHECK_EQ_INT((uintptr_t)q % 16, 0);
	/* more than a chunk: a block of its own */
	char *big = arena_alloc(a, 10000);
	CHECK(big != NULL);
	memset(big, 1, 10000);
	CHECK_EQ_STR(arena_strdup(a, "hello"), "hello");
	CHECK_EQ_STR(arena_printf(a, "%d-%s", 7, "x"), "7-x");
	CHECK(arena_strdup(a, NULL) == NULL);
	arena_free(a);
}

TEST(arena_cleanups_run_on_reset_and_free)
{
	struct arena *a = arena_new(0);
	int one = 1, ten = 10;
	cleanup_calls = 0;
	arena_cleanup_add(a, count_cleanup, &one);
	arena_reset(a);
	CHECK_EQ_INT(cleanup_calls, 1);
	CHECK_EQ_INT(arena_used(a), 0);
	for (int i = 0; i < 1000; i++)
		CHECK(arena_alloc(a, 100) != NULL);
	arena_cleanup_add(a, count_cleanup, &ten);
	arena_free(a);
	CHECK_EQ_INT(cleanup_calls, 11);
}

/* An arena array keeps its elements across growth and grows only when full. */
TEST(arena_grow_keeps_elements_and_doubles)
{
	struct arena *a = arena_new(0);
	int *v = NULL;
	size_t cap = 0;

	for (int i = 0; i < 1000; i++) {
		int *before = v;
		size_t cap_before = cap;

		v = arena_grow(a, v, (size_t)i, &cap, sizeof(*v), 4);
		CHECK(v != NULL);
		if ((size_t)i < cap_before)
			CHECK(v == before);
		else
			CHECK_EQ_INT(cap, cap_before ? 2 * cap_before : 4);
		v[i] = i * 7;
	}
	for (int i = 0; i < 1000; i++)
		CHECK_EQ_INT(v[i], i * 7);
	/* a size whose doubling overflows is refused, not wrapped */
	size_t huge = SIZE_MAX / 2;
	CHECK(arena_grow(a, v, huge, &huge, 4, 4) == NULL);
	arena_free(a);
}
