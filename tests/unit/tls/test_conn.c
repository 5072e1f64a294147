/* SPDX-License-Identifier: MIT */
/*
 * test_conn.c: handshakes between a tls_server and a tls_client over a
 * non-blocking socketpair: versions, SNI certificate selection, ALPN,
 * ticket resumption, client certificates, every verification failure the
 * proxy and the kube client must refuse, data transfer, clean close, and
 * the memory an idle connection holds.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <mbedtls/ssl.h>
#include <mbedtls/x509_crt.h>

#include "check.h"
#include "core/err.h"
#include "tls/internal.h"
#include "tls/tls.h"
#include "tlsutil.h"

static const char *const alpn_h2_h1[] = {"h2", "http/1.1", NULL};
static const char *const alpn_h1[] = {"http/1.1", NULL};
static const char *const alpn_h2[] = {"h2", NULL};
static const char *const alpn_x[] = {"x-unknown", NULL};

/* The CN of the leaf the client received. */
static const char *peer_cn(struct tls_conn *c, char *buf, size_t size)
{
	const mbedtls_x509_crt *crt = mbedtls_ssl_get_peer_cert(&c->ssl);

	buf[0] = '\0';
	if (crt)
		mbedtls_x509_dn_gets(buf, size, &crt->subject);
	return buf;
}

static struct tls_server *sni_server(void)
{
	const struct tpki *k = tpki_get();

	return tsrv_new(NULL, TLS_CLIENT_AUTH_NONE, NULL, k->other_crt, k->other_key, k->www_crt,
			k->www_key, k->wild_crt, k->wild_key, NULL);
}

TEST(tls_handshake_tls13_default)
{
	const struct tpki *k = tpki_get();
	struct tls_server *s =
		tsrv_new(NULL, TLS_CLIENT_AUTH_NONE, NULL, k->www_crt, k->www_key, NULL);
	struct tls_client *c = tcli_new(k->ca_crt, NULL);
	struct tpair p;

	CHECK(s && c);
	if (!s || !c)
		goto out;
	CHECK_EQ_INT(tpair_open(&p, s, c, "www.example.com"), 0);
	CHECK_EQ_INT(tpair_handshake(&p), 0);
	CHECK_EQ_STR(tls_conn_version(p.s), "TLSv1.3");
	CHECK_EQ_STR(tls_conn_version(p.c), "TLSv1.3");
	CHECK_EQ_STR(tls_conn_cipher(p.c), "TLS_AES_128_GCM_SHA256");
	CHECK_EQ_STR(tls_conn_sni(p.s), "www.example.com");
	CHECK(tls_conn_alpn(p.s) == NULL);
	CHECK(tls_conn_peer_verified(p.c));
	CHECK(!tls_conn_peer_verified(p.s)); /* no client certificate asked */
	CHECK(!tls_conn_resumed(p.s));
	CHECK(!tls_conn_resumed(p.c));
	CHECK(tls_conn_error(p.c) == NULL);
	{
		char got[6] = {0};

		CHECK_EQ_INT(tpair_xfer(&p, false, "hello", 5, got), 5);
		CHECK_EQ_MEM(got, 5, "hello");
		CHECK_EQ_INT(tpair_xfer(&p, true, "world", 5, got), 5);
		CHECK_EQ_MEM(got, 5, "world");
	}
	tpair_close(&p);
out:
	tls_server_unref(s);
	tls_client_unref(c);
}

TEST(tls_handshake_tls12_when_client_caps_version)
{
	const struct tpki *k = tpki_get();
	struct tls_server *s =
		tsrv_new(NULL, TLS_CLIENT_AUTH_NONE, NULL, k->www_crt, k->www_key, NULL);
	struct tls_client *c = tcli_new(k->ca_crt, NULL);
	struct tpair p;
	char got[4];

	if (!s || !c) {
		CHECK(s && c);
		goto out;
	}
	mbedtls_ssl_conf_max_tls_version(&c->conf, MBEDTLS_SSL_VERSION_TLS1_2);
	CHECK_EQ_INT(tpair_open(&p, s, c, "www.example.com"), 0);
	CHECK_EQ_INT(tpair_handshake(&p), 0);
	CHECK_EQ_STR(tls_conn_version(p.s), "TLSv1.2");
	CHECK_EQ_STR(tls_conn_cipher(p.s), "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256");
	CHECK(tls_conn_peer_verified(p.c));
	CHECK_EQ_INT(tpair_xfer(&p, true, "ping", 4, got), 4);
	tpair_close(&p);
out:
	tls_server_unref(s);
	tls_client_unref(c);
}

TEST(tls_tls13_only_server_refuses_tls12_client)
{
	const struct tpki *k = tpki_get();
	struct tls_cert_pem cp = {k->www_crt, k->www_key, "ns/www"};
	struct tls_server_opts o = {.certs = &cp, .n_certs = 1, .tls13_only = true};
	struct diag d = {0};
	struct tls_server *s = tls_server_new(&o, &d);
	struct tls_client *c = tcli_new(k->ca_crt, NULL);
	struct tpair p;

	if (!s || !c) {
		CHECK(s && c);
		goto out;
	}
	mbedtls_ssl_conf_max_tls_version(&c->conf, MBEDTLS_SSL_VERSION_TLS1_2);
	CHECK_EQ_INT(tpair_open(&p, s, c, "www.example.com"), 0);
	CHECK(tpair_handshake(&p) != 0);
	CHECK(tls_conn_error(p.s) != NULL);
	tpair_close(&p);
out:
	diag_fini(&d);
	tls_server_unref(s);
	tls_client_unref(c);
}

static void check_sni(struct tls_server *s, struct tls_client *c, const char *name,
		      const char *want_cn, const char *want_sni)
{
	struct tpair p;
	char cn[128];

	CHECK_EQ_INT(tpair_open(&p, s, c, name), 0);
	CHECK_EQ_INT(tpair_handshake(&p), 0);
	CHECK_EQ_STR(peer_cn(p.c, cn, sizeof(cn)), want_cn);
	if (want_sni)
		CHECK_EQ_STR(tls_conn_sni(p.s), want_sni);
	else
		CHECK(tls_conn_sni(p.s) == NULL);
	tpair_close(&p);
}

TEST(tls_sni_selects_exact_then_wildcard_then_default)
{
	const struct tpki *k = tpki_get();
	struct tls_server *s = sni_server();
	struct tls_client *ci = tcli_new(NULL, NULL); /* insecure: see what is served */

	if (!s || !ci) {
		CHECK(s && ci);
		goto out;
	}
	/* Exact beats the wildcard that also matches. */
	check_sni(s, ci, "www.example.com", "CN=www.example.com", "www.example.com");
	check_sni(s, ci, "example.com", "CN=www.example.com", "example.com");
	/* Case and a trailing dot do not matter. */
	check_sni(s, ci, "WWW.Example.COM", "CN=www.example.com", "www.example.com");
	/* Wildcard: one label only. */
	check_sni(s, ci, "api.example.com", "CN=*.example.com", "api.example.com");
	check_sni(s, ci, "a.b.example.com", "CN=other.test", "a.b.example.com");
	/* No match, no SNI (IP literal): the first certificate. */
	check_sni(s, ci, "unknown.test", "CN=other.test", "unknown.test");
	check_sni(s, ci, "127.0.0.1", "CN=other.test", NULL);
	(void)k;
out:
	tls_server_unref(s);
	tls_client_unref(ci);
}

TEST(tls_sni_trailing_dot)
{
	struct tls_server *s = sni_server();
	struct tls_client *ci = tcli_new(NULL, NULL);

	if (s && ci)
		check_sni(s, ci, "api.example.com.", "CN=*.example.com", "api.example.com");
	tls_server_unref(s);
	tls_client_unref(ci);
}

static void alpn_case(const char *const *srv, const char *const *cli, int want_ok, const char *want)
{
	const struct tpki *k = tpki_get();
	struct tls_server *s =
		tsrv_new(srv, TLS_CLIENT_AUTH_NONE, NULL, k->www_crt, k->www_key, NULL);
	struct tls_client *c = tcli_new(k->ca_crt, cli);
	struct tpair p;

	if (!s || !c) {
		CHECK(s && c);
		goto out;
	}
	CHECK_EQ_INT(tpair_open(&p, s, c, "www.example.com"), 0);
	CHECK_EQ_INT(tpair_handshake(&p) == 0, want_ok);
	if (want_ok) {
		if (want) {
			CHECK_EQ_STR(tls_conn_alpn(p.s), want);
			CHECK_EQ_STR(tls_conn_alpn(p.c), want);
		} else {
			CHECK(tls_conn_alpn(p.s) == NULL);
		}
	} else {
		CHECK(tls_conn_error(p.s) != NULL);
	}
	tpair_close(&p);
out:
	tls_server_unref(s);
	tls_client_unref(c);
}

TEST(tls_alpn_negotiation)
{
	alpn_case(alpn_h2_h1, alpn_h2_h1, 1, "h2");
	alpn_case(alpn_h2_h1, alpn_h1, 1, "http/1.1");
	alpn_case(alpn_h1, alpn_h2_h1, 1, "http/1.1");
	alpn_case(alpn_h2_h1, NULL, 1, NULL);   /* client without ALPN */
	alpn_case(NULL, alpn_h2, 1, NULL);      /* server without ALPN */
	alpn_case(alpn_h2_h1, alpn_x, 0, NULL); /* no overlap: refused (RFC 7301) */
}

static void resume_case(bool tls12)
{
	const struct tpki *k = tpki_get();
	struct tls_server *s =
		tsrv_new(NULL, TLS_CLIENT_AUTH_NONE, NULL, k->www_crt, k->www_key, NULL);
	struct tls_client *c = tcli_new(k->ca_crt, NULL);
	struct tpair p;
	char got[8];

	if (!s || !c) {
		CHECK(s && c);
		goto out;
	}
	if (tls12)
		mbedtls_ssl_conf_max_tls_version(&c->conf, MBEDTLS_SSL_VERSION_TLS1_2);
	for (int round = 0; round < 3; round++) {
		CHECK_EQ_INT(tpair_open(&p, s, c, "www.example.com"), 0);
		CHECK_EQ_INT(tpair_handshake(&p), 0);
		/* The TLS 1.3 ticket travels after the handshake: read data. */
		CHECK_EQ_INT(tpair_xfer(&p, true, "ticket", 6, got), 6);
		CHECK_EQ_INT(tls_conn_resumed(p.s), round > 0);
		CHECK_EQ_INT(tls_conn_resumed(p.c), round > 0);
		CHECK(tls_conn_peer_verified(p.c));
		CHECK_EQ_STR(tls_conn_version(p.c), tls12 ? "TLSv1.2" : "TLSv1.3");
		tpair_close(&p);
	}
	/* Another name is not offered that session. */
	CHECK_EQ_INT(tpair_open(&p, s, c, "example.com"), 0);
	CHECK_EQ_INT(tpair_handshake(&p), 0);
	CHECK(!tls_conn_resumed(p.s));
	tpair_close(&p);
out:
	tls_server_unref(s);
	tls_client_unref(c);
}

TEST(tls_resumption_tls13_ticket)
{
	resume_case(false);
}

TEST(tls_resumption_tls12_ticket)
{
	resume_case(true);
}

TEST(tls_ticket_from_other_server_is_not_resumed)
{
	const struct tpki *k = tpki_get();
	struct tls_server *s1 =
		tsrv_new(NULL, TLS_CLIENT_AUTH_NONE, NULL, k->www_crt, k->www_key, NULL);
	struct tls_server *s2 =
		tsrv_new(NULL, TLS_CLIENT_AUTH_NONE, NULL, k->www_crt, k->www_key, NULL);
	struct tls_client *c = tcli_new(k->ca_crt, NULL);
	struct tpair p;
	char got[8];

	if (!s1 || !s2 || !c) {
		CHECK(s1 && s2 && c);
		goto out;
	}
	CHECK_EQ_INT(tpair_open(&p, s1, c, "www.example.com"), 0);
	CHECK_EQ_INT(tpair_handshake(&p), 0);
	CHECK_EQ_INT(tpair_xfer(&p, true, "ticket", 6, got), 6);
	tpair_close(&p);
	/* s2's ticket key differs: a full handshake, which still succeeds. */
	CHECK_EQ_INT(tpair_open(&p, s2, c, "www.example.com"), 0);
	CHECK_EQ_INT(tpair_handshake(&p), 0);
	CHECK(!tls_conn_resumed(p.s));
	CHECK(tls_conn_peer_verified(p.c));
	tpair_close(&p);
out:
	tls_server_unref(s1);
	tls_server_unref(s2);
	tls_client_unref(c);
}

/* Client auth: server mode, client cert (or none), expected outcome. */
static void auth_case(enum tls_client_auth mode, const char *crt, const char *key, bool tls12,
		      int want_ok, bool want_verified)
{
	const struct tpki *k = tpki_get();
	struct tls_server *s = tsrv_new(NULL, mode, k->ca_crt, k->www_crt, k->www_key, NULL);
	struct tls_client_opts o = {
		.ca_pem = k->ca_crt, .client_cert_pem = crt, .client_key_pem = key};
	struct diag d = {0};
	struct tls_client *c = tls_client_new(&o, &d);
	struct tpair p;
	char got[4];

	if (!s || !c) {
		CHECK(s && c);
		goto out;
	}
	if (tls12)
		mbedtls_ssl_conf_max_tls_version(&c->conf, MBEDTLS_SSL_VERSION_TLS1_2);
	CHECK_EQ_INT(tpair_open(&p, s, c, "www.example.com"), 0);
	CHECK_EQ_INT(tpair_handshake(&p) == 0, want_ok);
	if (want_ok) {
		CHECK_EQ_INT(tls_conn_peer_verified(p.s), want_verified);
		/* TLS 1.3 failures of the client certificate surface here. */
		CHECK_EQ_INT(tpair_xfer(&p, false, "data", 4, got), 4);
	} else {
		CHECK(tls_conn_error(p.s) != NULL);
		if (tls_conn_error(p.s))
			CHECK(strstr(tls_conn_error(p.s), "certificate") != NULL);
	}
	tpair_close(&p);
out:
	diag_fini(&d);
	tls_server_unref(s);
	tls_client_unref(c);
}

TEST(tls_client_auth_required)
{
	const struct tpki *k = tpki_get();

	for (int v = 0; v < 2; v++) {
		auth_case(TLS_CLIENT_AUTH_REQUIRE, k->cli_crt, k->cli_key, v, 1, true);
		auth_case(TLS_CLIENT_AUTH_REQUIRE, NULL, NULL, v, 0, false);
		auth_case(TLS_CLIENT_AUTH_REQUIRE, k->cli2_crt, k->cli2_key, v, 0, false);
	}
}

TEST(tls_client_auth_optional_is_insecure_fallback)
{
	const struct tpki *k = tpki_get();

	for (int v = 0; v < 2; v++) {
		auth_case(TLS_CLIENT_AUTH_OPTIONAL, k->cli_crt, k->cli_key, v, 1, true);
		auth_case(TLS_CLIENT_AUTH_OPTIONAL, NULL, NULL, v, 1, false);
		auth_case(TLS_CLIENT_AUTH_OPTIONAL, k->cli2_crt, k->cli2_key, v, 1, false);
	}
}

TEST(tls_client_auth_rsa_and_ec_key_formats)
{
	/* kubeconfig client keys: RSA PKCS#1, EC SEC1, PKCS#8. */
	struct tls_server *s;
	const char *keys[][2] = {{fx_rsa_cli_crt, fx_rsa_cli_key_pkcs1},
				 {fx_ec_cli_crt, fx_ec_cli_key_sec1},
				 {fx_ec_cli_crt, fx_ec_cli_key_pkcs8}};

	s = tsrv_new(NULL, TLS_CLIENT_AUTH_REQUIRE, fx_rsa_ca_crt, fx_rsa_srv_crt, fx_rsa_srv_key,
		     NULL);
	CHECK(s != NULL);
	for (size_t i = 0; s && i < 3; i++) {
		for (int v = 0; v < 2; v++) {
			struct tls_client_opts o = {.ca_pem = fx_rsa_ca_crt,
						    .client_cert_pem = keys[i][0],
						    .client_key_pem = keys[i][1]};
			struct diag d = {0};
			struct tls_client *c = tls_client_new(&o, &d);
			struct tpair p;
			char got[4];

			CHECK(c != NULL);
			if (!c)
				continue;
			if (v)
				mbedtls_ssl_conf_max_tls_version(&c->conf,
								 MBEDTLS_SSL_VERSION_TLS1_2);
			CHECK_EQ_INT(tpair_open(&p, s, c, "kube.test"), 0);
			CHECK_EQ_INT(tpair_handshake(&p), 0);
			CHECK(tls_conn_peer_verified(p.s));
			CHECK(tls_conn_peer_verified(p.c));
			CHECK_EQ_INT(tpair_xfer(&p, false, "GET ", 4, got), 4);
			if (v)
				CHECK_EQ_STR(tls_conn_cipher(p.c),
					     "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256");
			tpair_close(&p);
			tls_client_unref(c);
			diag_fini(&d);
		}
	}
	tls_server_unref(s);
}

/* A client verification case: server certificate, client CA / SANs, name. */
static void verify_case(const char *crt, const char *key, const char *ca, const char *const *sans,
			size_t n_sans, const char *name, bool want_ok, const char *want_err)
{
	struct tls_server *s = tsrv_new(NULL, TLS_CLIENT_AUTH_NONE, NULL, crt, key, NULL);
	struct tls_client_opts o = {.ca_pem = ca, .sans = sans, .n_sans = n_sans};
	struct diag d = {0};
	struct tls_client *c = tls_client_new(&o, &d);
	struct tpair p;

	if (!s || !c) {
		CHECK(s && c);
		goto out;
	}
	CHECK_EQ_INT(tpair_open(&p, s, c, name), 0);
	CHECK_EQ_INT(tpair_handshake(&p) == 0, want_ok);
	if (want_ok) {
		CHECK(tls_conn_peer_verified(p.c));
	} else {
		CHECK_EQ_STR(tls_conn_error(p.c), want_err);
		CHECK(tls_conn_error(p.s) != NULL); /* the server stopped too */
	}
	tpair_close(&p);
out:
	diag_fini(&d);
	tls_server_unref(s);
	tls_client_unref(c);
}

TEST(tls_verify_ca_mismatch_refused)
{
	const struct tpki *k = tpki_get();

	verify_case(k->rogue_crt, k->rogue_key, k->ca_crt, NULL, 0, "www.example.com", false,
		    "certificate verify failed: unknown authority");
	verify_case(k->www_crt, k->www_key, k->ca2_crt, NULL, 0, "www.example.com", false,
		    "certificate verify failed: unknown authority");
}

TEST(tls_verify_hostname)
{
	const struct tpki *k = tpki_get();

	verify_case(k->www_crt, k->www_key, k->ca_crt, NULL, 0, "www.example.com", true, NULL);
	verify_case(k->www_crt, k->www_key, k->ca_crt, NULL, 0, "EXAMPLE.com", true, NULL);
	verify_case(k->www_crt, k->www_key, k->ca_crt, NULL, 0, "evil.example.com", false,
		    "certificate verify failed: name mismatch");
	verify_case(k->wild_crt, k->wild_key, k->ca_crt, NULL, 0, "api.example.com", true, NULL);
	verify_case(k->wild_crt, k->wild_key, k->ca_crt, NULL, 0, "example.com", false,
		    "certificate verify failed: name mismatch");
	verify_case(k->wild_crt, k->wild_key, k->ca_crt, NULL, 0, "a.b.example.com", false,
		    "certificate verify failed: name mismatch");
	/* No CN fallback: "client" has no SANs. */
	verify_case(k->cli_crt, k->cli_key, k->ca_crt, NULL, 0, "client", false,
		    "certificate verify failed: name mismatch");
}

TEST(tls_verify_ip_sans)
{
	const struct tpki *k = tpki_get();

	verify_case(k->ip_crt, k->ip_key, k->ca_crt, NULL, 0, "127.0.0.1", true, NULL);
	verify_case(k->ip_crt, k->ip_key, k->ca_crt, NULL, 0, "::1", true, NULL);
	verify_case(k->ip_crt, k->ip_key, k->ca_crt, NULL, 0, "[::1]", true, NULL);
	verify_case(k->ip_crt, k->ip_key, k->ca_crt, NULL, 0, "127.0.0.2", false,
		    "certificate verify failed: name mismatch");
	/* An IP is never matched against DNS names (the CN is "127.0.0.1"). */
	verify_case(k->www_crt, k->www_key, k->ca_crt, NULL, 0, "127.0.0.1", false,
		    "certificate verify failed: name mismatch");
	/* Kubernetes API servers: RSA certificate with an IP SAN, both versions. */
	verify_case(fx_rsa_srv_crt, fx_rsa_srv_key, fx_rsa_ca_crt, NULL, 0, "127.0.0.1", true,
		    NULL);
	verify_case(fx_rsa_srv_crt, fx_rsa_srv_key, fx_rsa_ca_crt, NULL, 0, "kube.test", true,
		    NULL);
}

TEST(tls_verify_extra_sans_dns_and_uri)
{
	const struct tpki *k = tpki_get();
	const char *uri[] = {"spiffe://cluster.local/ns/default/sa/backend"};
	const char *uri_bad[] = {"spiffe://cluster.local/ns/default/sa/other"};
	const char *dns[] = {"nomatch.test", "backend.internal"};
	const char *wild[] = {"x.example.com"};

	/* With subjectAltNames the host name is only SNI, not checked. */
	verify_case(k->uri_crt, k->uri_key, k->ca_crt, uri, 1, "svc.ns.svc", true, NULL);
	verify_case(k->uri_crt, k->uri_key, k->ca_crt, dns, 2, "svc.ns.svc", true, NULL);
	verify_case(k->uri_crt, k->uri_key, k->ca_crt, uri_bad, 1, "backend.internal", false,
		    "certificate verify failed: name mismatch");
	verify_case(k->wild_crt, k->wild_key, k->ca_crt, wild, 1, "svc", true, NULL);
	/* A URI in the list never matches a DNS SAN spelled the same. */
	{
		const char *u[] = {"dns://backend.internal"};

		verify_case(k->uri_crt, k->uri_key, k->ca_crt, u, 1, "svc", false,
			    "certificate verify failed: name mismatch");
	}
}

TEST(tls_insecure_skip_verify_accepts_anything)
{
	const struct tpki *k = tpki_get();
	struct tls_server *s =
		tsrv_new(NULL, TLS_CLIENT_AUTH_NONE, NULL, k->rogue_crt, k->rogue_key, NULL);
	struct tls_client *c = tcli_new(NULL, NULL);
	struct tpair p;

	if (!s || !c) {
		CHECK(s && c);
		goto out;
	}
	CHECK_EQ_INT(tpair_open(&p, s, c, "wrong.name"), 0);
	CHECK_EQ_INT(tpair_handshake(&p), 0);
	CHECK(!tls_conn_peer_verified(p.c));
	tpair_close(&p);
out:
	tls_server_unref(s);
	tls_client_unref(c);
}

TEST(tls_cipher_preference)
{
	const struct tpki *k = tpki_get();
	struct tls_cert_pem cp = {k->www_crt, k->www_key, "ns/www"};
	struct tls_server_opts so = {
		.certs = &cp, .n_certs = 1, .cipher_pref = TLS_PREF_CHACHA_FIRST};
	struct tls_client_opts co = {.ca_pem = k->ca_crt};
	struct tls_client_opts cc = {.ca_pem = k->ca_crt, .cipher_pref = TLS_PREF_CHACHA_FIRST};
	struct diag d = {0};
	struct tls_server *s = tls_server_new(&so, &d);
	struct tls_client *c = tls_client_new(&co, &d);
	struct tls_client *c_chacha = tls_client_new(&cc, &d);
	struct tpair p;

	if (!s || !c || !c_chacha) {
		CHECK(s && c && c_chacha);
		goto out;
	}
	/* TLS 1.2: the server's order wins over an AES-first client. */
	mbedtls_ssl_conf_max_tls_version(&c->conf, MBEDTLS_SSL_VERSION_TLS1_2);
	CHECK_EQ_INT(tpair_open(&p, s, c, "www.example.com"), 0);
	CHECK_EQ_INT(tpair_handshake(&p), 0);
	CHECK_EQ_STR(tls_conn_cipher(p.s), "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256");
	tpair_close(&p);
	/* TLS 1.3: a ChaCha20-first server gets ChaCha20 from an AES-first
	 * client too (a board without AES instructions), resumption included;
	 * our client offers ChaCha20 first when told to. */
	/* (A fresh AES-first client: c holds a TLS 1.2 session now.) */
	tls_client_unref(c);
	c = tls_client_new(&co, &d);
	if (!c) {
		CHECK(c != NULL);
		goto out;
	}
	for (int i = 0; i < 2; i++) {
		char got[4];

		CHECK_EQ_INT(tpair_open(&p, s, c, "www.example.com"), 0);
		CHECK_EQ_INT(tpair_handshake(&p), 0);
		CHECK_EQ_STR(tls_conn_version(p.s), "TLSv1.3");
		CHECK_EQ_STR(tls_conn_cipher(p.s), "TLS_CHACHA20_POLY1305_SHA256");
		CHECK_EQ_INT(tls_conn_resumed(p.s), i == 1);
		CHECK_EQ_INT(tpair_xfer(&p, true, "tkt", 3, got), 3);
		tpair_close(&p);
	}
	CHECK_EQ_INT(tpair_open(&p, s, c_chacha, "www.example.com"), 0);
	CHECK_EQ_INT(tpair_handshake(&p), 0);
	CHECK_EQ_STR(tls_conn_cipher(p.s), "TLS_CHACHA20_POLY1305_SHA256");
	tpair_close(&p);
	/* A client without ChaCha20 still gets in (AES-GCM). */
	{
		static const int aes_only[] = {MBEDTLS_TLS1_3_AES_256_GCM_SHA384, 0};
		struct tls_client *c_aes = tcli_new(k->ca_crt, NULL);

		if (c_aes) {
			mbedtls_ssl_conf_ciphersuites(&c_aes->conf, aes_only);
			CHECK_EQ_INT(tpair_open(&p, s, c_aes, "www.example.com"), 0);
			CHECK_EQ_INT(tpair_handshake(&p), 0);
			CHECK_EQ_STR(tls_conn_cipher(p.s), "TLS_AES_256_GCM_SHA384");
			tpair_close(&p);
		}
		tls_client_unref(c_aes);
	}
	/* An AES-first server leaves TLS 1.3 clients their own order. */
	{
		struct tls_server_opts ao = {.certs = &cp, .n_certs = 1};
		struct tls_server *sa = tls_server_new(&ao, &d);

		CHECK(sa != NULL);
		if (sa) {
			CHECK_EQ_INT(tpair_open(&p, sa, c_chacha, "www.example.com"), 0);
			CHECK_EQ_INT(tpair_handshake(&p), 0);
			CHECK_EQ_STR(tls_conn_cipher(p.s), "TLS_CHACHA20_POLY1305_SHA256");
			tpair_close(&p);
			CHECK_EQ_INT(tpair_open(&p, sa, c, "www.example.com"), 0);
			CHECK_EQ_INT(tpair_handshake(&p), 0);
			CHECK_EQ_STR(tls_conn_cipher(p.s), "TLS_AES_128_GCM_SHA256");
			tpair_close(&p);
		}
		tls_server_unref(sa);
	}
out:
	diag_fini(&d);
	tls_server_unref(s);
	tls_client_unref(c);
	tls_client_unref(c_chacha);
}

TEST(tls_large_transfer_and_clean_close)
{
	const struct tpki *k = tpki_get();
	struct tls_server *s =
		tsrv_new(NULL, TLS_CLIENT_AUTH_NONE, NULL, k->www_crt, k->www_key, NULL);
	struct tls_client *c = tcli_new(k->ca_crt, NULL);
	size_t n = 1 << 20;
	char *data = malloc(n), *got = malloc(n), b[16];
	struct tpair p;
	ssize_t r;

	if (!s || !c || !data || !got) {
		CHECK(s && c && data && got);
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		data[i] = (char)(i * 7 + (i >> 8));
	CHECK_EQ_INT(tpair_open(&p, s, c, "www.example.com"), 0);
	CHECK_EQ_INT(tpair_handshake(&p), 0);
	CHECK_EQ_INT(tpair_xfer(&p, true, data, n, got), n);
	CHECK(memcmp(data, got, n) == 0);
	CHECK_EQ_INT(tpair_xfer(&p, false, data, n, got), n);
	CHECK(memcmp(data, got, n) == 0);
	CHECK_EQ_INT(tls_pending(p.s), 0);
	/* close_notify: the peer reads 0. */
	tls_close_notify(p.c);
	r = -1;
	for (int i = 0; i < 50 && (r = tls_read(p.s, b, sizeof(b))) == -WG_EAGAIN_READ; i++)
		usleep(1000);
	CHECK_EQ_INT(r, 0);
	tpair_close(&p);
	/* EOF without close_notify also reads as 0. */
	CHECK_EQ_INT(tpair_open(&p, s, c, "www.example.com"), 0);
	CHECK_EQ_INT(tpair_handshake(&p), 0);
	CHECK_EQ_INT(tpair_xfer(&p, true, "x", 1, got), 1);
	shutdown(p.fd[1], SHUT_WR);
	r = -1;
	for (int i = 0; i < 50 && (r = tls_read(p.s, b, sizeof(b))) == -WG_EAGAIN_READ; i++)
		usleep(1000);
	CHECK_EQ_INT(r, 0);
	tpair_close(&p);
out:
	free(data);
	free(got);
	tls_server_unref(s);
	tls_client_unref(c);
}

TEST(tls_pending_reports_buffered_plaintext)
{
	const struct tpki *k = tpki_get();
	struct tls_server *s =
		tsrv_new(NULL, TLS_CLIENT_AUTH_NONE, NULL, k->www_crt, k->www_key, NULL);
	struct tls_client *c = tcli_new(k->ca_crt, NULL);
	struct tpair p;
	char b[4];
	ssize_t r = -1;

	if (!s || !c) {
		CHECK(s && c);
		goto out;
	}
	CHECK_EQ_INT(tpair_open(&p, s, c, "www.example.com"), 0);
	CHECK_EQ_INT(tpair_handshake(&p), 0);
	CHECK_EQ_INT(tls_write(p.c, "0123456789", 10), 10);
	for (int i = 0; i < 50 && (r = tls_read(p.s, b, 4)) == -WG_EAGAIN_READ; i++)
		usleep(1000);
	CHECK_EQ_INT(r, 4);
	CHECK_EQ_INT(tls_pending(p.s), 6);
	CHECK_EQ_INT(tls_read(p.s, b, 4), 4);
	CHECK_EQ_INT(tls_read(p.s, b, 4), 2);
	CHECK_EQ_INT(tls_pending(p.s), 0);
	CHECK_EQ_INT(tls_read(p.s, b, 4), -WG_EAGAIN_READ);
	tpair_close(&p);
out:
	tls_server_unref(s);
	tls_client_unref(c);
}

TEST(tls_garbage_from_client_fails_cleanly)
{
	const struct tpki *k = tpki_get();
	struct tls_server *s =
		tsrv_new(NULL, TLS_CLIENT_AUTH_NONE, NULL, k->www_crt, k->www_key, NULL);
	struct tls_client *c = tcli_new(k->ca_crt, NULL);
	struct tpair p;
	int r = -WG_EAGAIN_READ;

	if (!s || !c) {
		CHECK(s && c);
		goto out;
	}
	CHECK_EQ_INT(tpair_open(&p, s, c, "www.example.com"), 0);
	/* A plain HTTP request on the TLS port. */
	CHECK_EQ_INT(write(p.fd[1], "GET / HTTP/1.1\r\nHost: x\r\n\r\n", 27), 27);
	for (int i = 0; i < 50 && r == -WG_EAGAIN_READ; i++)
		r = tls_handshake(p.s);
	CHECK_EQ_INT(r, -WG_ETLS);
	CHECK(tls_conn_error(p.s) != NULL);
	/* Calling again does not resurrect it. */
	CHECK_EQ_INT(tls_handshake(p.s), -WG_ETLS);
	tpair_close(&p);
out:
	tls_server_unref(s);
	tls_client_unref(c);
}

/* Heap that mbedTLS holds per idle connection after the handshake (both
 * ends counted separately), printed for the record and bounded. */
TEST(tls_memory_per_idle_connection)
{
	enum { N = 16 };
	const struct tpki *k = tpki_get();
	struct tls_server *s =
		tsrv_new(alpn_h2_h1, TLS_CLIENT_AUTH_NONE, NULL, k->www_crt, k->www_key, NULL);
	struct tls_client *c = tcli_new(k->ca_crt, alpn_h2_h1);
	struct tpair p[N];
	size_t base, after_s, per;
	char got[4];

	if (!s || !c) {
		CHECK(s && c);
		goto out;
	}
	base = tls_mem_in_use();
	for (int i = 0; i < N; i++) {
		CHECK_EQ_INT(tpair_open(&p[i], s, c, "www.example.com"), 0);
		CHECK_EQ_INT(tpair_handshake(&p[i]), 0);
		CHECK_EQ_INT(tpair_xfer(&p[i], true, "data", 4, got), 4);
	}
	/* Free the client ends to count the server ends alone. */
	after_s = tls_mem_in_use();
	for (int i = 0; i < N; i++) {
		tls_conn_free(p[i].c);
		p[i].c = NULL;
	}
	per = (tls_mem_in_use() - base) / N;
	fprintf(stderr, "  tls: %zu bytes per idle server connection (both ends %zu)\n", per,
		(after_s - base) / N);
	CHECK(per < 36 * 1024); /* 16 KiB in + 8 KiB out buffers + state */
	for (int i = 0; i < N; i++)
		tpair_close(&p[i]);
	CHECK(tls_mem_in_use() <= after_s);
out:
	tls_server_unref(s);
	tls_client_unref(c);
}

/* Full handshakes (ECDHE X25519 + ECDSA P-256, TLS 1.3), CPU time of the
 * server side and of both; printed for the record, bounded loosely. */
TEST(tls_handshake_cost)
{
	enum { N = 10 };
	const struct tpki *k = tpki_get();
	struct tls_server *s =
		tsrv_new(NULL, TLS_CLIENT_AUTH_NONE, NULL, k->www_crt, k->www_key, NULL);
	struct tls_client *c = tcli_new(k->ca_crt, NULL);
	struct timespec t0, t1;
	double total_us;

	if (!s || !c) {
		CHECK(s && c);
		goto out;
	}
	/* No client-side cache: each is a full handshake. */
	mbedtls_ssl_conf_session_tickets(&c->conf, MBEDTLS_SSL_SESSION_TICKETS_DISABLED);
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t0);
	for (int i = 0; i < N; i++) {
		struct tpair p;

		CHECK_EQ_INT(tpair_open(&p, s, c, "www.example.com"), 0);
		CHECK_EQ_INT(tpair_handshake(&p), 0);
		CHECK(!tls_conn_resumed(p.s));
		tpair_close(&p);
	}
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t1);
	total_us =
		((double)(t1.tv_sec - t0.tv_sec) * 1e6 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e3) /
		N;
	fprintf(stderr, "  tls: %.0f us CPU per full TLS 1.3 handshake (client + server)\n",
		total_us);
	CHECK(total_us < 200000);
out:
	tls_server_unref(s);
	tls_client_unref(c);
}

struct shared_ctx {
	struct tls_server *s, *rsa_s;
	struct tls_client *c, *rsa_c;
	int ok;
};

static void *handshake_worker(void *arg)
{
	struct shared_ctx *x = arg;
	char got[16];

	for (int i = 0; i < 6; i++) {
		static const char *const names[] = {"www.example.com", "api.example.com",
						    "kube.test"};
		bool rsa = i % 3 == 2;
		struct tpair p;

		if (tpair_open(&p, rsa ? x->rsa_s : x->s, rsa ? x->rsa_c : x->c, names[i % 3]) != 0)
			continue;
		if (tpair_handshake(&p) == 0 &&
		    tpair_xfer(&p, true, "from the worker", 15, got) == 15 &&
		    memcmp(got, "from the worker", 15) == 0)
			__atomic_add_fetch(&x->ok, 1, __ATOMIC_RELAXED);
		tpair_close(&p);
	}
	return NULL;
}

/* Contexts are shared read-only by worker threads (the ticket key, the
 * RNG, RSA blinding and the client's session cache have their own locks):
 * ECDSA and RSA servers, client certificates, resumption, in parallel. */
TEST(tls_contexts_shared_across_threads)
{
	const struct tpki *k = tpki_get();
	struct shared_ctx x = {
		.s = tsrv_new(NULL, TLS_CLIENT_AUTH_REQUIRE, k->ca_crt, k->www_crt, k->www_key,
			      k->wild_crt, k->wild_key, NULL),
		.rsa_s = tsrv_new(NULL, TLS_CLIENT_AUTH_NONE, NULL, fx_rsa_srv_crt, fx_rsa_srv_key,
				  NULL),
		.rsa_c = tcli_new(fx_rsa_ca_crt, NULL),
	};
	struct tls_client_opts o = {
		.ca_pem = k->ca_crt, .client_cert_pem = k->cli_crt, .client_key_pem = k->cli_key};
	struct diag d = {0};
	pthread_t t[3];

	x.c = tls_client_new(&o, &d);
	if (!x.s || !x.c || !x.rsa_s || !x.rsa_c) {
		CHECK(x.s && x.c && x.rsa_s && x.rsa_c);
		goto out;
	}
	for (int i = 0; i < 3; i++)
		CHECK_EQ_INT(pthread_create(&t[i], NULL, handshake_worker, &x), 0);
	for (int i = 0; i < 3; i++)
		pthread_join(t[i], NULL);
	CHECK_EQ_INT(x.ok, 18);
out:
	diag_fini(&d);
	tls_server_unref(x.s);
	tls_server_unref(x.rsa_s);
	tls_client_unref(x.c);
	tls_client_unref(x.rsa_c);
}

/* A connection keeps its context alive after the owner dropped it (the
 * proxy swaps contexts while connections are in flight). */
TEST(tls_conn_holds_context_reference)
{
	const struct tpki *k = tpki_get();
	struct tls_server *s =
		tsrv_new(NULL, TLS_CLIENT_AUTH_NONE, NULL, k->www_crt, k->www_key, NULL);
	struct tls_client *c = tcli_new(k->ca_crt, NULL);
	struct tpair p;
	char got[4];

	if (!s || !c) {
		CHECK(s && c);
		tls_server_unref(s);
		tls_client_unref(c);
		return;
	}
	CHECK_EQ_INT(tpair_open(&p, s, c, "www.example.com"), 0);
	tls_server_unref(s);
	tls_client_unref(c);
	CHECK_EQ_INT(tpair_handshake(&p), 0);
	CHECK_EQ_INT(tpair_xfer(&p, false, "late", 4, got), 4);
	tpair_close(&p);
}

/* Resumed connections and client certificates: with "require" a resumed
 * session counts as verified (only verified sessions get tickets); with
 * the insecure fallback nothing unverified becomes verified by resuming. */
static void resume_auth_case(enum tls_client_auth mode, bool with_cert, bool tls12, bool want_first,
			     bool want_resumed)
{
	const struct tpki *k = tpki_get();
	struct tls_server *s = tsrv_new(NULL, mode, k->ca_crt, k->www_crt, k->www_key, NULL);
	struct tls_client_opts o = {.ca_pem = k->ca_crt,
				    .client_cert_pem = with_cert ? k->cli_crt : NULL,
				    .client_key_pem = with_cert ? k->cli_key : NULL};
	struct diag d = {0};
	struct tls_client *c = tls_client_new(&o, &d);
	char got[8];

	if (!s || !c) {
		CHECK(s && c);
		goto out;
	}
	if (tls12)
		mbedtls_ssl_conf_max_tls_version(&c->conf, MBEDTLS_SSL_VERSION_TLS1_2);
	for (int round = 0; round < 2; round++) {
		struct tpair p;

		CHECK_EQ_INT(tpair_open(&p, s, c, "www.example.com"), 0);
		CHECK_EQ_INT(tpair_handshake(&p), 0);
		CHECK_EQ_INT(tpair_xfer(&p, true, "ticket", 6, got), 6);
		CHECK_EQ_INT(tls_conn_resumed(p.s), round == 1);
		CHECK_EQ_INT(tls_conn_peer_verified(p.s), round == 0 ? want_first : want_resumed);
		tpair_close(&p);
	}
out:
	diag_fini(&d);
	tls_server_unref(s);
	tls_client_unref(c);
}

TEST(tls_resumption_and_client_certificates)
{
	for (int v = 0; v < 2; v++) {
		resume_auth_case(TLS_CLIENT_AUTH_REQUIRE, true, v, true, true);
		resume_auth_case(TLS_CLIENT_AUTH_OPTIONAL, false, v, false, false);
	}
	/* TLS 1.2 tickets carry the certificate; TLS 1.3 ones do not, so an
	 * optional certificate that verified is reported unverified when the
	 * session resumes (never the reverse). */
	resume_auth_case(TLS_CLIENT_AUTH_OPTIONAL, true, true, true, true);
	resume_auth_case(TLS_CLIENT_AUTH_OPTIONAL, true, false, true, false);
}

/* Only TLS 1.2 and 1.3, only AEAD suites (issue: "no weak cipher"). */
TEST(tls_server_refuses_old_versions_and_weak_suites)
{
	static const int cbc_only[] = {MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256, 0};
	/* A TLS 1.0 ClientHello: TLS_RSA_WITH_AES_128_CBC_SHA, no extensions. */
	static const unsigned char hello10[] = {
		0x16, 0x03, 0x01, 0x00, 0x2d, 0x01, 0x00, 0x00, 0x29, 0x03, 0x01, 1,  2,
		3,    4,    5,    6,    7,    8,    9,    10,   11,   12,   13,   14, 15,
		16,   17,   18,   19,   20,   21,   22,   23,   24,   25,   26,   27, 28,
		29,   30,   31,   32,   0x00, 0x00, 0x02, 0x00, 0x2f, 0x01, 0x00,
	};
	const struct tpki *k = tpki_get();
	struct tls_server *s =
		tsrv_new(NULL, TLS_CLIENT_AUTH_NONE, NULL, k->www_crt, k->www_key, NULL);
	struct tls_client *c = tcli_new(k->ca_crt, NULL);
	struct tpair p;
	int r = -WG_EAGAIN_READ;

	if (!s || !c) {
		CHECK(s && c);
		goto out;
	}
	CHECK_EQ_INT(tpair_open(&p, s, c, "www.example.com"), 0);
	CHECK_EQ_INT(write(p.fd[1], hello10, sizeof(hello10)), (ssize_t)sizeof(hello10));
	for (int i = 0; i < 50 && r == -WG_EAGAIN_READ; i++)
		r = tls_handshake(p.s);
	CHECK_EQ_INT(r, -WG_ETLS);
	CHECK_EQ_STR(tls_conn_error(p.s), "handshake: unsupported protocol version");
	tpair_close(&p);

	mbedtls_ssl_conf_max_tls_version(&c->conf, MBEDTLS_SSL_VERSION_TLS1_2);
	mbedtls_ssl_conf_ciphersuites(&c->conf, cbc_only);
	CHECK_EQ_INT(tpair_open(&p, s, c, "www.example.com"), 0);
	CHECK(tpair_handshake(&p) != 0);
	CHECK_EQ_STR(tls_conn_error(p.s),
		     "handshake: no common cipher suite, group or signature algorithm");
	CHECK_EQ_STR(tls_conn_error(p.c), "handshake: peer sent alert handshake_failure");
	tpair_close(&p);
out:
	tls_server_unref(s);
	tls_client_unref(c);
}

/* What each side reads when the client refuses the server's certificate
 * over TLS 1.2 (the alert is in the clear there). */
TEST(tls_refusal_names_the_alert)
{
	const struct tpki *k = tpki_get();
	struct tls_server *s =
		tsrv_new(NULL, TLS_CLIENT_AUTH_NONE, NULL, k->rogue_crt, k->rogue_key, NULL);
	struct tls_client *c = tcli_new(k->ca_crt, NULL);
	struct tpair p;

	if (!s || !c) {
		CHECK(s && c);
		goto out;
	}
	mbedtls_ssl_conf_max_tls_version(&c->conf, MBEDTLS_SSL_VERSION_TLS1_2);
	CHECK_EQ_INT(tpair_open(&p, s, c, "www.example.com"), 0);
	CHECK(tpair_handshake(&p) != 0);
	CHECK_EQ_STR(tls_conn_error(p.c), "certificate verify failed: unknown authority");
	CHECK_EQ_STR(tls_conn_error(p.s), "handshake: peer sent alert unknown_ca");
	tpair_close(&p);
out:
	tls_server_unref(s);
	tls_client_unref(c);
}

/* A real ClientHello with a few bytes changed, many times over: the server
 * ends every attempt with a clean error (or waits for more), never hangs
 * or crashes, and frees everything. Deterministic (fixed seed). */
TEST(tls_server_survives_mutated_client_hellos)
{
	const struct tpki *k = tpki_get();
	struct tls_server *s = tsrv_new(alpn_h2_h1, TLS_CLIENT_AUTH_OPTIONAL, k->ca_crt, k->www_crt,
					k->www_key, NULL);
	struct tls_client *c = tcli_new(k->ca_crt, alpn_h2_h1);
	size_t before = 0;
	unsigned char hello[2048], buf[2048];
	uint32_t seed = 12345;
	ssize_t n = 0;
	struct tpair p;
	int errors = 0;

	if (!s || !c) {
		CHECK(s && c);
		goto out;
	}
	CHECK_EQ_INT(tpair_open(&p, s, c, "www.example.com"), 0);
	CHECK_EQ_INT(tls_handshake(p.c), -WG_EAGAIN_READ);
	n = read(p.fd[0], hello, sizeof(hello));
	tpair_close(&p);
	CHECK(n > 100);
	before = tls_mem_in_use();
	for (int i = 0; n > 0 && i < 100; i++) {
		struct tls_conn *sc;
		int fd[2], r = -WG_EAGAIN_READ;

		memcpy(buf, hello, (size_t)n);
		for (int m = 0; m < 1 + i % 4; m++) {
			seed = seed * 1103515245u + 12345u;
			buf[(seed >> 8) % (uint32_t)n] ^= (unsigned char)(1u << ((seed >> 4) & 7));
		}
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fd) == -1)
			break;
		CHECK_EQ_INT(write(fd[1], buf, (size_t)n), n);
		shutdown(fd[1], SHUT_WR);
		sc = tls_conn_server(s, fd[0]);
		for (int t = 0; t < 20 && (r == -WG_EAGAIN_READ || r == -WG_EAGAIN_WRITE); t++)
			r = tls_handshake(sc);
		CHECK(r == -WG_ETLS);
		errors += r == -WG_ETLS;
		tls_conn_free(sc);
		close(fd[0]);
		close(fd[1]);
	}
	CHECK_EQ_INT(errors, 100);
	/* Every failed connection gave back all it took. */
	CHECK_EQ_INT(tls_mem_in_use(), before);
out:
	tls_server_unref(s);
	tls_client_unref(c);
}

/* Connections of every kind (full, resumed, refused, client-certified)
 * give back all the memory they took; contexts give back theirs. */
TEST(tls_connections_leave_no_memory_behind)
{
	const struct tpki *k = tpki_get();
	struct tls_server *s = tsrv_new(alpn_h2_h1, TLS_CLIENT_AUTH_OPTIONAL, k->ca_crt, k->www_crt,
					k->www_key, NULL);
	struct tls_server *rogue =
		tsrv_new(NULL, TLS_CLIENT_AUTH_NONE, NULL, k->rogue_crt, k->rogue_key, NULL);
	struct tls_client_opts o = {.ca_pem = k->ca_crt,
				    .client_cert_pem = k->cli_crt,
				    .client_key_pem = k->cli_key,
				    .alpn = alpn_h2_h1};
	struct diag d = {0};
	struct tls_client *c = tls_client_new(&o, &d);
	size_t before = 0, base;
	char got[8];

	if (!s || !rogue || !c) {
		CHECK(s && rogue && c);
		goto out;
	}
	for (int i = 0; i < 12; i++) {
		struct tpair p;

		if (i == 2)
			before = tls_mem_in_use(); /* after one-time growth (PSA key store) */
		CHECK_EQ_INT(tpair_open(&p, i % 3 == 2 ? rogue : s, c, "www.example.com"), 0);
		if (i % 3 == 2) {
			CHECK(tpair_handshake(&p) != 0);
		} else {
			CHECK_EQ_INT(tpair_handshake(&p), 0);
			CHECK_EQ_INT(tpair_xfer(&p, true, "ticket", 6, got), 6);
		}
		tpair_close(&p);
	}
	CHECK_EQ_INT(tls_mem_in_use(), before);
out:
	base = tls_mem_in_use();
	tls_server_unref(s);
	tls_server_unref(rogue);
	tls_client_unref(c);
	diag_fini(&d);
	CHECK(tls_mem_in_use() < base);
}

/* Writing to a peer that has gone away fails the connection with a
 * reason; it does not raise SIGPIPE (that would kill the process). */
TEST(tls_write_to_closed_peer_fails_without_sigpipe)
{
	const struct tpki *k = tpki_get();
	struct tls_server *s =
		tsrv_new(NULL, TLS_CLIENT_AUTH_NONE, NULL, k->www_crt, k->www_key, NULL);
	struct tls_client *c = tcli_new(k->ca_crt, NULL);
	static char big[64 * 1024];
	struct tpair p;
	ssize_t r = 0;

	if (!s || !c) {
		CHECK(s && c);
		goto out;
	}
	CHECK_EQ_INT(tpair_open(&p, s, c, "www.example.com"), 0);
	CHECK_EQ_INT(tpair_handshake(&p), 0);
	close(p.fd[1]);
	p.fd[1] = -1;
	for (int i = 0; i < 100 && r >= 0; i++)
		r = tls_write(p.s, big, sizeof(big));
	CHECK_EQ_INT(r, -WG_ETLS);
	CHECK(tls_conn_error(p.s) != NULL && strstr(tls_conn_error(p.s), "write: ") != NULL);
	tpair_close(&p);
out:
	tls_server_unref(s);
	tls_client_unref(c);
}

/* The seed scenario's certificate: a self-signed wildcard, served by SNI
 * and trusted as is by a client that pins it (curl --cacert). */
TEST(tls_selfsigned_wildcard_serves_and_pins)
{
	const char *sans[] = {"*.example.com", "example.com"};
	char *crt = NULL, *key = NULL;
	struct tls_server *s = NULL;
	struct tls_client *c = NULL;
	struct tpair p;

	CHECK_EQ_INT(tls_gen_selfsigned("*.example.com", sans, 2, 30, &crt, &key), 0);
	if (!crt)
		return;
	s = tsrv_new(alpn_h2_h1, TLS_CLIENT_AUTH_NONE, NULL, crt, key, NULL);
	c = tcli_new(crt, alpn_h1);
	if (!s || !c) {
		CHECK(s && c);
		goto out;
	}
	CHECK_EQ_INT(tpair_open(&p, s, c, "foo.example.com"), 0);
	CHECK_EQ_INT(tpair_handshake(&p), 0);
	CHECK(tls_conn_peer_verified(p.c));
	CHECK_EQ_STR(tls_conn_alpn(p.s), "http/1.1");
	tpair_close(&p);
	CHECK_EQ_INT(tpair_open(&p, s, c, "example.com"), 0);
	CHECK_EQ_INT(tpair_handshake(&p), 0);
	tpair_close(&p);
	CHECK_EQ_INT(tpair_open(&p, s, c, "foo.example.org"), 0);
	CHECK(tpair_handshake(&p) != 0);
	CHECK_EQ_STR(tls_conn_error(p.c), "certificate verify failed: name mismatch");
	tpair_close(&p);
out:
	tls_server_unref(s);
	tls_client_unref(c);
	free(crt);
	tls_free_secret(key);
}

/* tls_writev: small buffers leave as one record (one send), large ones
 * partially, and the bytes arrive in order. */
TEST(tls_writev_coalesces_into_one_record)
{
	const struct tpki *k = tpki_get();
	struct tls_server *s =
		tsrv_new(NULL, TLS_CLIENT_AUTH_NONE, NULL, k->www_crt, k->www_key, NULL);
	struct tls_client *c = tcli_new(k->ca_crt, NULL);
	static char big[20000], got[20020];
	struct iovec v[4];
	unsigned char raw[256];
	struct tpair p;
	ssize_t r;
	size_t sent = 0, recvd = 0;

	if (!s || !c) {
		CHECK(s && c);
		goto out;
	}
	CHECK_EQ_INT(tpair_open(&p, s, c, "www.example.com"), 0);
	CHECK_EQ_INT(tpair_handshake(&p), 0);
	/* The client reads the server's session ticket first. */
	CHECK_EQ_INT(tpair_xfer(&p, true, "t", 1, got), 1);
	v[0] = (struct iovec){.iov_base = "HTTP/1.1 200 OK\r\n", .iov_len = 17};
	v[1] = (struct iovec){.iov_base = "", .iov_len = 0};
	v[2] = (struct iovec){.iov_base = "\r\n", .iov_len = 2};
	v[3] = (struct iovec){.iov_base = "body", .iov_len = 4};
	CHECK_EQ_INT(tls_writev(p.s, v, 4), 23);
	/* Exactly one TLS 1.3 record (23 bytes + type + padding + tag). */
	r = read(p.fd[1], raw, sizeof(raw));
	CHECK(r > 5 + 23 + 16 && r < 5 + 64);
	CHECK_EQ_INT(raw[0], 0x17);
	CHECK_EQ_INT(5 + (raw[3] << 8 | raw[4]), r);
	CHECK_EQ_INT(tls_writev(p.s, v, 0), 0);
	CHECK_EQ_INT(tls_writev(p.s, v + 1, 1), 0);
	tpair_close(&p);

	/* Large and small mixed: everything arrives, in order. */
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (char)(i % 251);
	CHECK_EQ_INT(tpair_open(&p, s, c, "www.example.com"), 0);
	CHECK_EQ_INT(tpair_handshake(&p), 0);
	while (recvd < sizeof(big) + 10) {
		size_t off = sent;
		int n = 0;

		if (off < 6) {
			v[n++] = (struct iovec){.iov_base = (char *)"prefix" + off,
						.iov_len = 6 - off};
			off = 0;
		} else {
			off -= 6;
		}
		if (off < sizeof(big)) {
			v[n++] =
				(struct iovec){.iov_base = big + off, .iov_len = sizeof(big) - off};
			off = 0;
		} else {
			off -= sizeof(big);
		}
		if (off < 4)
			v[n++] = (struct iovec){.iov_base = (char *)"tail" + off,
						.iov_len = 4 - off};
		if (sent < sizeof(big) + 10) {
			r = tls_writev(p.s, v, n);
			CHECK(r > 0 || r == -WG_EAGAIN_WRITE);
			if (r > 0)
				sent += (size_t)r;
		}
		r = tls_read(p.c, got + recvd, sizeof(got) - recvd);
		if (r > 0)
			recvd += (size_t)r;
		else if (r != -WG_EAGAIN_READ)
			break;
	}
	CHECK_EQ_INT(recvd, sizeof(big) + 10);
	CHECK(memcmp(got, "prefix", 6) == 0);
	CHECK(memcmp(got + 6, big, sizeof(big)) == 0);
	CHECK(memcmp(got + 6 + sizeof(big), "tail", 4) == 0);
	tpair_close(&p);
out:
	tls_server_unref(s);
	tls_client_unref(c);
}

/* A client whose first key share the server does not take gets a
 * HelloRetryRequest and a second ClientHello (SNI seen twice, once kept). */
TEST(tls_hello_retry_request)
{
	static const uint16_t srv_groups[] = {MBEDTLS_SSL_IANA_TLS_GROUP_X25519,
					      MBEDTLS_SSL_IANA_TLS_GROUP_NONE};
	static const uint16_t cli_groups[] = {MBEDTLS_SSL_IANA_TLS_GROUP_SECP384R1,
					      MBEDTLS_SSL_IANA_TLS_GROUP_X25519,
					      MBEDTLS_SSL_IANA_TLS_GROUP_NONE};
	const struct tpki *k = tpki_get();
	struct tls_server *s = sni_server();
	struct tls_client *c = tcli_new(k->ca_crt, NULL);
	struct tpair p;
	size_t before;
	char cn[128];

	if (!s || !c) {
		CHECK(s && c);
		goto out;
	}
	mbedtls_ssl_conf_groups(&s->conf, srv_groups);
	mbedtls_ssl_conf_groups(&c->conf, cli_groups);
	mbedtls_ssl_conf_session_tickets(&c->conf, MBEDTLS_SSL_SESSION_TICKETS_DISABLED);
	before = tls_mem_in_use();
	for (int i = 0; i < 2; i++) {
		CHECK_EQ_INT(tpair_open(&p, s, c, "api.example.com"), 0);
		CHECK_EQ_INT(tpair_handshake(&p), 0);
		CHECK_EQ_STR(tls_conn_sni(p.s), "api.example.com");
		CHECK_EQ_STR(peer_cn(p.c, cn, sizeof(cn)), "CN=*.example.com");
		CHECK(tls_conn_peer_verified(p.c));
		tpair_close(&p);
		if (i == 0)
			before = tls_mem_in_use();
	}
	CHECK_EQ_INT(tls_mem_in_use(), before);
out:
	tls_server_unref(s);
	tls_client_unref(c);
}

TEST(tls_conn_client_refuses_overlong_name)
{
	const struct tpki *k = tpki_get();
	struct tls_client *c = tcli_new(k->ca_crt, NULL);
	char name[300];

	memset(name, 'a', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';
	CHECK(c != NULL);
	CHECK(tls_conn_client(c, -1, name) == NULL);
	name[253] = '\0';
	{
		struct tls_conn *t = tls_conn_client(c, -1, name);

		CHECK(t != NULL);
		CHECK_EQ_STR(tls_conn_sni(t), name);
		tls_conn_free(t);
	}
	tls_client_unref(c);
}

/* Until its whole ClientHello is there, a server connection holds no
 * mbedTLS buffers, and a hello sent a byte at a time is taken off the
 * socket as it comes (a level-triggered loop must not spin on it). */
TEST(tls_server_waits_for_the_hello_cheaply)
{
	const struct tpki *k = tpki_get();
	struct tls_server *s =
		tsrv_new(alpn_h2_h1, TLS_CLIENT_AUTH_NONE, NULL, k->www_crt, k->www_key, NULL);
	struct tls_client *c = tcli_new(k->ca_crt, alpn_h2_h1);
	unsigned char hello[2048], peek;
	struct tpair p;
	size_t before;
	ssize_t n;

	if (!s || !c) {
		CHECK(s && c);
		goto out;
	}
	CHECK_EQ_INT(tpair_open(&p, s, c, "www.example.com"), 0);
	before = tls_mem_in_use();
	CHECK_EQ_INT(tls_handshake(p.s), -WG_EAGAIN_READ);
	CHECK_EQ_INT(tls_mem_in_use(), before); /* nothing yet */
	/* The client's hello, captured, then fed one byte at a time. */
	CHECK_EQ_INT(tls_handshake(p.c), -WG_EAGAIN_READ);
	n = read(p.fd[0], hello, sizeof(hello));
	CHECK(n > 100);
	for (ssize_t i = 0; i + 1 < n; i++) {
		CHECK_EQ_INT(write(p.fd[1], hello + i, 1), 1);
		CHECK_EQ_INT(tls_handshake(p.s), -WG_EAGAIN_READ);
		/* Taken off the socket: nothing left to wake a loop up. */
		CHECK_EQ_INT(recv(p.fd[0], &peek, 1, MSG_PEEK | MSG_DONTWAIT), -1);
	}
	CHECK(tls_mem_in_use() - before < 4096);
	CHECK_EQ_INT(write(p.fd[1], hello + n - 1, 1), 1);
	p.s_ret = p.c_ret = -WG_EAGAIN_READ;
	CHECK_EQ_INT(tpair_handshake(&p), 0);
	CHECK_EQ_STR(tls_conn_sni(p.s), "www.example.com");
	CHECK_EQ_STR(tls_conn_alpn(p.s), "h2");
	tpair_close(&p);
	/* A client that connects and leaves: a clean failure, nothing kept. */
	CHECK_EQ_INT(tpair_open(&p, s, c, "www.example.com"), 0);
	before = tls_mem_in_use();
	shutdown(p.fd[1], SHUT_WR);
	CHECK_EQ_INT(tls_handshake(p.s), -WG_ETLS);
	CHECK_EQ_STR(tls_conn_error(p.s), "handshake: connection closed by peer");
	tls_conn_free(p.s);
	p.s = NULL;
	CHECK(tls_mem_in_use() < before);
	tpair_close(&p);
out:
	tls_server_unref(s);
	tls_client_unref(c);
}

/* A ClientHello split over two records (allowed, and done by some clients
 * to dodge middleboxes) is recognised and the handshake completes. */
TEST(tls_server_accepts_hello_split_over_records)
{
	const struct tpki *k = tpki_get();
	struct tls_server *s = tsrv_new(NULL, TLS_CLIENT_AUTH_NONE, NULL, k->other_crt,
					k->other_key, k->www_crt, k->www_key, NULL);
	struct tls_client *c = tcli_new(k->ca_crt, NULL);
	unsigned char hello[2048], split[2100];
	size_t body, first = 40;
	struct tpair p;
	ssize_t n;

	if (!s || !c) {
		CHECK(s && c);
		goto out;
	}
	mbedtls_ssl_conf_session_tickets(&c->conf, MBEDTLS_SSL_SESSION_TICKETS_DISABLED);
	for (int mode = 0; mode < 2; mode++) {
		CHECK_EQ_INT(tpair_open(&p, s, c, "www.example.com"), 0);
		CHECK_EQ_INT(tls_handshake(p.c), -WG_EAGAIN_READ);
		n = read(p.fd[0], hello, sizeof(hello));
		CHECK(n > 100);
		if (n <= 100) {
			tpair_close(&p);
			break;
		}
		body = (size_t)n - 5;
		memcpy(split, hello, 5);
		split[3] = 0;
		split[4] = (unsigned char)first;
		memcpy(split + 5, hello + 5, first);
		memcpy(split + 5 + first, hello, 5);
		split[5 + first + 3] = (unsigned char)((body - first) >> 8);
		split[5 + first + 4] = (unsigned char)(body - first);
		memcpy(split + 10 + first, hello + 5 + first, body - first);
		if (mode == 0) {
			/* Both records at once. */
			CHECK_EQ_INT(write(p.fd[1], split, (size_t)n + 5), n + 5);
		} else {
			/* The first record alone first: the server waits. */
			CHECK_EQ_INT(write(p.fd[1], split, 5 + first), (ssize_t)(5 + first));
			CHECK_EQ_INT(tls_handshake(p.s), -WG_EAGAIN_READ);
			CHECK_EQ_INT(write(p.fd[1], split + 5 + first, (size_t)n - first),
				     n - (ssize_t)first);
		}
		p.s_ret = p.c_ret = -WG_EAGAIN_READ;
		CHECK_EQ_INT(tpair_handshake(&p), 0);
		CHECK_EQ_STR(tls_conn_sni(p.s), "www.example.com");
		tpair_close(&p);
	}
out:
	tls_server_unref(s);
	tls_client_unref(c);
}

/* Freeing a connection that holds part of a ClientHello gives it back. */
TEST(tls_free_while_waiting_for_the_hello)
{
	const struct tpki *k = tpki_get();
	struct tls_server *s =
		tsrv_new(NULL, TLS_CLIENT_AUTH_NONE, NULL, k->www_crt, k->www_key, NULL);
	struct tls_client *c = tcli_new(k->ca_crt, NULL);
	unsigned char hello[2048];
	struct tpair p;
	size_t before;
	ssize_t n;

	if (!s || !c) {
		CHECK(s && c);
		goto out;
	}
	CHECK_EQ_INT(tpair_open(&p, s, c, "www.example.com"), 0);
	CHECK_EQ_INT(tls_handshake(p.c), -WG_EAGAIN_READ);
	n = read(p.fd[0], hello, sizeof(hello));
	CHECK(n > 100);
	before = tls_mem_in_use();
	CHECK_EQ_INT(write(p.fd[1], hello, 60), 60);
	CHECK_EQ_INT(tls_handshake(p.s), -WG_EAGAIN_READ);
	CHECK(tls_mem_in_use() > before);  /* the 60 bytes are held */
	CHECK_EQ_INT(tls_pending(p.s), 0); /* nothing to do until more arrives */
	tls_conn_free(p.s);
	p.s = NULL;
	CHECK(tls_mem_in_use() < before);
	tpair_close(&p);
out:
	tls_server_unref(s);
	tls_client_unref(c);
}

/* The client keeps one session per server name, the most recently used
 * TLS_CLIENT_SESSIONS of them. */
TEST(tls_client_session_cache_is_per_name_and_bounded)
{
	const struct tpki *k = tpki_get();
	struct tls_server *s = sni_server();
	struct tls_client *c = tcli_new(k->ca_crt, NULL);
	char name[64], got[4];
	int n = TLS_CLIENT_SESSIONS + 1;

	if (!s || !c) {
		CHECK(s && c);
		goto out;
	}
	for (int i = 0; i < n; i++) {
		struct tpair p;

		snprintf(name, sizeof(name), "n%d.example.com", i);
		CHECK_EQ_INT(tpair_open(&p, s, c, name), 0);
		CHECK_EQ_INT(tpair_handshake(&p), 0);
		CHECK_EQ_INT(tpair_xfer(&p, true, "tkt", 3, got), 3);
		tpair_close(&p);
	}
	/* n0 was pushed out by the last one; n1 and the last are still kept. */
	for (int i = 0; i < 3; i++) {
		static const int which[] = {1, TLS_CLIENT_SESSIONS, 0};
		struct tpair p;

		snprintf(name, sizeof(name), "n%d.example.com", which[i]);
		CHECK_EQ_INT(tpair_open(&p, s, c, name), 0);
		CHECK_EQ_INT(tpair_handshake(&p), 0);
		CHECK_EQ_INT(tls_conn_resumed(p.c), which[i] != 0);
		tpair_close(&p);
	}
out:
	tls_server_unref(s);
	tls_client_unref(c);
}
