/* SPDX-License-Identifier: MIT */
/*
 * test_yaml.c: YAML to JSON (core schema typing, quoting, tags, multiple
 * documents, anchors, limits, error lines) and base64, for src/kube/yaml.c.
 */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "core/arena.h"
#include "core/buf.h"
#include "core/diag.h"
#include "core/err.h"
#include "kube/internal.h"

/* Converts the first document of y; returns a malloc'd JSON string or
 * "ERR:<line>:<msg>". */
static char *y2j(const char *y)
{
	struct arena *a = arena_new(0);
	struct diag d = {0};
	struct ynode **docs;
	size_t n;
	struct buf b = {0};
	char msg[160], *out;
	uint32_t line;
	int rc = kyaml_load(a, y, strlen(y), "t.yaml", &docs, &n, &d);

	if (rc) {
		char tmp[300];

		snprintf(tmp, sizeof(tmp), "ERR:%s", d.n ? d.v[0].msg : "?");
		out = strdup(tmp);
	} else if (!n) {
		out = strdup("NODOC");
	} else if (kyaml_to_json(docs[0], &b, msg, sizeof(msg), &line)) {
		char tmp[300];

		snprintf(tmp, sizeof(tmp), "ERR:%u:%s", line, msg);
		out = strdup(tmp);
	} else {
		buf_append(&b, "", 1);
		out = strdup(buf_rptr(&b));
	}
	buf_release(&b);
	diag_fini(&d);
	arena_free(a);
	return out;
}

#define CHECK_Y2J(y, want)                                                                         \
	do {                                                                                       \
		char *got_ = y2j(y);                                                               \
		CHECK_EQ_STR(got_, want);                                                          \
		free(got_);                                                                        \
	} while (0)

TEST(kube_yaml_scalars_core_schema)
{
	CHECK_Y2J("a: 1\nb: -7\nc: 0x1f\nd: 0o17\ne: 1.5\nf: .5\ng: 1e3\n",
		  "{\"a\":1,\"b\":-7,\"c\":31,\"d\":15,\"e\":1.5,\"f\":0.5,\"g\":1e3}");
	CHECK_Y2J("a: true\nb: False\nc: null\nd: ~\ne:\nf: yes\ng: on\n",
		  "{\"a\":true,\"b\":false,\"c\":null,\"d\":null,\"e\":null,\"f\":\"yes\",\"g\":"
		  "\"on\"}");
	CHECK_Y2J("a: \"80\"\nb: '1.0'\nc: 007\nd: +3\n",
		  "{\"a\":\"80\",\"b\":\"1.0\",\"c\":7,\"d\":3}");
	CHECK_Y2J("a: 1.2.3\nb: 12abc\nc: .inf\nd: -x\n",
		  "{\"a\":\"1.2.3\",\"b\":\"12abc\",\"c\":\".inf\",\"d\":\"-x\"}");
}

TEST(kube_yaml_tags_and_blocks)
{
	CHECK_Y2J("a: !!str 42\nb: !!int \"42\"\nc: !custom x\n",
		  "{\"a\":\"42\",\"b\":42,\"c\":\"x\"}");
	CHECK_Y2J("pem: |\n  line1\n  line2\nfold: >\n  a\n  b\n",
		  "{\"pem\":\"line1\\nline2\\n\",\"fold\":\"a b\\n\"}");
	CHECK_Y2J("s: \"tab\\there \\\"q\\\" \\\\ \\u0001\"\n",
		  "{\"s\":\"tab\\there \\\"q\\\" \\\\ \\u0001\"}");
}

TEST(kube_yaml_collections)
{
	CHECK_Y2J("- a\n- {b: 1, c: [x, y]}\n- []\n- {}\n",
		  "[\"a\",{\"b\":1,\"c\":[\"x\",\"y\"]},[],{}]");
	CHECK_Y2J("base: &b {x: 1}\nuse: *b\nlist: [*b, *b]\n",
		  "{\"base\":{\"x\":1},\"use\":{\"x\":1},\"list\":[{\"x\":1},{\"x\":1}]}");
	CHECK_Y2J("1: a\ntrue: b\n", "{\"1\":\"a\",\"true\":\"b\"}");
	CHECK_Y2J("", "NODOC");
}

TEST(kube_yaml_errors_name_the_line)
{
	char *r = y2j("a: 1\nb: [1, 2\nc: 3\n");

	CHECK(strncmp(r, "ERR:line ", 9) == 0);
	free(r);
	r = y2j("a: *nope\n");
	CHECK(strstr(r, "unknown alias *nope") != NULL);
	CHECK(strstr(r, "line 1") != NULL);
	free(r);
	r = y2j("? [a]\n: 1\n");
	CHECK_EQ_STR(r, "ERR:1:mapping key is not a scalar");
	free(r);
}

TEST(kube_yaml_alias_bomb_is_bounded)
{
	struct buf y = {0};
	char *r;

	buf_append_str(&y, "a: &a [x, x, x, x, x, x, x, x, x, x]\n");
	for (char c = 'b'; c <= 'k'; c++)
		buf_appendf(&y, "%c: &%c [*%c, *%c, *%c, *%c, *%c, *%c, *%c, *%c, *%c, *%c]\n", c,
			    c, c - 1, c - 1, c - 1, c - 1, c - 1, c - 1, c - 1, c - 1, c - 1,
			    c - 1);
	buf_append(&y, "", 1);
	r = y2j(buf_rptr(&y));
	CHECK(strstr(r, "expands past") != NULL);
	free(r);
	buf_release(&y);
}

TEST(kube_yaml_multiple_documents)
{
	struct arena *a = arena_new(0);
	struct diag d = {0};
	struct ynode **docs;
	size_t n;
	const char *y = "---\na: 1\n---\n---\n- x\n...\n---\nb: 2\n";

	CHECK_EQ_INT(kyaml_load(a, y, strlen(y), "t", &docs, &n, &d), 0);
	/* an explicit empty document is a null */
	CHECK_EQ_INT(n, 4);
	CHECK_EQ_INT(docs[0]->line, 2);
	CHECK(kyaml_is_null(docs[1]));
	CHECK_EQ_INT(docs[2]->type, YN_SEQ);
	CHECK_EQ_STR(kyaml_str(kyaml_get(docs[3], "b")), "2");
	CHECK(kyaml_get(docs[3], "zz") == NULL);
	CHECK(kyaml_str(docs[2]) == NULL);
	diag_fini(&d);
	arena_free(a);
}

