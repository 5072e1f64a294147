/* SPDX-License-Identifier: MIT */
/*
 * tlsglue.c: the only file of proxy/ that calls tls/. It builds one TLS
 * server context per HTTPS socket at publish time (control thread) from the
 * certificates of every listener sharing that socket, the certificate being
 * chosen by SNI inside tls_server; an unchanged socket reuses the previous
 * snapshot's context, so a route change costs no key parsing. It also wraps
 * the per-connection calls the workers make. Upstream TLS (BackendTLSPolicy)
 * gets one client context per backend, also built at publish time and
 * reused while unchanged. Nothing here does routing.
 */
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/hash.h"
#include "core/log.h"
#include "proxy/internal.h"
#include "tls/tls.h"

static uint64_t hash_str(uint64_t h, const char *s)
{
	return hash_mix(h, s ? hash_bytes(s, strlen(s)) : 0x5a5a);
}

int tlsg_server_build(struct rt_socket *rs, const struct rt *prev, const struct proxy_config *cfg,
		      struct diag *d)
{
	struct tls_cert_pem certs[64];
	size_t n = 0;
	enum tls_client_auth auth = TLS_CLIENT_AUTH_NONE;
	const char *client_ca = NULL;
	uint64_t key = 0x7f4a7c15;
	static const char *const alpn[] = {"h2", "http/1.1", NULL};

	for (size_t i = 0; i < rs->n_listeners; i++) {
		const struct snap_listener *l = rs->listeners[i] ? rs->listeners[i]->l : NULL;
		if (!l || l->proto != SNAP_P_HTTPS)
			continue;
		for (size_t k = 0; k < l->n_certs && n < sizeof(certs) / sizeof(certs[0]); k++) {
			bool dup = false;
			for (size_t j = 0; j < n; j++)
				if (certs[j].cert_pem == l->certs[k].cert_pem ||
				    (l->certs[k].name && certs[j].name &&
				     !strcmp(certs[j].name, l->certs[k].name)))
					dup = true;
			if (dup)
				continue;
			certs[n].cert_pem = l->certs[k].cert_pem;
			certs[n].key_pem = l->certs[k].key_pem;
			certs[n].name = l->certs[k].name;
			key = hash_str(hash_str(key, l->certs[k].cert_pem), l->certs[k].key_pem);
			n++;
		}
		/* one context per socket: the strictest client-auth setting wins */
		if (l->client_auth == SNAP_CA_REQUIRE)
			auth = TLS_CLIENT_AUTH_REQUIRE;
		else if (l->client_auth == SNAP_CA_ALLOW_INSECURE && auth == TLS_CLIENT_AUTH_NONE)
			auth = TLS_CLIENT_AUTH_OPTIONAL;
		if (l->client_ca_pem && !client_ca)
			client_ca = l->client_ca_pem;
	}
	if (!n) {
		diag_add(d, DIAG_ERROR, NULL, NULL, NULL,
			 "HTTPS socket %s:%u has no usable certificate: not served", rs->s->addr,
			 rs->s->port);
		return -WG_EINVAL_CONFIG;
	}
	key = hash_mix(hash_str(key, client_ca), (uint64_t)auth * 31 + (uint64_t)cfg->cipher_pref);
	rs->tls_key = key;
	if (prev) {
		for (size_t i = 0; i < prev->n_sockets; i++) {
			const struct rt_socket *o = &prev->sockets[i];
			if (o->tls_server && o->tls_key == key && o->s->port == rs->s->port &&
			    !strcmp(o->s->addr, rs->s->addr)) {
				tls_server_ref(o->tls_server);
				rs->tls_server = o->tls_server;
				return 0;
			}
		}
	}
	struct tls_server_opts o = {
		.certs = certs,
		.n_certs = n,
		.alpn = alpn,
		.client_auth = auth,
		.client_ca_pem = client_ca,
		.cipher_pref = (enum tls_cipher_pref)cfg->cipher_pref,
	};
	rs->tls_server = tls_server_new(&o, d);
	if (!rs->tls_server)
		return -WG_ETLS;
	return 0;
}

void tlsg_server_release(struct rt_socket *rs)
{
	if (rs->tls_server) {
		tls_server_unref(rs->tls_server);
		rs->tls_server = NULL;
	}
}

struct tls_conn *tlsg_conn_new(struct rt_socket *rs, int fd)
{
	return rs->tls_server ? tls_conn_server(rs->tls_server, fd) : NULL;
}

void tlsg_conn_free(struct tls_conn *t)
{
	tls_conn_free(t);
}
int tlsg_handshake(struct tls_conn *t)
{
	return tls_handshake(t);
}
ssize_t tlsg_read(struct tls_conn *t, void *p, size_t n)
{
	return tls_read(t, p, n);
}
ssize_t tlsg_write(struct tls_conn *t, const void *p, size_t n)
{
	return tls_write(t, p, n);
}
size_t tlsg_pending(const struct tls_conn *t)
{
	return tls_pending(t);
}
const char *tlsg_sni(const struct tls_conn *t)
{
	return tls_conn_sni(t);
}
void tlsg_close_notify(struct tls_conn *t)
{
	tls_close_notify(t);
}
const char *tlsg_alpn(const struct tls_conn *t)
{
	return tls_conn_alpn(t);
}

/* ---- upstream TLS ---- */

static int btls_cmp(const void *a, const void *b)
{
	uintptr_t x = (uintptr_t)((const struct rt_btls *)a)->b;
	uintptr_t y = (uintptr_t)((const struct rt_btls *)b)->b;
	return x < y ? -1 : x > y;
}

/* Calls fn on every backend an rt can send to: rule backends, and the
 * mirrors of rule and backend filters. */
static void each_backend(const struct rt *rt, void (*fn)(const struct snap_backend *, void *),
			 void *arg)
{
	const struct snapshot *s = rt->snap;
	for (size_t i = 0; i < s->n_listeners; i++) {
		const struct snap_listener *l = &s->listeners[i];
		for (size_t k = 0; k < l->n_http_rules; k++) {
			const struct snap_http_rule *r = &l->http_rules[k];
			for (size_t f = 0; f < r->n_filters; f++)
				if (r->filters[f].type == SNAP_F_MIRROR &&
				    r->filters[f].u.mirror.backend)
					fn(r->filters[f].u.mirror.backend, arg);
			for (size_t b = 0; b < r->n_backends; b++) {
				const struct snap_backend *be = &r->backends[b];
				fn(be, arg);
				for (size_t f = 0; f < be->n_filters; f++)
					if (be->filters[f].type == SNAP_F_MIRROR &&
					    be->filters[f].u.mirror.backend)
						fn(be->filters[f].u.mirror.backend, arg);
			}
		}
	}
}

struct btls_walk {
	struct rt_btls *v;
	size_t n, cap;
	bool count_only;
};

static void btls_visit(const struct snap_backend *b, void *arg)
{
	struct btls_walk *w = arg;
	if (!b->tls)
		return;
	if (w->count_only) {
		w->cap++;
		return;
	}
	for (size_t i = 0; i < w->n; i++)
		if (w->v[i].b == b)
			return;
	if (w->n < w->cap)
		w->v[w->n++].b = b;
}

static uint64_t btls_key(const struct snap_backend_tls *t, int cipher_pref)
{
	uint64_t k = hash_str(hash_str(0x5bd1e995, t->sni), t->ca_pem);
	k = hash_str(hash_str(k, t->client_cert_pem), t->client_key_pem);
	for (size_t i = 0; i < t->n_sans; i++)
		k = hash_str(k, t->sans[i]);
	return hash_mix(k, (uint64_t)t->use_system_cas * 2 + (uint64_t)cipher_pref);
}

int tlsg_backends_build(struct rt *rt, const struct rt *prev, const struct proxy_config *cfg,
			struct diag *d)
{
	struct btls_walk w = {.count_only = true};

	if (!rt->n_tls_rules)
		return 0; /* no walk over every rule when none has upstream TLS */
	each_backend(rt, btls_visit, &w);
	if (!w.cap)
		return 0;
	w.v = calloc(w.cap, sizeof(*w.v));
	if (!w.v)
		return -ENOMEM;
	w.count_only = false;
	each_backend(rt, btls_visit, &w);
	for (size_t i = 0; i < w.n; i++) {
		struct rt_btls *e = &w.v[i];
		const struct snap_backend_tls *t = e->b->tls;
		e->key = btls_key(t, cfg->cipher_pref);
		for (size_t k = 0; prev && k < prev->n_btls && !e->client; k++) {
			if (prev->btls[k].client && prev->btls[k].key == e->key &&
			    (e->b->proto != SNAP_APP_H2 || prev->btls[k].client_h2)) {
				tls_client_ref(prev->btls[k].client);
				e->client = prev->btls[k].client;
				if (prev->btls[k].client_h2) {
					tls_client_ref(prev->btls[k].client_h2);
					e->client_h2 = prev->btls[k].client_h2;
				}
			}
		}
		if (e->client)
			continue;
		struct tls_client_opts o = {
			.ca_pem = t->ca_pem,
			.use_system_cas = t->use_system_cas || !t->ca_pem,
			.client_cert_pem = t->client_cert_pem,
			.client_key_pem = t->client_key_pem,
			.sans = (const char *const *)t->sans,
			.n_sans = t->n_sans,
			.cipher_pref = (enum tls_cipher_pref)cfg->cipher_pref,
		};
		e->client = tls_client_new(&o, d);
		if (e->b->proto == SNAP_APP_H2 && e->client) {
			/* HTTP/2 streams (h2.c) ask for "h2" by ALPN; HTTP/1.1
			 * clients keep the context without ALPN */
			static const char *const alpn_h2[] = {"h2", NULL};
			o.alpn = alpn_h2;
			e->client_h2 = tls_client_new(&o, d);
		}
		if (!e->client)
			diag_add(d, DIAG_WARN, NULL, e->b->name, "tls",
				 "backend TLS context not built: requests to it get 502");
	}
	qsort(w.v, w.n, sizeof(*w.v), btls_cmp);
	rt->btls = w.v;
	rt->n_btls = w.n;
	return 0;
}

void tlsg_backends_release(struct rt *rt)
{
	for (size_t i = 0; i < rt->n_btls; i++) {
		if (rt->btls[i].client)
			tls_client_unref(rt->btls[i].client);
		if (rt->btls[i].client_h2)
			tls_client_unref(rt->btls[i].client_h2);
	}
	free(rt->btls);
	rt->btls = NULL;
	rt->n_btls = 0;
}

const struct rt_btls *tlsg_backend(const struct rt *rt, const struct snap_backend *b)
{
	struct rt_btls key = {.b = b};
	if (!b->tls || !rt->n_btls)
		return NULL;
	return bsearch(&key, rt->btls, rt->n_btls, sizeof(key), btls_cmp);
}

struct tls_conn *tlsg_conn_client(struct tls_client *cl, int fd, const char *server_name)
{
	return tls_conn_client(cl, fd, server_name);
}
