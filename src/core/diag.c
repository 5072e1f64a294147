/* SPDX-License-Identifier: MIT */
/*
 * diag.c: collects human-facing problems (see diag.h). Owned by one thread
 * at a time; never prints.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/diag.h"

static char *dup_or_null(const char *s) { return s ? strdup(s) : NULL; }

void diag_add(struct diag *d, enum diag_sev sev, const char *file, const char *object,
	      const char *field, const char *fmt, ...)
{
	struct diag_entry *e;
	char msg[1024];
	va_list ap;

	if (sev == DIAG_ERROR)
		d->errors++;
	else if (sev == DIAG_WARN)
		d->warnings++;
	if (d->n == d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 8;
		struct diag_entry *v = realloc(d->v, cap * sizeof(*v));
		if (!v)
			return;
		d->v = v;
		d->cap = cap;
	}
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	e = &d->v[d->n];
	e->sev = sev;
	e->file = dup_or_null(file);
	e->object = dup_or_null(object);
	e->field = dup_or_null(field);
	e->msg = strdup(msg);
	if (!e->msg) {
		free(e->file);
		free(e->object);
		free(e->field);
		return;
	}
	d->n++;
}

char *diag_format(const struct diag_entry *e, char *buf, size_t size)
{
	size_t o = 0;
	const char *parts[3] = {e->file, e->object, e->field};

	buf[0] = '\0';
	for (int i = 0; i < 3; i++) {
		if (!parts[i] || !*parts[i])
			continue;
		int r = snprintf(buf + o, size - o, "%s: ", parts[i]);
		if (r < 0 || (size_t)r >= size - o)
			return buf;
		o += (size_t)r;
	}
	snprintf(buf + o, size - o, "%s", e->msg);
	return buf;
}

static void entry_free(struct diag_entry *e)
{
	free(e->file);
	free(e->object);
	free(e->field);
	free(e->msg);
}

void diag_fini(struct diag *d)
{
	for (size_t i = 0; i < d->n; i++)
		entry_free(&d->v[i]);
	free(d->v);
	memset(d, 0, sizeof(*d));
}

void diag_drop_object(struct diag *d, const char *object)
{
	size_t k = 0;

	for (size_t i = 0; i < d->n; i++) {
		struct diag_entry *e = &d->v[i];
		if (!e->object || strcmp(e->object, object) != 0) {
			d->v[k++] = *e;
			continue;
		}
		if (e->sev == DIAG_ERROR)
			d->errors--;
		else if (e->sev == DIAG_WARN)
			d->warnings--;
		entry_free(e);
	}
	d->n = k;
}

void diag_append(struct diag *d, const struct diag *from)
{
	for (size_t i = 0; i < from->n; i++) {
		const struct diag_entry *e = &from->v[i];
		diag_add(d, e->sev, e->file, e->object, e->field, "%s", e->msg);
	}
}
