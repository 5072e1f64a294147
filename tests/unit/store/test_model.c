/* SPDX-License-Identifier: MIT */
/*
 * test_model.c: the store against a model. A random sequence of commits
 * (objects added, changed, removed; unchanged sets), pins and unpins runs on
 * the store and on a plain in-memory model of what it must hold; after every
 * step the kept revisions, the serving one, every kept revision's objects,
 * a diff, and the number of stored objects (nothing orphaned, nothing
 * missing) must agree. Seeded, so a failure repeats.
 */
#include "helpers.h"

#include "check.h"
#include "core/arena.h"
#include "core/err.h"

#define KEYS 8
#define MAX_REVS 128
#define KEEP 5
#define STEPS 80

struct mrev {
	uint64_t rev;
	int v[KEYS]; /* -1 = absent */
	bool kept;
};

struct model {
	struct mrev revs[MAX_REVS];
	size_t n;
	uint64_t pinned;
	int cur[KEYS];
};

static uint32_t lcg(uint32_t *x)
{
	*x = *x * 1103515245u + 12345u;
	return (*x >> 16) & 0x7fff;
}

static struct mrev *mfind(struct model *m, uint64_t rev)
{
	for (size_t i = 0; i < m->n; i++)
		if (m->revs[i].rev == rev && m->revs[i].kept)
			return &m->revs[i];
	return NULL;
}

static void mretain(struct model *m)
{
	size_t seen = 0;

	for (size_t i = m->n; i-- > 0;) {
		if (!m->revs[i].kept)
			continue;
		if (seen++ >= KEEP && m->revs[i].rev != m->pinned)
			m->revs[i].kept = false;
	}
}

static int64_t distinct_objects(const struct model *m)
{
	bool seen[KEYS][STEPS + 2];
	int64_t n = 0;

	memset(seen, 0, sizeof(seen));
	for (size_t i = 0; i < m->n; i++) {
		if (!m->revs[i].kept)
			continue;
		for (int k = 0; k < KEYS; k++) {
			int v = m->revs[i].v[k];

			if (v >= 0 && !seen[k][v]) {
				seen[k][v] = true;
				n++;
			}
		}
	}
	return n;
}

static void verify(struct store *s, struct model *m, uint32_t *seed)
{
	struct arena *a = arena_new(0);
	struct store_revision *revs = NULL;
	struct store_diff_entry *e = NULL;
	uint64_t serving = 0, newest = 0;
	size_t n = 0, kept = 0;
	char name[16], val[32];

	for (size_t i = 0; i < m->n; i++)
		if (m->revs[i].kept) {
			kept++;
			newest = m->revs[i].rev;
		}
	CHECK_EQ_INT(store_revisions(s, 0, 0, a, &revs, &n), 0);
	CHECK_EQ_INT(n, kept);
	CHECK_EQ_INT(store_serving(s, &serving), 0);
	CHECK_EQ_INT(serving, m->pinned ? m->pinned : newest);
	for (size_t i = 0; i < n; i++) {
		struct mrev *r = mfind(m, revs[i].rev);
		struct gw_objset *set = gw_objset_new();
		size_t count = 0;

		CHECK(r != NULL);
		if (!r) {
			gw_objset_free(set);
			continue;
		}
		CHECK_EQ_INT(revs[i].pinned, r->rev == m->pinned);
		CHECK_EQ_INT(store_load(s, r->rev, set, NULL), 0);
		for (int k = 0; k < KEYS; k++) {
			const struct gw_object *o;

			snprintf(name, sizeof(name), "r%d", k);
			o = gw_objset_get(set, GW_K_HTTPROUTE, "default", name);
			if (r->v[k] < 0) {
				CHECK(o == NULL);
				continue;
			}
			count++;
			snprintf(val, sizeof(val), "\"v\":\"%d\"", r->v[k]);
			CHECK(o && strstr(o->json, val));
		}
		CHECK_EQ_INT(gw_objset_count(set, GW_K_HTTPROUTE), count);
		CHECK_EQ_INT(revs[i].n_objects, count);
		gw_objset_free(set);
	}
	/* A diff between two kept revisions. */
	if (n >= 2) {
		size_t i = lcg(seed) % n, j = lcg(seed) % n, nd = 0, want = 0;
		struct mrev *ra = mfind(m, revs[i].rev), *rb = mfind(m, revs[j].rev);

		CHECK_EQ_INT(store_diff(s, revs[i].rev, revs[j].rev, a, &e, &nd), 0);
		for (int k = 0; ra && rb && k < KEYS; k++)
			if (ra->v[k] != rb->v[k])
				want++;
		CHECK_EQ_INT(nd, want);
		for (size_t d = 0; d < nd && ra && rb; d++) {
			int k = atoi(e[d].name + 1);

			if (ra->v[k] < 0)
				CHECK_EQ_INT(e[d].change, STORE_ADDED);
			else if (rb->v[k] < 0)
				CHECK_EQ_INT(e[d].change, STORE_REMOVED);
			else
				CHECK_EQ_INT(e[d].change, STORE_CHANGED);
		}
	}
	CHECK_EQ_INT(th_query(s, "SELECT count(*) FROM objects"), distinct_objects(m));
	arena_free(a);
}

TEST(store_against_model)
{
	char buf[64], name[16], val[16];
	char *dir = th_tmpdir(buf);
	struct store *s = th_open(dir);
	struct gw_objset *set = gw_objset_new();
	struct model *m = calloc(1, sizeof(*m));
	uint32_t seed = 20261126;
	uint64_t last = 0;
	int pins = 0, unpins = 0;

	store_set_retention(s, KEEP, 2);
	for (int k = 0; k < KEYS; k++)
		m->cur[k] = -1;
	for (int step = 0; step < STEPS && m->n < MAX_REVS && !check_failures; step++) {
		uint32_t op = lcg(&seed) % 10;
		uint64_t rev = 0;

		if (op < 7) {
			int changes = (int)(lcg(&seed) % 4); /* 0: an unchanged set */

			for (int c = 0; c < changes; c++) {
				int k = (int)(lcg(&seed) % KEYS);

				snprintf(name, sizeof(name), "r%d", k);
				if (m->cur[k] >= 0 && lcg(&seed) % 3 == 0) {
					gw_objset_del(set, GW_K_HTTPROUTE, "default", name);
					m->cur[k] = -1;
				} else {
					m->cur[k] = step + 1;
					snprintf(val, sizeof(val), "%d", m->cur[k]);
					th_put(set, "HTTPRoute", "default", name, val);
				}
			}
			CHECK_EQ_INT(store_commit(s, set, "{}", "cluster", NULL, NULL, &rev), 0);
			if (last && memcmp(mfind(m, last)->v, m->cur, sizeof(m->cur)) == 0) {
				CHECK_EQ_INT(rev, last);
			} else {
				CHECK_EQ_INT(rev, last + 1);
				m->revs[m->n].rev = rev;
				memcpy(m->revs[m->n].v, m->cur, sizeof(m->cur));
				m->revs[m->n].kept = true;
				m->n++;
				last = rev;
				mretain(m);
			}
		} else if (op < 9 && m->n) {
			size_t i = lcg(&seed) % m->n;

			if (m->revs[i].kept) {
				CHECK_EQ_INT(store_pin(s, m->revs[i].rev, "ui", "admin"), 0);
				m->pinned = m->revs[i].rev;
				pins++;
			} else {
				CHECK_EQ_INT(store_pin(s, m->revs[i].rev, "ui", "admin"),
					     -WG_ENOTFOUND);
			}
		} else {
			CHECK_EQ_INT(store_unpin(s, "ui", NULL), 0);
			m->pinned = 0;
			unpins++;
		}
		verify(s, m, &seed);
		if (check_failures)
			fprintf(stderr, "  model: failed at step %d (op %u)\n", step, op);
	}
	printf("  model: %d steps, %zu revisions committed, %d pins, %d unpins\n", STEPS, m->n,
	       pins, unpins);
	free(m);
	gw_objset_free(set);
	store_close(s);
	th_rmdir(dir);
}
