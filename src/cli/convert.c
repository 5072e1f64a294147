// SPDX-License-Identifier: MIT
/*
 * convert.c: `waygate convert FILE`: prints the networking.x-k8s.io/v1alpha1
 * manifests of FILE ("-" for stdin) as gateway.networking.k8s.io/v1 YAML on
 * stdout (the conversion itself is kube_convert). Warnings and errors go to
 * stderr naming the file, the object and the field; nothing is printed on
 * stdout unless the whole input converted. Also hosts `kube-debug`, the
 * hidden command the kube/ integration tests drive. Runs on the main thread.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/internal.h"
#include "core/diag.h"
#include "core/err.h"
#include "kube/kube.h"

static int read_all(const char *path, char **out, size_t *len)
{
	FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
	size_t cap = 65536, n = 0;
	char *p;

	if (!f)
		return -errno;
	p = malloc(cap);
	while (p) {
		size_t r;

		if (n + 1 >= cap) {
			char *np = cap < (64u << 20) ? realloc(p, cap * 2) : NULL;

			if (!np) {
				free(p);
				p = NULL;
				break;
			}
			p = np;
			cap *= 2;
		}
		r = fread(p + n, 1, cap - n - 1, f);
		n += r;
		if (r == 0)
			break;
	}
	if (f != stdin)
		fclose(f);
	if (!p)
		return -EFBIG;
	p[n] = 0;
	*out = p;
	*len = n;
	return 0;
}

int cmd_convert(int argc, char **argv)
{
	struct diag d = {0};
	const char *file = NULL;
	char *text = NULL, *outbuf = NULL;
	size_t len = 0, outlen = 0;
	FILE *mem;
	int rc;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			printf("usage: waygate convert FILE\n"
			       "Prints the networking.x-k8s.io/v1alpha1 manifests in FILE (- for "
			       "stdin)\n"
			       "as gateway.networking.k8s.io/v1 YAML. HTTPRoute parentRefs are "
			       "derived\n"
			       "from the Gateways in the same input whose listeners select the "
			       "route.\n");
			return 0;
		}
		if (file || (argv[i][0] == '-' && argv[i][1])) {
			fprintf(stderr,
				"waygate convert: unexpected argument '%s'\n"
				"usage: waygate convert FILE\n",
				argv[i]);
			return 2;
		}
		file = argv[i];
	}
	if (!file) {
		fprintf(stderr, "usage: waygate convert FILE\n");
		return 2;
	}
	rc = read_all(file, &text, &len);
	if (rc) {
		fprintf(stderr, "waygate convert: %s: %s\n", file, err_str(rc));
		return 2;
	}
	mem = open_memstream(&outbuf, &outlen);
	if (!mem) {
		free(text);
		fprintf(stderr, "waygate convert: out of memory\n");
		return 1;
	}
	rc = kube_convert(text, len, strcmp(file, "-") ? file : "(stdin)", mem, &d);
	fclose(mem);
	diag_print(&d, "waygate convert");
	if (rc == 0 && outlen)
		fwrite(outbuf, 1, outlen, stdout);
	free(outbuf);
	free(text);
	diag_fini(&d);
	if (rc == -ENOMEM)
		return 1;
	return rc ? 2 : 0;
}

int cmd_kube_debug(int argc, char **argv)
{
	return kube_debug_main(argc, argv);
}
