// SPDX-License-Identifier: MIT
/*
 * kubeconfig.c: reads a kubeconfig (YAML) and reduces it to the selected
 * context: the cluster's URL, CA, server name, proxy and insecure flag, and
 * the user's credentials (token, tokenFile, client certificate and key,
 * exec plugin). Files named in it are read at once, relative to the
 * kubeconfig's folder, except tokenFile (read per request by auth.c, since
 * projected tokens rotate). Every error names the file, the context and the
 * key. It does not open connections or run plugins. Runs on the control
 * thread at start-up (or in `waygate check`).
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/arena.h"
#include "core/base64.h"
#include "core/diag.h"
#include "core/err.h"
#include "kube/internal.h"
#include "kube/kube.h"
#include "tls/tls.h"

#define KCFG_MAX_FILE (4u << 20)
#define KCFG_MAX_PEM (1u << 20)

struct kload {
	const char *file;
	const char *ctx; /* object name for diagnostics: "context NAME" */
	char ctxbuf[300];
	struct diag *d;
	struct kube_config *cfg;
	int errors;
};

static void kerr(struct kload *l, const struct ynode *at, const char *key, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void kerr(struct kload *l, const struct ynode *at, const char *key, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (at)
		diag_add(l->d, DIAG_ERROR, l->file, l->ctx, key, "line %u: %s", at->line, msg);
	else
		diag_add(l->d, DIAG_ERROR, l->file, l->ctx, key, "%s", msg);
	l->errors++;
}

static char *xstrdup(const char *s)
{
	return s ? strdup(s) : NULL;
}

/* Finds the entry named name in a list of {name:, <inner>: {...}}. */
static const struct ynode *find_named(const struct ynode *list, const char *name, const char *inner)
{
	if (!list || list->type != YN_SEQ)
		return NULL;
	for (size_t i = 0; i < list->n; i++) {
		const char *n = kyaml_str(kyaml_get(list->v[i], "name"));

		if (n && !strcmp(n, name)) {
			const struct ynode *v = kyaml_get(list->v[i], inner);

			return v ? v : list->v[i]; /* an entry without body is empty */
		}
	}
	return NULL;
}

static char *resolve_path(struct kload *l, const char *p)
{
	char *out;

	if (p[0] == '/')
		return strdup(p);
	if (p[0] == '~' && p[1] == '/' && getenv("HOME")) {
		if (asprintf(&out, "%s%s", getenv("HOME"), p + 1) == -1)
			return NULL;
		return out;
	}
	if (asprintf(&out, "%s/%s", l->cfg->dir, p) == -1)
		return NULL;
	return out;
}

/* Reads the file named by key (a path) or decodes key-data (base64) from
 * map. Both present is an error, as kubectl has it. Returns 0 (and *out NULL
 * when neither is there) or -1 after reporting. */
static int read_file_or_data(struct kload *l, const struct ynode *map, const char *prefix,
			     const char *key, const char *key_data, char **out)
{
	const struct ynode *fn = kyaml_get(map, key), *dn = kyaml_get(map, key_data);
	const char *f = kyaml_str(fn), *dv = kyaml_str(dn);
	char field[128];

	*out = NULL;
	if (f && !*f)
		f = NULL;
	if (dv && !*dv)
		dv = NULL;
	if (f && dv) {
		snprintf(field, sizeof(field), "%s.%s", prefix, key_data);
		kerr(l, dn, field, "both %s and %s are set; use one", key, key_data);
		return -1;
	}
	if (fn && !kyaml_is_null(fn) && fn->type != YN_SCALAR) {
		snprintf(field, sizeof(field), "%s.%s", prefix, key);
		kerr(l, fn, field, "must be a string (a file path)");
		return -1;
	}
	if (dv) {
		size_t n;

		*out = base64_decode_dup(dv, strlen(dv), &n);
		if (!*out) {
			snprintf(field, sizeof(field), "%s.%s", prefix, key_data);
			kerr(l, dn, field, "is not valid base64");
			return -1;
		}
		if (n == 0 || strlen(*out) != n) {
			snprintf(field, sizeof(field), "%s.%s", prefix, key_data);
			kerr(l, dn, field, "does not decode to PEM text");
			free(*out);
			*out = NULL;
			return -1;
		}
		return 0;
	}
	if (f) {
		char *path = resolve_path(l, f);
		size_t n;
		int rc;

		if (!path)
			return -1;
		rc = kfile_read(path, KCFG_MAX_PEM, out, &n);
		if (rc) {
			snprintf(field, sizeof(field), "%s.%s", prefix, key);
			kerr(l, fn, field, "cannot read %s: %s", path, err_str(rc));
			free(path);
			return -1;
		}
		free(path);
	}
	return 0;
}

int kube_url_parse(const char *url, const char *want_scheme, char **host, uint16_t *port,
		   char **path, const char **why)
{
	size_t sl = strlen(want_scheme);
	const char *p, *hs, *he, *ps, *slash;
	char *end;
	unsigned long pv = 0;

	*host = NULL;
	*path = NULL;
	if (strncasecmp(url, want_scheme, sl) != 0 || strncmp(url + sl, "://", 3) != 0) {
		*why = "must start with the scheme";
		return -EINVAL;
	}
	p = url + sl + 3;
	slash = strchr(p, '/');
	if (!slash)
		slash = p + strlen(p);
	/* userinfo is handled by the caller (proxy-url); skip it here */
	{
		const char *at = memchr(p, '@', (size_t)(slash - p));

		if (at)
			p = at + 1;
	}
	if (*p == '[') {
		hs = p + 1;
		he = memchr(hs, ']', (size_t)(slash - hs));
		if (!he) {
			*why = "has an unterminated [IPv6] address";
			return -EINVAL;
		}
		ps = he + 1;
	} else {
		hs = p;
		he = memchr(p, ':', (size_t)(slash - p));
		if (!he)
			he = slash;
		ps = he;
	}
	if (he == hs) {
		*why = "has no host";
		return -EINVAL;
	}
	if (ps < slash) {
		if (*ps != ':' || ps + 1 == slash) {
			*why = "has an invalid port";
			return -EINVAL;
		}
		errno = 0;
		pv = strtoul(ps + 1, &end, 10);
		if (errno || end != slash || pv == 0 || pv > 65535) {
			*why = "has an invalid port";
			return -EINVAL;
		}
	}
	*port = pv ? (uint16_t)pv : (!strcmp(want_scheme, "https") ? 443 : 80);
	*host = strndup(hs, (size_t)(he - hs));
	/* path prefix without a trailing slash */
	{
		size_t pl = strlen(slash);

		while (pl && slash[pl - 1] == '/')
			pl--;
		*path = strndup(slash, pl);
	}
	if (!*host || !*path) {
		free(*host);
		free(*path);
		*host = *path = NULL;
		*why = "out of memory";
		return -ENOMEM;
	}
	return 0;
}

static int load_cluster(struct kload *l, const struct ynode *c)
{
	struct kube_config *cfg = l->cfg;
	const struct ynode *sn = kyaml_get(c, "server"), *n;
	const char *server = kyaml_str(sn), *why;
	char *path = NULL;

	if (!server || !*server) {
		kerr(l, c, "cluster.server", "cluster \"%s\" has no server URL", cfg->cluster_name);
		return -1;
	}
	cfg->server = strdup(server);
	if (!cfg->server)
		return -1;
	{
		size_t sl = strlen(cfg->server);

		while (sl > 8 && cfg->server[sl - 1] == '/')
			cfg->server[--sl] = 0;
	}
	if (kube_url_parse(server, "https", &cfg->host, &cfg->port, &path, &why)) {
		kerr(l, sn, "cluster.server", "\"%s\" is not an https:// URL: it %s", server, why);
		return -1;
	}
	cfg->base_path = path;
	if (cfg->port == 443)
		cfg->host_header = strchr(cfg->host, ':') ? NULL : strdup(cfg->host);
	if (!cfg->host_header) {
		if (asprintf(&cfg->host_header, strchr(cfg->host, ':') ? "[%s]:%u" : "%s:%u",
			     cfg->host, cfg->port) == -1) {
			cfg->host_header = NULL;
			return -1;
		}
	}
	n = kyaml_get(c, "tls-server-name");
	if (n && !kyaml_is_null(n)) {
		if (n->type != YN_SCALAR || !*n->s) {
			kerr(l, n, "cluster.tls-server-name", "must be a non-empty string");
			return -1;
		}
		cfg->server_name = strdup(n->s);
	} else {
		cfg->server_name = strdup(cfg->host);
	}
	n = kyaml_get(c, "insecure-skip-tls-verify");
	if (n && !kyaml_is_null(n)) {
		if (n->type != YN_SCALAR || (strcmp(n->s, "true") && strcmp(n->s, "false"))) {
			kerr(l, n, "cluster.insecure-skip-tls-verify", "must be true or false");
			return -1;
		}
		cfg->insecure = !strcmp(n->s, "true");
	}
	if (read_file_or_data(l, c, "cluster", "certificate-authority",
			      "certificate-authority-data", &cfg->ca_pem))
		return -1;
	if (cfg->insecure && cfg->ca_pem) {
		kerr(l, kyaml_get(c, "insecure-skip-tls-verify"),
		     "cluster.insecure-skip-tls-verify",
		     "a certificate authority and insecure-skip-tls-verify cannot both be set");
		return -1;
	}
	n = kyaml_get(c, "proxy-url");
	if (n && !kyaml_is_null(n)) {
		const char *pu = kyaml_str(n), *at, *ss;
		char *ppath = NULL;

		if (!pu ||
		    kube_url_parse(pu, "http", &cfg->proxy_host, &cfg->proxy_port, &ppath, &why)) {
			kerr(l, n, "cluster.proxy-url",
			     "\"%s\" is not supported: only http:// proxies (HTTP CONNECT) are, "
			     "and it %s",
			     pu ? pu : "", pu ? why : "is not a string");
			return -1;
		}
		free(ppath);
		ss = pu + strlen("http://");
		at = strchr(ss, '@');
		if (at && (!strchr(ss, '/') || at < strchr(ss, '/'))) {
			cfg->proxy_auth = base64_encode_dup(ss, (size_t)(at - ss));
			if (!cfg->proxy_auth)
				return -1;
		}
	}
	return 0;
}

static char **str_list(struct kload *l, const struct ynode *n, const char *field)
{
	char **v;

	if (!n || kyaml_is_null(n))
		return calloc(1, sizeof(char *));
	if (n->type != YN_SEQ) {
		kerr(l, n, field, "must be a list of strings");
		return NULL;
	}
	v = calloc(n->n + 1, sizeof(char *));
	if (!v)
		return NULL;
	for (size_t i = 0; i < n->n; i++) {
		if (n->v[i]->type != YN_SCALAR) {
			kerr(l, n->v[i], field, "item %zu must be a string", i);
			goto fail;
		}
		v[i] = strdup(n->v[i]->s);
		if (!v[i])
			goto fail;
	}
	return v;
fail:
	for (size_t i = 0; v[i]; i++)
		free(v[i]);
	free(v);
	return NULL;
}

static int load_exec(struct kload *l, const struct ynode *e)
{
	struct kube_exec *x = &l->cfg->exec;
	const struct ynode *n, *env;
	const char *api, *cmd;

	if (e->type != YN_MAP) {
		kerr(l, e, "user.exec", "must be a mapping");
		return -1;
	}
	n = kyaml_get(e, "apiVersion");
	api = kyaml_str(n);
	if (!api || (strcmp(api, "client.authentication.k8s.io/v1") &&
		     strcmp(api, "client.authentication.k8s.io/v1beta1"))) {
		kerr(l, n ? n : e, "user.exec.apiVersion",
		     "must be client.authentication.k8s.io/v1 (or v1beta1), not \"%s\"",
		     api ? api : "");
		return -1;
	}
	n = kyaml_get(e, "command");
	cmd = kyaml_str(n);
	if (!cmd || !*cmd) {
		kerr(l, n ? n : e, "user.exec.command", "is required");
		return -1;
	}
	x->api_version = strdup(api);
	if (strchr(cmd, '/') && cmd[0] != '/')
		x->command = resolve_path(l, cmd);
	else
		x->command = strdup(cmd);
	x->args = str_list(l, kyaml_get(e, "args"), "user.exec.args");
	if (!x->args)
		return -1;
	env = kyaml_get(e, "env");
	if (env && !kyaml_is_null(env) && env->type != YN_SEQ) {
		kerr(l, env, "user.exec.env", "must be a list of {name, value}");
		return -1;
	}
	x->env = calloc((env && env->type == YN_SEQ ? env->n : 0) + 1, sizeof(char *));
	if (!x->env)
		return -1;
	for (size_t i = 0; env && env->type == YN_SEQ && i < env->n; i++) {
		const char *name = kyaml_str(kyaml_get(env->v[i], "name"));
		const struct ynode *vn = kyaml_get(env->v[i], "value");
		const char *val = vn && vn->type == YN_SCALAR ? vn->s : "";
		char field[64];

		if (!name || !*name || strchr(name, '=')) {
			snprintf(field, sizeof(field), "user.exec.env[%zu].name", i);
			kerr(l, env->v[i], field, "must be a variable name");
			return -1;
		}
		if (asprintf(&x->env[i], "%s=%s", name, val) == -1) {
			x->env[i] = NULL;
			return -1;
		}
	}
	if (kyaml_str(kyaml_get(e, "installHint")))
		x->install_hint = strdup(kyaml_str(kyaml_get(e, "installHint")));
	n = kyaml_get(e, "provideClusterInfo");
	x->provide_cluster_info = n && n->type == YN_SCALAR && !strcmp(n->s, "true");
	l->cfg->has_exec = true;
	return 0;
}

static int load_user(struct kload *l, const struct ynode *u)
{
	struct kube_config *cfg = l->cfg;
	const struct ynode *n;
	static const char *const unsupported[] = {"auth-provider", "username", "password", NULL};

	if (!u || kyaml_is_null(u))
		return 0;
	if (u->type != YN_MAP) {
		kerr(l, u, "user", "must be a mapping");
		return -1;
	}
	for (size_t i = 0; unsupported[i]; i++) {
		n = kyaml_get(u, unsupported[i]);
		if (n && !kyaml_is_null(n)) {
			char field[64];

			snprintf(field, sizeof(field), "user.%s", unsupported[i]);
			kerr(l, n, field,
			     "is not supported; use token, tokenFile, a client certificate or "
			     "exec");
			return -1;
		}
	}
	n = kyaml_get(u, "token");
	if (n && kyaml_str(n) && *n->s) {
		if (n->type != YN_SCALAR) {
			kerr(l, n, "user.token", "must be a string");
			return -1;
		}
		cfg->token = strdup(n->s);
	}
	n = kyaml_get(u, "tokenFile");
	if (n && kyaml_str(n) && *n->s) {
		cfg->token_file = resolve_path(l, n->s);
		if (!cfg->token_file)
			return -1;
		if (!cfg->token) {
			char *probe = NULL;
			size_t plen;
			int rc = kfile_read(cfg->token_file, 64 << 10, &probe, &plen);

			if (rc) {
				kerr(l, n, "user.tokenFile", "cannot read %s: %s", cfg->token_file,
				     err_str(rc));
				return -1;
			}
			tls_zeroize(probe, plen);
			free(probe);
		}
	}
	if (read_file_or_data(l, u, "user", "client-certificate", "client-certificate-data",
			      &cfg->client_cert_pem) ||
	    read_file_or_data(l, u, "user", "client-key", "client-key-data", &cfg->client_key_pem))
		return -1;
	if (!!cfg->client_cert_pem != !!cfg->client_key_pem) {
		kerr(l, u, cfg->client_cert_pem ? "user.client-key" : "user.client-certificate",
		     "a client certificate needs both client-certificate and client-key");
		return -1;
	}
	n = kyaml_get(u, "exec");
	if (n && !kyaml_is_null(n) && load_exec(l, n))
		return -1;
	if (cfg->token)
		cfg->auth = KUBE_AUTH_TOKEN;
	else if (cfg->token_file)
		cfg->auth = KUBE_AUTH_TOKEN_FILE;
	else if (cfg->has_exec)
		cfg->auth = KUBE_AUTH_EXEC;
	else if (cfg->client_cert_pem)
		cfg->auth = KUBE_AUTH_CERT;
	return 0;
}

/* Builds a TLS client once so that a bad CA, certificate or key is reported
 * now, naming the key, rather than at the first connection. */
static int check_tls(struct kload *l)
{
	struct kube_config *cfg = l->cfg;
	struct tls_client_opts o = {0};
	struct diag td = {0};
	struct tls_client *c;

	o.ca_pem = cfg->ca_pem;
	o.use_system_cas = !cfg->ca_pem;
	o.insecure_skip_verify = cfg->insecure;
	o.client_cert_pem = cfg->client_cert_pem;
	o.client_key_pem = cfg->client_key_pem;
	if (!cfg->ca_pem && !cfg->client_cert_pem)
		return 0; /* nothing of ours to check; system CAs are checked at connect */
	c = tls_client_new(&o, &td);
	if (c) {
		tls_client_unref(c);
		diag_fini(&td);
		return 0;
	}
	for (size_t i = 0; i < td.n; i++) {
		const char *m = td.v[i].msg ? td.v[i].msg : "invalid";
		const char *key = "cluster.certificate-authority";

		if (td.v[i].field && strstr(td.v[i].field, "key"))
			key = "user.client-key";
		else if (td.v[i].field && strstr(td.v[i].field, "cert") &&
			 !strstr(td.v[i].field, "ca"))
			key = "user.client-certificate";
		else if (strstr(m, "key"))
			key = "user.client-key";
		else if (strstr(m, "client"))
			key = "user.client-certificate";
		kerr(l, NULL, key, "%s", m);
	}
	if (!td.n)
		kerr(l, NULL, "cluster.certificate-authority",
		     "the CA, client certificate or key cannot be loaded");
	diag_fini(&td);
	return -1;
}

int kube_config_load(const char *path, const char *context, struct kube_config **out,
		     struct diag *d)
{
	struct kload l = {.file = path, .d = d};
	struct arena *a = NULL;
	struct ynode **docs, *root;
	const struct ynode *n, *ctx, *cluster, *user;
	struct kube_config *cfg;
	const char *cur, *cname, *uname;
	size_t ndocs, tlen;
	char *text = NULL, *slash;
	int rc;

	*out = NULL;
	cfg = calloc(1, sizeof(*cfg));
	if (!cfg)
		return -ENOMEM;
	l.cfg = cfg;
	cfg->file = strdup(path);
	cfg->dir = strdup(path);
	if (!cfg->file || !cfg->dir) {
		rc = -ENOMEM;
		goto fail;
	}
	slash = strrchr(cfg->dir, '/');
	if (slash == cfg->dir)
		slash[1] = 0;
	else if (slash)
		*slash = 0;
	else
		strcpy(cfg->dir, ".");
	rc = kfile_read(path, KCFG_MAX_FILE, &text, &tlen);
	if (rc) {
		diag_add(d, DIAG_ERROR, path, NULL, NULL, "cannot read the kubeconfig: %s",
			 err_str(rc));
		goto fail;
	}
	a = arena_new(16384);
	if (!a) {
		rc = -ENOMEM;
		goto fail;
	}
	rc = kyaml_load(a, text, tlen, path, &docs, &ndocs, d);
	if (rc)
		goto fail;
	rc = -WG_EINVAL_CONFIG;
	if (ndocs != 1 || docs[0]->type != YN_MAP) {
		diag_add(d, DIAG_ERROR, path, NULL, NULL,
			 "a kubeconfig is one YAML mapping (found %zu documents)", ndocs);
		goto fail;
	}
	root = docs[0];
	n = kyaml_get(root, "current-context");
	cur = context && *context ? context : kyaml_str(n);
	if (!cur || !*cur) {
		diag_add(d, DIAG_ERROR, path, NULL, "current-context",
			 "no context selected: current-context is empty and --context not given");
		goto fail;
	}
	snprintf(l.ctxbuf, sizeof(l.ctxbuf), "context %s", cur);
	l.ctx = l.ctxbuf;
	cfg->context = strdup(cur);
	ctx = find_named(kyaml_get(root, "contexts"), cur, "context");
	if (!ctx) {
		kerr(&l, context ? NULL : n, context ? "--context" : "current-context",
		     "context \"%s\" is not in contexts", cur);
		goto fail;
	}
	cname = kyaml_str(kyaml_get(ctx, "cluster"));
	uname = kyaml_str(kyaml_get(ctx, "user"));
	if (!cname || !*cname) {
		kerr(&l, ctx, "context.cluster", "is required");
		goto fail;
	}
	cfg->cluster_name = strdup(cname);
	cfg->user_name = xstrdup(uname);
	cfg->namespace = xstrdup(kyaml_str(kyaml_get(ctx, "namespace")));
	cluster = find_named(kyaml_get(root, "clusters"), cname, "cluster");
	if (!cluster || cluster->type != YN_MAP) {
		kerr(&l, kyaml_get(ctx, "cluster"), "context.cluster",
		     "cluster \"%s\" is not in clusters", cname);
		goto fail;
	}
	if (load_cluster(&l, cluster))
		goto fail;
	if (uname && *uname) {
		user = find_named(kyaml_get(root, "users"), uname, "user");
		if (!user) {
			kerr(&l, kyaml_get(ctx, "user"), "context.user",
			     "user \"%s\" is not in users", uname);
			goto fail;
		}
		if (load_user(&l, user))
			goto fail;
	}
	if (!cfg->server_name || !cfg->context || !cfg->cluster_name) {
		rc = -ENOMEM;
		goto fail;
	}
	if (check_tls(&l))
		goto fail;
	if (cfg->insecure)
		diag_add(d, DIAG_WARN, path, l.ctx, "cluster.insecure-skip-tls-verify",
			 "the API server's certificate is not verified");
	free(text);
	arena_free(a);
	*out = cfg;
	return 0;
fail:
	if (rc == -ENOMEM || (rc == -WG_EINVAL_CONFIG && !l.errors && !d->errors))
		diag_add(d, DIAG_ERROR, path, l.ctx, NULL, "out of memory");
	free(text);
	arena_free(a);
	kube_config_free(cfg);
	return rc;
}

static void free_secret(char *s)
{
	if (s) {
		tls_zeroize(s, strlen(s));
		free(s);
	}
}

void kube_config_free(struct kube_config *cfg)
{
	if (!cfg)
		return;
	free(cfg->file);
	free(cfg->dir);
	free(cfg->context);
	free(cfg->cluster_name);
	free(cfg->user_name);
	free(cfg->namespace);
	free(cfg->server);
	free(cfg->host);
	free(cfg->base_path);
	free(cfg->host_header);
	free(cfg->server_name);
	free(cfg->ca_pem);
	free(cfg->proxy_host);
	free_secret(cfg->proxy_auth);
	free_secret(cfg->token);
	free(cfg->token_file);
	free(cfg->client_cert_pem);
	free_secret(cfg->client_key_pem);
	free(cfg->exec.api_version);
	free(cfg->exec.command);
	free(cfg->exec.install_hint);
	for (size_t i = 0; cfg->exec.args && cfg->exec.args[i]; i++)
		free(cfg->exec.args[i]);
	free(cfg->exec.args);
	for (size_t i = 0; cfg->exec.env && cfg->exec.env[i]; i++)
		free_secret(cfg->exec.env[i]);
	free(cfg->exec.env);
	free(cfg);
}

const char *kube_config_server(const struct kube_config *cfg)
{
	return cfg->server;
}
const char *kube_config_context(const struct kube_config *cfg)
{
	return cfg->context;
}
const char *kube_config_namespace(const struct kube_config *cfg)
{
	return cfg->namespace;
}
bool kube_config_insecure(const struct kube_config *cfg)
{
	return cfg->insecure;
}

const char *kube_config_auth_kind(const struct kube_config *cfg)
{
	switch (cfg->auth) {
	case KUBE_AUTH_TOKEN: return "token";
	case KUBE_AUTH_TOKEN_FILE: return "tokenFile";
	case KUBE_AUTH_CERT: return "client-certificate";
	case KUBE_AUTH_EXEC: return "exec";
	default: return "none";
	}
}
