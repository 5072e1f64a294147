/* SPDX-License-Identifier: MIT */
/*
 * rstats.c: traffic counters per route rule, kept per worker without locks.
 *
 * Every route rule a snapshot serves gets an id from the registry, keyed by
 * its stable identity (route "ns/name", rule index): the same rule keeps
 * its id in every later snapshot, so a publish (or pinning an older
 * revision) neither loses nor mixes up what was counted. A worker counts
 * into its own array of route_ctr indexed by id, in chunks allocated the
 * first time a rule of that chunk sees a request, so idle routes cost no
 * memory per worker. Readers (the UI through proxy_route_stats) sum the
 * workers' counters with relaxed loads, as proxy_get_stats does.
 *
 * Which ids are served: an HTTP rule's while some rule of the current rt
 * carries it (publish counts the rules it adds and drops, not all), an
 * L4 route's while the last publish stamped it (there are few).
 *
 * Threads: ids are given out on the control thread at publish; counters
 * are written by their worker only; collection runs on any thread. Entries
 * and chunks never move and are freed only by rstat_reg_fini and
 * rstat_worker_fini, after the workers stopped and the readers are gone.
 *
 * Not done here: counting itself (conn.c and h2.c call rstat_ctr and
 * rstat_done on the request path), and forgetting a route: an id is never
 * reused, so the registry is capped (RSTAT_MAX_IDS) and rules beyond the
 * cap are served uncounted, with one warning.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/hash.h"
#include "core/log.h"
#include "proxy/internal.h"

#define LOAD(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)

static uint64_t key_hash(const char *route, uint32_t rule_index)
{
	return hash_mix(hash_bytes(route, strlen(route)), rule_index);
}

static struct rstat_ent *ent_at(const struct rstat_reg *g, uint32_t id)
{
	return &g->chunks[(id - 1) / RSTAT_CHUNK][(id - 1) % RSTAT_CHUNK];
}

/* Doubles the id map (control thread); -ENOMEM leaves the old one. */
static int map_grow(struct rstat_reg *g)
{
	size_t cap = g->map_cap ? g->map_cap * 2 : 1024;
	uint32_t *m = calloc(cap, sizeof(*m));

	if (!m)
		return -ENOMEM;
	for (size_t i = 0; i < g->map_cap; i++) {
		uint32_t id = g->map[i];
		const struct rstat_ent *e;
		size_t k;

		if (!id)
			continue;
		e = ent_at(g, id);
		for (k = key_hash(e->route, e->rule_index) & (cap - 1); m[k];
		     k = (k + 1) & (cap - 1))
			;
		m[k] = id;
	}
	free(g->map);
	g->map = m;
	g->map_cap = cap;
	return 0;
}

uint32_t rstat_id(struct rstat_reg *g, const char *route, uint32_t rule_index, uint64_t gen)
{
	uint32_t n = g->n, id;
	struct rstat_ent *e;
	size_t k;

	if (!route)
		return 0;
	if ((size_t)n * 2 >= g->map_cap && map_grow(g) < 0)
		return 0;
	for (k = key_hash(route, rule_index) & (g->map_cap - 1); (id = g->map[k]);
	     k = (k + 1) & (g->map_cap - 1)) {
		e = ent_at(g, id);
		if (e->rule_index == rule_index && !strcmp(e->route, route)) {
			__atomic_store_n(&e->gen, gen, __ATOMIC_RELAXED);
			return id;
		}
	}
	if (n >= RSTAT_MAX_IDS) {
		if (!g->full_logged)
			log_warn("event=route_stats_full ids=%u route=%s action=not_counted",
				 (unsigned)n, route);
		g->full_logged = true;
		return 0;
	}
	if (!g->chunks[n / RSTAT_CHUNK] &&
	    !(g->chunks[n / RSTAT_CHUNK] = calloc(RSTAT_CHUNK, sizeof(struct rstat_ent))))
		return 0;
	e = &g->chunks[n / RSTAT_CHUNK][n % RSTAT_CHUNK];
	if (!(e->route = strdup(route)))
		return 0;
	e->rule_index = rule_index;
	e->gen = gen;
	id = n + 1;
	g->map[k] = id;
	/* the entry is complete before readers may see it */
	__atomic_store_n(&g->n, id, __ATOMIC_RELEASE);
	return id;
}

void rstat_serve(struct rstat_reg *g, uint32_t id, int delta)
{
	if (!id || id > g->n)
		return;
	struct rstat_ent *e = ent_at(g, id);
	__atomic_store_n(&e->serving, e->serving + (uint32_t)delta, __ATOMIC_RELAXED);
}

void rstat_reg_publish(struct rstat_reg *g, uint64_t gen)
{
	__atomic_store_n(&g->gen, gen, __ATOMIC_RELEASE);
}

void rstat_reg_fini(struct rstat_reg *g)
{
	for (uint32_t i = 0; i < g->n; i++)
		free(ent_at(g, i + 1)->route);
	for (size_t c = 0; c < RSTAT_MAX_CHUNKS; c++)
		free(g->chunks[c]);
	free(g->map);
	memset(g, 0, sizeof(*g));
}

struct route_ctr *rstat_chunk_new(struct rstat_worker *rw, uint32_t chunk)
{
	struct route_ctr *c = calloc(RSTAT_CHUNK, sizeof(*c));

	/* zeroed before a reader can reach it through the pointer */
	if (c)
		__atomic_store_n(&rw->chunks[chunk], c, __ATOMIC_RELEASE);
	return c;
}

void rstat_worker_fini(struct rstat_worker *rw)
{
	for (size_t c = 0; c < RSTAT_MAX_CHUNKS; c++)
		free(rw->chunks[c]);
	memset(rw, 0, sizeof(*rw));
}

static void add_ctr(struct proxy_route_stats *o, const struct route_ctr *c)
{
	o->requests += LOAD(c->requests);
	for (int k = 0; k < 6; k++)
		o->responses_by_class[k] += LOAD(c->responses_by_class[k]);
	o->bytes_in += LOAD(c->bytes_in);
	o->bytes_out += LOAD(c->bytes_out);
	for (int k = 0; k < RSTAT_LAT_BUCKETS; k++)
		o->latency_buckets[k] += LOAD(c->latency_buckets[k]);
	o->latency_sum_us += LOAD(c->latency_sum_us);
	o->upstream_errors += LOAD(c->upstream_errors);
}

size_t rstat_collect(const struct rstat_reg *g, struct rstat_worker *const *ws, size_t n_ws,
		     struct proxy_route_stats *out, size_t max)
{
	uint32_t n = __atomic_load_n(&g->n, __ATOMIC_ACQUIRE);
	uint64_t gen = __atomic_load_n(&g->gen, __ATOMIC_ACQUIRE);
	size_t live = 0;

	for (uint32_t id = 1; id <= n; id++) {
		const struct rstat_ent *e = ent_at(g, id);
		struct proxy_route_stats *o;

		/* rules of the served snapshot (or of one being published) */
		if (LOAD(e->gen) < gen && !LOAD(e->serving))
			continue;
		if (live++ >= max)
			continue;
		o = &out[live - 1];
		memset(o, 0, sizeof(*o));
		o->id = id;
		o->route = e->route;
		o->rule_index = e->rule_index;
		for (size_t w = 0; w < n_ws; w++) {
			const struct route_ctr *c = __atomic_load_n(
				&ws[w]->chunks[(id - 1) / RSTAT_CHUNK], __ATOMIC_ACQUIRE);

			if (c)
				add_ctr(o, &c[(id - 1) % RSTAT_CHUNK]);
		}
	}
	return live;
}
