/* SPDX-License-Identifier: MIT */
/*
 * admit.c: which client connections the box takes. Three caps apply to
 * every accepted TCP connection, HTTP or L4: the box's total, the
 * listener port's total, and the number one client address holds on that
 * port. They count the whole box, not one worker, so they mean the same
 * whatever the worker count; the price is one mutex taken at accept and at
 * close (never per request). IPv6 clients count by their /64: one host
 * usually owns the whole prefix, and a per-/128 cap would cost an attacker
 * nothing. The caller decides how to refuse (503 on HTTP, a close on L4);
 * refusals are logged here, rate-limited.
 *
 * Runs on any worker thread; px_limits_for only reads what proxy_new built.
 */
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "core/hash.h"
#include "core/log.h"
#include "proxy/internal.h"

#define PEER_KEY_LEN 18

/* ---- the per-address table ---- */

static size_t slot_of(const struct peer_tab *t, const uint8_t key[PEER_KEY_LEN])
{
	return (size_t)hash_bytes(key, PEER_KEY_LEN) & (t->cap - 1);
}

static struct peer_ent *find(const struct peer_tab *t, const uint8_t key[PEER_KEY_LEN])
{
	if (!t->cap)
		return NULL;
	for (size_t i = slot_of(t, key);; i = (i + 1) & (t->cap - 1)) {
		struct peer_ent *e = &t->v[i];
		if (!e->n)
			return NULL;
		if (!memcmp(e->key, key, PEER_KEY_LEN))
			return e;
	}
}

static int grow(struct peer_tab *t)
{
	size_t cap = t->cap ? t->cap * 2 : 64;
	struct peer_ent *v = calloc(cap, sizeof(*v));
	if (!v)
		return -1;
	struct peer_tab nt = {v, cap, t->used};
	for (size_t i = 0; i < t->cap; i++) {
		if (!t->v[i].n)
			continue;
		size_t j = slot_of(&nt, t->v[i].key);
		while (v[j].n)
			j = (j + 1) & (cap - 1);
		v[j] = t->v[i];
	}
	free(t->v);
	*t = nt;
	return 0;
}

uint32_t peer_tab_inc(struct peer_tab *t, const uint8_t key[PEER_KEY_LEN])
{
	struct peer_ent *e = find(t, key);
	if (e)
		return ++e->n;
	/* at most half full, so probes stay short and always end */
	if ((t->used + 1) * 2 > t->cap && grow(t))
		return 0;
	size_t i = slot_of(t, key);
	while (t->v[i].n)
		i = (i + 1) & (t->cap - 1);
	memcpy(t->v[i].key, key, PEER_KEY_LEN);
	t->v[i].n = 1;
	t->used++;
	return 1;
}

uint32_t peer_tab_count(const struct peer_tab *t, const uint8_t key[PEER_KEY_LEN])
{
	const struct peer_ent *e = find(t, key);
	return e ? e->n : 0;
}

void peer_tab_dec(struct peer_tab *t, const uint8_t key[PEER_KEY_LEN])
{
	struct peer_ent *e = find(t, key);
	if (!e || --e->n)
		return;
	/* backward-shift deletion: later entries of the probe run move up
	 * into the hole, so no tombstones are needed */
	size_t hole = (size_t)(e - t->v), mask = t->cap - 1;
	for (size_t i = (hole + 1) & mask; t->v[i].n; i = (i + 1) & mask) {
		size_t home = slot_of(t, t->v[i].key);
		/* the entry may move to the hole if its home is not in (hole, i] */
		if (((i - home) & mask) >= ((i - hole) & mask)) {
			t->v[hole] = t->v[i];
			hole = i;
		}
	}
	memset(&t->v[hole], 0, sizeof(t->v[hole]));
	t->used--;
}

void peer_tab_fini(struct peer_tab *t)
{
	free(t->v);
	memset(t, 0, sizeof(*t));
}

/* ---- admission ---- */

static void peer_key(const struct sockaddr *sa, uint16_t port, uint8_t key[PEER_KEY_LEN])
{
	memset(key, 0, PEER_KEY_LEN);
	if (sa->sa_family == AF_INET) {
		key[10] = key[11] = 0xff; /* ::ffff:a.b.c.d */
		memcpy(key + 12, &((const struct sockaddr_in *)sa)->sin_addr, 4);
	} else if (sa->sa_family == AF_INET6) {
		const uint8_t *a = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
		bool mapped = !memcmp(a, "\0\0\0\0\0\0\0\0\0\0\xff\xff", 12);
		memcpy(key, a, mapped ? 16 : 8);
	}
	key[16] = (uint8_t)(port >> 8);
	key[17] = (uint8_t)port;
}

struct px_limits *px_limits_for(struct proxy *p, uint16_t port)
{
	for (size_t i = 0; i < p->n_lim_port; i++)
		if (p->lim_port[i].port == port)
			return &p->lim_port[i];
	return &p->lim_box;
}

/* Under a->mu: the count of port, added at zero the first time; NULL
 * when out of memory. */
static struct proxy_port_conns *port_entry(struct admission *a, uint16_t port)
{
	for (size_t i = 0; i < a->n_ports; i++)
		if (a->ports[i].port == port)
			return &a->ports[i];
	if (a->n_ports == a->cap_ports) {
		size_t cap = a->cap_ports ? a->cap_ports * 2 : 8;
		struct proxy_port_conns *v = realloc(a->ports, cap * sizeof(*v));
		if (!v)
			return NULL;
		a->ports = v;
		a->cap_ports = cap;
	}
	a->ports[a->n_ports] = (struct proxy_port_conns){port, 0};
	return &a->ports[a->n_ports++];
}

size_t proxy_port_conns(struct proxy *p, struct proxy_port_conns *out, size_t max)
{
	struct admission *a = &p->admit;
	size_t n;

	pthread_mutex_lock(&a->mu);
	n = a->n_ports < max ? a->n_ports : max;
	if (n)	/* no port registered yet: ports is still NULL */
		memcpy(out, a->ports, n * sizeof(*out));
	pthread_mutex_unlock(&a->mu);
	return n;
}

enum admit_result admit_take(struct proxy *p, struct px_limits *lim, uint16_t port,
			     const struct sockaddr *sa, struct admit_ticket *t)
{
	struct admission *a = &p->admit;
	enum admit_result r = ADMIT_OK;
	uint8_t key[PEER_KEY_LEN];

	memset(t, 0, sizeof(*t));
	peer_key(sa, port, key);
	pthread_mutex_lock(&a->mu);
	struct proxy_port_conns *pc = port_entry(a, port);
	if (!pc)
		r = ADMIT_NOMEM;
	else if (a->conns >= p->lim_box.l.max_connections)
		r = ADMIT_BOX_FULL;
	else if (lim != &p->lim_box && pc->active >= lim->l.max_connections)
		r = ADMIT_LISTENER_FULL;
	else if (peer_tab_count(&a->peers, key) >= lim->l.max_conns_per_client)
		r = ADMIT_CLIENT_FULL;
	else if (!peer_tab_inc(&a->peers, key))
		r = ADMIT_NOMEM;
	if (r == ADMIT_OK) {
		a->conns++;
		pc->active++;
	}
	pthread_mutex_unlock(&a->mu);
	if (r == ADMIT_OK) {
		t->port = port;
		memcpy(t->key, key, sizeof(key));
		t->held = true;
	}
	return r;
}

void admit_release(struct proxy *p, struct admit_ticket *t)
{
	struct admission *a = &p->admit;

	if (!t->held)
		return;
	pthread_mutex_lock(&a->mu);
	peer_tab_dec(&a->peers, t->key);
	a->conns--;
	port_entry(a, t->port)->active--; /* there since admit_take */
	pthread_mutex_unlock(&a->mu);
	t->held = false;
}

static const char *reason(enum admit_result r)
{
	switch (r) {
	case ADMIT_BOX_FULL: return "box connection cap";
	case ADMIT_LISTENER_FULL: return "listener connection cap";
	case ADMIT_CLIENT_FULL: return "client connection cap";
	case ADMIT_NOMEM: return "out of memory";
	default: return "admitted";
	}
}

void admit_log_refusal(struct proxy *p, enum admit_result why, const char *peer, uint16_t port,
		       uint64_t now_ms)
{
	struct admission *a = &p->admit;
	uint64_t suppressed;

	pthread_mutex_lock(&a->mu);
	if (now_ms < a->log_next_ms) {
		a->log_suppressed++;
		pthread_mutex_unlock(&a->mu);
		return;
	}
	a->log_next_ms = now_ms + 1000;
	suppressed = a->log_suppressed;
	a->log_suppressed = 0;
	pthread_mutex_unlock(&a->mu);
	log_warn("event=conn_refused client=%s port=%u reason=%s refused_unlogged=%llu",
		 log_q(peer), port, log_q(reason(why)), (unsigned long long)suppressed);
}
