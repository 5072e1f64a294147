/* SPDX-License-Identifier: MIT */
/*
 * test_incr.c: incremental reconcile against the whole pass. Random
 * sequences of route changes (added, changed, deleted; conflicting
 * precedence, cross-namespace references with and without a grant,
 * invalid hostnames, matches, filters and backends, parents that do not
 * exist or do not allow the route, a listener in a protocol conflict) and,
 * now and then, a change of another kind: after every step the incremental
 * result must equal gw_reconcile's on the same set: the snapshot, the
 * problems, the addresses and every status (the statuses of routes the
 * step did not touch are those of earlier steps).
 */
#include <time.h>

#include "core/bigblock.h"
#include "gwapi/snapimage.h"
#include "gwtest.h"

#define NS_INFRA "infra"
#define NS_APPS "apps"

static uint64_t rnd_state;

static unsigned rnd(unsigned n)
{
	rnd_state = rnd_state * 6364136223846793005ULL + 1442695040888963407ULL;
	return (unsigned)(rnd_state >> 33) % n;
}

static void put_json(struct gw_objset *set, const char *json)
{
	char err[256] = "";
	struct gw_object *o = gw_object_parse(-1, json, strlen(json), err, sizeof(err));
	if (!o)
		fprintf(stderr, "  put_json: %s\n  in %s\n", err, json);
	CHECK(o != NULL);
	if (o)
		gw_objset_put(set, o);
}

static void put_gateway(struct gw_objset *set, const char *name, const char *listeners)
{
	char buf[1024];
	snprintf(buf, sizeof(buf),
		 "{\"apiVersion\":\"gateway.networking.k8s.io/v1\",\"kind\":\"Gateway\","
		 "\"metadata\":{\"namespace\":\"infra\",\"name\":\"%s\",\"generation\":1,"
		 "\"creationTimestamp\":\"2026-01-01T00:00:00Z\"},\"spec\":{"
		 "\"gatewayClassName\":\"wg\",\"listeners\":[%s]}}",
		 name, listeners);
	put_json(set, buf);
}

static void world(struct gw_objset *set)
{
	gwt_base(set);
	gwt_put(set, "{'apiVersion':'v1','kind':'Service','metadata':{'namespace':'infra',"
		     "'name':'other'},'spec':{'ports':[{'name':'http','port':80}]}}");
	gwt_put(set, "{'apiVersion':'gateway.networking.k8s.io/v1beta1','kind':'ReferenceGrant',"
		     "'metadata':{'namespace':'infra','name':'apps-to-svc'},'spec':{"
		     "'from':[{'group':'gateway.networking.k8s.io','kind':'HTTPRoute',"
		     "'namespace':'apps'}],'to':[{'group':'','kind':'Service','name':'svc'}]}}");
	/* routes to "other" take the whole pass: the policy follows them */
	gwt_put(set, "{'apiVersion':'gateway.networking.k8s.io/v1','kind':'BackendTLSPolicy',"
		     "'metadata':{'namespace':'infra','name':'other-tls','creationTimestamp':"
		     "'2026-01-01T00:00:01Z'},'spec':{'targetRefs':[{'group':'','kind':'Service',"
		     "'name':'other'}],'validation':{'hostname':'other.example.com',"
		     "'wellKnownCACertificates':'System'}}}");
	put_gateway(set, "gw1",
		    "{\"name\":\"http\",\"port\":80,\"protocol\":\"HTTP\","
		    "\"allowedRoutes\":{\"namespaces\":{\"from\":\"All\"}}},"
		    "{\"name\":\"web\",\"port\":8080,\"protocol\":\"HTTP\","
		    "\"hostname\":\"*.example.com\"}");
	put_gateway(set, "gw2",
		    "{\"name\":\"a\",\"port\":80,\"protocol\":\"HTTP\",\"hostname\":\"a.example.com\","
		    "\"allowedRoutes\":{\"namespaces\":{\"from\":\"Selector\",\"selector\":{"
		    "\"matchLabels\":{\"team\":\"apps\"}}}}}");
	/* TCP on HTTP ports of the wildcard address: ProtocolConflict, for
	 * gw3 (gw1 comes first) and for gw1's web listener (gw0 comes first) */
	put_gateway(set, "gw3", "{\"name\":\"tcp\",\"port\":80,\"protocol\":\"TCP\"}");
	put_gateway(set, "gw0", "{\"name\":\"tcp\",\"port\":8080,\"protocol\":\"TCP\"}");
}

static const char *const parents[] = {
	"{\"name\":\"gw1\",\"namespace\":\"infra\"}",
	"{\"name\":\"gw1\",\"namespace\":\"infra\",\"sectionName\":\"web\"}",
	"{\"name\":\"gw2\",\"namespace\":\"infra\"}",
	"{\"name\":\"gw3\",\"namespace\":\"infra\"}",
	"{\"name\":\"gw1\"}",
	"{\"name\":\"nope\",\"namespace\":\"infra\"}",
	"{\"name\":\"gw1\",\"namespace\":\"infra\",\"port\":81}",
};
static const char *const hosts[] = {"\"a.example.com\"", "\"b.example.com\"",
				    "\"*.example.com\"", "\"x.other.test\"", "\"Bad_Host\""};
static const char *const matches[] = {
	"{\"path\":{\"type\":\"PathPrefix\",\"value\":\"/p\"}}",
	"{\"path\":{\"type\":\"PathPrefix\",\"value\":\"/p/q\"}}",
	"{\"path\":{\"type\":\"Exact\",\"value\":\"/e\"}}",
	"{\"path\":{\"type\":\"RegularExpression\",\"value\":\"/r[0-9]+\"}}",
	"{\"path\":{\"type\":\"RegularExpression\",\"value\":\"(\"}}",
	"{\"method\":\"GET\"}",
	"{\"headers\":[{\"name\":\"x-a\",\"value\":\"1\"}]}",
};
static const char *const backends[] = {
	"{\"name\":\"svc\",\"port\":8080}",
	"{\"name\":\"svc\",\"namespace\":\"infra\",\"port\":8080,\"weight\":5}",
	"{\"name\":\"other\",\"namespace\":\"infra\",\"port\":80}",
	"{\"name\":\"missing\",\"port\":80}",
	"{\"kind\":\"Foo\",\"group\":\"x.io\",\"name\":\"x\"}",
	"{\"name\":\"svc\",\"port\":8080,\"weight\":0}",
};
static const char *const filters[] = {
	"{\"type\":\"RequestHeaderModifier\",\"requestHeaderModifier\":{\"set\":"
	"[{\"name\":\"x-b\",\"value\":\"2\"}]}}",
	"{\"type\":\"Nope\"}",
};

/* "[a,b]" of up to max random picks from v (n of them). */
static void pick(char *out, size_t size, const char *const *v, size_t n, unsigned max)
{
	unsigned k = n ? rnd(max + 1) : 0;
	size_t o = 0;

	o += (size_t)snprintf(out + o, size - o, "[");
	for (unsigned i = 0; i < k && o < size; i++)
		o += (size_t)snprintf(out + o, size - o, "%s%s", i ? "," : "", v[rnd((unsigned)n)]);
	if (o < size)
		snprintf(out + o, size - o, "]");
}

#define N(v) (sizeof(v) / sizeof((v)[0]))

/* Route i of 12: r0..r8 HTTPRoutes, g0..g2 GRPCRoutes, in two namespaces. */
static void route_key(unsigned i, enum gw_kind *k, const char **ns, char *name)
{
	*k = i < 9 ? GW_K_HTTPROUTE : GW_K_GRPCROUTE;
	*ns = i % 2 ? NS_APPS : NS_INFRA;
	sprintf(name, "%c%u", i < 9 ? 'r' : 'g', i < 9 ? i : i - 9);
}

static void put_route(struct gw_objset *set, unsigned i, unsigned gen)
{
	char ps[512], hs[256], ms[512], bs[512], fs[512], rules[2400], json[4096], name[16];
	enum gw_kind k;
	const char *ns;
	size_t o = 0;

	route_key(i, &k, &ns, name);
	pick(ps, sizeof(ps), parents, N(parents), 2);
	pick(hs, sizeof(hs), hosts, N(hosts), 2);
	unsigned nr = 1 + rnd(2);
	o += (size_t)snprintf(rules + o, sizeof(rules) - o, "[");
	for (unsigned r = 0; r < nr; r++) {
		pick(ms, sizeof(ms), matches, k == GW_K_HTTPROUTE ? N(matches) : 0, 2);
		pick(bs, sizeof(bs), backends, N(backends), 2);
		pick(fs, sizeof(fs), filters, N(filters), rnd(4) == 0);
		o += (size_t)snprintf(rules + o, sizeof(rules) - o,
				      "%s{\"matches\":%s,\"backendRefs\":%s,\"filters\":%s}",
				      r ? "," : "", ms, bs, k == GW_K_HTTPROUTE ? fs : "[]");
	}
	snprintf(rules + o, sizeof(rules) - o, "]");
	snprintf(json, sizeof(json),
		 "{\"apiVersion\":\"gateway.networking.k8s.io/v1\",\"kind\":\"%s\","
		 "\"metadata\":{\"namespace\":\"%s\",\"name\":\"%s\",\"generation\":%u,"
		 "\"resourceVersion\":\"%u\",\"creationTimestamp\":\"2026-01-01T00:00:0%uZ\"},"
		 "\"spec\":{\"parentRefs\":%s,\"hostnames\":%s,\"rules\":%s}}",
		 k == GW_K_HTTPROUTE ? "HTTPRoute" : "GRPCRoute", ns, name, gen, gen, rnd(3), ps,
		 hs, rules);
	put_json(set, json);
}

/* -------- comparing results -------- */

struct status_table {
	struct gw_status *v;
	size_t n;
};

static void table_del(struct status_table *t, enum gw_kind k, const char *ns, const char *name)
{
	size_t w = 0;
	for (size_t i = 0; i < t->n; i++) {
		struct gw_status *s = &t->v[i];
		bool hit = s->kind == k && !strcmp(s->ns, ns) && !strcmp(s->name, name);
		bool other_kind = s->kind != GW_K_HTTPROUTE && s->kind != GW_K_GRPCROUTE;
		if (hit || (other_kind && k == GW_K_COUNT)) {
			free(s->ns);
			free(s->name);
			free(s->status_json);
			continue;
		}
		t->v[w++] = *s;
	}
	t->n = w;
}

static void table_clear(struct status_table *t)
{
	for (size_t i = 0; i < t->n; i++) {
		free(t->v[i].ns);
		free(t->v[i].name);
		free(t->v[i].status_json);
	}
	t->n = 0;
}

static void table_add(struct status_table *t, const struct gw_result *r)
{
	for (size_t i = 0; i < r->n_statuses; i++) {
		const struct gw_status *s = &r->statuses[i];
		table_del(t, s->kind, s->ns, s->name);
		t->v = realloc(t->v, (t->n + 1) * sizeof(*t->v));
		t->v[t->n++] = (struct gw_status){.kind = s->kind,
						  .ns = strdup(s->ns),
						  .name = strdup(s->name),
						  .status_json = strdup(s->status_json)};
	}
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted lines joined: statuses ("kind ns/name json") or problems. */
static char *sorted_join(char **lines, size_t n)
{
	size_t len = 1;
	qsort(lines, n, sizeof(*lines), cmp_str);
	for (size_t i = 0; i < n; i++)
		len += strlen(lines[i]) + 1;
	char *s = calloc(1, len);
	for (size_t i = 0; i < n; i++) {
		strcat(s, lines[i]);
		strcat(s, "\n");
		free(lines[i]);
	}
	free(lines);
	return s;
}

static char *statuses_text(const struct gw_status *v, size_t n)
{
	char **lines = calloc(n ? n : 1, sizeof(char *));
	for (size_t i = 0; i < n; i++) {
		size_t len = strlen(v[i].ns) + strlen(v[i].name) + strlen(v[i].status_json) + 16;
		lines[i] = malloc(len);
		snprintf(lines[i], len, "%d %s/%s %s", (int)v[i].kind, v[i].ns, v[i].name,
			 v[i].status_json);
	}
	return sorted_join(lines, n);
}

static char *problems_text(const struct diag *d)
{
	char **lines = calloc(d->n ? d->n : 1, sizeof(char *));
	char buf[1400];
	for (size_t i = 0; i < d->n; i++)
		lines[i] = strdup(diag_format(&d->v[i], buf, sizeof(buf)));
	return sorted_join(lines, d->n);
}

static void check_same(const struct gw_result *in, const struct status_table *t,
		       const struct gw_result *whole, unsigned step)
{
	char *a = gw_snapshot_to_json(in->snap), *b = gw_snapshot_to_json(whole->snap);
	if (strcmp(a, b))
		fprintf(stderr, "  step %u: snapshots differ\n", step);
	CHECK_EQ_STR(a, b);
	free(a);
	free(b);
	a = statuses_text(t->v, t->n);
	b = statuses_text(whole->statuses, whole->n_statuses);
	if (strcmp(a, b))
		fprintf(stderr, "  step %u: statuses differ\n", step);
	CHECK_EQ_STR(a, b);
	free(a);
	free(b);
	a = problems_text(&in->diag);
	b = problems_text(&whole->diag);
	CHECK_EQ_STR(a, b);
	CHECK_EQ_INT(in->diag.errors, whole->diag.errors);
	free(a);
	free(b);
	CHECK_EQ_INT(in->n_gateways, whole->n_gateways);
}

/* An incremental step renders no status of a route it did not touch. */
static void check_only_changed(const struct gw_result *in, enum gw_kind k, const char *ns,
			       const char *name)
{
	for (size_t i = 0; i < in->n_statuses; i++) {
		const struct gw_status *s = &in->statuses[i];
		if (s->kind != GW_K_HTTPROUTE && s->kind != GW_K_GRPCROUTE)
			continue;
		CHECK(s->kind == k && !strcmp(s->ns, ns) && !strcmp(s->name, name));
	}
}

static void other_change(struct gw_objset *set, unsigned step)
{
	switch (rnd(3)) {
	case 0:
		put_gateway(set, "gw2",
			    step % 2 ? "{\"name\":\"a\",\"port\":80,\"protocol\":\"HTTP\"}"
				     : "{\"name\":\"a\",\"port\":80,\"protocol\":\"HTTP\","
				       "\"hostname\":\"a.example.com\"}");
		break;
	case 1:
		gw_objset_del(set, GW_K_REFERENCEGRANT, "infra", "apps-to-svc");
		break;
	default:
		put_json(set, step % 2 ? "{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{"
					 "\"namespace\":\"infra\",\"name\":\"other\"},\"spec\":{"
					 "\"ports\":[{\"name\":\"http\",\"port\":80}]}}"
				       : "{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{"
					 "\"namespace\":\"infra\",\"name\":\"other\"},\"spec\":{"
					 "\"ports\":[{\"name\":\"web\",\"port\":80}]}}");
		break;
	}
}

/* The reconcile options every test here uses. */
static struct gw_options incr_opts(bool skip_statuses)
{
	static const char *const feats[] = {"Gateway", "HTTPRoute", NULL};
	return (struct gw_options){.controller_name = GWT_CONTROLLER,
				   .now_ms = 1790000000000ULL,
				   .supported_features = feats,
				   .skip_statuses = skip_statuses};
}

/* keep: hold each snapshot until the next step (as a worker may), else
 * drop it at once (the next build must not need it). */
static void run_sequence(uint64_t seed, unsigned steps, bool skip_statuses, bool keep)
{
	struct gw_options o = incr_opts(skip_statuses);
	struct gw_objset *set = gw_objset_new();
	struct gw_incr *s = gw_incr_new();
	struct status_table t = {0};
	struct snapshot *prev = NULL;
	char *prev_json = NULL;
	unsigned incremental = 0;

	rnd_state = seed;
	world(set);
	for (unsigned i = 0; i < 12; i++)
		if (rnd(2))
			put_route(set, i, 1);
	for (unsigned step = 0; step < steps; step++) {
		unsigned i = rnd(12);
		enum gw_kind k = GW_K_COUNT;
		const char *ns = "";
		char name[16] = "";
		if (step % 17 == 16) {
			other_change(set, step);
		} else {
			route_key(i, &k, &ns, name);
			if (rnd(5) < 2)
				gw_objset_del(set, k, ns, name);
			else
				put_route(set, i, step + 2);
		}
		struct gw_result in = {0}, whole = {0};
		CHECK_EQ_INT(gw_reconcile_incr(s, set, &o, &in), 0);
		CHECK_EQ_INT(gw_reconcile(set, &o, &whole), 0);
		if (!in.snap || !whole.snap)
			break;
		if (in.incremental) {
			incremental++;
			table_del(&t, k, ns, name);
			table_del(&t, GW_K_COUNT, "", ""); /* every non-route status */
			check_only_changed(&in, k, ns, name);
		} else {
			table_clear(&t);
		}
		table_add(&t, &in);
		check_same(&in, &t, &whole, step);
		/* the snapshot of the step before is still whole (still served
		 * by a worker somewhere): its memory was not reused */
		if (prev) {
			char *j = gw_snapshot_to_json(prev);
			CHECK_EQ_STR(j, prev_json);
			free(j);
			free(prev_json);
			snap_unref(prev);
		}
		if (keep) {
			prev = in.snap;
			prev_json = gw_snapshot_to_json(prev);
			in.snap = NULL;
		} else {
			prev = NULL;
			prev_json = NULL;
		}
		gwt_done(&in);
		gwt_done(&whole);
	}
	gw_incr_free(s);
	if (prev) { /* outlives the state that built it */
		char *j = gw_snapshot_to_json(prev);
		CHECK_EQ_STR(j, prev_json);
		free(j);
		snap_unref(prev);
	}
	free(prev_json);
	/* most steps change only routes: they must not all take the whole pass */
	CHECK(incremental > steps / 2);
	table_clear(&t);
	free(t.v);
	gw_objset_free(set);
}

TEST(gw_incr_equals_whole_pass_on_random_route_changes)
{
	for (uint64_t seed = 1; seed <= 12; seed++)
		run_sequence(seed, 120, false, true);
}

TEST(gw_incr_equals_whole_pass_without_statuses)
{
	run_sequence(99, 120, true, false);
}

/* A change of another kind takes the whole pass; the next route change is
 * incremental again. */
TEST(gw_incr_falls_back_on_other_kinds)
{
	struct gw_options o = incr_opts(false);
	struct gw_objset *set = gw_objset_new();
	struct gw_incr *s = gw_incr_new();
	struct gw_result r = {0};

	rnd_state = 7;
	world(set);
	put_route(set, 0, 1);
	CHECK_EQ_INT(gw_reconcile_incr(s, set, &o, &r), 0);
	CHECK(!r.incremental);
	gwt_done(&r);
	put_route(set, 2, 2);
	CHECK_EQ_INT(gw_reconcile_incr(s, set, &o, &r), 0);
	CHECK(r.incremental);
	CHECK_EQ_INT(r.n_rederived, 1);
	gwt_done(&r);
	put_gateway(set, "gw3", "{\"name\":\"tcp\",\"port\":81,\"protocol\":\"TCP\"}");
	CHECK_EQ_INT(gw_reconcile_incr(s, set, &o, &r), 0);
	CHECK(!r.incremental);
	gwt_done(&r);
	o.controller_name = "example.com/other";
	CHECK_EQ_INT(gw_reconcile_incr(s, set, &o, &r), 0);
	CHECK(!r.incremental);
	gwt_done(&r);
	gw_objset_del(set, GW_K_HTTPROUTE, "infra", "r2");
	CHECK_EQ_INT(gw_reconcile_incr(s, set, &o, &r), 0);
	CHECK(r.incremental);
	gwt_done(&r);
	/* an object made again with the same text (local mode's implied
	 * Namespaces) is no change */
	gwt_put(set, "{'apiVersion':'v1','kind':'Namespace','metadata':{'name':'infra',"
		     "'labels':{'team':'infra'}}}");
	put_route(set, 4, 3);
	CHECK_EQ_INT(gw_reconcile_incr(s, set, &o, &r), 0);
	CHECK(r.incremental);
	gwt_done(&r);
	gw_incr_free(s);
	gw_objset_free(set);
}

/* HTTPRoute t<i> on gw1's http listener: host h<i>.example.test, one
 * PathPrefix rule to svc. */
static void put_simple_route(struct gw_objset *set, unsigned i, unsigned gen, const char *prefix)
{
	char json[1024];

	snprintf(json, sizeof(json),
		 "{\"apiVersion\":\"gateway.networking.k8s.io/v1\",\"kind\":\"HTTPRoute\","
		 "\"metadata\":{\"namespace\":\"infra\",\"name\":\"t%05u\",\"generation\":%u},"
		 "\"spec\":{\"parentRefs\":[{\"name\":\"gw1\",\"sectionName\":\"http\"}],"
		 "\"hostnames\":[\"h%05u.example.test\"],\"rules\":[{\"matches\":[{\"path\":"
		 "{\"type\":\"PathPrefix\",\"value\":\"%s\"}}],\"backendRefs\":[{\"name\":"
		 "\"svc\",\"port\":8080}]}]}}",
		 i, gen, i, prefix);
	put_json(set, json);
}

static uint64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* 10,000 routes, then one route changed at a time: each change must take
 * the incremental pass and re-derive exactly that route. Prints what a
 * change costs (figures for the README, not a limit: the machine is
 * shared). */
TEST(gw_incr_timing_10k_routes)
{
	struct gw_options o = incr_opts(false);
	struct gw_objset *set = gw_objset_new();
	struct gw_incr *s = gw_incr_new();
	struct gw_result r = {0};
	uint64_t us[10];
	char prefix[16];

	bigblock_keep(true); /* as in cluster mode */

	world(set);
	for (unsigned i = 0; i < 10000; i++) {
		put_simple_route(set, i, 1, "/p");
	}
	uint64_t t0 = now_us();
	CHECK_EQ_INT(gw_reconcile_incr(s, set, &o, &r), 0);
	uint64_t first = (now_us() - t0) / 1000u;
	gwt_done(&r);
	for (unsigned k = 0; k < 10; k++) {
		unsigned i = (k * 997) % 10000;
		snprintf(prefix, sizeof(prefix), "/q%u", k);
		put_simple_route(set, i, k + 2, prefix);
		t0 = now_us();
		CHECK_EQ_INT(gw_reconcile_incr(s, set, &o, &r), 0);
		us[k] = now_us() - t0;
		CHECK(r.incremental);
		CHECK_EQ_INT(r.n_rederived, 1);
		gwt_done(&r);
	}
	for (unsigned a = 0; a < 10; a++) /* a sort for the median */
		for (unsigned b = a + 1; b < 10; b++)
			if (us[b] < us[a]) {
				uint64_t x = us[a];
				us[a] = us[b];
				us[b] = x;
			}
	printf("  incremental reconcile, 10,000 routes: whole pass %llu ms, one route changed: "
	       "median %llu us (min %llu, max %llu)\n",
	       (unsigned long long)first, (unsigned long long)us[5], (unsigned long long)us[0],
	       (unsigned long long)us[9]);
	gw_incr_free(s);
	gw_objset_free(set);
	bigblock_keep(false);
}

/* The image cache (snapimage.c) against a whole encode, on the snapshots
 * the incremental reconcile makes: after random route changes (and now and
 * then a whole pass) the cached image has the very same bytes, and the
 * digest the cache gives before writing them is theirs. keep:
 * hold the last snapshot until after the next encode; else it is dropped
 * at once and only the cache keeps what its pieces point into. */
static void image_sequence(uint64_t seed, unsigned steps, bool keep)
{
	struct gw_options o = incr_opts(true);
	struct gw_objset *set = gw_objset_new();
	struct gw_incr *s = gw_incr_new();
	struct gw_image_cache *ic = gw_image_cache_new();
	struct snapshot *prev = NULL;
	unsigned same = 0;

	rnd_state = seed;
	world(set);
	for (unsigned i = 0; i < 12; i++)
		if (rnd(2))
			put_route(set, i, 1);
	for (unsigned step = 0; step < steps; step++) {
		if (step % 17 == 16) {
			other_change(set, step);
		} else {
			enum gw_kind k;
			const char *ns;
			char name[16];
			/* a few routes at once now and then */
			for (unsigned n = rnd(4) ? 1 : 1 + rnd(3); n; n--) {
				unsigned i = rnd(12);
				route_key(i, &k, &ns, name);
				if (rnd(5) < 2)
					gw_objset_del(set, k, ns, name);
				else
					put_route(set, i, step + 2);
			}
		}
		struct gw_result in = {0};
		uint8_t *p = NULL, *q = NULL;
		size_t n = 0, m = 0;
		CHECK_EQ_INT(gw_reconcile_incr(s, set, &o, &in), 0);
		if (!in.snap)
			break;
		uint64_t digest = 0;
		CHECK_EQ_INT(gw_image_cache_update(ic, in.snap, in.gateways, in.addresses,
						   in.n_gateways, &digest),
			     0);
		CHECK_EQ_INT(gw_image_cache_bytes(ic, &p, &n), 0);
		CHECK_EQ_INT(
			gw_image_encode(in.snap, in.gateways, in.addresses, in.n_gateways, &q, &m),
			0);
		CHECK_EQ_INT(n, m);
		if (p && q && n == m && !memcmp(p, q, n))
			same++;
		else
			fprintf(stderr, "  seed %llu step %u: cached image differs\n",
				(unsigned long long)seed, step);
		/* the digest had without the bytes is theirs */
		CHECK(p && q && digest == gw_image_digest(p, n) && digest == gw_image_digest(q, m));
		gw_image_buf_free(p, n);
		gw_image_buf_free(q, m);
		snap_unref(prev);
		prev = NULL;
		if (keep) {
			prev = in.snap;
			in.snap = NULL;
		}
		gwt_done(&in);
	}
	CHECK_EQ_INT(same, steps);
	snap_unref(prev);
	/* the cache outlives the reconcile state and every snapshot */
	gw_incr_free(s);
	gw_image_cache_free(ic);
	gw_objset_free(set);
}

TEST(gw_image_cache_equals_whole_encode_on_random_route_changes)
{
	for (uint64_t seed = 1; seed <= 8; seed++)
		image_sequence(seed, 100, seed % 2);
}
