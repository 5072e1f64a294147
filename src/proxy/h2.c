/* SPDX-License-Identifier: MIT */
/*
 * h2.c: HTTP/2 towards clients (TLS with ALPN "h2", or cleartext with prior
 * knowledge) and HTTP/2 towards backends (h2c, and h2 over TLS), on a
 * worker's loop. conn.c hands a connection over once it knows the client
 * speaks HTTP/2 (h2p_take); from then on this file owns its fd and TLS.
 *
 * Each client stream is one request. The filters of its rule and of the
 * backend it picks are walked once (plan.c); the backend's protocol then
 * says which way it goes:
 *   - gRPC and appProtocol h2c/h2 backends: over a shared HTTP/2 client
 *     session per endpoint per worker (struct h2up), streams multiplexed,
 *     trailers (grpc-status) passed through; the route's timeouts,
 *     retries (bodiless requests) and passive health apply;
 *   - HTTP/1.1 backends (plain or TLS): straight to a pooled upstream
 *     connection through an exchange of upx.c, which carries the HTTP/1.1
 *     path's attempt rules; the response body is decoded from that
 *     connection's buffer into the stream's DATA frames. The request
 *     also goes, fire and forget, to each mirror that is due, its body
 *     copied as its DATA frames arrive (conn_mirror_open,
 *     conn_mirrors_feed); the client never waits for a mirror;
 *   - answered here: redirects and CORS preflights (the filters), 400 (a
 *     request line or Host HTTP/1.1 cannot carry),
 *     404 (no listener or route), 421 (Host outside the TLS server name's
 *     listener), 504 (request timeout) and gRPC errors (UNIMPLEMENTED when
 *     no route matches, UNAVAILABLE when the backend fails,
 *     DEADLINE_EXCEEDED on a timeout) as trailers-only responses, never
 *     HTML.
 *
 * Draining (h2p_drain_all): GOAWAY NO_ERROR naming the last stream
 * processed; those streams finish, then the connection closes. A
 * connection reads at most H2P_READS_PER_RUN buffers per readiness event,
 * so a flooding client cannot hold the worker while others wait.
 *
 * Memory is bounded by HTTP/2 flow control: a stream's received body is
 * acknowledged only once written on (h2_consume), a response body is read
 * from its source only as the client's window takes it. Flood limits are in http/h2.c.
 *
 * It does not do: server push, RFC 8441 WebSocket over HTTP/2, the HTTP/1.1
 * Upgrade to h2c. Runs on one worker thread; no locks.
 */
#include <errno.h>
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
#include "http/h2.h"
#include "proxy/filters.h"
#include "proxy/internal.h"
#include "proxy/plan.h"
#include "proxy/upx.h"

#define H2P_MAX_FIELDS 128
/* Reads (of one I/O buffer each) a connection may do per readiness event:
 * a flooding client gets this much of a loop iteration and no more before
 * the others get theirs (epoll is level-triggered: the rest waits). */
#define H2P_READS_PER_RUN 2
#define H2P_CONNECT_REPICKS 2 /* as conn.c: other endpoints after a connect failure */

struct h2conn;
struct h2up;

enum strm_kind { STRM_NEW = 0, STRM_LOCAL, STRM_UP, STRM_H1 };

struct strm {
	struct h2conn *hc;
	int32_t sid;
	struct strm *next;
	enum strm_kind kind;
	struct arena *arena;
	bool grpc;     /* the client speaks gRPC: errors are gRPC statuses */
	bool req_end;  /* the client's END_STREAM arrived */
	bool resp_sub; /* response headers submitted */
	bool resp_end; /* every response byte is in resp */
	bool deferred; /* the data provider is waiting for h2_resume */
	int status;    /* answered here or by an HTTP/2 backend (access log) */
	struct rt *rt; /* held while resp_mods (snapshot memory) may be used */
	uint64_t start_ms;
	struct timer req_timer; /* the route's request timeout (STRM_UP, STRM_H1) */
	const char *method, *authority, *path, *route; /* for the access log */
	struct route_ctr *rctr;                        /* counted here (strm_count), or NULL */
	struct buf resp;
	size_t unacked; /* request body bytes not yet consumed (flow control) */
	uint64_t body_in; /* request body bytes received (the listener's cap) */
	/* trailers to send after resp (h2 backends) */
	struct h2_hdr *trailers;
	size_t n_trailers;
	struct px_resp filt; /* what the filters add to the response */
	/* STRM_UP */
	struct h2up *up;
	struct strm *up_next; /* on up->streams */
	int32_t up_sid;
	const struct rt_rule *rule;         /* for retries (snapshot memory: rt is held) */
	const struct snap_backend *backend; /* the HTTP/2 backend */
	struct h2_hdr *up_req;              /* the request's fields, in the arena, for retries */
	size_t n_up_req;
	int attempts_left;
	unsigned repicks;        /* other endpoints tried after connect failures */
	struct upep *ep;         /* the endpoint of the current attempt (passive health) */
	struct timer be_timer;   /* backend request timeout, or the retry backoff */
	struct buf reqbody; /* body waiting for the upstream's window (or STRM_H1's socket) */
	/* STRM_H1 */
	struct upx *x;
	char *up_head; /* the HTTP/1.1 head, in the arena (x borrows it) */
	/* mirrors fed with the request body (NULL holes), framed chunked when
	 * the request announced no length */
	struct upconn *mirrors[PX_MAX_MIRRORS];
	bool mirrored, mirror_chunked;
};

struct h2conn {
	struct h2conn *prev, *next; /* this worker's connections (tl_conns) */
	struct worker *w;
	struct admit_ticket ticket; /* the client connection's place under the caps */
	const struct px_limits *lim; /* the listener port's limits, looked up once */
	struct loop_io io;
	int fd;
	struct tls_conn *tls;
	uint32_t tls_want;
	uint64_t sock_id;
	uint16_t port;
	char peer[48];
	char sni[256];
	struct h2_sess *s;
	struct buf in, out;
	struct timer timer;
	struct strm *streams;
	unsigned n_streams;
	bool readable;
	bool in_run;
	bool closing;
	bool draining; /* GOAWAY sent for a drain: close once the streams are done */
	bool dead;
	bool flush_scheduled;
};

/* A shared HTTP/2 client session towards one endpoint (this worker). */
struct h2up {
	struct h2up *next;
	struct worker *w;
	struct loop_io io;
	struct h2_sess *s;
	struct tls_client *tls_ctx;
	struct tls_conn *tls;
	uint32_t tls_want;
	char addr[48];
	uint16_t port;
	char sni[256];
	struct buf in, out;
	struct timer timer; /* connect deadline, then idle */
	unsigned n_streams;
	struct strm *streams; /* client streams sent here */
	bool connecting, handshaking, dead, in_run;
};

static __thread struct h2conn *tl_conns; /* this worker's client connections */
/* Stream objects of this worker kept for reuse (linked through next): the
 * stream count churns at the request rate. */
#define H2P_FREE_STRMS 256
static __thread struct strm *tl_free_strms;
static __thread unsigned tl_n_free_strms;
static __thread struct h2conn *tl_dead; /* closed, waiting for hc_free_dead */
static __thread bool tl_dead_scheduled;

static void hc_run(struct h2conn *hc);
static void hc_close(struct h2conn *hc, const char *why);
static void up_run(struct h2up *u);
static void up_close(struct h2up *u, const char *why);
static void strm_up_detach(struct strm *st, bool reset);
static void on_hc_timer(struct timer *t);
static void up_unlink(struct h2up *u, struct strm *st);
static void hc_on_end(void *ctx, int32_t sid);
static void strm_up_failed(struct strm *st, int status, const char *why, bool connect);
static bool strm_up_retry_on(const struct strm *st, int status);

static const struct h2_limits *h2_lim(void)
{
	static const struct h2_limits lim = {0};
	return &lim;
}

/* Whether field h is named lit (a string literal, lower case): the length
 * is known at compile time, so most fields are told apart by it alone. */
#define hname_is(h, lit) ((h)->nlen == sizeof(lit) - 1 && !memcmp((h)->name, lit, sizeof(lit) - 1))

/* Fields not allowed in HTTP/2 or belonging to one hop. */
static bool h2_hop(const char *n, size_t l)
{
	struct str s = {n, l};
	return hdr_is_hop_by_hop(s) || str_case_eq_c(s, "proxy-connection") ||
	       str_case_eq_c(s, "host");
}

/* ---- the client connection's I/O ---- */

static ssize_t hc_read(struct h2conn *hc, char *p, size_t n)
{
	if (!hc->tls) {
		ssize_t r = read(hc->fd, p, n);
		if (r >= 0)
			return r;
		return errno == EAGAIN || errno == EINTR ? -EAGAIN : -errno;
	}
	ssize_t r = tlsg_read(hc->tls, p, n);
	if (r == -WG_EAGAIN_READ || r == -WG_EAGAIN_WRITE) {
		hc->tls_want = r == -WG_EAGAIN_READ ? LOOP_READ : LOOP_WRITE;
		return -EAGAIN;
	}
	return r;
}

static ssize_t hc_write(struct h2conn *hc, const char *p, size_t n)
{
	if (!hc->tls) {
		ssize_t r = send(hc->fd, p, n, MSG_NOSIGNAL);
		if (r >= 0)
			return r;
		return errno == EAGAIN || errno == EINTR ? 0 : -errno;
	}
	ssize_t r = tlsg_write(hc->tls, p, n);
	if (r == -WG_EAGAIN_READ || r == -WG_EAGAIN_WRITE) {
		hc->tls_want = r == -WG_EAGAIN_READ ? LOOP_READ : LOOP_WRITE;
		return 0;
	}
	return r;
}

static void hc_flush_deferred(void *arg)
{
	struct h2conn *hc = arg;
	hc->flush_scheduled = false;
	hc_run(hc);
}

/* Runs hc at the next iteration: for window updates decided inside another
 * session's callbacks. */
static void hc_schedule(struct h2conn *hc)
{
	if (hc->dead || hc->flush_scheduled)
		return;
	if (loop_defer(hc->w->loop, hc_flush_deferred, hc) == 0)
		hc->flush_scheduled = true;
}

/* Frees the connections closed since the last sweep; one whose deferred
 * flush (queued before the close) has not run yet waits for the next. */
static void hc_free_dead(void *arg)
{
	struct worker *w = arg;
	struct h2conn *hc = tl_dead, *keep = NULL;
	tl_dead = NULL;
	tl_dead_scheduled = false;
	while (hc) {
		struct h2conn *next = hc->next;
		if (hc->flush_scheduled && !w->stopped) {
			hc->next = keep;
			keep = hc;
		} else {
			free(hc);
		}
		hc = next;
	}
	if (keep) {
		tl_dead = keep;
		if (loop_defer(w->loop, hc_free_dead, w) == 0)
			tl_dead_scheduled = true;
	}
}

/* ---- streams ---- */

static struct strm *strm_get(struct h2conn *hc, int32_t sid)
{
	return hc->s ? h2_stream_data(hc->s, sid) : NULL;
}

/* One JSON line per stream served here (conn.c logs the ones it serves). */
static void strm_log(struct strm *st)
{
	struct worker *w = st->hc->w;
	int status = st->status ? st->status : 499;
	int fd = w->p->cfg.access_log_fd;

	STAT_ADD(w, requests, 1);
	STAT_ADD(w, responses_by_class[status / 100 < 6 ? status / 100 : 0], 1);
	/* bytes are not counted on this path, as for the totals above */
	rstat_done(st->rctr, status, 0, 0, loop_now_ms(w->loop) - st->start_ms);
	if (fd < 0)
		return;
	char line[2048];
	uint64_t wall = clock_wall_ms();
	int n = snprintf(line, sizeof(line),
			 "{\"ts\":%llu.%03u,\"client\":\"%s\",\"proto\":\"h2\",\"method\":\"%s\","
			 "\"host\":\"%s\",\"path\":\"%s\",\"status\":%d,\"duration_ms\":%llu,"
			 "\"tls\":%s,\"route\":\"%s\"}\n",
			 (unsigned long long)(wall / 1000), (unsigned)(wall % 1000), st->hc->peer,
			 st->method ? st->method : "", st->authority ? st->authority : "",
			 st->path ? st->path : "", status,
			 (unsigned long long)(loop_now_ms(w->loop) - st->start_ms),
			 st->hc->tls ? "true" : "false", st->route ? st->route : "");
	if (n > 0 && (size_t)n < sizeof(line)) {
		ssize_t wn = write(fd, line, (size_t)n);
		(void)wn;
	}
}

/* A stream counts towards its route rule here (strm_log ends it). */
static void strm_count(struct strm *st, const struct rt_rule *rr)
{
	if ((st->rctr = rstat_ctr(&st->hc->w->rstats, rr->stat_id)))
		RCTR_ADD(st->rctr, requests, 1);
}

/* Copies a field value for the log, without what would break the JSON. */
static const char *log_copy(struct arena *a, struct str v)
{
	char *p = arena_strndup(a, v.p, v.len > 512 ? 512 : v.len);
	for (char *q = p; q && *q; q++)
		if (*q == '"' || *q == '\\' || (unsigned char)*q < 0x20)
			*q = '?';
	return p;
}

/* Copies request body bytes to the stream's mirrors. */
static void strm_mirrors_feed(struct strm *st, const uint8_t *p, size_t n)
{
	char hdr[24];
	struct iovec iov[3];

	if (!n) /* an empty chunk would end a chunked body */
		return;
	conn_mirrors_feed(st->mirrors, iov, h1_body_iov(iov, hdr, p, n, st->mirror_chunked));
}

/* The body is over (whole: it ended with END_STREAM) or abandoned. */
static void strm_mirrors_end(struct strm *st, bool whole)
{
	if (!st->mirrored)
		return;
	if (whole && st->mirror_chunked) {
		struct iovec last = {(void *)(uintptr_t)H1_CHUNK_LAST, sizeof(H1_CHUNK_LAST) - 1};
		conn_mirrors_feed(st->mirrors, &last, 1);
	}
	conn_mirrors_end(st->mirrors, whole);
	st->mirrored = false;
}

static void strm_free(struct strm *st)
{
	struct h2conn *hc = st->hc;
	if (st->kind == STRM_LOCAL || st->kind == STRM_UP || st->kind == STRM_H1)
		strm_log(st);
	timer_cancel(hc->w->loop, &st->req_timer);
	timer_cancel(hc->w->loop, &st->be_timer);
	upx_free(st->x);
	st->x = NULL;
	strm_mirrors_end(st, false);
	struct strm **pp = &hc->streams;
	while (*pp && *pp != st)
		pp = &(*pp)->next;
	if (*pp) {
		*pp = st->next;
		hc->n_streams--;
	}
	if (st->up)
		strm_up_detach(st, true);
	if (hc->s && st->unacked)
		h2_consume(hc->s, st->sid, st->unacked);
	buf_release(&st->resp);
	buf_release(&st->reqbody);
	warena_put(hc->w, st->arena);
	if (st->rt)
		rt_unref(st->rt);
	if (tl_n_free_strms < H2P_FREE_STRMS) {
		st->next = tl_free_strms;
		tl_free_strms = st;
		tl_n_free_strms++;
	} else {
		free(st);
	}
	if (!hc->n_streams && hc->draining)
		hc_schedule(hc); /* the last stream of a draining connection: close */
	if (!hc->n_streams && !hc->closing && !hc->dead)
		timer_add(hc->w->loop, &hc->timer, hc->lim->l.keepalive_timeout_ms, on_hc_timer, hc);
}

/* Submits the response head once (status and fields). */
static void strm_respond(struct strm *st, int status, const struct h2_hdr *h, size_t n,
			 bool has_body)
{
	if (st->resp_sub)
		return;
	st->resp_sub = true;
	st->status = status;
	if (h2_submit_response(st->hc->s, st->sid, status, h, n, has_body) < 0)
		h2_reset(st->hc->s, st->sid, H2_INTERNAL_ERROR);
}

/* Submits a response head whose fields are in hl (names made lower case,
 * values borrowed: the submit copies them). 0 or -ENOMEM. */
static int strm_respond_hlist(struct strm *st, int status, const struct hlist *hl, bool has_body)
{
	struct h2_hdr out[H2P_MAX_FIELDS];
	size_t k = 0;
	for (size_t i = 0; i < hl->n && k < H2P_MAX_FIELDS; i++) {
		if (!hl->v[i].name.len)
			continue;
		char *lc = arena_strndup(st->arena, hl->v[i].name.p, hl->v[i].name.len);
		if (!lc)
			return -ENOMEM;
		for (char *q = lc; *q; q++)
			if (*q >= 'A' && *q <= 'Z')
				*q = (char)(*q + 32);
		out[k++] = (struct h2_hdr){lc, hl->v[i].name.len, hl->v[i].value.p,
					   hl->v[i].value.len};
	}
	strm_respond(st, status, out, k, has_body);
	return 0;
}

/* A local answer with a short text body. */
static void strm_local(struct strm *st, int status, const char *body)
{
	struct h2_hdr h[2] = {{"content-type", 12, "text/plain; charset=utf-8", 25}};
	char len[24];
	size_t bl = strlen(body);
	int k = snprintf(len, sizeof(len), "%zu", bl);
	h[1] = (struct h2_hdr){"content-length", 14, len, (size_t)k};
	st->kind = STRM_LOCAL;
	buf_append(&st->resp, body, bl);
	st->resp_end = true;
	strm_respond(st, status, h, 2, true);
}

/* A gRPC error: trailers-only, HTTP 200, never a body. */
static void strm_grpc_error(struct strm *st, int code, const char *msg)
{
	char cs[8];
	int k = snprintf(cs, sizeof(cs), "%d", code);
	struct h2_hdr h[3] = {
		{"content-type", 12, "application/grpc", 16},
		{"grpc-status", 11, cs, (size_t)k},
		{"grpc-message", 12, msg, strlen(msg)},
	};
	st->kind = STRM_LOCAL;
	st->resp_end = true;
	strm_respond(st, 200, h, 3, false);
}

static void strm_fail(struct strm *st, int status, int grpc_code, const char *why)
{
	strm_mirrors_end(st, false); /* the body stops here */
	if (st->resp_sub) {
		h2_reset(st->hc->s, st->sid, H2_INTERNAL_ERROR);
		return;
	}
	if (st->grpc) {
		strm_grpc_error(st, grpc_code, why);
		return;
	}
	char body[96];
	snprintf(body, sizeof(body), "%d %s\n", status, h1_reason(status));
	strm_local(st, status, body);
}

/* Response bytes arrived for st: wake its data provider. */
static void strm_kick(struct strm *st)
{
	if (st->deferred) {
		st->deferred = false;
		h2_resume(st->hc->s, st->sid);
	}
}

/* ---- HTTP/1.1 backends, directly (upx.c) ---- */

/* Whether every byte of v is visible ASCII (no space, no control). */
static bool is_visible(struct str v)
{
	for (size_t i = 0; i < v.len; i++)
		if ((unsigned char)v.p[i] <= 0x20 || (unsigned char)v.p[i] >= 0x7f)
			return false;
	return true;
}

static void on_strm_timer(struct timer *t)
{
	struct strm *st = t->arg;
	struct h2conn *hc = st->hc;
	upx_free(st->x);
	st->x = NULL;
	if (st->up)
		strm_up_detach(st, true);
	timer_cancel(hc->w->loop, &st->be_timer); /* a retry's backoff */
	STAT_ADD(hc->w, upstream_errors, 1);
	strm_fail(st, 504, 4, "request timeout");
	strm_kick(st);
	hc_run(hc);
}

static void strm_timer_start(struct strm *st, const struct rt_rule *rr)
{
	struct worker *w = st->hc->w;
	uint32_t to = rr->r->request_timeout_ms;
	if (!to)
		to = st->hc->lim->l.route_timeout_ms;
	timer_add(w->loop, &st->req_timer, to, on_strm_timer, st);
}

static void x_on_head(void *ctx, const struct h1_msg *m)
{
	struct strm *st = ctx;
	struct hlist hl;

	if (hlist_init(&hl, st->arena, m->n_headers + 8))
		goto fail;
	for (size_t i = 0; i < m->n_headers; i++) {
		struct str nm = m->headers[i].name;
		if (h2_hop(nm.p, nm.len))
			continue;
		if ((m->conn_flags & H1_CONN_OTHER) &&
		    hdr_is_listed_in_connection(m->headers, m->n_headers, nm))
			continue;
		if (hlist_add(&hl, st->arena, nm, m->headers[i].value))
			goto fail;
	}
	struct str via = px_via(st->hc->w->p, false, m->minor);
	if (via.len && hlist_add(&hl, st->arena, STR_LIT("via"), via))
		goto fail;
	if (px_resp_apply(&st->filt, st->arena, &hl))
		goto fail;
	bool has_body = m->body != H1_BODY_NONE;
	if (!has_body) {
		st->resp_end = true;
		timer_cancel(st->hc->w->loop, &st->req_timer);
	}
	if (strm_respond_hlist(st, m->status, &hl, has_body))
		goto fail;
	hc_schedule(st->hc);
	return;
fail:
	strm_respond(st, 502, NULL, 0, false);
	hc_schedule(st->hc);
}

/* Body bytes arrived: the client is written at the end of this loop
 * iteration, so that the answers of many streams leave in one write. */
static void x_on_body(void *ctx)
{
	struct strm *st = ctx;
	strm_kick(st);
	hc_schedule(st->hc);
}

static void x_on_fail(void *ctx, int status, const char *why)
{
	struct strm *st = ctx;
	upx_free(st->x);
	st->x = NULL;
	timer_cancel(st->hc->w->loop, &st->req_timer);
	strm_fail(st, status, 14, why);
	strm_kick(st);
	hc_schedule(st->hc);
}

/* The request body for upx: from st->reqbody, acknowledged as it leaves. */
static size_t x_read_body(void *ctx, char *p, size_t len, bool *end)
{
	struct strm *st = ctx;
	size_t k = buf_len(&st->reqbody) < len ? buf_len(&st->reqbody) : len;
	if (k)
		memcpy(p, buf_rptr(&st->reqbody), k);
	buf_consume(&st->reqbody, k);
	if (k) {
		h2_consume(st->hc->s, st->sid, k);
		st->unacked -= k < st->unacked ? k : st->unacked;
		hc_schedule(st->hc);
	}
	*end = st->req_end && buf_is_empty(&st->reqbody);
	return k;
}

static const struct upx_cbs x_cbs = {
	.on_head = x_on_head,
	.on_body = x_on_body,
	.on_fail = x_on_fail,
	.read_body = x_read_body,
};

/*
 * The request side of a plan from the stream's fields. host/hlen: the
 * normalised Host (borrowed until px_plan_make returns). 0 or -ENOMEM.
 */
static int strm_plan_init(struct strm *st, struct px_plan *p, const struct h2_hdr *h, size_t n,
			  struct str method, struct str path_q, const char *host, size_t hlen)
{
	const char *qm = memchr(path_q.p, '?', path_q.len);
	p->path = (struct str){path_q.p, qm ? (size_t)(qm - path_q.p) : path_q.len};
	p->query = (struct str){qm ? qm + 1 : "", qm ? path_q.len - p->path.len - 1 : 0};
	p->host = hlen ? host : "";
	p->scheme = st->hc->tls ? "https" : "http";
	p->port = st->hc->port;
	for (size_t i = 0; i < n; i++) {
		struct str v = {h[i].value, h[i].vlen};
		if (hname_is(&h[i], "origin")) {
			char *o = arena_strndup(st->arena, v.p, v.len);
			if (!o)
				return -ENOMEM;
			p->resp.origin = (struct str){o, v.len};
		} else if (hname_is(&h[i], "access-control-request-method")) {
			p->acr_method = v;
			p->preflight = str_eq_c(method, "OPTIONS");
		} else if (hname_is(&h[i], "access-control-request-headers")) {
			p->acr_headers = v;
		}
	}
	return 0;
}

/* Answers what a plan does not proxy (rc: its px_plan_result). 0 or -ENOMEM. */
static int strm_plan_answer(struct strm *st, int rc, struct px_plan *p)
{
	if (rc == PX_PLAN_ERROR) {
		strm_fail(st, p->status, 14, p->why);
		return 0;
	}
	if (hlist_add(&p->answer, st->arena, STR_LIT("content-length"), STR_LIT("0")))
		return -ENOMEM;
	st->kind = STRM_LOCAL;
	st->resp_end = true;
	return strm_respond_hlist(st, p->status, &p->answer, false);
}

/* Whether a client field is forwarded as is (before the filters): what
 * conn.c's forwardable() keeps, for HTTP/2 names (lower case). */
static bool h2_forwardable(const struct h2_hdr *h)
{
	if (!h->nlen || h->name[0] == ':' || h2_hop(h->name, h->nlen))
		return false;
	return !hname_is(h, "expect") && !hname_is(h, "content-length") &&
	       !hname_is(h, "x-forwarded-host") && !hname_is(h, "x-forwarded-proto") &&
	       !hname_is(h, "cookie");
}

/*
 * Opens the stream's mirrors that are due: head is the request head
 * without its framing; the body (when !end) follows as it arrives, chunked
 * when the request announced no content-length.
 */
static void strm_mirrors_open(struct strm *st, const struct px_plan *plan, struct str head,
			      bool end, struct str content_length)
{
	st->mirrored = !end;
	st->mirror_chunked = !end && !content_length.len;
	for (size_t i = 0; i < plan->n_mirrors; i++)
		if (px_mirror_is_due(plan->mirrors[i]))
			conn_mirror_open(st->hc->w, plan->mirrors[i]->backend, head.p, head.len,
					 content_length, end ? NULL : &st->mirrors[i]);
}

/*
 * Sends the stream to an HTTP/1.1 backend over a pooled connection of
 * upx.c, and a copy of the request to each mirror that is due.
 * authority: the request's Host (raw). 0, or -ENOMEM (the caller answers).
 */
static int strm_start_h1(struct strm *st, const struct rt_rule *rr, struct px_plan *plan,
			 const struct h2_hdr *h, size_t n, bool end, struct str method,
			 struct str path_q, struct str authority)
{
	struct h2conn *hc = st->hc;
	struct worker *w = hc->w;
	struct hlist hl;
	bool has_cl = false;
	struct str cookie = {NULL, 0}, content_length = {NULL, 0};

	if (hlist_init(&hl, st->arena, n + 16))
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		if (hname_is(&h[i], "content-length")) {
			has_cl = true;
			content_length = (struct str){h[i].value, h[i].vlen};
		}
		if (hname_is(&h[i], "cookie")) {
			/* HTTP/2 splits cookies; HTTP/1.1 wants one field */
			char *c = cookie.len ? arena_printf(st->arena, "%.*s; %.*s",
							    (int)cookie.len, cookie.p,
							    (int)h[i].vlen, h[i].value)
					     : arena_strndup(st->arena, h[i].value, h[i].vlen);
			if (!c)
				return -ENOMEM;
			cookie = str_c(c);
			continue;
		}
		if (h2_forwardable(&h[i]) &&
		    hlist_add(&hl, st->arena, (struct str){h[i].name, h[i].nlen},
			      (struct str){h[i].value, h[i].vlen}))
			return -ENOMEM;
	}
	if (cookie.len && hlist_add(&hl, st->arena, STR_LIT("cookie"), cookie))
		return -ENOMEM;
	int rc = px_plan_make(plan, st->arena, rr, &hl);
	if (rc < 0)
		return rc;
	if (rc != PX_PLAN_PROXY)
		return strm_plan_answer(st, rc, plan);
	st->filt = plan->resp;

	struct wr o = {w->scratch, 0, w->p->buf_size, false};
	struct up_head uh = {
		.method = method,
		.path = plan->up_path ? str_c(plan->up_path) : path_q,
		.query = plan->up_path ? plan->query : STR_LIT(""),
		.host = plan->up_host ? str_c(plan->up_host) : authority,
		.xfh = authority,
		.peer = hc->peer,
		.https = hc->tls != NULL,
		.via = px_via(w->p, true, 1),
	};
	wr_up_head(&o, &uh, &hl);
	if (plan->n_mirrors && !o.overflow) /* before the framing, which mirrors set apart */
		strm_mirrors_open(st, plan, (struct str){o.p, o.len}, end, content_length);
	bool chunked = false;
	if (!end && has_cl) {
		for (size_t i = 0; i < n; i++)
			if (hname_is(&h[i], "content-length"))
				wr_field(&o, STR_LIT("Content-Length"),
					 (struct str){h[i].value, h[i].vlen});
	} else if (!end) {
		chunked = true;
		wr_cstr(&o, "Transfer-Encoding: chunked\r\n");
	} else if (has_cl) {
		wr_cstr(&o, "Content-Length: 0\r\n");
	}
	wr_put(&o, "\r\n", 2);
	if (o.overflow) {
		strm_fail(st, 431, 8, "request head too large after filters");
		return 0;
	}
	st->up_head = arena_memdup(st->arena, o.p, o.len);
	if (!st->up_head)
		return -ENOMEM;
	struct upx_req xr = {
		.rt = st->rt,
		.rule = rr,
		.backend = plan->backend,
		.head = st->up_head,
		.head_len = o.len,
		.has_body = !end,
		.chunked = chunked,
		.head_method = str_eq_c(method, "HEAD"),
	};
	st->kind = STRM_H1;
	strm_timer_start(st, rr);
	int status = upx_start(w, &xr, &x_cbs, st, &st->x);
	if (status) {
		st->x = NULL;
		timer_cancel(w->loop, &st->req_timer);
		STAT_ADD(w, upstream_errors, 1);
		strm_fail(st, status, 14, status == 503 ? "backend connect failed" : "request failed");
	}
	return 0;
}

/* ---- HTTP/2 towards backends ---- */

static void on_up_io(struct loop_io *io, uint32_t events);

static int up_on_headers(void *ctx, int32_t sid, const struct h2_hdr *h, size_t n, bool trailers,
			 bool end)
{
	struct h2up *u = ctx;
	struct strm *st = h2_stream_data(u->s, sid);
	struct h2_hdr out[H2P_MAX_FIELDS];
	size_t k = 0;
	int status = 502;

	if (!st)
		return -1;
	if (trailers) {
		st->trailers = arena_alloc(st->arena, n * sizeof(*st->trailers) + 1);
		for (size_t i = 0; st->trailers && i < n; i++) {
			if (h[i].nlen && h[i].name[0] == ':')
				continue;
			st->trailers[st->n_trailers++] = (struct h2_hdr){
				arena_strndup(st->arena, h[i].name, h[i].nlen), h[i].nlen,
				arena_strndup(st->arena, h[i].value, h[i].vlen), h[i].vlen};
		}
		st->resp_end = true;
		strm_kick(st);
		hc_run(st->hc);
		return 0;
	}
	for (size_t i = 0; i < n; i++)
		if (hname_is(&h[i], ":status"))
			status = atoi(h[i].value);
	if (status < 200)
		return 0; /* interim answers are dropped */
	if (strm_up_retry_on(st, status)) {
		strm_up_failed(st, status, "retryable status", false);
		return 0;
	}
	timer_cancel(u->w->loop, &st->be_timer);
	/* only gateway-class answers say the endpoint itself is unwell */
	if (st->ep)
		upep_result(u->w, st->ep, status < 502 || status > 504);
	struct hlist hl;
	if (hlist_init(&hl, st->arena, n + 8))
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (hname_is(&h[i], ":status"))
			continue;
		if (h2_hop(h[i].name, h[i].nlen))
			continue;
		hlist_add(&hl, st->arena, (struct str){h[i].name, h[i].nlen},
			  (struct str){h[i].value, h[i].vlen});
	}
	/* after the backend's own Via fields, before the filters */
	struct str via = px_via(u->w->p, true, 0);
	if (via.len)
		hlist_add(&hl, st->arena, STR_LIT("via"), via);
	if (px_resp_apply(&st->filt, st->arena, &hl))
		return -1;
	for (size_t i = 0; i < hl.n && k < H2P_MAX_FIELDS; i++) {
		if (!hl.v[i].name.len)
			continue;
		char *lc = arena_strndup(st->arena, hl.v[i].name.p, hl.v[i].name.len);
		char *val = arena_strndup(st->arena, hl.v[i].value.p, hl.v[i].value.len);
		if (!lc || !val)
			return -1;
		for (char *q = lc; *q; q++)
			if (*q >= 'A' && *q <= 'Z')
				*q = (char)(*q + 32);
		out[k++] = (struct h2_hdr){lc, hl.v[i].name.len, val, hl.v[i].value.len};
	}
	if (end)
		st->resp_end = true;
	strm_respond(st, status, out, k, !end);
	hc_run(st->hc);
	return 0;
}

static int up_on_data(void *ctx, int32_t sid, const uint8_t *p, size_t n)
{
	struct h2up *u = ctx;
	struct strm *st = h2_stream_data(u->s, sid);
	if (!st)
		return -1;
	if (buf_append(&st->resp, p, n))
		return -1;
	/* acknowledged once the client has taken it: see hc_read_body */
	strm_kick(st);
	hc_run(st->hc);
	return 0;
}

static void up_on_end(void *ctx, int32_t sid)
{
	struct h2up *u = ctx;
	struct strm *st = h2_stream_data(u->s, sid);
	if (!st)
		return;
	st->resp_end = true;
	strm_kick(st);
	hc_run(st->hc);
}

static void up_on_close(void *ctx, int32_t sid, uint32_t code)
{
	struct h2up *u = ctx;
	struct strm *st = h2_stream_data(u->s, sid);
	if (u->n_streams)
		u->n_streams--;
	if (!st)
		return;
	up_unlink(u, st);
	st->up = NULL;
	if (!st->resp_end || code != H2_NO_ERROR) {
		if (!st->resp_sub)
			strm_up_failed(st, 502, "backend stream failed", false);
		else if (!st->resp_end)
			h2_reset(st->hc->s, st->sid, H2_INTERNAL_ERROR);
	}
	strm_kick(st);
	hc_run(st->hc);
}

static ssize_t up_read_body(void *ctx, int32_t sid, uint8_t *buf, size_t len, uint32_t *flags)
{
	struct h2up *u = ctx;
	struct strm *st = h2_stream_data(u->s, sid);
	if (!st)
		return -1;
	size_t k = buf_len(&st->reqbody) < len ? buf_len(&st->reqbody) : len;
	if (k) { /* an empty body has no buffer at all */
		memcpy(buf, buf_rptr(&st->reqbody), k);
		buf_consume(&st->reqbody, k);
		h2_consume(st->hc->s, st->sid, k);
		st->unacked -= k < st->unacked ? k : st->unacked;
		hc_schedule(st->hc);
	}
	if (buf_is_empty(&st->reqbody) && st->req_end) {
		*flags = H2_BODY_EOF;
		return (ssize_t)k;
	}
	if (!k)
		return H2_DEFER;
	return (ssize_t)k;
}

static const struct h2_cbs up_cbs = {
	.on_headers = up_on_headers,
	.on_data = up_on_data,
	.on_end = up_on_end,
	.on_close = up_on_close,
	.read_body = up_read_body,
};

static void up_free(struct h2up *u)
{
	struct h2up **pp = &u->w->h2ups;
	while (*pp && *pp != u)
		pp = &(*pp)->next;
	if (*pp)
		*pp = u->next;
	if (u->tls)
		tlsg_conn_free(u->tls);
	if (u->io.fd >= 0) {
		int fd = u->io.fd;
		loop_io_del(u->w->loop, &u->io);
		close(fd);
	}
	timer_cancel(u->w->loop, &u->timer);
	h2_free(u->s);
	buf_release(&u->in);
	buf_release(&u->out);
	free(u);
}

static void up_close_deferred(void *arg)
{
	up_free(arg);
}

/* Fails every stream on u and frees it at the next iteration. */
static void up_close(struct h2up *u, const char *why)
{
	if (u->dead)
		return;
	u->dead = true;
	log_debug("event=h2_upstream_close endpoint=%s:%u reason=%s", log_q(u->addr), u->port,
		  log_q(why));
	/* unlink first so that nothing new lands on it */
	struct h2up **pp = &u->w->h2ups;
	while (*pp && *pp != u)
		pp = &(*pp)->next;
	if (*pp)
		*pp = u->next;
	u->next = NULL;
	/* the client streams still attached get their error (or a retry);
	 * no connection at all is a 503, as on the HTTP/1.1 path */
	int status = u->connecting || u->handshaking ? 503 : 502;
	while (u->streams) {
		struct strm *st = u->streams;
		u->streams = st->up_next;
		st->up = NULL;
		st->up_next = NULL;
		if (!st->resp_sub)
			strm_up_failed(st, status, why, status == 503);
		else if (!st->resp_end)
			h2_reset(st->hc->s, st->sid, H2_INTERNAL_ERROR);
		strm_kick(st);
		hc_run(st->hc);
	}
	h2_free(u->s);
	u->s = NULL;
	if (u->w->stopped) { /* no deferred call runs any more */
		up_free(u);
		return;
	}
	if (loop_defer(u->w->loop, up_close_deferred, u) == 0)
		return;
	/* no memory to defer: leak it rather than free it under a caller */
}

static void up_timeout(struct timer *t)
{
	struct h2up *u = t->arg;
	if (u->connecting || u->handshaking || !u->n_streams)
		up_close(u, u->n_streams ? "connect timeout" : "idle");
}

static struct h2up *up_get(struct worker *w, const struct upep *ep, struct tls_client *tc,
			   const char *sni)
{
	for (struct h2up *u = w->h2ups; u; u = u->next)
		if (!u->dead && u->port == ep->port && u->tls_ctx == tc &&
		    !strcmp(u->addr, ep->addr) &&
		    (u->connecting || h2_streams_left(u->s, u->n_streams) > 0))
			return u;
	struct h2up *u = calloc(1, sizeof(*u));
	if (!u)
		return NULL;
	u->w = w;
	u->io.fd = -1;
	memcpy(u->addr, ep->addr, sizeof(u->addr));
	u->port = ep->port;
	u->tls_ctx = tc;
	if (sni)
		snprintf(u->sni, sizeof(u->sni), "%s", sni);
	u->s = h2_client_new(h2_lim(), &up_cbs, u);
	int fd = u->s ? up_connect(ep->addr, ep->port) : -1;
	if (fd < 0 || loop_io_add(w->loop, &u->io, fd, LOOP_WRITE, on_up_io, u)) {
		if (fd >= 0)
			close(fd);
		h2_free(u->s);
		free(u);
		return NULL;
	}
	u->connecting = true;
	/* shared by every listener's streams: the box's connect timeout */
	timer_add(w->loop, &u->timer, w->p->cfg.limits.connect_timeout_ms, up_timeout, u);
	u->next = w->h2ups;
	w->h2ups = u;
	return u;
}

static void up_run_once(struct h2up *u);

/* Reads, feeds the session, writes; re-entry (from a callback of the same
 * session) is left to the outer call. */
static void up_run(struct h2up *u)
{
	if (u->dead || u->in_run)
		return;
	u->in_run = true;
	up_run_once(u);
	u->in_run = false;
}

static void up_run_once(struct h2up *u)
{
	struct worker *w = u->w;
	if (u->handshaking) {
		u->tls_want = 0;
		int h = tlsg_handshake(u->tls);
		if (h == -WG_EAGAIN_READ || h == -WG_EAGAIN_WRITE) {
			u->tls_want = h == -WG_EAGAIN_READ ? LOOP_READ : LOOP_WRITE;
			loop_io_mod(w->loop, &u->io, u->tls_want);
			return;
		}
		if (h < 0) {
			up_close(u, "backend TLS handshake failed");
			return;
		}
		u->handshaking = false;
	}
	/* read */
	for (int i = 0; i < 64; i++) {
		if (buf_reserve(&u->in, 16384, 0)) {
			up_close(u, "out of memory");
			return;
		}
		ssize_t r;
		if (u->tls) {
			r = tlsg_read(u->tls, buf_wptr(&u->in), buf_room(&u->in));
			if (r == -WG_EAGAIN_READ || r == -WG_EAGAIN_WRITE)
				break;
		} else {
			r = read(u->io.fd, buf_wptr(&u->in), buf_room(&u->in));
			if (r < 0 && (errno == EAGAIN || errno == EINTR))
				break;
		}
		if (r <= 0) {
			up_close(u, r == 0 ? "backend closed" : "backend read failed");
			return;
		}
		int rc = h2_recv(u->s, buf_wptr(&u->in), (size_t)r, loop_now_ms(w->loop));
		if (rc < 0) {
			up_close(u, "backend protocol error");
			return;
		}
		if (u->dead)
			return;
	}
	/* write */
	for (;;) {
		if (buf_is_empty(&u->out)) {
			if (buf_reserve(&u->out, 16384, 0)) {
				up_close(u, "out of memory");
				return;
			}
			ssize_t n = h2_send(u->s, buf_wptr(&u->out), buf_room(&u->out));
			if (n < 0) {
				up_close(u, "backend protocol error");
				return;
			}
			if (!n)
				break;
			buf_commit(&u->out, (size_t)n);
		}
		ssize_t r;
		if (u->tls) {
			r = tlsg_write(u->tls, buf_rptr(&u->out), buf_len(&u->out));
			if (r == -WG_EAGAIN_READ || r == -WG_EAGAIN_WRITE)
				r = 0;
		} else {
			r = send(u->io.fd, buf_rptr(&u->out), buf_len(&u->out), MSG_NOSIGNAL);
			if (r < 0 && (errno == EAGAIN || errno == EINTR))
				r = 0;
		}
		if (r < 0) {
			up_close(u, "backend write failed");
			return;
		}
		buf_consume(&u->out, (size_t)r);
		if (!buf_is_empty(&u->out))
			break;
	}
	if (h2_is_done(u->s)) {
		up_close(u, "session over");
		return;
	}
	loop_io_mod(w->loop, &u->io, LOOP_READ | (buf_is_empty(&u->out) ? 0 : LOOP_WRITE));
	if (!u->n_streams && !timer_is_armed(&u->timer))
		timer_add(w->loop, &u->timer, PX_UP_IDLE_MS, up_timeout, u);
}

static void on_up_io(struct loop_io *io, uint32_t events)
{
	struct h2up *u = io->arg;
	if (u->dead)
		return;
	if (u->connecting) {
		int err = 0;
		socklen_t l = sizeof(err);
		if (getsockopt(u->io.fd, SOL_SOCKET, SO_ERROR, &err, &l) == -1)
			err = errno;
		if (err || (events & LOOP_ERROR && !(events & LOOP_WRITE))) {
			up_close(u, "backend connect failed");
			return;
		}
		u->connecting = false;
		timer_cancel(u->w->loop, &u->timer);
		if (u->tls_ctx) {
			u->tls = tlsg_conn_client(u->tls_ctx, u->io.fd, u->sni);
			if (!u->tls) {
				up_close(u, "backend TLS setup failed");
				return;
			}
			u->handshaking = true;
		}
	}
	up_run(u);
}

static void up_unlink(struct h2up *u, struct strm *st)
{
	struct strm **pp = &u->streams;
	while (*pp && *pp != st)
		pp = &(*pp)->up_next;
	if (*pp)
		*pp = st->up_next;
	st->up_next = NULL;
}

/* Detaches a client stream from its upstream stream (reset: cancel it). */
static void strm_up_detach(struct strm *st, bool reset)
{
	struct h2up *u = st->up;
	st->up = NULL;
	if (u)
		up_unlink(u, st);
	if (!u || u->dead || !u->s)
		return;
	h2_stream_set_data(u->s, st->up_sid, NULL);
	if (reset) {
		h2_reset(u->s, st->up_sid, H2_CANCEL);
		up_run(u);
	}
}

/* ---- routing ---- */

/* Whether the backend's answer status is one the route retries. */
static bool strm_up_retry_on(const struct strm *st, int status)
{
	if (st->attempts_left <= 0 || !st->rule)
		return false;
	const struct snap_retry *r = &st->rule->r->retry;
	for (size_t i = 0; i < r->n_codes; i++)
		if (r->codes[i] == status)
			return true;
	return false;
}

static int strm_up_submit(struct strm *st);

static void on_up_retry(struct timer *t)
{
	struct strm *st = t->arg;
	if (strm_up_submit(st) < 0)
		strm_fail(st, 503, 14, "backend connect failed");
	strm_kick(st);
	hc_run(st->hc);
}

static void on_up_backend_timeout(struct timer *t)
{
	struct strm *st = t->arg;
	strm_up_failed(st, 504, "backend request timeout", false);
	strm_kick(st);
	hc_run(st->hc);
}

/*
 * The attempt on an HTTP/2 backend failed before any answer went to the
 * client: the endpoint's health counts it; when no connection could be
 * made (connect) another endpoint is tried at once (a few times), and a
 * bodiless request is sent again after the route's backoff while attempts
 * are left; else the client gets status.
 */
static void strm_up_failed(struct strm *st, int status, const char *why, bool connect)
{
	struct worker *w = st->hc->w;
	STAT_ADD(w, upstream_errors, 1);
	if (st->ep)
		upep_result(w, st->ep, false);
	st->ep = NULL;
	if (st->up)
		strm_up_detach(st, true);
	timer_cancel(w->loop, &st->be_timer);
	if (st->resp_sub)
		return;
	if (connect && st->repicks < H2P_CONNECT_REPICKS &&
	    (size_t)st->repicks + 1 < st->backend->n_endpoints) {
		/* no connection, so nothing of the request left: another
		 * endpoint at once, whatever the retry policy says */
		st->repicks++;
		timer_add(w->loop, &st->be_timer, 0, on_up_retry, st);
		return;
	}
	if (st->attempts_left > 0 && st->up_req && st->req_end && buf_is_empty(&st->reqbody) &&
	    !st->unacked) {
		st->attempts_left--;
		log_debug("event=retry worker=%u status=%d reason=%s", w->idx, status, log_q(why));
		timer_add(w->loop, &st->be_timer, st->rule->r->retry.backoff_ms, on_up_retry, st);
		return;
	}
	strm_fail(st, status, status == 504 ? 4 : 14, why);
}

/* One attempt: an endpoint (ejected ones skipped), a session to it, the
 * request on it. 0, or -1 when no session could be had. */
static int strm_up_submit(struct strm *st)
{
	struct h2conn *hc = st->hc;
	struct worker *w = hc->w;
	const struct snap_backend *b = st->backend;
	struct tls_client *tc = NULL;

	if (b->tls) {
		const struct rt_btls *bt = tlsg_backend(st->rt, b);
		if (!bt || !bt->client)
			return -1;
		tc = bt->client_h2 ? bt->client_h2 : bt->client;
	}
	struct upep *ep = up_pick_endpoint(w, b);
	struct h2up *u = ep ? up_get(w, ep, tc, b->tls ? b->tls->sni : NULL) : NULL;
	if (!u) {
		if (ep)
			upep_result(w, ep, false);
		return -1;
	}
	int32_t id = h2_submit_request(u->s, st->up_req, st->n_up_req, !st->req_end || !buf_is_empty(&st->reqbody), st);
	if (id < 0)
		return -1;
	st->ep = ep;
	st->up = u;
	st->up_next = u->streams;
	u->streams = st;
	st->up_sid = id;
	u->n_streams++;
	timer_cancel(w->loop, &u->timer);
	uint32_t bto = st->rule->r->backend_request_timeout_ms;
	if (bto)
		timer_add(w->loop, &st->be_timer, bto, on_up_backend_timeout, st);
	if (!u->connecting)
		up_run(u);
	return 0;
}

/* A URL rewrite, on the request's :path and :authority. 0 or -ENOMEM. */
static int up_rewrite(struct strm *st, struct hlist *hl, const struct px_plan *p)
{
	ssize_t k;
	if (p->up_path && (k = hlist_find(hl, STR_LIT(":path"))) >= 0) {
		const char *v = p->up_path;
		if (p->query.len &&
		    !(v = arena_printf(st->arena, "%s?%.*s", v, (int)p->query.len, p->query.p)))
			return -ENOMEM;
		hl->v[k].value = str_c(v);
	}
	if (p->up_host && (k = hlist_find(hl, STR_LIT(":authority"))) >= 0)
		hl->v[k].value = str_c(p->up_host);
	return 0;
}

/*
 * Sends the stream to the HTTP/2 backend of the plan (preset), after the
 * filters. 0, -1 (answered), or -ENOMEM.
 */
static int strm_start_up(struct strm *st, const struct rt_rule *rr, struct px_plan *plan,
			 const struct h2_hdr *h, size_t n, bool end)
{
	struct h2conn *hc = st->hc;
	struct hlist hl;

	/* the client's fields, then the filters of rule and backend */
	if (hlist_init(&hl, st->arena, n + 16))
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		if (hlist_add(&hl, st->arena, (struct str){h[i].name, h[i].nlen},
			      (struct str){h[i].value, h[i].vlen}))
			return -ENOMEM;
	}
	int rc = px_plan_make(plan, st->arena, rr, &hl);
	if (rc < 0)
		return rc;
	if (rc != PX_PLAN_PROXY)
		return strm_plan_answer(st, rc, plan) ? -ENOMEM : -1;
	st->filt = plan->resp;
	if (up_rewrite(st, &hl, plan))
		return -ENOMEM;
	const struct snap_backend *b = plan->backend;
	if (b->tls) {
		const struct rt_btls *bt = tlsg_backend(st->rt, b);
		if (!bt || !bt->client) {
			strm_fail(st, 502, 14, "backend TLS unavailable");
			return -1;
		}
	}
	/* kept in the arena: a retry sends them again */
	struct h2_hdr *out = arena_alloc(st->arena, H2P_MAX_FIELDS * sizeof(*out));
	if (!out)
		return -ENOMEM;
	size_t k = 0;
	/* pseudo headers first, as HTTP/2 requires */
	for (int pass = 0; pass < 2; pass++) {
		for (size_t i = 0; i < hl.n && k < H2P_MAX_FIELDS - 2; i++) {
			struct str nm = hl.v[i].name;
			if (!nm.len || (pass == 0) != (nm.p[0] == ':'))
				continue;
			/* "te: trailers" is the one TE HTTP/2 allows, and gRPC needs it */
			if (pass == 1 && h2_hop(nm.p, nm.len) &&
			    !(str_case_eq_c(nm, "te") && str_eq_c(hl.v[i].value, "trailers")))
				continue;
			char *lc = arena_strndup(st->arena, nm.p, nm.len);
			char *val = arena_strndup(st->arena, hl.v[i].value.p, hl.v[i].value.len);
			if (!lc || !val)
				return -ENOMEM;
			for (char *q = lc; *q; q++)
				if (*q >= 'A' && *q <= 'Z')
					*q = (char)(*q + 32);
			out[k++] = (struct h2_hdr){lc, nm.len, val, hl.v[i].value.len};
		}
	}
	out[k++] = (struct h2_hdr){"x-forwarded-for", 15, hc->peer, strlen(hc->peer)};
	out[k++] = (struct h2_hdr){"x-forwarded-proto", 17, hc->tls ? "https" : "http",
				   hc->tls ? 5u : 4u};
	struct str via = px_via(hc->w->p, true, 1);
	if (via.len && k < H2P_MAX_FIELDS)
		out[k++] = (struct h2_hdr){"via", 3, via.p, via.len};
	st->kind = STRM_UP;
	st->rule = rr;
	st->backend = b;
	st->up_req = out;
	st->n_up_req = k;
	st->attempts_left = end ? rr->r->retry.attempts : 0; /* bodiless requests only */
	strm_timer_start(st, rr);
	if (strm_up_submit(st) < 0) {
		STAT_ADD(hc->w, upstream_errors, 1);
		strm_fail(st, 503, 14, "backend connect failed");
		return -1;
	}
	return 0;
}

/*
 * A request's header block is complete: decide where it goes. Routing here
 * serves the HTTP/2 backends, the gRPC errors and 421; other requests go to
 * conn.c, which routes them again (the same snapshot rules, a few µs).
 */
static int strm_route(struct strm *st, const struct h2_hdr *h, size_t n, bool end)
{
	struct h2conn *hc = st->hc;
	struct worker *w = hc->w;
	struct h1_header hh[H2P_MAX_FIELDS];
	size_t nh = 0;
	struct str method = {"", 0}, path = {"/", 1}, authority = {"", 0};
	char hbuf[256];

	for (size_t i = 0; i < n; i++) {
		if (hname_is(&h[i], ":method"))
			method = (struct str){h[i].value, h[i].vlen};
		else if (hname_is(&h[i], ":path"))
			path = (struct str){h[i].value, h[i].vlen};
		else if (hname_is(&h[i], ":authority"))
			authority = (struct str){h[i].value, h[i].vlen};
		else if (hname_is(&h[i], "host") && !authority.len)
			authority = (struct str){h[i].value, h[i].vlen};
		else if (hname_is(&h[i], "content-type") && h[i].vlen >= 16 &&
			 !memcmp(h[i].value, "application/grpc", 16))
			st->grpc = true;
		if (h[i].nlen && h[i].name[0] != ':' && nh < H2P_MAX_FIELDS)
			hh[nh++] =
				(struct h1_header){{h[i].name, h[i].nlen}, {h[i].value, h[i].vlen}};
	}
	bool logged = w->p->cfg.access_log_fd >= 0; /* the copies are for the access log */
	if (logged) {
		st->method = log_copy(st->arena, method);
		st->authority = log_copy(st->arena, authority);
		st->path = log_copy(st->arena, path);
	}
	if (str_eq_c(method, "CONNECT")) {
		strm_local(st, 501, "501 Not Implemented\n");
		return 0;
	}
	struct rt *rt = w->rt;
	struct rt_socket *sock = rt ? rt_socket_by_id(rt, hc->sock_id) : NULL;
	if (!sock) {
		strm_fail(st, 404, 12, "listener removed");
		return 0;
	}
	size_t hlen = route_host_norm(authority, hbuf, sizeof(hbuf));
	if ((!hlen && authority.len) || !is_visible(method) || !is_visible(path) ||
	    !is_visible(authority)) {
		/* these go into an HTTP/1.1 request line and Host field */
		strm_fail(st, 400, 3, "invalid request line or host");
		return 0;
	}
	struct rt_listener *lsn = route_listener(sock, hbuf, hlen);
	if (hc->tls && hc->sni[0]) {
		char sbuf[256];
		size_t sl = route_host_norm(str_c(hc->sni), sbuf, sizeof(sbuf));
		if (route_listener(sock, sbuf, sl) != lsn) {
			strm_local(st, 421, "421 Misdirected Request\n");
			return 0;
		}
	}
	struct rt_rule *rr = NULL;
	if (lsn) {
		const char *qm = memchr(path.p, '?', path.len);
		struct str p = {path.p, qm ? (size_t)(qm - path.p) : path.len};
		struct str q = {qm ? qm + 1 : "", qm ? path.len - p.len - 1 : 0};
		struct route_req rq = {method, p, q, hh, nh};
		rr = route_match(lsn, hbuf, hlen, &rq);
	}
	if (!rr && st->grpc) {
		strm_grpc_error(st, 12, "no route for this method");
		return 0;
	}
	if (!lsn) {
		strm_fail(st, 404, 12, "no listener for host");
		return 0;
	}
	if (!rr) {
		strm_fail(st, 404, 12, "no route");
		return 0;
	}
	st->route = logged ? log_copy(st->arena, str_c(rr->r->route)) : NULL;
	strm_count(st, rr);
	st->rt = rt;
	rt_ref(rt);
	/* the backend is picked first: its protocol says how the request is
	 * put to it (the filters of the backendRef apply all the same) */
	struct px_plan plan = {0};
	if (strm_plan_init(st, &plan, h, n, method, path, hbuf, hlen))
		return -ENOMEM;
	plan.backend = rr->r->n_backends ? up_pick_backend(rr) : NULL;
	if (!plan.backend && st->grpc) {
		strm_grpc_error(st, 14, "no backend");
		return 0;
	}
	if (plan.backend &&
	    (plan.backend->proto == SNAP_APP_H2C || plan.backend->proto == SNAP_APP_H2)) {
		int rc = strm_start_up(st, rr, &plan, h, n, end);
		return rc == -ENOMEM ? rc : 0;
	}
	return strm_start_h1(st, rr, &plan, h, n, end, method, path, authority);
}

/* ---- the client session's callbacks ---- */

static int hc_on_headers(void *ctx, int32_t sid, const struct h2_hdr *h, size_t n, bool trailers,
			 bool end)
{
	struct h2conn *hc = ctx;
	if (trailers) {
		/* request trailers: dropped (HTTP/1.1 backends would need chunked
		 * trailers); they end the body, which the backend must learn */
		hc_on_end(ctx, sid);
		return 0;
	}
	struct strm *st = tl_free_strms;
	if (st) {
		tl_free_strms = st->next;
		tl_n_free_strms--;
		memset(st, 0, sizeof(*st));
	} else if (!(st = calloc(1, sizeof(*st)))) {
		return -1;
	}
	st->hc = hc;
	st->sid = sid;
	st->arena = warena_get(hc->w);
	if (!st->arena) {
		free(st);
		return -1;
	}
	st->next = hc->streams;
	hc->streams = st;
	hc->n_streams++;
	timer_cancel(hc->w->loop, &hc->timer);
	h2_stream_set_data(hc->s, sid, st);
	st->req_end = end;
	st->start_ms = loop_now_ms(hc->w->loop);
	int rc = strm_route(st, h, n, end);
	if (rc < 0 && !st->resp_sub)
		strm_fail(st, 502, 14, "request failed");
	return 0;
}

static int hc_on_data(void *ctx, int32_t sid, const uint8_t *p, size_t n)
{
	struct h2conn *hc = ctx;
	struct strm *st = strm_get(hc, sid);
	if (!st)
		return -1;
	st->unacked += n;
	switch (st->kind) {
	case STRM_H1:
		if (!st->x) {
			/* answered already (the backend failed): drop the rest */
			h2_consume(hc->s, sid, n);
			st->unacked -= n;
			break;
		}
		st->body_in += n;
		if (st->body_in > hc->lim->l.max_body_bytes) {
			/* over the listener's cap: the backend connection
			 * holding part of the body is closed, never reused */
			h2_consume(hc->s, sid, n);
			st->unacked -= n < st->unacked ? n : st->unacked;
			upx_free(st->x);
			st->x = NULL;
			timer_cancel(hc->w->loop, &st->req_timer);
			buf_release(&st->reqbody);
			strm_fail(st, 413, 8, "request body too large"); /* RESOURCE_EXHAUSTED */
			strm_kick(st);
			hc_schedule(hc);
			break;
		}
		if (st->mirrored)
			strm_mirrors_feed(st, p, n);
		if (buf_append(&st->reqbody, p, n))
			return -1;
		upx_kick(st->x);
		break;
	case STRM_UP:
		/* checked before a byte over the listener's cap is queued */
		st->body_in += n;
		if (st->body_in > hc->lim->l.max_body_bytes) {
			h2_consume(hc->s, sid, n);
			st->unacked -= n < st->unacked ? n : st->unacked;
			strm_up_detach(st, true);
			buf_release(&st->reqbody);
			strm_fail(st, 413, 8, "request body too large"); /* RESOURCE_EXHAUSTED */
			if (st->kind == STRM_UP) /* the response had started: reset */
				st->kind = STRM_LOCAL;
			hc_schedule(hc);
			break;
		}
		if (buf_append(&st->reqbody, p, n))
			return -1;
		if (st->up && !st->up->dead) {
			h2_resume(st->up->s, st->up_sid);
			if (!st->up->connecting)
				up_run(st->up);
		}
		break;
	default:
		/* answered locally: the body is read and dropped */
		h2_consume(hc->s, sid, n);
		st->unacked -= n;
		break;
	}
	return 0;
}

static void hc_on_end(void *ctx, int32_t sid)
{
	struct h2conn *hc = ctx;
	struct strm *st = strm_get(hc, sid);
	if (!st || st->req_end)
		return;
	st->req_end = true;
	strm_mirrors_end(st, true);
	if (st->kind == STRM_H1 && st->x) {
		upx_kick(st->x);
	} else if (st->kind == STRM_UP && st->up && !st->up->dead) {
		h2_resume(st->up->s, st->up_sid);
		if (!st->up->connecting)
			up_run(st->up);
	}
}

static void hc_on_close(void *ctx, int32_t sid, uint32_t code)
{
	struct h2conn *hc = ctx;
	struct strm *st = strm_get(hc, sid);
	(void)code;
	if (!st)
		return;
	h2_stream_set_data(hc->s, sid, NULL);
	strm_free(st);
}

static ssize_t hc_read_body(void *ctx, int32_t sid, uint8_t *buf, size_t len, uint32_t *flags)
{
	struct h2conn *hc = ctx;
	struct strm *st = strm_get(hc, sid);
	if (!st)
		return -1;
	if (st->kind == STRM_H1 && st->x) {
		/* straight from the backend connection's buffer */
		bool eof;
		ssize_t k = upx_read(st->x, (char *)buf, len, &eof);
		if (k < 0)
			return -1;
		if (eof) {
			*flags = H2_BODY_EOF;
			st->resp_end = true;
			timer_cancel(hc->w->loop, &st->req_timer);
			return k;
		}
		if (!k) {
			st->deferred = true;
			return H2_DEFER;
		}
		return k;
	}
	size_t k = buf_len(&st->resp) < len ? buf_len(&st->resp) : len;
	if (k) { /* an empty response body has no buffer at all */
		memcpy(buf, buf_rptr(&st->resp), k);
		buf_consume(&st->resp, k);
	}
	if (st->kind == STRM_UP && st->up && !st->up->dead && k) {
		h2_consume(st->up->s, st->up_sid, k);
	}
	if (buf_is_empty(&st->resp) && st->resp_end) {
		*flags = H2_BODY_EOF;
		timer_cancel(hc->w->loop, &st->req_timer);
		if (st->n_trailers) {
			*flags |= H2_BODY_TRAILERS;
			h2_submit_trailers(hc->s, sid, st->trailers, st->n_trailers);
		}
		return (ssize_t)k;
	}
	if (!k) {
		st->deferred = true;
		return H2_DEFER;
	}
	return (ssize_t)k;
}

static const struct h2_cbs hc_cbs = {
	.on_headers = hc_on_headers,
	.on_data = hc_on_data,
	.on_end = hc_on_end,
	.on_close = hc_on_close,
	.read_body = hc_read_body,
};

/* ---- driving the client connection ---- */

static void hc_set_io(struct h2conn *hc)
{
	uint32_t ev = LOOP_READ | hc->tls_want;
	if (!buf_is_empty(&hc->out) || h2_want_write(hc->s))
		ev |= LOOP_WRITE;
	loop_io_mod(hc->w->loop, &hc->io, ev);
}

/* Writes what the session has to say; 0, or negative when the client is gone. */
static int hc_flush(struct h2conn *hc)
{
	for (;;) {
		if (buf_is_empty(&hc->out)) {
			if (wbuf_get(hc->w, &hc->out))
				return -ENOMEM;
			ssize_t n = h2_send(hc->s, buf_wptr(&hc->out), buf_room(&hc->out));
			if (n < 0)
				return (int)n;
			if (!n) {
				wbuf_put(hc->w, &hc->out);
				return 0;
			}
			buf_commit(&hc->out, (size_t)n);
		}
		ssize_t r = hc_write(hc, buf_rptr(&hc->out), buf_len(&hc->out));
		if (r < 0)
			return (int)r;
		buf_consume(&hc->out, (size_t)r);
		if (!buf_is_empty(&hc->out))
			return 0;
	}
}

static void hc_run(struct h2conn *hc)
{
	if (hc->in_run || hc->dead)
		return;
	hc->in_run = true;
	hc->tls_want = 0;
	int rc = 0;
	const char *why = NULL;
	for (int i = 0; i < H2P_READS_PER_RUN && hc->readable && !hc->closing; i++) {
		if (wbuf_get(hc->w, &hc->in)) {
			why = "out of memory";
			goto close;
		}
		ssize_t r = hc_read(hc, buf_wptr(&hc->in), buf_room(&hc->in));
		if (r == -EAGAIN) {
			hc->readable = false;
			break;
		}
		if (r <= 0) {
			why = r == 0 ? NULL : "client read failed";
			goto close;
		}
		rc = h2_recv(hc->s, buf_wptr(&hc->in), (size_t)r, loop_now_ms(hc->w->loop));
		if (rc < 0) {
			/* GOAWAY is queued: flush it, then close */
			hc->closing = true;
			why = rc == -WG_ELIMIT ? "http2 flood" : "http2 protocol error";
			log_info("event=h2_goaway client=%s reason=%s", log_q(hc->peer), why);
			break;
		}
		if ((size_t)r < buf_room(&hc->in) && !(hc->tls && tlsg_pending(hc->tls)))
			hc->readable = false;
	}
	wbuf_put(hc->w, &hc->in);
	/* input left after the budget: TLS may hold it where epoll cannot
	 * see it, so come back next iteration, after the other connections */
	if (hc->readable && !hc->closing && hc->tls && tlsg_pending(hc->tls))
		hc_schedule(hc);
	rc = hc_flush(hc);
	if (rc < 0) {
		why = "client write failed";
		goto close;
	}
	if ((hc->closing || h2_is_done(hc->s) || (hc->draining && !hc->n_streams)) &&
	    buf_is_empty(&hc->out)) {
		goto close;
	}
	hc_set_io(hc);
	hc->in_run = false;
	return;
close:
	hc->in_run = false;
	hc_close(hc, why);
}

static void on_hc_io(struct loop_io *io, uint32_t events)
{
	struct h2conn *hc = io->arg;
	if (events & (LOOP_READ | LOOP_ERROR))
		hc->readable = true;
	hc_run(hc);
}

static void on_hc_timer(struct timer *t)
{
	struct h2conn *hc = t->arg;
	if (hc->n_streams)
		return;
	h2_goaway(hc->s, H2_NO_ERROR);
	hc->closing = true;
	hc_run(hc);
}

static void hc_close(struct h2conn *hc, const char *why)
{
	struct worker *w = hc->w;
	if (hc->dead)
		return;
	hc->dead = true;
	if (why)
		log_debug("event=h2_close worker=%u client=%s reason=%s", w->idx, log_q(hc->peer),
			  log_q(why));
	while (hc->streams) {
		struct strm *st = hc->streams;
		h2_stream_set_data(hc->s, st->sid, NULL);
		strm_free(st);
	}
	timer_cancel(w->loop, &hc->timer);
	loop_io_del(w->loop, &hc->io);
	if (hc->tls) {
		if (!why)
			tlsg_close_notify(hc->tls);
		tlsg_conn_free(hc->tls);
	}
	close(hc->fd);
	h2_free(hc->s);
	hc->s = NULL;
	wbuf_put(w, &hc->in);
	wbuf_put(w, &hc->out);
	admit_release(w->p, &hc->ticket);
	if (hc->prev)
		hc->prev->next = hc->next;
	else
		tl_conns = hc->next;
	if (hc->next)
		hc->next->prev = hc->prev;
	wk_conns_add(w, -1);
	STAT_ADD(w, active_connections, (uint64_t)-1);
	/* callers up the stack may still look at hc: freed by a deferred
	 * sweep, or by h2p_worker_exit when the loop has stopped */
	hc->next = tl_dead;
	tl_dead = hc;
	if (!tl_dead_scheduled && loop_defer(w->loop, hc_free_dead, w) == 0)
		tl_dead_scheduled = true;
	if (w->draining && !w->n_conns)
		loop_stop(w->loop);
}

void h2p_worker_exit(struct worker *w)
{
	w->stopped = true;
	h2p_drain_all(w, true);
	hc_free_dead(w);
	while (w->h2ups) {
		struct h2up *u = w->h2ups;
		if (u->dead)
			up_free(u); /* unlinks it */
		else
			up_close(u, "worker exit"); /* stopped: unlinks and frees it at once */
	}
	while (tl_free_strms) {
		struct strm *st = tl_free_strms;
		tl_free_strms = st->next;
		free(st);
	}
	tl_n_free_strms = 0;
	upx_worker_exit();
	h2_mem_release();
}

void h2p_drain_all(struct worker *w, bool force)
{
	for (struct h2conn *hc = tl_conns, *next; hc; hc = next) {
		next = hc->next;
		if (force) {
			hc_close(hc, "draining");
			continue;
		}
		if (hc->draining || hc->closing)
			continue;
		hc->draining = true;
		if (h2_drain(hc->s))
			hc->closing = true;
		log_debug("event=h2_drain worker=%u client=%s streams=%u", w->idx,
			  log_q(hc->peer), hc->n_streams);
		hc_run(hc);
	}
}

int h2p_take(struct worker *w, int fd, struct tls_conn *tls, struct admit_ticket *ticket,
	     uint64_t sock_id, uint16_t port, const char *peer, const char *sni, const void *in,
	     size_t in_len)
{
	struct h2conn *hc = calloc(1, sizeof(*hc));
	if (!hc)
		goto fail;
	hc->w = w;
	hc->fd = fd;
	hc->tls = tls;
	hc->sock_id = sock_id;
	hc->port = port;
	hc->lim = px_limits_for(w->p, port);
	snprintf(hc->peer, sizeof(hc->peer), "%s", peer);
	if (sni)
		snprintf(hc->sni, sizeof(hc->sni), "%s", sni);
	hc->s = h2_server_new(h2_lim(), &hc_cbs, hc);
	if (!hc->s)
		goto fail_hc;
	if (loop_io_add(w->loop, &hc->io, fd, LOOP_READ | LOOP_WRITE, on_hc_io, hc))
		goto fail_sess;
	timer_add(w->loop, &hc->timer, hc->lim->l.keepalive_timeout_ms, on_hc_timer, hc);
	hc->ticket = *ticket;
	ticket->held = false;
	STAT_ADD(w, active_connections, 1);
	wk_conns_add(w, 1);
	hc->next = tl_conns;
	if (tl_conns)
		tl_conns->prev = hc;
	tl_conns = hc;
	if (in_len && h2_recv(hc->s, in, in_len, loop_now_ms(w->loop)) < 0)
		hc->closing = true;
	hc->readable = true;
	hc_run(hc);
	return 0;
fail_sess:
	h2_free(hc->s);
fail_hc:
	free(hc);
fail:
	admit_release(w->p, ticket);
	if (tls)
		tlsg_conn_free(tls);
	close(fd);
	return -ENOMEM;
}
