/* SPDX-License-Identifier: MIT */
/*
 * upstream.c: per-worker endpoint records: the table that finds an
 * endpoint's record by address and port, passive health (consecutive
 * failures eject an endpoint for a while; the first success after the rest
 * brings it back), the choice of backend and endpoint for an attempt, and
 * the non-blocking connect to an endpoint, and the pools of idle
 * connections that hang off these records (one for conn.c's connections,
 * one for upx.c's; the connections themselves are driven there). Worker
 * thread only; records live as long as the worker.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/hash.h"
#include "core/log.h"
#include "proxy/internal.h"

struct upep *upep_get(struct worker *w, const char *addr, uint16_t port)
{
	uint64_t h = hash_mix(hash_bytes(addr, strlen(addr)), port);

	if (!w->cap_eps) {
		w->eps = calloc(256, sizeof(*w->eps));
		if (!w->eps)
			return NULL;
		w->cap_eps = 256;
	}
	size_t b = (size_t)h & (w->cap_eps - 1);
	for (struct upep *e = w->eps[b]; e; e = e->next)
		if (e->hash == h && e->port == port && !strcmp(e->addr, addr))
			return e;
	struct upep *e = calloc(1, sizeof(*e));
	if (!e)
		return NULL;
	e->hash = h;
	e->port = port;
	str_lcpy(e->addr, addr, sizeof(e->addr));
	e->next = w->eps[b];
	w->eps[b] = e;
	return e;
}

bool upep_is_ejected(struct worker *w, const struct upep *ep)
{
	return ep->ejected_until_ms && loop_now_ms(w->loop) < ep->ejected_until_ms;
}

void upep_result(struct worker *w, struct upep *ep, bool ok)
{
	if (ok) {
		if (ep->ejected_until_ms)
			log_info("event=endpoint_restored worker=%u endpoint=%s:%u", w->idx,
				 log_q(ep->addr), ep->port);
		ep->fails = 0;
		ep->ejected_until_ms = 0;
		return;
	}
	if (++ep->fails >= PX_EJECT_FAILURES && !upep_is_ejected(w, ep)) {
		ep->ejected_until_ms = loop_now_ms(w->loop) + PX_EJECT_MS;
		log_warn("event=endpoint_ejected worker=%u endpoint=%s:%u failures=%u for_ms=%u",
			 w->idx, log_q(ep->addr), ep->port, ep->fails, PX_EJECT_MS);
	}
}

void upep_free_all(struct worker *w)
{
	for (size_t i = 0; i < w->cap_eps; i++) {
		struct upep *e = w->eps[i];
		while (e) {
			struct upep *n = e->next;
			up_pool_close_all(w, &e->pool);
			up_pool_close_all(w, &e->x_pool);
			free(e);
			e = n;
		}
	}
	free(w->eps);
	w->eps = NULL;
	w->cap_eps = 0;
}

const struct snap_backend *up_pick_backend(const struct rt_rule *rr)
{
	const struct snap_http_rule *r = rr->r;
	if (!rr->total_weight)
		return NULL;
	if (r->n_backends == 1)
		return &r->backends[0];
	uint64_t x = rand_u64() % rr->total_weight;
	for (size_t i = 0; i < r->n_backends; i++) {
		if (x < r->backends[i].weight)
			return &r->backends[i];
		x -= r->backends[i].weight;
	}
	return &r->backends[r->n_backends - 1];
}

struct upep *up_pick_endpoint(struct worker *w, const struct snap_backend *b)
{
	size_t n = b->n_endpoints;
	struct upep *first = NULL;
	for (size_t k = 0; k < n; k++) {
		const struct snap_endpoint *e = &b->endpoints[(w->rr++) % n];
		struct upep *ep = upep_get(w, e->addr, e->port);
		if (!ep)
			return NULL;
		if (!first)
			first = ep;
		if (!upep_is_ejected(w, ep))
			return ep;
	}
	return first;
}

/* Starts a non-blocking connect; the fd, or -errno. */
int up_connect(const char *addr, uint16_t port)
{
	struct sockaddr_storage ss;
	socklen_t len;
	struct sockaddr_in *in4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
	int one = 1;

	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, addr, &in4->sin_addr) == 1) {
		in4->sin_family = AF_INET;
		in4->sin_port = htons(port);
		len = sizeof(*in4);
	} else if (inet_pton(AF_INET6, addr, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(port);
		len = sizeof(*in6);
	} else {
		return -EINVAL;
	}
	int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1)
		return -errno;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (struct sockaddr *)&ss, len) == -1 && errno != EINPROGRESS) {
		int e = -errno;
		close(fd);
		return e;
	}
	return fd;
}

/* ---- idle connection pools ---- */

static void pool_unlink(struct up_idle *n)
{
	struct up_pool *p = n->pool;
	struct up_idle **pp = &p->head;
	while (*pp && *pp != n)
		pp = &(*pp)->next;
	if (*pp) {
		*pp = n->next;
		p->n--;
	}
	n->next = NULL;
	n->pool = NULL;
}

static void on_pool_timer(struct timer *t)
{
	struct up_idle *n = t->arg;
	pool_unlink(n);
	n->close(n);
}

bool up_pool_put(struct worker *w, struct up_pool *p, struct up_idle *n)
{
	if (p->n >= PX_UP_IDLE_MAX || w->draining)
		return false;
	n->next = p->head;
	n->pool = p;
	p->head = n;
	p->n++;
	timer_add(w->loop, &n->timer, PX_UP_IDLE_MS, on_pool_timer, n);
	return true;
}

struct up_idle *up_pool_take(struct worker *w, struct up_pool *p, const struct tls_client *tc)
{
	struct up_idle *n = p->head;
	while (n && n->tls_ctx != tc)
		n = n->next;
	if (n)
		up_pool_remove(w, n);
	return n;
}

void up_pool_remove(struct worker *w, struct up_idle *n)
{
	if (!n->pool)
		return;
	pool_unlink(n);
	timer_cancel(w->loop, &n->timer);
}

void up_pool_close_all(struct worker *w, struct up_pool *p)
{
	while (p->head) {
		struct up_idle *n = p->head;
		up_pool_remove(w, n);
		n->close(n);
	}
}
