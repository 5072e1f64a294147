/* SPDX-License-Identifier: MIT */
/*
 * Tests of proxy/filters.c: header modifiers (set overwrites, add appends
 * with a comma, remove), path rewrites (full, prefix in its edge cases),
 * redirect locations with the spec's port and scheme rules, CORS origins
 * and headers, the bounded writer, and the upstream request head.
 */
#include "../check.h"
#include "core/arena.h"
#include "proxy/filters.h"

static const char *val(const struct hlist *l, const char *name)
{
	static char out[256];
	ssize_t k = hlist_find(l, str_c(name));
	if (k < 0)
		return "(none)";
	snprintf(out, sizeof(out), "%.*s", (int)l->v[k].value.len, l->v[k].value.p);
	return out;
}

TEST(filters_header_modifier_set_add_remove)
{
	struct arena *a = arena_new(0);
	struct hlist l;
	CHECK_EQ_INT(hlist_init(&l, a, 2), 0);
	hlist_add(&l, a, STR_LIT("X-Header-Set"), STR_LIT("old"));
	hlist_add(&l, a, STR_LIT("x-header-set"), STR_LIT("old2"));
	hlist_add(&l, a, STR_LIT("X-Header-Add"), STR_LIT("some-other-value"));
	hlist_add(&l, a, STR_LIT("X-Remove"), STR_LIT("gone"));
	struct snap_header set[] = {{"x-header-set", "set-overwrites-values"}, {"X-New-Set", "n"}};
	struct snap_header add[] = {{"x-header-add", "add-appends-values"}, {"X-New-Add", "a"}};
	char *rm[] = {"x-remove", "x-absent"};
	struct snap_header_mod m = {set, 2, add, 2, rm, 2};
	CHECK_EQ_INT(hlist_apply(&l, a, &m), 0);
	CHECK_EQ_STR(val(&l, "X-Header-Set"), "set-overwrites-values");
	CHECK_EQ_STR(val(&l, "X-Header-Add"), "some-other-value,add-appends-values");
	CHECK_EQ_STR(val(&l, "X-New-Set"), "n");
	CHECK_EQ_STR(val(&l, "X-New-Add"), "a");
	CHECK_EQ_STR(val(&l, "X-Remove"), "(none)");
	/* set leaves exactly one field of that name */
	int n = 0;
	for (size_t i = 0; i < l.n; i++)
		if (str_case_eq_c(l.v[i].name, "x-header-set"))
			n++;
	CHECK_EQ_INT(n, 1);
	arena_free(a);
}

struct rw_case {
	const char *path;
	enum snap_path_mod type;
	const char *rep;
	size_t prefix_len;
	const char *want;
};

TEST(filters_path_modify_table)
{
	static const struct rw_case cases[] = {
		{"/prefix/one/two", SNAP_PATH_PREFIX, "/one", 11, "/one/two"},
		{"/prefix/one", SNAP_PATH_PREFIX, "/one", 11, "/one"},
		{"/strip-prefix/three", SNAP_PATH_PREFIX, "/", 13, "/three"},
		{"/strip-prefix", SNAP_PATH_PREFIX, "/", 13, "/"},
		{"/strip-prefix/", SNAP_PATH_PREFIX, "/", 13, "/"},
		{"/a/b", SNAP_PATH_PREFIX, "/x/", 2, "/x/b"},
		{"/any/thing", SNAP_PATH_FULL, "/one", 0, "/one"},
		{"/keep", SNAP_PATH_NONE, NULL, 0, "/keep"},
		{"/foo/bar", SNAP_PATH_PREFIX, "/", 0, "/foo/bar"},
	};
	struct arena *a = arena_new(0);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct rw_case *c = &cases[i];
		char *got = px_path_modify(a, str_c(c->path), c->type, c->rep, c->prefix_len);
		if (!got || strcmp(got, c->want))
			fprintf(stderr, "  case %zu (%s)\n", i, c->path);
		CHECK_EQ_STR(got, c->want);
	}
	arena_free(a);
}

TEST(filters_redirect_location_ports_and_schemes)
{
	struct arena *a = arena_new(0);
	struct snap_redirect r = {0};
	struct str p = STR_LIT("/path"), q = STR_LIT("a=1"), noq = {"", 0};

	/* nothing set: same scheme and host, the listener's port */
	CHECK_EQ_STR(px_redirect_location(a, &r, "http", "h.example", 8080, p, noq, 0),
		     "http://h.example:8080/path");
	CHECK_EQ_STR(px_redirect_location(a, &r, "http", "h.example", 80, p, q, 0),
		     "http://h.example/path?a=1");
	/* scheme set, no port: its well-known port, left out */
	r.scheme = "https";
	CHECK_EQ_STR(px_redirect_location(a, &r, "http", "h.example", 8080, p, noq, 0),
		     "https://h.example/path");
	/* explicit port wins, shown unless it is the scheme's default */
	r.port = 8443;
	CHECK_EQ_STR(px_redirect_location(a, &r, "http", "h.example", 8080, p, noq, 0),
		     "https://h.example:8443/path");
	r.port = 443;
	CHECK_EQ_STR(px_redirect_location(a, &r, "http", "h.example", 8080, p, noq, 0),
		     "https://h.example/path");
	r = (struct snap_redirect){
		.hostname = "other.example", .path_type = SNAP_PATH_PREFIX, .path = "/new"};
	CHECK_EQ_STR(
		px_redirect_location(a, &r, "https", "h.example", 443, STR_LIT("/old/x"), q, 4),
		"https://other.example/new/x?a=1");
	r = (struct snap_redirect){.path_type = SNAP_PATH_FULL, .path = "/full"};
	CHECK_EQ_STR(px_redirect_location(a, &r, "http", "h", 80, p, noq, 0), "http://h/full");
	arena_free(a);
}

TEST(filters_cors)
{
	struct arena *a = arena_new(0);
	char *origins[] = {"https://www.foo.com", "https://*.bar.com"};
	char *methods[] = {"GET", "OPTIONS"};
	char *hdrs[] = {"x-a", "x-b"};
	char *expose[] = {"x-e"};
	struct snap_cors c = {origins, 2, true, methods, 2, hdrs, 2, expose, 1, 0};
	CHECK(px_cors_origin_allowed(&c, STR_LIT("https://www.foo.com")));
	CHECK(px_cors_origin_allowed(&c, STR_LIT("https://a.bar.com")));
	CHECK(!px_cors_origin_allowed(&c, STR_LIT("https://bar.com")));
	CHECK(!px_cors_origin_allowed(&c, STR_LIT("http://www.foo.com")));
	CHECK(!px_cors_origin_allowed(&c, STR_LIT("")));

	struct hlist l;
	hlist_init(&l, a, 4);
	CHECK_EQ_INT(px_cors_headers(&l, a, &c, STR_LIT("https://a.bar.com"), true, STR_LIT("GET"),
				     STR_LIT("x-a")),
		     0);
	CHECK_EQ_STR(val(&l, "Access-Control-Allow-Origin"), "https://a.bar.com");
	CHECK_EQ_STR(val(&l, "Access-Control-Allow-Credentials"), "true");
	CHECK_EQ_STR(val(&l, "Access-Control-Allow-Methods"), "GET, OPTIONS");
	CHECK_EQ_STR(val(&l, "Access-Control-Allow-Headers"), "x-a, x-b");
	CHECK_EQ_STR(val(&l, "Access-Control-Max-Age"), "5");
	CHECK_EQ_STR(val(&l, "Access-Control-Expose-Headers"), "x-e");

	hlist_init(&l, a, 4);
	px_cors_headers(&l, a, &c, STR_LIT("https://www.foo.com"), false, STR_LIT(""), STR_LIT(""));
	CHECK_EQ_STR(val(&l, "Access-Control-Expose-Headers"), "x-e");
	CHECK_EQ_STR(val(&l, "Access-Control-Allow-Methods"), "(none)");

	hlist_init(&l, a, 4);
	px_cors_headers(&l, a, &c, STR_LIT("https://evil.com"), true, STR_LIT("GET"), STR_LIT(""));
	CHECK_EQ_INT(l.n, 0);

	char *star[] = {"*"};
	struct snap_cors any = {star, 1, false, star, 1, star, 1, NULL, 0, 60};
	hlist_init(&l, a, 4);
	px_cors_headers(&l, a, &any, STR_LIT("https://x.org"), true, STR_LIT("PATCH"),
			STR_LIT("x-q, x-r"));
	CHECK_EQ_STR(val(&l, "Access-Control-Allow-Origin"), "*");
	CHECK_EQ_STR(val(&l, "Access-Control-Max-Age"), "60");
	/* a configured "*" answers what the preflight asked for */
	CHECK_EQ_STR(val(&l, "Access-Control-Allow-Methods"), "PATCH");
	CHECK_EQ_STR(val(&l, "Access-Control-Allow-Headers"), "x-q, x-r");
	arena_free(a);
}

TEST(filters_writer_overflow_is_sticky)
{
	char b[8];
	struct wr w = {b, 0, sizeof(b), false};
	wr_cstr(&w, "abc");
	wr_u64(&w, 12345);
	CHECK(!w.overflow);
	CHECK_EQ_MEM(b, w.len, "abc12345");
	wr_cstr(&w, "x");
	CHECK(w.overflow);
	CHECK_EQ_INT(w.len, 8);
}

TEST(filters_refuse_values_that_would_split_a_head)
{
	struct arena *a = arena_new(0);
	struct hlist l;
	hlist_init(&l, a, 2);
	struct snap_header set[] = {
		{"X-Bad", "a\r\nInjected: 1"}, {"Bad Name", "v"}, {"X-Good", "ok"}};
	struct snap_header_mod m = {set, 3, NULL, 0, NULL, 0};
	CHECK_EQ_INT(hlist_apply(&l, a, &m), 0);
	CHECK_EQ_INT(l.n, 1);
	CHECK_EQ_STR(val(&l, "X-Good"), "ok");
	CHECK(px_path_modify(a, STR_LIT("/a"), SNAP_PATH_FULL, "/x\r\ny", 0) == NULL);
	struct snap_redirect r = {.hostname = "h\r\nX: y"};
	CHECK(px_redirect_location(a, &r, "http", "h", 80, STR_LIT("/"), STR_LIT(""), 0) == NULL);
	CHECK(px_is_clean("/fine/path?x=1"));
	CHECK(!px_is_clean("a b"));
	CHECK(px_is_clean(NULL));
	arena_free(a);
}

TEST(filters_upstream_head_fields_and_order)
{
	struct arena *a = arena_new(0);
	struct hlist hl;
	char out[512];
	CHECK_EQ_INT(hlist_init(&hl, a, 4), 0);
	hlist_add(&hl, a, STR_LIT("Via"), STR_LIT("1.1 client-proxy"));
	hlist_add(&hl, a, STR_LIT("X-Forwarded-For"), STR_LIT("10.0.0.1"));
	hlist_add(&hl, a, STR_LIT("Accept"), STR_LIT("*/*"));
	hlist_add(&hl, a, STR_LIT("X-Gone"), STR_LIT("x"));
	hlist_remove(&hl, STR_LIT("X-Gone"));
	struct up_head h = {
		.method = STR_LIT("GET"),
		.path = STR_LIT("/new"),
		.query = STR_LIT("q=1"),
		.host = STR_LIT("inner.test"),
		.xfh = STR_LIT("outer.test"),
		.peer = "127.0.0.9",
		.https = true,
		.via = STR_LIT("2 waygate"),
	};
	struct wr o = {out, 0, sizeof(out), false};
	wr_up_head(&o, &h, &hl);
	CHECK(!o.overflow);
	CHECK_EQ_MEM(o.p, o.len,
		     "GET /new?q=1 HTTP/1.1\r\nHost: inner.test\r\nVia: 1.1 client-proxy\r\n"
		     "Accept: */*\r\nX-Forwarded-For: 10.0.0.1, 127.0.0.9\r\n"
		     "X-Forwarded-Proto: https\r\nX-Forwarded-Host: outer.test\r\n"
		     "Via: 2 waygate\r\n");

	/* no query, no client Host, Via turned off, plain */
	h.query = h.xfh = h.via = STR_LIT("");
	h.https = false;
	hlist_remove(&hl, STR_LIT("X-Forwarded-For"));
	o = (struct wr){out, 0, sizeof(out), false};
	wr_up_head(&o, &h, &hl);
	CHECK_EQ_MEM(o.p, o.len,
		     "GET /new HTTP/1.1\r\nHost: inner.test\r\nVia: 1.1 client-proxy\r\n"
		     "Accept: */*\r\nX-Forwarded-For: 127.0.0.9\r\nX-Forwarded-Proto: http\r\n");
	arena_free(a);
}
