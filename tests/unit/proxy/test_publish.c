/* SPDX-License-Identifier: MIT */
/*
 * Tests of proxy_publish (proxy/proxy.c) with the snapshots that cluster
 * mode's incremental reconcile makes (gwapi/incr.c), 10,000 HTTPRoutes:
 * after a one-route change the new rt keeps every other rule of the last
 * one (and the store they live in), so a publish costs what the change
 * costs; the route counters list exactly the rules served, also after a
 * route is removed and brought back, without a walk over every rule.
 */
#include <time.h>

#include "../gwapi/gwtest.h"
#include "core/diag.h"
#include "proxy/internal.h"
#include "proxy/proxy.h"

#define N_ROUTES 10000

static double now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static void put_route(struct gw_objset *set, unsigned i, const char *path)
{
	char buf[1024];
	snprintf(buf, sizeof(buf),
		 "{'apiVersion':'gateway.networking.k8s.io/v1','kind':'HTTPRoute',"
		 "'metadata':{'namespace':'infra','name':'r%05u'},'spec':{'parentRefs':[{'name':"
		 "'gw'}],'hostnames':['h%05u.example.test'],'rules':[{'matches':[{'path':{'type':"
		 "'PathPrefix','value':'%s'}}],'backendRefs':[{'name':'svc','port':8080}]}]}}",
		 i, i, path);
	gwt_put(set, buf);
}

struct world {
	struct gw_options o;
	struct gw_objset *set;
	struct gw_incr *incr;
	struct proxy *px;
};

static void world_init(struct world *w)
{
	static const char *const feats[] = {"Gateway", "HTTPRoute", NULL};

	memset(w, 0, sizeof(*w));
	w->o = (struct gw_options){.controller_name = GWT_CONTROLLER,
				   .now_ms = 1790000000000ULL,
				   .supported_features = feats};
	w->set = gw_objset_new();
	w->incr = gw_incr_new();
	gwt_base(w->set);
	/* port 1: nothing here connects to it */
	gwt_put(w->set, "{'apiVersion':'gateway.networking.k8s.io/v1','kind':'Gateway','metadata':{"
			"'namespace':'infra','name':'gw'},'spec':{'gatewayClassName':'wg',"
			"'listeners':[{'name':'http','port':1,'protocol':'HTTP'}]}}");
	for (unsigned i = 0; i < N_ROUTES; i++)
		put_route(w->set, i, "/p");
	struct proxy_config cfg = {.workers = 1, .access_log_fd = -1};
	w->px = proxy_new(&cfg);
}

/* Reconciles the set and publishes the result; the publish's ms. */
static double world_publish(struct world *w, bool *incremental)
{
	struct gw_result r = {0};
	struct diag d = {0};
	double ms = -1;

	CHECK_EQ_INT(gw_reconcile_incr(w->incr, w->set, &w->o, &r), 0);
	*incremental = r.incremental;
	if (r.snap) {
		double t0 = now_ms();
		/* a failed bind (not root) leaves the routing tables as they are */
		proxy_publish(w->px, r.snap, &d);
		ms = now_ms() - t0;
		r.snap = NULL;
	}
	diag_fini(&d);
	gwt_done(&r);
	return ms;
}

static void world_fini(struct world *w)
{
	proxy_free(w->px);
	gw_incr_free(w->incr);
	gw_objset_free(w->set);
}

TEST(proxy_publish_after_one_route_change_keeps_the_other_rules)
{
	struct world w;
	bool incr;
	double worst = 0;

	world_init(&w);
	world_publish(&w, &incr);
	for (unsigned step = 1; step <= 10; step++) {
		struct rt *before = w.px->current;
		char p[32];
		unsigned i = (step * 997) % N_ROUTES;
		rt_ref(before);
		snprintf(p, sizeof(p), "/q%u", step);
		put_route(w.set, i, p);
		double ms = world_publish(&w, &incr);
		struct rt *after = w.px->current;
		CHECK(incr);
		CHECK(after != before && after->store == before->store);
		CHECK_EQ_INT(after->listeners[0].n_rules, N_ROUTES);
		size_t kept = 0;
		for (size_t k = 0; k < N_ROUTES; k++)
			kept += after->listeners[0].rules[k] == before->listeners[0].rules[k];
		/* the changed route keeps its place: one rule made, none moved */
		CHECK_EQ_INT(kept, N_ROUTES - 1);
		CHECK(strcmp(after->listeners[0].rules[i]->r->match.path, p) == 0);
		rt_unref(before);
		if (ms > worst)
			worst = ms;
	}
	/* well under a millisecond on a quiet machine; loose for shared runners */
	if (worst > 1)
		fprintf(stderr, "  publish after a one-route change took %.2f ms\n", worst);
	CHECK(worst < 50);
	world_fini(&w);
}

static size_t served_routes(struct proxy *px, const char *route)
{
	static struct proxy_route_stats out[N_ROUTES + 8];
	size_t n = proxy_route_stats(px, out, N_ROUTES + 8), hits = 0;

	for (size_t i = 0; route && i < n && i < N_ROUTES + 8; i++)
		hits += !strcmp(out[i].route, route);
	return route ? hits : n;
}

TEST(proxy_publish_route_stats_follow_changes)
{
	struct world w;
	bool incr;

	world_init(&w);
	world_publish(&w, &incr);
	CHECK_EQ_INT(served_routes(w.px, NULL), N_ROUTES);
	CHECK_EQ_INT(served_routes(w.px, "infra/r00042"), 1);
	/* removed: no longer listed */
	gw_objset_del(w.set, GW_K_HTTPROUTE, "infra", "r00042");
	world_publish(&w, &incr);
	CHECK(incr);
	CHECK_EQ_INT(served_routes(w.px, NULL), N_ROUTES - 1);
	CHECK_EQ_INT(served_routes(w.px, "infra/r00042"), 0);
	/* changed: listed once */
	put_route(w.set, 7, "/changed");
	world_publish(&w, &incr);
	CHECK_EQ_INT(served_routes(w.px, NULL), N_ROUTES - 1);
	CHECK_EQ_INT(served_routes(w.px, "infra/r00007"), 1);
	/* back */
	put_route(w.set, 42, "/p");
	world_publish(&w, &incr);
	CHECK(incr);
	CHECK_EQ_INT(served_routes(w.px, NULL), N_ROUTES);
	CHECK_EQ_INT(served_routes(w.px, "infra/r00042"), 1);
	world_fini(&w);
}
