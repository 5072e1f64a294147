#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""HTTP/2 backends (appProtocol kubernetes.io/h2c) get the HTTP/1.1 path's
attempt rules: the route's request timeout and backend request timeout
(504, gRPC DEADLINE_EXCEEDED for gRPC clients), retries on status for
bodiless requests only, and passive health: an endpoint that refuses
connections is skipped at once and then ejected. Responses carry our Via
after the backend's own. The route's filters apply to HTTP/2 backends as
to HTTP/1.1 ones (header modifiers, URL rewrite of :path and :authority). Needs python3-h2."""
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
sys.path.insert(0, os.path.dirname(__file__))
import wg  # noqa: E402

try:
    import h2.config  # noqa: F401
except ImportError:
    print("skip: python3-h2 is not installed")
    sys.exit(0)

from t_h2_h1 import h2req, route  # noqa: E402

check = wg.check


def h2c_backend(name, port, addrs):
    eps = "\n".join("- {addresses: [%s], conditions: {ready: true}}" % a for a in addrs)
    return """---
apiVersion: v1
kind: Service
metadata: {name: %(n)s, namespace: default}
spec: {ports: [{name: http, port: 80, targetPort: %(p)d, appProtocol: kubernetes.io/h2c}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: %(n)s-1, namespace: default, labels: {kubernetes.io/service-name: %(n)s}}
addressType: IPv4
ports: [{name: http, port: %(p)d, appProtocol: kubernetes.io/h2c}]
endpoints:
%(eps)s
""" % {"n": name, "p": port, "eps": eps}


def main():
    port, bport = wg.free_port(), wg.free_port()
    wg.spawn(["/usr/bin/python3", os.path.join(os.path.dirname(__file__), "h2echo.py"),
              str(bport), "h2be"])
    wg.wait_port(bport)
    be = "backendRefs: [{name: h2be, port: 80}]"
    cfg = wg.gateway_yaml(port) + h2c_backend("h2be", bport, ["127.0.0.1"])
    cfg += h2c_backend("pair", bport, ["127.0.0.1", "127.0.0.2"])
    cfg += route("to", "to.test", "timeouts: {request: 300ms}\n    " + be)
    cfg += route("bto", "bto.test", "timeouts: {request: 5s, backendRequest: 200ms}\n    " + be)
    cfg += route("retry", "retry.test",
                 "retry: {codes: [503], attempts: 2, backoff: 10ms}\n    " + be)
    cfg += route("pair", "pair.test", "backendRefs: [{name: pair, port: 80}]")
    cfg += route("filt", "filt.test", """matches: [{path: {type: PathPrefix, value: /old}}]
    filters:
    - type: URLRewrite
      urlRewrite: {hostname: inner.test, path: {type: ReplacePrefixMatch, replacePrefixMatch: /new}}
    - type: RequestHeaderModifier
      requestHeaderModifier: {set: [{name: x-set, value: "1"}]}
    - type: ResponseHeaderModifier
      responseHeaderModifier: {add: [{name: x-resp, value: added}]}
    """ + be)
    cfgdir = wg.tempfile.mkdtemp(prefix="wg-h2up-")
    with open(os.path.join(cfgdir, "gw.yaml"), "w") as f:
        f.write(cfg)
    gw = wg.Gateway(cfgdir)
    wg.wait_port(port, proc=gw.proc)
    wg.wait_for(lambda: h2req(port, "retry.test", "/")[0] == 200)

    st, rh, _ = h2req(port, "retry.test", "/")
    vias = [v for k, v in rh if k == "via"]
    check(st == 200 and vias == ["2 waygate"], "h2c: the response carries Via: %r" % vias)
    st, rh, _ = h2req(port, "retry.test", "/via")
    vias = [v for k, v in rh if k == "via"]
    check(vias == ["2 upstream-proxy", "2 waygate"],
          "h2c: our Via comes after the backend's: %r" % vias)

    st, rh, body = h2req(port, "filt.test", "/old/p?q=1")
    seen = json.loads(body or b"{}")
    check(st == 200 and seen.get("path") == "/new/p?q=1" and
          seen["headers"].get(":authority") == "inner.test" and
          seen["headers"].get("x-set") == "1" and dict(rh).get("x-resp") == "added",
          "h2c: rewrite and header modifiers reach the HTTP/2 backend: %r %r" % (st, seen))

    t = time.time()
    st = h2req(port, "to.test", "/hang")[0]
    check(st == 504 and time.time() - t < 2.5, "h2c: request timeout -> 504: %r in %.2fs"
          % (st, time.time() - t))
    t = time.time()
    st, rh, _ = h2req(port, "bto.test", "/hang", method="POST",
                      headers=[("content-type", "application/grpc"), ("te", "trailers")],
                      body=b"\0\0\0\0\0")
    check(st == 200 and dict(rh).get("grpc-status") == "4" and time.time() - t < 2.5,
          "h2c: backend request timeout -> gRPC DEADLINE_EXCEEDED: %r %r in %.2fs"
          % (st, dict(rh).get("grpc-status"), time.time() - t))
    t = time.time()
    st = h2req(port, "bto.test", "/hang")[0]
    check(st == 504 and time.time() - t < 2.5, "h2c: backend request timeout -> 504: %r" % st)

    # /flaky answers 503 every other time, counted by the backend
    results = [h2req(port, "retry.test", "/flaky")[0] for _ in range(4)]
    check(results == [200] * 4, "h2c: 503 retried for GETs: %r" % results)
    results = [h2req(port, "retry.test", "/flaky", method="POST", body=b"z")[0]
               for _ in range(2)]
    check(sorted(results) == [200, 503], "h2c: a request with a body is not retried: %r"
          % results)

    sts = [h2req(port, "pair.test", "/")[0] for _ in range(8)]
    check(sts == [200] * 8, "h2c: a refusing endpoint is skipped at connect: %r" % sts)
    check(wg.wait_for(lambda: "event=endpoint_ejected" in gw.logtext() and
                      "127.0.0.2" in gw.logtext(), timeout=5),
          "h2c: the refusing endpoint is ejected")
    check(gw.stop() == 0, "gateway exits 0")
    wg.finish(gw.logtext())
    print("0 failures")


if __name__ == "__main__":
    main()
