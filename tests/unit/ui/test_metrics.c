/* SPDX-License-Identifier: MIT */
/*
 * test_metrics.c: the /metrics text (src/ui/metrics.c): every sample line
 * follows the Prometheus text format 0.0.4 (checked by a small line parser
 * here), histogram buckets are cumulative and end with +Inf = _count, label
 * values from the cluster are escaped.
 */
#include <stdlib.h>

#include "check.h"
#include "proxy/snapshot_types.h"
#include "ui/internal.h"

/* Parses one exposition line: comment, or name{labels} value. Returns true
 * when it is well-formed; name/labels/value copied out for samples. */
static bool parse_line(const char *l, char *name, size_t nsz, char *value, size_t vsz)
{
	size_t i = 0, n = 0;

	if (l[0] == '#')
		return !strncmp(l, "# HELP ", 7) || !strncmp(l, "# TYPE ", 7);
	if (!((l[0] >= 'a' && l[0] <= 'z') || (l[0] >= 'A' && l[0] <= 'Z') || l[0] == '_'))
		return false;
	while (l[i] && l[i] != '{' && l[i] != ' ') {
		char c = l[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == ':'))
			return false;
		if (n + 1 < nsz)
			name[n++] = c;
		i++;
	}
	name[n] = '\0';
	if (l[i] == '{') {
		i++;
		for (;;) {
			while ((l[i] >= 'a' && l[i] <= 'z') || l[i] == '_')
				i++;
			if (l[i] != '=' || l[i + 1] != '"')
				return false;
			i += 2;
			while (l[i] && l[i] != '"') {
				if (l[i] == '\\') {
					if (l[i + 1] != '\\' && l[i + 1] != '"' && l[i + 1] != 'n')
						return false;
					i++;
				}
				if (l[i] == '\n')
					return false;
				i++;
			}
			if (l[i] != '"')
				return false;
			i++;
			if (l[i] == ',') {
				i++;
				continue;
			}
			if (l[i] != '}')
				return false;
			i++;
			break;
		}
	}
	if (l[i] != ' ')
		return false;
	i++;
	{
		char *end;

		strtod(l + i, &end);
		if (end == l + i || *end)
			return false;
	}
	snprintf(value, vsz, "%s", l + i);
	return true;
}

static int lines_ok(char *text, int *samples)
{
	char name[128], value[64];
	int bad = 0;

	*samples = 0;
	for (char *l = strtok(text, "\n"); l; l = strtok(NULL, "\n")) {
		if (!parse_line(l, name, sizeof(name), value, sizeof(value))) {
			fprintf(stderr, "  bad line: %s\n", l);
			bad++;
		} else if (l[0] != '#') {
			(*samples)++;
		}
	}
	return bad;
}

TEST(ui_metrics_format_parses)
{
	struct ui_stats st = {.requests = 100,
			      .bytes_in = 5,
			      .bytes_out = 7,
			      .upstream_errors = 2,
			      .active_connections = 3,
			      .total_connections = 9,
			      .latency_sum_us = 1500000};
	struct ui_route_stats rs[3] = {{.route = "default/web",
					.rule = 1,
					.requests = 60,
					.responses_by_class = {0, 0, 50, 0, 0, 9},
					.bytes_in = 600,
					.bytes_out = 6000,
					.latency_buckets = {40, 10, 0, 0, 5, 4},
					.latency_sum_us = 2500000,
					.upstream_errors = 3},
				       {.route = "ns/\"evil\"\\\n<x>", .requests = 40},
				       {.route = "default/idle"}};
	struct ui_cluster cl = {.mode = UI_MODE_CLUSTER,
				.connected = true,
				.n_watches = 1,
				.last_sync_ms = 1700000000123ull};
	struct ui_metrics_in in = {.stats = &st,
				   .routes = rs,
				   .n_routes = 3,
				   .cluster = &cl,
				   .store_revision = 12,
				   .serving_revision = 11};
	struct buf b = {0};
	int samples = 0;

	st.responses_by_class[2] = 90;
	st.responses_by_class[5] = 10;
	st.latency_buckets[0] = 50;
	st.latency_buckets[3] = 30;
	st.latency_buckets[11] = 20;
	st.ports[0].port = 443;
	st.ports[0].active = 5;
	st.ports[1].port = 8080;
	st.n_ports = 2;
	snprintf(cl.watches[0].resource, sizeof(cl.watches[0].resource), "httproutes");
	cl.watches[0].synced = true;
	cl.watches[0].up = true;
	cl.watches[0].events = 7;
	cl.watches[0].relists = 2;
	cl.watches[0].last_event_ms = 1700000001999ull;
	snprintf(cl.watches[0].state, sizeof(cl.watches[0].state), "watching");
	snprintf(cl.watches[1].resource, sizeof(cl.watches[1].resource), "tlsroutes");
	snprintf(cl.watches[1].ns, sizeof(cl.watches[1].ns), "team\"a\"");
	snprintf(cl.watches[1].state, sizeof(cl.watches[1].state), "absent");
	cl.n_watches = 2;
	CHECK_EQ_INT(ui_metrics_format(&b, &in), 0);
	buf_append(&b, "", 1);
	CHECK(strstr(buf_rptr(&b), "waygate_requests_total 100\n"));
	CHECK(strstr(buf_rptr(&b), "waygate_responses_total{code=\"5xx\"} 10\n"));
	CHECK(strstr(buf_rptr(&b), "waygate_request_duration_seconds_bucket{le=\"0.001\"} 50\n"));
	CHECK(strstr(buf_rptr(&b), "waygate_request_duration_seconds_bucket{le=\"0.025\"} 80\n"));
	CHECK(strstr(buf_rptr(&b), "waygate_request_duration_seconds_bucket{le=\"+Inf\"} 100\n"));
	CHECK(strstr(buf_rptr(&b), "waygate_request_duration_seconds_count 100\n"));
	CHECK(strstr(buf_rptr(&b), "waygate_listener_active_connections{port=\"443\"} 5\n"));
	CHECK(strstr(buf_rptr(&b), "waygate_listener_active_connections{port=\"8080\"} 0\n"));
	CHECK(strstr(buf_rptr(&b), "waygate_request_duration_seconds_sum 1.500000\n"));
	CHECK(strstr(buf_rptr(&b), "waygate_route_requests_total{route=\"ns/\\\"evil\\\"\\\\\\n"
				   "<x>\",rule=\"0\"} 40\n"));
	CHECK(strstr(buf_rptr(&b),
		     "waygate_route_requests_total{route=\"default/web\",rule=\"1\"} 60\n"));
	CHECK(strstr(buf_rptr(&b), "waygate_route_responses_total{route=\"default/web\",rule=\"1\","
				   "code=\"5xx\"} 9\n"));
	CHECK(strstr(buf_rptr(&b),
		     "waygate_route_active_requests{route=\"default/web\",rule=\"1\"} 1\n"));
	CHECK(strstr(buf_rptr(&b),
		     "waygate_route_sent_bytes_total{route=\"default/web\",rule=\"1\"} 6000\n"));
	CHECK(strstr(buf_rptr(&b), "waygate_route_request_duration_seconds_bucket{route=\"default/"
				   "web\",rule=\"1\",le=\"0.1\"} 50\n"));
	CHECK(strstr(buf_rptr(&b), "waygate_route_request_duration_seconds_bucket{route=\"default/"
				   "web\",rule=\"1\",le=\"+Inf\"} 59\n"));
	CHECK(strstr(buf_rptr(&b), "waygate_route_request_duration_seconds_sum{route=\"default/"
				   "web\",rule=\"1\"} 2.500000\n"));
	CHECK(strstr(buf_rptr(&b),
		     "waygate_route_upstream_errors_total{route=\"default/web\",rule=\"1\"} 3\n"));
	/* a rule that never saw a request has no series */
	CHECK(!strstr(buf_rptr(&b), "default/idle"));
	CHECK(strstr(buf_rptr(&b),
		     "waygate_watch_synced{resource=\"httproutes\",namespace=\"\"} 1\n"));
	CHECK(strstr(buf_rptr(&b), "waygate_watch_up{resource=\"httproutes\",namespace=\"\"} 1\n"));
	CHECK(strstr(buf_rptr(&b), "waygate_watch_state{resource=\"httproutes\",namespace=\"\","
				   "state=\"watching\"} 1\n"));
	CHECK(strstr(buf_rptr(&b), "waygate_watch_state{resource=\"httproutes\",namespace=\"\","
				   "state=\"backoff\"} 0\n"));
	CHECK(strstr(buf_rptr(&b), "waygate_watch_events_total{resource=\"httproutes\","
				   "namespace=\"\"} 7\n"));
	CHECK(strstr(buf_rptr(&b), "waygate_watch_relists_total{resource=\"httproutes\","
				   "namespace=\"\"} 2\n"));
	CHECK(strstr(buf_rptr(&b),
		     "waygate_watch_last_event_timestamp_seconds{resource=\"httproutes\","
		     "namespace=\"\"} 1700000001\n"));
	/* an absent resource has a state but no up series; labels escaped */
	CHECK(strstr(buf_rptr(&b),
		     "waygate_watch_state{resource=\"tlsroutes\",namespace=\"team\\\"a"
		     "\\\"\",state=\"absent\"} 1\n"));
	CHECK(!strstr(buf_rptr(&b), "waygate_watch_up{resource=\"tlsroutes\""));
	CHECK(strstr(buf_rptr(&b), "waygate_cluster_last_sync_timestamp_seconds 1700000000\n"));
	CHECK(strstr(buf_rptr(&b), "waygate_store_revision 12\n"));
	CHECK(strstr(buf_rptr(&b), "waygate_serving_revision 11\n"));
	CHECK(strstr(buf_rptr(&b), "# TYPE waygate_request_duration_seconds histogram\n"));
	CHECK_EQ_INT(lines_ok(buf_rptr(&b), &samples), 0);
	CHECK(samples > 30);
	buf_release(&b);
}

TEST(ui_metrics_listeners_from_snapshot)
{
	struct snap_listener l = {
		.gateway = "default/gw", .name = "http", .proto = SNAP_P_HTTP, .n_http_rules = 3};
	struct snap_listener *lp = &l;
	struct snap_socket so = {
		.addr = "0.0.0.0", .port = 8080, .listeners = &lp, .n_listeners = 1};
	struct snapshot s = {.listeners = &l, .n_listeners = 1, .sockets = &so, .n_sockets = 1};
	struct ui_metrics_in in = {.snap = &s};
	struct buf b = {0};
	int samples;

	CHECK_EQ_INT(ui_metrics_format(&b, &in), 0);
	buf_append(&b, "", 1);
	CHECK(strstr(buf_rptr(&b), "waygate_listener_info{gateway=\"default/gw\",listener=\"http\","
				   "protocol=\"HTTP\",address=\"0.0.0.0\",port=\"8080\"} 1\n"));
	CHECK(strstr(buf_rptr(&b),
		     "waygate_listener_rules{gateway=\"default/gw\",listener=\"http\","
		     "protocol=\"HTTP\",address=\"0.0.0.0\",port=\"8080\"} 3\n"));
	/* no stats: zeros, still valid */
	CHECK(strstr(buf_rptr(&b), "waygate_requests_total 0\n"));
	CHECK_EQ_INT(lines_ok(buf_rptr(&b), &samples), 0);
	buf_release(&b);
}

TEST(ui_metrics_label_escape)
{
	struct buf b = {0};

	ui_metrics_label(&b, "a\\b\"c\nd");
	CHECK_EQ_MEM(buf_rptr(&b), buf_len(&b), "a\\\\b\\\"c\\nd");
	buf_release(&b);
}

TEST(ui_percentiles_from_buckets)
{
	uint64_t b[UI_LATENCY_BUCKETS] = {0};

	CHECK_EQ_INT(ui_percentile_ms(b, 50), 0);
	b[0] = 90; /* <= 1 ms */
	b[6] = 9;  /* <= 250 ms */
	b[11] = 1; /* +Inf */
	CHECK_EQ_INT(ui_percentile_ms(b, 50), 1);
	CHECK_EQ_INT(ui_percentile_ms(b, 90), 1);
	CHECK_EQ_INT(ui_percentile_ms(b, 99), 250);
	CHECK_EQ_INT(ui_percentile_ms(b, 100), 10000);
}
