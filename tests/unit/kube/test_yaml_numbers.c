/* SPDX-License-Identifier: MIT */
/*
 * test_yaml_numbers.c: regression tests for long numeric scalars in
 * src/kube/yaml.c (kyaml_to_json), found by the kube_yaml fuzz target: a
 * plain scalar of 60+ digits ending in '.' made scalar_float() write past
 * its 64-byte buffer. Long numbers must come out as JSON strings, whole,
 * and nothing may be written out of bounds (the SANITIZE=1 build checks).
 * Uses only kube/internal.h: test_yaml.c is the file that may include
 * yaml.c itself.
 */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "core/arena.h"
#include "core/buf.h"
#include "core/diag.h"
#include "kube/internal.h"

static char *to_json(const char *y)
{
	struct arena *a = arena_new(0);
	struct diag d = {0};
	struct ynode **docs;
	size_t n;
	struct buf b = {0};
	char msg[160], *out = NULL;
	uint32_t line;

	if (kyaml_load(a, y, strlen(y), "t.yaml", &docs, &n, &d) == 0 && n == 1 &&
	    kyaml_to_json(docs[0], &b, msg, sizeof(msg), &line) == 0) {
		out = strndup(buf_rptr(&b), buf_len(&b));
	}
	buf_release(&b);
	diag_fini(&d);
	arena_free(a);
	return out;
}

TEST(kube_yaml_long_float_with_trailing_dot_stays_a_string)
{
	char y[256], want[300];

	/* 62 digits then ".": the shape that overran the number buffer */
	memset(y, '0', 62);
	y[0] = '1';
	strcpy(y + 62, ".");
	snprintf(want, sizeof(want), "\"%s\"", y);
	char *j = to_json(y);
	CHECK_EQ_STR(j, want);
	free(j);
}

TEST(kube_yaml_long_float_with_exponent_stays_a_string)
{
	char y[256], want[300];

	memset(y, '9', 63);
	strcpy(y + 63, ".e+12345");
	snprintf(want, sizeof(want), "\"%s\"", y);
	char *j = to_json(y);
	CHECK_EQ_STR(j, want);
	free(j);
}

TEST(kube_yaml_fuzz_input_long_number_dots)
{
	/* the fuzzer's input, reduced: digits, dots, digits, then a flow map */
	const char *y = "00000000000000000000000000000000000000000000000000000000000000"
			"..............000000000000000000000000000001846474407370955161"
			"5{fapivvvvvvvvvv$ttppiVmext]}";
	char *j = to_json(y);
	/* a syntax error or a string: either way no overrun, no crash */
	free(j);
	CHECK(1);
}

TEST(kube_yaml_short_floats_still_numbers)
{
	char *j = to_json("1.");
	CHECK_EQ_STR(j, "1.0");
	free(j);
	j = to_json("-.5e3");
	CHECK_EQ_STR(j, "-0.5e3");
	free(j);
}
