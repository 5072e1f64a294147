#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Gateway infrastructure propagation against the project's fake API server:
for a Gateway of ours, `waygate run` creates a headless Service
`<gateway>-waygate` carrying the gateway-name and managed-by labels, every
spec.infrastructure label and annotation, an owner reference to the Gateway
and the listener ports; it follows changes of spec.infrastructure and of the
listeners (keys removed from the Gateway leave the Service), puts back what
someone changed on the Service, and deletes it with the Gateway (and a stale
one of ours at start). A Service of the same name that waygate does not
manage, another box's Service and Gateways of other controllers are never
written."""
import copy
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
sys.path.insert(0, os.path.join(HERE, "..", "kube"))
import wg  # noqa: E402
from wg import check, failures  # noqa: E402
import kubetest  # noqa: E402

GW = "gateway.networking.k8s.io/v1"
CTL = "waygate.dev/gateway-controller"
NAME_LABEL = "gateway.networking.k8s.io/gateway-name"
MANAGED = "app.kubernetes.io/managed-by"
CTL_ANN = "waygate.dev/controller-name"


api = kubetest.server()
st = api.store
http_port, udp_port, extra_port = wg.free_port(), wg.free_port(), wg.free_port()

st.put("namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "default"}})
st.put("namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team"}})
st.put("gatewayclasses", {"apiVersion": GW, "kind": "GatewayClass", "metadata": {"name": "wg"},
                          "spec": {"controllerName": CTL}})
st.put("gatewayclasses", {"apiVersion": GW, "kind": "GatewayClass",
                          "metadata": {"name": "foreign"},
                          "spec": {"controllerName": "example.net/other"}})


def gateway(name, ns="team", cls="wg", labels=None, annotations=None, listeners=None):
    spec = {"gatewayClassName": cls, "listeners": listeners or [
        {"name": "http", "protocol": "HTTP", "port": http_port},
        {"name": "dns", "protocol": "UDP", "port": udp_port}]}
    if labels is not None or annotations is not None:
        spec["infrastructure"] = {}
        if labels is not None:
            spec["infrastructure"]["labels"] = labels
        if annotations is not None:
            spec["infrastructure"]["annotations"] = annotations
    return {"apiVersion": GW, "kind": "Gateway", "metadata": {"name": name, "namespace": ns},
            "spec": spec}


def service(name, ns, labels=None, annotations=None):
    md = {"name": name, "namespace": ns}
    if labels:
        md["labels"] = labels
    if annotations:
        md["annotations"] = annotations
    return {"apiVersion": "v1", "kind": "Service", "metadata": md,
            "spec": {"type": "ClusterIP", "ports": [{"name": "x", "port": 1, "protocol": "TCP"}]}}


st.put("gateways", gateway("edge", labels={"tier": "edge", "key2": "value2"},
                           annotations={"key1": "value1", "team": "net"}))
st.put("gateways", gateway("theirs", cls="foreign"))
st.put("gateways", gateway("taken"))
# Not managed by waygate, with the name waygate would use for "taken".
st.put("services", service("taken-waygate", "team", labels={"app": "mine"}))
# Another box's Service (managed by waygate, another controller), no Gateway.
st.put("services", service("ghost-waygate", "team",
                           labels={MANAGED: "waygate", NAME_LABEL: "ghost"},
                           annotations={CTL_ANN: "example.net/other-box"}))
# A stale Service of ours (its Gateway went while the box was off).
st.put("services", service("gone-waygate", "default",
                           labels={MANAGED: "waygate", NAME_LABEL: "gone"},
                           annotations={CTL_ANN: CTL}))


def rv(res, ns, name):
    with st.cond:
        o = st.objs.get((res, ns, name))
        return o["metadata"]["resourceVersion"] if o else None


def svc(name, ns="team"):
    with st.cond:
        o = st.objs.get(("services", ns, name))
        return copy.deepcopy(o) if o else None


untouched = {k: rv("services", "team", k) for k in ("taken-waygate", "ghost-waygate")}
kc = api.kubeconfig(os.path.join(api.dir, "kubeconfig"))
state = os.path.join(api.dir, "state")
os.makedirs(state, mode=0o700)
log = os.path.join(state, "run.log")
proc = wg.spawn([wg.BIN, "run", "--kubeconfig", kc, "--state-dir", state, "--ui-listen", "off"],
                log=log)


def wait(fn, what, timeout=15):
    try:
        wg.wait_for(fn, timeout=timeout, interval=0.1)
        check(True, what)
    except AssertionError:
        check(False, what + " (timed out)")


wait(lambda: svc("edge-waygate"), "the Service edge-waygate is created")
s = svc("edge-waygate") or {"metadata": {}, "spec": {}}
md, spec = s["metadata"], s["spec"]
gw_uid = st.objs[("gateways", "team", "edge")]["metadata"]["uid"]
check(md.get("labels") == {NAME_LABEL: "edge", MANAGED: "waygate", "tier": "edge",
                           "key2": "value2"}, "labels: gateway-name, managed-by, infrastructure "
      "(%s)" % md.get("labels"))
check(md.get("annotations") == {"key1": "value1", "team": "net", CTL_ANN: CTL},
      "annotations: infrastructure and controller (%s)" % md.get("annotations"))
check(md.get("ownerReferences") == [{"apiVersion": GW, "kind": "Gateway", "name": "edge",
                                     "uid": gw_uid, "controller": True}],
      "owner reference to the Gateway (%s)" % md.get("ownerReferences"))
check(spec.get("clusterIP") == "None" and spec.get("type") == "ClusterIP" and
      "selector" not in spec, "headless, ClusterIP, no selector")
want_ports = sorted([{"name": "tcp-%d" % http_port, "protocol": "TCP", "port": http_port,
                      "targetPort": http_port},
                     {"name": "udp-%d" % udp_port, "protocol": "UDP", "port": udp_port,
                      "targetPort": udp_port}], key=lambda p: p["port"])
check(spec.get("ports") == want_ports, "ports are the listener ports (%s)" % spec.get("ports"))
wait(lambda: svc("gone-waygate", "default") is None, "a stale Service of ours is deleted")

# spec.infrastructure changes: a label and an annotation go, others change.
st.put("gateways", gateway("edge", labels={"tier": "core"}, annotations={"key1": "value9"}))
wait(lambda: (svc("edge-waygate") or {}).get("metadata", {}).get("labels") ==
     {NAME_LABEL: "edge", MANAGED: "waygate", "tier": "core"},
     "labels follow spec.infrastructure (removed key dropped)")
check((svc("edge-waygate") or {}).get("metadata", {}).get("annotations") ==
      {"key1": "value9", CTL_ANN: CTL}, "annotations follow spec.infrastructure (%s)" %
      (svc("edge-waygate") or {}).get("metadata", {}).get("annotations"))

# Listeners change: the ports follow (an update, not a new Service), through
# a 503 (retried) and a 409 (read again, decided again).
api.fail(1, 503, verb="patch", resource="services")
api.fail(1, 409, verb="patch", resource="services")
st.put("gateways", gateway("edge", labels={"tier": "core"}, annotations={"key1": "value9"},
                           listeners=[{"name": "http", "protocol": "HTTP", "port": http_port},
                                      {"name": "tls", "protocol": "TLS", "port": extra_port,
                                       "tls": {"mode": "Passthrough"}}]))
wait(lambda: [p["port"] for p in (svc("edge-waygate") or {}).get("spec", {}).get("ports", [])] ==
     sorted([http_port, extra_port]), "ports follow the listeners")
creates = [r for r in api.log if r["verb"] == "create" and
           (r.get("body") or {}).get("metadata", {}).get("name") == "edge-waygate"]
check(len(creates) == 1, "updated in place (%d creates)" % len(creates))
patches = [r for r in api.log if r["verb"] == "patch" and r["resource"] == "services"]
check(patches and all((r.get("body") or {}).get("metadata", {}).get("resourceVersion")
                      for r in patches), "every patch carries a resourceVersion precondition")
codes = [r["code"] for r in patches]
check(503 in codes and 409 in codes and codes[-1] == 200,
      "the injected 503 and 409 were retried (%s)" % codes)
check(any(r["verb"] == "get" and r["path"].endswith("/services/edge-waygate") for r in api.log),
      "after the 409 the Service is read again")

# Someone edits the Service: waygate puts it back.
cur = svc("edge-waygate")
cur["metadata"]["labels"].pop("tier")
cur["metadata"]["labels"]["intruder"] = "1"
st.put("services", cur)
wait(lambda: (svc("edge-waygate") or {}).get("metadata", {}).get("labels") ==
     {NAME_LABEL: "edge", MANAGED: "waygate", "tier": "core"}, "a hand edit is undone")

# Gateway deleted: its Service goes.
st.delete("gateways", "team", "edge")
wait(lambda: svc("edge-waygate") is None, "the Service is deleted with the Gateway")

# Gateway moved to another controller's class: no longer ours, deleted too.
st.put("gateways", gateway("moving"))
wait(lambda: svc("moving-waygate"), "a second Gateway gets its Service")
st.put("gateways", gateway("moving", cls="foreign"))
wait(lambda: svc("moving-waygate") is None, "a Gateway no longer ours loses its Service")

time.sleep(1)
check(svc("theirs-waygate") is None, "no Service for another controller's Gateway")
check({k: rv("services", "team", k) for k in untouched} == untouched,
      "the unmanaged Service and another box's Service are untouched")
writes = [r for r in api.log if r["verb"] in ("create", "patch", "delete", "update") and
          r["resource"] == "services"]
bad = [r["path"] for r in writes if "taken-waygate" in r["path"] or "ghost-waygate" in r["path"]
       or (r["verb"] == "create" and (r.get("body") or {}).get("metadata", {}).get("name") in
           ("taken-waygate", "ghost-waygate", "theirs-waygate"))]
check(not bad, "no write ever names them (%s)" % bad)
check(all(r["code"] in (200, 201, 409, 503) for r in writes),
      "every Service write succeeded but the injected faults (%s)" % [(r["verb"], r["code"]) for r in writes])
check(proc.poll() is None, "waygate still running")
with open(log, errors="replace") as f:
    text = f.read()
check("kube_infra_conflict ns=team name=taken-waygate" in text,
      "the name conflict is logged")
proc.send_signal(15)
check(proc.wait(timeout=15) == 0, "clean exit on SIGTERM")
with open(log, errors="replace") as f:
    text = f.read()
check("Sanitizer" not in text, "no sanitizer report (with a SANITIZE=1 binary)")
if failures:
    print(text[-4000:])
    sys.exit(1)
