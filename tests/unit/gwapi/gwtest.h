/* SPDX-License-Identifier: MIT */
/*
 * gwtest.h: helpers shared by the gwapi unit tests: build an object set from
 * JSON written with single quotes (turned into double quotes), run reconcile
 * with fixed options, and read conditions back out of the status JSON.
 */
#ifndef WG_TESTS_GWAPI_GWTEST_H
#define WG_TESTS_GWAPI_GWTEST_H

#include <stdlib.h>
#include <string.h>

#include "yyjson.h"

#include "check.h"
#include "gwapi/reconcile.h"
#include "proxy/snapshot.h"

#define GWT_CONTROLLER "waygate.dev/gateway-controller"

static inline struct gw_object *gwt_obj(const char *squoted)
{
	char err[256] = "";
	size_t n = strlen(squoted);
	char *j = malloc(n + 1);
	for (size_t i = 0; i <= n; i++)
		j[i] = squoted[i] == '\'' ? '"' : squoted[i];
	struct gw_object *o = gw_object_parse(-1, j, n, err, sizeof(err));
	if (!o)
		fprintf(stderr, "  gwt_obj: %s\n  in %s\n", err, j);
	free(j);
	return o;
}

static inline void gwt_put(struct gw_objset *set, const char *squoted)
{
	struct gw_object *o = gwt_obj(squoted);
	CHECK(o != NULL);
	if (o)
		gw_objset_put(set, o);
}

static inline void gwt_base(struct gw_objset *set)
{
	gwt_put(set, "{'apiVersion':'gateway.networking.k8s.io/v1','kind':'GatewayClass',"
		     "'metadata':{'name':'wg','generation':1},"
		     "'spec':{'controllerName':'" GWT_CONTROLLER "'}}");
	gwt_put(set, "{'apiVersion':'v1','kind':'Namespace','metadata':{'name':'infra',"
		     "'labels':{'team':'infra'}}}");
	gwt_put(set, "{'apiVersion':'v1','kind':'Namespace','metadata':{'name':'apps',"
		     "'labels':{'team':'apps'}}}");
	gwt_put(set,
		"{'apiVersion':'v1','kind':'Service','metadata':{'namespace':'infra',"
		"'name':'svc'},'spec':{'ports':[{'name':'http','port':8080,'targetPort':3000},"
		"{'name':'h2','port':8081,'targetPort':3001,'appProtocol':'kubernetes.io/h2c'}]}}");
	gwt_put(set, "{'apiVersion':'discovery.k8s.io/v1','kind':'EndpointSlice',"
		     "'metadata':{'namespace':'infra','name':'svc-a',"
		     "'labels':{'kubernetes.io/service-name':'svc'}},'addressType':'IPv4',"
		     "'ports':[{'name':'http','port':3000},{'name':'h2','port':3001}],"
		     "'endpoints':[{'addresses':['10.0.0.1'],'conditions':{'ready':true}},"
		     "{'addresses':['10.0.0.2'],'conditions':{'ready':false}},"
		     "{'addresses':['10.0.0.3']}]}");
}

static inline int gwt_run(struct gw_objset *set, const char *pool, struct gw_result *res)
{
	static const char *const feats[] = {"Gateway", "HTTPRoute", NULL};
	struct gw_options o = {
		.controller_name = GWT_CONTROLLER,
		.address_pool = pool,
		.now_ms = 1790000000000ULL,
		.supported_features = feats,
	};
	return gw_reconcile(set, &o, res);
}

static inline void gwt_done(struct gw_result *res)
{
	snap_unref(res->snap);
	res->snap = NULL;
	gw_result_fini(res);
}

/* Status of an object parsed (caller frees with yyjson_doc_free), or NULL. */
static inline yyjson_doc *gwt_status(const struct gw_result *res, enum gw_kind k, const char *ns,
				     const char *name)
{
	for (size_t i = 0; i < res->n_statuses; i++) {
		const struct gw_status *s = &res->statuses[i];
		if (s->kind == k && !strcmp(s->ns, ns) && !strcmp(s->name, name))
			return yyjson_read(s->status_json, strlen(s->status_json), 0);
	}
	return NULL;
}

/* "True:Reason" of a condition in an array, or "absent". Static buffer. */
static inline const char *gwt_cond(yyjson_val *conds, const char *type)
{
	static char buf[4][160];
	static int k;
	size_t i, max;
	yyjson_val *c;

	k = (k + 1) % 4;
	yyjson_arr_foreach(conds, i, max, c)
	{
		const char *t = yyjson_get_str(yyjson_obj_get(c, "type"));
		if (t && !strcmp(t, type)) {
			snprintf(buf[k], sizeof(buf[k]), "%s:%s",
				 yyjson_get_str(yyjson_obj_get(c, "status")),
				 yyjson_get_str(yyjson_obj_get(c, "reason")));
			return buf[k];
		}
	}
	return "absent";
}

/* The condition of an object's status at a JSON pointer to a conditions
 * array ("/conditions", "/listeners/0/conditions", "/parents/0/conditions"). */
static inline const char *gwt_cond_at(const struct gw_result *res, enum gw_kind k, const char *ns,
				      const char *name, const char *ptr, const char *type)
{
	static char buf[4][160];
	static int idx;
	yyjson_doc *d = gwt_status(res, k, ns, name);
	const char *r = "no-status";

	idx = (idx + 1) % 4;
	if (d) {
		r = gwt_cond(yyjson_doc_ptr_get(d, ptr), type);
		snprintf(buf[idx], sizeof(buf[idx]), "%s", r);
		r = buf[idx];
		yyjson_doc_free(d);
	}
	return r;
}

static inline long long gwt_int_at(const struct gw_result *res, enum gw_kind k, const char *ns,
				   const char *name, const char *ptr)
{
	yyjson_doc *d = gwt_status(res, k, ns, name);
	long long v = -1;
	if (d) {
		yyjson_val *x = yyjson_doc_ptr_get(d, ptr);
		if (yyjson_is_int(x))
			v = (long long)yyjson_get_sint(x);
		yyjson_doc_free(d);
	}
	return v;
}

static inline const char *gwt_str_at(const struct gw_result *res, enum gw_kind k, const char *ns,
				     const char *name, const char *ptr)
{
	static char buf[4][256];
	static int idx;
	yyjson_doc *d = gwt_status(res, k, ns, name);
	const char *r = "(none)";

	idx = (idx + 1) % 4;
	if (d) {
		const char *s = yyjson_get_str(yyjson_doc_ptr_get(d, ptr));
		snprintf(buf[idx], sizeof(buf[idx]), "%s", s ? s : "(none)");
		r = buf[idx];
		yyjson_doc_free(d);
	}
	return r;
}

static inline const struct snap_listener *gwt_listener(const struct snapshot *s, const char *gw,
						       const char *name)
{
	for (size_t i = 0; s && i < s->n_listeners; i++)
		if (!strcmp(s->listeners[i].gateway, gw) && !strcmp(s->listeners[i].name, name))
			return &s->listeners[i];
	return NULL;
}

#endif
