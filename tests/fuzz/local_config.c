/* SPDX-License-Identifier: MIT */
/*
 * local_config.c: fuzz target for the local configuration reader (the
 * Gateway API YAML of `waygate run --config FILE`): kube_load_local() on a
 * file in a private temporary folder (fuzz_file.h), then reconcile over
 * whatever was accepted, as local mode does. Invariants: the loader's
 * result agrees with its diagnostics (an error return has an error entry),
 * reconcile returns 0, and reconcile is deterministic. A configuration
 * without errors is loaded twice more through a document cache (as SIGHUP
 * reloads do): both give exactly the objects of the plain load.
 * Built with -fsanitize=fuzzer it is a libFuzzer target; the replay build
 * (mk/fuzz-replay.c) runs it over tests/fuzz/corpus/local_config/.
 */
#include <stdlib.h>
#include <string.h>

#include "core/diag.h"
#include "core/err.h"
#include "gwapi/objset.h"
#include "gwapi/reconcile.h"
#include "kube/kube.h"
#include "proxy/snapshot.h"

#include "fuzz_file.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

/* Loads path through cache; aborts unless it gives what plain holds. */
static void load_cached_same(const char *path, struct kube_local_cache *cache,
			     struct gw_objset *plain)
{
	struct gw_objset *set = gw_objset_new();
	struct diag d = {0};

	if (!set)
		return;
	if (kube_load_local_cached(path, set, &d, cache) != 0)
		abort();
	for (int k = 0; k < GW_K_COUNT; k++) {
		size_t n = 0, m = 0;
		const struct gw_object *const *a = gw_objset_list(plain, (enum gw_kind)k, &n);
		const struct gw_object *const *b = gw_objset_list(set, (enum gw_kind)k, &m);
		if (n != m)
			abort();
		for (size_t i = 0; i < n; i++)
			if (a[i]->json_len != b[i]->json_len ||
			    memcmp(a[i]->json, b[i]->json, a[i]->json_len) != 0)
				abort();
	}
	diag_fini(&d);
	gw_objset_free(set);
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	static const char *const feats[] = {"Gateway", "HTTPRoute", NULL};
	struct gw_options opt = {
		.controller_name = "waygate.dev/gateway-controller",
		.now_ms = 1790000000000ULL,
		.supported_features = feats,
	};
	struct gw_result r1 = {0}, r2 = {0};
	struct diag d = {0};
	struct gw_objset *set;
	const char *path;
	int rc;

	if (size > 65536)
		return 0;
	path = fuzz_file_write(data, size, "config.yaml");
	if (!path)
		return 0;
	set = gw_objset_new();
	if (!set)
		return 0;
	rc = kube_load_local(path, set, &d);
	if (rc == -WG_EINVAL_CONFIG && !d.errors)
		abort();
	if (gw_reconcile(set, &opt, &r1) != 0 || gw_reconcile(set, &opt, &r2) != 0)
		abort();
	if (r1.n_statuses != r2.n_statuses)
		abort();
	for (size_t i = 0; i < r1.n_statuses; i++) {
		const char *a = r1.statuses[i].status_json, *b = r2.statuses[i].status_json;

		if (!a != !b || (a && strcmp(a, b)))
			abort();
	}
	if (rc == 0) {
		struct kube_local_cache *cache = kube_local_cache_new();
		if (cache) {
			load_cached_same(path, cache, set);
			load_cached_same(path, cache, set); /* served from the cache */
			kube_local_cache_free(cache);
		}
	}
	snap_unref(r1.snap);
	snap_unref(r2.snap);
	gw_result_fini(&r1);
	gw_result_fini(&r2);
	diag_fini(&d);
	gw_objset_free(set);
	return 0;
}
