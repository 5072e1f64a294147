/* SPDX-License-Identifier: MIT */
/*
 * gen.c: key and certificate generation: the UI's self-signed certificate
 * on first start, the seed scenario's certificates, and (through
 * tls_gen_cert) the CAs and leaves the tests sign. ECDSA P-256 by default,
 * RSA 2048 on request; SHA-256 signatures; SANs may be DNS names, IP
 * literals or URIs. Any thread may call it; key generation draws from the
 * shared DRBG. It writes no files: callers store the PEM (0600).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <mbedtls/ecp.h>
#include <mbedtls/oid.h>
#include <mbedtls/pk.h>
#include <mbedtls/rsa.h>
#include <mbedtls/x509.h>
#include <mbedtls/x509_crt.h>

#include "core/err.h"
#include "core/log.h"
#include "tls/internal.h"
#include "tls/tls.h"

#define GEN_PEM_MAX 8192
#define GEN_MAX_SANS 64

/* "CN=<cn>" with the characters mbedTLS's DN parser treats as syntax
 * escaped. -ENAMETOOLONG if it does not fit. */
static int dn_from_cn(const char *cn, char *out, size_t size)
{
	size_t o = 0;

	if (size < 4)
		return -ENAMETOOLONG;
	memcpy(out, "CN=", 3);
	o = 3;
	for (const char *p = cn; *p; p++) {
		if (strchr(",=+<>#;\"\\", *p)) {
			if (o + 1 >= size)
				return -ENAMETOOLONG;
			out[o++] = '\\';
		}
		if (o + 1 >= size)
			return -ENAMETOOLONG;
		out[o++] = *p;
	}
	out[o] = '\0';
	return 0;
}

static void fmt_time(int64_t t, char out[32])
{
	time_t tt = (time_t)t;
	struct tm tm;

	gmtime_r(&tt, &tm);
	snprintf(out, 32, "%04d%02d%02d%02d%02d%02d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
		 tm.tm_hour, tm.tm_min, tm.tm_sec);
}

static int gen_key(mbedtls_pk_context *key, enum tls_key_type type)
{
	int ret;

	if (type == TLS_KEY_RSA2048) {
		ret = mbedtls_pk_setup(key, mbedtls_pk_info_from_type(MBEDTLS_PK_RSA));
		if (ret == 0)
			ret = mbedtls_rsa_gen_key(mbedtls_pk_rsa(*key), tls_rng, NULL, 2048, 65537);
		return ret;
	}
	ret = mbedtls_pk_setup(key, mbedtls_pk_info_from_type(MBEDTLS_PK_ECKEY));
	if (ret == 0)
		ret = mbedtls_ecp_gen_key(MBEDTLS_ECP_DP_SECP256R1, mbedtls_pk_ec(*key), tls_rng,
					  NULL);
	return ret;
}

/* mbedTLS error codes overlap the errno range: translate each one where it
 * is returned (MB below), never later. */
static int map_err(int ret)
{
	char e[96];

	log_debug("event=tls_gen_failed err=%s", log_q(tls_strerror(ret, e, sizeof(e))));
	if (ret == MBEDTLS_ERR_PK_ALLOC_FAILED || ret == MBEDTLS_ERR_X509_ALLOC_FAILED ||
	    ret == MBEDTLS_ERR_ASN1_ALLOC_FAILED)
		return -ENOMEM;
	return -WG_ETLS;
}

#define MB(call)                                                                                   \
	do {                                                                                       \
		if ((ret = (call)) != 0) {                                                         \
			ret = map_err(ret);                                                        \
			goto out;                                                                  \
		}                                                                                  \
	} while (0)

int tls_gen_cert(const struct tls_gen_req *r, char **cert_pem, char **key_pem)
{
	mbedtls_x509_san_list sans[GEN_MAX_SANS];
	uint8_t ips[GEN_MAX_SANS][16];
	mbedtls_x509write_cert crt;
	mbedtls_pk_context key, issuer_key;
	mbedtls_x509_crt issuer;
	mbedtls_asn1_sequence eku[2];
	char subject[512], issuer_dn[512], nb[32], na[32];
	unsigned char serial[16];
	unsigned char *cbuf = NULL, *kbuf = NULL;
	unsigned int usage;
	int ret;

	*cert_pem = NULL;
	*key_pem = NULL;
	if (!r->cn || r->n_sans > GEN_MAX_SANS || r->not_after <= r->not_before ||
	    (!r->issuer_cert_pem) != (!r->issuer_key_pem))
		return -EINVAL;
	if ((ret = tls_lib_init()) != 0)
		return ret;
	mbedtls_x509write_crt_init(&crt);
	mbedtls_pk_init(&key);
	mbedtls_pk_init(&issuer_key);
	mbedtls_x509_crt_init(&issuer);

	if ((ret = dn_from_cn(r->cn, subject, sizeof(subject))) != 0)
		goto out;
	MB(gen_key(&key, r->key_type));
	if (r->issuer_cert_pem) {
		MB(mbedtls_x509_crt_parse(&issuer, (const unsigned char *)r->issuer_cert_pem,
					  strlen(r->issuer_cert_pem) + 1));
		MB(mbedtls_pk_parse_key(&issuer_key, (const unsigned char *)r->issuer_key_pem,
					strlen(r->issuer_key_pem) + 1, NULL, 0, tls_rng, NULL));
		if (mbedtls_x509_dn_gets(issuer_dn, sizeof(issuer_dn), &issuer.subject) < 0) {
			ret = -ENAMETOOLONG;
			goto out;
		}
	} else {
		memcpy(issuer_dn, subject, strlen(subject) + 1);
	}

	mbedtls_x509write_crt_set_version(&crt, MBEDTLS_X509_CRT_VERSION_3);
	mbedtls_x509write_crt_set_md_alg(&crt, MBEDTLS_MD_SHA256);
	mbedtls_x509write_crt_set_subject_key(&crt, &key);
	mbedtls_x509write_crt_set_issuer_key(&crt, r->issuer_cert_pem ? &issuer_key : &key);
	MB(mbedtls_x509write_crt_set_subject_name(&crt, subject));
	MB(mbedtls_x509write_crt_set_issuer_name(&crt, issuer_dn));
	if ((ret = tls_random(serial, sizeof(serial))) != 0)
		goto out;
	serial[0] = (unsigned char)((serial[0] & 0x7f) | 0x40); /* positive, 16 bytes */
	MB(mbedtls_x509write_crt_set_serial_raw(&crt, serial, sizeof(serial)));
	fmt_time(r->not_before, nb);
	fmt_time(r->not_after, na);
	MB(mbedtls_x509write_crt_set_validity(&crt, nb, na));
	MB(mbedtls_x509write_crt_set_basic_constraints(&crt, r->is_ca, -1));
	MB(mbedtls_x509write_crt_set_subject_key_identifier(&crt));
	MB(mbedtls_x509write_crt_set_authority_key_identifier(&crt));
	if (r->is_ca) {
		usage = MBEDTLS_X509_KU_KEY_CERT_SIGN | MBEDTLS_X509_KU_CRL_SIGN |
			MBEDTLS_X509_KU_DIGITAL_SIGNATURE;
	} else {
		usage = MBEDTLS_X509_KU_DIGITAL_SIGNATURE;
		if (r->key_type == TLS_KEY_RSA2048)
			usage |= MBEDTLS_X509_KU_KEY_ENCIPHERMENT;
		memset(eku, 0, sizeof(eku));
		eku[0].buf.tag = MBEDTLS_ASN1_OID;
		eku[0].buf.p = (unsigned char *)MBEDTLS_OID_SERVER_AUTH;
		eku[0].buf.len = MBEDTLS_OID_SIZE(MBEDTLS_OID_SERVER_AUTH);
		eku[0].next = &eku[1];
		eku[1].buf.tag = MBEDTLS_ASN1_OID;
		eku[1].buf.p = (unsigned char *)MBEDTLS_OID_CLIENT_AUTH;
		eku[1].buf.len = MBEDTLS_OID_SIZE(MBEDTLS_OID_CLIENT_AUTH);
		MB(mbedtls_x509write_crt_set_ext_key_usage(&crt, eku));
	}
	MB(mbedtls_x509write_crt_set_key_usage(&crt, usage));
	if (r->n_sans) {
		memset(sans, 0, sizeof(sans));
		for (size_t i = 0; i < r->n_sans; i++) {
			const char *s = r->sans[i];
			size_t ip_len;

			if (!s || !*s) {
				ret = -EINVAL;
				goto out;
			}
			if ((ip_len = tls_parse_ip(s, ips[i])) != 0) {
				sans[i].node.type = MBEDTLS_X509_SAN_IP_ADDRESS;
				sans[i].node.san.unstructured_name.p = ips[i];
				sans[i].node.san.unstructured_name.len = ip_len;
			} else {
				sans[i].node.type =
					strstr(s, "://")
						? MBEDTLS_X509_SAN_UNIFORM_RESOURCE_IDENTIFIER
						: MBEDTLS_X509_SAN_DNS_NAME;
				sans[i].node.san.unstructured_name.p =
					(unsigned char *)(uintptr_t)s;
				sans[i].node.san.unstructured_name.len = strlen(s);
			}
			sans[i].next = i + 1 < r->n_sans ? &sans[i + 1] : NULL;
		}
		MB(mbedtls_x509write_crt_set_subject_alternative_name(&crt, sans));
	}

	cbuf = malloc(GEN_PEM_MAX);
	kbuf = malloc(GEN_PEM_MAX);
	if (!cbuf || !kbuf) {
		ret = -ENOMEM;
		goto out;
	}
	MB(mbedtls_x509write_crt_pem(&crt, cbuf, GEN_PEM_MAX, tls_rng, NULL));
	MB(mbedtls_pk_write_key_pem(&key, kbuf, GEN_PEM_MAX));
	*cert_pem = (char *)cbuf;
	*key_pem = (char *)kbuf;
	cbuf = kbuf = NULL;
out:
	free(cbuf);
	if (kbuf) {
		tls_zeroize(kbuf, GEN_PEM_MAX);
		free(kbuf);
	}
	mbedtls_x509write_crt_free(&crt);
	mbedtls_pk_free(&key);
	mbedtls_pk_free(&issuer_key);
	mbedtls_x509_crt_free(&issuer);
	return ret;
}

int tls_gen_selfsigned(const char *cn, const char *const *sans, size_t n_sans, int days,
		       char **cert_pem, char **key_pem)
{
	int64_t now = (int64_t)time(NULL);
	struct tls_gen_req r = {
		.cn = cn,
		.sans = sans,
		.n_sans = n_sans,
		/* An hour back: clients whose clocks lag still accept it. */
		.not_before = now - 3600,
		.not_after = now + (int64_t)days * 86400,
		.key_type = TLS_KEY_EC_P256,
	};

	if (!cert_pem || !key_pem)
		return -EINVAL;
	*cert_pem = *key_pem = NULL;
	if (!cn || days <= 0 || days > 36500)
		return -EINVAL;
	return tls_gen_cert(&r, cert_pem, key_pem);
}
