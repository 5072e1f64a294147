/* SPDX-License-Identifier: MIT */
/*
 * test_http.c: the kube/ HTTP client's response head parser and chunked
 * decoder (src/kube/http.c), fed whole and byte by byte.
 */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "core/buf.h"
#include "core/err.h"
#include "kube/internal.h"

TEST(kube_http_head_basic)
{
	struct khttp_resp r;
	const char *h = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
			"Content-Length: 12\r\n\r\nbody";
	int n = khttp_parse_head(h, strlen(h), &r);

	CHECK_EQ_INT(n, (int)strlen(h) - 4);
	CHECK_EQ_INT(r.status, 200);
	CHECK(r.has_length && r.length == 12 && !r.chunked && !r.close);
	CHECK_EQ_INT(r.retry_after_s, -1);
	/* incomplete */
	CHECK_EQ_INT(khttp_parse_head(h, 30, &r), 0);
}

TEST(kube_http_head_fields)
{
	struct khttp_resp r;
	const char *h =
		"HTTP/1.1 429 Too Many Requests\r\nRetry-After:  7 \r\n"
		"Transfer-Encoding: chunked\r\nContent-Length: 5\r\nConnection: close\r\n\r\n";

	CHECK(khttp_parse_head(h, strlen(h), &r) > 0);
	CHECK_EQ_INT(r.status, 429);
	CHECK_EQ_INT(r.retry_after_s, 7);
	CHECK(r.chunked && !r.has_length && r.close);
	h = "HTTP/1.0 200 OK\r\n\r\n";
	CHECK(khttp_parse_head(h, strlen(h), &r) > 0);
	CHECK(r.close);
	h = "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n\r\n";
	CHECK(khttp_parse_head(h, strlen(h), &r) > 0);
	CHECK(!r.close);
	h = "HTTP/1.1 503 x\r\nRetry-After: Wed, 21 Oct 2015 07:28:00 GMT\r\n\r\n";
	CHECK(khttp_parse_head(h, strlen(h), &r) > 0);
	CHECK_EQ_INT(r.retry_after_s, -1);
}

TEST(kube_http_head_rejects)
{
	struct khttp_resp r;
	const char *bad[] = {
		"HTTP/2 200 OK\r\n\r\n",
		"HTTP/1.1 20 OK\r\n\r\n",
		"HTTP/1.1 200 OK\r\nBad Header: x\r\n\r\n",
		"HTTP/1.1 200 OK\r\n folded: x\r\n\r\n",
		"HTTP/1.1 200 OK\r\nNoColon\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
		"HTTP/1.1 200 OK\nX: y\r\n\r\n",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CHECK_EQ_INT(khttp_parse_head(bad[i], strlen(bad[i]), &r), -WG_EPROTO);
}

static int collect(void *arg, const char *p, size_t n)
{
	buf_append(arg, p, n);
	return 0;
}

/* Feeds in pieces of `step` bytes (keeping what was not consumed, as the
 * client does) and returns the decoded data, or "ERR". */
static char *dechunk(const char *in, size_t step, enum kchunk_state *end)
{
	struct kchunk st = {0};
	struct buf pend = {0}, out = {0};
	size_t len = strlen(in), off = 0;
	char *res;

	while (off < len && st.st != KCH_DONE) {
		size_t take = len - off < step ? len - off : step;
		long used;

		buf_append(&pend, in + off, take);
		off += take;
		used = kchunk_feed(&st, buf_rptr(&pend), buf_len(&pend), collect, &out);
		if (used < 0) {
			buf_release(&pend);
			buf_release(&out);
			*end = st.st;
			return strdup("ERR");
		}
		buf_consume(&pend, (size_t)used);
	}
	*end = st.st;
	buf_append(&out, "", 1);
	res = strdup(buf_rptr(&out));
	buf_release(&pend);
	buf_release(&out);
	return res;
}

TEST(kube_http_chunked_any_split)
{
	const char *in = "5\r\nhello\r\n1;ext=1\r\n \r\nA\r\n0123456789\r\n0\r\nTrailer: x\r\n\r\n";

	for (size_t step = 1; step <= strlen(in); step++) {
		enum kchunk_state end;
		char *r = dechunk(in, step, &end);

		CHECK_EQ_STR(r, "hello 0123456789");
		CHECK_EQ_INT(end, KCH_DONE);
		free(r);
	}
}

TEST(kube_http_chunked_rejects)
{
	const char *bad[] = {"x\r\nabc\r\n", "3\r\nabcX\r\n", "3\nabc\r\n", "\r\n",
			     "fffffffffffffffff\r\n"};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		enum kchunk_state end;
		char *r = dechunk(bad[i], 64, &end);

		CHECK_EQ_STR(r, "ERR");
		free(r);
	}
}

static int stop_after_first(void *arg, const char *p, size_t n)
{
	(void)p;
	(*(size_t *)arg) += n;
	return 1;
}

TEST(kube_http_chunked_stops_when_asked)
{
	struct kchunk st = {0};
	size_t got = 0;
	const char *in = "3\r\nabc\r\n3\r\ndef\r\n0\r\n\r\n";
	long used = kchunk_feed(&st, in, strlen(in), stop_after_first, &got);

	CHECK_EQ_INT(got, 3);
	CHECK_EQ_INT(used, 6); /* stopped right after the first data */
	CHECK_EQ_INT(st.st, KCH_DATA_CRLF);
}
