/* SPDX-License-Identifier: MIT */
/*
 * routes.c: `waygate routes [--state-dir DIR] [--revision N | --list | --diff A,B]`:
 * prints the routing table of the serving revision (or of revision N) from
 * the snapshot JSON kept in the store, one socket, listener and rule per
 * line (hosts, match, backends with weights), without contacting anything.
 * --list prints the stored revisions instead, --diff the objects added,
 * removed and changed from revision A to B. It reads the store through a
 * second connection, so it works while `waygate run` is serving; it never
 * writes. Main thread, before and instead of anything else.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <yyjson.h>

#include "cli/cli.h"
#include "cli/internal.h"
#include "core/arena.h"
#include "core/diag.h"
#include "core/err.h"
#include "core/log.h"
#include "core/str.h"
#include "store/store.h"

static const char *jstr(yyjson_val *o, const char *key, const char *def)
{
	const char *v = yyjson_get_str(yyjson_obj_get(o, key));

	return v ? v : def;
}

static void print_time(FILE *f, uint64_t ms)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	char buf[32];

	gmtime_r(&t, &tm);
	strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
	fputs(buf, f);
}

static void print_list(FILE *f, yyjson_val *arr, const char *sep, const char *empty)
{
	size_t n = 0;
	yyjson_val *v;

	for (yyjson_arr_iter it = yyjson_arr_iter_with(arr); (v = yyjson_arr_iter_next(&it));) {
		if (yyjson_is_str(v))
			fprintf(f, "%s%s", n++ ? sep : "", yyjson_get_str(v));
	}
	if (!n)
		fputs(empty, f);
}

static void print_backends(FILE *f, yyjson_val *arr)
{
	size_t n = 0;
	yyjson_val *b;

	for (yyjson_arr_iter it = yyjson_arr_iter_with(arr); (b = yyjson_arr_iter_next(&it));) {
		yyjson_val *inv = yyjson_obj_get(b, "invalidStatus");
		size_t eps = yyjson_arr_size(yyjson_obj_get(b, "endpoints"));

		fprintf(f, "%s%s w=%" PRIu64, n++ ? ", " : " -> ", jstr(b, "name", "?"),
			yyjson_get_uint(yyjson_obj_get(b, "weight")));
		if (yyjson_is_int(inv) && yyjson_get_int(inv))
			fprintf(f, " (invalid: %d)", yyjson_get_int(inv));
		else
			fprintf(f, " (%zu endpoint%s)", eps, eps == 1 ? "" : "s");
	}
	if (!n)
		fputs(" -> (no backends)", f);
}

static void print_kv(FILE *f, yyjson_val *arr, const char *what)
{
	yyjson_val *m;

	for (yyjson_arr_iter it = yyjson_arr_iter_with(arr); (m = yyjson_arr_iter_next(&it));) {
		bool re = !strcmp(jstr(m, "type", "Exact"), "RegularExpression");

		fprintf(f, " %s:%s%s%s", what, jstr(m, "name", "?"), re ? "~=" : "=",
			jstr(m, "value", ""));
	}
}

static void print_rule(FILE *f, yyjson_val *r)
{
	yyjson_val *m = yyjson_obj_get(r, "match");
	yyjson_val *filters = yyjson_obj_get(r, "filters");
	const char *rule_name = jstr(r, "ruleName", NULL);

	fprintf(f, "    %s", jstr(r, "route", "?"));
	if (rule_name)
		fprintf(f, "#%s", rule_name);
	if (yyjson_get_bool(yyjson_obj_get(r, "grpc")))
		fputs(" grpc", f);
	fputs(" host=", f);
	print_list(f, yyjson_obj_get(r, "hostnames"), ",", "*");
	fprintf(f, " %s %s", jstr(m, "pathType", "PathPrefix"), jstr(m, "path", "/"));
	if (jstr(m, "method", NULL))
		fprintf(f, " method=%s", jstr(m, "method", ""));
	print_kv(f, yyjson_obj_get(m, "headers"), "header");
	print_kv(f, yyjson_obj_get(m, "queryParams"), "query");
	if (yyjson_arr_size(filters)) {
		size_t n = 0;
		yyjson_val *flt;

		fputs(" filters=", f);
		for (yyjson_arr_iter it = yyjson_arr_iter_with(filters);
		     (flt = yyjson_arr_iter_next(&it));) {
			fprintf(f, "%s%s", n++ ? "," : "", jstr(flt, "type", "?"));
		}
	}
	print_backends(f, yyjson_obj_get(r, "backends"));
	fputc('\n', f);
}

static void print_listener(FILE *f, yyjson_val *l)
{
	yyjson_val *v;

	fprintf(f, "  listener %s/%s %s hostname=%s", jstr(l, "gateway", "?"), jstr(l, "name", "?"),
		jstr(l, "protocol", "?"), jstr(l, "hostname", "*"));
	if (jstr(l, "tlsMode", NULL))
		fprintf(f, " tls=%s", jstr(l, "tlsMode", ""));
	if (yyjson_arr_size(yyjson_obj_get(l, "certificates"))) {
		fputs(" certs=", f);
		print_list(f, yyjson_obj_get(l, "certificates"), ",", "");
	}
	fputc('\n', f);
	for (yyjson_arr_iter it = yyjson_arr_iter_with(yyjson_obj_get(l, "rules"));
	     (v = yyjson_arr_iter_next(&it));) {
		print_rule(f, v);
	}
	for (yyjson_arr_iter it = yyjson_arr_iter_with(yyjson_obj_get(l, "tlsRoutes"));
	     (v = yyjson_arr_iter_next(&it));) {
		fprintf(f, "    %s sni=", jstr(v, "route", "?"));
		print_list(f, yyjson_obj_get(v, "hostnames"), ",", "*");
		print_backends(f, yyjson_obj_get(v, "backends"));
		fputc('\n', f);
	}
	if (jstr(l, "route", NULL)) {
		fprintf(f, "    %s", jstr(l, "route", "?"));
		print_backends(f, yyjson_obj_get(l, "backends"));
		fputc('\n', f);
	}
}

/* Prints the routing table in json; -EINVAL when it is not a snapshot. */
static int print_table(FILE *f, const char *json)
{
	yyjson_doc *doc = yyjson_read(json, strlen(json), 0);
	yyjson_val *root = yyjson_doc_get_root(doc), *socks, *so, *l;
	size_t n = 0;

	socks = yyjson_obj_get(root, "sockets");
	if (!yyjson_is_arr(socks)) {
		yyjson_doc_free(doc);
		return -EINVAL;
	}
	for (yyjson_arr_iter it = yyjson_arr_iter_with(socks); (so = yyjson_arr_iter_next(&it));) {
		fprintf(f, "%s %s:%" PRIu64 "\n",
			!strcmp(jstr(so, "transport", "TCP"), "UDP") ? "udp" : "tcp",
			jstr(so, "address", "?"), yyjson_get_uint(yyjson_obj_get(so, "port")));
		for (yyjson_arr_iter lit = yyjson_arr_iter_with(yyjson_obj_get(so, "listeners"));
		     (l = yyjson_arr_iter_next(&lit));) {
			print_listener(f, l);
		}
		n++;
	}
	if (!n)
		fputs("(no listeners)\n", f);
	yyjson_doc_free(doc);
	return 0;
}

static void print_header(FILE *f, const struct store_revision *r)
{
	fprintf(f, "revision %" PRIu64, r->rev);
	if (r->serving || r->pinned)
		fprintf(f, " (%s%s%s)", r->serving ? "serving" : "",
			r->serving && r->pinned ? ", " : "", r->pinned ? "pinned" : "");
	fputc(' ', f);
	print_time(f, r->time_ms);
	fprintf(f, " source=%s", r->source);
	if (*r->user)
		fprintf(f, " user=%s", r->user);
	fprintf(f, " objects=%" PRIu64, r->n_objects);
	if (*r->summary)
		fprintf(f, " \"%s\"", r->summary);
	fputc('\n', f);
}

static int list_revisions(struct store *s, struct arena *a)
{
	struct store_revision *v = NULL;
	size_t n = 0;
	int err = store_revisions(s, 0, 0, a, &v, &n);

	if (err) {
		fprintf(stderr, "waygate routes: cannot list revisions: %s\n", err_str(err));
		return 1;
	}
	if (!n)
		printf("no revision stored yet\n");
	for (size_t i = 0; i < n; i++)
		print_header(stdout, &v[i]);
	return 0;
}

/* "A,B" -> two revision numbers; -EINVAL otherwise. */
static int parse_pair(const char *v, uint64_t *a, uint64_t *b)
{
	const char *comma = strchr(v, ',');

	if (!comma)
		return -EINVAL;
	if (str_to_u64((struct str){v, (size_t)(comma - v)}, UINT64_MAX, a) != 0 ||
	    str_to_u64(str_c(comma + 1), UINT64_MAX, b) != 0 || *a == 0 || *b == 0)
		return -EINVAL;
	return 0;
}

static int diff_revisions(struct store *s, struct arena *a, uint64_t from, uint64_t to)
{
	static const char mark[] = {'+', '-', '~'};
	struct store_diff_entry *e = NULL;
	size_t n = 0;
	int err = store_diff(s, from, to, a, &e, &n);

	if (err == -WG_ENOTFOUND) {
		fprintf(stderr,
			"waygate routes: %s: revision %" PRIu64 " or %" PRIu64 " does not exist\n",
			store_path(s), from, to);
		return 1;
	}
	if (err) {
		fprintf(stderr, "waygate routes: cannot compare revisions: %s\n", err_str(err));
		return 1;
	}
	printf("revision %" PRIu64 " -> %" PRIu64 ": %zu %s\n", from, to, n,
	       n == 1 ? "object differs" : "objects differ");
	for (size_t i = 0; i < n; i++)
		printf("%c %s %s%s%s\n", mark[e[i].change], e[i].kind, e[i].ns, *e[i].ns ? "/" : "",
		       e[i].name);
	return 0;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: waygate routes [--state-dir DIR] [--revision N | --list | --diff A,B]\n"
		   "  prints the routing table of the serving revision (the pinned one if any,\n"
		   "  else the newest) or of revision N; --list prints the stored revisions;\n"
		   "  --diff prints the objects added (+), removed (-) and changed (~) from\n"
		   "  revision A to revision B\n");
}

int cmd_routes(int argc, char **argv)
{
	static const struct flag_spec specs[] = {
		{"state-dir", true}, {"revision", true}, {"list", false},
		{"diff", true},      {"help", false},    {NULL, false},
	};
	const char *state_dir = STORE_DEFAULT_DIR, *name, *value;
	struct store_revision info;
	struct diag d = {0};
	struct store *s = NULL;
	struct arena *a = NULL;
	uint64_t rev = 0, got = 0, diff_a = 0, diff_b = 0;
	bool list = false;
	char *json = NULL;
	int i = 1, r, rc = 1, err;

	while ((r = flag_next(argc, argv, &i, specs, &name, &value)) > 0) {
		if (!name) {
			fprintf(stderr, "waygate routes: unexpected argument '%s'\n", value);
			usage(stderr);
			return 2;
		}
		if (!strcmp(name, "help")) {
			usage(stdout);
			return 0;
		}
		if (!strcmp(name, "state-dir")) {
			state_dir = value;
		} else if (!strcmp(name, "list")) {
			list = true;
		} else if (!strcmp(name, "diff")) {
			if (parse_pair(value, &diff_a, &diff_b) != 0) {
				fprintf(stderr,
					"waygate routes: --diff: '%s' is not two revision numbers "
					"A,B\n",
					value);
				return 2;
			}
		} else if (!strcmp(name, "revision")) {
			if (str_to_u64(str_c(value), UINT64_MAX, &rev) != 0 || rev == 0) {
				fprintf(stderr,
					"waygate routes: --revision: '%s' is not a revision "
					"number\n",
					value);
				return 2;
			}
		}
	}
	if (r < 0) {
		fprintf(stderr, "waygate routes: --%s: %s\n", name ? name : "?",
			r == -ENOENT ? "unknown flag" : "needs a value");
		usage(stderr);
		return 2;
	}
	log_set_level(LOG_ERROR);
	s = store_open_reader(state_dir, &d);
	if (!s) {
		diag_print(&d, "waygate routes");
		goto out;
	}
	a = arena_new(0);
	if (!a)
		goto out;
	if (list) {
		rc = list_revisions(s, a);
		goto out;
	}
	if (diff_a) {
		rc = diff_revisions(s, a, diff_a, diff_b);
		goto out;
	}
	err = store_snapshot_json(s, rev, a, &json, &got);
	if (err == -WG_ENOTFOUND) {
		if (rev == 0)
			fprintf(stderr, "waygate routes: %s: no revision stored yet\n",
				store_path(s));
		else if (store_revision_get(s, rev, a, &info) == 0)
			fprintf(stderr,
				"waygate routes: revision %" PRIu64
				" no longer keeps its routing table (only the newest %d and the "
				"pinned "
				"one do); its objects are still stored\n",
				rev, STORE_DEFAULT_KEEP_SNAPSHOTS);
		else
			fprintf(stderr, "waygate routes: %s: revision %" PRIu64 " does not exist\n",
				store_path(s), rev);
		goto out;
	}
	if (err) {
		fprintf(stderr, "waygate routes: %s: cannot read the store: %s\n", store_path(s),
			err_str(err));
		goto out;
	}
	if (store_revision_get(s, got, a, &info) == 0)
		print_header(stdout, &info);
	if (print_table(stdout, json) != 0) {
		fprintf(stderr,
			"waygate routes: revision %" PRIu64 ": stored routing table is not "
			"readable\n",
			got);
		goto out;
	}
	rc = 0;
out:
	fflush(stdout);
	arena_free(a);
	store_close(s);
	diag_fini(&d);
	return rc;
}
