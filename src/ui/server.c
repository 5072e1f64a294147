/* SPDX-License-Identifier: MIT */
/*
 * server.c: the libmicrohttpd side of the UI. The daemon has no listening
 * socket: front.c hands it each connection after TLS. Every request goes
 * through one gate, in this order:
 *   1. /metrics answers only a valid bearer token (no cookies, no Host
 *      check: a scraper names the box however it likes);
 *   2. the Host header must name this box (DNS rebinding);
 *   3. a change (POST) must come from our own origin (Origin, and
 *      Sec-Fetch-Site when sent) and carry a JSON body;
 *   4. the login page, its script and style, and POST /api/login are the
 *      only things served without a session; anything else without one
 *      gets 401 JSON (/api/) or a redirect to /login (pages);
 *   5. a change also needs the session's CSRF token in X-CSRF-Token.
 * Then pages and assets are served from the embedded web/ files and /api/
 * goes to api.c. All of this runs on libmicrohttpd's one internal thread.
 * Nothing here ever puts a password, token or session id in a body or a
 * log line; the session id appears only in Set-Cookie.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <microhttpd.h>
#include <yyjson.h>

#include "core/err.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/str.h"
#include "proxy/snapshot.h"
#include "store/store.h"
#include "tls/tls.h"
#include "ui/internal.h"
#include "web_assets.h"

#define BODY_MAX (1024 * 1024)
#define SESSION_MAX_AGE_MS (12ull * 3600 * 1000)

static const char csp[] = "default-src 'none'; script-src 'self'; style-src 'self'; "
			  "img-src 'self'; connect-src 'self'; form-action 'self'; "
			  "frame-ancestors 'none'; base-uri 'none'";

/* Pages of the app: each is app.html; the script picks the view from the
 * path. */
static const char *const pages[] = {"/overview", "/gateways",  "/routes",   "/backends",
				    "/traffic",  "/revisions", "/settings", "/events"};

/* Refusals are logged at most once a second each (a client can send many);
 * the count of those not logged goes with the next line. MHD thread only. */
struct log_gate {
	uint64_t last_ms;
	uint64_t dropped;
};
static struct log_gate gate_host, gate_origin, gate_csrf, gate_limited;

static bool gate_open(struct log_gate *g, uint64_t *dropped)
{
	uint64_t now = clock_mono_ms();

	if (g->last_ms && now - g->last_ms < 1000) {
		g->dropped++;
		return false;
	}
	g->last_ms = now;
	*dropped = g->dropped;
	g->dropped = 0;
	return true;
}

static const struct web_asset *asset_find(const char *path)
{
	for (size_t i = 0; i < web_assets_count; i++)
		if (web_assets[i].path && !strcmp(web_assets[i].path, path))
			return &web_assets[i];
	return NULL;
}

static bool is_public_asset(const char *path)
{
	return !strcmp(path, "/login.js") || !strcmp(path, "/style.css") ||
	       !strcmp(path, "/icon.svg");
}

void ui_reply_error(struct ui_req *rq, int status, const char *msg)
{
	struct jw w;

	rq->status = status;
	rq->content_type = "application/json";
	rq->static_body = NULL;
	rq->out.head = rq->out.tail = 0;
	jw_init(&w, &rq->out);
	jw_obj(&w);
	jw_kstr(&w, "error", msg);
	jw_obj_end(&w);
}

const char *ui_req_arg(struct ui_req *rq, const char *key)
{
	return MHD_lookup_connection_value(rq->conn, MHD_GET_ARGUMENT_KIND, key);
}

struct yyjson_doc *ui_req_json(struct ui_req *rq)
{
	yyjson_doc *doc;

	if (!rq->body || !rq->body_len) {
		ui_reply_error(rq, 400, "a JSON object body is required");
		return NULL;
	}
	doc = yyjson_read(rq->body, rq->body_len, 0);
	if (!doc || !yyjson_is_obj(yyjson_doc_get_root(doc))) {
		yyjson_doc_free(doc);
		ui_reply_error(rq, 400, "the body is not a JSON object");
		return NULL;
	}
	return doc;
}

void ui_csrf_token(const struct ui *ui, const char *session, char out[65])
{
	uint8_t in[32 + 72], h[32];
	size_t n = strlen(session);

	if (n > 72)
		n = 72;
	memcpy(in, ui->csrf_key, 32);
	memcpy(in + 32, session, n);
	tls_sha256(in, 32 + n, h);
	ui_hex(h, 32, out);
	tls_zeroize(in, sizeof(in));
}

static void set_session_cookie(struct ui_req *rq, const char *id, bool clear)
{
	if (clear)
		snprintf(rq->set_cookie, sizeof(rq->set_cookie),
			 UI_COOKIE_NAME "=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Strict");
	else
		snprintf(rq->set_cookie, sizeof(rq->set_cookie),
			 UI_COOKIE_NAME "=%s; Path=/; HttpOnly; Secure; SameSite=Strict", id);
}

int ui_session_begin(struct ui *ui, struct ui_req *rq, const char *user)
{
	char id[STORE_SESSION_ID_HEX + 1];
	int err;

	pthread_mutex_lock(&ui->store_mu);
	err = store_session_create(ui->store, user, id);
	pthread_mutex_unlock(&ui->store_mu);
	if (err < 0) {
		ui_reply_error(rq, 500, "cannot create a session");
		return err;
	}
	str_lcpy(rq->session, id, sizeof(rq->session));
	str_lcpy(rq->user, user, sizeof(rq->user));
	set_session_cookie(rq, id, false);
	tls_zeroize(id, sizeof(id));
	return 0;
}

/* -------- login, logout, session -------- */

static void handle_login(struct ui *ui, struct ui_req *rq)
{
	uint64_t now = clock_mono_ms();
	uint32_t retry = 0;
	yyjson_doc *doc;
	const char *user, *pass;
	char old[STORE_SESSION_ID_HEX + 8], csrf[65];
	int ok;
	struct jw w;

	if (!ui_rl_allow(&ui->rl, rq->client, now, &retry)) {
		char msg[96];

		snprintf(msg, sizeof(msg), "too many login attempts; try again in %u s", retry);
		ui_reply_error(rq, 429, msg);
		rq->retry_after_s = retry;
		uint64_t n;

		if (gate_open(&gate_limited, &n))
			log_warn("event=ui_login_limited client=%s retry_s=%u not_logged=%llu",
				 log_q(rq->client), retry, (unsigned long long)n);
		return;
	}
	if (!(doc = ui_req_json(rq)))
		return;
	user = yyjson_get_str(yyjson_obj_get(yyjson_doc_get_root(doc), "user"));
	pass = yyjson_get_str(yyjson_obj_get(yyjson_doc_get_root(doc), "password"));
	if (!user || !pass || !*pass) {
		yyjson_doc_free(doc);
		ui_reply_error(rq, 400, "user and password are required");
		return;
	}
	pthread_mutex_lock(&ui->store_mu);
	ok = !strcmp(user, "admin") && store_check_password(ui->store, user, pass) == 0;
	pthread_mutex_unlock(&ui->store_mu);
	yyjson_doc_free(doc);
	tls_zeroize(rq->body, rq->body_len);
	if (!ok) {
		ui_rl_fail(&ui->rl, rq->client, now);
		__atomic_fetch_add(&ui->n_login_failures, 1, __ATOMIC_RELAXED);
		log_warn("event=ui_login_failed client=%s", log_q(rq->client));
		ui_reply_error(rq, 401, "wrong user or password");
		return;
	}
	ui_rl_success(&ui->rl, rq->client, now);
	/* a new id at every login: an id planted before login is worthless */
	if (ui_cookie_get(MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND, "Cookie"),
			  UI_COOKIE_NAME, old, sizeof(old))) {
		pthread_mutex_lock(&ui->store_mu);
		store_session_delete(ui->store, old);
		pthread_mutex_unlock(&ui->store_mu);
	}
	if (ui_session_begin(ui, rq, "admin") < 0)
		return;
	pthread_mutex_lock(&ui->store_mu);
	store_audit(ui->store, "ui", "admin", "logged in to the UI");
	pthread_mutex_unlock(&ui->store_mu);
	log_info("event=ui_login user=admin client=%s", log_q(rq->client));
	ui_csrf_token(ui, rq->session, csrf);
	jw_init(&w, &rq->out);
	jw_obj(&w);
	jw_kstr(&w, "user", "admin");
	jw_kstr(&w, "csrf", csrf);
	jw_ku64(&w, "idle_timeout_s", ui->idle_ms / 1000);
	jw_obj_end(&w);
}

static void handle_logout(struct ui *ui, struct ui_req *rq)
{
	struct jw w;

	pthread_mutex_lock(&ui->store_mu);
	store_session_delete(ui->store, rq->session);
	pthread_mutex_unlock(&ui->store_mu);
	set_session_cookie(rq, NULL, true);
	log_info("event=ui_logout user=%s client=%s", log_q(rq->user), log_q(rq->client));
	jw_init(&w, &rq->out);
	jw_obj(&w);
	jw_kbool(&w, "ok", true);
	jw_obj_end(&w);
}

static void handle_session(struct ui *ui, struct ui_req *rq)
{
	char csrf[65];
	struct jw w;

	ui_csrf_token(ui, rq->session, csrf);
	jw_init(&w, &rq->out);
	jw_obj(&w);
	jw_kstr(&w, "user", rq->user);
	jw_kstr(&w, "csrf", csrf);
	jw_ku64(&w, "idle_timeout_s", ui->idle_ms / 1000);
	jw_kstr(&w, "version", ui->version);
	jw_obj_end(&w);
}

/* -------- /metrics -------- */

static void handle_metrics(struct ui *ui, struct ui_req *rq)
{
	const char *auth = MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND, "Authorization");
	struct ui_stats st = {0};
	struct ui_route_stats *rs = NULL;
	struct ui_cluster cl = {0};
	struct store_stats ss = {0};
	struct ui_metrics_in in = {0};

	if (!auth || strncmp(auth, "Bearer ", 7) != 0 ||
	    !ui_token_equal(auth + 7, ui->metrics_token)) {
		rq->status = 401;
		rq->content_type = "text/plain; charset=utf-8";
		buf_append_str(&rq->out, "a bearer token is required (see ui-metrics.token in the "
					 "state dir)\n");
		return;
	}
	if (ui->cb.get_stats) {
		ui->cb.get_stats(ui->cb_arg, &st);
		in.stats = &st;
	}
	rs = ui_route_stats_all(ui, &in.n_routes);
	in.routes = rs;
	if (ui->cb.get_cluster) {
		ui->cb.get_cluster(ui->cb_arg, &cl);
		in.cluster = &cl;
	}
	pthread_mutex_lock(&ui->store_mu);
	store_quick_stats(ui->store, &ss);
	pthread_mutex_unlock(&ui->store_mu);
	in.store_revision = ss.newest_rev;
	in.serving_revision = cl.serving_revision ? cl.serving_revision : ss.serving_rev;
	in.pinned_revision = ss.pinned_rev;
	in.uptime_s = (clock_wall_ms() - ui->started_ms) / 1000;
	in.ui_requests = __atomic_load_n(&ui->n_requests, __ATOMIC_RELAXED);
	in.ui_login_failures = __atomic_load_n(&ui->n_login_failures, __ATOMIC_RELAXED);
	struct snapshot *snap = ui->cb.get_snapshot ? ui->cb.get_snapshot(ui->cb_arg) : NULL;
	in.snap = snap;
	if (ui_metrics_format(&rq->out, &in) < 0)
		ui_reply_error(rq, 500, "out of memory");
	else
		rq->content_type = "text/plain; version=0.0.4; charset=utf-8";
	snap_unref(snap);
	free(rs);
}

/* -------- the gate -------- */

static void client_addr(struct MHD_Connection *conn, char *out, size_t outsz)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	const struct sockaddr *sa = ci ? ci->client_addr : NULL;

	str_lcpy(out, "unknown", outsz);
	if (!sa)
		return;
	if (sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, out,
			  (socklen_t)outsz);
	else if (sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr,
			  out, (socklen_t)outsz);
}

static bool is_page(const char *path)
{
	for (size_t i = 0; i < sizeof(pages) / sizeof(pages[0]); i++)
		if (!strcmp(path, pages[i]))
			return true;
	return false;
}

static bool serve_asset(struct ui_req *rq, const char *path)
{
	const struct web_asset *a = asset_find(path);

	if (!a)
		return false;
	rq->status = 200;
	rq->content_type = a->mime;
	rq->static_body = a->data;
	rq->static_len = a->len;
	return true;
}

static void redirect(struct ui_req *rq, const char *to)
{
	rq->status = 303;
	rq->content_type = "text/plain; charset=utf-8";
	buf_append_str(&rq->out, to); /* the body names the target; Location below */
}

static void dispatch(struct ui *ui, struct ui_req *rq)
{
	struct MHD_Connection *c = rq->conn;
	const char *host = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Host");
	const char *path = rq->url;
	bool is_api = !strncmp(path, "/api/", 5);
	bool is_get = !strcmp(rq->method, "GET") || !strcmp(rq->method, "HEAD");
	bool is_post = !strcmp(rq->method, "POST");
	char sid[STORE_SESSION_ID_HEX + 8], csrf[65];
	int err;

	rq->status = 200;
	rq->content_type = "application/json";

	if (!strcmp(path, "/metrics")) {
		if (!is_get)
			ui_reply_error(rq, 405, "method not allowed");
		else
			handle_metrics(ui, rq);
		return;
	}
	if (!ui_host_is_allowed(&ui->hosts, host)) {
		uint64_t n;

		if (gate_open(&gate_host, &n))
			log_warn("event=ui_host_refused host=%s client=%s not_logged=%llu",
				 log_q(host ? host : "-"), log_q(rq->client),
				 (unsigned long long)n);
		ui_reply_error(rq, 421,
			       "this Host is not one of the box's names (DNS rebinding "
			       "protection)");
		return;
	}
	if (!is_get && !is_post) {
		ui_reply_error(rq, 405, "method not allowed");
		return;
	}
	if (is_post) {
		const char *origin = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Origin");
		const char *site =
			MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Sec-Fetch-Site");
		const char *ctype = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type");

		if (!ui_origin_is_same(origin, host) ||
		    (site && strcmp(site, "same-origin") != 0)) {
			uint64_t n;

			if (gate_open(&gate_origin, &n))
				log_warn("event=ui_origin_refused origin=%s client=%s "
					 "not_logged=%llu",
					 log_q(origin ? origin : "-"), log_q(rq->client),
					 (unsigned long long)n);
			ui_reply_error(rq, 403, "cross-origin request refused");
			return;
		}
		if (!ctype || strncasecmp(ctype, "application/json", 16) != 0) {
			ui_reply_error(rq, 415,
				       "changes take a JSON body (Content-Type: application/json)");
			return;
		}
		if (rq->body_too_big) {
			ui_reply_error(rq, 413, "the body is larger than 1 MiB");
			return;
		}
	}

	/* without a session */
	if (is_get && (!strcmp(path, "/login") || !strcmp(path, "/login.html"))) {
		serve_asset(rq, "/login.html");
		return;
	}
	if (is_get && is_public_asset(path)) {
		if (!serve_asset(rq, path))
			ui_reply_error(rq, 404, "not found");
		return;
	}
	if (is_post && !strcmp(path, "/api/login")) {
		handle_login(ui, rq);
		return;
	}

	/* the session */
	if (ui_cookie_get(MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Cookie"), UI_COOKIE_NAME,
			  sid, sizeof(sid))) {
		pthread_mutex_lock(&ui->store_mu);
		err = store_session_lookup(ui->store, sid, ui->idle_ms, SESSION_MAX_AGE_MS,
					   rq->user, sizeof(rq->user));
		pthread_mutex_unlock(&ui->store_mu);
		if (err == 0)
			str_lcpy(rq->session, sid, sizeof(rq->session));
		else
			rq->user[0] = '\0';
		tls_zeroize(sid, sizeof(sid));
	}
	if (!rq->session[0]) {
		if (is_api) {
			ui_reply_error(rq, 401, "login required");
		} else {
			redirect(rq, "/login");
		}
		return;
	}
	if (is_post) {
		const char *tok = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-CSRF-Token");

		ui_csrf_token(ui, rq->session, csrf);
		if (!ui_token_equal(tok, csrf)) {
			uint64_t n;

			if (gate_open(&gate_csrf, &n))
				log_warn("event=ui_csrf_refused path=%s client=%s not_logged=%llu",
					 log_q(path), log_q(rq->client), (unsigned long long)n);
			ui_reply_error(rq, 403, "missing or wrong CSRF token");
			return;
		}
	}

	if (is_get && (!strcmp(path, "/") || !strcmp(path, "/index.html"))) {
		redirect(rq, "/overview");
		return;
	}
	if (is_get && is_page(path)) {
		serve_asset(rq, "/app.html");
		return;
	}
	if (!is_api) {
		/* the app's own assets; the HTML files only through their pages */
		if (!is_get || !strcmp(path, "/app.html") || !strcmp(path, "/login.html") ||
		    !serve_asset(rq, path))
			ui_reply_error(rq, 404, "not found");
		return;
	}
	if (!strcmp(path, "/api/session") && is_get) {
		handle_session(ui, rq);
		return;
	}
	if (!strcmp(path, "/api/logout") && is_post) {
		handle_logout(ui, rq);
		return;
	}
	if (!ui_api_dispatch(ui, rq))
		ui_reply_error(rq, 404, "no such API");
}

static void add_security_headers(struct MHD_Response *r)
{
	MHD_add_response_header(r, "Content-Security-Policy", csp);
	MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(r, "X-Frame-Options", "DENY");
	MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
	MHD_add_response_header(r, "Cross-Origin-Opener-Policy", "same-origin");
	MHD_add_response_header(r, "Cross-Origin-Resource-Policy", "same-origin");
	MHD_add_response_header(r, "Cache-Control", "no-store");
}

static enum MHD_Result respond(struct ui_req *rq)
{
	struct MHD_Response *r;
	enum MHD_Result ret;
	char ra[16];

	if (rq->static_body)
		r = MHD_create_response_from_buffer_static(rq->static_len, rq->static_body);
	else
		r = MHD_create_response_from_buffer_copy(buf_len(&rq->out), buf_rptr(&rq->out));
	if (!r)
		return MHD_NO;
	add_security_headers(r);
	MHD_add_response_header(r, "Content-Type", rq->content_type);
	if (rq->set_cookie[0])
		MHD_add_response_header(r, "Set-Cookie", rq->set_cookie);
	if (rq->status == 303) {
		char to[64];

		snprintf(to, sizeof(to), "%.*s", (int)buf_len(&rq->out), buf_rptr(&rq->out));
		MHD_add_response_header(r, "Location", to);
	}
	if (rq->status == 401 && !strcmp(rq->url, "/metrics"))
		MHD_add_response_header(r, "WWW-Authenticate", "Bearer realm=\"waygate\"");
	if (rq->retry_after_s) {
		snprintf(ra, sizeof(ra), "%u", rq->retry_after_s);
		MHD_add_response_header(r, "Retry-After", ra);
	}
	ret = MHD_queue_response(rq->conn, (unsigned)rq->status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
				  const char *method, const char *version, const char *upload_data,
				  size_t *upload_data_size, void **req_cls)
{
	struct ui *ui = cls;
	struct ui_req *rq = *req_cls;
	(void)version;

	if (!rq) {
		rq = calloc(1, sizeof(*rq));
		if (!rq)
			return MHD_NO;
		rq->conn = conn;
		rq->method = method;
		rq->url = url;
		client_addr(conn, rq->client, sizeof(rq->client));
		*req_cls = rq;
		__atomic_fetch_add(&ui->n_requests, 1, __ATOMIC_RELAXED);
		return MHD_YES;
	}
	if (*upload_data_size) {
		if (!rq->body_too_big && rq->body_len + *upload_data_size <= BODY_MAX) {
			char *nb = realloc(rq->body, rq->body_len + *upload_data_size + 1);

			if (!nb)
				return MHD_NO;
			memcpy(nb + rq->body_len, upload_data, *upload_data_size);
			rq->body = nb;
			rq->body_len += *upload_data_size;
			rq->body[rq->body_len] = '\0';
		} else {
			rq->body_too_big = true;
		}
		*upload_data_size = 0;
		return MHD_YES;
	}
	dispatch(ui, rq);
	return respond(rq);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct ui_req *rq = *req_cls;
	(void)cls;
	(void)conn;
	(void)toe;

	if (!rq)
		return;
	if (rq->body) {
		tls_zeroize(rq->body, rq->body_len);
		free(rq->body);
	}
	buf_release(&rq->out);
	tls_zeroize(rq->session, sizeof(rq->session));
	free(rq);
	*req_cls = NULL;
}

int ui_server_start(struct ui *ui, struct diag *d)
{
	ui->mhd = MHD_start_daemon(MHD_USE_NO_LISTEN_SOCKET | MHD_USE_ITC |
					   MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL,
				   0, NULL, NULL, on_request, ui, MHD_OPTION_NOTIFY_COMPLETED,
				   on_completed, ui, MHD_OPTION_CONNECTION_LIMIT, (unsigned)64,
				   MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)120,
				   MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(64 * 1024),
				   MHD_OPTION_END);
	if (!ui->mhd) {
		diag_add(d, DIAG_ERROR, NULL, NULL, "--ui-listen",
			 "cannot start the UI's HTTP server");
		return -EIO;
	}
	return 0;
}

void ui_server_stop(struct ui *ui)
{
	if (ui->mhd) {
		MHD_stop_daemon(ui->mhd);
		ui->mhd = NULL;
	}
}

int ui_server_add_conn(struct ui *ui, int fd, const void *addr, unsigned addrlen)
{
	if (MHD_add_connection(ui->mhd, fd, (const struct sockaddr *)addr, (socklen_t)addrlen) !=
	    MHD_YES)
		return -EIO; /* MHD closed fd */
	return 0;
}
