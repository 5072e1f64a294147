/* SPDX-License-Identifier: MIT */
/*
 * echo.c: `waygate echo --listen ADDR:PORT [--name NAME]`, a diagnostic
 * backend that answers every request with what it received, as JSON in the
 * shape of the Gateway API conformance echo-basic image: path, host, method,
 * proto, headers (canonical names, lists of values, without Host), the pod
 * context (namespace, ingress, service from NAMESPACE, INGRESS_NAME,
 * SERVICE_NAME; pod from --name or POD_NAME) and httpPort. It honours
 * X-Echo-Set-Header ("name:value,name2:value2" become response headers),
 * answers /status/NNN with that status, keeps connections alive and accepts
 * pipelined requests; request bodies are read (Content-Length or chunked)
 * and counted, never stored. A WebSocket upgrade (RFC 6455) on any path
 * turns the connection into a message echo: text and binary frames come
 * back as sent, pings get pongs, a close is answered and ends it. One
 * thread, one loop; not a production server.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cli/cli.h"
#include "core/base64.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/str.h"
#include "http/h1.h"

#define ECHO_MAX_IN (64 * 1024)
#define ECHO_MAX_HEADERS 128

enum echo_state { ES_HEAD = 0, ES_BODY, ES_WS };

struct echo_srv {
	struct loop *loop;
	struct loop_io lio;
	struct loop_io sig_io;
	int sig_fd;
	const char *name;
	const char *ns, *ingress, *service;
	uint16_t port;
	unsigned n_conns;
};

struct echo_conn {
	struct echo_srv *s;
	struct loop_io io;
	struct buf in, out, pending;
	enum echo_state st;
	enum h1_body body;
	uint64_t remaining;
	struct h1_chunked ch;
	uint64_t body_len;
	bool keep_alive;
	bool closing;
	size_t last_len;
};

/* ---- WebSocket: the handshake's SHA-1 (not for security) and frames ---- */

static uint32_t rol(uint32_t v, int n)
{
	return (v << n) | (v >> (32 - n));
}

static void sha1(const unsigned char *msg, size_t len, unsigned char out[20])
{
	uint32_t h[5] = {0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476, 0xc3d2e1f0};
	size_t total = ((len + 8) / 64 + 1) * 64;
	unsigned char block[64];

	for (size_t off = 0; off < total; off += 64) {
		for (size_t i = 0; i < 64; i++) {
			size_t k = off + i;
			if (k < len)
				block[i] = msg[k];
			else if (k == len)
				block[i] = 0x80;
			else if (k >= total - 8)
				block[i] =
					(unsigned char)((uint64_t)len * 8 >> (8 * (total - 1 - k)));
			else
				block[i] = 0;
		}
		uint32_t w[80];
		for (int i = 0; i < 16; i++)
			w[i] = (uint32_t)block[4 * i] << 24 | (uint32_t)block[4 * i + 1] << 16 |
			       (uint32_t)block[4 * i + 2] << 8 | block[4 * i + 3];
		for (int i = 16; i < 80; i++)
			w[i] = rol(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
		uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
		for (int i = 0; i < 80; i++) {
			uint32_t f, k;
			if (i < 20) {
				f = (b & c) | (~b & d);
				k = 0x5a827999;
			} else if (i < 40) {
				f = b ^ c ^ d;
				k = 0x6ed9eba1;
			} else if (i < 60) {
				f = (b & c) | (b & d) | (c & d);
				k = 0x8f1bbcdc;
			} else {
				f = b ^ c ^ d;
				k = 0xca62c1d6;
			}
			uint32_t t = rol(a, 5) + f + e + k + w[i];
			e = d;
			d = c;
			c = rol(b, 30);
			b = a;
			a = t;
		}
		h[0] += a;
		h[1] += b;
		h[2] += c;
		h[3] += d;
		h[4] += e;
	}
	for (int i = 0; i < 5; i++) {
		out[4 * i] = (unsigned char)(h[i] >> 24);
		out[4 * i + 1] = (unsigned char)(h[i] >> 16);
		out[4 * i + 2] = (unsigned char)(h[i] >> 8);
		out[4 * i + 3] = (unsigned char)h[i];
	}
}

static void ws_accept_key(struct str key, char out[32])
{
	static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
	unsigned char tmp[128], dig[20];
	size_t n = key.len < 64 ? key.len : 64;
	memcpy(tmp, key.p, n);
	memcpy(tmp + n, guid, sizeof(guid) - 1);
	sha1(tmp, n + sizeof(guid) - 1, dig);
	base64_encode(dig, sizeof(dig), out);
}

/* Sends one unmasked frame. */
static void ws_send(struct buf *o, unsigned opcode, const char *p, size_t n)
{
	unsigned char h[10];
	size_t hl = 2;
	h[0] = (unsigned char)(0x80 | opcode);
	if (n < 126) {
		h[1] = (unsigned char)n;
	} else if (n < 65536) {
		h[1] = 126;
		h[2] = (unsigned char)(n >> 8);
		h[3] = (unsigned char)n;
		hl = 4;
	} else {
		h[1] = 127;
		for (int i = 0; i < 8; i++)
			h[2 + i] = (unsigned char)((uint64_t)n >> (56 - 8 * i));
		hl = 10;
	}
	buf_append(o, h, hl);
	buf_append(o, p, n);
}

/*
 * Echoes the complete frames in c->in. Returns false when the connection
 * must close after what is queued (a close frame, or a protocol error).
 */
static bool ws_process(struct buf *in, struct buf *out)
{
	for (;;) {
		unsigned char *p = (unsigned char *)buf_rptr(in);
		size_t n = buf_len(in);
		if (n < 2)
			return true;
		unsigned opcode = p[0] & 0x0f;
		bool masked = p[1] & 0x80;
		uint64_t len = p[1] & 0x7f;
		size_t hl = 2;
		if (len == 126) {
			if (n < 4)
				return true;
			len = (uint64_t)p[2] << 8 | p[3];
			hl = 4;
		} else if (len == 127) {
			if (n < 10)
				return true;
			len = 0;
			for (int i = 0; i < 8; i++)
				len = len << 8 | p[2 + i];
			hl = 10;
		}
		if (!masked || len > ECHO_MAX_IN / 2) {
			ws_send(out, 8, "\x03\xea", 2); /* 1002: protocol error */
			return false;
		}
		if (n < hl + 4 + len)
			return true;
		unsigned char *mask = p + hl, *data = p + hl + 4;
		for (uint64_t i = 0; i < len; i++)
			data[i] ^= mask[i & 3];
		switch (opcode) {
		case 0x0: /* continuation: echoed as it came */
		case 0x1:
		case 0x2: ws_send(out, opcode, (char *)data, (size_t)len); break;
		case 0x8:
			ws_send(out, 8, (char *)data, len >= 2 ? 2 : 0);
			buf_consume(in, hl + 4 + (size_t)len);
			return false;
		case 0x9: ws_send(out, 0xa, (char *)data, (size_t)len); break;
		default: break; /* pongs and reserved opcodes are ignored */
		}
		buf_consume(in, hl + 4 + (size_t)len);
	}
}

static void json_escape(struct buf *b, const char *p, size_t n)
{
	buf_append(b, "\"", 1);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];
		if (c == '"' || c == '\\') {
			char e[2] = {'\\', (char)c};
			buf_append(b, e, 2);
		} else if (c < 0x20 || c == 0x7f) {
			buf_appendf(b, "\\u%04x", c);
		} else {
			buf_append(b, &p[i], 1);
		}
	}
	buf_append(b, "\"", 1);
}

/* Go's textproto canonical form: "x-foo-bar" → "X-Foo-Bar". */
static void canonical(char *dst, const char *src, size_t n)
{
	bool up = true;
	for (size_t i = 0; i < n; i++) {
		char c = src[i];
		dst[i] = up ? (c >= 'a' && c <= 'z' ? (char)(c - 32) : c) : ascii_lower(c);
		up = c == '-';
	}
	dst[n] = '\0';
}

static void echo_close(struct echo_conn *c)
{
	if (c->io.fd >= 0) {
		int fd = c->io.fd;
		loop_io_del(c->s->loop, &c->io);
		close(fd);
	}
	c->s->n_conns--;
	buf_release(&c->in);
	buf_release(&c->out);
	buf_release(&c->pending);
	free(c);
}

/* Builds the answer for the head m into c->pending. */
static void build_answer(struct echo_conn *c, const struct h1_msg *m)
{
	struct echo_srv *s = c->s;
	struct buf body = {0};
	int status = 200;
	char name[256];

	if (m->path.len > 8 && memcmp(m->path.p, "/status/", 8) == 0) {
		uint64_t v;
		struct str code = {m->path.p + 8, 3};
		if (m->path.len >= 11 && !str_to_u64(code, 999, &v) && v >= 100 && v <= 599 &&
		    (m->path.len == 11 || m->path.p[11] == '?' || m->path.p[11] == '/'))
			status = (int)v;
	}
	buf_append_str(&body, "{\"path\":");
	json_escape(&body, m->target.p, m->target.len);
	buf_append_str(&body, ",\"host\":");
	json_escape(&body, m->host.p, m->host.len);
	buf_append_str(&body, ",\"method\":");
	json_escape(&body, m->method.p, m->method.len);
	buf_appendf(&body, ",\"proto\":\"HTTP/1.%d\",\"headers\":{", m->minor);
	bool first = true;
	for (size_t i = 0; i < m->n_headers; i++) {
		struct str n = m->headers[i].name;
		if (str_case_eq_c(n, "host") || n.len >= sizeof(name))
			continue;
		/* the first occurrence gathers every value of that name */
		bool seen = false;
		for (size_t k = 0; k < i; k++)
			if (str_case_eq(m->headers[k].name, n))
				seen = true;
		if (seen)
			continue;
		canonical(name, n.p, n.len);
		if (!first)
			buf_append(&body, ",", 1);
		first = false;
		json_escape(&body, name, n.len);
		buf_append_str(&body, ":[");
		bool fv = true;
		for (size_t k = i; k < m->n_headers; k++) {
			if (!str_case_eq(m->headers[k].name, n))
				continue;
			if (!fv)
				buf_append(&body, ",", 1);
			fv = false;
			json_escape(&body, m->headers[k].value.p, m->headers[k].value.len);
		}
		buf_append_str(&body, "]");
	}
	buf_append_str(&body, "},\"namespace\":");
	json_escape(&body, s->ns, strlen(s->ns));
	buf_append_str(&body, ",\"ingress\":");
	json_escape(&body, s->ingress, strlen(s->ingress));
	buf_append_str(&body, ",\"service\":");
	json_escape(&body, s->service, strlen(s->service));
	buf_append_str(&body, ",\"pod\":");
	json_escape(&body, s->name, strlen(s->name));
	buf_appendf(&body, ",\"httpPort\":\"%u\",\"tls\":null}\n", s->port);

	struct buf *o = &c->pending;
	buf_appendf(o, "HTTP/1.1 %d %s\r\n", status, h1_reason(status));
	buf_append_str(o, "Content-Type: application/json\r\nX-Content-Type-Options: nosniff\r\n");
	ssize_t k = hdr_find(m->headers, m->n_headers, STR_LIT("x-echo-set-header"), 0);
	if (k >= 0) {
		/* "name:value,name2:value2"; invalid pairs are skipped */
		struct str v = m->headers[k].value;
		size_t i = 0;
		while (i < v.len) {
			size_t j = i;
			while (j < v.len && v.p[j] != ',')
				j++;
			const char *colon = memchr(v.p + i, ':', j - i);
			if (colon) {
				struct str hn = {v.p + i, (size_t)(colon - v.p - i)};
				struct str hv = {colon + 1, (size_t)(v.p + j - colon - 1)};
				while (hn.len && hn.p[0] == ' ') {
					hn.p++;
					hn.len--;
				}
				while (hv.len && hv.p[0] == ' ') {
					hv.p++;
					hv.len--;
				}
				if (hdr_is_token(hn) && hdr_is_value(hv)) {
					buf_append(o, hn.p, hn.len);
					buf_append(o, ": ", 2);
					buf_append(o, hv.p, hv.len);
					buf_append(o, "\r\n", 2);
				}
			}
			i = j + 1;
		}
	}
	bool head = str_eq_c(m->method, "HEAD");
	buf_appendf(o, "Content-Length: %zu\r\n", buf_len(&body));
	if (!c->keep_alive)
		buf_append_str(o, "Connection: close\r\n");
	else if (m->minor == 0)
		buf_append_str(o, "Connection: keep-alive\r\n");
	buf_append(o, "\r\n", 2);
	if (!head)
		buf_append(o, buf_rptr(&body), buf_len(&body));
	buf_release(&body);
}

static void send_error(struct echo_conn *c, int status)
{
	buf_appendf(&c->out, "HTTP/1.1 %d %s\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
		    status, h1_reason(status));
	c->closing = true;
}

/* Consumes what c->in holds; false when the connection must close now. */
static bool process(struct echo_conn *c)
{
	struct h1_header hdrs[ECHO_MAX_HEADERS];
	struct h1_msg m = {.headers = hdrs, .max_headers = ECHO_MAX_HEADERS};

	while (!c->closing && !buf_is_empty(&c->in)) {
		if (c->st == ES_WS) {
			if (!ws_process(&c->in, &c->out))
				c->closing = true;
			return true;
		}
		if (c->st == ES_HEAD) {
			ssize_t n = h1_parse_request(buf_rptr(&c->in), buf_len(&c->in), c->last_len,
						     &m, NULL);
			if (n == 0) {
				c->last_len = buf_len(&c->in);
				return true;
			}
			c->last_len = 0;
			if (n < 0) {
				send_error(c, m.err_status ? m.err_status : 400);
				return true;
			}
			c->keep_alive = m.keep_alive;
			ssize_t kk =
				hdr_find(m.headers, m.n_headers, STR_LIT("sec-websocket-key"), 0);
			ssize_t ku = hdr_find(m.headers, m.n_headers, STR_LIT("upgrade"), 0);
			if (kk >= 0 && ku >= 0 && str_case_eq_c(m.headers[ku].value, "websocket") &&
			    (m.conn_flags & H1_CONN_UPGRADE) && m.body == H1_BODY_NONE) {
				char acc[32];
				ws_accept_key(m.headers[kk].value, acc);
				buf_appendf(
					&c->out,
					"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
					"Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
					acc);
				buf_consume(&c->in, (size_t)n);
				c->st = ES_WS;
				continue;
			}
			build_answer(c, &m);
			buf_consume(&c->in, (size_t)n);
			c->body = m.body;
			c->remaining = m.content_length;
			memset(&c->ch, 0, sizeof(c->ch));
			c->body_len = 0;
			c->st = ES_BODY;
		}
		if (c->st == ES_BODY) {
			bool done = false;
			if (c->body == H1_BODY_NONE) {
				done = true;
			} else if (c->body == H1_BODY_LENGTH) {
				size_t n = buf_len(&c->in);
				if (n > c->remaining)
					n = (size_t)c->remaining;
				buf_consume(&c->in, n);
				c->remaining -= n;
				c->body_len += n;
				done = c->remaining == 0;
			} else {
				struct str d;
				ssize_t n = h1_chunked_decode(&c->ch, buf_rptr(&c->in),
							      buf_len(&c->in), &d);
				if (n < 0) {
					buf_release(&c->pending);
					send_error(c, 400);
					return true;
				}
				buf_consume(&c->in, (size_t)n);
				c->body_len += d.len;
				done = h1_chunked_is_done(&c->ch);
				if (!done && n > 0)
					continue; /* one data span per call: decode on */
			}
			if (!done)
				return true;
			buf_append(&c->out, buf_rptr(&c->pending), buf_len(&c->pending));
			buf_release(&c->pending);
			c->st = ES_HEAD;
			if (!c->keep_alive)
				c->closing = true;
		}
	}
	/* a body with nothing buffered yet may already be complete */
	if (c->st == ES_BODY && c->body == H1_BODY_NONE) {
		buf_append(&c->out, buf_rptr(&c->pending), buf_len(&c->pending));
		buf_release(&c->pending);
		c->st = ES_HEAD;
		if (!c->keep_alive)
			c->closing = true;
	}
	return true;
}

static void on_conn(struct loop_io *io, uint32_t events)
{
	struct echo_conn *c = io->arg;

	if (events & LOOP_READ) {
		for (;;) {
			if (buf_reserve(&c->in, 4096, ECHO_MAX_IN)) {
				send_error(c, 431);
				break;
			}
			ssize_t n = read(io->fd, buf_wptr(&c->in), buf_room(&c->in));
			if (n > 0) {
				buf_commit(&c->in, (size_t)n);
				process(c);
				if ((size_t)n < 4096)
					break;
				continue;
			}
			if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
				if (buf_is_empty(&c->out)) {
					echo_close(c);
					return;
				}
				c->closing = true;
			}
			break;
		}
	}
	while (!buf_is_empty(&c->out)) {
		ssize_t n = write(io->fd, buf_rptr(&c->out), buf_len(&c->out));
		if (n > 0) {
			buf_consume(&c->out, (size_t)n);
			continue;
		}
		if (n == -1 && errno == EAGAIN)
			break;
		echo_close(c);
		return;
	}
	if (buf_is_empty(&c->out) && c->closing) {
		echo_close(c);
		return;
	}
	loop_io_mod(c->s->loop, &c->io,
		    (c->closing ? 0 : LOOP_READ) | (buf_is_empty(&c->out) ? 0 : LOOP_WRITE));
}

static void on_accept(struct loop_io *io, uint32_t events)
{
	struct echo_srv *s = io->arg;
	int one = 1;
	(void)events;

	for (int i = 0; i < 64; i++) {
		int fd = accept4(io->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd == -1)
			return;
		struct echo_conn *c = calloc(1, sizeof(*c));
		if (!c) {
			close(fd);
			continue;
		}
		c->s = s;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		if (loop_io_add(s->loop, &c->io, fd, LOOP_READ, on_conn, c)) {
			close(fd);
			free(c);
			continue;
		}
		s->n_conns++;
	}
}

static void on_signal(struct loop_io *io, uint32_t events)
{
	struct echo_srv *s = io->arg;
	struct signalfd_siginfo si;
	(void)events;
	while (read(io->fd, &si, sizeof(si)) == sizeof(si))
		;
	loop_stop(s->loop);
}

/* "ADDR:PORT" or "[V6]:PORT" into a socket address. */
static int parse_listen(const char *arg, struct sockaddr_storage *ss, socklen_t *len,
			uint16_t *port_out)
{
	char host[64];
	const char *colon = strrchr(arg, ':');
	uint64_t port;

	if (!colon || (size_t)(colon - arg) >= sizeof(host) ||
	    str_to_u64(str_c(colon + 1), 65535, &port))
		return -EINVAL;
	memcpy(host, arg, (size_t)(colon - arg));
	host[colon - arg] = '\0';
	char *h = host;
	if (h[0] == '[') {
		size_t hl = strlen(h);
		if (hl < 2 || h[hl - 1] != ']')
			return -EINVAL;
		h[hl - 1] = '\0';
		h++;
	}
	memset(ss, 0, sizeof(*ss));
	struct sockaddr_in *in4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
	if (inet_pton(AF_INET, h, &in4->sin_addr) == 1) {
		in4->sin_family = AF_INET;
		in4->sin_port = htons((uint16_t)port);
		*len = sizeof(*in4);
	} else if (inet_pton(AF_INET6, h, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((uint16_t)port);
		*len = sizeof(*in6);
	} else {
		return -EINVAL;
	}
	*port_out = (uint16_t)port;
	return 0;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: waygate echo --listen ADDR:PORT [--name NAME]\n"
		   "  answers every request with what it received, as JSON\n"
		   "  (environment: NAMESPACE, INGRESS_NAME, SERVICE_NAME, POD_NAME)\n");
}

static const char *env_or(const char *name, const char *dflt)
{
	const char *v = getenv(name);
	return v ? v : dflt;
}

int cmd_echo(int argc, char **argv)
{
	const char *listen_arg = NULL, *name = NULL;
	struct echo_srv s = {0};
	struct sockaddr_storage ss;
	socklen_t sl;
	int one = 1, rc = 1;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = NULL;
		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			usage(stdout);
			return 0;
		}
		if (!strncmp(a, "--listen=", 9))
			listen_arg = a + 9;
		else if (!strncmp(a, "--name=", 7))
			name = a + 7;
		else if ((!strcmp(a, "--listen") || !strcmp(a, "--name")) && (v = argv[i + 1])) {
			if (a[2] == 'l')
				listen_arg = v;
			else
				name = v;
			i++;
		} else {
			fprintf(stderr, "waygate echo: unknown or incomplete option '%s'\n", a);
			usage(stderr);
			return 2;
		}
	}
	if (!listen_arg) {
		fprintf(stderr, "waygate echo: --listen ADDR:PORT is required\n");
		usage(stderr);
		return 2;
	}
	if (parse_listen(listen_arg, &ss, &sl, &s.port)) {
		fprintf(stderr,
			"waygate echo: --listen: '%s' is not ADDR:PORT with a numeric address\n",
			listen_arg);
		return 2;
	}
	s.name = name ? name : env_or("POD_NAME", "echo");
	s.ns = env_or("NAMESPACE", "");
	s.ingress = env_or("INGRESS_NAME", "");
	s.service = env_or("SERVICE_NAME", "");
	signal(SIGPIPE, SIG_IGN);

	int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == -1 ||
	    bind(fd, (struct sockaddr *)&ss, sl) == -1 || listen(fd, 512) == -1) {
		fprintf(stderr, "waygate echo: cannot listen on %s: %s\n", listen_arg,
			strerror(errno));
		if (fd != -1)
			close(fd);
		return 1;
	}
	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	s.sig_fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	s.loop = loop_new();
	if (!s.loop || s.sig_fd == -1 ||
	    loop_io_add(s.loop, &s.lio, fd, LOOP_READ, on_accept, &s) ||
	    loop_io_add(s.loop, &s.sig_io, s.sig_fd, LOOP_READ, on_signal, &s)) {
		fprintf(stderr, "waygate echo: cannot start the event loop\n");
		goto out;
	}
	log_info("event=echo_listening addr=%s pod=%s", log_q(listen_arg), log_q(s.name));
	rc = loop_run(s.loop) < 0 ? 1 : 0;
	log_info("event=echo_stopped");
out:
	if (s.loop)
		loop_free(s.loop);
	if (s.sig_fd != -1)
		close(s.sig_fd);
	close(fd);
	return rc;
}
