/* SPDX-License-Identifier: MIT */
/*
 * End-to-end tests of the data plane in one process: a snapshot built by
 * hand is published to a one-worker proxy listening on 127.0.0.1, in front
 * of small backends running in threads of this test. Covered: routing and
 * 404, forwarded and hop-by-hop headers, redirects, rewrites, header
 * modifiers, keep-alive and pipelining, bodies in both framings, Expect,
 * smuggling refusals (nothing reaches the backend), 500/503/504, retries,
 * a snapshot swap on a kept-alive connection, HEAD, and the counters.
 * Every socket read is bounded by a timeout.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "../check.h"
#include "core/arena.h"
#include "core/diag.h"
#include "core/err.h"
#include "core/log.h"
#include "http/h1.h"
#include "proxy/proxy.h"
#include "proxy/snapshot.h"
#include "tls/tls.h"

/* ---- backends ---- */

struct backend {
	const char *name;
	int lfd;
	uint16_t port;
	int requests; /* atomic */
	pthread_t thr;
};

struct bconn {
	struct backend *b;
	int fd;
};

static void set_timeout(int fd, int ms)
{
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

static void write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w <= 0)
			return;
		p += w;
		n -= (size_t)w;
	}
}

/* Serves requests on one connection: the answer's body echoes the head. */
static void *bconn_main(void *arg)
{
	struct bconn *bc = arg;
	static __thread char in[65536];
	size_t len = 0;
	struct h1_header hdrs[64];

	set_timeout(bc->fd, 5000);
	for (;;) {
		struct h1_msg m = {.headers = hdrs, .max_headers = 64};
		ssize_t n = h1_parse_request(in, len, 0, &m, NULL);
		if (n == 0) {
			ssize_t r = read(bc->fd, in + len, sizeof(in) - len);
			if (r <= 0)
				break;
			len += (size_t)r;
			continue;
		}
		if (n < 0)
			break;
		__atomic_add_fetch(&bc->b->requests, 1, __ATOMIC_SEQ_CST);
		char head[8192];
		size_t hl = (size_t)n < sizeof(head) - 1 ? (size_t)n : sizeof(head) - 1;
		memcpy(head, in, hl);
		head[hl] = '\0';
		memmove(in, in + n, len - (size_t)n);
		len -= (size_t)n;
		/* the body: count it */
		uint64_t body = 0;
		if (m.body == H1_BODY_LENGTH) {
			uint64_t need = m.content_length;
			while (need) {
				if (!len) {
					ssize_t r = read(bc->fd, in, sizeof(in));
					if (r <= 0)
						goto out;
					len = (size_t)r;
				}
				size_t k = len < need ? len : (size_t)need;
				memmove(in, in + k, len - k);
				len -= k;
				need -= k;
				body += k;
			}
		} else if (m.body == H1_BODY_CHUNKED) {
			struct h1_chunked ch = {0};
			while (!h1_chunked_is_done(&ch)) {
				struct str d = {NULL, 0};
				ssize_t k = len ? h1_chunked_decode(&ch, in, len, &d) : 0;
				if (k < 0)
					goto out;
				body += d.len;
				memmove(in, in + k, len - (size_t)k);
				len -= (size_t)k;
				if (k == 0 && !d.len && !h1_chunked_is_done(&ch)) {
					ssize_t r = read(bc->fd, in + len, sizeof(in) - len);
					if (r <= 0)
						goto out;
					len += (size_t)r;
				}
			}
		}
		if (strstr(head, "\r\nUpgrade: websocket\r\n") &&
		    strstr(head, "Connection: upgrade")) {
			const char *sw =
				"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
				"Connection: Upgrade\r\n\r\n";
			write_all(bc->fd, sw, strlen(sw));
			if (len)
				write_all(bc->fd, in, len);
			for (;;) { /* echo bytes until the peer closes */
				ssize_t r = read(bc->fd, in, sizeof(in));
				if (r <= 0)
					goto out;
				write_all(bc->fd, in, (size_t)r);
			}
		}
		int status = 200;
		const char *st = strstr(head, "/status/");
		if (st && st < strstr(head, " HTTP/"))
			status = atoi(st + 8);
		if (strstr(head, "/slow") && strstr(head, "/slow") < strstr(head, " HTTP/"))
			usleep(1500 * 1000);
		char resp[10000];
		if (strstr(head, "/chunked") && strstr(head, "/chunked") < strstr(head, " HTTP/")) {
			int k = snprintf(resp, sizeof(resp),
					 "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
					 "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n");
			write_all(bc->fd, resp, (size_t)k);
			continue;
		}
		if (strstr(head, "/eof") && strstr(head, "/eof") < strstr(head, " HTTP/")) {
			int k = snprintf(resp, sizeof(resp),
					 "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil-eof");
			write_all(bc->fd, resp, (size_t)k);
			break;
		}
		char bodytxt[8400];
		int bl = snprintf(bodytxt, sizeof(bodytxt), "name=%s\nbody=%llu\n%s", bc->b->name,
				  (unsigned long long)body, head);
		int k = snprintf(
			resp, sizeof(resp),
			"HTTP/1.1 %d X\r\nContent-Length: %d\r\nConnection: keep-alive, "
			"X-Hop\r\nX-Hop: secret\r\nKeep-Alive: timeout=5\r\nX-Backend: %s\r\n\r\n",
			status, bl, bc->b->name);
		if (!strstr(head, "HEAD ") && (size_t)k + (size_t)bl < sizeof(resp)) {
			memcpy(resp + k, bodytxt, (size_t)bl);
			k += bl;
		}
		write_all(bc->fd, resp, (size_t)k);
	}
out:
	close(bc->fd);
	free(bc);
	return NULL;
}

static void *backend_main(void *arg)
{
	struct backend *b = arg;
	for (;;) {
		int fd = accept(b->lfd, NULL, NULL);
		if (fd < 0)
			return NULL;
		struct bconn *bc = malloc(sizeof(*bc));
		bc->b = b;
		bc->fd = fd;
		pthread_t t;
		pthread_create(&t, NULL, bconn_main, bc);
		pthread_detach(t);
	}
}

static int listen_any(uint16_t *port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t sl = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	listen(fd, 64);
	getsockname(fd, (struct sockaddr *)&sa, &sl);
	*port = ntohs(sa.sin_port);
	return fd;
}

static void backend_start(struct backend *b, const char *name)
{
	b->name = name;
	b->lfd = listen_any(&b->port);
	pthread_create(&b->thr, NULL, backend_main, b);
}

static void backend_stop(struct backend *b)
{
	shutdown(b->lfd, SHUT_RDWR);
	close(b->lfd);
	pthread_join(b->thr, NULL);
}

/* A port that nothing listens on. */
static uint16_t dead_port(void)
{
	uint16_t p;
	int fd = listen_any(&p);
	close(fd);
	return p;
}

/* ---- snapshot construction ---- */

static struct snap_backend *mk_backend(struct arena *a, const char *name, uint16_t port,
				       uint32_t weight)
{
	struct snap_backend *b = arena_zalloc(a, sizeof(*b));
	b->name = arena_strdup(a, name);
	b->weight = weight;
	if (port) {
		b->endpoints = arena_zalloc(a, sizeof(*b->endpoints));
		strcpy(b->endpoints[0].addr, "127.0.0.1");
		b->endpoints[0].port = port;
		b->n_endpoints = 1;
	}
	return b;
}

static struct snap_http_rule *add_rule(struct snap_listener *l, struct arena *a, const char *route,
				       enum snap_path_match pt, const char *path,
				       struct snap_backend *b)
{
	struct snap_http_rule *r = &l->http_rules[l->n_http_rules++];
	r->route = arena_strdup(a, route);
	r->match.path_type = pt;
	r->match.path = arena_strdup(a, path);
	if (b) {
		r->backends = b;
		r->n_backends = 1;
	}
	return r;
}

static struct snap_filter *add_filter(struct snap_http_rule *r, struct arena *a,
				      enum snap_filter_type t)
{
	struct snap_filter *f = arena_zalloc(a, (r->n_filters + 1) * sizeof(*f));
	if (r->n_filters)
		memcpy(f, r->filters, r->n_filters * sizeof(*f));
	r->filters = f;
	f[r->n_filters].type = t;
	return &f[r->n_filters++];
}

static struct snapshot *mk_snapshot(uint16_t port, struct backend *b1, struct backend *b2,
				    bool swapped)
{
	struct arena *a = arena_new(0);
	struct snapshot *s = arena_zalloc(a, sizeof(*s));
	s->arena = a;
	s->refs = 1;
	s->n_listeners = 1;
	s->listeners = arena_zalloc(a, sizeof(*s->listeners));
	struct snap_listener *l = &s->listeners[0];
	l->gateway = "test/gw";
	l->name = "http";
	l->http_rules = arena_zalloc(a, 16 * sizeof(struct snap_http_rule));
	struct snap_http_rule *r;
	struct snap_filter *f;

	r = add_rule(l, a, "t/redirect", SNAP_PM_EXACT, "/redirect", NULL);
	f = add_filter(r, a, SNAP_F_REDIRECT);
	f->u.redirect.scheme = "https";
	f->u.redirect.status = 301;

	r = add_rule(l, a, "t/rewrite", SNAP_PM_PREFIX, "/rewrite/",
		     mk_backend(a, "b1", b1->port, 1));
	f = add_filter(r, a, SNAP_F_REWRITE);
	f->u.rewrite.path_type = SNAP_PATH_PREFIX;
	f->u.rewrite.path = "/new";
	f->u.rewrite.hostname = "rewritten.example";
	f = add_filter(r, a, SNAP_F_REQ_HEADER);
	f->u.header.set = arena_zalloc(a, sizeof(struct snap_header));
	f->u.header.set[0] = (struct snap_header){"X-Set", "yes"};
	f->u.header.n_set = 1;
	f->u.header.remove = arena_zalloc(a, sizeof(char *));
	f->u.header.remove[0] = "x-drop";
	f->u.header.n_remove = 1;
	f = add_filter(r, a, SNAP_F_RESP_HEADER);
	f->u.header.add = arena_zalloc(a, sizeof(struct snap_header));
	f->u.header.add[0] = (struct snap_header){"X-Resp", "r"};
	f->u.header.n_add = 1;

	r = add_rule(l, a, "t/retry", SNAP_PM_PREFIX, "/retry", mk_backend(a, "b1", b1->port, 1));
	r->retry.codes = arena_zalloc(a, sizeof(int));
	r->retry.codes[0] = 500;
	r->retry.n_codes = 1;
	r->retry.attempts = 2;
	r->retry.backoff_ms = 10;

	add_rule(l, a, "t/none", SNAP_PM_PREFIX, "/none", mk_backend(a, "empty", 0, 1));
	struct snap_backend *inv = mk_backend(a, "invalid", b1->port, 1);
	inv->invalid_status = 500;
	add_rule(l, a, "t/invalid", SNAP_PM_PREFIX, "/invalid", inv);
	add_rule(l, a, "t/dead", SNAP_PM_PREFIX, "/dead", mk_backend(a, "dead", dead_port(), 1));
	/* two endpoints, the first refuses connections */
	struct snap_backend *half = mk_backend(a, "half", 0, 1);
	half->endpoints = arena_zalloc(a, 2 * sizeof(*half->endpoints));
	strcpy(half->endpoints[0].addr, "127.0.0.1");
	half->endpoints[0].port = dead_port();
	strcpy(half->endpoints[1].addr, "127.0.0.1");
	half->endpoints[1].port = b1->port;
	half->n_endpoints = 2;
	add_rule(l, a, "t/half", SNAP_PM_PREFIX, "/half", half);
	r = add_rule(l, a, "t/slow", SNAP_PM_PREFIX, "/slow", mk_backend(a, "b1", b1->port, 1));
	r->request_timeout_ms = 300;
	r = add_rule(l, a, "t/mirror", SNAP_PM_PREFIX, "/mirror", mk_backend(a, "b1", b1->port, 1));
	f = add_filter(r, a, SNAP_F_MIRROR);
	f->u.mirror.backend = mk_backend(a, "b2", b2->port, 1);
	f->u.mirror.numerator = 100;
	f->u.mirror.denominator = 100;
	r = add_rule(l, a, "t/cors", SNAP_PM_PREFIX, "/cors", mk_backend(a, "b1", b1->port, 1));
	f = add_filter(r, a, SNAP_F_CORS);
	f->u.cors.allow_origins = arena_zalloc(a, sizeof(char *));
	f->u.cors.allow_origins[0] = "https://*.example.com";
	f->u.cors.n_allow_origins = 1;
	f->u.cors.allow_methods = arena_zalloc(a, sizeof(char *));
	f->u.cors.allow_methods[0] = "PUT";
	f->u.cors.n_allow_methods = 1;
	f->u.cors.expose_headers = arena_zalloc(a, sizeof(char *));
	f->u.cors.expose_headers[0] = "X-Backend";
	f->u.cors.n_expose_headers = 1;
	r = add_rule(l, a, "t/host", SNAP_PM_PREFIX, "/", mk_backend(a, "b2", b2->port, 1));
	r->hostnames = arena_zalloc(a, sizeof(char *));
	r->hostnames[0] = "only.b2.example";
	r->n_hostnames = 1;
	add_rule(l, a, "t/main", SNAP_PM_PREFIX, "/app",
		 mk_backend(a, swapped ? "b2" : "b1", swapped ? b2->port : b1->port, 1));

	s->n_sockets = 1;
	s->sockets = arena_zalloc(a, sizeof(*s->sockets));
	strcpy(s->sockets[0].addr, "127.0.0.1");
	s->sockets[0].port = port;
	s->sockets[0].n_listeners = 1;
	s->sockets[0].listeners = arena_zalloc(a, sizeof(struct snap_listener *));
	s->sockets[0].listeners[0] = l;
	return s;
}

/* ---- client ---- */

static int client_connect(uint16_t port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET,
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
				 .sin_port = htons(port)};
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	set_timeout(fd, 4000);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Sends raw and reads until the peer closes (or the timeout). */
static size_t exchange(uint16_t port, const char *raw, char *out, size_t cap)
{
	int fd = client_connect(port);
	size_t n = 0;
	if (fd < 0)
		return 0;
	write_all(fd, raw, strlen(raw));
	for (;;) {
		ssize_t r = read(fd, out + n, cap - 1 - n);
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	out[n] = '\0';
	close(fd);
	return n;
}

/* Reads one response with a Content-Length body from fd into b. */
static void read_response(int fd, char *b, size_t cap)
{
	size_t n = 0;
	b[0] = '\0';
	for (;;) {
		ssize_t r = read(fd, b + n, cap - 1 - n);
		if (r <= 0)
			return;
		n += (size_t)r;
		b[n] = '\0';
		const char *e = strstr(b, "\r\n\r\n"), *cl = strstr(b, "Content-Length: ");
		if (e && cl && n >= (size_t)(e + 4 - b) + (size_t)atoi(cl + 16))
			return;
	}
}

static int status_of(const char *resp)
{
	return strncmp(resp, "HTTP/1.1 ", 9) == 0 ? atoi(resp + 9) : -1;
}

static int count(const char *hay, const char *needle)
{
	int n = 0;
	for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle))
		n++;
	return n;
}

/* ---- the tests (one proxy for all; each test is a group of checks) ---- */

static struct proxy *px;
static struct backend b1, b2;
static uint16_t px_port;
static char resp[200000];

static void setup(void)
{
	if (px)
		return;
	signal(SIGPIPE, SIG_IGN); /* this test's own clients and backends */
	/* PX_DEBUG=1 / PX_LOG=1: debug lines / access log on stderr */
	if (getenv("PX_DEBUG"))
		log_set_level(LOG_DEBUG);
	backend_start(&b1, "b1");
	backend_start(&b2, "b2");
	px_port = dead_port();
	struct proxy_config cfg = {.workers = 1, .access_log_fd = getenv("PX_LOG") ? 2 : -1};
	px = proxy_new(&cfg);
	proxy_start(px);
	struct diag d = {0};
	CHECK_EQ_INT(proxy_publish(px, mk_snapshot(px_port, &b1, &b2, false), &d), 0);
	CHECK_EQ_INT(d.errors, 0);
	diag_fini(&d);
	/* the worker opens the socket on its own thread */
	for (int i = 0; i < 200; i++) {
		int fd = client_connect(px_port);
		if (fd >= 0) {
			close(fd);
			break;
		}
		usleep(10000);
	}
}

TEST(proxy_routes_and_forwards_headers)
{
	setup();
	exchange(px_port,
		 "GET /app/x?q=1 HTTP/1.1\r\nHost: any.example\r\nConnection: close, X-Private\r\n"
		 "X-Private: p\r\nKeep-Alive: 5\r\nTE: trailers\r\nX-Forwarded-For: 10.0.0.1\r\n"
		 "X-Keep: k\r\n\r\n",
		 resp, sizeof(resp));
	CHECK_EQ_INT(status_of(resp), 200);
	CHECK(strstr(resp, "name=b1") != NULL);
	CHECK(strstr(resp, "GET /app/x?q=1 HTTP/1.1\r\n") != NULL);
	CHECK(strstr(resp, "Host: any.example\r\n") != NULL);
	CHECK(strstr(resp, "X-Keep: k\r\n") != NULL);
	CHECK(strstr(resp, "X-Forwarded-For: 10.0.0.1, 127.0.0.1\r\n") != NULL);
	CHECK(strstr(resp, "X-Forwarded-Proto: http\r\n") != NULL);
	CHECK(strstr(resp, "X-Forwarded-Host: any.example\r\n") != NULL);
	/* hop-by-hop fields and those named by Connection do not travel */
	CHECK(strstr(resp, "X-Private") == NULL);
	CHECK(strstr(resp, "Keep-Alive: 5") == NULL);
	CHECK(strstr(resp, "TE: trailers") == NULL);
	/* nor back: the backend's Connection-listed X-Hop and Keep-Alive */
	CHECK(strstr(resp, "X-Hop: secret") == NULL);
	CHECK(strstr(resp, "Keep-Alive: timeout") == NULL);
	CHECK(strstr(resp, "X-Backend: b1\r\n") != NULL);
	CHECK(strstr(resp, "Connection: close\r\n") != NULL);

	exchange(px_port, "GET /nothing HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", resp,
		 sizeof(resp));
	CHECK_EQ_INT(status_of(resp), 404);
	exchange(px_port,
		 "GET /z HTTP/1.1\r\nHost: only.b2.example:80\r\nConnection: close\r\n\r\n", resp,
		 sizeof(resp));
	CHECK(strstr(resp, "name=b2") != NULL);
}

TEST(proxy_filters_redirect_rewrite_modifiers)
{
	setup();
	exchange(px_port,
		 "GET /redirect?a=b HTTP/1.1\r\nHost: h.example:8080\r\nConnection: close\r\n\r\n",
		 resp, sizeof(resp));
	CHECK_EQ_INT(status_of(resp), 301);
	CHECK(strstr(resp, "Location: https://h.example/redirect?a=b\r\n") != NULL);

	exchange(px_port,
		 "GET /rewrite/deep/x?k=v HTTP/1.1\r\nHost: h.example\r\nX-Drop: d\r\nX-Set: "
		 "client\r\n"
		 "Connection: close\r\n\r\n",
		 resp, sizeof(resp));
	CHECK_EQ_INT(status_of(resp), 200);
	CHECK(strstr(resp, "GET /new/deep/x?k=v HTTP/1.1\r\n") != NULL);
	CHECK(strstr(resp, "Host: rewritten.example\r\n") != NULL);
	CHECK(strstr(resp, "X-Set: yes\r\n") != NULL);
	CHECK(strstr(resp, "X-Set: client") == NULL);
	CHECK(strstr(resp, "X-Drop") == NULL);
	CHECK(strstr(resp, "X-Resp: r\r\n") != NULL);
}

TEST(proxy_mirror_and_cors)
{
	setup();
	int before = __atomic_load_n(&b2.requests, __ATOMIC_SEQ_CST);
	exchange(px_port, "GET /mirror/m HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", resp,
		 sizeof(resp));
	CHECK(strstr(resp, "name=b1") != NULL);
	/* the copy reaches b2 on its own connection, whose answer is dropped */
	int got = 0;
	for (int i = 0; i < 200 && !got; i++) {
		got = __atomic_load_n(&b2.requests, __ATOMIC_SEQ_CST) - before;
		usleep(5000);
	}
	CHECK_EQ_INT(got, 1);

	exchange(px_port,
		 "OPTIONS /cors HTTP/1.1\r\nHost: a\r\nOrigin: https://app.example.com\r\n"
		 "Access-Control-Request-Method: PUT\r\nConnection: close\r\n\r\n",
		 resp, sizeof(resp));
	CHECK_EQ_INT(status_of(resp), 200);
	CHECK(strstr(resp, "Access-Control-Allow-Origin: https://app.example.com\r\n") != NULL);
	CHECK(strstr(resp, "Access-Control-Allow-Methods: PUT\r\n") != NULL);
	CHECK(strstr(resp, "name=") == NULL); /* answered here */
	exchange(px_port,
		 "GET /cors HTTP/1.1\r\nHost: a\r\nOrigin: https://app.example.com\r\n"
		 "Connection: close\r\n\r\n",
		 resp, sizeof(resp));
	CHECK(strstr(resp, "name=b1") != NULL);
	CHECK(strstr(resp, "Access-Control-Expose-Headers: X-Backend\r\n") != NULL);
	exchange(px_port,
		 "GET /cors HTTP/1.1\r\nHost: a\r\nOrigin: https://evil.test\r\nConnection: "
		 "close\r\n\r\n",
		 resp, sizeof(resp));
	CHECK(strstr(resp, "Access-Control-Allow-Origin") == NULL);
}

TEST(proxy_upgrade_becomes_a_tunnel)
{
	setup();
	int fd = client_connect(px_port);
	const char *rq = "GET /app/ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\n"
			 "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\r\nearly";
	write_all(fd, rq, strlen(rq));
	char b[4096];
	size_t n = 0;
	while (n < sizeof(b) - 1) {
		ssize_t r = read(fd, b + n, sizeof(b) - 1 - n);
		if (r <= 0)
			break;
		n += (size_t)r;
		b[n] = '\0';
		if (strstr(b, "early"))
			break;
	}
	b[n] = '\0';
	CHECK_EQ_INT(status_of(b), 101);
	CHECK(strstr(b, "Upgrade: websocket\r\n") != NULL);
	CHECK(strstr(b, "Connection: upgrade\r\n") != NULL);
	CHECK(strstr(b, "\r\n\r\nearly") != NULL);
	/* both ways, several times, on the same connection */
	for (int i = 0; i < 3; i++) {
		char msg[32];
		int k = snprintf(msg, sizeof(msg), "frame-%d", i);
		write_all(fd, msg, (size_t)k);
		ssize_t r = read(fd, b, sizeof(b) - 1);
		b[r > 0 ? r : 0] = '\0';
		CHECK_EQ_STR(b, msg);
	}
	close(fd);
	/* a request without the Connection token is not upgraded */
	exchange(px_port,
		 "GET /app/ws2 HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n"
		 "Connection: close\r\n\r\n",
		 resp, sizeof(resp));
	CHECK_EQ_INT(status_of(resp), 200);
	CHECK(strstr(resp, "Upgrade: websocket") == NULL);
}

TEST(proxy_limits_and_head_timeout)
{
	setup();
	/* a second proxy with tight limits on its own port */
	uint16_t port = dead_port();
	struct proxy_config cfg = {.workers = 1,
				   .access_log_fd = -1,
				   .limits = {.head_timeout_ms = 200,
					      .max_header_fields = 5,
					      .max_request_line = 100,
					      .body_idle_timeout_ms = 800}};
	struct proxy *p2 = proxy_new(&cfg);
	proxy_start(p2);
	struct diag d = {0};
	proxy_publish(p2, mk_snapshot(port, &b1, &b2, false), &d);
	diag_fini(&d);
	for (int i = 0; i < 200; i++) {
		int fd = client_connect(port);
		if (fd >= 0) {
			close(fd);
			break;
		}
		usleep(10000);
	}
	/* a slow head: 408 after the head timeout, even while bytes trickle */
	int fd = client_connect(port);
	write_all(fd, "GET /app HTTP/1.1\r\n", 19);
	usleep(100000);
	write_all(fd, "X: 1\r\n", 6);
	char b[4096];
	ssize_t n = read(fd, b, sizeof(b) - 1);
	b[n > 0 ? n : 0] = '\0';
	CHECK_EQ_INT(status_of(b), 408);
	close(fd);
	exchange(port,
		 "GET /app HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\nE: 5\r\n\r\n",
		 resp, sizeof(resp));
	CHECK_EQ_INT(status_of(resp), 431);
	char line[300];
	snprintf(line, sizeof(line), "GET /app/%0150d HTTP/1.1\r\nHost: a\r\n\r\n", 0);
	exchange(port, line, resp, sizeof(resp));
	CHECK_EQ_INT(status_of(resp), 414);
	/* a body that stalls: 408 after the body idle timeout, connection closed */
	fd = client_connect(port);
	const char *part = "PUT /app/slowbody HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc";
	write_all(fd, part, strlen(part));
	n = read(fd, b, sizeof(b) - 1);
	b[n > 0 ? n : 0] = '\0';
	CHECK_EQ_INT(status_of(b), 408);
	close(fd);
	/* a body that keeps coming, slower than the idle timeout in total */
	fd = client_connect(port);
	const char *h2 = "PUT /app/steady HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n"
			 "Connection: close\r\n\r\n";
	write_all(fd, h2, strlen(h2));
	for (int i = 0; i < 4; i++) {
		usleep(250000); /* 1 s in all, each gap well inside the 800 ms */
		write_all(fd, "x", 1);
	}
	read_response(fd, b, sizeof(b));
	CHECK_EQ_INT(status_of(b), 200);
	CHECK(strstr(b, "body=4\n") != NULL);
	close(fd);
	proxy_drain(p2, 100);
	proxy_free(p2);
}

TEST(proxy_keepalive_and_pipelining)
{
	setup();
	int before = __atomic_load_n(&b1.requests, __ATOMIC_SEQ_CST);
	exchange(px_port,
		 "GET /app/1 HTTP/1.1\r\nHost: a\r\n\r\n"
		 "GET /app/2 HTTP/1.1\r\nHost: a\r\n\r\n"
		 "\r\nGET /app/3 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
		 resp, sizeof(resp));
	CHECK_EQ_INT(count(resp, "HTTP/1.1 200"), 3);
	const char *p1 = strstr(resp, "GET /app/1 "), *p2 = strstr(resp, "GET /app/2 "),
		   *p3 = strstr(resp, "GET /app/3 ");
	CHECK(p1 && p2 && p3 && p1 < p2 && p2 < p3);
	CHECK_EQ_INT(__atomic_load_n(&b1.requests, __ATOMIC_SEQ_CST) - before, 3);

	/* HTTP/1.0 without keep-alive: closed after one answer */
	exchange(px_port, "GET /app/10 HTTP/1.0\r\n\r\n", resp, sizeof(resp));
	CHECK_EQ_INT(status_of(resp), 200);
	CHECK(strstr(resp, "Connection: close") != NULL);
}

TEST(proxy_bodies_both_framings)
{
	setup();
	exchange(px_port,
		 "POST /app/cl HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\nhello world"
		 "POST /app/ch HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nConnection: "
		 "close\r\n"
		 "\r\n3;ext=1\r\nabc\r\n4\r\ndefg\r\n0\r\nTrailer: x\r\n\r\n",
		 resp, sizeof(resp));
	CHECK_EQ_INT(count(resp, "HTTP/1.1 200"), 2);
	CHECK(strstr(resp, "body=11\n") != NULL);
	CHECK(strstr(resp, "body=7\n") != NULL);
	CHECK(strstr(resp, "Content-Length: 11\r\n") != NULL);
	CHECK(strstr(resp, "Transfer-Encoding: chunked\r\n") != NULL);

	/* chunked and close-delimited responses reach a 1.1 client chunked */
	exchange(px_port, "GET /app/chunked HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", resp,
		 sizeof(resp));
	CHECK(strstr(resp, "Transfer-Encoding: chunked\r\n") != NULL);
	CHECK(strstr(resp, "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n") != NULL);
	exchange(px_port, "GET /app/eof HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", resp,
		 sizeof(resp));
	CHECK(strstr(resp, "9\r\nuntil-eof\r\n0\r\n\r\n") != NULL);
	/* and a 1.0 client gets the bytes until close */
	exchange(px_port, "GET /app/eof HTTP/1.0\r\n\r\n", resp, sizeof(resp));
	CHECK(strstr(resp, "\r\n\r\nuntil-eof") != NULL);

	/* a large body streams through */
	size_t big = 300000;
	char *req = malloc(big + 200);
	int h = snprintf(req, 200,
			 "PUT /app/big HTTP/1.1\r\nHost: a\r\nContent-Length: %zu\r\n"
			 "Connection: close\r\n\r\n",
			 big);
	memset(req + h, 'x', big);
	req[h + big] = '\0';
	exchange(px_port, req, resp, sizeof(resp));
	free(req);
	CHECK(strstr(resp, "body=300000\n") != NULL);
	if (!strstr(resp, "body=300000\n"))
		fprintf(stderr, "  big body answer: %.300s\n", resp);
}

TEST(proxy_expect_continue)
{
	setup();
	int fd = client_connect(px_port);
	const char *h = "PUT /app/e HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n"
			"Content-Length: 4\r\nConnection: close\r\n\r\n";
	write_all(fd, h, strlen(h));
	char b[256];
	ssize_t n = read(fd, b, sizeof(b) - 1);
	CHECK(n > 0);
	b[n > 0 ? n : 0] = '\0';
	CHECK(strncmp(b, "HTTP/1.1 100 Continue\r\n\r\n", 25) == 0);
	write_all(fd, "data", 4);
	size_t got = 0;
	for (;;) {
		ssize_t r = read(fd, resp + got, sizeof(resp) - 1 - got);
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	resp[got] = '\0';
	close(fd);
	CHECK(strstr(resp, "body=4\n") != NULL);
	CHECK(strstr(resp, "Expect") == NULL);
}

TEST(proxy_refuses_smuggling_before_the_backend)
{
	static const char *bad[] = {
		"POST /app/s HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: "
		"chunked\r\n\r\n"
		"0\r\n\r\nGET /app/smuggled HTTP/1.1\r\nHost: a\r\n\r\n",
		"POST /app/s HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nContent-Length: "
		"5\r\n\r\nabcde",
		"POST /app/s HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, "
		"identity\r\n\r\n0\r\n\r\n",
		"POST /app/s HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n",
		"POST /app/s HTTP/1.1\r\nHost: a\r\nX: a\r\n Transfer-Encoding: "
		"chunked\r\n\r\n0\r\n\r\n",
		"GET /app/s HTTP/1.1\nHost: a\n\n",
	};
	setup();
	int before = __atomic_load_n(&b1.requests, __ATOMIC_SEQ_CST);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		exchange(px_port, bad[i], resp, sizeof(resp));
		int st = status_of(resp);
		if (st != 400 && st != 501)
			fprintf(stderr, "  smuggling case %zu answered %d\n", i, st);
		CHECK(st == 400 || st == 501);
		CHECK(strstr(resp, "Connection: close") != NULL);
		CHECK_EQ_INT(count(resp, "HTTP/1.1 "), 1);
	}
	/* an invalid chunk size after a valid head: 400, the rest never parsed */
	exchange(px_port,
		 "POST /app/s HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"
		 "GET /app/smuggled HTTP/1.1\r\nHost: a\r\n\r\n",
		 resp, sizeof(resp));
	CHECK_EQ_INT(status_of(resp), 400);
	CHECK_EQ_INT(count(resp, "HTTP/1.1 "), 1);
	int after = __atomic_load_n(&b1.requests, __ATOMIC_SEQ_CST);
	/* only the last case's head may have been forwarded, never "smuggled" */
	CHECK(after - before <= 1);
}

TEST(proxy_error_statuses_and_retries)
{
	setup();
	exchange(px_port, "GET /none HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", resp,
		 sizeof(resp));
	CHECK_EQ_INT(status_of(resp), 503);
	exchange(px_port, "GET /invalid HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", resp,
		 sizeof(resp));
	CHECK_EQ_INT(status_of(resp), 500);
	exchange(px_port, "GET /dead HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", resp,
		 sizeof(resp));
	CHECK_EQ_INT(status_of(resp), 503);
	exchange(px_port, "GET /slow HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", resp,
		 sizeof(resp));
	CHECK_EQ_INT(status_of(resp), 504);

	int before = __atomic_load_n(&b1.requests, __ATOMIC_SEQ_CST);
	exchange(px_port, "GET /retry/status/500 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
		 resp, sizeof(resp));
	CHECK_EQ_INT(status_of(resp), 500);
	CHECK_EQ_INT(__atomic_load_n(&b1.requests, __ATOMIC_SEQ_CST) - before, 3);
	before = __atomic_load_n(&b1.requests, __ATOMIC_SEQ_CST);
	exchange(px_port, "GET /retry/status/502 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
		 resp, sizeof(resp));
	CHECK_EQ_INT(status_of(resp), 502);
	CHECK_EQ_INT(__atomic_load_n(&b1.requests, __ATOMIC_SEQ_CST) - before, 1);
	/* HEAD: the head only, with the length the backend announced */
	exchange(px_port, "HEAD /app/h HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", resp,
		 sizeof(resp));
	CHECK_EQ_INT(status_of(resp), 200);
	CHECK(strstr(resp, "Content-Length: ") != NULL);
	CHECK(strstr(resp, "name=b1") == NULL);
}

TEST(proxy_refused_endpoint_is_skipped_and_ejected)
{
	setup();
	int ok = 0;
	for (int i = 0; i < 12; i++) {
		exchange(px_port, "GET /half HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
			 resp, sizeof(resp));
		ok += status_of(resp) == 200 && strstr(resp, "name=b1") != NULL;
	}
	/* every request lands on the live endpoint: connect failures re-pick */
	CHECK_EQ_INT(ok, 12);
}

TEST(proxy_swap_on_kept_alive_connection)
{
	setup();
	int fd = client_connect(px_port);
	const char *rq = "GET /app/s HTTP/1.1\r\nHost: a\r\n\r\n";
	char b[16384];
	write_all(fd, rq, strlen(rq));
	read_response(fd, b, sizeof(b));
	CHECK(strstr(b, "name=b1") != NULL);
	struct diag d = {0};
	CHECK_EQ_INT(proxy_publish(px, mk_snapshot(px_port, &b1, &b2, true), &d), 0);
	diag_fini(&d);
	usleep(50000);
	write_all(fd, rq, strlen(rq));
	read_response(fd, b, sizeof(b));
	CHECK(strstr(b, "name=b2") != NULL);
	close(fd);
	/* and back, for the tests that run after this one */
	CHECK_EQ_INT(proxy_publish(px, mk_snapshot(px_port, &b1, &b2, false), &d), 0);
	diag_fini(&d);
	usleep(50000);

	struct proxy_stats st;
	proxy_get_stats(px, &st);
	CHECK(st.requests > 10);
	CHECK(st.responses_by_class[2] > 5);
	CHECK(st.responses_by_class[4] > 0);
	CHECK(st.total_connections > 5);
}

/* A client that sends kept-alive requests until told to stop. */
struct hammer {
	volatile int stop;
	int ok, failed;
};

static void *hammer_main(void *arg)
{
	struct hammer *h = arg;
	char b[16384];
	const char *rq = "GET /app/h HTTP/1.1\r\nHost: a\r\n\r\n";
	while (!h->stop) {
		int fd = client_connect(px_port);
		if (fd < 0) {
			h->failed++;
			continue;
		}
		for (int i = 0; i < 50 && !h->stop; i++) {
			write_all(fd, rq, strlen(rq));
			read_response(fd, b, sizeof(b));
			if (status_of(b) == 200 && (strstr(b, "name=b1") || strstr(b, "name=b2")))
				h->ok++;
			else
				h->failed++;
		}
		close(fd);
	}
	return NULL;
}

TEST(proxy_swaps_routes_under_load_without_failures)
{
	setup();
	struct hammer h = {0};
	pthread_t t;
	pthread_create(&t, NULL, hammer_main, &h);
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	int swaps = 0;
	for (; swaps < 1000; swaps++) {
		struct diag d = {0};
		proxy_publish(px, mk_snapshot(px_port, &b1, &b2, swaps & 1), &d);
		diag_fini(&d);
		usleep(1000);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		if (t1.tv_sec - t0.tv_sec > 20)
			break; /* a very slow machine: keep the test bounded */
	}
	h.stop = 1;
	pthread_join(t, NULL);
	struct diag d = {0};
	proxy_publish(px, mk_snapshot(px_port, &b1, &b2, false), &d);
	diag_fini(&d);
	fprintf(stderr, "  %d swaps, %d requests ok, %d failed\n", swaps, h.ok, h.failed);
	CHECK(swaps >= 200);
	CHECK(h.ok > 0);
	CHECK_EQ_INT(h.failed, 0);
}

/* ---- upstream TLS: a backend that speaks TLS only ---- */

struct tls_backend {
	struct tls_server *srv;
	char *cert, *key;
	int lfd;
	uint16_t port;
	pthread_t thr;
};

static struct tls_backend tb;

static void *tls_bconn_main(void *arg)
{
	int fd = (int)(intptr_t)arg;
	struct tls_conn *t = tls_conn_server(tb.srv, fd);
	char in[8192];
	size_t len = 0;
	int h;

	set_timeout(fd, 3000);
	while (t && (h = tls_handshake(t)) != 0)
		if (h != -WG_EAGAIN_READ && h != -WG_EAGAIN_WRITE)
			goto out;
	for (;;) {
		char *e = memmem(in, len, "\r\n\r\n", 4);
		if (!e) {
			ssize_t r = tls_read(t, in + len, sizeof(in) - 1 - len);
			if (r <= 0)
				break;
			len += (size_t)r;
			continue;
		}
		char body[256], out[512];
		int bl = snprintf(body, sizeof(body), "name=tlsb sni=%s\n",
				  tls_conn_sni(t) ? tls_conn_sni(t) : "-");
		int k = snprintf(out, sizeof(out),
				 "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", bl, body);
		for (int off = 0; off < k;) {
			ssize_t w = tls_write(t, out + off, (size_t)(k - off));
			if (w <= 0)
				goto out;
			off += (int)w;
		}
		size_t used = (size_t)(e + 4 - in);
		memmove(in, in + used, len - used);
		len -= used;
	}
out:
	tls_conn_free(t);
	close(fd);
	return NULL;
}

static void *tls_backend_main(void *arg)
{
	(void)arg;
	for (;;) {
		int fd = accept(tb.lfd, NULL, NULL);
		if (fd < 0)
			return NULL;
		pthread_t t;
		pthread_create(&t, NULL, tls_bconn_main, (void *)(intptr_t)fd);
		pthread_detach(t);
	}
}

static uint16_t proxy_with_tls_backend(struct proxy **out, const char *sni, const char *ca)
{
	uint16_t port = dead_port();
	struct proxy_config cfg = {.workers = 1, .access_log_fd = -1};
	struct proxy *p = proxy_new(&cfg);
	proxy_start(p);
	struct arena *a = arena_new(0);
	struct snapshot *s = arena_zalloc(a, sizeof(*s));
	s->arena = a;
	s->refs = 1;
	s->n_listeners = 1;
	s->listeners = arena_zalloc(a, sizeof(*s->listeners));
	struct snap_listener *l = &s->listeners[0];
	l->http_rules = arena_zalloc(a, sizeof(struct snap_http_rule));
	struct snap_backend *b = mk_backend(a, "tlsb", tb.port, 1);
	b->tls = arena_zalloc(a, sizeof(*b->tls));
	b->tls->sni = arena_strdup(a, sni);
	b->tls->ca_pem = arena_strdup(a, ca);
	add_rule(l, a, "t/tls", SNAP_PM_PREFIX, "/", b);
	s->n_sockets = 1;
	s->sockets = arena_zalloc(a, sizeof(*s->sockets));
	strcpy(s->sockets[0].addr, "127.0.0.1");
	s->sockets[0].port = port;
	s->sockets[0].n_listeners = 1;
	s->sockets[0].listeners = arena_zalloc(a, sizeof(struct snap_listener *));
	s->sockets[0].listeners[0] = l;
	struct diag d = {0};
	proxy_publish(p, s, &d);
	diag_fini(&d);
	for (int i = 0; i < 200; i++) {
		int fd = client_connect(port);
		if (fd >= 0) {
			close(fd);
			break;
		}
		usleep(10000);
	}
	*out = p;
	return port;
}

TEST(proxy_backend_tls_verified_and_kept_alive)
{
	setup();
	const char *sans[] = {"backend.test"};
	CHECK_EQ_INT(tls_gen_selfsigned("backend.test", sans, 1, 1, &tb.cert, &tb.key), 0);
	struct tls_cert_pem pem = {tb.cert, tb.key, "t/backend"};
	struct tls_server_opts so = {.certs = &pem, .n_certs = 1};
	struct diag d = {0};
	tb.srv = tls_server_new(&so, &d);
	diag_fini(&d);
	CHECK(tb.srv != NULL);
	tb.lfd = listen_any(&tb.port);
	pthread_create(&tb.thr, NULL, tls_backend_main, NULL);

	struct proxy *p;
	uint16_t port = proxy_with_tls_backend(&p, "backend.test", tb.cert);
	exchange(port,
		 "GET /a HTTP/1.1\r\nHost: a\r\n\r\nGET /b HTTP/1.1\r\nHost: a\r\nConnection: "
		 "close\r\n\r\n",
		 resp, sizeof(resp));
	CHECK_EQ_INT(count(resp, "HTTP/1.1 200"), 2);
	CHECK(strstr(resp, "name=tlsb sni=backend.test") != NULL);
	proxy_drain(p, 100);
	proxy_free(p);

	/* a name the certificate does not carry: verification fails, 502 */
	port = proxy_with_tls_backend(&p, "other.test", tb.cert);
	exchange(port, "GET /a HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", resp,
		 sizeof(resp));
	CHECK(status_of(resp) == 502 || status_of(resp) == 503);
	proxy_drain(p, 100);
	proxy_free(p);

	shutdown(tb.lfd, SHUT_RDWR);
	close(tb.lfd);
	pthread_join(tb.thr, NULL);
	tls_server_unref(tb.srv);
	tls_free_secret(tb.key);
	free(tb.cert);
}

TEST(proxy_zz_drain_and_free)
{
	setup();
	proxy_drain(px, 1000);
	proxy_free(px);
	px = NULL;
	/* the port is closed once the proxy is gone */
	CHECK(client_connect(px_port) < 0);
	backend_stop(&b1);
	backend_stop(&b2);
}
