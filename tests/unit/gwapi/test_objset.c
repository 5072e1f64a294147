/* SPDX-License-Identifier: MIT */
/*
 * test_objset.c: the object set: parsing metadata, kinds by name and
 * resource, put/replace/delete with the version counter, sorted listing,
 * refcounts across a replace, relists, the change log, and
 * gw_is_referenced.
 */
#include "gwtest.h"

TEST(gw_objset_kind_table)
{
	CHECK_EQ_STR(gw_kind_info(GW_K_HTTPROUTE)->group, "gateway.networking.k8s.io");
	CHECK_EQ_STR(gw_kind_info(GW_K_HTTPROUTE)->resource, "httproutes");
	CHECK_EQ_STR(gw_kind_info(GW_K_SERVICE)->group, "");
	CHECK_EQ_STR(gw_kind_info(GW_K_ENDPOINTSLICE)->group, "discovery.k8s.io");
	CHECK(!gw_kind_info(GW_K_GATEWAYCLASS)->namespaced);
	CHECK(!gw_kind_info(GW_K_NAMESPACE)->namespaced);
	CHECK(gw_kind_info(GW_K_GATEWAY)->has_status);
	CHECK(!gw_kind_info(GW_K_SECRET)->has_status);
	CHECK(gw_kind_info(GW_K_COUNT) == NULL);
	CHECK_EQ_INT(gw_kind_from_name("gateway.networking.k8s.io", "TLSRoute"), GW_K_TLSROUTE);
	CHECK_EQ_INT(gw_kind_from_name(NULL, "ConfigMap"), GW_K_CONFIGMAP);
	CHECK_EQ_INT(gw_kind_from_name("", "Gateway"), -1);
	CHECK_EQ_INT(gw_kind_from_name(NULL, "Deployment"), -1);
	CHECK_EQ_INT(gw_kind_from_resource("gateway.networking.k8s.io", "listenersets"),
		     GW_K_LISTENERSET);
	CHECK_EQ_INT(gw_kind_from_resource("", "secrets"), GW_K_SECRET);
	CHECK_EQ_INT(gw_kind_from_resource("", "httproutes"), -1);
	for (int k = 0; k < GW_K_COUNT; k++)
		CHECK_EQ_INT(gw_kind_from_name(gw_kind_info(k)->group, gw_kind_info(k)->kind), k);
}

TEST(gw_object_parse_metadata)
{
	struct gw_object *o =
		gwt_obj("{'apiVersion':'gateway.networking.k8s.io/v1','kind':'HTTPRoute',"
			"'metadata':{'namespace':'apps','name':'r','uid':'u-1',"
			"'resourceVersion':'42','generation':7,"
			"'creationTimestamp':'2026-01-02T03:04:05Z'},'spec':{}}");
	CHECK(o != NULL);
	if (!o)
		return;
	CHECK_EQ_INT(o->kind, GW_K_HTTPROUTE);
	CHECK_EQ_STR(o->ns, "apps");
	CHECK_EQ_STR(o->name, "r");
	CHECK_EQ_STR(o->uid, "u-1");
	CHECK_EQ_STR(o->resource_version, "42");
	CHECK_EQ_INT(o->generation, 7);
	CHECK_EQ_STR(o->creation_timestamp, "2026-01-02T03:04:05Z");
	CHECK_EQ_INT(o->refs, 1);
	CHECK(o->doc != NULL);
	gw_object_unref(o);

	/* cluster-scoped kinds have ns "", namespaced ones default to "default" */
	o = gwt_obj(
		"{'apiVersion':'v1','kind':'Namespace','metadata':{'name':'x','namespace':'y'}}");
	CHECK(o && !strcmp(o->ns, ""));
	gw_object_unref(o);
	o = gwt_obj("{'apiVersion':'v1','kind':'Service','metadata':{'name':'s'}}");
	CHECK(o && !strcmp(o->ns, "default"));
	gw_object_unref(o);
}

TEST(gw_object_parse_errors)
{
	char err[256];
	const char *bad[] = {
		"{",
		"[1,2]",
		"{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{}}",
		"{\"apiVersion\":\"apps/"
		"v1\",\"kind\":\"Deployment\",\"metadata\":{\"name\":\"d\"}}",
		"{\"apiVersion\":\"v1\",\"kind\":\"Gateway\",\"metadata\":{\"name\":\"g\"}}",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		struct gw_object *o = gw_object_parse(-1, bad[i], strlen(bad[i]), err, sizeof(err));
		CHECK(o == NULL);
		CHECK(err[0] != '\0');
		gw_object_unref(o);
	}
	/* an explicit kind that disagrees with the JSON */
	const char *svc =
		"{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"name\":\"s\"}}";
	CHECK(gw_object_parse(GW_K_SECRET, svc, strlen(svc), err, sizeof(err)) == NULL);
	CHECK(strstr(err, "Secret") != NULL);
	struct gw_object *o = gw_object_parse(GW_K_SERVICE, svc, strlen(svc), NULL, 0);
	CHECK(o != NULL);
	gw_object_unref(o);
}

TEST(gw_objset_put_replace_delete)
{
	struct gw_objset *set = gw_objset_new();
	uint64_t v0 = gw_objset_version(set);

	struct gw_object *a = gwt_obj("{'apiVersion':'v1','kind':'Service','metadata':{'namespace':"
				      "'b','name':'s1','resourceVersion':'1'}}");
	CHECK(gw_objset_put(set, a));
	CHECK(gw_objset_version(set) > v0);
	CHECK(gw_objset_get(set, GW_K_SERVICE, "b", "s1") == a);
	CHECK(gw_objset_get(set, GW_K_SERVICE, "a", "s1") == NULL);
	CHECK(gw_objset_get(set, GW_K_SECRET, "b", "s1") == NULL);

	/* keep a reference across a replace */
	gw_object_ref(a);
	uint64_t v1 = gw_objset_version(set);
	struct gw_object *same = gwt_obj("{'apiVersion':'v1','kind':'Service','metadata':{"
					 "'namespace':'b','name':'s1','resourceVersion':'1'}}");
	CHECK(!gw_objset_put(set, same)); /* identical: no change */
	CHECK_EQ_INT(gw_objset_version(set), v1);
	struct gw_object *a2 = gwt_obj("{'apiVersion':'v1','kind':'Service','metadata':{"
				       "'namespace':'b','name':'s1','resourceVersion':'2'}}");
	CHECK(gw_objset_put(set, a2));
	CHECK(gw_objset_version(set) > v1);
	CHECK(gw_objset_get(set, GW_K_SERVICE, "b", "s1") == a2);
	CHECK_EQ_STR(a->resource_version, "1"); /* still alive */
	gw_object_unref(a);
	CHECK_EQ_INT(gw_objset_count(set, GW_K_SERVICE), 1);

	/* many objects: listing is sorted by (ns, name) whatever the order of puts */
	char buf[256];
	for (int i = 99; i >= 0; i--) {
		snprintf(buf, sizeof(buf),
			 "{'apiVersion':'v1','kind':'Service','metadata':{'namespace':'%s',"
			 "'name':'s%02d'}}",
			 i % 2 ? "a" : "c", i);
		gwt_put(set, buf);
	}
	size_t n;
	const struct gw_object *const *v = gw_objset_list(set, GW_K_SERVICE, &n);
	CHECK_EQ_INT(n, 101);
	for (size_t i = 1; i < n; i++) {
		int c = strcmp(v[i - 1]->ns, v[i]->ns);
		CHECK(c < 0 || (c == 0 && strcmp(v[i - 1]->name, v[i]->name) < 0));
	}
	CHECK_EQ_STR(v[0]->ns, "a");
	CHECK_EQ_STR(v[0]->name, "s01");
	CHECK(gw_objset_list(set, GW_K_SECRET, &n) == NULL);
	CHECK_EQ_INT(n, 0);

	uint64_t v2 = gw_objset_version(set);
	CHECK(gw_objset_del(set, GW_K_SERVICE, "b", "s1"));
	CHECK(!gw_objset_del(set, GW_K_SERVICE, "b", "s1"));
	CHECK(gw_objset_version(set) > v2);
	CHECK_EQ_INT(gw_objset_count(set, GW_K_SERVICE), 100);
	v = gw_objset_list(set, GW_K_SERVICE, &n);
	CHECK_EQ_INT(n, 100);

	gw_objset_clear_kind(set, GW_K_SERVICE);
	CHECK_EQ_INT(gw_objset_count(set, GW_K_SERVICE), 0);
	CHECK(gw_objset_get(set, GW_K_SERVICE, "a", "s01") == NULL);
	gw_objset_free(set);
}

TEST(gw_is_referenced_table)
{
	struct gw_objset *set = gw_objset_new();

	gwt_put(set, "{'apiVersion':'gateway.networking.k8s.io/v1','kind':'Gateway','metadata':{"
		     "'namespace':'infra','name':'gw'},'spec':{'gatewayClassName':'wg',"
		     "'listeners':[{'name':'https','port':443,'protocol':'HTTPS','tls':{"
		     "'certificateRefs':[{'name':'cert'},{'name':'other','namespace':'certs'}]}}],"
		     "'tls':{'frontend':{'default':{'validation':{'caCertificateRefs':[{'group':'',"
		     "'kind':'ConfigMap','name':'client-ca'}]}}},'backend':{'clientCertificateRef':"
		     "{'name':'to-backend'}}}}}");
	gwt_put(set,
		"{'apiVersion':'gateway.networking.k8s.io/v1','kind':'BackendTLSPolicy',"
		"'metadata':{'namespace':'apps','name':'p'},'spec':{'targetRefs':[{'group':'',"
		"'kind':'Service','name':'s'}],'validation':{'hostname':'s.example.com',"
		"'caCertificateRefs':[{'group':'','kind':'ConfigMap','name':'backend-ca'}]}}}");
	CHECK(gw_is_referenced(set, GW_K_SECRET, "infra", "cert"));
	CHECK(gw_is_referenced(set, GW_K_SECRET, "certs", "other"));
	CHECK(!gw_is_referenced(set, GW_K_SECRET, "infra", "other"));
	CHECK(gw_is_referenced(set, GW_K_SECRET, "infra", "to-backend"));
	CHECK(gw_is_referenced(set, GW_K_CONFIGMAP, "infra", "client-ca"));
	CHECK(!gw_is_referenced(set, GW_K_SECRET, "infra", "client-ca"));
	CHECK(gw_is_referenced(set, GW_K_CONFIGMAP, "apps", "backend-ca"));
	CHECK(!gw_is_referenced(set, GW_K_CONFIGMAP, "infra", "backend-ca"));
	CHECK(!gw_is_referenced(set, GW_K_SERVICE, "apps", "s"));
	gw_objset_free(set);
}

static struct gw_object *svc(int i, int version)
{
	char json[256];

	snprintf(json, sizeof(json),
		 "{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"namespace\":\"ns%d\","
		 "\"name\":\"s%d\",\"resourceVersion\":\"%d\"}}",
		 i % 7, i, version);
	return gw_object_parse(GW_K_SERVICE, json, strlen(json), NULL, 0);
}

/* The listing stays sorted and complete through puts, replacements and
 * deletions (which shift entries back in the table), and two sets can hold
 * the same objects and be freed in any order. */
TEST(gw_objset_listing_follows_changes_and_sets_share_objects)
{
	struct gw_objset *a = gw_objset_new(), *b = gw_objset_new();
	const struct gw_object *const *v;
	size_t n = 0;
	char ns[16], name[16];

	for (int i = 0; i < 500; i++)
		gw_objset_put(a, svc(i, 1));
	v = gw_objset_list(a, GW_K_SERVICE, &n); /* builds the listing */
	CHECK_EQ_INT(n, 500);
	for (int i = 0; i < 500; i += 3) { /* replace a third */
		gw_objset_put(a, svc(i, 2));
	}
	for (int i = 1; i < 500; i += 5) { /* delete a fifth */
		snprintf(ns, sizeof(ns), "ns%d", i % 7);
		snprintf(name, sizeof(name), "s%d", i);
		CHECK(gw_objset_del(a, GW_K_SERVICE, ns, name));
	}
	for (int i = 500; i < 600; i++) /* and add more */
		gw_objset_put(a, svc(i, 1));
	v = gw_objset_list(a, GW_K_SERVICE, &n);
	CHECK_EQ_INT(n, 500 - 100 + 100);
	for (size_t i = 1; i < n; i++) {
		int c = strcmp(v[i - 1]->ns, v[i]->ns);
		CHECK(c < 0 || (c == 0 && strcmp(v[i - 1]->name, v[i]->name) < 0));
	}
	for (int i = 0; i < 600; i++) {
		snprintf(ns, sizeof(ns), "ns%d", i % 7);
		snprintf(name, sizeof(name), "s%d", i);
		const struct gw_object *o = gw_objset_get(a, GW_K_SERVICE, ns, name);
		CHECK((o != NULL) == (i >= 500 || i % 5 != 1));
		if (o && i < 500)
			CHECK_EQ_STR(o->resource_version, i % 3 == 0 ? "2" : "1");
	}
	/* b shares every object of a */
	for (size_t i = 0; i < n; i++) {
		gw_object_ref((struct gw_object *)(uintptr_t)v[i]);
		gw_objset_put(b, (struct gw_object *)(uintptr_t)v[i]);
	}
	CHECK_EQ_INT(gw_objset_count(b, GW_K_SERVICE), n);
	gw_objset_free(a);
	CHECK(gw_objset_get(b, GW_K_SERVICE, "ns0", "s7") != NULL);
	gw_objset_free(b);
}

/* The change log names every change to which object a key holds, in order:
 * additions, replacements (also by an equal object, which leaves the
 * version alone), removals; re-putting the object already held is none. A
 * relist (clear_kind) breaks the log, and each set has its own identity. */
TEST(gw_objset_change_log_follows_puts_and_deletes)
{
	struct gw_objset *set = gw_objset_new(), *other = gw_objset_new();
	const struct gw_objset_change *ch;
	struct gw_object *a1 = svc(1, 1), *a2 = svc(1, 2), *a3 = svc(1, 2), *b = svc(2, 1);
	uint64_t p0 = gw_objset_log_pos(set), v;
	size_t n = 9;

	CHECK(gw_objset_id(set) != gw_objset_id(other));
	CHECK(gw_objset_id(set) != 0);
	CHECK(gw_objset_changes(set, p0, &ch, &n));
	CHECK_EQ_INT(n, 0);
	gw_objset_put(set, a1);
	gw_objset_put(set, b);
	gw_object_ref(a2);
	gw_objset_put(set, a2);
	v = gw_objset_version(set);
	gw_objset_put(set, a3); /* equal to a2: no version change, but logged */
	CHECK_EQ_INT(gw_objset_version(set), v);
	gw_object_ref(a3);
	gw_objset_put(set, a3); /* the very object held: nothing */
	CHECK(gw_objset_del(set, GW_K_SERVICE, "ns2", "s2"));
	CHECK_EQ_INT(gw_objset_log_pos(set), p0 + 5);
	CHECK(gw_objset_changes(set, p0, &ch, &n));
	CHECK_EQ_INT(n, 5);
	if (n == 5) {
		CHECK(ch[0].from == NULL && ch[0].to == a1);
		CHECK(ch[1].from == NULL && ch[1].to == b);
		CHECK(ch[2].from == a1 && ch[2].to == a2);
		CHECK(ch[3].from == a2 && ch[3].to == a3);
		CHECK(ch[4].to == NULL); /* b, freed since: an identity only */
	}
	CHECK(gw_objset_changes(set, p0 + 3, &ch, &n));
	CHECK_EQ_INT(n, 2);
	CHECK(!gw_objset_changes(set, p0 + 6, &ch, &n)); /* ahead of the log */
	gw_object_unref(a2);

	uint64_t p1 = gw_objset_log_pos(set);
	gw_objset_clear_kind(set, GW_K_SERVICE);
	CHECK(!gw_objset_changes(set, p1, &ch, &n));
	CHECK_EQ_INT(n, 0);
	uint64_t p2 = gw_objset_log_pos(set);
	CHECK(gw_objset_changes(set, p2, &ch, &n));
	CHECK_EQ_INT(n, 0);
	gw_objset_clear_kind(set, GW_K_SERVICE); /* empty already: no change */
	CHECK_EQ_INT(gw_objset_log_pos(set), p2);
	gw_objset_free(set);
	gw_objset_free(other);
}

/* The log keeps the recent changes only: a position far behind is refused,
 * a recent one still gets exactly the changes after it. */
TEST(gw_objset_change_log_is_bounded)
{
	struct gw_objset *set = gw_objset_new();
	const struct gw_objset_change *ch;
	uint64_t p0 = gw_objset_log_pos(set), recent = 0;
	size_t n = 0;

	for (int i = 0; i < 100; i++)
		gw_objset_put(set, svc(i, 1));
	for (int round = 2; round < 40; round++) {
		for (int i = 0; i < 100; i++) {
			if (round == 39 && i == 90)
				recent = gw_objset_log_pos(set);
			gw_objset_put(set, svc(i, round));
		}
	}
	CHECK(!gw_objset_changes(set, p0, &ch, &n));
	CHECK(gw_objset_changes(set, recent, &ch, &n));
	CHECK_EQ_INT(n, 10);
	for (size_t i = 0; i < n; i++)
		CHECK(ch[i].to == gw_objset_get(set, GW_K_SERVICE, ch[i].to->ns, ch[i].to->name));
	gw_objset_free(set);
}
