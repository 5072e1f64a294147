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
