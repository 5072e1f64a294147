/* SPDX-License-Identifier: MIT */
/*
 * gateway.c: the Gateway side of reconcile: which Gateways and ListenerSets
 * are ours, each listener's validity (protocol, route kinds, certificate
 * references, frontend client-certificate validation), listener conflicts
 * in the spec's precedence (Gateway listeners, then ListenerSets oldest
 * first), the Gateway's addresses (static ones and one from the pool, stable
 * across runs) and the Gateway and ListenerSet conditions that follow.
 * Route attachment is route.c's. Control thread only.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/str.h"
#include "gwapi/reconcile_int.h"

static const struct {
	const char *name;
	enum snap_proto proto;
} protos[] = {{"HTTP", SNAP_P_HTTP},
	      {"HTTPS", SNAP_P_HTTPS},
	      {"TLS", SNAP_P_TLS},
	      {"TCP", SNAP_P_TCP},
	      {"UDP", SNAP_P_UDP}};

/* Route kinds a protocol can carry. */
static int kinds_for(enum snap_proto p, const char **out)
{
	switch (p) {
	case SNAP_P_HTTP:
	case SNAP_P_HTTPS:
		out[0] = "HTTPRoute";
		out[1] = "GRPCRoute";
		return 2;
	case SNAP_P_TLS: out[0] = "TLSRoute"; return 1;
	case SNAP_P_TCP: out[0] = "TCPRoute"; return 1;
	case SNAP_P_UDP: out[0] = "UDPRoute"; return 1;
	}
	return 0;
}

static void lis_refs_fail(struct rlis *li, const char *reason, const char *msg)
{
	if (li->resolved) {
		li->resolved = false;
		li->ref_reason = reason;
		li->ref_msg = msg;
	}
}

/* The owner of a listener as a ReferenceGrant "from". */
static void owner_of(const struct rlis *li, const char **kind, const char **ns)
{
	*kind = li->ls ? "ListenerSet" : "Gateway";
	*ns = li->ls ? li->ls->s.obj->ns : li->gw->g.obj->ns;
}

static void resolve_certs(struct rctx *c, struct rlis *li, const char *field)
{
	const struct gw_listener *l = li->l;
	const char *okind, *ons;
	const struct gw_object *owner = li->ls ? li->ls->s.obj : li->gw->g.obj;
	const char *oname = li->ls ? li->ls->objname : li->gw->objname;

	owner_of(li, &okind, &ons);
	if (!l->n_cert_refs) {
		lis_refs_fail(li, "InvalidCertificateRef",
			      rc_printf(c, "listener %s needs tls.certificateRefs", l->name));
		diag_add(&c->diag, DIAG_ERROR, owner->file, oname, field, "%s", li->ref_msg);
		return;
	}
	li->certs = rc_salloc(c, l->n_cert_refs, sizeof(*li->certs));
	for (size_t i = 0; i < l->n_cert_refs && li->certs; i++) {
		const struct gw_ref *r = &l->cert_refs[i];
		const char *msg = NULL, *reason = "InvalidCertificateRef";
		if (strcmp(r->group, "") != 0 || strcmp(r->kind, "Secret") != 0) {
			msg = rc_printf(c, "certificateRefs[%zu]: %s %s is not a Secret", i,
					*r->group ? r->group : "core", r->kind);
		} else if (!rc_grant_allows(c, GW_GROUP, okind, ons, "", "Secret", r->ns,
					    r->name)) {
			reason = "RefNotPermitted";
			msg = rc_printf(c,
					"certificateRefs[%zu]: Secret %s/%s in another namespace "
					"needs a ReferenceGrant",
					i, r->ns, r->name);
		} else {
			const struct gw_object *s =
				gw_objset_get(c->set, GW_K_SECRET, r->ns, r->name);
			char *crt = s ? gw_secret_data(c->sa, s, "tls.crt", NULL) : NULL;
			char *key = s ? gw_secret_data(c->sa, s, "tls.key", NULL) : NULL;
			if (!s)
				msg = rc_printf(c, "certificateRefs[%zu]: Secret %s/%s not found",
						i, r->ns, r->name);
			else if (!rc_pem_has_cert(crt) || !rc_pem_has_key(key))
				msg = rc_printf(c,
						"certificateRefs[%zu]: Secret %s/%s has no valid "
						"PEM tls.crt and tls.key",
						i, r->ns, r->name);
			else {
				struct snap_cert *sc = &li->certs[li->n_certs++];
				sc->cert_pem = crt;
				sc->key_pem = key;
				sc->name = rc_sdup(c, rc_printf(c, "%s/%s", r->ns, r->name));
				continue;
			}
		}
		lis_refs_fail(li, reason, msg);
		diag_add(&c->diag, DIAG_ERROR, owner->file, oname,
			 rc_printf(c, "%s.tls.certificateRefs[%zu]", field, i), "%s", msg);
	}
}

/* Frontend client-certificate validation for an HTTPS listener. */
static void resolve_frontend(struct rctx *c, struct rlis *li, const char *field)
{
	struct rgw *g = li->gw;
	const struct gw_frontend_validation *v = NULL;

	for (size_t i = 0; i < g->g.n_fe_per_port; i++)
		if (g->g.fe_per_port[i].port == li->l->port)
			v = &g->g.fe_per_port[i].v;
	if (!v && g->g.has_fe_default)
		v = &g->g.fe_default;
	if (!v || !v->n_ca_refs)
		return;
	struct buf_s {
		char *p;
		size_t len;
	} pem = {0};
	size_t valid = 0;
	for (size_t i = 0; i < v->n_ca_refs; i++) {
		const struct gw_ref *r = &v->ca_refs[i];
		const char *reason = "InvalidCACertificateRef", *msg = NULL;
		const char *data = NULL;
		bool is_cm = !strcmp(r->kind, "ConfigMap"), is_secret = !strcmp(r->kind, "Secret");
		if (strcmp(r->group, "") != 0 || (!is_cm && !is_secret)) {
			reason = "InvalidCACertificateKind";
			msg = rc_printf(c, "caCertificateRefs[%zu]: kind %s is not supported", i,
					r->kind);
		} else if (!rc_grant_allows(c, GW_GROUP, "Gateway", g->g.obj->ns, "", r->kind,
					    r->ns, r->name)) {
			reason = "RefNotPermitted";
			msg = rc_printf(c,
					"caCertificateRefs[%zu]: %s %s/%s needs a ReferenceGrant",
					i, r->kind, r->ns, r->name);
		} else {
			const struct gw_object *o = gw_objset_get(
				c->set, is_cm ? GW_K_CONFIGMAP : GW_K_SECRET, r->ns, r->name);
			if (o)
				data = is_cm ? gw_configmap_data(o, "ca.crt")
					     : gw_secret_data(c->a, o, "ca.crt", NULL);
			if (!rc_pem_has_cert(data)) {
				msg = rc_printf(c, "caCertificateRefs[%zu]: %s %s/%s %s", i,
						r->kind, r->ns, r->name,
						o ? "has no PEM ca.crt" : "not found");
				data = NULL;
			}
		}
		if (!data) {
			lis_refs_fail(li, reason, msg);
			diag_add(&c->diag, DIAG_ERROR, g->g.obj->file, g->objname, field, "%s",
				 msg);
			continue;
		}
		size_t dl = strlen(data);
		char *np = arena_alloc(c->sa, pem.len + dl + 2);
		if (!np) {
			c->err = -ENOMEM;
			return;
		}
		if (pem.len)
			memcpy(np, pem.p, pem.len);
		memcpy(np + pem.len, data, dl);
		pem.len += dl;
		if (np[pem.len - 1] != '\n')
			np[pem.len++] = '\n';
		np[pem.len] = '\0';
		pem.p = np;
		valid++;
	}
	if (!valid) {
		li->accepted = false;
		li->acc_reason = "NoValidCACertificate";
		li->acc_msg = "no valid CA certificate for client certificate validation";
		return;
	}
	li->client_ca_pem = pem.p;
	li->client_auth = v->insecure_fallback ? SNAP_CA_ALLOW_INSECURE : SNAP_CA_REQUIRE;
	if (v->insecure_fallback)
		g->insecure_fallback = true;
}

static void validate_listener(struct rctx *c, struct rlis *li, const char *field)
{
	const struct gw_listener *l = li->l;
	const char *kinds[2];
	int nk;

	li->accepted = true;
	li->resolved = true;
	li->proto = -1;
	for (size_t i = 0; i < sizeof(protos) / sizeof(protos[0]); i++)
		if (!strcmp(protos[i].name, l->protocol))
			li->proto = (int)protos[i].proto;
	if (li->proto < 0) {
		li->accepted = false;
		li->acc_reason = "UnsupportedProtocol";
		li->acc_msg = rc_printf(c, "protocol \"%s\" is not supported", l->protocol);
		return;
	}
	if (l->port < 1 || l->port > 65535) {
		li->accepted = false;
		li->acc_reason = "UnsupportedValue";
		li->acc_msg = rc_printf(c, "port %d is out of range", l->port);
		return;
	}
	nk = kinds_for((enum snap_proto)li->proto, kinds);
	if (!l->kinds_set) {
		for (int i = 0; i < nk; i++)
			li->sk[li->n_sk++] = (struct gw_group_kind){GW_GROUP, kinds[i]};
	} else {
		for (size_t j = 0; j < l->n_kinds; j++) {
			bool ok = false, dup = false;
			for (int i = 0; i < nk; i++)
				if (!strcmp(l->kinds[j].group, GW_GROUP) &&
				    !strcmp(l->kinds[j].kind, kinds[i]))
					ok = true;
			for (int i = 0; i < li->n_sk; i++)
				if (!strcmp(li->sk[i].kind, l->kinds[j].kind))
					dup = true;
			if (ok && !dup && li->n_sk < 4)
				li->sk[li->n_sk++] =
					(struct gw_group_kind){GW_GROUP, l->kinds[j].kind};
			if (!ok)
				lis_refs_fail(li, "InvalidRouteKinds",
					      rc_printf(c,
							"route kind %s/%s is not supported on %s",
							l->kinds[j].group, l->kinds[j].kind,
							l->protocol));
		}
	}
	if (l->hostname && li->proto != SNAP_P_TCP && li->proto != SNAP_P_UDP &&
	    !gw_hostname_is_valid(l->hostname, true)) {
		li->accepted = false;
		li->acc_reason = "UnsupportedValue";
		li->acc_msg = rc_printf(c, "invalid hostname \"%s\"", l->hostname);
		return;
	}
	if (li->proto == SNAP_P_HTTPS) {
		if (!strcmp(l->tls_mode, "Passthrough")) {
			li->accepted = false;
			li->acc_reason = "UnsupportedValue";
			li->acc_msg =
				"HTTPS listeners terminate TLS: use protocol TLS for Passthrough";
			return;
		}
		resolve_certs(c, li, field);
		resolve_frontend(c, li, field);
	} else if (li->proto == SNAP_P_TLS) {
		if (strcmp(l->tls_mode, "Passthrough") != 0)
			resolve_certs(c, li, field);
	}
}

static int proto_class(int proto)
{
	switch (proto) {
	case SNAP_P_HTTP: return 1;
	case SNAP_P_HTTPS:
	case SNAP_P_TLS: return 2;
	case SNAP_P_TCP: return 3;
	case SNAP_P_UDP: return 4;
	}
	return 0;
}

static bool same_host(const char *a, const char *b)
{
	if (!a || !b)
		return !a && !b;
	return !strcasecmp(a, b);
}

/* Marks later listeners that conflict with earlier accepted ones. */
static void find_conflicts(struct rctx *c, struct rlis **v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct rlis *li = v[i];
		if (!li->accepted)
			continue;
		for (size_t j = 0; j < i; j++) {
			struct rlis *o = v[j];
			if (!o->accepted || o->conflict || o->l->port != li->l->port)
				continue;
			int a = proto_class(li->proto), b = proto_class(o->proto);
			bool udp_a = a == 4, udp_b = b == 4;
			if (udp_a != udp_b)
				continue; /* different transports share a port number */
			const char *ha = a == 3 || a == 4 ? NULL : li->l->hostname;
			const char *hb = b == 3 || b == 4 ? NULL : o->l->hostname;
			if (a != b)
				li->conflict = "ProtocolConflict";
			else if (same_host(ha, hb))
				li->conflict = "HostnameConflict";
			if (li->conflict) {
				li->accepted = false;
				li->acc_reason = li->conflict;
				li->acc_msg = rc_printf(c, "conflicts with listener %s on port %d",
							o->l->name, o->l->port);
				break;
			}
		}
	}
}

/* A ListenerSet listener counts as valid when it is accepted and its
 * references resolve (a partial list of route kinds still serves). */
static bool listener_usable(const struct rlis *li)
{
	if (!li->accepted)
		return false;
	return li->resolved || (li->n_sk > 0 && !strcmp(li->ref_reason, "InvalidRouteKinds"));
}

static int cmp_rls_age(const void *a, const void *b)
{
	const struct rls *x = *(const struct rls *const *)a, *y = *(const struct rls *const *)b;
	return rc_age_cmp(x->s.obj, y->s.obj);
}

static bool claim(struct rctx *c, struct rgw *g, const char *addr)
{
	struct rgw *owner = gw_map_get(&c->addr_taken, addr);

	if (owner && owner != g)
		return false;
	for (int i = 0; i < g->n_addrs; i++)
		if (!strcmp(g->addrs[i], addr))
			return true;
	if (g->n_addrs == 4)
		return false;
	str_lcpy(g->addrs[g->n_addrs], addr, sizeof(g->addrs[0]));
	if (gw_map_put(&c->addr_taken, g->addrs[g->n_addrs], g))
		c->err = -ENOMEM;
	g->n_addrs++;
	return true;
}

static bool pool_ok(struct rctx *c, const char *addr)
{
	uint8_t ip[16];
	int fam;
	return addr && gw_ip_parse(addr, ip, &fam) && gw_pool_contains(&c->pool, ip, fam);
}

static void assign_addresses(struct rctx *c)
{
	/* Static addresses first: they are the user's explicit choice. */
	for (size_t i = 0; i < c->n_gws; i++) {
		struct rgw *g = c->gws[i];
		if (!g->g.n_addresses)
			g->wants_pool = true;
		for (size_t j = 0; j < g->g.n_addresses; j++) {
			const struct gw_address *a = &g->g.addresses[j];
			uint8_t ip[16];
			int fam;
			if (strcmp(a->type, "IPAddress") != 0) {
				g->addr_unsupported = true;
				diag_add(&c->diag, DIAG_ERROR, g->g.obj->file, g->objname,
					 "spec.addresses", "address type %s is not supported",
					 a->type);
			} else if (!a->value || !*a->value) {
				g->wants_pool = true;
			} else if (!gw_ip_parse(a->value, ip, &fam)) {
				g->addr_unsupported = true;
				diag_add(&c->diag, DIAG_ERROR, g->g.obj->file, g->objname,
					 "spec.addresses", "\"%s\" is not an IP address", a->value);
			} else if ((c->pool.valid && !gw_pool_contains(&c->pool, ip, fam)) ||
				   !claim(c, g, a->value)) {
				g->addr_unusable = true;
				diag_add(&c->diag, DIAG_WARN, g->g.obj->file, g->objname,
					 "spec.addresses", "address %s is not usable by this box",
					 a->value);
			}
		}
		if (g->addr_unsupported)
			g->n_addrs = 0;
	}
	if (!c->pool.valid)
		return;
	/* Then the address each Gateway had before, so allocations are stable. */
	for (size_t i = 0; i < c->n_gws; i++) {
		struct rgw *g = c->gws[i];
		if (!g->wants_pool || g->n_addrs || g->addr_unsupported)
			continue;
		for (size_t j = 0; j < c->opts->n_prev && c->opts->prev_gateways; j++)
			if (!strcmp(c->opts->prev_gateways[j], g->key) &&
			    pool_ok(c, c->opts->prev_addresses[j]) &&
			    claim(c, g, c->opts->prev_addresses[j]))
				break;
		if (g->n_addrs)
			continue;
		yyjson_val *sa = yyjson_obj_get(g->g.status, "addresses");
		size_t k, max;
		yyjson_val *e;
		yyjson_arr_foreach(sa, k, max, e)
		{
			const char *v = yyjson_get_str(yyjson_obj_get(e, "value"));
			if (pool_ok(c, v) && claim(c, g, v))
				break;
		}
	}
	/* Then the lowest free address of the pool. */
	uint64_t next = 0, size = gw_pool_size(&c->pool);
	for (size_t i = 0; i < c->n_gws; i++) {
		struct rgw *g = c->gws[i];
		if (!g->wants_pool || g->n_addrs || g->addr_unsupported)
			continue;
		char buf[48];
		for (; next < size; next++) {
			if (!gw_pool_nth(&c->pool, next, buf, sizeof(buf)))
				break;
			if (!gw_map_get(&c->addr_taken, buf) && claim(c, g, buf))
				break;
		}
		if (!g->n_addrs)
			diag_add(&c->diag, DIAG_ERROR, g->g.obj->file, g->objname, "spec.addresses",
				 "the address pool %s is exhausted", c->opts->address_pool);
	}
}

static struct rlis *make_listeners(struct rctx *c, const struct gw_listener *ls, size_t n,
				   struct rgw *g, struct rls *set)
{
	struct rlis *v = rc_alloc(c, n, sizeof(*v));
	for (size_t i = 0; i < n && v; i++) {
		v[i].l = &ls[i];
		v[i].gw = g;
		v[i].ls = set;
		validate_listener(c, &v[i], rc_printf(c, "spec.listeners[%zu]", i));
	}
	return v;
}

static void backend_client_cert(struct rctx *c, struct rgw *g)
{
	const struct gw_ref *r = g->g.backend_client_cert;
	const char *msg = NULL, *reason = "InvalidClientCertificateRef";

	if (!r)
		return;
	g->has_refs_cond = true;
	if (strcmp(r->group, "") != 0 || strcmp(r->kind, "Secret") != 0) {
		msg = rc_printf(c, "clientCertificateRef: %s is not a Secret", r->kind);
	} else if (!rc_grant_allows(c, GW_GROUP, "Gateway", g->g.obj->ns, "", "Secret", r->ns,
				    r->name)) {
		reason = "RefNotPermitted";
		msg = rc_printf(c, "clientCertificateRef: Secret %s/%s needs a ReferenceGrant",
				r->ns, r->name);
	} else {
		const struct gw_object *s = gw_objset_get(c->set, GW_K_SECRET, r->ns, r->name);
		char *crt = s ? gw_secret_data(c->sa, s, "tls.crt", NULL) : NULL;
		char *key = s ? gw_secret_data(c->sa, s, "tls.key", NULL) : NULL;
		if (!s)
			msg = rc_printf(c, "clientCertificateRef: Secret %s/%s not found", r->ns,
					r->name);
		else if (!rc_pem_has_cert(crt) || !rc_pem_has_key(key))
			msg = rc_printf(c,
					"clientCertificateRef: Secret %s/%s has no valid PEM "
					"tls.crt and tls.key",
					r->ns, r->name);
		else {
			g->refs_ok = true;
			g->be_cert_pem = crt;
			g->be_key_pem = key;
			return;
		}
	}
	g->refs_ok = false;
	g->refs_reason = reason;
	g->refs_msg = msg;
	diag_add(&c->diag, DIAG_ERROR, g->g.obj->file, g->objname,
		 "spec.tls.backend.clientCertificateRef", "%s", msg);
}

static void gateway_conditions(struct rctx *c, struct rgw *g)
{
	size_t n_ok = 0, n_all = 0;

	for (size_t i = 0; i < g->n_lis; i++, n_all++)
		n_ok += g->lis[i].accepted;
	g->accepted = true;
	g->acc_reason = "Accepted";
	g->acc_msg = "accepted by waygate";
	if (g->g.params) {
		const struct gw_ref *p = g->g.params;
		bool ok = !strcmp(p->group, "") && !strcmp(p->kind, "ConfigMap") &&
			  gw_objset_get(c->set, GW_K_CONFIGMAP, g->g.obj->ns, p->name);
		if (!ok) {
			g->accepted = false;
			g->acc_reason = "InvalidParameters";
			g->acc_msg = rc_printf(c,
					       "infrastructure.parametersRef %s/%s %s is not "
					       "supported",
					       p->group, p->kind, p->name);
			diag_add(&c->diag, DIAG_ERROR, g->g.obj->file, g->objname,
				 "spec.infrastructure.parametersRef", "%s", g->acc_msg);
		}
	}
	if (g->accepted && g->addr_unsupported) {
		g->accepted = false;
		g->acc_reason = "UnsupportedAddress";
		g->acc_msg = "spec.addresses has an address waygate cannot serve";
	}
	if (g->accepted && n_all && n_ok < n_all) {
		g->accepted = n_ok > 0;
		g->acc_reason = "ListenersNotValid";
		g->acc_msg =
			rc_printf(c, "%zu of %zu listeners are not valid", n_all - n_ok, n_all);
	}
	g->programmed = false;
	if (!g->accepted) {
		g->prog_reason = "Invalid";
		g->prog_msg = "the Gateway is not accepted";
	} else if (g->addr_unusable) {
		g->prog_reason = "AddressNotUsable";
		g->prog_msg = "a requested address is outside the address pool or taken";
	} else if (c->pool.valid && !g->n_addrs) {
		g->prog_reason = "AddressNotAssigned";
		g->prog_msg = "no address is free in the address pool";
	} else {
		g->programmed = true;
		g->prog_reason = "Programmed";
		g->prog_msg = "served by waygate";
	}
}

static int cmp_rgw(const void *a, const void *b)
{
	const struct rgw *x = *(const struct rgw *const *)a, *y = *(const struct rgw *const *)b;
	int r = strcmp(x->g.obj->ns, y->g.obj->ns);
	return r ? r : strcmp(x->g.obj->name, y->g.obj->name);
}

int rc_gateways(struct rctx *c)
{
	size_t n;
	const struct gw_object *const *v = gw_objset_list(c->set, GW_K_GATEWAY, &n);

	c->gws = rc_alloc(c, n, sizeof(*c->gws));
	for (size_t i = 0; i < n && c->gws; i++) {
		struct rgw *g = rc_alloc(c, 1, sizeof(*g));
		if (!g)
			return -ENOMEM;
		int rc = gw_decode_gateway(c->a, v[i], &c->diag, &g->g);
		if (rc == -ENOMEM)
			return rc;
		if (rc)
			continue;
		g->cls = gw_map_get(&c->class_map, g->g.class_name);
		if (!g->cls || !g->cls->accepted)
			continue;
		g->key = rc_printf(c, "%s/%s", v[i]->ns, v[i]->name);
		g->objname = rc_objname(c, v[i]);
		if (!g->key || gw_map_put(&c->gateways, g->key, g))
			return -ENOMEM;
		c->gws[c->n_gws++] = g;
	}
	if (c->n_gws)
		qsort(c->gws, c->n_gws, sizeof(*c->gws), cmp_rgw);

	v = gw_objset_list(c->set, GW_K_LISTENERSET, &n);
	c->lss = rc_alloc(c, n, sizeof(*c->lss));
	for (size_t i = 0; i < n && c->lss; i++) {
		struct rls *s = rc_alloc(c, 1, sizeof(*s));
		if (!s)
			return -ENOMEM;
		int rc = gw_decode_listenerset(c->a, v[i], &c->diag, &s->s);
		if (rc == -ENOMEM)
			return rc;
		if (rc || strcmp(s->s.parent.group, GW_GROUP) != 0 ||
		    strcmp(s->s.parent.kind, "Gateway") != 0)
			continue;
		s->gw = gw_map_get(&c->gateways,
				   rc_printf(c, "%s/%s", s->s.parent.ns, s->s.parent.name));
		if (!s->gw)
			continue; /* not a Gateway of ours: not ours to judge */
		s->key = rc_printf(c, "%s/%s", v[i]->ns, v[i]->name);
		s->objname = rc_objname(c, v[i]);
		if (!s->key || gw_map_put(&c->listenersets, s->key, s))
			return -ENOMEM;
		c->lss[c->n_lss++] = s;
	}
	if (c->n_lss)
		qsort(c->lss, c->n_lss, sizeof(*c->lss), cmp_rls_age);

	for (size_t i = 0; i < c->n_gws; i++) {
		struct rgw *g = c->gws[i];
		g->n_lis = g->g.n_listeners;
		g->lis = make_listeners(c, g->g.listeners, g->n_lis, g, NULL);
		if (c->err)
			return c->err;
		backend_client_cert(c, g);
	}
	for (size_t i = 0; i < c->n_lss; i++) {
		struct rls *s = c->lss[i];
		struct rgw *g = s->gw;
		if (!rc_ns_allowed(c, g->g.allowed_listeners, &g->g.allowed_listeners_sel,
				   g->g.obj->ns, s->s.obj->ns)) {
			s->acc_reason = "NotAllowed";
			s->acc_msg = "the parent Gateway's allowedListeners does not select this "
				     "namespace";
			s->prog_reason = "NotAllowed";
			continue;
		}
		s->n_lis = s->s.n_listeners;
		s->lis = make_listeners(c, s->s.listeners, s->n_lis, g, s);
		if (c->err || gw_vec_push(&g->sets, c->a, s))
			return -ENOMEM;
	}
	for (size_t i = 0; i < c->n_gws; i++) {
		struct rgw *g = c->gws[i];
		struct gw_vec all = {0};
		for (size_t j = 0; j < g->n_lis; j++)
			if (gw_vec_push(&all, c->a, &g->lis[j]))
				return -ENOMEM;
		for (size_t k = 0; k < g->sets.n; k++) {
			struct rls *s = g->sets.v[k];
			for (size_t j = 0; j < s->n_lis; j++)
				if (gw_vec_push(&all, c->a, &s->lis[j]))
					return -ENOMEM;
		}
		find_conflicts(c, (struct rlis **)all.v, all.n);
		for (size_t k = 0; k < g->sets.n; k++) {
			struct rls *s = g->sets.v[k];
			size_t ok = 0;
			for (size_t j = 0; j < s->n_lis; j++)
				ok += listener_usable(&s->lis[j]);
			if (s->n_lis && !ok) {
				s->acc_reason = s->prog_reason = "ListenersNotValid";
				s->acc_msg = "no listener of this ListenerSet is valid";
				continue;
			}
			s->accepted = s->programmed = true;
			s->acc_reason = "Accepted";
			s->prog_reason = "Programmed";
			s->acc_msg = "attached to its Gateway";
			g->attached_sets++;
		}
	}
	assign_addresses(c);
	for (size_t i = 0; i < c->n_gws; i++) {
		struct rgw *g = c->gws[i];
		gateway_conditions(c, g);
		for (size_t j = 0; j < g->n_lis; j++)
			g->lis[j].programmed = g->programmed && g->lis[j].accepted;
		for (size_t k = 0; k < g->sets.n; k++) {
			struct rls *s = g->sets.v[k];
			if (!g->programmed && s->accepted) {
				s->programmed = false;
				s->prog_reason = "Pending";
			}
			for (size_t j = 0; j < s->n_lis; j++)
				s->lis[j].programmed = s->programmed && s->lis[j].accepted;
		}
	}
	/* Listeners that terminate TLS and have no usable certificate, or
	 * whose refs failed entirely, are not programmed. */
	for (size_t i = 0; i < c->n_gws; i++) {
		struct rgw *g = c->gws[i];
		for (size_t j = 0; j < g->n_lis; j++) {
			struct rlis *li = &g->lis[j];
			bool needs_cert = li->proto == SNAP_P_HTTPS ||
					  (li->proto == SNAP_P_TLS &&
					   strcmp(li->l->tls_mode, "Passthrough") != 0);
			if (needs_cert && !li->n_certs)
				li->programmed = false;
			if (li->n_sk == 0)
				li->programmed = false;
		}
		for (size_t k = 0; k < g->sets.n; k++) {
			struct rls *s = g->sets.v[k];
			for (size_t j = 0; j < s->n_lis; j++) {
				struct rlis *li = &s->lis[j];
				bool needs_cert = li->proto == SNAP_P_HTTPS ||
						  (li->proto == SNAP_P_TLS &&
						   strcmp(li->l->tls_mode, "Passthrough") != 0);
				if ((needs_cert && !li->n_certs) || li->n_sk == 0)
					li->programmed = false;
			}
		}
	}
	return c->err;
}
