/* SPDX-License-Identifier: MIT */
/*
 * build_info.h: what the build says about this binary, with the defaults
 * of a plain `make`. The Makefile passes WG_VERSION, WG_BUILD, WG_ARCH and
 * WG_MUSL_VERSION (the musl version from deps/deps.lock); WG_BOARD_* come
 * from board/<name>/board.mk.
 */
#ifndef WG_CLI_BUILD_INFO_H
#define WG_CLI_BUILD_INFO_H

#ifndef WG_VERSION
#define WG_VERSION "0.0.0"
#endif
#ifndef WG_BUILD
#define WG_BUILD "unknown"
#endif
#ifndef WG_ARCH
#define WG_ARCH "unknown"
#endif
#ifndef WG_MUSL_VERSION
#define WG_MUSL_VERSION "unknown"
#endif
#ifndef WG_BOARD_NAME
#define WG_BOARD_NAME "generic"
#endif
/* worker threads (0 = one per online CPU) */
#ifndef WG_BOARD_WORKERS
#define WG_BOARD_WORKERS 0
#endif
/* the box's connection cap (0 = the proxy's default) */
#ifndef WG_BOARD_MAX_CONNS
#define WG_BOARD_MAX_CONNS 0
#endif
/* 1: ChaCha20-Poly1305 before AES-GCM (cores without AES instructions) */
#ifndef WG_BOARD_CIPHER_PREF_CHACHA
#define WG_BOARD_CIPHER_PREF_CHACHA 0
#endif
/* The user to become after the first bind ("" = stay as started). */
#ifndef WG_BOARD_USER
#define WG_BOARD_USER ""
#endif
/* The board's limits, in the limits file's syntax (';' between settings). */
#ifndef WG_BOARD_LIMITS
#define WG_BOARD_LIMITS ""
#endif

#endif
