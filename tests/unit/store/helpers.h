/* SPDX-License-Identifier: MIT */
/*
 * helpers.h: what the store tests share: a fresh temporary state directory
 * per test (removed at the end), objects built from small JSON documents,
 * a controllable clock, a raw query against the store's connection, set
 * digests made from scratch, and a database turned back into schema 3.
 */
#ifndef WG_TESTS_STORE_HELPERS_H
#define WG_TESTS_STORE_HELPERS_H

#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "core/diag.h"
#include "gwapi/objset.h"
#include "store/internal.h"
#include "store/store.h"

static inline char *th_tmpdir(char buf[64])
{
	snprintf(buf, 64, "/tmp/wg-store-test-XXXXXX");
	return mkdtemp(buf);
}

static inline int th_rm_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static inline void th_rmdir(const char *dir)
{
	/* WG_STORE_KEEP=1 keeps the directories for a look at the files. */
	if (getenv("WG_STORE_KEEP"))
		fprintf(stderr, "  kept %s\n", dir);
	else if (dir && strncmp(dir, "/tmp/wg-store-test-", 19) == 0)
		nftw(dir, th_rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

/* An object of kind (Kind name) ns/name whose spec carries `value`. */
static inline struct gw_object *th_obj(const char *kind, const char *ns, const char *name,
				       const char *value)
{
	char json[4096], err[128];
	int k = gw_kind_from_name(NULL, kind);
	const struct gw_kind_info *ki = gw_kind_info((enum gw_kind)k);
	struct gw_object *o;

	if (ki->namespaced)
		snprintf(json, sizeof(json),
			 "{\"apiVersion\":\"%s%sv1\",\"kind\":\"%s\",\"metadata\":{\"name\":\"%s\","
			 "\"namespace\":\"%s\",\"resourceVersion\":\"1\"},\"spec\":{\"v\":\"%s\"}}",
			 ki->group, *ki->group ? "/" : "", kind, name, ns, value);
	else
		snprintf(json, sizeof(json),
			 "{\"apiVersion\":\"%s%sv1\",\"kind\":\"%s\",\"metadata\":{\"name\":\"%s\","
			 "\"resourceVersion\":\"1\"},\"spec\":{\"v\":\"%s\"}}",
			 ki->group, *ki->group ? "/" : "", kind, name, value);
	o = gw_object_parse(k, json, strlen(json), err, sizeof(err));
	if (!o)
		fprintf(stderr, "th_obj: %s\n", err);
	return o;
}

static inline void th_put(struct gw_objset *set, const char *kind, const char *ns, const char *name,
			  const char *value)
{
	gw_objset_put(set, th_obj(kind, ns, name, value));
}

/* One integer from a query on the store's own connection (-1 on error). */
/* HTTPRoutes r000..r<n-1> in default, each with data `data`. */
static inline void th_put_routes(struct gw_objset *set, int n, const char *data)
{
	char name[16];

	for (int i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "r%03d", i);
		th_put(set, "HTTPRoute", "default", name, data);
	}
}

static inline int64_t th_query(struct store *s, const char *sql)
{
	sqlite3_stmt *st = NULL;
	int64_t v = -1;

	if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
		return -1;
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

/* The digest of set made from scratch (every object hashed), and its
 * number of objects. */
static inline size_t th_set_digest(struct gw_objset *set, uint8_t out[32])
{
	size_t total = 0;

	memset(out, 0, 32);
	for (int k = 0; k < GW_K_COUNT; k++) {
		size_t n = 0;
		const struct gw_object *const *v = gw_objset_list(set, (enum gw_kind)k, &n);

		for (size_t i = 0; i < n; i++) {
			uint8_t h[32];

			store_obj_hash(gw_kind_info((enum gw_kind)k)->kind, v[i]->ns, v[i]->name,
				       v[i]->json, v[i]->json_len, h);
			store_digest_add(out, h);
		}
		total += n;
	}
	return total;
}

/* The digest revision rev records (false when there is none). */
static inline bool th_rev_digest(struct store *s, uint64_t rev, uint8_t out[32])
{
	sqlite3_stmt *st = NULL;
	bool ok = false;

	if (sqlite3_prepare_v2(s->db, "SELECT set_hash FROM revisions WHERE rev = ?1", -1, &st,
			       NULL) != SQLITE_OK)
		return false;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)rev);
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_bytes(st, 0) == 32) {
		memcpy(out, sqlite3_column_blob(st, 0), 32);
		ok = true;
	}
	sqlite3_finalize(st);
	return ok;
}

/* Sets revision rev's recorded digest. */
static inline int th_set_rev_digest(struct store *s, uint64_t rev, const uint8_t d[32])
{
	sqlite3_stmt *st = NULL;
	int rc;

	if (sqlite3_prepare_v2(s->db, "UPDATE revisions SET set_hash = ?2 WHERE rev = ?1", -1, &st,
			       NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)rev);
	sqlite3_bind_blob(st, 2, d, 32, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

/* Turns s's database back into schema 3: every revision's digest in the
 * old form (SHA-256 of its objects' hashes sorted). 0 on success. */
static inline int th_to_schema3(struct store *s)
{
	sqlite3_stmt *st = NULL;
	int64_t revs[256];
	size_t n = 0;
	int err = 0;

	if (sqlite3_prepare_v2(s->db, "SELECT rev FROM revisions", -1, &st, NULL) != SQLITE_OK)
		return -1;
	while (n < 256 && sqlite3_step(st) == SQLITE_ROW)
		revs[n++] = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	for (size_t i = 0; i < n && !err; i++) {
		uint8_t *hs = NULL, d[32];
		size_t m = 0;

		if (sqlite3_prepare_v2(s->db,
				       "SELECT o.hash FROM revision_objects r JOIN objects o"
				       " ON o.id = r.obj WHERE r.rev = ?1",
				       -1, &st, NULL) != SQLITE_OK)
			return -1;
		sqlite3_bind_int64(st, 1, revs[i]);
		while (sqlite3_step(st) == SQLITE_ROW) {
			uint8_t *nv = realloc(hs, 32 * (m + 1));

			if (!nv)
				break;
			hs = nv;
			memcpy(hs + 32 * m++, sqlite3_column_blob(st, 0), 32);
		}
		sqlite3_finalize(st);
		store_set_hash_sorted(hs, m, d);
		free(hs);
		err = th_set_rev_digest(s, (uint64_t)revs[i], d);
	}
	return err ? err : store_exec(s, "PRAGMA user_version = 3");
}

struct th_clock {
	uint64_t now_ms;
};

static inline uint64_t th_clock_now(void *arg)
{
	return ((struct th_clock *)arg)->now_ms;
}

static inline struct store *th_open(const char *dir)
{
	struct diag d = {0};
	struct store *s = store_open(dir, &d);

	if (!s && d.n)
		fprintf(stderr, "store_open: %s\n", d.v[0].msg);
	diag_fini(&d);
	return s;
}

#endif
