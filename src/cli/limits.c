/* SPDX-License-Identifier: MIT */
/*
 * limits.c: the limits file (`--limits`, default /etc/waygate/limits.conf)
 * and the board's built-in defaults, which use the same syntax. One setting
 * per line, for the whole box or for one listener port:
 *
 *   # a comment
 *   max-body-bytes 64M
 *   port 8080 max-body-bytes 1M
 *   port 8080 head-timeout 5s
 *
 * Sizes take K, M, G (powers of 1024, also KiB/MiB/GiB); durations need a
 * unit (ms, s, m); the caps also take "unlimited". The board's string may
 * separate settings with ';'. Later settings override earlier ones, so the
 * file overrides the board, and a port's entry overrides the box for that
 * port only. Nothing here applies them: the result is a plain
 * proxy_config fragment handed to proxy_new at start.
 *
 * Control thread, at start only.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/limits.h"
#include "core/err.h"

enum lim_kind { LK_SIZE = 0, LK_COUNT, LK_MS };

struct lim_key {
	const char *name;
	enum lim_kind kind;
	bool unlimited_ok;
	uint64_t min, max;
	size_t off; /* offsetof(struct proxy_limits, field) */
	bool wide;  /* a uint64_t field (else uint32_t) */
};

#define F32(f) offsetof(struct proxy_limits, f), false
#define F64(f) offsetof(struct proxy_limits, f), true
#define DAY_MS (24ull * 3600 * 1000)

static const struct lim_key keys[] = {
	{"max-head-bytes", LK_SIZE, false, 1024, 1 << 20, F32(max_head_bytes)},
	{"max-request-line", LK_SIZE, false, 256, 1 << 20, F32(max_request_line)},
	{"max-header-fields", LK_COUNT, false, 8, 120, F32(max_header_fields)},
	{"head-timeout", LK_MS, false, 1, DAY_MS, F32(head_timeout_ms)},
	{"body-idle-timeout", LK_MS, false, 1, DAY_MS, F32(body_idle_timeout_ms)},
	{"keepalive-timeout", LK_MS, false, 1, DAY_MS, F32(keepalive_timeout_ms)},
	{"connect-timeout", LK_MS, false, 1, DAY_MS, F32(connect_timeout_ms)},
	{"route-timeout", LK_MS, false, 1, DAY_MS, F32(route_timeout_ms)},
	{"max-body-bytes", LK_SIZE, true, 1, UINT64_MAX - 1, F64(max_body_bytes)},
	{"max-connections", LK_COUNT, true, 1, UINT32_MAX - 1, F32(max_connections)},
	{"max-client-connections", LK_COUNT, true, 1, UINT32_MAX - 1, F32(max_conns_per_client)},
};

/* Parses a value of kind k: 0, or -EINVAL with why set. */
static int parse_value(const struct lim_key *k, const char *s, uint64_t *out, const char **why)
{
	char *end;

	if (!strcmp(s, "unlimited")) {
		if (!k->unlimited_ok) {
			*why = "cannot be unlimited";
			return -EINVAL;
		}
		*out = k->wide ? UINT64_MAX : UINT32_MAX;
		return 0;
	}
	if (*s < '0' || *s > '9') {
		*why = "expected a number";
		return -EINVAL;
	}
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno) {
		*why = "number too large";
		return -EINVAL;
	}
	uint64_t mul = 1;
	if (k->kind == LK_SIZE) {
		static const struct {
			const char *suffix;
			uint64_t mul;
		} units[] = {{"", 1},          {"K", 1 << 10}, {"KiB", 1 << 10}, {"M", 1 << 20},
			     {"MiB", 1 << 20}, {"G", 1 << 30}, {"GiB", 1 << 30}};
		size_t i = 0;
		while (i < sizeof(units) / sizeof(units[0]) && strcmp(end, units[i].suffix))
			i++;
		if (i == sizeof(units) / sizeof(units[0])) {
			*why = "expected a size (bytes, or K, M, G)";
			return -EINVAL;
		}
		mul = units[i].mul;
	} else if (k->kind == LK_MS) {
		if (!strcmp(end, "ms"))
			mul = 1;
		else if (!strcmp(end, "s"))
			mul = 1000;
		else if (!strcmp(end, "m"))
			mul = 60000;
		else {
			*why = "expected a duration with its unit (ms, s or m)";
			return -EINVAL;
		}
	} else if (*end) {
		*why = "expected a whole number";
		return -EINVAL;
	}
	if (v > UINT64_MAX / mul || v * mul < k->min || v * mul > k->max) {
		*why = "out of range";
		return -EINVAL;
	}
	*out = v * mul;
	return 0;
}

static struct proxy_limits *port_entry(struct limits_conf *lc, uint16_t port)
{
	for (size_t i = 0; i < lc->n_ports; i++)
		if (lc->ports[i].port == port)
			return &lc->ports[i].limits;
	struct proxy_port_limits *v = realloc(lc->ports, (lc->n_ports + 1) * sizeof(*v));
	if (!v)
		return NULL;
	lc->ports = v;
	memset(&v[lc->n_ports], 0, sizeof(v[0]));
	v[lc->n_ports].port = port;
	return &v[lc->n_ports++].limits;
}

/* Splits line (modified in place) into at most 4 words; returns the count,
 * or 5 when there are more. */
static int split(char *line, char *w[4])
{
	char *save = NULL;
	int n = 0;
	for (char *p = strtok_r(line, " \t\r", &save); p; p = strtok_r(NULL, " \t\r", &save)) {
		if (n == 4)
			return 5;
		w[n++] = p;
	}
	return n;
}

/* One setting: "NAME VALUE" or "port N NAME VALUE". */
static int parse_line(struct limits_conf *lc, char *line, const char *where, struct diag *d)
{
	char *w[4];
	int n = split(line, w);
	struct proxy_limits *dst = &lc->box;
	const char *why = NULL;

	if (!n)
		return 0;
	if (!strcmp(w[0], "port")) {
		char *end;
		unsigned long port = n > 1 ? strtoul(w[1], &end, 10) : 0;
		if (n != 4 || *w[1] < '0' || *w[1] > '9' || *end || port < 1 || port > 65535) {
			diag_add(d, DIAG_ERROR, where, NULL, NULL,
				 "expected 'port N NAME VALUE' with N from 1 to 65535");
			return -WG_EINVAL_CONFIG;
		}
		if (!(dst = port_entry(lc, (uint16_t)port)))
			return -ENOMEM;
		w[0] = w[2];
		w[1] = w[3];
		n = 2;
	}
	if (n != 2) {
		diag_add(d, DIAG_ERROR, where, NULL, NULL, "expected 'NAME VALUE'");
		return -WG_EINVAL_CONFIG;
	}
	const struct lim_key *k = NULL;
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]) && !k; i++)
		if (!strcmp(keys[i].name, w[0]))
			k = &keys[i];
	if (!k) {
		diag_add(d, DIAG_ERROR, where, NULL, w[0], "unknown limit");
		return -WG_EINVAL_CONFIG;
	}
	uint64_t v;
	if (parse_value(k, w[1], &v, &why)) {
		diag_add(d, DIAG_ERROR, where, NULL, k->name, "'%s': %s", w[1], why);
		return -WG_EINVAL_CONFIG;
	}
	char *field = (char *)dst + k->off;
	if (k->wide)
		memcpy(field, &v, sizeof(v));
	else {
		uint32_t v32 = (uint32_t)v;
		memcpy(field, &v32, sizeof(v32));
	}
	return 0;
}

int limits_parse(struct limits_conf *lc, const char *text, const char *file, struct diag *d)
{
	int rc = 0;
	unsigned lineno = 0;
	const char *p = text;

	while (*p) {
		size_t len = strcspn(p, "\n;");
		char line[512], where[600];
		lineno++;
		if (len >= sizeof(line)) {
			snprintf(where, sizeof(where), "%s:%u", file, lineno);
			diag_add(d, DIAG_ERROR, where, NULL, NULL, "line too long");
			rc = -WG_EINVAL_CONFIG;
		} else {
			memcpy(line, p, len);
			line[len] = '\0';
			char *hash = strchr(line, '#');
			if (hash)
				*hash = '\0';
			snprintf(where, sizeof(where), "%s:%u", file, lineno);
			int r = parse_line(lc, line, where, d);
			if (r == -ENOMEM)
				return r;
			if (r < 0)
				rc = r;
		}
		p += len;
		if (*p)
			p++;
	}
	return rc;
}

int limits_load_file(struct limits_conf *lc, const char *path, bool must_exist, struct diag *d)
{
	FILE *f = fopen(path, "re");
	if (!f) {
		if (errno == ENOENT && !must_exist)
			return 0;
		diag_add(d, DIAG_ERROR, path, NULL, NULL, "cannot read: %s", strerror(errno));
		return -WG_EINVAL_CONFIG;
	}
	char *text = NULL;
	size_t cap = 0, len = 0, n;
	char chunk[4096];
	int rc = 0;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
		if (len + n + 1 > 1 << 20) {
			diag_add(d, DIAG_ERROR, path, NULL, NULL, "larger than 1 MiB");
			rc = -WG_EINVAL_CONFIG;
			goto out;
		}
		if (len + n + 1 > cap) {
			cap = (len + n + 1) * 2;
			char *t = realloc(text, cap);
			if (!t) {
				rc = -ENOMEM;
				goto out;
			}
			text = t;
		}
		memcpy(text + len, chunk, n);
		len += n;
	}
	if (ferror(f)) {
		diag_add(d, DIAG_ERROR, path, NULL, NULL, "read failed");
		rc = -WG_EINVAL_CONFIG;
		goto out;
	}
	if (memchr(text ? text : "", '\0', len)) {
		diag_add(d, DIAG_ERROR, path, NULL, NULL, "not a text file");
		rc = -WG_EINVAL_CONFIG;
		goto out;
	}
	if (text) {
		text[len] = '\0';
		rc = limits_parse(lc, text, path, d);
	}
out:
	free(text);
	fclose(f);
	return rc;
}

void limits_conf_fini(struct limits_conf *lc)
{
	free(lc->ports);
	memset(lc, 0, sizeof(*lc));
}
