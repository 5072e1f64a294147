/* SPDX-License-Identifier: MIT */
/*
 * cli.h: one entry point per command. Each returns the process exit code:
 * 0 ok, 1 runtime failure, 2 usage or invalid configuration.
 */
#ifndef WG_CLI_CLI_H
#define WG_CLI_CLI_H

int cmd_run(int argc, char **argv);
int cmd_check(int argc, char **argv);
int cmd_version(int argc, char **argv);
int cmd_echo(int argc, char **argv);
int cmd_convert(int argc, char **argv);
int cmd_routes(int argc, char **argv);
int cmd_passwd(int argc, char **argv);
/* Hidden: drives the kube/ watch client for its integration tests. */
int cmd_kube_debug(int argc, char **argv);

#endif
