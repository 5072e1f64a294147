/* SPDX-License-Identifier: MIT */
/*
 * internal.h: the data plane's private types, shared by the files of proxy/
 * and never included from another module.
 *
 *   struct rt      the runtime view of one published snapshot: per-listener
 *                  route indexes, compiled regexes, TLS server contexts and
 *                  the listening sockets. Built on the control thread by
 *                  proxy_publish, then read-only; refcounted (every worker
 *                  holds the newest, every request the one it started on).
 *   struct psock   one bound address:port with one SO_REUSEPORT fd per
 *                  worker; refcounted by the rts that list it and by the
 *                  workers that have its fd in their loop; the last
 *                  reference closes the fds.
 *   struct worker  one thread, one loop, its connections, buffer freelist,
 *                  upstream pools and counters. Nothing in it is touched by
 *                  another thread except `pending` (atomic) and the counters
 *                  (relaxed reads).
 */
#ifndef WG_PROXY_INTERNAL_H
#define WG_PROXY_INTERNAL_H

#include <pthread.h>
#include <regex.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "core/buf.h"
#include "core/diag.h"
#include "core/loop.h"
#include "core/str.h"
#include "http/h1.h"
#include "proxy/proxy.h"
#include "proxy/snapshot_types.h"

struct arena;
struct conn;
struct h2conn;
struct h2up;
struct upconn;
struct upx_conn;
struct worker;
struct l4_sock;
struct l4_worker;
struct tls_client;
struct tls_server;
struct tls_conn;

#define WG_MAX_WORKERS 256
#define PX_MAX_HEADERS 128  /* parser array; the limit (100) is lower */
#define PX_EJECT_FAILURES 3 /* consecutive failures before ejection */
#define PX_EJECT_MS 10000   /* how long an ejected endpoint rests */
#define PX_UP_IDLE_MS 60000 /* idle upstream connections are closed after */
#define PX_UP_IDLE_MAX 64   /* idle upstream connections kept per endpoint */
#define PX_MIRROR_TIMEOUT_MS 5000
/* how far a mirror may fall behind the request body it copies */
#define PX_MIRROR_LAG_BYTES (256u * 1024)
/* caps when neither the board nor the local configuration set them */
#define PX_MAX_BODY_DEFAULT (64ull << 20)
#define PX_MAX_CONNS_DEFAULT 16384
#define PX_MAX_CONNS_PER_CLIENT_DEFAULT 256
#define PX_REJECT_RESERVE 64 /* connections per worker kept to answer refusals with 503 */

/* ---- limits and admission (admit.c) ---- */

/* The limits a listener port runs with: the box's, overridden field by
 * field by the port's own entry; h1 is the parser's view of the same.
 * conns counts the port's client connections (under admit.mu). */
struct px_limits {
	uint16_t port; /* 0: the box's defaults */
	struct proxy_limits l;
	struct h1_limits h1;
};

/* Client connections per address (and listener port), for the
 * per-client cap: open addressing, linear probing, n == 0 is empty. */
struct peer_ent {
	uint8_t key[18]; /* address (IPv4 mapped; IPv6 by its /64), then port */
	uint32_t n;
};

struct peer_tab {
	struct peer_ent *v;
	size_t cap; /* power of two, or 0 */
	size_t used;
};

/* Adds one connection for key: the new count, or 0 when out of memory. */
uint32_t peer_tab_inc(struct peer_tab *t, const uint8_t key[18]);
/* The count for key (0 when absent). */
uint32_t peer_tab_count(const struct peer_tab *t, const uint8_t key[18]);
/* Removes one connection for key; the entry goes when it reaches 0. */
void peer_tab_dec(struct peer_tab *t, const uint8_t key[18]);
void peer_tab_fini(struct peer_tab *t);

enum admit_result {
	ADMIT_OK = 0,
	ADMIT_BOX_FULL,      /* the box's max_connections */
	ADMIT_LISTENER_FULL, /* the port's max_connections */
	ADMIT_CLIENT_FULL,   /* max_conns_per_client for this address */
	ADMIT_NOMEM,
};

/* What an admitted connection holds, given back by admit_release. All-zero
 * holds nothing. */
struct admit_ticket {
	uint8_t key[18];
	uint16_t port;
	bool held;
};

/* Any thread; the lock is taken at accept and close only. */
struct admission {
	pthread_mutex_t mu;
	struct peer_tab peers;
	uint32_t conns;       /* client connections of the box */
	/* client connections open per listener port (the listener cap, the
	 * metrics), ports in the order they first took one */
	struct proxy_port_conns *ports;
	size_t n_ports, cap_ports;
	uint64_t log_next_ms; /* refusals are logged at most once a second */
	uint64_t log_suppressed;
};

/* The limits of a listener port (the box's when it has no entry). */
struct px_limits *px_limits_for(struct proxy *p, uint16_t port);
/* Counts a new client connection from sa on listener port (whose limits
 * are lim), or says which cap refuses it (then t holds nothing). */
enum admit_result admit_take(struct proxy *p, struct px_limits *lim, uint16_t port,
			     const struct sockaddr *sa, struct admit_ticket *t);
void admit_release(struct proxy *p, struct admit_ticket *t);
/* Logs a refusal, at most one line a second for the whole box (with the
 * number left out since the last one). */
void admit_log_refusal(struct proxy *p, enum admit_result why, const char *peer, uint16_t port,
		       uint64_t now_ms);

/* ---- listening sockets ---- */

struct psock {
	uint32_t refs; /* atomic */
	uint64_t id;   /* unique per proxy, never reused */
	char addr[48];
	uint16_t port;
	enum snap_transport transport;
	unsigned n_fds;
	int fds[]; /* one per worker, -1 where not open */
};

void psock_ref(struct psock *s);
void psock_unref(struct psock *s);

/* ---- runtime view of a snapshot ---- */

/*
 * Routing state shared by successive rts. A publish after a few route
 * changes keeps every rule whose snapshot entry is unchanged (the same
 * bytes: gwapi copies an unchanged route's rules, pointers and all, into
 * the next snapshot) together with its compiled regexes and the host runs
 * that hold it, and makes only what changed. These objects live in the
 * store, an arena shared by the rts that use it (arena_ref): the control
 * thread appends to it while building, and nothing in it changes once an
 * rt that reaches it is published, so workers read it without locks. What
 * replaced or removed stays behind as garbage; rt_build_from starts a new
 * store when that outgrows what the last whole build needed (see
 * RT_STORE_SLACK in route.c).
 */

/* One match of one rule on one listener (a snap_http_rule), compiled. r
 * points at copy, not into a snapshot: a rule outlives the snapshot it was
 * made for, and the copy's pointers stay valid because every rt holding
 * the rule has an equal entry in its own snapshot, which keeps what they
 * point to alive. */
struct rt_rule {
	const struct snap_http_rule *r; /* &copy */
	uint32_t stat_id; /* rstats.c id of (route, rule index); 0 = not counted */
	regex_t *path_re; /* SNAP_PM_REGEX */
	regex_t **hdr_re; /* per header match, NULL for exact */
	regex_t **query_re;
	size_t prefix_len; /* PathPrefix without its trailing slash */
	uint64_t total_weight;
	/* Precedence within its listener: increases along the listener's
	 * rules, with gaps left so that rules inserted later between two kept
	 * ones get a value between theirs. Runs are sorted by it. */
	uint64_t order;
	bool broken; /* a regex failed to compile: never matches */
	bool tls;    /* a backend or a mirror has upstream TLS (tlsglue.c) */
	struct snap_http_rule copy;
};

/* The rules of one host key (a lower-case host name, or ".suffix" of a
 * "*.suffix" wildcard), in precedence order. Immutable, in the store. */
struct rt_run {
	const char *key;
	uint32_t klen;
	uint32_t n;
	struct rt_rule *v[];
};

/* Host key → run. Open addressing, linear probing; h is the key's hash.
 * The slots are cut in pages (in the store); each rt has its own array of
 * page pointers, the previous rt's with the pages that a change wrote
 * replaced by copies, so a change costs a page, not the table. */
struct rt_slot {
	uint64_t h;
	const struct rt_run *run; /* NULL = empty slot */
};

struct rt_map {
	struct rt_slot **pages; /* cap >> shift of them */
	size_t cap;             /* slots: power of two, or 0 */
	size_t n;               /* keys */
	unsigned shift;         /* log2 of slots per page */
};

struct rt_listener {
	const struct snap_listener *l;
	/* parallel to l->http_rules: the next build compares its snapshot
	 * with l's to find the rules it keeps */
	struct rt_rule **rules;
	size_t n_rules;
	size_t n_broken; /* of them, broken (all made by this rt's build) */
	/* L4 routes keep one rule each (rule index 0), counted like rules[]:
	 * TLS listeners: the stat id of each of l->tls_routes; TCP and UDP
	 * listeners: the id of l->l4_route. Filled in at publish. */
	uint32_t *tls_stat_ids;
	uint32_t l4_stat_id;
	struct rt_map exact;      /* "host" → rules */
	struct rt_map wildcard;   /* ".suffix" → rules, from "*.suffix" */
	const struct rt_run *any; /* rules without hostnames, or NULL */
};

struct rt_socket {
	const struct snap_socket *s;
	struct psock *ps;               /* NULL when the bind failed */
	struct rt_listener **listeners; /* in the socket's order */
	size_t n_listeners;
	bool tls; /* HTTPS listeners: terminate TLS */
	struct tls_server *tls_server;
	uint64_t tls_key;   /* hash of what the context was built from */
	struct l4_sock *l4; /* set when the L4 code serves the socket (l4.h) */
};

/* A backend with upstream TLS (BackendTLSPolicy) and its client context. */
struct rt_btls {
	const struct snap_backend *b;
	struct tls_client *client; /* NULL when it could not be built: 502 */
	struct tls_client *client_h2; /* SNAP_APP_H2: the same with ALPN "h2" (h2.c) */
	uint64_t key;              /* hash of what it was built from */
};

struct rt {
	uint32_t refs; /* atomic */
	struct snapshot *snap;
	struct arena *arena;
	struct arena *store; /* shared rules, runs, pages, regexes; one reference */
	size_t store_base;   /* store bytes right after its last whole build */
	size_t n_tls_rules;  /* rules with tls set, over all listeners */
	struct rt_listener *listeners; /* parallel to snap->listeners */
	struct rt_socket *sockets;     /* parallel to snap->sockets */
	size_t n_sockets;
	struct rt_btls *btls; /* sorted by backend address, for bsearch */
	size_t n_btls;
};

/* What a build changed against the rt it started from: the rules it made
 * and those of prev it left out (borrowed from prev: valid while prev is).
 * All-zero is empty; rt_delta_fini frees the arrays. */
struct rt_delta {
	struct rt_rule **fresh;
	size_t n_fresh, cap_fresh;
	struct rt_rule **dropped;
	size_t n_dropped, cap_dropped;
	bool whole; /* nothing was kept from prev */
};

void rt_delta_fini(struct rt_delta *dl);

/* A listener served by the HTTP path (plain or TLS-terminated). */
static inline bool snap_listener_is_http(const struct snap_listener *l)
{
	return l->proto == SNAP_P_HTTP || l->proto == SNAP_P_HTTPS;
}

/* route.c (control thread for build, any worker for lookups) */
/* The rt of snap, which it takes over (NULL on ENOMEM, snap untouched).
 * rt_build_from keeps from prev (borrowed; NULL = none) the rules whose
 * snapshot entries are unchanged, and says in delta (may be NULL) what it
 * made and what it left out; beyond what the changes cost, it compares
 * and copies one pointer per rule and per host table page. rt_build
 * starts from nothing. Rules made have stat_id 0 (proxy_publish numbers
 * them). */
struct rt *rt_build_from(struct snapshot *snap, const struct rt *prev, struct rt_delta *delta,
			 struct diag *d);
struct rt *rt_build(struct snapshot *snap, struct diag *d);
void rt_ref(struct rt *rt);
void rt_unref(struct rt *rt);
/* The socket of rt whose psock has this id, or NULL. */
struct rt_socket *rt_socket_by_id(struct rt *rt, uint64_t id);
/* Normalises a Host value for matching: lower case, without port and
 * trailing dot, into out (size >= 256). Returns the length, 0 if invalid. */
size_t route_host_norm(struct str host, char *out, size_t size);
/* The listener of sock that serves host (exact > longest wildcard > none). */
struct rt_listener *route_listener(struct rt_socket *sock, const char *host, size_t hlen);
/* What a request looks like to the matcher. */
struct route_req {
	struct str method;
	struct str path;  /* without the query */
	struct str query; /* after '?', may be empty */
	const struct h1_header *headers;
	size_t n_headers;
};
/* The first rule of l matching the request, honouring hostname tiers. */
struct rt_rule *route_match(struct rt_listener *l, const char *host, size_t hlen,
			    const struct route_req *rq);
/* Whether a listener hostname pattern ("*.x" or exact; NULL = any) covers host. */
bool route_host_matches(const char *pattern, const char *host, size_t hlen);

/* ---- traffic per route rule (rstats.c) ---- */

/* Ids are 1-based (0 = not counted), stable for the life of the proxy:
 * one per (route "ns/name", rule index). */
#define RSTAT_CHUNK 256
#define RSTAT_MAX_CHUNKS 1024
#define RSTAT_MAX_IDS (RSTAT_CHUNK * RSTAT_MAX_CHUNKS)
#define RSTAT_LAT_BUCKETS PROXY_ROUTE_LAT_BUCKETS

/* One route rule's counters in one worker. Written by that worker only
 * (RCTR_ADD), read by any thread with relaxed loads. For TCPRoute and
 * TLSRoute a request is a client connection, for UDPRoute a session
 * (l4.c and l4_udp.c say how their ends map to response classes). */
struct route_ctr {
	uint64_t requests; /* matched the rule: counted when routed */
	uint64_t responses_by_class[6];
	uint64_t bytes_in, bytes_out;
	uint64_t latency_buckets[RSTAT_LAT_BUCKETS];
	uint64_t latency_sum_us;
	uint64_t upstream_errors; /* failed attempts at a backend, retried or not */
};

struct rstat_ent {
	char *route; /* owned */
	uint32_t rule_index;
	uint32_t serving; /* atomic: HTTP rules of the current rt with this id */
	uint64_t gen;     /* atomic: last publish that stamped the rule (L4 routes) */
};

/* The id registry. All-zero is empty. chunks and n are read by any thread
 * (entries below n are complete and immutable but for gen); the map is the
 * control thread's. */
struct rstat_reg {
	struct rstat_ent *chunks[RSTAT_MAX_CHUNKS];
	uint32_t n;    /* atomic: ids given out */
	uint64_t gen;  /* atomic: the publish being served */
	uint32_t *map; /* open addressing: id, 0 = empty */
	size_t map_cap;
	bool full_logged;
};

/* A worker's counters: chunk c holds ids c*RSTAT_CHUNK+1 .. (c+1)*RSTAT_CHUNK.
 * All-zero is empty. */
struct rstat_worker {
	struct route_ctr *chunks[RSTAT_MAX_CHUNKS];
};

/* Control thread, at publish: the id of (route, rule_index), stamped as
 * served by publish gen; 0 when route is NULL, on ENOMEM or when the
 * registry is full (the rule is then served uncounted). */
uint32_t rstat_id(struct rstat_reg *g, const char *route, uint32_t rule_index, uint64_t gen);
/* Control thread: HTTP rules entering (delta 1) or leaving (-1) the rt
 * being published; an id is collected while some rule serves it or it
 * was stamped by the publish being served. id 0 is ignored. */
void rstat_serve(struct rstat_reg *g, uint32_t id, int delta);
/* Control thread: gen is the publish now served; rules not stamped with it
 * (nor served, rstat_serve) are left out of rstat_collect from then on. */
void rstat_reg_publish(struct rstat_reg *g, uint64_t gen);
void rstat_reg_fini(struct rstat_reg *g);
/* Worker thread: allocates chunk (zeroed) and publishes it. NULL on ENOMEM. */
struct route_ctr *rstat_chunk_new(struct rstat_worker *rw, uint32_t chunk);
void rstat_worker_fini(struct rstat_worker *rw);
/* Any thread: the served rules' counters summed over the n_ws workers, in
 * id order, at most max into out. Returns how many rules are served (may
 * be more than max). */
size_t rstat_collect(const struct rstat_reg *g, struct rstat_worker *const *ws, size_t n_ws,
		     struct proxy_route_stats *out, size_t max);

/* Single-writer counter update: plain add, published with a relaxed store. */
#define RCTR_ADD(c, field, n) __atomic_store_n(&(c)->field, (c)->field + (n), __ATOMIC_RELAXED)

/* Worker thread: the counters of id, or NULL when it is not counted (0) or
 * its chunk cannot be allocated. Stable for the life of the proxy. */
static inline struct route_ctr *rstat_ctr(struct rstat_worker *rw, uint32_t id)
{
	struct route_ctr *c;

	if (!id)
		return NULL;
	c = rw->chunks[(id - 1) / RSTAT_CHUNK];
	if (!c && !(c = rstat_chunk_new(rw, (id - 1) / RSTAT_CHUNK)))
		return NULL;
	return c + (id - 1) % RSTAT_CHUNK;
}

/* Worker thread: the end of a request counted in c (NULL: nothing). */
static inline void rstat_done(struct route_ctr *c, int status, uint64_t bytes_in,
			      uint64_t bytes_out, uint64_t dur_ms)
{
	static const uint64_t bounds[RSTAT_LAT_BUCKETS - 1] = {5, 25, 100, 500, 2500};
	int b = 0;

	if (!c)
		return;
	while (b < RSTAT_LAT_BUCKETS - 1 && dur_ms > bounds[b])
		b++;
	RCTR_ADD(c, responses_by_class[status / 100 < 6 && status > 0 ? status / 100 : 0], 1);
	RCTR_ADD(c, bytes_in, bytes_in);
	RCTR_ADD(c, bytes_out, bytes_out);
	RCTR_ADD(c, latency_buckets[b], 1);
	RCTR_ADD(c, latency_sum_us, dur_ms * 1000);
}

/* ---- per-worker state ---- */

struct wlsn {
	struct loop_io io;
	struct psock *ps;
	struct worker *w;
	bool live;
};

/*
 * An idle upstream connection's place in its endpoint's pool, embedded in
 * the connection objects of conn.c and of upx.c. close frees the
 * connection once its idle deadline passed (it is out of the pool then).
 */
struct up_idle {
	struct up_idle *next;
	struct up_pool *pool; /* the pool it is in, NULL when in use */
	struct tls_client *tls_ctx; /* the BackendTLSPolicy it was made under; NULL: plain */
	struct timer timer;         /* the idle deadline */
	void (*close)(struct up_idle *n);
};

/* A LIFO list of idle connections, at most PX_UP_IDLE_MAX. */
struct up_pool {
	struct up_idle *head;
	unsigned n;
};

/* Per endpoint, per worker: idle connections and passive health. */
struct upep {
	struct upep *next; /* hash chain */
	uint64_t hash;
	char addr[48];
	uint16_t port;
	struct up_pool pool;   /* idle connections of conn.c */
	struct up_pool x_pool; /* the same for the exchanges of upx.c */
	unsigned fails; /* consecutive */
	uint64_t ejected_until_ms;
};

struct worker_stats {
	uint64_t requests;
	uint64_t responses_by_class[6];
	uint64_t bytes_in, bytes_out;
	uint64_t upstream_errors;
	uint64_t active_connections;
	uint64_t total_connections;
	uint64_t latency_buckets[12];
	uint64_t latency_sum_us;
};

/* Single-writer counter update: plain add, published with a relaxed store. */
#define STAT_ADD(w, field, n)                                                                      \
	__atomic_store_n(&(w)->stats.field, (w)->stats.field + (n), __ATOMIC_RELAXED)

/* A client connection one worker accepted and handed to another (balance). */
struct handoff {
	struct handoff *next;
	int fd;
	uint64_t sock_id; /* the psock it was accepted on */
	socklen_t salen;
	struct sockaddr_storage sa;
};

struct worker {
	struct proxy *p;
	unsigned idx;
	pthread_t thread;
	bool started;
	struct loop *loop;
	struct rt *rt;      /* current; the worker's own reference */
	struct rt *pending; /* atomic: the next rt from the control thread */
	bool draining;      /* set on the worker thread from drain_req */
	bool stopped;       /* the loop no longer runs: free at once */
	uint32_t drain_req; /* atomic: deadline in ms, 0 = none */
	struct timer drain_timer;
	struct wlsn **lsn; /* individually allocated: loop_io addresses are stable */
	size_t n_lsn, cap_lsn;
	struct conn *conns;     /* doubly linked list of live connections */
	struct h2up *h2ups;             /* HTTP/2 sessions towards backends (h2.c) */
	size_t n_conns;                 /* all client connections: HTTP/1, HTTP/2, L4 */
	/* what other workers read to balance new connections (proxy.c
	 * hand_over): n_conns as published by wk_conns_add, and the handed
	 * connections on their way here; both atomic */
	size_t n_conns_seen, n_handoffs;
	struct handoff *inbox;      /* atomic: connections handed here */
	const struct rt *rt_seen;   /* atomic: the rt adopted last (compared, never read) */
	size_t n_refusing;              /* of them, refused ones being answered 503 */
	struct conn *free_conns;        /* recycled connection objects */
	struct conn *dead;              /* closed this iteration, recycled by a deferred call */
	struct upconn *mirrors;         /* mirror connections in flight */
	struct arena *free_arenas[256]; /* reset request arenas, ready for reuse */
	size_t n_free_arenas;
	bool dead_scheduled;
	size_t n_free_conns;
	char *scratch;    /* buf_size bytes for building heads */
	char **free_bufs; /* freelist of PX buffers */
	size_t n_free_bufs, cap_free_bufs;
	/* the fewest free buffers and arenas since trim_timer was armed: that
	 * many stayed unused for the whole interval (wpool_trim) */
	size_t low_free_bufs, low_free_arenas;
	struct timer trim_timer;
	struct upep **eps; /* hash table of endpoints */
	size_t cap_eps;
	uint64_t rr;          /* round-robin cursor */
	struct l4_worker *l4; /* the L4 code's per-worker state (l4.h), or NULL */
	struct worker_stats stats;
	struct rstat_worker rstats; /* traffic per route rule */
};

struct proxy {
	struct proxy_config cfg;    /* cfg.limits: the box's, defaults filled in */
	struct h1_limits hlim;      /* the box's, for responses */
	struct px_limits lim_box;   /* ports without their own entry */
	struct px_limits *lim_port; /* one per port with its own limits */
	size_t n_lim_port;
	struct admission admit;
	size_t buf_size; /* every I/O buffer */
	unsigned n_workers;
	struct worker *workers;
	/* control thread only */
	struct rt *current;
	struct psock **socks;
	size_t n_socks;
	uint64_t next_sock_id;
	bool started;
	bool drained;
	struct rstat_reg rstats; /* route rule ids, given out at publish */
	uint64_t publishes;      /* control thread: the generation of the last publish */
};

/* The Via field value (RFC 9110 §7.6.3) this proxy appends to a message it
 * forwards: the protocol version the message was received with (HTTP/2,
 * or HTTP/1.minor), then our pseudonym; empty when the box is configured
 * to forward without Via. */
static inline struct str px_via(const struct proxy *p, bool from_h2, int minor)
{
	if (p->cfg.via_disabled)
		return STR_LIT("");
	return from_h2 ? STR_LIT("2 waygate") : minor == 0 ? STR_LIT("1.0 waygate")
							   : STR_LIT("1.1 waygate");
}

/* Changes the worker's connection count and publishes it (worker thread). */
static inline void wk_conns_add(struct worker *w, int d)
{
	w->n_conns += (size_t)(ssize_t)d;
	__atomic_store_n(&w->n_conns_seen, w->n_conns, __ATOMIC_RELAXED);
}

/* buffers (worker thread) */
int wbuf_get(struct worker *w, struct buf *b);
void wbuf_put(struct worker *w, struct buf *b);
/* The worker's caches of buffers and request arenas give back, once per
 * PX_TRIM_MS, what stayed unused for that whole interval, down to
 * PX_TRIM_KEEP of each: memory returns within seconds of a burst, while
 * steady traffic keeps what it uses. wpool_arm starts the interval when
 * something was put back (a no-op while one runs); wpool_trim ends it and
 * returns how many buffers and arenas were freed. */
#define PX_TRIM_MS 1000
#define PX_TRIM_KEEP 8
void wpool_arm(struct worker *w);
size_t wpool_trim(struct worker *w);
/* request arenas (worker thread): reset ones from the worker's pool */
struct arena *warena_get(struct worker *w);
void warena_put(struct worker *w, struct arena *a);

/* conn.c */
void conn_accept(struct worker *w, struct wlsn *l, int fd, const struct sockaddr *sa,
		 socklen_t salen);
/* Closes idle connections; busy ones close after their response (force:
 * all at once). */
void conn_drain_all(struct worker *w, bool force);
/* Closes the mirror requests still in flight (worker exit). */
void conn_mirrors_free(struct worker *w);
void conn_free_cached(struct worker *w);
/*
 * Sends a copy of a request to an endpoint of b and forgets it: the answer
 * is read and dropped, the connection closed after it or after
 * PX_MIRROR_TIMEOUT_MS. head: the request line and fields, without the
 * body framing and the blank line (copied before the call returns).
 * Nothing happens when it cannot be sent: a mirror is never worth an
 * error. slot: NULL for a bodiless request; else where the owner keeps the
 * mirror while it feeds it the body (conn_mirrors_feed), cleared when the
 * mirror is dropped (its array of PX_MAX_MIRRORS starts all NULL), and
 * body_length the body's announced length, empty when it goes chunked.
 */
void conn_mirror_open(struct worker *w, const struct snap_backend *b, const char *head,
		      size_t len, struct str body_length, struct upconn **slot);
/*
 * Copies body bytes to each mirror in v (NULL holes skipped). A mirror
 * never holds the client back: one that falls more than
 * PX_MIRROR_LAG_BYTES behind, or that failed, is dropped.
 */
void conn_mirrors_feed(struct upconn **v, struct iovec *iov, int n);
/* The body is over: whole, the mirrors in v go on alone; else they are
 * dropped (a backend must not get a cut body framed as a whole one). */
void conn_mirrors_end(struct upconn **v, bool whole);

/* upstream.c */
struct upep *upep_get(struct worker *w, const char *addr, uint16_t port);
bool upep_is_ejected(struct worker *w, const struct upep *ep);
void upep_result(struct worker *w, struct upep *ep, bool ok);
/* Closes every endpoint's idle connections and frees the records (worker exit). */
void upep_free_all(struct worker *w);
int up_connect(const char *addr, uint16_t port);
/* Pools n (in no pool) under its idle deadline. False when the pool is
 * full or the worker drains: the caller closes the connection. */
bool up_pool_put(struct worker *w, struct up_pool *p, struct up_idle *n);
/* Takes the most recently pooled connection made under tc, or NULL. */
struct up_idle *up_pool_take(struct worker *w, struct up_pool *p, const struct tls_client *tc);
/* Takes n out of its pool (it closed while idle); no-op when in none. */
void up_pool_remove(struct worker *w, struct up_idle *n);
/* Closes every idle connection of p (worker exit). */
void up_pool_close_all(struct worker *w, struct up_pool *p);
/* A backend of the rule by weight; NULL when the weights are all zero. */
const struct snap_backend *up_pick_backend(const struct rt_rule *rr);
/* Round robin over b's endpoints, skipping ejected ones unless all are;
 * NULL on ENOMEM (or no endpoints). */
struct upep *up_pick_endpoint(struct worker *w, const struct snap_backend *b);

/* tlsglue.c: TLS kept to one file */
int tlsg_server_build(struct rt_socket *rs, const struct rt *prev, const struct proxy_config *cfg,
		      struct diag *d);
void tlsg_server_release(struct rt_socket *rs);
struct tls_conn *tlsg_conn_new(struct rt_socket *rs, int fd);
void tlsg_conn_free(struct tls_conn *t);
int tlsg_handshake(struct tls_conn *t);
ssize_t tlsg_read(struct tls_conn *t, void *p, size_t n);
ssize_t tlsg_write(struct tls_conn *t, const void *p, size_t n);
size_t tlsg_pending(const struct tls_conn *t);
const char *tlsg_sni(const struct tls_conn *t);
void tlsg_close_notify(struct tls_conn *t);
/* Upstream TLS: one client context per backend with a BackendTLSPolicy,
 * built at publish (an unchanged one is taken from prev). 0 or -ENOMEM;
 * contexts that fail are reported in d and leave that backend at 502. */
int tlsg_backends_build(struct rt *rt, const struct rt *prev, const struct proxy_config *cfg,
			struct diag *d);
void tlsg_backends_release(struct rt *rt);
/* The backend's entry, or NULL when it has no upstream TLS. */
const struct rt_btls *tlsg_backend(const struct rt *rt, const struct snap_backend *b);
struct tls_conn *tlsg_conn_client(struct tls_client *cl, int fd, const char *server_name);
/* The protocol ALPN chose ("h2", "http/1.1"), or NULL. */
const char *tlsg_alpn(const struct tls_conn *t);

/* h2.c: HTTP/2 connections. conn.c hands one over once it knows the client
 * speaks HTTP/2 (ALPN "h2", or the cleartext preface): h2p_take owns fd,
 * tls and the admission ticket from then on (closing and releasing them on
 * failure); in: bytes already read. */
int h2p_take(struct worker *w, int fd, struct tls_conn *tls, struct admit_ticket *ticket,
	     uint64_t sock_id, uint16_t port, const char *peer, const char *sni, const void *in,
	     size_t in_len);
/* Drain: every HTTP/2 client connection gets GOAWAY naming its last
 * stream, finishes its streams, then closes (force: close all at once). */
void h2p_drain_all(struct worker *w, bool force);
/* On the worker thread once its loop has stopped: closes what HTTP/2
 * still holds and frees the thread's caches (h2.c, upx.c, http/h2.c). */
void h2p_worker_exit(struct worker *w);
#endif
