/* SPDX-License-Identifier: MIT */
/*
 * test_infra.c: the decisions of src/kube/infra.c that need no server: the
 * merge patch that moves a Service as the cluster holds it to the desired
 * one (labels and annotations ours whole, owner references and ports
 * replaced, selector removed, server defaults left alone, nothing when
 * equal), and which Services are managed, ours, or going away.
 */
#include "kube/infra.c"

#include "check.h"

static char *sq(const char *s)
{
	char *j = strdup(s);

	for (char *p = j; *p; p++)
		if (*p == '\'')
			*p = '"';
	return j;
}

/* infra_patch on single-quoted JSON; returns the patch (or NULL) and rc. */
static char *patch(const char *cur, const char *want, int *rc)
{
	char *c = sq(cur), *w = sq(want), *out = NULL;
	yyjson_doc *cd = yyjson_read(c, strlen(c), 0), *wd = yyjson_read(w, strlen(w), 0);
	size_t len;

	CHECK(cd && wd);
	*rc = infra_patch(yyjson_doc_get_root(cd), yyjson_doc_get_root(wd), &out, &len);
	yyjson_doc_free(cd);
	yyjson_doc_free(wd);
	free(c);
	free(w);
	return out;
}

#define WANT                                                                                       \
	"{'metadata':{'name':'g-waygate','labels':{'a':'1','b':'2'},'annotations':{'n':'x'},"      \
	"'ownerReferences':[{'kind':'Gateway','name':'g','uid':'u','controller':true}]},"          \
	"'spec':{'type':'ClusterIP','clusterIP':'None','ports':[{'name':'tcp-80','protocol':"      \
	"'TCP','port':80,'targetPort':80}]}}"

TEST(kube_infra_patch_nothing_when_equal)
{
	int rc;
	/* the server's defaults and bookkeeping beside what we set */
	char *p = patch("{'metadata':{'name':'g-waygate','resourceVersion':'7','uid':'s',"
			"'labels':{'b':'2','a':'1'},'annotations':{'n':'x'},"
			"'ownerReferences':[{'kind':'Gateway','name':'g','uid':'u','controller':"
			"true}]},'spec':{'type':'ClusterIP','clusterIP':'None','clusterIPs':["
			"'None'],'sessionAffinity':'None','ports':[{'name':'tcp-80','protocol':"
			"'TCP','port':80,'targetPort':80,'appProtocol':'x'}]},'status':{}}",
			WANT, &rc);

	CHECK_EQ_INT(rc, 0);
	CHECK(p == NULL);
	free(p);
}

TEST(kube_infra_patch_labels_and_annotations)
{
	int rc;
	char *p = patch("{'metadata':{'resourceVersion':'7','labels':{'a':'1','b':'9','c':'3'},"
			"'ownerReferences':[{'kind':'Gateway','name':'g','uid':'u','controller':"
			"true}]},'spec':{'type':'ClusterIP','ports':[{'name':'tcp-80','protocol':"
			"'TCP','port':80,'targetPort':80}]}}",
			WANT, &rc);

	CHECK_EQ_INT(rc, 1);
	CHECK_EQ_STR(p, "{\"metadata\":{\"resourceVersion\":\"7\",\"labels\":{\"c\":null,"
			"\"b\":\"2\"},\"annotations\":{\"n\":\"x\"}}}");
	free(p);
	/* annotations to drop entirely */
	p = patch("{'metadata':{'resourceVersion':'8','labels':{'a':'1','b':'2'},'annotations':"
		  "{'n':'x','old':'y'},'ownerReferences':[{'kind':'Gateway','name':'g','uid':'u',"
		  "'controller':true}]},'spec':{'type':'ClusterIP','ports':[{'name':'tcp-80',"
		  "'protocol':'TCP','port':80,'targetPort':80}]}}",
		  WANT, &rc);
	CHECK_EQ_INT(rc, 1);
	CHECK_EQ_STR(p,
		     "{\"metadata\":{\"resourceVersion\":\"8\",\"annotations\":{\"old\":null}}}");
	free(p);
}

TEST(kube_infra_patch_owner_ports_selector_type)
{
	int rc;
	char *p = patch("{'metadata':{'resourceVersion':'3','labels':{'a':'1','b':'2'},"
			"'annotations':{'n':'x'},'ownerReferences':[{'kind':'Gateway','name':'g',"
			"'uid':'old','controller':true}]},'spec':{'type':'NodePort','selector':{"
			"'app':'x'},'ports':[{'name':'tcp-81','protocol':'TCP','port':81,"
			"'targetPort':81}]}}",
			WANT, &rc);

	CHECK_EQ_INT(rc, 1);
	CHECK_EQ_STR(p, "{\"metadata\":{\"resourceVersion\":\"3\",\"ownerReferences\":[{\"kind\":"
			"\"Gateway\",\"name\":\"g\",\"uid\":\"u\",\"controller\":true}]},\"spec\":"
			"{\"ports\":[{\"name\":\"tcp-80\",\"protocol\":\"TCP\",\"port\":80,"
			"\"targetPort\":80}],\"selector\":null,\"type\":\"ClusterIP\"}}");
	free(p);
	/* a port more on the server: replaced whole */
	p = patch(
		"{'metadata':{'resourceVersion':'4','labels':{'a':'1','b':'2'},'annotations':"
		"{'n':'x'},'ownerReferences':[{'kind':'Gateway','name':'g','uid':'u','controller':"
		"true}]},'spec':{'type':'ClusterIP','ports':[{'name':'tcp-80','protocol':'TCP',"
		"'port':80,'targetPort':80},{'name':'udp-53','protocol':'UDP','port':53}]}}",
		WANT, &rc);
	CHECK_EQ_INT(rc, 1);
	CHECK(p && strstr(p, "\"ports\":[{\"name\":\"tcp-80\"") && !strstr(p, "udp-53"));
	free(p);
}

static struct gw_object *svc_obj(const char *squoted)
{
	char *j = sq(squoted), err[160];
	struct gw_object *o = gw_object_parse(GW_K_SERVICE, j, strlen(j), err, sizeof(err));

	free(j);
	CHECK(o != NULL);
	return o;
}

TEST(kube_infra_service_ownership)
{
	struct gw_object *mine = svc_obj(
		"{'apiVersion':'v1','kind':'Service','metadata':{'name':'a','namespace':'n',"
		"'labels':{'app.kubernetes.io/managed-by':'waygate'},'annotations':{"
		"'waygate.dev/controller-name':'c/one'}}}");
	struct gw_object *other_box = svc_obj(
		"{'apiVersion':'v1','kind':'Service','metadata':{'name':'b','namespace':'n',"
		"'labels':{'app.kubernetes.io/managed-by':'waygate'},'annotations':{"
		"'waygate.dev/controller-name':'c/two'}}}");
	struct gw_object *plain = svc_obj(
		"{'apiVersion':'v1','kind':'Service','metadata':{'name':'c','namespace':'n',"
		"'labels':{'app.kubernetes.io/managed-by':'helm'},'annotations':{"
		"'waygate.dev/controller-name':'c/one'}}}");
	struct gw_object *dying = svc_obj(
		"{'apiVersion':'v1','kind':'Service','metadata':{'name':'d','namespace':'n',"
		"'deletionTimestamp':'2026-01-01T00:00:00Z'}}");

	if (!mine || !other_box || !plain || !dying)
		return;
	CHECK(svc_is_managed(mine) && svc_is_ours(mine, "c/one"));
	CHECK(svc_is_managed(other_box) && !svc_is_ours(other_box, "c/one"));
	CHECK(!svc_is_managed(plain) && !svc_is_ours(plain, "c/one"));
	CHECK(svc_is_deleting(dying) && !svc_is_deleting(mine));
	gw_object_unref(mine);
	gw_object_unref(other_box);
	gw_object_unref(plain);
	gw_object_unref(dying);
}
