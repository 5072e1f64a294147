/* SPDX-License-Identifier: MIT */
/*
 * upx.h: one HTTP/1.1 exchange with a backend on behalf of a request that
 * is not an HTTP/1.1 connection of conn.c (an HTTP/2 stream of h2.c). The
 * exchange owns the attempt logic of the HTTP/1.1 path: endpoint choice
 * with passive health, keep-alive connections pooled per endpoint per
 * worker, connect timeout (→ 503, after moving to another endpoint), the
 * rule's backend request timeout (→ 504), one silent replay when a reused
 * connection dies before answering, and the route's retry policy (status
 * codes, attempts, backoff) for requests without a body.
 *
 * The owner gives a complete request head (framing included) and pulls the
 * request body through upx_cbs.read_body; it gets the response head through
 * on_head and pulls the decoded body with upx_read, straight from the
 * connection's input buffer. It keeps the overall request timeout itself.
 *
 * Worker thread only. on_head, on_body and on_fail run from the exchange's
 * own events, never inside an upx_* call, so the owner may free the
 * exchange from on_body and on_fail (not from on_head). read_body may also
 * run inside upx_start and upx_kick.
 */
#ifndef WG_PROXY_UPX_H
#define WG_PROXY_UPX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "http/h1.h"

struct upx;
struct worker;
struct rt;
struct rt_rule;
struct snap_backend;

struct upx_cbs {
	/* The final response head (views valid during the call only). The
	 * body, if any, is pulled with upx_read. */
	void (*on_head)(void *ctx, const struct h1_msg *m);
	/* Body bytes (or its end) can be pulled with upx_read. */
	void (*on_body)(void *ctx);
	/* The exchange failed. status: what to answer when no head was given
	 * (502, 503, 504), why: for the log. The owner frees the exchange. */
	void (*on_fail)(void *ctx, int status, const char *why);
	/* Copies up to len request body bytes into p; *end once it is all
	 * given. Returns the bytes (0: none now, call upx_kick when more). */
	size_t (*read_body)(void *ctx, char *p, size_t len, bool *end);
};

struct upx_req {
	struct rt *rt;                      /* held by the owner for the exchange's life */
	const struct rt_rule *rule;         /* for retries and a re-pick among backends */
	const struct snap_backend *backend; /* valid, with endpoints, HTTP/1.1 (plain or TLS) */
	const char *head;                   /* borrowed: stays valid until upx_free */
	size_t head_len;
	bool has_body;    /* the head announces a body (Content-Length or chunked) */
	bool chunked;     /* frame what read_body gives as chunks */
	bool head_method; /* HEAD: the response has no body */
};

/*
 * Starts the exchange. Returns 0 and *out, or the HTTP status to answer
 * at once (503 no endpoint or no connection, 500 out of memory).
 */
int upx_start(struct worker *w, const struct upx_req *rq, const struct upx_cbs *cbs, void *ctx,
	      struct upx **out);
/* Request body bytes or its end are available (after read_body gave 0). */
void upx_kick(struct upx *x);
/*
 * Pulls decoded response body bytes into p (at most len). *eof once the
 * body is complete (then nothing more is read). Returns the bytes, 0 when
 * none are here yet (on_body tells when), or -1 on a framing error.
 */
ssize_t upx_read(struct upx *x, char *p, size_t len, bool *eof);
/* Ends the exchange; a connection still in use is closed, a finished one
 * was already pooled. NULL is fine. */
void upx_free(struct upx *x);
/* Frees the calling thread's cache of exchange objects (its exit). */
void upx_worker_exit(void);

#endif
