#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Backend faults. Each route sends to a misbehaving backend; the client
must get an answer (or, once the response head has gone out, a clean cut)
within the route's timeouts, and the worker must keep serving:
  refuse          nothing listens            -> 502/503 at once
  reset-head      reset before any byte      -> 502 at once
  reset-mid       reset after half a body    -> the client's response ends
                                                early and the connection is
                                                closed (the head was sent)
  stall           accepts, never answers     -> 504 at the route timeout (1 s)
  black-hole      connects never complete    -> 503 at the connect timeout (5 s)
  mixed           one good endpoint and one refusing: the share served
                  (retries and ejection should make it 100.00%)
Prints the share of requests served per fault."""
import os
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hostile as H  # noqa: E402

REC = H.Recorder()
RESET_MID, RESET_HEAD, STALL, HOLE = H.Reset(), H.ResetBeforeHead(), H.Stall(), H.BlackHole()
REFUSE = H.refusing_port()
HTTP = H.wg.free_port()


def rule(prefix, svc, timeout=None):
    t = "\n    timeouts: {request: %s}" % timeout if timeout else ""
    return ("  - matches: [{path: {type: PathPrefix, value: /%s}}]\n"
            "    backendRefs: [{name: %s, port: 80}]%s" % (prefix, svc, t))


services = {"rec": REC.port, "refuse": REFUSE, "resethead": RESET_HEAD.port,
            "resetmid": RESET_MID.port, "stall": STALL.port, "hole": HOLE.port}
extra = """---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: mixed-1
  namespace: default
  labels: {kubernetes.io/service-name: mixed}
addressType: IPv4
ports: [{name: http, port: %d, protocol: TCP}]
endpoints:
- addresses: [127.0.0.1]
  conditions: {ready: true}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: mixed-2
  namespace: default
  labels: {kubernetes.io/service-name: mixed}
addressType: IPv4
ports: [{name: http, port: %d, protocol: TCP}]
endpoints:
- addresses: [127.0.0.2]
  conditions: {ready: true}
---
apiVersion: v1
kind: Service
metadata: {name: mixed, namespace: default}
spec: {ports: [{name: http, port: 80}]}
""" % (REC.port, REC.port)
# mixed: the same port on 127.0.0.1 (the recorder) and 127.0.0.2 (nothing
# listens there: the recorder bound 127.0.0.1 only), so one endpoint refuses
yaml = H.config([("http", "HTTP", HTTP)],
                [rule("refuse", "refuse"), rule("resethead", "resethead"),
                 rule("resetmid", "resetmid"), rule("stall", "stall", "1s"),
                 rule("hole", "hole"), rule("mixed", "mixed"),
                 "  - backendRefs: [{name: rec, port: 80}]"], services, extra=extra)
gw = H.gateway(yaml, HTTP)
H.wg.wait_for(lambda: H.raw(HTTP, b"GET /ready HTTP/1.1\r\nHost: a\r\n\r\n")[0]
              .startswith(b"HTTP/1.1 200"), timeout=10)


def get(path, timeout=10):
    st, out, closed, dt = H.request(HTTP, b"GET %s HTTP/1.1\r\nHost: a\r\n\r\n" % path.encode(),
                                    timeout=timeout)
    return ([st] if st else []), out, closed, dt


def alive():
    return get("/alive", timeout=3)[0][:1] == [200]


# background: a normal client keeps asking the good backend during all
# faults; every one of its requests must be answered
bg = dict(ok=0, fail=0, stop=False)


def background():
    while not bg["stop"]:
        st = get("/bg", timeout=5)[0]
        bg["ok" if st[:1] == [200] else "fail"] += 1
        time.sleep(0.05)


th = threading.Thread(target=background, daemon=True)
th.start()

results = []
for name, path, want, max_s, n in [("refuse", "/refuse", (502, 503), 1.0, 10),
                                   ("reset before head", "/resethead", (502,), 1.0, 10),
                                   ("stall", "/stall", (504,), 2.5, 3),
                                   ("black-hole", "/hole", (503, 504), 7.5, 2)]:
    worst = 0.0
    ok = 0
    for _ in range(n):
        st, out, closed, dt = get(path, timeout=max_s + 5)
        worst = max(worst, dt)
        if st[:1] and st[0] in want and dt <= max_s:
            ok += 1
        else:
            print("  %s: got %r in %.2f s" % (name, st, dt))
    results.append((name, ok, n, worst))
    H.check(ok == n, "%s -> %s within %.1f s: %d/%d (worst %.2f s)" %
            (name, "/".join(map(str, want)), max_s, ok, n, worst))
    H.check(alive(), "worker serving after %s" % name)

# reset mid-response: head 200 + 10 of 1000 bytes, then RST
cut = 0
for _ in range(5):
    st, out, closed, dt = get("/resetmid", timeout=5)
    body = out.split(b"\r\n\r\n", 1)[1] if b"\r\n\r\n" in out else b""
    if closed and len(body) < 1000 and dt < 3:
        cut += 1
H.check(cut == 5, "reset mid-response: the client's response is cut and closed (%d/5)" % cut)

# mixed endpoints: one refuses; share of requests served
served = 0
N = 100
for i in range(N):
    st = get("/mixed%d" % i, timeout=8)[0]
    served += st[:1] == [200]
share = 100.0 * served / N
print("mixed endpoints (one refusing): %d/%d served (%.2f%%)" % (served, N, share))
H.check(share >= 99.0, "one refusing endpoint of two: share served %.2f%% (target 100.00%%)" % share)

bg["stop"] = True
th.join(timeout=10)
tot = bg["ok"] + bg["fail"]
print("background client during the faults: %d/%d served (%.2f%%)" %
      (bg["ok"], tot, 100.0 * bg["ok"] / max(tot, 1)))
H.check(tot > 0 and bg["fail"] == 0, "background client served 100% during the faults")
H.check(gw.proc.poll() is None, "gateway alive")
gw.stop()
H.finish()
