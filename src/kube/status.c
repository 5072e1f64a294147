// SPDX-License-Identifier: MIT
/*
 * status.c: status write-back. kube_status_submit() queues the status each
 * object should have (one entry per object: a later submit replaces a
 * queued one). On the loop, each entry is compared with the status of the
 * object as the set holds it (what the watch last saw); only a difference
 * causes a write. The full status is rebuilt so that what other controllers
 * own survives: for routes their `parents` entries, for BackendTLSPolicy
 * their `ancestors`, are kept in place and ours replaced. It is written as
 * a JSON merge patch on the /status subresource (lists are replaced whole
 * by a merge patch, so the list sent is the full merged one) carrying the
 * object's resourceVersion as a precondition, so a concurrent change makes
 * the server answer 409; then the object is read again and the merge
 * redone. Writes are rate-limited (token bucket).
 * Objects that left the set, or whose generation moved past the one that
 * was reconciled, are skipped: a newer reconcile follows.
 *
 * Not here: computing statuses (gwapi/). Runs on the control thread.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yyjson.h>

#include "core/err.h"
#include "core/hash.h"
#include "core/log.h"
#include "core/loop.h"
#include "gwapi/objset.h"
#include "gwapi/reconcile.h"
#include "kube/internal.h"
#include "kube/kube.h"

#define STATUS_MAX_ATTEMPTS 6

static const char *list_key(enum gw_kind k)
{
	switch (k) {
	case GW_K_HTTPROUTE:
	case GW_K_GRPCROUTE:
	case GW_K_TLSROUTE:
	case GW_K_TCPROUTE:
	case GW_K_UDPROUTE: return "parents";
	case GW_K_BACKENDTLSPOLICY: return "ancestors";
	default: return NULL;
	}
}

char *kube_status_merge(enum gw_kind k, const char *controller, struct yyjson_val *current,
			const char *ours)
{
	const char *lk = list_key(k);
	yyjson_doc *od = yyjson_read(ours, strlen(ours), 0);
	yyjson_val *oroot = yyjson_doc_get_root(od), *key, *val, *e;
	yyjson_mut_doc *m = NULL;
	yyjson_mut_val *root, *arr;
	yyjson_obj_iter it;
	size_t idx, max;
	char *out = NULL;

	if (!od || !yyjson_is_obj(oroot))
		goto out;
	if (!lk) {
		out = yyjson_val_write(oroot, 0, NULL);
		goto out;
	}
	m = yyjson_mut_doc_new(NULL);
	if (!m)
		goto out;
	root = yyjson_mut_obj(m);
	arr = yyjson_mut_arr(m);
	if (!root || !arr)
		goto out;
	yyjson_mut_doc_set_root(m, root);
	/* every field of the current status but the list, then ours */
	if (yyjson_is_obj(current)) {
		yyjson_obj_iter_init(current, &it);
		while ((key = yyjson_obj_iter_next(&it))) {
			val = yyjson_obj_iter_get_val(key);
			if (!strcmp(yyjson_get_str(key), lk) ||
			    yyjson_obj_get(oroot, yyjson_get_str(key)))
				continue;
			yyjson_mut_obj_add(root, yyjson_val_mut_copy(m, key),
					   yyjson_val_mut_copy(m, val));
		}
	}
	yyjson_obj_iter_init(oroot, &it);
	while ((key = yyjson_obj_iter_next(&it))) {
		if (!strcmp(yyjson_get_str(key), lk))
			continue;
		yyjson_mut_obj_add(root, yyjson_val_mut_copy(m, key),
				   yyjson_val_mut_copy(m, yyjson_obj_iter_get_val(key)));
	}
	/* other controllers' entries keep their places; ours go last */
	yyjson_arr_foreach(yyjson_obj_get(current, lk), idx, max, e)
	{
		const char *cn = yyjson_get_str(yyjson_obj_get(e, "controllerName"));

		if (cn && !strcmp(cn, controller))
			continue;
		yyjson_mut_arr_append(arr, yyjson_val_mut_copy(m, e));
	}
	yyjson_arr_foreach(yyjson_obj_get(oroot, lk), idx, max, e)
	{
		yyjson_mut_arr_append(arr, yyjson_val_mut_copy(m, e));
	}
	yyjson_mut_obj_add_val(m, root, lk, arr);
	out = yyjson_mut_write(m, 0, NULL);
out:
	yyjson_mut_doc_free(m);
	yyjson_doc_free(od);
	return out;
}

/* Whether desired (JSON text) says the same as the current status. A
 * missing status equals one whose only content is an empty list. */
static bool status_same(enum gw_kind k, yyjson_val *current, const char *desired)
{
	yyjson_doc *d = yyjson_read(desired, strlen(desired), 0);
	yyjson_val *root = yyjson_doc_get_root(d);
	bool same = false;

	if (!d)
		return false;
	if (!current || yyjson_is_null(current)) {
		const char *lk = list_key(k);

		same = yyjson_obj_size(root) == 0 ||
		       (lk && yyjson_obj_size(root) == 1 &&
			yyjson_arr_size(yyjson_obj_get(root, lk)) == 0);
	} else {
		same = yyjson_equals(current, root);
	}
	yyjson_doc_free(d);
	return same;
}

static char *status_key(enum gw_kind k, const char *ns, const char *name)
{
	char *s;

	return asprintf(&s, "%d/%s/%s", (int)k, ns, name) == -1 ? NULL : s;
}

static void ks_free(struct kstatus *e)
{
	if (!e)
		return;
	free(e->ns);
	free(e->name);
	free(e->status_json);
	free(e);
}

static void sq_push(struct kube_watch *w, struct kstatus *e, bool front)
{
	e->queued = true;
	fifo_push(&w->squeue_order, &e->link, front);
}

static struct kstatus *sq_pop(struct kube_watch *w)
{
	struct fifo_link *l = fifo_pop(&w->squeue_order);
	struct kstatus *e;
	char *key;

	if (!l)
		return NULL;
	e = fifo_entry(l, struct kstatus, link);
	e->queued = false;
	key = status_key(e->kind, e->ns, e->name);
	if (key && kmap_get(&w->squeue, key) == e)
		kmap_del(&w->squeue, key);
	free(key);
	return e;
}

void kube_status_submit(struct kube_watch *w, const struct gw_status *st, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const struct gw_status *s = &st[i];
		char *key, *json;
		struct kstatus *e;

		if (!gw_kind_info(s->kind)->has_status || !s->status_json)
			continue;
		key = status_key(s->kind, s->ns, s->name);
		json = strdup(s->status_json);
		if (!key || !json) {
			free(key);
			free(json);
			continue;
		}
		e = kmap_get(&w->squeue, key);
		if (e) { /* replace the queued one, keep its place */
			free(e->status_json);
			e->status_json = json;
			e->generation = s->generation;
			e->attempts = 0;
			free(key);
			continue;
		}
		e = calloc(1, sizeof(*e));
		if (e) {
			e->kind = s->kind;
			e->ns = strdup(s->ns ? s->ns : "");
			e->name = strdup(s->name);
			e->status_json = json;
			e->generation = s->generation;
		}
		if (!e || !e->ns || !e->name || kmap_put(&w->squeue, key, e, NULL)) {
			if (e)
				ks_free(e);
			else
				free(json);
			free(key);
			continue;
		}
		free(key);
		sq_push(w, e, false);
	}
	kube_status_kick(w);
}

size_t kube_status_pending(const struct kube_watch *w)
{
	size_t n = w->sq_cur ? 1 : 0;

	for (const struct fifo_link *l = w->squeue_order.head; l; l = l->next)
		n++;
	return n;
}

static void on_status_timer(struct timer *t)
{
	kube_status_kick(t->arg);
}

static void status_done(void *arg, int err, const struct khttp_resp *r, const char *body,
			size_t len);
static const struct khttp_ops status_ops = {NULL, status_done};

static char *object_path(struct kube_watch *w, enum gw_kind k, const char *ns, const char *name,
			 bool status)
{
	const struct gw_kind_info *ki = gw_kind_info(k);
	char *coll = kube_collection_path(k, w->ver[k], ki->namespaced ? ns : NULL), *p = NULL;

	if (coll && asprintf(&p, "%s/%s%s", coll, name, status ? "/status" : "") == -1)
		p = NULL;
	free(coll);
	return p;
}

/* RFC 7386 merge patch that turns cur into want: keys cur has and want
 * lacks become null, equal values are left out, objects recurse, anything
 * else (arrays included) is replaced whole. */
static yyjson_mut_val *merge_diff(yyjson_mut_doc *m, yyjson_val *cur, yyjson_val *want)
{
	yyjson_mut_val *out;
	yyjson_obj_iter it;
	yyjson_val *k;

	if (!yyjson_is_obj(cur) || !yyjson_is_obj(want))
		return yyjson_val_mut_copy(m, want);
	out = yyjson_mut_obj(m);
	yyjson_obj_iter_init(cur, &it);
	while ((k = yyjson_obj_iter_next(&it)))
		if (!yyjson_obj_get(want, yyjson_get_str(k)))
			yyjson_mut_obj_add(out, yyjson_val_mut_copy(m, k), yyjson_mut_null(m));
	yyjson_obj_iter_init(want, &it);
	while ((k = yyjson_obj_iter_next(&it))) {
		yyjson_val *wv = yyjson_obj_iter_get_val(k);
		yyjson_val *cv = yyjson_obj_get(cur, yyjson_get_str(k));

		if (cv && yyjson_equals(cv, wv))
			continue;
		yyjson_mut_obj_add(out, yyjson_val_mut_copy(m, k), merge_diff(m, cv, wv));
	}
	return out;
}

/* The PATCH body: the object's resourceVersion as the precondition (a
 * stale one gets 409) and the merge patch from its status to desired. */
char *kube_status_patch(const struct gw_object *o, const char *desired, size_t *len)
{
	yyjson_val *root = yyjson_doc_get_root(o->doc);
	yyjson_doc *sd = yyjson_read(desired, strlen(desired), 0);
	yyjson_mut_doc *m = yyjson_mut_doc_new(NULL);
	yyjson_mut_val *body, *md;
	char *out = NULL;

	if (!m || !sd)
		goto out;
	body = yyjson_mut_obj(m);
	md = yyjson_mut_obj(m);
	yyjson_mut_doc_set_root(m, body);
	yyjson_mut_obj_add_strcpy(m, md, "resourceVersion", o->resource_version);
	yyjson_mut_obj_add_val(m, body, "metadata", md);
	yyjson_mut_obj_add_val(
		m, body, "status",
		merge_diff(m, yyjson_obj_get(root, "status"), yyjson_doc_get_root(sd)));
	out = yyjson_mut_write(m, 0, len);
out:
	yyjson_mut_doc_free(m);
	yyjson_doc_free(sd);
	return out;
}

/* Puts an object the server returned into the set, written exactly as the
 * watch will deliver it (kube_item_json), so that the watch event for the
 * same resourceVersion is no change. After our own status write the owner
 * is not notified (notify false): what changed is the status reconcile
 * just computed, so reconciling again would only give the same result. */
/* Whether resourceVersion a is newer than b. They are opaque strings, but
 * every API server in use writes decimal counters: compare those as
 * numbers, and treat anything else as newer when it differs. */
bool kube_rv_newer(const char *a, const char *b)
{
	char *ea, *eb;
	unsigned long long na, nb;

	if (!a || !b)
		return a != NULL;
	na = strtoull(a, &ea, 10);
	nb = strtoull(b, &eb, 10);
	if (*a && *b && !*ea && !*eb)
		return na > nb;
	return strcmp(a, b) != 0;
}

static void refresh_object(struct kube_watch *w, enum gw_kind k, const char *body, size_t len,
			   bool notify)
{
	char msg[160], *json;
	yyjson_doc *d = yyjson_read(body ? body : "", len, 0);
	struct gw_object *o = NULL;
	size_t jl;

	json = d ? kube_item_json(k, w->ver[k], yyjson_doc_get_root(d), &jl) : NULL;
	if (json)
		o = gw_object_parse((int)k, json, jl, msg, sizeof(msg));
	free(json);
	yyjson_doc_free(d);
	if (!o)
		return;
	/* The watch owns membership: an object deleted while our write was in
	 * flight must not come back, and an answer older than what the watch
	 * already delivered must not replace it. */
	const struct gw_object *cur = gw_objset_get(w->set, k, o->ns, o->name);
	if (!cur || !kube_rv_newer(o->resource_version, cur->resource_version)) {
		gw_object_unref(o);
		return;
	}
	o->source = "cluster";
	if (gw_objset_put(w->set, o) && notify)
		kube_watch_changed(w, k);
}

static void status_retry(struct kube_watch *w, struct kstatus *e, int retry_after_s)
{
	uint64_t d = kube_backoff_ms(w->s_attempt++, w->o.backoff_min_ms, w->o.backoff_max_ms,
				     (uint32_t)rand_u64());
	char *key = status_key(e->kind, e->ns, e->name);

	if (retry_after_s >= 0 && (uint64_t)retry_after_s * 1000 > d)
		d = (uint64_t)retry_after_s * 1000;
	if (++e->attempts > STATUS_MAX_ATTEMPTS || !key || kmap_get(&w->squeue, key)) {
		/* given up, or a newer submit is queued and supersedes it */
		if (e->attempts > STATUS_MAX_ATTEMPTS)
			log_warn("event=kube_status_failed kind=%s ns=%s name=%s reason=\"too many "
				 "attempts\"",
				 gw_kind_info(e->kind)->kind, e->ns, e->name);
		free(key);
		ks_free(e);
	} else {
		if (kmap_put(&w->squeue, key, e, NULL))
			ks_free(e);
		else
			sq_push(w, e, true);
		free(key);
	}
	timer_add(w->loop, &w->stimer, d, on_status_timer, w);
}

static void status_done(void *arg, int err, const struct khttp_resp *r, const char *body,
			size_t len)
{
	struct kube_watch *w = arg;
	struct kstatus *e = w->sq_cur;
	bool was_get = w->s_get;

	w->sq_cur = NULL;
	w->s_get = false;
	if (!e)
		return;
	if (err || r->status == 429 || r->status >= 500) {
		log_info("event=kube_status_retry kind=%s ns=%s name=%s reason=%s",
			 gw_kind_info(e->kind)->kind, e->ns, e->name,
			 err ? log_q(w->sconn.error[0] ? w->sconn.error : err_str(err)) : "server");
		status_retry(w, e, err ? -1 : r->retry_after_s);
		return;
	}
	if (was_get) {
		if (r->status == 200) {
			refresh_object(w, e->kind, body, len, true);
			status_retry(w, e, 0); /* redo the merge against what it holds now */
			timer_cancel(w->loop, &w->stimer);
			kube_status_kick(w);
		} else {
			ks_free(e); /* gone */
			kube_status_kick(w);
		}
		return;
	}
	switch (r->status) {
	case 200:
	case 201:
		w->s_attempt = 0;
		w->status_writes++;
		log_info("event=kube_status_written kind=%s ns=%s name=%s",
			 gw_kind_info(e->kind)->kind, e->ns, e->name);
		refresh_object(w, e->kind, body, len, false);
		ks_free(e);
		break;
	case 409: {
		char *path = object_path(w, e->kind, e->ns, e->name, false);

		log_info("event=kube_status_conflict kind=%s ns=%s name=%s",
			 gw_kind_info(e->kind)->kind, e->ns, e->name);
		if (!path || ++e->attempts > STATUS_MAX_ATTEMPTS) {
			free(path);
			ks_free(e);
			break;
		}
		w->sq_cur = e;
		w->s_get = true;
		if (khttp_request(&w->sconn, "GET", path, NULL, 0, false, 0, &status_ops, w)) {
			w->sq_cur = NULL;
			w->s_get = false;
			ks_free(e);
		}
		free(path);
		return;
	}
	case 404:
		ks_free(e); /* deleted meanwhile */
		break;
	default: {
		yyjson_doc *d = yyjson_read(body ? body : "", len, 0);
		const char *msg = yyjson_get_str(yyjson_obj_get(yyjson_doc_get_root(d), "message"));

		log_warn("event=kube_status_rejected kind=%s ns=%s name=%s status=%d reason=%s",
			 gw_kind_info(e->kind)->kind, e->ns, e->name, r->status,
			 log_q(msg ? msg : "unknown"));
		yyjson_doc_free(d);
		ks_free(e);
	}
	}
	kube_status_kick(w);
}

void kube_status_kick(struct kube_watch *w)
{
	if (w->sq_cur || timer_is_armed(&w->stimer) || !w->cl.cfg)
		return;
	while (!fifo_is_empty(&w->squeue_order)) {
		struct kstatus *e;
		const struct gw_object *o;
		yyjson_val *cur;
		char *desired, *body, *path;
		size_t blen;

		uint64_t wait = pace_wait_ms(&w->space, w->o.status_rate_per_s, clock_mono_ms());

		if (wait) {
			timer_add(w->loop, &w->stimer, wait, on_status_timer, w);
			return;
		}
		e = sq_pop(w);
		o = gw_objset_get(w->set, e->kind, e->ns, e->name);
		if (!o || !w->ver[e->kind] ||
		    (e->generation && o->generation && o->generation != e->generation) ||
		    (o->source && strcmp(o->source, "cluster") != 0)) {
			ks_free(e);
			continue;
		}
		cur = yyjson_obj_get(yyjson_doc_get_root(o->doc), "status");
		desired = kube_status_merge(e->kind, w->controller, cur, e->status_json);
		if (!desired) {
			log_warn("event=kube_status_invalid kind=%s ns=%s name=%s",
				 gw_kind_info(e->kind)->kind, e->ns, e->name);
			ks_free(e);
			continue;
		}
		if (status_same(e->kind, cur, desired)) {
			free(desired);
			ks_free(e);
			continue;
		}
		body = kube_status_patch(o, desired, &blen);
		free(desired);
		path = object_path(w, e->kind, e->ns, e->name, true);
		if (!body || !path) {
			free(body);
			free(path);
			ks_free(e);
			continue;
		}
		pace_spend(&w->space);
		w->sq_cur = e;
		w->s_get = false;
		if (khttp_request(&w->sconn, "PATCH", path, body, blen, false, 0, &status_ops, w)) {
			w->sq_cur = NULL;
			ks_free(e);
		}
		free(body);
		free(path);
		return;
	}
}

void kube_status_fini(struct kube_watch *w)
{
	struct kstatus *e;

	khttp_fini(&w->sconn);
	timer_cancel(w->loop, &w->stimer);
	while ((e = sq_pop(w)))
		ks_free(e);
	ks_free(w->sq_cur);
	w->sq_cur = NULL;
	kmap_fini(&w->squeue);
}
