/* SPDX-License-Identifier: MIT */
/*
 * l4.c: TCP and TLS streams of the L4 data plane (TCPRoute, TLSRoute).
 * An accepted connection on a socket with TLS listeners first waits for the
 * ClientHello without consuming it (MSG_PEEK, SO_RCVLOWAT so that epoll
 * wakes only when more bytes came, a size bound and a deadline), reads the
 * SNI (tls_peek_sni) and picks the listener that owns the name: an HTTPS
 * listener gets the untouched connection back through conn_accept(); a TLS
 * Passthrough listener connects to the backend of the TLSRoute that matches
 * and splices the bytes, ClientHello included; a TLS Terminate listener
 * completes the handshake with the listener's certificate and forwards the
 * plain bytes. A TCP listener connects at once. No route, no SNI where one
 * is needed, or no usable backend: the connection is reset.
 *
 * The relay moves each direction through a pipe with splice(2) (bytes never
 * enter user space) or, with TLS on the client side, through a buffer. A
 * source's end (EOF or close_notify) becomes shutdown(SHUT_WR) on the other
 * side once everything before it is delivered, so half-closed protocols
 * work; the stream ends when both directions have ended, when either side
 * fails (the other side is then reset), or when nothing moved for the idle
 * timeout. Connect failures feed the endpoints' passive health
 * (upstream.c) and another endpoint is tried.
 *
 * Traffic per route (rstats.c): a connection routed to a TCPRoute or a
 * TLSRoute counts as one request of the route's rule 0 from the moment the
 * route is chosen (before the connect, or before the Terminate handshake).
 * Bytes are counted as they move (client to backend in, backend to client
 * out), so a long stream shows its traffic while it lasts; at its end the
 * stream gets a response class and its duration (l4_class):
 *
 *   2xx  it reached a backend and ended (both sides closed, idle timeout,
 *        drain);
 *   4xx  the client failed: reset, TLS handshake or record error, or went
 *        away while the backend was being connected;
 *   5xx  no backend was reached (none usable, every connect refused or
 *        timed out), the backend reset or failed while relaying, or waygate
 *        failed it (no certificate, out of memory).
 *
 * Each failed connect attempt is an upstream error of the rule.
 *
 * Besides tlsglue.c, this is the one file of proxy/ that calls tls/: the
 * SNI peek and the Terminate contexts, built at publish time on the control
 * thread (l4_sock_build); everything else runs on the worker owning the
 * connection. Routing state is read from the worker's rt while connecting,
 * then dropped: a stream in flight never depends on the snapshot.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/arena.h"
#include "core/err.h"
#include "core/hash.h"
#include "core/log.h"
#include "proxy/l4.h"
#include "tls/tls.h"

#define SPLICE_LEN (1u << 20)
#define MAX_CONNECT_ATTEMPTS 3

enum l4_state {
	L4_ST_PEEK = 0,  /* waiting for the whole ClientHello */
	L4_ST_HANDSHAKE, /* Terminate: TLS handshake with the client */
	L4_ST_CONNECT,   /* connecting to an endpoint */
	L4_ST_RELAY,     /* moving bytes both ways */
};

/* The side whose failure ended a stream: decides its response class. */
enum l4_fault {
	L4_FAULT_NONE = 0, /* ended normally, or for a reason of its own state */
	L4_FAULT_CLIENT,
	L4_FAULT_BACKEND,
	L4_FAULT_PROXY, /* waygate: out of memory, no certificate, splice */
};

/* One direction of a stream. A source that ended is `eof`; once every byte
 * before the end reached the sink, the end is passed on (`shut`). */
struct l4dir {
	int pipe[2];    /* splice mode; -1 when buffered */
	size_t in_pipe; /* bytes sitting in the pipe */
	struct buf b;   /* buffered mode */
	bool eof;
	bool shut;
	bool full; /* splice: the pipe took nothing more; wait for the sink */
};

struct l4conn {
	struct l4conn *prev, *next; /* the worker's live list */
	struct l4conn *next_dead;
	struct worker *w;
	enum l4_state st;
	bool closed;
	int cfd, ufd;
	struct loop_io cio, uio;
	bool c_reg, u_reg;
	/* readiness as last seen: try the syscall only when it may succeed */
	bool c_rd, c_wr, u_rd, u_wr;
	bool tls_want_write; /* Terminate: mbedTLS needs the client writable */
	size_t tls_wlen;     /* Terminate: length of a tls_write to repeat, 0 = none */
	uint64_t moves;      /* anything read, written or ended: progress */
	struct timer timer;
	uint64_t start_ms, last_ms;
	struct tls_conn *tls;
	bool splice;
	struct l4dir up;   /* client → backend */
	struct l4dir down; /* backend → client */
	struct psock *ps;  /* PEEK: the listening socket (a reference) */
	struct px_limits *lim;      /* the listener port's */
	struct admit_ticket ticket; /* its place under the connection caps */
	struct sockaddr_storage peer;
	socklen_t peer_len;
	size_t peeked;
	/* while connecting: the rt holding the backend (a reference) */
	struct rt *rt;
	const struct snap_backend *be;
	struct upep *ep;
	unsigned attempts;
	const char *kind;
	char peer_s[64];
	char sni[256];
	char route[128];
	uint64_t bytes_up, bytes_down;
	struct route_ctr *rctr; /* the route rule's counters once routed, or NULL */
	enum l4_fault fault;
};

static void l4_close(struct l4conn *c, const char *why, bool reset);
static void l4_fail(struct l4conn *c, enum l4_fault fault, const char *why);
static void relay(struct l4conn *c);
static void connect_next(struct l4conn *c);

static inline struct l4_worker *LW(const struct l4conn *c)
{
	return c->w->l4;
}

/* ---- publish (control thread) ---- */

bool l4_socket_is_l4(const struct snap_socket *s)
{
	if (s->transport == SNAP_T_UDP)
		return true;
	for (size_t i = 0; i < s->n_listeners; i++)
		if (s->listeners[i]->proto == SNAP_P_TLS || s->listeners[i]->proto == SNAP_P_TCP)
			return true;
	return false;
}

static uint64_t hash_str(uint64_t h, const char *s)
{
	return hash_mix(h, s ? hash_bytes(s, strlen(s)) : 0x5a5a);
}

static void sock_cleanup(void *arg)
{
	struct l4_sock *ls = arg;
	if (ls->tls_server) {
		tls_server_unref(ls->tls_server);
		ls->tls_server = NULL;
	}
}

int l4_sock_build(struct rt *rt, struct rt_socket *rs, const struct rt *prev,
		  const struct proxy_config *cfg, struct diag *d)
{
	struct tls_cert_pem certs[64];
	size_t n = 0;
	uint64_t key = 0x4c34;
	struct l4_sock *ls = arena_zalloc(rt->arena, sizeof(*ls));

	if (!ls || arena_cleanup_add(rt->arena, sock_cleanup, ls))
		return -ENOMEM;
	rs->l4 = ls;
	for (size_t i = 0; i < rs->s->n_listeners; i++) {
		const struct snap_listener *l = rs->s->listeners[i];
		if (l->proto != SNAP_P_TLS || l->tls_mode != SNAP_TLS_TERMINATE)
			continue;
		for (size_t k = 0; k < l->n_certs && n < sizeof(certs) / sizeof(certs[0]); k++) {
			certs[n].cert_pem = l->certs[k].cert_pem;
			certs[n].key_pem = l->certs[k].key_pem;
			certs[n].name = l->certs[k].name;
			key = hash_str(hash_str(key, l->certs[k].cert_pem), l->certs[k].key_pem);
			n++;
		}
	}
	if (!n)
		return 0;
	key = hash_mix(key, (uint64_t)cfg->cipher_pref);
	ls->tls_key = key;
	for (size_t i = 0; prev && i < prev->n_sockets; i++) {
		const struct rt_socket *o = &prev->sockets[i];
		if (o->l4 && o->l4->tls_server && o->l4->tls_key == key &&
		    o->s->port == rs->s->port && !strcmp(o->s->addr, rs->s->addr)) {
			tls_server_ref(o->l4->tls_server);
			ls->tls_server = o->l4->tls_server;
			return 0;
		}
	}
	struct tls_server_opts o = {
		.certs = certs,
		.n_certs = n,
		.cipher_pref = (enum tls_cipher_pref)cfg->cipher_pref,
	};
	ls->tls_server = tls_server_new(&o, d);
	if (!ls->tls_server)
		log_warn("event=l4_terminate_unusable addr=%s port=%u", log_q(rs->s->addr),
			 rs->s->port);
	return 0;
}

/* ---- per-worker state ---- */

struct l4_worker *l4_worker_get(struct worker *w)
{
	if (w->l4)
		return w->l4;
	struct l4_worker *lw = calloc(1, sizeof(*lw));
	if (!lw)
		return NULL;
	lw->peek = malloc(L4_PEEK_MAX);
	lw->pipes = calloc(L4_PIPE_FREE_MAX, sizeof(*lw->pipes));
	if (!lw->peek || !lw->pipes || l4_stab_init(&lw->sessions, L4_UDP_MAX_SESSIONS)) {
		free(lw->peek);
		free(lw->pipes);
		l4_stab_fini(&lw->sessions);
		free(lw);
		return NULL;
	}
	w->l4 = lw;
	return lw;
}

static int pipe_get(struct l4_worker *lw, int p[2])
{
	if (lw->n_pipes) {
		lw->n_pipes--;
		p[0] = lw->pipes[lw->n_pipes][0];
		p[1] = lw->pipes[lw->n_pipes][1];
		return 0;
	}
	if (pipe2(p, O_NONBLOCK | O_CLOEXEC) == -1)
		return -errno;
	/* a bigger pipe moves more per splice: fewer calls on bulk transfers;
	 * pages are only used while bytes sit in it. Best effort. */
	fcntl(p[1], F_SETPIPE_SZ, L4_PIPE_BYTES);
	return 0;
}

/* Only an empty pipe is reused; one with bytes left is closed. */
static void pipe_put(struct l4_worker *lw, struct l4dir *d)
{
	if (d->pipe[0] < 0)
		return;
	if (!d->in_pipe && lw && lw->n_pipes < L4_PIPE_FREE_MAX) {
		lw->pipes[lw->n_pipes][0] = d->pipe[0];
		lw->pipes[lw->n_pipes][1] = d->pipe[1];
		lw->n_pipes++;
	} else {
		close(d->pipe[0]);
		close(d->pipe[1]);
	}
	d->pipe[0] = d->pipe[1] = -1;
	d->in_pipe = 0;
}

/* ---- I/O registration ---- */

static void on_cio(struct loop_io *io, uint32_t events);
static void on_uio(struct loop_io *io, uint32_t events);

static void io_set(struct l4conn *c, bool client, uint32_t events)
{
	struct loop *loop = c->w->loop;
	struct loop_io *io = client ? &c->cio : &c->uio;
	bool *reg = client ? &c->c_reg : &c->u_reg;
	int fd = client ? c->cfd : c->ufd;

	if (fd < 0)
		return;
	if (!*reg) {
		if (!events)
			return;
		if (loop_io_add(loop, io, fd, events, client ? on_cio : on_uio, c) == 0)
			*reg = true;
		return;
	}
	loop_io_mod(loop, io, events);
}

static void io_drop(struct l4conn *c, bool client)
{
	if (client && c->c_reg) {
		loop_io_del(c->w->loop, &c->cio);
		c->c_reg = false;
	} else if (!client && c->u_reg) {
		loop_io_del(c->w->loop, &c->uio);
		c->u_reg = false;
	}
}

/* ---- teardown ---- */

static void free_dead(void *arg)
{
	struct worker *w = arg;
	struct l4_worker *lw = w->l4;
	if (!lw)
		return;
	lw->dead_scheduled = false;
	while (lw->dead_conns) {
		struct l4conn *c = lw->dead_conns;
		lw->dead_conns = c->next_dead;
		free(c);
	}
}

static void set_linger0(int fd)
{
	struct linger lg = {.l_onoff = 1, .l_linger = 0};
	if (fd >= 0)
		setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
}

/* The response class a stream ends with in its route's counters (see the
 * top of the file). */
static int l4_class(const struct l4conn *c)
{
	switch (c->fault) {
	case L4_FAULT_CLIENT: return 400;
	case L4_FAULT_BACKEND: return 502;
	case L4_FAULT_PROXY: return 500;
	case L4_FAULT_NONE: break;
	}
	return c->st == L4_ST_RELAY ? 200 : 503;
}

/* The one way a stream ends: frees, cancels, counts and logs once. reset:
 * end both sides with RST instead of FIN (a failure on one side is passed
 * on as a failure). */
static void l4_close(struct l4conn *c, const char *why, bool reset)
{
	struct worker *w = c->w;
	struct l4_worker *lw = LW(c);

	if (c->closed)
		return;
	c->closed = true;
	timer_cancel(w->loop, &c->timer);
	io_drop(c, true);
	io_drop(c, false);
	if (c->tls) {
		if (!reset && c->st == L4_ST_RELAY && !c->down.shut)
			tls_close_notify(c->tls);
		tls_conn_free(c->tls);
		c->tls = NULL;
	}
	if (reset) {
		set_linger0(c->cfd);
		set_linger0(c->ufd);
	}
	if (c->cfd >= 0)
		close(c->cfd);
	if (c->ufd >= 0)
		close(c->ufd);
	pipe_put(lw, &c->up);
	pipe_put(lw, &c->down);
	wbuf_put(w, &c->up.b);
	wbuf_put(w, &c->down.b);
	if (c->ps)
		psock_unref(c->ps);
	if (c->rt)
		rt_unref(c->rt);
	rstat_done(c->rctr, l4_class(c), 0, 0, loop_now_ms(w->loop) - c->start_ms);
	/* info for what an operator acts on (a backend failing), debug for
	 * what clients do (no route, resets, normal ends): no flood on a scan */
	enum log_level lvl = reset && c->st == L4_ST_CONNECT ? LOG_INFO : LOG_DEBUG;
	if (log_enabled(lvl))
		log_msg(lvl,
			"event=l4_close kind=%s peer=%s sni=%s route=%s endpoint=%s:%u "
			"bytes_up=%llu bytes_down=%llu ms=%llu reason=%s",
			c->kind, log_q(c->peer_s), log_q(c->sni[0] ? c->sni : "-"),
			log_q(c->route[0] ? c->route : "-"), c->ep ? log_q(c->ep->addr) : "-",
			c->ep ? c->ep->port : 0, (unsigned long long)c->bytes_up,
			(unsigned long long)c->bytes_down,
			(unsigned long long)(loop_now_ms(w->loop) - c->start_ms), log_q(why));
	/* unlink */
	if (c->prev)
		c->prev->next = c->next;
	else
		lw->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	lw->n_conns--;
	wk_conns_add(w, -1);
	admit_release(w->p, &c->ticket);
	STAT_ADD(w, active_connections, (uint64_t)-1);
	STAT_ADD(w, bytes_in, c->bytes_up);
	STAT_ADD(w, bytes_out, c->bytes_down);
	c->next_dead = lw->dead_conns;
	lw->dead_conns = c;
	if (!lw->dead_scheduled && loop_defer(w->loop, free_dead, w) == 0)
		lw->dead_scheduled = true;
	if (w->draining && !w->n_conns)
		loop_stop(w->loop);
}

/* Ends c with a reset, the failure put on fault's side. */
static void l4_fail(struct l4conn *c, enum l4_fault fault, const char *why)
{
	c->fault = fault;
	l4_close(c, why, true);
}

/* A connect attempt failed: the endpoint's health and the rule's count. */
static void connect_failed(struct l4conn *c)
{
	upep_result(c->w, c->ep, false);
	if (c->rctr)
		RCTR_ADD(c->rctr, upstream_errors, 1);
}

/* c is routed to the rule with this id: one request of it. */
static void count_routed(struct l4conn *c, uint32_t stat_id)
{
	if ((c->rctr = rstat_ctr(&c->w->rstats, stat_id)))
		RCTR_ADD(c->rctr, requests, 1);
}

/* ---- timers ---- */

static void on_timer(struct timer *t)
{
	struct l4conn *c = t->arg;
	uint64_t now = loop_now_ms(c->w->loop);

	switch (c->st) {
	case L4_ST_PEEK: l4_close(c, "no complete ClientHello in time", true); return;
	case L4_ST_HANDSHAKE: l4_fail(c, L4_FAULT_CLIENT, "tls handshake timeout"); return;
	case L4_ST_CONNECT:
		/* this endpoint failed; another one may answer */
		log_debug("event=l4_connect_failed endpoint=%s:%u error=timeout",
			  log_q(c->ep->addr), c->ep->port);
		connect_failed(c);
		io_drop(c, false);
		close(c->ufd);
		c->ufd = -1;
		connect_next(c);
		return;
	case L4_ST_RELAY:
		if (now - c->last_ms >= L4_TCP_IDLE_MS) {
			l4_close(c, "idle timeout", false);
			return;
		}
		timer_add(c->w->loop, &c->timer, L4_TCP_IDLE_MS - (now - c->last_ms), on_timer, c);
		return;
	}
}

/* ---- connecting ---- */

static void connect_next(struct l4conn *c)
{
	struct worker *w = c->w;

	for (;;) {
		if (c->attempts >= MAX_CONNECT_ATTEMPTS || c->attempts >= c->be->n_endpoints) {
			STAT_ADD(w, upstream_errors, 1);
			l4_fail(c, L4_FAULT_BACKEND, "backend unreachable");
			return;
		}
		c->attempts++;
		c->ep = up_pick_endpoint(w, c->be);
		if (!c->ep) {
			l4_fail(c, L4_FAULT_PROXY, "out of memory");
			return;
		}
		int fd = up_connect(c->ep->addr, c->ep->port);
		if (fd >= 0) {
			c->ufd = fd;
			c->u_wr = false;
			c->st = L4_ST_CONNECT;
			io_set(c, false, LOOP_WRITE);
			if (!c->u_reg) {
				l4_fail(c, L4_FAULT_PROXY, "out of memory");
				return;
			}
			timer_add(w->loop, &c->timer, c->lim->l.connect_timeout_ms, on_timer, c);
			return;
		}
		connect_failed(c);
		log_debug("event=l4_connect_failed endpoint=%s:%u error=%s", log_q(c->ep->addr),
			  c->ep->port, log_q(err_str(fd)));
	}
}

/* Counts c as routed to the rule stat_id of route, and starts connecting
 * to a backend drawn from v by weight; resets the client when there is no
 * usable one. */
static void start_backend(struct l4conn *c, const char *route, uint32_t stat_id,
			  const struct snap_backend *v, size_t n)
{
	const struct snap_backend *b = l4_pick_backend(v, n, rand_u64());

	str_lcpy(c->route, route ? route : "-", sizeof(c->route));
	count_routed(c, stat_id);
	if (!l4_backend_usable(b)) {
		l4_close(c, b ? "backend not usable" : "no backend", true);
		return;
	}
	c->be = b;
	rt_ref(c->w->rt);
	c->rt = c->w->rt;
	connect_next(c);
}

static void start_relay(struct l4conn *c)
{
	struct worker *w = c->w;

	rt_unref(c->rt);
	c->rt = NULL;
	c->be = NULL;
	c->st = L4_ST_RELAY;
	c->up.pipe[0] = c->up.pipe[1] = c->down.pipe[0] = c->down.pipe[1] = -1;
	c->splice = !c->tls;
	if (c->splice && (pipe_get(LW(c), c->up.pipe) < 0 || pipe_get(LW(c), c->down.pipe) < 0)) {
		pipe_put(LW(c), &c->up);
		c->splice = false;
	}
	if (!c->splice && (wbuf_get(w, &c->up.b) < 0 || wbuf_get(w, &c->down.b) < 0)) {
		l4_fail(c, L4_FAULT_PROXY, "out of memory");
		return;
	}
	/* TLS clients have sent already (the ClientHello, maybe more under
	 * mbedTLS); a plain TCP client or a backend that just accepted may
	 * not have: wait until epoll says so rather than try in vain */
	c->c_rd = strcmp(c->kind, "tcp") != 0;
	c->u_rd = false;
	c->u_wr = c->c_wr = true;
	c->last_ms = loop_now_ms(w->loop);
	timer_cancel(w->loop, &c->timer);
	timer_add(w->loop, &c->timer, L4_TCP_IDLE_MS, on_timer, c);
	relay(c);
}

static void connect_done(struct l4conn *c)
{
	int err = 0;
	socklen_t el = sizeof(err);

	if (getsockopt(c->ufd, SOL_SOCKET, SO_ERROR, &err, &el) == -1)
		err = errno;
	if (err) {
		log_debug("event=l4_connect_failed endpoint=%s:%u error=%s", log_q(c->ep->addr),
			  c->ep->port, log_q(strerror(err)));
		connect_failed(c);
		io_drop(c, false);
		close(c->ufd);
		c->ufd = -1;
		timer_cancel(c->w->loop, &c->timer);
		connect_next(c);
		return;
	}
	upep_result(c->w, c->ep, true);
	start_relay(c);
}

/* ---- SNI peek and listener choice ---- */

static void hand_to_http(struct l4conn *c)
{
	struct worker *w = c->w;
	struct wlsn tmp = {.ps = c->ps, .w = w};
	int fd = c->cfd;
	struct sockaddr_storage ss = c->peer;
	socklen_t sl = c->peer_len;
	int one = 1;

	if (c->peeked)
		setsockopt(fd, SOL_SOCKET, SO_RCVLOWAT, &one, sizeof(one));
	io_drop(c, true);
	c->cfd = -1;
	psock_ref(tmp.ps);
	STAT_ADD(w, total_connections, (uint64_t)-1); /* conn_accept counts it */
	l4_close(c, "handed to https", false);
	conn_accept(w, &tmp, fd, (struct sockaddr *)&ss, sl);
	psock_unref(tmp.ps);
}

static void start_handshake(struct l4conn *c);

/* The ClientHello is complete: sni is the name ("" without one). */
static void route_tls(struct l4conn *c, struct rt_socket *rs)
{
	const struct snap_socket *s = rs->s;
	int one = 1;
	int li = l4_listener_for_sni(s, c->sni);

	if (li < 0) {
		l4_close(c, "no listener for this server name", true);
		return;
	}
	const struct snap_listener *l = s->listeners[li];
	if (l->proto == SNAP_P_HTTPS) {
		hand_to_http(c);
		return;
	}
	if (c->peeked)
		setsockopt(c->cfd, SOL_SOCKET, SO_RCVLOWAT, &one, sizeof(one));
	psock_unref(c->ps);
	c->ps = NULL;
	if (l->proto != SNAP_P_TLS) {
		l4_close(c, "not a TLS listener", true);
		return;
	}
	const struct snap_tls_route *r = l4_tls_route_for_sni(l, c->sni);
	if (!r) {
		l4_close(c, "no route for this server name", true);
		return;
	}
	if (l->tls_mode == SNAP_TLS_PASSTHROUGH) {
		c->kind = "tls-passthrough";
		io_set(c, true, 0);
		start_backend(c, r->route, l4_stat_id(rs, (size_t)li, r), r->backends,
			      r->n_backends);
		return;
	}
	c->kind = "tls-terminate";
	/* choose before the handshake: a name nobody routes costs no crypto */
	const struct snap_backend *b = l4_pick_backend(r->backends, r->n_backends, rand_u64());
	str_lcpy(c->route, r->route, sizeof(c->route));
	count_routed(c, l4_stat_id(rs, (size_t)li, r));
	if (!l4_backend_usable(b)) {
		l4_close(c, b ? "backend not usable" : "no backend", true);
		return;
	}
	if (!rs->l4 || !rs->l4->tls_server) {
		l4_fail(c, L4_FAULT_PROXY, "no usable certificate");
		return;
	}
	c->tls = tls_conn_server(rs->l4->tls_server, c->cfd);
	if (!c->tls) {
		l4_fail(c, L4_FAULT_PROXY, "out of memory");
		return;
	}
	c->be = b;
	rt_ref(c->w->rt);
	c->rt = c->w->rt;
	start_handshake(c);
}

static void do_peek(struct l4conn *c)
{
	struct worker *w = c->w;
	struct l4_worker *lw = LW(c);
	struct rt_socket *rs = w->rt ? rt_socket_by_id(w->rt, c->ps->id) : NULL;

	if (!rs || !rs->l4) {
		l4_close(c, "listener gone", true);
		return;
	}
	ssize_t n = recv(c->cfd, lw->peek, L4_PEEK_MAX, MSG_PEEK);
	if (n == 0) {
		l4_close(c, "closed before the ClientHello", false);
		return;
	}
	if (n == -1) {
		if (errno == EAGAIN || errno == EINTR)
			return;
		l4_close(c, strerror(errno), true);
		return;
	}
	int r = tls_peek_sni(lw->peek, (size_t)n, c->sni, sizeof(c->sni));
	if (r == 0) {
		if ((size_t)n >= L4_PEEK_MAX) {
			l4_close(c, "ClientHello too large", true);
			return;
		}
		/* wake again only when more bytes arrived */
		int low = (int)n + 1;
		c->peeked = (size_t)n;
		setsockopt(c->cfd, SOL_SOCKET, SO_RCVLOWAT, &low, sizeof(low));
		return;
	}
	if (r == -WG_ENOTFOUND) {
		c->sni[0] = '\0';
	} else if (r < 0) {
		c->sni[0] = '\0';
		l4_close(c, r == -WG_ELIMIT ? "ClientHello too large" : "not a TLS ClientHello",
			 true);
		return;
	}
	route_tls(c, rs);
}

/* ---- Terminate handshake ---- */

static void start_handshake(struct l4conn *c)
{
	c->st = L4_ST_HANDSHAKE;
	int r = tls_handshake(c->tls);
	if (r == 0) {
		if (c->c_reg)
			io_set(c, true, 0);
		timer_cancel(c->w->loop, &c->timer);
		connect_next(c);
		return;
	}
	if (r == -WG_EAGAIN_READ) {
		io_set(c, true, LOOP_READ);
		return;
	}
	if (r == -WG_EAGAIN_WRITE) {
		io_set(c, true, LOOP_WRITE);
		return;
	}
	const char *e = tls_conn_error(c->tls);
	l4_fail(c, L4_FAULT_CLIENT, e ? e : "tls handshake failed");
}

/* ---- relay ---- */

/* Reads into d from the client or the backend. > 0 bytes, 0 end, -1 would
 * block (readiness cleared), -2 failure (closed). */
static ssize_t src_read(struct l4conn *c, struct l4dir *d, bool from_client)
{
	ssize_t n;
	int fd = from_client ? c->cfd : c->ufd;
	bool *rd = from_client ? &c->c_rd : &c->u_rd;

	if (c->splice) {
		n = splice(fd, NULL, d->pipe[1], NULL, SPLICE_LEN,
			   SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
		if (n > 0) {
			d->in_pipe += (size_t)n;
			return n;
		}
		if (n == 0)
			return 0;
		if (errno == EAGAIN) {
			if (d->in_pipe)
				d->full = true; /* the pipe, or the socket: the sink decides */
			else
				*rd = false;
			return -1;
		}
		if (errno == EINTR)
			return -1;
		if (errno == EINVAL) {
			/* should not happen for TCP; fall back to copying */
			return -3;
		}
		l4_fail(c, from_client ? L4_FAULT_CLIENT : L4_FAULT_BACKEND, strerror(errno));
		return -2;
	}
	if (!buf_room(&d->b))
		buf_compact(&d->b);
	if (!buf_room(&d->b))
		return -1;
	if (from_client && c->tls) {
		n = tls_read(c->tls, buf_wptr(&d->b), buf_room(&d->b));
		if (n > 0) {
			buf_commit(&d->b, (size_t)n);
			return n;
		}
		if (n == 0)
			return 0;
		if (n == -WG_EAGAIN_READ) {
			*rd = false;
			return -1;
		}
		if (n == -WG_EAGAIN_WRITE) {
			c->c_wr = false;
			c->tls_want_write = true;
			return -1;
		}
		const char *e = tls_conn_error(c->tls);
		l4_fail(c, L4_FAULT_CLIENT, e ? e : "tls read failed");
		return -2;
	}
	n = recv(fd, buf_wptr(&d->b), buf_room(&d->b), 0);
	if (n > 0) {
		buf_commit(&d->b, (size_t)n);
		return n;
	}
	if (n == 0)
		return 0;
	if (errno == EAGAIN || errno == EINTR) {
		*rd = false;
		return -1;
	}
	l4_fail(c, from_client ? L4_FAULT_CLIENT : L4_FAULT_BACKEND, strerror(errno));
	return -2;
}

/* Writes what d holds to the client or the backend; as src_read. */
static ssize_t sink_write(struct l4conn *c, struct l4dir *d, bool to_client)
{
	ssize_t n;
	int fd = to_client ? c->cfd : c->ufd;
	bool *wr = to_client ? &c->c_wr : &c->u_wr;

	if (c->splice) {
		n = splice(d->pipe[0], NULL, fd, NULL, d->in_pipe,
			   SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
		if (n > 0) {
			d->in_pipe -= (size_t)n;
			d->full = false;
			return n;
		}
		if (n == -1 && (errno == EAGAIN || errno == EINTR)) {
			*wr = false;
			return -1;
		}
		l4_fail(c, to_client ? L4_FAULT_CLIENT : L4_FAULT_BACKEND,
			n == 0 ? "splice wrote nothing" : strerror(errno));
		return -2;
	}
	if (to_client && c->tls) {
		/* after EAGAIN mbedTLS wants the very same call again */
		size_t len = c->tls_wlen ? c->tls_wlen : buf_len(&d->b);
		n = tls_write(c->tls, buf_rptr(&d->b), len);
		if (n > 0) {
			c->tls_wlen = 0;
			buf_consume(&d->b, (size_t)n);
			return n;
		}
		if (n == -WG_EAGAIN_WRITE || n == -WG_EAGAIN_READ) {
			c->tls_wlen = len;
			*wr = false;
			return -1;
		}
		const char *e = tls_conn_error(c->tls);
		l4_fail(c, L4_FAULT_CLIENT, e ? e : "tls write failed");
		return -2;
	}
	n = send(fd, buf_rptr(&d->b), buf_len(&d->b), MSG_NOSIGNAL);
	if (n > 0) {
		buf_consume(&d->b, (size_t)n);
		return n;
	}
	if (n == -1 && (errno == EAGAIN || errno == EINTR)) {
		*wr = false;
		return -1;
	}
	l4_fail(c, to_client ? L4_FAULT_CLIENT : L4_FAULT_BACKEND, strerror(errno));
	return -2;
}

static size_t dir_pending(const struct l4conn *c, const struct l4dir *d)
{
	return c->splice ? d->in_pipe : buf_len(&d->b);
}

static bool dir_can_read(const struct l4conn *c, const struct l4dir *d)
{
	if (d->eof)
		return false;
	return c->splice ? !d->full : buf_len(&d->b) < d->b.cap;
}

/* Moves what it can in one direction; true if anything happened. -1 when
 * the connection closed. */
static int move(struct l4conn *c, struct l4dir *d, bool from_client)
{
	bool *rd = from_client ? &c->c_rd : &c->u_rd;
	bool *wr = from_client ? &c->u_wr : &c->c_wr;
	bool progress = false;
	bool tls_src = from_client && c->tls;

	for (int i = 0; i < 16; i++) {
		bool step = false;
		if (dir_can_read(c, d) && (*rd || (tls_src && tls_pending(c->tls)))) {
			ssize_t n = src_read(c, d, from_client);
			if (n == -2)
				return -1;
			if (n == -3) {
				l4_fail(c, L4_FAULT_PROXY, "splice not supported");
				return -1;
			}
			if (n == 0) {
				d->eof = true;
				step = true;
			} else if (n > 0) {
				/* the route's bytes as they move: a long stream shows */
				if (from_client) {
					c->bytes_up += (uint64_t)n;
					if (c->rctr)
						RCTR_ADD(c->rctr, bytes_in, (uint64_t)n);
				} else {
					c->bytes_down += (uint64_t)n;
					if (c->rctr)
						RCTR_ADD(c->rctr, bytes_out, (uint64_t)n);
				}
				step = true;
			}
		}
		if (dir_pending(c, d) && *wr) {
			ssize_t n = sink_write(c, d, !from_client);
			if (n == -2)
				return -1;
			if (n > 0)
				step = true;
		}
		if (d->eof && !dir_pending(c, d) && !d->shut) {
			d->shut = true;
			step = true;
			if (!from_client && c->tls)
				tls_close_notify(c->tls);
			shutdown(from_client ? c->ufd : c->cfd, SHUT_WR);
		}
		if (!step)
			break;
		c->moves++;
		progress = true;
	}
	return progress;
}

static void relay(struct l4conn *c)
{
	bool any = false;

	for (int round = 0; round < 4; round++) {
		int a = move(c, &c->up, true);
		if (a < 0)
			return;
		int b = move(c, &c->down, false);
		if (b < 0)
			return;
		if (!a && !b)
			break;
		any = true;
	}
	if (any)
		c->last_ms = loop_now_ms(c->w->loop);
	if (c->up.shut && c->down.shut) {
		l4_close(c, "done", false);
		return;
	}
	/* client: reads for up, writes for down; backend the other way round.
	 * Armed whenever wanted, even if the last call did not block (the
	 * rounds above are bounded): level-triggered, the loop comes back. */
	uint32_t ce = 0, ue = 0;
	if (dir_can_read(c, &c->up))
		ce |= LOOP_READ;
	if (dir_pending(c, &c->down) || c->tls_want_write)
		ce |= LOOP_WRITE;
	if (dir_can_read(c, &c->down))
		ue |= LOOP_READ;
	if (dir_pending(c, &c->up))
		ue |= LOOP_WRITE;
	/* a side that ended both ways may report HUP forever: stop polling it */
	if (c->up.eof && c->down.shut && !ce)
		io_drop(c, true);
	else
		io_set(c, true, ce);
	if (c->down.eof && c->up.shut && !ue)
		io_drop(c, false);
	else
		io_set(c, false, ue);
}

/* ---- events ---- */

static void on_cio(struct loop_io *io, uint32_t events)
{
	struct l4conn *c = io->arg;

	switch (c->st) {
	case L4_ST_PEEK: do_peek(c); return;
	case L4_ST_HANDSHAKE: start_handshake(c); return;
	case L4_ST_CONNECT:
		if (events & LOOP_ERROR)
			l4_fail(c, L4_FAULT_CLIENT, "client went away while connecting");
		return;
	case L4_ST_RELAY:
		if (events & LOOP_READ)
			c->c_rd = true;
		if (events & LOOP_WRITE) {
			c->c_wr = true;
			if (c->tls_want_write) {
				c->tls_want_write = false;
				c->c_rd = true;
			}
		}
		if (events & LOOP_ERROR) {
			c->c_rd = c->c_wr = true;
		}
		uint64_t before = c->moves;
		relay(c);
		/* HUP/ERR and nothing moved: the peer is gone */
		if ((events & LOOP_ERROR) && !c->closed && before == c->moves)
			l4_fail(c, L4_FAULT_CLIENT, "client reset");
		return;
	}
}

static void on_uio(struct loop_io *io, uint32_t events)
{
	struct l4conn *c = io->arg;

	if (c->st == L4_ST_CONNECT) {
		connect_done(c);
		return;
	}
	if (c->st != L4_ST_RELAY)
		return;
	if (events & LOOP_READ)
		c->u_rd = true;
	if (events & LOOP_WRITE)
		c->u_wr = true;
	if (events & LOOP_ERROR)
		c->u_rd = c->u_wr = true;
	uint64_t before = c->moves;
	relay(c);
	if ((events & LOOP_ERROR) && !c->closed && before == c->moves)
		l4_fail(c, L4_FAULT_BACKEND, "backend reset");
}

/* ---- accept ---- */

static void peer_str(const struct sockaddr *sa, char *out, size_t size)
{
	char ip[INET6_ADDRSTRLEN] = "?";
	unsigned port = 0;

	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
		inet_ntop(AF_INET, &in->sin_addr, ip, sizeof(ip));
		port = ntohs(in->sin_port);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
		inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof(ip));
		port = ntohs(in6->sin6_port);
	}
	snprintf(out, size, "%s:%u", ip, port);
}

static bool socket_has_tls(const struct snap_socket *s)
{
	for (size_t i = 0; i < s->n_listeners; i++)
		if (s->listeners[i]->proto == SNAP_P_TLS || s->listeners[i]->proto == SNAP_P_HTTPS)
			return true;
	return false;
}

void l4_accept(struct worker *w, struct wlsn *l, struct rt_socket *rs, int fd,
	       const struct sockaddr *sa, socklen_t salen)
{
	struct px_limits *lim = px_limits_for(w->p, l->ps->port);
	struct l4_worker *lw = l4_worker_get(w);
	struct admit_ticket ticket;
	int one = 1;
	struct l4conn *c;

	if (!lw || w->draining) {
		close(fd);
		return;
	}
	enum admit_result adm = admit_take(w->p, lim, l->ps->port, sa, &ticket);
	if (adm != ADMIT_OK) {
		/* no protocol to answer in: the refusal is the close */
		char peer[64];
		peer_str(sa, peer, sizeof(peer));
		admit_log_refusal(w->p, adm, peer, l->ps->port, loop_now_ms(w->loop));
		close(fd);
		return;
	}
	if (!(c = calloc(1, sizeof(*c)))) {
		admit_release(w->p, &ticket);
		close(fd);
		return;
	}
	c->w = w;
	c->lim = lim;
	c->ticket = ticket;
	c->cfd = fd;
	c->ufd = -1;
	c->up.pipe[0] = c->up.pipe[1] = c->down.pipe[0] = c->down.pipe[1] = -1;
	c->start_ms = c->last_ms = loop_now_ms(w->loop);
	if (salen > sizeof(c->peer))
		salen = sizeof(c->peer);
	memcpy(&c->peer, sa, salen);
	c->peer_len = salen;
	peer_str(sa, c->peer_s, sizeof(c->peer_s));
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->next = lw->conns;
	if (lw->conns)
		lw->conns->prev = c;
	lw->conns = c;
	lw->n_conns++;
	wk_conns_add(w, 1);
	STAT_ADD(w, active_connections, 1);
	STAT_ADD(w, total_connections, 1);

	if (socket_has_tls(rs->s)) {
		c->kind = "tls";
		c->st = L4_ST_PEEK;
		c->ps = l->ps;
		psock_ref(c->ps);
		io_set(c, true, LOOP_READ);
		if (!c->c_reg) {
			l4_close(c, "out of memory", true);
			return;
		}
		timer_add(w->loop, &c->timer, L4_PEEK_TIMEOUT_MS, on_timer, c);
		do_peek(c);
		return;
	}
	/* TCP: the listener with routes (listeners of one TCP socket share it) */
	const struct snap_listener *tl = NULL;
	size_t li = 0;
	for (; li < rs->s->n_listeners; li++)
		if (rs->s->listeners[li]->proto == SNAP_P_TCP && rs->s->listeners[li]->l4_route) {
			tl = rs->s->listeners[li];
			break;
		}
	c->kind = "tcp";
	if (!tl) {
		l4_close(c, "no route", true);
		return;
	}
	start_backend(c, tl->l4_route, l4_stat_id(rs, li, NULL), tl->l4_backends,
		      tl->n_l4_backends);
}

void l4_lsn_closed(struct worker *w, struct psock *ps)
{
	if (w->l4)
		l4_udp_close_all(w, ps->id);
}

void l4_drain(struct worker *w, bool force)
{
	struct l4_worker *lw = w->l4;

	if (!lw)
		return;
	l4_udp_close_all(w, 0);
	for (struct l4conn *c = lw->conns, *n; c; c = n) {
		n = c->next;
		if (force || c->st != L4_ST_RELAY)
			l4_close(c, "draining", force);
	}
}

void l4_worker_free(struct worker *w)
{
	struct l4_worker *lw = w->l4;

	if (!lw)
		return;
	bool was = w->draining;
	w->draining = false; /* no loop_stop from l4_close: the loop is gone */
	while (lw->conns)
		l4_close(lw->conns, "shutdown", true);
	w->draining = was;
	l4_udp_free(w);
	free_dead(w);
	for (size_t i = 0; i < lw->n_pipes; i++) {
		close(lw->pipes[i][0]);
		close(lw->pipes[i][1]);
	}
	free(lw->pipes);
	free(lw->peek);
	l4_stab_fini(&lw->sessions);
	free(lw);
	w->l4 = NULL;
}
