/* SPDX-License-Identifier: MIT */
/*
 * Tests of proxy/route.c's builds from a previous rt: after every change
 * of a random sequence (rules added, removed and made again, small and
 * large changes, listeners that come and go, broken regexes, hosts in
 * several rules and twice in one, wildcards, rules without hosts), the rt
 * built from the one before has the same host tables as one built from
 * nothing and routes a set of requests exactly as it does; what an
 * unchanged rule compiled is kept, not made again; the orders of the
 * rules stay increasing until a gap is used up, and then a whole build
 * takes over.
 *
 * Snapshots here are made the way gwapi makes them: a rule of one
 * snapshot is a struct copy of a rule kept in a "universe", so the rules
 * of an unchanged route are byte for byte those of the snapshot before.
 */
#include "../check.h"
#include "core/arena.h"
#include "core/diag.h"
#include "proxy/snapshot.h"

#include "proxy/route.c"

static uint64_t rnd_state;

static unsigned rnd(unsigned n)
{
	rnd_state = rnd_state * 6364136223846793005ULL + 1442695040888963407ULL;
	return (unsigned)(rnd_state >> 33) % n;
}

#define N_LIS 3
#define N_UNI 240 /* universe rules per listener; the index is the precedence */

static const char *const hosts[] = {
	"a.example.com", "B.example.com", "c.example.com", "*.example.com", "*.b.example.com",
	"x.other.test",  "*.other.test",  "a.example.com", "d.example.com", "*.Example.COM",
};
#define N_HOSTS (sizeof(hosts) / sizeof(hosts[0]))
static const char *const paths[] = {"/", "/p", "/p/q", "/e", "/x/", "/q"};
static const char *const regexes[] = {"/r[0-9]+", "/p.*", "/[a-z]+/[0-9]", "("};
static const char *const req_hosts[] = {
	"a.example.com",   "b.example.com", "c.example.com", "z.example.com",
	"y.b.example.com", "b.example.com", "x.other.test",  "q.other.test",
	"example.com",     "d.example.com", "nothing.test",
};
static const char *const req_paths[] = {"/",    "/p",   "/p/q/r", "/e",    "/e/",
					"/r12", "/x/y", "/q",     "/ab/1", "/pz"};

/* when set, no rule gets a regex that does not compile (those are made
 * again at every build, which the counting tests would see) */
static bool no_broken;

struct uni {
	struct arena *a;
	struct snap_http_rule v[N_LIS][N_UNI];
	bool on[N_LIS][N_UNI];
	bool lis_on[N_LIS];
	struct snap_backend be[2];
};

/* Makes universe rule (li, i) again: new pointers, so a rule that
 * differs from every rule before it (a route changed in the cluster). */
static void uni_make(struct uni *u, int li, int i)
{
	struct arena *a = u->a;
	struct snap_http_rule *r = &u->v[li][i];
	char name[32];

	memset(r, 0, sizeof(*r));
	snprintf(name, sizeof(name), "ns/r%d-%d", li, i);
	r->route = arena_strdup(a, name);
	r->rule_index = rnd(3);
	unsigned nh = rnd(4) == 0 ? 0 : 1 + rnd(2);
	if (nh) {
		r->hostnames = arena_zalloc(a, nh * sizeof(char *));
		for (unsigned k = 0; k < nh; k++) {
			unsigned x = rnd(N_HOSTS + 40);
			char h[64];
			/* many hosts of one rule each: keys come and go, and
			 * collide in the tables */
			if (x < N_HOSTS)
				snprintf(h, sizeof(h), "%s", hosts[x]);
			else if (x < N_HOSTS + 30)
				snprintf(h, sizeof(h), "%c%u.example.com", x % 2 ? 'h' : 'H',
					 (unsigned)(x - N_HOSTS));
			else
				snprintf(h, sizeof(h), "*.w%u.example.com",
					 (unsigned)(x - N_HOSTS - 30));
			r->hostnames[k] = arena_strdup(a, h);
		}
		r->n_hostnames = nh;
	}
	switch (rnd(5)) {
	case 0:
		r->match.path_type = SNAP_PM_EXACT;
		r->match.path = arena_strdup(a, paths[rnd(6)]);
		break;
	case 1:
		r->match.path_type = SNAP_PM_REGEX;
		r->match.path = arena_strdup(a, regexes[rnd(no_broken ? 3 : 4)]);
		break;
	default:
		r->match.path_type = SNAP_PM_PREFIX;
		r->match.path = arena_strdup(a, paths[rnd(6)]);
	}
	if (rnd(4) == 0)
		r->match.method = arena_strdup(a, rnd(2) ? "GET" : "POST");
	if (rnd(5) == 0) {
		r->match.headers = arena_zalloc(a, sizeof(*r->match.headers));
		r->match.headers[0] = (struct snap_kv_match){
			rnd(2) ? SNAP_SM_REGEX : SNAP_SM_EXACT, arena_strdup(a, "x-a"),
			arena_strdup(a, rnd(2) ? "1" : "[0-9]+")};
		r->match.n_headers = 1;
	}
	if (rnd(6) == 0) {
		r->match.query = arena_zalloc(a, sizeof(*r->match.query));
		r->match.query[0] = (struct snap_kv_match){SNAP_SM_EXACT, arena_strdup(a, "v"),
							   arena_strdup(a, "2")};
		r->match.n_query = 1;
	}
	r->backends = &u->be[rnd(2)];
	r->n_backends = 1;
}

static void uni_init(struct uni *u)
{
	memset(u, 0, sizeof(*u));
	u->a = arena_new(0);
	u->be[0] = (struct snap_backend){.name = "b0", .weight = 1};
	u->be[1] = (struct snap_backend){.name = "b1", .weight = 3};
	for (int li = 0; li < N_LIS; li++) {
		u->lis_on[li] = true;
		for (int i = 0; i < N_UNI; i++) {
			uni_make(u, li, i);
			u->on[li][i] = rnd(3) == 0;
		}
	}
}

/* The snapshot of the universe now: struct copies of the rules that are
 * on, in universe order, per listener that is on. */
static struct snapshot *uni_snapshot(const struct uni *u)
{
	struct arena *a = arena_new(0);
	struct snapshot *s = arena_zalloc(a, sizeof(*s));
	static const char *const names[N_LIS] = {"l0", "l1", "l2"};

	s->arena = a;
	s->refs = 1;
	s->listeners = arena_zalloc(a, N_LIS * sizeof(*s->listeners));
	for (int li = 0; li < N_LIS; li++) {
		if (!u->lis_on[li])
			continue;
		struct snap_listener *l = &s->listeners[s->n_listeners++];
		size_t n = 0;
		l->gateway = "ns/gw";
		l->name = arena_strdup(a, names[li]);
		l->proto = SNAP_P_HTTP;
		for (int i = 0; i < N_UNI; i++)
			n += u->on[li][i];
		l->http_rules = arena_zalloc(a, (n ? n : 1) * sizeof(*l->http_rules));
		for (int i = 0; i < N_UNI; i++)
			if (u->on[li][i])
				l->http_rules[l->n_http_rules++] = u->v[li][i];
	}
	return s;
}

static bool same_rule(const struct rt_rule *a, const struct rt_rule *b)
{
	if (!a || !b)
		return a == b;
	return !memcmp(a->r, b->r, sizeof(*a->r)) && a->broken == b->broken &&
	       a->prefix_len == b->prefix_len && a->total_weight == b->total_weight;
}

static bool same_run(const struct rt_run *a, const struct rt_run *b)
{
	if (!a || !b)
		return a == b;
	if (a->n != b->n || a->klen != b->klen || memcmp(a->key, b->key, a->klen))
		return false;
	for (uint32_t i = 0; i < a->n; i++)
		if (!same_rule(a->v[i], b->v[i]) || (i && a->v[i]->order <= a->v[i - 1]->order))
			return false;
	return true;
}

/* Every key of want is in got with the same run, and no other. */
static bool same_map(const struct rt_map *got, const struct rt_map *want)
{
	if (got->n != want->n)
		return false;
	for (size_t i = 0; i < want->cap; i++) {
		const struct rt_slot *s = slot_at(want, i);
		if (s->run && !same_run(map_get(got, s->run->key, s->run->klen), s->run))
			return false;
	}
	return true;
}

static int bad_tables, bad_routes;

/* The incremental rt against one built from nothing on the same snapshot. */
static void compare(struct rt *in, struct rt *whole)
{
	const struct snapshot *s = in->snap;

	for (size_t li = 0; li < s->n_listeners; li++) {
		struct rt_listener *a = &in->listeners[li], *b = &whole->listeners[li];
		bool ok = a->n_rules == b->n_rules && same_map(&a->exact, &b->exact) &&
			  same_map(&a->wildcard, &b->wildcard) && same_run(a->any, b->any);
		for (size_t k = 0; ok && k < a->n_rules; k++)
			ok = same_rule(a->rules[k], b->rules[k]) &&
			     (!k || a->rules[k]->order > a->rules[k - 1]->order);
		bad_tables += !ok;
		for (size_t h = 0; h < sizeof(req_hosts) / sizeof(req_hosts[0]) + 40; h++) {
			char gen[64];
			const char *host = gen;
			size_t g = h - sizeof(req_hosts) / sizeof(req_hosts[0]);
			if (h < sizeof(req_hosts) / sizeof(req_hosts[0]))
				host = req_hosts[h];
			else if (g < 30)
				snprintf(gen, sizeof(gen), "h%zu.example.com", g);
			else
				snprintf(gen, sizeof(gen), "a.w%zu.example.com", g - 30);
			for (size_t p = 0; p < sizeof(req_paths) / sizeof(req_paths[0]);
			     p += 1 + h % 2) {
				struct h1_header hd = {STR_LIT("X-A"), STR_LIT("1")};
				struct route_req rq = {p % 3 ? STR_LIT("GET") : STR_LIT("POST"),
						       str_c(req_paths[p]),
						       h % 2 ? STR_LIT("v=2") : STR_LIT(""), &hd,
						       p % 2};
				struct rt_rule *x = route_match(a, host, strlen(host), &rq);
				struct rt_rule *y = route_match(b, host, strlen(host), &rq);
				bad_routes += !same_rule(x, y);
			}
		}
	}
}

/* One random change of the universe. */
static void mutate(struct uni *u, unsigned step)
{
	int li = (int)rnd(N_LIS);
	unsigned kind = rnd(20);

	if (kind == 0) { /* a listener comes or goes */
		u->lis_on[li] = !u->lis_on[li];
		return;
	}
	if (kind == 1) { /* a large change: a block turned on or off */
		unsigned at = rnd(N_UNI - 60), len = 20 + rnd(40);
		bool on = rnd(2);
		for (unsigned i = at; i < at + len; i++)
			u->on[li][i] = on;
		return;
	}
	if (kind == 2) { /* many scattered changes */
		for (unsigned k = 0; k < 30; k++)
			uni_make(u, li, (int)rnd(N_UNI));
		return;
	}
	for (unsigned k = 1 + rnd(3); k; k--) {
		int i = (int)rnd(N_UNI);
		if (rnd(2))
			u->on[li][i] = !u->on[li][i];
		else
			uni_make(u, li, i); /* the same route changed */
	}
	(void)step;
}

static void run_sequence(uint64_t seed, unsigned steps)
{
	struct uni u;
	struct diag d = {0};
	struct rt *prev;
	unsigned whole = 0;

	rnd_state = seed;
	no_broken = false;
	uni_init(&u);
	prev = rt_build(uni_snapshot(&u), &d);
	CHECK(prev != NULL);
	for (unsigned step = 0; step < steps && prev; step++) {
		mutate(&u, step);
		struct snapshot *s = uni_snapshot(&u);
		struct rt_delta dl = {0};
		snap_ref(s);
		struct rt *in = rt_build_from(s, prev, &dl, &d);
		struct rt *w = rt_build(s, &d);
		CHECK(in && w);
		if (!in || !w)
			break;
		whole += dl.whole;
		compare(in, w);
		/* each rule made is in the new rt, each dropped one was in prev */
		size_t n_in = 0, n_prev = 0;
		for (size_t i = 0; i < in->snap->n_listeners; i++)
			n_in += in->listeners[i].n_rules;
		for (size_t i = 0; i < prev->snap->n_listeners; i++)
			n_prev += prev->listeners[i].n_rules;
		CHECK_EQ_INT(n_prev - dl.n_dropped, n_in - dl.n_fresh);
		rt_delta_fini(&dl);
		rt_unref(w);
		rt_unref(prev);
		prev = in;
	}
	CHECK_EQ_INT(bad_tables, 0);
	CHECK_EQ_INT(bad_routes, 0);
	/* small changes keep what they can: few whole builds */
	CHECK(whole < steps / 4);
	rt_unref(prev);
	arena_free(u.a);
	diag_fini(&d);
}

TEST(route_build_from_routes_as_a_whole_build_on_random_changes)
{
	for (uint64_t seed = 1; seed <= 6; seed++)
		run_sequence(seed, 150);
}

/* One route among many changed: every other rule, its compiled regexes,
 * and the host table pages the change did not write are the previous
 * rt's; the delta names the one rule made and the one dropped. */
TEST(route_build_from_keeps_unchanged_rules)
{
	struct uni u;
	struct diag d = {0};
	struct rt_delta dl = {0};

	rnd_state = 42;
	no_broken = true;
	uni_init(&u);
	for (int i = 0; i < N_UNI; i++)
		u.on[0][i] = true;
	u.lis_on[1] = u.lis_on[2] = false;
	struct rt *a = rt_build(uni_snapshot(&u), &d);
	/* rule 100 made again, with a hostname of its own */
	uni_make(&u, 0, 100);
	u.v[0][100].hostnames = arena_zalloc(u.a, sizeof(char *));
	u.v[0][100].hostnames[0] = "only.example.net";
	u.v[0][100].n_hostnames = 1;
	struct rt *b = rt_build_from(uni_snapshot(&u), a, &dl, &d);
	CHECK(a && b);
	if (!a || !b)
		goto out;
	CHECK(!dl.whole);
	CHECK_EQ_INT(dl.n_fresh, 1);
	CHECK_EQ_INT(dl.n_dropped, 1);
	CHECK(dl.fresh[0] == b->listeners[0].rules[100]);
	CHECK(dl.dropped[0] == a->listeners[0].rules[100]);
	CHECK(b->store == a->store);
	size_t same_ptr = 0, regex_kept = 0;
	for (size_t k = 0; k < N_UNI; k++) {
		same_ptr += b->listeners[0].rules[k] == a->listeners[0].rules[k];
		regex_kept +=
			k != 100 && a->listeners[0].rules[k]->path_re &&
			b->listeners[0].rules[k]->path_re == a->listeners[0].rules[k]->path_re;
	}
	CHECK_EQ_INT(same_ptr, N_UNI - 1);
	CHECK(regex_kept > 10);
	/* the new host's page and those its old hosts' runs are on changed;
	 * the others are shared */
	const struct rt_map *ma = &a->listeners[0].exact, *mb = &b->listeners[0].exact;
	size_t shared = 0, np = ma->cap >> ma->shift;
	CHECK_EQ_INT(ma->cap, mb->cap);
	for (size_t p = 0; p < np && ma->cap == mb->cap; p++)
		shared += ma->pages[p] == mb->pages[p];
	CHECK(shared + 4 >= np);
	const struct rt_run *run = map_get(mb, "only.example.net", 16);
	CHECK(run && run->n == 1 && run->v[0] == b->listeners[0].rules[100]);
	CHECK(map_get(ma, "only.example.net", 16) == NULL);
out:
	rt_delta_fini(&dl);
	rt_unref(b);
	rt_unref(a);
	arena_free(u.a);
	diag_fini(&d);
}

/* Rules inserted again and again at the same place halve the gap between
 * the orders around it; when none is left, the build starts over as a
 * whole (new store, orders spread again) and still routes the same. */
TEST(route_build_from_renumbers_when_a_gap_is_used_up)
{
	struct uni u;
	struct diag d = {0};
	unsigned whole = 0;

	rnd_state = 7;
	no_broken = true;
	uni_init(&u);
	u.lis_on[1] = u.lis_on[2] = false;
	for (int i = 0; i < N_UNI; i++)
		u.on[0][i] = i == 0 || i == N_UNI - 1;
	struct rt *prev = rt_build(uni_snapshot(&u), &d);
	/* each step turns on the rule right after the first one that is on:
	 * the new rule lands between rule 0 and the one added before */
	for (int step = 0; step < 80 && prev; step++) {
		int i = N_UNI - 2 - step;
		u.on[0][i] = true;
		struct snapshot *s = uni_snapshot(&u);
		struct rt_delta dl = {0};
		snap_ref(s);
		struct rt *in = rt_build_from(s, prev, &dl, &d);
		struct rt *w = rt_build(s, &d);
		CHECK(in && w);
		if (!in || !w)
			break;
		whole += dl.whole;
		if (!dl.whole)
			CHECK_EQ_INT(dl.n_fresh, 1);
		compare(in, w);
		rt_delta_fini(&dl);
		rt_unref(w);
		rt_unref(prev);
		prev = in;
	}
	CHECK_EQ_INT(bad_tables, 0);
	CHECK_EQ_INT(bad_routes, 0);
	CHECK(whole >= 1 && whole <= 4);
	rt_unref(prev);
	arena_free(u.a);
	diag_fini(&d);
}
