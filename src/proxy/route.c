/* SPDX-License-Identifier: MIT */
/*
 * route.c: the runtime view of a snapshot (struct rt) and request routing.
 * rt_build runs on the control thread at publish time: it compiles every
 * regular expression (POSIX ERE, anchored) and builds, per listener, a hash
 * of exact hostnames and one of wildcard suffixes, each mapping to the
 * listener's rules in their precedence order, so that a lookup costs a hash
 * probe per label of the Host plus the rules of that host, whatever the
 * number of routes. Lookups run on any worker and only read the rt.
 * Sockets, TLS contexts and connections are not built here (proxy.c,
 * tlsglue.c).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/arena.h"
#include "core/hash.h"
#include "core/log.h"
#include "proxy/internal.h"
#include "proxy/snapshot.h"

/* ---- host maps ---- */

static size_t pow2_at_least(size_t n)
{
	size_t c = 8;
	while (c < n)
		c <<= 1;
	return c;
}

/* Finds the slot of key (lower-case already) or the empty slot for it. */
static struct rt_map_ent *map_slot(struct rt_map *m, const char *key, size_t klen)
{
	uint64_t h = hash_bytes(key, klen);
	size_t mask = m->cap - 1;
	for (size_t i = (size_t)h & mask;; i = (i + 1) & mask) {
		struct rt_map_ent *e = &m->v[i];
		if (!e->key || (e->klen == klen && memcmp(e->key, key, klen) == 0))
			return e;
	}
}

static const struct rt_map_ent *map_get(const struct rt_map *m, const char *key, size_t klen)
{
	if (!m->cap)
		return NULL;
	uint64_t h = hash_bytes(key, klen);
	size_t mask = m->cap - 1;
	for (size_t i = (size_t)h & mask;; i = (i + 1) & mask) {
		const struct rt_map_ent *e = &m->v[i];
		if (!e->key)
			return NULL;
		if (e->klen == klen && memcmp(e->key, key, klen) == 0)
			return e;
	}
}

/* Lower-cases a hostname pattern into out (size 256; a "*." wildcard
 * without its "*"). Returns the length, or 0 when it is longer than any
 * Host a request can match with (route_host_norm's limit). */
static size_t key_lower(const char *h, char *out)
{
	size_t n = strlen(h);
	if (n >= 256)
		return 0;
	for (size_t i = 0; i < n; i++)
		out[i] = ascii_lower(h[i]);
	out[n] = '\0';
	return n;
}

/*
 * The distinct keys of tmp (a scratch table sized by the number of
 * rule-hostname pairs) into m, sized by the number of distinct keys: rules
 * usually share their hosts, and 10,000 rules on 1,000 hosts need 2,048
 * slots, not 32,768. Keys and counts move; tmp is freed (also on
 * failure, -ENOMEM).
 */
static int map_settle(struct arena *a, struct rt_map *m, struct rt_map *tmp)
{
	size_t distinct = 0;
	int err = 0;
	for (size_t i = 0; i < tmp->cap; i++)
		distinct += tmp->v[i].key != NULL;
	m->cap = distinct ? pow2_at_least(distinct * 2) : 0;
	m->v = m->cap ? arena_zalloc(a, m->cap * sizeof(*m->v)) : NULL;
	if (m->cap && !m->v) {
		m->cap = 0;
		err = -ENOMEM;
	}
	for (size_t i = 0; !err && i < tmp->cap; i++) {
		const struct rt_map_ent *t = &tmp->v[i];
		if (t->key)
			*map_slot(m, t->key, t->klen) = *t;
	}
	free(tmp->v);
	*tmp = (struct rt_map){0};
	return err;
}

/*
 * Two passes over the rules: count the entries per key (into scratch
 * tables, each distinct key copied once into the arena), then fill the
 * index arrays, which keeps each run in rule (precedence) order.
 */
static int build_maps(struct arena *a, struct rt_listener *rl)
{
	size_t n_exact = 0, n_wild = 0, n_any = 0;
	struct rt_map tmp[2] = {{0}, {0}}; /* exact, wildcard */
	char low[256];

	for (size_t i = 0; i < rl->n_rules; i++) {
		const struct snap_http_rule *r = rl->rules[i].r;
		if (!r->n_hostnames)
			n_any++;
		for (size_t k = 0; k < r->n_hostnames; k++) {
			if (r->hostnames[k][0] == '*')
				n_wild++;
			else
				n_exact++;
		}
	}
	tmp[0].cap = n_exact ? pow2_at_least(n_exact * 2) : 0;
	tmp[1].cap = n_wild ? pow2_at_least(n_wild * 2) : 0;
	if ((tmp[0].cap && !(tmp[0].v = calloc(tmp[0].cap, sizeof(*tmp[0].v)))) ||
	    (tmp[1].cap && !(tmp[1].v = calloc(tmp[1].cap, sizeof(*tmp[1].v)))))
		goto fail;
	if (n_any && !(rl->any = arena_alloc(a, n_any * sizeof(uint32_t))))
		goto fail;
	for (int pass = 0; pass < 2; pass++) {
		for (size_t i = 0; i < rl->n_rules; i++) {
			const struct snap_http_rule *r = rl->rules[i].r;
			if (!r->n_hostnames && pass == 1)
				rl->any[rl->n_any++] = (uint32_t)i;
			for (size_t k = 0; k < r->n_hostnames; k++) {
				const char *h = r->hostnames[k];
				bool wild = h[0] == '*';
				size_t klen = key_lower(wild ? h + 1 : h, low);
				if (!klen)
					continue; /* no request can carry it */
				if (pass == 0) {
					struct rt_map_ent *e = map_slot(&tmp[wild], low, klen);
					if (!e->key) {
						if (!(e->key = arena_memdup(a, low, klen + 1)))
							goto fail;
						e->klen = klen;
					}
					e->n++;
					continue;
				}
				struct rt_map_ent *e =
					map_slot(wild ? &rl->wildcard : &rl->exact, low, klen);
				if (!e->idx) {
					e->idx = arena_alloc(a, e->n * sizeof(uint32_t));
					if (!e->idx)
						return -ENOMEM;
					e->n = 0;
				}
				/* a rule listing the same host twice appears once */
				if (!e->n || e->idx[e->n - 1] != i)
					e->idx[e->n++] = (uint32_t)i;
			}
		}
		if (pass == 0 &&
		    (map_settle(a, &rl->exact, &tmp[0]) || map_settle(a, &rl->wildcard, &tmp[1])))
			goto fail;
	}
	return 0;
fail:
	free(tmp[0].v);
	free(tmp[1].v);
	return -ENOMEM;
}

/* ---- regexes ---- */

static void regex_cleanup(void *arg)
{
	regfree(arg);
}

/* Compiles "^(re)$" into the arena; NULL (with a diag) when invalid. */
static regex_t *compile(struct arena *a, const char *re, const struct snap_http_rule *r,
			const char *field, struct diag *d)
{
	regex_t *rx = arena_alloc(a, sizeof(*rx));
	char *anchored = arena_printf(a, "^(%s)$", re);
	if (!rx || !anchored)
		return NULL;
	int rc = regcomp(rx, anchored, REG_EXTENDED | REG_NOSUB);
	if (rc) {
		char msg[128];
		regerror(rc, rx, msg, sizeof(msg));
		diag_add(d, DIAG_WARN, NULL, r->route, field,
			 "regular expression '%s' does not compile (%s): the rule never matches",
			 re, msg);
		return NULL;
	}
	if (arena_cleanup_add(a, regex_cleanup, rx)) {
		regfree(rx);
		return NULL;
	}
	return rx;
}

static int build_rule(struct arena *a, struct rt_rule *rr, const struct snap_http_rule *r,
		      struct diag *d)
{
	const struct snap_http_match *m = &r->match;

	rr->r = r;
	for (size_t i = 0; i < r->n_backends; i++)
		rr->total_weight += r->backends[i].weight;
	if (m->path_type == SNAP_PM_REGEX) {
		rr->path_re = compile(a, m->path ? m->path : "", r, "matches.path", d);
		if (!rr->path_re)
			rr->broken = true;
	} else {
		size_t n = m->path ? strlen(m->path) : 0;
		if (m->path_type == SNAP_PM_PREFIX)
			while (n && m->path[n - 1] == '/')
				n--;
		rr->prefix_len = n;
	}
	if (m->n_headers) {
		rr->hdr_re = arena_zalloc(a, m->n_headers * sizeof(regex_t *));
		if (!rr->hdr_re)
			return -ENOMEM;
		for (size_t i = 0; i < m->n_headers; i++) {
			if (m->headers[i].type != SNAP_SM_REGEX)
				continue;
			rr->hdr_re[i] = compile(a, m->headers[i].value, r, "matches.headers", d);
			if (!rr->hdr_re[i])
				rr->broken = true;
		}
	}
	if (m->n_query) {
		rr->query_re = arena_zalloc(a, m->n_query * sizeof(regex_t *));
		if (!rr->query_re)
			return -ENOMEM;
		for (size_t i = 0; i < m->n_query; i++) {
			if (m->query[i].type != SNAP_SM_REGEX)
				continue;
			rr->query_re[i] =
				compile(a, m->query[i].value, r, "matches.queryParams", d);
			if (!rr->query_re[i])
				rr->broken = true;
		}
	}
	return 0;
}

/* ---- building and reference counting ---- */

struct rt *rt_build(struct snapshot *snap, struct diag *d)
{
	struct arena *a = arena_new(16384);
	struct rt *rt = a ? arena_zalloc(a, sizeof(*rt)) : NULL;

	if (!rt)
		goto fail;
	rt->arena = a;
	rt->refs = 1;
	rt->snap = snap;
	if (snap->n_listeners &&
	    !(rt->listeners = arena_zalloc(a, snap->n_listeners * sizeof(*rt->listeners))))
		goto fail;
	for (size_t i = 0; i < snap->n_listeners; i++) {
		const struct snap_listener *l = &snap->listeners[i];
		struct rt_listener *rl = &rt->listeners[i];
		rl->l = l;
		if (l->proto == SNAP_P_TLS && l->n_tls_routes &&
		    !(rl->tls_stat_ids =
			      arena_zalloc(a, l->n_tls_routes * sizeof(*rl->tls_stat_ids))))
			goto fail;
		if (l->proto != SNAP_P_HTTP && l->proto != SNAP_P_HTTPS)
			continue;
		rl->n_rules = l->n_http_rules;
		if (rl->n_rules && !(rl->rules = arena_zalloc(a, rl->n_rules * sizeof(*rl->rules))))
			goto fail;
		for (size_t k = 0; k < rl->n_rules; k++)
			if (build_rule(a, &rl->rules[k], &l->http_rules[k], d))
				goto fail;
		if (build_maps(a, rl))
			goto fail;
	}
	rt->n_sockets = snap->n_sockets;
	if (snap->n_sockets &&
	    !(rt->sockets = arena_zalloc(a, snap->n_sockets * sizeof(*rt->sockets))))
		goto fail;
	for (size_t i = 0; i < snap->n_sockets; i++) {
		const struct snap_socket *s = &snap->sockets[i];
		struct rt_socket *rs = &rt->sockets[i];
		rs->s = s;
		rs->n_listeners = s->n_listeners;
		if (s->n_listeners &&
		    !(rs->listeners = arena_zalloc(a, s->n_listeners * sizeof(*rs->listeners))))
			goto fail;
		for (size_t k = 0; k < s->n_listeners; k++) {
			size_t li = (size_t)(s->listeners[k] - snap->listeners);
			rs->listeners[k] = li < snap->n_listeners ? &rt->listeners[li] : NULL;
			if (s->listeners[k]->proto == SNAP_P_HTTPS)
				rs->tls = true;
		}
	}
	return rt;
fail:
	diag_add(d, DIAG_ERROR, NULL, NULL, NULL, "out of memory building the routing tables");
	arena_free(a);
	return NULL;
}

void rt_ref(struct rt *rt)
{
	__atomic_add_fetch(&rt->refs, 1, __ATOMIC_RELAXED);
}

void rt_unref(struct rt *rt)
{
	if (!rt || __atomic_sub_fetch(&rt->refs, 1, __ATOMIC_ACQ_REL) != 0)
		return;
	tlsg_backends_release(rt);
	for (size_t i = 0; i < rt->n_sockets; i++) {
		tlsg_server_release(&rt->sockets[i]);
		if (rt->sockets[i].ps)
			psock_unref(rt->sockets[i].ps);
	}
	snap_unref(rt->snap);
	arena_free(rt->arena); /* runs the regfree cleanups */
}

struct rt_socket *rt_socket_by_id(struct rt *rt, uint64_t id)
{
	for (size_t i = 0; i < rt->n_sockets; i++)
		if (rt->sockets[i].ps && rt->sockets[i].ps->id == id)
			return &rt->sockets[i];
	return NULL;
}

/* ---- lookups ---- */

size_t route_host_norm(struct str host, char *out, size_t size)
{
	size_t n = host.len;
	const char *p = host.p;

	if (n && p[0] == '[') {
		const char *rb = memchr(p, ']', n);
		if (!rb)
			return 0;
		n = (size_t)(rb - p) + 1;
	} else {
		for (size_t i = n; i > 0; i--) {
			if (p[i - 1] == ':') {
				n = i - 1;
				break;
			}
			if (p[i - 1] < '0' || p[i - 1] > '9')
				break;
		}
	}
	while (n && p[n - 1] == '.')
		n--;
	if (!n || n >= size)
		return 0;
	for (size_t i = 0; i < n; i++)
		out[i] = ascii_lower(p[i]);
	out[n] = '\0';
	return n;
}

bool route_host_matches(const char *pattern, const char *host, size_t hlen)
{
	if (!pattern || !*pattern)
		return true;
	size_t pl = strlen(pattern);
	if (pattern[0] == '*') {
		/* "*.x" covers "a.x" and "a.b.x", not "x" */
		size_t sl = pl - 1;
		return hlen > sl && strncasecmp(host + hlen - sl, pattern + 1, sl) == 0;
	}
	return pl == hlen && strncasecmp(pattern, host, hlen) == 0;
}

struct rt_listener *route_listener(struct rt_socket *sock, const char *host, size_t hlen)
{
	struct rt_listener *best = NULL;
	int best_rank = -1; /* 0 any, 1 + suffix length wildcard, INT_MAX/2 exact */

	for (size_t i = 0; i < sock->n_listeners; i++) {
		struct rt_listener *rl = sock->listeners[i];
		if (!rl)
			continue;
		const char *h = rl->l->hostname;
		int rank;
		if (!h || !*h)
			rank = 0;
		else if (!route_host_matches(h, host, hlen))
			continue;
		else if (h[0] == '*')
			rank = 1 + (int)strlen(h);
		else
			rank = 1 << 20;
		if (rank > best_rank) {
			best = rl;
			best_rank = rank;
		}
	}
	return best;
}

static bool path_matches(const struct rt_rule *rr, struct str path)
{
	const struct snap_http_match *m = &rr->r->match;
	switch (m->path_type) {
	case SNAP_PM_EXACT:
		return path.len == rr->prefix_len && memcmp(path.p, m->path, path.len) == 0;
	case SNAP_PM_PREFIX:
		if (rr->prefix_len == 0)
			return true;
		return path.len >= rr->prefix_len && memcmp(path.p, m->path, rr->prefix_len) == 0 &&
		       (path.len == rr->prefix_len || path.p[rr->prefix_len] == '/');
	case SNAP_PM_REGEX: {
		char tmp[8200];
		if (!rr->path_re || path.len >= sizeof(tmp))
			return false;
		memcpy(tmp, path.p, path.len);
		tmp[path.len] = '\0';
		return regexec(rr->path_re, tmp, 0, NULL, 0) == 0;
	}
	}
	return false;
}

static bool value_matches(const struct snap_kv_match *km, const regex_t *re, struct str v)
{
	if (km->type == SNAP_SM_EXACT)
		return str_eq_c(v, km->value);
	char tmp[8200];
	if (!re || v.len >= sizeof(tmp))
		return false;
	memcpy(tmp, v.p, v.len);
	tmp[v.len] = '\0';
	return regexec(re, tmp, 0, NULL, 0) == 0;
}

/* The first value of query parameter name in q ("a=1&b=2"), if any. */
static bool query_get(struct str q, const char *name, struct str *out)
{
	size_t nl = strlen(name), i = 0;
	while (i <= q.len) {
		size_t j = i;
		while (j < q.len && q.p[j] != '&')
			j++;
		struct str kv = {q.p + i, j - i};
		const char *eq = memchr(kv.p, '=', kv.len);
		size_t kl = eq ? (size_t)(eq - kv.p) : kv.len;
		if (kl == nl && memcmp(kv.p, name, nl) == 0) {
			out->p = eq ? eq + 1 : kv.p + kv.len;
			out->len = eq ? kv.len - kl - 1 : 0;
			return true;
		}
		i = j + 1;
	}
	return false;
}

static bool rule_matches(const struct rt_rule *rr, const struct route_req *rq)
{
	const struct snap_http_match *m = &rr->r->match;

	if (rr->broken)
		return false;
	if (m->method && !str_eq_c(rq->method, m->method))
		return false;
	if (!path_matches(rr, rq->path))
		return false;
	for (size_t i = 0; i < m->n_headers; i++) {
		const struct snap_kv_match *km = &m->headers[i];
		ssize_t k = hdr_find(rq->headers, rq->n_headers, str_c(km->name), 0);
		if (k < 0 ||
		    !value_matches(km, rr->hdr_re ? rr->hdr_re[i] : NULL, rq->headers[k].value))
			return false;
	}
	for (size_t i = 0; i < m->n_query; i++) {
		const struct snap_kv_match *km = &m->query[i];
		struct str v;
		if (!query_get(rq->query, km->name, &v) ||
		    !value_matches(km, rr->query_re ? rr->query_re[i] : NULL, v))
			return false;
	}
	return true;
}

static struct rt_rule *first_match(struct rt_listener *l, const uint32_t *idx, size_t n,
				   const struct route_req *rq)
{
	for (size_t i = 0; i < n; i++)
		if (rule_matches(&l->rules[idx[i]], rq))
			return &l->rules[idx[i]];
	return NULL;
}

struct rt_rule *route_match(struct rt_listener *l, const char *host, size_t hlen,
			    const struct route_req *rq)
{
	const struct rt_map_ent *e = map_get(&l->exact, host, hlen);
	struct rt_rule *r;

	if (e && (r = first_match(l, e->idx, e->n, rq)))
		return r;
	if (l->wildcard.cap) {
		/* longest suffix first: scan dots from the left */
		for (size_t i = 0; i < hlen; i++) {
			if (host[i] != '.')
				continue;
			e = map_get(&l->wildcard, host + i, hlen - i);
			if (e && i > 0 && (r = first_match(l, e->idx, e->n, rq)))
				return r;
		}
	}
	return first_match(l, l->any, l->n_any, rq);
}
