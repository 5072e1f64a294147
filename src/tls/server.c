/* SPDX-License-Identifier: MIT */
/*
 * server.c: server contexts. A tls_server holds its mbedtls_ssl_config (a
 * second one, ChaCha20-only for TLS 1.3, when ChaCha20 is preferred: conn.c
 * picks it from the ClientHello), the listener's certificates (chosen per
 * handshake by SNI: exact name, then wildcard, then the first certificate),
 * the ALPN list, the optional client CA, and a session-ticket key that
 * rotates by itself. Only TLS 1.2 and 1.3 with AEAD suites and ECDHE are
 * offered; renegotiation is compiled out.
 * Built on the control thread; afterwards read-only and shared by every
 * worker (the ticket context and the RNG carry their own locks). Handshakes
 * and I/O live in conn.c.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <mbedtls/ssl.h>
#include <mbedtls/ssl_ticket.h>

#include "core/err.h"
#include "core/log.h"
#include "tls/internal.h"
#include "tls/tls.h"

/* Suites: AEAD only, forward secret only. TLS 1.3 servers in mbedTLS follow
 * the client's order; the order below rules TLS 1.2 and what clients offer. */
static const int suites_aes_first[] = {
	MBEDTLS_TLS1_3_AES_128_GCM_SHA256,
	MBEDTLS_TLS1_3_AES_256_GCM_SHA384,
	MBEDTLS_TLS1_3_CHACHA20_POLY1305_SHA256,
	MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	MBEDTLS_TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	MBEDTLS_TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	MBEDTLS_TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	MBEDTLS_TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
	0,
};

static const int suites_chacha_first[] = {
	MBEDTLS_TLS1_3_CHACHA20_POLY1305_SHA256,
	MBEDTLS_TLS1_3_AES_128_GCM_SHA256,
	MBEDTLS_TLS1_3_AES_256_GCM_SHA384,
	MBEDTLS_TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	MBEDTLS_TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
	MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	MBEDTLS_TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	MBEDTLS_TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	0,
};

/* For CHACHA_FIRST servers (no AES instructions): the configuration used
 * when a TLS 1.3 client offers ChaCha20, so that the server's preference
 * wins over the client's (mbedTLS's TLS 1.3 server follows the client's). */
static const int suites_chacha13_only[] = {
	MBEDTLS_TLS1_3_CHACHA20_POLY1305_SHA256,
	MBEDTLS_TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	MBEDTLS_TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
	MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	MBEDTLS_TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	MBEDTLS_TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	0,
};

const int *tls_suites(enum tls_cipher_pref pref)
{
	return pref == TLS_PREF_CHACHA_FIRST ? suites_chacha_first : suites_aes_first;
}

static const uint16_t groups[] = {
	MBEDTLS_SSL_IANA_TLS_GROUP_X25519,
	MBEDTLS_SSL_IANA_TLS_GROUP_SECP256R1,
	MBEDTLS_SSL_IANA_TLS_GROUP_SECP384R1,
	MBEDTLS_SSL_IANA_TLS_GROUP_NONE,
};

/* No SHA-1, no PKCS#1 v1.5 in TLS 1.3 handshakes (mbedTLS filters that). */
static const uint16_t sig_algs[] = {
	MBEDTLS_TLS1_3_SIG_ECDSA_SECP256R1_SHA256,
	MBEDTLS_TLS1_3_SIG_ECDSA_SECP384R1_SHA384,
	MBEDTLS_TLS1_3_SIG_RSA_PSS_RSAE_SHA256,
	MBEDTLS_TLS1_3_SIG_RSA_PSS_RSAE_SHA384,
	MBEDTLS_TLS1_3_SIG_RSA_PSS_RSAE_SHA512,
	MBEDTLS_TLS1_3_SIG_RSA_PKCS1_SHA256,
	MBEDTLS_TLS1_3_SIG_RSA_PKCS1_SHA384,
	MBEDTLS_TLS1_3_SIG_RSA_PKCS1_SHA512,
	MBEDTLS_TLS1_3_SIG_NONE,
};

int tls_conf_common(mbedtls_ssl_config *conf, bool tls13_only, const int *suites, const char **alpn)
{
	mbedtls_ssl_conf_rng(conf, tls_rng, NULL);
	mbedtls_ssl_conf_min_tls_version(conf, tls13_only ? MBEDTLS_SSL_VERSION_TLS1_3
							  : MBEDTLS_SSL_VERSION_TLS1_2);
	mbedtls_ssl_conf_max_tls_version(conf, MBEDTLS_SSL_VERSION_TLS1_3);
	mbedtls_ssl_conf_ciphersuites(conf, suites);
	mbedtls_ssl_conf_groups(conf, groups);
	mbedtls_ssl_conf_sig_algs(conf, sig_algs);
	if (alpn && mbedtls_ssl_conf_alpn_protocols(conf, alpn) != 0)
		return -EINVAL;
	return 0;
}

const char **tls_alpn_dup(const char *const *alpn, const char *label, struct diag *d)
{
	size_t n = 0, bytes = 0;
	const char **v;
	char *p;

	if (!alpn || !alpn[0])
		return NULL;
	for (; alpn[n]; n++) {
		size_t len = strlen(alpn[n]);

		if (len == 0 || len > 255) {
			diag_add(d, DIAG_ERROR, NULL, label, "alpn",
				 "protocol name of %zu bytes (1 to 255)", len);
			return NULL;
		}
		bytes += len + 1;
	}
	v = malloc((n + 1) * sizeof(*v) + bytes);
	if (!v) {
		diag_add(d, DIAG_ERROR, NULL, label, "alpn", "out of memory");
		return NULL;
	}
	p = (char *)(v + n + 1);
	for (size_t i = 0; i < n; i++) {
		size_t len = strlen(alpn[i]) + 1;

		memcpy(p, alpn[i], len);
		v[i] = p;
		p += len;
	}
	v[n] = NULL;
	return v;
}

/* SNI names are stored for the proxy (421, routing, logs): keep only what a
 * host name can be, lower-cased. */
static char *sni_dup(const unsigned char *name, size_t len)
{
	char *s;

	if (len == 0 || len > 253)
		return NULL;
	s = mbedtls_calloc(1, len + 1);
	if (!s)
		return NULL;
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = name[i];

		if (ch >= 'A' && ch <= 'Z')
			ch = (unsigned char)(ch - 'A' + 'a');
		else if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-' ||
			   ch == '.' || ch == '_')) {
			mbedtls_free(s);
			return NULL;
		}
		s[i] = (char)ch;
	}
	return s;
}

/* Adds every certificate whose names satisfy `want` (exact, then wildcard)
 * as a candidate; mbedTLS then picks among them by signature algorithm
 * (so an RSA and an ECDSA certificate for the same name both work). */
static int add_matching(struct tls_server *s, mbedtls_ssl_context *ssl, const char *host,
			size_t hlen, bool wildcard)
{
	int found = 0;

	for (size_t i = 0; i < s->n_kc; i++) {
		struct tls_keycert *kc = &s->kc[i];

		for (size_t j = 0; j < kc->n_names; j++) {
			const char *nm = kc->names[j];
			bool is_wild = nm[0] == '*';
			bool hit;

			if (is_wild != wildcard)
				continue;
			hit = wildcard ? tls_name_match(nm, strlen(nm), host, hlen)
				       : strlen(nm) == hlen && memcmp(nm, host, hlen) == 0;
			if (!hit)
				continue;
			if (mbedtls_ssl_set_hs_own_cert(ssl, &kc->chain, &kc->key) != 0)
				return -1;
			found++;
			break;
		}
	}
	return found;
}

static int on_sni(void *arg, mbedtls_ssl_context *ssl, const unsigned char *name, size_t len)
{
	struct tls_server *s = arg;
	struct tls_conn *c = mbedtls_ssl_get_user_data_p(ssl);
	char *host = sni_dup(name, len);
	size_t hlen;
	int n;

	if (!host)
		return 0; /* not a host name: the default certificate */
	hlen = strlen(host);
	if (hlen > 0 && host[hlen - 1] == '.')
		host[--hlen] = '\0';
	if (c && !c->name) {
		c->name = host;
	}
	n = add_matching(s, ssl, host, hlen, false);
	if (n == 0)
		n = add_matching(s, ssl, host, hlen, true);
	if (!c || c->name != host)
		mbedtls_free(host);
	/* No match: the configuration's own certificate (the first) answers. */
	return n < 0 ? -1 : 0;
}

void tls_server_ref(struct tls_server *s)
{
	__atomic_add_fetch(&s->refs, 1, __ATOMIC_RELAXED);
}

static void server_free(struct tls_server *s)
{
	mbedtls_ssl_config_free(&s->conf);
	mbedtls_ssl_config_free(&s->conf13);
	mbedtls_ssl_ticket_free(&s->ticket);
	for (size_t i = 0; i < s->n_kc; i++)
		tls_keycert_fini(&s->kc[i]);
	free(s->kc);
	mbedtls_x509_crt_free(&s->client_ca);
	free(s->alpn);
	free(s);
}

void tls_server_unref(struct tls_server *s)
{
	if (s && __atomic_sub_fetch(&s->refs, 1, __ATOMIC_ACQ_REL) == 0)
		server_free(s);
}

int64_t tls_server_not_after(const struct tls_server *s)
{
	return s ? s->not_after : 0;
}

/* One server configuration over the context's shared parts (certificates,
 * SNI, client CA, ALPN, ticket key); only the suite list differs between
 * s->conf and s->conf13. */
static int conf_setup(struct tls_server *s, mbedtls_ssl_config *conf, const int *suites,
		      const struct tls_server_opts *o, struct diag *d)
{
	char e[128];
	int ret;

	ret = mbedtls_ssl_config_defaults(conf, MBEDTLS_SSL_IS_SERVER, MBEDTLS_SSL_TRANSPORT_STREAM,
					  MBEDTLS_SSL_PRESET_DEFAULT);
	if (ret != 0) {
		diag_add(d, DIAG_ERROR, NULL, NULL, NULL, "TLS configuration failed: %s",
			 tls_strerror(ret, e, sizeof(e)));
		return -WG_ETLS;
	}
	if (tls_conf_common(conf, o->tls13_only, suites, s->alpn) != 0) {
		diag_add(d, DIAG_ERROR, NULL, NULL, "alpn", "invalid ALPN protocol list");
		return -EINVAL;
	}
	/* The first usable certificate answers clients without SNI or without
	 * a match. */
	ret = mbedtls_ssl_conf_own_cert(conf, &s->kc[0].chain, &s->kc[0].key);
	if (ret != 0) {
		diag_add(d, DIAG_ERROR, NULL, NULL, "tls.crt", "cannot use certificate: %s",
			 tls_strerror(ret, e, sizeof(e)));
		return -WG_ETLS;
	}
	mbedtls_ssl_conf_sni(conf, on_sni, s);
	switch (o->client_auth) {
	case TLS_CLIENT_AUTH_NONE: mbedtls_ssl_conf_authmode(conf, MBEDTLS_SSL_VERIFY_NONE); break;
	case TLS_CLIENT_AUTH_REQUIRE:
	case TLS_CLIENT_AUTH_OPTIONAL:
		mbedtls_ssl_conf_ca_chain(conf, &s->client_ca, NULL);
		mbedtls_ssl_conf_authmode(conf, o->client_auth == TLS_CLIENT_AUTH_REQUIRE
							? MBEDTLS_SSL_VERIFY_REQUIRED
							: MBEDTLS_SSL_VERIFY_OPTIONAL);
		break;
	}
	mbedtls_ssl_conf_session_tickets_cb(conf, mbedtls_ssl_ticket_write,
					    mbedtls_ssl_ticket_parse, &s->ticket);
	mbedtls_ssl_conf_new_session_tickets(conf, 1);
	return 0;
}

struct tls_server *tls_server_new(const struct tls_server_opts *o, struct diag *d)
{
	struct tls_server *s;
	char e[128];
	int ret;

	if (tls_lib_init() != 0) {
		diag_add(d, DIAG_ERROR, NULL, NULL, NULL, "TLS library initialisation failed");
		return NULL;
	}
	if (!o || o->n_certs == 0 || !o->certs) {
		diag_add(d, DIAG_ERROR, NULL, NULL, "certificateRefs",
			 "a TLS listener needs at least one certificate");
		return NULL;
	}
	s = calloc(1, sizeof(*s));
	if (!s) {
		diag_add(d, DIAG_ERROR, NULL, NULL, NULL, "out of memory");
		return NULL;
	}
	s->refs = 1;
	mbedtls_ssl_config_init(&s->conf);
	mbedtls_ssl_config_init(&s->conf13);
	mbedtls_ssl_ticket_init(&s->ticket);
	mbedtls_x509_crt_init(&s->client_ca);
	s->client_auth = o->client_auth;

	s->kc = calloc(o->n_certs, sizeof(*s->kc));
	if (!s->kc) {
		diag_add(d, DIAG_ERROR, NULL, NULL, NULL, "out of memory");
		goto fail;
	}
	/* Every broken certificate is reported and left out; the others still
	 * serve (one listener's bad Secret must not take its port down). */
	for (size_t i = 0; i < o->n_certs; i++) {
		const struct tls_cert_pem *cp = &o->certs[i];
		struct tls_keycert kc;

		if (tls_keycert_load(&kc, cp->cert_pem, cp->key_pem, cp->name, d) != 0)
			continue;
		s->kc[s->n_kc++] = kc;
	}
	if (s->n_kc == 0) {
		if (o->n_certs > 1)
			diag_add(d, DIAG_ERROR, NULL, NULL, "certificateRefs",
				 "none of the %zu certificates is usable", o->n_certs);
		goto fail;
	}
	s->not_after = INT64_MAX;
	for (size_t i = 0; i < s->n_kc; i++) {
		if (s->kc[i].not_after < s->not_after)
			s->not_after = s->kc[i].not_after;
	}

	if (o->alpn && o->alpn[0]) {
		size_t before = d ? d->errors : 0;

		s->alpn = tls_alpn_dup(o->alpn, o->certs[0].name, d);
		if (!s->alpn || (d && d->errors != before))
			goto fail;
	}
	if (o->client_auth != TLS_CLIENT_AUTH_NONE) {
		if (!o->client_ca_pem) {
			diag_add(d, DIAG_ERROR, NULL, NULL, "frontendValidation.caCertificateRefs",
				 "client certificate validation needs a CA certificate");
			goto fail;
		}
		if (tls_ca_load(&s->client_ca, o->client_ca_pem, NULL,
				"frontendValidation.caCertificateRefs", d) != 0)
			goto fail;
	}
	ret = mbedtls_ssl_ticket_setup(&s->ticket, tls_rng, NULL, MBEDTLS_CIPHER_AES_256_GCM,
				       TLS_TICKET_LIFETIME_S);
	if (ret != 0) {
		diag_add(d, DIAG_ERROR, NULL, NULL, NULL, "session ticket set-up failed: %s",
			 tls_strerror(ret, e, sizeof(e)));
		goto fail;
	}
	if (conf_setup(s, &s->conf, tls_suites(o->cipher_pref), o, d) != 0)
		goto fail;
	if (o->cipher_pref == TLS_PREF_CHACHA_FIRST) {
		if (conf_setup(s, &s->conf13, suites_chacha13_only, o, d) != 0)
			goto fail;
		s->has_conf13 = true;
	}
	return s;

fail:
	server_free(s);
	return NULL;
}
