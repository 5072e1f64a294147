/* SPDX-License-Identifier: MIT */
/*
 * events.c: the ring of recent log lines behind the Events page. It is the
 * process's log sink (log_set_sink), so it is called from every thread,
 * under its own mutex, and only copies. Secrets never reach the log by
 * rule, but the one-time first-start password line does, and a line may
 * carry a value a person pasted: every value whose key names a secret is
 * replaced by [redacted] before the line is kept.
 */
#include <string.h>

#include "core/str.h"
#include "ui/internal.h"

void ui_events_init(struct ui_events *ev)
{
	memset(ev, 0, sizeof(*ev));
	pthread_mutex_init(&ev->mu, NULL);
}

void ui_events_fini(struct ui_events *ev)
{
	pthread_mutex_destroy(&ev->mu);
}

static const char *const secret_words[] = {
	"password", "passwd",  "token",      "secret", "authorization",
	"cookie",   "private", "credential", "bearer", "session",
};

/* Whether a key (klen bytes) names a secret: contains one of the words, or
 * is "key" / ends in "_key" / "-key". */
static bool key_is_secret(const char *k, size_t klen)
{
	char low[64];

	if (klen == 0 || klen >= sizeof(low))
		return false;
	for (size_t i = 0; i < klen; i++)
		low[i] = ascii_lower(k[i]);
	low[klen] = '\0';
	for (size_t i = 0; i < sizeof(secret_words) / sizeof(secret_words[0]); i++)
		if (strstr(low, secret_words[i]))
			return true;
	if (!strcmp(low, "key"))
		return true;
	return klen > 4 && (!strcmp(low + klen - 4, "_key") || !strcmp(low + klen - 4, "-key"));
}

static bool is_key_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '_' || c == '-' || c == '.';
}

/* End of the value starting at v: a quoted value runs to its closing quote
 * (backslash escapes honoured), a bare one to the next space. */
static char *value_end(char *v)
{
	if (*v == '"') {
		char *p = v + 1;

		while (*p && *p != '"') {
			if (*p == '\\' && p[1])
				p++;
			p++;
		}
		return *p ? p + 1 : p;
	}
	while (*v && *v != ' ')
		v++;
	return v;
}

/* Replaces line[v..e) by "[redacted]" within size bytes; when the line
 * would not fit, what follows the replacement is cut. Returns the end of
 * the replacement. */
static char *replace(char *line, size_t size, char *v, char *e)
{
	static const char red[] = "[redacted]";
	size_t rlen = sizeof(red) - 1, off = (size_t)(v - line), tail = strlen(e);

	if (off + rlen + 1 > size) {
		*v = '\0';
		return v;
	}
	if (off + rlen + tail + 1 > size)
		tail = size - off - rlen - 1;
	memmove(v + rlen, e, tail);
	v[rlen + tail] = '\0';
	memcpy(v, red, rlen);
	return v + rlen;
}

bool ui_redact(char *line, size_t size)
{
	bool changed = false;
	char *p = line;

	while ((p = strchr(p, '=')) != NULL) {
		char *k = p, *v = p + 1, *e;

		while (k > line && is_key_char(k[-1]))
			k--;
		e = value_end(v);
		if (key_is_secret(k, (size_t)(p - k)) && e > v) {
			if ((size_t)(e - v) != 10 || memcmp(v, "[redacted]", 10) != 0)
				changed = true;
			e = replace(line, size, v, e);
		}
		p = e;
	}
	/* A bearer credential can also appear in a free-text value. */
	for (char *b = strstr(line, "Bearer "); b; b = strstr(b, "Bearer ")) {
		char *v = b + 7, *e = v;

		while (*e && *e != ' ' && *e != '"')
			e++;
		if (e > v && ((size_t)(e - v) != 10 || memcmp(v, "[redacted]", 10) != 0)) {
			e = replace(line, size, v, e);
			changed = true;
		}
		b = e;
	}
	return changed;
}

void ui_events_sink(enum log_level level, const char *line, void *arg)
{
	struct ui_events *ev = arg;
	char tmp[UI_EVENT_LEN];
	struct ui_event *e;

	if (!ev || !line)
		return;
	str_lcpy(tmp, line, sizeof(tmp));
	ui_redact(tmp, sizeof(tmp));
	pthread_mutex_lock(&ev->mu);
	ev->seq++;
	e = &ev->v[ev->seq % UI_EVENTS];
	e->seq = ev->seq;
	e->level = level;
	str_lcpy(e->line, tmp, sizeof(e->line));
	pthread_mutex_unlock(&ev->mu);
}

size_t ui_events_copy(struct ui_events *ev, uint64_t after, struct ui_event *out, size_t max)
{
	size_t n = 0;
	uint64_t first;

	pthread_mutex_lock(&ev->mu);
	first = ev->seq >= UI_EVENTS ? ev->seq - UI_EVENTS + 1 : 1;
	if (after + 1 > first)
		first = after + 1;
	if (max && ev->seq >= first && ev->seq - first + 1 > max)
		first = ev->seq - max + 1; /* the newest max events */
	for (uint64_t s = first; s <= ev->seq && n < max; s++)
		out[n++] = ev->v[s % UI_EVENTS];
	pthread_mutex_unlock(&ev->mu);
	return n;
}
