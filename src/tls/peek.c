/* SPDX-License-Identifier: MIT */
/*
 * peek.c: reads the server name from the first bytes a TLS client sends,
 * without terminating TLS: what TLS passthrough (TLSRoute) routes on. A
 * pure parser over the caller's buffer (RFC 8446 section 4.1.2, RFC 6066
 * section 3): TLS records of type handshake are reassembled as far as the
 * ClientHello needs (in place when it fits one record, the usual case),
 * nothing is consumed (the bytes are forwarded untouched afterwards). It does not judge versions or
 * suites: the backend (or mbedTLS) does; it only notes whether ChaCha20 is
 * offered for TLS 1.3, for server.c's preference. Any thread may call it.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "tls/internal.h"
#include "tls/tls.h"

#define REC_HDR 5
#define REC_MAX (16384 + 2048)
#define HELLO_MAX 16384

/* A cursor over the handshake bytes gathered from the records. */
struct rd {
	const uint8_t *p;
	size_t n;
};

static int get_u8(struct rd *r, size_t *v)
{
	if (r->n < 1)
		return -1;
	*v = r->p[0];
	r->p += 1;
	r->n -= 1;
	return 0;
}

static int get_u16(struct rd *r, size_t *v)
{
	if (r->n < 2)
		return -1;
	*v = (size_t)r->p[0] << 8 | r->p[1];
	r->p += 2;
	r->n -= 2;
	return 0;
}

static int skip(struct rd *r, size_t n)
{
	if (r->n < n)
		return -1;
	r->p += n;
	r->n -= n;
	return 0;
}

/* Takes a vector with a 1- or 2-byte length prefix as a sub-cursor. */
static int sub(struct rd *r, int len_bytes, struct rd *out)
{
	size_t n;

	if ((len_bytes == 1 ? get_u8(r, &n) : get_u16(r, &n)) != 0 || r->n < n)
		return -1;
	out->p = r->p;
	out->n = n;
	r->p += n;
	r->n -= n;
	return 0;
}

static int copy_host(const uint8_t *p, size_t n, char *out, size_t out_size)
{
	if (n > 0 && p[n - 1] == '.')
		n--;
	if (n == 0 || n > 253)
		return -WG_EPROTO;
	if (n + 1 > out_size)
		return -WG_ELIMIT;
	for (size_t i = 0; i < n; i++) {
		uint8_t ch = p[i];

		if (ch >= 'A' && ch <= 'Z')
			ch = (uint8_t)(ch - 'A' + 'a');
		else if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-' ||
			   ch == '.' || ch == '_'))
			return -WG_EPROTO;
		out[i] = (char)ch;
	}
	out[n] = '\0';
	return (int)n;
}

/* Fills h from a ClientHello body: the cipher suites of interest and the
 * server name. 1 when parsed (h->sni_len < 0: no usable SNI, with the
 * reason), -WG_EPROTO when malformed. */
static int parse_hello(struct rd *r, struct tls_hello *h)
{
	struct rd v, suites, ext;
	size_t ver;

	if (get_u16(r, &ver) != 0 || (ver >> 8) != 3 || skip(r, 32) != 0 || sub(r, 1, &v) != 0 ||
	    v.n > 32 || sub(r, 2, &suites) != 0 || suites.n < 2 || (suites.n & 1) ||
	    sub(r, 1, &v) != 0 || v.n < 1)
		return -WG_EPROTO;
	while (suites.n > 0) {
		size_t id = 0;

		(void)get_u16(&suites, &id);
		if (id == 0x1303) /* TLS_CHACHA20_POLY1305_SHA256 */
			h->chacha13 = true;
	}
	h->sni_len = -WG_ENOTFOUND;
	if (r->n == 0)
		return 1; /* no extensions at all */
	if (sub(r, 2, &ext) != 0)
		return -WG_EPROTO;
	while (ext.n > 0) {
		struct rd data, list;
		size_t type;

		if (get_u16(&ext, &type) != 0 || sub(&ext, 2, &data) != 0)
			return -WG_EPROTO;
		if (type != 0)
			continue;
		/* server_name: a list of (name_type, HostName); only host_name (0)
		 * is defined, and one of a type at most. */
		if (sub(&data, 2, &list) != 0)
			return -WG_EPROTO;
		while (list.n > 0) {
			struct rd name;
			size_t name_type;

			if (get_u8(&list, &name_type) != 0 || sub(&list, 2, &name) != 0)
				return -WG_EPROTO;
			if (name_type == 0) {
				h->sni_len = copy_host(name.p, name.n, h->sni, sizeof(h->sni));
				return 1;
			}
		}
		return 1;
	}
	return 1;
}

static int scan_records(const uint8_t *p, size_t len, uint8_t *hs, struct tls_hello *h);

int tls_hello_scan(const void *buf, size_t len, struct tls_hello *h)
{
	const uint8_t *p = buf;
	uint8_t *hs;
	struct rd r;
	int ret;

	memset(h, 0, sizeof(*h));
	h->sni_len = -WG_ENOTFOUND;
	/* The usual case: one record holding the whole hello, parsed in place. */
	if (len >= REC_HDR + 4 && p[0] == 0x16 && p[1] == 3 && p[REC_HDR] == 1) {
		size_t rlen = (size_t)p[3] << 8 | p[4];
		size_t hlen = (size_t)p[6] << 16 | (size_t)p[7] << 8 | p[8];

		if (rlen <= REC_MAX && 4 + hlen <= rlen && len >= REC_HDR + 4 + hlen) {
			r.p = p + REC_HDR + 4;
			r.n = hlen;
			return parse_hello(&r, h);
		}
	}
	/* Spread over several records (rare): reassemble on the heap. */
	hs = malloc(HELLO_MAX + 4);
	if (!hs)
		return -ENOMEM;
	ret = scan_records(p, len, hs, h);
	free(hs);
	return ret;
}

static int scan_records(const uint8_t *p, size_t len, uint8_t *hs, struct tls_hello *h)
{
	size_t have = 0, need = 0, off = 0;
	struct rd r;

	/* Gather handshake bytes from consecutive handshake records until the
	 * whole ClientHello (4-byte header + body) is there. */
	for (;;) {
		size_t rlen, take;

		if (len - off < REC_HDR) {
			/* Judge what is there already: a wrong first byte need not wait. */
			if (len - off >= 1 && p[off] != 0x16)
				return -WG_EPROTO;
			if (len - off >= 2 && p[off + 1] != 3)
				return -WG_EPROTO;
			return 0;
		}
		if (p[off] != 0x16 || p[off + 1] != 3)
			return -WG_EPROTO;
		rlen = (size_t)p[off + 3] << 8 | p[off + 4];
		if (rlen == 0 || rlen > REC_MAX)
			return -WG_EPROTO;
		take = len - off - REC_HDR < rlen ? len - off - REC_HDR : rlen;
		if (have + take > HELLO_MAX + 4)
			take = HELLO_MAX + 4 - have;
		memcpy(hs + have, p + off + REC_HDR, take);
		have += take;
		if (need == 0 && have >= 4) {
			if (hs[0] != 1)
				return -WG_EPROTO; /* not a ClientHello */
			need = 4 + ((size_t)hs[1] << 16 | (size_t)hs[2] << 8 | hs[3]);
			if (need > HELLO_MAX + 4)
				return -WG_ELIMIT;
		}
		if (need && have >= need)
			break;
		if (take < rlen)
			return 0; /* this record is not complete yet */
		off += REC_HDR + rlen;
	}
	r.p = hs + 4;
	r.n = need - 4;
	return parse_hello(&r, h);
}

int tls_peek_sni(const void *buf, size_t len, char *out, size_t out_size)
{
	struct tls_hello h;
	int r = tls_hello_scan(buf, len, &h);

	if (out_size > 0)
		out[0] = '\0';
	if (r <= 0)
		return r;
	if (h.sni_len < 0)
		return h.sni_len;
	if ((size_t)h.sni_len + 1 > out_size)
		return -WG_ELIMIT;
	memcpy(out, h.sni, (size_t)h.sni_len + 1);
	return h.sni_len;
}
