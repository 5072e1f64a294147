/* SPDX-License-Identifier: MIT */
/*
 * test_robust.c: the UI's parsers of untrusted text (Host headers, cookies,
 * Origin, certificates from the cluster, log lines to redact, strings to
 * escape) on pseudo-random and mutated input, from a fixed seed and with a
 * bounded count, so that a crash or an out-of-bounds access shows up in
 * `make check` and in the sanitizer build. The checks are invariants: the
 * output stays bounded, escaped JSON contains no raw control or HTML
 * characters, redaction never grows a line past its buffer.
 */
#include <stdlib.h>

#include "check.h"
#include "core/base64.h"
#include "ui/internal.h"

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint32_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t)(rng >> 16);
}

/* n random bytes from an alphabet that favours the parsers' delimiters. */
static void fill(char *b, size_t n)
{
	static const char alpha[] = "aZ09.:-_[]%;= \t\"'<>&/\\@\x01\x7f\xc3\xa9\xe2\x80\xa8\xff";

	for (size_t i = 0; i < n; i++)
		b[i] = (rnd() & 3) ? alpha[rnd() % (sizeof(alpha) - 1)] : (char)(rnd() & 0xff);
	b[n] = '\0';
}

TEST(ui_robust_host_cookie_origin)
{
	struct ui_hosts h = {0};
	char in[300], out[256];

	ui_hosts_add(&h, "box.lan");
	ui_hosts_add(&h, "192.0.2.1");
	for (int i = 0; i < 20000; i++) {
		size_t n = rnd() % 280;

		fill(in, n);
		if (ui_host_parse(in, out, sizeof(out))) {
			CHECK(strlen(out) > 0 && strlen(out) < sizeof(out));
			for (const char *p = out; *p; p++)
				CHECK(!(*p >= 'A' && *p <= 'Z'));
		}
		(void)ui_host_is_allowed(&h, in);
		if (ui_cookie_get(in, "a", out, 32))
			CHECK(strlen(out) > 0 && strlen(out) < 32);
		(void)ui_origin_is_same(in, "box.lan:9443");
		(void)ui_origin_is_same("https://box.lan:9443", in);
	}
	ui_hosts_fini(&h);
}

TEST(ui_robust_json_escape)
{
	struct buf b = {0};
	char in[200];

	for (int i = 0; i < 5000; i++) {
		size_t n = rnd() % 190;

		fill(in, n);
		b.head = b.tail = 0;
		CHECK_EQ_INT(ui_json_strn(&b, in, n), 0);
		for (size_t k = 1; k + 1 < buf_len(&b); k++) {
			unsigned char c = (unsigned char)buf_rptr(&b)[k];

			CHECK(c >= 0x20 && c != 0x7f && c != '<' && c != '>' && c != '&' &&
			      c != '\'');
		}
		CHECK(buf_rptr(&b)[0] == '"' && buf_rptr(&b)[buf_len(&b) - 1] == '"');
	}
	buf_release(&b);
}

TEST(ui_robust_redact)
{
	char line[128], copy[128];

	for (int i = 0; i < 20000; i++) {
		size_t n = rnd() % 120;

		fill(line, n);
		if (rnd() & 1)
			memcpy(line + (n > 10 ? rnd() % (n - 9) : 0), "token=", n > 6 ? 6 : 0);
		line[n] = '\0';
		memcpy(copy, line, sizeof(copy));
		ui_redact(line, sizeof(line));
		CHECK(strlen(line) < sizeof(line));
	}
}

TEST(ui_robust_certificate)
{
	/* a real certificate, then truncated and with bytes changed */
	static const char pem[] =
		"MIIBejCCAR+gAwIBAgIUT4vbAOG/SUrQKKYEaWdgy1tvGqQwCgYIKoZIzj0EAwIw"
		"EjEQMA4GA1UEAwwHd2F5Z2F0ZTAeFw0yNjExMjYwNTIzMDZaFw0zNjExMjMwNTIz"
		"MDZaMBIxEDAOBgNVBAMMB3dheWdhdGUwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNC"
		"AAROBgVQkd5K8c8yXX0DOL99QxM4Ey2AJXe7/J1WgXt0L7XW6y5Aq+6gVlIcSM8K"
		"4tyn/3BYy4iAMMVix+3n/I8Ko1MwUTAdBgNVHQ4EFgQU8SvfV59InslYdHbyubDp"
		"LYekDPQwHwYDVR0jBBgwFoAU8SvfV59InslYdHbyubDpLYekDPQwDwYDVR0TAQH/"
		"BAUwAwEB/zAKBggqhkjOPQQDAgNJADBGAiEAg0kfbv0eg8SrxRMIczLQ66gwmVSL"
		"mOMInCWVkKoyGzYCIQCIkHTRozD/guMSedAGbmAwCU9+GhBng6sml53shJdWVA==";
	uint8_t der[512], m[512];
	long n = base64_decode(pem, sizeof(pem) - 1, der);

	CHECK(n > 300);
	if (n <= 0)
		return;
	CHECK_EQ_INT(ui_der_not_after(der, (size_t)n), 2111030586LL);
	for (int i = 0; i < 20000; i++) {
		size_t len = (size_t)n;
		int64_t t;

		memcpy(m, der, (size_t)n);
		if (rnd() & 1)
			len = rnd() % (size_t)n;
		for (int k = 0, flips = (int)(rnd() % 4); k < flips; k++)
			m[rnd() % (size_t)n] = (uint8_t)rnd();
		/* a heap copy of exactly len bytes, so a read past it is caught */
		uint8_t *h = malloc(len ? len : 1);

		memcpy(h, m, len);
		t = ui_der_not_after(h, len);
		CHECK(t >= 0 && t < 253402300800LL); /* before year 10000 */
		free(h);
	}
}
