/* SPDX-License-Identifier: MIT */
/*
 * l4_pick.c: the pure choices of the L4 data plane. Which listener of a
 * shared TLS socket owns an SNI, which TLSRoute of that listener serves it
 * (the most specific hostname, then the earlier route), which backend a
 * weighted draw lands on, and the bounded UDP session table (hash plus LRU
 * list, entries embedded in their owner). No sockets, no clock, no
 * allocation beyond the table's buckets: unit-tested directly. Any thread;
 * a table belongs to one worker.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "core/hash.h"
#include "proxy/l4.h"

#define RANK_EXACT 10000

/* ---- hostnames ---- */

int l4_host_rank(const char *pattern, const char *host)
{
	if (!pattern || !*pattern || !host || !*host)
		return -1;
	if (pattern[0] == '*' && pattern[1] == '.') {
		const char *suf = pattern + 1; /* ".suffix" */
		size_t sl = strlen(suf), hl = strlen(host);
		/* at least one label before the suffix */
		if (hl <= sl || strcasecmp(host + hl - sl, suf) != 0)
			return -1;
		return 1 + (int)sl;
	}
	return strcasecmp(pattern, host) == 0 ? RANK_EXACT : -1;
}

bool l4_host_matches(const char *pattern, const char *host)
{
	return l4_host_rank(pattern, host) >= 0;
}

int l4_listener_for_sni(const struct snap_socket *s, const char *sni)
{
	int best = -1, best_rank = -1;

	for (size_t i = 0; i < s->n_listeners; i++) {
		const struct snap_listener *l = s->listeners[i];
		int rank;
		if (!l)
			continue;
		if (!l->hostname || !*l->hostname)
			rank = 0;
		else if (sni && *sni)
			rank = l4_host_rank(l->hostname, sni);
		else
			rank = -1;
		if (rank > best_rank) {
			best_rank = rank;
			best = (int)i;
		}
	}
	return best;
}

const struct snap_tls_route *l4_tls_route_for_sni(const struct snap_listener *l, const char *sni)
{
	const struct snap_tls_route *best = NULL;
	int best_rank = -1;

	for (size_t i = 0; i < l->n_tls_routes; i++) {
		const struct snap_tls_route *r = &l->tls_routes[i];
		int rank = -1;
		if (!r->n_hostnames)
			rank = 0;
		for (size_t k = 0; k < r->n_hostnames && sni && *sni; k++) {
			int x = l4_host_rank(r->hostnames[k], sni);
			if (x > rank)
				rank = x;
		}
		if (rank > best_rank) {
			best_rank = rank;
			best = r;
		}
	}
	return best;
}

/* ---- weighted backends ---- */

const struct snap_backend *l4_pick_backend(const struct snap_backend *v, size_t n, uint64_t r)
{
	uint64_t total = 0;

	for (size_t i = 0; i < n; i++)
		total += v[i].weight;
	if (!total)
		return NULL;
	r %= total;
	for (size_t i = 0; i < n; i++) {
		if (r < v[i].weight)
			return &v[i];
		r -= v[i].weight;
	}
	return NULL; /* not reached */
}

/* ---- the session table ---- */

int l4_stab_init(struct l4_stab *t, size_t max)
{
	size_t nb = 16;

	memset(t, 0, sizeof(*t));
	if (!max)
		return -EINVAL;
	while (nb < max)
		nb <<= 1;
	t->buckets = calloc(nb, sizeof(*t->buckets));
	if (!t->buckets)
		return -ENOMEM;
	t->n_buckets = nb;
	t->max = max;
	return 0;
}

void l4_stab_fini(struct l4_stab *t)
{
	free(t->buckets);
	memset(t, 0, sizeof(*t));
}

int l4_skey_from(struct l4_skey *k, uint64_t sock_id, const struct sockaddr *sa)
{
	memset(k, 0, sizeof(*k));
	k->sock_id = sock_id;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
		memcpy(k->addr, &in->sin_addr, 4);
		k->port = in->sin_port;
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
		memcpy(k->addr, &in6->sin6_addr, 16);
		k->port = in6->sin6_port;
	} else {
		return -EAFNOSUPPORT;
	}
	k->family = (uint8_t)sa->sa_family;
	return 0;
}

static uint64_t skey_hash(const struct l4_skey *k)
{
	uint64_t h = hash_bytes(k->addr, sizeof(k->addr));
	return hash_mix(hash_mix(h, k->sock_id), (uint64_t)k->port << 8 | k->family);
}

static bool skey_eq(const struct l4_skey *a, const struct l4_skey *b)
{
	return a->sock_id == b->sock_id && a->port == b->port && a->family == b->family &&
	       !memcmp(a->addr, b->addr, sizeof(a->addr));
}

struct l4_slink *l4_stab_find(struct l4_stab *t, const struct l4_skey *k)
{
	uint64_t h;

	if (!t->n)
		return NULL;
	h = skey_hash(k);
	for (struct l4_slink *e = t->buckets[h & (t->n_buckets - 1)]; e; e = e->hnext)
		if (e->hash == h && skey_eq(&e->key, k))
			return e;
	return NULL;
}

static void lru_unlink(struct l4_stab *t, struct l4_slink *e)
{
	if (e->lru_prev)
		e->lru_prev->lru_next = e->lru_next;
	else
		t->head = e->lru_next;
	if (e->lru_next)
		e->lru_next->lru_prev = e->lru_prev;
	else
		t->tail = e->lru_prev;
	e->lru_prev = e->lru_next = NULL;
}

static void lru_push_head(struct l4_stab *t, struct l4_slink *e)
{
	e->lru_prev = NULL;
	e->lru_next = t->head;
	if (t->head)
		t->head->lru_prev = e;
	t->head = e;
	if (!t->tail)
		t->tail = e;
}

void l4_stab_insert(struct l4_stab *t, struct l4_slink *e, uint64_t now_ms)
{
	e->hash = skey_hash(&e->key);
	struct l4_slink **b = &t->buckets[e->hash & (t->n_buckets - 1)];
	e->hnext = *b;
	*b = e;
	e->last_ms = now_ms;
	lru_push_head(t, e);
	t->n++;
}

void l4_stab_remove(struct l4_stab *t, struct l4_slink *e)
{
	struct l4_slink **pp = &t->buckets[e->hash & (t->n_buckets - 1)];

	while (*pp && *pp != e)
		pp = &(*pp)->hnext;
	if (!*pp)
		return; /* not linked */
	*pp = e->hnext;
	e->hnext = NULL;
	lru_unlink(t, e);
	t->n--;
}

void l4_stab_touch(struct l4_stab *t, struct l4_slink *e, uint64_t now_ms)
{
	e->last_ms = now_ms;
	if (t->head == e)
		return;
	lru_unlink(t, e);
	lru_push_head(t, e);
}
