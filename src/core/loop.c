/* SPDX-License-Identifier: MIT */
/*
 * loop.c: the per-thread event loop (see loop.h): epoll in level-triggered
 * mode, a binary min-heap of timers, a queue of deferred calls and an
 * eventfd for cross-thread wake-ups. One iteration: run deferred calls, wait
 * for the nearest timer or an fd, dispatch fds, fire due timers.
 * A callback may add, modify or delete any io or timer, including its own;
 * an io deleted during dispatch is not called again in that iteration.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "core/loop.h"

#define MAX_EVENTS 256

struct deferred {
	loop_defer_cb fn;
	void *arg;
};

struct loop {
	int epfd;
	bool stop;
	uint64_t now_ms;
	struct timer **heap;
	size_t n_timers, cap_timers;
	struct deferred *defer, *defer_run;
	size_t n_defer, cap_defer, cap_defer_run;
	/* ios deleted while dispatching: their pending events are skipped */
	struct loop_io *deleted[MAX_EVENTS];
	size_t n_deleted;
	bool deleted_overflow; /* stop dispatching: level-triggered events come back */
	bool dispatching;
	int wake_fd;
	struct loop_io wake_io;
	loop_wake_cb wake_cb;
	void *wake_arg;
};

uint64_t clock_mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

uint64_t clock_wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

struct loop *loop_new(void)
{
	struct loop *l = calloc(1, sizeof(*l));
	if (!l)
		return NULL;
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (l->epfd == -1) {
		free(l);
		return NULL;
	}
	/* The eventfd exists from the start so that a loop_wake() from another
	 * thread before loop_set_wake() is not lost: the count waits in it. */
	l->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (l->wake_fd == -1) {
		close(l->epfd);
		free(l);
		return NULL;
	}
	l->wake_io.fd = -1;
	l->now_ms = clock_mono_ms();
	return l;
}

void loop_free(struct loop *l)
{
	if (!l)
		return;
	close(l->wake_fd);
	close(l->epfd);
	free(l->heap);
	free(l->defer);
	free(l->defer_run);
	free(l);
}

static uint32_t to_epoll(uint32_t ev)
{
	uint32_t e = 0;
	if (ev & LOOP_READ)
		e |= EPOLLIN | EPOLLRDHUP;
	if (ev & LOOP_WRITE)
		e |= EPOLLOUT;
	return e;
}

int loop_io_add(struct loop *l, struct loop_io *io, int fd, uint32_t events, loop_io_cb cb,
		void *arg)
{
	struct epoll_event ev = {.events = to_epoll(events), .data.ptr = io};

	io->fd = fd;
	io->events = events;
	io->cb = cb;
	io->arg = arg;
	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) == -1)
		return -errno;
	/* An io re-added at the same address during dispatch must be live. */
	for (size_t i = 0; i < l->n_deleted; i++)
		if (l->deleted[i] == io)
			l->deleted[i] = NULL;
	return 0;
}

int loop_io_mod(struct loop *l, struct loop_io *io, uint32_t events)
{
	struct epoll_event ev = {.events = to_epoll(events), .data.ptr = io};

	if (io->events == events)
		return 0;
	if (epoll_ctl(l->epfd, EPOLL_CTL_MOD, io->fd, &ev) == -1)
		return -errno;
	io->events = events;
	return 0;
}

void loop_io_del(struct loop *l, struct loop_io *io)
{
	if (io->fd < 0)
		return;
	epoll_ctl(l->epfd, EPOLL_CTL_DEL, io->fd, NULL);
	io->fd = -1;
	io->events = 0;
	if (l->dispatching) {
		if (l->n_deleted < MAX_EVENTS)
			l->deleted[l->n_deleted++] = io;
		else
			l->deleted_overflow = true;
	}
}

/* ---- timers: a binary min-heap on due_ms; heap_idx is index + 1 ---- */

static void heap_set(struct loop *l, size_t i, struct timer *t)
{
	l->heap[i] = t;
	t->heap_idx = i + 1;
}

static void heap_up(struct loop *l, size_t i)
{
	struct timer *t = l->heap[i];
	while (i > 0) {
		size_t parent = (i - 1) / 2;
		if (l->heap[parent]->due_ms <= t->due_ms)
			break;
		heap_set(l, i, l->heap[parent]);
		i = parent;
	}
	heap_set(l, i, t);
}

static void heap_down(struct loop *l, size_t i)
{
	struct timer *t = l->heap[i];
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= l->n_timers)
			break;
		if (c + 1 < l->n_timers && l->heap[c + 1]->due_ms < l->heap[c]->due_ms)
			c++;
		if (t->due_ms <= l->heap[c]->due_ms)
			break;
		heap_set(l, i, l->heap[c]);
		i = c;
	}
	heap_set(l, i, t);
}

void timer_cancel(struct loop *l, struct timer *t)
{
	if (!t->heap_idx)
		return;
	size_t i = t->heap_idx - 1;
	t->heap_idx = 0;
	l->n_timers--;
	if (i == l->n_timers)
		return;
	heap_set(l, i, l->heap[l->n_timers]);
	heap_down(l, i);
	heap_up(l, l->heap[i]->heap_idx - 1);
}

int timer_add(struct loop *l, struct timer *t, uint64_t delay_ms, timer_cb cb, void *arg)
{
	timer_cancel(l, t);
	if (l->n_timers == l->cap_timers) {
		size_t cap = l->cap_timers ? l->cap_timers * 2 : 64;
		struct timer **h = realloc(l->heap, cap * sizeof(*h));
		if (!h)
			return -ENOMEM;
		l->heap = h;
		l->cap_timers = cap;
	}
	t->due_ms = l->now_ms + delay_ms;
	t->cb = cb;
	t->arg = arg;
	l->heap[l->n_timers] = t;
	t->heap_idx = ++l->n_timers;
	heap_up(l, l->n_timers - 1);
	return 0;
}

/* ---- deferred calls and wake-ups ---- */

int loop_defer(struct loop *l, loop_defer_cb fn, void *arg)
{
	if (l->n_defer == l->cap_defer) {
		size_t cap = l->cap_defer ? l->cap_defer * 2 : 16;
		struct deferred *d = realloc(l->defer, cap * sizeof(*d));
		if (!d)
			return -ENOMEM;
		l->defer = d;
		l->cap_defer = cap;
	}
	l->defer[l->n_defer++] = (struct deferred){fn, arg};
	return 0;
}

static void run_deferred(struct loop *l)
{
	while (l->n_defer) {
		/* Swap queues so calls deferred now run in the next round. */
		struct deferred *run = l->defer;
		size_t n = l->n_defer, cap = l->cap_defer;
		l->defer = l->defer_run;
		l->cap_defer = l->cap_defer_run;
		l->n_defer = 0;
		l->defer_run = run;
		l->cap_defer_run = cap;
		for (size_t i = 0; i < n; i++)
			run[i].fn(run[i].arg);
	}
}

static void on_wake(struct loop_io *io, uint32_t events)
{
	struct loop *l = io->arg;
	uint64_t v;
	(void)events;
	while (read(l->wake_fd, &v, sizeof(v)) == sizeof(v))
		;
	if (l->wake_cb)
		l->wake_cb(l, l->wake_arg);
}

int loop_set_wake(struct loop *l, loop_wake_cb cb, void *arg)
{
	l->wake_cb = cb;
	l->wake_arg = arg;
	if (l->wake_io.fd == -1) {
		int r = loop_io_add(l, &l->wake_io, l->wake_fd, LOOP_READ, on_wake, l);
		if (r)
			return r;
	}
	return 0;
}

void loop_wake(struct loop *l)
{
	uint64_t one = 1;
	ssize_t w = write(l->wake_fd, &one, sizeof(one));
	(void)w;
}

/* ---- the loop ---- */

void loop_stop(struct loop *l) { l->stop = true; }
uint64_t loop_now_ms(const struct loop *l) { return l->now_ms; }

static void fire_timers(struct loop *l)
{
	while (l->n_timers && l->heap[0]->due_ms <= l->now_ms) {
		struct timer *t = l->heap[0];
		timer_cancel(l, t);
		t->cb(t);
	}
}

int loop_run(struct loop *l)
{
	struct epoll_event evs[MAX_EVENTS];

	/* A loop_stop() made before loop_run() (for instance from a callback
	 * invoked by hand before the loop starts) makes it return at once; the
	 * flag is cleared on the way out so the loop can be run again. */
	while (!l->stop) {
		run_deferred(l);
		if (l->stop)
			break;
		int timeout = -1;
		l->now_ms = clock_mono_ms();
		if (l->n_defer)
			timeout = 0;
		else if (l->n_timers) {
			uint64_t due = l->heap[0]->due_ms;
			timeout = due <= l->now_ms ? 0 : (int)(due - l->now_ms > 60000 ? 60000 : due - l->now_ms);
		}
		int n = epoll_wait(l->epfd, evs, MAX_EVENTS, timeout);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			l->stop = false;
			return -errno;
		}
		l->now_ms = clock_mono_ms();
		l->dispatching = true;
		l->n_deleted = 0;
		l->deleted_overflow = false;
		for (int i = 0; i < n && !l->deleted_overflow; i++) {
			struct loop_io *io = evs[i].data.ptr;
			bool gone = false;
			for (size_t k = 0; k < l->n_deleted; k++)
				if (l->deleted[k] == io)
					gone = true;
			if (gone || io->fd < 0)
				continue;
			uint32_t e = 0;
			if (evs[i].events & (EPOLLIN | EPOLLRDHUP))
				e |= LOOP_READ;
			if (evs[i].events & EPOLLOUT)
				e |= LOOP_WRITE;
			if (evs[i].events & (EPOLLERR | EPOLLHUP))
				e |= LOOP_ERROR | (io->events & (LOOP_READ | LOOP_WRITE));
			io->cb(io, e);
		}
		l->dispatching = false;
		fire_timers(l);
	}
	l->stop = false;
	return 0;
}
