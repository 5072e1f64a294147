/* SPDX-License-Identifier: MIT */
/*
 * reconcile_int.h: the working state of one reconcile, shared by its files:
 * reconcile.c (driver, indexes, ReferenceGrant), gateway.c (classes,
 * addresses, listeners, ListenerSets, conflicts), route.c (attachment,
 * backends, filters), policy.c (BackendTLSPolicy), build.c (snapshot) and
 * render.c (status JSON). Private to src/gwapi/.
 */
#ifndef WG_GWAPI_RECONCILE_INT_H
#define WG_GWAPI_RECONCILE_INT_H

#include "gwapi/internal.h"
#include "gwapi/reconcile.h"
#include "proxy/snapshot_types.h"

struct rgw;
struct rls;
struct croute;

struct rclass {
	const struct gw_object *obj;
	yyjson_val *status;
	bool accepted;
	const char *reason;
	const char *msg;
};

/* A listener of a Gateway or of a ListenerSet. */
struct rlis {
	const struct gw_listener *l;
	struct rgw *gw; /* the Gateway it is served by */
	struct rls *ls; /* the ListenerSet it belongs to, or NULL */
	int proto;      /* enum snap_proto, -1 when unsupported */
	bool accepted;
	const char *acc_reason;
	const char *acc_msg;
	const char *conflict; /* NULL, "ProtocolConflict" or "HostnameConflict" */
	bool resolved;
	const char *ref_reason;
	const char *ref_msg;
	bool programmed;
	struct gw_group_kind sk[4];
	int n_sk;
	int attached;
	struct snap_cert *certs;
	size_t n_certs;
	enum snap_client_auth client_auth;
	char *client_ca_pem;
	struct gw_vec http;        /* struct pentry * */
	size_t n_sorted;           /* leading http entries in precedence order */
	struct snap_http_rule *built; /* its rules of the last build (c->keep or the
					 arena gw_incr keeps for it), or NULL */
	struct gw_vec tls;         /* struct tentry * */
	struct gw_vec l4;          /* struct croute *, oldest first */
	const struct croute *last; /* last route attached (one attachment per route) */
	struct snap_listener *snap;
	/* What rc_build may change, as the routes saw it (rc_build_again). */
	struct {
		bool accepted, programmed;
		const char *conflict, *acc_reason, *acc_msg;
	} pre;
};

struct rgw {
	struct gw_gateway g;
	const char *key; /* "ns/name" */
	const char *objname;
	struct rclass *cls;
	struct rlis *lis;
	size_t n_lis;
	struct gw_vec sets; /* struct rls *, precedence order */
	bool accepted;
	const char *acc_reason;
	const char *acc_msg;
	bool programmed;
	const char *prog_reason;
	const char *prog_msg;
	bool has_refs_cond;
	bool refs_ok;
	const char *refs_reason;
	const char *refs_msg;
	bool insecure_fallback;
	char addrs[4][48];
	int n_addrs;
	bool addr_unsupported;
	bool addr_unusable;
	bool wants_pool;
	int attached_sets;
	char *be_cert_pem; /* spec.tls.backend.clientCertificateRef, snapshot arena */
	char *be_key_pem;
};

struct rls {
	struct gw_listenerset s;
	const char *key;
	const char *objname;
	struct rgw *gw;
	bool accepted;
	const char *acc_reason;
	const char *acc_msg;
	bool programmed;
	const char *prog_reason;
	struct rlis *lis;
	size_t n_lis;
};

/* A compiled rule of an HTTPRoute or GRPCRoute, shared by every listener it
 * attaches to. */
struct crule {
	char *name;
	struct snap_http_match *matches;
	size_t n_matches;
	struct snap_filter *filters;
	size_t n_filters;
	struct snap_backend *backends;
	size_t n_backends;
	uint32_t req_timeout_ms;
	uint32_t be_timeout_ms;
	struct snap_retry retry;
	bool invalid; /* unsupported value: the rule answers 500 */
};

struct rparent {
	bool ours;
	struct gw_conds conds;
};

struct croute {
	struct gw_route r;
	char *key; /* "ns/name" in the snapshot arena */
	const char *objname;
	struct crule *rules;
	bool compiled;
	bool refs_ok;
	const char *ref_reason;
	const char *ref_msg;
	int n_invalid_rules;
	const char *invalid_msg;
	struct rparent *parents;
	struct snap_backend *l4_backends;
	size_t n_l4_backends;
	struct gw_vec policies; /* struct rpolicy * its backends use */
	struct gw_vec counted;  /* struct rlis * counting it in attachedRoutes */
};

/* One match of one rule attached to one listener with one hostname. */
struct pentry {
	struct croute *cr;
	uint32_t rule;
	uint32_t match;
	const char *host; /* NULL = any */
	/* precedence keys, filled in by build.c before sorting */
	uint8_t host_class; /* 0 exact, 1 wildcard, 2 any */
	uint8_t path_rank;  /* 0 Exact, 1 RegularExpression, 2 PathPrefix */
	uint32_t host_len;
	uint32_t path_len;
	/* 1 + its index in its listener's rules of the last build (0: none):
	 * an incremental build copies that rule instead of making it again */
	uint32_t built;
};

struct tentry {
	struct croute *cr;
	const char **hosts;
	size_t n_hosts;
};

struct rpolicy {
	struct gw_btlspolicy p;
	const char *objname;
	bool accepted;
	const char *acc_reason;
	const char *acc_msg;
	bool resolved;
	const char *ref_reason;
	const char *ref_msg;
	struct snap_backend_tls *tls; /* snapshot arena; NULL when invalid */
	struct gw_vec ancestors;      /* struct rgw * */
	struct gw_vec shadowed;       /* newer policies it wins a conflict against */
};

struct rctx {
	struct gw_objset *set;
	const struct gw_options *opts;
	struct arena *a;  /* scratch */
	struct arena *sa; /* snapshot */
	struct arena *ra; /* one status document at a time (render.c) */
	/* Where what a later incremental snapshot may share goes (compiled
	 * routes, rule hostnames): the whole pass's snapshot arena. */
	struct arena *keep;
	struct snap_backend *bad; /* the backend of invalid rules, in keep */
	struct snapshot *snap;
	struct diag diag;
	struct gw_pool pool;
	int err;                    /* sticky -ENOMEM */
	struct gw_map namespaces;   /* name -> struct gw_namespace */
	struct gw_map slices;       /* "ns/service" -> struct gw_vec of gw_endpointslice */
	struct gw_map grants;       /* target ns -> struct gw_vec of gw_refgrant */
	struct gw_map services;     /* "ns/name" -> gw_service (lazy) */
	struct gw_map gateways;     /* "ns/name" -> rgw */
	struct gw_map listenersets; /* "ns/name" -> rls */
	struct gw_map class_map;    /* name -> rclass */
	struct gw_map policies;     /* "ns/service" -> struct gw_vec of rpolicy */
	struct gw_map epcache;      /* "ns/service:port" -> struct epcache */
	struct gw_map addr_taken;   /* address -> rgw */
	struct rclass *classes;
	size_t n_classes;
	struct rgw **gws;
	size_t n_gws;
	struct rls **lss;
	size_t n_lss;
	struct rpolicy **pols;
	size_t n_pols;
	struct croute **routes[GW_RT_COUNT]; /* decoded ones, oldest first */
	size_t n_routes[GW_RT_COUNT];
	/* By position in gw_objset_list (NULL: did not decode), for gw_incr. */
	struct croute **listed[GW_RT_COUNT];
	size_t n_listed[GW_RT_COUNT];
};

char *rc_printf(struct rctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
char *rc_sdup(struct rctx *c, const char *s);
/* x, sep, y concatenated in arena a (scratch or snapshot); NULL on ENOMEM. */
char *rc_cat(struct rctx *c, struct arena *a, const char *x, char sep, const char *y);
void *rc_salloc(struct rctx *c, size_t n, size_t size);
void *rc_alloc(struct rctx *c, size_t n, size_t size);
const char *rc_objname(struct rctx *c, const struct gw_object *o);
int rc_age_cmp(const struct gw_object *a, const struct gw_object *b);
const struct gw_service *rc_service(struct rctx *c, const char *ns, const char *name);
bool rc_ns_allowed(struct rctx *c, enum gw_from from, const struct gw_selector *sel,
		   const char *owner_ns, const char *ns);
bool rc_grant_allows(struct rctx *c, const char *from_group, const char *from_kind,
		     const char *from_ns, const char *to_group, const char *to_kind,
		     const char *to_ns, const char *to_name);
/* Whether o's spec refers to a Secret or ConfigMap ns/name. */
bool rc_object_refers(const struct gw_object *o, const char *kind, const char *ns,
		      const char *name);
/* PEM sanity checks (gwapi does not parse X.509; tls/ does when loading). */
bool rc_pem_has_cert(const char *pem);
bool rc_pem_has_key(const char *pem);

/* The whole pass into c; c->a (scratch) and, unless out->snap holds it,
 * c->sa are left to the caller (gw_reconcile frees them, gw_incr keeps
 * them), and so is c->diag. */
int rc_whole(struct rctx *c, struct gw_objset *set, const struct gw_options *opts,
	     struct gw_result *out);
int rc_gateways(struct rctx *c);
int rc_policies(struct rctx *c);
int rc_routes(struct rctx *c);
/* One route on its own (incremental reconcile; rc_routes runs them all):
 * decode (NULL when it does not decode, or ENOMEM in c->err), compile and
 * attach to its parents, and undo the attachment of an HTTPRoute or
 * GRPCRoute (its rules and its attachedRoutes counts; not its policies). */
struct croute *rc_route_decode(struct rctx *c, const struct gw_object *o);
int rc_route_attach(struct rctx *c, struct croute *cr);
void rc_route_detach(struct croute *cr);
int rc_build(struct rctx *c);
/* Puts every listener back as rc_build found it, so that routes attach and
 * rc_build runs again as in the first pass (incremental reconcile). */
void rc_build_again(struct rctx *c);
int rc_render(struct rctx *c, struct gw_result *out);
/* rc_render with only the routes in v (n of them): what an incremental
 * reconcile re-derived. */
int rc_render_some(struct rctx *c, struct gw_result *out, struct croute *const *v, size_t n);
/* The BackendTLSPolicy that applies to a Service port (NULL = none). */
struct rpolicy *rc_policy_for(struct rctx *c, const char *ns, const char *svc,
			      const char *port_name);
/* Records g as an ancestor of p (once). */
void rc_policy_ancestor(struct rctx *c, struct rpolicy *p, struct rgw *g);

#endif
