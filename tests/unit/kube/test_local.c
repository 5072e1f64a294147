/* SPDX-License-Identifier: MIT */
/*
 * test_local.c: local mode's loader (src/kube/local.c): folders and files,
 * defaults filled in as an API server would, implied namespaces, errors
 * that name file, line and key.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <yyjson.h>

#include "check.h"
#include "core/diag.h"
#include "core/err.h"
#include "gwapi/objset.h"
#include "kube/kube.h"

static char dir[64];

static void put(const char *name, const char *content)
{
	char p[256];
	FILE *f;

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	f = fopen(p, "w");
	if (f) {
		fputs(content, f);
		fclose(f);
	}
}

static void mkdir_tmp(void)
{
	strcpy(dir, "/tmp/wg-local-XXXXXX");
	if (!mkdtemp(dir))
		dir[0] = 0;
}

static void rm_tmp(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", dir);
}

/* path: keys separated by '|' (keys may hold dots); "" when absent. */
static const char *field(const struct gw_object *o, const char *path)
{
	yyjson_val *v = yyjson_doc_get_root(o->doc);
	char seg[64];

	while (v && *path) {
		const char *dot = strchr(path, '|');
		size_t l = dot ? (size_t)(dot - path) : strlen(path);

		memcpy(seg, path, l);
		seg[l] = 0;
		v = yyjson_obj_get(v, seg);
		path += l + (dot ? 1 : 0);
	}
	return yyjson_get_str(v) ? yyjson_get_str(v) : "";
}

TEST(kube_local_folder_defaults_and_implied_namespaces)
{
	struct gw_objset *set = gw_objset_new();
	struct diag d = {0};
	const struct gw_object *o, *o2;
	char p[128];

	mkdir_tmp();
	put("00-gw.yaml", "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\n"
			  "metadata:\n  name: gw\n  namespace: edge\nspec:\n  gatewayClassName: c\n"
			  "  listeners: []\n---\n"
			  "apiVersion: gateway.networking.k8s.io/v1\nkind: GatewayClass\n"
			  "metadata:\n  name: c\n  namespace: ignored\n"
			  "spec:\n  controllerName: waygate.dev/gateway-controller\n");
	put("10-routes.yml", "apiVersion: v1\nkind: List\nitems:\n"
			     "- apiVersion: gateway.networking.k8s.io/v1\n  kind: HTTPRoute\n"
			     "  metadata: {name: r1}\n  spec: {}\n"
			     "- apiVersion: gateway.networking.k8s.io/v1\n  kind: HTTPRoute\n"
			     "  metadata: {name: r2, namespace: team}\n  spec: {}\n");
	put("20-secret.yaml", "apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\n"
			      "  namespace: edge\ntype: kubernetes.io/tls\nstringData:\n"
			      "  tls.crt: hello\ndata:\n  tls.key: eA==\n---\n"
			      "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: edge\n"
			      "  labels: {team: e}\n");
	put("README.md", "not: [yaml\n");
	put(".hidden.yaml", "not: [yaml\n");
	CHECK_EQ_INT(kube_load_local(dir, set, &d), 0);
	CHECK_EQ_INT(d.n, 0);
	o = gw_objset_get(set, GW_K_HTTPROUTE, "default", "r1");
	CHECK(o != NULL);
	if (o) {
		CHECK_EQ_INT(o->generation, 1);
		CHECK_EQ_STR(o->resource_version, "1");
		CHECK_EQ_STR(o->source, "file");
		snprintf(p, sizeof(p), "%s/10-routes.yml", dir);
		CHECK_EQ_STR(o->file, p);
		CHECK(strlen(o->uid) == 36);
		CHECK_EQ_STR(field(o, "metadata|namespace"), "default");
	}
	o2 = gw_objset_get(set, GW_K_HTTPROUTE, "team", "r2");
	/* creationTimestamp follows file and document order */
	CHECK(o && o2 && strcmp(o->creation_timestamp, o2->creation_timestamp) < 0);
	o2 = gw_objset_get(set, GW_K_GATEWAY, "edge", "gw");
	CHECK(o && o2 && strcmp(o2->creation_timestamp, o->creation_timestamp) < 0);
	CHECK(gw_objset_get(set, GW_K_GATEWAYCLASS, "", "c") != NULL);
	/* implied namespaces (default, team) and the declared one, labelled */
	CHECK_EQ_INT(gw_objset_count(set, GW_K_NAMESPACE), 3);
	o = gw_objset_get(set, GW_K_NAMESPACE, "", "team");
	CHECK(o && !strcmp(field(o, "metadata|labels|kubernetes.io/metadata.name"), "team"));
	o = gw_objset_get(set, GW_K_NAMESPACE, "", "edge");
	CHECK(o && !strcmp(field(o, "metadata|labels|team"), "e"));
	/* stringData folded into data */
	o = gw_objset_get(set, GW_K_SECRET, "edge", "s");
	CHECK(o && !strcmp(field(o, "data|tls.crt"), "aGVsbG8=") &&
	      !strcmp(field(o, "data|tls.key"), "eA==") && !strstr(o->json, "stringData"));
	/* deterministic: loading again gives byte-equal objects */
	{
		struct gw_objset *set2 = gw_objset_new();
		const struct gw_object *a, *b;

		CHECK_EQ_INT(kube_load_local(dir, set2, &d), 0);
		a = gw_objset_get(set, GW_K_HTTPROUTE, "team", "r2");
		b = gw_objset_get(set2, GW_K_HTTPROUTE, "team", "r2");
		CHECK(a && b && a->json_len == b->json_len &&
		      !memcmp(a->json, b->json, a->json_len));
		gw_objset_free(set2);
	}
	diag_fini(&d);
	gw_objset_free(set);
	rm_tmp();
}

/* Loads dir (with the cache when given) and checks every error names its
 * file, line and key. */
static void check_errors(struct kube_local_cache *cache)
{
	struct gw_objset *set = gw_objset_new();
	struct diag d = {0};
	bool dup = false, noname = false, nokind = false, unknown = false, syntax = false;

	CHECK_EQ_INT(kube_load_local_cached(dir, set, &d, cache), -WG_EINVAL_CONFIG);
	for (size_t i = 0; i < d.n; i++) {
		const struct diag_entry *e = &d.v[i];
		const char *f = e->file ? strrchr(e->file, '/') : NULL;

		if (f && !strcmp(f, "/b.yaml") && e->field && !strcmp(e->field, "metadata.name") &&
		    strstr(e->msg, "line 1") && strstr(e->msg, "defined twice") &&
		    strstr(e->msg, "a.yaml line 1") && !strcmp(e->object, "HTTPRoute default/r"))
			dup = true;
		if (f && !strcmp(f, "/a.yaml") && e->field && !strcmp(e->field, "metadata.name") &&
		    strstr(e->msg, "line 9"))
			noname = true;
		if (f && !strcmp(f, "/a.yaml") && e->field && !strcmp(e->field, "kind") &&
		    e->sev == DIAG_ERROR && strstr(e->msg, "line 13"))
			nokind = true;
		if (f && !strcmp(f, "/a.yaml") && e->sev == DIAG_WARN &&
		    strstr(e->msg, "line 17") && strstr(e->msg, "Deployment"))
			unknown = true;
		if (f && !strcmp(f, "/c.yaml") && strstr(e->msg, "line "))
			syntax = true;
	}
	CHECK(dup);
	CHECK(noname);
	CHECK(nokind);
	CHECK(unknown);
	CHECK(syntax);
	/* the valid object is still loaded */
	CHECK(gw_objset_get(set, GW_K_HTTPROUTE, "default", "r") != NULL);
	diag_fini(&d);
	gw_objset_free(set);
}

TEST(kube_local_errors_name_file_line_key)
{
	struct kube_local_cache *cache = kube_local_cache_new();
	struct gw_objset *set = gw_objset_new();
	struct diag d = {0};
	char p[128];

	mkdir_tmp();
	put("a.yaml", "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\n"
		      "metadata:\n  name: r\nspec: {}\n---\n"
		      "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\n"
		      "metadata:\n  namespace: x\nspec: {}\n---\n"
		      "apiVersion: v1\nmetadata: {name: y}\n---\n"
		      "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\n");
	put("b.yaml", "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\n"
		      "metadata:\n  name: r\n  namespace: default\nspec: {}\n");
	put("c.yaml", "a: [1,\n");
	check_errors(NULL);
	check_errors(cache);
	check_errors(cache); /* again, with the documents that had no error cached */
	kube_local_cache_free(cache);
	/* a missing path */
	snprintf(p, sizeof(p), "%s/none", dir);
	CHECK_EQ_INT(kube_load_local(p, set, &d), -ENOENT);
	CHECK(d.n == 1 && !strcmp(d.v[0].file, p));
	diag_fini(&d);
	gw_objset_free(set);
	rm_tmp();
}

static const struct gw_object *route(struct gw_objset *set, const char *name)
{
	return gw_objset_get(set, GW_K_HTTPROUTE, "default", name);
}

static bool same_json(const struct gw_object *a, const struct gw_object *b)
{
	return a && b && a->json_len == b->json_len && !memcmp(a->json, b->json, a->json_len);
}

#define R(name, path)                                                                              \
	"apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: " name "}\n" \
	"spec: {rules: [{matches: [{path: {value: " path "}}]}]}\n"

/* A reload with the cache parses only changed documents: unchanged ones
 * give the very same objects, and everything equals a load without it. */
TEST(kube_local_cache_reuses_unchanged_documents)
{
	struct kube_local_cache *cache = kube_local_cache_new();
	struct gw_objset *s1 = gw_objset_new(), *s2 = gw_objset_new(), *s3 = gw_objset_new();
	struct gw_objset *plain = gw_objset_new();
	struct diag d = {0};

	mkdir_tmp();
	put("r.yaml", R("a", "/a") "---\n" R("b", "/b") "--- # c\n" R("c", "/c")
		      "...\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\n");
	CHECK_EQ_INT(kube_load_local_cached(dir, s1, &d, cache), 0);
	CHECK_EQ_INT(d.n, 1); /* the Deployment is skipped with a warning */
	diag_fini(&d);
	put("r.yaml", R("a", "/a") "---\n" R("b", "/changed") "--- # c\n" R("c", "/c")
		      "...\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\n");
	CHECK_EQ_INT(kube_load_local_cached(dir, s2, &d, cache), 0);
	CHECK_EQ_INT(d.n, 1); /* and again: documents with messages are parsed each time */
	diag_fini(&d);
	CHECK(route(s1, "a") == route(s2, "a"));
	CHECK(route(s1, "c") == route(s2, "c"));
	CHECK(route(s1, "b") != route(s2, "b") && strstr(route(s2, "b")->json, "/changed"));
	CHECK_EQ_INT(kube_load_local(dir, plain, &d), 0);
	diag_fini(&d);
	const char *names[] = {"a", "b", "c"};
	for (int i = 0; i < 3; i++)
		CHECK(same_json(route(s2, names[i]), route(plain, names[i])));
	/* A document added in front moves the others: their creationTimestamp
	 * follows the order, so they are parsed again, not reused. */
	put("r.yaml", R("z", "/z") "---\n" R("a", "/a") "---\n" R("b", "/changed")
		      "--- # c\n" R("c", "/c"));
	CHECK_EQ_INT(kube_load_local_cached(dir, s3, &d, cache), 0);
	CHECK(route(s3, "a") != route(s2, "a"));
	CHECK(route(s3, "z") && route(s3, "a") &&
	      strcmp(route(s3, "z")->creation_timestamp, route(s3, "a")->creation_timestamp) < 0);
	diag_fini(&d);
	/* Sets share objects and are freed in any order. */
	gw_objset_free(s1);
	kube_local_cache_free(cache);
	gw_objset_free(s3);
	gw_objset_free(s2);
	gw_objset_free(plain);
	rm_tmp();
}

TEST(kube_local_single_file_and_seed)
{
	struct gw_objset *set = gw_objset_new();
	struct diag d = {0};
	char p[128];

	mkdir_tmp();
	put("one.yaml", "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n"
			"metadata:\n  name: e\n  namespace: n\n  labels:\n"
			"    kubernetes.io/service-name: s\naddressType: IPv4\n"
			"endpoints:\n- addresses: [127.0.0.1]\nports:\n- port: 9000\n");
	snprintf(p, sizeof(p), "%s/one.yaml", dir);
	CHECK_EQ_INT(kube_load_local(p, set, &d), 0);
	CHECK_EQ_INT(gw_objset_count(set, GW_K_ENDPOINTSLICE), 1);
	CHECK(gw_objset_get(set, GW_K_NAMESPACE, "", "n") != NULL);
	gw_objset_free(set);
	/* the bundled seed configuration loads cleanly */
	set = gw_objset_new();
	if (access("rootfs/etc/waygate/config", R_OK) == 0) {
		CHECK_EQ_INT(kube_load_local("rootfs/etc/waygate/config", set, &d), 0);
		CHECK_EQ_INT(gw_objset_count(set, GW_K_HTTPROUTE), 2);
	}
	diag_fini(&d);
	gw_objset_free(set);
	rm_tmp();
}
