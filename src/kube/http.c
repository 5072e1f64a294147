// SPDX-License-Identifier: MIT
/*
 * http.c: the HTTP/1.1 client kube/ talks to the API server with. One
 * request at a time per connection, non-blocking on the control thread's
 * loop: TCP connect (optionally through an HTTP CONNECT proxy), TLS through
 * tls/ (the server is verified against the kubeconfig's CA and name before
 * any byte of the request, so a token never reaches an unverified peer),
 * keep-alive, Content-Length, chunked and close-delimited bodies. Streaming
 * requests (watches) hand decoded bytes to the caller as they arrive and
 * are bounded by a silence deadline instead of a total one.
 *
 * A 401 makes the client refresh its credential (exec plugin, tokenFile)
 * and retry once; a request sent on a kept-alive connection that the server
 * had already closed is retried once on a fresh one. Anything else is the
 * caller's to retry (with its backoff).
 *
 * Name resolution: an IP literal is used as is; a name is resolved by
 * getaddrinfo() on a short-lived helper thread (it may block for seconds on
 * a bad WAN), the answer handed back through a socketpair registered on the
 * loop and cached for 30 s for every connection of the client. Everything
 * else runs on the control thread.
 *
 * States (enum khttp_state):
 *   IDLE -> [RESOLVING] -> CONNECTING -> [PROXY] -> HANDSHAKE -> SEND -> HEAD -> BODY
 *        -> READY
 *   READY -> SEND (next request on the kept-alive connection)
 *   any   -> IDLE (error, close, or a response that ends the connection)
 *   AUTH: a request waiting for an exec plugin before it can be built.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/log.h"
#include "core/loop.h"
#include "kube/internal.h"
#include "tls/tls.h"

#define KH_MAX_HEAD (64u << 10)
#define KH_MAX_BODY (64u << 20)
#define KH_READ_CHUNK 16384
#define KH_DNS_TTL_MS 30000

/* ---- client ---- */

static struct tls_client *client_tls_build(const struct kube_config *cfg, const char *cert,
					   const char *key)
{
	struct tls_client_opts o = {0};
	struct diag d = {0};
	struct tls_client *t;

	o.ca_pem = cfg->ca_pem;
	o.use_system_cas = !cfg->ca_pem;
	o.insecure_skip_verify = cfg->insecure;
	o.client_cert_pem = cert;
	o.client_key_pem = key;
	t = tls_client_new(&o, &d);
	if (!t) {
		char msg[256];

		for (size_t i = 0; i < d.n; i++)
			log_error("event=kube_tls_client_failed context=%s reason=%s",
				  log_q(cfg->context),
				  log_q(diag_format(&d.v[i], msg, sizeof(msg))));
	}
	diag_fini(&d);
	return t;
}

int kube_client_init(struct kube_client *cl, struct loop *loop, const struct kube_config *cfg,
		     const char *user_agent, uint32_t request_timeout_ms)
{
	memset(cl, 0, sizeof(*cl));
	cl->loop = loop;
	cl->cfg = cfg;
	cl->request_timeout_ms = request_timeout_ms;
	cl->user_agent = strdup(user_agent ? user_agent : "waygate");
	if (!cl->user_agent)
		return -ENOMEM;
	cl->tls = client_tls_build(cfg, cfg->client_cert_pem, cfg->client_key_pem);
	if (!cl->tls) {
		free(cl->user_agent);
		cl->user_agent = NULL;
		return -WG_ETLS;
	}
	kube_auth_init(&cl->auth, loop, cfg);
	cl->res_fd = -1;
	return 0;
}

static void res_cancel(struct kube_client *cl);

void kube_client_fini(struct kube_client *cl)
{
	res_cancel(cl);
	kube_auth_fini(&cl->auth);
	if (cl->tls)
		tls_client_unref(cl->tls);
	free(cl->user_agent);
	memset(cl, 0, sizeof(*cl));
}

/* ---- response head ---- */

static bool hdr_is(const char *name, size_t nl, const char *want)
{
	return strlen(want) == nl && strncasecmp(name, want, nl) == 0;
}

static bool token_in(const char *v, size_t vl, const char *tok)
{
	size_t tl = strlen(tok);

	for (size_t i = 0; i + tl <= vl; i++) {
		if (strncasecmp(v + i, tok, tl) == 0 &&
		    (i == 0 || v[i - 1] == ',' || v[i - 1] == ' ') &&
		    (i + tl == vl || v[i + tl] == ',' || v[i + tl] == ' ' || v[i + tl] == ';'))
			return true;
	}
	return false;
}

int khttp_parse_head(const char *p, size_t n, struct khttp_resp *r)
{
	const char *end = NULL, *line, *eol;
	size_t hl;

	for (size_t i = 0; i + 3 < n; i++) {
		if (p[i] == '\r' && p[i + 1] == '\n' && p[i + 2] == '\r' && p[i + 3] == '\n') {
			end = p + i + 4;
			break;
		}
	}
	if (!end)
		return n > KH_MAX_HEAD ? -WG_EPROTO : 0;
	hl = (size_t)(end - p);
	memset(r, 0, sizeof(*r));
	r->retry_after_s = -1;
	/* status line: HTTP/1.x SP 3DIGIT SP reason */
	if (hl < 14 || memcmp(p, "HTTP/1.", 7) != 0 || (p[7] != '0' && p[7] != '1') ||
	    p[8] != ' ' || p[9] < '1' || p[9] > '5' || p[10] < '0' || p[10] > '9' || p[11] < '0' ||
	    p[11] > '9' || (p[12] != ' ' && p[12] != '\r'))
		return -WG_EPROTO;
	r->status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
	r->close = p[7] == '0'; /* HTTP/1.0 closes unless keep-alive */
	line = (const char *)memchr(p, '\n', hl) + 1;
	if (line[-2] != '\r')
		return -WG_EPROTO;
	while (line < end - 2) {
		const char *colon, *v, *ve;
		size_t nl;

		eol = memchr(line, '\n', (size_t)(end - line));
		if (!eol || eol == line || eol[-1] != '\r')
			return -WG_EPROTO;
		colon = memchr(line, ':', (size_t)(eol - line));
		if (!colon || colon == line || line[0] == ' ' || line[0] == '\t')
			return -WG_EPROTO; /* no obs-fold, no empty names */
		nl = (size_t)(colon - line);
		for (size_t i = 0; i < nl; i++)
			if (line[i] == ' ' || line[i] == '\t')
				return -WG_EPROTO;
		v = colon + 1;
		ve = eol - 1;
		while (v < ve && (*v == ' ' || *v == '\t'))
			v++;
		while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
			ve--;
		if (hdr_is(line, nl, "content-length")) {
			uint64_t len = 0;

			if (v == ve || r->has_length)
				return -WG_EPROTO;
			for (const char *q = v; q < ve; q++) {
				if (*q < '0' || *q > '9' || len > (UINT64_MAX - 9) / 10)
					return -WG_EPROTO;
				len = len * 10 + (uint64_t)(*q - '0');
			}
			r->has_length = true;
			r->length = len;
		} else if (hdr_is(line, nl, "transfer-encoding")) {
			if (token_in(v, (size_t)(ve - v), "chunked"))
				r->chunked = true;
			else
				return -WG_EPROTO; /* an encoding we do not decode */
		} else if (hdr_is(line, nl, "connection")) {
			if (token_in(v, (size_t)(ve - v), "close"))
				r->close = true;
			else if (token_in(v, (size_t)(ve - v), "keep-alive"))
				r->close = false;
		} else if (hdr_is(line, nl, "retry-after")) {
			int s = 0;
			bool ok = v < ve;

			for (const char *q = v; q < ve; q++) {
				if (*q < '0' || *q > '9' || s > 100000) {
					ok = false;
					break;
				}
				s = s * 10 + (*q - '0');
			}
			if (ok)
				r->retry_after_s = s;
		}
		line = eol + 1;
	}
	if (r->chunked)
		r->has_length = false; /* Transfer-Encoding wins (RFC 9112 6.3) */
	return (int)hl;
}

/* ---- chunked ---- */

long kchunk_feed(struct kchunk *st, const char *p, size_t n,
		 int (*emit)(void *arg, const char *p, size_t n), void *arg)
{
	size_t i = 0;

	while (i < n && st->st != KCH_DONE) {
		switch (st->st) {
		case KCH_SIZE: {
			const char *nl = memchr(p + i, '\n', n - i);
			uint64_t v = 0;
			size_t j = i, digits = 0;

			if (!nl)
				return n - i > 1024 ? -WG_EPROTO : (long)i;
			for (; p + j < nl; j++) {
				char c = p[j];
				int d;

				if (c >= '0' && c <= '9')
					d = c - '0';
				else if (c >= 'a' && c <= 'f')
					d = c - 'a' + 10;
				else if (c >= 'A' && c <= 'F')
					d = c - 'A' + 10;
				else
					break;
				if (v >> 56)
					return -WG_EPROTO;
				v = v * 16 + (uint64_t)d;
				digits++;
			}
			if (!digits)
				return -WG_EPROTO;
			/* chunk extensions (";...") are ignored; the line must end in CRLF */
			if (p[j] != ';' && p[j] != '\r')
				return -WG_EPROTO;
			if (nl == p + i || nl[-1] != '\r')
				return -WG_EPROTO;
			i = (size_t)(nl - p) + 1;
			st->left = v;
			st->st = v ? KCH_DATA : KCH_TRAILER;
			break;
		}
		case KCH_DATA: {
			size_t take = n - i < st->left ? n - i : (size_t)st->left;

			i += take;
			st->left -= take;
			if (emit(arg, p + i - take, take)) {
				if (!st->left)
					st->st = KCH_DATA_CRLF;
				return (long)i;
			}
			if (!st->left)
				st->st = KCH_DATA_CRLF;
			break;
		}
		case KCH_DATA_CRLF:
			if (n - i < 2)
				return (long)i;
			if (p[i] != '\r' || p[i + 1] != '\n')
				return -WG_EPROTO;
			i += 2;
			st->st = KCH_SIZE;
			break;
		case KCH_TRAILER: {
			const char *nl = memchr(p + i, '\n', n - i);

			if (!nl)
				return n - i > 8192 ? -WG_EPROTO : (long)i;
			if (nl == p + i || nl[-1] != '\r')
				return -WG_EPROTO;
			if (nl == p + i + 1)
				st->st = KCH_DONE; /* the empty line */
			i = (size_t)(nl - p) + 1;
			break;
		}
		case KCH_DONE: break;
		}
	}
	return (long)i;
}

/* ---- connection ---- */

static void drive(struct khttp_conn *c);
static void conn_begin(struct khttp_conn *c);
static void res_unwait(struct khttp_conn *c);

static void set_events(struct khttp_conn *c, uint32_t ev)
{
	if (c->fd != -1 && c->io.events != ev)
		loop_io_mod(c->cl->loop, &c->io, ev);
}

static void sock_close(struct khttp_conn *c)
{
	res_unwait(c);
	if (c->tls) {
		if (c->st >= KH_READY)
			tls_close_notify(c->tls);
		tls_conn_free(c->tls);
		c->tls = NULL;
	}
	if (c->fd != -1) {
		loop_io_del(c->cl->loop, &c->io);
		close(c->fd);
		c->fd = -1;
	}
	buf_release(&c->in);
	buf_release(&c->out);
	c->st = KH_IDLE;
}

static void req_clear(struct khttp_conn *c)
{
	free(c->method);
	free(c->path);
	free(c->req_body);
	c->method = c->path = c->req_body = NULL;
	c->req_body_len = 0;
	c->active = false;
	kube_auth_cancel(&c->cl->auth, &c->waiter);
}

static void finish(struct khttp_conn *c, int err)
{
	const struct khttp_ops *ops = c->ops;
	void *arg = c->arg;
	struct khttp_resp r = c->resp;
	struct buf body = c->body;
	bool complete = err == 0;

	timer_cancel(c->cl->loop, &c->timer);
	if (err) {
		snprintf(c->cl->last_error, sizeof(c->cl->last_error), "%.8s %.40s: %.100s",
			 c->method ? c->method : "", c->name,
			 c->error[0] ? c->error : err_str(err));
		c->cl->errors++;
		c->cl->connected = false;
		c->cl->down = true;
		/* A kept-alive connection the server had closed: retry once. */
		if (c->reused && !c->got_bytes && c->active) {
			log_debug("event=kube_http_retry conn=%s reason=%s", c->name,
				  log_q(c->error));
			sock_close(c);
			c->reused = false;
			c->error[0] = 0;
			conn_begin(c);
			return;
		}
		sock_close(c);
	} else {
		c->cl->connected = true;
		if (r.close || c->st != KH_READY)
			sock_close(c);
		else
			set_events(c, LOOP_READ); /* notice when the server closes it */
		if (r.status == 401 && !c->auth_retry &&
		    kube_auth_invalidate(&c->cl->auth, c->cred_serial)) {
			log_info("event=kube_unauthorized conn=%s action=refresh_credentials",
				 c->name);
			c->auth_retry = true;
			sock_close(c);
			memset(&c->body, 0, sizeof(c->body));
			buf_release(&body);
			conn_begin(c);
			return;
		}
	}
	memset(&c->body, 0, sizeof(c->body));
	req_clear(c);
	c->gen++;
	if (ops && ops->on_done)
		ops->on_done(arg, err, complete ? &r : NULL,
			     complete && body.data ? buf_rptr(&body) : NULL,
			     complete ? buf_len(&body) : 0);
	buf_release(&body);
}

static void fail(struct khttp_conn *c, int err, const char *why)
{
	if (why)
		snprintf(c->error, sizeof(c->error), "%s", why);
	finish(c, err ? err : -WG_EPROTO);
}

static void on_timer(struct timer *t)
{
	struct khttp_conn *c = t->arg;

	if (!c->active)
		return;
	if (c->st == KH_AUTH || c->st == KH_IDLE) {
		/* a deferred failure (credentials) or a timeout waiting for them */
		fail(c, c->error[0] ? -EACCES : -ETIMEDOUT, c->error[0] ? NULL : "timed out");
		return;
	}
	fail(c, -ETIMEDOUT,
	     c->stream && c->st == KH_BODY ? "stream silent past its deadline" : "timed out");
}

static void on_io(struct loop_io *io, uint32_t events)
{
	struct khttp_conn *c = io->arg;

	(void)events;
	if (c->st == KH_READY && !c->active) {
		char b[256];
		ssize_t r = c->tls ? tls_read(c->tls, b, sizeof(b)) : 0;

		if (r == -WG_EAGAIN_READ || r == -WG_EAGAIN_WRITE)
			return;
		/* EOF, error or unexpected bytes on an idle connection: drop it */
		sock_close(c);
		return;
	}
	drive(c);
}

static int build_request(struct khttp_conn *c, const char *token)
{
	const struct kube_config *cfg = c->cl->cfg;
	struct buf *o = &c->out;
	int rc = 0;

	buf_release(o);
	rc |= buf_appendf(o, "%s %s%s HTTP/1.1\r\nHost: %s\r\nUser-Agent: %s\r\n", c->method,
			  cfg->base_path, c->path, cfg->host_header, c->cl->user_agent);
	rc |= buf_append_str(o, "Accept: application/json\r\n");
	if (token)
		rc |= buf_appendf(o, "Authorization: Bearer %s\r\n", token);
	if (c->req_body)
		rc |= buf_appendf(o, "Content-Type: application/%s\r\nContent-Length: %zu\r\n",
				  strcmp(c->method, "PATCH") ? "json" : "merge-patch+json",
				  c->req_body_len);
	rc |= buf_append_str(o, "\r\n");
	if (c->req_body)
		rc |= buf_append(o, c->req_body, c->req_body_len);
	return rc ? -ENOMEM : 0;
}

/* ---- name resolution ---- */

struct kres_job {
	atomic_int refs; /* the loop side and the thread */
	char host[256];
	char port[8];
	int fd; /* the thread's end of the socketpair */
	int rc;
	struct addrinfo *res;
};

static void job_unref(struct kres_job *j)
{
	if (atomic_fetch_sub(&j->refs, 1) != 1)
		return;
	if (j->res)
		freeaddrinfo(j->res);
	free(j);
}

static void *res_thread(void *arg)
{
	struct kres_job *j = arg;
	struct addrinfo hints = {0};

	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV | AI_ADDRCONFIG;
	j->rc = getaddrinfo(j->host, j->port, &hints, &j->res);
	send(j->fd, "x", 1, MSG_NOSIGNAL);
	close(j->fd);
	job_unref(j);
	return NULL;
}

static void res_cache(struct kube_client *cl, const struct addrinfo *res, uint64_t ttl_ms)
{
	cl->n_addrs = 0;
	for (const struct addrinfo *ai = res; ai && cl->n_addrs < KUBE_MAX_ADDRS;
	     ai = ai->ai_next) {
		if (ai->ai_addrlen > sizeof(cl->addrs[0]))
			continue;
		memcpy(&cl->addrs[cl->n_addrs], ai->ai_addr, ai->ai_addrlen);
		cl->addr_lens[cl->n_addrs++] = ai->ai_addrlen;
	}
	cl->addrs_expire_ms = ttl_ms == UINT64_MAX ? UINT64_MAX : clock_mono_ms() + ttl_ms;
}

static void res_unwait(struct khttp_conn *c)
{
	struct khttp_conn **pp;

	if (!c->res_waiting)
		return;
	for (pp = &c->cl->res_waiters; *pp; pp = &(*pp)->next_res) {
		if (*pp == c) {
			*pp = c->next_res;
			break;
		}
	}
	c->next_res = NULL;
	c->res_waiting = false;
}

static void res_cancel(struct kube_client *cl)
{
	if (!cl->res_job)
		return;
	loop_io_del(cl->loop, &cl->res_io);
	close(cl->res_fd);
	cl->res_fd = -1;
	job_unref(cl->res_job);
	cl->res_job = NULL;
}

static int sock_connect_addrs(struct khttp_conn *c);

static void on_resolved(struct loop_io *io, uint32_t events)
{
	struct kube_client *cl = io->arg;
	struct kres_job *j = cl->res_job;
	char b;

	(void)events;
	if (recv(cl->res_fd, &b, 1, MSG_DONTWAIT) == -1 && errno == EAGAIN)
		return;
	if (j->rc == 0) {
		res_cache(cl, j->res, KH_DNS_TTL_MS);
		cl->res_error[0] = 0;
	} else {
		cl->n_addrs = 0;
		snprintf(cl->res_error, sizeof(cl->res_error), "cannot resolve %.40s: %.40s",
			 j->host, gai_strerror(j->rc));
	}
	res_cancel(cl);
	/* one waiter at a time: a callback may close others or add new ones */
	while (cl->res_waiters) {
		struct khttp_conn *c = cl->res_waiters;
		int rc;

		res_unwait(c);
		if (c->st != KH_RESOLVING)
			continue;
		c->st = KH_IDLE;
		if (!cl->n_addrs) {
			fail(c, -EHOSTUNREACH, cl->res_error);
			continue;
		}
		rc = sock_connect_addrs(c);
		if (rc)
			fail(c, rc, NULL);
		if (cl->res_job)
			break; /* a new lookup started: its waiters wait for it */
	}
}

/* Connects to the cached addresses, or starts (or joins) a lookup. */
static int sock_connect(struct khttp_conn *c)
{
	struct kube_client *cl = c->cl;
	const struct kube_config *cfg = cl->cfg;
	const char *host = cfg->proxy_host ? cfg->proxy_host : cfg->host;
	uint16_t port = cfg->proxy_host ? cfg->proxy_port : cfg->port;
	struct addrinfo hints = {0}, *res = NULL;
	struct kres_job *j;
	pthread_attr_t attr;
	pthread_t th;
	char ps[8];
	int sv[2];

	if (cl->n_addrs && clock_mono_ms() < cl->addrs_expire_ms)
		return sock_connect_addrs(c);
	snprintf(ps, sizeof(ps), "%u", port);
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV | AI_NUMERICHOST;
	if (getaddrinfo(host, ps, &hints, &res) == 0) { /* an IP literal: no lookup */
		res_cache(cl, res, UINT64_MAX);
		freeaddrinfo(res);
		return sock_connect_addrs(c);
	}
	if (!cl->res_job) {
		j = calloc(1, sizeof(*j));
		if (!j)
			return -ENOMEM;
		snprintf(j->host, sizeof(j->host), "%s", host);
		memcpy(j->port, ps, sizeof(j->port));
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == -1) {
			free(j);
			return -errno;
		}
		j->fd = sv[1];
		atomic_init(&j->refs, 2);
		if (loop_io_add(cl->loop, &cl->res_io, sv[0], LOOP_READ, on_resolved, cl)) {
			close(sv[0]);
			close(sv[1]);
			free(j);
			return -ENOMEM;
		}
		cl->res_fd = sv[0];
		cl->res_job = j;
		pthread_attr_init(&attr);
		pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
		pthread_attr_setstacksize(&attr, 128 << 10);
		if (pthread_create(&th, &attr, res_thread, j) != 0) {
			pthread_attr_destroy(&attr);
			close(sv[1]);
			atomic_fetch_sub(&j->refs, 1);
			res_cancel(cl);
			snprintf(c->error, sizeof(c->error), "cannot start a resolver thread");
			return -EAGAIN;
		}
		pthread_attr_destroy(&attr);
		log_debug("event=kube_resolve host=%s", log_q(host));
	}
	c->st = KH_RESOLVING;
	c->res_waiting = true;
	c->next_res = cl->res_waiters;
	cl->res_waiters = c;
	return 0;
}

static int sock_connect_from(struct khttp_conn *c, size_t first)
{
	struct kube_client *cl = c->cl;
	const struct kube_config *cfg = cl->cfg;
	const char *host = cfg->proxy_host ? cfg->proxy_host : cfg->host;
	uint16_t port = cfg->proxy_host ? cfg->proxy_port : cfg->port;
	int fd = -1, rc = -ECONNREFUSED, one = 1;
	size_t i;

	for (i = first; i < cl->n_addrs; i++) {
		const struct sockaddr *sa = (const struct sockaddr *)&cl->addrs[i];

		fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd == -1) {
			rc = -errno;
			continue;
		}
		if (connect(fd, sa, cl->addr_lens[i]) == 0 || errno == EINPROGRESS)
			break;
		rc = -errno;
		close(fd);
		fd = -1;
	}
	if (fd == -1) {
		if (cl->addrs_expire_ms != UINT64_MAX)
			cl->n_addrs = 0; /* look the name up again next time */
		snprintf(c->error, sizeof(c->error), "connect to %.60s:%u: %.60s", host, port,
			 err_str(rc));
		return rc;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
	{
		int idle = 30, intvl = 10, cnt = 3;

		setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
		setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
		setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
	}
	rc = loop_io_add(cl->loop, &c->io, fd, LOOP_WRITE, on_io, c);
	if (rc) {
		close(fd);
		return rc;
	}
	c->fd = fd;
	c->addr_idx = i;
	c->st = KH_CONNECTING;
	return 0;
}

static int sock_connect_addrs(struct khttp_conn *c)
{
	return sock_connect_from(c, 0);
}

/* Runs once credentials are known: builds the request and sends it on the
 * open connection or opens one. */
static void conn_send(struct khttp_conn *c, const char *token)
{
	int rc = build_request(c, token);

	if (rc) {
		fail(c, rc, "out of memory");
		return;
	}
	c->got_bytes = false;
	c->head_seen = false;
	memset(&c->resp, 0, sizeof(c->resp));
	memset(&c->chunk, 0, sizeof(c->chunk));
	buf_release(&c->body);
	timer_add(c->cl->loop, &c->timer, c->timeout_ms, on_timer, c);
	if (c->st == KH_READY) {
		c->reused = true;
		c->st = KH_SEND;
		set_events(c, LOOP_WRITE);
		drive(c);
		return;
	}
	c->reused = false;
	rc = sock_connect(c);
	if (rc) {
		fail(c, rc, NULL);
		return;
	}
}

static void on_auth_ready(struct kube_auth_waiter *w)
{
	struct khttp_conn *c =
		(struct khttp_conn *)((char *)w - offsetof(struct khttp_conn, waiter));

	if (c->active && c->st == KH_AUTH) {
		c->st = c->fd != -1 ? KH_READY : KH_IDLE;
		conn_begin(c);
	}
}

static void conn_begin(struct khttp_conn *c)
{
	struct kube_client *cl = c->cl;
	const char *token = NULL;
	int rc;

	rc = kube_auth_get(&cl->auth, &c->waiter, &token);
	if (rc == -EAGAIN) {
		if (c->st == KH_READY)
			sock_close(c); /* the credential may change the client certificate */
		c->st = KH_AUTH;
		timer_add(cl->loop, &c->timer, c->timeout_ms > 65000 ? c->timeout_ms : 65000,
			  on_timer, c);
		return;
	}
	if (rc) {
		const char *why = cl->auth.exec_error[0] ? cl->auth.exec_error : err_str(rc);

		snprintf(c->error, sizeof(c->error), "credentials: %.140s", why);
		/* report on the next iteration, not from inside khttp_request */
		c->st = c->fd != -1 ? c->st : KH_IDLE;
		if (c->st == KH_READY)
			sock_close(c);
		c->st = KH_AUTH;
		timer_add(cl->loop, &c->timer, 0, on_timer, c);
		return;
	}
	if (cl->auth.exec_cert_changed) {
		struct tls_client *t =
			client_tls_build(cl->cfg, cl->auth.exec_cert_pem, cl->auth.exec_key_pem);

		if (t) {
			tls_client_unref(cl->tls);
			cl->tls = t;
		}
		cl->auth.exec_cert_changed = false;
	}
	c->cred_serial = cl->auth.serial;
	if (c->st == KH_AUTH)
		c->st = KH_IDLE;
	if (c->st != KH_READY && c->fd != -1)
		sock_close(c);
	conn_send(c, token);
}

int khttp_request(struct khttp_conn *c, const char *method, const char *path, const char *body,
		  size_t body_len, bool stream, uint32_t timeout_ms, const struct khttp_ops *ops,
		  void *arg)
{
	if (c->active)
		return -EBUSY;
	c->method = strdup(method);
	c->path = strdup(path);
	c->req_body = body ? malloc(body_len + 1) : NULL;
	if (!c->method || !c->path || (body && !c->req_body)) {
		req_clear(c);
		return -ENOMEM;
	}
	if (body) {
		memcpy(c->req_body, body, body_len);
		c->req_body[body_len] = 0;
	}
	c->req_body_len = body_len;
	c->stream = stream;
	c->timeout_ms = timeout_ms ? timeout_ms : c->cl->request_timeout_ms;
	c->ops = ops;
	c->arg = arg;
	c->active = true;
	c->auth_retry = false;
	c->reused = false; /* set again when it is sent on a kept-alive connection */
	c->error[0] = 0;
	log_debug("event=kube_http_request conn=%s method=%s path=%s", c->name, method,
		  log_q(path));
	conn_begin(c);
	return 0;
}

/* Body bytes, decoded: streamed to the caller or accumulated. */
static int body_emit(void *arg, const char *p, size_t n)
{
	struct khttp_conn *c = arg;
	uint64_t gen = c->gen;

	if (!c->active)
		return 1;
	if (!n)
		return 0;
	if (c->stream && c->resp.status / 100 == 2) {
		c->ops->on_data(c->arg, p, n);
		return c->gen != gen || !c->active; /* the request ended in the callback */
	}
	if (buf_len(&c->body) + n > KH_MAX_BODY || buf_append(&c->body, p, n)) {
		snprintf(c->error, sizeof(c->error), "response body larger than %u bytes",
			 KH_MAX_BODY);
		c->body_left = UINT64_MAX; /* mark overflow */
		return 1;
	}
	return 0;
}

/* Decodes what is in c->in. Returns 1 when the body is complete, 0 when
 * more is needed, < 0 on error, 2 when the request ended during a callback
 * (the caller must not touch the request any more). */
static int body_process(struct khttp_conn *c)
{
	uint64_t gen = c->gen;

	if (c->resp.chunked) {
		long used = kchunk_feed(&c->chunk, buf_rptr(&c->in), buf_len(&c->in), body_emit, c);

		if (c->gen != gen || !c->active)
			return 2;
		if (used < 0)
			return -WG_EPROTO;
		buf_consume(&c->in, (size_t)used);
		if (c->body_left == UINT64_MAX)
			return -WG_ELIMIT;
		return c->chunk.st == KCH_DONE;
	}
	if (c->resp.has_length) {
		size_t take =
			buf_len(&c->in) < c->body_left ? buf_len(&c->in) : (size_t)c->body_left;
		const char *p = buf_rptr(&c->in);

		c->body_left -= take;
		buf_consume(&c->in, take);
		body_emit(c, p, take);
		if (c->gen != gen || !c->active)
			return 2;
		if (c->body_left == UINT64_MAX)
			return -WG_ELIMIT;
		return c->body_left == 0;
	}
	/* close-delimited */
	{
		const char *p = buf_rptr(&c->in);
		size_t n = buf_len(&c->in);

		buf_consume(&c->in, n);
		body_emit(c, p, n);
		if (c->gen != gen || !c->active)
			return 2;
		return 0;
	}
}

/* Reads what is available into c->in. > 0 bytes, 0 EOF, -WG_EAGAIN_*, < 0. */
static ssize_t conn_read(struct khttp_conn *c)
{
	ssize_t r;

	if (buf_reserve(&c->in, KH_READ_CHUNK, KH_MAX_HEAD + KH_READ_CHUNK * 2))
		return -WG_ELIMIT;
	if (c->tls) {
		r = tls_read(c->tls, buf_wptr(&c->in), buf_room(&c->in));
	} else {
		r = read(c->fd, buf_wptr(&c->in), buf_room(&c->in));
		if (r == -1)
			r = errno == EAGAIN ? -WG_EAGAIN_READ : -errno;
	}
	if (r > 0) {
		buf_commit(&c->in, (size_t)r);
		c->got_bytes = true;
	}
	return r;
}

static void head_done(struct khttp_conn *c, int used)
{
	c->head_seen = true;
	c->cl->connected = c->resp.status != 401 && c->resp.status != 403;
	if (c->cl->down) {
		c->cl->down = false;
		if (c->cl->on_back)
			c->cl->on_back(c->cl->on_back_arg); /* only re-arms timers */
	}
	buf_consume(&c->in, (size_t)used);
	if (c->resp.status == 204 || c->resp.status == 304 || !strcmp(c->method, "HEAD") ||
	    (!c->resp.chunked && c->resp.has_length && c->resp.length == 0)) {
		c->st = KH_READY;
		return;
	}
	c->body_left = c->resp.has_length ? c->resp.length : 0;
	if (!c->resp.chunked && !c->resp.has_length)
		c->resp.close = true; /* delimited by the end of the connection */
	if (c->resp.has_length && c->resp.length > KH_MAX_BODY &&
	    !(c->stream && c->resp.status / 100 == 2)) {
		c->body_left = UINT64_MAX;
		return;
	}
	c->st = KH_BODY;
	if (c->stream && c->resp.status / 100 == 2)
		timer_add(c->cl->loop, &c->timer, c->timeout_ms, on_timer, c);
	log_debug("event=kube_http_response conn=%s status=%d", c->name, c->resp.status);
}

/* The TCP connection (direct, or through the proxy's tunnel) is up: the
 * TLS handshake comes next. False once failed. */
static bool start_tls(struct khttp_conn *c)
{
	c->tls = tls_conn_client(c->cl->tls, c->fd, c->cl->cfg->server_name);
	if (!c->tls) {
		fail(c, -ENOMEM, "out of memory");
		return false;
	}
	c->st = KH_HANDSHAKE;
	return true;
}

static void drive(struct khttp_conn *c)
{
	for (;;) {
		ssize_t r;
		int rc;

		switch (c->st) {
		case KH_IDLE:
		case KH_RESOLVING:
		case KH_READY:
		case KH_AUTH: return;
		case KH_CONNECTING: {
			int err = 0;
			socklen_t el = sizeof(err);

			if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el) == -1)
				err = errno;
			if (err == EINPROGRESS || err == EALREADY)
				return;
			if (err && c->addr_idx + 1 < c->cl->n_addrs) {
				/* the next address of the name, if any */
				loop_io_del(c->cl->loop, &c->io);
				close(c->fd);
				c->fd = -1;
				c->st = KH_IDLE;
				rc = sock_connect_from(c, c->addr_idx + 1);
				if (rc)
					fail(c, rc, NULL);
				return;
			}
			if (err) {
				char why[160];

				snprintf(why, sizeof(why), "connect: %s", strerror(err));
				fail(c, -err, why);
				return;
			}
			{
				/* still in progress? a writable socket means done */
				struct sockaddr_storage ss;
				socklen_t sl = sizeof(ss);

				if (getpeername(c->fd, (struct sockaddr *)&ss, &sl) == -1) {
					if (errno == ENOTCONN) {
						set_events(c, LOOP_WRITE);
						return;
					}
				}
			}
			if (c->cl->cfg->proxy_host) {
				const struct kube_config *cfg = c->cl->cfg;
				struct buf *o =
					&c->in; /* the request is in out; use in for CONNECT */

				buf_release(o);
				if (buf_appendf(
					    o,
					    "CONNECT %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: %s\r\n",
					    cfg->host_header, cfg->host_header,
					    c->cl->user_agent) ||
				    (cfg->proxy_auth &&
				     buf_appendf(o, "Proxy-Authorization: Basic %s\r\n",
						 cfg->proxy_auth)) ||
				    buf_append_str(o, "\r\n")) {
					fail(c, -ENOMEM, "out of memory");
					return;
				}
				c->st = KH_PROXY;
				c->body_left = 1; /* 1 = still sending the CONNECT */
				break;
			}
			if (!start_tls(c))
				return;
			break;
		}
		case KH_PROXY:
			if (c->body_left == 1) {
				while (buf_len(&c->in)) {
					r = write(c->fd, buf_rptr(&c->in), buf_len(&c->in));
					if (r == -1 && errno == EAGAIN) {
						set_events(c, LOOP_WRITE);
						return;
					}
					if (r == -1) {
						fail(c, -errno, "proxy: write failed");
						return;
					}
					buf_consume(&c->in, (size_t)r);
				}
				buf_release(&c->in);
				c->body_left = 0;
				set_events(c, LOOP_READ);
			}
			r = conn_read(c);
			if (r == -WG_EAGAIN_READ) {
				set_events(c, LOOP_READ);
				return;
			}
			if (r <= 0) {
				fail(c, r ? (int)r : -ECONNRESET, "proxy closed the connection");
				return;
			}
			{
				struct khttp_resp pr;
				int used = khttp_parse_head(buf_rptr(&c->in), buf_len(&c->in), &pr);

				if (used == 0)
					break;
				if (used < 0 || pr.status != 200) {
					char why[96];

					snprintf(why, sizeof(why),
						 "proxy refused CONNECT (status %d)",
						 used < 0 ? 0 : pr.status);
					fail(c, -ECONNREFUSED, why);
					return;
				}
				buf_release(&c->in);
				c->got_bytes = false;
			}
			if (!start_tls(c))
				return;
			break;
		case KH_HANDSHAKE:
			rc = tls_handshake(c->tls);
			if (rc == -WG_EAGAIN_READ || rc == -WG_EAGAIN_WRITE) {
				set_events(c, rc == -WG_EAGAIN_READ ? LOOP_READ : LOOP_WRITE);
				return;
			}
			if (rc) {
				char why[160];

				snprintf(why, sizeof(why), "tls: %s",
					 tls_conn_error(c->tls) ? tls_conn_error(c->tls)
								: "handshake failed");
				fail(c, -WG_ETLS, why);
				return;
			}
			c->st = KH_SEND;
			break;
		case KH_SEND:
			while (buf_len(&c->out)) {
				r = tls_write(c->tls, buf_rptr(&c->out), buf_len(&c->out));
				if (r == -WG_EAGAIN_READ || r == -WG_EAGAIN_WRITE) {
					set_events(c,
						   r == -WG_EAGAIN_READ ? LOOP_READ : LOOP_WRITE);
					return;
				}
				if (r <= 0) {
					fail(c, r ? (int)r : -ECONNRESET, "write failed");
					return;
				}
				buf_consume(&c->out, (size_t)r);
			}
			buf_release(&c->out);
			c->st = KH_HEAD;
			set_events(c, LOOP_READ);
			break;
		case KH_HEAD:
			if (buf_len(&c->in)) {
				int used = khttp_parse_head(buf_rptr(&c->in), buf_len(&c->in),
							    &c->resp);

				if (used < 0) {
					fail(c, used, "invalid response head");
					return;
				}
				if (used > 0) {
					if (c->resp.status < 200) { /* 1xx: skip */
						buf_consume(&c->in, (size_t)used);
						break;
					}
					head_done(c, used);
					if (c->body_left == UINT64_MAX) {
						fail(c, -WG_ELIMIT, "response body too large");
						return;
					}
					if (c->st == KH_READY) {
						finish(c, 0);
						return;
					}
					break;
				}
			}
			r = conn_read(c);
			if (r == -WG_EAGAIN_READ || r == -WG_EAGAIN_WRITE) {
				set_events(c, r == -WG_EAGAIN_READ ? LOOP_READ : LOOP_WRITE);
				return;
			}
			if (r <= 0) {
				fail(c, r ? (int)r : -ECONNRESET,
				     r ? "read failed" : "connection closed before the response");
				return;
			}
			break;
		case KH_BODY:
			if (buf_len(&c->in)) {
				rc = body_process(c);
				if (rc == 2)
					return;
				if (rc < 0) {
					fail(c, rc,
					     rc == -WG_ELIMIT ? NULL : "invalid chunked body");
					return;
				}
				if (rc == 1) {
					c->st = KH_READY;
					finish(c, 0);
					return;
				}
			}
			if (c->tls && tls_pending(c->tls) == 0 && buf_len(&c->in) == 0)
				buf_compact(&c->in);
			r = conn_read(c);
			if (r == -WG_EAGAIN_READ || r == -WG_EAGAIN_WRITE) {
				set_events(c, r == -WG_EAGAIN_READ ? LOOP_READ : LOOP_WRITE);
				return;
			}
			if (r == 0 && !c->resp.chunked && !c->resp.has_length) {
				c->resp.close = true;
				c->st = KH_READY;
				finish(c, 0);
				return;
			}
			if (r <= 0) {
				fail(c, r ? (int)r : -ECONNRESET,
				     r ? "read failed" : "connection closed in the body");
				return;
			}
			if (c->stream)
				timer_add(c->cl->loop, &c->timer, c->timeout_ms, on_timer, c);
			break;
		}
	}
}

void khttp_init(struct khttp_conn *c, struct kube_client *cl, const char *name)
{
	memset(c, 0, sizeof(*c));
	c->cl = cl;
	c->name = name;
	c->fd = -1;
	c->waiter.on_ready = on_auth_ready;
}

void khttp_close(struct khttp_conn *c)
{
	if (!c->cl)
		return;
	timer_cancel(c->cl->loop, &c->timer);
	if (c->active) {
		req_clear(c);
		c->gen++;
	}
	sock_close(c);
	buf_release(&c->body);
}

void khttp_fini(struct khttp_conn *c)
{
	khttp_close(c);
}
