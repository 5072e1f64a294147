/* SPDX-License-Identifier: MIT */
/*
 * settings.c: small state the box keeps for its UI and commands: key/value
 * settings (the mode, the uploaded kubeconfig, generated keys: values may be
 * secrets, so they are never logged here) and traffic rollups, one row per
 * minute, bounded to STORE_TRAFFIC_MINUTES. It does not interpret values.
 * Any connection; in practice the UI thread's, and the control thread's for
 * rollups.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "core/arena.h"
#include "core/err.h"
#include "store/internal.h"
#include "store/store.h"

int store_setting_get(struct store *s, const char *key, char **value, size_t *len)
{
	sqlite3_stmt *st;
	int err = 0, rc;

	*value = NULL;
	if (len)
		*len = 0;
	if (!s || !key)
		return -EINVAL;
	st = store_stmt(s, ST_SETTING_GET);
	if (!st)
		return -WG_ESTORE;
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		const void *p = sqlite3_column_blob(st, 0);
		size_t n = (size_t)sqlite3_column_bytes(st, 0);
		char *v = malloc(n + 1);

		if (v) {
			if (n)
				memcpy(v, p, n);
			v[n] = '\0';
			*value = v;
			if (len)
				*len = n;
		} else {
			err = -ENOMEM;
		}
	} else {
		err = rc == SQLITE_DONE ? -WG_ENOTFOUND : store_sqlerr(s, rc, "setting");
	}
	sqlite3_reset(st);
	return err;
}

int store_setting_set(struct store *s, const char *key, const void *value, size_t len)
{
	sqlite3_stmt *st;
	int rc;

	if (!s || !key || !*key || len > 0x7fffffff)
		return -EINVAL;
	st = store_stmt(s, value ? ST_SETTING_SET : ST_SETTING_DEL);
	if (!st)
		return -WG_ESTORE;
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	if (value)
		sqlite3_bind_blob(st, 2, len ? value : "", (int)len, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? 0 : store_sqlerr(s, rc, "setting");
}

int store_traffic_add(struct store *s, const struct store_traffic *t)
{
	sqlite3_stmt *st = NULL;
	int err, rc;

	if (!s || !t)
		return -EINVAL;
	err = store_tx_begin(s, true);
	if (err)
		return err;
	rc = sqlite3_prepare_v2(
		s->db,
		"INSERT INTO traffic(minute, requests, errors, p50_ms, p99_ms, bytes)"
		" VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT(minute) DO UPDATE SET"
		" requests = requests + excluded.requests, errors = errors + excluded.errors,"
		" p50_ms = max(p50_ms, excluded.p50_ms), p99_ms = max(p99_ms, excluded.p99_ms),"
		" bytes = bytes + excluded.bytes",
		-1, &st, NULL);
	if (rc == SQLITE_OK) {
		sqlite3_bind_int64(st, 1, (sqlite3_int64)t->minute);
		sqlite3_bind_int64(st, 2, (sqlite3_int64)t->requests);
		sqlite3_bind_int64(st, 3, (sqlite3_int64)t->errors);
		sqlite3_bind_int64(st, 4, t->p50_ms);
		sqlite3_bind_int64(st, 5, t->p99_ms);
		sqlite3_bind_int64(st, 6, (sqlite3_int64)t->bytes);
		rc = sqlite3_step(st);
		sqlite3_finalize(st);
		st = NULL;
	}
	if (rc == SQLITE_DONE) {
		char sql[128];

		/* Bounded around the minute just added, so that rows stamped
		 * in the future by a clock that was later stepped back go
		 * too. */
		snprintf(sql, sizeof(sql),
			 "DELETE FROM traffic WHERE minute <= %lld OR minute > %lld",
			 (long long)t->minute - STORE_TRAFFIC_MINUTES,
			 (long long)t->minute + STORE_TRAFFIC_MINUTES);
		rc = sqlite3_exec(s->db, sql, NULL, NULL, NULL);
		if (rc == SQLITE_OK)
			rc = SQLITE_DONE;
	}
	if (rc != SQLITE_DONE) {
		err = store_sqlerr(s, rc, "traffic");
		store_tx_rollback(s);
		return err;
	}
	return store_tx_commit(s);
}

int store_traffic_read(struct store *s, uint64_t from_minute, struct arena *a,
		       struct store_traffic **out, size_t *n)
{
	sqlite3_stmt *st = NULL;
	struct store_traffic *v = NULL;
	size_t cap = 0, cnt = 0;
	int err = 0, rc;

	*out = NULL;
	*n = 0;
	rc = sqlite3_prepare_v2(
		s->db,
		"SELECT minute, requests, errors, p50_ms, p99_ms, bytes FROM traffic"
		" WHERE minute >= ?1 ORDER BY minute",
		-1, &st, NULL);
	if (rc != SQLITE_OK)
		return store_sqlerr(s, rc, "traffic");
	sqlite3_bind_int64(st, 1, (sqlite3_int64)from_minute);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		v = arena_grow(a, v, cnt, &cap, sizeof(*v), 64);
		if (!v) {
			err = -ENOMEM;
			goto out;
		}
		v[cnt].minute = (uint64_t)sqlite3_column_int64(st, 0);
		v[cnt].requests = (uint64_t)sqlite3_column_int64(st, 1);
		v[cnt].errors = (uint64_t)sqlite3_column_int64(st, 2);
		v[cnt].p50_ms = (uint32_t)sqlite3_column_int64(st, 3);
		v[cnt].p99_ms = (uint32_t)sqlite3_column_int64(st, 4);
		v[cnt].bytes = (uint64_t)sqlite3_column_int64(st, 5);
		cnt++;
	}
	if (rc != SQLITE_DONE) {
		err = store_sqlerr(s, rc, "traffic");
		goto out;
	}
	*out = v;
	*n = cnt;
out:
	sqlite3_finalize(st);
	return err;
}
