/* SPDX-License-Identifier: MIT */
/*
 * test_status.c: the status merge of src/kube/status.c: other controllers'
 * route parents and policy ancestors keep their places, ours are replaced;
 * Gateway-like statuses are ours entirely.
 */
#include <stdlib.h>
#include <string.h>

#include <yyjson.h>

#include "check.h"
#include "gwapi/objset.h"
#include "kube/internal.h"

#define OURS "waygate.dev/gateway-controller"

static char *merge(enum gw_kind k, const char *current, const char *ours)
{
	yyjson_doc *d = current ? yyjson_read(current, strlen(current), 0) : NULL;
	char *out = kube_status_merge(k, OURS, yyjson_doc_get_root(d), ours);

	yyjson_doc_free(d);
	return out;
}

#define P(ctl, gw) "{\"controllerName\":\"" ctl "\",\"parentRef\":{\"name\":\"" gw "\"}}"

TEST(kube_status_merge_route_parents)
{
	char *m = merge(GW_K_HTTPROUTE,
			"{\"parents\":[" P("a/x", "g1") "," P(OURS, "old") "," P("b/y", "g2") "]}",
			"{\"parents\":[" P(OURS, "new") "]}");

	CHECK_EQ_STR(m, "{\"parents\":[" P("a/x", "g1") "," P("b/y", "g2") "," P(OURS, "new") "]}");
	free(m);
	/* no current status */
	m = merge(GW_K_GRPCROUTE, NULL, "{\"parents\":[" P(OURS, "g") "]}");
	CHECK_EQ_STR(m, "{\"parents\":[" P(OURS, "g") "]}");
	free(m);
	/* ours removed: theirs stay */
	m = merge(GW_K_TCPROUTE, "{\"parents\":[" P(OURS, "g") "," P("c/z", "h") "]}",
		  "{\"parents\":[]}");
	CHECK_EQ_STR(m, "{\"parents\":[" P("c/z", "h") "]}");
	free(m);
	/* unknown fields of the current status are kept */
	m = merge(GW_K_UDPROUTE, "{\"extra\":1,\"parents\":[]}", "{\"parents\":[]}");
	CHECK_EQ_STR(m, "{\"extra\":1,\"parents\":[]}");
	free(m);
}

TEST(kube_status_merge_policy_ancestors)
{
	char *m =
		merge(GW_K_BACKENDTLSPOLICY, "{\"ancestors\":[" P("o/x", "g") "," P(OURS, "g") "]}",
		      "{\"ancestors\":[" P(OURS, "g2") "]}");

	CHECK_EQ_STR(m, "{\"ancestors\":[" P("o/x", "g") "," P(OURS, "g2") "]}");
	free(m);
}

TEST(kube_status_merge_whole_and_invalid)
{
	char *m = merge(GW_K_GATEWAY, "{\"conditions\":[{\"type\":\"Old\"}],\"x\":1}",
			"{\"conditions\":[{\"type\":\"Programmed\"}]}");

	CHECK_EQ_STR(m, "{\"conditions\":[{\"type\":\"Programmed\"}]}");
	free(m);
	CHECK(merge(GW_K_HTTPROUTE, NULL, "not json") == NULL);
	CHECK(merge(GW_K_HTTPROUTE, NULL, "[]") == NULL);
}

TEST(kube_status_patch_body)
{
	const char *json =
		"{\"apiVersion\":\"gateway.networking.k8s.io/v1\",\"kind\":\"Gateway\","
		"\"metadata\":{\"name\":\"g\",\"namespace\":\"a\",\"resourceVersion\":"
		"\"42\"},\"status\":{\"addresses\":[{\"value\":\"1.2.3.4\"}],\"conditions\":"
		"[{\"type\":\"A\"}],\"nested\":{\"x\":1,\"y\":2}}}";
	struct gw_object *o = gw_object_parse(-1, json, strlen(json), NULL, 0);
	size_t len;
	char *p;

	CHECK(o != NULL);
	if (!o)
		return;
	/* removed keys become null, equal ones are left out, objects recurse */
	p = kube_status_patch(o, "{\"conditions\":[{\"type\":\"A\"}],\"nested\":{\"x\":1,\"y\":3}}",
			      &len);
	CHECK_EQ_STR(p, "{\"metadata\":{\"resourceVersion\":\"42\"},\"status\":{\"addresses\":null,"
			"\"nested\":{\"y\":3}}}");
	CHECK_EQ_INT(len, p ? strlen(p) : 0);
	free(p);
	/* arrays are replaced whole */
	p = kube_status_patch(o,
			      "{\"addresses\":[],\"conditions\":[{\"type\":\"B\"}],\"nested\":"
			      "{\"x\":1,\"y\":2}}",
			      &len);
	CHECK_EQ_STR(p, "{\"metadata\":{\"resourceVersion\":\"42\"},\"status\":{\"addresses\":[],"
			"\"conditions\":[{\"type\":\"B\"}]}}");
	free(p);
	CHECK(kube_status_patch(o, "nope", &len) == NULL);
	gw_object_unref(o);
}

/* A status write's answer must never resurrect an object the watch deleted
 * meanwhile, nor replace a newer one it delivered. */
TEST(kube_status_refresh_keeps_watch_membership)
{
	CHECK(kube_rv_newer("12", "9"));
	CHECK(!kube_rv_newer("9", "12"));
	CHECK(!kube_rv_newer("12", "12"));
	CHECK(kube_rv_newer("abc", "abd"));
	CHECK(!kube_rv_newer(NULL, "1"));
	CHECK(kube_rv_newer("1", NULL));
}
