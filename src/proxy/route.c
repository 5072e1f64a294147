/* SPDX-License-Identifier: MIT */
/*
 * route.c: the runtime view of a snapshot (struct rt) and request routing.
 * rt_build_from runs on the control thread at publish time: it compiles
 * each rule (regular expressions: POSIX ERE, anchored) and builds, per
 * listener, a hash of exact hostnames and one of wildcard suffixes, each
 * mapping to a run of the listener's rules in their precedence order, so
 * that a lookup costs a hash probe per label of the Host plus the rules of
 * that host, whatever the number of routes. Lookups run on any worker and
 * only read the rt.
 *
 * A build starts from the rt last published: the rules whose snapshot
 * entries did not change are kept (compiled regexes and all), found by
 * one walk over the old and new rule lists; only the new rules are made,
 * only the runs of the hosts they and the dropped ones have are made
 * again, and only the pages of the host tables those runs are in are
 * copied. Rules, runs and pages live in a store shared by the rts (see
 * internal.h); a store that has collected too much garbage, or a change
 * that keeps less than half the rules, makes a whole build into a new one.
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
#include "core/str.h"
#include "proxy/internal.h"
#include "proxy/snapshot.h"

/* A publish after a change keeps the previous rt's rules whose snapshot
 * entries are unchanged. Rule orders of a whole build start at
 * ORDER_BASE, ORDER_STEP apart, leaving room before, between and after. */
#define ORDER_BASE (1ull << 62)
#define ORDER_STEP (1ull << 32)
/* How far ahead the comparison of the old and new rules looks for the
 * next rule they share, and how many misses past that a listener may
 * have before an index of the old rules is built to find them. */
#define DIFF_WINDOW 16
#define DIFF_MISSES 8
/* A new store is started when the current one holds more than twice what
 * its last whole build needed, plus this. */
#define RT_STORE_SLACK (1u << 20)
#define STORE_CHUNK (64u * 1024)

static size_t pow2_at_least(size_t n)
{
	size_t c = 8;
	while (c < n)
		c <<= 1;
	return c;
}

/* ---- host maps ---- */

static bool slot_is(const struct rt_slot *s, uint64_t h, const char *key, size_t klen)
{
	return s->h == h && s->run->klen == klen && memcmp(s->run->key, key, klen) == 0;
}

static const struct rt_slot *slot_at(const struct rt_map *m, size_t i)
{
	return &m->pages[i >> m->shift][i & (((size_t)1 << m->shift) - 1)];
}

static const struct rt_run *map_get(const struct rt_map *m, const char *key, size_t klen)
{
	if (!m->n)
		return NULL;
	uint64_t h = hash_bytes(key, klen);
	size_t mask = m->cap - 1;
	for (size_t i = (size_t)h & mask;; i = (i + 1) & mask) {
		const struct rt_slot *s = slot_at(m, i);
		if (!s->run)
			return NULL;
		if (slot_is(s, h, key, klen))
			return s->run;
	}
}

/* A map being changed by a build: pages it has not written yet are still
 * shared with the previous rt and are copied (into the store) before
 * their first write. */
struct map_w {
	struct rt_map *m;
	struct arena *store;
	bool *own; /* per page */
	int err;
};

static struct rt_slot *slot_w(struct map_w *w, size_t i)
{
	struct rt_map *m = w->m;
	size_t p = i >> m->shift, ps = (size_t)1 << m->shift;

	if (!w->own[p]) {
		struct rt_slot *c = arena_memdup(w->store, m->pages[p], ps * sizeof(*c));
		if (!c) {
			w->err = -ENOMEM;
			return NULL;
		}
		m->pages[p] = c;
		w->own[p] = true;
	}
	return &m->pages[p][i & (ps - 1)];
}

/* Sets key's run (a new key needs a free slot: the caller sized m). */
static void map_set(struct map_w *w, uint64_t h, const struct rt_run *run)
{
	struct rt_map *m = w->m;
	size_t mask = m->cap - 1;
	for (size_t i = (size_t)h & mask;; i = (i + 1) & mask) {
		const struct rt_slot *s = slot_at(m, i);
		if (s->run && !slot_is(s, h, run->key, run->klen))
			continue;
		struct rt_slot *ws = slot_w(w, i);
		if (!ws)
			return;
		m->n += !ws->run;
		*ws = (struct rt_slot){h, run};
		return;
	}
}

/* Removes key, moving back the entries of its probe sequence so that no
 * lookup stops early at the hole. */
static void map_del(struct map_w *w, uint64_t h, const char *key, size_t klen)
{
	struct rt_map *m = w->m;
	size_t mask = m->cap - 1, i = (size_t)h & mask;

	if (!m->n)
		return;
	for (;; i = (i + 1) & mask) {
		if (!slot_at(m, i)->run)
			return;
		if (slot_is(slot_at(m, i), h, key, klen))
			break;
	}
	m->n--;
	for (;;) {
		size_t j = i;
		struct rt_slot *hole = slot_w(w, i);
		if (!hole)
			return;
		hole->run = NULL;
		for (;;) {
			j = (j + 1) & mask;
			const struct rt_slot *s = slot_at(m, j);
			if (!s->run)
				return;
			size_t home = (size_t)s->h & mask;
			/* stays when its home lies cyclically in (i, j] */
			if (i <= j ? (i < home && home <= j) : (i < home || home <= j))
				continue;
			*hole = *s;
			i = j;
			break;
		}
	}
}

#define MAP_PAGE_SHIFT 6 /* 64 slots, 1 KiB a page */

/*
 * Starts w on map m (its page array in rt arena a) holding from's keys
 * (from may be NULL) with room for `more`: from's pages when they have
 * room (each copied before its first write), else new ones.
 */
static int map_begin(struct map_w *w, struct arena *a, struct rt_map *m, const struct rt_map *from,
		     size_t more)
{
	size_t have = from ? from->n : 0, cap = pow2_at_least((have + more) * 2);
	bool reuse = from && from->cap >= cap;

	*m = (struct rt_map){0};
	w->m = m;
	w->own = NULL;
	if (!have && !more)
		return 0;
	if (reuse)
		cap = from->cap;
	m->cap = cap;
	m->shift = cap < ((size_t)1 << MAP_PAGE_SHIFT) ? (unsigned)__builtin_ctzl(cap)
						       : MAP_PAGE_SHIFT;
	size_t np = cap >> m->shift, ps = (size_t)1 << m->shift;
	m->pages = arena_alloc(a, np * sizeof(*m->pages));
	w->own = calloc(np, sizeof(*w->own));
	if (!m->pages || !w->own)
		return -ENOMEM;
	if (reuse) {
		memcpy(m->pages, from->pages, np * sizeof(*m->pages));
		m->n = from->n;
		return 0;
	}
	for (size_t p = 0; p < np; p++) {
		if (!(m->pages[p] = arena_zalloc(w->store, ps * sizeof(struct rt_slot))))
			return -ENOMEM;
		w->own[p] = true;
	}
	for (size_t i = 0; from && i < from->cap; i++) {
		const struct rt_slot *s = slot_at(from, i);
		if (s->run)
			map_set(w, s->h, s->run);
	}
	return w->err;
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

static bool backend_has_tls(const struct snap_backend *b)
{
	if (b->tls)
		return true;
	for (size_t f = 0; f < b->n_filters; f++)
		if (b->filters[f].type == SNAP_F_MIRROR && b->filters[f].u.mirror.backend &&
		    b->filters[f].u.mirror.backend->tls)
			return true;
	return false;
}

static bool rule_has_tls(const struct snap_http_rule *r)
{
	for (size_t f = 0; f < r->n_filters; f++)
		if (r->filters[f].type == SNAP_F_MIRROR && r->filters[f].u.mirror.backend &&
		    r->filters[f].u.mirror.backend->tls)
			return true;
	for (size_t i = 0; i < r->n_backends; i++)
		if (backend_has_tls(&r->backends[i]))
			return true;
	return false;
}

/* A rule made for snapshot entry src, in the store a. NULL on ENOMEM. */
static struct rt_rule *rule_new(struct arena *a, const struct snap_http_rule *src, uint64_t order,
				struct diag *d)
{
	struct rt_rule *rr = arena_zalloc(a, sizeof(*rr));
	if (!rr)
		return NULL;
	rr->copy = *src;
	rr->r = &rr->copy;
	rr->order = order;
	rr->tls = rule_has_tls(src);

	const struct snap_http_rule *r = rr->r;
	const struct snap_http_match *m = &r->match;
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
			return NULL;
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
			return NULL;
		for (size_t i = 0; i < m->n_query; i++) {
			if (m->query[i].type != SNAP_SM_REGEX)
				continue;
			rr->query_re[i] =
				compile(a, m->query[i].value, r, "matches.queryParams", d);
			if (!rr->query_re[i])
				rr->broken = true;
		}
	}
	return rr;
}

/* ---- deltas ---- */

static int push(struct rt_rule ***v, size_t *n, size_t *cap, struct rt_rule *r)
{
	if (*n == *cap) {
		size_t c = *cap ? *cap * 2 : 64;
		struct rt_rule **nv = realloc(*v, c * sizeof(*nv));
		if (!nv)
			return -ENOMEM;
		*v = nv;
		*cap = c;
	}
	(*v)[(*n)++] = r;
	return 0;
}

void rt_delta_fini(struct rt_delta *dl)
{
	free(dl->fresh);
	free(dl->dropped);
	memset(dl, 0, sizeof(*dl));
}

/* ---- comparing a listener's rules with the previous rt's ---- */

/*
 * Equal bytes mean equal rules: equal pointers point to the same bytes,
 * which stay alive and unchanged while either snapshot does (both are
 * alive here). A difference in padding alone costs a rule made again.
 */
static bool same(const struct snap_http_rule *a, const struct snap_http_rule *b)
{
	/* a machine word: 8 bytes on aarch64 and x86_64, 4 on armv7 */
	_Static_assert(sizeof(*a) % sizeof(unsigned long) == 0, "compared a word at a time");
	const unsigned char *x = (const unsigned char *)a, *y = (const unsigned char *)b;
	unsigned long diff = 0;

	if (a->route != b->route)
		return false;
	/* libc's memcmp goes a byte at a time; this runs once per rule */
	for (size_t i = 0; i < sizeof(*a); i += sizeof(unsigned long)) {
		unsigned long u, v;
		memcpy(&u, x + i, sizeof(u));
		memcpy(&v, y + i, sizeof(v));
		diff |= u ^ v;
	}
	return diff == 0;
}

static uint64_t rule_hash(const struct snap_http_rule *r)
{
	uint64_t h = hash_mix((uint64_t)(uintptr_t)r->route, r->rule_index);
	h = hash_mix(h, (uint64_t)(uintptr_t)r->match.path);
	h = hash_mix(h, (uint64_t)(uintptr_t)r->hostnames);
	return hash_mix(h, (uint64_t)(uintptr_t)r->backends);
}

/* The old rules by content, for finding where the walk resumes after a
 * change larger than DIFF_WINDOW: index + 1 per slot, 0 = empty. */
struct old_index {
	uint32_t *v;
	size_t cap;
};

static int index_build(struct old_index *x, const struct snap_http_rule *ov, size_t m)
{
	x->cap = pow2_at_least(m * 2);
	x->v = calloc(x->cap, sizeof(*x->v));
	if (!x->v)
		return -ENOMEM;
	for (size_t j = 0; j < m; j++) {
		size_t i = (size_t)rule_hash(&ov[j]) & (x->cap - 1);
		while (x->v[i])
			i = (i + 1) & (x->cap - 1);
		x->v[i] = (uint32_t)j + 1;
	}
	return 0;
}

/* The first old rule at or after `from` equal to r, or SIZE_MAX. */
static size_t index_find(const struct old_index *x, const struct snap_http_rule *ov,
			 const struct snap_http_rule *r, size_t from)
{
	size_t best = SIZE_MAX;
	for (size_t i = (size_t)rule_hash(r) & (x->cap - 1); x->v[i]; i = (i + 1) & (x->cap - 1)) {
		size_t j = x->v[i] - 1;
		if (j >= from && j < best && same(&ov[j], r))
			best = j;
	}
	return best;
}

struct build {
	struct rt *rt;
	const struct rt *prev; /* NULL: a whole build */
	struct arena *store;
	struct rt_delta *dl;
	struct diag *d;
	uint64_t *order; /* scratch: orders of the new rules of a listener */
	bool *prev_used; /* per prev listener: matched by a new one */
};

static int drop(struct build *b, struct rt_rule *r)
{
	return push(&b->dl->dropped, &b->dl->n_dropped, &b->dl->cap_dropped, r);
}

/*
 * Fills rl->rules with the rules of pl (the previous rt's listener, may
 * be NULL) that rl's snapshot keeps, leaving NULL where a rule is to be
 * made, and drops the others. Both lists are in precedence order and an
 * unchanged rule keeps its place relative to the others, so one walk
 * over both finds them: where they differ, the next shared rule is
 * looked for a few places ahead in either list, then in an index of the
 * old ones. A rule that is not found is made again, which costs time,
 * never correctness. Returns how many were kept, or -ENOMEM.
 */
static ssize_t diff_listener(struct build *b, struct rt_listener *rl, const struct rt_listener *pl)
{
	const struct snap_http_rule *nv = rl->l->http_rules;
	const struct snap_http_rule *ov = pl ? pl->l->http_rules : NULL;
	size_t n = rl->n_rules, m = pl ? pl->n_rules : 0, j = 0, misses = 0, kept = 0;
	struct old_index x = {0};
	int err = 0;

	for (size_t k = 0; k < n && !err;) {
		if (j < m && same(&nv[k], &ov[j])) {
			struct rt_rule *o = pl->rules[j++];
			/* a broken regex is compiled again: its warning is repeated
			 * (a rule is read only when its listener has such rules:
			 * reading every kept one would cost a cache miss each) */
			if (pl->n_broken && o->broken) {
				err = drop(b, o);
				rl->rules[k++] = NULL;
				continue;
			}
			rl->rules[k++] = o;
			kept++;
			continue;
		}
		size_t skip_old = 0, skip_new = 0;
		for (size_t dd = 1; j < m && dd <= DIFF_WINDOW; dd++) {
			if (j + dd < m && same(&nv[k], &ov[j + dd])) {
				skip_old = dd;
				break;
			}
			if (k + dd < n && same(&nv[k + dd], &ov[j])) {
				skip_new = dd;
				break;
			}
		}
		if (!skip_old && !skip_new && j < m && ++misses > DIFF_MISSES) {
			if (!x.v && index_build(&x, ov, m)) {
				err = -ENOMEM;
				break;
			}
			size_t at = index_find(&x, ov, &nv[k], j);
			if (at != SIZE_MAX)
				skip_old = at - j;
		}
		if (skip_old) {
			/* removed: the next round keeps nv[k] */
			for (; skip_old && !err; skip_old--)
				err = drop(b, pl->rules[j++]);
			continue;
		}
		for (size_t e = k + (skip_new ? skip_new : 1); k < e; k++)
			rl->rules[k] = NULL;
	}
	while (j < m && !err)
		err = drop(b, pl->rules[j++]);
	free(x.v);
	return err ? err : (ssize_t)kept;
}

/* Orders for the new rules of rl (NULL places of rl->rules), into
 * b->order: between those of the kept rules around them, evenly spread
 * in a gap, ORDER_STEP apart before the first kept rule and after the
 * last. -EAGAIN when a gap has no room left (a whole build renumbers). */
static int assign_orders(struct build *b, const struct rt_listener *rl)
{
	size_t n = rl->n_rules;

	for (size_t k0 = 0; k0 < n;) {
		if (rl->rules[k0]) {
			k0++;
			continue;
		}
		size_t k1 = k0;
		while (k1 < n && !rl->rules[k1])
			k1++;
		uint64_t cnt = k1 - k0, step, first;
		uint64_t lo = k0 ? rl->rules[k0 - 1]->order : 0;
		uint64_t hi = k1 < n ? rl->rules[k1]->order : UINT64_MAX;
		if (!k0 && k1 == n) {
			step = ORDER_STEP;
			first = ORDER_BASE + step;
		} else if (k1 == n) {
			step = (UINT64_MAX - lo) / (cnt + 1);
			step = step < ORDER_STEP ? step : ORDER_STEP;
			first = lo + step;
		} else if (!k0) {
			step = hi / (cnt + 1);
			step = step < ORDER_STEP ? step : ORDER_STEP;
			first = hi - step * cnt;
		} else {
			step = (hi - lo) / (cnt + 1);
			first = lo + step;
		}
		if (!step)
			return -EAGAIN;
		for (size_t i = 0; i < cnt; i++)
			b->order[k0 + i] = first + step * i;
		k0 = k1;
	}
	return 0;
}

/* ---- host runs of the changed keys ---- */

enum key_kind { KEY_EXACT = 0, KEY_WILD, KEY_ANY };

/* A host key that a new or dropped rule has; the new rules with it are a
 * list of links, in precedence order. */
struct aff {
	uint64_t h; /* hash_bytes of the key, as the maps use it */
	char *key;
	uint32_t klen;
	uint8_t kind;
	bool used;
	int32_t head, tail;
	uint32_t n_new;
};

struct link {
	struct rt_rule *r;
	int32_t next;
};

struct affs {
	struct aff *v;
	size_t cap, n;
	struct link *links;
	size_t n_links;
	struct arena *keys; /* scratch */
};

static int aff_add(struct affs *t, enum key_kind kind, const char *key, size_t klen,
		   struct rt_rule *rr)
{
	uint64_t h = hash_bytes(key, klen);
	size_t mask = t->cap - 1, i = (size_t)hash_mix(h, kind) & mask;
	struct aff *e;

	for (;; i = (i + 1) & mask) {
		e = &t->v[i];
		if (!e->used)
			break;
		if (e->h == h && e->kind == kind && e->klen == klen && !memcmp(e->key, key, klen))
			goto found;
	}
	e->key = arena_memdup(t->keys, key, klen + 1);
	if (!e->key)
		return -ENOMEM;
	e->used = true;
	e->h = h;
	e->kind = (uint8_t)kind;
	e->klen = (uint32_t)klen;
	e->head = e->tail = -1;
	t->n++;
found:
	/* a rule listing the same host twice appears once */
	if (!rr || (e->tail >= 0 && t->links[e->tail].r == rr))
		return 0;
	t->links[t->n_links] = (struct link){rr, -1};
	if (e->tail >= 0)
		t->links[e->tail].next = (int32_t)t->n_links;
	else
		e->head = (int32_t)t->n_links;
	e->tail = (int32_t)t->n_links++;
	e->n_new++;
	return 0;
}

static int rule_keys(struct affs *t, struct rt_rule *rr, bool is_new)
{
	const struct snap_http_rule *r = rr->r;
	char low[256];

	if (!r->n_hostnames)
		return aff_add(t, KEY_ANY, "", 0, is_new ? rr : NULL);
	for (size_t k = 0; k < r->n_hostnames; k++) {
		const char *h = r->hostnames[k];
		bool wild = h[0] == '*';
		size_t klen = key_lower(wild ? h + 1 : h, low);
		if (!klen)
			continue; /* no request can carry it */
		if (aff_add(t, wild ? KEY_WILD : KEY_EXACT, low, klen, is_new ? rr : NULL))
			return -ENOMEM;
	}
	return 0;
}

/* A set of rule pointers (the dropped rules of a listener). */
struct pset {
	const struct rt_rule **v;
	size_t cap;
};

static int pset_init(struct pset *ps, struct rt_rule *const *v, size_t n)
{
	ps->cap = n ? pow2_at_least(n * 2) : 0;
	ps->v = n ? calloc(ps->cap, sizeof(*ps->v)) : NULL;
	if (n && !ps->v)
		return -ENOMEM;
	for (size_t k = 0; k < n; k++) {
		size_t i = (size_t)hash_mix((uint64_t)(uintptr_t)v[k], 0) & (ps->cap - 1);
		while (ps->v[i] && ps->v[i] != v[k])
			i = (i + 1) & (ps->cap - 1);
		ps->v[i] = v[k];
	}
	return 0;
}

static bool pset_has(const struct pset *ps, const struct rt_rule *r)
{
	if (!ps->cap)
		return false;
	for (size_t i = (size_t)hash_mix((uint64_t)(uintptr_t)r, 0) & (ps->cap - 1); ps->v[i];
	     i = (i + 1) & (ps->cap - 1))
		if (ps->v[i] == r)
			return true;
	return false;
}

/* The run of key e after the change: old's rules less the dropped ones,
 * and e's new ones, merged by order. NULL with *err 0 when empty. */
static const struct rt_run *merge_run(struct arena *store, const struct rt_run *old,
				      const struct aff *e, const struct link *links,
				      const struct pset *dropped, int *err)
{
	size_t n = e->n_new, i = 0, o = 0;
	int32_t l = e->head;

	for (size_t k = 0; old && k < old->n; k++)
		n += !pset_has(dropped, old->v[k]);
	if (!n)
		return NULL;
	struct rt_run *run = arena_alloc(store, sizeof(*run) + n * sizeof(run->v[0]));
	if (!run || !(run->key = old ? old->key : arena_memdup(store, e->key, e->klen + 1))) {
		*err = -ENOMEM;
		return NULL;
	}
	run->klen = e->klen;
	while (o < n) {
		while (old && i < old->n && pset_has(dropped, old->v[i]))
			i++;
		struct rt_rule *a = old && i < old->n ? old->v[i] : NULL;
		struct rt_rule *b = l >= 0 ? links[l].r : NULL;
		if (a && (!b || a->order < b->order)) {
			run->v[o++] = a;
			i++;
		} else {
			run->v[o++] = b;
			l = links[l].next;
		}
	}
	run->n = (uint32_t)n;
	return run;
}

/* rl's host maps and run of rules without hostnames: pl's (NULL: none)
 * with the keys of the new and the dropped rules made again. */
static int update_maps(struct build *b, struct rt_listener *rl, const struct rt_listener *pl,
		       struct rt_rule *const *fresh, size_t nf, struct rt_rule *const *dropped,
		       size_t nd)
{
	struct affs t = {0};
	struct pset ps = {0};
	struct map_w mw[2] = {{0}, {0}};
	size_t pairs = 1, n_kind[3] = {0};
	int err = -ENOMEM;

	rl->any = pl ? pl->any : NULL;
	for (size_t k = 0; k < nf; k++)
		pairs += fresh[k]->r->n_hostnames ? fresh[k]->r->n_hostnames : 1;
	for (size_t k = 0; k < nd; k++)
		pairs += dropped[k]->r->n_hostnames ? dropped[k]->r->n_hostnames : 1;
	t.cap = pow2_at_least(pairs * 2);
	t.v = calloc(t.cap, sizeof(*t.v));
	t.links = malloc(pairs * sizeof(*t.links));
	t.keys = arena_new(16384);
	if (!t.v || !t.links || !t.keys || pset_init(&ps, dropped, nd))
		goto out;
	for (size_t k = 0; k < nf; k++)
		if (rule_keys(&t, fresh[k], true))
			goto out;
	for (size_t k = 0; k < nd; k++)
		if (rule_keys(&t, dropped[k], false))
			goto out;
	/* keys the maps may gain: those pl's do not have */
	for (size_t i = 0; i < t.cap; i++) {
		const struct aff *e = &t.v[i];
		if (e->used && e->kind != KEY_ANY &&
		    !(pl &&
		      map_get(e->kind == KEY_WILD ? &pl->wildcard : &pl->exact, e->key, e->klen)))
			n_kind[e->kind]++;
	}
	mw[KEY_EXACT].store = mw[KEY_WILD].store = b->store;
	if (map_begin(&mw[KEY_EXACT], b->rt->arena, &rl->exact, pl ? &pl->exact : NULL,
		      n_kind[KEY_EXACT]) ||
	    map_begin(&mw[KEY_WILD], b->rt->arena, &rl->wildcard, pl ? &pl->wildcard : NULL,
		      n_kind[KEY_WILD]))
		goto out;
	err = 0;
	for (size_t i = 0; i < t.cap && !err; i++) {
		const struct aff *e = &t.v[i];
		if (!e->used)
			continue;
		if (e->kind == KEY_ANY) {
			rl->any = merge_run(b->store, rl->any, e, t.links, &ps, &err);
			continue;
		}
		struct map_w *w = &mw[e->kind];
		const struct rt_run *old = map_get(w->m, e->key, e->klen);
		const struct rt_run *run = merge_run(b->store, old, e, t.links, &ps, &err);
		if (run)
			map_set(w, e->h, run);
		else if (old)
			map_del(w, e->h, e->key, e->klen);
		if (w->err)
			err = w->err;
	}
out:
	free(mw[KEY_EXACT].own);
	free(mw[KEY_WILD].own);
	free(t.v);
	free(t.links);
	free(ps.v);
	arena_free(t.keys);
	return err;
}

/* ---- building ---- */

/* The previous rt's listener that new listener i continues (same Gateway
 * and name), not taken by another; NULL when none. */
static const struct rt_listener *prev_listener(struct build *b, size_t i)
{
	const struct rt *prev = b->prev;
	const struct snap_listener *l = b->rt->listeners[i].l;
	size_t n = prev->snap->n_listeners;

	for (size_t k = 0; k < n; k++) {
		size_t c = (i + k) % n; /* the same place first */
		const struct rt_listener *pl = &prev->listeners[c];
		if (!b->prev_used[c] && snap_listener_is_http(pl->l) && cstr_eq(pl->l->gateway, l->gateway) &&
		    cstr_eq(pl->l->name, l->name)) {
			b->prev_used[c] = true;
			return pl;
		}
	}
	return NULL;
}

/*
 * The HTTP rules and host maps of every listener of b->rt, keeping what
 * prev allows (NULL: a whole build). -EAGAIN when a whole build is due:
 * fewer than half the rules are kept, or the orders have no room left.
 */
static int build_rules(struct build *b, const struct rt *prev)
{
	struct rt *rt = b->rt;
	const struct snapshot *snap = rt->snap;
	size_t n_l = snap->n_listeners, total = 0, kept = 0;
	const struct rt_listener **pls = calloc(n_l ? n_l : 1, sizeof(*pls));
	size_t *drop_at = calloc(n_l + 1, sizeof(*drop_at));
	int err = -ENOMEM;

	b->prev = prev;
	b->prev_used = prev ? calloc(prev->snap->n_listeners + 1, sizeof(bool)) : NULL;
	if (!pls || !drop_at || (prev && !b->prev_used))
		goto out;
	/* which rules are kept */
	for (size_t i = 0; i < n_l; i++) {
		struct rt_listener *rl = &rt->listeners[i];
		drop_at[i] = b->dl->n_dropped;
		if (!snap_listener_is_http(rl->l))
			continue;
		pls[i] = prev ? prev_listener(b, i) : NULL;
		ssize_t k = diff_listener(b, rl, pls[i]);
		if (k < 0)
			goto out;
		kept += (size_t)k;
		total += rl->n_rules;
	}
	drop_at[n_l] = b->dl->n_dropped;
	for (size_t c = 0; prev && c < prev->snap->n_listeners; c++)
		for (size_t k = 0; !b->prev_used[c] && k < prev->listeners[c].n_rules; k++)
			if (drop(b, prev->listeners[c].rules[k]))
				goto out;
	err = -EAGAIN;
	if (prev && total > 64 && kept * 2 < total)
		goto out;
	/* the new rules, then the runs of their hosts and of the dropped ones' */
	for (size_t i = 0; i < n_l; i++) {
		struct rt_listener *rl = &rt->listeners[i];
		size_t f0 = b->dl->n_fresh;
		if (!snap_listener_is_http(rl->l))
			continue;
		if ((err = assign_orders(b, rl)))
			goto out;
		err = -ENOMEM;
		for (size_t k = 0; k < rl->n_rules; k++) {
			if (rl->rules[k])
				continue;
			rl->rules[k] = rule_new(b->store, &rl->l->http_rules[k], b->order[k], b->d);
			if (!rl->rules[k] ||
			    push(&b->dl->fresh, &b->dl->n_fresh, &b->dl->cap_fresh, rl->rules[k]))
				goto out;
			rl->n_broken += rl->rules[k]->broken;
		}
		if (update_maps(b, rl, pls[i], b->dl->fresh + f0, b->dl->n_fresh - f0,
				b->dl->dropped + drop_at[i], drop_at[i + 1] - drop_at[i]))
			goto out;
	}
	err = 0;
out:
	free(pls);
	free(drop_at);
	free(b->prev_used);
	b->prev_used = NULL;
	return err;
}

static bool store_too_big(const struct rt *prev)
{
	return arena_used(prev->store) > 2 * prev->store_base + RT_STORE_SLACK;
}

struct rt *rt_build_from(struct snapshot *snap, const struct rt *prev, struct rt_delta *delta,
			 struct diag *d)
{
	struct rt_delta local = {0};
	struct build b = {.d = d, .dl = delta ? delta : &local};
	struct arena *a = arena_new(16384);
	struct rt *rt = a ? arena_zalloc(a, sizeof(*rt)) : NULL;
	size_t max_rules = 0;
	int rc = -EAGAIN;

	if (!rt)
		goto fail;
	rt->arena = a;
	rt->refs = 1;
	rt->snap = snap;
	b.rt = rt;
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
		if (!snap_listener_is_http(l))
			continue;
		rl->n_rules = l->n_http_rules;
		if (rl->n_rules && !(rl->rules = arena_alloc(a, rl->n_rules * sizeof(*rl->rules))))
			goto fail;
		if (rl->n_rules > max_rules)
			max_rules = rl->n_rules;
	}
	if (max_rules && !(b.order = malloc(max_rules * sizeof(*b.order))))
		goto fail;
	if (prev && prev->store && !store_too_big(prev)) {
		b.store = rt->store = prev->store;
		arena_ref(rt->store);
		rt->store_base = prev->store_base;
		rc = build_rules(&b, prev);
		if (rc == -EAGAIN) {
			/* what this attempt added to the shared store is garbage */
			arena_unref(rt->store);
			rt->store = NULL;
		}
	}
	if (rc == -EAGAIN) {
		b.dl->n_fresh = b.dl->n_dropped = 0;
		b.dl->whole = true;
		b.store = rt->store = arena_new(STORE_CHUNK);
		if (!rt->store)
			goto fail;
		rc = build_rules(&b, NULL);
		rt->store_base = arena_used(rt->store);
		/* every rule of prev is left out */
		for (size_t i = 0; !rc && prev && i < prev->snap->n_listeners; i++)
			for (size_t k = 0; !rc && k < prev->listeners[i].n_rules; k++)
				rc = drop(&b, prev->listeners[i].rules[k]);
	}
	if (rc)
		goto fail;
	rt->n_tls_rules = b.dl->whole ? 0 : prev->n_tls_rules;
	for (size_t k = 0; k < b.dl->n_fresh; k++)
		rt->n_tls_rules += b.dl->fresh[k]->tls;
	for (size_t k = 0; !b.dl->whole && k < b.dl->n_dropped; k++)
		rt->n_tls_rules -= b.dl->dropped[k]->tls;
	free(b.order);
	b.order = NULL;

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
	rt_delta_fini(&local);
	return rt;
fail:
	diag_add(d, DIAG_ERROR, NULL, NULL, NULL, "out of memory building the routing tables");
	free(b.order);
	rt_delta_fini(b.dl);
	if (rt)
		arena_unref(rt->store);
	arena_free(a);
	return NULL;
}

struct rt *rt_build(struct snapshot *snap, struct diag *d)
{
	return rt_build_from(snap, NULL, NULL, d);
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
	struct arena *store = rt->store;
	arena_free(rt->arena);
	arena_unref(store); /* the last rt using it runs the regfree cleanups */
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

static struct rt_rule *first_match(const struct rt_run *run, const struct route_req *rq)
{
	for (size_t i = 0; run && i < run->n; i++)
		if (rule_matches(run->v[i], rq))
			return run->v[i];
	return NULL;
}

struct rt_rule *route_match(struct rt_listener *l, const char *host, size_t hlen,
			    const struct route_req *rq)
{
	struct rt_rule *r;

	if ((r = first_match(map_get(&l->exact, host, hlen), rq)))
		return r;
	if (l->wildcard.n) {
		/* longest suffix first: scan dots from the left */
		for (size_t i = 1; i < hlen; i++) {
			if (host[i] != '.')
				continue;
			if ((r = first_match(map_get(&l->wildcard, host + i, hlen - i), rq)))
				return r;
		}
	}
	return first_match(l->any, rq);
}
