/* SPDX-License-Identifier: MIT */
/* tests for src/cli/limits.c: the limits file and the board's string. */
#include <stdlib.h>
#include <unistd.h>

#include "check.h"

#include "cli/limits.c"

TEST(limits_box_and_ports)
{
	struct limits_conf lc = {0};
	struct diag d = {0};

	CHECK_EQ_INT(limits_parse(&lc,
				  "# box\n"
				  "max-body-bytes 64M\n"
				  "  head-timeout 10s   # trailing comment\n"
				  "port 8080 max-body-bytes 1K\n"
				  "port 8080 connect-timeout 250ms\n"
				  "port 9090 keepalive-timeout 2m\n"
				  "port 8080 max-client-connections unlimited\n",
				  "f", &d),
		     0);
	CHECK_EQ_INT(d.errors, 0);
	CHECK_EQ_INT(lc.box.max_body_bytes, 64ull << 20);
	CHECK_EQ_INT(lc.box.head_timeout_ms, 10000);
	CHECK_EQ_INT(lc.box.connect_timeout_ms, 0); /* unset: proxy/'s default */
	CHECK_EQ_INT(lc.n_ports, 2);
	CHECK_EQ_INT(lc.ports[0].port, 8080);
	CHECK_EQ_INT(lc.ports[0].limits.max_body_bytes, 1024);
	CHECK_EQ_INT(lc.ports[0].limits.connect_timeout_ms, 250);
	CHECK_EQ_INT(lc.ports[0].limits.max_conns_per_client, UINT32_MAX);
	CHECK_EQ_INT(lc.ports[0].limits.head_timeout_ms, 0); /* inherits the box's */
	CHECK_EQ_INT(lc.ports[1].port, 9090);
	CHECK_EQ_INT(lc.ports[1].limits.keepalive_timeout_ms, 120000);
	limits_conf_fini(&lc);
	diag_fini(&d);
}

TEST(limits_later_settings_override)
{
	struct limits_conf lc = {0};
	struct diag d = {0};

	/* the board's string, then a file on top */
	CHECK_EQ_INT(limits_parse(&lc, "max-connections 65536;max-body-bytes 8M", "board", &d), 0);
	CHECK_EQ_INT(limits_parse(&lc, "max-body-bytes unlimited\n", "file", &d), 0);
	CHECK_EQ_INT(lc.box.max_connections, 65536);
	CHECK_EQ_INT(lc.box.max_body_bytes, (long long)UINT64_MAX);
	limits_conf_fini(&lc);
	diag_fini(&d);
}

/* Each bad line is reported with file:line and the limit, and changes nothing. */
static const struct {
	const char *line;
	const char *field; /* NULL: the message names no limit */
	const char *msg;
} bad[] = {
	{"head-timeout 5", "head-timeout", "unit"},
	{"head-timeout 5h", "head-timeout", "unit"},
	{"head-timeout 0s", "head-timeout", "out of range"},
	{"max-body-bytes 12X", "max-body-bytes", "size"},
	{"max-body-bytes -1", "max-body-bytes", "number"},
	{"max-body-bytes 0", "max-body-bytes", "out of range"},
	{"max-body-bytes 99999999999999999999999", "max-body-bytes", "too large"},
	{"max-head-bytes 2G", "max-head-bytes", "out of range"},
	{"max-head-bytes unlimited", "max-head-bytes", "cannot be unlimited"},
	{"max-header-fields 500", "max-header-fields", "out of range"},
	{"max-connections 1.5", "max-connections", "whole number"},
	{"no-such-limit 1", "no-such-limit", "unknown"},
	{"max-body-bytes", NULL, "NAME VALUE"},
	{"max-body-bytes 1M extra", NULL, "NAME VALUE"},
	{"port 0 max-body-bytes 1M", NULL, "port N"},
	{"port 65536 max-body-bytes 1M", NULL, "port N"},
	{"port x max-body-bytes 1M", NULL, "port N"},
	{"port 80 max-body-bytes", NULL, "port N"},
	{"port 80 max-body-bytes 1M x y", NULL, "port N"},
};

TEST(limits_bad_lines)
{
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct limits_conf lc = {0};
		struct diag d = {0};
		char text[128];
		snprintf(text, sizeof(text), "max-body-bytes 5K\n%s\n", bad[i].line);
		CHECK_EQ_INT(limits_parse(&lc, text, "lim.conf", &d), -WG_EINVAL_CONFIG);
		CHECK_EQ_INT(d.errors, 1);
		if (d.n == 1) {
			CHECK_EQ_STR(d.v[0].file, "lim.conf:2");
			if (bad[i].field)
				CHECK_EQ_STR(d.v[0].field, bad[i].field);
			if (!strstr(d.v[0].msg, bad[i].msg))
				CHECK_EQ_STR(d.v[0].msg, bad[i].msg);
		}
		CHECK_EQ_INT(lc.box.max_body_bytes, 5120); /* the good line still counts */
		CHECK_EQ_INT(lc.n_ports, 0);
		limits_conf_fini(&lc);
		diag_fini(&d);
	}
}

TEST(limits_file)
{
	struct limits_conf lc = {0};
	struct diag d = {0};
	char path[] = "/tmp/wg-limits-XXXXXX";
	int fd = mkstemp(path);
	CHECK(fd >= 0);
	const char text[] = "port 443 max-header-fields 50\n";
	CHECK_EQ_INT(write(fd, text, sizeof(text) - 1), (long long)sizeof(text) - 1);
	close(fd);
	CHECK_EQ_INT(limits_load_file(&lc, path, true, &d), 0);
	CHECK_EQ_INT(lc.n_ports, 1);
	CHECK_EQ_INT(lc.ports[0].limits.max_header_fields, 50);
	unlink(path);
	/* a missing default file is fine, a missing named one is not */
	CHECK_EQ_INT(limits_load_file(&lc, path, false, &d), 0);
	CHECK_EQ_INT(d.errors, 0);
	CHECK_EQ_INT(limits_load_file(&lc, path, true, &d), -WG_EINVAL_CONFIG);
	CHECK_EQ_INT(d.errors, 1);
	limits_conf_fini(&lc);
	diag_fini(&d);
}
