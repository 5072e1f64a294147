/* SPDX-License-Identifier: MIT */
/*
 * h1_response.c: fuzz target for the HTTP/1.1 response head parser and the
 * chunked decoder behind it, as the proxy drives them on what a backend
 * sends. The first input byte chooses whether the request was HEAD. Checks:
 * resumed parsing agrees with the one-shot parse, every view stays inside
 * the input, errors carry 502, and the decoder never reports data outside
 * its input or consumes more than it was given.
 */
#include <stdlib.h>
#include <string.h>

#include "http/h1.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

static void in_bounds(struct str v, const char *buf, size_t n)
{
	if (v.len && (v.p < buf || v.p + v.len > buf + n))
		abort();
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	struct h1_header hdrs[64];
	struct h1_msg m = {.headers = hdrs, .max_headers = 64};
	struct h1_limits lim = {.max_head_bytes = 8192, .max_header_fields = 64};

	if (size < 1 || size > 65536)
		return 0;
	bool head = data[0] & 1;
	const char *buf = (const char *)data + 1;
	size_t len = size - 1;
	ssize_t whole = h1_parse_response(buf, len, 0, &m, &lim, head);
	if (whole < 0 && m.err_status != 502)
		abort();
	if (whole > 0) {
		in_bounds(m.reason, buf, len);
		for (size_t i = 0; i < m.n_headers; i++) {
			in_bounds(m.headers[i].name, buf, len);
			in_bounds(m.headers[i].value, buf, len);
		}
		if (m.status < 100 || m.status > 599)
			abort();
	}
	size_t last = 0;
	ssize_t r = 0;
	for (size_t n = 1; n <= len; n += 5) {
		r = h1_parse_response(buf, n, last, &m, &lim, head);
		last = n;
		if (r != 0)
			break;
	}
	if (r == 0 && last != len)
		r = h1_parse_response(buf, len, last, &m, &lim, head);
	if ((whole > 0) != (r > 0) || (whole > 0 && whole != r))
		abort();
	if (whole > 0 && m.body == H1_BODY_CHUNKED) {
		struct h1_chunked c = {0};
		size_t off = (size_t)whole;
		while (off < len && !h1_chunked_is_done(&c)) {
			struct str d;
			ssize_t k = h1_chunked_decode(&c, buf + off, len - off, &d);
			if (k < 0)
				break;
			if ((size_t)k > len - off)
				abort();
			in_bounds(d, buf + off, (size_t)k);
			if (k == 0 && !d.len)
				break;
			off += (size_t)k;
		}
	}
	return 0;
}
