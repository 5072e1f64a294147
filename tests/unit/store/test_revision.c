/* SPDX-License-Identifier: MIT */
/*
 * test_revision.c: revisions: commit/load round trip across a reopen, no new
 * revision for an unchanged set, content-addressed objects, object-level
 * diff, pin/unpin and the serving revision, retention (pinned kept, orphans
 * deleted, snapshots bounded), the commit that takes only the change and
 * the set digest it keeps (also on random change sequences), schema
 * migrations, which writes sync or checkpoint the log, and a timing print
 * for 10,000 objects.
 */
#include <sys/stat.h>
#include <time.h>

#include "helpers.h"

#include "check.h"
#include "core/arena.h"
#include "core/err.h"
#include "core/loop.h"
#include "gwapi/snapimage.h"
#include "proxy/snapshot.h"
#include "tls/tls.h"

static const char *SNAP1 = "{\"listeners\":[{\"name\":\"http\"}]}";

TEST(store_commit_load_roundtrip)
{
	char buf[64];
	const char *dir = th_tmpdir(buf);
	struct gw_objset *set = gw_objset_new(), *back = gw_objset_new();
	struct store *s = th_open(dir);
	struct arena *a = arena_new(0);
	struct store_revision *revs = NULL;
	uint64_t rev = 0, got = 0;
	size_t n = 0;
	char *json = NULL;

	th_put(set, "HTTPRoute", "default", "web", "a");
	th_put(set, "Service", "default", "svc", "b");
	th_put(set, "GatewayClass", "", "wg", "c");
	CHECK_EQ_INT(store_commit(s, set, SNAP1, "cluster", "alice", "first", &rev), 0);
	CHECK_EQ_INT(rev, 1);
	store_close(s);

	s = th_open(dir);
	CHECK(s != NULL);
	CHECK_EQ_INT(store_load(s, 0, back, &got), 0);
	CHECK_EQ_INT(got, 1);
	CHECK_EQ_INT(gw_objset_count(back, GW_K_HTTPROUTE), 1);
	CHECK_EQ_INT(gw_objset_count(back, GW_K_SERVICE), 1);
	CHECK_EQ_INT(gw_objset_count(back, GW_K_GATEWAYCLASS), 1);
	const struct gw_object *o = gw_objset_get(back, GW_K_HTTPROUTE, "default", "web");
	const struct gw_object *orig = gw_objset_get(set, GW_K_HTTPROUTE, "default", "web");
	CHECK(o != NULL);
	if (o && orig) {
		CHECK_EQ_STR(o->json, orig->json);
		CHECK_EQ_STR(o->source, "store");
	}
	CHECK(gw_objset_get(back, GW_K_GATEWAYCLASS, "", "wg") != NULL);

	CHECK_EQ_INT(store_snapshot_json(s, 0, a, &json, &got), 0);
	CHECK_EQ_STR(json, SNAP1);
	CHECK_EQ_INT(store_revisions(s, 0, 0, a, &revs, &n), 0);
	CHECK_EQ_INT(n, 1);
	if (n == 1) {
		CHECK_EQ_INT(revs[0].rev, 1);
		CHECK_EQ_STR(revs[0].source, "cluster");
		CHECK_EQ_STR(revs[0].user, "alice");
		CHECK_EQ_STR(revs[0].summary, "first");
		CHECK_EQ_INT(revs[0].n_objects, 3);
		CHECK(revs[0].serving);
		CHECK(!revs[0].pinned);
		CHECK(revs[0].has_snapshot);
		CHECK(revs[0].time_ms > 0);
	}
	/* Missing revisions are named as such. */
	gw_objset_free(back);
	back = gw_objset_new();
	CHECK_EQ_INT(store_load(s, 7, back, NULL), -WG_ENOTFOUND);
	CHECK_EQ_INT(store_snapshot_json(s, 7, a, &json, NULL), -WG_ENOTFOUND);

	arena_free(a);
	gw_objset_free(set);
	gw_objset_free(back);
	store_close(s);
	th_rmdir(dir);
}

TEST(store_load_empty_store_is_not_found)
{
	char buf[64];
	const char *dir = th_tmpdir(buf);
	struct store *s = th_open(dir);
	struct gw_objset *set = gw_objset_new();
	uint64_t rev = 99;

	CHECK_EQ_INT(store_load(s, 0, set, NULL), -WG_ENOTFOUND);
	CHECK_EQ_INT(store_serving(s, &rev), 0);
	CHECK_EQ_INT(rev, 0);
	gw_objset_free(set);
	store_close(s);
	th_rmdir(dir);
}

TEST(store_commit_unchanged_set_makes_no_revision)
{
	char buf[64];
	const char *dir = th_tmpdir(buf);
	struct store *s = th_open(dir);
	struct gw_objset *set = gw_objset_new(), *copy = gw_objset_new();
	uint64_t r1 = 0, r2 = 0, r3 = 0, r4 = 0;

	th_put(set, "HTTPRoute", "default", "a", "1");
	th_put(set, "HTTPRoute", "default", "b", "2");
	CHECK_EQ_INT(store_commit(s, set, SNAP1, "cluster", NULL, NULL, &r1), 0);
	/* The same objects again. */
	CHECK_EQ_INT(store_commit(s, set, SNAP1, "cluster", NULL, NULL, &r2), 0);
	CHECK_EQ_INT(r2, r1);
	/* Equal content in new objects (a relist): still the same set, and
	 * the comparison does not depend on the commit cache. */
	th_put(copy, "HTTPRoute", "default", "b", "2");
	th_put(copy, "HTTPRoute", "default", "a", "1");
	CHECK_EQ_INT(store_commit(s, copy, SNAP1, "file", NULL, NULL, &r3), 0);
	CHECK_EQ_INT(r3, r1);
	CHECK_EQ_INT(th_query(s, "SELECT count(*) FROM revisions"), 1);
	/* One object changes: a new revision storing one new object. */
	th_put(copy, "HTTPRoute", "default", "b", "3");
	CHECK_EQ_INT(store_commit(s, copy, SNAP1, "file", NULL, "b changed", &r4), 0);
	CHECK_EQ_INT(r4, r1 + 1);
	CHECK_EQ_INT(th_query(s, "SELECT count(*) FROM objects"), 3);
	CHECK_EQ_INT(th_query(s, "SELECT count(*) FROM revision_objects"), 4);
	CHECK_EQ_INT(th_query(s, "SELECT count(*) FROM audit WHERE summary LIKE 'revision %'"), 2);
	/* Deleting an object is a change too. */
	gw_objset_del(copy, GW_K_HTTPROUTE, "default", "a");
	CHECK_EQ_INT(store_commit(s, copy, NULL, "file", NULL, NULL, &r4), 0);
	CHECK_EQ_INT(r4, r1 + 2);
	/* An empty set is a valid revision. */
	gw_objset_clear_kind(copy, GW_K_HTTPROUTE);
	CHECK_EQ_INT(store_commit(s, copy, NULL, "file", NULL, NULL, &r4), 0);
	CHECK_EQ_INT(r4, r1 + 3);
	struct gw_objset *back = gw_objset_new();
	CHECK_EQ_INT(store_load(s, 0, back, &r2), 0);
	CHECK_EQ_INT(r2, r4);
	CHECK_EQ_INT(gw_objset_count(back, GW_K_HTTPROUTE), 0);

	gw_objset_free(back);
	gw_objset_free(set);
	gw_objset_free(copy);
	store_close(s);
	th_rmdir(dir);
}

TEST(store_diff_objects)
{
	char buf[64];
	const char *dir = th_tmpdir(buf);
	struct store *s = th_open(dir);
	struct gw_objset *set = gw_objset_new();
	struct arena *a = arena_new(0);
	struct store_diff_entry *e = NULL;
	uint64_t r1 = 0, r2 = 0;
	size_t n = 0;
	char *json = NULL;

	th_put(set, "HTTPRoute", "default", "a", "1");
	th_put(set, "HTTPRoute", "default", "b", "1");
	th_put(set, "Service", "apps", "c", "1");
	CHECK_EQ_INT(store_commit(s, set, NULL, "cluster", NULL, NULL, &r1), 0);
	th_put(set, "HTTPRoute", "default", "b", "2");
	gw_objset_del(set, GW_K_SERVICE, "apps", "c");
	th_put(set, "Gateway", "default", "d", "1");
	CHECK_EQ_INT(store_commit(s, set, NULL, "cluster", NULL, NULL, &r2), 0);

	CHECK_EQ_INT(store_diff(s, r1, r2, a, &e, &n), 0);
	CHECK_EQ_INT(n, 3);
	if (n == 3) {
		CHECK_EQ_STR(e[0].kind, "Gateway");
		CHECK_EQ_STR(e[0].name, "d");
		CHECK_EQ_INT(e[0].change, STORE_ADDED);
		CHECK_EQ_STR(e[1].kind, "HTTPRoute");
		CHECK_EQ_STR(e[1].name, "b");
		CHECK_EQ_INT(e[1].change, STORE_CHANGED);
		CHECK_EQ_STR(e[2].kind, "Service");
		CHECK_EQ_STR(e[2].ns, "apps");
		CHECK_EQ_STR(e[2].name, "c");
		CHECK_EQ_INT(e[2].change, STORE_REMOVED);
	}
	/* The other way round, additions become removals. */
	CHECK_EQ_INT(store_diff(s, r2, r1, a, &e, &n), 0);
	CHECK_EQ_INT(n, 3);
	if (n == 3) {
		CHECK_EQ_INT(e[0].change, STORE_REMOVED);
		CHECK_EQ_INT(e[1].change, STORE_CHANGED);
		CHECK_EQ_INT(e[2].change, STORE_ADDED);
	}
	CHECK_EQ_INT(store_diff(s, r1, r1, a, &e, &n), 0);
	CHECK_EQ_INT(n, 0);
	CHECK_EQ_INT(store_diff(s, r1, 42, a, &e, &n), -WG_ENOTFOUND);

	/* Each side's JSON of a changed object. */
	CHECK_EQ_INT(store_object_json(s, r1, "HTTPRoute", "default", "b", a, &json), 0);
	CHECK(json && strstr(json, "\"v\":\"1\""));
	CHECK_EQ_INT(store_object_json(s, r2, "HTTPRoute", "default", "b", a, &json), 0);
	CHECK(json && strstr(json, "\"v\":\"2\""));
	CHECK_EQ_INT(store_object_json(s, r2, "Service", "apps", "c", a, &json), -WG_ENOTFOUND);

	arena_free(a);
	gw_objset_free(set);
	store_close(s);
	th_rmdir(dir);
}

TEST(store_pin_serves_until_unpinned)
{
	char buf[64];
	const char *dir = th_tmpdir(buf);
	struct store *s = th_open(dir);
	struct gw_objset *set = gw_objset_new(), *back;
	struct arena *a = arena_new(0);
	struct store_revision *revs = NULL;
	uint64_t r1 = 0, r2 = 0, r3 = 0, got = 0, pinned = 9;
	size_t n = 0;

	th_put(set, "HTTPRoute", "default", "a", "1");
	CHECK_EQ_INT(store_commit(s, set, NULL, "cluster", NULL, NULL, &r1), 0);
	th_put(set, "HTTPRoute", "default", "a", "2");
	CHECK_EQ_INT(store_commit(s, set, NULL, "cluster", NULL, NULL, &r2), 0);
	CHECK_EQ_INT(store_pinned(s, &pinned), 0);
	CHECK_EQ_INT(pinned, 0);

	CHECK_EQ_INT(store_pin(s, r1, "ui", "admin"), 0);
	CHECK_EQ_INT(store_pinned(s, &pinned), 0);
	CHECK_EQ_INT(pinned, r1);
	back = gw_objset_new();
	CHECK_EQ_INT(store_load(s, 0, back, &got), 0);
	CHECK_EQ_INT(got, r1);
	const struct gw_object *o = gw_objset_get(back, GW_K_HTTPROUTE, "default", "a");
	CHECK(o && strstr(o->json, "\"v\":\"1\""));
	gw_objset_free(back);

	/* New commits are recorded but the pin keeps being served, also
	 * after a restart. */
	th_put(set, "HTTPRoute", "default", "a", "3");
	CHECK_EQ_INT(store_commit(s, set, NULL, "cluster", NULL, NULL, &r3), 0);
	store_close(s);
	s = th_open(dir);
	CHECK_EQ_INT(store_serving(s, &got), 0);
	CHECK_EQ_INT(got, r1);
	CHECK_EQ_INT(store_revisions(s, 0, 0, a, &revs, &n), 0);
	CHECK_EQ_INT(n, 3);
	if (n == 3) {
		CHECK_EQ_INT(revs[0].rev, r3);
		CHECK(!revs[0].serving);
		CHECK(revs[2].pinned && revs[2].serving);
	}
	/* Pinning another moves the pin. */
	CHECK_EQ_INT(store_pin(s, r2, "ui", "admin"), 0);
	CHECK_EQ_INT(th_query(s, "SELECT count(*) FROM revisions WHERE pinned != 0"), 1);
	CHECK_EQ_INT(store_pin(s, 77, "ui", "admin"), -WG_ENOTFOUND);
	CHECK_EQ_INT(store_pinned(s, &pinned), 0);
	CHECK_EQ_INT(pinned, r2);

	CHECK_EQ_INT(store_unpin(s, "ui", "admin"), 0);
	CHECK_EQ_INT(store_serving(s, &got), 0);
	CHECK_EQ_INT(got, r3);
	CHECK_EQ_INT(store_unpin(s, "ui", "admin"), 0); /* no pin: nothing to do */
	CHECK_EQ_INT(
		th_query(s, "SELECT count(*) FROM audit WHERE summary LIKE 'pinned revision%'"), 2);
	CHECK_EQ_INT(th_query(s, "SELECT count(*) FROM audit WHERE summary = 'unpinned revision 2'"
				 " AND source = 'ui' AND user = 'admin'"),
		     1);

	arena_free(a);
	gw_objset_free(set);
	store_close(s);
	th_rmdir(dir);
}

TEST(store_retention_keeps_newest_and_pinned)
{
	char buf[64], v[16];
	const char *dir = th_tmpdir(buf);
	struct store *s = th_open(dir);
	struct gw_objset *set = gw_objset_new(), *back;
	uint64_t rev = 0;

	store_set_retention(s, 3, 2);
	th_put(set, "Service", "default", "shared", "x"); /* in every revision */
	for (int i = 1; i <= 6; i++) {
		snprintf(v, sizeof(v), "%d", i);
		th_put(set, "HTTPRoute", "default", "r", v);
		CHECK_EQ_INT(store_commit(s, set, SNAP1, "cluster", NULL, NULL, &rev), 0);
		CHECK_EQ_INT(rev, i);
		if (i == 2)
			CHECK_EQ_INT(store_pin(s, 2, "ui", NULL), 0);
	}
	/* Newest 3 (4, 5, 6) and the pinned 2. */
	CHECK_EQ_INT(th_query(s, "SELECT count(*) FROM revisions"), 4);
	CHECK_EQ_INT(th_query(s, "SELECT count(*) FROM revisions WHERE rev IN (2, 4, 5, 6)"), 4);
	/* Objects only deleted revisions held are gone: shared + r@2,4,5,6. */
	CHECK_EQ_INT(th_query(s, "SELECT count(*) FROM objects"), 5);
	CHECK_EQ_INT(th_query(s, "SELECT count(*) FROM revision_objects WHERE rev IN (1, 3)"), 0);
	/* Snapshots: newest 2 and the pinned one. */
	CHECK_EQ_INT(th_query(s, "SELECT count(*) FROM snapshots"), 3);
	CHECK_EQ_INT(th_query(s, "SELECT count(*) FROM snapshots WHERE rev IN (2, 5, 6)"), 3);

	back = gw_objset_new();
	CHECK_EQ_INT(store_load(s, 1, back, NULL), -WG_ENOTFOUND);
	CHECK_EQ_INT(store_load(s, 2, back, NULL), 0);
	CHECK_EQ_INT(gw_objset_count(back, GW_K_HTTPROUTE), 1);
	CHECK_EQ_INT(gw_objset_count(back, GW_K_SERVICE), 1);
	gw_objset_free(back);

	/* Once unpinned, 2 goes at the next commit. */
	CHECK_EQ_INT(store_unpin(s, "ui", NULL), 0);
	th_put(set, "HTTPRoute", "default", "r", "7");
	CHECK_EQ_INT(store_commit(s, set, NULL, "cluster", NULL, NULL, &rev), 0);
	CHECK_EQ_INT(th_query(s, "SELECT count(*) FROM revisions"), 3);
	CHECK_EQ_INT(th_query(s, "SELECT min(rev) FROM revisions"), 5);
	CHECK_EQ_INT(th_query(s, "SELECT count(*) FROM objects"), 4);

	gw_objset_free(set);
	store_close(s);
	th_rmdir(dir);
}

TEST(store_revision_numbers_never_reused)
{
	char buf[64], v[16];
	const char *dir = th_tmpdir(buf);
	struct store *s = th_open(dir);
	struct gw_objset *set = gw_objset_new();
	uint64_t rev = 0;

	store_set_retention(s, 1, 1);
	for (int i = 1; i <= 3; i++) {
		snprintf(v, sizeof(v), "%d", i);
		th_put(set, "HTTPRoute", "default", "r", v);
		CHECK_EQ_INT(store_commit(s, set, NULL, "cluster", NULL, NULL, &rev), 0);
	}
	CHECK_EQ_INT(rev, 3);
	CHECK_EQ_INT(th_query(s, "SELECT count(*) FROM revisions"), 1);
	store_close(s);
	s = th_open(dir);
	th_put(set, "HTTPRoute", "default", "r", "x");
	CHECK_EQ_INT(store_commit(s, set, NULL, "cluster", NULL, NULL, &rev), 0);
	CHECK_EQ_INT(rev, 4);
	gw_objset_free(set);
	store_close(s);
	th_rmdir(dir);
}

TEST(store_load_skips_unknown_kind_and_rejects_bad_json)
{
	char buf[64];
	const char *dir = th_tmpdir(buf);
	struct store *s = th_open(dir);
	struct gw_objset *set = gw_objset_new(), *back = gw_objset_new();
	uint64_t rev = 0;

	th_put(set, "HTTPRoute", "default", "a", "1");
	CHECK_EQ_INT(store_commit(s, set, NULL, "cluster", NULL, NULL, &rev), 0);
	/* A kind from a newer waygate: skipped. */
	CHECK_EQ_INT(store_exec(s, "INSERT INTO objects(hash, kind, ns, name, json)"
				   " VALUES (x'00', 'FutureRoute', 'default', 'f', '{}');"
				   "INSERT INTO members SELECT id, 1, NULL FROM objects"
				   " WHERE kind = 'FutureRoute';"
				   "UPDATE revisions SET n_objects = 2"),
		     0);
	CHECK_EQ_INT(store_load(s, 0, back, NULL), 0);
	CHECK_EQ_INT(gw_objset_count(back, GW_K_HTTPROUTE), 1);
	/* An object that no longer parses fails the load. */
	CHECK_EQ_INT(
		store_exec(s, "UPDATE objects SET json = '{not json' WHERE kind = 'HTTPRoute'"), 0);
	gw_objset_free(back);
	back = gw_objset_new();
	CHECK_EQ_INT(store_load(s, 0, back, NULL), -WG_ESTORE);
	gw_objset_free(back);
	gw_objset_free(set);
	store_close(s);
	th_rmdir(dir);
}

/* Timing print, not an assertion: 10,000 HTTPRoutes committed, committed
 * again with one change (the commit cache at work), reopened (the start-up
 * check), loaded. */
TEST(store_timing_10k_objects)
{
	char buf[64], name[32];
	const char *dir = th_tmpdir(buf);
	struct store *s = th_open(dir);
	struct gw_objset *set = gw_objset_new(), *back = gw_objset_new();
	uint64_t rev = 0, t0, t_commit, t_commit2, t_open, t_load, t_sql;
	char *snap = malloc(10000 * 120 + 64);
	size_t off = 0;

	off += (size_t)sprintf(snap, "{\"listeners\":[{\"rules\":[");
	for (int i = 0; i < 10000; i++) {
		char json[700];
		struct gw_object *o;

		snprintf(name, sizeof(name), "route-%05d", i);
		snprintf(json, sizeof(json),
			 "{\"apiVersion\":\"gateway.networking.k8s.io/v1\",\"kind\":\"HTTPRoute\","
			 "\"metadata\":{\"name\":\"%s\",\"namespace\":\"apps\",\"resourceVersion\":"
			 "\"%d\",\"generation\":1},\"spec\":{\"parentRefs\":[{\"name\":\"gw\"}],"
			 "\"hostnames\":[\"%s.example.com\"],\"rules\":[{\"matches\":[{\"path\":"
			 "{\"type\":\"PathPrefix\",\"value\":\"/%s\"}}],\"backendRefs\":[{\"name\":"
			 "\"svc-%d\",\"port\":8080,\"weight\":1}]}]}}",
			 name, i, name, name, i % 50);
		o = gw_object_parse(GW_K_HTTPROUTE, json, strlen(json), NULL, 0);
		gw_objset_put(set, o);
		off += (size_t)sprintf(snap + off,
				       "%s{\"route\":\"apps/%s\",\"path\":\"/%s\",\"backends\":"
				       "[{\"name\":\"apps/svc:8080\",\"weight\":1}]}",
				       i ? "," : "", name, name);
	}
	sprintf(snap + off, "]}]}");
	/* As run commits: the image's digest with the revision, its bytes
	 * (here the JSON text stands in for an image of that size) after. */
	struct store_compiled c = {.image = (const uint8_t *)snap, .image_len = strlen(snap),
				   .image_later = true};
	t0 = clock_mono_ms();
	CHECK_EQ_INT(store_commit_compiled(s, set, &c, "cluster", NULL, NULL, &rev), 0);
	t_commit = clock_mono_ms() - t0;
	CHECK_EQ_INT(store_snapshot_image_put(s, rev, c.image, c.image_len), 0);
	gw_objset_put(set, th_obj("HTTPRoute", "apps", "route-00001", "changed"));
	snap[20] ^= 1;
	t0 = clock_mono_ms();
	CHECK_EQ_INT(store_commit_compiled(s, set, &c, "cluster", NULL, NULL, &rev), 0);
	t_commit2 = clock_mono_ms() - t0;
	t0 = clock_mono_ms();
	CHECK_EQ_INT(store_snapshot_image_put(s, rev, c.image, c.image_len), 0);
	uint64_t t_image = clock_mono_ms() - t0;
	CHECK_EQ_INT(rev, 2);
	/* More one-route changes, in microseconds: one commit is too short
	 * and too noisy to read from a single millisecond figure. */
	enum { N_CHANGES = 60 };
	uint64_t us[N_CHANGES];
	for (int i = 0; i < N_CHANGES; i++) {
		struct timespec a, b;
		char v[16];

		snprintf(name, sizeof(name), "route-%05d", (i * 337) % 10000);
		snprintf(v, sizeof(v), "c%d", i);
		gw_objset_put(set, th_obj("HTTPRoute", "apps", name, v));
		snap[21] = (char)('a' + i % 26);
		c.image_hash = gw_image_digest(c.image, c.image_len); /* as run has it */
		clock_gettime(CLOCK_MONOTONIC, &a);
		CHECK_EQ_INT(store_commit_compiled(s, set, &c, "cluster", NULL, NULL, &rev), 0);
		clock_gettime(CLOCK_MONOTONIC, &b);
		us[i] = (uint64_t)((b.tv_sec - a.tv_sec) * 1000000 +
				   (b.tv_nsec - a.tv_nsec) / 1000);
		CHECK_EQ_INT(store_snapshot_image_put(s, rev, c.image, c.image_len), 0);
	}
	for (int i = 1; i < N_CHANGES; i++)
		for (int j = i; j > 0 && us[j - 1] > us[j]; j--) {
			uint64_t t = us[j];
			us[j] = us[j - 1];
			us[j - 1] = t;
		}
	store_close(s);

	t0 = clock_mono_ms();
	s = th_open(dir);
	t_open = clock_mono_ms() - t0;
	t0 = clock_mono_ms();
	CHECK_EQ_INT(store_load(s, 0, back, &rev), 0);
	t_load = clock_mono_ms() - t0;
	CHECK_EQ_INT(gw_objset_count(back, GW_K_HTTPROUTE), 10000);
	/* The share of the load that is SQLite's: the same query, no parsing. */
	sqlite3_stmt *q = store_stmt(s, ST_LOAD);
	size_t rows = 0, bytes = 0;
	t0 = clock_mono_ms();
	sqlite3_bind_int64(q, 1, (sqlite3_int64)rev);
	while (sqlite3_step(q) == SQLITE_ROW) {
		bytes += (size_t)sqlite3_column_bytes(q, 1);
		rows++;
	}
	sqlite3_reset(q);
	t_sql = clock_mono_ms() - t0;
	CHECK_EQ_INT(rows, 10000);
	printf("  store timing (10,000 HTTPRoutes, %zu bytes of JSON, a %zu-byte image): first "
	       "commit %llu ms, commit of one change %llu ms (+ %llu ms writing its image after), "
	       "open+check %llu ms, load %llu ms (SQLite part %llu ms)\n",
	       bytes, c.image_len, (unsigned long long)t_commit, (unsigned long long)t_commit2,
	       (unsigned long long)t_image, (unsigned long long)t_open, (unsigned long long)t_load,
	       (unsigned long long)t_sql);
	printf("  store timing: %d more one-route commits: min %llu us, median %llu us, max %llu "
	       "us\n",
	       N_CHANGES, (unsigned long long)us[0], (unsigned long long)us[N_CHANGES / 2],
	       (unsigned long long)us[N_CHANGES - 1]);
	free(snap);
	gw_objset_free(set);
	gw_objset_free(back);
	store_close(s);
	th_rmdir(dir);
}

/* A commit that fails half-way (a trigger aborts it after some rows) leaves
 * no trace, and the next commit of the same set works: the commit cache did
 * not keep ids of rows that were rolled back. */
TEST(store_commit_failure_leaves_nothing)
{
	char buf[64];
	char *dir = th_tmpdir(buf);
	struct store *s = th_open(dir);
	struct gw_objset *set = gw_objset_new(), *back = gw_objset_new();
	uint64_t rev = 0;

	th_put(set, "HTTPRoute", "default", "a", "1");
	th_put(set, "HTTPRoute", "default", "b", "1");
	CHECK_EQ_INT(store_commit(s, set, "{}", "cluster", NULL, NULL, &rev), 0);
	CHECK_EQ_INT(store_exec(s, "CREATE TEMP TRIGGER fail AFTER INSERT ON members"
				   " WHEN NEW.first_rev = 2 BEGIN SELECT RAISE(ABORT, 'injected'); END"),
		     0);
	th_put(set, "HTTPRoute", "default", "b", "2");
	th_put(set, "HTTPRoute", "default", "c", "1");
	rev = 0;
	CHECK_EQ_INT(store_commit(s, set, "{}", "cluster", NULL, NULL, &rev), -WG_ESTORE);
	CHECK_EQ_INT(rev, 0);
	CHECK_EQ_INT(th_query(s, "SELECT count(*) FROM revisions"), 1);
	CHECK_EQ_INT(th_query(s, "SELECT count(*) FROM objects"), 2);
	CHECK_EQ_INT(th_query(s, "SELECT count(*) FROM audit"), 1);
	CHECK_EQ_INT(store_exec(s, "DROP TRIGGER fail"), 0);
	CHECK_EQ_INT(store_commit(s, set, "{}", "cluster", NULL, NULL, &rev), 0);
	CHECK_EQ_INT(rev, 2);
	CHECK_EQ_INT(store_load(s, 2, back, NULL), 0);
	CHECK_EQ_INT(gw_objset_count(back, GW_K_HTTPROUTE), 3);
	gw_objset_free(back);
	gw_objset_free(set);
	store_close(s);
	th_rmdir(dir);
}

/* Names longer than any Kubernetes name (a local file may hold one) are
 * content-addressed too. */
TEST(store_commit_long_names)
{
	char buf[64], name[601];
	char *dir = th_tmpdir(buf);
	struct store *s = th_open(dir);
	struct gw_objset *set = gw_objset_new(), *back = gw_objset_new();
	uint64_t r1 = 0, r2 = 0, got = 0;
	uint8_t h1[32], h2[32];

	memset(name, 'n', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';
	store_obj_hash("HTTPRoute", "default", name, "{}", 2, h1);
	name[599] = 'm';
	store_obj_hash("HTTPRoute", "default", name, "{}", 2, h2);
	CHECK(memcmp(h1, h2, 32) != 0);
	th_put(set, "HTTPRoute", "default", name, "1");
	CHECK_EQ_INT(store_commit(s, set, NULL, "file", NULL, NULL, &r1), 0);
	th_put(set, "HTTPRoute", "default", name, "2");
	CHECK_EQ_INT(store_commit(s, set, NULL, "file", NULL, NULL, &r2), 0);
	CHECK_EQ_INT(r2, r1 + 1);
	CHECK_EQ_INT(store_load(s, r1, back, &got), 0);
	const struct gw_object *o = gw_objset_get(back, GW_K_HTTPROUTE, "default", name);
	CHECK(o && strstr(o->json, "\"v\":\"1\""));
	gw_objset_free(back);
	gw_objset_free(set);
	store_close(s);
	th_rmdir(dir);
}

TEST(store_revisions_paging_and_get)
{
	char buf[64], v[16];
	char *dir = th_tmpdir(buf);
	struct store *s = th_open(dir);
	struct gw_objset *set = gw_objset_new();
	struct arena *a = arena_new(0);
	struct store_revision *revs = NULL, one;
	struct th_clock clk = {.now_ms = 1700000000000ull};
	uint64_t rev = 0;
	size_t n = 0;
	char *json = NULL;

	store_set_clock(s, th_clock_now, &clk);
	for (int i = 1; i <= 5; i++) {
		snprintf(v, sizeof(v), "%d", i);
		th_put(set, "HTTPRoute", "default", "r", v);
		if (i == 3)
			th_put(set, "Service", "default", "svc", "x");
		clk.now_ms += 60000;
		CHECK_EQ_INT(store_commit(s, set, NULL, i % 2 ? "cluster" : "ui",
					  i % 2 ? NULL : "admin", v, &rev),
			     0);
	}
	CHECK_EQ_INT(store_revisions(s, 1, 2, a, &revs, &n), 0);
	CHECK_EQ_INT(n, 2);
	if (n == 2) {
		CHECK_EQ_INT(revs[0].rev, 4);
		CHECK_EQ_INT(revs[1].rev, 3);
		CHECK_EQ_STR(revs[0].source, "ui");
		CHECK_EQ_STR(revs[0].user, "admin");
		CHECK_EQ_STR(revs[1].summary, "3");
		CHECK_EQ_INT(revs[1].n_objects, 2);
		CHECK_EQ_INT(revs[0].time_ms, 1700000000000ull + 4 * 60000);
		CHECK(!revs[0].serving && !revs[0].has_snapshot);
	}
	CHECK_EQ_INT(store_revisions(s, 10, 0, a, &revs, &n), 0);
	CHECK_EQ_INT(n, 0);
	CHECK_EQ_INT(store_revision_get(s, 5, a, &one), 0);
	CHECK_EQ_INT(one.rev, 5);
	CHECK(one.serving);
	CHECK_EQ_STR(one.source, "cluster");
	CHECK_EQ_STR(one.user, "");
	CHECK_EQ_INT(store_revision_get(s, 6, a, &one), -WG_ENOTFOUND);
	/* The serving revision's objects by default. */
	CHECK_EQ_INT(store_object_json(s, 0, "HTTPRoute", "default", "r", a, &json), 0);
	CHECK(json && strstr(json, "\"v\":\"5\""));
	CHECK_EQ_INT(store_object_json(s, 2, "Service", "default", "svc", a, &json), -WG_ENOTFOUND);
	arena_free(a);
	gw_objset_free(set);
	store_close(s);
	th_rmdir(dir);
}

/* A full disk (here: a page limit) fails the commit cleanly; what was
 * committed before is still served, and commits work again once there is
 * room. */
TEST(store_commit_disk_full)
{
	char buf[64], v[2048];
	char *dir = th_tmpdir(buf);
	struct store *s = th_open(dir);
	struct gw_objset *set = gw_objset_new(), *back = gw_objset_new();
	uint64_t rev = 0, got = 0;
	int64_t pages;

	th_put(set, "HTTPRoute", "default", "a", "1");
	CHECK_EQ_INT(store_commit(s, set, "{}", "cluster", NULL, NULL, &rev), 0);
	pages = th_query(s, "PRAGMA page_count");
	char sql[64];
	snprintf(sql, sizeof(sql), "PRAGMA max_page_count = %lld", (long long)pages);
	th_query(s, sql);
	memset(v, 'x', sizeof(v) - 1);
	v[sizeof(v) - 1] = '\0';
	for (int i = 0; i < 8; i++) {
		char name[16];

		snprintf(name, sizeof(name), "big%d", i);
		v[0] = (char)('a' + i);
		gw_objset_put(set, th_obj("ConfigMap", "default", name, v));
	}
	CHECK_EQ_INT(store_commit(s, set, "{}", "cluster", NULL, NULL, &rev), -ENOSPC);
	CHECK_EQ_INT(store_load(s, 0, back, &got), 0);
	CHECK_EQ_INT(got, 1);
	CHECK_EQ_INT(gw_objset_count(back, GW_K_CONFIGMAP), 0);
	th_query(s, "PRAGMA max_page_count = 1000000");
	CHECK_EQ_INT(store_commit(s, set, "{}", "cluster", NULL, NULL, &rev), 0);
	CHECK_EQ_INT(rev, 2);
	gw_objset_free(back);
	gw_objset_free(set);
	store_close(s);
	th_rmdir(dir);
}

static const uint8_t IMG1[] = "image one: listeners, rules, keys";
static const uint8_t IMG2[] = "image two: the same objects compiled again";

static int th_image(struct store *s, uint64_t rev, const uint8_t *want, size_t want_len)
{
	uint8_t *p = NULL;
	size_t n = 0;
	int err = store_snapshot_image(s, rev, &p, &n, NULL, NULL);

	if (err == 0 && (n != want_len || memcmp(p, want, n) != 0))
		err = -EINVAL;
	free(p);
	return err;
}

TEST(store_snapshot_image_kept_with_its_revision_and_checked)
{
	char buf[64];
	const char *dir = th_tmpdir(buf);
	struct store *s = th_open(dir);
	struct gw_objset *set = gw_objset_new();
	struct store_compiled c = {.json = SNAP1, .image = IMG1, .image_len = sizeof(IMG1)};
	uint64_t rev = 0, got = 0;
	uint8_t *p = NULL;
	size_t n = 0;

	th_put(set, "HTTPRoute", "default", "web", "a");
	CHECK_EQ_INT(store_commit_compiled(s, set, &c, "cluster", NULL, NULL, &rev), 0);
	CHECK_EQ_INT(rev, 1);
	store_close(s);
	s = th_open(dir);
	CHECK_EQ_INT(th_image(s, 0, IMG1, sizeof(IMG1)), 0);
	CHECK_EQ_INT(th_image(s, 1, IMG1, sizeof(IMG1)), 0);
	CHECK_EQ_INT(store_snapshot_image(s, 7, &p, &n, NULL, NULL), -WG_ENOTFOUND);

	/* The same objects compiled into another image: the revision now
	 * holds what is served, and no revision is added. */
	c.image = IMG2;
	c.image_len = sizeof(IMG2);
	CHECK_EQ_INT(store_commit_compiled(s, set, &c, "cluster", NULL, NULL, &rev), 0);
	CHECK_EQ_INT(rev, 1);
	CHECK_EQ_INT(th_image(s, 1, IMG2, sizeof(IMG2)), 0);
	CHECK_EQ_INT(th_query(s, "SELECT COUNT(*) FROM revisions"), 1);

	/* A revision committed without an image has none. */
	th_put(set, "Service", "default", "svc", "b");
	CHECK_EQ_INT(store_commit(s, set, SNAP1, "cluster", NULL, NULL, &rev), 0);
	CHECK_EQ_INT(rev, 2);
	CHECK_EQ_INT(store_snapshot_image(s, 0, &p, &n, &got, NULL), -WG_ENOTFOUND);
	CHECK_EQ_INT(got, 2);

	/* Bytes that no longer match their hash are refused, not returned. */
	CHECK_EQ_INT(store_exec(s, "UPDATE snapshot_images SET image = "
				   "CAST('image twO: the same objects compiled again' AS BLOB) "
				   "WHERE rev = 1"),
		     0);
	CHECK_EQ_INT(store_snapshot_image(s, 1, &p, &n, NULL, NULL), -EBADMSG);
	CHECK(p == NULL);
	gw_objset_free(set);
	store_close(s);
	th_rmdir(dir);
}

TEST(store_retention_drops_images_with_snapshots)
{
	char buf[64];
	const char *dir = th_tmpdir(buf);
	struct store *s = th_open(dir);
	struct gw_objset *set = gw_objset_new();
	struct store_compiled c = {.json = SNAP1, .image = IMG1, .image_len = sizeof(IMG1)};
	uint64_t rev = 0;
	char name[16];

	store_set_retention(s, 4, 2);
	for (int i = 0; i < 6; i++) {
		snprintf(name, sizeof(name), "r%d", i);
		th_put(set, "HTTPRoute", "default", name, "a");
		CHECK_EQ_INT(store_commit_compiled(s, set, &c, "cluster", NULL, NULL, &rev), 0);
		if (rev == 4)
			CHECK_EQ_INT(store_pin(s, 4, "ui", "admin"), 0);
	}
	/* newest two and the pinned one keep their images, as their JSON */
	CHECK_EQ_INT(th_query(s, "SELECT COUNT(*) FROM snapshot_images"), 3);
	CHECK_EQ_INT(th_query(s, "SELECT COUNT(*) FROM snapshot_images WHERE rev NOT IN "
				 "(SELECT rev FROM snapshots)"),
		     0);
	CHECK_EQ_INT(th_image(s, 4, IMG1, sizeof(IMG1)), 0);
	CHECK_EQ_INT(th_image(s, 3, IMG1, sizeof(IMG1)), -WG_ENOTFOUND);
	gw_objset_free(set);
	store_close(s);
	th_rmdir(dir);
}

TEST(store_snapshot_json_made_from_the_image)
{
	char buf[64];
	const char *dir = th_tmpdir(buf);
	struct store *s = th_open(dir);
	struct gw_objset *set = gw_objset_new();
	struct arena *a = arena_new(0), *sa = arena_new(0);
	struct snapshot *snap = arena_zalloc(sa, sizeof(*snap));
	struct store_compiled c = {.json = SNAP1};
	struct store_revision r;
	uint64_t rev = 0;
	uint8_t *img = NULL;
	char *json = NULL;

	snap->arena = sa;
	snap->refs = 1;
	snap->n_listeners = 1;
	snap->listeners = arena_zalloc(sa, sizeof(struct snap_listener));
	snap->listeners[0].gateway = "default/gw";
	snap->listeners[0].name = "web";
	snap->n_sockets = 1;
	snap->sockets = arena_zalloc(sa, sizeof(struct snap_socket));
	strcpy(snap->sockets[0].addr, "0.0.0.0");
	snap->sockets[0].port = 8080;
	snap->sockets[0].n_listeners = 1;
	snap->sockets[0].listeners = arena_zalloc(sa, sizeof(struct snap_listener *));
	snap->sockets[0].listeners[0] = &snap->listeners[0];
	CHECK_EQ_INT(gw_image_encode(snap, NULL, NULL, 0, &img, &c.image_len), 0);
	c.image = img;

	th_put(set, "HTTPRoute", "default", "web", "a");
	CHECK_EQ_INT(store_commit_compiled(s, set, &c, "cluster", NULL, NULL, &rev), 0);
	CHECK_EQ_INT(store_snapshot_json(s, rev, a, &json, NULL), 0);
	CHECK_EQ_STR(json, SNAP1);
	/* Without JSON the revision still shows one, made from its image; a
	 * JSON stored before for the same objects gives way to it. */
	c.json = NULL;
	snap->sockets[0].port = 8081;
	gw_image_buf_free(img, c.image_len);
	CHECK_EQ_INT(gw_image_encode(snap, NULL, NULL, 0, &img, &c.image_len), 0);
	c.image = img;
	CHECK_EQ_INT(store_commit_compiled(s, set, &c, "cluster", NULL, NULL, &rev), 0);
	CHECK_EQ_INT(rev, 1);
	CHECK_EQ_INT(store_snapshot_json(s, rev, a, &json, NULL), 0);
	CHECK(json && strstr(json, "\"port\":8081") && strstr(json, "\"name\":\"web\""));
	CHECK_EQ_INT(store_revision_get(s, rev, a, &r), 0);
	CHECK(r.has_snapshot);
	gw_image_buf_free(img, c.image_len);
	snap_unref(snap);
	arena_free(a);
	gw_objset_free(set);
	store_close(s);
	th_rmdir(dir);
}

/* A commit writes the membership change only: one interval for each object
 * added (or changed), the end of the interval of each one dropped; both
 * revisions still read back whole, also after a reopen (when the newest
 * membership is read from the store instead of memory). */
TEST(store_commit_writes_only_the_membership_delta)
{
	char buf[64];
	const char *dir = th_tmpdir(buf);
	struct store *s = th_open(dir);
	struct gw_objset *set = gw_objset_new(), *back;
	uint64_t rev = 0;

	th_put_routes(set, 200, "v1");
	CHECK_EQ_INT(store_commit(s, set, NULL, "cluster", NULL, NULL, &rev), 0);
	CHECK_EQ_INT(th_query(s, "SELECT count(*) FROM members"), 200);
	th_put(set, "HTTPRoute", "default", "r007", "v2");
	th_put(set, "HTTPRoute", "default", "new", "v1");
	gw_objset_del(set, GW_K_HTTPROUTE, "default", "r100");
	CHECK_EQ_INT(store_commit(s, set, NULL, "cluster", NULL, NULL, &rev), 0);
	CHECK_EQ_INT(rev, 2);
	CHECK_EQ_INT(th_query(s, "SELECT count(*) FROM members"), 202);
	CHECK_EQ_INT(th_query(s, "SELECT count(*) FROM members WHERE last_rev = 1"), 2);
	store_close(s);

	s = th_open(dir);
	gw_objset_del(set, GW_K_HTTPROUTE, "default", "r000");
	CHECK_EQ_INT(store_commit(s, set, NULL, "cluster", NULL, NULL, &rev), 0);
	CHECK_EQ_INT(rev, 3);
	CHECK_EQ_INT(th_query(s, "SELECT count(*) FROM members"), 202);
	CHECK_EQ_INT(th_query(s, "SELECT count(*) FROM members WHERE last_rev = 2"), 1);
	for (uint64_t r = 1; r <= 3; r++) {
		back = gw_objset_new();
		CHECK_EQ_INT(store_load(s, r, back, NULL), 0);
		CHECK_EQ_INT(gw_objset_count(back, GW_K_HTTPROUTE), r == 3 ? 199 : 200);
		CHECK((gw_objset_get(back, GW_K_HTTPROUTE, "default", "r100") != NULL) == (r == 1));
		CHECK((gw_objset_get(back, GW_K_HTTPROUTE, "default", "new") != NULL) == (r > 1));
		CHECK((gw_objset_get(back, GW_K_HTTPROUTE, "default", "r000") != NULL) == (r < 3));
		const struct gw_object *o = gw_objset_get(back, GW_K_HTTPROUTE, "default", "r007");
		CHECK(o && strstr(o->json, r == 1 ? "v1" : "v2"));
		gw_objset_free(back);
	}
	gw_objset_free(set);
	store_close(s);
	th_rmdir(dir);
}

/* A store of schema 2 (one revision_objects row per object and revision)
 * opens as today's schema with the same revisions, and commits go on from it. */
TEST(store_migrates_revision_rows_to_intervals)
{
	char buf[64];
	const char *dir = th_tmpdir(buf);
	struct store *s = th_open(dir);
	struct gw_objset *set = gw_objset_new(), *back;
	uint64_t rev = 0;

	th_put(set, "HTTPRoute", "default", "a", "1");
	th_put(set, "HTTPRoute", "default", "b", "1");
	CHECK_EQ_INT(store_commit(s, set, NULL, "cluster", NULL, NULL, &rev), 0);
	th_put(set, "HTTPRoute", "default", "b", "2");
	CHECK_EQ_INT(store_commit(s, set, NULL, "cluster", NULL, NULL, &rev), 0);
	/* back to the layout of schema 2 */
	CHECK_EQ_INT(store_exec(s, "CREATE TABLE ro(rev INTEGER NOT NULL, obj INTEGER NOT NULL,"
				   " PRIMARY KEY(rev, obj)) WITHOUT ROWID;"
				   "INSERT INTO ro SELECT rev, obj FROM revision_objects;"
				   "DROP VIEW revision_objects; DROP TABLE members;"
				   "ALTER TABLE ro RENAME TO revision_objects;"
				   "CREATE INDEX revision_objects_obj ON revision_objects(obj);"
				   "PRAGMA user_version = 2"),
		     0);
	store_close(s);
	s = th_open(dir);
	CHECK_EQ_INT(th_query(s, "PRAGMA user_version"), 4);
	CHECK_EQ_INT(th_query(s, "SELECT count(*) FROM members WHERE last_rev IS NULL"), 2);
	th_put(set, "HTTPRoute", "default", "c", "1");
	CHECK_EQ_INT(store_commit(s, set, NULL, "cluster", NULL, NULL, &rev), 0);
	CHECK_EQ_INT(rev, 3);
	for (uint64_t r = 1; r <= 3; r++) {
		back = gw_objset_new();
		CHECK_EQ_INT(store_load(s, r, back, NULL), 0);
		CHECK_EQ_INT(gw_objset_count(back, GW_K_HTTPROUTE), r == 3 ? 3 : 2);
		const struct gw_object *o = gw_objset_get(back, GW_K_HTTPROUTE, "default", "b");
		CHECK(o && strstr(o->json, r == 1 ? "\"1\"" : "\"2\""));
		gw_objset_free(back);
	}
	gw_objset_free(set);
	store_close(s);
	th_rmdir(dir);
}

/* An image committed by its hash only: no image until its bytes are
 * written, and only the bytes committed are taken. */
TEST(store_snapshot_image_bytes_follow_the_commit)
{
	char buf[64];
	const char *dir = th_tmpdir(buf);
	struct store *s = th_open(dir);
	struct gw_objset *set = gw_objset_new();
	struct store_compiled c = {.image = IMG1, .image_len = sizeof(IMG1), .image_later = true};
	struct arena *a = arena_new(0);
	struct store_revision r;
	uint64_t rev = 0;
	uint8_t *p = NULL;
	size_t n = 0;

	th_put(set, "HTTPRoute", "default", "web", "a");
	CHECK_EQ_INT(store_commit_compiled(s, set, &c, "cluster", NULL, NULL, &rev), 0);
	CHECK_EQ_INT(store_snapshot_image(s, rev, &p, &n, NULL, NULL), -WG_ENOTFOUND);
	CHECK_EQ_INT(store_revision_get(s, rev, a, &r), 0);
	CHECK(!r.has_snapshot);
	CHECK_EQ_INT(store_snapshot_image_put(s, rev, IMG2, sizeof(IMG2)), -WG_ENOTFOUND);
	CHECK_EQ_INT(store_snapshot_image_put(s, rev + 1, IMG1, sizeof(IMG1)), -WG_ENOTFOUND);
	CHECK_EQ_INT(store_snapshot_image_put(s, rev, IMG1, sizeof(IMG1)), 0);
	CHECK_EQ_INT(store_snapshot_image_put(s, rev, IMG1, sizeof(IMG1)), 0);
	CHECK_EQ_INT(th_image(s, rev, IMG1, sizeof(IMG1)), 0);
	CHECK_EQ_INT(store_revision_get(s, rev, a, &r), 0);
	CHECK(r.has_snapshot);
	arena_free(a);
	gw_objset_free(set);
	store_close(s);
	th_rmdir(dir);
}

static int cmp32(const void *a, const void *b)
{
	return memcmp(a, b, 32);
}

/* The set hash of schema 3 (still read by a recovery) sorts object hashes
 * as memcmp does, also when many share their first bytes. */
TEST(store_set_hash_sorted_orders_as_memcmp)
{
	size_t n = 3000;
	uint8_t *h = malloc(32 * n), *ref = malloc(32 * n), want[32], got[32];
	uint64_t x = 88172645463325252ULL;

	for (size_t i = 0; i < 32 * n; i++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		h[i] = (uint8_t)x;
	}
	for (size_t i = 0; i < n; i += 3) /* equal first 8 bytes, other tails */
		memcpy(h + 32 * i, h, 8);
	for (size_t i = 1; i < n; i += 7) /* equal first 7 bytes */
		memcpy(h + 32 * i, h + 32, 7);
	memcpy(ref, h, 32 * n);
	qsort(ref, n, 32, cmp32);
	tls_sha256(ref, 32 * n, want);
	store_set_hash_sorted(h, n, got);
	CHECK(memcmp(h, ref, 32 * n) == 0);
	CHECK(memcmp(got, want, 32) == 0);
	free(h);
	free(ref);
}

/* The set digest is a sum modulo 2^256 of little-endian numbers: carries
 * cross the 64-bit words, it wraps, a subtraction undoes an addition, and
 * the order of the objects does not matter. */
TEST(store_set_digest_is_a_sum_of_hashes)
{
	uint8_t d[32] = {0}, one[32] = {1}, ones[32], low[32] = {0}, want[32] = {0};
	uint8_t h[8][32], a[32], b[32], perm[8 * 32];
	uint64_t x = 0x9e3779b97f4a7c15ULL;

	memset(ones, 0xff, 32);
	memset(low, 0xff, 8);
	store_digest_add(d, low);
	store_digest_add(d, one);
	want[8] = 1; /* 2^64 */
	CHECK(memcmp(d, want, 32) == 0);
	store_digest_sub(d, one);
	CHECK(memcmp(d, low, 32) == 0);
	memset(d, 0, 32);
	store_digest_add(d, ones);
	store_digest_add(d, one);
	CHECK(memcmp(d, (uint8_t[32]){0}, 32) == 0); /* 2^256 - 1 + 1 wraps to 0 */
	store_digest_sub(d, one);
	CHECK(memcmp(d, ones, 32) == 0);
	for (int i = 0; i < 8; i++)
		for (int j = 0; j < 32; j++) {
			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			h[i][j] = (uint8_t)x;
		}
	store_set_digest(&h[0][0], 8, a);
	for (int i = 0; i < 8; i++)
		memcpy(perm + 32 * i, h[(i * 3) % 8], 32);
	store_set_digest(perm, 8, b);
	CHECK(memcmp(a, b, 32) == 0);
	store_digest_sub(b, h[5]);
	store_digest_sub(b, h[2]);
	store_digest_add(b, h[2]);
	store_digest_add(b, h[5]);
	CHECK(memcmp(a, b, 32) == 0);
	store_digest_sub(b, h[5]);
	CHECK(memcmp(a, b, 32) != 0);
}

/* A commit looks at the change only: one changed route of 200 is found
 * from the set's change log and hashed alone; an equal object put again
 * (a resync) makes no revision; a relist or another set sharing the
 * objects is compared whole without hashing what the cache knows; after a
 * reopen everything is gathered again. */
TEST(store_commit_takes_only_the_change)
{
	char buf[64], name[16];
	const char *dir = th_tmpdir(buf);
	struct store *s = th_open(dir);
	struct gw_objset *set = gw_objset_new(), *other;
	uint64_t rev = 0;

	th_put_routes(set, 200, "v1");
	CHECK_EQ_INT(store_commit(s, set, NULL, "cluster", NULL, NULL, &rev), 0);
	CHECK_EQ_STR(s->last_path, "full");
	CHECK_EQ_INT(s->last_hashed, 200);
	th_put(set, "HTTPRoute", "default", "r007", "v2");
	CHECK_EQ_INT(store_commit(s, set, NULL, "cluster", NULL, NULL, &rev), 0);
	CHECK_EQ_INT(rev, 2);
	CHECK_EQ_STR(s->last_path, "log");
	CHECK_EQ_INT(s->last_hashed, 1);
	CHECK_EQ_INT(th_query(s, "SELECT count(*) FROM members"), 201);
	CHECK_EQ_INT(th_query(s, "SELECT count(*) FROM members WHERE last_rev IS NULL"), 200);

	th_put(set, "HTTPRoute", "default", "r008", "v1"); /* equal, another pointer */
	CHECK_EQ_INT(store_commit(s, set, NULL, "cluster", NULL, NULL, &rev), 0);
	CHECK_EQ_INT(rev, 2);
	CHECK_EQ_STR(s->last_path, "log");
	/* changed and changed back before the commit */
	th_put(set, "HTTPRoute", "default", "r009", "v9");
	th_put(set, "HTTPRoute", "default", "r009", "v1");
	CHECK_EQ_INT(store_commit(s, set, NULL, "cluster", NULL, NULL, &rev), 0);
	CHECK_EQ_INT(rev, 2);
	/* the cache follows the new pointers: the next change is one again */
	CHECK(gw_objset_del(set, GW_K_HTTPROUTE, "default", "r008"));
	CHECK_EQ_INT(store_commit(s, set, NULL, "cluster", NULL, NULL, &rev), 0);
	CHECK_EQ_INT(rev, 3);
	CHECK_EQ_STR(s->last_path, "log");
	CHECK_EQ_INT(s->last_hashed, 0);

	/* another set holding the same objects, one of them changed */
	other = gw_objset_new();
	for (int k = 0; k < GW_K_COUNT; k++) {
		size_t n = 0;
		const struct gw_object *const *v = gw_objset_list(set, (enum gw_kind)k, &n);

		for (size_t i = 0; i < n; i++) {
			gw_object_ref((struct gw_object *)(uintptr_t)v[i]);
			gw_objset_put(other, (struct gw_object *)(uintptr_t)v[i]);
		}
	}
	gw_objset_free(set);
	set = other;
	th_put(set, "HTTPRoute", "default", "r010", "v2");
	CHECK_EQ_INT(store_commit(s, set, NULL, "cluster", NULL, NULL, &rev), 0);
	CHECK_EQ_INT(rev, 4);
	CHECK_EQ_STR(s->last_path, "walk");
	CHECK_EQ_INT(s->last_hashed, 1);
	th_put(set, "HTTPRoute", "default", "r011", "v2");
	CHECK_EQ_INT(store_commit(s, set, NULL, "cluster", NULL, NULL, &rev), 0);
	CHECK_EQ_STR(s->last_path, "log");

	/* a relist: every object put again, all equal */
	gw_objset_clear_kind(set, GW_K_HTTPROUTE);
	for (int i = 0; i < 200; i++) {
		snprintf(name, sizeof(name), "r%03d", i);
		if (i != 8)
			th_put(set, "HTTPRoute", "default", name,
			       i == 7 || i == 10 || i == 11 ? "v2" : "v1");
	}
	CHECK_EQ_INT(store_commit(s, set, NULL, "cluster", NULL, NULL, &rev), 0);
	CHECK_EQ_INT(rev, 5);
	CHECK_EQ_STR(s->last_path, "walk");
	store_close(s);

	s = th_open(dir);
	th_put(set, "HTTPRoute", "default", "r012", "v2");
	CHECK_EQ_INT(store_commit(s, set, NULL, "cluster", NULL, NULL, &rev), 0);
	CHECK_EQ_INT(rev, 6);
	CHECK_EQ_STR(s->last_path, "full");
	CHECK_EQ_INT(th_query(s, "SELECT count(*) FROM members WHERE last_rev IS NULL"), 199);
	gw_objset_free(set);
	store_close(s);
	th_rmdir(dir);
}

/* The newest revision's digest equals the set's, yet it holds other
 * objects (digests of sums can be made to collide): the commit compares
 * the objects and makes a new revision. */
TEST(store_commit_equal_digest_other_objects_is_a_new_revision)
{
	char buf[64];
	const char *dir = th_tmpdir(buf);
	struct store *s = th_open(dir);
	struct gw_objset *set = gw_objset_new();
	uint8_t d[32];
	uint64_t rev = 0;

	th_put(set, "HTTPRoute", "default", "a", "1");
	th_put(set, "HTTPRoute", "default", "b", "1");
	CHECK_EQ_INT(store_commit(s, set, NULL, "cluster", NULL, NULL, &rev), 0);
	th_put(set, "HTTPRoute", "default", "a", "2");
	th_set_digest(set, d);
	CHECK_EQ_INT(th_set_rev_digest(s, 1, d), 0);
	store_close(s);
	s = th_open(dir); /* nothing cached: the set is compared with the store */
	CHECK_EQ_INT(store_commit(s, set, NULL, "cluster", NULL, NULL, &rev), 0);
	CHECK_EQ_INT(rev, 2);
	store_close(s);
	s = th_open(dir);
	CHECK_EQ_INT(store_commit(s, set, NULL, "cluster", NULL, NULL, &rev), 0);
	CHECK_EQ_INT(rev, 2);
	CHECK_EQ_STR(s->last_path, "full");
	gw_objset_free(set);
	store_close(s);
	th_rmdir(dir);
}

/* Another connection committed in between: the cache no longer describes
 * the newest revision, so the change is taken against the store. */
TEST(store_commit_after_another_connection_committed)
{
	char buf[64];
	const char *dir = th_tmpdir(buf);
	struct store *s = th_open(dir), *s2 = th_open(dir);
	struct gw_objset *set = gw_objset_new(), *set2 = gw_objset_new(), *back = gw_objset_new();
	uint64_t rev = 0;

	th_put(set, "HTTPRoute", "default", "a", "1");
	CHECK_EQ_INT(store_commit(s, set, NULL, "cluster", NULL, NULL, &rev), 0);
	th_put(set2, "HTTPRoute", "default", "a", "1");
	th_put(set2, "HTTPRoute", "default", "b", "1");
	CHECK_EQ_INT(store_commit(s2, set2, NULL, "ui", NULL, NULL, &rev), 0);
	CHECK_EQ_INT(rev, 2);
	th_put(set, "HTTPRoute", "default", "a", "2");
	CHECK_EQ_INT(store_commit(s, set, NULL, "cluster", NULL, NULL, &rev), 0);
	CHECK_EQ_INT(rev, 3);
	CHECK_EQ_STR(s->last_path, "full");
	CHECK_EQ_INT(store_load(s, 3, back, NULL), 0);
	CHECK_EQ_INT(gw_objset_count(back, GW_K_HTTPROUTE), 1);
	const struct gw_object *o = gw_objset_get(back, GW_K_HTTPROUTE, "default", "a");
	CHECK(o && strstr(o->json, "\"v\":\"2\""));
	CHECK_EQ_INT(th_query(s, "SELECT count(*) FROM members WHERE last_rev IS NULL"), 1);
	CHECK_EQ_INT(store_commit(s, set, NULL, "cluster", NULL, NULL, &rev), 0);
	CHECK_EQ_INT(rev, 3);
	/* and the other way round: back to what s2 committed */
	CHECK_EQ_INT(store_commit(s2, set2, NULL, "ui", NULL, NULL, &rev), 0);
	CHECK_EQ_INT(rev, 4);
	CHECK_EQ_INT(th_query(s, "SELECT count(*) FROM members WHERE last_rev IS NULL"), 2);
	gw_objset_free(set);
	gw_objset_free(set2);
	gw_objset_free(back);
	store_close(s);
	store_close(s2);
	th_rmdir(dir);
}

/* A store of schema 3 (digests over sorted hashes) opens with every
 * revision's digest recomputed as a sum, and the same set commits as
 * unchanged. */
TEST(store_migrates_set_digests_to_sums)
{
	char buf[64];
	const char *dir = th_tmpdir(buf);
	struct store *s = th_open(dir);
	struct gw_objset *set = gw_objset_new();
	uint8_t want[32], got[32];
	uint64_t rev = 0;

	th_put(set, "HTTPRoute", "default", "a", "1");
	th_put(set, "Service", "default", "b", "1");
	CHECK_EQ_INT(store_commit(s, set, NULL, "cluster", NULL, NULL, &rev), 0);
	th_put(set, "HTTPRoute", "default", "a", "2");
	CHECK_EQ_INT(store_commit(s, set, NULL, "cluster", NULL, NULL, &rev), 0);
	CHECK(gw_objset_del(set, GW_K_SERVICE, "default", "b"));
	CHECK_EQ_INT(store_commit(s, set, NULL, "cluster", NULL, NULL, &rev), 0);
	CHECK_EQ_INT(rev, 3);
	CHECK_EQ_INT(th_to_schema3(s), 0);
	th_set_digest(set, want);
	CHECK(th_rev_digest(s, 3, got) && memcmp(got, want, 32) != 0);
	store_close(s);

	s = th_open(dir);
	CHECK_EQ_INT(th_query(s, "PRAGMA user_version"), 4);
	CHECK(th_rev_digest(s, 3, got) && memcmp(got, want, 32) == 0);
	for (uint64_t r = 1; r <= 2; r++) {
		struct gw_objset *back = gw_objset_new();

		CHECK_EQ_INT(store_load(s, r, back, NULL), 0);
		th_set_digest(back, want);
		CHECK(th_rev_digest(s, r, got) && memcmp(got, want, 32) == 0);
		gw_objset_free(back);
	}
	CHECK_EQ_INT(store_commit(s, set, NULL, "cluster", NULL, NULL, &rev), 0);
	CHECK_EQ_INT(rev, 3);
	th_put(set, "HTTPRoute", "default", "c", "1");
	CHECK_EQ_INT(store_commit(s, set, NULL, "cluster", NULL, NULL, &rev), 0);
	CHECK_EQ_INT(rev, 4);
	gw_objset_free(set);
	store_close(s);
	th_rmdir(dir);
}

/* The image digest the caller hands in is what the revision records: the
 * bytes written later are accepted when they match it. */
TEST(store_commit_records_the_callers_image_hash)
{
	char buf[64];
	const char *dir = th_tmpdir(buf);
	struct store *s = th_open(dir);
	struct gw_objset *set = gw_objset_new();
	struct store_compiled c = {.image = IMG1, .image_len = sizeof(IMG1), .image_later = true};
	uint64_t rev = 0;

	c.image_hash = gw_image_digest(IMG1, sizeof(IMG1));
	th_put(set, "HTTPRoute", "default", "a", "1");
	CHECK_EQ_INT(store_commit_compiled(s, set, &c, "cluster", NULL, NULL, &rev), 0);
	CHECK_EQ_INT(store_snapshot_image_put(s, rev, IMG1, sizeof(IMG1)), 0);
	CHECK_EQ_INT(th_image(s, rev, IMG1, sizeof(IMG1)), 0);
	/* a hash that is not the image's: its bytes are refused */
	th_put(set, "HTTPRoute", "default", "a", "2");
	c.image_hash ^= 1;
	CHECK_EQ_INT(store_commit_compiled(s, set, &c, "cluster", NULL, NULL, &rev), 0);
	CHECK_EQ_INT(store_snapshot_image_put(s, rev, IMG1, sizeof(IMG1)), -WG_ENOTFOUND);
	gw_objset_free(set);
	store_close(s);
	th_rmdir(dir);
}

/* An image committed by its digest alone (the encoder's, had before its
 * bytes are written): the bytes that have that digest are taken, others
 * not, and a commit of the same objects with another digest replaces it. */
TEST(store_snapshot_image_committed_by_digest_alone)
{
	char buf[64];
	const char *dir = th_tmpdir(buf);
	struct store *s = th_open(dir);
	struct gw_objset *set = gw_objset_new();
	struct store_compiled c = {.image_later = true,
				   .image_hash = gw_image_digest(IMG1, sizeof(IMG1))};
	uint64_t rev = 0, again = 0;
	uint8_t *p = NULL;
	size_t n = 0;

	th_put(set, "HTTPRoute", "default", "web", "a");
	CHECK_EQ_INT(store_commit_compiled(s, set, &c, "cluster", NULL, NULL, &rev), 0);
	CHECK_EQ_INT(store_snapshot_image(s, rev, &p, &n, NULL, NULL), -WG_ENOTFOUND);
	CHECK_EQ_INT(store_snapshot_image_put(s, rev, IMG2, sizeof(IMG2)), -WG_ENOTFOUND);
	CHECK_EQ_INT(store_snapshot_image_put(s, rev, IMG1, sizeof(IMG1)), 0);
	CHECK_EQ_INT(th_image(s, rev, IMG1, sizeof(IMG1)), 0);
	c.image_hash = gw_image_digest(IMG2, sizeof(IMG2));
	CHECK_EQ_INT(store_commit_compiled(s, set, &c, "cluster", NULL, NULL, &again), 0);
	CHECK_EQ_INT(again, rev);
	CHECK_EQ_INT(store_snapshot_image(s, rev, &p, &n, NULL, NULL), -WG_ENOTFOUND);
	CHECK_EQ_INT(store_snapshot_image_put(s, rev, IMG2, sizeof(IMG2)), 0);
	CHECK_EQ_INT(th_image(s, rev, IMG2, sizeof(IMG2)), 0);
	gw_objset_free(set);
	store_close(s);
	th_rmdir(dir);
}

struct rnd_model {
	char val[48][8]; /* "" = absent */
	char committed[48][8];
	uint64_t x;
};

static uint32_t rnd_next(struct rnd_model *m)
{
	m->x ^= m->x << 13, m->x ^= m->x >> 7, m->x ^= m->x << 17;
	return (uint32_t)(m->x >> 11);
}

static const char *rnd_kind(int k)
{
	return k % 3 ? "HTTPRoute" : "Service";
}

static void rnd_name(int k, char out[16])
{
	snprintf(out, 16, "k%02d", k);
}

/* A set holding the same objects as set (each shared). */
static struct gw_objset *rnd_share(struct gw_objset *set)
{
	struct gw_objset *o = gw_objset_new();

	for (int k = 0; k < GW_K_COUNT; k++) {
		size_t n = 0;
		const struct gw_object *const *v = gw_objset_list(set, (enum gw_kind)k, &n);

		for (size_t i = 0; i < n; i++) {
			gw_object_ref((struct gw_object *)(uintptr_t)v[i]);
			gw_objset_put(o, (struct gw_object *)(uintptr_t)v[i]);
		}
	}
	return o;
}

/* Random adds, changes, deletions, equal objects put again, changes undone
 * before the commit, relists, sets swapped for others sharing the objects,
 * reopens and commits by a second connection, with retention at work:
 * after every commit the digest kept step by step equals one made from
 * scratch, a new revision appears exactly when the objects differ from the
 * last commit's, committing again changes nothing, the open intervals are
 * the set's, and the newest revision loads back as the set. */
TEST(store_random_changes_keep_digest_and_members)
{
	int paths[3] = {0};

	for (uint64_t seed = 1; seed <= 4; seed++) {
		char buf[64], name[16], v[8];
		const char *dir = th_tmpdir(buf);
		struct store *s = th_open(dir);
		struct gw_objset *set = gw_objset_new();
		struct rnd_model m = {.x = 0x2545f4914f6cdd1dULL * seed};
		uint64_t rev = 0, last = 0;
		int commits = 0;

		store_set_retention(s, 5, 2);
		for (int step = 0; step < 600 && s; step++) {
			uint32_t r = rnd_next(&m) % 100;
			int k = (int)(rnd_next(&m) % 48);
			enum gw_kind kind = k % 3 ? GW_K_HTTPROUTE : GW_K_SERVICE;

			rnd_name(k, name);
			if (r < 35) {
				snprintf(v, sizeof(v), "v%d", (int)(rnd_next(&m) % 4));
				th_put(set, rnd_kind(k), "default", name, v);
				snprintf(m.val[k], sizeof(m.val[k]), "%s", v);
			} else if (r < 50) {
				gw_objset_del(set, kind, "default", name);
				m.val[k][0] = '\0';
			} else if (r < 65 && m.val[k][0]) {
				th_put(set, rnd_kind(k), "default", name, m.val[k]);
			} else if (r < 72 && m.val[k][0]) {
				th_put(set, rnd_kind(k), "default", name, "undone");
				th_put(set, rnd_kind(k), "default", name, m.val[k]);
			} else if (r < 74) {
				struct gw_objset *o = rnd_share(set);

				gw_objset_free(set);
				set = o;
			} else if (r < 76) {
				gw_objset_clear_kind(set, kind);
				for (int j = kind == GW_K_SERVICE ? 0 : 1; j < 48; j++) {
					if ((j % 3 ? GW_K_HTTPROUTE : GW_K_SERVICE) != kind ||
					    !m.val[j][0])
						continue;
					rnd_name(j, name);
					th_put(set, rnd_kind(j), "default", name, m.val[j]);
				}
			} else if (r < 78) {
				store_close(s);
				s = th_open(dir);
				if (!s)
					break;
				store_set_retention(s, 5, 2);
			} else if (r < 79) {
				/* someone else commits the set as it is */
				struct store *s2 = th_open(dir);

				CHECK(s2 != NULL);
				if (s2) {
					CHECK_EQ_INT(
						store_commit(s2, set, NULL, "ui", NULL, NULL, &rev),
						0);
					if (memcmp(m.val, m.committed, sizeof(m.val)) != 0)
						last++;
					CHECK_EQ_INT(rev, last);
					memcpy(m.committed, m.val, sizeof(m.val));
					store_close(s2);
				}
			}
			if (rnd_next(&m) % 3)
				continue;

			bool changed = memcmp(m.val, m.committed, sizeof(m.val)) != 0;
			uint8_t want[32], got[32];
			size_t n = th_set_digest(set, want);

			CHECK_EQ_INT(store_commit(s, set, NULL, "cluster", NULL, NULL, &rev), 0);
			CHECK_EQ_INT(rev, changed ? last + 1 : last);
			last = rev;
			memcpy(m.committed, m.val, sizeof(m.val));
			commits++;
			paths[s->last_path[0] == 'l' ? 0 : s->last_path[0] == 'w' ? 1 : 2]++;
			if (!rev)
				continue;
			CHECK(th_rev_digest(s, rev, got) && memcmp(got, want, 32) == 0);
			CHECK_EQ_INT(th_query(s, "SELECT n_objects FROM revisions ORDER BY rev DESC"
						 " LIMIT 1"),
				     n);
			CHECK_EQ_INT(th_query(s, "SELECT count(*) FROM members"
						 " WHERE last_rev IS NULL"),
				     n);
			CHECK_EQ_INT(store_commit(s, set, NULL, "cluster", NULL, NULL, &rev), 0);
			CHECK_EQ_INT(rev, last);
			if (commits % 8 == 0) {
				struct gw_objset *back = gw_objset_new();

				CHECK_EQ_INT(store_load(s, rev, back, NULL), 0);
				th_set_digest(back, got);
				CHECK(memcmp(got, want, 32) == 0);
				gw_objset_free(back);
			}
			if (check_failures) {
				fprintf(stderr, "  seed %llu step %d\n", (unsigned long long)seed,
					step);
				break;
			}
		}
		gw_objset_free(set);
		store_close(s);
		th_rmdir(dir);
		if (check_failures)
			break;
	}
	/* every way of finding the change was taken */
	CHECK(paths[0] > 0 && paths[1] > 0 && paths[2] > 0);
}

/* A VFS over the default one that counts the syncs of write-ahead logs
 * (which store calls make their transaction durable) and of databases
 * (checkpoints). */
struct sync_file {
	sqlite3_file base;
	sqlite3_file *real; /* follows this struct in the same allocation */
	bool wal, db;
};
static sqlite3_vfs *sync_real;
static int sync_wal_count, sync_db_count;

#define REAL(f) (((struct sync_file *)(f))->real)
static int sf_close(sqlite3_file *f)
{
	return REAL(f)->pMethods ? REAL(f)->pMethods->xClose(REAL(f)) : SQLITE_OK;
}
static int sf_read(sqlite3_file *f, void *p, int n, sqlite3_int64 off)
{
	return REAL(f)->pMethods->xRead(REAL(f), p, n, off);
}
static int sf_write(sqlite3_file *f, const void *p, int n, sqlite3_int64 off)
{
	return REAL(f)->pMethods->xWrite(REAL(f), p, n, off);
}
static int sf_truncate(sqlite3_file *f, sqlite3_int64 size)
{
	return REAL(f)->pMethods->xTruncate(REAL(f), size);
}
static int sf_sync(sqlite3_file *f, int flags)
{
	if (((struct sync_file *)f)->wal)
		sync_wal_count++;
	if (((struct sync_file *)f)->db)
		sync_db_count++;
	return REAL(f)->pMethods->xSync(REAL(f), flags);
}
static int sf_size(sqlite3_file *f, sqlite3_int64 *size)
{
	return REAL(f)->pMethods->xFileSize(REAL(f), size);
}
static int sf_lock(sqlite3_file *f, int l)
{
	return REAL(f)->pMethods->xLock(REAL(f), l);
}
static int sf_unlock(sqlite3_file *f, int l)
{
	return REAL(f)->pMethods->xUnlock(REAL(f), l);
}
static int sf_reserved(sqlite3_file *f, int *out)
{
	return REAL(f)->pMethods->xCheckReservedLock(REAL(f), out);
}
static int sf_control(sqlite3_file *f, int op, void *arg)
{
	return REAL(f)->pMethods->xFileControl(REAL(f), op, arg);
}
static int sf_sector(sqlite3_file *f)
{
	return REAL(f)->pMethods->xSectorSize(REAL(f));
}
static int sf_chars(sqlite3_file *f)
{
	return REAL(f)->pMethods->xDeviceCharacteristics(REAL(f));
}
static int sf_shm_map(sqlite3_file *f, int pg, int size, int extend, void volatile **p)
{
	return REAL(f)->pMethods->xShmMap(REAL(f), pg, size, extend, p);
}
static int sf_shm_lock(sqlite3_file *f, int off, int n, int flags)
{
	return REAL(f)->pMethods->xShmLock(REAL(f), off, n, flags);
}
static void sf_shm_barrier(sqlite3_file *f)
{
	REAL(f)->pMethods->xShmBarrier(REAL(f));
}
static int sf_shm_unmap(sqlite3_file *f, int del)
{
	return REAL(f)->pMethods->xShmUnmap(REAL(f), del);
}
#undef REAL

/* Version 2: no memory-mapped reads (xFetch), which the store leaves off. */
static const sqlite3_io_methods sync_methods = {
	.iVersion = 2,
	.xClose = sf_close,
	.xRead = sf_read,
	.xWrite = sf_write,
	.xTruncate = sf_truncate,
	.xSync = sf_sync,
	.xFileSize = sf_size,
	.xLock = sf_lock,
	.xUnlock = sf_unlock,
	.xCheckReservedLock = sf_reserved,
	.xFileControl = sf_control,
	.xSectorSize = sf_sector,
	.xDeviceCharacteristics = sf_chars,
	.xShmMap = sf_shm_map,
	.xShmLock = sf_shm_lock,
	.xShmBarrier = sf_shm_barrier,
	.xShmUnmap = sf_shm_unmap,
};

static int sync_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *f, int flags, int *out)
{
	struct sync_file *sf = (struct sync_file *)f;
	int rc;

	(void)vfs;
	sf->real = (sqlite3_file *)(sf + 1);
	sf->wal = (flags & SQLITE_OPEN_WAL) != 0;
	sf->db = (flags & SQLITE_OPEN_MAIN_DB) != 0;
	rc = sync_real->xOpen(sync_real, name, sf->real, flags, out);
	sf->base.pMethods = sf->real->pMethods ? &sync_methods : NULL;
	return rc;
}

static int sync_delete(sqlite3_vfs *v, const char *name, int dir)
{
	(void)v;
	return sync_real->xDelete(sync_real, name, dir);
}
static int sync_access(sqlite3_vfs *v, const char *name, int flags, int *out)
{
	(void)v;
	return sync_real->xAccess(sync_real, name, flags, out);
}
static int sync_full(sqlite3_vfs *v, const char *name, int n, char *out)
{
	(void)v;
	return sync_real->xFullPathname(sync_real, name, n, out);
}
static int sync_random(sqlite3_vfs *v, int n, char *out)
{
	(void)v;
	return sync_real->xRandomness(sync_real, n, out);
}
static int sync_sleep(sqlite3_vfs *v, int us)
{
	(void)v;
	return sync_real->xSleep(sync_real, us);
}
static int sync_time(sqlite3_vfs *v, double *out)
{
	(void)v;
	return sync_real->xCurrentTime(sync_real, out);
}
static int sync_error(sqlite3_vfs *v, int n, char *out)
{
	(void)v;
	return sync_real->xGetLastError(sync_real, n, out);
}
static int sync_time64(sqlite3_vfs *v, sqlite3_int64 *out)
{
	(void)v;
	return sync_real->xCurrentTimeInt64(sync_real, out);
}

static sqlite3_vfs sync_vfs;

/* Makes the counting VFS the default (sync_vfs_remove undoes it). */
static int sync_vfs_install(void)
{
	sync_real = sqlite3_vfs_find(NULL);
	sync_vfs = *sync_real;
	sync_vfs.iVersion = 2;
	sync_vfs.szOsFile = (int)sizeof(struct sync_file) + sync_real->szOsFile;
	sync_vfs.zName = "wg-sync-count";
	sync_vfs.xOpen = sync_open;
	sync_vfs.xDelete = sync_delete;
	sync_vfs.xAccess = sync_access;
	sync_vfs.xFullPathname = sync_full;
	sync_vfs.xRandomness = sync_random;
	sync_vfs.xSleep = sync_sleep;
	sync_vfs.xCurrentTime = sync_time;
	sync_vfs.xGetLastError = sync_error;
	sync_vfs.xCurrentTimeInt64 = sync_time64;
	sync_vfs.xDlOpen = NULL;
	sync_vfs.xDlError = NULL;
	sync_vfs.xDlSym = NULL;
	sync_vfs.xDlClose = NULL;
	return sqlite3_vfs_register(&sync_vfs, 1);
}

static void sync_vfs_remove(void)
{
	sqlite3_vfs_unregister(&sync_vfs);
	sqlite3_vfs_register(sync_real, 1);
}

/* The revision's transaction reaches the disk before store_commit returns
 * (the caller serves it next); the image's bytes written after serving
 * do too, so that the next commit's sync does not have to carry their
 * megabyte on its way to serving. Other writes (settings) do not wait. */
TEST(store_commit_and_image_bytes_are_synced)
{
	char buf[64];
	const char *dir = th_tmpdir(buf);
	struct store *s;
	struct gw_objset *set = gw_objset_new();
	struct store_compiled c = {.image = IMG1, .image_len = sizeof(IMG1), .image_later = true};
	uint64_t rev = 0;
	int before;

	CHECK_EQ_INT(sync_vfs_install(), SQLITE_OK);
	s = th_open(dir);
	CHECK(s != NULL);
	if (!s)
		goto out;
	th_put(set, "HTTPRoute", "default", "a", "1");
	before = sync_wal_count;
	CHECK_EQ_INT(store_commit_compiled(s, set, &c, "cluster", NULL, NULL, &rev), 0);
	CHECK(sync_wal_count > before);
	before = sync_wal_count;
	CHECK_EQ_INT(store_snapshot_image_put(s, rev, IMG1, sizeof(IMG1)), 0);
	CHECK(sync_wal_count > before);
	th_put(set, "HTTPRoute", "default", "a", "2");
	before = sync_wal_count;
	CHECK_EQ_INT(store_commit_compiled(s, set, &c, "cluster", NULL, NULL, &rev), 0);
	CHECK(sync_wal_count > before);
	before = sync_wal_count;
	CHECK_EQ_INT(store_setting_set(s, "k", "v", 1), 0);
	CHECK_EQ_INT(sync_wal_count, before);
out:
	store_close(s);
	sync_vfs_remove();
	gw_objset_free(set);
	th_rmdir(dir);
}

/* A revision's commit never checkpoints the log (copying it into the
 * database and syncing that, milliseconds on the way to serving), even
 * when it is the commit that crosses the threshold: the write after it
 * does. The log stays bounded all the same. */
TEST(store_commit_leaves_the_checkpoint_to_the_next_write)
{
	char buf[64], name[32], wal[128], value[2048];
	const char *dir = th_tmpdir(buf);
	struct store *s;
	struct gw_objset *set = gw_objset_new();
	struct store_compiled c = {.image = IMG1, .image_len = sizeof(IMG1), .image_later = true};
	struct stat st;
	uint64_t rev = 0;
	int in_commits = 0, after = 0, before;

	memset(value, 'x', sizeof(value) - 1);
	value[sizeof(value) - 1] = '\0';
	CHECK_EQ_INT(sync_vfs_install(), SQLITE_OK);
	s = th_open(dir);
	CHECK(s != NULL);
	if (!s)
		goto out;
	/* Each commit adds some 25 pages to the log, each image write one:
	 * the commits are the ones that cross 1,000. */
	for (int i = 0; i < 120; i++) {
		for (int j = 0; j < 40; j++) {
			snprintf(name, sizeof(name), "r%d-%d", i, j);
			value[0] = (char)('a' + i % 26);
			th_put(set, "HTTPRoute", "default", name, value);
		}
		before = sync_db_count;
		CHECK_EQ_INT(store_commit_compiled(s, set, &c, "cluster", NULL, NULL, &rev), 0);
		in_commits += sync_db_count - before;
		before = sync_db_count;
		CHECK_EQ_INT(store_snapshot_image_put(s, rev, IMG1, sizeof(IMG1)), 0);
		after += sync_db_count - before;
	}
	CHECK_EQ_INT(in_commits, 0);
	CHECK(after > 0);
	snprintf(wal, sizeof(wal), "%s/waygate.db-wal", dir);
	CHECK(stat(wal, &st) == 0 && st.st_size < 16 << 20);
out:
	store_close(s);
	sync_vfs_remove();
	gw_objset_free(set);
	th_rmdir(dir);
}
