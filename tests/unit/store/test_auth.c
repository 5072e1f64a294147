/* SPDX-License-Identifier: MIT */
/*
 * test_auth.c: UI credentials (right and wrong passwords, unknown users,
 * a fresh salt per password, the iteration count, sessions ended by a
 * password change) and sessions (hex ids, idle and absolute expiry against
 * a controlled clock, last-use refresh, rotation, deletion, pruning, ids
 * never stored in clear).
 */
#include "helpers.h"

#include "check.h"
#include "core/err.h"

TEST(store_password_right_and_wrong)
{
	char buf[64];
	const char *dir = th_tmpdir(buf);
	struct store *s = th_open(dir);

	CHECK(!store_has_password(s, "admin"));
	CHECK_EQ_INT(store_check_password(s, "admin", "anything"), -EACCES);
	CHECK_EQ_INT(store_set_password(s, "admin", "", "cli"), -EINVAL);
	CHECK_EQ_INT(store_set_password(s, "admin", "s3cret-pass", "cli"), 0);
	CHECK(store_has_password(s, "admin"));
	CHECK_EQ_INT(store_check_password(s, "admin", "s3cret-pass"), 0);
	CHECK_EQ_INT(store_check_password(s, "admin", "s3cret-pasS"), -EACCES);
	CHECK_EQ_INT(store_check_password(s, "admin", ""), -EACCES);
	CHECK_EQ_INT(store_check_password(s, "root", "s3cret-pass"), -EACCES);
	/* Recorded, without the password. */
	CHECK_EQ_INT(th_query(s, "SELECT count(*) FROM audit WHERE source = 'cli'"
				 " AND summary = 'password changed for user admin'"),
		     1);
	CHECK_EQ_INT(th_query(s, "SELECT count(*) FROM audit WHERE summary LIKE '%s3cret%'"), 0);
	CHECK_EQ_INT(th_query(s, "SELECT iterations FROM credentials WHERE user = 'admin'"),
		     STORE_PBKDF2_ITERATIONS);
	CHECK(STORE_PBKDF2_ITERATIONS >= 100000);
	/* A new password replaces the old one. */
	CHECK_EQ_INT(store_set_password(s, "admin", "another-one", "ui"), 0);
	CHECK_EQ_INT(store_check_password(s, "admin", "s3cret-pass"), -EACCES);
	CHECK_EQ_INT(store_check_password(s, "admin", "another-one"), 0);
	store_close(s);
	th_rmdir(dir);
}

TEST(store_password_salt_differs)
{
	char buf[64];
	const char *dir = th_tmpdir(buf);
	struct store *s = th_open(dir);

	CHECK_EQ_INT(store_set_password(s, "admin", "same password", "cli"), 0);
	CHECK_EQ_INT(store_set_password(s, "other", "same password", "cli"), 0);
	CHECK_EQ_INT(th_query(s, "SELECT count(DISTINCT salt) FROM credentials"), 2);
	CHECK_EQ_INT(th_query(s, "SELECT count(DISTINCT hash) FROM credentials"), 2);
	CHECK_EQ_INT(th_query(s, "SELECT min(length(salt)) FROM credentials"), 16);
	store_close(s);
	th_rmdir(dir);
}

TEST(store_session_expires_when_idle)
{
	char buf[64], id[STORE_SESSION_ID_HEX + 1], user[32];
	const char *dir = th_tmpdir(buf);
	struct store *s = th_open(dir);
	struct th_clock clk = {.now_ms = 1000000};
	const uint64_t idle = 60000;

	store_set_clock(s, th_clock_now, &clk);
	CHECK_EQ_INT(store_session_create(s, "admin", id), 0);
	CHECK_EQ_INT(strlen(id), STORE_SESSION_ID_HEX);
	CHECK_EQ_INT(strspn(id, "0123456789abcdef"), STORE_SESSION_ID_HEX);
	CHECK_EQ_INT(store_session_lookup(s, id, idle, 0, user, sizeof(user)), 0);
	CHECK_EQ_STR(user, "admin");
	/* Use within the idle timeout keeps it alive past the first deadline. */
	clk.now_ms += idle / 2;
	CHECK_EQ_INT(store_session_lookup(s, id, idle, 0, user, sizeof(user)), 0);
	clk.now_ms += idle / 2 + idle / 4;
	CHECK_EQ_INT(store_session_lookup(s, id, idle, 0, user, sizeof(user)), 0);
	/* Idle too long: gone, and deleted. */
	clk.now_ms += idle;
	CHECK_EQ_INT(store_session_lookup(s, id, idle, 0, user, sizeof(user)), -WG_ENOTFOUND);
	CHECK_EQ_STR(user, "");
	CHECK_EQ_INT(th_query(s, "SELECT count(*) FROM sessions"), 0);
	/* A clock stepped back by an hour ends sessions used "later";
	 * a small step is tolerated. */
	CHECK_EQ_INT(store_session_create(s, "admin", id), 0);
	clk.now_ms -= 30000;
	CHECK_EQ_INT(store_session_lookup(s, id, idle, 0, user, sizeof(user)), 0);
	clk.now_ms -= 3600000;
	CHECK_EQ_INT(store_session_lookup(s, id, idle, 0, user, sizeof(user)), -WG_ENOTFOUND);
	store_close(s);
	th_rmdir(dir);
}

TEST(store_session_max_age)
{
	char buf[64], id[STORE_SESSION_ID_HEX + 1], user[32];
	const char *dir = th_tmpdir(buf);
	struct store *s = th_open(dir);
	struct th_clock clk = {.now_ms = 5000000};

	store_set_clock(s, th_clock_now, &clk);
	CHECK_EQ_INT(store_session_create(s, "admin", id), 0);
	for (int i = 0; i < 4; i++) {
		clk.now_ms += 20000;
		CHECK_EQ_INT(store_session_lookup(s, id, 60000, 100000, user, sizeof(user)), 0);
	}
	clk.now_ms += 40000; /* 120 s old, active, but past the 100 s limit */
	CHECK_EQ_INT(store_session_lookup(s, id, 60000, 100000, user, sizeof(user)), -WG_ENOTFOUND);
	store_close(s);
	th_rmdir(dir);
}

TEST(store_session_rotate_delete_prune)
{
	char buf[64], id[STORE_SESSION_ID_HEX + 1], id2[STORE_SESSION_ID_HEX + 1], user[32];
	char other[STORE_SESSION_ID_HEX + 1], up[STORE_SESSION_ID_HEX + 1];
	const char *dir = th_tmpdir(buf);
	struct store *s = th_open(dir);
	struct th_clock clk = {.now_ms = 1000};
	size_t pruned = 0;

	store_set_clock(s, th_clock_now, &clk);
	CHECK_EQ_INT(store_session_create(s, "admin", id), 0);
	CHECK_EQ_INT(store_session_rotate(s, id, id2), 0);
	CHECK(strcmp(id, id2) != 0);
	CHECK_EQ_INT(store_session_lookup(s, id, 60000, 0, user, sizeof(user)), -WG_ENOTFOUND);
	CHECK_EQ_INT(store_session_lookup(s, id2, 60000, 0, user, sizeof(user)), 0);
	CHECK_EQ_STR(user, "admin");
	CHECK_EQ_INT(store_session_rotate(s, id, other), -WG_ENOTFOUND);
	/* Only a hash of the id is kept. */
	for (size_t i = 0; i < STORE_SESSION_ID_HEX; i++)
		up[i] = (char)((id2[i] >= 'a' && id2[i] <= 'f') ? id2[i] - 32 : id2[i]);
	up[STORE_SESSION_ID_HEX] = '\0';
	char sql[200];
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM sessions WHERE hex(id_hash) = '%s'", up);
	CHECK_EQ_INT(th_query(s, sql), 0);
	CHECK_EQ_INT(th_query(s, "SELECT count(*) FROM sessions"), 1);
	/* Malformed ids are simply unknown. */
	CHECK_EQ_INT(store_session_lookup(s, "zz", 60000, 0, user, sizeof(user)), -WG_ENOTFOUND);
	CHECK_EQ_INT(store_session_lookup(s, NULL, 60000, 0, user, sizeof(user)), -WG_ENOTFOUND);
	/* Logout. */
	CHECK_EQ_INT(store_session_delete(s, id2), 0);
	CHECK_EQ_INT(store_session_lookup(s, id2, 60000, 0, user, sizeof(user)), -WG_ENOTFOUND);
	CHECK_EQ_INT(store_session_delete(s, id2), 0);
	/* Pruning drops idle sessions only. */
	CHECK_EQ_INT(store_session_create(s, "admin", id), 0);
	clk.now_ms += 50000;
	CHECK_EQ_INT(store_session_create(s, "admin", other), 0);
	clk.now_ms += 20000;
	CHECK_EQ_INT(store_session_prune(s, 60000, &pruned), 0);
	CHECK_EQ_INT(pruned, 1);
	CHECK_EQ_INT(store_session_lookup(s, other, 60000, 0, user, sizeof(user)), 0);
	/* A password change ends the user's sessions. */
	CHECK_EQ_INT(store_set_password(s, "admin", "new password", "ui"), 0);
	CHECK_EQ_INT(store_session_lookup(s, other, 60000, 0, user, sizeof(user)), -WG_ENOTFOUND);
	store_close(s);
	th_rmdir(dir);
}
