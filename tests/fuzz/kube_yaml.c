/* SPDX-License-Identifier: MIT */
/*
 * kube_yaml.c: fuzz target for kube/'s YAML layer in memory: kyaml_load()
 * (libyaml events into the node tree, anchors and aliases) and
 * kyaml_to_json() of every document (the YAML 1.2 core schema, alias
 * expansion bounded by the node limit). What the kubeconfig and the local
 * configuration both stand on, without a file per run. Invariants: a
 * failure has a diagnostic; the JSON produced for a document has balanced
 * brackets outside strings and no unterminated string.
 * Built with -fsanitize=fuzzer it is a libFuzzer target; the replay build
 * (mk/fuzz-replay.c) runs it over tests/fuzz/corpus/kube_yaml/.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/diag.h"
#include "kube/internal.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

/* Brackets balance outside strings, strings close. */
static bool json_shape_ok(const char *s, size_t n)
{
	int depth = 0;
	bool in_str = false;

	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (in_str) {
			if (c == '\\')
				i++;
			else if (c == '"')
				in_str = false;
			continue;
		}
		if (c == '"')
			in_str = true;
		else if (c == '{' || c == '[')
			depth++;
		else if (c == '}' || c == ']')
			depth--;
		if (depth < 0)
			return false;
	}
	return depth == 0 && !in_str;
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	struct arena *a;
	struct ynode **docs = NULL;
	size_t ndocs = 0;
	struct diag d = {0};
	int rc;

	if (size > 65536)
		return 0;
	a = arena_new(65536);
	if (!a)
		return 0;
	rc = kyaml_load(a, (const char *)data, size, "fuzz.yaml", &docs, &ndocs, &d);
	if (rc && !d.errors)
		abort();
	if (!rc) {
		for (size_t i = 0; i < ndocs; i++) {
			struct buf out = {0};
			char msg[128];
			uint32_t line = 0;

			if (kyaml_to_json(docs[i], &out, msg, sizeof(msg), &line) == 0 &&
			    !json_shape_ok(buf_rptr(&out), buf_len(&out)))
				abort();
			buf_release(&out);
		}
	}
	diag_fini(&d);
	arena_free(a);
	return 0;
}
