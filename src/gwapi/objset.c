/* SPDX-License-Identifier: MIT */
/*
 * objset.c: the object set that feeds reconcile. One hash table per kind
 * keyed by (namespace, name), refcounted immutable objects holding their JSON
 * text and parsed document, a sorted listing rebuilt lazily, a version
 * counter bumped by every change and a bounded log of the recent changes.
 * It also holds the static table of kinds (group, Kind, resource) that
 * kube/ and the local loader use to name them. It does not decode spec
 * fields (model.c does) nor judge validity. Control thread only.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "yyjson.h"

#include "core/hash.h"
#include "gwapi/objset.h"

#define GW_GROUP "gateway.networking.k8s.io"

static const struct gw_kind_info kinds[GW_K_COUNT] = {
	[GW_K_GATEWAYCLASS] = {GW_GROUP, "GatewayClass", "gatewayclasses", false, true},
	[GW_K_GATEWAY] = {GW_GROUP, "Gateway", "gateways", true, true},
	[GW_K_LISTENERSET] = {GW_GROUP, "ListenerSet", "listenersets", true, true},
	[GW_K_HTTPROUTE] = {GW_GROUP, "HTTPRoute", "httproutes", true, true},
	[GW_K_GRPCROUTE] = {GW_GROUP, "GRPCRoute", "grpcroutes", true, true},
	[GW_K_TLSROUTE] = {GW_GROUP, "TLSRoute", "tlsroutes", true, true},
	[GW_K_TCPROUTE] = {GW_GROUP, "TCPRoute", "tcproutes", true, true},
	[GW_K_UDPROUTE] = {GW_GROUP, "UDPRoute", "udproutes", true, true},
	[GW_K_REFERENCEGRANT] = {GW_GROUP, "ReferenceGrant", "referencegrants", true, false},
	[GW_K_BACKENDTLSPOLICY] = {GW_GROUP, "BackendTLSPolicy", "backendtlspolicies", true, true},
	[GW_K_SERVICE] = {"", "Service", "services", true, false},
	[GW_K_ENDPOINTSLICE] = {"discovery.k8s.io", "EndpointSlice", "endpointslices", true, false},
	[GW_K_SECRET] = {"", "Secret", "secrets", true, false},
	[GW_K_CONFIGMAP] = {"", "ConfigMap", "configmaps", true, false},
	[GW_K_NAMESPACE] = {"", "Namespace", "namespaces", false, false},
};

const struct gw_kind_info *gw_kind_info(enum gw_kind k)
{
	if ((int)k < 0 || k >= GW_K_COUNT)
		return NULL;
	return &kinds[k];
}

int gw_kind_from_name(const char *group, const char *kind)
{
	if (!kind)
		return -1;
	for (int i = 0; i < GW_K_COUNT; i++)
		if (!strcmp(kinds[i].kind, kind) && (!group || !strcmp(group, kinds[i].group)))
			return i;
	return -1;
}

int gw_kind_from_resource(const char *group, const char *resource)
{
	if (!resource)
		return -1;
	for (int i = 0; i < GW_K_COUNT; i++)
		if (!strcmp(kinds[i].resource, resource) &&
		    (!group || !strcmp(group, kinds[i].group)))
			return i;
	return -1;
}

/* -------- objects -------- */

static void set_err(char *err, size_t errsz, const char *fmt, const char *a, const char *b)
{
	if (err && errsz)
		snprintf(err, errsz, fmt, a ? a : "", b ? b : "");
}

static char *dup_json_str(yyjson_val *v)
{
	const char *s = yyjson_is_str(v) ? yyjson_get_str(v) : "";
	return strdup(s);
}

static void object_free(struct gw_object *o)
{
	free(o->ns);
	free(o->name);
	free(o->uid);
	free(o->resource_version);
	free(o->creation_timestamp);
	free(o->json);
	free(o->file);
	yyjson_doc_free(o->doc);
	free(o);
}

struct gw_object *gw_object_parse(int k, const char *json, size_t len, char *err, size_t errsz)
{
	yyjson_read_err rerr;
	struct gw_object *o = calloc(1, sizeof(*o));

	if (!o) {
		set_err(err, errsz, "out of memory%s%s", NULL, NULL);
		return NULL;
	}
	o->json = malloc(len + 1);
	if (!o->json)
		goto fail_mem;
	memcpy(o->json, json, len);
	o->json[len] = '\0';
	o->json_len = len;
	o->doc = yyjson_read_opts(o->json, len, 0, NULL, &rerr);
	if (!o->doc) {
		if (err && errsz)
			snprintf(err, errsz, "invalid JSON at byte %zu: %s", rerr.pos, rerr.msg);
		goto fail;
	}
	yyjson_val *root = yyjson_doc_get_root(o->doc);
	if (!yyjson_is_obj(root)) {
		set_err(err, errsz, "object is not a JSON object%s%s", NULL, NULL);
		goto fail;
	}
	const char *kind = yyjson_get_str(yyjson_obj_get(root, "kind"));
	const char *apiv = yyjson_get_str(yyjson_obj_get(root, "apiVersion"));
	if (k < 0) {
		char group[128] = "";
		if (apiv) {
			const char *slash = strchr(apiv, '/');
			if (slash && (size_t)(slash - apiv) < sizeof(group))
				memcpy(group, apiv, (size_t)(slash - apiv));
		}
		k = gw_kind_from_name(apiv ? group : NULL, kind);
		if (k < 0) {
			set_err(err, errsz, "unknown kind \"%s\" (apiVersion \"%s\")", kind, apiv);
			goto fail;
		}
	} else if (k >= GW_K_COUNT) {
		set_err(err, errsz, "unknown kind%s%s", NULL, NULL);
		goto fail;
	} else if (kind && strcmp(kind, kinds[k].kind) != 0) {
		set_err(err, errsz, "kind \"%s\" where %s was expected", kind, kinds[k].kind);
		goto fail;
	}
	o->kind = (enum gw_kind)k;
	yyjson_val *md = yyjson_obj_get(root, "metadata");
	const char *name = yyjson_get_str(yyjson_obj_get(md, "name"));
	if (!name || !*name) {
		set_err(err, errsz, "%s without metadata.name%s", kinds[k].kind, NULL);
		goto fail;
	}
	const char *ns = yyjson_get_str(yyjson_obj_get(md, "namespace"));
	if (kinds[k].namespaced && (!ns || !*ns))
		ns = "default";
	if (!kinds[k].namespaced)
		ns = "";
	o->ns = strdup(ns);
	o->name = strdup(name);
	o->uid = dup_json_str(yyjson_obj_get(md, "uid"));
	o->resource_version = dup_json_str(yyjson_obj_get(md, "resourceVersion"));
	o->creation_timestamp = dup_json_str(yyjson_obj_get(md, "creationTimestamp"));
	if (!o->ns || !o->name || !o->uid || !o->resource_version || !o->creation_timestamp)
		goto fail_mem;
	yyjson_val *gen = yyjson_obj_get(md, "generation");
	o->generation = yyjson_is_int(gen) ? yyjson_get_sint(gen) : 0;
	o->source = "cluster";
	o->refs = 1;
	return o;

fail_mem:
	set_err(err, errsz, "out of memory%s%s", NULL, NULL);
fail:
	object_free(o);
	return NULL;
}

void gw_object_ref(struct gw_object *o)
{
	o->refs++;
}

void gw_object_unref(struct gw_object *o)
{
	if (o && --o->refs == 0)
		object_free(o);
}

/* -------- the set -------- */

/* One table per kind: open addressing with linear probing over object
 * pointers (no link inside the object, so one object may sit in several
 * sets at once: a reload's new set shares the unchanged ones). */
struct kind_table {
	struct gw_object **slots; /* NULL = empty */
	size_t cap;               /* power of two, 0 = none yet */
	size_t count;
	/* gw_objset_list's answer, kept in order by put and del once built
	 * (a change to one object of 10,000 costs a binary search, not a
	 * sort); sorted_cap is its room. */
	const struct gw_object **sorted;
	size_t sorted_cap;
	bool sorted_valid;
};

/* The change log holds the changes numbered log_base + 1 .. log_base +
 * n_log (the position is log_base + n_log). */
struct gw_objset {
	struct kind_table t[GW_K_COUNT];
	uint64_t version;
	uint64_t id;
	struct gw_objset_change *log;
	size_t n_log, log_cap;
	uint64_t log_base;
};

struct gw_objset *gw_objset_new(void)
{
	static atomic_uint_fast64_t next_id;
	struct gw_objset *set = calloc(1, sizeof(struct gw_objset));

	if (set)
		set->id = (uint64_t)atomic_fetch_add(&next_id, 1) + 1;
	return set;
}

/* Forgets every logged change and counts one more that is not logged: a
 * consumer behind the new position compares the whole set. */
static void log_lose(struct gw_objset *set)
{
	set->log_base += set->n_log + 1;
	set->n_log = 0;
}

/* Appends a change. The log keeps 64 + (objects / 4) entries at most: a
 * consumer that commits every few changes never falls off it, and one that
 * stopped costs little memory (no references are held). When full, the
 * older half goes. */
static void log_add(struct gw_objset *set, const struct gw_object *from, const struct gw_object *to)
{
	size_t objects = 0, max;

	if (set->n_log == set->log_cap) {
		for (int k = 0; k < GW_K_COUNT; k++)
			objects += set->t[k].count;
		max = 64 + objects / 4;
		if (set->n_log >= max) {
			size_t drop = set->n_log - max / 2;

			memmove(set->log, set->log + drop, (set->n_log - drop) * sizeof(*set->log));
			set->log_base += drop;
			set->n_log -= drop;
		} else {
			size_t cap = set->log_cap ? 2 * set->log_cap : 16;
			struct gw_objset_change *v;

			if (cap > max)
				cap = max;
			v = realloc(set->log, cap * sizeof(*v));
			if (!v) {
				log_lose(set);
				return;
			}
			set->log = v;
			set->log_cap = cap;
		}
	}
	set->log[set->n_log++] = (struct gw_objset_change){from, to};
}

static void table_clear(struct kind_table *t)
{
	for (size_t i = 0; i < t->cap; i++) {
		gw_object_unref(t->slots[i]);
		t->slots[i] = NULL;
	}
	t->count = 0;
	t->sorted_valid = false;
}

void gw_objset_free(struct gw_objset *set)
{
	if (!set)
		return;
	for (int k = 0; k < GW_K_COUNT; k++) {
		table_clear(&set->t[k]);
		free(set->t[k].slots);
		free(set->t[k].sorted);
	}
	free(set->log);
	free(set);
}

static uint64_t key_hash(const char *ns, const char *name)
{
	return hash_mix(hash_bytes(ns, strlen(ns)), hash_bytes(name, strlen(name)));
}

/* The slot holding (ns, name), or the empty slot where it would go. */
static size_t table_find(const struct kind_table *t, const char *ns, const char *name)
{
	size_t i = (size_t)key_hash(ns, name) & (t->cap - 1);

	for (;; i = (i + 1) & (t->cap - 1)) {
		const struct gw_object *o = t->slots[i];
		if (!o || (!strcmp(o->name, name) && !strcmp(o->ns, ns)))
			return i;
	}
}

static int table_grow(struct kind_table *t)
{
	size_t cap = t->cap ? t->cap * 2 : 16;
	struct gw_object **v = calloc(cap, sizeof(*v));

	if (!v)
		return -1;
	for (size_t i = 0; i < t->cap; i++) {
		struct gw_object *o = t->slots[i];
		if (!o)
			continue;
		size_t j = (size_t)key_hash(o->ns, o->name) & (cap - 1);
		while (v[j])
			j = (j + 1) & (cap - 1);
		v[j] = o;
	}
	free(t->slots);
	t->slots = v;
	t->cap = cap;
	return 0;
}

static int cmp_obj(const void *a, const void *b)
{
	const struct gw_object *x = *(const struct gw_object *const *)a;
	const struct gw_object *y = *(const struct gw_object *const *)b;
	int c = strcmp(x->ns, y->ns);
	return c ? c : strcmp(x->name, y->name);
}

/* Where (ns, name) is, or would go, in the sorted listing. */
static size_t sorted_pos(const struct kind_table *t, const struct gw_object *o)
{
	size_t lo = 0, hi = t->count;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (cmp_obj(&t->sorted[mid], &o) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Keeps the sorted listing after a change: o replaced old (old != NULL),
 * o was added (old NULL), or o was removed (removed). Called before count
 * changes. Drops the listing when it cannot keep it. */
static void sorted_update(struct kind_table *t, const struct gw_object *o, bool replaced,
			  bool removed)
{
	if (!t->sorted_valid)
		return;
	size_t i = sorted_pos(t, o);
	if (replaced) {
		t->sorted[i] = o;
	} else if (removed) {
		memmove(&t->sorted[i], &t->sorted[i + 1], (t->count - i - 1) * sizeof(*t->sorted));
	} else {
		if (t->count + 1 > t->sorted_cap) {
			size_t cap = t->sorted_cap ? t->sorted_cap * 2 : 16;
			const struct gw_object **v = realloc(t->sorted, cap * sizeof(*v));
			if (!v) {
				t->sorted_valid = false;
				return;
			}
			t->sorted = v;
			t->sorted_cap = cap;
		}
		memmove(&t->sorted[i + 1], &t->sorted[i], (t->count - i) * sizeof(*t->sorted));
		t->sorted[i] = o;
	}
}

bool gw_objset_put(struct gw_objset *set, struct gw_object *o)
{
	struct kind_table *t = &set->t[o->kind];

	if ((t->count + 1) * 4 > t->cap * 3 && table_grow(t) != 0) {
		/* Cannot index it: drop it rather than lose track of memory. */
		gw_object_unref(o);
		return false;
	}
	size_t i = table_find(t, o->ns, o->name);
	struct gw_object *old = t->slots[i];
	t->slots[i] = o;
	sorted_update(t, o, old != NULL, false);
	if (old != o)
		log_add(set, old, o);
	if (old) {
		bool same = old == o || (!strcmp(old->resource_version, o->resource_version) &&
					 old->json_len == o->json_len &&
					 !memcmp(old->json, o->json, o->json_len));
		gw_object_unref(old);
		if (same)
			return false;
	} else {
		t->count++;
	}
	set->version++;
	return true;
}

bool gw_objset_del(struct gw_objset *set, enum gw_kind k, const char *ns, const char *name)
{
	struct kind_table *t = &set->t[k];
	size_t mask, i, j;

	if (!t->cap || !name)
		return false;
	mask = t->cap - 1;
	i = table_find(t, ns ? ns : "", name);
	if (!t->slots[i])
		return false;
	sorted_update(t, t->slots[i], false, true);
	log_add(set, t->slots[i], NULL);
	gw_object_unref(t->slots[i]);
	t->slots[i] = NULL;
	/* Backward-shift deletion: pull later entries of the run into the
	 * hole when their home slot does not lie between the hole and them. */
	for (j = (i + 1) & mask; t->slots[j]; j = (j + 1) & mask) {
		size_t home = (size_t)key_hash(t->slots[j]->ns, t->slots[j]->name) & mask;
		if (((j - home) & mask) >= ((j - i) & mask)) {
			t->slots[i] = t->slots[j];
			t->slots[j] = NULL;
			i = j;
		}
	}
	t->count--;
	set->version++;
	return true;
}

const struct gw_object *gw_objset_get(const struct gw_objset *set, enum gw_kind k, const char *ns,
				      const char *name)
{
	if ((int)k < 0 || k >= GW_K_COUNT || !name || !set->t[k].cap)
		return NULL;
	return set->t[k].slots[table_find(&set->t[k], ns ? ns : "", name)];
}

size_t gw_objset_count(const struct gw_objset *set, enum gw_kind k)
{
	return set->t[k].count;
}

const struct gw_object *const *gw_objset_list(struct gw_objset *set, enum gw_kind k, size_t *count)
{
	struct kind_table *t = &set->t[k];

	*count = 0;
	if (!t->count)
		return NULL;
	if (!t->sorted_valid) {
		const struct gw_object **v = realloc(t->sorted, t->count * sizeof(*v));
		if (!v)
			return NULL;
		t->sorted = v;
		t->sorted_cap = t->count;
		size_t n = 0;
		for (size_t i = 0; i < t->cap; i++)
			if (t->slots[i])
				v[n++] = t->slots[i];
		qsort(v, n, sizeof(*v), cmp_obj);
		t->sorted_valid = true;
	}
	*count = t->count;
	return t->sorted;
}

void gw_objset_clear_kind(struct gw_objset *set, enum gw_kind k)
{
	if (!set->t[k].count)
		return;
	table_clear(&set->t[k]);
	set->version++;
	/* A relist replaces a kind wholesale: comparing the whole set is as
	 * cheap as reading one entry per object. */
	log_lose(set);
}

uint64_t gw_objset_version(const struct gw_objset *set)
{
	return set->version;
}

uint64_t gw_objset_id(const struct gw_objset *set)
{
	return set->id;
}

uint64_t gw_objset_log_pos(const struct gw_objset *set)
{
	return set->log_base + set->n_log;
}

bool gw_objset_changes(const struct gw_objset *set, uint64_t pos, const struct gw_objset_change **v,
		       size_t *n)
{
	*v = NULL;
	*n = 0;
	if (pos < set->log_base || pos > set->log_base + set->n_log)
		return false;
	*n = (size_t)(set->log_base + set->n_log - pos);
	*v = *n ? set->log + (pos - set->log_base) : NULL;
	return true;
}
