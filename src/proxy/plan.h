/* SPDX-License-Identifier: MIT */
/*
 * plan.h: what the HTTPRoute filters of a matched rule, and of the backend
 * it picks, ask of one request: the walk shared by the HTTP/1.1 path
 * (conn.c) and the HTTP/2 paths (h2.c). Private to proxy/.
 */
#ifndef WG_PROXY_PLAN_H
#define WG_PROXY_PLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/str.h"
#include "proxy/filters.h"
#include "proxy/snapshot_types.h"

struct arena;
struct rt_rule;

#define PX_MAX_RESP_MODS 8
#define PX_MAX_MIRRORS 8

/* What the filters leave for the response: header modifiers, then CORS. */
struct px_resp {
	const struct snap_header_mod *mods[PX_MAX_RESP_MODS];
	size_t n_mods;
	const struct snap_cors *cors;
	struct str origin; /* the request's Origin (outlives the request head), or empty */
};

enum px_plan_result {
	PX_PLAN_PROXY = 0, /* send it to plan->backend */
	PX_PLAN_ANSWER,    /* answer plan->status with plan->answer (redirect, CORS preflight) */
	PX_PLAN_ERROR,     /* answer plan->status, plan->why (no usable backend, bad rewrite) */
};

struct px_plan {
	/* in: the request (views borrowed for the call) */
	struct str path, query; /* the path without the query; the query */
	const char *host;       /* normalised Host (no port), "" when none: redirects */
	const char *scheme;     /* "http" or "https": redirects */
	uint16_t port;          /* the listener port: redirects */
	bool preflight;         /* OPTIONS with Access-Control-Request-Method */
	struct str acr_method, acr_headers;
	/* in/out: the backend; preset to skip the pick (its filters still apply) */
	const struct snap_backend *backend;
	/* out, when proxying */
	const char *up_path; /* after a rewrite (NUL-terminated, arena); NULL: unchanged */
	const char *up_host; /* after a rewrite; NULL: unchanged */
	struct px_resp resp; /* set resp.origin before the walk */
	const struct snap_mirror *mirrors[PX_MAX_MIRRORS];
	size_t n_mirrors;
	/* out, when answered here */
	int status;
	struct hlist answer; /* PX_PLAN_ANSWER: its fields, response modifiers applied */
	const char *why;     /* PX_PLAN_ERROR: for the log */
};

/*
 * Applies the request header modifiers of the rule, then of the backend it
 * picks (by weight, unless preset), to hl, and collects what the other
 * filters ask. Returns a px_plan_result, or -ENOMEM.
 */
int px_plan_make(struct px_plan *p, struct arena *a, const struct rt_rule *rr, struct hlist *hl);
/* Applies r's header modifiers, then its CORS fields, to a response's
 * fields. 0 or -ENOMEM. */
int px_resp_apply(const struct px_resp *r, struct arena *a, struct hlist *hl);
/* Whether a mirror copy goes out for this request (its fraction drawn). */
bool px_mirror_is_due(const struct snap_mirror *mi);

#endif
