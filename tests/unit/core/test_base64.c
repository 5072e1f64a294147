/* SPDX-License-Identifier: MIT */
/* Tests of core/base64.c against the RFC 4648 vectors. */
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
