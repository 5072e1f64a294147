#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The access log: one JSON line per request with the fields an owner needs
(time, client, host, method, path, route, backend, status, bytes,
durations), and size-based rotation (FILE becomes FILE.1) with nothing lost
across the rotation."""
import json
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import wg  # noqa: E402

check = wg.check

work = tempfile.mkdtemp(prefix="wg-alog-")
cfg = os.path.join(work, "c.yaml")
port, backend = wg.free_port(), wg.free_port()
with open(cfg, "w") as f:
    f.write(wg.gateway_yaml(port) + """---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: logged, namespace: default}
spec:
  parentRefs: [{name: gw}]
  rules: [{backendRefs: [{name: b, port: 80}]}]
""" + wg.backend_yaml("b", backend))
wg.echo("b", backend)
alog = os.path.join(work, "access.log")
gw = wg.Gateway(cfg, state=os.path.join(work, "state"),
                extra=["--access-log", alog, "--access-log-max-bytes", "4000"])
wg.wait_port(port, proc=gw.proc)

N = 60
for i in range(N):
    st, _, _ = wg.http(port, "/item/%d" % i, host="shop.test")
    assert st == 200
    if i == N // 2:
        time.sleep(2.5)   # one rotation check passes mid-way
gw.stop()

lines = []
for p in (alog + ".1", alog):
    if os.path.exists(p):
        lines += [json.loads(l) for l in open(p) if l.strip()]
check(os.path.exists(alog + ".1"), "the log was rotated to access.log.1")
paths = sorted(int(l["path"].rsplit("/", 1)[1]) for l in lines if "/item/" in l.get("path", ""))
check(len(paths) >= N - 1 and paths[-1] == N - 1,
      "requests logged across the rotation: %d of %d" % (len(paths), N))
first = lines[0] if lines else {}
print("a line:", json.dumps(first))
for key in ("ts", "client", "host", "method", "path", "route", "backend", "status", "bytes"):
    check(any(k.startswith(key) for k in first), "field %s present" % key)
check(first.get("status") == 200 and first.get("host") == "shop.test"
      and "logged" in str(first.get("route")), "values are right")
wg.finish()
