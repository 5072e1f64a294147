/* SPDX-License-Identifier: MIT */
/*
 * kube.h: waygate's Kubernetes client, the public API of kube/.
 *
 *  - kube_config_*: a kubeconfig read with libyaml (clusters, users,
 *    contexts; token, tokenFile, client certificates, exec plugins, CA,
 *    tls-server-name, insecure-skip-tls-verify, proxy-url).
 *  - kube_watch_*: one reflector per Gateway API / core resource waygate
 *    needs, each listing in pages and then watching, feeding a gw_objset.
 *    Everything runs non-blocking on the loop given (the control thread's).
 *  - kube_status_submit: status write-back (read-modify-write on /status).
 *  - kube_infra_submit: one headless Service per Gateway of ours, standing
 *    for the edge box in the cluster (GatewayInfrastructurePropagation).
 *  - kube_load_local: local mode, YAML manifests from a file or a folder.
 *  - kube_convert: the `waygate convert` transformation of
 *    networking.x-k8s.io/v1alpha1 manifests into gateway.networking.k8s.io/v1.
 *
 * Secrets and ConfigMaps in cluster mode: Secrets of types waygate never
 * uses (helm.sh/release.v1, kubernetes.io/service-account-token) are left
 * out by a field selector, and both are listed in small pages (they may be
 * 1 MiB each), after the Gateways, ListenerSets and BackendTLSPolicies that
 * reference them have been listed. Every one the watches see is kept
 * in a small index (namespace, name, resourceVersion, no data); only those
 * gw_is_referenced() names are kept in the object set with their data. When
 * a reference appears later (a Gateway now names a Secret), the watch client
 * fetches that object with a GET; when a reference goes away the object
 * leaves the set. So the memory held for Secrets is proportional to what
 * Gateways and BackendTLSPolicies use, not to the cluster's Secrets.
 */
#ifndef WG_KUBE_KUBE_H
#define WG_KUBE_KUBE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "core/diag.h"
#include "gwapi/objset.h"
#include "gwapi/reconcile.h"

struct loop;
struct kube_config;
struct kube_watch;

/* ---- kubeconfig ------------------------------------------------------ */

/*
 * Reads the kubeconfig at path and selects context (NULL = current-context).
 * Relative file paths in it are resolved against the kubeconfig's folder;
 * certificate, key and CA files are read at once (tokenFile is read when a
 * request is made, and again whenever it changes). Errors go into d, each
 * naming the file, the context and the key; returns 0 or a negative code
 * (-WG_EINVAL_CONFIG for an invalid file, -errno when it cannot be read).
 * *out is owned by the caller (kube_config_free); secrets in it are wiped
 * on free.
 */
int kube_config_load(const char *path, const char *context, struct kube_config **out,
		     struct diag *d);
void kube_config_free(struct kube_config *cfg);

/* Read-only facts for logs and the UI (never secrets). Borrowed strings. */
const char *kube_config_server(const struct kube_config *cfg);    /* "https://host:port" */
const char *kube_config_context(const struct kube_config *cfg);   /* selected context */
const char *kube_config_namespace(const struct kube_config *cfg); /* context namespace or NULL */
bool kube_config_insecure(const struct kube_config *cfg);
/* "token", "tokenFile", "client-certificate", "exec" or "none". */
const char *kube_config_auth_kind(const struct kube_config *cfg);

/* ---- watch ----------------------------------------------------------- */

struct kube_watch_opts {
	const char *user_agent;        /* "waygate/<version>"; NULL = "waygate" */
	const char *const *namespaces; /* NULL-terminated; NULL = cluster-wide */
	const char *controller_name;   /* for status write-back (our parents entries) */
	/* Tunables; 0 = default. */
	uint32_t page_limit;         /* LIST page size (default 500) */
	uint32_t silence_timeout_ms; /* a watch silent this long is reconnected (120000) */
	uint32_t backoff_min_ms;     /* first retry delay (500) */
	uint32_t backoff_max_ms;     /* cap of the exponential backoff (30000) */
	uint32_t recheck_ms;         /* rediscovery of absent resources (60000) */
	uint32_t request_timeout_ms; /* non-watch requests (30000) */
	uint32_t status_rate_per_s;  /* status writes per second (10) */
	uint32_t watch_timeout_s;    /* timeoutSeconds asked of the server (300..600) */
};

/*
 * Creates the watch client. Borrows loop, cfg and set (they outlive the
 * watch); copies opts. on_change(arg) runs on the loop, coalesced (at most
 * once per loop iteration), after the object set changed; a relist notifies
 * once, when the whole list has been applied. NULL on ENOMEM or when the TLS
 * client cannot be built (then an error is logged).
 */
struct kube_watch *kube_watch_new(struct loop *loop, const struct kube_config *cfg,
				  const struct kube_watch_opts *opts, struct gw_objset *set,
				  void (*on_change)(void *arg), void *arg);
/* Starts discovery and the reflectors. 0 or a negative code. */
int kube_watch_start(struct kube_watch *w);
/* Closes every connection, cancels timers, kills a running exec plugin. */
void kube_watch_free(struct kube_watch *w);

/* True once every resource has been listed at least once (absent resources
 * count as listed) and every referenced Secret/ConfigMap has been fetched. */
bool kube_watch_synced(const struct kube_watch *w);

struct kube_health {
	bool connected; /* the last request to the server succeeded */
	bool synced;
	bool insecure;         /* insecure-skip-tls-verify in use */
	const char *server;    /* borrowed from the config */
	const char *context;   /* borrowed from the config */
	uint64_t last_sync_ms; /* wall clock of the last completed list or event, 0 = never */
	uint32_t open_watches;
	uint32_t reflectors;    /* resources being watched (absent ones excluded) */
	uint64_t errors;        /* failed requests since start */
	uint64_t lists;         /* LIST requests made (pages count once per list) */
	uint64_t relists;       /* lists after 410 Gone */
	uint64_t status_writes; /* successful status writes */
	char last_error[160];   /* "" or a short description (never a secret) */
};
void kube_watch_health(const struct kube_watch *w, struct kube_health *out);

/* One reflector (one resource, in one namespace or all), for the UI's
 * watch list and /metrics. Never secrets. */
enum kube_watch_state {
	KUBE_WS_WAITING = 0, /* not started: waiting for discovery or what it references */
	KUBE_WS_LISTING,     /* listing (pages) */
	KUBE_WS_WATCHING,    /* watch stream open or being opened */
	KUBE_WS_BACKOFF,     /* waiting to retry after a failure */
	KUBE_WS_ABSENT,      /* the server does not serve the resource (or forbids it) */
	KUBE_WS_COUNT
};
struct kube_reflector_health {
	const char *resource; /* "httproutes"; static */
	const char *ns;       /* NULL = all namespaces; borrowed until kube_watch_free */
	enum kube_watch_state state;
	bool listed;               /* listed completely at least once */
	bool stream_open;          /* a watch stream is open and answering now */
	uint64_t last_event_ms;    /* wall clock of the last completed list or event, 0 = never */
	char resource_version[64]; /* last seen ("" = a list is needed) */
	uint64_t lists, watches, events;
	uint64_t relists;     /* lists after the watch history expired (410) */
	uint64_t errors;      /* failed list or watch requests, broken streams */
	char last_error[120]; /* "" once a list completed or an event came after it */
};
/* Control thread: fills up to max entries (in discovery order) and returns
 * how many reflectors there are. */
size_t kube_watch_reflectors(const struct kube_watch *w, struct kube_reflector_health *out,
			     size_t max);
/* "waiting", "listing", "watching", "backoff", "absent". */
const char *kube_watch_state_name(enum kube_watch_state st);

/*
 * Status write-back. Copies the n statuses (the caller keeps st). On the
 * loop, each is compared with the status the server has (the object in the
 * set); when different, the object's full status is rebuilt (for routes the
 * parents entries of other controllers are kept and ours replaced; for
 * BackendTLSPolicy likewise the ancestors) and sent as a merge patch on
 * /status with the object's resourceVersion as the precondition; a 409
 * re-reads the object and retries. Writes are
 * rate-limited; a later submit for the same object replaces a queued one;
 * objects no longer in the set are skipped.
 */
void kube_status_submit(struct kube_watch *w, const struct gw_status *st, size_t n);
/* Status writes queued or in flight. */
size_t kube_status_pending(const struct kube_watch *w);

/*
 * Gateway infrastructure propagation. For every Gateway in set whose
 * GatewayClass names our controller, one Service in the Gateway's
 * namespace stands for the edge box: "<gateway>-waygate" (see
 * gwapi/infra.h), headless, no selector, the listener ports, labelled
 * gateway.networking.k8s.io/gateway-name and app.kubernetes.io/managed-by
 * waygate plus spec.infrastructure.labels, annotated with
 * spec.infrastructure.annotations and our controllerName, owned by the
 * Gateway. On the loop, each is created, merge-patched or (when no Gateway
 * of ours wants it) deleted, rate-limited and retried like status writes.
 * Only Services labelled managed-by waygate are changed, and only ours are
 * deleted. Does nothing until the watch is synced. set is the one the watch
 * fills (borrowed for the call).
 */
void kube_infra_submit(struct kube_watch *w, struct gw_objset *set);
/* Service writes queued or in flight. */
size_t kube_infra_pending(const struct kube_watch *w);

/* ---- local mode ------------------------------------------------------- */

/*
 * Loads a YAML file, or every *.yaml / *.yml in a folder (sorted by name,
 * not recursive), multi-document, into set with source "file". Namespaced
 * objects without metadata.namespace go to "default"; every namespace used
 * and not declared gets an implied Namespace object. metadata.generation
 * (1), uid, resourceVersion and creationTimestamp are filled in
 * deterministically when absent (creationTimestamp follows the order of
 * the files and documents, so route precedence is stable). Unknown kinds
 * are reported as warnings and skipped. Errors name file, line and key.
 * Returns 0, or -WG_EINVAL_CONFIG when any error was found (objects that
 * were valid are still in set), or -errno when the path cannot be read.
 */
int kube_load_local(const char *path, struct gw_objset *set, struct diag *d);
/*
 * The same, reusing what unchanged documents gave at the previous load
 * with the same cache (a document is unchanged when its text, its file and
 * the number of documents before it are): only changed documents are
 * parsed. The cache holds references to those objects until the next load
 * or kube_local_cache_free. cache may be NULL (then nothing is kept).
 */
struct kube_local_cache;
struct kube_local_cache *kube_local_cache_new(void);
void kube_local_cache_free(struct kube_local_cache *c);
int kube_load_local_cached(const char *path, struct gw_objset *set, struct diag *d,
			   struct kube_local_cache *cache);

/* ---- convert ---------------------------------------------------------- */

/*
 * Converts the networking.x-k8s.io/v1alpha1 manifests in the YAML text
 * (file names it in messages) to gateway.networking.k8s.io/v1 YAML written
 * to out. Objects that are already v1 (or other kinds) are passed through.
 * 0, or -WG_EINVAL_CONFIG with entries in d.
 */
int kube_convert(const char *text, size_t len, const char *file, FILE *out, struct diag *d);

/* ---- debug ------------------------------------------------------------- */

/* `waygate kube-debug`: runs the watch client alone and prints the object
 * set as JSON lines (tests/integration/kube drives it). Exit code as a
 * command's. */
int kube_debug_main(int argc, char **argv);

#endif
