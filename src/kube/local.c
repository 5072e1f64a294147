// SPDX-License-Identifier: MIT
/*
 * local.c: local mode's object source. Reads a YAML file, or every *.yaml
 * and *.yml file of a folder (sorted by name, not recursive), each possibly
 * holding several documents (and v1 `List`s), and puts the objects into the
 * set as an API server would have stored them: namespaced objects without a
 * namespace go to "default"; metadata.generation, uid, resourceVersion and
 * creationTimestamp are filled in when absent, deterministically (the
 * timestamps follow the order of files and documents, so route precedence
 * by age is stable across reloads); Secret stringData is folded into data;
 * Namespaces get their kubernetes.io/metadata.name label, and every
 * namespace used but not declared is implied, so allowedRoutes selectors
 * behave as in a cluster. Errors name the file, the line and the key.
 * Not here: watching files (SIGHUP handling is the caller's). Runs on the
 * control thread or in `waygate check`.
 */
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <yyjson.h>

#include "core/arena.h"
#include "core/base64.h"
#include "core/buf.h"
#include "core/diag.h"
#include "core/err.h"
#include "core/hash.h"
#include "gwapi/objset.h"
#include "kube/internal.h"
#include "kube/kube.h"

#define LOCAL_MAX_FILE (64u << 20)
#define LOCAL_EPOCH 946684800 /* 2000-01-01T00:00:00Z */

/*
 * The document cache: what each YAML document of the last load became, by
 * the document's text, its file and its position (the count of documents
 * before it, which sets creationTimestamp). A reload takes the objects of
 * unchanged documents from here instead of parsing them again, so a
 * change to one route of 10,000 parses one document. Documents that gave
 * any diagnostic are not kept (their messages must be given again).
 */
struct cached_doc {
	struct cached_doc *next; /* bucket chain */
	uint64_t key;
	uint32_t seq_used;         /* documents counted (List items count each) */
	size_t n;                  /* objects it gave */
	struct gw_object **objs;   /* references held */
	uint32_t *line_off;        /* each object's line, from the document's first */
};

struct doc_table {
	struct cached_doc **b;
	size_t cap, n; /* cap: power of two, or 0 */
};

struct kube_local_cache {
	struct doc_table docs;
};

struct lload {
	struct gw_objset *set;
	struct diag *d;
	const char *file;
	uint32_t seq;       /* documents seen, for creationTimestamp */
	struct kmap nsused; /* namespaces used by objects */
	struct kmap origin; /* "kind/ns/name" -> file:line (malloc'd) */
	int errors;
	/* With a cache: documents of this load (the next cache), and the
	 * objects the document being parsed has given so far. */
	struct kube_local_cache *cache;
	struct doc_table next;
	bool capture;
	struct gw_object **got;
	uint32_t *got_line;
	size_t n_got, cap_got;
	size_t docno; /* documents of the current file */
};

static void lerr(struct lload *l, const char *object, const char *field, uint32_t line,
		 const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void lerr(struct lload *l, const char *object, const char *field, uint32_t line,
		 const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	diag_add(l->d, DIAG_ERROR, l->file, object, field, "line %u: %s", line, msg);
	l->errors++;
}

static void fmt_uid(char out[37], const char *kind, const char *ns, const char *name)
{
	char key[512];
	uint64_t a, b;

	snprintf(key, sizeof(key), "%s/%s/%s", kind, ns, name);
	a = hash_bytes(key, strlen(key));
	b = hash_mix(a, 0x6c6f63616cULL);
	snprintf(out, 37, "%08x-%04x-4%03x-8%03x-%012llx", (unsigned)(a >> 32),
		 (unsigned)(a >> 16) & 0xffff, (unsigned)a & 0xfff, (unsigned)(b >> 52) & 0xfff,
		 (unsigned long long)(b & 0xffffffffffffULL));
}

static void fmt_time(char out[32], uint32_t seq)
{
	time_t t = (time_t)LOCAL_EPOCH + seq;
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* Folds Secret stringData into data (base64), as the API server does. */
static int fold_string_data(yyjson_mut_doc *m, yyjson_mut_val *root)
{
	yyjson_mut_val *sd = yyjson_mut_obj_get(root, "stringData"), *data, *k, *v;
	yyjson_mut_obj_iter it;

	if (!sd)
		return 0;
	if (!yyjson_mut_is_obj(sd))
		return -EINVAL;
	data = yyjson_mut_obj_get(root, "data");
	if (!data || !yyjson_mut_is_obj(data)) {
		yyjson_mut_obj_remove_key(root, "data");
		data = yyjson_mut_obj(m);
		yyjson_mut_obj_add_val(m, root, "data", data);
	}
	yyjson_mut_obj_iter_init(sd, &it);
	while ((k = yyjson_mut_obj_iter_next(&it))) {
		const char *s;
		char *enc;

		v = yyjson_mut_obj_iter_get_val(k);
		s = yyjson_mut_get_str(v);
		if (!s)
			return -EINVAL;
		enc = base64_encode_dup(s, yyjson_mut_get_len(v));
		if (!enc)
			return -ENOMEM;
		yyjson_mut_obj_remove_key(data, yyjson_mut_get_str(k));
		yyjson_mut_obj_add(data, yyjson_mut_strcpy(m, yyjson_mut_get_str(k)),
				   yyjson_mut_strcpy(m, enc));
		free(enc);
	}
	yyjson_mut_obj_remove_key(root, "stringData");
	return 0;
}

static void put_str_if_absent(yyjson_mut_doc *m, yyjson_mut_val *obj, const char *key,
			      const char *val)
{
	yyjson_mut_val *v = yyjson_mut_obj_get(obj, key);

	if (v && !yyjson_mut_is_null(v))
		return;
	yyjson_mut_obj_remove_key(obj, key);
	yyjson_mut_obj_add(obj, yyjson_mut_strcpy(m, key), yyjson_mut_strcpy(m, val));
}

/* Puts o (one reference, taken over) into the set unless an object of
 * the same kind, namespace and name came first (an error naming both). */
static bool admit(struct lload *l, enum gw_kind k, struct gw_object *o, uint32_t line,
		  const char *object)
{
	char *key, where[300];
	const struct gw_object *old = gw_objset_get(l->set, k, o->ns, o->name);

	if (old) {
		if (asprintf(&key, "%d/%s/%s", (int)k, o->ns, o->name) == -1)
			key = NULL;
		const char *first = key ? kmap_get(&l->origin, key) : NULL;

		lerr(l, object, "metadata.name", line, "%s is defined twice (first in %s)", object,
		     first       ? first
		     : old->file ? old->file
				 : "another document");
		free(key);
		gw_object_unref(o);
		return false;
	}
	if (asprintf(&key, "%d/%s/%s", (int)k, o->ns, o->name) != -1) {
		char *w;
		void *prev = NULL;

		snprintf(where, sizeof(where), "%s line %u", l->file, line);
		w = strdup(where);
		if (w && kmap_put(&l->origin, key, w, &prev) == 0)
			free(prev);
		else
			free(w);
		free(key);
	}
	if (gw_kind_info(k)->namespaced && !kmap_get(&l->nsused, o->ns))
		kmap_put(&l->nsused, o->ns, (void *)1, NULL);
	if (l->capture) {
		if (l->n_got == l->cap_got) {
			size_t cap = l->cap_got ? l->cap_got * 2 : 8;
			struct gw_object **g = realloc(l->got, cap * sizeof(*g));
			uint32_t *gl = g ? realloc(l->got_line, cap * sizeof(*gl)) : NULL;
			if (g)
				l->got = g;
			if (gl)
				l->got_line = gl;
			if (g && gl)
				l->cap_got = cap;
			else
				l->capture = false; /* not kept; still loaded */
		}
		if (l->capture) {
			gw_object_ref(o);
			l->got_line[l->n_got] = line;
			l->got[l->n_got++] = o;
		}
	}
	gw_objset_put(l->set, o);
	return true;
}

static bool add_object(struct lload *l, enum gw_kind k, yyjson_mut_doc *m, uint32_t line,
		       const char *object)
{
	char msg[256], *json;
	size_t len;
	struct gw_object *o;

	json = yyjson_mut_write(m, 0, &len);
	if (!json)
		return false;
	o = gw_object_parse((int)k, json, len, msg, sizeof(msg));
	free(json);
	if (!o) {
		lerr(l, object, NULL, line, "%s", msg);
		return false;
	}
	o->source = "file";
	o->file = strdup(l->file);
	return admit(l, k, o, line, object);
}

static void load_doc(struct lload *l, const struct ynode *doc, size_t docno);

static void load_json_doc(struct lload *l, const struct ynode *doc, size_t docno)
{
	const struct ynode *md = kyaml_get(doc, "metadata"), *nn;
	const char *api = kyaml_str(kyaml_get(doc, "apiVersion"));
	const char *kind = kyaml_str(kyaml_get(doc, "kind"));
	const char *name, *ns;
	char group[128] = "", object[400], errmsg[160], uid[37], ts[32];
	struct buf b = {0};
	yyjson_doc *jd = NULL;
	yyjson_mut_doc *m = NULL;
	yyjson_mut_val *root, *mmd, *nsv;
	uint32_t eline;
	const char *slash;
	int k, rc;

	l->seq++;
	if (!api || !*api) {
		snprintf(object, sizeof(object), "document %zu", docno + 1);
		lerr(l, object, "apiVersion", doc->line, "is required");
		return;
	}
	if (!kind || !*kind) {
		snprintf(object, sizeof(object), "document %zu", docno + 1);
		lerr(l, object, "kind",
		     kyaml_key(doc, "apiVersion") ? kyaml_key(doc, "apiVersion")->line : doc->line,
		     "is required");
		return;
	}
	slash = strchr(api, '/');
	if (slash && (size_t)(slash - api) < sizeof(group))
		memcpy(group, api, (size_t)(slash - api));
	k = gw_kind_from_name(group, kind);
	if (k < 0) {
		snprintf(object, sizeof(object), "%s", kind);
		diag_add(l->d, DIAG_WARN, l->file, object, "kind",
			 "line %u: %s %s is not used by waygate; skipped",
			 kyaml_get(doc, "kind")->line, api, kind);
		return;
	}
	nn = kyaml_get(md, "name");
	name = kyaml_str(nn);
	if (!md || md->type != YN_MAP || !name || !*name) {
		snprintf(object, sizeof(object), "%s (document %zu)", kind, docno + 1);
		const struct ynode *mk = kyaml_key(doc, "metadata");

		lerr(l, object, "metadata.name",
		     nn   ? nn->line
		     : mk ? mk->line
			  : doc->line,
		     "is required");
		return;
	}
	ns = kyaml_str(kyaml_get(md, "namespace"));
	if (!gw_kind_info((enum gw_kind)k)->namespaced)
		ns = "";
	else if (!ns || !*ns)
		ns = "default";
	if (*ns)
		snprintf(object, sizeof(object), "%s %s/%s", kind, ns, name);
	else
		snprintf(object, sizeof(object), "%s %s", kind, name);
	rc = kyaml_to_json(doc, &b, errmsg, sizeof(errmsg), &eline);
	if (rc) {
		lerr(l, object, NULL, eline, "%s", errmsg);
		goto out;
	}
	jd = yyjson_read(buf_rptr(&b), buf_len(&b), 0);
	m = jd ? yyjson_doc_mut_copy(jd, NULL) : NULL;
	if (!m) {
		lerr(l, object, NULL, doc->line, "out of memory");
		goto out;
	}
	root = yyjson_mut_doc_get_root(m);
	mmd = yyjson_mut_obj_get(root, "metadata");
	nsv = yyjson_mut_obj_get(mmd, "namespace");
	if (gw_kind_info((enum gw_kind)k)->namespaced) {
		if (nsv && !yyjson_mut_is_str(nsv) && !yyjson_mut_is_null(nsv)) {
			lerr(l, object, "metadata.namespace", kyaml_get(md, "namespace")->line,
			     "must be a string");
			goto out;
		}
		put_str_if_absent(m, mmd, "namespace", ns);
	} else if (nsv) {
		yyjson_mut_obj_remove_key(mmd, "namespace");
	}
	if (!yyjson_mut_obj_get(mmd, "generation")) {
		yyjson_mut_obj_add_int(m, mmd, "generation", 1);
	} else if (!yyjson_mut_is_int(yyjson_mut_obj_get(mmd, "generation"))) {
		lerr(l, object, "metadata.generation", kyaml_get(md, "generation")->line,
		     "must be an integer");
		goto out;
	}
	fmt_uid(uid, kind, ns, name);
	fmt_time(ts, l->seq);
	put_str_if_absent(m, mmd, "uid", uid);
	put_str_if_absent(m, mmd, "resourceVersion", "1");
	put_str_if_absent(m, mmd, "creationTimestamp", ts);
	if (k == GW_K_SECRET) {
		rc = fold_string_data(m, root);
		if (rc) {
			const struct ynode *sd = kyaml_get(doc, "stringData");

			lerr(l, object, "stringData", sd ? sd->line : doc->line,
			     "must map keys to strings");
			goto out;
		}
		put_str_if_absent(m, root, "type", "Opaque");
	}
	if (k == GW_K_NAMESPACE) {
		yyjson_mut_val *labels = yyjson_mut_obj_get(mmd, "labels");

		if (!labels || !yyjson_mut_is_obj(labels)) {
			yyjson_mut_obj_remove_key(mmd, "labels");
			labels = yyjson_mut_obj(m);
			yyjson_mut_obj_add_val(m, mmd, "labels", labels);
		}
		put_str_if_absent(m, labels, "kubernetes.io/metadata.name", name);
	}
	add_object(l, (enum gw_kind)k, m, doc->line, object);
out:
	yyjson_mut_doc_free(m);
	yyjson_doc_free(jd);
	buf_release(&b);
}

static void load_doc(struct lload *l, const struct ynode *doc, size_t docno)
{
	const char *kind;

	if (doc->type != YN_MAP) {
		char object[64];

		if (kyaml_is_null(doc))
			return;
		snprintf(object, sizeof(object), "document %zu", docno + 1);
		lerr(l, object, NULL, doc->line, "a manifest is a mapping (apiVersion, kind, ...)");
		return;
	}
	kind = kyaml_str(kyaml_get(doc, "kind"));
	if (kind && !strcmp(kind, "List")) {
		const struct ynode *items = kyaml_get(doc, "items");

		if (items && items->type == YN_SEQ)
			for (size_t i = 0; i < items->n; i++)
				load_doc(l, items->v[i], docno);
		else if (items && !kyaml_is_null(items))
			lerr(l, "List", "items", items->line, "must be a list");
		return;
	}
	load_json_doc(l, doc, docno);
}

/* -------- the document cache -------- */

static void doc_free(struct cached_doc *e)
{
	for (size_t i = 0; i < e->n; i++)
		gw_object_unref(e->objs[i]);
	free(e->objs);
	free(e->line_off);
	free(e);
}

static void table_fini(struct doc_table *t)
{
	for (size_t i = 0; i < t->cap; i++) {
		struct cached_doc *e = t->b[i], *next;
		for (; e; e = next) {
			next = e->next;
			doc_free(e);
		}
	}
	free(t->b);
	*t = (struct doc_table){0};
}

/* Takes the entry of key out of t, or NULL. */
static struct cached_doc *table_take(struct doc_table *t, uint64_t key)
{
	if (!t->cap)
		return NULL;
	for (struct cached_doc **pp = &t->b[key & (t->cap - 1)]; *pp; pp = &(*pp)->next) {
		if ((*pp)->key == key) {
			struct cached_doc *e = *pp;
			*pp = e->next;
			e->next = NULL;
			t->n--;
			return e;
		}
	}
	return NULL;
}

/* Adds e to t (which owns it afterwards); frees e when t cannot grow. */
static void table_add(struct doc_table *t, struct cached_doc *e)
{
	if (t->n + 1 > t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 256;
		struct cached_doc **b = calloc(cap, sizeof(*b));
		if (!b) {
			doc_free(e);
			return;
		}
		for (size_t i = 0; i < t->cap; i++) {
			for (struct cached_doc *x = t->b[i], *next; x; x = next) {
				next = x->next;
				x->next = b[x->key & (cap - 1)];
				b[x->key & (cap - 1)] = x;
			}
		}
		free(t->b);
		t->b = b;
		t->cap = cap;
	}
	e->next = t->b[e->key & (t->cap - 1)];
	t->b[e->key & (t->cap - 1)] = e;
	t->n++;
}

struct kube_local_cache *kube_local_cache_new(void)
{
	return calloc(1, sizeof(struct kube_local_cache));
}

void kube_local_cache_free(struct kube_local_cache *c)
{
	if (!c)
		return;
	table_fini(&c->docs);
	free(c);
}

static uint64_t doc_key(const struct lload *l, const char *text, size_t len)
{
	uint64_t h = hash_wide(text, len);

	h = hash_mix(h, hash_bytes(l->file, strlen(l->file)));
	return hash_mix(h, ((uint64_t)l->seq << 32) | (uint64_t)l->docno);
}

/* Serves one document from the cache: true when it was there. */
static bool load_cached(struct lload *l, uint64_t key, uint32_t line0)
{
	struct cached_doc *e = table_take(&l->cache->docs, key);
	char object[400];

	if (!e)
		return false;
	for (size_t i = 0; i < e->n; i++) {
		struct gw_object *o = e->objs[i];
		const char *kind = gw_kind_info(o->kind)->kind;

		if (*o->ns)
			snprintf(object, sizeof(object), "%s %s/%s", kind, o->ns, o->name);
		else
			snprintf(object, sizeof(object), "%s %s", kind, o->name);
		gw_object_ref(o);
		admit(l, o->kind, o, line0 + e->line_off[i], object);
	}
	l->seq += e->seq_used;
	l->docno++;
	table_add(&l->next, e);
	return true;
}

/* Parses one document (text starting after line line0) and keeps what it
 * gave in the next cache when it gave no diagnostic. */
static void load_parsed(struct lload *l, uint64_t key, const char *text, size_t len,
			uint32_t line0)
{
	struct arena *a = arena_new(16384);
	struct ynode **docs;
	size_t ndocs, diags = l->d->n;
	uint32_t seq0 = l->seq;

	if (!a) {
		l->errors++;
		return;
	}
	l->capture = true;
	l->n_got = 0;
	if (kyaml_load_at(a, text, len, l->file, line0, &docs, &ndocs, l->d)) {
		l->errors++;
	} else {
		for (size_t i = 0; i < ndocs; i++)
			load_doc(l, docs[i], l->docno + i);
	}
	l->docno++;
	struct cached_doc *e = l->capture && l->d->n == diags ? calloc(1, sizeof(*e)) : NULL;
	if (e && l->n_got) {
		e->objs = malloc(l->n_got * sizeof(*e->objs));
		e->line_off = malloc(l->n_got * sizeof(*e->line_off));
		if (!e->objs || !e->line_off) {
			free(e->objs);
			free(e->line_off);
			free(e);
			e = NULL;
		}
	}
	if (e) {
		e->key = key;
		e->seq_used = l->seq - seq0;
		e->n = l->n_got;
		for (size_t i = 0; i < l->n_got; i++) {
			e->objs[i] = l->got[i];
			e->line_off[i] = l->got_line[i] - line0;
		}
		table_add(&l->next, e);
	} else {
		for (size_t i = 0; i < l->n_got; i++)
			gw_object_unref(l->got[i]);
	}
	l->n_got = 0;
	l->capture = false;
	arena_free(a);
}

/* A line that starts a document ("---") or ends one ("..."). */
static bool is_doc_marker(const char *p, const char *end)
{
	if (end - p < 3 || !((p[0] == '-' && p[1] == '-' && p[2] == '-') ||
			     (p[0] == '.' && p[1] == '.' && p[2] == '.')))
		return false;
	return end - p == 3 || p[3] == ' ' || p[3] == '\t' || p[3] == '\n' || p[3] == '\r';
}

/*
 * Loads text document by document: YAML forbids "---" and "..." at the
 * start of a line inside a document, so the text splits there without
 * parsing. Files with directives ("%YAML") are parsed whole.
 */
static void load_documents(struct lload *l, const char *text, size_t n)
{
	const char *p = text, *end = text + n, *start = text;
	uint32_t line = 0, line0 = 0;

	for (const char *q = text; q < end; q = memchr(q, '\n', (size_t)(end - q)), q = q ? q + 1 : end)
		if (*q == '%') {
			struct arena *a = arena_new(65536);
			struct ynode **docs;
			size_t ndocs;

			if (!a || kyaml_load(a, text, n, l->file, &docs, &ndocs, l->d)) {
				l->errors++;
			} else {
				for (size_t i = 0; i < ndocs; i++)
					load_doc(l, docs[i], i);
			}
			arena_free(a);
			return;
		}
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *next = nl ? nl + 1 : end;

		line++;
		if (is_doc_marker(p, end)) {
			/* "---" opens the next document; "..." closes this one. */
			const char *cut = *p == '.' ? next : p;
			if (cut != start) {
				uint64_t key = doc_key(l, start, (size_t)(cut - start));
				if (!load_cached(l, key, line0))
					load_parsed(l, key, start, (size_t)(cut - start), line0);
				start = cut;
				line0 = *p == '.' ? line : line - 1;
			}
		}
		p = next;
	}
	if (start < end) {
		uint64_t key = doc_key(l, start, (size_t)(end - start));
		if (!load_cached(l, key, line0))
			load_parsed(l, key, start, (size_t)(end - start), line0);
	}
}

static int load_file(struct lload *l, const char *path)
{
	struct arena *a;
	struct ynode **docs;
	size_t n, ndocs;
	char *text;
	int rc;

	l->file = path;
	l->docno = 0;
	rc = kfile_read(path, LOCAL_MAX_FILE, &text, &n);
	if (rc) {
		diag_add(l->d, DIAG_ERROR, path, NULL, NULL, "cannot read: %s", err_str(rc));
		l->errors++;
		return rc;
	}
	if (l->cache) {
		load_documents(l, text, n);
		free(text);
		return 0;
	}
	a = arena_new(65536);
	if (!a) {
		free(text);
		return -ENOMEM;
	}
	rc = kyaml_load(a, text, n, path, &docs, &ndocs, l->d);
	if (rc) {
		l->errors++;
	} else {
		for (size_t i = 0; i < ndocs; i++)
			load_doc(l, docs[i], i);
	}
	arena_free(a);
	free(text);
	return 0;
}

static bool has_yaml_ext(const char *n)
{
	size_t l = strlen(n);

	return n[0] != '.' &&
	       ((l > 5 && !strcmp(n + l - 5, ".yaml")) || (l > 4 && !strcmp(n + l - 4, ".yml")));
}

struct implied_ctx {
	struct lload *l;
};

static bool add_implied(void *arg, const char *ns, void *val)
{
	struct lload *l = ((struct implied_ctx *)arg)->l;
	char *json, uid[37], ts[32];
	struct gw_object *o;

	(void)val;
	if (gw_objset_get(l->set, GW_K_NAMESPACE, "", ns))
		return false;
	fmt_uid(uid, "Namespace", "", ns);
	fmt_time(ts, 0);
	if (asprintf(&json,
		     "{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":{\"name\":\"%s\","
		     "\"uid\":\"%s\",\"resourceVersion\":\"1\",\"generation\":1,"
		     "\"creationTimestamp\":\"%s\",\"labels\":{\"kubernetes.io/"
		     "metadata.name\":\"%s\"},"
		     "\"annotations\":{\"waygate.dev/implied\":\"true\"}}}",
		     ns, uid, ts, ns) == -1)
		return false;
	o = gw_object_parse(GW_K_NAMESPACE, json, strlen(json), NULL, 0);
	free(json);
	if (o) {
		o->source = "file";
		gw_objset_put(l->set, o);
	}
	return false;
}

static bool free_origin(void *arg, const char *key, void *val)
{
	(void)arg;
	(void)key;
	if (val != (void *)1)
		free(val);
	return true;
}

int kube_load_local(const char *path, struct gw_objset *set, struct diag *d)
{
	return kube_load_local_cached(path, set, d, NULL);
}

/* The documents of this load become the cache; the ones not seen again
 * are dropped with their objects. */
static void cache_swap(struct lload *l)
{
	if (!l->cache)
		return;
	table_fini(&l->cache->docs);
	l->cache->docs = l->next;
	l->next = (struct doc_table){0};
	free(l->got);
	free(l->got_line);
}

int kube_load_local_cached(const char *path, struct gw_objset *set, struct diag *d,
			   struct kube_local_cache *cache)
{
	struct lload l = {.set = set, .d = d, .cache = cache};
	struct implied_ctx ic = {&l};
	struct stat st;
	int rc = 0;

	if (stat(path, &st) == -1) {
		rc = -errno;
		diag_add(d, DIAG_ERROR, path, NULL, NULL, "cannot read: %s", err_str(rc));
		return rc;
	}
	if (S_ISDIR(st.st_mode)) {
		struct dirent **ents = NULL;
		int n = scandir(path, &ents, NULL, alphasort);

		if (n < 0) {
			rc = -errno;
			diag_add(d, DIAG_ERROR, path, NULL, NULL, "cannot list the folder: %s",
				 err_str(rc));
			return rc;
		}
		for (int i = 0; i < n; i++) {
			char *fp;
			struct stat fs;

			if (has_yaml_ext(ents[i]->d_name) &&
			    asprintf(&fp, "%s/%s", path, ents[i]->d_name) != -1) {
				if (stat(fp, &fs) == 0 && S_ISREG(fs.st_mode))
					load_file(&l, fp);
				free(fp);
			}
			free(ents[i]);
		}
		free(ents);
	} else {
		rc = load_file(&l, path);
		if (rc && rc != -ENOMEM) {
			cache_swap(&l);
			kmap_fini(&l.nsused);
			kmap_each(&l.origin, free_origin, NULL);
			kmap_fini(&l.origin);
			return rc;
		}
	}
	cache_swap(&l);
	kmap_each(&l.nsused, add_implied, &ic);
	kmap_fini(&l.nsused);
	kmap_each(&l.origin, free_origin, NULL);
	kmap_fini(&l.origin);
	return l.errors ? -WG_EINVAL_CONFIG : 0;
}
