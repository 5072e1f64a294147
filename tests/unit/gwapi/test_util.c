/* SPDX-License-Identifier: MIT */
/*
 * test_util.c: table-driven tests of reconcile's pure helpers: hostname
 * validity, intersection and precedence, Gateway API durations, address
 * pools and label selectors.
 */
#include <errno.h>

#include "check.h"
#include "core/arena.h"
#include "gwapi/internal.h"

TEST(gw_hostname_valid_table)
{
	static const struct {
		const char *h;
		bool wildcard_ok;
		bool want;
	} t[] = {
		{"example.com", false, true},
		{"a-b.example.com", false, true},
		{"*.example.com", true, true},
		{"*.example.com", false, false},
		{"*example.com", true, false},
		{"foo.*.com", true, false},
		{"-a.example.com", false, false},
		{"a-.example.com", false, false},
		{"Example.com", false, false},
		{"a..b", false, false},
		{"", false, false},
		{"10.0.0.1", false, false},
		{"x", false, true},
		{"*.", true, false},
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		bool got = gw_hostname_is_valid(t[i].h, t[i].wildcard_ok);
		if (got != t[i].want)
			fprintf(stderr, "  case %zu: \"%s\"\n", i, t[i].h);
		CHECK_EQ_INT(got, t[i].want);
	}
}

TEST(gw_hostname_intersect_table)
{
	static const struct {
		const char *listener, *route;
		bool match;
		const char *out;
	} t[] = {
		{NULL, "foo.example.com", true, "foo.example.com"},
		{NULL, NULL, true, NULL},
		{"foo.example.com", NULL, true, "foo.example.com"},
		{"foo.example.com", "foo.example.com", true, "foo.example.com"},
		{"foo.example.com", "FOO.example.com", true, "foo.example.com"},
		{"foo.example.com", "bar.example.com", false, NULL},
		{"*.example.com", "foo.example.com", true, "foo.example.com"},
		{"*.example.com", "a.b.example.com", true, "a.b.example.com"},
		{"*.example.com", "example.com", false, NULL},
		{"foo.example.com", "*.example.com", true, "foo.example.com"},
		{"example.com", "*.example.com", false, NULL},
		{"*.example.com", "*.example.com", true, "*.example.com"},
		{"*.example.com", "*.foo.example.com", true, "*.foo.example.com"},
		{"*.foo.example.com", "*.example.com", true, "*.foo.example.com"},
		{"*.example.com", "*.example.org", false, NULL},
		{"*.wildcard.org", "fourth-example.wildcard.org", true,
		 "fourth-example.wildcard.org"},
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		const char *out = "unset";
		bool got = gw_hostname_intersect(t[i].listener, t[i].route, &out);
		if (got != t[i].match)
			fprintf(stderr, "  case %zu: %s x %s\n", i,
				t[i].listener ? t[i].listener : "-", t[i].route ? t[i].route : "-");
		CHECK_EQ_INT(got, t[i].match);
		if (t[i].match && t[i].out)
			CHECK_EQ_STR(out, t[i].out);
		if (t[i].match && !t[i].out)
			CHECK(out == NULL);
	}
}

TEST(gw_hostname_precedence_table)
{
	/* Sorted order: exact, longer wildcard, shorter wildcard, any. */
	static const char *const order[] = {"a.b.example.com", "foo.example.com", "*.b.example.com",
					    "*.example.com", NULL};
	size_t n = sizeof(order) / sizeof(order[0]);
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < n; j++) {
			int c = gw_hostname_cmp(order[i], order[j]);
			if (i < j)
				CHECK(c < 0);
			else if (i > j)
				CHECK(c > 0);
			else
				CHECK_EQ_INT(c, 0);
		}
}

TEST(gw_duration_table)
{
	static const struct {
		const char *s;
		int rc;
		uint64_t ms;
	} t[] = {
		{"0s", 0, 0},         {"10s", 0, 10000},       {"500ms", 0, 500},
		{"1h", 0, 3600000},   {"1h2m", 0, 3720000},    {"1h2m3s4ms", 0, 3723004},
		{"2m30s", 0, 150000}, {"", -EINVAL, 0},        {"10", -EINVAL, 0},
		{"s", -EINVAL, 0},    {"1d", -EINVAL, 0},      {"1.5s", -EINVAL, 0},
		{"-1s", -EINVAL, 0},  {"100000s", -EINVAL, 0}, {"99999ms", 0, 99999},
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		uint64_t ms = 12345;
		int rc = gw_duration_parse(t[i].s, &ms);
		if (rc != t[i].rc)
			fprintf(stderr, "  case %zu: \"%s\"\n", i, t[i].s);
		CHECK_EQ_INT(rc, t[i].rc);
		if (!t[i].rc)
			CHECK_EQ_INT(ms, t[i].ms);
	}
}

TEST(gw_pool_table)
{
	struct gw_pool p;
	char buf[64];
	uint8_t ip[16];
	int fam;

	CHECK_EQ_INT(gw_pool_parse("127.0.1.0/24", &p), 0);
	CHECK_EQ_INT(gw_pool_size(&p), 254);
	CHECK(gw_pool_nth(&p, 0, buf, sizeof(buf)));
	CHECK_EQ_STR(buf, "127.0.1.1");
	CHECK(gw_pool_nth(&p, 253, buf, sizeof(buf)));
	CHECK_EQ_STR(buf, "127.0.1.254");
	CHECK(!gw_pool_nth(&p, 254, buf, sizeof(buf)));
	CHECK(gw_ip_parse("127.0.1.250", ip, &fam));
	CHECK(gw_pool_contains(&p, ip, fam));
	CHECK(gw_ip_parse("192.0.2.10", ip, &fam));
	CHECK(!gw_pool_contains(&p, ip, fam));
	/* host bits are cleared; /32 has one address */
	CHECK_EQ_INT(gw_pool_parse("10.1.2.3/32", &p), 0);
	CHECK_EQ_INT(gw_pool_size(&p), 1);
	CHECK(gw_pool_nth(&p, 0, buf, sizeof(buf)));
	CHECK_EQ_STR(buf, "10.1.2.3");
	CHECK_EQ_INT(gw_pool_parse("10.1.2.77/30", &p), 0);
	CHECK(gw_pool_nth(&p, 0, buf, sizeof(buf)));
	CHECK_EQ_STR(buf, "10.1.2.77");
	CHECK_EQ_INT(gw_pool_parse("fd00::/120", &p), 0);
	CHECK(gw_pool_nth(&p, 0, buf, sizeof(buf)));
	CHECK_EQ_STR(buf, "fd00::1");
	CHECK(gw_ip_parse("fd00::1", ip, &fam));
	CHECK(gw_pool_contains(&p, ip, fam));
	CHECK(gw_ip_parse("127.0.0.1", ip, &fam));
	CHECK(!gw_pool_contains(&p, ip, fam));
	CHECK_EQ_INT(gw_pool_parse("10.0.0.0", &p), -EINVAL);
	CHECK_EQ_INT(gw_pool_parse("10.0.0.0/33", &p), -EINVAL);
	CHECK_EQ_INT(gw_pool_parse("nope/8", &p), -EINVAL);
}

TEST(gw_selector_table)
{
	struct gw_kv labels[] = {{"team", "infra"}, {"env", "prod"}};
	struct gw_kv want_team = {"team", "infra"}, want_other = {"team", "apps"};
	const char *vals[] = {"prod", "stage"};
	struct gw_sel_expr in = {"env", "In", vals, 2}, notin = {"env", "NotIn", vals, 2};
	struct gw_sel_expr exists = {"env", "Exists", NULL, 0},
			   dne = {"zone", "DoesNotExist", NULL, 0};
	struct gw_sel_expr bogus = {"env", "Like", NULL, 0};
	struct gw_selector s;

	memset(&s, 0, sizeof(s));
	CHECK(gw_selector_match(&s, labels, 2)); /* empty selects all */
	s.labels = &want_team;
	s.n_labels = 1;
	CHECK(gw_selector_match(&s, labels, 2));
	s.labels = &want_other;
	CHECK(!gw_selector_match(&s, labels, 2));
	memset(&s, 0, sizeof(s));
	s.exprs = &in;
	s.n_exprs = 1;
	CHECK(gw_selector_match(&s, labels, 2));
	s.exprs = &notin;
	CHECK(!gw_selector_match(&s, labels, 2));
	s.exprs = &exists;
	CHECK(gw_selector_match(&s, labels, 2));
	CHECK(!gw_selector_match(&s, labels, 1));
	s.exprs = &dne;
	CHECK(gw_selector_match(&s, labels, 2));
	s.exprs = &bogus;
	CHECK(!gw_selector_match(&s, labels, 2));
}

TEST(gw_map_grows_and_finds)
{
	struct arena *a = arena_new(0);
	struct gw_map m;
	char *keys[500];

	gw_map_init(&m, a);
	CHECK(gw_map_get(&m, "absent") == NULL);
	for (int i = 0; i < 500; i++) {
		keys[i] = arena_printf(a, "ns/name-%d", i);
		CHECK_EQ_INT(gw_map_put(&m, keys[i], keys[i]), 0);
	}
	CHECK_EQ_INT(m.n, 500);
	for (int i = 0; i < 500; i++)
		CHECK(gw_map_get(&m, keys[i]) == keys[i]);
	CHECK(gw_map_get(&m, "ns/name-500") == NULL);
	CHECK(gw_map_get(&m, NULL) == NULL);
	CHECK_EQ_INT(gw_map_put(&m, keys[7], NULL), 0);
	CHECK_EQ_INT(m.n, 500);
	CHECK(gw_map_get(&m, keys[7]) == NULL);
	arena_free(a);
}

TEST(gw_time_format_rfc3339)
{
	char buf[32];
	gw_time_format(0, buf, sizeof(buf));
	CHECK_EQ_STR(buf, "1970-01-01T00:00:00Z");
	gw_time_format(1790000000999ULL, buf, sizeof(buf));
	CHECK_EQ_STR(buf, "2026-09-21T14:13:20Z");
}
