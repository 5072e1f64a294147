/* SPDX-License-Identifier: MIT */
/*
 * test_json.c: the UI's JSON writer (src/ui/json.c): escaping of every
 * kind of hostile string (quotes, control bytes, HTML, line separators,
 * invalid UTF-8) and the comma bookkeeping of the writer.
 */
#include "check.h"
#include "ui/internal.h"

static char *esc(struct buf *b, const char *s)
{
	b->head = b->tail = 0;
	ui_json_str(b, s);
	buf_append(b, "", 1);
	return buf_rptr(b);
}

TEST(ui_json_escape_basic)
{
	struct buf b = {0};

	CHECK_EQ_STR(esc(&b, "plain"), "\"plain\"");
	CHECK_EQ_STR(esc(&b, NULL), "null");
	CHECK_EQ_STR(esc(&b, ""), "\"\"");
	CHECK_EQ_STR(esc(&b, "a\"b\\c"), "\"a\\\"b\\\\c\"");
	CHECK_EQ_STR(esc(&b, "l1\nl2\r\t"), "\"l1\\nl2\\r\\t\"");
	CHECK_EQ_STR(esc(&b, "\x01\x1f\x7f"), "\"\\u0001\\u001f\\u007f\"");
	buf_release(&b);
}

TEST(ui_json_escape_html_payload)
{
	struct buf b = {0};

	CHECK_EQ_STR(esc(&b, "<script>alert('x')</script>&"),
		     "\"\\u003cscript\\u003ealert(\\u0027x\\u0027)\\u003c/script\\u003e\\u0026\"");
	CHECK_EQ_STR(esc(&b, "<img src=x onerror=alert(1)>"),
		     "\"\\u003cimg src=x onerror=alert(1)\\u003e\"");
	buf_release(&b);
}

TEST(ui_json_escape_utf8)
{
	struct buf b = {0};

	CHECK_EQ_STR(esc(&b, "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"),
		     "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"");
	/* U+2028 / U+2029 end a line in old JavaScript parsers */
	CHECK_EQ_STR(esc(&b, "a\xe2\x80\xa8"
			     "b\xe2\x80\xa9"),
		     "\"a\\u2028b\\u2029\"");
	/* invalid bytes, truncated sequences, overlong forms, surrogates */
	CHECK_EQ_STR(esc(&b, "x\xffy"), "\"x\\ufffdy\"");
	CHECK_EQ_STR(esc(&b, "x\xc3"), "\"x\\ufffd\"");
	CHECK_EQ_STR(esc(&b, "\xc0\xaf"), "\"\\ufffd\\ufffd\"");
	CHECK_EQ_STR(esc(&b, "\xe0\x80\xaf"), "\"\\ufffd\\ufffd\\ufffd\"");
	CHECK_EQ_STR(esc(&b, "\xed\xa0\x80"), "\"\\ufffd\\ufffd\\ufffd\"");
	CHECK_EQ_STR(esc(&b, "\xf4\x90\x80\x80"), "\"\\ufffd\\ufffd\\ufffd\\ufffd\"");
	buf_release(&b);
}

TEST(ui_json_escape_embedded_nul)
{
	struct buf b = {0};

	ui_json_strn(&b, "a\0b", 3);
	CHECK_EQ_MEM(buf_rptr(&b), buf_len(&b), "\"a\\u0000b\"");
	buf_release(&b);
}

TEST(ui_json_writer_commas)
{
	struct buf b = {0};
	struct jw w;

	jw_init(&w, &b);
	jw_obj(&w);
	jw_kstr(&w, "name", "ns/<r>");
	jw_ku64(&w, "n", 18446744073709551615ull);
	jw_key(&w, "neg");
	jw_i64(&w, -5);
	jw_key(&w, "list");
	jw_arr(&w);
	jw_str(&w, "a");
	jw_bool(&w, false);
	jw_null(&w);
	jw_obj(&w);
	jw_obj_end(&w);
	jw_arr(&w);
	jw_arr_end(&w);
	jw_dbl(&w, 0.5);
	jw_arr_end(&w);
	jw_key(&w, "raw");
	jw_raw(&w, "{\"x\":1}", 7);
	jw_kbool(&w, "t", true);
	jw_obj_end(&w);
	CHECK_EQ_INT(w.err, 0);
	buf_append(&b, "", 1);
	CHECK_EQ_STR(buf_rptr(&b), "{\"name\":\"ns/\\u003cr\\u003e\",\"n\":18446744073709551615,"
				   "\"neg\":-5,\"list\":[\"a\",false,null,{},[],0.5],"
				   "\"raw\":{\"x\":1},\"t\":true}");
	buf_release(&b);
}

TEST(ui_json_writer_nesting_limit)
{
	struct buf b = {0};
	struct jw w;

	jw_init(&w, &b);
	for (int i = 0; i < 40; i++)
		jw_arr(&w);
	CHECK(w.err != 0);
	buf_release(&b);
}
