/* SPDX-License-Identifier: MIT */
/*
 * store.h: the memory of the box. One SQLite database, `<state_dir>/waygate.db`
 * (WAL mode, file 0600, directory 0700), holds:
 *   - revisions: every object set the reconciler accepted, with the snapshot
 *     compiled from it (its JSON), its source, user, time and a summary.
 *     Objects are content-addressed, so unchanged objects are stored once
 *     however many revisions hold them. One revision may be pinned: it is
 *     then served instead of the newest (rollback) until unpinned;
 *   - an audit log of every change (commits, pins, passwords, uploads);
 *   - the UI's credentials (PBKDF2-SHA256, random salt), sessions, settings
 *     (key/value: mode, the uploaded kubeconfig, generated keys) and traffic
 *     rollups (one row per minute, at most 24 hours).
 *
 * Threads and connections. A struct store is one SQLite connection and is
 * used by one thread at a time. The control thread opens the primary
 * connection with store_open() (integrity check, recovery, migrations,
 * retention) and is the only writer of revisions (store_commit). The UI
 * thread, and commands such as `waygate routes`, open their own connection
 * with store_open_reader() after the database exists: it reads everything
 * and writes UI-owned state (sessions, credentials, settings, traffic, pins,
 * audit entries). WAL lets readers and the writer run concurrently; a
 * writer waits up to a busy timeout for another writer.
 *
 * Errors: 0 or a negative code. -WG_ENOTFOUND when the thing asked for does
 * not exist, -EINVAL for bad arguments, -ENOSPC (disk full), -EIO, -EROFS,
 * -EBUSY (another writer held the database past the busy timeout), -ENOMEM,
 * and -WG_ESTORE for any other database failure (SQLite's own text is
 * logged at debug level). A failed write changes nothing.
 * Strings returned through an arena are copies owned by that arena.
 */
#ifndef WG_STORE_STORE_H
#define WG_STORE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct arena;
struct diag;
struct gw_objset;
struct store;

#define STORE_DEFAULT_DIR "/var/lib/waygate"
#define STORE_DB_NAME "waygate.db"
/* Revisions kept by retention besides every pinned one. */
#define STORE_DEFAULT_KEEP_REVISIONS 50
/* Revisions (newest first) whose snapshot JSON is kept, besides the pinned
 * one; older revisions keep their objects only (a 10,000-route snapshot is
 * megabytes, and the box's flash is small). */
#define STORE_DEFAULT_KEEP_SNAPSHOTS 10
/* Traffic rollups: minutes kept, counted back from the newest minute. */
#define STORE_TRAFFIC_MINUTES (24 * 60)
/* Audit entries kept (oldest dropped first). */
#define STORE_AUDIT_MAX 10000
#define STORE_PBKDF2_ITERATIONS 100000u
#define STORE_SESSION_ID_HEX 64 /* 32 random bytes as hex, without the NUL */

/* -------- open, close (see the thread rules above) -------- */

/*
 * Opens (creating if needed) the store in state_dir: the directory is made
 * 0700 when missing, the database file is 0600. Runs PRAGMA quick_check and
 * the schema migrations. When the database is damaged (not a database,
 * corrupt pages, a failed check) it is moved aside as
 * waygate.db.corrupt-<UTC time>, the newest revision that can still be read
 * (plus credentials and settings) is copied into a fresh database, or the
 * store starts empty; the log says so and store_recovery_note() tells the UI.
 * Returns NULL with an entry in d (naming the path and the reason) when the
 * store cannot be opened at all (permissions, disk, a newer schema).
 * Control thread; the caller closes it.
 */
struct store *store_open(const char *state_dir, struct diag *d);
/*
 * store_open without the page check (a damaged file found while opening
 * is still recovered): a start serves the stored snapshot image, which
 * carries its own digest, before reading every page of the file, then
 * calls store_check. Control thread.
 */
struct store *store_open_deferred(const char *state_dir, struct diag *d);
/*
 * The check store_open runs (PRAGMA quick_check) and, when it fails, the
 * same recovery (the file moved aside, the newest intact revision, pin,
 * credentials and settings restored): 0 when the file is sound, 1 when it
 * was recovered (what is served may have to change: store_recovery_note
 * says what happened), or negative with an entry in d.
 */
int store_check(struct store *s, struct diag *d);
/*
 * Opens another connection to an existing store, for another thread (the UI)
 * or a command (`waygate routes`, `waygate passwd` while `waygate run` may be
 * serving): no check and no recovery (a damaged database is reported, and
 * left to store_open), migrations only if the schema is older. NULL with an
 * entry in d when the database does not exist or cannot be opened.
 */
struct store *store_open_reader(const char *state_dir, struct diag *d);
void store_close(struct store *s);
/* Borrowed; NULL unless store_open() had to recover a damaged database. The
 * text says what happened: where the damaged file went, which revision was
 * restored (or that the store started empty). */
const char *store_recovery_note(const struct store *s);
/* Absolute path of the database file (borrowed). */
const char *store_path(const struct store *s);
/* Retention limits (0 keeps the current value). Applied at the next commit. */
void store_set_retention(struct store *s, unsigned keep_revisions, unsigned keep_snapshots);
/* Tests: replaces the wall clock (milliseconds since the epoch) used for
 * revision, audit and session times. NULL restores the real clock. */
void store_set_clock(struct store *s, uint64_t (*now_ms)(void *arg), void *arg);

/* -------- revisions (control thread writes, any connection reads) -------- */

/*
 * Commits set (every object's JSON) and snapshot_json (gw_snapshot_to_json of
 * the snapshot compiled from it; may be NULL) as a new revision, in one
 * durable transaction: when it returns 0, a power cut no longer loses it.
 * source is "cluster", "file" or "ui"; user may be NULL; summary is one line
 * (may be NULL). When the object set equals the newest revision's, nothing
 * is written and *rev_out is that revision. Also applies retention and
 * records an audit entry. Borrowed arguments; the set is not modified.
 */
int store_commit(struct store *s, struct gw_objset *set, const char *snapshot_json,
		 const char *source, const char *user, const char *summary, uint64_t *rev_out);
/*
 * What a revision's object set compiled into: the snapshot JSON (for people:
 * the UI, `waygate routes`) and the snapshot image (gwapi/snapimage.h, what
 * a start serves without reconciling; it holds key material and is never
 * shown). Either may be NULL.
 */
struct store_compiled {
	const char *json;
	const uint8_t *image;
	size_t image_len;
	/* Only the image's hash goes into the revision's transaction; the
	 * caller writes the bytes with store_snapshot_image_put once it has
	 * served them, so the commit on the way to serving stays small. Until
	 * then (or if that write is lost) the revision has no image and a
	 * start rebuilds it from its objects. */
	bool image_later;
	/* gw_image_digest(image, image_len) when the caller has it already
	 * (0 = not given): the commit then records it as the image's digest
	 * instead of reading a megabyte again. With image_later the bytes
	 * may be left out (image NULL): the digest alone is committed, as the
	 * encoder has it before the bytes are written. */
	uint64_t image_hash;
};
/*
 * store_commit with the image as well, stored with its digest in the same
 * transaction. When the object set equals the newest revision's but the
 * image differs (the same objects compiled by a newer build), that
 * revision's JSON and image are replaced, so the revision always holds what
 * is served.
 */
int store_commit_compiled(struct store *s, struct gw_objset *set, const struct store_compiled *c,
			  const char *source, const char *user, const char *summary,
			  uint64_t *rev_out);
/*
 * Copies the snapshot image of revision rev (0 = serving) into a new
 * buffer *image of *len bytes; the caller wipes and frees it
 * (gw_image_buf_free). *rev_out (may be NULL) is the revision resolved,
 * *digest (may be NULL) the image's gw_image_digest, checked against the
 * one committed. -WG_ENOTFOUND when the revision does not exist or keeps
 * no image (older than the newest few, or committed by a build without
 * images); -EBADMSG when the stored bytes no longer match their hash.
 */
int store_snapshot_image(struct store *s, uint64_t rev, uint8_t **image, size_t *len,
			 uint64_t *rev_out, uint64_t *digest);
/* Writes the bytes of rev's image committed with image_later. -WG_ENOTFOUND
 * (nothing written) when rev holds no image entry with their hash (bytes
 * other than those committed, another image committed since, or retention
 * dropped it). Borrowed arguments. Durable when it returns 0 (so that the
 * next commit's sync does not have to carry its bytes); a power cut before
 * that only costs a rebuild at the next start. */
int store_snapshot_image_put(struct store *s, uint64_t rev, const uint8_t *image, size_t len);
/*
 * Puts the objects of revision rev (0 = the serving revision: the pinned one
 * if any, else the newest) into set (pass an empty set to get exactly that
 * revision); objects get source "store". *rev_out (may be NULL) is the
 * revision loaded. -WG_ENOTFOUND when there is no such revision (or none at
 * all), -WG_ESTORE when a stored object no longer parses.
 */
int store_load(struct store *s, uint64_t rev, struct gw_objset *set, uint64_t *rev_out);
/* The serving revision (pinned, else newest): 0 with *rev = 0 when the store
 * holds no revision. */
int store_serving(struct store *s, uint64_t *rev);
/*
 * Snapshot JSON of revision rev (0 = serving) copied into arena.
 * -WG_ENOTFOUND when the revision does not exist or no longer keeps its
 * snapshot (see STORE_DEFAULT_KEEP_SNAPSHOTS); *rev_out may be NULL.
 */
int store_snapshot_json(struct store *s, uint64_t rev, struct arena *a, char **json,
			uint64_t *rev_out);

struct store_revision {
	uint64_t rev;
	uint64_t time_ms; /* wall clock, milliseconds since the epoch */
	const char *source;
	const char *user;    /* "" when none */
	const char *summary; /* "" when none */
	uint64_t n_objects;
	bool pinned;
	bool serving;
	bool has_snapshot;
};
/* Newest first, skipping `offset`, at most `limit` (0 = all). The array and
 * strings live in arena. */
int store_revisions(struct store *s, size_t offset, size_t limit, struct arena *a,
		    struct store_revision **out, size_t *n);
/* One revision's entry; -WG_ENOTFOUND when absent. Strings in arena. */
int store_revision_get(struct store *s, uint64_t rev, struct arena *a, struct store_revision *out);

enum store_change { STORE_ADDED = 0, STORE_REMOVED, STORE_CHANGED };
struct store_diff_entry {
	enum store_change change;
	const char *kind; /* Kind name: "HTTPRoute" */
	const char *ns;   /* "" for cluster-scoped */
	const char *name;
};
/* What changed from revision a to revision b (either order), sorted by kind,
 * namespace and name. Entries live in arena. -WG_ENOTFOUND if either
 * revision does not exist. */
int store_diff(struct store *s, uint64_t a, uint64_t b, struct arena *ar,
	       struct store_diff_entry **out, size_t *n);
/* JSON of one object as stored in revision rev (0 = serving), copied into
 * arena; -WG_ENOTFOUND when the revision does not hold it. kind is matched
 * exactly ("HTTPRoute"). A Secret's JSON holds key material: callers never
 * show it. */
int store_object_json(struct store *s, uint64_t rev, const char *kind, const char *ns,
		      const char *name, struct arena *a, char **json);

/* Pins rev (replacing any previous pin): it is served until unpinned, and
 * kept by retention. Audited with source and user. -WG_ENOTFOUND when rev
 * does not exist. */
int store_pin(struct store *s, uint64_t rev, const char *source, const char *user);
/* Removes the pin (no-op when none); the newest revision is served again. */
int store_unpin(struct store *s, const char *source, const char *user);
/* *rev = the pinned revision, or 0 when none. */
int store_pinned(struct store *s, uint64_t *rev);

/* -------- audit (any connection) -------- */

/* Records one entry at the current time. source "cluster"/"file"/"ui"/"cli"/
 * "store"; user may be NULL. Never pass secrets in summary. */
int store_audit(struct store *s, const char *source, const char *user, const char *summary);
struct store_audit_entry {
	uint64_t id; /* increasing */
	uint64_t time_ms;
	const char *source;
	const char *user; /* "" when none */
	const char *summary;
};
/* Newest first; entries with id < before_id (0 = from the newest), at most
 * limit (0 = all). Entries live in arena. */
int store_audit_list(struct store *s, uint64_t before_id, size_t limit, struct arena *a,
		     struct store_audit_entry **out, size_t *n);

/* -------- UI credentials and sessions (UI thread or `waygate passwd`) -------- */

/* Sets user's password (PBKDF2-SHA256, STORE_PBKDF2_ITERATIONS, a random
 * 16-byte salt), ends every session of that user, and records an audit
 * entry with source (e.g. "cli", "ui"). -EINVAL for an empty password. */
int store_set_password(struct store *s, const char *user, const char *password, const char *source);
/* 0 when password is user's; -EACCES when it is not or the user has no
 * password (the time taken does not tell which). */
int store_check_password(struct store *s, const char *user, const char *password);
bool store_has_password(struct store *s, const char *user);

/* Creates a session for user: id_hex receives 64 hex characters and a NUL
 * (32 random bytes). Only a hash of the id is stored. */
int store_session_create(struct store *s, const char *user, char id_hex[STORE_SESSION_ID_HEX + 1]);
/*
 * Looks a session up: 0 and its user copied into user_out (NUL-terminated,
 * truncated to user_size) when it exists and was used less than
 * idle_timeout_ms ago (and is younger than max_age_ms, 0 = no limit; and
 * not last used more than a minute in the future, after a clock step); its
 * last use becomes now. -WG_ENOTFOUND when unknown or expired (an expired
 * session is deleted).
 */
int store_session_lookup(struct store *s, const char *id_hex, uint64_t idle_timeout_ms,
			 uint64_t max_age_ms, char *user_out, size_t user_size);
/* Deletes a session (logout); 0 also when it did not exist. */
int store_session_delete(struct store *s, const char *id_hex);
/* Replaces a live session by a new id for the same user (after login or a
 * privilege change). -WG_ENOTFOUND when old_id is unknown. */
int store_session_rotate(struct store *s, const char *old_id_hex,
			 char new_id_hex[STORE_SESSION_ID_HEX + 1]);
/* Deletes sessions idle longer than idle_timeout_ms; *n_deleted may be NULL. */
int store_session_prune(struct store *s, uint64_t idle_timeout_ms, size_t *n_deleted);

/* -------- settings (any connection) -------- */

/* Copies the value of key into a new NUL-terminated buffer (*len excludes
 * the NUL; len may be NULL). The caller frees it, wiping it first when it
 * is a secret. -WG_ENOTFOUND when unset. Values are never logged. */
int store_setting_get(struct store *s, const char *key, char **value, size_t *len);
/* Sets key to len bytes of value; value NULL deletes the key. Not audited:
 * callers record what a person did with store_audit(). */
int store_setting_set(struct store *s, const char *key, const void *value, size_t len);

/* -------- traffic rollups (control or UI thread) -------- */

struct store_traffic {
	uint64_t minute; /* minutes since the epoch */
	uint64_t requests;
	uint64_t errors;
	uint32_t p50_ms;
	uint32_t p99_ms;
	uint64_t bytes;
};
/* Adds one minute's figures (minutes are added in time order). Adding to a
 * minute already present sums the counters and keeps the larger
 * percentiles. Rows more than STORE_TRAFFIC_MINUTES away from the minute
 * added are dropped (also rows from the future after the clock stepped
 * back). */
int store_traffic_add(struct store *s, const struct store_traffic *t);
/* Rows with minute >= from_minute, oldest first, in arena. */
int store_traffic_read(struct store *s, uint64_t from_minute, struct arena *a,
		       struct store_traffic **out, size_t *n);

/* -------- figures for the UI -------- */

struct store_stats {
	uint64_t serving_rev; /* 0 = none */
	uint64_t newest_rev;
	uint64_t pinned_rev; /* 0 = none */
	uint64_t n_revisions;
	uint64_t n_objects; /* in the serving revision */
	uint64_t db_bytes;  /* database file plus its WAL */
	bool recovered;     /* store_recovery_note() is not NULL */
};
int store_quick_stats(struct store *s, struct store_stats *st);

#endif
