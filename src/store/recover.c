/* SPDX-License-Identifier: MIT */
/*
 * recover.c: salvage from a damaged database that store_open() moved aside.
 * It copies into the fresh store what can still be read and proven intact:
 * the newest revision whose every object reads back with its recorded hash
 * and whose set digest matches (in either form, before or since schema 4),
 * and the pinned revision too, when it is a different one and intact; its
 * snapshot JSON when readable, the UI credentials and the settings (the
 * uploaded kubeconfig lets the box reach its cluster again). Audit
 * entries, sessions and traffic are not salvaged. The damaged file is
 * opened without checkpointing, so it stays as it was for a person to
 * inspect. Control thread, during store_open().
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "core/log.h"
#include "store/internal.h"
#include "store/store.h"
#include "tls/tls.h"

#define MAX_CANDIDATES 10

struct srow {
	uint8_t hash[32];
	char *kind, *ns, *name, *json;
	int len;
};

struct srev {
	int64_t rev, time_ms, n_objects;
	char *source, *user, *summary;
	uint8_t set_hash[32];
	bool pinned;
	struct srow *rows;
	size_t n_rows;
	char *snapshot;
};

static char *col_strdup(sqlite3_stmt *st, int i)
{
	const char *v = (const char *)sqlite3_column_text(st, i);
	size_t n = v ? (size_t)sqlite3_column_bytes(st, i) : 0;
	char *r = malloc(n + 1);

	if (r) {
		if (n)
			memcpy(r, v, n);
		r[n] = '\0';
	}
	return r;
}

static void srev_fini(struct srev *r)
{
	for (size_t i = 0; i < r->n_rows; i++) {
		free(r->rows[i].kind);
		free(r->rows[i].ns);
		free(r->rows[i].name);
		free(r->rows[i].json);
	}
	free(r->rows);
	free(r->source);
	free(r->user);
	free(r->summary);
	free(r->snapshot);
	memset(r, 0, sizeof(*r));
}

/* Reads every object of r->rev and proves it intact; false when anything
 * fails to read or does not match its hash. */
static bool read_objects(sqlite3 *bad, struct srev *r)
{
	sqlite3_stmt *st = NULL;
	uint8_t *hs = NULL, set_hash[32];
	size_t cap = 0;
	bool ok = false;
	int rc;

	if (sqlite3_prepare_v2(bad,
			       "SELECT o.hash, o.kind, o.ns, o.name, o.json FROM revision_objects r"
			       " JOIN objects o ON o.id = r.obj WHERE r.rev = ?1",
			       -1, &st, NULL) != SQLITE_OK)
		return false;
	sqlite3_bind_int64(st, 1, r->rev);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct srow *w;
		uint8_t h[32];

		if (r->n_rows == cap) {
			struct srow *nv;

			cap = cap ? 2 * cap : 64;
			nv = realloc(r->rows, cap * sizeof(*nv));
			if (!nv)
				goto out;
			r->rows = nv;
		}
		w = &r->rows[r->n_rows];
		memset(w, 0, sizeof(*w));
		r->n_rows++;
		if (sqlite3_column_bytes(st, 0) != 32)
			goto out;
		memcpy(w->hash, sqlite3_column_blob(st, 0), 32);
		w->kind = col_strdup(st, 1);
		w->ns = col_strdup(st, 2);
		w->name = col_strdup(st, 3);
		w->json = col_strdup(st, 4);
		w->len = sqlite3_column_bytes(st, 4);
		if (!w->kind || !w->ns || !w->name || !w->json)
			goto out;
		store_obj_hash(w->kind, w->ns, w->name, w->json, (size_t)w->len, h);
		if (memcmp(h, w->hash, 32) != 0)
			goto out;
	}
	if (rc != SQLITE_DONE || (int64_t)r->n_rows != r->n_objects)
		goto out;
	hs = malloc(r->n_rows * 32 + 1);
	if (!hs)
		goto out;
	for (size_t i = 0; i < r->n_rows; i++)
		memcpy(hs + 32 * i, r->rows[i].hash, 32);
	store_set_digest(hs, r->n_rows, set_hash);
	ok = memcmp(set_hash, r->set_hash, 32) == 0;
	if (!ok) {
		/* Written before schema 4 (the file was damaged before it
		 * could be migrated): the hash of the sorted hashes. */
		uint8_t sorted[32];

		store_set_hash_sorted(hs, r->n_rows, sorted);
		ok = memcmp(sorted, r->set_hash, 32) == 0;
	}
	/* Restored with today's digest, which the next commit compares. */
	if (ok)
		memcpy(r->set_hash, set_hash, 32);
out:
	free(hs);
	sqlite3_finalize(st);
	return ok;
}

static void read_snapshot(sqlite3 *bad, struct srev *r)
{
	sqlite3_stmt *st = NULL;

	if (sqlite3_prepare_v2(bad, "SELECT json FROM snapshots WHERE rev = ?1", -1, &st, NULL) !=
	    SQLITE_OK)
		return;
	sqlite3_bind_int64(st, 1, r->rev);
	if (sqlite3_step(st) == SQLITE_ROW)
		r->snapshot = col_strdup(st, 0);
	sqlite3_finalize(st);
}

/* Candidate revisions, newest first (as many as could be read), and the
 * highest revision number seen. */
static size_t read_candidates(sqlite3 *bad, struct srev *c, size_t max, int64_t *max_rev)
{
	sqlite3_stmt *st = NULL;
	size_t n = 0;

	*max_rev = 0;
	if (sqlite3_prepare_v2(
		    bad,
		    "SELECT rev, time_ms, source, user, summary, n_objects, set_hash, pinned"
		    " FROM revisions ORDER BY rev DESC",
		    -1, &st, NULL) != SQLITE_OK)
		return 0;
	while (sqlite3_step(st) == SQLITE_ROW) {
		struct srev *r = &c[n];
		int64_t rev = sqlite3_column_int64(st, 0);
		bool pinned = sqlite3_column_int(st, 7) != 0;

		if (rev > *max_rev)
			*max_rev = rev;
		/* The newest few, and the pinned one wherever it is. */
		if (n >= max || (n >= max - 1 && !pinned))
			continue;
		memset(r, 0, sizeof(*r));
		r->rev = rev;
		r->time_ms = sqlite3_column_int64(st, 1);
		r->source = col_strdup(st, 2);
		r->user = col_strdup(st, 3);
		r->summary = col_strdup(st, 4);
		r->n_objects = sqlite3_column_int64(st, 5);
		r->pinned = pinned;
		if (sqlite3_column_bytes(st, 6) != 32 || !r->source || !r->user || !r->summary) {
			srev_fini(r);
			continue;
		}
		memcpy(r->set_hash, sqlite3_column_blob(st, 6), 32);
		n++;
	}
	sqlite3_finalize(st);
	return n;
}

static int exec_rev(struct store *s, const struct srev *r, bool newest)
{
	sqlite3_stmt *st = NULL;
	int rc;

	rc = sqlite3_prepare_v2(
		s->db,
		"INSERT INTO revisions(rev, time_ms, source, user, summary, n_objects,"
		" set_hash, pinned) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
		-1, &st, NULL);
	if (rc != SQLITE_OK)
		return rc;
	sqlite3_bind_int64(st, 1, r->rev);
	sqlite3_bind_int64(st, 2, r->time_ms);
	sqlite3_bind_text(st, 3, r->source, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, r->user, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, r->summary, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 6, r->n_objects);
	sqlite3_bind_blob(st, 7, r->set_hash, 32, SQLITE_STATIC);
	sqlite3_bind_int(st, 8, r->pinned);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return rc;
	for (size_t i = 0; i < r->n_rows; i++) {
		const struct srow *w = &r->rows[i];

		st = NULL;
		rc = sqlite3_prepare_v2(s->db,
					"INSERT OR IGNORE INTO objects(hash, kind, ns, name, json)"
					" VALUES (?1, ?2, ?3, ?4, ?5)",
					-1, &st, NULL);
		if (rc != SQLITE_OK)
			return rc;
		sqlite3_bind_blob(st, 1, w->hash, 32, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, w->kind, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 3, w->ns, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 4, w->name, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 5, w->json, w->len, SQLITE_STATIC);
		rc = sqlite3_step(st);
		sqlite3_finalize(st);
		if (rc != SQLITE_DONE)
			return rc;
		/* The newest restored revision's objects stay open intervals:
		 * the next commit takes its changes against them. */
		rc = sqlite3_prepare_v2(s->db,
					"INSERT OR IGNORE INTO members(obj, first_rev, last_rev)"
					" SELECT id, ?1, ?3 FROM objects WHERE hash = ?2",
					-1, &st, NULL);
		if (rc != SQLITE_OK)
			return rc;
		sqlite3_bind_int64(st, 1, r->rev);
		if (!newest)
			sqlite3_bind_int64(st, 3, r->rev);
		sqlite3_bind_blob(st, 2, w->hash, 32, SQLITE_STATIC);
		rc = sqlite3_step(st);
		sqlite3_finalize(st);
		if (rc != SQLITE_DONE)
			return rc;
	}
	if (r->snapshot) {
		rc = sqlite3_prepare_v2(s->db, "INSERT INTO snapshots(rev, json) VALUES (?1, ?2)",
					-1, &st, NULL);
		if (rc != SQLITE_OK)
			return rc;
		sqlite3_bind_int64(st, 1, r->rev);
		sqlite3_bind_text(st, 2, r->snapshot, -1, SQLITE_STATIC);
		rc = sqlite3_step(st);
		sqlite3_finalize(st);
		if (rc != SQLITE_DONE)
			return rc;
	}
	return SQLITE_OK;
}

/* Copies the rows of a small table (credentials, settings) row by row:
 * what reads is kept. Returns how many rows were copied. */
static int copy_table(sqlite3 *bad, struct store *s, const char *select, const char *insert,
		      int ncols)
{
	sqlite3_stmt *q = NULL, *ins = NULL;
	int copied = 0;

	if (sqlite3_prepare_v2(bad, select, -1, &q, NULL) != SQLITE_OK)
		return 0;
	if (sqlite3_prepare_v2(s->db, insert, -1, &ins, NULL) != SQLITE_OK) {
		sqlite3_finalize(q);
		return 0;
	}
	while (sqlite3_step(q) == SQLITE_ROW) {
		sqlite3_reset(ins);
		for (int i = 0; i < ncols; i++)
			sqlite3_bind_value(ins, i + 1, sqlite3_column_value(q, i));
		if (sqlite3_step(ins) == SQLITE_DONE)
			copied++;
	}
	sqlite3_finalize(ins);
	sqlite3_finalize(q);
	return copied;
}

void store_salvage(struct store *s, const char *bad_path, char *note, size_t size)
{
	struct srev cand[MAX_CANDIDATES];
	struct srev *newest = NULL, *pinned = NULL;
	sqlite3 *bad = NULL;
	int64_t max_rev = 0;
	size_t n = 0;
	int creds = 0, settings = 0, rc;

	snprintf(note, size, "nothing could be read from it; the store starts empty");
	rc = sqlite3_open_v2(bad_path, &bad, SQLITE_OPEN_READWRITE, NULL);
	if (rc != SQLITE_OK)
		goto out;
	sqlite3_db_config(bad, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, (int *)NULL);
	sqlite3_exec(bad, "PRAGMA query_only=1", NULL, NULL, NULL);
	n = read_candidates(bad, cand, MAX_CANDIDATES, &max_rev);
	for (size_t i = 0; i < n; i++) {
		struct srev *r = &cand[i];

		if ((newest && !r->pinned) || (newest && pinned))
			continue;
		if (!read_objects(bad, r)) {
			log_warn("event=store_salvage_skip rev=%lld reason=damaged",
				 (long long)r->rev);
			continue;
		}
		read_snapshot(bad, r);
		if (!newest)
			newest = r;
		else if (r->pinned)
			pinned = r;
	}
	if (sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
		goto out;
	/* Restored revisions keep their numbers and the next commit continues
	 * after the highest number the damaged store had reached. */
	rc = SQLITE_OK;
	if (pinned)
		rc = exec_rev(s, pinned, false);
	if (rc == SQLITE_OK && newest)
		rc = exec_rev(s, newest, true);
	if (rc == SQLITE_OK && max_rev > 0) {
		char sql[160];

		snprintf(sql, sizeof(sql),
			 "DELETE FROM sqlite_sequence WHERE name = 'revisions';"
			 "INSERT INTO sqlite_sequence(name, seq) VALUES ('revisions', %lld)",
			 (long long)max_rev);
		rc = sqlite3_exec(s->db, sql, NULL, NULL, NULL);
	}
	if (rc != SQLITE_OK) {
		log_warn("event=store_salvage_failed err=%s", log_q(sqlite3_errmsg(s->db)));
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
		newest = pinned = NULL;
		if (sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
			goto out;
	}
	creds = copy_table(
		bad, s, "SELECT user, salt, iterations, hash, time_ms FROM credentials",
		"INSERT OR REPLACE INTO credentials(user, salt, iterations, hash, time_ms)"
		" VALUES (?1, ?2, ?3, ?4, ?5)",
		5);
	settings = copy_table(bad, s, "SELECT key, value FROM settings",
			      "INSERT OR REPLACE INTO settings(key, value) VALUES (?1, ?2)", 2);
	if (sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
		newest = pinned = NULL;
		creds = settings = 0;
		goto out;
	}
	if (newest)
		snprintf(
			note, size,
			"revision %lld (%lld objects)%s%.0lld was restored%s, with %d credential(s)"
			" and %d setting(s)",
			(long long)newest->rev, (long long)newest->n_objects,
			pinned ? " and pinned revision " : "", pinned ? (long long)pinned->rev : 0,
			max_rev > newest->rev ? " (newer ones were damaged)" : "", creds, settings);
	else
		snprintf(note, size,
			 "no revision could be restored, the store starts empty, with %d "
			 "credential(s) and %d setting(s) restored",
			 creds, settings);
out:
	for (size_t i = 0; i < n; i++)
		srev_fini(&cand[i]);
	if (bad) {
		char shm[4400];

		sqlite3_close_v2(bad);
		/* Opening it made a shared-memory index beside it: not part
		 * of what was kept. */
		snprintf(shm, sizeof(shm), "%s-shm", bad_path);
		(void)unlink(shm);
	}
}
