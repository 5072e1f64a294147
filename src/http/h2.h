/* SPDX-License-Identifier: MIT */
/*
 * h2.h: HTTP/2 sessions over nghttp2 (framing, HPACK, flow control), with
 * no nghttp2 type visible outside http/h2.c. A session is a pure protocol
 * engine: bytes in (h2_recv), bytes out (h2_send into a caller buffer),
 * events out through struct h2_cbs. It never touches a socket.
 *
 * Server sessions also enforce the flood limits (rapid reset, CONTINUATION
 * floods, HPACK bombs through a decoded header-list cap, SETTINGS, PING,
 * empty-frame and WINDOW_UPDATE floods): the offender gets GOAWAY
 * (ENHANCE_YOUR_CALM) and h2_recv fails with -WG_ELIMIT.
 *
 * Flow control: received DATA is acknowledged (WINDOW_UPDATE) only when the
 * owner says it has forwarded it (h2_consume), so what a peer may have in
 * flight is bounded by the advertised windows.
 *
 * Threads: a session belongs to the thread that created it.
 */
#ifndef WG_HTTP_H2_H
#define WG_HTTP_H2_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct h2_sess;

#define H2_PREFACE "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
#define H2_PREFACE_LEN 24

/* Error codes (RFC 9113 section 7). */
enum {
	H2_NO_ERROR = 0,
	H2_PROTOCOL_ERROR = 1,
	H2_INTERNAL_ERROR = 2,
	H2_REFUSED_STREAM = 7,
	H2_CANCEL = 8,
	H2_ENHANCE_YOUR_CALM = 11,
};

/* One header field; views valid only during the callback that gets them. */
struct h2_hdr {
	const char *name; /* lower case (HTTP/2 requires it) */
	size_t nlen;
	const char *value;
	size_t vlen;
};

/* Data provider results (h2_cbs.read_body). */
enum {
	H2_BODY_EOF = 1u << 0,      /* the body is complete */
	H2_BODY_TRAILERS = 1u << 1, /* with EOF: trailers follow (h2_submit_trailers) */
};
#define H2_DEFER (-1000) /* read_body: nothing now, h2_resume later */

struct h2_cbs {
	/* A complete header block of stream sid: request (server), response
	 * or trailers (client: trailers when `trailers`). end: END_STREAM.
	 * Return 0, or negative to reset the stream. */
	int (*on_headers)(void *ctx, int32_t sid, const struct h2_hdr *h, size_t n, bool trailers,
			  bool end);
	/* Body bytes (already counted against the window until h2_consume). */
	int (*on_data)(void *ctx, int32_t sid, const uint8_t *p, size_t n);
	/* END_STREAM after data (not called when on_headers had end). */
	void (*on_end)(void *ctx, int32_t sid);
	/* The stream is closed (error_code H2_NO_ERROR when it completed). */
	void (*on_close)(void *ctx, int32_t sid, uint32_t error_code);
	/* Fills buf with up to len body bytes of sid; returns bytes, or
	 * H2_DEFER, flags as H2_BODY_*; negative other than H2_DEFER resets. */
	ssize_t (*read_body)(void *ctx, int32_t sid, uint8_t *buf, size_t len, uint32_t *flags);
};

struct h2_limits {
	uint32_t max_concurrent_streams; /* 0 = 100 */
	uint32_t stream_window;          /* 0 = 256 KiB */
	uint32_t conn_window;            /* 0 = 1 MiB */
	uint32_t max_header_list;        /* decoded bytes per header block, 0 = 64 KiB */
	uint32_t max_resets_per_s;       /* 0 = 200 */
	uint32_t max_control_per_s;      /* SETTINGS + PING + empty frames, 0 = 500 */
};

/* Frees the calling thread's cache of nghttp2 blocks (at its exit; the
 * sessions it made are freed already). */
void h2_mem_release(void);

/* NULL on ENOMEM. A server session queues its SETTINGS at once. */
struct h2_sess *h2_server_new(const struct h2_limits *lim, const struct h2_cbs *cbs, void *ctx);
struct h2_sess *h2_client_new(const struct h2_limits *lim, const struct h2_cbs *cbs, void *ctx);
void h2_free(struct h2_sess *s);

/* Feeds received bytes. Returns 0, or negative when the connection must
 * end after flushing what h2_send still gives (-WG_ELIMIT: a flood, GOAWAY
 * queued; -WG_EPROTO: a protocol error, GOAWAY queued). */
int h2_recv(struct h2_sess *s, const void *p, size_t n, uint64_t now_ms);
/* Serialises pending frames into out (up to room bytes). Returns bytes
 * written (0 = nothing pending now) or negative. */
ssize_t h2_send(struct h2_sess *s, void *out, size_t room);
bool h2_want_write(const struct h2_sess *s);
/* Whether the session is over (GOAWAY both ways or a fatal error). */
bool h2_is_done(const struct h2_sess *s);

/* Responses (server): status and fields (names lower case, no pseudo
 * headers). has_body: a read_body provider follows. 0 or negative. */
int h2_submit_response(struct h2_sess *s, int32_t sid, int status, const struct h2_hdr *h, size_t n,
		       bool has_body);
/* Requests (client): fields must include the pseudo headers. Returns the
 * stream id (> 0) or negative. */
int32_t h2_submit_request(struct h2_sess *s, const struct h2_hdr *h, size_t n, bool has_body,
			  void *stream_data);
int h2_submit_trailers(struct h2_sess *s, int32_t sid, const struct h2_hdr *h, size_t n);
int h2_resume(struct h2_sess *s, int32_t sid);
/* n body bytes of sid have been forwarded: reopen that much window. */
void h2_consume(struct h2_sess *s, int32_t sid, size_t n);
void h2_reset(struct h2_sess *s, int32_t sid, uint32_t code);
void h2_goaway(struct h2_sess *s, uint32_t code);
/* Graceful shutdown (server): GOAWAY NO_ERROR naming the last stream
 * processed; those streams go on, newer ones are refused. 0 or -1. */
int h2_drain(struct h2_sess *s);
/* How many more streams the peer lets us open (client) with `open` open. */
uint32_t h2_streams_left(const struct h2_sess *s, uint32_t open);
void *h2_stream_data(const struct h2_sess *s, int32_t sid);
void h2_stream_set_data(struct h2_sess *s, int32_t sid, void *p);

#endif
