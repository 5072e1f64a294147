#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Cluster mode end to end against the project's fake API server: the
routes in the cluster are served and status is written back; a change in
the cluster is served; with the API server stopped traffic keeps flowing;
a restart with the API server unreachable serves the last-known-good
revision from the store; and the UI's Settings switch a box from local mode
to a cluster (kubeconfig upload, tested first) and back."""
import json
import os
import re
import ssl
import sys
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
sys.path.insert(0, os.path.join(HERE, "..", "kube"))
import wg  # noqa: E402
import kubetest  # noqa: E402

check = wg.check

GW = "gateway.networking.k8s.io/v1"
port = wg.free_port()
b1, b2 = wg.free_port(), wg.free_port()
wg.echo("one", b1)
wg.echo("two", b2)

api = kubetest.server()
st = api.store
st.put("gatewayclasses", {"apiVersion": GW, "kind": "GatewayClass", "metadata": {"name": "wg"},
                          "spec": {"controllerName": "waygate.dev/gateway-controller"}})
st.put("namespaces", {"apiVersion": "v1", "kind": "Namespace",
                      "metadata": {"name": "default", "labels": {"kubernetes.io/metadata.name": "default"}}})
st.put("gateways", {"apiVersion": GW, "kind": "Gateway",
                    "metadata": {"name": "gw", "namespace": "default"},
                    "spec": {"gatewayClassName": "wg", "listeners": [
                        {"name": "http", "protocol": "HTTP", "port": port,
                         "allowedRoutes": {"namespaces": {"from": "Same"}}}]}})
for name, bport in (("one", b1), ("two", b2)):
    st.put("services", {"apiVersion": "v1", "kind": "Service",
                        "metadata": {"name": name, "namespace": "default"},
                        "spec": {"ports": [{"name": "http", "port": 80, "targetPort": bport}]}})
    st.put("endpointslices", {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                              "metadata": {"name": name + "-1", "namespace": "default",
                                           "labels": {"kubernetes.io/service-name": name}},
                              "addressType": "IPv4", "ports": [{"name": "http", "port": bport}],
                              "endpoints": [{"addresses": ["127.0.0.1"], "conditions": {"ready": True}}]})


def route(svc):
    return {"apiVersion": GW, "kind": "HTTPRoute", "metadata": {"name": "r", "namespace": "default"},
            "spec": {"parentRefs": [{"name": "gw"}], "hostnames": ["app.test"],
                     "rules": [{"backendRefs": [{"name": svc, "port": 80}]}]}}


st.put("httproutes", route("one"))
kc = api.kubeconfig(os.path.join(api.dir, "kubeconfig"))


def pod():
    code, _, body = wg.http(port, "/", host="app.test", timeout=3)
    return wg.echo_pod(body) if code == 200 else code


state = os.path.join(api.dir, "state")
os.makedirs(state, mode=0o700)


def start_cluster_mode():
    p = wg.spawn([wg.BIN, "run", "--kubeconfig", kc, "--state-dir", state, "--ui-listen", "off"],
                 log=os.path.join(state, "cluster.log"))
    return p


gw = start_cluster_mode()
wg.wait_for(lambda: pod() == "one", timeout=20)
check(True, "the cluster's route is served")


def status_of(resource, ns, name):
    with st.cond:
        o = st.objs.get((resource, ns, name))
        return json.loads(json.dumps(o.get("status", {}))) if o else {}


def cond(conds, t):
    return next((c for c in conds if c.get("type") == t), {})


wg.wait_for(lambda: cond(status_of("gatewayclasses", "", "wg").get("conditions", []),
                         "Accepted").get("status") == "True", timeout=10)
check(True, "GatewayClass Accepted written back")
wg.wait_for(lambda: cond(status_of("gateways", "default", "gw").get("conditions", []),
                         "Programmed").get("status") == "True", timeout=10)
check(True, "Gateway Programmed written back")

def route_accepted():
    parents = status_of("httproutes", "default", "r").get("parents", [])
    return parents and cond(parents[0].get("conditions", []), "Accepted").get("status") == "True"


wg.wait_for(route_accepted, timeout=10)
check(True, "HTTPRoute parent Accepted written back")

st.put("httproutes", route("two"))
t0 = time.time()
wg.wait_for(lambda: pod() == "two", timeout=5)
check(True, "a change in the cluster is served (%.2f s)" % (time.time() - t0))
served = [l for l in open(os.path.join(state, "cluster.log")) if "event=change_served" in l]
check(served and "pass=routes" in served[-1],
      "a changed route alone is re-derived, not the whole set: %r" % served[-1:])

# The API server goes away: traffic keeps flowing.
api.down = True
api.drop_watches(abrupt=True)
ok = sum(1 for _ in range(50) if pod() == "two")
check(ok == 50, "API server unreachable: %d/50 requests served" % ok)

# Reboot while the cluster is unreachable: the store serves at once.
gw.send_signal(15)
gw.wait(timeout=15)
t0 = time.time()
gw = start_cluster_mode()
wg.wait_for(lambda: pod() == "two", timeout=10, interval=0.01)
check(True, "restart with the cluster unreachable serves the stored revision (%.3f s)" %
      (time.time() - t0))

# The cluster returns with a change made meanwhile: it converges.
st.put("httproutes", route("one"))
api.down = False
wg.wait_for(lambda: pod() == "one", timeout=40)
check(True, "after the outage the change made meanwhile is served")
gw.send_signal(15)
gw.wait(timeout=15)

# ---- the UI switches a local box to the cluster and back ----
cfgdir = os.path.join(api.dir, "local")
os.mkdir(cfgdir)
with open(os.path.join(cfgdir, "gw.yaml"), "w") as f:
    f.write(wg.gateway_yaml(port) + """---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r, namespace: default}
spec:
  parentRefs: [{name: gw}]
  hostnames: [app.test]
  rules: [{backendRefs: [{name: two, port: 80}]}]
""" + wg.backend_yaml("two", b2))
state2 = os.path.join(api.dir, "state2")
ui_port = wg.free_port()
local = wg.Gateway(cfgdir, state=state2, ui="127.0.0.1:%d" % ui_port)
wg.wait_for(lambda: pod() == "two", timeout=15)
check(True, "local mode serves its own route")
password = wg.wait_for(lambda: (re.findall(r"password=(\S+)", local.logtext()) or [None])[0])

ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
base = "https://127.0.0.1:%d" % ui_port
cookies = {}


def call(method, path, body=None, csrf=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base + path, data=data, method=method)
    req.add_header("Origin", base)
    req.add_header("Content-Type", "application/json")
    if cookies:
        req.add_header("Cookie", "; ".join("%s=%s" % kv for kv in cookies.items()))
    if csrf:
        req.add_header("X-CSRF-Token", csrf)
    try:
        r = urllib.request.urlopen(req, context=ctx, timeout=30)
        code, hdrs, text = r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        code, hdrs, text = e.code, e.headers, e.read()
    for c in hdrs.get_all("Set-Cookie") or []:
        k, v = c.split(";", 1)[0].split("=", 1)
        cookies[k] = v
    return code, json.loads(text or b"{}")


wg.wait_port(ui_port, proc=local.proc)
code, login = call("POST", "/api/login", {"user": "admin", "password": password})
check(code == 200, "UI login (%d)" % code)
csrf = login.get("csrf")
bad = dict(json.load(open(kc)))
bad["clusters"] = [{"name": "fake", "cluster": {"server": "https://127.0.0.1:1",
                                                 "certificate-authority": api.certs["ca.pem"]}}]
code, r = call("POST", "/api/settings/kubeconfig", {"kubeconfig": json.dumps(bad), "context": ""}, csrf)
check(code >= 400, "an unreachable cluster's kubeconfig is refused (%d %s)" % (code, r))
check(pod() == "two", "after a refused upload local mode keeps serving")
code, r = call("POST", "/api/settings/kubeconfig", {"kubeconfig": open(kc).read(), "context": ""}, csrf)
check(code == 200, "kubeconfig upload accepted (%d %s)" % (code, r))
wg.wait_for(lambda: pod() == "one", timeout=20)
check(True, "after the upload the cluster's route is served")
check(oct(os.stat(os.path.join(state2, "kubeconfig")).st_mode & 0o777) == "0o600",
      "the kept kubeconfig is 0600")
code, ov = call("GET", "/api/overview")
check(ov.get("cluster", {}).get("mode") == "cluster", "overview says cluster mode")
code, r = call("POST", "/api/settings/mode", {"mode": "local"}, csrf)
check(code == 200, "switch back to local mode (%d %s)" % (code, r))
wg.wait_for(lambda: pod() == "two", timeout=10)
check(True, "local mode serves its route again")
check(not os.path.exists(os.path.join(state2, "kubeconfig")),
      "the kubeconfig is set aside so the next start stays local")
local.stop()

wg.finish(open(os.path.join(state, "cluster.log")).read(), local.logtext())
