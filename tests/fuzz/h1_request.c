/* SPDX-License-Identifier: MIT */
/*
 * h1_request.c: fuzz target for the HTTP/1.1 request parser and the chunked
 * decoder behind it. The input is parsed as one request head, resumed at
 * every split point of a small stride, and the bytes after the head are fed
 * to the chunked decoder when the head asks for chunked. Invariants checked:
 * the parse result does not depend on how the bytes were split, views stay
 * inside the input, and errors always carry a status.
 * Built with -fsanitize=fuzzer it is a libFuzzer target; the replay build
 * (mk/fuzz-replay.c) runs it over tests/fuzz/corpus/h1_request/.
 */
#include <stdlib.h>
#include <string.h>

#include "http/h1.h"

#define CHECK_IN(v, buf, n)                                                                        \
	do {                                                                                       \
		if ((v).len && ((v).p < (buf) || (v).p + (v).len > (buf) + (n)))                   \
			abort();                                                                   \
	} while (0)

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	struct h1_header hdrs[64];
	struct h1_msg m = {.headers = hdrs, .max_headers = 64};
	struct h1_limits lim = {
		.max_head_bytes = 4096, .max_request_line = 1024, .max_header_fields = 64};
	const char *buf = (const char *)data;

	if (size > 65536)
		return 0;
	ssize_t whole = h1_parse_request(buf, size, 0, &m, &lim);
	int whole_status = m.err_status;
	if (whole < 0 && !m.err_status)
		abort();
	if (whole > 0) {
		CHECK_IN(m.method, buf, size);
		if (!(m.form == H1_FORM_ABSOLUTE && m.path.len == 1))
			CHECK_IN(m.path, buf, size); /* else the static "/" */
		CHECK_IN(m.host, buf, size);
		for (size_t i = 0; i < m.n_headers; i++) {
			CHECK_IN(m.headers[i].name, buf, size);
			CHECK_IN(m.headers[i].value, buf, size);
		}
	}
	/* resumed parsing must agree with the one-shot parse */
	size_t last = 0;
	ssize_t r = 0;
	for (size_t n = 1; n <= size; n += 7) {
		r = h1_parse_request(buf, n, last, &m, &lim);
		last = n;
		if (r != 0)
			break;
	}
	if (r == 0 && last != size)
		r = h1_parse_request(buf, size, last, &m, &lim);
	if ((whole > 0) != (r > 0) || (whole > 0 && whole != r))
		abort();
	if (whole < 0 && r < 0 && whole_status != m.err_status) {
		/* a prefix may hit a limit (414/431) before the full error shows */
		if (m.err_status != 414 && m.err_status != 431)
			abort();
	}
	if (whole > 0) {
		struct h1_msg m2 = {.headers = hdrs, .max_headers = 64};
		h1_parse_request(buf, size, 0, &m2, &lim);
		if (m2.body == H1_BODY_CHUNKED) {
			struct h1_chunked c = {0};
			size_t off = (size_t)whole;
			while (off < size && !h1_chunked_is_done(&c)) {
				struct str d;
				ssize_t k = h1_chunked_decode(&c, buf + off, size - off, &d);
				if (k < 0)
					break;
				CHECK_IN(d, buf, size);
				if (k == 0 && !d.len)
					break;
				off += (size_t)k;
			}
		}
	}
	return 0;
}
