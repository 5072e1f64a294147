/* SPDX-License-Identifier: MIT */
/*
 * test_peek.c: tls/peek.c: the SNI read from real ClientHellos (TLS 1.3
 * and 1.2 clients, with and without SNI), at every truncation, split over
 * two records, and refusals for what is not a ClientHello.
 */
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <mbedtls/ssl.h>

#include "check.h"
#include "core/err.h"
#include "tls/internal.h"
#include "tls/tls.h"
#include "tlsutil.h"

/* The first flight of a tls_client for name, as sent on the wire. */
static ssize_t client_hello(const char *name, bool tls12, unsigned char *buf, size_t size)
{
	const struct tpki *k = tpki_get();
	struct tls_server *s =
		tsrv_new(NULL, TLS_CLIENT_AUTH_NONE, NULL, k->www_crt, k->www_key, NULL);
	static const char *const alpn[] = {"h2", "http/1.1", NULL};
	struct tls_client *c = tcli_new(k->ca_crt, alpn);
	struct tpair p;
	ssize_t n = -1;

	if (s && c) {
		if (tls12)
			mbedtls_ssl_conf_max_tls_version(&c->conf, MBEDTLS_SSL_VERSION_TLS1_2);
		if (tpair_open(&p, s, c, name) == 0) {
			if (tls_handshake(p.c) == -WG_EAGAIN_READ)
				n = read(p.fd[0], buf, size);
			tpair_close(&p);
		}
	}
	tls_server_unref(s);
	tls_client_unref(c);
	return n;
}

TEST(tls_peek_sni_from_real_hellos)
{
	unsigned char buf[4096];
	char name[256];
	ssize_t n;

	n = client_hello("Api.Example.COM.", false, buf, sizeof(buf));
	CHECK(n > 0);
	CHECK_EQ_INT(tls_peek_sni(buf, (size_t)n, name, sizeof(name)), 15);
	CHECK_EQ_STR(name, "api.example.com");
	/* Every shorter prefix asks for more. */
	for (ssize_t i = 0; i < n; i++) {
		int r = tls_peek_sni(buf, (size_t)i, name, sizeof(name));

		if (r != 0) {
			CHECK_FAIL_("prefix %zd: %d", i, r);
			break;
		}
	}
	/* Bytes after the hello (a second record) do not matter. */
	memset(buf + n, 0x17, 64);
	CHECK_EQ_INT(tls_peek_sni(buf, (size_t)n + 64, name, sizeof(name)), 15);
	/* Too small an output buffer. */
	CHECK_EQ_INT(tls_peek_sni(buf, (size_t)n, name, 8), -WG_ELIMIT);

	n = client_hello("www.example.com", true, buf, sizeof(buf));
	CHECK(n > 0);
	CHECK_EQ_INT(tls_peek_sni(buf, (size_t)n, name, sizeof(name)), 15);
	CHECK_EQ_STR(name, "www.example.com");

	/* An IP literal is not sent as SNI. */
	n = client_hello("10.0.0.1", false, buf, sizeof(buf));
	CHECK(n > 0);
	CHECK_EQ_INT(tls_peek_sni(buf, (size_t)n, name, sizeof(name)), -WG_ENOTFOUND);
	CHECK_EQ_STR(name, "");
}

TEST(tls_peek_sni_across_two_records)
{
	unsigned char buf[4096], split[4200];
	char name[256];
	ssize_t n = client_hello("split.example.com", false, buf, sizeof(buf));
	size_t body, first = 40;

	CHECK(n > 100);
	if (n <= 100)
		return;
	body = (size_t)n - 5;
	/* Record 1: the first 40 bytes of the handshake; record 2: the rest. */
	memcpy(split, buf, 5);
	split[3] = 0;
	split[4] = (unsigned char)first;
	memcpy(split + 5, buf + 5, first);
	memcpy(split + 5 + first, buf, 5);
	split[5 + first + 3] = (unsigned char)((body - first) >> 8);
	split[5 + first + 4] = (unsigned char)(body - first);
	memcpy(split + 10 + first, buf + 5 + first, body - first);
	CHECK_EQ_INT(tls_peek_sni(split, (size_t)n + 5, name, sizeof(name)), 17);
	CHECK_EQ_STR(name, "split.example.com");
	CHECK_EQ_INT(tls_peek_sni(split, 5 + first + 3, name, sizeof(name)), 0);
}

TEST(tls_peek_sni_refuses_what_is_not_a_client_hello)
{
	static const char http[] = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
	/* A TLS record of type alert, then a handshake record holding a
	 * ServerHello (type 2). */
	static const unsigned char alert[] = {0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28};
	static const unsigned char server_hello[] = {0x16, 0x03, 0x03, 0x00, 0x04,
						     0x02, 0x00, 0x00, 0x00};
	/* A ClientHello whose session id claims 200 bytes. */
	static const unsigned char bad_sid[] = {
		0x16, 0x03, 0x01, 0x00, 0x27, 0x01, 0x00, 0x00, 0x23, 0x03, 0x03, 0, 0, 0,   0,
		0,    0,    0,    0,    0,    0,    0,    0,    0,    0,    0,    0, 0, 0,   0,
		0,    0,    0,    0,    0,    0,    0,    0,    0,    0,    0,    0, 0, 200, 0x00,
	};
	/* The same without extensions: valid, but no SNI. */
	static const unsigned char no_ext[] = {
		0x16, 0x03, 0x01, 0x00, 0x2d, 0x01, 0x00, 0x00, 0x29, 0x03, 0x03, 0, 0,
		0,    0,    0,    0,    0,    0,    0,    0,    0,    0,    0,    0, 0,
		0,    0,    0,    0,    0,    0,    0,    0,    0,    0,    0,    0, 0,
		0,    0,    0,    0,    0x00, 0x00, 0x02, 0x13, 0x01, 0x01, 0x00,
	};
	char name[256];

	CHECK_EQ_INT(tls_peek_sni(http, strlen(http), name, sizeof(name)), -WG_EPROTO);
	CHECK_EQ_INT(tls_peek_sni(http, 1, name, sizeof(name)), -WG_EPROTO);
	CHECK_EQ_INT(tls_peek_sni(alert, sizeof(alert), name, sizeof(name)), -WG_EPROTO);
	CHECK_EQ_INT(tls_peek_sni(server_hello, sizeof(server_hello), name, sizeof(name)),
		     -WG_EPROTO);
	CHECK_EQ_INT(tls_peek_sni(bad_sid, sizeof(bad_sid), name, sizeof(name)), -WG_EPROTO);
	CHECK_EQ_INT(tls_peek_sni(no_ext, sizeof(no_ext), name, sizeof(name)), -WG_ENOTFOUND);
	CHECK_EQ_INT(tls_peek_sni("", 0, name, sizeof(name)), 0);
}

TEST(tls_peek_sni_rejects_bad_host_names)
{
	unsigned char buf[4096];
	char name[256];
	ssize_t n = client_hello("www.example.com", false, buf, sizeof(buf));
	unsigned char *at;

	CHECK(n > 0);
	if (n <= 0)
		return;
	at = memmem(buf, (size_t)n, "www.example.com", 15);
	CHECK(at != NULL);
	if (!at)
		return;
	at[3] = '/'; /* "www/example.com" */
	CHECK_EQ_INT(tls_peek_sni(buf, (size_t)n, name, sizeof(name)), -WG_EPROTO);
	at[3] = 0;
	CHECK_EQ_INT(tls_peek_sni(buf, (size_t)n, name, sizeof(name)), -WG_EPROTO);
}
