/* SPDX-License-Identifier: MIT */
/*
 * loop.h: one event loop per thread over epoll, with timers (a binary heap
 * keyed by due time in milliseconds of CLOCK_MONOTONIC) and deferred calls.
 * Callbacks run on the loop's thread and never block. An fd is registered
 * through a struct loop_io embedded in its owner; timers likewise through an
 * embedded struct timer. The only call safe from another thread is
 * loop_wake(), which runs the loop's wake callback on its thread.
 */
#ifndef WG_CORE_LOOP_H
#define WG_CORE_LOOP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct loop;
struct loop_io;
struct timer;

/* events: a mask of LOOP_READ | LOOP_WRITE | LOOP_ERROR (HUP/ERR). */
enum { LOOP_READ = 1u << 0, LOOP_WRITE = 1u << 1, LOOP_ERROR = 1u << 2 };

typedef void (*loop_io_cb)(struct loop_io *io, uint32_t events);
typedef void (*timer_cb)(struct timer *t);
typedef void (*loop_defer_cb)(void *arg);
typedef void (*loop_wake_cb)(struct loop *loop, void *arg);

struct loop_io {
	int fd;
	uint32_t events; /* what is armed */
	loop_io_cb cb;
	void *arg; /* the owner, for the callback */
};

struct timer {
	uint64_t due_ms;
	size_t heap_idx; /* 0 = not armed, else index + 1 */
	timer_cb cb;
	void *arg;
};

/* NULL on failure (errno set). */
struct loop *loop_new(void);
void loop_free(struct loop *loop);

/* Level-triggered registration. 0 or -errno. */
int loop_io_add(struct loop *loop, struct loop_io *io, int fd, uint32_t events, loop_io_cb cb,
		void *arg);
int loop_io_mod(struct loop *loop, struct loop_io *io, uint32_t events);
void loop_io_del(struct loop *loop, struct loop_io *io);

/* Arms (or re-arms) t to fire after delay_ms. -ENOMEM only. */
int timer_add(struct loop *loop, struct timer *t, uint64_t delay_ms, timer_cb cb, void *arg);
void timer_cancel(struct loop *loop, struct timer *t);
static inline bool timer_is_armed(const struct timer *t) { return t->heap_idx != 0; }

/* Runs fn(arg) at the start of the next iteration. -ENOMEM. */
int loop_defer(struct loop *loop, loop_defer_cb fn, void *arg);

/* Cross-thread wake-up: loop_wake() (any thread) makes the loop call cb(arg)
 * on its own thread soon after. Multiple wakes may coalesce into one call. */
int loop_set_wake(struct loop *loop, loop_wake_cb cb, void *arg);
void loop_wake(struct loop *loop);

/* Runs until loop_stop(). Returns 0, or -errno if epoll fails. */
int loop_run(struct loop *loop);
void loop_stop(struct loop *loop);
/* Cached monotonic milliseconds, refreshed every iteration. */
uint64_t loop_now_ms(const struct loop *loop);
/* Monotonic and wall clocks, uncached. */
uint64_t clock_mono_ms(void);
uint64_t clock_wall_ms(void);

#endif
