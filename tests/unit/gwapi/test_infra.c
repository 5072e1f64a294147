/* SPDX-License-Identifier: MIT */
/*
 * test_infra.c: the desired Service of src/gwapi/infra.c: its name (cut
 * and hashed to stay a DNS-1035 label of at most 63 characters), labels,
 * annotations, owner reference and ports, and which Gateways are ours.
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "yyjson.h"

#include "check.h"
#include "gwapi/infra.h"
#include "gwapi/objset.h"
#include "gwtest.h"

#define GWJ(extra_md, spec)                                                                        \
	"{'apiVersion':'gateway.networking.k8s.io/v1','kind':'Gateway','metadata':{'name':'edge'," \
	"'namespace':'team','uid':'u-1'" extra_md "},'spec':" spec "}"

static bool is_dns1035(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 63 || !islower((unsigned char)s[0]) || s[n - 1] == '-')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!islower((unsigned char)s[i]) && !isdigit((unsigned char)s[i]) && s[i] != '-')
			return false;
	return true;
}

TEST(gw_infra_service_name_table)
{
	static const struct {
		const char *gw;
		const char *want; /* NULL: hashed, checked for shape */
	} t[] = {
		{"edge", "edge-waygate"},
		{"a-b-c", "a-b-c-waygate"},
		/* 55 + 8 = 63: still plain */
		{"a234567890123456789012345678901234567890123456789012345",
		 "a234567890123456789012345678901234567890123456789012345-waygate"},
		/* 56 + 8 = 64: hashed */
		{"a2345678901234567890123456789012345678901234567890123456", NULL},
		{"gw.example.com", NULL},
		{"1gw", NULL},
		{"x.y", NULL},
	};
	char out[GW_INFRA_NAME_MAX + 1], again[GW_INFRA_NAME_MAX + 1];

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		gw_infra_service_name(t[i].gw, out);
		if (t[i].want)
			CHECK_EQ_STR(out, t[i].want);
		else
			CHECK(strlen(out) == 63 || strstr(out, "-waygate") != NULL);
		if (!is_dns1035(out))
			fprintf(stderr, "  not a DNS-1035 label: \"%s\" (from \"%s\")\n", out,
				t[i].gw);
		CHECK(is_dns1035(out));
		CHECK(strlen(out) >= 8 && !strcmp(out + strlen(out) - 8, "-waygate"));
		gw_infra_service_name(t[i].gw, again);
		CHECK_EQ_STR(out, again); /* stable */
	}
	gw_infra_service_name("gw.example.com", out);
	CHECK(!strncmp(out, "gw-example-com-", 15));
	CHECK_EQ_INT(strlen(out), strlen("gw-example-com-") + 8 + 8);
	gw_infra_service_name("1gw", out);
	CHECK(!strncmp(out, "gw-1gw-", 7));
}

TEST(gw_infra_service_name_long_and_distinct)
{
	char a[300], b[300], na[GW_INFRA_NAME_MAX + 1], nb[GW_INFRA_NAME_MAX + 1];

	memset(a, 'a', 253);
	a[253] = '\0';
	memcpy(b, a, sizeof(a));
	b[252] = 'b';
	gw_infra_service_name(a, na);
	gw_infra_service_name(b, nb);
	CHECK_EQ_INT(strlen(na), 63);
	CHECK(is_dns1035(na) && is_dns1035(nb));
	CHECK(strcmp(na, nb) != 0); /* same 46-character stem, different hashes */
	CHECK(!strncmp(na, nb, 46));
	/* "x.y" and "x-y" differ */
	gw_infra_service_name("x.y", na);
	gw_infra_service_name("x-y", nb);
	CHECK(strcmp(na, nb) != 0);
	CHECK_EQ_STR(nb, "x-y-waygate");
	/* a cut that ends on '-' does not leave "--" */
	memset(a, 'a', 45);
	a[45] = '.';
	memset(a + 46, 'c', 20);
	a[66] = '\0';
	gw_infra_service_name(a, na);
	CHECK(is_dns1035(na));
	CHECK(strstr(na, "--") == NULL);
}

TEST(gw_infra_label_value_table)
{
	char out[GW_INFRA_NAME_MAX + 1], long_name[100];

	gw_infra_label_value("edge", out);
	CHECK_EQ_STR(out, "edge");
	memset(long_name, 'z', 63);
	long_name[63] = '\0';
	gw_infra_label_value(long_name, out);
	CHECK_EQ_STR(out, long_name);
	long_name[63] = 'z';
	long_name[64] = '\0';
	gw_infra_label_value(long_name, out);
	CHECK_EQ_INT(strlen(out), 63);
	CHECK(!strncmp(out, long_name, 54) && out[54] == '-');
}

static yyjson_doc *build(const char *squoted, struct gw_infra_service *s, int *rc)
{
	struct gw_object *g = gwt_obj(squoted);
	yyjson_doc *d = NULL;

	*rc = -1;
	if (!g)
		return NULL;
	*rc = gw_infra_service_build(g, GWT_CONTROLLER, s);
	if (*rc == 0) {
		CHECK_EQ_STR(s->ns, "team");
		d = yyjson_read(s->json, s->len, 0);
		CHECK(d != NULL);
		s->ns = NULL; /* borrowed from g */
	}
	gw_object_unref(g);
	return d;
}

static const char *str_at(yyjson_doc *d, const char *ptr)
{
	return yyjson_get_str(yyjson_ptr_get(yyjson_doc_get_root(d), ptr));
}

TEST(gw_infra_service_build_metadata)
{
	struct gw_infra_service s;
	int rc;
	yyjson_doc *d = build(
		GWJ("",
		    "{'gatewayClassName':'wg','infrastructure':{'labels':{'key2':'value2',"
		    "'app.kubernetes.io/managed-by':'someone-else'},'annotations':{'key1':"
		    "'value1','waygate.dev/controller-name':'forged'}},'listeners':[{'name':'h',"
		    "'protocol':'HTTP','port':8080}]}"),
		&s, &rc);

	CHECK_EQ_INT(rc, 0);
	CHECK_EQ_STR(s.name, "edge-waygate");
	CHECK_EQ_STR(str_at(d, "/apiVersion"), "v1");
	CHECK_EQ_STR(str_at(d, "/kind"), "Service");
	CHECK_EQ_STR(str_at(d, "/metadata/name"), "edge-waygate");
	CHECK_EQ_STR(str_at(d, "/metadata/namespace"), "team");
	CHECK_EQ_STR(str_at(d, "/metadata/labels/gateway.networking.k8s.io~1gateway-name"), "edge");
	/* ours win over spec.infrastructure */
	CHECK_EQ_STR(str_at(d, "/metadata/labels/app.kubernetes.io~1managed-by"), "waygate");
	CHECK_EQ_STR(str_at(d, "/metadata/labels/key2"), "value2");
	CHECK_EQ_INT(yyjson_obj_size(yyjson_ptr_get(yyjson_doc_get_root(d), "/metadata/labels")),
		     3);
	CHECK_EQ_STR(str_at(d, "/metadata/annotations/key1"), "value1");
	CHECK_EQ_STR(str_at(d, "/metadata/annotations/waygate.dev~1controller-name"),
		     GWT_CONTROLLER);
	CHECK_EQ_INT(
		yyjson_obj_size(yyjson_ptr_get(yyjson_doc_get_root(d), "/metadata/annotations")),
		2);
	/* owner reference */
	CHECK_EQ_INT(yyjson_arr_size(
			     yyjson_ptr_get(yyjson_doc_get_root(d), "/metadata/ownerReferences")),
		     1);
	CHECK_EQ_STR(str_at(d, "/metadata/ownerReferences/0/apiVersion"),
		     "gateway.networking.k8s.io/v1");
	CHECK_EQ_STR(str_at(d, "/metadata/ownerReferences/0/kind"), "Gateway");
	CHECK_EQ_STR(str_at(d, "/metadata/ownerReferences/0/name"), "edge");
	CHECK_EQ_STR(str_at(d, "/metadata/ownerReferences/0/uid"), "u-1");
	CHECK(yyjson_get_bool(
		yyjson_ptr_get(yyjson_doc_get_root(d), "/metadata/ownerReferences/0/controller")));
	/* headless, no selector */
	CHECK_EQ_STR(str_at(d, "/spec/type"), "ClusterIP");
	CHECK_EQ_STR(str_at(d, "/spec/clusterIP"), "None");
	CHECK(yyjson_ptr_get(yyjson_doc_get_root(d), "/spec/selector") == NULL);
	yyjson_doc_free(d);
	free(s.json);
}

TEST(gw_infra_service_build_ports)
{
	struct gw_infra_service s;
	int rc;
	yyjson_doc *d =
		build(GWJ("", "{'gatewayClassName':'wg','listeners':["
			      "{'name':'a','protocol':'HTTPS','port':443},"
			      "{'name':'b','protocol':'HTTP','port':80},"
			      "{'name':'c','protocol':'HTTP','port':80,'hostname':'x.test'},"
			      "{'name':'d','protocol':'UDP','port':53},"
			      "{'name':'e','protocol':'TCP','port':53},"
			      "{'name':'f','protocol':'TLS','port':8443},"
			      "{'name':'g','protocol':'example.com/custom','port':9000},"
			      "{'name':'h','protocol':'HTTP','port':0}]}"),
		      &s, &rc);
	yyjson_val *ports = yyjson_ptr_get(yyjson_doc_get_root(d), "/spec/ports");
	static const struct {
		const char *name, *proto;
		int port;
	} want[] = {
		{"tcp-53", "TCP", 53},   {"udp-53", "UDP", 53},     {"tcp-80", "TCP", 80},
		{"tcp-443", "TCP", 443}, {"tcp-8443", "TCP", 8443},
	};

	CHECK_EQ_INT(rc, 0);
	CHECK_EQ_INT(yyjson_arr_size(ports), 5);
	for (size_t i = 0; i < 5 && i < yyjson_arr_size(ports); i++) {
		yyjson_val *p = yyjson_arr_get(ports, i);

		CHECK_EQ_STR(yyjson_get_str(yyjson_obj_get(p, "name")), want[i].name);
		CHECK_EQ_STR(yyjson_get_str(yyjson_obj_get(p, "protocol")), want[i].proto);
		CHECK_EQ_INT(yyjson_get_int(yyjson_obj_get(p, "port")), want[i].port);
		CHECK_EQ_INT(yyjson_get_int(yyjson_obj_get(p, "targetPort")), want[i].port);
	}
	/* no infrastructure: only our labels, only the controller annotation */
	CHECK_EQ_INT(yyjson_obj_size(yyjson_ptr_get(yyjson_doc_get_root(d), "/metadata/labels")),
		     2);
	CHECK_EQ_INT(
		yyjson_obj_size(yyjson_ptr_get(yyjson_doc_get_root(d), "/metadata/annotations")),
		1);
	yyjson_doc_free(d);
	free(s.json);

	/* no listeners at all: an empty port list, still a valid headless Service */
	d = build(GWJ("", "{'gatewayClassName':'wg','listeners':[]}"), &s, &rc);
	CHECK_EQ_INT(rc, 0);
	CHECK(yyjson_is_arr(yyjson_ptr_get(yyjson_doc_get_root(d), "/spec/ports")));
	CHECK_EQ_INT(yyjson_arr_size(yyjson_ptr_get(yyjson_doc_get_root(d), "/spec/ports")), 0);
	yyjson_doc_free(d);
	free(s.json);
}

TEST(gw_infra_service_build_edges)
{
	struct gw_infra_service s;
	struct gw_object *o;
	int rc;
	yyjson_doc *d;

	/* no uid (not from a cluster): no owner reference */
	d = build("{'apiVersion':'gateway.networking.k8s.io/v1','kind':'Gateway','metadata':{"
		  "'name':'edge','namespace':'team'},'spec':{'gatewayClassName':'wg',"
		  "'listeners':[]}}",
		  &s, &rc);
	CHECK_EQ_INT(rc, 0);
	CHECK(yyjson_ptr_get(yyjson_doc_get_root(d), "/metadata/ownerReferences") == NULL);
	yyjson_doc_free(d);
	free(s.json);
	/* long names: the Service name is cut, the label value too */
	d = build("{'apiVersion':'gateway.networking.k8s.io/v1','kind':'Gateway','metadata':{"
		  "'name':'a-very-long-gateway-name-that-goes-on-and-on-and-on-well-past-sixty-"
		  "three',"
		  "'namespace':'team','uid':'u'},'spec':{'gatewayClassName':'wg','listeners':[]}}",
		  &s, &rc);
	CHECK_EQ_INT(rc, 0);
	CHECK(strlen(s.name) <= 63);
	CHECK_EQ_STR(str_at(d, "/metadata/name"), s.name);
	CHECK(strlen(str_at(d, "/metadata/labels/gateway.networking.k8s.io~1gateway-name")) <= 63);
	CHECK_EQ_STR(str_at(d, "/metadata/ownerReferences/0/name"),
		     "a-very-long-gateway-name-that-goes-on-and-on-and-on-well-past-sixty-three");
	yyjson_doc_free(d);
	free(s.json);
	/* not a Gateway */
	o = gwt_obj("{'apiVersion':'v1','kind':'Service','metadata':{'name':'x','namespace':'t'}}");
	CHECK(o != NULL);
	if (o) {
		CHECK_EQ_INT(gw_infra_service_build(o, GWT_CONTROLLER, &s), -EINVAL);
		CHECK(s.json == NULL);
		gw_object_unref(o);
	}
}

TEST(gw_infra_gateway_is_ours_rules)
{
	struct gw_objset *set = gw_objset_new();
	const struct gw_object *g;

	gwt_base(set); /* class wg is ours */
	gwt_put(set, "{'apiVersion':'gateway.networking.k8s.io/v1','kind':'GatewayClass',"
		     "'metadata':{'name':'other'},'spec':{'controllerName':'example.net/x'}}");
	gwt_put(set, GWJ("", "{'gatewayClassName':'wg','listeners':[]}"));
	gwt_put(set, "{'apiVersion':'gateway.networking.k8s.io/v1','kind':'Gateway','metadata':{"
		     "'name':'theirs','namespace':'team'},'spec':{'gatewayClassName':'other',"
		     "'listeners':[]}}");
	gwt_put(set, "{'apiVersion':'gateway.networking.k8s.io/v1','kind':'Gateway','metadata':{"
		     "'name':'orphan','namespace':'team'},'spec':{'gatewayClassName':'missing',"
		     "'listeners':[]}}");
	gwt_put(set,
		"{'apiVersion':'gateway.networking.k8s.io/v1','kind':'Gateway','metadata':{"
		"'name':'dying','namespace':'team','deletionTimestamp':'2026-01-01T00:00:00Z'},"
		"'spec':{'gatewayClassName':'wg','listeners':[]}}");
	g = gw_objset_get(set, GW_K_GATEWAY, "team", "edge");
	CHECK(g && gw_infra_gateway_is_ours(set, g, GWT_CONTROLLER));
	CHECK(g && !gw_infra_gateway_is_ours(set, g, "example.net/x"));
	CHECK(g && !gw_infra_gateway_is_ours(set, g, NULL));
	g = gw_objset_get(set, GW_K_GATEWAY, "team", "theirs");
	CHECK(g && !gw_infra_gateway_is_ours(set, g, GWT_CONTROLLER));
	g = gw_objset_get(set, GW_K_GATEWAY, "team", "orphan");
	CHECK(g && !gw_infra_gateway_is_ours(set, g, GWT_CONTROLLER));
	g = gw_objset_get(set, GW_K_GATEWAY, "team", "dying");
	CHECK(g && !gw_infra_gateway_is_ours(set, g, GWT_CONTROLLER));
	gw_objset_free(set);
}
