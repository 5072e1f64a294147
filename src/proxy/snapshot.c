/* SPDX-License-Identifier: MIT */
/*
 * snapshot.c: the refcount of a published snapshot. Any thread may drop a
 * reference; the last one frees the arena that holds its bytes and drops
 * its share of the arena it borrows from.
 */
#include "proxy/snapshot.h"
#include "core/arena.h"

void snap_ref(struct snapshot *s)
{
	__atomic_add_fetch(&s->refs, 1, __ATOMIC_RELAXED);
}

void snap_unref(struct snapshot *s)
{
	if (!s)
		return;
	if (__atomic_sub_fetch(&s->refs, 1, __ATOMIC_ACQ_REL) == 0) {
		struct arena *shared = s->shared;
		arena_unref(s->arena); /* holds s itself */
		arena_unref(shared);
	}
}
