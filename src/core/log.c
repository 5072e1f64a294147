/* SPDX-License-Identifier: MIT */
/*
 * log.c: the event log. Each call formats one complete line and writes it
 * with a single write(2) to stderr, so lines from different threads never
 * interleave. An optional sink (the UI's event ring) sees every line. The
 * level is a relaxed atomic: any thread may log, one thread sets it.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"

static int cur_level = LOG_INFO;
static log_sink_cb sink_cb;
static void *sink_arg;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

void log_set_level(enum log_level level) { __atomic_store_n(&cur_level, (int)level, __ATOMIC_RELAXED); }
enum log_level log_get_level(void) { return (enum log_level)__atomic_load_n(&cur_level, __ATOMIC_RELAXED); }
bool log_enabled(enum log_level level) { return (int)level <= __atomic_load_n(&cur_level, __ATOMIC_RELAXED); }

int log_parse_level(const char *s, enum log_level *out)
{
	for (int i = 0; i <= LOG_DEBUG; i++) {
		if (!strcasecmp(s, level_names[i])) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	if (!strcasecmp(s, "warning")) {
		*out = LOG_WARN;
		return 0;
	}
	return -EINVAL;
}

void log_set_sink(log_sink_cb cb, void *arg)
{
	sink_arg = arg;
	__atomic_store_n(&sink_cb, cb, __ATOMIC_RELEASE);
}

void log_vmsg(enum log_level level, const char *fmt, va_list ap)
{
	char line[4096];
	struct timespec ts;
	struct tm tm;
	size_t n;
	int r;

	if (!log_enabled(level))
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = strftime(line, sizeof(line), "ts=%Y-%m-%dT%H:%M:%S", &tm);
	r = snprintf(line + n, sizeof(line) - n, ".%03ldZ level=%s ", ts.tv_nsec / 1000000,
		     level_names[level]);
	n += (size_t)r;
	r = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
	if (r < 0)
		r = 0;
	n += (size_t)r;
	if (n > sizeof(line) - 2)
		n = sizeof(line) - 2;
	log_sink_cb cb = __atomic_load_n(&sink_cb, __ATOMIC_ACQUIRE);
	if (cb) {
		line[n] = '\0';
		cb(level, line, sink_arg);
	}
	line[n++] = '\n';
	ssize_t w = write(STDERR_FILENO, line, n);
	(void)w;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(level, fmt, ap);
	va_end(ap);
}

const char *log_q(const char *s)
{
	static __thread char bufs[4][512];
	static __thread unsigned next;
	char *out = bufs[next++ & 3];
	size_t o = 0;
	bool plain = s && *s;

	if (!s)
		return "\"\"";
	for (const char *p = s; *p && plain; p++)
		if (*p <= ' ' || *p == '"' || *p == '=' || *p == '\\' || *p == 0x7f)
			plain = false;
	if (plain && strlen(s) < sizeof(bufs[0]))
		return s;
	out[o++] = '"';
	for (const char *p = s; *p && o < sizeof(bufs[0]) - 6; p++) {
		unsigned char c = (unsigned char)*p;
		if (c == '"' || c == '\\') {
			out[o++] = '\\';
			out[o++] = (char)c;
		} else if (c == '\n') {
			out[o++] = '\\';
			out[o++] = 'n';
		} else if (c < 0x20 || c == 0x7f) {
			o += (size_t)snprintf(out + o, 5, "\\x%02x", c);
		} else {
			out[o++] = (char)c;
		}
	}
	out[o++] = '"';
	out[o] = '\0';
	return out;
}
