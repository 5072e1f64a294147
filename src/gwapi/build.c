/* SPDX-License-Identifier: MIT */
/*
 * build.c: turns the attached routes into the snapshot's listeners and
 * sockets. HTTP rules are ordered by the spec's precedence (hostname
 * specificity, then Exact path, longer prefix, method, header count, query
 * count, then the oldest route, then namespace/name, then rule and match
 * order), so the data plane takes the first match. Listeners of the same
 * address, port and transport share a socket, most specific hostname first;
 * a listener that cannot share its socket (an HTTP listener beside an HTTPS
 * one of another Gateway on the wildcard address) is marked
 * ProtocolConflict and left out. Control thread only.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/str.h"
#include "gwapi/reconcile_int.h"

static int path_rank(const struct snap_http_match *m)
{
	switch (m->path_type) {
	case SNAP_PM_EXACT: return 0;
	case SNAP_PM_REGEX: return 1;
	case SNAP_PM_PREFIX: return 2;
	}
	return 3;
}

static const struct snap_http_match *entry_match(const struct pentry *e)
{
	return &e->cr->rules[e->rule].matches[e->match];
}

int gw_precedence_cmp(const void *a, const void *b);
int gw_precedence_cmp(const void *a, const void *b)
{
	const struct pentry *x = *(const struct pentry *const *)a;
	const struct pentry *y = *(const struct pentry *const *)b;
	int r;

	/* gw_hostname_cmp's order, from precomputed keys */
	if (x->host_class != y->host_class)
		return x->host_class - y->host_class;
	if (x->host_class != 2) {
		if (x->host_len != y->host_len)
			return x->host_len > y->host_len ? -1 : 1;
		r = strcmp(x->host, y->host);
		if (r)
			return r;
	}
	const struct snap_http_match *mx = entry_match(x), *my = entry_match(y);
	if (x->path_rank != y->path_rank)
		return x->path_rank - y->path_rank;
	if (x->path_rank != 0 && x->path_len != y->path_len)
		return x->path_len > y->path_len ? -1 : 1;
	if (!mx->method != !my->method)
		return mx->method ? -1 : 1;
	if (mx->n_headers != my->n_headers)
		return mx->n_headers > my->n_headers ? -1 : 1;
	if (mx->n_query != my->n_query)
		return mx->n_query > my->n_query ? -1 : 1;
	if (x->cr != y->cr) {
		r = rc_age_cmp(x->cr->r.obj, y->cr->r.obj);
		if (r)
			return r;
	}
	if (x->rule != y->rule)
		return x->rule < y->rule ? -1 : 1;
	if (x->match != y->match)
		return x->match < y->match ? -1 : 1;
	return 0;
}

/* The one backend every invalid rule answers 500 with. */
static struct snap_backend *invalid_backend(struct rctx *c)
{
	static const char name[] = "invalid";

	if (c->bad)
		return c->bad;
	struct snap_backend *b = arena_zalloc(c->keep, sizeof(*b));
	if (b && (b->name = arena_strdup(c->keep, name))) {
		b->weight = 1;
		b->invalid_status = 500;
		c->bad = b;
	} else {
		c->err = -ENOMEM;
	}
	return c->bad;
}

static void client_cert(struct rgw *g, struct snap_backend *v, size_t n)
{
	for (size_t i = 0; i < n && g->be_cert_pem; i++) {
		struct snap_backend_tls *t = v[i].tls;
		if (t && !t->client_cert_pem) {
			t->client_cert_pem = g->be_cert_pem;
			t->client_key_pem = g->be_key_pem;
		}
	}
}

/* Where e goes among the n sorted entries of v: how many precede it. */
static size_t sorted_pos(struct pentry *const *v, size_t n, const struct pentry *e)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (gw_precedence_cmp(&v[mid], &e) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Puts li's entries in precedence order. Those past li->n_sorted (all of
 * them in a whole pass, the changed routes' in an incremental one) are
 * sorted and merged in by binary search, so a few new entries among
 * 10,000 cost a copy of the pointers, not a sort. */
static int sort_entries(struct rlis *li)
{
	struct pentry **v = (struct pentry **)li->http.v;
	size_t n = li->http.n, m = li->n_sorted;

	for (size_t i = m; i < n; i++) {
		struct pentry *e = v[i];
		const struct snap_http_match *mt = entry_match(e);
		e->host_class = !e->host || !*e->host ? 2 : e->host[0] == '*' ? 1 : 0;
		e->host_len = e->host ? (uint32_t)strlen(e->host) : 0;
		e->path_rank = (uint8_t)path_rank(mt);
		e->path_len = mt->path ? (uint32_t)strlen(mt->path) : 0;
	}
	if (n - m > 1)
		qsort(v + m, n - m, sizeof(*v), gw_precedence_cmp);
	if (m && m < n) {
		struct pentry **out = malloc(n * sizeof(*out));
		size_t k = 0, from = 0;
		if (!out)
			return -ENOMEM;
		for (size_t t = m; t < n; t++) {
			size_t p = sorted_pos(v, m, v[t]);
			memcpy(out + k, v + from, (p - from) * sizeof(*v));
			k += p - from;
			from = p;
			out[k++] = v[t];
		}
		memcpy(out + k, v + from, (m - from) * sizeof(*v));
		memcpy(v, out, n * sizeof(*v));
		free(out);
	}
	li->n_sorted = n;
	return 0;
}

/* Rule e made anew; hosts is the hostname vector of the rule before it
 * (rules of one host are adjacent in precedence order and share one
 * immutable copy: 10,000 rules on 1,000 hosts keep 1,000 copies). */
static void make_rule(struct rctx *c, struct rlis *li, const struct pentry *e,
		      struct snap_http_rule *prev, struct snap_http_rule *hr)
{
	struct crule *ru = &e->cr->rules[e->rule];

	hr->route = e->cr->key;
	hr->rule_name = ru->name;
	hr->rule_index = e->rule;
	hr->grpc = e->cr->r.type == GW_RT_GRPC;
	if (e->host && prev && prev->n_hostnames && !strcmp(prev->hostnames[0], e->host)) {
		hr->hostnames = prev->hostnames;
		hr->n_hostnames = 1;
	} else if (e->host) {
		char **hosts = arena_alloc(c->keep, sizeof(char *));
		if (hosts && (hosts[0] = arena_strdup(c->keep, e->host))) {
			hr->hostnames = hosts;
			hr->n_hostnames = 1;
		} else {
			c->err = -ENOMEM;
		}
	}
	hr->match = ru->matches[e->match];
	if (ru->invalid) {
		hr->backends = invalid_backend(c);
		hr->n_backends = hr->backends ? 1 : 0;
		return;
	}
	hr->filters = ru->filters;
	hr->n_filters = ru->n_filters;
	hr->backends = ru->backends;
	hr->n_backends = ru->n_backends;
	hr->request_timeout_ms = ru->req_timeout_ms;
	hr->backend_request_timeout_ms = ru->be_timeout_ms;
	hr->retry = ru->retry;
	client_cert(li->gw, ru->backends, ru->n_backends);
}

/* The listener's rules in precedence order. A rule the last build made
 * for an unchanged route is copied from it: all it points to is in
 * c->keep, which every later snapshot shares. */
static void http_rules(struct rctx *c, struct rlis *li, struct snap_listener *sl)
{
	struct pentry **v = (struct pentry **)li->http.v;
	size_t n = li->http.n;
	const struct snap_http_rule *last = li->built;

	li->built = NULL;
	if (!n)
		return;
	if (sort_entries(li)) {
		c->err = -ENOMEM;
		return;
	}
	sl->http_rules = rc_salloc(c, n, sizeof(*sl->http_rules));
	for (size_t i = 0; i < n && sl->http_rules; i++) {
		struct pentry *e = v[i];
		struct snap_http_rule *hr = &sl->http_rules[i];
		if (e->built && last)
			*hr = last[e->built - 1];
		else
			make_rule(c, li, e, i ? hr - 1 : NULL, hr);
		e->built = (uint32_t)i + 1;
	}
	sl->n_http_rules = sl->http_rules ? n : 0;
	li->built = sl->http_rules;
}

static void tls_routes(struct rctx *c, struct rlis *li, struct snap_listener *sl)
{
	size_t n = li->tls.n;

	sl->tls_routes = rc_salloc(c, n, sizeof(*sl->tls_routes));
	for (size_t i = 0; i < n && sl->tls_routes; i++) {
		const struct tentry *e = li->tls.v[i];
		struct snap_tls_route *tr = &sl->tls_routes[sl->n_tls_routes++];
		tr->route = e->cr->key;
		tr->hostnames = rc_salloc(c, e->n_hosts, sizeof(char *));
		for (size_t j = 0; j < e->n_hosts && tr->hostnames; j++)
			if (e->hosts[j])
				tr->hostnames[tr->n_hostnames++] = rc_sdup(c, e->hosts[j]);
		tr->backends = e->cr->l4_backends;
		tr->n_backends = e->cr->n_l4_backends;
	}
}

/* TCP and UDP listeners carry no hostname to choose by: when several
 * routes attach, all are Accepted and counted, and the oldest one (first in
 * li->l4, which is in age order) gets the traffic. */
static void l4_backends(struct rlis *li, struct snap_listener *sl)
{
	if (!li->l4.n)
		return;
	const struct croute *first = li->l4.v[0];
	sl->l4_route = first->key;
	sl->l4_backends = first->l4_backends;
	sl->n_l4_backends = first->n_l4_backends;
}

static void fill_listener(struct rctx *c, struct rlis *li, struct snap_listener *sl)
{
	const struct gw_listener *l = li->l;

	sl->gateway = rc_sdup(c, li->ls ? li->ls->key : li->gw->key);
	sl->name = rc_sdup(c, l->name);
	sl->proto = (enum snap_proto)li->proto;
	if (li->proto != SNAP_P_TCP && li->proto != SNAP_P_UDP)
		sl->hostname = rc_sdup(c, l->hostname);
	sl->tls_mode =
		!strcmp(l->tls_mode, "Passthrough") ? SNAP_TLS_PASSTHROUGH : SNAP_TLS_TERMINATE;
	sl->certs = li->certs;
	sl->n_certs = li->n_certs;
	sl->client_auth = li->client_auth;
	sl->client_ca_pem = li->client_ca_pem;
	switch (sl->proto) {
	case SNAP_P_HTTP:
	case SNAP_P_HTTPS: http_rules(c, li, sl); break;
	case SNAP_P_TLS: tls_routes(c, li, sl); break;
	case SNAP_P_TCP:
	case SNAP_P_UDP: l4_backends(li, sl); break;
	}
}

struct sockb {
	char addr[48];
	uint16_t port;
	enum snap_transport transport;
	int cls;           /* 1 HTTP, 2 TLS-based, 3 TCP, 4 UDP */
	struct gw_vec lis; /* struct rlis * */
};

static int lis_cls(int proto)
{
	return proto == SNAP_P_HTTP ? 1 : proto == SNAP_P_UDP ? 4 : proto == SNAP_P_TCP ? 3 : 2;
}

static int cmp_sock_lis(const void *a, const void *b)
{
	const struct rlis *x = *(const struct rlis *const *)a;
	const struct rlis *y = *(const struct rlis *const *)b;
	int r = gw_hostname_cmp(x->l->hostname, y->l->hostname);
	if (r)
		return r;
	r = strcmp(x->gw->key, y->gw->key);
	if (r)
		return r;
	r = strcmp(x->ls ? x->ls->key : "", y->ls ? y->ls->key : "");
	return r ? r : x->l->index - y->l->index;
}

static int cmp_sockb(const void *a, const void *b)
{
	const struct sockb *x = *(const struct sockb *const *)a;
	const struct sockb *y = *(const struct sockb *const *)b;
	int r = strcmp(x->addr, y->addr);
	if (r)
		return r;
	if (x->port != y->port)
		return x->port < y->port ? -1 : 1;
	return (int)x->transport - (int)y->transport;
}

static int add_to_socket(struct rctx *c, struct gw_map *socks, struct gw_vec *order,
			 struct rlis *li, const char *addr)
{
	enum snap_transport t = li->proto == SNAP_P_UDP ? SNAP_T_UDP : SNAP_T_TCP;
	const char *key = rc_printf(c, "%s|%d|%d", addr, li->l->port, (int)t);
	void **slot = key ? gw_map_slot(socks, key) : NULL;

	if (!slot)
		return -ENOMEM;
	struct sockb *s = *slot;
	if (!s) {
		s = rc_alloc(c, 1, sizeof(*s));
		if (!s)
			return -ENOMEM;
		str_lcpy(s->addr, addr, sizeof(s->addr));
		s->port = (uint16_t)li->l->port;
		s->transport = t;
		s->cls = lis_cls(li->proto);
		*slot = s;
		if (gw_vec_push(order, c->a, s))
			return -ENOMEM;
	} else if (s->cls != lis_cls(li->proto)) {
		li->accepted = false;
		li->programmed = false;
		li->conflict = li->acc_reason = "ProtocolConflict";
		li->acc_msg = rc_printf(c, "port %d on %s already serves another protocol",
					li->l->port, addr);
		return 1;
	}
	return gw_vec_push(&s->lis, c->a, li);
}

/* Calls fn on every listener rc_build may look at. */
static void each_listener(struct rctx *c, void (*fn)(struct rlis *li))
{
	for (size_t i = 0; i < c->n_gws; i++) {
		struct rgw *g = c->gws[i];
		for (size_t j = 0; j < g->n_lis; j++)
			fn(&g->lis[j]);
		for (size_t k = 0; k < g->sets.n; k++) {
			struct rls *s = g->sets.v[k];
			for (size_t j = 0; j < s->n_lis; j++)
				fn(&s->lis[j]);
		}
	}
}

static void save_listener(struct rlis *li)
{
	li->pre.accepted = li->accepted;
	li->pre.programmed = li->programmed;
	li->pre.conflict = li->conflict;
	li->pre.acc_reason = li->acc_reason;
	li->pre.acc_msg = li->acc_msg;
}

/* Rules of a listener not served now cannot be copied next time. */
static void forget_unserved(struct rlis *li)
{
	if (!li->snap)
		li->built = NULL;
}

static void restore_listener(struct rlis *li)
{
	li->accepted = li->pre.accepted;
	li->programmed = li->pre.programmed;
	li->conflict = li->pre.conflict;
	li->acc_reason = li->pre.acc_reason;
	li->acc_msg = li->pre.acc_msg;
	li->snap = NULL;
}

void rc_build_again(struct rctx *c)
{
	each_listener(c, restore_listener);
}

int rc_build(struct rctx *c)
{
	struct gw_map socks;
	struct gw_vec order = {0}, served = {0};

	each_listener(c, save_listener);
	gw_map_init(&socks, c->a);
	for (size_t i = 0; i < c->n_gws; i++) {
		struct rgw *g = c->gws[i];
		if (!g->programmed)
			continue;
		struct gw_vec all = {0};
		for (size_t j = 0; j < g->n_lis; j++)
			if (gw_vec_push(&all, c->a, &g->lis[j]))
				return -ENOMEM;
		for (size_t k = 0; k < g->sets.n; k++) {
			struct rls *s = g->sets.v[k];
			for (size_t j = 0; j < s->n_lis; j++)
				if (gw_vec_push(&all, c->a, &s->lis[j]))
					return -ENOMEM;
		}
		for (size_t j = 0; j < all.n; j++) {
			struct rlis *li = all.v[j];
			if (!li->programmed)
				continue;
			int naddr = g->n_addrs ? g->n_addrs : 1;
			bool ok = true;
			for (int a = 0; a < naddr && ok; a++) {
				int rc = add_to_socket(c, &socks, &order, li,
						       g->n_addrs ? g->addrs[a] : "0.0.0.0");
				if (rc < 0)
					return rc;
				ok = rc == 0;
			}
			if (ok && gw_vec_push(&served, c->a, li))
				return -ENOMEM;
		}
	}
	struct snapshot *snap = c->snap;
	snap->listeners = rc_salloc(c, served.n, sizeof(*snap->listeners));
	for (size_t i = 0; i < served.n && snap->listeners; i++) {
		struct rlis *li = served.v[i];
		li->snap = &snap->listeners[snap->n_listeners++];
		fill_listener(c, li, li->snap);
	}
	each_listener(c, forget_unserved);
	if (order.n)
		qsort(order.v, order.n, sizeof(*order.v), cmp_sockb);
	snap->sockets = rc_salloc(c, order.n, sizeof(*snap->sockets));
	for (size_t i = 0; i < order.n && snap->sockets; i++) {
		struct sockb *s = order.v[i];
		struct snap_socket *ss = &snap->sockets[snap->n_sockets];
		if (s->lis.n)
			qsort(s->lis.v, s->lis.n, sizeof(*s->lis.v), cmp_sock_lis);
		ss->listeners = rc_salloc(c, s->lis.n, sizeof(*ss->listeners));
		for (size_t j = 0; j < s->lis.n && ss->listeners; j++) {
			struct rlis *li = s->lis.v[j];
			if (li->snap)
				ss->listeners[ss->n_listeners++] = li->snap;
		}
		if (!ss->n_listeners)
			continue;
		memcpy(ss->addr, s->addr, sizeof(ss->addr));
		ss->port = s->port;
		ss->transport = s->transport;
		snap->n_sockets++;
	}
	return c->err;
}
