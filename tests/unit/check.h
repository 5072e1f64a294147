/* SPDX-License-Identifier: MIT */
/*
 * check.h: the tiny unit-test harness. A test is a function registered with
 * TEST(name); the Makefile greps every tests/unit/<mod>/test_*.c for TEST(
 * lines and generates the registry, so nothing is listed by hand. CHECK_*
 * macros print both operands on failure and mark the current test failed but
 * keep running it, so one run shows every broken expectation.
 * Tests may #include the .c file under test to reach its static functions.
 */
#ifndef WG_TESTS_CHECK_H
#define WG_TESTS_CHECK_H

#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

extern int check_failures;     /* failures in the running test */
extern const char *check_test; /* name of the running test */

#define TEST(name) void test_##name(void); void test_##name(void)

#define CHECK_FAIL_(fmt, ...)                                                              \
	do {                                                                               \
		fprintf(stderr, "  FAIL %s (%s:%d): " fmt "\n", check_test, __FILE__, __LINE__, \
			__VA_ARGS__);                                                      \
		check_failures++;                                                          \
	} while (0)

#define CHECK(cond)                                                                        \
	do {                                                                               \
		if (!(cond))                                                               \
			CHECK_FAIL_("%s", #cond);                                          \
	} while (0)

#define CHECK_EQ_INT(a, b)                                                                 \
	do {                                                                               \
		long long a_ = (long long)(a), b_ = (long long)(b);                        \
		if (a_ != b_)                                                              \
			CHECK_FAIL_("%s == %s: %lld != %lld", #a, #b, a_, b_);             \
	} while (0)

#define CHECK_EQ_STR(a, b)                                                                 \
	do {                                                                               \
		const char *a_ = (a), *b_ = (b);                                           \
		if (!a_ || !b_ || strcmp(a_, b_) != 0)                                     \
			CHECK_FAIL_("%s == %s: \"%s\" != \"%s\"", #a, #b, a_ ? a_ : "(null)", \
				    b_ ? b_ : "(null)");                                   \
	} while (0)

/* Compares a (pointer, length) pair against a C string. */
#define CHECK_EQ_MEM(p, len, s)                                                            \
	do {                                                                               \
		const char *p_ = (const char *)(p), *s_ = (s);                             \
		size_t l_ = (size_t)(len);                                                 \
		if (!p_ || l_ != strlen(s_) || memcmp(p_, s_, l_) != 0)                    \
			CHECK_FAIL_("%s == %s: \"%.*s\" != \"%s\"", #p, #s, (int)l_,       \
				    p_ ? p_ : "", s_);                                     \
	} while (0)

#endif
