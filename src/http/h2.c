/* SPDX-License-Identifier: MIT */
/*
 * h2.c: the nghttp2 glue behind h2.h. It keeps nghttp2's types inside this
 * file, collects each header block into one per-session scratch area (header
 * blocks of different streams cannot interleave), bounds what a peer can
 * make it decode or queue, and turns nghttp2's callbacks into h2_cbs
 * events. It does no I/O and no routing: proxy/h2*.c owns the sockets and
 * decides what a stream means. Runs on the thread that owns the session.
 *
 * Limits, and what a breach costs the peer:
 *   - header list over max_header_list decoded bytes or over H2_MAX_FIELDS
 *     fields (HPACK bomb): GOAWAY ENHANCE_YOUR_CALM;
 *   - more than 8 CONTINUATION frames per block (nghttp2): GOAWAY;
 *   - RST_STREAM faster than max_resets_per_s (rapid reset, a token bucket
 *     here and nghttp2's own rate limit): GOAWAY ENHANCE_YOUR_CALM;
 *   - SETTINGS, PING, PRIORITY, empty DATA / HEADERS-less frames faster
 *     than max_control_per_s, or an ACK queue over 1000 frames (nghttp2):
 *     GOAWAY ENHANCE_YOUR_CALM.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <nghttp2/nghttp2.h>

#include "core/err.h"
#include "http/h2.h"

#define H2_MAX_FIELDS 256

struct bucket {
	uint64_t last_ms;
	double tokens;
};

/*
 * nghttp2's memory: a per-thread cache of small blocks (size classes of 64
 * bytes to 2 KiB) in front of malloc. A stream makes a handful of small
 * allocations that all die with it; without the cache each one takes the
 * libc allocator's process-wide lock, and the churn unmaps and remaps
 * pages (TLB shootdowns on every core). At most H2M_CACHE_MAX bytes wait
 * per thread. Sessions are freed on the thread that made them, so a block
 * goes back to the list of the thread that allocated it.
 */
#define H2M_CLASSES 6 /* 64, 128, ..., 2048 */
#define H2M_HDR 16    /* keeps the caller's block 16-byte aligned */
#define H2M_CACHE_MAX (256 * 1024)

struct h2m_block {
	struct h2m_block *next;
};

static __thread struct h2m_block *h2m_lists[H2M_CLASSES];
static __thread size_t h2m_cached;

static int h2m_class(size_t n)
{
	for (int k = 0; k < H2M_CLASSES; k++)
		if (n <= (size_t)64 << k)
			return k;
	return -1;
}

static void *h2m_malloc(size_t n, void *ud)
{
	(void)ud;
	if (n > SIZE_MAX - H2M_HDR)
		return NULL;
	int k = h2m_class(n + H2M_HDR);
	unsigned char *p;
	if (k >= 0 && h2m_lists[k]) {
		p = (unsigned char *)h2m_lists[k];
		h2m_lists[k] = h2m_lists[k]->next;
		h2m_cached -= (size_t)64 << k;
	} else {
		p = malloc(k >= 0 ? (size_t)64 << k : n + H2M_HDR);
		if (!p)
			return NULL;
	}
	memcpy(p, &k, sizeof(k));
	return p + H2M_HDR;
}

static void h2m_free(void *ptr, void *ud)
{
	(void)ud;
	if (!ptr)
		return;
	unsigned char *p = (unsigned char *)ptr - H2M_HDR;
	int k;
	memcpy(&k, p, sizeof(k));
	if (k >= 0 && h2m_cached + ((size_t)64 << k) <= H2M_CACHE_MAX) {
		struct h2m_block *b = (struct h2m_block *)(void *)p;
		b->next = h2m_lists[k];
		h2m_lists[k] = b;
		h2m_cached += (size_t)64 << k;
		return;
	}
	free(p);
}

static void *h2m_calloc(size_t nmemb, size_t size, void *ud)
{
	if (size && nmemb > SIZE_MAX / size)
		return NULL;
	void *p = h2m_malloc(nmemb * size, ud);
	if (p)
		memset(p, 0, nmemb * size);
	return p;
}

static void *h2m_realloc(void *ptr, size_t n, void *ud)
{
	if (!ptr)
		return h2m_malloc(n, ud);
	unsigned char *p = (unsigned char *)ptr - H2M_HDR;
	int k;
	memcpy(&k, p, sizeof(k));
	if (k < 0) {
		if (n > SIZE_MAX - H2M_HDR)
			return NULL;
		unsigned char *q = realloc(p, n + H2M_HDR);
		return q ? q + H2M_HDR : NULL;
	}
	size_t have = ((size_t)64 << k) - H2M_HDR;
	if (n <= have)
		return ptr;
	void *q = h2m_malloc(n, ud);
	if (!q)
		return NULL;
	memcpy(q, ptr, have);
	h2m_free(ptr, ud);
	return q;
}

void h2_mem_release(void)
{
	for (int k = 0; k < H2M_CLASSES; k++) {
		while (h2m_lists[k]) {
			struct h2m_block *b = h2m_lists[k];
			h2m_lists[k] = b->next;
			free(b);
		}
	}
	h2m_cached = 0;
}

static nghttp2_mem h2m = {NULL, h2m_malloc, h2m_free, h2m_calloc, h2m_realloc};

struct h2_sess {
	nghttp2_session *ng;
	struct h2_cbs cbs;
	void *ctx;
	struct h2_limits lim;
	bool server;
	bool flood;
	bool failed;
	uint64_t now_ms;
	struct bucket resets, control;
	const uint8_t *carry; /* the rest of a frame h2_send could not place */
	size_t carry_len;
	/* the header block being received */
	int32_t hb_sid;
	bool hb_bad;
	char *hb;
	size_t hb_len, hb_cap;
	struct h2_hdr fields[H2_MAX_FIELDS];
	size_t n_fields;
};

static bool bucket_take(struct bucket *b, uint32_t rate, uint64_t now)
{
	if (!b->last_ms) {
		b->last_ms = now;
		b->tokens = rate;
	}
	if (now > b->last_ms) {
		b->tokens += (double)(now - b->last_ms) * rate / 1000.0;
		if (b->tokens > rate)
			b->tokens = rate;
		b->last_ms = now;
	}
	if (b->tokens < 1.0)
		return false;
	b->tokens -= 1.0;
	return true;
}

static void flood(struct h2_sess *s)
{
	if (s->flood)
		return;
	s->flood = true;
	nghttp2_session_terminate_session(s->ng, NGHTTP2_ENHANCE_YOUR_CALM);
}

static int on_begin_headers(nghttp2_session *ng, const nghttp2_frame *f, void *ud)
{
	struct h2_sess *s = ud;
	(void)ng;
	s->hb_sid = f->hd.stream_id;
	s->hb_len = 0;
	s->n_fields = 0;
	s->hb_bad = false;
	return 0;
}

static int on_header(nghttp2_session *ng, const nghttp2_frame *f, const uint8_t *name, size_t nlen,
		     const uint8_t *value, size_t vlen, uint8_t flags, void *ud)
{
	struct h2_sess *s = ud;
	(void)ng;
	(void)flags;
	if (f->hd.stream_id != s->hb_sid) {
		s->hb_sid = f->hd.stream_id;
		s->hb_len = 0;
		s->n_fields = 0;
		s->hb_bad = false;
	}
	size_t need = nlen + vlen + 32; /* RFC 9113's 32 bytes of overhead per field */
	if (s->hb_bad || s->hb_len + need > s->lim.max_header_list ||
	    s->n_fields >= H2_MAX_FIELDS) {
		/* an HPACK bomb or an absurd head: the peer is not a client */
		s->hb_bad = true;
		if (s->server)
			flood(s);
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	}
	if (s->hb_len + need > s->hb_cap) {
		size_t cap = s->hb_cap ? s->hb_cap : 4096;
		while (cap < s->hb_len + need)
			cap *= 2;
		char *nb = realloc(s->hb, cap);
		if (!nb)
			return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
		/* rebase the views already taken */
		for (size_t i = 0; i < s->n_fields; i++) {
			s->fields[i].name = nb + (s->fields[i].name - s->hb);
			s->fields[i].value = nb + (s->fields[i].value - s->hb);
		}
		s->hb = nb;
		s->hb_cap = cap;
	}
	char *p = s->hb + s->hb_len;
	memcpy(p, name, nlen);
	p[nlen] = '\0';
	memcpy(p + nlen + 1, value, vlen);
	p[nlen + 1 + vlen] = '\0';
	s->fields[s->n_fields++] = (struct h2_hdr){p, nlen, p + nlen + 1, vlen};
	s->hb_len += nlen + vlen + 2;
	return 0;
}

static int on_frame_recv(nghttp2_session *ng, const nghttp2_frame *f, void *ud)
{
	struct h2_sess *s = ud;
	bool end = f->hd.flags & NGHTTP2_FLAG_END_STREAM;
	(void)ng;

	switch (f->hd.type) {
	case NGHTTP2_HEADERS: {
		if (s->hb_bad || f->hd.stream_id != s->hb_sid) {
			s->n_fields = 0;
			return 0;
		}
		bool trailers = f->headers.cat == NGHTTP2_HCAT_HEADERS;
		if (s->server && !trailers && f->headers.cat != NGHTTP2_HCAT_REQUEST)
			return 0;
		if (!s->server && f->headers.cat == NGHTTP2_HCAT_RESPONSE) {
			/* interim responses (1xx) are dropped */
			for (size_t i = 0; i < s->n_fields; i++)
				if (s->fields[i].nlen == 7 &&
				    !memcmp(s->fields[i].name, ":status", 7) &&
				    s->fields[i].vlen == 3 && s->fields[i].value[0] == '1')
					return 0;
		}
		int rc = s->cbs.on_headers(s->ctx, f->hd.stream_id, s->fields, s->n_fields,
					   trailers, end);
		s->n_fields = 0;
		s->hb_len = 0;
		if (rc < 0)
			nghttp2_submit_rst_stream(s->ng, NGHTTP2_FLAG_NONE, f->hd.stream_id,
						  NGHTTP2_INTERNAL_ERROR);
		else if (end && trailers && s->cbs.on_end)
			s->cbs.on_end(s->ctx, f->hd.stream_id);
		return 0;
	}
	case NGHTTP2_DATA:
		if (f->hd.length == 0 && !end && s->server &&
		    !bucket_take(&s->control, s->lim.max_control_per_s, s->now_ms))
			flood(s);
		if (end && s->cbs.on_end)
			s->cbs.on_end(s->ctx, f->hd.stream_id);
		return 0;
	case NGHTTP2_RST_STREAM:
		if (s->server && !bucket_take(&s->resets, s->lim.max_resets_per_s, s->now_ms))
			flood(s);
		return 0;
	case NGHTTP2_SETTINGS:
	case NGHTTP2_PING:
		if (f->hd.flags & NGHTTP2_FLAG_ACK)
			return 0;
		/* fall through */
	case NGHTTP2_PRIORITY:
		if (s->server && !bucket_take(&s->control, s->lim.max_control_per_s, s->now_ms))
			flood(s);
		return 0;
	case NGHTTP2_WINDOW_UPDATE:
		if (f->window_update.window_size_increment == 0 && s->server)
			flood(s);
		return 0;
	default: return 0;
	}
}

static int on_data_chunk(nghttp2_session *ng, uint8_t flags, int32_t sid, const uint8_t *p,
			 size_t n, void *ud)
{
	struct h2_sess *s = ud;
	(void)flags;
	if (s->cbs.on_data(s->ctx, sid, p, n) < 0) {
		nghttp2_session_consume(ng, sid, n);
		nghttp2_submit_rst_stream(ng, NGHTTP2_FLAG_NONE, sid, NGHTTP2_INTERNAL_ERROR);
	}
	return 0;
}

static int on_stream_close(nghttp2_session *ng, int32_t sid, uint32_t code, void *ud)
{
	struct h2_sess *s = ud;
	(void)ng;
	if (s->cbs.on_close)
		s->cbs.on_close(s->ctx, sid, code);
	return 0;
}

static nghttp2_ssize read_cb(nghttp2_session *ng, int32_t sid, uint8_t *buf, size_t len,
			     uint32_t *data_flags, nghttp2_data_source *src, void *ud)
{
	struct h2_sess *s = ud;
	uint32_t fl = 0;
	(void)ng;
	(void)src;
	ssize_t r = s->cbs.read_body(s->ctx, sid, buf, len, &fl);
	if (r == H2_DEFER)
		return NGHTTP2_ERR_DEFERRED;
	if (r < 0)
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	if (fl & H2_BODY_EOF)
		*data_flags |= NGHTTP2_DATA_FLAG_EOF;
	if (fl & H2_BODY_TRAILERS)
		*data_flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
	return r;
}

static struct h2_sess *sess_new(const struct h2_limits *lim, const struct h2_cbs *cbs, void *ctx,
				bool server)
{
	struct h2_sess *s = calloc(1, sizeof(*s));
	nghttp2_session_callbacks *cb = NULL;
	nghttp2_option *opt = NULL;

	if (!s)
		return NULL;
	s->cbs = *cbs;
	s->ctx = ctx;
	s->server = server;
	s->lim = lim ? *lim : (struct h2_limits){0};
	if (!s->lim.max_concurrent_streams)
		s->lim.max_concurrent_streams = 100;
	if (!s->lim.stream_window)
		s->lim.stream_window = 256 * 1024;
	if (!s->lim.conn_window)
		s->lim.conn_window = 1024 * 1024;
	if (!s->lim.max_header_list)
		s->lim.max_header_list = 64 * 1024;
	if (!s->lim.max_resets_per_s)
		s->lim.max_resets_per_s = 200;
	if (!s->lim.max_control_per_s)
		s->lim.max_control_per_s = 500;
	s->hb_sid = -1;
	if (nghttp2_session_callbacks_new(&cb) || nghttp2_option_new(&opt))
		goto fail;
	nghttp2_session_callbacks_set_on_begin_headers_callback(cb, on_begin_headers);
	nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
	nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data_chunk);
	nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_stream_close);
	nghttp2_option_set_no_auto_window_update(opt, 1);
	nghttp2_option_set_max_continuations(opt, 8);
	nghttp2_option_set_max_settings(opt, 32);
	nghttp2_option_set_max_outbound_ack(opt, 1000);
	nghttp2_option_set_max_deflate_dynamic_table_size(opt, 4096);
	nghttp2_option_set_stream_reset_rate_limit(opt, s->lim.max_resets_per_s,
						   s->lim.max_resets_per_s);
	int rc = server ? nghttp2_session_server_new3(&s->ng, cb, s, opt, &h2m)
			: nghttp2_session_client_new3(&s->ng, cb, s, opt, &h2m);
	if (rc)
		goto fail;
	nghttp2_option_del(opt);
	nghttp2_session_callbacks_del(cb);
	nghttp2_settings_entry iv[] = {
		{NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, s->lim.max_concurrent_streams},
		{NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, s->lim.stream_window},
		{NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, s->lim.max_header_list},
		{NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
	};
	if (nghttp2_submit_settings(s->ng, NGHTTP2_FLAG_NONE, iv, server ? 3 : 4) ||
	    nghttp2_session_set_local_window_size(s->ng, NGHTTP2_FLAG_NONE, 0,
						  (int32_t)s->lim.conn_window)) {
		nghttp2_session_del(s->ng);
		free(s);
		return NULL;
	}
	return s;
fail:
	if (opt)
		nghttp2_option_del(opt);
	if (cb)
		nghttp2_session_callbacks_del(cb);
	free(s);
	return NULL;
}

struct h2_sess *h2_server_new(const struct h2_limits *lim, const struct h2_cbs *cbs, void *ctx)
{
	return sess_new(lim, cbs, ctx, true);
}

struct h2_sess *h2_client_new(const struct h2_limits *lim, const struct h2_cbs *cbs, void *ctx)
{
	return sess_new(lim, cbs, ctx, false);
}

void h2_free(struct h2_sess *s)
{
	if (!s)
		return;
	nghttp2_session_del(s->ng);
	free(s->hb);
	free(s);
}

int h2_recv(struct h2_sess *s, const void *p, size_t n, uint64_t now_ms)
{
	s->now_ms = now_ms;
	if (s->failed)
		return -WG_EPROTO;
	nghttp2_ssize r = nghttp2_session_mem_recv2(s->ng, p, n);
	if (s->flood)
		return -WG_ELIMIT;
	if (r < 0) {
		s->failed = true;
		bool calm = r == NGHTTP2_ERR_FLOODED || r == NGHTTP2_ERR_TOO_MANY_CONTINUATIONS ||
			    r == NGHTTP2_ERR_HEADER_COMP;
		nghttp2_session_terminate_session(s->ng, calm ? NGHTTP2_ENHANCE_YOUR_CALM
							      : NGHTTP2_PROTOCOL_ERROR);
		return calm ? -WG_ELIMIT : -WG_EPROTO;
	}
	return 0;
}

ssize_t h2_send(struct h2_sess *s, void *out, size_t room)
{
	size_t total = 0;
	/* frames nghttp2 hands out are copied; what does not fit is taken on
	 * the next call (nghttp2's buffer stays valid until then) */
	if (s->carry_len) {
		size_t k = s->carry_len < room ? s->carry_len : room;
		memcpy(out, s->carry, k);
		s->carry += k;
		s->carry_len -= k;
		total += k;
		if (s->carry_len)
			return (ssize_t)total;
	}
	while (total < room) {
		const uint8_t *d;
		nghttp2_ssize r = nghttp2_session_mem_send2(s->ng, &d);
		if (r < 0) {
			s->failed = true;
			return total ? (ssize_t)total : -WG_EPROTO;
		}
		if (r == 0)
			break;
		size_t k = (size_t)r < room - total ? (size_t)r : room - total;
		memcpy((char *)out + total, d, k);
		total += k;
		if (k < (size_t)r) {
			s->carry = d + k;
			s->carry_len = (size_t)r - k;
			break;
		}
	}
	return (ssize_t)total;
}

bool h2_want_write(const struct h2_sess *s)
{
	return s->carry_len || nghttp2_session_want_write(s->ng);
}

bool h2_is_done(const struct h2_sess *s)
{
	return s->failed ||
	       (!nghttp2_session_want_read(s->ng) && !nghttp2_session_want_write(s->ng));
}

static int submit_hdrs(nghttp2_nv *nv, size_t max, const struct h2_hdr *h, size_t n, size_t at)
{
	for (size_t i = 0; i < n && at < max; i++, at++)
		nv[at] = (nghttp2_nv){(uint8_t *)(uintptr_t)h[i].name,
				      (uint8_t *)(uintptr_t)h[i].value, h[i].nlen, h[i].vlen,
				      NGHTTP2_NV_FLAG_NONE};
	return (int)at;
}

int h2_submit_response(struct h2_sess *s, int32_t sid, int status, const struct h2_hdr *h, size_t n,
		       bool has_body)
{
	nghttp2_nv nv[H2_MAX_FIELDS + 1];
	char st[8];
	int sl = 0;
	if (status < 100 || status > 999)
		status = 502;
	st[0] = (char)('0' + status / 100);
	st[1] = (char)('0' + status / 10 % 10);
	st[2] = (char)('0' + status % 10);
	sl = 3;
	nv[0] = (nghttp2_nv){(uint8_t *)":status", (uint8_t *)st, 7, (size_t)sl,
			     NGHTTP2_NV_FLAG_NONE};
	int k = submit_hdrs(nv, H2_MAX_FIELDS + 1, h, n, 1);
	nghttp2_data_provider2 dp = {.read_callback = read_cb};
	int rc = nghttp2_submit_response2(s->ng, sid, nv, (size_t)k, has_body ? &dp : NULL);
	return rc ? -EINVAL : 0;
}

int32_t h2_submit_request(struct h2_sess *s, const struct h2_hdr *h, size_t n, bool has_body,
			  void *stream_data)
{
	nghttp2_nv nv[H2_MAX_FIELDS];
	int k = submit_hdrs(nv, H2_MAX_FIELDS, h, n, 0);
	nghttp2_data_provider2 dp = {.read_callback = read_cb};
	int32_t id = nghttp2_submit_request2(s->ng, NULL, nv, (size_t)k, has_body ? &dp : NULL,
					     stream_data);
	return id > 0 ? id : -EINVAL;
}

int h2_submit_trailers(struct h2_sess *s, int32_t sid, const struct h2_hdr *h, size_t n)
{
	nghttp2_nv nv[H2_MAX_FIELDS];
	int k = submit_hdrs(nv, H2_MAX_FIELDS, h, n, 0);
	return nghttp2_submit_trailer(s->ng, sid, nv, (size_t)k) ? -EINVAL : 0;
}

int h2_resume(struct h2_sess *s, int32_t sid)
{
	return nghttp2_session_resume_data(s->ng, sid) ? -EINVAL : 0;
}

void h2_consume(struct h2_sess *s, int32_t sid, size_t n)
{
	if (!n)
		return;
	if (nghttp2_session_consume(s->ng, sid, n))
		nghttp2_session_consume_connection(s->ng, n);
}

void h2_reset(struct h2_sess *s, int32_t sid, uint32_t code)
{
	nghttp2_submit_rst_stream(s->ng, NGHTTP2_FLAG_NONE, sid, code);
}

void h2_goaway(struct h2_sess *s, uint32_t code)
{
	nghttp2_session_terminate_session(s->ng, code);
}

int h2_drain(struct h2_sess *s)
{
	int32_t last = nghttp2_session_get_last_proc_stream_id(s->ng);
	return nghttp2_submit_goaway(s->ng, NGHTTP2_FLAG_NONE, last, NGHTTP2_NO_ERROR, NULL, 0) ? -1
														: 0;
}

uint32_t h2_streams_left(const struct h2_sess *s, uint32_t open)
{
	uint32_t max =
		nghttp2_session_get_remote_settings(s->ng, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
	if (nghttp2_session_get_next_stream_id(s->ng) > (1u << 30))
		return 0;
	return open >= max ? 0 : max - open;
}

void *h2_stream_data(const struct h2_sess *s, int32_t sid)
{
	return nghttp2_session_get_stream_user_data(s->ng, sid);
}

void h2_stream_set_data(struct h2_sess *s, int32_t sid, void *p)
{
	nghttp2_session_set_stream_user_data(s->ng, sid, p);
}
