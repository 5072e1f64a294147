/* SPDX-License-Identifier: MIT */
/*
 * test_crash.c: a child process commits revision after revision and tells
 * the parent each number once store_commit() returned; the parent kills it
 * with SIGKILL at a random moment, reopens the store and expects: no
 * recovery needed, PRAGMA integrity_check ok, and the serving revision at
 * least the last one the child reported committed (a commit that returned
 * survives the crash). Repeated over several rounds on the same store.
 */
#include "helpers.h"

#include <signal.h>
#include <sys/wait.h>
#include <time.h>

#include "check.h"
#include "core/hash.h"
#include "core/log.h"

#define ROUNDS 12

static void child_commits(const char *dir, int fd, int round)
{
	struct gw_objset *set = gw_objset_new();
	struct store *s;
	char v[32], name[32];
	uint64_t rev = 0;

	log_set_level(LOG_ERROR);
	s = th_open(dir);
	if (!s)
		_exit(3);
	for (int i = 0; i < 40; i++) {
		snprintf(name, sizeof(name), "r%d", i % 7);
		th_put(set, "HTTPRoute", "default", name, "x");
	}
	for (int i = 0;; i++) {
		snprintf(v, sizeof(v), "%d-%d", round, i);
		snprintf(name, sizeof(name), "r%d", i % 7);
		th_put(set, "HTTPRoute", "default", name, v);
		if (store_commit(s, set, "{\"sockets\":[]}", "cluster", NULL, NULL, &rev) != 0)
			_exit(4);
		if (write(fd, &rev, sizeof(rev)) != (ssize_t)sizeof(rev))
			_exit(5);
	}
}

static int64_t integrity_ok(struct store *s)
{
	sqlite3_stmt *st = NULL;
	int64_t ok = 0;

	if (sqlite3_prepare_v2(s->db, "PRAGMA integrity_check", -1, &st, NULL) != SQLITE_OK)
		return 0;
	if (sqlite3_step(st) == SQLITE_ROW)
		ok = strcmp((const char *)sqlite3_column_text(st, 0), "ok") == 0;
	sqlite3_finalize(st);
	return ok;
}

TEST(store_crash_kill9_during_commits)
{
	char *dir;
	char buf[64];
	uint64_t last = 0, total = 0;

	dir = th_tmpdir(buf);
	for (int round = 0; round < ROUNDS; round++) {
		int p[2];
		pid_t pid;
		uint64_t rev, got = 0;
		struct timespec ts = {0, (long)(5 + rand_below(60)) * 1000000L};
		struct store *s;

		if (pipe(p) != 0)
			break;
		fflush(stdout);
		fflush(stderr);
		pid = fork();
		if (pid == 0) {
			close(p[0]);
			child_commits(dir, p[1], round);
		}
		close(p[1]);
		nanosleep(&ts, NULL);
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		while (read(p[0], &rev, sizeof(rev)) == (ssize_t)sizeof(rev)) {
			CHECK(rev > last);
			last = rev;
			total++;
		}
		close(p[0]);

		s = th_open(dir);
		CHECK(s != NULL);
		if (!s)
			break;
		CHECK(store_recovery_note(s) == NULL);
		CHECK_EQ_INT(integrity_ok(s), 1);
		CHECK_EQ_INT(store_serving(s, &got), 0);
		CHECK(got >= last);
		if (got) { /* else killed before its first commit */
			struct gw_objset *set = gw_objset_new();

			CHECK_EQ_INT(store_load(s, 0, set, NULL), 0);
			CHECK_EQ_INT(gw_objset_count(set, GW_K_HTTPROUTE), 7);
			gw_objset_free(set);
		}
		last = got;
		store_close(s);
	}
	printf("  crash test: %d kills, %llu commits reported, all recovered intact\n", ROUNDS,
	       (unsigned long long)total);
	th_rmdir(dir);
}
