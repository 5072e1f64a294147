/* SPDX-License-Identifier: MIT */
/*
 * check.c: `waygate check (--kubeconfig FILE [--context NAME] | --config
 * PATH)`. Loads a configuration exactly as `run` would, reconciles it, prints
 * what would be served (listeners, routes, backends) and every problem found
 * (naming file, object and field), and exits 2 when there are errors. It
 * serves nothing and writes nothing: certificates that local mode would
 * generate are generated into a temporary folder that is removed again, and
 * in cluster mode the objects are only read.
 */
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/internal.h"
#include "core/log.h"
#include "core/loop.h"
#include "gwapi/objset.h"
#include "gwapi/reconcile.h"
#include "kube/kube.h"
#include "proxy/snapshot.h"

#define SYNC_TIMEOUT_MS 30000

static const char *proto_name(enum snap_proto p)
{
	static const char *const names[] = {"HTTP", "HTTPS", "TLS", "TCP", "UDP"};
	return p <= SNAP_P_UDP ? names[p] : "?";
}

static const char *path_type_name(enum snap_path_match t)
{
	static const char *const names[] = {"PathPrefix", "Exact", "RegularExpression"};
	return t <= SNAP_PM_REGEX ? names[t] : "?";
}

static void print_backends(FILE *f, const struct snap_backend *b, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		fprintf(f, "%s%s w=%u", i ? ", " : " -> ", b[i].name ? b[i].name : "?", b[i].weight);
		if (b[i].invalid_status)
			fprintf(f, " (invalid: %d)", b[i].invalid_status);
		else
			fprintf(f, " (%zu endpoint%s)", b[i].n_endpoints, b[i].n_endpoints == 1 ? "" : "s");
	}
}

static void print_snapshot(FILE *f, const struct snapshot *s)
{
	for (size_t i = 0; i < s->n_sockets; i++) {
		const struct snap_socket *so = &s->sockets[i];
		fprintf(f, "%s %s:%u\n", so->transport == SNAP_T_UDP ? "udp" : "tcp", so->addr, so->port);
		for (size_t j = 0; j < so->n_listeners; j++) {
			const struct snap_listener *l = so->listeners[j];
			fprintf(f, "  listener %s/%s %s hostname=%s", l->gateway, l->name,
				proto_name(l->proto), l->hostname ? l->hostname : "*");
			if (l->n_certs)
				fprintf(f, " certs=%zu", l->n_certs);
			fputc('\n', f);
			for (size_t k = 0; k < l->n_http_rules; k++) {
				const struct snap_http_rule *r = &l->http_rules[k];
				fprintf(f, "    %s", r->route);
				if (r->rule_name)
					fprintf(f, "#%s", r->rule_name);
				fprintf(f, " host=");
				for (size_t h = 0; h < r->n_hostnames; h++)
					fprintf(f, "%s%s", h ? "," : "", r->hostnames[h]);
				if (!r->n_hostnames)
					fputc('*', f);
				fprintf(f, " %s %s", path_type_name(r->match.path_type), r->match.path);
				if (r->match.method)
					fprintf(f, " method=%s", r->match.method);
				for (size_t h = 0; h < r->match.n_headers; h++)
					fprintf(f, " header:%s=%s", r->match.headers[h].name,
						r->match.headers[h].value);
				for (size_t h = 0; h < r->match.n_query; h++)
					fprintf(f, " query:%s=%s", r->match.query[h].name, r->match.query[h].value);
				if (r->n_filters)
					fprintf(f, " filters=%zu", r->n_filters);
				print_backends(f, r->backends, r->n_backends);
				fputc('\n', f);
			}
			for (size_t k = 0; k < l->n_tls_routes; k++) {
				const struct snap_tls_route *t = &l->tls_routes[k];
				fprintf(f, "    %s sni=", t->route);
				for (size_t h = 0; h < t->n_hostnames; h++)
					fprintf(f, "%s%s", h ? "," : "", t->hostnames[h]);
				if (!t->n_hostnames)
					fputc('*', f);
				print_backends(f, t->backends, t->n_backends);
				fputc('\n', f);
			}
			if (l->n_l4_backends) {
				fprintf(f, "    %s", l->l4_route ? l->l4_route : "?");
				print_backends(f, l->l4_backends, l->n_l4_backends);
				fputc('\n', f);
			}
		}
	}
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

int cmd_check(int argc, char **argv)
{
	static const struct flag_spec specs[] = {
		{"kubeconfig", true}, {"context", true}, {"config", true},
		{"controller-name", true}, {"address-pool", true}, {"help", false}, {NULL, false},
	};
	const char *kubeconfig = NULL, *context = NULL, *config = NULL;
	const char *controller = "waygate.dev/gateway-controller", *pool = NULL, *name, *value;
	char tmpdir[] = "/tmp/waygate-check-XXXXXX";
	struct gw_objset *set = NULL;
	struct gw_result res = {0};
	struct diag d = {0};
	int i = 1, r, rc = 0;

	log_set_level(LOG_ERROR);
	while ((r = flag_next(argc, argv, &i, specs, &name, &value)) > 0) {
		if (!name) {
			fprintf(stderr, "waygate check: unexpected argument '%s'\n", value);
			return 2;
		}
		if (!strcmp(name, "help")) {
			printf("usage: waygate check (--kubeconfig FILE [--context NAME] | --config PATH)\n"
			       "                     [--controller-name NAME] [--address-pool CIDR]\n");
			return 0;
		}
		if (!strcmp(name, "kubeconfig"))
			kubeconfig = value;
		else if (!strcmp(name, "context"))
			context = value;
		else if (!strcmp(name, "config"))
			config = value;
		else if (!strcmp(name, "controller-name"))
			controller = value;
		else if (!strcmp(name, "address-pool"))
			pool = value;
	}
	if (r < 0) {
		fprintf(stderr, "waygate check: --%s: %s\n", name ? name : "?",
			r == -ENOENT ? "unknown flag" : "needs a value");
		return 2;
	}
	if (!!kubeconfig == !!config) {
		fprintf(stderr, "waygate check: give exactly one of --kubeconfig FILE or --config PATH\n");
		return 2;
	}
	set = gw_objset_new();
	if (!set)
		return 1;
	if (config) {
		if (!mkdtemp(tmpdir)) {
			perror("waygate check: temporary folder");
			rc = 1;
			goto out;
		}
		r = local_config_load(config, tmpdir, set, NULL, &d);
		nftw(tmpdir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
	} else {
		r = cluster_read_once(kubeconfig, context, set, SYNC_TIMEOUT_MS, &d);
	}
	if (r < 0 && gw_objset_count(set, GW_K_GATEWAY) == 0) {
		diag_print(&d, "waygate check");
		rc = 2;
		goto out;
	}
	struct gw_options opts = {
		.controller_name = controller,
		.address_pool = pool,
		.now_ms = clock_wall_ms(),
		.supported_features = wg_supported_features,
	};
	if (gw_reconcile(set, &opts, &res) < 0) {
		fprintf(stderr, "waygate check: out of memory\n");
		rc = 1;
		goto out;
	}
	print_snapshot(stdout, res.snap);
	diag_print(&d, "waygate check");
	diag_print(&res.diag, "waygate check");
	size_t errors = d.errors + res.diag.errors;
	printf("%zu error%s, %zu warning%s\n", errors, errors == 1 ? "" : "s",
	       d.warnings + res.diag.warnings, d.warnings + res.diag.warnings == 1 ? "" : "s");
	rc = errors ? 2 : 0;
	snap_unref(res.snap);
	res.snap = NULL;
out:
	gw_result_fini(&res);
	gw_objset_free(set);
	diag_fini(&d);
	return rc;
}
