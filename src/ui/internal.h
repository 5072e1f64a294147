/* SPDX-License-Identifier: MIT */
/*
 * internal.h: declarations shared by the files of ui/ and its unit tests.
 * Never included from another module.
 *
 *   sec.c      pure request checks: cookies, Host allow-list, Origin,
 *              CSRF token comparison, login rate limiter
 *   json.c     a small JSON writer that escapes everything it is given
 *   metrics.c  the Prometheus text exposition of the counters
 *   events.c   the ring of recent log lines (the log sink), secrets filtered
 *   cert.c     certificate expiry for display
 *   front.c    the UI thread: TLS listener and the socketpair pump to MHD
 *   tlscert.c  the UI's certificate: load, generate, upload
 *   traffic.c  the per-second samples and per-minute rollups
 *   routestats.c  traffic per route: counters sorted for lookup, rates
 *   server.c   the libmicrohttpd daemon, dispatch, sessions, static assets
 *   api.c      the JSON API handlers
 *   ui.c       ui_start / ui_stop: wiring, first-start password, tokens
 */
#ifndef WG_UI_INTERNAL_H
#define WG_UI_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/log.h"
#include "ui/ui.h"

/* -------- sec.c -------- */

#define UI_COOKIE_NAME "__Host-wg_session"
#define UI_MAX_HOSTS 64

/* Names accepted in the Host header: lower-case, without port or brackets. */
struct ui_hosts {
	char *v[UI_MAX_HOSTS];
	size_t n;
};
/* Adds a name ("Box.lan", "192.0.2.1", "[::1]", "fe80::1%eth0" keeps only
 * the address). Duplicates are ignored. 0, -EINVAL, -ENOMEM, -WG_ELIMIT. */
int ui_hosts_add(struct ui_hosts *h, const char *name);
void ui_hosts_fini(struct ui_hosts *h);
/*
 * Splits a Host header value ("name", "name:port", "[v6]", "[v6]:port")
 * into its lower-cased name (no brackets, no trailing dot) in out.
 * Returns false when the value is malformed (empty, bad characters, a bad
 * port, too long).
 */
bool ui_host_parse(const char *value, char *out, size_t outsz);
/* Whether a Host header value names this box. NULL/malformed → false. */
bool ui_host_is_allowed(const struct ui_hosts *h, const char *value);
/*
 * Whether Origin is exactly "https://" + the request's Host (scheme and
 * authority compared case-insensitively, explicit ":443" equal to none).
 * A missing or "null" Origin is not same-origin.
 */
bool ui_origin_is_same(const char *origin, const char *host);
/*
 * Finds cookie `name` in a Cookie header and copies its value into out.
 * Only values of 1..outsz-1 characters from [0-9A-Za-z_-] are accepted (our
 * cookies are hex); anything else is treated as absent. Returns true when
 * found.
 */
bool ui_cookie_get(const char *header, const char *name, char *out, size_t outsz);
/* Constant-time comparison of two NUL-terminated tokens of equal length;
 * false when either is NULL or empty or the lengths differ. */
bool ui_token_equal(const char *a, const char *b);
/* Lower-case hex of n bytes into out (2n+1 bytes). */
void ui_hex(const uint8_t *p, size_t n, char *out);

/*
 * Login rate limiter: a token bucket per client address plus one for all
 * clients together. A failed login takes a token; with none left, logins
 * are refused (429) until one is refilled. A successful login refills the
 * client's bucket. The table is fixed-size: the least recently used entry is
 * recycled. All-zero plus ui_rl_init() is valid. Single-threaded.
 */
#define UI_RL_ENTRIES 256
struct ui_rl_entry {
	char key[64];
	uint32_t tokens;
	uint64_t last_ms; /* last refill */
	uint64_t used_ms; /* last use, for recycling */
};
struct ui_ratelimit {
	uint32_t burst, refill_ms;               /* per client */
	uint32_t global_burst, global_refill_ms; /* all clients */
	struct ui_rl_entry global;
	struct ui_rl_entry v[UI_RL_ENTRIES];
};
void ui_rl_init(struct ui_ratelimit *rl, uint32_t burst, uint32_t refill_ms, uint32_t global_burst,
		uint32_t global_refill_ms);
/* true when key may try a login now; else false and *retry_s (may be
 * NULL) says how many seconds until it may. */
bool ui_rl_allow(struct ui_ratelimit *rl, const char *key, uint64_t now_ms, uint32_t *retry_s);
void ui_rl_fail(struct ui_ratelimit *rl, const char *key, uint64_t now_ms);
void ui_rl_success(struct ui_ratelimit *rl, const char *key, uint64_t now_ms);

/* -------- json.c -------- */

/*
 * Appends s as a JSON string literal (with quotes), or `null` for NULL.
 * Escapes ", \, control characters, and also <, >, &, ' and U+2028/U+2029
 * as \uXXXX so that the text is inert even if a page ever put it in HTML.
 * Invalid UTF-8 bytes become U+FFFD. 0 or -ENOMEM.
 */
int ui_json_str(struct buf *b, const char *s);
int ui_json_strn(struct buf *b, const char *s, size_t len);

/* A JSON writer that tracks commas. Nesting up to 32. Errors (ENOMEM) are
 * sticky in err and checked once at the end. */
struct jw {
	struct buf *b;
	int depth;
	bool first[32];
	bool after_key;
	int err;
};
void jw_init(struct jw *w, struct buf *b);
void jw_obj(struct jw *w);
void jw_obj_end(struct jw *w);
void jw_arr(struct jw *w);
void jw_arr_end(struct jw *w);
void jw_key(struct jw *w, const char *k);
void jw_str(struct jw *w, const char *s);
void jw_u64(struct jw *w, uint64_t v);
void jw_i64(struct jw *w, int64_t v);
void jw_dbl(struct jw *w, double v);
void jw_bool(struct jw *w, bool v);
void jw_null(struct jw *w);
/* Inserts already-valid JSON text as a value. */
void jw_raw(struct jw *w, const char *json, size_t len);
/* Shorthands: key + value. */
void jw_kstr(struct jw *w, const char *k, const char *s);
void jw_ku64(struct jw *w, const char *k, uint64_t v);
void jw_kbool(struct jw *w, const char *k, bool v);

/* -------- metrics.c -------- */

struct ui_metrics_in {
	const struct ui_stats *stats; /* may be NULL */
	const struct ui_route_stats *routes;
	size_t n_routes;
	const struct ui_cluster *cluster; /* may be NULL */
	const struct snapshot *snap;      /* may be NULL: listener info */
	uint64_t store_revision;          /* newest stored revision */
	uint64_t serving_revision;
	uint64_t pinned_revision;
	uint64_t uptime_s;
	uint64_t ui_requests;
	uint64_t ui_login_failures;
};
/* Appends the Prometheus text exposition (format 0.0.4). 0 or -ENOMEM. */
int ui_metrics_format(struct buf *b, const struct ui_metrics_in *in);
/* Appends a label value escaped per the text format (\\, \", \n). */
int ui_metrics_label(struct buf *b, const char *v);

/* -------- events.c -------- */

#define UI_EVENTS 512
#define UI_EVENT_LEN 512
struct ui_event {
	uint64_t seq;
	enum log_level level;
	char line[UI_EVENT_LEN];
};
struct ui_events {
	pthread_mutex_t mu;
	uint64_t seq; /* of the newest event; 0 = none yet */
	struct ui_event v[UI_EVENTS];
};
void ui_events_init(struct ui_events *ev);
void ui_events_fini(struct ui_events *ev);
/* The log sink (log_set_sink): keeps the line, with any secret-looking
 * value replaced by "[redacted]". Any thread. */
void ui_events_sink(enum log_level level, const char *line, void *arg);
/* Copies events with seq > after (oldest first), at most max, into out;
 * returns how many. */
size_t ui_events_copy(struct ui_events *ev, uint64_t after, struct ui_event *out, size_t max);
/* Rewrites line (a NUL-terminated string in size bytes) in place,
 * replacing the value of every key that names a secret (password, passwd,
 * token, secret, authorization, cookie, session, private, credential, key,
 * *_key) and any "Bearer X" by [redacted]; a line that would outgrow size
 * is cut. Returns true if anything was replaced. */
bool ui_redact(char *line, size_t size);

/* -------- cert.c -------- */

/* notAfter (seconds since the epoch) of a DER certificate, or of the first
 * certificate in a PEM text; 0 when it cannot be read. */
int64_t ui_der_not_after(const uint8_t *der, size_t n);
int64_t ui_pem_not_after(const char *pem);

/* -------- routestats.c -------- */

/* Per rule id: the counters at the start of the current window, and what
 * the last closed window saw. */
#define UI_RATE_WINDOW_MS 5000
struct ui_rule_rate {
	uint64_t base_requests, base_responses, base_5xx;
	uint64_t d_requests, d_responses, d_5xx;
	uint64_t window; /* the window the deltas are from (ui_rates.windows) */
	bool has_base;
};
/* All-zero is empty. */
struct ui_rates {
	struct ui_rule_rate *v; /* indexed by rule id */
	size_t cap;
	uint64_t window_start_ms; /* monotonic; 0 = not started */
	uint64_t window_ms;       /* length of the last closed window */
	uint64_t windows;         /* windows closed so far */
};
/* A route's (or rule's) rates over the last closed window. */
struct ui_route_rate {
	double rps;
	double error_share; /* 5xx responses / responses, 0 when none */
	double window_s;
};
/* Takes the counters s[0..n) at now_ms: starts the first window, or, once
 * UI_RATE_WINDOW_MS have passed, closes the current one (keeping each
 * rule's deltas) and starts the next; else does nothing. 0 or -ENOMEM. */
int ui_rates_update(struct ui_rates *r, const struct ui_route_stats *s, size_t n, uint64_t now_ms);
/* The summed rates of the rules s[0..n) (one route's) over the last closed
 * window; false when no rule of them has one yet. */
bool ui_rates_sum(const struct ui_rates *r, const struct ui_route_stats *s, size_t n,
		  struct ui_route_rate *out);
void ui_rates_fini(struct ui_rates *r);
/* Every rule's counters through the callback, sorted by route then rule
 * (entries without a route dropped). Caller frees; NULL with *n = 0 when
 * there are none, no callback, or on ENOMEM. */
struct ui_route_stats *ui_route_stats_all(struct ui *ui, size_t *n);
/* In a sorted array: the entry of (route, rule), or NULL. */
const struct ui_route_stats *ui_route_stats_find(const struct ui_route_stats *v, size_t n,
						 const char *route, uint32_t rule);
/* In a sorted array: how many entries route has, the first at *first. */
size_t ui_route_stats_range(const struct ui_route_stats *v, size_t n, const char *route,
			    size_t *first);
/* The sampler's part (UI thread): updates ui->rates when a window is due. */
void ui_route_rates_tick(struct ui *ui, uint64_t now_ms);

/* -------- the UI object (front.c, server.c, api.c) -------- */

struct MHD_Daemon;
struct store;
struct tls_server;
struct fconn;

/* One second of data-plane traffic, for the live charts. */
struct ui_sample {
	uint64_t t_ms; /* wall clock */
	uint32_t rps;
	uint32_t p50_ms, p99_ms;
	uint32_t by_class[6]; /* responses in that second, by status / 100 */
	uint64_t bytes_out;
	uint64_t active;
};
#define UI_SAMPLES 300

/* Percentile (0..100) in ms from non-cumulative bucket counts: the upper
 * bound of the bucket where it falls (the +Inf bucket reports 10000). */
uint32_t ui_percentile_ms(const uint64_t buckets[UI_LATENCY_BUCKETS], unsigned pct);
/* The same for a route's histogram (the +Inf bucket reports 10000). */
uint32_t ui_route_percentile_ms(const uint64_t buckets[UI_ROUTE_LATENCY_BUCKETS], unsigned pct);

struct ui {
	/* configuration, copied */
	char *listen;
	char *state_dir;
	char *version;
	char *board;
	struct ui_callbacks cb;
	void *cb_arg;
	uint64_t idle_ms;
	int cipher_pref;     /* enum tls_cipher_pref, for every UI certificate */
	uint64_t started_ms; /* wall clock */

	/* front.c: the UI thread */
	pthread_t thread;
	bool thread_started;
	struct loop *loop;
	int lfd;
	uint16_t port;
	char bound[80]; /* "ADDR:PORT" as logged */
	struct fconn *conns;
	size_t n_conns;
	pthread_mutex_t tls_mu; /* guards tls (replaced by a certificate upload) */
	struct tls_server *tls;
	int64_t cert_not_after;
	bool cert_uploaded;

	/* server.c */
	struct MHD_Daemon *mhd;
	struct ui_hosts hosts;
	struct ui_ratelimit rl; /* MHD thread only */
	char metrics_token[65];
	uint8_t csrf_key[32];
	uint64_t n_requests;       /* atomic */
	uint64_t n_login_failures; /* atomic */

	/* the store connection, shared by the MHD thread and the sampler */
	pthread_mutex_t store_mu;
	struct store *store;

	struct ui_events *events; /* process-lifetime ring (ui.c) */

	/* live traffic, written by the UI thread, read by the MHD thread */
	pthread_mutex_t traffic_mu;
	struct ui_sample samples[UI_SAMPLES];
	uint64_t n_samples; /* total taken; samples[n % UI_SAMPLES] is next */
	struct ui_stats last_stats;
	bool have_last;
	struct ui_stats minute_base; /* stats at the start of the minute */
	uint64_t minute;             /* minutes since the epoch being summed */
	struct ui_rates rates;       /* per route rule (routestats.c) */
};

/* front.c */
int ui_front_open(struct ui *ui, struct diag *d);
int ui_front_start(struct ui *ui);
void ui_front_stop(struct ui *ui);

/* tlscert.c */
/* Loads or generates the UI certificate in the state dir; builds ui->tls. */
int ui_cert_load(struct ui *ui, struct diag *d);
/* Validates an uploaded certificate and key, saves them (0600) and uses
 * them for new connections. 0 or negative with a message in d. */
int ui_cert_replace(struct ui *ui, const char *cert_pem, const char *key_pem, struct diag *d);
/* Makes srv (one reference, taken over; NULL = none) the context for new
 * connections and drops the previous one. */
void ui_cert_set(struct ui *ui, struct tls_server *srv);

/* traffic.c */
struct timer;
/* The once-a-second sampler (a timer callback on the UI thread's loop;
 * t->arg is the ui; it re-arms itself). */
void ui_traffic_tick(struct timer *t);
/* Copies out the last samples (oldest first); returns how many. */
size_t ui_samples_copy(struct ui *ui, struct ui_sample *out, size_t max);

/* server.c */
int ui_server_start(struct ui *ui, struct diag *d);
void ui_server_stop(struct ui *ui);
/* Hands a connected plaintext socket to libmicrohttpd (which owns it from
 * then on, closed or not). addr: the client's address. 0 or -EIO. */
int ui_server_add_conn(struct ui *ui, int fd, const void *addr, unsigned addrlen);

/* One request to the UI as the handlers see it (server.c fills it in). */
struct MHD_Connection;
struct yyjson_doc;
struct ui_req {
	struct MHD_Connection *conn;
	const char *method; /* "GET", "POST", ... */
	const char *url;    /* path only, percent-decoded by libmicrohttpd */
	char *body;         /* request body (NUL-terminated), NULL when none */
	size_t body_len;
	bool body_too_big;
	char client[64];  /* client address, for the limiter and the audit */
	char user[64];    /* "" until authenticated */
	char session[72]; /* session id (hex) when authenticated */
	/* the response */
	int status;
	struct buf out;
	const void *static_body; /* an embedded asset, sent instead of out */
	size_t static_len;
	const char *content_type;
	char set_cookie[200];
	uint32_t retry_after_s; /* 429: Retry-After */
};
/* Sets status and a JSON body {"error": msg}. */
void ui_reply_error(struct ui_req *rq, int status, const char *msg);
/* A query argument (decoded) or NULL. Valid during the request. */
const char *ui_req_arg(struct ui_req *rq, const char *key);
/* Parses the body as a JSON object; NULL (and a 400 reply set) when it is
 * not one. The caller frees the document with yyjson_doc_free. */
struct yyjson_doc *ui_req_json(struct ui_req *rq);
/* The CSRF token of a session: hex(SHA-256(key || id)). out: 65 bytes. */
void ui_csrf_token(const struct ui *ui, const char *session, char out[65]);
/* Starts a new session for user, sets its cookie on rq, and fills
 * rq->session. 0 or negative (the reply is set to 500). */
int ui_session_begin(struct ui *ui, struct ui_req *rq, const char *user);

/* api.c */
/* Answers an authenticated /api/ request; returns false when no handler
 * matches (404). */
bool ui_api_dispatch(struct ui *ui, struct ui_req *rq);

#endif
