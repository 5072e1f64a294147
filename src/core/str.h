/* SPDX-License-Identifier: MIT */
/*
 * str.h: string views (pointer + length, not NUL-terminated) and small
 * string helpers used across modules. A view borrows its bytes: it is valid
 * as long as what it points into.
 */
#ifndef WG_CORE_STR_H
#define WG_CORE_STR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct str {
	const char *p;
	size_t len;
};

#define STR_LIT(s) ((struct str){(s), sizeof(s) - 1})
static inline struct str str_c(const char *s) { return (struct str){s, s ? strlen(s) : 0}; }
static inline bool str_eq(struct str a, struct str b)
{
	return a.len == b.len && (a.len == 0 || memcmp(a.p, b.p, a.len) == 0);
}
static inline bool str_eq_c(struct str a, const char *b) { return str_eq(a, str_c(b)); }
bool str_case_eq(struct str a, struct str b);
bool str_case_eq_c(struct str a, const char *b);
bool str_has_prefix(struct str s, struct str prefix);
/* Parses a decimal unsigned integer that must fill the whole view and fit
 * in max; returns 0 or -EINVAL / -ERANGE. */
int str_to_u64(struct str s, uint64_t max, uint64_t *out);
static inline char ascii_lower(char c) { return (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c; }
/* NUL-terminated strings alike: the same text, or both NULL. */
static inline bool cstr_eq(const char *a, const char *b)
{
	return a == b || (a && b && !strcmp(a, b));
}
/* Copies at most size-1 bytes and NUL-terminates; returns strlen(src). */
size_t str_lcpy(char *dst, const char *src, size_t size);

#endif
