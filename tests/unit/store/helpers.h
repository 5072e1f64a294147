/* SPDX-License-Identifier: MIT */
/*
 * helpers.h: what the store tests share: a fresh temporary state directory
 * per test (removed at the end), objects built from small JSON documents,
 * a controllable clock, and a raw query against the store's connection.
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
