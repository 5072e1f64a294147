/* SPDX-License-Identifier: MIT */
/* tests for src/proxy/admit.c: the per-address table and the three caps. */
#include <arpa/inet.h>
#include <netinet/in.h>

#include "../check.h"

#include "proxy/admit.c"

static void key_for(uint8_t key[18], unsigned i)
{
	memset(key, 0, 18);
	memcpy(key, &i, sizeof(i));
	key[16] = (uint8_t)(i % 3); /* a few ports */
}

/* Random increments and decrements against a plain array: counts stay
 * right through growth and backward-shift deletions. */
TEST(admit_peer_table_matches_reference)
{
	enum { KEYS = 700, STEPS = 60000 };
	static uint32_t ref[KEYS];
	struct peer_tab t = {0};
	uint8_t key[18];
	uint64_t x = 88172645463325252ull;

	memset(ref, 0, sizeof(ref));
	for (int s = 0; s < STEPS; s++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		unsigned k = (unsigned)(x % KEYS);
		key_for(key, k);
		if ((x >> 32) % 3 && ref[k]) {
			peer_tab_dec(&t, key);
			ref[k]--;
		} else {
			CHECK_EQ_INT(peer_tab_inc(&t, key), ref[k] + 1);
			ref[k]++;
		}
	}
	size_t live = 0;
	for (unsigned k = 0; k < KEYS; k++) {
		key_for(key, k);
		CHECK_EQ_INT(peer_tab_count(&t, key), ref[k]);
		live += ref[k] != 0;
	}
	CHECK_EQ_INT(t.used, live);
	for (unsigned k = 0; k < KEYS; k++) {
		key_for(key, k);
		while (ref[k]--)
			peer_tab_dec(&t, key);
	}
	CHECK_EQ_INT(t.used, 0);
	for (size_t i = 0; i < t.cap; i++)
		CHECK_EQ_INT(t.v[i].n, 0);
	peer_tab_fini(&t);
}

static struct sockaddr_storage v4(const char *a)
{
	struct sockaddr_storage ss = {0};
	struct sockaddr_in *in = (struct sockaddr_in *)&ss;
	in->sin_family = AF_INET;
	inet_pton(AF_INET, a, &in->sin_addr);
	return ss;
}

static struct sockaddr_storage v6(const char *a)
{
	struct sockaddr_storage ss = {0};
	struct sockaddr_in6 *in = (struct sockaddr_in6 *)&ss;
	in->sin6_family = AF_INET6;
	inet_pton(AF_INET6, a, &in->sin6_addr);
	return ss;
}

/* Connections open on port, as the metrics read them. */
static uint32_t port_active(struct proxy *p, uint16_t port)
{
	struct proxy_port_conns pc[8];
	size_t n = proxy_port_conns(p, pc, 8);

	for (size_t i = 0; i < n; i++)
		if (pc[i].port == port)
			return pc[i].active;
	return 0;
}

TEST(admit_caps)
{
	struct proxy p = {0};
	struct px_limits port80 = {.port = 80};
	struct admit_ticket t[8];
	struct sockaddr_storage a = v4("192.0.2.1"), b = v4("192.0.2.2");

	pthread_mutex_init(&p.admit.mu, NULL);
	p.lim_box.l.max_connections = 5;
	p.lim_box.l.max_conns_per_client = 2;
	port80.l.max_connections = 3;
	port80.l.max_conns_per_client = 2;
	p.lim_port = &port80;
	p.n_lim_port = 1;
	CHECK(px_limits_for(&p, 80) == &port80);
	CHECK(px_limits_for(&p, 81) == &p.lim_box);
	/* the metrics may read before any connection came: no port yet */
	CHECK_EQ_INT(port_active(&p, 80), 0);

	/* per client: a third from the same address is refused */
	CHECK_EQ_INT(admit_take(&p, &port80, 80, (struct sockaddr *)&a, &t[0]), ADMIT_OK);
	CHECK_EQ_INT(admit_take(&p, &port80, 80, (struct sockaddr *)&a, &t[1]), ADMIT_OK);
	CHECK_EQ_INT(admit_take(&p, &port80, 80, (struct sockaddr *)&a, &t[2]), ADMIT_CLIENT_FULL);
	CHECK(!t[2].held);
	/* the same address on another port counts apart */
	CHECK_EQ_INT(admit_take(&p, &p.lim_box, 81, (struct sockaddr *)&a, &t[2]), ADMIT_OK);
	/* the listener's cap: 3 on port 80 */
	CHECK_EQ_INT(admit_take(&p, &port80, 80, (struct sockaddr *)&b, &t[3]), ADMIT_OK);
	CHECK_EQ_INT(admit_take(&p, &port80, 80, (struct sockaddr *)&b, &t[4]),
		     ADMIT_LISTENER_FULL);
	/* the box's cap: 5 in all */
	CHECK_EQ_INT(admit_take(&p, &p.lim_box, 81, (struct sockaddr *)&b, &t[4]), ADMIT_OK);
	CHECK_EQ_INT(p.admit.conns, 5);
	CHECK_EQ_INT(admit_take(&p, &p.lim_box, 81, (struct sockaddr *)&b, &t[5]), ADMIT_BOX_FULL);
	/* releasing one frees its place under every cap, once */
	admit_release(&p, &t[0]);
	admit_release(&p, &t[0]);
	CHECK_EQ_INT(p.admit.conns, 4);
	CHECK_EQ_INT(port_active(&p, 80), 2);
	CHECK_EQ_INT(admit_take(&p, &port80, 80, (struct sockaddr *)&a, &t[0]), ADMIT_OK);
	for (int i = 0; i < 5; i++)
		admit_release(&p, &t[i]);
	CHECK_EQ_INT(p.admit.conns, 0);
	CHECK_EQ_INT(port_active(&p, 80), 0);
	CHECK_EQ_INT(p.admit.peers.used, 0);
	/* two listeners on the box's limits still count each address apart */
	CHECK_EQ_INT(admit_take(&p, &p.lim_box, 81, (struct sockaddr *)&a, &t[0]), ADMIT_OK);
	CHECK_EQ_INT(admit_take(&p, &p.lim_box, 81, (struct sockaddr *)&a, &t[1]), ADMIT_OK);
	CHECK_EQ_INT(admit_take(&p, &p.lim_box, 81, (struct sockaddr *)&a, &t[2]),
		     ADMIT_CLIENT_FULL);
	CHECK_EQ_INT(admit_take(&p, &p.lim_box, 82, (struct sockaddr *)&a, &t[2]), ADMIT_OK);
	for (int i = 0; i < 3; i++)
		admit_release(&p, &t[i]);
	CHECK_EQ_INT(p.admit.peers.used, 0);
	peer_tab_fini(&p.admit.peers);
	free(p.admit.ports);
	pthread_mutex_destroy(&p.admit.mu);
}

/* IPv6 clients count by their /64; v4-mapped ones as the IPv4 address. */
TEST(admit_ipv6_counts_by_prefix)
{
	struct proxy p = {0};
	struct admit_ticket t[4];
	struct sockaddr_storage a1 = v6("2001:db8:1:2::1"), a2 = v6("2001:db8:1:2:ffff::9"),
				other = v6("2001:db8:1:3::1"), mapped = v6("::ffff:192.0.2.1"),
				plain = v4("192.0.2.1");

	pthread_mutex_init(&p.admit.mu, NULL);
	p.lim_box.l.max_connections = 100;
	p.lim_box.l.max_conns_per_client = 1;
	CHECK_EQ_INT(admit_take(&p, &p.lim_box, 81, (struct sockaddr *)&a1, &t[0]), ADMIT_OK);
	CHECK_EQ_INT(admit_take(&p, &p.lim_box, 81, (struct sockaddr *)&a2, &t[1]),
		     ADMIT_CLIENT_FULL);
	CHECK_EQ_INT(admit_take(&p, &p.lim_box, 81, (struct sockaddr *)&other, &t[1]), ADMIT_OK);
	CHECK_EQ_INT(admit_take(&p, &p.lim_box, 81, (struct sockaddr *)&mapped, &t[2]), ADMIT_OK);
	CHECK_EQ_INT(admit_take(&p, &p.lim_box, 81, (struct sockaddr *)&plain, &t[3]),
		     ADMIT_CLIENT_FULL);
	for (int i = 0; i < 3; i++)
		admit_release(&p, &t[i]);
	peer_tab_fini(&p.admit.peers);
	free(p.admit.ports);
	pthread_mutex_destroy(&p.admit.mu);
}
