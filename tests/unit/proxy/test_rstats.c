/* SPDX-License-Identifier: MIT */
/*
 * Tests of proxy/rstats.c: route rule ids are stable per (route, rule
 * index) across publishes, rules a publish no longer serves leave the
 * collection and come back with their counts, counters of several workers
 * are summed (requests, status classes, bytes, latency buckets), the
 * collection reports how many rules there are when out is too small, an
 * HTTP rule counted as served stays collected over publishes that do not
 * stamp it, and the id map keeps working past its first growth and chunk.
 */
#include <stdio.h>
#include <stdlib.h>

#include "../check.h"
#include "proxy/internal.h"

static const struct proxy_route_stats *find(const struct proxy_route_stats *v, size_t n,
					    const char *route, uint32_t rule)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(v[i].route, route) && v[i].rule_index == rule)
			return &v[i];
	return NULL;
}

TEST(rstats_ids_are_stable_per_route_rule)
{
	struct rstat_reg g = {0};
	uint32_t a0 = rstat_id(&g, "foo/a", 0, 1), a1 = rstat_id(&g, "foo/a", 1, 1);
	uint32_t b0 = rstat_id(&g, "bar/a", 0, 1);

	CHECK(a0 && a1 && b0);
	CHECK(a0 != a1 && a0 != b0 && a1 != b0);
	/* the same rule in another listener of the same publish, and later */
	CHECK_EQ_INT(rstat_id(&g, "foo/a", 0, 1), a0);
	CHECK_EQ_INT(rstat_id(&g, "foo/a", 1, 2), a1);
	CHECK_EQ_INT(rstat_id(&g, NULL, 0, 2), 0);
	rstat_reg_fini(&g);
}

/* A worker's counters of rule id, which every request below counts into. */
static struct route_ctr *ctr_of(struct rstat_worker *w, uint32_t id)
{
	struct route_ctr *c = rstat_ctr(w, id);

	if (!c)
		abort(); /* no slot: none of the counts below could be checked */
	return c;
}

TEST(rstats_sums_workers_and_keeps_counts_across_publishes)
{
	struct rstat_reg g = {0};
	struct rstat_worker w1 = {0}, w2 = {0};
	struct rstat_worker *ws[] = {&w1, &w2};
	struct proxy_route_stats out[4];
	const struct proxy_route_stats *s;
	uint32_t web = rstat_id(&g, "default/web", 0, 1), shop = rstat_id(&g, "default/shop", 0, 1);
	struct route_ctr *c;

	rstat_reg_publish(&g, 1);
	CHECK(rstat_ctr(&w1, 0) == NULL);
	rstat_done(NULL, 200, 1, 1, 1); /* an uncounted request: nothing */

	/* web: 3 requests on worker 1, 2 on worker 2 (one still in flight) */
	for (int i = 0; i < 3; i++) {
		c = ctr_of(&w1, web);
		RCTR_ADD(c, requests, 1);
		rstat_done(c, i ? 200 : 503, 100, 1000, i * 30); /* 0, 30, 60 ms */
	}
	c = ctr_of(&w2, web);
	RCTR_ADD(c, requests, 1);
	RCTR_ADD(c, upstream_errors, 2); /* two failed attempts, then an answer */
	rstat_done(c, 404, 50, 20, 3000);
	RCTR_ADD(c, requests, 1);
	/* shop: one request on worker 2 */
	c = ctr_of(&w2, shop);
	RCTR_ADD(c, requests, 1);
	rstat_done(c, 302, 10, 10, 4);

	CHECK_EQ_INT(rstat_collect(&g, ws, 2, out, 4), 2);
	s = find(out, 2, "default/web", 0);
	CHECK(s != NULL);
	if (s) {
		CHECK_EQ_INT(s->id, web);
		CHECK_EQ_INT(s->requests, 5);
		CHECK_EQ_INT(s->responses_by_class[2], 2);
		CHECK_EQ_INT(s->responses_by_class[4], 1);
		CHECK_EQ_INT(s->responses_by_class[5], 1);
		CHECK_EQ_INT(s->bytes_in, 350);
		CHECK_EQ_INT(s->bytes_out, 3020);
		/* 0 ms → ≤5, 30 and 60 ms → ≤100, 3000 ms → +Inf */
		CHECK_EQ_INT(s->latency_buckets[0], 1);
		CHECK_EQ_INT(s->latency_buckets[1], 0);
		CHECK_EQ_INT(s->latency_buckets[2], 2);
		CHECK_EQ_INT(s->latency_buckets[5], 1);
		CHECK_EQ_INT(s->latency_sum_us, (0 + 30 + 60 + 3000) * 1000);
		CHECK_EQ_INT(s->upstream_errors, 2);
	}
	s = find(out, 2, "default/shop", 0);
	CHECK(s && s->requests == 1 && s->responses_by_class[3] == 1 && s->latency_buckets[0] == 1);

	/* publish 2 serves web only: shop leaves the collection */
	CHECK_EQ_INT(rstat_id(&g, "default/web", 0, 2), web);
	rstat_reg_publish(&g, 2);
	CHECK_EQ_INT(rstat_collect(&g, ws, 2, out, 4), 1);
	CHECK_EQ_STR(out[0].route, "default/web");
	CHECK_EQ_INT(out[0].requests, 5);

	/* publish 3 brings shop back under its id, with what it had */
	CHECK_EQ_INT(rstat_id(&g, "default/web", 0, 3), web);
	CHECK_EQ_INT(rstat_id(&g, "default/shop", 0, 3), shop);
	rstat_reg_publish(&g, 3);
	CHECK_EQ_INT(rstat_collect(&g, ws, 2, out, 4), 2);
	s = find(out, 2, "default/shop", 0);
	CHECK(s && s->requests == 1);

	/* too little room: the count says how much is needed */
	CHECK_EQ_INT(rstat_collect(&g, ws, 2, out, 1), 2);
	CHECK_EQ_INT(out[0].id, web);

	rstat_worker_fini(&w1);
	rstat_worker_fini(&w2);
	rstat_reg_fini(&g);
}

/* HTTP rules are counted in and out of the served rt (publish touches
 * only the rules it adds and drops), L4 routes stamped at each publish. */
TEST(rstats_served_rules_stay_listed_until_dropped)
{
	struct rstat_reg g = {0};
	struct rstat_worker w = {0};
	struct rstat_worker *ws[] = {&w};
	struct proxy_route_stats out[4];
	uint32_t a = rstat_id(&g, "ns/a", 0, 1), b = rstat_id(&g, "ns/b", 0, 1);
	uint32_t tcp = rstat_id(&g, "ns/tcp", 0, 1);

	rstat_serve(&g, a, 1);
	rstat_serve(&g, a, 1); /* the same rule on a second listener */
	rstat_serve(&g, b, 1);
	rstat_serve(&g, 0, 1); /* uncounted: ignored */
	rstat_reg_publish(&g, 1);
	CHECK_EQ_INT(rstat_collect(&g, ws, 1, out, 4), 3);
	/* publish 2 stamps nothing: the HTTP rules stay, the L4 route goes */
	rstat_reg_publish(&g, 2);
	CHECK_EQ_INT(rstat_collect(&g, ws, 1, out, 4), 2);
	/* one listener drops a: still served by the other */
	rstat_serve(&g, a, -1);
	rstat_serve(&g, b, -1);
	rstat_reg_publish(&g, 3);
	CHECK_EQ_INT(rstat_collect(&g, ws, 1, out, 4), 1);
	CHECK_EQ_INT(out[0].id, a);
	rstat_serve(&g, a, -1);
	CHECK_EQ_INT(rstat_collect(&g, ws, 1, out, 4), 0);
	CHECK_EQ_INT(rstat_id(&g, "ns/tcp", 0, 4), tcp);
	rstat_reg_publish(&g, 4);
	CHECK_EQ_INT(rstat_collect(&g, ws, 1, out, 4), 1);
	rstat_worker_fini(&w);
	rstat_reg_fini(&g);
}

TEST(rstats_many_rules_grow_map_and_chunks)
{
	enum { N = 3 * RSTAT_CHUNK + 7 };
	struct rstat_reg g = {0};
	struct rstat_worker w = {0};
	struct rstat_worker *ws[] = {&w};
	struct proxy_route_stats *out = calloc(N, sizeof(*out));
	uint32_t *ids = calloc(N, sizeof(*ids));
	char name[32];
	int bad = 0;

	CHECK(out && ids);
	if (!out || !ids)
		goto out;
	for (uint32_t i = 0; i < N; i++) {
		snprintf(name, sizeof(name), "ns/r%u", i / 2);
		ids[i] = rstat_id(&g, name, i % 2, 1);
		bad += ids[i] != i + 1;
	}
	rstat_reg_publish(&g, 1);
	CHECK_EQ_INT(bad, 0);
	for (uint32_t i = 0; i < N; i++) {
		snprintf(name, sizeof(name), "ns/r%u", i / 2);
		bad += rstat_id(&g, name, i % 2, 1) != ids[i];
		struct route_ctr *c = rstat_ctr(&w, ids[i]);
		if (c)
			RCTR_ADD(c, requests, i);
	}
	CHECK_EQ_INT(bad, 0);
	CHECK_EQ_INT(rstat_collect(&g, ws, 1, out, N), N);
	for (uint32_t i = 0; i < N; i++)
		bad += out[i].id != i + 1 || out[i].requests != i;
	CHECK_EQ_INT(bad, 0);
out:
	free(out);
	free(ids);
	rstat_worker_fini(&w);
	rstat_reg_fini(&g);
}
