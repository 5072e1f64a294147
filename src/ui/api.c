/* SPDX-License-Identifier: MIT */
/*
 * api.c: the JSON API under /api/ that the pages use (docs/ui-api.md). It
 * is reached only through server.c's gate, so every handler here runs with
 * a valid session, and every POST has passed the Origin and CSRF checks.
 * Handlers read the serving snapshot and the callbacks' figures, and the
 * store through the UI's own connection; they change nothing themselves
 * except the UI's own state (password, certificate): pinning, kubeconfig
 * and mode go to the control thread through callbacks. Everything that
 * came from the cluster is written with the escaping JSON writer; Secret
 * objects and key material are never returned. Runs on libmicrohttpd's
 * thread.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <yyjson.h>

#include "core/arena.h"
#include "core/err.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/str.h"
#include "proxy/snapshot.h"
#include "store/store.h"
#include "tls/tls.h"
#include "ui/internal.h"

/* -------- small helpers -------- */

static uint64_t arg_u64(struct ui_req *rq, const char *key, uint64_t def)
{
	const char *v = ui_req_arg(rq, key);
	uint64_t out;

	if (!v || str_to_u64(str_c(v), UINT64_MAX, &out) < 0)
		return def;
	return out;
}

static const char *proto_name(enum snap_proto p)
{
	static const char *const n[] = {"HTTP", "HTTPS", "TLS", "TCP", "UDP"};

	return (unsigned)p < 5 ? n[p] : "unknown";
}

static const char *app_proto_name(enum snap_app_proto p)
{
	static const char *const n[] = {"http/1.1", "h2c", "websocket", "h2"};

	return (unsigned)p < 4 ? n[p] : "unknown";
}

static const char *filter_name(enum snap_filter_type t)
{
	static const char *const n[] = {"RequestHeaderModifier", "ResponseHeaderModifier",
					"RequestRedirect",       "URLRewrite",
					"RequestMirror",         "CORS"};

	return (unsigned)t < 6 ? n[t] : "unknown";
}

static const char *path_match_name(enum snap_path_match t)
{
	static const char *const n[] = {"PathPrefix", "Exact", "RegularExpression"};

	return (unsigned)t < 3 ? n[t] : "unknown";
}

static struct snapshot *get_snap(struct ui *ui)
{
	return ui->cb.get_snapshot ? ui->cb.get_snapshot(ui->cb_arg) : NULL;
}

static void finish(struct ui_req *rq, struct jw *w)
{
	if (w->err)
		ui_reply_error(rq, 500, "out of memory");
}

/* Writes "conditions": [...] from a stored object's status (JSON text) at
 * the given path of keys, e.g. {"status","conditions"}; nothing when the
 * object has none. Only type, status, reason and message are copied. */
static void write_conditions(struct jw *w, yyjson_val *conds)
{
	yyjson_val *c;
	size_t i, n;

	jw_key(w, "conditions");
	jw_arr(w);
	yyjson_arr_foreach(conds, i, n, c)
	{
		jw_obj(w);
		jw_kstr(w, "type", yyjson_get_str(yyjson_obj_get(c, "type")));
		jw_kstr(w, "status", yyjson_get_str(yyjson_obj_get(c, "status")));
		jw_kstr(w, "reason", yyjson_get_str(yyjson_obj_get(c, "reason")));
		jw_kstr(w, "message", yyjson_get_str(yyjson_obj_get(c, "message")));
		jw_kstr(w, "lastTransitionTime",
			yyjson_get_str(yyjson_obj_get(c, "lastTransitionTime")));
		jw_obj_end(w);
	}
	jw_arr_end(w);
}

/* The stored (serving revision) object's JSON parsed, or NULL. "ns/name". */
static yyjson_doc *stored_object(struct ui *ui, const char *kind, const char *nsname)
{
	char ns[256];
	const char *slash = strchr(nsname, '/');
	struct arena *a = arena_new(0);
	char *json = NULL;
	yyjson_doc *doc = NULL;

	if (!a)
		return NULL;
	if (slash && (size_t)(slash - nsname) < sizeof(ns)) {
		memcpy(ns, nsname, (size_t)(slash - nsname));
		ns[slash - nsname] = '\0';
		pthread_mutex_lock(&ui->store_mu);
		if (store_object_json(ui->store, 0, kind, ns, slash + 1, a, &json) == 0 && json)
			doc = yyjson_read(json, strlen(json), 0);
		pthread_mutex_unlock(&ui->store_mu);
	}
	arena_free(a);
	return doc;
}

/* -------- box figures (/proc) -------- */

struct cpu_prev {
	uint64_t busy, total;
};
static struct cpu_prev cpu_prev; /* MHD thread only */

static int cpu_percent(void)
{
	unsigned long long v[8] = {0};
	uint64_t busy, total;
	int pct = -1;
	FILE *f = fopen("/proc/stat", "re");

	if (!f)
		return -1;
	if (fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
		   &v[4], &v[5], &v[6], &v[7]) == 8) {
		total = v[0] + v[1] + v[2] + v[3] + v[4] + v[5] + v[6] + v[7];
		busy = total - v[3] - v[4];
		if (cpu_prev.total && total > cpu_prev.total)
			pct = (int)((busy - cpu_prev.busy) * 100 / (total - cpu_prev.total));
		cpu_prev.busy = busy;
		cpu_prev.total = total;
	}
	fclose(f);
	return pct;
}

static void write_box(struct ui *ui, struct jw *w)
{
	char host[256] = "", line[256];
	double up = 0, l1 = 0, l5 = 0, l15 = 0;
	unsigned long long mem_total = 0, mem_avail = 0, v;
	struct utsname un;
	FILE *f;

	gethostname(host, sizeof(host) - 1);
	if ((f = fopen("/proc/uptime", "re"))) {
		if (fscanf(f, "%lf", &up) != 1)
			up = 0;
		fclose(f);
	}
	if ((f = fopen("/proc/loadavg", "re"))) {
		if (fscanf(f, "%lf %lf %lf", &l1, &l5, &l15) != 3)
			l1 = l5 = l15 = 0;
		fclose(f);
	}
	if ((f = fopen("/proc/meminfo", "re"))) {
		while (fgets(line, sizeof(line), f)) {
			if (sscanf(line, "MemTotal: %llu kB", &v) == 1)
				mem_total = v;
			else if (sscanf(line, "MemAvailable: %llu kB", &v) == 1)
				mem_avail = v;
		}
		fclose(f);
	}
	jw_key(w, "box");
	jw_obj(w);
	jw_kstr(w, "hostname", host);
	jw_kstr(w, "version", ui->version);
	jw_kstr(w, "board", ui->board);
	if (uname(&un) == 0) {
		jw_kstr(w, "kernel", un.release);
		jw_kstr(w, "arch", un.machine);
	}
	jw_ku64(w, "uptime_s", (uint64_t)up);
	jw_ku64(w, "ui_uptime_s", (clock_wall_ms() - ui->started_ms) / 1000);
	jw_key(w, "cpus");
	jw_i64(w, sysconf(_SC_NPROCESSORS_ONLN));
	jw_key(w, "cpu_percent");
	jw_i64(w, cpu_percent());
	jw_key(w, "load");
	jw_arr(w);
	jw_dbl(w, l1);
	jw_dbl(w, l5);
	jw_dbl(w, l15);
	jw_arr_end(w);
	jw_ku64(w, "mem_total_kb", mem_total);
	jw_ku64(w, "mem_available_kb", mem_avail);
	jw_obj_end(w);
}

/* -------- GET /api/overview -------- */

static void count_snapshot(const struct snapshot *s, size_t *rules, size_t *backends)
{
	*rules = *backends = 0;
	for (size_t i = 0; s && i < s->n_listeners; i++) {
		const struct snap_listener *l = &s->listeners[i];

		*rules += l->n_http_rules + l->n_tls_routes + (l->l4_route ? 1 : 0);
		for (size_t j = 0; j < l->n_http_rules; j++)
			*backends += l->http_rules[j].n_backends;
	}
}

static void write_cluster(struct jw *w, const struct ui_cluster *c)
{
	jw_key(w, "cluster");
	jw_obj(w);
	jw_kstr(w, "mode", c->mode == UI_MODE_CLUSTER ? "cluster" : "local");
	jw_kstr(w, "server", c->server);
	jw_kstr(w, "context", c->context);
	jw_kstr(w, "config_path", c->config_path);
	jw_kbool(w, "connected", c->connected);
	jw_kbool(w, "insecure", c->insecure);
	jw_ku64(w, "last_sync_ms", c->last_sync_ms);
	jw_kstr(w, "last_error", c->last_error);
	jw_key(w, "watches");
	jw_arr(w);
	for (size_t i = 0; i < c->n_watches && i < UI_MAX_WATCHES; i++) {
		const struct ui_watch *x = &c->watches[i];

		jw_obj(w);
		jw_kstr(w, "resource", x->resource);
		jw_kstr(w, "namespace", x->ns[0] ? x->ns : NULL);
		jw_kstr(w, "state", x->state);
		jw_kbool(w, "synced", x->synced);
		jw_kbool(w, "up", x->up);
		jw_ku64(w, "last_event_ms", x->last_event_ms);
		jw_kstr(w, "resource_version", x->resource_version);
		jw_ku64(w, "lists", x->lists);
		jw_ku64(w, "events", x->events);
		jw_ku64(w, "relists", x->relists);
		jw_ku64(w, "errors", x->errors);
		jw_kstr(w, "last_error", x->last_error);
		jw_obj_end(w);
	}
	jw_arr_end(w);
	jw_ku64(w, "watches_total",
		c->n_watches_total > c->n_watches ? c->n_watches_total : c->n_watches);
	jw_obj_end(w);
}

static void api_overview(struct ui *ui, struct ui_req *rq)
{
	struct ui_cluster cl = {0};
	struct store_stats ss = {0};
	struct snapshot *snap = get_snap(ui);
	struct ui_sample last[1];
	size_t rules, backends;
	const char *note;
	struct jw w;

	if (ui->cb.get_cluster)
		ui->cb.get_cluster(ui->cb_arg, &cl);
	pthread_mutex_lock(&ui->store_mu);
	store_quick_stats(ui->store, &ss);
	note = store_recovery_note(ui->store);
	pthread_mutex_unlock(&ui->store_mu);
	count_snapshot(snap, &rules, &backends);

	jw_init(&w, &rq->out);
	jw_obj(&w);
	write_cluster(&w, &cl);
	jw_key(&w, "serving");
	jw_obj(&w);
	jw_ku64(&w, "revision", snap && snap->revision ? snap->revision : ss.serving_rev);
	jw_kbool(&w, "pinned", ss.pinned_rev != 0);
	jw_ku64(&w, "pinned_revision", ss.pinned_rev);
	jw_ku64(&w, "compiled_ms", snap ? snap->compiled_ms : 0);
	jw_ku64(&w, "listeners", snap ? snap->n_listeners : 0);
	jw_ku64(&w, "sockets", snap ? snap->n_sockets : 0);
	jw_ku64(&w, "rules", rules);
	jw_obj_end(&w);
	jw_key(&w, "store");
	jw_obj(&w);
	jw_ku64(&w, "newest_revision", ss.newest_rev);
	jw_ku64(&w, "revisions", ss.n_revisions);
	jw_ku64(&w, "objects", ss.n_objects);
	jw_ku64(&w, "db_bytes", ss.db_bytes);
	jw_kbool(&w, "recovered", ss.recovered);
	jw_kstr(&w, "recovery_note", note);
	jw_obj_end(&w);
	write_box(ui, &w);
	jw_key(&w, "traffic");
	jw_obj(&w);
	if (ui_samples_copy(ui, last, 1) == 1) {
		jw_ku64(&w, "rps", last[0].rps);
		jw_ku64(&w, "p99_ms", last[0].p99_ms);
		jw_ku64(&w, "active", last[0].active);
	}
	jw_obj_end(&w);
	jw_obj_end(&w);
	finish(rq, &w);
	snap_unref(snap);
}

/* -------- GET /api/gateways -------- */

static void write_listener_status(struct jw *w, yyjson_doc *gw, const char *listener)
{
	yyjson_val *ls =
		yyjson_obj_get(yyjson_obj_get(yyjson_doc_get_root(gw), "status"), "listeners");
	yyjson_val *l;
	size_t i, n;

	yyjson_arr_foreach(ls, i, n, l)
	{
		const char *name = yyjson_get_str(yyjson_obj_get(l, "name"));

		if (name && listener && !strcmp(name, listener)) {
			jw_key(w, "attached_routes");
			jw_u64(w, yyjson_get_uint(yyjson_obj_get(l, "attachedRoutes")));
			write_conditions(w, yyjson_obj_get(l, "conditions"));
			return;
		}
	}
}

static void api_gateways(struct ui *ui, struct ui_req *rq)
{
	struct snapshot *snap = get_snap(ui);
	const char **names = NULL;
	size_t n_names = 0;
	struct jw w;

	jw_init(&w, &rq->out);
	jw_obj(&w);
	jw_key(&w, "gateways");
	jw_arr(&w);
	if (snap && snap->n_listeners)
		names = calloc(snap->n_listeners, sizeof(*names));
	for (size_t i = 0; names && i < snap->n_listeners; i++) {
		const char *g = snap->listeners[i].gateway;
		bool seen = false;
		yyjson_doc *doc;

		for (size_t k = 0; k < n_names && !seen; k++)
			seen = !strcmp(names[k], g ? g : "");
		if (seen || !g)
			continue;
		names[n_names++] = g;
		doc = stored_object(ui, "Gateway", g);
		jw_obj(&w);
		jw_kstr(&w, "name", g);
		if (doc) {
			yyjson_val *st = yyjson_obj_get(yyjson_doc_get_root(doc), "status");
			yyjson_val *addrs = yyjson_obj_get(st, "addresses"), *a;
			size_t ai, an;

			jw_key(&w, "addresses");
			jw_arr(&w);
			yyjson_arr_foreach(addrs, ai, an, a)
				jw_str(&w, yyjson_get_str(yyjson_obj_get(a, "value")));
			jw_arr_end(&w);
			write_conditions(&w, yyjson_obj_get(st, "conditions"));
		}
		jw_key(&w, "listeners");
		jw_arr(&w);
		for (size_t s = 0; s < snap->n_sockets; s++) {
			const struct snap_socket *so = &snap->sockets[s];

			for (size_t j = 0; j < so->n_listeners; j++) {
				const struct snap_listener *l = so->listeners[j];

				if (!l->gateway || strcmp(l->gateway, g) != 0)
					continue;
				jw_obj(&w);
				jw_kstr(&w, "name", l->name);
				jw_kstr(&w, "protocol", proto_name(l->proto));
				jw_kstr(&w, "hostname", l->hostname);
				jw_kstr(&w, "address", so->addr);
				jw_ku64(&w, "port", so->port);
				jw_kstr(&w, "transport",
					so->transport == SNAP_T_UDP ? "UDP" : "TCP");
				if (l->proto == SNAP_P_HTTPS || l->proto == SNAP_P_TLS)
					jw_kstr(&w, "tls_mode",
						l->tls_mode == SNAP_TLS_PASSTHROUGH ? "Passthrough"
										    : "Terminate");
				jw_key(&w, "certificates");
				jw_arr(&w);
				for (size_t c = 0; c < l->n_certs; c++) {
					jw_obj(&w);
					jw_kstr(&w, "name", l->certs[c].name);
					jw_key(&w, "not_after");
					jw_i64(&w, ui_pem_not_after(l->certs[c].cert_pem));
					jw_obj_end(&w);
				}
				jw_arr_end(&w);
				jw_ku64(&w, "rules",
					l->n_http_rules + l->n_tls_routes + (l->l4_route ? 1 : 0));
				if (doc)
					write_listener_status(&w, doc, l->name);
				jw_obj_end(&w);
			}
		}
		jw_arr_end(&w);
		jw_obj_end(&w);
		yyjson_doc_free(doc);
	}
	jw_arr_end(&w);
	jw_obj_end(&w);
	finish(rq, &w);
	free(names);
	snap_unref(snap);
}

/* -------- GET /api/routes -------- */

/* Statuses are read from the store for at most this many routes per call
 * (one query each); larger configurations show them per route only. */
#define STATUS_ROUTES_MAX 200

enum ref_kind { REF_HTTP = 0, REF_TLS, REF_L4 };

/* One place a route appears in the snapshot: a rule entry (one per match)
 * of an HTTP/HTTPS listener, a TLS route of a TLS listener, or the route of
 * a TCP/UDP listener. Sorted by name, listener, rule index and position,
 * the entries of one route are adjacent and in the route's order. */
struct route_ref {
	const char *name;
	const char *kind;
	const struct snap_listener *l;
	size_t l_idx;
	enum ref_kind rk;
	size_t pos;
	uint32_t rule_index;
};

static int ref_cmp(const void *a, const void *b)
{
	const struct route_ref *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	if (c)
		return c;
	if (x->l_idx != y->l_idx)
		return x->l_idx < y->l_idx ? -1 : 1;
	if (x->rule_index != y->rule_index)
		return x->rule_index < y->rule_index ? -1 : 1;
	return x->pos < y->pos ? -1 : x->pos > y->pos;
}

static const char *l4_kind(const struct snap_listener *l)
{
	return l->proto == SNAP_P_UDP ? "UDPRoute" : "TCPRoute";
}

/* All references of the snapshot; *n set. Caller frees. NULL when none or
 * on ENOMEM (then *n = 0). */
static struct route_ref *collect_refs(const struct snapshot *s, size_t *n)
{
	struct route_ref *v;
	size_t cap = 0, k = 0;

	*n = 0;
	for (size_t i = 0; s && i < s->n_listeners; i++)
		cap += s->listeners[i].n_http_rules + s->listeners[i].n_tls_routes + 1;
	if (!cap || !(v = calloc(cap, sizeof(*v))))
		return NULL;
	for (size_t i = 0; i < s->n_listeners; i++) {
		const struct snap_listener *l = &s->listeners[i];

		for (size_t j = 0; j < l->n_http_rules; j++)
			v[k++] = (struct route_ref){.name = l->http_rules[j].route,
						    .kind = l->http_rules[j].grpc ? "GRPCRoute"
										  : "HTTPRoute",
						    .l = l,
						    .l_idx = i,
						    .rk = REF_HTTP,
						    .pos = j,
						    .rule_index = l->http_rules[j].rule_index};
		for (size_t j = 0; j < l->n_tls_routes; j++)
			v[k++] = (struct route_ref){.name = l->tls_routes[j].route,
						    .kind = "TLSRoute",
						    .l = l,
						    .l_idx = i,
						    .rk = REF_TLS,
						    .pos = j};
		if (l->l4_route)
			v[k++] = (struct route_ref){.name = l->l4_route,
						    .kind = l4_kind(l),
						    .l = l,
						    .l_idx = i,
						    .rk = REF_L4};
	}
	for (size_t i = 0; i < k; i++)
		if (!v[i].name)
			v[i].name = "";
	qsort(v, k, sizeof(*v), ref_cmp);
	*n = k;
	return v;
}

static void write_backends(struct jw *w, const struct snap_backend *b, size_t n)
{
	jw_key(w, "backends");
	jw_arr(w);
	for (size_t i = 0; i < n; i++) {
		jw_obj(w);
		jw_kstr(w, "name", b[i].name);
		jw_ku64(w, "weight", b[i].weight);
		jw_ku64(w, "endpoints", b[i].n_endpoints);
		jw_key(w, "invalid_status");
		jw_i64(w, b[i].invalid_status);
		jw_obj_end(w);
	}
	jw_arr_end(w);
}

static void write_match(struct jw *w, const struct snap_http_match *m)
{
	jw_obj(w);
	jw_kstr(w, "path_type", path_match_name(m->path_type));
	jw_kstr(w, "path", m->path);
	jw_kstr(w, "method", m->method);
	jw_key(w, "headers");
	jw_arr(w);
	for (size_t i = 0; i < m->n_headers; i++) {
		jw_obj(w);
		jw_kstr(w, "name", m->headers[i].name);
		jw_kstr(w, "value", m->headers[i].value);
		jw_kstr(w, "type",
			m->headers[i].type == SNAP_SM_REGEX ? "RegularExpression" : "Exact");
		jw_obj_end(w);
	}
	jw_arr_end(w);
	jw_key(w, "query");
	jw_arr(w);
	for (size_t i = 0; i < m->n_query; i++) {
		jw_obj(w);
		jw_kstr(w, "name", m->query[i].name);
		jw_kstr(w, "value", m->query[i].value);
		jw_obj_end(w);
	}
	jw_arr_end(w);
	jw_obj_end(w);
}

/*
 * "traffic": the counters of rules s[0..n) (one route's, or one rule),
 * summed, and their rates over the last closed window (null before the
 * first). full adds the status classes, bytes and latency percentiles.
 */
static void write_traffic(struct jw *w, struct ui *ui, const struct ui_route_stats *s, size_t n,
			  bool full)
{
	struct ui_route_stats t = {0};
	struct ui_route_rate rate;
	uint64_t resp = 0;
	bool have;

	for (size_t i = 0; i < n; i++) {
		t.requests += s[i].requests;
		for (int k = 0; k < 6; k++)
			t.responses_by_class[k] += s[i].responses_by_class[k];
		t.bytes_in += s[i].bytes_in;
		t.bytes_out += s[i].bytes_out;
		t.upstream_errors += s[i].upstream_errors;
		for (int k = 0; k < UI_ROUTE_LATENCY_BUCKETS; k++)
			t.latency_buckets[k] += s[i].latency_buckets[k];
	}
	for (int k = 0; k < 6; k++)
		resp += t.responses_by_class[k];
	pthread_mutex_lock(&ui->traffic_mu);
	have = ui_rates_sum(&ui->rates, s, n, &rate);
	pthread_mutex_unlock(&ui->traffic_mu);

	jw_key(w, "traffic");
	jw_obj(w);
	jw_ku64(w, "requests", t.requests);
	jw_ku64(w, "responses_5xx", t.responses_by_class[5]);
	jw_key(w, "rps");
	if (have)
		jw_dbl(w, rate.rps);
	else
		jw_null(w);
	jw_key(w, "error_share");
	if (have)
		jw_dbl(w, rate.error_share);
	else
		jw_null(w);
	if (full) {
		jw_key(w, "responses_by_class");
		jw_arr(w);
		for (int k = 0; k < 6; k++)
			jw_u64(w, t.responses_by_class[k]);
		jw_arr_end(w);
		jw_ku64(w, "bytes_in", t.bytes_in);
		jw_ku64(w, "bytes_out", t.bytes_out);
		jw_ku64(w, "active", t.requests > resp ? t.requests - resp : 0);
		jw_ku64(w, "upstream_errors", t.upstream_errors);
		jw_ku64(w, "p50_ms", ui_route_percentile_ms(t.latency_buckets, 50));
		jw_ku64(w, "p99_ms", ui_route_percentile_ms(t.latency_buckets, 99));
		jw_key(w, "window_s");
		if (have)
			jw_dbl(w, rate.window_s);
		else
			jw_null(w);
	}
	jw_obj_end(w);
}

/* Writes one route from its references r[0..n) (n >= 1); rs[0..n_rs):
 * every rule's counters, sorted (for the rules' traffic). */
static void write_route(struct jw *w, struct ui *ui, const struct route_ref *r, size_t n,
			const struct ui_route_stats *rs, size_t n_rs)
{
	const struct snap_listener *first = r[0].l;
	bool open = false;

	jw_key(w, "parents");
	jw_arr(w);
	for (size_t i = 0; i < n; i++) {
		if (i && r[i].l_idx == r[i - 1].l_idx)
			continue;
		jw_obj(w);
		jw_kstr(w, "gateway", r[i].l->gateway);
		jw_kstr(w, "listener", r[i].l->name);
		jw_obj_end(w);
	}
	jw_arr_end(w);

	/* hostnames and rules as attached to the first listener */
	jw_key(w, "hostnames");
	jw_arr(w);
	if (r[0].rk == REF_HTTP) {
		const struct snap_http_rule *h = &first->http_rules[r[0].pos];

		for (size_t k = 0; k < h->n_hostnames; k++)
			jw_str(w, h->hostnames[k]);
	} else if (r[0].rk == REF_TLS) {
		const struct snap_tls_route *t = &first->tls_routes[r[0].pos];

		for (size_t k = 0; k < t->n_hostnames; k++)
			jw_str(w, t->hostnames[k]);
	}
	jw_arr_end(w);

	jw_key(w, "rules");
	jw_arr(w);
	for (size_t i = 0; i < n && r[i].l_idx == r[0].l_idx; i++) {
		if (r[i].rk == REF_HTTP) {
			const struct snap_http_rule *h = &first->http_rules[r[i].pos];

			/* the entries of one rule (one per match) share filters and
			 * backends */
			if (!open || r[i].rule_index != r[i - 1].rule_index) {
				if (open) {
					jw_arr_end(w);
					jw_obj_end(w);
				}
				open = true;
				jw_obj(w);
				jw_ku64(w, "index", h->rule_index);
				jw_kstr(w, "name", h->rule_name);
				jw_key(w, "filters");
				jw_arr(w);
				for (size_t f = 0; f < h->n_filters; f++)
					jw_str(w, filter_name(h->filters[f].type));
				jw_arr_end(w);
				write_backends(w, h->backends, h->n_backends);
				jw_ku64(w, "timeout_ms", h->request_timeout_ms);
				const struct ui_route_stats *st =
					ui_route_stats_find(rs, n_rs, r[0].name, h->rule_index);
				if (st)
					write_traffic(w, ui, st, 1, false);
				jw_key(w, "matches");
				jw_arr(w);
			}
			write_match(w, &h->match);
			continue;
		}
		if (open) {
			jw_arr_end(w);
			jw_obj_end(w);
			open = false;
		}
		/* an L4 route is one rule, counted as rule 0 */
		const struct ui_route_stats *st = ui_route_stats_find(rs, n_rs, r[0].name, 0);

		jw_obj(w);
		jw_ku64(w, "index", 0);
		if (r[i].rk == REF_TLS)
			write_backends(w, first->tls_routes[r[i].pos].backends,
				       first->tls_routes[r[i].pos].n_backends);
		else
			write_backends(w, first->l4_backends, first->n_l4_backends);
		if (st)
			write_traffic(w, ui, st, 1, false);
		jw_obj_end(w);
	}
	if (open) {
		jw_arr_end(w);
		jw_obj_end(w);
	}
	jw_arr_end(w);
}

static void write_route_status(struct jw *w, yyjson_doc *doc)
{
	yyjson_val *parents =
		yyjson_obj_get(yyjson_obj_get(yyjson_doc_get_root(doc), "status"), "parents");
	yyjson_val *p;
	size_t pi, pn;

	jw_key(w, "status");
	jw_arr(w);
	yyjson_arr_foreach(parents, pi, pn, p)
	{
		yyjson_val *ref = yyjson_obj_get(p, "parentRef");

		jw_obj(w);
		jw_kstr(w, "parent", yyjson_get_str(yyjson_obj_get(ref, "name")));
		jw_kstr(w, "section", yyjson_get_str(yyjson_obj_get(ref, "sectionName")));
		jw_kstr(w, "controller", yyjson_get_str(yyjson_obj_get(p, "controllerName")));
		write_conditions(w, yyjson_obj_get(p, "conditions"));
		jw_obj_end(w);
	}
	jw_arr_end(w);
}

static void api_routes(struct ui *ui, struct ui_req *rq)
{
	struct snapshot *snap = get_snap(ui);
	size_t n = 0, n_rs = 0, n_routes = 0;
	struct route_ref *v = collect_refs(snap, &n);
	struct ui_route_stats *rs = ui_route_stats_all(ui, &n_rs);
	struct jw w;

	for (size_t i = 0; i < n; i++)
		n_routes += !i || strcmp(v[i].name, v[i - 1].name) != 0;
	jw_init(&w, &rq->out);
	jw_obj(&w);
	jw_key(&w, "routes");
	jw_arr(&w);
	for (size_t a = 0, b; a < n; a = b) {
		size_t first, n_rules;

		for (b = a + 1; b < n && !strcmp(v[b].name, v[a].name); b++)
			;
		jw_obj(&w);
		jw_kstr(&w, "name", v[a].name);
		jw_kstr(&w, "kind", v[a].kind);
		write_route(&w, ui, v + a, b - a, rs, n_rs);
		n_rules = ui_route_stats_range(rs, n_rs, v[a].name, &first);
		if (n_rules)
			write_traffic(&w, ui, rs + first, n_rules, true);
		if (n_routes <= STATUS_ROUTES_MAX) {
			yyjson_doc *doc = stored_object(ui, v[a].kind, v[a].name);

			if (doc)
				write_route_status(&w, doc);
			yyjson_doc_free(doc);
		}
		jw_obj_end(&w);
	}
	jw_arr_end(&w);
	jw_obj_end(&w);
	finish(rq, &w);
	free(rs);
	free(v);
	snap_unref(snap);
}

/* -------- GET /api/backends -------- */

/* A backend as referenced by one route; sorted by backend name, then
 * route, the references of one backend are adjacent. */
struct backend_ref {
	const struct snap_backend *b;
	const char *route;
};

static int bref_cmp(const void *a, const void *b)
{
	const struct backend_ref *x = a, *y = b;
	int c = strcmp(x->b->name ? x->b->name : "", y->b->name ? y->b->name : "");

	return c ? c : strcmp(x->route ? x->route : "", y->route ? y->route : "");
}

static struct backend_ref *collect_backends(const struct snapshot *s, size_t *n)
{
	struct backend_ref *v;
	size_t cap = 0, k = 0;

	*n = 0;
	for (size_t i = 0; s && i < s->n_listeners; i++) {
		const struct snap_listener *l = &s->listeners[i];

		for (size_t j = 0; j < l->n_http_rules; j++)
			cap += l->http_rules[j].n_backends;
		for (size_t j = 0; j < l->n_tls_routes; j++)
			cap += l->tls_routes[j].n_backends;
		cap += l->n_l4_backends;
	}
	if (!cap || !(v = calloc(cap, sizeof(*v))))
		return NULL;
	for (size_t i = 0; i < s->n_listeners; i++) {
		const struct snap_listener *l = &s->listeners[i];

		for (size_t j = 0; j < l->n_http_rules; j++)
			for (size_t m = 0; m < l->http_rules[j].n_backends; m++)
				v[k++] = (struct backend_ref){&l->http_rules[j].backends[m],
							      l->http_rules[j].route};
		for (size_t j = 0; j < l->n_tls_routes; j++)
			for (size_t m = 0; m < l->tls_routes[j].n_backends; m++)
				v[k++] = (struct backend_ref){&l->tls_routes[j].backends[m],
							      l->tls_routes[j].route};
		for (size_t m = 0; m < l->n_l4_backends; m++)
			v[k++] = (struct backend_ref){&l->l4_backends[m], l->l4_route};
	}
	qsort(v, k, sizeof(*v), bref_cmp);
	*n = k;
	return v;
}

static bool same_backend(const struct backend_ref *x, const struct backend_ref *y)
{
	return !strcmp(x->b->name ? x->b->name : "", y->b->name ? y->b->name : "");
}

static void api_backends(struct ui *ui, struct ui_req *rq)
{
	struct snapshot *snap = get_snap(ui);
	size_t n = 0;
	struct backend_ref *v = collect_backends(snap, &n);
	struct jw w;

	jw_init(&w, &rq->out);
	jw_obj(&w);
	jw_key(&w, "backends");
	jw_arr(&w);
	for (size_t a = 0, e; a < n; a = e) {
		const struct snap_backend *b = v[a].b;

		for (e = a + 1; e < n && same_backend(&v[e], &v[a]); e++)
			;
		jw_obj(&w);
		jw_kstr(&w, "name", b->name);
		jw_kstr(&w, "protocol", app_proto_name(b->proto));
		jw_kbool(&w, "tls", b->tls != NULL);
		if (b->tls)
			jw_kstr(&w, "tls_sni", b->tls->sni);
		jw_key(&w, "invalid_status");
		jw_i64(&w, b->invalid_status);
		jw_kstr(&w, "health",
			b->invalid_status ? "invalid"
			: b->n_endpoints  ? "ready"
					  : "no ready endpoints");
		jw_key(&w, "endpoints");
		jw_arr(&w);
		for (size_t k = 0; k < b->n_endpoints; k++) {
			jw_obj(&w);
			jw_kstr(&w, "address", b->endpoints[k].addr);
			jw_ku64(&w, "port", b->endpoints[k].port);
			jw_kstr(&w, "state", "ready");
			jw_obj_end(&w);
		}
		jw_arr_end(&w);
		jw_key(&w, "routes");
		jw_arr(&w);
		for (size_t k = a; k < e; k++)
			if (k == a || strcmp(v[k].route ? v[k].route : "",
					     v[k - 1].route ? v[k - 1].route : "") != 0)
				jw_str(&w, v[k].route);
		jw_arr_end(&w);
		jw_obj_end(&w);
	}
	jw_arr_end(&w);
	jw_obj_end(&w);
	finish(rq, &w);
	free(v);
	snap_unref(snap);
}

/* -------- GET /api/traffic -------- */

static void api_traffic(struct ui *ui, struct ui_req *rq)
{
	struct ui_sample *s = calloc(UI_SAMPLES, sizeof(*s));
	uint64_t minutes = arg_u64(rq, "minutes", 60), now_min = clock_wall_ms() / 60000;
	struct store_traffic *t = NULL;
	struct arena *a = arena_new(0);
	struct ui_stats st = {0};
	size_t n, nt = 0;
	struct jw w;

	if (!s || !a) {
		free(s);
		arena_free(a);
		ui_reply_error(rq, 500, "out of memory");
		return;
	}
	if (minutes > STORE_TRAFFIC_MINUTES)
		minutes = STORE_TRAFFIC_MINUTES;
	n = ui_samples_copy(ui, s, UI_SAMPLES);
	pthread_mutex_lock(&ui->store_mu);
	if (store_traffic_read(ui->store, now_min - minutes, a, &t, &nt) < 0)
		nt = 0;
	pthread_mutex_unlock(&ui->store_mu);
	if (ui->cb.get_stats)
		ui->cb.get_stats(ui->cb_arg, &st);

	jw_init(&w, &rq->out);
	jw_obj(&w);
	jw_key(&w, "totals");
	jw_obj(&w);
	jw_ku64(&w, "requests", st.requests);
	jw_key(&w, "responses_by_class");
	jw_arr(&w);
	for (int i = 0; i < 6; i++)
		jw_u64(&w, st.responses_by_class[i]);
	jw_arr_end(&w);
	jw_ku64(&w, "bytes_in", st.bytes_in);
	jw_ku64(&w, "bytes_out", st.bytes_out);
	jw_ku64(&w, "upstream_errors", st.upstream_errors);
	jw_ku64(&w, "active_connections", st.active_connections);
	jw_ku64(&w, "total_connections", st.total_connections);
	jw_key(&w, "listener_connections");
	jw_arr(&w);
	for (size_t i = 0; i < st.n_ports && i < UI_MAX_PORTS; i++) {
		jw_obj(&w);
		jw_ku64(&w, "port", st.ports[i].port);
		jw_ku64(&w, "active", st.ports[i].active);
		jw_obj_end(&w);
	}
	jw_arr_end(&w);
	jw_ku64(&w, "p50_ms", ui_percentile_ms(st.latency_buckets, 50));
	jw_ku64(&w, "p99_ms", ui_percentile_ms(st.latency_buckets, 99));
	jw_obj_end(&w);
	jw_key(&w, "samples");
	jw_arr(&w);
	for (size_t i = 0; i < n; i++) {
		jw_obj(&w);
		jw_ku64(&w, "t", s[i].t_ms);
		jw_ku64(&w, "rps", s[i].rps);
		jw_ku64(&w, "p50_ms", s[i].p50_ms);
		jw_ku64(&w, "p99_ms", s[i].p99_ms);
		jw_key(&w, "by_class");
		jw_arr(&w);
		for (int c = 0; c < 6; c++)
			jw_u64(&w, s[i].by_class[c]);
		jw_arr_end(&w);
		jw_ku64(&w, "bytes_out", s[i].bytes_out);
		jw_ku64(&w, "active", s[i].active);
		jw_obj_end(&w);
	}
	jw_arr_end(&w);
	jw_key(&w, "history");
	jw_arr(&w);
	for (size_t i = 0; i < nt; i++) {
		jw_obj(&w);
		jw_ku64(&w, "minute", t[i].minute);
		jw_ku64(&w, "requests", t[i].requests);
		jw_ku64(&w, "errors", t[i].errors);
		jw_ku64(&w, "p50_ms", t[i].p50_ms);
		jw_ku64(&w, "p99_ms", t[i].p99_ms);
		jw_ku64(&w, "bytes", t[i].bytes);
		jw_obj_end(&w);
	}
	jw_arr_end(&w);
	jw_obj_end(&w);
	finish(rq, &w);
	arena_free(a);
	free(s);
}

/* -------- revisions -------- */

static void write_revision(struct jw *w, const struct store_revision *r)
{
	jw_obj(w);
	jw_ku64(w, "revision", r->rev);
	jw_ku64(w, "time_ms", r->time_ms);
	jw_kstr(w, "source", r->source);
	jw_kstr(w, "user", r->user);
	jw_kstr(w, "summary", r->summary);
	jw_ku64(w, "objects", r->n_objects);
	jw_kbool(w, "pinned", r->pinned);
	jw_kbool(w, "serving", r->serving);
	jw_kbool(w, "has_snapshot", r->has_snapshot);
	jw_obj_end(w);
}

static void api_revisions(struct ui *ui, struct ui_req *rq)
{
	uint64_t offset = arg_u64(rq, "offset", 0), limit = arg_u64(rq, "limit", 50);
	struct arena *a = arena_new(0);
	struct store_revision *v = NULL;
	uint64_t pinned = 0, serving = 0;
	size_t n = 0;
	int err;
	struct jw w;

	if (!a) {
		ui_reply_error(rq, 500, "out of memory");
		return;
	}
	if (limit == 0 || limit > 500)
		limit = 500;
	pthread_mutex_lock(&ui->store_mu);
	err = store_revisions(ui->store, offset, limit, a, &v, &n);
	store_pinned(ui->store, &pinned);
	store_serving(ui->store, &serving);
	pthread_mutex_unlock(&ui->store_mu);
	if (err < 0) {
		arena_free(a);
		ui_reply_error(rq, 500, "cannot read the revisions");
		return;
	}
	jw_init(&w, &rq->out);
	jw_obj(&w);
	jw_ku64(&w, "pinned", pinned);
	jw_ku64(&w, "serving", serving);
	jw_key(&w, "revisions");
	jw_arr(&w);
	for (size_t i = 0; i < n; i++)
		write_revision(&w, &v[i]);
	jw_arr_end(&w);
	jw_obj_end(&w);
	finish(rq, &w);
	arena_free(a);
}

static void api_revision(struct ui *ui, struct ui_req *rq)
{
	uint64_t rev = arg_u64(rq, "rev", 0);
	struct arena *a = arena_new(0);
	struct store_revision r;
	char *json = NULL;
	yyjson_doc *doc = NULL;
	int err;
	struct jw w;

	if (!a) {
		ui_reply_error(rq, 500, "out of memory");
		return;
	}
	pthread_mutex_lock(&ui->store_mu);
	err = store_revision_get(ui->store, rev, a, &r);
	if (err == 0 && store_snapshot_json(ui->store, rev, a, &json, NULL) == 0 && json)
		doc = yyjson_read(json, strlen(json), 0);
	pthread_mutex_unlock(&ui->store_mu);
	if (err < 0) {
		arena_free(a);
		ui_reply_error(rq, err == -WG_ENOTFOUND ? 404 : 500, "no such revision");
		return;
	}
	jw_init(&w, &rq->out);
	jw_obj(&w);
	jw_key(&w, "revision");
	write_revision(&w, &r);
	jw_key(&w, "snapshot");
	if (doc) {
		/* re-serialised: whatever the store holds, the output is JSON */
		size_t len = 0;
		char *txt = yyjson_write(doc, 0, &len);

		if (txt)
			jw_raw(&w, txt, len);
		else
			jw_null(&w);
		free(txt);
	} else {
		jw_null(&w);
	}
	jw_obj_end(&w);
	finish(rq, &w);
	yyjson_doc_free(doc);
	arena_free(a);
}

static const char *change_name(enum store_change c)
{
	return c == STORE_ADDED ? "added" : c == STORE_REMOVED ? "removed" : "changed";
}

static void api_diff(struct ui *ui, struct ui_req *rq)
{
	uint64_t from = arg_u64(rq, "from", 0), to = arg_u64(rq, "to", 0);
	struct arena *a = arena_new(0);
	struct store_diff_entry *v = NULL;
	size_t n = 0;
	int err;
	struct jw w;

	if (!a) {
		ui_reply_error(rq, 500, "out of memory");
		return;
	}
	if (!from || !to) {
		arena_free(a);
		ui_reply_error(rq, 400, "from and to (revision numbers) are required");
		return;
	}
	pthread_mutex_lock(&ui->store_mu);
	err = store_diff(ui->store, from, to, a, &v, &n);
	pthread_mutex_unlock(&ui->store_mu);
	if (err < 0) {
		arena_free(a);
		ui_reply_error(rq, err == -WG_ENOTFOUND ? 404 : 500, "no such revision");
		return;
	}
	jw_init(&w, &rq->out);
	jw_obj(&w);
	jw_ku64(&w, "from", from);
	jw_ku64(&w, "to", to);
	jw_key(&w, "changes");
	jw_arr(&w);
	for (size_t i = 0; i < n; i++) {
		jw_obj(&w);
		jw_kstr(&w, "change", change_name(v[i].change));
		jw_kstr(&w, "kind", v[i].kind);
		jw_kstr(&w, "namespace", v[i].ns);
		jw_kstr(&w, "name", v[i].name);
		jw_obj_end(&w);
	}
	jw_arr_end(&w);
	jw_obj_end(&w);
	finish(rq, &w);
	arena_free(a);
}

/* The stored JSON of one object; Secrets are never returned, and a
 * re-serialisation without metadata.managedFields keeps it readable. */
static void api_object(struct ui *ui, struct ui_req *rq)
{
	uint64_t rev = arg_u64(rq, "rev", 0);
	const char *kind = ui_req_arg(rq, "kind"), *ns = ui_req_arg(rq, "namespace");
	const char *name = ui_req_arg(rq, "name");
	struct arena *a;
	char *json = NULL;
	int err;

	if (!kind || !name) {
		ui_reply_error(rq, 400, "kind and name are required");
		return;
	}
	if (!strcasecmp(kind, "Secret")) {
		ui_reply_error(rq, 403, "Secret contents are never shown");
		return;
	}
	if (!(a = arena_new(0))) {
		ui_reply_error(rq, 500, "out of memory");
		return;
	}
	pthread_mutex_lock(&ui->store_mu);
	err = store_object_json(ui->store, rev, kind, ns ? ns : "", name, a, &json);
	pthread_mutex_unlock(&ui->store_mu);
	if (err < 0 || !json) {
		ui_reply_error(rq, err == -WG_ENOTFOUND ? 404 : 500,
			       "no such object in that revision");
	} else {
		yyjson_doc *d = yyjson_read(json, strlen(json), 0);
		yyjson_mut_doc *m = d ? yyjson_doc_mut_copy(d, NULL) : NULL;
		yyjson_mut_val *meta =
			m ? yyjson_mut_obj_get(yyjson_mut_doc_get_root(m), "metadata") : NULL;
		char *txt;
		size_t len = 0;

		if (meta)
			yyjson_mut_obj_remove_key(meta, "managedFields");
		txt = m ? yyjson_mut_write(m, YYJSON_WRITE_PRETTY, &len) : NULL;
		if (txt) {
			struct jw w;

			jw_init(&w, &rq->out);
			jw_obj(&w);
			jw_ku64(&w, "revision", rev);
			jw_kstr(&w, "text", txt); /* shown as text, never parsed by the page */
			jw_obj_end(&w);
			finish(rq, &w);
			free(txt);
		} else {
			ui_reply_error(rq, 500, "the stored object is not JSON");
		}
		yyjson_mut_doc_free(m);
		yyjson_doc_free(d);
	}
	arena_free(a);
}

static void reply_result(struct ui_req *rq, int err, const char *msg, const char *ok_msg)
{
	struct jw w;

	if (err < 0) {
		ui_reply_error(rq, err == -WG_ENOTFOUND ? 404 : 422, msg[0] ? msg : err_str(err));
		return;
	}
	jw_init(&w, &rq->out);
	jw_obj(&w);
	jw_kbool(&w, "ok", true);
	jw_kstr(&w, "message", msg[0] ? msg : ok_msg);
	jw_obj_end(&w);
}

static void api_pin(struct ui *ui, struct ui_req *rq, bool unpin)
{
	char msg[256] = "";
	uint64_t rev = 0;
	yyjson_doc *doc = NULL;
	int err;

	if (!ui->cb.pin_revision) {
		ui_reply_error(rq, 501, "pinning is not available");
		return;
	}
	if (!unpin) {
		if (!(doc = ui_req_json(rq)))
			return;
		yyjson_val *v = yyjson_obj_get(yyjson_doc_get_root(doc), "revision");

		rev = yyjson_is_uint(v) ? yyjson_get_uint(v) : 0;
		yyjson_doc_free(doc);
		if (!rev) {
			ui_reply_error(rq, 400, "revision (a positive number) is required");
			return;
		}
	}
	err = ui->cb.pin_revision(ui->cb_arg, rev, msg, sizeof(msg));
	if (err == 0)
		log_info("event=ui_%s revision=%" PRIu64 " user=%s", unpin ? "unpin" : "pin", rev,
			 log_q(rq->user));
	reply_result(rq, err, msg,
		     unpin ? "unpinned: the newest revision is served"
			   : "pinned: this revision is served until unpinned");
}

/* -------- settings -------- */

static void api_settings_get(struct ui *ui, struct ui_req *rq)
{
	struct ui_cluster cl = {0};
	struct jw w;
	int64_t not_after;

	if (ui->cb.get_cluster)
		ui->cb.get_cluster(ui->cb_arg, &cl);
	pthread_mutex_lock(&ui->tls_mu);
	not_after = ui->cert_not_after;
	pthread_mutex_unlock(&ui->tls_mu);
	jw_init(&w, &rq->out);
	jw_obj(&w);
	jw_kstr(&w, "mode", cl.mode == UI_MODE_CLUSTER ? "cluster" : "local");
	jw_kstr(&w, "server", cl.server);
	jw_kstr(&w, "context", cl.context);
	jw_kstr(&w, "config_path", cl.config_path);
	jw_kbool(&w, "can_upload_kubeconfig", ui->cb.apply_kubeconfig != NULL);
	jw_kbool(&w, "can_switch_mode", ui->cb.set_mode != NULL);
	jw_key(&w, "certificate");
	jw_obj(&w);
	jw_key(&w, "not_after");
	jw_i64(&w, not_after);
	jw_kbool(&w, "uploaded", ui->cert_uploaded);
	jw_obj_end(&w);
	jw_key(&w, "metrics");
	jw_obj(&w);
	jw_kstr(&w, "path", "/metrics");
	jw_kstr(&w, "token_file", "ui-metrics.token (in the state dir)");
	jw_obj_end(&w);
	jw_ku64(&w, "session_idle_s", ui->idle_ms / 1000);
	jw_key(&w, "allowed_hosts");
	jw_arr(&w);
	for (size_t i = 0; i < ui->hosts.n; i++)
		jw_str(&w, ui->hosts.v[i]);
	jw_arr_end(&w);
	jw_obj_end(&w);
	finish(rq, &w);
}

static void api_kubeconfig(struct ui *ui, struct ui_req *rq)
{
	char msg[512] = "";
	yyjson_doc *doc;
	const char *kc, *ctx;
	size_t len;
	int err;

	if (!ui->cb.apply_kubeconfig) {
		ui_reply_error(rq, 501, "kubeconfig upload is not available");
		return;
	}
	if (!(doc = ui_req_json(rq)))
		return;
	kc = yyjson_get_str(yyjson_obj_get(yyjson_doc_get_root(doc), "kubeconfig"));
	len = yyjson_get_len(yyjson_obj_get(yyjson_doc_get_root(doc), "kubeconfig"));
	ctx = yyjson_get_str(yyjson_obj_get(yyjson_doc_get_root(doc), "context"));
	if (!kc || !len) {
		yyjson_doc_free(doc);
		ui_reply_error(rq, 400, "kubeconfig (the file's text) is required");
		return;
	}
	err = ui->cb.apply_kubeconfig(ui->cb_arg, kc, len, ctx && *ctx ? ctx : NULL, msg,
				      sizeof(msg));
	yyjson_doc_free(doc);
	tls_zeroize(rq->body, rq->body_len); /* it held credentials */
	pthread_mutex_lock(&ui->store_mu);
	store_audit(ui->store, "ui", rq->user,
		    err == 0 ? "uploaded a kubeconfig (accepted)"
			     : "uploaded a kubeconfig (rejected)");
	pthread_mutex_unlock(&ui->store_mu);
	log_info("event=ui_kubeconfig_upload user=%s accepted=%s", log_q(rq->user),
		 err == 0 ? "yes" : "no");
	reply_result(rq, err, msg, "kubeconfig accepted: connected to the cluster");
}

static void api_mode(struct ui *ui, struct ui_req *rq)
{
	char msg[256] = "";
	yyjson_doc *doc;
	const char *mode;
	enum ui_mode m;
	int err;

	if (!ui->cb.set_mode) {
		ui_reply_error(rq, 501, "switching mode is not available");
		return;
	}
	if (!(doc = ui_req_json(rq)))
		return;
	mode = yyjson_get_str(yyjson_obj_get(yyjson_doc_get_root(doc), "mode"));
	if (!mode || (strcmp(mode, "local") && strcmp(mode, "cluster"))) {
		yyjson_doc_free(doc);
		ui_reply_error(rq, 400, "mode must be \"local\" or \"cluster\"");
		return;
	}
	m = !strcmp(mode, "cluster") ? UI_MODE_CLUSTER : UI_MODE_LOCAL;
	yyjson_doc_free(doc);
	err = ui->cb.set_mode(ui->cb_arg, m, msg, sizeof(msg));
	if (err == 0) {
		pthread_mutex_lock(&ui->store_mu);
		store_audit(ui->store, "ui", rq->user,
			    m == UI_MODE_CLUSTER ? "switched to cluster mode"
						 : "switched to local mode");
		pthread_mutex_unlock(&ui->store_mu);
	}
	reply_result(rq, err, msg, "mode switched");
}

static void api_password(struct ui *ui, struct ui_req *rq)
{
	uint64_t now = clock_mono_ms();
	uint32_t retry = 0;
	yyjson_doc *doc;
	const char *cur, *nw;
	char csrf[65];
	int err;
	struct jw w;

	if (!ui_rl_allow(&ui->rl, rq->client, now, &retry)) {
		ui_reply_error(rq, 429, "too many attempts; try again later");
		rq->retry_after_s = retry;
		return;
	}
	if (!(doc = ui_req_json(rq)))
		return;
	cur = yyjson_get_str(yyjson_obj_get(yyjson_doc_get_root(doc), "current"));
	nw = yyjson_get_str(yyjson_obj_get(yyjson_doc_get_root(doc), "new"));
	if (!cur || !nw) {
		yyjson_doc_free(doc);
		ui_reply_error(rq, 400, "current and new passwords are required");
		return;
	}
	if (strlen(nw) < 10 || strlen(nw) > 256) {
		yyjson_doc_free(doc);
		tls_zeroize(rq->body, rq->body_len);
		ui_reply_error(rq, 400, "the new password must be 10 to 256 characters long");
		return;
	}
	pthread_mutex_lock(&ui->store_mu);
	err = store_check_password(ui->store, rq->user, cur);
	if (err == 0)
		err = store_set_password(ui->store, rq->user, nw, "ui");
	pthread_mutex_unlock(&ui->store_mu);
	yyjson_doc_free(doc);
	tls_zeroize(rq->body, rq->body_len);
	if (err == -EACCES) {
		ui_rl_fail(&ui->rl, rq->client, now);
		__atomic_fetch_add(&ui->n_login_failures, 1, __ATOMIC_RELAXED);
		ui_reply_error(rq, 403, "the current password is wrong");
		return;
	}
	if (err < 0) {
		ui_reply_error(rq, 500, "cannot save the password");
		return;
	}
	log_info("event=ui_password_changed user=%s client=%s", log_q(rq->user), log_q(rq->client));
	/* every session of the user ended with the change: start this one anew */
	if (ui_session_begin(ui, rq, rq->user) < 0)
		return;
	ui_csrf_token(ui, rq->session, csrf);
	jw_init(&w, &rq->out);
	jw_obj(&w);
	jw_kbool(&w, "ok", true);
	jw_kstr(&w, "message", "password changed; other sessions were logged out");
	jw_kstr(&w, "csrf", csrf);
	jw_obj_end(&w);
	finish(rq, &w);
}

static void api_certificate(struct ui *ui, struct ui_req *rq)
{
	struct diag d = {0};
	yyjson_doc *doc;
	const char *cert, *key;
	char line[600];
	int err;

	if (!(doc = ui_req_json(rq)))
		return;
	cert = yyjson_get_str(yyjson_obj_get(yyjson_doc_get_root(doc), "cert_pem"));
	key = yyjson_get_str(yyjson_obj_get(yyjson_doc_get_root(doc), "key_pem"));
	if (!cert || !key || !*cert || !*key) {
		yyjson_doc_free(doc);
		tls_zeroize(rq->body, rq->body_len);
		ui_reply_error(rq, 400, "cert_pem and key_pem are required");
		return;
	}
	err = ui_cert_replace(ui, cert, key, &d);
	yyjson_doc_free(doc);
	tls_zeroize(rq->body, rq->body_len);
	if (err < 0) {
		ui_reply_error(rq, 422,
			       d.n ? diag_format(&d.v[0], line, sizeof(line))
				   : "the certificate or key is not valid");
		diag_fini(&d);
		return;
	}
	diag_fini(&d);
	pthread_mutex_lock(&ui->store_mu);
	store_audit(ui->store, "ui", rq->user, "replaced the UI certificate");
	pthread_mutex_unlock(&ui->store_mu);
	reply_result(rq, 0, "", "certificate saved; new connections use it");
}

/* -------- events -------- */

static const char *level_name(enum log_level l)
{
	static const char *const n[] = {"error", "warn", "info", "debug"};

	return (unsigned)l < 4 ? n[l] : "info";
}

static void api_events(struct ui *ui, struct ui_req *rq)
{
	uint64_t after = arg_u64(rq, "after", 0);
	struct ui_event *ev = calloc(200, sizeof(*ev));
	struct store_audit_entry *au = NULL;
	struct arena *a = arena_new(0);
	size_t n = 0, na = 0;
	struct jw w;

	if (!ev || !a) {
		free(ev);
		arena_free(a);
		ui_reply_error(rq, 500, "out of memory");
		return;
	}
	n = ui_events_copy(ui->events, after, ev, 200);
	pthread_mutex_lock(&ui->store_mu);
	if (store_audit_list(ui->store, 0, 50, a, &au, &na) < 0)
		na = 0;
	pthread_mutex_unlock(&ui->store_mu);
	jw_init(&w, &rq->out);
	jw_obj(&w);
	jw_key(&w, "events");
	jw_arr(&w);
	for (size_t i = 0; i < n; i++) {
		jw_obj(&w);
		jw_ku64(&w, "seq", ev[i].seq);
		jw_kstr(&w, "level", level_name(ev[i].level));
		jw_kstr(&w, "line", ev[i].line);
		jw_obj_end(&w);
	}
	jw_arr_end(&w);
	jw_key(&w, "audit");
	jw_arr(&w);
	for (size_t i = 0; i < na; i++) {
		jw_obj(&w);
		jw_ku64(&w, "id", au[i].id);
		jw_ku64(&w, "time_ms", au[i].time_ms);
		jw_kstr(&w, "source", au[i].source);
		jw_kstr(&w, "user", au[i].user);
		jw_kstr(&w, "summary", au[i].summary);
		jw_obj_end(&w);
	}
	jw_arr_end(&w);
	jw_obj_end(&w);
	finish(rq, &w);
	arena_free(a);
	free(ev);
}

/* -------- the table -------- */

bool ui_api_dispatch(struct ui *ui, struct ui_req *rq)
{
	const char *p = rq->url;
	bool get = strcmp(rq->method, "POST") != 0;

	if (get) {
		if (!strcmp(p, "/api/overview"))
			api_overview(ui, rq);
		else if (!strcmp(p, "/api/gateways"))
			api_gateways(ui, rq);
		else if (!strcmp(p, "/api/routes"))
			api_routes(ui, rq);
		else if (!strcmp(p, "/api/backends"))
			api_backends(ui, rq);
		else if (!strcmp(p, "/api/traffic"))
			api_traffic(ui, rq);
		else if (!strcmp(p, "/api/revisions"))
			api_revisions(ui, rq);
		else if (!strcmp(p, "/api/revision"))
			api_revision(ui, rq);
		else if (!strcmp(p, "/api/diff"))
			api_diff(ui, rq);
		else if (!strcmp(p, "/api/object"))
			api_object(ui, rq);
		else if (!strcmp(p, "/api/settings"))
			api_settings_get(ui, rq);
		else if (!strcmp(p, "/api/events"))
			api_events(ui, rq);
		else
			return false;
		return true;
	}
	if (!strcmp(p, "/api/pin"))
		api_pin(ui, rq, false);
	else if (!strcmp(p, "/api/unpin"))
		api_pin(ui, rq, true);
	else if (!strcmp(p, "/api/settings/kubeconfig"))
		api_kubeconfig(ui, rq);
	else if (!strcmp(p, "/api/settings/mode"))
		api_mode(ui, rq);
	else if (!strcmp(p, "/api/settings/password"))
		api_password(ui, rq);
	else if (!strcmp(p, "/api/settings/certificate"))
		api_certificate(ui, rq);
	else
		return false;
	return true;
}
