/* SPDX-License-Identifier: MIT */
/*
 * version.c: `waygate version` prints waygate's version and build, the
 * target architecture and board, and the version of every library linked
 * into the binary, one per line, to stdout. Runs on the main thread before
 * anything else starts; it opens no files and takes no options.
 *
 * This file is the documented exception to STYLE.md's rule that each
 * library's types stay inside one module: it includes every library's
 * header, but only to read version strings; no library object is created
 * and no library type leaves this file.
 *
 * WG_VERSION, WG_BUILD, WG_ARCH and WG_MUSL_VERSION come from the Makefile
 * (the musl version from deps/deps.lock); WG_BOARD_* from board/<name>/board.mk
 * when the binary is built for a board.
 */
#include <stdio.h>
#include <string.h>

#include <mbedtls/version.h>
#include <microhttpd.h>
#include <nghttp2/nghttp2.h>
#include <sqlite3.h>
#include <yaml.h>
#include <yyjson.h>

#include "cli/build_info.h"
#include "cli/cli.h"


#define STR_(x) #x
#define STR(x) STR_(x)

int cmd_version(int argc, char **argv)
{
	char mbedtls[32];
	const nghttp2_info *h2 = nghttp2_version(0);

	if (argc > 1 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
		printf("usage: waygate version\n");
		return 0;
	}
	if (argc > 1) {
		fprintf(stderr, "waygate version: unexpected argument '%s'\n", argv[1]);
		return 2;
	}

	mbedtls_version_get_string_full(mbedtls); /* at most 18 bytes */
	printf("waygate %s (%s)\n", WG_VERSION, WG_BUILD);
	printf("arch: %s\n", WG_ARCH);
	printf("board: %s (workers %s, connections %s, TLS %s first, runs as %s)\n", WG_BOARD_NAME,
	       WG_BOARD_WORKERS ? STR(WG_BOARD_WORKERS) : "one per core",
	       WG_BOARD_MAX_CONNS ? STR(WG_BOARD_MAX_CONNS) : "16384",
	       WG_BOARD_CIPHER_PREF_CHACHA ? "ChaCha20-Poly1305" : "AES-GCM",
	       WG_BOARD_USER[0] ? WG_BOARD_USER : "the starting user");
	if (WG_BOARD_LIMITS[0])
		printf("board limits: %s\n", WG_BOARD_LIMITS);
	printf("musl: %s\n", WG_MUSL_VERSION);
	printf("mbedtls: %s\n", mbedtls);
	printf("libmicrohttpd: %s\n", MHD_get_version());
	printf("sqlite: %s (%s)\n", sqlite3_libversion(), sqlite3_sourceid());
	printf("libyaml: %s\n", yaml_get_version_string());
	printf("nghttp2: %s\n", h2 ? h2->version_str : "unknown");
	printf("yyjson: %s\n", YYJSON_VERSION_STRING);
	return 0;
}
