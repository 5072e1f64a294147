/* SPDX-License-Identifier: MIT */
/*
 * snapimage.c: the compiled snapshot as a byte image and back (snapimage.h).
 * The format is private to one build family: a header (magic, format
 * version, byte-order mark, record count) then records, each a length and
 * its bytes; integers in host byte order, strings as a length (0 = NULL,
 * else length + 1) and their bytes. The records are: the Gateway address
 * map with the counts; every shared value (a rule's backends or filters, a
 * backend's TLS settings), once, in the order of its key; then per listener
 * its fields, one record per HTTP rule, and its TLS and L4 routes; then the
 * sockets. A value is named by its key, a hash of its kind and bytes (in
 * which the values it holds are named by key too), so a rule's bytes do not
 * depend on anything written before them: the encoder keeps each rule's
 * record and its hash from one image to the next (gw_image_cache), and the
 * digest, a hash over the records' hashes, is had from the kept hashes
 * without writing the image. Values equal in every byte are one value after
 * decoding, so the data plane builds one TLS client per shared backend.
 * The decoder trusts nothing: every count is checked against the bytes
 * left before anything is allocated, every enum, key and reference against
 * its range; a value's key must be its bytes' hash and every value must be
 * used, so an image decodes and encodes again to the same bytes. It does
 * not check integrity (the store compares gw_image_digest) and it does not
 * interpret the snapshot. Any thread; no shared state.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/hash.h"
#include "gwapi/snapimage.h"
#include "proxy/snapshot_types.h"

#define IMAGE_MAGIC 0x49534757u /* "WGSI" read as a little-endian word */
#define IMAGE_VERSION 2u
#define IMAGE_ORDER 0x01020304u
#define IMAGE_HEAD 16 /* magic, version, order, record count */

/* What a shared value is; a reference must name its kind. */
enum ref_kind { REF_BACKENDS = 1, REF_FILTERS, REF_BACKEND_TLS };

/* A value record: kind, key, then the value's bytes. */
#define VALUE_HEAD 12

/* How deep values may hold values (a rule's backends' filters' mirror's
 * ...): far past what the compiler makes, and a bound on the decoder's
 * recursion. */
#define MAX_DEPTH 16

/* One step of the digest over record hashes: a bijection of h ^ d, so two
 * sequences collide only where their records' hashes do. */
static uint64_t fold(uint64_t h, uint64_t d)
{
	h = (h ^ d) * 0xff51afd7ed558ccdULL;
	return h ^ (h >> 31);
}

static uint64_t value_key(enum ref_kind kind, const uint8_t *p, size_t n)
{
	uint64_t k = fold(hash_wide(p, n), kind);
	return k ? k : 1; /* 0 names no value */
}

/* -------- encoding: pieces and values --------
 *
 * A piece is the bytes of one record with its hash and the values it
 * names (one reference each). A value node is a piece with its key,
 * counted by the pieces that name it; the cache's table finds it by key
 * and its sorted list orders the image's value records. */

struct vnode;

struct piece {
	uint8_t *bytes;
	size_t len;
	uint64_t hash; /* hash_wide(bytes, len) */
	struct vnode **kids;
	size_t n_kids;
};

struct vnode {
	uint64_t key;
	uint32_t refs;     /* pieces that name it; 0 = dead, freed with the sorted list */
	struct piece body; /* the whole value record */
};

#define TOMB ((struct vnode *)1)

struct gw_image_cache;

struct wbuf {
	uint8_t *p;
	size_t len, cap;
	bool oom;
	int err; /* beside oom: -EEXIST for two values of one key */
	struct gw_image_cache *c;
	struct vnode **kids;
	size_t n_kids, cap_kids;
	unsigned depth;
};

/* The rules of one listener of the last image, and its pieces. */
struct lcache {
	const struct snap_http_rule *rules; /* borrowed from the cached snapshot */
	struct piece **pieces;              /* owned; NULL once taken */
	size_t n;
	struct piece *head, *tail;
};

struct gw_image_cache {
	struct lcache *lis;
	size_t n_lis;
	struct piece *top, *sockets; /* first and last record */
	/* values by key (open addressing, TOMB for a removed one) */
	struct vnode **slots;
	size_t cap, used, live;
	/* values in key order, and those made since it was sorted */
	struct vnode **sorted, **added;
	size_t n_sorted, n_added, cap_added;
	bool dirty; /* a value died since the list was sorted */
	/* the last snapshot's memory, which the kept rules point into */
	struct arena *arena, *shared;
	uint64_t digest;
	size_t n_records, image_len;
	bool ready; /* the last update succeeded: digest and pieces hold */
};

/* Makes room for n more bytes; false (and oom set) when there is none. */
static bool reserve(struct wbuf *w, size_t n)
{
	if (w->oom)
		return false;
	if (w->len + n > w->cap) {
		size_t cap = w->cap ? w->cap : 256;
		while (cap < w->len + n)
			cap *= 2;
		uint8_t *np = realloc(w->p, cap);
		if (!np) {
			w->oom = true;
			return false;
		}
		w->p = np;
		w->cap = cap;
	}
	return true;
}

static void put(struct wbuf *w, const void *v, size_t n)
{
	if (n && reserve(w, n)) {
		memcpy(w->p + w->len, v, n);
		w->len += n;
	}
}

/* Fixed-size writes copy a constant size, which the compiler inlines:
 * most of an image is these small fields. */
static void put_u32(struct wbuf *w, uint32_t v)
{
	if (reserve(w, sizeof(v))) {
		memcpy(w->p + w->len, &v, sizeof(v));
		w->len += sizeof(v);
	}
}

static void put_u64(struct wbuf *w, uint64_t v)
{
	if (reserve(w, sizeof(v))) {
		memcpy(w->p + w->len, &v, sizeof(v));
		w->len += sizeof(v);
	}
}

static void put_i32(struct wbuf *w, int32_t v)
{
	put_u32(w, (uint32_t)v);
}

static void put_u8(struct wbuf *w, bool v)
{
	if (reserve(w, 1))
		w->p[w->len++] = v ? 1 : 0;
}

static void put_str(struct wbuf *w, const char *s)
{
	size_t n = s ? strlen(s) : 0;

	if (s && n >= UINT32_MAX - 1) {
		w->oom = true;
		return;
	}
	put_u32(w, s ? (uint32_t)n + 1 : 0);
	put(w, s, n);
}

static void put_strs(struct wbuf *w, char *const *v, size_t n)
{
	put_u32(w, v ? (uint32_t)n : 0);
	for (size_t i = 0; v && i < n; i++)
		put_str(w, v[i]);
}

static void node_unref(struct gw_image_cache *c, struct vnode *v);

static void piece_release(struct gw_image_cache *c, struct piece *pc)
{
	for (size_t i = 0; i < pc->n_kids; i++)
		node_unref(c, pc->kids[i]);
	free(pc->kids);
	pc->kids = NULL;
	pc->n_kids = 0;
	if (pc->bytes) /* a listener's or a backend TLS value's hold private keys */
		explicit_bzero(pc->bytes, pc->len);
	free(pc->bytes);
	pc->bytes = NULL;
}

static void piece_free(struct gw_image_cache *c, struct piece *pc)
{
	if (!pc)
		return;
	piece_release(c, pc);
	free(pc);
}

static size_t slot_of(const struct gw_image_cache *c, uint64_t key)
{
	return (size_t)(key >> 7) & (c->cap - 1);
}

/* The live value of key, or NULL. */
static struct vnode *node_find(const struct gw_image_cache *c, uint64_t key)
{
	if (!c->cap)
		return NULL;
	for (size_t k = slot_of(c, key); c->slots[k]; k = (k + 1) & (c->cap - 1))
		if (c->slots[k] != TOMB && c->slots[k]->key == key)
			return c->slots[k];
	return NULL;
}

static bool table_grow(struct gw_image_cache *c)
{
	size_t cap = c->cap ? c->cap : 1024;
	struct vnode **v;

	while (2 * (c->live + 1) > cap / 2)
		cap *= 2;
	if (!(v = calloc(cap, sizeof(*v))))
		return false;
	for (size_t i = 0; i < c->cap; i++) {
		struct vnode *n = c->slots[i];
		if (!n || n == TOMB)
			continue;
		size_t k = (size_t)(n->key >> 7) & (cap - 1);
		while (v[k])
			k = (k + 1) & (cap - 1);
		v[k] = n;
	}
	free(c->slots);
	c->slots = v;
	c->cap = cap;
	c->used = c->live;
	return true;
}

static bool node_insert(struct gw_image_cache *c, struct vnode *n)
{
	if (2 * (c->used + 1) > c->cap && !table_grow(c))
		return false;
	if (c->n_added == c->cap_added) {
		size_t cap = c->cap_added ? 2 * c->cap_added : 64;
		struct vnode **v = realloc(c->added, cap * sizeof(*v));
		if (!v)
			return false;
		c->added = v;
		c->cap_added = cap;
	}
	size_t k = slot_of(c, n->key);
	while (c->slots[k] && c->slots[k] != TOMB)
		k = (k + 1) & (c->cap - 1);
	if (!c->slots[k])
		c->used++;
	c->slots[k] = n;
	c->live++;
	c->added[c->n_added++] = n;
	return true;
}

/* Drops one reference; the last takes the value out of the table (its
 * memory goes when the sorted list is made again). */
static void node_unref(struct gw_image_cache *c, struct vnode *v)
{
	if (--v->refs)
		return;
	for (size_t k = slot_of(c, v->key);; k = (k + 1) & (c->cap - 1)) {
		if (c->slots[k] == v) {
			c->slots[k] = TOMB;
			break;
		}
	}
	c->live--;
	c->dirty = true;
	piece_release(c, &v->body);
}

/* Drops what w made: its buffers and its references. */
static void discard(struct wbuf *w)
{
	for (size_t i = 0; i < w->n_kids; i++)
		node_unref(w->c, w->kids[i]);
	free(w->kids);
	free(w->p);
	w->kids = NULL;
	w->p = NULL;
}

/* Makes w's bytes and named values into *pc (w's buffers move to it);
 * false (and w's work dropped) when w failed. */
static bool piece_take(struct wbuf *w, struct piece *pc)
{
	if (w->oom || w->err) {
		discard(w);
		return false;
	}
	*pc = (struct piece){.bytes = w->p, .len = w->len, .kids = w->kids, .n_kids = w->n_kids};
	pc->hash = hash_wide(pc->bytes, pc->len);
	return true;
}

static void begin(struct wbuf *w, struct gw_image_cache *c, unsigned depth)
{
	*w = (struct wbuf){.c = c, .depth = depth};
}

static void backends_body(struct wbuf *w, const struct snap_backend *b, size_t n);
static void filters_body(struct wbuf *w, const struct snap_filter *f, size_t n);
static void backend_tls_body(struct wbuf *w, const struct snap_backend_tls *t);

/* The value (p, n) of kind, made when no equal one exists: one reference
 * for the caller. NULL with w->oom or w->err set on failure. */
static struct vnode *value_of(struct wbuf *w, const void *p, size_t n, enum ref_kind kind)
{
	struct wbuf v;
	struct vnode *node;
	uint64_t key;

	if (w->depth >= MAX_DEPTH) {
		w->err = -EINVAL;
		return NULL;
	}
	begin(&v, w->c, w->depth + 1);
	put_u32(&v, kind);
	put_u64(&v, 0); /* the key, once the bytes are known */
	switch (kind) {
	case REF_BACKENDS: backends_body(&v, p, n); break;
	case REF_FILTERS: filters_body(&v, p, n); break;
	case REF_BACKEND_TLS: backend_tls_body(&v, p); break;
	}
	if (v.oom || v.err) {
		w->oom |= v.oom;
		w->err = v.err;
		discard(&v);
		return NULL;
	}
	key = value_key(kind, v.p + VALUE_HEAD, v.len - VALUE_HEAD);
	memcpy(v.p + 4, &key, sizeof(key));
	if ((node = node_find(w->c, key))) {
		bool same = node->body.len == v.len && !memcmp(node->body.bytes, v.p, v.len);
		discard(&v);
		if (!same) {
			w->err = -EEXIST; /* two values, one key: odds of 2^-64 */
			return NULL;
		}
		node->refs++;
		return node;
	}
	if (!(node = malloc(sizeof(*node)))) {
		discard(&v);
		w->oom = true;
		return NULL;
	}
	piece_take(&v, &node->body);
	node->key = key;
	node->refs = 1;
	if (!node_insert(w->c, node)) {
		piece_release(w->c, &node->body);
		free(node);
		w->oom = true;
		return NULL;
	}
	return node;
}

/* Names the value (p, n) of kind by its key (0: none). */
static void put_ref(struct wbuf *w, const void *p, size_t n, enum ref_kind kind)
{
	struct vnode *v;

	if (!p || !n) {
		put_u64(w, 0);
		return;
	}
	if (w->oom || w->err)
		return;
	if (w->n_kids == w->cap_kids) {
		size_t cap = w->cap_kids ? 2 * w->cap_kids : 4;
		struct vnode **k = realloc(w->kids, cap * sizeof(*k));
		if (!k) {
			w->oom = true;
			return;
		}
		w->kids = k;
		w->cap_kids = cap;
	}
	if (!(v = value_of(w, p, n, kind)))
		return;
	w->kids[w->n_kids++] = v;
	put_u64(w, v->key);
}

/* -------- encoding: fields -------- */

static void put_backends(struct wbuf *w, const struct snap_backend *b, size_t n);

static void put_header_mod(struct wbuf *w, const struct snap_header_mod *h)
{
	put_u32(w, (uint32_t)h->n_set);
	for (size_t i = 0; i < h->n_set; i++) {
		put_str(w, h->set[i].name);
		put_str(w, h->set[i].value);
	}
	put_u32(w, (uint32_t)h->n_add);
	for (size_t i = 0; i < h->n_add; i++) {
		put_str(w, h->add[i].name);
		put_str(w, h->add[i].value);
	}
	put_strs(w, h->remove, h->n_remove);
}

static void filters_body(struct wbuf *w, const struct snap_filter *f, size_t n)
{
	put_u32(w, (uint32_t)n);
	for (size_t i = 0; i < n; i++) {
		put_u32(w, f[i].type);
		switch (f[i].type) {
		case SNAP_F_REQ_HEADER:
		case SNAP_F_RESP_HEADER:
			put_header_mod(w, &f[i].u.header);
			break;
		case SNAP_F_REDIRECT:
			put_str(w, f[i].u.redirect.scheme);
			put_str(w, f[i].u.redirect.hostname);
			put_i32(w, f[i].u.redirect.port);
			put_u32(w, f[i].u.redirect.path_type);
			put_str(w, f[i].u.redirect.path);
			put_i32(w, f[i].u.redirect.status);
			break;
		case SNAP_F_REWRITE:
			put_str(w, f[i].u.rewrite.hostname);
			put_u32(w, f[i].u.rewrite.path_type);
			put_str(w, f[i].u.rewrite.path);
			break;
		case SNAP_F_MIRROR:
			put_backends(w, f[i].u.mirror.backend, 1);
			put_u32(w, f[i].u.mirror.numerator);
			put_u32(w, f[i].u.mirror.denominator);
			break;
		case SNAP_F_CORS: {
			const struct snap_cors *c = &f[i].u.cors;
			put_strs(w, c->allow_origins, c->n_allow_origins);
			put_u8(w, c->allow_credentials);
			put_strs(w, c->allow_methods, c->n_allow_methods);
			put_strs(w, c->allow_headers, c->n_allow_headers);
			put_strs(w, c->expose_headers, c->n_expose_headers);
			put_i32(w, c->max_age_s);
			break;
		}
		}
	}
}

static void put_filters(struct wbuf *w, const struct snap_filter *f, size_t n)
{
	put_ref(w, f, n, REF_FILTERS);
}

static void backend_tls_body(struct wbuf *w, const struct snap_backend_tls *t)
{
	put_str(w, t->sni);
	put_str(w, t->ca_pem);
	put_u8(w, t->use_system_cas);
	put_strs(w, t->sans, t->n_sans);
	put_str(w, t->client_cert_pem);
	put_str(w, t->client_key_pem);
}

static void put_backend_tls(struct wbuf *w, const struct snap_backend_tls *t)
{
	put_ref(w, t, 1, REF_BACKEND_TLS);
}

static void backends_body(struct wbuf *w, const struct snap_backend *b, size_t n)
{
	put_u32(w, (uint32_t)n);
	for (size_t i = 0; i < n; i++) {
		put_str(w, b[i].name);
		put_u32(w, b[i].weight);
		put_i32(w, b[i].invalid_status);
		put_u32(w, b[i].proto);
		put_u32(w, (uint32_t)b[i].n_endpoints);
		for (size_t e = 0; e < b[i].n_endpoints; e++) {
			put_str(w, b[i].endpoints[e].addr);
			put_u32(w, b[i].endpoints[e].port);
		}
		put_backend_tls(w, b[i].tls);
		put_filters(w, b[i].filters, b[i].n_filters);
	}
}

static void put_backends(struct wbuf *w, const struct snap_backend *b, size_t n)
{
	put_ref(w, b, n, REF_BACKENDS);
}

static void put_kv(struct wbuf *w, const struct snap_kv_match *v, size_t n)
{
	put_u32(w, v ? (uint32_t)n : 0);
	for (size_t i = 0; v && i < n; i++) {
		put_u32(w, v[i].type);
		put_str(w, v[i].name);
		put_str(w, v[i].value);
	}
}

static void put_rule(struct wbuf *w, const struct snap_http_rule *r)
{
	put_str(w, r->route);
	put_str(w, r->rule_name);
	put_u32(w, r->rule_index);
	put_u8(w, r->grpc);
	put_strs(w, r->hostnames, r->n_hostnames);
	put_u32(w, r->match.path_type);
	put_str(w, r->match.path);
	put_str(w, r->match.method);
	put_kv(w, r->match.headers, r->match.n_headers);
	put_kv(w, r->match.query, r->match.n_query);
	put_filters(w, r->filters, r->n_filters);
	put_backends(w, r->backends, r->n_backends);
	put_u32(w, r->request_timeout_ms);
	put_u32(w, r->backend_request_timeout_ms);
	put_u32(w, r->retry.codes ? (uint32_t)r->retry.n_codes : 0);
	for (size_t i = 0; r->retry.codes && i < r->retry.n_codes; i++)
		put_i32(w, r->retry.codes[i]);
	put_i32(w, r->retry.attempts);
	put_u32(w, r->retry.backoff_ms);
}

/* A listener's fields up to its HTTP rules, and their count. */
static void put_listener_head(struct wbuf *w, const struct snap_listener *l)
{
	put_str(w, l->gateway);
	put_str(w, l->name);
	put_u32(w, l->proto);
	put_str(w, l->hostname);
	put_u32(w, l->tls_mode);
	put_u32(w, (uint32_t)l->n_certs);
	for (size_t i = 0; i < l->n_certs; i++) {
		put_str(w, l->certs[i].cert_pem);
		put_str(w, l->certs[i].key_pem);
		put_str(w, l->certs[i].name);
	}
	put_u32(w, l->client_auth);
	put_str(w, l->client_ca_pem);
	put_u32(w, (uint32_t)l->n_http_rules);
}

/* A listener's fields after its HTTP rules. */
static void put_listener_tail(struct wbuf *w, const struct snap_listener *l)
{
	put_u32(w, (uint32_t)l->n_tls_routes);
	for (size_t i = 0; i < l->n_tls_routes; i++) {
		put_str(w, l->tls_routes[i].route);
		put_strs(w, l->tls_routes[i].hostnames, l->tls_routes[i].n_hostnames);
		put_backends(w, l->tls_routes[i].backends, l->tls_routes[i].n_backends);
	}
	put_str(w, l->l4_route);
	put_backends(w, l->l4_backends, l->n_l4_backends);
}


/* -------- encoding: the image from kept pieces --------
 *
 * An incremental reconcile hands over a snapshot whose rules are, but for
 * the changed routes', copies of the last one's, pointing at the same
 * compiled data. A rule's piece is taken from the last image when the rule
 * is field for field the same (pointers equal: the same immutable data,
 * kept alive by the cache's references to the last snapshot's arenas, so
 * an address cannot have been reused for other data). */

/* A rule's size with the fields same_rule compares (LP64, ILP32): a new
 * field must be compared there before a piece is taken for it. */
_Static_assert(sizeof(struct snap_http_rule) == (sizeof(void *) == 8 ? 160 : 92),
	       "same_rule compares every field of struct snap_http_rule");

static bool same_rule(const struct snap_http_rule *a, const struct snap_http_rule *b)
{
	return a->route == b->route && a->rule_name == b->rule_name &&
	       a->rule_index == b->rule_index && a->grpc == b->grpc &&
	       a->hostnames == b->hostnames && a->n_hostnames == b->n_hostnames &&
	       a->match.path_type == b->match.path_type && a->match.path == b->match.path &&
	       a->match.method == b->match.method && a->match.headers == b->match.headers &&
	       a->match.n_headers == b->match.n_headers && a->match.query == b->match.query &&
	       a->match.n_query == b->match.n_query && a->filters == b->filters &&
	       a->n_filters == b->n_filters && a->backends == b->backends &&
	       a->n_backends == b->n_backends && a->request_timeout_ms == b->request_timeout_ms &&
	       a->backend_request_timeout_ms == b->backend_request_timeout_ms &&
	       a->retry.codes == b->retry.codes && a->retry.n_codes == b->retry.n_codes &&
	       a->retry.attempts == b->retry.attempts && a->retry.backoff_ms == b->retry.backoff_ms;
}

/* w made into a new piece, or NULL with *err set. */
static struct piece *new_piece(struct wbuf *w, int *err)
{
	struct piece *pc = malloc(sizeof(*pc));

	if (w->len > UINT32_MAX && !w->err)
		w->err = -E2BIG;
	if (!pc || w->oom || w->err) {
		*err = !pc || w->oom ? -ENOMEM : w->err;
		discard(w);
		free(pc);
		return NULL;
	}
	piece_take(w, pc);
	return pc;
}

/* How far past the next unused piece of the last image a rule's piece is
 * looked for: a few routes changed, each moving a rule or two. */
#define LOOKAHEAD 8

/* The piece of rule r: taken from old (the same listener in the last
 * image) or made. NULL with *err set on failure. */
static struct piece *rule_piece(struct gw_image_cache *c, struct lcache *old, size_t *j,
				const struct snap_http_rule *r, int *err)
{
	struct wbuf w;

	for (size_t d = 0; old && d < LOOKAHEAD && *j + d < old->n; d++) {
		struct piece *pc = old->pieces[*j + d];
		if (pc && same_rule(&old->rules[*j + d], r)) {
			old->pieces[*j + d] = NULL;
			*j += d + 1;
			return pc;
		}
	}
	begin(&w, c, 0);
	put_rule(&w, r);
	return new_piece(&w, err);
}

static void lcache_free(struct gw_image_cache *c, struct lcache *v, size_t n)
{
	for (size_t i = 0; v && i < n; i++) {
		for (size_t k = 0; v[i].pieces && k < v[i].n; k++)
			piece_free(c, v[i].pieces[k]);
		free(v[i].pieces);
		piece_free(c, v[i].head);
		piece_free(c, v[i].tail);
	}
	free(v);
}

static int cmp_node(const void *a, const void *b)
{
	uint64_t x = (*(struct vnode *const *)a)->key, y = (*(struct vnode *const *)b)->key;
	return (x > y) - (x < y);
}

/* The sorted list again: without the values that died (freed here), with
 * those made since. false on ENOMEM (the list stays as it was). */
static bool resort(struct gw_image_cache *c)
{
	size_t na = 0, i = 0, j = 0, k = 0;
	struct vnode **v;

	if (!c->dirty && !c->n_added)
		return true;
	for (size_t x = 0; x < c->n_added; x++) {
		if (c->added[x]->refs)
			c->added[na++] = c->added[x];
		else
			free(c->added[x]);
	}
	c->n_added = na;
	if (!(v = malloc((c->live ? c->live : 1) * sizeof(*v))))
		return false;
	if (na > 1)
		qsort(c->added, na, sizeof(*c->added), cmp_node);
	while (i < c->n_sorted || j < na) {
		if (i < c->n_sorted && !c->sorted[i]->refs) {
			free(c->sorted[i++]);
			continue;
		}
		if (j == na || (i < c->n_sorted && c->sorted[i]->key < c->added[j]->key))
			v[k++] = c->sorted[i++];
		else
			v[k++] = c->added[j++];
	}
	free(c->sorted);
	c->sorted = v;
	c->n_sorted = k;
	c->n_added = 0;
	c->dirty = false;
	return true;
}

static uint64_t head_hash(uint32_t n_records)
{
	uint32_t h[4] = {IMAGE_MAGIC, IMAGE_VERSION, IMAGE_ORDER, n_records};

	return hash_wide(h, sizeof(h));
}

struct gw_image_cache *gw_image_cache_new(void)
{
	return calloc(1, sizeof(struct gw_image_cache));
}

/* Drops the kept pieces and snapshot memory (values die with them). */
static void cache_clear(struct gw_image_cache *c)
{
	lcache_free(c, c->lis, c->n_lis);
	piece_free(c, c->top);
	piece_free(c, c->sockets);
	c->lis = NULL;
	c->n_lis = 0;
	c->top = c->sockets = NULL;
	arena_unref(c->arena);
	arena_unref(c->shared);
	c->arena = c->shared = NULL;
	c->ready = false;
}

void gw_image_cache_free(struct gw_image_cache *c)
{
	if (!c)
		return;
	cache_clear(c);
	/* every value died with the pieces: free what the lists hold */
	for (size_t i = 0; i < c->n_sorted; i++)
		free(c->sorted[i]);
	for (size_t i = 0; i < c->n_added; i++)
		free(c->added[i]);
	free(c->sorted);
	free(c->added);
	free(c->slots);
	free(c);
}

static void put_sockets(struct wbuf *w, const struct snapshot *snap)
{
	put_u32(w, (uint32_t)snap->n_sockets);
	for (size_t i = 0; i < snap->n_sockets; i++) {
		const struct snap_socket *s = &snap->sockets[i];
		put_str(w, s->addr);
		put_u32(w, s->port);
		put_u32(w, s->transport);
		put_u32(w, (uint32_t)s->n_listeners);
		for (size_t k = 0; k < s->n_listeners; k++)
			put_u32(w, (uint32_t)(s->listeners[k] - snap->listeners));
	}
}

/* The pieces of snap's listeners and sockets into now and *sockets. */
static int make_pieces(struct gw_image_cache *c, const struct snapshot *snap, struct lcache *now,
		       struct piece **sockets)
{
	struct wbuf w;
	int err = 0;

	for (size_t i = 0; i < snap->n_listeners; i++) {
		const struct snap_listener *l = &snap->listeners[i];
		struct lcache *old = i < c->n_lis ? &c->lis[i] : NULL;
		size_t j = 0;

		begin(&w, c, 0);
		put_listener_head(&w, l);
		if (!(now[i].head = new_piece(&w, &err)))
			return err;
		now[i].rules = l->http_rules;
		now[i].pieces =
			calloc(l->n_http_rules ? l->n_http_rules : 1, sizeof(struct piece *));
		if (!now[i].pieces)
			return -ENOMEM;
		now[i].n = l->n_http_rules;
		for (size_t k = 0; k < l->n_http_rules; k++)
			if (!(now[i].pieces[k] = rule_piece(c, old, &j, &l->http_rules[k], &err)))
				return err;
		begin(&w, c, 0);
		put_listener_tail(&w, l);
		if (!(now[i].tail = new_piece(&w, &err)))
			return err;
	}
	begin(&w, c, 0);
	put_sockets(&w, snap);
	*sockets = new_piece(&w, &err);
	return err;
}

int gw_image_cache_update(struct gw_image_cache *c, const struct snapshot *snap,
			  char *const *gateways, char *const *addresses, size_t n_gateways,
			  uint64_t *digest)
{
	size_t nl = snap->n_listeners, n_records, len;
	struct lcache *now = calloc(nl ? nl : 1, sizeof(*now));
	struct piece *sockets = NULL;
	struct wbuf w;
	uint64_t h;
	int err = now ? make_pieces(c, snap, now, &sockets) : -ENOMEM;

	/* The new pieces hold their values: the last image's may go, and
	 * with them the last snapshot's memory once this one's is held. */
	if (!err && snap->arena)
		arena_ref(snap->arena);
	if (!err && snap->shared)
		arena_ref(snap->shared);
	cache_clear(c);
	if (err) {
		lcache_free(c, now, nl);
		piece_free(c, sockets);
		return err;
	}
	c->lis = now;
	c->n_lis = nl;
	c->sockets = sockets;
	c->arena = snap->arena;
	c->shared = snap->shared;
	if (!resort(c))
		return -ENOMEM;
	begin(&w, c, 0);
	put_u32(&w, (uint32_t)n_gateways);
	for (size_t i = 0; i < n_gateways; i++) {
		put_str(&w, gateways[i]);
		put_str(&w, addresses[i]);
	}
	put_u32(&w, (uint32_t)c->n_sorted);
	put_u32(&w, (uint32_t)nl);
	if (!(c->top = new_piece(&w, &err)))
		return err;

	n_records = 2 + c->n_sorted;
	len = IMAGE_HEAD + c->top->len + sockets->len + 8;
	for (size_t i = 0; i < nl; i++)
		n_records += 2 + now[i].n;
	if (n_records > UINT32_MAX)
		return -E2BIG;
	h = fold(head_hash((uint32_t)n_records), c->top->hash);
	for (size_t i = 0; i < c->n_sorted; i++) {
		h = fold(h, c->sorted[i]->body.hash);
		len += 4 + c->sorted[i]->body.len;
	}
	for (size_t i = 0; i < nl; i++) {
		h = fold(h, now[i].head->hash);
		len += 8 + now[i].head->len + now[i].tail->len;
		for (size_t k = 0; k < now[i].n; k++) {
			h = fold(h, now[i].pieces[k]->hash);
			len += 4 + now[i].pieces[k]->len;
		}
		h = fold(h, now[i].tail->hash);
	}
	c->digest = *digest = fold(h, sockets->hash);
	c->n_records = n_records;
	c->image_len = len;
	c->ready = true;
	return 0;
}

static void put_record(uint8_t **at, const struct piece *pc)
{
	uint32_t n = (uint32_t)pc->len;

	memcpy(*at, &n, sizeof(n));
	memcpy(*at + sizeof(n), pc->bytes, pc->len);
	*at += sizeof(n) + pc->len;
}

int gw_image_cache_bytes(struct gw_image_cache *c, uint8_t **out, size_t *len)
{
	uint32_t head[4] = {IMAGE_MAGIC, IMAGE_VERSION, IMAGE_ORDER, (uint32_t)c->n_records};
	uint8_t *at;

	*out = NULL;
	*len = 0;
	if (!c->ready)
		return -EINVAL;
	if (!(at = *out = malloc(c->image_len)))
		return -ENOMEM;
	memcpy(at, head, sizeof(head));
	at += sizeof(head);
	put_record(&at, c->top);
	for (size_t i = 0; i < c->n_sorted; i++)
		put_record(&at, &c->sorted[i]->body);
	for (size_t i = 0; i < c->n_lis; i++) {
		put_record(&at, c->lis[i].head);
		for (size_t k = 0; k < c->lis[i].n; k++)
			put_record(&at, c->lis[i].pieces[k]);
		put_record(&at, c->lis[i].tail);
	}
	put_record(&at, c->sockets);
	*len = c->image_len;
	return 0;
}

uint64_t gw_image_digest(const uint8_t *p, size_t len)
{
	uint32_t head[4], n;
	uint64_t h;
	size_t off = IMAGE_HEAD;

	if (len < IMAGE_HEAD)
		return hash_wide(p, len);
	memcpy(head, p, sizeof(head));
	if (head[0] != IMAGE_MAGIC || head[1] != IMAGE_VERSION || head[2] != IMAGE_ORDER)
		return hash_wide(p, len); /* not an image of this format */
	h = head_hash(head[3]);
	for (uint32_t i = 0; i < head[3]; i++) {
		if (len - off < sizeof(n))
			return hash_wide(p, len);
		memcpy(&n, p + off, sizeof(n));
		off += sizeof(n);
		if (n > len - off)
			return hash_wide(p, len);
		h = fold(h, hash_wide(p + off, n));
		off += n;
	}
	return off == len ? h : hash_wide(p, len);
}

int gw_image_encode(const struct snapshot *snap, char *const *gateways, char *const *addresses,
		    size_t n_gateways, uint8_t **out, size_t *len)
{
	struct gw_image_cache *c = gw_image_cache_new();
	uint64_t digest;
	int err;

	*out = NULL;
	*len = 0;
	if (!c)
		return -ENOMEM;
	err = gw_image_cache_update(c, snap, gateways, addresses, n_gateways, &digest);
	if (!err)
		err = gw_image_cache_bytes(c, out, len);
	gw_image_cache_free(c);
	return err;
}

void gw_image_buf_free(uint8_t *p, size_t len)
{
	if (!p)
		return;
	explicit_bzero(p, len);
	free(p);
}
/* -------- decoding -------- */

/* A value record, found by key; state 0 not decoded, 1 being decoded, 2
 * decoded (val, n). */
struct vent {
	uint64_t key;
	enum ref_kind kind;
	int state;
	const uint8_t *p; /* its bytes after kind and key */
	size_t len;
	void *val;
	size_t n;
};

/* A reader of one record (or of the header and the record frames). */
struct rbuf {
	const uint8_t *p;
	size_t len, off;
	bool bad; /* malformed or truncated */
	bool oom;
	unsigned depth; /* of values being decoded */
	struct arena *a;
	struct vent *v; /* sorted by key */
	size_t n_v;
};

static bool take(struct rbuf *r, void *v, size_t n)
{
	if (r->bad || r->oom || r->len - r->off < n) {
		r->bad = r->bad || !r->oom;
		memset(v, 0, n);
		return false;
	}
	memcpy(v, r->p + r->off, n);
	r->off += n;
	return true;
}

static uint32_t get_u32(struct rbuf *r)
{
	uint32_t v;
	take(r, &v, sizeof(v));
	return v;
}

static uint64_t get_u64(struct rbuf *r)
{
	uint64_t v;
	take(r, &v, sizeof(v));
	return v;
}

static int32_t get_i32(struct rbuf *r)
{
	int32_t v;
	take(r, &v, sizeof(v));
	return v;
}

static bool get_u8(struct rbuf *r)
{
	uint8_t v;
	take(r, &v, 1);
	if (v > 1)
		r->bad = true;
	return v == 1;
}

/* An enum value below limit (else the image is bad and 0 is returned). */
static uint32_t get_enum(struct rbuf *r, uint32_t limit)
{
	uint32_t v = get_u32(r);
	if (v >= limit) {
		r->bad = true;
		return 0;
	}
	return v;
}

/* A count of elements that take at least min_bytes each: never more than
 * the bytes left can hold, so a bad count cannot make us allocate. */
static size_t get_count(struct rbuf *r, size_t min_bytes)
{
	uint32_t n = get_u32(r);
	if (r->bad || r->oom)
		return 0;
	if ((uint64_t)n * min_bytes > r->len - r->off) {
		r->bad = true;
		return 0;
	}
	return n;
}

static void *alloc_n(struct rbuf *r, size_t n, size_t size)
{
	if (!n || r->bad || r->oom)
		return NULL;
	void *p = arena_zalloc(r->a, n * size);
	if (!p)
		r->oom = true;
	return p;
}

/*
 * True when p holds n bytes of UTF-8 without NUL: every string we write
 * came from JSON (which yyjson validated) or PEM text, so anything else is
 * not an image of ours, and would later fail as JSON for the UI.
 */
static bool utf8_text(const uint8_t *p, size_t n)
{
	size_t i = 0;

	while (i < n) {
		uint64_t w;
		if (n - i >= 8) { /* the usual case: eight ASCII bytes at once */
			memcpy(&w, p + i, 8);
			if (!(w & 0x8080808080808080ULL) &&
			    !((w - 0x0101010101010101ULL) & ~w & 0x8080808080808080ULL)) {
				i += 8;
				continue;
			}
		}
		uint8_t c = p[i];
		size_t len = c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3
					: (c & 0xf8) == 0xf0 ? 4 : 0;
		if (c == 0 || len == 0 || len > n - i)
			return false;
		uint32_t cp = len == 1 ? c : len == 2 ? c & 0x1f : len == 3 ? c & 0x0f : c & 0x07;
		for (size_t k = 1; k < len; k++) {
			if ((p[i + k] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (p[i + k] & 0x3f);
		}
		/* shortest form only, no surrogates, nothing past U+10FFFF */
		if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) ||
		    (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) || (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += len;
	}
	return true;
}

static char *get_str(struct rbuf *r)
{
	uint32_t n = get_u32(r);
	char *s;

	if (n == 0 || r->bad || r->oom)
		return NULL;
	n--;
	if (n > r->len - r->off || !utf8_text(r->p + r->off, n)) {
		r->bad = true;
		return NULL;
	}
	s = arena_strndup(r->a, (const char *)r->p + r->off, n);
	if (!s)
		r->oom = true;
	r->off += n;
	return s;
}

/* Copies a string into a fixed field (endpoint and socket addresses). */
static void get_fixed(struct rbuf *r, char *dst, size_t size)
{
	uint32_t n = get_u32(r);

	if (n == 0 || n - 1 >= size || n - 1 > r->len - r->off || !utf8_text(r->p + r->off, n - 1)) {
		r->bad = true;
		return;
	}
	memcpy(dst, r->p + r->off, n - 1);
	dst[n - 1] = '\0';
	r->off += n - 1;
}

static char **get_strs(struct rbuf *r, size_t *n)
{
	*n = get_count(r, 4);
	char **v = alloc_n(r, *n, sizeof(char *));
	for (size_t i = 0; v && i < *n; i++)
		v[i] = get_str(r);
	if (!v)
		*n = 0;
	return v;
}

static struct snap_backend *get_backends(struct rbuf *r, size_t *n);
static struct snap_filter *get_filters(struct rbuf *r, size_t *n);
static struct snap_backend_tls *get_backend_tls(struct rbuf *r);

static void get_headers(struct rbuf *r, struct snap_header **v, size_t *n)
{
	*n = get_count(r, 8);
	*v = alloc_n(r, *n, sizeof(**v));
	for (size_t i = 0; *v && i < *n; i++) {
		(*v)[i].name = get_str(r);
		(*v)[i].value = get_str(r);
	}
	if (!*v)
		*n = 0;
}

static void get_filter(struct rbuf *r, struct snap_filter *f)
{
	size_t one;

	f->type = (enum snap_filter_type)get_enum(r, SNAP_F_CORS + 1);
	switch (f->type) {
	case SNAP_F_REQ_HEADER:
	case SNAP_F_RESP_HEADER:
		get_headers(r, &f->u.header.set, &f->u.header.n_set);
		get_headers(r, &f->u.header.add, &f->u.header.n_add);
		f->u.header.remove = get_strs(r, &f->u.header.n_remove);
		break;
	case SNAP_F_REDIRECT:
		f->u.redirect.scheme = get_str(r);
		f->u.redirect.hostname = get_str(r);
		f->u.redirect.port = get_i32(r);
		f->u.redirect.path_type = (enum snap_path_mod)get_enum(r, SNAP_PATH_PREFIX + 1);
		f->u.redirect.path = get_str(r);
		f->u.redirect.status = get_i32(r);
		break;
	case SNAP_F_REWRITE:
		f->u.rewrite.hostname = get_str(r);
		f->u.rewrite.path_type = (enum snap_path_mod)get_enum(r, SNAP_PATH_PREFIX + 1);
		f->u.rewrite.path = get_str(r);
		break;
	case SNAP_F_MIRROR:
		f->u.mirror.backend = get_backends(r, &one);
		if (f->u.mirror.backend && one != 1)
			r->bad = true;
		f->u.mirror.numerator = get_u32(r);
		f->u.mirror.denominator = get_u32(r);
		break;
	case SNAP_F_CORS: {
		struct snap_cors *c = &f->u.cors;
		c->allow_origins = get_strs(r, &c->n_allow_origins);
		c->allow_credentials = get_u8(r);
		c->allow_methods = get_strs(r, &c->n_allow_methods);
		c->allow_headers = get_strs(r, &c->n_allow_headers);
		c->expose_headers = get_strs(r, &c->n_expose_headers);
		c->max_age_s = get_i32(r);
		break;
	}
	}
}

static struct snap_filter *filters_dec(struct rbuf *r, size_t *n)
{
	struct snap_filter *v;

	*n = get_count(r, 4);
	if (!*n)
		r->bad = true; /* an empty array is named by key 0 */
	v = alloc_n(r, *n, sizeof(*v));
	for (size_t i = 0; v && i < *n; i++)
		get_filter(r, &v[i]);
	if (!v)
		*n = 0;
	return v;
}

static struct snap_backend_tls *backend_tls_dec(struct rbuf *r)
{
	struct snap_backend_tls *t = alloc_n(r, 1, sizeof(*t));

	if (!t)
		return NULL;
	t->sni = get_str(r);
	t->ca_pem = get_str(r);
	t->use_system_cas = get_u8(r);
	t->sans = get_strs(r, &t->n_sans);
	t->client_cert_pem = get_str(r);
	t->client_key_pem = get_str(r);
	return t;
}

static struct snap_backend *backends_dec(struct rbuf *r, size_t *n)
{
	struct snap_backend *v;

	*n = get_count(r, 36);
	if (!*n)
		r->bad = true;
	v = alloc_n(r, *n, sizeof(*v));
	for (size_t i = 0; v && i < *n; i++) {
		struct snap_backend *b = &v[i];
		b->name = get_str(r);
		b->weight = get_u32(r);
		b->invalid_status = get_i32(r);
		b->proto = (enum snap_app_proto)get_enum(r, SNAP_APP_H2 + 1);
		b->n_endpoints = get_count(r, 8);
		b->endpoints = alloc_n(r, b->n_endpoints, sizeof(*b->endpoints));
		for (size_t e = 0; b->endpoints && e < b->n_endpoints; e++) {
			get_fixed(r, b->endpoints[e].addr, sizeof(b->endpoints[e].addr));
			uint32_t port = get_u32(r);
			if (port > 65535)
				r->bad = true;
			b->endpoints[e].port = (uint16_t)port;
		}
		if (!b->endpoints)
			b->n_endpoints = 0;
		b->tls = get_backend_tls(r);
		b->filters = get_filters(r, &b->n_filters);
	}
	if (!v)
		*n = 0;
	return v;
}

static int cmp_vent(const void *k, const void *e)
{
	uint64_t x = *(const uint64_t *)k, y = ((const struct vent *)e)->key;
	return (x > y) - (x < y);
}

/*
 * The value a key names, of kind: decoded the first time it is named
 * (from its own record, in a reader of its own), the same pointer after.
 * NULL and *n 0 for key 0. A key not among the values, of another kind,
 * or naming a value being decoded (a cycle) makes the image bad.
 */
static void *get_val(struct rbuf *r, enum ref_kind kind, size_t *n)
{
	uint64_t key = get_u64(r);
	struct vent *e;
	struct rbuf sub;

	*n = 0;
	if (!key || r->bad || r->oom)
		return NULL;
	e = bsearch(&key, r->v, r->n_v, sizeof(*r->v), cmp_vent);
	if (!e || e->kind != kind || e->state == 1 || r->depth >= MAX_DEPTH) {
		r->bad = true;
		return NULL;
	}
	if (e->state == 2) {
		*n = e->n;
		return e->val;
	}
	e->state = 1;
	sub = (struct rbuf){.p = e->p,
			    .len = e->len,
			    .a = r->a,
			    .v = r->v,
			    .n_v = r->n_v,
			    .depth = r->depth + 1};
	switch (kind) {
	case REF_BACKENDS: e->val = backends_dec(&sub, &e->n); break;
	case REF_FILTERS: e->val = filters_dec(&sub, &e->n); break;
	case REF_BACKEND_TLS:
		e->val = backend_tls_dec(&sub);
		e->n = 1;
		break;
	}
	r->bad |= sub.bad || sub.off != sub.len;
	r->oom |= sub.oom;
	e->state = 2;
	*n = e->n;
	return r->bad || r->oom ? NULL : e->val;
}

static struct snap_filter *get_filters(struct rbuf *r, size_t *n)
{
	return get_val(r, REF_FILTERS, n);
}

static struct snap_backend_tls *get_backend_tls(struct rbuf *r)
{
	size_t n;
	return get_val(r, REF_BACKEND_TLS, &n);
}

static struct snap_backend *get_backends(struct rbuf *r, size_t *n)
{
	return get_val(r, REF_BACKENDS, n);
}

static void get_kv(struct rbuf *r, struct snap_kv_match **v, size_t *n)
{
	*n = get_count(r, 12);
	*v = alloc_n(r, *n, sizeof(**v));
	for (size_t i = 0; *v && i < *n; i++) {
		(*v)[i].type = (enum snap_str_match)get_enum(r, SNAP_SM_REGEX + 1);
		(*v)[i].name = get_str(r);
		(*v)[i].value = get_str(r);
	}
	if (!*v)
		*n = 0;
}

static void get_rule(struct rbuf *r, struct snap_http_rule *h)
{
	h->route = get_str(r);
	h->rule_name = get_str(r);
	h->rule_index = get_u32(r);
	h->grpc = get_u8(r);
	h->hostnames = get_strs(r, &h->n_hostnames);
	h->match.path_type = (enum snap_path_match)get_enum(r, SNAP_PM_REGEX + 1);
	h->match.path = get_str(r);
	h->match.method = get_str(r);
	get_kv(r, &h->match.headers, &h->match.n_headers);
	get_kv(r, &h->match.query, &h->match.n_query);
	h->filters = get_filters(r, &h->n_filters);
	h->backends = get_backends(r, &h->n_backends);
	h->request_timeout_ms = get_u32(r);
	h->backend_request_timeout_ms = get_u32(r);
	h->retry.n_codes = get_count(r, 4);
	h->retry.codes = alloc_n(r, h->retry.n_codes, sizeof(int));
	for (size_t i = 0; h->retry.codes && i < h->retry.n_codes; i++)
		h->retry.codes[i] = get_i32(r);
	if (!h->retry.codes)
		h->retry.n_codes = 0;
	h->retry.attempts = get_i32(r);
	h->retry.backoff_ms = get_u32(r);
}

static void get_listener_head(struct rbuf *r, struct snap_listener *l)
{
	l->gateway = get_str(r);
	l->name = get_str(r);
	l->proto = (enum snap_proto)get_enum(r, SNAP_P_UDP + 1);
	l->hostname = get_str(r);
	l->tls_mode = (enum snap_tls_mode)get_enum(r, SNAP_TLS_PASSTHROUGH + 1);
	l->n_certs = get_count(r, 12);
	l->certs = alloc_n(r, l->n_certs, sizeof(*l->certs));
	for (size_t i = 0; l->certs && i < l->n_certs; i++) {
		l->certs[i].cert_pem = get_str(r);
		l->certs[i].key_pem = get_str(r);
		l->certs[i].name = get_str(r);
	}
	if (!l->certs)
		l->n_certs = 0;
	l->client_auth = (enum snap_client_auth)get_enum(r, SNAP_CA_ALLOW_INSECURE + 1);
	l->client_ca_pem = get_str(r);
	l->n_http_rules = get_u32(r); /* one record each: the caller checks */
}

static void get_listener_tail(struct rbuf *r, struct snap_listener *l)
{
	l->n_tls_routes = get_count(r, 16);
	l->tls_routes = alloc_n(r, l->n_tls_routes, sizeof(*l->tls_routes));
	for (size_t i = 0; l->tls_routes && i < l->n_tls_routes; i++) {
		struct snap_tls_route *t = &l->tls_routes[i];
		t->route = get_str(r);
		t->hostnames = get_strs(r, &t->n_hostnames);
		t->backends = get_backends(r, &t->n_backends);
	}
	if (!l->tls_routes)
		l->n_tls_routes = 0;
	l->l4_route = get_str(r);
	l->l4_backends = get_backends(r, &l->n_l4_backends);
}

/* The next of the *left records framed in r, in a reader of its own. */
static bool next_record(struct rbuf *r, struct rbuf *sub, uint32_t *left)
{
	uint32_t n = get_u32(r);

	if (r->bad || r->oom || !*left || n > r->len - r->off) {
		r->bad = r->bad || !r->oom;
		*sub = (struct rbuf){.bad = true};
		return false;
	}
	(*left)--;
	*sub = (struct rbuf){.p = r->p + r->off, .len = n, .a = r->a, .v = r->v, .n_v = r->n_v};
	r->off += n;
	return true;
}

/* A record is read whole or the image is bad. */
static void end_record(struct rbuf *r, const struct rbuf *sub)
{
	r->bad |= sub->bad || sub->off != sub->len;
	r->oom |= sub->oom;
}

static void get_top(struct rbuf *r, struct gw_image *img, uint32_t *n_values, uint32_t *n_listeners)
{
	img->n_gateways = get_count(r, 8);
	if (img->n_gateways) {
		img->gateways = calloc(img->n_gateways, sizeof(char *));
		img->addresses = calloc(img->n_gateways, sizeof(char *));
		if (!img->gateways || !img->addresses) {
			r->oom = true;
			return;
		}
	}
	for (size_t i = 0; i < img->n_gateways && !r->bad && !r->oom; i++) {
		char *g = get_str(r), *a = get_str(r);
		if (!g || !a) {
			r->bad = r->bad || !r->oom;
			break;
		}
		if (!(img->gateways[i] = strdup(g)) || !(img->addresses[i] = strdup(a)))
			r->oom = true;
	}
	*n_values = get_u32(r);
	*n_listeners = get_u32(r);
}

/* Indexes the n value records that follow in r (keys rising, each its
 * bytes' hash). */
static void get_values(struct rbuf *r, uint32_t n, uint32_t *left)
{
	uint64_t prev = 0;

	if ((uint64_t)n * (4 + VALUE_HEAD) > r->len - r->off) {
		r->bad = true;
		return;
	}
	r->v = calloc(n ? n : 1, sizeof(*r->v));
	if (!r->v) {
		r->oom = true;
		return;
	}
	for (uint32_t i = 0; i < n && !r->bad; i++) {
		struct rbuf sub;
		struct vent *e = &r->v[i];
		if (!next_record(r, &sub, left))
			break;
		e->kind = (enum ref_kind)get_u32(&sub);
		e->key = get_u64(&sub);
		if (sub.bad || e->kind < REF_BACKENDS || e->kind > REF_BACKEND_TLS ||
		    e->key <= prev ||
		    value_key(e->kind, sub.p + VALUE_HEAD, sub.len - VALUE_HEAD) != e->key) {
			r->bad = true;
			break;
		}
		prev = e->key;
		e->p = sub.p + VALUE_HEAD;
		e->len = sub.len - VALUE_HEAD;
	}
	r->n_v = n;
}

static void get_sockets(struct rbuf *r, struct snapshot *s)
{
	s->n_sockets = get_count(r, 16);
	s->sockets = alloc_n(r, s->n_sockets, sizeof(*s->sockets));
	for (size_t i = 0; s->sockets && i < s->n_sockets; i++) {
		struct snap_socket *so = &s->sockets[i];
		get_fixed(r, so->addr, sizeof(so->addr));
		uint32_t port = get_u32(r);
		if (port > 65535)
			r->bad = true;
		so->port = (uint16_t)port;
		so->transport = (enum snap_transport)get_enum(r, SNAP_T_UDP + 1);
		so->n_listeners = get_count(r, 4);
		so->listeners = alloc_n(r, so->n_listeners, sizeof(*so->listeners));
		for (size_t k = 0; so->listeners && k < so->n_listeners; k++) {
			uint32_t idx = get_u32(r);
			if (idx >= s->n_listeners) {
				r->bad = true;
				break;
			}
			so->listeners[k] = &s->listeners[idx];
		}
		if (!so->listeners)
			so->n_listeners = 0;
	}
}

static int decode(struct rbuf *r, struct gw_image *img)
{
	struct rbuf sub;
	uint32_t left, n_values = 0, n_listeners = 0;
	struct snapshot *s;

	if (get_u32(r) != IMAGE_MAGIC || get_u32(r) != IMAGE_VERSION ||
	    get_u32(r) != IMAGE_ORDER)
		return -EINVAL;
	left = get_u32(r);
	if (next_record(r, &sub, &left))
		get_top(&sub, img, &n_values, &n_listeners);
	end_record(r, &sub);
	if (!r->bad && !r->oom)
		get_values(r, n_values, &left);
	/* each listener is three records or more */
	if ((uint64_t)n_listeners * 12 > r->len - r->off)
		r->bad = true;
	if (r->bad || r->oom)
		return r->oom ? -ENOMEM : -EINVAL;
	s = img->snap = arena_zalloc(r->a, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->arena = r->a;
	s->refs = 1;
	s->n_listeners = n_listeners;
	s->listeners = alloc_n(r, s->n_listeners, sizeof(*s->listeners));
	if (!s->listeners)
		s->n_listeners = 0;
	for (size_t i = 0; i < s->n_listeners && !r->bad && !r->oom; i++) {
		struct snap_listener *l = &s->listeners[i];
		if (next_record(r, &sub, &left))
			get_listener_head(&sub, l);
		end_record(r, &sub);
		if ((uint64_t)l->n_http_rules * 4 > r->len - r->off)
			r->bad = true;
		if (r->bad)
			l->n_http_rules = 0;
		l->http_rules = alloc_n(r, l->n_http_rules, sizeof(*l->http_rules));
		if (!l->http_rules)
			l->n_http_rules = 0;
		for (size_t k = 0; k < l->n_http_rules && !r->bad && !r->oom; k++) {
			if (next_record(r, &sub, &left))
				get_rule(&sub, &l->http_rules[k]);
			end_record(r, &sub);
		}
		if (next_record(r, &sub, &left))
			get_listener_tail(&sub, l);
		end_record(r, &sub);
	}
	if (next_record(r, &sub, &left))
		get_sockets(&sub, s);
	end_record(r, &sub);
	/* every value is named: an image decodes and encodes to itself */
	for (size_t i = 0; i < r->n_v && !r->bad; i++)
		r->bad = r->v[i].state != 2;
	if (r->oom)
		return -ENOMEM;
	if (r->bad || left || r->off != r->len)
		return -EINVAL;
	return 0;
}

int gw_image_decode(const uint8_t *p, size_t len, struct gw_image *img)
{
	struct rbuf r = {.p = p, .len = len};
	int err;

	*img = (struct gw_image){0};
	/* Most of an image is strings, copied once into the arena. */
	r.a = arena_new(len + 64 * 1024);
	if (!r.a)
		return -ENOMEM;
	err = decode(&r, img);
	free(r.v);
	if (err < 0) {
		if (!img->snap)
			arena_free(r.a);
		gw_image_fini(img);
		*img = (struct gw_image){0};
	}
	return err;
}

void gw_image_fini(struct gw_image *img)
{
	/* arena_unref, as snap_unref does: another owner may share the arena */
	if (img->snap && __atomic_sub_fetch(&img->snap->refs, 1, __ATOMIC_ACQ_REL) == 0)
		arena_unref(img->snap->arena);
	for (size_t i = 0; i < img->n_gateways; i++) {
		if (img->gateways)
			free(img->gateways[i]);
		if (img->addresses)
			free(img->addresses[i]);
	}
	free(img->gateways);
	free(img->addresses);
	*img = (struct gw_image){0};
}
