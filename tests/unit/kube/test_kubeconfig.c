/* SPDX-License-Identifier: MIT */
/*
 * test_kubeconfig.c: kubeconfig loading (src/kube/kubeconfig.c): every key
 * read, relative paths, context selection, and errors that name the file,
 * the context and the key.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "core/base64.h"
#include "core/diag.h"
#include "core/err.h"
#include "kube/internal.h"
#include "kube/kube.h"
#include "tls/tls.h"

static char dir[64];
static char *cert_pem, *key_pem;

static void put(const char *name, const char *content)
{
	char p[256];
	FILE *f;

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	f = fopen(p, "w");
	if (f) {
		fputs(content, f);
		fclose(f);
	}
}

static void setup(void)
{
	const char *sans[] = {"127.0.0.1"};

	strcpy(dir, "/tmp/wg-kcfg-XXXXXX");
	if (!mkdtemp(dir))
		return;
	if (!cert_pem)
		tls_gen_selfsigned("test-ca", sans, 1, 1, &cert_pem, &key_pem);
	put("ca.pem", cert_pem ? cert_pem : "");
	put("c.pem", cert_pem ? cert_pem : "");
	put("c.key", key_pem ? key_pem : "");
	put("tok", "secret-token\n");
}

static void teardown(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", dir);
}

/* Loads a kubeconfig whose cluster and user bodies are given. */
static int load(const char *cluster, const char *user, const char *context,
		struct kube_config **cfg, struct diag *d)
{
	char y[8192], p[128];

	snprintf(y, sizeof(y),
		 "apiVersion: v1\nkind: Config\ncurrent-context: main\n"
		 "clusters:\n- name: c1\n  cluster:\n%s"
		 "users:\n- name: u1\n  user:\n%s"
		 "contexts:\n- name: main\n  context:\n    cluster: c1\n    user: u1\n"
		 "    namespace: ns1\n"
		 "- name: other\n  context:\n    cluster: c1\n    user: u1\n",
		 cluster, user);
	put("config", y);
	snprintf(p, sizeof(p), "%s/config", dir);
	return kube_config_load(p, context, cfg, d);
}

/* The first error entry as "object|field|msg". */
static const char *first_err(const struct diag *d, char *buf, size_t n)
{
	for (size_t i = 0; i < d->n; i++) {
		if (d->v[i].sev == DIAG_ERROR) {
			snprintf(buf, n, "%s|%s|%s", d->v[i].object ? d->v[i].object : "",
				 d->v[i].field ? d->v[i].field : "", d->v[i].msg);
			return buf;
		}
	}
	return "";
}

TEST(kube_kubeconfig_token_and_paths)
{
	struct kube_config *cfg = NULL;
	struct diag d = {0};

	setup();
	CHECK_EQ_INT(load("    server: https://10.0.0.1:6443/prefix/\n"
			  "    certificate-authority: ca.pem\n"
			  "    tls-server-name: kube.internal\n",
			  "    token: abc\n", NULL, &cfg, &d),
		     0);
	if (cfg) {
		CHECK_EQ_STR(kube_config_server(cfg), "https://10.0.0.1:6443/prefix");
		CHECK_EQ_STR(cfg->host, "10.0.0.1");
		CHECK_EQ_INT(cfg->port, 6443);
		CHECK_EQ_STR(cfg->base_path, "/prefix");
		CHECK_EQ_STR(cfg->host_header, "10.0.0.1:6443");
		CHECK_EQ_STR(cfg->server_name, "kube.internal");
		CHECK_EQ_STR(cfg->ca_pem, cert_pem);
		CHECK_EQ_STR(kube_config_auth_kind(cfg), "token");
		CHECK_EQ_STR(cfg->token, "abc");
		CHECK_EQ_STR(kube_config_context(cfg), "main");
		CHECK_EQ_STR(kube_config_namespace(cfg), "ns1");
		CHECK(!kube_config_insecure(cfg));
	}
	kube_config_free(cfg);
	cfg = NULL;
	/* --context selects another one; default port 443 and IPv6 */
	CHECK_EQ_INT(load("    server: https://[fd00::1]\n    certificate-authority: ca.pem\n",
			  "    tokenFile: tok\n", "other", &cfg, &d),
		     0);
	if (cfg) {
		char want[128];

		CHECK_EQ_STR(kube_config_context(cfg), "other");
		CHECK_EQ_STR(cfg->host, "fd00::1");
		CHECK_EQ_INT(cfg->port, 443);
		CHECK_EQ_STR(cfg->host_header, "[fd00::1]:443");
		CHECK_EQ_STR(kube_config_auth_kind(cfg), "tokenFile");
		snprintf(want, sizeof(want), "%s/tok", dir);
		CHECK_EQ_STR(cfg->token_file, want);
		CHECK(cfg->namespace == NULL);
	}
	kube_config_free(cfg);
	diag_fini(&d);
	teardown();
}

TEST(kube_kubeconfig_certs_data_exec_proxy)
{
	struct kube_config *cfg = NULL;
	struct diag d = {0};
	char cluster[4096], user[8192];
	char *ca64 = base64_encode_dup(cert_pem ? cert_pem : "x", cert_pem ? strlen(cert_pem) : 1);
	char *k64 = base64_encode_dup(key_pem ? key_pem : "x", key_pem ? strlen(key_pem) : 1);

	setup();
	snprintf(cluster, sizeof(cluster),
		 "    server: https://kube.example.com\n"
		 "    certificate-authority-data: %s\n"
		 "    proxy-url: http://alice:pw@proxy.lan:3128\n",
		 ca64);
	snprintf(user, sizeof(user),
		 "    client-certificate-data: %s\n    client-key-data: %s\n"
		 "    exec:\n      apiVersion: client.authentication.k8s.io/v1\n"
		 "      command: ./bin/plugin\n      args: [get-token, --x]\n"
		 "      env:\n      - name: A\n        value: b\n"
		 "      provideClusterInfo: true\n",
		 ca64, k64);
	CHECK_EQ_INT(load(cluster, user, NULL, &cfg, &d), 0);
	if (cfg) {
		char want[128];

		CHECK_EQ_STR(cfg->host_header, "kube.example.com");
		CHECK_EQ_STR(cfg->proxy_host, "proxy.lan");
		CHECK_EQ_INT(cfg->proxy_port, 3128);
		CHECK_EQ_STR(cfg->proxy_auth, "YWxpY2U6cHc="); /* alice:pw */
		CHECK_EQ_STR(cfg->client_cert_pem, cert_pem);
		CHECK_EQ_STR(cfg->client_key_pem, key_pem);
		CHECK_EQ_STR(kube_config_auth_kind(cfg), "exec");
		snprintf(want, sizeof(want), "%s/./bin/plugin", dir);
		CHECK_EQ_STR(cfg->exec.command, want);
		CHECK_EQ_STR(cfg->exec.args[0], "get-token");
		CHECK_EQ_STR(cfg->exec.args[1], "--x");
		CHECK(cfg->exec.args[2] == NULL);
		CHECK_EQ_STR(cfg->exec.env[0], "A=b");
		CHECK(cfg->exec.provide_cluster_info);
	}
	kube_config_free(cfg);
	cfg = NULL;
	/* client certificate files, insecure without a CA: a warning */
	CHECK_EQ_INT(load("    server: https://h:1\n    insecure-skip-tls-verify: true\n",
			  "    client-certificate: c.pem\n    client-key: c.key\n", NULL, &cfg, &d),
		     0);
	if (cfg) {
		CHECK(kube_config_insecure(cfg));
		CHECK_EQ_STR(kube_config_auth_kind(cfg), "client-certificate");
	}
	CHECK_EQ_INT(d.warnings, 1);
	kube_config_free(cfg);
	diag_fini(&d);
	free(ca64);
	free(k64);
	teardown();
}

struct bad_case {
	const char *cluster, *user, *context;
	const char *want; /* "object|field|" prefix + a message substring after '|' */
	const char *msg;
};

TEST(kube_kubeconfig_errors_name_context_and_key)
{
	static const struct bad_case cases[] = {
		{"    server: http://h\n", "    token: t\n", NULL, "context main|cluster.server|",
		 "is not an https:// URL"},
		{"    certificate-authority: ca.pem\n", "    token: t\n", NULL,
		 "context main|cluster.server|", "has no server URL"},
		{"    server: https://h:99999\n", "    token: t\n", NULL,
		 "context main|cluster.server|", "invalid port"},
		{"    server: https://h\n    certificate-authority: missing.pem\n",
		 "    token: t\n", NULL, "context main|cluster.certificate-authority|",
		 "cannot read"},
		{"    server: https://h\n    certificate-authority: ca.pem\n"
		 "    certificate-authority-data: eA==\n",
		 "    token: t\n", NULL, "context main|cluster.certificate-authority-data|",
		 "both"},
		{"    server: https://h\n    certificate-authority-data: '!!!'\n", "    token: t\n",
		 NULL, "context main|cluster.certificate-authority-data|", "not valid base64"},
		{"    server: https://h\n    certificate-authority: ca.pem\n"
		 "    insecure-skip-tls-verify: true\n",
		 "    token: t\n", NULL, "context main|cluster.insecure-skip-tls-verify|",
		 "cannot both"},
		{"    server: https://h\n    insecure-skip-tls-verify: maybe\n", "    token: t\n",
		 NULL, "context main|cluster.insecure-skip-tls-verify|", "true or false"},
		{"    server: https://h\n    proxy-url: socks5://p:1080\n", "    token: t\n", NULL,
		 "context main|cluster.proxy-url|", "only http://"},
		{"    server: https://h\n", "    tokenFile: nothere\n", NULL,
		 "context main|user.tokenFile|", "cannot read"},
		{"    server: https://h\n", "    client-certificate: c.pem\n", NULL,
		 "context main|user.client-key|", "needs both"},
		{"    server: https://h\n", "    auth-provider:\n      name: gcp\n", NULL,
		 "context main|user.auth-provider|", "not supported"},
		{"    server: https://h\n",
		 "    exec:\n      apiVersion: client.authentication.k8s.io/v1alpha1\n"
		 "      command: x\n",
		 NULL, "context main|user.exec.apiVersion|", "must be client.authentication"},
		{"    server: https://h\n",
		 "    exec:\n      apiVersion: client.authentication.k8s.io/v1\n", NULL,
		 "context main|user.exec.command|", "is required"},
		{"    server: https://h\n",
		 "    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: x\n"
		 "      env:\n      - value: v\n",
		 NULL, "context main|user.exec.env[0].name|", "variable name"},
		{"    server: https://h\n", "    token: t\n", "nosuch", "context nosuch|--context|",
		 "not in contexts"},
		{"    server: https://h\n    certificate-authority: c.key\n", "    token: t\n",
		 NULL, "context main|cluster.certificate-authority|", ""},
	};
	setup();
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct kube_config *cfg = NULL;
		struct diag d = {0};
		char buf[700];
		const char *e;
		int rc = load(cases[i].cluster, cases[i].user, cases[i].context, &cfg, &d);

		e = first_err(&d, buf, sizeof(buf));
		if (rc == 0 || strncmp(e, cases[i].want, strlen(cases[i].want)) != 0 ||
		    !strstr(e, cases[i].msg)) {
			CHECK_FAIL_("case %zu: rc %d, got \"%s\", want \"%s...%s\"", i, rc, e,
				    cases[i].want, cases[i].msg);
		}
		/* every entry names the kubeconfig file */
		if (d.n && (!d.v[0].file || !strstr(d.v[0].file, "/config")))
			CHECK_FAIL_("case %zu: file not named", i);
		CHECK(cfg == NULL);
		diag_fini(&d);
	}
	teardown();
}

TEST(kube_kubeconfig_file_level_errors)
{
	struct kube_config *cfg = NULL;
	struct diag d = {0};
	char p[128];

	setup();
	snprintf(p, sizeof(p), "%s/config", dir);
	put("config", "clusters: [\n");
	CHECK(kube_config_load(p, NULL, &cfg, &d) < 0);
	CHECK(d.n && strstr(d.v[0].msg, "line ") != NULL);
	diag_fini(&d);
	put("config", "apiVersion: v1\nclusters: []\n");
	CHECK_EQ_INT(kube_config_load(p, NULL, &cfg, &d), -WG_EINVAL_CONFIG);
	CHECK(d.n && d.v[0].field && !strcmp(d.v[0].field, "current-context"));
	diag_fini(&d);
	put("config", "current-context: x\ncontexts:\n- name: x\n  context:\n    cluster: gone\n");
	CHECK_EQ_INT(kube_config_load(p, NULL, &cfg, &d), -WG_EINVAL_CONFIG);
	CHECK(d.n && strstr(d.v[0].msg, "line 5") && strstr(d.v[0].msg, "\"gone\""));
	diag_fini(&d);
	snprintf(p, sizeof(p), "%s/nofile", dir);
	CHECK_EQ_INT(kube_config_load(p, NULL, &cfg, &d), -ENOENT);
	CHECK(d.n == 1);
	diag_fini(&d);
	teardown();
}

TEST(kube_url_parse_cases)
{
	char *h, *p;
	uint16_t port;
	const char *why;

	CHECK_EQ_INT(kube_url_parse("https://a.b:8443/x/y/", "https", &h, &port, &p, &why), 0);
	CHECK_EQ_STR(h, "a.b");
	CHECK_EQ_INT(port, 8443);
	CHECK_EQ_STR(p, "/x/y");
	free(h);
	free(p);
	CHECK_EQ_INT(kube_url_parse("http://u:p@[::1]:3128", "http", &h, &port, &p, &why), 0);
	CHECK_EQ_STR(h, "::1");
	CHECK_EQ_INT(port, 3128);
	CHECK_EQ_STR(p, "");
	free(h);
	free(p);
	CHECK(kube_url_parse("https://", "https", &h, &port, &p, &why) < 0);
	CHECK(kube_url_parse("https://h:", "https", &h, &port, &p, &why) < 0);
	CHECK(kube_url_parse("https://[::1", "https", &h, &port, &p, &why) < 0);
	CHECK(kube_url_parse("ftp://h", "https", &h, &port, &p, &why) < 0);
}
