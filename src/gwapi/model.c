/* SPDX-License-Identifier: MIT */
/*
 * model.c: decodes the objects' JSON into gwapi's typed model (internal.h):
 * Gateway, ListenerSet, the five route kinds, Service, EndpointSlice,
 * ReferenceGrant, BackendTLSPolicy, Namespace, and the data of Secrets and
 * ConfigMaps. Unknown fields are ignored; fields of the wrong type or with
 * values the CRDs forbid are reported to the diag (naming object and field)
 * and replaced by their default or left out. Defaults the CRDs declare are
 * filled in. It does not judge references (reconcile.c does).
 * Control thread only.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/str.h"
#include "gwapi/internal.h"

struct dctx {
	struct arena *a;
	struct diag *d;
	const struct gw_object *o;
	char objname[320]; /* formatted on the first problem only */
};

static void dctx_init(struct dctx *c, struct arena *a, struct diag *d, const struct gw_object *o)
{
	c->a = a;
	c->d = d;
	c->o = o;
	c->objname[0] = '\0';
}

static const char *objname(struct dctx *c)
{
	if (!c->objname[0])
		snprintf(c->objname, sizeof(c->objname), "%s %s%s%s",
			 gw_kind_info(c->o->kind)->kind, c->o->ns, *c->o->ns ? "/" : "",
			 c->o->name);
	return c->objname;
}

#define BAD(c, field, ...)                                                                         \
	diag_add((c)->d, DIAG_ERROR, (c)->o->file, objname(c), field, __VA_ARGS__)

static const char *jstr(yyjson_val *obj, const char *key)
{
	yyjson_val *v = yyjson_obj_get(obj, key);
	return yyjson_is_str(v) ? yyjson_get_str(v) : NULL;
}

/* Integer field; def when absent; reports non-integers. */
static int jint(struct dctx *c, yyjson_val *obj, const char *key, int def, const char *field)
{
	yyjson_val *v = yyjson_obj_get(obj, key);
	if (!v)
		return def;
	if (yyjson_is_int(v)) {
		int64_t x = yyjson_get_sint(v);
		if (x >= INT32_MIN && x <= INT32_MAX)
			return (int)x;
	}
	BAD(c, field, "%s must be an integer", key);
	return def;
}

static char *fieldf(struct dctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static char *fieldf(struct dctx *c, const char *fmt, ...)
{
	char buf[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	return arena_strdup(c->a, buf);
}

static void *alloc_n(struct dctx *c, size_t n, size_t size)
{
	return n ? arena_zalloc(c->a, n * size) : NULL;
}

static int decode_kvs(struct dctx *c, yyjson_val *obj, struct gw_kv **out, size_t *n)
{
	*out = NULL;
	*n = 0;
	if (!yyjson_is_obj(obj))
		return 0;
	size_t cnt = yyjson_obj_size(obj);
	struct gw_kv *v = alloc_n(c, cnt, sizeof(*v));
	if (cnt && !v)
		return -ENOMEM;
	yyjson_obj_iter it;
	yyjson_obj_iter_init(obj, &it);
	yyjson_val *k;
	size_t i = 0;
	while ((k = yyjson_obj_iter_next(&it))) {
		yyjson_val *val = yyjson_obj_iter_get_val(k);
		if (!yyjson_is_str(val))
			continue;
		v[i].key = yyjson_get_str(k);
		v[i].value = yyjson_get_str(val);
		i++;
	}
	*out = v;
	*n = i;
	return 0;
}

static int decode_selector(struct dctx *c, yyjson_val *sel, const char *field,
			   struct gw_selector *out)
{
	memset(out, 0, sizeof(*out));
	if (!sel)
		return 0;
	if (decode_kvs(c, yyjson_obj_get(sel, "matchLabels"), &out->labels, &out->n_labels))
		return -ENOMEM;
	yyjson_val *ex = yyjson_obj_get(sel, "matchExpressions");
	size_t n = yyjson_arr_size(ex);
	out->exprs = alloc_n(c, n, sizeof(*out->exprs));
	for (size_t i = 0; i < n; i++) {
		yyjson_val *e = yyjson_arr_get(ex, i);
		struct gw_sel_expr *x = &out->exprs[out->n_exprs];
		x->key = jstr(e, "key");
		x->op = jstr(e, "operator");
		if (!x->key || !x->op) {
			BAD(c, field, "matchExpressions[%zu] needs key and operator", i);
			continue;
		}
		yyjson_val *vals = yyjson_obj_get(e, "values");
		size_t nv = yyjson_arr_size(vals);
		x->values = alloc_n(c, nv, sizeof(char *));
		for (size_t j = 0; j < nv; j++) {
			const char *s = yyjson_get_str(yyjson_arr_get(vals, j));
			if (s)
				x->values[x->n_values++] = s;
		}
		out->n_exprs++;
	}
	return 0;
}

/* A reference with the given defaults; ns defaults to the object's own. */
static void decode_ref(struct dctx *c, yyjson_val *v, const char *def_group, const char *def_kind,
		       struct gw_ref *r)
{
	memset(r, 0, sizeof(*r));
	r->group = jstr(v, "group");
	if (!r->group)
		r->group = def_group;
	r->kind = jstr(v, "kind");
	if (!r->kind)
		r->kind = def_kind;
	r->ns = jstr(v, "namespace");
	r->ns_set = r->ns != NULL;
	if (!r->ns)
		r->ns = c->o->ns;
	r->name = jstr(v, "name");
	if (!r->name)
		r->name = "";
	r->section = jstr(v, "sectionName");
	yyjson_val *p = yyjson_obj_get(v, "port");
	if (yyjson_is_int(p)) {
		r->port = (int)yyjson_get_sint(p);
		r->port_set = true;
	}
}

static int decode_refs(struct dctx *c, yyjson_val *arr, const char *def_group, const char *def_kind,
		       struct gw_ref **out, size_t *n)
{
	size_t cnt = yyjson_arr_size(arr);
	*out = alloc_n(c, cnt, sizeof(**out));
	*n = cnt;
	if (cnt && !*out)
		return -ENOMEM;
	for (size_t i = 0; i < cnt; i++)
		decode_ref(c, yyjson_arr_get(arr, i), def_group, def_kind, &(*out)[i]);
	return 0;
}

static const struct {
	const char *name;
	enum gw_from from;
} froms[] = {{"Same", GW_FROM_SAME},
	     {"All", GW_FROM_ALL},
	     {"Selector", GW_FROM_SELECTOR},
	     {"None", GW_FROM_NONE}};

static enum gw_from decode_from(struct dctx *c, const char *s, enum gw_from def, const char *field)
{
	if (!s)
		return def;
	for (size_t i = 0; i < sizeof(froms) / sizeof(froms[0]); i++)
		if (!strcmp(froms[i].name, s))
			return froms[i].from;
	BAD(c, field, "unknown value \"%s\"", s);
	return def;
}

static int listener_decode(struct dctx *c, yyjson_val *v, const char *field, struct gw_listener *l)
{
	memset(l, 0, sizeof(*l));
	l->name = jstr(v, "name");
	if (!l->name) {
		BAD(c, field, "listener without a name");
		l->name = "";
	}
	l->hostname = jstr(v, "hostname");
	if (l->hostname && !*l->hostname)
		l->hostname = NULL;
	l->port = jint(c, v, "port", 0, field);
	l->protocol = jstr(v, "protocol");
	if (!l->protocol)
		l->protocol = "";
	yyjson_val *tls = yyjson_obj_get(v, "tls");
	if (yyjson_is_obj(tls)) {
		l->has_tls = true;
		l->tls_mode = jstr(tls, "mode");
		if (!l->tls_mode)
			l->tls_mode = "Terminate";
		if (decode_refs(c, yyjson_obj_get(tls, "certificateRefs"), "", "Secret",
				&l->cert_refs, &l->n_cert_refs))
			return -ENOMEM;
	} else {
		l->tls_mode = "Terminate";
	}
	yyjson_val *ar = yyjson_obj_get(v, "allowedRoutes");
	yyjson_val *nsv = yyjson_obj_get(ar, "namespaces");
	l->from = decode_from(c, jstr(nsv, "from"), GW_FROM_SAME, field);
	if (l->from == GW_FROM_NONE) {
		BAD(c, field,
		    "allowedRoutes.namespaces.from \"None\" is not allowed for listeners");
		l->from = GW_FROM_SAME;
	}
	if (decode_selector(c, yyjson_obj_get(nsv, "selector"), field, &l->selector))
		return -ENOMEM;
	yyjson_val *kinds = yyjson_obj_get(ar, "kinds");
	if (yyjson_is_arr(kinds)) {
		l->kinds_set = true;
		size_t n = yyjson_arr_size(kinds);
		l->kinds = alloc_n(c, n, sizeof(*l->kinds));
		for (size_t i = 0; i < n; i++) {
			yyjson_val *k = yyjson_arr_get(kinds, i);
			const char *g = jstr(k, "group");
			l->kinds[i].group = g ? g : GW_GROUP;
			l->kinds[i].kind = jstr(k, "kind");
			if (!l->kinds[i].kind)
				l->kinds[i].kind = "";
		}
		l->n_kinds = n;
	}
	return 0;
}

static int decode_listeners(struct dctx *c, yyjson_val *arr, struct gw_listener **out, size_t *n)
{
	size_t cnt = yyjson_arr_size(arr);
	*out = alloc_n(c, cnt, sizeof(**out));
	*n = cnt;
	if (cnt && !*out)
		return -ENOMEM;
	for (size_t i = 0; i < cnt; i++) {
		char *f = fieldf(c, "spec.listeners[%zu]", i);
		if (listener_decode(c, yyjson_arr_get(arr, i), f, &(*out)[i]))
			return -ENOMEM;
		(*out)[i].index = (int)i;
	}
	return 0;
}

static int decode_fe_validation(struct dctx *c, yyjson_val *v, struct gw_frontend_validation *out)
{
	yyjson_val *val = yyjson_obj_get(v, "validation");

	memset(out, 0, sizeof(*out));
	out->mode = jstr(val, "mode");
	if (!out->mode)
		out->mode = "AllowValidOnly";
	out->insecure_fallback = !strcmp(out->mode, "AllowInsecureFallback");
	return decode_refs(c, yyjson_obj_get(val, "caCertificateRefs"), "", "ConfigMap",
			   &out->ca_refs, &out->n_ca_refs);
}

int gw_decode_gateway(struct arena *a, const struct gw_object *o, struct diag *d,
		      struct gw_gateway *g)
{
	struct dctx c;
	yyjson_val *root = yyjson_doc_get_root(o->doc);
	yyjson_val *spec = yyjson_obj_get(root, "spec");

	dctx_init(&c, a, d, o);
	memset(g, 0, sizeof(*g));
	g->obj = o;
	g->status = yyjson_obj_get(root, "status");
	g->class_name = jstr(spec, "gatewayClassName");
	if (!g->class_name) {
		BAD(&c, "spec.gatewayClassName", "missing");
		return -EINVAL;
	}
	if (decode_listeners(&c, yyjson_obj_get(spec, "listeners"), &g->listeners, &g->n_listeners))
		return -ENOMEM;
	yyjson_val *addrs = yyjson_obj_get(spec, "addresses");
	size_t na = yyjson_arr_size(addrs);
	g->addresses = alloc_n(&c, na, sizeof(*g->addresses));
	for (size_t i = 0; i < na; i++) {
		yyjson_val *e = yyjson_arr_get(addrs, i);
		g->addresses[i].type = jstr(e, "type");
		if (!g->addresses[i].type)
			g->addresses[i].type = "IPAddress";
		g->addresses[i].value = jstr(e, "value");
	}
	g->n_addresses = na;
	yyjson_val *tls = yyjson_obj_get(spec, "tls");
	yyjson_val *fe = yyjson_obj_get(tls, "frontend");
	yyjson_val *def = yyjson_obj_get(fe, "default");
	if (def) {
		g->has_fe_default = true;
		if (decode_fe_validation(&c, def, &g->fe_default))
			return -ENOMEM;
	}
	yyjson_val *pp = yyjson_obj_get(fe, "perPort");
	size_t np = yyjson_arr_size(pp);
	g->fe_per_port = alloc_n(&c, np, sizeof(*g->fe_per_port));
	for (size_t i = 0; i < np; i++) {
		yyjson_val *e = yyjson_arr_get(pp, i);
		g->fe_per_port[i].port = jint(&c, e, "port", 0, "spec.tls.frontend.perPort");
		if (decode_fe_validation(&c, yyjson_obj_get(e, "tls"), &g->fe_per_port[i].v))
			return -ENOMEM;
	}
	g->n_fe_per_port = np;
	yyjson_val *cc = yyjson_obj_get(yyjson_obj_get(tls, "backend"), "clientCertificateRef");
	if (cc) {
		g->backend_client_cert = arena_zalloc(a, sizeof(struct gw_ref));
		if (!g->backend_client_cert)
			return -ENOMEM;
		decode_ref(&c, cc, "", "Secret", g->backend_client_cert);
	}
	yyjson_val *pr = yyjson_obj_get(yyjson_obj_get(spec, "infrastructure"), "parametersRef");
	if (pr) {
		g->params = arena_zalloc(a, sizeof(struct gw_ref));
		if (!g->params)
			return -ENOMEM;
		decode_ref(&c, pr, "", "", g->params);
	}
	yyjson_val *al = yyjson_obj_get(yyjson_obj_get(spec, "allowedListeners"), "namespaces");
	g->allowed_listeners = decode_from(&c, jstr(al, "from"), GW_FROM_NONE,
					   "spec.allowedListeners.namespaces.from");
	if (decode_selector(&c, yyjson_obj_get(al, "selector"),
			    "spec.allowedListeners.namespaces.selector", &g->allowed_listeners_sel))
		return -ENOMEM;
	return 0;
}

int gw_decode_listenerset(struct arena *a, const struct gw_object *o, struct diag *d,
			  struct gw_listenerset *ls)
{
	struct dctx c;
	yyjson_val *root = yyjson_doc_get_root(o->doc);
	yyjson_val *spec = yyjson_obj_get(root, "spec");

	dctx_init(&c, a, d, o);
	memset(ls, 0, sizeof(*ls));
	ls->obj = o;
	ls->status = yyjson_obj_get(root, "status");
	yyjson_val *pr = yyjson_obj_get(spec, "parentRef");
	if (!pr) {
		BAD(&c, "spec.parentRef", "missing");
		return -EINVAL;
	}
	decode_ref(&c, pr, GW_GROUP, "Gateway", &ls->parent);
	return decode_listeners(&c, yyjson_obj_get(spec, "listeners"), &ls->listeners,
				&ls->n_listeners);
}

static void decode_kv_matches(struct dctx *c, yyjson_val *arr, bool lower, struct gw_kv_match **out,
			      size_t *n, const char *field)
{
	size_t cnt = yyjson_arr_size(arr);
	*out = alloc_n(c, cnt, sizeof(**out));
	*n = 0;
	for (size_t i = 0; i < cnt && *out; i++) {
		yyjson_val *e = yyjson_arr_get(arr, i);
		struct gw_kv_match *m = &(*out)[*n];
		const char *type = jstr(e, "type");
		m->regex = type && !strcmp(type, "RegularExpression");
		if (type && !m->regex && strcmp(type, "Exact") != 0)
			BAD(c, field, "match type \"%s\" is not supported", type);
		m->name = jstr(e, "name");
		m->value = jstr(e, "value");
		if (!m->name || !m->value) {
			BAD(c, field, "match needs name and value");
			continue;
		}
		if (lower) {
			char *l = arena_strdup(c->a, m->name);
			for (char *p = l; p && *p; p++)
				*p = ascii_lower(*p);
			m->name = l;
		}
		(*n)++;
	}
}

static int decode_backend_refs(struct dctx *c, yyjson_val *arr, size_t rule,
			       struct gw_backend_ref **out, size_t *n)
{
	size_t cnt = yyjson_arr_size(arr);
	*out = alloc_n(c, cnt, sizeof(**out));
	*n = cnt;
	if (cnt && !*out)
		return -ENOMEM;
	for (size_t i = 0; i < cnt; i++) {
		yyjson_val *e = yyjson_arr_get(arr, i);
		struct gw_backend_ref *b = &(*out)[i];
		b->rule = (uint32_t)rule;
		b->index = (uint32_t)i;
		decode_ref(c, e, "", "Service", &b->ref);
		b->weight = jint(c, e, "weight", 1, "spec.rules[].backendRefs[].weight");
		if (b->weight < 0) {
			BAD(c, fieldf(c, "spec.rules[%zu].backendRefs[%zu].weight", rule, i),
			    "weight must not be negative");
			b->weight = 0;
		}
		b->filters = yyjson_obj_get(e, "filters");
	}
	return 0;
}

int gw_decode_route(struct arena *a, const struct gw_object *o, struct diag *d, struct gw_route *r)
{
	struct dctx c;
	yyjson_val *root = yyjson_doc_get_root(o->doc);
	yyjson_val *spec = yyjson_obj_get(root, "spec");

	dctx_init(&c, a, d, o);
	memset(r, 0, sizeof(*r));
	r->obj = o;
	r->status = yyjson_obj_get(root, "status");
	switch (o->kind) {
	case GW_K_HTTPROUTE: r->type = GW_RT_HTTP; break;
	case GW_K_GRPCROUTE: r->type = GW_RT_GRPC; break;
	case GW_K_TLSROUTE: r->type = GW_RT_TLS; break;
	case GW_K_TCPROUTE: r->type = GW_RT_TCP; break;
	case GW_K_UDPROUTE: r->type = GW_RT_UDP; break;
	default: return -EINVAL;
	}
	yyjson_val *hn = yyjson_obj_get(spec, "hostnames");
	size_t nh = yyjson_arr_size(hn);
	r->hostnames_set = nh > 0;
	r->hostnames = alloc_n(&c, nh, sizeof(char *));
	for (size_t i = 0; i < nh; i++) {
		const char *h = yyjson_get_str(yyjson_arr_get(hn, i));
		if (!h || !gw_hostname_is_valid(h, true)) {
			BAD(&c, "spec.hostnames", "invalid hostname \"%s\"", h ? h : "");
			continue;
		}
		r->hostnames[r->n_hostnames++] = h;
	}
	if (decode_refs(&c, yyjson_obj_get(spec, "parentRefs"), GW_GROUP, "Gateway", &r->parents,
			&r->n_parents))
		return -ENOMEM;
	yyjson_val *rules = yyjson_obj_get(spec, "rules");
	size_t nr = yyjson_arr_size(rules);
	bool http = r->type == GW_RT_HTTP || r->type == GW_RT_GRPC;
	if (nr == 0 && http)
		nr = 1; /* the CRD default: one rule matching everything */
	r->rules = alloc_n(&c, nr, sizeof(*r->rules));
	if (nr && !r->rules)
		return -ENOMEM;
	r->n_rules = nr;
	for (size_t i = 0; i < nr; i++) {
		yyjson_val *rv = yyjson_arr_get(rules, i);
		struct gw_rule *ru = &r->rules[i];
		const char *rf = "spec.rules[].matches";
		ru->name = jstr(rv, "name");
		ru->filters = yyjson_obj_get(rv, "filters");
		ru->timeouts = yyjson_obj_get(rv, "timeouts");
		ru->retry = yyjson_obj_get(rv, "retry");
		if (decode_backend_refs(&c, yyjson_obj_get(rv, "backendRefs"), i, &ru->backends,
					&ru->n_backends))
			return -ENOMEM;
		if (!http)
			continue;
		yyjson_val *ms = yyjson_obj_get(rv, "matches");
		size_t nm = yyjson_arr_size(ms);
		ru->matches = alloc_n(&c, nm ? nm : 1, sizeof(*ru->matches));
		if (!ru->matches)
			return -ENOMEM;
		ru->n_matches = nm ? nm : 1;
		for (size_t j = 0; j < ru->n_matches; j++) {
			yyjson_val *m = nm ? yyjson_arr_get(ms, j) : NULL;
			struct gw_http_match *hm = &ru->matches[j];
			hm->path_type = "PathPrefix";
			hm->path = "/";
			if (r->type == GW_RT_HTTP) {
				yyjson_val *p = yyjson_obj_get(m, "path");
				if (p) {
					const char *t = jstr(p, "type");
					const char *v = jstr(p, "value");
					if (t)
						hm->path_type = t;
					if (v)
						hm->path = v;
				}
				hm->method = jstr(m, "method");
				decode_kv_matches(&c, yyjson_obj_get(m, "queryParams"), false,
						  &hm->query, &hm->n_query, rf);
			} else {
				yyjson_val *mm = yyjson_obj_get(m, "method");
				if (mm) {
					const char *t = jstr(mm, "type");
					hm->grpc_regex = t && !strcmp(t, "RegularExpression");
					hm->grpc_service = jstr(mm, "service");
					hm->grpc_method = jstr(mm, "method");
				}
			}
			decode_kv_matches(&c, yyjson_obj_get(m, "headers"), true, &hm->headers,
					  &hm->n_headers, rf);
		}
	}
	return 0;
}

int gw_decode_service(struct arena *a, const struct gw_object *o, struct diag *d,
		      struct gw_service *s)
{
	struct dctx c;
	yyjson_val *spec = yyjson_obj_get(yyjson_doc_get_root(o->doc), "spec");

	dctx_init(&c, a, d, o);
	memset(s, 0, sizeof(*s));
	s->obj = o;
	s->type = jstr(spec, "type");
	if (!s->type)
		s->type = "ClusterIP";
	s->external_name = jstr(spec, "externalName");
	yyjson_val *ports = yyjson_obj_get(spec, "ports");
	size_t n = yyjson_arr_size(ports);
	s->ports = alloc_n(&c, n, sizeof(*s->ports));
	if (n && !s->ports)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		yyjson_val *p = yyjson_arr_get(ports, i);
		struct gw_service_port *sp = &s->ports[s->n_ports];
		sp->name = jstr(p, "name");
		if (!sp->name)
			sp->name = "";
		sp->port = jint(&c, p, "port", 0, "spec.ports");
		yyjson_val *tp = yyjson_obj_get(p, "targetPort");
		if (yyjson_is_str(tp))
			sp->target_port = yyjson_get_str(tp);
		else if (yyjson_is_int(tp))
			sp->target_port = fieldf(&c, "%lld", (long long)yyjson_get_sint(tp));
		sp->app_protocol = jstr(p, "appProtocol");
		sp->protocol = jstr(p, "protocol");
		if (!sp->protocol)
			sp->protocol = "TCP";
		if (sp->port <= 0 || sp->port > 65535) {
			BAD(&c, "spec.ports", "port %d out of range", sp->port);
			continue;
		}
		s->n_ports++;
	}
	return 0;
}

int gw_decode_endpointslice(struct arena *a, const struct gw_object *o, struct diag *d,
			    struct gw_endpointslice *s)
{
	struct dctx c;
	yyjson_val *root = yyjson_doc_get_root(o->doc);

	dctx_init(&c, a, d, o);
	memset(s, 0, sizeof(*s));
	s->obj = o;
	s->service = gw_object_label(o, "kubernetes.io/service-name");
	s->address_type = jstr(root, "addressType");
	if (!s->address_type)
		s->address_type = "IPv4";
	yyjson_val *ports = yyjson_obj_get(root, "ports");
	size_t n = yyjson_arr_size(ports);
	s->ports = alloc_n(&c, n, sizeof(*s->ports));
	for (size_t i = 0; i < n && s->ports; i++) {
		yyjson_val *p = yyjson_arr_get(ports, i);
		struct gw_slice_port *sp = &s->ports[s->n_ports];
		sp->name = jstr(p, "name");
		if (!sp->name)
			sp->name = "";
		sp->port = jint(&c, p, "port", 0, "ports");
		sp->app_protocol = jstr(p, "appProtocol");
		const char *proto = jstr(p, "protocol");
		if (proto && strcmp(proto, "TCP") != 0 && strcmp(proto, "UDP") != 0)
			continue; /* SCTP is not served */
		s->n_ports++;
	}
	yyjson_val *eps = yyjson_obj_get(root, "endpoints");
	n = yyjson_arr_size(eps);
	s->endpoints = alloc_n(&c, n, sizeof(*s->endpoints));
	for (size_t i = 0; i < n && s->endpoints; i++) {
		yyjson_val *e = yyjson_arr_get(eps, i);
		struct gw_slice_endpoint *ep = &s->endpoints[i];
		yyjson_val *ready = yyjson_obj_get(yyjson_obj_get(e, "conditions"), "ready");
		/* A missing ready condition means "unknown": consumers treat it as ready. */
		ep->ready = !ready || yyjson_is_true(ready);
		yyjson_val *ad = yyjson_obj_get(e, "addresses");
		size_t na = yyjson_arr_size(ad);
		ep->addresses = alloc_n(&c, na, sizeof(char *));
		for (size_t j = 0; j < na && ep->addresses; j++) {
			const char *s2 = yyjson_get_str(yyjson_arr_get(ad, j));
			if (s2)
				ep->addresses[ep->n_addresses++] = s2;
		}
		s->n_endpoints++;
	}
	return 0;
}

int gw_decode_refgrant(struct arena *a, const struct gw_object *o, struct diag *d,
		       struct gw_refgrant *g)
{
	struct dctx c;
	yyjson_val *spec = yyjson_obj_get(yyjson_doc_get_root(o->doc), "spec");

	dctx_init(&c, a, d, o);
	memset(g, 0, sizeof(*g));
	g->obj = o;
	yyjson_val *from = yyjson_obj_get(spec, "from");
	size_t n = yyjson_arr_size(from);
	g->from = alloc_n(&c, n, sizeof(*g->from));
	for (size_t i = 0; i < n && g->from; i++) {
		yyjson_val *e = yyjson_arr_get(from, i);
		struct gw_grant_from *f = &g->from[g->n_from];
		f->group = jstr(e, "group");
		f->kind = jstr(e, "kind");
		f->ns = jstr(e, "namespace");
		if (!f->group || !f->kind || !f->ns) {
			BAD(&c, "spec.from", "entry %zu needs group, kind and namespace", i);
			continue;
		}
		g->n_from++;
	}
	yyjson_val *to = yyjson_obj_get(spec, "to");
	n = yyjson_arr_size(to);
	g->to = alloc_n(&c, n, sizeof(*g->to));
	for (size_t i = 0; i < n && g->to; i++) {
		yyjson_val *e = yyjson_arr_get(to, i);
		struct gw_grant_to *t = &g->to[g->n_to];
		t->group = jstr(e, "group");
		t->kind = jstr(e, "kind");
		t->name = jstr(e, "name");
		if (t->name && !*t->name)
			t->name = NULL;
		if (!t->group || !t->kind) {
			BAD(&c, "spec.to", "entry %zu needs group and kind", i);
			continue;
		}
		g->n_to++;
	}
	return 0;
}

int gw_decode_btlspolicy(struct arena *a, const struct gw_object *o, struct diag *d,
			 struct gw_btlspolicy *p)
{
	struct dctx c;
	yyjson_val *root = yyjson_doc_get_root(o->doc);
	yyjson_val *spec = yyjson_obj_get(root, "spec");

	dctx_init(&c, a, d, o);
	memset(p, 0, sizeof(*p));
	p->obj = o;
	p->status = yyjson_obj_get(root, "status");
	if (decode_refs(&c, yyjson_obj_get(spec, "targetRefs"), "", "Service", &p->targets,
			&p->n_targets))
		return -ENOMEM;
	yyjson_val *val = yyjson_obj_get(spec, "validation");
	if (decode_refs(&c, yyjson_obj_get(val, "caCertificateRefs"), "", "ConfigMap", &p->ca_refs,
			&p->n_ca_refs))
		return -ENOMEM;
	p->well_known = jstr(val, "wellKnownCACertificates");
	p->hostname = jstr(val, "hostname");
	yyjson_val *sans = yyjson_obj_get(val, "subjectAltNames");
	size_t n = yyjson_arr_size(sans);
	p->sans = alloc_n(&c, n, sizeof(*p->sans));
	for (size_t i = 0; i < n && p->sans; i++) {
		yyjson_val *e = yyjson_arr_get(sans, i);
		struct gw_san *s = &p->sans[p->n_sans];
		s->type = jstr(e, "type");
		if (!s->type)
			continue;
		s->value = !strcmp(s->type, "URI") ? jstr(e, "uri") : jstr(e, "hostname");
		if (!s->value) {
			BAD(&c, "spec.validation.subjectAltNames", "entry %zu has no value", i);
			continue;
		}
		p->n_sans++;
	}
	return 0;
}

int gw_decode_namespace(struct arena *a, const struct gw_object *o, struct diag *d,
			struct gw_namespace *n)
{
	struct dctx c;
	yyjson_val *md = yyjson_obj_get(yyjson_doc_get_root(o->doc), "metadata");

	dctx_init(&c, a, d, o);
	n->obj = o;
	return decode_kvs(&c, yyjson_obj_get(md, "labels"), &n->labels, &n->n_labels);
}

const char *gw_object_label(const struct gw_object *o, const char *key)
{
	yyjson_val *md = yyjson_obj_get(yyjson_doc_get_root(o->doc), "metadata");
	return jstr(yyjson_obj_get(md, "labels"), key);
}

const char *gw_configmap_data(const struct gw_object *cm, const char *key)
{
	return jstr(yyjson_obj_get(yyjson_doc_get_root(cm->doc), "data"), key);
}

static int b64val(unsigned char ch)
{
	if (ch >= 'A' && ch <= 'Z')
		return ch - 'A';
	if (ch >= 'a' && ch <= 'z')
		return ch - 'a' + 26;
	if (ch >= '0' && ch <= '9')
		return ch - '0' + 52;
	if (ch == '+' || ch == '-')
		return 62;
	if (ch == '/' || ch == '_')
		return 63;
	return -1;
}

char *gw_secret_data(struct arena *a, const struct gw_object *secret, const char *key, size_t *len)
{
	const char *s = jstr(yyjson_obj_get(yyjson_doc_get_root(secret->doc), "data"), key);

	if (len)
		*len = 0;
	if (!s)
		return NULL;
	size_t n = strlen(s);
	char *out = arena_alloc(a, n / 4 * 3 + 4);
	if (!out)
		return NULL;
	size_t o = 0;
	uint32_t acc = 0;
	int bits = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (ch == '=')
			break;
		if (ch == '\n' || ch == '\r' || ch == ' ')
			continue;
		int v = b64val(ch);
		if (v < 0)
			return NULL;
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (char)((acc >> bits) & 0xff);
		}
	}
	out[o] = '\0';
	if (len)
		*len = o;
	return out;
}
