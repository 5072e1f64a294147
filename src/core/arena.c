/* SPDX-License-Identifier: MIT */
/*
 * arena.c: region allocator (see arena.h). Chunks are linked; requests
 * larger than a quarter of the chunk size get a chunk of their own so big
 * objects do not waste the tail of a shared chunk. Not thread-safe.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/bigblock.h"

#define ARENA_ALIGN 16

struct chunk {
	struct chunk *next;
	size_t size; /* usable bytes after the header */
	size_t used;
	_Alignas(ARENA_ALIGN) unsigned char data[];
};

struct cleanup {
	struct cleanup *next;
	arena_cleanup_cb fn;
	void *arg;
};

struct arena {
	struct chunk *head; /* current chunk first */
	struct chunk *first; /* the one kept by reset */
	struct cleanup *cleanups;
	size_t chunk_size;
	size_t used;
	unsigned refs; /* owners, atomic; arena_new's caller is the first */
};

/* Large chunks come from (and go back to) the big-block cache: snapshots
 * and routing tables are rebuilt at every route change. */
static struct chunk *chunk_new(size_t size)
{
	size_t total = sizeof(struct chunk) + size;
	struct chunk *c;

	if (total < size)
		return NULL;
	if (total >= BIGBLOCK_MIN) {
		c = bigblock_alloc(total, &total);
		size = total - sizeof(*c);
	} else {
		c = malloc(total);
	}
	if (!c)
		return NULL;
	c->next = NULL;
	c->size = size;
	c->used = 0;
	return c;
}

static void chunk_free(struct chunk *c)
{
	size_t total = sizeof(*c) + c->size;

	if (total >= BIGBLOCK_MIN)
		bigblock_free(c, total);
	else
		free(c);
}

struct arena *arena_new(size_t chunk_size)
{
	struct arena *a = calloc(1, sizeof(*a));
	if (!a)
		return NULL;
	a->chunk_size = chunk_size ? chunk_size : 4096;
	a->refs = 1;
	a->first = a->head = chunk_new(a->chunk_size);
	if (!a->head) {
		free(a);
		return NULL;
	}
	return a;
}

static void run_cleanups(struct arena *a)
{
	while (a->cleanups) {
		struct cleanup *c = a->cleanups;
		a->cleanups = c->next;
		c->fn(c->arg);
	}
}

void arena_reset(struct arena *a)
{
	run_cleanups(a);
	struct chunk *c = a->head;
	while (c) {
		struct chunk *next = c->next;
		if (c != a->first)
			chunk_free(c);
		c = next;
	}
	a->head = a->first;
	a->first->next = NULL;
	a->first->used = 0;
	a->used = 0;
}

void arena_free(struct arena *a)
{
	if (!a)
		return;
	run_cleanups(a);
	struct chunk *c = a->head;
	while (c) {
		struct chunk *next = c->next;
		chunk_free(c);
		c = next;
	}
	free(a);
}

void arena_ref(struct arena *a)
{
	__atomic_add_fetch(&a->refs, 1, __ATOMIC_RELAXED);
}

void arena_unref(struct arena *a)
{
	if (a && __atomic_sub_fetch(&a->refs, 1, __ATOMIC_ACQ_REL) == 0)
		arena_free(a);
}

void *arena_alloc(struct arena *a, size_t size)
{
	size_t need = (size + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
	struct chunk *c = a->head;

	if (need < size)
		return NULL;
	if (c->size - c->used < need) {
		if (need > a->chunk_size / 4) {
			/* Big block: its own chunk, linked behind the current
			 * one so the current chunk's free tail stays usable. */
			struct chunk *big = chunk_new(need);
			if (!big)
				return NULL;
			big->used = need;
			big->next = c->next;
			c->next = big;
			a->used += need;
			return big->data;
		}
		c = chunk_new(a->chunk_size);
		if (!c)
			return NULL;
		c->next = a->head;
		a->head = c;
	}
	void *p = c->data + c->used;
	c->used += need;
	a->used += need;
	return p;
}

void *arena_zalloc(struct arena *a, size_t size)
{
	void *p = arena_alloc(a, size);
	if (p)
		memset(p, 0, size);
	return p;
}

char *arena_strndup(struct arena *a, const char *s, size_t n)
{
	if (!s)
		return NULL;
	char *p = arena_alloc(a, n + 1);
	if (!p)
		return NULL;
	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

char *arena_strdup(struct arena *a, const char *s)
{
	return s ? arena_strndup(a, s, strlen(s)) : NULL;
}

void *arena_memdup(struct arena *a, const void *p, size_t n)
{
	void *q = arena_alloc(a, n ? n : 1);
	if (q && n)
		memcpy(q, p, n);
	return q;
}

void *arena_grow(struct arena *a, void *v, size_t n, size_t *cap, size_t size, size_t first)
{
	size_t ncap;
	void *nv;

	if (n < *cap)
		return v;
	ncap = *cap ? *cap * 2 : first;
	if (ncap <= n || ncap > SIZE_MAX / size)
		return NULL;
	nv = arena_alloc(a, ncap * size);
	if (!nv)
		return NULL;
	if (n)
		memcpy(nv, v, n * size);
	*cap = ncap;
	return nv;
}

char *arena_printf(struct arena *a, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return NULL;
	char *p = arena_alloc(a, (size_t)n + 1);
	if (!p)
		return NULL;
	va_start(ap, fmt);
	vsnprintf(p, (size_t)n + 1, fmt, ap);
	va_end(ap);
	return p;
}

int arena_cleanup_add(struct arena *a, arena_cleanup_cb fn, void *arg)
{
	struct cleanup *c = arena_alloc(a, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->fn = fn;
	c->arg = arg;
	c->next = a->cleanups;
	a->cleanups = c;
	return 0;
}

size_t arena_used(const struct arena *a) { return a->used; }
