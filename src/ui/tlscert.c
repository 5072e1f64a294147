/* SPDX-License-Identifier: MIT */
/*
 * tlscert.c: the UI's own TLS certificate. On start it is read from the
 * state dir (ui-cert.pem, ui-key.pem); when missing or unusable a
 * self-signed one is generated (ECDSA P-256, ten years, for the host name
 * and the box's addresses) and saved 0600. The owner may upload another
 * (Settings): it is checked by building a server context, saved, and used
 * for new connections; connections already open keep the old one. The
 * context pointer is swapped under tls_mu (front.c takes a reference at
 * accept). Runs on the control thread at start and on libmicrohttpd's
 * thread for an upload. Key material is wiped when released and never
 * logged.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/err.h"
#include "core/log.h"
#include "tls/tls.h"
#include "ui/internal.h"

#define CERT_FILE "ui-cert.pem"
#define KEY_FILE "ui-key.pem"
#define CERT_DAYS 3650

static char *path_in(const char *dir, const char *name)
{
	char *p = NULL;

	if (asprintf(&p, "%s/%s", dir, name) == -1)
		return NULL;
	return p;
}

/* Reads a whole file (at most 1 MiB) into a NUL-terminated buffer. */
static int read_file(const char *path, char **out)
{
	FILE *f = fopen(path, "re");
	char *b;
	size_t n;

	if (!f)
		return -errno;
	b = malloc(1024 * 1024 + 1);
	if (!b) {
		fclose(f);
		return -ENOMEM;
	}
	n = fread(b, 1, 1024 * 1024, f);
	fclose(f);
	b[n] = '\0';
	*out = b;
	return 0;
}

/* Writes data to path with mode 0600 through a temporary file and rename. */
static int write_private(const char *path, const char *data)
{
	char tmp[4096];
	size_t len = strlen(data);
	int fd, err = 0;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd == -1)
		return -errno;
	fchmod(fd, 0600);
	if (write(fd, data, len) != (ssize_t)len || fsync(fd) == -1)
		err = -EIO;
	close(fd);
	if (!err && rename(tmp, path) == -1)
		err = -errno;
	if (err)
		unlink(tmp);
	return err;
}

/* The UI's server context: built like a data-plane HTTPS listener's
 * (tls_server_new with the board's cipher preference), offering only
 * HTTP/1.1 because libmicrohttpd speaks nothing else. */
static struct tls_server *server_for(const struct ui *ui, const char *cert, const char *key,
				     struct diag *d)
{
	static const char *const alpn[] = {"http/1.1", NULL};
	struct tls_cert_pem pem = {.cert_pem = cert, .key_pem = key, .name = "ui certificate"};
	struct tls_server_opts o = {
		.certs = &pem,
		.n_certs = 1,
		.alpn = alpn,
		.cipher_pref = (enum tls_cipher_pref)ui->cipher_pref,
	};

	return tls_server_new(&o, d);
}

void ui_cert_set(struct ui *ui, struct tls_server *srv)
{
	struct tls_server *old;

	pthread_mutex_lock(&ui->tls_mu);
	old = ui->tls;
	ui->tls = srv;
	ui->cert_not_after = srv ? tls_server_not_after(srv) : 0;
	pthread_mutex_unlock(&ui->tls_mu);
	if (old)
		tls_server_unref(old);
}

int ui_cert_load(struct ui *ui, struct diag *d)
{
	char *cp = path_in(ui->state_dir, CERT_FILE), *kp = path_in(ui->state_dir, KEY_FILE);
	char *cert = NULL, *key = NULL, hostname[256] = "";
	struct tls_server *srv = NULL;
	int err = -ENOMEM;

	if (!cp || !kp)
		goto out;
	if (read_file(cp, &cert) == 0 && read_file(kp, &key) == 0) {
		struct diag tmp = {0};

		srv = server_for(ui, cert, key, &tmp);
		if (!srv)
			log_warn("event=ui_cert_invalid file=%s action=regenerate", log_q(cp));
		diag_fini(&tmp);
	}
	if (!srv) {
		const char *sans[UI_MAX_HOSTS + 2];
		size_t n = 0;

		free(cert);
		if (key)
			tls_free_secret(key);
		cert = key = NULL;
		gethostname(hostname, sizeof(hostname) - 1);
		for (size_t i = 0; i < ui->hosts.n && n < UI_MAX_HOSTS; i++)
			if (strcmp(ui->hosts.v[i], "0.0.0.0") && strcmp(ui->hosts.v[i], "::"))
				sans[n++] = ui->hosts.v[i];
		err = tls_gen_selfsigned(hostname[0] ? hostname : "waygate", sans, n, CERT_DAYS,
					 &cert, &key);
		if (err < 0) {
			diag_add(d, DIAG_ERROR, cp, NULL, NULL,
				 "cannot generate the UI certificate: %s", err_str(err));
			goto out;
		}
		if ((err = write_private(kp, key)) < 0 || (err = write_private(cp, cert)) < 0) {
			diag_add(d, DIAG_ERROR, cp, NULL, NULL,
				 "cannot write the UI certificate: %s", err_str(err));
			goto out;
		}
		srv = server_for(ui, cert, key, d);
		if (!srv) {
			err = -WG_ETLS;
			goto out;
		}
		log_info("event=ui_cert_generated file=%s days=%d", log_q(cp), CERT_DAYS);
	}
	ui_cert_set(ui, srv);
	err = 0;
out:
	free(cert);
	if (key)
		tls_free_secret(key);
	free(cp);
	free(kp);
	return err;
}

int ui_cert_replace(struct ui *ui, const char *cert_pem, const char *key_pem, struct diag *d)
{
	char *cp = path_in(ui->state_dir, CERT_FILE), *kp = path_in(ui->state_dir, KEY_FILE);
	struct tls_server *srv;
	int err = -ENOMEM;

	if (!cp || !kp)
		goto out;
	srv = server_for(ui, cert_pem, key_pem, d);
	if (!srv) {
		err = -EINVAL;
		goto out;
	}
	if ((err = write_private(kp, key_pem)) < 0 || (err = write_private(cp, cert_pem)) < 0) {
		diag_add(d, DIAG_ERROR, cp, NULL, NULL, "cannot save the certificate: %s",
			 err_str(err));
		tls_server_unref(srv);
		goto out;
	}
	ui_cert_set(ui, srv);
	ui->cert_uploaded = true;
	log_info("event=ui_cert_replaced file=%s", log_q(cp));
	err = 0;
out:
	free(cp);
	free(kp);
	return err;
}
