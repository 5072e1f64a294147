/* SPDX-License-Identifier: MIT */
/*
 * buf.h: byte buffer with a read and a write offset. States:
 *   empty:   data == NULL or head == tail (all-zero is a valid empty buffer)
 *   holding: data[head..tail) are unread bytes; [tail..cap) is free space.
 * buf_compact() moves unread bytes to the front: any view into the buffer
 * (pointers returned by buf_rptr or by a parser) is invalid after it, after
 * buf_reserve() and after buf_release().
 */
#ifndef WG_CORE_BUF_H
#define WG_CORE_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

struct buf {
	char *data;
	size_t cap;
	size_t head; /* first unread byte */
	size_t tail; /* one past the last written byte */
};

static inline size_t buf_len(const struct buf *b) { return b->tail - b->head; }
static inline bool buf_is_empty(const struct buf *b) { return b->tail == b->head; }
static inline char *buf_rptr(const struct buf *b) { return b->data + b->head; }
static inline char *buf_wptr(const struct buf *b) { return b->data + b->tail; }
static inline size_t buf_room(const struct buf *b) { return b->cap - b->tail; }
static inline void buf_consume(struct buf *b, size_t n)
{
	b->head += n;
	if (b->head == b->tail)
		b->head = b->tail = 0;
}
static inline void buf_commit(struct buf *b, size_t n) { b->tail += n; }

/* Ensures at least n bytes of free space at the tail, compacting first and
 * growing (realloc) if needed, never beyond max (0 = no limit).
 * Returns 0, -ENOMEM, or WG_ELIMIT-negated when max would be exceeded. */
int buf_reserve(struct buf *b, size_t n, size_t max);
void buf_compact(struct buf *b);
/* Appends bytes (reserving as needed, no limit). 0 or -ENOMEM. */
int buf_append(struct buf *b, const void *p, size_t n);
int buf_appendf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static inline int buf_append_str(struct buf *b, const char *s) { return buf_append(b, s, strlen(s)); }
/* Frees the storage; the buffer is empty and reusable afterwards. */
void buf_release(struct buf *b);

#endif
