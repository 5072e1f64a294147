/* SPDX-License-Identifier: MIT */
/*
 * cluster_once.c: reads a cluster's objects once with the watch client on a
 * private loop, until every resource is listed or a deadline passes: what
 * `waygate check --kubeconfig` and the UI's kubeconfig connection test do.
 * Writes nothing to the cluster. Runs on the calling thread, blocking it.
 */
#include <errno.h>

#include "cli/internal.h"
#include "core/loop.h"
#include "kube/kube.h"

#ifndef WG_VERSION
#define WG_VERSION "0.0.0"
#endif

struct sync_wait {
	struct loop *loop;
	struct kube_watch *kw;
	struct timer deadline;
	struct timer poll;
	bool timed_out;
};

static void on_sync_poll(struct timer *t)
{
	struct sync_wait *w = t->arg;
	if (kube_watch_synced(w->kw))
		loop_stop(w->loop);
	else
		timer_add(w->loop, &w->poll, 50, on_sync_poll, w);
}

static void on_sync_deadline(struct timer *t)
{
	struct sync_wait *w = t->arg;
	w->timed_out = true;
	loop_stop(w->loop);
}

static void on_change_ignored(void *arg) { (void)arg; }

int cluster_read_once(const char *kubeconfig, const char *context, struct gw_objset *set,
		      uint32_t timeout_ms, struct diag *d)
{
	struct kube_config *cfg = NULL;
	struct sync_wait w = {0};
	struct kube_watch_opts ko = {.user_agent = "waygate/" WG_VERSION " (read-once)"};
	int err = kube_config_load(kubeconfig, context, &cfg, d);

	if (err < 0)
		return err;
	w.loop = loop_new();
	w.kw = w.loop ? kube_watch_new(w.loop, cfg, &ko, set, on_change_ignored, NULL) : NULL;
	if (!w.kw || kube_watch_start(w.kw) < 0) {
		diag_add(d, DIAG_ERROR, kubeconfig, kube_config_context(cfg), NULL,
			 "cannot start the watch client");
		err = -EINVAL;
		goto out;
	}
	timer_add(w.loop, &w.deadline, timeout_ms, on_sync_deadline, &w);
	timer_add(w.loop, &w.poll, 50, on_sync_poll, &w);
	loop_run(w.loop);
	if (w.timed_out) {
		struct kube_health h;
		kube_watch_health(w.kw, &h);
		diag_add(d, DIAG_ERROR, kubeconfig, kube_config_context(cfg), NULL,
			 "could not read the cluster within %u s (server %s): %s", timeout_ms / 1000,
			 kube_config_server(cfg), h.last_error[0] ? h.last_error : "no answer");
		err = -ETIMEDOUT;
	}
out:
	kube_watch_free(w.kw);
	loop_free(w.loop);
	kube_config_free(cfg);
	return err;
}

