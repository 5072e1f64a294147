/* SPDX-License-Identifier: MIT */
/* snapshot.h: reference counting of published snapshots (any thread). */
#ifndef WG_PROXY_SNAPSHOT_H
#define WG_PROXY_SNAPSHOT_H

#include "proxy/snapshot_types.h"

void snap_ref(struct snapshot *s);
/* Frees the snapshot's arena when the last reference goes. NULL is fine. */
void snap_unref(struct snapshot *s);

#endif
