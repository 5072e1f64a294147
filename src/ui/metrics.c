/* SPDX-License-Identifier: MIT */
/*
 * metrics.c: the Prometheus text exposition (format 0.0.4) served at
 * /metrics: data-plane counters (requests, responses by class, a latency
 * histogram, bytes, upstream errors, connections), per-route counters,
 * listeners of the serving snapshot, cluster watch state and store
 * revisions. Pure formatting of figures gathered by the caller; no I/O.
 * Label values from the cluster are escaped as the format requires. Runs on
 * the libmicrohttpd thread.
 */
#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "proxy/snapshot_types.h"
#include "ui/internal.h"

/* Bucket upper bounds in seconds, as text, for ui_stats.latency_buckets
 * (1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000 ms, +Inf). */
static const char *const le_s[UI_LATENCY_BUCKETS] = {
	"0.001", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "+Inf",
};

static uint32_t percentile(const uint64_t *buckets, const uint32_t *upper, int n, unsigned pct)
{
	uint64_t total = 0, cum = 0, want;

	for (int i = 0; i < n; i++)
		total += buckets[i];
	if (total == 0)
		return 0;
	want = (total * pct + 99) / 100;
	if (want == 0)
		want = 1;
	for (int i = 0; i < n; i++) {
		cum += buckets[i];
		if (cum >= want)
			return upper[i];
	}
	return upper[n - 1];
}

uint32_t ui_percentile_ms(const uint64_t buckets[UI_LATENCY_BUCKETS], unsigned pct)
{
	static const uint32_t upper[UI_LATENCY_BUCKETS] = {1,   5,   10,   25,   50,   100,
							   250, 500, 1000, 2500, 5000, 10000};

	return percentile(buckets, upper, UI_LATENCY_BUCKETS, pct);
}

uint32_t ui_route_percentile_ms(const uint64_t buckets[UI_ROUTE_LATENCY_BUCKETS], unsigned pct)
{
	static const uint32_t upper[UI_ROUTE_LATENCY_BUCKETS] = {5, 25, 100, 500, 2500, 10000};

	return percentile(buckets, upper, UI_ROUTE_LATENCY_BUCKETS, pct);
}

int ui_metrics_label(struct buf *b, const char *v)
{
	int err = 0;

	for (const char *p = v ? v : ""; *p && !err; p++) {
		if (*p == '\\')
			err = buf_append(b, "\\\\", 2);
		else if (*p == '"')
			err = buf_append(b, "\\\"", 2);
		else if (*p == '\n')
			err = buf_append(b, "\\n", 2);
		else
			err = buf_append(b, p, 1);
	}
	return err;
}

static int head(struct buf *b, const char *name, const char *type, const char *help)
{
	return buf_appendf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static int sample(struct buf *b, const char *name, uint64_t v)
{
	return buf_appendf(b, "%s %" PRIu64 "\n", name, v);
}

/* name{label="value"} v, with the value escaped. */
static int sample1(struct buf *b, const char *name, const char *label, const char *value,
		   uint64_t v)
{
	int err = buf_appendf(b, "%s{%s=\"", name, label);

	if (!err)
		err = ui_metrics_label(b, value);
	if (!err)
		err = buf_appendf(b, "\"} %" PRIu64 "\n", v);
	return err;
}

static const char *proto_name(enum snap_proto p)
{
	switch (p) {
	case SNAP_P_HTTP: return "HTTP";
	case SNAP_P_HTTPS: return "HTTPS";
	case SNAP_P_TLS: return "TLS";
	case SNAP_P_TCP: return "TCP";
	case SNAP_P_UDP: return "UDP";
	}
	return "unknown";
}

static int stats_part(struct buf *b, const struct ui_stats *st)
{
	static const char *const cls[6] = {"none", "1xx", "2xx", "3xx", "4xx", "5xx"};
	uint64_t cum = 0;
	int err = 0;

	err |= head(b, "waygate_requests_total", "counter", "Requests received by the data plane.");
	err |= sample(b, "waygate_requests_total", st->requests);
	err |= head(b, "waygate_responses_total", "counter", "Responses sent, by status class.");
	for (int i = 0; i < 6; i++)
		err |= sample1(b, "waygate_responses_total", "code", cls[i],
			       st->responses_by_class[i]);
	err |= head(b, "waygate_request_duration_seconds", "histogram",
		    "Time from the request head to the end of the response.");
	for (int i = 0; i < UI_LATENCY_BUCKETS; i++) {
		cum += st->latency_buckets[i];
		err |= buf_appendf(
			b, "waygate_request_duration_seconds_bucket{le=\"%s\"} %" PRIu64 "\n",
			le_s[i], cum);
	}
	err |= buf_appendf(b, "waygate_request_duration_seconds_sum %" PRIu64 ".%06" PRIu64 "\n",
			   st->latency_sum_us / 1000000, st->latency_sum_us % 1000000);
	err |= sample(b, "waygate_request_duration_seconds_count", cum);
	err |= head(b, "waygate_received_bytes_total", "counter", "Bytes received from clients.");
	err |= sample(b, "waygate_received_bytes_total", st->bytes_in);
	err |= head(b, "waygate_sent_bytes_total", "counter", "Bytes sent to clients.");
	err |= sample(b, "waygate_sent_bytes_total", st->bytes_out);
	err |= head(b, "waygate_upstream_errors_total", "counter",
		    "Failures to connect to or read from a backend.");
	err |= sample(b, "waygate_upstream_errors_total", st->upstream_errors);
	err |= head(b, "waygate_active_connections", "gauge", "Client connections open now.");
	err |= sample(b, "waygate_active_connections", st->active_connections);
	err |= head(b, "waygate_listener_active_connections", "gauge",
		    "Client connections open now, per listener port.");
	for (size_t i = 0; i < st->n_ports && i < UI_MAX_PORTS; i++)
		err |= buf_appendf(b, "waygate_listener_active_connections{port=\"%u\"} %u\n",
				   st->ports[i].port, st->ports[i].active);
	err |= head(b, "waygate_connections_total", "counter", "Client connections accepted.");
	err |= sample(b, "waygate_connections_total", st->total_connections);
	return err ? -ENOMEM : 0;
}

/* name{route="ns/name",rule="N"[,extra="value"]} then the value, which
 * the caller writes. */
static int route_series(struct buf *b, const char *name, const struct ui_route_stats *r,
			const char *extra, const char *value)
{
	int err = buf_appendf(b, "%s{route=\"", name);

	err |= ui_metrics_label(b, r->route);
	err |= buf_appendf(b, "\",rule=\"%u\"", r->rule);
	if (extra)
		err |= buf_appendf(b, ",%s=\"%s\"", extra, value);
	err |= buf_append_str(b, "} ");
	return err;
}

/* Per route rule, for the rules that have seen a request (an idle rule of a
 * large configuration costs no series). */
static int routes_part(struct buf *b, const struct ui_route_stats *r, size_t n)
{
	static const char *const cls[6] = {"none", "1xx", "2xx", "3xx", "4xx", "5xx"};
	static const char *const le[UI_ROUTE_LATENCY_BUCKETS] = {"0.005", "0.025", "0.1",
								 "0.5",   "2.5",   "+Inf"};
	int err = 0;

	err |= head(b, "waygate_route_requests_total", "counter",
		    "Requests routed to a route rule (TCP and TLS routes: connections, UDP "
		    "routes: sessions).");
	for (size_t i = 0; i < n; i++)
		if (r[i].requests) {
			err |= route_series(b, "waygate_route_requests_total", &r[i], NULL, NULL);
			err |= buf_appendf(b, "%" PRIu64 "\n", r[i].requests);
		}
	err |= head(b, "waygate_route_responses_total", "counter",
		    "Responses to a route rule's requests, by status class.");
	for (size_t i = 0; i < n; i++)
		for (int k = 0; r[i].requests && k < 6; k++) {
			err |= route_series(b, "waygate_route_responses_total", &r[i], "code",
					    cls[k]);
			err |= buf_appendf(b, "%" PRIu64 "\n", r[i].responses_by_class[k]);
		}
	err |= head(b, "waygate_route_received_bytes_total", "counter",
		    "Bytes received from clients, per route rule.");
	for (size_t i = 0; i < n; i++)
		if (r[i].requests) {
			err |= route_series(b, "waygate_route_received_bytes_total", &r[i], NULL,
					    NULL);
			err |= buf_appendf(b, "%" PRIu64 "\n", r[i].bytes_in);
		}
	err |= head(b, "waygate_route_sent_bytes_total", "counter",
		    "Bytes sent to clients, per route rule.");
	for (size_t i = 0; i < n; i++)
		if (r[i].requests) {
			err |= route_series(b, "waygate_route_sent_bytes_total", &r[i], NULL, NULL);
			err |= buf_appendf(b, "%" PRIu64 "\n", r[i].bytes_out);
		}
	err |= head(b, "waygate_route_upstream_errors_total", "counter",
		    "Failed attempts at a backend (connect, read, timeout), per route rule.");
	for (size_t i = 0; i < n; i++)
		if (r[i].requests) {
			err |= route_series(b, "waygate_route_upstream_errors_total", &r[i], NULL,
					    NULL);
			err |= buf_appendf(b, "%" PRIu64 "\n", r[i].upstream_errors);
		}
	err |= head(b, "waygate_route_active_requests", "gauge",
		    "Requests of a route rule without a response yet.");
	for (size_t i = 0; i < n; i++) {
		uint64_t done = 0;

		if (!r[i].requests)
			continue;
		for (int k = 0; k < 6; k++)
			done += r[i].responses_by_class[k];
		err |= route_series(b, "waygate_route_active_requests", &r[i], NULL, NULL);
		err |= buf_appendf(b, "%" PRIu64 "\n",
				   r[i].requests > done ? r[i].requests - done : 0);
	}
	err |= head(b, "waygate_route_request_duration_seconds", "histogram",
		    "Time from the request head to the end of the response, per route rule.");
	for (size_t i = 0; i < n; i++) {
		uint64_t cum = 0;

		if (!r[i].requests)
			continue;
		for (int k = 0; k < UI_ROUTE_LATENCY_BUCKETS; k++) {
			cum += r[i].latency_buckets[k];
			err |= route_series(b, "waygate_route_request_duration_seconds_bucket",
					    &r[i], "le", le[k]);
			err |= buf_appendf(b, "%" PRIu64 "\n", cum);
		}
		err |= route_series(b, "waygate_route_request_duration_seconds_sum", &r[i], NULL,
				    NULL);
		err |= buf_appendf(b, "%" PRIu64 ".%06" PRIu64 "\n", r[i].latency_sum_us / 1000000,
				   r[i].latency_sum_us % 1000000);
		err |= route_series(b, "waygate_route_request_duration_seconds_count", &r[i], NULL,
				    NULL);
		err |= buf_appendf(b, "%" PRIu64 "\n", cum);
	}
	return err ? -ENOMEM : 0;
}

static int listeners_part(struct buf *b, const struct snapshot *s)
{
	int err = 0;

	err |= head(b, "waygate_listener_info", "gauge",
		    "Listeners served, one series per Gateway listener and bound port.");
	err |= head(b, "waygate_listener_rules", "gauge",
		    "Route rules (or routes) attached to a listener.");
	for (size_t i = 0; s && i < s->n_sockets; i++) {
		const struct snap_socket *so = &s->sockets[i];

		for (size_t j = 0; j < so->n_listeners; j++) {
			const struct snap_listener *l = so->listeners[j];
			size_t rules = l->n_http_rules + l->n_tls_routes + (l->l4_route ? 1 : 0);

			for (int k = 0; k < 2; k++) {
				err |= buf_appendf(b, "%s{gateway=\"",
						   k ? "waygate_listener_rules"
						     : "waygate_listener_info");
				err |= ui_metrics_label(b, l->gateway);
				err |= buf_append_str(b, "\",listener=\"");
				err |= ui_metrics_label(b, l->name);
				err |= buf_appendf(b, "\",protocol=\"%s\",address=\"",
						   proto_name(l->proto));
				err |= ui_metrics_label(b, so->addr);
				err |= buf_appendf(b, "\",port=\"%u\"} %zu\n", so->port,
						   k ? rules : (size_t)1);
			}
		}
	}
	return err ? -ENOMEM : 0;
}

/* name{resource="httproutes",namespace="ns"[,state="x"]} then the value. */
static int watch_series(struct buf *b, const char *name, const struct ui_watch *x,
			const char *state)
{
	int err = buf_appendf(b, "%s{resource=\"", name);

	err |= ui_metrics_label(b, x->resource);
	err |= buf_append_str(b, "\",namespace=\"");
	err |= ui_metrics_label(b, x->ns);
	if (state) {
		err |= buf_append_str(b, "\",state=\"");
		err |= ui_metrics_label(b, state);
	}
	err |= buf_append_str(b, "\"} ");
	return err;
}

/* One set of series per watch (resource, and namespace with --namespace). */
static int watches_part(struct buf *b, const struct ui_cluster *c)
{
	static const char *const states[] = {"waiting", "listing", "watching", "backoff", "absent"};
	size_t n = c->n_watches < UI_MAX_WATCHES ? c->n_watches : UI_MAX_WATCHES;
	const struct ui_watch *w = c->watches;
	int err = 0;

	err |= head(b, "waygate_watch_up", "gauge",
		    "1 while the watch stream of a resource is open (resources the server does "
		    "not serve are left out).");
	for (size_t i = 0; i < n; i++)
		if (strcmp(w[i].state, "absent") != 0) {
			err |= watch_series(b, "waygate_watch_up", &w[i], NULL);
			err |= buf_appendf(b, "%d\n", w[i].up);
		}
	err |= head(b, "waygate_watch_state", "gauge", "1 for the state a watch is in.");
	for (size_t i = 0; i < n; i++)
		for (size_t k = 0; k < sizeof(states) / sizeof(states[0]); k++) {
			err |= watch_series(b, "waygate_watch_state", &w[i], states[k]);
			err |= buf_appendf(b, "%d\n", !strcmp(w[i].state, states[k]));
		}
	err |= head(b, "waygate_watch_synced", "gauge",
		    "1 once a resource has been listed completely.");
	for (size_t i = 0; i < n; i++) {
		err |= watch_series(b, "waygate_watch_synced", &w[i], NULL);
		err |= buf_appendf(b, "%d\n", w[i].synced);
	}
	err |= head(b, "waygate_watch_last_event_timestamp_seconds", "gauge",
		    "Wall clock of a watch's last completed list or event (0 = never).");
	for (size_t i = 0; i < n; i++) {
		err |= watch_series(b, "waygate_watch_last_event_timestamp_seconds", &w[i], NULL);
		err |= buf_appendf(b, "%" PRIu64 "\n", w[i].last_event_ms / 1000);
	}
	static const struct {
		const char *name, *help;
		size_t off;
	} counters[] = {
		{"waygate_watch_events_total", "Watch events received.",
		 offsetof(struct ui_watch, events)},
		{"waygate_watch_lists_total", "Complete lists of a resource.",
		 offsetof(struct ui_watch, lists)},
		{"waygate_watch_relists_total", "Lists after the watch history expired (410 Gone).",
		 offsetof(struct ui_watch, relists)},
		{"waygate_watch_errors_total", "Failed list or watch requests and broken streams.",
		 offsetof(struct ui_watch, errors)},
	};
	for (size_t k = 0; k < sizeof(counters) / sizeof(counters[0]); k++) {
		err |= head(b, counters[k].name, "counter", counters[k].help);
		for (size_t i = 0; i < n; i++) {
			uint64_t v;

			memcpy(&v, (const char *)&w[i] + counters[k].off, sizeof(v));
			err |= watch_series(b, counters[k].name, &w[i], NULL);
			err |= buf_appendf(b, "%" PRIu64 "\n", v);
		}
	}
	return err;
}

static int cluster_part(struct buf *b, const struct ui_cluster *c)
{
	int err = 0;

	err |= head(b, "waygate_cluster_mode", "gauge", "1 in cluster mode, 0 in local mode.");
	err |= sample(b, "waygate_cluster_mode", c->mode == UI_MODE_CLUSTER);
	err |= head(b, "waygate_cluster_connected", "gauge",
		    "1 while the API server is reachable.");
	err |= sample(b, "waygate_cluster_connected", c->connected);
	err |= head(b, "waygate_cluster_last_sync_timestamp_seconds", "gauge",
		    "Wall clock of the last successful sync (0 = never).");
	err |= sample(b, "waygate_cluster_last_sync_timestamp_seconds", c->last_sync_ms / 1000);
	err |= watches_part(b, c);
	return err ? -ENOMEM : 0;
}

int ui_metrics_format(struct buf *b, const struct ui_metrics_in *in)
{
	static const struct ui_stats zero_stats;
	int err = 0;

	err |= stats_part(b, in->stats ? in->stats : &zero_stats);
	err |= routes_part(b, in->routes, in->n_routes);
	err |= listeners_part(b, in->snap);
	if (in->cluster)
		err |= cluster_part(b, in->cluster);
	err |= head(b, "waygate_store_revision", "gauge", "Newest revision in the store.");
	err |= sample(b, "waygate_store_revision", in->store_revision);
	err |= head(b, "waygate_serving_revision", "gauge", "Revision being served.");
	err |= sample(b, "waygate_serving_revision", in->serving_revision);
	err |= head(b, "waygate_pinned_revision", "gauge", "Pinned revision (0 = none).");
	err |= sample(b, "waygate_pinned_revision", in->pinned_revision);
	err |= head(b, "waygate_uptime_seconds", "gauge", "Seconds since the UI started.");
	err |= sample(b, "waygate_uptime_seconds", in->uptime_s);
	err |= head(b, "waygate_ui_requests_total", "counter", "Requests to the admin UI.");
	err |= sample(b, "waygate_ui_requests_total", in->ui_requests);
	err |= head(b, "waygate_ui_login_failures_total", "counter", "Failed UI logins.");
	err |= sample(b, "waygate_ui_login_failures_total", in->ui_login_failures);
	return err ? -ENOMEM : 0;
}
