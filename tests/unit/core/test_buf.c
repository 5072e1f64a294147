/* SPDX-License-Identifier: MIT */
/* Tests of core/buf.c: append, consume, compaction, limits. */
#include "../check.h"
#include "core/buf.h"
#include "core/err.h"

TEST(buf_append_consume_compact)
{
	struct buf b = {0};
	CHECK(buf_is_empty(&b));
	CHECK_EQ_INT(buf_append_str(&b, "hello world"), 0);
	CHECK_EQ_INT(buf_len(&b), 11);
	buf_consume(&b, 6);
	CHECK_EQ_MEM(buf_rptr(&b), buf_len(&b), "world");
	buf_compact(&b);
	CHECK_EQ_INT(b.head, 0);
	CHECK_EQ_MEM(buf_rptr(&b), buf_len(&b), "world");
	buf_consume(&b, 5);
	CHECK(buf_is_empty(&b));
	CHECK_EQ_INT(b.tail, 0);
	CHECK_EQ_INT(buf_appendf(&b, "%d/%s", 42, "x"), 0);
	CHECK_EQ_MEM(buf_rptr(&b), buf_len(&b), "42/x");
	buf_release(&b);
	CHECK(b.data == NULL);
}

TEST(buf_reserve_respects_limit)
{
	struct buf b = {0};
	CHECK_EQ_INT(buf_reserve(&b, 1000, 4096), 0);
	CHECK(buf_room(&b) >= 1000);
	CHECK_EQ_INT(buf_reserve(&b, 5000, 4096), -WG_ELIMIT);
	buf_release(&b);
}
