/* SPDX-License-Identifier: MIT */
/*
 * test_store.c: opening the store: directory and file modes, errors named
 * by path, the second (reader) connection, schema versions, the figures for
 * the UI, and recovery of a damaged database (garbage header: start empty;
 * a damaged page elsewhere: the newest intact revision, the pin, the
 * credentials and settings come back; an object whose bytes changed is
 * caught by its hash and an older revision is restored instead; a store
 * damaged at schema 3 is salvaged by its old digests).
 */
#include "helpers.h"

#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>

#include "check.h"
#include "core/arena.h"
#include "core/err.h"

/* The name of the file moved aside (waygate.db.corrupt-*), or "" if none. */
static void find_corrupt(const char *dir, char *out, size_t size)
{
	DIR *d = opendir(dir);
	struct dirent *e;

	out[0] = '\0';
	while (d && (e = readdir(d)) != NULL)
		if (strncmp(e->d_name, "waygate.db.corrupt-", 19) == 0 &&
		    !strstr(e->d_name, "-wal"))
			snprintf(out, size, "%s", e->d_name);
	if (d)
		closedir(d);
}

/* Overwrites len bytes at off in file with a pattern. */
static void scribble(const char *file, off_t off, size_t len)
{
	unsigned char junk[8192];
	int fd = open(file, O_WRONLY);

	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = (unsigned char)(0xa5 ^ (i * 31));
	if (fd == -1)
		return;
	if (len > sizeof(junk))
		len = sizeof(junk);
	(void)!pwrite(fd, junk, len, off);
	close(fd);
}

/* Replaces the first occurrence of `from` in file by `to` (same length). */
static bool replace_bytes(const char *file, const char *from, const char *to)
{
	static char data[4 << 20];
	size_t n, fl = strlen(from);
	FILE *f = fopen(file, "r+b");
	bool done = false;

	if (!f)
		return false;
	n = fread(data, 1, sizeof(data), f);
	for (size_t i = 0; i + fl <= n; i++) {
		if (memcmp(data + i, from, fl) == 0) {
			fseek(f, (long)i, SEEK_SET);
			fwrite(to, 1, fl, f);
			done = true;
			break;
		}
	}
	fclose(f);
	return done;
}

/* Damages the root page of table `name` so that quick_check fails while
 * the rest of the file stays readable. */
static void damage_table(struct store *s, const char *path, const char *name)
{
	char sql[128];
	int64_t root, page;

	snprintf(sql, sizeof(sql), "SELECT rootpage FROM sqlite_schema WHERE name = '%s'", name);
	root = th_query(s, sql);
	page = th_query(s, "PRAGMA page_size");
	store_close(s);
	if (root > 1 && page > 0)
		scribble(path, (off_t)((root - 1) * page), (size_t)page);
}

TEST(store_open_creates_private_dir_and_file)
{
	char buf[64], dir[128], path[192], wal[200];
	const char *top = th_tmpdir(buf);
	struct store_stats st;
	struct stat sb;
	struct store *s;

	snprintf(dir, sizeof(dir), "%s/var/lib/waygate", top);
	s = th_open(dir);
	CHECK(s != NULL);
	CHECK_EQ_INT(stat(dir, &sb), 0);
	CHECK_EQ_INT(sb.st_mode & 0777, 0700);
	snprintf(path, sizeof(path), "%s/waygate.db", dir);
	CHECK_EQ_STR(store_path(s), path);
	CHECK_EQ_INT(stat(path, &sb), 0);
	CHECK_EQ_INT(sb.st_mode & 0777, 0600);
	CHECK(store_recovery_note(s) == NULL);
	CHECK_EQ_INT(store_quick_stats(s, &st), 0);
	CHECK_EQ_INT(st.serving_rev, 0);
	CHECK_EQ_INT(st.n_revisions, 0);
	CHECK(st.db_bytes > 0);
	CHECK(!st.recovered);
	CHECK_EQ_INT(th_query(s, "PRAGMA journal_mode = WAL") >= 0, 1);
	CHECK_EQ_INT(th_query(s, "PRAGMA user_version"), 4);
	/* The log beside it holds the same data: same mode. */
	CHECK_EQ_INT(store_setting_set(s, "k", "v", 1), 0);
	snprintf(wal, sizeof(wal), "%s-wal", path);
	CHECK_EQ_INT(stat(wal, &sb), 0);
	CHECK_EQ_INT(sb.st_mode & 0777, 0600);
	store_close(s);

	/* A file made readable by others gets its mode back. */
	chmod(path, 0644);
	s = th_open(dir);
	CHECK_EQ_INT(stat(path, &sb), 0);
	CHECK_EQ_INT(sb.st_mode & 0777, 0600);
	store_close(s);
	th_rmdir(top);
}

TEST(store_open_error_names_path)
{
	char buf[64], file[128];
	const char *dir = th_tmpdir(buf);
	struct diag d = {0};
	struct store *s;
	FILE *f;

	/* The state dir is a regular file. */
	snprintf(file, sizeof(file), "%s/notadir", dir);
	f = fopen(file, "w");
	if (f)
		fclose(f);
	s = store_open(file, &d);
	CHECK(s == NULL);
	CHECK_EQ_INT(d.errors, 1);
	if (d.n) {
		CHECK_EQ_STR(d.v[0].file, file);
		CHECK(strstr(d.v[0].msg, "state directory") != NULL);
	}
	diag_fini(&d);

	/* A reader needs an existing store. */
	memset(&d, 0, sizeof(d));
	s = store_open_reader(dir, &d);
	CHECK(s == NULL);
	CHECK_EQ_INT(d.errors, 1);
	if (d.n)
		CHECK(strstr(d.v[0].file, "/waygate.db") != NULL);
	diag_fini(&d);
	th_rmdir(dir);
}

TEST(store_reader_connection_sees_and_pins)
{
	char buf[64];
	const char *dir = th_tmpdir(buf);
	struct store *s = th_open(dir), *r;
	struct gw_objset *set = gw_objset_new(), *back = gw_objset_new();
	struct diag d = {0};
	uint64_t r1 = 0, r2 = 0, got = 0;

	th_put(set, "HTTPRoute", "default", "a", "1");
	CHECK_EQ_INT(store_commit(s, set, "{}", "cluster", NULL, NULL, &r1), 0);
	r = store_open_reader(dir, &d);
	CHECK(r != NULL);
	CHECK_EQ_INT(d.n, 0);
	if (!r)
		goto out;
	/* A commit after the reader opened is visible to it. */
	th_put(set, "HTTPRoute", "default", "a", "2");
	CHECK_EQ_INT(store_commit(s, set, "{}", "cluster", NULL, NULL, &r2), 0);
	CHECK_EQ_INT(store_load(r, 0, back, &got), 0);
	CHECK_EQ_INT(got, r2);
	/* The UI pins through its connection; the control thread serves it. */
	CHECK_EQ_INT(store_pin(r, r1, "ui", "admin"), 0);
	CHECK_EQ_INT(store_serving(s, &got), 0);
	CHECK_EQ_INT(got, r1);
	/* A reader holding a read transaction does not block a commit. */
	CHECK_EQ_INT(store_exec(r, "BEGIN; SELECT count(*) FROM objects;"), 0);
	th_put(set, "HTTPRoute", "default", "a", "3");
	CHECK_EQ_INT(store_commit(s, set, "{}", "cluster", NULL, NULL, &got), 0);
	CHECK_EQ_INT(got, r2 + 1);
	CHECK_EQ_INT(store_exec(r, "COMMIT"), 0);
	store_close(r);
out:
	diag_fini(&d);
	gw_objset_free(set);
	gw_objset_free(back);
	store_close(s);
	th_rmdir(dir);
}

TEST(store_open_refuses_newer_schema)
{
	char buf[64], aside[300];
	const char *dir = th_tmpdir(buf);
	struct store *s = th_open(dir);
	struct diag d = {0};

	CHECK_EQ_INT(store_exec(s, "PRAGMA user_version = 99"), 0);
	store_close(s);
	s = store_open(dir, &d);
	CHECK(s == NULL);
	CHECK_EQ_INT(d.errors, 1);
	if (d.n)
		CHECK(strstr(d.v[0].msg, "newer") != NULL);
	/* Not damage: the file stays where it is. */
	find_corrupt(dir, aside, sizeof(aside));
	CHECK_EQ_STR(aside, "");
	diag_fini(&d);
	store_close(s);
	th_rmdir(dir);
}

TEST(store_quick_stats_figures)
{
	char buf[64];
	const char *dir = th_tmpdir(buf);
	struct store *s = th_open(dir);
	struct gw_objset *set = gw_objset_new();
	struct store_stats st;
	uint64_t rev = 0;

	th_put(set, "HTTPRoute", "default", "a", "1");
	th_put(set, "HTTPRoute", "default", "b", "1");
	CHECK_EQ_INT(store_commit(s, set, NULL, "file", NULL, NULL, &rev), 0);
	th_put(set, "HTTPRoute", "default", "c", "1");
	CHECK_EQ_INT(store_commit(s, set, NULL, "file", NULL, NULL, &rev), 0);
	CHECK_EQ_INT(store_pin(s, 1, "ui", NULL), 0);
	CHECK_EQ_INT(store_quick_stats(s, &st), 0);
	CHECK_EQ_INT(st.newest_rev, 2);
	CHECK_EQ_INT(st.pinned_rev, 1);
	CHECK_EQ_INT(st.serving_rev, 1);
	CHECK_EQ_INT(st.n_revisions, 2);
	CHECK_EQ_INT(st.n_objects, 2);
	CHECK(st.db_bytes > 4096);
	gw_objset_free(set);
	store_close(s);
	th_rmdir(dir);
}

TEST(store_recover_garbage_header_starts_empty)
{
	char buf[64], path[128], aside[300], kept[400];
	const char *dir = th_tmpdir(buf);
	struct store *s = th_open(dir);
	struct gw_objset *set = gw_objset_new();
	struct arena *a = arena_new(0);
	struct store_audit_entry *e = NULL;
	struct store_stats st;
	uint64_t rev = 0;
	struct stat sb;
	size_t n = 0;

	th_put(set, "HTTPRoute", "default", "a", "1");
	CHECK_EQ_INT(store_commit(s, set, NULL, "cluster", NULL, NULL, &rev), 0);
	store_close(s);
	snprintf(path, sizeof(path), "%s/waygate.db", dir);
	scribble(path, 0, 4096);

	s = th_open(dir);
	CHECK(s != NULL);
	if (!s)
		goto out;
	CHECK(store_recovery_note(s) != NULL);
	if (store_recovery_note(s)) {
		CHECK(strstr(store_recovery_note(s), "damaged") != NULL);
		CHECK(strstr(store_recovery_note(s), "starts empty") != NULL);
	}
	find_corrupt(dir, aside, sizeof(aside));
	CHECK(aside[0] != '\0');
	snprintf(kept, sizeof(kept), "%s/%s", dir, aside);
	CHECK_EQ_INT(stat(kept, &sb), 0);
	CHECK(sb.st_size >= 4096);
	strcat(kept, "-shm");
	CHECK(stat(kept, &sb) == -1);
	kept[strlen(kept) - 4] = '\0';
	if (store_recovery_note(s))
		CHECK(strstr(store_recovery_note(s), kept) != NULL);
	CHECK_EQ_INT(store_quick_stats(s, &st), 0);
	CHECK_EQ_INT(st.serving_rev, 0);
	CHECK(st.recovered);
	/* The recovery is in the audit log, and the store works. */
	CHECK_EQ_INT(store_audit_list(s, 0, 0, a, &e, &n), 0);
	CHECK_EQ_INT(n, 1);
	if (n)
		CHECK_EQ_STR(e[0].source, "store");
	CHECK_EQ_INT(store_commit(s, set, NULL, "cluster", NULL, NULL, &rev), 0);
	CHECK_EQ_INT(rev, 1);
	store_close(s);
	/* A clean reopen is not a recovery. */
	s = th_open(dir);
	CHECK(s && store_recovery_note(s) == NULL);
out:
	arena_free(a);
	gw_objset_free(set);
	store_close(s);
	th_rmdir(dir);
}

TEST(store_recover_salvages_newest_pinned_credentials_settings)
{
	char buf[64], path[128], aside[300], *v = NULL;
	const char *dir = th_tmpdir(buf);
	struct store *s = th_open(dir);
	struct gw_objset *set = gw_objset_new(), *back = gw_objset_new();
	struct arena *a = arena_new(0);
	uint64_t rev = 0, got = 0;
	size_t len = 0;

	th_put(set, "HTTPRoute", "default", "a", "1");
	th_put(set, "Service", "default", "svc", "1");
	CHECK_EQ_INT(store_commit(s, set, "{\"rev\":1}", "cluster", NULL, NULL, &rev), 0);
	th_put(set, "HTTPRoute", "default", "a", "2");
	CHECK_EQ_INT(store_commit(s, set, "{\"rev\":2}", "cluster", NULL, NULL, &rev), 0);
	th_put(set, "HTTPRoute", "default", "a", "3");
	CHECK_EQ_INT(store_commit(s, set, "{\"rev\":3}", "cluster", NULL, NULL, &rev), 0);
	CHECK_EQ_INT(store_pin(s, 1, "ui", "admin"), 0);
	CHECK_EQ_INT(store_set_password(s, "admin", "correct horse", "cli"), 0);
	CHECK_EQ_INT(store_setting_set(s, "kubeconfig", "apiVersion: v1\n", 15), 0);
	snprintf(path, sizeof(path), "%s/waygate.db", dir);
	damage_table(s, path, "audit");

	s = th_open(dir);
	CHECK(s != NULL);
	if (!s)
		goto out;
	CHECK(store_recovery_note(s) != NULL);
	if (store_recovery_note(s))
		CHECK(strstr(store_recovery_note(s), "revision 3 (2 objects) and pinned revision 1 "
						     "was restored") != NULL);
	find_corrupt(dir, aside, sizeof(aside));
	CHECK(aside[0] != '\0');
	/* The pin is served; the newest is there too; 2 was not kept. */
	CHECK_EQ_INT(store_load(s, 0, back, &got), 0);
	CHECK_EQ_INT(got, 1);
	const struct gw_object *o = gw_objset_get(back, GW_K_HTTPROUTE, "default", "a");
	CHECK(o && strstr(o->json, "\"v\":\"1\""));
	CHECK_EQ_INT(gw_objset_count(back, GW_K_SERVICE), 1);
	gw_objset_free(back);
	back = gw_objset_new();
	CHECK_EQ_INT(store_load(s, 3, back, &got), 0);
	CHECK_EQ_INT(store_load(s, 2, back, &got), -WG_ENOTFOUND);
	CHECK_EQ_INT(store_snapshot_json(s, 3, a, &v, NULL), 0);
	CHECK_EQ_STR(v, "{\"rev\":3}");
	/* Credentials and settings survived. */
	CHECK_EQ_INT(store_check_password(s, "admin", "correct horse"), 0);
	v = NULL;
	CHECK_EQ_INT(store_setting_get(s, "kubeconfig", &v, &len), 0);
	CHECK_EQ_INT(len, 15);
	free(v);
	/* Numbering continues after the highest revision. */
	th_put(set, "HTTPRoute", "default", "a", "4");
	CHECK_EQ_INT(store_commit(s, set, NULL, "cluster", NULL, NULL, &rev), 0);
	CHECK_EQ_INT(rev, 4);
out:
	arena_free(a);
	gw_objset_free(set);
	gw_objset_free(back);
	store_close(s);
	th_rmdir(dir);
}

TEST(store_recover_skips_revision_with_changed_bytes)
{
	char buf[64], path[128];
	const char *dir = th_tmpdir(buf);
	struct store *s = th_open(dir);
	struct gw_objset *set = gw_objset_new(), *back = gw_objset_new();
	uint64_t rev = 0, got = 0;

	th_put(set, "HTTPRoute", "default", "a", "AAAA-first");
	CHECK_EQ_INT(store_commit(s, set, NULL, "cluster", NULL, NULL, &rev), 0);
	th_put(set, "HTTPRoute", "default", "a", "ZZZZ-second");
	CHECK_EQ_INT(store_commit(s, set, NULL, "cluster", NULL, NULL, &rev), 0);
	CHECK_EQ_INT(rev, 2);
	snprintf(path, sizeof(path), "%s/waygate.db", dir);
	damage_table(s, path, "audit");
	/* A flipped byte inside the newest object's JSON: the page stays
	 * well-formed, only the hash can tell. */
	CHECK(replace_bytes(path, "ZZZZ-second", "ZZZZ-secand"));

	s = th_open(dir);
	CHECK(s != NULL);
	if (!s)
		goto out;
	if (store_recovery_note(s))
		CHECK(strstr(store_recovery_note(s), "revision 1 (1 objects) was restored "
						     "(newer ones were damaged)") != NULL);
	else
		CHECK(store_recovery_note(s) != NULL);
	CHECK_EQ_INT(store_load(s, 0, back, &got), 0);
	CHECK_EQ_INT(got, 1);
	const struct gw_object *o = gw_objset_get(back, GW_K_HTTPROUTE, "default", "a");
	CHECK(o && strstr(o->json, "AAAA-first"));
	th_put(set, "HTTPRoute", "default", "a", "new");
	CHECK_EQ_INT(store_commit(s, set, NULL, "cluster", NULL, NULL, &rev), 0);
	CHECK_EQ_INT(rev, 3);
out:
	gw_objset_free(set);
	gw_objset_free(back);
	store_close(s);
	th_rmdir(dir);
}

/* A store damaged before it could be migrated to schema 4 keeps its
 * digests in the old form (over the sorted hashes): the salvage still
 * proves the revision intact with it, restores it with today's digest, and
 * the same set then commits as unchanged. */
TEST(store_recover_schema3_store)
{
	char buf[64], path[128];
	const char *dir = th_tmpdir(buf);
	struct store *s = th_open(dir);
	struct gw_objset *set = gw_objset_new(), *back = gw_objset_new();
	uint8_t want[32], got[32];
	uint64_t rev = 0, got_rev = 0;

	th_put(set, "HTTPRoute", "default", "a", "1");
	th_put(set, "Service", "default", "svc", "1");
	CHECK_EQ_INT(store_commit(s, set, NULL, "cluster", NULL, NULL, &rev), 0);
	th_put(set, "HTTPRoute", "default", "a", "2");
	CHECK_EQ_INT(store_commit(s, set, NULL, "cluster", NULL, NULL, &rev), 0);
	CHECK_EQ_INT(th_to_schema3(s), 0);
	snprintf(path, sizeof(path), "%s/waygate.db", dir);
	damage_table(s, path, "audit");

	s = th_open(dir);
	CHECK(s != NULL);
	if (!s)
		goto out;
	CHECK(store_recovery_note(s) != NULL);
	if (store_recovery_note(s))
		CHECK(strstr(store_recovery_note(s), "revision 2 (2 objects) was restored") !=
		      NULL);
	CHECK_EQ_INT(store_load(s, 0, back, &got_rev), 0);
	CHECK_EQ_INT(got_rev, 2);
	th_set_digest(set, want);
	CHECK(th_rev_digest(s, 2, got) && memcmp(got, want, 32) == 0);
	CHECK_EQ_INT(store_commit(s, set, NULL, "cluster", NULL, NULL, &rev), 0);
	CHECK_EQ_INT(rev, 2);
out:
	gw_objset_free(set);
	gw_objset_free(back);
	store_close(s);
	th_rmdir(dir);
}

struct ui_thread {
	const char *dir;
	int failures;
	int reads;
};

/* What the UI thread does meanwhile: sessions, traffic, listing. */
static void *ui_work(void *arg)
{
	struct ui_thread *u = arg;
	struct diag d = {0};
	struct store *r = store_open_reader(u->dir, &d);
	char id[STORE_SESSION_ID_HEX + 1], user[32];

	diag_fini(&d);
	if (!r) {
		u->failures++;
		return NULL;
	}
	for (int i = 0; i < 60; i++) {
		struct store_traffic t = {.minute = (uint64_t)(1000 + i), .requests = 1};
		struct arena *a = arena_new(0);
		struct store_revision *v = NULL;
		size_t n = 0;

		if (store_session_create(r, "admin", id) != 0 ||
		    store_session_lookup(r, id, 60000, 0, user, sizeof(user)) != 0 ||
		    store_traffic_add(r, &t) != 0 || store_revisions(r, 0, 10, a, &v, &n) != 0)
			u->failures++;
		u->reads += (int)n;
		arena_free(a);
	}
	store_close(r);
	return NULL;
}

TEST(store_control_and_ui_threads_concurrently)
{
	char buf[64], v[16];
	char *dir = th_tmpdir(buf);
	struct store *s = th_open(dir);
	struct gw_objset *set = gw_objset_new();
	struct ui_thread u = {.dir = dir};
	uint64_t rev = 0;
	int failures = 0;
	pthread_t t;

	th_put(set, "HTTPRoute", "default", "a", "0");
	CHECK_EQ_INT(store_commit(s, set, "{}", "cluster", NULL, NULL, &rev), 0);
	CHECK_EQ_INT(pthread_create(&t, NULL, ui_work, &u), 0);
	for (int i = 1; i <= 30; i++) {
		snprintf(v, sizeof(v), "%d", i);
		th_put(set, "HTTPRoute", "default", "a", v);
		if (store_commit(s, set, "{}", "cluster", NULL, NULL, &rev) != 0)
			failures++;
	}
	pthread_join(t, NULL);
	CHECK_EQ_INT(failures, 0);
	CHECK_EQ_INT(u.failures, 0);
	CHECK(u.reads > 0);
	CHECK_EQ_INT(rev, 31);
	CHECK_EQ_INT(th_query(s, "SELECT count(*) FROM traffic"), 60);
	gw_objset_free(set);
	store_close(s);
	th_rmdir(dir);
}

TEST(store_reader_reports_damage_and_leaves_it)
{
	char buf[64], path[128], aside[300];
	char *dir = th_tmpdir(buf);
	struct store *s = th_open(dir);
	struct diag d = {0};

	CHECK_EQ_INT(store_setting_set(s, "k", "v", 1), 0);
	store_close(s);
	snprintf(path, sizeof(path), "%s/waygate.db", dir);
	scribble(path, 0, 100);
	s = store_open_reader(dir, &d);
	CHECK(s == NULL);
	CHECK_EQ_INT(d.errors, 1);
	if (d.n)
		CHECK(strstr(d.v[0].msg, "recovers a damaged database") != NULL);
	find_corrupt(dir, aside, sizeof(aside));
	CHECK_EQ_STR(aside, "");
	diag_fini(&d);
	th_rmdir(dir);
}

/* A start that defers the check opens a damaged file as it is (the check
 * has not run), and store_check then finds the damage and recovers it as
 * store_open would have; a sound file checks clean. */
TEST(store_deferred_check_recovers_later)
{
	char buf[64], path[128], aside[300];
	const char *dir = th_tmpdir(buf);
	struct store *s = th_open(dir);
	struct gw_objset *set = gw_objset_new(), *back = gw_objset_new();
	struct diag d = {0};
	uint64_t rev = 0, got = 0;

	th_put(set, "HTTPRoute", "default", "a", "1");
	CHECK_EQ_INT(store_commit(s, set, NULL, "cluster", NULL, NULL, &rev), 0);
	store_close(s);
	s = store_open_deferred(dir, &d);
	CHECK(s != NULL);
	if (s)
		CHECK_EQ_INT(store_check(s, &d), 0);
	snprintf(path, sizeof(path), "%s/waygate.db", dir);
	damage_table(s, path, "audit");

	s = store_open_deferred(dir, &d);
	CHECK(s != NULL);
	if (!s)
		goto out;
	CHECK(store_recovery_note(s) == NULL);
	find_corrupt(dir, aside, sizeof(aside));
	CHECK(aside[0] == '\0');
	CHECK_EQ_INT(store_check(s, &d), 1);
	CHECK(store_recovery_note(s) != NULL);
	find_corrupt(dir, aside, sizeof(aside));
	CHECK(aside[0] != '\0');
	CHECK_EQ_INT(store_load(s, 0, back, &got), 0);
	CHECK_EQ_INT(got, 1);
	/* commits go on from the restored revision */
	th_put(set, "HTTPRoute", "default", "a", "2");
	CHECK_EQ_INT(store_commit(s, set, NULL, "cluster", NULL, NULL, &rev), 0);
	CHECK_EQ_INT(rev, 2);
	store_close(s);
out:
	diag_fini(&d);
	gw_objset_free(set);
	gw_objset_free(back);
	th_rmdir(dir);
}
