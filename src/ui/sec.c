/* SPDX-License-Identifier: MIT */
/*
 * sec.c: the UI's request checks, as pure functions of their inputs so that
 * each is unit-tested on its own: the Host allow-list (against DNS
 * rebinding), the same-origin check for changes (against CSRF), cookie
 * parsing, constant-time token comparison and the login rate limiter. It
 * does no I/O and keeps no globals; the caller passes the clock. The state
 * here (host list, limiter) is used by the libmicrohttpd thread only.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/err.h"
#include "core/str.h"
#include "ui/internal.h"

#define HOST_MAX 255

static bool is_host_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '.' || c == '_';
}

static bool is_v6_char(char c)
{
	return (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || (c >= '0' && c <= '9') ||
	       c == ':' || c == '.';
}

static bool valid_port(const char *p)
{
	uint64_t v;

	if (!*p)
		return false;
	return str_to_u64(str_c(p), 65535, &v) == 0 && v > 0;
}

bool ui_host_parse(const char *value, char *out, size_t outsz)
{
	const char *name, *end;
	size_t len;

	if (!value || !*value || outsz == 0)
		return false;
	if (value[0] == '[') {
		name = value + 1;
		end = strchr(name, ']');
		if (!end || end == name)
			return false;
		for (const char *p = name; p < end; p++)
			if (!is_v6_char(*p))
				return false;
		if (end[1] != '\0' && (end[1] != ':' || !valid_port(end + 2)))
			return false;
	} else {
		name = value;
		end = strchr(name, ':');
		if (end) {
			if (!valid_port(end + 1))
				return false;
		} else {
			end = name + strlen(name);
		}
		for (const char *p = name; p < end; p++)
			if (!is_host_char(*p))
				return false;
		if (end > name && end[-1] == '.')
			end--;
	}
	len = (size_t)(end - name);
	if (len == 0 || len > HOST_MAX || len >= outsz)
		return false;
	for (size_t i = 0; i < len; i++)
		out[i] = ascii_lower(name[i]);
	out[len] = '\0';
	return true;
}

int ui_hosts_add(struct ui_hosts *h, const char *name)
{
	char norm[HOST_MAX + 1], tmp[HOST_MAX + 3];
	const char *pct;
	size_t len;

	if (!name || !*name)
		return -EINVAL;
	/* A bare IPv6 address (with an optional zone) is wrapped in brackets
	 * so that ui_host_parse reads it; the zone is not part of a Host. */
	if (name[0] != '[' && strchr(name, ':') && strchr(strchr(name, ':') + 1, ':')) {
		pct = strchr(name, '%');
		len = pct ? (size_t)(pct - name) : strlen(name);
		if (len + 3 > sizeof(tmp))
			return -EINVAL;
		tmp[0] = '[';
		memcpy(tmp + 1, name, len);
		tmp[len + 1] = ']';
		tmp[len + 2] = '\0';
		name = tmp;
	}
	if (!ui_host_parse(name, norm, sizeof(norm)))
		return -EINVAL;
	for (size_t i = 0; i < h->n; i++)
		if (!strcmp(h->v[i], norm))
			return 0;
	if (h->n == UI_MAX_HOSTS)
		return -WG_ELIMIT;
	h->v[h->n] = strdup(norm);
	if (!h->v[h->n])
		return -ENOMEM;
	h->n++;
	return 0;
}

void ui_hosts_fini(struct ui_hosts *h)
{
	for (size_t i = 0; i < h->n; i++)
		free(h->v[i]);
	h->n = 0;
}

bool ui_host_is_allowed(const struct ui_hosts *h, const char *value)
{
	char norm[HOST_MAX + 1];

	if (!ui_host_parse(value, norm, sizeof(norm)))
		return false;
	for (size_t i = 0; i < h->n; i++)
		if (!strcmp(h->v[i], norm))
			return true;
	return false;
}

/* Compares two authorities ("name[:port]"), the name case-insensitively,
 * treating an explicit :443 like no port (https' default). */
static bool authority_equal(const char *a, size_t alen, const char *b, size_t blen)
{
	if (alen >= 4 && !memcmp(a + alen - 4, ":443", 4) && a[0] != '[')
		alen -= 4;
	else if (alen >= 5 && !memcmp(a + alen - 5, "]:443", 5))
		alen -= 4;
	if (blen >= 4 && !memcmp(b + blen - 4, ":443", 4) && b[0] != '[')
		blen -= 4;
	else if (blen >= 5 && !memcmp(b + blen - 5, "]:443", 5))
		blen -= 4;
	return alen == blen && alen > 0 && strncasecmp(a, b, alen) == 0;
}

bool ui_origin_is_same(const char *origin, const char *host)
{
	static const char scheme[] = "https://";
	const char *auth;
	size_t alen;

	if (!origin || !host || !*host)
		return false;
	if (strncasecmp(origin, scheme, sizeof(scheme) - 1) != 0)
		return false;
	auth = origin + sizeof(scheme) - 1;
	alen = strlen(auth);
	/* An Origin is scheme://authority with nothing after it. */
	if (alen == 0 || memchr(auth, '/', alen) || memchr(auth, '@', alen))
		return false;
	return authority_equal(auth, alen, host, strlen(host));
}

static bool is_cookie_value_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '_';
}

bool ui_cookie_get(const char *header, const char *name, char *out, size_t outsz)
{
	size_t nlen = strlen(name);
	const char *p = header;

	if (!header || outsz == 0)
		return false;
	while (*p) {
		const char *start, *end;

		while (*p == ' ' || *p == '\t' || *p == ';')
			p++;
		start = p;
		end = strchr(p, ';');
		if (!end)
			end = p + strlen(p);
		if ((size_t)(end - start) > nlen && !memcmp(start, name, nlen) &&
		    start[nlen] == '=') {
			const char *v = start + nlen + 1, *ve = end;
			size_t vlen;

			while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
				ve--;
			vlen = (size_t)(ve - v);
			if (vlen == 0 || vlen >= outsz)
				return false;
			for (size_t i = 0; i < vlen; i++)
				if (!is_cookie_value_char(v[i]))
					return false;
			memcpy(out, v, vlen);
			out[vlen] = '\0';
			return true;
		}
		p = end;
	}
	return false;
}

bool ui_token_equal(const char *a, const char *b)
{
	size_t la, lb;
	unsigned char diff = 0;

	if (!a || !b)
		return false;
	la = strlen(a);
	lb = strlen(b);
	if (la == 0 || la != lb)
		return false;
	for (size_t i = 0; i < la; i++)
		diff |= (unsigned char)(a[i] ^ b[i]);
	return diff == 0;
}

void ui_hex(const uint8_t *p, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[p[i] >> 4];
		out[2 * i + 1] = digits[p[i] & 15];
	}
	out[2 * n] = '\0';
}

/* -------- rate limiter -------- */

void ui_rl_init(struct ui_ratelimit *rl, uint32_t burst, uint32_t refill_ms, uint32_t global_burst,
		uint32_t global_refill_ms)
{
	memset(rl, 0, sizeof(*rl));
	rl->burst = burst ? burst : 1;
	rl->refill_ms = refill_ms ? refill_ms : 1;
	rl->global_burst = global_burst ? global_burst : 1;
	rl->global_refill_ms = global_refill_ms ? global_refill_ms : 1;
	rl->global.tokens = rl->global_burst;
}

static void refill(struct ui_rl_entry *e, uint32_t burst, uint32_t refill_ms, uint64_t now_ms)
{
	uint64_t n;

	if (now_ms <= e->last_ms)
		return;
	if (e->tokens >= burst) {
		e->last_ms = now_ms;
		return;
	}
	n = (now_ms - e->last_ms) / refill_ms;
	if (n == 0)
		return;
	if (n >= burst - e->tokens) {
		e->tokens = burst;
		e->last_ms = now_ms;
	} else {
		e->tokens += (uint32_t)n;
		e->last_ms += n * refill_ms;
	}
}

/* The entry for key, or a recycled one (the least recently used) holding a
 * full bucket. Never NULL. */
static struct ui_rl_entry *rl_entry(struct ui_ratelimit *rl, const char *key, uint64_t now_ms)
{
	struct ui_rl_entry *lru = &rl->v[0];

	for (size_t i = 0; i < UI_RL_ENTRIES; i++) {
		struct ui_rl_entry *e = &rl->v[i];

		if (e->key[0] && !strcmp(e->key, key)) {
			e->used_ms = now_ms;
			return e;
		}
		if (!e->key[0] || (lru->key[0] && e->used_ms < lru->used_ms))
			lru = e;
	}
	str_lcpy(lru->key, key, sizeof(lru->key));
	lru->tokens = rl->burst;
	lru->last_ms = now_ms;
	lru->used_ms = now_ms;
	return lru;
}

static uint32_t wait_s(const struct ui_rl_entry *e, uint32_t refill_ms, uint64_t now_ms)
{
	uint64_t due = e->last_ms + refill_ms;
	uint64_t ms = due > now_ms ? due - now_ms : 0;

	return (uint32_t)((ms + 999) / 1000) + (ms == 0);
}

bool ui_rl_allow(struct ui_ratelimit *rl, const char *key, uint64_t now_ms, uint32_t *retry_s)
{
	struct ui_rl_entry *e = rl_entry(rl, key ? key : "", now_ms);

	refill(e, rl->burst, rl->refill_ms, now_ms);
	refill(&rl->global, rl->global_burst, rl->global_refill_ms, now_ms);
	if (e->tokens == 0) {
		if (retry_s)
			*retry_s = wait_s(e, rl->refill_ms, now_ms);
		return false;
	}
	if (rl->global.tokens == 0) {
		if (retry_s)
			*retry_s = wait_s(&rl->global, rl->global_refill_ms, now_ms);
		return false;
	}
	return true;
}

void ui_rl_fail(struct ui_ratelimit *rl, const char *key, uint64_t now_ms)
{
	struct ui_rl_entry *e = rl_entry(rl, key ? key : "", now_ms);

	refill(e, rl->burst, rl->refill_ms, now_ms);
	refill(&rl->global, rl->global_burst, rl->global_refill_ms, now_ms);
	if (e->tokens > 0) {
		if (e->tokens == rl->burst)
			e->last_ms = now_ms; /* the refill clock starts at the first use */
		e->tokens--;
	}
	if (rl->global.tokens > 0) {
		if (rl->global.tokens == rl->global_burst)
			rl->global.last_ms = now_ms;
		rl->global.tokens--;
	}
}

void ui_rl_success(struct ui_ratelimit *rl, const char *key, uint64_t now_ms)
{
	struct ui_rl_entry *e = rl_entry(rl, key ? key : "", now_ms);

	e->tokens = rl->burst;
	e->last_ms = now_ms;
}
