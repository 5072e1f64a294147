/* SPDX-License-Identifier: MIT */
/*
 * tlsutil.h: what the tls/ unit tests share: a small PKI generated once per
 * run (EC CAs and leaves for the names the tests use), fixed RSA material
 * (RSA key generation is too slow for a unit test), and a driver that runs
 * a server and a client tls_conn against each other over a non-blocking
 * socketpair with poll(2), bounded in time.
 */
#ifndef WG_TESTS_TLS_TLSUTIL_H
#define WG_TESTS_TLS_TLSUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "tls/tls.h"

struct tpki {
	char *ca_crt, *ca_key;       /* the trusted EC CA */
	char *ca2_crt, *ca2_key;     /* a CA nobody trusts */
	char *www_crt, *www_key;     /* www.example.com, example.com */
	char *wild_crt, *wild_key;   /* *.example.com */
	char *other_crt, *other_key; /* other.test (used as the default) */
	char *ip_crt, *ip_key;       /* 127.0.0.1, ::1, localhost */
	char *uri_crt, *uri_key;     /* spiffe://cluster.local/ns/default/sa/backend */
	char *cli_crt, *cli_key;     /* client certificate from ca */
	char *cli2_crt, *cli2_key;   /* client certificate from ca2 */
	char *rogue_crt, *rogue_key; /* www.example.com from ca2 */
};

/* Generated on first call, kept for the run. */
const struct tpki *tpki_get(void);

/* Fixed RSA 2048 PKI (valid until 2126): CA, server kube.test + 127.0.0.1,
 * client "admin" (PKCS#1 key); an EC client key as SEC1 and PKCS#8. */
extern const char fx_rsa_ca_crt[], fx_rsa_srv_crt[], fx_rsa_srv_key[];
extern const char fx_rsa_cli_crt[], fx_rsa_cli_key_pkcs1[];
extern const char fx_ec_cli_crt[], fx_ec_cli_key_sec1[], fx_ec_cli_key_pkcs8[];

struct tpair {
	int fd[2]; /* [0] server side, [1] client side */
	struct tls_conn *s, *c;
	int s_ret, c_ret; /* last tls_handshake results */
};

/* Opens a socketpair (non-blocking) and a tls_conn on each end. 0 or -1. */
int tpair_open(struct tpair *p, struct tls_server *srv, struct tls_client *cli,
	       const char *server_name);
/* Drives both handshakes until both are done or one failed and the other
 * has nothing more to process (at most 5 s). 0 when both succeeded. */
int tpair_handshake(struct tpair *p);
/* Sends n bytes from one side and reads them on the other (both directions
 * pumped, at most 5 s); returns bytes received. */
size_t tpair_xfer(struct tpair *p, bool from_server, const void *data, size_t n, void *out);
void tpair_close(struct tpair *p);

/* A server with the given certificates (NULL-terminated cert/key pairs). */
struct tls_server *tsrv_new(const char *const *alpn, enum tls_client_auth auth,
			    const char *client_ca, const char *cert1, const char *key1, ...);
/* A client trusting ca (NULL = insecure). */
struct tls_client *tcli_new(const char *ca, const char *const *alpn);

#endif
