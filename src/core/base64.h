/* SPDX-License-Identifier: MIT */
/* base64.h: standard base64 (RFC 4648, with padding). Pure; any thread. */
#ifndef WG_CORE_BASE64_H
#define WG_CORE_BASE64_H

#include <stddef.h>

/* Size needed for the encoding of n bytes, including the NUL. */
static inline size_t base64_encoded_size(size_t n) { return (n + 2) / 3 * 4 + 1; }
/* Encodes n bytes into out (base64_encoded_size(n) bytes); returns the
 * length written, without the NUL. */
size_t base64_encode(const void *in, size_t n, char *out);
/* Decodes len chars (whitespace ignored) into out, which must hold
 * len / 4 * 3 + 3 bytes. Returns the bytes written or -EINVAL. */
long base64_decode(const char *in, size_t len, void *out);
/* The same into new malloc'd, NUL-terminated strings; NULL on ENOMEM (and,
 * decoding, on invalid input). outlen (may be NULL) gets the decoded size. */
char *base64_encode_dup(const void *in, size_t n);
char *base64_decode_dup(const char *in, size_t len, size_t *outlen);

#endif
