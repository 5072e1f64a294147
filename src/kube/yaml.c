// SPDX-License-Identifier: MIT
/*
 * yaml.c: YAML text to a small node tree (libyaml's parser events, arena
 * allocation, line numbers kept for errors) and from the tree to JSON text
 * with the YAML 1.2 core schema, which is what kubeconfigs, local manifests
 * and `waygate convert` read. Also whole-file reading used by the
 * rest of kube/. It does not emit YAML (convert.c writes its own) and keeps
 * nothing between calls. Runs on whichever thread calls it (control thread,
 * or the command line).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <yaml.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/diag.h"
#include "core/err.h"
#include "kube/internal.h"

#define YAML_MAX_DEPTH 256
#define YAML_MAX_JSON_NODES (4u << 20) /* alias expansion bound */

struct anchor {
	const char *name;
	struct ynode *node;
	struct anchor *next;
};

struct frame {
	struct ynode *node;
	struct ynode *key; /* map: key waiting for its value */
};

static int node_push(struct arena *a, struct ynode *parent, struct ynode *key, struct ynode *child)
{
	if (parent->n == parent->cap) {
		size_t cap = parent->cap ? parent->cap * 2 : 4;
		struct ynode **v = arena_alloc(a, cap * sizeof(*v));
		struct ynode **k = NULL;

		if (!v)
			return -ENOMEM;
		if (parent->type == YN_MAP) {
			k = arena_alloc(a, cap * sizeof(*k));
			if (!k)
				return -ENOMEM;
			if (parent->n)
				memcpy(k, parent->k, parent->n * sizeof(*k));
			parent->k = k;
		}
		if (parent->n)
			memcpy(v, parent->v, parent->n * sizeof(*v));
		parent->v = v;
		parent->cap = cap;
	}
	if (parent->type == YN_MAP)
		parent->k[parent->n] = key;
	parent->v[parent->n++] = child;
	return 0;
}

static struct ynode *node_new(struct arena *a, enum ynode_type t, const yaml_event_t *ev,
			      const yaml_char_t *tag, uint32_t line0)
{
	struct ynode *n = arena_zalloc(a, sizeof(*n));

	if (!n)
		return NULL;
	n->type = t;
	n->line = line0 + (uint32_t)ev->start_mark.line + 1;
	n->col = (uint32_t)ev->start_mark.column + 1;
	if (tag) {
		n->tag = arena_strdup(a, (const char *)tag);
		if (!n->tag)
			return NULL;
	}
	return n;
}

static int add_anchor(struct arena *a, struct anchor **list, const yaml_char_t *name,
		      struct ynode *n)
{
	struct anchor *an;

	if (!name)
		return 0;
	an = arena_alloc(a, sizeof(*an));
	if (!an)
		return -ENOMEM;
	an->name = arena_strdup(a, (const char *)name);
	if (!an->name)
		return -ENOMEM;
	an->node = n;
	an->next = *list;
	*list = an;
	return 0;
}

/* Attaches a finished node to the frame on top of the stack, or makes it the
 * document root. */
static int attach(struct arena *a, struct frame *stack, size_t depth, struct ynode *n,
		  struct ynode **root)
{
	struct frame *top;

	if (depth == 0) {
		*root = n;
		return 0;
	}
	top = &stack[depth - 1];
	if (top->node->type == YN_SEQ)
		return node_push(a, top->node, NULL, n);
	if (!top->key) {
		top->key = n;
		return 0;
	}
	{
		struct ynode *k = top->key;

		top->key = NULL;
		return node_push(a, top->node, k, n);
	}
}

int kyaml_load(struct arena *a, const char *text, size_t len, const char *file,
	       struct ynode ***docs, size_t *ndocs, struct diag *d)
{
	return kyaml_load_at(a, text, len, file, 0, docs, ndocs, d);
}

int kyaml_load_at(struct arena *a, const char *text, size_t len, const char *file, uint32_t line0,
		  struct ynode ***docs, size_t *ndocs, struct diag *d)
{
	yaml_parser_t parser;
	yaml_event_t ev;
	struct frame stack[YAML_MAX_DEPTH];
	size_t depth = 0, n = 0, cap = 0;
	struct ynode **out = NULL, *root = NULL;
	struct anchor *anchors = NULL;
	int rc = 0;
	bool done = false;

	*docs = NULL;
	*ndocs = 0;
	if (!yaml_parser_initialize(&parser))
		return -ENOMEM;
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
	while (!done) {
		struct ynode *node = NULL;

		if (!yaml_parser_parse(&parser, &ev)) {
			diag_add(d, DIAG_ERROR, file, NULL, NULL, "line %zu column %zu: %s%s%s",
				 line0 + parser.problem_mark.line + 1, parser.problem_mark.column + 1,
				 parser.problem ? parser.problem : "invalid YAML",
				 parser.context ? " " : "", parser.context ? parser.context : "");
			rc = -WG_EINVAL_CONFIG;
			break;
		}
		switch (ev.type) {
		case YAML_STREAM_END_EVENT: done = true; break;
		case YAML_DOCUMENT_START_EVENT:
			root = NULL;
			anchors = NULL;
			break;
		case YAML_DOCUMENT_END_EVENT:
			if (root) {
				out = arena_grow(a, out, n, &cap, sizeof(*out), 8);
				if (!out) {
					rc = -ENOMEM;
					break;
				}
				out[n++] = root;
			}
			root = NULL;
			break;
		case YAML_ALIAS_EVENT: {
			struct anchor *an;

			for (an = anchors; an; an = an->next)
				if (strcmp(an->name, (const char *)ev.data.alias.anchor) == 0)
					break;
			if (!an) {
				diag_add(d, DIAG_ERROR, file, NULL, NULL,
					 "line %zu column %zu: unknown alias *%s",
					 line0 + ev.start_mark.line + 1, ev.start_mark.column + 1,
					 (const char *)ev.data.alias.anchor);
				rc = -WG_EINVAL_CONFIG;
				break;
			}
			rc = attach(a, stack, depth, an->node, &root);
			break;
		}
		case YAML_SCALAR_EVENT:
			node = node_new(a, YN_SCALAR, &ev, ev.data.scalar.tag, line0);
			if (!node) {
				rc = -ENOMEM;
				break;
			}
			node->s = arena_strndup(a, (const char *)ev.data.scalar.value,
						ev.data.scalar.length);
			if (!node->s) {
				rc = -ENOMEM;
				break;
			}
			node->len = ev.data.scalar.length;
			node->plain = ev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
			rc = add_anchor(a, &anchors, ev.data.scalar.anchor, node);
			if (!rc)
				rc = attach(a, stack, depth, node, &root);
			break;
		case YAML_SEQUENCE_START_EVENT:
		case YAML_MAPPING_START_EVENT: {
			bool seq = ev.type == YAML_SEQUENCE_START_EVENT;

			if (depth == YAML_MAX_DEPTH) {
				diag_add(d, DIAG_ERROR, file, NULL, NULL,
					 "line %zu: nesting deeper than %d levels",
					 line0 + ev.start_mark.line + 1, YAML_MAX_DEPTH);
				rc = -WG_EINVAL_CONFIG;
				break;
			}
			node = node_new(a, seq ? YN_SEQ : YN_MAP, &ev,
					seq ? ev.data.sequence_start.tag
					    : ev.data.mapping_start.tag, line0);
			if (!node) {
				rc = -ENOMEM;
				break;
			}
			rc = add_anchor(a, &anchors,
					seq ? ev.data.sequence_start.anchor
					    : ev.data.mapping_start.anchor,
					node);
			if (rc)
				break;
			stack[depth].node = node;
			stack[depth].key = NULL;
			depth++;
			break;
		}
		case YAML_SEQUENCE_END_EVENT:
		case YAML_MAPPING_END_EVENT:
			depth--;
			rc = attach(a, stack, depth, stack[depth].node, &root);
			break;
		default: break;
		}
		yaml_event_delete(&ev);
		if (rc)
			break;
	}
	yaml_parser_delete(&parser);
	if (rc == -ENOMEM)
		diag_add(d, DIAG_ERROR, file, NULL, NULL, "out of memory");
	if (rc)
		return rc;
	*docs = out;
	*ndocs = n;
	return 0;
}

struct ynode *kyaml_get(const struct ynode *n, const char *key)
{
	if (!n || n->type != YN_MAP)
		return NULL;
	for (size_t i = 0; i < n->n; i++) {
		const struct ynode *k = n->k[i];

		if (k->type == YN_SCALAR && strcmp(k->s, key) == 0)
			return n->v[i];
	}
	return NULL;
}

struct ynode *kyaml_key(const struct ynode *n, const char *key)
{
	if (!n || n->type != YN_MAP)
		return NULL;
	for (size_t i = 0; i < n->n; i++)
		if (n->k[i]->type == YN_SCALAR && strcmp(n->k[i]->s, key) == 0)
			return n->k[i];
	return NULL;
}

static bool is_null_text(const char *s)
{
	return !*s || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") ||
	       !strcmp(s, "NULL");
}

#define TAG_PFX "tag:yaml.org,2002:"

static bool tag_is(const struct ynode *n, const char *t)
{
	return n->tag && !strncmp(n->tag, TAG_PFX, sizeof(TAG_PFX) - 1) &&
	       !strcmp(n->tag + sizeof(TAG_PFX) - 1, t);
}

bool kyaml_is_null(const struct ynode *n)
{
	if (!n)
		return true;
	if (n->type != YN_SCALAR)
		return false;
	if (tag_is(n, "null"))
		return true;
	return n->plain && !n->tag && is_null_text(n->s);
}

const char *kyaml_str(const struct ynode *n)
{
	if (!n || n->type != YN_SCALAR || kyaml_is_null(n))
		return NULL;
	return n->s;
}

int kjson_append_str(struct buf *out, const char *s, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	int rc = buf_reserve(out, len + 2, 0);

	if (rc)
		return rc;
	if ((rc = buf_append(out, "\"", 1)))
		return rc;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		char esc[7];
		size_t el = 0;

		switch (c) {
		case '"':
			memcpy(esc, "\\\"", 2);
			el = 2;
			break;
		case '\\':
			memcpy(esc, "\\\\", 2);
			el = 2;
			break;
		case '\n':
			memcpy(esc, "\\n", 2);
			el = 2;
			break;
		case '\r':
			memcpy(esc, "\\r", 2);
			el = 2;
			break;
		case '\t':
			memcpy(esc, "\\t", 2);
			el = 2;
			break;
		default:
			if (c < 0x20 || c == 0x7f) {
				esc[0] = '\\';
				esc[1] = 'u';
				esc[2] = '0';
				esc[3] = '0';
				esc[4] = hex[c >> 4];
				esc[5] = hex[c & 15];
				el = 6;
			}
		}
		if (el)
			rc = buf_append(out, esc, el);
		else
			rc = buf_append(out, &s[i], 1);
		if (rc)
			return rc;
	}
	return buf_append(out, "\"", 1);
}

static bool all_in(const char *s, const char *set)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!strchr(set, *s))
			return false;
	return true;
}

/* YAML 1.2 core schema integer: [-+]?[0-9]+ | 0o[0-7]+ | 0x[0-9a-fA-F]+.
 * Writes the decimal form into num. */
static bool scalar_int(const char *s, char *num, size_t numsz)
{
	const char *p = s;
	unsigned long long v;
	char *end;

	if (!strncmp(s, "0x", 2) && all_in(s + 2, "0123456789abcdefABCDEF")) {
		errno = 0;
		v = strtoull(s + 2, &end, 16);
		if (errno)
			return false;
		snprintf(num, numsz, "%llu", v);
		return true;
	}
	if (!strncmp(s, "0o", 2) && all_in(s + 2, "01234567")) {
		errno = 0;
		v = strtoull(s + 2, &end, 8);
		if (errno)
			return false;
		snprintf(num, numsz, "%llu", v);
		return true;
	}
	if (*p == '-' || *p == '+')
		p++;
	if (!all_in(p, "0123456789"))
		return false;
	/* JSON has no leading '+' or leading zeros. */
	while (p[0] == '0' && p[1])
		p++;
	snprintf(num, numsz, "%s%s", s[0] == '-' ? "-" : "", p);
	return strlen(p) < numsz - 2;
}

static bool scalar_float(const char *s, char *num, size_t numsz)
{
	const char *p = s;
	bool digits = false;
	size_t o = 0;

	/* The form written is at most two characters longer than s (a '0'
	 * before a leading '.', one after a trailing '.') plus the NUL; a
	 * longer scalar stays a string rather than overrunning num. */
	if (strlen(s) + 3 > numsz)
		return false;
	if (*p == '-' || *p == '+')
		p++;
	if (*p == '.' && !p[1])
		return false;
	if (s[0] == '-')
		num[o++] = '-';
	if (*p == '.')
		num[o++] = '0';
	while (*p >= '0' && *p <= '9' && o < numsz - 2) {
		num[o++] = *p++;
		digits = true;
	}
	if (*p == '.') {
		num[o++] = *p++;
		if (!(*p >= '0' && *p <= '9'))
			num[o++] = '0';
		while (*p >= '0' && *p <= '9' && o < numsz - 2) {
			num[o++] = *p++;
			digits = true;
		}
	}
	if (!digits)
		return false;
	if (*p == 'e' || *p == 'E') {
		num[o++] = *p++;
		if (*p == '-' || *p == '+')
			num[o++] = *p++;
		if (!(*p >= '0' && *p <= '9'))
			return false;
		while (*p >= '0' && *p <= '9' && o < numsz - 1)
			num[o++] = *p++;
	}
	num[o] = 0;
	return *p == 0;
}

static int scalar_json(const struct ynode *n, struct buf *out)
{
	char num[64];
	const char *s = n->s;

	if (n->tag && !tag_is(n, "str") && !tag_is(n, "null") && !tag_is(n, "bool") &&
	    !tag_is(n, "int") && !tag_is(n, "float"))
		return kjson_append_str(out, s, n->len); /* !!binary, custom tags */
	if (tag_is(n, "str") || (!n->plain && !n->tag))
		return kjson_append_str(out, s, n->len);
	if (is_null_text(s) && !tag_is(n, "bool") && !tag_is(n, "int") && !tag_is(n, "float"))
		return buf_append_str(out, "null");
	if (!strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "TRUE"))
		return buf_append_str(out, "true");
	if (!strcmp(s, "false") || !strcmp(s, "False") || !strcmp(s, "FALSE"))
		return buf_append_str(out, "false");
	if (!tag_is(n, "float") && scalar_int(s, num, sizeof(num)))
		return buf_append_str(out, num);
	if (scalar_float(s, num, sizeof(num)))
		return buf_append_str(out, num);
	return kjson_append_str(out, s, n->len);
}

struct jctx {
	struct buf *out;
	size_t nodes;
	char *err;
	size_t errsz;
	uint32_t *errline;
};

static int node_json(struct jctx *c, const struct ynode *n, unsigned depth)
{
	int rc;

	if (++c->nodes > YAML_MAX_JSON_NODES || depth > YAML_MAX_DEPTH) {
		snprintf(c->err, c->errsz, "document expands past %u nodes (aliases?)",
			 YAML_MAX_JSON_NODES);
		*c->errline = n->line;
		return -WG_ELIMIT;
	}
	switch (n->type) {
	case YN_SCALAR: return scalar_json(n, c->out);
	case YN_SEQ:
		if ((rc = buf_append(c->out, "[", 1)))
			return rc;
		for (size_t i = 0; i < n->n; i++) {
			if (i && (rc = buf_append(c->out, ",", 1)))
				return rc;
			if ((rc = node_json(c, n->v[i], depth + 1)))
				return rc;
		}
		return buf_append(c->out, "]", 1);
	case YN_MAP:
		if ((rc = buf_append(c->out, "{", 1)))
			return rc;
		for (size_t i = 0; i < n->n; i++) {
			const struct ynode *k = n->k[i];

			if (k->type != YN_SCALAR) {
				snprintf(c->err, c->errsz, "mapping key is not a scalar");
				*c->errline = k->line;
				return -WG_EINVAL_CONFIG;
			}
			if (i && (rc = buf_append(c->out, ",", 1)))
				return rc;
			if ((rc = kjson_append_str(c->out, k->s, k->len)) ||
			    (rc = buf_append(c->out, ":", 1)) ||
			    (rc = node_json(c, n->v[i], depth + 1)))
				return rc;
		}
		return buf_append(c->out, "}", 1);
	}
	return -EINVAL;
}

int kyaml_to_json(const struct ynode *n, struct buf *out, char *errmsg, size_t errsz,
		  uint32_t *errline)
{
	struct jctx c = {out, 0, errmsg, errsz, errline};

	*errline = 0;
	if (errsz)
		errmsg[0] = 0;
	return node_json(&c, n, 0);
}

int kfile_read(const char *path, size_t max, char **out, size_t *len)
{
	struct stat st;
	char *p = NULL;
	size_t n = 0, cap;
	int fd, rc = 0;

	*out = NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd == -1)
		return -errno;
	if (fstat(fd, &st) == -1) {
		rc = -errno;
		goto out;
	}
	if (S_ISDIR(st.st_mode)) {
		rc = -EISDIR;
		goto out;
	}
	cap = st.st_size > 0 ? (size_t)st.st_size + 1 : 4096;
	if (cap > max + 1)
		cap = max + 1;
	p = malloc(cap);
	if (!p) {
		rc = -ENOMEM;
		goto out;
	}
	for (;;) {
		ssize_t r;

		if (n + 1 >= cap) {
			char *np;

			if (cap > max) {
				rc = -EFBIG;
				goto out;
			}
			cap = cap * 2 > max + 1 ? max + 1 : cap * 2;
			np = realloc(p, cap);
			if (!np) {
				rc = -ENOMEM;
				goto out;
			}
			p = np;
		}
		r = read(fd, p + n, cap - 1 - n);
		if (r == -1) {
			if (errno == EINTR)
				continue;
			rc = -errno;
			goto out;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	if (n > max) {
		rc = -EFBIG;
		goto out;
	}
	p[n] = 0;
	*out = p;
	*len = n;
	p = NULL;
out:
	free(p);
	close(fd);
	return rc;
}
