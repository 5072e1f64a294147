/* SPDX-License-Identifier: MIT */
/*
 * test_cert.c: tls/cert.c and the context constructors' diagnostics: host
 * name and IP matching rules, what a broken Secret produces (entries that
 * name the Secret and the field), key/certificate mismatch, the RSA size
 * floor, expiry, client contexts without trust anchors, and the system CA
 * bundle.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "core/diag.h"
#include "core/err.h"
#include "tls/internal.h"
#include "tls/tls.h"
#include "tlsutil.h"

/* Key types and sizes waygate refuses (test material, not secrets). */
static const char fx_ed25519_crt[] =
	"-----BEGIN CERTIFICATE-----\n"
	"MIIBOjCB7aADAgECAhQOZ/tCyevBqckBMBPBFGqNLfPrTDAFBgMrZXAwEjEQMA4G\n"
	"A1UEAwwHZWQudGVzdDAgFw0yNjExMjYwNTUwMDVaGA8yMTI2MTEwMjA1NTAwNVow\n"
	"EjEQMA4GA1UEAwwHZWQudGVzdDAqMAUGAytlcAMhAJ13xZf1XW7tc73lc360Zg/H\n"
	"cFStpHaSWIvao5TOigTso1MwUTAdBgNVHQ4EFgQUQacGQupXYD8yjc2tlUW0k87k\n"
	"oygwHwYDVR0jBBgwFoAUQacGQupXYD8yjc2tlUW0k87koygwDwYDVR0TAQH/BAUw\n"
	"AwEB/zAFBgMrZXADQQC5rbwgIZce2RBwzrvdJwypdqQ+GawnLAk9ZDJbByHgnl4z\n"
	"8zMbnsZ5vuXAw3sT+G+IyMnyjV5/F8FJ1trSXM4E\n"
	"-----END CERTIFICATE-----\n";
static const char fx_ed25519_key[] =
	"-----BEGIN PRIVATE KEY-----\n"
	"MC4CAQAwBQYDK2VwBCIEIMQHEBhfzM4OrsQSUMvO2N7uOio+Z1BKFsZQjpvBLYIa\n"
	"-----END PRIVATE KEY-----\n";
static const char fx_rsa1024_crt[] =
	"-----BEGIN CERTIFICATE-----\n"
	"MIICBjCCAW+gAwIBAgIUY3jD9L0kB3i/tomVFonZn6MzgmwwDQYJKoZIhvcNAQEL\n"
	"BQAwFDESMBAGA1UEAwwJd2Vhay50ZXN0MCAXDTI2MTEyNjA1NTAxMVoYDzIxMjYx\n"
	"MTAyMDU1MDExWjAUMRIwEAYDVQQDDAl3ZWFrLnRlc3QwgZ8wDQYJKoZIhvcNAQEB\n"
	"BQADgY0AMIGJAoGBANLHwsRy2CtTwsuAylHk1mSxl4rEZG9YBoYrFHKE2CV+/uE2\n"
	"KyTYYZYJiXBLyX5IGL3wrL26V+rVa7QUSc/UUirWBGOpUYxOwwbBnd4z03AhgHVY\n"
	"j4mUa4FAVZvpeh9WbN/Gi9I7dpTjVsbaUoTYv/TlBZBqyt9XIPBkjoacB7O3AgMB\n"
	"AAGjUzBRMB0GA1UdDgQWBBQeQCwuaDubwBUIfEzfihxfvAZIMTAfBgNVHSMEGDAW\n"
	"gBQeQCwuaDubwBUIfEzfihxfvAZIMTAPBgNVHRMBAf8EBTADAQH/MA0GCSqGSIb3\n"
	"DQEBCwUAA4GBADyMp7I38Z+H/3GasSWjY3cGC/Oo4s3wlrL/fPRIDfrpoQ2x7C6W\n"
	"5b409N4elJK5LT7GbCTC146IO++ncXhNf5M0FvMwEOAgpIiiEEoZdF/DmYv3NPYm\n"
	"jPchxIs51egeNnuUnzecIYGBmX3Bu68lRCOjeM31Nabp+VhtKMPH+Oym\n"
	"-----END CERTIFICATE-----\n";
static const char fx_rsa1024_key[] =
	"-----BEGIN PRIVATE KEY-----\n"
	"MIICeAIBADANBgkqhkiG9w0BAQEFAASCAmIwggJeAgEAAoGBANLHwsRy2CtTwsuA\n"
	"ylHk1mSxl4rEZG9YBoYrFHKE2CV+/uE2KyTYYZYJiXBLyX5IGL3wrL26V+rVa7QU\n"
	"Sc/UUirWBGOpUYxOwwbBnd4z03AhgHVYj4mUa4FAVZvpeh9WbN/Gi9I7dpTjVsba\n"
	"UoTYv/TlBZBqyt9XIPBkjoacB7O3AgMBAAECgYEAgzBd4xNvxBfQCAVS54G8htOZ\n"
	"9H6j3EE3Xk513YkdVskiLl4eoEIlCtNIvaIN+RE6hQ3FFhljGwBWlrCB+F63/Fum\n"
	"W8T6yRktWBSScv7iTrKTIto6TbCcgY4dJIWmsnkFupp3noC+H3+V6ElEsDuFM4yA\n"
	"EizovatA9M/D9euH80ECQQD2oeWyZz5mdQ3PtR86GKjf7Bwe+5P23L0yRAv84uUk\n"
	"bwrrb3Ykxq7S+vHgqgqwqc49e3hEjzNEsYlH1xJ3kVzRAkEA2slCe/n+c/Ghntx1\n"
	"0EMIsn/Ksymxo97CYbLnIZP5vfVshYqvwjUjPqElOdfqKFqKaGefPczYmCYSsd5K\n"
	"tg4KBwJAW9Wu5P5Cov4FFYl4xjY2c6LEWdkNoIdTP6tM125ZKnbalw4a7Ni6cj8U\n"
	"37YRYvTnocce4lB8I6ED4Cc6biFHcQJBAKw/2c0bxF5qNZGKBmNh8139SIwH3mii\n"
	"v60Fmf0QsIYCzF7TEo83ILl1S4af3CXLKr8KHhAcz8Xx67QHzBBLO08CQQDYst5B\n"
	"UqQ5b1R6b3O3/UmZ9ePHStQbzDo0+tAKW2Zk4ybWpiIkdmR+KgqMAiw/R5OvoT7O\n"
	"ByfQRCuqQgSWdks2\n"
	"-----END PRIVATE KEY-----\n";

TEST(tls_name_match_rules)
{
	static const struct {
		const char *pattern, *host;
		bool want;
	} v[] = {
		{"www.example.com", "www.example.com", true},
		{"www.example.com", "WWW.EXAMPLE.COM", true},
		{"www.example.com", "www.example.com.", true},
		{"www.example.com.", "www.example.com", true},
		{"www.example.com", "example.com", false},
		{"www.example.com", "wwww.example.com", false},
		{"*.example.com", "a.example.com", true},
		{"*.example.com", "A-1.Example.Com", true},
		{"*.example.com", "example.com", false},
		{"*.example.com", ".example.com", false},
		{"*.example.com", "a.b.example.com", false},
		{"*.example.com", "aexample.com", false},
		{"*.example.com", "a.example.org", false},
		{"a*.example.com", "ab.example.com", false}, /* partial wildcards: no */
		{"*", "localhost", false},
		{"*.", "a.", false},
		{"", "", false},
		{"example.com", "", false},
	};

	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		bool got = tls_name_match(v[i].pattern, strlen(v[i].pattern), v[i].host,
					  strlen(v[i].host));

		if (got != v[i].want)
			CHECK_FAIL_("match(\"%s\", \"%s\") = %d", v[i].pattern, v[i].host, got);
	}
}

TEST(tls_parse_ip_literals)
{
	uint8_t ip[16];

	CHECK_EQ_INT(tls_parse_ip("10.1.2.3", ip), 4);
	CHECK_EQ_INT(ip[0], 10);
	CHECK_EQ_INT(ip[3], 3);
	CHECK_EQ_INT(tls_parse_ip("::1", ip), 16);
	CHECK_EQ_INT(ip[15], 1);
	CHECK_EQ_INT(tls_parse_ip("[fe80::1]", ip), 16);
	CHECK_EQ_INT(tls_parse_ip("example.com", ip), 0);
	CHECK_EQ_INT(tls_parse_ip("10.1.2", ip), 0);
	CHECK_EQ_INT(tls_parse_ip("1.2.3.4.5", ip), 0);
	CHECK_EQ_INT(tls_parse_ip("", ip), 0);
	CHECK_EQ_INT(tls_parse_ip(NULL, ip), 0);
}

/* Builds a server from one cert/key and returns the formatted first diag
 * entry (or "" when it succeeded). */
static const char *server_diag(const char *crt, const char *key, char *buf, size_t size, bool *ok)
{
	struct tls_cert_pem cp = {crt, key, "ns/secret"};
	struct tls_server_opts o = {.certs = &cp, .n_certs = 1};
	struct diag d = {0};
	struct tls_server *s = tls_server_new(&o, &d);

	*ok = s != NULL;
	buf[0] = '\0';
	if (d.n)
		diag_format(&d.v[0], buf, size);
	tls_server_unref(s);
	diag_fini(&d);
	return buf;
}

TEST(tls_server_new_names_broken_secret)
{
	const struct tpki *k = tpki_get();
	char buf[512];
	bool ok;

	server_diag("not a certificate", k->www_key, buf, sizeof(buf), &ok);
	CHECK(!ok);
	CHECK(strstr(buf, "ns/secret") && strstr(buf, "tls.crt") && strstr(buf, "cannot parse"));

	server_diag(k->www_crt, "garbage", buf, sizeof(buf), &ok);
	CHECK(!ok);
	CHECK(strstr(buf, "ns/secret") && strstr(buf, "tls.key"));

	server_diag(k->www_crt, NULL, buf, sizeof(buf), &ok);
	CHECK(!ok);
	CHECK(strstr(buf, "tls.key") && strstr(buf, "no private key"));

	server_diag(NULL, k->www_key, buf, sizeof(buf), &ok);
	CHECK(!ok);
	CHECK(strstr(buf, "tls.crt") && strstr(buf, "no certificate"));

	/* The key of another certificate. */
	server_diag(k->www_crt, k->wild_key, buf, sizeof(buf), &ok);
	CHECK(!ok);
	CHECK_EQ_STR(buf, "ns/secret: tls.key: private key does not match the certificate");

	/* No key material leaks into messages. */
	server_diag(k->www_crt, k->wild_key, buf, sizeof(buf), &ok);
	CHECK(strstr(buf, "PRIVATE") == NULL);

	server_diag(k->www_crt, k->www_key, buf, sizeof(buf), &ok);
	CHECK(ok);
	CHECK_EQ_STR(buf, "");
}

TEST(tls_server_new_reports_every_broken_certificate)
{
	const struct tpki *k = tpki_get();
	struct tls_cert_pem cp[3] = {
		{k->www_crt, k->www_key, "ns/good"},
		{"x", k->www_key, "ns/bad1"},
		{k->wild_crt, k->www_key, "ns/bad2"},
	};
	struct tls_server_opts o = {.certs = cp, .n_certs = 3};
	struct diag d = {0};
	struct tls_server *s;

	/* The good one still serves; both bad ones are named. */
	s = tls_server_new(&o, &d);
	CHECK(s != NULL);
	CHECK_EQ_INT(d.errors, 2);
	if (d.n == 2) {
		CHECK_EQ_STR(d.v[0].object, "ns/bad1");
		CHECK_EQ_STR(d.v[0].field, "tls.crt");
		CHECK_EQ_STR(d.v[1].object, "ns/bad2");
		CHECK_EQ_STR(d.v[1].field, "tls.key");
	}
	if (s) {
		struct tls_client *c = tcli_new(k->ca_crt, NULL);
		struct tpair p;

		CHECK_EQ_INT(tpair_open(&p, s, c, "www.example.com"), 0);
		CHECK_EQ_INT(tpair_handshake(&p), 0);
		tpair_close(&p);
		tls_client_unref(c);
	}
	tls_server_unref(s);
	diag_fini(&d);

	/* None usable: NULL. */
	o.certs = cp + 1;
	o.n_certs = 2;
	CHECK(tls_server_new(&o, &d) == NULL);
	CHECK_EQ_INT(d.errors, 3);
	diag_fini(&d);
	o.certs = cp;

	o.n_certs = 0;
	CHECK(tls_server_new(&o, &d) == NULL);
	CHECK_EQ_INT(d.errors, 1);
	diag_fini(&d);
}

TEST(tls_server_new_rejects_bad_options)
{
	const struct tpki *k = tpki_get();
	struct tls_cert_pem cp = {k->www_crt, k->www_key, "ns/www"};
	const char *long_alpn[] = {
		"x123456789x123456789x123456789x123456789x123456789x123456789x123456789x123456789"
		"x123456789x123456789x123456789x123456789x123456789x123456789x123456789x123456789"
		"x123456789x123456789x123456789x123456789x123456789x123456789x123456789x123456789"
		"x123456789x123456789",
		NULL};
	const char *empty_alpn[] = {"h2", "", NULL};
	struct tls_server_opts o = {.certs = &cp, .n_certs = 1};
	struct diag d = {0};

	o.client_auth = TLS_CLIENT_AUTH_REQUIRE;
	CHECK(tls_server_new(&o, &d) == NULL);
	CHECK_EQ_INT(d.errors, 1);
	if (d.n)
		CHECK_EQ_STR(d.v[0].field, "frontendValidation.caCertificateRefs");
	diag_fini(&d);

	o.client_ca_pem = "junk";
	CHECK(tls_server_new(&o, &d) == NULL);
	CHECK_EQ_INT(d.errors, 1);
	diag_fini(&d);

	o.client_auth = TLS_CLIENT_AUTH_NONE;
	o.alpn = long_alpn;
	CHECK(tls_server_new(&o, &d) == NULL);
	CHECK_EQ_INT(d.errors, 1);
	diag_fini(&d);
	o.alpn = empty_alpn;
	CHECK(tls_server_new(&o, &d) == NULL);
	CHECK_EQ_INT(d.errors, 1);
	diag_fini(&d);
}

TEST(tls_server_not_after_is_earliest)
{
	const struct tpki *k = tpki_get();
	struct tls_server *s = tsrv_new(NULL, TLS_CLIENT_AUTH_NONE, NULL, fx_rsa_srv_crt,
					fx_rsa_srv_key, k->www_crt, k->www_key, NULL);
	int64_t now = (int64_t)time(NULL), na;

	CHECK(s != NULL);
	na = tls_server_not_after(s);
	/* The generated chain ends within 30 days; the RSA one in 2126. */
	CHECK(na > now + 29 * 86400 && na <= now + 30 * 86400 + 60);
	tls_server_unref(s);
	CHECK_EQ_INT(tls_server_not_after(NULL), 0);
}

TEST(tls_expired_certificate_is_a_warning)
{
	const struct tpki *k = tpki_get();
	int64_t now = (int64_t)time(NULL);
	struct tls_gen_req r = {.cn = "old.test",
				.not_before = now - 10 * 86400,
				.not_after = now - 86400,
				.issuer_cert_pem = k->ca_crt,
				.issuer_key_pem = k->ca_key};
	char *crt = NULL, *key = NULL, buf[256];
	struct tls_cert_pem cp;
	struct tls_server_opts o = {.certs = &cp, .n_certs = 1};
	struct diag d = {0};
	struct tls_server *s;

	CHECK_EQ_INT(tls_gen_cert(&r, &crt, &key), 0);
	cp = (struct tls_cert_pem){crt, key, "ns/old"};
	s = tls_server_new(&o, &d);
	CHECK(s != NULL);
	CHECK_EQ_INT(d.errors, 0);
	CHECK_EQ_INT(d.warnings, 1);
	if (d.n) {
		diag_format(&d.v[0], buf, sizeof(buf));
		CHECK(strstr(buf, "ns/old: tls.crt: certificate expired at ") == buf);
	}
	/* A verifying client refuses it. */
	if (s) {
		struct tls_client *c = tcli_new(k->ca_crt, NULL);
		struct tpair p;
		const char *sans[] = {"old.test"};

		tls_client_unref(c);
		{
			struct tls_client_opts co = {
				.ca_pem = k->ca_crt, .sans = sans, .n_sans = 1};
			struct diag d2 = {0};

			c = tls_client_new(&co, &d2);
			diag_fini(&d2);
		}
		CHECK_EQ_INT(tpair_open(&p, s, c, "old.test"), 0);
		CHECK(tpair_handshake(&p) != 0);
		CHECK_EQ_STR(tls_conn_error(p.c), "certificate verify failed: certificate expired");
		tpair_close(&p);
		tls_client_unref(c);
	}
	tls_server_unref(s);
	diag_fini(&d);
	free(crt);
	tls_free_secret(key);
}

TEST(tls_client_new_needs_trust_anchors)
{
	struct tls_client_opts o = {0};
	struct diag d = {0};
	struct tls_client *c;
	const char *bad_san[] = {""};

	CHECK(tls_client_new(&o, &d) == NULL);
	CHECK_EQ_INT(d.errors, 1);
	if (d.n)
		CHECK_EQ_STR(d.v[0].field, "certificate-authority");
	diag_fini(&d);

	o.ca_pem = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
	CHECK(tls_client_new(&o, &d) == NULL);
	CHECK_EQ_INT(d.errors, 1);
	diag_fini(&d);

	o.ca_pem = fx_rsa_ca_crt;
	o.client_cert_pem = fx_rsa_cli_crt; /* without its key */
	CHECK(tls_client_new(&o, &d) == NULL);
	CHECK_EQ_INT(d.errors, 1);
	diag_fini(&d);

	o.client_key_pem = fx_ec_cli_key_sec1; /* the wrong key */
	CHECK(tls_client_new(&o, &d) == NULL);
	CHECK_EQ_INT(d.errors, 1);
	diag_fini(&d);

	o.client_key_pem = fx_rsa_cli_key_pkcs1;
	o.sans = bad_san;
	o.n_sans = 1;
	CHECK(tls_client_new(&o, &d) == NULL);
	diag_fini(&d);

	o.n_sans = 0;
	c = tls_client_new(&o, &d);
	CHECK(c != NULL);
	CHECK_EQ_INT(d.n, 0);
	tls_client_unref(c);
	diag_fini(&d);

	/* Insecure needs no anchors. */
	memset(&o, 0, sizeof(o));
	o.insecure_skip_verify = true;
	c = tls_client_new(&o, &d);
	CHECK(c != NULL);
	tls_client_unref(c);
	diag_fini(&d);
}

TEST(tls_system_ca_bundle)
{
	struct tls_client_opts o = {.use_system_cas = true};
	struct diag d = {0};
	struct tls_client *c;

	if (access(TLS_SYSTEM_CA_FILE, R_OK) != 0) {
		fprintf(stderr, "  skip: no %s\n", TLS_SYSTEM_CA_FILE);
		return;
	}
	c = tls_client_new(&o, &d);
	CHECK(c != NULL);
	CHECK(tls_system_cas() != NULL);
	/* The shared store is used as is, not copied per client. */
	CHECK(c && !c->own_ca);
	tls_client_unref(c);
	/* Our CA plus the system ones. */
	o.ca_pem = fx_rsa_ca_crt;
	c = tls_client_new(&o, &d);
	CHECK(c && c->own_ca && c->ca.next != NULL);
	tls_client_unref(c);
	CHECK_EQ_INT(d.n, 0);
	diag_fini(&d);
}

TEST(tls_server_new_refuses_unsupported_and_weak_keys)
{
	char buf[512];
	bool ok;

	server_diag(fx_ed25519_crt, fx_ed25519_key, buf, sizeof(buf), &ok);
	CHECK(!ok);
	CHECK_EQ_STR(buf, "ns/secret: tls.crt: cannot parse certificate: unsupported signature "
			  "algorithm (RSA or ECDSA with SHA-2 only)");
	server_diag(fx_rsa1024_crt, fx_rsa1024_key, buf, sizeof(buf), &ok);
	CHECK(!ok);
	CHECK_EQ_STR(buf, "ns/secret: tls.key: RSA key of 1024 bits is too short (2048 at least)");
}
