/* SPDX-License-Identifier: MIT */
/*
 * internal.h: declarations shared by the files of kube/ and by its unit
 * tests; never included from another module.
 */
#ifndef WG_KUBE_INTERNAL_H
#define WG_KUBE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/buf.h"
#include "core/diag.h"
#include "core/fifo.h"
#include "core/pace.h"
#include "core/loop.h"

#include "gwapi/objset.h"
#include "kube/kube.h"

struct arena;
struct yyjson_val;
struct tls_client;
struct tls_conn;

/* ---- YAML node tree (yaml.c) -------------------------------------------
 * libyaml's events are turned into a small tree allocated in an arena, with
 * the line of every node so that errors can name it. Aliases point at the
 * anchored node (the tree may share subtrees; it is read-only). */
enum ynode_type { YN_SCALAR = 0, YN_SEQ, YN_MAP };

struct ynode {
	enum ynode_type type;
	uint32_t line;   /* 1-based */
	uint32_t col;    /* 1-based */
	bool plain;      /* scalar written without quotes or block style */
	const char *tag; /* explicit tag ("tag:yaml.org,2002:str") or NULL */
	char *s;         /* scalar: text (NUL-terminated), len bytes */
	size_t len;
	/* seq: v[0..n); map: k[i] -> v[i], i < n */
	struct ynode **k, **v;
	size_t n, cap;
};

/* Parses every document of text. *docs is an arena array of *ndocs roots
 * (an empty document gives no root). On a syntax error, adds an entry to d
 * naming file and "line L column C" and returns -WG_EINVAL_CONFIG. */
int kyaml_load(struct arena *a, const char *text, size_t len, const char *file,
	       struct ynode ***docs, size_t *ndocs, struct diag *d);
/* The same for text that starts after line line0 of file: lines in nodes
 * and messages count from there. */
int kyaml_load_at(struct arena *a, const char *text, size_t len, const char *file, uint32_t line0,
		  struct ynode ***docs, size_t *ndocs, struct diag *d);
/* The value of key in a map; NULL when n is not a map or has no such key. */
struct ynode *kyaml_get(const struct ynode *n, const char *key);
/* The key node of key in a map (for its line), or NULL. */
struct ynode *kyaml_key(const struct ynode *n, const char *key);
/* The scalar's text, or NULL for non-scalars and nulls. */
const char *kyaml_str(const struct ynode *n);
bool kyaml_is_null(const struct ynode *n);
/* Appends the node as JSON text (YAML 1.2 core schema for plain scalars,
 * explicit !!str/!!int/... tags honoured). Mapping keys become strings.
 * 0, -ENOMEM, or -WG_ELIMIT when aliases expand past the node limit; on
 * error errmsg (errsz bytes) says why and *errline where. */
int kyaml_to_json(const struct ynode *n, struct buf *out, char *errmsg, size_t errsz,
		  uint32_t *errline);
/* Appends s (len bytes) as a JSON string literal, escaped. */
int kjson_append_str(struct buf *out, const char *s, size_t len);

/* ---- files ----------------------------------------------------------------- */
/* Reads a whole file (at most max bytes) into a NUL-terminated malloc'd
 * buffer. 0 or -errno (-EFBIG when larger than max). */
int kfile_read(const char *path, size_t max, char **out, size_t *len);

/* ---- kubeconfig (kubeconfig.c) -------------------------------------------- */

struct kube_exec {
	char *api_version;  /* client.authentication.k8s.io/v1 or v1beta1 */
	char *command;      /* resolved against the kubeconfig folder when relative with a '/' */
	char **args;        /* NULL-terminated */
	char **env;         /* NULL-terminated "NAME=value" */
	char *install_hint; /* shown when the command cannot be run */
	bool provide_cluster_info;
};

enum kube_auth_kind {
	KUBE_AUTH_NONE = 0,
	KUBE_AUTH_TOKEN,
	KUBE_AUTH_TOKEN_FILE,
	KUBE_AUTH_CERT,
	KUBE_AUTH_EXEC,
};

/* A loaded kubeconfig, reduced to the selected context. Immutable after
 * kube_config_load; secrets are wiped by kube_config_free. */
struct kube_config {
	char *file;    /* the kubeconfig's path */
	char *dir;     /* its folder, for relative paths */
	char *context; /* selected context */
	char *cluster_name, *user_name, *namespace;
	char *server; /* "https://host:port" as written, without trailing '/' */
	char *host;   /* connect host (no brackets) */
	uint16_t port;
	char *base_path; /* URL path prefix ("" or "/prefix") */
	char *host_header;
	char *server_name; /* verified name: tls-server-name or host */
	char *ca_pem;      /* NULL = system CAs */
	bool insecure;
	char *proxy_host; /* NULL = direct */
	uint16_t proxy_port;
	char *proxy_auth; /* base64 "user:pass" for Proxy-Authorization, or NULL */
	enum kube_auth_kind auth;
	char *token;
	char *token_file;
	char *client_cert_pem, *client_key_pem;
	bool has_exec;
	struct kube_exec exec;
};

/* Splits an https URL into host, port (default 443) and path prefix.
 * 0 or -EINVAL with a reason in why. Allocates into the out params. */
int kube_url_parse(const char *url, const char *want_scheme, char **host, uint16_t *port,
		   char **path, const char **why);

/* ---- credentials (auth.c) --------------------------------------------------- */

struct kube_auth_waiter {
	void (*on_ready)(struct kube_auth_waiter *w);
	struct kube_auth_waiter *next;
	bool queued;
};

/* Bearer credentials for one watch client: a static token, a token file
 * re-read when its inode, size or mtime changes, or an exec plugin run on
 * demand (cached until its expirationTimestamp, run again after a 401). */
struct kube_auth {
	struct loop *loop;
	const struct kube_config *cfg;
	char *file_token; /* tokenFile contents */
	uint64_t file_ino, file_size;
	int64_t file_mtime_ns;
	uint64_t file_checked_ms;
	/* exec plugin */
	char *exec_token;
	char *exec_cert_pem, *exec_key_pem;
	uint64_t exec_expiry_ms; /* wall clock; 0 = no expiry given */
	bool exec_valid;
	bool exec_cert_changed; /* the TLS client must be rebuilt */
	int exec_pid;
	int exec_fd;
	struct loop_io exec_io;
	struct timer exec_timer;
	struct buf exec_out;
	struct kube_auth_waiter *waiters;
	char exec_error[160];
	uint64_t exec_runs;
	uint64_t serial;            /* bumped whenever the credential changes */
	uint64_t exec_last_fail_ms; /* monotonic; a failed run is not retried within 1 s */
	uint64_t exec_deadline_ms;  /* monotonic; the running plugin is killed then */
	const char *server;         /* for KUBERNETES_EXEC_INFO */
};

void kube_auth_init(struct kube_auth *a, struct loop *loop, const struct kube_config *cfg);
void kube_auth_fini(struct kube_auth *a);
/* The bearer token to send now (borrowed until the next call), NULL for
 * none. Returns 0, or -EAGAIN when an exec plugin must run first: then w is
 * queued and w->on_ready runs on the loop when it finished (successfully or
 * not: call again). Other negatives: the credential cannot be obtained (the
 * reason is in a->exec_error or is a read error of tokenFile). */
int kube_auth_get(struct kube_auth *a, struct kube_auth_waiter *w, const char **token);
void kube_auth_cancel(struct kube_auth *a, struct kube_auth_waiter *w);
/* After a 401 for a request sent with credential serial (a->serial when it
 * was built): drop the cached exec credential, re-read the token file,
 * unless the credential changed since. True when a retry may succeed. */
bool kube_auth_invalidate(struct kube_auth *a, uint64_t serial);
/* Parses an ExecCredential document. 0 or -EINVAL with why. Exposed for
 * tests. Outputs are malloc'd (NULL when absent). */
int kube_exec_parse(const char *json, size_t len, const char *want_api, char **token, char **cert,
		    char **key, uint64_t *expiry_ms, const char **why);
/* RFC 3339 to milliseconds since the epoch; -1 when invalid. */
int64_t kube_time_parse(const char *s);

/* ---- HTTP/1.1 client (http.c) ----------------------------------------------- */

struct kres_job;
struct khttp_conn;

#define KUBE_MAX_ADDRS 4
/* The shared probe of an unreachable server backs off up to this many
 * times backoff_max_ms (90 s by default): about 16 attempts in a 10-minute outage. */
#define KUBE_DOWN_BACKOFF_FACTOR 3

/* What a watch client shares between its connections. */
struct kube_client {
	struct loop *loop;
	const struct kube_config *cfg;
	struct tls_client *tls;
	struct kube_auth auth;
	char *user_agent;
	uint32_t request_timeout_ms;
	/* addresses of the server (or the proxy): resolved off the loop by a
	 * helper thread, cached for a while; connections wait in res_waiters */
	struct sockaddr_storage addrs[KUBE_MAX_ADDRS];
	socklen_t addr_lens[KUBE_MAX_ADDRS];
	size_t n_addrs;
	uint64_t addrs_expire_ms; /* monotonic; UINT64_MAX for IP literals */
	struct kres_job *res_job;
	int res_fd;
	struct loop_io res_io;
	struct khttp_conn *res_waiters;
	char res_error[128];
	/* after transport failures, the first response head calls on_back: the
	 * server is reachable again, so whoever waits out a backoff may retry */
	bool down;
	void (*on_back)(void *arg);
	void *on_back_arg;
	/* counters for health */
	uint64_t errors;
	bool connected;
	char last_error[160];
};

int kube_client_init(struct kube_client *cl, struct loop *loop, const struct kube_config *cfg,
		     const char *user_agent, uint32_t request_timeout_ms);
void kube_client_fini(struct kube_client *cl);

struct khttp_resp {
	int status;
	bool chunked;
	bool has_length;
	bool close;
	uint64_t length;
	int retry_after_s; /* -1 when absent */
};

/* Parses a response head (status line and headers up to the empty line).
 * > 0 bytes consumed, 0 need more, < 0 -WG_EPROTO. */
int khttp_parse_head(const char *p, size_t n, struct khttp_resp *r);

/* Chunked transfer decoding, resumable across reads. */
enum kchunk_state { KCH_SIZE = 0, KCH_DATA, KCH_DATA_CRLF, KCH_TRAILER, KCH_DONE };
struct kchunk {
	enum kchunk_state st;
	uint64_t left;
};
/* Decodes from p (n bytes); data is passed to emit(arg, data, len), which
 * returns nonzero to stop at once (p may be gone then). Returns bytes
 * consumed (a partial size line is left for the next call), or -WG_EPROTO.
 * st->st == KCH_DONE after the last chunk and trailers. */
long kchunk_feed(struct kchunk *st, const char *p, size_t n,
		 int (*emit)(void *arg, const char *p, size_t n), void *arg);

enum khttp_state {
	KH_IDLE = 0,   /* no socket */
	KH_RESOLVING,  /* waiting for the server's address */
	KH_CONNECTING, /* TCP connect in progress */
	KH_PROXY,      /* CONNECT sent to the proxy, waiting for its answer */
	KH_HANDSHAKE,  /* TLS handshake */
	KH_READY,      /* connected, no request */
	KH_AUTH,       /* waiting for credentials (exec plugin) */
	KH_SEND,       /* writing the request */
	KH_HEAD,       /* reading the response head */
	KH_BODY,       /* reading the body */
};

struct khttp_conn;
struct khttp_ops {
	/* Streaming requests with a 2xx answer: decoded body bytes, as they
	 * arrive (views valid during the call). */
	void (*on_data)(void *arg, const char *p, size_t n);
	/* The request ended: err 0 with the response (body accumulated for
	 * non-streaming requests and non-2xx answers, NULL otherwise), or a
	 * negative transport error (r NULL). The connection is idle (or
	 * closed) when this runs; the callback may start the next request. */
	void (*on_done)(void *arg, int err, const struct khttp_resp *r, const char *body,
			size_t len);
};

struct khttp_conn {
	struct kube_client *cl;
	const char *name; /* borrowed, for logs */
	enum khttp_state st;
	int fd;
	struct loop_io io;
	struct tls_conn *tls;
	struct timer timer;
	struct buf out, in, body;
	struct kchunk chunk;
	struct khttp_resp resp;
	uint64_t body_left;
	/* the current request */
	bool active;
	bool stream;
	bool reused;          /* sent on a kept-alive connection */
	bool got_bytes;       /* some response bytes arrived */
	bool head_seen;       /* the response head of the last request was read */
	bool auth_retry;      /* already retried after a 401 */
	uint64_t cred_serial; /* credential serial the request was built with */
	char *method, *path, *req_body;
	size_t req_body_len;
	uint32_t timeout_ms;
	const struct khttp_ops *ops;
	void *arg;
	uint64_t gen; /* bumped when a request ends, to detect reentrancy */
	struct kube_auth_waiter waiter;
	char error[160];
	struct khttp_conn *next_res; /* in cl->res_waiters */
	bool res_waiting;
	size_t addr_idx; /* which of cl->addrs the connection is trying */
};

void khttp_init(struct khttp_conn *c, struct kube_client *cl, const char *name);
/* Starts a request (the connection must have none active). method and path
 * (with query) are copied, and so is body. timeout_ms bounds the whole
 * request, or, with stream, the silence between two reads. 0 or -ENOMEM. */
int khttp_request(struct khttp_conn *c, const char *method, const char *path, const char *body,
		  size_t body_len, bool stream, uint32_t timeout_ms, const struct khttp_ops *ops,
		  void *arg);
/* Ends the request (no callback) and closes the connection. */
void khttp_close(struct khttp_conn *c);
void khttp_fini(struct khttp_conn *c);
static inline bool khttp_is_open(const struct khttp_conn *c)
{
	return c->st >= KH_READY;
}

/* ---- string-keyed map (map.c) ----------------------------------------------- */

struct kmap_ent {
	char *key;
	void *val;
	struct kmap_ent *next;
};
struct kmap {
	struct kmap_ent **b;
	size_t nb, n;
};
void *kmap_get(const struct kmap *m, const char *key);
/* Inserts or replaces; the key is copied. Returns the previous value (or
 * NULL) in *old when old is non-NULL. 0 or -ENOMEM. */
int kmap_put(struct kmap *m, const char *key, void *val, void **old);
/* Removes key; returns its value or NULL. */
void *kmap_del(struct kmap *m, const char *key);
/* Calls fn for each entry; fn returns true to delete the entry (after
 * which it must not use key). */
void kmap_each(struct kmap *m, bool (*fn)(void *arg, const char *key, void *val), void *arg);
void kmap_fini(struct kmap *m);

/* ---- watch (watch.c) --------------------------------------------------------- */

enum refl_state {
	RF_WAIT = 0, /* not started: waiting for discovery */
	RF_LIST,     /* listing (pages) */
	RF_WATCH,    /* watch stream open or being opened */
	RF_BACKOFF,  /* timer armed, then RF_LIST or RF_WATCH again */
	RF_ABSENT,   /* the server does not serve the resource (or forbids it) */
};

/* One list/watch loop for a resource (in a namespace, or cluster-wide). */
struct reflector {
	struct kube_watch *w;
	enum gw_kind kind;
	char *ns; /* NULL = all namespaces */
	char name[96];
	enum refl_state st;
	struct khttp_conn conn;
	struct timer timer;
	char *rv;                 /* last resourceVersion seen; NULL = must list */
	char *cont;               /* continue token of the list in progress */
	char *list_rv;            /* resourceVersion of the list in progress */
	bool listed;              /* listed completely at least once */
	bool relisting;           /* the list in progress follows a 410 */
	bool want_watch;          /* after backoff: watch (true) or list (false) */
	struct gw_object **stage; /* objects of the list in progress */
	size_t n_stage, cap_stage;
	struct kmap stage_idx; /* Secrets/ConfigMaps seen by the list: key -> rv */
	struct buf line;       /* partial watch event */
	uint32_t attempt;      /* consecutive failures (backoff exponent) */
	uint64_t watch_since_ms;
	uint64_t last_relist_ms; /* monotonic, of the last relist after 410 */
	bool watch_got_event;
	uint64_t lists, watches, events;
	/* health (kube_watch_reflectors) */
	uint64_t relists, errors;
	uint64_t last_event_ms; /* wall clock of the last completed list or event */
	char last_error[120];   /* "" once a list completed or an event came */
	int retry_after_s;
	bool throttled; /* the backoff follows a 429/503 with Retry-After */
	bool parked;    /* waiting for the server to come back (no timer of its own) */
};

/* A Secret or ConfigMap known to exist (from lists and watches), whether
 * or not its data is in the object set. Key "kind/ns/name". */
struct sref {
	enum gw_kind kind;
	char *ns, *name, *rv;
	bool fetching;
	bool queued;
	struct sref *next_fetch;
};

/* A status write waiting for its turn. Key "kind/ns/name". */
struct kstatus {
	enum gw_kind kind;
	char *ns, *name;
	char *status_json;
	int64_t generation;
	uint32_t attempts;
	bool queued;
	struct fifo_link link; /* on kube_watch.squeue_order while queued */
};

struct kube_watch {
	struct loop *loop;
	const struct kube_config *cfg;
	struct gw_objset *set;
	void (*on_change)(void *arg);
	void *arg;
	char **namespaces; /* NULL = cluster-wide */
	char *controller;
	struct kube_watch_opts o; /* tunables with defaults filled in */
	struct kube_client cl;
	bool started;
	/* discovery */
	struct khttp_conn disc;
	struct timer disc_timer;
	int disc_step; /* -1 idle; 0 group document; 1.. version documents */
	char *group_versions[8];
	size_t n_group_versions;
	const char *found[GW_K_COUNT]; /* version found in this round */
	const char *ver[GW_K_COUNT];   /* version in use, NULL = absent */
	bool discovered;
	uint32_t disc_attempt;
	/* While the server cannot be reached, one reflector probes for all of
	 * them with its own, longer backoff; the others are parked until it
	 * gets through (on_server_back). */
	struct reflector *prober;
	uint32_t down_attempt;
	uint64_t probe_started_ms; /* when the prober's current attempt began */
	/* reflectors */
	struct reflector **refl;
	size_t n_refl;
	/* notification */
	struct timer notify_timer;
	bool changed;
	bool refs_dirty; /* something other than Secrets/ConfigMaps changed */
	/* Secret/ConfigMap index and fetches */
	struct kmap sidx;
	struct sref *fetch_head, *fetch_tail;
	struct sref *fetch_cur;
	size_t fetch_pending;
	struct khttp_conn fetch;
	struct timer fetch_timer;
	uint32_t fetch_attempt;
	/* status writer */
	struct kmap squeue; /* key -> struct kstatus */
	struct fifo squeue_order; /* struct kstatus, oldest first */
	struct kstatus *sq_cur;
	struct khttp_conn sconn;
	struct timer stimer;
	struct pace space; /* status writes, o.status_rate_per_s */
	uint32_t s_attempt;
	bool s_get; /* the request in flight re-reads the object after a 409 */
	/* health */
	uint64_t last_sync_ms;
	uint64_t lists, relists, status_writes;
	/* Services standing for our Gateways (infra.c); made on first submit */
	struct kinfra *infra;
};

/* Backoff before retry number attempt (0-based): min * 2^attempt capped at
 * max, then a random point in its upper half (rnd is uniform). */
uint32_t kube_backoff_ms(uint32_t attempt, uint32_t min_ms, uint32_t max_ms, uint32_t rnd);
/* Request path of a kind's collection: /api/v1[/namespaces/NS]/RES or
 * /apis/G/V[/namespaces/NS]/RES. ns NULL = all. Caller frees. */
char *kube_collection_path(enum gw_kind k, const char *version, const char *ns);
/* Serialises a list item / watch object as JSON, adding apiVersion and kind
 * when the server left them out (built-in lists do), leaving out
 * metadata.managedFields and kubectl's last-applied annotation. Caller
 * frees. */
char *kube_item_json(enum gw_kind k, const char *version, struct yyjson_val *item, size_t *len);
/* Applies one watch event line (JSON). Returns 0, 1 when the set changed,
 * -WG_EPROTO for an undecodable line, -ESTALE for a 410 ERROR event, or
 * another negative for other ERROR events. Exposed for tests. */
int kube_reflector_event(struct reflector *r, const char *line, size_t len);
/* Appends watch stream bytes to r->line and applies each complete event.
 * Same returns as kube_reflector_event (first error wins), 1 if changed. */
int kube_reflector_feed(struct reflector *r, const char *p, size_t n);
void kube_watch_changed(struct kube_watch *w, enum gw_kind k);

/* infra.c */
struct kinfra;
void kube_infra_fini(struct kube_watch *w);

/* status.c */
void kube_status_fini(struct kube_watch *w);
void kube_status_kick(struct kube_watch *w);
/* Builds the full status to write (others' parents/ancestors kept, ours
 * replaced) from the object's current status and ours (JSON text). Returns
 * a malloc'd JSON text, or NULL (ENOMEM or ours is not valid JSON). */
char *kube_status_merge(enum gw_kind k, const char *controller, struct yyjson_val *current,
			const char *ours);
/* The merge-patch body that moves o's status to desired (JSON text), with
 * o's resourceVersion as the precondition. Caller frees; NULL on ENOMEM or
 * invalid desired. */
char *kube_status_patch(const struct gw_object *o, const char *desired, size_t *len);
/* Whether resourceVersion a is newer than b (decimal counters compared as
 * numbers; other strings count as newer when they differ). */
bool kube_rv_newer(const char *a, const char *b);

#endif
