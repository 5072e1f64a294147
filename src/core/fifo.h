/* SPDX-License-Identifier: MIT */
/*
 * fifo.h: an intrusive singly linked queue. An element embeds a struct
 * fifo_link and is on at most one queue at a time; fifo_entry() gets the
 * element back from its link. An all-zero struct fifo is an empty queue.
 */
#ifndef WG_CORE_FIFO_H
#define WG_CORE_FIFO_H

#include <stdbool.h>
#include <stddef.h>

struct fifo_link {
	struct fifo_link *next;
};

struct fifo {
	struct fifo_link *head, *tail;
};

#define fifo_entry(link, type, member) \
	((type *)(void *)((char *)(link) - offsetof(type, member)))

static inline bool fifo_is_empty(const struct fifo *q) { return !q->head; }

/* Adds l at the back, or at the front when front is true (a retry that
 * must go first). */
static inline void fifo_push(struct fifo *q, struct fifo_link *l, bool front)
{
	if (front) {
		l->next = q->head;
		q->head = l;
		if (!q->tail)
			q->tail = l;
		return;
	}
	l->next = NULL;
	if (q->tail)
		q->tail->next = l;
	else
		q->head = l;
	q->tail = l;
}

/* Removes and returns the front link, or NULL when the queue is empty. */
static inline struct fifo_link *fifo_pop(struct fifo *q)
{
	struct fifo_link *l = q->head;

	if (!l)
		return NULL;
	q->head = l->next;
	if (!q->head)
		q->tail = NULL;
	l->next = NULL;
	return l;
}

#endif
