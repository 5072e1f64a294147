/* SPDX-License-Identifier: MIT */
/*
 * util.c: flag parsing, address parsing and diagnostics printing shared by
 * the commands. Runs on the main thread before anything starts.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/internal.h"
#include "core/log.h"
#include "core/str.h"

int flag_next(int argc, char **argv, int *i, const struct flag_spec *specs, const char **name,
	      const char **value)
{
	static char namebuf[64];
	const char *arg, *eq;
	size_t len;

	*name = NULL;
	*value = NULL;
	if (*i >= argc)
		return 0;
	arg = argv[(*i)++];
	if (strncmp(arg, "--", 2) != 0 || arg[2] == '\0') {
		*value = arg;
		return 1;
	}
	arg += 2;
	eq = strchr(arg, '=');
	len = eq ? (size_t)(eq - arg) : strlen(arg);
	if (len >= sizeof(namebuf))
		len = sizeof(namebuf) - 1;
	memcpy(namebuf, arg, len);
	namebuf[len] = '\0';
	*name = namebuf;
	for (const struct flag_spec *s = specs; s->name; s++) {
		if (strcmp(s->name, namebuf) != 0)
			continue;
		if (!s->takes_value) {
			if (eq)
				return -EINVAL;
			return 1;
		}
		if (eq) {
			*value = eq + 1;
			return 1;
		}
		if (*i >= argc)
			return -EINVAL;
		*value = argv[(*i)++];
		return 1;
	}
	return -ENOENT;
}

int parse_host_port(const char *s, char *host, size_t hostsz, uint16_t *port)
{
	const char *colon;
	uint64_t p;

	if (s[0] == '[') {
		const char *end = strchr(s, ']');
		if (!end || end[1] != ':' || (size_t)(end - s - 1) >= hostsz)
			return -EINVAL;
		memcpy(host, s + 1, (size_t)(end - s - 1));
		host[end - s - 1] = '\0';
		colon = end + 1;
	} else {
		colon = strrchr(s, ':');
		if (!colon || (size_t)(colon - s) >= hostsz)
			return -EINVAL;
		memcpy(host, s, (size_t)(colon - s));
		host[colon - s] = '\0';
		if (!host[0])
			str_lcpy(host, "0.0.0.0", hostsz);
	}
	if (str_to_u64(str_c(colon + 1), 65535, &p))
		return -EINVAL;
	*port = (uint16_t)p;
	return 0;
}

void diag_log(const struct diag *d, enum log_level level, const char *event)
{
	char line[1400];

	for (size_t i = 0; i < d->n; i++)
		log_msg(level, "event=%s detail=%s", event,
			log_q(diag_format(&d->v[i], line, sizeof(line))));
}

void diag_print(const struct diag *d, const char *prog)
{
	static const char *const sev[] = {"error", "warning", "note"};
	char line[1400];

	for (size_t i = 0; i < d->n; i++)
		fprintf(stderr, "%s: %s: %s\n", prog, sev[d->v[i].sev],
			diag_format(&d->v[i], line, sizeof(line)));
}
