/* SPDX-License-Identifier: MIT */
/*
 * reconcile.c: fuzz target for reconcile over a small object set. The input
 * is JSON lines: each line one Kubernetes object (any kind the model knows).
 * A line starting with '-' deletes the object the rest of the line decodes
 * to, after the first reconcile, so replacements and deletions run too.
 * Every accepted object goes into one set; reconcile runs with and without
 * an address pool, twice each. Invariants: reconcile returns 0 (problems go
 * into statuses and diagnostics, never a failure), equal input gives
 * byte-equal statuses, every status names its object, the snapshot renders
 * as JSON.
 * Built with -fsanitize=fuzzer it is a libFuzzer target; the replay build
 * (mk/fuzz-replay.c) runs it over tests/fuzz/corpus/reconcile/.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "gwapi/objset.h"
#include "gwapi/reconcile.h"
#include "proxy/snapshot.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

#define MAX_OBJECTS 64

static void run(struct gw_objset *set, const char *pool)
{
	static const char *const feats[] = {"Gateway", "HTTPRoute", "GRPCRoute", "TLSRoute", NULL};
	struct gw_options opt = {
		.controller_name = "waygate.dev/gateway-controller",
		.address_pool = pool,
		.now_ms = 1790000000000ULL,
		.supported_features = feats,
	};
	struct gw_result r1 = {0}, r2 = {0};

	if (gw_reconcile(set, &opt, &r1) != 0 || gw_reconcile(set, &opt, &r2) != 0)
		abort();
	if (r1.n_statuses != r2.n_statuses)
		abort();
	for (size_t i = 0; i < r1.n_statuses; i++) {
		const struct gw_status *a = &r1.statuses[i], *b = &r2.statuses[i];

		if (!a->name || !a->ns || !b->name || a->kind != b->kind || strcmp(a->name, b->name))
			abort();
		if (!a->status_json != !b->status_json ||
		    (a->status_json && strcmp(a->status_json, b->status_json)))
			abort();
	}
	if (r1.snap) {
		char *j = gw_snapshot_to_json(r1.snap);

		free(j);
	}
	snap_unref(r1.snap);
	snap_unref(r2.snap);
	gw_result_fini(&r1);
	gw_result_fini(&r2);
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	const char *p = (const char *)data, *end = p + size;
	struct gw_object *del[MAX_OBJECTS];
	size_t n_del = 0, n = 0;
	struct gw_objset *set;

	if (size > 65536)
		return 0;
	set = gw_objset_new();
	if (!set)
		return 0;
	while (p < end && n < MAX_OBJECTS) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *le = nl ? nl : end;
		bool is_del = p < le && *p == '-';
		struct gw_object *o;

		o = gw_object_parse(-1, p + is_del, (size_t)(le - p - is_del), NULL, 0);
		if (o) {
			if (is_del)
				del[n_del++] = o;
			else
				gw_objset_put(set, o);
			n++;
		}
		p = le + 1;
	}
	run(set, NULL);
	if (n_del) {
		for (size_t i = 0; i < n_del; i++) {
			gw_objset_del(set, del[i]->kind, del[i]->ns, del[i]->name);
			gw_object_unref(del[i]);
		}
		run(set, NULL);
	}
	run(set, "10.9.0.0/30");
	gw_objset_free(set);
	return 0;
}
