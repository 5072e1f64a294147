/* SPDX-License-Identifier: MIT */
/*
 * limits.h: the limits file and the board's defaults (limits.c), read into
 * what proxy_new takes. Private to cli/.
 */
#ifndef WG_CLI_LIMITS_H
#define WG_CLI_LIMITS_H

#include <stdbool.h>
#include <stddef.h>

#include "core/diag.h"
#include "proxy/proxy.h"

/* All-zero is empty: every limit at proxy/'s default. */
struct limits_conf {
	struct proxy_limits box;         /* zero fields: the defaults */
	struct proxy_port_limits *ports; /* owned */
	size_t n_ports;
};

/*
 * Applies the settings in text (lines, or ';'-separated) on top of lc;
 * file names the source in diagnostics ("file:line"). Every bad line is
 * reported in d and leaves lc as it was for that line. 0,
 * -WG_EINVAL_CONFIG, or -ENOMEM.
 */
int limits_parse(struct limits_conf *lc, const char *text, const char *file, struct diag *d);
/* The same for a file; a missing one is fine unless must_exist. */
int limits_load_file(struct limits_conf *lc, const char *path, bool must_exist, struct diag *d);
void limits_conf_fini(struct limits_conf *lc);

#endif
