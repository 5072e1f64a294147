/* SPDX-License-Identifier: MIT */
/*
 * test_auth.c: credentials (src/kube/auth.c): ExecCredential decoding, RFC
 * 3339 times, tokenFile reading and rotation.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "core/loop.h"
#include "kube/internal.h"

#define V1 "client.authentication.k8s.io/v1"

TEST(kube_exec_credential_parse)
{
	char *t, *c, *k;
	uint64_t exp;
	const char *why = NULL;
	const char *ok = "{\"apiVersion\":\"" V1 "\",\"kind\":\"ExecCredential\",\"status\":"
			 "{\"token\":\"abc\",\"expirationTimestamp\":\"2030-01-02T03:04:05Z\"}}";

	CHECK_EQ_INT(kube_exec_parse(ok, strlen(ok), V1, &t, &c, &k, &exp, &why), 0);
	CHECK_EQ_STR(t, "abc");
	CHECK(c == NULL && k == NULL);
	CHECK_EQ_INT(exp, 1893553445000LL);
	free(t);
	ok = "{\"apiVersion\":\"" V1 "\",\"kind\":\"ExecCredential\",\"status\":"
	     "{\"clientCertificateData\":\"C\",\"clientKeyData\":\"K\"}}";
	CHECK_EQ_INT(kube_exec_parse(ok, strlen(ok), V1, &t, &c, &k, &exp, &why), 0);
	CHECK(t == NULL && exp == 0);
	CHECK_EQ_STR(c, "C");
	CHECK_EQ_STR(k, "K");
	free(c);
	free(k);
}

TEST(kube_exec_credential_rejects)
{
	static const struct {
		const char *json, *why;
	} bad[] = {
		{"nope", "not JSON"},
		{"{\"apiVersion\":\"" V1 "\",\"kind\":\"Other\",\"status\":{\"token\":\"a\"}}",
		 "not an ExecCredential"},
		{"{\"apiVersion\":\"x/"
		 "v1\",\"kind\":\"ExecCredential\",\"status\":{\"token\":\"a\"}}",
		 "apiVersion"},
		{"{\"apiVersion\":\"" V1 "\",\"kind\":\"ExecCredential\"}", "no status"},
		{"{\"apiVersion\":\"" V1 "\",\"kind\":\"ExecCredential\",\"status\":{}}",
		 "neither"},
		{"{\"apiVersion\":\"" V1 "\",\"kind\":\"ExecCredential\",\"status\":"
		 "{\"clientCertificateData\":\"C\"}}",
		 "only one"},
		{"{\"apiVersion\":\"" V1 "\",\"kind\":\"ExecCredential\",\"status\":"
		 "{\"token\":\"a\",\"expirationTimestamp\":\"soon\"}}",
		 "RFC 3339"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *t, *c, *k;
		uint64_t exp;
		const char *why = "";
		int rc = kube_exec_parse(bad[i].json, strlen(bad[i].json), V1, &t, &c, &k, &exp,
					 &why);

		if (rc == 0 || !strstr(why, bad[i].why))
			CHECK_FAIL_("case %zu: rc %d why \"%s\"", i, rc, why);
		CHECK(t == NULL && c == NULL && k == NULL);
	}
}

TEST(kube_time_parse_cases)
{
	CHECK_EQ_INT(kube_time_parse("1970-01-01T00:00:00Z"), 0);
	CHECK_EQ_INT(kube_time_parse("1970-01-01T00:00:01.5Z"), 1500);
	CHECK_EQ_INT(kube_time_parse("1970-01-01T01:00:00+01:00"), 0);
	CHECK_EQ_INT(kube_time_parse("1970-01-01T00:00:00.123456789-00:30"), 1800123);
	CHECK_EQ_INT(kube_time_parse("1970-01-01T00:00:00"), -1);
	CHECK_EQ_INT(kube_time_parse("1970-01-01 00:00:00Z"), -1);
	CHECK_EQ_INT(kube_time_parse("1970-01-01T00:00:00Zjunk"), -1);
	CHECK_EQ_INT(kube_time_parse(NULL), -1);
}

TEST(kube_token_file_reread_on_change)
{
	char dir[] = "/tmp/wg-tok-XXXXXX", path[64], tmp[80];
	struct kube_config cfg = {0};
	struct kube_auth a;
	const char *tok = NULL;
	uint64_t serial;
	FILE *f;

	if (!mkdtemp(dir))
		return;
	snprintf(path, sizeof(path), "%s/token", dir);
	f = fopen(path, "w");
	fputs("first\n", f);
	fclose(f);
	cfg.auth = KUBE_AUTH_TOKEN_FILE;
	cfg.token_file = path;
	kube_auth_init(&a, NULL, &cfg);
	CHECK_EQ_INT(kube_auth_get(&a, NULL, &tok), 0);
	CHECK_EQ_STR(tok, "first");
	serial = a.serial;
	/* rotated by rename, as kubelet does */
	snprintf(tmp, sizeof(tmp), "%s.new", path);
	f = fopen(tmp, "w");
	fputs("second", f);
	fclose(f);
	rename(tmp, path);
	/* within a second the cached token is used; a 401 forces the re-read */
	CHECK_EQ_INT(kube_auth_get(&a, NULL, &tok), 0);
	CHECK_EQ_STR(tok, "first");
	CHECK(kube_auth_invalidate(&a, serial));
	CHECK_EQ_INT(kube_auth_get(&a, NULL, &tok), 0);
	CHECK_EQ_STR(tok, "second");
	CHECK(a.serial != serial);
	/* a stale 401 (older serial) does not force another read */
	CHECK(kube_auth_invalidate(&a, serial));
	/* the file vanishes: the last good token stays */
	unlink(path);
	a.file_checked_ms = 0;
	CHECK_EQ_INT(kube_auth_get(&a, NULL, &tok), 0);
	CHECK_EQ_STR(tok, "second");
	kube_auth_fini(&a);
	/* never readable: an error */
	kube_auth_init(&a, NULL, &cfg);
	CHECK(kube_auth_get(&a, NULL, &tok) < 0);
	CHECK(strstr(a.exec_error, "tokenFile") != NULL);
	kube_auth_fini(&a);
	rmdir(dir);
}
