/* SPDX-License-Identifier: MIT */
/*
 * conn.c: client connections and the requests on them, from accept to
 * close, and the upstream connections that serve them. One worker owns a
 * connection for its whole life; nothing here takes a lock.
 *
 * A client connection moves through these states (conn_run drives them):
 *
 *   HANDSHAKE  TLS handshake                      → HEAD, or closed
 *   HEAD       reading a request head             → PROXY, LOCAL, CLOSING
 *   WAIT       retry backoff before a new attempt → PROXY, LOCAL
 *   PROXY      request forwarded: bodies stream   → HEAD (keep-alive), CLOSING
 *              both ways, response head rewritten;
 *              after a 101 the connection is a byte tunnel (WebSocket) until
 *              either side closes
 *   LOCAL      writing a response made here       → HEAD (keep-alive), CLOSING
 *              (errors, redirects, CORS preflight)
 *   CLOSING    flushing the last bytes            → closed
 *
 * Bodies are never buffered whole: bytes move from one side's input buffer
 * straight to the other side's socket (writev, with chunk framing around
 * them when re-encoding); only what the socket does not take is copied to
 * the output buffer, and while that holds anything the source is not read
 * (backpressure). Buffers come from the worker's freelist and go back as
 * soon as they are empty, so an idle keep-alive connection holds none.
 * Per-request data lives in an arena taken from the worker's pool when a
 * request starts and given back, reset, when it ends.
 *
 * Upstream connections are kept alive per endpoint per worker (plain, or
 * TLS under a BackendTLSPolicy: only the same policy reuses them). A
 * connection that cannot be made moves the request to another endpoint of
 * the backend; a request that fails on a reused connection before any
 * response byte is replayed once on a fresh one when it has no body; the
 * route's retry policy comes after that. Mirrors get their own connection,
 * send the head with "Connection: close" and drop the answer; a request
 * body goes to them as it goes upstream, and a mirror that falls more than
 * PX_MIRROR_LAG_BYTES behind is dropped, so the client never waits for one.
 *
 * Errors a request can end with: 400/414/431/501/505 (the parser), 404 (no
 * listener or route), 408 (head or body timeout), 413 (body over the
 * listener's cap), 421 (Host outside the TLS server name's listener), 500
 * (invalid backend, no backends, zero weights), 502 (upstream protocol or
 * I/O error), 503 (no endpoints, connect failure, or a connection over a
 * cap of admit.c, answered before anything is read), 504 (request or
 * backend request timeout). Limits are the listener port's (c->lim).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "core/arena.h"
#include "core/err.h"
#include "core/hash.h"
#include "core/log.h"
#include "http/h2.h"
#include "proxy/filters.h"
#include "proxy/internal.h"
#include "proxy/plan.h"
#include "proxy/snapshot.h"

enum conn_state {
	CS_HANDSHAKE = 0,
	CS_HEAD,
	CS_WAIT,
	CS_PROXY,
	CS_LOCAL,
	CS_CLOSING,
	CS_LINGER, /* answered and half-closed: unread input is drained, then closed */
};

struct upconn {
	struct loop_io io;
	struct worker *w;
	struct upep *ep;
	struct conn *owner; /* NULL when idle or a mirror */
	struct upconn *next_mirror; /* on w->mirrors */
	struct upconn **slot;       /* a mirror fed with a body: its owner's pointer */
	struct buf in, out;
	struct timer timer; /* connect, backend request or mirror deadline */
	bool connecting;
	bool reused;
	bool mirror;
	bool out_grown; /* a mirror's out outgrew the pool's size: its own memory */
	bool got_bytes; /* any response byte on this request */
	bool readable, writable;
	/* its place in ep->pool; idle.tls_ctx: the BackendTLSPolicy's context
	 * it was made with, so that only requests under it reuse it */
	struct up_idle idle;
	struct tls_conn *tls;
	bool handshaking;
	uint32_t tls_want;
};

#define PX_LINGER_MS 2000                  /* CS_LINGER lasts at most this */
#define PX_LINGER_BYTES (4u * 1024 * 1024) /* and discards at most this */

struct req {
	struct rt *rt;
	struct rt_socket *sock;
	struct rt_listener *lsn;
	struct rt_rule *rule;
	struct route_ctr *rctr; /* the rule's counters in this worker, or NULL */
	const struct snap_backend *backend;
	struct upconn *up;
	uint64_t start_ms;
	char *method, *host, *path, *query; /* copies for logs and retries */
	char *up_head;                      /* the head sent upstream, kept for replays */
	size_t up_head_len;
	bool up_head_pending; /* up_head is not yet offered to r->up's socket */
	/* request body */
	enum h1_body req_body;
	uint64_t req_remaining;
	struct h1_chunked req_ch;
	bool req_body_done;
	bool expect_continue;
	/* mirrors that get a copy of the body as it goes upstream (NULL holes) */
	struct upconn *body_mirrors[PX_MAX_MIRRORS];
	bool body_mirrored;
	/* protocol upgrade (WebSocket): the request asked for it, and once the
	 * backend answered 101 the connection is a byte tunnel both ways */
	struct str upgrade;
	bool tunnel;
	/* response */
	bool head_method;
	bool resp_head_done;
	int status;
	enum h1_body resp_body;
	uint64_t resp_remaining;
	struct h1_chunked resp_ch;
	bool resp_chunked_out;
	bool resp_done;
	bool up_keep_alive;            /* the backend will keep its connection open */
	bool resp_close_delimited_out; /* HTTP/1.0 client: close ends the body */
	bool client_keep_alive;
	int minor;
	size_t up_last_len;
	/* routing extras */
	struct px_resp resp; /* the filters' part of the response */
	int attempts_left;
	uint8_t connect_repicks;
	bool replayed_fresh;
	uint32_t backend_timeout_ms;
	const struct upep *endpoint; /* the last one tried */
	const char *error;           /* why a local error was answered */
	uint64_t bytes_in, bytes_out;
};

struct conn {
	struct conn *prev, *next;
	struct worker *w;
	struct loop_io io;
	int fd;
	struct tls_conn *tls;
	uint32_t tls_want; /* LOOP_READ/LOOP_WRITE the TLS layer asked for */
	uint64_t sock_id;
	uint16_t port;
	char peer[48];
	struct px_limits *lim;      /* the listener port's */
	struct admit_ticket ticket; /* what admission counted for it */
	bool refused;               /* over a connection cap: answered 503, then closed */
	enum conn_state st;
	struct buf in, out;
	struct timer timer;       /* head, keep-alive idle */
	struct timer req_timer;   /* route timeout */
	struct timer retry_timer; /* backoff between attempts */
	struct arena *arena;
	size_t last_len; /* head parser resume point */
	bool head_timer_armed;
	bool close_after;
	bool readable, writable;
	bool rd_eof;        /* the client half-closed: answer what is buffered, then close */
	size_t linger_left; /* CS_LINGER: bytes still discarded before closing */
	bool closing_now;
	bool in_run;
	unsigned n_requests;
	struct req r;
	struct conn *next_free;
};

static void conn_run(struct conn *c);
static void conn_close(struct conn *c, const char *why);
static void up_free(struct upconn *u);
static void on_up_io(struct loop_io *io, uint32_t events);

/* ---- small helpers ---- */

static inline struct proxy *P(const struct conn *c)
{
	return c->w->p;
}
static inline const struct proxy_limits *LIM(const struct conn *c)
{
	return &c->lim->l;
}

static void peer_str(const struct sockaddr *sa, char *out, size_t size)
{
	out[0] = '\0';
	if (sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, out,
			  (socklen_t)size);
	else if (sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, out,
			  (socklen_t)size);
}

/* writev without SIGPIPE, whatever the process's signal setup. One piece
 * (an upstream head, a body run) goes through send(), which spares the
 * kernel copying and checking a msghdr and an iovec array. */
static ssize_t sock_writev(int fd, struct iovec *iov, int n)
{
	if (n == 1)
		return send(fd, iov[0].iov_base, iov[0].iov_len, MSG_NOSIGNAL);
	struct msghdr mh = {.msg_iov = iov, .msg_iovlen = (size_t)n};
	return sendmsg(fd, &mh, MSG_NOSIGNAL);
}

/* read() for sockets: recv() goes straight to the socket layer, without
 * the file-position handling of the VFS read path. */
static inline ssize_t sock_read(int fd, void *p, size_t n)
{
	return recv(fd, p, n, 0);
}

/* Client I/O, plain or TLS. Reads: > 0, 0 EOF, -EAGAIN, other negative. */
static ssize_t cio_read(struct conn *c, char *p, size_t n)
{
	if (!c->tls) {
		ssize_t r = sock_read(c->fd, p, n);
		if (r >= 0)
			return r;
		return errno == EAGAIN || errno == EINTR ? -EAGAIN : -errno;
	}
	ssize_t r = tlsg_read(c->tls, p, n);
	if (r == -WG_EAGAIN_READ || r == -WG_EAGAIN_WRITE) {
		c->tls_want = r == -WG_EAGAIN_READ ? LOOP_READ : LOOP_WRITE;
		return -EAGAIN;
	}
	return r;
}

/* Writes iov through a TLS connection, small pieces gathered into one
 * record; bytes written (0 when it must wait) or negative. */
static ssize_t tls_writev(struct tls_conn *t, char *scratch, size_t scratch_size, uint32_t *want,
			  struct iovec *iov, int n)
{
	struct iovec one;
	size_t sum = 0;
	for (int i = 0; i < n; i++)
		sum += iov[i].iov_len;
	if (n > 1 && sum <= 16384 && sum <= scratch_size) {
		size_t o = 0;
		for (int i = 0; i < n; i++) {
			memcpy(scratch + o, iov[i].iov_base, iov[i].iov_len);
			o += iov[i].iov_len;
		}
		one.iov_base = scratch;
		one.iov_len = sum;
		iov = &one;
		n = 1;
	}
	ssize_t total = 0;
	for (int i = 0; i < n; i++) {
		size_t off = 0;
		while (off < iov[i].iov_len) {
			ssize_t r =
				tlsg_write(t, (char *)iov[i].iov_base + off, iov[i].iov_len - off);
			if (r == -WG_EAGAIN_READ || r == -WG_EAGAIN_WRITE) {
				*want = r == -WG_EAGAIN_READ ? LOOP_READ : LOOP_WRITE;
				return total;
			}
			if (r <= 0)
				return r < 0 ? r : -EPIPE;
			off += (size_t)r;
			total += r;
		}
	}
	return total;
}

/* Writes iov; returns bytes written (possibly 0 on EAGAIN) or negative. */
static ssize_t cio_writev(struct conn *c, struct iovec *iov, int n)
{
	if (!c->tls) {
		ssize_t r = sock_writev(c->fd, iov, n);
		if (r >= 0)
			return r;
		return errno == EAGAIN || errno == EINTR ? 0 : -errno;
	}
	return tls_writev(c->tls, c->w->scratch, P(c)->buf_size, &c->tls_want, iov, n);
}

/*
 * Writes pending output then iov; whatever the socket does not take is
 * appended to out (the caller made sure it fits: out is empty when new data
 * is offered). out may have no storage yet: it is taken from w's freelist
 * only when the socket leaves a rest, so a write that goes out whole holds
 * no buffer. Returns 0 or a negative error.
 */
typedef ssize_t (*writev_fn)(void *ctx, struct iovec *iov, int n);

static int send_or_queue(struct worker *wk, struct buf *out, writev_fn fn, void *ctx,
			 struct iovec *iov, int n, uint64_t *counter)
{
	struct iovec v[8];
	int k = 0;
	size_t total = 0;

	if (!buf_is_empty(out)) {
		v[k].iov_base = buf_rptr(out);
		v[k++].iov_len = buf_len(out);
		total += buf_len(out);
	}
	for (int i = 0; i < n; i++) {
		if (!iov[i].iov_len)
			continue;
		v[k++] = iov[i];
		total += iov[i].iov_len;
	}
	if (!total)
		return 0;
	ssize_t w = fn(ctx, v, k);
	if (w < 0)
		return (int)w;
	if (counter)
		*counter += (uint64_t)w;
	size_t done = (size_t)w;
	for (int i = 0; i < k; i++) {
		if (done >= v[i].iov_len) {
			done -= v[i].iov_len;
			if (i == 0 && v[0].iov_base == buf_rptr(out) && !buf_is_empty(out))
				buf_consume(out, v[0].iov_len);
			continue;
		}
		if (v[i].iov_base == buf_rptr(out) && !buf_is_empty(out)) {
			buf_consume(out, done);
			done = 0;
			continue;
		}
		size_t rest = v[i].iov_len - done;
		if (!out->data && wbuf_get(wk, out))
			return -ENOMEM;
		if (buf_room(out) < rest)
			buf_compact(out);
		if (buf_room(out) < rest)
			return -ENOBUFS;
		memcpy(buf_wptr(out), (char *)v[i].iov_base + done, rest);
		buf_commit(out, rest);
		done = 0;
	}
	return 0;
}

static ssize_t client_writev(void *ctx, struct iovec *iov, int n)
{
	return cio_writev(ctx, iov, n);
}

static ssize_t up_writev(void *ctx, struct iovec *iov, int n)
{
	struct upconn *u = ctx;
	if (u->tls)
		return tls_writev(u->tls, u->w->scratch, u->w->p->buf_size, &u->tls_want, iov, n);
	ssize_t r = sock_writev(u->io.fd, iov, n);
	if (r >= 0)
		return r;
	return errno == EAGAIN || errno == EINTR ? 0 : -errno;
}

/* Upstream reads, plain or TLS: > 0, 0 EOF, -EAGAIN, other negative. */
static ssize_t up_read(struct upconn *u, char *p, size_t n)
{
	if (!u->tls) {
		ssize_t r = sock_read(u->io.fd, p, n);
		if (r >= 0)
			return r;
		return errno == EAGAIN || errno == EINTR ? -EAGAIN : -errno;
	}
	ssize_t r = tlsg_read(u->tls, p, n);
	if (r == -WG_EAGAIN_READ || r == -WG_EAGAIN_WRITE) {
		u->tls_want = r == -WG_EAGAIN_READ ? LOOP_READ : LOOP_WRITE;
		return -EAGAIN;
	}
	return r;
}

/* ---- access log and counters ---- */

static void json_str(struct wr *w, const char *s)
{
	wr_put(w, "\"", 1);
	for (; s && *s; s++) {
		unsigned char ch = (unsigned char)*s;
		if (ch == '"' || ch == '\\') {
			char e[2] = {'\\', (char)ch};
			wr_put(w, e, 2);
		} else if (ch < 0x20 || ch == 0x7f) {
			char e[8];
			snprintf(e, sizeof(e), "\\u%04x", ch);
			wr_put(w, e, 6);
		} else {
			wr_put(w, (const char *)&ch, 1);
		}
	}
	wr_put(w, "\"", 1);
}

static void access_log(struct conn *c, int status)
{
	struct req *r = &c->r;
	int fd = P(c)->cfg.access_log_fd;
	uint64_t now = loop_now_ms(c->w->loop), dur = now - r->start_ms;
	struct worker *w = c->w;

	STAT_ADD(w, responses_by_class[status / 100 < 6 ? status / 100 : 0], 1);
	STAT_ADD(w, bytes_in, r->bytes_in);
	STAT_ADD(w, bytes_out, r->bytes_out);
	static const uint64_t bounds[11] = {1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000};
	int b = 0;
	while (b < 11 && dur > bounds[b])
		b++;
	STAT_ADD(w, latency_buckets[b], 1);
	STAT_ADD(w, latency_sum_us, dur * 1000);
	rstat_done(r->rctr, status, r->bytes_in, r->bytes_out, dur);
	if (fd < 0)
		return;
	char line[3072];
	struct wr o = {line, 0, sizeof(line) - 2, false};
	char ts[32];
	uint64_t wall = clock_wall_ms();
	snprintf(ts, sizeof(ts), "%llu.%03u", (unsigned long long)(wall / 1000),
		 (unsigned)(wall % 1000));
	wr_cstr(&o, "{\"ts\":");
	wr_cstr(&o, ts);
	wr_cstr(&o, ",\"client\":");
	json_str(&o, c->peer);
	wr_cstr(&o, ",\"method\":");
	json_str(&o, r->method ? r->method : "");
	wr_cstr(&o, ",\"host\":");
	json_str(&o, r->host ? r->host : "");
	wr_cstr(&o, ",\"path\":");
	json_str(&o, r->path ? r->path : "");
	wr_cstr(&o, ",\"status\":");
	wr_u64(&o, (uint64_t)status);
	wr_cstr(&o, ",\"bytes_in\":");
	wr_u64(&o, r->bytes_in);
	wr_cstr(&o, ",\"bytes_out\":");
	wr_u64(&o, r->bytes_out);
	wr_cstr(&o, ",\"duration_ms\":");
	wr_u64(&o, dur);
	wr_cstr(&o, ",\"tls\":");
	wr_cstr(&o, c->tls ? "true" : "false");
	if (r->rule) {
		wr_cstr(&o, ",\"route\":");
		json_str(&o, r->rule->r->route);
		if (r->rule->r->rule_name) {
			wr_cstr(&o, ",\"rule\":");
			json_str(&o, r->rule->r->rule_name);
		}
	}
	if (r->backend) {
		wr_cstr(&o, ",\"backend\":");
		json_str(&o, r->backend->name);
	}
	if (r->endpoint) {
		wr_cstr(&o, ",\"upstream\":\"");
		wr_cstr(&o, r->endpoint->addr);
		wr_put(&o, ":", 1);
		wr_u64(&o, r->endpoint->port);
		wr_put(&o, "\"", 1);
	}
	if (r->error) {
		wr_cstr(&o, ",\"error\":");
		json_str(&o, r->error);
	}
	wr_cstr(&o, "}\n");
	if (o.overflow) {
		/* a path of several KiB: log the line without it */
		o.len = 0;
		o.overflow = false;
		wr_cstr(&o, "{\"ts\":");
		wr_cstr(&o, ts);
		wr_cstr(&o, ",\"status\":");
		wr_u64(&o, (uint64_t)status);
		wr_cstr(&o, ",\"truncated\":true}\n");
	}
	ssize_t wn = write(fd, line, o.len);
	(void)wn;
}

/* ---- upstream connections ---- */

static void up_set_io(struct upconn *u)
{
	uint32_t ev = u->tls_want;
	if (u->connecting || (!u->handshaking && (!buf_is_empty(&u->out) ||
						  (u->owner && u->owner->r.up_head_pending))))
		ev |= LOOP_WRITE;
	if (u->handshaking)
		ev |= u->tls_want ? 0 : LOOP_READ;
	else if (!u->connecting) {
		bool want = true;
		if (u->owner) {
			struct req *r = &u->owner->r;
			want = !r->resp_done && (!u->in.data || buf_room(&u->in) || u->in.head);
		}
		if (want)
			ev |= LOOP_READ;
	}
	loop_io_mod(u->w->loop, &u->io, ev);
}

static void up_free(struct upconn *u)
{
	if (!u)
		return;
	if (u->mirror) {
		/* mirrors are listed on the worker */
		struct upconn **pp = (struct upconn **)&u->w->mirrors;
		while (*pp && *pp != u)
			pp = &(*pp)->next_mirror;
		if (*pp)
			*pp = u->next_mirror;
		if (u->slot)
			*u->slot = NULL;
	}
	if (u->tls) {
		tlsg_conn_free(u->tls);
		u->tls = NULL;
	}
	if (u->io.fd >= 0) {
		int fd = u->io.fd;
		loop_io_del(u->w->loop, &u->io);
		close(fd);
	}
	timer_cancel(u->w->loop, &u->timer);
	up_pool_remove(u->w, &u->idle);
	wbuf_put(u->w, &u->in);
	if (u->out_grown)
		free(u->out.data);
	else
		wbuf_put(u->w, &u->out);
	free(u);
}

static void on_idle_close(struct up_idle *n)
{
	up_free((struct upconn *)((char *)n - offsetof(struct upconn, idle)));
}

/* Puts a finished connection back in its endpoint's idle list. */
static void up_release(struct upconn *u, bool reusable)
{
	u->owner = NULL;
	timer_cancel(u->w->loop, &u->timer);
	if (!reusable || !buf_is_empty(&u->in) || !buf_is_empty(&u->out) ||
	    !up_pool_put(u->w, &u->ep->pool, &u->idle)) {
		up_free(u);
		return;
	}
	wbuf_put(u->w, &u->in);
	wbuf_put(u->w, &u->out);
	u->got_bytes = false;
	u->readable = u->writable = false;
	loop_io_mod(u->w->loop, &u->io, LOOP_READ);
}

static struct upconn *up_new(struct worker *w, struct upep *ep, int *err)
{
	struct upconn *u = calloc(1, sizeof(*u));
	if (!u) {
		*err = -ENOMEM;
		return NULL;
	}
	u->w = w;
	u->ep = ep;
	u->io.fd = -1;
	u->idle.close = on_idle_close;
	int fd = up_connect(ep->addr, ep->port);
	if (fd < 0) {
		*err = fd;
		free(u);
		return NULL;
	}
	u->connecting = true;
	if (loop_io_add(w->loop, &u->io, fd, LOOP_WRITE, on_up_io, u)) {
		close(fd);
		free(u);
		*err = -ENOMEM;
		return NULL;
	}
	return u;
}

/* ---- mirrors: fire and forget ---- */

static void on_mirror_timer(struct timer *t)
{
	up_free(t->arg);
}

void conn_mirrors_end(struct upconn **v, bool whole)
{
	for (size_t i = 0; i < PX_MAX_MIRRORS; i++) {
		struct upconn *u = v[i];
		if (!u)
			continue;
		if (whole) {
			u->slot = NULL;
			v[i] = NULL;
		} else {
			up_free(u); /* clears v[i] */
		}
	}
}

/* The request is over: its body mirrors go on alone when it came whole. */
static void mirrors_let_go(struct conn *c)
{
	if (!c->r.body_mirrored)
		return;
	conn_mirrors_end(c->r.body_mirrors, c->r.req_body_done);
	c->r.body_mirrored = false;
}

/*
 * Makes room in a mirror's out for need more bytes: its lag may grow past
 * the pool's buffer size up to PX_MIRROR_LAG_BYTES (-WG_ELIMIT beyond);
 * a grown buffer is the mirror's own memory, never given back to the pool.
 */
static int mirror_room(struct upconn *u, size_t need)
{
	if (!u->out.data && wbuf_get(u->w, &u->out))
		return -ENOMEM;
	size_t cap = u->out.cap;
	int rc = buf_reserve(&u->out, need, PX_MIRROR_LAG_BYTES);
	u->out_grown = u->out_grown || u->out.cap != cap;
	return rc;
}

void conn_mirrors_feed(struct upconn **v, struct iovec *iov, int n)
{
	size_t total = 0;

	for (int k = 0; k < n; k++)
		total += iov[k].iov_len;
	for (size_t i = 0; i < PX_MAX_MIRRORS; i++) {
		struct upconn *u = v[i];
		if (!u)
			continue;
		/* room for all of it beside what waits, so that what the
		 * socket leaves fits; a socket still connecting takes nothing
		 * (EAGAIN): then all of it is queued */
		int rc = mirror_room(u, total);
		if (!rc)
			rc = send_or_queue(u->w, &u->out, up_writev, u, iov, n, NULL);
		if (rc < 0) {
			up_free(u);
			continue;
		}
		timer_add(u->w->loop, &u->timer, PX_MIRROR_TIMEOUT_MS, on_mirror_timer, u);
		if (!u->connecting) /* until then the loop waits for the connect */
			loop_io_mod(u->w->loop, &u->io,
				    buf_is_empty(&u->out) ? LOOP_READ : LOOP_READ | LOOP_WRITE);
	}
}

static void mirror_io(struct upconn *u, uint32_t events)
{
	if (u->connecting && (events & (LOOP_WRITE | LOOP_ERROR))) {
		int err = 0;
		socklen_t l = sizeof(err);
		getsockopt(u->io.fd, SOL_SOCKET, SO_ERROR, &err, &l);
		if (err) {
			up_free(u);
			return;
		}
		u->connecting = false;
	}
	if (!buf_is_empty(&u->out)) {
		if (send_or_queue(u->w, &u->out, up_writev, u, NULL, 0, NULL) < 0) {
			up_free(u);
			return;
		}
	}
	if (events & LOOP_READ) {
		char sink[4096];
		ssize_t n;
		while ((n = read(u->io.fd, sink, sizeof(sink))) > 0)
			;
		if (n == 0 || (n < 0 && errno != EAGAIN)) {
			up_free(u);
			return;
		}
	}
	loop_io_mod(u->w->loop, &u->io, buf_is_empty(&u->out) ? LOOP_READ : LOOP_READ | LOOP_WRITE);
}

/* ---- heads ---- */

/*
 * The Via field (px_via) goes after every field of the message, so
 * that an earlier Via of the same message stays first in the list.
 */
static void wr_via(struct wr *o, const struct conn *c, int minor)
{
	struct str via = px_via(P(c), false, minor);

	if (via.len)
		wr_field(o, STR_LIT("Via"), via);
}

/* The end of an upstream request head: upgrade, body framing, blank line. */
static void wr_framing(struct wr *o, const struct req *r, const struct h1_msg *m)
{
	if (r->upgrade.len) {
		wr_cstr(o, "Connection: upgrade\r\nUpgrade: ");
		wr_str(o, r->upgrade);
		wr_put(o, "\r\n", 2);
	}
	if (r->req_body == H1_BODY_CHUNKED) {
		wr_cstr(o, "Transfer-Encoding: chunked\r\n");
	} else if (r->req_body == H1_BODY_LENGTH) {
		wr_cstr(o, "Content-Length: ");
		wr_u64(o, r->req_remaining);
		wr_put(o, "\r\n", 2);
	} else if (m->content_length == 0 &&
		   hdr_find(m->headers, m->n_headers, STR_LIT("content-length"), 0) >= 0) {
		wr_cstr(o, "Content-Length: 0\r\n");
	}
	wr_put(o, "\r\n", 2);
}

/*
 * Serialises the upstream request head into the worker's scratch memory and
 * returns a copy in the request arena. Hop-by-hop fields and the fields the
 * proxy sets itself are dropped from the client's; header modifiers have
 * already been applied to hl. NULL when it does not fit (431) or ENOMEM.
 */
static char *build_up_head(struct conn *c, const struct h1_msg *m, struct hlist *hl,
			   const char *path, const char *query, const char *host, bool mirror,
			   size_t *len)
{
	struct req *r = &c->r;
	struct wr o = {c->w->scratch, 0, P(c)->buf_size, false};
	struct up_head h = {
		.method = m->method,
		.path = str_c(path),
		.query = str_c(query ? query : ""),
		.host = str_c(host),
		.xfh = str_c(r->host ? r->host : ""),
		.peer = c->peer,
		.https = c->tls != NULL,
		.via = px_via(P(c), false, m->minor),
	};

	wr_up_head(&o, &h, hl);
	if (!mirror) /* a mirror's framing is fire_mirrors' */
		wr_framing(&o, r, m);
	if (o.overflow)
		return NULL;
	*len = o.len;
	return arena_memdup(c->arena, o.p, o.len);
}

/* Whether a client field is forwarded as is (before header modifiers). */
static bool forwardable(const struct h1_msg *m, struct str n)
{
	if (hdr_is_hop_by_hop(n))
		return false;
	switch (n.len) {
	case 4:
		if (str_case_eq_c(n, "host"))
			return false;
		break;
	case 6:
		if (str_case_eq_c(n, "expect"))
			return false;
		break;
	case 14:
		if (str_case_eq_c(n, "content-length"))
			return false;
		break;
	case 16:
		if (str_case_eq_c(n, "x-forwarded-host"))
			return false;
		break;
	case 17:
		if (str_case_eq_c(n, "x-forwarded-proto"))
			return false;
		break;
	default: break;
	}
	if ((m->conn_flags & H1_CONN_OTHER) &&
	    hdr_is_listed_in_connection(m->headers, m->n_headers, n))
		return false;
	return true;
}

/* ---- local responses ---- */

/*
 * Answers the current request from here. extra: fields to add (may be
 * NULL). The connection closes afterwards when close is set, when the
 * client asked for it, or when a request body was not read.
 */
static void respond(struct conn *c, int status, const struct hlist *extra, const char *body,
		    bool close)
{
	struct req *r = &c->r;
	char tmp[512];
	size_t blen = body ? strlen(body) : 0;

	if (!r->req_body_done && r->req_body != H1_BODY_NONE)
		close = true;
	if (!r->client_keep_alive || c->w->draining)
		close = true;
	if (close)
		c->close_after = true;
	r->status = status;
	if (wbuf_get(c->w, &c->out)) {
		conn_close(c, "out of memory");
		return;
	}
	buf_compact(&c->out);
	struct wr o = {buf_wptr(&c->out), 0, buf_room(&c->out), false};
	int n = snprintf(tmp, sizeof(tmp), "HTTP/1.1 %d %s\r\n", status, h1_reason(status));
	wr_put(&o, tmp, (size_t)n);
	for (size_t i = 0; extra && i < extra->n; i++)
		if (extra->v[i].name.len)
			wr_field(&o, extra->v[i].name, extra->v[i].value);
	if (body)
		wr_cstr(&o, "Content-Type: text/plain; charset=utf-8\r\n");
	wr_cstr(&o, "Content-Length: ");
	wr_u64(&o, blen);
	wr_cstr(&o, close ? "\r\nConnection: close\r\n\r\n" : "\r\n\r\n");
	if (!r->head_method && body)
		wr_put(&o, body, blen);
	if (o.overflow) {
		conn_close(c, "local response too large");
		return;
	}
	buf_commit(&c->out, o.len);
	r->bytes_out += o.len;
	c->st = CS_LOCAL;
}

static void respond_error(struct conn *c, int status, const char *why, bool close)
{
	char body[96];
	c->r.error = why;
	snprintf(body, sizeof(body), "%d %s\n", status, h1_reason(status));
	respond(c, status, NULL, body, close);
}

/* ---- request lifecycle ---- */

static void on_head_timer(struct timer *t);

static void req_reset(struct conn *c)
{
	mirrors_let_go(c);
	rt_unref(c->r.rt);
	memset(&c->r, 0, sizeof(c->r));
	warena_put(c->w, c->arena);
	c->arena = NULL;
}

static void req_timeout_cancel(struct conn *c)
{
	timer_cancel(c->w->loop, &c->req_timer);
	timer_cancel(c->w->loop, &c->retry_timer);
}

/* The request is complete on both sides: log, recycle, next. */
static void req_finish(struct conn *c)
{
	struct req *r = &c->r;

	req_timeout_cancel(c);
	if (r->up) {
		bool reusable = r->resp_done && r->req_body_done && r->up_keep_alive;
		struct upconn *u = r->up;
		r->up = NULL;
		up_release(u, reusable && u->ep && !u->connecting && r->resp_head_done &&
				      c->r.up_last_len == 0 && r->status >= 200);
	}
	access_log(c, r->status);
	c->n_requests++;
	bool keep = !c->close_after && r->client_keep_alive && !c->w->draining;
	req_reset(c);
	if (!keep) {
		c->st = CS_CLOSING;
		return;
	}
	if (c->rd_eof && buf_is_empty(&c->in)) {
		/* the client half-closed and every request it sent is answered */
		c->st = CS_CLOSING;
		return;
	}
	c->st = CS_HEAD;
	c->last_len = 0;
	c->head_timer_armed = false;
	timer_add(c->w->loop, &c->timer, LIM(c)->keepalive_timeout_ms, on_head_timer, c);
	if (buf_is_empty(&c->in))
		wbuf_put(c->w, &c->in);
	if (buf_is_empty(&c->out))
		wbuf_put(c->w, &c->out);
}

static void on_head_timer(struct timer *t)
{
	struct conn *c = t->arg;
	if (c->st == CS_HEAD && c->head_timer_armed) {
		respond_error(c, 408, "request head timeout", true);
		conn_run(c);
		return;
	}
	if (c->st == CS_PROXY && !c->r.tunnel && !c->r.req_body_done && !c->r.resp_head_done) {
		/* the body stalled: the backend holds a partial body, drop it */
		if (c->r.up) {
			up_free(c->r.up);
			c->r.up = NULL;
		}
		req_timeout_cancel(c);
		respond_error(c, 408, "request body timeout", true);
		conn_run(c);
		return;
	}
	conn_close(c, c->st == CS_HEAD ? "keep-alive idle" : "timeout");
}

/* A failed attempt at a backend (connect, read, timeout; retried or not),
 * counted in the totals and for the request's route rule. */
static void count_upstream_error(struct conn *c)
{
	STAT_ADD(c->w, upstream_errors, 1);
	if (c->r.rctr)
		RCTR_ADD(c->r.rctr, upstream_errors, 1);
}

/* A failure once the response's status line is out: all that can be done
 * is to log the request and cut the connection. True when it did. */
static bool cut_if_answering(struct conn *c, const char *why)
{
	struct req *r = &c->r;

	if (!r->resp_head_done)
		return false;
	r->error = why;
	access_log(c, r->status);
	req_reset(c);
	conn_close(c, why);
	return true;
}

/* Fails the request after an upstream problem; status when nothing was sent. */
static void req_upstream_failed(struct conn *c, int status, const char *why)
{
	struct req *r = &c->r;

	count_upstream_error(c);
	if (r->up) {
		if (r->up->ep)
			upep_result(c->w, r->up->ep, false);
		up_free(r->up);
		r->up = NULL;
	}
	if (cut_if_answering(c, why))
		return;
	c->close_after = c->close_after || !r->req_body_done;
	respond_error(c, status, why, false);
}

/*
 * Fails the request for the client's fault (a broken chunked body, a body
 * over the limit): the backend connection holds part of a request, so it
 * is dropped, never pooled nor replayed, and the endpoint is not blamed.
 * Answered with status unless the response has started; then the
 * connection is cut. Either way the connection closes after.
 */
static void req_client_failed(struct conn *c, int status, const char *why)
{
	struct req *r = &c->r;

	r->attempts_left = 0;
	r->up_head = NULL;
	if (r->up) {
		up_free(r->up);
		r->up = NULL;
	}
	c->close_after = true;
	if (cut_if_answering(c, why))
		return;
	req_timeout_cancel(c);
	respond_error(c, status, why, true);
}

static int start_attempt(struct conn *c);

static void on_retry_timer(struct timer *t)
{
	struct conn *c = t->arg;
	if (c->st != CS_WAIT)
		return;
	c->st = CS_PROXY; /* start_attempt moves it on when it fails */
	start_attempt(c);
	conn_run(c);
}

/* Whether the request can be sent again (nothing of a body consumed). */
static bool replayable(const struct req *r)
{
	return r->req_body == H1_BODY_NONE && r->up_head;
}

/*
 * Decides what to do after attempt failure `status`: retry after backoff
 * when the route allows it, else answer. Connection-level failures count.
 */
static void attempt_failed(struct conn *c, int status, const char *why, bool fresh_replay)
{
	struct req *r = &c->r;

	if (fresh_replay && replayable(r) && !r->replayed_fresh) {
		/* a kept-alive connection that died under us: one silent replay */
		r->replayed_fresh = true;
		if (r->up) {
			up_free(r->up);
			r->up = NULL;
		}
		if (start_attempt(c) == 0)
			return;
	}
	if (r->attempts_left > 0 && replayable(r) && !r->resp_head_done) {
		r->attempts_left--;
		count_upstream_error(c);
		if (r->up) {
			if (r->up->ep)
				upep_result(c->w, r->up->ep, false);
			up_free(r->up);
			r->up = NULL;
		}
		c->st = CS_WAIT;
		uint32_t backoff = r->rule ? r->rule->r->retry.backoff_ms : 0;
		timer_add(c->w->loop, &c->retry_timer, backoff, on_retry_timer, c);
		log_debug("event=retry conn=%d status=%d reason=%s", c->fd, status, log_q(why));
		return;
	}
	req_upstream_failed(c, status, why);
}

/*
 * A connection to the endpoint could not be made: nothing of the request
 * left, so another endpoint of the same backend is tried at once (at most
 * PX_CONNECT_REPICKS times), whatever the route's retry policy says. Then
 * the usual policy applies (503).
 */
#define PX_CONNECT_REPICKS 2

static void connect_failed(struct conn *c, const char *why)
{
	struct req *r = &c->r;

	if (r->backend && r->connect_repicks < PX_CONNECT_REPICKS &&
	    (size_t)r->connect_repicks + 1 < r->backend->n_endpoints) {
		r->connect_repicks++;
		count_upstream_error(c);
		if (r->up) {
			upep_result(c->w, r->up->ep, false);
			up_free(r->up);
			r->up = NULL;
		}
		log_debug("event=connect_repick worker=%u reason=%s", c->w->idx, log_q(why));
		start_attempt(c);
		return;
	}
	attempt_failed(c, 503, why, false);
}

static void on_up_timer(struct timer *t)
{
	struct upconn *u = t->arg;
	struct conn *c = u->owner;
	if (!c)
		return;
	if (u->connecting || u->handshaking)
		connect_failed(c, "backend connect timeout");
	else
		attempt_failed(c, 504, "backend request timeout", false);
	conn_run(c);
}

static void on_req_timer(struct timer *t)
{
	struct conn *c = t->arg;
	struct req *r = &c->r;
	timer_cancel(c->w->loop, &c->retry_timer);
	r->attempts_left = 0;
	if (r->resp_head_done) {
		req_upstream_failed(c, 504, "request timeout");
	} else {
		if (r->up) {
			up_free(r->up);
			r->up = NULL;
		}
		count_upstream_error(c);
		c->close_after = c->close_after || !r->req_body_done;
		respond_error(c, 504, "request timeout", false);
	}
	conn_run(c);
}

/* Connects (or reuses) towards a freshly picked endpoint and queues the
 * saved head. 0, or the request was answered with an error. */
static int start_attempt(struct conn *c)
{
	struct req *r = &c->r;
	struct worker *w = c->w;
	int err = 0;

	if (r->attempts_left >= 0 && r->rule && r->backend && r->rule->r->n_backends > 1) {
		const struct snap_backend *b = up_pick_backend(r->rule);
		if (b && !b->invalid_status && b->n_endpoints)
			r->backend = b;
	}
	struct upep *ep = up_pick_endpoint(w, r->backend);
	if (!ep) {
		respond_error(c, 503, "no endpoint", false);
		return -1;
	}
	r->endpoint = ep;
	struct tls_client *tc = NULL;
	if (r->backend->tls) {
		const struct rt_btls *bt = tlsg_backend(r->rt, r->backend);
		if (!bt || !bt->client) {
			respond_error(c, 502, "backend TLS unavailable", false);
			return -1;
		}
		tc = bt->client;
	}
	struct up_idle *n = r->replayed_fresh ? NULL : up_pool_take(w, &ep->pool, tc);
	struct upconn *u;
	if (n) {
		u = (struct upconn *)((char *)n - offsetof(struct upconn, idle));
		u->reused = true;
	} else {
		u = up_new(w, ep, &err);
		if (!u) {
			upep_result(w, ep, false);
			connect_failed(c, "backend connect failed");
			return c->st == CS_WAIT || c->st == CS_PROXY ? 0 : -1;
		}
		timer_add(w->loop, &u->timer, LIM(c)->connect_timeout_ms, on_up_timer, u);
		u->idle.tls_ctx = tc;
	}
	u->owner = c;
	u->got_bytes = false;
	r->up = u;
	r->resp_head_done = false;
	r->up_last_len = 0;
	if (wbuf_get(w, &u->in)) {
		req_upstream_failed(c, 502, "out of memory");
		return -1;
	}
	/* proxy_step writes the head straight from the arena; only what the
	 * socket does not take is copied to u->out */
	r->up_head_pending = true;
	if (!u->connecting && r->backend_timeout_ms)
		timer_add(w->loop, &u->timer, r->backend_timeout_ms, on_up_timer, u);
	u->writable = !u->connecting;
	return 0;
}

void conn_mirror_open(struct worker *w, const struct snap_backend *b, const char *head,
		      size_t len, struct str body_length, struct upconn **slot)
{
	struct upep *ep = up_pick_endpoint(w, b);
	int err;
	struct upconn *u = ep ? up_new(w, ep, &err) : NULL;
	if (!u)
		return;
	u->mirror = true;
	u->next_mirror = w->mirrors;
	w->mirrors = u;
	if (wbuf_get(w, &u->out)) {
		up_free(u);
		return;
	}
	struct wr o = {buf_wptr(&u->out), 0, buf_room(&u->out), false};
	wr_put(&o, head, len);
	if (slot && !body_length.len) {
		wr_cstr(&o, "Transfer-Encoding: chunked\r\n");
	} else {
		wr_cstr(&o, "Content-Length: ");
		wr_str(&o, slot ? body_length : STR_LIT("0"));
		wr_put(&o, "\r\n", 2);
	}
	wr_cstr(&o, "Connection: close\r\n\r\n");
	if (o.overflow) {
		up_free(u);
		return;
	}
	buf_commit(&u->out, o.len);
	timer_add(w->loop, &u->timer, PX_MIRROR_TIMEOUT_MS, on_mirror_timer, u);
	if (slot) {
		u->slot = slot;
		*slot = u;
	}
}

/*
 * Fires the request's mirrors that are due. A request with a body frames
 * it as the client did (length or chunked); the body follows as it goes
 * upstream (conn_mirrors_feed).
 */
static void fire_mirrors(struct conn *c, const struct snap_mirror *const *mv, size_t n,
			 const struct h1_msg *m, struct hlist *hl, const char *path,
			 const char *query, const char *host)
{
	struct req *r = &c->r;
	char num[24];
	struct wr length = {num, 0, sizeof(num), false};

	if (r->req_body == H1_BODY_LENGTH)
		wr_u64(&length, r->req_remaining);
	r->body_mirrored = r->req_body != H1_BODY_NONE;
	for (size_t i = 0; i < n; i++) {
		const struct snap_mirror *mi = mv[i];
		if (!px_mirror_is_due(mi))
			continue;
		size_t len;
		char *head = build_up_head(c, m, hl, path, query, host, true, &len);
		if (head)
			conn_mirror_open(c->w, mi->backend, head, len, (struct str){num, length.len},
					 r->body_mirrored ? &r->body_mirrors[i] : NULL);
	}
}

static bool is_preflight(const struct h1_msg *m)
{
	return str_eq_c(m->method, "OPTIONS") &&
	       hdr_find(m->headers, m->n_headers, STR_LIT("access-control-request-method"), 0) >= 0;
}

/*
 * A complete head is in c->in: route it and either answer it here or start
 * proxying it. The head's views are used only inside this function; what
 * must outlive it is copied to the arena.
 */
static void req_start(struct conn *c, struct h1_msg *m)
{
	struct req *r = &c->r;
	struct worker *w = c->w;
	char hbuf[256];
	struct hlist hl;

	STAT_ADD(w, requests, 1);
	r->start_ms = loop_now_ms(w->loop);
	r->minor = m->minor;
	if (!c->arena && !(c->arena = warena_get(w))) {
		respond_error(c, 503, "out of memory", true);
		return;
	}
	r->client_keep_alive = m->keep_alive;
	r->head_method = str_eq_c(m->method, "HEAD");
	r->method = arena_strndup(c->arena, m->method.p, m->method.len);
	r->host = arena_strndup(c->arena, m->host.len ? m->host.p : "", m->host.len);
	const char *qm = memchr(m->path.p, '?', m->path.len);
	struct str path = {m->path.p, qm ? (size_t)(qm - m->path.p) : m->path.len};
	struct str query = {qm ? qm + 1 : "", qm ? m->path.len - path.len - 1 : 0};
	r->path = arena_strndup(c->arena, path.p, path.len);
	r->query = arena_strndup(c->arena, query.p, query.len);
	r->req_body = m->body;
	r->req_remaining = m->content_length;
	r->req_body_done = m->body == H1_BODY_NONE;
	r->bytes_in = m->head_len;
	if (!m->host.len && r->host) {
		/* HTTP/1.0 without Host: name the address the request came to */
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		char ip[48] = "localhost";
		if (getsockname(c->fd, (struct sockaddr *)&ss, &sl) == 0)
			peer_str((struct sockaddr *)&ss, ip, sizeof(ip));
		r->host = arena_printf(c->arena, "%s%s%s:%u", strchr(ip, ':') ? "[" : "", ip,
				       strchr(ip, ':') ? "]" : "", c->port);
	}
	if (!r->method || !r->host || !r->path || !r->query) {
		respond_error(c, 500, "out of memory", true);
		return;
	}
	if (m->body == H1_BODY_LENGTH && m->content_length > LIM(c)->max_body_bytes) {
		/* refused before routing: no byte of it reaches a backend */
		respond_error(c, 413, "request body too large", true);
		return;
	}
	r->rt = w->rt;
	if (r->rt)
		rt_ref(r->rt);
	r->sock = r->rt ? rt_socket_by_id(r->rt, c->sock_id) : NULL;
	if (!r->sock) {
		respond_error(c, 404, "listener removed", true);
		return;
	}
	size_t hlen = route_host_norm(m->host, hbuf, sizeof(hbuf));
	if (!hlen && m->host.len) {
		respond_error(c, 400, "invalid host", true);
		return;
	}
	r->lsn = route_listener(r->sock, hbuf, hlen);
	if (c->tls) {
		const char *sni = tlsg_sni(c->tls);
		char sbuf[256];
		size_t sl = sni ? route_host_norm(str_c(sni), sbuf, sizeof(sbuf)) : 0;
		struct rt_listener *by_sni = route_listener(r->sock, sbuf, sl);
		if (sni && by_sni != r->lsn) {
			respond_error(c, 421, "host does not match the TLS server name", false);
			return;
		}
	}
	if (!r->lsn) {
		respond_error(c, 404, "no listener for host", false);
		return;
	}
	struct route_req rq = {m->method, path, query, m->headers, m->n_headers};
	r->rule = route_match(r->lsn, hbuf, hlen, &rq);
	if (!r->rule) {
		respond_error(c, 404, "no route", false);
		return;
	}
	if ((r->rctr = rstat_ctr(&w->rstats, r->rule->stat_id)))
		RCTR_ADD(r->rctr, requests, 1);
	const struct snap_http_rule *rule = r->rule->r;

	/* the client's fields, minus hop-by-hop, then the filters */
	if (hlist_init(&hl, c->arena, m->n_headers + 16)) {
		respond_error(c, 500, "out of memory", true);
		return;
	}
	for (size_t i = 0; i < m->n_headers; i++)
		if (forwardable(m, m->headers[i].name))
			hlist_add(&hl, c->arena, m->headers[i].name, m->headers[i].value);
	ssize_t oi = hdr_find(m->headers, m->n_headers, STR_LIT("origin"), 0);
	struct px_plan plan = {
		.path = path,
		.query = query,
		.host = hlen ? hbuf : "",
		.scheme = c->tls ? "https" : "http",
		.port = c->port,
		.preflight = is_preflight(m),
	};
	if (oi >= 0)
		plan.resp.origin = (struct str){
			arena_strndup(c->arena, m->headers[oi].value.p, m->headers[oi].value.len),
			m->headers[oi].value.len};
	if (plan.preflight) {
		ssize_t km = hdr_find(m->headers, m->n_headers,
				      STR_LIT("access-control-request-method"), 0);
		ssize_t kh = hdr_find(m->headers, m->n_headers,
				      STR_LIT("access-control-request-headers"), 0);
		plan.acr_method = km >= 0 ? m->headers[km].value : STR_LIT("");
		plan.acr_headers = kh >= 0 ? m->headers[kh].value : STR_LIT("");
	}
	switch (px_plan_make(&plan, c->arena, r->rule, &hl)) {
	case PX_PLAN_PROXY: break;
	case PX_PLAN_ANSWER:
		r->resp = plan.resp;
		respond(c, plan.status, &plan.answer, NULL, false);
		return;
	case PX_PLAN_ERROR:
		respond_error(c, plan.status, plan.why, false);
		return;
	default:
		respond_error(c, 500, "out of memory", true);
		return;
	}
	r->resp = plan.resp;
	r->backend = plan.backend;
	const char *up_path = plan.up_path ? plan.up_path : r->path;
	const char *up_host = plan.up_host;
	if (!up_host) {
		up_host = r->host;
	}
	if (m->has_upgrade && (m->conn_flags & H1_CONN_UPGRADE) && m->body == H1_BODY_NONE &&
	    m->minor == 1) {
		ssize_t ku = hdr_find(m->headers, m->n_headers, STR_LIT("upgrade"), 0);
		char *uv =
			arena_strndup(c->arena, m->headers[ku].value.p, m->headers[ku].value.len);
		if (uv)
			r->upgrade = (struct str){uv, m->headers[ku].value.len};
	}
	r->up_head = build_up_head(c, m, &hl, up_path, r->query, up_host, false, &r->up_head_len);
	if (!r->up_head) {
		respond_error(c, 431, "request head too large after filters", true);
		return;
	}
	if (plan.n_mirrors)
		fire_mirrors(c, plan.mirrors, plan.n_mirrors, m, &hl, up_path, r->query, up_host);
	r->attempts_left = rule->retry.attempts;
	r->backend_timeout_ms = rule->backend_request_timeout_ms;
	r->expect_continue = m->expect_continue && r->req_body != H1_BODY_NONE;
	if (r->req_body != H1_BODY_NONE)
		timer_add(w->loop, &c->timer, LIM(c)->body_idle_timeout_ms, on_head_timer, c);
	uint32_t to =
		rule->request_timeout_ms ? rule->request_timeout_ms : LIM(c)->route_timeout_ms;
	timer_add(w->loop, &c->req_timer, to, on_req_timer, c);
	c->st = CS_PROXY;
	if (start_attempt(c) < 0)
		return;
	if (r->expect_continue) {
		static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
		if (!wbuf_get(w, &c->out)) {
			memcpy(buf_wptr(&c->out), cont, sizeof(cont) - 1);
			buf_commit(&c->out, sizeof(cont) - 1);
		}
	}
}

/* ---- the response head ---- */

static bool retry_on_status(const struct req *r, int status)
{
	if (!r->rule || r->attempts_left <= 0)
		return false;
	const struct snap_retry *rt = &r->rule->r->retry;
	for (size_t i = 0; i < rt->n_codes; i++)
		if (rt->codes[i] == status)
			return true;
	return false;
}

/* Parses the upstream response head in u->in and writes the client's.
 * 1 when the head was handled, 0 need more, -1 the request was failed. */
static int resp_head(struct conn *c)
{
	struct req *r = &c->r;
	struct upconn *u = r->up;
	struct h1_header hdrs[PX_MAX_HEADERS];
	struct h1_msg m = {.headers = hdrs, .max_headers = PX_MAX_HEADERS};

	for (;;) {
		ssize_t n = h1_parse_response(buf_rptr(&u->in), buf_len(&u->in), r->up_last_len, &m,
					      &P(c)->hlim, r->head_method);
		if (n == 0) {
			r->up_last_len = buf_len(&u->in);
			if (!buf_room(&u->in) && !u->in.head) {
				attempt_failed(c, 502, "response head too large", false);
				return -1;
			}
			return 0;
		}
		if (n < 0) {
			attempt_failed(c, 502, m.error ? m.error : "invalid response", false);
			return -1;
		}
		r->up_last_len = 0;
		if (m.status == 101 && !r->upgrade.len) {
			attempt_failed(c, 502, "unexpected protocol switch", false);
			return -1;
		}
		if (m.status >= 100 && m.status < 200 && m.status != 101) {
			buf_consume(&u->in, (size_t)n); /* interim responses are dropped */
			continue;
		}
		if (retry_on_status(r, m.status) && replayable(r)) {
			attempt_failed(c, m.status, "retryable status", false);
			return -1;
		}
		timer_cancel(c->w->loop, &u->timer);
		/* only gateway-class answers say the endpoint itself is unwell */
		upep_result(c->w, u->ep, m.status < 502 || m.status > 504);

		struct hlist hl;
		if (hlist_init(&hl, c->arena, m.n_headers + 16)) {
			req_upstream_failed(c, 502, "out of memory");
			return -1;
		}
		for (size_t i = 0; i < m.n_headers; i++) {
			struct str nm = m.headers[i].name;
			if (hdr_is_hop_by_hop(nm) || str_case_eq_c(nm, "content-length"))
				continue;
			if ((m.conn_flags & H1_CONN_OTHER) &&
			    hdr_is_listed_in_connection(m.headers, m.n_headers, nm))
				continue;
			hlist_add(&hl, c->arena, nm, m.headers[i].value);
		}
		px_resp_apply(&r->resp, c->arena, &hl);

		r->status = m.status;
		r->up_keep_alive = m.keep_alive;
		r->resp_body = m.body;
		r->resp_remaining = m.content_length;
		r->resp_done = m.body == H1_BODY_NONE;
		struct str up_upgrade = {NULL, 0};
		if (m.status == 101) {
			/* from here on both directions are opaque bytes */
			ssize_t ku = hdr_find(m.headers, m.n_headers, STR_LIT("upgrade"), 0);
			up_upgrade = ku >= 0 ? m.headers[ku].value : r->upgrade;
			r->tunnel = true;
			r->resp_done = false;
			r->up_keep_alive = false;
			c->close_after = true;
			timer_cancel(c->w->loop, &c->req_timer);
			timer_add(c->w->loop, &c->timer, LIM(c)->keepalive_timeout_ms,
				  on_head_timer, c);
		}
		bool client_close = c->close_after || !r->client_keep_alive || c->w->draining;
		if (m.body == H1_BODY_EOF || m.body == H1_BODY_CHUNKED) {
			if (r->minor == 1)
				r->resp_chunked_out = true;
			else {
				r->resp_close_delimited_out = true;
				client_close = true;
			}
		}
		if (!r->req_body_done)
			client_close = true; /* the rest of the body would be read as a request */
		if (client_close)
			c->close_after = true;

		if (wbuf_get(c->w, &c->out)) {
			req_upstream_failed(c, 502, "out of memory");
			return -1;
		}
		buf_compact(&c->out);
		struct wr o = {buf_wptr(&c->out), 0, buf_room(&c->out), false};
		wr_cstr(&o, "HTTP/1.1 ");
		wr_u64(&o, (uint64_t)m.status);
		wr_put(&o, " ", 1);
		if (m.reason.len)
			wr_str(&o, m.reason);
		else
			wr_cstr(&o, h1_reason(m.status));
		wr_put(&o, "\r\n", 2);
		for (size_t i = 0; i < hl.n; i++)
			if (hl.v[i].name.len)
				wr_field(&o, hl.v[i].name, hl.v[i].value);
		wr_via(&o, c, m.minor);
		if (m.body == H1_BODY_LENGTH ||
		    (m.body == H1_BODY_NONE &&
		     hdr_find(m.headers, m.n_headers, STR_LIT("content-length"), 0) >= 0)) {
			wr_cstr(&o, "Content-Length: ");
			wr_u64(&o, m.content_length);
			wr_put(&o, "\r\n", 2);
		} else if (r->resp_chunked_out) {
			wr_cstr(&o, "Transfer-Encoding: chunked\r\n");
		}
		if (r->tunnel) {
			wr_cstr(&o, "Connection: upgrade\r\nUpgrade: ");
			wr_str(&o, up_upgrade);
			wr_put(&o, "\r\n", 2);
		} else if (client_close) {
			wr_cstr(&o, "Connection: close\r\n");
		} else if (r->minor == 0) {
			wr_cstr(&o, "Connection: keep-alive\r\n");
		}
		wr_put(&o, "\r\n", 2);
		if (o.overflow) {
			req_upstream_failed(c, 502, "response head too large");
			return -1;
		}
		buf_commit(&c->out, o.len);
		r->bytes_out += o.len;
		buf_consume(&u->in, (size_t)n);
		r->resp_head_done = true;
		return 1;
	}
}

/* ---- body pumps ---- */

/*
 * Moves body bytes from src (the other side's input buffer) to the
 * destination through send_or_queue, decoding chunked input and
 * re-encoding when out_chunked. A chunked body may carry at most chunked_max
 * bytes: a chunk announcing more is refused before any byte of it moves
 * (a Content-Length is checked against the limit before the body starts).
 * Returns 1 when the body is complete, 0 when it needs more input or the
 * destination is full, negative on a framing error (-WG_EPROTO), a body
 * over the limit (-WG_ELIMIT) or a write error. mirrors: a request's body
 * mirrors (conn_mirrors_feed), which get a copy of what goes out, or NULL.
 */
static int pump(struct worker *wk, struct buf *src, enum h1_body kind, uint64_t *remaining,
		struct h1_chunked *ch, uint64_t chunked_max, bool out_chunked, struct buf *dst_out,
		writev_fn fn, void *ctx, uint64_t *counter, bool *done, struct upconn **mirrors)
{
	if (!buf_is_empty(src) && !*done && wbuf_get(wk, dst_out))
		return -ENOMEM;
	/* a small pending output (a head) goes out in the same writev; the
	 * piece taken from src is bounded so that any unsent rest fits */
	while (!*done && !buf_is_empty(src) && buf_len(dst_out) < dst_out->cap / 4) {
		struct str data = {NULL, 0};
		size_t used;
		size_t room = dst_out->cap - buf_len(dst_out) - 32;
		size_t avail = buf_len(src) < room ? buf_len(src) : room;
		if (kind == H1_BODY_LENGTH) {
			size_t n = avail;
			if (n > *remaining)
				n = (size_t)*remaining;
			data.p = buf_rptr(src);
			data.len = n;
			used = n;
			*remaining -= n;
			if (!*remaining)
				*done = true;
		} else if (kind == H1_BODY_CHUNKED) {
			ssize_t k = h1_chunked_decode(ch, buf_rptr(src), avail, &data);
			if (k < 0)
				return -WG_EPROTO;
			/* total counts what was decoded, remaining what the
			 * current chunk still announces */
			if (ch->total > chunked_max || ch->remaining > chunked_max - ch->total)
				return -WG_ELIMIT;
			used = (size_t)k;
			if (h1_chunked_is_done(ch))
				*done = true;
			if (k == 0 && !data.len && !*done)
				return 0;
		} else { /* EOF-delimited: everything */
			data.p = buf_rptr(src);
			data.len = avail;
			used = data.len;
		}
		char hdr[24];
		struct iovec iov[4];
		int n = 0;
		if (data.len)
			n = h1_body_iov(iov, hdr, data.p, data.len, out_chunked);
		if (*done && out_chunked) {
			iov[n].iov_base = (void *)(uintptr_t)H1_CHUNK_LAST;
			iov[n++].iov_len = sizeof(H1_CHUNK_LAST) - 1;
		}
		if (mirrors)
			conn_mirrors_feed(mirrors, iov, n);
		int r = send_or_queue(wk, dst_out, fn, ctx, iov, n, counter);
		buf_consume(src, used);
		if (r < 0)
			return r;
	}
	return *done ? 1 : 0;
}

/* ---- driving a connection ---- */

/* Reads what the client sent into c->in. 1 got bytes, 0 nothing now, -1 closed/error. */
static int client_fill(struct conn *c)
{
	if (wbuf_get(c->w, &c->in))
		return -1;
	if (!buf_room(&c->in)) {
		if (!c->in.head)
			return 0;
		/* safe mid-head too: the parser keeps offsets, not pointers */
		buf_compact(&c->in);
	}
	ssize_t n = cio_read(c, buf_wptr(&c->in), buf_room(&c->in));
	if (n > 0) {
		/* a short read drained the socket; with TLS, decrypted bytes held
		 * inside do not wake epoll, so they count as readable */
		c->readable = (size_t)n == buf_room(&c->in) || (c->tls && tlsg_pending(c->tls));
		buf_commit(&c->in, (size_t)n);
		return 1;
	}
	c->readable = false;
	if (n == -EAGAIN)
		return 0;
	return -1;
}

static void try_parse_head(struct conn *c)
{
	struct h1_header hdrs[PX_MAX_HEADERS];
	struct h1_msg m = {.headers = hdrs, .max_headers = PX_MAX_HEADERS};

	if (buf_is_empty(&c->in))
		return;
	if (!c->head_timer_armed) {
		c->head_timer_armed = true;
		timer_add(c->w->loop, &c->timer, LIM(c)->head_timeout_ms, on_head_timer, c);
	}
	/* the head must start at the front so that it can use the whole buffer */
	if (c->in.head && c->last_len == 0)
		buf_compact(&c->in);
	size_t room_before = buf_room(&c->in);
	ssize_t n =
		h1_parse_request(buf_rptr(&c->in), buf_len(&c->in), c->last_len, &m, &c->lim->h1);
	if (n == 0) {
		c->last_len = buf_len(&c->in);
		if (!room_before) {
			c->r.client_keep_alive = false;
			respond_error(c, 431, "request head too large", true);
		}
		return;
	}
	c->last_len = 0;
	timer_cancel(c->w->loop, &c->timer);
	c->head_timer_armed = false;
	if (n < 0) {
		c->r.start_ms = loop_now_ms(c->w->loop);
		c->r.client_keep_alive = false;
		c->r.req_body_done = true;
		STAT_ADD(c->w, requests, 1);
		respond_error(c, m.err_status ? m.err_status : 400,
			      m.error ? m.error : "bad request", true);
		return;
	}
	req_start(c, &m);
	buf_consume(&c->in, (size_t)n);
	if (c->st == CS_LOCAL && !c->r.req_body_done)
		c->close_after = true;
}

static void up_check_connect(struct upconn *u)
{
	int err = 0;
	socklen_t l = sizeof(err);
	if (getsockopt(u->io.fd, SOL_SOCKET, SO_ERROR, &err, &l) == -1)
		err = errno;
	if (err) {
		struct conn *c = u->owner;
		u->connecting = false;
		connect_failed(c, "backend connect failed");
		return;
	}
	u->connecting = false;
	if (u->idle.tls_ctx) {
		/* the handshake runs under the connect timeout */
		const struct snap_backend *b = u->owner->r.backend;
		u->tls = tlsg_conn_client(u->idle.tls_ctx, u->io.fd, b->tls->sni);
		if (!u->tls) {
			connect_failed(u->owner, "backend TLS setup failed");
			return;
		}
		u->handshaking = true;
		return;
	}
	timer_cancel(u->w->loop, &u->timer);
	if (u->owner && u->owner->r.backend_timeout_ms)
		timer_add(u->w->loop, &u->timer, u->owner->r.backend_timeout_ms, on_up_timer, u);
}

/* Drives the upstream TLS handshake: 1 done, 0 waiting, -1 failed (the
 * request was moved on). */
static int up_handshake(struct conn *c, struct upconn *u)
{
	u->tls_want = 0;
	int h = tlsg_handshake(u->tls);
	if (h == -WG_EAGAIN_READ || h == -WG_EAGAIN_WRITE) {
		u->tls_want = h == -WG_EAGAIN_READ ? LOOP_READ : LOOP_WRITE;
		return 0;
	}
	if (h < 0) {
		log_debug("event=backend_tls_failed worker=%u endpoint=%s:%u", c->w->idx,
			  log_q(u->ep->addr), u->ep->port);
		connect_failed(c, "backend TLS handshake failed");
		return -1;
	}
	u->handshaking = false;
	timer_cancel(u->w->loop, &u->timer);
	if (c->r.backend_timeout_ms)
		timer_add(u->w->loop, &u->timer, c->r.backend_timeout_ms, on_up_timer, u);
	return 1;
}

/*
 * An upgraded connection: bytes both ways until either side closes, which
 * ends both. Idle for the keep-alive timeout → closed.
 */
static bool tunnel_step(struct conn *c)
{
	struct req *r = &c->r;
	struct upconn *u = r->up;
	bool moved = false, never = false;
	uint64_t up_bytes = 0;

	if (!buf_is_empty(&u->out) &&
	    send_or_queue(u->w, &u->out, up_writev, u, NULL, 0, NULL) < 0) {
		conn_close(c, "upgraded connection: backend write failed");
		return true;
	}
	if (c->readable && (buf_room(&c->in) || c->in.head)) {
		int f = client_fill(c);
		if (f < 0) {
			conn_close(c, NULL);
			return true;
		}
		moved |= f > 0;
	}
	if (!buf_is_empty(&c->in)) {
		size_t before = buf_len(&c->in);
		if (pump(c->w, &c->in, H1_BODY_EOF, &up_bytes, NULL, UINT64_MAX, false, &u->out,
			 up_writev, u, NULL, &never, NULL) < 0) {
			conn_close(c, "upgraded connection: backend write failed");
			return true;
		}
		r->bytes_in += before - buf_len(&c->in);
		moved |= buf_len(&c->in) != before;
	}
	if (u->readable && (buf_room(&u->in) || u->in.head)) {
		if (!buf_room(&u->in))
			buf_compact(&u->in);
		size_t want = buf_room(&u->in);
		ssize_t n = up_read(u, buf_wptr(&u->in), want);
		if (n > 0) {
			buf_commit(&u->in, (size_t)n);
			u->readable = (size_t)n == want || (u->tls && tlsg_pending(u->tls));
			moved = true;
		} else if (n != -EAGAIN) {
			conn_close(c, n == 0 ? NULL : "upgraded connection: backend read failed");
			return true;
		} else {
			u->readable = false;
		}
	}
	if (!buf_is_empty(&u->in)) {
		size_t before = buf_len(&u->in);
		if (pump(c->w, &u->in, H1_BODY_EOF, &up_bytes, NULL, UINT64_MAX, false, &c->out,
			 client_writev, c, &r->bytes_out, &never, NULL) < 0) {
			conn_close(c, "upgraded connection: client write failed");
			return true;
		}
		moved |= buf_len(&u->in) != before;
	}
	if (moved)
		timer_add(c->w->loop, &c->timer, LIM(c)->keepalive_timeout_ms, on_head_timer, c);
	return moved;
}

/* One pass of proxying work; returns true when something moved. */
static bool proxy_step(struct conn *c)
{
	struct req *r = &c->r;
	struct upconn *u = r->up;
	bool moved = false;
	int rc;

	if (!u || u->connecting)
		return false;
	if (u->handshaking) {
		int h = up_handshake(c, u);
		if (h <= 0)
			return h < 0;
		moved = true;
	}
	u->tls_want = 0;
	if (r->tunnel)
		return tunnel_step(c);
	/* request head and body towards the backend */
	if (r->up_head_pending) {
		struct iovec head = {r->up_head, r->up_head_len};
		r->up_head_pending = false;
		rc = send_or_queue(u->w, &u->out, up_writev, u, &head, 1, NULL);
		if (rc < 0) {
			attempt_failed(c, 502, "backend write failed", u->reused && !u->got_bytes);
			return true;
		}
	} else if (!buf_is_empty(&u->out)) {
		rc = send_or_queue(u->w, &u->out, up_writev, u, NULL, 0, NULL);
		if (rc < 0) {
			attempt_failed(c, 502, "backend write failed", u->reused && !u->got_bytes);
			return true;
		}
	}
	if (!r->req_body_done) {
		if (c->readable && !c->rd_eof && buf_room(&c->in) + c->in.head > 0) {
			int f = client_fill(c);
			if (f > 0) /* bytes of the body: the idle clock starts again */
				timer_add(c->w->loop, &c->timer, LIM(c)->body_idle_timeout_ms,
					  on_head_timer, c);
			if (f < 0) /* a half-close right after the body: what is
				    * buffered may still complete it (checked after
				    * the pump), and pipelined requests after it */
				c->rd_eof = true;
			moved |= f > 0;
		}
		if (!buf_is_empty(&c->in)) {
			rc = pump(c->w, &c->in, r->req_body, &r->req_remaining, &r->req_ch,
				  LIM(c)->max_body_bytes, r->req_body == H1_BODY_CHUNKED, &u->out,
				  up_writev, u, NULL, &r->req_body_done,
				  r->body_mirrored ? r->body_mirrors : NULL);
			if (rc == -WG_EPROTO || rc == -WG_ELIMIT) {
				if (rc == -WG_EPROTO)
					req_client_failed(c, 400, "invalid chunked body");
				else
					req_client_failed(c, 413, "request body too large");
				return true;
			}
			if (rc < 0) {
				req_upstream_failed(c, 502, "backend write failed");
				return true;
			}
			moved = true;
		}
		if (!r->req_body_done && c->rd_eof && buf_is_empty(&c->in)) {
			req_client_failed(c, 400, "client closed during the body");
			return true;
		}
		if (r->req_body_done) {
			timer_cancel(c->w->loop, &c->timer); /* the body idle clock */
			mirrors_let_go(c);
		}
	} else if (c->readable && !c->rd_eof && (buf_room(&c->in) || c->in.head)) {
		/* read ahead: pipelined requests wait in c->in, and the
		 * interest set stays the same for the whole exchange; a
		 * half-close only means no request comes after those */
		int f = client_fill(c);
		if (f < 0)
			c->rd_eof = true;
		moved |= f > 0;
	}
	/* the response towards the client */
	if (u->readable && !r->resp_done && (buf_room(&u->in) || u->in.head)) {
		if (!buf_room(&u->in))
			buf_compact(&u->in);
		size_t want = buf_room(&u->in);
		ssize_t n = up_read(u, buf_wptr(&u->in), want);
		if (n > 0) {
			buf_commit(&u->in, (size_t)n);
			u->got_bytes = true;
			/* a short read drained the socket; TLS may hold more inside */
			u->readable = (size_t)n == want || (u->tls && tlsg_pending(u->tls));
			moved = true;
		} else if (n != -EAGAIN) {
			u->readable = false;
			if (r->resp_head_done && r->resp_body == H1_BODY_EOF) {
				r->resp_done = true;
				if (r->resp_chunked_out) {
					struct iovec last = {(void *)(uintptr_t)H1_CHUNK_LAST, 5};
					if (send_or_queue(c->w, &c->out, client_writev, c, &last, 1,
							  &r->bytes_out) < 0) {
						conn_close(c, "client write failed");
						return true;
					}
				}
				return true;
			}
			if (!r->resp_head_done)
				attempt_failed(c, 502,
					       n == 0 ? "backend closed the connection"
						      : "backend read failed",
					       u->reused && !u->got_bytes);
			else
				req_upstream_failed(c, 502, "backend closed mid-response");
			return true;
		} else {
			u->readable = false;
		}
	}
	if (!r->resp_head_done && !buf_is_empty(&u->in)) {
		rc = resp_head(c);
		if (rc <= 0)
			return rc < 0;
		if (r->tunnel)
			return true;
		moved = true;
	}
	if (r->resp_head_done && !r->resp_done && !buf_is_empty(&u->in)) {
		rc = pump(c->w, &u->in, r->resp_body, &r->resp_remaining, &r->resp_ch, UINT64_MAX,
			  r->resp_chunked_out, &c->out, client_writev, c, &r->bytes_out,
			  &r->resp_done, NULL);
		if (rc == -WG_EPROTO) {
			req_upstream_failed(c, 502, "invalid chunked response");
			return true;
		}
		if (rc < 0) {
			conn_close(c, "client write failed");
			return true;
		}
		moved = true;
	}
	return moved;
}

static void conn_set_io(struct conn *c)
{
	uint32_t ev = 0;
	struct req *r = &c->r;

	switch (c->st) {
	case CS_HANDSHAKE: ev = c->tls_want ? c->tls_want : LOOP_READ; break;
	case CS_HEAD:
		if (!c->rd_eof && (!c->in.data || buf_room(&c->in)))
			ev |= LOOP_READ;
		break;
	case CS_PROXY:
		/* not while the backend connection is being made: nothing would
		 * read it, and a level-triggered EOF would spin */
		if (!c->rd_eof && (!c->in.data || buf_room(&c->in) || c->in.head) &&
		    !(r->up && (r->up->connecting || r->up->handshaking)))
			ev |= LOOP_READ;
		break;
	case CS_LINGER: ev = LOOP_READ; break;
	default: break;
	}
	if (!buf_is_empty(&c->out))
		ev |= LOOP_WRITE;
	if (c->tls && c->tls_want)
		ev |= c->tls_want;
	loop_io_mod(c->w->loop, &c->io, ev);
	if (r->up && r->up->io.fd >= 0)
		up_set_io(r->up);
}

/*
 * HTTP/2 hook: a client that chose "h2" by ALPN, or that opens a cleartext
 * connection with the HTTP/2 preface, is handed to h2.c with its fd, TLS
 * and the bytes already read. True when c is gone (closed here).
 */
static bool conn_to_h2(struct conn *c)
{
	if (c->n_requests)
		return false;
	if (c->tls) {
		const char *a = tlsg_alpn(c->tls);
		if (!a || strcmp(a, "h2"))
			return false;
	} else {
		size_t n = buf_len(&c->in);
		if (!n || c->st != CS_HEAD || c->last_len)
			return false;
		if (memcmp(buf_rptr(&c->in), H2_PREFACE, n < H2_PREFACE_LEN ? n : H2_PREFACE_LEN))
			return false;
		if (n < H2_PREFACE_LEN)
			return false; /* a prefix of the preface: wait for the rest */
	}
	int fd = c->fd;
	struct tls_conn *t = c->tls;
	const char *sni = t ? tlsg_sni(t) : NULL;
	char sbuf[256];
	snprintf(sbuf, sizeof(sbuf), "%s", sni ? sni : "");
	loop_io_del(c->w->loop, &c->io);
	c->io.fd = -1;
	c->tls = NULL;
	c->fd = -1;
	h2p_take(c->w, fd, t, &c->ticket, c->sock_id, c->port, c->peer, sbuf, buf_rptr(&c->in),
		 buf_len(&c->in));
	conn_close(c, NULL);
	return true;
}

/* Does everything the connection can do now, then re-arms its interests. */
static void conn_run(struct conn *c)
{
	if (c->in_run)
		return;
	c->in_run = true;
	/* bounded only by the input already buffered; the guard is a backstop */
	for (int guard = 0; guard < 100000 && !c->closing_now; guard++) {
		bool moved = false;
		c->tls_want = 0;
		if (c->st == CS_HANDSHAKE) {
			int h = tlsg_handshake(c->tls);
			if (h == -WG_EAGAIN_READ || h == -WG_EAGAIN_WRITE) {
				c->tls_want = h == -WG_EAGAIN_READ ? LOOP_READ : LOOP_WRITE;
				break;
			}
			if (h < 0) {
				conn_close(c, "tls handshake failed");
				break;
			}
			c->st = CS_HEAD;
			c->readable = true;
			moved = true;
			if (conn_to_h2(c))
				break;
		}
		/* output first: it frees room for everything else */
		if (!buf_is_empty(&c->out)) {
			int rc = send_or_queue(c->w, &c->out, client_writev, c, NULL, 0, NULL);
			if (rc < 0) {
				conn_close(c, "client write failed");
				break;
			}
		}
		switch (c->st) {
		case CS_HEAD:
			if (c->readable && !c->rd_eof) {
				int f = client_fill(c);
				if (f < 0 && buf_is_empty(&c->in)) {
					conn_close(c, "client closed");
					break;
				}
				/* a half-close after pipelined requests: answer the
				 * complete ones in order, then close */
				c->rd_eof |= f < 0;
				moved |= f != 0;
			}
			{
				enum conn_state before = c->st;
				size_t len_before = buf_len(&c->in);
				if (conn_to_h2(c))
					break;
				try_parse_head(c);
				moved |= c->st != before || buf_len(&c->in) != len_before;
				if (c->st == CS_HEAD && c->rd_eof) {
					conn_close(c, buf_is_empty(&c->in)
							      ? "client closed"
							      : "client closed mid-head");
					break;
				}
			}
			break;
		case CS_PROXY:
			moved |= proxy_step(c);
			if (c->closing_now)
				break;
			if (c->st == CS_PROXY && c->r.resp_done && buf_is_empty(&c->out) &&
			    (c->r.req_body_done || c->close_after)) {
				req_finish(c);
				moved = true;
			}
			break;
		case CS_LOCAL:
			if (buf_is_empty(&c->out)) {
				if (c->r.up) {
					up_free(c->r.up);
					c->r.up = NULL;
				}
				req_finish(c);
				moved = true;
			}
			break;
		case CS_CLOSING:
			if (!buf_is_empty(&c->out))
				break;
			if (c->tls || c->rd_eof) {
				conn_close(c, NULL);
				break;
			}
			/* a client may still be sending (a refused 1 MiB head): closing
			 * now would reset the connection and destroy the answer in
			 * flight, so half-close and read on for a bounded while */
			shutdown(c->fd, SHUT_WR);
			c->st = CS_LINGER;
			c->linger_left = PX_LINGER_BYTES;
			timer_add(c->w->loop, &c->timer, PX_LINGER_MS, on_head_timer, c);
			moved = true;
			break;
		case CS_LINGER:
			while (c->readable) {
				char sink[4096];
				ssize_t n = read(c->fd, sink, sizeof(sink));
				if (n > 0 && (size_t)n < c->linger_left) {
					c->linger_left -= (size_t)n;
					continue;
				}
				if (n < 0 && errno == EAGAIN) {
					c->readable = false;
					break;
				}
				conn_close(c, NULL); /* EOF, error or enough */
				break;
			}
			break;
		default: break;
		}
		if (!moved)
			break;
	}
	c->in_run = false;
	if (!c->closing_now)
		conn_set_io(c);
}

/* ---- I/O callbacks ---- */

static void on_conn_io(struct loop_io *io, uint32_t events)
{
	struct conn *c = io->arg;
	if (events & LOOP_READ)
		c->readable = true;
	if (events & LOOP_WRITE)
		c->writable = true;
	if ((events & LOOP_ERROR) && !(events & (LOOP_READ | LOOP_WRITE))) {
		conn_close(c, "connection error");
		return;
	}
	conn_run(c);
}

static void on_up_io(struct loop_io *io, uint32_t events)
{
	struct upconn *u = io->arg;

	if (u->mirror) {
		mirror_io(u, events);
		return;
	}
	if (!u->owner) {
		/* idle in the pool: any event means it closed or misbehaves */
		up_free(u);
		return;
	}
	struct conn *c = u->owner;
	if (events & LOOP_READ)
		u->readable = true;
	if (events & LOOP_WRITE)
		u->writable = true;
	if (u->connecting && (events & (LOOP_WRITE | LOOP_ERROR))) {
		up_check_connect(u);
		if (c->r.up != u) {
			conn_run(c);
			return;
		}
	}
	conn_run(c);
}

/* ---- accept, close, drain ---- */

/* Recycles the connections closed since the last iteration. */
static void free_dead(void *arg)
{
	struct worker *w = arg;
	w->dead_scheduled = false;
	while (w->dead) {
		struct conn *c = w->dead;
		w->dead = c->next_free;
		if (w->n_free_conns < 256) {
			c->next_free = w->free_conns;
			w->free_conns = c;
			w->n_free_conns++;
			continue;
		}
		arena_free(c->arena);
		free(c);
	}
}

static void conn_close(struct conn *c, const char *why)
{
	struct worker *w = c->w;

	if (c->closing_now)
		return;
	c->closing_now = true;
	if (why && log_enabled(LOG_DEBUG))
		log_debug("event=conn_close worker=%u client=%s requests=%u reason=%s", w->idx,
			  log_q(c->peer), c->n_requests, log_q(why));
	if (c->r.up) {
		up_free(c->r.up);
		c->r.up = NULL;
	}
	mirrors_let_go(c);
	if (c->r.start_ms && c->st != CS_HEAD && c->st != CS_CLOSING) {
		c->r.error = c->r.error ? c->r.error : why;
		access_log(c, c->r.status ? c->r.status : 499);
	}
	timer_cancel(w->loop, &c->timer);
	timer_cancel(w->loop, &c->req_timer);
	timer_cancel(w->loop, &c->retry_timer);
	if (c->io.fd >= 0)
		loop_io_del(w->loop, &c->io);
	if (c->tls) {
		if (why == NULL)
			tlsg_close_notify(c->tls);
		tlsg_conn_free(c->tls);
		c->tls = NULL;
	}
	if (!c->tls) {
		/* unread input would turn close() into a reset that can destroy
		 * the response still in flight: half-close and drain a little */
		char sink[4096];
		if (c->fd >= 0)
			shutdown(c->fd, SHUT_WR);
		for (int i = 0; c->fd >= 0 && i < 16 && read(c->fd, sink, sizeof(sink)) > 0; i++)
			;
	}
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	wbuf_put(w, &c->in);
	wbuf_put(w, &c->out);
	rt_unref(c->r.rt);
	c->r.rt = NULL;
	warena_put(w, c->arena);
	c->arena = NULL;
	if (c->prev)
		c->prev->next = c->next;
	else
		w->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	wk_conns_add(w, -1);
	if (c->refused)
		w->n_refusing--;
	admit_release(w->p, &c->ticket);
	STAT_ADD(w, active_connections, (uint64_t)-1);
	/* callers up the stack may still look at c: recycle it on the next
	 * iteration (conn_free_cached takes what a stopped loop left) */
	c->next_free = w->dead;
	w->dead = c;
	if (w->stopped) {
		free_dead(w);
	} else if (!w->dead_scheduled && loop_defer(w->loop, free_dead, w) == 0) {
		w->dead_scheduled = true;
	}
	if (w->draining && !w->n_conns)
		loop_stop(w->loop);
}

/*
 * A connection over a cap gets a 503 on a plain HTTP listener (through the
 * usual response path, so the answer survives a client still sending), up
 * to PX_REJECT_RESERVE at a time per worker; TLS ones, and any beyond the
 * reserve, are closed at once.
 */
static bool refusal_answered(struct worker *w, const struct rt_socket *rs)
{
	return !rs->tls && w->n_refusing < PX_REJECT_RESERVE;
}

void conn_accept(struct worker *w, struct wlsn *l, int fd, const struct sockaddr *sa,
		 socklen_t salen)
{
	struct rt_socket *rs = w->rt ? rt_socket_by_id(w->rt, l->ps->id) : NULL;
	struct px_limits *lim = px_limits_for(w->p, l->ps->port);
	struct admit_ticket ticket;
	int one = 1;
	(void)salen;

	if (!rs || w->draining) {
		close(fd);
		return;
	}
	char peer[48];
	peer_str(sa, peer, sizeof(peer));
	enum admit_result adm = admit_take(w->p, lim, l->ps->port, sa, &ticket);
	if (adm != ADMIT_OK) {
		admit_log_refusal(w->p, adm, peer, l->ps->port, loop_now_ms(w->loop));
		if (!refusal_answered(w, rs)) {
			close(fd);
			return;
		}
	}
	struct conn *c = w->free_conns;
	if (c) {
		w->free_conns = c->next_free;
		w->n_free_conns--;
		memset(c, 0, sizeof(*c));
	} else if (!(c = calloc(1, sizeof(*c)))) {
		admit_release(w->p, &ticket);
		close(fd);
		return;
	}
	c->w = w;
	c->fd = fd;
	c->sock_id = l->ps->id;
	c->port = l->ps->port;
	c->lim = lim;
	c->ticket = ticket;
	memcpy(c->peer, peer, sizeof(peer));
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->st = CS_HEAD;
	if (rs->tls && adm == ADMIT_OK) {
		c->tls = tlsg_conn_new(rs, fd);
		if (!c->tls) {
			admit_release(w->p, &c->ticket);
			close(fd);
			free(c);
			return;
		}
		c->st = CS_HANDSHAKE;
	}
	if (loop_io_add(w->loop, &c->io, fd, LOOP_READ, on_conn_io, c)) {
		if (c->tls)
			tlsg_conn_free(c->tls);
		admit_release(w->p, &c->ticket);
		close(fd);
		free(c);
		return;
	}
	c->next = w->conns;
	if (w->conns)
		w->conns->prev = c;
	w->conns = c;
	wk_conns_add(w, 1);
	STAT_ADD(w, active_connections, 1);
	STAT_ADD(w, total_connections, 1);
	if (adm != ADMIT_OK) {
		/* answered before anything is read: the client may be sending
		 * its request, which the linger after the answer absorbs */
		c->refused = true;
		w->n_refusing++;
		c->r.start_ms = loop_now_ms(w->loop);
		c->r.client_keep_alive = false;
		c->r.req_body_done = true;
		STAT_ADD(w, requests, 1);
		respond_error(c, 503, "too many connections", true);
		conn_run(c);
		return;
	}
	/* the handshake or the first head must arrive within the head timeout */
	c->head_timer_armed = true;
	timer_add(w->loop, &c->timer, lim->l.head_timeout_ms, on_head_timer, c);
	c->readable = true;
	conn_run(c);
}

void conn_drain_all(struct worker *w, bool force)
{
	struct conn *c = w->conns;
	while (c) {
		struct conn *next = c->next;
		if (force || c->st == CS_HEAD || c->st == CS_HANDSHAKE || c->st == CS_LINGER)
			conn_close(c, "draining");
		else
			c->close_after = true;
		c = next;
	}
}

void conn_mirrors_free(struct worker *w)
{
	while (w->mirrors)
		up_free(w->mirrors);
}

void conn_free_cached(struct worker *w)
{
	w->stopped = true;
	free_dead(w);
	while (w->free_conns) {
		struct conn *c = w->free_conns;
		w->free_conns = c->next_free;
		free(c);
	}
	w->n_free_conns = 0;
	while (w->n_free_arenas)
		arena_free(w->free_arenas[--w->n_free_arenas]);
}
