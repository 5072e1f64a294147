/* SPDX-License-Identifier: MIT */
/*
 * Tests of proxy/l4.c's route counting: the response class a TCP or TLS
 * stream ends with in its route's counters, by state and failing side (a
 * table, one case per line), and the stat id of a listener's route: the
 * routing table gives a TLS listener one slot per TLSRoute and a TCP or
 * UDP listener one for its route, found from the socket's listener index.
 */
#include "../check.h"
#include "proxy/snapshot.h"

#include "proxy/l4.c"

static const struct {
	enum l4_state st;
	enum l4_fault fault;
	int status;
} class_cases[] = {
	/* reached a backend */
	{L4_ST_RELAY, L4_FAULT_NONE, 200},    /* done, idle timeout, drain */
	{L4_ST_RELAY, L4_FAULT_PROXY, 500},   /* no relay buffers, splice refused */
	{L4_ST_RELAY, L4_FAULT_CLIENT, 400},  /* client reset, TLS record error */
	{L4_ST_RELAY, L4_FAULT_BACKEND, 502}, /* backend reset */
	/* never reached one */
	{L4_ST_CONNECT, L4_FAULT_BACKEND, 502},  /* every connect refused or timed out */
	{L4_ST_CONNECT, L4_FAULT_NONE, 503},     /* no usable backend, drained */
	{L4_ST_CONNECT, L4_FAULT_PROXY, 500},    /* out of memory */
	{L4_ST_CONNECT, L4_FAULT_CLIENT, 400},   /* client went away */
	{L4_ST_HANDSHAKE, L4_FAULT_CLIENT, 400}, /* handshake failed or timed out */
	{L4_ST_HANDSHAKE, L4_FAULT_PROXY, 500},  /* no usable certificate */
	{L4_ST_PEEK, L4_FAULT_NONE, 503},
};

TEST(l4_class_by_state_and_failing_side)
{
	for (size_t i = 0; i < sizeof(class_cases) / sizeof(class_cases[0]); i++) {
		struct l4conn c = {.st = class_cases[i].st, .fault = class_cases[i].fault};

		CHECK_EQ_INT(l4_class(&c), class_cases[i].status);
	}
}

TEST(l4_stat_id_per_listener_route)
{
	struct arena *a = arena_new(0);
	struct snapshot *s = arena_zalloc(a, sizeof(*s));
	struct snap_listener *l;
	struct diag d = {0};
	struct rt *rt;

	s->arena = a;
	s->refs = 1;
	s->n_listeners = 3;
	s->listeners = arena_zalloc(a, 3 * sizeof(*s->listeners));
	l = s->listeners;
	l[0] = (struct snap_listener){.name = "tls", .proto = SNAP_P_TLS};
	l[0].tls_routes = arena_zalloc(a, 2 * sizeof(*l[0].tls_routes));
	l[0].tls_routes[0].route = "ns/a";
	l[0].tls_routes[1].route = "ns/b";
	l[0].n_tls_routes = 2;
	l[1] = (struct snap_listener){.name = "tcp", .proto = SNAP_P_TCP, .l4_route = "ns/t"};
	l[2] = (struct snap_listener){.name = "udp", .proto = SNAP_P_UDP, .l4_route = "ns/u"};
	s->n_sockets = 2;
	s->sockets = arena_zalloc(a, 2 * sizeof(*s->sockets));
	s->sockets[0].listeners = arena_zalloc(a, 2 * sizeof(struct snap_listener *));
	s->sockets[0].listeners[0] = &l[0];
	s->sockets[0].listeners[1] = &l[1];
	s->sockets[0].n_listeners = 2;
	s->sockets[1].transport = SNAP_T_UDP;
	s->sockets[1].listeners = arena_zalloc(a, sizeof(struct snap_listener *));
	s->sockets[1].listeners[0] = &l[2];
	s->sockets[1].n_listeners = 1;

	rt = rt_build(s, &d);
	CHECK(rt != NULL);
	if (rt) {
		struct rt_listener *rl = rt->listeners;

		CHECK(rl[0].tls_stat_ids != NULL);
		CHECK(rl[1].tls_stat_ids == NULL && rl[2].tls_stat_ids == NULL);
		/* nothing counted before publish fills the ids in */
		CHECK_EQ_INT(l4_stat_id(&rt->sockets[0], 0, &l[0].tls_routes[1]), 0);
		rl[0].tls_stat_ids[0] = 7;
		rl[0].tls_stat_ids[1] = 8;
		rl[1].l4_stat_id = 9;
		rl[2].l4_stat_id = 10;
		CHECK_EQ_INT(l4_stat_id(&rt->sockets[0], 0, &l[0].tls_routes[0]), 7);
		CHECK_EQ_INT(l4_stat_id(&rt->sockets[0], 0, &l[0].tls_routes[1]), 8);
		CHECK_EQ_INT(l4_stat_id(&rt->sockets[0], 1, NULL), 9);
		CHECK_EQ_INT(l4_stat_id(&rt->sockets[1], 0, NULL), 10);
		/* an index past the socket's listeners: not counted */
		CHECK_EQ_INT(l4_stat_id(&rt->sockets[1], 1, NULL), 0);
		rt_unref(rt); /* drops the snapshot too */
	} else {
		snap_unref(s);
	}
	diag_fini(&d);
}
