// SPDX-License-Identifier: MIT
/*
 * auth.c: the bearer credential a request carries. A static token is used
 * as is; a tokenFile is re-read whenever its inode, size or mtime changes
 * (checked at most once a second: projected service-account tokens rotate);
 * an exec plugin (client.authentication.k8s.io/v1 or v1beta1) is run with
 * posix_spawn, its output read through a non-blocking pipe on the loop, and
 * its token (or client certificate) cached until expirationTimestamp or
 * until a 401 invalidates it. The plugin never gets a terminal (stdin is
 * /dev/null); its stderr goes to ours. Tokens never reach a log line.
 * Runs on the control thread.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <yyjson.h>

#include "core/base64.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/log.h"
#include "core/loop.h"
#include "kube/internal.h"
#include "tls/tls.h"

extern char **environ;

#define EXEC_TIMEOUT_MS 60000
#define EXEC_MAX_OUTPUT (1u << 20)
#define EXEC_EXPIRY_SKEW_MS 5000
#define EXEC_RETRY_MS 1000

static void wipe_free(char *s)
{
	if (s) {
		tls_zeroize(s, strlen(s));
		free(s);
	}
}

void kube_auth_init(struct kube_auth *a, struct loop *loop, const struct kube_config *cfg)
{
	memset(a, 0, sizeof(*a));
	a->loop = loop;
	a->cfg = cfg;
	a->exec_pid = -1;
	a->exec_fd = -1;
}

static void exec_stop(struct kube_auth *a)
{
	if (a->exec_fd != -1) {
		loop_io_del(a->loop, &a->exec_io);
		close(a->exec_fd);
		a->exec_fd = -1;
	}
	timer_cancel(a->loop, &a->exec_timer);
	if (a->exec_pid > 0) {
		kill(a->exec_pid, SIGKILL);
		while (waitpid(a->exec_pid, NULL, 0) == -1 && errno == EINTR)
			;
		a->exec_pid = -1;
	}
	if (a->exec_out.data)
		tls_zeroize(a->exec_out.data, a->exec_out.cap);
	buf_release(&a->exec_out);
}

void kube_auth_fini(struct kube_auth *a)
{
	exec_stop(a);
	wipe_free(a->file_token);
	wipe_free(a->exec_token);
	free(a->exec_cert_pem);
	wipe_free(a->exec_key_pem);
	memset(a, 0, sizeof(*a));
	a->exec_pid = -1;
	a->exec_fd = -1;
}

int64_t kube_time_parse(const char *s)
{
	struct tm tm = {0};
	int y, mo, d, h, mi, sec, n = 0;
	int64_t ms = 0, off = 0;
	const char *p;

	if (!s || sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec, &n) != 6)
		return -1;
	p = s + n;
	if (*p == '.') {
		int digits = 0;

		for (p++; *p >= '0' && *p <= '9'; p++, digits++)
			if (digits < 3)
				ms = ms * 10 + (*p - '0');
		for (; digits < 3; digits++)
			ms *= 10;
	}
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		int oh, om;

		if (sscanf(p + 1, "%2d:%2d", &oh, &om) != 2)
			return -1;
		off = (oh * 60 + om) * 60;
		if (*p == '-')
			off = -off;
		p += 6;
	} else {
		return -1;
	}
	if (*p)
		return -1;
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	return ((int64_t)timegm(&tm) - off) * 1000 + ms;
}

int kube_exec_parse(const char *json, size_t len, const char *want_api, char **token, char **cert,
		    char **key, uint64_t *expiry_ms, const char **why)
{
	yyjson_doc *doc;
	yyjson_val *root, *st, *v;
	const char *api, *kind;
	int rc = -EINVAL;

	*token = *cert = *key = NULL;
	*expiry_ms = 0;
	doc = yyjson_read(json, len, 0);
	if (!doc) {
		*why = "its output is not JSON";
		return -EINVAL;
	}
	root = yyjson_doc_get_root(doc);
	api = yyjson_get_str(yyjson_obj_get(root, "apiVersion"));
	kind = yyjson_get_str(yyjson_obj_get(root, "kind"));
	if (!kind || strcmp(kind, "ExecCredential")) {
		*why = "its output is not an ExecCredential";
		goto out;
	}
	if (!api || strcmp(api, want_api)) {
		*why = "its output's apiVersion differs from the kubeconfig's exec.apiVersion";
		goto out;
	}
	st = yyjson_obj_get(root, "status");
	if (!yyjson_is_obj(st)) {
		*why = "its output has no status";
		goto out;
	}
	v = yyjson_obj_get(st, "token");
	if (yyjson_is_str(v) && yyjson_get_len(v))
		*token = strdup(yyjson_get_str(v));
	v = yyjson_obj_get(st, "clientCertificateData");
	if (yyjson_is_str(v) && yyjson_get_len(v))
		*cert = strdup(yyjson_get_str(v));
	v = yyjson_obj_get(st, "clientKeyData");
	if (yyjson_is_str(v) && yyjson_get_len(v))
		*key = strdup(yyjson_get_str(v));
	if (!!*cert != !!*key) {
		*why = "its output has only one of clientCertificateData and clientKeyData";
		goto fail;
	}
	if (!*token && !*cert) {
		*why = "its output has neither status.token nor a client certificate";
		goto fail;
	}
	v = yyjson_obj_get(st, "expirationTimestamp");
	if (v && !yyjson_is_null(v)) {
		int64_t t = kube_time_parse(yyjson_get_str(v));

		if (t < 0) {
			*why = "its status.expirationTimestamp is not an RFC 3339 time";
			goto fail;
		}
		*expiry_ms = (uint64_t)t;
	}
	rc = 0;
	goto out;
fail:
	wipe_free(*token);
	free(*cert);
	wipe_free(*key);
	*token = *cert = *key = NULL;
out:
	yyjson_doc_free(doc);
	return rc;
}

static void wake_waiters(struct kube_auth *a)
{
	struct kube_auth_waiter *w = a->waiters;

	a->waiters = NULL;
	while (w) {
		struct kube_auth_waiter *next = w->next;

		w->queued = false;
		w->next = NULL;
		w->on_ready(w);
		w = next;
	}
}

static void exec_finish(struct kube_auth *a, int status)
{
	const char *why = NULL;
	char *tok, *cert, *key;
	uint64_t exp;

	a->exec_pid = -1;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		snprintf(a->exec_error, sizeof(a->exec_error), "exec plugin %s %s %d",
			 a->cfg->exec.command,
			 WIFEXITED(status) ? "exited with" : "killed by signal",
			 WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
	} else if (kube_exec_parse(a->exec_out.data ? buf_rptr(&a->exec_out) : "",
				   buf_len(&a->exec_out), a->cfg->exec.api_version, &tok, &cert,
				   &key, &exp, &why)) {
		snprintf(a->exec_error, sizeof(a->exec_error), "exec plugin %s: %s",
			 a->cfg->exec.command, why);
	} else {
		wipe_free(a->exec_token);
		a->exec_token = tok;
		if (cert && (!a->exec_cert_pem || strcmp(cert, a->exec_cert_pem) ||
			     strcmp(key, a->exec_key_pem)))
			a->exec_cert_changed = true;
		free(a->exec_cert_pem);
		wipe_free(a->exec_key_pem);
		a->exec_cert_pem = cert;
		a->exec_key_pem = key;
		a->exec_expiry_ms = exp;
		a->exec_valid = true;
		a->serial++;
		a->exec_error[0] = 0;
		log_info("event=kube_exec_credential command=%s token=%s cert=%s expires_in_s=%lld",
			 log_q(a->cfg->exec.command), tok ? "yes" : "no", cert ? "yes" : "no",
			 exp ? (long long)((int64_t)exp - (int64_t)clock_wall_ms()) / 1000 : -1LL);
	}
	if (!a->exec_valid) {
		log_warn("event=kube_exec_failed reason=%s", log_q(a->exec_error));
		a->exec_last_fail_ms = clock_mono_ms();
	}
	if (a->exec_out.data)
		tls_zeroize(a->exec_out.data, a->exec_out.cap);
	buf_release(&a->exec_out);
	wake_waiters(a);
}

static void exec_reap(struct kube_auth *a)
{
	int status;
	pid_t r = waitpid(a->exec_pid, &status, WNOHANG);

	if (r == a->exec_pid) {
		timer_cancel(a->loop, &a->exec_timer);
		exec_finish(a, status);
	}
}

static void on_exec_timer(struct timer *t)
{
	struct kube_auth *a = t->arg;

	if (a->exec_fd == -1 && a->exec_pid > 0) {
		exec_reap(a);
		if (a->exec_pid <= 0)
			return;
		if (clock_mono_ms() < a->exec_deadline_ms) {
			timer_add(a->loop, &a->exec_timer, 20, on_exec_timer, a);
			return;
		}
	}
	/* deadline passed */
	snprintf(a->exec_error, sizeof(a->exec_error), "exec plugin %s timed out after %d s",
		 a->cfg->exec.command, EXEC_TIMEOUT_MS / 1000);
	exec_stop(a);
	a->exec_valid = false;
	a->exec_last_fail_ms = clock_mono_ms();
	log_warn("event=kube_exec_failed reason=%s", log_q(a->exec_error));
	wake_waiters(a);
}

static void on_exec_io(struct loop_io *io, uint32_t events)
{
	struct kube_auth *a = io->arg;

	(void)events;
	for (;;) {
		ssize_t r;

		if (buf_len(&a->exec_out) >= EXEC_MAX_OUTPUT ||
		    buf_reserve(&a->exec_out, 4096, 0)) {
			snprintf(a->exec_error, sizeof(a->exec_error),
				 "exec plugin %s: output too large", a->cfg->exec.command);
			exec_stop(a);
			a->exec_last_fail_ms = clock_mono_ms();
			wake_waiters(a);
			return;
		}
		r = read(a->exec_fd, buf_wptr(&a->exec_out), buf_room(&a->exec_out) - 1);
		if (r > 0) {
			buf_commit(&a->exec_out, (size_t)r);
			continue;
		}
		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1 && errno == EAGAIN)
			return;
		break; /* EOF or error: the plugin is done writing */
	}
	buf_wptr(&a->exec_out)[0] = 0;
	loop_io_del(a->loop, &a->exec_io);
	close(a->exec_fd);
	a->exec_fd = -1;
	exec_reap(a);
	if (a->exec_pid > 0) /* closed stdout but has not exited yet */
		timer_add(a->loop, &a->exec_timer, 10, on_exec_timer, a);
}

static char *exec_info_json(const struct kube_auth *a)
{
	struct buf b = {0};
	const struct kube_config *cfg = a->cfg;
	char *out = NULL;

	buf_appendf(&b, "{\"apiVersion\":");
	kjson_append_str(&b, cfg->exec.api_version, strlen(cfg->exec.api_version));
	buf_appendf(&b, ",\"kind\":\"ExecCredential\",\"spec\":{\"interactive\":false");
	if (cfg->exec.provide_cluster_info) {
		buf_appendf(&b, ",\"cluster\":{\"server\":");
		kjson_append_str(&b, cfg->server, strlen(cfg->server));
		buf_appendf(&b, ",\"tls-server-name\":");
		kjson_append_str(&b, cfg->server_name, strlen(cfg->server_name));
		buf_appendf(&b, ",\"insecure-skip-tls-verify\":%s",
			    cfg->insecure ? "true" : "false");
		if (cfg->ca_pem) {
			char *enc = base64_encode_dup(cfg->ca_pem, strlen(cfg->ca_pem));

			if (enc) {
				buf_appendf(&b, ",\"certificate-authority-data\":\"%s\"", enc);
				free(enc);
			}
		}
		buf_appendf(&b, "}");
	}
	if (buf_appendf(&b, "}}") == 0 && buf_append(&b, "", 1) == 0)
		out = strdup(buf_rptr(&b));
	buf_release(&b);
	return out;
}

static int exec_start(struct kube_auth *a)
{
	const struct kube_exec *x = &a->cfg->exec;
	posix_spawn_file_actions_t fa;
	char **envp = NULL, **argv = NULL, *info = NULL;
	size_t ne = 0, nx = 0, na = 0, i;
	int pfd[2] = {-1, -1}, rc;
	pid_t pid;

	while (environ && environ[ne])
		ne++;
	while (x->env && x->env[nx])
		nx++;
	while (x->args && x->args[na])
		na++;
	envp = calloc(ne + nx + 2, sizeof(char *));
	argv = calloc(na + 2, sizeof(char *));
	info = exec_info_json(a);
	if (!envp || !argv || !info) {
		rc = -ENOMEM;
		goto out;
	}
	/* KUBERNETES_EXEC_INFO first so that nothing overrides it; then the
	 * kubeconfig's env, then ours (a later duplicate loses with getenv). */
	{
		char *e;

		if (asprintf(&e, "KUBERNETES_EXEC_INFO=%s", info) == -1) {
			rc = -ENOMEM;
			goto out;
		}
		free(info);
		info = e;
	}
	envp[0] = info;
	for (i = 0; i < nx; i++)
		envp[1 + i] = x->env[i];
	for (i = 0; i < ne; i++)
		envp[1 + nx + i] = environ[i];
	argv[0] = x->command;
	for (i = 0; i < na; i++)
		argv[1 + i] = x->args[i];
	if (pipe2(pfd, O_CLOEXEC) == -1) {
		rc = -errno;
		goto out;
	}
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, pfd[1], 1);
	rc = posix_spawnp(&pid, x->command, &fa, NULL, argv, envp);
	posix_spawn_file_actions_destroy(&fa);
	close(pfd[1]);
	pfd[1] = -1;
	if (rc) {
		snprintf(a->exec_error, sizeof(a->exec_error),
			 "exec plugin %.70s cannot run: %.60s", x->command, strerror(rc));
		if (x->install_hint)
			log_warn("event=kube_exec_missing command=%s hint=%s", log_q(x->command),
				 log_q(x->install_hint));
		rc = -rc;
		goto out;
	}
	fcntl(pfd[0], F_SETFL, fcntl(pfd[0], F_GETFL) | O_NONBLOCK);
	rc = loop_io_add(a->loop, &a->exec_io, pfd[0], LOOP_READ, on_exec_io, a);
	if (rc) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		goto out;
	}
	a->exec_fd = pfd[0];
	pfd[0] = -1;
	a->exec_pid = pid;
	a->exec_runs++;
	a->exec_deadline_ms = clock_mono_ms() + EXEC_TIMEOUT_MS;
	timer_add(a->loop, &a->exec_timer, EXEC_TIMEOUT_MS, on_exec_timer, a);
	log_info("event=kube_exec_run command=%s", log_q(x->command));
	rc = 0;
out:
	if (pfd[0] != -1)
		close(pfd[0]);
	if (pfd[1] != -1)
		close(pfd[1]);
	if (info) {
		tls_zeroize(info, strlen(info));
		free(info);
	}
	free(envp);
	free(argv);
	return rc;
}

static int token_file_check(struct kube_auth *a)
{
	uint64_t now = clock_mono_ms();
	struct stat st;
	char *t = NULL;
	size_t n;
	int rc;

	if (a->file_token && now - a->file_checked_ms < 1000)
		return 0;
	a->file_checked_ms = now;
	if (stat(a->cfg->token_file, &st) == -1) {
		rc = -errno;
		goto fail;
	}
	if (a->file_token && (uint64_t)st.st_ino == a->file_ino &&
	    (uint64_t)st.st_size == a->file_size &&
	    (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec == a->file_mtime_ns)
		return 0;
	rc = kfile_read(a->cfg->token_file, 64 << 10, &t, &n);
	if (rc)
		goto fail;
	while (n && (t[n - 1] == '\n' || t[n - 1] == '\r' || t[n - 1] == ' ' || t[n - 1] == '\t'))
		t[--n] = 0;
	if (!n) {
		free(t);
		rc = -ENODATA;
		goto fail;
	}
	if (a->file_token)
		log_info("event=kube_token_file_reloaded file=%s", log_q(a->cfg->token_file));
	wipe_free(a->file_token);
	a->file_token = t;
	a->serial++;
	a->file_ino = (uint64_t)st.st_ino;
	a->file_size = (uint64_t)st.st_size;
	a->file_mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
	return 0;
fail:
	if (a->file_token)
		return 0; /* keep using the last good token */
	snprintf(a->exec_error, sizeof(a->exec_error), "tokenFile %s: %s", a->cfg->token_file,
		 err_str(rc));
	return rc;
}

int kube_auth_get(struct kube_auth *a, struct kube_auth_waiter *w, const char **token)
{
	const struct kube_config *cfg = a->cfg;
	int rc;

	*token = NULL;
	switch (cfg->auth) {
	case KUBE_AUTH_TOKEN: *token = cfg->token; return 0;
	case KUBE_AUTH_TOKEN_FILE:
		rc = token_file_check(a);
		*token = a->file_token;
		return rc;
	case KUBE_AUTH_EXEC:
		if (a->exec_valid && (!a->exec_expiry_ms ||
				      clock_wall_ms() + EXEC_EXPIRY_SKEW_MS < a->exec_expiry_ms)) {
			*token = a->exec_token;
			return 0;
		}
		a->exec_valid = false;
		if (a->exec_pid <= 0 && a->exec_last_fail_ms &&
		    clock_mono_ms() - a->exec_last_fail_ms < EXEC_RETRY_MS)
			return -EACCES;
		if (a->exec_pid <= 0) {
			rc = exec_start(a);
			if (rc) {
				a->exec_last_fail_ms = clock_mono_ms();
				log_warn("event=kube_exec_failed reason=%s", log_q(a->exec_error));
				return rc;
			}
		}
		if (w && !w->queued) {
			w->queued = true;
			w->next = a->waiters;
			a->waiters = w;
		}
		return -EAGAIN;
	default: return 0;
	}
}

void kube_auth_cancel(struct kube_auth *a, struct kube_auth_waiter *w)
{
	struct kube_auth_waiter **pp;

	if (!w->queued)
		return;
	for (pp = &a->waiters; *pp; pp = &(*pp)->next) {
		if (*pp == w) {
			*pp = w->next;
			break;
		}
	}
	w->queued = false;
	w->next = NULL;
}

bool kube_auth_invalidate(struct kube_auth *a, uint64_t serial)
{
	if (serial != a->serial &&
	    (a->cfg->auth == KUBE_AUTH_TOKEN_FILE || a->cfg->auth == KUBE_AUTH_EXEC))
		return true; /* already replaced since that request: just retry */
	switch (a->cfg->auth) {
	case KUBE_AUTH_TOKEN_FILE:
		a->file_checked_ms = 0;
		a->file_mtime_ns = -1; /* force a re-read */
		return true;
	case KUBE_AUTH_EXEC:
		if (a->exec_valid)
			log_info("event=kube_exec_invalidated reason=unauthorized");
		a->exec_valid = false;
		a->exec_last_fail_ms = 0;
		return true;
	default: return false;
	}
}
