/* SPDX-License-Identifier: MIT */
/*
 * buf.c: growable byte buffers (see buf.h). Growth doubles, starting at
 * 4 KiB, and never passes the caller's limit. Not thread-safe.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/buf.h"
#include "core/err.h"

void buf_compact(struct buf *b)
{
	if (b->head == 0)
		return;
	size_t n = buf_len(b);
	if (n)
		memmove(b->data, b->data + b->head, n);
	b->head = 0;
	b->tail = n;
}

int buf_reserve(struct buf *b, size_t n, size_t max)
{
	if (buf_room(b) >= n)
		return 0;
	buf_compact(b);
	if (buf_room(b) >= n)
		return 0;
	size_t need = b->tail + n;
	if (max && need > max)
		return -WG_ELIMIT;
	size_t cap = b->cap ? b->cap : 4096;
	while (cap < need)
		cap *= 2;
	if (max && cap > max)
		cap = max;
	char *p = realloc(b->data, cap);
	if (!p)
		return -ENOMEM;
	b->data = p;
	b->cap = cap;
	return 0;
}

int buf_append(struct buf *b, const void *p, size_t n)
{
	int r = buf_reserve(b, n, 0);
	if (r)
		return r;
	memcpy(b->data + b->tail, p, n);
	b->tail += n;
	return 0;
}

int buf_appendf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return -EINVAL;
	int r = buf_reserve(b, (size_t)n + 1, 0);
	if (r)
		return r;
	va_start(ap, fmt);
	vsnprintf(b->data + b->tail, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->tail += (size_t)n;
	return 0;
}

void buf_release(struct buf *b)
{
	free(b->data);
	memset(b, 0, sizeof(*b));
}
