/* SPDX-License-Identifier: MIT */
/*
 * ui.h: the box owner's web UI, its JSON API under /api/ and /metrics.
 *
 * ui_start() starts one UI thread. It accepts HTTPS on cfg->listen with
 * waygate's own TLS (a self-signed certificate generated on first start and
 * kept in the state dir, or one the owner uploaded), and hands the plaintext
 * to libmicrohttpd over a socketpair. It opens its own store connection
 * (store_open_reader: SQLite WAL) for reads and for the UI's own writes
 * (sessions, password, traffic rollups, audit entries). Everything
 * the control thread owns (the snapshot, counters, cluster health, pinning,
 * kubeconfig changes) is reached only through the callbacks below, which
 * run on the UI's threads (libmicrohttpd's, and for get_stats also the UI's
 * I/O thread once a second) and must be thread-safe; they may block
 * briefly (a kubeconfig connection test), during which the UI answers no
 * one else.
 *
 * On success ui_start() logs `ui listening on https://ADDR:PORT` (a contract
 * read by tests) and, when the store holds no password yet, generates one,
 * stores its hash and prints it once (the only secret ever printed).
 */
#ifndef WG_UI_UI_H
#define WG_UI_UI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/diag.h"

struct snapshot;
struct ui;

enum ui_mode { UI_MODE_LOCAL = 0, UI_MODE_CLUSTER };

/* Data-plane counters, a copy of proxy/proxy.h's struct proxy_stats (ui/
 * may not include proxy/proxy.h); the control thread's callback copies. */
#define UI_LATENCY_BUCKETS 12
#define UI_MAX_PORTS 64
struct ui_stats {
	uint64_t requests;
	uint64_t responses_by_class[6]; /* index = status / 100 (0 = none) */
	uint64_t bytes_in, bytes_out;
	uint64_t upstream_errors;
	uint64_t active_connections;
	uint64_t total_connections;
	/* bucket upper bounds in ms: 1,5,10,25,50,100,250,500,1000,2500,5000,+Inf
	 * (non-cumulative counts per bucket) */
	uint64_t latency_buckets[UI_LATENCY_BUCKETS];
	uint64_t latency_sum_us;
	/* client connections open now per listener port */
	struct {
		uint16_t port;
		uint32_t active;
	} ports[UI_MAX_PORTS];
	size_t n_ports;
};

/* Counters of one route rule, a copy of proxy/proxy.h's struct
 * proxy_route_stats (optional callback). A rule keeps its id, and its
 * counts, across snapshots while waygate runs. */
#define UI_ROUTE_LATENCY_BUCKETS 6
struct ui_route_stats {
	uint32_t id;                    /* stable, 1-based */
	const char *route;              /* "ns/name"; borrowed, valid until ui_stop() returns */
	uint32_t rule;                  /* rule index in the route */
	uint64_t requests;              /* routed to the rule; minus responses = in flight */
	uint64_t responses_by_class[6]; /* index = status / 100 (0 = none) */
	uint64_t bytes_in, bytes_out;
	/* non-cumulative, upper bounds in ms: 5, 25, 100, 500, 2500, +Inf */
	uint64_t latency_buckets[UI_ROUTE_LATENCY_BUCKETS];
	uint64_t latency_sum_us;
	uint64_t upstream_errors; /* failed attempts at a backend, retried or not */
};

/* One watch of the cluster (a resource, in one namespace or all). */
struct ui_watch {
	char resource[48]; /* "httproutes" */
	char ns[64];       /* "" = all namespaces */
	char state[16];    /* "waiting", "listing", "watching", "backoff", "absent" */
	bool synced;       /* listed completely at least once */
	bool up;           /* a watch stream is open and answering */
	uint64_t last_event_ms; /* wall clock of the last list or event, 0 = never */
	char resource_version[64];
	uint64_t lists, events, relists, errors;
	char last_error[120]; /* "" when healthy; never secrets */
};

#define UI_MAX_WATCHES 64
struct ui_cluster {
	enum ui_mode mode;
	char server[256];      /* API server URL (cluster mode) */
	char context[128];     /* kubeconfig context */
	char config_path[256]; /* local mode: the --config path */
	bool connected;
	bool insecure;         /* insecure-skip-tls-verify is set */
	uint64_t last_sync_ms; /* wall clock of the last successful sync, 0 = never */
	struct ui_watch watches[UI_MAX_WATCHES];
	size_t n_watches;       /* filled in, at most UI_MAX_WATCHES */
	size_t n_watches_total; /* there are (more with many --namespace) */
	char last_error[256];
	uint64_t serving_revision;
	bool pinned; /* serving_revision is pinned by the owner */
};

/* Callbacks into the control thread. arg is ui_config.cb_arg. Each is
 * called on a UI thread (see above); a NULL callback makes its feature
 * answer 501 (get_snapshot, get_stats, get_route_stats and get_cluster:
 * empty figures instead). */
struct ui_callbacks {
	/* The snapshot being served with one reference taken (snap_ref) for the
	 * UI, which drops it with snap_unref; NULL when nothing is served. */
	struct snapshot *(*get_snapshot)(void *arg);
	void (*get_stats)(void *arg, struct ui_stats *out);
	/* The rules of the served snapshot: fills up to max entries and
	 * returns how many there are (more than max: call again with room). */
	size_t (*get_route_stats)(void *arg, struct ui_route_stats *out, size_t max);
	void (*get_cluster)(void *arg, struct ui_cluster *out);
	/* Pins revision rev (serves it and keeps serving it) or, with rev 0,
	 * unpins (serves the newest again). 0, or negative with a message for
	 * the owner in msg (no secrets). */
	int (*pin_revision)(void *arg, uint64_t rev, char *msg, size_t msgsz);
	/* Validates a kubeconfig (len bytes of YAML, context NULL = current),
	 * tests the connection, and on success saves and switches to it.
	 * 0, or negative with the reason in msg (naming the key, never its
	 * value). */
	int (*apply_kubeconfig)(void *arg, const char *yaml, size_t len, const char *context,
				char *msg, size_t msgsz);
	/* Switches between cluster and local mode. 0 or negative + msg. */
	int (*set_mode)(void *arg, enum ui_mode mode, char *msg, size_t msgsz);
};

struct ui_config {
	const char *listen;    /* "ADDR:PORT", "[v6]:PORT"; port 0 picks one */
	const char *state_dir; /* store, UI certificate, metrics token */
	/* Extra names accepted in the Host header besides the listen address,
	 * localhost, the box's host name and addresses; NULL-terminated or
	 * NULL. */
	const char *const *allowed_hosts;
	const char *version;     /* shown on the overview */
	const char *board;       /* board profile name, may be NULL */
	uint32_t session_idle_s; /* 0 = 1800 */
	/* enum tls_cipher_pref (tls/tls.h): the board's preference, the same
	 * value the data plane's listeners are built with (proxy_config) */
	int cipher_pref;
	struct ui_callbacks cb;
	void *cb_arg;
};

/* Starts the UI thread. NULL with entries in d on failure (listen address,
 * certificate, store). Called once, from the control thread. */
struct ui *ui_start(const struct ui_config *cfg, struct diag *d);
/* The port actually bound (useful with port 0). */
uint16_t ui_port(const struct ui *ui);
/* Stops the thread, closes every connection, frees everything. NULL ok. */
void ui_stop(struct ui *ui);

#endif
