/* SPDX-License-Identifier: MIT */
/*
 * incr.c: incremental reconcile. One HTTPRoute added, changed or deleted
 * among 10,000 should cost what that route costs, not a pass over every
 * object. The working state of the last whole pass is kept (its scratch
 * arena: listeners, attachments, decoded routes; its snapshot arena: every
 * compiled rule). The next call compares the object set with the objects
 * that pass saw (objects are immutable: a pointer compare says whether one
 * changed) and, when only HTTPRoutes and GRPCRoutes changed, detaches the
 * old version of each, decodes, compiles and attaches the new one, builds
 * the snapshot again from the listeners (copies of the rules, no decoding,
 * no compiling) and renders the statuses of what changed and of what can
 * depend on it (Gateways, ListenerSets: attachedRoutes). The new snapshot
 * borrows the other routes' compiled rules from the whole pass's arena
 * (struct snapshot.shared), which grows by what the changed routes need.
 *
 * Anything else takes the whole pass: a change of another kind, options,
 * too many routes at once, a route whose backends a BackendTLSPolicy
 * covers (policy ancestors follow the routes), or the garbage of many
 * steps outgrowing the pass itself. The result equals a whole pass's
 * except that statuses hold only the objects rendered again; the unit test
 * test_incr.c checks that on random sequences of changes.
 * Control thread only.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/str.h"
#include "gwapi/reconcile_int.h"

/* One object the last pass saw, and its compiled route if it is one. */
struct seen {
	const struct gw_object *o;
	struct croute *cr;
};

struct gw_incr {
	struct rctx c;      /* c.a NULL: no pass kept */
	struct arena *base; /* the whole pass's snapshot arena, one reference */
	struct arena *last; /* the last incremental snapshot's arena, one reference:
			       its rule tables are copied by the next build */
	struct seen *seen[GW_K_COUNT];
	size_t n_seen[GW_K_COUNT];
	char *controller;
	char *pool;
	const char *const *features;
	bool skip_statuses;
	size_t limit; /* arena bytes past which the next change takes a whole pass */
};

/* A route that changed: the last pass's (old) and the set's (o) version. */
struct change {
	enum gw_kind kind;
	struct seen old;           /* old.o NULL: added */
	const struct gw_object *o; /* NULL: deleted */
	struct croute *cr;
};

struct gw_incr *gw_incr_new(void)
{
	return calloc(1, sizeof(struct gw_incr));
}

static void forget(struct gw_incr *s)
{
	for (int k = 0; k < GW_K_COUNT; k++) {
		for (size_t i = 0; i < s->n_seen[k]; i++)
			gw_object_unref((struct gw_object *)(uintptr_t)s->seen[k][i].o);
		free(s->seen[k]);
		s->seen[k] = NULL;
		s->n_seen[k] = 0;
	}
	diag_fini(&s->c.diag);
	arena_free(s->c.a);
	arena_unref(s->base);
	arena_unref(s->last);
	memset(&s->c, 0, sizeof(s->c));
	s->base = s->last = NULL;
	free(s->controller);
	free(s->pool);
	s->controller = s->pool = NULL;
}

void gw_incr_free(struct gw_incr *s)
{
	if (!s)
		return;
	forget(s);
	free(s);
}

/* Frees a snapshot never handed out (one reference, not published). */
static void drop_snapshot(struct snapshot *snap)
{
	struct arena *shared = snap->shared;

	arena_unref(snap->arena); /* holds snap itself */
	arena_unref(shared);
}

static bool same_opts(const struct gw_incr *s, const struct gw_options *o)
{
	return cstr_eq(s->controller, o->controller_name) && cstr_eq(s->pool, o->address_pool) &&
	       s->features == o->supported_features && s->skip_statuses == o->skip_statuses;
}

static int route_type(enum gw_kind k)
{
	return k == GW_K_HTTPROUTE ? GW_RT_HTTP : k == GW_K_GRPCROUTE ? GW_RT_GRPC : -1;
}

/* Keeps what the whole pass in s->c saw. */
static int remember(struct gw_incr *s, struct gw_objset *set, const struct gw_options *o)
{
	for (int k = 0; k < GW_K_COUNT; k++) {
		size_t n;
		const struct gw_object *const *v = gw_objset_list(set, k, &n);
		int t = route_type(k);
		if (!n)
			continue;
		s->seen[k] = calloc(n, sizeof(struct seen));
		if (!s->seen[k])
			return -ENOMEM;
		for (size_t i = 0; i < n; i++) {
			s->seen[k][i].o = v[i];
			gw_object_ref((struct gw_object *)(uintptr_t)v[i]);
			if (t >= 0 && i < s->c.n_listed[t])
				s->seen[k][i].cr = s->c.listed[t][i];
		}
		s->n_seen[k] = n;
	}
	s->controller = o->controller_name ? strdup(o->controller_name) : NULL;
	s->pool = o->address_pool ? strdup(o->address_pool) : NULL;
	if ((o->controller_name && !s->controller) || (o->address_pool && !s->pool))
		return -ENOMEM;
	s->features = o->supported_features;
	s->skip_statuses = o->skip_statuses;
	s->limit = 2 * (arena_used(s->c.a) + arena_used(s->base)) + 4 * 1024 * 1024;
	return 0;
}

static int whole(struct gw_incr *s, struct gw_objset *set, const struct gw_options *opts,
		 struct gw_result *out)
{
	forget(s);
	int rc = rc_whole(&s->c, set, opts, out);
	if (rc == 0) {
		s->base = s->c.sa;
		arena_ref(s->base);
		rc = remember(s, set, opts);
		diag_append(&out->diag, &s->c.diag);
	}
	if (rc) {
		if (out->snap)
			drop_snapshot(out->snap);
		else
			arena_free(s->c.sa);
		gw_result_fini(out);
		memset(out, 0, sizeof(*out));
		diag_append(&out->diag, &s->c.diag);
		forget(s);
	}
	return rc;
}

static int cmp_key(const struct gw_object *a, const struct gw_object *b)
{
	int r = strcmp(a->ns, b->ns);
	return r ? r : strcmp(a->name, b->name);
}

static int push_change(struct change **v, size_t *n, size_t max, enum gw_kind k,
		       const struct seen *old, const struct gw_object *o)
{
	static const struct seen none;

	if (*n == max)
		return -E2BIG;
	(*v)[(*n)++] = (struct change){k, old ? *old : none, o, NULL};
	return 0;
}

/* The routes of kind k that changed since the last pass (merging two
 * listings sorted by namespace/name). -E2BIG past max. */
static int diff_routes(struct gw_incr *s, enum gw_kind k, const struct gw_object *const *v,
		       size_t n, struct change **ch, size_t *nch, size_t max)
{
	struct seen *old = s->seen[k];
	size_t i = 0, j = 0, m = s->n_seen[k];
	int rc = 0;

	while (!rc && (i < m || j < n)) {
		int c = i == m ? 1 : j == n ? -1 : old[i].o == v[j] ? 0 : cmp_key(old[i].o, v[j]);
		if (c < 0) {
			rc = push_change(ch, nch, max, k, &old[i++], NULL);
		} else if (c > 0) {
			rc = push_change(ch, nch, max, k, NULL, v[j++]);
		} else {
			if (old[i].o != v[j])
				rc = push_change(ch, nch, max, k, &old[i], v[j]);
			i++;
			j++;
		}
	}
	return rc;
}

/* The same object, or one made again with the same text from the same
 * file (local mode makes the Namespaces it implies again at each load):
 * the kept state goes on reading the one it saw. */
static bool same_object(const struct gw_object *a, const struct gw_object *b)
{
	return a == b || (a->json_len == b->json_len && !memcmp(a->json, b->json, a->json_len) &&
			  cstr_eq(a->file, b->file));
}

/* Every change since the last pass if all are HTTPRoutes or GRPCRoutes
 * and few enough; -EAGAIN otherwise (a whole pass is due). */
static int diff(struct gw_incr *s, struct gw_objset *set, struct change **ch, size_t *nch)
{
	size_t max = 16 + (s->n_seen[GW_K_HTTPROUTE] + s->n_seen[GW_K_GRPCROUTE]) / 8;

	*nch = 0;
	*ch = malloc(max * sizeof(**ch));
	if (!*ch)
		return -ENOMEM;
	for (int k = 0; k < GW_K_COUNT; k++) {
		size_t n;
		const struct gw_object *const *v = gw_objset_list(set, k, &n);
		if (route_type(k) >= 0) {
			if (diff_routes(s, k, v, n, ch, nch, max))
				return -EAGAIN;
			continue;
		}
		if (n != s->n_seen[k])
			return -EAGAIN;
		for (size_t i = 0; i < n; i++)
			if (!same_object(s->seen[k][i].o, v[i]))
				return -EAGAIN;
	}
	return 0;
}

static void drop_problems(struct rctx *c, const struct gw_object *o)
{
	char name[600];

	snprintf(name, sizeof(name), "%s %s/%s", gw_kind_info(o->kind)->kind, o->ns, o->name);
	diag_drop_object(&c->diag, name);
}

/* Detaches the old version of every changed route and attaches the new
 * one. -EAGAIN when a policy is involved. */
static int rederive(struct rctx *c, struct change *ch, size_t n)
{
	rc_build_again(c);
	for (size_t i = 0; i < n; i++) {
		struct croute *old = ch[i].old.cr;
		if (old && old->policies.n)
			return -EAGAIN;
		if (old)
			rc_route_detach(old);
		if (ch[i].old.o)
			drop_problems(c, ch[i].old.o);
	}
	for (size_t i = 0; i < n; i++) {
		if (!ch[i].o)
			continue;
		ch[i].cr = rc_route_decode(c, ch[i].o);
		if (c->err)
			return c->err;
		if (ch[i].cr && rc_route_attach(c, ch[i].cr))
			return c->err ? c->err : -ENOMEM;
		if (ch[i].cr && ch[i].cr->policies.n)
			return -EAGAIN;
	}
	return 0;
}

/* s->seen after the changes: the set's listing of each route kind, the
 * unchanged entries carried over, the changed ones with their new route. */
static int update_seen(struct gw_incr *s, struct gw_objset *set, struct change *ch, size_t n)
{
	struct seen *now[2];
	size_t m[2];
	const struct gw_object *const *v[2];

	for (int t = 0; t < 2; t++) {
		v[t] = gw_objset_list(set, GW_K_HTTPROUTE + t, &m[t]);
		now[t] = calloc(m[t] ? m[t] : 1, sizeof(struct seen));
		if (!now[t]) {
			free(now[0]);
			return -ENOMEM;
		}
	}
	for (int t = 0; t < 2; t++) {
		enum gw_kind k = GW_K_HTTPROUTE + t;
		struct seen *old = s->seen[k];
		size_t i = 0, x = 0;
		/* changes of a kind come in the listing's order, as diff found them */
		for (size_t j = 0; j < m[t]; j++) {
			while (x < n && (ch[x].kind != k || !ch[x].o))
				x++;
			if (x < n && ch[x].o == v[t][j]) {
				now[t][j] = (struct seen){v[t][j], ch[x++].cr};
				gw_object_ref((struct gw_object *)(uintptr_t)v[t][j]);
				continue;
			}
			while (i < s->n_seen[k] && old[i].o != v[t][j])
				i++;
			now[t][j] = old[i++];
		}
		for (x = 0; x < n; x++)
			if (ch[x].kind == k && ch[x].old.o)
				gw_object_unref((struct gw_object *)(uintptr_t)ch[x].old.o);
		free(old);
		s->seen[k] = now[t];
		s->n_seen[k] = m[t];
	}
	return 0;
}

/* A new snapshot built from the listeners in its own arena; it borrows
 * the compiled routes from s->base. */
static struct snapshot *build(struct gw_incr *s)
{
	struct rctx *c = &s->c;
	struct arena *a = arena_new(256 * 1024);
	struct snapshot *snap = a ? arena_zalloc(a, sizeof(*snap)) : NULL;

	if (!snap) {
		arena_free(a);
		return NULL;
	}
	snap->arena = a;
	snap->refs = 1;
	snap->compiled_ms = c->opts->now_ms;
	snap->shared = s->base;
	arena_ref(s->base);
	c->snap = snap;
	c->sa = a;
	int rc = rc_build(c);
	c->sa = s->base;
	if (rc || c->err) {
		arena_unref(s->base);
		arena_free(a);
		return NULL;
	}
	arena_unref(s->last);
	s->last = a;
	arena_ref(a);
	return snap;
}

static int step(struct gw_incr *s, struct gw_objset *set, const struct gw_options *opts,
		struct change *ch, size_t n, struct gw_result *out)
{
	struct rctx *c = &s->c;
	struct croute **done = calloc(n ? n : 1, sizeof(*done));
	size_t n_done = 0;
	int rc;

	if (!done)
		return -ENOMEM;
	c->set = set;
	c->opts = opts;
	rc = rederive(c, ch, n);
	if (rc == 0 && !(out->snap = build(s)))
		rc = -ENOMEM;
	for (size_t i = 0; i < n && rc == 0; i++)
		if (ch[i].cr)
			done[n_done++] = ch[i].cr;
	if (rc == 0)
		rc = rc_render_some(c, out, done, n_done);
	if (rc == 0)
		rc = update_seen(s, set, ch, n);
	free(done);
	if (rc == 0) {
		diag_append(&out->diag, &c->diag);
		out->incremental = true;
		out->n_rederived = n;
	}
	return rc;
}

static bool too_big(const struct gw_incr *s)
{
	return arena_used(s->c.a) + arena_used(s->base) > s->limit;
}

int gw_reconcile_incr(struct gw_incr *s, struct gw_objset *set, const struct gw_options *opts,
		      struct gw_result *out)
{
	struct change *ch = NULL;
	size_t n = 0;
	int rc = -EAGAIN;

	memset(out, 0, sizeof(*out));
	if (s->c.a && same_opts(s, opts) && !too_big(s) && (rc = diff(s, set, &ch, &n)) == 0)
		rc = step(s, set, opts, ch, n, out);
	free(ch);
	if (rc == 0)
		return 0;
	/* The kept state may be half changed: start over from the set. */
	if (out->snap)
		drop_snapshot(out->snap);
	gw_result_fini(out);
	memset(out, 0, sizeof(*out));
	return whole(s, set, opts, out);
}
