/* SPDX-License-Identifier: MIT */
/*
 * test_gen.c: tls/gen.c: generated certificates parse, carry the asked
 * names (DNS, IP, URI) and validity, chain to their issuer, use ECDSA P-256,
 * and the key matches; bad arguments are refused.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <mbedtls/oid.h>
#include <mbedtls/pk.h>
#include <mbedtls/x509_crt.h>

#include "check.h"
#include "core/err.h"
#include "tls/internal.h"
#include "tls/tls.h"
#include "tlsutil.h"

TEST(tls_gen_selfsigned_parses_with_sans)
{
	const char *sans[] = {"gw.example.com", "192.168.1.1", "fd00::1"};
	char *crt = NULL, *key = NULL;
	mbedtls_x509_crt c;
	mbedtls_pk_context k;
	uint8_t ip[16];
	size_t n;
	int64_t now = (int64_t)time(NULL), na;
	uint32_t flags = 0;

	CHECK_EQ_INT(tls_gen_selfsigned("waygate, UI", sans, 3, 365, &crt, &key), 0);
	if (!crt || !key)
		return;
	CHECK(strstr(crt, "-----BEGIN CERTIFICATE-----") != NULL);
	CHECK(strstr(key, "PRIVATE KEY-----") != NULL);
	mbedtls_x509_crt_init(&c);
	mbedtls_pk_init(&k);
	CHECK_EQ_INT(mbedtls_x509_crt_parse(&c, (const unsigned char *)crt, strlen(crt) + 1), 0);
	CHECK_EQ_INT(mbedtls_pk_parse_key(&k, (const unsigned char *)key, strlen(key) + 1, NULL, 0,
					  tls_rng, NULL),
		     0);
	CHECK_EQ_INT(mbedtls_pk_check_pair(&c.pk, &k, tls_rng, NULL), 0);
	CHECK_EQ_INT(mbedtls_pk_get_type(&c.pk), MBEDTLS_PK_ECKEY);
	CHECK_EQ_INT(mbedtls_pk_get_bitlen(&c.pk), 256);
	CHECK_EQ_INT(c.MBEDTLS_PRIVATE(sig_md), MBEDTLS_MD_SHA256);
	CHECK(tls_crt_has_dns(&c, "gw.example.com"));
	CHECK(!tls_crt_has_dns(&c, "other.example.com"));
	n = tls_parse_ip("192.168.1.1", ip);
	CHECK(tls_crt_has_ip(&c, ip, n));
	n = tls_parse_ip("fd00::1", ip);
	CHECK(tls_crt_has_ip(&c, ip, n));
	/* The CN with a comma survives escaping. */
	{
		char dn[256];

		CHECK(mbedtls_x509_dn_gets(dn, sizeof(dn), &c.subject) > 0);
		CHECK_EQ_STR(dn, "CN=waygate\\, UI");
	}
	na = tls_x509_time(&c.valid_to);
	CHECK(na > now + 364 * 86400 && na <= now + 366 * 86400);
	CHECK(tls_x509_time(&c.valid_from) <= now);
	/* Self-signed: it verifies against itself. */
	CHECK_EQ_INT(mbedtls_x509_crt_verify(&c, &c, NULL, NULL, &flags, NULL, NULL), 0);
	mbedtls_x509_crt_free(&c);
	mbedtls_pk_free(&k);
	free(crt);
	tls_free_secret(key);
}

TEST(tls_gen_selfsigned_rejects_bad_arguments)
{
	char *crt = (char *)1, *key = (char *)1;

	CHECK_EQ_INT(tls_gen_selfsigned(NULL, NULL, 0, 10, &crt, &key), -EINVAL);
	CHECK(crt == NULL && key == NULL);
	CHECK_EQ_INT(tls_gen_selfsigned("x", NULL, 0, 0, &crt, &key), -EINVAL);
	CHECK_EQ_INT(tls_gen_selfsigned("x", NULL, 0, -5, &crt, &key), -EINVAL);
	{
		const char *bad[] = {""};

		CHECK_EQ_INT(tls_gen_selfsigned("x", bad, 1, 10, &crt, &key), -EINVAL);
		CHECK(crt == NULL && key == NULL);
	}
}

TEST(tls_gen_cert_chains_to_issuer_with_uri_san)
{
	const struct tpki *k = tpki_get();
	mbedtls_x509_crt ca, leaf, ca2;
	uint32_t flags = 0;

	mbedtls_x509_crt_init(&ca);
	mbedtls_x509_crt_init(&ca2);
	mbedtls_x509_crt_init(&leaf);
	CHECK_EQ_INT(mbedtls_x509_crt_parse(&ca, (const unsigned char *)k->ca_crt,
					    strlen(k->ca_crt) + 1),
		     0);
	CHECK_EQ_INT(mbedtls_x509_crt_parse(&ca2, (const unsigned char *)k->ca2_crt,
					    strlen(k->ca2_crt) + 1),
		     0);
	CHECK_EQ_INT(mbedtls_x509_crt_parse(&leaf, (const unsigned char *)k->uri_crt,
					    strlen(k->uri_crt) + 1),
		     0);
	CHECK(ca.MBEDTLS_PRIVATE(ca_istrue));
	CHECK(!leaf.MBEDTLS_PRIVATE(ca_istrue));
	CHECK_EQ_INT(mbedtls_x509_crt_verify(&leaf, &ca, NULL, NULL, &flags, NULL, NULL), 0);
	CHECK_EQ_INT(flags, 0);
	CHECK(mbedtls_x509_crt_verify(&leaf, &ca2, NULL, NULL, &flags, NULL, NULL) != 0);
	CHECK(flags & MBEDTLS_X509_BADCERT_NOT_TRUSTED);
	CHECK(tls_crt_has_uri(&leaf, "spiffe://cluster.local/ns/default/sa/backend"));
	CHECK(!tls_crt_has_uri(&leaf, "spiffe://cluster.local/ns/default/sa/other"));
	CHECK(tls_crt_has_dns(&leaf, "backend.internal"));
	CHECK_EQ_INT(
		mbedtls_x509_crt_check_extended_key_usage(
			&leaf, MBEDTLS_OID_SERVER_AUTH, MBEDTLS_OID_SIZE(MBEDTLS_OID_SERVER_AUTH)),
		0);
	mbedtls_x509_crt_free(&ca);
	mbedtls_x509_crt_free(&ca2);
	mbedtls_x509_crt_free(&leaf);
}
