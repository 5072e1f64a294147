/* SPDX-License-Identifier: MIT */
/*
 * run.c: `waygate run`, the control thread. It owns the object set and
 * drives the data path: sources (the cluster's watches, or local YAML) feed
 * the set; a short debounce later reconcile compiles it into a snapshot and
 * statuses; the snapshot is committed to the store as a revision and then
 * published to the data-plane workers; statuses go back to the cluster.
 * On start the newest stored revision is served before any source is read,
 * so a reboot or an unreachable cluster still serves the last-known-good
 * configuration. Signals arrive through a signalfd on this loop: SIGHUP
 * re-reads local configuration, SIGTERM/SIGINT drain and exit 0.
 * Everything here runs on the main (control) thread; the workers and the UI
 * thread are started from here.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/build_info.h"
#include "cli/cli.h"
#include "cli/internal.h"
#include "cli/limits.h"
#include "cli/privdrop.h"
#include "cli/run.h"
#include "core/bigblock.h"
#include "core/diag.h"
#include "core/err.h"
#include "core/hash.h"
#include "core/log.h"
#include "core/loop.h"
#include "core/str.h"
#include "gwapi/objset.h"
#include "gwapi/reconcile.h"
#include "gwapi/snapimage.h"
#include "kube/kube.h"
#include "proxy/proxy.h"
#include "proxy/snapshot.h"
#include "store/store.h"
#include "tls/tls.h"
#include "ui/ui.h"


#define DEFAULT_CONTROLLER "waygate.dev/gateway-controller"
#define DEFAULT_STATE_DIR "/var/lib/waygate"
#define DEFAULT_UI_LISTEN "0.0.0.0:9443"
#define DEFAULT_LOCAL_CONFIG "/etc/waygate/config"
#define DEFAULT_LIMITS "/etc/waygate/limits.conf"
#define DEFAULT_ACCESS_LOG_MAX (10u << 20)
#define ACCESS_LOG_CHECK_MS 2000
#define RECONCILE_DEBOUNCE_MS 20

static void usage(FILE *f)
{
	fprintf(f,
		"usage: waygate run (--kubeconfig FILE [--context NAME] | --config PATH) [options]\n"
		"\n"
		"  --kubeconfig FILE       cluster mode: watch the cluster in FILE, write status back\n"
		"  --context NAME          kubeconfig context (default: current-context)\n"
		"  --namespace NS          watch only NS (repeatable; default: every namespace)\n"
		"  --config PATH           local mode: serve the YAML manifests in a file or folder\n"
		"  --controller-name NAME  GatewayClass controllerName owned (default %s)\n"
		"  --state-dir DIR         store, keys, UI credentials (default %s)\n"
		"  --address-pool CIDR     addresses handed to Gateways (default: wildcard)\n"
		"  --ui-listen ADDR:PORT   admin UI over HTTPS (default %s; 'off' disables it)\n"
		"  --workers N             data-plane workers (default: board profile, else one per core)\n"
		"  --access-log FILE       JSON access log to FILE ('-' for stderr; default none)\n"
		"  --access-log-max-bytes N  rotate FILE to FILE.1 past N bytes (default 10 MiB; 0 never)\n"
		"  --log-level LEVEL       error, warn, info (default) or debug\n"
		"  --drain-timeout MS      in-flight requests may finish this long on SIGTERM (10000)\n"
		"  --via on|off            add 'Via: 1.1 waygate' to forwarded messages (default on)\n"
		"  --limits FILE           limits for the box and per listener port (default %s,\n"
		"                          read when present; see README)\n"
		"  --user NAME             run as NAME once the first ports are bound (default: %s)\n",
		DEFAULT_CONTROLLER, DEFAULT_STATE_DIR, DEFAULT_UI_LISTEN, DEFAULT_LIMITS,
		WG_BOARD_USER[0] ? "the board's, " WG_BOARD_USER : "stay as started");
}

static int parse_opts(int argc, char **argv, struct run_opts *o)
{
	static const struct flag_spec specs[] = {
		{"kubeconfig", true},   {"context", true},    {"config", true},
		{"controller-name", true}, {"state-dir", true}, {"address-pool", true},
		{"ui-listen", true},    {"workers", true},    {"access-log", true},
		{"log-level", true},    {"namespace", true},  {"drain-timeout", true},
		{"access-log-max-bytes", true}, {"via", true}, {"limits", true}, {"user", true},
		{"help", false},        {NULL, false},
	};
	const char *name, *value;
	int i = 1, r;

	*o = (struct run_opts){
		.controller_name = DEFAULT_CONTROLLER,
		.state_dir = DEFAULT_STATE_DIR,
		.ui_listen = DEFAULT_UI_LISTEN,
		.workers = WG_BOARD_WORKERS,
		.drain_ms = 10000,
		.access_log_max = DEFAULT_ACCESS_LOG_MAX,
	};
	while ((r = flag_next(argc, argv, &i, specs, &name, &value)) > 0) {
		uint64_t n;
		if (!name) {
			fprintf(stderr, "waygate run: unexpected argument '%s'\n", value);
			return 2;
		}
		if (!strcmp(name, "help")) {
			usage(stdout);
			return 1;
		} else if (!strcmp(name, "kubeconfig")) {
			o->kubeconfig = value;
		} else if (!strcmp(name, "context")) {
			o->context = value;
		} else if (!strcmp(name, "config")) {
			o->config_path = value;
		} else if (!strcmp(name, "controller-name")) {
			o->controller_name = value;
		} else if (!strcmp(name, "state-dir")) {
			o->state_dir = value;
		} else if (!strcmp(name, "address-pool")) {
			o->address_pool = value;
		} else if (!strcmp(name, "ui-listen")) {
			o->ui_listen = value;
		} else if (!strcmp(name, "access-log")) {
			o->access_log = value;
		} else if (!strcmp(name, "limits")) {
			o->limits_path = value;
		} else if (!strcmp(name, "user")) {
			o->user = value;
		} else if (!strcmp(name, "namespace")) {
			if (o->n_namespaces == MAX_NAMESPACES) {
				fprintf(stderr, "waygate run: --namespace: at most %d\n", MAX_NAMESPACES);
				return 2;
			}
			o->namespaces[o->n_namespaces++] = value;
		} else if (!strcmp(name, "workers")) {
			if (str_to_u64(str_c(value), 256, &n)) {
				fprintf(stderr, "waygate run: --workers: '%s' is not a number from 0 to 256\n",
					value);
				return 2;
			}
			o->workers = (unsigned)n;
		} else if (!strcmp(name, "access-log-max-bytes")) {
			if (str_to_u64(str_c(value), UINT64_MAX / 2, &n)) {
				fprintf(stderr, "waygate run: --access-log-max-bytes: '%s' is not a size in bytes\n",
					value);
				return 2;
			}
			o->access_log_max = n;
		} else if (!strcmp(name, "drain-timeout")) {
			if (str_to_u64(str_c(value), 3600000, &n)) {
				fprintf(stderr, "waygate run: --drain-timeout: '%s' is not milliseconds\n",
					value);
				return 2;
			}
			o->drain_ms = (uint32_t)n;
		} else if (!strcmp(name, "via")) {
			if (strcmp(value, "on") && strcmp(value, "off")) {
				fprintf(stderr, "waygate run: --via: '%s' is not on or off\n", value);
				return 2;
			}
			o->via_off = !strcmp(value, "off");
		} else if (!strcmp(name, "log-level")) {
			enum log_level lvl;
			if (log_parse_level(value, &lvl)) {
				fprintf(stderr, "waygate run: --log-level: '%s' is not error, warn, info or debug\n",
					value);
				return 2;
			}
			log_set_level(lvl);
		}
	}
	if (r < 0) {
		fprintf(stderr, "waygate run: --%s: %s\n", name ? name : "?",
			r == -ENOENT ? "unknown flag" : "needs a value");
		usage(stderr);
		return 2;
	}
	if (!!o->kubeconfig == !!o->config_path) {
		fprintf(stderr, "waygate run: give exactly one of --kubeconfig FILE or --config PATH\n");
		usage(stderr);
		return 2;
	}
	if (o->context && !o->kubeconfig) {
		fprintf(stderr, "waygate run: --context needs --kubeconfig\n");
		return 2;
	}
	return 0;
}

/* ---- serving ---- */


static uint64_t pinned_revision(struct runner *r)
{
	uint64_t rev = 0;
	if (r->store && store_pinned(r->store, &rev) < 0)
		rev = 0;
	return rev;
}

/* Makes snap (one reference, taken over) the served snapshot. */
static void serve(struct runner *r, struct snapshot *snap, bool pinned)
{
	struct diag d = {0};

	snap_ref(snap); /* the proxy's reference; ours stays in r->current */
	if (proxy_publish(r->proxy, snap, &d) < 0)
		log_error("event=publish_failed revision=%llu", (unsigned long long)snap->revision);
	diag_log(&d, LOG_WARN, "listener_problem");
	diag_fini(&d);
	run_set_current(r, snap);
	r->serving_revision = snap->revision;
	r->serving_pinned = pinned;
	log_info("event=serving revision=%llu listeners=%zu sockets=%zu pinned=%s",
		 (unsigned long long)snap->revision, snap->n_listeners, snap->n_sockets,
		 pinned ? "true" : "false");
}

static void keep_addresses(struct runner *r, struct gw_result *res)
{
	for (size_t i = 0; i < r->n_prev; i++) {
		free(r->prev_gateways[i]);
		free(r->prev_addresses[i]);
	}
	free(r->prev_gateways);
	free(r->prev_addresses);
	r->prev_gateways = res->gateways;
	r->prev_addresses = res->addresses;
	r->n_prev = res->n_gateways;
	res->gateways = res->addresses = NULL;
	res->n_gateways = 0;
}

/* Logs reconcile problems when they differ from the last ones logged. */
static void log_problems(struct runner *r, const struct diag *d)
{
	uint64_t h = d->n;
	char line[1400];

	/* a sum: an incremental reconcile lists the same problems in
	 * another order */
	for (size_t i = 0; i < d->n; i++) {
		diag_format(&d->v[i], line, sizeof(line));
		h += hash_mix(d->n, hash_bytes(line, strlen(line)));
	}
	if (h == r->problems_hash)
		return;
	r->problems_hash = h;
	for (size_t i = 0; i < d->n; i++)
		log_msg(d->v[i].sev == DIAG_ERROR ? LOG_WARN : LOG_INFO, "event=config_problem detail=%s",
			log_q(diag_format(&d->v[i], line, sizeof(line))));
}

/*
 * Reconciles set and returns its snapshot (one reference) or NULL. Statuses
 * go to the cluster when one is watched.
 */
static struct snapshot *compile(struct runner *r, struct gw_objset *set, bool write_status)
{
	struct gw_options opts = {
		.controller_name = r->o.controller_name,
		.address_pool = r->o.address_pool,
		.now_ms = clock_wall_ms(),
		.prev_gateways = (const char *const *)r->prev_gateways,
		.prev_addresses = (const char *const *)r->prev_addresses,
		.n_prev = r->n_prev,
		.supported_features = wg_supported_features,
		.skip_statuses = !(write_status && r->kw),
	};
	struct gw_result res = {0};
	struct snapshot *snap;
	uint64_t t0 = clock_mono_ms();
	int err;

	/* The live set of cluster mode only: a stored revision's set is
	 * reconciled once, and local mode's SIGHUPs are rare next to the
	 * memory the kept state costs (~1.5 KB a route). */
	bool incremental = set == r->set && r->kw;
	if (incremental && !r->incr)
		r->incr = gw_incr_new();
	if (incremental && r->incr)
		err = gw_reconcile_incr(r->incr, set, &opts, &res);
	else
		err = gw_reconcile(set, &opts, &res);

	if (err < 0) {
		log_error("event=reconcile_failed error=%s", log_q(err_str(err)));
		gw_result_fini(&res);
		return NULL;
	}
	log_problems(r, &res.diag);
	keep_addresses(r, &res);
	r->reconciled_routes = res.incremental;
	if (write_status && r->kw) {
		kube_status_submit(r->kw, res.statuses, res.n_statuses);
		kube_infra_submit(r->kw, set);
	}
	snap = res.snap;
	res.snap = NULL;
	log_debug("event=reconciled pass=%s routes=%zu statuses=%zu ms=%llu",
		  res.incremental ? "routes" : "whole", res.n_rederived, res.n_statuses,
		  (unsigned long long)(clock_mono_ms() - t0));
	gw_result_fini(&res);
	return snap;
}

/*
 * Reconciles the live set, commits it as a revision and serves it (unless a
 * revision is pinned: then the pinned one keeps being served and the live
 * set is only recorded). A change that leaves the served snapshot as it was
 * (our own status writes coming back, a resourceVersion bump) is neither
 * committed nor re-published: revisions record what the box served.
 */
void run_reconcile_and_serve(struct runner *r, const char *source)
{
	uint64_t t0 = clock_mono_ms();
	/* how long the change waited for the debounce */
	uint64_t queued = r->pending_since_ms ? t0 - r->pending_since_ms : 0;
	struct snapshot *snap = compile(r, r->set, true);
	uint64_t rev = 0, identity = 0, t1 = clock_mono_ms(), t2, t3;
	struct store_compiled c = {0};
	struct gw_image_cache *cache = r->image_cache, *once = NULL;
	uint8_t *image = NULL;
	size_t image_len = 0;
	int err;

	r->reconciled_version = gw_objset_version(r->set);
	r->pending_since_ms = 0;
	if (!snap)
		return;
	/* The image holds everything served (key material included) and
	 * nothing about when it was compiled: its digest says whether
	 * anything served changed. In cluster mode the cache is kept from
	 * change to change and encodes only the rules the incremental
	 * reconcile compiled again; the digest comes from the kept records'
	 * hashes, the bytes are written once the snapshot is served. Local
	 * mode compiles every rule anew: its cache lives for this call. */
	if (!cache && r->incr)
		cache = r->image_cache = gw_image_cache_new();
	else if (!cache)
		cache = once = gw_image_cache_new();
	err = cache ? gw_image_cache_update(cache, snap, r->prev_gateways, r->prev_addresses,
					    r->n_prev, &identity)
		    : -ENOMEM;
	if (err < 0) {
		log_error("event=commit_failed error=%s", log_q(err_str(err)));
		snap_unref(snap);
		goto out;
	}
	if (identity == r->served_hash && r->current && !r->serving_pinned) {
		/* Nothing served changed. A whole pass made it of new rules,
		 * though, and the next route change shares them: served (same
		 * revision, nothing committed), the routing tables then keep
		 * what that change does not touch instead of rebuilding all. */
		if (r->incr && !r->reconciled_routes) {
			snap->revision = r->serving_revision;
			serve(r, snap, false);
		} else {
			snap_unref(snap);
		}
		goto out;
	}
	/* The revision commits the objects and the image's digest; the
	 * image's bytes follow once it is served (a start that finds them
	 * missing rebuilds the revision from its objects). The store keeps no
	 * JSON: store_snapshot_json makes it from the image when asked. */
	t2 = clock_mono_ms();
	c.image_later = true;
	c.image_hash = identity;
	err = store_commit_compiled(r->store, r->set, &c, source, NULL, NULL, &rev);
	t3 = clock_mono_ms();
	if (err < 0) {
		/* Serving an uncommitted set would break the promise that a
		 * reboot serves what was served: keep the last good one. */
		log_error("event=commit_failed error=%s", log_q(err_str(err)));
		snap_unref(snap);
		goto out;
	}
	snap->revision = rev;
	if (pinned_revision(r)) {
		log_info("event=revision_recorded revision=%llu pinned=%llu", (unsigned long long)rev,
			 (unsigned long long)pinned_revision(r));
		snap_unref(snap);
	} else {
		r->served_hash = identity;
		serve(r, snap, false);
		log_info("event=change_served revision=%llu pass=%s queued_ms=%llu "
			 "reconcile_ms=%llu render_ms=%llu commit_ms=%llu publish_ms=%llu",
			 (unsigned long long)rev, r->reconciled_routes ? "routes" : "whole",
			 (unsigned long long)queued,
			 (unsigned long long)(t1 - t0),
			 (unsigned long long)(t2 - t1), (unsigned long long)(t3 - t2),
			 (unsigned long long)(clock_mono_ms() - t3));
	}
	t3 = clock_mono_ms();
	err = gw_image_cache_bytes(cache, &image, &image_len);
	if (!err)
		err = store_snapshot_image_put(r->store, rev, image, image_len);
	if (err < 0 && err != -WG_ENOTFOUND)
		log_warn("event=snapshot_image_write_failed revision=%llu error=%s",
			 (unsigned long long)rev, log_q(err_str(err)));
	else
		log_debug("event=snapshot_image_written revision=%llu bytes=%zu ms=%llu",
			  (unsigned long long)rev, image_len,
			  (unsigned long long)(clock_mono_ms() - t3));
	gw_image_buf_free(image, image_len);
out:
	gw_image_cache_free(once);
}

/*
 * Serves the snapshot image committed with revision rev (0 = serving), as
 * it was served then, with the Gateway addresses it had. -WG_ENOTFOUND when
 * the revision keeps no image; any other error means a damaged one (logged
 * here: the caller rebuilds the revision from its objects).
 */
static int serve_image(struct runner *r, uint64_t rev)
{
	uint64_t t0 = clock_mono_ms(), got = 0, identity = 0;
	struct gw_image img;
	uint8_t *buf = NULL;
	size_t len = 0;
	int err = store_snapshot_image(r->store, rev, &buf, &len, &got, &identity);

	if (err == 0) {
		err = gw_image_decode(buf, len, &img);
		gw_image_buf_free(buf, len);
	}
	if (err == -WG_ENOTFOUND) {
		if (got) /* else the store holds no revision at all */
			log_info("event=snapshot_image_missing revision=%llu action=rebuild",
				 (unsigned long long)got);
		return err;
	}
	if (err < 0) {
		log_warn("event=snapshot_image_unusable revision=%llu error=%s action=rebuild",
			 (unsigned long long)got,
			 log_q(err == -EBADMSG ? "stored bytes do not match their hash"
					       : err_str(err)));
		return err;
	}
	/* The addresses the image was served with stay the Gateways' own. */
	struct gw_result carry = {.gateways = img.gateways,
				  .addresses = img.addresses,
				  .n_gateways = img.n_gateways};
	keep_addresses(r, &carry);
	img.gateways = img.addresses = NULL;
	img.n_gateways = 0;
	img.snap->revision = got;
	serve(r, img.snap, pinned_revision(r) == got);
	img.snap = NULL; /* serve() took the reference */
	gw_image_fini(&img);
	r->served_hash = identity;
	log_info("event=snapshot_image_served revision=%llu bytes=%zu ms=%llu",
		 (unsigned long long)got, len, (unsigned long long)(clock_mono_ms() - t0));
	return 0;
}

/* Serves a stored revision (0 = the pinned one if any, else the newest):
 * its committed image, else its objects compiled again. */
int run_serve_stored(struct runner *r, uint64_t rev)
{
	struct gw_objset *set;
	uint64_t got = 0;
	struct snapshot *snap;
	int err;

	if (serve_image(r, rev) == 0)
		return 0;
	set = gw_objset_new();
	if (!set)
		return -ENOMEM;
	err = store_load(r->store, rev, set, &got);
	if (err < 0 || got == 0) {
		gw_objset_free(set);
		return err < 0 ? err : -WG_ENOTFOUND;
	}
	snap = compile(r, set, false);
	gw_objset_free(set);
	if (!snap)
		return -EINVAL;
	snap->revision = got;
	serve(r, snap, pinned_revision(r) == got);
	return 0;
}

static void on_reconcile_timer(struct timer *t)
{
	struct runner *r = t->arg;

	if (r->kw && !kube_watch_synced(r->kw))
		return; /* a partial view must never replace the last-known-good set */
	if (gw_objset_version(r->set) == r->reconciled_version)
		return;
	uint64_t t0 = clock_mono_ms();
	run_reconcile_and_serve(r, r->pending_source ? r->pending_source : "cluster");
	r->reconciled_at_ms = clock_mono_ms();
	r->reconcile_cost_ms = r->reconciled_at_ms - t0;
}

/*
 * A change after a quiet spell is reconciled on the next turn of the loop
 * (every event already read joins it); one that comes right after a
 * reconcile waits as long as that reconcile took (run_reconcile_delay).
 */
static void schedule_reconcile(struct runner *r, const char *source)
{
	r->pending_source = source;
	if (timer_is_armed(&r->reconcile_timer))
		return;
	r->pending_since_ms = clock_mono_ms();
	timer_add(r->loop, &r->reconcile_timer,
		  run_reconcile_delay(r->reconciled_at_ms, r->reconcile_cost_ms,
				      r->pending_since_ms, RECONCILE_DEBOUNCE_MS),
		  on_reconcile_timer, r);
}

static void on_cluster_change(void *arg)
{
	schedule_reconcile(arg, "cluster");
}

/* ---- local mode ---- */

/* (Re-)reads the local configuration; on errors keeps serving what was. */
static int load_local(struct runner *r, bool at_start)
{
	struct gw_objset *set = gw_objset_new();
	struct diag d = {0};
	int err;

	if (!set)
		return -ENOMEM;
	if (!r->local_cache)
		r->local_cache = kube_local_cache_new(); /* without it, every load parses all */
	err = local_config_load(r->local_path, r->o.state_dir, set, r->local_cache, &d);
	if (err < 0) {
		if (at_start)
			diag_print(&d, "waygate");
		diag_log(&d, LOG_ERROR, "config_invalid");
		log_error("event=config_rejected path=%s errors=%zu keeping=revision-%llu",
			  log_q(r->local_path), d.errors, (unsigned long long)r->serving_revision);
		diag_fini(&d);
		gw_objset_free(set);
		return -WG_EINVAL_CONFIG;
	}
	diag_fini(&d);
	gw_objset_free(r->set);
	r->set = set;
	log_info("event=config_loaded path=%s", log_q(r->local_path));
	run_reconcile_and_serve(r, "file");
	return 0;
}

/* ---- switching sources ---- */

static void stop_cluster(struct runner *r)
{
	kube_watch_free(r->kw);
	r->kw = NULL;
	kube_config_free(r->kcfg);
	r->kcfg = NULL;
	free(r->kubeconfig_path);
	r->kubeconfig_path = NULL;
	gw_incr_free(r->incr); /* what it kept is of the cluster's set */
	r->incr = NULL;
	gw_image_cache_free(r->image_cache);
	r->image_cache = NULL;
	bigblock_keep(false);
}

int run_use_cluster(struct runner *r, const char *path, char *msg, size_t msgsz)
{
	struct kube_config *cfg = NULL;
	struct gw_objset *set;
	struct diag d = {0};
	char line[600];
	struct kube_watch_opts ko = {
		.user_agent = "waygate/" WG_VERSION,
		.namespaces = r->o.n_namespaces ? r->o.namespaces : NULL,
		.controller_name = r->o.controller_name,
	};
	int err = kube_config_load(path, r->o.context, &cfg, &d);

	if (err < 0) {
		snprintf(msg, msgsz, "%s", d.n ? diag_format(&d.v[0], line, sizeof(line)) : err_str(err));
		diag_fini(&d);
		return err;
	}
	diag_fini(&d);
	set = gw_objset_new();
	if (!set) {
		kube_config_free(cfg);
		snprintf(msg, msgsz, "out of memory");
		return -ENOMEM;
	}
	stop_cluster(r);
	/* The served snapshot stays until the new source has listed
	 * everything: a partial view never replaces the last-known-good. */
	gw_objset_free(r->set);
	r->set = set;
	r->reconciled_version = gw_objset_version(set);
	r->kcfg = cfg;
	r->kubeconfig_path = strdup(path);
	log_info("event=cluster server=%s context=%s auth=%s", log_q(kube_config_server(cfg)),
		 log_q(kube_config_context(cfg)), kube_config_auth_kind(cfg));
	if (kube_config_insecure(cfg))
		log_warn("event=insecure_cluster detail=\"insecure-skip-tls-verify is set: the API server is not verified\"");
	r->kw = kube_watch_new(r->loop, cfg, &ko, set, on_cluster_change, r);
	if (!r->kw || (err = kube_watch_start(r->kw)) < 0) {
		stop_cluster(r);
		snprintf(msg, msgsz, "cannot start the watch client");
		return err < 0 ? err : -ENOMEM;
	}
	/* Changes come often here: the blocks one frees serve the next. */
	bigblock_keep(true);
	snprintf(msg, msgsz, "cluster mode: watching %s", kube_config_server(cfg));
	return 0;
}

int run_use_local(struct runner *r, char *msg, size_t msgsz)
{
	stop_cluster(r);
	if (load_local(r, false) < 0) {
		snprintf(msg, msgsz, "local configuration %s has errors (see Events); still serving revision %llu",
			 r->local_path, (unsigned long long)r->serving_revision);
		return -WG_EINVAL_CONFIG;
	}
	snprintf(msg, msgsz, "local mode: serving %s", r->local_path);
	return 0;
}

/* ---- signals ---- */

static void on_signal(struct loop_io *io, uint32_t events)
{
	struct runner *r = io->arg;
	struct signalfd_siginfo si;
	(void)events;

	while (read(r->sig_fd, &si, sizeof(si)) == sizeof(si)) {
		switch (si.ssi_signo) {
		case SIGHUP:
			log_info("event=reload signal=HUP");
			if (!r->kw)
				load_local(r, false);
			break;
		case SIGTERM:
		case SIGINT:
			log_info("event=shutdown signal=%s", si.ssi_signo == SIGTERM ? "TERM" : "INT");
			loop_stop(r->loop);
			break;
		default:
			break;
		}
	}
}

static int open_signals(struct runner *r)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	/* Blocked before any thread starts, so every thread inherits the mask
	 * and only the signalfd sees these signals. */
	if (pthread_sigmask(SIG_BLOCK, &set, NULL) != 0)
		return -errno;
	signal(SIGPIPE, SIG_IGN);
	r->sig_fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (r->sig_fd == -1)
		return -errno;
	return 0;
}

static int open_access_log(const char *path)
{
	if (!path)
		return -1;
	if (!strcmp(path, "-"))
		return STDERR_FILENO;
	int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
	if (fd == -1)
		fprintf(stderr, "waygate run: --access-log: cannot open %s: %s\n", path, strerror(errno));
	return fd;
}

/*
 * Size-based rotation of the access log, for boxes with small flash: when
 * the file passes the limit it becomes FILE.1 (replacing the previous one)
 * and a new FILE is opened onto the same descriptor number with dup2(),
 * which the kernel swaps atomically, so the workers' write() calls simply
 * land in the new file and need no lock or message.
 */
static void on_access_log_timer(struct timer *t)
{
	struct runner *r = t->arg;
	struct stat st;
	char old[1100];

	timer_add(r->loop, t, ACCESS_LOG_CHECK_MS, on_access_log_timer, r);
	if (fstat(r->access_log_fd, &st) == -1 || (uint64_t)st.st_size < r->o.access_log_max)
		return;
	snprintf(old, sizeof(old), "%s.1", r->o.access_log);
	if (rename(r->o.access_log, old) == -1) {
		log_warn("event=access_log_rotate_failed error=%s", log_q(strerror(errno)));
		return;
	}
	int fd = open(r->o.access_log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
	if (fd == -1 || dup2(fd, r->access_log_fd) == -1)
		log_warn("event=access_log_rotate_failed error=%s", log_q(strerror(errno)));
	if (fd != -1)
		close(fd);
	log_info("event=access_log_rotated bytes=%lld", (long long)st.st_size);
}

static int ensure_state_dir(const char *dir)
{
	struct stat st;

	if (mkdir(dir, 0700) == -1 && errno != EEXIST) {
		fprintf(stderr, "waygate run: --state-dir: cannot create %s: %s\n", dir, strerror(errno));
		return -errno;
	}
	if (stat(dir, &st) == -1 || !S_ISDIR(st.st_mode)) {
		fprintf(stderr, "waygate run: --state-dir: %s is not a folder\n", dir);
		return -ENOTDIR;
	}
	return 0;
}

int cmd_run(int argc, char **argv)
{
	struct runner r = {.sig_fd = -1, .access_log_fd = -1};
	struct diag d = {0};
	int rc = parse_opts(argc, argv, &r.o), err;

	if (rc)
		return rc == 1 ? 0 : rc;
	if (ensure_state_dir(r.o.state_dir) < 0)
		return 2;
	r.local_path = r.o.config_path ? r.o.config_path : DEFAULT_LOCAL_CONFIG;
	if (open_signals(&r) < 0) {
		perror("waygate run: signals");
		return 1;
	}
	log_info("event=start version=%s mode=%s pid=%d", WG_VERSION,
		 r.o.kubeconfig ? "cluster" : "local", (int)getpid());

	/* Cluster mode: the kubeconfig is checked before anything starts, so
	 * a bad one exits 2 naming the file and key. */
	if (r.o.kubeconfig) {
		struct kube_config *probe = NULL;
		err = kube_config_load(r.o.kubeconfig, r.o.context, &probe, &d);
		kube_config_free(probe);
		if (err < 0) {
			diag_print(&d, "waygate");
			diag_fini(&d);
			return 2;
		}
		diag_fini(&d);
	}

	/* the user to become: a named one must exist, the board's may not */
	struct priv_user pu = {0};
	bool drop = false;
	if (r.o.user && r.o.user[0]) {
		if (priv_lookup(r.o.user, &pu, &d) < 0) {
			diag_print(&d, "waygate run");
			diag_fini(&d);
			return 2;
		}
		drop = true;
	} else if (!r.o.user && WG_BOARD_USER[0]) {
		drop = priv_lookup(WG_BOARD_USER, &pu, &d) == 0;
		if (!drop)
			log_warn("event=privileges_kept reason=\"board user missing\" user=%s",
				 log_q(WG_BOARD_USER));
		diag_fini(&d);
	}

	/* as many open files as the system lets this process have: the box's
	 * connection cap is bounded by them (proxy_new) */
	struct rlimit nofile;
	if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
		nofile.rlim_cur = nofile.rlim_max;
		setrlimit(RLIMIT_NOFILE, &nofile);
	}

	/* the board's limits, then the file's on top: both checked before
	 * anything is served, a bad line exits 2 naming file and line */
	struct limits_conf lc = {.box = {.max_connections = WG_BOARD_MAX_CONNS}};
	if (limits_parse(&lc, WG_BOARD_LIMITS, "board " WG_BOARD_NAME, &d) < 0 ||
	    limits_load_file(&lc, r.o.limits_path ? r.o.limits_path : DEFAULT_LIMITS,
			     r.o.limits_path != NULL, &d) < 0) {
		diag_print(&d, "waygate");
		diag_fini(&d);
		limits_conf_fini(&lc);
		return 2;
	}
	/* The page check of the whole file waits until the stored snapshot
	 * (checked by its own digest) is served: see store_check below. */
	r.store = store_open_deferred(r.o.state_dir, &d);
	if (!r.store) {
		diag_print(&d, "waygate");
		diag_fini(&d);
		limits_conf_fini(&lc);
		return 1;
	}
	diag_fini(&d);

	r.cipher_pref = WG_BOARD_CIPHER_PREF_CHACHA ? TLS_PREF_CHACHA_FIRST : TLS_PREF_AES_FIRST;
	struct proxy_config pc = {
		.workers = r.o.workers,
		.limits = lc.box,
		.port_limits = lc.ports,
		.n_port_limits = lc.n_ports,
		.access_log_fd = r.access_log_fd = open_access_log(r.o.access_log),
		.cipher_pref = r.cipher_pref,
		.via_disabled = r.o.via_off,
	};
	r.loop = loop_new();
	r.set = gw_objset_new();
	r.proxy = r.loop && r.set ? proxy_new(&pc) : NULL;
	limits_conf_fini(&lc); /* proxy_new keeps its own copy */
	if (!r.proxy || proxy_start(r.proxy) < 0) {
		log_error("event=start_failed what=proxy");
		rc = 1;
		goto out;
	}
	loop_io_add(r.loop, &r.sig_io, r.sig_fd, LOOP_READ, on_signal, &r);
	if (r.access_log_fd > STDERR_FILENO && r.o.access_log_max)
		timer_add(r.loop, &r.access_log_timer, ACCESS_LOG_CHECK_MS, on_access_log_timer, &r);

	/* Last-known-good first: serve before any source is read. */
	err = run_serve_stored(&r, 0);
	if (err == 0)
		log_info("event=restored revision=%llu", (unsigned long long)r.serving_revision);
	err = store_check(r.store, &d);
	if (err < 0) {
		diag_print(&d, "waygate");
		diag_fini(&d);
		rc = 1;
		goto out;
	}
	if (err == 1) {
		/* The file was damaged and rebuilt from what could be read: serve
		 * what it holds now (if it holds nothing, what is served stays
		 * until a source gives a configuration). */
		uint64_t was = r.serving_revision;
		if (run_serve_stored(&r, 0) == 0)
			log_warn("event=restored_after_recovery revision=%llu was=%llu",
				 (unsigned long long)r.serving_revision, (unsigned long long)was);
	}

	if (r.o.config_path) {
		if (load_local(&r, true) < 0 && !r.current) {
			rc = 2;
			goto out;
		}
	} else {
		char msg[256];
		if (run_use_cluster(&r, r.o.kubeconfig, msg, sizeof(msg)) < 0) {
			fprintf(stderr, "waygate run: %s\n", msg);
			rc = 1;
			goto out;
		}
	}

	if (strcmp(r.o.ui_listen, "off") != 0)
		r.ui = run_ui_start(&r);
	/* the first sockets are bound: nothing else needs root */
	if (drop && priv_drop(&pu, r.o.state_dir) < 0) {
		rc = 1;
		goto out;
	}

	err = loop_run(r.loop);
	if (err < 0) {
		log_error("event=loop_failed error=%s", log_q(err_str(err)));
		rc = 1;
	}
	log_info("event=draining deadline_ms=%u", r.o.drain_ms);
	proxy_drain(r.proxy, r.o.drain_ms);
out:
	run_ui_shutdown();
	ui_stop(r.ui);
	kube_watch_free(r.kw);
	if (r.proxy)
		proxy_free(r.proxy);
	run_set_current(&r, NULL);
	gw_objset_free(r.set);
	gw_incr_free(r.incr);
	gw_image_cache_free(r.image_cache);
	kube_config_free(r.kcfg);
	kube_local_cache_free(r.local_cache);
	free(r.kubeconfig_path);
	if (r.store)
		store_close(r.store);
	for (size_t i = 0; i < r.n_prev; i++) {
		free(r.prev_gateways[i]);
		free(r.prev_addresses[i]);
	}
	free(r.prev_gateways);
	free(r.prev_addresses);
	loop_free(r.loop);
	if (r.sig_fd != -1)
		close(r.sig_fd);
	log_info("event=exit code=%d", rc);
	return rc;
}
