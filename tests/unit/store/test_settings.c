/* SPDX-License-Identifier: MIT */
/*
 * test_settings.c: settings (binary values, overwrite, delete, absence),
 * traffic rollups (summing a minute, percentiles kept at their maximum,
 * the 24-hour bound) and the audit log (newest first, paging, bound).
 */
#include "helpers.h"

#include "check.h"
#include "core/arena.h"
#include "core/err.h"

TEST(store_settings_roundtrip)
{
	char buf[64], *v = NULL;
	const char *dir = th_tmpdir(buf);
	struct store *s = th_open(dir);
	size_t len = 99;

	CHECK_EQ_INT(store_setting_get(s, "mode", &v, &len), -WG_ENOTFOUND);
	CHECK(v == NULL);
	CHECK_EQ_INT(len, 0);
	CHECK_EQ_INT(store_setting_set(s, "mode", "cluster", 7), 0);
	CHECK_EQ_INT(store_setting_get(s, "mode", &v, &len), 0);
	CHECK_EQ_STR(v, "cluster");
	CHECK_EQ_INT(len, 7);
	free(v);
	/* Binary values keep their bytes, NULs included. */
	CHECK_EQ_INT(store_setting_set(s, "key", "a\0b", 3), 0);
	CHECK_EQ_INT(store_setting_get(s, "key", &v, &len), 0);
	CHECK_EQ_INT(len, 3);
	CHECK(v && memcmp(v, "a\0b", 4) == 0);
	free(v);
	CHECK_EQ_INT(store_setting_set(s, "mode", "file", 4), 0);
	CHECK_EQ_INT(store_setting_get(s, "mode", &v, NULL), 0);
	CHECK_EQ_STR(v, "file");
	free(v);
	/* Empty is a value; NULL deletes. */
	CHECK_EQ_INT(store_setting_set(s, "mode", "", 0), 0);
	CHECK_EQ_INT(store_setting_get(s, "mode", &v, &len), 0);
	CHECK_EQ_INT(len, 0);
	free(v);
	CHECK_EQ_INT(store_setting_set(s, "mode", NULL, 0), 0);
	CHECK_EQ_INT(store_setting_get(s, "mode", &v, &len), -WG_ENOTFOUND);
	CHECK_EQ_INT(store_setting_set(s, "", "x", 1), -EINVAL);
	store_close(s);
	th_rmdir(dir);
}

TEST(store_traffic_sums_and_bounds)
{
	char buf[64];
	const char *dir = th_tmpdir(buf);
	struct store *s = th_open(dir);
	struct arena *a = arena_new(0);
	struct store_traffic *v = NULL;
	size_t n = 0;
	struct store_traffic t = {.minute = 1000,
				  .requests = 10,
				  .errors = 1,
				  .p50_ms = 5,
				  .p99_ms = 50,
				  .bytes = 1000};

	CHECK_EQ_INT(store_traffic_add(s, &t), 0);
	t.requests = 5;
	t.errors = 0;
	t.p50_ms = 7;
	t.p99_ms = 20;
	t.bytes = 500;
	CHECK_EQ_INT(store_traffic_add(s, &t), 0);
	t.minute = 1001;
	CHECK_EQ_INT(store_traffic_add(s, &t), 0);
	CHECK_EQ_INT(store_traffic_read(s, 0, a, &v, &n), 0);
	CHECK_EQ_INT(n, 2);
	if (n == 2) {
		CHECK_EQ_INT(v[0].minute, 1000);
		CHECK_EQ_INT(v[0].requests, 15);
		CHECK_EQ_INT(v[0].errors, 1);
		CHECK_EQ_INT(v[0].p50_ms, 7);
		CHECK_EQ_INT(v[0].p99_ms, 50);
		CHECK_EQ_INT(v[0].bytes, 1500);
		CHECK_EQ_INT(v[1].minute, 1001);
	}
	CHECK_EQ_INT(store_traffic_read(s, 1001, a, &v, &n), 0);
	CHECK_EQ_INT(n, 1);
	/* A day later, the first minute falls out; the second is exactly
	 * 24 hours old and the last one kept. */
	t.minute = 1000 + STORE_TRAFFIC_MINUTES + 1;
	CHECK_EQ_INT(store_traffic_add(s, &t), 0);
	CHECK_EQ_INT(store_traffic_read(s, 0, a, &v, &n), 0);
	CHECK_EQ_INT(n, 1);
	if (n)
		CHECK_EQ_INT(v[0].minute, 1000 + STORE_TRAFFIC_MINUTES + 1);
	/* The clock stepped back by two days: the future rows go. */
	t.minute = 1000;
	CHECK_EQ_INT(store_traffic_add(s, &t), 0);
	CHECK_EQ_INT(store_traffic_read(s, 0, a, &v, &n), 0);
	CHECK_EQ_INT(n, 1);
	if (n)
		CHECK_EQ_INT(v[0].minute, 1000);
	arena_free(a);
	store_close(s);
	th_rmdir(dir);
}

TEST(store_audit_newest_first_paging)
{
	char buf[64], line[32];
	const char *dir = th_tmpdir(buf);
	struct store *s = th_open(dir);
	struct arena *a = arena_new(0);
	struct store_audit_entry *e = NULL;
	struct th_clock clk = {.now_ms = 1700000000000ull};
	size_t n = 0;

	store_set_clock(s, th_clock_now, &clk);
	for (int i = 1; i <= 5; i++) {
		snprintf(line, sizeof(line), "change %d", i);
		clk.now_ms += 1000;
		CHECK_EQ_INT(store_audit(s, i % 2 ? "ui" : "cluster", i % 2 ? "admin" : NULL, line),
			     0);
	}
	CHECK_EQ_INT(store_audit(s, "ui", NULL, NULL), -EINVAL);
	CHECK_EQ_INT(store_audit_list(s, 0, 2, a, &e, &n), 0);
	CHECK_EQ_INT(n, 2);
	if (n == 2) {
		CHECK_EQ_STR(e[0].summary, "change 5");
		CHECK_EQ_STR(e[0].source, "ui");
		CHECK_EQ_STR(e[0].user, "admin");
		CHECK_EQ_INT(e[0].time_ms, 1700000005000ull);
		CHECK_EQ_STR(e[1].summary, "change 4");
		CHECK_EQ_STR(e[1].user, "");
		/* The next page starts below the last id seen. */
		uint64_t last = e[1].id;
		CHECK_EQ_INT(store_audit_list(s, last, 0, a, &e, &n), 0);
		CHECK_EQ_INT(n, 3);
		if (n == 3)
			CHECK_EQ_STR(e[2].summary, "change 1");
	}
	arena_free(a);
	store_close(s);
	th_rmdir(dir);
}

TEST(store_audit_is_bounded)
{
	char buf[64];
	const char *dir = th_tmpdir(buf);
	struct store *s = th_open(dir);

	/* Jump the id sequence close to the bound instead of writing 10,000
	 * rows. */
	CHECK_EQ_INT(store_audit(s, "ui", NULL, "oldest"), 0);
	CHECK_EQ_INT(store_exec(s, "UPDATE sqlite_sequence SET seq = 10005 WHERE name = 'audit'"),
		     0);
	CHECK_EQ_INT(store_audit(s, "ui", NULL, "newer"), 0);
	CHECK_EQ_INT(th_query(s, "SELECT count(*) FROM audit WHERE summary = 'oldest'"), 0);
	CHECK_EQ_INT(th_query(s, "SELECT count(*) FROM audit"), 1);
	store_close(s);
	th_rmdir(dir);
}
