/* SPDX-License-Identifier: MIT */
/*
 * tls.h: waygate's TLS over mbedTLS, the only module that sees mbedTLS types.
 * Non-blocking connections over a caller-owned fd; server contexts choose the
 * certificate by SNI and negotiate ALPN; client contexts verify the peer
 * (CA, name or IP, optional client certificate). Also generates keys and
 * self-signed certificates, and offers the hashing/KDF the store needs.
 *
 * Threads: a tls_server / tls_client context is built on the control thread
 * and then shared read-only by every worker (refcounted); a tls_conn belongs
 * to the thread that created it.
 *
 * I/O results: > 0 bytes, 0 = clean close by the peer (close_notify or EOF),
 * -WG_EAGAIN_READ / -WG_EAGAIN_WRITE = re-arm for that direction and call
 * again, other negative = fatal for the connection.
 */
#ifndef WG_TLS_TLS_H
#define WG_TLS_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "core/diag.h"

struct tls_server;
struct tls_client;
struct tls_conn;

struct tls_cert_pem {
	const char *cert_pem; /* leaf first, then chain */
	const char *key_pem;  /* RSA or EC, PKCS#1/SEC1/PKCS#8 */
	const char *name;     /* for diagnostics: "ns/secret" */
};

/* Server: CHACHA_FIRST picks ChaCha20-Poly1305 whenever the client offers
 * it, TLS 1.3 included (boards without AES instructions); AES_FIRST
 * prefers AES-GCM in TLS 1.2 and leaves TLS 1.3 clients their own order
 * (they put ChaCha20 first when they lack AES instructions themselves).
 * Client: the order offered. */
enum tls_cipher_pref { TLS_PREF_AES_FIRST = 0, TLS_PREF_CHACHA_FIRST };
enum tls_client_auth {
	TLS_CLIENT_AUTH_NONE = 0,
	TLS_CLIENT_AUTH_REQUIRE,
	TLS_CLIENT_AUTH_OPTIONAL
};

struct tls_server_opts {
	const struct tls_cert_pem *certs; /* the first is the default when SNI matches none */
	size_t n_certs;
	const char *const *alpn; /* e.g. {"h2", "http/1.1", NULL}; NULL = none */
	enum tls_client_auth client_auth;
	const char *client_ca_pem;
	enum tls_cipher_pref cipher_pref;
	bool tls13_only;
};

/* Builds a server context. A certificate that cannot be used (unparsable,
 * key missing or not matching, RSA under 2048 bits, unsupported key type)
 * gets a DIAG_ERROR entry in d naming it (tls_cert_pem.name) and the field
 * ("tls.crt" / "tls.key") and is left out; the others still serve, the
 * first usable one being the default. An expired certificate is served
 * with a DIAG_WARN. NULL (with entries in d) when no certificate is usable
 * or the options are invalid (client CA, ALPN). Returned with refs = 1. */
struct tls_server *tls_server_new(const struct tls_server_opts *o, struct diag *d);
void tls_server_ref(struct tls_server *s);
void tls_server_unref(struct tls_server *s);
/* Earliest notAfter (seconds since the epoch) among its certificates, for
 * the UI; 0 if none. */
int64_t tls_server_not_after(const struct tls_server *s);

struct tls_client_opts {
	const char *ca_pem;  /* trusted CAs; NULL with use_system_cas = system store */
	bool use_system_cas; /* /etc/ssl/certs/ca-certificates.crt */
	bool insecure_skip_verify;
	const char *client_cert_pem; /* optional client certificate */
	const char *client_key_pem;
	const char *const *alpn; /* NULL = none */
	/* Extra names accepted in the peer certificate (DNS names or URIs such
	 * as spiffe://...); when empty the SNI/host passed at connect time must
	 * match. */
	const char *const *sans;
	size_t n_sans;
	enum tls_cipher_pref cipher_pref; /* order offered to the server */
};

struct tls_client *tls_client_new(const struct tls_client_opts *o, struct diag *d);
void tls_client_ref(struct tls_client *c);
void tls_client_unref(struct tls_client *c);

/* A connection over fd (non-blocking, owned by the caller: tls_conn_free
 * does not close it). It holds a reference on its context until
 * tls_conn_free, so the owner may unref (swap) the context at any time.
 * A server connection allocates mbedTLS's record buffers only once the
 * client's whole ClientHello is in (before: 608 bytes, plus what a slow
 * client has sent so far). NULL on ENOMEM. */
struct tls_conn *tls_conn_server(struct tls_server *s, int fd);
/* server_name: SNI and the name verified (DNS name or IP literal; an IP is
 * checked against IP SANs only and not sent as SNI). A DNS name matches DNS
 * SANs (one leftmost "*" label), never the CN. With tls_client_opts.sans,
 * one of those must match instead and server_name is only the SNI. A
 * session ticket from an earlier connection to the same server_name is
 * offered (per tls_client, a few names kept). NULL on ENOMEM or when
 * server_name is longer than 253 bytes (no host name is). */
struct tls_conn *tls_conn_client(struct tls_client *c, int fd, const char *server_name);
void tls_conn_free(struct tls_conn *c);

/* 0 when the handshake is complete, else as the I/O results above. After
 * a fatal result, tls_conn_error() says why and every later call fails.
 * tls_read/tls_write complete the handshake first if needed. tls_write may
 * write less than len (one record at most); after -WG_EAGAIN_WRITE call it
 * again with the same bytes. */
int tls_handshake(struct tls_conn *c);
ssize_t tls_read(struct tls_conn *c, void *buf, size_t len);
ssize_t tls_write(struct tls_conn *c, const void *buf, size_t len);
/* tls_write over several buffers, coalesced into one record where they fit
 * (an HTTP head and a small body go out as one record and one send(2)).
 * Returns bytes taken from the front of iov (possibly fewer than all), or
 * as tls_write; after -WG_EAGAIN_WRITE offer the same bytes again. */
ssize_t tls_writev(struct tls_conn *c, const struct iovec *iov, int iovcnt);
/* Sends close_notify (best effort, non-blocking). */
void tls_close_notify(struct tls_conn *c);
/* Decrypted bytes buffered inside (read them before waiting for the fd);
 * also non-zero when a whole record sits undecrypted in the buffer. */
size_t tls_pending(const struct tls_conn *c);
/* Server: the SNI received, lower-cased, without a trailing dot, NULL if
 * none or not a host name; client: the server_name given. */
const char *tls_conn_sni(const struct tls_conn *c);
const char *tls_conn_alpn(const struct tls_conn *c); /* NULL if none */
const char *tls_conn_version(const struct tls_conn *c);
const char *tls_conn_cipher(const struct tls_conn *c);
/* Whether the handshake resumed a session (ticket) instead of exchanging
 * certificates. */
bool tls_conn_resumed(const struct tls_conn *c);
/* Whether the peer is authenticated by a certificate that verified. A
 * resumed session counts for a client and with TLS_CLIENT_AUTH_REQUIRE;
 * with TLS_CLIENT_AUTH_OPTIONAL only a certificate seen in this handshake
 * counts (TLS 1.3 tickets do not carry it). False in insecure mode. */
bool tls_conn_peer_verified(const struct tls_conn *c);
/* Short reason of the last failure ("certificate verify failed: name
 * mismatch", "handshake: peer sent alert unknown_ca"); NULL if none. No
 * secrets, fit for a log line. */
const char *tls_conn_error(const struct tls_conn *c);

/* TLS passthrough: the SNI of the ClientHello at the start of buf (what a
 * client sent first, possibly over several records), lower-cased, without
 * a trailing dot, into out (256 bytes hold any host name). Nothing is
 * consumed. > 0: name length; 0: incomplete, call again with more bytes;
 * -WG_ENOTFOUND: a complete ClientHello without SNI; -WG_EPROTO: not a TLS
 * ClientHello or a malformed one; -WG_ELIMIT: ClientHello over 16 KiB or
 * out too small; -ENOMEM (a hello over several records needs 16 KiB). */
int tls_peek_sni(const void *buf, size_t len, char *out, size_t out_size);

/* Self-signed certificate (ECDSA P-256, SHA-256) for cn and the given DNS
 * names / IP literals, valid for `days`. PEM strings, caller frees (the key
 * is wiped by tls_free_secret). 0 or negative. */
int tls_gen_selfsigned(const char *cn, const char *const *sans, size_t n_sans, int days,
		       char **cert_pem, char **key_pem);
void tls_free_secret(char *s);

/* Cryptographic helpers for store/ and ui/ (they may not see mbedTLS). */
int tls_random(void *buf, size_t len);
int tls_pbkdf2_sha256(const char *password, const void *salt, size_t salt_len, uint32_t iterations,
		      void *out, size_t out_len);
void tls_sha256(const void *p, size_t n, uint8_t out[32]);
/* Constant-time comparison. */
bool tls_ct_equal(const void *a, const void *b, size_t n);
/* Wipes memory so the compiler cannot drop it. */
void tls_zeroize(void *p, size_t n);
/* Bytes of heap mbedTLS holds right now, process-wide (contexts,
 * connections, certificates): for memory accounting in the UI and benches. */
size_t tls_mem_in_use(void);

#endif
