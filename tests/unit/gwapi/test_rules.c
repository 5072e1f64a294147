/* SPDX-License-Identifier: MIT */
/*
 * test_rules.c: Gateway API rules at the reconcile layer, one behaviour per
 * test: match precedence across routes, ReferenceGrant for backends and
 * certificates, listener validation and conflicts, address allocation
 * (pool, stable, static), parentRef sectionName and port, allowedRoutes,
 * invalid backends answering 500 with their weight, filters and timeouts,
 * GRPCRoute compilation, L4 routes, ListenerSets and BackendTLSPolicy.
 */
#include "gwtest.h"

#define CRT_B64 "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUIKLS0tLS1FTkQgQ0VSVElGSUNBVEUtLS0tLQo="
#define KEY_B64 "LS0tLS1CRUdJTiBQUklWQVRFIEtFWS0tLS0tCk1JSUUKLS0tLS1FTkQgUFJJVkFURSBLRVktLS0tLQo="
#define CA_PEM "-----BEGIN CERTIFICATE-----\\nMIIB\\n-----END CERTIFICATE-----\\n"

#define GW(ns, name, listeners)                                                                    \
	"{'apiVersion':'gateway.networking.k8s.io/v1','kind':'Gateway','metadata':{"               \
	"'namespace':'" ns "','name':'" name "','generation':1,"                                   \
	"'creationTimestamp':'2026-01-01T00:00:00Z'},'spec':{'gatewayClassName':'wg',"             \
	"'listeners':" listeners "}}"

#define RT(kind, ns, name, ts, spec)                                                               \
	"{'apiVersion':'gateway.networking.k8s.io/v1','kind':'" kind "','metadata':{"              \
	"'namespace':'" ns "','name':'" name "','generation':1,'creationTimestamp':'" ts           \
	"'},'spec':" spec "}"

#define HTTP_ALL                                                                                   \
	"{'name':'http','port':80,'protocol':'HTTP','allowedRoutes':{'namespaces':{'from':'All'}}" \
	"}"

static void secret(struct gw_objset *set, const char *ns, const char *name)
{
	char buf[1024];
	snprintf(buf, sizeof(buf),
		 "{'apiVersion':'v1','kind':'Secret','metadata':{'namespace':'%s','name':'%s'},"
		 "'type':'kubernetes.io/tls','data':{'tls.crt':'%s','tls.key':'%s'}}",
		 ns, name, CRT_B64, KEY_B64);
	gwt_put(set, buf);
}

#define RCOND(kind, ns, name, type) gwt_cond_at(&res, kind, ns, name, "/parents/0/conditions", type)
#define LCOND(ns, name, i, type)                                                                   \
	gwt_cond_at(&res, GW_K_GATEWAY, ns, name, "/listeners/" #i "/conditions", type)

TEST(gw_precedence_across_routes)
{
	struct gw_objset *set = gw_objset_new();
	struct gw_result res = {0};

	gwt_base(set);
	gwt_put(set, GW("infra", "gw", "[" HTTP_ALL "]"));
	/* newer route, exact path */
	gwt_put(set,
		RT("HTTPRoute", "infra", "b-new", "2026-01-01T00:00:09Z",
		   "{'parentRefs':[{'name':'gw'}],'rules':[{'matches':["
		   "{'path':{'type':'Exact','value':'/a'}},"
		   "{'path':{'type':'PathPrefix','value':'/a'},'method':'GET'},"
		   "{'path':{'type':'PathPrefix','value':'/"
		   "a'},'headers':[{'name':'X-A','value':'1'},"
		   "{'name':'x-b','value':'2'}]}],'backendRefs':[{'name':'svc','port':8080}]}]}"));
	/* older route, longer prefix and a same-key match that must win by age */
	gwt_put(set, RT("HTTPRoute", "apps", "a-old", "2026-01-01T00:00:01Z",
			"{'parentRefs':[{'name':'gw','namespace':'infra'}],'rules':[{'matches':["
			"{'path':{'type':'PathPrefix','value':'/abc'}},"
			"{'path':{'type':'PathPrefix','value':'/a'},'method':'GET'},"
			"{'path':{'type':'PathPrefix','value':'/"
			"a'},'queryParams':[{'name':'q','value':'1'}]}"
			"]}]}"));
	/* a specific hostname beats any path on the catch-all host */
	gwt_put(set, RT("HTTPRoute", "infra", "c-host", "2026-01-01T00:00:05Z",
			"{'parentRefs':[{'name':'gw'}],'hostnames':['x.example.com'],"
			"'rules':[{'backendRefs':[{'name':'svc','port':8080}]}]}"));
	gwt_put(set, RT("HTTPRoute", "infra", "d-wild", "2026-01-01T00:00:05Z",
			"{'parentRefs':[{'name':'gw'}],'hostnames':['*.example.com'],"
			"'rules':[{'backendRefs':[{'name':'svc','port':8080}]}]}"));
	CHECK_EQ_INT(gwt_run(set, NULL, &res), 0);
	const struct snap_listener *l = gwt_listener(res.snap, "infra/gw", "http");
	CHECK(l != NULL);
	if (!l)
		goto out;
	static const struct {
		const char *route, *host, *path;
		int type;
		const char *method;
		size_t nh, nq;
	} want[] = {
		{"infra/c-host", "x.example.com", "/", SNAP_PM_PREFIX, NULL, 0, 0},
		{"infra/d-wild", "*.example.com", "/", SNAP_PM_PREFIX, NULL, 0, 0},
		{"infra/b-new", NULL, "/a", SNAP_PM_EXACT, NULL, 0, 0},
		{"apps/a-old", NULL, "/abc", SNAP_PM_PREFIX, NULL, 0, 0},
		{"apps/a-old", NULL, "/a", SNAP_PM_PREFIX, "GET", 0, 0},
		{"infra/b-new", NULL, "/a", SNAP_PM_PREFIX, "GET", 0, 0},
		{"infra/b-new", NULL, "/a", SNAP_PM_PREFIX, NULL, 2, 0},
		{"apps/a-old", NULL, "/a", SNAP_PM_PREFIX, NULL, 0, 1},
	};
	CHECK_EQ_INT(l->n_http_rules, sizeof(want) / sizeof(want[0]));
	for (size_t i = 0; i < l->n_http_rules && i < sizeof(want) / sizeof(want[0]); i++) {
		const struct snap_http_rule *r = &l->http_rules[i];
		CHECK_EQ_STR(r->route, want[i].route);
		CHECK_EQ_INT(r->n_hostnames, want[i].host ? 1 : 0);
		if (want[i].host && r->n_hostnames)
			CHECK_EQ_STR(r->hostnames[0], want[i].host);
		CHECK_EQ_STR(r->match.path, want[i].path);
		CHECK_EQ_INT(r->match.path_type, want[i].type);
		CHECK_EQ_INT(!!r->match.method, !!want[i].method);
		CHECK_EQ_INT(r->match.n_headers, want[i].nh);
		CHECK_EQ_INT(r->match.n_query, want[i].nq);
	}
	/* header names are lower-cased for the data plane */
	if (l->n_http_rules > 6 && l->http_rules[6].match.n_headers == 2)
		CHECK_EQ_STR(l->http_rules[6].match.headers[0].name, "x-a");
	/* a rule without backendRefs has no backends: the data plane answers 500 */
	if (l->n_http_rules > 3)
		CHECK_EQ_INT(l->http_rules[3].n_backends, 0);
out:
	gwt_done(&res);
	gw_objset_free(set);
}

TEST(gw_reference_grant_for_backends)
{
	struct gw_objset *set = gw_objset_new();
	struct gw_result res = {0};

	gwt_base(set);
	gwt_put(set, GW("infra", "gw", "[" HTTP_ALL "]"));
	gwt_put(set,
		RT("HTTPRoute", "apps", "r", "2026-01-01T00:00:01Z",
		   "{'parentRefs':[{'name':'gw','namespace':'infra'}],'rules':[{'backendRefs':["
		   "{'name':'svc','namespace':'infra','port':8080,'weight':3},"
		   "{'name':'local','port':80,'weight':1}]}]}"));
	CHECK_EQ_INT(gwt_run(set, NULL, &res), 0);
	CHECK_EQ_STR(RCOND(GW_K_HTTPROUTE, "apps", "r", "Accepted"), "True:Accepted");
	CHECK_EQ_STR(RCOND(GW_K_HTTPROUTE, "apps", "r", "ResolvedRefs"), "False:RefNotPermitted");
	const struct snap_listener *l = gwt_listener(res.snap, "infra/gw", "http");
	CHECK(l && l->n_http_rules == 1);
	if (l && l->n_http_rules == 1) {
		/* both backends answer 500 for their share */
		CHECK_EQ_INT(l->http_rules[0].n_backends, 2);
		CHECK_EQ_INT(l->http_rules[0].backends[0].invalid_status, 500);
		CHECK_EQ_INT(l->http_rules[0].backends[0].weight, 3);
		CHECK_EQ_INT(l->http_rules[0].backends[1].invalid_status, 500);
	}
	gwt_done(&res);

	/* a grant for another kind or name does not help; the right one does */
	gwt_put(set, "{'apiVersion':'gateway.networking.k8s.io/v1beta1','kind':'ReferenceGrant',"
		     "'metadata':{'namespace':'infra','name':'g1'},'spec':{'from':[{'group':"
		     "'gateway.networking.k8s.io','kind':'GRPCRoute','namespace':'apps'}],"
		     "'to':[{'group':'','kind':'Service'}]}}");
	gwt_put(set, "{'apiVersion':'gateway.networking.k8s.io/v1beta1','kind':'ReferenceGrant',"
		     "'metadata':{'namespace':'infra','name':'g2'},'spec':{'from':[{'group':"
		     "'gateway.networking.k8s.io','kind':'HTTPRoute','namespace':'apps'}],"
		     "'to':[{'group':'','kind':'Service','name':'other'}]}}");
	CHECK_EQ_INT(gwt_run(set, NULL, &res), 0);
	CHECK_EQ_STR(RCOND(GW_K_HTTPROUTE, "apps", "r", "ResolvedRefs"), "False:RefNotPermitted");
	gwt_done(&res);
	gwt_put(set, "{'apiVersion':'gateway.networking.k8s.io/v1beta1','kind':'ReferenceGrant',"
		     "'metadata':{'namespace':'infra','name':'g3'},'spec':{'from':[{'group':"
		     "'gateway.networking.k8s.io','kind':'HTTPRoute','namespace':'apps'}],"
		     "'to':[{'group':'','kind':'Service','name':'svc'}]}}");
	CHECK_EQ_INT(gwt_run(set, NULL, &res), 0);
	/* the grant works; the second backend still does not exist */
	CHECK_EQ_STR(RCOND(GW_K_HTTPROUTE, "apps", "r", "ResolvedRefs"), "False:BackendNotFound");
	l = gwt_listener(res.snap, "infra/gw", "http");
	if (l && l->n_http_rules == 1) {
		CHECK_EQ_INT(l->http_rules[0].backends[0].invalid_status, 0);
		CHECK_EQ_INT(l->http_rules[0].backends[0].n_endpoints, 2);
		CHECK_EQ_INT(l->http_rules[0].backends[1].invalid_status, 500);
	}
	gwt_done(&res);
	gw_objset_free(set);
}

TEST(gw_backend_ref_reasons)
{
	static const struct {
		const char *ref;
		const char *want;
	} t[] = {
		{"{'name':'svc','port':8080}", "True:ResolvedRefs"},
		{"{'name':'svc','port':9999}", "False:BackendNotFound"},
		{"{'name':'nope','port':8080}", "False:BackendNotFound"},
		{"{'group':'example.com','kind':'Thing','name':'svc','port':8080}",
		 "False:InvalidKind"},
		{"{'name':'svc','port':8080,'namespace':'apps'}", "False:BackendNotFound"},
		{"{'name':'weird','port':80}", "False:UnsupportedProtocol"},
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct gw_objset *set = gw_objset_new();
		struct gw_result res = {0};
		char buf[1024];
		gwt_base(set);
		gwt_put(set, "{'apiVersion':'v1','kind':'Service','metadata':{'namespace':'infra',"
			     "'name':'weird'},'spec':{'ports':[{'port':80,'appProtocol':'example."
			     "com/x'}]}}");
		gwt_put(set,
			"{'apiVersion':'gateway.networking.k8s.io/v1beta1','kind':'ReferenceGrant',"
			"'metadata':{'namespace':'apps','name':'g'},'spec':{'from':[{'group':"
			"'gateway.networking.k8s.io','kind':'HTTPRoute','namespace':'infra'}],"
			"'to':[{'group':'','kind':'Service'}]}}");
		gwt_put(set, GW("infra", "gw", "[" HTTP_ALL "]"));
		snprintf(buf, sizeof(buf),
			 "{'apiVersion':'gateway.networking.k8s.io/"
			 "v1','kind':'HTTPRoute','metadata':{"
			 "'namespace':'infra','name':'r'},'spec':{'parentRefs':[{'name':'gw'}],"
			 "'rules':[{'backendRefs':[%s]}]}}",
			 t[i].ref);
		gwt_put(set, buf);
		CHECK_EQ_INT(gwt_run(set, NULL, &res), 0);
		const char *got = RCOND(GW_K_HTTPROUTE, "infra", "r", "ResolvedRefs");
		if (strcmp(got, t[i].want))
			fprintf(stderr, "  case %zu: %s\n", i, t[i].ref);
		CHECK_EQ_STR(got, t[i].want);
		CHECK_EQ_STR(RCOND(GW_K_HTTPROUTE, "infra", "r", "Accepted"), "True:Accepted");
		gwt_done(&res);
		gw_objset_free(set);
	}
}

TEST(gw_parent_ref_section_and_port)
{
	static const struct {
		const char *parent;
		const char *want;
		int attached0, attached1;
	} t[] = {
		{"{'name':'gw'}", "True:Accepted", 1, 1},
		{"{'name':'gw','sectionName':'b'}", "True:Accepted", 0, 1},
		{"{'name':'gw','port':8080}", "True:Accepted", 0, 1},
		{"{'name':'gw','sectionName':'a','port':80}", "True:Accepted", 1, 0},
		{"{'name':'gw','sectionName':'a','port':8080}", "False:NoMatchingParent", 0, 0},
		{"{'name':'gw','sectionName':'zzz'}", "False:NoMatchingParent", 0, 0},
		{"{'name':'gw','port':81}", "False:NoMatchingParent", 0, 0},
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct gw_objset *set = gw_objset_new();
		struct gw_result res = {0};
		char buf[1024];
		gwt_base(set);
		gwt_put(set, GW("infra", "gw",
				"[{'name':'a','port':80,'protocol':'HTTP'},"
				"{'name':'b','port':8080,'protocol':'HTTP'}]"));
		snprintf(buf, sizeof(buf),
			 "{'apiVersion':'gateway.networking.k8s.io/"
			 "v1','kind':'HTTPRoute','metadata':{"
			 "'namespace':'infra','name':'r'},'spec':{'parentRefs':[%s],"
			 "'rules':[{'backendRefs':[{'name':'svc','port':8080}]}]}}",
			 t[i].parent);
		gwt_put(set, buf);
		CHECK_EQ_INT(gwt_run(set, NULL, &res), 0);
		const char *got = RCOND(GW_K_HTTPROUTE, "infra", "r", "Accepted");
		if (strcmp(got, t[i].want))
			fprintf(stderr, "  case %zu: %s\n", i, t[i].parent);
		CHECK_EQ_STR(got, t[i].want);
		CHECK_EQ_INT(gwt_int_at(&res, GW_K_GATEWAY, "infra", "gw",
					"/listeners/0/attachedRoutes"),
			     t[i].attached0);
		CHECK_EQ_INT(gwt_int_at(&res, GW_K_GATEWAY, "infra", "gw",
					"/listeners/1/attachedRoutes"),
			     t[i].attached1);
		gwt_done(&res);
		gw_objset_free(set);
	}
}

TEST(gw_allowed_routes_namespaces_and_kinds)
{
	static const struct {
		const char *allowed;
		const char *route_ns;
		const char *want;
	} t[] = {
		{"{'namespaces':{'from':'Same'}}", "infra", "True:Accepted"},
		{"{'namespaces':{'from':'Same'}}", "apps", "False:NotAllowedByListeners"},
		{"{}", "apps", "False:NotAllowedByListeners"},
		{"{'namespaces':{'from':'All'}}", "apps", "True:Accepted"},
		{"{'namespaces':{'from':'Selector','selector':{'matchLabels':{'team':'apps'}}}}",
		 "apps", "True:Accepted"},
		{"{'namespaces':{'from':'Selector','selector':{'matchLabels':{'team':'apps'}}}}",
		 "infra", "False:NotAllowedByListeners"},
		{"{'namespaces':{'from':'Selector','selector':{'matchLabels':"
		 "{'kubernetes.io/metadata.name':'apps'}}}}",
		 "apps", "True:Accepted"},
		{"{'namespaces':{'from':'All'},'kinds':[{'kind':'GRPCRoute'}]}", "apps",
		 "False:NotAllowedByListeners"},
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct gw_objset *set = gw_objset_new();
		struct gw_result res = {0};
		char buf[1024];
		gwt_base(set);
		snprintf(
			buf, sizeof(buf),
			"{'apiVersion':'gateway.networking.k8s.io/v1','kind':'Gateway','metadata':{"
			"'namespace':'infra','name':'gw'},'spec':{'gatewayClassName':'wg','"
			"listeners':"
			"[{'name':'a','port':80,'protocol':'HTTP','allowedRoutes':%s}]}}",
			t[i].allowed);
		gwt_put(set, buf);
		snprintf(buf, sizeof(buf),
			 "{'apiVersion':'gateway.networking.k8s.io/"
			 "v1','kind':'HTTPRoute','metadata':{"
			 "'namespace':'%s','name':'r'},'spec':{'parentRefs':[{'name':'gw',"
			 "'namespace':'infra'}]}}",
			 t[i].route_ns);
		gwt_put(set, buf);
		CHECK_EQ_INT(gwt_run(set, NULL, &res), 0);
		const char *got = RCOND(GW_K_HTTPROUTE, t[i].route_ns, "r", "Accepted");
		if (strcmp(got, t[i].want))
			fprintf(stderr, "  case %zu: %s from %s\n", i, t[i].allowed, t[i].route_ns);
		CHECK_EQ_STR(got, t[i].want);
		gwt_done(&res);
		gw_objset_free(set);
	}
}

TEST(gw_listener_hostname_matching)
{
	struct gw_objset *set = gw_objset_new();
	struct gw_result res = {0};

	gwt_base(set);
	gwt_put(set, GW("infra", "gw",
			"[{'name':'foo','port':80,'protocol':'HTTP','hostname':'foo.example.com'},"
			"{'name':'wild','port':80,'protocol':'HTTP','hostname':'*.example.com'}]"));
	gwt_put(set,
		RT("HTTPRoute", "infra", "r", "2026-01-01T00:00:01Z",
		   "{'parentRefs':[{'name':'gw'}],'hostnames':['foo.example.com','bar.example.com',"
		   "'other.org']}"));
	gwt_put(set, RT("HTTPRoute", "infra", "none", "2026-01-01T00:00:01Z",
			"{'parentRefs':[{'name':'gw'}],'hostnames':['other.org']}"));
	CHECK_EQ_INT(gwt_run(set, NULL, &res), 0);
	CHECK_EQ_STR(RCOND(GW_K_HTTPROUTE, "infra", "r", "Accepted"), "True:Accepted");
	CHECK_EQ_STR(RCOND(GW_K_HTTPROUTE, "infra", "none", "Accepted"),
		     "False:NoMatchingListenerHostname");
	CHECK_EQ_INT(gwt_int_at(&res, GW_K_GATEWAY, "infra", "gw", "/listeners/0/attachedRoutes"),
		     1);
	CHECK_EQ_INT(gwt_int_at(&res, GW_K_GATEWAY, "infra", "gw", "/listeners/1/attachedRoutes"),
		     1);
	const struct snap_listener *foo = gwt_listener(res.snap, "infra/gw", "foo");
	const struct snap_listener *wild = gwt_listener(res.snap, "infra/gw", "wild");
	CHECK(foo && foo->n_http_rules == 1);
	if (foo && foo->n_http_rules == 1)
		CHECK_EQ_STR(foo->http_rules[0].hostnames[0], "foo.example.com");
	CHECK(wild && wild->n_http_rules == 2);
	/* both listeners share the socket, the exact hostname first */
	CHECK_EQ_INT(res.snap->n_sockets, 1);
	if (res.snap->n_sockets == 1 && res.snap->sockets[0].n_listeners == 2) {
		CHECK_EQ_STR(res.snap->sockets[0].listeners[0]->name, "foo");
		CHECK_EQ_STR(res.snap->sockets[0].addr, "0.0.0.0");
	}
	gwt_done(&res);
	gw_objset_free(set);
}

TEST(gw_listener_validation_and_conflicts)
{
	struct gw_objset *set = gw_objset_new();
	struct gw_result res = {0};

	gwt_base(set);
	secret(set, "infra", "cert");
	secret(set, "certs", "far");
	gwt_put(set, "{'apiVersion':'v1','kind':'Secret','metadata':{'namespace':'infra','name':"
		     "'junk'},'data':{'tls.crt':'SGVsbG8K','tls.key':'SGVsbG8K'}}");
	gwt_put(set,
		GW("infra", "gw",
		   "[{'name':'http','port':80,'protocol':'HTTP'},"
		   "{'name':'dup','port':80,'protocol':'HTTP'},"
		   "{'name':'proto','port':80,'protocol':'HTTPS','tls':{'certificateRefs':[{'name':"
		   "'cert'}]}},"
		   "{'name':'bad','port':81,'protocol':'SCTP'},"
		   "{'name':'kinds','port':82,'protocol':'HTTP','allowedRoutes':{'kinds':"
		   "[{'kind':'HTTPRoute'},{'kind':'TCPRoute'}]}},"
		   "{'name':'missing','port':443,'protocol':'HTTPS','hostname':'m.example.com',"
		   "'tls':{'certificateRefs':[{'name':'nope'}]}},"
		   "{'name':'far','port':443,'protocol':'HTTPS','hostname':'f.example.com',"
		   "'tls':{'certificateRefs':[{'name':'far','namespace':'certs'}]}},"
		   "{'name':'junk','port':443,'protocol':'HTTPS','hostname':'j.example.com',"
		   "'tls':{'certificateRefs':[{'name':'junk'}]}},"
		   "{'name':'kind','port':443,'protocol':'HTTPS','hostname':'k.example.com',"
		   "'tls':{'certificateRefs':[{'kind':'ConfigMap','name':'cert'}]}},"
		   "{'name':'good','port':443,'protocol':'HTTPS','hostname':'g.example.com',"
		   "'tls':{'certificateRefs':[{'name':'cert'}]}},"
		   "{'name':'udp','port':80,'protocol':'UDP'}]"));
	CHECK_EQ_INT(gwt_run(set, "127.0.1.0/24", &res), 0);
	CHECK_EQ_STR(LCOND("infra", "gw", 0, "Accepted"), "True:Accepted");
	CHECK_EQ_STR(LCOND("infra", "gw", 1, "Conflicted"), "True:HostnameConflict");
	CHECK_EQ_STR(LCOND("infra", "gw", 1, "Accepted"), "False:HostnameConflict");
	CHECK_EQ_STR(LCOND("infra", "gw", 1, "Programmed"), "False:HostnameConflict");
	CHECK_EQ_STR(LCOND("infra", "gw", 2, "Conflicted"), "True:ProtocolConflict");
	CHECK_EQ_STR(LCOND("infra", "gw", 3, "Accepted"), "False:UnsupportedProtocol");
	CHECK_EQ_INT(gwt_int_at(&res, GW_K_GATEWAY, "infra", "gw", "/listeners/3/supportedKinds/0"),
		     -1);
	CHECK_EQ_STR(LCOND("infra", "gw", 4, "ResolvedRefs"), "False:InvalidRouteKinds");
	CHECK_EQ_STR(
		gwt_str_at(&res, GW_K_GATEWAY, "infra", "gw", "/listeners/4/supportedKinds/0/kind"),
		"HTTPRoute");
	CHECK_EQ_STR(
		gwt_str_at(&res, GW_K_GATEWAY, "infra", "gw", "/listeners/4/supportedKinds/1/kind"),
		"(none)");
	CHECK_EQ_STR(LCOND("infra", "gw", 5, "ResolvedRefs"), "False:InvalidCertificateRef");
	CHECK_EQ_STR(LCOND("infra", "gw", 5, "Programmed"), "False:Invalid");
	CHECK_EQ_STR(LCOND("infra", "gw", 6, "ResolvedRefs"), "False:RefNotPermitted");
	CHECK_EQ_STR(LCOND("infra", "gw", 7, "ResolvedRefs"), "False:InvalidCertificateRef");
	CHECK_EQ_STR(LCOND("infra", "gw", 8, "ResolvedRefs"), "False:InvalidCertificateRef");
	CHECK_EQ_STR(LCOND("infra", "gw", 9, "ResolvedRefs"), "True:ResolvedRefs");
	CHECK_EQ_STR(LCOND("infra", "gw", 9, "Programmed"), "True:Programmed");
	/* UDP shares port 80 with TCP listeners without conflict */
	CHECK_EQ_STR(LCOND("infra", "gw", 10, "Conflicted"), "False:NoConflicts");
	/* some listeners are invalid: accepted, with the reason */
	CHECK_EQ_STR(gwt_cond_at(&res, GW_K_GATEWAY, "infra", "gw", "/conditions", "Accepted"),
		     "True:ListenersNotValid");
	const struct snap_listener *g = gwt_listener(res.snap, "infra/gw", "good");
	CHECK(g && g->n_certs == 1);
	if (g && g->n_certs == 1) {
		CHECK_EQ_STR(g->certs[0].name, "infra/cert");
		CHECK(strstr(g->certs[0].cert_pem, "BEGIN CERTIFICATE") != NULL);
		CHECK(strstr(g->certs[0].key_pem, "PRIVATE KEY") != NULL);
	}
	CHECK(gwt_listener(res.snap, "infra/gw", "dup") == NULL);
	CHECK(gwt_listener(res.snap, "infra/gw", "missing") == NULL);
	/* the snapshot JSON names certificates and never carries keys */
	char *j = gw_snapshot_to_json(res.snap);
	CHECK(j && strstr(j, "infra/cert") != NULL);
	CHECK(j && strstr(j, "PRIVATE KEY") == NULL);
	CHECK(j && strstr(j, "BEGIN CERTIFICATE") == NULL);
	free(j);
	gwt_done(&res);

	/* the grant makes the far certificate usable */
	gwt_put(set, "{'apiVersion':'gateway.networking.k8s.io/v1beta1','kind':'ReferenceGrant',"
		     "'metadata':{'namespace':'certs','name':'g'},'spec':{'from':[{'group':"
		     "'gateway.networking.k8s.io','kind':'Gateway','namespace':'infra'}],"
		     "'to':[{'group':'','kind':'Secret'}]}}");
	CHECK_EQ_INT(gwt_run(set, "127.0.1.0/24", &res), 0);
	CHECK_EQ_STR(LCOND("infra", "gw", 6, "ResolvedRefs"), "True:ResolvedRefs");
	gwt_done(&res);
	gw_objset_free(set);
}

TEST(gw_gateway_only_invalid_listeners)
{
	struct gw_objset *set = gw_objset_new();
	struct gw_result res = {0};

	gwt_base(set);
	gwt_put(set, GW("infra", "gw", "[{'name':'x','port':80,'protocol':'FTP'}]"));
	CHECK_EQ_INT(gwt_run(set, "127.0.1.0/24", &res), 0);
	CHECK_EQ_STR(gwt_cond_at(&res, GW_K_GATEWAY, "infra", "gw", "/conditions", "Accepted"),
		     "False:ListenersNotValid");
	CHECK_EQ_STR(gwt_cond_at(&res, GW_K_GATEWAY, "infra", "gw", "/conditions", "Programmed"),
		     "False:Invalid");
	CHECK_EQ_INT(res.snap->n_sockets, 0);
	gwt_done(&res);
	gw_objset_free(set);
}

TEST(gw_addresses_pool_stable_static)
{
	struct gw_objset *set = gw_objset_new();
	struct gw_result res = {0};
	static const char *const feats[] = {NULL};

	gwt_base(set);
	gwt_put(set, GW("infra", "b", "[" HTTP_ALL "]"));
	gwt_put(set, GW("infra", "c", "[" HTTP_ALL "]"));
	CHECK_EQ_INT(gwt_run(set, "10.9.0.0/29", &res), 0);
	CHECK_EQ_STR(gwt_str_at(&res, GW_K_GATEWAY, "infra", "b", "/addresses/0/value"),
		     "10.9.0.1");
	CHECK_EQ_STR(gwt_str_at(&res, GW_K_GATEWAY, "infra", "c", "/addresses/0/value"),
		     "10.9.0.2");
	gwt_done(&res);

	/* a new Gateway sorting first does not move the others: prev wins */
	gwt_put(set, GW("infra", "a", "[" HTTP_ALL "]"));
	const char *pg[] = {"infra/b", "infra/c"}, *pa[] = {"10.9.0.1", "10.9.0.2"};
	struct gw_options o = {.controller_name = GWT_CONTROLLER,
			       .address_pool = "10.9.0.0/29",
			       .now_ms = 1,
			       .prev_gateways = pg,
			       .prev_addresses = pa,
			       .n_prev = 2,
			       .supported_features = feats};
	CHECK_EQ_INT(gw_reconcile(set, &o, &res), 0);
	CHECK_EQ_STR(gwt_str_at(&res, GW_K_GATEWAY, "infra", "a", "/addresses/0/value"),
		     "10.9.0.3");
	CHECK_EQ_STR(gwt_str_at(&res, GW_K_GATEWAY, "infra", "b", "/addresses/0/value"),
		     "10.9.0.1");
	CHECK_EQ_STR(gwt_str_at(&res, GW_K_GATEWAY, "infra", "c", "/addresses/0/value"),
		     "10.9.0.2");
	/* the snapshot binds each Gateway's own address */
	CHECK_EQ_INT(res.snap->n_sockets, 3);
	gwt_done(&res);

	/* static addresses: inside the pool usable, outside not, other types unsupported */
	gwt_put(set,
		"{'apiVersion':'gateway.networking.k8s.io/v1','kind':'Gateway','metadata':{"
		"'namespace':'infra','name':'s1'},'spec':{'gatewayClassName':'wg','addresses':"
		"[{'value':'10.9.0.6'}],'listeners':[{'name':'h','port':80,'protocol':'HTTP'}]}}");
	gwt_put(set, "{'apiVersion':'gateway.networking.k8s.io/v1','kind':'Gateway','metadata':{"
		     "'namespace':'infra','name':'s2'},'spec':{'gatewayClassName':'wg','addresses':"
		     "[{'type':'IPAddress','value':'192.0.2.10'},{'value':'10.9.0.5'}],"
		     "'listeners':[{'name':'h','port':80,'protocol':'HTTP'}]}}");
	gwt_put(set, "{'apiVersion':'gateway.networking.k8s.io/v1','kind':'Gateway','metadata':{"
		     "'namespace':'infra','name':'s3'},'spec':{'gatewayClassName':'wg','addresses':"
		     "[{'type':'Hostname','value':'gw.example.com'}],"
		     "'listeners':[{'name':'h','port':80,'protocol':'HTTP'}]}}");
	gwt_put(set,
		"{'apiVersion':'gateway.networking.k8s.io/v1','kind':'Gateway','metadata':{"
		"'namespace':'infra','name':'s4'},'spec':{'gatewayClassName':'wg','addresses':"
		"[{'type':'IPAddress'}],'listeners':[{'name':'h','port':80,'protocol':'HTTP'}]}}");
	CHECK_EQ_INT(gw_reconcile(set, &o, &res), 0);
	CHECK_EQ_STR(gwt_str_at(&res, GW_K_GATEWAY, "infra", "s1", "/addresses/0/value"),
		     "10.9.0.6");
	CHECK_EQ_STR(gwt_cond_at(&res, GW_K_GATEWAY, "infra", "s1", "/conditions", "Programmed"),
		     "True:Programmed");
	CHECK_EQ_STR(gwt_cond_at(&res, GW_K_GATEWAY, "infra", "s2", "/conditions", "Accepted"),
		     "True:Accepted");
	CHECK_EQ_STR(gwt_cond_at(&res, GW_K_GATEWAY, "infra", "s2", "/conditions", "Programmed"),
		     "False:AddressNotUsable");
	CHECK_EQ_STR(gwt_cond_at(&res, GW_K_GATEWAY, "infra", "s3", "/conditions", "Accepted"),
		     "False:UnsupportedAddress");
	CHECK_EQ_STR(gwt_str_at(&res, GW_K_GATEWAY, "infra", "s3", "/addresses/0/value"), "(none)");
	/* an empty value asks for any address: the pool's last free one */
	CHECK_EQ_STR(gwt_str_at(&res, GW_K_GATEWAY, "infra", "s4", "/addresses/0/value"),
		     "10.9.0.4");
	CHECK_EQ_STR(gwt_cond_at(&res, GW_K_GATEWAY, "infra", "s4", "/conditions", "Programmed"),
		     "True:Programmed");
	gwt_done(&res);

	/* the pool is exhausted for a further Gateway */
	gwt_put(set, GW("infra", "z", "[" HTTP_ALL "]"));
	CHECK_EQ_INT(gw_reconcile(set, &o, &res), 0);
	CHECK_EQ_STR(gwt_cond_at(&res, GW_K_GATEWAY, "infra", "z", "/conditions", "Programmed"),
		     "False:AddressNotAssigned");
	CHECK(res.diag.errors > 0);
	gwt_done(&res);
	gw_objset_free(set);
}

TEST(gw_filters_timeouts_retry_compiled)
{
	struct gw_objset *set = gw_objset_new();
	struct gw_result res = {0};

	gwt_base(set);
	gwt_put(set, GW("infra", "gw", "[" HTTP_ALL "]"));
	gwt_put(set,
		RT("HTTPRoute", "infra", "r", "2026-01-01T00:00:01Z",
		   "{'parentRefs':[{'name':'gw'}],'rules':[{'name':'one',"
		   "'filters':[{'type':'RequestHeaderModifier','requestHeaderModifier':{"
		   "'set':[{'name':'X-S','value':'1'}],'add':[{'name':'X-A','value':'2'}],"
		   "'remove':['X-R']}},"
		   "{'type':'RequestMirror','requestMirror':{'backendRef':{'name':'svc','port':"
		   "8080},"
		   "'fraction':{'numerator':25,'denominator':50}}},"
		   "{'type':'CORS','cors':{'allowOrigins':['https://"
		   "a.example'],'allowCredentials':true,"
		   "'maxAge':60}}],"
		   "'timeouts':{'request':'10s','backendRequest':'0s'},"
		   "'retry':{'codes':[500,503],'attempts':2,'backoff':'100ms'},"
		   "'backendRefs':[{'name':'svc','port':8081,'filters':[{'type':"
		   "'ResponseHeaderModifier','responseHeaderModifier':{'set':[{'name':'X-B','value'"
		   ":'b'}]}}]}]},"
		   "{'matches':[{'path':{'type':'PathPrefix','value':'/redir'}}],'filters':["
		   "{'type':'RequestRedirect','requestRedirect':{'scheme':'https','statusCode':301,"
		   "'path':{'type':'ReplacePrefixMatch','replacePrefixMatch':'/new'}}}]},"
		   "{'matches':[{'path':{'type':'PathPrefix','value':'/rw'}}],'filters':["
		   "{'type':'URLRewrite','urlRewrite':{'hostname':'h.example','path':{'type':"
		   "'ReplaceFullPath','replaceFullPath':'/full'}}}],"
		   "'backendRefs':[{'name':'svc','port':8080}]},"
		   "{'matches':[{'path':{'type':'PathPrefix','value':'/ext'}}],'filters':["
		   "{'type':'ExtensionRef','extensionRef':{'group':'example.com','kind':'F','name':"
		   "'f'}}],"
		   "'backendRefs':[{'name':'svc','port':8080}]}]}"));
	CHECK_EQ_INT(gwt_run(set, NULL, &res), 0);
	/* one rule cannot be honoured: the route is partially invalid */
	CHECK_EQ_STR(RCOND(GW_K_HTTPROUTE, "infra", "r", "Accepted"), "True:Accepted");
	CHECK_EQ_STR(RCOND(GW_K_HTTPROUTE, "infra", "r", "PartiallyInvalid"),
		     "True:UnsupportedValue");
	CHECK_EQ_STR(RCOND(GW_K_HTTPROUTE, "infra", "r", "ResolvedRefs"), "False:InvalidKind");
	const struct snap_listener *l = gwt_listener(res.snap, "infra/gw", "http");
	CHECK(l && l->n_http_rules == 4);
	if (!l || l->n_http_rules != 4)
		goto out;
	/* longer prefixes first: /redir, /ext, /rw, then the catch-all */
	const struct snap_http_rule *redir = &l->http_rules[0], *ext = &l->http_rules[1];
	const struct snap_http_rule *rw = &l->http_rules[2], *one = &l->http_rules[3];
	CHECK_EQ_STR(ext->match.path, "/ext");
	CHECK_EQ_INT(ext->n_backends, 1);
	CHECK_EQ_INT(ext->backends[0].invalid_status, 500);
	CHECK_EQ_INT(ext->n_filters, 0);
	CHECK_EQ_STR(redir->match.path, "/redir");
	CHECK_EQ_INT(redir->n_filters, 1);
	CHECK_EQ_INT(redir->filters[0].type, SNAP_F_REDIRECT);
	CHECK_EQ_STR(redir->filters[0].u.redirect.scheme, "https");
	CHECK_EQ_INT(redir->filters[0].u.redirect.status, 301);
	CHECK_EQ_INT(redir->filters[0].u.redirect.path_type, SNAP_PATH_PREFIX);
	CHECK_EQ_STR(redir->filters[0].u.redirect.path, "/new");
	CHECK(redir->filters[0].u.redirect.hostname == NULL);
	CHECK_EQ_INT(rw->filters[0].type, SNAP_F_REWRITE);
	CHECK_EQ_STR(rw->filters[0].u.rewrite.hostname, "h.example");
	CHECK_EQ_INT(rw->filters[0].u.rewrite.path_type, SNAP_PATH_FULL);
	CHECK_EQ_STR(rw->filters[0].u.rewrite.path, "/full");
	CHECK_EQ_STR(one->rule_name, "one");
	CHECK_EQ_INT(one->rule_index, 0);
	CHECK_EQ_INT(one->n_filters, 3);
	if (one->n_filters == 3) {
		const struct snap_header_mod *h = &one->filters[0].u.header;
		CHECK_EQ_INT(one->filters[0].type, SNAP_F_REQ_HEADER);
		CHECK_EQ_INT(h->n_set, 1);
		CHECK_EQ_STR(h->set[0].name, "X-S");
		CHECK_EQ_INT(h->n_add, 1);
		CHECK_EQ_INT(h->n_remove, 1);
		CHECK_EQ_INT(one->filters[1].type, SNAP_F_MIRROR);
		CHECK_EQ_INT(one->filters[1].u.mirror.numerator, 25);
		CHECK_EQ_INT(one->filters[1].u.mirror.denominator, 50);
		CHECK_EQ_INT(one->filters[1].u.mirror.backend->n_endpoints, 2);
		CHECK_EQ_INT(one->filters[2].type, SNAP_F_CORS);
		CHECK_EQ_INT(one->filters[2].u.cors.n_allow_origins, 1);
		CHECK(one->filters[2].u.cors.allow_credentials);
		CHECK_EQ_INT(one->filters[2].u.cors.max_age_s, 60);
	}
	CHECK_EQ_INT(one->request_timeout_ms, 10000);
	CHECK_EQ_INT(one->backend_request_timeout_ms, UINT32_MAX); /* "0s" disables */
	CHECK_EQ_INT(one->retry.attempts, 2);
	CHECK_EQ_INT(one->retry.n_codes, 2);
	CHECK_EQ_INT(one->retry.backoff_ms, 100);
	CHECK_EQ_INT(one->n_backends, 1);
	CHECK_EQ_INT(one->backends[0].proto, SNAP_APP_H2C);
	CHECK_EQ_INT(one->backends[0].n_filters, 1);
	CHECK_EQ_INT(one->backends[0].endpoints[0].port, 3001);
out:
	gwt_done(&res);
	gw_objset_free(set);
}

TEST(gw_grpcroute_compiled_to_paths)
{
	struct gw_objset *set = gw_objset_new();
	struct gw_result res = {0};

	gwt_base(set);
	gwt_put(set, GW("infra", "gw", "[" HTTP_ALL "]"));
	gwt_put(set, RT("GRPCRoute", "infra", "g", "2026-01-01T00:00:01Z",
			"{'parentRefs':[{'name':'gw'}],'hostnames':['grpc.example.com'],'rules':[{"
			"'matches':[{'method':{'service':'pkg.Svc','method':'Get'}},"
			"{'method':{'service':'pkg.Svc'}},{'method':{'method':'Do.It'}},"
			"{'method':{'type':'RegularExpression','service':'pkg\\\\..*'},"
			"'headers':[{'name':'X-Env','value':'prod'}]}],"
			"'backendRefs':[{'name':'svc','port':8080}]}]}"));
	CHECK_EQ_INT(gwt_run(set, NULL, &res), 0);
	CHECK_EQ_STR(RCOND(GW_K_GRPCROUTE, "infra", "g", "Accepted"), "True:Accepted");
	const struct snap_listener *l = gwt_listener(res.snap, "infra/gw", "http");
	CHECK(l && l->n_http_rules == 4);
	if (l && l->n_http_rules == 4) {
		CHECK(l->http_rules[0].grpc);
		CHECK_EQ_INT(l->http_rules[0].match.path_type, SNAP_PM_EXACT);
		CHECK_EQ_STR(l->http_rules[0].match.path, "/pkg.Svc/Get");
		CHECK_EQ_INT(l->http_rules[1].match.path_type, SNAP_PM_REGEX);
		CHECK_EQ_STR(l->http_rules[1].match.path, "/pkg\\..*/[^/]+");
		CHECK_EQ_STR(l->http_rules[1].match.headers[0].name, "x-env");
		CHECK_EQ_STR(l->http_rules[2].match.path, "/[^/]+/Do\\.It");
		CHECK_EQ_INT(l->http_rules[3].match.path_type, SNAP_PM_PREFIX);
		CHECK_EQ_STR(l->http_rules[3].match.path, "/pkg.Svc");
		/* port 8080 declares no appProtocol: gRPC still goes as h2c */
		CHECK_EQ_INT(l->http_rules[0].backends[0].proto, SNAP_APP_H2C);
	}
	gwt_done(&res);
	gw_objset_free(set);
}

TEST(gw_l4_routes)
{
	struct gw_objset *set = gw_objset_new();
	struct gw_result res = {0};

	gwt_base(set);
	secret(set, "infra", "cert");
	gwt_put(set, GW("infra", "gw",
			"[{'name':'tcp','port':9000,'protocol':'TCP'},"
			"{'name':'udp','port':5300,'protocol':'UDP'},"
			"{'name':'pass','port':443,'protocol':'TLS','hostname':'*.example.com',"
			"'tls':{'mode':'Passthrough'}},"
			"{'name':'term','port':443,'protocol':'TLS','hostname':'t.example.org',"
			"'tls':{'mode':'Terminate','certificateRefs':[{'name':'cert'}]}},"
			"{'name':'http','port':80,'protocol':'HTTP'}]"));
	gwt_put(set, RT("TCPRoute", "infra", "t1", "2026-01-01T00:00:01Z",
			"{'parentRefs':[{'name':'gw','sectionName':'tcp'}],'rules':[{'backendRefs':"
			"[{'name':'svc','port':8080,'weight':2}]}]}"));
	gwt_put(set, RT("TCPRoute", "infra", "t2", "2026-01-01T00:00:02Z",
			"{'parentRefs':[{'name':'gw','sectionName':'tcp'}],'rules':[{'backendRefs':"
			"[{'name':'nope','port':8080}]}]}"));
	gwt_put(set, RT("UDPRoute", "infra", "u", "2026-01-01T00:00:01Z",
			"{'parentRefs':[{'name':'gw'}],'rules':[{'backendRefs':[{'name':'svc','"
			"port':8080}]}]}"));
	gwt_put(set,
		RT("TLSRoute", "infra", "tls", "2026-01-01T00:00:01Z",
		   "{'parentRefs':[{'name':'gw'}],'hostnames':['a.example.com','t.example.org'],"
		   "'rules':[{'backendRefs':[{'name':'svc','port':8080}]}]}"));
	gwt_put(set,
		RT("TCPRoute", "infra", "wrong", "2026-01-01T00:00:01Z",
		   "{'parentRefs':[{'name':'gw','sectionName':'http'}],'rules':[{'backendRefs':"
		   "[{'name':'svc','port':8080}]}]}"));
	CHECK_EQ_INT(gwt_run(set, "127.0.1.0/24", &res), 0);
	CHECK_EQ_STR(RCOND(GW_K_TCPROUTE, "infra", "t1", "Accepted"), "True:Accepted");
	CHECK_EQ_STR(RCOND(GW_K_TCPROUTE, "infra", "t2", "ResolvedRefs"), "False:BackendNotFound");
	CHECK_EQ_STR(RCOND(GW_K_UDPROUTE, "infra", "u", "Accepted"), "True:Accepted");
	CHECK_EQ_STR(RCOND(GW_K_TLSROUTE, "infra", "tls", "Accepted"), "True:Accepted");
	CHECK_EQ_STR(RCOND(GW_K_TCPROUTE, "infra", "wrong", "Accepted"),
		     "False:NotAllowedByListeners");
	CHECK_EQ_INT(gwt_int_at(&res, GW_K_GATEWAY, "infra", "gw", "/listeners/0/attachedRoutes"),
		     2);
	CHECK_EQ_INT(gwt_int_at(&res, GW_K_GATEWAY, "infra", "gw", "/listeners/1/attachedRoutes"),
		     1);
	CHECK_EQ_INT(gwt_int_at(&res, GW_K_GATEWAY, "infra", "gw", "/listeners/2/attachedRoutes"),
		     1);
	CHECK_EQ_INT(gwt_int_at(&res, GW_K_GATEWAY, "infra", "gw", "/listeners/3/attachedRoutes"),
		     1);
	/* both TCPRoutes are accepted and counted; the oldest one is served */
	const struct snap_listener *tcp = gwt_listener(res.snap, "infra/gw", "tcp");
	CHECK(tcp && tcp->n_l4_backends == 1);
	if (tcp && tcp->n_l4_backends == 1) {
		CHECK_EQ_STR(tcp->l4_route, "infra/t1");
		CHECK_EQ_INT(tcp->l4_backends[0].weight, 2);
		CHECK_EQ_INT(tcp->l4_backends[0].n_endpoints, 2);
		CHECK_EQ_INT(tcp->l4_backends[0].invalid_status, 0);
	}
	const struct snap_listener *pass = gwt_listener(res.snap, "infra/gw", "pass");
	CHECK(pass && pass->tls_mode == SNAP_TLS_PASSTHROUGH && pass->n_tls_routes == 1);
	if (pass && pass->n_tls_routes == 1) {
		CHECK_EQ_INT(pass->tls_routes[0].n_hostnames, 1);
		CHECK_EQ_STR(pass->tls_routes[0].hostnames[0], "a.example.com");
	}
	const struct snap_listener *term = gwt_listener(res.snap, "infra/gw", "term");
	CHECK(term && term->tls_mode == SNAP_TLS_TERMINATE && term->n_certs == 1);
	/* sockets: 80/tcp, 443/tcp (both TLS listeners), 5300/udp, 9000/tcp */
	CHECK_EQ_INT(res.snap->n_sockets, 4);
	for (size_t i = 0; i < res.snap->n_sockets; i++) {
		const struct snap_socket *s = &res.snap->sockets[i];
		if (s->port == 443)
			CHECK_EQ_INT(s->n_listeners, 2);
		if (s->port == 5300)
			CHECK_EQ_INT(s->transport, SNAP_T_UDP);
	}
	gwt_done(&res);
	gw_objset_free(set);
}

TEST(gw_wildcard_socket_protocol_conflict)
{
	struct gw_objset *set = gw_objset_new();
	struct gw_result res = {0};

	gwt_base(set);
	secret(set, "infra", "cert");
	gwt_put(set, GW("infra", "a", "[{'name':'h','port':8443,'protocol':'HTTP'}]"));
	gwt_put(set, "{'apiVersion':'gateway.networking.k8s.io/v1','kind':'Gateway','metadata':{"
		     "'namespace':'infra','name':'b'},'spec':{'gatewayClassName':'wg','listeners':"
		     "[{'name':'s','port':8443,'protocol':'HTTPS','tls':{'certificateRefs':"
		     "[{'name':'cert'}]}}]}}");
	/* no pool: both bind 0.0.0.0:8443, which cannot be HTTP and HTTPS at once */
	CHECK_EQ_INT(gwt_run(set, NULL, &res), 0);
	CHECK_EQ_STR(gwt_cond_at(&res, GW_K_GATEWAY, "infra", "a", "/listeners/0/conditions",
				 "Conflicted"),
		     "False:NoConflicts");
	CHECK_EQ_STR(gwt_cond_at(&res, GW_K_GATEWAY, "infra", "b", "/listeners/0/conditions",
				 "Conflicted"),
		     "True:ProtocolConflict");
	CHECK_EQ_INT(res.snap->n_sockets, 1);
	CHECK_EQ_INT(res.snap->n_listeners, 1);
	gwt_done(&res);
	/* with a pool each Gateway has its own address and both serve */
	CHECK_EQ_INT(gwt_run(set, "127.0.1.0/24", &res), 0);
	CHECK_EQ_INT(res.snap->n_sockets, 2);
	gwt_done(&res);
	gw_objset_free(set);
}

TEST(gw_listenerset_attachment)
{
	struct gw_objset *set = gw_objset_new();
	struct gw_result res = {0};

	gwt_base(set);
	gwt_put(set, "{'apiVersion':'gateway.networking.k8s.io/v1','kind':'Gateway','metadata':{"
		     "'namespace':'infra','name':'gw'},'spec':{'gatewayClassName':'wg',"
		     "'allowedListeners':{'namespaces':{'from':'Same'}},"
		     "'listeners':[{'name':'main','port':80,'protocol':'HTTP'}]}}");
	gwt_put(set,
		"{'apiVersion':'gateway.networking.k8s.io/v1','kind':'ListenerSet','metadata':{"
		"'namespace':'infra','name':'ls1','creationTimestamp':'2026-01-01T00:00:01Z'},"
		"'spec':{'parentRef':{'name':'gw'},'listeners':[{'name':'extra','port':8080,"
		"'protocol':'HTTP'},{'name':'clash','port':80,'protocol':'TCP'}]}}");
	gwt_put(set,
		"{'apiVersion':'gateway.networking.k8s.io/v1','kind':'ListenerSet','metadata':{"
		"'namespace':'infra','name':'ls2','creationTimestamp':'2026-01-01T00:00:02Z'},"
		"'spec':{'parentRef':{'name':'gw'},'listeners':[{'name':'x','port':8080,"
		"'protocol':'HTTP'}]}}");
	gwt_put(set,
		"{'apiVersion':'gateway.networking.k8s.io/v1','kind':'ListenerSet','metadata':{"
		"'namespace':'apps','name':'ls3'},'spec':{'parentRef':{'name':'gw',"
		"'namespace':'infra'},'listeners':[{'name':'y','port':9090,'protocol':'HTTP'}]}}");
	gwt_put(set, RT("HTTPRoute", "infra", "r", "2026-01-01T00:00:01Z",
			"{'parentRefs':[{'kind':'ListenerSet','name':'ls1','sectionName':'extra'}],"
			"'rules':[{'backendRefs':[{'name':'svc','port':8080}]}]}"));
	CHECK_EQ_INT(gwt_run(set, "127.0.1.0/24", &res), 0);
	CHECK_EQ_STR(gwt_cond_at(&res, GW_K_LISTENERSET, "infra", "ls1", "/conditions", "Accepted"),
		     "True:Accepted");
	CHECK_EQ_STR(gwt_cond_at(&res, GW_K_LISTENERSET, "infra", "ls1", "/listeners/1/conditions",
				 "Conflicted"),
		     "True:ProtocolConflict");
	CHECK_EQ_STR(gwt_cond_at(&res, GW_K_LISTENERSET, "infra", "ls2", "/conditions", "Accepted"),
		     "False:ListenersNotValid");
	CHECK_EQ_STR(gwt_cond_at(&res, GW_K_LISTENERSET, "infra", "ls2", "/listeners/0/conditions",
				 "Accepted"),
		     "False:HostnameConflict");
	CHECK_EQ_STR(gwt_cond_at(&res, GW_K_LISTENERSET, "apps", "ls3", "/conditions", "Accepted"),
		     "False:NotAllowed");
	CHECK_EQ_INT(gwt_int_at(&res, GW_K_GATEWAY, "infra", "gw", "/attachedListenerSets"), 1);
	CHECK_EQ_STR(RCOND(GW_K_HTTPROUTE, "infra", "r", "Accepted"), "True:Accepted");
	CHECK_EQ_STR(gwt_str_at(&res, GW_K_HTTPROUTE, "infra", "r", "/parents/0/parentRef/kind"),
		     "ListenerSet");
	CHECK_EQ_INT(
		gwt_int_at(&res, GW_K_LISTENERSET, "infra", "ls1", "/listeners/0/attachedRoutes"),
		1);
	const struct snap_listener *l = gwt_listener(res.snap, "infra/ls1", "extra");
	CHECK(l && l->n_http_rules == 1);
	/* served on the parent Gateway's address */
	for (size_t i = 0; i < res.snap->n_sockets; i++)
		CHECK_EQ_STR(res.snap->sockets[i].addr, "127.0.1.1");
	gwt_done(&res);
	gw_objset_free(set);
}

TEST(gw_backendtlspolicy_applies_and_conflicts)
{
	struct gw_objset *set = gw_objset_new();
	struct gw_result res = {0};

	gwt_base(set);
	gwt_put(set, "{'apiVersion':'v1','kind':'ConfigMap','metadata':{'namespace':'infra',"
		     "'name':'ca'},'data':{'ca.crt':'" CA_PEM "'}}");
	gwt_put(set, GW("infra", "gw", "[" HTTP_ALL "]"));
	gwt_put(set, RT("HTTPRoute", "infra", "r", "2026-01-01T00:00:01Z",
			"{'parentRefs':[{'name':'gw'}],'rules':[{'backendRefs':[{'name':'svc','"
			"port':8080}]},"
			"{'matches':[{'path':{'type':'PathPrefix','value':'/h2'}}],"
			"'backendRefs':[{'name':'svc','port':8081}]}]}"));
	gwt_put(set, "{'apiVersion':'gateway.networking.k8s.io/v1','kind':'BackendTLSPolicy',"
		     "'metadata':{'namespace':'infra','name':'old','creationTimestamp':"
		     "'2026-01-01T00:00:01Z','generation':4},'spec':{'targetRefs':[{'group':'',"
		     "'kind':'Service','name':'svc'}],'validation':{'hostname':'svc.example.com',"
		     "'caCertificateRefs':[{'group':'','kind':'ConfigMap','name':'ca'}],"
		     "'subjectAltNames':[{'type':'URI','uri':'spiffe://x/y'}]}}}");
	gwt_put(set, "{'apiVersion':'gateway.networking.k8s.io/v1','kind':'BackendTLSPolicy',"
		     "'metadata':{'namespace':'infra','name':'new','creationTimestamp':"
		     "'2026-01-01T00:00:02Z'},'spec':{'targetRefs':[{'group':'','kind':'Service',"
		     "'name':'svc'}],'validation':{'hostname':'svc.example.com',"
		     "'wellKnownCACertificates':'System'}}}");
	gwt_put(set, "{'apiVersion':'gateway.networking.k8s.io/v1','kind':'BackendTLSPolicy',"
		     "'metadata':{'namespace':'infra','name':'port','creationTimestamp':"
		     "'2026-01-01T00:00:03Z'},'spec':{'targetRefs':[{'group':'','kind':'Service',"
		     "'name':'svc','sectionName':'h2'}],'validation':{'hostname':'h2.example.com',"
		     "'caCertificateRefs':[{'group':'','kind':'Secret','name':'ca'}]}}}");
	CHECK_EQ_INT(gwt_run(set, NULL, &res), 0);
	CHECK_EQ_STR(gwt_cond_at(&res, GW_K_BACKENDTLSPOLICY, "infra", "old",
				 "/ancestors/0/conditions", "Accepted"),
		     "True:Accepted");
	CHECK_EQ_INT(gwt_int_at(&res, GW_K_BACKENDTLSPOLICY, "infra", "old",
				"/ancestors/0/conditions/0/observedGeneration"),
		     4);
	CHECK_EQ_STR(gwt_str_at(&res, GW_K_BACKENDTLSPOLICY, "infra", "old",
				"/ancestors/0/ancestorRef/name"),
		     "gw");
	CHECK_EQ_STR(gwt_cond_at(&res, GW_K_BACKENDTLSPOLICY, "infra", "new",
				 "/ancestors/0/conditions", "Accepted"),
		     "False:Conflicted");
	CHECK_EQ_STR(gwt_cond_at(&res, GW_K_BACKENDTLSPOLICY, "infra", "port",
				 "/ancestors/0/conditions", "ResolvedRefs"),
		     "False:InvalidCACertificateRef");
	CHECK_EQ_STR(gwt_cond_at(&res, GW_K_BACKENDTLSPOLICY, "infra", "port",
				 "/ancestors/0/conditions", "Accepted"),
		     "False:NoValidCACertificate");
	const struct snap_listener *l = gwt_listener(res.snap, "infra/gw", "http");
	CHECK(l && l->n_http_rules == 2);
	if (l && l->n_http_rules == 2) {
		const struct snap_backend *h2 = &l->http_rules[0].backends[0];
		const struct snap_backend *plain = &l->http_rules[1].backends[0];
		/* the port's own policy wins and is invalid: 500, never unverified TLS */
		CHECK_EQ_INT(h2->invalid_status, 500);
		CHECK(plain->tls != NULL);
		if (plain->tls) {
			CHECK_EQ_STR(plain->tls->sni, "svc.example.com");
			CHECK(strstr(plain->tls->ca_pem, "BEGIN CERTIFICATE") != NULL);
			CHECK_EQ_INT(plain->tls->n_sans, 1);
			CHECK_EQ_STR(plain->tls->sans[0], "spiffe://x/y");
		}
	}
	gwt_done(&res);
	gw_objset_free(set);
}

TEST(gw_frontend_client_validation)
{
	struct gw_objset *set = gw_objset_new();
	struct gw_result res = {0};

	gwt_base(set);
	secret(set, "infra", "cert");
	gwt_put(set, "{'apiVersion':'v1','kind':'ConfigMap','metadata':{'namespace':'infra',"
		     "'name':'ca'},'data':{'ca.crt':'" CA_PEM "'}}");
	gwt_put(set,
		"{'apiVersion':'gateway.networking.k8s.io/v1','kind':'Gateway','metadata':{"
		"'namespace':'infra','name':'gw'},'spec':{'gatewayClassName':'wg','tls':{"
		"'frontend':{'default':{'validation':{'caCertificateRefs':[{'group':'','kind':"
		"'ConfigMap','name':'ca'}]}},'perPort':[{'port':8443,'tls':{'validation':{"
		"'mode':'AllowInsecureFallback','caCertificateRefs':[{'group':'','kind':"
		"'ConfigMap','name':'ca'}]}}},{'port':9443,'tls':{'validation':{"
		"'caCertificateRefs':[{'group':'','kind':'ConfigMap','name':'missing'}]}}}]}},"
		"'listeners':[{'name':'a','port':443,'protocol':'HTTPS','tls':{'certificateRefs':"
		"[{'name':'cert'}]}},{'name':'b','port':8443,'protocol':'HTTPS','tls':{"
		"'certificateRefs':[{'name':'cert'}]}},{'name':'c','port':9443,'protocol':'HTTPS',"
		"'tls':{'certificateRefs':[{'name':'cert'}]}}]}}");
	CHECK_EQ_INT(gwt_run(set, "127.0.1.0/24", &res), 0);
	const struct snap_listener *a = gwt_listener(res.snap, "infra/gw", "a");
	const struct snap_listener *b = gwt_listener(res.snap, "infra/gw", "b");
	CHECK(a && a->client_auth == SNAP_CA_REQUIRE && a->client_ca_pem);
	CHECK(b && b->client_auth == SNAP_CA_ALLOW_INSECURE);
	CHECK(gwt_listener(res.snap, "infra/gw", "c") == NULL);
	CHECK_EQ_STR(LCOND("infra", "gw", 2, "Accepted"), "False:NoValidCACertificate");
	CHECK_EQ_STR(LCOND("infra", "gw", 2, "ResolvedRefs"), "False:InvalidCACertificateRef");
	CHECK_EQ_STR(gwt_cond_at(&res, GW_K_GATEWAY, "infra", "gw", "/conditions",
				 "InsecureFrontendValidationMode"),
		     "True:ConfigurationChanged");
	gwt_done(&res);
	gw_objset_free(set);
}

/* A route whose parent is the Gateway attaches to the Gateway's own
 * listeners only, never to those of its ListenerSets. */
TEST(gw_listenerset_routes_scoped_to_parent)
{
	struct gw_objset *set = gw_objset_new();
	struct gw_result res = {0};

	gwt_base(set);
	gwt_put(set, "{'apiVersion':'gateway.networking.k8s.io/v1','kind':'Gateway','metadata':{"
		     "'namespace':'infra','name':'gw'},'spec':{'gatewayClassName':'wg',"
		     "'allowedListeners':{'namespaces':{'from':'All'}},"
		     "'listeners':[{'name':'main','port':80,'protocol':'HTTP'}]}}");
	gwt_put(set,
		"{'apiVersion':'gateway.networking.k8s.io/v1','kind':'ListenerSet','metadata':{"
		"'namespace':'infra','name':'ls'},'spec':{'parentRef':{'name':'gw'},"
		"'listeners':[{'name':'extra','port':8080,'protocol':'HTTP'}]}}");
	gwt_put(set, RT("HTTPRoute", "infra", "to-gw", "2026-01-01T00:00:01Z",
			"{'parentRefs':[{'name':'gw'}]}"));
	gwt_put(set, RT("HTTPRoute", "infra", "to-gw-extra", "2026-01-01T00:00:01Z",
			"{'parentRefs':[{'name':'gw','sectionName':'extra'}]}"));
	CHECK_EQ_INT(gwt_run(set, "127.0.1.0/24", &res), 0);
	CHECK_EQ_STR(RCOND(GW_K_HTTPROUTE, "infra", "to-gw", "Accepted"), "True:Accepted");
	CHECK_EQ_STR(RCOND(GW_K_HTTPROUTE, "infra", "to-gw-extra", "Accepted"),
		     "False:NoMatchingParent");
	CHECK_EQ_INT(gwt_int_at(&res, GW_K_GATEWAY, "infra", "gw", "/listeners/0/attachedRoutes"),
		     1);
	CHECK_EQ_INT(
		gwt_int_at(&res, GW_K_LISTENERSET, "infra", "ls", "/listeners/0/attachedRoutes"),
		0);
	const struct snap_listener *l = gwt_listener(res.snap, "infra/ls", "extra");
	CHECK(l && l->n_http_rules == 0);
	gwt_done(&res);
	gw_objset_free(set);
}

/* A match whose regular expression cannot be compiled leaves its rule
 * invalid (reported, the route partially invalid) and the other rules
 * served. */
TEST(gw_invalid_regex_rule)
{
	struct gw_objset *set = gw_objset_new();
	struct gw_result res = {0};

	gwt_base(set);
	gwt_put(set, GW("infra", "gw", "[" HTTP_ALL "]"));
	gwt_put(set, RT("HTTPRoute", "infra", "r", "2026-01-01T00:00:01Z",
			"{'parentRefs':[{'name':'gw'}],'rules':[{'matches':[{'path':{'type':"
			"'RegularExpression','value':'/"
			"a(['}}],'backendRefs':[{'name':'svc','port':8080}]},"
			"{'matches':[{'headers':[{'type':'RegularExpression','name':'x','value':'*"
			"bad'}]}],"
			"'backendRefs':[{'name':'svc','port':8080}]},"
			"{'matches':[{'path':{'type':'RegularExpression','value':'/ok/[0-9]+'}}],"
			"'backendRefs':[{'name':'svc','port':8080}]}]}"));
	CHECK_EQ_INT(gwt_run(set, NULL, &res), 0);
	CHECK_EQ_STR(RCOND(GW_K_HTTPROUTE, "infra", "r", "Accepted"), "True:Accepted");
	CHECK_EQ_STR(RCOND(GW_K_HTTPROUTE, "infra", "r", "PartiallyInvalid"),
		     "True:UnsupportedValue");
	const struct snap_listener *l = gwt_listener(res.snap, "infra/gw", "http");
	CHECK(l && l->n_http_rules == 1);
	if (l && l->n_http_rules == 1)
		CHECK_EQ_STR(l->http_rules[0].match.path, "/ok/[0-9]+");
	gwt_done(&res);
	gw_objset_free(set);
}

/* attachedRoutes counts routes on a listener that is not accepted (here a
 * conflicted one); the route is not accepted through it and nothing is
 * served there. */
TEST(gw_attached_routes_on_conflicted_listener)
{
	struct gw_objset *set = gw_objset_new();
	struct gw_result res = {0};

	gwt_base(set);
	gwt_put(set, GW("infra", "gw",
			"[{'name':'a','port':80,'protocol':'HTTP'},"
			"{'name':'b','port':80,'protocol':'HTTP'}]"));
	gwt_put(set, RT("HTTPRoute", "infra", "r", "2026-01-01T00:00:01Z",
			"{'parentRefs':[{'name':'gw','sectionName':'b'}]}"));
	gwt_put(set, RT("HTTPRoute", "infra", "both", "2026-01-01T00:00:01Z",
			"{'parentRefs':[{'name':'gw'}]}"));
	CHECK_EQ_INT(gwt_run(set, NULL, &res), 0);
	CHECK_EQ_STR(LCOND("infra", "gw", 1, "Conflicted"), "True:HostnameConflict");
	CHECK_EQ_INT(gwt_int_at(&res, GW_K_GATEWAY, "infra", "gw", "/listeners/0/attachedRoutes"),
		     1);
	CHECK_EQ_INT(gwt_int_at(&res, GW_K_GATEWAY, "infra", "gw", "/listeners/1/attachedRoutes"),
		     2);
	CHECK_EQ_STR(RCOND(GW_K_HTTPROUTE, "infra", "r", "Accepted"),
		     "False:NotAllowedByListeners");
	CHECK_EQ_STR(RCOND(GW_K_HTTPROUTE, "infra", "both", "Accepted"), "True:Accepted");
	CHECK(gwt_listener(res.snap, "infra/gw", "b") == NULL);
	gwt_done(&res);
	gw_objset_free(set);
}

TEST(gw_parameters_refs)
{
	struct gw_objset *set = gw_objset_new();
	struct gw_result res = {0};

	gwt_base(set);
	gwt_put(set, "{'apiVersion':'gateway.networking.k8s.io/v1','kind':'GatewayClass',"
		     "'metadata':{'name':'bad'},'spec':{'controllerName':'" GWT_CONTROLLER "',"
		     "'parametersRef':{'group':'example.com','kind':'Params','name':'p'}}}");
	gwt_put(set, "{'apiVersion':'gateway.networking.k8s.io/v1','kind':'Gateway','metadata':{"
		     "'namespace':'infra','name':'on-bad'},'spec':{'gatewayClassName':'bad',"
		     "'listeners':[{'name':'h','port':80,'protocol':'HTTP'}]}}");
	gwt_put(set,
		"{'apiVersion':'gateway.networking.k8s.io/v1','kind':'Gateway','metadata':{"
		"'namespace':'infra','name':'gw'},'spec':{'gatewayClassName':'wg','infrastructure':"
		"{'parametersRef':{'group':'invalid.io','kind':'InvalidParameters','name':'x'},"
		"'labels':{'a':'b'}},'listeners':[{'name':'h','port':80,'protocol':'HTTP'}]}}");
	CHECK_EQ_INT(gwt_run(set, "127.0.1.0/24", &res), 0);
	CHECK_EQ_STR(gwt_cond_at(&res, GW_K_GATEWAYCLASS, "", "bad", "/conditions", "Accepted"),
		     "False:InvalidParameters");
	/* a Gateway of a class we do not accept is left alone */
	CHECK(gwt_status(&res, GW_K_GATEWAY, "infra", "on-bad") == NULL);
	CHECK_EQ_STR(gwt_cond_at(&res, GW_K_GATEWAY, "infra", "gw", "/conditions", "Accepted"),
		     "False:InvalidParameters");
	CHECK_EQ_STR(gwt_cond_at(&res, GW_K_GATEWAY, "infra", "gw", "/conditions", "Programmed"),
		     "False:Invalid");
	CHECK_EQ_INT(res.snap->n_sockets, 0);
	gwt_done(&res);
	gw_objset_free(set);
}

TEST(gw_backend_client_certificate)
{
	static const struct {
		const char *ref;
		const char *want;
	} t[] = {
		{"{'name':'client'}", "True:ResolvedRefs"},
		{"{'name':'nope'}", "False:InvalidClientCertificateRef"},
		{"{'group':'example.com','kind':'Secret','name':'client'}",
		 "False:InvalidClientCertificateRef"},
		{"{'kind':'ConfigMap','name':'client'}", "False:InvalidClientCertificateRef"},
		{"{'name':'client','namespace':'apps'}", "False:RefNotPermitted"},
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct gw_objset *set = gw_objset_new();
		struct gw_result res = {0};
		char buf[1024];
		gwt_base(set);
		secret(set, "infra", "client");
		secret(set, "apps", "client");
		gwt_put(set,
			"{'apiVersion':'v1','kind':'ConfigMap','metadata':{'namespace':'infra',"
			"'name':'ca'},'data':{'ca.crt':'" CA_PEM "'}}");
		gwt_put(set,
			"{'apiVersion':'gateway.networking.k8s.io/v1','kind':'BackendTLSPolicy',"
			"'metadata':{'namespace':'infra','name':'p'},'spec':{'targetRefs':[{'group'"
			":"
			"'','kind':'Service','name':'svc'}],'validation':{'hostname':'svc.example."
			"com',"
			"'caCertificateRefs':[{'group':'','kind':'ConfigMap','name':'ca'}]}}}");
		snprintf(
			buf, sizeof(buf),
			"{'apiVersion':'gateway.networking.k8s.io/v1','kind':'Gateway','metadata':{"
			"'namespace':'infra','name':'gw'},'spec':{'gatewayClassName':'wg','tls':{"
			"'backend':{'clientCertificateRef':%s}},'listeners':[{'name':'h','port':80,"
			"'protocol':'HTTP'}]}}",
			t[i].ref);
		gwt_put(set, buf);
		gwt_put(set,
			RT("HTTPRoute", "infra", "r", "2026-01-01T00:00:01Z",
			   "{'parentRefs':[{'name':'gw'}],'rules':[{'backendRefs':[{'name':'svc',"
			   "'port':8080}]}]}"));
		CHECK_EQ_INT(gwt_run(set, "127.0.1.0/24", &res), 0);
		const char *got = gwt_cond_at(&res, GW_K_GATEWAY, "infra", "gw", "/conditions",
					      "ResolvedRefs");
		if (strcmp(got, t[i].want))
			fprintf(stderr, "  case %zu: %s\n", i, t[i].ref);
		CHECK_EQ_STR(got, t[i].want);
		/* the Gateway stays accepted either way */
		CHECK_EQ_STR(
			gwt_cond_at(&res, GW_K_GATEWAY, "infra", "gw", "/conditions", "Accepted"),
			"True:Accepted");
		const struct snap_listener *l = gwt_listener(res.snap, "infra/gw", "h");
		CHECK(l && l->n_http_rules == 1);
		if (l && l->n_http_rules == 1 && l->http_rules[0].backends[0].tls) {
			bool has = l->http_rules[0].backends[0].tls->client_cert_pem != NULL;
			CHECK_EQ_INT(has, i == 0);
		} else {
			CHECK(!"backend TLS expected");
		}
		gwt_done(&res);
		gw_objset_free(set);
	}
}

/* Rules of one hostname share one copy of it in the snapshot (precedence
 * order keeps them together); rules of another hostname get their own. */
TEST(gw_snapshot_rules_share_their_hostname)
{
	struct gw_objset *set = gw_objset_new();
	struct gw_result res = {0};

	gwt_base(set);
	gwt_put(set, GW("infra", "gw", "[" HTTP_ALL "]"));
	gwt_put(set,
		RT("HTTPRoute", "infra", "a", "2026-01-01T00:00:01Z",
		   "{'parentRefs':[{'name':'gw'}],'hostnames':['a.example.com','b.example.com'],"
		   "'rules':[{'matches':[{'path':{'type':'PathPrefix','value':'/x'}},"
		   "{'path':{'type':'PathPrefix','value':'/y'}}],"
		   "'backendRefs':[{'name':'svc','port':8080}]}]}"));
	gwt_put(set, RT("HTTPRoute", "infra", "b", "2026-01-01T00:00:02Z",
			"{'parentRefs':[{'name':'gw'}],'hostnames':['a.example.com'],"
			"'rules':[{'backendRefs':[{'name':'svc','port':8080}]}]}"));
	CHECK_EQ_INT(gwt_run(set, NULL, &res), 0);
	const struct snap_listener *l = gwt_listener(res.snap, "infra/gw", "http");
	CHECK(l && l->n_http_rules == 5);
	if (!l || l->n_http_rules != 5)
		goto out;
	const struct snap_http_rule *r = l->http_rules;
	for (size_t i = 0; i < 5; i++)
		CHECK_EQ_INT(r[i].n_hostnames, 1);
	/* a.example.com: /x, /y, then route b's "/"; b.example.com: /x, /y */
	CHECK_EQ_STR(r[0].hostnames[0], "a.example.com");
	CHECK(r[1].hostnames == r[0].hostnames && r[2].hostnames == r[0].hostnames);
	CHECK_EQ_STR(r[2].route, "infra/b");
	CHECK_EQ_STR(r[3].hostnames[0], "b.example.com");
	CHECK(r[3].hostnames != r[0].hostnames && r[4].hostnames == r[3].hostnames);
out:
	gwt_done(&res);
	gw_objset_free(set);
}
