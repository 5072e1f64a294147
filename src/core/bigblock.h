/* SPDX-License-Identifier: MIT */
/*
 * bigblock.h: a small cache of large freed blocks. malloc maps every block
 * over its threshold (128 KiB in musl) afresh and unmaps it on free, so a
 * route change that rebuilds megabytes of tables (reconcile, snapshot,
 * routing tables) paid a page fault and a page clearing per 4 KiB, twice
 * over. While keeping is on (cluster mode, where changes come often), freed
 * large blocks are kept here for the next change instead, up to
 * BIGBLOCK_KEEP_BYTES; off (the default), they go straight back. Any
 * thread (a mutex: only large blocks come here).
 */
#ifndef WG_CORE_BIGBLOCK_H
#define WG_CORE_BIGBLOCK_H

#include <stdbool.h>
#include <stddef.h>

#define BIGBLOCK_MIN (128u * 1024)            /* smaller ones: plain malloc */
#define BIGBLOCK_KEEP_BYTES (16u * 1024 * 1024) /* kept at most, in all */

/* At least size bytes (size >= BIGBLOCK_MIN), not zeroed; *got says how
 * many (a kept block may be larger). NULL on ENOMEM. */
void *bigblock_alloc(size_t size, size_t *got);
/* Gives back a block of bigblock_alloc's *got bytes (NULL ok). */
void bigblock_free(void *p, size_t size);
/* Keeping on or off; off frees every kept block. */
void bigblock_keep(bool on);
/* Bytes kept now. */
size_t bigblock_kept(void);

#endif
