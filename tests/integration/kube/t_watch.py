#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Reflectors against the fake API server: paged lists, watch events split
over chunks, resume after dropped watches without relisting, 410 -> one
relist that replaces the kind, 429 (Retry-After) and 500 -> backoff, a
silent stream reconnected, discovery of the newest served version, absent
resources rechecked, --namespace, and deletions."""
import os
import sys
import time

sys.dont_write_bytecode = True  # noqa: E402 (keep the source tree clean)
from kubetest import Debug, check, objects, server

api = server(tokens=("tok-1",), versions={"tlsroutes": ["v1alpha3", "v1alpha2"],
                                          "gateways": ["v1", "v1beta1"]},
             absent=("listenersets", "backendtlspolicies"))
d = api.dir
S = api.store
for ns in ("a", "b"):
    S.put("namespaces", {"metadata": {"name": ns}})
for i in range(23):
    S.put("httproutes", {"metadata": {"name": "r%02d" % i, "namespace": "a" if i % 2 else "b"},
                         "spec": {"hostnames": ["h%d.example" % i]}})
S.put("services", {"metadata": {"name": "svc", "namespace": "a"}, "spec": {"ports": []}})
S.put("tlsroutes", {"metadata": {"name": "t1", "namespace": "a"}, "spec": {}})
kc = api.kubeconfig(os.path.join(d, "kc.json"))

dbg = Debug(kc, "--page-limit", "5", "--silence-ms", "1500", "--recheck-ms", "1500")
st = dbg.synced()
check(len(objects(st, "HTTPRoute")) == 23, "paged list: all 23 routes")
pages = [r for r in api.requests("list", "httproutes")]
check(len(pages) == 5 and all(r["query"].get("limit") == "5" for r in pages),
      "paged list: 5 pages of limit=5 (%d)" % len(pages))
check(sum(1 for r in pages if "continue" in r["query"]) == 4, "paged list: continue tokens")
tl = api.requests("list", "tlsroutes")
check(tl and "/v1alpha3/" in tl[0]["path"], "discovery: tlsroutes at v1alpha3, the newest served")
check(objects(st, "Service") == {"a/svc": objects(st, "Service")["a/svc"]},
      "built-in list items (no kind/apiVersion) decoded")
check(not api.requests("list", "listenersets"), "absent resource: not listed")
w = api.requests("watch", "httproutes")
check(w and w[0]["query"].get("allowWatchBookmarks") == "true" and
      w[0]["query"].get("resourceVersion") == pages[0]["query"].get("resourceVersion",
                                                                       w[0]["query"]["resourceVersion"]),
      "watch with bookmarks from the list's resourceVersion")

# events, some split over several chunks
api.split = True
S.put("httproutes", {"metadata": {"name": "new1", "namespace": "a"}, "spec": {}})
S.delete("httproutes", "b", "r00")
dbg.poll(lambda s: "a/new1" in objects(s, "HTTPRoute") and "b/r00" not in objects(s, "HTTPRoute"),
         what="split events applied")
check(True, "watch events split across chunks: applied")
api.split = False

# dropped watches, 20 times: resumed, never relisted
lists0 = len(api.requests("list"))
for i in range(20):
    api.drop_watches(abrupt=(i % 2 == 0))
    S.put("httproutes", {"metadata": {"name": "drop%d" % i, "namespace": "a"}, "spec": {}})
    time.sleep(0.15)
st = dbg.poll(lambda s: all("a/drop%d" % i in objects(s, "HTTPRoute") for i in range(20)) and
              s["health"]["open_watches"] == 13, what="all events after 20 drops")
check(len(api.requests("list")) == lists0, "20 dropped watches: no relist")
server_routes = {"%s/%s" % (k[1], k[2]): o["metadata"]["resourceVersion"]
                 for k, o in S.objs.items() if k[0] == "httproutes"}
check(objects(st, "HTTPRoute") == server_routes, "after the drops: exactly the server's routes")
rvs = [r["query"].get("resourceVersion") for r in api.requests("watch", "httproutes")]
check(all(rvs) and len(set(rvs)) > 5, "each watch resumed from the last resourceVersion seen")

# 410: history compacted while disconnected -> one relist per resource
lists0 = len(api.requests("list", "httproutes"))
api.silent = True  # nothing reaches the client from here on
S.delete("httproutes", "a", "r01")  # gone while it was not looking
S.compact()
api.drop_watches()
api.silent = False
st = dbg.poll(lambda s: s["health"]["relists"] > 0 and "a/r01" not in objects(s, "HTTPRoute"),
              what="relist after 410")
time.sleep(0.5)
server_routes = {"%s/%s" % (k[1], k[2]) for k, o in S.objs.items() if k[0] == "httproutes"}
pages = (len(server_routes) + 4) // 5
check(len(api.requests("list", "httproutes")) - lists0 == pages,
      "410: one relist of httproutes (%d pages)" % pages)
check(set(objects(st, "HTTPRoute")) == server_routes, "410: the set holds exactly the server's routes")

# 429 with Retry-After, then 500: backoff, then recovery
api.fail(1, 429, verb="watch", resource="services", retry_after=1)
api.fail(2, 500, verb="watch", resource="services")
t0 = time.monotonic()
n0 = len(api.requests("watch", "services"))
api.drop_watches()
dbg.poll(lambda s: s["health"]["open_watches"] == 13 and
         [r["code"] for r in api.requests("watch", "services")[n0:]][-1:] == [200],
         what="services watch back after 429/500")
codes = [r["code"] for r in api.requests("watch", "services")[n0:]]
check(codes == [429, 500, 500, 200], "429 then 500 x2 answered, then resumed (%s)" % codes)
check(time.monotonic() - t0 >= 1.0, "Retry-After: 1 s respected")
check(not any(r["verb"] == "list" and r["resource"] == "services" for r in api.log[-10:]),
      "429/500 on watch: resumed without relist")

# a silent stream (no events, no bookmarks) is reconnected
api.silent = True
n0 = len(api.requests("watch", "gateways"))
time.sleep(2.5)
api.silent = False
check(len(api.requests("watch", "gateways")) > n0, "silent watch reconnected after its deadline")
S.put("gateways", {"metadata": {"name": "gw", "namespace": "a"}, "spec": {}})
dbg.poll(lambda s: "a/gw" in objects(s, "Gateway"), what="events after the silence")
check(True, "silent watch: events flow again")

# an absent resource appears later: found by the periodic recheck
api.absent.discard("listenersets")
S.put("listenersets", {"metadata": {"name": "ls", "namespace": "a"}, "spec": {}})
dbg.poll(lambda s: "a/ls" in objects(s, "ListenerSet"), timeout=10, what="listenersets found")
check(True, "absent resource installed later: rediscovered and listed")

# and uninstalled again: the watch gets 404, the kind's objects go
api.absent.add("listenersets")
api.drop_watches()
dbg.poll(lambda s: "a/ls" not in objects(s, "ListenerSet"), what="listenersets dropped")
check(True, "resource uninstalled: its objects dropped")
dbg.quit()

# an outage long enough for backoffs to grow: once one request gets through
# again, every reflector retries within a second instead of waiting its own
# (up to 20 s) backoff
n0 = len(api.log)
dbg = Debug(kc, "--backoff-min-ms", "500", "--backoff-max-ms", "20000")
dbg.synced()
api.down = True
api.drop_watches(abrupt=True)
time.sleep(9)
api.down = False
t_back = time.monotonic()
st = dbg.poll(lambda s: s["health"]["open_watches"] == s["health"]["reflectors"], timeout=30,
              what="watches after outage")
first = min(r["t"] for r in api.log[n0:] if r["t"] >= t_back)
check(time.monotonic() - first < 4,
      "after an outage: all watches back %.1f s after the first answer" %
      (time.monotonic() - first))
check(not any(r["verb"] == "list" for r in api.log[n0:] if r["t"] >= t_back),
      "after an outage: resumed without relisting")
check(st["health"]["connected"], "after an outage: health says connected again")
dbg.quit()

# --namespace: only those namespaces are listed and watched
n0 = len(api.log)
dbg = Debug(kc, "--namespace", "a")
st = dbg.synced()
check(all(k.startswith("a/") for k in objects(st, "HTTPRoute")) and objects(st, "HTTPRoute"),
      "--namespace a: only namespace a's routes")
paths = [r["path"] for r in api.log[n0:] if r["resource"] == "httproutes"]
check(paths and all("/namespaces/a/" in p for p in paths),
      "--namespace a: namespaced requests only")
dbg.quit()
print("PASS")
