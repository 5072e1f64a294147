// SPDX-License-Identifier: MIT
/*
 * infra.c: the desired Service that represents the edge box in the cluster
 * for one Gateway (GatewayInfrastructurePropagation): its name, labels,
 * annotations, owner reference and ports, written as JSON. Pure: it reads
 * the Gateway object (and, for ownership, its GatewayClass in the set) and
 * nothing else. It does not talk to the cluster nor decide whether a write
 * is needed (kube/infra.c does). Control thread.
 */
#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "yyjson.h"

#include "core/hash.h"
#include "gwapi/infra.h"
#include "gwapi/objset.h"

#define SUFFIX "-waygate"
#define SUFFIX_LEN (sizeof(SUFFIX) - 1)
#define HASH_LEN 8

static uint32_t name_hash(const char *s)
{
	uint64_t h = hash_bytes(s, strlen(s));

	return (uint32_t)(h ^ (h >> 32));
}

void gw_infra_service_name(const char *gateway, char out[GW_INFRA_NAME_MAX + 1])
{
	char base[GW_INFRA_NAME_MAX + 1];
	size_t n = 0, glen = strlen(gateway);
	bool changed = false;

	if (!isalpha((unsigned char)gateway[0]) || isupper((unsigned char)gateway[0])) {
		memcpy(base, "gw-", 3);
		n = 3;
		changed = true;
	}
	for (size_t i = 0; i < glen && n < sizeof(base) - 1; i++) {
		unsigned char c = (unsigned char)gateway[i];

		if (islower(c) || isdigit(c) || c == '-') {
			base[n++] = (char)c;
		} else {
			base[n++] = '-';
			changed = true;
		}
	}
	base[n] = '\0';
	if (!changed && glen + SUFFIX_LEN <= GW_INFRA_NAME_MAX) {
		memcpy(out, base, n);
		memcpy(out + n, SUFFIX, SUFFIX_LEN + 1);
		return;
	}
	/* cut, hash, suffix: 46 + 1 + 8 + 8 = 63 */
	n = GW_INFRA_NAME_MAX - SUFFIX_LEN - HASH_LEN - 1;
	if (strlen(base) < n)
		n = strlen(base);
	while (n > 0 && base[n - 1] == '-')
		n--;
	snprintf(out, GW_INFRA_NAME_MAX + 1, "%.*s-%08x" SUFFIX, (int)n, base,
		 (unsigned)name_hash(gateway));
}

void gw_infra_label_value(const char *gateway, char out[GW_INFRA_NAME_MAX + 1])
{
	size_t glen = strlen(gateway);

	if (glen <= GW_INFRA_NAME_MAX) {
		memcpy(out, gateway, glen + 1);
		return;
	}
	snprintf(out, GW_INFRA_NAME_MAX + 1, "%.*s-%08x", GW_INFRA_NAME_MAX - HASH_LEN - 1, gateway,
		 (unsigned)name_hash(gateway));
}

static yyjson_val *obj_path(const struct gw_object *o, const char *a, const char *b)
{
	yyjson_val *v = yyjson_obj_get(yyjson_doc_get_root(o->doc), a);

	return b ? yyjson_obj_get(v, b) : v;
}

bool gw_infra_gateway_is_ours(const struct gw_objset *set, const struct gw_object *gw,
			      const char *controller)
{
	const char *cls = yyjson_get_str(obj_path(gw, "spec", "gatewayClassName"));
	const struct gw_object *gc;
	const char *ctl;

	if (gw->kind != GW_K_GATEWAY || !cls || !controller ||
	    obj_path(gw, "metadata", "deletionTimestamp"))
		return false;
	gc = gw_objset_get(set, GW_K_GATEWAYCLASS, "", cls);
	if (!gc)
		return false;
	ctl = yyjson_get_str(obj_path(gc, "spec", "controllerName"));
	return ctl && !strcmp(ctl, controller);
}

struct iport {
	int port;
	bool udp;
};

static int iport_cmp(const void *a, const void *b)
{
	const struct iport *x = a, *y = b;

	if (x->port != y->port)
		return x->port < y->port ? -1 : 1;
	return (int)x->udp - (int)y->udp;
}

/* The distinct (port, protocol) pairs of the listeners, sorted. *out is
 * malloc'd (NULL when there are none). 0 or -ENOMEM. */
static int listener_ports(yyjson_val *listeners, struct iport **out, size_t *n_out)
{
	size_t n = 0, idx, max;
	struct iport *v;
	yyjson_val *l;

	*out = NULL;
	*n_out = 0;
	if (!yyjson_arr_size(listeners))
		return 0;
	v = calloc(yyjson_arr_size(listeners), sizeof(*v));
	if (!v)
		return -ENOMEM;
	yyjson_arr_foreach(listeners, idx, max, l)
	{
		const char *proto = yyjson_get_str(yyjson_obj_get(l, "protocol"));
		yyjson_val *pv = yyjson_obj_get(l, "port");
		int64_t port = yyjson_is_int(pv) ? yyjson_get_sint(pv) : 0;
		struct iport p;
		bool dup = false;

		if (!proto || port < 1 || port > 65535)
			continue;
		if (!strcmp(proto, "UDP"))
			p.udp = true;
		else if (!strcmp(proto, "HTTP") || !strcmp(proto, "HTTPS") ||
			 !strcmp(proto, "TLS") || !strcmp(proto, "TCP"))
			p.udp = false;
		else
			continue;
		p.port = (int)port;
		for (size_t i = 0; i < n && !dup; i++)
			dup = v[i].port == p.port && v[i].udp == p.udp;
		if (!dup)
			v[n++] = p;
	}
	qsort(v, n, sizeof(*v), iport_cmp);
	*out = v;
	*n_out = n;
	return 0;
}

/* Adds the string entries of src (a JSON object) to dst, except the keys
 * in skip (NULL-terminated). */
static void add_strings(yyjson_mut_doc *m, yyjson_mut_val *dst, yyjson_val *src,
			const char *const *skip)
{
	yyjson_obj_iter it;
	yyjson_val *k;

	if (!yyjson_is_obj(src))
		return;
	yyjson_obj_iter_init(src, &it);
	while ((k = yyjson_obj_iter_next(&it))) {
		yyjson_val *v = yyjson_obj_iter_get_val(k);
		bool skipped = false;

		if (!yyjson_is_str(v))
			continue;
		for (size_t i = 0; skip[i] && !skipped; i++)
			skipped = !strcmp(yyjson_get_str(k), skip[i]);
		if (!skipped)
			yyjson_mut_obj_add(dst, yyjson_val_mut_copy(m, k),
					   yyjson_val_mut_copy(m, v));
	}
}

int gw_infra_service_build(const struct gw_object *gw, const char *controller,
			   struct gw_infra_service *out)
{
	static const char *const own_labels[] = {GW_INFRA_LABEL_GATEWAY, GW_INFRA_LABEL_MANAGED_BY,
						 NULL};
	static const char *const own_anns[] = {GW_INFRA_ANN_CONTROLLER, NULL};
	yyjson_val *infra = obj_path(gw, "spec", "infrastructure");
	yyjson_mut_doc *m = NULL;
	yyjson_mut_val *root, *md, *labels, *anns, *spec, *ports;
	char label[GW_INFRA_NAME_MAX + 1], pname[16];
	struct iport *pv = NULL;
	size_t np = 0;
	int rc = -ENOMEM;

	memset(out, 0, sizeof(*out));
	if (gw->kind != GW_K_GATEWAY || !gw->name || !*gw->name || !gw->ns || !*gw->ns)
		return -EINVAL;
	gw_infra_service_name(gw->name, out->name);
	gw_infra_label_value(gw->name, label);
	out->ns = gw->ns;
	if (listener_ports(obj_path(gw, "spec", "listeners"), &pv, &np))
		return -ENOMEM;
	m = yyjson_mut_doc_new(NULL);
	if (!m)
		goto out;
	root = yyjson_mut_obj(m);
	md = yyjson_mut_obj(m);
	labels = yyjson_mut_obj(m);
	anns = yyjson_mut_obj(m);
	spec = yyjson_mut_obj(m);
	ports = yyjson_mut_arr(m);
	if (!root || !md || !labels || !anns || !spec || !ports)
		goto out;
	yyjson_mut_doc_set_root(m, root);
	yyjson_mut_obj_add_str(m, root, "apiVersion", "v1");
	yyjson_mut_obj_add_str(m, root, "kind", "Service");
	yyjson_mut_obj_add_val(m, root, "metadata", md);
	yyjson_mut_obj_add_strcpy(m, md, "name", out->name);
	yyjson_mut_obj_add_strcpy(m, md, "namespace", gw->ns);

	yyjson_mut_obj_add_strcpy(m, labels, GW_INFRA_LABEL_GATEWAY, label);
	yyjson_mut_obj_add_str(m, labels, GW_INFRA_LABEL_MANAGED_BY, GW_INFRA_MANAGED_BY);
	add_strings(m, labels, yyjson_obj_get(infra, "labels"), own_labels);
	yyjson_mut_obj_add_val(m, md, "labels", labels);

	add_strings(m, anns, yyjson_obj_get(infra, "annotations"), own_anns);
	if (controller)
		yyjson_mut_obj_add_strcpy(m, anns, GW_INFRA_ANN_CONTROLLER, controller);
	if (yyjson_mut_obj_size(anns))
		yyjson_mut_obj_add_val(m, md, "annotations", anns);

	if (gw->uid && *gw->uid) {
		yyjson_mut_val *refs = yyjson_mut_arr(m), *ref = yyjson_mut_obj(m);

		if (!refs || !ref)
			goto out;
		yyjson_mut_obj_add_str(m, ref, "apiVersion", "gateway.networking.k8s.io/v1");
		yyjson_mut_obj_add_str(m, ref, "kind", "Gateway");
		yyjson_mut_obj_add_strcpy(m, ref, "name", gw->name);
		yyjson_mut_obj_add_strcpy(m, ref, "uid", gw->uid);
		yyjson_mut_obj_add_bool(m, ref, "controller", true);
		yyjson_mut_arr_append(refs, ref);
		yyjson_mut_obj_add_val(m, md, "ownerReferences", refs);
	}

	yyjson_mut_obj_add_val(m, root, "spec", spec);
	yyjson_mut_obj_add_str(m, spec, "type", "ClusterIP");
	yyjson_mut_obj_add_str(m, spec, "clusterIP", "None");
	for (size_t i = 0; i < np; i++) {
		yyjson_mut_val *p = yyjson_mut_obj(m);

		if (!p)
			goto out;
		snprintf(pname, sizeof(pname), "%s-%d", pv[i].udp ? "udp" : "tcp", pv[i].port);
		yyjson_mut_obj_add_strcpy(m, p, "name", pname);
		yyjson_mut_obj_add_str(m, p, "protocol", pv[i].udp ? "UDP" : "TCP");
		yyjson_mut_obj_add_int(m, p, "port", pv[i].port);
		yyjson_mut_obj_add_int(m, p, "targetPort", pv[i].port);
		yyjson_mut_arr_append(ports, p);
	}
	yyjson_mut_obj_add_val(m, spec, "ports", ports);
	out->json = yyjson_mut_write(m, 0, &out->len);
	rc = out->json ? 0 : -ENOMEM;
out:
	yyjson_mut_doc_free(m);
	free(pv);
	return rc;
}
