/* SPDX-License-Identifier: MIT */
/*
 * test_server.c: the UI end to end without a browser: ui_start() on
 * 127.0.0.1 with a fresh state dir, requests over TLS (tls/ client, blocking
 * socket with 3 s timeouts), the gate's answers (401, 421, 403, 415, 429),
 * login, CSRF, logout, /metrics with its token, and ui_stop(). The browser
 * tests (tests/ui/run) cover the pages; this keeps the gate in `make check`.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "check.h"
#include "core/diag.h"
#include "core/err.h"
#include "core/log.h"
#include "proxy/snapshot.h"
#include "store/store.h"
#include "tls/tls.h"
#include "ui/ui.h"

#define PW "unit-test-password-1"

struct resp {
	int status;
	char head[4096];
	char body[65536];
	size_t body_len;
};

static struct tls_client *client(void)
{
	static struct tls_client *c;
	struct tls_client_opts o = {.insecure_skip_verify = true};
	struct diag d = {0};

	if (!c)
		c = tls_client_new(&o, &d);
	diag_fini(&d);
	return c;
}

/* One request on its own connection ("Connection: close"). Returns the
 * status, or -1 when the exchange failed. */
static int https(uint16_t port, const char *method, const char *path, const char *headers,
		 const char *body, struct resp *r)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
	struct timeval tv = {.tv_sec = 3};
	char req[8192], buf[4096], all[70000];
	size_t n_all = 0;
	struct tls_conn *t;
	int fd, rc, tries = 0;
	ssize_t n;
	char *sep;

	memset(r, 0, sizeof(*r));
	r->status = -1;
	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd == -1)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == -1) {
		close(fd);
		return -1;
	}
	t = tls_conn_client(client(), fd, "localhost");
	while (t && (rc = tls_handshake(t)) != 0 && tries++ < 50)
		if (rc != -WG_EAGAIN_READ && rc != -WG_EAGAIN_WRITE)
			break;
	if (!t || rc != 0)
		goto out;
	snprintf(req, sizeof(req),
		 "%s %s HTTP/1.1\r\n%sConnection: close\r\nContent-Length: %zu\r\n\r\n%s", method,
		 path, headers ? headers : "", body ? strlen(body) : 0, body ? body : "");
	if (tls_write(t, req, strlen(req)) != (ssize_t)strlen(req))
		goto out;
	for (tries = 0; tries < 200;) {
		n = tls_read(t, buf, sizeof(buf));
		if (n > 0) {
			if (n_all + (size_t)n < sizeof(all)) {
				memcpy(all + n_all, buf, (size_t)n);
				n_all += (size_t)n;
			}
		} else if (n == -WG_EAGAIN_READ || n == -WG_EAGAIN_WRITE) {
			tries++;
		} else {
			break;
		}
	}
	all[n_all] = '\0';
	sep = strstr(all, "\r\n\r\n");
	if (sep && sscanf(all, "HTTP/1.1 %d", &r->status) == 1) {
		size_t hl = (size_t)(sep - all);

		memcpy(r->head, all, hl < sizeof(r->head) - 1 ? hl : sizeof(r->head) - 1);
		r->body_len = n_all - hl - 4;
		memcpy(r->body, sep + 4, r->body_len < sizeof(r->body) - 1 ? r->body_len : 0);
	}
out:
	if (t)
		tls_conn_free(t);
	close(fd);
	return r->status;
}

static int rm_cb(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	(void)st;
	(void)flag;
	(void)f;
	return remove(p);
}

static struct snapshot *no_snapshot(void *arg)
{
	(void)arg;
	return NULL;
}

static int pins;
static int pin(void *arg, uint64_t rev, char *msg, size_t msgsz)
{
	(void)arg;
	pins++;
	snprintf(msg, msgsz, "pinned %llu", (unsigned long long)rev);
	return 0;
}

/* Copies the value after "name" up to the next ';' or CR into out. */
static void header_value(const char *head, const char *name, char *out, size_t outsz)
{
	const char *p = strstr(head, name);
	size_t n = 0;

	out[0] = '\0';
	if (!p)
		return;
	p += strlen(name);
	while (p[n] && p[n] != ';' && p[n] != '\r' && n + 1 < outsz)
		n++;
	memcpy(out, p, n);
	out[n] = '\0';
}

TEST(ui_server_gate_end_to_end)
{
	char dir[64] = "/tmp/wg-ui-test-XXXXXX", hdr[1024], cookie[128], csrf[80], tok[80];
	char origin[64], path[128];
	struct diag d = {0};
	struct store *st;
	struct ui *ui;
	struct resp r;
	uint16_t port;
	enum log_level lvl = log_get_level();
	FILE *f;

	log_set_level(LOG_ERROR); /* quiet: start-up lines, and refusals are warnings */
	CHECK(mkdtemp(dir) != NULL);
	st = store_open(dir, &d);
	CHECK(st != NULL);
	if (!st)
		goto out;
	CHECK_EQ_INT(store_set_password(st, "admin", PW, "cli"), 0);
	struct ui_config cfg = {
		.listen = "127.0.0.1:0",
		.state_dir = dir,
		.version = "unit",
		.cb = {.get_snapshot = no_snapshot, .pin_revision = pin},
	};
	ui = ui_start(&cfg, &d);
	CHECK(ui != NULL);
	if (!ui)
		goto out;
	port = ui_port(ui);
	CHECK(port != 0);
	snprintf(origin, sizeof(origin), "https://127.0.0.1:%u", port);

	/* no session */
	snprintf(hdr, sizeof(hdr), "Host: 127.0.0.1:%u\r\n", port);
	CHECK_EQ_INT(https(port, "GET", "/api/overview", hdr, NULL, &r), 401);
	CHECK(strstr(r.body, "login required") != NULL);
	CHECK(strstr(r.head, "Content-Security-Policy: default-src 'none'") != NULL);
	CHECK_EQ_INT(https(port, "GET", "/routes", hdr, NULL, &r), 303);
	CHECK(strstr(r.head, "Location: /login") != NULL);
	CHECK_EQ_INT(https(port, "GET", "/login", hdr, NULL, &r), 200);
	CHECK(strstr(r.body, "login-form") != NULL);

	/* foreign Host */
	CHECK_EQ_INT(https(port, "GET", "/login", "Host: evil.example\r\n", NULL, &r), 421);
	/* no Host at all: libmicrohttpd itself refuses HTTP/1.1 without one */
	CHECK_EQ_INT(https(port, "GET", "/login", "", NULL, &r), 400);

	/* login: Origin required, JSON only, wrong password */
	snprintf(hdr, sizeof(hdr),
		 "Host: 127.0.0.1:%u\r\nOrigin: https://evil.example\r\n"
		 "Content-Type: application/json\r\n",
		 port);
	CHECK_EQ_INT(https(port, "POST", "/api/login", hdr,
			   "{\"user\":\"admin\",\"password\":\"" PW "\"}", &r),
		     403);
	snprintf(hdr, sizeof(hdr),
		 "Host: 127.0.0.1:%u\r\nOrigin: %s\r\nContent-Type: text/plain\r\n", port, origin);
	CHECK_EQ_INT(https(port, "POST", "/api/login", hdr, "{}", &r), 415);
	snprintf(hdr, sizeof(hdr),
		 "Host: 127.0.0.1:%u\r\nOrigin: %s\r\nContent-Type: application/json\r\n", port,
		 origin);
	CHECK_EQ_INT(https(port, "POST", "/api/login", hdr,
			   "{\"user\":\"admin\",\"password\":\"x\"}", &r),
		     401);
	CHECK_EQ_INT(https(port, "POST", "/api/login", hdr, "not json", &r), 400);
	CHECK_EQ_INT(https(port, "POST", "/api/login", hdr,
			   "{\"user\":\"admin\",\"password\":\"" PW "\"}", &r),
		     200);
	header_value(r.head, "Set-Cookie: ", cookie, sizeof(cookie));
	CHECK(!strncmp(cookie, "__Host-wg_session=", 18) && strlen(cookie) == 18 + 64);
	CHECK(strstr(r.head, "HttpOnly; Secure; SameSite=Strict") != NULL);
	CHECK(strstr(r.body, PW) == NULL);
	{
		const char *c = strstr(r.body, "\"csrf\":\"");

		CHECK(c != NULL);
		snprintf(csrf, sizeof(csrf), "%.64s", c ? c + 8 : "");
	}

	/* with the session: reads work, changes need the token */
	snprintf(hdr, sizeof(hdr), "Host: 127.0.0.1:%u\r\nCookie: %s\r\n", port, cookie);
	CHECK_EQ_INT(https(port, "GET", "/api/session", hdr, NULL, &r), 200);
	CHECK(strstr(r.body, "\"user\":\"admin\"") != NULL);
	CHECK_EQ_INT(https(port, "GET", "/overview", hdr, NULL, &r), 200);
	CHECK(strstr(r.body, "/app.js") != NULL);
	CHECK_EQ_INT(https(port, "GET", "/api/nothing", hdr, NULL, &r), 404);
	CHECK_EQ_INT(https(port, "PUT", "/api/pin", hdr, NULL, &r), 405);
	snprintf(hdr, sizeof(hdr),
		 "Host: 127.0.0.1:%u\r\nCookie: %s\r\nOrigin: %s\r\n"
		 "Content-Type: application/json\r\n",
		 port, cookie, origin);
	CHECK_EQ_INT(https(port, "POST", "/api/pin", hdr, "{\"revision\":3}", &r), 403);
	CHECK_EQ_INT(pins, 0);
	snprintf(hdr, sizeof(hdr),
		 "Host: 127.0.0.1:%u\r\nCookie: %s\r\nOrigin: %s\r\n"
		 "Content-Type: application/json\r\nX-CSRF-Token: %s\r\n",
		 port, cookie, origin, csrf);
	CHECK_EQ_INT(https(port, "POST", "/api/pin", hdr, "{\"revision\":0}", &r), 400);
	CHECK_EQ_INT(https(port, "POST", "/api/pin", hdr, "{\"revision\":3}", &r), 200);
	CHECK_EQ_INT(pins, 1);
	CHECK(strstr(r.body, "pinned 3") != NULL);
	CHECK_EQ_INT(https(port, "POST", "/api/settings/mode", hdr, "{\"mode\":\"local\"}", &r),
		     501);

	/* /metrics: only with the token from the state dir */
	CHECK_EQ_INT(https(port, "GET", "/metrics", "Host: scraper\r\n", NULL, &r), 401);
	snprintf(path, sizeof(path), "%s/ui-metrics.token", dir);
	tok[0] = '\0';
	if ((f = fopen(path, "r"))) {
		if (!fgets(tok, sizeof(tok), f))
			tok[0] = '\0';
		fclose(f);
	}
	tok[strcspn(tok, "\n")] = '\0';
	CHECK_EQ_INT(strlen(tok), 64);
	{
		struct stat sb;

		CHECK(stat(path, &sb) == 0 && (sb.st_mode & 0777) == 0600);
	}
	snprintf(hdr, sizeof(hdr), "Host: scraper\r\nAuthorization: Bearer %s\r\n", tok);
	CHECK_EQ_INT(https(port, "GET", "/metrics", hdr, NULL, &r), 200);
	CHECK(strstr(r.body, "# TYPE waygate_request_duration_seconds histogram") != NULL);
	CHECK(strstr(r.body, "waygate_ui_login_failures_total 1\n") != NULL);

	/* logout ends the session */
	snprintf(hdr, sizeof(hdr),
		 "Host: 127.0.0.1:%u\r\nCookie: %s\r\nOrigin: %s\r\n"
		 "Content-Type: application/json\r\nX-CSRF-Token: %s\r\n",
		 port, cookie, origin, csrf);
	CHECK_EQ_INT(https(port, "POST", "/api/logout", hdr, "{}", &r), 200);
	CHECK(strstr(r.head, "Max-Age=0") != NULL);
	snprintf(hdr, sizeof(hdr), "Host: 127.0.0.1:%u\r\nCookie: %s\r\n", port, cookie);
	CHECK_EQ_INT(https(port, "GET", "/api/session", hdr, NULL, &r), 401);

	/* the limiter (the login above refilled it): 5 failures, then 429 even
	 * for the right password */
	snprintf(hdr, sizeof(hdr),
		 "Host: 127.0.0.1:%u\r\nOrigin: %s\r\nContent-Type: application/json\r\n", port,
		 origin);
	for (int i = 0; i < 5; i++)
		CHECK_EQ_INT(https(port, "POST", "/api/login", hdr,
				   "{\"user\":\"admin\",\"password\":\"x\"}", &r),
			     401);
	CHECK_EQ_INT(https(port, "POST", "/api/login", hdr,
			   "{\"user\":\"admin\",\"password\":\"" PW "\"}", &r),
		     429);
	CHECK(strstr(r.head, "Retry-After: ") != NULL);

	ui_stop(ui);
out:
	log_set_level(lvl);
	diag_fini(&d);
	if (st)
		store_close(st);
	nftw(dir, rm_cb, 8, FTW_DEPTH | FTW_PHYS);
}

TEST(ui_start_reports_bad_listen)
{
	char dir[64] = "/tmp/wg-ui-test-XXXXXX";
	struct diag d = {0};
	struct store *st;
	struct ui *ui;
	char line[512];
	enum log_level lvl = log_get_level();

	log_set_level(LOG_ERROR);
	CHECK(mkdtemp(dir) != NULL);
	st = store_open(dir, &d);
	CHECK(st != NULL);
	store_set_password(st, "admin", PW, "cli");
	struct ui_config cfg = {.listen = "localhost:9443", .state_dir = dir};
	ui = ui_start(&cfg, &d);
	CHECK(ui == NULL);
	CHECK(d.n >= 1 && strstr(diag_format(&d.v[d.n - 1], line, sizeof(line)), "--ui-listen"));
	ui_stop(ui);
	diag_fini(&d);
	store_close(st);
	log_set_level(lvl);
	nftw(dir, rm_cb, 8, FTW_DEPTH | FTW_PHYS);
}

/* The suite a client offering AES-GCM first gets from the UI on port. */
static void negotiated_suite(uint16_t port, char *out, size_t outsz)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
	struct timeval tv = {.tv_sec = 3};
	struct tls_conn *t = NULL;
	int fd, rc = -1, tries = 0;

	snprintf(out, outsz, "none");
	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd == -1)
		return;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
		t = tls_conn_client(client(), fd, "localhost");
	while (t && (rc = tls_handshake(t)) != 0 && tries++ < 50)
		if (rc != -WG_EAGAIN_READ && rc != -WG_EAGAIN_WRITE)
			break;
	if (t && rc == 0)
		snprintf(out, outsz, "%s", tls_conn_cipher(t));
	if (t)
		tls_conn_free(t);
	close(fd);
}

/* The UI's listener is built with the board's cipher preference, as the
 * data plane's are: a board without AES instructions serves ChaCha20 even
 * to a client that offers AES-GCM first. */
TEST(ui_tls_follows_board_cipher_pref)
{
	static const int prefs[] = {TLS_PREF_CHACHA_FIRST, TLS_PREF_AES_FIRST};
	enum log_level lvl = log_get_level();

	log_set_level(LOG_ERROR);
	for (size_t i = 0; i < 2; i++) {
		char dir[64] = "/tmp/wg-ui-test-XXXXXX", suite[80];
		struct diag d = {0};
		struct store *st;
		struct ui *ui = NULL;

		CHECK(mkdtemp(dir) != NULL);
		st = store_open(dir, &d);
		CHECK(st != NULL);
		if (st && store_set_password(st, "admin", PW, "cli") == 0) {
			struct ui_config cfg = {
				.listen = "127.0.0.1:0",
				.state_dir = dir,
				.cipher_pref = prefs[i],
			};
			ui = ui_start(&cfg, &d);
		}
		CHECK(ui != NULL);
		if (ui) {
			negotiated_suite(ui_port(ui), suite, sizeof(suite));
			if (prefs[i] == TLS_PREF_CHACHA_FIRST)
				CHECK_EQ_STR(suite, "TLS_CHACHA20_POLY1305_SHA256");
			else
				CHECK(strstr(suite, "AES") != NULL);
		}
		ui_stop(ui);
		diag_fini(&d);
		if (st)
			store_close(st);
		nftw(dir, rm_cb, 8, FTW_DEPTH | FTW_PHYS);
	}
	log_set_level(lvl);
}
