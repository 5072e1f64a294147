/* SPDX-License-Identifier: MIT */
/*
 * test_cert.c: certificate expiry for the Gateways page (src/ui/cert.c),
 * on a fixed certificate and on malformed input.
 */
#include "check.h"
#include "ui/internal.h"

/* Self-signed EC certificates: notAfter 2036-11-23 05:23:06 UTC (UTCTime)
 * and 2057-01-07 05:23:06 UTC (GeneralizedTime, years from 2050 on). */
static const char pem_utc[] = "-----BEGIN CERTIFICATE-----\n"
			      "MIIBejCCAR+gAwIBAgIUT4vbAOG/SUrQKKYEaWdgy1tvGqQwCgYIKoZIzj0EAwIw\n"
			      "EjEQMA4GA1UEAwwHd2F5Z2F0ZTAeFw0yNjExMjYwNTIzMDZaFw0zNjExMjMwNTIz\n"
			      "MDZaMBIxEDAOBgNVBAMMB3dheWdhdGUwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNC\n"
			      "AAROBgVQkd5K8c8yXX0DOL99QxM4Ey2AJXe7/J1WgXt0L7XW6y5Aq+6gVlIcSM8K\n"
			      "4tyn/3BYy4iAMMVix+3n/I8Ko1MwUTAdBgNVHQ4EFgQU8SvfV59InslYdHbyubDp\n"
			      "LYekDPQwHwYDVR0jBBgwFoAU8SvfV59InslYdHbyubDpLYekDPQwDwYDVR0TAQH/\n"
			      "BAUwAwEB/zAKBggqhkjOPQQDAgNJADBGAiEAg0kfbv0eg8SrxRMIczLQ66gwmVSL\n"
			      "mOMInCWVkKoyGzYCIQCIkHTRozD/guMSedAGbmAwCU9+GhBng6sml53shJdWVA==\n"
			      "-----END CERTIFICATE-----\n";

static const char pem_gen[] = "-----BEGIN CERTIFICATE-----\n"
			      "MIIBejCCASGgAwIBAgIULSLtiCiRkoP29XRtrnMtSjm5HnIwCgYIKoZIzj0EAwIw\n"
			      "EjEQMA4GA1UEAwwHd2F5Z2F0ZTAgFw0yNjExMjYwNTIzMDZaGA8yMDU3MDEwNzA1\n"
			      "MjMwNlowEjEQMA4GA1UEAwwHd2F5Z2F0ZTBZMBMGByqGSM49AgEGCCqGSM49AwEH\n"
			      "A0IABFhFGZNf3bzWniFXhTiaIdl43kV74rDi0lCrytUIGe9DujkuxqHPdzex98a4\n"
			      "HktRE/93r9XNfX7F850p9+u6aw+jUzBRMB0GA1UdDgQWBBSX7ivfPbm3JLQ4/psl\n"
			      "uL5ES73L3jAfBgNVHSMEGDAWgBSX7ivfPbm3JLQ4/psluL5ES73L3jAPBgNVHRMB\n"
			      "Af8EBTADAQH/MAoGCCqGSM49BAMCA0cAMEQCIA0Wzz+toVDsD0Y04el6Zesm0haA\n"
			      "wSaO+/OkxZ8GJS8WAiBjJIerAebaNTVqEQywp56NnUOqnWY0fRlsufoBGGzkBw==\n"
			      "-----END CERTIFICATE-----\n";

TEST(ui_cert_not_after_from_pem)
{
	CHECK_EQ_INT(ui_pem_not_after(pem_utc), 2111030586LL);
	CHECK_EQ_INT(ui_pem_not_after(pem_gen), 2746070586LL);
}

/* A DER prefix holding only what the walk reads, with a given notAfter. */
static int64_t with_time(uint8_t tag, const char *t)
{
	uint8_t d[128];
	size_t n = 0, tl = strlen(t);

	d[n++] = 0x30, d[n++] = 0;                     /* Certificate, length below */
	d[n++] = 0x30, d[n++] = 0;                     /* tbsCertificate */
	d[n++] = 0x02, d[n++] = 1, d[n++] = 7;         /* serial */
	d[n++] = 0x30, d[n++] = 0;                     /* signature */
	d[n++] = 0x30, d[n++] = 0;                     /* issuer */
	d[n++] = 0x30, d[n++] = (uint8_t)(4 + 2 * tl); /* validity */
	d[n++] = tag, d[n++] = (uint8_t)tl;
	memcpy(d + n, t, tl), n += tl;
	d[n++] = tag, d[n++] = (uint8_t)tl;
	memcpy(d + n, t, tl), n += tl;
	d[1] = (uint8_t)(n - 2);
	d[3] = (uint8_t)(n - 4);
	return ui_der_not_after(d, n);
}

TEST(ui_cert_times)
{
	CHECK_EQ_INT(with_time(0x17, "700101000001Z"), 1);
	CHECK_EQ_INT(with_time(0x17, "491231235959Z"), 2524607999LL);
	CHECK_EQ_INT(with_time(0x17, "500101000000Z"), 0);              /* 1950 */
	CHECK_EQ_INT(with_time(0x18, "20240229120000Z"), 1709208000LL); /* leap day */
	CHECK_EQ_INT(with_time(0x18, "20230229120000Z"), 0);            /* no such day */
	CHECK_EQ_INT(with_time(0x18, "21000229000000Z"), 0);            /* 2100 is not leap */
	CHECK_EQ_INT(with_time(0x18, "20000229000000Z"), 951782400LL);  /* 2000 is */
	CHECK_EQ_INT(with_time(0x18, "19691231235959Z"), 0);
	CHECK_EQ_INT(with_time(0x18, "20241301000000Z"), 0);
	CHECK_EQ_INT(with_time(0x18, "20240101250000Z"), 0);
	CHECK_EQ_INT(with_time(0x18, "20240101000000+"), 0);
	CHECK_EQ_INT(with_time(0x17, "2401010000Z"), 0);
	CHECK_EQ_INT(with_time(0x04, "240101000000Z"), 0);
}

TEST(ui_cert_not_after_malformed)
{
	static const uint8_t junk[] = {0x30, 0x82, 0xff, 0xff, 0x30};

	CHECK_EQ_INT(ui_pem_not_after(NULL), 0);
	CHECK_EQ_INT(ui_pem_not_after("not a certificate"), 0);
	CHECK_EQ_INT(
		ui_pem_not_after("-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n"),
		0);
	CHECK_EQ_INT(ui_der_not_after(junk, sizeof(junk)), 0);
	CHECK_EQ_INT(ui_der_not_after(junk, 0), 0);
}
