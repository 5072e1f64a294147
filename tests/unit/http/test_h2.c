/* SPDX-License-Identifier: MIT */
/*
 * Tests of http/h2.c: a client and a server session wired back to back in
 * process (no sockets): a request with a body and a response with trailers
 * go through nghttp2 both ways; received data is acknowledged only through
 * h2_consume; and each flood (rapid reset, CONTINUATION, HPACK bomb,
 * SETTINGS, PING, empty DATA) makes the server fail with -WG_ELIMIT and
 * queue GOAWAY ENHANCE_YOUR_CALM.
 */
#include <string.h>

#include "../check.h"
#include "core/err.h"
#include "http/h2.h"

struct side {
	int n_headers, n_trailers, n_end, n_close;
	int32_t last_sid;
	char status[8];
	char body[256];
	size_t body_len;
	char grpc_status[8];
	/* what read_body serves */
	const char *out;
	size_t out_len, out_off;
	bool trailers;
	struct h2_sess *s;
};

static int on_headers(void *ctx, int32_t sid, const struct h2_hdr *h, size_t n, bool trailers,
		      bool end)
{
	struct side *x = ctx;
	(void)end;
	x->last_sid = sid;
	if (trailers)
		x->n_trailers++;
	else
		x->n_headers++;
	for (size_t i = 0; i < n; i++) {
		if (h[i].nlen == 7 && !memcmp(h[i].name, ":status", 7))
			snprintf(x->status, sizeof(x->status), "%.*s", (int)h[i].vlen, h[i].value);
		if (h[i].nlen == 11 && !memcmp(h[i].name, "grpc-status", 11))
			snprintf(x->grpc_status, sizeof(x->grpc_status), "%.*s", (int)h[i].vlen,
				 h[i].value);
	}
	return 0;
}

static int on_data(void *ctx, int32_t sid, const uint8_t *p, size_t n)
{
	struct side *x = ctx;
	if (x->body_len + n <= sizeof(x->body)) {
		memcpy(x->body + x->body_len, p, n);
		x->body_len += n;
	}
	h2_consume(x->s, sid, n);
	return 0;
}

static void on_end(void *ctx, int32_t sid)
{
	struct side *x = ctx;
	(void)sid;
	x->n_end++;
}

static void on_close(void *ctx, int32_t sid, uint32_t code)
{
	struct side *x = ctx;
	(void)sid;
	(void)code;
	x->n_close++;
}

static ssize_t read_body(void *ctx, int32_t sid, uint8_t *buf, size_t len, uint32_t *flags)
{
	struct side *x = ctx;
	size_t k = x->out_len - x->out_off;
	if (k > len)
		k = len;
	memcpy(buf, x->out + x->out_off, k);
	x->out_off += k;
	if (x->out_off == x->out_len) {
		*flags = H2_BODY_EOF;
		if (x->trailers) {
			struct h2_hdr t[] = {{"grpc-status", 11, "0", 1}};
			*flags |= H2_BODY_TRAILERS;
			h2_submit_trailers(x->s, sid, t, 1);
		}
	}
	return (ssize_t)k;
}

static const struct h2_cbs cbs = {on_headers, on_data, on_end, on_close, read_body};

/* Moves bytes both ways until neither side has anything to say. */
static int pump(struct h2_sess *a, struct h2_sess *b)
{
	char buf[65536];
	int rc = 0;
	for (int round = 0; round < 64; round++) {
		ssize_t n1 = h2_send(a, buf, sizeof(buf));
		if (n1 > 0 && (rc = h2_recv(b, buf, (size_t)n1, 1000 + (uint64_t)round)) < 0)
			return rc;
		ssize_t n2 = h2_send(b, buf, sizeof(buf));
		if (n2 > 0 && (rc = h2_recv(a, buf, (size_t)n2, 1000 + (uint64_t)round)) < 0)
			return rc;
		if (n1 <= 0 && n2 <= 0)
			break;
	}
	return 0;
}

TEST(h2_request_response_with_trailers)
{
	struct side cl = {0}, sv = {0};
	cl.s = h2_client_new(NULL, &cbs, &cl);
	sv.s = h2_server_new(NULL, &cbs, &sv);
	CHECK(cl.s && sv.s);
	struct h2_hdr rq[] = {
		{":method", 7, "POST", 4},
		{":scheme", 7, "http", 4},
		{":path", 5, "/pkg.Svc/Method", 15},
		{":authority", 10, "a.test", 6},
		{"content-type", 12, "application/grpc", 16},
		{"te", 2, "trailers", 8},
	};
	cl.out = "hello";
	cl.out_len = 5;
	int32_t sid = h2_submit_request(cl.s, rq, 6, true, NULL);
	CHECK(sid == 1);
	CHECK_EQ_INT(pump(cl.s, sv.s), 0);
	CHECK_EQ_INT(sv.n_headers, 1);
	CHECK_EQ_INT((int)sv.body_len, 5);
	CHECK_EQ_MEM(sv.body, sv.body_len, "hello");
	CHECK_EQ_INT(sv.n_end, 1);
	/* the response: headers, a body, trailers */
	struct h2_hdr rs[] = {{"content-type", 12, "application/grpc", 16}};
	sv.out = "world!";
	sv.out_len = 6;
	sv.trailers = true;
	CHECK_EQ_INT(h2_submit_response(sv.s, sid, 200, rs, 1, true), 0);
	CHECK_EQ_INT(pump(cl.s, sv.s), 0);
	CHECK_EQ_STR(cl.status, "200");
	CHECK_EQ_MEM(cl.body, cl.body_len, "world!");
	CHECK_EQ_INT(cl.n_trailers, 1);
	CHECK_EQ_STR(cl.grpc_status, "0");
	CHECK_EQ_INT(cl.n_close, 1);
	CHECK_EQ_INT(sv.n_close, 1);
	h2_free(cl.s);
	h2_free(sv.s);
}

/* ---- floods: raw frames into a server session ---- */

static size_t frame(uint8_t *o, uint8_t type, uint8_t flags, uint32_t sid, const void *p, size_t n)
{
	o[0] = (uint8_t)(n >> 16);
	o[1] = (uint8_t)(n >> 8);
	o[2] = (uint8_t)n;
	o[3] = type;
	o[4] = flags;
	o[5] = (uint8_t)(sid >> 24);
	o[6] = (uint8_t)(sid >> 16);
	o[7] = (uint8_t)(sid >> 8);
	o[8] = (uint8_t)sid;
	if (n)
		memcpy(o + 9, p, n);
	return 9 + n;
}

/* :method GET, :scheme http, :path /, :authority a (static indexes + literal) */
static const uint8_t req_block[] = {0x82, 0x86, 0x84, 0x41, 0x01, 'a'};

/* Feeds the preface, an empty SETTINGS, then `attack`; the result of the
 * last h2_recv and whether GOAWAY ENHANCE_YOUR_CALM was queued. */
static int flood_run(void (*attack)(struct h2_sess *, int *), bool *calm)
{
	struct side sv = {0};
	uint8_t b[64];
	char out[65536];
	int rc = 0;
	sv.s = h2_server_new(NULL, &cbs, &sv);
	rc = h2_recv(sv.s, H2_PREFACE, H2_PREFACE_LEN, 1);
	size_t n = frame(b, 4, 0, 0, NULL, 0);
	if (!rc)
		rc = h2_recv(sv.s, b, n, 1);
	if (!rc)
		attack(sv.s, &rc);
	*calm = false;
	ssize_t k;
	while ((k = h2_send(sv.s, out, sizeof(out))) > 0) {
		for (ssize_t i = 0; i + 9 <= k;) {
			size_t len = ((size_t)(uint8_t)out[i] << 16) |
				     ((size_t)(uint8_t)out[i + 1] << 8) | (uint8_t)out[i + 2];
			if (out[i + 3] == 7 && i + 17 <= k && out[i + 16] == 11)
				*calm = true;
			i += 9 + (ssize_t)len;
		}
	}
	h2_free(sv.s);
	return rc;
}

static void rapid_reset(struct h2_sess *s, int *rc)
{
	uint8_t b[128];
	for (uint32_t i = 0; i < 5000 && !*rc; i++) {
		uint32_t sid = 1 + 2 * i;
		size_t n = frame(b, 1, 0x5, sid, req_block, sizeof(req_block));
		static const uint8_t cancel[4] = {0, 0, 0, 8};
		n += frame(b + n, 3, 0, sid, cancel, 4);
		*rc = h2_recv(s, b, n, 1);
	}
}

static void continuation_flood(struct h2_sess *s, int *rc)
{
	uint8_t b[128];
	size_t n = frame(b, 1, 0, 1, req_block, sizeof(req_block));
	*rc = h2_recv(s, b, n, 1);
	static const uint8_t lit[] = {0x00, 0x01, 'x', 0x01, 'y'};
	for (int i = 0; i < 1000 && !*rc; i++) {
		n = frame(b, 9, 0, 1, lit, sizeof(lit));
		*rc = h2_recv(s, b, n, 1);
	}
}

static void hpack_bomb(struct h2_sess *s, int *rc)
{
	static uint8_t blk[16384];
	static uint8_t fr[16384 + 9];
	size_t o = 0;
	memcpy(blk, req_block, sizeof(req_block));
	o = sizeof(req_block);
	/* literal with incremental indexing: name "x", a 4000-byte value */
	blk[o++] = 0x40;
	blk[o++] = 0x01;
	blk[o++] = 'x';
	blk[o++] = 0x7f;
	blk[o++] = ((4000 - 127) & 0x7f) | 0x80;
	blk[o++] = (4000 - 127) >> 7;
	memset(blk + o, 'a', 4000);
	o += 4000;
	while (o < 8000)
		blk[o++] = 0xbe; /* index 62: the 4000-byte field again */
	size_t n = frame(fr, 1, 0x5, 1, blk, o);
	*rc = h2_recv(s, fr, n, 1);
}

static void settings_flood(struct h2_sess *s, int *rc)
{
	uint8_t b[16];
	for (int i = 0; i < 5000 && !*rc; i++)
		*rc = h2_recv(s, b, frame(b, 4, 0, 0, NULL, 0), 1);
}

static void ping_flood(struct h2_sess *s, int *rc)
{
	uint8_t b[32];
	for (int i = 0; i < 5000 && !*rc; i++)
		*rc = h2_recv(s, b, frame(b, 6, 0, 0, "12345678", 8), 1);
}

static void empty_data_flood(struct h2_sess *s, int *rc)
{
	uint8_t b[64];
	static const uint8_t post[] = {0x83, 0x86, 0x84, 0x41, 0x01, 'a'};
	*rc = h2_recv(s, b, frame(b, 1, 0x4, 1, post, sizeof(post)), 1);
	for (int i = 0; i < 5000 && !*rc; i++)
		*rc = h2_recv(s, b, frame(b, 0, 0, 1, NULL, 0), 1);
}

TEST(h2_floods_get_goaway)
{
	struct {
		const char *name;
		void (*fn)(struct h2_sess *, int *);
	} attacks[] = {
		{"rapid reset", rapid_reset}, {"continuation", continuation_flood},
		{"hpack bomb", hpack_bomb},   {"settings", settings_flood},
		{"ping", ping_flood},         {"empty data", empty_data_flood},
	};
	for (size_t i = 0; i < sizeof(attacks) / sizeof(attacks[0]); i++) {
		bool calm;
		int rc = flood_run(attacks[i].fn, &calm);
		if (rc != -WG_ELIMIT || !calm)
			printf("  attack %s: rc=%d goaway_calm=%d\n", attacks[i].name, rc, calm);
		CHECK_EQ_INT(rc, -WG_ELIMIT);
		CHECK(calm);
	}
}

/* Finds the first frame of type in out[0..k): its stream id and payload. */
static const uint8_t *find_frame(const char *out, ssize_t k, uint8_t type, uint32_t *sid,
				 size_t *len)
{
	for (ssize_t i = 0; i + 9 <= k;) {
		const uint8_t *f = (const uint8_t *)out + i;
		size_t n = ((size_t)f[0] << 16) | ((size_t)f[1] << 8) | f[2];
		if (f[3] == type) {
			*sid = ((uint32_t)(f[5] & 0x7f) << 24) | ((uint32_t)f[6] << 16) |
			       ((uint32_t)f[7] << 8) | f[8];
			*len = n;
			return f + 9;
		}
		i += 9 + (ssize_t)n;
	}
	return NULL;
}

TEST(h2_drain_names_the_last_stream_and_lets_it_finish)
{
	struct side sv = {0};
	uint8_t b[64];
	char out[65536];
	uint32_t sid;
	size_t len;

	sv.s = h2_server_new(NULL, &cbs, &sv);
	CHECK(sv.s);
	CHECK_EQ_INT(h2_recv(sv.s, H2_PREFACE, H2_PREFACE_LEN, 1), 0);
	CHECK_EQ_INT(h2_recv(sv.s, b, frame(b, 4, 0, 0, NULL, 0), 1), 0);
	CHECK_EQ_INT(h2_recv(sv.s, b, frame(b, 1, 0x5, 1, req_block, sizeof(req_block)), 1), 0);
	CHECK_EQ_INT(h2_recv(sv.s, b, frame(b, 1, 0x5, 3, req_block, sizeof(req_block)), 1), 0);
	CHECK_EQ_INT(sv.n_headers, 2);
	while (h2_send(sv.s, out, sizeof(out)) > 0)
		;
	CHECK_EQ_INT(h2_drain(sv.s), 0);
	ssize_t k = h2_send(sv.s, out, sizeof(out));
	const uint8_t *g = find_frame(out, k, 7, &sid, &len);
	CHECK(g && len >= 8);
	CHECK_EQ_INT((int)(((uint32_t)g[0] << 24) | ((uint32_t)g[1] << 16) | ((uint32_t)g[2] << 8) |
			   g[3]),
		     3);
	CHECK_EQ_INT((int)(((uint32_t)g[4] << 24) | ((uint32_t)g[5] << 16) | ((uint32_t)g[6] << 8) |
			   g[7]),
		     0);
	/* a stream the GOAWAY covers is still answered */
	CHECK_EQ_INT(h2_submit_response(sv.s, 3, 200, NULL, 0, false), 0);
	k = h2_send(sv.s, out, sizeof(out));
	CHECK(find_frame(out, k, 1, &sid, &len) != NULL);
	CHECK_EQ_INT((int)sid, 3);
	/* a stream opened after it is not */
	CHECK_EQ_INT(h2_recv(sv.s, b, frame(b, 1, 0x5, 5, req_block, sizeof(req_block)), 1), 0);
	CHECK_EQ_INT(sv.n_headers, 2);
	h2_free(sv.s);
}
