/* SPDX-License-Identifier: MIT */
/*
 * ui.c: ui_start() and ui_stop(): wires the UI together. Copies the
 * configuration, builds the Host allow-list (the listen address, localhost,
 * the box's host name and interface addresses, configured names), opens
 * the UI's own store connection, makes sure an admin password exists
 * (generating and printing one on first start, the only secret waygate
 * ever prints, once), loads or creates the /metrics bearer token, opens the
 * listener, loads the certificate, starts libmicrohttpd and the UI thread,
 * and becomes the log sink for the Events page. Called on the control
 * thread; nothing here runs per request.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/err.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/str.h"
#include "store/store.h"
#include "tls/tls.h"
#include "ui/internal.h"

#define TOKEN_FILE "ui-metrics.token"

/* The recent-events ring lives as long as the process: the log may call
 * its sink from another thread just as the UI stops. */
static struct ui_events events;
static pthread_once_t events_once = PTHREAD_ONCE_INIT;

static void events_init(void)
{
	ui_events_init(&events);
}
#define DEFAULT_IDLE_S 1800

static char *dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

static void add_box_names(struct ui_hosts *h, const char *const *extra)
{
	struct ifaddrs *ifa = NULL;
	char name[256] = "", addr[64];

	ui_hosts_add(h, "localhost");
	ui_hosts_add(h, "127.0.0.1");
	ui_hosts_add(h, "::1");
	if (gethostname(name, sizeof(name) - 1) == 0 && name[0]) {
		char local[270];

		ui_hosts_add(h, name);
		snprintf(local, sizeof(local), "%s.local", name);
		ui_hosts_add(h, local);
	}
	if (getifaddrs(&ifa) == 0) {
		for (struct ifaddrs *i = ifa; i; i = i->ifa_next) {
			if (!i->ifa_addr)
				continue;
			if (i->ifa_addr->sa_family == AF_INET)
				inet_ntop(AF_INET,
					  &((struct sockaddr_in *)(void *)i->ifa_addr)->sin_addr,
					  addr, sizeof(addr));
			else if (i->ifa_addr->sa_family == AF_INET6)
				inet_ntop(AF_INET6,
					  &((struct sockaddr_in6 *)(void *)i->ifa_addr)->sin6_addr,
					  addr, sizeof(addr));
			else
				continue;
			ui_hosts_add(h, addr);
		}
		freeifaddrs(ifa);
	}
	for (size_t i = 0; extra && extra[i]; i++)
		if (ui_hosts_add(h, extra[i]) < 0)
			log_warn("event=ui_allowed_host_invalid host=%s", log_q(extra[i]));
}

/* A password a person can type from a console: 20 characters from an
 * alphabet without look-alikes (about 100 bits). */
static int gen_password(char *out, size_t n)
{
	static const char alpha[] = "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
	uint8_t r[64];
	size_t k = 0;
	int err;

	while (k + 1 < n) {
		if ((err = tls_random(r, sizeof(r))) < 0)
			return err;
		for (size_t i = 0; i < sizeof(r) && k + 1 < n; i++)
			if (r[i] < 224) /* 224 = 4 * 56: no modulo bias */
				out[k++] = alpha[r[i] % 56];
	}
	out[k] = '\0';
	tls_zeroize(r, sizeof(r));
	return 0;
}

static int ensure_password(struct ui *ui, struct diag *d)
{
	char pw[21];
	int err;

	if (store_has_password(ui->store, "admin"))
		return 0;
	if ((err = gen_password(pw, sizeof(pw))) < 0 ||
	    (err = store_set_password(ui->store, "admin", pw, "ui")) < 0) {
		diag_add(d, DIAG_ERROR, store_path(ui->store), NULL, NULL,
			 "cannot set the first UI password: %s", err_str(err));
		tls_zeroize(pw, sizeof(pw));
		return err;
	}
	/* The one deliberate exception to "secrets never reach the log": the
	 * generated password is shown once, on first start, so that the owner
	 * can log in. The Events page's sink redacts it. */
	log_warn("event=ui_first_start_password user=admin password=%s "
		 "note=\"shown once: change it in Settings or with waygate passwd\"",
		 pw);
	fprintf(stdout, "ui password (first start): user=admin password=%s\n", pw);
	fflush(stdout);
	tls_zeroize(pw, sizeof(pw));
	return 0;
}

/* Loads the metrics bearer token, creating it (0600) when missing. */
static int load_token(struct ui *ui, struct diag *d)
{
	char path[4096], buf[80];
	uint8_t r[32];
	ssize_t n;
	int fd, err;

	snprintf(path, sizeof(path), "%s/%s", ui->state_dir, TOKEN_FILE);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd != -1) {
		n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (n >= 32) {
			buf[n] = '\0';
			buf[strcspn(buf, "\r\n")] = '\0';
			if (strlen(buf) >= 32 && strlen(buf) < sizeof(ui->metrics_token)) {
				str_lcpy(ui->metrics_token, buf, sizeof(ui->metrics_token));
				tls_zeroize(buf, sizeof(buf));
				return 0;
			}
		}
		log_warn("event=ui_metrics_token_invalid file=%s action=regenerate", log_q(path));
	}
	if ((err = tls_random(r, sizeof(r))) < 0)
		goto fail;
	ui_hex(r, sizeof(r), ui->metrics_token);
	tls_zeroize(r, sizeof(r));
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd == -1) {
		err = -errno;
		goto fail;
	}
	fchmod(fd, 0600);
	snprintf(buf, sizeof(buf), "%s\n", ui->metrics_token);
	err = write(fd, buf, strlen(buf)) == (ssize_t)strlen(buf) ? 0 : -EIO;
	close(fd);
	tls_zeroize(buf, sizeof(buf));
	if (err < 0)
		goto fail;
	log_info("event=ui_metrics_token_created file=%s", log_q(path));
	return 0;
fail:
	diag_add(d, DIAG_ERROR, path, NULL, NULL, "cannot create the metrics token: %s",
		 err_str(err));
	return err;
}

static void ui_free(struct ui *ui)
{
	if (ui->store)
		store_close(ui->store);
	ui_hosts_fini(&ui->hosts);
	pthread_mutex_destroy(&ui->tls_mu);
	pthread_mutex_destroy(&ui->store_mu);
	ui_rates_fini(&ui->rates);
	pthread_mutex_destroy(&ui->traffic_mu);
	tls_zeroize(ui->metrics_token, sizeof(ui->metrics_token));
	tls_zeroize(ui->csrf_key, sizeof(ui->csrf_key));
	free(ui->listen);
	free(ui->state_dir);
	free(ui->version);
	free(ui->board);
	free(ui);
}

struct ui *ui_start(const struct ui_config *cfg, struct diag *d)
{
	struct ui *ui = calloc(1, sizeof(*ui));

	if (!ui) {
		diag_add(d, DIAG_ERROR, NULL, NULL, NULL, "out of memory");
		return NULL;
	}
	ui->lfd = -1;
	pthread_mutex_init(&ui->tls_mu, NULL);
	pthread_mutex_init(&ui->store_mu, NULL);
	pthread_mutex_init(&ui->traffic_mu, NULL);
	pthread_once(&events_once, events_init);
	ui->events = &events;
	ui->listen = strdup(cfg->listen ? cfg->listen : "0.0.0.0:9443");
	ui->state_dir = strdup(cfg->state_dir ? cfg->state_dir : STORE_DEFAULT_DIR);
	ui->version = dup_or_null(cfg->version);
	ui->board = dup_or_null(cfg->board);
	ui->cb = cfg->cb;
	ui->cb_arg = cfg->cb_arg;
	ui->cipher_pref = cfg->cipher_pref;
	ui->idle_ms = (uint64_t)(cfg->session_idle_s ? cfg->session_idle_s : DEFAULT_IDLE_S) * 1000;
	ui->started_ms = clock_wall_ms();
	/* 5 failed logins per client, then one more every 30 s; 30 across all
	 * clients, then one every 2 s */
	ui_rl_init(&ui->rl, 5, 30000, 30, 2000);
	if (!ui->listen || !ui->state_dir || tls_random(ui->csrf_key, sizeof(ui->csrf_key)) < 0) {
		diag_add(d, DIAG_ERROR, NULL, NULL, NULL, "cannot initialise the UI");
		goto fail;
	}
	add_box_names(&ui->hosts, cfg->allowed_hosts);
	/* from here on the Events page sees the log (redacted) */
	log_set_sink(ui_events_sink, ui->events);

	ui->store = store_open_reader(ui->state_dir, d);
	if (!ui->store)
		goto fail;
	if (ensure_password(ui, d) < 0 || load_token(ui, d) < 0)
		goto fail;
	if (ui_front_open(ui, d) < 0)
		goto fail;
	if (ui_cert_load(ui, d) < 0)
		goto fail_front;
	if (ui_server_start(ui, d) < 0)
		goto fail_front;
	if (ui_front_start(ui) < 0) {
		diag_add(d, DIAG_ERROR, NULL, NULL, "--ui-listen", "cannot start the UI thread");
		goto fail_server;
	}
	log_info("event=ui_listening addr=%s msg=\"ui listening on https://%s\"", ui->bound,
		 ui->bound);
	return ui;

fail_server:
	ui_server_stop(ui);
fail_front:
	ui_front_stop(ui);
fail:
	log_set_sink(NULL, NULL);
	ui_free(ui);
	return NULL;
}

uint16_t ui_port(const struct ui *ui)
{
	return ui ? ui->port : 0;
}

void ui_stop(struct ui *ui)
{
	if (!ui)
		return;
	log_set_sink(NULL, NULL);
	ui_front_stop(ui);
	ui_server_stop(ui);
	log_info("event=ui_stopped");
	ui_free(ui);
}
