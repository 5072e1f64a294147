// SPDX-License-Identifier: MIT
/*
 * watch.c: the reflectors. Discovery picks, for each Gateway API resource,
 * the newest version the server serves (v1 > v1beta1 > v1alpha3 >
 * v1alpha2); then one reflector per resource (per namespace with
 * --namespace) lists in pages and watches from the list's resourceVersion
 * with bookmarks. A watch that ends or breaks resumes from the last
 * resourceVersion seen, never relisting, except after 410 Gone; a list
 * replaces what the set holds for that resource only once it is complete,
 * and notifies once. Failures back off exponentially with jitter; 429
 * honours Retry-After; a watch silent past its deadline is reconnected. A
 * resource the server does not serve (CRD not installed, or forbidden) stays
 * empty and is looked for again periodically.
 *
 * Secrets and ConfigMaps: see kube.h. The index (w->sidx) knows every one
 * the watches saw; the set holds only those gw_is_referenced() names, and
 * references that appear later are fetched with a GET.
 *
 * Not here: the HTTP client (http.c), credentials (auth.c), status writes
 * (status.c). Runs on the control thread's loop.
 *
 * Reflector states (enum refl_state):
 *   WAIT -> LIST (discovery found the resource)
 *   LIST -> LIST (next page) | WATCH (list applied) | BACKOFF | ABSENT (404/403)
 *   WATCH -> WATCH (stream ended cleanly: resume) | BACKOFF (error, silence)
 *         | LIST (410 Gone) | ABSENT (404)
 *   BACKOFF -> WATCH (rv known) | LIST
 *   ABSENT -> LIST (recheck timer)
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yyjson.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/hash.h"
#include "core/log.h"
#include "core/loop.h"
#include "gwapi/objset.h"
#include "gwapi/reconcile.h"
#include "kube/internal.h"
#include "kube/kube.h"

#define GW_GROUP "gateway.networking.k8s.io"
#define MAX_EVENT_LINE (16u << 20)
/* Secrets and ConfigMaps may be up to 1 MiB each: smaller pages keep a
 * list response well under the client's body limit. */
#define SC_PAGE_LIMIT 32
/* Secret types waygate never uses and that are large or numerous in real
 * clusters (Helm releases, service account tokens) are not even listed. */
#define SECRET_SELECTOR                                                                            \
	"&fieldSelector=type%21%3Dhelm.sh%2Frelease.v1%2Ctype%21%3D"                               \
	"kubernetes.io%2Fservice-account-token"

static const char *const known_versions[] = {"v1", "v1beta1", "v1alpha3", "v1alpha2"};
#define N_KNOWN (sizeof(known_versions) / sizeof(known_versions[0]))

static bool is_sc(enum gw_kind k)
{
	return k == GW_K_SECRET || k == GW_K_CONFIGMAP;
}

static void refl_start_list(struct reflector *r);
static void refl_start_watch(struct reflector *r);
static void disc_start(struct kube_watch *w);
static void fetch_next(struct kube_watch *w);

uint32_t kube_backoff_ms(uint32_t attempt, uint32_t min_ms, uint32_t max_ms, uint32_t rnd)
{
	uint64_t d = min_ms ? min_ms : 1;
	uint64_t half;

	for (uint32_t i = 0; i < attempt && d < max_ms; i++)
		d *= 2;
	if (d > max_ms)
		d = max_ms;
	half = d / 2;
	return (uint32_t)(half + rnd % (d - half + 1));
}

char *kube_collection_path(enum gw_kind k, const char *version, const char *ns)
{
	const struct gw_kind_info *ki = gw_kind_info(k);
	char *p = NULL;
	int rc;

	if (!*ki->group)
		rc = asprintf(&p, "/api/%s%s%s/%s", version, ns ? "/namespaces/" : "", ns ? ns : "",
			      ki->resource);
	else
		rc = asprintf(&p, "/apis/%s/%s%s%s/%s", ki->group, version,
			      ns ? "/namespaces/" : "", ns ? ns : "", ki->resource);
	return rc == -1 ? NULL : p;
}

#define LAST_APPLIED "kubectl.kubernetes.io/last-applied-configuration"

/* Writes item without metadata.managedFields and kubectl's last-applied
 * annotation: bookkeeping of other clients, often larger than the spec, that
 * waygate never reads (a status PUT without them leaves them as they are). */
static char *write_trimmed(yyjson_val *item, size_t *len)
{
	yyjson_val *md = yyjson_obj_get(item, "metadata");
	yyjson_mut_doc *m;
	yyjson_mut_val *root, *mmd, *ann;
	char *s;

	if (!yyjson_obj_get(md, "managedFields") &&
	    !yyjson_obj_get(yyjson_obj_get(md, "annotations"), LAST_APPLIED))
		return yyjson_val_write(item, 0, len);
	m = yyjson_mut_doc_new(NULL);
	if (!m)
		return NULL;
	root = yyjson_val_mut_copy(m, item);
	yyjson_mut_doc_set_root(m, root);
	mmd = yyjson_mut_obj_get(root, "metadata");
	yyjson_mut_obj_remove_key(mmd, "managedFields");
	ann = yyjson_mut_obj_get(mmd, "annotations");
	yyjson_mut_obj_remove_key(ann, LAST_APPLIED);
	if (ann && !yyjson_mut_obj_size(ann))
		yyjson_mut_obj_remove_key(mmd, "annotations");
	s = yyjson_mut_write(m, 0, len);
	yyjson_mut_doc_free(m);
	return s;
}

char *kube_item_json(enum gw_kind k, const char *version, struct yyjson_val *item, size_t *len)
{
	const struct gw_kind_info *ki = gw_kind_info(k);
	char *s = write_trimmed(item, len), *out;
	bool empty;

	if (!s)
		return NULL;
	if (yyjson_obj_get(item, "kind") && yyjson_obj_get(item, "apiVersion"))
		return s;
	empty = *len <= 2;
	if (asprintf(&out, "{\"apiVersion\":\"%s%s%s\",\"kind\":\"%s\"%s%s", ki->group,
		     *ki->group ? "/" : "", version, ki->kind, empty ? "" : ",", s + 1) == -1) {
		free(s);
		return NULL;
	}
	free(s);
	*len = strlen(out);
	return out;
}

static char *skey(enum gw_kind k, const char *ns, const char *name)
{
	char *s;

	if (asprintf(&s, "%d/%s/%s", (int)k, ns, name) == -1)
		return NULL;
	return s;
}

static void sref_free(struct sref *s)
{
	if (!s)
		return;
	free(s->ns);
	free(s->name);
	free(s->rv);
	free(s);
}

/* Records a Secret/ConfigMap in the index. */
static void sidx_put(struct kube_watch *w, enum gw_kind k, const char *ns, const char *name,
		     const char *rv)
{
	char *key = skey(k, ns, name);
	struct sref *s;

	if (!key)
		return;
	s = kmap_get(&w->sidx, key);
	if (s) {
		char *nrv = strdup(rv ? rv : "");

		if (nrv) {
			free(s->rv);
			s->rv = nrv;
		}
		free(key);
		return;
	}
	s = calloc(1, sizeof(*s));
	if (s) {
		s->kind = k;
		s->ns = strdup(ns);
		s->name = strdup(name);
		s->rv = strdup(rv ? rv : "");
	}
	if (!s || !s->ns || !s->name || !s->rv || kmap_put(&w->sidx, key, s, NULL))
		sref_free(s);
	free(key);
}

static void fetch_unqueue(struct kube_watch *w, struct sref *s)
{
	struct sref **pp;

	if (!s->queued)
		return;
	for (pp = &w->fetch_head; *pp; pp = &(*pp)->next_fetch) {
		if (*pp == s) {
			*pp = s->next_fetch;
			break;
		}
	}
	w->fetch_tail = NULL;
	for (struct sref *x = w->fetch_head; x; x = x->next_fetch)
		w->fetch_tail = x;
	s->queued = false;
	s->next_fetch = NULL;
	w->fetch_pending--;
}

static void sidx_del(struct kube_watch *w, enum gw_kind k, const char *ns, const char *name)
{
	char *key = skey(k, ns, name);
	struct sref *s;

	if (!key)
		return;
	s = kmap_del(&w->sidx, key);
	free(key);
	if (!s)
		return;
	fetch_unqueue(w, s);
	if (w->fetch_cur == s) {
		/* the fetch in flight finds it gone from the index when done */
		khttp_close(&w->fetch);
		w->fetch_cur = NULL;
		w->fetch_pending--;
	}
	sref_free(s);
}

/* ---- notification ---- */

static void on_notify(struct timer *t);

void kube_watch_changed(struct kube_watch *w, enum gw_kind k)
{
	w->changed = true;
	if (k >= GW_K_COUNT || !is_sc(k))
		w->refs_dirty = true;
	if (w->loop && !timer_is_armed(&w->notify_timer))
		timer_add(w->loop, &w->notify_timer, 0, on_notify, w);
}

struct ref_sync_ctx {
	struct kube_watch *w;
	bool changed;
};

static bool ref_sync_one(void *arg, const char *key, void *val)
{
	struct ref_sync_ctx *c = arg;
	struct kube_watch *w = c->w;
	struct sref *s = val;
	bool refd = gw_is_referenced(w->set, s->kind, s->ns, s->name);
	bool inset = gw_objset_get(w->set, s->kind, s->ns, s->name) != NULL;

	(void)key;
	if (refd && !inset && !s->queued && w->fetch_cur != s) {
		s->queued = true;
		s->next_fetch = NULL;
		if (w->fetch_tail)
			w->fetch_tail->next_fetch = s;
		else
			w->fetch_head = s;
		w->fetch_tail = s;
		w->fetch_pending++;
	} else if (!refd && inset) {
		if (gw_objset_del(w->set, s->kind, s->ns, s->name))
			c->changed = true;
	}
	return false;
}

/* Brings the set's Secrets/ConfigMaps in line with what is referenced. */
static bool ref_sync(struct kube_watch *w)
{
	struct ref_sync_ctx c = {w, false};

	kmap_each(&w->sidx, ref_sync_one, &c);
	fetch_next(w);
	return c.changed;
}

static void on_notify(struct timer *t)
{
	struct kube_watch *w = t->arg;

	if (w->refs_dirty) {
		w->refs_dirty = false;
		if (ref_sync(w))
			w->changed = true;
	}
	if (w->changed) {
		w->changed = false;
		if (w->on_change)
			w->on_change(w->arg);
	}
	kube_status_kick(w);
}

/* ---- Secret/ConfigMap fetches ---- */

static void fetch_done(void *arg, int err, const struct khttp_resp *r, const char *body,
		       size_t len);
static const struct khttp_ops fetch_ops = {NULL, fetch_done};

static void on_fetch_timer(struct timer *t)
{
	fetch_next(t->arg);
}

static void fetch_next(struct kube_watch *w)
{
	struct sref *s;
	char *coll, *path = NULL;

	if (w->fetch_cur || !w->fetch_head || timer_is_armed(&w->fetch_timer) || !w->cl.cfg)
		return;
	s = w->fetch_head;
	w->fetch_head = s->next_fetch;
	if (!w->fetch_head)
		w->fetch_tail = NULL;
	s->queued = false;
	s->next_fetch = NULL;
	w->fetch_cur = s;
	coll = kube_collection_path(s->kind, "v1", s->ns);
	if (coll && asprintf(&path, "%s/%s", coll, s->name) == -1)
		path = NULL;
	free(coll);
	if (!path || khttp_request(&w->fetch, "GET", path, NULL, 0, false, 0, &fetch_ops, w)) {
		w->fetch_cur = NULL;
		w->fetch_pending--;
	}
	free(path);
}

static void fetch_done(void *arg, int err, const struct khttp_resp *r, const char *body, size_t len)
{
	struct kube_watch *w = arg;
	struct sref *s = w->fetch_cur;
	bool changed = false;

	w->fetch_cur = NULL;
	if (!s)
		return;
	if (err || r->status == 429 || r->status >= 500) {
		/* retry later; it stays pending */
		s->queued = true;
		s->next_fetch = w->fetch_head;
		w->fetch_head = s;
		if (!w->fetch_tail)
			w->fetch_tail = s;
		timer_add(w->loop, &w->fetch_timer,
			  kube_backoff_ms(w->fetch_attempt++, w->o.backoff_min_ms,
					  w->o.backoff_max_ms, (uint32_t)rand_u64()),
			  on_fetch_timer, w);
		return;
	}
	w->fetch_attempt = 0;
	w->fetch_pending--;
	if (r->status == 200 && !gw_objset_get(w->set, s->kind, s->ns, s->name) &&
	    gw_is_referenced(w->set, s->kind, s->ns, s->name)) {
		char msg[160];
		struct gw_object *o = gw_object_parse((int)s->kind, body, len, msg, sizeof(msg));

		if (o) {
			o->source = "cluster";
			changed = gw_objset_put(w->set, o);
		} else {
			log_warn("event=kube_decode_failed kind=%s ns=%s name=%s reason=%s",
				 gw_kind_info(s->kind)->kind, s->ns, s->name, log_q(msg));
		}
	} else if (r->status != 200 && r->status != 404) {
		log_warn("event=kube_fetch_failed kind=%s ns=%s name=%s status=%d",
			 gw_kind_info(s->kind)->kind, s->ns, s->name, r->status);
	}
	if (changed || !w->fetch_pending)
		kube_watch_changed(w, s->kind);
	fetch_next(w);
}

/* ---- events ---- */

static const char *obj_ns(enum gw_kind k, yyjson_val *md)
{
	const char *ns;

	if (!gw_kind_info(k)->namespaced)
		return "";
	ns = yyjson_get_str(yyjson_obj_get(md, "namespace"));
	return ns && *ns ? ns : "default";
}

static void set_rv(char **dst, const char *rv)
{
	char *n;

	if (!rv || !*rv)
		return;
	n = strdup(rv);
	if (n) {
		free(*dst);
		*dst = n;
	}
}

/* Puts an object (or, for an unreferenced Secret/ConfigMap, only indexes
 * it). Returns true when the set changed. */
static bool apply_object(struct reflector *r, yyjson_val *obj)
{
	struct kube_watch *w = r->w;
	yyjson_val *md = yyjson_obj_get(obj, "metadata");
	const char *name = yyjson_get_str(yyjson_obj_get(md, "name"));
	const char *ns = obj_ns(r->kind, md);
	struct gw_object *o;
	char msg[200], *json;
	size_t len;

	if (!name)
		return false;
	if (is_sc(r->kind)) {
		sidx_put(w, r->kind, ns, name,
			 yyjson_get_str(yyjson_obj_get(md, "resourceVersion")));
		if (!gw_is_referenced(w->set, r->kind, ns, name))
			return gw_objset_del(w->set, r->kind, ns, name);
	}
	json = kube_item_json(r->kind, w->ver[r->kind] ? w->ver[r->kind] : "v1", obj, &len);
	if (!json)
		return false;
	o = gw_object_parse((int)r->kind, json, len, msg, sizeof(msg));
	free(json);
	if (!o) {
		log_warn("event=kube_decode_failed resource=%s ns=%s name=%s reason=%s", r->name,
			 ns, name, log_q(msg));
		return false;
	}
	o->source = "cluster";
	return gw_objset_put(w->set, o);
}

int kube_reflector_event(struct reflector *r, const char *line, size_t len)
{
	struct kube_watch *w = r->w;
	yyjson_doc *doc;
	yyjson_val *root, *obj, *md;
	const char *type;
	int rc = 0;

	doc = yyjson_read(line, len, 0);
	if (!doc)
		return -WG_EPROTO;
	root = yyjson_doc_get_root(doc);
	type = yyjson_get_str(yyjson_obj_get(root, "type"));
	obj = yyjson_obj_get(root, "object");
	if (!type || !yyjson_is_obj(obj)) {
		rc = -WG_EPROTO;
		goto out;
	}
	md = yyjson_obj_get(obj, "metadata");
	if (!strcmp(type, "ERROR")) {
		int64_t code = yyjson_get_sint(yyjson_obj_get(obj, "code"));

		if (!code)
			code = (int64_t)yyjson_get_uint(yyjson_obj_get(obj, "code"));
		log_info("event=kube_watch_error resource=%s code=%lld reason=%s", r->name,
			 (long long)code,
			 log_q(yyjson_get_str(yyjson_obj_get(obj, "message")) ?: "unknown"));
		rc = code == 410 ? -ESTALE : -EIO;
		goto out;
	}
	set_rv(&r->rv, yyjson_get_str(yyjson_obj_get(md, "resourceVersion")));
	r->events++;
	r->watch_got_event = true;
	w->last_sync_ms = r->last_event_ms = clock_wall_ms();
	r->last_error[0] = '\0';
	if (!strcmp(type, "BOOKMARK"))
		goto out;
	if (!strcmp(type, "ADDED") || !strcmp(type, "MODIFIED")) {
		rc = apply_object(r, obj);
	} else if (!strcmp(type, "DELETED")) {
		const char *name = yyjson_get_str(yyjson_obj_get(md, "name"));
		const char *ns = obj_ns(r->kind, md);

		if (name) {
			if (is_sc(r->kind))
				sidx_del(w, r->kind, ns, name);
			rc = gw_objset_del(w->set, r->kind, ns, name);
		}
	} else {
		rc = -WG_EPROTO;
	}
	if (rc == 1)
		kube_watch_changed(w, r->kind);
out:
	yyjson_doc_free(doc);
	return rc;
}

int kube_reflector_feed(struct reflector *r, const char *p, size_t n)
{
	int ret = 0;

	while (n) {
		const char *nl = memchr(p, '\n', n);
		size_t take = nl ? (size_t)(nl - p) : n;
		int rc;

		if (buf_len(&r->line) + take > MAX_EVENT_LINE)
			return -WG_ELIMIT;
		if (!nl) {
			if (buf_append(&r->line, p, take))
				return -ENOMEM;
			break;
		}
		if (buf_len(&r->line)) {
			if (buf_append(&r->line, p, take))
				return -ENOMEM;
			rc = kube_reflector_event(r, buf_rptr(&r->line), buf_len(&r->line));
			buf_release(&r->line);
		} else if (take) {
			rc = kube_reflector_event(r, p,
						  take); /* whole line in this read: no copy */
		} else {
			rc = 0; /* empty line */
		}
		if (rc < 0)
			return rc;
		if (rc > 0)
			ret = 1;
		p += take + 1;
		n -= take + 1;
	}
	return ret;
}

/* ---- reflector lifecycle ---- */

static bool free_val(void *arg, const char *key, void *val)
{
	(void)arg;
	(void)key;
	free(val);
	return true;
}

static void stage_reset(struct reflector *r)
{
	for (size_t i = 0; i < r->n_stage; i++)
		gw_object_unref(r->stage[i]);
	r->n_stage = 0;
	kmap_each(&r->stage_idx, free_val, NULL);
	free(r->cont);
	r->cont = NULL;
	free(r->list_rv);
	r->list_rv = NULL;
}

static void on_refl_timer(struct timer *t)
{
	struct reflector *r = t->arg;

	if (r == r->w->prober)
		r->w->probe_started_ms = loop_now_ms(r->w->loop);
	if (r->st == RF_ABSENT || !r->want_watch || !r->rv)
		refl_start_list(r);
	else
		refl_start_watch(r);
}

/* Counts a failed request or a broken stream of r and keeps its reason
 * for the watch list (no secrets: statuses and transport errors only). */
static void __attribute__((format(printf, 2, 3)))
refl_failed(struct reflector *r, const char *fmt, ...)
{
	va_list ap;

	r->errors++;
	va_start(ap, fmt);
	vsnprintf(r->last_error, sizeof(r->last_error), fmt, ap);
	va_end(ap);
}

/* Retry later: the watch from r->rv when known and want_watch, else a
 * full list. */
static void refl_backoff(struct reflector *r, bool watch, int retry_after_s)
{
	struct kube_watch *w = r->w;
	uint64_t d = kube_backoff_ms(r->attempt, w->o.backoff_min_ms, w->o.backoff_max_ms,
				     (uint32_t)rand_u64());

	r->attempt++;
	r->throttled = retry_after_s >= 0;
	if (retry_after_s >= 0 && (uint64_t)retry_after_s * 1000 > d)
		d = (uint64_t)retry_after_s * 1000;
	if (d > 300000)
		d = 300000;
	khttp_close(&r->conn);
	r->st = RF_BACKOFF;
	r->want_watch = watch;
	if (!watch)
		stage_reset(r);
	if (w->cl.down && !r->throttled) {
		/* Unreachable at the transport level: a WAN link that is down
		 * should cost the box (and the server, when it returns) one
		 * probe at a time, not one per resource. */
		if (w->prober && w->prober != r) {
			r->parked = true;
			timer_cancel(w->loop, &r->timer);
			log_debug("event=kube_parked resource=%s", r->name);
			return;
		}
		/* The period runs from the start of the failed attempt: a
		 * black-holed probe that took its whole timeout to fail has
		 * already waited that long. */
		uint64_t spent = w->prober == r ? loop_now_ms(w->loop) - w->probe_started_ms : 0;
		w->prober = r;
		d = kube_backoff_ms(w->down_attempt++, w->o.backoff_min_ms,
				    KUBE_DOWN_BACKOFF_FACTOR * w->o.backoff_max_ms, (uint32_t)rand_u64());
		d = d > spent + 100 ? d - spent : 100;
	}
	log_info("event=kube_backoff resource=%s next=%s delay_ms=%llu attempt=%u", r->name,
		 watch ? "watch" : "list", (unsigned long long)d, r->attempt);
	timer_add(w->loop, &r->timer, d, on_refl_timer, r);
}

static void refl_now(struct reflector *r, bool watch)
{
	if (r->conn.active)
		khttp_close(&r->conn); /* else keep the idle connection for the next request */
	r->st = RF_BACKOFF;
	r->want_watch = watch;
	timer_add(r->w->loop, &r->timer, 0, on_refl_timer, r);
}

static bool in_scope(const struct reflector *r, const struct gw_object *o)
{
	return !r->ns || !strcmp(o->ns, r->ns);
}

static int stage_cmp(const void *a, const void *b)
{
	const struct gw_object *x = *(const struct gw_object *const *)a;
	const struct gw_object *y = *(const struct gw_object *const *)b;
	int c = strcmp(x->ns, y->ns);

	return c ? c : strcmp(x->name, y->name);
}

static bool staged(const struct reflector *r, const char *ns, const char *name)
{
	struct gw_object key = {.ns = (char *)(uintptr_t)ns, .name = (char *)(uintptr_t)name};
	const struct gw_object *kp = &key;

	return r->n_stage &&
	       bsearch(&kp, r->stage, r->n_stage, sizeof(*r->stage), stage_cmp) != NULL;
}

struct sidx_scope {
	struct reflector *r;
	struct kube_watch *w;
};

static bool sidx_drop_unseen(void *arg, const char *key, void *val)
{
	struct sidx_scope *c = arg;
	struct sref *s = val;

	if (s->kind != c->r->kind || (c->r->ns && strcmp(s->ns, c->r->ns)))
		return false;
	if (kmap_get(&c->r->stage_idx, key))
		return false;
	fetch_unqueue(c->w, s);
	if (c->w->fetch_cur == s) {
		khttp_close(&c->w->fetch);
		c->w->fetch_cur = NULL;
		c->w->fetch_pending--;
	}
	sref_free(s);
	return true;
}

static bool sidx_add_seen(void *arg, const char *key, void *val)
{
	struct sidx_scope *c = arg;
	const char *p1 = strchr(key, '/'), *p2 = p1 ? strchr(p1 + 1, '/') : NULL;
	char *ns;

	if (p2) {
		ns = strndup(p1 + 1, (size_t)(p2 - p1 - 1));
		if (ns)
			sidx_put(c->w, c->r->kind, ns, p2 + 1, val);
		free(ns);
	}
	free(val);
	return true;
}

/* Deletes the objects in the reflector's scope that the list in progress
 * (r->stage) does not hold. True when the set changed. */
static bool drop_unstaged(struct reflector *r)
{
	struct kube_watch *w = r->w;
	const struct gw_object *const *v;
	size_t n, ndel = 0;
	char **del = NULL;
	bool changed = false;

	if (r->n_stage) /* an empty list has no array: qsort(NULL, 0) is undefined */
		qsort(r->stage, r->n_stage, sizeof(*r->stage), stage_cmp);
	v = gw_objset_list(w->set, r->kind, &n);
	if (n)
		del = calloc(n * 2, sizeof(char *));
	for (size_t i = 0; del && i < n; i++) {
		if (!in_scope(r, v[i]) || staged(r, v[i]->ns, v[i]->name))
			continue;
		del[ndel * 2] = strdup(v[i]->ns);
		del[ndel * 2 + 1] = strdup(v[i]->name);
		ndel++;
	}
	/* copies first: the list is invalidated by the first delete */
	for (size_t i = 0; i < ndel; i++) {
		if (del[i * 2] && del[i * 2 + 1] &&
		    gw_objset_del(w->set, r->kind, del[i * 2], del[i * 2 + 1]))
			changed = true;
		free(del[i * 2]);
		free(del[i * 2 + 1]);
	}
	free(del);
	return changed;
}

/* Secrets and ConfigMaps are listed once what references them (Gateways,
 * ListenerSets, BackendTLSPolicies) has been: then the list itself keeps
 * the referenced ones, instead of one GET each afterwards. */
static void start_waiting(struct kube_watch *w)
{
	for (size_t i = 0; i < w->n_refl; i++) {
		const struct reflector *r = w->refl[i];

		if ((r->kind == GW_K_GATEWAY || r->kind == GW_K_LISTENERSET ||
		     r->kind == GW_K_BACKENDTLSPOLICY) &&
		    !r->listed)
			return;
	}
	for (size_t i = 0; i < w->n_refl; i++)
		if (w->refl[i]->st == RF_WAIT && is_sc(w->refl[i]->kind))
			refl_start_list(w->refl[i]);
}

/* The list is complete: make the set hold exactly what it returned. */
static void apply_list(struct reflector *r)
{
	struct kube_watch *w = r->w;
	bool changed;

	changed = drop_unstaged(r);
	for (size_t i = 0; i < r->n_stage; i++)
		if (gw_objset_put(w->set, r->stage[i]))
			changed = true;
	r->n_stage = 0;
	if (is_sc(r->kind)) {
		struct sidx_scope c = {r, w};

		kmap_each(&w->sidx, sidx_drop_unseen, &c);
		kmap_each(&r->stage_idx, sidx_add_seen, &c);
		w->refs_dirty = true;
	}
	free(r->rv);
	r->rv = r->list_rv;
	r->list_rv = NULL;
	free(r->cont);
	r->cont = NULL;
	if (!r->listed || r->relisting || changed)
		log_info("event=kube_listed resource=%s objects=%zu changed=%s relist=%s", r->name,
			 gw_objset_count(w->set, r->kind), changed ? "yes" : "no",
			 r->relisting ? "yes" : "no");
	r->listed = true;
	r->relisting = false;
	r->attempt = 0;
	w->last_sync_ms = r->last_event_ms = clock_wall_ms();
	r->last_error[0] = '\0';
	start_waiting(w);
	if (kube_watch_synced(w))
		w->cl.last_error[0] = 0; /* everything listed: past errors are over */
	kube_watch_changed(w, r->kind);  /* also tells the owner when the sync completes */
}

static int stage_push(struct reflector *r, struct gw_object *o)
{
	if (r->n_stage == r->cap_stage) {
		size_t cap = r->cap_stage ? r->cap_stage * 2 : 64;
		struct gw_object **nv = realloc(r->stage, cap * sizeof(*nv));

		if (!nv)
			return -ENOMEM;
		r->stage = nv;
		r->cap_stage = cap;
	}
	r->stage[r->n_stage++] = o;
	return 0;
}

static int stage_item(struct reflector *r, yyjson_val *item)
{
	struct kube_watch *w = r->w;
	yyjson_val *md = yyjson_obj_get(item, "metadata");
	const char *name = yyjson_get_str(yyjson_obj_get(md, "name"));
	const char *ns = obj_ns(r->kind, md);
	struct gw_object *o;
	char msg[200], *json;
	size_t len;

	if (!name)
		return 0;
	if (is_sc(r->kind)) {
		char *key = skey(r->kind, ns, name);
		char *rv = strdup(yyjson_get_str(yyjson_obj_get(md, "resourceVersion")) ?: "");
		void *old = NULL;

		if (!key || !rv || kmap_put(&r->stage_idx, key, rv, &old)) {
			free(key);
			free(rv);
			return -ENOMEM;
		}
		free(old);
		free(key);
		if (!gw_is_referenced(w->set, r->kind, ns, name))
			return 0;
	}
	json = kube_item_json(r->kind, w->ver[r->kind], item, &len);
	if (!json)
		return -ENOMEM;
	o = gw_object_parse((int)r->kind, json, len, msg, sizeof(msg));
	free(json);
	if (!o) {
		log_warn("event=kube_decode_failed resource=%s ns=%s name=%s reason=%s", r->name,
			 ns, name, log_q(msg));
		return 0;
	}
	o->source = "cluster";
	if (stage_push(r, o)) {
		gw_object_unref(o);
		return -ENOMEM;
	}
	return 0;
}

static void refl_absent(struct reflector *r, int status)
{
	struct kube_watch *w = r->w;

	log_warn("event=kube_resource_unavailable resource=%s status=%d recheck_s=%u", r->name,
		 status, w->o.recheck_ms / 1000);
	khttp_close(&r->conn);
	stage_reset(r);
	/* the resource is gone: so are its objects */
	if (drop_unstaged(r))
		log_info("event=kube_objects_dropped resource=%s reason=unavailable", r->name);
	free(r->rv);
	r->rv = NULL;
	r->st = RF_ABSENT;
	r->listed = true;
	r->attempt = 0;
	timer_add(w->loop, &r->timer, w->o.recheck_ms, on_refl_timer, r);
	start_waiting(w);
	kube_watch_changed(w, r->kind);
}

/* The history the watch needs is gone (410): list again. A server that
 * answers 410 again right after a list is not hammered: that relist waits
 * a backoff. */
static void refl_relist(struct reflector *r, const char *why)
{
	uint64_t now = clock_mono_ms();
	bool again = r->last_relist_ms && now - r->last_relist_ms < 5000;

	log_info("event=kube_relist resource=%s reason=%s", r->name, why);
	r->w->relists++;
	r->relists++;
	r->relisting = true;
	r->last_relist_ms = now;
	free(r->rv);
	r->rv = NULL;
	stage_reset(r);
	if (again)
		refl_backoff(r, false, -1);
	else
		refl_now(r, false);
}

/* Common handling of an error answer; returns true when it was handled. */
static bool refl_status(struct reflector *r, const struct khttp_resp *resp, bool watch)
{
	if (resp->status == 404 || resp->status == 403) {
		refl_absent(r, resp->status);
		return true;
	}
	if (resp->status == 410) {
		refl_relist(r, "gone");
		return true;
	}
	r->w->cl.errors++;
	if (resp->status == 401)
		r->w->cl.connected = false; /* reachable, but not usable */
	snprintf(r->w->cl.last_error, sizeof(r->w->cl.last_error), "%s %.40s: HTTP %d%s",
		 watch ? "watch" : "list", r->name, resp->status,
		 resp->status == 401 ? " (unauthorized: check the kubeconfig's credentials)" : "");
	refl_failed(r, "%s: HTTP %d%s", watch ? "watch" : "list", resp->status,
		    resp->status == 401 ? " (unauthorized)" : "");
	log_warn("event=kube_request_failed resource=%s op=%s status=%d", r->name,
		 watch ? "watch" : "list", resp->status);
	refl_backoff(r, watch && r->rv,
		     resp->status == 429 || resp->status == 503 ? resp->retry_after_s : -1);
	return true;
}

static void list_done(void *arg, int err, const struct khttp_resp *resp, const char *body,
		      size_t len)
{
	struct reflector *r = arg;
	yyjson_doc *doc;
	yyjson_val *root, *items, *item, *md;
	const char *cont, *rv;
	size_t idx, max;

	if (err) {
		log_warn("event=kube_request_failed resource=%s op=list reason=%s", r->name,
			 log_q(r->conn.error[0] ? r->conn.error : err_str(err)));
		refl_failed(r, "list: %s", r->conn.error[0] ? r->conn.error : err_str(err));
		refl_backoff(r, false, -1);
		return;
	}
	if (resp->status != 200) {
		if (resp->status == 410 && r->cont) {
			/* the continue token expired: start the list over */
			stage_reset(r);
			refl_now(r, false);
			return;
		}
		refl_status(r, resp, false);
		return;
	}
	doc = yyjson_read(body, len, 0);
	root = yyjson_doc_get_root(doc);
	items = yyjson_obj_get(root, "items");
	if (!doc || (!yyjson_is_arr(items) && !yyjson_is_null(items) && items)) {
		yyjson_doc_free(doc);
		log_warn("event=kube_request_failed resource=%s op=list reason=\"invalid list "
			 "body\"",
			 r->name);
		refl_failed(r, "list: invalid list body");
		refl_backoff(r, false, -1);
		return;
	}
	yyjson_arr_foreach(items, idx, max, item)
	{
		if (stage_item(r, item)) {
			yyjson_doc_free(doc);
			refl_backoff(r, false, -1);
			return;
		}
	}
	md = yyjson_obj_get(root, "metadata");
	cont = yyjson_get_str(yyjson_obj_get(md, "continue"));
	rv = yyjson_get_str(yyjson_obj_get(md, "resourceVersion"));
	if (!r->list_rv)
		set_rv(&r->list_rv, rv); /* the first page's version is the snapshot's */
	free(r->cont);
	r->cont = cont && *cont ? strdup(cont) : NULL;
	yyjson_doc_free(doc);
	if (r->cont) {
		refl_start_list(r);
		return;
	}
	if (!r->list_rv) {
		log_warn("event=kube_request_failed resource=%s op=list reason=\"list without "
			 "resourceVersion\"",
			 r->name);
		refl_failed(r, "list: no resourceVersion");
		refl_backoff(r, false, -1);
		return;
	}
	r->w->lists++;
	r->lists++;
	apply_list(r);
	refl_start_watch(r);
}

static const struct khttp_ops list_ops = {NULL, list_done};

static void url_append_escaped(struct buf *b, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";

	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '_' || c == '.' || c == '~') {
			buf_append(b, s, 1);
		} else {
			char e[3] = {'%', hex[c >> 4], hex[c & 15]};

			buf_append(b, e, 3);
		}
	}
}

static void refl_start_list(struct reflector *r)
{
	struct kube_watch *w = r->w;
	char *coll = kube_collection_path(r->kind, w->ver[r->kind], r->ns);
	struct buf p = {0};
	int rc;

	if (!r->cont)
		stage_reset(r);
	r->st = RF_LIST;
	if (!coll) {
		refl_backoff(r, false, -1);
		return;
	}
	buf_appendf(&p, "%s?limit=%u", coll,
		    is_sc(r->kind) && w->o.page_limit > SC_PAGE_LIMIT ? SC_PAGE_LIMIT
								      : w->o.page_limit);
	if (r->kind == GW_K_SECRET)
		buf_append_str(&p, SECRET_SELECTOR);
	if (r->cont) {
		buf_append_str(&p, "&continue=");
		url_append_escaped(&p, r->cont);
	}
	rc = buf_append(&p, "", 1);
	free(coll);
	if (!rc)
		rc = khttp_request(&r->conn, "GET", buf_rptr(&p), NULL, 0, false, 0, &list_ops, r);
	buf_release(&p);
	if (rc)
		refl_backoff(r, false, -1);
}

static void watch_data(void *arg, const char *p, size_t n)
{
	struct reflector *r = arg;
	int rc = kube_reflector_feed(r, p, n);

	if (rc == -ESTALE) {
		buf_release(&r->line);
		refl_relist(r, "expired");
	} else if (rc < 0) {
		log_warn("event=kube_watch_failed resource=%s reason=%s", r->name,
			 rc == -EIO ? "error event" : err_str(rc));
		refl_failed(r, "watch: %s", rc == -EIO ? "error event" : err_str(rc));
		buf_release(&r->line);
		refl_backoff(r, true, -1);
	}
}

static void watch_done(void *arg, int err, const struct khttp_resp *resp, const char *body,
		       size_t len)
{
	struct reflector *r = arg;
	uint64_t lived = clock_mono_ms() - r->watch_since_ms;

	(void)body;
	(void)len;
	buf_release(&r->line);
	if (r->watch_got_event || lived > 30000)
		r->attempt = 0;
	else if (r->conn.head_seen && r->conn.resp.status == 200)
		/* the server accepted the watch, then it broke: a network or
		 * server restart matter, not a reason to back off for long */
		r->attempt = lived >= 1000 ? 0 : (r->attempt < 2 ? r->attempt : 2);
	if (err) {
		log_info("event=kube_watch_ended resource=%s reason=%s rv=%s", r->name,
			 log_q(r->conn.error[0] ? r->conn.error : err_str(err)),
			 r->rv ? r->rv : "");
		refl_failed(r, "watch: %s", r->conn.error[0] ? r->conn.error : err_str(err));
		refl_backoff(r, true, -1);
		return;
	}
	if (resp->status / 100 == 2) {
		/* the server ended the stream (timeoutSeconds): resume at once,
		 * unless it keeps doing so immediately */
		if (lived >= 1000 || r->watch_got_event)
			refl_now(r, true);
		else
			refl_backoff(r, true, -1);
		return;
	}
	refl_status(r, resp, true);
}

static const struct khttp_ops watch_ops = {watch_data, watch_done};

static void refl_start_watch(struct reflector *r)
{
	struct kube_watch *w = r->w;
	char *coll = kube_collection_path(r->kind, w->ver[r->kind], r->ns);
	struct buf p = {0};
	uint32_t tmo = w->o.watch_timeout_s;
	int rc;

	r->st = RF_WATCH;
	buf_release(&r->line);
	if (!coll || !r->rv) {
		free(coll);
		refl_now(r, false);
		return;
	}
	/* client-go spreads timeouts over [t, 2t) so watches do not end together */
	tmo += (uint32_t)rand_below(tmo ? tmo : 1);
	buf_appendf(&p,
		    "%s?watch=1&allowWatchBookmarks=true&timeoutSeconds=%u&resourceVersion=", coll,
		    tmo);
	url_append_escaped(&p, r->rv);
	if (r->kind == GW_K_SECRET)
		buf_append_str(&p, SECRET_SELECTOR);
	rc = buf_append(&p, "", 1);
	free(coll);
	r->watch_since_ms = clock_mono_ms();
	r->watch_got_event = false;
	r->watches++;
	if (!rc)
		rc = khttp_request(&r->conn, "GET", buf_rptr(&p), NULL, 0, true,
				   w->o.silence_timeout_ms, &watch_ops, r);
	buf_release(&p);
	if (rc)
		refl_backoff(r, true, -1);
}

static struct reflector *refl_new(struct kube_watch *w, enum gw_kind k, const char *ns)
{
	struct reflector *r = calloc(1, sizeof(*r)), **nv;

	if (!r)
		return NULL;
	nv = realloc(w->refl, (w->n_refl + 1) * sizeof(*nv));
	if (!nv || (ns && !(r->ns = strdup(ns)))) {
		free(nv == w->refl ? NULL : nv);
		if (nv)
			w->refl = nv;
		free(r);
		return NULL;
	}
	w->refl = nv;
	w->refl[w->n_refl++] = r;
	r->w = w;
	r->kind = k;
	snprintf(r->name, sizeof(r->name), "%s%s%s", gw_kind_info(k)->resource, ns ? "/" : "",
		 ns ? ns : "");
	khttp_init(&r->conn, &w->cl, r->name);
	return r;
}

static void refl_free(struct kube_watch *w, struct reflector *r)
{
	khttp_fini(&r->conn);
	timer_cancel(w->loop, &r->timer);
	stage_reset(r);
	kmap_fini(&r->stage_idx);
	free(r->stage);
	free(r->rv);
	free(r->ns);
	buf_release(&r->line);
	free(r);
}

/* ---- discovery ---- */

static void disc_done(void *arg, int err, const struct khttp_resp *resp, const char *body,
		      size_t len);
static const struct khttp_ops disc_ops = {NULL, disc_done};

static void on_disc_timer(struct timer *t)
{
	disc_start(t->arg);
}

static void disc_request(struct kube_watch *w)
{
	char path[128];

	if (w->disc_step == 0)
		snprintf(path, sizeof(path), "/apis/%s", GW_GROUP);
	else
		snprintf(path, sizeof(path), "/apis/%s/%s", GW_GROUP,
			 w->group_versions[w->disc_step - 1]);
	if (khttp_request(&w->disc, "GET", path, NULL, 0, false, 0, &disc_ops, w)) {
		w->disc_step = -1;
		timer_add(w->loop, &w->disc_timer, 1000, on_disc_timer, w);
	}
}

static void disc_start(struct kube_watch *w)
{
	w->disc_step = 0;
	w->n_group_versions = 0;
	memset(w->found, 0, sizeof(w->found));
	disc_request(w);
}

static void disc_apply(struct kube_watch *w)
{
	bool missing = false;

	w->disc_step = -1;
	w->disc_attempt = 0;
	for (int k = 0; k < GW_K_COUNT; k++) {
		const struct gw_kind_info *ki = gw_kind_info((enum gw_kind)k);
		const char *v = w->found[k];

		if (strcmp(ki->group, GW_GROUP) != 0)
			v = "v1"; /* core/v1, discovery.k8s.io/v1 */
		if (!v) {
			if (!w->ver[k] && !w->discovered)
				log_info("event=kube_resource_absent resource=%s.%s", ki->resource,
					 ki->group);
			missing = missing || !w->ver[k];
			/* not served: nothing of that kind exists (a copy restored
			 * from the store would otherwise linger) */
			if (!w->ver[k] && gw_objset_count(w->set, (enum gw_kind)k)) {
				gw_objset_clear_kind(w->set, (enum gw_kind)k);
				w->changed = true;
			}
			continue;
		}
		if (w->ver[k])
			continue; /* already watched (a version change needs a restart) */
		w->ver[k] = v;
		log_info("event=kube_resource resource=%s group=%s version=%s", ki->resource,
			 *ki->group ? ki->group : "core", v);
		if (ki->namespaced && w->namespaces) {
			for (size_t i = 0; w->namespaces[i]; i++)
				refl_new(w, (enum gw_kind)k, w->namespaces[i]);
		} else {
			refl_new(w, (enum gw_kind)k, NULL);
		}
	}
	w->discovered = true;
	for (size_t i = 0; i < w->n_refl; i++)
		if (w->refl[i]->st == RF_WAIT && !is_sc(w->refl[i]->kind))
			refl_start_list(w->refl[i]);
	start_waiting(w);
	if (missing)
		timer_add(w->loop, &w->disc_timer, w->o.recheck_ms, on_disc_timer, w);
	kube_watch_changed(w, GW_K_COUNT);
}

static void disc_fail(struct kube_watch *w, const char *why)
{
	uint32_t d = kube_backoff_ms(w->disc_attempt++, w->o.backoff_min_ms, w->o.backoff_max_ms,
				     (uint32_t)rand_u64());

	log_warn("event=kube_discovery_failed reason=%s retry_ms=%u", log_q(why), d);
	w->disc_step = -1;
	timer_add(w->loop, &w->disc_timer, d, on_disc_timer, w);
}

static void disc_done(void *arg, int err, const struct khttp_resp *resp, const char *body,
		      size_t len)
{
	struct kube_watch *w = arg;
	yyjson_doc *doc;
	yyjson_val *root, *arr, *v;
	size_t idx, max;

	if (err) {
		disc_fail(w, w->disc.error[0] ? w->disc.error : err_str(err));
		return;
	}
	if (resp->status == 404 || resp->status == 403) {
		if (w->disc_step == 0) {
			disc_apply(w); /* the group is not served: its kinds stay empty */
			return;
		}
		goto next;
	}
	if (resp->status != 200) {
		char why[64];

		snprintf(why, sizeof(why), "HTTP %d", resp->status);
		w->cl.errors++;
		if (resp->status == 401)
			w->cl.connected = false;
		snprintf(w->cl.last_error, sizeof(w->cl.last_error), "discovery: HTTP %d%s",
			 resp->status,
			 resp->status == 401 ? " (unauthorized: check the kubeconfig's credentials)"
					     : "");
		disc_fail(w, why);
		return;
	}
	doc = yyjson_read(body, len, 0);
	root = yyjson_doc_get_root(doc);
	if (w->disc_step == 0) {
		arr = yyjson_obj_get(root, "versions");
		for (size_t kv = 0; kv < N_KNOWN; kv++) {
			yyjson_arr_foreach(arr, idx, max, v)
			{
				const char *gv = yyjson_get_str(yyjson_obj_get(v, "version"));

				if (gv && !strcmp(gv, known_versions[kv]) &&
				    w->n_group_versions < 8)
					w->group_versions[w->n_group_versions++] =
						(char *)(uintptr_t)known_versions[kv];
			}
		}
	} else {
		const char *gv = w->group_versions[w->disc_step - 1];

		arr = yyjson_obj_get(root, "resources");
		yyjson_arr_foreach(arr, idx, max, v)
		{
			const char *res = yyjson_get_str(yyjson_obj_get(v, "name"));
			int k;

			if (!res || strchr(res, '/'))
				continue;
			k = gw_kind_from_resource(GW_GROUP, res);
			if (k >= 0 && !w->found[k])
				w->found[k] = gv;
		}
	}
	yyjson_doc_free(doc);
next:
	if ((size_t)w->disc_step < w->n_group_versions) {
		w->disc_step++;
		disc_request(w);
		return;
	}
	disc_apply(w);
}

/* The server answers again after transport failures (an outage, a WAN
 * cut): retry within a second what waits out a long backoff, rather than
 * up to backoff_max_ms later. Throttled retries keep their Retry-After. */
static void on_server_back(void *arg)
{
	struct kube_watch *w = arg;
	size_t n = 0;

	w->prober = NULL;
	w->down_attempt = 0;
	for (size_t i = 0; i < w->n_refl; i++) {
		struct reflector *r = w->refl[i];

		if (r->parked) {
			r->parked = false;
			r->attempt = 1;
			timer_add(w->loop, &r->timer, rand_below(1000), on_refl_timer, r);
			n++;
			continue;
		}
		if (r->st != RF_BACKOFF || r->throttled || r->attempt < 2)
			continue;
		r->attempt = 1;
		timer_add(w->loop, &r->timer, rand_below(1000), on_refl_timer, r);
		n++;
	}
	if (w->disc_step == -1 && !w->discovered && timer_is_armed(&w->disc_timer))
		timer_add(w->loop, &w->disc_timer, rand_below(1000), on_disc_timer, w);
	if (timer_is_armed(&w->fetch_timer))
		timer_add(w->loop, &w->fetch_timer, rand_below(1000), on_fetch_timer, w);
	if (n)
		log_info("event=kube_server_back retrying=%zu", n);
}

/* ---- public ---- */

struct kube_watch *kube_watch_new(struct loop *loop, const struct kube_config *cfg,
				  const struct kube_watch_opts *opts, struct gw_objset *set,
				  void (*on_change)(void *arg), void *arg)
{
	struct kube_watch *w = calloc(1, sizeof(*w));
	size_t nns = 0;

	if (!w)
		return NULL;
	w->loop = loop;
	w->cfg = cfg;
	w->set = set;
	w->on_change = on_change;
	w->arg = arg;
	w->disc_step = -1;
	if (opts)
		w->o = *opts;
	w->o.user_agent = NULL;
	w->o.namespaces = NULL;
	w->o.controller_name = NULL;
#define DEF(f, v)                                                                                  \
	if (!w->o.f)                                                                               \
	w->o.f = (v)
	DEF(page_limit, 500);
	DEF(silence_timeout_ms, 120000);
	DEF(backoff_min_ms, 500);
	DEF(backoff_max_ms, 30000);
	DEF(recheck_ms, 60000);
	DEF(request_timeout_ms, 30000);
	DEF(status_rate_per_s, 10);
	DEF(watch_timeout_s, 300);
#undef DEF
	w->controller = strdup(opts && opts->controller_name ? opts->controller_name
							     : "waygate.dev/gateway-controller");
	if (!w->controller)
		goto fail;
	if (opts && opts->namespaces && opts->namespaces[0]) {
		while (opts->namespaces[nns])
			nns++;
		w->namespaces = calloc(nns + 1, sizeof(char *));
		if (!w->namespaces)
			goto fail;
		for (size_t i = 0; i < nns; i++)
			if (!(w->namespaces[i] = strdup(opts->namespaces[i])))
				goto fail;
	}
	if (kube_client_init(&w->cl, loop, cfg, opts ? opts->user_agent : NULL,
			     w->o.request_timeout_ms))
		goto fail;
	w->cl.on_back = on_server_back;
	w->cl.on_back_arg = w;
	khttp_init(&w->disc, &w->cl, "discovery");
	khttp_init(&w->fetch, &w->cl, "fetch");
	khttp_init(&w->sconn, &w->cl, "status");
	pace_init(&w->space, w->o.status_rate_per_s);
	return w;
fail:
	for (size_t i = 0; w->namespaces && w->namespaces[i]; i++)
		free(w->namespaces[i]);
	free(w->namespaces);
	free(w->controller);
	free(w);
	return NULL;
}

int kube_watch_start(struct kube_watch *w)
{
	if (w->started)
		return 0;
	w->started = true;
	log_info("event=kube_watch_start server=%s context=%s auth=%s namespaces=%s",
		 log_q(w->cfg->server), log_q(w->cfg->context), kube_config_auth_kind(w->cfg),
		 w->namespaces ? "restricted" : "all");
	disc_start(w);
	return 0;
}

static bool sref_drop(void *arg, const char *key, void *val)
{
	(void)arg;
	(void)key;
	sref_free(val);
	return true;
}

void kube_watch_free(struct kube_watch *w)
{
	if (!w)
		return;
	for (size_t i = 0; i < w->n_refl; i++)
		refl_free(w, w->refl[i]);
	free(w->refl);
	khttp_fini(&w->disc);
	khttp_fini(&w->fetch);
	timer_cancel(w->loop, &w->disc_timer);
	timer_cancel(w->loop, &w->fetch_timer);
	timer_cancel(w->loop, &w->notify_timer);
	kube_status_fini(w);
	kube_infra_fini(w);
	kmap_each(&w->sidx, sref_drop, NULL);
	kmap_fini(&w->sidx);
	kube_client_fini(&w->cl);
	for (size_t i = 0; w->namespaces && w->namespaces[i]; i++)
		free(w->namespaces[i]);
	free(w->namespaces);
	free(w->controller);
	free(w);
}

bool kube_watch_synced(const struct kube_watch *w)
{
	if (!w->discovered || w->fetch_pending || w->fetch_cur)
		return false;
	for (size_t i = 0; i < w->n_refl; i++)
		if (!w->refl[i]->listed)
			return false;
	return true;
}

void kube_watch_health(const struct kube_watch *w, struct kube_health *out)
{
	memset(out, 0, sizeof(*out));
	out->connected = w->cl.connected;
	out->synced = kube_watch_synced(w);
	out->insecure = w->cfg->insecure;
	out->server = w->cfg->server;
	out->context = w->cfg->context;
	out->last_sync_ms = w->last_sync_ms;
	out->errors = w->cl.errors;
	out->lists = w->lists;
	out->relists = w->relists;
	out->status_writes = w->status_writes;
	for (size_t i = 0; i < w->n_refl; i++) {
		const struct reflector *r = w->refl[i];

		if (r->st != RF_ABSENT)
			out->reflectors++;
		if (r->st == RF_WATCH && r->conn.st == KH_BODY)
			out->open_watches++;
	}
	snprintf(out->last_error, sizeof(out->last_error), "%s", w->cl.last_error);
}

const char *kube_watch_state_name(enum kube_watch_state st)
{
	static const char *const names[KUBE_WS_COUNT] = {"waiting", "listing", "watching",
							 "backoff", "absent"};

	return st < KUBE_WS_COUNT ? names[st] : "unknown";
}

static enum kube_watch_state refl_state(const struct reflector *r)
{
	switch (r->st) {
	case RF_WAIT: return KUBE_WS_WAITING;
	case RF_LIST: return KUBE_WS_LISTING;
	case RF_WATCH: return KUBE_WS_WATCHING;
	case RF_BACKOFF: return KUBE_WS_BACKOFF;
	case RF_ABSENT: return KUBE_WS_ABSENT;
	}
	return KUBE_WS_WAITING;
}

size_t kube_watch_reflectors(const struct kube_watch *w, struct kube_reflector_health *out,
			     size_t max)
{
	for (size_t i = 0; i < w->n_refl && i < max; i++) {
		const struct reflector *r = w->refl[i];
		struct kube_reflector_health *h = &out[i];

		memset(h, 0, sizeof(*h));
		h->resource = gw_kind_info(r->kind)->resource;
		h->ns = r->ns;
		h->state = refl_state(r);
		h->listed = r->listed;
		h->stream_open = r->st == RF_WATCH && r->conn.st == KH_BODY;
		h->last_event_ms = r->last_event_ms;
		snprintf(h->resource_version, sizeof(h->resource_version), "%s",
			 r->rv ? r->rv : "");
		h->lists = r->lists;
		h->watches = r->watches;
		h->events = r->events;
		h->relists = r->relists;
		h->errors = r->errors;
		snprintf(h->last_error, sizeof(h->last_error), "%s", r->last_error);
	}
	return w->n_refl;
}
