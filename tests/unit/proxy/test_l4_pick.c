/* SPDX-License-Identifier: MIT */
/*
 * Tests of proxy/l4_pick.c: SNI hostname matching and precedence (exact
 * beats the longest wildcard beats a listener or route without hostnames;
 * a wildcard needs at least one label), the listener of a shared TLS socket
 * for an SNI, the TLSRoute of a listener for an SNI, weighted backend draws
 * (zero weights never chosen, shares as configured), and the UDP session
 * table (find, LRU order on touch, eviction order, removal, key families).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "../check.h"
#include "proxy/l4.h"

TEST(l4_host_exact_and_wildcard)
{
	CHECK(l4_host_matches("abc.example.com", "abc.example.com"));
	CHECK(l4_host_matches("ABC.example.com", "abc.example.com"));
	CHECK(!l4_host_matches("abc.example.com", "x.abc.example.com"));
	CHECK(l4_host_matches("*.example.com", "abc.example.com"));
	CHECK(l4_host_matches("*.example.com", "a.b.example.com"));
	CHECK(!l4_host_matches("*.example.com", "example.com"));
	CHECK(!l4_host_matches("*.example.com", "xexample.com"));
	CHECK(!l4_host_matches(NULL, "abc.example.com"));
	CHECK(!l4_host_matches("abc.example.com", ""));
	/* exact outranks every wildcard, a longer wildcard a shorter one */
	CHECK(l4_host_rank("a.b.example.com", "a.b.example.com") >
	      l4_host_rank("*.b.example.com", "a.b.example.com"));
	CHECK(l4_host_rank("*.b.example.com", "a.b.example.com") >
	      l4_host_rank("*.example.com", "a.b.example.com"));
	CHECK_EQ_INT(l4_host_rank("*.other.com", "a.example.com"), -1);
}

static struct snap_listener mk_listener(enum snap_proto p, char *host)
{
	struct snap_listener l;
	memset(&l, 0, sizeof(l));
	l.proto = p;
	l.hostname = host;
	return l;
}

TEST(l4_listener_for_sni_precedence)
{
	struct snap_listener any = mk_listener(SNAP_P_TLS, NULL);
	struct snap_listener wild = mk_listener(SNAP_P_TLS, "*.example.com");
	struct snap_listener wild2 = mk_listener(SNAP_P_HTTPS, "*.sub.example.com");
	struct snap_listener exact = mk_listener(SNAP_P_TLS, "abc.example.com");
	struct snap_listener *v[] = {&any, &wild, &wild2, &exact};
	struct snap_socket s = {.listeners = v, .n_listeners = 4};

	CHECK_EQ_INT(l4_listener_for_sni(&s, "abc.example.com"), 3);
	CHECK_EQ_INT(l4_listener_for_sni(&s, "x.example.com"), 1);
	CHECK_EQ_INT(l4_listener_for_sni(&s, "x.sub.example.com"), 2);
	CHECK_EQ_INT(l4_listener_for_sni(&s, "other.org"), 0);
	CHECK_EQ_INT(l4_listener_for_sni(&s, ""), 0);
	CHECK_EQ_INT(l4_listener_for_sni(&s, NULL), 0);
	s.n_listeners = 3; /* without the exact one, and then without "any" */
	v[0] = &wild;
	CHECK_EQ_INT(l4_listener_for_sni(&s, "other.org"), -1);
	CHECK_EQ_INT(l4_listener_for_sni(&s, ""), -1);
}

TEST(l4_tls_route_for_sni_precedence)
{
	char *h_wild[] = {"*.example.com"};
	char *h_exact[] = {"foo.example.com", "bar.example.com"};
	char *h_exact_late[] = {"foo.example.com"};
	struct snap_tls_route r[4] = {
		{.route = "ns/wild", .hostnames = h_wild, .n_hostnames = 1},
		{.route = "ns/exact", .hostnames = h_exact, .n_hostnames = 2},
		{.route = "ns/exact-later", .hostnames = h_exact_late, .n_hostnames = 1},
		{.route = "ns/any"},
	};
	struct snap_listener l = mk_listener(SNAP_P_TLS, NULL);
	l.tls_routes = r;
	l.n_tls_routes = 4;

	CHECK_EQ_STR(l4_tls_route_for_sni(&l, "foo.example.com")->route, "ns/exact");
	CHECK_EQ_STR(l4_tls_route_for_sni(&l, "bar.example.com")->route, "ns/exact");
	CHECK_EQ_STR(l4_tls_route_for_sni(&l, "baz.example.com")->route, "ns/wild");
	CHECK_EQ_STR(l4_tls_route_for_sni(&l, "example.org")->route, "ns/any");
	CHECK_EQ_STR(l4_tls_route_for_sni(&l, "")->route, "ns/any");
	l.n_tls_routes = 3;
	CHECK(l4_tls_route_for_sni(&l, "example.org") == NULL);
	CHECK(l4_tls_route_for_sni(&l, NULL) == NULL);
}

TEST(l4_pick_backend_weights)
{
	struct snap_backend b[3] = {
		{.name = "a", .weight = 0}, {.name = "b", .weight = 1}, {.name = "c", .weight = 3}};
	unsigned seen[3] = {0};

	for (uint64_t r = 0; r < 400; r++) {
		const struct snap_backend *x = l4_pick_backend(b, 3, r);
		CHECK(x != NULL);
		if (x)
			seen[x - b]++;
	}
	CHECK_EQ_INT(seen[0], 0);
	CHECK_EQ_INT(seen[1], 100);
	CHECK_EQ_INT(seen[2], 300);
	b[1].weight = b[2].weight = 0;
	CHECK(l4_pick_backend(b, 3, 7) == NULL);
	CHECK(l4_pick_backend(b, 0, 7) == NULL);
	/* usable: valid and with endpoints */
	struct snap_endpoint ep = {.addr = "127.0.0.1", .port = 1};
	struct snap_backend ok = {.weight = 1, .endpoints = &ep, .n_endpoints = 1};
	struct snap_backend bad = ok;
	bad.invalid_status = 500;
	struct snap_backend empty = {.weight = 1};
	CHECK(l4_backend_usable(&ok));
	CHECK(!l4_backend_usable(&bad));
	CHECK(!l4_backend_usable(&empty));
	CHECK(!l4_backend_usable(NULL));
}

struct tsess {
	struct l4_slink link;
	int id;
};

static void key4(struct l4_skey *k, uint64_t sock, const char *ip, uint16_t port)
{
	struct sockaddr_in in = {.sin_family = AF_INET, .sin_port = htons(port)};
	inet_pton(AF_INET, ip, &in.sin_addr);
	CHECK_EQ_INT(l4_skey_from(k, sock, (struct sockaddr *)&in), 0);
}

TEST(l4_session_table_lru)
{
	struct l4_stab t;
	struct tsess s[4];
	struct l4_skey k;

	CHECK_EQ_INT(l4_stab_init(&t, 3), 0);
	memset(s, 0, sizeof(s));
	for (int i = 0; i < 3; i++) {
		s[i].id = i;
		key4(&s[i].link.key, 1, "10.0.0.1", (uint16_t)(1000 + i));
		CHECK(!l4_stab_full(&t));
		l4_stab_insert(&t, &s[i].link, 100 + (uint64_t)i);
	}
	CHECK(l4_stab_full(&t));
	/* found by key; another socket or port is another session */
	key4(&k, 1, "10.0.0.1", 1001);
	CHECK(l4_stab_find(&t, &k) == &s[1].link);
	key4(&k, 2, "10.0.0.1", 1001);
	CHECK(l4_stab_find(&t, &k) == NULL);
	key4(&k, 1, "10.0.0.2", 1001);
	CHECK(l4_stab_find(&t, &k) == NULL);
	/* oldest first; a touch makes an entry the most recent */
	CHECK(l4_stab_oldest(&t) == &s[0].link);
	l4_stab_touch(&t, &s[0].link, 200);
	CHECK(l4_stab_oldest(&t) == &s[1].link);
	CHECK_EQ_INT(s[0].link.last_ms, 200);
	/* eviction of the least recent, then a new one fits */
	l4_stab_remove(&t, l4_stab_oldest(&t));
	CHECK_EQ_INT(t.n, 2);
	key4(&k, 1, "10.0.0.1", 1001);
	CHECK(l4_stab_find(&t, &k) == NULL);
	s[3].id = 3;
	key4(&s[3].link.key, 1, "10.0.0.9", 53);
	l4_stab_insert(&t, &s[3].link, 300);
	CHECK(l4_stab_find(&t, &s[3].link.key) == &s[3].link);
	CHECK(l4_stab_oldest(&t) == &s[2].link);
	/* removing twice is harmless; the list stays consistent */
	l4_stab_remove(&t, &s[2].link);
	l4_stab_remove(&t, &s[2].link);
	CHECK_EQ_INT(t.n, 2);
	CHECK(t.head == &s[3].link);
	CHECK(t.tail == &s[0].link);
	l4_stab_remove(&t, &s[3].link);
	l4_stab_remove(&t, &s[0].link);
	CHECK(t.head == NULL && t.tail == NULL);
	CHECK_EQ_INT(t.n, 0);
	l4_stab_fini(&t);
}

TEST(l4_session_key_families)
{
	struct l4_skey a, b;
	struct sockaddr_in6 in6 = {.sin6_family = AF_INET6, .sin6_port = htons(53)};
	struct sockaddr un = {.sa_family = AF_UNIX};

	inet_pton(AF_INET6, "::1", &in6.sin6_addr);
	CHECK_EQ_INT(l4_skey_from(&a, 1, (struct sockaddr *)&in6), 0);
	CHECK_EQ_INT(a.family, AF_INET6);
	key4(&b, 1, "0.0.0.1", 53);
	CHECK(memcmp(&a, &b, sizeof(a)) != 0);
	CHECK(l4_skey_from(&a, 1, &un) < 0);
	struct l4_stab t;
	CHECK(l4_stab_init(&t, 0) < 0);
}
