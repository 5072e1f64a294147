/* SPDX-License-Identifier: MIT */
/*
 * filters.c: HTTPRoute filters that transform a request or a response
 * (header modifiers, path rewrites, redirect locations, CORS headers) and
 * the bounded head writer. Pure functions over arena memory, run on the
 * worker that owns the request; no I/O and no routing decisions here.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "core/arena.h"
#include "proxy/filters.h"

int hlist_init(struct hlist *l, struct arena *a, size_t cap)
{
	l->n = 0;
	l->cap = cap;
	l->v = arena_alloc(a, cap * sizeof(*l->v));
	return l->v ? 0 : -ENOMEM;
}

int hlist_add(struct hlist *l, struct arena *a, struct str name, struct str value)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		struct h1_header *v = arena_alloc(a, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		if (l->n)
			memcpy(v, l->v, l->n * sizeof(*v));
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n].name = name;
	l->v[l->n].value = value;
	l->n++;
	return 0;
}

ssize_t hlist_find(const struct hlist *l, struct str name)
{
	for (size_t i = 0; i < l->n; i++)
		if (l->v[i].name.len == name.len && str_case_eq(l->v[i].name, name))
			return (ssize_t)i;
	return -1;
}

void hlist_remove(struct hlist *l, struct str name)
{
	for (size_t i = 0; i < l->n; i++)
		if (l->v[i].name.len == name.len && str_case_eq(l->v[i].name, name))
			l->v[i].name.len = 0;
}

/* Configuration is validated upstream; this is the last line against a
 * field that would split a head (CR, LF, NUL) if it ever got through. */
static bool field_ok(struct str name, struct str value)
{
	return hdr_is_token(name) && hdr_is_value(value);
}

int hlist_apply(struct hlist *l, struct arena *a, const struct snap_header_mod *m)
{
	for (size_t i = 0; i < m->n_set; i++) {
		struct str name = str_c(m->set[i].name), value = str_c(m->set[i].value);
		if (!field_ok(name, value))
			continue;
		ssize_t k = hlist_find(l, name);
		if (k < 0) {
			if (hlist_add(l, a, name, value))
				return -ENOMEM;
			continue;
		}
		l->v[k].value = value;
		for (size_t j = (size_t)k + 1; j < l->n; j++)
			if (l->v[j].name.len == name.len && str_case_eq(l->v[j].name, name))
				l->v[j].name.len = 0;
	}
	for (size_t i = 0; i < m->n_add; i++) {
		struct str name = str_c(m->add[i].name), value = str_c(m->add[i].value);
		if (!field_ok(name, value))
			continue;
		ssize_t k = hlist_find(l, name);
		if (k < 0) {
			if (hlist_add(l, a, name, value))
				return -ENOMEM;
			continue;
		}
		char *v = arena_printf(a, "%.*s,%s", (int)l->v[k].value.len, l->v[k].value.p,
				       m->add[i].value);
		if (!v)
			return -ENOMEM;
		l->v[k].value = str_c(v);
	}
	for (size_t i = 0; i < m->n_remove; i++)
		hlist_remove(l, str_c(m->remove[i]));
	return 0;
}

bool px_is_clean(const char *s)
{
	for (; s && *s; s++)
		if ((unsigned char)*s <= 0x20 || (unsigned char)*s == 0x7f)
			return false;
	return true;
}

char *px_path_modify(struct arena *a, struct str path, enum snap_path_mod type,
		     const char *replacement, size_t matched_prefix_len)
{
	if (!px_is_clean(replacement))
		return NULL;
	if (type == SNAP_PATH_FULL)
		return arena_strdup(a, replacement ? replacement : "/");
	if (type != SNAP_PATH_PREFIX)
		return arena_strndup(a, path.p, path.len);
	const char *rep = replacement ? replacement : "/";
	size_t rl = strlen(rep);
	while (rl && rep[rl - 1] == '/')
		rl--;
	struct str rest = {path.p + matched_prefix_len,
			   path.len > matched_prefix_len ? path.len - matched_prefix_len : 0};
	if (rl == 0 && rest.len == 0)
		return arena_strdup(a, "/");
	if (rest.len && rest.p[0] != '/' && rl)
		return arena_printf(a, "%.*s/%.*s", (int)rl, rep, (int)rest.len, rest.p);
	if (rl == 0 && rest.p[0] != '/')
		return arena_printf(a, "/%.*s", (int)rest.len, rest.p);
	return arena_printf(a, "%.*s%.*s", (int)rl, rep, (int)rest.len, rest.p);
}

char *px_redirect_location(struct arena *a, const struct snap_redirect *r, const char *scheme_in,
			   const char *host, uint16_t listener_port, struct str path,
			   struct str query, size_t matched_prefix_len)
{
	const char *scheme = r->scheme ? r->scheme : scheme_in;
	const char *h = r->hostname ? r->hostname : host;
	int port = r->port;

	if (!px_is_clean(scheme) || !px_is_clean(h))
		return NULL;
	if (!port) {
		if (r->scheme && !strcasecmp(r->scheme, "http"))
			port = 80;
		else if (r->scheme && !strcasecmp(r->scheme, "https"))
			port = 443;
		else
			port = listener_port;
	}
	bool default_port = (!strcasecmp(scheme, "http") && port == 80) ||
			    (!strcasecmp(scheme, "https") && port == 443);
	char *p = px_path_modify(a, path, r->path_type, r->path, matched_prefix_len);
	if (!p)
		return NULL;
	char portbuf[16] = "";
	if (!default_port)
		snprintf(portbuf, sizeof(portbuf), ":%d", port);
	bool v6 = strchr(h, ':') != NULL;
	return arena_printf(a, "%s://%s%s%s%s%s%s%.*s", scheme, v6 ? "[" : "", h, v6 ? "]" : "",
			    portbuf, p, query.len ? "?" : "", (int)query.len, query.p);
}

static bool glob1(const char *pat, struct str s)
{
	const char *star = strchr(pat, '*');
	if (!star)
		return str_eq_c(s, pat);
	size_t pre = (size_t)(star - pat), post = strlen(star + 1);
	if (s.len < pre + post + 1)
		return false;
	return memcmp(s.p, pat, pre) == 0 && memcmp(s.p + s.len - post, star + 1, post) == 0;
}

bool px_cors_origin_allowed(const struct snap_cors *c, struct str origin)
{
	if (!origin.len)
		return false;
	for (size_t i = 0; i < c->n_allow_origins; i++) {
		const char *o = c->allow_origins[i];
		if (!strcmp(o, "*") || glob1(o, origin))
			return true;
	}
	return false;
}

static char *join(struct arena *a, char **v, size_t n)
{
	size_t len = 1;
	for (size_t i = 0; i < n; i++)
		len += strlen(v[i]) + 2;
	char *s = arena_alloc(a, len), *p = s;
	if (!s)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		if (i) {
			memcpy(p, ", ", 2);
			p += 2;
		}
		size_t k = strlen(v[i]);
		memcpy(p, v[i], k);
		p += k;
	}
	*p = '\0';
	return s;
}

static bool has_star(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(v[i], "*"))
			return true;
	return false;
}

int px_cors_headers(struct hlist *l, struct arena *a, const struct snap_cors *c, struct str origin,
		    bool preflight, struct str req_method, struct str req_headers)
{
	if (!px_cors_origin_allowed(c, origin))
		return 0;
	/* with credentials a wildcard may not be answered literally */
	bool wild_origin = has_star(c->allow_origins, c->n_allow_origins) && !c->allow_credentials;
	char *o = wild_origin ? arena_strdup(a, "*") : arena_strndup(a, origin.p, origin.len);
	if (!o || hlist_add(l, a, STR_LIT("Access-Control-Allow-Origin"), str_c(o)))
		return -ENOMEM;
	if (c->allow_credentials &&
	    hlist_add(l, a, STR_LIT("Access-Control-Allow-Credentials"), STR_LIT("true")))
		return -ENOMEM;
	if (!wild_origin && hlist_add(l, a, STR_LIT("Vary"), STR_LIT("Origin")))
		return -ENOMEM;
	if (c->n_expose_headers) {
		char *e = join(a, c->expose_headers, c->n_expose_headers);
		if (!e || hlist_add(l, a, STR_LIT("Access-Control-Expose-Headers"), str_c(e)))
			return -ENOMEM;
	}
	if (!preflight)
		return 0;
	if (has_star(c->allow_methods, c->n_allow_methods)) {
		if (req_method.len &&
		    hlist_add(l, a, STR_LIT("Access-Control-Allow-Methods"), req_method))
			return -ENOMEM;
	} else if (c->n_allow_methods) {
		char *m = join(a, c->allow_methods, c->n_allow_methods);
		if (!m || hlist_add(l, a, STR_LIT("Access-Control-Allow-Methods"), str_c(m)))
			return -ENOMEM;
	}
	if (has_star(c->allow_headers, c->n_allow_headers)) {
		if (req_headers.len &&
		    hlist_add(l, a, STR_LIT("Access-Control-Allow-Headers"), req_headers))
			return -ENOMEM;
	} else if (c->n_allow_headers) {
		char *h = join(a, c->allow_headers, c->n_allow_headers);
		if (!h || hlist_add(l, a, STR_LIT("Access-Control-Allow-Headers"), str_c(h)))
			return -ENOMEM;
	}
	char *age = arena_printf(a, "%d", c->max_age_s > 0 ? c->max_age_s : 5);
	if (!age || hlist_add(l, a, STR_LIT("Access-Control-Max-Age"), str_c(age)))
		return -ENOMEM;
	return 0;
}

void wr_u64(struct wr *w, uint64_t v)
{
	char tmp[24];
	size_t k = sizeof(tmp);
	do {
		tmp[--k] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	wr_put(w, tmp + k, sizeof(tmp) - k);
}

void wr_field(struct wr *w, struct str name, struct str value)
{
	wr_str(w, name);
	wr_put(w, ": ", 2);
	wr_str(w, value);
	wr_put(w, "\r\n", 2);
}

void wr_up_head(struct wr *o, const struct up_head *h, const struct hlist *hl)
{
	struct str xff = {NULL, 0};

	wr_str(o, h->method);
	wr_put(o, " ", 1);
	wr_str(o, h->path);
	if (h->query.len) {
		wr_put(o, "?", 1);
		wr_str(o, h->query);
	}
	wr_cstr(o, " HTTP/1.1\r\nHost: ");
	wr_str(o, h->host);
	wr_put(o, "\r\n", 2);
	for (size_t i = 0; i < hl->n; i++) {
		struct str n = hl->v[i].name;
		if (!n.len)
			continue;
		if (str_case_eq_c(n, "x-forwarded-for"))
			xff = hl->v[i].value;
		else
			wr_field(o, n, hl->v[i].value);
	}
	wr_cstr(o, "X-Forwarded-For: ");
	if (xff.len) {
		wr_str(o, xff);
		wr_put(o, ", ", 2);
	}
	wr_cstr(o, h->peer);
	wr_cstr(o, h->https ? "\r\nX-Forwarded-Proto: https\r\n" : "\r\nX-Forwarded-Proto: http\r\n");
	if (h->xfh.len)
		wr_field(o, STR_LIT("X-Forwarded-Host"), h->xfh);
	if (h->via.len)
		wr_field(o, STR_LIT("Via"), h->via);
}
