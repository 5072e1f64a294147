/* SPDX-License-Identifier: MIT */
/*
 * Tests of http/h1.c: request and response heads (table-driven: accepted
 * framings and every refused ambiguity with its status), resumption byte by
 * byte, limits, the chunked decoder (valid, split, malformed) and encoder,
 * and the header helpers.
 */
#include "../check.h"
#include "core/err.h"
#include "http/h1.h"

struct req_case {
	const char *name;
	const char *in;
	int status; /* 0 = accepted */
	enum h1_body body;
	uint64_t cl;
	bool keep_alive;
};

#define BAD(n, in, st)                                                                             \
	{                                                                                          \
		n, in, st, H1_BODY_NONE, 0, false                                                  \
	}

static const struct req_case req_cases[] = {
	{"simple get", "GET / HTTP/1.1\r\nHost: a\r\n\r\n", 0, H1_BODY_NONE, 0, true},
	{"http/1.0 close default", "GET / HTTP/1.0\r\n\r\n", 0, H1_BODY_NONE, 0, false},
	{"http/1.0 keep-alive", "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", 0, H1_BODY_NONE,
	 0, true},
	{"connection close", "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", 0,
	 H1_BODY_NONE, 0, false},
	{"content-length", "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 12\r\n\r\n", 0,
	 H1_BODY_LENGTH, 12, true},
	{"content-length zero", "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n", 0,
	 H1_BODY_NONE, 0, true},
	{"chunked", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n", 0,
	 H1_BODY_CHUNKED, 0, true},
	{"chunked mixed case", "POST / HTTP/1.1\r\nHost: a\r\ntransfer-encoding: ChUnKeD\r\n\r\n",
	 0, H1_BODY_CHUNKED, 0, true},
	{"leading empty line", "\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", 0, H1_BODY_NONE, 0, true},
	{"ows around value", "GET / HTTP/1.1\r\nHost: \t a \t\r\n\r\n", 0, H1_BODY_NONE, 0, true},
	{"obs-text in value", "GET / HTTP/1.1\r\nHost: a\r\nX: caf\xc3\xa9\r\n\r\n", 0,
	 H1_BODY_NONE, 0, true},
	{"absolute-form", "GET http://a.example/p?q HTTP/1.1\r\nHost: a.example\r\n\r\n", 0,
	 H1_BODY_NONE, 0, true},
	{"asterisk options", "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", 0, H1_BODY_NONE, 0, true},
	{"http/1.2 as 1.1", "GET / HTTP/1.2\r\nHost: a\r\n\r\n", 0, H1_BODY_NONE, 0, true},
	{"expect continue",
	 "PUT / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n"
	 "Content-Length: 3\r\n\r\n",
	 0, H1_BODY_LENGTH, 3, true},
	/* refused */
	BAD("obs-fold", "GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n", 400),
	BAD("space before first field", "GET / HTTP/1.1\r\n Host: a\r\n\r\n", 400),
	BAD("space before colon", "GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400),
	BAD("tab before colon", "GET / HTTP/1.1\r\nHost\t: a\r\n\r\n", 400),
	BAD("bare LF", "GET / HTTP/1.1\nHost: a\n\n", 400),
	BAD("bare LF in field", "GET / HTTP/1.1\r\nHost: a\nX: b\r\n\r\n", 400),
	BAD("bare CR in value", "GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n", 400),
	BAD("invalid name char", "GET / HTTP/1.1\r\nHost: a\r\nX(y): b\r\n\r\n", 400),
	BAD("empty name", "GET / HTTP/1.1\r\nHost: a\r\n: b\r\n\r\n", 400),
	BAD("no colon", "GET / HTTP/1.1\r\nHost: a\r\nXY\r\n\r\n", 400),
	BAD("duplicate CL",
	    "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n", 400),
	BAD("CL list", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3, 3\r\n\r\n", 400),
	BAD("CL sign", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +3\r\n\r\n", 400),
	BAD("CL hex", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x3\r\n\r\n", 400),
	BAD("CL empty", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\r\n", 400),
	BAD("CL overflow",
	    "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999\r\n\r\n", 400),
	BAD("CL with TE",
	    "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n"
	    "Transfer-Encoding: chunked\r\n\r\n",
	    400),
	BAD("TE not final chunked",
	    "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, x\r\n\r\n", 501),
	BAD("TE unknown", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", 501),
	BAD("TE chunked twice",
	    "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
	    "Transfer-Encoding: chunked\r\n\r\n",
	    400),
	BAD("TE empty element", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: ,chunked\r\n\r\n",
	    400),
	BAD("TE with param", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked;q=1\r\n\r\n",
	    400),
	BAD("TE quoted", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \"chunked\"\r\n\r\n",
	    400),
	BAD("TE vertical tab", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \vchunked\r\n\r\n",
	    400),
	BAD("TE in 1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
	BAD("missing host", "GET / HTTP/1.1\r\n\r\n", 400),
	BAD("two hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
	BAD("host with space", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400),
	BAD("host with slash", "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", 400),
	BAD("http/0.9", "GET /\r\n\r\n", 400),
	BAD("version 2.0", "GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505),
	BAD("version garbage", "GET / HTTP/1.x\r\nHost: a\r\n\r\n", 400),
	BAD("lower case version", "GET / http/1.1\r\nHost: a\r\n\r\n", 400),
	BAD("two spaces", "GET  / HTTP/1.1\r\nHost: a\r\n\r\n", 400),
	BAD("tab separator", "GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n", 400),
	BAD("trailing space after version", "GET / HTTP/1.1 \r\nHost: a\r\n\r\n", 400),
	BAD("fragment in target", "GET /a#b HTTP/1.1\r\nHost: a\r\n\r\n", 400),
	BAD("raw utf8 in target", "GET /\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n", 400),
	BAD("relative target", "GET a HTTP/1.1\r\nHost: a\r\n\r\n", 400),
	BAD("asterisk outside options", "GET * HTTP/1.1\r\nHost: a\r\n\r\n", 400),
	BAD("connect", "CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n", 501),
	BAD("absolute-form other scheme", "GET ftp://a/ HTTP/1.1\r\nHost: a\r\n\r\n", 400),
	BAD("absolute-form userinfo", "GET http://u@a/ HTTP/1.1\r\nHost: a\r\n\r\n", 400),
	BAD("absolute-form host mismatch", "GET http://a/ HTTP/1.1\r\nHost: b\r\n\r\n", 400),
	BAD("absolute-form empty authority", "GET http:/// HTTP/1.1\r\nHost: a\r\n\r\n", 400),
	BAD("method with slash", "G/T / HTTP/1.1\r\nHost: a\r\n\r\n", 400),
	BAD("expect other", "GET / HTTP/1.1\r\nHost: a\r\nExpect: 200-ok\r\n\r\n", 417),
	BAD("bad connection token", "GET / HTTP/1.1\r\nHost: a\r\nConnection: a b\r\n\r\n", 400),
};

static struct h1_header hdrs[128];

static ssize_t parse_req(const char *in, size_t len, struct h1_msg *m, const struct h1_limits *l)
{
	memset(m, 0, sizeof(*m));
	m->headers = hdrs;
	m->max_headers = 128;
	return h1_parse_request(in, len, 0, m, l);
}

TEST(h1_request_table)
{
	for (size_t i = 0; i < sizeof(req_cases) / sizeof(req_cases[0]); i++) {
		const struct req_case *c = &req_cases[i];
		struct h1_msg m;
		size_t len = strlen(c->in);
		ssize_t r = parse_req(c->in, len, &m, NULL);
		if (c->status) {
			if (r >= 0 || m.err_status != c->status)
				fprintf(stderr, "  case '%s': r=%zd status=%d (%s)\n", c->name, r,
					m.err_status, m.error ? m.error : "");
			CHECK(r < 0);
			CHECK_EQ_INT(m.err_status, c->status);
			continue;
		}
		if (r != (ssize_t)len)
			fprintf(stderr, "  case '%s': r=%zd status=%d (%s)\n", c->name, r,
				m.err_status, m.error ? m.error : "");
		CHECK_EQ_INT(r, (ssize_t)len);
		CHECK_EQ_INT(m.body, c->body);
		CHECK_EQ_INT(m.content_length, c->cl);
		CHECK_EQ_INT(m.keep_alive, c->keep_alive);
	}
}

TEST(h1_request_rejects_nul_in_value)
{
	static const char in[] = "GET / HTTP/1.1\r\nHost: a\r\nX: a\0b\r\n\r\n";
	struct h1_msg m;
	CHECK(parse_req(in, sizeof(in) - 1, &m, NULL) < 0);
	CHECK_EQ_INT(m.err_status, 400);
}

TEST(h1_request_fields_are_views)
{
	const char *in = "POST /a/b?c=d HTTP/1.1\r\nHost: Example.COM:8080\r\n"
			 "X-Thing:  v1 \r\nConnection: keep-alive, X-Thing\r\n"
			 "Expect: 100-continue\r\nContent-Length: 5\r\n\r\nhello";
	struct h1_msg m;
	ssize_t r = parse_req(in, strlen(in), &m, NULL);
	CHECK_EQ_INT(r, (ssize_t)strlen(in) - 5);
	CHECK_EQ_MEM(m.method.p, m.method.len, "POST");
	CHECK_EQ_MEM(m.path.p, m.path.len, "/a/b?c=d");
	CHECK_EQ_MEM(m.host.p, m.host.len, "Example.COM:8080");
	CHECK_EQ_INT(m.n_headers, 5);
	CHECK_EQ_MEM(m.headers[1].value.p, m.headers[1].value.len, "v1");
	CHECK(m.expect_continue);
	CHECK(m.conn_flags & H1_CONN_OTHER);
	CHECK(hdr_is_listed_in_connection(m.headers, m.n_headers, STR_LIT("x-thing")));
	CHECK(!hdr_is_listed_in_connection(m.headers, m.n_headers, STR_LIT("host")));
	CHECK_EQ_INT(hdr_find(m.headers, m.n_headers, STR_LIT("content-length"), 0), 4);
	CHECK_EQ_INT(hdr_find(m.headers, m.n_headers, STR_LIT("nope"), 0), -1);
}

TEST(h1_request_absolute_form_uses_authority)
{
	const char *in = "GET http://h.example:81 HTTP/1.1\r\nHost: h.example:81\r\n\r\n";
	struct h1_msg m;
	CHECK_EQ_INT(parse_req(in, strlen(in), &m, NULL), (ssize_t)strlen(in));
	CHECK_EQ_INT(m.form, H1_FORM_ABSOLUTE);
	CHECK_EQ_MEM(m.path.p, m.path.len, "/");
	CHECK_EQ_MEM(m.host.p, m.host.len, "h.example:81");
}

TEST(h1_request_resumes_byte_by_byte)
{
	const char *in = "GET /x HTTP/1.1\r\nHost: a\r\nA: b\r\n\r\nNEXT";
	size_t total = strlen(in) - 4;
	struct h1_msg m = {.headers = hdrs, .max_headers = 128};
	size_t last = 0;
	for (size_t n = 1; n <= total; n++) {
		ssize_t r = h1_parse_request(in, n, last, &m, NULL);
		if (n < total)
			CHECK_EQ_INT(r, 0);
		else
			CHECK_EQ_INT(r, (ssize_t)total);
		last = n;
	}
	CHECK_EQ_MEM(m.path.p, m.path.len, "/x");
}

TEST(h1_request_limits)
{
	static char big[40000];
	struct h1_limits lim = {
		.max_head_bytes = 1024, .max_request_line = 256, .max_header_fields = 3};
	struct h1_msg m;

	/* request line too long, even before the head is complete */
	memset(big, 'a', sizeof(big));
	memcpy(big, "GET /", 5);
	CHECK(parse_req(big, 300, &m, &lim) < 0);
	CHECK_EQ_INT(m.err_status, 414);
	/* a line just at the limit is fine while incomplete */
	CHECK_EQ_INT(parse_req(big, 200, &m, &lim), 0);
	/* head too large without an end: 431 */
	int n = snprintf(big, sizeof(big), "GET / HTTP/1.1\r\nHost: a\r\nX: ");
	memset(big + n, 'b', 2000);
	CHECK(parse_req(big, (size_t)n + 2000, &m, &lim) < 0);
	CHECK_EQ_INT(m.err_status, 431);
	/* too many fields */
	const char *many = "GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n";
	CHECK(parse_req(many, strlen(many), &m, &lim) < 0);
	CHECK_EQ_INT(m.err_status, 431);
}

struct resp_case {
	const char *name;
	const char *in;
	bool head;
	int status; /* the parsed status, or -1 for an error */
	enum h1_body body;
	bool keep_alive;
};

#define RBAD(n, in)                                                                                \
	{                                                                                          \
		n, in, false, -1, H1_BODY_NONE, false                                              \
	}

static const struct resp_case resp_cases[] = {
	{"ok length", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n", false, 200, H1_BODY_LENGTH,
	 true},
	{"chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", false, 200,
	 H1_BODY_CHUNKED, true},
	{"eof", "HTTP/1.1 200 OK\r\n\r\n", false, 200, H1_BODY_EOF, false},
	{"no reason", "HTTP/1.1 204\r\n\r\n", false, 204, H1_BODY_NONE, true},
	{"empty reason", "HTTP/1.1 404 \r\nContent-Length: 0\r\n\r\n", false, 404, H1_BODY_NONE,
	 true},
	{"head response", "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", true, 200, H1_BODY_NONE,
	 true},
	{"304", "HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n", false, 304, H1_BODY_NONE,
	 true},
	{"100", "HTTP/1.1 100 Continue\r\n\r\n", false, 100, H1_BODY_NONE, true},
	{"1.0 close", "HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n", false, 200, H1_BODY_LENGTH,
	 false},
	RBAD("CL and TE",
	     "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n"),
	RBAD("double CL", "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n"),
	RBAD("bad status", "HTTP/1.1 2000 OK\r\n\r\n"),
	RBAD("obs-fold", "HTTP/1.1 200 OK\r\nA: b\r\n c\r\n\r\n"),
	RBAD("unknown coding", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"),
};

TEST(h1_response_table)
{
	for (size_t i = 0; i < sizeof(resp_cases) / sizeof(resp_cases[0]); i++) {
		const struct resp_case *c = &resp_cases[i];
		struct h1_msg m = {.headers = hdrs, .max_headers = 128};
		ssize_t r = h1_parse_response(c->in, strlen(c->in), 0, &m, NULL, c->head);
		if (c->status < 0) {
			if (r >= 0)
				fprintf(stderr, "  case '%s' accepted\n", c->name);
			CHECK(r < 0);
			CHECK_EQ_INT(m.err_status, 502);
			continue;
		}
		if (r != (ssize_t)strlen(c->in))
			fprintf(stderr, "  case '%s': r=%zd (%s)\n", c->name, r,
				m.error ? m.error : "");
		CHECK_EQ_INT(r, (ssize_t)strlen(c->in));
		CHECK_EQ_INT(m.status, c->status);
		CHECK_EQ_INT(m.body, c->body);
		CHECK_EQ_INT(m.keep_alive, c->keep_alive);
	}
}

/* Decodes all of in, feeding it in pieces of step bytes; returns 0 and the
 * body in out, or the decoder's error. */
static int decode_all(const char *in, size_t len, size_t step, char *out, size_t *out_len,
		      size_t *consumed)
{
	struct h1_chunked c = {0};
	size_t off = 0, avail = 0;
	*out_len = 0;
	while (!h1_chunked_is_done(&c)) {
		if (avail == 0 || off == avail) {
			if (avail >= len)
				return 1; /* needs more */
			avail = avail + step > len ? len : avail + step;
		}
		struct str d;
		ssize_t r = h1_chunked_decode(&c, in + off, avail - off, &d);
		if (r < 0)
			return (int)r;
		memcpy(out + *out_len, d.p ? d.p : "", d.len);
		*out_len += d.len;
		off += (size_t)r;
		if (r == 0 && d.len == 0 && !h1_chunked_is_done(&c)) {
			if (avail >= len)
				return 1;
			avail = avail + step > len ? len : avail + step;
		}
	}
	*consumed = off;
	return 0;
}

TEST(h1_chunked_decodes_in_any_split)
{
	const char *in = "5\r\nhello\r\n1;name=val;q=\"a b\"\r\n \r\n0A\r\n0123456789\r\n"
			 "0\r\nTrailer-A: x\r\n\r\nNEXT";
	char out[64];
	size_t out_len, consumed;
	for (size_t step = 1; step < 12; step++) {
		CHECK_EQ_INT(decode_all(in, strlen(in), step, out, &out_len, &consumed), 0);
		CHECK_EQ_MEM(out, out_len, "hello 0123456789");
		CHECK_EQ_INT(consumed, strlen(in) - 4);
	}
}

TEST(h1_chunked_rejects_malformed)
{
	static const char *bad[] = {
		"x\r\n",                    /* not hex */
		"\r\n",                     /* empty size */
		"5 \r\nhello\r\n0\r\n\r\n", /* whitespace after size */
		" 5\r\nhello\r\n0\r\n\r\n",
		"-5\r\n",
		"+5\r\n",
		"0x5\r\n",
		"5\nhello\r\n",          /* bare LF */
		"5\r\nhelloXX0\r\n\r\n", /* data longer than size */
		"5\r\nhello\n0\r\n\r\n",
		"5;a b\r\n", /* space in extension */
		";a\r\n",
		"5\r\nhello\r\n0\r\nbad header\r\n\r\n",
		"5\r\nhello\r\n0\r\n fold: x\r\n\r\n",
		"5\r\nhello\r\n0\r\nx\r\n\r\n",
		"1111111111111111\r\n", /* 16 hex digits */
		"5\r\nhello\r\n0\r\n\rX",
	};
	char out[64];
	size_t out_len, consumed;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int r = decode_all(bad[i], strlen(bad[i]), 64, out, &out_len, &consumed);
		if (r >= 0)
			fprintf(stderr, "  accepted bad chunked #%zu\n", i);
		CHECK(r < 0);
	}
}

TEST(h1_chunked_bounds_extensions_and_trailers)
{
	static char in[20000];
	char out[16];
	size_t out_len, consumed;
	int n = snprintf(in, sizeof(in), "1;");
	memset(in + n, 'e', 400);
	memcpy(in + n + 400, "\r\nx\r\n0\r\n\r\n", 11);
	CHECK_EQ_INT(decode_all(in, strlen(in), 4096, out, &out_len, &consumed), -WG_ELIMIT);
	n = snprintf(in, sizeof(in), "0\r\n");
	for (int i = 0; i < 1000; i++)
		n += snprintf(in + n, sizeof(in) - (size_t)n, "T%d: vvvvvvvvvv\r\n", i);
	snprintf(in + n, sizeof(in) - (size_t)n, "\r\n");
	CHECK_EQ_INT(decode_all(in, strlen(in), 4096, out, &out_len, &consumed), -WG_ELIMIT);
}

TEST(h1_chunk_header_encodes_hex)
{
	char b[20];
	size_t n = h1_chunk_header(b, 1);
	CHECK_EQ_MEM(b, n, "1\r\n");
	n = h1_chunk_header(b, 0x1a2b);
	CHECK_EQ_MEM(b, n, "1a2b\r\n");
	n = h1_chunk_header(b, 0xffffffffffffULL);
	CHECK_EQ_MEM(b, n, "ffffffffffff\r\n");
}

TEST(h1_header_helpers)
{
	CHECK(hdr_is_hop_by_hop(STR_LIT("Connection")));
	CHECK(hdr_is_hop_by_hop(STR_LIT("TE")));
	CHECK(hdr_is_hop_by_hop(STR_LIT("transfer-encoding")));
	CHECK(hdr_is_hop_by_hop(STR_LIT("Keep-Alive")));
	CHECK(hdr_is_hop_by_hop(STR_LIT("Upgrade")));
	CHECK(hdr_is_hop_by_hop(STR_LIT("Proxy-Connection")));
	CHECK(!hdr_is_hop_by_hop(STR_LIT("Content-Length")));
	CHECK(!hdr_is_hop_by_hop(STR_LIT("Host")));
	CHECK(hdr_list_has(STR_LIT("a, Close ,b"), STR_LIT("close")));
	CHECK(!hdr_list_has(STR_LIT("closed"), STR_LIT("close")));
	CHECK(hdr_is_token(STR_LIT("X-Good_1")));
	CHECK(!hdr_is_token(STR_LIT("bad name")));
	CHECK(!hdr_is_token(STR_LIT("")));
	CHECK(hdr_is_value(STR_LIT("a b\tc")));
	CHECK(!hdr_is_value(STR_LIT("a\r\nb")));
	CHECK(!hdr_is_value(STR_LIT(" a")));
	CHECK_EQ_STR(h1_reason(421), "Misdirected Request");
	CHECK_EQ_STR(h1_reason(299), "");
}

/*
 * Every byte value placed in and around the framing fields: the parser
 * either refuses the request or reads exactly the framing a strict reader
 * would, never something in between (the smuggling policy).
 */
static bool tchar(int b)
{
	return (b >= '0' && b <= '9') || (b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z') ||
	       (b && strchr("!#$%&'*+-.^_`|~", b));
}

static ssize_t parse_sweep(const char *pre, int b, const char *post, struct h1_msg *m)
{
	static char in[512];
	int n = snprintf(in, sizeof(in), "POST / HTTP/1.1\r\nHost: a\r\n%s", pre);
	in[n++] = (char)b;
	n += snprintf(in + n, sizeof(in) - (size_t)n, "%s\r\n\r\n", post);
	return parse_req(in, (size_t)n, m, NULL);
}

TEST(h1_byte_sweep_around_framing_fields)
{
	struct h1_msg m;
	int bad = 0;
	for (int b = 0; b < 256; b++) {
		/* inside the name: a different field ("Content" for ':'), or refused */
		ssize_t r = parse_sweep("Content", b, "-Length: 5", &m);
		if (r > 0 && ((!tchar(b) && b != ':') || m.body != H1_BODY_NONE))
			bad++;
		/* between name and colon */
		r = parse_sweep("Content-Length", b, ": 5", &m);
		if (r > 0 && (!tchar(b) || m.body != H1_BODY_NONE))
			bad++;
		/* after the value: digits change it, OWS is trimmed, the rest is refused */
		r = parse_sweep("Content-Length: 5", b, "", &m);
		if (r > 0 && !((b >= '0' && b <= '9') || b == ' ' || b == '\t'))
			bad++;
		if (r > 0 && (b == ' ' || b == '\t') && m.content_length != 5)
			bad++;
		/* after "chunked": only trimmed whitespace keeps it chunked */
		r = parse_sweep("Transfer-Encoding: chunked", b, "", &m);
		if (r > 0 && !(b == ' ' || b == '\t'))
			bad++;
		if (r < 0 && tchar(b) && m.err_status != 501)
			bad++;
		/* before the field name: obs-fold or garbage is refused */
		r = parse_sweep("", b, "Transfer-Encoding: chunked", &m);
		if (r > 0 && (!tchar(b) || m.body == H1_BODY_CHUNKED))
			bad++;
		/* inside "chunked" */
		r = parse_sweep("Transfer-Encoding: chun", b, "ked", &m);
		if (r > 0)
			bad++;
		if (bad)
			fprintf(stderr, "  byte 0x%02x broke the sweep\n", b);
		CHECK_EQ_INT(bad, 0);
		bad = 0;
	}
}
