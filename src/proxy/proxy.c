/* SPDX-License-Identifier: MIT */
/*
 * proxy.c: the data plane's life cycle (proxy.h): worker threads and their
 * loops, publication of snapshots, listening sockets, draining, counters and
 * the per-worker buffer freelist.
 *
 * Publication (control thread): the snapshot is compiled into a struct rt
 * (route.c, which keeps what the last rt compiled for the rules that did
 * not change), HTTPS sockets get their TLS context (tlsglue.c), sockets that
 * are new get one SO_REUSEPORT fd per worker, bound here so that a failure
 * is reported at once in the caller's diag. Each worker then receives the rt
 * through an atomic exchange and a loop_wake(); on its own thread it adds
 * the fds it does not poll yet and drops those the rt no longer lists.
 * Connections and requests are handled in conn.c and upstream.c; sockets
 * with TLS, TCP or UDP listeners are handed to the L4 code (l4.h). A worker
 * with more HTTP client connections than another hands a new one over to
 * it (hand_over), the only fd that crosses threads.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/arena.h"
#include "core/err.h"
#include "core/log.h"
#include "proxy/internal.h"
#include "proxy/l4.h"
#include "proxy/snapshot.h"
#include "proxy/upx.h"

#define WBUF_FREE_MAX 512

/* ---- listening sockets ---- */

void psock_ref(struct psock *s)
{
	__atomic_add_fetch(&s->refs, 1, __ATOMIC_RELAXED);
}

void psock_unref(struct psock *s)
{
	if (!s || __atomic_sub_fetch(&s->refs, 1, __ATOMIC_ACQ_REL) != 0)
		return;
	for (unsigned i = 0; i < s->n_fds; i++)
		if (s->fds[i] >= 0)
			close(s->fds[i]);
	log_info("event=listen_close addr=%s port=%u", log_q(s->addr), s->port);
	free(s);
}

static int to_sockaddr(const char *addr, uint16_t port, struct sockaddr_storage *ss, socklen_t *len)
{
	struct sockaddr_in *in4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, addr, &in4->sin_addr) == 1) {
		in4->sin_family = AF_INET;
		in4->sin_port = htons(port);
		*len = sizeof(*in4);
		return 0;
	}
	if (inet_pton(AF_INET6, addr, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(port);
		*len = sizeof(*in6);
		return 0;
	}
	return -EINVAL;
}

static int listen_one(const struct sockaddr_storage *ss, socklen_t len)
{
	int one = 1;
	int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1)
		return -errno;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == -1 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) == -1 ||
	    bind(fd, (const struct sockaddr *)ss, len) == -1 || listen(fd, 1024) == -1) {
		int e = -errno;
		close(fd);
		return e;
	}
	return fd;
}

static const char *socket_listener_names(const struct snap_socket *s, char *buf, size_t size)
{
	size_t o = 0;
	buf[0] = '\0';
	for (size_t i = 0; i < s->n_listeners && o + 1 < size; i++) {
		int n = snprintf(buf + o, size - o, "%s%s/%s", i ? ", " : "",
				 s->listeners[i]->gateway ? s->listeners[i]->gateway : "?",
				 s->listeners[i]->name ? s->listeners[i]->name : "?");
		if (n < 0)
			break;
		o += (size_t)n;
	}
	return buf;
}

/* Opens one fd per worker; NULL with a diag naming address, port and the
 * listeners when the address is invalid or a bind fails. */
static struct psock *psock_open(struct proxy *p, const struct snap_socket *s, struct diag *d)
{
	struct sockaddr_storage ss;
	socklen_t len;
	char names[512];
	struct psock *ps;
	int r;

	if (to_sockaddr(s->addr, s->port, &ss, &len)) {
		diag_add(d, DIAG_ERROR, NULL, socket_listener_names(s, names, sizeof(names)),
			 "address", "'%s' is not a numeric IP address", s->addr);
		return NULL;
	}
	ps = calloc(1, sizeof(*ps) + p->n_workers * sizeof(int));
	if (!ps)
		return NULL;
	ps->refs = 1;
	ps->id = ++p->next_sock_id;
	str_lcpy(ps->addr, s->addr, sizeof(ps->addr));
	ps->port = s->port;
	ps->transport = s->transport;
	ps->n_fds = p->n_workers;
	for (unsigned i = 0; i < p->n_workers; i++)
		ps->fds[i] = -1;
	for (unsigned i = 0; i < p->n_workers; i++) {
		r = s->transport == SNAP_T_UDP ? l4_udp_listen(&ss, len) : listen_one(&ss, len);
		if (r < 0) {
			diag_add(d, DIAG_ERROR, NULL,
				 socket_listener_names(s, names, sizeof(names)), "port",
				 "cannot listen on %s:%u: %s", s->addr, s->port, err_str(r));
			psock_unref(ps);
			return NULL;
		}
		ps->fds[i] = r;
	}
	log_info("event=listen addr=%s port=%u transport=%s workers=%u", log_q(s->addr), s->port,
		 s->transport == SNAP_T_UDP ? "udp" : "tcp", p->n_workers);
	return ps;
}

/* ---- buffers ---- */

int wbuf_get(struct worker *w, struct buf *b)
{
	if (b->data)
		return 0;
	char *d;
	if (w->n_free_bufs) {
		d = w->free_bufs[--w->n_free_bufs];
		if (w->n_free_bufs < w->low_free_bufs)
			w->low_free_bufs = w->n_free_bufs;
	} else if (!(d = malloc(w->p->buf_size)))
		return -ENOMEM;
	b->data = d;
	b->cap = w->p->buf_size;
	b->head = b->tail = 0;
	return 0;
}

void wbuf_put(struct worker *w, struct buf *b)
{
	if (!b->data)
		return;
	if (w->n_free_bufs < w->cap_free_bufs)
		w->free_bufs[w->n_free_bufs++] = b->data;
	else
		free(b->data);
	memset(b, 0, sizeof(*b));
	wpool_arm(w);
}

static void on_trim(struct timer *t)
{
	struct worker *w = t->arg;
	wpool_trim(w);
	if (w->n_free_bufs > PX_TRIM_KEEP || w->n_free_arenas > PX_TRIM_KEEP)
		wpool_arm(w);
}

void wpool_arm(struct worker *w)
{
	if (timer_is_armed(&w->trim_timer) || w->stopped)
		return;
	w->low_free_bufs = w->n_free_bufs;
	w->low_free_arenas = w->n_free_arenas;
	timer_add(w->loop, &w->trim_timer, PX_TRIM_MS, on_trim, w);
}

/* Frees from the bottom of each stack: the least recently used entries,
 * while the top ones may still be warm in the cache. */
size_t wpool_trim(struct worker *w)
{
	size_t nb = w->low_free_bufs > PX_TRIM_KEEP ? w->low_free_bufs - PX_TRIM_KEEP : 0;
	size_t na = w->low_free_arenas > PX_TRIM_KEEP ? w->low_free_arenas - PX_TRIM_KEEP : 0;

	for (size_t i = 0; i < nb; i++)
		free(w->free_bufs[i]);
	w->n_free_bufs -= nb;
	if (nb)
		memmove(w->free_bufs, w->free_bufs + nb, w->n_free_bufs * sizeof(*w->free_bufs));
	for (size_t i = 0; i < na; i++)
		arena_free(w->free_arenas[i]);
	w->n_free_arenas -= na;
	if (na)
		memmove(w->free_arenas, w->free_arenas + na, w->n_free_arenas * sizeof(*w->free_arenas));
	w->low_free_bufs = w->n_free_bufs;
	w->low_free_arenas = w->n_free_arenas;
	return nb + na;
}

/* Per-request arenas come from a per-worker pool: their number follows the
 * requests in progress, not the connections, and a request mallocs nothing
 * once the pool is warm. */
#define PX_ARENA_CHUNK 16384
#define PX_ARENA_POOL 256

struct arena *warena_get(struct worker *w)
{
	if (w->n_free_arenas) {
		struct arena *a = w->free_arenas[--w->n_free_arenas];

		if (w->n_free_arenas < w->low_free_arenas)
			w->low_free_arenas = w->n_free_arenas;
		return a;
	}
	return arena_new(PX_ARENA_CHUNK);
}

void warena_put(struct worker *w, struct arena *a)
{
	if (!a)
		return;
	arena_reset(a);
	if (w->n_free_arenas < PX_ARENA_POOL)
		w->free_arenas[w->n_free_arenas++] = a;
	else
		arena_free(a);
	wpool_arm(w);
}

/* ---- workers ---- */

static void lsn_drop(struct worker *w, size_t i)
{
	struct wlsn *l = w->lsn[i];
	loop_io_del(w->loop, &l->io);
	l4_lsn_closed(w, l->ps);
	psock_unref(l->ps);
	free(l);
	w->lsn[i] = w->lsn[--w->n_lsn];
}

/*
 * SO_REUSEPORT spreads connections over the workers by a hash of their
 * addresses, so a few long-lived ones (an HTTP/2 client multiplexes all
 * its requests over one) can land unevenly, and a worker pinned to its CPU
 * cannot move its excess elsewhere. A worker that already holds more
 * connections than the least loaded other worker hands a new HTTP
 * connection over to it instead of serving it: fd and address go on that
 * worker's inbox, its loop is woken, and it accepts the connection as if
 * its own socket had (take_handoffs). True when handed over.
 */
static bool hand_over(struct worker *w, int fd, uint64_t sock_id,
		      const struct sockaddr_storage *ss, socklen_t sl)
{
	struct proxy *p = w->p;
	struct worker *to = NULL;
	size_t least = w->n_conns;

	for (unsigned i = 0; i < p->n_workers; i++) {
		struct worker *o = &p->workers[i];
		/* only to a worker serving the same rt: it listens on the socket
		 * (w holds that rt, so an equal address is that very rt) */
		if (o == w || __atomic_load_n(&o->rt_seen, __ATOMIC_ACQUIRE) != w->rt ||
		    __atomic_load_n(&o->drain_req, __ATOMIC_ACQUIRE))
			continue;
		size_t n = __atomic_load_n(&o->n_conns_seen, __ATOMIC_RELAXED) +
			   __atomic_load_n(&o->n_handoffs, __ATOMIC_RELAXED);
		if (n < least) {
			least = n;
			to = o;
		}
	}
	struct handoff *h = to ? malloc(sizeof(*h)) : NULL;
	if (!h)
		return false;
	h->fd = fd;
	h->sock_id = sock_id;
	h->salen = sl;
	memcpy(&h->sa, ss, sl);
	__atomic_add_fetch(&to->n_handoffs, 1, __ATOMIC_RELAXED);
	h->next = __atomic_load_n(&to->inbox, __ATOMIC_RELAXED);
	while (!__atomic_compare_exchange_n(&to->inbox, &h->next, h, true, __ATOMIC_RELEASE,
					    __ATOMIC_RELAXED))
		;
	loop_wake(to->loop);
	return true;
}

/* Serves the connections other workers handed here (or closes them when
 * this worker no longer listens on their socket: it drains, or a newer
 * configuration dropped the socket on every worker). */
static void take_handoffs(struct worker *w)
{
	struct handoff *h = __atomic_exchange_n(&w->inbox, NULL, __ATOMIC_ACQUIRE);
	while (h) {
		struct handoff *next = h->next;
		struct wlsn *l = NULL;
		for (size_t i = 0; !w->draining && i < w->n_lsn && !l; i++)
			if (w->lsn[i]->ps->id == h->sock_id)
				l = w->lsn[i];
		if (l)
			conn_accept(w, l, h->fd, (struct sockaddr *)&h->sa, h->salen);
		else
			close(h->fd);
		__atomic_sub_fetch(&w->n_handoffs, 1, __ATOMIC_RELAXED);
		free(h);
		h = next;
	}
}

static void on_accept(struct loop_io *io, uint32_t events)
{
	struct wlsn *l = io->arg;
	struct worker *w = l->w;
	(void)events;

	for (int i = 0; i < 64; i++) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		int fd = accept4(io->fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd == -1) {
			if (errno == EMFILE || errno == ENFILE)
				log_warn("event=accept_failed worker=%u error=%s", w->idx,
					 log_q(strerror(errno)));
			return;
		}
		struct rt_socket *rs = w->rt ? rt_socket_by_id(w->rt, l->ps->id) : NULL;
		if (rs && rs->l4)
			l4_accept(w, l, rs, fd, (struct sockaddr *)&ss, sl);
		else if (!hand_over(w, fd, l->ps->id, &ss, sl))
			conn_accept(w, l, fd, (struct sockaddr *)&ss, sl);
		if (w->draining)
			return;
	}
}

static void on_udp_readable(struct loop_io *io, uint32_t events)
{
	struct wlsn *l = io->arg;
	(void)events;
	l4_udp_input(l->w, l);
}

static void adopt(struct worker *w, struct rt *rt)
{
	/* drop the listeners the new rt does not have */
	for (size_t i = 0; i < w->n_lsn;) {
		bool keep = !w->draining && rt_socket_by_id(rt, w->lsn[i]->ps->id);
		if (keep)
			i++;
		else
			lsn_drop(w, i);
	}
	for (size_t i = 0; i < rt->n_sockets && !w->draining; i++) {
		struct psock *ps = rt->sockets[i].ps;
		bool have = false;
		if (!ps || ps->fds[w->idx] < 0)
			continue;
		for (size_t k = 0; k < w->n_lsn; k++)
			if (w->lsn[k]->ps == ps)
				have = true;
		if (have)
			continue;
		if (w->n_lsn == w->cap_lsn) {
			size_t cap = w->cap_lsn ? w->cap_lsn * 2 : 8;
			struct wlsn **v = realloc(w->lsn, cap * sizeof(*v));
			if (!v)
				continue;
			w->lsn = v;
			w->cap_lsn = cap;
		}
		struct wlsn *l = calloc(1, sizeof(*l));
		if (!l)
			continue;
		l->ps = ps;
		l->w = w;
		loop_io_cb cb = ps->transport == SNAP_T_UDP ? on_udp_readable : on_accept;
		if (loop_io_add(w->loop, &l->io, ps->fds[w->idx], LOOP_READ, cb, l)) {
			free(l);
			continue;
		}
		psock_ref(ps);
		w->lsn[w->n_lsn++] = l;
	}
	rt_unref(w->rt);
	w->rt = rt;
	__atomic_store_n(&w->rt_seen, rt, __ATOMIC_RELEASE);
}

static void on_drain_deadline(struct timer *t)
{
	struct worker *w = t->arg;
	conn_drain_all(w, true);
	h2p_drain_all(w, true);
	l4_drain(w, true);
	loop_stop(w->loop);
}

static void start_drain(struct worker *w, uint32_t deadline_ms)
{
	w->draining = true;
	while (w->n_lsn)
		lsn_drop(w, w->n_lsn - 1);
	conn_drain_all(w, false);
	h2p_drain_all(w, false);
	l4_drain(w, false);
	if (!w->n_conns) {
		loop_stop(w->loop);
		return;
	}
	timer_add(w->loop, &w->drain_timer, deadline_ms, on_drain_deadline, w);
}

static void on_worker_wake(struct loop *loop, void *arg)
{
	struct worker *w = arg;
	(void)loop;
	struct rt *n = __atomic_exchange_n(&w->pending, NULL, __ATOMIC_ACQ_REL);
	if (n)
		adopt(w, n);
	take_handoffs(w);
	uint32_t dl = __atomic_load_n(&w->drain_req, __ATOMIC_ACQUIRE);
	if (dl && !w->draining)
		start_drain(w, dl - 1);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	on_worker_wake(w->loop, w);
	int r = loop_run(w->loop);
	w->stopped = true;
	h2p_worker_exit(w);
	if (r < 0)
		log_error("event=worker_failed worker=%u error=%s", w->idx, log_q(err_str(r)));
	return NULL;
}

/* ---- public API ---- */

static uint32_t dflt(uint32_t v, uint32_t d)
{
	return v ? v : d;
}

/* Fills the zero fields of l from base (the built-in defaults when base is
 * NULL) and derives the parser's limits. */
static void limits_resolve(struct px_limits *out, uint16_t port, const struct proxy_limits *l,
			   const struct proxy_limits *base)
{
	static const struct proxy_limits builtin = {
		.max_head_bytes = 16384,
		.max_request_line = 8192,
		.max_header_fields = 100,
		.head_timeout_ms = 10000,
		.body_idle_timeout_ms = 30000,
		.keepalive_timeout_ms = 75000,
		.connect_timeout_ms = 5000,
		.route_timeout_ms = 15000,
		.max_body_bytes = PX_MAX_BODY_DEFAULT,
		.max_connections = PX_MAX_CONNS_DEFAULT,
		.max_conns_per_client = PX_MAX_CONNS_PER_CLIENT_DEFAULT,
	};
	const struct proxy_limits *b = base ? base : &builtin;
	struct proxy_limits *o = &out->l;

	memset(out, 0, sizeof(*out));
	out->port = port;
	o->max_head_bytes = dflt(l->max_head_bytes, b->max_head_bytes);
	o->max_request_line = dflt(l->max_request_line, b->max_request_line);
	o->max_header_fields = dflt(l->max_header_fields, b->max_header_fields);
	if (o->max_header_fields > PX_MAX_HEADERS - 8)
		o->max_header_fields = PX_MAX_HEADERS - 8;
	o->head_timeout_ms = dflt(l->head_timeout_ms, b->head_timeout_ms);
	o->body_idle_timeout_ms = dflt(l->body_idle_timeout_ms, b->body_idle_timeout_ms);
	o->keepalive_timeout_ms = dflt(l->keepalive_timeout_ms, b->keepalive_timeout_ms);
	o->connect_timeout_ms = dflt(l->connect_timeout_ms, b->connect_timeout_ms);
	o->route_timeout_ms = dflt(l->route_timeout_ms, b->route_timeout_ms);
	o->max_body_bytes = l->max_body_bytes ? l->max_body_bytes : b->max_body_bytes;
	/* a listener has no cap of its own unless it says so: the box's holds */
	o->max_connections = dflt(l->max_connections, base ? UINT32_MAX : b->max_connections);
	o->max_conns_per_client = dflt(l->max_conns_per_client, b->max_conns_per_client);
	out->h1.max_head_bytes = o->max_head_bytes;
	out->h1.max_request_line = o->max_request_line;
	out->h1.max_header_fields = o->max_header_fields;
}

/*
 * The box's connection cap must be reached before the open file limit: past
 * that, accept() fails and the connection waits in the listen queue with
 * nobody to refuse it. A proxied connection holds two descriptors (client
 * and backend); PX_FD_RESERVE are kept for listeners, pools, the store,
 * the UI and logs.
 */
#define PX_FD_RESERVE 256

static void cap_by_open_files(struct proxy_limits *l)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1 || rl.rlim_cur == RLIM_INFINITY)
		return;
	uint64_t fit = rl.rlim_cur > 2 * PX_FD_RESERVE ? (rl.rlim_cur - PX_FD_RESERVE) / 2 : 64;
	if (l->max_connections <= fit)
		return;
	log_info("event=limits_adjusted limit=max-connections from=%u to=%llu "
		 "reason=\"open file limit %llu\"",
		 l->max_connections, (unsigned long long)fit, (unsigned long long)rl.rlim_cur);
	l->max_connections = (uint32_t)fit;
}

struct proxy *proxy_new(const struct proxy_config *cfg)
{
	struct proxy *p = calloc(1, sizeof(*p));
	if (!p)
		goto fail;
	pthread_mutex_init(&p->admit.mu, NULL);
	p->cfg = *cfg;
	limits_resolve(&p->lim_box, 0, &cfg->limits, NULL);
	cap_by_open_files(&p->lim_box.l);
	p->cfg.limits = p->lim_box.l;
	p->cfg.port_limits = NULL;
	p->cfg.n_port_limits = 0;
	p->hlim = p->lim_box.h1;
	uint32_t head_max = p->lim_box.l.max_head_bytes;
	if (cfg->n_port_limits) {
		p->lim_port = calloc(cfg->n_port_limits, sizeof(*p->lim_port));
		if (!p->lim_port)
			goto fail;
	}
	for (size_t i = 0; i < cfg->n_port_limits; i++) {
		struct px_limits *pl = &p->lim_port[p->n_lim_port++];
		limits_resolve(pl, cfg->port_limits[i].port, &cfg->port_limits[i].limits,
			       &p->lim_box.l);
		if (pl->l.max_head_bytes > head_max)
			head_max = pl->l.max_head_bytes;
	}
	/* every buffer can hold the largest head any listener accepts */
	p->buf_size = (head_max > 16384 ? head_max : 16384) + 2048;
	unsigned n = cfg->workers;
	if (!n) {
		long c = sysconf(_SC_NPROCESSORS_ONLN);
		n = c > 0 ? (unsigned)c : 1;
	}
	if (n > WG_MAX_WORKERS)
		n = WG_MAX_WORKERS;
	p->n_workers = n;
	p->workers = calloc(n, sizeof(*p->workers));
	if (!p->workers)
		goto fail;
	for (unsigned i = 0; i < n; i++) {
		struct worker *w = &p->workers[i];
		w->p = p;
		w->idx = i;
		w->loop = loop_new();
		w->cap_free_bufs = WBUF_FREE_MAX;
		w->free_bufs = calloc(WBUF_FREE_MAX, sizeof(char *));
		w->scratch = malloc(p->buf_size);
		if (!w->loop || !w->free_bufs || !w->scratch ||
		    loop_set_wake(w->loop, on_worker_wake, w))
			goto fail;
	}
	return p;
fail:
	log_error("event=proxy_new_failed error=%s", log_q(strerror(ENOMEM)));
	proxy_free(p);
	return NULL;
}

/*
 * With one worker per CPU the process may run on (its affinity mask, which
 * taskset or a board's init sets), worker i stays on the i-th of those
 * CPUs: its connections, buffers and sockets stay in one CPU's caches, and
 * the scheduler does not move two busy workers onto one CPU while the
 * other waits. Any other count leaves placement to the scheduler. Returns
 * whether the workers were pinned; a failure is only logged.
 */
static bool pin_workers(struct proxy *p)
{
	cpu_set_t allowed;
	int cpus[WG_MAX_WORKERS];
	unsigned n = 0;

	if (p->n_workers < 2 || sched_getaffinity(0, sizeof(allowed), &allowed) == -1 ||
	    (unsigned)CPU_COUNT(&allowed) != p->n_workers)
		return false;
	for (int cpu = 0; cpu < CPU_SETSIZE && n < p->n_workers; cpu++)
		if (CPU_ISSET(cpu, &allowed))
			cpus[n++] = cpu;
	for (unsigned i = 0; i < n; i++) {
		cpu_set_t one;
		CPU_ZERO(&one);
		CPU_SET(cpus[i], &one);
		int r = pthread_setaffinity_np(p->workers[i].thread, sizeof(one), &one);
		if (r) {
			log_warn("event=worker_pin_failed worker=%u cpu=%d error=%s", i, cpus[i],
				 log_q(strerror(r)));
			return false;
		}
	}
	return true;
}

int proxy_start(struct proxy *p)
{
	pthread_attr_t attr;

	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 512 * 1024);
	for (unsigned i = 0; i < p->n_workers; i++) {
		struct worker *w = &p->workers[i];
		int r = pthread_create(&w->thread, &attr, worker_main, w);
		if (r) {
			pthread_attr_destroy(&attr);
			log_error("event=worker_start_failed worker=%u error=%s", i,
				  log_q(strerror(r)));
			return -r;
		}
		w->started = true;
	}
	pthread_attr_destroy(&attr);
	p->started = true;
	bool pinned = pin_workers(p);
	log_info("event=proxy_started workers=%u pinned=%s", p->n_workers,
		 pinned ? "true" : "false");
	return 0;
}

static bool serves_http(const struct snap_socket *s)
{
	if (s->transport != SNAP_T_TCP)
		return false;
	for (size_t i = 0; i < s->n_listeners; i++)
		if (snap_listener_is_http(s->listeners[i]))
			return true;
	return false;
}

static uint64_t mono_us(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000u + (uint64_t)t.tv_nsec / 1000u;
}

int proxy_publish(struct proxy *p, struct snapshot *snap, struct diag *d)
{
	uint64_t t0 = mono_us();
	struct rt_delta delta = {0};
	struct rt *rt = rt_build_from(snap, p->current, &delta, d);
	if (!rt) {
		snap_unref(snap);
		return -ENOMEM;
	}
	if (tlsg_backends_build(rt, p->current, &p->cfg, d) < 0) {
		rt_delta_fini(&delta);
		rt_unref(rt);
		return -ENOMEM;
	}
	for (size_t i = 0; i < rt->n_sockets; i++) {
		struct rt_socket *rs = &rt->sockets[i];
		bool l4 = l4_socket_is_l4(rs->s);
		if (!l4 && !serves_http(rs->s))
			continue;
		if (l4 && l4_sock_build(rt, rs, p->current, &p->cfg, d) < 0)
			continue;
		/* HTTPS listeners, also those reached after an L4 socket's SNI peek;
		 * an L4 socket without them still serves its TLS/TCP routes */
		if (rs->tls && tlsg_server_build(rs, p->current, &p->cfg, d) < 0 && !l4)
			continue;
		for (size_t k = 0; k < p->n_socks; k++) {
			if (p->socks[k]->port == rs->s->port &&
			    p->socks[k]->transport == rs->s->transport &&
			    !strcmp(p->socks[k]->addr, rs->s->addr)) {
				rs->ps = p->socks[k];
				psock_ref(rs->ps);
				break;
			}
		}
		if (!rs->ps)
			rs->ps = psock_open(p, rs->s, d);
	}
	/* the control table: exactly the sockets of the new rt */
	struct psock **tab = calloc(rt->n_sockets ? rt->n_sockets : 1, sizeof(*tab));
	size_t n_tab = 0;
	if (!tab) {
		rt_delta_fini(&delta);
		rt_unref(rt);
		return -ENOMEM;
	}
	for (size_t i = 0; i < rt->n_sockets; i++) {
		if (rt->sockets[i].ps) {
			psock_ref(rt->sockets[i].ps);
			tab[n_tab++] = rt->sockets[i].ps;
		}
	}
	for (size_t k = 0; k < p->n_socks; k++)
		psock_unref(p->socks[k]);
	free(p->socks);
	p->socks = tab;
	p->n_socks = n_tab;

	/* route rule ids: the same (route, rule index) keeps its counters; an
	 * L4 route is one rule, index 0 (gwapi pools the backends of its rules).
	 * HTTP rules kept from the last rt keep their id and are still served;
	 * only the rules made and dropped change the registry. */
	uint64_t gen = ++p->publishes;
	for (size_t k = 0; k < delta.n_fresh; k++) {
		struct rt_rule *rr = delta.fresh[k];
		rr->stat_id = rstat_id(&p->rstats, rr->r->route, rr->r->rule_index, gen);
		rstat_serve(&p->rstats, rr->stat_id, 1);
	}
	for (size_t k = 0; k < delta.n_dropped; k++)
		rstat_serve(&p->rstats, delta.dropped[k]->stat_id, -1);
	size_t n_made = delta.n_fresh, n_dropped = delta.n_dropped;
	bool whole = delta.whole;
	rt_delta_fini(&delta);
	for (size_t i = 0; i < snap->n_listeners; i++) {
		struct rt_listener *rl = &rt->listeners[i];
		const struct snap_listener *l = rl->l;
		for (size_t k = 0; rl->tls_stat_ids && k < l->n_tls_routes; k++)
			rl->tls_stat_ids[k] = rstat_id(&p->rstats, l->tls_routes[k].route, 0, gen);
		if (l->proto == SNAP_P_TCP || l->proto == SNAP_P_UDP)
			rl->l4_stat_id = rstat_id(&p->rstats, l->l4_route, 0, gen);
	}
	rstat_reg_publish(&p->rstats, gen);

	struct rt *old = p->current;
	p->current = rt;
	for (unsigned i = 0; i < p->n_workers; i++) {
		struct worker *w = &p->workers[i];
		rt_ref(rt);
		struct rt *prev = __atomic_exchange_n(&w->pending, rt, __ATOMIC_ACQ_REL);
		rt_unref(prev);
		loop_wake(w->loop);
	}
	rt_unref(old);
	log_debug("event=published revision=%llu sockets=%zu rules_made=%zu rules_dropped=%zu "
		  "whole=%s us=%llu",
		  (unsigned long long)snap->revision, n_tab, n_made, n_dropped,
		  whole ? "true" : "false", (unsigned long long)(mono_us() - t0));
	return 0;
}

void proxy_drain(struct proxy *p, uint32_t deadline_ms)
{
	if (!p || !p->started || p->drained)
		return;
	for (unsigned i = 0; i < p->n_workers; i++) {
		struct worker *w = &p->workers[i];
		__atomic_store_n(&w->drain_req, deadline_ms + 1, __ATOMIC_RELEASE);
		loop_wake(w->loop);
	}
	for (unsigned i = 0; i < p->n_workers; i++)
		if (p->workers[i].started)
			pthread_join(p->workers[i].thread, NULL);
	p->drained = true;
	log_info("event=proxy_drained");
}

void proxy_free(struct proxy *p)
{
	if (!p)
		return;
	proxy_drain(p, 0);
	for (unsigned i = 0; p->workers && i < p->n_workers; i++) {
		struct worker *w = &p->workers[i];
		if (!w->loop) {
			free(w->free_bufs);
			free(w->scratch);
			continue;
		}
		w->stopped = true;
		w->draining = true;
		take_handoffs(w); /* closes what is still on the way */
		conn_drain_all(w, true);
		h2p_drain_all(w, true);
		while (w->n_lsn)
			lsn_drop(w, w->n_lsn - 1);
		free(w->lsn);
		conn_mirrors_free(w);
		l4_worker_free(w);
		upep_free_all(w);
		conn_free_cached(w);
		rt_unref(w->rt);
		rt_unref(w->pending);
		timer_cancel(w->loop, &w->trim_timer);
		for (size_t k = 0; k < w->n_free_bufs; k++)
			free(w->free_bufs[k]);
		free(w->free_bufs);
		free(w->scratch);
		rstat_worker_fini(&w->rstats);
		loop_free(w->loop);
	}
	for (size_t k = 0; k < p->n_socks; k++)
		psock_unref(p->socks[k]);
	free(p->socks);
	rt_unref(p->current);
	rstat_reg_fini(&p->rstats);
	free(p->workers);
	peer_tab_fini(&p->admit.peers);
	free(p->admit.ports);
	pthread_mutex_destroy(&p->admit.mu);
	free(p->lim_port);
	free(p);
}

#define LOAD(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)

void proxy_get_stats(const struct proxy *p, struct proxy_stats *out)
{
	memset(out, 0, sizeof(*out));
	for (unsigned i = 0; i < p->n_workers; i++) {
		const struct worker_stats *s = &p->workers[i].stats;
		out->requests += LOAD(s->requests);
		for (int k = 0; k < 6; k++)
			out->responses_by_class[k] += LOAD(s->responses_by_class[k]);
		out->bytes_in += LOAD(s->bytes_in);
		out->bytes_out += LOAD(s->bytes_out);
		out->upstream_errors += LOAD(s->upstream_errors);
		out->active_connections += LOAD(s->active_connections);
		out->total_connections += LOAD(s->total_connections);
		for (int k = 0; k < 12; k++)
			out->latency_buckets[k] += LOAD(s->latency_buckets[k]);
		out->latency_sum_us += LOAD(s->latency_sum_us);
	}
}

size_t proxy_route_stats(const struct proxy *p, struct proxy_route_stats *out, size_t max)
{
	struct rstat_worker *ws[WG_MAX_WORKERS];
	size_t n = 0;

	for (unsigned i = 0; i < p->n_workers && n < WG_MAX_WORKERS; i++)
		ws[n++] = &p->workers[i].rstats;
	return rstat_collect(&p->rstats, ws, n, out, max);
}
