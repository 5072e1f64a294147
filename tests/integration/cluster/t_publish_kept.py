#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A route change in cluster mode publishes only that route's rules: the
routing tables keep the other rules (`event=published ... whole=false`,
`rules_made` that rule and those of routes whose status writes came back
meanwhile), also for the first change after start, when the last
whole reconcile of the initial load gave an equal snapshot (made of new
rules, served without a new revision so that the next change shares
them). Against the project's fake API server, 200 HTTPRoutes."""
import os
import re
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
sys.path.insert(0, os.path.join(HERE, "..", "kube"))
import wg  # noqa: E402
from wg import check  # noqa: E402
import kubetest  # noqa: E402

N = 200
GW = "gateway.networking.k8s.io/v1"
port, backend = wg.free_port(), wg.free_port()
wg.echo("b", backend)
api = kubetest.server()
st = api.store
st.put("gatewayclasses", {"apiVersion": GW, "kind": "GatewayClass", "metadata": {"name": "wg"},
                          "spec": {"controllerName": "waygate.dev/gateway-controller"}})
st.put("gateways", {"apiVersion": GW, "kind": "Gateway", "metadata": {"name": "gw", "namespace": "default"},
                    "spec": {"gatewayClassName": "wg", "listeners": [
                        {"name": "http", "protocol": "HTTP", "port": port}]}})
st.put("services", {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "b", "namespace": "default"},
                    "spec": {"ports": [{"name": "http", "port": 80, "targetPort": backend}]}})
st.put("endpointslices", {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                          "metadata": {"name": "b-1", "namespace": "default",
                                       "labels": {"kubernetes.io/service-name": "b"}},
                          "addressType": "IPv4", "ports": [{"name": "http", "port": backend}],
                          "endpoints": [{"addresses": ["127.0.0.1"], "conditions": {"ready": True}}]})


def route(i, prefix="/p"):
    return {"apiVersion": GW, "kind": "HTTPRoute",
            "metadata": {"name": "r%03d" % i, "namespace": "default"},
            "spec": {"parentRefs": [{"name": "gw"}], "hostnames": ["h%03d.example.test" % i],
                     "rules": [{"matches": [{"path": {"type": "PathPrefix", "value": prefix}}],
                                "backendRefs": [{"name": "b", "port": 80}]}]}}


def code(host, path):
    try:
        return wg.http(port, path, host=host, timeout=2)[0]
    except OSError:
        return 0


for i in range(N):
    st.put("httproutes", route(i))
state = os.path.join(api.dir, "state")
os.makedirs(state, mode=0o700)
log = os.path.join(state, "log")
p = wg.spawn([wg.BIN, "run", "--kubeconfig", api.kubeconfig(os.path.join(api.dir, "kc")),
              "--state-dir", state, "--ui-listen", "off", "--log-level", "debug"], log=log)
try:
    check(wg.wait_for(lambda: code("h%03d.example.test" % (N - 1), "/p/x") == 200, timeout=30),
          "the last of %d routes is served" % N)
    time.sleep(2)  # our own status writes come back and are reconciled

    def published():
        return [m.groupdict() for m in re.finditer(
            r"event=published revision=(?P<rev>\d+) .*?rules_made=(?P<made>\d+) "
            r"rules_dropped=(?P<dropped>\d+) whole=(?P<whole>\w+)", open(log, errors="replace").read())]

    for k, i in enumerate((7, 150, 7)):
        before = len(published())
        st.put("httproutes", route(i, "/q%d" % k))
        ok = wg.wait_for(lambda: code("h%03d.example.test" % i, "/q%d/x" % k) == 200, timeout=10)
        check(ok, "change %d (route %d) is served" % (k + 1, i))
        time.sleep(0.3)
        new = published()[before:]
        # besides the changed route's rule, the routes whose status
        # writes came back since the last publish (re-derived, so made
        # again): a few, never all
        check(len(new) >= 1 and new[-1]["whole"] == "false" and 1 <= int(new[-1]["made"]) <= N // 4,
              "change %d keeps most of the %d rules: %s" % (k + 1, N, new))
finally:
    p.terminate()
    p.wait(timeout=30)
wg.finish(open(log, errors="replace").read())
