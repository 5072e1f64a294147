/* SPDX-License-Identifier: MIT */
/*
 * test_crypto.c: tls/crypto.c: SHA-256 and PBKDF2-HMAC-SHA256 against
 * published vectors (RFC 7914 section 11 and the common RFC 6070-style
 * SHA-256 set), randomness, constant-time comparison, wiping, argument
 * checks and the memory counter.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <psa/crypto.h>

#include "check.h"
#include "core/err.h"
#include "tls/tls.h"

static void hex(const uint8_t *p, size_t n, char *out)
{
	static const char d[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = d[p[i] >> 4];
		out[2 * i + 1] = d[p[i] & 15];
	}
	out[2 * n] = '\0';
}

TEST(tls_sha256_vectors)
{
	uint8_t h[32];
	char s[65];

	tls_sha256("abc", 3, h);
	hex(h, 32, s);
	CHECK_EQ_STR(s, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	tls_sha256("", 0, h);
	hex(h, 32, s);
	CHECK_EQ_STR(s, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST(tls_pbkdf2_sha256_vectors)
{
	static const struct {
		const char *pw, *salt;
		uint32_t iter;
		size_t len;
		const char *want;
	} v[] = {
		{"password", "salt", 1, 32,
		 "120fb6cffcf8b32c43e7225256c4f837a86548c92ccc35480805987cb70be17b"},
		{"password", "salt", 4096, 32,
		 "c5e478d59288c841aa530db6845c4c8d962893a001ce4e11a4963873aa98134a"},
		{"passwd", "salt", 1, 64,
		 "55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc"
		 "49ca9cccf179b645991664b39d77ef317c71b845b1e30bd509112041d3a19783"},
		{"passwordPASSWORDpassword", "saltSALTsaltSALTsaltSALTsaltSALTsalt", 4096, 40,
		 "348c89dbcbd32b2f32d814b8116e84cf2b17347ebc1800181c4e2a1fb8dd53e1c635518c7dac47e"
		 "9"},
	};

	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		uint8_t out[64];
		char s[129];

		CHECK_EQ_INT(tls_pbkdf2_sha256(v[i].pw, v[i].salt, strlen(v[i].salt), v[i].iter,
					       out, v[i].len),
			     0);
		hex(out, v[i].len, s);
		CHECK_EQ_STR(s, v[i].want);
	}
}

TEST(tls_pbkdf2_rejects_bad_arguments)
{
	uint8_t out[32];

	CHECK_EQ_INT(tls_pbkdf2_sha256(NULL, "s", 1, 1, out, 32), -EINVAL);
	CHECK_EQ_INT(tls_pbkdf2_sha256("p", "s", 1, 0, out, 32), -EINVAL);
	CHECK_EQ_INT(tls_pbkdf2_sha256("p", "s", 1, 1, out, 0), -EINVAL);
	CHECK_EQ_INT(tls_pbkdf2_sha256("p", NULL, 4, 1, out, 32), -EINVAL);
	/* An empty salt is allowed (the caller's choice, not ours). */
	CHECK_EQ_INT(tls_pbkdf2_sha256("p", NULL, 0, 1, out, 32), 0);
}

TEST(tls_random_fills_and_differs)
{
	uint8_t a[32], b[32], zero[32] = {0};

	memset(a, 0, sizeof(a));
	memset(b, 0, sizeof(b));
	CHECK_EQ_INT(tls_random(a, sizeof(a)), 0);
	CHECK_EQ_INT(tls_random(b, sizeof(b)), 0);
	CHECK(memcmp(a, zero, sizeof(a)) != 0);
	CHECK(memcmp(a, b, sizeof(a)) != 0);
	CHECK_EQ_INT(tls_random(a, 0), 0);
}

TEST(tls_ct_equal_compares)
{
	CHECK(tls_ct_equal("abcdef", "abcdef", 6));
	CHECK(!tls_ct_equal("abcdef", "abcdeg", 6));
	CHECK(!tls_ct_equal("Abcdef", "abcdef", 6));
	CHECK(tls_ct_equal("x", "y", 0));
}

TEST(tls_zeroize_and_free_secret)
{
	char buf[16] = "secret-material";
	char *s = strdup("another secret");

	tls_zeroize(buf, sizeof(buf));
	for (size_t i = 0; i < sizeof(buf); i++)
		CHECK_EQ_INT(buf[i], 0);
	tls_zeroize(NULL, 10); /* no crash */
	tls_free_secret(s);
	tls_free_secret(NULL);
}

TEST(tls_mem_in_use_counts_library_memory)
{
	uint8_t r[4];

	CHECK_EQ_INT(tls_random(r, sizeof(r)), 0); /* initialises the library */
	CHECK(tls_mem_in_use() > 0);
}

static void unhex(const char *s, uint8_t *out)
{
	for (size_t i = 0; s[2 * i]; i++) {
		unsigned hi = (unsigned)(s[2 * i] <= '9' ? s[2 * i] - '0' : s[2 * i] - 'a' + 10);
		unsigned lo = (unsigned)(s[2 * i + 1] <= '9' ? s[2 * i + 1] - '0'
							     : s[2 * i + 1] - 'a' + 10);

		out[i] = (uint8_t)(hi << 4 | lo);
	}
}

/* RFC 7748 section 6.1 through PSA, the path TLS 1.3 key exchange takes:
 * guards the X25519 implementation the library was built with. */
TEST(tls_x25519_rfc7748_vector)
{
	uint8_t alice[32], bob_pub[32], pub[32], shared[32];
	char s[65];
	size_t n = 0;
	psa_key_attributes_t a = PSA_KEY_ATTRIBUTES_INIT;
	psa_key_id_t id = 0;

	CHECK_EQ_INT(tls_random(pub, 1), 0); /* initialises PSA */
	unhex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a", alice);
	unhex("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f", bob_pub);
	psa_set_key_type(&a, PSA_KEY_TYPE_ECC_KEY_PAIR(PSA_ECC_FAMILY_MONTGOMERY));
	psa_set_key_bits(&a, 255);
	psa_set_key_usage_flags(&a, PSA_KEY_USAGE_DERIVE);
	psa_set_key_algorithm(&a, PSA_ALG_ECDH);
	CHECK_EQ_INT(psa_import_key(&a, alice, sizeof(alice), &id), PSA_SUCCESS);
	CHECK_EQ_INT(psa_export_public_key(id, pub, sizeof(pub), &n), PSA_SUCCESS);
	hex(pub, n, s);
	CHECK_EQ_STR(s, "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a");
	CHECK_EQ_INT(psa_raw_key_agreement(PSA_ALG_ECDH, id, bob_pub, sizeof(bob_pub), shared,
					   sizeof(shared), &n),
		     PSA_SUCCESS);
	hex(shared, n, s);
	CHECK_EQ_STR(s, "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742");
	/* A low-order point (u = 0) must not yield an all-zero secret. */
	memset(bob_pub, 0, sizeof(bob_pub));
	CHECK(psa_raw_key_agreement(PSA_ALG_ECDH, id, bob_pub, sizeof(bob_pub), shared,
				    sizeof(shared), &n) != PSA_SUCCESS);
	psa_destroy_key(id);
}
