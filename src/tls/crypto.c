/* SPDX-License-Identifier: MIT */
/*
 * crypto.c: the one-time set-up of mbedTLS (an allocator hook that counts
 * the bytes mbedTLS holds, then psa_crypto_init under pthread_once) and the
 * small primitives other modules need without seeing mbedTLS: random bytes,
 * SHA-256, PBKDF2-HMAC-SHA256, constant-time comparison and wiping.
 * Randomness comes from PSA's DRBG, seeded from the kernel and protected by
 * mbedTLS's own mutex (MBEDTLS_THREADING_PTHREAD), so any thread may call
 * any function here. Nothing here does I/O beyond the entropy source.
 */
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mbedtls/error.h>
#include <mbedtls/md.h>
#include <mbedtls/pkcs5.h>
#include <mbedtls/platform.h>
#include <mbedtls/platform_util.h>
#include <mbedtls/psa_util.h>
#include <mbedtls/sha256.h>
#include <psa/crypto.h>

#include "core/err.h"
#include "core/log.h"
#include "tls/internal.h"
#include "tls/tls.h"

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static int init_status;
static atomic_size_t mem_in_use;

/* mbedTLS allocations go through these two so that tls_mem_in_use() can
 * report what TLS state costs (per connection, per context). The size
 * lives in a 16-byte header (alignment kept): cheaper than asking malloc. */
#define MEM_HDR 16

static void *count_calloc(size_t n, size_t size)
{
	unsigned char *p;
	size_t total;

	if (size && n > (SIZE_MAX - MEM_HDR) / size)
		return NULL;
	total = n * size;
	p = calloc(1, total + MEM_HDR);
	if (!p)
		return NULL;
	memcpy(p, &total, sizeof(total));
	atomic_fetch_add_explicit(&mem_in_use, total, memory_order_relaxed);
	return p + MEM_HDR;
}

static void count_free(void *ptr)
{
	unsigned char *p = ptr;
	size_t total;

	if (!p)
		return;
	p -= MEM_HDR;
	memcpy(&total, p, sizeof(total));
	atomic_fetch_sub_explicit(&mem_in_use, total, memory_order_relaxed);
	free(p);
}

static void lib_init(void)
{
	psa_status_t st;

	mbedtls_platform_set_calloc_free(count_calloc, count_free);
	st = psa_crypto_init();
	if (st != PSA_SUCCESS) {
		log_error("event=tls_init_failed psa_status=%d", (int)st);
		init_status = -WG_ETLS;
	}
}

int tls_lib_init(void)
{
	pthread_once(&init_once, lib_init);
	return init_status;
}

size_t tls_mem_in_use(void)
{
	return atomic_load_explicit(&mem_in_use, memory_order_relaxed);
}

int tls_rng(void *ctx, unsigned char *out, size_t len)
{
	(void)ctx;
	return mbedtls_psa_get_random(MBEDTLS_PSA_RANDOM_STATE, out, len);
}

const char *tls_strerror(int ret, char *buf, size_t size)
{
	mbedtls_strerror(ret, buf, size);
	return buf;
}

int tls_random(void *buf, size_t len)
{
	if (tls_lib_init() != 0)
		return -WG_ETLS;
	if (psa_generate_random(buf, len) != PSA_SUCCESS)
		return -WG_ETLS;
	return 0;
}

int tls_pbkdf2_sha256(const char *password, const void *salt, size_t salt_len, uint32_t iterations,
		      void *out, size_t out_len)
{
	int ret;

	if (!password || (!salt && salt_len) || !out || iterations == 0 || out_len == 0 ||
	    out_len > UINT32_MAX)
		return -EINVAL;
	if (tls_lib_init() != 0)
		return -WG_ETLS;
	ret = mbedtls_pkcs5_pbkdf2_hmac_ext(MBEDTLS_MD_SHA256, (const unsigned char *)password,
					    strlen(password), salt, salt_len, iterations,
					    (uint32_t)out_len, out);
	if (ret != 0) {
		char e[96];

		log_debug("event=tls_pbkdf2_failed err=%s", log_q(tls_strerror(ret, e, sizeof(e))));
		return ret == MBEDTLS_ERR_MD_ALLOC_FAILED ? -ENOMEM : -WG_ETLS;
	}
	return 0;
}

void tls_sha256(const void *p, size_t n, uint8_t out[32])
{
	/* Cannot fail for SHA-256 with the built-in implementation. */
	(void)mbedtls_sha256(p, n, out, 0);
}

bool tls_ct_equal(const void *a, const void *b, size_t n)
{
	const volatile uint8_t *x = a, *y = b;
	uint8_t acc = 0;

	for (size_t i = 0; i < n; i++)
		acc |= x[i] ^ y[i];
	return acc == 0;
}

void tls_zeroize(void *p, size_t n)
{
	if (p && n)
		mbedtls_platform_zeroize(p, n);
}

void tls_free_secret(char *s)
{
	if (!s)
		return;
	tls_zeroize(s, strlen(s));
	free(s);
}
