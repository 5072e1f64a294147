/* SPDX-License-Identifier: MIT */
/*
 * cert.c: loading certificates and keys from PEM (with diagnostics that
 * name the Secret and the field at fault), the process-wide system trust
 * store, and host name / IP / URI matching against subjectAltNames. Used by
 * server.c (SNI selection) and client.c (peer verification). It does not
 * build chains or check signatures: mbedTLS's verifier does that. Runs on
 * whichever thread builds a context; the matching helpers are pure and run
 * on workers during handshakes.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <mbedtls/oid.h>
#include <mbedtls/pem.h>
#include <mbedtls/pk.h>
#include <mbedtls/x509.h>
#include <mbedtls/x509_crt.h>

#include "core/err.h"
#include "core/log.h"
#include "tls/internal.h"

int64_t tls_x509_time(const mbedtls_x509_time *t)
{
	struct tm tm = {
		.tm_year = t->year - 1900,
		.tm_mon = t->mon - 1,
		.tm_mday = t->day,
		.tm_hour = t->hour,
		.tm_min = t->min,
		.tm_sec = t->sec,
	};

	return (int64_t)timegm(&tm);
}

size_t tls_parse_ip(const char *s, uint8_t out[16])
{
	char tmp[64];
	size_t n;

	if (!s)
		return 0;
	n = strlen(s);
	/* "[::1]" as written in URLs. */
	if (n >= 2 && s[0] == '[' && s[n - 1] == ']') {
		if (n - 2 >= sizeof(tmp))
			return 0;
		memcpy(tmp, s + 1, n - 2);
		tmp[n - 2] = '\0';
		s = tmp;
	}
	if (inet_pton(AF_INET, s, out) == 1)
		return 4;
	if (inet_pton(AF_INET6, s, out) == 1)
		return 16;
	return 0;
}

static size_t strip_dot(const char *s, size_t n)
{
	return n > 0 && s[n - 1] == '.' ? n - 1 : n;
}

bool tls_name_match(const char *pattern, size_t plen, const char *host, size_t hlen)
{
	const char *dot;

	plen = strip_dot(pattern, plen);
	hlen = strip_dot(host, hlen);
	if (plen == 0 || hlen == 0)
		return false;
	if (plen == hlen && strncasecmp(pattern, host, plen) == 0)
		return true;
	if (plen < 3 || pattern[0] != '*' || pattern[1] != '.')
		return false;
	/* "*.example.com": the host's first label (non-empty) is replaced. */
	dot = memchr(host, '.', hlen);
	if (!dot || dot == host)
		return false;
	return (size_t)(host + hlen - dot) == plen - 1 &&
	       strncasecmp(dot, pattern + 1, plen - 1) == 0;
}

static unsigned san_type(const mbedtls_x509_sequence *cur)
{
	return (unsigned char)cur->buf.tag & MBEDTLS_ASN1_TAG_VALUE_MASK;
}

bool tls_crt_has_dns(const mbedtls_x509_crt *crt, const char *host)
{
	size_t hlen = strlen(host);

	for (const mbedtls_x509_sequence *cur = &crt->subject_alt_names; cur; cur = cur->next) {
		if (cur->buf.p && san_type(cur) == MBEDTLS_X509_SAN_DNS_NAME &&
		    tls_name_match((const char *)cur->buf.p, cur->buf.len, host, hlen))
			return true;
	}
	return false;
}

bool tls_crt_has_ip(const mbedtls_x509_crt *crt, const uint8_t *ip, size_t ip_len)
{
	for (const mbedtls_x509_sequence *cur = &crt->subject_alt_names; cur; cur = cur->next) {
		if (cur->buf.p && san_type(cur) == MBEDTLS_X509_SAN_IP_ADDRESS &&
		    cur->buf.len == ip_len && memcmp(cur->buf.p, ip, ip_len) == 0)
			return true;
	}
	return false;
}

bool tls_crt_has_uri(const mbedtls_x509_crt *crt, const char *uri)
{
	size_t n = strlen(uri);

	for (const mbedtls_x509_sequence *cur = &crt->subject_alt_names; cur; cur = cur->next) {
		if (cur->buf.p && san_type(cur) == MBEDTLS_X509_SAN_UNIFORM_RESOURCE_IDENTIFIER &&
		    cur->buf.len == n && memcmp(cur->buf.p, uri, n) == 0)
			return true;
	}
	return false;
}

/* A DNS name as found in a certificate, lower-cased; NULL if it holds bytes
 * no host name has (those can never match an SNI anyway). */
static char *dns_dup(const unsigned char *p, size_t n)
{
	char *s;

	if (n == 0 || n > 253)
		return NULL;
	s = malloc(n + 1);
	if (!s)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = p[i];

		if (!isalnum(ch) && ch != '-' && ch != '.' && ch != '_' && ch != '*') {
			free(s);
			return NULL;
		}
		s[i] = (char)tolower(ch);
	}
	s[n] = '\0';
	return s;
}

static int add_name(struct tls_keycert *kc, const unsigned char *p, size_t n)
{
	char **v, *s = dns_dup(p, n);

	if (!s)
		return 0;
	v = realloc(kc->names, (kc->n_names + 1) * sizeof(*v));
	if (!v) {
		free(s);
		return -ENOMEM;
	}
	kc->names = v;
	kc->names[kc->n_names++] = s;
	return 0;
}

static int collect_names(struct tls_keycert *kc)
{
	const mbedtls_x509_crt *crt = &kc->chain;
	int ret;

	if (mbedtls_x509_crt_has_ext_type(crt, MBEDTLS_X509_EXT_SUBJECT_ALT_NAME)) {
		for (const mbedtls_x509_sequence *cur = &crt->subject_alt_names; cur;
		     cur = cur->next) {
			if (!cur->buf.p || san_type(cur) != MBEDTLS_X509_SAN_DNS_NAME)
				continue;
			if ((ret = add_name(kc, cur->buf.p, cur->buf.len)) != 0)
				return ret;
		}
		return 0;
	}
	for (const mbedtls_x509_name *nm = &crt->subject; nm; nm = nm->next) {
		if (MBEDTLS_OID_CMP(MBEDTLS_OID_AT_CN, &nm->oid) == 0)
			return add_name(kc, nm->val.p, nm->val.len);
	}
	return 0;
}

/* What a person can act on, for the parse errors a Secret commonly hits;
 * mbedTLS's own text otherwise. */
static const char *short_err(int ret, char *buf, size_t size)
{
	int high = -((-ret) & 0xff80), low = -((-ret) & 0x7f);

	if (high == MBEDTLS_ERR_X509_UNKNOWN_SIG_ALG)
		return "unsupported signature algorithm (RSA or ECDSA with SHA-2 only)";
	if (high == MBEDTLS_ERR_PK_UNKNOWN_PK_ALG || high == MBEDTLS_ERR_PK_FEATURE_UNAVAILABLE ||
	    (high == MBEDTLS_ERR_X509_INVALID_ALG && low != 0) ||
	    high == MBEDTLS_ERR_X509_FEATURE_UNAVAILABLE)
		return "unsupported key algorithm or curve (RSA, ECDSA P-256/P-384 only)";
	if (ret == MBEDTLS_ERR_X509_CERT_UNKNOWN_FORMAT ||
	    ret == MBEDTLS_ERR_PEM_NO_HEADER_FOOTER_PRESENT)
		return "not PEM (no -----BEGIN block)";
	return tls_strerror(ret, buf, size);
}

int tls_ca_load(mbedtls_x509_crt *chain, const char *pem, const char *label, const char *field,
		struct diag *d)
{
	char e[128];
	int ret;

	if (!pem || !*pem) {
		diag_add(d, DIAG_ERROR, NULL, label, field, "no certificate given");
		return -EINVAL;
	}
	ret = mbedtls_x509_crt_parse(chain, (const unsigned char *)pem, strlen(pem) + 1);
	if (ret < 0) {
		diag_add(d, DIAG_ERROR, NULL, label, field, "cannot parse certificate: %s",
			 short_err(ret, e, sizeof(e)));
		return ret == MBEDTLS_ERR_X509_ALLOC_FAILED ? -ENOMEM : -EINVAL;
	}
	if (ret > 0) {
		diag_add(d, DIAG_ERROR, NULL, label, field,
			 "%d of the certificates cannot be parsed", ret);
		return -EINVAL;
	}
	return 0;
}

void tls_keycert_fini(struct tls_keycert *kc)
{
	mbedtls_x509_crt_free(&kc->chain);
	mbedtls_pk_free(&kc->key);
	for (size_t i = 0; i < kc->n_names; i++)
		free(kc->names[i]);
	free(kc->names);
	memset(kc, 0, sizeof(*kc));
}

int tls_keycert_load(struct tls_keycert *kc, const char *cert_pem, const char *key_pem,
		     const char *label, struct diag *d)
{
	mbedtls_pk_type_t type;
	char e[128];
	int ret;

	memset(kc, 0, sizeof(*kc));
	mbedtls_x509_crt_init(&kc->chain);
	mbedtls_pk_init(&kc->key);

	ret = tls_ca_load(&kc->chain, cert_pem, label, "tls.crt", d);
	if (ret != 0)
		goto fail;
	if (!key_pem || !*key_pem) {
		diag_add(d, DIAG_ERROR, NULL, label, "tls.key", "no private key given");
		ret = -EINVAL;
		goto fail;
	}
	ret = mbedtls_pk_parse_key(&kc->key, (const unsigned char *)key_pem, strlen(key_pem) + 1,
				   NULL, 0, tls_rng, NULL);
	if (ret != 0) {
		if (ret == MBEDTLS_ERR_PK_PASSWORD_REQUIRED)
			diag_add(d, DIAG_ERROR, NULL, label, "tls.key",
				 "encrypted private keys are not supported");
		else
			diag_add(d, DIAG_ERROR, NULL, label, "tls.key",
				 "cannot parse private key: %s", short_err(ret, e, sizeof(e)));
		ret = ret == MBEDTLS_ERR_PK_ALLOC_FAILED ? -ENOMEM : -EINVAL;
		goto fail;
	}
	type = mbedtls_pk_get_type(&kc->key);
	if (type != MBEDTLS_PK_RSA && type != MBEDTLS_PK_ECKEY) {
		diag_add(d, DIAG_ERROR, NULL, label, "tls.key",
			 "unsupported key type %s (RSA or ECDSA only)",
			 mbedtls_pk_get_name(&kc->key));
		ret = -EINVAL;
		goto fail;
	}
	if (type == MBEDTLS_PK_RSA && mbedtls_pk_get_bitlen(&kc->key) < 2048) {
		diag_add(d, DIAG_ERROR, NULL, label, "tls.key",
			 "RSA key of %zu bits is too short (2048 at least)",
			 mbedtls_pk_get_bitlen(&kc->key));
		ret = -EINVAL;
		goto fail;
	}
	ret = mbedtls_pk_check_pair(&kc->chain.pk, &kc->key, tls_rng, NULL);
	if (ret != 0) {
		diag_add(d, DIAG_ERROR, NULL, label, "tls.key",
			 "private key does not match the certificate");
		ret = -EINVAL;
		goto fail;
	}
	if ((ret = collect_names(kc)) != 0)
		goto fail;
	kc->not_after = INT64_MAX;
	for (const mbedtls_x509_crt *c = &kc->chain; c && c->raw.p; c = c->next) {
		int64_t t = tls_x509_time(&c->valid_to);

		if (t < kc->not_after)
			kc->not_after = t;
	}
	if (kc->not_after < (int64_t)time(NULL)) {
		char when[32];
		time_t t = (time_t)kc->not_after;
		struct tm tm;

		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&t, &tm));
		diag_add(d, DIAG_WARN, NULL, label, "tls.crt", "certificate expired at %s", when);
	}
	return 0;

fail:
	tls_keycert_fini(kc);
	return ret;
}

static pthread_once_t sys_once = PTHREAD_ONCE_INIT;
static mbedtls_x509_crt sys_cas;
static bool sys_ok;

static void sys_load(void)
{
	int ret;

	mbedtls_x509_crt_init(&sys_cas);
	ret = mbedtls_x509_crt_parse_file(&sys_cas, TLS_SYSTEM_CA_FILE);
	/* A bundle may hold a few entries mbedTLS rejects; keep the rest. */
	sys_ok = ret >= 0 && sys_cas.raw.p != NULL;
	if (!sys_ok) {
		char e[96];

		log_warn("event=tls_system_cas_missing file=%s err=%s", TLS_SYSTEM_CA_FILE,
			 log_q(tls_strerror(ret, e, sizeof(e))));
		mbedtls_x509_crt_free(&sys_cas);
	}
}

mbedtls_x509_crt *tls_system_cas(void)
{
	pthread_once(&sys_once, sys_load);
	return sys_ok ? &sys_cas : NULL;
}
