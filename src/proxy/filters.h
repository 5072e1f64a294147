/* SPDX-License-Identifier: MIT */
/*
 * filters.h: the HTTPRoute filters as pure functions over a request's
 * header list and path (header modifiers, URL rewrite, redirect Location,
 * CORS), and the writer that serialises heads. Private to proxy/; unit
 * tested on their own. All memory comes from the caller's arena (request
 * lifetime); views passed in are borrowed.
 */
#ifndef WG_PROXY_FILTERS_H
#define WG_PROXY_FILTERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/types.h>

#include "core/str.h"
#include "http/h1.h"
#include "proxy/snapshot_types.h"

struct arena;

/* A header list being edited; entries with name.len == 0 are deleted. */
struct hlist {
	struct h1_header *v;
	size_t n, cap;
};

/* 0 or -ENOMEM. cap: room for additions beyond n. */
int hlist_init(struct hlist *l, struct arena *a, size_t cap);
int hlist_add(struct hlist *l, struct arena *a, struct str name, struct str value);
/* Removes every field named name. */
void hlist_remove(struct hlist *l, struct str name);
/* Applies set, then add (appended to an existing field with ","), then
 * remove; a name or value that is not a valid field is skipped. 0 or
 * -ENOMEM. */
int hlist_apply(struct hlist *l, struct arena *a, const struct snap_header_mod *m);
ssize_t hlist_find(const struct hlist *l, struct str name);

/*
 * The path after a URL rewrite or redirect path modifier. path is the
 * request path without the query; matched_prefix_len is the length of the
 * rule's PathPrefix without its trailing slash. Result in the arena
 * (NUL-terminated), or NULL on ENOMEM or when the replacement holds
 * whitespace or control bytes.
 */
char *px_path_modify(struct arena *a, struct str path, enum snap_path_mod type,
		     const char *replacement, size_t matched_prefix_len);

/*
 * The Location of a RequestRedirect. scheme_in: "http"/"https" of the
 * request; host: the request's host (port stripped); listener_port: the
 * port the request arrived on. query may be empty. NULL on ENOMEM or when
 * a configured part holds whitespace or control bytes.
 */
char *px_redirect_location(struct arena *a, const struct snap_redirect *r, const char *scheme_in,
			   const char *host, uint16_t listener_port, struct str path,
			   struct str query, size_t matched_prefix_len);

/* Whether s (NULL is fine) holds no whitespace or control byte: what a
 * request-target or a host name taken from configuration may hold. */
bool px_is_clean(const char *s);

/*
 * Whether origin is allowed by the CORS filter: "*", an exact origin, or a
 * pattern with one star such as https://STAR.example.com.
 */
bool px_cors_origin_allowed(const struct snap_cors *c, struct str origin);
/*
 * CORS response headers for origin into l: Allow-Origin, Allow-Credentials
 * and Expose-Headers always; for a preflight (OPTIONS with
 * Access-Control-Request-Method) also Allow-Methods, Allow-Headers and
 * Max-Age, where a configured "*" answers what the request asked for
 * (req_method, req_headers: its Access-Control-Request-* values, may be
 * empty), which stays valid with credentials. Nothing when the origin is
 * not allowed. 0 or -ENOMEM.
 */
int px_cors_headers(struct hlist *l, struct arena *a, const struct snap_cors *c, struct str origin,
		    bool preflight, struct str req_method, struct str req_headers);

/* A bounded writer over a caller buffer; overflow is sticky. */
struct wr {
	char *p;
	size_t len, cap;
	bool overflow;
};

static inline void wr_put(struct wr *w, const char *s, size_t n)
{
	if (w->overflow || n > w->cap - w->len) {
		w->overflow = true;
		return;
	}
	memcpy(w->p + w->len, s, n);
	w->len += n;
}
static inline void wr_str(struct wr *w, struct str s)
{
	wr_put(w, s.p, s.len);
}
static inline void wr_cstr(struct wr *w, const char *s)
{
	wr_put(w, s, strlen(s));
}
void wr_u64(struct wr *w, uint64_t v);

/* "Name: value\r\n" */
void wr_field(struct wr *w, struct str name, struct str value);

/* What an upstream HTTP/1.1 request head carries besides the client's
 * filtered fields. */
struct up_head {
	struct str method;
	struct str path;  /* the request-target (rewritten, or as received with its query) */
	struct str query; /* appended after a '?' when not empty */
	struct str host;  /* the Host sent */
	struct str xfh;   /* X-Forwarded-Host: the client's Host; none when empty */
	const char *peer; /* the client's address: X-Forwarded-For */
	bool https;       /* X-Forwarded-Proto */
	struct str via;   /* px_via(): empty when Via is turned off */
};

/*
 * The request line and fields of an upstream request: Host, hl's fields
 * (the client's X-Forwarded-For is extended, not repeated), then
 * X-Forwarded-For, -Proto, -Host and Via (after every client field, so
 * that an earlier Via stays first). Not the body framing nor the blank
 * line: those differ between a request and its mirror copies.
 */
void wr_up_head(struct wr *o, const struct up_head *h, const struct hlist *hl);

#endif
