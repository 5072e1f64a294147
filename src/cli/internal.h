/* SPDX-License-Identifier: MIT */
/*
 * internal.h: helpers shared by the commands in cli/ (flag parsing, loading
 * a local configuration with its generated certificates). Not for other
 * modules.
 */
#ifndef WG_CLI_INTERNAL_H
#define WG_CLI_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/diag.h"
#include "core/log.h"
#include "gwapi/objset.h"

/*
 * A small flag reader: `--name value` and `--name=value`. flag_next()
 * returns the flag name (without the dashes) of argv[*i] and moves *i past
 * it, setting *value to its argument when the flag takes one; NULL at the
 * end or for a positional argument (then *value is that argument).
 * Errors are printed by the caller with the flag's name.
 */
struct flag_spec {
	const char *name;
	bool takes_value;
};
int flag_next(int argc, char **argv, int *i, const struct flag_spec *specs, const char **name,
	      const char **value);

/* Parses "ADDR:PORT" ("[::1]:443", "0.0.0.0:9443", ":8080"). 0 or -EINVAL. */
int parse_host_port(const char *s, char *host, size_t hostsz, uint16_t *port);

/*
 * Local mode: loads the YAML at path into set (kube_load_local), then gives
 * every Secret annotated waygate.dev/generate-self-signed that has no data
 * a self-signed certificate for the names in the annotation, generated once
 * and kept under state_dir/certs/ (0600), so the same certificate is served
 * across restarts. Problems go into d. 0, or negative when the
 * configuration has errors. cache (may be NULL) keeps what each document
 * gave, so the next load parses only changed documents.
 */
struct kube_local_cache;
int local_config_load(const char *path, const char *state_dir, struct gw_objset *set,
		      struct kube_local_cache *cache, struct diag *d);

/* Lists every resource of the cluster in the kubeconfig once into set
 * (no watches kept, no status written), waiting at most timeout_ms.
 * 0, or negative with entries in d naming the file, context and reason. */
int cluster_read_once(const char *kubeconfig, const char *context, struct gw_objset *set,
		      uint32_t timeout_ms, struct diag *d);

/* Logs every entry of d as one line "event=EVENT detail=..." at level. */
void diag_log(const struct diag *d, enum log_level level, const char *event);

/* Prints every entry of d to stderr, one per line, prefixed with prog. */
void diag_print(const struct diag *d, const char *prog);

/* The Gateway API features this build implements, NULL-terminated: written
 * to GatewayClass status.supportedFeatures. */
extern const char *const wg_supported_features[];

#endif
