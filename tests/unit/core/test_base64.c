/* SPDX-License-Identifier: MIT */
/* Tests of core/base64.c against the RFC 4648 vectors. */
#include <stdlib.h>

#include "../check.h"
#include "core/base64.h"

TEST(base64_rfc4648_vectors)
{
	static const char *const plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
	static const char *const enc[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
	char out[32], back[32];
	for (int i = 0; i < 7; i++) {
		size_t n = base64_encode(plain[i], strlen(plain[i]), out);
		CHECK_EQ_STR(out, enc[i]);
		CHECK_EQ_INT(n, strlen(enc[i]));
		long m = base64_decode(out, n, back);
		CHECK_EQ_MEM(back, m, plain[i]);
	}
	CHECK_EQ_INT(base64_decode("Zm9v\nYmFy", 9, back), 6);
	CHECK(base64_decode("Zm9v!", 5, back) < 0);
}

/* The malloc'd forms the kubeconfig code uses (certificate data, proxy
 * credentials). */
TEST(base64_dup_roundtrip_and_errors)
{
	const char *in[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
	const char *enc[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};

	for (size_t i = 0; i < sizeof(in) / sizeof(in[0]); i++) {
		char *e = base64_encode_dup(in[i], strlen(in[i]));
		size_t n;
		char *dec = base64_decode_dup(enc[i], strlen(enc[i]), &n);

		CHECK_EQ_STR(e, enc[i]);
		CHECK_EQ_STR(dec, in[i]);
		CHECK_EQ_INT(n, strlen(in[i]));
		free(e);
		free(dec);
	}
	{
		size_t n;
		char *dec = base64_decode_dup("Zm9v\nYmFy\n", 10, &n); /* line breaks allowed */

		CHECK_EQ_STR(dec, "foobar");
		free(dec);
		CHECK(base64_decode_dup("Zm9v!", 5, &n) == NULL);
		CHECK(base64_decode_dup("Zg==Zg", 6, &n) == NULL);
		CHECK(base64_decode_dup("Z", 1, &n) == NULL);
	}
}
