/* SPDX-License-Identifier: MIT */
/*
 * floor.c: the cost floor of a proxy on this machine. A forwarder that
 * does no HTTP work at all: each accepted connection gets its own
 * connection to the backend, and whatever one side sends is written to the
 * other (one recv and one send per message, level-triggered epoll, one
 * pinned worker per allowed CPU, as waygate's workers). It parses nothing,
 * routes nothing, rewrites nothing, keeps no timers, so what it costs per
 * request is what the kernel charges any proxy for the same load: the
 * syscalls, the loopback TCP path and the wake-ups.
 *
 * FLOOR_IO=uring does the same with io_uring instead of epoll and
 * recv/send calls: per worker one ring; each direction is a recv linked to
 * the send of what it read, and a loop turn submits everything and waits
 * in one io_uring_enter, so the syscalls per request drop from ~5 to a
 * fraction of one. Comparing the two shows what batching the syscalls is
 * worth on this machine.
 *
 * A bench target (`tests/bench/floor-target`); not part of the product.
 * Plain HTTP only (scenarios a, a16, e, f of ../shared/bench).
 *
 *   PROXY_HTTP_PORT     the port it listens on, 127.0.0.1 (28080)
 *   BENCH_BACKEND_HTTP  host:port of the backend (127.0.0.1:18080)
 *   FLOOR_WORKERS       worker threads (2)
 *   FLOOR_IO            epoll (default) or uring
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <linux/io_uring.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

enum { MAX_WORKERS = 64, BUF_BYTES = 16384, BATCH = 256 };

/* One direction's source: its socket and the socket it forwards to. */
struct side {
	int fd;
	struct side *peer;
};

static struct sockaddr_in listen_addr, backend_addr;
static bool use_uring;

static void die(const char *what)
{
	perror(what);
	exit(1);
}

static void parse_addr(const char *hostport, struct sockaddr_in *out)
{
	char host[64];
	const char *colon = strrchr(hostport, ':');
	if (!colon || (size_t)(colon - hostport) >= sizeof host) {
		fprintf(stderr, "floor: '%s' is not host:port\n", hostport);
		exit(2);
	}
	memcpy(host, hostport, colon - hostport);
	host[colon - hostport] = 0;
	out->sin_family = AF_INET;
	out->sin_port = htons((uint16_t)atoi(colon + 1));
	if (inet_pton(AF_INET, host, &out->sin_addr) != 1) {
		fprintf(stderr, "floor: '%s' is not an IPv4 address\n", host);
		exit(2);
	}
}

static void set_nodelay(int fd)
{
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

static int open_listener(void)
{
	int one = 1, fd = socket(AF_INET, SOCK_STREAM | (use_uring ? 0 : SOCK_NONBLOCK), 0);
	if (fd < 0)
		die("socket");
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
	if (bind(fd, (struct sockaddr *)&listen_addr, sizeof listen_addr) || listen(fd, 1024))
		die("listen");
	return fd;
}

static void close_pair(struct side *s)
{
	struct side *pair = s < s->peer ? s : s->peer;
	close(pair[0].fd); /* closing drops them from the epoll set */
	close(pair[1].fd);
	free(pair);
}

/* The backend connection for a new client, or -1 (the client is closed). */
static int connect_backend(int client)
{
	int up = socket(AF_INET, SOCK_STREAM, 0);
	if (up < 0 || connect(up, (struct sockaddr *)&backend_addr, sizeof backend_addr)) {
		perror("floor: backend");
		if (up >= 0)
			close(up);
		close(client);
		return -1;
	}
	set_nodelay(client);
	set_nodelay(up);
	return up;
}

static void add_pair(int ep, int client)
{
	int up = connect_backend(client);
	if (up < 0)
		return;
	struct side *pair = calloc(2, sizeof *pair);
	if (!pair)
		die("calloc");
	pair[0] = (struct side){client, &pair[1]};
	pair[1] = (struct side){up, &pair[0]};
	for (int i = 0; i < 2; i++) {
		struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.ptr = &pair[i]};
		if (epoll_ctl(ep, EPOLL_CTL_ADD, pair[i].fd, &ev))
			die("epoll_ctl");
	}
}

/* Writes all of buf; a full socket buffer waits here (a floor tool, not a
 * proxy: the messages of the bench fit the socket buffers). */
static int send_all(int fd, const char *buf, size_t len)
{
	while (len) {
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && errno == EAGAIN) {
			struct pollfd p = {.fd = fd, .events = POLLOUT};
			poll(&p, 1, -1);
			continue;
		}
		if (n <= 0)
			return -1;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

static void pin_self(int cpu)
{
	if (cpu >= 0) {
		cpu_set_t one;
		CPU_ZERO(&one);
		CPU_SET(cpu, &one);
		pthread_setaffinity_np(pthread_self(), sizeof one, &one);
	}
}

static void epoll_worker(void)
{
	int lfd = open_listener(), ep = epoll_create1(0);
	struct epoll_event lev = {.events = EPOLLIN, .data.ptr = NULL};
	if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &lev))
		die("epoll");
	static _Thread_local char buf[BUF_BYTES];
	struct epoll_event evs[BATCH];
	for (;;) {
		int n = epoll_wait(ep, evs, BATCH, -1);
		for (int i = 0; i < n; i++) {
			struct side *s = evs[i].data.ptr;
			if (!s && evs[i].events == 0)
				continue; /* a side closed earlier in this batch */
			if (!s) {
				int c = accept4(lfd, NULL, NULL, SOCK_NONBLOCK);
				if (c >= 0)
					add_pair(ep, c);
				continue;
			}
			ssize_t r = recv(s->fd, buf, sizeof buf, 0);
			if (r < 0 && errno == EAGAIN)
				continue;
			if (r <= 0 || send_all(s->peer->fd, buf, (size_t)r)) {
				/* the peer may be later in this batch: forget it */
				for (int j = i + 1; j < n; j++)
					if (evs[j].data.ptr == s->peer)
						evs[j] = (struct epoll_event){0};
				close_pair(s);
			}
		}
	}
}

/* ---- io_uring (raw system calls: the kernel's own interface) ---- */

struct ring {
	int fd;
	unsigned *sq_tail, *sq_mask, *sq_array, *cq_head, *cq_tail, *cq_mask;
	struct io_uring_sqe *sqes;
	struct io_uring_cqe *cqes;
	unsigned sq_local_tail, to_submit;
};

/* One direction of a pair: read from `from` into buf, send it to `to`. */
struct dir {
	int from, to;
	struct dir *other;
	char buf[BUF_BYTES];
};

enum { UD_ACCEPT = 1 }; /* every other user_data is a struct dir * or 0 */

static void ring_init(struct ring *r, unsigned entries)
{
	struct io_uring_params p = {.flags = IORING_SETUP_SINGLE_ISSUER |
					     IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_CQSIZE,
				    .cq_entries = entries * 4};
	r->fd = (int)syscall(__NR_io_uring_setup, entries, &p);
	if (r->fd < 0)
		die("io_uring_setup");
	size_t sq_bytes = p.sq_off.array + p.sq_entries * sizeof(unsigned);
	size_t cq_bytes = p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe);
	if (p.features & IORING_FEAT_SINGLE_MMAP)
		sq_bytes = cq_bytes = sq_bytes > cq_bytes ? sq_bytes : cq_bytes;
	char *sq = mmap(NULL, sq_bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, r->fd,
			IORING_OFF_SQ_RING);
	char *cq = (p.features & IORING_FEAT_SINGLE_MMAP)
			   ? sq
			   : mmap(NULL, cq_bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE,
				  r->fd, IORING_OFF_CQ_RING);
	r->sqes = mmap(NULL, p.sq_entries * sizeof(struct io_uring_sqe), PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_POPULATE, r->fd, IORING_OFF_SQES);
	if (sq == MAP_FAILED || cq == MAP_FAILED || r->sqes == MAP_FAILED)
		die("mmap io_uring");
	r->sq_tail = (unsigned *)(sq + p.sq_off.tail);
	r->sq_mask = (unsigned *)(sq + p.sq_off.ring_mask);
	r->sq_array = (unsigned *)(sq + p.sq_off.array);
	r->cq_head = (unsigned *)(cq + p.cq_off.head);
	r->cq_tail = (unsigned *)(cq + p.cq_off.tail);
	r->cq_mask = (unsigned *)(cq + p.cq_off.ring_mask);
	r->cqes = (struct io_uring_cqe *)(cq + p.cq_off.cqes);
	r->sq_local_tail = *r->sq_tail;
}

static struct io_uring_sqe *ring_sqe(struct ring *r)
{
	unsigned idx = r->sq_local_tail & *r->sq_mask;
	struct io_uring_sqe *sqe = &r->sqes[idx];
	memset(sqe, 0, sizeof *sqe);
	r->sq_array[idx] = idx;
	r->sq_local_tail++;
	r->to_submit++;
	return sqe;
}

/* Submits what is queued and waits for at least one completion. */
static void ring_enter(struct ring *r)
{
	atomic_store_explicit((_Atomic unsigned *)r->sq_tail, r->sq_local_tail,
			      memory_order_release);
	int n = (int)syscall(__NR_io_uring_enter, r->fd, r->to_submit, 1, IORING_ENTER_GETEVENTS,
			     NULL, 0);
	if (n < 0 && errno != EINTR && errno != EBUSY)
		die("io_uring_enter");
	if (n > 0)
		r->to_submit -= (unsigned)n;
}

static void queue_recv(struct ring *r, struct dir *d)
{
	struct io_uring_sqe *sqe = ring_sqe(r);
	sqe->opcode = IORING_OP_RECV;
	sqe->fd = d->from;
	sqe->addr = (uintptr_t)d->buf;
	sqe->len = sizeof d->buf;
	sqe->user_data = (uintptr_t)d;
}

/* Sends the n bytes just read, and reads again once they are sent (the
 * link keeps buf untouched until then); a successful send posts nothing. */
static void queue_send_then_recv(struct ring *r, struct dir *d, unsigned n)
{
	struct io_uring_sqe *sqe = ring_sqe(r);
	sqe->opcode = IORING_OP_SEND;
	sqe->fd = d->to;
	sqe->addr = (uintptr_t)d->buf;
	sqe->len = n;
	sqe->msg_flags = MSG_NOSIGNAL | MSG_WAITALL;
	sqe->flags = IOSQE_IO_LINK | IOSQE_CQE_SKIP_SUCCESS;
	sqe->user_data = 0;
	queue_recv(r, d);
}

static void queue_accept(struct ring *r, int lfd)
{
	struct io_uring_sqe *sqe = ring_sqe(r);
	sqe->opcode = IORING_OP_ACCEPT;
	sqe->fd = lfd;
	sqe->ioprio = IORING_ACCEPT_MULTISHOT;
	sqe->user_data = UD_ACCEPT;
}

static void uring_worker(void)
{
	struct ring r = {0};
	int lfd = open_listener();
	ring_init(&r, 1024);
	queue_accept(&r, lfd);
	for (;;) {
		ring_enter(&r);
		unsigned head = *r.cq_head;
		unsigned tail =
			atomic_load_explicit((_Atomic unsigned *)r.cq_tail, memory_order_acquire);
		for (; head != tail; head++) {
			struct io_uring_cqe *c = &r.cqes[head & *r.cq_mask];
			if (c->user_data == UD_ACCEPT) {
				if (!(c->flags & IORING_CQE_F_MORE))
					queue_accept(&r, lfd);
				int up = c->res >= 0 ? connect_backend(c->res) : -1;
				if (up < 0)
					continue;
				struct dir *d = aligned_alloc(64, 2 * sizeof *d);
				if (!d)
					die("aligned_alloc");
				d[0] = (struct dir){.from = c->res, .to = up, .other = &d[1]};
				d[1] = (struct dir){.from = up, .to = c->res, .other = &d[0]};
				queue_recv(&r, &d[0]);
				queue_recv(&r, &d[1]);
				continue;
			}
			struct dir *d = (struct dir *)(uintptr_t)c->user_data;
			if (!d)
				continue; /* a failed send: its linked recv reports the end */
			if (c->res > 0) {
				queue_send_then_recv(&r, d, (unsigned)c->res);
				continue;
			}
			/* The end of one direction: shut the other one down; the pair
			 * is freed when both have ended. */
			shutdown(d->to, SHUT_RDWR);
			d->from = -1;
			if (d->other->from == -1) {
				struct dir *pair = d < d->other ? d : d->other;
				close(pair[0].to);
				close(pair[1].to);
				free(pair);
			}
		}
		atomic_store_explicit((_Atomic unsigned *)r.cq_head, head, memory_order_release);
	}
}

static void *worker(void *arg)
{
	pin_self((int)(long)arg);
	if (use_uring)
		uring_worker();
	else
		epoll_worker();
	return NULL;
}

int main(void)
{
	const char *port = getenv("PROXY_HTTP_PORT");
	const char *backend = getenv("BENCH_BACKEND_HTTP");
	const char *workers = getenv("FLOOR_WORKERS");
	const char *io = getenv("FLOOR_IO");
	if (io && strcmp(io, "epoll") && strcmp(io, "uring")) {
		fprintf(stderr, "floor: FLOOR_IO=%s is not epoll or uring\n", io);
		return 2;
	}
	use_uring = io && !strcmp(io, "uring");
	char listen_spec[32];
	snprintf(listen_spec, sizeof listen_spec, "127.0.0.1:%s", port ? port : "28080");
	parse_addr(listen_spec, &listen_addr);
	parse_addr(backend ? backend : "127.0.0.1:18080", &backend_addr);
	int n = workers ? atoi(workers) : 2;
	if (n < 1 || n > MAX_WORKERS) {
		fprintf(stderr, "floor: FLOOR_WORKERS=%s is not 1..%d\n", workers, MAX_WORKERS);
		return 2;
	}

	/* One worker per allowed CPU: pin them, as waygate does. */
	cpu_set_t allowed;
	int cpus[MAX_WORKERS], k = 0;
	bool pin = sched_getaffinity(0, sizeof allowed, &allowed) == 0 && CPU_COUNT(&allowed) == n;
	for (int cpu = 0; pin && cpu < CPU_SETSIZE && k < n; cpu++)
		if (CPU_ISSET(cpu, &allowed))
			cpus[k++] = cpu;
	pthread_t threads[MAX_WORKERS];
	for (int i = 0; i < n; i++)
		if (pthread_create(&threads[i], NULL, worker, (void *)(long)(pin ? cpus[i] : -1)))
			die("pthread_create");
	pthread_join(threads[0], NULL);
	return 0;
}
