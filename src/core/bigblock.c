/* SPDX-License-Identifier: MIT */
/*
 * bigblock.c: the large-block cache (bigblock.h). A handful of slots; a
 * request takes the smallest kept block that fits without wasting more
 * than its own size again, else a fresh one from malloc.
 */
#include <pthread.h>
#include <stdlib.h>

#include "core/bigblock.h"

#define SLOTS 16

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
	void *p;
	size_t size;
} kept[SLOTS];
static size_t n_kept, kept_bytes;
static bool keeping;

void *bigblock_alloc(size_t size, size_t *got)
{
	size_t best = SLOTS;
	void *p = NULL;

	pthread_mutex_lock(&lock);
	for (size_t i = 0; i < n_kept; i++)
		if (kept[i].size >= size && kept[i].size / 2 <= size &&
		    (best == SLOTS || kept[i].size < kept[best].size))
			best = i;
	if (best < SLOTS) {
		p = kept[best].p;
		*got = kept[best].size;
		kept_bytes -= kept[best].size;
		kept[best] = kept[--n_kept];
	}
	pthread_mutex_unlock(&lock);
	if (p)
		return p;
	p = malloc(size);
	*got = size;
	return p;
}

void bigblock_free(void *p, size_t size)
{
	if (!p)
		return;
	pthread_mutex_lock(&lock);
	if (keeping && size >= BIGBLOCK_MIN && n_kept < SLOTS &&
	    kept_bytes + size <= BIGBLOCK_KEEP_BYTES) {
		kept[n_kept].p = p;
		kept[n_kept].size = size;
		n_kept++;
		kept_bytes += size;
		p = NULL;
	}
	pthread_mutex_unlock(&lock);
	free(p);
}

void bigblock_keep(bool on)
{
	void *v[SLOTS];
	size_t n;

#ifdef __SANITIZE_ADDRESS__
	on = false; /* every free reaches AddressSanitizer, which checks later uses */
#endif
	pthread_mutex_lock(&lock);
	keeping = on;
	n = on ? 0 : n_kept;
	for (size_t i = 0; i < n; i++)
		v[i] = kept[i].p;
	if (!on) {
		n_kept = 0;
		kept_bytes = 0;
	}
	pthread_mutex_unlock(&lock);
	for (size_t i = 0; i < n; i++)
		free(v[i]);
}

size_t bigblock_kept(void)
{
	size_t n;

	pthread_mutex_lock(&lock);
	n = kept_bytes;
	pthread_mutex_unlock(&lock);
	return n;
}
