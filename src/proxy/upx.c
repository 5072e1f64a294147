/* SPDX-License-Identifier: MIT */
/*
 * upx.c: HTTP/1.1 exchanges with backends for requests that arrive on
 * HTTP/2 streams (see upx.h for the contract). An exchange moves through
 *
 *   CONNECT   connecting (new connection)          → HANDSHAKE, SEND, or the next attempt
 *   HANDSHAKE upstream TLS (BackendTLSPolicy), under → SEND, or the next attempt
 *             the connect timeout
 *   SEND      head and body going out, response    → BODY (head given), or
 *             head awaited                            the next attempt
 *   WAIT      retry backoff                        → CONNECT/SEND
 *   BODY      the owner pulls the body (upx_read)  → DONE
 *   DONE      the response is complete; the connection went back to the
 *             pool (or was closed)
 *   FAILED    on_fail was called
 *
 * The connection's input buffer is the response body's only buffer: the
 * owner's upx_read decodes from it into its own frame buffer, and the
 * socket is read only while that buffer has room (backpressure).
 *
 * Upstream TLS connections are pooled apart: only a request under the same
 * policy (client context) reuses one. Decrypted bytes mbedTLS holds do not
 * wake epoll, so they are read on the spot: after a read, and when the
 * owner pulls the body.
 *
 * It does not do: upgrades (HTTP/2 has no Upgrade), mirrors (h2.c sends
 * them through conn_mirror_open). Worker thread only.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/err.h"
#include "core/log.h"
#include "proxy/internal.h"
#include "proxy/upx.h"

enum upx_state { UPX_CONNECT = 0, UPX_HANDSHAKE, UPX_SEND, UPX_WAIT, UPX_BODY, UPX_DONE, UPX_FAILED };

/* An upstream HTTP/1.1 connection: owned by one exchange, or idle in its
 * endpoint's list (x == NULL; no buffers held). */
struct upx_conn {
	struct loop_io io;
	struct worker *w;
	struct upep *ep;
	struct upx *x;
	struct up_idle idle; /* its place in ep->x_pool; idle.tls_ctx: the policy's
			      * client context, NULL: plain */
	struct tls_conn *tls;
	uint32_t tls_want; /* LOOP_READ/LOOP_WRITE the TLS layer asked for */
};

struct upx {
	struct worker *w;
	const struct upx_cbs *cbs;
	void *ctx;
	struct upx_req rq;
	enum upx_state st;
	struct upx_conn *c;
	struct buf in, out;
	struct timer timer; /* connect, then backend request, or retry backoff */
	bool reused;        /* c came from the pool */
	bool got_bytes;     /* any response byte on this attempt */
	bool body_started;  /* a request body byte left: no replay any more */
	bool req_done;      /* the whole request is written */
	bool replayed;      /* the one silent replay on a fresh connection was used */
	int attempts_left;
	unsigned repicks;
	const struct snap_backend *backend;
	/* response */
	size_t last_len;
	enum h1_body body;
	uint64_t remaining;
	struct h1_chunked ch;
	bool keep_alive;
	bool resp_done;
	bool notify_body; /* on_body is owed to the owner */
	struct upx *next_free; /* on tl_free */
};

#define UPX_CONNECT_REPICKS 2

/* Exchanges of this worker kept for reuse: they churn at the request rate. */
#define UPX_FREE_MAX 256
static __thread struct upx *tl_free;
static __thread unsigned tl_n_free;

static void on_conn_io(struct loop_io *io, uint32_t events);
static void x_run(struct upx *x);
static int x_attempt(struct upx *x);
static void x_set_io(struct upx *x);

static uint32_t connect_timeout_ms(const struct worker *w)
{
	uint32_t t = w->p->cfg.limits.connect_timeout_ms;
	return t ? t : 5000;
}

/* ---- connections ---- */

static void conn_free(struct upx_conn *c)
{
	if (c->tls)
		tlsg_conn_free(c->tls);
	if (c->io.fd >= 0) {
		int fd = c->io.fd;
		loop_io_del(c->w->loop, &c->io);
		close(fd);
	}
	up_pool_remove(c->w, &c->idle);
	free(c);
}

static void on_idle_close(struct up_idle *n)
{
	conn_free((struct upx_conn *)((char *)n - offsetof(struct upx_conn, idle)));
}

/* Detaches x's connection: back to the pool when reusable, else closed. */
static void x_drop_conn(struct upx *x, bool reusable)
{
	struct upx_conn *c = x->c;
	if (!c)
		return;
	x->c = NULL;
	c->x = NULL;
	if (!reusable || !buf_is_empty(&x->in) || !up_pool_put(x->w, &c->ep->x_pool, &c->idle)) {
		conn_free(c);
		return;
	}
	/* an idle connection only waits for the backend to close it */
	loop_io_mod(x->w->loop, &c->io, LOOP_READ);
}

/* A connection to ep: an idle one (unless fresh), else a new connect. */
static struct upx_conn *conn_get(struct upx *x, struct upep *ep, struct tls_client *tc,
				  bool fresh, int *err)
{
	struct up_idle *n = fresh ? NULL : up_pool_take(x->w, &ep->x_pool, tc);
	struct upx_conn *c;
	if (n) {
		c = (struct upx_conn *)((char *)n - offsetof(struct upx_conn, idle));
		x->reused = true;
		c->x = x;
		return c;
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		*err = -ENOMEM;
		return NULL;
	}
	c->w = x->w;
	c->ep = ep;
	c->io.fd = -1;
	int fd = up_connect(ep->addr, ep->port);
	if (fd < 0) {
		*err = fd;
		free(c);
		return NULL;
	}
	if (loop_io_add(x->w->loop, &c->io, fd, LOOP_WRITE, on_conn_io, c)) {
		close(fd);
		free(c);
		*err = -ENOMEM;
		return NULL;
	}
	x->reused = false;
	c->idle.tls_ctx = tc;
	c->idle.close = on_idle_close;
	c->x = x;
	return c;
}

/* Bytes read (0: closed), -EAGAIN, or -1. */
static ssize_t conn_read(struct upx_conn *c, char *p, size_t n)
{
	if (c->tls) {
		ssize_t r = tlsg_read(c->tls, p, n);
		if (r == -WG_EAGAIN_READ || r == -WG_EAGAIN_WRITE) {
			c->tls_want = r == -WG_EAGAIN_READ ? LOOP_READ : LOOP_WRITE;
			return -EAGAIN;
		}
		return r < 0 ? -1 : r;
	}
	ssize_t r = read(c->io.fd, p, n);
	if (r == -1)
		return errno == EAGAIN || errno == EINTR ? -EAGAIN : -1;
	return r;
}

/* Bytes written, -EAGAIN, or -1. */
static ssize_t conn_write(struct upx_conn *c, const char *p, size_t n)
{
	if (c->tls) {
		ssize_t r = tlsg_write(c->tls, p, n);
		if (r == -WG_EAGAIN_READ || r == -WG_EAGAIN_WRITE) {
			c->tls_want = r == -WG_EAGAIN_READ ? LOOP_READ : LOOP_WRITE;
			return -EAGAIN;
		}
		return r < 0 ? -1 : r;
	}
	ssize_t r = send(c->io.fd, p, n, MSG_NOSIGNAL);
	if (r == -1)
		return errno == EAGAIN || errno == EINTR ? -EAGAIN : -1;
	return r;
}

/* ---- attempts ---- */

/* Ends the exchange with status (no head given) and tells the owner. */
static void x_fail(struct upx *x, int status, const char *why)
{
	STAT_ADD(x->w, upstream_errors, 1);
	if (x->c)
		upep_result(x->w, x->c->ep, false);
	x_drop_conn(x, false);
	timer_cancel(x->w->loop, &x->timer);
	x->st = UPX_FAILED;
	x->cbs->on_fail(x->ctx, status, why);
}

static bool replayable(const struct upx *x)
{
	return !x->rq.has_body;
}

static void on_retry_timer(struct timer *t)
{
	struct upx *x = t->arg;
	int status = x_attempt(x);
	if (status) {
		x->st = UPX_FAILED;
		x->cbs->on_fail(x->ctx, status, "no endpoint");
		return;
	}
	x_set_io(x);
}

/*
 * The attempt failed before a response head was given: replay once on a
 * fresh connection when a reused one died silently, then follow the
 * route's retry policy, else fail. Returns true when the owner was told
 * (x may be gone), false when a new attempt is under way.
 */
/* A new attempt at once, on a new connection: false when it is under way,
 * true when it could not start (the owner was told). */
static bool x_try_again(struct upx *x, const char *why)
{
	x_drop_conn(x, false);
	int s = x_attempt(x);
	if (!s) {
		x_set_io(x);
		return false;
	}
	x->st = UPX_FAILED;
	x->cbs->on_fail(x->ctx, s, why);
	return true;
}

static bool x_attempt_failed(struct upx *x, int status, const char *why, bool fresh_replay)
{
	if (fresh_replay && !x->replayed && replayable(x)) {
		x->replayed = true;
		return x_try_again(x, why);
	}
	if (x->attempts_left > 0 && replayable(x)) {
		x->attempts_left--;
		STAT_ADD(x->w, upstream_errors, 1);
		if (x->c)
			upep_result(x->w, x->c->ep, false);
		x_drop_conn(x, false);
		x->st = UPX_WAIT;
		timer_add(x->w->loop, &x->timer, x->rq.rule->r->retry.backoff_ms, on_retry_timer,
			  x);
		log_debug("event=retry worker=%u status=%d reason=%s", x->w->idx, status,
			  log_q(why));
		return false;
	}
	x_fail(x, status, why);
	return true;
}

/* No connection to the endpoint: another endpoint at once (a few times),
 * then the retry policy (503). Same return as x_attempt_failed. */
static bool x_connect_failed(struct upx *x, const char *why)
{
	if (x->repicks < UPX_CONNECT_REPICKS && (size_t)x->repicks + 1 < x->backend->n_endpoints) {
		x->repicks++;
		STAT_ADD(x->w, upstream_errors, 1);
		if (x->c)
			upep_result(x->w, x->c->ep, false);
		return x_try_again(x, why);
	}
	return x_attempt_failed(x, 503, why, false);
}

static void on_timer(struct timer *t)
{
	struct upx *x = t->arg;
	if (x->st == UPX_CONNECT || x->st == UPX_HANDSHAKE)
		x_connect_failed(x, "backend connect timeout");
	else
		x_attempt_failed(x, 504, "backend request timeout", false);
}

/* The connection is ready (connected, TLS done, or reused): the request
 * goes out and the backend request timeout starts. */
static void x_sending(struct upx *x)
{
	uint32_t bto = x->rq.rule ? x->rq.rule->r->backend_request_timeout_ms : 0;
	x->st = UPX_SEND;
	if (bto)
		timer_add(x->w->loop, &x->timer, bto, on_timer, x);
	else
		timer_cancel(x->w->loop, &x->timer);
}

/*
 * Starts one attempt: picks an endpoint (and a backend again when the rule
 * has several), takes a connection and queues the head. 0, or the status
 * to answer when nothing could be started.
 */
static int x_attempt(struct upx *x)
{
	struct worker *w = x->w;
	const struct rt_rule *rr = x->rq.rule;

	if (rr && rr->r->n_backends > 1) {
		const struct snap_backend *b = up_pick_backend(rr);
		if (b && !b->invalid_status && b->n_endpoints && b->proto != SNAP_APP_H2 &&
		    b->proto != SNAP_APP_H2C)
			x->backend = b;
	}
	struct tls_client *tc = NULL;
	if (x->backend->tls) {
		const struct rt_btls *bt = tlsg_backend(x->rq.rt, x->backend);
		if (!bt || !bt->client)
			return 502;
		tc = bt->client;
	}
	for (;;) {
		struct upep *ep = up_pick_endpoint(w, x->backend);
		if (!ep)
			return 503;
		int err = 0;
		x->c = conn_get(x, ep, tc, x->replayed, &err);
		if (x->c)
			break;
		if (err == -ENOMEM)
			return 500;
		upep_result(w, ep, false);
		if (x->repicks >= UPX_CONNECT_REPICKS ||
		    (size_t)x->repicks + 1 >= x->backend->n_endpoints)
			return 503;
		x->repicks++;
	}
	if (wbuf_get(w, &x->out) || wbuf_get(w, &x->in)) {
		x_drop_conn(x, false);
		return 500;
	}
	x->out.head = x->out.tail = 0;
	x->in.head = x->in.tail = 0;
	memcpy(buf_wptr(&x->out), x->rq.head, x->rq.head_len);
	buf_commit(&x->out, x->rq.head_len);
	x->got_bytes = false;
	x->last_len = 0;
	x->req_done = !x->rq.has_body;
	if (!x->reused) {
		x->st = UPX_CONNECT;
		timer_add(w->loop, &x->timer, connect_timeout_ms(w), on_timer, x);
		return 0;
	}
	x_sending(x);
	return 0;
}

/* ---- I/O ---- */

/* Appends request body bytes from the owner to out; chunk framing when asked. */
static void x_pull_body(struct upx *x)
{
	while (!x->req_done) {
		buf_compact(&x->out);
		size_t room = buf_room(&x->out);
		size_t frame = x->rq.chunked ? 24 : 0; /* chunk header + CRLF + last chunk */
		if (room <= frame + sizeof(H1_CHUNK_LAST))
			return;
		char *dst = buf_wptr(&x->out) + (frame ? 19 : 0);
		bool end = false;
		size_t n = x->cbs->read_body(x->ctx, dst, room - frame - sizeof(H1_CHUNK_LAST), &end);
		if (n) {
			x->body_started = true;
			if (x->rq.chunked) {
				char hd[24];
				size_t hl = h1_chunk_header(hd, n);
				memmove(buf_wptr(&x->out) + hl, dst, n);
				memcpy(buf_wptr(&x->out), hd, hl);
				memcpy(buf_wptr(&x->out) + hl + n, "\r\n", 2);
				buf_commit(&x->out, hl + n + 2);
			} else {
				buf_commit(&x->out, n);
			}
		}
		if (end) {
			if (x->rq.chunked)
				buf_append(&x->out, H1_CHUNK_LAST, sizeof(H1_CHUNK_LAST) - 1);
			x->req_done = true;
		}
		if (!n)
			return;
	}
}

/* Writes what is queued; 0, or -1 on a write error. */
static int x_write(struct upx *x)
{
	x_pull_body(x);
	while (!buf_is_empty(&x->out)) {
		ssize_t r = conn_write(x->c, buf_rptr(&x->out), buf_len(&x->out));
		if (r == -EAGAIN)
			return 0;
		if (r < 0)
			return -1;
		buf_consume(&x->out, (size_t)r);
		if (buf_is_empty(&x->out))
			x_pull_body(x);
	}
	return 0;
}

static bool retry_on_status(const struct upx *x, int status)
{
	if (!x->rq.rule || x->attempts_left <= 0 || !replayable(x))
		return false;
	const struct snap_retry *rt = &x->rq.rule->r->retry;
	for (size_t i = 0; i < rt->n_codes; i++)
		if (rt->codes[i] == status)
			return true;
	return false;
}

/* Parses the response head in x->in. 1 given to the owner, 0 need more,
 * -1 the attempt failed (x may be gone). */
static int x_head(struct upx *x)
{
	struct h1_header hdrs[PX_MAX_HEADERS];
	struct h1_msg m = {.headers = hdrs, .max_headers = PX_MAX_HEADERS};

	for (;;) {
		ssize_t n = h1_parse_response(buf_rptr(&x->in), buf_len(&x->in), x->last_len, &m,
					      &x->w->p->hlim, x->rq.head_method);
		if (n == 0) {
			x->last_len = buf_len(&x->in);
			if (!buf_room(&x->in)) {
				if (!x->in.head) {
					x_attempt_failed(x, 502, "response head too large", false);
					return -1;
				}
				/* after interim answers: room for the rest of the head
				 * (the parser keeps lengths, not pointers) */
				buf_compact(&x->in);
			}
			return 0;
		}
		if (n < 0) {
			x_attempt_failed(x, 502, m.error ? m.error : "invalid response", false);
			return -1;
		}
		x->last_len = 0;
		if (m.status == 101) {
			x_attempt_failed(x, 502, "unexpected protocol switch", false);
			return -1;
		}
		if (m.status < 200) {
			buf_consume(&x->in, (size_t)n); /* interim responses are dropped */
			continue;
		}
		if (retry_on_status(x, m.status)) {
			x_attempt_failed(x, m.status, "retryable status", false);
			return -1;
		}
		timer_cancel(x->w->loop, &x->timer);
		/* only gateway-class answers say the endpoint itself is unwell */
		upep_result(x->w, x->c->ep, m.status < 502 || m.status > 504);
		x->body = m.body;
		x->remaining = m.content_length;
		x->keep_alive = m.keep_alive && m.body != H1_BODY_EOF;
		x->resp_done = m.body == H1_BODY_NONE;
		x->st = UPX_BODY;
		x->cbs->on_head(x->ctx, &m);
		buf_consume(&x->in, (size_t)n);
		return 1;
	}
}

static void x_set_io(struct upx *x)
{
	if (!x->c)
		return;
	uint32_t ev = x->c->tls_want;
	if (x->st == UPX_HANDSHAKE) {
		loop_io_mod(x->w->loop, &x->c->io, ev ? ev : LOOP_READ);
		return;
	}
	if (x->st == UPX_CONNECT || !buf_is_empty(&x->out))
		ev |= LOOP_WRITE;
	if (x->st == UPX_SEND || (x->st == UPX_BODY && !x->resp_done && buf_room(&x->in)))
		ev |= LOOP_READ;
	loop_io_mod(x->w->loop, &x->c->io, ev);
}

/* Releases the connection once both directions are complete. */
static void x_maybe_done(struct upx *x)
{
	if (x->st == UPX_BODY && x->resp_done && x->req_done && buf_is_empty(&x->out)) {
		x->st = UPX_DONE;
		x_drop_conn(x, x->keep_alive);
		wbuf_put(x->w, &x->out);
		if (buf_is_empty(&x->in))
			wbuf_put(x->w, &x->in);
	}
}

/* One pass of work after readiness; callbacks to the owner come last. */
static void x_run(struct upx *x)
{
	struct upx_conn *c = x->c;

	if (x->st == UPX_CONNECT) {
		int err = 0;
		socklen_t l = sizeof(err);
		if (getsockopt(c->io.fd, SOL_SOCKET, SO_ERROR, &err, &l) == -1)
			err = errno;
		if (err) {
			x_connect_failed(x, "backend connect failed");
			return;
		}
		if (!c->idle.tls_ctx) {
			x_sending(x);
		} else {
			/* the handshake runs under the connect timeout */
			c->tls = tlsg_conn_client(c->idle.tls_ctx, c->io.fd, x->backend->tls->sni);
			if (!c->tls) {
				x_connect_failed(x, "backend TLS setup failed");
				return;
			}
			x->st = UPX_HANDSHAKE;
		}
	}
	if (x->st == UPX_HANDSHAKE) {
		c->tls_want = 0;
		int h = tlsg_handshake(c->tls);
		if (h == -WG_EAGAIN_READ || h == -WG_EAGAIN_WRITE) {
			c->tls_want = h == -WG_EAGAIN_READ ? LOOP_READ : LOOP_WRITE;
			x_set_io(x);
			return;
		}
		if (h < 0) {
			log_debug("event=backend_tls_failed worker=%u endpoint=%s:%u", x->w->idx,
				  log_q(c->ep->addr), c->ep->port);
			x_connect_failed(x, "backend TLS handshake failed");
			return;
		}
		c->tls_want = 0;
		x_sending(x);
	}
	c->tls_want = 0;
	if (x_write(x) < 0) {
		if (x->st == UPX_SEND)
			x_attempt_failed(x, 502, "backend write failed",
					 x->reused && !x->body_started);
		else
			x_fail(x, 502, "backend write failed");
		return;
	}
	/* one read, and more while TLS holds decrypted bytes epoll cannot see */
	while ((x->st == UPX_SEND || x->st == UPX_BODY) && !x->resp_done && buf_room(&x->in)) {
		ssize_t r = conn_read(c, buf_wptr(&x->in), buf_room(&x->in));
		if (r > 0) {
			buf_commit(&x->in, (size_t)r);
			x->got_bytes = true;
			if (c->tls && tlsg_pending(c->tls))
				continue;
		} else if (r != -EAGAIN) {
			if (x->st == UPX_BODY && x->body == H1_BODY_EOF) {
				x->resp_done = true; /* the close ends the body */
				x->keep_alive = false;
				x->notify_body = true;
			} else if (x->st == UPX_SEND) {
				x_attempt_failed(x,
						 502,
						 r == 0 ? "backend closed the connection"
							: "backend read failed",
						 x->reused && !x->got_bytes && !x->body_started);
				return;
			} else {
				x_fail(x, 502, "backend closed mid-response");
				return;
			}
		}
		break;
	}
	if (x->st == UPX_SEND && !buf_is_empty(&x->in)) {
		int h = x_head(x);
		if (h < 0)
			return;
		if (h > 0)
			x->notify_body = x->body != H1_BODY_NONE;
	}
	if (x->st == UPX_BODY && !buf_is_empty(&x->in))
		x->notify_body = true;
	x_maybe_done(x);
	x_set_io(x);
	bool body = x->notify_body;
	x->notify_body = false;
	if (body)
		x->cbs->on_body(x->ctx);
}

static void on_conn_io(struct loop_io *io, uint32_t events)
{
	struct upx_conn *c = io->arg;
	(void)events;
	if (!c->x) {
		/* idle: the backend closed it (or sent what it should not) */
		conn_free(c);
		return;
	}
	x_run(c->x);
}

/* ---- the owner's calls ---- */

int upx_start(struct worker *w, const struct upx_req *rq, const struct upx_cbs *cbs, void *ctx,
	      struct upx **out)
{
	struct upx *x = tl_free;
	if (x) {
		tl_free = x->next_free;
		tl_n_free--;
		memset(x, 0, sizeof(*x));
	} else if (!(x = calloc(1, sizeof(*x)))) {
		return 500;
	}
	x->w = w;
	x->cbs = cbs;
	x->ctx = ctx;
	x->rq = *rq;
	x->backend = rq->backend;
	x->attempts_left = rq->rule ? rq->rule->r->retry.attempts : 0;
	int status = x_attempt(x);
	if (status) {
		upx_free(x);
		return status;
	}
	/* a reused connection writes at once; a failure there shows at the
	 * next readiness event and takes the replay path of x_run */
	if (x->st == UPX_SEND)
		(void)x_write(x);
	x_set_io(x);
	*out = x;
	return 0;
}

void upx_kick(struct upx *x)
{
	if (!x->c || x->req_done || x->st == UPX_CONNECT || x->st == UPX_HANDSHAKE ||
	    x->st == UPX_WAIT)
		return;
	if (x_write(x) < 0) {
		/* reported by the next readiness event (the read side fails too) */
		loop_io_mod(x->w->loop, &x->c->io, LOOP_READ | LOOP_WRITE);
		return;
	}
	x_maybe_done(x);
	x_set_io(x);
}

ssize_t upx_read(struct upx *x, char *p, size_t len, bool *eof)
{
	size_t got = 0;

	*eof = false;
	if (x->st != UPX_BODY && x->st != UPX_DONE)
		return 0;
again:
	while (got < len && !buf_is_empty(&x->in) &&
	       !(x->body == H1_BODY_LENGTH && !x->remaining) &&
	       !(x->body == H1_BODY_CHUNKED && h1_chunked_is_done(&x->ch))) {
		struct str d = {NULL, 0};
		size_t used, room = len - got;
		if (x->body == H1_BODY_CHUNKED) {
			ssize_t k = h1_chunked_decode(&x->ch, buf_rptr(&x->in), buf_len(&x->in), &d);
			if (k < 0)
				return -1;
			if (!k && !d.len)
				break;
			used = (size_t)k;
			if (d.len > room) {
				/* a span ends the call: give back what does not fit */
				size_t extra = d.len - room;
				used -= extra;
				d.len = room;
				x->ch.remaining += extra;
				x->ch.total -= extra;
				x->ch.state = H1_CH_DATA;
			}
		} else {
			used = buf_len(&x->in) < room ? buf_len(&x->in) : room;
			if (x->body == H1_BODY_LENGTH && used > x->remaining)
				used = (size_t)x->remaining;
			d = (struct str){buf_rptr(&x->in), used};
			if (x->body == H1_BODY_LENGTH)
				x->remaining -= used;
		}
		if (d.len)
			memcpy(p + got, d.p, d.len);
		got += d.len;
		buf_consume(&x->in, used);
	}
	if ((x->body == H1_BODY_LENGTH && !x->remaining) ||
	    (x->body == H1_BODY_CHUNKED && h1_chunked_is_done(&x->ch)))
		x->resp_done = true;
	if (got < len && !x->resp_done && x->st == UPX_BODY && x->c && x->c->tls &&
	    tlsg_pending(x->c->tls)) {
		/* decrypted bytes wait inside TLS, where epoll cannot see them */
		if (buf_is_empty(&x->in) || !buf_room(&x->in))
			buf_compact(&x->in);
		ssize_t r = buf_room(&x->in) ? conn_read(x->c, buf_wptr(&x->in), buf_room(&x->in))
					      : 0;
		if (r > 0) {
			buf_commit(&x->in, (size_t)r);
			goto again;
		}
	}
	if (x->st == UPX_BODY && x->resp_done)
		x_maybe_done(x); /* bytes past the body: not reusable */
	*eof = x->resp_done && (x->body != H1_BODY_EOF || buf_is_empty(&x->in));
	if (!x->resp_done && x->c) {
		if (buf_is_empty(&x->in) || (!buf_room(&x->in) && x->in.head))
			buf_compact(&x->in);
		x_set_io(x);
	}
	return (ssize_t)got;
}

void upx_free(struct upx *x)
{
	if (!x)
		return;
	x_drop_conn(x, false);
	timer_cancel(x->w->loop, &x->timer);
	wbuf_put(x->w, &x->in);
	wbuf_put(x->w, &x->out);
	if (tl_n_free < UPX_FREE_MAX) {
		x->next_free = tl_free;
		tl_free = x;
		tl_n_free++;
	} else {
		free(x);
	}
}

void upx_worker_exit(void)
{
	while (tl_free) {
		struct upx *x = tl_free;
		tl_free = x->next_free;
		free(x);
	}
	tl_n_free = 0;
}
