/* SPDX-License-Identifier: MIT */
/*
 * snapshot_types.h: the compiled routing snapshot, plain data only. gwapi/
 * fills it in (reconcile's output); proxy/ serves it; ui/ displays it.
 *
 * Lifetime: every byte of a snapshot lives in snap->arena. Once published
 * (proxy_publish) it is immutable. It is refcounted: the publisher holds one
 * reference, each worker that still runs requests against it holds one, and
 * the last snap_unref() (proxy/snapshot.c) frees the arena. Strings are
 * NUL-terminated; arrays travel with their counts; NULL/0 means empty.
 *
 * The shape follows the data path:
 *   snapshot → sockets (one per bound address:port:transport)
 *            → listeners (Gateway listeners sharing that socket)
 *            → HTTP rules / TLS routes / L4 backends
 *            → backends (Service ports resolved to ready endpoints)
 */
#ifndef WG_PROXY_SNAPSHOT_TYPES_H
#define WG_PROXY_SNAPSHOT_TYPES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct arena;

/* -------- backends -------- */

enum snap_app_proto {
	SNAP_APP_HTTP1 = 0, /* default */
	SNAP_APP_H2C,       /* appProtocol kubernetes.io/h2c */
	SNAP_APP_WS,        /* appProtocol kubernetes.io/ws */
	SNAP_APP_H2,        /* HTTP/2 over TLS (BackendTLSPolicy + h2 ALPN) */
};

struct snap_endpoint {
	char addr[48]; /* numeric IPv4 or IPv6 */
	uint16_t port;
};

/* BackendTLSPolicy applied to a backend (upstream TLS). */
struct snap_backend_tls {
	char *sni;    /* validation.hostname */
	char *ca_pem; /* concatenated PEM CAs; NULL = system well-known CAs */
	bool use_system_cas;
	char **sans; /* subjectAltNames to accept (hostnames or URIs); empty = sni */
	size_t n_sans;
	char *client_cert_pem; /* Gateway spec.tls.backend.clientCertificateRef */
	char *client_key_pem;
};

struct snap_header {
	char *name;
	char *value;
};

/* RequestHeaderModifier / ResponseHeaderModifier. */
struct snap_header_mod {
	struct snap_header *set;
	size_t n_set;
	struct snap_header *add;
	size_t n_add;
	char **remove;
	size_t n_remove;
};

enum snap_filter_type {
	SNAP_F_REQ_HEADER = 0,
	SNAP_F_RESP_HEADER,
	SNAP_F_REDIRECT,
	SNAP_F_REWRITE,
	SNAP_F_MIRROR,
	SNAP_F_CORS,
};

enum snap_path_mod { SNAP_PATH_NONE = 0, SNAP_PATH_FULL, SNAP_PATH_PREFIX };

struct snap_redirect {
	char *scheme;   /* NULL = keep */
	char *hostname; /* NULL = keep */
	int port;       /* 0 = derive per spec */
	enum snap_path_mod path_type;
	char *path; /* replaceFullPath or replacePrefixMatch */
	int status; /* 301, 302, 303, 307, 308 */
};

struct snap_rewrite {
	char *hostname; /* NULL = keep */
	enum snap_path_mod path_type;
	char *path;
};

struct snap_backend;

struct snap_mirror {
	struct snap_backend *backend;
	uint32_t numerator; /* mirror numerator/denominator of requests; 100/100 = all */
	uint32_t denominator;
};

struct snap_cors {
	char **allow_origins;
	size_t n_allow_origins;
	bool allow_credentials;
	char **allow_methods;
	size_t n_allow_methods;
	char **allow_headers;
	size_t n_allow_headers;
	char **expose_headers;
	size_t n_expose_headers;
	int max_age_s; /* 0 = default (5) */
};

struct snap_filter {
	enum snap_filter_type type;
	union {
		struct snap_header_mod header; /* REQ_HEADER, RESP_HEADER */
		struct snap_redirect redirect;
		struct snap_rewrite rewrite;
		struct snap_mirror mirror;
		struct snap_cors cors;
	} u;
};

struct snap_backend {
	char *name; /* "ns/service:port" for logs, metrics and the UI */
	uint32_t weight;
	int invalid_status; /* 0 = valid; else answer this (500) instead of proxying */
	enum snap_app_proto proto;
	struct snap_endpoint *endpoints; /* ready endpoints; none → 503 */
	size_t n_endpoints;
	struct snap_backend_tls *tls; /* NULL = plain */
	struct snap_filter *filters;  /* backendRef-level filters */
	size_t n_filters;
};

/* -------- HTTP routing -------- */

enum snap_path_match { SNAP_PM_PREFIX = 0, SNAP_PM_EXACT, SNAP_PM_REGEX };
enum snap_str_match { SNAP_SM_EXACT = 0, SNAP_SM_REGEX };

struct snap_kv_match {
	enum snap_str_match type;
	char *name;  /* header names are lower-case; query names exact */
	char *value; /* exact value or POSIX extended regex */
};

struct snap_http_match {
	enum snap_path_match path_type;
	char *path;   /* "/" for the default prefix match */
	char *method; /* NULL = any */
	struct snap_kv_match *headers;
	size_t n_headers;
	struct snap_kv_match *query;
	size_t n_query;
};

struct snap_retry {
	int *codes;
	size_t n_codes;
	int attempts; /* total retries allowed, 0 = none */
	uint32_t backoff_ms;
};

/*
 * One match of one rule of one route, attached to one listener, with the
 * hostnames that survive intersection with the listener's hostname. The
 * listener's array of these is sorted in the spec's precedence order, so
 * the first entry that matches a request wins.
 */
struct snap_http_rule {
	char *route;     /* "ns/name" of the HTTPRoute or GRPCRoute */
	char *rule_name; /* rules[].name, may be NULL */
	uint32_t rule_index;
	bool grpc;        /* came from a GRPCRoute: errors are gRPC statuses */
	char **hostnames; /* effective hostnames ("*.example.com" allowed); empty = any */
	size_t n_hostnames;
	struct snap_http_match match;
	struct snap_filter *filters;
	size_t n_filters;
	struct snap_backend *backends; /* weighted; empty and no redirect → 500 */
	size_t n_backends;
	uint32_t request_timeout_ms;         /* 0 = listener default */
	uint32_t backend_request_timeout_ms; /* 0 = none beyond request timeout */
	struct snap_retry retry;
};

/* -------- listeners and sockets -------- */

enum snap_proto { SNAP_P_HTTP = 0, SNAP_P_HTTPS, SNAP_P_TLS, SNAP_P_TCP, SNAP_P_UDP };
enum snap_tls_mode { SNAP_TLS_TERMINATE = 0, SNAP_TLS_PASSTHROUGH };

struct snap_cert {
	char *cert_pem; /* chain, leaf first */
	char *key_pem;
	char *name; /* "ns/secret" */
};

enum snap_client_auth { SNAP_CA_NONE = 0, SNAP_CA_REQUIRE, SNAP_CA_ALLOW_INSECURE };

struct snap_tls_route {
	char *route;      /* "ns/name" */
	char **hostnames; /* SNI names ("*.x" allowed); empty = any */
	size_t n_hostnames;
	struct snap_backend *backends;
	size_t n_backends;
};

struct snap_listener {
	char *gateway; /* "ns/name" (or ListenerSet "ns/name") */
	char *name;    /* listener name */
	enum snap_proto proto;
	char *hostname; /* NULL = any */
	/* TLS (HTTPS, TLS terminate) */
	enum snap_tls_mode tls_mode;
	struct snap_cert *certs;
	size_t n_certs;
	enum snap_client_auth client_auth;
	char *client_ca_pem;
	/* HTTP, HTTPS: sorted by precedence */
	struct snap_http_rule *http_rules;
	size_t n_http_rules;
	/* TLS: passthrough or terminate-then-TCP routes by SNI */
	struct snap_tls_route *tls_routes;
	size_t n_tls_routes;
	/* TCP, UDP: backends of the attached route (weighted) */
	char *l4_route;
	struct snap_backend *l4_backends;
	size_t n_l4_backends;
};

enum snap_transport { SNAP_T_TCP = 0, SNAP_T_UDP };

/* One bound socket: every listener that shares address, port and transport.
 * A socket's listeners are all HTTP, all HTTPS/TLS (chosen by SNI), all TCP
 * or all UDP; reconcile marks mixtures as conflicts and leaves them out. */
struct snap_socket {
	char addr[48]; /* "0.0.0.0", "127.0.1.3", "::" */
	uint16_t port;
	enum snap_transport transport;
	struct snap_listener **listeners; /* borrowed from snapshot.listeners */
	size_t n_listeners;
};

struct snapshot {
	uint32_t refs; /* atomic; see snap_ref/snap_unref in proxy/snapshot.h */
	struct arena *arena;
	/* An arena it borrows from, one reference (arena_unref), or NULL:
	 * a snapshot compiled for a few changed routes points at the other
	 * routes' compiled rules in the last whole compile's arena. */
	struct arena *shared;
	uint64_t revision;    /* store revision it was committed as (0 = none yet) */
	uint64_t compiled_ms; /* wall clock when compiled */
	struct snap_listener *listeners;
	size_t n_listeners;
	struct snap_socket *sockets;
	size_t n_sockets;
};

#endif
