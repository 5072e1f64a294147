/* SPDX-License-Identifier: MIT */
/*
 * h2.c: HTTP/2 towards clients (TLS with ALPN "h2", or cleartext with prior
 * knowledge) and HTTP/2 towards backends (h2c, and h2 over TLS), on a
 * worker's loop. conn.c hands a connection over once it knows the client
 * speaks HTTP/2 (h2p_take); from then on this file owns its fd and TLS.
 *
 * Each client stream is one request. It goes one of three ways:
 *   - gRPC and appProtocol h2c/h2 backends: over a shared HTTP/2 client
 *     session per endpoint per worker (struct h2up), streams multiplexed,
 *     trailers (grpc-status) passed through;
 *   - everything else: as an HTTP/1.1 request over an in-process socket
 *     pair into a connection of conn.c (struct vlink), so that routing,
 *     filters, retries, timeouts, mirrors, pools and upstream TLS are the
 *     HTTP/1.1 path's, unchanged; the pair is kept alive and reused by the
 *     next stream of the same client connection;
 *   - answered here: 421 (Host outside the TLS server name's listener) and
 *     gRPC errors (UNIMPLEMENTED when no route matches, UNAVAILABLE when
 *     the backend fails) as trailers-only responses, never HTML.
 *
 * Memory is bounded by HTTP/2 flow control: a stream's received body is
 * acknowledged only once written on (h2_consume), a response body is read
 * from its source only while less than H2P_RESP_MAX is waiting for the
 * client's window. Flood limits are in http/h2.c.
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

#define H2P_RESP_MAX (64 * 1024) /* response bytes held per stream before reading stops */
#define H2P_VLINK_IDLE 8         /* idle socket pairs kept per client connection */
#define H2P_MAX_FIELDS 128

struct h2conn;
struct h2up;
struct vlink;

enum strm_kind { STRM_NEW = 0, STRM_LOCAL, STRM_VLINK, STRM_UP };

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
	const char *method, *authority, *path, *route; /* for the access log */
	struct route_ctr *rctr;                        /* counted here (strm_count), or NULL */
	struct buf resp;
	size_t unacked; /* request body bytes not yet consumed (flow control) */
	/* trailers to send after resp (h2 backends) */
	struct h2_hdr *trailers;
	size_t n_trailers;
	/* response header modifiers for the h2 backend path */
	const struct snap_header_mod *resp_mods[8];
	size_t n_resp_mods;
	/* STRM_VLINK */
	struct vlink *vl;
	bool req_chunked;
	/* STRM_UP */
	struct h2up *up;
	struct strm *up_next; /* on up->streams */
	int32_t up_sid;
	struct buf reqbody; /* body waiting for the upstream's window */
};

struct h2conn {
	struct worker *w;
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
	struct vlink *idle;
	unsigned n_idle;
	bool readable;
	bool in_run;
	bool closing;
	bool dead;
	bool flush_scheduled;
};

/* A socket pair into conn.c: one HTTP/1.1 request at a time. */
struct vlink {
	struct loop_io io;
	struct h2conn *hc;
	struct strm *st; /* NULL when idle */
	struct vlink *next_idle;
	struct buf out, in;
	size_t last_len;
	bool head_done;
	bool head_method;
	enum h1_body body;
	uint64_t remaining;
	struct h1_chunked ch;
	bool keep;
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

static __thread struct h2up *tl_ups; /* this worker's sessions */

static void hc_run(struct h2conn *hc);
static void hc_close(struct h2conn *hc, const char *why);
static void vl_free(struct vlink *v);
static void up_run(struct h2up *u);
static void up_close(struct h2up *u, const char *why);
static void strm_up_detach(struct strm *st, bool reset);
static void on_hc_timer(struct timer *t);
static void up_unlink(struct h2up *u, struct strm *st);

static const struct h2_limits *h2_lim(void)
{
	static const struct h2_limits lim = {0};
	return &lim;
}

static inline bool hname_is(const struct h2_hdr *h, const char *n)
{
	size_t l = strlen(n);
	return h->nlen == l && !memcmp(h->name, n, l);
}

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

static void hc_free_deferred(void *arg)
{
	struct h2conn *hc = arg;
	if (hc->flush_scheduled) {
		/* a flush queued before the close runs first; free after it */
		hc->flush_scheduled = false;
		if (loop_defer(hc->w->loop, hc_free_deferred, hc) == 0)
			return;
	}
	free(hc);
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

/* A stream this file answers itself or sends to an HTTP/2 backend counts
 * towards its route rule here (strm_log ends it); one that goes over a
 * vlink is counted by conn.c like any HTTP/1.1 request. */
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

static void strm_free(struct strm *st)
{
	struct h2conn *hc = st->hc;
	if (st->kind == STRM_LOCAL || st->kind == STRM_UP)
		strm_log(st);
	struct strm **pp = &hc->streams;
	while (*pp && *pp != st)
		pp = &(*pp)->next;
	if (*pp) {
		*pp = st->next;
		hc->n_streams--;
	}
	if (st->vl) {
		/* the request is cut: the pair is not reusable */
		st->vl->st = NULL;
		vl_free(st->vl);
		st->vl = NULL;
	}
	if (st->up)
		strm_up_detach(st, true);
	if (hc->s && st->unacked)
		h2_consume(hc->s, st->sid, st->unacked);
	buf_release(&st->resp);
	buf_release(&st->reqbody);
	if (st->arena)
		arena_free(st->arena);
	if (st->rt)
		rt_unref(st->rt);
	free(st);
	if (!hc->n_streams && !hc->closing && !hc->dead)
		timer_add(hc->w->loop, &hc->timer,
			  hc->w->p->cfg.limits.keepalive_timeout_ms
				  ? hc->w->p->cfg.limits.keepalive_timeout_ms
				  : 75000,
			  on_hc_timer, hc);
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

/* ---- HTTP/1.1 over a socket pair into conn.c ---- */

static void vl_set_io(struct vlink *v)
{
	uint32_t ev = 0;
	if (!buf_is_empty(&v->out))
		ev |= LOOP_WRITE;
	if (!v->st || buf_len(&v->st->resp) < H2P_RESP_MAX)
		ev |= LOOP_READ;
	loop_io_mod(v->hc->w->loop, &v->io, ev);
}

static void vl_free(struct vlink *v)
{
	struct worker *w = v->hc->w;
	if (v->io.fd >= 0) {
		int fd = v->io.fd;
		loop_io_del(w->loop, &v->io);
		close(fd);
	}
	buf_release(&v->in);
	buf_release(&v->out);
	free(v);
}

static void vl_idle_remove(struct vlink *v)
{
	struct vlink **pp = &v->hc->idle;
	while (*pp && *pp != v)
		pp = &(*pp)->next_idle;
	if (*pp) {
		*pp = v->next_idle;
		v->hc->n_idle--;
	}
}

/* The request on v is complete: keep the pair for the next stream. */
static void vl_done(struct vlink *v)
{
	struct h2conn *hc = v->hc;
	struct strm *st = v->st;
	if (st) {
		st->vl = NULL;
		st->resp_end = true;
		strm_kick(st);
	}
	v->st = NULL;
	if (!v->keep || hc->n_idle >= H2P_VLINK_IDLE || !buf_is_empty(&v->in) || hc->closing) {
		vl_free(v);
		return;
	}
	v->head_done = false;
	v->last_len = 0;
	v->next_idle = hc->idle;
	hc->idle = v;
	hc->n_idle++;
	buf_release(&v->in);
	loop_io_mod(hc->w->loop, &v->io, LOOP_READ);
}

/* Parses the HTTP/1.1 response head in v->in and submits the h2 one.
 * 1 done, 0 need more, -1 failed. */
static int vl_head(struct vlink *v)
{
	struct strm *st = v->st;
	struct h1_header hdrs[PX_MAX_HEADERS];
	struct h1_msg m = {.headers = hdrs, .max_headers = PX_MAX_HEADERS};
	struct h2_hdr out[H2P_MAX_FIELDS];
	size_t n = 0;

	for (;;) {
		ssize_t k = h1_parse_response(buf_rptr(&v->in), buf_len(&v->in), v->last_len, &m,
					      &v->hc->w->p->hlim, v->head_method);
		if (k == 0) {
			v->last_len = buf_len(&v->in);
			return 0;
		}
		if (k < 0)
			return -1;
		v->last_len = 0;
		if (m.status >= 100 && m.status < 200) {
			buf_consume(&v->in, (size_t)k);
			continue;
		}
		for (size_t i = 0; i < m.n_headers && n < H2P_MAX_FIELDS; i++) {
			struct str nm = m.headers[i].name;
			if (h2_hop(nm.p, nm.len))
				continue;
			char *lc = arena_strndup(st->arena, nm.p, nm.len);
			char *val = arena_strndup(st->arena, m.headers[i].value.p,
						  m.headers[i].value.len);
			if (!lc || !val)
				return -1;
			for (char *q = lc; *q; q++)
				if (*q >= 'A' && *q <= 'Z')
					*q = (char)(*q + 32);
			out[n++] = (struct h2_hdr){lc, nm.len, val, m.headers[i].value.len};
		}
		v->body = m.body;
		v->remaining = m.content_length;
		v->keep = m.keep_alive && m.body != H1_BODY_EOF;
		buf_consume(&v->in, (size_t)k);
		v->head_done = true;
		bool has_body = m.body != H1_BODY_NONE;
		strm_respond(st, m.status, out, n, true);
		if (!has_body)
			st->resp_end = true;
		return 1;
	}
}

/* Decodes response body bytes from v->in into st->resp. 1 complete, 0 more, -1 error. */
static int vl_body(struct vlink *v)
{
	struct strm *st = v->st;
	while (!buf_is_empty(&v->in) && buf_len(&st->resp) < H2P_RESP_MAX) {
		struct str d = {NULL, 0};
		size_t used;
		if (v->body == H1_BODY_LENGTH) {
			used = buf_len(&v->in);
			if (used > v->remaining)
				used = (size_t)v->remaining;
			d = (struct str){buf_rptr(&v->in), used};
			v->remaining -= used;
		} else if (v->body == H1_BODY_CHUNKED) {
			ssize_t k =
				h1_chunked_decode(&v->ch, buf_rptr(&v->in), buf_len(&v->in), &d);
			if (k < 0)
				return -1;
			used = (size_t)k;
			if (!k && !d.len && !h1_chunked_is_done(&v->ch))
				break;
		} else {
			used = buf_len(&v->in);
			d = (struct str){buf_rptr(&v->in), used};
		}
		if (d.len && buf_append(&st->resp, d.p, d.len))
			return -1;
		buf_consume(&v->in, used);
		if ((v->body == H1_BODY_LENGTH && !v->remaining) ||
		    (v->body == H1_BODY_CHUNKED && h1_chunked_is_done(&v->ch)))
			return 1;
	}
	if (v->body == H1_BODY_NONE || (v->body == H1_BODY_LENGTH && !v->remaining))
		return 1;
	return 0;
}

static void on_vl_io(struct loop_io *io, uint32_t events)
{
	struct vlink *v = io->arg;
	struct h2conn *hc = v->hc;

	if (!v->st) {
		/* idle: the other side closed it (keep-alive timeout, drain) */
		vl_idle_remove(v);
		vl_free(v);
		return;
	}
	struct strm *st = v->st;
	if ((events & LOOP_WRITE) && !buf_is_empty(&v->out)) {
		ssize_t r = send(v->io.fd, buf_rptr(&v->out), buf_len(&v->out), MSG_NOSIGNAL);
		if (r > 0)
			buf_consume(&v->out, (size_t)r);
		else if (r < 0 && errno != EAGAIN && errno != EINTR)
			goto fail;
	}
	if (buf_len(&v->out) < 65536 && st->unacked) {
		h2_consume(hc->s, st->sid, st->unacked);
		st->unacked = 0;
	}
	if ((events & (LOOP_READ | LOOP_ERROR)) && buf_len(&st->resp) < H2P_RESP_MAX) {
		if (buf_reserve(&v->in, 16384, 0))
			goto fail;
		ssize_t r = read(v->io.fd, buf_wptr(&v->in), buf_room(&v->in));
		if (r > 0) {
			buf_commit(&v->in, (size_t)r);
		} else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
			if (v->head_done && v->body == H1_BODY_EOF) {
				v->keep = false;
				vl_done(v);
				hc_run(hc);
				return;
			}
			goto fail;
		}
	}
	if (!v->head_done && !buf_is_empty(&v->in)) {
		int h = vl_head(v);
		if (h < 0)
			goto fail;
	}
	if (v->head_done) {
		int b = vl_body(v);
		if (b < 0)
			goto fail;
		strm_kick(st);
		if (b > 0 || st->resp_end) {
			vl_done(v);
			hc_run(hc);
			return;
		}
	}
	vl_set_io(v);
	hc_run(hc);
	return;
fail:
	st->vl = NULL;
	v->st = NULL;
	vl_free(v);
	strm_fail(st, 502, 14, "backend failed");
	hc_run(hc);
}

/* Serialises the stream's request as HTTP/1.1 into a (new or idle) pair. */
static int strm_start_vlink(struct strm *st, const struct h2_hdr *h, size_t n, bool end)
{
	struct h2conn *hc = st->hc;
	struct vlink *v = hc->idle;
	const struct h2_hdr *method = NULL, *path = NULL, *auth = NULL;
	bool has_cl = false;

	if (v) {
		hc->idle = v->next_idle;
		hc->n_idle--;
	} else {
		int sv[2];
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == -1)
			return -errno;
		v = calloc(1, sizeof(*v));
		if (!v) {
			close(sv[0]);
			close(sv[1]);
			return -ENOMEM;
		}
		v->hc = hc;
		v->io.fd = -1;
		if (loop_io_add(hc->w->loop, &v->io, sv[0], LOOP_READ, on_vl_io, v)) {
			close(sv[0]);
			close(sv[1]);
			free(v);
			return -ENOMEM;
		}
		conn_accept_inner(hc->w, hc->sock_id, hc->port, sv[1], hc->peer, hc->tls != NULL);
	}
	v->st = st;
	v->head_done = false;
	v->last_len = 0;
	v->keep = false;
	memset(&v->ch, 0, sizeof(v->ch));
	st->vl = v;
	st->kind = STRM_VLINK;
	for (size_t i = 0; i < n; i++) {
		if (hname_is(&h[i], ":method"))
			method = &h[i];
		else if (hname_is(&h[i], ":path"))
			path = &h[i];
		else if (hname_is(&h[i], ":authority"))
			auth = &h[i];
		else if (hname_is(&h[i], "content-length"))
			has_cl = true;
	}
	if (!method || !path)
		return -EINVAL;
	v->head_method = method->vlen == 4 && !memcmp(method->value, "HEAD", 4);
	struct buf *o = &v->out;
	int rc = 0;
	rc |= buf_append(o, method->value, method->vlen);
	rc |= buf_append(o, " ", 1);
	rc |= buf_append(o, path->value, path->vlen);
	rc |= buf_append_str(o, " HTTP/1.1\r\n");
	if (auth) {
		rc |= buf_append_str(o, "host: ");
		rc |= buf_append(o, auth->value, auth->vlen);
		rc |= buf_append(o, "\r\n", 2);
	}
	bool cookie = false;
	for (size_t i = 0; i < n; i++) {
		if (h[i].nlen && h[i].name[0] == ':')
			continue;
		if (h2_hop(h[i].name, h[i].nlen) && !(auth == NULL && hname_is(&h[i], "host")))
			continue;
		if (hname_is(&h[i], "cookie")) {
			/* HTTP/2 splits cookies; HTTP/1.1 wants one field */
			if (cookie)
				continue;
			cookie = true;
			rc |= buf_append_str(o, "cookie: ");
			bool first = true;
			for (size_t k = i; k < n; k++) {
				if (!hname_is(&h[k], "cookie"))
					continue;
				if (!first)
					rc |= buf_append(o, "; ", 2);
				rc |= buf_append(o, h[k].value, h[k].vlen);
				first = false;
			}
			rc |= buf_append(o, "\r\n", 2);
			continue;
		}
		rc |= buf_append(o, h[i].name, h[i].nlen);
		rc |= buf_append(o, ": ", 2);
		rc |= buf_append(o, h[i].value, h[i].vlen);
		rc |= buf_append(o, "\r\n", 2);
	}
	if (!end && !has_cl) {
		st->req_chunked = true;
		rc |= buf_append_str(o, "transfer-encoding: chunked\r\n");
	}
	rc |= buf_append(o, "\r\n", 2);
	if (rc)
		return -ENOMEM;
	vl_set_io(v);
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
	struct hlist hl;
	if (hlist_init(&hl, st->arena, n + 8))
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (hname_is(&h[i], ":status")) {
			status = atoi(h[i].value);
			continue;
		}
		if (h2_hop(h[i].name, h[i].nlen))
			continue;
		hlist_add(&hl, st->arena, (struct str){h[i].name, h[i].nlen},
			  (struct str){h[i].value, h[i].vlen});
	}
	for (size_t i = 0; i < st->n_resp_mods; i++)
		hlist_apply(&hl, st->arena, st->resp_mods[i]);
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
			strm_fail(st, 502, 14, "backend stream failed");
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
	memcpy(buf, buf_rptr(&st->reqbody), k);
	buf_consume(&st->reqbody, k);
	if (k) {
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
	struct h2up **pp = &tl_ups;
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
	struct h2up **pp = &tl_ups;
	while (*pp && *pp != u)
		pp = &(*pp)->next;
	if (*pp)
		*pp = u->next;
	u->next = NULL;
	/* the client streams still attached get their error */
	while (u->streams) {
		struct strm *st = u->streams;
		u->streams = st->up_next;
		st->up = NULL;
		st->up_next = NULL;
		if (!st->resp_sub)
			strm_fail(st, 502, 14, why);
		else if (!st->resp_end)
			h2_reset(st->hc->s, st->sid, H2_INTERNAL_ERROR);
		strm_kick(st);
		hc_run(st->hc);
	}
	h2_free(u->s);
	u->s = NULL;
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
	for (struct h2up *u = tl_ups; u; u = u->next)
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
	timer_add(w->loop, &u->timer,
		  w->p->cfg.limits.connect_timeout_ms ? w->p->cfg.limits.connect_timeout_ms : 5000,
		  up_timeout, u);
	u->next = tl_ups;
	tl_ups = u;
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

static const struct snap_backend *pick_backend(const struct rt_rule *rr)
{
	const struct snap_http_rule *r = rr->r;
	if (!rr->total_weight)
		return NULL;
	uint64_t x = rand_u64() % rr->total_weight;
	for (size_t i = 0; i < r->n_backends; i++) {
		if (x < r->backends[i].weight)
			return &r->backends[i];
		x -= r->backends[i].weight;
	}
	return &r->backends[r->n_backends - 1];
}

/* Sends the stream to an HTTP/2 backend. 0, or negative (answered). */
static int strm_start_up(struct strm *st, struct rt *rt, const struct rt_rule *rr,
			 const struct snap_backend *b, const struct h2_hdr *h, size_t n, bool end)
{
	struct h2conn *hc = st->hc;
	struct worker *w = hc->w;
	struct hlist hl;

	if (b->invalid_status) {
		strm_fail(st, b->invalid_status, 14, "invalid backend");
		return -1;
	}
	if (!b->n_endpoints) {
		strm_fail(st, 503, 14, "no ready endpoints");
		return -1;
	}
	const struct snap_endpoint *e = &b->endpoints[(w->rr++) % b->n_endpoints];
	struct upep *ep = upep_get(w, e->addr, e->port);
	struct tls_client *tc = NULL;
	if (b->tls) {
		const struct rt_btls *bt = tlsg_backend(rt, b);
		if (!bt || !bt->client) {
			strm_fail(st, 502, 14, "backend TLS unavailable");
			return -1;
		}
		tc = bt->client_h2 ? bt->client_h2 : bt->client;
	}
	struct h2up *u = ep ? up_get(w, ep, tc, b->tls ? b->tls->sni : NULL) : NULL;
	if (!u) {
		strm_fail(st, 503, 14, "backend connect failed");
		return -1;
	}
	/* the client's fields, then the filters of rule and backend */
	if (hlist_init(&hl, st->arena, n + 16))
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		hlist_add(&hl, st->arena, (struct str){h[i].name, h[i].nlen},
			  (struct str){h[i].value, h[i].vlen});
	}
	for (int level = 0; level < 2; level++) {
		const struct snap_filter *fl = level ? b->filters : rr->r->filters;
		size_t nf = level ? b->n_filters : rr->r->n_filters;
		for (size_t i = 0; i < nf; i++) {
			if (fl[i].type == SNAP_F_REQ_HEADER)
				hlist_apply(&hl, st->arena, &fl[i].u.header);
			else if (fl[i].type == SNAP_F_RESP_HEADER && st->n_resp_mods < 8)
				st->resp_mods[st->n_resp_mods++] = &fl[i].u.header;
		}
	}
	struct h2_hdr out[H2P_MAX_FIELDS];
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
			if (!lc)
				return -ENOMEM;
			for (char *q = lc; *q; q++)
				if (*q >= 'A' && *q <= 'Z')
					*q = (char)(*q + 32);
			out[k++] = (struct h2_hdr){lc, nm.len, hl.v[i].value.p, hl.v[i].value.len};
		}
	}
	out[k++] = (struct h2_hdr){"x-forwarded-for", 15, hc->peer, strlen(hc->peer)};
	out[k++] = (struct h2_hdr){"x-forwarded-proto", 17, hc->tls ? "https" : "http",
				   hc->tls ? 5u : 4u};
	int32_t id = h2_submit_request(u->s, out, k, !end, st);
	if (id < 0) {
		strm_fail(st, 502, 14, "backend stream refused");
		return -1;
	}
	st->kind = STRM_UP;
	st->rt = rt;
	rt_ref(st->rt);
	st->up = u;
	st->up_next = u->streams;
	u->streams = st;
	st->up_sid = id;
	u->n_streams++;
	timer_cancel(w->loop, &u->timer);
	if (!u->connecting)
		up_run(u);
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
	st->method = log_copy(st->arena, method);
	st->authority = log_copy(st->arena, authority);
	st->path = log_copy(st->arena, path);
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
	if (rr)
		st->route = log_copy(st->arena, str_c(rr->r->route));
	if (rr && (rr->r->grpc || st->grpc)) {
		const struct snap_backend *b = rr->r->n_backends ? pick_backend(rr) : NULL;
		if (!b) {
			strm_count(st, rr);
			strm_grpc_error(st, 14, "no backend");
			return 0;
		}
		if (b->proto == SNAP_APP_H2C || b->proto == SNAP_APP_H2) {
			strm_count(st, rr);
			int rc = strm_start_up(st, rt, rr, b, h, n, end);
			return rc < 0 && rc != -1 ? rc : 0;
		}
	} else if (rr && rr->r->n_backends == 1 &&
		   (rr->r->backends[0].proto == SNAP_APP_H2C ||
		    rr->r->backends[0].proto == SNAP_APP_H2) &&
		   !rr->r->n_filters && !rr->r->backends[0].n_filters) {
		strm_count(st, rr);
		return strm_start_up(st, rt, rr, &rr->r->backends[0], h, n, end) == -ENOMEM
			       ? -ENOMEM
			       : 0;
	}
	return strm_start_vlink(st, h, n, end);
}

/* ---- the client session's callbacks ---- */

static int hc_on_headers(void *ctx, int32_t sid, const struct h2_hdr *h, size_t n, bool trailers,
			 bool end)
{
	struct h2conn *hc = ctx;
	if (trailers) {
		/* request trailers: dropped (HTTP/1.1 backends would need chunked
		 * trailers); the body ends */
		struct strm *st = strm_get(hc, sid);
		if (st)
			st->req_end = true;
		return 0;
	}
	struct strm *st = calloc(1, sizeof(*st));
	if (!st)
		return -1;
	st->hc = hc;
	st->sid = sid;
	st->arena = arena_new(4096);
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
	if (end && st->kind == STRM_VLINK && st->req_chunked && st->vl)
		buf_append_str(&st->vl->out, "0\r\n\r\n");
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
	case STRM_VLINK:
		if (!st->vl) {
			/* the link to the HTTP/1.1 side is gone (the backend
			 * failed and the answer is out): drop the rest */
			h2_consume(hc->s, sid, n);
			break;
		}
		if (st->req_chunked && n) {
			char hd[24];
			buf_append(&st->vl->out, hd, h1_chunk_header(hd, n));
			buf_append(&st->vl->out, p, n);
			buf_append(&st->vl->out, "\r\n", 2);
		} else {
			buf_append(&st->vl->out, p, n);
		}
		vl_set_io(st->vl);
		break;
	case STRM_UP:
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
	if (st->kind == STRM_VLINK && st->vl) {
		if (st->req_chunked)
			buf_append_str(&st->vl->out, "0\r\n\r\n");
		vl_set_io(st->vl);
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
	size_t k = buf_len(&st->resp) < len ? buf_len(&st->resp) : len;
	memcpy(buf, buf_rptr(&st->resp), k);
	buf_consume(&st->resp, k);
	if (st->kind == STRM_UP && st->up && !st->up->dead && k) {
		h2_consume(st->up->s, st->up_sid, k);
	}
	if (st->vl && buf_len(&st->resp) < H2P_RESP_MAX)
		vl_set_io(st->vl);
	if (buf_is_empty(&st->resp) && st->resp_end) {
		*flags = H2_BODY_EOF;
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
	for (int i = 0; i < 64 && hc->readable && !hc->closing; i++) {
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
	rc = hc_flush(hc);
	if (rc < 0) {
		why = "client write failed";
		goto close;
	}
	if ((hc->closing || h2_is_done(hc->s)) && buf_is_empty(&hc->out)) {
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
	while (hc->idle) {
		struct vlink *v = hc->idle;
		hc->idle = v->next_idle;
		vl_free(v);
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
	STAT_ADD(w, active_connections, (uint64_t)-1);
	if (loop_defer(w->loop, hc_free_deferred, hc))
		free(hc);
}

int h2p_take(struct worker *w, int fd, struct tls_conn *tls, uint64_t sock_id, uint16_t port,
	     const char *peer, const char *sni, const void *in, size_t in_len)
{
	struct h2conn *hc = calloc(1, sizeof(*hc));
	if (!hc)
		goto fail;
	hc->w = w;
	hc->fd = fd;
	hc->tls = tls;
	hc->sock_id = sock_id;
	hc->port = port;
	snprintf(hc->peer, sizeof(hc->peer), "%s", peer);
	if (sni)
		snprintf(hc->sni, sizeof(hc->sni), "%s", sni);
	hc->s = h2_server_new(h2_lim(), &hc_cbs, hc);
	if (!hc->s)
		goto fail_hc;
	if (loop_io_add(w->loop, &hc->io, fd, LOOP_READ | LOOP_WRITE, on_hc_io, hc))
		goto fail_sess;
	timer_add(w->loop, &hc->timer,
		  w->p->cfg.limits.keepalive_timeout_ms ? w->p->cfg.limits.keepalive_timeout_ms
							: 75000,
		  on_hc_timer, hc);
	STAT_ADD(w, active_connections, 1);
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
	if (tls)
		tlsg_conn_free(tls);
	close(fd);
	return -ENOMEM;
}
