#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Traffic per route: requests to two routes (one rule of the second has no
ready endpoint: 503) are counted per route rule by the data plane, and
/api/routes and /metrics (parsed by the Prometheus client library) report
the same numbers. HTTP/2 streams count once, whether they go through the
HTTP/1.1 path (to an HTTP/1.1 backend) or straight to an h2c backend. A
new configuration (SIGHUP) keeps what was counted: a rule is keyed by route
and rule index, not by its place in the snapshot."""
import os
import signal
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "h2"))
import h2raw  # noqa: E402
import wg  # noqa: E402
from wg import check  # noqa: E402

work = tempfile.mkdtemp(prefix="wg-route-traffic-")
port, b1, b2, ui_port = wg.free_port(), wg.free_port(), wg.free_port(), wg.free_port()
wg.echo("one", b1)
wg.echo("two", b2)
h2be = wg.free_port()
wg.wait_port(h2be, proc=wg.spawn(["/usr/bin/python3", os.path.join(
    os.path.dirname(__file__), "..", "h2", "h2echo.py"), str(h2be), "h2be"]))

ROUTES = """---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: a, namespace: default}
spec:
  parentRefs: [{name: gw}]
  hostnames: [a.test]
  rules: [{backendRefs: [{name: one, port: 80}]}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: b, namespace: default}
spec:
  parentRefs: [{name: gw}]
  hostnames: [b.test]
  rules:
  - matches: [{path: {type: PathPrefix, value: /ok}}]
    backendRefs: [{name: two, port: 80}]
  - matches: [{path: {type: PathPrefix, value: /broken}}]
    backendRefs: [{name: nowhere, port: 80}]
  - matches: [{path: {type: PathPrefix, value: /refused}}]
    backendRefs: [{name: closed, port: 80}]
---
apiVersion: v1
kind: Service
metadata: {name: nowhere, namespace: default}
spec: {ports: [{name: http, port: 80}]}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: h2c, namespace: default}
spec:
  parentRefs: [{name: gw}]
  hostnames: [h2c.test]
  rules: [{backendRefs: [{name: h2be, port: 80}]}]
""" + wg.backend_yaml("h2be", h2be, app_protocol="kubernetes.io/h2c") + \
    wg.backend_yaml("closed", wg.free_port())  # nobody listens there
LATE = """---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: c, namespace: default}
spec:
  parentRefs: [{name: gw}]
  hostnames: [c.test]
  rules: [{backendRefs: [{name: one, port: 80}]}]
"""
conf = os.path.join(work, "config")
os.makedirs(conf)
with open(os.path.join(conf, "10-base.yaml"), "w") as f:
    f.write(wg.gateway_yaml(port) + wg.backend_yaml("one", b1) + wg.backend_yaml("two", b2) + ROUTES)
gw = wg.Gateway(conf, ui="127.0.0.1:%d" % ui_port)
wg.wait_for(lambda: wg.http(port, "/", host="a.test")[0] == 200, timeout=15)
ui = wg.Ui(ui_port, gw)

N_A, N_OK, N_BROKEN = 29, 12, 4  # plus the one request that waited for a.test
statuses = {}
for _ in range(N_A):
    s = wg.http(port, "/x", host="a.test")[0]
    statuses[s] = statuses.get(s, 0) + 1
for _ in range(N_OK):
    s = wg.http(port, "/ok/y", host="b.test")[0]
    statuses[s] = statuses.get(s, 0) + 1
for _ in range(N_BROKEN):
    s = wg.http(port, "/broken", host="b.test")[0]
    statuses[s] = statuses.get(s, 0) + 1
# HTTP/2 (prior knowledge): 3 streams to a (over the HTTP/1.1 path), 4 to
# the h2c backend (straight)
N_H2_A, N_H2C = 3, 4
s = h2raw.connect(port)
h2 = [h2raw.get(s, 1 + 2 * i, "/h2", "a.test") for i in range(N_H2_A)]
h2 += [h2raw.get(s, 1 + 2 * (N_H2_A + i), "/", "h2c.test") for i in range(N_H2C)]
s.close()
check(h2 == [200] * (N_H2_A + N_H2C), "HTTP/2 streams answered: %s" % h2)
N_REFUSED = 3
for _ in range(N_REFUSED):
    s = wg.http(port, "/refused", host="b.test")[0]
    statuses[s] = statuses.get(s, 0) + 1
check(statuses == {200: N_A + N_OK, 503: N_BROKEN + N_REFUSED},
      "responses as configured: %s" % statuses)
A = N_A + 1 + N_H2_A


def traffic():
    routes = {r["name"]: r for r in ui.get("/api/routes")["routes"]}
    return routes


def counted():
    r = traffic()
    t = r.get("default/a", {}).get("traffic", {})
    return t.get("requests") == A and t.get("active") == 0 and r


routes = wg.wait_for(counted, timeout=5)
a, b = routes["default/a"]["traffic"], routes["default/b"]["traffic"]
check(a["responses_by_class"] == [0, 0, A, 0, 0, 0], "API: default/a %s" % a)
check(b["requests"] == N_OK + N_BROKEN + N_REFUSED and
      b["responses_5xx"] == N_BROKEN + N_REFUSED and b["active"] == 0,
      "API: default/b counts its rules: %s" % b)
check(b["upstream_errors"] >= N_REFUSED and a["upstream_errors"] == 0,
      "API: refused connections count as upstream errors of default/b only (%d)" %
      b["upstream_errors"])
check(a["bytes_out"] > 0 and a["bytes_in"] > 0, "API: bytes of default/a counted")
check(routes["default/h2c"]["traffic"]["requests"] == N_H2C and
      routes["default/h2c"]["traffic"]["responses_by_class"][2] == N_H2C,
      "API: streams to the h2c backend counted once: %s" % routes["default/h2c"]["traffic"])
rules = {x["index"]: x.get("traffic") for x in routes["default/b"]["rules"]}
check(rules.get(0, {}).get("requests") == N_OK and rules.get(1, {}).get("requests") == N_BROKEN
      and rules[1]["responses_5xx"] == N_BROKEN, "API: per rule of default/b: %s" % rules)

fams = ui.metrics()


def sample(fam, name, **labels):
    vals = [s.value for s in fams[fam].samples
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())]
    return vals[0] if len(vals) == 1 else None


check(sample("waygate_route_requests", "waygate_route_requests_total",
             route="default/a", rule="0") == A, "metrics: requests of default/a rule 0")
check(sample("waygate_route_requests", "waygate_route_requests_total",
             route="default/b", rule="1") == N_BROKEN, "metrics: requests of default/b rule 1")
check(sample("waygate_route_responses", "waygate_route_responses_total",
             route="default/b", rule="1", code="5xx") == N_BROKEN,
      "metrics: 5xx responses of default/b rule 1")
check(sample("waygate_route_responses", "waygate_route_responses_total",
             route="default/b", rule="0", code="2xx") == N_OK,
      "metrics: 2xx responses of default/b rule 0")
check(sample("waygate_route_upstream_errors", "waygate_route_upstream_errors_total",
             route="default/b", rule="2") >= N_REFUSED and
      sample("waygate_route_upstream_errors", "waygate_route_upstream_errors_total",
             route="default/b", rule="1") == 0,
      "metrics: upstream errors of default/b rule 2 (refused), none for rule 1 (no endpoint)")
h = fams["waygate_route_request_duration_seconds"]
buckets = [s for s in h.samples if s.name.endswith("_bucket") and s.labels["route"] == "default/a"]
check(h.type == "histogram" and buckets and buckets[-1].labels["le"] == "+Inf"
      and buckets[-1].value == A and [s.value for s in buckets] == sorted(s.value for s in buckets),
      "metrics: latency histogram of default/a is cumulative and counts %d" % A)
check(sample("waygate_route_request_duration_seconds",
             "waygate_route_request_duration_seconds_count", route="default/a", rule="0") == A,
      "metrics: histogram count of default/a")

# client connections open per listener port: three held open, then closed
import socket  # noqa: E402
held = [socket.create_connection(("127.0.0.1", port)) for _ in range(3)]


def port_conns():
    fam = ui.metrics()["waygate_listener_active_connections"]
    vals = [x.value for x in fam.samples if x.labels.get("port") == str(port)]
    return vals[0] if vals else None


check(wg.wait_for(lambda: port_conns() == 3, timeout=5),
      "metrics: three connections open on port %d" % port)
check(any(x["port"] == port and x["active"] == 3
          for x in ui.get("/api/traffic")["totals"]["listener_connections"]),
      "API: /api/traffic lists the port's three connections")
for c in held:
    c.close()
check(wg.wait_for(lambda: port_conns() == 0, timeout=5),
      "metrics: none open once they closed")

# a new configuration: the counters of a and b stay, c starts at zero
with open(os.path.join(conf, "20-late.yaml"), "w") as f:
    f.write(LATE)
gw.proc.send_signal(signal.SIGHUP)
wg.wait_for(lambda: wg.http(port, "/", host="c.test")[0] == 200, timeout=10)
for _ in range(5):
    wg.http(port, "/", host="a.test")
routes = wg.wait_for(lambda: (lambda r: r["default/a"].get("traffic", {}).get("requests") == A + 5
                              and r)(traffic()), timeout=5)
check(routes["default/b"]["traffic"]["requests"] == N_OK + N_BROKEN + N_REFUSED,
      "after a publish default/b keeps its counts")
check(routes["default/c"]["traffic"]["requests"] == 1, "the new route counts from zero")
check(True, "after a publish default/a keeps counting (%d)" % (A + 5))

# rates: once the UI's first window has closed, a number per route
routes = wg.wait_for(lambda: (lambda r: r["default/a"]["traffic"]["rps"] is not None and r)(
    traffic()), timeout=15)
t = routes["default/a"]["traffic"]
check(t["rps"] >= 0 and 0 <= t["error_share"] <= 1 and t["window_s"] >= 4.9,
      "API: requests/s and error share of default/a over a window: %s" % t)

gw.stop()
wg.finish(gw.logtext())
