/* SPDX-License-Identifier: MIT */
/*
 * run.h: the state of `waygate run`'s control thread, shared by run.c
 * (sources, reconcile, serving, signals) and run_ui.c (the bridge the UI
 * thread uses to reach that state). Private to cli/.
 */
#ifndef WG_CLI_RUN_H
#define WG_CLI_RUN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/loop.h"

#define MAX_NAMESPACES 64

struct gw_image_cache;
struct gw_objset;
struct kube_config;
struct kube_local_cache;
struct kube_watch;
struct proxy;
struct snapshot;
struct store;
struct ui;

struct run_opts {
	const char *kubeconfig;
	const char *context;
	const char *config_path;
	const char *controller_name;
	const char *state_dir;
	const char *address_pool;
	const char *ui_listen;  /* "off" disables the UI */
	const char *access_log; /* path, "-" for stderr, NULL for none */
	const char *limits_path; /* --limits, NULL: the default file when present */
	const char *user;        /* --user; NULL: the board's; "": stay as started */
	const char *namespaces[MAX_NAMESPACES + 1];
	size_t n_namespaces;
	unsigned workers;
	uint32_t drain_ms;
	uint64_t access_log_max; /* rotate past this many bytes; 0 = never */
	bool via_off;            /* --via off: no Via field on forwarded messages */
};

struct runner {
	struct run_opts o;
	/* Local mode's folder: --config, or where a switch back from cluster
	 * mode reads from. */
	const char *local_path;
	struct loop *loop;
	struct gw_objset *set;
	/* The last reconcile of the live set, kept so that the next one
	 * re-derives only the routes that changed (NULL until the first). */
	struct gw_incr *incr;
	/* The last image's rules, so that the next image encodes only the
	 * rules that changed (NULL until the first; see snapimage.h). */
	struct gw_image_cache *image_cache;
	struct proxy *proxy;
	struct store *store;
	struct ui *ui;
	struct kube_config *kcfg; /* cluster mode, else NULL */
	struct kube_watch *kw;    /* cluster mode, else NULL */
	/* Local mode: what each YAML document gave at the last load. */
	struct kube_local_cache *local_cache;
	char *kubeconfig_path;    /* the file kcfg came from (owned) */
	struct loop_io sig_io;
	int sig_fd;
	struct timer reconcile_timer;
	struct timer health_timer;
	struct timer access_log_timer;
	int access_log_fd; /* -1 when there is no access log */
	/* enum tls_cipher_pref: the board's, for every TLS listener this box
	 * serves (the data plane's and the UI's) */
	int cipher_pref;
	const char *pending_source;  /* source of the change waiting to be reconciled */
	uint64_t reconciled_version; /* objset version last reconciled */
	uint64_t reconciled_at_ms;   /* monotonic end of the last debounced reconcile */
	uint64_t pending_since_ms;   /* monotonic time the waiting change was scheduled */
	uint64_t reconcile_cost_ms;  /* how long the last debounced reconcile took */
	bool reconciled_routes;      /* the last reconcile re-derived only changed routes */
	uint64_t problems_hash;      /* of the last logged diagnostics, to log changes once */
	uint64_t served_hash;        /* of the live snapshot last committed and served */
	/* The snapshot being served; one reference held here (read by the UI
	 * under run_ui.c's lock). */
	struct snapshot *current;
	uint64_t serving_revision;
	bool serving_pinned;
	/* Gateway -> address, carried from one reconcile to the next. */
	char **prev_gateways;
	char **prev_addresses;
	size_t n_prev;
};

/*
 * How long a change waits before it is reconciled, given when the last
 * reconcile ended (monotonic ms), what it cost and the time now: a change
 * right after a reconcile waits until as much time as that reconcile took
 * has passed (at most max_ms), so a burst (a relist, our own status writes
 * coming back) is gathered into few reconciles and the control thread
 * spends at most about half its time reconciling, while after a cheap
 * reconcile (one route re-derived) a change is not held back for long.
 */
static inline uint64_t run_reconcile_delay(uint64_t ended_ms, uint64_t cost_ms, uint64_t now_ms,
					   uint64_t max_ms)
{
	uint64_t hold = cost_ms < max_ms ? cost_ms : max_ms;
	uint64_t since = now_ms - ended_ms;

	return since >= hold ? 0 : hold - since;
}

/* run.c, control thread. */
void run_reconcile_and_serve(struct runner *r, const char *source);
int run_serve_stored(struct runner *r, uint64_t rev);
/* Switches the source: cluster mode with the kubeconfig at path, or local
 * mode on r->local_path. 0, or negative with a reason in msg. */
int run_use_cluster(struct runner *r, const char *path, char *msg, size_t msgsz);
int run_use_local(struct runner *r, char *msg, size_t msgsz);

/* run_ui.c: the UI bridge. */
struct ui *run_ui_start(struct runner *r);
/* Control thread, after its loop stopped and before ui_stop(): fails any
 * request the UI thread is still waiting for, and refuses new ones. */
void run_ui_shutdown(void);
/* Swaps the served snapshot under the UI's lock (takes snap's reference,
 * drops the old one). */
void run_set_current(struct runner *r, struct snapshot *snap);
/* Control thread: refreshes the health copy the UI reads. */
void run_ui_refresh(struct runner *r);

#endif
