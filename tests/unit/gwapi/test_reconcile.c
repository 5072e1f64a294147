/* SPDX-License-Identifier: MIT */
/*
 * test_reconcile.c: reconcile end to end on small object sets: statuses of
 * GatewayClass, Gateway, listeners and routes, the compiled snapshot
 * (sockets, rules, backends, endpoints), addresses from the pool, listener
 * validation and conflicts, ReferenceGrants, precedence across routes, and
 * the time bound for 10,000 routes.
 */
#include <time.h>

#include "gwtest.h"

#define GW_HTTP(name, extra)                                                                       \
	"{'apiVersion':'gateway.networking.k8s.io/v1','kind':'Gateway','metadata':{"               \
	"'namespace':'infra','name':'" name "','generation':2,"                                    \
	"'creationTimestamp':'2026-01-01T00:00:00Z'},'spec':{'gatewayClassName':'wg',"             \
	"'listeners':[{'name':'http','port':80,'protocol':'HTTP'" extra "}]}}"

#define ROUTE(ns, name, ts, spec)                                                                  \
	"{'apiVersion':'gateway.networking.k8s.io/v1','kind':'HTTPRoute','metadata':{"             \
	"'namespace':'" ns "','name':'" name "','generation':3,'creationTimestamp':'" ts           \
	"'},'spec':" spec "}"

TEST(gw_reconcile_basic_http)
{
	struct gw_objset *set = gw_objset_new();
	struct gw_result res = {0};

	gwt_base(set);
	gwt_put(set, GW_HTTP("gw", ""));
	gwt_put(set, ROUTE("infra", "r1", "2026-01-01T00:00:01Z",
			   "{'parentRefs':[{'name':'gw'}],'hostnames':['a.example.com'],"
			   "'rules':[{'matches':[{'path':{'type':'PathPrefix','value':'/api'}}],"
			   "'backendRefs':[{'name':'svc','port':8080}]}]}"));
	CHECK_EQ_INT(gwt_run(set, "127.0.1.0/24", &res), 0);

	CHECK_EQ_STR(gwt_cond_at(&res, GW_K_GATEWAYCLASS, "", "wg", "/conditions", "Accepted"),
		     "True:Accepted");
	CHECK_EQ_STR(
		gwt_cond_at(&res, GW_K_GATEWAYCLASS, "", "wg", "/conditions", "SupportedVersion"),
		"True:SupportedVersion");
	CHECK_EQ_STR(gwt_str_at(&res, GW_K_GATEWAYCLASS, "", "wg", "/supportedFeatures/1/name"),
		     "HTTPRoute");
	CHECK_EQ_STR(gwt_cond_at(&res, GW_K_GATEWAY, "infra", "gw", "/conditions", "Accepted"),
		     "True:Accepted");
	CHECK_EQ_STR(gwt_cond_at(&res, GW_K_GATEWAY, "infra", "gw", "/conditions", "Programmed"),
		     "True:Programmed");
	CHECK_EQ_INT(
		gwt_int_at(&res, GW_K_GATEWAY, "infra", "gw", "/conditions/0/observedGeneration"),
		2);
	CHECK_EQ_STR(gwt_str_at(&res, GW_K_GATEWAY, "infra", "gw", "/addresses/0/value"),
		     "127.0.1.1");
	CHECK_EQ_STR(gwt_str_at(&res, GW_K_GATEWAY, "infra", "gw", "/addresses/0/type"),
		     "IPAddress");
	CHECK_EQ_INT(gwt_int_at(&res, GW_K_GATEWAY, "infra", "gw", "/listeners/0/attachedRoutes"),
		     1);
	CHECK_EQ_STR(
		gwt_str_at(&res, GW_K_GATEWAY, "infra", "gw", "/listeners/0/supportedKinds/0/kind"),
		"HTTPRoute");
	CHECK_EQ_STR(gwt_cond_at(&res, GW_K_GATEWAY, "infra", "gw", "/listeners/0/conditions",
				 "Conflicted"),
		     "False:NoConflicts");
	CHECK_EQ_STR(gwt_cond_at(&res, GW_K_HTTPROUTE, "infra", "r1", "/parents/0/conditions",
				 "Accepted"),
		     "True:Accepted");
	CHECK_EQ_STR(gwt_cond_at(&res, GW_K_HTTPROUTE, "infra", "r1", "/parents/0/conditions",
				 "ResolvedRefs"),
		     "True:ResolvedRefs");
	CHECK_EQ_STR(gwt_str_at(&res, GW_K_HTTPROUTE, "infra", "r1", "/parents/0/controllerName"),
		     GWT_CONTROLLER);
	CHECK_EQ_STR(
		gwt_str_at(&res, GW_K_HTTPROUTE, "infra", "r1", "/parents/0/parentRef/namespace"),
		"infra");
	CHECK_EQ_INT(gwt_int_at(&res, GW_K_HTTPROUTE, "infra", "r1",
				"/parents/0/conditions/0/observedGeneration"),
		     3);
	CHECK_EQ_INT(res.n_gateways, 1);
	if (res.n_gateways) {
		CHECK_EQ_STR(res.gateways[0], "infra/gw");
		CHECK_EQ_STR(res.addresses[0], "127.0.1.1");
	}

	const struct snapshot *s = res.snap;
	CHECK(s != NULL);
	if (s) {
		CHECK_EQ_INT(s->n_sockets, 1);
		CHECK_EQ_INT(s->n_listeners, 1);
		CHECK_EQ_STR(s->sockets[0].addr, "127.0.1.1");
		CHECK_EQ_INT(s->sockets[0].port, 80);
		CHECK_EQ_INT(s->sockets[0].transport, SNAP_T_TCP);
		const struct snap_listener *l = gwt_listener(s, "infra/gw", "http");
		CHECK(l != NULL);
		if (l && l->n_http_rules == 1) {
			const struct snap_http_rule *r = &l->http_rules[0];
			CHECK_EQ_STR(r->route, "infra/r1");
			CHECK_EQ_INT(r->n_hostnames, 1);
			CHECK_EQ_STR(r->hostnames[0], "a.example.com");
			CHECK_EQ_INT(r->match.path_type, SNAP_PM_PREFIX);
			CHECK_EQ_STR(r->match.path, "/api");
			CHECK_EQ_INT(r->n_backends, 1);
			CHECK_EQ_INT(r->backends[0].invalid_status, 0);
			CHECK_EQ_STR(r->backends[0].name, "infra/svc:8080");
			/* ready and unknown-ready endpoints, not the not-ready one */
			CHECK_EQ_INT(r->backends[0].n_endpoints, 2);
			CHECK_EQ_STR(r->backends[0].endpoints[0].addr, "10.0.0.1");
			CHECK_EQ_INT(r->backends[0].endpoints[0].port, 3000);
			CHECK_EQ_STR(r->backends[0].endpoints[1].addr, "10.0.0.3");
		} else {
			CHECK(!"one HTTP rule expected");
		}
		char *j = gw_snapshot_to_json(s);
		CHECK(j != NULL);
		CHECK(j && strstr(j, "\"10.0.0.1\"") != NULL);
		CHECK(j && strstr(j, "\"/api\"") != NULL);
		free(j);
	}
	gwt_done(&res);
	gw_objset_free(set);
}

TEST(gw_reconcile_foreign_class_ignored)
{
	struct gw_objset *set = gw_objset_new();
	struct gw_result res = {0};

	gwt_put(set, "{'apiVersion':'gateway.networking.k8s.io/v1','kind':'GatewayClass',"
		     "'metadata':{'name':'other'},'spec':{'controllerName':'example.com/other'}}");
	gwt_put(set, "{'apiVersion':'gateway.networking.k8s.io/v1','kind':'Gateway','metadata':{"
		     "'namespace':'infra','name':'gw'},'spec':{'gatewayClassName':'other',"
		     "'listeners':[{'name':'http','port':80,'protocol':'HTTP'}]}}");
	CHECK_EQ_INT(gwt_run(set, "127.0.1.0/24", &res), 0);
	CHECK_EQ_INT(res.n_statuses, 0);
	CHECK_EQ_INT(res.snap->n_sockets, 0);
	gwt_done(&res);
	gw_objset_free(set);
}

TEST(gw_reconcile_status_is_stable)
{
	struct gw_objset *set = gw_objset_new();
	struct gw_result a = {0}, b = {0};

	gwt_base(set);
	gwt_put(set, GW_HTTP("gw", ""));
	CHECK_EQ_INT(gwt_run(set, "127.0.1.0/24", &a), 0);
	/* Feed the computed status back as the object's status, with a later
	 * clock: lastTransitionTime must be carried over, so output is equal. */
	for (size_t i = 0; i < a.n_statuses; i++) {
		if (a.statuses[i].kind != GW_K_GATEWAY)
			continue;
		char buf[8192];
		snprintf(
			buf, sizeof(buf),
			"{\"apiVersion\":\"gateway.networking.k8s.io/v1\",\"kind\":\"Gateway\","
			"\"metadata\":{\"namespace\":\"infra\",\"name\":\"gw\",\"generation\":2,"
			"\"creationTimestamp\":\"2026-01-01T00:00:00Z\"},\"spec\":{"
			"\"gatewayClassName\":\"wg\",\"listeners\":[{\"name\":\"http\",\"port\":80,"
			"\"protocol\":\"HTTP\"}]},\"status\":%s}",
			a.statuses[i].status_json);
		char err[128];
		struct gw_object *o = gw_object_parse(-1, buf, strlen(buf), err, sizeof(err));
		CHECK(o != NULL);
		if (o)
			gw_objset_put(set, o);
	}
	static const char *const feats[] = {"Gateway", "HTTPRoute", NULL};
	struct gw_options o = {.controller_name = GWT_CONTROLLER,
			       .address_pool = "127.0.1.0/24",
			       .now_ms = 1790000999000ULL,
			       .supported_features = feats};
	CHECK_EQ_INT(gw_reconcile(set, &o, &b), 0);
	for (size_t i = 0; i < a.n_statuses; i++) {
		if (a.statuses[i].kind != GW_K_GATEWAY)
			continue;
		for (size_t j = 0; j < b.n_statuses; j++)
			if (b.statuses[j].kind == GW_K_GATEWAY)
				CHECK_EQ_STR(b.statuses[j].status_json, a.statuses[i].status_json);
	}
	gwt_done(&a);
	gwt_done(&b);
	gw_objset_free(set);
}

/* CPU time of this process: steadier than wall time on a shared machine. */
static uint64_t cpu_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/* 10,000 HTTPRoutes on one listener, each with its own hostname and a
 * backend: reconcile must stay far from quadratic. The bound is generous
 * for a shared machine; the expected figure is tens of milliseconds. */
TEST(gw_reconcile_10k_routes_fast)
{
	struct gw_objset *set = gw_objset_new();
	struct gw_result res = {0};
	char buf[1024];

	gwt_base(set);
	gwt_put(set, GW_HTTP("gw", ",'allowedRoutes':{'namespaces':{'from':'All'}}"));
	for (int i = 0; i < 10000; i++) {
		snprintf(
			buf, sizeof(buf),
			"{\"apiVersion\":\"gateway.networking.k8s.io/v1\",\"kind\":\"HTTPRoute\","
			"\"metadata\":{\"namespace\":\"infra\",\"name\":\"r%05d\",\"generation\":1,"
			"\"creationTimestamp\":\"2026-01-01T00:00:00Z\"},\"spec\":{\"parentRefs\":"
			"[{\"name\":\"gw\"}],\"hostnames\":[\"h%d.example.com\"],\"rules\":[{"
			"\"matches\":[{\"path\":{\"type\":\"PathPrefix\",\"value\":\"/p%d\"}}],"
			"\"backendRefs\":[{\"name\":\"svc\",\"port\":8080}]}]}}",
			i, i, i % 7);
		char err[128];
		struct gw_object *o = gw_object_parse(-1, buf, strlen(buf), err, sizeof(err));
		CHECK(o != NULL);
		if (o)
			gw_objset_put(set, o);
	}
	uint64_t t0 = cpu_us();
	CHECK_EQ_INT(gwt_run(set, "127.0.1.0/24", &res), 0);
	uint64_t dt = cpu_us() - t0;
	fprintf(stderr, "  gw_reconcile_10k_routes_fast: %llu us of CPU\n", (unsigned long long)dt);
	CHECK(dt < 500000);
	CHECK_EQ_INT(gwt_int_at(&res, GW_K_GATEWAY, "infra", "gw", "/listeners/0/attachedRoutes"),
		     10000);
	const struct snap_listener *l = gwt_listener(res.snap, "infra/gw", "http");
	CHECK(l && l->n_http_rules == 10000);
	/* all share one endpoint array */
	if (l && l->n_http_rules == 10000)
		CHECK(l->http_rules[0].backends[0].endpoints ==
		      l->http_rules[9999].backends[0].endpoints);
	gwt_done(&res);
	gw_objset_free(set);
}

/* A route that no longer names one of our Gateways gets an empty parent
 * list, so the status writer drops the entry we wrote before; routes we
 * never wrote to get no status at all. */
TEST(gw_reconcile_clears_stale_route_status)
{
	struct gw_objset *set = gw_objset_new();
	struct gw_result res = {0};

	gwt_base(set);
	gwt_put(set, ROUTE("infra", "stale", "2026-01-01T00:00:01Z",
			   "{'parentRefs':[{'name':'gone'}]},'status':{'parents':[{'parentRef':{"
			   "'name':'gone'},'controllerName':'" GWT_CONTROLLER "','conditions':[]},"
			   "{'parentRef':{'name':'x'},'controllerName':'example.com/other',"
			   "'conditions':[]}]}"));
	gwt_put(set, ROUTE("infra", "foreign", "2026-01-01T00:00:01Z",
			   "{'parentRefs':[{'name':'gone'}]},'status':{'parents':[{'parentRef':{"
			   "'name':'x'},'controllerName':'example.com/other','conditions':[]}]}"));
	CHECK_EQ_INT(gwt_run(set, NULL, &res), 0);
	yyjson_doc *d = gwt_status(&res, GW_K_HTTPROUTE, "infra", "stale");
	CHECK(d != NULL);
	if (d) {
		yyjson_val *p = yyjson_obj_get(yyjson_doc_get_root(d), "parents");
		CHECK(yyjson_is_arr(p) && yyjson_arr_size(p) == 0);
		yyjson_doc_free(d);
	}
	d = gwt_status(&res, GW_K_HTTPROUTE, "infra", "foreign");
	CHECK(d == NULL);
	yyjson_doc_free(d);
	gwt_done(&res);
	gw_objset_free(set);
}

/* The same parentRef written twice yields one status entry and one
 * attachment. */
TEST(gw_reconcile_duplicate_parent_refs)
{
	struct gw_objset *set = gw_objset_new();
	struct gw_result res = {0};

	gwt_base(set);
	gwt_put(set, GW_HTTP("gw", ""));
	gwt_put(set, ROUTE("infra", "r", "2026-01-01T00:00:01Z",
			   "{'parentRefs':[{'name':'gw'},{'name':'gw','namespace':'infra'},"
			   "{'name':'gw','sectionName':'http'}]}"));
	CHECK_EQ_INT(gwt_run(set, NULL, &res), 0);
	CHECK_EQ_INT(gwt_int_at(&res, GW_K_GATEWAY, "infra", "gw", "/listeners/0/attachedRoutes"),
		     1);
	yyjson_doc *d = gwt_status(&res, GW_K_HTTPROUTE, "infra", "r");
	CHECK(d != NULL);
	if (d) {
		/* {'name':'gw'} and the explicit namespace are the same parent */
		CHECK_EQ_INT(yyjson_arr_size(yyjson_obj_get(yyjson_doc_get_root(d), "parents")), 2);
		yyjson_doc_free(d);
	}
	const struct snap_listener *l = gwt_listener(res.snap, "infra/gw", "http");
	CHECK(l && l->n_http_rules == 1);
	gwt_done(&res);
	gw_objset_free(set);
}

/* A condition whose status changed takes the new clock; one that did not
 * keeps the time already written. */
TEST(gw_reconcile_transition_time_follows_changes)
{
	struct gw_objset *set = gw_objset_new();
	struct gw_result res = {0};

	gwt_base(set);
	gwt_put(set,
		"{'apiVersion':'gateway.networking.k8s.io/v1','kind':'Gateway','metadata':{"
		"'namespace':'infra','name':'gw','generation':2},'spec':{'gatewayClassName':'wg',"
		"'listeners':[{'name':'http','port':80,'protocol':'HTTP'}]},'status':{"
		"'conditions':[{'type':'Accepted','status':'True','reason':'Accepted',"
		"'observedGeneration':2,'lastTransitionTime':'2020-01-01T00:00:00Z'},"
		"{'type':'Programmed','status':'False','reason':'Pending',"
		"'observedGeneration':2,'lastTransitionTime':'2020-01-01T00:00:00Z'}]}}");
	CHECK_EQ_INT(gwt_run(set, "127.0.1.0/24", &res), 0);
	CHECK_EQ_STR(
		gwt_str_at(&res, GW_K_GATEWAY, "infra", "gw", "/conditions/0/lastTransitionTime"),
		"2020-01-01T00:00:00Z");
	CHECK_EQ_STR(gwt_str_at(&res, GW_K_GATEWAY, "infra", "gw", "/conditions/1/type"),
		     "Programmed");
	CHECK_EQ_STR(
		gwt_str_at(&res, GW_K_GATEWAY, "infra", "gw", "/conditions/1/lastTransitionTime"),
		"2026-09-21T14:13:20Z");
	gwt_done(&res);
	gw_objset_free(set);
}

/* Problems are reported naming the object and the field. */
TEST(gw_reconcile_diag_names_object_and_field)
{
	struct gw_objset *set = gw_objset_new();
	struct gw_result res = {0};

	gwt_base(set);
	gwt_put(set, GW_HTTP("gw", ""));
	gwt_put(set,
		ROUTE("infra", "r", "2026-01-01T00:00:01Z",
		      "{'parentRefs':[{'name':'gw'}],'rules':[{},{'backendRefs':[{'name':'svc',"
		      "'port':8080},{'name':'missing','port':80}]}]}"));
	CHECK_EQ_INT(gwt_run(set, NULL, &res), 0);
	bool found = false;
	for (size_t i = 0; i < res.diag.n; i++) {
		const struct diag_entry *e = &res.diag.v[i];
		if (e->object && !strcmp(e->object, "HTTPRoute infra/r") && e->field &&
		    !strcmp(e->field, "spec.rules[1].backendRefs[1]") && strstr(e->msg, "missing"))
			found = true;
	}
	CHECK(found);
	CHECK(res.diag.errors >= 1);
	gwt_done(&res);
	gw_objset_free(set);
}

/* Invalid route hostnames are reported and never widen the route to every
 * host. */
TEST(gw_reconcile_invalid_hostnames_match_nothing)
{
	struct gw_objset *set = gw_objset_new();
	struct gw_result res = {0};

	gwt_base(set);
	gwt_put(set, GW_HTTP("gw", ""));
	gwt_put(set, ROUTE("infra", "r", "2026-01-01T00:00:01Z",
			   "{'parentRefs':[{'name':'gw'}],'hostnames':['Bad_Host'],'rules':[{"
			   "'backendRefs':[{'name':'svc','port':8080}]}]}"));
	CHECK_EQ_INT(gwt_run(set, NULL, &res), 0);
	CHECK_EQ_STR(gwt_cond_at(&res, GW_K_HTTPROUTE, "infra", "r", "/parents/0/conditions",
				 "Accepted"),
		     "False:NoMatchingListenerHostname");
	const struct snap_listener *l = gwt_listener(res.snap, "infra/gw", "http");
	CHECK(l && l->n_http_rules == 0);
	CHECK(res.diag.errors >= 1);
	gwt_done(&res);
	gw_objset_free(set);
}

/* skip_statuses renders no status and changes nothing else: the same
 * snapshot, addresses and diagnostics. */
TEST(gw_reconcile_skip_statuses_same_snapshot)
{
	static const char *const feats[] = {"Gateway", "HTTPRoute", NULL};
	struct gw_objset *set = gw_objset_new();
	struct gw_result full = {0}, bare = {0};
	struct gw_options o = {.controller_name = GWT_CONTROLLER,
			       .address_pool = "127.0.1.0/24",
			       .now_ms = 1790000000000ULL,
			       .supported_features = feats};

	gwt_base(set);
	gwt_put(set, GW_HTTP("gw", ""));
	gwt_put(set, ROUTE("infra", "r1", "2026-01-01T00:00:01Z",
			   "{'parentRefs':[{'name':'gw'}],'hostnames':['a.example.com'],"
			   "'rules':[{'backendRefs':[{'name':'svc','port':8080},"
			   "{'name':'missing','port':80}]}]}"));
	CHECK_EQ_INT(gw_reconcile(set, &o, &full), 0);
	o.skip_statuses = true;
	CHECK_EQ_INT(gw_reconcile(set, &o, &bare), 0);
	CHECK(full.n_statuses > 0);
	CHECK_EQ_INT(bare.n_statuses, 0);
	CHECK_EQ_INT(bare.diag.n, full.diag.n);
	CHECK_EQ_INT(bare.n_gateways, 1);
	if (bare.n_gateways == 1 && full.n_gateways == 1)
		CHECK_EQ_STR(bare.addresses[0], full.addresses[0]);
	if (full.snap && bare.snap) {
		char *a = gw_snapshot_to_json(full.snap), *b = gw_snapshot_to_json(bare.snap);
		CHECK_EQ_STR(b, a);
		free(a);
		free(b);
	}
	gwt_done(&full);
	gwt_done(&bare);
	gw_objset_free(set);
}
