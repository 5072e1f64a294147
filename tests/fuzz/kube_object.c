/* SPDX-License-Identifier: MIT */
/*
 * kube_object.c: fuzz target for the Kubernetes JSON decode into the model.
 * The input is one object as the API server would send it (a list item or a
 * watch event's object). gw_object_parse() decodes it (kind from its
 * apiVersion/kind); when it is accepted it joins a small fixed object set
 * (a GatewayClass we own, a Gateway with HTTP and HTTPS listeners, a
 * Service with an EndpointSlice, a Secret, a ReferenceGrant) and reconcile
 * runs over the set, then the snapshot is rendered as JSON. The same input
 * is also decoded as every fixed kind (the reflectors pass the kind they
 * list). Invariants: a rejection carries a message, an accepted object has
 * a name and the JSON it was given, reconcile succeeds, and reconcile is
 * deterministic (a second run gives byte-equal statuses).
 * Built with -fsanitize=fuzzer it is a libFuzzer target; the replay build
 * (mk/fuzz-replay.c) runs it over tests/fuzz/corpus/kube_object/.
 */
#include <stdlib.h>
#include <string.h>

#include "gwapi/objset.h"
#include "gwapi/reconcile.h"
#include "proxy/snapshot.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

static const char *const base[] = {
	"{\"apiVersion\":\"gateway.networking.k8s.io/v1\",\"kind\":\"GatewayClass\","
	"\"metadata\":{\"name\":\"wg\",\"generation\":1},"
	"\"spec\":{\"controllerName\":\"waygate.dev/gateway-controller\"}}",
	"{\"apiVersion\":\"gateway.networking.k8s.io/v1\",\"kind\":\"Gateway\","
	"\"metadata\":{\"name\":\"gw\",\"namespace\":\"default\",\"generation\":1},"
	"\"spec\":{\"gatewayClassName\":\"wg\",\"listeners\":["
	"{\"name\":\"http\",\"protocol\":\"HTTP\",\"port\":8080,"
	"\"allowedRoutes\":{\"namespaces\":{\"from\":\"All\"}}},"
	"{\"name\":\"https\",\"protocol\":\"HTTPS\",\"port\":8443,\"hostname\":\"*.example.com\","
	"\"tls\":{\"certificateRefs\":[{\"name\":\"cert\"}]}},"
	"{\"name\":\"tcp\",\"protocol\":\"TCP\",\"port\":9000}]}}",
	"{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"name\":\"svc\","
	"\"namespace\":\"default\"},\"spec\":{\"ports\":[{\"name\":\"http\",\"port\":80,"
	"\"targetPort\":8080}]}}",
	"{\"apiVersion\":\"discovery.k8s.io/v1\",\"kind\":\"EndpointSlice\",\"metadata\":"
	"{\"name\":\"svc-1\",\"namespace\":\"default\",\"labels\":"
	"{\"kubernetes.io/service-name\":\"svc\"}},\"addressType\":\"IPv4\","
	"\"ports\":[{\"name\":\"http\",\"port\":8080}],"
	"\"endpoints\":[{\"addresses\":[\"10.0.0.1\"],\"conditions\":{\"ready\":true}}]}",
	"{\"apiVersion\":\"v1\",\"kind\":\"Secret\",\"metadata\":{\"name\":\"cert\","
	"\"namespace\":\"default\"},\"type\":\"kubernetes.io/tls\",\"data\":"
	"{\"tls.crt\":\"bm90IGEgY2VydA==\",\"tls.key\":\"bm90IGEga2V5\"}}",
	"{\"apiVersion\":\"gateway.networking.k8s.io/v1beta1\",\"kind\":\"ReferenceGrant\","
	"\"metadata\":{\"name\":\"rg\",\"namespace\":\"default\"},\"spec\":{\"from\":"
	"[{\"group\":\"gateway.networking.k8s.io\",\"kind\":\"HTTPRoute\",\"namespace\":\"apps\"}],"
	"\"to\":[{\"group\":\"\",\"kind\":\"Service\"}]}}",
};

static struct gw_objset *base_set(void)
{
	struct gw_objset *set = gw_objset_new();

	if (!set)
		return NULL;
	for (size_t i = 0; i < sizeof(base) / sizeof(base[0]); i++) {
		struct gw_object *o = gw_object_parse(-1, base[i], strlen(base[i]), NULL, 0);

		if (!o)
			abort(); /* the fixed set must decode */
		gw_objset_put(set, o);
	}
	return set;
}

static void reconcile_twice(struct gw_objset *set)
{
	static const char *const feats[] = {"Gateway", "HTTPRoute", NULL};
	struct gw_options opt = {
		.controller_name = "waygate.dev/gateway-controller",
		.now_ms = 1790000000000ULL,
		.supported_features = feats,
	};
	struct gw_result r1 = {0}, r2 = {0};

	if (gw_reconcile(set, &opt, &r1) != 0)
		abort();
	if (gw_reconcile(set, &opt, &r2) != 0)
		abort();
	if (r1.n_statuses != r2.n_statuses)
		abort();
	for (size_t i = 0; i < r1.n_statuses; i++) {
		const char *a = r1.statuses[i].status_json, *b = r2.statuses[i].status_json;

		if (!a != !b || (a && strcmp(a, b)))
			abort();
	}
	if (r1.snap) {
		char *j = gw_snapshot_to_json(r1.snap);

		free(j);
	}
	snap_unref(r1.snap);
	snap_unref(r2.snap);
	gw_result_fini(&r1);
	gw_result_fini(&r2);
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	char err[256];
	struct gw_object *o;
	struct gw_objset *set;

	if (size > 65536)
		return 0;
	/* As the reflectors decode: the kind is known from the resource. */
	for (int k = 0; k < GW_K_COUNT; k++) {
		o = gw_object_parse(k, (const char *)data, size, err, sizeof(err));
		if (o)
			gw_object_unref(o);
	}
	err[0] = 0;
	o = gw_object_parse(-1, (const char *)data, size, err, sizeof(err));
	if (!o) {
		if (!err[0])
			abort(); /* a rejection names its reason */
		return 0;
	}
	if (!o->name || o->json_len != size || memcmp(o->json, data, size) != 0)
		abort();
	set = base_set();
	if (!set) {
		gw_object_unref(o);
		return 0;
	}
	gw_objset_put(set, o);
	reconcile_twice(set);
	gw_objset_free(set);
	return 0;
}
