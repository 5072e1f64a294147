/* SPDX-License-Identifier: MIT */
/*
 * tls/internal.h: what the files of tls/ share and nobody else sees: the
 * layouts of tls_server, tls_client and tls_conn, the one-time library
 * initialisation, certificate/key loading and name matching, and the
 * certificate writer behind tls_gen_selfsigned (tests use it to make CAs).
 * Never included from another module: it pulls in mbedTLS.
 */
#ifndef WG_TLS_INTERNAL_H
#define WG_TLS_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <mbedtls/pk.h>
#include <mbedtls/platform.h>
#include <mbedtls/ssl.h>
#include <mbedtls/ssl_ticket.h>
#include <mbedtls/x509_crt.h>

#include "core/diag.h"
#include "tls/tls.h"

/* Where tls_client looks for the system's trust anchors. */
#define TLS_SYSTEM_CA_FILE "/etc/ssl/certs/ca-certificates.crt"
/* Session ticket key lifetime (seconds); keys rotate every lifetime and a
 * ticket is accepted while the key that sealed it is still kept. */
#define TLS_TICKET_LIFETIME_S 7200
/* Client sessions kept per tls_client (one per server name, LRU). */
#define TLS_CLIENT_SESSIONS 32
/* Server read-ahead: one readv takes a record's header and what follows,
 * up to this much, into a per-thread buffer; a connection gets its own
 * only when bytes are left over after a call (pipelining, bulk uploads). */
#define TLS_RA_SIZE 2048

/* One certificate chain with its key, and the names it answers for. */
struct tls_keycert {
	mbedtls_x509_crt chain;
	mbedtls_pk_context key;
	char **names; /* lower case DNS names (SANs, or CN when no SANs) */
	size_t n_names;
	int64_t not_after; /* earliest notAfter in the chain */
};

struct tls_server {
	int refs; /* atomic */
	mbedtls_ssl_config conf;
	mbedtls_ssl_config conf13; /* TLS 1.3 ChaCha20 only (has_conf13) */
	bool has_conf13;
	mbedtls_ssl_ticket_context ticket;
	struct tls_keycert *kc;
	size_t n_kc;
	mbedtls_x509_crt client_ca;
	const char **alpn; /* NULL-terminated, strings owned here */
	enum tls_client_auth client_auth;
	int64_t not_after;
};

struct tls_sess_slot {
	char *name;          /* server name the session belongs to */
	unsigned char *data; /* mbedtls_ssl_session_save() output */
	size_t len;
	uint64_t used; /* LRU clock */
};

struct tls_client {
	int refs; /* atomic */
	mbedtls_ssl_config conf;
	mbedtls_x509_crt ca;    /* private trust anchors (ca_pem [+ system]) */
	bool own_ca;            /* ca is used (else the shared system store or none) */
	struct tls_keycert own; /* client certificate */
	bool has_own;
	bool insecure;
	char **sans;
	size_t n_sans;
	const char **alpn;
	pthread_mutex_t cache_lock;
	uint64_t cache_clock;
	struct tls_sess_slot cache[TLS_CLIENT_SESSIONS];
};

enum tls_conn_side { TLS_SIDE_SERVER = 0, TLS_SIDE_CLIENT };

/* States: (server) waiting for the whole ClientHello (!setup, no mbedTLS
 * buffers) -> handshaking (!done, err empty) -> established (done) -> closed
 * by its owner; any state -> failed (err set, every call returns
 * -WG_ETLS). `full`, `peer_ok` are meaningful once done. Memory comes from
 * mbedtls_calloc (counted by tls_mem_in_use), `name` too. */
struct tls_conn {
	mbedtls_ssl_context ssl;
	enum tls_conn_side side;
	struct tls_server *srv; /* holds a reference (server side) */
	struct tls_client *cli; /* holds a reference (client side) */
	int fd;
	char *name;         /* server: SNI received; client: the name to verify */
	uint8_t ip[16];     /* client: name as an IP literal */
	size_t ip_len;      /* 0 when name is a DNS name */
	unsigned char *pre; /* server: ClientHello bytes taken before setup */
	size_t pre_len, pre_off, pre_cap;
	unsigned char *ra;  /* server: read-ahead left over from a call (see ra_keep) */
	uint16_t ra_off, ra_len;
	bool ra_tl;         /* the read-ahead bytes are in the thread's buffer */
	bool setup;    /* mbedtls_ssl_setup done (server: once the hello is there) */
	bool done;     /* handshake complete */
	bool full;     /* a certificate was exchanged (not a resumption) */
	bool peer_ok;  /* the peer's certificate verified */
	int sys_errno; /* last socket error */
	char err[96];
};

/* Library set-up: the allocator hook, PSA (once, thread-safe). 0 or -WG_ETLS. */
int tls_lib_init(void);
/* mbedTLS RNG callback over PSA's thread-safe DRBG. */
int tls_rng(void *ctx, unsigned char *out, size_t len);
/* Short text of an mbedTLS error code, into buf. */
const char *tls_strerror(int ret, char *buf, size_t size);

/* Parses a PEM chain (leaf first) and its key into kc, checks they match,
 * collects names and validity. On failure adds a diag entry naming `label`
 * and the field ("tls.crt" / "tls.key") and returns -EINVAL. */
int tls_keycert_load(struct tls_keycert *kc, const char *cert_pem, const char *key_pem,
		     const char *label, struct diag *d);
void tls_keycert_fini(struct tls_keycert *kc);
/* Settings shared by server and client configurations: RNG, versions,
 * suites in the preferred order, groups, signature algorithms, ALPN
 * (borrowed, must outlive conf). 0 or -EINVAL. */
int tls_conf_common(mbedtls_ssl_config *conf, bool tls13_only, const int *suites,
		    const char **alpn);
/* The suite list for a preference (AEAD, ECDHE only; static). */
const int *tls_suites(enum tls_cipher_pref pref);
/* Copies a NULL-terminated ALPN list into one allocation (caller frees);
 * NULL when empty or invalid (invalid adds a diag entry). */
const char **tls_alpn_dup(const char *const *alpn, const char *label, struct diag *d);

/* Client connection set-up (name, SNI, verify callback, cached session);
 * 0 or -ENOMEM. */
int tls_client_conn_setup(struct tls_client *cl, struct tls_conn *c, const char *server_name);
/* Keeps the connection's session for the next connection to that name. */
void tls_client_session_store(struct tls_conn *c);

/* What the server wants to know from a ClientHello before mbedTLS sees it. */
struct tls_hello {
	bool chacha13; /* TLS_CHACHA20_POLY1305_SHA256 offered */
	int sni_len;   /* > 0, or -WG_ENOTFOUND / -WG_EPROTO (bad name) */
	char sni[256];
};
/* Scans the ClientHello at the start of buf (records reassembled). 1 when
 * complete (h filled), 0 when more bytes are needed, -WG_EPROTO when not a
 * ClientHello, -WG_ELIMIT when over 16 KiB, -ENOMEM. Allocates only for a
 * hello spread over several records. */
int tls_hello_scan(const void *buf, size_t len, struct tls_hello *h);

/* Parses PEM certificates into chain (appending). 0, or -EINVAL with a diag. */
int tls_ca_load(mbedtls_x509_crt *chain, const char *pem, const char *label, const char *field,
		struct diag *d);
/* The process-wide system trust store, parsed on first use; NULL if missing. */
mbedtls_x509_crt *tls_system_cas(void);
/* Converts an X.509 time to seconds since the epoch. */
int64_t tls_x509_time(const mbedtls_x509_time *t);

/* Host name matching (RFC 6125, as browsers do): case-insensitive, a
 * trailing dot ignored, "*." only as the whole leftmost label of pattern and
 * matching exactly one non-empty label. */
bool tls_name_match(const char *pattern, size_t plen, const char *host, size_t hlen);
/* Parses an IPv4/IPv6 literal into out (4 or 16 bytes); 0 if not one. */
size_t tls_parse_ip(const char *s, uint8_t out[16]);
/* Whether crt's subjectAltNames hold the DNS name / IP / URI. */
bool tls_crt_has_dns(const mbedtls_x509_crt *crt, const char *host);
bool tls_crt_has_ip(const mbedtls_x509_crt *crt, const uint8_t *ip, size_t ip_len);
bool tls_crt_has_uri(const mbedtls_x509_crt *crt, const char *uri);

/* Certificate writer (ECDSA P-256 or RSA keys, SHA-256 signatures). */
enum tls_key_type { TLS_KEY_EC_P256 = 0, TLS_KEY_RSA2048 };
struct tls_gen_req {
	const char *cn;
	const char *const *sans; /* DNS names, IP literals, URIs (with "://") */
	size_t n_sans;
	int64_t not_before; /* seconds since the epoch */
	int64_t not_after;
	bool is_ca;
	enum tls_key_type key_type;
	const char *issuer_cert_pem; /* NULL = self-signed */
	const char *issuer_key_pem;
};
/* Generates a key and a certificate for it. PEM strings, caller frees (the
 * key with tls_free_secret). 0 or negative. */
int tls_gen_cert(const struct tls_gen_req *r, char **cert_pem, char **key_pem);

#endif
