/* SPDX-License-Identifier: MIT */
/*
 * util.c: small pure helpers of reconcile: hostname validity, intersection
 * and precedence as the Gateway API defines them, Gateway API Duration
 * strings, IP addresses and address pools, label selectors, an arena-backed
 * string map and pointer vector, and RFC 3339 time formatting. No I/O, no
 * clock. Control thread (and tests).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "core/hash.h"
#include "gwapi/internal.h"

/* -------- map and vector -------- */

void gw_map_init(struct gw_map *m, struct arena *a)
{
	memset(m, 0, sizeof(*m));
	m->a = a;
}

static int map_grow(struct gw_map *m)
{
	size_t cap = m->cap ? m->cap * 2 : 16;
	struct gw_map_ent *v = arena_zalloc(m->a, cap * sizeof(*v));

	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < m->cap; i++) {
		if (!m->v[i].key)
			continue;
		size_t j = hash_bytes(m->v[i].key, strlen(m->v[i].key)) & (cap - 1);
		while (v[j].key)
			j = (j + 1) & (cap - 1);
		v[j] = m->v[i];
	}
	m->v = v;
	m->cap = cap;
	return 0;
}

void **gw_map_slot(struct gw_map *m, const char *key)
{
	if ((m->n + 1) * 4 > m->cap * 3 && map_grow(m) != 0)
		return NULL;
	size_t j = hash_bytes(key, strlen(key)) & (m->cap - 1);
	while (m->v[j].key) {
		if (!strcmp(m->v[j].key, key))
			return &m->v[j].val;
		j = (j + 1) & (m->cap - 1);
	}
	m->v[j].key = key;
	m->v[j].val = NULL;
	m->n++;
	return &m->v[j].val;
}

int gw_map_put(struct gw_map *m, const char *key, void *val)
{
	void **slot = gw_map_slot(m, key);

	if (!slot)
		return -ENOMEM;
	*slot = val;
	return 0;
}

void *gw_map_get(const struct gw_map *m, const char *key)
{
	if (!m->cap || !key)
		return NULL;
	size_t j = hash_bytes(key, strlen(key)) & (m->cap - 1);
	while (m->v[j].key) {
		if (!strcmp(m->v[j].key, key))
			return m->v[j].val;
		j = (j + 1) & (m->cap - 1);
	}
	return NULL;
}

int gw_vec_push(struct gw_vec *vec, struct arena *a, void *p)
{
	if (vec->n == vec->cap) {
		size_t cap = vec->cap ? vec->cap * 2 : 8;
		void **v = arena_alloc(a, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		if (vec->n)
			memcpy(v, vec->v, vec->n * sizeof(*v));
		vec->v = v;
		vec->cap = cap;
	}
	vec->v[vec->n++] = p;
	return 0;
}

/* -------- hostnames -------- */

bool gw_hostname_is_valid(const char *h, bool allow_wildcard)
{
	size_t len = h ? strlen(h) : 0;

	if (len == 0 || len > 253)
		return false;
	if (h[0] == '*') {
		if (!allow_wildcard || h[1] != '.')
			return false;
		h += 2;
		len -= 2;
		if (!len)
			return false;
	}
	size_t label = 0;
	for (size_t i = 0; i < len; i++) {
		char c = h[i];
		if (c == '.') {
			if (label == 0 || h[i - 1] == '-')
				return false;
			label = 0;
			continue;
		}
		bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
		if (!alnum && c != '-')
			return false; /* upper case is not allowed by the CRD pattern */
		if (c == '-' && label == 0)
			return false;
		if (++label > 63)
			return false;
	}
	if (label == 0 || h[len - 1] == '-')
		return false;
	/* An IP address is not a host name here. */
	uint8_t ip[16];
	int fam;
	return !gw_ip_parse(h, ip, &fam);
}

/* Whether the host name h (no wildcard) is matched by the wildcard w
 * ("*.example.com" matches any name with at least one more label). */
static bool wildcard_covers(const char *w, const char *h)
{
	const char *suffix = w + 1; /* ".example.com" */
	size_t sl = strlen(suffix), hl = strlen(h);
	return hl > sl && !strcasecmp(h + hl - sl, suffix);
}

bool gw_hostname_intersect(const char *l, const char *r, const char **out)
{
	if (!l || !*l) {
		*out = r;
		return true;
	}
	if (!r || !*r) {
		*out = l;
		return true;
	}
	bool lw = l[0] == '*', rw = r[0] == '*';
	if (!lw && !rw) {
		*out = l;
		return !strcasecmp(l, r);
	}
	if (lw && !rw) {
		*out = r;
		return wildcard_covers(l, r);
	}
	if (!lw && rw) {
		*out = l;
		return wildcard_covers(r, l);
	}
	/* Both wildcards: the longer suffix, when it lies inside the other. */
	if (!strcasecmp(l, r)) {
		*out = l;
		return true;
	}
	if (strlen(l) > strlen(r)) {
		*out = l;
		return wildcard_covers(r, l + 2);
	}
	*out = r;
	return wildcard_covers(l, r + 2);
}

int gw_hostname_cmp(const char *a, const char *b)
{
	int ca = !a || !*a ? 2 : (a[0] == '*' ? 1 : 0);
	int cb = !b || !*b ? 2 : (b[0] == '*' ? 1 : 0);

	if (ca != cb)
		return ca - cb;
	if (ca == 2)
		return 0;
	size_t la = strlen(a), lb = strlen(b);
	if (la != lb)
		return la > lb ? -1 : 1;
	return strcmp(a, b);
}

/* -------- durations -------- */

int gw_duration_parse(const char *s, uint64_t *ms)
{
	uint64_t total = 0;
	const char *p = s;

	if (!s || !*s)
		return -EINVAL;
	while (*p) {
		uint64_t n = 0;
		const char *start = p;
		while (*p >= '0' && *p <= '9') {
			n = n * 10 + (uint64_t)(*p - '0');
			if (n > 100000000000ULL)
				return -EINVAL;
			p++;
		}
		if (p == start || p - start > 5)
			return -EINVAL; /* the CRD pattern allows at most 5 digits */
		uint64_t mult;
		if (p[0] == 'h') {
			mult = 3600000;
			p++;
		} else if (p[0] == 'm' && p[1] == 's') {
			mult = 1;
			p += 2;
		} else if (p[0] == 'm') {
			mult = 60000;
			p++;
		} else if (p[0] == 's') {
			mult = 1000;
			p++;
		} else {
			return -EINVAL;
		}
		total += n * mult;
	}
	*ms = total;
	return 0;
}

/* -------- addresses -------- */

bool gw_ip_parse(const char *s, uint8_t out[16], int *family)
{
	memset(out, 0, 16);
	if (!s)
		return false;
	if (inet_pton(AF_INET, s, out) == 1) {
		*family = 4;
		return true;
	}
	if (inet_pton(AF_INET6, s, out) == 1) {
		*family = 6;
		return true;
	}
	return false;
}

int gw_pool_parse(const char *cidr, struct gw_pool *p)
{
	char ip[64];
	const char *slash = cidr ? strchr(cidr, '/') : NULL;

	memset(p, 0, sizeof(*p));
	if (!slash || (size_t)(slash - cidr) >= sizeof(ip))
		return -EINVAL;
	memcpy(ip, cidr, (size_t)(slash - cidr));
	ip[slash - cidr] = '\0';
	if (!gw_ip_parse(ip, p->base, &p->family))
		return -EINVAL;
	char *end;
	long pre = strtol(slash + 1, &end, 10);
	int maxp = p->family == 4 ? 32 : 128;
	if (*end || end == slash + 1 || pre < 0 || pre > maxp)
		return -EINVAL;
	p->prefix = (int)pre;
	/* Clear host bits. */
	for (int bit = p->prefix; bit < maxp; bit++)
		p->base[bit / 8] &= (uint8_t) ~(0x80u >> (bit % 8));
	p->valid = true;
	return 0;
}

bool gw_pool_contains(const struct gw_pool *p, const uint8_t ip[16], int family)
{
	if (!p->valid || family != p->family)
		return false;
	for (int bit = 0; bit < p->prefix; bit++) {
		uint8_t m = (uint8_t)(0x80u >> (bit % 8));
		if ((ip[bit / 8] & m) != (p->base[bit / 8] & m))
			return false;
	}
	return true;
}

uint64_t gw_pool_size(const struct gw_pool *p)
{
	int host = (p->family == 4 ? 32 : 128) - p->prefix;

	if (!p->valid)
		return 0;
	if (host > 20)
		host = 20; /* never hand out more than a million addresses */
	uint64_t n = 1ULL << host;
	if (p->family == 4 && host >= 2)
		n -= 2; /* network and broadcast addresses */
	else if (p->family == 6 && host >= 1)
		n -= 1; /* the subnet-router anycast address */
	return n;
}

bool gw_pool_nth(const struct gw_pool *p, uint64_t idx, char *buf, size_t size)
{
	int host = (p->family == 4 ? 32 : 128) - p->prefix;

	if (idx >= gw_pool_size(p))
		return false;
	if ((p->family == 4 && host >= 2) || (p->family == 6 && host >= 1))
		idx++;
	uint8_t ip[16];
	memcpy(ip, p->base, 16);
	int last = p->family == 4 ? 3 : 15;
	uint64_t carry = idx;
	for (int i = last; i >= 0 && carry; i--) {
		uint64_t v = ip[i] + (carry & 0xff);
		ip[i] = (uint8_t)v;
		carry = (carry >> 8) + (v >> 8);
	}
	return inet_ntop(p->family == 4 ? AF_INET : AF_INET6, ip, buf, (socklen_t)size) != NULL;
}

/* -------- label selectors -------- */

static const char *label_get(const struct gw_kv *labels, size_t n, const char *key)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(labels[i].key, key))
			return labels[i].value;
	return NULL;
}

bool gw_selector_match(const struct gw_selector *s, const struct gw_kv *labels, size_t n)
{
	for (size_t i = 0; i < s->n_labels; i++) {
		const char *v = label_get(labels, n, s->labels[i].key);
		if (!v || strcmp(v, s->labels[i].value) != 0)
			return false;
	}
	for (size_t i = 0; i < s->n_exprs; i++) {
		const struct gw_sel_expr *e = &s->exprs[i];
		const char *v = label_get(labels, n, e->key);
		bool in = false;
		for (size_t j = 0; v && j < e->n_values; j++)
			if (!strcmp(v, e->values[j]))
				in = true;
		if (!strcmp(e->op, "In")) {
			if (!in)
				return false;
		} else if (!strcmp(e->op, "NotIn")) {
			if (in)
				return false;
		} else if (!strcmp(e->op, "Exists")) {
			if (!v)
				return false;
		} else if (!strcmp(e->op, "DoesNotExist")) {
			if (v)
				return false;
		} else {
			return false; /* unknown operator selects nothing */
		}
	}
	return true;
}

void gw_time_format(uint64_t ms, char *buf, size_t size)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}
