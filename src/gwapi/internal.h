/* SPDX-License-Identifier: MIT */
/*
 * internal.h: gwapi's private declarations: the typed Gateway API model
 * decoded from the objects' JSON (model.c), small pure helpers (util.c:
 * hostnames, durations, addresses, label selectors, a string map) and the
 * status writer (status.c). Never included outside src/gwapi/ and its tests.
 *
 * Model memory: every model struct lives in the reconcile's scratch arena;
 * strings are borrowed from the objects' parsed documents, which the object
 * set keeps alive for the whole reconcile. Defaults the CRDs declare are
 * filled in at decode time, so reconcile never sees a missing optional field
 * except where absence has its own meaning (NULL hostname = any).
 */
#ifndef WG_GWAPI_INTERNAL_H
#define WG_GWAPI_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "yyjson.h"

#include "core/arena.h"
#include "core/diag.h"
#include "gwapi/objset.h"

#define GW_GROUP "gateway.networking.k8s.io"

/* -------- string map (arena-backed, open addressing) -------- */

struct gw_map_ent {
	const char *key;
	void *val;
};

struct gw_map {
	struct arena *a;
	struct gw_map_ent *v;
	size_t cap; /* power of two, 0 = empty */
	size_t n;
};

void gw_map_init(struct gw_map *m, struct arena *a);
/* Borrowed key (must outlive the map). 0 or -ENOMEM. Replaces the value. */
int gw_map_put(struct gw_map *m, const char *key, void *val);
void *gw_map_get(const struct gw_map *m, const char *key);
/* Returns the value's slot, inserting NULL for a new key; NULL on ENOMEM. */
void **gw_map_slot(struct gw_map *m, const char *key);

/* A growable array of pointers in an arena (old storage is abandoned). */
struct gw_vec {
	void **v;
	size_t n, cap;
};
int gw_vec_push(struct gw_vec *vec, struct arena *a, void *p);

/* -------- model -------- */

/* A reference to another object, defaults filled in by the decoder. */
struct gw_ref {
	const char *group; /* "" for core */
	const char *kind;
	const char *ns; /* the referrer's namespace when not given */
	const char *name;
	const char *section; /* sectionName, NULL = none */
	int port;            /* 0 = none */
	bool ns_set;         /* namespace was explicit */
	bool port_set;
};

struct gw_kv {
	const char *key;
	const char *value;
};

struct gw_sel_expr {
	const char *key;
	const char *op; /* In, NotIn, Exists, DoesNotExist */
	const char **values;
	size_t n_values;
};

struct gw_selector {
	struct gw_kv *labels;
	size_t n_labels;
	struct gw_sel_expr *exprs;
	size_t n_exprs;
};

enum gw_from { GW_FROM_SAME = 0, GW_FROM_ALL, GW_FROM_SELECTOR, GW_FROM_NONE };

struct gw_group_kind {
	const char *group;
	const char *kind;
};

struct gw_listener {
	const char *name;
	const char *hostname; /* NULL = any */
	int port;
	const char *protocol;
	bool has_tls;
	const char *tls_mode; /* "Terminate" (default) or "Passthrough" */
	struct gw_ref *cert_refs;
	size_t n_cert_refs;
	enum gw_from from;
	struct gw_selector selector;
	struct gw_group_kind *kinds;
	size_t n_kinds;
	bool kinds_set;
	int index;
};

struct gw_frontend_validation {
	struct gw_ref *ca_refs;
	size_t n_ca_refs;
	bool insecure_fallback; /* mode AllowInsecureFallback */
	const char *mode;
};

struct gw_per_port_tls {
	int port;
	struct gw_frontend_validation v;
};

struct gw_address {
	const char *type;  /* default IPAddress */
	const char *value; /* NULL/"" = any from the pool */
};

struct gw_gateway {
	const struct gw_object *obj;
	const char *class_name;
	struct gw_listener *listeners;
	size_t n_listeners;
	struct gw_address *addresses;
	size_t n_addresses;
	bool has_fe_default;
	struct gw_frontend_validation fe_default;
	struct gw_per_port_tls *fe_per_port;
	size_t n_fe_per_port;
	struct gw_ref *backend_client_cert; /* NULL = none */
	struct gw_ref *params;              /* infrastructure.parametersRef */
	enum gw_from allowed_listeners;     /* default None */
	struct gw_selector allowed_listeners_sel;
	yyjson_val *status; /* current status, may be NULL */
};

struct gw_listenerset {
	const struct gw_object *obj;
	struct gw_ref parent;
	struct gw_listener *listeners;
	size_t n_listeners;
	yyjson_val *status;
};

enum gw_route_type { GW_RT_HTTP = 0, GW_RT_GRPC, GW_RT_TLS, GW_RT_TCP, GW_RT_UDP, GW_RT_COUNT };

struct gw_backend_ref {
	struct gw_ref ref;
	int weight;          /* default 1 */
	yyjson_val *filters; /* HTTP/GRPC only, array or NULL */
	uint32_t rule;       /* spec.rules[rule].backendRefs[index], for diagnostics */
	uint32_t index;
};

struct gw_kv_match {
	bool regex; /* RegularExpression, else Exact */
	const char *name;
	const char *value;
};

struct gw_http_match {
	const char *path_type; /* Exact, PathPrefix, RegularExpression; default PathPrefix */
	const char *path;      /* default "/" */
	const char *method;    /* NULL = any */
	struct gw_kv_match *headers;
	size_t n_headers;
	struct gw_kv_match *query;
	size_t n_query;
	/* GRPCRoute method match */
	bool grpc_regex;
	const char *grpc_service; /* NULL = any */
	const char *grpc_method;  /* NULL = any */
};

struct gw_rule {
	const char *name;
	struct gw_http_match *matches;
	size_t n_matches;
	yyjson_val *filters; /* array or NULL */
	struct gw_backend_ref *backends;
	size_t n_backends;
	yyjson_val *timeouts;
	yyjson_val *retry;
};

struct gw_route {
	const struct gw_object *obj;
	enum gw_route_type type;
	const char **hostnames;
	size_t n_hostnames;
	bool hostnames_set; /* spec.hostnames was given (even if every entry was invalid) */
	struct gw_ref *parents;
	size_t n_parents;
	struct gw_rule *rules;
	size_t n_rules;
	yyjson_val *status;
};

struct gw_service_port {
	const char *name; /* "" when unnamed */
	int port;
	const char *target_port; /* as written (number or name) */
	const char *app_protocol;
	const char *protocol;
};

struct gw_service {
	const struct gw_object *obj;
	const char *type;
	const char *external_name;
	struct gw_service_port *ports;
	size_t n_ports;
};

struct gw_slice_port {
	const char *name;
	int port;
	const char *app_protocol;
};

struct gw_slice_endpoint {
	const char **addresses;
	size_t n_addresses;
	bool ready;
};

struct gw_endpointslice {
	const struct gw_object *obj;
	const char *service;
	const char *address_type;
	struct gw_slice_port *ports;
	size_t n_ports;
	struct gw_slice_endpoint *endpoints;
	size_t n_endpoints;
};

struct gw_grant_from {
	const char *group;
	const char *kind;
	const char *ns;
};

struct gw_grant_to {
	const char *group;
	const char *kind;
	const char *name; /* NULL = any */
};

struct gw_refgrant {
	const struct gw_object *obj;
	struct gw_grant_from *from;
	size_t n_from;
	struct gw_grant_to *to;
	size_t n_to;
};

struct gw_san {
	const char *type; /* Hostname or URI */
	const char *value;
};

struct gw_btlspolicy {
	const struct gw_object *obj;
	struct gw_ref *targets; /* group, kind, name, section */
	size_t n_targets;
	struct gw_ref *ca_refs;
	size_t n_ca_refs;
	const char *well_known; /* "System" or NULL */
	const char *hostname;
	struct gw_san *sans;
	size_t n_sans;
	yyjson_val *status;
};

struct gw_namespace {
	const struct gw_object *obj;
	struct gw_kv *labels;
	size_t n_labels;
};

/* Decoders. Each fills *out (zeroed by the caller's arena) from o's JSON and
 * reports invalid values to d naming the object and field; 0, or -EINVAL
 * when the object is unusable as a whole (it is then left out), -ENOMEM. */
int gw_decode_gateway(struct arena *a, const struct gw_object *o, struct diag *d,
		      struct gw_gateway *out);
int gw_decode_listenerset(struct arena *a, const struct gw_object *o, struct diag *d,
			  struct gw_listenerset *out);
int gw_decode_route(struct arena *a, const struct gw_object *o, struct diag *d,
		    struct gw_route *out);
int gw_decode_service(struct arena *a, const struct gw_object *o, struct diag *d,
		      struct gw_service *out);
int gw_decode_endpointslice(struct arena *a, const struct gw_object *o, struct diag *d,
			    struct gw_endpointslice *out);
int gw_decode_refgrant(struct arena *a, const struct gw_object *o, struct diag *d,
		       struct gw_refgrant *out);
int gw_decode_btlspolicy(struct arena *a, const struct gw_object *o, struct diag *d,
			 struct gw_btlspolicy *out);
int gw_decode_namespace(struct arena *a, const struct gw_object *o, struct diag *d,
			struct gw_namespace *out);
/* Secret data field (base64) decoded into the arena, NUL-terminated; NULL
 * when absent or not valid base64. */
char *gw_secret_data(struct arena *a, const struct gw_object *secret, const char *key, size_t *len);
/* ConfigMap data field, borrowed; NULL when absent. */
const char *gw_configmap_data(const struct gw_object *cm, const char *key);
const char *gw_object_label(const struct gw_object *o, const char *key);

/* -------- helpers (util.c) -------- */

/* RFC 1123 host name, optionally with a leading "*." label. */
bool gw_hostname_is_valid(const char *h, bool allow_wildcard);
/* Whether a listener hostname (NULL = any) and a route hostname intersect;
 * *out gets the more specific of the two (borrowed from the inputs). */
bool gw_hostname_intersect(const char *listener, const char *route, const char **out);
/* Precedence of a hostname: exact names first, then wildcards by length
 * (longer first), then "any" (NULL). Smaller sorts first. */
int gw_hostname_cmp(const char *a, const char *b);
/* Parses a Gateway API Duration ("1h", "10s", "500ms", "1h2m3s", "0s") into
 * milliseconds. 0 or -EINVAL. */
int gw_duration_parse(const char *s, uint64_t *ms);
/* IPv4/IPv6 textual address check; family 4 or 6 into *family. */
bool gw_ip_parse(const char *s, uint8_t out[16], int *family);
struct gw_pool {
	uint8_t base[16];
	int family;
	int prefix;
	bool valid;
};
/* 0 or -EINVAL. */
int gw_pool_parse(const char *cidr, struct gw_pool *p);
bool gw_pool_contains(const struct gw_pool *p, const uint8_t ip[16], int family);
/* The idx-th usable host address of the pool (skipping the network and
 * broadcast addresses for IPv4 prefixes up to /30) into buf; false when idx
 * is past the end. */
bool gw_pool_nth(const struct gw_pool *p, uint64_t idx, char *buf, size_t size);
uint64_t gw_pool_size(const struct gw_pool *p);
/* Label selector match against a label set. */
bool gw_selector_match(const struct gw_selector *s, const struct gw_kv *labels, size_t n);
/* RFC 3339 time of a wall clock in ms, "YYYY-MM-DDTHH:MM:SSZ". */
void gw_time_format(uint64_t ms, char *buf, size_t size);

/* -------- conditions (status.c) -------- */

#define GW_MAX_CONDS 6

struct gw_cond {
	const char *type;
	bool status;
	const char *reason;
	const char *msg; /* borrowed; must outlive the JSON rendering */
};

/* Conditions of one object, listener or parent, in the order first set. */
struct gw_conds {
	struct gw_cond v[GW_MAX_CONDS];
	int n;
};

/* Sets (or replaces) the condition of that type. */
void gw_cond_set(struct gw_conds *c, const char *type, bool status, const char *reason,
		 const char *msg);
const struct gw_cond *gw_cond_get(const struct gw_conds *c, const char *type);
/* The conditions as a JSON array in doc, each with observedGeneration gen;
 * lastTransitionTime comes from prev (the object's current array of
 * conditions, may be NULL) when the type's status, reason and
 * observedGeneration are unchanged, else from now_ms. NULL on ENOMEM. */
yyjson_mut_val *gw_conds_json(yyjson_mut_doc *doc, const struct gw_conds *c, int64_t gen,
			      yyjson_val *prev, uint64_t now_ms);

#endif
