/* SPDX-License-Identifier: MIT */
/*
 * kubeconfig.c: fuzz target for the kubeconfig reader (libyaml, then the
 * reduction to one context). kube/ has no in-memory entry point, so the
 * input is written to a file in a private temporary folder
 * (fuzz_file.h) and loaded with kube_config_load(), once for the
 * current-context and once for a context named "test". Invariants: a
 * failure leaves *out NULL and says why in the diagnostics; a success
 * gives a server URL, a context and an auth kind.
 * Built with -fsanitize=fuzzer it is a libFuzzer target; the replay build
 * (mk/fuzz-replay.c) runs it over tests/fuzz/corpus/kubeconfig/.
 */
#include <stdlib.h>
#include <string.h>

#include "core/diag.h"
#include "kube/kube.h"

#include "fuzz_file.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

static void load(const char *path, const char *context)
{
	struct kube_config *cfg = NULL;
	struct diag d = {0};
	int rc = kube_config_load(path, context, &cfg, &d);

	if (rc) {
		if (cfg || !d.errors)
			abort();
	} else {
		if (!cfg || !kube_config_server(cfg) || !kube_config_context(cfg) ||
		    !kube_config_auth_kind(cfg))
			abort();
		(void)kube_config_namespace(cfg);
		(void)kube_config_insecure(cfg);
		kube_config_free(cfg);
	}
	for (size_t i = 0; i < d.n; i++) {
		char buf[1024];

		diag_format(&d.v[i], buf, sizeof(buf));
	}
	diag_fini(&d);
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	const char *path;

	if (size > 65536)
		return 0;
	path = fuzz_file_write(data, size, "kubeconfig");
	if (!path)
		return 0;
	load(path, NULL);
	load(path, "test");
	return 0;
}
