// SPDX-License-Identifier: MIT
/*
 * infra.c: Gateway infrastructure propagation, the cluster half. After each
 * reconcile, kube_infra_submit() computes the Service every Gateway waygate
 * programs should have (gwapi/infra.c builds it) and keeps the cluster in
 * line with that: a missing Service is created (POST), one whose labels,
 * annotations, owner reference or ports differ is updated with a JSON merge
 * patch carrying its resourceVersion as the precondition, and a Service
 * this box made (labelled managed-by waygate, annotated with our
 * controllerName) that no Gateway of ours wants any more is deleted with
 * its uid as the precondition. A Service that merely has the name but is
 * not managed by waygate is never touched (said once in the log).
 *
 * What the cluster holds is read from the object set: the watch client
 * lists and watches every Service. The queue holds names, not requests:
 * what to do is decided when a name's turn comes, against the set as it is
 * then, so a burst of reconciles costs one write per Service at most.
 * Writes share the status writer's pace (status_rate_per_s, token bucket),
 * are retried with backoff after 429, 5xx and transport errors, and after
 * a 409 the Service is read again and the decision redone. A Service given
 * up on is looked at again after recheck_ms.
 *
 * Not here: what the Service says (gwapi/infra.c), which Gateways exist
 * (reconcile). Runs on the control thread's loop, never blocks.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yyjson.h>

#include "core/err.h"
#include "core/hash.h"
#include "core/log.h"
#include "core/loop.h"
#include "gwapi/infra.h"
#include "gwapi/objset.h"
#include "kube/internal.h"
#include "kube/kube.h"

#define INFRA_MAX_ATTEMPTS 6

/* The Service one Gateway of ours should have. */
struct kiwant {
	char *ns, *name;
	char *json;
	yyjson_doc *doc;
	bool warned; /* a Service not managed by waygate holds the name: logged */
};

/* A Service name waiting for its turn ("ns/name"). */
struct kiq {
	char *key, *ns, *name;
	uint32_t attempts;
	/* in flight: the resourceVersion the set held when the request was
	 * sent ("" = none). The answer updates the set only while it still
	 * holds that one: a watch event that arrived meanwhile is newer. */
	char *sent_rv;
	struct fifo_link link; /* on kinfra.order while queued */
};

enum kiop { KI_NONE = 0, KI_CREATE, KI_UPDATE, KI_DELETE, KI_GET };

static const char *const op_name[] = {"none", "create", "update", "delete", "get"};

struct kinfra {
	struct kmap want;  /* "ns/name" -> struct kiwant */
	struct kmap queue; /* "ns/name" -> struct kiq, those queued */
	/* "ns/name" -> last status the server refused a write with (as a
	 * pointer-sized integer): a refusal repeated at each resync (RBAC
	 * without rights on Services) is logged once, then at debug level */
	struct kmap refused;
	struct fifo order; /* struct kiq, oldest first */
	struct kiq *cur; /* in flight */
	enum kiop cur_op;
	struct khttp_conn conn;
	struct timer timer;  /* pace and backoff */
	struct timer resync; /* after giving up on a Service */
	struct pace pace; /* writes, o.status_rate_per_s */
	uint32_t attempt; /* consecutive failures: the backoff exponent */
	bool have_want;   /* a submit computed the wanted set at least once */
	uint64_t writes;
};

static void infra_kick(struct kube_watch *w);

/* ---- pure helpers (unit-tested) ---- */

/* Labels/annotations: the merge patch from cur to want (string maps),
 * or NULL when equal. Missing maps count as empty. */
static yyjson_mut_val *map_diff(yyjson_mut_doc *m, yyjson_val *cur, yyjson_val *want)
{
	yyjson_mut_val *out = yyjson_mut_obj(m);
	yyjson_obj_iter it;
	yyjson_val *k;

	if (!out)
		return NULL;
	if (yyjson_is_obj(cur)) {
		yyjson_obj_iter_init(cur, &it);
		while ((k = yyjson_obj_iter_next(&it)))
			if (!yyjson_obj_get(want, yyjson_get_str(k)))
				yyjson_mut_obj_add(out, yyjson_val_mut_copy(m, k),
						   yyjson_mut_null(m));
	}
	if (yyjson_is_obj(want)) {
		yyjson_obj_iter_init(want, &it);
		while ((k = yyjson_obj_iter_next(&it))) {
			yyjson_val *wv = yyjson_obj_iter_get_val(k);
			yyjson_val *cv = yyjson_obj_get(cur, yyjson_get_str(k));

			if (cv && yyjson_equals(cv, wv))
				continue;
			yyjson_mut_obj_add(out, yyjson_val_mut_copy(m, k),
					   yyjson_val_mut_copy(m, wv));
		}
	}
	return yyjson_mut_obj_size(out) ? out : NULL;
}

/* Whether the ports the server holds say what we asked: same count, and
 * every field we set equal (the server may add defaults beside them). */
static bool ports_same(yyjson_val *cur, yyjson_val *want)
{
	size_t n = yyjson_arr_size(want);

	if (yyjson_arr_size(cur) != n)
		return false;
	for (size_t i = 0; i < n; i++) {
		yyjson_val *wp = yyjson_arr_get(want, i), *cp = yyjson_arr_get(cur, i), *k;
		yyjson_obj_iter it;

		yyjson_obj_iter_init(wp, &it);
		while ((k = yyjson_obj_iter_next(&it))) {
			yyjson_val *cv = yyjson_obj_get(cp, yyjson_get_str(k));

			if (!cv || !yyjson_equals(cv, yyjson_obj_iter_get_val(k)))
				return false;
		}
	}
	return true;
}

/*
 * The merge patch that moves cur (a Service as the server holds it) to
 * want (the desired one): labels and annotations are ours whole (keys to
 * drop become null), ownerReferences and spec.ports are replaced whole, a
 * selector is removed, the type set. cur's resourceVersion is the
 * precondition. Returns 1 with *out (caller frees), 0 when nothing
 * differs (*out NULL), or -ENOMEM.
 */
static int infra_patch(yyjson_val *cur, yyjson_val *want, char **out, size_t *len)
{
	yyjson_val *cmd = yyjson_obj_get(cur, "metadata"), *wmd = yyjson_obj_get(want, "metadata");
	yyjson_val *cspec = yyjson_obj_get(cur, "spec"), *wspec = yyjson_obj_get(want, "spec");
	yyjson_val *cref = yyjson_obj_get(cmd, "ownerReferences");
	yyjson_val *wref = yyjson_obj_get(wmd, "ownerReferences");
	yyjson_val *wtype = yyjson_obj_get(wspec, "type");
	yyjson_mut_doc *m = yyjson_mut_doc_new(NULL);
	yyjson_mut_val *root, *md, *spec, *d;
	const char *rv = yyjson_get_str(yyjson_obj_get(cmd, "resourceVersion"));
	bool changed = false;
	int rc = -ENOMEM;

	*out = NULL;
	*len = 0;
	if (!m)
		return -ENOMEM;
	root = yyjson_mut_obj(m);
	md = yyjson_mut_obj(m);
	spec = yyjson_mut_obj(m);
	if (!root || !md || !spec)
		goto out;
	yyjson_mut_doc_set_root(m, root);
	if (rv)
		yyjson_mut_obj_add_strcpy(m, md, "resourceVersion", rv);
	if ((d = map_diff(m, yyjson_obj_get(cmd, "labels"), yyjson_obj_get(wmd, "labels")))) {
		yyjson_mut_obj_add_val(m, md, "labels", d);
		changed = true;
	}
	if ((d = map_diff(m, yyjson_obj_get(cmd, "annotations"),
			  yyjson_obj_get(wmd, "annotations")))) {
		yyjson_mut_obj_add_val(m, md, "annotations", d);
		changed = true;
	}
	if ((cref || wref) && !(cref && wref && yyjson_equals(cref, wref))) {
		yyjson_mut_obj_add_val(m, md, "ownerReferences",
				       wref ? yyjson_val_mut_copy(m, wref) : yyjson_mut_null(m));
		changed = true;
	}
	if (!ports_same(yyjson_obj_get(cspec, "ports"), yyjson_obj_get(wspec, "ports"))) {
		yyjson_mut_obj_add_val(m, spec, "ports",
				       yyjson_val_mut_copy(m, yyjson_obj_get(wspec, "ports")));
		changed = true;
	}
	if (yyjson_obj_size(yyjson_obj_get(cspec, "selector"))) {
		yyjson_mut_obj_add_null(m, spec, "selector");
		changed = true;
	}
	if (wtype && !yyjson_equals(yyjson_obj_get(cspec, "type"), wtype)) {
		yyjson_mut_obj_add_val(m, spec, "type", yyjson_val_mut_copy(m, wtype));
		changed = true;
	}
	if (!changed) {
		rc = 0;
		goto out;
	}
	yyjson_mut_obj_add_val(m, root, "metadata", md);
	if (yyjson_mut_obj_size(spec))
		yyjson_mut_obj_add_val(m, root, "spec", spec);
	*out = yyjson_mut_write(m, 0, len);
	rc = *out ? 1 : -ENOMEM;
out:
	yyjson_mut_doc_free(m);
	return rc;
}

static const char *svc_label(const struct gw_object *o, const char *key)
{
	yyjson_val *md = yyjson_obj_get(yyjson_doc_get_root(o->doc), "metadata");

	return yyjson_get_str(yyjson_obj_get(yyjson_obj_get(md, "labels"), key));
}

static const char *svc_annotation(const struct gw_object *o, const char *key)
{
	yyjson_val *md = yyjson_obj_get(yyjson_doc_get_root(o->doc), "metadata");

	return yyjson_get_str(yyjson_obj_get(yyjson_obj_get(md, "annotations"), key));
}

static bool svc_is_managed(const struct gw_object *o)
{
	const char *v = svc_label(o, GW_INFRA_LABEL_MANAGED_BY);

	return v && !strcmp(v, GW_INFRA_MANAGED_BY);
}

/* Managed by waygate and written by this controller: ours to delete. */
static bool svc_is_ours(const struct gw_object *o, const char *controller)
{
	const char *c = svc_annotation(o, GW_INFRA_ANN_CONTROLLER);

	return svc_is_managed(o) && c && !strcmp(c, controller);
}

static bool svc_is_deleting(const struct gw_object *o)
{
	yyjson_val *md = yyjson_obj_get(yyjson_doc_get_root(o->doc), "metadata");

	return yyjson_obj_get(md, "deletionTimestamp") != NULL;
}

/* ---- wanted set and queue ---- */

static char *svc_key(const char *ns, const char *name)
{
	char *s;

	return asprintf(&s, "%s/%s", ns, name) == -1 ? NULL : s;
}

static void want_free(struct kiwant *x)
{
	if (!x)
		return;
	free(x->ns);
	free(x->name);
	free(x->json);
	yyjson_doc_free(x->doc);
	free(x);
}

static bool want_drop(void *arg, const char *key, void *val)
{
	(void)arg;
	(void)key;
	want_free(val);
	return true;
}

static void kiq_free(struct kiq *e)
{
	if (!e)
		return;
	free(e->key);
	free(e->ns);
	free(e->name);
	free(e->sent_rv);
	free(e);
}

/* Queues key (front or back) unless it is queued already. */
static void enqueue(struct kinfra *in, const char *ns, const char *name, bool front,
		    uint32_t attempts)
{
	struct kiq *e;
	char *key = svc_key(ns, name);

	if (!key || kmap_get(&in->queue, key)) {
		free(key);
		return;
	}
	e = calloc(1, sizeof(*e));
	if (!e || !(e->ns = strdup(ns)) || !(e->name = strdup(name)) ||
	    kmap_put(&in->queue, key, e, NULL)) {
		kiq_free(e);
		free(key);
		return;
	}
	e->key = key;
	e->attempts = attempts;
	fifo_push(&in->order, &e->link, front);
}

static struct kiq *dequeue(struct kinfra *in)
{
	struct fifo_link *l = fifo_pop(&in->order);
	struct kiq *e;

	if (!l)
		return NULL;
	e = fifo_entry(l, struct kiq, link);
	kmap_del(&in->queue, e->key);
	return e;
}

/* What the Service ns/name needs now. */
static enum kiop infra_action(struct kube_watch *w, const char *ns, const char *name)
{
	struct kinfra *in = w->infra;
	char *key = svc_key(ns, name);
	struct kiwant *x = key ? kmap_get(&in->want, key) : NULL;
	const struct gw_object *svc = gw_objset_get(w->set, GW_K_SERVICE, ns, name);
	enum kiop op = KI_NONE;
	char *patch = NULL;
	size_t plen;

	free(key);
	if (x && !svc)
		return KI_CREATE;
	if (!svc || svc_is_deleting(svc))
		return KI_NONE; /* a Service going away: its DELETED event brings us back */
	if (!x)
		return svc_is_ours(svc, w->controller) ? KI_DELETE : KI_NONE;
	if (!svc_is_managed(svc)) {
		if (!x->warned)
			log_warn("event=kube_infra_conflict ns=%s name=%s reason=\"a Service not "
				 "managed by waygate has this name; left alone\"",
				 ns, name);
		x->warned = true;
		return KI_NONE;
	}
	if (infra_patch(yyjson_doc_get_root(svc->doc), yyjson_doc_get_root(x->doc), &patch,
			&plen) != 0)
		op = KI_UPDATE; /* a difference, or no memory to tell: try */
	free(patch);
	return op;
}

/* Queues every Service that needs a write: those wanted and those of
 * ours in the set. */
static void enqueue_all(struct kube_watch *w)
{
	struct kinfra *in = w->infra;
	const struct gw_object *const *v;
	size_t n;

	for (size_t b = 0; b < in->want.nb; b++)
		for (struct kmap_ent *e = in->want.b[b]; e; e = e->next) {
			struct kiwant *x = e->val;

			if (infra_action(w, x->ns, x->name) != KI_NONE)
				enqueue(in, x->ns, x->name, false, 0);
		}
	v = gw_objset_list(w->set, GW_K_SERVICE, &n);
	for (size_t i = 0; i < n; i++) {
		if (!svc_is_ours(v[i], w->controller))
			continue;
		if (infra_action(w, v[i]->ns, v[i]->name) != KI_NONE)
			enqueue(in, v[i]->ns, v[i]->name, false, 0);
	}
}

static struct kinfra *infra_get(struct kube_watch *w)
{
	struct kinfra *in = w->infra;

	if (in)
		return in;
	in = calloc(1, sizeof(*in));
	if (!in)
		return NULL;
	khttp_init(&in->conn, &w->cl, "infra");
	pace_init(&in->pace, w->o.status_rate_per_s);
	w->infra = in;
	return in;
}

void kube_infra_submit(struct kube_watch *w, struct gw_objset *set)
{
	struct kmap want = {0};
	const struct gw_object *const *gws;
	struct kinfra *in;
	size_t n;

	if (!w || !set || !w->cl.cfg || !w->ver[GW_K_SERVICE] || !w->ver[GW_K_GATEWAY] ||
	    !kube_watch_synced(w))
		return; /* never judge what to delete from a partial view */
	in = infra_get(w);
	if (!in)
		return;
	gws = gw_objset_list(set, GW_K_GATEWAY, &n);
	for (size_t i = 0; i < n; i++) {
		const struct gw_object *g = gws[i];
		struct gw_infra_service s;
		struct kiwant *x, *old;
		char *key;
		int rc;

		if ((g->source && strcmp(g->source, "cluster") != 0) ||
		    !gw_infra_gateway_is_ours(set, g, w->controller))
			continue;
		rc = gw_infra_service_build(g, w->controller, &s);
		if (rc == -EINVAL)
			continue;
		if (rc)
			goto nomem;
		x = calloc(1, sizeof(*x));
		if (!x) {
			free(s.json);
			goto nomem;
		}
		x->json = s.json;
		x->ns = strdup(s.ns);
		x->name = strdup(s.name);
		x->doc = yyjson_read(x->json, s.len, 0);
		key = x->ns && x->name && x->doc ? svc_key(x->ns, x->name) : NULL;
		if (!key) {
			want_free(x);
			goto nomem;
		}
		if (kmap_get(&want, key)) {
			/* two Gateways, one Service name: the first (by namespace
			 * and name) keeps it */
			log_debug("event=kube_infra_name_taken ns=%s name=%s gateway=%s", x->ns,
				  x->name, g->name);
			want_free(x);
			free(key);
			continue;
		}
		if (kmap_put(&want, key, x, NULL)) {
			want_free(x);
			free(key);
			goto nomem;
		}
		old = kmap_get(&in->want, key);
		if (old)
			x->warned = old->warned;
		free(key);
	}
	kmap_each(&in->want, want_drop, NULL);
	kmap_fini(&in->want);
	in->want = want;
	in->have_want = true;
	enqueue_all(w);
	infra_kick(w);
	return;
nomem:
	/* keep the previous wanted set: no Service is deleted for want of memory */
	kmap_each(&want, want_drop, NULL);
	kmap_fini(&want);
	log_warn("event=kube_infra_failed reason=%s", log_q(err_str(-ENOMEM)));
}

size_t kube_infra_pending(const struct kube_watch *w)
{
	const struct kinfra *in = w ? w->infra : NULL;
	size_t n;

	if (!in)
		return 0;
	n = in->cur ? 1 : 0;
	for (const struct fifo_link *l = in->order.head; l; l = l->next)
		n++;
	return n;
}

/* ---- requests ---- */

static void infra_done(void *arg, int err, const struct khttp_resp *r, const char *body,
		       size_t len);
static const struct khttp_ops infra_ops = {NULL, infra_done};

static void on_infra_timer(struct timer *t)
{
	infra_kick(t->arg);
}

static void on_resync_timer(struct timer *t)
{
	struct kube_watch *w = t->arg;

	if (w->infra->have_want && kube_watch_synced(w)) {
		enqueue_all(w);
		infra_kick(w);
	}
}

/* Whether the set still holds the version of e's Service it held when the
 * request was sent. */
static bool set_unchanged(struct kube_watch *w, const struct kiq *e)
{
	const struct gw_object *o = gw_objset_get(w->set, GW_K_SERVICE, e->ns, e->name);
	const char *rv = o && o->resource_version ? o->resource_version : "";

	return e->sent_rv && !strcmp(rv, e->sent_rv);
}

/* The Service is gone (deleted by us, or found missing). */
static void infra_forget(struct kube_watch *w, const struct kiq *e)
{
	if (set_unchanged(w, e))
		gw_objset_del(w->set, GW_K_SERVICE, e->ns, e->name);
}

/* Puts a Service the server returned into the set, as the watch will
 * deliver it, so that its own event is no change and the next decision
 * sees it; unless the watch delivered a newer one meanwhile. The owner is
 * not notified: nothing reconcile reads changed. */
static void infra_refresh(struct kube_watch *w, const struct kiq *e, const char *body, size_t len)
{
	yyjson_doc *d = yyjson_read(body ? body : "", len, 0);
	struct gw_object *o = NULL;
	char msg[160], *json;
	size_t jl;

	json = d ? kube_item_json(GW_K_SERVICE, w->ver[GW_K_SERVICE], yyjson_doc_get_root(d), &jl)
		 : NULL;
	if (json)
		o = gw_object_parse((int)GW_K_SERVICE, json, jl, msg, sizeof(msg));
	free(json);
	yyjson_doc_free(d);
	if (!o)
		return;
	o->source = "cluster";
	if (set_unchanged(w, e))
		gw_objset_put(w->set, o);
	else
		gw_object_unref(o);
}

static void infra_retry(struct kube_watch *w, struct kiq *e, int retry_after_s)
{
	struct kinfra *in = w->infra;
	uint64_t d = kube_backoff_ms(in->attempt++, w->o.backoff_min_ms, w->o.backoff_max_ms,
				     (uint32_t)rand_u64());

	if (retry_after_s >= 0 && (uint64_t)retry_after_s * 1000 > d)
		d = (uint64_t)retry_after_s * 1000;
	if (e->attempts + 1 > INFRA_MAX_ATTEMPTS) {
		log_warn("event=kube_infra_failed ns=%s name=%s reason=\"too many attempts\"",
			 e->ns, e->name);
		if (!timer_is_armed(&in->resync))
			timer_add(w->loop, &in->resync, w->o.recheck_ms, on_resync_timer, w);
	} else {
		enqueue(in, e->ns, e->name, true, e->attempts + 1);
	}
	kiq_free(e);
	timer_add(w->loop, &in->timer, d, on_infra_timer, w);
}

static void log_rejected(struct kube_watch *w, const struct kiq *e, enum kiop op, int status,
			 const char *body, size_t len)
{
	yyjson_doc *d = yyjson_read(body ? body : "", len, 0);
	const char *msg = yyjson_get_str(yyjson_obj_get(yyjson_doc_get_root(d), "message"));
	void *prev = kmap_get(&w->infra->refused, e->key);

	log_msg((intptr_t)prev == status ? LOG_DEBUG : LOG_WARN,
		"event=kube_infra_rejected op=%s ns=%s name=%s status=%d reason=%s", op_name[op],
		e->ns, e->name, status, log_q(msg ? msg : "unknown"));
	yyjson_doc_free(d);
	kmap_put(&w->infra->refused, e->key, (void *)(intptr_t)status, NULL);
	if (!timer_is_armed(&w->infra->resync))
		timer_add(w->loop, &w->infra->resync, w->o.recheck_ms, on_resync_timer, w);
}

static char *svc_path(struct kube_watch *w, const char *ns, const char *name)
{
	char *coll = kube_collection_path(GW_K_SERVICE, w->ver[GW_K_SERVICE], ns), *p = NULL;

	if (coll && name && asprintf(&p, "%s/%s", coll, name) == -1)
		p = NULL;
	if (!name)
		return coll;
	free(coll);
	return p;
}

/* Starts op for e. 0, or a negative code (then nothing is in flight). */
static int infra_send(struct kube_watch *w, struct kiq *e, enum kiop op)
{
	struct kinfra *in = w->infra;
	const struct gw_object *svc = gw_objset_get(w->set, GW_K_SERVICE, e->ns, e->name);
	struct kiwant *x = kmap_get(&in->want, e->key);
	char *path = svc_path(w, e->ns, op == KI_CREATE ? NULL : e->name), *body = NULL;
	const char *method = "GET";
	size_t blen = 0;
	int rc = -ENOMEM;

	if (!path)
		goto out;
	switch (op) {
	case KI_CREATE:
		method = "POST";
		body = x ? strdup(x->json) : NULL;
		blen = body ? strlen(body) : 0;
		break;
	case KI_UPDATE:
		method = "PATCH";
		if (!x || !svc ||
		    infra_patch(yyjson_doc_get_root(svc->doc), yyjson_doc_get_root(x->doc), &body,
				&blen) <= 0)
			goto out;
		break;
	case KI_DELETE:
		method = "DELETE";
		if (!svc || asprintf(&body,
				     "{\"apiVersion\":\"v1\",\"kind\":\"DeleteOptions\","
				     "\"preconditions\":{\"uid\":\"%s\"}}",
				     svc->uid ? svc->uid : "") == -1) {
			body = NULL;
			goto out;
		}
		if (!svc->uid || !*svc->uid) {
			free(body);
			body = NULL; /* no uid known: no precondition */
		}
		blen = body ? strlen(body) : 0;
		break;
	case KI_GET: break;
	default: rc = -EINVAL; goto out;
	}
	if (op != KI_GET && op != KI_DELETE && !body)
		goto out;
	free(e->sent_rv);
	e->sent_rv = strdup(svc && svc->resource_version ? svc->resource_version : "");
	if (!e->sent_rv)
		goto out;
	in->cur = e;
	in->cur_op = op;
	rc = khttp_request(&in->conn, method, path, body, blen, false, 0, &infra_ops, w);
	if (rc) {
		in->cur = NULL;
		in->cur_op = KI_NONE;
	}
out:
	free(body);
	free(path);
	return rc;
}

static void infra_done(void *arg, int err, const struct khttp_resp *r, const char *body, size_t len)
{
	struct kube_watch *w = arg;
	struct kinfra *in = w->infra;
	struct kiq *e = in->cur;
	enum kiop op = in->cur_op;

	in->cur = NULL;
	in->cur_op = KI_NONE;
	if (!e)
		return;
	if (err || r->status == 429 || r->status >= 500) {
		log_info("event=kube_infra_retry op=%s ns=%s name=%s reason=%s", op_name[op], e->ns,
			 e->name,
			 err ? log_q(in->conn.error[0] ? in->conn.error : err_str(err)) : "server");
		infra_retry(w, e, err ? -1 : r->retry_after_s);
		return;
	}
	if (op == KI_GET) {
		/* after a conflict: what the server holds now, then decide again */
		if (r->status == 200)
			infra_refresh(w, e, body, len);
		else if (r->status == 404)
			infra_forget(w, e);
		if (r->status == 200 || r->status == 404) {
			if (e->attempts + 1 <= INFRA_MAX_ATTEMPTS)
				enqueue(in, e->ns, e->name, true, e->attempts + 1);
		} else {
			log_rejected(w, e, op, r->status, body, len);
		}
		kiq_free(e);
		infra_kick(w);
		return;
	}
	switch (r->status) {
	case 200:
	case 201:
	case 202:
		in->attempt = 0;
		in->writes++;
		kmap_del(&in->refused, e->key);
		log_info("event=kube_infra_%s kind=Service ns=%s name=%s",
			 op == KI_CREATE   ? "created"
			 : op == KI_UPDATE ? "updated"
					   : "deleted",
			 e->ns, e->name);
		if (op == KI_DELETE)
			infra_forget(w, e);
		else
			infra_refresh(w, e, body, len);
		break;
	case 409:
		/* created meanwhile, or changed since the set saw it: read it */
		log_info("event=kube_infra_conflict op=%s ns=%s name=%s", op_name[op], e->ns,
			 e->name);
		if (e->attempts + 1 > INFRA_MAX_ATTEMPTS)
			break;
		e->attempts++;
		if (infra_send(w, e, KI_GET) == 0)
			return;
		break;
	default:
		if (r->status == 404 && op != KI_CREATE) {
			/* gone meanwhile: created again when still wanted */
			infra_forget(w, e);
			if (op == KI_UPDATE)
				enqueue(in, e->ns, e->name, true, e->attempts + 1);
			break;
		}
		log_rejected(w, e, op, r->status, body, len); /* 404 on create: no namespace */
		break;
	}
	kiq_free(e);
	infra_kick(w);
}

static void infra_kick(struct kube_watch *w)
{
	struct kinfra *in = w->infra;

	if (!in || in->cur || timer_is_armed(&in->timer) || !w->cl.cfg)
		return;
	while (!fifo_is_empty(&in->order)) {
		struct kiq *e;
		enum kiop op;

		uint64_t wait = pace_wait_ms(&in->pace, w->o.status_rate_per_s, clock_mono_ms());

		if (wait) {
			timer_add(w->loop, &in->timer, wait, on_infra_timer, w);
			return;
		}
		e = dequeue(in);
		op = w->ver[GW_K_SERVICE] ? infra_action(w, e->ns, e->name) : KI_NONE;
		if (op == KI_NONE || infra_send(w, e, op) != 0) {
			kiq_free(e);
			continue;
		}
		pace_spend(&in->pace);
		return;
	}
}

void kube_infra_fini(struct kube_watch *w)
{
	struct kinfra *in = w->infra;
	struct kiq *e;

	if (!in)
		return;
	khttp_fini(&in->conn);
	timer_cancel(w->loop, &in->timer);
	timer_cancel(w->loop, &in->resync);
	while ((e = dequeue(in)))
		kiq_free(e);
	kiq_free(in->cur);
	kmap_fini(&in->queue);
	kmap_fini(&in->refused);
	kmap_each(&in->want, want_drop, NULL);
	kmap_fini(&in->want);
	free(in);
	w->infra = NULL;
}
