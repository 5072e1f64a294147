/* SPDX-License-Identifier: MIT */
/*
 * diag.h: diagnostics a person reads (configuration errors, reconcile
 * problems, `waygate check`). The code that finds a problem adds an entry
 * naming the file, the object and the field; the code that owns the output
 * decides where it goes (stderr, status condition, UI). Deep code never
 * prints. All-zero is an empty, valid diag.
 */
#ifndef WG_CORE_DIAG_H
#define WG_CORE_DIAG_H

#include <stddef.h>

enum diag_sev { DIAG_ERROR = 0, DIAG_WARN, DIAG_INFO };

struct diag_entry {
	enum diag_sev sev;
	char *file;   /* may be NULL */
	char *object; /* "Kind ns/name" or a kubeconfig context, may be NULL */
	char *field;  /* "spec.listeners[0].port", a YAML key, may be NULL */
	char *msg;
};

struct diag {
	struct diag_entry *v;
	size_t n, cap;
	size_t errors, warnings;
};

/* Adds an entry; strings are copied. Allocation failure drops the entry but
 * still counts it. */
void diag_add(struct diag *d, enum diag_sev sev, const char *file, const char *object,
	      const char *field, const char *fmt, ...) __attribute__((format(printf, 6, 7)));
/* Formats entry i as "file: object: field: msg" (parts that are NULL are
 * left out) into buf; returns buf. */
char *diag_format(const struct diag_entry *e, char *buf, size_t size);
void diag_fini(struct diag *d);
/* Removes the entries about object (as diag_add named it). */
void diag_drop_object(struct diag *d, const char *object);
/* Appends copies of from's entries to d (a failed copy drops the entry but
 * still counts it, as diag_add does). */
void diag_append(struct diag *d, const struct diag *from);

#endif
