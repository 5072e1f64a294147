/* SPDX-License-Identifier: MIT */
/*
 * passwd.c: `waygate passwd [--state-dir DIR]`: sets the UI admin password
 * in the store (creating the store when the box has never run). On a
 * terminal it asks twice without echo; otherwise it reads one line from
 * stdin (for scripts: `echo "$PW" | waygate passwd`). The password is wiped
 * from memory after use and never printed or logged; the change is
 * recorded in the audit log with source "cli", and every UI session of the
 * user ends. Main thread, instead of anything else.
 */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/internal.h"
#include "core/diag.h"
#include "core/err.h"
#include "core/log.h"
#include "store/store.h"
#include "tls/tls.h"

#define UI_USER "admin"
#define PW_MIN 8
#define PW_MAX 1024

static struct termios saved_tio;
static volatile sig_atomic_t echo_off;

/* Ctrl-C while echo is off must not leave the terminal silent. */
static void on_signal(int sig)
{
	if (echo_off)
		tcsetattr(STDIN_FILENO, TCSANOW, &saved_tio);
	signal(sig, SIG_DFL);
	raise(sig);
}

/* Reads one line (without its end of line) into buf. 0, -ENODATA at end of
 * input, -E2BIG when longer than size - 1. */
static int read_line(int fd, char *buf, size_t size)
{
	size_t n = 0;
	bool too_long = false;

	for (;;) {
		char c;
		ssize_t r = read(fd, &c, 1);

		if (r == -1 && errno == EINTR)
			continue;
		if (r <= 0) {
			if (n == 0 && !too_long)
				return -ENODATA;
			break;
		}
		if (c == '\n')
			break;
		if (n + 1 < size)
			buf[n++] = c;
		else
			too_long = true;
	}
	if (n && buf[n - 1] == '\r')
		n--;
	buf[n] = '\0';
	return too_long ? -E2BIG : 0;
}

static int prompt_no_echo(const char *prompt, char *buf, size_t size)
{
	struct termios tio;
	int err;

	fputs(prompt, stderr);
	fflush(stderr);
	if (tcgetattr(STDIN_FILENO, &saved_tio) == 0) {
		tio = saved_tio;
		tio.c_lflag &= ~(tcflag_t)ECHO;
		tio.c_lflag |= ECHONL;
		echo_off = 1;
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &tio);
	}
	err = read_line(STDIN_FILENO, buf, size);
	if (echo_off) {
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_tio);
		echo_off = 0;
	}
	return err;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: waygate passwd [--state-dir DIR]\n"
		"  sets the UI password of user " UI_USER "; asks twice on a terminal, else\n"
		"  reads one line from stdin (at least %d characters)\n",
		PW_MIN);
}

int cmd_passwd(int argc, char **argv)
{
	static const struct flag_spec specs[] = {
		{"state-dir", true},
		{"help", false},
		{NULL, false},
	};
	const char *state_dir = STORE_DEFAULT_DIR, *name, *value;
	char pw[PW_MAX + 1], again[PW_MAX + 1], path[4200];
	struct diag d = {0};
	struct store *s = NULL;
	int i = 1, r, rc = 2, err;

	while ((r = flag_next(argc, argv, &i, specs, &name, &value)) > 0) {
		if (!name) {
			fprintf(stderr, "waygate passwd: unexpected argument '%s'\n", value);
			usage(stderr);
			return 2;
		}
		if (!strcmp(name, "help")) {
			usage(stdout);
			return 0;
		}
		if (!strcmp(name, "state-dir"))
			state_dir = value;
	}
	if (r < 0) {
		fprintf(stderr, "waygate passwd: --%s: %s\n", name ? name : "?",
			r == -ENOENT ? "unknown flag" : "needs a value");
		usage(stderr);
		return 2;
	}
	pw[0] = again[0] = '\0';
	if (isatty(STDIN_FILENO)) {
		signal(SIGINT, on_signal);
		signal(SIGTERM, on_signal);
		err = prompt_no_echo("New UI password for " UI_USER ": ", pw, sizeof(pw));
		if (!err)
			err = prompt_no_echo("Repeat it: ", again, sizeof(again));
		signal(SIGINT, SIG_DFL);
		signal(SIGTERM, SIG_DFL);
		if (!err && strcmp(pw, again) != 0) {
			fprintf(stderr,
				"waygate passwd: the two passwords differ; nothing changed\n");
			goto out;
		}
	} else {
		err = read_line(STDIN_FILENO, pw, sizeof(pw));
	}
	if (err == -E2BIG) {
		fprintf(stderr, "waygate passwd: the password is longer than %d characters\n",
			PW_MAX);
		goto out;
	}
	if (err) {
		fprintf(stderr, "waygate passwd: no password given; nothing changed\n");
		goto out;
	}
	if (strlen(pw) < PW_MIN) {
		fprintf(stderr, "waygate passwd: the password needs at least %d characters\n",
			PW_MIN);
		goto out;
	}
	log_set_level(LOG_WARN);
	/* An existing store may be in use by `waygate run`: open a second
	 * connection (no check, no recovery: that is run's job). A box that
	 * never ran gets its store created. */
	snprintf(path, sizeof(path), "%s/%s", state_dir, STORE_DB_NAME);
	if (access(path, F_OK) == 0)
		s = store_open_reader(state_dir, &d);
	else
		s = store_open(state_dir, &d);
	if (!s) {
		diag_print(&d, "waygate passwd");
		rc = 1;
		goto out;
	}
	err = store_set_password(s, UI_USER, pw, "cli");
	if (err) {
		fprintf(stderr, "waygate passwd: %s: cannot store the password: %s\n",
			store_path(s), err_str(err));
		rc = 1;
		goto out;
	}
	printf("waygate passwd: password of %s set in %s\n", UI_USER, store_path(s));
	rc = 0;
out:
	tls_zeroize(pw, sizeof(pw));
	tls_zeroize(again, sizeof(again));
	fflush(stdout);
	store_close(s);
	diag_fini(&d);
	return rc;
}
