/* SPDX-License-Identifier: MIT */
/*
 * snapimage.c: the compiled snapshot as a byte image and back (snapimage.h).
 * The format is private to one build family: a header (magic, format
 * version, byte-order mark) then every field in declaration order, integers
 * in host byte order, strings as a length (0 = NULL, else length + 1) and
 * their bytes. Arrays that the compiler shares between entries (a rule's
 * backends and filters, a backend's TLS settings) are written once and
 * then referenced by number, so the decoded snapshot has the same shape and
 * the data plane builds one TLS client per shared backend as before.
 * The decoder trusts nothing: every count is checked against the bytes
 * left before anything is allocated, every enum and index against its
 * range. It does not check integrity (the store hashes the image) and it
 * does not interpret the snapshot. Any thread; no shared state.
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
#define IMAGE_VERSION 1u
#define IMAGE_ORDER 0x01020304u

/* What a shared reference points at; a reference must name its kind. */
enum ref_kind { REF_BACKENDS = 1, REF_FILTERS, REF_BACKEND_TLS };

/* Reference tags: 0 = NULL (empty), 1 = a new value follows, k + 2 = the
 * value numbered k (numbers are given in the order values first appear). */
#define TAG_NULL 0u
#define TAG_NEW 1u

/* -------- encoding -------- */

struct ref_slot {
	const void *p;
	size_t n;
	enum ref_kind kind;
	uint32_t id;
};

struct wbuf {
	uint8_t *p;
	size_t len, cap;
	bool oom;
	struct ref_slot *refs; /* open addressing by (p, kind, n) */
	size_t refs_cap, refs_n;
};

/* Makes room for n more bytes; false (and oom set) when there is none. */
static bool reserve(struct wbuf *w, size_t n)
{
	if (w->oom)
		return false;
	if (w->len + n > w->cap) {
		size_t cap = w->cap ? w->cap : 256 * 1024;
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

static size_t ref_hash(const void *p, size_t n, enum ref_kind kind, size_t cap)
{
	uint64_t h = ((uint64_t)(uintptr_t)p ^ ((uint64_t)n << 40) ^ ((uint64_t)kind << 60)) *
		     0x9e3779b97f4a7c15ULL;
	return (size_t)(h >> 20) & (cap - 1);
}

static bool refs_grow(struct wbuf *w)
{
	size_t cap = w->refs_cap ? w->refs_cap * 2 : 1024;
	struct ref_slot *v = calloc(cap, sizeof(*v));

	if (!v)
		return false;
	for (size_t i = 0; i < w->refs_cap; i++) {
		if (!w->refs[i].p)
			continue;
		size_t k = ref_hash(w->refs[i].p, w->refs[i].n, w->refs[i].kind, cap);
		while (v[k].p)
			k = (k + 1) & (cap - 1);
		v[k] = w->refs[i];
	}
	free(w->refs);
	w->refs = v;
	w->refs_cap = cap;
	return true;
}

/* Writes the tag for (p, n) of kind; true when the value must follow. */
static bool put_ref(struct wbuf *w, const void *p, size_t n, enum ref_kind kind)
{
	if (!p || !n) {
		put_u32(w, TAG_NULL);
		return false;
	}
	if (2 * (w->refs_n + 1) > w->refs_cap && !refs_grow(w)) {
		w->oom = true;
		return false;
	}
	size_t k = ref_hash(p, n, kind, w->refs_cap);
	for (; w->refs[k].p; k = (k + 1) & (w->refs_cap - 1)) {
		if (w->refs[k].p == p && w->refs[k].n == n && w->refs[k].kind == kind) {
			put_u32(w, w->refs[k].id + 2);
			return false;
		}
	}
	w->refs[k] = (struct ref_slot){.p = p, .n = n, .kind = kind, .id = (uint32_t)w->refs_n++};
	put_u32(w, TAG_NEW);
	return true;
}

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

static void put_filters(struct wbuf *w, const struct snap_filter *f, size_t n)
{
	if (!put_ref(w, f, n, REF_FILTERS))
		return;
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

static void put_backend_tls(struct wbuf *w, const struct snap_backend_tls *t)
{
	if (!put_ref(w, t, 1, REF_BACKEND_TLS))
		return;
	put_str(w, t->sni);
	put_str(w, t->ca_pem);
	put_u8(w, t->use_system_cas);
	put_strs(w, t->sans, t->n_sans);
	put_str(w, t->client_cert_pem);
	put_str(w, t->client_key_pem);
}

static void put_backends(struct wbuf *w, const struct snap_backend *b, size_t n)
{
	if (!put_ref(w, b, n, REF_BACKENDS))
		return;
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

static void put_listener(struct wbuf *w, const struct snap_listener *l)
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
	for (size_t i = 0; i < l->n_http_rules; i++)
		put_rule(w, &l->http_rules[i]);
	put_u32(w, (uint32_t)l->n_tls_routes);
	for (size_t i = 0; i < l->n_tls_routes; i++) {
		put_str(w, l->tls_routes[i].route);
		put_strs(w, l->tls_routes[i].hostnames, l->tls_routes[i].n_hostnames);
		put_backends(w, l->tls_routes[i].backends, l->tls_routes[i].n_backends);
	}
	put_str(w, l->l4_route);
	put_backends(w, l->l4_backends, l->n_l4_backends);
}

int gw_image_encode(const struct snapshot *snap, char *const *gateways, char *const *addresses,
		    size_t n_gateways, uint8_t **out, size_t *len)
{
	struct wbuf w = {0};

	*out = NULL;
	*len = 0;
	put_u32(&w, IMAGE_MAGIC);
	put_u32(&w, IMAGE_VERSION);
	put_u32(&w, IMAGE_ORDER);
	put_u32(&w, (uint32_t)n_gateways);
	for (size_t i = 0; i < n_gateways; i++) {
		put_str(&w, gateways[i]);
		put_str(&w, addresses[i]);
	}
	put_u32(&w, (uint32_t)snap->n_listeners);
	for (size_t i = 0; i < snap->n_listeners; i++)
		put_listener(&w, &snap->listeners[i]);
	put_u32(&w, (uint32_t)snap->n_sockets);
	for (size_t i = 0; i < snap->n_sockets; i++) {
		const struct snap_socket *s = &snap->sockets[i];
		put_str(&w, s->addr);
		put_u32(&w, s->port);
		put_u32(&w, s->transport);
		put_u32(&w, (uint32_t)s->n_listeners);
		for (size_t k = 0; k < s->n_listeners; k++)
			put_u32(&w, (uint32_t)(s->listeners[k] - snap->listeners));
	}
	free(w.refs);
	if (w.oom) {
		gw_image_buf_free(w.p, w.cap);
		return -ENOMEM;
	}
	*out = w.p;
	*len = w.len;
	return 0;
}

void gw_image_buf_free(uint8_t *p, size_t len)
{
	if (!p)
		return;
	explicit_bzero(p, len);
	free(p);
}

/* -------- decoding -------- */

struct dec_ref {
	enum ref_kind kind;
	void *p;
	size_t n;
};

struct rbuf {
	const uint8_t *p;
	size_t len, off;
	bool bad;   /* malformed or truncated */
	bool oom;
	struct arena *a;
	struct dec_ref *refs;
	size_t refs_n, refs_cap;
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

/*
 * Reads a reference tag of kind. Returns the known value (and its count)
 * for a back reference, NULL with *is_new false for TAG_NULL, and NULL with
 * *is_new true when the value follows: then *slot is the number the caller
 * fills in once it is decoded.
 */
static void *get_ref(struct rbuf *r, enum ref_kind kind, size_t *n, bool *is_new, size_t *slot)
{
	uint32_t tag = get_u32(r);

	*n = 0;
	*is_new = false;
	if (r->bad || r->oom || tag == TAG_NULL)
		return NULL;
	if (tag == TAG_NEW) {
		if (r->refs_n == r->refs_cap) {
			size_t cap = r->refs_cap ? r->refs_cap * 2 : 256;
			struct dec_ref *v = realloc(r->refs, cap * sizeof(*v));
			if (!v) {
				r->oom = true;
				return NULL;
			}
			r->refs = v;
			r->refs_cap = cap;
		}
		*slot = r->refs_n++;
		/* Filled in after the value; until then it cannot be named. */
		r->refs[*slot] = (struct dec_ref){.kind = kind};
		*is_new = true;
		return NULL;
	}
	tag -= 2;
	if (tag >= r->refs_n || r->refs[tag].kind != kind || !r->refs[tag].p) {
		r->bad = true;
		return NULL;
	}
	*n = r->refs[tag].n;
	return r->refs[tag].p;
}

static void set_ref(struct rbuf *r, size_t slot, void *p, size_t n)
{
	if (r->bad || r->oom || !p)
		return;
	r->refs[slot].p = p;
	r->refs[slot].n = n;
}

static struct snap_backend *get_backends(struct rbuf *r, size_t *n);

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

static struct snap_filter *get_filters(struct rbuf *r, size_t *n)
{
	bool is_new;
	size_t slot = 0;
	struct snap_filter *v = get_ref(r, REF_FILTERS, n, &is_new, &slot);

	if (!is_new)
		return v;
	*n = get_count(r, 4);
	v = alloc_n(r, *n, sizeof(*v));
	for (size_t i = 0; v && i < *n; i++)
		get_filter(r, &v[i]);
	if (!v)
		*n = 0;
	set_ref(r, slot, v, *n);
	return v;
}

static struct snap_backend_tls *get_backend_tls(struct rbuf *r)
{
	bool is_new;
	size_t slot = 0, n;
	struct snap_backend_tls *t = get_ref(r, REF_BACKEND_TLS, &n, &is_new, &slot);

	if (!is_new)
		return t;
	t = alloc_n(r, 1, sizeof(*t));
	if (!t)
		return NULL;
	t->sni = get_str(r);
	t->ca_pem = get_str(r);
	t->use_system_cas = get_u8(r);
	t->sans = get_strs(r, &t->n_sans);
	t->client_cert_pem = get_str(r);
	t->client_key_pem = get_str(r);
	set_ref(r, slot, t, 1);
	return t;
}

static struct snap_backend *get_backends(struct rbuf *r, size_t *n)
{
	bool is_new;
	size_t slot = 0;
	struct snap_backend *v = get_ref(r, REF_BACKENDS, n, &is_new, &slot);

	if (!is_new)
		return v;
	*n = get_count(r, 24);
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
	set_ref(r, slot, v, *n);
	return v;
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

static void get_listener(struct rbuf *r, struct snap_listener *l)
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
	l->n_http_rules = get_count(r, 60);
	l->http_rules = alloc_n(r, l->n_http_rules, sizeof(*l->http_rules));
	for (size_t i = 0; l->http_rules && i < l->n_http_rules; i++)
		get_rule(r, &l->http_rules[i]);
	if (!l->http_rules)
		l->n_http_rules = 0;
	l->n_tls_routes = get_count(r, 12);
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

static int decode(struct rbuf *r, struct gw_image *img)
{
	struct snapshot *s;

	if (get_u32(r) != IMAGE_MAGIC || get_u32(r) != IMAGE_VERSION ||
	    get_u32(r) != IMAGE_ORDER)
		return -EINVAL;
	img->n_gateways = get_count(r, 8);
	if (img->n_gateways) {
		img->gateways = calloc(img->n_gateways, sizeof(char *));
		img->addresses = calloc(img->n_gateways, sizeof(char *));
		if (!img->gateways || !img->addresses)
			return -ENOMEM;
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
	s = img->snap = arena_zalloc(r->a, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->arena = r->a;
	s->refs = 1;
	s->n_listeners = get_count(r, 40);
	s->listeners = alloc_n(r, s->n_listeners, sizeof(*s->listeners));
	for (size_t i = 0; s->listeners && i < s->n_listeners; i++)
		get_listener(r, &s->listeners[i]);
	if (!s->listeners)
		s->n_listeners = 0;
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
	if (r->oom)
		return -ENOMEM;
	if (r->bad || r->off != r->len)
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
	free(r.refs);
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
