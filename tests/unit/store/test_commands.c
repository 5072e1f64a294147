/* SPDX-License-Identifier: MIT */
/*
 * test_commands.c: `waygate routes` (the serving table, a given revision,
 * --list, missing revisions and stores, bad flags) and `waygate passwd`
 * (one line from stdin when not a terminal, too short, none), run in
 * process with stdin/stdout/stderr redirected to files.
 */
#include "helpers.h"

#include <fcntl.h>

#include "check.h"
#include "cli/cli.h"
#include "gwapi/reconcile.h"
#include "proxy/snapshot.h"

static const char *SNAP =
	"{\"revision\":0,\"compiledMs\":1,\"sockets\":["
	"{\"address\":\"0.0.0.0\",\"port\":8080,\"transport\":\"TCP\",\"listeners\":["
	"{\"gateway\":\"default/gw\",\"name\":\"http\",\"protocol\":\"HTTP\",\"rules\":["
	"{\"route\":\"default/web\",\"ruleIndex\":0,\"hostnames\":[\"example.com\"],"
	"\"match\":{\"pathType\":\"PathPrefix\",\"path\":\"/api\",\"method\":\"GET\","
	"\"headers\":[{\"type\":\"Exact\",\"name\":\"x-env\",\"value\":\"canary\"}]},"
	"\"backends\":[{\"name\":\"default/api:8080\",\"weight\":90,\"protocol\":\"http1\","
	"\"endpoints\":[{\"address\":\"10.0.0.1\",\"port\":8080},"
	"{\"address\":\"10.0.0.2\",\"port\":8080}]},"
	"{\"name\":\"default/api-v2:8080\",\"weight\":10,\"protocol\":\"http1\","
	"\"endpoints\":[]}]}]}]},"
	"{\"address\":\"0.0.0.0\",\"port\":5353,\"transport\":\"UDP\",\"listeners\":["
	"{\"gateway\":\"default/gw\",\"name\":\"dns\",\"protocol\":\"UDP\","
	"\"route\":\"default/dns\",\"backends\":[{\"name\":\"default/dns:53\",\"weight\":1,"
	"\"protocol\":\"http1\",\"endpoints\":[{\"address\":\"10.0.0.9\",\"port\":53}]}]}]}]}";

struct captured {
	char out[8192];
	char err[4096];
	int rc;
};

static void slurp(int fd, char *buf, size_t size)
{
	ssize_t n;

	lseek(fd, 0, SEEK_SET);
	n = read(fd, buf, size - 1);
	buf[n > 0 ? n : 0] = '\0';
}

/* Runs cmd with argv, stdin from `input` (NULL = empty), capturing stdout
 * and stderr. */
static void run_cmd(const char *dir, int (*cmd)(int, char **), int argc, char **argv,
		    const char *input, struct captured *c)
{
	char p_in[160], p_out[160], p_err[160];
	int fin, fout, ferr, s0, s1, s2;

	snprintf(p_in, sizeof(p_in), "%s/stdin", dir);
	snprintf(p_out, sizeof(p_out), "%s/stdout", dir);
	snprintf(p_err, sizeof(p_err), "%s/stderr", dir);
	fin = open(p_in, O_RDWR | O_CREAT | O_TRUNC, 0600);
	fout = open(p_out, O_RDWR | O_CREAT | O_TRUNC, 0600);
	ferr = open(p_err, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (input)
		(void)!write(fin, input, strlen(input));
	lseek(fin, 0, SEEK_SET);
	fflush(stdout);
	fflush(stderr);
	s0 = dup(0);
	s1 = dup(1);
	s2 = dup(2);
	dup2(fin, 0);
	dup2(fout, 1);
	dup2(ferr, 2);
	c->rc = cmd(argc, argv);
	fflush(stdout);
	fflush(stderr);
	dup2(s0, 0);
	dup2(s1, 1);
	dup2(s2, 2);
	close(s0);
	close(s1);
	close(s2);
	slurp(fout, c->out, sizeof(c->out));
	slurp(ferr, c->err, sizeof(c->err));
	close(fin);
	close(fout);
	close(ferr);
	unlink(p_in);
	unlink(p_out);
	unlink(p_err);
}

TEST(store_cmd_routes_prints_serving_table)
{
	char buf[64];
	char *dir = th_tmpdir(buf);
	struct store *s = th_open(dir);
	struct gw_objset *set = gw_objset_new();
	struct captured *c = calloc(1, sizeof(*c));
	uint64_t rev = 0;

	th_put(set, "HTTPRoute", "default", "web", "1");
	CHECK_EQ_INT(store_commit(s, set, SNAP, "file", NULL, "initial", &rev), 0);
	th_put(set, "HTTPRoute", "default", "web", "2");
	CHECK_EQ_INT(store_commit(s, set, "{\"sockets\":[]}", "cluster", NULL, NULL, &rev), 0);
	CHECK_EQ_INT(store_pin(s, 1, "ui", "admin"), 0);

	/* The pinned revision is the serving one. */
	char *argv1[] = {"routes", "--state-dir", dir, NULL};
	run_cmd(dir, cmd_routes, 3, argv1, NULL, c);
	CHECK_EQ_INT(c->rc, 0);
	CHECK(strncmp(c->out, "revision 1 (serving, pinned) ", 29) == 0);
	CHECK(strstr(c->out, " source=file objects=1 \"initial\"\n") != NULL);
	CHECK(strstr(c->out, "\ntcp 0.0.0.0:8080\n  listener default/gw/http HTTP hostname=*\n"
			     "    default/web host=example.com PathPrefix /api method=GET"
			     " header:x-env=canary -> default/api:8080 w=90 (2 endpoints),"
			     " default/api-v2:8080 w=10 (0 endpoints)\n") != NULL);
	CHECK(strstr(c->out, "udp 0.0.0.0:5353\n  listener default/gw/dns UDP hostname=*\n"
			     "    default/dns -> default/dns:53 w=1 (1 endpoint)\n") != NULL);

	/* A given revision. */
	char *argv2[] = {"routes", "--state-dir", dir, "--revision", "2", NULL};
	run_cmd(dir, cmd_routes, 5, argv2, NULL, c);
	CHECK_EQ_INT(c->rc, 0);
	CHECK(strncmp(c->out, "revision 2 2", 12) == 0);
	CHECK(strstr(c->out, "(no listeners)\n") != NULL);

	/* The list of revisions. */
	char *argv3[] = {"routes", "--list", "--state-dir", dir, NULL};
	run_cmd(dir, cmd_routes, 4, argv3, NULL, c);
	CHECK_EQ_INT(c->rc, 0);
	CHECK(strncmp(c->out, "revision 2 ", 11) == 0);
	CHECK(strstr(c->out, "\nrevision 1 (serving, pinned) ") != NULL);

	/* What changed between two revisions. */
	char *argv8[] = {"routes", "--state-dir", dir, "--diff", "1,2", NULL};
	run_cmd(dir, cmd_routes, 5, argv8, NULL, c);
	CHECK_EQ_INT(c->rc, 0);
	CHECK_EQ_STR(c->out, "revision 1 -> 2: 1 object differs\n~ HTTPRoute default/web\n");
	char *argv9[] = {"routes", "--state-dir", dir, "--diff", "1,7", NULL};
	run_cmd(dir, cmd_routes, 5, argv9, NULL, c);
	CHECK_EQ_INT(c->rc, 1);
	char *argv10[] = {"routes", "--diff", "12", NULL};
	run_cmd(dir, cmd_routes, 3, argv10, NULL, c);
	CHECK_EQ_INT(c->rc, 2);

	/* Errors: unknown revision, bad number, unknown flag, no store. */
	char *argv4[] = {"routes", "--state-dir", dir, "--revision", "9", NULL};
	run_cmd(dir, cmd_routes, 5, argv4, NULL, c);
	CHECK_EQ_INT(c->rc, 1);
	CHECK(strstr(c->err, "revision 9 does not exist") != NULL);
	char *argv5[] = {"routes", "--revision", "x1", NULL};
	run_cmd(dir, cmd_routes, 3, argv5, NULL, c);
	CHECK_EQ_INT(c->rc, 2);
	char *argv6[] = {"routes", "--bogus", NULL};
	run_cmd(dir, cmd_routes, 2, argv6, NULL, c);
	CHECK_EQ_INT(c->rc, 2);
	CHECK(strstr(c->err, "--bogus: unknown flag") != NULL);
	char nowhere[128];
	snprintf(nowhere, sizeof(nowhere), "%s/none", dir);
	char *argv7[] = {"routes", "--state-dir", nowhere, NULL};
	run_cmd(dir, cmd_routes, 3, argv7, NULL, c);
	CHECK_EQ_INT(c->rc, 1);
	CHECK(strstr(c->err, "none/waygate.db") != NULL);

	free(c);
	gw_objset_free(set);
	store_close(s);
	th_rmdir(dir);
}

TEST(store_cmd_routes_snapshot_no_longer_kept)
{
	char buf[64], v[16];
	char *dir = th_tmpdir(buf);
	struct store *s = th_open(dir);
	struct gw_objset *set = gw_objset_new();
	struct captured *c = calloc(1, sizeof(*c));
	uint64_t rev = 0;

	store_set_retention(s, 50, 1);
	for (int i = 1; i <= 2; i++) {
		snprintf(v, sizeof(v), "%d", i);
		th_put(set, "HTTPRoute", "default", "web", v);
		CHECK_EQ_INT(store_commit(s, set, SNAP, "file", NULL, NULL, &rev), 0);
	}
	char *argv1[] = {"routes", "--state-dir", dir, "--revision", "1", NULL};
	run_cmd(dir, cmd_routes, 5, argv1, NULL, c);
	CHECK_EQ_INT(c->rc, 1);
	CHECK(strstr(c->err, "revision 1 no longer keeps its routing table") != NULL);
	free(c);
	gw_objset_free(set);
	store_close(s);
	th_rmdir(dir);
}

TEST(store_cmd_passwd_from_stdin)
{
	char buf[64];
	char *dir = th_tmpdir(buf);
	struct captured *c = calloc(1, sizeof(*c));
	struct store *s;

	/* The box never ran: passwd creates the store. */
	char *argv1[] = {"passwd", "--state-dir", dir, NULL};
	run_cmd(dir, cmd_passwd, 3, argv1, "a long enough one\r\n", c);
	CHECK_EQ_INT(c->rc, 0);
	CHECK(strstr(c->out, "password of admin set in") != NULL);
	CHECK(strstr(c->out, "long enough") == NULL);
	CHECK(strstr(c->err, "long enough") == NULL);
	s = th_open(dir);
	CHECK_EQ_INT(store_check_password(s, "admin", "a long enough one"), 0);
	CHECK_EQ_INT(th_query(s, "SELECT count(*) FROM audit WHERE source = 'cli'"
				 " AND summary = 'password changed for user admin'"),
		     1);
	store_close(s);

	/* Too short, or nothing: refused, the old password stays. */
	run_cmd(dir, cmd_passwd, 3, argv1, "short\n", c);
	CHECK_EQ_INT(c->rc, 2);
	CHECK(strstr(c->err, "at least 8 characters") != NULL);
	run_cmd(dir, cmd_passwd, 3, argv1, "", c);
	CHECK_EQ_INT(c->rc, 2);
	CHECK(strstr(c->err, "no password given") != NULL);
	s = th_open(dir);
	CHECK_EQ_INT(store_check_password(s, "admin", "a long enough one"), 0);
	store_close(s);

	char *argv2[] = {"passwd", "extra", NULL};
	run_cmd(dir, cmd_passwd, 2, argv2, "whatever-long\n", c);
	CHECK_EQ_INT(c->rc, 2);
	free(c);
	th_rmdir(dir);
}

/* The table printed from what gw_snapshot_to_json really writes. */
TEST(store_cmd_routes_reads_compiled_snapshot)
{
	static const char *const docs[] = {
		"{\"apiVersion\":\"gateway.networking.k8s.io/v1\",\"kind\":\"GatewayClass\","
		"\"metadata\":{\"name\":\"wg\",\"generation\":1},"
		"\"spec\":{\"controllerName\":\"waygate.dev/gateway-controller\"}}",
		"{\"apiVersion\":\"gateway.networking.k8s.io/v1\",\"kind\":\"Gateway\","
		"\"metadata\":{\"name\":\"gw\",\"namespace\":\"default\",\"generation\":1},"
		"\"spec\":{\"gatewayClassName\":\"wg\",\"listeners\":[{\"name\":\"http\","
		"\"port\":8080,\"protocol\":\"HTTP\"}]}}",
		"{\"apiVersion\":\"gateway.networking.k8s.io/v1\",\"kind\":\"HTTPRoute\","
		"\"metadata\":{\"name\":\"web\",\"namespace\":\"default\",\"generation\":1},"
		"\"spec\":{\"parentRefs\":[{\"name\":\"gw\"}],\"hostnames\":[\"example.com\"],"
		"\"rules\":[{\"matches\":[{\"path\":{\"type\":\"PathPrefix\",\"value\":\"/api\"}}],"
		"\"backendRefs\":[{\"name\":\"svc\",\"port\":80,\"weight\":3}]}]}}",
		"{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"name\":\"svc\","
		"\"namespace\":\"default\"},\"spec\":{\"ports\":[{\"name\":\"http\",\"port\":80,"
		"\"targetPort\":8080,\"protocol\":\"TCP\"}]}}",
		"{\"apiVersion\":\"discovery.k8s.io/v1\",\"kind\":\"EndpointSlice\","
		"\"metadata\":{\"name\":\"svc-1\",\"namespace\":\"default\",\"labels\":"
		"{\"kubernetes.io/service-name\":\"svc\"}},\"addressType\":\"IPv4\","
		"\"ports\":[{\"name\":\"http\",\"port\":8080,\"protocol\":\"TCP\"}],"
		"\"endpoints\":[{\"addresses\":[\"10.1.0.7\"],\"conditions\":{\"ready\":true}}]}",
	};
	char buf[64], err[160];
	char *dir = th_tmpdir(buf);
	struct store *s = th_open(dir);
	struct gw_objset *set = gw_objset_new();
	struct captured *c = calloc(1, sizeof(*c));
	struct gw_result res = {0};
	struct gw_options opts = {.controller_name = "waygate.dev/gateway-controller", .now_ms = 1};
	uint64_t rev = 0;
	char *json;

	for (size_t i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
		struct gw_object *o =
			gw_object_parse(-1, docs[i], strlen(docs[i]), err, sizeof(err));

		CHECK(o != NULL);
		if (!o)
			fprintf(stderr, "  %s\n", err);
		else
			gw_objset_put(set, o);
	}
	CHECK_EQ_INT(gw_reconcile(set, &opts, &res), 0);
	json = res.snap ? gw_snapshot_to_json(res.snap) : NULL;
	CHECK(json != NULL);
	CHECK_EQ_INT(store_commit(s, set, json, "file", NULL, NULL, &rev), 0);
	free(json);
	char *argv1[] = {"routes", "--state-dir", dir, NULL};
	run_cmd(dir, cmd_routes, 3, argv1, NULL, c);
	CHECK_EQ_INT(c->rc, 0);
	CHECK(strstr(c->out, ":8080\n  listener default/gw/http HTTP hostname=*\n") != NULL);
	CHECK(strstr(c->out, "    default/web host=example.com PathPrefix /api -> ") != NULL);
	CHECK(strstr(c->out, " w=3 (1 endpoint)\n") != NULL);
	if (check_failures || getenv("WG_STORE_KEEP"))
		fprintf(stderr, "%s", c->out);
	snap_unref(res.snap);
	res.snap = NULL;
	gw_result_fini(&res);
	free(c);
	gw_objset_free(set);
	store_close(s);
	th_rmdir(dir);
}
