/* SPDX-License-Identifier: MIT */
/*
 * render.c: writes the status JSON of every object reconcile owns:
 * GatewayClass (conditions, supportedFeatures), Gateway (addresses,
 * conditions, listeners, attachedListenerSets), ListenerSet, the parents of
 * every route kind and the ancestors of BackendTLSPolicies, and the address
 * each Gateway was given. Conditions carry observedGeneration and keep their
 * lastTransitionTime when unchanged (status.c). Control thread only.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "gwapi/reconcile_int.h"

/* yyjson's allocator over the scratch arena: status documents are built
 * there and dropped with it (the written text is malloc'd for the caller). */
static void *alc_malloc(void *ctx, size_t size)
{
	return arena_alloc(ctx, size);
}

static void *alc_realloc(void *ctx, void *ptr, size_t old_size, size_t size)
{
	void *p = arena_alloc(ctx, size);
	if (p && ptr)
		memcpy(p, ptr, old_size < size ? old_size : size);
	return p;
}

static void alc_free(void *ctx, void *ptr)
{
	(void)ctx;
	(void)ptr;
}

/* Each status document lives in the render arena (c->ra), which is reset
 * once the document is written: thousands of statuses reuse the same pages
 * instead of faulting in fresh ones. */
static yyjson_mut_doc *new_doc(struct rctx *c)
{
	yyjson_alc alc = {alc_malloc, alc_realloc, alc_free, c->ra};
	return yyjson_mut_doc_new(&alc);
}

static int push_status(struct rctx *c, struct gw_result *out, const struct gw_object *o,
		       yyjson_mut_doc *doc)
{
	char *json = yyjson_mut_write(doc, 0, NULL);
	arena_reset(c->ra);
	if (!json)
		return -ENOMEM;
	if ((out->n_statuses & (out->n_statuses + 1)) == 0 || !out->statuses) {
		size_t cap = (out->n_statuses + 1) * 2;
		struct gw_status *v = realloc(out->statuses, cap * sizeof(*v));
		if (!v) {
			free(json);
			return -ENOMEM;
		}
		out->statuses = v;
	}
	struct gw_status *s = &out->statuses[out->n_statuses];
	memset(s, 0, sizeof(*s));
	s->kind = o->kind;
	s->ns = strdup(o->ns);
	s->name = strdup(o->name);
	s->resource_version = strdup(o->resource_version);
	s->generation = o->generation;
	s->status_json = json;
	out->n_statuses++;
	if (!s->ns || !s->name || !s->resource_version)
		return -ENOMEM;
	return 0;
}

static yyjson_val *prev_conds(yyjson_val *status)
{
	return yyjson_obj_get(status, "conditions");
}

static int render_class(struct rctx *c, struct gw_result *out, struct rclass *rc)
{
	yyjson_mut_doc *doc = new_doc(c);
	struct gw_conds conds = {0};

	if (!doc)
		return -ENOMEM;
	yyjson_mut_val *root = yyjson_mut_obj(doc);
	yyjson_mut_doc_set_root(doc, root);
	gw_cond_set(&conds, "Accepted", rc->accepted, rc->reason, rc->msg);
	gw_cond_set(&conds, "SupportedVersion", true, "SupportedVersion",
		    "the installed Gateway API version is supported");
	yyjson_mut_obj_add_val(doc, root, "conditions",
			       gw_conds_json(doc, &conds, rc->obj->generation,
					     prev_conds(rc->status), c->opts->now_ms));
	yyjson_mut_val *feats = yyjson_mut_obj_add_arr(doc, root, "supportedFeatures");
	for (const char *const *f = c->opts->supported_features; f && *f; f++) {
		yyjson_mut_val *o = yyjson_mut_arr_add_obj(doc, feats);
		yyjson_mut_obj_add_str(doc, o, "name", *f);
	}
	return push_status(c, out, rc->obj, doc);
}

static yyjson_val *prev_listener(yyjson_val *status, const char *name)
{
	size_t i, max;
	yyjson_val *l;

	yyjson_arr_foreach(yyjson_obj_get(status, "listeners"), i, max, l)
	{
		const char *n = yyjson_get_str(yyjson_obj_get(l, "name"));
		if (n && !strcmp(n, name))
			return yyjson_obj_get(l, "conditions");
	}
	return NULL;
}

static void listener_json(struct rctx *c, yyjson_mut_doc *doc, yyjson_mut_val *arr,
			  const struct rlis *li, int64_t gen, yyjson_val *status)
{
	struct gw_conds conds = {0};
	yyjson_mut_val *o = yyjson_mut_arr_add_obj(doc, arr);

	yyjson_mut_obj_add_str(doc, o, "name", li->l->name);
	yyjson_mut_val *sk = yyjson_mut_obj_add_arr(doc, o, "supportedKinds");
	for (int i = 0; i < li->n_sk; i++) {
		yyjson_mut_val *k = yyjson_mut_arr_add_obj(doc, sk);
		yyjson_mut_obj_add_str(doc, k, "group", li->sk[i].group);
		yyjson_mut_obj_add_str(doc, k, "kind", li->sk[i].kind);
	}
	yyjson_mut_obj_add_int(doc, o, "attachedRoutes", li->attached);
	if (li->accepted)
		gw_cond_set(&conds, "Accepted", true, "Accepted", "listener is valid");
	else
		gw_cond_set(&conds, "Accepted", false, li->acc_reason, li->acc_msg);
	if (li->programmed)
		gw_cond_set(&conds, "Programmed", true, "Programmed", "listener is served");
	else
		gw_cond_set(&conds, "Programmed", false, li->conflict ? li->conflict : "Invalid",
			    li->accepted ? (li->ref_msg ? li->ref_msg : "listener is not served")
					 : li->acc_msg);
	if (li->resolved)
		gw_cond_set(&conds, "ResolvedRefs", true, "ResolvedRefs",
			    "all references resolved");
	else
		gw_cond_set(&conds, "ResolvedRefs", false, li->ref_reason, li->ref_msg);
	if (li->conflict)
		gw_cond_set(&conds, "Conflicted", true, li->conflict, li->acc_msg);
	else
		gw_cond_set(&conds, "Conflicted", false, "NoConflicts", "no conflicts");
	yyjson_mut_obj_add_val(doc, o, "conditions",
			       gw_conds_json(doc, &conds, gen, prev_listener(status, li->l->name),
					     c->opts->now_ms));
}

static int render_gateway(struct rctx *c, struct gw_result *out, struct rgw *g)
{
	yyjson_mut_doc *doc = new_doc(c);
	struct gw_conds conds = {0};
	int64_t gen = g->g.obj->generation;

	if (!doc)
		return -ENOMEM;
	yyjson_mut_val *root = yyjson_mut_obj(doc);
	yyjson_mut_doc_set_root(doc, root);
	yyjson_mut_val *addrs = yyjson_mut_obj_add_arr(doc, root, "addresses");
	for (int i = 0; i < g->n_addrs; i++) {
		yyjson_mut_val *a = yyjson_mut_arr_add_obj(doc, addrs);
		yyjson_mut_obj_add_str(doc, a, "type", "IPAddress");
		yyjson_mut_obj_add_str(doc, a, "value", g->addrs[i]);
	}
	gw_cond_set(&conds, "Accepted", g->accepted, g->acc_reason, g->acc_msg);
	gw_cond_set(&conds, "Programmed", g->programmed, g->prog_reason, g->prog_msg);
	if (g->has_refs_cond) {
		if (g->refs_ok)
			gw_cond_set(&conds, "ResolvedRefs", true, "ResolvedRefs",
				    "all references resolved");
		else
			gw_cond_set(&conds, "ResolvedRefs", false, g->refs_reason, g->refs_msg);
	}
	if (g->insecure_fallback)
		gw_cond_set(&conds, "InsecureFrontendValidationMode", true, "ConfigurationChanged",
			    "a listener accepts clients without a valid certificate");
	yyjson_mut_obj_add_val(
		doc, root, "conditions",
		gw_conds_json(doc, &conds, gen, prev_conds(g->g.status), c->opts->now_ms));
	yyjson_mut_val *ls = yyjson_mut_obj_add_arr(doc, root, "listeners");
	for (size_t i = 0; i < g->n_lis; i++)
		listener_json(c, doc, ls, &g->lis[i], gen, g->g.status);
	yyjson_mut_obj_add_int(doc, root, "attachedListenerSets", g->attached_sets);
	return push_status(c, out, g->g.obj, doc);
}

static int render_listenerset(struct rctx *c, struct gw_result *out, struct rls *s)
{
	yyjson_mut_doc *doc = new_doc(c);
	struct gw_conds conds = {0};
	int64_t gen = s->s.obj->generation;

	if (!doc)
		return -ENOMEM;
	yyjson_mut_val *root = yyjson_mut_obj(doc);
	yyjson_mut_doc_set_root(doc, root);
	gw_cond_set(&conds, "Accepted", s->accepted, s->acc_reason, s->acc_msg);
	gw_cond_set(&conds, "Programmed", s->programmed, s->prog_reason,
		    s->programmed ? "served by waygate" : s->acc_msg);
	yyjson_mut_obj_add_val(
		doc, root, "conditions",
		gw_conds_json(doc, &conds, gen, prev_conds(s->s.status), c->opts->now_ms));
	yyjson_mut_val *ls = yyjson_mut_obj_add_arr(doc, root, "listeners");
	for (size_t i = 0; i < s->n_lis; i++)
		listener_json(c, doc, ls, &s->lis[i], gen, s->s.status);
	return push_status(c, out, s->s.obj, doc);
}

static bool ref_matches(yyjson_val *pr, const struct gw_ref *r)
{
	const char *g = yyjson_get_str(yyjson_obj_get(pr, "group"));
	const char *k = yyjson_get_str(yyjson_obj_get(pr, "kind"));
	const char *n = yyjson_get_str(yyjson_obj_get(pr, "name"));
	const char *ns = yyjson_get_str(yyjson_obj_get(pr, "namespace"));
	const char *sn = yyjson_get_str(yyjson_obj_get(pr, "sectionName"));
	yyjson_val *port = yyjson_obj_get(pr, "port");

	if (!n || strcmp(n, r->name) || strcmp(g ? g : GW_GROUP, r->group) ||
	    strcmp(k ? k : "Gateway", r->kind))
		return false;
	if (ns && strcmp(ns, r->ns))
		return false;
	if (!sn != !r->section || (sn && strcmp(sn, r->section)))
		return false;
	if (yyjson_is_int(port) != r->port_set || (r->port_set && yyjson_get_sint(port) != r->port))
		return false;
	return true;
}

static yyjson_val *prev_parent(struct rctx *c, yyjson_val *status, const char *list,
			       const char *refkey, const struct gw_ref *r)
{
	size_t i, max;
	yyjson_val *p;

	yyjson_arr_foreach(yyjson_obj_get(status, list), i, max, p)
	{
		const char *ctl = yyjson_get_str(yyjson_obj_get(p, "controllerName"));
		if (ctl && c->opts->controller_name && !strcmp(ctl, c->opts->controller_name) &&
		    ref_matches(yyjson_obj_get(p, refkey), r))
			return yyjson_obj_get(p, "conditions");
	}
	return NULL;
}

static void add_ref(yyjson_mut_doc *doc, yyjson_mut_val *o, const char *key, const struct gw_ref *r)
{
	yyjson_mut_val *pr = yyjson_mut_obj_add_obj(doc, o, key);
	yyjson_mut_obj_add_str(doc, pr, "group", r->group);
	yyjson_mut_obj_add_str(doc, pr, "kind", r->kind);
	yyjson_mut_obj_add_str(doc, pr, "namespace", r->ns);
	yyjson_mut_obj_add_str(doc, pr, "name", r->name);
	if (r->section)
		yyjson_mut_obj_add_str(doc, pr, "sectionName", r->section);
	if (r->port_set)
		yyjson_mut_obj_add_int(doc, pr, "port", r->port);
}

static bool same_ref(const struct gw_ref *a, const struct gw_ref *b)
{
	return !strcmp(a->group, b->group) && !strcmp(a->kind, b->kind) && !strcmp(a->ns, b->ns) &&
	       !strcmp(a->name, b->name) && !a->section == !b->section &&
	       (!a->section || !strcmp(a->section, b->section)) && a->port_set == b->port_set &&
	       a->port == b->port;
}

/* Whether the object's current status has an entry our controller wrote:
 * then an empty list must be written so that the stale entry goes. */
static bool has_our_entry(struct rctx *c, yyjson_val *status, const char *list)
{
	size_t i, max;
	yyjson_val *p;

	yyjson_arr_foreach(yyjson_obj_get(status, list), i, max, p)
	{
		const char *ctl = yyjson_get_str(yyjson_obj_get(p, "controllerName"));
		if (ctl && c->opts->controller_name && !strcmp(ctl, c->opts->controller_name))
			return true;
	}
	return false;
}

static int render_route(struct rctx *c, struct gw_result *out, struct croute *cr)
{
	bool any = false;

	for (size_t i = 0; i < cr->r.n_parents; i++)
		any |= cr->parents[i].ours;
	if (!any && !has_our_entry(c, cr->r.status, "parents"))
		return 0;
	yyjson_mut_doc *doc = new_doc(c);
	if (!doc)
		return -ENOMEM;
	yyjson_mut_val *root = yyjson_mut_obj(doc);
	yyjson_mut_doc_set_root(doc, root);
	yyjson_mut_val *parents = yyjson_mut_obj_add_arr(doc, root, "parents");
	for (size_t i = 0; i < cr->r.n_parents; i++) {
		const struct rparent *rp = &cr->parents[i];
		const struct gw_ref *r = &cr->r.parents[i];
		bool dup = false;
		if (!rp->ours)
			continue;
		for (size_t j = 0; j < i; j++)
			dup |= cr->parents[j].ours && same_ref(&cr->r.parents[j], r);
		if (dup)
			continue;
		yyjson_mut_val *o = yyjson_mut_arr_add_obj(doc, parents);
		add_ref(doc, o, "parentRef", r);
		yyjson_mut_obj_add_str(doc, o, "controllerName", c->opts->controller_name);
		yyjson_mut_obj_add_val(
			doc, o, "conditions",
			gw_conds_json(doc, &rp->conds, cr->r.obj->generation,
				      prev_parent(c, cr->r.status, "parents", "parentRef", r),
				      c->opts->now_ms));
	}
	return push_status(c, out, cr->r.obj, doc);
}

static int render_policy(struct rctx *c, struct gw_result *out, struct rpolicy *p)
{
	if (!p->ancestors.n && !has_our_entry(c, p->p.status, "ancestors"))
		return 0;
	yyjson_mut_doc *doc = new_doc(c);
	if (!doc)
		return -ENOMEM;
	yyjson_mut_val *root = yyjson_mut_obj(doc);
	yyjson_mut_doc_set_root(doc, root);
	yyjson_mut_val *anc = yyjson_mut_obj_add_arr(doc, root, "ancestors");
	for (size_t i = 0; i < p->ancestors.n; i++) {
		const struct rgw *g = p->ancestors.v[i];
		struct gw_ref r = {.group = GW_GROUP,
				   .kind = "Gateway",
				   .ns = g->g.obj->ns,
				   .name = g->g.obj->name};
		struct gw_conds conds = {0};
		yyjson_mut_val *o = yyjson_mut_arr_add_obj(doc, anc);
		add_ref(doc, o, "ancestorRef", &r);
		yyjson_mut_obj_add_str(doc, o, "controllerName", c->opts->controller_name);
		gw_cond_set(&conds, "Accepted", p->accepted, p->acc_reason, p->acc_msg);
		gw_cond_set(&conds, "ResolvedRefs", p->resolved, p->ref_reason, p->ref_msg);
		yyjson_mut_obj_add_val(
			doc, o, "conditions",
			gw_conds_json(doc, &conds, p->p.obj->generation,
				      prev_parent(c, p->p.status, "ancestors", "ancestorRef", &r),
				      c->opts->now_ms));
	}
	return push_status(c, out, p->p.obj, doc);
}

/* Renders every status but those of routes not in v (v NULL: all). */
static int render(struct rctx *c, struct gw_result *out, struct croute *const *v, size_t n)
{
	int rc = 0;

	c->ra = c->opts->skip_statuses ? NULL : arena_new(32 * 1024);
	if (!c->ra && !c->opts->skip_statuses)
		return -ENOMEM;

	for (size_t i = 0; i < c->n_classes && !rc && c->ra; i++)
		rc = render_class(c, out, &c->classes[i]);
	for (size_t i = 0; i < c->n_gws && !rc && c->ra; i++)
		rc = render_gateway(c, out, c->gws[i]);
	for (size_t i = 0; i < c->n_lss && !rc && c->ra; i++)
		rc = render_listenerset(c, out, c->lss[i]);
	for (int t = 0; t < GW_RT_COUNT && c->ra && !v; t++)
		for (size_t i = 0; i < c->n_routes[t] && !rc; i++)
			rc = render_route(c, out, c->routes[t][i]);
	for (size_t i = 0; i < n && !rc && c->ra; i++)
		rc = render_route(c, out, v[i]);
	for (size_t i = 0; i < c->n_pols && !rc && c->ra; i++)
		rc = render_policy(c, out, c->pols[i]);
	arena_free(c->ra);
	c->ra = NULL;
	if (rc)
		return rc;
	out->gateways = calloc(c->n_gws ? c->n_gws : 1, sizeof(char *));
	out->addresses = calloc(c->n_gws ? c->n_gws : 1, sizeof(char *));
	if (!out->gateways || !out->addresses)
		return -ENOMEM;
	for (size_t i = 0; i < c->n_gws; i++) {
		struct rgw *g = c->gws[i];
		if (!g->n_addrs)
			continue;
		out->gateways[out->n_gateways] = strdup(g->key);
		out->addresses[out->n_gateways] = strdup(g->addrs[0]);
		if (!out->gateways[out->n_gateways] || !out->addresses[out->n_gateways])
			return -ENOMEM;
		out->n_gateways++;
	}
	return 0;
}

int rc_render(struct rctx *c, struct gw_result *out)
{
	return render(c, out, NULL, 0);
}

int rc_render_some(struct rctx *c, struct gw_result *out, struct croute *const *v, size_t n)
{
	static struct croute *const none[1];
	return render(c, out, v ? v : none, n);
}
