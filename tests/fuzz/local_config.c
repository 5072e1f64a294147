/* SPDX-License-Identifier: MIT */
/*
 * local_config.c: fuzz target for the local configuration reader (the
 * Gateway API YAML of `waygate run --config FILE`): kube_load_local() on a
 * file in a private temporary folder (fuzz_file.h), then reconcile over
 * whatever was accepted, as local mode does. Invariants: the loader's
 * result agrees with its diagnostics (an error return has an error entry),
 * reconcile returns 0, and reconcile is deterministic.
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
	snap_unref(r1.snap);
	snap_unref(r2.snap);
	gw_result_fini(&r1);
	gw_result_fini(&r2);
	diag_fini(&d);
	gw_objset_free(set);
	return 0;
}
