/* SPDX-License-Identifier: MIT */
/*
 * test_convert.c: `waygate convert` (src/kube/convert.c): v1alpha1 shapes
 * to v1, parentRefs derived from Gateway selectors and gateways.allow, and
 * an emitter whose output reads back as the same data.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "core/arena.h"
#include "core/buf.h"
#include "core/diag.h"
#include "core/err.h"
#include "kube/internal.h"
#include "kube/kube.h"

/* Converts y; returns the output re-read as JSON documents joined by '\n',
 * or NULL on failure (d holds why). */
static char *conv(const char *y, struct diag *d)
{
	char *out = NULL, *res = NULL;
	size_t outlen = 0;
	FILE *f = open_memstream(&out, &outlen);
	struct arena *a;
	struct ynode **docs;
	size_t n;
	struct buf b = {0};
	int rc = kube_convert(y, strlen(y), "in.yaml", f, d);

	fclose(f);
	if (rc) {
		free(out);
		return NULL;
	}
	a = arena_new(0);
	if (kyaml_load(a, out, outlen, "out.yaml", &docs, &n, d) == 0) {
		for (size_t i = 0; i < n; i++) {
			char msg[100];
			uint32_t line;

			if (i)
				buf_append_str(&b, "\n");
			kyaml_to_json(docs[i], &b, msg, sizeof(msg), &line);
		}
		buf_append(&b, "", 1);
		res = strdup(buf_rptr(&b));
	} else {
		fprintf(stderr, "unparsable output:\n%s\n", out);
	}
	buf_release(&b);
	arena_free(a);
	free(out);
	return res;
}

#define OLD "apiVersion: networking.x-k8s.io/v1alpha1\n"

static const char *gateways =
	OLD "kind: Gateway\nmetadata: {name: g, namespace: infra}\nspec:\n"
	    "  gatewayClassName: c\n  listeners:\n"
	    "  - protocol: HTTP\n    port: 80\n    routes:\n      kind: HTTPRoute\n"
	    "      selector:\n        matchExpressions:\n"
	    "        - {key: app, operator: In, values: [web, api]}\n"
	    "      namespaces: {from: Selector, selector: {matchLabels: {env: prod}}}\n"
	    "  - protocol: HTTP\n    port: 80\n    routes: {kind: TCPRoute}\n"
	    "  - protocol: TLS\n    port: 443\n    tls: {mode: Passthrough}\n"
	    "    routes: {kind: TLSRoute, namespaces: {from: All}}\n"
	    "---\n"
	    "apiVersion: v1\nkind: Namespace\nmetadata: {name: web, labels: {env: prod}}\n"
	    "---\n";

static char *conv2(const char *a, const char *b, struct diag *d)
{
	struct buf in = {0};
	char *r;

	buf_append_str(&in, a);
	buf_append_str(&in, b);
	buf_append(&in, "", 1);
	r = conv(buf_rptr(&in), d);
	buf_release(&in);
	return r;
}

#define HAS(r, s)                                                                                  \
	do {                                                                                       \
		if (!(r) || !strstr((r), (s)))                                                     \
			CHECK_FAIL_("missing %s in %s", (s), (r) ? (r) : "(null)");                \
	} while (0)

TEST(kube_convert_http_filters_and_parents)
{
	struct diag d = {0};
	char *r = conv2(
		gateways,
		OLD "kind: HTTPRoute\nmetadata:\n  name: web\n  namespace: web\n"
		    "  labels: {app: web}\nspec:\n"
		    "  gateways:\n    allow: FromList\n"
		    "    gatewayRefs: [{name: g, namespace: infra}]\n"
		    "  rules:\n  - matches:\n"
		    "    - path: {type: Exact, value: /x}\n"
		    "      queryParams: {type: Exact, values: {q: \"1\"}}\n"
		    "    filters:\n"
		    "    - type: RequestHeaderModifier\n"
		    "      requestHeaderModifier:\n"
		    "        set: {X-A: \"true\"}\n        add: {X-B: b}\n        remove: [X-C]\n"
		    "    - type: RequestRedirect\n"
		    "      requestRedirect: {protocol: HTTPS, port: 443, statusCode: 301}\n"
		    "    - type: RequestMirror\n"
		    "      requestMirror: {serviceName: shadow, port: 8080}\n"
		    "    forwardTo:\n    - serviceName: s\n      port: 80\n"
		    "      filters:\n      - type: RequestHeaderModifier\n"
		    "        requestHeaderModifier: {remove: [X-D]}\n",
		&d);

	HAS(r, "\"apiVersion\":\"gateway.networking.k8s.io/v1\",\"kind\":\"HTTPRoute\"");
	/* only the first listener selects it: a sectionName is needed */
	HAS(r, "\"parentRefs\":[{\"name\":\"g\",\"namespace\":\"infra\",\"sectionName\":\"http-"
	       "80\"}]");
	HAS(r, "\"path\":{\"type\":\"Exact\",\"value\":\"/x\"}");
	HAS(r, "\"queryParams\":[{\"type\":\"Exact\",\"name\":\"q\",\"value\":\"1\"}]");
	HAS(r, "\"set\":[{\"name\":\"X-A\",\"value\":\"true\"}]");
	HAS(r, "\"add\":[{\"name\":\"X-B\",\"value\":\"b\"}]");
	HAS(r, "\"requestRedirect\":{\"scheme\":\"https\",\"port\":443,\"statusCode\":301}");
	HAS(r, "\"requestMirror\":{\"backendRef\":{\"name\":\"shadow\",\"port\":8080}}");
	HAS(r, "\"backendRefs\":[{\"name\":\"s\",\"port\":80,\"filters\":[{\"type\":"
	       "\"RequestHeaderModifier\",\"requestHeaderModifier\":{\"remove\":[\"X-D\"]}}]}]");
	/* repeated protocol-port listener names are made unique */
	HAS(r, "\"name\":\"http-80-2\"");
	HAS(r, "\"tls\":{\"mode\":\"Passthrough\"}");
	CHECK_EQ_INT(d.errors, 0);
	CHECK_EQ_INT(d.warnings, 0);
	free(r);
	diag_fini(&d);
}

TEST(kube_convert_allow_rules_and_l4_routes)
{
	struct diag d = {0};
	/* default allow is SameNamespace: a route in another namespace is not
	 * attached (warning), one in infra is; TCP/TLS routes */
	char *r =
		conv2(gateways,
		      OLD "kind: HTTPRoute\nmetadata: {name: far, namespace: web, labels: "
			  "{app: web}}\nspec: {rules: [{forwardTo: [{serviceName: s, port: 1}]}]}\n"
			  "---\n" OLD "kind: TCPRoute\nmetadata: {name: t, namespace: infra}\n"
			  "spec:\n  rules:\n  - forwardTo: [{serviceName: db, port: 5432}]\n"
			  "---\n" OLD "kind: TLSRoute\nmetadata: {name: p, namespace: other}\n"
			  "spec:\n  gateways: {allow: All}\n  rules:\n  - matches:\n"
			  "    - snis: [a.example, b.example]\n"
			  "    forwardTo: [{serviceName: tls, port: 443}]\n",
		      &d);

	HAS(r, "\"kind\":\"HTTPRoute\",\"metadata\":{\"name\":\"far\",\"namespace\":\"web\","
	       "\"labels\":{\"app\":\"web\"}},\"spec\":{\"parentRefs\":[],");
	CHECK_EQ_INT(d.warnings, 1);
	CHECK(d.n && strstr(d.v[0].msg, "add spec.parentRefs") &&
	      !strcmp(d.v[0].object, "HTTPRoute web/far"));
	HAS(r, "\"apiVersion\":\"gateway.networking.k8s.io/v1alpha2\",\"kind\":\"TCPRoute\"");
	HAS(r, "\"parentRefs\":[{\"name\":\"g\",\"sectionName\":\"http-80-2\"}]");
	HAS(r, "\"backendRefs\":[{\"name\":\"db\",\"port\":5432}]");
	HAS(r, "\"kind\":\"TLSRoute\",\"metadata\":{\"name\":\"p\",\"namespace\":\"other\"},"
	       "\"spec\":{\"parentRefs\":[{\"name\":\"g\",\"namespace\":\"infra\",\"sectionName\":"
	       "\"tls-443\"}],\"hostnames\":[\"a.example\",\"b.example\"]");
	free(r);
	diag_fini(&d);
}

TEST(kube_convert_errors)
{
	struct diag d = {0};
	char *r = conv(OLD "kind: Gateway\nmetadata: {name: g}\nspec:\n  listeners: []\n", &d);

	CHECK(r == NULL);
	CHECK_EQ_INT(d.errors, 2); /* gatewayClassName, listeners */
	CHECK(d.n && !strcmp(d.v[0].object, "Gateway g") &&
	      !strcmp(d.v[0].field, "spec.gatewayClassName"));
	diag_fini(&d);
	r = conv(OLD "kind: HTTPRoute\nmetadata: {name: h}\nspec:\n  rules:\n  - matches:\n"
		     "    - path: {type: ImplementationSpecific, value: /}\n"
		     "    forwardTo: [{serviceName: s}]\n",
		 &d);
	CHECK(r == NULL);
	CHECK_EQ_INT(d.errors, 2); /* path type; forwardTo without port */
	diag_fini(&d);
	r = conv("a: [\n", &d);
	CHECK(r == NULL && d.errors == 1 && strstr(d.v[0].msg, "line "));
	diag_fini(&d);
	r = conv("kind: X\n", &d);
	CHECK(r == NULL && d.errors == 1 && !strcmp(d.v[0].field, "apiVersion"));
	diag_fini(&d);
}

TEST(kube_convert_emitter_quotes_what_needs_it)
{
	struct diag d = {0};
	const char *in = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: q}\ndata:\n"
			 "  a: \"true\"\n  b: \"123\"\n  c: \"*.x\"\n  d: \"k: v\"\n  e: \"\"\n"
			 "  f: \" lead\"\n  g: \"multi\\nline\"\n  h: \"1e3\"\n  i: \"null\"\n"
			 "  j: \"#c\"\n  k: plain-text\n  l: \"0x1F\"\n  m: \"- x\"\n  n: \"@\"\n"
			 "  o: \"yes\"\n  p: [1, 2.5, true, null]\n  \"q r\": {}\n";
	char *r = conv(in, &d);

	CHECK_EQ_STR(
		r, "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"q\"},"
		   "\"data\":{\"a\":\"true\",\"b\":\"123\",\"c\":\"*.x\",\"d\":\"k: v\",\"e\":\"\","
		   "\"f\":\" lead\",\"g\":\"multi\\nline\",\"h\":\"1e3\",\"i\":\"null\","
		   "\"j\":\"#c\",\"k\":\"plain-text\",\"l\":\"0x1F\",\"m\":\"- x\",\"n\":\"@\","
		   "\"o\":\"yes\",\"p\":[1,2.5,true,null],\"q r\":{}}}");
	free(r);
	diag_fini(&d);
}
