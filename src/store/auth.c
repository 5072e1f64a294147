/* SPDX-License-Identifier: MIT */
/*
 * auth.c: the UI's credentials and sessions. A password is kept as
 * PBKDF2-SHA256 (STORE_PBKDF2_ITERATIONS, the count stored per row so it
 * can be raised later) of a random 16-byte salt; a check of a user without
 * a password costs the same as a wrong password. A session id is 32 random
 * bytes shown as hex; only its SHA-256 is stored, so a copy of the database
 * does not open sessions. It does not rate-limit logins or set cookies (the
 * UI does). Runs on the UI thread's connection, or in `waygate passwd`.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <sqlite3.h>

#include "core/err.h"
#include "core/log.h"
#include "store/internal.h"
#include "store/store.h"
#include "tls/tls.h"

#define SALT_LEN 16
#define DK_LEN 32
#define CLOCK_SLACK_MS 60000 /* clock steps back tolerated for sessions */

int store_set_password(struct store *s, const char *user, const char *password, const char *source)
{
	uint8_t salt[SALT_LEN], dk[DK_LEN];
	sqlite3_stmt *st = NULL;
	char line[160];
	int err, rc;

	if (!s || !user || !*user || !password || !*password)
		return -EINVAL;
	err = tls_random(salt, sizeof(salt));
	if (err)
		return err;
	err = tls_pbkdf2_sha256(password, salt, sizeof(salt), STORE_PBKDF2_ITERATIONS, dk,
				sizeof(dk));
	if (err)
		goto wipe;
	store_sync_full(s, true);
	err = store_tx_begin(s, true);
	if (err)
		goto out;
	rc = sqlite3_prepare_v2(
		s->db,
		"INSERT OR REPLACE INTO credentials(user, salt, iterations, hash, time_ms)"
		" VALUES (?1, ?2, ?3, ?4, ?5)",
		-1, &st, NULL);
	if (rc == SQLITE_OK) {
		sqlite3_bind_text(st, 1, user, -1, SQLITE_STATIC);
		sqlite3_bind_blob(st, 2, salt, sizeof(salt), SQLITE_STATIC);
		sqlite3_bind_int64(st, 3, STORE_PBKDF2_ITERATIONS);
		sqlite3_bind_blob(st, 4, dk, sizeof(dk), SQLITE_STATIC);
		sqlite3_bind_int64(st, 5, (sqlite3_int64)store_now_ms(s));
		rc = sqlite3_step(st);
		sqlite3_finalize(st);
		st = NULL;
	}
	if (rc != SQLITE_DONE && rc != SQLITE_OK) {
		err = store_sqlerr(s, rc, "password");
		goto fail;
	}
	/* A new password ends every session opened with the old one. */
	rc = sqlite3_prepare_v2(s->db, "DELETE FROM sessions WHERE user = ?1", -1, &st, NULL);
	if (rc == SQLITE_OK) {
		sqlite3_bind_text(st, 1, user, -1, SQLITE_STATIC);
		rc = sqlite3_step(st);
		sqlite3_finalize(st);
		st = NULL;
	}
	if (rc != SQLITE_DONE && rc != SQLITE_OK) {
		err = store_sqlerr(s, rc, "password sessions");
		goto fail;
	}
	snprintf(line, sizeof(line), "password changed for user %.64s", user);
	err = store_audit(s, source ? source : "ui", NULL, line);
	if (err)
		goto fail;
	err = store_tx_commit(s);
	if (!err)
		log_info("event=store_password_set user=%s source=%s", log_q(user),
			 log_q(source ? source : "ui"));
	goto out;
fail:
	store_tx_rollback(s);
out:
	store_sync_full(s, false);
wipe:
	tls_zeroize(dk, sizeof(dk));
	return err;
}

int store_check_password(struct store *s, const char *user, const char *password)
{
	static const uint8_t dummy_salt[SALT_LEN] = "waygate-no-user";
	uint8_t salt[SALT_LEN], want[DK_LEN], got[DK_LEN];
	uint32_t iterations = STORE_PBKDF2_ITERATIONS;
	sqlite3_stmt *st = NULL;
	bool found = false;
	int err = 0, rc;

	if (!s || !user || !password)
		return -EINVAL;
	rc = sqlite3_prepare_v2(s->db,
				"SELECT salt, iterations, hash FROM credentials WHERE user = ?1",
				-1, &st, NULL);
	if (rc != SQLITE_OK)
		return store_sqlerr(s, rc, "password");
	sqlite3_bind_text(st, 1, user, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW && sqlite3_column_bytes(st, 0) == SALT_LEN &&
	    sqlite3_column_bytes(st, 2) == DK_LEN && sqlite3_column_int64(st, 1) > 0 &&
	    sqlite3_column_int64(st, 1) <= 100000000) {
		memcpy(salt, sqlite3_column_blob(st, 0), SALT_LEN);
		iterations = (uint32_t)sqlite3_column_int64(st, 1);
		memcpy(want, sqlite3_column_blob(st, 2), DK_LEN);
		found = true;
	} else if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		err = store_sqlerr(s, rc, "password");
	}
	sqlite3_finalize(st);
	if (err)
		return err;
	if (!found) {
		/* Same work as a real check: the time does not tell whether
		 * the user exists. */
		memcpy(salt, dummy_salt, SALT_LEN);
		memset(want, 0, sizeof(want));
	}
	err = tls_pbkdf2_sha256(password, salt, SALT_LEN, iterations, got, sizeof(got));
	if (!err && !(tls_ct_equal(got, want, DK_LEN) && found))
		err = -EACCES;
	tls_zeroize(got, sizeof(got));
	tls_zeroize(want, sizeof(want));
	return err;
}

bool store_has_password(struct store *s, const char *user)
{
	sqlite3_stmt *st = NULL;
	bool has = false;

	if (sqlite3_prepare_v2(s->db, "SELECT 1 FROM credentials WHERE user = ?1", -1, &st, NULL) !=
	    SQLITE_OK)
		return false;
	sqlite3_bind_text(st, 1, user ? user : "", -1, SQLITE_STATIC);
	has = sqlite3_step(st) == SQLITE_ROW;
	sqlite3_finalize(st);
	return has;
}

/* -------- sessions -------- */

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* SHA-256 of the raw id; false when id_hex is not 64 hex digits. */
static bool id_key(const char *id_hex, uint8_t key[32])
{
	uint8_t raw[32];

	if (!id_hex || strlen(id_hex) != STORE_SESSION_ID_HEX)
		return false;
	for (size_t i = 0; i < sizeof(raw); i++) {
		int hi = hexval(id_hex[2 * i]), lo = hexval(id_hex[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return false;
		raw[i] = (uint8_t)(hi << 4 | lo);
	}
	tls_sha256(raw, sizeof(raw), key);
	tls_zeroize(raw, sizeof(raw));
	return true;
}

static int insert_session(struct store *s, const char *user, char id_hex[STORE_SESSION_ID_HEX + 1])
{
	uint8_t raw[32], key[32];
	sqlite3_stmt *st;
	int err, rc;

	err = tls_random(raw, sizeof(raw));
	if (err)
		return err;
	store_hex(raw, sizeof(raw), id_hex);
	tls_sha256(raw, sizeof(raw), key);
	tls_zeroize(raw, sizeof(raw));
	st = store_stmt(s, ST_SESSION_INSERT);
	if (!st)
		return -WG_ESTORE;
	sqlite3_bind_blob(st, 1, key, sizeof(key), SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 2, user, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)store_now_ms(s));
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		tls_zeroize(id_hex, STORE_SESSION_ID_HEX);
		id_hex[0] = '\0';
		return store_sqlerr(s, rc, "session insert");
	}
	return 0;
}

int store_session_create(struct store *s, const char *user, char id_hex[STORE_SESSION_ID_HEX + 1])
{
	if (!s || !user || !*user)
		return -EINVAL;
	return insert_session(s, user, id_hex);
}

static int delete_key(struct store *s, const uint8_t key[32])
{
	sqlite3_stmt *st = store_stmt(s, ST_SESSION_DELETE);
	int rc;

	if (!st)
		return -WG_ESTORE;
	sqlite3_bind_blob(st, 1, key, 32, SQLITE_TRANSIENT);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? 0 : store_sqlerr(s, rc, "session delete");
}

int store_session_lookup(struct store *s, const char *id_hex, uint64_t idle_timeout_ms,
			 uint64_t max_age_ms, char *user_out, size_t user_size)
{
	uint64_t now = store_now_ms(s), created, last, touch_after;
	uint8_t key[32];
	sqlite3_stmt *st;
	int rc;

	if (user_out && user_size)
		user_out[0] = '\0';
	if (!s || !id_key(id_hex, key))
		return -WG_ENOTFOUND;
	st = store_stmt(s, ST_SESSION_GET);
	if (!st)
		return -WG_ESTORE;
	sqlite3_bind_blob(st, 1, key, sizeof(key), SQLITE_TRANSIENT);
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		sqlite3_reset(st);
		return rc == SQLITE_DONE ? -WG_ENOTFOUND : store_sqlerr(s, rc, "session");
	}
	created = (uint64_t)sqlite3_column_int64(st, 1);
	last = (uint64_t)sqlite3_column_int64(st, 2);
	if (user_out && user_size) {
		const char *u = (const char *)sqlite3_column_text(st, 0);

		snprintf(user_out, user_size, "%s", u ? u : "");
	}
	sqlite3_reset(st);
	/* A box without a battery-backed clock may step its clock back (at
	 * boot, then NTP): a session stamped well in the future would never
	 * go idle, so it ends too. */
	if ((now > last && now - last >= idle_timeout_ms) ||
	    (max_age_ms && now > created && now - created >= max_age_ms) ||
	    last > now + CLOCK_SLACK_MS) {
		if (user_out && user_size)
			user_out[0] = '\0';
		delete_key(s, key);
		return -WG_ENOTFOUND;
	}
	/* Every UI request looks its session up: write the last use only when
	 * it moved enough to matter for the idle timeout. */
	touch_after = idle_timeout_ms / 16;
	if (touch_after > 10000)
		touch_after = 10000;
	if (now > last && now - last >= touch_after) {
		st = store_stmt(s, ST_SESSION_TOUCH);
		if (!st)
			return -WG_ESTORE;
		sqlite3_bind_blob(st, 1, key, sizeof(key), SQLITE_TRANSIENT);
		sqlite3_bind_int64(st, 2, (sqlite3_int64)now);
		rc = sqlite3_step(st);
		sqlite3_reset(st);
		if (rc != SQLITE_DONE)
			return store_sqlerr(s, rc, "session touch");
	}
	return 0;
}

int store_session_delete(struct store *s, const char *id_hex)
{
	uint8_t key[32];

	if (!s || !id_key(id_hex, key))
		return 0;
	return delete_key(s, key);
}

int store_session_rotate(struct store *s, const char *old_id_hex,
			 char new_id_hex[STORE_SESSION_ID_HEX + 1])
{
	uint8_t key[32];
	char user[256];
	sqlite3_stmt *st;
	int err, rc;

	if (!s || !id_key(old_id_hex, key))
		return -WG_ENOTFOUND;
	err = store_tx_begin(s, true);
	if (err)
		return err;
	st = store_stmt(s, ST_SESSION_GET);
	if (!st) {
		err = -WG_ESTORE;
		goto fail;
	}
	sqlite3_bind_blob(st, 1, key, sizeof(key), SQLITE_TRANSIENT);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		const char *u = (const char *)sqlite3_column_text(st, 0);

		snprintf(user, sizeof(user), "%s", u ? u : "");
	}
	sqlite3_reset(st);
	if (rc != SQLITE_ROW) {
		err = rc == SQLITE_DONE ? -WG_ENOTFOUND : store_sqlerr(s, rc, "session");
		goto fail;
	}
	err = delete_key(s, key);
	if (!err)
		err = insert_session(s, user, new_id_hex);
	if (err)
		goto fail;
	return store_tx_commit(s);
fail:
	store_tx_rollback(s);
	return err;
}

int store_session_prune(struct store *s, uint64_t idle_timeout_ms, size_t *n_deleted)
{
	uint64_t now = store_now_ms(s);
	sqlite3_stmt *st = NULL;
	int rc;

	if (n_deleted)
		*n_deleted = 0;
	rc = sqlite3_prepare_v2(s->db, "DELETE FROM sessions WHERE last_ms <= ?1", -1, &st, NULL);
	if (rc != SQLITE_OK)
		return store_sqlerr(s, rc, "session prune");
	sqlite3_bind_int64(st, 1,
			   now > idle_timeout_ms ? (sqlite3_int64)(now - idle_timeout_ms) : 0);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return store_sqlerr(s, rc, "session prune");
	if (n_deleted)
		*n_deleted = (size_t)sqlite3_changes(s->db);
	return 0;
}
