/* SPDX-License-Identifier: MIT */
/*
 * log.h: one line per event on stderr, key=value pairs:
 *   ts=2026-11-26T05:03:15.123Z level=info event=listen addr=0.0.0.0:8080
 * The caller's format starts with "event=NAME" and continues with key=value
 * pairs. Values with spaces or quotes must go through log_q() which quotes
 * and escapes them. Thread-safe (one write(2) per line). Secrets never reach
 * this function: callers log names, not contents.
 */
#ifndef WG_CORE_LOG_H
#define WG_CORE_LOG_H

#include <stdarg.h>
#include <stdbool.h>

enum log_level { LOG_ERROR = 0, LOG_WARN, LOG_INFO, LOG_DEBUG };

void log_set_level(enum log_level level);
enum log_level log_get_level(void);
/* Parses "error"/"warn"/"info"/"debug"; returns 0 or -EINVAL. */
int log_parse_level(const char *s, enum log_level *out);
bool log_enabled(enum log_level level);

void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void log_vmsg(enum log_level level, const char *fmt, va_list ap);

/* Optional hook that also receives every line (without the trailing newline):
 * the UI's recent-events view uses it. Called with no lock held, from any
 * thread; must be fast and thread-safe. */
typedef void (*log_sink_cb)(enum log_level level, const char *line, void *arg);
void log_set_sink(log_sink_cb cb, void *arg);

/* Quotes a value for a log line into one of a few rotating thread-local
 * buffers: "a b" -> "\"a b\"". Plain tokens come back unquoted. Long values
 * are truncated. The result is valid until the fourth next call in the
 * same thread. */
const char *log_q(const char *s);

#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...)                                                                     \
	do {                                                                               \
		if (log_enabled(LOG_DEBUG))                                                \
			log_msg(LOG_DEBUG, __VA_ARGS__);                                   \
	} while (0)

#endif
