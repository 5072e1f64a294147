/* SPDX-License-Identifier: MIT */
/*
 * store.c: opening and closing the store: the state directory and file
 * modes, connection settings (WAL, synchronous, busy timeout), the schema
 * and its migrations (PRAGMA user_version), the start-up check and the
 * recovery of a damaged database (moved aside, then salvaged by recover.c),
 * the prepared statement cache and small helpers the other files share,
 * and the figures the UI shows. It does not know what revisions, sessions
 * or settings mean (revision.c, auth.c, misc.c do). A connection is used by
 * one thread: store_open() on the control thread, store_open_reader() on
 * the UI thread or in a command.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "core/diag.h"
#include "core/err.h"
#include "core/log.h"
#include "core/loop.h"
#include "store/internal.h"
#include "store/store.h"

#define BUSY_TIMEOUT_MS 5000

/*
 * Schema migrations: migrations[i] takes the schema from version i to i + 1.
 * Append only; never edit a released step.
 *
 * objects are content-addressed (hash = SHA-256 of kind, namespace, name and
 * JSON) and shared by every revision that holds them through members
 * (intervals of revisions; the view revision_objects lists the pairs). A
 * revision keeps its snapshot image (and, from before schema 2, JSON) while
 * it is among the newest few (or pinned). Sessions are stored by the SHA-256 of
 * their id, never the id itself.
 */
static const char *const migrations[] = {
	/* 0 -> 1 */
	"CREATE TABLE objects("
	"  id INTEGER PRIMARY KEY,"
	"  hash BLOB NOT NULL UNIQUE,"
	"  kind TEXT NOT NULL,"
	"  ns TEXT NOT NULL,"
	"  name TEXT NOT NULL,"
	"  json TEXT NOT NULL);"
	"CREATE INDEX objects_key ON objects(kind, ns, name);"
	"CREATE TABLE revisions("
	"  rev INTEGER PRIMARY KEY AUTOINCREMENT,"
	"  time_ms INTEGER NOT NULL,"
	"  source TEXT NOT NULL,"
	"  user TEXT NOT NULL DEFAULT '',"
	"  summary TEXT NOT NULL DEFAULT '',"
	"  n_objects INTEGER NOT NULL,"
	"  set_hash BLOB NOT NULL,"
	"  pinned INTEGER NOT NULL DEFAULT 0);"
	"CREATE TABLE revision_objects("
	"  rev INTEGER NOT NULL,"
	"  obj INTEGER NOT NULL,"
	"  PRIMARY KEY(rev, obj)) WITHOUT ROWID;"
	"CREATE INDEX revision_objects_obj ON revision_objects(obj);"
	"CREATE TABLE snapshots("
	"  rev INTEGER PRIMARY KEY,"
	"  json TEXT NOT NULL);"
	"CREATE TABLE audit("
	"  id INTEGER PRIMARY KEY AUTOINCREMENT,"
	"  time_ms INTEGER NOT NULL,"
	"  source TEXT NOT NULL,"
	"  user TEXT NOT NULL DEFAULT '',"
	"  summary TEXT NOT NULL);"
	"CREATE TABLE credentials("
	"  user TEXT PRIMARY KEY,"
	"  salt BLOB NOT NULL,"
	"  iterations INTEGER NOT NULL,"
	"  hash BLOB NOT NULL,"
	"  time_ms INTEGER NOT NULL);"
	"CREATE TABLE sessions("
	"  id_hash BLOB PRIMARY KEY,"
	"  user TEXT NOT NULL,"
	"  created_ms INTEGER NOT NULL,"
	"  last_ms INTEGER NOT NULL);"
	"CREATE TABLE settings("
	"  key TEXT PRIMARY KEY,"
	"  value BLOB NOT NULL);"
	"CREATE TABLE traffic("
	"  minute INTEGER PRIMARY KEY,"
	"  requests INTEGER NOT NULL,"
	"  errors INTEGER NOT NULL,"
	"  p50_ms INTEGER NOT NULL,"
	"  p99_ms INTEGER NOT NULL,"
	"  bytes INTEGER NOT NULL);",
	/* 1 -> 2: the compiled snapshot of a revision as an image
	 * (gwapi/snapimage.h) with its digest, so a start serves it without
	 * reconciling; kept and dropped together with the snapshot JSON. The
	 * hash is committed with the revision; the bytes may follow in a later
	 * transaction (NULL until then). */
	"CREATE TABLE snapshot_images("
	"  rev INTEGER PRIMARY KEY,"
	"  hash BLOB NOT NULL,"
	"  image BLOB);",
	/* 2 -> 3: which objects a revision holds, as intervals of revisions
	 * (last_rev NULL: up to the newest), so that a commit writes only what
	 * changed instead of one row per object. revision_objects becomes a
	 * view giving the same (rev, obj) pairs as before. Old pairs become
	 * one-revision intervals; the newest revision's stay open. */
	"CREATE TABLE members("
	"  obj INTEGER NOT NULL,"
	"  first_rev INTEGER NOT NULL,"
	"  last_rev INTEGER,"
	"  PRIMARY KEY(obj, first_rev)) WITHOUT ROWID;"
	"CREATE INDEX members_last ON members(last_rev);"
	"INSERT INTO members(obj, first_rev, last_rev)"
	"  SELECT obj, rev, CASE WHEN rev = (SELECT MAX(rev) FROM revisions) THEN NULL ELSE rev END"
	"  FROM revision_objects;"
	"DROP TABLE revision_objects;"
	"CREATE VIEW revision_objects(rev, obj) AS"
	"  SELECT r.rev, m.obj FROM revisions r JOIN members m"
	"  ON m.first_rev <= r.rev AND (m.last_rev IS NULL OR m.last_rev >= r.rev);",
	/* 3 -> 4: a revision's set_hash becomes the sum of its objects' hashes
	 * (store_set_digest) instead of the SHA-256 of them sorted, so that a
	 * commit moves it by what changed. Every revision's is recomputed
	 * from its members (wg_set_digest, registered on each connection). */
	"UPDATE revisions SET set_hash = (SELECT wg_set_digest(o.hash)"
	"  FROM members m JOIN objects o ON o.id = m.obj"
	"  WHERE m.first_rev <= revisions.rev"
	"  AND (m.last_rev IS NULL OR m.last_rev >= revisions.rev));",
};
#define SCHEMA_VERSION ((int)(sizeof(migrations) / sizeof(migrations[0])))

static const char *const stmt_sql[ST_COUNT] = {
	[ST_NEWEST] = "SELECT rev, set_hash, n_objects FROM revisions ORDER BY rev DESC LIMIT 1",
	[ST_OBJ_BY_HASH] = "SELECT id FROM objects WHERE hash = ?1",
	[ST_OBJ_INSERT] =
		"INSERT INTO objects(hash, kind, ns, name, json) VALUES (?1, ?2, ?3, ?4, ?5)",
	[ST_REV_INSERT] =
		"INSERT INTO revisions(time_ms, source, user, summary, n_objects, set_hash)"
		" VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
	[ST_MEMBER_ADD] = "INSERT INTO members(obj, first_rev, last_rev) VALUES (?1, ?2, NULL)",
	[ST_MEMBER_DROP] = "UPDATE members SET last_rev = ?2 WHERE obj = ?1 AND last_rev IS NULL",
	[ST_MEMBERS_OPEN] = "SELECT obj FROM members WHERE last_rev IS NULL",
	[ST_SNAP_INSERT] = "INSERT OR REPLACE INTO snapshots(rev, json) VALUES (?1, ?2)",
	[ST_IMAGE_INSERT] =
		"INSERT OR REPLACE INTO snapshot_images(rev, hash, image) VALUES (?1, ?2, ?3)",
	[ST_IMAGE_GET] = "SELECT hash, image FROM snapshot_images WHERE rev = ?1",
	[ST_IMAGE_PUT] = "UPDATE snapshot_images SET image = ?3"
			 " WHERE rev = ?1 AND hash = ?2 AND image IS NULL",
	[ST_IMAGE_HAS] = "SELECT 1 FROM snapshot_images"
			 " WHERE rev = ?1 AND hash = ?2 AND image IS NOT NULL",
	[ST_LOAD] = "SELECT o.kind, o.json FROM revision_objects r JOIN objects o ON o.id = r.obj"
		    " WHERE r.rev = ?1",
	[ST_PINNED] = "SELECT rev FROM revisions WHERE pinned != 0 ORDER BY rev DESC LIMIT 1",
	[ST_REV_EXISTS] = "SELECT n_objects FROM revisions WHERE rev = ?1",
	[ST_AUDIT_INSERT] =
		"INSERT INTO audit(time_ms, source, user, summary) VALUES (?1, ?2, ?3, ?4)",
	[ST_AUDIT_TRIM] = "DELETE FROM audit WHERE id <= ?1",
	[ST_SNAP_GET] = "SELECT json FROM snapshots WHERE rev = ?1",
	[ST_SESSION_INSERT] = "INSERT INTO sessions(id_hash, user, created_ms, last_ms)"
			      " VALUES (?1, ?2, ?3, ?3)",
	[ST_SESSION_GET] = "SELECT user, created_ms, last_ms FROM sessions WHERE id_hash = ?1",
	[ST_SESSION_TOUCH] = "UPDATE sessions SET last_ms = ?2 WHERE id_hash = ?1",
	[ST_SESSION_DELETE] = "DELETE FROM sessions WHERE id_hash = ?1",
	[ST_SETTING_GET] = "SELECT value FROM settings WHERE key = ?1",
	[ST_SETTING_SET] = "INSERT OR REPLACE INTO settings(key, value) VALUES (?1, ?2)",
	[ST_SETTING_DEL] = "DELETE FROM settings WHERE key = ?1",
	/* Retention (revision.c, store_retain): every commit runs these, so
	 * they stay prepared. ?1 is the cutoff revision. A membership
	 * interval is dead when it ends before the cutoff and holds no pinned
	 * revision; an object goes with its last live interval. */
	[ST_CUTOFF] = "SELECT rev FROM revisions ORDER BY rev DESC LIMIT 1 OFFSET ?1",
#define DEAD(m)                                                                                    \
	"(" m ".last_rev IS NOT NULL AND " m ".last_rev < ?1 AND NOT EXISTS ("                     \
	"SELECT 1 FROM revisions p WHERE p.pinned != 0 AND p.rev BETWEEN " m ".first_rev AND " m   \
	".last_rev))"
	[ST_RETAIN_OBJECTS] = "DELETE FROM objects WHERE id IN (SELECT m.obj FROM members m WHERE "
			      DEAD("m") ") AND NOT EXISTS (SELECT 1 FROM members k"
			      " WHERE k.obj = objects.id AND NOT " DEAD("k") ")",
	[ST_RETAIN_MEMBERS] = "DELETE FROM members WHERE " DEAD("members"),
#undef DEAD
	[ST_RETAIN_SNAPSHOTS] = "DELETE FROM snapshots WHERE rev IN"
				" (SELECT rev FROM revisions WHERE rev < ?1 AND pinned = 0)",
	[ST_RETAIN_IMAGES] = "DELETE FROM snapshot_images WHERE rev IN"
			     " (SELECT rev FROM revisions WHERE rev < ?1 AND pinned = 0)",
	[ST_RETAIN_REVISIONS] = "DELETE FROM revisions WHERE rev < ?1 AND pinned = 0",
	[ST_TRIM_SNAPSHOTS] = "DELETE FROM snapshots WHERE rev < ?1"
			      " AND rev NOT IN (SELECT rev FROM revisions WHERE pinned != 0)",
	[ST_TRIM_IMAGES] = "DELETE FROM snapshot_images WHERE rev < ?1"
			   " AND rev NOT IN (SELECT rev FROM revisions WHERE pinned != 0)",
	[ST_FREELIST] = "PRAGMA freelist_count",
};

/* -------- shared helpers -------- */

uint64_t store_now_ms(const struct store *s)
{
	if (s->now_fn)
		return s->now_fn(s->now_arg);
	return clock_wall_ms();
}

void store_set_clock(struct store *s, uint64_t (*now_ms)(void *arg), void *arg)
{
	s->now_fn = now_ms;
	s->now_arg = arg;
}

int store_sqlerr(struct store *s, int rc, const char *what)
{
	log_debug("event=store_sqlite_error what=%s rc=%d msg=%s", what, rc,
		  log_q(s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc)));
	switch (rc & 0xff) {
	case SQLITE_NOMEM: return -ENOMEM;
	case SQLITE_FULL: return -ENOSPC;
	case SQLITE_IOERR: return -EIO;
	case SQLITE_READONLY: return -EROFS;
	case SQLITE_BUSY:
	case SQLITE_LOCKED: return -EBUSY;
	default: return -WG_ESTORE;
	}
}

sqlite3_stmt *store_stmt(struct store *s, enum store_stmt_id id)
{
	sqlite3_stmt *st = s->stmts[id];
	int rc;

	if (!st) {
		rc = sqlite3_prepare_v3(s->db, stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT, &st,
					NULL);
		if (rc != SQLITE_OK) {
			store_sqlerr(s, rc, "prepare");
			return NULL;
		}
		s->stmts[id] = st;
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return st;
}

int store_exec(struct store *s, const char *sql)
{
	int rc = sqlite3_exec(s->db, sql, NULL, NULL, NULL);

	return rc == SQLITE_OK ? 0 : store_sqlerr(s, rc, "exec");
}

int store_tx_begin(struct store *s, bool write)
{
	return store_exec(s, write ? "BEGIN IMMEDIATE" : "BEGIN");
}

int store_tx_commit(struct store *s)
{
	int err = store_exec(s, "COMMIT");

	if (err)
		store_tx_rollback(s);
	return err;
}

int store_tx_commit_revision(struct store *s)
{
	int err;

	s->defer_checkpoint = true;
	err = store_tx_commit(s);
	s->defer_checkpoint = false;
	return err;
}

void store_tx_rollback(struct store *s)
{
	if (!sqlite3_get_autocommit(s->db))
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
}

void store_sync_full(struct store *s, bool full)
{
	sqlite3_exec(s->db, full ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL", NULL,
		     NULL, NULL);
}

void store_hex(const uint8_t *p, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[p[i] >> 4];
		out[2 * i + 1] = digits[p[i] & 15];
	}
	out[2 * n] = '\0';
}

int store_bind_text(sqlite3_stmt *st, int i, const char *v)
{
	return sqlite3_bind_text(st, i, v ? v : "", -1, SQLITE_TRANSIENT);
}

const char *store_recovery_note(const struct store *s)
{
	return s->recovery_note;
}
const char *store_path(const struct store *s)
{
	return s->path;
}

void store_set_retention(struct store *s, unsigned keep_revisions, unsigned keep_snapshots)
{
	if (keep_revisions)
		s->keep_revisions = keep_revisions;
	if (keep_snapshots)
		s->keep_snapshots = keep_snapshots;
}

/* -------- opening -------- */

static bool is_corruption(int rc)
{
	rc &= 0xff;
	return rc == SQLITE_CORRUPT || rc == SQLITE_NOTADB;
}

/* mkdir -p with mode 0700 for what it creates. */
static int make_dir(const char *dir)
{
	char tmp[4096];
	size_t len = strlen(dir);
	struct stat st;

	if (len == 0 || len >= sizeof(tmp))
		return -ENAMETOOLONG;
	memcpy(tmp, dir, len + 1);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0700) == -1 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(tmp, 0700) == -1 && errno != EEXIST)
		return -errno;
	if (stat(tmp, &st) == -1)
		return -errno;
	return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
}

/* Creates the database file 0600 (SQLite gives its -wal and -shm files the
 * same mode) and takes group/other bits off an existing one: it holds
 * credentials and keys. */
static int prepare_file(const char *path)
{
	struct stat st;
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);

	if (fd == -1)
		return -errno;
	if (fstat(fd, &st) == 0 && (st.st_mode & 077) != 0)
		(void)fchmod(fd, st.st_mode & 0700);
	close(fd);
	return 0;
}

static void finalize_all(struct store *s)
{
	for (int i = 0; i < ST_COUNT; i++) {
		if (s->stmts[i]) {
			sqlite3_finalize(s->stmts[i]);
			s->stmts[i] = NULL;
		}
	}
}

static void close_db(struct store *s)
{
	finalize_all(s);
	if (s->db) {
		sqlite3_close_v2(s->db);
		s->db = NULL;
	}
}

/* wg_set_digest(hash): the aggregate store_set_digest over object hashes,
 * for the migration to schema 4. A value that is not a 32-byte hash (none
 * is written so) is left out: the revision then fails the check of a
 * recovery, as its damage deserves. */
static void set_digest_step(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	uint8_t *d = sqlite3_aggregate_context(ctx, 32);

	(void)argc;
	if (!d) {
		sqlite3_result_error_nomem(ctx);
		return;
	}
	if (sqlite3_value_type(argv[0]) == SQLITE_BLOB && sqlite3_value_bytes(argv[0]) == 32)
		store_digest_add(d, sqlite3_value_blob(argv[0]));
}

static void set_digest_final(sqlite3_context *ctx)
{
	static const uint8_t none[32];
	const uint8_t *d = sqlite3_aggregate_context(ctx, 0);

	sqlite3_result_blob(ctx, d ? d : none, 32, SQLITE_TRANSIENT);
}

/* Frames in the write-ahead log past which a commit checkpoints it (SQLite's
 * default), and past which even a revision's commit does. */
#define WAL_CHECKPOINT_FRAMES 1000
#define WAL_DEFER_MAX_FRAMES (4 * WAL_CHECKPOINT_FRAMES)

/* SQLite's automatic checkpoint, except that a revision's commit leaves it
 * to the next write (the image's bytes, right after serving): copying the
 * log into the database and syncing it cost several milliseconds on the
 * way to serving, in the commits that happened to cross the threshold. */
static int on_wal_commit(void *arg, sqlite3 *db, const char *name, int frames)
{
	const struct store *s = arg;

	if (frames < WAL_CHECKPOINT_FRAMES ||
	    (s->defer_checkpoint && frames < WAL_DEFER_MAX_FRAMES))
		return SQLITE_OK;
	sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
	return SQLITE_OK;
}

/* Opens the connection and applies its settings. Returns a SQLite code. */
static int open_db(struct store *s, bool create)
{
	int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX;
	int rc;

	if (create)
		flags |= SQLITE_OPEN_CREATE;
	rc = sqlite3_open_v2(s->path, &s->db, flags, NULL);
	if (rc != SQLITE_OK)
		return rc;
	sqlite3_extended_result_codes(s->db, 1);
	sqlite3_busy_timeout(s->db, BUSY_TIMEOUT_MS);
	/* auto_vacuum only takes effect before the first table is created;
	 * incremental mode lets retention give pages back to the file system
	 * (flash on a small box) without a full VACUUM. The WAL is truncated
	 * back to 8 MiB after a checkpoint instead of keeping its largest
	 * size. Deleted rows (Secrets of old revisions, sessions) are zeroed
	 * where that costs no extra I/O. The page cache is kept to 512 KiB
	 * (SQLite's default is 2 MiB): a change touches a few pages, a start
	 * reads the image once, and on a small box the kernel's file cache
	 * holds the rest anyway. */
	rc = sqlite3_exec(s->db,
			  "PRAGMA auto_vacuum=INCREMENTAL;"
			  "PRAGMA cache_size=-512;"
			  "PRAGMA journal_mode=WAL;"
			  "PRAGMA synchronous=NORMAL;"
			  "PRAGMA journal_size_limit=8388608;"
			  "PRAGMA temp_store=MEMORY;"
			  "PRAGMA secure_delete=FAST;"
			  "PRAGMA foreign_keys=OFF;",
			  NULL, NULL, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_create_function_v2(s->db, "wg_set_digest", 1,
						SQLITE_UTF8 | SQLITE_DETERMINISTIC, NULL, NULL,
						set_digest_step, set_digest_final, NULL);
	if (rc == SQLITE_OK)
		sqlite3_wal_hook(s->db, on_wal_commit, s);
	return rc;
}

static int user_version(struct store *s, int *v)
{
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v2(s->db, "PRAGMA user_version", -1, &st, NULL);

	if (rc != SQLITE_OK)
		return rc;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*v = sqlite3_column_int(st, 0);
		rc = SQLITE_OK;
	}
	sqlite3_finalize(st);
	return rc;
}

/* Brings the schema to SCHEMA_VERSION inside one write transaction (so two
 * connections opening at once do not both migrate). Returns a SQLite code,
 * SQLITE_MISMATCH when the database comes from a newer waygate; the version
 * found goes to *version_out. */
static int migrate(struct store *s, int *version_out)
{
	sqlite3_stmt *st = NULL;
	int rc, v = 0;
	char sql[64];

	/* Up to date (the usual case): no write lock needed. Reading the
	 * version also reads page 1, so a file that is not a database shows
	 * here. */
	rc = user_version(s, &v);
	if (rc != SQLITE_OK)
		return rc;
	*version_out = v;
	if (v == SCHEMA_VERSION)
		return SQLITE_OK;
	rc = sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
	if (rc != SQLITE_OK)
		return rc;
	rc = sqlite3_prepare_v2(s->db, "PRAGMA user_version", -1, &st, NULL);
	if (rc != SQLITE_OK)
		goto fail;
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW)
		goto fail;
	v = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	st = NULL;
	*version_out = v;
	if (v > SCHEMA_VERSION) {
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
		return SQLITE_MISMATCH;
	}
	for (int i = v; i < SCHEMA_VERSION; i++) {
		rc = sqlite3_exec(s->db, migrations[i], NULL, NULL, NULL);
		if (rc != SQLITE_OK)
			goto fail;
	}
	if (v != SCHEMA_VERSION) {
		snprintf(sql, sizeof(sql), "PRAGMA user_version=%d", SCHEMA_VERSION);
		rc = sqlite3_exec(s->db, sql, NULL, NULL, NULL);
		if (rc != SQLITE_OK)
			goto fail;
	}
	rc = sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL);
	if (rc != SQLITE_OK)
		goto fail;
	if (v != SCHEMA_VERSION)
		log_info("event=store_migrated path=%s from=%d to=%d", log_q(s->path), v,
			 SCHEMA_VERSION);
	return SQLITE_OK;
fail:
	if (st)
		sqlite3_finalize(st);
	log_debug("event=store_sqlite_error what=migrate rc=%d msg=%s", rc,
		  log_q(sqlite3_errmsg(s->db)));
	sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	return rc;
}

/*
 * PRAGMA quick_check: verifies every page, b-tree and record format, without
 * the cross-check of index contents that integrity_check adds (which costs
 * several times more on a large store and would delay the first served
 * request). Returns SQLITE_OK, SQLITE_CORRUPT with the first problem in msg,
 * or another SQLite code.
 */
static int quick_check(struct store *s, char *msg, size_t size)
{
	sqlite3_stmt *st = NULL;
	int rc;

	msg[0] = '\0';
	rc = sqlite3_prepare_v2(s->db, "PRAGMA quick_check(1)", -1, &st, NULL);
	if (rc != SQLITE_OK)
		return rc;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		const char *r = (const char *)sqlite3_column_text(st, 0);

		if (r && strcmp(r, "ok") == 0) {
			rc = SQLITE_OK;
		} else {
			static const char head[] = "*** in database main ***\n";

			if (r && strncmp(r, head, sizeof(head) - 1) == 0)
				r += sizeof(head) - 1;
			snprintf(msg, size, "quick_check: %s", r ? r : "failed");
			for (char *p = msg; *p; p++)
				if (*p == '\n')
					*p = ' ';
			rc = SQLITE_CORRUPT;
		}
	} else if (rc == SQLITE_DONE) {
		rc = SQLITE_OK;
	}
	sqlite3_finalize(st);
	return rc;
}

static void sql_reason(struct store *s, int rc, char *msg, size_t size)
{
	if (msg[0])
		return;
	snprintf(msg, size, "%s", s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
}

static struct store *store_alloc(const char *state_dir, struct diag *d)
{
	struct store *s = calloc(1, sizeof(*s));
	size_t n;

	if (!s)
		goto fail;
	s->dir = strdup(state_dir);
	n = strlen(state_dir) + sizeof("/" STORE_DB_NAME);
	s->path = malloc(n);
	if (!s->dir || !s->path)
		goto fail;
	snprintf(s->path, n, "%s/%s", state_dir, STORE_DB_NAME);
	s->keep_revisions = STORE_DEFAULT_KEEP_REVISIONS;
	s->keep_snapshots = STORE_DEFAULT_KEEP_SNAPSHOTS;
	return s;
fail:
	diag_add(d, DIAG_ERROR, state_dir, NULL, NULL, "out of memory opening the store");
	if (s) {
		free(s->dir);
		free(s->path);
		free(s);
	}
	return NULL;
}

static void store_free(struct store *s)
{
	if (!s)
		return;
	store_cache_clear(s);
	close_db(s);
	free(s->recovery_note);
	free(s->dir);
	free(s->path);
	free(s);
}

/* Full open sequence on s->path. Returns SQLITE_OK or the failing code with
 * a reason in msg. */
static int open_checked(struct store *s, bool check, char *msg, size_t size)
{
	int rc, version = 0;

	msg[0] = '\0';
	rc = open_db(s, true);
	if (rc == SQLITE_OK && check)
		rc = quick_check(s, msg, size);
	if (rc == SQLITE_OK) {
		rc = migrate(s, &version);
		if (rc == SQLITE_MISMATCH)
			snprintf(msg, size,
				 "schema version %d is newer than this waygate understands (%d)",
				 version, SCHEMA_VERSION);
	}
	if (rc != SQLITE_OK)
		sql_reason(s, rc, msg, size);
	return rc;
}

static void utc_stamp(uint64_t ms, char *out, size_t size)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, size, "%Y%m%dT%H%M%SZ", &tm);
}

/* Moves path (and its -wal) aside as path.corrupt-<stamp>[-N]; drops -shm.
 * The moved pair stays a consistent database + log for the salvage and for a
 * person to inspect. */
static int move_aside(struct store *s, char *bad, size_t size)
{
	char stamp[32], from[4300], to[4300];
	struct stat st;

	utc_stamp(store_now_ms(s), stamp, sizeof(stamp));
	snprintf(bad, size, "%s.corrupt-%s", s->path, stamp);
	for (int i = 1; stat(bad, &st) == 0 && i < 100; i++)
		snprintf(bad, size, "%s.corrupt-%s-%d", s->path, stamp, i);
	if (rename(s->path, bad) == -1)
		return -errno;
	snprintf(from, sizeof(from), "%s-wal", s->path);
	snprintf(to, sizeof(to), "%s-wal", bad);
	if (rename(from, to) == -1 && errno != ENOENT)
		log_warn("event=store_recover_wal_move_failed path=%s err=%s", log_q(from),
			 log_q(strerror(errno)));
	snprintf(from, sizeof(from), "%s-shm", s->path);
	(void)unlink(from);
	return 0;
}

static int recover(struct store *s, const char *reason, struct diag *d)
{
	char bad[4200], salvaged[512], msg[512];
	int err, rc;

	close_db(s);
	err = move_aside(s, bad, sizeof(bad));
	if (err) {
		diag_add(d, DIAG_ERROR, s->path, NULL, NULL,
			 "database is damaged (%s) and cannot be moved aside: %s", reason,
			 err_str(err));
		return err;
	}
	err = prepare_file(s->path);
	if (err) {
		diag_add(d, DIAG_ERROR, s->path, NULL, NULL, "cannot create the database: %s",
			 err_str(err));
		return err;
	}
	rc = open_checked(s, false, msg, sizeof(msg));
	if (rc != SQLITE_OK) {
		diag_add(d, DIAG_ERROR, s->path, NULL, NULL,
			 "cannot create a fresh database after moving the damaged one aside: %s",
			 msg);
		return -WG_ESTORE;
	}
	store_salvage(s, bad, salvaged, sizeof(salvaged));
	s->recovery_note = malloc(strlen(reason) + strlen(bad) + strlen(salvaged) + 96);
	if (s->recovery_note)
		sprintf(s->recovery_note, "the database was damaged (%s); it was moved to %s; %s",
			reason, bad, salvaged);
	log_error("event=store_recovered path=%s reason=%s moved_to=%s result=%s", log_q(s->path),
		  log_q(reason), log_q(bad), log_q(salvaged));
	if (s->recovery_note)
		store_audit(s, "store", NULL, s->recovery_note);
	return 0;
}

static struct store *open_primary(const char *state_dir, bool check, struct diag *d)
{
	struct store *s;
	char msg[512];
	uint64_t t0 = clock_mono_ms();
	int err, rc;

	if (!state_dir || !*state_dir)
		state_dir = STORE_DEFAULT_DIR;
	if (strlen(state_dir) > 3800) {
		diag_add(d, DIAG_ERROR, NULL, NULL, "--state-dir", "path is too long");
		return NULL;
	}
	s = store_alloc(state_dir, d);
	if (!s)
		return NULL;
	s->primary = true;
	err = make_dir(state_dir);
	if (err) {
		diag_add(d, DIAG_ERROR, state_dir, NULL, NULL,
			 "cannot create the state directory: %s", err_str(err));
		goto fail;
	}
	err = prepare_file(s->path);
	if (err) {
		diag_add(d, DIAG_ERROR, s->path, NULL, NULL, "cannot open the database: %s",
			 err_str(err));
		goto fail;
	}
	rc = open_checked(s, check, msg, sizeof(msg));
	if (rc != SQLITE_OK) {
		if (!is_corruption(rc)) {
			diag_add(d, DIAG_ERROR, s->path, NULL, NULL, "cannot open the database: %s",
				 msg);
			goto fail;
		}
		if (recover(s, msg, d) != 0)
			goto fail;
	}
	log_info("event=store_open path=%s schema=%d recovered=%s checked=%s ms=%llu",
		 log_q(s->path), SCHEMA_VERSION, s->recovery_note ? "yes" : "no",
		 check ? "yes" : "later", (unsigned long long)(clock_mono_ms() - t0));
	return s;
fail:
	store_free(s);
	return NULL;
}

struct store *store_open(const char *state_dir, struct diag *d)
{
	return open_primary(state_dir, true, d);
}

struct store *store_open_deferred(const char *state_dir, struct diag *d)
{
	return open_primary(state_dir, false, d);
}

int store_check(struct store *s, struct diag *d)
{
	uint64_t t0 = clock_mono_ms();
	char msg[512];
	int rc = quick_check(s, msg, sizeof(msg));

	if (rc == SQLITE_OK) {
		log_info("event=store_checked path=%s ms=%llu", log_q(s->path),
			 (unsigned long long)(clock_mono_ms() - t0));
		return 0;
	}
	if (!is_corruption(rc)) {
		sql_reason(s, rc, msg, sizeof(msg));
		diag_add(d, DIAG_ERROR, s->path, NULL, NULL, "cannot check the database: %s", msg);
		return -WG_ESTORE;
	}
	/* What this connection remembers of the damaged file goes with it. */
	store_cache_clear(s);
	if (recover(s, msg, d) != 0)
		return -WG_ESTORE;
	return 1;
}

struct store *store_open_reader(const char *state_dir, struct diag *d)
{
	struct store *s;
	struct stat st;
	char msg[512];
	int rc;

	if (!state_dir || !*state_dir)
		state_dir = STORE_DEFAULT_DIR;
	if (strlen(state_dir) > 3800) {
		diag_add(d, DIAG_ERROR, NULL, NULL, "--state-dir", "path is too long");
		return NULL;
	}
	s = store_alloc(state_dir, d);
	if (!s)
		return NULL;
	if (stat(s->path, &st) == -1) {
		diag_add(d, DIAG_ERROR, s->path, NULL, NULL, "no store here: %s", strerror(errno));
		goto fail;
	}
	rc = open_db(s, false);
	if (rc == SQLITE_OK) {
		int version = 0;

		rc = migrate(s, &version);
		if (rc == SQLITE_MISMATCH) {
			diag_add(d, DIAG_ERROR, s->path, NULL, NULL,
				 "schema version %d is newer than this waygate understands (%d)",
				 version, SCHEMA_VERSION);
			goto fail;
		}
	}
	if (rc != SQLITE_OK) {
		msg[0] = '\0';
		sql_reason(s, rc, msg, sizeof(msg));
		diag_add(d, DIAG_ERROR, s->path, NULL, NULL, "cannot open the database: %s%s", msg,
			 is_corruption(rc) ? " (waygate run recovers a damaged database on start)"
					   : "");
		goto fail;
	}
	return s;
fail:
	store_free(s);
	return NULL;
}

void store_close(struct store *s)
{
	store_free(s);
}

/* -------- figures -------- */

static int one_u64(struct store *s, const char *sql, uint64_t *out)
{
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);

	*out = 0;
	if (rc != SQLITE_OK)
		return store_sqlerr(s, rc, "stats");
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*out = (uint64_t)sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return (rc == SQLITE_ROW || rc == SQLITE_DONE) ? 0 : store_sqlerr(s, rc, "stats");
}

int store_quick_stats(struct store *s, struct store_stats *out)
{
	struct stat st;
	char wal[4200];
	int err;

	memset(out, 0, sizeof(*out));
	err = store_tx_begin(s, false);
	if (err)
		return err;
	err = one_u64(s, "SELECT coalesce(max(rev), 0) FROM revisions", &out->newest_rev);
	if (!err)
		err = one_u64(s, "SELECT coalesce(max(rev), 0) FROM revisions WHERE pinned != 0",
			      &out->pinned_rev);
	if (!err)
		err = one_u64(s, "SELECT count(*) FROM revisions", &out->n_revisions);
	out->serving_rev = out->pinned_rev ? out->pinned_rev : out->newest_rev;
	if (!err && out->serving_rev) {
		sqlite3_stmt *q = store_stmt(s, ST_REV_EXISTS);

		if (!q) {
			err = -WG_ESTORE;
		} else {
			sqlite3_bind_int64(q, 1, (sqlite3_int64)out->serving_rev);
			if (sqlite3_step(q) == SQLITE_ROW)
				out->n_objects = (uint64_t)sqlite3_column_int64(q, 0);
			sqlite3_reset(q);
		}
	}
	store_tx_rollback(s);
	if (stat(s->path, &st) == 0)
		out->db_bytes += (uint64_t)st.st_size;
	snprintf(wal, sizeof(wal), "%s-wal", s->path);
	if (stat(wal, &st) == 0)
		out->db_bytes += (uint64_t)st.st_size;
	out->recovered = s->recovery_note != NULL;
	return err;
}
