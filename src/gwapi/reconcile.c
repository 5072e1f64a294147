/* SPDX-License-Identifier: MIT */
/*
 * reconcile.c: the driver of reconcile, the pure function from the object
 * set to a compiled snapshot and the status of every object we own (Gateway
 * API v1.6.1). It builds the indexes every phase uses (Namespaces,
 * EndpointSlices by Service, ReferenceGrants by target namespace, Services
 * decoded on demand), judges ReferenceGrants and GatewayClasses, runs the
 * phases in order (gateway.c, policy.c, route.c, build.c, render.c) and owns
 * the result's lifetime; it also answers gw_is_referenced for the watch.
 *
 * Memory: a scratch arena holds the typed model and the bookkeeping and is
 * freed before returning; the snapshot owns its own arena. Lookups go
 * through hash maps so that the cost grows with the number of routes, not
 * with its square. No sockets, no clock beyond opts->now_ms, no globals.
 * Control thread only (and `waygate check`).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/arena.h"
#include "gwapi/reconcile_int.h"

/* -------- small helpers -------- */

char *rc_printf(struct rctx *c, const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	char *s = arena_strdup(c->a, buf);
	if (!s)
		c->err = -ENOMEM;
	return s;
}

char *rc_sdup(struct rctx *c, const char *s)
{
	if (!s)
		return NULL;
	char *r = arena_strdup(c->sa, s);
	if (!r)
		c->err = -ENOMEM;
	return r;
}

void *rc_salloc(struct rctx *c, size_t n, size_t size)
{
	if (!n)
		return NULL;
	void *p = arena_zalloc(c->sa, n * size);
	if (!p)
		c->err = -ENOMEM;
	return p;
}

void *rc_alloc(struct rctx *c, size_t n, size_t size)
{
	if (!n)
		return NULL;
	void *p = arena_zalloc(c->a, n * size);
	if (!p)
		c->err = -ENOMEM;
	return p;
}

char *rc_cat(struct rctx *c, struct arena *a, const char *x, char sep, const char *y)
{
	size_t lx = strlen(x), ly = strlen(y);
	char *s = arena_alloc(a, lx + ly + 2);

	if (!s) {
		c->err = -ENOMEM;
		return NULL;
	}
	memcpy(s, x, lx);
	s[lx] = sep;
	memcpy(s + lx + 1, y, ly + 1);
	return s;
}

const char *rc_objname(struct rctx *c, const struct gw_object *o)
{
	return rc_printf(c, "%s %s%s%s", gw_kind_info(o->kind)->kind, o->ns, *o->ns ? "/" : "",
			 o->name);
}

static const char *nskey(struct rctx *c, const char *ns, const char *name)
{
	return rc_cat(c, c->a, ns, '/', name);
}

/* Age order: creationTimestamp (RFC 3339 compares as text; missing = newest),
 * then namespace/name. */
int rc_age_cmp(const struct gw_object *a, const struct gw_object *b)
{
	const char *ta = a->creation_timestamp, *tb = b->creation_timestamp;
	if (*ta && !*tb)
		return -1;
	if (!*ta && *tb)
		return 1;
	int r = strcmp(ta, tb);
	if (r)
		return r;
	r = strcmp(a->ns, b->ns);
	return r ? r : strcmp(a->name, b->name);
}

/* -------- indexes -------- */

static int index_objects(struct rctx *c)
{
	size_t n;
	const struct gw_object *const *v;

	v = gw_objset_list(c->set, GW_K_NAMESPACE, &n);
	for (size_t i = 0; i < n; i++) {
		struct gw_namespace *ns = rc_alloc(c, 1, sizeof(*ns));
		if (!ns || gw_decode_namespace(c->a, v[i], &c->diag, ns))
			return -ENOMEM;
		if (gw_map_put(&c->namespaces, v[i]->name, ns))
			return -ENOMEM;
	}
	v = gw_objset_list(c->set, GW_K_ENDPOINTSLICE, &n);
	for (size_t i = 0; i < n; i++) {
		struct gw_endpointslice *s = rc_alloc(c, 1, sizeof(*s));
		if (!s || gw_decode_endpointslice(c->a, v[i], &c->diag, s))
			return -ENOMEM;
		if (!s->service)
			continue;
		void **slot = gw_map_slot(&c->slices, nskey(c, v[i]->ns, s->service));
		if (!slot)
			return -ENOMEM;
		if (!*slot && !(*slot = rc_alloc(c, 1, sizeof(struct gw_vec))))
			return -ENOMEM;
		if (gw_vec_push(*slot, c->a, s))
			return -ENOMEM;
	}
	v = gw_objset_list(c->set, GW_K_REFERENCEGRANT, &n);
	for (size_t i = 0; i < n; i++) {
		struct gw_refgrant *g = rc_alloc(c, 1, sizeof(*g));
		if (!g || gw_decode_refgrant(c->a, v[i], &c->diag, g))
			return -ENOMEM;
		void **slot = gw_map_slot(&c->grants, v[i]->ns);
		if (!slot)
			return -ENOMEM;
		if (!*slot && !(*slot = rc_alloc(c, 1, sizeof(struct gw_vec))))
			return -ENOMEM;
		if (gw_vec_push(*slot, c->a, g))
			return -ENOMEM;
	}
	return c->err;
}

const struct gw_service *rc_service(struct rctx *c, const char *ns, const char *name)
{
	const char *key = nskey(c, ns, name);
	void **slot = key ? gw_map_slot(&c->services, key) : NULL;

	if (!slot)
		return NULL;
	if (*slot)
		return *slot == (void *)c ? NULL : *slot;
	const struct gw_object *o = gw_objset_get(c->set, GW_K_SERVICE, ns, name);
	struct gw_service *s = o ? rc_alloc(c, 1, sizeof(*s)) : NULL;
	if (!s || gw_decode_service(c->a, o, &c->diag, s)) {
		*slot = c; /* negative cache marker */
		return NULL;
	}
	*slot = s;
	return s;
}

/* Labels of a namespace including the implicit kubernetes.io/metadata.name. */
static bool ns_selected(struct rctx *c, const char *ns, const struct gw_selector *sel)
{
	struct gw_namespace *n = gw_map_get(&c->namespaces, ns);
	size_t cnt = n ? n->n_labels : 0;
	struct gw_kv tmp[64];
	size_t k = 0;

	for (size_t i = 0; i < cnt && k < 63; i++)
		tmp[k++] = n->labels[i];
	bool has_name = false;
	for (size_t i = 0; i < k; i++)
		if (!strcmp(tmp[i].key, "kubernetes.io/metadata.name"))
			has_name = true;
	if (!has_name)
		tmp[k++] = (struct gw_kv){"kubernetes.io/metadata.name", ns};
	return gw_selector_match(sel, tmp, k);
}

bool rc_ns_allowed(struct rctx *c, enum gw_from from, const struct gw_selector *sel,
		   const char *owner_ns, const char *ns)
{
	switch (from) {
	case GW_FROM_ALL: return true;
	case GW_FROM_SAME: return !strcmp(owner_ns, ns);
	case GW_FROM_SELECTOR: return ns_selected(c, ns, sel);
	case GW_FROM_NONE:
	default: return false;
	}
}

bool rc_grant_allows(struct rctx *c, const char *from_group, const char *from_kind,
		     const char *from_ns, const char *to_group, const char *to_kind,
		     const char *to_ns, const char *to_name)
{
	if (!strcmp(from_ns, to_ns))
		return true;
	struct gw_vec *v = gw_map_get(&c->grants, to_ns);
	for (size_t i = 0; v && i < v->n; i++) {
		const struct gw_refgrant *g = v->v[i];
		bool from_ok = false, to_ok = false;
		for (size_t j = 0; j < g->n_from && !from_ok; j++)
			from_ok = !strcmp(g->from[j].group, from_group) &&
				  !strcmp(g->from[j].kind, from_kind) &&
				  !strcmp(g->from[j].ns, from_ns);
		for (size_t j = 0; j < g->n_to && from_ok && !to_ok; j++)
			to_ok = !strcmp(g->to[j].group, to_group) &&
				!strcmp(g->to[j].kind, to_kind) &&
				(!g->to[j].name || !strcmp(g->to[j].name, to_name));
		if (from_ok && to_ok)
			return true;
	}
	return false;
}

/* -------- references seen from the outside -------- */

static bool refers_walk(yyjson_val *v, const char *parent_key, const char *kind, const char *own_ns,
			const char *ns, const char *name, int depth)
{
	if (depth > 12)
		return false;
	if (yyjson_is_arr(v)) {
		size_t i, max;
		yyjson_val *e;
		yyjson_arr_foreach(v, i, max, e)
		{
			if (refers_walk(e, parent_key, kind, own_ns, ns, name, depth + 1))
				return true;
		}
		return false;
	}
	if (!yyjson_is_obj(v))
		return false;
	const char *n = yyjson_get_str(yyjson_obj_get(v, "name"));
	if (n && !strcmp(n, name) && parent_key && strstr(parent_key, "ertificateRef")) {
		const char *k = yyjson_get_str(yyjson_obj_get(v, "kind"));
		const char *rns = yyjson_get_str(yyjson_obj_get(v, "namespace"));
		/* certificateRefs default to Secret; CA refs name their kind. */
		bool kind_ok = k ? !strcmp(k, kind) : !strcmp(kind, "Secret");
		if (kind_ok && !strcmp(rns ? rns : own_ns, ns))
			return true;
	}
	size_t i, max;
	yyjson_val *key, *val;
	yyjson_obj_foreach(v, i, max, key, val)
	{
		if (refers_walk(val, yyjson_get_str(key), kind, own_ns, ns, name, depth + 1))
			return true;
	}
	return false;
}

bool rc_object_refers(const struct gw_object *o, const char *kind, const char *ns, const char *name)
{
	yyjson_val *spec = yyjson_obj_get(yyjson_doc_get_root(o->doc), "spec");
	return refers_walk(spec, NULL, kind, o->ns, ns, name, 0);
}

bool rc_pem_has_cert(const char *pem)
{
	return pem && strstr(pem, "-----BEGIN CERTIFICATE-----") &&
	       strstr(pem, "-----END CERTIFICATE-----");
}

bool rc_pem_has_key(const char *pem)
{
	return pem && strstr(pem, "-----BEGIN ") && strstr(pem, "PRIVATE KEY-----") &&
	       !strstr(pem, "-----BEGIN CERTIFICATE-----");
}

/* -------- GatewayClasses -------- */

static int do_classes(struct rctx *c)
{
	size_t n;
	const struct gw_object *const *v = gw_objset_list(c->set, GW_K_GATEWAYCLASS, &n);

	c->classes = rc_alloc(c, n, sizeof(*c->classes));
	for (size_t i = 0; i < n && c->classes; i++) {
		yyjson_val *root = yyjson_doc_get_root(v[i]->doc);
		yyjson_val *spec = yyjson_obj_get(root, "spec");
		const char *ctl = yyjson_get_str(yyjson_obj_get(spec, "controllerName"));
		if (!ctl || !c->opts->controller_name || strcmp(ctl, c->opts->controller_name) != 0)
			continue;
		struct rclass *rc = &c->classes[c->n_classes++];
		rc->obj = v[i];
		rc->status = yyjson_obj_get(root, "status");
		rc->accepted = true;
		rc->reason = "Accepted";
		rc->msg = "accepted by waygate";
		yyjson_val *pr = yyjson_obj_get(spec, "parametersRef");
		if (pr) {
			const char *g = yyjson_get_str(yyjson_obj_get(pr, "group"));
			const char *k = yyjson_get_str(yyjson_obj_get(pr, "kind"));
			const char *nm = yyjson_get_str(yyjson_obj_get(pr, "name"));
			const char *ns = yyjson_get_str(yyjson_obj_get(pr, "namespace"));
			bool ok = g && !*g && k && !strcmp(k, "ConfigMap") && nm && ns &&
				  gw_objset_get(c->set, GW_K_CONFIGMAP, ns, nm);
			if (!ok) {
				rc->accepted = false;
				rc->reason = "InvalidParameters";
				rc->msg = "parametersRef must name an existing ConfigMap";
				diag_add(&c->diag, DIAG_ERROR, v[i]->file, rc_objname(c, v[i]),
					 "spec.parametersRef", "%s", rc->msg);
			}
		}
		if (gw_map_put(&c->class_map, v[i]->name, rc))
			return -ENOMEM;
	}
	return c->err;
}

/* -------- the whole -------- */

static void ctx_init(struct rctx *c, struct gw_objset *set, const struct gw_options *opts)
{
	memset(c, 0, sizeof(*c));
	c->set = set;
	c->opts = opts;
}

static void maps_init(struct rctx *c)
{
	struct gw_map *maps[] = {&c->namespaces, &c->slices,       &c->grants,    &c->services,
				 &c->gateways,   &c->listenersets, &c->class_map, &c->policies,
				 &c->epcache,    &c->addr_taken};
	for (size_t i = 0; i < sizeof(maps) / sizeof(maps[0]); i++)
		gw_map_init(maps[i], c->a);
}

int rc_whole(struct rctx *c, struct gw_objset *set, const struct gw_options *opts,
	     struct gw_result *out)
{
	int rc;

	memset(out, 0, sizeof(*out));
	ctx_init(c, set, opts);
	c->a = arena_new(1024 * 1024);
	c->sa = arena_new(256 * 1024);
	if (!c->a || !c->sa)
		return -ENOMEM;
	maps_init(c);
	c->snap = arena_zalloc(c->sa, sizeof(*c->snap));
	if (!c->snap)
		return -ENOMEM;
	c->snap->arena = c->sa;
	c->snap->refs = 1;
	c->keep = c->sa;
	c->snap->compiled_ms = opts->now_ms;
	if (opts->address_pool && gw_pool_parse(opts->address_pool, &c->pool) != 0)
		diag_add(&c->diag, DIAG_ERROR, NULL, NULL, "--address-pool",
			 "invalid CIDR \"%s\": Gateways bind the wildcard address",
			 opts->address_pool);

	if ((rc = index_objects(c)) || (rc = do_classes(c)) || (rc = rc_gateways(c)) ||
	    (rc = rc_policies(c)) || (rc = rc_routes(c)) || (rc = rc_build(c)) ||
	    (rc = rc_render(c, out)))
		return rc;
	if (c->err)
		return c->err;
	out->snap = c->snap;
	return 0;
}

int gw_reconcile(struct gw_objset *set, const struct gw_options *opts, struct gw_result *out)
{
	struct rctx c;
	int rc = rc_whole(&c, set, opts, out);

	if (rc) {
		gw_result_fini(out);
		memset(out, 0, sizeof(*out));
		arena_free(c.sa);
	}
	out->diag = c.diag;
	arena_free(c.a);
	return rc;
}

void gw_result_fini(struct gw_result *r)
{
	for (size_t i = 0; i < r->n_statuses; i++) {
		free(r->statuses[i].ns);
		free(r->statuses[i].name);
		free(r->statuses[i].resource_version);
		free(r->statuses[i].status_json);
	}
	free(r->statuses);
	for (size_t i = 0; i < r->n_gateways; i++) {
		free(r->gateways[i]);
		free(r->addresses[i]);
	}
	free(r->gateways);
	free(r->addresses);
	/* r->snap is the caller's reference (snap_unref); it is left alone. */
	diag_fini(&r->diag);
	r->statuses = NULL;
	r->n_statuses = 0;
	r->gateways = r->addresses = NULL;
	r->n_gateways = 0;
}

bool gw_is_referenced(const struct gw_objset *cset, enum gw_kind kind, const char *ns,
		      const char *name)
{
	struct gw_objset *set = (struct gw_objset *)(uintptr_t)cset;
	static const enum gw_kind kinds[] = {GW_K_GATEWAY, GW_K_LISTENERSET, GW_K_BACKENDTLSPOLICY};
	const char *want_kind = kind == GW_K_SECRET ? "Secret" : "ConfigMap";

	if (kind != GW_K_SECRET && kind != GW_K_CONFIGMAP)
		return false;
	for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
		size_t n;
		const struct gw_object *const *v = gw_objset_list(set, kinds[k], &n);
		for (size_t i = 0; i < n; i++)
			if (rc_object_refers(v[i], want_kind, ns, name))
				return true;
	}
	return false;
}
