/* SPDX-License-Identifier: MIT */
/*
 * test_robust.c: the parsers of kube/ fed mutated inputs (a fixed-seed
 * PRNG, bounded rounds): YAML, the response head, chunked bodies, watch
 * events, ExecCredentials and `convert` must answer or refuse, never crash
 * (the sanitizer build makes this a memory-safety check).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "core/arena.h"
#include "core/buf.h"
#include "core/diag.h"
#include "gwapi/objset.h"
#include "kube/internal.h"
#include "kube/kube.h"

static uint64_t seed = 0x9e3779b97f4a7c15ULL;

static uint32_t rnd(void)
{
	seed ^= seed << 13;
	seed ^= seed >> 7;
	seed ^= seed << 17;
	return (uint32_t)(seed >> 11);
}

/* A copy of s with a few random byte edits (flip, insert, delete, cut). */
static char *mutate(const char *s, size_t *len)
{
	size_t n = strlen(s), cap = n + 64;
	char *p = malloc(cap + 1);
	int edits = 1 + (int)(rnd() % 4);

	memcpy(p, s, n);
	for (int e = 0; e < edits && n; e++) {
		size_t at = rnd() % n;

		switch (rnd() % 4) {
		case 0: p[at] = (char)(rnd() & 0xff); break;
		case 1:
			if (n < cap) {
				memmove(p + at + 1, p + at, n - at);
				p[at] = "\n:-[{\"'&*!#|> \r\t0"[rnd() % 18];
				n++;
			}
			break;
		case 2:
			memmove(p + at, p + at + 1, n - at - 1);
			n--;
			break;
		default: n = at + 1; break;
		}
	}
	p[n] = 0;
	*len = n;
	return p;
}

static const char *yaml_seed =
	"apiVersion: networking.x-k8s.io/v1alpha1\nkind: HTTPRoute\nmetadata:\n  name: r\n"
	"  labels: {a: b}\nspec:\n  gateways: {allow: All}\n  rules:\n  - matches:\n"
	"    - path: {type: Prefix, value: /x}\n      headers: {type: Exact, values: {k: v}}\n"
	"    forwardTo:\n    - serviceName: s\n      port: 80\n      weight: 2\n---\n"
	"apiVersion: networking.x-k8s.io/v1alpha1\nkind: Gateway\nmetadata: {name: g}\n"
	"spec:\n  gatewayClassName: c\n  listeners:\n  - protocol: HTTP\n    port: 80\n"
	"    routes: {kind: HTTPRoute, selector: {matchLabels: {a: b}}}\n"
	"x: &a [1, *a]\n";

TEST(kube_robust_yaml_and_convert)
{
	for (int i = 0; i < 1500; i++) {
		size_t n;
		char *in = mutate(yaml_seed, &n);
		struct diag d = {0};
		char *out = NULL;
		size_t outlen = 0;
		FILE *f = open_memstream(&out, &outlen);
		struct arena *a = arena_new(0);
		struct ynode **docs;
		size_t nd;

		kube_convert(in, n, "fuzz.yaml", f, &d);
		fclose(f);
		if (kyaml_load(a, in, n, "fuzz.yaml", &docs, &nd, &d) == 0) {
			for (size_t k = 0; k < nd; k++) {
				struct buf b = {0};
				char msg[64];
				uint32_t line;

				kyaml_to_json(docs[k], &b, msg, sizeof(msg), &line);
				buf_release(&b);
			}
		}
		arena_free(a);
		free(out);
		diag_fini(&d);
		free(in);
	}
	CHECK(1);
}

static int sink(void *arg, const char *p, size_t n)
{
	(void)p;
	*(size_t *)arg += n;
	return 0;
}

TEST(kube_robust_http_head_and_chunks)
{
	const char *head = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\nRetry-After: 3\r\n"
			   "Transfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n";
	const char *body = "5;x=y\r\nhello\r\nA\r\n0123456789\r\n0\r\nT: v\r\n\r\n";

	for (int i = 0; i < 3000; i++) {
		size_t n, got = 0;
		char *in = mutate(i % 2 ? head : body, &n);
		struct khttp_resp r;
		struct kchunk st = {0};
		long used;

		if (i % 2) {
			int rc = khttp_parse_head(in, n, &r);

			CHECK(rc <= (int)n);
		} else {
			used = kchunk_feed(&st, in, n, sink, &got);
			CHECK(used <= (long)n);
			CHECK(got <= n);
		}
		free(in);
	}
}

TEST(kube_robust_watch_events_and_exec)
{
	const char *ev =
		"{\"type\":\"ADDED\",\"object\":{\"apiVersion\":\"gateway.networking.k8s.io/v1\","
		"\"kind\":\"HTTPRoute\",\"metadata\":{\"name\":\"r\",\"namespace\":\"a\","
		"\"resourceVersion\":\"5\"},\"spec\":{}}}\n{\"type\":\"BOOKMARK\",\"object\":"
		"{\"metadata\":{\"resourceVersion\":\"7\"}}}\n";
	const char *ex = "{\"apiVersion\":\"client.authentication.k8s.io/v1\",\"kind\":"
			 "\"ExecCredential\",\"status\":{\"token\":\"t\",\"expirationTimestamp\":"
			 "\"2030-01-01T00:00:00.5+01:00\"}}";
	struct kube_watch w;
	struct reflector r;

	memset(&w, 0, sizeof(w));
	memset(&r, 0, sizeof(r));
	w.set = gw_objset_new();
	for (int k = 0; k < GW_K_COUNT; k++)
		w.ver[k] = "v1";
	r.w = &w;
	r.kind = GW_K_HTTPROUTE;
	for (int i = 0; i < 2000; i++) {
		size_t n;
		char *in = mutate(i % 2 ? ev : ex, &n);

		if (i % 2) {
			kube_reflector_feed(&r, in, n);
			buf_release(&r.line);
		} else {
			char *t, *c, *k;
			uint64_t exp;
			const char *why;

			if (kube_exec_parse(in, n, "client.authentication.k8s.io/v1", &t, &c, &k,
					    &exp, &why) == 0) {
				free(t);
				free(c);
				free(k);
			}
			kube_time_parse(in);
		}
		free(in);
	}
	free(r.rv);
	gw_objset_free(w.set);
	CHECK(1);
}
