/* SPDX-License-Identifier: MIT */
/* base64.c: RFC 4648 base64 with padding (see base64.h). */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include "core/base64.h"

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t base64_encode(const void *in, size_t n, char *out)
{
	const unsigned char *s = in;
	size_t o = 0, i = 0;

	for (; i + 2 < n; i += 3) {
		uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8 | s[i + 2];
		out[o++] = alphabet[v >> 18];
		out[o++] = alphabet[(v >> 12) & 63];
		out[o++] = alphabet[(v >> 6) & 63];
		out[o++] = alphabet[v & 63];
	}
	if (i < n) {
		uint32_t v = (uint32_t)s[i] << 16 | (i + 1 < n ? (uint32_t)s[i + 1] << 8 : 0);
		out[o++] = alphabet[v >> 18];
		out[o++] = alphabet[(v >> 12) & 63];
		out[o++] = i + 1 < n ? alphabet[(v >> 6) & 63] : '=';
		out[o++] = '=';
	}
	out[o] = '\0';
	return o;
}

static int value_of(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

long base64_decode(const char *in, size_t len, void *out)
{
	unsigned char *d = out;
	uint32_t acc = 0;
	int bits = 0, pad = 0;
	long o = 0;

	for (size_t i = 0; i < len; i++) {
		char c = in[i];
		if (c == ' ' || c == '\n' || c == '\r' || c == '\t')
			continue;
		if (c == '=') {
			pad++;
			continue;
		}
		int v = value_of(c);
		if (v < 0 || pad)
			return -EINVAL;
		acc = acc << 6 | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			d[o++] = (unsigned char)(acc >> bits);
		}
	}
	if (pad > 2 || bits >= 6)
		return -EINVAL;
	return o;
}

char *base64_encode_dup(const void *in, size_t n)
{
	char *out = malloc(base64_encoded_size(n));

	if (out)
		base64_encode(in, n, out);
	return out;
}

char *base64_decode_dup(const char *in, size_t len, size_t *outlen)
{
	char *out = malloc(len / 4 * 3 + 4);
	long n = out ? base64_decode(in, len, out) : -ENOMEM;

	if (n < 0) {
		free(out);
		return NULL;
	}
	out[n] = '\0';
	if (outlen)
		*outlen = (size_t)n;
	return out;
}
