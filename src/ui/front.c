/* SPDX-License-Identifier: MIT */
/*
 * front.c: the UI thread. It owns one event loop that accepts HTTPS on
 * --ui-listen, terminates TLS with tls/ (the UI certificate lives in the
 * state dir: generated on first start, or uploaded by the owner), and once
 * a handshake completes hands the plaintext side of a socketpair to
 * libmicrohttpd, then pumps bytes both ways. libmicrohttpd never sees TLS
 * and never listens itself. The same loop samples the data-plane counters
 * once a second for the live charts and writes one traffic rollup per
 * minute to the store. It does not parse HTTP (server.c does, in MHD's
 * thread).
 *
 * Connection states:
 *   HANDSHAKE  TLS handshake in progress, no socketpair yet (10 s limit)
 *   OPEN       bytes pumped client <-> MHD; closed when MHD closes its side
 *              (after flushing), when the client goes away, on a TLS error
 *              or after 120 s without traffic
 * fc_close() is the only way out: it frees, cancels the timer and logs
 * (at debug: the UI is not the data path).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/err.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/str.h"
#include "tls/tls.h"
#include "ui/internal.h"

#define FC_BUF 16384
#define FC_MAX 64
#define FC_MAX_PER_CLIENT 32 /* so that one client cannot take every slot */
#define FC_HANDSHAKE_MS 10000
#define FC_IDLE_MS 120000

enum fc_state { FC_HANDSHAKE = 0, FC_OPEN };

struct fconn {
	struct ui *ui;
	struct fconn *prev, *next;
	enum fc_state st;
	int cfd; /* client socket */
	int pfd; /* our end of the socketpair, -1 before OPEN */
	struct loop_io cio, pio;
	struct timer timer;
	struct tls_conn *tls;
	struct sockaddr_storage peer;
	socklen_t peer_len;
	char up[FC_BUF]; /* client -> MHD */
	size_t up_len;
	char down[FC_BUF]; /* MHD -> client */
	size_t down_off, down_len;
	bool client_eof, mhd_eof, shut_wr;
};

static void fc_close(struct fconn *c, const char *reason)
{
	struct ui *ui = c->ui;

	log_debug("event=ui_conn_close fd=%d reason=%s", c->cfd, log_q(reason));
	timer_cancel(ui->loop, &c->timer);
	loop_io_del(ui->loop, &c->cio);
	if (c->pfd != -1) {
		loop_io_del(ui->loop, &c->pio);
		close(c->pfd);
	}
	if (c->tls)
		tls_conn_free(c->tls);
	close(c->cfd);
	if (c->prev)
		c->prev->next = c->next;
	else
		ui->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	ui->n_conns--;
	free(c);
}

static void on_fc_timer(struct timer *t)
{
	struct fconn *c = t->arg;

	fc_close(c, c->st == FC_HANDSHAKE ? "tls handshake timeout" : "idle timeout");
}

static void on_client(struct loop_io *io, uint32_t events);
static void on_pair(struct loop_io *io, uint32_t events);

/* After the handshake: the socketpair, one end to MHD. */
static int fc_open_pair(struct fconn *c)
{
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == -1)
		return -errno;
	if (ui_server_add_conn(c->ui, sv[1], &c->peer, (unsigned)c->peer_len) < 0) {
		close(sv[0]);
		return -EIO;
	}
	c->pfd = sv[0];
	if (loop_io_add(c->ui->loop, &c->pio, c->pfd, LOOP_READ, on_pair, c) < 0) {
		close(c->pfd);
		c->pfd = -1;
		return -ENOMEM;
	}
	c->st = FC_OPEN;
	return 0;
}

/*
 * Moves what can be moved in both directions, then re-arms both fds for
 * exactly what is still wanted. Returns false when c was closed.
 */
static bool fc_pump(struct fconn *c)
{
	uint32_t cwant = 0, pwant = 0;
	ssize_t n;
	int rc;

	if (c->st == FC_HANDSHAKE) {
		rc = tls_handshake(c->tls);
		if (rc == -WG_EAGAIN_READ || rc == -WG_EAGAIN_WRITE) {
			loop_io_mod(c->ui->loop, &c->cio,
				    rc == -WG_EAGAIN_READ ? LOOP_READ : LOOP_WRITE);
			return true;
		}
		if (rc < 0) {
			log_debug("event=ui_tls_failed reason=%s", log_q(tls_conn_error(c->tls)));
			fc_close(c, "tls handshake failed");
			return false;
		}
		if ((rc = fc_open_pair(c)) < 0) {
			fc_close(c, err_str(rc));
			return false;
		}
	}

	/* client -> up */
	while (!c->client_eof && c->up_len < FC_BUF) {
		n = tls_read(c->tls, c->up + c->up_len, FC_BUF - c->up_len);
		if (n > 0) {
			c->up_len += (size_t)n;
		} else if (n == 0) {
			c->client_eof = true;
		} else if (n == -WG_EAGAIN_READ) {
			cwant |= LOOP_READ;
			break;
		} else if (n == -WG_EAGAIN_WRITE) {
			cwant |= LOOP_WRITE;
			break;
		} else {
			fc_close(c, "tls read failed");
			return false;
		}
	}
	/* up -> MHD */
	if (c->up_len) {
		n = write(c->pfd, c->up, c->up_len);
		if (n > 0) {
			memmove(c->up, c->up + n, c->up_len - (size_t)n);
			c->up_len -= (size_t)n;
		} else if (n == -1 && errno != EAGAIN && errno != EINTR) {
			fc_close(c, "ui server closed");
			return false;
		}
	}
	if (c->up_len)
		pwant |= LOOP_WRITE;
	else if (c->client_eof && !c->shut_wr) {
		shutdown(c->pfd, SHUT_WR);
		c->shut_wr = true;
	}
	/* MHD -> down -> client */
	for (;;) {
		if (c->down_len == 0 && !c->mhd_eof) {
			n = read(c->pfd, c->down, FC_BUF);
			if (n > 0) {
				c->down_off = 0;
				c->down_len = (size_t)n;
			} else if (n == 0) {
				c->mhd_eof = true;
			} else if (errno == EAGAIN || errno == EINTR) {
				pwant |= LOOP_READ;
			} else {
				c->mhd_eof = true;
			}
		}
		if (c->down_len == 0)
			break;
		n = tls_write(c->tls, c->down + c->down_off, c->down_len);
		if (n > 0) {
			c->down_off += (size_t)n;
			c->down_len -= (size_t)n;
		} else if (n == -WG_EAGAIN_WRITE) {
			cwant |= LOOP_WRITE;
			break;
		} else if (n == -WG_EAGAIN_READ) {
			cwant |= LOOP_READ;
			break;
		} else {
			fc_close(c, "tls write failed");
			return false;
		}
	}
	if (c->mhd_eof && c->down_len == 0) {
		tls_close_notify(c->tls);
		fc_close(c, "done");
		return false;
	}
	if (c->client_eof && c->up_len == 0 && c->shut_wr && c->down_len == 0 && !pwant) {
		/* the client is gone and MHD has nothing more to say yet: wait
		 * for MHD to close, bounded by the idle timer */
		pwant |= LOOP_READ;
	}
	if (!c->client_eof && c->up_len < FC_BUF)
		cwant |= LOOP_READ;
	loop_io_mod(c->ui->loop, &c->cio, cwant);
	loop_io_mod(c->ui->loop, &c->pio, pwant);
	timer_add(c->ui->loop, &c->timer, FC_IDLE_MS, on_fc_timer, c);
	return true;
}

static void on_client(struct loop_io *io, uint32_t events)
{
	struct fconn *c = io->arg;

	if ((events & LOOP_ERROR) && !(events & LOOP_READ)) {
		fc_close(c, "client error");
		return;
	}
	fc_pump(c);
}

static void on_pair(struct loop_io *io, uint32_t events)
{
	(void)events;
	fc_pump(io->arg);
}

static bool same_host(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	if (a->ss_family != b->ss_family)
		return false;
	if (a->ss_family == AF_INET)
		return ((const struct sockaddr_in *)(const void *)a)->sin_addr.s_addr ==
		       ((const struct sockaddr_in *)(const void *)b)->sin_addr.s_addr;
	if (a->ss_family == AF_INET6)
		return !memcmp(&((const struct sockaddr_in6 *)(const void *)a)->sin6_addr,
			       &((const struct sockaddr_in6 *)(const void *)b)->sin6_addr,
			       sizeof(struct in6_addr));
	return false;
}

/* Connections open from the address of ss (a scan: at most FC_MAX). */
static size_t conns_from(const struct ui *ui, const struct sockaddr_storage *ss)
{
	size_t n = 0;

	for (const struct fconn *c = ui->conns; c; c = c->next)
		n += same_host(&c->peer, ss);
	return n;
}

static void on_accept(struct loop_io *io, uint32_t events)
{
	struct ui *ui = io->arg;
	(void)events;

	for (int i = 0; i < 16; i++) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		struct tls_server *srv;
		struct fconn *c;
		int fd =
			accept4(ui->lfd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd == -1) {
			if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
				log_warn("event=ui_accept_failed error=%s", log_q(strerror(errno)));
			return;
		}
		if (ui->n_conns >= FC_MAX || conns_from(ui, &ss) >= FC_MAX_PER_CLIENT) {
			static uint64_t last_ms;
			uint64_t now = clock_mono_ms();

			if (now - last_ms >= 1000) {
				last_ms = now;
				log_warn("event=ui_conn_refused reason=too_many max=%d "
					 "per_client=%d",
					 FC_MAX, FC_MAX_PER_CLIENT);
			}
			close(fd);
			continue;
		}
		/* responses leave in several TLS records: without this, Nagle
		 * holds the last one for the client's delayed ACK (40 ms) */
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &(int){1}, sizeof(int));
		c = calloc(1, sizeof(*c));
		pthread_mutex_lock(&ui->tls_mu);
		srv = ui->tls;
		if (srv)
			tls_server_ref(srv);
		pthread_mutex_unlock(&ui->tls_mu);
		if (!c || !srv) {
			free(c);
			if (srv)
				tls_server_unref(srv);
			close(fd);
			continue;
		}
		c->ui = ui;
		c->cfd = fd;
		c->pfd = -1;
		memcpy(&c->peer, &ss, sl);
		c->peer_len = sl;
		/* the connection keeps what it needs from the context */
		c->tls = tls_conn_server(srv, fd);
		tls_server_unref(srv);
		if (!c->tls || loop_io_add(ui->loop, &c->cio, fd, LOOP_READ, on_client, c) < 0) {
			if (c->tls)
				tls_conn_free(c->tls);
			free(c);
			close(fd);
			continue;
		}
		c->next = ui->conns;
		if (ui->conns)
			ui->conns->prev = c;
		ui->conns = c;
		ui->n_conns++;
		timer_add(ui->loop, &c->timer, FC_HANDSHAKE_MS, on_fc_timer, c);
		fc_pump(c);
	}
}

/* -------- the listen address -------- */

/* Splits "ADDR:PORT" / "[V6]:PORT" into host and port. */
static int split_listen(const char *s, char *host, size_t hostsz, char *port, size_t portsz)
{
	const char *colon;
	size_t hl;

	if (s[0] == '[') {
		const char *e = strchr(s, ']');

		if (!e || e[1] != ':')
			return -EINVAL;
		hl = (size_t)(e - s - 1);
		if (hl == 0 || hl >= hostsz)
			return -EINVAL;
		memcpy(host, s + 1, hl);
		colon = e + 1;
	} else {
		colon = strrchr(s, ':');
		if (!colon || colon == s)
			return -EINVAL;
		hl = (size_t)(colon - s);
		if (hl >= hostsz || memchr(s, ':', hl))
			return -EINVAL;
		memcpy(host, s, hl);
	}
	host[hl] = '\0';
	if (!colon[1] || strlen(colon + 1) >= portsz)
		return -EINVAL;
	for (const char *p = colon + 1; *p; p++)
		if (*p < '0' || *p > '9')
			return -EINVAL;
	if (atoi(colon + 1) > 65535)
		return -EINVAL;
	str_lcpy(port, colon + 1, portsz);
	return 0;
}

int ui_front_open(struct ui *ui, struct diag *d)
{
	struct addrinfo hints = {.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE,
				 .ai_socktype = SOCK_STREAM};
	struct addrinfo *ai = NULL;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char host[64], port[8], hbuf[64];
	int one = 1, err, fd;

	if (split_listen(ui->listen, host, sizeof(host), port, sizeof(port)) < 0) {
		diag_add(
			d, DIAG_ERROR, NULL, NULL, "--ui-listen",
			"'%s' is not ADDR:PORT (a numeric address, e.g. 0.0.0.0:9443 or [::]:9443)",
			ui->listen);
		return -EINVAL;
	}
	err = getaddrinfo(host, port, &hints, &ai);
	if (err != 0 || !ai) {
		diag_add(d, DIAG_ERROR, NULL, NULL, "--ui-listen", "'%s' is not a numeric address",
			 host);
		return -EINVAL;
	}
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1)
		goto fail_errno;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (ai->ai_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, ai->ai_addr, ai->ai_addrlen) == -1 || listen(fd, 64) == -1 ||
	    getsockname(fd, (struct sockaddr *)&ss, &sl) == -1)
		goto fail_errno;
	freeaddrinfo(ai);
	ui->lfd = fd;
	if (ss.ss_family == AF_INET6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

		inet_ntop(AF_INET6, &s6->sin6_addr, hbuf, sizeof(hbuf));
		ui->port = ntohs(s6->sin6_port);
		snprintf(ui->bound, sizeof(ui->bound), "[%s]:%u", hbuf, ui->port);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

		inet_ntop(AF_INET, &s4->sin_addr, hbuf, sizeof(hbuf));
		ui->port = ntohs(s4->sin_port);
		snprintf(ui->bound, sizeof(ui->bound), "%s:%u", hbuf, ui->port);
	}
	ui_hosts_add(&ui->hosts, hbuf);
	return 0;

fail_errno:
	err = -errno;
	diag_add(d, DIAG_ERROR, NULL, NULL, "--ui-listen", "cannot listen on %s: %s", ui->listen,
		 strerror(errno));
	if (fd != -1)
		close(fd);
	freeaddrinfo(ai);
	return err;
}

/* -------- the thread -------- */

static void on_wake(struct loop *loop, void *arg)
{
	(void)arg;
	loop_stop(loop);
}

static void *ui_thread(void *arg)
{
	struct ui *ui = arg;
	struct loop_io lio;
	struct timer sample = {0};
	int err;

	if (loop_io_add(ui->loop, &lio, ui->lfd, LOOP_READ, on_accept, ui) < 0) {
		log_error("event=ui_failed what=listen_register");
		return NULL;
	}
	timer_add(ui->loop, &sample, 1000, ui_traffic_tick, ui);
	err = loop_run(ui->loop);
	if (err < 0)
		log_error("event=ui_loop_failed error=%s", log_q(err_str(err)));
	timer_cancel(ui->loop, &sample);
	loop_io_del(ui->loop, &lio);
	while (ui->conns)
		fc_close(ui->conns, "shutdown");
	return NULL;
}

int ui_front_start(struct ui *ui)
{
	int err;

	ui->loop = loop_new();
	if (!ui->loop)
		return -ENOMEM;
	if ((err = loop_set_wake(ui->loop, on_wake, ui)) < 0)
		return err;
	if ((err = pthread_create(&ui->thread, NULL, ui_thread, ui)) != 0)
		return -err;
	ui->thread_started = true;
	return 0;
}

void ui_front_stop(struct ui *ui)
{
	if (ui->thread_started) {
		loop_wake(ui->loop);
		pthread_join(ui->thread, NULL);
		ui->thread_started = false;
	}
	if (ui->loop) {
		loop_free(ui->loop);
		ui->loop = NULL;
	}
	if (ui->lfd > 0) {
		close(ui->lfd);
		ui->lfd = -1;
	}
	ui_cert_set(ui, NULL);
}
