// SPDX-License-Identifier: MIT
/*
 * debug.c: `waygate kube-debug`, a hidden command that runs the watch
 * client on its own loop and reports on stdout, one JSON object per line:
 * {"event":"synced",...} once every resource is listed, {"event":"change"}
 * after each change notification, and answers to commands read from stdin
 * (JSON lines): {"op":"dump"}, {"op":"health"}, {"op":"status","items":[...]}
 * (submits statuses), {"op":"wait_status"} (answers when the status queue is
 * empty), {"op":"quit"}. End of stdin also quits. The integration tests of
 * kube/ drive it; it is not a user interface. Secrets' data never appear
 * (only kind, namespace, name, resourceVersion; --full adds the JSON of
 * objects other than Secrets).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <yyjson.h>

#include "core/buf.h"
#include "core/diag.h"
#include "core/log.h"
#include "core/loop.h"
#include "gwapi/objset.h"
#include "gwapi/reconcile.h"
#include "kube/internal.h"
#include "kube/kube.h"

struct dbg {
	struct loop *loop;
	struct kube_watch *w;
	struct gw_objset *set;
	bool exit_on_sync;
	bool full;
	bool synced;
	bool wait_status;
	struct loop_io in;
	struct buf inbuf;
	struct timer poll;
	struct timer deadline;
};

static void print_state(struct dbg *g, const char *event)
{
	struct kube_health h;
	struct buf b = {0};

	kube_watch_health(g->w, &h);
	buf_appendf(&b, "{\"event\":\"%s\",\"synced\":%s,\"version\":%llu,\"objects\":[", event,
		    kube_watch_synced(g->w) ? "true" : "false",
		    (unsigned long long)gw_objset_version(g->set));
	for (int k = 0, first = 1; k < GW_K_COUNT; k++) {
		size_t n;
		const struct gw_object *const *v = gw_objset_list(g->set, (enum gw_kind)k, &n);

		for (size_t i = 0; i < n; i++) {
			char s[600];

			snprintf(s, sizeof(s), "%s %s/%s@%s", gw_kind_info((enum gw_kind)k)->kind,
				 v[i]->ns, v[i]->name, v[i]->resource_version);
			if (!first)
				buf_append_str(&b, ",");
			first = 0;
			if (g->full && k != GW_K_SECRET) {
				buf_append_str(&b, "{\"id\":");
				kjson_append_str(&b, s, strlen(s));
				buf_append_str(&b, ",\"object\":");
				buf_append(&b, v[i]->json, v[i]->json_len);
				buf_append_str(&b, "}");
			} else {
				kjson_append_str(&b, s, strlen(s));
			}
		}
	}
	buf_appendf(&b,
		    "],\"health\":{\"connected\":%s,\"synced\":%s,\"insecure\":%s,"
		    "\"open_watches\":%u,\"reflectors\":%u,\"errors\":%llu,\"lists\":%llu,"
		    "\"relists\":%llu,\"status_writes\":%llu,\"status_pending\":%zu,"
		    "\"last_sync_ms\":%llu,\"last_error\":",
		    h.connected ? "true" : "false", h.synced ? "true" : "false",
		    h.insecure ? "true" : "false", h.open_watches, h.reflectors,
		    (unsigned long long)h.errors, (unsigned long long)h.lists,
		    (unsigned long long)h.relists, (unsigned long long)h.status_writes,
		    kube_status_pending(g->w), (unsigned long long)h.last_sync_ms);
	kjson_append_str(&b, h.last_error, strlen(h.last_error));
	buf_append_str(&b, "}}\n");
	fwrite(buf_rptr(&b), 1, buf_len(&b), stdout);
	fflush(stdout);
	buf_release(&b);
}

static void check_sync(struct dbg *g)
{
	if (!g->synced && kube_watch_synced(g->w)) {
		g->synced = true;
		print_state(g, "synced");
		if (g->exit_on_sync)
			loop_stop(g->loop);
	}
}

static void on_change(void *arg)
{
	struct dbg *g = arg;

	if (g->synced)
		print_state(g, "change");
	else
		check_sync(g);
}

static void on_poll(struct timer *t)
{
	struct dbg *g = t->arg;

	check_sync(g);
	if (g->wait_status && kube_status_pending(g->w) == 0) {
		g->wait_status = false;
		print_state(g, "status_done");
	}
	timer_add(g->loop, &g->poll, 50, on_poll, g);
}

static void on_deadline(struct timer *t)
{
	struct dbg *g = t->arg;

	print_state(g, "deadline");
	loop_stop(g->loop);
}

static void submit(struct dbg *g, yyjson_val *items)
{
	yyjson_val *it;
	size_t idx, max, n = 0;
	struct gw_status *st = calloc(yyjson_arr_size(items) + 1, sizeof(*st));

	if (!st)
		return;
	yyjson_arr_foreach(items, idx, max, it)
	{
		int k = gw_kind_from_name(NULL, yyjson_get_str(yyjson_obj_get(it, "kind")));

		if (k < 0)
			continue;
		st[n].kind = (enum gw_kind)k;
		st[n].ns =
			(char *)(uintptr_t)(yyjson_get_str(yyjson_obj_get(it, "namespace")) ?: "");
		st[n].name = (char *)(uintptr_t)yyjson_get_str(yyjson_obj_get(it, "name"));
		st[n].generation = yyjson_get_sint(yyjson_obj_get(it, "generation"));
		st[n].status_json = yyjson_val_write(yyjson_obj_get(it, "status"), 0, NULL);
		if (st[n].name && st[n].status_json)
			n++;
		else
			free(st[n].status_json);
	}
	kube_status_submit(g->w, st, n);
	for (size_t i = 0; i < n; i++)
		free(st[i].status_json);
	free(st);
}

static void command(struct dbg *g, const char *line, size_t len)
{
	yyjson_doc *doc = yyjson_read(line, len, 0);
	const char *op = yyjson_get_str(yyjson_obj_get(yyjson_doc_get_root(doc), "op"));

	if (!op) {
		fprintf(stdout, "{\"event\":\"bad_command\"}\n");
	} else if (!strcmp(op, "dump") || !strcmp(op, "health")) {
		print_state(g, op);
	} else if (!strcmp(op, "status")) {
		submit(g, yyjson_obj_get(yyjson_doc_get_root(doc), "items"));
		print_state(g, "status_submitted");
	} else if (!strcmp(op, "wait_status")) {
		g->wait_status = true;
	} else if (!strcmp(op, "quit")) {
		print_state(g, "quit");
		loop_stop(g->loop);
	}
	fflush(stdout);
	yyjson_doc_free(doc);
}

static void on_stdin(struct loop_io *io, uint32_t events)
{
	struct dbg *g = io->arg;
	ssize_t r;

	(void)events;
	if (buf_reserve(&g->inbuf, 65536, 0))
		return;
	r = read(io->fd, buf_wptr(&g->inbuf), buf_room(&g->inbuf));
	if (r == -1 && (errno == EAGAIN || errno == EINTR))
		return;
	if (r <= 0) {
		loop_io_del(g->loop, io);
		print_state(g, "eof");
		loop_stop(g->loop);
		return;
	}
	buf_commit(&g->inbuf, (size_t)r);
	for (;;) {
		char *p = buf_rptr(&g->inbuf), *nl = memchr(p, '\n', buf_len(&g->inbuf));

		if (!nl)
			break;
		if (nl > p)
			command(g, p, (size_t)(nl - p));
		buf_consume(&g->inbuf, (size_t)(nl - p) + 1);
	}
}

static uint32_t num(const char *s)
{
	return (uint32_t)strtoul(s, NULL, 10);
}

int kube_debug_main(int argc, char **argv)
{
	struct dbg g = {0};
	struct diag d = {0};
	struct kube_config *cfg = NULL;
	struct kube_watch_opts o = {.user_agent = "waygate/kube-debug"};
	const char *kubeconfig = NULL, *context = NULL, *nss[17] = {0};
	uint32_t duration_ms = 0;
	size_t nns = 0;
	int rc = 2;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(a, "--exit-on-sync")) {
			g.exit_on_sync = true;
			continue;
		}
		if (!strcmp(a, "--full")) {
			g.full = true;
			continue;
		}
		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			printf("usage: waygate kube-debug --kubeconfig FILE [--context NAME] "
			       "[--namespace NS]... [--controller-name NAME] [--exit-on-sync] "
			       "[--full]\n"
			       "  [--duration-ms N] [--page-limit N] [--silence-ms N] "
			       "[--backoff-min-ms N] [--backoff-max-ms N]\n"
			       "  [--recheck-ms N] [--request-timeout-ms N] [--watch-timeout-s N] "
			       "[--status-rate N] [--debug]\n"
			       "Runs the watch client alone; prints JSON lines; reads commands "
			       "(dump, health, status, wait_status, quit) on stdin.\n");
			return 0;
		}
		if (!strcmp(a, "--debug")) {
			log_set_level(LOG_DEBUG);
			continue;
		}
		if (!v) {
			fprintf(stderr, "kube-debug: %s needs a value\n", a);
			return 2;
		}
		i++;
		if (!strcmp(a, "--kubeconfig"))
			kubeconfig = v;
		else if (!strcmp(a, "--context"))
			context = v;
		else if (!strcmp(a, "--namespace") && nns < 16)
			nss[nns++] = v;
		else if (!strcmp(a, "--controller-name"))
			o.controller_name = v;
		else if (!strcmp(a, "--user-agent"))
			o.user_agent = v;
		else if (!strcmp(a, "--duration-ms"))
			duration_ms = num(v);
		else if (!strcmp(a, "--page-limit"))
			o.page_limit = num(v);
		else if (!strcmp(a, "--silence-ms"))
			o.silence_timeout_ms = num(v);
		else if (!strcmp(a, "--backoff-min-ms"))
			o.backoff_min_ms = num(v);
		else if (!strcmp(a, "--backoff-max-ms"))
			o.backoff_max_ms = num(v);
		else if (!strcmp(a, "--recheck-ms"))
			o.recheck_ms = num(v);
		else if (!strcmp(a, "--request-timeout-ms"))
			o.request_timeout_ms = num(v);
		else if (!strcmp(a, "--watch-timeout-s"))
			o.watch_timeout_s = num(v);
		else if (!strcmp(a, "--status-rate"))
			o.status_rate_per_s = num(v);
		else {
			fprintf(stderr, "kube-debug: unknown option %s\n", a);
			return 2;
		}
	}
	if (!kubeconfig) {
		fprintf(stderr, "usage: waygate kube-debug --kubeconfig FILE [--context NAME] "
				"[--namespace NS]... [--exit-on-sync] [--duration-ms N]\n");
		return 2;
	}
	if (nns)
		o.namespaces = nss;
	if (kube_config_load(kubeconfig, context, &cfg, &d)) {
		char line[600];

		for (size_t i = 0; i < d.n; i++)
			fprintf(stderr, "kube-debug: %s\n",
				diag_format(&d.v[i], line, sizeof(line)));
		diag_fini(&d);
		return 2;
	}
	for (size_t i = 0; i < d.n; i++) {
		char line[600];

		fprintf(stderr, "kube-debug: warning: %s\n",
			diag_format(&d.v[i], line, sizeof(line)));
	}
	diag_fini(&d);
	g.loop = loop_new();
	g.set = gw_objset_new();
	if (!g.loop || !g.set)
		goto out;
	g.w = kube_watch_new(g.loop, cfg, &o, g.set, on_change, &g);
	if (!g.w) {
		rc = 1;
		goto out;
	}
	fcntl(0, F_SETFL, fcntl(0, F_GETFL) | O_NONBLOCK);
	loop_io_add(g.loop, &g.in, 0, LOOP_READ, on_stdin, &g);
	timer_add(g.loop, &g.poll, 50, on_poll, &g);
	if (duration_ms)
		timer_add(g.loop, &g.deadline, duration_ms, on_deadline, &g);
	kube_watch_start(g.w);
	loop_run(g.loop);
	rc = g.exit_on_sync && !g.synced ? 1 : 0;
out:
	kube_watch_free(g.w);
	gw_objset_free(g.set);
	if (g.loop) {
		timer_cancel(g.loop, &g.poll);
		timer_cancel(g.loop, &g.deadline);
		loop_free(g.loop);
	}
	buf_release(&g.inbuf);
	kube_config_free(cfg);
	return rc;
}
