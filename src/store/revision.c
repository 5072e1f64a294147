/* SPDX-License-Identifier: MIT */
/*
 * revision.c: revisions of the object set: commit (content-addressed
 * objects, one durable transaction, nothing written when the set did not
 * change), load, listing, object-level diff, pin/unpin (rollback) and
 * retention. It does not reconcile or compile snapshots: the caller hands
 * in the snapshot JSON. Commits and retention run on the control thread's
 * connection; the readers run on any connection.
 *
 * The commit cache: the control thread commits whole sets that mostly hold
 * the very same immutable objects as the previous commit. The store keeps a
 * reference to each object of the last committed set with its hash and row
 * id, so an unchanged object costs one pointer lookup instead of a SHA-256
 * over its JSON and a query.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "core/arena.h"
#include "core/err.h"
#include "core/hash.h"
#include "core/log.h"
#include "core/loop.h"
#include "gwapi/objset.h"
#include "gwapi/reconcile.h"
#include "gwapi/snapimage.h"
#include "store/internal.h"
#include "store/store.h"
#include "tls/tls.h"

/* The integrity digest of an image: gw_image_digest (a hash over the
 * hashes of its records) as 8 little-endian bytes. It catches damaged
 * bytes (any change inside one 8-byte word always, any other with odds of
 * 2^-64) at a tenth of SHA-256's cost on megabytes, and the encoder has it
 * from the hashes it keeps without writing the image; it is no defence
 * against someone who can write the database, who could rewrite any
 * digest. */
#define IMAGE_DIGEST_LEN 8 /* a little-endian uint64_t */

static uint64_t le64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

static void put_le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* An image's digest as stored: its gw_image_digest, little-endian. */
static void image_digest(const uint8_t *p, size_t n, uint8_t out[IMAGE_DIGEST_LEN])
{
	put_le64(out, gw_image_digest(p, n));
}

struct item {
	const struct gw_object *o;
	const char *kind;
	int64_t id; /* 0 = not known yet */
	uint8_t hash[32];
	const struct gw_object *was; /* see struct delta */
};

void store_obj_hash(const char *kind, const char *ns, const char *name, const char *json,
		    size_t len, uint8_t out[32])
{
	uint8_t head[512 + 32];
	size_t kl = strlen(kind), nl = strlen(ns), ml = strlen(name), n;

	/* kind, ns and name are Kubernetes names (at most 253 bytes), so they
	 * fit as they are; longer ones (a local file may say anything) are
	 * replaced by their digests. */
	if (kl + nl + ml + 3 <= sizeof(head) - 32) {
		memcpy(head, kind, kl + 1);
		memcpy(head + kl + 1, ns, nl + 1);
		memcpy(head + kl + 1 + nl + 1, name, ml + 1);
		n = kl + nl + ml + 3;
	} else {
		tls_sha256(kind, kl, head);
		tls_sha256(ns, nl, head + 32);
		tls_sha256(name, ml, head + 64);
		n = 96;
	}
	tls_sha256(json, len, head + n);
	tls_sha256(head, n + 32, out);
}

/* -------- set digest --------
 *
 * A revision records the digest of its object set: the sum, modulo 2^256,
 * of its objects' hashes read as little-endian numbers. A change moves it
 * by one subtraction and one addition, so a commit of one changed object
 * of 10,000 touches only that one (schema 3 and before kept the SHA-256 of
 * the sorted hashes, which every commit had to sort and hash again). The
 * digest proves, in a recovery, that the objects read back are all of the
 * revision's and no other. The commit does not decide "unchanged" by the
 * digest alone: sums of hashes can be made to collide by someone who
 * chooses thousands of objects, so that decision compares the objects. */


void store_digest_add(uint8_t d[32], const uint8_t h[32])
{
	uint64_t carry = 0;

	for (int i = 0; i < 32; i += 8) {
		uint64_t a = le64(d + i), sum = a + le64(h + i);
		uint64_t c = sum < a;

		sum += carry;
		carry = c | (sum < carry);
		put_le64(d + i, sum);
	}
}

void store_digest_sub(uint8_t d[32], const uint8_t h[32])
{
	uint64_t borrow = 0;

	for (int i = 0; i < 32; i += 8) {
		uint64_t a = le64(d + i), b = le64(h + i), r = a - b;
		uint64_t c = a < b;

		c |= r < borrow;
		put_le64(d + i, r - borrow);
		borrow = c;
	}
}

void store_set_digest(const uint8_t *hashes, size_t n, uint8_t out[32])
{
	memset(out, 0, 32);
	for (size_t i = 0; i < n; i++)
		store_digest_add(out, hashes + 32 * i);
}

static int cmp_hash(const void *a, const void *b)
{
	return memcmp(a, b, 32);
}

struct keyed {
	uint64_t key;
	uint32_t idx;
};

/* LSD radix sort of v by key, a byte a pass: sorting 10,000 keys with
 * qsort's comparisons cost milliseconds. tmp holds n. */
static void radix_sort(struct keyed *v, struct keyed *tmp, size_t n)
{
	if (n < 2)
		return;
	for (int shift = 0; shift < 64; shift += 8) {
		size_t count[257] = {0};

		for (size_t i = 0; i < n; i++)
			count[((v[i].key >> shift) & 0xff) + 1]++;
		if (count[((v[0].key >> shift) & 0xff) + 1] == n)
			continue; /* every key has this byte: nothing moves */
		for (int b = 0; b < 256; b++)
			count[b + 1] += count[b];
		for (size_t i = 0; i < n; i++)
			tmp[count[(v[i].key >> shift) & 0xff]++] = v[i];
		memcpy(v, tmp, n * sizeof(*v));
	}
}

/* Sorts n 32-byte hashes as memcmp orders them: by their first eight bytes
 * read big-endian, then (for equal prefixes, practically never) whole. */
static void sort_hashes(uint8_t *hashes, size_t n)
{
	struct keyed *v = n > 1 ? malloc(2 * n * sizeof(*v)) : NULL;
	uint8_t *out = v ? malloc(32 * n) : NULL;

	if (!out) {
		free(v);
		qsort(hashes, n, 32, cmp_hash);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		uint64_t k = 0;
		for (int b = 0; b < 8; b++)
			k = (k << 8) | hashes[32 * i + b];
		v[i] = (struct keyed){k, (uint32_t)i};
	}
	radix_sort(v, v + n, n);
	for (size_t i = 0; i < n; i++)
		memcpy(out + 32 * i, hashes + 32 * (size_t)v[i].idx, 32);
	for (size_t i = 0; i + 1 < n;) {
		size_t j = i + 1;
		while (j < n && v[j].key == v[i].key)
			j++;
		if (j - i > 1)
			qsort(out + 32 * i, j - i, 32, cmp_hash);
		i = j;
	}
	memcpy(hashes, out, 32 * n);
	free(out);
	free(v);
}

void store_set_hash_sorted(uint8_t *hashes, size_t n, uint8_t out[32])
{
	sort_hashes(hashes, n);
	tls_sha256(hashes, 32 * n, out);
}

/* -------- commit cache -------- */

/* Object pointers are 16-byte aligned: hash all their bits. */
static size_t ptr_slot(const void *p, size_t cap)
{
	return (size_t)hash_bytes(&p, sizeof(p)) & (cap - 1);
}

static struct gw_object *unconst(const struct gw_object *o)
{
	return (struct gw_object *)(uintptr_t)o;
}

void store_cache_clear(struct store *s)
{
	for (size_t i = 0; i < s->cache_cap; i++)
		if (s->cache[i].o)
			gw_object_unref(unconst(s->cache[i].o));
	free(s->cache);
	s->cache = NULL;
	s->cache_cap = s->cache_n = 0;
	s->cache_rev = 0;
	s->cache_set = 0;
}

static struct store_cached_obj *cache_find(struct store *s, const struct gw_object *o)
{
	if (!s->cache_cap)
		return NULL;
	for (size_t i = ptr_slot(o, s->cache_cap);; i = (i + 1) & (s->cache_cap - 1)) {
		if (s->cache[i].o == o)
			return &s->cache[i];
		if (!s->cache[i].o)
			return NULL;
	}
}

/* Places entry e (its reference moves along) into the free slot of its
 * probe run in c (cap slots). */
static void cache_place(struct store_cached_obj *c, size_t cap, const struct store_cached_obj *e)
{
	size_t i = ptr_slot(e->o, cap);

	while (c[i].o)
		i = (i + 1) & (cap - 1);
	c[i] = *e;
}

/* Adds o with its row id and hash, taking a reference. Best effort: false
 * without memory (the caller then drops the whole cache). */
static bool cache_put(struct store *s, const struct gw_object *o, int64_t id,
		      const uint8_t hash[32])
{
	struct store_cached_obj e = {.o = o, .id = id}, *c;

	if ((c = cache_find(s, o)) != NULL) {
		c->id = id;
		memcpy(c->hash, hash, 32);
		return true;
	}
	if ((s->cache_n + 1) * 2 > s->cache_cap) {
		size_t cap = s->cache_cap ? 2 * s->cache_cap : 16;
		struct store_cached_obj *v = calloc(cap, sizeof(*v));

		if (!v)
			return false;
		for (size_t i = 0; i < s->cache_cap; i++)
			if (s->cache[i].o)
				cache_place(v, cap, &s->cache[i]);
		free(s->cache);
		s->cache = v;
		s->cache_cap = cap;
	}
	memcpy(e.hash, hash, 32);
	gw_object_ref(unconst(o));
	cache_place(s->cache, s->cache_cap, &e);
	s->cache_n++;
	return true;
}

/* Removes o's entry and releases its reference. Backward-shift deletion:
 * later entries of the probe run move into the hole unless their home slot
 * lies between the hole and them, so every entry stays reachable. */
static void cache_del(struct store *s, const struct gw_object *o)
{
	struct store_cached_obj *c = cache_find(s, o);
	size_t mask = s->cache_cap - 1, i, j;

	if (!c)
		return;
	i = (size_t)(c - s->cache);
	gw_object_unref(unconst(c->o));
	s->cache[i] = (struct store_cached_obj){0};
	for (j = (i + 1) & mask; s->cache[j].o; j = (j + 1) & mask) {
		size_t home = ptr_slot(s->cache[j].o, s->cache_cap);

		if (((j - home) & mask) >= ((j - i) & mask)) {
			s->cache[i] = s->cache[j];
			s->cache[j] = (struct store_cached_obj){0};
			i = j;
		}
	}
	s->cache_n--;
}

/* Replaces the cache by the committed items (all with ids). Best effort:
 * without memory the cache is simply empty. */
static void cache_rebuild(struct store *s, const struct item *it, size_t n, uint64_t rev,
			  const uint8_t digest[32])
{
	size_t cap = 16, cnt = 0;
	struct store_cached_obj *c;

	while (cap < 2 * n)
		cap <<= 1;
	c = calloc(cap, sizeof(*c));
	/* Take the new references before dropping the old ones: most objects
	 * are in both sets. */
	if (c) {
		for (size_t k = 0; k < n; k++) {
			size_t i = ptr_slot(it[k].o, cap);

			if (it[k].id <= 0)
				continue;
			while (c[i].o && c[i].o != it[k].o)
				i = (i + 1) & (cap - 1);
			if (c[i].o)
				continue;
			gw_object_ref(unconst(it[k].o));
			c[i].o = it[k].o;
			c[i].id = it[k].id;
			memcpy(c[i].hash, it[k].hash, 32);
			cnt++;
		}
	}
	store_cache_clear(s);
	if (c) {
		s->cache = c;
		s->cache_cap = cap;
		s->cache_n = cnt;
		s->cache_rev = rev;
		memcpy(s->cache_digest, digest, 32);
	}
}

/* -------- what changed --------
 *
 * A commit with the cache in step with the newest revision finds what
 * changed without looking at every object: from the set's change log when
 * it still reaches back to the last commit (the usual case, a few entries),
 * else by one walk over the set that looks each object up in the cache by
 * pointer. Either way only the objects gained are hashed. */

/* Objects the set gained (was: the cached object with the same hash that
 * one replaces, when only the pointer changed) and cached objects it lost
 * (with their ids and hashes). */
struct delta {
	struct item *add, *drop;
	size_t n_add, cap_add, n_drop, cap_drop;
	size_t n_new; /* adds that are not replacements */
};

static void delta_fini(struct delta *d)
{
	free(d->add);
	free(d->drop);
	memset(d, 0, sizeof(*d));
}

static struct item *push(struct item **v, size_t *n, size_t *cap)
{
	if (*n == *cap) {
		size_t c = *cap ? 2 * *cap : 16;
		struct item *nv = realloc(*v, c * sizeof(*nv));

		if (!nv)
			return NULL;
		*v = nv;
		*cap = c;
	}
	memset(&(*v)[*n], 0, sizeof(**v));
	return &(*v)[(*n)++];
}

static int drop_cached(struct delta *d, const struct store_cached_obj *c)
{
	struct item *it = push(&d->drop, &d->n_drop, &d->cap_drop);

	if (!it)
		return -ENOMEM;
	it->o = c->o;
	it->id = c->id;
	memcpy(it->hash, c->hash, 32);
	return 0;
}

/* Whether the cached object o is among d's losses already. */
static bool dropped(const struct delta *d, const struct gw_object *o)
{
	for (size_t i = 0; i < d->n_drop; i++)
		if (d->drop[i].o == o)
			return true;
	return false;
}

/* Replays the log entries ch[] (see gw_objset_changes) against the cache.
 * An object added and replaced again within the entries cancels out; a
 * removed object that is neither one of those nor cached (once) means the
 * log and the cache disagree: -EAGAIN, and the caller walks instead. */
static int delta_from_log(struct store *s, const struct gw_objset_change *ch, size_t nch,
			  struct delta *d)
{
	for (size_t k = 0; k < nch; k++) {
		const struct gw_object *from = ch[k].from, *to = ch[k].to;

		if (from) {
			size_t i = d->n_add;

			while (i > 0 && d->add[i - 1].o != from)
				i--;
			if (i > 0) {
				d->add[i - 1] = d->add[--d->n_add];
			} else {
				const struct store_cached_obj *c = cache_find(s, from);

				if (!c || dropped(d, from))
					return -EAGAIN;
				if (drop_cached(d, c))
					return -ENOMEM;
			}
		}
		if (to) {
			struct item *it = push(&d->add, &d->n_add, &d->cap_add);

			if (!it)
				return -ENOMEM;
			it->o = to;
		}
	}
	return 0;
}

/* Compares the whole set with the cache: objects not cached are gained,
 * cached ones not met (a bit per cache slot) are lost. */
static int delta_walk(struct store *s, struct gw_objset *set, struct delta *d)
{
	uint8_t *met = calloc(s->cache_cap / 8 + 1, 1);
	int err = 0;

	if (!met)
		return -ENOMEM;
	for (int kind = 0; kind < GW_K_COUNT && !err; kind++) {
		size_t cnt = 0;
		const struct gw_object *const *l = gw_objset_list(set, (enum gw_kind)kind, &cnt);

		if (!l && gw_objset_count(set, (enum gw_kind)kind))
			err = -ENOMEM;
		for (size_t i = 0; i < cnt && !err; i++) {
			const struct store_cached_obj *c = cache_find(s, l[i]);
			struct item *it;

			if (c) {
				size_t slot = (size_t)(c - s->cache);

				met[slot / 8] |= (uint8_t)(1u << (slot % 8));
			} else if ((it = push(&d->add, &d->n_add, &d->cap_add)) != NULL) {
				it->o = l[i];
			} else {
				err = -ENOMEM;
			}
		}
	}
	for (size_t i = 0; i < s->cache_cap && !err; i++)
		if (s->cache[i].o && !(met[i / 8] & (1u << (i % 8))))
			err = drop_cached(d, &s->cache[i]);
	free(met);
	return err;
}

static int cmp_item_hash(const void *a, const void *b)
{
	return memcmp(((const struct item *)a)->hash, ((const struct item *)b)->hash, 32);
}

/* Hashes what the set gained, pairs each gained object with a lost one of
 * the same hash (the same content under another pointer: a resync, or a
 * change undone before the commit; nothing to write, only the cache's
 * pointer changes) and moves the digest of the cached set by the rest. */
static void delta_finish(struct store *s, struct delta *d, uint8_t digest[32], size_t *hashed)
{
	size_t i = 0, j = 0, m = 0;

	for (size_t k = 0; k < d->n_add; k++) {
		const struct gw_object *o = d->add[k].o;

		d->add[k].kind = gw_kind_info(o->kind)->kind;
		store_obj_hash(d->add[k].kind, o->ns ? o->ns : "", o->name, o->json, o->json_len,
			       d->add[k].hash);
	}
	*hashed = d->n_add;
	if (d->n_add > 1)
		qsort(d->add, d->n_add, sizeof(*d->add), cmp_item_hash);
	if (d->n_drop > 1)
		qsort(d->drop, d->n_drop, sizeof(*d->drop), cmp_item_hash);
	while (i < d->n_add && j < d->n_drop) {
		int c = memcmp(d->add[i].hash, d->drop[j].hash, 32);

		if (c < 0) {
			i++;
		} else if (c > 0) {
			d->drop[m++] = d->drop[j++];
		} else {
			d->add[i].was = d->drop[j].o;
			d->add[i].id = d->drop[j].id;
			i++, j++;
		}
	}
	while (j < d->n_drop)
		d->drop[m++] = d->drop[j++];
	d->n_drop = m;
	memcpy(digest, s->cache_digest, 32);
	for (size_t k = 0; k < d->n_drop; k++)
		store_digest_sub(digest, d->drop[k].hash);
	d->n_new = 0;
	for (size_t k = 0; k < d->n_add; k++) {
		if (d->add[k].was)
			continue;
		store_digest_add(digest, d->add[k].hash);
		d->n_new++;
	}
}

/* The log is replayed only while that is clearly cheaper than a walk (its
 * removals search the gains so far). */
#define LOG_REPLAY_MAX 256

/* What set changed against the cache; *path says how it was found. */
static int delta_find(struct store *s, struct gw_objset *set, struct delta *d, uint8_t digest[32],
		      size_t *hashed, const char **path)
{
	const struct gw_objset_change *ch;
	size_t nch;
	int err = -EAGAIN;

	if (s->cache_set == gw_objset_id(set) && gw_objset_changes(set, s->cache_pos, &ch, &nch) &&
	    nch <= LOG_REPLAY_MAX) {
		*path = "log";
		err = delta_from_log(s, ch, nch, d);
		if (err == -EAGAIN)
			log_warn("event=store_commit_log_mismatch changes=%zu", nch);
	}
	if (err == -EAGAIN) {
		d->n_add = d->n_drop = 0;
		*path = "walk";
		err = delta_walk(s, set, d);
	}
	if (!err)
		delta_finish(s, d, digest, hashed);
	return err;
}

/* Applies a committed delta to the cache, which then holds revision rev. */
static void delta_apply(struct store *s, const struct delta *d, uint64_t rev,
			const uint8_t digest[32])
{
	bool ok = true;

	for (size_t k = 0; k < d->n_drop; k++)
		cache_del(s, d->drop[k].o);
	for (size_t k = 0; k < d->n_add && ok; k++) {
		const struct item *it = &d->add[k];

		if (it->was == it->o)
			continue;
		if (it->was)
			cache_del(s, it->was);
		ok = cache_put(s, it->o, it->id, it->hash);
	}
	if (!ok) {
		store_cache_clear(s);
		return;
	}
	s->cache_rev = rev;
	memcpy(s->cache_digest, digest, 32);
}

/* -------- commit -------- */

/* Gathers every object of the set with its hash (from the cache when the
 * object is the very one committed last) and the set's digest. */
static int gather(struct store *s, struct gw_objset *set, struct item **out, size_t *n_out,
		  uint8_t digest[32], size_t *hashed)
{
	size_t n = 0, cap = 0;
	struct item *it;

	for (int kind = 0; kind < GW_K_COUNT; kind++)
		cap += gw_objset_count(set, (enum gw_kind)kind);
	it = calloc(cap ? cap : 1, sizeof(*it));
	if (!it)
		return -ENOMEM;
	*hashed = 0;
	memset(digest, 0, 32);
	for (int kind = 0; kind < GW_K_COUNT; kind++) {
		size_t cnt = 0;
		const struct gw_object *const *l = gw_objset_list(set, (enum gw_kind)kind, &cnt);
		const char *kname = gw_kind_info((enum gw_kind)kind)->kind;

		if (!l && gw_objset_count(set, (enum gw_kind)kind)) {
			free(it);
			return -ENOMEM;
		}
		for (size_t i = 0; i < cnt && n < cap; i++) {
			const struct store_cached_obj *c = cache_find(s, l[i]);

			it[n].o = l[i];
			it[n].kind = kname;
			if (c) {
				it[n].id = c->id;
				memcpy(it[n].hash, c->hash, 32);
			} else {
				store_obj_hash(kname, l[i]->ns ? l[i]->ns : "", l[i]->name,
					       l[i]->json, l[i]->json_len, it[n].hash);
				(*hashed)++;
			}
			store_digest_add(digest, it[n].hash);
			n++;
		}
	}
	*out = it;
	*n_out = n;
	return 0;
}

/* Finds (or inserts) the row of each item. *inserted counts new rows. */
static int resolve_ids(struct store *s, struct item *it, size_t n, bool insert, size_t *inserted)
{
	for (size_t k = 0; k < n; k++) {
		sqlite3_stmt *st;
		int rc;

		if (it[k].id > 0)
			continue;
		st = store_stmt(s, ST_OBJ_BY_HASH);
		if (!st)
			return -WG_ESTORE;
		sqlite3_bind_blob(st, 1, it[k].hash, 32, SQLITE_STATIC);
		rc = sqlite3_step(st);
		if (rc == SQLITE_ROW) {
			it[k].id = sqlite3_column_int64(st, 0);
			sqlite3_reset(st);
			continue;
		}
		sqlite3_reset(st);
		if (rc != SQLITE_DONE)
			return store_sqlerr(s, rc, "object lookup");
		if (!insert)
			continue;
		st = store_stmt(s, ST_OBJ_INSERT);
		if (!st)
			return -WG_ESTORE;
		sqlite3_bind_blob(st, 1, it[k].hash, 32, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, it[k].kind, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 3, it[k].o->ns ? it[k].o->ns : "", -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 4, it[k].o->name, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 5, it[k].o->json, (int)it[k].o->json_len, SQLITE_STATIC);
		rc = sqlite3_step(st);
		sqlite3_reset(st);
		if (rc != SQLITE_DONE)
			return store_sqlerr(s, rc, "object insert");
		it[k].id = sqlite3_last_insert_rowid(s->db);
		(*inserted)++;
	}
	return 0;
}

/* c holds an image: its bytes, or only their digest (image_later with
 * image_hash: the bytes come with store_snapshot_image_put). */
static bool has_image(const struct store_compiled *c)
{
	return c && (c->image || (c->image_later && c->image_hash));
}

/* The digest of c's image: the caller's hash of it when given. */
static void compiled_digest(const struct store_compiled *c, uint8_t out[IMAGE_DIGEST_LEN])
{
	if (!c->image_hash) {
		image_digest(c->image, c->image_len, out);
		return;
	}
	put_le64(out, c->image_hash);
}

/* Stores the snapshot JSON and image of rev (either may be absent);
 * replace: rev may hold them already (a new revision holds none). */
static int write_snapshot(struct store *s, uint64_t rev, const struct store_compiled *c,
			  bool replace)
{
	sqlite3_stmt *st;
	uint8_t hash[IMAGE_DIGEST_LEN];
	int rc;

	if (c && c->json) {
		st = store_stmt(s, ST_SNAP_INSERT);
		if (!st)
			return -WG_ESTORE;
		sqlite3_bind_int64(st, 1, (sqlite3_int64)rev);
		sqlite3_bind_text(st, 2, c->json, -1, SQLITE_STATIC);
		rc = sqlite3_step(st);
		sqlite3_reset(st);
		if (rc != SQLITE_DONE)
			return store_sqlerr(s, rc, "snapshot insert");
	}
	if (has_image(c) && !c->json && replace) {
		/* A JSON kept from before would no longer describe the image. */
		if (sqlite3_prepare_v2(s->db, "DELETE FROM snapshots WHERE rev = ?1", -1, &st,
				       NULL) != SQLITE_OK)
			return store_sqlerr(s, sqlite3_errcode(s->db), "snapshot delete");
		sqlite3_bind_int64(st, 1, (sqlite3_int64)rev);
		rc = sqlite3_step(st);
		sqlite3_finalize(st);
		if (rc != SQLITE_DONE)
			return store_sqlerr(s, rc, "snapshot delete");
	}
	if (has_image(c)) {
		if (c->image && c->image_len > INT32_MAX)
			return -EINVAL;
		st = store_stmt(s, ST_IMAGE_INSERT);
		if (!st)
			return -WG_ESTORE;
		compiled_digest(c, hash);
		sqlite3_bind_int64(st, 1, (sqlite3_int64)rev);
		sqlite3_bind_blob(st, 2, hash, IMAGE_DIGEST_LEN, SQLITE_STATIC);
		if (c->image_later)
			sqlite3_bind_null(st, 3);
		else
			sqlite3_bind_blob(st, 3, c->image, (int)c->image_len, SQLITE_STATIC);
		rc = sqlite3_step(st);
		sqlite3_reset(st);
		if (rc != SQLITE_DONE)
			return store_sqlerr(s, rc, "snapshot image insert");
	}
	return 0;
}

/* True when rev's stored image is not exactly c's (or there is none). */
static bool image_differs(struct store *s, uint64_t rev, const struct store_compiled *c)
{
	sqlite3_stmt *st = store_stmt(s, ST_IMAGE_GET);
	uint8_t hash[IMAGE_DIGEST_LEN];
	bool differs = true;

	if (!st)
		return true;
	compiled_digest(c, hash);
	sqlite3_bind_int64(st, 1, (sqlite3_int64)rev);
	if (sqlite3_step(st) == SQLITE_ROW)
		differs = sqlite3_column_bytes(st, 0) != IMAGE_DIGEST_LEN ||
			  memcmp(sqlite3_column_blob(st, 0), hash, IMAGE_DIGEST_LEN) != 0;
	sqlite3_reset(st);
	return differs;
}

/* -------- membership --------
 *
 * Which objects a revision holds is kept in members as intervals of
 * revisions (obj, first_rev, last_rev; NULL = still in the newest), so a
 * commit writes a row for each object added and closes the row of each
 * object dropped; the thousands that stay cost nothing. The view
 * revision_objects(rev, obj) gives the pairs back to the readers. */

static int cmp_id(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

/* Sorted ids of the newest revision (newest, 0 = none), read from the
 * store, into a new array. */
static int newest_ids(struct store *s, uint64_t newest, int64_t **out, size_t *n)
{
	size_t cap = 0, cnt = 0;
	int64_t *v = NULL;
	sqlite3_stmt *st;
	int rc;

	*out = NULL;
	*n = 0;
	if (!newest)
		return 0;
	st = store_stmt(s, ST_MEMBERS_OPEN);
	if (!st)
		return -WG_ESTORE;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (cnt == cap) {
			cap = cap ? cap * 2 : 1024;
			int64_t *nv = realloc(v, cap * sizeof(*v));
			if (!nv) {
				sqlite3_reset(st);
				free(v);
				return -ENOMEM;
			}
			v = nv;
		}
		v[cnt++] = sqlite3_column_int64(st, 0);
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		free(v);
		return store_sqlerr(s, rc, "open members");
	}
	qsort(v, cnt, sizeof(*v), cmp_id);
	*out = v;
	*n = cnt;
	return 0;
}

/* The ids of it[] sorted, without repeats, into a new array. */
static int sorted_ids(const struct item *it, size_t n, int64_t **out, size_t *m_out)
{
	int64_t *ids = malloc((n ? n : 1) * sizeof(*ids));
	struct keyed *kv = n > 1 ? malloc(2 * n * sizeof(*kv)) : NULL;
	size_t m = 0;

	if (!ids) {
		free(kv);
		return -ENOMEM;
	}
	for (size_t k = 0; k < n; k++)
		ids[k] = it[k].id;
	if (kv) {
		/* ids are positive row ids: as unsigned keys they sort the same */
		for (size_t k = 0; k < n; k++)
			kv[k] = (struct keyed){(uint64_t)ids[k], 0};
		radix_sort(kv, kv + n, n);
		for (size_t k = 0; k < n; k++)
			ids[k] = (int64_t)kv[k].key;
		free(kv);
	} else {
		qsort(ids, n, sizeof(*ids), cmp_id);
	}
	for (size_t k = 0; k < n; k++)
		if (!m || ids[m - 1] != ids[k])
			ids[m++] = ids[k];
	*out = ids;
	*m_out = m;
	return 0;
}

static int member_step(struct store *s, enum store_stmt_id id, int64_t obj, uint64_t rev)
{
	sqlite3_stmt *st = store_stmt(s, id);
	int rc;

	if (!st)
		return -WG_ESTORE;
	sqlite3_bind_int64(st, 1, obj);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)rev);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? 0 : store_sqlerr(s, rc, "revision members");
}

/* Makes revision rev hold exactly the objects of it[] (all with ids), given
 * that the newest revision before it is newest, whose members are read
 * from the store. */
static int write_members(struct store *s, const struct item *it, size_t n, uint64_t newest,
			 uint64_t rev)
{
	int64_t *ids = NULL, *old = NULL;
	size_t m = 0, n_old = 0, i = 0, j = 0;
	int err = sorted_ids(it, n, &ids, &m);

	if (!err)
		err = newest_ids(s, newest, &old, &n_old);
	/* Both sorted: walk them side by side. */
	while (!err && (i < m || j < n_old)) {
		if (j == n_old || (i < m && ids[i] < old[j]))
			err = member_step(s, ST_MEMBER_ADD, ids[i++], rev);
		else if (i == m || old[j] < ids[i])
			err = member_step(s, ST_MEMBER_DROP, old[j++], newest);
		else
			i++, j++;
	}
	free(old);
	free(ids);
	return err;
}

/* Makes revision rev hold the cached (newest) set changed by d (the new
 * adds with ids). */
static int write_delta_members(struct store *s, const struct delta *d, uint64_t newest,
			       uint64_t rev)
{
	int err = 0;

	for (size_t k = 0; k < d->n_drop && !err; k++)
		err = member_step(s, ST_MEMBER_DROP, d->drop[k].id, newest);
	for (size_t k = 0; k < d->n_add && !err; k++)
		if (!d->add[k].was)
			err = member_step(s, ST_MEMBER_ADD, d->add[k].id, rev);
	return err;
}

/* Whether it[] (n objects; ids found where stored) is exactly the newest
 * revision's set. Asked only when the digests agree, which alone does
 * not prove it (see "set digest"). */
static int is_newest_set(struct store *s, struct item *it, size_t n, uint64_t newest, bool *same)
{
	int64_t *ids = NULL, *old = NULL;
	size_t m = 0, n_old = 0, found = 0;
	int err = resolve_ids(s, it, n, false, &found);

	*same = false;
	if (err)
		return err;
	for (size_t k = 0; k < n; k++)
		if (it[k].id <= 0)
			return 0;
	err = sorted_ids(it, n, &ids, &m);
	if (!err)
		err = newest_ids(s, newest, &old, &n_old);
	if (!err)
		*same = m == n && n_old == m && (!m || memcmp(ids, old, m * sizeof(*ids)) == 0);
	free(ids);
	free(old);
	return err;
}

static int insert_revision(struct store *s, size_t n, const uint8_t digest[32], const char *source,
			   const char *user, const char *summary, uint64_t *rev)
{
	sqlite3_stmt *st = store_stmt(s, ST_REV_INSERT);
	int rc;

	if (!st)
		return -WG_ESTORE;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)store_now_ms(s));
	store_bind_text(st, 2, source);
	store_bind_text(st, 3, user);
	store_bind_text(st, 4, summary);
	sqlite3_bind_int64(st, 5, (sqlite3_int64)n);
	sqlite3_bind_blob(st, 6, digest, 32, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return store_sqlerr(s, rc, "revision insert");
	*rev = (uint64_t)sqlite3_last_insert_rowid(s->db);
	return 0;
}

/* The newest revision (0 = none), its digest and object count. */
static int read_newest(struct store *s, uint64_t *rev, uint8_t digest[32], uint64_t *n)
{
	sqlite3_stmt *st = store_stmt(s, ST_NEWEST);
	int rc;

	*rev = *n = 0;
	memset(digest, 0, 32);
	if (!st)
		return -WG_ESTORE;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*rev = (uint64_t)sqlite3_column_int64(st, 0);
		if (sqlite3_column_bytes(st, 1) == 32)
			memcpy(digest, sqlite3_column_blob(st, 1), 32);
		*n = (uint64_t)sqlite3_column_int64(st, 2);
	}
	sqlite3_reset(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : store_sqlerr(s, rc, "newest revision");
}

int store_commit(struct store *s, struct gw_objset *set, const char *snapshot_json,
		 const char *source, const char *user, const char *summary, uint64_t *rev_out)
{
	struct store_compiled c = {.json = snapshot_json};

	return store_commit_compiled(s, set, &c, source, user, summary, rev_out);
}

/*
 * Two ways to the same revision. With the commit cache in step with the
 * newest revision (this connection committed it), only the change is
 * looked at (struct delta): the objects gained are hashed and stored, the
 * lost ones' intervals closed, the digest moved, the cache updated in
 * place. Otherwise (the first commit after opening, someone else
 * committed, a recovery) every object is gathered and hashed, the newest
 * revision's members are read back, and the cache is rebuilt.
 */
int store_commit_compiled(struct store *s, struct gw_objset *set, const struct store_compiled *c,
			  const char *source, const char *user, const char *summary,
			  uint64_t *rev_out)
{
	uint64_t t0 = clock_mono_ms(), newest = 0, n_newest = 0, rev = 0;
	uint8_t digest[32], newest_digest[32];
	struct delta d = {0};
	struct item *it = NULL;
	size_t n = 0, hashed = 0, inserted = 0;
	const char *path = "full";
	bool same = false, full = true;
	char line[600];
	int err;

	if (!s || !set || !source)
		return -EINVAL;
	if (s->cache_rev) {
		err = delta_find(s, set, &d, digest, &hashed, &path);
		full = err != 0;
		if (!full)
			n = s->cache_n - d.n_drop + d.n_new;
		else if (err != -ENOMEM)
			return err;
	}
	if (full) {
		delta_fini(&d);
		path = "full";
		err = gather(s, set, &it, &n, digest, &hashed);
		if (err)
			return err;
	}
	store_sync_full(s, true);
	err = store_tx_begin(s, true);
	if (err)
		goto out;
	err = read_newest(s, &newest, newest_digest, &n_newest);
	if (err)
		goto fail;
	if (s->cache_rev != newest) {
		/* Someone else committed (or the cache is from before a
		 * recovery): the cached ids may be gone, and the change must
		 * be taken against what the store holds. */
		if (!full) {
			delta_fini(&d);
			full = true;
			path = "full";
			err = gather(s, set, &it, &n, digest, &hashed);
			if (err)
				goto fail;
		}
		for (size_t k = 0; k < n; k++)
			it[k].id = 0;
		store_cache_clear(s);
	}
	if (!full)
		same = d.n_drop == 0 && d.n_new == 0;
	else if (newest && n == n_newest && memcmp(digest, newest_digest, 32) == 0)
		err = is_newest_set(s, it, n, newest, &same);
	if (err)
		goto fail;
	if (same) {
		rev = newest;
		/* The same objects compiled into another snapshot (by a newer
		 * build, or with other addresses): the revision keeps what is
		 * served from now on, so a restart serves that. */
		if (has_image(c) && image_differs(s, rev, c)) {
			err = write_snapshot(s, rev, c, true);
			if (!err)
				err = store_tx_commit_revision(s);
			if (err)
				goto fail;
			log_info("event=store_snapshot_replaced rev=%llu", (unsigned long long)rev);
		} else {
			store_tx_rollback(s);
		}
		log_debug("event=store_commit_unchanged rev=%llu objects=%zu path=%s",
			  (unsigned long long)rev, n, path);
		goto done;
	}
	if (full)
		err = resolve_ids(s, it, n, true, &inserted);
	else
		err = resolve_ids(s, d.add, d.n_add, true, &inserted);
	if (!err)
		err = insert_revision(s, n, digest, source, user, summary, &rev);
	if (!err)
		err = full ? write_members(s, it, n, newest, rev)
			   : write_delta_members(s, &d, newest, rev);
	if (!err)
		err = write_snapshot(s, rev, c, false);
	if (!err)
		err = store_retain(s);
	if (!err) {
		snprintf(line, sizeof(line), "revision %llu: %zu objects (%zu new)%s%.400s",
			 (unsigned long long)rev, n, inserted, summary && *summary ? ": " : "",
			 summary ? summary : "");
		err = store_audit(s, source, user, line);
	}
	if (err)
		goto fail;
	err = store_tx_commit_revision(s);
	if (err)
		goto out;
	log_info("event=store_commit rev=%llu objects=%zu new_objects=%zu hashed=%zu path=%s "
		 "source=%s ms=%llu",
		 (unsigned long long)rev, n, inserted, hashed, path, log_q(source),
		 (unsigned long long)(clock_mono_ms() - t0));
done:
	if (full)
		cache_rebuild(s, it, n, rev, digest);
	else
		delta_apply(s, &d, rev, digest);
	if (s->cache_rev) {
		s->cache_set = gw_objset_id(set);
		s->cache_pos = gw_objset_log_pos(set);
	}
	s->last_path = path;
	s->last_hashed = hashed;
	if (rev_out)
		*rev_out = rev;
	goto out;
fail:
	store_tx_rollback(s);
	log_error("event=store_commit_failed objects=%zu err=%s", n, log_q(err_str(err)));
out:
	store_sync_full(s, false);
	delta_fini(&d);
	free(it);
	return err;
}

/* Incremental vacuum returns freed pages to the file system after
 * retention; only worth it when there are enough of them. */
static void give_back_pages(struct store *s)
{
	sqlite3_stmt *st = store_stmt(s, ST_FREELIST);
	int64_t free_pages = 0;

	if (!st)
		return;
	if (sqlite3_step(st) == SQLITE_ROW)
		free_pages = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	if (free_pages > 256)
		sqlite3_exec(s->db, "PRAGMA incremental_vacuum", NULL, NULL, NULL);
}

static int cutoff(struct store *s, unsigned keep, int64_t *out)
{
	sqlite3_stmt *st = store_stmt(s, ST_CUTOFF);
	int rc;

	*out = 0;
	if (!st)
		return -WG_ESTORE;
	sqlite3_bind_int64(st, 1, keep ? keep - 1 : 0);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*out = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	return (rc == SQLITE_ROW || rc == SQLITE_DONE) ? 0 : store_sqlerr(s, rc, "retention");
}

/* Runs the retention statement id with ?1 = v; *changes (may be NULL)
 * receives the rows it deleted. */
static int retain_step(struct store *s, enum store_stmt_id id, int64_t v, int *changes)
{
	sqlite3_stmt *st = store_stmt(s, id);
	int rc;

	if (!st)
		return -WG_ESTORE;
	sqlite3_bind_int64(st, 1, v);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return store_sqlerr(s, rc, "retention");
	if (changes)
		*changes = sqlite3_changes(s->db);
	return 0;
}

static int exec_bound(struct store *s, const char *sql, int64_t v, int *changes)
{
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);

	if (rc != SQLITE_OK)
		return store_sqlerr(s, rc, "retention");
	sqlite3_bind_int64(st, 1, v);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return store_sqlerr(s, rc, "retention");
	if (changes)
		*changes = sqlite3_changes(s->db);
	return 0;
}

/*
 * Keeps the newest keep_revisions revisions and every pinned one, deletes
 * the objects only deleted revisions held, and keeps snapshot JSON for the
 * newest keep_snapshots revisions and the pinned one. Revisions are numbered
 * in commit order, so "older than the N-th newest and not pinned" is a
 * range. Runs in the caller's write transaction (the statements are in
 * store.c, ST_RETAIN_*).
 */
int store_retain(struct store *s)
{
	int64_t c = 0, sc = 0;
	int err, revs = 0, objs = 0;

	err = cutoff(s, s->keep_revisions, &c);
	if (!err && c > 0)
		err = retain_step(s, ST_RETAIN_OBJECTS, c, &objs);
	if (!err && c > 0)
		err = retain_step(s, ST_RETAIN_MEMBERS, c, NULL);
	if (!err && c > 0)
		err = retain_step(s, ST_RETAIN_SNAPSHOTS, c, NULL);
	if (!err && c > 0)
		err = retain_step(s, ST_RETAIN_IMAGES, c, NULL);
	if (!err && c > 0)
		err = retain_step(s, ST_RETAIN_REVISIONS, c, &revs);
	if (!err)
		err = cutoff(s, s->keep_snapshots, &sc);
	if (!err && sc > 0)
		err = retain_step(s, ST_TRIM_SNAPSHOTS, sc, NULL);
	if (!err && sc > 0)
		err = retain_step(s, ST_TRIM_IMAGES, sc, NULL);
	if (!err && revs > 0) {
		log_info("event=store_retention deleted_revisions=%d deleted_objects=%d keep=%u",
			 revs, objs, s->keep_revisions);
		give_back_pages(s);
	}
	return err;
}

/* -------- reading -------- */

int store_pinned(struct store *s, uint64_t *rev)
{
	sqlite3_stmt *st = store_stmt(s, ST_PINNED);
	int rc;

	*rev = 0;
	if (!st)
		return -WG_ESTORE;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*rev = (uint64_t)sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	return (rc == SQLITE_ROW || rc == SQLITE_DONE) ? 0 : store_sqlerr(s, rc, "pinned");
}

int store_serving(struct store *s, uint64_t *rev)
{
	sqlite3_stmt *st;
	int err, rc;

	err = store_pinned(s, rev);
	if (err || *rev)
		return err;
	st = store_stmt(s, ST_NEWEST);
	if (!st)
		return -WG_ESTORE;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*rev = (uint64_t)sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	return (rc == SQLITE_ROW || rc == SQLITE_DONE) ? 0 : store_sqlerr(s, rc, "newest");
}

/* Resolves rev (0 = serving) to an existing revision inside a transaction. */
static int resolve_rev(struct store *s, uint64_t rev, uint64_t *out, uint64_t *n_objects)
{
	sqlite3_stmt *st;
	int err, rc;

	if (rev == 0) {
		err = store_serving(s, &rev);
		if (err)
			return err;
		if (rev == 0)
			return -WG_ENOTFOUND;
	}
	st = store_stmt(s, ST_REV_EXISTS);
	if (!st)
		return -WG_ESTORE;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)rev);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW && n_objects)
		*n_objects = (uint64_t)sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	if (rc == SQLITE_DONE)
		return -WG_ENOTFOUND;
	if (rc != SQLITE_ROW)
		return store_sqlerr(s, rc, "revision lookup");
	*out = rev;
	return 0;
}

int store_load(struct store *s, uint64_t rev, struct gw_objset *set, uint64_t *rev_out)
{
	uint64_t t0 = clock_mono_ms(), n_objects = 0;
	size_t loaded = 0, skipped = 0;
	sqlite3_stmt *st;
	char msg[256];
	int err, rc;

	if (!s || !set)
		return -EINVAL;
	err = store_tx_begin(s, false);
	if (err)
		return err;
	err = resolve_rev(s, rev, &rev, &n_objects);
	if (err)
		goto out;
	st = store_stmt(s, ST_LOAD);
	if (!st) {
		err = -WG_ESTORE;
		goto out;
	}
	sqlite3_bind_int64(st, 1, (sqlite3_int64)rev);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *kind = (const char *)sqlite3_column_text(st, 0);
		const char *json = (const char *)sqlite3_column_text(st, 1);
		int len = sqlite3_column_bytes(st, 1);
		int k = kind ? gw_kind_from_name(NULL, kind) : -1;
		struct gw_object *o;

		if (k < 0) {
			/* Stored by a newer waygate that knows more kinds. */
			skipped++;
			log_warn("event=store_load_unknown_kind rev=%llu kind=%s",
				 (unsigned long long)rev, log_q(kind ? kind : ""));
			continue;
		}
		msg[0] = '\0';
		o = gw_object_parse(k, json ? json : "", (size_t)len, msg, sizeof(msg));
		if (!o) {
			log_error("event=store_load_bad_object rev=%llu kind=%s err=%s",
				  (unsigned long long)rev, log_q(kind), log_q(msg));
			err = -WG_ESTORE;
			break;
		}
		o->source = "store";
		gw_objset_put(set, o);
		loaded++;
	}
	sqlite3_reset(st);
	if (!err && rc != SQLITE_DONE)
		err = store_sqlerr(s, rc, "load");
	if (!err && loaded + skipped != n_objects) {
		log_error("event=store_load_incomplete rev=%llu expected=%llu loaded=%zu",
			  (unsigned long long)rev, (unsigned long long)n_objects, loaded);
		err = -WG_ESTORE;
	}
	if (!err) {
		log_info("event=store_load rev=%llu objects=%zu ms=%llu", (unsigned long long)rev,
			 loaded, (unsigned long long)(clock_mono_ms() - t0));
		if (rev_out)
			*rev_out = rev;
	}
out:
	store_tx_rollback(s);
	return err;
}

static char *col_dup(struct arena *a, sqlite3_stmt *st, int i)
{
	const char *v = (const char *)sqlite3_column_text(st, i);

	return arena_strndup(a, v ? v : "", v ? (size_t)sqlite3_column_bytes(st, i) : 0);
}

/* store_snapshot_image for a resolved rev, inside the caller's transaction. */
static int store_snapshot_image_locked(struct store *s, uint64_t rev, uint8_t **image, size_t *len,
				       uint64_t *digest)
{
	uint8_t hash[IMAGE_DIGEST_LEN];
	sqlite3_stmt *st = store_stmt(s, ST_IMAGE_GET);
	int err = 0, rc;

	*image = NULL;
	*len = 0;
	if (!st)
		return -WG_ESTORE;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)rev);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW && sqlite3_column_type(st, 1) == SQLITE_NULL) {
		err = -WG_ENOTFOUND; /* committed, its bytes never written */
	} else if (rc == SQLITE_ROW) {
		const void *p = sqlite3_column_blob(st, 1);
		size_t n = (size_t)sqlite3_column_bytes(st, 1);

		uint64_t d = gw_image_digest(p, n);

		put_le64(hash, d);
		if (digest)
			*digest = d;
		if (sqlite3_column_bytes(st, 0) != IMAGE_DIGEST_LEN ||
		    memcmp(sqlite3_column_blob(st, 0), hash, IMAGE_DIGEST_LEN) != 0)
			err = -EBADMSG;
		else if (!(*image = malloc(n ? n : 1)))
			err = -ENOMEM;
		else {
			memcpy(*image, p, n);
			*len = n;
		}
	} else {
		err = rc == SQLITE_DONE ? -WG_ENOTFOUND : store_sqlerr(s, rc, "snapshot image");
	}
	sqlite3_reset(st);
	return err;
}

static int image_put(struct store *s, uint64_t rev, const uint8_t *image, size_t len);

/* Durable like a commit, although nothing waits for it: otherwise its
 * megabyte would still be unsynced in the log when the next revision
 * commits, and that commit's sync, on the way to serving, would carry it. */
int store_snapshot_image_put(struct store *s, uint64_t rev, const uint8_t *image, size_t len)
{
	int err;

	store_sync_full(s, true);
	err = image_put(s, rev, image, len);
	store_sync_full(s, false);
	return err;
}

static int image_put(struct store *s, uint64_t rev, const uint8_t *image, size_t len)
{
	uint8_t hash[IMAGE_DIGEST_LEN];
	sqlite3_stmt *st;
	int err, rc;

	if (!image || len > INT32_MAX)
		return -EINVAL;
	image_digest(image, len, hash);
	err = store_tx_begin(s, true);
	if (err)
		return err;
	st = store_stmt(s, ST_IMAGE_PUT);
	if (!st) {
		store_tx_rollback(s);
		return -WG_ESTORE;
	}
	sqlite3_bind_int64(st, 1, (sqlite3_int64)rev);
	sqlite3_bind_blob(st, 2, hash, IMAGE_DIGEST_LEN, SQLITE_STATIC);
	sqlite3_bind_blob(st, 3, image, (int)len, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		err = store_sqlerr(s, rc, "snapshot image write");
	} else if (sqlite3_changes(s->db) != 1) {
		/* Written before (the same image served again) is success. */
		st = store_stmt(s, ST_IMAGE_HAS);
		if (!st) {
			err = -WG_ESTORE;
		} else {
			sqlite3_bind_int64(st, 1, (sqlite3_int64)rev);
			sqlite3_bind_blob(st, 2, hash, IMAGE_DIGEST_LEN, SQLITE_STATIC);
			rc = sqlite3_step(st);
			sqlite3_reset(st);
			err = rc == SQLITE_ROW	  ? 0
			      : rc == SQLITE_DONE ? -WG_ENOTFOUND
						  : store_sqlerr(s, rc, "snapshot image");
		}
		store_tx_rollback(s);
		return err;
	}
	if (err) {
		store_tx_rollback(s);
		return err;
	}
	return store_tx_commit(s);
}

int store_snapshot_image(struct store *s, uint64_t rev, uint8_t **image, size_t *len,
			 uint64_t *rev_out, uint64_t *digest)
{
	int err;

	*image = NULL;
	*len = 0;
	err = store_tx_begin(s, false);
	if (err)
		return err;
	err = resolve_rev(s, rev, &rev, NULL);
	if (!err && rev_out)
		*rev_out = rev;
	if (!err)
		err = store_snapshot_image_locked(s, rev, image, len, digest);
	store_tx_rollback(s);
	return err;
}

/* The JSON of rev's snapshot image (s is inside a read transaction). */
static int json_from_image(struct store *s, uint64_t rev, struct arena *a, char **json)
{
	uint8_t *image = NULL;
	size_t len = 0;
	struct gw_image img;
	char *text;
	int err = store_snapshot_image_locked(s, rev, &image, &len, NULL);

	if (err)
		return err;
	err = gw_image_decode(image, len, &img);
	gw_image_buf_free(image, len);
	if (err)
		return err == -ENOMEM ? err : -WG_ESTORE;
	text = gw_snapshot_to_json(img.snap);
	gw_image_fini(&img);
	if (!text)
		return -ENOMEM;
	*json = arena_strdup(a, text);
	free(text);
	return *json ? 0 : -ENOMEM;
}

int store_snapshot_json(struct store *s, uint64_t rev, struct arena *a, char **json,
			uint64_t *rev_out)
{
	sqlite3_stmt *st;
	int err, rc;

	*json = NULL;
	err = store_tx_begin(s, false);
	if (err)
		return err;
	err = resolve_rev(s, rev, &rev, NULL);
	if (err)
		goto out;
	st = store_stmt(s, ST_SNAP_GET);
	if (!st) {
		err = -WG_ESTORE;
		goto out;
	}
	sqlite3_bind_int64(st, 1, (sqlite3_int64)rev);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*json = col_dup(a, st, 0);
		if (!*json)
			err = -ENOMEM;
	} else if (rc != SQLITE_DONE) {
		err = store_sqlerr(s, rc, "snapshot");
	}
	sqlite3_reset(st);
	/* Revisions committed with an image keep no JSON: it is made from
	 * the image when someone asks. */
	if (!err && !*json)
		err = json_from_image(s, rev, a, json);
	if (!err && rev_out)
		*rev_out = rev;
out:
	store_tx_rollback(s);
	return err;
}

#define REV_COLS                                                                                   \
	"SELECT r.rev, r.time_ms, r.source, r.user, r.summary, r.n_objects, r.pinned,"             \
	" (EXISTS (SELECT 1 FROM snapshots x WHERE x.rev = r.rev) OR"                             \
	"  EXISTS (SELECT 1 FROM snapshot_images x WHERE x.rev = r.rev AND x.image IS NOT NULL))" \
	" FROM revisions r"

static int fill_rev(struct arena *a, sqlite3_stmt *st, uint64_t serving, struct store_revision *r)
{
	r->rev = (uint64_t)sqlite3_column_int64(st, 0);
	r->time_ms = (uint64_t)sqlite3_column_int64(st, 1);
	r->source = col_dup(a, st, 2);
	r->user = col_dup(a, st, 3);
	r->summary = col_dup(a, st, 4);
	r->n_objects = (uint64_t)sqlite3_column_int64(st, 5);
	r->pinned = sqlite3_column_int(st, 6) != 0;
	r->has_snapshot = sqlite3_column_int(st, 7) != 0;
	r->serving = r->rev == serving;
	return (r->source && r->user && r->summary) ? 0 : -ENOMEM;
}

int store_revisions(struct store *s, size_t offset, size_t limit, struct arena *a,
		    struct store_revision **out, size_t *n)
{
	sqlite3_stmt *st = NULL;
	struct store_revision *v = NULL;
	size_t cap = 0, cnt = 0;
	uint64_t serving = 0;
	int err, rc;

	*out = NULL;
	*n = 0;
	err = store_tx_begin(s, false);
	if (err)
		return err;
	err = store_serving(s, &serving);
	if (err)
		goto out;
	rc = sqlite3_prepare_v2(s->db, REV_COLS " ORDER BY r.rev DESC LIMIT ?1 OFFSET ?2", -1, &st,
				NULL);
	if (rc != SQLITE_OK) {
		err = store_sqlerr(s, rc, "revisions");
		goto out;
	}
	sqlite3_bind_int64(st, 1, limit ? (sqlite3_int64)limit : -1);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)offset);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		v = arena_grow(a, v, cnt, &cap, sizeof(*v), 16);
		if (!v) {
			err = -ENOMEM;
			goto out;
		}
		err = fill_rev(a, st, serving, &v[cnt]);
		if (err)
			goto out;
		cnt++;
	}
	if (rc != SQLITE_DONE) {
		err = store_sqlerr(s, rc, "revisions");
		goto out;
	}
	*out = v;
	*n = cnt;
out:
	sqlite3_finalize(st);
	store_tx_rollback(s);
	return err;
}

int store_revision_get(struct store *s, uint64_t rev, struct arena *a, struct store_revision *out)
{
	sqlite3_stmt *st = NULL;
	uint64_t serving = 0;
	int err, rc;

	memset(out, 0, sizeof(*out));
	err = store_tx_begin(s, false);
	if (err)
		return err;
	err = store_serving(s, &serving);
	if (err)
		goto out;
	rc = sqlite3_prepare_v2(s->db, REV_COLS " WHERE r.rev = ?1", -1, &st, NULL);
	if (rc != SQLITE_OK) {
		err = store_sqlerr(s, rc, "revision");
		goto out;
	}
	sqlite3_bind_int64(st, 1, (sqlite3_int64)rev);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		err = fill_rev(a, st, serving, out);
	else
		err = rc == SQLITE_DONE ? -WG_ENOTFOUND : store_sqlerr(s, rc, "revision");
out:
	sqlite3_finalize(st);
	store_tx_rollback(s);
	return err;
}

int store_diff(struct store *s, uint64_t a, uint64_t b, struct arena *ar,
	       struct store_diff_entry **out, size_t *n)
{
	static const char sql[] =
		"WITH A AS (SELECT o.kind, o.ns, o.name, o.id FROM revision_objects r"
		"           JOIN objects o ON o.id = r.obj WHERE r.rev = ?1),"
		"     B AS (SELECT o.kind, o.ns, o.name, o.id FROM revision_objects r"
		"           JOIN objects o ON o.id = r.obj WHERE r.rev = ?2)"
		" SELECT coalesce(A.kind, B.kind) AS k, coalesce(A.ns, B.ns) AS n,"
		"        coalesce(A.name, B.name) AS m, A.id, B.id"
		" FROM A FULL OUTER JOIN B ON A.kind = B.kind AND A.ns = B.ns AND A.name = B.name"
		" WHERE A.id IS NOT B.id ORDER BY k, n, m";
	sqlite3_stmt *st = NULL;
	struct store_diff_entry *v = NULL;
	size_t cap = 0, cnt = 0;
	uint64_t dummy;
	int err, rc;

	*out = NULL;
	*n = 0;
	err = store_tx_begin(s, false);
	if (err)
		return err;
	if (a == 0 || b == 0) {
		err = -WG_ENOTFOUND;
		goto out;
	}
	err = resolve_rev(s, a, &dummy, NULL);
	if (!err)
		err = resolve_rev(s, b, &dummy, NULL);
	if (err)
		goto out;
	rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
	if (rc != SQLITE_OK) {
		err = store_sqlerr(s, rc, "diff");
		goto out;
	}
	sqlite3_bind_int64(st, 1, (sqlite3_int64)a);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)b);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct store_diff_entry *e;

		v = arena_grow(ar, v, cnt, &cap, sizeof(*v), 16);
		if (!v) {
			err = -ENOMEM;
			goto out;
		}
		e = &v[cnt++];
		if (sqlite3_column_type(st, 3) == SQLITE_NULL)
			e->change = STORE_ADDED;
		else if (sqlite3_column_type(st, 4) == SQLITE_NULL)
			e->change = STORE_REMOVED;
		else
			e->change = STORE_CHANGED;
		e->kind = col_dup(ar, st, 0);
		e->ns = col_dup(ar, st, 1);
		e->name = col_dup(ar, st, 2);
		if (!e->kind || !e->ns || !e->name) {
			err = -ENOMEM;
			goto out;
		}
	}
	if (rc != SQLITE_DONE) {
		err = store_sqlerr(s, rc, "diff");
		goto out;
	}
	*out = v;
	*n = cnt;
out:
	sqlite3_finalize(st);
	store_tx_rollback(s);
	return err;
}

int store_object_json(struct store *s, uint64_t rev, const char *kind, const char *ns,
		      const char *name, struct arena *a, char **json)
{
	sqlite3_stmt *st = NULL;
	int err, rc;

	*json = NULL;
	err = store_tx_begin(s, false);
	if (err)
		return err;
	err = resolve_rev(s, rev, &rev, NULL);
	if (err)
		goto out;
	rc = sqlite3_prepare_v2(
		s->db,
		"SELECT o.json FROM objects o JOIN revision_objects r ON r.obj = o.id"
		" WHERE r.rev = ?1 AND o.kind = ?2 AND o.ns = ?3 AND o.name = ?4",
		-1, &st, NULL);
	if (rc != SQLITE_OK) {
		err = store_sqlerr(s, rc, "object");
		goto out;
	}
	sqlite3_bind_int64(st, 1, (sqlite3_int64)rev);
	store_bind_text(st, 2, kind);
	store_bind_text(st, 3, ns);
	store_bind_text(st, 4, name);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*json = col_dup(a, st, 0);
		if (!*json)
			err = -ENOMEM;
	} else {
		err = rc == SQLITE_DONE ? -WG_ENOTFOUND : store_sqlerr(s, rc, "object");
	}
out:
	sqlite3_finalize(st);
	store_tx_rollback(s);
	return err;
}

/* -------- pin -------- */

int store_pin(struct store *s, uint64_t rev, const char *source, const char *user)
{
	uint64_t dummy, prev = 0;
	char line[96];
	int err;

	if (rev == 0)
		return -EINVAL;
	store_sync_full(s, true);
	err = store_tx_begin(s, true);
	if (err)
		goto out;
	err = resolve_rev(s, rev, &dummy, NULL);
	if (!err)
		err = store_pinned(s, &prev);
	if (!err)
		err = exec_bound(s,
				 "UPDATE revisions SET pinned = (rev = ?1)"
				 " WHERE pinned != 0 OR rev = ?1",
				 (int64_t)rev, NULL);
	if (!err) {
		snprintf(line, sizeof(line), "pinned revision %llu", (unsigned long long)rev);
		err = store_audit(s, source ? source : "ui", user, line);
	}
	if (err) {
		store_tx_rollback(s);
		goto out;
	}
	err = store_tx_commit(s);
	if (!err)
		log_info("event=store_pin rev=%llu previous=%llu source=%s",
			 (unsigned long long)rev, (unsigned long long)prev,
			 log_q(source ? source : "ui"));
out:
	store_sync_full(s, false);
	return err;
}

int store_unpin(struct store *s, const char *source, const char *user)
{
	uint64_t prev = 0;
	char line[96];
	int err;

	store_sync_full(s, true);
	err = store_tx_begin(s, true);
	if (err)
		goto out;
	err = store_pinned(s, &prev);
	if (!err && prev) {
		err = store_exec(s, "UPDATE revisions SET pinned = 0 WHERE pinned != 0");
		if (!err) {
			snprintf(line, sizeof(line), "unpinned revision %llu",
				 (unsigned long long)prev);
			err = store_audit(s, source ? source : "ui", user, line);
		}
	}
	if (err) {
		store_tx_rollback(s);
		goto out;
	}
	err = store_tx_commit(s);
	if (!err && prev)
		log_info("event=store_unpin rev=%llu source=%s", (unsigned long long)prev,
			 log_q(source ? source : "ui"));
out:
	store_sync_full(s, false);
	return err;
}
