/* SPDX-License-Identifier: MIT */
/*
 * reconcile.h: the heart of waygate. A pure function from the object set to
 * (a compiled snapshot, the status every object should have, diagnostics).
 * No sockets, no clock beyond opts->now_ms, no globals: the same input gives
 * the same output, so most Gateway API rules are unit-tested here.
 * Runs on the control thread (and in `waygate check`).
 */
#ifndef WG_GWAPI_RECONCILE_H
#define WG_GWAPI_RECONCILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/diag.h"
#include "gwapi/objset.h"

struct snapshot;

struct gw_options {
	const char *controller_name; /* GatewayClass controllerName we own */
	const char *address_pool;    /* CIDR, or NULL: Gateways bind the wildcard address */
	uint64_t now_ms;             /* wall clock for lastTransitionTime */
	/* Address already given to each Gateway ("ns/name" -> address), so an
	 * allocation is stable across reconciles; may be NULL. Reconcile also
	 * reuses an address found in a Gateway's own status.addresses. */
	const char *const *prev_gateways;
	const char *const *prev_addresses;
	size_t n_prev;
	/* Features written to GatewayClass status.supportedFeatures (sorted
	 * names as in the Gateway API's features list); NULL-terminated. */
	const char *const *supported_features;
	/* The caller writes no status (local mode, a restore): no statuses
	 * are rendered; the snapshot, diagnostics and addresses are the same.
	 * Rendering 10,000 route statuses is a third of a reconcile. */
	bool skip_statuses;
};

/*
 * The status one object should have, as JSON text of its `status` field.
 * For routes the text is {"parents":[...]} holding only the entries whose
 * controllerName is ours; for BackendTLSPolicy {"ancestors":[...]} likewise;
 * the status writer merges them with entries other controllers own. For
 * GatewayClass, Gateway and ListenerSet it is the whole status.
 * lastTransitionTime values are carried over from the object's current
 * status when a condition's status, reason and observedGeneration did not
 * change, so equal input gives byte-equal output.
 */
struct gw_status {
	enum gw_kind kind;
	char *ns;
	char *name;
	char *resource_version; /* of the object reconciled */
	int64_t generation;
	char *status_json;
};

struct gw_result {
	struct snapshot *snap; /* refs = 1; the caller owns that reference */
	struct gw_status *statuses;
	size_t n_statuses;
	/* Gateway -> address it was given (parallel arrays, for the next run's
	 * prev_gateways/prev_addresses). */
	char **gateways;
	char **addresses;
	size_t n_gateways;
	struct diag diag; /* problems found, named by object and field */
	/* gw_reconcile_incr re-derived only n_rederived changed routes:
	 * statuses then hold the routes that changed (those that still have
	 * one) and every GatewayClass, Gateway, ListenerSet and policy; the
	 * other routes' statuses are as the previous result gave them. */
	bool incremental;
	size_t n_rederived;
};

/* 0 on success (even with problems reported in statuses and diag), or a
 * negative code when the snapshot could not be built at all (-ENOMEM). */
int gw_reconcile(struct gw_objset *set, const struct gw_options *opts, struct gw_result *out);
void gw_result_fini(struct gw_result *r);

/*
 * Incremental reconcile: the same result as gw_reconcile for the same set
 * and options, at the cost of what changed since the last call when that
 * is only HTTPRoutes and GRPCRoutes (see incr.c; anything else takes the
 * whole pass). The state keeps a reference on every object it saw, so the
 * set may be replaced or changed freely between calls. The snapshot may
 * borrow memory from an earlier one (struct snapshot.shared).
 */
struct gw_incr;
struct gw_incr *gw_incr_new(void);
void gw_incr_free(struct gw_incr *s);
int gw_reconcile_incr(struct gw_incr *s, struct gw_objset *set, const struct gw_options *opts,
		      struct gw_result *out);

/* True when a Secret or ConfigMap is referenced by some Gateway listener,
 * BackendTLSPolicy or Gateway backend TLS config in the set: the watch
 * client keeps only those in memory. */
bool gw_is_referenced(const struct gw_objset *set, enum gw_kind kind, const char *ns,
		      const char *name);

/* The snapshot as JSON text (listeners, rules, backends; never key
 * material): what the store keeps beside a revision, what `waygate routes`
 * prints and what the UI shows. Caller frees. NULL on ENOMEM. */
char *gw_snapshot_to_json(const struct snapshot *snap);

#endif
