/* SPDX-License-Identifier: MIT */
/*
 * status.c: status conditions as reconcile computes them and their JSON
 * form. A condition keeps its lastTransitionTime from the object's current
 * status when its status, reason and observedGeneration are unchanged, so
 * that equal input renders byte-equal status and the status writer sends
 * nothing. It does not decide which conditions apply (reconcile.c does).
 * Control thread only.
 */
#include <string.h>

#include "gwapi/internal.h"

void gw_cond_set(struct gw_conds *c, const char *type, bool status, const char *reason,
		 const char *msg)
{
	int i;

	for (i = 0; i < c->n; i++)
		if (!strcmp(c->v[i].type, type))
			break;
	if (i == c->n) {
		if (c->n == GW_MAX_CONDS)
			return;
		c->n++;
	}
	c->v[i].type = type;
	c->v[i].status = status;
	c->v[i].reason = reason;
	c->v[i].msg = msg ? msg : "";
}

const struct gw_cond *gw_cond_get(const struct gw_conds *c, const char *type)
{
	for (int i = 0; i < c->n; i++)
		if (!strcmp(c->v[i].type, type))
			return &c->v[i];
	return NULL;
}

/* lastTransitionTime of the matching previous condition, or NULL. */
static const char *prev_time(yyjson_val *prev, const struct gw_cond *cond, int64_t gen)
{
	size_t idx, max;
	yyjson_val *pc;

	yyjson_arr_foreach(prev, idx, max, pc)
	{
		const char *t = yyjson_get_str(yyjson_obj_get(pc, "type"));
		if (!t || strcmp(t, cond->type) != 0)
			continue;
		const char *st = yyjson_get_str(yyjson_obj_get(pc, "status"));
		const char *rs = yyjson_get_str(yyjson_obj_get(pc, "reason"));
		yyjson_val *og = yyjson_obj_get(pc, "observedGeneration");
		if (!st || strcmp(st, cond->status ? "True" : "False") != 0)
			return NULL;
		if (!rs || strcmp(rs, cond->reason) != 0)
			return NULL;
		if (!yyjson_is_int(og) || yyjson_get_sint(og) != gen)
			return NULL;
		return yyjson_get_str(yyjson_obj_get(pc, "lastTransitionTime"));
	}
	return NULL;
}

yyjson_mut_val *gw_conds_json(yyjson_mut_doc *doc, const struct gw_conds *c, int64_t gen,
			      yyjson_val *prev, uint64_t now_ms)
{
	/* One reconcile formats the same clock thousands of times. */
	static __thread uint64_t cached_ms = UINT64_MAX;
	static __thread char now[32];
	yyjson_mut_val *arr = yyjson_mut_arr(doc);

	if (!arr)
		return NULL;
	if (cached_ms != now_ms) {
		gw_time_format(now_ms, now, sizeof(now));
		cached_ms = now_ms;
	}
	for (int i = 0; i < c->n; i++) {
		const struct gw_cond *cd = &c->v[i];
		yyjson_mut_val *o = yyjson_mut_arr_add_obj(doc, arr);
		const char *t = prev_time(prev, cd, gen);
		if (!o)
			return NULL;
		yyjson_mut_obj_add_str(doc, o, "type", cd->type);
		yyjson_mut_obj_add_str(doc, o, "status", cd->status ? "True" : "False");
		yyjson_mut_obj_add_int(doc, o, "observedGeneration", gen);
		yyjson_mut_obj_add_strcpy(doc, o, "lastTransitionTime", t ? t : now);
		yyjson_mut_obj_add_str(doc, o, "reason", cd->reason);
		yyjson_mut_obj_add_str(doc, o, "message", cd->msg);
	}
	return arr;
}
