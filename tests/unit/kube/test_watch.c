/* SPDX-License-Identifier: MIT */
/*
 * test_watch.c: reflector event handling (src/kube/watch.c): watch lines
 * split at every byte, ADDED/MODIFIED/DELETED/BOOKMARK/ERROR, Secrets kept
 * only when referenced; backoff bounds; request paths; list items without
 * kind/apiVersion.
 */
#include <stdlib.h>
#include <string.h>

#include <yyjson.h>

#include "check.h"
#include "core/err.h"
#include "gwapi/objset.h"
#include "kube/internal.h"
#include "kube/kube.h"

static void fixture(struct kube_watch *w, struct reflector *r, enum gw_kind k)
{
	memset(w, 0, sizeof(*w));
	memset(r, 0, sizeof(*r));
	w->set = gw_objset_new();
	for (int i = 0; i < GW_K_COUNT; i++)
		w->ver[i] = "v1";
	r->w = w;
	r->kind = k;
	snprintf(r->name, sizeof(r->name), "%s", gw_kind_info(k)->resource);
}

static void fixture_fini(struct kube_watch *w, struct reflector *r)
{
	struct kmap_ent *e;

	for (size_t i = 0; i < w->sidx.nb; i++)
		for (e = w->sidx.b[i]; e; e = e->next) {
			struct sref *s = e->val;

			free(s->ns);
			free(s->name);
			free(s->rv);
			free(s);
		}
	kmap_fini(&w->sidx);
	buf_release(&r->line);
	free(r->rv);
	gw_objset_free(w->set);
}

#define EV(type, ns, name, rv)                                                                     \
	"{\"type\":\"" type "\",\"object\":{\"apiVersion\":\"gateway.networking.k8s.io/v1\","      \
	"\"kind\":\"HTTPRoute\",\"metadata\":{\"name\":\"" name "\",\"namespace\":\"" ns           \
	"\",\"resourceVersion\":\"" rv "\",\"uid\":\"u-" name "\"},\"spec\":{}}}\n"

TEST(kube_watch_events_split_at_every_byte)
{
	const char *stream = EV("ADDED", "a", "r1", "10") EV("ADDED", "b", "r2", "11")
		EV("MODIFIED", "a", "r1",
		   "12") "{\"type\":\"BOOKMARK\",\"object\":{\"kind\":\"HTTPRoute\",\"metadata\":"
			 "{\"resourceVersion\":\"20\"}}}\n" EV("DELETED", "b", "r2", "21");
	size_t len = strlen(stream);

	for (size_t cut = 0; cut <= len; cut++) {
		struct kube_watch w;
		struct reflector r;
		const struct gw_object *o;
		int rc1, rc2;

		fixture(&w, &r, GW_K_HTTPROUTE);
		rc1 = kube_reflector_feed(&r, stream, cut);
		rc2 = kube_reflector_feed(&r, stream + cut, len - cut);
		if (rc1 < 0 || rc2 < 0)
			CHECK_FAIL_("cut %zu: %d %d", cut, rc1, rc2);
		CHECK_EQ_INT(gw_objset_count(w.set, GW_K_HTTPROUTE), 1);
		o = gw_objset_get(w.set, GW_K_HTTPROUTE, "a", "r1");
		CHECK(o && !strcmp(o->resource_version, "12"));
		CHECK(o && !strcmp(o->source, "cluster"));
		CHECK(gw_objset_get(w.set, GW_K_HTTPROUTE, "b", "r2") == NULL);
		CHECK_EQ_STR(r.rv, "21");
		CHECK_EQ_INT(r.events, 5);
		CHECK(w.changed);
		fixture_fini(&w, &r);
		if (check_failures)
			break;
	}
}

#define LINE(fn, s) fn(&r, s, strlen(s))

TEST(kube_watch_error_events)
{
	struct kube_watch w;
	struct reflector r;

	fixture(&w, &r, GW_K_HTTPROUTE);
	r.rv = strdup("5");
	CHECK_EQ_INT(LINE(kube_reflector_feed,
			  "{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\","
			  "\"code\":410,\"reason\":\"Expired\"}}\n"),
		     -ESTALE);
	CHECK_EQ_STR(r.rv, "5"); /* an error does not move the version */
	buf_release(&r.line);
	CHECK_EQ_INT(LINE(kube_reflector_event, "{\"type\":\"ERROR\",\"object\":{\"code\":500}}"),
		     -EIO);
	CHECK_EQ_INT(LINE(kube_reflector_event, "not json"), -WG_EPROTO);
	CHECK_EQ_INT(LINE(kube_reflector_event, "{\"type\":\"ADDED\"}"), -WG_EPROTO);
	CHECK_EQ_INT(LINE(kube_reflector_event, "{\"type\":\"WHAT\",\"object\":{}}"), -WG_EPROTO);
	/* an object that does not decode is skipped, the stream goes on */
	CHECK_EQ_INT(LINE(kube_reflector_event, "{\"type\":\"ADDED\",\"object\":{\"metadata\":"
						"{\"resourceVersion\":\"9\"}}}"),
		     0);
	CHECK_EQ_STR(r.rv, "9");
	/* empty lines are ignored */
	CHECK_EQ_INT(kube_reflector_feed(&r, "\n\n", 2), 0);
	fixture_fini(&w, &r);
}

static void put_gateway(struct gw_objset *set, const char *secret)
{
	char json[512];
	struct gw_object *o;

	snprintf(json, sizeof(json),
		 "{\"apiVersion\":\"gateway.networking.k8s.io/v1\",\"kind\":\"Gateway\","
		 "\"metadata\":{\"name\":\"gw\",\"namespace\":\"a\",\"resourceVersion\":\"1\"},"
		 "\"spec\":{\"gatewayClassName\":\"c\",\"listeners\":[{\"name\":\"l\",\"port\":443,"
		 "\"protocol\":\"HTTPS\",\"tls\":{\"certificateRefs\":[{\"name\":\"%s\"}]}}]}}",
		 secret);
	o = gw_object_parse(-1, json, strlen(json), NULL, 0);
	if (o)
		gw_objset_put(set, o);
}

#define SEC(type, name, rv)                                                                        \
	"{\"type\":\"" type "\",\"object\":{\"metadata\":{\"name\":\"" name                        \
	"\",\"namespace\":\"a\",\"resourceVersion\":\"" rv "\"},\"type\":\"kubernetes.io/tls\","   \
	"\"data\":{\"tls.crt\":\"eA==\"}}}\n"

TEST(kube_watch_secrets_only_when_referenced)
{
	struct kube_watch w;
	struct reflector r;
	const char *s = SEC("ADDED", "used", "3") SEC("ADDED", "unused", "4");
	const struct gw_object *o;

	fixture(&w, &r, GW_K_SECRET);
	put_gateway(w.set, "used");
	CHECK_EQ_INT(kube_reflector_feed(&r, s, strlen(s)), 1);
	o = gw_objset_get(w.set, GW_K_SECRET, "a", "used");
	CHECK(o != NULL);
	/* built-in objects come without kind/apiVersion: they are added */
	CHECK(o && strstr(o->json, "\"apiVersion\":\"v1\",\"kind\":\"Secret\"") == o->json + 1);
	CHECK(gw_objset_get(w.set, GW_K_SECRET, "a", "unused") == NULL);
	/* both are indexed */
	CHECK(kmap_get(&w.sidx, "12/a/used") || kmap_get(&w.sidx, "13/a/used") || w.sidx.n == 2);
	CHECK_EQ_INT(w.sidx.n, 2);
	s = SEC("DELETED", "unused", "5");
	CHECK_EQ_INT(kube_reflector_feed(&r, s, strlen(s)), 0); /* not in the set: no change */
	CHECK_EQ_INT(w.sidx.n, 1);
	fixture_fini(&w, &r);
}

TEST(kube_watch_backoff_bounds)
{
	/* attempt 0: [min/2, min]; doubling; capped at max; jitter in the upper half */
	CHECK_EQ_INT(kube_backoff_ms(0, 500, 30000, 0), 250);
	CHECK_EQ_INT(kube_backoff_ms(0, 500, 30000, 250), 500);
	CHECK_EQ_INT(kube_backoff_ms(0, 500, 30000, 251), 250);
	CHECK_EQ_INT(kube_backoff_ms(3, 500, 30000, 0), 2000);
	CHECK_EQ_INT(kube_backoff_ms(3, 500, 30000, 2000), 4000);
	CHECK_EQ_INT(kube_backoff_ms(30, 500, 30000, 0), 15000);
	CHECK_EQ_INT(kube_backoff_ms(1000, 500, 30000, 15000), 30000);
	for (uint32_t a = 0; a < 40; a++)
		for (uint32_t rnd = 0; rnd < 100000; rnd += 7919) {
			uint32_t d = kube_backoff_ms(a, 500, 30000, rnd);

			if (d < 250 || d > 30000)
				CHECK_FAIL_("attempt %u rnd %u: %u", a, rnd, d);
		}
}

static yyjson_doc *jread(const char *s)
{
	return yyjson_read(s, strlen(s), 0);
}

TEST(kube_watch_paths_and_item_json)
{
	char *p = kube_collection_path(GW_K_HTTPROUTE, "v1", "team-a");
	yyjson_doc *d;
	char *j;
	size_t len;

	CHECK_EQ_STR(p, "/apis/gateway.networking.k8s.io/v1/namespaces/team-a/httproutes");
	free(p);
	p = kube_collection_path(GW_K_SECRET, "v1", NULL);
	CHECK_EQ_STR(p, "/api/v1/secrets");
	free(p);
	p = kube_collection_path(GW_K_ENDPOINTSLICE, "v1", "x");
	CHECK_EQ_STR(p, "/apis/discovery.k8s.io/v1/namespaces/x/endpointslices");
	free(p);
	p = kube_collection_path(GW_K_GATEWAYCLASS, "v1", NULL);
	CHECK_EQ_STR(p, "/apis/gateway.networking.k8s.io/v1/gatewayclasses");
	free(p);

	d = jread("{\"metadata\":{\"name\":\"s\"}}");
	j = kube_item_json(GW_K_SERVICE, "v1", yyjson_doc_get_root(d), &len);
	CHECK_EQ_STR(j,
		     "{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"name\":\"s\"}}");
	CHECK_EQ_INT(len, strlen(j));
	free(j);
	yyjson_doc_free(d);
	d = jread("{}");
	j = kube_item_json(GW_K_TLSROUTE, "v1alpha3", yyjson_doc_get_root(d), &len);
	CHECK_EQ_STR(
		j, "{\"apiVersion\":\"gateway.networking.k8s.io/v1alpha3\",\"kind\":\"TLSRoute\"}");
	free(j);
	yyjson_doc_free(d);
	d = jread("{\"metadata\":{\"name\":\"s\",\"managedFields\":[{\"manager\":\"m\"}],"
		  "\"annotations\":{\"kubectl.kubernetes.io/last-applied-configuration\":\"{}\"}},"
		  "\"spec\":{}}");
	j = kube_item_json(GW_K_SERVICE, "v1", yyjson_doc_get_root(d), &len);
	CHECK_EQ_STR(j, "{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"name\":\"s\"},"
			"\"spec\":{}}");
	free(j);
	yyjson_doc_free(d);
	d = jread("{\"metadata\":{\"annotations\":{\"a\":\"1\",\"kubectl.kubernetes.io/"
		  "last-applied-configuration\":\"{}\"}}}");
	j = kube_item_json(GW_K_SERVICE, "v1", yyjson_doc_get_root(d), &len);
	CHECK_EQ_STR(j, "{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"annotations\":"
			"{\"a\":\"1\"}}}");
	free(j);
	yyjson_doc_free(d);
	d = jread("{\"kind\":\"X\",\"apiVersion\":\"y\"}");
	j = kube_item_json(GW_K_SERVICE, "v1", yyjson_doc_get_root(d), &len);
	CHECK_EQ_STR(j, "{\"kind\":\"X\",\"apiVersion\":\"y\"}"); /* kept as sent */
	free(j);
	yyjson_doc_free(d);
}

static bool count_cb(void *arg, const char *key, void *val)
{
	(void)key;
	(*(int *)arg) += (int)(uintptr_t)val;
	return (uintptr_t)val == 2;
}

TEST(kube_map_basics)
{
	struct kmap m = {0};
	void *old = NULL;
	int sum = 0;
	char key[32];

	for (int i = 0; i < 1000; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		CHECK_EQ_INT(kmap_put(&m, key, (void *)(uintptr_t)(i % 3), NULL), 0);
	}
	CHECK_EQ_INT(m.n, 1000);
	CHECK(kmap_put(&m, "k5", (void *)7, &old) == 0 && old == (void *)2);
	CHECK(kmap_get(&m, "k5") == (void *)7);
	CHECK(kmap_del(&m, "k5") == (void *)7);
	CHECK(kmap_get(&m, "k5") == NULL);
	CHECK(kmap_del(&m, "nope") == NULL);
	kmap_each(&m, count_cb, &sum); /* deletes the 2s */
	CHECK_EQ_INT(m.n, 999 - 332);  /* k5 (a 2) was deleted already */
	CHECK(kmap_get(&m, "k2") == NULL && kmap_get(&m, "k4") == (void *)1);
	kmap_fini(&m);
}
