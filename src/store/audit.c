/* SPDX-License-Identifier: MIT */
/*
 * audit.c: the audit log: one row per change a person may ask about
 * (revision commits, pins, password changes, uploads), with its time,
 * source and user, newest first when read. Bounded to STORE_AUDIT_MAX rows,
 * the oldest going first. It records what callers tell it; it does not
 * decide what is worth recording. Any connection, any thread that owns it.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include <sqlite3.h>

#include "core/arena.h"
#include "core/err.h"
#include "store/internal.h"
#include "store/store.h"

int store_audit(struct store *s, const char *source, const char *user, const char *summary)
{
	sqlite3_stmt *st;
	int64_t id;
	int rc;

	if (!s || !source || !summary)
		return -EINVAL;
	st = store_stmt(s, ST_AUDIT_INSERT);
	if (!st)
		return -WG_ESTORE;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)store_now_ms(s));
	store_bind_text(st, 2, source);
	store_bind_text(st, 3, user);
	store_bind_text(st, 4, summary);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return store_sqlerr(s, rc, "audit insert");
	id = sqlite3_last_insert_rowid(s->db);
	if (id > STORE_AUDIT_MAX) {
		st = store_stmt(s, ST_AUDIT_TRIM);
		if (!st)
			return -WG_ESTORE;
		sqlite3_bind_int64(st, 1, id - STORE_AUDIT_MAX);
		rc = sqlite3_step(st);
		sqlite3_reset(st);
		if (rc != SQLITE_DONE)
			return store_sqlerr(s, rc, "audit trim");
	}
	return 0;
}

int store_audit_list(struct store *s, uint64_t before_id, size_t limit, struct arena *a,
		     struct store_audit_entry **out, size_t *n)
{
	sqlite3_stmt *st = NULL;
	struct store_audit_entry *v = NULL;
	size_t cap = 0, cnt = 0;
	int err = 0, rc;

	*out = NULL;
	*n = 0;
	rc = sqlite3_prepare_v2(s->db,
				"SELECT id, time_ms, source, user, summary FROM audit"
				" WHERE id < ?1 ORDER BY id DESC LIMIT ?2",
				-1, &st, NULL);
	if (rc != SQLITE_OK)
		return store_sqlerr(s, rc, "audit list");
	sqlite3_bind_int64(st, 1, before_id ? (sqlite3_int64)before_id : INT64_MAX);
	sqlite3_bind_int64(st, 2, limit ? (sqlite3_int64)limit : -1);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct store_audit_entry *e;
		const char *src = (const char *)sqlite3_column_text(st, 2);
		const char *usr = (const char *)sqlite3_column_text(st, 3);
		const char *sum = (const char *)sqlite3_column_text(st, 4);

		v = arena_grow(a, v, cnt, &cap, sizeof(*v), 32);
		if (!v) {
			err = -ENOMEM;
			goto out;
		}
		e = &v[cnt];
		e->id = (uint64_t)sqlite3_column_int64(st, 0);
		e->time_ms = (uint64_t)sqlite3_column_int64(st, 1);
		e->source = arena_strdup(a, src ? src : "");
		e->user = arena_strdup(a, usr ? usr : "");
		e->summary = arena_strdup(a, sum ? sum : "");
		if (!e->source || !e->user || !e->summary) {
			err = -ENOMEM;
			goto out;
		}
		cnt++;
	}
	if (rc != SQLITE_DONE) {
		err = store_sqlerr(s, rc, "audit list");
		goto out;
	}
	*out = v;
	*n = cnt;
out:
	sqlite3_finalize(st);
	return err;
}
