#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Watch health on the Overview, in /api/overview and in /metrics, in
cluster mode against the project's fake API server: every resource's watch
with its state (watching, absent for a resource the account may not list),
resourceVersion, last event, lists, events; a 500 on the watch shows as an
error and a back-off, then the watch is up again; a compacted history
counts a relist; an unreachable server takes every watch down."""
import os
import re
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
sys.path.insert(0, os.path.join(HERE, "..", "kube"))
import wg  # noqa: E402
import kubetest  # noqa: E402
from wg import check  # noqa: E402

GW = "gateway.networking.k8s.io/v1"
port, b1, ui_port = wg.free_port(), wg.free_port(), wg.free_port()
wg.echo("one", b1)

api = kubetest.server()
api.fail(100000, 403, verb="list", resource="tlsroutes")  # the account may not list them
st = api.store
st.put("gatewayclasses", {"apiVersion": GW, "kind": "GatewayClass", "metadata": {"name": "wg"},
                          "spec": {"controllerName": "waygate.dev/gateway-controller"}})
st.put("namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "default"}})
st.put("gateways", {"apiVersion": GW, "kind": "Gateway",
                    "metadata": {"name": "gw", "namespace": "default"},
                    "spec": {"gatewayClassName": "wg", "listeners": [
                        {"name": "http", "protocol": "HTTP", "port": port}]}})
st.put("services", {"apiVersion": "v1", "kind": "Service",
                    "metadata": {"name": "one", "namespace": "default"},
                    "spec": {"ports": [{"name": "http", "port": 80, "targetPort": b1}]}})
st.put("endpointslices", {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                          "metadata": {"name": "one-1", "namespace": "default",
                                       "labels": {"kubernetes.io/service-name": "one"}},
                          "addressType": "IPv4", "ports": [{"name": "http", "port": b1}],
                          "endpoints": [{"addresses": ["127.0.0.1"],
                                         "conditions": {"ready": True}}]})


def route(path):
    return {"apiVersion": GW, "kind": "HTTPRoute", "metadata": {"name": "r", "namespace": "default"},
            "spec": {"parentRefs": [{"name": "gw"}], "hostnames": ["app.test"],
                     "rules": [{"matches": [{"path": {"type": "PathPrefix", "value": path}}],
                                "backendRefs": [{"name": "one", "port": 80}]}]}}


st.put("httproutes", route("/a"))
kc = api.kubeconfig(os.path.join(api.dir, "kubeconfig"))
state = os.path.join(api.dir, "state")
os.makedirs(state, mode=0o700)
log = os.path.join(state, "waygate.log")
proc = wg.spawn([wg.BIN, "run", "--kubeconfig", kc, "--state-dir", state,
                 "--ui-listen", "127.0.0.1:%d" % ui_port], log=log)


def logtext():
    with open(log, errors="replace") as f:
        return f.read()


wg.wait_for(lambda: wg.http(port, "/a", host="app.test", timeout=3)[0] == 200, timeout=20)
password = wg.wait_for(lambda: (re.findall(r"password=(\S+)", logtext()) or [None])[0])
ui = wg.Ui(ui_port, password=password, state=state)


def watches():
    ov = ui.get("/api/overview")
    return {w["resource"]: w for w in ov["cluster"]["watches"]}, ov["cluster"]


def routes_watch(cond):
    return wg.wait_for(lambda: (lambda w: cond(w["httproutes"]) and w)(watches()[0]), timeout=10)


w, cl = watches()
check(cl["watches_total"] == len(w) and len(w) >= 10,
      "every reflector is listed (%d: %s)" % (len(w), ", ".join(sorted(w))))
w = routes_watch(lambda r: r["up"])
r = w["httproutes"]
check(r["state"] == "watching" and r["synced"] and r["lists"] >= 1 and r["errors"] == 0
      and r["last_error"] == "" and r["namespace"] is None,
      "httproutes: listed and watching: %s" % r)
check(abs(r["last_event_ms"] / 1000 - time.time()) < 30, "httproutes: last event is recent")
check(w["tlsroutes"]["state"] == "absent" and not w["tlsroutes"]["up"],
      "a resource the account may not list is absent: %s" % w["tlsroutes"])

# an event: the version follows the server's (status writes and bookmarks
# may move it further)
obj = st.put("httproutes", route("/b"))
rv = int(obj["metadata"]["resourceVersion"])
events = r["events"]
r = routes_watch(lambda x: int(x["resource_version"] or 0) >= rv)["httproutes"]
check(r["events"] > events, "an event is counted and its resourceVersion kept (%s >= %d)" %
      (r["resource_version"], rv))

# a failing watch: an error and a back-off, then up again
api.fail(3, 500, verb="watch", resource="httproutes")
api.drop_watches()
# (the dropped stream itself shows first, as "connection closed"; between
# two back-offs the next attempt shows as watching, not yet up)
seen = wg.wait_for(lambda: (lambda x: "HTTP 500" in x["last_error"] and x["state"] == "backoff"
                            and x)(watches()[0]["httproutes"]), timeout=10, interval=0.02)
check(seen["errors"] >= 2 and seen["state"] == "backoff" and not seen["up"],
      "a 500 on the watch shows as an error while backing off: %s" % seen)
r = routes_watch(lambda x: x["up"] and x["last_error"] == "")["httproutes"]
check(r["errors"] >= 1, "the watch is up again, its errors counted (%d)" % r["errors"])

# a compacted history: the watch relists
relists = r["relists"]
api.silent = True  # nothing reaches the client from here on
st.put("httproutes", route("/c"))  # changed while it was not looking
st.compact()
api.drop_watches()
api.silent = False
r = routes_watch(lambda x: x["relists"] > relists and x["up"])["httproutes"]
check(r["lists"] >= 2, "a relist after 410 is counted (%d relists, %d lists)" %
      (r["relists"], r["lists"]))

# /metrics, parsed as Prometheus does
fams = ui.metrics()


def sample(fam, name, **labels):
    vals = [s.value for s in fams[fam].samples
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())]
    return vals[0] if len(vals) == 1 else None


check(sample("waygate_watch_up", "waygate_watch_up", resource="httproutes") == 1,
      "metrics: the httproutes watch is up")
check(sample("waygate_watch_up", "waygate_watch_up", resource="tlsroutes") is None,
      "metrics: an absent resource has no up series")
check(sample("waygate_watch_state", "waygate_watch_state", resource="tlsroutes",
             state="absent") == 1, "metrics: tlsroutes is in state absent")
check(sample("waygate_watch_relists", "waygate_watch_relists_total",
             resource="httproutes") >= 1, "metrics: relists counted")
check(sample("waygate_watch_errors", "waygate_watch_errors_total",
             resource="httproutes") >= 1, "metrics: errors counted")
check(sample("waygate_watch_events", "waygate_watch_events_total",
             resource="httproutes") >= 1, "metrics: events counted")
last = sample("waygate_watch_last_event_timestamp_seconds",
              "waygate_watch_last_event_timestamp_seconds", resource="httproutes")
check(last is not None and abs(last - time.time()) < 30, "metrics: last event time (%s)" % last)

# the server goes away: no watch is up, and the UI says so
api.down = True


def all_down():
    api.drop_watches(abrupt=True)  # also a stream that was just being set up
    w = watches()[0]
    return not any(x["up"] for x in w.values()) and w


w = wg.wait_for(all_down, timeout=15)
check(w["httproutes"]["state"] in ("backoff", "listing", "watching"),
      "API server unreachable: every watch is down (httproutes %s)" % w["httproutes"]["state"])
fams = ui.metrics()
check(sample("waygate_watch_up", "waygate_watch_up", resource="httproutes") == 0,
      "metrics: the httproutes watch is down")
api.down = False

proc.send_signal(15)
proc.wait(timeout=15)
wg.finish(logtext())
