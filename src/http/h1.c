/* SPDX-License-Identifier: MIT */
/*
 * h1.c: the strict HTTP/1.1 head parsers, the chunked codec and the header
 * helpers declared in h1.h. Heads are found first (a memchr scan of the new
 * bytes for the blank line, failing early on a bare LF and on the size
 * limits) and then parsed in one pass; nothing is allocated and every result
 * is a view into the caller's buffer. This file knows nothing of sockets,
 * routing or proxying, and it never rewrites the input. Any thread.
 */
#include <errno.h>
#include <string.h>

#include "core/err.h"
#include "http/h1.h"

/* RFC 9110 tchar: "!#$%&'*+-.^_`|~" DIGIT ALPHA. */
static const unsigned char tchar_tab[256] = {
	['!'] = 1, ['#'] = 1, ['$'] = 1, ['%'] = 1, ['&'] = 1, ['\''] = 1, ['*'] = 1, ['+'] = 1,
	['-'] = 1, ['.'] = 1, ['^'] = 1, ['_'] = 1, ['`'] = 1, ['|'] = 1,  ['~'] = 1, ['0'] = 1,
	['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1, ['6'] = 1,  ['7'] = 1, ['8'] = 1,
	['9'] = 1, ['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1,  ['F'] = 1, ['G'] = 1,
	['H'] = 1, ['I'] = 1, ['J'] = 1, ['K'] = 1, ['L'] = 1, ['M'] = 1,  ['N'] = 1, ['O'] = 1,
	['P'] = 1, ['Q'] = 1, ['R'] = 1, ['S'] = 1, ['T'] = 1, ['U'] = 1,  ['V'] = 1, ['W'] = 1,
	['X'] = 1, ['Y'] = 1, ['Z'] = 1, ['a'] = 1, ['b'] = 1, ['c'] = 1,  ['d'] = 1, ['e'] = 1,
	['f'] = 1, ['g'] = 1, ['h'] = 1, ['i'] = 1, ['j'] = 1, ['k'] = 1,  ['l'] = 1, ['m'] = 1,
	['n'] = 1, ['o'] = 1, ['p'] = 1, ['q'] = 1, ['r'] = 1, ['s'] = 1,  ['t'] = 1, ['u'] = 1,
	['v'] = 1, ['w'] = 1, ['x'] = 1, ['y'] = 1, ['z'] = 1,
};

static inline bool is_tchar(unsigned char c)
{
	return tchar_tab[c];
}
/* field-vchar / obs-text, SP and HTAB */
static inline bool is_value_char(unsigned char c)
{
	return c >= 0x20 ? c != 0x7f : c == '\t';
}
static inline bool is_ows(char c)
{
	return c == ' ' || c == '\t';
}

#define DEF_HEAD 16384u
#define DEF_LINE 8192u
#define DEF_FIELDS 100u

static int fail(struct h1_msg *m, int status, const char *why)
{
	m->err_status = status;
	m->error = why;
	return -WG_EPROTO;
}

static struct str trim_ows(const char *p, size_t n)
{
	while (n && is_ows(p[0])) {
		p++;
		n--;
	}
	while (n && is_ows(p[n - 1]))
		n--;
	return (struct str){p, n};
}

bool hdr_is_token(struct str s)
{
	if (!s.len)
		return false;
	for (size_t i = 0; i < s.len; i++)
		if (!is_tchar((unsigned char)s.p[i]))
			return false;
	return true;
}

bool hdr_is_value(struct str s)
{
	if (s.len && (is_ows(s.p[0]) || is_ows(s.p[s.len - 1])))
		return false;
	for (size_t i = 0; i < s.len; i++)
		if (!is_value_char((unsigned char)s.p[i]))
			return false;
	return true;
}

/*
 * Calls fn on every element of a comma-separated list, trimmed. Empty
 * elements are reported too (as len 0) so that strict callers can refuse
 * them. Stops early when fn returns non-zero and returns that value.
 */
typedef int (*list_cb)(struct str elem, void *arg);
static int list_each(struct str list, list_cb fn, void *arg)
{
	size_t start = 0;
	for (size_t i = 0; i <= list.len; i++) {
		if (i == list.len || list.p[i] == ',') {
			int r = fn(trim_ows(list.p + start, i - start), arg);
			if (r)
				return r;
			start = i + 1;
		}
	}
	return 0;
}

struct list_find {
	struct str token;
};

static int find_cb(struct str e, void *arg)
{
	struct list_find *f = arg;
	return str_case_eq(e, f->token) ? 1 : 0;
}

bool hdr_list_has(struct str list, struct str token)
{
	struct list_find f = {token};
	return list_each(list, find_cb, &f) == 1;
}

ssize_t hdr_find(const struct h1_header *h, size_t n, struct str name, size_t from)
{
	for (size_t i = from; i < n; i++)
		if (h[i].name.len == name.len && str_case_eq(h[i].name, name))
			return (ssize_t)i;
	return -1;
}

bool hdr_is_hop_by_hop(struct str name)
{
	switch (name.len) {
	case 2: return str_case_eq_c(name, "te");
	case 7: return str_case_eq_c(name, "trailer") || str_case_eq_c(name, "upgrade");
	case 10: return str_case_eq_c(name, "connection") || str_case_eq_c(name, "keep-alive");
	case 16: return str_case_eq_c(name, "proxy-connection");
	case 17: return str_case_eq_c(name, "transfer-encoding");
	default: return false;
	}
}

bool hdr_is_listed_in_connection(const struct h1_header *h, size_t n, struct str name)
{
	for (ssize_t i = hdr_find(h, n, STR_LIT("connection"), 0); i >= 0;
	     i = hdr_find(h, n, STR_LIT("connection"), (size_t)i + 1))
		if (hdr_list_has(h[i].value, name))
			return true;
	return false;
}

/* ---- finding the end of a head ---- */

/* Bytes of empty lines (CRLF pairs) before the start line. */
static size_t skip_empty_lines(const char *buf, size_t len)
{
	size_t i = 0;
	while (i + 1 < len && buf[i] == '\r' && buf[i + 1] == '\n')
		i += 2;
	return i;
}

/*
 * Looks for CRLF CRLF in buf[from..len) (from already backed off so that a
 * terminator split across reads is found). Returns the head length through
 * the terminator, 0 if not there yet, or -1 on a bare LF.
 */
static ssize_t find_head_end(const char *buf, size_t start, size_t from, size_t len)
{
	const char *p = buf + from, *end = buf + len;
	while (p < end) {
		const char *lf = memchr(p, '\n', (size_t)(end - p));
		if (!lf)
			return 0;
		if (lf == buf + start || lf[-1] != '\r')
			return -1;
		if (lf - (buf + start) >= 3 && lf[-2] == '\n' && lf[-3] == '\r')
			return lf + 1 - buf;
		p = lf + 1;
	}
	return 0;
}

/* ---- header fields ---- */

/*
 * Parses header lines from buf[pos..end), end being one past the final
 * CRLF. Fills m->headers. Returns 0 or an error (m->err_status set).
 */
static int parse_fields(const char *buf, size_t pos, size_t end, struct h1_msg *m,
			size_t max_fields, int bad_status)
{
	m->n_headers = 0;
	while (pos < end) {
		const char *line = buf + pos;
		if (line[0] == '\r') {
			/* the final empty line: the scan guaranteed CRLF at end */
			if (pos + 2 != end || line[1] != '\n')
				return fail(m, bad_status, "bare CR in head");
			return 0;
		}
		if (is_ows(line[0]))
			return fail(m, bad_status, "obs-fold or whitespace before a field name");
		size_t i = pos;
		while (i < end && is_tchar((unsigned char)buf[i]))
			i++;
		if (i == pos || i >= end || buf[i] != ':')
			return fail(m, bad_status,
				    i < end && is_ows(buf[i]) ? "whitespace before colon"
							      : "invalid character in field name");
		struct str name = {line, i - pos};
		i++;
		size_t vstart = i;
		for (;;) {
			unsigned char c = (unsigned char)buf[i];
			if (c == '\r') {
				if (buf[i + 1] != '\n')
					return fail(m, bad_status, "bare CR in field value");
				break;
			}
			if (!is_value_char(c))
				return fail(m, bad_status, "control character in field value");
			i++;
		}
		if (m->n_headers >= max_fields)
			return fail(m, bad_status == 502 ? 502 : 431, "too many header fields");
		m->headers[m->n_headers].name = name;
		m->headers[m->n_headers].value = trim_ows(buf + vstart, i - vstart);
		m->n_headers++;
		pos = i + 2;
	}
	return fail(m, bad_status, "unterminated head");
}

/* Shared framing and semantic checks over the parsed fields. */
struct te_state {
	int n_chunked;
	bool last_chunked;
	bool unknown;
	bool invalid;
};

static int te_cb(struct str e, void *arg)
{
	struct te_state *t = arg;
	if (!e.len || !hdr_is_token(e)) {
		t->invalid = true;
		return 1;
	}
	if (str_case_eq_c(e, "chunked")) {
		t->n_chunked++;
		t->last_chunked = true;
	} else {
		t->unknown = true;
		t->last_chunked = false;
	}
	return 0;
}

struct conn_state {
	unsigned flags;
	bool invalid;
};

static int conn_cb(struct str e, void *arg)
{
	struct conn_state *c = arg;
	if (!e.len)
		return 0; /* "a, , b" is allowed for Connection; harmless */
	if (!hdr_is_token(e))
		c->invalid = true;
	else if (str_case_eq_c(e, "close"))
		c->flags |= H1_CONN_CLOSE;
	else if (str_case_eq_c(e, "keep-alive"))
		c->flags |= H1_CONN_KEEP_ALIVE;
	else if (str_case_eq_c(e, "upgrade"))
		c->flags |= H1_CONN_UPGRADE;
	else
		c->flags |= H1_CONN_OTHER;
	return 0;
}

static bool is_digits(struct str s)
{
	if (!s.len)
		return false;
	for (size_t i = 0; i < s.len; i++)
		if (s.p[i] < '0' || s.p[i] > '9')
			return false;
	return true;
}

/* Host: uri-host [ ":" port ], reg-name/IPv4/IP-literal characters only. */
static bool host_is_valid(struct str h)
{
	if (!h.len)
		return false;
	for (size_t i = 0; i < h.len; i++) {
		unsigned char c = (unsigned char)h.p[i];
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
			continue;
		if (strchr("-._~!$&'()*+,;=:[]%", c) && c)
			continue;
		return false;
	}
	return true;
}

struct fields_info {
	int n_host, n_cl, n_te;
	struct str cl;
	struct te_state te;
	bool expect_other;
};

static int scan_fields(struct h1_msg *m, struct fields_info *fi, int bad_status)
{
	struct conn_state cs = {0};

	memset(fi, 0, sizeof(*fi));
	for (size_t k = 0; k < m->n_headers; k++) {
		struct str n = m->headers[k].name, v = m->headers[k].value;
		switch (n.len) {
		case 4:
			if (str_case_eq_c(n, "host")) {
				fi->n_host++;
				m->host = v;
			}
			break;
		case 6:
			if (str_case_eq_c(n, "expect")) {
				if (str_case_eq_c(v, "100-continue"))
					m->expect_continue = true;
				else
					fi->expect_other = true;
			}
			break;
		case 7:
			if (str_case_eq_c(n, "upgrade"))
				m->has_upgrade = true;
			break;
		case 10:
			if (str_case_eq_c(n, "connection"))
				list_each(v, conn_cb, &cs);
			break;
		case 14:
			if (str_case_eq_c(n, "content-length")) {
				fi->n_cl++;
				fi->cl = v;
			}
			break;
		case 17:
			if (str_case_eq_c(n, "transfer-encoding")) {
				fi->n_te++;
				list_each(v, te_cb, &fi->te);
			}
			break;
		default: break;
		}
	}
	if (cs.invalid)
		return fail(m, bad_status, "invalid Connection header");
	m->conn_flags = cs.flags;
	if (fi->n_cl > 1)
		return fail(m, bad_status, "repeated Content-Length");
	if (fi->n_cl) {
		uint64_t v;
		if (!is_digits(fi->cl) || str_to_u64(fi->cl, UINT64_MAX / 2, &v))
			return fail(m, bad_status, "invalid Content-Length");
		m->content_length = v;
	}
	if (fi->n_te && fi->n_cl)
		return fail(m, bad_status, "Content-Length with Transfer-Encoding");
	if (fi->te.invalid)
		return fail(m, bad_status, "invalid Transfer-Encoding");
	return 0;
}

static int parse_version(const char *p, size_t n, struct h1_msg *m, int bad_status)
{
	if (n != 8 || memcmp(p, "HTTP/", 5) != 0 || p[6] != '.' || p[5] < '0' || p[5] > '9' ||
	    p[7] < '0' || p[7] > '9')
		return fail(m, bad_status, "invalid HTTP version");
	if (p[5] != '1')
		return fail(m, bad_status == 502 ? 502 : 505, "HTTP version not supported");
	m->minor = p[7] == '0' ? 0 : 1;
	return 0;
}

static void reset_msg(struct h1_msg *m)
{
	struct h1_header *h = m->headers;
	size_t max = m->max_headers;
	memset(m, 0, sizeof(*m));
	m->headers = h;
	m->max_headers = max;
}

/* ---- requests ---- */

static int parse_target(struct h1_msg *m)
{
	struct str t = m->target;

	if (t.p[0] == '/') {
		m->form = H1_FORM_ORIGIN;
		m->path = t;
		return 0;
	}
	if (t.len == 1 && t.p[0] == '*') {
		if (!str_eq_c(m->method, "OPTIONS"))
			return fail(m, 400, "asterisk-form outside OPTIONS");
		m->form = H1_FORM_ASTERISK;
		m->path = t;
		return 0;
	}
	if (str_eq_c(m->method, "CONNECT")) {
		m->form = H1_FORM_AUTHORITY;
		m->authority = t;
		return fail(m, 501, "CONNECT not supported");
	}
	size_t i = 0;
	while (i < t.len && ((t.p[i] | 0x20) >= 'a' && (t.p[i] | 0x20) <= 'z'))
		i++;
	struct str scheme = {t.p, i};
	if (i + 3 > t.len || memcmp(t.p + i, "://", 3) != 0 ||
	    !(str_case_eq_c(scheme, "http") || str_case_eq_c(scheme, "https")))
		return fail(m, 400, "invalid request-target");
	size_t a = i + 3, e = a;
	while (e < t.len && t.p[e] != '/' && t.p[e] != '?')
		e++;
	struct str auth = {t.p + a, e - a};
	if (!auth.len || memchr(auth.p, '@', auth.len) || !host_is_valid(auth))
		return fail(m, 400, "invalid authority in absolute-form");
	if (e < t.len && t.p[e] == '?')
		return fail(m, 400, "absolute-form without a path");
	m->form = H1_FORM_ABSOLUTE;
	m->authority = auth;
	m->path = e < t.len ? (struct str){t.p + e, t.len - e} : STR_LIT("/");
	return 0;
}

ssize_t h1_parse_request(const char *buf, size_t len, size_t last_len, struct h1_msg *m,
			 const struct h1_limits *lim)
{
	size_t max_head = lim && lim->max_head_bytes ? lim->max_head_bytes : DEF_HEAD;
	size_t max_line = lim && lim->max_request_line ? lim->max_request_line : DEF_LINE;
	size_t max_fields = lim && lim->max_header_fields ? lim->max_header_fields : DEF_FIELDS;
	struct fields_info fi;

	if (max_fields > m->max_headers)
		max_fields = m->max_headers;
	reset_msg(m);
	size_t start = skip_empty_lines(buf, len);
	if (start > max_head)
		return fail(m, 400, "too many empty lines");
	if (start == len)
		return 0;
	if (buf[start] == '\r' && start + 1 < len)
		return fail(m, 400, "bare CR before request line");
	size_t from = last_len > start + 3 ? last_len - 3 : start;
	ssize_t end = find_head_end(buf, start, from, len);
	if (end < 0)
		return fail(m, 400, "bare LF in head");
	const char *lf = memchr(buf + start, '\n', (end ? (size_t)end : len) - start);
	size_t line_len = lf ? (size_t)(lf - (buf + start)) : len - start;
	if (line_len > max_line)
		return fail(m, 414, "request line too long");
	if (end == 0) {
		if (len - start > max_head)
			return fail(m, 431, "request head too large");
		return 0;
	}
	if ((size_t)end - start > max_head)
		return fail(m, 431, "request head too large");

	/* request line: method SP target SP version CRLF */
	const char *p = buf + start, *le = lf - 1; /* le: the CR */
	const char *q = p;
	while (q < le && is_tchar((unsigned char)*q))
		q++;
	if (q == p || q == le || *q != ' ')
		return fail(m, 400, "invalid method");
	m->method = (struct str){p, (size_t)(q - p)};
	p = ++q;
	while (q < le && (unsigned char)*q > 0x20 && (unsigned char)*q < 0x7f && *q != '#')
		q++;
	if (q == p)
		return fail(m, 400, "empty request-target");
	if (q == le)
		return fail(m, 400, "HTTP/0.9 request");
	if (*q != ' ')
		return fail(m, 400, "invalid character in request-target");
	m->target = (struct str){p, (size_t)(q - p)};
	q++;
	if (parse_version(q, (size_t)(le - q), m, 400))
		return -WG_EPROTO;
	if (parse_fields(buf, (size_t)(lf + 1 - buf), (size_t)end, m, max_fields, 400))
		return -WG_EPROTO;
	if (scan_fields(m, &fi, 400))
		return -WG_EPROTO;
	if (parse_target(m))
		return -WG_EPROTO;
	if (fi.n_host > 1)
		return fail(m, 400, "repeated Host");
	if (fi.n_host && !host_is_valid(m->host))
		return fail(m, 400, "invalid Host");
	if (m->minor == 1 && !fi.n_host)
		return fail(m, 400, "missing Host");
	if (m->form == H1_FORM_ABSOLUTE) {
		if (fi.n_host && !str_case_eq(m->host, m->authority))
			return fail(m, 400, "Host differs from the absolute-form authority");
		m->host = m->authority;
	}
	if (fi.n_te) {
		if (m->minor == 0)
			return fail(m, 400, "Transfer-Encoding in an HTTP/1.0 request");
		if (fi.te.unknown)
			return fail(m, 501, "unsupported transfer coding");
		if (fi.te.n_chunked != 1 || !fi.te.last_chunked)
			return fail(m, 400, "chunked is not the single final transfer coding");
		m->body = H1_BODY_CHUNKED;
	} else if (fi.n_cl && m->content_length) {
		m->body = H1_BODY_LENGTH;
	}
	if (fi.expect_other)
		return fail(m, 417, "unsupported expectation");
	if (m->minor == 0 && m->expect_continue)
		m->expect_continue = false; /* RFC 9110 10.1.1: ignore for HTTP/1.0 */
	m->keep_alive = m->minor == 1 ? !(m->conn_flags & H1_CONN_CLOSE)
				      : (m->conn_flags & H1_CONN_KEEP_ALIVE) &&
						!(m->conn_flags & H1_CONN_CLOSE);
	m->head_len = (size_t)end;
	return end;
}

/* ---- responses ---- */

ssize_t h1_parse_response(const char *buf, size_t len, size_t last_len, struct h1_msg *m,
			  const struct h1_limits *lim, bool head_request)
{
	size_t max_head = lim && lim->max_head_bytes ? lim->max_head_bytes : DEF_HEAD;
	size_t max_fields = lim && lim->max_header_fields ? lim->max_header_fields : DEF_FIELDS;
	struct fields_info fi;

	if (max_fields > m->max_headers)
		max_fields = m->max_headers;
	reset_msg(m);
	size_t from = last_len > 3 ? last_len - 3 : 0;
	ssize_t end = find_head_end(buf, 0, from, len);
	if (end < 0)
		return fail(m, 502, "bare LF in response head");
	if (end == 0) {
		if (len > max_head)
			return fail(m, 502, "response head too large");
		return 0;
	}
	if ((size_t)end > max_head)
		return fail(m, 502, "response head too large");
	const char *lf = memchr(buf, '\n', (size_t)end), *le = lf - 1;
	size_t ll = (size_t)(le - buf);
	if (ll < 12 || buf[8] != ' ')
		return fail(m, 502, "invalid status line");
	if (parse_version(buf, 8, m, 502))
		return -WG_EPROTO;
	if (buf[9] < '1' || buf[9] > '5' || buf[10] < '0' || buf[10] > '9' || buf[11] < '0' ||
	    buf[11] > '9')
		return fail(m, 502, "invalid status code");
	m->status = (buf[9] - '0') * 100 + (buf[10] - '0') * 10 + (buf[11] - '0');
	if (ll > 12) {
		if (buf[12] != ' ')
			return fail(m, 502, "invalid status line");
		for (const char *r = buf + 13; r < le; r++)
			if (!is_value_char((unsigned char)*r))
				return fail(m, 502, "invalid reason phrase");
		m->reason = (struct str){buf + 13, (size_t)(le - buf - 13)};
	}
	if (parse_fields(buf, (size_t)(lf + 1 - buf), (size_t)end, m, max_fields, 502))
		return -WG_EPROTO;
	if (scan_fields(m, &fi, 502))
		return -WG_EPROTO;
	bool no_body = head_request || m->status < 200 || m->status == 204 || m->status == 304;
	if (fi.n_te) {
		if (fi.te.unknown)
			return fail(m, 502, "unsupported transfer coding in response");
		if (fi.te.n_chunked != 1 || !fi.te.last_chunked)
			return fail(m, 502, "chunked is not the single final transfer coding");
		m->body = H1_BODY_CHUNKED;
	} else if (fi.n_cl) {
		m->body = m->content_length ? H1_BODY_LENGTH : H1_BODY_NONE;
	} else {
		m->body = H1_BODY_EOF;
	}
	if (no_body)
		m->body = H1_BODY_NONE;
	m->keep_alive = m->body != H1_BODY_EOF &&
			(m->minor == 1 ? !(m->conn_flags & H1_CONN_CLOSE)
				       : (m->conn_flags & H1_CONN_KEEP_ALIVE) &&
						 !(m->conn_flags & H1_CONN_CLOSE));
	m->head_len = (size_t)end;
	return end;
}

/* ---- chunked coding ---- */

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c |= 0x20;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

ssize_t h1_chunked_decode(struct h1_chunked *c, const char *p, size_t len, struct str *data)
{
	size_t i = 0;

	data->p = NULL;
	data->len = 0;
	while (i < len) {
		char ch = p[i];
		switch (c->state) {
		case H1_CH_SIZE:
			if (c->saw_cr) {
				if (ch != '\n')
					return -WG_EPROTO;
				i++;
				c->saw_cr = false;
				c->line_len = 0;
				c->in_ext = false;
				if (c->n_digits == 0)
					return -WG_EPROTO;
				c->n_digits = 0;
				if (c->remaining == 0) {
					c->state = H1_CH_TRAILER;
				} else {
					c->state = H1_CH_DATA;
				}
				break;
			}
			if (++c->line_len > H1_CHUNK_LINE_MAX)
				return -WG_ELIMIT;
			if (ch == '\r') {
				if (c->in_quote)
					return -WG_EPROTO;
				c->saw_cr = true;
				i++;
				break;
			}
			if (!c->in_ext) {
				int v = hexval(ch);
				if (v >= 0) {
					/* 16 hex digits would overflow; 15 is plenty */
					if (c->n_digits >= 15)
						return -WG_ELIMIT;
					c->remaining = c->remaining * 16 + (uint64_t)v;
					c->n_digits++;
				} else if (ch == ';' && c->n_digits) {
					c->in_ext = true;
				} else {
					return -WG_EPROTO;
				}
				i++;
				break;
			}
			/* chunk-ext: ;name[=token|quoted-string], no whitespace */
			if (c->in_quote) {
				if (c->quote_esc)
					c->quote_esc = false;
				else if (ch == '\\')
					c->quote_esc = true;
				else if (ch == '"')
					c->in_quote = false;
				else if (!is_value_char((unsigned char)ch))
					return -WG_EPROTO;
			} else if (ch == '"') {
				c->in_quote = true;
			} else if (!(is_tchar((unsigned char)ch) || ch == ';' || ch == '=')) {
				return -WG_EPROTO;
			}
			i++;
			break;
		case H1_CH_DATA: {
			size_t n = len - i;
			if (n > c->remaining)
				n = (size_t)c->remaining;
			c->remaining -= n;
			c->total += n;
			if (c->remaining == 0)
				c->state = H1_CH_DATA_CR;
			data->p = p + i;
			data->len = n;
			return (ssize_t)(i + n);
		}
		case H1_CH_DATA_CR:
			if (ch != '\r')
				return -WG_EPROTO;
			c->state = H1_CH_DATA_LF;
			i++;
			break;
		case H1_CH_DATA_LF:
			if (ch != '\n')
				return -WG_EPROTO;
			c->state = H1_CH_SIZE;
			i++;
			break;
		case H1_CH_TRAILER:
			/* line by line; an empty line ends the body */
			if (c->saw_cr) {
				if (ch != '\n')
					return -WG_EPROTO;
				i++;
				c->saw_cr = false;
				if (c->line_len == 0) {
					c->state = H1_CH_DONE;
					return (ssize_t)i;
				}
				c->line_len = 0;
				c->in_ext = false;
				break;
			}
			if (++c->trailer_len > H1_TRAILER_MAX)
				return -WG_ELIMIT;
			if (ch == '\r') {
				if (c->line_len && !c->in_ext)
					return -WG_EPROTO; /* field without a colon */
				c->saw_cr = true;
				i++;
				break;
			}
			if (c->line_len == 0 && is_ows(ch))
				return -WG_EPROTO; /* obs-fold */
			if (!c->in_ext) {
				/* in_ext doubles as "past the colon" for trailers */
				if (ch == ':' && c->line_len)
					c->in_ext = true;
				else if (!is_tchar((unsigned char)ch))
					return -WG_EPROTO;
			} else if (!is_value_char((unsigned char)ch)) {
				return -WG_EPROTO;
			}
			c->line_len++;
			i++;
			break;
		case H1_CH_DONE: return (ssize_t)i;
		}
	}
	return (ssize_t)i;
}

int h1_body_iov(struct iovec *iov, char *hdr, const void *p, size_t n, bool chunked)
{
	if (!chunked) {
		iov[0] = (struct iovec){(void *)(uintptr_t)p, n};
		return 1;
	}
	iov[0] = (struct iovec){hdr, h1_chunk_header(hdr, n)};
	iov[1] = (struct iovec){(void *)(uintptr_t)p, n};
	iov[2] = (struct iovec){(void *)(uintptr_t) "\r\n", 2};
	return 3;
}

size_t h1_chunk_header(char *out, uint64_t n)
{
	char tmp[16];
	size_t k = 0;
	do {
		tmp[k++] = "0123456789abcdef"[n & 15];
		n >>= 4;
	} while (n);
	for (size_t i = 0; i < k; i++)
		out[i] = tmp[k - 1 - i];
	out[k] = '\r';
	out[k + 1] = '\n';
	return k + 2;
}

const char *h1_reason(int status)
{
	switch (status) {
	case 100: return "Continue";
	case 101: return "Switching Protocols";
	case 200: return "OK";
	case 201: return "Created";
	case 202: return "Accepted";
	case 204: return "No Content";
	case 206: return "Partial Content";
	case 301: return "Moved Permanently";
	case 302: return "Found";
	case 303: return "See Other";
	case 304: return "Not Modified";
	case 307: return "Temporary Redirect";
	case 308: return "Permanent Redirect";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 411: return "Length Required";
	case 413: return "Content Too Large";
	case 414: return "URI Too Long";
	case 417: return "Expectation Failed";
	case 421: return "Misdirected Request";
	case 429: return "Too Many Requests";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	case 505: return "HTTP Version Not Supported";
	default: return "";
	}
}
