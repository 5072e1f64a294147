/* SPDX-License-Identifier: MIT */
/*
 * l4.h: the L4 data plane, private to proxy/: TLS listeners (passthrough by
 * the SNI of the ClientHello, or terminate and forward plain TCP), TCP
 * listeners (weighted backends, splice, half-close) and UDP listeners
 * (per-client sessions over connected upstream sockets). proxy.c opens the
 * sockets and hands accepted fds and readable UDP sockets to this code.
 *
 *   l4_pick.c  pure choices: listener and TLSRoute by SNI, weighted backend,
 *              the bounded LRU session table (unit-tested alone);
 *   l4.c       TCP/TLS connections: SNI peek, connect, relay (worker thread),
 *              per-socket terminate contexts (built at publish, control thread);
 *   l4_udp.c   UDP sessions (worker thread).
 */
#ifndef WG_PROXY_L4_H
#define WG_PROXY_L4_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/diag.h"
#include "proxy/internal.h"
#include "proxy/snapshot_types.h"

#define L4_PEEK_TIMEOUT_MS 10000   /* the ClientHello must arrive within */
#define L4_PEEK_MAX (16384 + 1024) /* bytes of ClientHello records looked at */
#define L4_TCP_IDLE_MS 600000      /* a TCP/TLS stream with no byte either way */
#define L4_UDP_IDLE_MS 60000       /* a UDP session with no datagram either way */
#define L4_UDP_MAX_SESSIONS 8192   /* per worker; the least recently used goes */
#define L4_PIPE_FREE_MAX 64        /* empty splice pipes kept per worker */
#define L4_PIPE_BYTES (256 * 1024) /* splice pipe capacity asked for */

/* ---- pure parts (l4_pick.c): any thread ---- */

/* Whether host (lower case, no trailing dot) matches pattern: an exact name,
 * or "*.suffix" matching one or more labels before ".suffix". NULL or empty
 * pattern: false. */
bool l4_host_matches(const char *pattern, const char *host);
/* Specificity of a matching pattern for precedence: exact names rank above
 * every wildcard, longer wildcards above shorter, "match anything" lowest.
 * -1 when pattern does not match host. */
int l4_host_rank(const char *pattern, const char *host);

/* The listener of a TLS-class socket that owns sni (NULL/"" = no SNI):
 * exact hostname beats the longest wildcard beats a listener without one.
 * -1 if none. */
int l4_listener_for_sni(const struct snap_socket *s, const char *sni);
/* The TLSRoute of l for sni: the most specific hostname wins, ties go to
 * the earlier route (gwapi lists them in precedence order); a route without
 * hostnames matches any name (and no SNI). NULL if none. */
const struct snap_tls_route *l4_tls_route_for_sni(const struct snap_listener *l, const char *sni);
/* Weighted choice: r is a uniform random number; weights of 0 are never
 * chosen. NULL when the weights add up to 0. */
const struct snap_backend *l4_pick_backend(const struct snap_backend *v, size_t n, uint64_t r);
/* Whether a backend can be connected to at all. */
static inline bool l4_backend_usable(const struct snap_backend *b)
{
	return b && !b->invalid_status && b->n_endpoints;
}

/*
 * The UDP session table: a chained hash over (listening socket, client
 * address) with an LRU list, bounded by max entries. Entries are embedded
 * in their owner (struct l4_slink first in it); the table never allocates
 * entries, only its buckets. All-zero entries are unlinked.
 */
struct l4_skey {
	uint64_t sock_id;
	uint8_t addr[16]; /* IPv4 in the first 4 bytes */
	uint16_t port;
	uint8_t family;
};

struct l4_slink {
	struct l4_slink *hnext;               /* bucket chain */
	struct l4_slink *lru_prev, *lru_next; /* most recent at the head */
	uint64_t hash;
	uint64_t last_ms;
	struct l4_skey key;
};

struct l4_stab {
	struct l4_slink **buckets;
	size_t n_buckets; /* power of two */
	size_t n, max;
	struct l4_slink *head, *tail; /* LRU: head most recent */
};

/* 0 or -ENOMEM. max: entries allowed (> 0). */
int l4_stab_init(struct l4_stab *t, size_t max);
void l4_stab_fini(struct l4_stab *t);
/* Fills k from a socket address; -EAFNOSUPPORT for other families. */
int l4_skey_from(struct l4_skey *k, uint64_t sock_id, const struct sockaddr *sa);
struct l4_slink *l4_stab_find(struct l4_stab *t, const struct l4_skey *k);
/* Links e (key already set) as the most recent, stamped now_ms. The caller
 * evicts first when l4_stab_full(). */
void l4_stab_insert(struct l4_stab *t, struct l4_slink *e, uint64_t now_ms);
void l4_stab_remove(struct l4_stab *t, struct l4_slink *e);
/* Marks e used at now_ms (moves it to the head). */
void l4_stab_touch(struct l4_stab *t, struct l4_slink *e, uint64_t now_ms);
static inline bool l4_stab_full(const struct l4_stab *t)
{
	return t->n >= t->max;
}
/* The least recently used entry, NULL if empty. */
static inline struct l4_slink *l4_stab_oldest(const struct l4_stab *t)
{
	return t->tail;
}

/* ---- publish (control thread): l4.c ---- */

/* Whether proxy/ serves this socket with the L4 code: UDP, or a TCP socket
 * with a TLS or TCP listener (HTTPS listeners sharing a socket with TLS
 * ones are handed back to conn.c after the SNI peek). */
bool l4_socket_is_l4(const struct snap_socket *s);
/* Prepares rs for L4 (rs->l4): the TLS context of its Terminate listeners
 * (certificate by SNI; an unchanged one is taken from prev). Memory comes
 * from rt's arena, the context is released by an arena cleanup. A socket
 * whose terminate certificates are all unusable still serves passthrough.
 * 0 or -ENOMEM. */
int l4_sock_build(struct rt *rt, struct rt_socket *rs, const struct rt *prev,
		  const struct proxy_config *cfg, struct diag *d);
/* A bound UDP socket for one worker (SO_REUSEPORT); fd or -errno. */
int l4_udp_listen(const struct sockaddr_storage *ss, socklen_t len);

/* ---- shared by the l4*.c files ---- */

struct tls_server;
struct l4conn;
struct l4_usess;

/* Per socket, per rt (arena memory). */
struct l4_sock {
	struct tls_server *tls_server; /* Terminate listeners' certificates; NULL if none */
	uint64_t tls_key;              /* hash of what it was built from */
};

/* Per worker, created on first use. */
struct l4_worker {
	struct l4conn *conns; /* live TCP/TLS streams, doubly linked */
	size_t n_conns;
	char *peek;      /* L4_PEEK_MAX bytes for MSG_PEEK */
	char *dgram;     /* one UDP datagram, allocated on first use */
	int (*pipes)[2]; /* empty pipes for splice */
	size_t n_pipes;
	struct l4_stab sessions;
	struct timer sweep;        /* UDP idle expiry */
	struct l4conn *dead_conns; /* closed during dispatch, freed by a deferred call */
	struct l4_usess *dead_sess;
	bool dead_scheduled, dead_sess_scheduled;
	uint64_t udp_rr;
};

/* The route counters' id of listener li of rs (rt_build's rs->listeners):
 * of its TLS route tr, or with tr NULL of its TCP or UDP route; 0 when
 * not counted. */
static inline uint32_t l4_stat_id(const struct rt_socket *rs, size_t li,
				  const struct snap_tls_route *tr)
{
	const struct rt_listener *rl = li < rs->n_listeners ? rs->listeners[li] : NULL;

	if (!rl)
		return 0;
	if (tr)
		return rl->tls_stat_ids ? rl->tls_stat_ids[tr - rl->l->tls_routes] : 0;
	return rl->l4_stat_id;
}

/* The worker's L4 state, created on first use; NULL on ENOMEM. */
struct l4_worker *l4_worker_get(struct worker *w);
/* The UDP half of drain/free (l4_udp.c). */
void l4_udp_close_all(struct worker *w, uint64_t sock_id);
void l4_udp_free(struct worker *w);

/* ---- worker thread ---- */

/* Takes ownership of fd, accepted on an L4 socket (rs->l4 set). */
void l4_accept(struct worker *w, struct wlsn *l, struct rt_socket *rs, int fd,
	       const struct sockaddr *sa, socklen_t salen);
/* Reads the datagrams waiting on a UDP listening socket. */
void l4_udp_input(struct worker *w, struct wlsn *l);
/* The worker stops polling ps: its UDP sessions end (replies went out
 * through it). */
void l4_lsn_closed(struct worker *w, struct psock *ps);
/* Drain: connections still peeking close at once, streams run on until
 * force (the drain deadline); UDP sessions end. */
void l4_drain(struct worker *w, bool force);
/* Frees everything L4 of a stopped worker. */
void l4_worker_free(struct worker *w);

#endif
