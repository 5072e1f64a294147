/* SPDX-License-Identifier: MIT */
/*
 * tlsglue.c: the only file of proxy/ that calls tls/. It builds one TLS
 * server context per HTTPS socket at publish time (control thread) from the
 * certificates of every listener sharing that socket, the certificate being
 * chosen by SNI inside tls_server; an unchanged socket reuses the previous
 * snapshot's context, so a route change costs no key parsing. It also wraps
 * the per-connection calls the workers make. Nothing here does routing.
 */
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
	static const char *const alpn[] = {"http/1.1", NULL};

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
