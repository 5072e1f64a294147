/* SPDX-License-Identifier: MIT */
/*
 * plan.c: the walk over a matched rule's filters and then over the filters
 * of the backend it picks (see plan.h): request header modifiers applied,
 * response header modifiers, CORS and mirrors collected, a redirect or a
 * CORS preflight turned into the answer, a URL rewrite into the upstream
 * path and host. It does not write heads or touch sockets: conn.c and h2.c
 * do, each in its protocol. Worker thread.
 */
#include <errno.h>

#include "core/arena.h"
#include "core/hash.h"
#include "proxy/internal.h"
#include "proxy/plan.h"

static int plan_error(struct px_plan *p, int status, const char *why)
{
	p->status = status;
	p->why = why;
	return PX_PLAN_ERROR;
}

static int plan_answer(struct px_plan *p, struct arena *a, int status)
{
	p->status = status;
	/* the modifiers met so far; not CORS, which made the preflight answer */
	for (size_t i = 0; i < p->resp.n_mods; i++)
		if (hlist_apply(&p->answer, a, p->resp.mods[i]))
			return -ENOMEM;
	return PX_PLAN_ANSWER;
}

/* One filter. PX_PLAN_PROXY to go on, else the walk's result. */
static int plan_filter(struct px_plan *p, struct arena *a, const struct rt_rule *rr,
		       struct hlist *hl, const struct snap_filter *f)
{
	switch (f->type) {
	case SNAP_F_REQ_HEADER:
		return hlist_apply(hl, a, &f->u.header) ? -ENOMEM : PX_PLAN_PROXY;
	case SNAP_F_RESP_HEADER:
		if (p->resp.n_mods < PX_MAX_RESP_MODS)
			p->resp.mods[p->resp.n_mods++] = &f->u.header;
		return PX_PLAN_PROXY;
	case SNAP_F_MIRROR:
		if (p->n_mirrors < PX_MAX_MIRRORS)
			p->mirrors[p->n_mirrors++] = &f->u.mirror;
		return PX_PLAN_PROXY;
	case SNAP_F_REDIRECT: {
		char *l = px_redirect_location(a, &f->u.redirect, p->scheme, p->host, p->port,
					       p->path, p->query, rr->prefix_len);
		if (!l || hlist_init(&p->answer, a, 4) ||
		    hlist_add(&p->answer, a, STR_LIT("Location"), str_c(l)))
			return -ENOMEM;
		return plan_answer(p, a, f->u.redirect.status ? f->u.redirect.status : 302);
	}
	case SNAP_F_REWRITE:
		if (f->u.rewrite.hostname) {
			if (!px_is_clean(f->u.rewrite.hostname))
				return plan_error(p, 500, "rewrite failed");
			p->up_host = f->u.rewrite.hostname;
		}
		if (f->u.rewrite.path_type != SNAP_PATH_NONE) {
			p->up_path = px_path_modify(a, p->path, f->u.rewrite.path_type,
						    f->u.rewrite.path, rr->prefix_len);
			if (!p->up_path)
				return plan_error(p, 500, "rewrite failed");
		}
		return PX_PLAN_PROXY;
	case SNAP_F_CORS:
		p->resp.cors = &f->u.cors;
		if (!p->preflight)
			return PX_PLAN_PROXY;
		if (hlist_init(&p->answer, a, 8) ||
		    px_cors_headers(&p->answer, a, p->resp.cors, p->resp.origin, true, p->acr_method,
				    p->acr_headers))
			return -ENOMEM;
		return plan_answer(p, a, 200);
	}
	return PX_PLAN_PROXY;
}

static int plan_walk(struct px_plan *p, struct arena *a, const struct rt_rule *rr,
		     struct hlist *hl, const struct snap_filter *fl, size_t nf)
{
	for (size_t i = 0; i < nf; i++) {
		int rc = plan_filter(p, a, rr, hl, &fl[i]);
		if (rc != PX_PLAN_PROXY)
			return rc;
	}
	return PX_PLAN_PROXY;
}

int px_plan_make(struct px_plan *p, struct arena *a, const struct rt_rule *rr, struct hlist *hl)
{
	const struct snap_http_rule *rule = rr->r;
	int rc = plan_walk(p, a, rr, hl, rule->filters, rule->n_filters);
	if (rc != PX_PLAN_PROXY)
		return rc;
	if (!p->backend) {
		if (!rule->n_backends)
			return plan_error(p, 500, "route has no backends");
		p->backend = up_pick_backend(rr);
		if (!p->backend)
			return plan_error(p, 500, "all backend weights are zero");
	}
	if (p->backend->invalid_status)
		return plan_error(p, p->backend->invalid_status, "invalid backend");
	if (!p->backend->n_endpoints)
		return plan_error(p, 503, "no ready endpoints");
	return plan_walk(p, a, rr, hl, p->backend->filters, p->backend->n_filters);
}

int px_resp_apply(const struct px_resp *r, struct arena *a, struct hlist *hl)
{
	for (size_t i = 0; i < r->n_mods; i++)
		if (hlist_apply(hl, a, r->mods[i]))
			return -ENOMEM;
	if (r->cors && px_cors_headers(hl, a, r->cors, r->origin, false, STR_LIT(""), STR_LIT("")))
		return -ENOMEM;
	return 0;
}

bool px_mirror_is_due(const struct snap_mirror *mi)
{
	if (!mi->backend || !mi->backend->n_endpoints || mi->backend->invalid_status ||
	    mi->backend->tls)
		return false; /* mirrors to TLS backends are not sent (yet) */
	return !mi->denominator || mi->numerator >= mi->denominator ||
	       rand_below(mi->denominator) < mi->numerator;
}
