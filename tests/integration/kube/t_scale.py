#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Scale figures of the watch client (printed, and bounded loosely so a
regression fails): resident memory per 1,000 watched HTTPRoutes, and the
delay from a watch event on the server to the object set holding it, with
ROUTES routes (env, default 5000; the README has the measured figures)."""
import os
import sys
import time

sys.dont_write_bytecode = True  # noqa: E402 (keep the source tree clean)
from kubetest import Debug, check, objects, server

N = int(os.environ.get("ROUTES", "5000"))


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def route(i):
    return {"metadata": {"name": "route-%05d" % i, "namespace": "team-%d" % (i % 20),
                         "labels": {"app": "web", "tier": "edge"}},
            "spec": {"parentRefs": [{"name": "gw", "namespace": "infra", "sectionName": "https"}],
                     "hostnames": ["r%d.example.com" % i],
                     "rules": [{"matches": [{"path": {"type": "PathPrefix", "value": "/api/%d" % i}},
                                            {"headers": [{"name": "x-env", "value": "canary"}]}],
                                "backendRefs": [{"name": "svc-%d" % i, "port": 8080, "weight": 90},
                                                {"name": "svc-%d-v2" % i, "port": 8080,
                                                 "weight": 10}]}]}}


api = server(tokens=("tok-1",), bookmark_interval=5)
kc = api.kubeconfig(os.path.join(api.dir, "kc.json"))

# baseline: the same client with nothing to hold
dbg = Debug(kc)
dbg.synced()
base = rss_kb(dbg.p.pid)
dbg.quit()

for i in range(N):
    api.store.put("httproutes", route(i))
dbg = Debug(kc)
t0 = time.monotonic()
st = dbg.synced(timeout=120)
sync_s = time.monotonic() - t0
check(len(objects(st, "HTTPRoute")) == N, "%d routes listed in %.1f s" % (N, sync_s))
time.sleep(1)
full = rss_kb(dbg.p.pid)
per1k = (full - base) / (N / 1000.0)
print("figure: rss baseline %d KiB, with %d routes %d KiB: %.0f KiB per 1,000 routes" %
      (base, N, full, per1k), flush=True)
if "ASAN_OPTIONS" in os.environ:
    print("sanitizer build: memory bound not checked", flush=True)
else:
    check(per1k < 8192, "memory per 1,000 routes below 8 MiB (%.0f KiB)" % per1k)

# event delay: server write -> object set (median of 20)
delays = []
for k in range(20):
    r = route(k * 7)
    r["spec"]["hostnames"] = ["changed-%d.example.com" % k]
    t0 = time.monotonic()
    obj = api.store.put("httproutes", r)
    rv = obj["metadata"]["resourceVersion"]
    key = "team-%d/route-%05d" % ((k * 7) % 20, k * 7)
    dbg.wait(lambda s: s["event"] == "change" and objects(s, "HTTPRoute").get(key) == rv, 10,
             "event applied")
    delays.append((time.monotonic() - t0) * 1000)
delays.sort()
print("figure: watch event to object set with %d routes: median %.1f ms, max %.1f ms "
      "(includes printing the state line)" % (N, delays[len(delays) // 2], delays[-1]),
      flush=True)
check(delays[len(delays) // 2] < 1000, "event delay median below 1 s")
dbg.quit()
print("PASS")
