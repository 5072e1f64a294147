/* SPDX-License-Identifier: MIT */
/*
 * arena.h: region allocator. Memory is handed out from chunks and freed all
 * at once (arena_free) or recycled (arena_reset keeps the first chunk).
 * Never freed piece by piece; things that must be closed register a cleanup
 * that runs (last registered first) on reset/free. Not thread-safe: one
 * owner at a time. Snapshots, connections and requests each own one.
 * An arena may be shared by several owners that only read what it holds
 * (snapshots built on an earlier one's compiled routes): arena_ref and
 * arena_unref count them atomically, from any thread; the last unref frees.
 */
#ifndef WG_CORE_ARENA_H
#define WG_CORE_ARENA_H

#include <stddef.h>

struct arena;
typedef void (*arena_cleanup_cb)(void *arg);

/* chunk_size: bytes of the first chunk (0 = 4096). NULL on ENOMEM. */
struct arena *arena_new(size_t chunk_size);
void arena_free(struct arena *a);
/* One more owner; arena_unref drops one and frees with the last (NULL ok). */
void arena_ref(struct arena *a);
void arena_unref(struct arena *a);
void arena_reset(struct arena *a);

/* 16-byte aligned; NULL on ENOMEM. arena_zalloc zeroes. */
void *arena_alloc(struct arena *a, size_t size);
void *arena_zalloc(struct arena *a, size_t size);
/* Copies (NUL-terminated) into the arena; NULL stays NULL. */
char *arena_strdup(struct arena *a, const char *s);
char *arena_strndup(struct arena *a, const char *s, size_t n);
void *arena_memdup(struct arena *a, const void *p, size_t n);
char *arena_printf(struct arena *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* For arrays kept in an arena and grown by doubling: returns v with room
 * for element n (of size bytes), copied into a block of `first` elements,
 * then twice *cap, once all *cap are used. NULL on ENOMEM or overflow. */
void *arena_grow(struct arena *a, void *v, size_t n, size_t *cap, size_t size, size_t first);
/* Registers fn(arg) to run when the arena is reset or freed. -ENOMEM. */
int arena_cleanup_add(struct arena *a, arena_cleanup_cb fn, void *arg);
/* Bytes handed out (for memory accounting). */
size_t arena_used(const struct arena *a);

#endif
