/* SPDX-License-Identifier: MIT */
/*
 * privdrop.h: giving up root after the first bind (privdrop.c). Private to
 * cli/.
 */
#ifndef WG_CLI_PRIVDROP_H
#define WG_CLI_PRIVDROP_H

#include <sys/types.h>

#include "core/diag.h"

struct priv_user {
	char name[64];
	uid_t uid;
	gid_t gid;
};

/* Resolves a user name; 0, or -WG_ENOTFOUND with an entry in d. */
int priv_lookup(const char *name, struct priv_user *out, struct diag *d);
/*
 * Hands state_dir to u (owner; folders 0700, files 0600), then becomes u
 * in every thread, keeping only CAP_NET_BIND_SERVICE on the calling thread.
 * Not root, or u is root: nothing changes (logged). 0, or negative with
 * the failure logged (the process must then not go on serving as root).
 */
int priv_drop(const struct priv_user *u, const char *state_dir);

#endif
