/* SPDX-License-Identifier: MIT */
/*
 * json.c: the UI's JSON writer. Every string the API returns (names,
 * hostnames, condition messages from the cluster, log lines) goes through
 * ui_json_str(), which escapes it so that the output is valid JSON whatever
 * the bytes are, and inert if a page ever put it into HTML (<, >, &, ' are
 * \u-escaped). Reading JSON (request bodies) uses yyjson in server.c and
 * api.c; this file only writes. Runs on the libmicrohttpd thread.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "ui/internal.h"

/* Length of the valid UTF-8 sequence at p (at most n bytes), or 0. */
static size_t utf8_len(const unsigned char *p, size_t n)
{
	unsigned c = p[0];
	size_t len;
	uint32_t cp;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		len = 2, cp = c & 0x1f;
	else if (c >= 0xe0 && c <= 0xef)
		len = 3, cp = c & 0x0f;
	else if (c >= 0xf0 && c <= 0xf4)
		len = 4, cp = c & 0x07;
	else
		return 0;
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[i] & 0x3f);
	}
	/* overlong, surrogates, beyond U+10FFFF */
	if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

int ui_json_strn(struct buf *b, const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, run = 0;
	int err;

	if (!s)
		return buf_append(b, "null", 4);
	if ((err = buf_append(b, "\"", 1)) < 0)
		return err;
	while (i < n) {
		unsigned char c = p[i];
		char esc[8];
		const char *rep = NULL;
		size_t rlen = 0, adv = 1;

		if (c >= 0x80) {
			size_t l = utf8_len(p + i, n - i);

			if (l == 0) {
				rep = "\\ufffd";
				rlen = 6;
			} else if (l == 3 && c == 0xe2 && p[i + 1] == 0x80 &&
				   (p[i + 2] == 0xa8 || p[i + 2] == 0xa9)) {
				rep = p[i + 2] == 0xa8 ? "\\u2028" : "\\u2029";
				rlen = 6;
				adv = 3;
			} else {
				run += l;
				i += l;
				continue;
			}
		} else if (c == '"') {
			rep = "\\\"", rlen = 2;
		} else if (c == '\\') {
			rep = "\\\\", rlen = 2;
		} else if (c == '\n') {
			rep = "\\n", rlen = 2;
		} else if (c == '\r') {
			rep = "\\r", rlen = 2;
		} else if (c == '\t') {
			rep = "\\t", rlen = 2;
		} else if (c < 0x20 || c == 0x7f || c == '<' || c == '>' || c == '&' || c == '\'') {
			snprintf(esc, sizeof(esc), "\\u%04x", c);
			rep = esc, rlen = 6;
		} else {
			run++;
			i++;
			continue;
		}
		if (run && (err = buf_append(b, s + i - run, run)) < 0)
			return err;
		run = 0;
		if ((err = buf_append(b, rep, rlen)) < 0)
			return err;
		i += adv;
	}
	if (run && (err = buf_append(b, s + i - run, run)) < 0)
		return err;
	return buf_append(b, "\"", 1);
}

int ui_json_str(struct buf *b, const char *s)
{
	return ui_json_strn(b, s, s ? strlen(s) : 0);
}

/* -------- writer -------- */

void jw_init(struct jw *w, struct buf *b)
{
	memset(w, 0, sizeof(*w));
	w->b = b;
	w->first[0] = true;
}

static void put(struct jw *w, const char *s, size_t n)
{
	if (!w->err && buf_append(w->b, s, n) < 0)
		w->err = -ENOMEM;
}

/* Writes the separator a new value needs at the current level. */
static void sep(struct jw *w)
{
	if (w->after_key) {
		w->after_key = false;
		return;
	}
	if (!w->first[w->depth])
		put(w, ",", 1);
	w->first[w->depth] = false;
}

static void open_(struct jw *w, char c)
{
	sep(w);
	put(w, &c, 1);
	if (w->depth + 1 >= (int)(sizeof(w->first) / sizeof(w->first[0]))) {
		w->err = -EINVAL;
		return;
	}
	w->depth++;
	w->first[w->depth] = true;
}

static void close_(struct jw *w, char c)
{
	put(w, &c, 1);
	if (w->depth > 0)
		w->depth--;
}

void jw_obj(struct jw *w)
{
	open_(w, '{');
}
void jw_obj_end(struct jw *w)
{
	close_(w, '}');
}
void jw_arr(struct jw *w)
{
	open_(w, '[');
}
void jw_arr_end(struct jw *w)
{
	close_(w, ']');
}

void jw_key(struct jw *w, const char *k)
{
	sep(w);
	if (!w->err && ui_json_str(w->b, k) < 0)
		w->err = -ENOMEM;
	put(w, ":", 1);
	w->after_key = true;
}

void jw_str(struct jw *w, const char *s)
{
	sep(w);
	if (!w->err && ui_json_str(w->b, s) < 0)
		w->err = -ENOMEM;
}

void jw_u64(struct jw *w, uint64_t v)
{
	char t[24];

	sep(w);
	put(w, t, (size_t)snprintf(t, sizeof(t), "%" PRIu64, v));
}

void jw_i64(struct jw *w, int64_t v)
{
	char t[24];

	sep(w);
	put(w, t, (size_t)snprintf(t, sizeof(t), "%" PRId64, v));
}

void jw_dbl(struct jw *w, double v)
{
	char t[40];

	sep(w);
	if (!isfinite(v))
		put(w, "null", 4);
	else
		put(w, t, (size_t)snprintf(t, sizeof(t), "%.6g", v));
}

void jw_bool(struct jw *w, bool v)
{
	sep(w);
	if (v)
		put(w, "true", 4);
	else
		put(w, "false", 5);
}

void jw_null(struct jw *w)
{
	sep(w);
	put(w, "null", 4);
}

void jw_raw(struct jw *w, const char *json, size_t len)
{
	sep(w);
	put(w, json, len);
}

void jw_kstr(struct jw *w, const char *k, const char *s)
{
	jw_key(w, k);
	jw_str(w, s);
}

void jw_ku64(struct jw *w, const char *k, uint64_t v)
{
	jw_key(w, k);
	jw_u64(w, v);
}

void jw_kbool(struct jw *w, const char *k, bool v)
{
	jw_key(w, k);
	jw_bool(w, v);
}
