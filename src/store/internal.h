/* SPDX-License-Identifier: MIT */
/*
 * internal.h: what the files of store/ share and nobody else sees: the
 * connection struct, the prepared statement cache, transactions and the
 * translation of SQLite results into waygate error codes.
 */
#ifndef WG_STORE_INTERNAL_H
#define WG_STORE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

#include "store/store.h"

/* Prepared statements, prepared on first use and kept for the connection's
 * life. The SQL text of each lives in store.c (stmt_sql). */
enum store_stmt_id {
	ST_NEWEST = 0,
	ST_OBJ_BY_HASH,
	ST_OBJ_INSERT,
	ST_REV_INSERT,
	ST_MEMBER_ADD,
	ST_MEMBER_DROP,
	ST_MEMBERS_OPEN,
	ST_SNAP_INSERT,
	ST_IMAGE_INSERT,
	ST_IMAGE_GET,
	ST_IMAGE_PUT,
	ST_IMAGE_HAS,
	ST_LOAD,
	ST_PINNED,
	ST_REV_EXISTS,
	ST_AUDIT_INSERT,
	ST_AUDIT_TRIM,
	ST_SNAP_GET,
	ST_SESSION_INSERT,
	ST_SESSION_GET,
	ST_SESSION_TOUCH,
	ST_SESSION_DELETE,
	ST_SETTING_GET,
	ST_SETTING_SET,
	ST_SETTING_DEL,
	ST_CUTOFF,
	ST_RETAIN_OBJECTS,
	ST_RETAIN_MEMBERS,
	ST_RETAIN_SNAPSHOTS,
	ST_RETAIN_IMAGES,
	ST_RETAIN_REVISIONS,
	ST_TRIM_SNAPSHOTS,
	ST_TRIM_IMAGES,
	ST_FREELIST,
	ST_COUNT
};

/* Entry of the commit cache: an object of the last committed set (a
 * reference is held, so the pointer cannot be reused by another object) with
 * its content hash and row id. */
struct store_cached_obj {
	const struct gw_object *o; /* NULL = free slot */
	int64_t id;
	uint8_t hash[32];
};

struct store {
	sqlite3 *db;
	char *dir;
	char *path;
	char *recovery_note; /* NULL unless recovered */
	bool primary;
	unsigned keep_revisions;
	unsigned keep_snapshots;
	uint64_t (*now_fn)(void *arg);
	void *now_arg;
	sqlite3_stmt *stmts[ST_COUNT];
	/* Commit cache (primary connection only): exactly the objects of
	 * revision cache_rev (0 = none: the cache is empty), which is the
	 * newest one while no other connection commits, with its digest. A
	 * commit takes its change against it. cache_set and cache_pos say
	 * which set was committed and where its change log stood then
	 * (gw_objset_id, gw_objset_log_pos). */
	struct store_cached_obj *cache;
	size_t cache_cap; /* power of two, or 0 */
	size_t cache_n;
	uint64_t cache_rev;
	uint8_t cache_digest[32];
	uint64_t cache_set;
	uint64_t cache_pos;
	/* Set while a revision's transaction commits: the log's checkpoint
	 * waits for the next write (see on_wal_commit in store.c). */
	bool defer_checkpoint;
	/* How the last commit found its change ("log", "walk" or "full") and
	 * how many objects it hashed: its log line, and tests. */
	const char *last_path;
	size_t last_hashed;
};

/* Current wall clock of the store (milliseconds since the epoch). */
uint64_t store_now_ms(const struct store *s);
/* The cached statement id, reset and with bindings cleared; NULL on failure
 * (logged at debug). */
sqlite3_stmt *store_stmt(struct store *s, enum store_stmt_id id);
/* Translates a SQLite result code: logs sqlite's text at debug with `what`,
 * returns -ENOMEM, -ENOSPC, -EIO, -EROFS, -EBUSY or else -WG_ESTORE. */
int store_sqlerr(struct store *s, int rc, const char *what);
/* Runs SQL without results. 0 or store_sqlerr(). */
int store_exec(struct store *s, const char *sql);
/* BEGIN IMMEDIATE (write) or BEGIN (read); COMMIT; ROLLBACK (best effort). */
int store_tx_begin(struct store *s, bool write);
int store_tx_commit(struct store *s);
/* store_tx_commit for a revision's transaction (see defer_checkpoint). */
int store_tx_commit_revision(struct store *s);
void store_tx_rollback(struct store *s);
/* Sets PRAGMA synchronous: FULL around revision commits (durable before
 * served) and image writes, NORMAL otherwise. */
void store_sync_full(struct store *s, bool full);
/* Lowercase hex of n bytes into out (2n + 1 bytes). */
void store_hex(const uint8_t *p, size_t n, char *out);
/* Binds text or "" when NULL. */
int store_bind_text(sqlite3_stmt *st, int i, const char *v);
/* Content address of an object: SHA-256 over kind, namespace, name and the
 * SHA-256 of its JSON (so the JSON is hashed in place, never copied). */
void store_obj_hash(const char *kind, const char *ns, const char *name, const char *json,
		    size_t len, uint8_t out[32]);
/* Digest of an object set (revisions.set_hash): the sum modulo 2^256 of its
 * objects' hashes (n of 32 bytes) read as little-endian numbers, so it does
 * not depend on their order and follows a change by adding and subtracting
 * the hashes of the objects gained and lost (store_digest_add, _sub). */
void store_set_digest(const uint8_t *hashes, size_t n, uint8_t out[32]);
void store_digest_add(uint8_t digest[32], const uint8_t hash[32]);
void store_digest_sub(uint8_t digest[32], const uint8_t hash[32]);
/* The set digest of schema 3 and before: SHA-256 over the objects' hashes
 * sorted (in place). Only a recovery of such a database still reads it. */
void store_set_hash_sorted(uint8_t *hashes, size_t n, uint8_t out[32]);
/* Drops the commit cache (releasing its object references). */
void store_cache_clear(struct store *s);
/* Applies retention inside the caller's write transaction. */
int store_retain(struct store *s);

/* Salvage during recovery (recover.c): copies what can be read from the
 * damaged database at bad_path into the fresh store s; writes a summary of
 * what was restored into note (size bytes). */
void store_salvage(struct store *s, const char *bad_path, char *note, size_t size);

#endif
