/* SPDX-License-Identifier: MIT */
/*
 * l4_udp.c: UDP listeners (UDPRoute). Each client address seen on a
 * listening socket gets a session: a backend drawn by weight, an endpoint in
 * turn, and an upstream socket connected to it, so the backend's replies
 * come back on that socket alone and go out to the client through the
 * listening socket. A session lives while datagrams flow either way; after
 * L4_UDP_IDLE_MS of silence, or when the table is full and it is the least
 * recently used, or when its listener goes, it ends. SO_REUSEPORT hashes a
 * client's datagrams to one worker, so the table is per worker, lock-free.
 *
 * Traffic per route (rstats.c): a session is one request of its UDPRoute's
 * rule 0, counted when it starts; datagram bytes are counted as they pass
 * (client to backend in, backend to client out); at its end the session
 * gets its duration and a response class: 5xx when the backend answered
 * nothing but ICMP errors (refused: each one is an upstream error of the
 * rule), 2xx otherwise. A datagram whose listener has a route but no usable
 * backend counts as a session of its own that ends at once with 5xx.
 *
 * What it does not do: no reassembly or inspection of datagrams, no health
 * checks (an ICMP error only shows in the counters), replies leave a
 * wildcard-bound listener with the address routing picks (no IP_PKTINFO).
 * Worker thread only, except l4_udp_listen (control thread, at publish).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/hash.h"
#include "core/log.h"
#include "proxy/l4.h"

#define DGRAM_MAX 65536
#define BATCH 64
#define SWEEP_MAX_MS 5000

struct l4_usess {
	struct l4_slink link; /* key: (listening socket id, client address) */
	struct l4_usess *next_dead;
	struct worker *w;
	struct psock *ps; /* borrowed: polled by the worker while the session lives */
	int ufd;
	struct loop_io io;
	bool closed;
	struct sockaddr_storage peer;
	socklen_t peer_len;
	char endpoint[64];
	struct snap_endpoint ep;
	/* the snapshot the backend was checked against (identity only, no
	 * reference): after a route change the session is checked again */
	const struct snapshot *snap;
	uint64_t revision;
	uint64_t dgrams_up, dgrams_down;
	uint64_t start_ms;
	uint64_t icmp_errors;   /* refusals from the backend (ICMP, via recv) */
	struct route_ctr *rctr; /* the route rule's counters, or NULL */
};

int l4_udp_listen(const struct sockaddr_storage *ss, socklen_t len)
{
	int one = 1;
	int fd = socket(ss->ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd == -1)
		return -errno;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == -1 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) == -1 ||
	    bind(fd, (const struct sockaddr *)ss, len) == -1) {
		int e = -errno;
		close(fd);
		return e;
	}
	return fd;
}

static void free_dead(void *arg)
{
	struct worker *w = arg;
	struct l4_worker *lw = w->l4;

	if (!lw)
		return;
	lw->dead_sess_scheduled = false;
	while (lw->dead_sess) {
		struct l4_usess *s = lw->dead_sess;
		lw->dead_sess = s->next_dead;
		free(s);
	}
}

static void sess_close(struct l4_usess *s, const char *why)
{
	struct worker *w = s->w;
	struct l4_worker *lw = w->l4;

	if (s->closed)
		return;
	s->closed = true;
	l4_stab_remove(&lw->sessions, &s->link);
	loop_io_del(w->loop, &s->io);
	close(s->ufd);
	rstat_done(s->rctr, !s->dgrams_down && s->icmp_errors ? 502 : 200, 0, 0,
		   loop_now_ms(w->loop) - s->start_ms);
	log_debug("event=udp_session_end endpoint=%s dgrams_up=%llu dgrams_down=%llu reason=%s",
		  log_q(s->endpoint), (unsigned long long)s->dgrams_up,
		  (unsigned long long)s->dgrams_down, log_q(why));
	s->next_dead = lw->dead_sess;
	lw->dead_sess = s;
	if (!lw->dead_sess_scheduled && loop_defer(w->loop, free_dead, w) == 0)
		lw->dead_sess_scheduled = true;
}

static void on_sweep(struct timer *t)
{
	struct worker *w = t->arg;
	struct l4_worker *lw = w->l4;
	uint64_t now = loop_now_ms(w->loop);
	struct l4_slink *e;

	while ((e = l4_stab_oldest(&lw->sessions)) && now - e->last_ms >= L4_UDP_IDLE_MS)
		sess_close((struct l4_usess *)e, "idle");
	if (lw->sessions.n) {
		uint64_t next = L4_UDP_IDLE_MS - (now - l4_stab_oldest(&lw->sessions)->last_ms);
		timer_add(w->loop, &lw->sweep, next < SWEEP_MAX_MS ? next + 1 : SWEEP_MAX_MS,
			  on_sweep, w);
	}
}

/* Backend replies: out through the listening socket to the client. */
static void on_sess_io(struct loop_io *io, uint32_t events)
{
	struct l4_usess *s = io->arg;
	struct worker *w = s->w;
	int lfd = s->ps->fds[w->idx];
	char *dgram = w->l4->dgram;
	(void)events;

	for (int i = 0; i < BATCH && !s->closed; i++) {
		ssize_t n = recv(s->ufd, dgram, DGRAM_MAX, 0);
		if (n == -1) {
			if (errno == EAGAIN || errno == EINTR)
				return;
			/* ICMP errors (ECONNREFUSED) arrive here: counted, not fatal */
			STAT_ADD(w, upstream_errors, 1);
			s->icmp_errors++;
			if (s->rctr)
				RCTR_ADD(s->rctr, upstream_errors, 1);
			continue;
		}
		if (sendto(lfd, dgram, (size_t)n, MSG_DONTWAIT, (struct sockaddr *)&s->peer,
			   s->peer_len) == -1)
			continue; /* UDP: a reply that cannot go out is dropped */
		s->dgrams_down++;
		STAT_ADD(w, bytes_out, (uint64_t)n);
		if (s->rctr)
			RCTR_ADD(s->rctr, bytes_out, (uint64_t)n);
		l4_stab_touch(&w->l4->sessions, &s->link, loop_now_ms(w->loop));
	}
}

/* The UDP listener with a route on the worker's socket sock_id (listeners
 * of one UDP socket share it), or NULL. */
static const struct rt_listener *udp_listener(struct worker *w, uint64_t sock_id)
{
	struct rt_socket *rs = w->rt ? rt_socket_by_id(w->rt, sock_id) : NULL;

	if (!rs)
		return NULL;
	for (size_t i = 0; i < rs->s->n_listeners; i++)
		if (rs->s->listeners[i]->proto == SNAP_P_UDP && rs->s->listeners[i]->l4_route &&
		    rs->listeners[i])
			return rs->listeners[i];
	return NULL;
}

static int endpoint_sockaddr(const struct snap_endpoint *e, struct sockaddr_storage *ss,
			     socklen_t *len)
{
	struct sockaddr_in *in4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, e->addr, &in4->sin_addr) == 1) {
		in4->sin_family = AF_INET;
		in4->sin_port = htons(e->port);
		*len = sizeof(*in4);
		return 0;
	}
	if (inet_pton(AF_INET6, e->addr, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(e->port);
		*len = sizeof(*in6);
		return 0;
	}
	return -EINVAL;
}

/* A new session for the client key k, counted as a request of the route;
 * NULL (datagram dropped) when there is no route, no usable backend or no
 * memory (a routed one is then counted as ended with 5xx). */
static struct l4_usess *sess_new(struct worker *w, struct wlsn *l, const struct l4_skey *k,
				 const struct sockaddr_storage *peer, socklen_t peer_len)
{
	struct l4_worker *lw = w->l4;
	const struct rt_listener *rl = udp_listener(w, l->ps->id);
	const struct snap_listener *sl;
	const struct snap_backend *b;
	const struct snap_endpoint *e;
	struct route_ctr *rc;
	struct sockaddr_storage ss;
	socklen_t sl_len;
	struct l4_usess *s;

	if (!rl)
		return NULL;
	sl = rl->l;
	if ((rc = rstat_ctr(&w->rstats, rl->l4_stat_id)))
		RCTR_ADD(rc, requests, 1);
	b = l4_pick_backend(sl->l4_backends, sl->n_l4_backends, rand_u64());
	if (!l4_backend_usable(b))
		goto fail;
	e = &b->endpoints[lw->udp_rr++ % b->n_endpoints];
	if (endpoint_sockaddr(e, &ss, &sl_len))
		goto fail;
	if (!(s = calloc(1, sizeof(*s))))
		goto fail;
	s->ufd = socket(ss.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s->ufd == -1)
		goto fail_sess;
	if (connect(s->ufd, (struct sockaddr *)&ss, sl_len) == -1) {
		if (rc)
			RCTR_ADD(rc, upstream_errors, 1);
		goto fail_sock;
	}
	if (loop_io_add(w->loop, &s->io, s->ufd, LOOP_READ, on_sess_io, s))
		goto fail_sock;
	if (l4_stab_full(&lw->sessions))
		sess_close((struct l4_usess *)l4_stab_oldest(&lw->sessions), "table full");
	s->w = w;
	s->ps = l->ps;
	s->link.key = *k;
	memcpy(&s->peer, peer, peer_len);
	s->peer_len = peer_len;
	snprintf(s->endpoint, sizeof(s->endpoint), "%s:%u", e->addr, e->port);
	s->ep = *e;
	s->snap = w->rt->snap;
	s->revision = w->rt->snap->revision;
	s->start_ms = loop_now_ms(w->loop);
	s->rctr = rc;
	l4_stab_insert(&lw->sessions, &s->link, loop_now_ms(w->loop));
	if (!timer_is_armed(&lw->sweep))
		timer_add(w->loop, &lw->sweep, SWEEP_MAX_MS, on_sweep, w);
	log_debug("event=udp_session route=%s endpoint=%s", log_q(sl->l4_route),
		  log_q(s->endpoint));
	return s;
fail_sock:
	close(s->ufd);
fail_sess:
	free(s);
fail:
	rstat_done(rc, 503, 0, 0, 0);
	return NULL;
}

/* Whether the session's endpoint is still behind a backend its listener
 * may choose in the worker's current snapshot. */
static bool sess_still_routed(struct worker *w, const struct l4_usess *s)
{
	const struct rt_listener *rl = udp_listener(w, s->link.key.sock_id);
	const struct snap_listener *sl = rl ? rl->l : NULL;

	for (size_t i = 0; sl && i < sl->n_l4_backends; i++) {
		const struct snap_backend *b = &sl->l4_backends[i];
		if (!b->weight || !l4_backend_usable(b))
			continue;
		for (size_t k = 0; k < b->n_endpoints; k++)
			if (b->endpoints[k].port == s->ep.port &&
			    !strcmp(b->endpoints[k].addr, s->ep.addr))
				return true;
	}
	return false;
}

void l4_udp_input(struct worker *w, struct wlsn *l)
{
	struct l4_worker *lw = l4_worker_get(w);
	int fd = l->ps->fds[w->idx];
	char *dgram = lw ? lw->dgram : NULL;

	if (lw && !dgram && !(dgram = lw->dgram = malloc(DGRAM_MAX)))
		return;
	if (!dgram) {
		char drop[1];
		while (recv(fd, drop, sizeof(drop), MSG_DONTWAIT) != -1)
			;
		return;
	}
	for (int i = 0; i < BATCH; i++) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		struct l4_skey k;
		ssize_t n = recvfrom(fd, dgram, DGRAM_MAX, 0, (struct sockaddr *)&ss, &sl);
		if (n == -1)
			return;
		if (!lw || w->draining || l4_skey_from(&k, l->ps->id, (struct sockaddr *)&ss))
			continue;
		struct l4_usess *s = (struct l4_usess *)l4_stab_find(&lw->sessions, &k);
		if (s && w->rt &&
		    (s->snap != w->rt->snap || s->revision != w->rt->snap->revision)) {
			if (sess_still_routed(w, s)) {
				s->snap = w->rt->snap;
				s->revision = w->rt->snap->revision;
			} else {
				sess_close(s, "route changed");
				s = NULL;
			}
		}
		if (s)
			l4_stab_touch(&lw->sessions, &s->link, loop_now_ms(w->loop));
		else if (!(s = sess_new(w, l, &k, &ss, sl)))
			continue;
		if (send(s->ufd, dgram, (size_t)n, MSG_DONTWAIT) == -1)
			continue; /* dropped, as UDP may */
		s->dgrams_up++;
		STAT_ADD(w, bytes_in, (uint64_t)n);
		if (s->rctr)
			RCTR_ADD(s->rctr, bytes_in, (uint64_t)n);
	}
}

void l4_udp_close_all(struct worker *w, uint64_t sock_id)
{
	struct l4_worker *lw = w->l4;

	if (!lw)
		return;
	for (struct l4_slink *e = lw->sessions.head, *n; e; e = n) {
		n = e->lru_next;
		if (!sock_id || e->key.sock_id == sock_id)
			sess_close((struct l4_usess *)e, sock_id ? "listener closed" : "draining");
	}
}

void l4_udp_free(struct worker *w)
{
	struct l4_worker *lw = w->l4;

	if (!lw)
		return;
	l4_udp_close_all(w, 0);
	timer_cancel(w->loop, &lw->sweep);
	free_dead(w);
	free(lw->dgram);
	lw->dgram = NULL;
}
