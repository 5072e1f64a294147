/* SPDX-License-Identifier: MIT */
/*
 * h1.h: strict HTTP/1.1 message heads (RFC 9112), the chunked codec and the
 * header-table helpers. The parsers do not allocate and do not copy: every
 * struct str they return is a view into the caller's buffer, valid until that
 * buffer is compacted, refilled or released.
 *
 * Results follow the house parser rule: > 0 bytes of head consumed (the
 * whole head, through the empty line), 0 need more input, < 0 an error. On
 * an error, msg->status holds the status to answer (400, 414, 431, 501, 505)
 * and msg->error a short reason for the log; the connection must be closed
 * after that answer. Resuming is by calling again with the same buffer
 * start, a longer length and the previous length in last_len: only the new
 * bytes are scanned for the end of the head.
 *
 * The policy is to reject, never to normalise: anything a peer could read
 * differently (obs-fold, whitespace before a colon, bare CR or LF, duplicate
 * or malformed Content-Length, Content-Length with Transfer-Encoding, a
 * transfer coding other than one final "chunked") is an error.
 */
#ifndef WG_HTTP_H1_H
#define WG_HTTP_H1_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "core/str.h"

struct h1_header {
	struct str name;  /* as received (case preserved) */
	struct str value; /* without surrounding whitespace */
};

struct h1_limits {
	uint32_t max_head_bytes;    /* whole head incl. request line → 431; 0 = 16 KiB */
	uint32_t max_request_line;  /* → 414; 0 = 8 KiB */
	uint32_t max_header_fields; /* → 431; 0 = 100, never above the caller's array */
};

enum h1_body {
	H1_BODY_NONE = 0, /* no body (Content-Length 0 or none on a request) */
	H1_BODY_LENGTH,   /* content_length bytes follow */
	H1_BODY_CHUNKED,  /* chunked coding follows */
	H1_BODY_EOF,      /* responses only: body until the peer closes */
};

enum h1_form {
	H1_FORM_ORIGIN = 0, /* "/path?q" */
	H1_FORM_ABSOLUTE,   /* "http://host/path?q" */
	H1_FORM_AUTHORITY,  /* "host:port" (CONNECT) */
	H1_FORM_ASTERISK,   /* "*" (OPTIONS) */
};

/* Connection header tokens seen, as flags. */
enum {
	H1_CONN_CLOSE = 1u << 0,
	H1_CONN_KEEP_ALIVE = 1u << 1,
	H1_CONN_UPGRADE = 1u << 2,
	H1_CONN_OTHER = 1u << 3, /* other names: those headers are hop-by-hop too */
};

/*
 * A parsed head. The caller sets headers/max_headers (its own array) before
 * parsing; the parser fills the rest. All-zero plus the array is the valid
 * "nothing parsed yet" state.
 */
struct h1_msg {
	/* requests */
	struct str method;
	struct str target; /* request-target as sent */
	enum h1_form form;
	struct str authority; /* absolute-form or authority-form authority */
	struct str path;      /* origin-form target, or absolute-form path ("/" if empty) */
	/* responses */
	int status;
	struct str reason;
	/* both */
	int minor; /* HTTP/1.<minor>: 0 or 1 */
	struct h1_header *headers;
	size_t max_headers;
	size_t n_headers;
	struct str host; /* the Host field (requests); absolute-form authority wins */
	enum h1_body body;
	uint64_t content_length;
	unsigned conn_flags; /* H1_CONN_* */
	bool keep_alive;     /* after this message (version + Connection) */
	bool expect_continue;
	bool has_upgrade; /* Upgrade header present */
	size_t head_len;  /* bytes of the head, through the final CRLF */
	/* error reporting */
	int err_status;    /* 400, 414, 431, 501, 505, 417; 502 for responses */
	const char *error; /* static text for the log */
};

/* Parses a request head from buf[0..len). See the file comment. Leading
 * empty lines (CRLF) before the request line are skipped and counted. */
ssize_t h1_parse_request(const char *buf, size_t len, size_t last_len, struct h1_msg *m,
			 const struct h1_limits *lim);
/* Parses a response head. head_request: the request was HEAD (no body);
 * 1xx, 204 and 304 never have a body either. On error err_status is 502. */
ssize_t h1_parse_response(const char *buf, size_t len, size_t last_len, struct h1_msg *m,
			  const struct h1_limits *lim, bool head_request);

/* -------- chunked coding -------- */

enum h1_chunk_state {
	H1_CH_SIZE = 0, /* reading the chunk-size line */
	H1_CH_DATA,     /* remaining bytes of chunk data */
	H1_CH_DATA_CR,  /* CRLF after chunk data */
	H1_CH_DATA_LF,
	H1_CH_TRAILER, /* trailer section, line by line */
	H1_CH_DONE,
};

/* Decoder state; all-zero starts a body. */
struct h1_chunked {
	enum h1_chunk_state state;
	uint64_t remaining; /* of the current chunk's data */
	uint32_t line_len;  /* bytes of the current size or trailer line */
	uint32_t trailer_len;
	uint32_t n_digits;
	bool in_ext; /* past ';' on a size line */
	bool in_quote, quote_esc;
	bool saw_cr;
	uint64_t total; /* body bytes decoded so far */
};

#define H1_CHUNK_LINE_MAX 256u /* size line incl. extensions */
#define H1_TRAILER_MAX 8192u   /* whole trailer section */

/*
 * Decodes from p[0..len). Returns the bytes consumed (>= 0) or a negative
 * error (-WG_EPROTO: malformed, -WG_ELIMIT: line or trailers too long; both
 * mean 400 and close). At most one span of body data is reported per call,
 * in *data (a view into p; len 0 if none). Call again with the rest; when
 * the result is 0 and no data came back, more input is needed. c->state is
 * H1_CH_DONE once the last chunk and the trailers are consumed; bytes after
 * that are not consumed. Trailers are validated and dropped.
 */
ssize_t h1_chunked_decode(struct h1_chunked *c, const char *p, size_t len, struct str *data);
static inline bool h1_chunked_is_done(const struct h1_chunked *c)
{
	return c->state == H1_CH_DONE;
}

/* Writes the chunk header for n > 0 data bytes ("1a2b\r\n") into out (at
 * least 19 bytes); returns its length. The data must be followed by CRLF. */
size_t h1_chunk_header(char *out, uint64_t n);
#define H1_CHUNK_LAST "0\r\n\r\n"
/* Fills iov with what carries n > 0 body bytes at p: the bytes as they
 * are, or (chunked) one chunk, its header written to hdr (24 bytes).
 * Returns how many entries it used (1 or 3). */
int h1_body_iov(struct iovec *iov, char *hdr, const void *p, size_t n, bool chunked);

/* -------- header table helpers -------- */

/* First header named name (case-insensitive) at index >= from, or -1. */
ssize_t hdr_find(const struct h1_header *h, size_t n, struct str name, size_t from);
/* Whether name is hop-by-hop by definition (Connection, Keep-Alive,
 * Proxy-Connection, TE, Trailer, Transfer-Encoding, Upgrade). Headers that a
 * Connection field lists are hop-by-hop too: see hdr_is_listed. */
bool hdr_is_hop_by_hop(struct str name);
/* Whether name appears as a token in any Connection header of the table. */
bool hdr_is_listed_in_connection(const struct h1_header *h, size_t n, struct str name);
/* Whether every byte of s is a tchar (RFC 9110 token), s non-empty. */
bool hdr_is_token(struct str s);
/* Whether s is a valid field value (VCHAR, obs-text, SP, HTAB; no leading
 * or trailing whitespace). Used for values that come from configuration. */
bool hdr_is_value(struct str s);
/* Whether a comma-separated list field contains token (case-insensitive). */
bool hdr_list_has(struct str list, struct str token);
/* Standard reason phrase for a status ("" for unknown ones). */
const char *h1_reason(int status);

#endif
