/* SPDX-License-Identifier: MIT */
/*
 * policy.c: BackendTLSPolicy. Resolves each policy's CA references
 * (ConfigMap or Secret ca.crt in the policy's namespace, or the system's
 * well-known CAs), its hostname and subjectAltNames into the snapshot's
 * upstream TLS settings, and settles conflicts: among policies that target
 * the same Service (and the same sectionName), the oldest wins and the others
 * are Conflicted. The Gateways through which a policy is used (its
 * ancestors) are recorded by route.c as routes attach. Control thread only.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/str.h"
#include "gwapi/reconcile_int.h"

static void resolve_policy(struct rctx *c, struct rpolicy *p)
{
	const struct gw_btlspolicy *bp = &p->p;
	size_t valid = 0, len = 0;
	char *pem = NULL;

	p->accepted = true;
	p->acc_reason = "Accepted";
	p->acc_msg = "accepted by waygate";
	p->resolved = true;
	p->ref_reason = "ResolvedRefs";
	p->ref_msg = "all references resolved";
	for (size_t i = 0; i < bp->n_ca_refs; i++) {
		const struct gw_ref *r = &bp->ca_refs[i];
		bool cm = !strcmp(r->kind, "ConfigMap"), sec = !strcmp(r->kind, "Secret");
		const char *data = NULL;
		if (strcmp(r->group, "") != 0 || (!cm && !sec)) {
			if (p->resolved) {
				p->resolved = false;
				p->ref_reason = "InvalidKind";
				p->ref_msg = rc_printf(c,
						       "caCertificateRefs[%zu]: kind %s is not "
						       "supported",
						       i, r->kind);
			}
			continue;
		}
		const struct gw_object *o = gw_objset_get(c->set, cm ? GW_K_CONFIGMAP : GW_K_SECRET,
							  bp->obj->ns, r->name);
		if (o)
			data = cm ? gw_configmap_data(o, "ca.crt")
				  : gw_secret_data(c->a, o, "ca.crt", NULL);
		if (!rc_pem_has_cert(data)) {
			if (p->resolved) {
				p->resolved = false;
				p->ref_reason = "InvalidCACertificateRef";
				p->ref_msg =
					rc_printf(c, "caCertificateRefs[%zu]: %s %s %s", i, r->kind,
						  r->name, o ? "has no PEM ca.crt" : "not found");
			}
			continue;
		}
		size_t dl = strlen(data);
		char *np = arena_alloc(c->sa, len + dl + 2);
		if (!np) {
			c->err = -ENOMEM;
			return;
		}
		if (len)
			memcpy(np, pem, len);
		memcpy(np + len, data, dl);
		len += dl;
		if (np[len - 1] != '\n')
			np[len++] = '\n';
		np[len] = '\0';
		pem = np;
		valid++;
	}
	bool system = bp->well_known && !strcmp(bp->well_known, "System");
	if (bp->well_known && !system && p->resolved) {
		p->resolved = false;
		p->ref_reason = "InvalidCACertificateRef";
		p->ref_msg =
			rc_printf(c, "wellKnownCACertificates %s is not supported", bp->well_known);
	}
	if (!p->resolved)
		diag_add(&c->diag, DIAG_ERROR, bp->obj->file, p->objname,
			 "spec.validation.caCertificateRefs", "%s", p->ref_msg);
	/* Any invalid CA reference makes the policy unusable: a backend must
	 * never be reached with weaker verification than the user asked for. */
	if (!p->resolved || (!valid && !system)) {
		p->accepted = false;
		p->acc_reason = "NoValidCACertificate";
		p->acc_msg = "no valid CA certificate to verify the backend";
		return;
	}
	if (!bp->hostname || !gw_hostname_is_valid(bp->hostname, false)) {
		p->accepted = false;
		p->acc_reason = "Invalid";
		p->acc_msg = "validation.hostname must be a valid host name";
		return;
	}
	struct snap_backend_tls *t = rc_salloc(c, 1, sizeof(*t));
	if (!t)
		return;
	t->sni = rc_sdup(c, bp->hostname);
	t->ca_pem = pem;
	t->use_system_cas = system;
	t->sans = rc_salloc(c, bp->n_sans, sizeof(char *));
	for (size_t i = 0; i < bp->n_sans && t->sans; i++)
		t->sans[t->n_sans++] = rc_sdup(c, bp->sans[i].value);
	p->tls = t;
}

static int cmp_policy_age(const void *a, const void *b)
{
	const struct rpolicy *x = *(const struct rpolicy *const *)a;
	const struct rpolicy *y = *(const struct rpolicy *const *)b;
	return rc_age_cmp(x->p.obj, y->p.obj);
}

int rc_policies(struct rctx *c)
{
	size_t n;
	const struct gw_object *const *v = gw_objset_list(c->set, GW_K_BACKENDTLSPOLICY, &n);

	c->pols = rc_alloc(c, n, sizeof(*c->pols));
	for (size_t i = 0; i < n && c->pols; i++) {
		struct rpolicy *p = rc_alloc(c, 1, sizeof(*p));
		if (!p)
			return -ENOMEM;
		int rc = gw_decode_btlspolicy(c->a, v[i], &c->diag, &p->p);
		if (rc == -ENOMEM)
			return rc;
		if (rc)
			continue;
		p->objname = rc_objname(c, v[i]);
		resolve_policy(c, p);
		c->pols[c->n_pols++] = p;
	}
	if (c->n_pols)
		qsort(c->pols, c->n_pols, sizeof(*c->pols), cmp_policy_age);
	/* Index by target Service, oldest first; a newer policy for the same
	 * Service and sectionName as an older one is Conflicted. */
	for (size_t i = 0; i < c->n_pols; i++) {
		struct rpolicy *p = c->pols[i];
		for (size_t t = 0; t < p->p.n_targets; t++) {
			const struct gw_ref *r = &p->p.targets[t];
			if (strcmp(r->group, "") != 0 || strcmp(r->kind, "Service") != 0)
				continue;
			void **slot = gw_map_slot(&c->policies,
						  rc_printf(c, "%s/%s", p->p.obj->ns, r->name));
			if (!slot)
				return -ENOMEM;
			if (!*slot && !(*slot = rc_alloc(c, 1, sizeof(struct gw_vec))))
				return -ENOMEM;
			struct gw_vec *vec = *slot;
			struct rpolicy *winner = NULL;
			for (size_t k = 0; k < vec->n && !winner; k += 2) {
				struct rpolicy *o = vec->v[k];
				const struct gw_ref * or = vec->v[k + 1];
				if (o != p && cstr_eq(or->section, r->section))
					winner = o;
			}
			if (winner) {
				/* It shows the winner's ancestors with Conflicted. */
				if (gw_vec_push(&winner->shadowed, c->a, p))
					return -ENOMEM;
				p->accepted = false;
				p->acc_reason = "Conflicted";
				p->acc_msg =
					rc_printf(c,
						  "an older BackendTLSPolicy targets Service %s "
						  "%s",
						  r->name, r->section ? r->section : "");
				continue;
			}
			if (gw_vec_push(vec, c->a, p) ||
			    gw_vec_push(vec, c->a, (void *)(uintptr_t)r))
				return -ENOMEM;
		}
	}
	return c->err;
}

struct rpolicy *rc_policy_for(struct rctx *c, const char *ns, const char *svc,
			      const char *port_name)
{
	struct rpolicy *whole = NULL;

	if (!c->policies.n)
		return NULL;
	struct gw_vec *vec = gw_map_get(&c->policies, rc_cat(c, c->a, ns, '/', svc));

	for (size_t k = 0; vec && k < vec->n; k += 2) {
		struct rpolicy *p = vec->v[k];
		const struct gw_ref *r = vec->v[k + 1];
		if (r->section && port_name && !strcmp(r->section, port_name))
			return p; /* a policy naming the port wins over one for the Service */
		if (!r->section && !whole)
			whole = p;
	}
	return whole;
}

void rc_policy_ancestor(struct rctx *c, struct rpolicy *p, struct rgw *g)
{
	for (size_t i = 0; i < p->ancestors.n; i++)
		if (p->ancestors.v[i] == g)
			return;
	if (gw_vec_push(&p->ancestors, c->a, g))
		c->err = -ENOMEM;
	for (size_t i = 0; i < p->shadowed.n; i++)
		rc_policy_ancestor(c, p->shadowed.v[i], g);
}
