/* SPDX-License-Identifier: MIT */
/*
 * test_snapimage.c: the snapshot image round-trips every field (a
 * hand-built snapshot that sets each one, and a reconciled one), keeps
 * shared arrays shared, and rejects truncated, altered or foreign bytes
 * without crashing or leaking.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "gwapi/snapimage.h"
#include "gwtest.h"

static char **strv(struct arena *a, size_t n, const char *prefix)
{
	char **v = arena_zalloc(a, n * sizeof(char *));
	for (size_t i = 0; i < n; i++)
		v[i] = arena_printf(a, "%s%zu", prefix, i);
	return v;
}

/* A snapshot in which every field of every type holds a value. */
static struct snapshot *rich_snapshot(void)
{
	struct arena *a = arena_new(0);
	struct snapshot *s = arena_zalloc(a, sizeof(*s));
	struct snap_backend_tls *bt = arena_zalloc(a, sizeof(*bt));
	struct snap_backend *mirror = arena_zalloc(a, sizeof(*mirror));
	struct snap_backend *be = arena_zalloc(a, 2 * sizeof(*be));
	struct snap_filter *f = arena_zalloc(a, 6 * sizeof(*f));
	struct snap_http_rule *rules = arena_zalloc(a, 2 * sizeof(*rules));
	struct snap_listener *l = arena_zalloc(a, 3 * sizeof(*l));

	s->arena = a;
	s->refs = 1;
	*bt = (struct snap_backend_tls){.sni = "b.example", .ca_pem = "CA", .use_system_cas = true,
					.sans = strv(a, 2, "san"), .n_sans = 2,
					.client_cert_pem = "CC", .client_key_pem = "CK"};
	*mirror = (struct snap_backend){.name = "ns/mirror:80", .weight = 1};
	f[0].type = SNAP_F_REQ_HEADER;
	f[0].u.header.set = arena_zalloc(a, sizeof(struct snap_header));
	f[0].u.header.set[0] = (struct snap_header){"x-set", "1"};
	f[0].u.header.n_set = 1;
	f[0].u.header.add = arena_zalloc(a, sizeof(struct snap_header));
	f[0].u.header.add[0] = (struct snap_header){"x-add", "2"};
	f[0].u.header.n_add = 1;
	f[0].u.header.remove = strv(a, 2, "x-rm");
	f[0].u.header.n_remove = 2;
	f[1].type = SNAP_F_RESP_HEADER;
	f[2].type = SNAP_F_REDIRECT;
	f[2].u.redirect = (struct snap_redirect){"https", "r.example", 8443, SNAP_PATH_PREFIX,
						 "/new", 308};
	f[3].type = SNAP_F_REWRITE;
	f[3].u.rewrite = (struct snap_rewrite){"w.example", SNAP_PATH_FULL, "/full"};
	f[4].type = SNAP_F_MIRROR;
	f[4].u.mirror = (struct snap_mirror){mirror, 25, 100};
	f[5].type = SNAP_F_CORS;
	f[5].u.cors = (struct snap_cors){.allow_origins = strv(a, 1, "https://o"),
					 .n_allow_origins = 1, .allow_credentials = true,
					 .allow_methods = strv(a, 2, "M"), .n_allow_methods = 2,
					 .allow_headers = strv(a, 1, "h"), .n_allow_headers = 1,
					 .expose_headers = strv(a, 3, "e"), .n_expose_headers = 3,
					 .max_age_s = 77};
	be[0] = (struct snap_backend){.name = "ns/a:80", .weight = 90, .proto = SNAP_APP_H2,
				      .tls = bt, .filters = f, .n_filters = 1};
	be[0].endpoints = arena_zalloc(a, 2 * sizeof(struct snap_endpoint));
	be[0].n_endpoints = 2;
	strcpy(be[0].endpoints[0].addr, "10.0.0.1");
	be[0].endpoints[0].port = 3000;
	strcpy(be[0].endpoints[1].addr, "fd00::1");
	be[0].endpoints[1].port = 3001;
	be[1] = (struct snap_backend){.name = "ns/bad:80", .weight = 10, .invalid_status = 500,
				      .tls = bt};
	for (int i = 0; i < 2; i++) {
		struct snap_http_rule *r = &rules[i];
		r->route = "ns/route";
		r->rule_name = i ? NULL : "named";
		r->rule_index = (uint32_t)i;
		r->grpc = i == 1;
		r->hostnames = strv(a, 2, "h.example.");
		r->n_hostnames = 2;
		r->match.path_type = i ? SNAP_PM_REGEX : SNAP_PM_EXACT;
		r->match.path = i ? "^/r[0-9]+$" : "/exact";
		r->match.method = i ? NULL : "POST";
		r->match.headers = arena_zalloc(a, sizeof(struct snap_kv_match));
		r->match.headers[0] = (struct snap_kv_match){SNAP_SM_REGEX, "x-h", "v.*"};
		r->match.n_headers = 1;
		r->match.query = arena_zalloc(a, sizeof(struct snap_kv_match));
		r->match.query[0] = (struct snap_kv_match){SNAP_SM_EXACT, "q", "1"};
		r->match.n_query = 1;
		/* two matches of one rule share its filters and backends */
		r->filters = f;
		r->n_filters = 6;
		r->backends = be;
		r->n_backends = 2;
		r->request_timeout_ms = 1500;
		r->backend_request_timeout_ms = 500;
		r->retry.codes = arena_zalloc(a, 2 * sizeof(int));
		r->retry.codes[0] = 502;
		r->retry.codes[1] = 503;
		r->retry.n_codes = 2;
		r->retry.attempts = 3;
		r->retry.backoff_ms = 25;
	}
	l[0] = (struct snap_listener){.gateway = "infra/gw", .name = "https",
				      .proto = SNAP_P_HTTPS, .hostname = "*.example",
				      .client_auth = SNAP_CA_ALLOW_INSECURE,
				      .client_ca_pem = "CLIENT CA", .http_rules = rules,
				      .n_http_rules = 2};
	l[0].certs = arena_zalloc(a, sizeof(struct snap_cert));
	l[0].certs[0] = (struct snap_cert){"CERT PEM", "KEY PEM", "infra/cert"};
	l[0].n_certs = 1;
	l[1] = (struct snap_listener){.gateway = "infra/gw", .name = "tls",
				      .proto = SNAP_P_TLS, .tls_mode = SNAP_TLS_PASSTHROUGH};
	l[1].tls_routes = arena_zalloc(a, sizeof(struct snap_tls_route));
	l[1].tls_routes[0] = (struct snap_tls_route){"ns/tls", strv(a, 1, "sni."), 1, be, 1};
	l[1].n_tls_routes = 1;
	l[2] = (struct snap_listener){.gateway = "infra/gw", .name = "tcp", .proto = SNAP_P_TCP,
				      .l4_route = "ns/tcp", .l4_backends = &be[1],
				      .n_l4_backends = 1};
	s->listeners = l;
	s->n_listeners = 3;
	s->sockets = arena_zalloc(a, 2 * sizeof(struct snap_socket));
	s->n_sockets = 2;
	strcpy(s->sockets[0].addr, "127.0.1.1");
	s->sockets[0].port = 443;
	s->sockets[0].listeners = arena_zalloc(a, 2 * sizeof(struct snap_listener *));
	s->sockets[0].listeners[0] = &l[0];
	s->sockets[0].listeners[1] = &l[1];
	s->sockets[0].n_listeners = 2;
	strcpy(s->sockets[1].addr, "::");
	s->sockets[1].port = 9000;
	s->sockets[1].transport = SNAP_T_UDP;
	s->sockets[1].listeners = arena_zalloc(a, sizeof(struct snap_listener *));
	s->sockets[1].listeners[0] = &l[2];
	s->sockets[1].n_listeners = 1;
	s->revision = 42;
	s->compiled_ms = 1234;
	return s;
}

static char *gws[] = {"infra/gw", "apps/other"};
static char *addrs[] = {"127.0.1.1", "127.0.1.2"};

TEST(gw_image_round_trip_keeps_every_field)
{
	struct snapshot *s = rich_snapshot();
	struct gw_image img;
	uint8_t *p = NULL, *q = NULL;
	size_t n = 0, m = 0;

	CHECK_EQ_INT(gw_image_encode(s, gws, addrs, 2, &p, &n), 0);
	CHECK_EQ_INT(gw_image_decode(p, n, &img), 0);
	if (!img.snap)
		goto out;
	/* Re-encoding the decoded snapshot gives the very same bytes: no field
	 * the encoder writes is lost on the way back. */
	CHECK_EQ_INT(gw_image_encode(img.snap, img.gateways, img.addresses, img.n_gateways, &q, &m),
		     0);
	CHECK_EQ_INT(m, n);
	CHECK(q && m == n && memcmp(p, q, n) == 0);

	const struct snapshot *d = img.snap;
	CHECK_EQ_INT(d->revision, 0);
	CHECK_EQ_INT(d->compiled_ms, 0);
	CHECK_EQ_INT(img.n_gateways, 2);
	CHECK_EQ_STR(img.gateways[1], "apps/other");
	CHECK_EQ_STR(img.addresses[1], "127.0.1.2");
	CHECK_EQ_INT(d->n_listeners, 3);
	CHECK_EQ_STR(d->listeners[0].certs[0].key_pem, "KEY PEM");
	CHECK_EQ_STR(d->listeners[0].client_ca_pem, "CLIENT CA");
	CHECK_EQ_INT(d->listeners[0].client_auth, SNAP_CA_ALLOW_INSECURE);
	const struct snap_http_rule *r = d->listeners[0].http_rules;
	CHECK_EQ_STR(r[0].match.method, "POST");
	CHECK(r[1].match.method == NULL);
	CHECK(r[1].rule_name == NULL);
	CHECK_EQ_STR(r[1].match.path, "^/r[0-9]+$");
	CHECK_EQ_INT(r[1].retry.codes[1], 503);
	CHECK_EQ_STR(r[0].backends[0].endpoints[1].addr, "fd00::1");
	CHECK_EQ_STR(r[0].backends[0].tls->client_key_pem, "CK");
	CHECK_EQ_STR(r[0].filters[4].u.mirror.backend->name, "ns/mirror:80");
	CHECK_EQ_INT(r[0].filters[5].u.cors.max_age_s, 77);
	CHECK_EQ_STR(r[0].filters[2].u.redirect.path, "/new");
	/* shared stays shared */
	CHECK(r[0].backends == r[1].backends);
	CHECK(r[0].filters == r[1].filters);
	CHECK(r[0].backends[0].tls == r[0].backends[1].tls);
	/* a prefix of a shared array is a value of its own */
	CHECK_EQ_INT(r[0].backends[0].n_filters, 1);
	CHECK_EQ_STR(r[0].backends[0].filters[0].u.header.remove[1], "x-rm1");
	CHECK_EQ_STR(d->listeners[1].tls_routes[0].backends[0].name, "ns/a:80");
	CHECK_EQ_STR(d->listeners[2].l4_backends[0].name, "ns/bad:80");
	CHECK(d->sockets[0].listeners[1] == &d->listeners[1]);
	CHECK(d->sockets[1].listeners[0] == &d->listeners[2]);
	CHECK_EQ_INT(d->sockets[1].transport, SNAP_T_UDP);
out:
	gw_image_fini(&img);
	gw_image_buf_free(p, n);
	gw_image_buf_free(q, m);
	snap_unref(s);
}

TEST(gw_image_rejects_truncated_altered_and_foreign_bytes)
{
	struct snapshot *s = rich_snapshot();
	struct gw_image img;
	uint8_t *p = NULL;
	size_t n = 0, rejected = 0;

	CHECK_EQ_INT(gw_image_encode(s, gws, addrs, 2, &p, &n), 0);
	for (size_t len = 0; len < n; len++) {
		if (gw_image_decode(p, len, &img) == -EINVAL && !img.snap)
			rejected++;
		gw_image_fini(&img);
	}
	CHECK_EQ_INT(rejected, n);
	/* trailing bytes */
	uint8_t *longer = malloc(n + 1);
	memcpy(longer, p, n);
	longer[n] = 0;
	CHECK_EQ_INT(gw_image_decode(longer, n + 1, &img), -EINVAL);
	free(longer);
	/* another format version */
	p[4] ^= 0x7f;
	CHECK_EQ_INT(gw_image_decode(p, n, &img), -EINVAL);
	p[4] ^= 0x7f;
	/* Any single altered byte either still decodes to some snapshot or is
	 * rejected; it never crashes (the sanitizer build checks reads). */
	for (size_t i = 12; i < n; i++) {
		uint8_t keep = p[i];
		p[i] = (uint8_t)(keep ^ 0xa5);
		int err = gw_image_decode(p, n, &img);
		CHECK(err == 0 || err == -EINVAL);
		gw_image_fini(&img);
		p[i] = keep;
	}
	gw_image_buf_free(p, n);
	snap_unref(s);
}

TEST(gw_image_of_reconciled_snapshot_describes_the_same_routes)
{
	struct gw_objset *set = gw_objset_new();
	struct gw_result res = {0};
	struct gw_image img;
	uint8_t *p = NULL;
	size_t n = 0;

	gwt_base(set);
	gwt_put(set, "{'apiVersion':'gateway.networking.k8s.io/v1','kind':'Gateway','metadata':{"
		     "'namespace':'infra','name':'gw','generation':1},'spec':{'gatewayClassName':"
		     "'wg','listeners':[{'name':'http','port':80,'protocol':'HTTP'}]}}");
	gwt_put(set, "{'apiVersion':'gateway.networking.k8s.io/v1','kind':'HTTPRoute','metadata':{"
		     "'namespace':'infra','name':'r','generation':1},'spec':{'parentRefs':[{'name':"
		     "'gw'}],'hostnames':['a.example'],'rules':[{'matches':[{'path':{'type':"
		     "'Exact','value':'/x'}},{'path':{'type':'PathPrefix','value':'/y'}}],"
		     "'filters':[{'type':'RequestHeaderModifier','requestHeaderModifier':{'set':"
		     "[{'name':'x-a','value':'1'}]}}],'backendRefs':[{'name':'svc','port':8080}]}]}}");
	CHECK_EQ_INT(gwt_run(set, "127.0.1.0/24", &res), 0);
	CHECK(res.snap != NULL);
	if (!res.snap)
		goto out;
	CHECK_EQ_INT(gw_image_encode(res.snap, res.gateways, res.addresses, res.n_gateways, &p, &n),
		     0);
	CHECK_EQ_INT(gw_image_decode(p, n, &img), 0);
	if (img.snap) {
		res.snap->compiled_ms = 0;
		char *a = gw_snapshot_to_json(res.snap), *b = gw_snapshot_to_json(img.snap);
		CHECK_EQ_STR(b, a);
		free(a);
		free(b);
		CHECK_EQ_INT(img.n_gateways, 1);
		CHECK_EQ_STR(img.addresses[0], "127.0.1.1");
		/* the rule's two matches still share one backend array */
		CHECK(img.snap->listeners[0].n_http_rules == 2 &&
		      img.snap->listeners[0].http_rules[0].backends ==
			      img.snap->listeners[0].http_rules[1].backends);
	}
	gw_image_fini(&img);
	gw_image_buf_free(p, n);
out:
	gwt_done(&res);
	gw_objset_free(set);
}

/* Every string the compiler writes is UTF-8 (from JSON or PEM text): an
 * image holding anything else is not ours and is rejected, instead of
 * decoding into a snapshot that cannot be shown as JSON. */
TEST(gw_image_rejects_strings_that_are_not_utf8)
{
	static const char *const bad[] = {"\xff", "a\xc3", "\xc0\xaf", "\xed\xa0\x80",
					  "\xf4\x90\x80\x80", "abcdefg\x80"};
	struct snapshot *s = rich_snapshot();
	struct gw_image img;
	uint8_t *p = NULL;
	size_t n = 0;

	s->listeners[0].http_rules[0].route = "ns/r\xc3\xa9sum\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80";
	CHECK_EQ_INT(gw_image_encode(s, gws, addrs, 2, &p, &n), 0);
	CHECK_EQ_INT(gw_image_decode(p, n, &img), 0);
	if (img.snap)
		CHECK_EQ_STR(img.snap->listeners[0].http_rules[0].route,
			     s->listeners[0].http_rules[0].route);
	gw_image_fini(&img);
	gw_image_buf_free(p, n);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		s->listeners[0].http_rules[0].route = (char *)(uintptr_t)bad[i];
		CHECK_EQ_INT(gw_image_encode(s, gws, addrs, 2, &p, &n), 0);
		CHECK_EQ_INT(gw_image_decode(p, n, &img), -EINVAL);
		CHECK(img.snap == NULL);
		gw_image_buf_free(p, n);
	}
	snap_unref(s);
}

/* s again, in the same arena, with listener 0's rules copied (the same
 * compiled data, as an incremental reconcile copies them) and then
 * changed by fn. */
static struct snapshot *copied(const struct snapshot *s, void (*fn)(struct snap_http_rule *))
{
	struct snapshot *c = arena_zalloc(s->arena, sizeof(*c));
	struct snap_listener *l = arena_zalloc(s->arena, s->n_listeners * sizeof(*l));
	struct snap_http_rule *r = arena_zalloc(s->arena, 2 * sizeof(*r));

	*c = *s;
	memcpy(l, s->listeners, s->n_listeners * sizeof(*l));
	memcpy(r, s->listeners[0].http_rules, 2 * sizeof(*r));
	l[0].http_rules = r;
	c->listeners = l;
	c->sockets = arena_zalloc(s->arena, s->n_sockets * sizeof(*c->sockets));
	for (size_t i = 0; i < s->n_sockets; i++) {
		struct snap_socket *so = &c->sockets[i];
		*so = s->sockets[i];
		so->listeners = arena_zalloc(s->arena, so->n_listeners * sizeof(*so->listeners));
		for (size_t k = 0; k < so->n_listeners; k++)
			so->listeners[k] = &l[s->sockets[i].listeners[k] - s->listeners];
	}
	fn(r);
	return c;
}

static void ch_none(struct snap_http_rule *r)
{
	(void)r;
}
static void ch_timeout(struct snap_http_rule *r)
{
	r[1].request_timeout_ms++;
}
static void ch_backend_timeout(struct snap_http_rule *r)
{
	r[0].backend_request_timeout_ms++;
}
static void ch_attempts(struct snap_http_rule *r)
{
	r[1].retry.attempts++;
}
static void ch_backoff(struct snap_http_rule *r)
{
	r[0].retry.backoff_ms++;
}
static void ch_codes(struct snap_http_rule *r)
{
	r[0].retry.n_codes = 1;
}
static void ch_index(struct snap_http_rule *r)
{
	r[1].rule_index = 7;
}
static void ch_grpc(struct snap_http_rule *r)
{
	r[0].grpc = !r[0].grpc;
}
static void ch_hosts(struct snap_http_rule *r)
{
	r[1].n_hostnames = 1;
}
static void ch_path_type(struct snap_http_rule *r)
{
	r[0].match.path_type = SNAP_PM_PREFIX;
}
static void ch_headers(struct snap_http_rule *r)
{
	r[0].match.n_headers = 0;
}
static void ch_query(struct snap_http_rule *r)
{
	r[1].match.n_query = 0;
}
static void ch_filters(struct snap_http_rule *r)
{
	r[1].n_filters = 2;
}
static void ch_backends(struct snap_http_rule *r)
{
	r[0].n_backends = 1;
}
static void ch_method(struct snap_http_rule *r)
{
	r[1].match.method = r[0].match.method;
}
static void ch_name(struct snap_http_rule *r)
{
	r[1].rule_name = r[0].rule_name;
}
static void ch_swap(struct snap_http_rule *r)
{
	struct snap_http_rule t = r[0];
	r[0] = r[1];
	r[1] = t;
}

/* A rule's cached bytes are taken only for a rule equal in every field:
 * a copied rule changed in any one field is encoded again, and the cached
 * encode equals the whole one. */
TEST(gw_image_cache_encodes_a_rule_changed_in_any_field_again)
{
	static void (*const change[])(struct snap_http_rule *) = {
		ch_none,    ch_timeout,  ch_backend_timeout, ch_attempts,  ch_backoff, ch_codes,
		ch_index,   ch_grpc,     ch_hosts,           ch_path_type, ch_headers, ch_query,
		ch_filters, ch_backends, ch_method,          ch_name,      ch_swap,
	};
	struct snapshot *s = rich_snapshot();

	for (size_t i = 0; i < sizeof(change) / sizeof(change[0]); i++) {
		struct gw_image_cache *c = gw_image_cache_new();
		struct snapshot *t = copied(s, change[i]);
		uint8_t *p = NULL, *q = NULL;
		size_t n = 0, m = 0;

		uint64_t d = 0;
		CHECK_EQ_INT(gw_image_cache_update(c, s, gws, addrs, 2, &d), 0);
		CHECK_EQ_INT(gw_image_cache_update(c, t, gws, addrs, 2, &d), 0);
		CHECK_EQ_INT(gw_image_cache_bytes(c, &p, &n), 0);
		CHECK_EQ_INT(gw_image_encode(t, gws, addrs, 2, &q, &m), 0);
		CHECK(p && d == gw_image_digest(p, n));
		if (!p || !q || n != m || memcmp(p, q, n))
			fprintf(stderr, "  change %zu: cached image differs\n", i);
		CHECK(p && q && n == m && memcmp(p, q, n) == 0);
		gw_image_buf_free(p, n);
		gw_image_buf_free(q, m);
		/* and back: the pieces of s were dropped for t's */
		CHECK_EQ_INT(gw_image_cache_update(c, s, gws, addrs, 2, &d), 0);
		CHECK_EQ_INT(gw_image_cache_bytes(c, &p, &n), 0);
		CHECK_EQ_INT(gw_image_encode(s, gws, addrs, 2, &q, &m), 0);
		CHECK(p && q && n == m && memcmp(p, q, n) == 0);
		gw_image_buf_free(p, n);
		gw_image_buf_free(q, m);
		gw_image_cache_free(c);
	}
	snap_unref(s);
}

/* The cache keeps the last snapshot's memory: dropped by its owner right
 * after the update, the cache still writes its image and takes its rules
 * safely (the sanitizer build checks). */
TEST(gw_image_cache_holds_the_last_snapshot)
{
	struct gw_image_cache *c = gw_image_cache_new();
	struct snapshot *s = rich_snapshot();
	uint8_t *p = NULL, *q = NULL;
	size_t n = 0, m = 0;

	uint64_t d = 0;
	CHECK_EQ_INT(gw_image_encode(s, gws, addrs, 2, &q, &m), 0);
	CHECK_EQ_INT(gw_image_cache_update(c, s, gws, addrs, 2, &d), 0);
	snap_unref(s); /* the arena lives on in the cache */
	CHECK_EQ_INT(gw_image_cache_bytes(c, &p, &n), 0);
	struct gw_image img;
	CHECK_EQ_INT(gw_image_decode(p, n, &img), 0);
	if (img.snap) {
		uint8_t *p2 = NULL;
		size_t n2 = 0;
		CHECK_EQ_INT(gw_image_cache_update(c, img.snap, img.gateways, img.addresses,
						   img.n_gateways, &d),
			     0);
		CHECK_EQ_INT(gw_image_cache_bytes(c, &p2, &n2), 0);
		CHECK(p2 && n2 == m && memcmp(p2, q, m) == 0);
		gw_image_buf_free(p2, n2);
	}
	gw_image_fini(&img); /* likewise */
	gw_image_buf_free(p, n);
	gw_image_buf_free(q, m);
	gw_image_cache_free(c);
}

/* An image of the format before (version 1) is rejected: the start path
 * then rebuilds the revision from its objects. */
TEST(gw_image_rejects_an_earlier_format_version)
{
	struct snapshot *s = rich_snapshot();
	struct gw_image img;
	uint8_t *p = NULL;
	size_t n = 0;
	uint32_t v = 1;

	CHECK_EQ_INT(gw_image_encode(s, gws, addrs, 2, &p, &n), 0);
	if (p)
		memcpy(p + 4, &v, sizeof(v));
	CHECK_EQ_INT(gw_image_decode(p, n, &img), -EINVAL);
	CHECK(img.snap == NULL);
	gw_image_buf_free(p, n);
	snap_unref(s);
}

/* Values equal in every byte are written once, whoever holds them: two
 * routes' backend arrays alike are one value, and the digest is a hash of
 * the records' hashes, which changes with any record. */
TEST(gw_image_writes_equal_values_once_and_digests_records)
{
	struct snapshot *s = rich_snapshot();
	struct snap_backend *copy = arena_zalloc(s->arena, 2 * sizeof(*copy));
	uint8_t *p = NULL, *q = NULL;
	size_t n = 0, m = 0;

	CHECK_EQ_INT(gw_image_encode(s, gws, addrs, 2, &p, &n), 0);
	memcpy(copy, s->listeners[0].http_rules[1].backends, 2 * sizeof(*copy));
	s->listeners[0].http_rules[1].backends = copy;
	CHECK_EQ_INT(gw_image_encode(s, gws, addrs, 2, &q, &m), 0);
	CHECK(p && q && n == m && memcmp(p, q, n) == 0);
	/* any byte of any record changes the digest */
	for (size_t i = 16; q && i < m; i += 7) {
		uint64_t d = gw_image_digest(q, m);
		q[i] ^= 0x10;
		CHECK(gw_image_digest(q, m) != d);
		q[i] ^= 0x10;
	}
	gw_image_buf_free(p, n);
	gw_image_buf_free(q, m);
	snap_unref(s);
}

/* WG_IMAGE_SEEDS=DIR writes the images tests/fuzz/corpus/snapimage/ is
 * seeded with (then named by their SHA-1, as libFuzzer names inputs):
 * the rich snapshot, its UTF-8 variant, a reconciled one, an empty one. */
static void seed(const char *dir, const char *name, const uint8_t *p, size_t n)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "wb");
	CHECK(f != NULL);
	if (f) {
		CHECK_EQ_INT(fwrite(p, 1, n, f), n);
		fclose(f);
	}
}

TEST(gw_image_fuzz_seeds)
{
	const char *dir = getenv("WG_IMAGE_SEEDS");
	struct snapshot *s, empty = {0};
	struct gw_objset *set;
	struct gw_result res = {0};
	uint8_t *p = NULL;
	size_t n = 0;

	if (!dir)
		return;
	s = rich_snapshot();
	CHECK_EQ_INT(gw_image_encode(s, gws, addrs, 2, &p, &n), 0);
	seed(dir, "rich", p, n);
	gw_image_buf_free(p, n);
	s->listeners[0].http_rules[0].route = "ns/r\xc3\xa9sum\xc3\xa9 \xe2\x82\xac";
	CHECK_EQ_INT(gw_image_encode(s, gws, addrs, 1, &p, &n), 0);
	seed(dir, "utf8", p, n);
	gw_image_buf_free(p, n);
	snap_unref(s);
	CHECK_EQ_INT(gw_image_encode(&empty, NULL, NULL, 0, &p, &n), 0);
	seed(dir, "empty", p, n);
	gw_image_buf_free(p, n);
	set = gw_objset_new();
	gwt_base(set);
	gwt_put(set, "{'apiVersion':'gateway.networking.k8s.io/v1','kind':'Gateway','metadata':{"
		     "'namespace':'infra','name':'gw','generation':1},'spec':{'gatewayClassName':"
		     "'wg','listeners':[{'name':'http','port':80,'protocol':'HTTP'}]}}");
	gwt_put(set, "{'apiVersion':'gateway.networking.k8s.io/v1','kind':'HTTPRoute','metadata':{"
		     "'namespace':'infra','name':'r','generation':1},'spec':{'parentRefs':[{'name':"
		     "'gw'}],'hostnames':['a.example'],'rules':[{'matches':[{'path':{'type':"
		     "'Exact','value':'/x'}},{'path':{'type':'PathPrefix','value':'/y'}}],"
		     "'backendRefs':[{'name':'svc','port':8080}]}]}}");
	CHECK_EQ_INT(gwt_run(set, "127.0.1.0/24", &res), 0);
	if (res.snap &&
	    !gw_image_encode(res.snap, res.gateways, res.addresses, res.n_gateways, &p, &n)) {
		seed(dir, "reconciled", p, n);
		gw_image_buf_free(p, n);
	}
	gwt_done(&res);
	gw_objset_free(set);
}
