/* SPDX-License-Identifier: MIT */
/*
 * harness.c: runs the real UI module (src/ui/, linked from libwaygate.a)
 * against a stand-in control thread, so the browser tests do not depend on
 * the rest of the data path. It creates a store in --state-dir, commits
 * seed revisions (a Gateway, routes, and a Secret whose key carries a
 * marker that must never appear in a page), serves hand-built snapshots,
 * fakes counters that grow with time, and answers the UI's callbacks:
 * pinning serves the pinned revision's snapshot ("traffic follows it").
 *
 * Commands on stdin, one per line (the test driver's "cluster"):
 *   add-route NAME     a new revision with one more HTTPRoute default/NAME
 *   quit               stop
 * It also stops on SIGTERM/SIGINT or end of input.
 *
 * usage: harness --state-dir DIR [--listen ADDR:PORT] [--session-idle-s N]
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/arena.h"
#include "core/diag.h"
#include "core/log.h"
#include "core/loop.h"
#include "gwapi/objset.h"
#include "gwapi/reconcile.h"
#include "proxy/snapshot.h"
#include "store/store.h"
#include "tls/tls.h"
#include "ui/ui.h"

#define SECRET_MARKER "WG-SECRET-MARKER-7f3a"
#define PAYLOAD "<img src=x onerror=\"document.title='pwned'\"><script>window.pwned=1</script>"
#define MAX_ROUTES 32

struct harness {
	pthread_mutex_t mu;
	struct store *store;
	struct gw_objset *set;
	struct snapshot *current;
	uint64_t serving;
	uint64_t pinned;
	char routes[MAX_ROUTES][64]; /* route names of the newest revision */
	char full[MAX_ROUTES][80];   /* the same as "default/NAME" (route counters) */
	size_t n_routes;
	/* revision -> number of routes it holds */
	uint64_t rev_of[64];
	size_t routes_at[64];
	size_t n_revs;
	uint64_t started_ms;
	char *cert_pem; /* a real certificate valid for 20 days (its key is dropped) */
};

static struct harness H;

/* -------- snapshots by hand -------- */

static struct snap_backend *backend(struct arena *a, const char *name, const char *ip,
				    uint16_t port, uint32_t weight)
{
	struct snap_backend *b = arena_zalloc(a, sizeof(*b));

	b->name = arena_strdup(a, name);
	b->weight = weight;
	b->endpoints = arena_zalloc(a, sizeof(*b->endpoints));
	snprintf(b->endpoints[0].addr, sizeof(b->endpoints[0].addr), "%s", ip);
	b->endpoints[0].port = port;
	b->n_endpoints = 1;
	return b;
}

/* A snapshot with the first n routes of names[] on one HTTP and one HTTPS
 * listener. */
static struct snapshot *build_snapshot(uint64_t rev, char names[][64], size_t n)
{
	struct arena *a = arena_new(0);
	struct snapshot *s = arena_zalloc(a, sizeof(*s));
	struct snap_listener *l = arena_zalloc(a, 2 * sizeof(*l));
	struct snap_socket *so = arena_zalloc(a, 2 * sizeof(*so));

	s->refs = 1;
	s->arena = a;
	s->revision = rev;
	s->compiled_ms = clock_wall_ms();
	for (int k = 0; k < 2; k++) {
		l[k].gateway = arena_strdup(a, "default/edge");
		l[k].name = arena_strdup(a, k ? "https" : "http");
		l[k].proto = k ? SNAP_P_HTTPS : SNAP_P_HTTP;
		l[k].hostname = k ? arena_strdup(a, "*.example.com") : NULL;
		if (k) {
			l[k].certs = arena_zalloc(a, sizeof(*l[k].certs));
			l[k].certs[0].name = arena_strdup(a, "default/edge-tls");
			l[k].certs[0].cert_pem = arena_strdup(a, H.cert_pem);
			l[k].certs[0].key_pem =
				arena_strdup(a, "-----BEGIN PRIVATE KEY-----\n" SECRET_MARKER
						"\n-----END PRIVATE KEY-----\n");
			l[k].n_certs = 1;
		}
		l[k].http_rules = arena_zalloc(a, (n + 1) * sizeof(*l[k].http_rules));
		for (size_t i = 0; i < n; i++) {
			struct snap_http_rule *r = &l[k].http_rules[l[k].n_http_rules++];
			char be[96];

			r->route = arena_printf(a, "default/%s", names[i]);
			r->hostnames = arena_zalloc(a, sizeof(char *));
			r->hostnames[0] = arena_printf(a, "%s.example.com", names[i]);
			r->n_hostnames = 1;
			r->match.path = arena_strdup(a, "/");
			snprintf(be, sizeof(be), "default/%s-svc:8080", names[i]);
			r->backends = backend(a, be, "127.0.0.1", (uint16_t)(9000 + i), 1);
			r->n_backends = 1;
		}
		/* the payload route: a name no API server would accept, but the UI
		 * must show whatever it is given as text */
		struct snap_http_rule *p = &l[k].http_rules[l[k].n_http_rules++];

		p->route = arena_strdup(a, "default/" PAYLOAD);
		p->hostnames = arena_zalloc(a, sizeof(char *));
		p->hostnames[0] = arena_strdup(a, "payload.example.com");
		p->n_hostnames = 1;
		p->match.path = arena_strdup(a, "/<script>alert(1)</script>");
		p->backends = backend(a, "default/" PAYLOAD ":80", "127.0.0.1", 9999, 1);
		p->n_backends = 1;
		snprintf(so[k].addr, sizeof(so[k].addr), "0.0.0.0");
		so[k].port = k ? 8443 : 8080;
		so[k].listeners = arena_zalloc(a, sizeof(struct snap_listener *));
		so[k].listeners[0] = &l[k];
		so[k].n_listeners = 1;
	}
	s->listeners = l;
	s->n_listeners = 2;
	s->sockets = so;
	s->n_sockets = 2;
	return s;
}

/* -------- the store -------- */

static int put_json(struct gw_objset *set, const char *json)
{
	char err[256];
	struct gw_object *o = gw_object_parse(-1, json, strlen(json), err, sizeof(err));

	if (!o) {
		fprintf(stderr, "harness: bad object: %s\n", err);
		return -EINVAL;
	}
	gw_objset_put(set, o);
	return 0;
}

static int commit(const char *summary)
{
	struct snapshot *s = build_snapshot(0, H.routes, H.n_routes);
	char *json = gw_snapshot_to_json(s);
	uint64_t rev = 0;
	int err = store_commit(H.store, H.set, json, "cluster", NULL, summary, &rev);

	free(json);
	if (err < 0) {
		snap_unref(s);
		fprintf(stderr, "harness: commit failed: %d\n", err);
		return err;
	}
	s->revision = rev;
	if (H.n_revs < 64) {
		H.rev_of[H.n_revs] = rev;
		H.routes_at[H.n_revs] = H.n_routes;
		H.n_revs++;
	}
	if (!H.pinned) {
		snap_unref(H.current);
		H.current = s;
		H.serving = rev;
	} else {
		snap_unref(s);
	}
	log_info("event=harness_commit revision=%llu routes=%zu", (unsigned long long)rev,
		 H.n_routes);
	return 0;
}

static int add_route(const char *name)
{
	char json[1024];

	if (H.n_routes == MAX_ROUTES || strlen(name) >= 60)
		return -EINVAL;
	snprintf(
		json, sizeof(json),
		"{\"apiVersion\":\"gateway.networking.k8s.io/v1\",\"kind\":\"HTTPRoute\","
		"\"metadata\":{\"namespace\":\"default\",\"name\":\"%s\",\"resourceVersion\":\"%"
		"zu\","
		"\"generation\":1},"
		"\"spec\":{\"parentRefs\":[{\"name\":\"edge\"}],\"hostnames\":[\"%s.example.com\"],"
		"\"rules\":[{\"backendRefs\":[{\"name\":\"%s-svc\",\"port\":8080}]}]},"
		"\"status\":{\"parents\":[{\"parentRef\":{\"name\":\"edge\"},"
		"\"controllerName\":\"waygate.dev/gateway-controller\",\"conditions\":["
		"{\"type\":\"Accepted\",\"status\":\"True\",\"reason\":\"Accepted\","
		"\"message\":\"%s\"}]}]}}",
		name, H.n_routes + 10, name, name, "<b>bold</b><script>window.pwned=2</script>");
	if (put_json(H.set, json) < 0)
		return -EINVAL;
	snprintf(H.full[H.n_routes], sizeof(H.full[0]), "default/%s", name);
	snprintf(H.routes[H.n_routes++], sizeof(H.routes[0]), "%s", name);
	return 0;
}

static int seed(void)
{
	static const char gw[] =
		"{\"apiVersion\":\"gateway.networking.k8s.io/v1\",\"kind\":\"Gateway\","
		"\"metadata\":{\"namespace\":\"default\",\"name\":\"edge\",\"resourceVersion\":"
		"\"1\","
		"\"generation\":1},\"spec\":{\"gatewayClassName\":\"waygate\",\"listeners\":["
		"{\"name\":\"http\",\"port\":8080,\"protocol\":\"HTTP\"}]},"
		"\"status\":{\"addresses\":[{\"type\":\"IPAddress\",\"value\":\"192.0.2.10\"}],"
		"\"conditions\":[{\"type\":\"Programmed\",\"status\":\"True\",\"reason\":"
		"\"Programmed\","
		"\"message\":\"<img src=x onerror=alert(3)>\"}],"
		"\"listeners\":[{\"name\":\"http\",\"attachedRoutes\":2,\"conditions\":["
		"{\"type\":\"Accepted\",\"status\":\"True\",\"reason\":\"Accepted\"}]}]}}";
	static const char secret[] =
		"{\"apiVersion\":\"v1\",\"kind\":\"Secret\",\"metadata\":{\"namespace\":"
		"\"default\","
		"\"name\":\"edge-tls\",\"resourceVersion\":\"2\"},\"type\":\"kubernetes.io/tls\","
		"\"data\":{\"tls.crt\":\"Y2VydA==\",\"tls.key\":\"" SECRET_MARKER "\"}}";

	if (put_json(H.set, gw) < 0 || put_json(H.set, secret) < 0)
		return -EINVAL;
	if (add_route("web") < 0 || commit("seed: web") < 0)
		return -EINVAL;
	if (add_route("shop") < 0 || commit("added default/shop") < 0)
		return -EINVAL;
	return 0;
}

/* -------- callbacks (UI thread) -------- */

static struct snapshot *cb_snapshot(void *arg)
{
	struct snapshot *s;
	(void)arg;

	pthread_mutex_lock(&H.mu);
	s = H.current;
	if (s)
		snap_ref(s);
	pthread_mutex_unlock(&H.mu);
	return s;
}

/* Counters that grow with time: 20 requests a second, a few errors. */
static void cb_stats(void *arg, struct ui_stats *o)
{
	uint64_t t = (clock_wall_ms() - H.started_ms) / 100; /* tenths of a second */
	(void)arg;

	memset(o, 0, sizeof(*o));
	o->requests = t * 2;
	o->responses_by_class[2] = t * 2 - t / 10 - t / 20;
	o->responses_by_class[4] = t / 10;
	o->responses_by_class[5] = t / 20;
	o->bytes_in = t * 300;
	o->bytes_out = t * 5000;
	o->upstream_errors = t / 40;
	o->active_connections = 3 + (t % 5);
	o->total_connections = t / 2;
	o->latency_buckets[1] = t;
	o->latency_buckets[3] = t / 2;
	o->latency_buckets[6] = t / 2 - t / 50;
	o->latency_buckets[8] = t / 50;
	o->latency_sum_us = t * 40000;
}

/* Route i: 20 / (i + 1) requests a second, 5 % of them 5xx, one in flight. */
static size_t cb_route_stats(void *arg, struct ui_route_stats *out, size_t max)
{
	uint64_t t = (clock_wall_ms() - H.started_ms) / 100;
	size_t n;
	(void)arg;

	pthread_mutex_lock(&H.mu);
	n = H.n_routes;
	for (size_t i = 0; i < n && i < max; i++) {
		uint64_t req = t * 2 / (i + 1);

		out[i] = (struct ui_route_stats){
			.id = (uint32_t)i + 1,
			.route = H.full[i],
			.requests = req + 1,
			.bytes_in = req * 300,
			.bytes_out = req * 1000,
			.latency_sum_us = req * 8000,
		};
		out[i].responses_by_class[2] = req - req / 20;
		out[i].responses_by_class[5] = req / 20;
		out[i].latency_buckets[1] = req;
	}
	pthread_mutex_unlock(&H.mu);
	return n;
}

/* Four watches: three watching, one backing off after an error. */
static void cb_cluster(void *arg, struct ui_cluster *c)
{
	static const char *const res[] = {"gatewayclasses", "gateways", "httproutes", "services"};
	(void)arg;

	memset(c, 0, sizeof(*c));
	c->mode = UI_MODE_CLUSTER;
	snprintf(c->server, sizeof(c->server), "https://kube.example:6443");
	snprintf(c->context, sizeof(c->context), "edge-admin");
	c->connected = true;
	c->last_sync_ms = clock_wall_ms() - 1500;
	for (size_t i = 0; i < 4; i++) {
		struct ui_watch *w = &c->watches[i];

		snprintf(w->resource, sizeof(w->resource), "%s", res[i]);
		snprintf(w->state, sizeof(w->state), "%s", i == 3 ? "backoff" : "watching");
		snprintf(w->resource_version, sizeof(w->resource_version), "%zu", 1000 + i);
		w->synced = true;
		w->up = i != 3;
		w->events = 10 + i;
		w->lists = 1;
		w->last_event_ms = clock_wall_ms() - 2000;
		if (i == 3) {
			w->errors = 2;
			snprintf(w->last_error, sizeof(w->last_error), "watch: HTTP 500");
		}
	}
	c->n_watches = c->n_watches_total = 4;
	pthread_mutex_lock(&H.mu);
	c->serving_revision = H.serving;
	c->pinned = H.pinned != 0;
	pthread_mutex_unlock(&H.mu);
}

static int cb_pin(void *arg, uint64_t rev, char *msg, size_t msgsz)
{
	size_t routes = H.n_routes;
	int err;
	(void)arg;

	pthread_mutex_lock(&H.mu);
	if (rev) {
		err = store_pin(H.store, rev, "ui", "admin");
		if (err < 0) {
			snprintf(msg, msgsz, "revision %llu does not exist",
				 (unsigned long long)rev);
			pthread_mutex_unlock(&H.mu);
			return err;
		}
		for (size_t i = 0; i < H.n_revs; i++)
			if (H.rev_of[i] == rev)
				routes = H.routes_at[i];
		H.pinned = rev;
	} else {
		store_unpin(H.store, "ui", "admin");
		H.pinned = 0;
		rev = H.n_revs ? H.rev_of[H.n_revs - 1] : 0;
	}
	snap_unref(H.current);
	H.current = build_snapshot(rev, H.routes, routes);
	H.serving = rev;
	snprintf(msg, msgsz, "serving revision %llu", (unsigned long long)rev);
	pthread_mutex_unlock(&H.mu);
	log_info("event=harness_serving revision=%llu pinned=%s", (unsigned long long)rev,
		 H.pinned ? "yes" : "no");
	return 0;
}

static int cb_kubeconfig(void *arg, const char *yaml, size_t len, const char *context, char *msg,
			 size_t msgsz)
{
	(void)arg;
	(void)context;
	if (!memmem(yaml, len, "clusters:", 9)) {
		snprintf(msg, msgsz, "kubeconfig: clusters: is missing");
		return -EINVAL;
	}
	snprintf(msg, msgsz, "connected to https://kube.example:6443 (test stand-in)");
	return 0;
}

static int cb_mode(void *arg, enum ui_mode mode, char *msg, size_t msgsz)
{
	(void)arg;
	snprintf(msg, msgsz, "now in %s mode", mode == UI_MODE_CLUSTER ? "cluster" : "local");
	return 0;
}

/* -------- main -------- */

static void print_diag(const struct diag *d)
{
	char line[1400];

	for (size_t i = 0; i < d->n; i++)
		fprintf(stderr, "harness: %s\n", diag_format(&d->v[i], line, sizeof(line)));
}

static volatile sig_atomic_t stop;

static void on_sig(int s)
{
	(void)s;
	stop = 1;
}

int main(int argc, char **argv)
{
	const char *state = NULL, *listen = "127.0.0.1:0";
	uint32_t idle_s = 0;
	struct diag d = {0};
	struct ui *ui;
	char line[256];
	static const char *const extra_hosts[] = {"waygate.test", NULL};

	for (int i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--state-dir"))
			state = argv[i + 1];
		else if (!strcmp(argv[i], "--listen"))
			listen = argv[i + 1];
		else if (!strcmp(argv[i], "--session-idle-s"))
			idle_s = (uint32_t)atoi(argv[i + 1]);
	}
	if (!state) {
		fprintf(stderr, "usage: harness --state-dir DIR [--listen ADDR:PORT]\n");
		return 2;
	}
	if (getenv("HARNESS_DEBUG"))
		log_set_level(LOG_DEBUG);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGTERM, on_sig);
	signal(SIGINT, on_sig);
	setvbuf(stdout, NULL, _IOLBF, 0);
	mkdir(state, 0700);
	pthread_mutex_init(&H.mu, NULL);
	H.started_ms = clock_wall_ms();
	{
		static const char *const sans[] = {"edge.example.com"};
		char *key = NULL;

		if (tls_gen_selfsigned("edge.example.com", sans, 1, 20, &H.cert_pem, &key) < 0) {
			fprintf(stderr, "harness: cannot generate a certificate\n");
			return 1;
		}
		tls_free_secret(key);
	}
	H.store = store_open(state, &d);
	H.set = gw_objset_new();
	if (!H.store || !H.set || seed() < 0) {
		print_diag(&d);
		return 1;
	}
	struct ui_config cfg = {
		.listen = listen,
		.state_dir = state,
		.allowed_hosts = extra_hosts,
		.version = "test",
		.board = "harness",
		.session_idle_s = idle_s,
		.cb = {.get_snapshot = cb_snapshot,
		       .get_stats = cb_stats,
		       .get_route_stats = cb_route_stats,
		       .get_cluster = cb_cluster,
		       .pin_revision = cb_pin,
		       .apply_kubeconfig = cb_kubeconfig,
		       .set_mode = cb_mode},
	};
	ui = ui_start(&cfg, &d);
	if (!ui) {
		print_diag(&d);
		return 1;
	}
	while (!stop && fgets(line, sizeof(line), stdin)) {
		line[strcspn(line, "\r\n")] = '\0';
		if (!strncmp(line, "add-route ", 10)) {
			pthread_mutex_lock(&H.mu);
			if (add_route(line + 10) == 0)
				commit("cluster change");
			pthread_mutex_unlock(&H.mu);
			printf("ok\n");
		} else if (!strcmp(line, "quit")) {
			break;
		}
	}
	ui_stop(ui);
	pthread_mutex_lock(&H.mu);
	snap_unref(H.current);
	pthread_mutex_unlock(&H.mu);
	gw_objset_free(H.set);
	store_close(H.store);
	diag_fini(&d);
	free(H.cert_pem);
	return 0;
}
