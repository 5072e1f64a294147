/* SPDX-License-Identifier: MIT */
/*
 * snapjson.c: a compiled snapshot as JSON (sockets, listeners, rules,
 * backends, endpoints): what the store keeps beside a revision and what the
 * UI and `waygate check` show. Certificates are named, never included;
 * private keys never appear. Any thread that holds a snapshot reference.
 */
#include <stdlib.h>

#include "yyjson.h"

#include "gwapi/reconcile.h"
#include "proxy/snapshot_types.h"

static const char *const proto_names[] = {"HTTP", "HTTPS", "TLS", "TCP", "UDP"};
static const char *const pm_names[] = {"PathPrefix", "Exact", "RegularExpression"};
static const char *const app_names[] = {"http1", "h2c", "ws", "h2"};
static const char *const filter_names[] = {"RequestHeaderModifier", "ResponseHeaderModifier",
					   "RequestRedirect",       "URLRewrite",
					   "RequestMirror",         "CORS"};

static void add_strs(yyjson_mut_doc *d, yyjson_mut_val *o, const char *key, char *const *v,
		     size_t n)
{
	yyjson_mut_val *a = yyjson_mut_obj_add_arr(d, o, key);
	for (size_t i = 0; i < n; i++)
		yyjson_mut_arr_add_str(d, a, v[i]);
}

static yyjson_mut_val *backend_json(yyjson_mut_doc *d, const struct snap_backend *b);

static yyjson_mut_val *filters_json(yyjson_mut_doc *d, const struct snap_filter *f, size_t n)
{
	yyjson_mut_val *arr = yyjson_mut_arr(d);
	for (size_t i = 0; i < n; i++) {
		yyjson_mut_val *o = yyjson_mut_arr_add_obj(d, arr);
		yyjson_mut_obj_add_str(d, o, "type", filter_names[f[i].type]);
		switch (f[i].type) {
		case SNAP_F_REQ_HEADER:
		case SNAP_F_RESP_HEADER: {
			const struct snap_header_mod *h = &f[i].u.header;
			yyjson_mut_val *set = yyjson_mut_obj_add_obj(d, o, "set");
			for (size_t j = 0; j < h->n_set; j++)
				yyjson_mut_obj_add_str(d, set, h->set[j].name, h->set[j].value);
			yyjson_mut_val *add = yyjson_mut_obj_add_obj(d, o, "add");
			for (size_t j = 0; j < h->n_add; j++)
				yyjson_mut_obj_add_str(d, add, h->add[j].name, h->add[j].value);
			add_strs(d, o, "remove", h->remove, h->n_remove);
			break;
		}
		case SNAP_F_REDIRECT:
			if (f[i].u.redirect.scheme)
				yyjson_mut_obj_add_str(d, o, "scheme", f[i].u.redirect.scheme);
			if (f[i].u.redirect.hostname)
				yyjson_mut_obj_add_str(d, o, "hostname", f[i].u.redirect.hostname);
			if (f[i].u.redirect.port)
				yyjson_mut_obj_add_int(d, o, "port", f[i].u.redirect.port);
			if (f[i].u.redirect.path)
				yyjson_mut_obj_add_str(d, o, "path", f[i].u.redirect.path);
			yyjson_mut_obj_add_int(d, o, "statusCode", f[i].u.redirect.status);
			break;
		case SNAP_F_REWRITE:
			if (f[i].u.rewrite.hostname)
				yyjson_mut_obj_add_str(d, o, "hostname", f[i].u.rewrite.hostname);
			if (f[i].u.rewrite.path)
				yyjson_mut_obj_add_str(d, o, "path", f[i].u.rewrite.path);
			break;
		case SNAP_F_MIRROR:
			if (f[i].u.mirror.backend)
				yyjson_mut_obj_add_val(d, o, "backend",
						       backend_json(d, f[i].u.mirror.backend));
			yyjson_mut_obj_add_uint(d, o, "numerator", f[i].u.mirror.numerator);
			yyjson_mut_obj_add_uint(d, o, "denominator", f[i].u.mirror.denominator);
			break;
		case SNAP_F_CORS:
			add_strs(d, o, "allowOrigins", f[i].u.cors.allow_origins,
				 f[i].u.cors.n_allow_origins);
			yyjson_mut_obj_add_bool(d, o, "allowCredentials",
						f[i].u.cors.allow_credentials);
			break;
		}
	}
	return arr;
}

static yyjson_mut_val *backend_json(yyjson_mut_doc *d, const struct snap_backend *b)
{
	yyjson_mut_val *o = yyjson_mut_obj(d);
	yyjson_mut_obj_add_str(d, o, "name", b->name ? b->name : "");
	yyjson_mut_obj_add_uint(d, o, "weight", b->weight);
	if (b->invalid_status)
		yyjson_mut_obj_add_int(d, o, "invalidStatus", b->invalid_status);
	yyjson_mut_obj_add_str(d, o, "protocol", app_names[b->proto]);
	yyjson_mut_val *eps = yyjson_mut_obj_add_arr(d, o, "endpoints");
	for (size_t i = 0; i < b->n_endpoints; i++) {
		yyjson_mut_val *e = yyjson_mut_arr_add_obj(d, eps);
		yyjson_mut_obj_add_str(d, e, "address", b->endpoints[i].addr);
		yyjson_mut_obj_add_uint(d, e, "port", b->endpoints[i].port);
	}
	if (b->tls) {
		yyjson_mut_val *t = yyjson_mut_obj_add_obj(d, o, "tls");
		if (b->tls->sni)
			yyjson_mut_obj_add_str(d, t, "hostname", b->tls->sni);
		yyjson_mut_obj_add_bool(d, t, "systemCAs", b->tls->use_system_cas);
		add_strs(d, t, "subjectAltNames", b->tls->sans, b->tls->n_sans);
		yyjson_mut_obj_add_bool(d, t, "clientCertificate", b->tls->client_cert_pem != NULL);
	}
	if (b->n_filters)
		yyjson_mut_obj_add_val(d, o, "filters", filters_json(d, b->filters, b->n_filters));
	return o;
}

static yyjson_mut_val *backends_json(yyjson_mut_doc *d, const struct snap_backend *b, size_t n)
{
	yyjson_mut_val *arr = yyjson_mut_arr(d);
	for (size_t i = 0; i < n; i++)
		yyjson_mut_arr_append(arr, backend_json(d, &b[i]));
	return arr;
}

static void kv_json(yyjson_mut_doc *d, yyjson_mut_val *o, const char *key,
		    const struct snap_kv_match *v, size_t n)
{
	if (!n)
		return;
	yyjson_mut_val *arr = yyjson_mut_obj_add_arr(d, o, key);
	for (size_t i = 0; i < n; i++) {
		yyjson_mut_val *e = yyjson_mut_arr_add_obj(d, arr);
		yyjson_mut_obj_add_str(d, e, "type",
				       v[i].type == SNAP_SM_REGEX ? "RegularExpression" : "Exact");
		yyjson_mut_obj_add_str(d, e, "name", v[i].name);
		yyjson_mut_obj_add_str(d, e, "value", v[i].value);
	}
}

static yyjson_mut_val *rule_json(yyjson_mut_doc *d, const struct snap_http_rule *r)
{
	yyjson_mut_val *o = yyjson_mut_obj(d);
	yyjson_mut_obj_add_str(d, o, "route", r->route);
	if (r->rule_name)
		yyjson_mut_obj_add_str(d, o, "ruleName", r->rule_name);
	yyjson_mut_obj_add_uint(d, o, "ruleIndex", r->rule_index);
	if (r->grpc)
		yyjson_mut_obj_add_bool(d, o, "grpc", true);
	add_strs(d, o, "hostnames", r->hostnames, r->n_hostnames);
	yyjson_mut_val *m = yyjson_mut_obj_add_obj(d, o, "match");
	yyjson_mut_obj_add_str(d, m, "pathType", pm_names[r->match.path_type]);
	yyjson_mut_obj_add_str(d, m, "path", r->match.path ? r->match.path : "/");
	if (r->match.method)
		yyjson_mut_obj_add_str(d, m, "method", r->match.method);
	kv_json(d, m, "headers", r->match.headers, r->match.n_headers);
	kv_json(d, m, "queryParams", r->match.query, r->match.n_query);
	if (r->n_filters)
		yyjson_mut_obj_add_val(d, o, "filters", filters_json(d, r->filters, r->n_filters));
	yyjson_mut_obj_add_val(d, o, "backends", backends_json(d, r->backends, r->n_backends));
	if (r->request_timeout_ms)
		yyjson_mut_obj_add_uint(d, o, "requestTimeoutMs", r->request_timeout_ms);
	if (r->backend_request_timeout_ms)
		yyjson_mut_obj_add_uint(d, o, "backendRequestTimeoutMs",
					r->backend_request_timeout_ms);
	if (r->retry.attempts)
		yyjson_mut_obj_add_int(d, o, "retryAttempts", r->retry.attempts);
	return o;
}

static yyjson_mut_val *listener_json(yyjson_mut_doc *d, const struct snap_listener *l)
{
	yyjson_mut_val *o = yyjson_mut_obj(d);
	yyjson_mut_obj_add_str(d, o, "gateway", l->gateway);
	yyjson_mut_obj_add_str(d, o, "name", l->name);
	yyjson_mut_obj_add_str(d, o, "protocol", proto_names[l->proto]);
	if (l->hostname)
		yyjson_mut_obj_add_str(d, o, "hostname", l->hostname);
	if (l->proto == SNAP_P_HTTPS || l->proto == SNAP_P_TLS) {
		yyjson_mut_obj_add_str(d, o, "tlsMode",
				       l->tls_mode == SNAP_TLS_PASSTHROUGH ? "Passthrough"
									   : "Terminate");
		yyjson_mut_val *certs = yyjson_mut_obj_add_arr(d, o, "certificates");
		for (size_t i = 0; i < l->n_certs; i++)
			yyjson_mut_arr_add_str(d, certs, l->certs[i].name);
		if (l->client_auth)
			yyjson_mut_obj_add_str(d, o, "clientValidation",
					       l->client_auth == SNAP_CA_REQUIRE
						       ? "AllowValidOnly"
						       : "AllowInsecureFallback");
	}
	if (l->n_http_rules) {
		yyjson_mut_val *rules = yyjson_mut_obj_add_arr(d, o, "rules");
		for (size_t i = 0; i < l->n_http_rules; i++)
			yyjson_mut_arr_append(rules, rule_json(d, &l->http_rules[i]));
	}
	if (l->n_tls_routes) {
		yyjson_mut_val *tr = yyjson_mut_obj_add_arr(d, o, "tlsRoutes");
		for (size_t i = 0; i < l->n_tls_routes; i++) {
			yyjson_mut_val *e = yyjson_mut_arr_add_obj(d, tr);
			yyjson_mut_obj_add_str(d, e, "route", l->tls_routes[i].route);
			add_strs(d, e, "hostnames", l->tls_routes[i].hostnames,
				 l->tls_routes[i].n_hostnames);
			yyjson_mut_obj_add_val(d, e, "backends",
					       backends_json(d, l->tls_routes[i].backends,
							     l->tls_routes[i].n_backends));
		}
	}
	if (l->l4_route) {
		yyjson_mut_obj_add_str(d, o, "route", l->l4_route);
		yyjson_mut_obj_add_val(d, o, "backends",
				       backends_json(d, l->l4_backends, l->n_l4_backends));
	}
	return o;
}

char *gw_snapshot_to_json(const struct snapshot *snap)
{
	yyjson_mut_doc *d = yyjson_mut_doc_new(NULL);
	char *out = NULL;

	if (!d)
		return NULL;
	yyjson_mut_val *root = yyjson_mut_obj(d);
	yyjson_mut_doc_set_root(d, root);
	yyjson_mut_obj_add_uint(d, root, "revision", snap->revision);
	yyjson_mut_obj_add_uint(d, root, "compiledMs", snap->compiled_ms);
	yyjson_mut_val *socks = yyjson_mut_obj_add_arr(d, root, "sockets");
	for (size_t i = 0; i < snap->n_sockets; i++) {
		const struct snap_socket *s = &snap->sockets[i];
		yyjson_mut_val *o = yyjson_mut_arr_add_obj(d, socks);
		yyjson_mut_obj_add_str(d, o, "address", s->addr);
		yyjson_mut_obj_add_uint(d, o, "port", s->port);
		yyjson_mut_obj_add_str(d, o, "transport",
				       s->transport == SNAP_T_UDP ? "UDP" : "TCP");
		yyjson_mut_val *ls = yyjson_mut_obj_add_arr(d, o, "listeners");
		for (size_t j = 0; j < s->n_listeners; j++)
			yyjson_mut_arr_append(ls, listener_json(d, s->listeners[j]));
	}
	out = yyjson_mut_write(d, 0, NULL);
	yyjson_mut_doc_free(d);
	return out;
}
