/* SPDX-License-Identifier: MIT */
/*
 * local_certs.c: loading a local configuration, and the certificates local
 * mode generates for it. A Secret of type kubernetes.io/tls annotated
 * waygate.dev/generate-self-signed: "NAME[,NAME...]" and carrying no data
 * gets a self-signed certificate for those names, generated on first use and
 * kept under STATE_DIR/certs/ (files 0600, folder 0700), so every restart
 * serves the same certificate and a box works over HTTPS out of the box.
 * Secrets that carry data are left alone. This is local-mode only: a
 * cluster's Secrets are never rewritten. JSON is the format here, hence
 * yyjson. Runs on the control thread.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "yyjson.h"

#include "cli/internal.h"
#include "core/base64.h"
#include "core/err.h"
#include "core/log.h"
#include "kube/kube.h"
#include "tls/tls.h"

#define GEN_ANNOTATION "waygate.dev/generate-self-signed"
#define GEN_DAYS 825
#define MAX_NAMES 16

static char *read_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	long n;

	if (!f)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) > 0 && n < (1 << 20) &&
	    fseek(f, 0, SEEK_SET) == 0 && (buf = malloc((size_t)n + 1))) {
		if (fread(buf, 1, (size_t)n, f) != (size_t)n) {
			free(buf);
			buf = NULL;
		} else {
			buf[n] = '\0';
		}
	}
	fclose(f);
	return buf;
}

static int write_file_0600(const char *path, const char *data)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	size_t n = strlen(data);

	if (fd == -1)
		return -errno;
	if (write(fd, data, n) != (ssize_t)n) {
		int err = -errno;
		close(fd);
		return err ? err : -EIO;
	}
	if (fsync(fd) == -1 || close(fd) == -1)
		return -errno;
	return 0;
}

/* Splits "a, b,c" into trimmed names (pointers into buf). */
static size_t split_names(char *buf, const char **names, size_t max)
{
	size_t n = 0;
	for (char *tok = strtok(buf, ","); tok && n < max; tok = strtok(NULL, ",")) {
		while (*tok == ' ')
			tok++;
		char *end = tok + strlen(tok);
		while (end > tok && end[-1] == ' ')
			*--end = '\0';
		if (*tok)
			names[n++] = tok;
	}
	return n;
}

/* Loads or generates the certificate for (ns, name); caller frees both. */
static int cert_for(const char *state_dir, const char *ns, const char *name, const char *names_csv,
		    char **cert_pem, char **key_pem)
{
	char dir[1024], crt[1200], key[1200], buf[512];
	const char *names[MAX_NAMES];
	size_t n;
	int err;

	snprintf(dir, sizeof(dir), "%s/certs", state_dir);
	if (mkdir(dir, 0700) == -1 && errno != EEXIST)
		return -errno;
	snprintf(crt, sizeof(crt), "%s/%s_%s.crt", dir, ns, name);
	snprintf(key, sizeof(key), "%s/%s_%s.key", dir, ns, name);
	*cert_pem = read_file(crt);
	*key_pem = read_file(key);
	if (*cert_pem && *key_pem)
		return 0;
	free(*cert_pem);
	if (*key_pem)
		tls_free_secret(*key_pem);
	*cert_pem = *key_pem = NULL;

	snprintf(buf, sizeof(buf), "%s", names_csv);
	n = split_names(buf, names, MAX_NAMES);
	if (n == 0)
		return -EINVAL;
	err = tls_gen_selfsigned(names[0], names, n, GEN_DAYS, cert_pem, key_pem);
	if (err < 0)
		return err;
	if ((err = write_file_0600(key, *key_pem)) < 0 || (err = write_file_0600(crt, *cert_pem)) < 0) {
		free(*cert_pem);
		tls_free_secret(*key_pem);
		*cert_pem = *key_pem = NULL;
		return err;
	}
	log_info("event=certificate_generated secret=%s/%s names=%s", ns, name, log_q(names_csv));
	return 0;
}

/* Rebuilds the Secret o with generated data and puts it into set. */
static int fill_secret(const struct gw_object *o, const char *state_dir, const char *names_csv,
		       struct gw_objset *set, struct diag *d)
{
	char *cert = NULL, *key = NULL, *cert64 = NULL, *key64 = NULL, *json = NULL;
	yyjson_mut_doc *doc = NULL;
	char objname[300];
	int err;

	snprintf(objname, sizeof(objname), "Secret %s/%s", o->ns, o->name);
	err = cert_for(state_dir, o->ns, o->name, names_csv, &cert, &key);
	if (err < 0) {
		diag_add(d, DIAG_ERROR, o->file, objname, "metadata.annotations." GEN_ANNOTATION,
			 "cannot generate a certificate: %s", strerror(-err));
		goto out;
	}
	cert64 = base64_encode_dup(cert, strlen(cert));
	key64 = base64_encode_dup(key, strlen(key));
	doc = yyjson_doc_mut_copy(o->doc, NULL);
	if (!cert64 || !key64 || !doc) {
		err = -ENOMEM;
		goto out;
	}
	yyjson_mut_val *root = yyjson_mut_doc_get_root(doc);
	yyjson_mut_val *data = yyjson_mut_obj(doc);
	yyjson_mut_obj_add_str(doc, data, "tls.crt", cert64);
	yyjson_mut_obj_add_str(doc, data, "tls.key", key64);
	yyjson_mut_obj_remove_key(root, "data");
	yyjson_mut_obj_add_val(doc, root, "data", data);
	size_t len;
	json = yyjson_mut_write(doc, 0, &len);
	if (!json) {
		err = -ENOMEM;
		goto out;
	}
	char perr[200];
	struct gw_object *filled = gw_object_parse(GW_K_SECRET, json, len, perr, sizeof(perr));
	if (!filled) {
		diag_add(d, DIAG_ERROR, o->file, objname, NULL, "%s", perr);
		err = -EINVAL;
		goto out;
	}
	filled->source = o->source;
	if (o->file)
		filled->file = strdup(o->file);
	gw_objset_put(set, filled); /* frees o */
out:
	if (json) {
		tls_zeroize(json, strlen(json));
		free(json);
	}
	if (key64) {
		tls_zeroize(key64, strlen(key64));
		free(key64);
	}
	free(cert64);
	free(cert);
	if (key)
		tls_free_secret(key);
	yyjson_mut_doc_free(doc);
	return err;
}

int local_config_load(const char *path, const char *state_dir, struct gw_objset *set,
		      struct kube_local_cache *cache, struct diag *d)
{
	int err = kube_load_local_cached(path, set, d, cache);
	size_t n;

	if (err < 0)
		return err;
	const struct gw_object *const *secrets = gw_objset_list(set, GW_K_SECRET, &n);
	/* Collect names first: fill_secret() replaces objects under the listing. */
	struct pending {
		char *ns, *name, *csv;
	} *todo = n ? calloc(n, sizeof(*todo)) : NULL;
	size_t n_todo = 0;
	if (n && !todo)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		yyjson_val *root = yyjson_doc_get_root(secrets[i]->doc);
		const char *csv = yyjson_get_str(
			yyjson_ptr_get(root, "/metadata/annotations/waygate.dev~1generate-self-signed"));
		yyjson_val *data = yyjson_obj_get(root, "data");
		if (!csv || (data && yyjson_obj_size(data) > 0))
			continue;
		todo[n_todo++] = (struct pending){strdup(secrets[i]->ns), strdup(secrets[i]->name),
						  strdup(csv)};
	}
	for (size_t i = 0; i < n_todo; i++) {
		const struct gw_object *o =
			todo[i].ns && todo[i].name && todo[i].csv
				? gw_objset_get(set, GW_K_SECRET, todo[i].ns, todo[i].name)
				: NULL;
		if (!o || fill_secret(o, state_dir, todo[i].csv, set, d) < 0)
			err = -WG_EINVAL_CONFIG;
		free(todo[i].ns);
		free(todo[i].name);
		free(todo[i].csv);
	}
	free(todo);
	return err;
}
