// SPDX-License-Identifier: MIT
/*
 * convert.c: `waygate convert`: rewrites networking.x-k8s.io/v1alpha1
 * manifests (the API before it became gateway.networking.k8s.io) as
 * gateway.networking.k8s.io/v1 ones. GatewayClass spec.controller becomes
 * controllerName; Gateway listeners get names and allowedRoutes (their
 * routes.kind and routes.namespaces), tls.certificateRef becomes
 * certificateRefs; HTTPRoute forwardTo becomes backendRefs, matches and
 * filters take their v1 shapes (header maps become name/value lists), and
 * parentRefs are derived from the Gateways in the same input whose
 * listeners' routes.selector selects the route's labels, as far as the
 * route's gateways.allow permits. TCPRoute/UDPRoute become v1alpha2, TLSRoute
 * v1. Objects of other API groups pass through unchanged. The YAML is
 * written in block style by a small emitter here (libyaml's emitter adds
 * nothing needed). Runs in the `convert` command only.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <yyjson.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/diag.h"
#include "core/err.h"
#include "kube/internal.h"
#include "kube/kube.h"

#define OLD_API "networking.x-k8s.io/v1alpha1"
#define NEW_GROUP "gateway.networking.k8s.io"

struct cdoc {
	const struct ynode *y;
	yyjson_doc *doc;
	yyjson_val *root;
	const char *kind;
	bool old;
};

struct conv {
	const char *file;
	struct diag *d;
	struct cdoc *docs;
	size_t n;
	int errors;
	yyjson_mut_doc *m; /* of the object being converted */
	const struct cdoc *cur;
	char object[300];
};

static const struct ynode *yfind(const struct ynode *y, const char *path)
{
	/* path: "spec.rules" — maps only; returns the deepest node found */
	char seg[64];
	const struct ynode *best = y;

	while (y && *path) {
		const char *dot = strchr(path, '.');
		size_t l = dot ? (size_t)(dot - path) : strlen(path);

		if (l >= sizeof(seg))
			break;
		memcpy(seg, path, l);
		seg[l] = 0;
		y = kyaml_get(y, seg);
		if (y)
			best = y;
		path += l + (dot ? 1 : 0);
	}
	return best;
}

/* A diagnostic about field of the object being converted, with the line
 * the field (or the object) stands on. */
static void cdiag(struct conv *c, enum diag_sev sev, const char *field, const char *fmt,
		  va_list ap)
{
	char msg[400];
	const struct ynode *at = c->cur ? yfind(c->cur->y, field ? field : "") : NULL;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	diag_add(c->d, sev, c->file, c->object, field, "line %u: %s", at ? at->line : 0, msg);
}

static void cerr(struct conv *c, const char *field, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void cerr(struct conv *c, const char *field, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	cdiag(c, DIAG_ERROR, field, fmt, ap);
	va_end(ap);
	c->errors++;
}

static void cwarn(struct conv *c, const char *field, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void cwarn(struct conv *c, const char *field, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	cdiag(c, DIAG_WARN, field, fmt, ap);
	va_end(ap);
}

/* ---- YAML emitter ---- */

static bool plain_ok(const char *s, size_t n)
{
	static const char *const words[] = {"true", "false", "yes", "no",   "on",    "off",  "y",
					    "n",    "null",  "~",   ".inf", "-.inf", ".nan", NULL};
	char *end;

	if (!n || strlen(s) != n)
		return false;
	for (size_t i = 0; words[i]; i++)
		if (!strcasecmp(s, words[i]))
			return false;
	if (strchr("-?:,[]{}#&*!|>'\"%@` \t", s[0]) &&
	    !(s[0] == '-' && n > 1 && s[1] != ' ' && !(s[1] >= '0' && s[1] <= '9') && s[1] != '.'))
		return false;
	if (s[n - 1] == ' ' || s[n - 1] == ':')
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (ch < 0x20 || ch == 0x7f)
			return false;
		if ((ch == ':' && (s[i + 1] == ' ' || !s[i + 1])) ||
		    (ch == '#' && i && s[i - 1] == ' '))
			return false;
	}
	strtod(s, &end);
	if (*end == 0)
		return false; /* would read as a number */
	if ((s[0] >= '0' && s[0] <= '9') && (strchr(s, 'x') || strchr(s, 'o') || strchr(s, '_')))
		return false;
	return true;
}

static void emit_str(FILE *out, const char *s, size_t n)
{
	struct buf b = {0};

	if (plain_ok(s, n)) {
		fwrite(s, 1, n, out);
		return;
	}
	if (kjson_append_str(&b, s, n) == 0)
		fwrite(buf_rptr(&b), 1, buf_len(&b), out);
	buf_release(&b);
}

static void emit_scalar(FILE *out, yyjson_mut_val *v)
{
	if (yyjson_mut_is_str(v)) {
		emit_str(out, yyjson_mut_get_str(v), yyjson_mut_get_len(v));
	} else {
		char *s = yyjson_mut_val_write(v, 0, NULL);

		fputs(s ? s : "null", out);
		free(s);
	}
}

static bool is_container(yyjson_mut_val *v)
{
	return (yyjson_mut_is_obj(v) && yyjson_mut_obj_size(v)) ||
	       (yyjson_mut_is_arr(v) && yyjson_mut_arr_size(v));
}

static void emit_node(FILE *out, yyjson_mut_val *v, int indent, bool inline_first);

static void emit_value_after_key(FILE *out, yyjson_mut_val *v, int indent)
{
	if (yyjson_mut_is_obj(v) && !yyjson_mut_obj_size(v)) {
		fputs(" {}\n", out);
	} else if (yyjson_mut_is_arr(v) && !yyjson_mut_arr_size(v)) {
		fputs(" []\n", out);
	} else if (is_container(v)) {
		fputc('\n', out);
		emit_node(out, v, yyjson_mut_is_arr(v) ? indent : indent + 2, false);
	} else {
		fputc(' ', out);
		emit_scalar(out, v);
		fputc('\n', out);
	}
}

/* Writes a container at indent; with inline_first the first line continues
 * the current one (after "- "). */
static void emit_node(FILE *out, yyjson_mut_val *v, int indent, bool inline_first)
{
	yyjson_mut_val *k, *e;
	size_t idx, max;
	bool first = true;

	if (yyjson_mut_is_obj(v)) {
		yyjson_mut_obj_iter it;

		yyjson_mut_obj_iter_init(v, &it);
		while ((k = yyjson_mut_obj_iter_next(&it))) {
			if (!(first && inline_first))
				fprintf(out, "%*s", indent, "");
			first = false;
			emit_str(out, yyjson_mut_get_str(k), yyjson_mut_get_len(k));
			fputc(':', out);
			emit_value_after_key(out, yyjson_mut_obj_iter_get_val(k), indent);
		}
		return;
	}
	yyjson_mut_arr_foreach(v, idx, max, e)
	{
		if (!(first && inline_first))
			fprintf(out, "%*s", indent, "");
		first = false;
		fputs("- ", out);
		if (is_container(e) && yyjson_mut_is_obj(e)) {
			emit_node(out, e, indent + 2, true);
		} else if (is_container(e)) {
			fputc('\n', out);
			emit_node(out, e, indent + 2, false);
		} else if (yyjson_mut_is_obj(e)) {
			fputs("{}\n", out);
		} else if (yyjson_mut_is_arr(e)) {
			fputs("[]\n", out);
		} else {
			emit_scalar(out, e);
			fputc('\n', out);
		}
	}
}

/* ---- helpers ---- */

static yyjson_mut_val *mcopy(struct conv *c, yyjson_val *v)
{
	return yyjson_val_mut_copy(c->m, v);
}

static void madd(struct conv *c, yyjson_mut_val *obj, const char *key, yyjson_mut_val *v)
{
	if (v)
		yyjson_mut_obj_add(obj, yyjson_mut_strcpy(c->m, key), v);
}

static void madd_copy(struct conv *c, yyjson_mut_val *obj, const char *key, yyjson_val *v)
{
	if (v && !yyjson_is_null(v))
		madd(c, obj, key, mcopy(c, v));
}

static const char *sget(yyjson_val *o, const char *k)
{
	return yyjson_get_str(yyjson_obj_get(o, k));
}

/* v1alpha1 {name: value} maps to v1 [{name, value}] lists. */
static yyjson_mut_val *map_to_list(struct conv *c, yyjson_val *map, const char *type)
{
	yyjson_mut_val *arr = yyjson_mut_arr(c->m);
	yyjson_obj_iter it;
	yyjson_val *k;

	yyjson_obj_iter_init(map, &it);
	while ((k = yyjson_obj_iter_next(&it))) {
		yyjson_mut_val *e = yyjson_mut_obj(c->m);

		if (type)
			yyjson_mut_obj_add_strcpy(c->m, e, "type", type);
		madd(c, e, "name", mcopy(c, k));
		madd(c, e, "value", mcopy(c, yyjson_obj_iter_get_val(k)));
		yyjson_mut_arr_append(arr, e);
	}
	return arr;
}

static yyjson_mut_val *conv_metadata(struct conv *c, yyjson_val *md)
{
	yyjson_mut_val *out = yyjson_mut_obj(c->m);
	static const char *const keep[] = {"name", "namespace", "labels", "annotations", NULL};

	for (size_t i = 0; keep[i]; i++)
		madd_copy(c, out, keep[i], yyjson_obj_get(md, keep[i]));
	return out;
}

static yyjson_mut_val *new_object(struct conv *c, const char *api, const char *kind,
				  yyjson_mut_val **spec)
{
	yyjson_mut_val *o = yyjson_mut_obj(c->m);

	yyjson_mut_obj_add_strcpy(c->m, o, "apiVersion", api);
	yyjson_mut_obj_add_strcpy(c->m, o, "kind", kind);
	madd(c, o, "metadata", conv_metadata(c, yyjson_obj_get(c->cur->root, "metadata")));
	*spec = yyjson_mut_obj(c->m);
	madd(c, o, "spec", *spec);
	return o;
}

static const char *obj_ns(yyjson_val *root)
{
	const char *ns = sget(yyjson_obj_get(root, "metadata"), "namespace");

	return ns && *ns ? ns : "default";
}

/* ---- label selectors ---- */

static bool sel_matches(yyjson_val *sel, yyjson_val *labels)
{
	yyjson_obj_iter it;
	yyjson_val *k, *e;
	size_t idx, max;

	if (!sel || yyjson_is_null(sel))
		return true;
	yyjson_obj_iter_init(yyjson_obj_get(sel, "matchLabels"), &it);
	while ((k = yyjson_obj_iter_next(&it))) {
		const char *want = yyjson_get_str(yyjson_obj_iter_get_val(k));
		const char *have = sget(labels, yyjson_get_str(k));

		if (!want || !have || strcmp(want, have))
			return false;
	}
	yyjson_arr_foreach(yyjson_obj_get(sel, "matchExpressions"), idx, max, e)
	{
		const char *key = sget(e, "key"), *op = sget(e, "operator");
		const char *have = key ? sget(labels, key) : NULL;
		bool in = false;
		size_t i2, m2;
		yyjson_val *v;

		if (!key || !op)
			return false;
		yyjson_arr_foreach(yyjson_obj_get(e, "values"), i2, m2,
				   v) if (have && yyjson_get_str(v) &&
					  !strcmp(have, yyjson_get_str(v))) in = true;
		if ((!strcmp(op, "In") && !in) || (!strcmp(op, "NotIn") && in) ||
		    (!strcmp(op, "Exists") && !have) || (!strcmp(op, "DoesNotExist") && have))
			return false;
	}
	return true;
}

static yyjson_val *namespace_labels(struct conv *c, const char *ns)
{
	for (size_t i = 0; i < c->n; i++) {
		const struct cdoc *d = &c->docs[i];

		if (d->kind && !strcmp(d->kind, "Namespace")) {
			yyjson_val *md = yyjson_obj_get(d->root, "metadata");
			const char *name = sget(md, "name");

			if (name && !strcmp(name, ns))
				return yyjson_obj_get(md, "labels");
		}
	}
	return NULL;
}

/* ---- GatewayClass ---- */

static yyjson_mut_val *conv_gatewayclass(struct conv *c)
{
	yyjson_val *spec = yyjson_obj_get(c->cur->root, "spec");
	yyjson_mut_val *ns, *o = new_object(c, NEW_GROUP "/v1", "GatewayClass", &ns);
	const char *ctl = sget(spec, "controller");

	if (!ctl)
		ctl = sget(spec, "controllerName");
	if (!ctl || !*ctl)
		cerr(c, "spec.controller", "is required");
	else
		yyjson_mut_obj_add_strcpy(c->m, ns, "controllerName", ctl);
	madd_copy(c, ns, "parametersRef", yyjson_obj_get(spec, "parametersRef"));
	madd_copy(c, ns, "description", yyjson_obj_get(spec, "description"));
	return o;
}

/* ---- Gateway ---- */

static void listener_base(yyjson_val *l, char *b, size_t bsz)
{
	const char *proto = sget(l, "protocol");

	snprintf(b, bsz, "%s-%lld", proto ? proto : "listener",
		 (long long)yyjson_get_int(yyjson_obj_get(l, "port")));
	for (size_t j = 0; b[j]; j++)
		b[j] = (b[j] >= 'A' && b[j] <= 'Z') ? (char)(b[j] + 32) : b[j];
}

/* v1 listeners need a name: "<protocol>-<port>", "-2", "-3"... on repeats. */
static void listener_name(yyjson_val *gw, size_t li, char *out, size_t outsz)
{
	yyjson_val *ls = yyjson_obj_get(yyjson_obj_get(gw, "spec"), "listeners");
	char base[64], b[64];
	int dup = 0;

	listener_base(yyjson_arr_get(ls, li), base, sizeof(base));
	for (size_t i = 0; i < li; i++) {
		listener_base(yyjson_arr_get(ls, i), b, sizeof(b));
		if (!strcmp(b, base))
			dup++;
	}
	if (dup)
		snprintf(out, outsz, "%s-%d", base, dup + 1);
	else
		snprintf(out, outsz, "%s", base);
}

static const char *route_group(const char *g)
{
	return !g || !*g || !strcmp(g, "networking.x-k8s.io") ? NEW_GROUP : g;
}

static yyjson_mut_val *conv_gateway(struct conv *c)
{
	yyjson_val *spec = yyjson_obj_get(c->cur->root, "spec"), *l, *ls;
	yyjson_mut_val *ns, *o = new_object(c, NEW_GROUP "/v1", "Gateway", &ns), *mls;
	size_t idx, max;

	madd_copy(c, ns, "gatewayClassName", yyjson_obj_get(spec, "gatewayClassName"));
	if (!sget(spec, "gatewayClassName"))
		cerr(c, "spec.gatewayClassName", "is required");
	ls = yyjson_obj_get(spec, "listeners");
	if (!yyjson_arr_size(ls))
		cerr(c, "spec.listeners", "at least one listener is required");
	mls = yyjson_mut_arr(c->m);
	yyjson_arr_foreach(ls, idx, max, l)
	{
		yyjson_mut_val *ml = yyjson_mut_obj(c->m), *ar, *tls;
		yyjson_val *routes = yyjson_obj_get(l, "routes"), *t;
		char name[80], field[80];

		listener_name(c->cur->root, idx, name, sizeof(name));
		yyjson_mut_obj_add_strcpy(c->m, ml, "name", name);
		madd_copy(c, ml, "hostname", yyjson_obj_get(l, "hostname"));
		madd_copy(c, ml, "port", yyjson_obj_get(l, "port"));
		madd_copy(c, ml, "protocol", yyjson_obj_get(l, "protocol"));
		snprintf(field, sizeof(field), "spec.listeners");
		if (!yyjson_obj_get(l, "port") || !sget(l, "protocol"))
			cerr(c, field, "listener %zu needs protocol and port", idx);
		t = yyjson_obj_get(l, "tls");
		if (t) {
			yyjson_val *cr = yyjson_obj_get(t, "certificateRef");

			tls = yyjson_mut_obj(c->m);
			madd_copy(c, tls, "mode", yyjson_obj_get(t, "mode"));
			if (cr) {
				yyjson_mut_val *refs = yyjson_mut_arr(c->m),
					       *r = yyjson_mut_obj(c->m);
				const char *g = sget(cr, "group");

				yyjson_mut_obj_add_strcpy(c->m, r, "group",
							  !g || !strcmp(g, "core") ? "" : g);
				yyjson_mut_obj_add_strcpy(c->m, r, "kind",
							  sget(cr, "kind") ? sget(cr, "kind")
									   : "Secret");
				madd_copy(c, r, "name", yyjson_obj_get(cr, "name"));
				madd_copy(c, r, "namespace", yyjson_obj_get(cr, "namespace"));
				yyjson_mut_arr_append(refs, r);
				madd(c, tls, "certificateRefs", refs);
			} else {
				madd_copy(c, tls, "certificateRefs",
					  yyjson_obj_get(t, "certificateRefs"));
			}
			madd_copy(c, tls, "options", yyjson_obj_get(t, "options"));
			if (yyjson_obj_get(t, "routeOverride"))
				cwarn(c, "spec.listeners",
				      "listener %s: tls.routeOverride has no v1 equivalent; "
				      "dropped",
				      name);
			madd(c, ml, "tls", tls);
		}
		ar = yyjson_mut_obj(c->m);
		if (routes) {
			const char *kind = sget(routes, "kind");

			madd_copy(c, ar, "namespaces", yyjson_obj_get(routes, "namespaces"));
			if (kind) {
				yyjson_mut_val *kinds = yyjson_mut_arr(c->m),
					       *k = yyjson_mut_obj(c->m);

				yyjson_mut_obj_add_strcpy(c->m, k, "group",
							  route_group(sget(routes, "group")));
				yyjson_mut_obj_add_strcpy(c->m, k, "kind", kind);
				yyjson_mut_arr_append(kinds, k);
				madd(c, ar, "kinds", kinds);
			}
		}
		if (yyjson_mut_obj_size(ar))
			madd(c, ml, "allowedRoutes", ar);
		yyjson_mut_arr_append(mls, ml);
	}
	madd(c, ns, "listeners", mls);
	madd_copy(c, ns, "addresses", yyjson_obj_get(spec, "addresses"));
	return o;
}

/* ---- routes ---- */

static bool gateway_allows(struct conv *c, yyjson_val *route, const char *gns, const char *gname)
{
	yyjson_val *g = yyjson_obj_get(yyjson_obj_get(route, "spec"), "gateways"), *ref;
	const char *allow = sget(g, "allow");
	const char *rns = obj_ns(route);
	size_t idx, max;

	(void)c;
	if (!allow || !strcmp(allow, "SameNamespace"))
		return !strcmp(gns, rns);
	if (!strcmp(allow, "All"))
		return true;
	if (!strcmp(allow, "FromList")) {
		yyjson_arr_foreach(yyjson_obj_get(g, "gatewayRefs"), idx, max, ref)
		{
			const char *n = sget(ref, "name"), *ns = sget(ref, "namespace");

			if (n && !strcmp(n, gname) && ns && !strcmp(ns, gns))
				return true;
		}
	}
	return false;
}

static bool listener_selects(struct conv *c, yyjson_val *l, const char *gns, yyjson_val *route,
			     const char *rkind)
{
	yyjson_val *routes = yyjson_obj_get(l, "routes");
	yyjson_val *nsp = yyjson_obj_get(routes, "namespaces");
	const char *kind = sget(routes, "kind"), *from = sget(nsp, "from");
	const char *rns = obj_ns(route);
	yyjson_val *labels = yyjson_obj_get(yyjson_obj_get(route, "metadata"), "labels");

	if (!routes || (kind && strcmp(kind, rkind)))
		return false;
	if (!sel_matches(yyjson_obj_get(routes, "selector"), labels))
		return false;
	if (!from || !strcmp(from, "Same"))
		return !strcmp(rns, gns);
	if (!strcmp(from, "All"))
		return true;
	if (!strcmp(from, "Selector"))
		return sel_matches(yyjson_obj_get(nsp, "selector"), namespace_labels(c, rns));
	return false;
}

static yyjson_mut_val *derive_parents(struct conv *c, const char *rkind)
{
	yyjson_val *route = c->cur->root;
	const char *rns = obj_ns(route);
	yyjson_mut_val *prs = yyjson_mut_arr(c->m);

	for (size_t i = 0; i < c->n; i++) {
		const struct cdoc *g = &c->docs[i];
		yyjson_val *ls, *l;
		const char *gname, *gns;
		size_t idx, max, nmatch = 0, nls;
		bool match[256] = {0};

		if (!g->old || !g->kind || strcmp(g->kind, "Gateway"))
			continue;
		gname = sget(yyjson_obj_get(g->root, "metadata"), "name");
		gns = obj_ns(g->root);
		if (!gname || !gateway_allows(c, route, gns, gname))
			continue;
		ls = yyjson_obj_get(yyjson_obj_get(g->root, "spec"), "listeners");
		nls = yyjson_arr_size(ls);
		yyjson_arr_foreach(ls, idx, max, l)
		{
			if (idx < 256 && listener_selects(c, l, gns, route, rkind)) {
				match[idx] = true;
				nmatch++;
			}
		}
		if (!nmatch)
			continue;
		for (size_t li = 0; li < nls && li < 256; li++) {
			yyjson_mut_val *pr;
			char sname[80];

			if (!match[li])
				continue;
			pr = yyjson_mut_obj(c->m);
			yyjson_mut_obj_add_strcpy(c->m, pr, "name", gname);
			if (strcmp(gns, rns))
				yyjson_mut_obj_add_strcpy(c->m, pr, "namespace", gns);
			if (nmatch != nls) {
				listener_name(g->root, li, sname, sizeof(sname));
				yyjson_mut_obj_add_strcpy(c->m, pr, "sectionName", sname);
			}
			yyjson_mut_arr_append(prs, pr);
			if (nmatch == nls)
				break;
		}
	}
	if (!yyjson_mut_arr_size(prs))
		cwarn(c, "metadata.labels",
		      "no Gateway in this input selects this route (listeners[].routes); "
		      "add spec.parentRefs by hand");
	return prs;
}

static yyjson_mut_val *conv_filter(struct conv *c, yyjson_val *f, const char *field)
{
	const char *type = sget(f, "type");
	yyjson_mut_val *o = yyjson_mut_obj(c->m);

	if (!type) {
		cerr(c, field, "a filter needs a type");
		return o;
	}
	yyjson_mut_obj_add_strcpy(c->m, o, "type", type);
	if (!strcmp(type, "RequestHeaderModifier")) {
		yyjson_val *h = yyjson_obj_get(f, "requestHeaderModifier");
		yyjson_mut_val *mh = yyjson_mut_obj(c->m);

		if (yyjson_is_obj(yyjson_obj_get(h, "set")))
			madd(c, mh, "set", map_to_list(c, yyjson_obj_get(h, "set"), NULL));
		else
			madd_copy(c, mh, "set", yyjson_obj_get(h, "set"));
		if (yyjson_is_obj(yyjson_obj_get(h, "add")))
			madd(c, mh, "add", map_to_list(c, yyjson_obj_get(h, "add"), NULL));
		else
			madd_copy(c, mh, "add", yyjson_obj_get(h, "add"));
		madd_copy(c, mh, "remove", yyjson_obj_get(h, "remove"));
		madd(c, o, "requestHeaderModifier", mh);
	} else if (!strcmp(type, "RequestRedirect")) {
		yyjson_val *r = yyjson_obj_get(f, "requestRedirect");
		yyjson_mut_val *mr = yyjson_mut_obj(c->m);
		const char *proto = sget(r, "protocol");

		if (proto) {
			char lower[16];
			size_t i;

			for (i = 0; proto[i] && i < sizeof(lower) - 1; i++)
				lower[i] = (proto[i] >= 'A' && proto[i] <= 'Z')
						   ? (char)(proto[i] + 32)
						   : proto[i];
			lower[i] = 0;
			yyjson_mut_obj_add_strcpy(c->m, mr, "scheme", lower);
		}
		madd_copy(c, mr, "hostname", yyjson_obj_get(r, "hostname"));
		madd_copy(c, mr, "port", yyjson_obj_get(r, "port"));
		madd_copy(c, mr, "statusCode", yyjson_obj_get(r, "statusCode"));
		madd(c, o, "requestRedirect", mr);
	} else if (!strcmp(type, "RequestMirror")) {
		yyjson_val *r = yyjson_obj_get(f, "requestMirror");
		yyjson_mut_val *mr = yyjson_mut_obj(c->m), *br = yyjson_mut_obj(c->m);
		yyjson_val *obr = yyjson_obj_get(r, "backendRef");

		if (sget(r, "serviceName"))
			madd_copy(c, br, "name", yyjson_obj_get(r, "serviceName"));
		else if (obr) {
			madd_copy(c, br, "group", yyjson_obj_get(obr, "group"));
			madd_copy(c, br, "kind", yyjson_obj_get(obr, "kind"));
			madd_copy(c, br, "name", yyjson_obj_get(obr, "name"));
		} else {
			cerr(c, field, "requestMirror needs serviceName or backendRef");
		}
		madd_copy(c, br, "port", yyjson_obj_get(r, "port"));
		madd(c, mr, "backendRef", br);
		madd(c, o, "requestMirror", mr);
	} else if (!strcmp(type, "ExtensionRef")) {
		madd_copy(c, o, "extensionRef", yyjson_obj_get(f, "extensionRef"));
	} else {
		cerr(c, field, "filter type %s has no v1 equivalent", type);
	}
	return o;
}

static yyjson_mut_val *conv_filters(struct conv *c, yyjson_val *fs, const char *field)
{
	yyjson_mut_val *arr = yyjson_mut_arr(c->m);
	yyjson_val *f;
	size_t idx, max;

	yyjson_arr_foreach(fs, idx, max, f) yyjson_mut_arr_append(arr, conv_filter(c, f, field));
	return arr;
}

static yyjson_mut_val *conv_forward(struct conv *c, yyjson_val *fwd, bool http)
{
	yyjson_mut_val *arr = yyjson_mut_arr(c->m);
	yyjson_val *f;
	size_t idx, max;

	yyjson_arr_foreach(fwd, idx, max, f)
	{
		yyjson_mut_val *b = yyjson_mut_obj(c->m);
		yyjson_val *br = yyjson_obj_get(f, "backendRef");

		if (sget(f, "serviceName")) {
			madd_copy(c, b, "name", yyjson_obj_get(f, "serviceName"));
		} else if (br) {
			madd_copy(c, b, "group", yyjson_obj_get(br, "group"));
			madd_copy(c, b, "kind", yyjson_obj_get(br, "kind"));
			madd_copy(c, b, "name", yyjson_obj_get(br, "name"));
		} else {
			cerr(c, "spec.rules", "forwardTo[%zu] needs serviceName or backendRef",
			     idx);
		}
		madd_copy(c, b, "port", yyjson_obj_get(f, "port"));
		if (!yyjson_obj_get(f, "port") && sget(f, "serviceName"))
			cerr(c, "spec.rules", "forwardTo[%zu] (service %s) needs a port", idx,
			     sget(f, "serviceName"));
		madd_copy(c, b, "weight", yyjson_obj_get(f, "weight"));
		if (http && yyjson_arr_size(yyjson_obj_get(f, "filters")))
			madd(c, b, "filters",
			     conv_filters(c, yyjson_obj_get(f, "filters"), "spec.rules"));
		yyjson_mut_arr_append(arr, b);
	}
	return arr;
}

static yyjson_mut_val *conv_match(struct conv *c, yyjson_val *mt)
{
	yyjson_mut_val *o = yyjson_mut_obj(c->m);
	yyjson_val *p = yyjson_obj_get(mt, "path"), *h = yyjson_obj_get(mt, "headers");
	yyjson_val *q = yyjson_obj_get(mt, "queryParams");

	if (p) {
		yyjson_mut_val *mp = yyjson_mut_obj(c->m);
		const char *t = sget(p, "type");

		if (!t || !strcmp(t, "Prefix"))
			t = "PathPrefix";
		else if (strcmp(t, "Exact") && strcmp(t, "RegularExpression") &&
			 strcmp(t, "PathPrefix")) {
			cerr(c, "spec.rules", "path match type %s has no v1 equivalent", t);
		}
		yyjson_mut_obj_add_strcpy(c->m, mp, "type", t);
		yyjson_mut_obj_add_strcpy(c->m, mp, "value",
					  sget(p, "value") ? sget(p, "value") : "/");
		madd(c, o, "path", mp);
	}
	if (h) {
		if (yyjson_is_obj(h) && yyjson_obj_get(h, "values"))
			madd(c, o, "headers",
			     map_to_list(c, yyjson_obj_get(h, "values"),
					 sget(h, "type") ? sget(h, "type") : "Exact"));
		else
			madd_copy(c, o, "headers", h);
	}
	if (q) {
		if (yyjson_is_obj(q) && yyjson_obj_get(q, "values"))
			madd(c, o, "queryParams",
			     map_to_list(c, yyjson_obj_get(q, "values"),
					 sget(q, "type") ? sget(q, "type") : "Exact"));
		else
			madd_copy(c, o, "queryParams", q);
	}
	madd_copy(c, o, "method", yyjson_obj_get(mt, "method"));
	if (yyjson_obj_get(mt, "extensionRef"))
		cerr(c, "spec.rules", "match extensionRef has no v1 equivalent");
	return o;
}

static yyjson_mut_val *conv_route(struct conv *c, const char *kind)
{
	yyjson_val *spec = yyjson_obj_get(c->cur->root, "spec"), *r;
	bool http = !strcmp(kind, "HTTPRoute"), tls = !strcmp(kind, "TLSRoute");
	const char *api = !strcmp(kind, "TCPRoute") || !strcmp(kind, "UDPRoute") ? NEW_GROUP
				  "/v1alpha2"
										 : NEW_GROUP "/v1";
	yyjson_mut_val *ms, *o = new_object(c, api, kind, &ms), *rules, *hosts = NULL;
	size_t idx, max;

	madd(c, ms, "parentRefs", derive_parents(c, kind));
	if (tls) {
		yyjson_val *m2, *sni;
		size_t i2, x2, i3, x3;

		hosts = yyjson_mut_arr(c->m);
		yyjson_arr_foreach(yyjson_obj_get(spec, "rules"), idx, max, r)
			yyjson_arr_foreach(yyjson_obj_get(r, "matches"), i2, x2, m2)
				yyjson_arr_foreach(yyjson_obj_get(m2, "snis"), i3, x3, sni)
					yyjson_mut_arr_append(hosts, mcopy(c, sni));
		if (yyjson_mut_arr_size(hosts))
			madd(c, ms, "hostnames", hosts);
	} else {
		madd_copy(c, ms, "hostnames", yyjson_obj_get(spec, "hostnames"));
	}
	if (yyjson_obj_get(spec, "tls"))
		cwarn(c, "spec.tls", "route-level tls has no v1 equivalent; dropped");
	rules = yyjson_mut_arr(c->m);
	yyjson_arr_foreach(yyjson_obj_get(spec, "rules"), idx, max, r)
	{
		yyjson_mut_val *mr = yyjson_mut_obj(c->m);
		yyjson_val *mt;
		size_t i2, x2;

		if (http && yyjson_arr_size(yyjson_obj_get(r, "matches"))) {
			yyjson_mut_val *mm = yyjson_mut_arr(c->m);

			yyjson_arr_foreach(yyjson_obj_get(r, "matches"), i2, x2, mt)
				yyjson_mut_arr_append(mm, conv_match(c, mt));
			madd(c, mr, "matches", mm);
		}
		if (http && yyjson_arr_size(yyjson_obj_get(r, "filters")))
			madd(c, mr, "filters",
			     conv_filters(c, yyjson_obj_get(r, "filters"), "spec.rules"));
		if (yyjson_obj_get(r, "forwardTo"))
			madd(c, mr, "backendRefs",
			     conv_forward(c, yyjson_obj_get(r, "forwardTo"), http));
		else
			madd_copy(c, mr, "backendRefs", yyjson_obj_get(r, "backendRefs"));
		yyjson_mut_arr_append(rules, mr);
	}
	madd(c, ms, "rules", rules);
	return o;
}

/* ---- driver ---- */

int kube_convert(const char *text, size_t len, const char *file, FILE *out, struct diag *d)
{
	struct conv c = {.file = file, .d = d};
	struct arena *a = arena_new(65536);
	struct ynode **docs;
	size_t ndocs, emitted = 0;
	int rc;

	if (!a)
		return -ENOMEM;
	rc = kyaml_load(a, text, len, file, &docs, &ndocs, d);
	if (rc)
		goto out;
	c.docs = calloc(ndocs + 1, sizeof(*c.docs));
	if (!c.docs) {
		rc = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < ndocs; i++) {
		struct buf b = {0};
		char msg[160];
		uint32_t line;
		const char *api;

		if (kyaml_is_null(docs[i]))
			continue;
		c.docs[c.n].y = docs[i];
		if (docs[i]->type != YN_MAP) {
			diag_add(d, DIAG_ERROR, file, NULL, NULL,
				 "line %u: a manifest is a mapping", docs[i]->line);
			c.errors++;
			continue;
		}
		if (kyaml_to_json(docs[i], &b, msg, sizeof(msg), &line)) {
			diag_add(d, DIAG_ERROR, file, NULL, NULL, "line %u: %s", line, msg);
			c.errors++;
			buf_release(&b);
			continue;
		}
		c.docs[c.n].doc = yyjson_read(buf_rptr(&b), buf_len(&b), 0);
		buf_release(&b);
		c.docs[c.n].root = yyjson_doc_get_root(c.docs[c.n].doc);
		c.docs[c.n].kind = sget(c.docs[c.n].root, "kind");
		api = sget(c.docs[c.n].root, "apiVersion");
		c.docs[c.n].old = api && !strcmp(api, OLD_API);
		if (!api || !c.docs[c.n].kind) {
			diag_add(d, DIAG_ERROR, file, NULL, api ? "kind" : "apiVersion",
				 "line %u: is required", docs[i]->line);
			c.errors++;
		}
		c.n++;
	}
	for (size_t i = 0; i < c.n; i++) {
		const struct cdoc *cd = &c.docs[i];
		yyjson_mut_val *o = NULL;
		const char *name, *ns;

		if (!cd->root || !cd->kind)
			continue;
		name = sget(yyjson_obj_get(cd->root, "metadata"), "name");
		ns = sget(yyjson_obj_get(cd->root, "metadata"), "namespace");
		snprintf(c.object, sizeof(c.object), "%s %s%s%s", cd->kind, ns ? ns : "",
			 ns ? "/" : "", name ? name : "(unnamed)");
		c.cur = cd;
		c.m = yyjson_mut_doc_new(NULL);
		if (!c.m) {
			rc = -ENOMEM;
			goto out;
		}
		if (!cd->old) {
			o = mcopy(&c, cd->root);
		} else if (!name) {
			cerr(&c, "metadata.name", "is required");
		} else if (!strcmp(cd->kind, "GatewayClass")) {
			o = conv_gatewayclass(&c);
		} else if (!strcmp(cd->kind, "Gateway")) {
			o = conv_gateway(&c);
		} else if (!strcmp(cd->kind, "HTTPRoute") || !strcmp(cd->kind, "TCPRoute") ||
			   !strcmp(cd->kind, "UDPRoute") || !strcmp(cd->kind, "TLSRoute")) {
			o = conv_route(&c, cd->kind);
		} else if (!strcmp(cd->kind, "BackendPolicy")) {
			cwarn(&c, "kind",
			      "BackendPolicy has no v1 equivalent; dropped "
			      "(see BackendTLSPolicy)");
		} else {
			cerr(&c, "kind", "%s %s is not a kind this command converts", OLD_API,
			     cd->kind);
		}
		if (o && !c.errors) {
			fputs(emitted ? "---\n" : "", out);
			emit_node(out, o, 0, false);
			emitted++;
		}
		yyjson_mut_doc_free(c.m);
		c.m = NULL;
	}
	rc = c.errors ? -WG_EINVAL_CONFIG : 0;
out:
	for (size_t i = 0; c.docs && i < c.n; i++)
		yyjson_doc_free(c.docs[i].doc);
	free(c.docs);
	arena_free(a);
	return rc;
}
