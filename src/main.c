/* SPDX-License-Identifier: MIT */
/*
 * main.c: process entry. Finds the command named by argv[1] and hands the
 * rest of the command line to it; nothing else lives here.
 */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

static const struct command {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *help; /* NULL: a diagnostic command left out of the usage */
} commands[] = {
	{"run", cmd_run, "serve: --kubeconfig FILE [--context NAME] | --config PATH"},
	{"check", cmd_check, "validate a configuration and report what would be served"},
	{"echo", cmd_echo, "diagnostic backend: --listen ADDR:PORT [--name NAME]"},
	{"convert", cmd_convert, "convert v1alpha1 manifests to gateway.networking.k8s.io/v1"},
	{"routes", cmd_routes, "print the routing table of a stored revision"},
	{"passwd", cmd_passwd, "set the UI admin password"},
	{"version", cmd_version, "version, build and linked library versions"},
	{"kube-debug", cmd_kube_debug, NULL},
};

static void usage(FILE *f)
{
	fprintf(f, "usage: waygate COMMAND [OPTIONS]\n\ncommands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (commands[i].help)
			fprintf(f, "  %-8s %s\n", commands[i].name, commands[i].help);
	fprintf(f, "\n'waygate COMMAND --help' describes each command's options.\n");
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "--version"))
		return cmd_version(argc - 1, argv + 1);
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (!strcmp(argv[1], commands[i].name))
			return commands[i].fn(argc - 1, argv + 1);
	fprintf(stderr, "waygate: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return 2;
}
