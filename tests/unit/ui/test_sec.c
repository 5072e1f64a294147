/* SPDX-License-Identifier: MIT */
/*
 * test_sec.c: the UI's request checks (src/ui/sec.c): Host allow-list and
 * Host header parsing, the same-origin check, cookie parsing, token
 * comparison and the login rate limiter, each with the cases an attacker
 * would try.
 */
#include "check.h"
#include "ui/internal.h"

TEST(ui_host_parse_forms)
{
	char out[256];

	CHECK(ui_host_parse("Box.LAN", out, sizeof(out)));
	CHECK_EQ_STR(out, "box.lan");
	CHECK(ui_host_parse("box.lan:9443", out, sizeof(out)));
	CHECK_EQ_STR(out, "box.lan");
	CHECK(ui_host_parse("box.lan.", out, sizeof(out)));
	CHECK_EQ_STR(out, "box.lan");
	CHECK(ui_host_parse("192.0.2.7:9443", out, sizeof(out)));
	CHECK_EQ_STR(out, "192.0.2.7");
	CHECK(ui_host_parse("[::1]:9443", out, sizeof(out)));
	CHECK_EQ_STR(out, "::1");
	CHECK(ui_host_parse("[FE80::1]", out, sizeof(out)));
	CHECK_EQ_STR(out, "fe80::1");
}

TEST(ui_host_parse_rejects_malformed)
{
	char out[256];

	CHECK(!ui_host_parse(NULL, out, sizeof(out)));
	CHECK(!ui_host_parse("", out, sizeof(out)));
	CHECK(!ui_host_parse(":9443", out, sizeof(out)));
	CHECK(!ui_host_parse("box:", out, sizeof(out)));
	CHECK(!ui_host_parse("box:0", out, sizeof(out)));
	CHECK(!ui_host_parse("box:65536", out, sizeof(out)));
	CHECK(!ui_host_parse("box:94x3", out, sizeof(out)));
	CHECK(!ui_host_parse("::1", out, sizeof(out)));
	CHECK(!ui_host_parse("[::1", out, sizeof(out)));
	CHECK(!ui_host_parse("[::1]x", out, sizeof(out)));
	CHECK(!ui_host_parse("[zz::1]", out, sizeof(out)));
	CHECK(!ui_host_parse("evil.com/x", out, sizeof(out)));
	CHECK(!ui_host_parse("a b", out, sizeof(out)));
	CHECK(!ui_host_parse("user@box", out, sizeof(out)));
	CHECK(!ui_host_parse("box.lan", out, 4)); /* does not fit */
}

TEST(ui_host_allow_list)
{
	struct ui_hosts h = {0};

	CHECK_EQ_INT(ui_hosts_add(&h, "localhost"), 0);
	CHECK_EQ_INT(ui_hosts_add(&h, "Edge1.lan"), 0);
	CHECK_EQ_INT(ui_hosts_add(&h, "192.0.2.7"), 0);
	CHECK_EQ_INT(ui_hosts_add(&h, "fe80::1%eth0"), 0);
	CHECK_EQ_INT(ui_hosts_add(&h, "edge1.lan"), 0); /* duplicate ignored */
	CHECK_EQ_INT(h.n, 4);
	CHECK(ui_hosts_add(&h, "bad host") < 0);
	CHECK(ui_host_is_allowed(&h, "localhost:9443"));
	CHECK(ui_host_is_allowed(&h, "EDGE1.lan:9443"));
	CHECK(ui_host_is_allowed(&h, "192.0.2.7"));
	CHECK(ui_host_is_allowed(&h, "[fe80::1]:9443"));
	/* DNS rebinding: an attacker's name that resolves to the box */
	CHECK(!ui_host_is_allowed(&h, "evil.example:9443"));
	CHECK(!ui_host_is_allowed(&h, "edge1.lan.evil.example"));
	CHECK(!ui_host_is_allowed(&h, "192.0.2.70"));
	CHECK(!ui_host_is_allowed(&h, NULL));
	CHECK(!ui_host_is_allowed(&h, ""));
	ui_hosts_fini(&h);
	CHECK_EQ_INT(h.n, 0);
}

TEST(ui_origin_same)
{
	CHECK(ui_origin_is_same("https://box.lan:9443", "box.lan:9443"));
	CHECK(ui_origin_is_same("HTTPS://Box.Lan:9443", "box.lan:9443"));
	CHECK(ui_origin_is_same("https://box.lan", "box.lan:443"));
	CHECK(ui_origin_is_same("https://box.lan:443", "box.lan"));
	CHECK(ui_origin_is_same("https://[::1]:9443", "[::1]:9443"));
	CHECK(ui_origin_is_same("https://[::1]", "[::1]:443"));
}

TEST(ui_origin_foreign_refused)
{
	CHECK(!ui_origin_is_same(NULL, "box.lan:9443"));
	CHECK(!ui_origin_is_same("null", "box.lan:9443"));
	CHECK(!ui_origin_is_same("", "box.lan:9443"));
	CHECK(!ui_origin_is_same("http://box.lan:9443", "box.lan:9443"));
	CHECK(!ui_origin_is_same("https://evil.example", "box.lan:9443"));
	CHECK(!ui_origin_is_same("https://box.lan:9444", "box.lan:9443"));
	CHECK(!ui_origin_is_same("https://box.lan:9443/", "box.lan:9443"));
	CHECK(!ui_origin_is_same("https://box.lan.evil.example:9443", "box.lan:9443"));
	CHECK(!ui_origin_is_same("https://user@box.lan:9443", "box.lan:9443"));
	CHECK(!ui_origin_is_same("https://box.lan:9443", NULL));
	CHECK(!ui_origin_is_same("https://box.lan:9443", ""));
}

TEST(ui_cookie_parse)
{
	char v[80];

	CHECK(ui_cookie_get("__Host-wg_session=abc123", "__Host-wg_session", v, sizeof(v)));
	CHECK_EQ_STR(v, "abc123");
	CHECK(ui_cookie_get("a=1; __Host-wg_session=dead_beef-1 ; b=2", "__Host-wg_session", v,
			    sizeof(v)));
	CHECK_EQ_STR(v, "dead_beef-1");
	CHECK(ui_cookie_get("x=1;__Host-wg_session=ff", "__Host-wg_session", v, sizeof(v)));
	CHECK_EQ_STR(v, "ff");
	/* a longer name with our name as suffix or prefix is another cookie */
	CHECK(!ui_cookie_get("x__Host-wg_session=ff", "__Host-wg_session", v, sizeof(v)));
	CHECK(!ui_cookie_get("__Host-wg_sessionx=ff", "__Host-wg_session", v, sizeof(v)));
	CHECK(!ui_cookie_get("__Host-wg_session=", "__Host-wg_session", v, sizeof(v)));
	CHECK(!ui_cookie_get("__Host-wg_session=a\"b", "__Host-wg_session", v, sizeof(v)));
	CHECK(!ui_cookie_get("__Host-wg_session=<script>", "__Host-wg_session", v, sizeof(v)));
	CHECK(!ui_cookie_get("__Host-wg_session=0123456789", "__Host-wg_session", v, 5));
	CHECK(!ui_cookie_get(NULL, "__Host-wg_session", v, sizeof(v)));
	CHECK(!ui_cookie_get("", "__Host-wg_session", v, sizeof(v)));
}

TEST(ui_token_compare)
{
	CHECK(ui_token_equal("abcd", "abcd"));
	CHECK(!ui_token_equal("abcd", "abce"));
	CHECK(!ui_token_equal("abcd", "abc"));
	CHECK(!ui_token_equal("", ""));
	CHECK(!ui_token_equal(NULL, "abcd"));
	CHECK(!ui_token_equal("abcd", NULL));
}

TEST(ui_hex_encoding)
{
	const uint8_t in[] = {0x00, 0x0f, 0xa5, 0xff};
	char out[9];

	ui_hex(in, sizeof(in), out);
	CHECK_EQ_STR(out, "000fa5ff");
}

TEST(ui_ratelimit_ten_bad_passwords)
{
	static struct ui_ratelimit rl;
	uint64_t t = 1000000;
	uint32_t retry = 0;
	int allowed = 0;

	ui_rl_init(&rl, 5, 30000, 30, 2000);
	for (int i = 0; i < 10; i++) {
		if (ui_rl_allow(&rl, "192.0.2.1", t, &retry)) {
			allowed++;
			ui_rl_fail(&rl, "192.0.2.1", t);
		}
		t += 100;
	}
	CHECK_EQ_INT(allowed, 5);
	CHECK(!ui_rl_allow(&rl, "192.0.2.1", t, &retry));
	CHECK(retry >= 29 && retry <= 30);
	/* another client is not punished for it */
	CHECK(ui_rl_allow(&rl, "192.0.2.2", t, NULL));
	/* one token comes back after refill_ms */
	t += 30000;
	CHECK(ui_rl_allow(&rl, "192.0.2.1", t, NULL));
	ui_rl_fail(&rl, "192.0.2.1", t);
	CHECK(!ui_rl_allow(&rl, "192.0.2.1", t + 10, NULL));
	/* a success refills the client's bucket */
	ui_rl_success(&rl, "192.0.2.1", t + 20);
	CHECK(ui_rl_allow(&rl, "192.0.2.1", t + 30, NULL));
}

TEST(ui_ratelimit_global_bucket)
{
	static struct ui_ratelimit rl;
	uint64_t t = 5000;
	char key[32];
	int allowed = 0;

	ui_rl_init(&rl, 5, 30000, 8, 2000);
	/* many clients, one failure each: the global bucket stops them */
	for (int i = 0; i < 20; i++) {
		snprintf(key, sizeof(key), "198.51.100.%d", i);
		if (ui_rl_allow(&rl, key, t, NULL)) {
			allowed++;
			ui_rl_fail(&rl, key, t);
		}
	}
	CHECK_EQ_INT(allowed, 8);
	CHECK(ui_rl_allow(&rl, "203.0.113.1", t + 2000, NULL));
}

TEST(ui_ratelimit_table_recycles)
{
	static struct ui_ratelimit rl;
	char key[32];

	ui_rl_init(&rl, 1, 60000, 100000, 1);
	ui_rl_fail(&rl, "victim", 1);
	CHECK(!ui_rl_allow(&rl, "victim", 2, NULL));
	/* filling the table recycles the least recently used entry */
	for (int i = 0; i < UI_RL_ENTRIES; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		CHECK(ui_rl_allow(&rl, key, 10 + (uint64_t)i, NULL));
	}
	CHECK(ui_rl_allow(&rl, "victim", 1000, NULL));
}
