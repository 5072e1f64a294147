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
#include "core/buf.h"
#include "core/diag.h"
#include "core/err.h"
#include "core/hash.h"
#include "gwapi/objset.h"
#include "kube/internal.h"
#include "kube/kube.h"

#define LOCAL_MAX_FILE (64u << 20)
#define LOCAL_EPOCH 946684800 /* 2000-01-01T00:00:00Z */

struct lload {
	struct gw_objset *set;
	struct diag *d;
	const char *file;
	uint32_t seq;       /* documents seen, for creationTimestamp */
	struct kmap nsused; /* namespaces used by objects */
	struct kmap origin; /* "kind/ns/name" -> file:line (malloc'd) */
	int errors;
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
		enc = kb64_encode(s, yyjson_mut_get_len(v));
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

static bool add_object(struct lload *l, enum gw_kind k, yyjson_mut_doc *m, uint32_t line,
		       const char *object)
{
	char msg[256], *json, *key;
	size_t len;
	struct gw_object *o;
	const struct gw_object *old;
	char where[300];

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
	old = gw_objset_get(l->set, k, o->ns, o->name);
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
	gw_objset_put(l->set, o);
	return true;
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

static int load_file(struct lload *l, const char *path)
{
	struct arena *a;
	struct ynode **docs;
	size_t n, ndocs;
	char *text;
	int rc;

	l->file = path;
	rc = kfile_read(path, LOCAL_MAX_FILE, &text, &n);
	if (rc) {
		diag_add(l->d, DIAG_ERROR, path, NULL, NULL, "cannot read: %s", err_str(rc));
		l->errors++;
		return rc;
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
	struct lload l = {.set = set, .d = d};
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
			kmap_fini(&l.nsused);
			kmap_each(&l.origin, free_origin, NULL);
			kmap_fini(&l.origin);
			return rc;
		}
	}
	kmap_each(&l.nsused, add_implied, &ic);
	kmap_fini(&l.nsused);
	kmap_each(&l.origin, free_origin, NULL);
	kmap_fini(&l.origin);
	return l.errors ? -WG_EINVAL_CONFIG : 0;
}
