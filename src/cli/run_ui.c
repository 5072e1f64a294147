/* SPDX-License-Identifier: MIT */
/*
 * run_ui.c: the bridge between the UI thread and `waygate run`'s control
 * thread. The UI reaches control-thread state only through what is here:
 * the served snapshot through a mutex-guarded reference, counters through
 * the proxy's relaxed reads, cluster health through a copy the control
 * thread refreshes every second, and changes (pinning a revision, a new
 * kubeconfig, the mode) through one request slot that the control loop
 * serves on its own thread after loop_wake(). The UI thread blocks until
 * its request is done; at shutdown pending and new requests are refused so
 * ui_stop() never waits on a loop that no longer runs.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/build_info.h"
#include "cli/internal.h"
#include "cli/run.h"
#include "core/diag.h"
#include "core/err.h"
#include "core/log.h"
#include "core/str.h"
#include "gwapi/objset.h"
#include "kube/kube.h"
#include "proxy/proxy.h"
#include "proxy/snapshot.h"
#include "store/store.h"
#include "tls/tls.h"
#include "ui/ui.h"


#define KUBECONFIG_TEST_MS 10000
#define KUBECONFIG_MAX (1u << 20)

enum ctl_kind { CTL_PIN = 0, CTL_USE_CLUSTER, CTL_USE_LOCAL };

struct ctl_request {
	enum ctl_kind kind;
	uint64_t rev;         /* CTL_PIN: 0 = unpin */
	const char *path;     /* CTL_USE_CLUSTER: the kubeconfig to use */
	int result;
	char msg[256];
	bool done;
};

static pthread_mutex_t ui_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t ui_cond = PTHREAD_COND_INITIALIZER;
static struct ctl_request *ctl_pending;
static bool ctl_closed;
static struct ui_cluster cluster_copy;

void run_set_current(struct runner *r, struct snapshot *snap)
{
	struct snapshot *old;

	pthread_mutex_lock(&ui_lock);
	old = r->current;
	r->current = snap;
	pthread_mutex_unlock(&ui_lock);
	snap_unref(old);
}

static struct snapshot *ui_get_snapshot(void *arg)
{
	struct runner *r = arg;
	struct snapshot *s;

	pthread_mutex_lock(&ui_lock);
	s = r->current;
	if (s)
		snap_ref(s);
	pthread_mutex_unlock(&ui_lock);
	return s;
}

static void ui_get_stats(void *arg, struct ui_stats *out)
{
	struct runner *r = arg;
	struct proxy_stats ps;

	proxy_get_stats(r->proxy, &ps);
	memset(out, 0, sizeof(*out));
	out->requests = ps.requests;
	memcpy(out->responses_by_class, ps.responses_by_class, sizeof(out->responses_by_class));
	out->bytes_in = ps.bytes_in;
	out->bytes_out = ps.bytes_out;
	out->upstream_errors = ps.upstream_errors;
	out->active_connections = ps.active_connections;
	out->total_connections = ps.total_connections;
	_Static_assert(sizeof(out->latency_buckets) == sizeof(ps.latency_buckets), "buckets");
	memcpy(out->latency_buckets, ps.latency_buckets, sizeof(out->latency_buckets));
	out->latency_sum_us = ps.latency_sum_us;

	struct proxy_port_conns pc[UI_MAX_PORTS];
	out->n_ports = proxy_port_conns(r->proxy, pc, UI_MAX_PORTS);
	for (size_t i = 0; i < out->n_ports; i++) {
		out->ports[i].port = pc[i].port;
		out->ports[i].active = pc[i].active;
	}
}

static size_t ui_get_route_stats(void *arg, struct ui_route_stats *out, size_t max)
{
	struct runner *r = arg;
	struct proxy_route_stats *ps = max ? calloc(max, sizeof(*ps)) : NULL;
	size_t n;

	if (max && !ps)
		return 0; /* nothing filled in: report nothing */
	n = proxy_route_stats(r->proxy, ps, max);

	_Static_assert(UI_ROUTE_LATENCY_BUCKETS == PROXY_ROUTE_LAT_BUCKETS, "route buckets");
	for (size_t i = 0; ps && i < n && i < max; i++) {
		out[i] = (struct ui_route_stats){
			.id = ps[i].id,
			.route = ps[i].route,
			.rule = ps[i].rule_index,
			.requests = ps[i].requests,
			.bytes_in = ps[i].bytes_in,
			.bytes_out = ps[i].bytes_out,
			.latency_sum_us = ps[i].latency_sum_us,
			.upstream_errors = ps[i].upstream_errors,
		};
		memcpy(out[i].responses_by_class, ps[i].responses_by_class,
		       sizeof(out[i].responses_by_class));
		memcpy(out[i].latency_buckets, ps[i].latency_buckets,
		       sizeof(out[i].latency_buckets));
	}
	free(ps);
	return n;
}

static void ui_get_cluster(void *arg, struct ui_cluster *out)
{
	(void)arg;
	pthread_mutex_lock(&ui_lock);
	*out = cluster_copy;
	pthread_mutex_unlock(&ui_lock);
}

/* Control thread: the reflectors' health as the UI shows it. */
static void fill_watches(const struct kube_watch *kw, struct ui_cluster *c)
{
	struct kube_reflector_health h[UI_MAX_WATCHES];
	size_t n = kube_watch_reflectors(kw, h, UI_MAX_WATCHES);

	c->n_watches_total = n;
	c->n_watches = n < UI_MAX_WATCHES ? n : UI_MAX_WATCHES;
	for (size_t i = 0; i < c->n_watches; i++) {
		struct ui_watch *u = &c->watches[i];

		str_lcpy(u->resource, h[i].resource, sizeof(u->resource));
		str_lcpy(u->ns, h[i].ns ? h[i].ns : "", sizeof(u->ns));
		str_lcpy(u->state, kube_watch_state_name(h[i].state), sizeof(u->state));
		u->synced = h[i].listed;
		u->up = h[i].stream_open;
		u->last_event_ms = h[i].last_event_ms;
		str_lcpy(u->resource_version, h[i].resource_version, sizeof(u->resource_version));
		u->lists = h[i].lists;
		u->events = h[i].events;
		u->relists = h[i].relists;
		u->errors = h[i].errors;
		str_lcpy(u->last_error, h[i].last_error, sizeof(u->last_error));
	}
}

void run_ui_refresh(struct runner *r)
{
	struct ui_cluster c = {.mode = r->kw ? UI_MODE_CLUSTER : UI_MODE_LOCAL};

	if (r->kw) {
		struct kube_health h;
		kube_watch_health(r->kw, &h);
		str_lcpy(c.server, h.server ? h.server : "", sizeof(c.server));
		str_lcpy(c.context, h.context ? h.context : "", sizeof(c.context));
		c.connected = h.connected;
		c.insecure = h.insecure;
		c.last_sync_ms = h.last_sync_ms;
		str_lcpy(c.last_error, h.last_error, sizeof(c.last_error));
		fill_watches(r->kw, &c);
	} else {
		str_lcpy(c.config_path, r->local_path ? r->local_path : "", sizeof(c.config_path));
		c.connected = true;
	}
	c.serving_revision = r->serving_revision;
	c.pinned = r->serving_pinned;
	pthread_mutex_lock(&ui_lock);
	cluster_copy = c;
	pthread_mutex_unlock(&ui_lock);
}

static void on_health_timer(struct timer *t)
{
	struct runner *r = t->arg;
	run_ui_refresh(r);
	timer_add(r->loop, t, 1000, on_health_timer, r);
}

/* ---- requests, carried out on the control thread ---- */

static void do_pin(struct runner *r, struct ctl_request *q)
{
	if (q->rev == 0) {
		q->result = store_unpin(r->store, "ui", "admin");
		if (q->result < 0)
			return;
		run_reconcile_and_serve(r, r->kw ? "cluster" : "file");
		if (r->serving_pinned || !r->current)
			run_serve_stored(r, 0); /* the live set is the pinned one */
		snprintf(q->msg, sizeof(q->msg), "unpinned: serving revision %llu",
			 (unsigned long long)r->serving_revision);
		return;
	}
	q->result = store_pin(r->store, q->rev, "ui", "admin");
	if (q->result == 0)
		q->result = run_serve_stored(r, q->rev);
	if (q->result == 0)
		snprintf(q->msg, sizeof(q->msg), "revision %llu pinned and served",
			 (unsigned long long)q->rev);
}

static void handle_ctl(struct runner *r, struct ctl_request *q)
{
	switch (q->kind) {
	case CTL_PIN:
		do_pin(r, q);
		break;
	case CTL_USE_CLUSTER:
		q->result = run_use_cluster(r, q->path, q->msg, sizeof(q->msg));
		break;
	case CTL_USE_LOCAL:
		q->result = run_use_local(r, q->msg, sizeof(q->msg));
		break;
	}
	if (q->result < 0 && !q->msg[0])
		snprintf(q->msg, sizeof(q->msg), "%s",
			 q->result == -WG_ENOTFOUND ? "no such revision" : err_str(q->result));
	run_ui_refresh(r);
}

static void on_control_wake(struct loop *loop, void *arg)
{
	struct runner *r = arg;
	struct ctl_request *q;
	(void)loop;

	pthread_mutex_lock(&ui_lock);
	q = ctl_pending;
	pthread_mutex_unlock(&ui_lock);
	if (!q)
		return;
	handle_ctl(r, q);
	pthread_mutex_lock(&ui_lock);
	q->done = true;
	ctl_pending = NULL;
	pthread_cond_broadcast(&ui_cond);
	pthread_mutex_unlock(&ui_lock);
}

/* UI thread: hands q to the control thread and waits until it is done or
 * refused at shutdown. */
static void ctl_call(struct runner *r, struct ctl_request *q)
{
	pthread_mutex_lock(&ui_lock);
	while (ctl_pending && !ctl_closed)
		pthread_cond_wait(&ui_cond, &ui_lock);
	if (ctl_closed) {
		pthread_mutex_unlock(&ui_lock);
		q->result = -ECANCELED;
		snprintf(q->msg, sizeof(q->msg), "waygate is shutting down");
		return;
	}
	ctl_pending = q;
	pthread_mutex_unlock(&ui_lock);
	loop_wake(r->loop);
	pthread_mutex_lock(&ui_lock);
	while (!q->done)
		pthread_cond_wait(&ui_cond, &ui_lock);
	pthread_mutex_unlock(&ui_lock);
}

void run_ui_shutdown(void)
{
	pthread_mutex_lock(&ui_lock);
	ctl_closed = true;
	if (ctl_pending) {
		ctl_pending->result = -ECANCELED;
		snprintf(ctl_pending->msg, sizeof(ctl_pending->msg), "waygate is shutting down");
		ctl_pending->done = true;
		ctl_pending = NULL;
	}
	pthread_cond_broadcast(&ui_cond);
	pthread_mutex_unlock(&ui_lock);
}

static int ui_pin_revision(void *arg, uint64_t rev, char *msg, size_t msgsz)
{
	struct ctl_request q = {.kind = CTL_PIN, .rev = rev};

	ctl_call(arg, &q);
	snprintf(msg, msgsz, "%s", q.msg);
	return q.result;
}

static int write_private(const char *path, const char *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	if (fd == -1)
		return -errno;
	if (write(fd, data, len) != (ssize_t)len || fsync(fd) == -1) {
		int err = errno ? -errno : -EIO;
		close(fd);
		unlink(path);
		return err;
	}
	return close(fd) == -1 ? -errno : 0;
}

/*
 * UI thread: validates an uploaded kubeconfig, tests that the cluster
 * answers with it, keeps it as STATE_DIR/kubeconfig (0600; the firmware's
 * init starts cluster mode when it exists) and switches to it.
 */
static int ui_apply_kubeconfig(void *arg, const char *yaml, size_t len, const char *context,
			       char *msg, size_t msgsz)
{
	struct runner *r = arg;
	char tmp[1024], final[1024], line[600];
	struct diag d = {0};
	struct gw_objset *probe = NULL;
	int err;

	if (len == 0 || len > KUBECONFIG_MAX) {
		snprintf(msg, msgsz, "a kubeconfig is between 1 byte and 1 MiB");
		return -EINVAL;
	}
	snprintf(tmp, sizeof(tmp), "%s/kubeconfig.upload", r->o.state_dir);
	snprintf(final, sizeof(final), "%s/kubeconfig", r->o.state_dir);
	err = write_private(tmp, yaml, len);
	if (err < 0) {
		snprintf(msg, msgsz, "cannot save the kubeconfig: %s", strerror(-err));
		return err;
	}
	probe = gw_objset_new();
	err = probe ? cluster_read_once(tmp, context, probe, KUBECONFIG_TEST_MS, &d) : -ENOMEM;
	gw_objset_free(probe);
	if (err < 0) {
		snprintf(msg, msgsz, "%s",
			 d.n ? diag_format(&d.v[0], line, sizeof(line)) : err_str(err));
		diag_fini(&d);
		unlink(tmp);
		return err;
	}
	diag_fini(&d);
	if (rename(tmp, final) == -1) {
		err = -errno;
		snprintf(msg, msgsz, "cannot keep the kubeconfig: %s", strerror(errno));
		unlink(tmp);
		return err;
	}
	store_audit(r->store, "ui", "admin", "kubeconfig uploaded and tested");
	struct ctl_request q = {.kind = CTL_USE_CLUSTER, .path = final};
	ctl_call(r, &q);
	snprintf(msg, msgsz, "%s", q.msg);
	return q.result;
}

static int ui_set_mode(void *arg, enum ui_mode mode, char *msg, size_t msgsz)
{
	struct runner *r = arg;
	char active[1024], parked[1024];
	struct ctl_request q = {.kind = mode == UI_MODE_CLUSTER ? CTL_USE_CLUSTER : CTL_USE_LOCAL};

	snprintf(active, sizeof(active), "%s/kubeconfig", r->o.state_dir);
	snprintf(parked, sizeof(parked), "%s/kubeconfig.disabled", r->o.state_dir);
	if (mode == UI_MODE_CLUSTER) {
		if (access(active, R_OK) != 0 && rename(parked, active) == -1) {
			snprintf(msg, msgsz, "upload a kubeconfig first");
			return -WG_ENOTFOUND;
		}
		q.path = active;
	} else if (access(active, F_OK) == 0 && rename(active, parked) == -1) {
		snprintf(msg, msgsz, "cannot set the kubeconfig aside: %s", strerror(errno));
		return -errno;
	}
	ctl_call(r, &q);
	if (q.result == 0)
		store_audit(r->store, "ui", "admin",
			    mode == UI_MODE_CLUSTER ? "switched to cluster mode" : "switched to local mode");
	snprintf(msg, msgsz, "%s", q.msg);
	return q.result;
}

struct ui *run_ui_start(struct runner *r)
{
	struct ui_config uc = {
		.listen = r->o.ui_listen,
		.state_dir = r->o.state_dir,
		.version = WG_VERSION,
		.board = WG_BOARD_NAME,
		.cipher_pref = r->cipher_pref,
		.cb = {
			.get_snapshot = ui_get_snapshot,
			.get_stats = ui_get_stats,
			.get_route_stats = ui_get_route_stats,
			.get_cluster = ui_get_cluster,
			.pin_revision = ui_pin_revision,
			.apply_kubeconfig = ui_apply_kubeconfig,
			.set_mode = ui_set_mode,
		},
		.cb_arg = r,
	};
	struct diag d = {0};
	struct ui *ui;

	loop_set_wake(r->loop, on_control_wake, r);
	run_ui_refresh(r);
	timer_add(r->loop, &r->health_timer, 1000, on_health_timer, r);
	ui = ui_start(&uc, &d);
	diag_log(&d, LOG_ERROR, "ui_failed");
	diag_fini(&d);
	return ui;
}
