// SPDX-License-Identifier: MIT
/*
 * cipherbench.c: bulk throughput of the TLS record ciphers waygate can
 * prefer (AES-128-GCM, AES-256-GCM, ChaCha20-Poly1305), through the same
 * mbedTLS build and configuration as waygate itself (build/deps/<arch>).
 * Each cipher seals TLS-sized records (16 KiB plaintext, 13-byte additional
 * data, 12-byte nonce, 16-byte tag) for a fixed wall-clock time and reports
 * MB/s (best of 5 interleaved rounds); the board profile picks the faster
 * one first (WG_BOARD_CIPHER_PREF).
 * This is the cost that dominates TLS throughput once connections are up;
 * handshakes are not measured here.
 *
 *   cipherbench [SECONDS_PER_CIPHER]      default 2
 *
 * Output, one line per cipher, then the winner:
 *   cipher=aes-128-gcm record=16384 mbps=123.4 aes_hw=yes
 *   faster=aes-128-gcm
 * aes_hw tells whether mbedTLS found AES instructions (AES-NI on x86-64,
 * the ARMv8 crypto extensions on aarch64) at run time.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <mbedtls/aes.h>
#include <mbedtls/chachapoly.h>
#include <mbedtls/gcm.h>

#if defined(__x86_64__)
#include <cpuid.h>
#elif defined(__aarch64__) && defined(__linux__)
#include <sys/auxv.h>
#endif

#define RECORD 16384
#define ROUNDS 5

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static const char *aes_hw(void)
{
#if defined(__x86_64__)
	unsigned a, b, c, d;

	if (__get_cpuid(1, &a, &b, &c, &d))
		return (c & bit_AES) ? "yes" : "no";
	return "no";
#elif defined(__aarch64__) && defined(__linux__)
	return (getauxval(AT_HWCAP) & (1UL << 3)) ? "yes" : "no"; /* HWCAP_AES */
#else
	return "no";
#endif
}

enum kind { K_GCM128 = 0, K_GCM256, K_CHACHA, K_COUNT };
static const char *const names[K_COUNT] = {"aes-128-gcm", "aes-256-gcm", "chacha20-poly1305"};

/* run KIND for SECONDS; returns MB/s, or a negative value on failure. */
static double run(enum kind kind, double seconds, unsigned char *in, unsigned char *out)
{
	unsigned char key[32], nonce[12] = {0}, aad[13] = {0}, tag[16];
	mbedtls_gcm_context gcm;
	mbedtls_chachapoly_context cp;
	unsigned long records = 0;
	double t0, t;
	int rc = 0;

	memset(key, 0x5a, sizeof(key));
	mbedtls_gcm_init(&gcm);
	mbedtls_chachapoly_init(&cp);
	if (kind == K_CHACHA)
		rc = mbedtls_chachapoly_setkey(&cp, key);
	else
		rc = mbedtls_gcm_setkey(&gcm, MBEDTLS_CIPHER_ID_AES, key, kind == K_GCM128 ? 128 : 256);
	if (rc != 0)
		goto out;
	t0 = now_s();
	do {
		for (int i = 0; i < 16; i++) {
			memcpy(nonce + 4, &records, sizeof(records) < 8 ? sizeof(records) : 8);
			if (kind == K_CHACHA)
				rc = mbedtls_chachapoly_encrypt_and_tag(&cp, RECORD, nonce, aad, sizeof(aad),
									in, out, tag);
			else
				rc = mbedtls_gcm_crypt_and_tag(&gcm, MBEDTLS_GCM_ENCRYPT, RECORD, nonce,
							       sizeof(nonce), aad, sizeof(aad), in, out,
							       sizeof(tag), tag);
			if (rc != 0)
				goto out;
			records++;
		}
		t = now_s() - t0;
	} while (t < seconds);
out:
	mbedtls_gcm_free(&gcm);
	mbedtls_chachapoly_free(&cp);
	if (rc != 0)
		return -1;
	return (double)records * RECORD / t / 1e6;
}

int main(int argc, char **argv)
{
	double seconds = argc > 1 ? atof(argv[1]) : 2.0, best_mbps[K_COUNT] = {0}, best = 0, mbps;
	unsigned char *in = calloc(1, RECORD), *out = malloc(RECORD);
	int winner = 0;

	if (!in || !out || seconds <= 0) {
		fprintf(stderr, "usage: cipherbench [SECONDS_PER_CIPHER]\n");
		return 2;
	}
	/* The ciphers take turns in short rounds and each keeps its best round,
	 * so a burst of load from elsewhere on the machine does not decide the
	 * comparison. */
	for (int round = 0; round < ROUNDS; round++) {
		for (int k = 0; k < K_COUNT; k++) {
			mbps = run((enum kind)k, seconds / ROUNDS, in, out);
			if (mbps < 0) {
				printf("cipher=%s error\n", names[k]);
				return 1;
			}
			if (mbps > best_mbps[k])
				best_mbps[k] = mbps;
		}
	}
	for (int k = 0; k < K_COUNT; k++) {
		printf("cipher=%s record=%d mbps=%.1f aes_hw=%s\n", names[k], RECORD, best_mbps[k],
		       aes_hw());
		if (k != K_GCM256 && best_mbps[k] > best) {
			best = best_mbps[k];
			winner = k;
		}
	}
	printf("faster=%s\n", names[winner]);
	free(in);
	free(out);
	return 0;
}
