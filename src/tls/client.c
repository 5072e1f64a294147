/* SPDX-License-Identifier: MIT */
/*
 * client.c: client contexts for the Kubernetes API and for backends. A
 * tls_client holds the trust anchors (given PEM, the system bundle, or
 * both), an optional client certificate, the names a peer may present, and
 * a small cache of sessions per server name so that reconnects resume with
 * a ticket instead of a full handshake. Peer names are checked here, not by
 * mbedTLS, with the rules Go's crypto/tls applies (which kubeconfigs and
 * BackendTLSPolicy assume): an IP literal matches only IP SANs and is not
 * sent as SNI; a DNS name matches DNS SANs (one leftmost "*" label), never
 * the CN; when extra names are configured (DNS or URI SANs such as
 * spiffe://...) one of them must match instead of the host name.
 * Contexts are built on the control thread, then shared; the session cache
 * is the only mutable part and has its own lock.
 */
#include <stdlib.h>
#include <string.h>

#include <mbedtls/ssl.h>
#include <mbedtls/x509_crt.h>

#include "core/err.h"
#include "core/log.h"
#include "tls/internal.h"
#include "tls/tls.h"

void tls_client_ref(struct tls_client *c)
{
	__atomic_add_fetch(&c->refs, 1, __ATOMIC_RELAXED);
}

static void client_free(struct tls_client *c)
{
	mbedtls_ssl_config_free(&c->conf);
	mbedtls_x509_crt_free(&c->ca);
	if (c->has_own)
		tls_keycert_fini(&c->own);
	for (size_t i = 0; i < c->n_sans; i++)
		free(c->sans[i]);
	free(c->sans);
	free(c->alpn);
	for (size_t i = 0; i < TLS_CLIENT_SESSIONS; i++) {
		struct tls_sess_slot *sl = &c->cache[i];

		free(sl->name);
		if (sl->data) {
			tls_zeroize(sl->data, sl->len);
			free(sl->data);
		}
	}
	pthread_mutex_destroy(&c->cache_lock);
	free(c);
}

void tls_client_unref(struct tls_client *c)
{
	if (c && __atomic_sub_fetch(&c->refs, 1, __ATOMIC_ACQ_REL) == 0)
		client_free(c);
}

static int load_trust(struct tls_client *c, const struct tls_client_opts *o, struct diag *d)
{
	mbedtls_x509_crt *sys;

	if (o->ca_pem) {
		if (tls_ca_load(&c->ca, o->ca_pem, NULL, "certificate-authority", d) != 0)
			return -EINVAL;
		c->own_ca = true;
		if (o->use_system_cas &&
		    mbedtls_x509_crt_parse_file(&c->ca, TLS_SYSTEM_CA_FILE) < 0) {
			diag_add(d, DIAG_ERROR, TLS_SYSTEM_CA_FILE, NULL, NULL,
				 "cannot read the system CA bundle");
			return -EINVAL;
		}
		mbedtls_ssl_conf_ca_chain(&c->conf, &c->ca, NULL);
		return 0;
	}
	if (o->use_system_cas) {
		sys = tls_system_cas();
		if (!sys) {
			diag_add(d, DIAG_ERROR, TLS_SYSTEM_CA_FILE, NULL, NULL,
				 "cannot read the system CA bundle");
			return -EINVAL;
		}
		mbedtls_ssl_conf_ca_chain(&c->conf, sys, NULL);
		return 0;
	}
	diag_add(d, DIAG_ERROR, NULL, NULL, "certificate-authority",
		 "no trusted CA certificates given (and TLS verification is on)");
	return -EINVAL;
}

struct tls_client *tls_client_new(const struct tls_client_opts *o, struct diag *d)
{
	struct tls_client *c;
	char e[128];
	int ret;

	if (tls_lib_init() != 0) {
		diag_add(d, DIAG_ERROR, NULL, NULL, NULL, "TLS library initialisation failed");
		return NULL;
	}
	if (!o) {
		diag_add(d, DIAG_ERROR, NULL, NULL, NULL, "no TLS client options");
		return NULL;
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		diag_add(d, DIAG_ERROR, NULL, NULL, NULL, "out of memory");
		return NULL;
	}
	c->refs = 1;
	c->insecure = o->insecure_skip_verify;
	pthread_mutex_init(&c->cache_lock, NULL);
	mbedtls_ssl_config_init(&c->conf);
	mbedtls_x509_crt_init(&c->ca);

	ret = mbedtls_ssl_config_defaults(&c->conf, MBEDTLS_SSL_IS_CLIENT,
					  MBEDTLS_SSL_TRANSPORT_STREAM, MBEDTLS_SSL_PRESET_DEFAULT);
	if (ret != 0) {
		diag_add(d, DIAG_ERROR, NULL, NULL, NULL, "TLS configuration failed: %s",
			 tls_strerror(ret, e, sizeof(e)));
		goto fail;
	}
	if (o->alpn && o->alpn[0]) {
		size_t before = d ? d->errors : 0;

		c->alpn = tls_alpn_dup(o->alpn, NULL, d);
		if (!c->alpn || (d && d->errors != before))
			goto fail;
	}
	if (tls_conf_common(&c->conf, false, tls_suites(o->cipher_pref), c->alpn) != 0) {
		diag_add(d, DIAG_ERROR, NULL, NULL, "alpn", "invalid ALPN protocol list");
		goto fail;
	}
	if (c->insecure) {
		mbedtls_ssl_conf_authmode(&c->conf, MBEDTLS_SSL_VERIFY_NONE);
	} else {
		mbedtls_ssl_conf_authmode(&c->conf, MBEDTLS_SSL_VERIFY_REQUIRED);
		if (load_trust(c, o, d) != 0)
			goto fail;
	}
	if (o->client_cert_pem || o->client_key_pem) {
		if (tls_keycert_load(&c->own, o->client_cert_pem, o->client_key_pem,
				     "client certificate", d) != 0)
			goto fail;
		c->has_own = true;
		ret = mbedtls_ssl_conf_own_cert(&c->conf, &c->own.chain, &c->own.key);
		if (ret != 0) {
			diag_add(d, DIAG_ERROR, NULL, "client certificate", "tls.crt",
				 "cannot use certificate: %s", tls_strerror(ret, e, sizeof(e)));
			goto fail;
		}
	}
	if (o->n_sans) {
		c->sans = calloc(o->n_sans, sizeof(*c->sans));
		if (!c->sans) {
			diag_add(d, DIAG_ERROR, NULL, NULL, NULL, "out of memory");
			goto fail;
		}
		for (size_t i = 0; i < o->n_sans; i++) {
			if (!o->sans[i] || !*o->sans[i]) {
				diag_add(d, DIAG_ERROR, NULL, NULL, "subjectAltNames",
					 "entry %zu is empty", i);
				goto fail;
			}
			c->sans[i] = strdup(o->sans[i]);
			if (!c->sans[i]) {
				diag_add(d, DIAG_ERROR, NULL, NULL, NULL, "out of memory");
				goto fail;
			}
			c->n_sans = i + 1;
		}
	}
	mbedtls_ssl_conf_session_tickets(&c->conf, MBEDTLS_SSL_SESSION_TICKETS_ENABLED);
	mbedtls_ssl_conf_tls13_enable_signal_new_session_tickets(
		&c->conf, MBEDTLS_SSL_TLS1_3_SIGNAL_NEW_SESSION_TICKETS_ENABLED);
	return c;

fail:
	client_free(c);
	return NULL;
}

/* Whether the leaf certificate names what this connection expects. */
static bool peer_name_ok(const struct tls_conn *c, const mbedtls_x509_crt *crt)
{
	const struct tls_client *cl = c->cli;

	if (cl->n_sans) {
		for (size_t i = 0; i < cl->n_sans; i++) {
			const char *san = cl->sans[i];
			uint8_t ip[16];
			size_t ip_len;

			if (strstr(san, "://")) {
				if (tls_crt_has_uri(crt, san))
					return true;
			} else if ((ip_len = tls_parse_ip(san, ip)) != 0) {
				if (tls_crt_has_ip(crt, ip, ip_len))
					return true;
			} else if (tls_crt_has_dns(crt, san)) {
				return true;
			}
		}
		return false;
	}
	if (c->ip_len)
		return tls_crt_has_ip(crt, c->ip, c->ip_len);
	if (c->name)
		return tls_crt_has_dns(crt, c->name);
	return false;
}

/* Called by the verifier for each certificate of the chain, root first. At
 * the leaf, mbedTLS's own name check (CN fallback, DNS SANs matching IP
 * strings) is replaced by peer_name_ok(). */
static int on_verify(void *arg, mbedtls_x509_crt *crt, int depth, uint32_t *flags)
{
	struct tls_conn *c = arg;

	if (depth != 0)
		return 0;
	*flags &= ~(uint32_t)MBEDTLS_X509_BADCERT_CN_MISMATCH;
	if (!peer_name_ok(c, crt))
		*flags |= MBEDTLS_X509_BADCERT_CN_MISMATCH;
	return 0;
}

static void session_offer(struct tls_client *cl, struct tls_conn *c)
{
	const char *key = c->name ? c->name : "";
	unsigned char *data = NULL;
	size_t len = 0;
	mbedtls_ssl_session sess;

	pthread_mutex_lock(&cl->cache_lock);
	for (size_t i = 0; i < TLS_CLIENT_SESSIONS; i++) {
		struct tls_sess_slot *sl = &cl->cache[i];

		if (sl->name && strcmp(sl->name, key) == 0) {
			data = malloc(sl->len);
			if (data) {
				memcpy(data, sl->data, sl->len);
				len = sl->len;
			}
			sl->used = ++cl->cache_clock;
			break;
		}
	}
	pthread_mutex_unlock(&cl->cache_lock);
	if (!data)
		return;
	mbedtls_ssl_session_init(&sess);
	/* A session that no longer loads (or has expired) is simply not
	 * offered: the handshake is then a full one. */
	if (mbedtls_ssl_session_load(&sess, data, len) == 0)
		(void)mbedtls_ssl_set_session(&c->ssl, &sess);
	mbedtls_ssl_session_free(&sess);
	tls_zeroize(data, len);
	free(data);
}

void tls_client_session_store(struct tls_conn *c)
{
	struct tls_client *cl = c->cli;
	const char *key = c->name ? c->name : "";
	struct tls_sess_slot *victim = NULL;
	mbedtls_ssl_session sess;
	unsigned char *data = NULL;
	size_t len = 0;
	char *name;

	mbedtls_ssl_session_init(&sess);
	if (mbedtls_ssl_get_session(&c->ssl, &sess) != 0)
		goto out;
	if (mbedtls_ssl_session_save(&sess, NULL, 0, &len) != MBEDTLS_ERR_SSL_BUFFER_TOO_SMALL ||
	    len == 0)
		goto out;
	data = malloc(len);
	name = strdup(key);
	if (!data || !name) {
		free(name);
		goto out;
	}
	if (mbedtls_ssl_session_save(&sess, data, len, &len) != 0) {
		free(name);
		goto out;
	}
	pthread_mutex_lock(&cl->cache_lock);
	for (size_t i = 0; i < TLS_CLIENT_SESSIONS; i++) {
		struct tls_sess_slot *sl = &cl->cache[i];

		if (sl->name && strcmp(sl->name, key) == 0) {
			victim = sl;
			break;
		}
		if (!victim || sl->used < victim->used)
			victim = sl;
	}
	free(victim->name);
	if (victim->data) {
		tls_zeroize(victim->data, victim->len);
		free(victim->data);
	}
	victim->name = name;
	victim->data = data;
	victim->len = len;
	victim->used = ++cl->cache_clock;
	data = NULL;
	pthread_mutex_unlock(&cl->cache_lock);
out:
	if (data) {
		tls_zeroize(data, len);
		free(data);
	}
	mbedtls_ssl_session_free(&sess);
}

int tls_client_conn_setup(struct tls_client *cl, struct tls_conn *c, const char *server_name)
{
	size_t n;
	int ret;

	if (server_name && *server_name) {
		n = strlen(server_name);
		if (n > 253)
			return -EINVAL;
		c->name = mbedtls_calloc(1, n + 1);
		if (!c->name)
			return -ENOMEM;
		memcpy(c->name, server_name, n);
		c->ip_len = tls_parse_ip(server_name, c->ip);
	}
	/* An IP literal is not a valid SNI (RFC 6066); NULL also tells mbedTLS
	 * that name checking is done by on_verify. */
	ret = mbedtls_ssl_set_hostname(&c->ssl, c->name && !c->ip_len ? c->name : NULL);
	if (ret != 0)
		return ret == MBEDTLS_ERR_SSL_ALLOC_FAILED ? -ENOMEM : -EINVAL;
	if (!cl->insecure)
		mbedtls_ssl_set_verify(&c->ssl, on_verify, c);
	session_offer(cl, c);
	return 0;
}
