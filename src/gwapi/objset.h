/* SPDX-License-Identifier: MIT */
/*
 * objset.h: the set of Kubernetes objects waygate knows, the input of
 * reconcile. Producers (kube/ reflectors in cluster mode, the local YAML
 * loader in local mode, store/ when restoring a revision) put and delete
 * objects; reconcile reads the set. Each object keeps its JSON text (what the
 * store persists) and the parsed document (what gwapi decodes).
 *
 * Ownership: the set owns its objects. An object is immutable once put; a
 * put of the same key replaces it (the old one is freed). Objects are
 * refcounted so that a consumer may keep one past a replace
 * (gw_object_ref/unref). Only the control thread touches a set.
 */
#ifndef WG_GWAPI_OBJSET_H
#define WG_GWAPI_OBJSET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct yyjson_doc;

enum gw_kind {
	GW_K_GATEWAYCLASS = 0,
	GW_K_GATEWAY,
	GW_K_LISTENERSET,
	GW_K_HTTPROUTE,
	GW_K_GRPCROUTE,
	GW_K_TLSROUTE,
	GW_K_TCPROUTE,
	GW_K_UDPROUTE,
	GW_K_REFERENCEGRANT,
	GW_K_BACKENDTLSPOLICY,
	GW_K_SERVICE,
	GW_K_ENDPOINTSLICE,
	GW_K_SECRET,
	GW_K_CONFIGMAP,
	GW_K_NAMESPACE,
	GW_K_COUNT
};

/* Static facts about a kind: its API group ("" for core), Kind name,
 * resource (plural), whether it is namespaced, and whether waygate writes
 * its status. */
struct gw_kind_info {
	const char *group;
	const char *kind;
	const char *resource;
	bool namespaced;
	bool has_status;
};
const struct gw_kind_info *gw_kind_info(enum gw_kind k);
/* By Kind name and group (group NULL = any); -1 when unknown. */
int gw_kind_from_name(const char *group, const char *kind);
/* By resource (plural) and group; -1 when unknown. */
int gw_kind_from_resource(const char *group, const char *resource);

struct gw_object {
	enum gw_kind kind;
	char *ns;   /* "" for cluster-scoped */
	char *name;
	char *uid;
	char *resource_version;
	char *creation_timestamp; /* RFC 3339 as the API server wrote it, "" if absent */
	int64_t generation;
	char *json;     /* the whole object as JSON text (NUL-terminated) */
	size_t json_len;
	struct yyjson_doc *doc; /* parsed json, immutable */
	const char *source;     /* borrowed static: "cluster", "file", "store" */
	char *file;             /* local mode: file it came from, else NULL */
	uint32_t refs;
};

struct gw_objset;

struct gw_objset *gw_objset_new(void);
void gw_objset_free(struct gw_objset *set);

/* Parses json (len bytes, need not be NUL-terminated; it is copied) as a
 * Kubernetes object of kind k (or of the kind its apiVersion/kind name when
 * k < 0) and returns a new object with refs = 1, or NULL with a message in
 * err (if err is non-NULL, errsz bytes). */
struct gw_object *gw_object_parse(int k, const char *json, size_t len, char *err, size_t errsz);
void gw_object_ref(struct gw_object *o);
void gw_object_unref(struct gw_object *o);

/* Takes ownership of o (one reference), replacing any object with the same
 * (kind, ns, name). Returns true if the set changed (a new object, or the
 * resourceVersion or JSON differ). */
bool gw_objset_put(struct gw_objset *set, struct gw_object *o);
/* Removes (kind, ns, name); true if it was there. */
bool gw_objset_del(struct gw_objset *set, enum gw_kind k, const char *ns, const char *name);
/* Borrowed; NULL if absent. ns "" for cluster-scoped kinds. */
const struct gw_object *gw_objset_get(const struct gw_objset *set, enum gw_kind k, const char *ns,
				      const char *name);
size_t gw_objset_count(const struct gw_objset *set, enum gw_kind k);
/* Objects of a kind sorted by (ns, name): a borrowed array of count
 * pointers, valid until the next put/del. NULL when there are none. */
const struct gw_object *const *gw_objset_list(struct gw_objset *set, enum gw_kind k, size_t *count);
/* Drops every object of a kind (a relist replaces the kind wholesale). */
void gw_objset_clear_kind(struct gw_objset *set, enum gw_kind k);
/* Monotonic counter bumped by every change: reconcile is needed when it
 * differs from the value last reconciled. */
uint64_t gw_objset_version(const struct gw_objset *set);

/*
 * The change log, for a consumer that keeps something per object (the
 * store's commit) and wants to visit only what changed since it last
 * looked, instead of the whole set.
 *
 * Each entry says that the object a key held went from `from` to `to`
 * (from NULL: the key was added; to NULL: it was removed), in the order of
 * the changes. Unlike gw_objset_version, the replacement of an object by
 * an equal one (same resourceVersion and JSON) is logged too: the pointer
 * changed. The pointers are identities only: an object may have been freed
 * since (only `to` of a key's last entry is known alive, while the set
 * holds it), and its address reused by a later entry; a consumer
 * dereferences only what it holds a reference to, and reads entries in
 * order.
 *
 * The log keeps the most recent changes only (64 and a quarter as many
 * as the set holds objects; gw_objset_clear_kind drops it all), so a
 * consumer that falls behind gets false and compares the whole set.
 */
struct gw_objset_change {
	const struct gw_object *from;
	const struct gw_object *to;
};
/* Identity of the set, unique in the process (an address may be reused). */
uint64_t gw_objset_id(const struct gw_objset *set);
/* The current position of the log: the number of changes so far. */
uint64_t gw_objset_log_pos(const struct gw_objset *set);
/* The changes after position pos, oldest first, as a borrowed array of
 * *n entries valid until the next change; true unless the log no longer
 * reaches back to pos (or pos is ahead of it). */
bool gw_objset_changes(const struct gw_objset *set, uint64_t pos, const struct gw_objset_change **v,
		       size_t *n);

#endif
