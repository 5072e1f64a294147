/* SPDX-License-Identifier: MIT */
/*
 * route.c: the route side of reconcile. Compiles each HTTPRoute and
 * GRPCRoute rule once (matches, filters, timeouts, retries, backends
 * resolved through Services and EndpointSlices, ReferenceGrants,
 * BackendTLSPolicy) into snapshot memory shared by every listener it
 * attaches to; attaches routes of every kind to listeners (parentRefs with
 * sectionName and port, allowedRoutes namespaces and kinds, hostname
 * intersection) and computes each parent's conditions. Ordering by
 * precedence is build.c's. Control thread only.
 */
#include <errno.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gwapi/reconcile_int.h"

struct epcache {
	struct snap_endpoint *eps;
	size_t n;
};

static const char *route_kind(const struct croute *cr)
{
	return gw_kind_info(cr->r.obj->kind)->kind;
}

/* Where in a route a problem is, formatted only when there is one:
 * spec.rules[rule](.backendRefs[backend])(.leaf). */
struct where {
	int rule;    /* -1 = none */
	int backend; /* -1 = none */
	const char *leaf;
};

static const char *where_str(struct rctx *c, const struct where *w)
{
	if (w->rule < 0)
		return w->leaf;
	if (w->backend < 0)
		return rc_printf(c, "spec.rules[%d]%s%s", w->rule, w->leaf ? "." : "",
				 w->leaf ? w->leaf : "");
	return rc_printf(c, "spec.rules[%d].backendRefs[%d]%s%s", w->rule, w->backend,
			 w->leaf ? "." : "", w->leaf ? w->leaf : "");
}

static const char *route_objname(struct rctx *c, struct croute *cr)
{
	if (!cr->objname)
		cr->objname = rc_objname(c, cr->r.obj);
	return cr->objname;
}

static void refs_fail(struct rctx *c, struct croute *cr, const struct where *w, const char *reason,
		      const char *msg)
{
	if (cr->refs_ok) {
		cr->refs_ok = false;
		cr->ref_reason = reason;
		cr->ref_msg = msg;
	}
	diag_add(&c->diag, DIAG_ERROR, cr->r.obj->file, route_objname(c, cr), where_str(c, w), "%s",
		 msg);
}

static void rule_invalid(struct rctx *c, struct croute *cr, struct crule *ru, const struct where *w,
			 const char *msg)
{
	if (!ru->invalid) {
		ru->invalid = true;
		cr->n_invalid_rules++;
		if (!cr->invalid_msg)
			cr->invalid_msg = msg;
	}
	diag_add(&c->diag, DIAG_ERROR, cr->r.obj->file, route_objname(c, cr), where_str(c, w), "%s",
		 msg);
}

static struct epcache *endpoints_for(struct rctx *c, const char *ns, const struct gw_service *s,
				     const struct gw_service_port *sp)
{
	char port[8];
	snprintf(port, sizeof(port), "%d", sp->port);
	const char *svckey = rc_cat(c, c->a, ns, '/', s->obj->name);
	const char *key = svckey ? rc_cat(c, c->a, svckey, ':', port) : NULL;
	void **slot = key ? gw_map_slot(&c->epcache, key) : NULL;

	if (!slot)
		return NULL;
	if (*slot)
		return *slot;
	struct epcache *ec = rc_alloc(c, 1, sizeof(*ec));
	if (!ec)
		return NULL;
	struct gw_vec *sl = gw_map_get(&c->slices, svckey);
	size_t total = 0;
	for (int pass = 0; pass < 2; pass++) {
		for (size_t i = 0; sl && i < sl->n; i++) {
			const struct gw_endpointslice *es = sl->v[i];
			if (strcmp(es->address_type, "IPv4") != 0 &&
			    strcmp(es->address_type, "IPv6") != 0)
				continue;
			int eport = -1;
			for (size_t j = 0; j < es->n_ports; j++)
				if (!strcmp(es->ports[j].name, sp->name))
					eport = es->ports[j].port;
			if (eport <= 0 || eport > 65535)
				continue;
			for (size_t j = 0; j < es->n_endpoints; j++) {
				const struct gw_slice_endpoint *e = &es->endpoints[j];
				if (!e->ready)
					continue;
				for (size_t k = 0; k < e->n_addresses; k++) {
					if (pass == 0) {
						total++;
						continue;
					}
					struct snap_endpoint *ep = &ec->eps[ec->n];
					if (strlen(e->addresses[k]) >= sizeof(ep->addr))
						continue;
					strcpy(ep->addr, e->addresses[k]);
					ep->port = (uint16_t)eport;
					/* One endpoint per address and port, in slice order. */
					bool dup = false;
					for (size_t d = 0; d < ec->n && !dup; d++)
						dup = ec->eps[d].port == ep->port &&
						      !strcmp(ec->eps[d].addr, ep->addr);
					if (!dup)
						ec->n++;
				}
			}
		}
		if (pass == 0) {
			ec->eps = rc_salloc(c, total, sizeof(*ec->eps));
			if (total && !ec->eps)
				return NULL;
		}
	}
	*slot = ec;
	return ec;
}

/* Resolves one backendRef into b (weight and name always set). A reference
 * that cannot be used makes b answer 500 and the route's ResolvedRefs
 * false with the reason the spec names. */
static void resolve_backend(struct rctx *c, struct croute *cr, const struct gw_ref *r, int weight,
			    const struct where *field, bool http, struct snap_backend *b)
{
	const struct gw_object *ro = cr->r.obj;
	const char *msg;

	b->weight = (uint32_t)weight;
	char portstr[8];
	snprintf(portstr, sizeof(portstr), "%d", r->port);
	const char *nsname = rc_cat(c, c->a, r->ns, '/', r->name);
	b->name = nsname ? rc_cat(c, c->sa, nsname, ':', portstr) : NULL;
	b->invalid_status = 500;
	if (strcmp(r->group, "") != 0 || strcmp(r->kind, "Service") != 0) {
		msg = rc_printf(c, "backendRef %s/%s %s: only core Services are supported",
				*r->group ? r->group : "core", r->kind, r->name);
		refs_fail(c, cr, field, "InvalidKind", msg);
		return;
	}
	if (!rc_grant_allows(c, GW_GROUP, route_kind(cr), ro->ns, "", "Service", r->ns, r->name)) {
		msg = rc_printf(c,
				"backendRef Service %s/%s in another namespace needs a "
				"ReferenceGrant",
				r->ns, r->name);
		refs_fail(c, cr, field, "RefNotPermitted", msg);
		return;
	}
	const struct gw_service *s = rc_service(c, r->ns, r->name);
	if (!s) {
		msg = rc_printf(c, "backendRef Service %s/%s not found", r->ns, r->name);
		refs_fail(c, cr, field, "BackendNotFound", msg);
		return;
	}
	const struct gw_service_port *sp = NULL;
	for (size_t i = 0; i < s->n_ports && r->port_set; i++)
		if (s->ports[i].port == r->port)
			sp = &s->ports[i];
	if (!sp && !strcmp(s->type, "ExternalName") && r->port_set) {
		b->invalid_status = 0; /* valid; no endpoints to proxy to (503) */
		return;
	}
	if (!sp) {
		msg = r->port_set ? rc_printf(c, "Service %s/%s has no port %d", r->ns, r->name,
					      r->port)
				  : rc_printf(c, "backendRef to Service %s/%s needs a port", r->ns,
					      r->name);
		refs_fail(c, cr, field, "BackendNotFound", msg);
		return;
	}
	if (http && sp->app_protocol) {
		const char *ap = sp->app_protocol;
		if (!strcmp(ap, "kubernetes.io/h2c"))
			b->proto = SNAP_APP_H2C;
		else if (!strcmp(ap, "kubernetes.io/ws") || !strcmp(ap, "kubernetes.io/wss"))
			b->proto = SNAP_APP_WS;
		else if (strcmp(ap, "http") != 0 && strcmp(ap, "https") != 0 &&
			 strcmp(ap, "HTTP") != 0 && strcmp(ap, "HTTPS") != 0 &&
			 strcmp(ap, "kubernetes.io/http") != 0) {
			msg = rc_printf(c, "Service %s/%s port %d: appProtocol %s is not supported",
					r->ns, r->name, r->port, ap);
			refs_fail(c, cr, field, "UnsupportedProtocol", msg);
			return;
		}
	}
	/* gRPC needs HTTP/2 end to end, whatever the Service declares. */
	if (cr->r.type == GW_RT_GRPC && b->proto == SNAP_APP_HTTP1)
		b->proto = SNAP_APP_H2C;
	struct epcache *ec = endpoints_for(c, r->ns, s, sp);
	if (!ec)
		return;
	b->endpoints = ec->eps;
	b->n_endpoints = ec->n;
	b->invalid_status = 0;
	struct rpolicy *p = rc_policy_for(c, r->ns, r->name, sp->name);
	if (p) {
		bool seen = false;
		for (size_t i = 0; i < cr->policies.n; i++)
			seen |= cr->policies.v[i] == p;
		if (!seen && gw_vec_push(&cr->policies, c->a, p))
			c->err = -ENOMEM;
		if (p->tls) {
			b->tls = p->tls;
			if (b->proto == SNAP_APP_H2C)
				b->proto = SNAP_APP_H2;
		} else {
			b->invalid_status = 500; /* a policy applies but cannot be honoured */
		}
	}
}

/* -------- filters -------- */

static const char *jstr(yyjson_val *o, const char *k)
{
	return yyjson_get_str(yyjson_obj_get(o, k));
}

static char **str_array(struct rctx *c, yyjson_val *arr, size_t *n)
{
	size_t cnt = yyjson_arr_size(arr);
	char **v = rc_salloc(c, cnt, sizeof(char *));
	*n = 0;
	for (size_t i = 0; i < cnt && v; i++) {
		const char *s = yyjson_get_str(yyjson_arr_get(arr, i));
		if (s)
			v[(*n)++] = rc_sdup(c, s);
	}
	return v;
}

static struct snap_header *headers(struct rctx *c, yyjson_val *arr, size_t *n)
{
	size_t cnt = yyjson_arr_size(arr);
	struct snap_header *v = rc_salloc(c, cnt, sizeof(*v));
	*n = 0;
	for (size_t i = 0; i < cnt && v; i++) {
		yyjson_val *e = yyjson_arr_get(arr, i);
		const char *name = jstr(e, "name"), *value = jstr(e, "value");
		if (!name || !value)
			continue;
		v[*n].name = rc_sdup(c, name);
		v[*n].value = rc_sdup(c, value);
		(*n)++;
	}
	return v;
}

static int path_mod(struct rctx *c, yyjson_val *p, enum snap_path_mod *type, char **path)
{
	const char *t = jstr(p, "type");

	*type = SNAP_PATH_NONE;
	if (!p)
		return 0;
	if (t && !strcmp(t, "ReplaceFullPath")) {
		*type = SNAP_PATH_FULL;
		*path = rc_sdup(c, jstr(p, "replaceFullPath"));
	} else if (t && !strcmp(t, "ReplacePrefixMatch")) {
		*type = SNAP_PATH_PREFIX;
		*path = rc_sdup(c, jstr(p, "replacePrefixMatch"));
	} else {
		return -1;
	}
	if (!*path)
		*path = rc_sdup(c, "/");
	return 0;
}

/* 0 ok, 1 unsupported (message in *why). */
static int compile_filter(struct rctx *c, struct croute *cr, yyjson_val *f,
			  const struct where *field, struct snap_filter *out, const char **why)
{
	const char *type = jstr(f, "type");

	*why = NULL;
	if (!type) {
		*why = "filter without a type";
		return 1;
	}
	if (!strcmp(type, "RequestHeaderModifier") || !strcmp(type, "ResponseHeaderModifier")) {
		bool req = type[1] == 'e' && type[2] == 'q';
		yyjson_val *m =
			yyjson_obj_get(f, req ? "requestHeaderModifier" : "responseHeaderModifier");
		out->type = req ? SNAP_F_REQ_HEADER : SNAP_F_RESP_HEADER;
		out->u.header.set = headers(c, yyjson_obj_get(m, "set"), &out->u.header.n_set);
		out->u.header.add = headers(c, yyjson_obj_get(m, "add"), &out->u.header.n_add);
		out->u.header.remove =
			str_array(c, yyjson_obj_get(m, "remove"), &out->u.header.n_remove);
		return 0;
	}
	if (!strcmp(type, "RequestRedirect")) {
		yyjson_val *m = yyjson_obj_get(f, "requestRedirect");
		struct snap_redirect *r = &out->u.redirect;
		out->type = SNAP_F_REDIRECT;
		r->scheme = rc_sdup(c, jstr(m, "scheme"));
		r->hostname = rc_sdup(c, jstr(m, "hostname"));
		yyjson_val *port = yyjson_obj_get(m, "port");
		r->port = yyjson_is_int(port) ? (int)yyjson_get_sint(port) : 0;
		yyjson_val *sc = yyjson_obj_get(m, "statusCode");
		r->status = yyjson_is_int(sc) ? (int)yyjson_get_sint(sc) : 302;
		if (r->status != 301 && r->status != 302 && r->status != 303 && r->status != 307 &&
		    r->status != 308) {
			*why = "requestRedirect.statusCode must be 301, 302, 303, 307 or 308";
			return 1;
		}
		if (path_mod(c, yyjson_obj_get(m, "path"), &r->path_type, &r->path)) {
			*why = "requestRedirect.path.type is not supported";
			return 1;
		}
		return 0;
	}
	if (!strcmp(type, "URLRewrite")) {
		yyjson_val *m = yyjson_obj_get(f, "urlRewrite");
		out->type = SNAP_F_REWRITE;
		out->u.rewrite.hostname = rc_sdup(c, jstr(m, "hostname"));
		if (path_mod(c, yyjson_obj_get(m, "path"), &out->u.rewrite.path_type,
			     &out->u.rewrite.path)) {
			*why = "urlRewrite.path.type is not supported";
			return 1;
		}
		return 0;
	}
	if (!strcmp(type, "RequestMirror")) {
		yyjson_val *m = yyjson_obj_get(f, "requestMirror");
		yyjson_val *br = yyjson_obj_get(m, "backendRef");
		struct snap_mirror *mi = &out->u.mirror;
		struct gw_ref ref = {0};
		out->type = SNAP_F_MIRROR;
		ref.group = jstr(br, "group") ? jstr(br, "group") : "";
		ref.kind = jstr(br, "kind") ? jstr(br, "kind") : "Service";
		ref.ns = jstr(br, "namespace") ? jstr(br, "namespace") : cr->r.obj->ns;
		ref.name = jstr(br, "name") ? jstr(br, "name") : "";
		yyjson_val *port = yyjson_obj_get(br, "port");
		ref.port_set = yyjson_is_int(port);
		ref.port = ref.port_set ? (int)yyjson_get_sint(port) : 0;
		mi->backend = rc_salloc(c, 1, sizeof(*mi->backend));
		if (!mi->backend)
			return 0;
		resolve_backend(c, cr, &ref, 1, field, true, mi->backend);
		mi->numerator = 100;
		mi->denominator = 100;
		yyjson_val *pc = yyjson_obj_get(m, "percent");
		yyjson_val *fr = yyjson_obj_get(m, "fraction");
		if (yyjson_is_int(pc)) {
			int64_t p = yyjson_get_sint(pc);
			mi->numerator = (uint32_t)(p < 0 ? 0 : p > 100 ? 100 : p);
		} else if (fr) {
			yyjson_val *num = yyjson_obj_get(fr, "numerator");
			yyjson_val *den = yyjson_obj_get(fr, "denominator");
			int64_t nu = yyjson_is_int(num) ? yyjson_get_sint(num) : 0;
			int64_t de = yyjson_is_int(den) ? yyjson_get_sint(den) : 100;
			if (de <= 0 || nu < 0 || nu > de) {
				*why = "requestMirror.fraction must satisfy 0 <= numerator <= "
				       "denominator, denominator > 0";
				return 1;
			}
			mi->numerator = (uint32_t)nu;
			mi->denominator = (uint32_t)de;
		}
		return 0;
	}
	if (!strcmp(type, "CORS")) {
		yyjson_val *m = yyjson_obj_get(f, "cors");
		struct snap_cors *co = &out->u.cors;
		out->type = SNAP_F_CORS;
		co->allow_origins =
			str_array(c, yyjson_obj_get(m, "allowOrigins"), &co->n_allow_origins);
		co->allow_credentials = yyjson_is_true(yyjson_obj_get(m, "allowCredentials"));
		co->allow_methods =
			str_array(c, yyjson_obj_get(m, "allowMethods"), &co->n_allow_methods);
		co->allow_headers =
			str_array(c, yyjson_obj_get(m, "allowHeaders"), &co->n_allow_headers);
		co->expose_headers =
			str_array(c, yyjson_obj_get(m, "exposeHeaders"), &co->n_expose_headers);
		yyjson_val *ma = yyjson_obj_get(m, "maxAge");
		co->max_age_s = yyjson_is_int(ma) ? (int)yyjson_get_sint(ma) : 0;
		return 0;
	}
	if (!strcmp(type, "ExtensionRef")) {
		yyjson_val *m = yyjson_obj_get(f, "extensionRef");
		refs_fail(c, cr, field, "InvalidKind",
			  rc_printf(c, "extensionRef filter %s/%s %s is not supported",
				    jstr(m, "group") ? jstr(m, "group") : "",
				    jstr(m, "kind") ? jstr(m, "kind") : "",
				    jstr(m, "name") ? jstr(m, "name") : ""));
		*why = "extensionRef filters are not supported";
		return 1;
	}
	*why = rc_printf(c, "filter type %s is not supported", type);
	return 1;
}

static struct snap_filter *compile_filters(struct rctx *c, struct croute *cr, struct crule *ru,
					   yyjson_val *arr, const struct where *field, size_t *n)
{
	size_t cnt = yyjson_arr_size(arr);
	struct snap_filter *v = rc_salloc(c, cnt, sizeof(*v));

	*n = 0;
	for (size_t i = 0; i < cnt && v; i++) {
		const char *why;
		struct where f = *field;
		if (compile_filter(c, cr, yyjson_arr_get(arr, i), field, &v[*n], &why)) {
			f.leaf = rc_printf(c, "filters[%zu]", i);
			rule_invalid(c, cr, ru, &f, why);
		} else
			(*n)++;
	}
	return v;
}

/* -------- matches -------- */

static char *regex_quote(struct rctx *c, const char *s)
{
	size_t n = strlen(s);
	char *o = arena_alloc(c->sa, n * 2 + 1), *p = o;
	if (!o) {
		c->err = -ENOMEM;
		return NULL;
	}
	for (; *s; s++) {
		if (strchr(".[]{}()\\*+?^$|", *s))
			*p++ = '\\';
		*p++ = *s;
	}
	*p = '\0';
	return o;
}

/* Whether the data plane can compile a regular expression (POSIX extended,
 * as proxy/ does): a rule with one that cannot be compiled is invalid here,
 * with a status, instead of failing on the request path. */
static bool regex_ok(const char *re)
{
	regex_t r;

	if (!re || regcomp(&r, re, REG_EXTENDED | REG_NOSUB) != 0)
		return false;
	regfree(&r);
	return true;
}

static int compile_match(struct rctx *c, struct croute *cr, const struct gw_http_match *m,
			 struct snap_http_match *out, const char **why)
{
	*why = NULL;
	out->method = rc_sdup(c, m->method);
	if (cr->r.type == GW_RT_GRPC) {
		const char *svc = m->grpc_service, *meth = m->grpc_method;
		if (m->grpc_regex) {
			out->path_type = SNAP_PM_REGEX;
			out->path = rc_sdup(c, rc_printf(c, "/%s/%s", svc ? svc : "[^/]+",
							 meth ? meth : "[^/]+"));
		} else if (svc && meth) {
			out->path_type = SNAP_PM_EXACT;
			out->path = rc_sdup(c, rc_printf(c, "/%s/%s", svc, meth));
		} else if (svc) {
			out->path_type = SNAP_PM_PREFIX;
			out->path = rc_sdup(c, rc_printf(c, "/%s", svc));
		} else if (meth) {
			out->path_type = SNAP_PM_REGEX;
			out->path = rc_sdup(c, rc_printf(c, "/[^/]+/%s", regex_quote(c, meth)));
		} else {
			out->path_type = SNAP_PM_PREFIX;
			out->path = rc_sdup(c, "/");
		}
	} else {
		if (!strcmp(m->path_type, "Exact"))
			out->path_type = SNAP_PM_EXACT;
		else if (!strcmp(m->path_type, "PathPrefix"))
			out->path_type = SNAP_PM_PREFIX;
		else if (!strcmp(m->path_type, "RegularExpression"))
			out->path_type = SNAP_PM_REGEX;
		else {
			*why = rc_printf(c, "path match type %s is not supported", m->path_type);
			return 1;
		}
		if (out->path_type != SNAP_PM_REGEX && m->path[0] != '/') {
			*why = rc_printf(c, "path \"%s\" must start with /", m->path);
			return 1;
		}
		out->path = rc_sdup(c, m->path);
	}
	if (out->path_type == SNAP_PM_REGEX && !regex_ok(out->path)) {
		*why = rc_printf(c,
				 "path regular expression \"%s\" is not a valid POSIX extended "
				 "regular expression",
				 out->path);
		return 1;
	}
	for (size_t i = 0; i < m->n_headers; i++)
		if (m->headers[i].regex && !regex_ok(m->headers[i].value)) {
			*why = rc_printf(c, "header %s: \"%s\" is not a valid regular expression",
					 m->headers[i].name, m->headers[i].value);
			return 1;
		}
	for (size_t i = 0; i < m->n_query; i++)
		if (m->query[i].regex && !regex_ok(m->query[i].value)) {
			*why = rc_printf(c,
					 "query parameter %s: \"%s\" is not a valid regular "
					 "expression",
					 m->query[i].name, m->query[i].value);
			return 1;
		}
	out->headers = rc_salloc(c, m->n_headers, sizeof(*out->headers));
	for (size_t i = 0; i < m->n_headers && out->headers; i++) {
		out->headers[i].type = m->headers[i].regex ? SNAP_SM_REGEX : SNAP_SM_EXACT;
		out->headers[i].name = rc_sdup(c, m->headers[i].name);
		out->headers[i].value = rc_sdup(c, m->headers[i].value);
	}
	out->n_headers = m->n_headers;
	out->query = rc_salloc(c, m->n_query, sizeof(*out->query));
	for (size_t i = 0; i < m->n_query && out->query; i++) {
		out->query[i].type = m->query[i].regex ? SNAP_SM_REGEX : SNAP_SM_EXACT;
		out->query[i].name = rc_sdup(c, m->query[i].name);
		out->query[i].value = rc_sdup(c, m->query[i].value);
	}
	out->n_query = m->n_query;
	return 0;
}

static uint32_t timeout_ms(struct rctx *c, struct croute *cr, struct crule *ru, yyjson_val *v,
			   const struct where *field)
{
	const char *s = yyjson_get_str(v);
	uint64_t ms;

	if (!v)
		return 0;
	if (!s || gw_duration_parse(s, &ms)) {
		rule_invalid(c, cr, ru, field,
			     rc_printf(c, "invalid duration \"%s\"", s ? s : "(not a string)"));
		return 0;
	}
	if (ms == 0)
		return UINT32_MAX; /* "0s" disables the timeout */
	return ms > UINT32_MAX - 1 ? UINT32_MAX - 1 : (uint32_t)ms;
}

static void compile_retry(struct rctx *c, struct croute *cr, struct crule *ru, yyjson_val *r,
			  const struct where *field)
{
	if (!r)
		return;
	yyjson_val *codes = yyjson_obj_get(r, "codes");
	size_t n = yyjson_arr_size(codes);
	ru->retry.codes = rc_salloc(c, n, sizeof(int));
	for (size_t i = 0; i < n && ru->retry.codes; i++) {
		yyjson_val *e = yyjson_arr_get(codes, i);
		if (yyjson_is_int(e))
			ru->retry.codes[ru->retry.n_codes++] = (int)yyjson_get_sint(e);
	}
	yyjson_val *at = yyjson_obj_get(r, "attempts");
	ru->retry.attempts = yyjson_is_int(at) ? (int)yyjson_get_sint(at) : 0;
	const char *bo = yyjson_get_str(yyjson_obj_get(r, "backoff"));
	if (bo) {
		uint64_t ms;
		if (gw_duration_parse(bo, &ms))
			rule_invalid(c, cr, ru, field, rc_printf(c, "invalid backoff \"%s\"", bo));
		else
			ru->retry.backoff_ms = ms > UINT32_MAX ? UINT32_MAX : (uint32_t)ms;
	}
}

static void compile_backends(struct rctx *c, struct croute *cr, const struct gw_rule *gr, bool http,
			     struct crule *ru, struct snap_backend **out, size_t *n)
{
	size_t cnt = 0;

	for (size_t i = 0; i < gr->n_backends; i++)
		cnt += gr->backends[i].weight > 0;
	*out = rc_salloc(c, cnt, sizeof(**out));
	*n = 0;
	for (size_t i = 0; i < gr->n_backends && *out; i++) {
		const struct gw_backend_ref *br = &gr->backends[i];
		struct snap_backend tmp = {0};
		struct snap_backend *b = br->weight > 0 ? &(*out)[(*n)++] : &tmp;
		struct where w = {(int)br->rule, (int)br->index, NULL};
		/* Weight 0 still resolves: its reference problems are reported. */
		resolve_backend(c, cr, &br->ref, br->weight, &w, http, b);
		if (http && br->filters && ru)
			b->filters = compile_filters(c, cr, ru, br->filters, &w, &b->n_filters);
	}
}

static void compile_route(struct rctx *c, struct croute *cr)
{
	bool http = cr->r.type == GW_RT_HTTP || cr->r.type == GW_RT_GRPC;

	cr->compiled = true;
	cr->refs_ok = true;
	cr->key = rc_cat(c, c->sa, cr->r.obj->ns, '/', cr->r.obj->name);
	if (!http) {
		size_t total = 0;
		for (size_t i = 0; i < cr->r.n_rules; i++)
			total += cr->r.rules[i].n_backends;
		cr->l4_backends = rc_salloc(c, total, sizeof(*cr->l4_backends));
		for (size_t i = 0; i < cr->r.n_rules && cr->l4_backends; i++) {
			struct snap_backend *v;
			size_t n;
			compile_backends(c, cr, &cr->r.rules[i], false, NULL, &v, &n);
			for (size_t j = 0; j < n; j++)
				cr->l4_backends[cr->n_l4_backends++] = v[j];
		}
		return;
	}
	cr->rules = rc_alloc(c, cr->r.n_rules, sizeof(*cr->rules));
	for (size_t i = 0; i < cr->r.n_rules && cr->rules; i++) {
		const struct gw_rule *gr = &cr->r.rules[i];
		struct crule *ru = &cr->rules[i];
		struct where w = {(int)i, -1, NULL};
		ru->name = rc_sdup(c, gr->name);
		ru->matches = rc_salloc(c, gr->n_matches, sizeof(*ru->matches));
		for (size_t j = 0; j < gr->n_matches && ru->matches; j++) {
			const char *why;
			if (compile_match(c, cr, &gr->matches[j], &ru->matches[ru->n_matches],
					  &why)) {
				struct where mw = {(int)i, -1, rc_printf(c, "matches[%zu]", j)};
				rule_invalid(c, cr, ru, &mw, why);
			} else {
				ru->n_matches++;
			}
		}
		ru->filters = compile_filters(c, cr, ru, gr->filters, &w, &ru->n_filters);
		compile_backends(c, cr, gr, true, ru, &ru->backends, &ru->n_backends);
		yyjson_val *to = gr->timeouts;
		struct where tw = {(int)i, -1, "timeouts.request"};
		ru->req_timeout_ms = timeout_ms(c, cr, ru, yyjson_obj_get(to, "request"), &tw);
		tw.leaf = "timeouts.backendRequest";
		ru->be_timeout_ms =
			timeout_ms(c, cr, ru, yyjson_obj_get(to, "backendRequest"), &tw);
		tw.leaf = "retry";
		compile_retry(c, cr, ru, gr->retry, &tw);
	}
}

/* -------- attachment -------- */

static bool kind_supported(const struct rlis *li, const char *kind)
{
	for (int i = 0; i < li->n_sk; i++)
		if (!strcmp(li->sk[i].kind, kind))
			return true;
	return false;
}

/* Hostnames of the route on this listener; returns false when none
 * intersect. Routes without hostnames take the listener's. */
static bool effective_hosts(struct rctx *c, const struct croute *cr, const struct rlis *li,
			    const char ***out, size_t *n)
{
	const char *lh = li->l->hostname;

	*n = 0;
	if (!cr->r.n_hostnames && cr->r.hostnames_set)
		return false; /* every hostname was invalid: it matches nothing, not everything */
	if (!cr->r.n_hostnames) {
		*out = rc_alloc(c, 1, sizeof(char *));
		if (!*out)
			return false;
		(*out)[0] = lh;
		*n = 1;
		return true;
	}
	*out = rc_alloc(c, cr->r.n_hostnames, sizeof(char *));
	for (size_t i = 0; i < cr->r.n_hostnames && *out; i++) {
		const char *h;
		if (gw_hostname_intersect(lh, cr->r.hostnames[i], &h)) {
			bool dup = false;
			for (size_t j = 0; j < *n; j++)
				dup |= !strcasecmp((*out)[j], h);
			if (!dup)
				(*out)[(*n)++] = h;
		}
	}
	return *n > 0;
}

/* Counts cr in li's attachedRoutes, remembering li for rc_route_detach. */
static int count(struct rctx *c, struct croute *cr, struct rlis *li)
{
	li->last = cr;
	li->attached++;
	return gw_vec_push(&cr->counted, c->a, li);
}

static int attach(struct rctx *c, struct croute *cr, struct rlis *li, const char **hosts, size_t nh)
{
	if (li->last == cr)
		return 0; /* two parentRefs selecting the same listener attach once */
	if (count(c, cr, li))
		return -ENOMEM;
	switch (cr->r.type) {
	case GW_RT_HTTP:
	case GW_RT_GRPC:
		for (size_t h = 0; h < nh; h++)
			for (uint32_t r = 0; r < cr->r.n_rules; r++) {
				size_t nm = cr->rules[r].n_matches;
				for (uint32_t m = 0; m < nm; m++) {
					struct pentry *e = rc_alloc(c, 1, sizeof(*e));
					if (!e || gw_vec_push(&li->http, c->a, e))
						return -ENOMEM;
					e->cr = cr;
					e->rule = r;
					e->match = m;
					e->host = hosts[h];
				}
			}
		break;
	case GW_RT_TLS: {
		struct tentry *e = rc_alloc(c, 1, sizeof(*e));
		if (!e || gw_vec_push(&li->tls, c->a, e))
			return -ENOMEM;
		e->cr = cr;
		e->hosts = hosts;
		e->n_hosts = nh;
		break;
	}
	case GW_RT_TCP:
	case GW_RT_UDP:
		if (gw_vec_push(&li->l4, c->a, cr))
			return -ENOMEM;
		break;
	default: break;
	}
	for (size_t i = 0; i < cr->policies.n; i++)
		rc_policy_ancestor(c, cr->policies.v[i], li->gw);
	return 0;
}

static int do_parent(struct rctx *c, struct croute *cr, size_t pi)
{
	const struct gw_ref *p = &cr->r.parents[pi];
	struct rparent *rp = &cr->parents[pi];
	struct rlis *lis = NULL;
	size_t n = 0;
	const char *owner_ns;

	if (strcmp(p->group, GW_GROUP) != 0)
		return 0;
	if (!strcmp(p->kind, "Gateway")) {
		struct rgw *g = gw_map_get(&c->gateways, rc_cat(c, c->a, p->ns, '/', p->name));
		if (!g)
			return 0;
		lis = g->lis;
		n = g->n_lis;
		owner_ns = g->g.obj->ns;
	} else if (!strcmp(p->kind, "ListenerSet")) {
		struct rls *s = gw_map_get(&c->listenersets, rc_cat(c, c->a, p->ns, '/', p->name));
		if (!s)
			return 0;
		lis = s->lis;
		n = s->n_lis;
		owner_ns = s->s.obj->ns;
	} else {
		return 0;
	}
	rp->ours = true;
	if (!cr->compiled)
		compile_route(c, cr);
	if (c->err)
		return c->err; /* a partly compiled route must not be attached */
	const char *kind = route_kind(cr);
	size_t matched = 0, allowed = 0, attached = 0;
	for (size_t i = 0; i < n; i++) {
		struct rlis *li = &lis[i];
		if (p->section && strcmp(li->l->name, p->section) != 0)
			continue;
		if (p->port_set && li->l->port != p->port)
			continue;
		matched++;
		if (!kind_supported(li, kind) ||
		    !rc_ns_allowed(c, li->l->from, &li->l->selector, owner_ns, cr->r.obj->ns))
			continue;
		const char **hosts = NULL;
		size_t nh = 0;
		bool ok = true;
		if (cr->r.type != GW_RT_TCP && cr->r.type != GW_RT_UDP)
			ok = effective_hosts(c, cr, li, &hosts, &nh);
		if (!li->accepted) {
			/* The spec counts routes on listeners that are not accepted
			 * (attachedRoutes), but nothing is served there and the
			 * route is not accepted through it. */
			if (ok && li->last != cr && count(c, cr, li))
				return -ENOMEM;
			continue;
		}
		allowed++;
		if (!ok)
			continue;
		attached++;
		if (attach(c, cr, li, hosts, nh))
			return -ENOMEM;
	}
	if (!matched) {
		gw_cond_set(&rp->conds, "Accepted", false, "NoMatchingParent",
			    p->section || p->port_set
				    ? rc_printf(c, "no listener matches sectionName %s port %d",
						p->section ? p->section : "(any)", p->port)
				    : "the parent has no listeners");
	} else if (attached) {
		gw_cond_set(&rp->conds, "Accepted", true, "Accepted", "attached");
	} else if (allowed) {
		gw_cond_set(&rp->conds, "Accepted", false, "NoMatchingListenerHostname",
			    "no listener hostname intersects the route's hostnames");
	} else {
		gw_cond_set(&rp->conds, "Accepted", false, "NotAllowedByListeners",
			    rc_printf(c, "no listener allows %s from namespace %s", kind,
				      cr->r.obj->ns));
	}
	if (attached && cr->n_invalid_rules && cr->n_invalid_rules == (int)cr->r.n_rules)
		gw_cond_set(&rp->conds, "Accepted", false, "UnsupportedValue", cr->invalid_msg);
	if (cr->refs_ok)
		gw_cond_set(&rp->conds, "ResolvedRefs", true, "ResolvedRefs",
			    "all references resolved");
	else
		gw_cond_set(&rp->conds, "ResolvedRefs", false, cr->ref_reason, cr->ref_msg);
	if (cr->n_invalid_rules && cr->n_invalid_rules < (int)cr->r.n_rules)
		gw_cond_set(&rp->conds, "PartiallyInvalid", true, "UnsupportedValue",
			    cr->invalid_msg);
	return 0;
}

static int cmp_route_age(const void *a, const void *b)
{
	const struct croute *x = *(const struct croute *const *)a;
	const struct croute *y = *(const struct croute *const *)b;
	return rc_age_cmp(x->r.obj, y->r.obj);
}

struct croute *rc_route_decode(struct rctx *c, const struct gw_object *o)
{
	struct croute *cr = rc_alloc(c, 1, sizeof(*cr));

	if (!cr)
		return NULL;
	int rc = gw_decode_route(c->a, o, &c->diag, &cr->r);
	if (rc) {
		if (rc == -ENOMEM)
			c->err = rc;
		return NULL;
	}
	cr->parents = rc_alloc(c, cr->r.n_parents, sizeof(*cr->parents));
	return cr->r.n_parents && !cr->parents ? NULL : cr;
}

int rc_route_attach(struct rctx *c, struct croute *cr)
{
	for (size_t p = 0; p < cr->r.n_parents; p++)
		if (do_parent(c, cr, p))
			return -ENOMEM;
	return c->err;
}

void rc_route_detach(struct croute *cr)
{
	for (size_t i = 0; i < cr->counted.n; i++) {
		struct rlis *li = cr->counted.v[i];
		size_t k = 0;
		li->attached--;
		if (li->last == cr)
			li->last = NULL;
		size_t sorted = li->n_sorted;
		for (size_t j = 0; j < li->http.n; j++) {
			if (((struct pentry *)li->http.v[j])->cr != cr)
				li->http.v[k++] = li->http.v[j];
			else if (j < li->n_sorted)
				sorted--;
		}
		li->http.n = k;
		li->n_sorted = sorted;
	}
	cr->counted.n = 0;
}

int rc_routes(struct rctx *c)
{
	static const enum gw_kind kinds[GW_RT_COUNT] = {
		GW_K_HTTPROUTE, GW_K_GRPCROUTE, GW_K_TLSROUTE, GW_K_TCPROUTE, GW_K_UDPROUTE};

	for (int t = 0; t < GW_RT_COUNT; t++) {
		size_t n;
		const struct gw_object *const *v = gw_objset_list(c->set, kinds[t], &n);
		c->routes[t] = rc_alloc(c, n, sizeof(struct croute *));
		c->listed[t] = rc_alloc(c, n, sizeof(struct croute *));
		c->n_listed[t] = n;
		for (size_t i = 0; i < n && c->routes[t] && c->listed[t]; i++) {
			struct croute *cr = rc_route_decode(c, v[i]);
			if (c->err)
				return c->err;
			c->listed[t][i] = cr;
			if (cr)
				c->routes[t][c->n_routes[t]++] = cr;
		}
		if (c->n_routes[t])
			qsort(c->routes[t], c->n_routes[t], sizeof(struct croute *), cmp_route_age);
		for (size_t i = 0; i < c->n_routes[t]; i++)
			if (rc_route_attach(c, c->routes[t][i]))
				return -ENOMEM;
		if (c->err)
			return c->err;
	}
	return c->err;
}
