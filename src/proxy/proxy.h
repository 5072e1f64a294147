/* SPDX-License-Identifier: MIT */
/*
 * proxy.h: the data plane. N worker threads, each with its own event loop,
 * its own SO_REUSEPORT listening sockets, connections and upstream pools.
 * The control thread publishes compiled snapshots; workers pick the newest
 * up through one atomic pointer; in-flight requests finish on the snapshot
 * they started with. A publish opens only the sockets that are new and
 * closes only those no longer used.
 */
#ifndef WG_PROXY_PROXY_H
#define WG_PROXY_PROXY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/diag.h"

struct snapshot;
struct proxy;

/*
 * What a client may cost. Zero fields take the defaults noted here; the
 * caps take UINT32_MAX / UINT64_MAX for "none". Connection caps count the
 * whole box (all workers); an IPv6 client address counts by its /64.
 */
struct proxy_limits {
	uint32_t max_head_bytes;       /* 16 KiB → 431 */
	uint32_t max_request_line;     /* 8 KiB → 414 */
	uint32_t max_header_fields;    /* 100 → 431 */
	uint32_t head_timeout_ms;      /* 10 s → 408 */
	uint32_t body_idle_timeout_ms; /* 30 s → 408 */
	uint32_t keepalive_timeout_ms; /* 75 s */
	uint32_t connect_timeout_ms;   /* 5 s → 503 */
	uint32_t route_timeout_ms;     /* 15 s → 504, unless the route says otherwise */
	uint64_t max_body_bytes;       /* 64 MiB → 413 */
	uint32_t max_connections;      /* 16384 (the box) or none (a listener) → 503 / close */
	uint32_t max_conns_per_client; /* 256 per client address → 503 / close */
};

/* One listener port's own limits: non-zero fields override the box's. */
struct proxy_port_limits {
	uint16_t port;
	struct proxy_limits limits;
};

struct proxy_config {
	unsigned workers;           /* 0 = one per online CPU */
	struct proxy_limits limits; /* the box's (board, then local configuration) */
	const struct proxy_port_limits *port_limits; /* borrowed; copied by proxy_new */
	size_t n_port_limits;
	int access_log_fd; /* -1 = no access log */
	int cipher_pref;   /* enum tls_cipher_pref */
	bool via_disabled; /* no Via field on forwarded messages */
};

/* Called on the control thread. NULL on failure (message logged). */
struct proxy *proxy_new(const struct proxy_config *cfg);
/* Starts the worker threads (no sockets until the first publish). */
int proxy_start(struct proxy *p);
/*
 * Takes one reference to snap and makes it current: opens the snapshot's
 * sockets that are not open yet in every worker, closes the ones it no
 * longer has, builds TLS contexts (reusing unchanged ones) and swaps the
 * pointer. Sockets that fail to bind are reported in d (naming address,
 * port and listener) and left out; the rest is served. 0 or negative.
 */
int proxy_publish(struct proxy *p, struct snapshot *snap, struct diag *d);
/* Stops accepting, lets in-flight requests finish up to deadline_ms, then
 * stops the workers. */
void proxy_drain(struct proxy *p, uint32_t deadline_ms);
void proxy_free(struct proxy *p);

/* Counters for the UI and /metrics, summed over workers (relaxed reads). */
struct proxy_stats {
	uint64_t requests;
	uint64_t responses_by_class[6]; /* index = status / 100 (0 = none) */
	uint64_t bytes_in, bytes_out;
	uint64_t upstream_errors;
	uint64_t active_connections;
	uint64_t total_connections;
	/* latency histogram buckets in ms: 1,5,10,25,50,100,250,500,1000,2500,5000,+Inf */
	uint64_t latency_buckets[12];
	uint64_t latency_sum_us;
};
void proxy_get_stats(const struct proxy *p, struct proxy_stats *out);

/* Client TCP connections (HTTP and L4) open now per listener port, for as
 * many ports as out holds (in the order the ports were first used). Any
 * thread. */
struct proxy_port_conns {
	uint16_t port;
	uint32_t active;
};
size_t proxy_port_conns(struct proxy *p, struct proxy_port_conns *out, size_t max);

/*
 * Counters of one route rule of the served snapshot, summed over workers.
 * A rule keeps its id, and what was counted, across publishes for the life
 * of the proxy (keyed by route and rule index).
 */
#define PROXY_ROUTE_LAT_BUCKETS 6
struct proxy_route_stats {
	uint32_t id;       /* stable, 1-based */
	const char *route; /* "ns/name"; borrowed, valid until proxy_free */
	uint32_t rule_index;
	uint64_t requests;              /* routed to the rule; minus responses = in flight */
	uint64_t responses_by_class[6]; /* index = status / 100 (0 = none) */
	uint64_t bytes_in, bytes_out;
	/* non-cumulative, upper bounds in ms: 5, 25, 100, 500, 2500, +Inf */
	uint64_t latency_buckets[PROXY_ROUTE_LAT_BUCKETS];
	uint64_t latency_sum_us;
	uint64_t upstream_errors; /* failed attempts at a backend, retried or not */
};
/* Any thread. Fills at most max entries (in id order) and returns how many
 * rules the served snapshot has (call again with more room when larger). */
size_t proxy_route_stats(const struct proxy *p, struct proxy_route_stats *out, size_t max);

#endif
