/* SPDX-License-Identifier: MIT */
/* Tests of core/loop.c: timer order, cancel, fd readiness, defer, wake. */
#include <pthread.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../check.h"
#include "core/loop.h"

static struct loop *tl;
static int order[8];
static int n_order;

static void on_timer(struct timer *t)
{
	order[n_order++] = (int)(intptr_t)t->arg;
	if (n_order == 3)
		loop_stop(tl);
}

TEST(loop_timers_fire_in_due_order_and_cancel_works)
{
	struct timer t1 = {0}, t2 = {0}, t3 = {0}, t4 = {0};
	tl = loop_new();
	n_order = 0;
	timer_add(tl, &t1, 30, on_timer, (void *)(intptr_t)3);
	timer_add(tl, &t2, 10, on_timer, (void *)(intptr_t)1);
	timer_add(tl, &t4, 15, on_timer, (void *)(intptr_t)9);
	timer_add(tl, &t3, 20, on_timer, (void *)(intptr_t)2);
	timer_cancel(tl, &t4);
	CHECK(!timer_is_armed(&t4));
	loop_run(tl);
	CHECK_EQ_INT(n_order, 3);
	CHECK_EQ_INT(order[0], 1);
	CHECK_EQ_INT(order[1], 2);
	CHECK_EQ_INT(order[2], 3);
	loop_free(tl);
}

static int got_read;
static void on_readable(struct loop_io *io, uint32_t ev)
{
	char c;
	if ((ev & LOOP_READ) && read(io->fd, &c, 1) == 1 && c == 'x')
		got_read++;
	loop_io_del(tl, io);
	loop_stop(tl);
}

static void on_deferred(void *arg)
{
	int *fd = arg;
	ssize_t w = write(*fd, "x", 1);
	(void)w;
}

TEST(loop_io_readiness_and_defer)
{
	int p[2];
	struct loop_io io;
	CHECK_EQ_INT(pipe(p), 0);
	tl = loop_new();
	got_read = 0;
	CHECK_EQ_INT(loop_io_add(tl, &io, p[0], LOOP_READ, on_readable, NULL), 0);
	loop_defer(tl, on_deferred, &p[1]);
	loop_run(tl);
	CHECK_EQ_INT(got_read, 1);
	loop_free(tl);
	close(p[0]);
	close(p[1]);
}

static int woken;
static void on_wake_cb(struct loop *l, void *arg)
{
	(void)arg;
	woken++;
	loop_stop(l);
}

static void *waker(void *arg)
{
	usleep(10000);
	loop_wake(arg);
	return NULL;
}

TEST(loop_wake_from_another_thread)
{
	pthread_t th;
	tl = loop_new();
	woken = 0;
	CHECK_EQ_INT(loop_set_wake(tl, on_wake_cb, NULL), 0);
	pthread_create(&th, NULL, waker, tl);
	loop_run(tl);
	pthread_join(th, NULL);
	CHECK_EQ_INT(woken, 1);
	loop_free(tl);
}

TEST(loop_wake_before_set_wake_is_not_lost)
{
	tl = loop_new();
	woken = 0;
	loop_wake(tl); /* before anyone listens */
	CHECK_EQ_INT(loop_set_wake(tl, on_wake_cb, NULL), 0);
	loop_run(tl); /* stops in on_wake_cb */
	CHECK_EQ_INT(woken, 1);
	loop_free(tl);
}

TEST(loop_stop_before_run_returns_at_once_and_loop_runs_again)
{
	struct timer t = {0};
	tl = loop_new();
	loop_stop(tl);
	CHECK_EQ_INT(loop_run(tl), 0); /* returns at once */
	n_order = 0;
	timer_add(tl, &t, 1, on_timer, (void *)(intptr_t)5);
	n_order = 2; /* the third timer call stops the loop */
	loop_run(tl);
	CHECK_EQ_INT(n_order, 3);
	CHECK_EQ_INT(order[2], 5);
	loop_free(tl);
}

/* ---- edge-triggered registrations and deletion during dispatch ---- */

static int n_calls;
static void on_edge_read_one(struct loop_io *io, uint32_t ev)
{
	char c;
	n_calls++;
	if (ev & LOOP_READ) {
		ssize_t r = read(io->fd, &c, 1); /* leaves the rest unread */
		(void)r;
	}
}

static void on_stop_timer(struct timer *t)
{
	loop_stop(t->arg);
}

/* Runs tl for about ms milliseconds. */
static void run_for(uint64_t ms)
{
	struct timer stop = {0};
	timer_add(tl, &stop, ms, on_stop_timer, tl);
	loop_run(tl);
	timer_cancel(tl, &stop);
}

TEST(loop_edge_triggered_io_is_told_once_per_arrival)
{
	int p[2];
	struct loop_io io;
	CHECK_EQ_INT(pipe(p), 0);
	tl = loop_new();
	n_calls = 0;
	CHECK_EQ_INT(write(p[1], "abc", 3), 3);
	CHECK_EQ_INT(loop_io_add(tl, &io, p[0], LOOP_READ | LOOP_EDGE, on_edge_read_one, NULL), 0);
	run_for(30);
	CHECK_EQ_INT(n_calls, 1); /* two bytes are still there: level-triggered would repeat */
	CHECK_EQ_INT(write(p[1], "d", 1), 1);
	run_for(30);
	CHECK_EQ_INT(n_calls, 2); /* new bytes: one more event */
	/* arming another direction reports what already holds */
	CHECK_EQ_INT(loop_io_mod(tl, &io, LOOP_READ | LOOP_WRITE | LOOP_EDGE), 0);
	CHECK_EQ_INT(loop_io_mod(tl, &io, LOOP_READ | LOOP_EDGE), 0);
	run_for(30);
	CHECK_EQ_INT(n_calls, 3);
	loop_free(tl);
	close(p[0]);
	close(p[1]);
}

TEST(loop_level_triggered_io_is_told_while_bytes_wait)
{
	int p[2];
	struct loop_io io;
	CHECK_EQ_INT(pipe(p), 0);
	tl = loop_new();
	n_calls = 0;
	CHECK_EQ_INT(write(p[1], "abc", 3), 3);
	CHECK_EQ_INT(loop_io_add(tl, &io, p[0], LOOP_READ, on_edge_read_one, NULL), 0);
	run_for(30);
	CHECK_EQ_INT(n_calls, 3); /* one byte per call until the pipe is empty */
	loop_free(tl);
	close(p[0]);
	close(p[1]);
}

static uint32_t last_events;
static void on_note_events(struct loop_io *io, uint32_t ev)
{
	(void)io;
	n_calls++;
	last_events = ev;
}

TEST(loop_edge_triggered_io_learns_of_eof_behind_bytes)
{
	int sv[2];
	struct loop_io io;
	char b[16];
	CHECK_EQ_INT(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	tl = loop_new();
	n_calls = 0;
	CHECK_EQ_INT(loop_io_add(tl, &io, sv[0], LOOP_READ | LOOP_EDGE, on_note_events, NULL), 0);
	CHECK_EQ_INT(write(sv[1], "ab", 2), 2);
	CHECK_EQ_INT(shutdown(sv[1], SHUT_WR), 0);
	run_for(30);
	/* one edge for both: the short read below is not the end */
	CHECK_EQ_INT(n_calls, 1);
	CHECK_EQ_INT(last_events & (LOOP_READ | LOOP_RDHUP), LOOP_READ | LOOP_RDHUP);
	CHECK_EQ_INT(read(sv[0], b, sizeof(b)), 2);
	CHECK_EQ_INT(read(sv[0], b, sizeof(b)), 0);
	run_for(20);
	CHECK_EQ_INT(n_calls, 1);
	loop_free(tl);
	close(sv[0]);
	close(sv[1]);
}

#define N_VICTIMS 300 /* more than one epoll batch */

struct victims {
	int fds[N_VICTIMS][2];
	struct loop_io io[N_VICTIMS];
	struct loop_io a, b; /* readable; whichever runs first deletes the victims */
	int a_calls, b_calls;
	bool deleted;
};
static struct victims vs;

static void on_victim(struct loop_io *io, uint32_t ev)
{
	(void)io;
	(void)ev;
	if (vs.deleted)
		n_calls++; /* only the write ends are registered now: never readable */
}

static void on_deleter(struct loop_io *io, uint32_t ev)
{
	char c;
	(void)ev;
	if (read(io->fd, &c, 1) != 1)
		return;
	if (io == &vs.a)
		vs.a_calls++;
	else
		vs.b_calls++;
	if (vs.deleted)
		return;
	vs.deleted = true;
	for (int i = 0; i < N_VICTIMS; i++)
		loop_io_del(tl, &vs.io[i]);
	/* the same addresses again, on fds with nothing to read: the events
	 * still waiting in this batch were for the old ones */
	for (int i = 0; i < N_VICTIMS; i++)
		loop_io_add(tl, &vs.io[i], vs.fds[i][1], LOOP_READ | LOOP_EDGE, on_victim, NULL);
}

TEST(loop_io_deleted_during_dispatch_gets_none_of_its_batch_and_others_lose_nothing)
{
	int pa[2], pb[2];
	memset(&vs, 0, sizeof(vs));
	tl = loop_new();
	n_calls = 0;
	CHECK_EQ_INT(pipe(pa), 0);
	CHECK_EQ_INT(pipe(pb), 0);
	for (int i = 0; i < N_VICTIMS; i++) {
		CHECK_EQ_INT(pipe(vs.fds[i]), 0);
		CHECK_EQ_INT(write(vs.fds[i][1], "v", 1), 1);
		CHECK_EQ_INT(loop_io_add(tl, &vs.io[i], vs.fds[i][0], LOOP_READ | LOOP_EDGE,
					 on_victim, NULL),
			     0);
	}
	CHECK_EQ_INT(write(pa[1], "a", 1), 1);
	CHECK_EQ_INT(write(pb[1], "b", 1), 1);
	CHECK_EQ_INT(loop_io_add(tl, &vs.a, pa[0], LOOP_READ | LOOP_EDGE, on_deleter, NULL), 0);
	CHECK_EQ_INT(loop_io_add(tl, &vs.b, pb[0], LOOP_READ | LOOP_EDGE, on_deleter, NULL), 0);
	run_for(50);
	CHECK(vs.deleted);
	/* whatever order epoll chose, the deleter's twin still got its one edge */
	CHECK_EQ_INT(vs.a_calls, 1);
	CHECK_EQ_INT(vs.b_calls, 1);
	CHECK_EQ_INT(n_calls, 0);
	loop_free(tl);
	for (int i = 0; i < N_VICTIMS; i++) {
		close(vs.fds[i][0]);
		close(vs.fds[i][1]);
	}
	close(pa[0]), close(pa[1]), close(pb[0]), close(pb[1]);
}
