#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""HTTP/2 end to end: ALPN h2 over TLS and cleartext prior knowledge to an
HTTP/1.1 backend (bodies both ways, X-Forwarded-Proto), an appProtocol
kubernetes.io/h2c backend reached over HTTP/2, GRPCRoute with grpc-status
trailers passed through, gRPC errors as trailers-only responses
(UNIMPLEMENTED without a route, UNAVAILABLE when the backend is down), and
421 for a stream whose :authority belongs to another listener than the TLS
server name. Needs python3-h2 (the system Python)."""
import json
import os
import socket
import ssl
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import wg  # noqa: E402
from wg import check, failures  # noqa: E402

try:
    import h2.config
    import h2.connection
    import h2.events
except ImportError:
    print("skip: python3-h2 is not installed")
    sys.exit(0)


CONFIG = """
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: waygate}
spec: {controllerName: waygate.dev/gateway-controller}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: default}
spec:
  gatewayClassName: waygate
  listeners:
  - {name: http, protocol: HTTP, port: %(port)d}
  - name: a
    protocol: HTTPS
    port: %(tport)d
    hostname: a.example.com
    tls: {certificateRefs: [{name: cert}]}
  - name: b
    protocol: HTTPS
    port: %(tport)d
    hostname: b.example.com
    tls: {certificateRefs: [{name: cert}]}
---
apiVersion: v1
kind: Secret
metadata:
  name: cert
  namespace: default
  annotations: {waygate.dev/generate-self-signed: "*.example.com"}
type: kubernetes.io/tls
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: web, namespace: default}
spec:
  parentRefs: [{name: gw}]
  hostnames: [app.test, a.example.com, b.example.com]
  rules:
  - backendRefs: [{name: one, port: 80}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: h2c, namespace: default}
spec:
  parentRefs: [{name: gw}]
  hostnames: [h2c.test]
  rules:
  - backendRefs: [{name: h2be, port: 80}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: {name: grpc, namespace: default}
spec:
  parentRefs: [{name: gw}]
  hostnames: [grpc.test]
  rules:
  - matches: [{method: {service: pkg.Echo, method: Call}}]
    backendRefs: [{name: h2be, port: 80}]
  - matches: [{method: {service: pkg.Echo, method: Down}}]
    backendRefs: [{name: down, port: 80}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: gone, namespace: default}
spec:
  parentRefs: [{name: gw, sectionName: http}]
  hostnames: [gone.test]
  rules:
  - backendRefs: [{name: gone, port: 80}]
---
apiVersion: v1
kind: Service
metadata: {name: gone, namespace: default}
spec: {ports: [{name: http, port: 80, targetPort: %(down)d}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: gone-1, namespace: default, labels: {kubernetes.io/service-name: gone}}
addressType: IPv4
ports: [{name: http, port: %(down)d, protocol: TCP}]
endpoints: [{addresses: [127.0.0.1], conditions: {ready: true}}]
---
apiVersion: v1
kind: Service
metadata: {name: one, namespace: default}
spec: {ports: [{name: http, port: 80, targetPort: %(one)d}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: one-1, namespace: default, labels: {kubernetes.io/service-name: one}}
addressType: IPv4
ports: [{name: http, port: %(one)d, protocol: TCP}]
endpoints: [{addresses: [127.0.0.1], conditions: {ready: true}}]
---
apiVersion: v1
kind: Service
metadata: {name: h2be, namespace: default}
spec: {ports: [{name: http, port: 80, targetPort: %(h2be)d, appProtocol: kubernetes.io/h2c}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: h2be-1, namespace: default, labels: {kubernetes.io/service-name: h2be}}
addressType: IPv4
ports: [{name: http, port: %(h2be)d, protocol: TCP, appProtocol: kubernetes.io/h2c}]
endpoints: [{addresses: [127.0.0.1], conditions: {ready: true}}]
---
apiVersion: v1
kind: Service
metadata: {name: down, namespace: default}
spec: {ports: [{name: http, port: 80, targetPort: %(down)d, appProtocol: kubernetes.io/h2c}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: down-1, namespace: default, labels: {kubernetes.io/service-name: down}}
addressType: IPv4
ports: [{name: http, port: %(down)d, protocol: TCP, appProtocol: kubernetes.io/h2c}]
endpoints: [{addresses: [127.0.0.1], conditions: {ready: true}}]
"""


def h2req(port, authority, path="/", method="GET", headers=(), body=b"", tls_name=None,
          timeout=5):
    """One request on a new HTTP/2 connection: (status, headers, body, trailers)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    if tls_name:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.set_alpn_protocols(["h2"])
        s = ctx.wrap_socket(s, server_hostname=tls_name)
        assert s.selected_alpn_protocol() == "h2", s.selected_alpn_protocol()
    c = h2.connection.H2Connection(h2.config.H2Configuration(header_encoding="utf-8"))
    c.initiate_connection()
    hdrs = [(":method", method), (":scheme", "https" if tls_name else "http"),
            (":authority", authority), (":path", path)] + list(headers)
    sid = c.get_next_available_stream_id()
    c.send_headers(sid, hdrs, end_stream=not body)
    s.sendall(c.data_to_send())
    sent = 0
    status, rh, data, trailers, done = None, {}, b"", {}, False
    while not done:
        while body and sent < len(body) and c.local_flow_control_window(sid) > 0:
            n = min(len(body) - sent, c.local_flow_control_window(sid), c.max_outbound_frame_size)
            c.send_data(sid, body[sent:sent + n], end_stream=sent + n == len(body))
            sent += n
        s.sendall(c.data_to_send())
        d = s.recv(65536)
        if not d:
            break
        for ev in c.receive_data(d):
            if isinstance(ev, h2.events.ResponseReceived):
                rh = dict(ev.headers)
                status = int(rh[":status"])
            elif isinstance(ev, h2.events.DataReceived):
                data += ev.data
                c.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
            elif isinstance(ev, h2.events.TrailersReceived):
                trailers = dict(ev.headers)
            elif isinstance(ev, (h2.events.StreamEnded, h2.events.StreamReset)):
                done = True
        s.sendall(c.data_to_send())
    s.close()
    return status, rh, data, trailers


def main():
    port, tport, one, h2be, down = (wg.free_port() for _ in range(5))
    wg.echo("one", one)
    be = wg.spawn(["/usr/bin/python3", os.path.join(os.path.dirname(__file__), "h2echo.py"),
                   str(h2be), "h2be"])
    wg.wait_port(h2be, proc=be)
    cfgdir = wg.tempfile.mkdtemp(prefix="wg-h2-")
    with open(os.path.join(cfgdir, "gw.yaml"), "w") as f:
        f.write(CONFIG % {"port": port, "tport": tport, "one": one, "h2be": h2be, "down": down})
    gw = wg.Gateway(cfgdir)
    wg.wait_port(port, proc=gw.proc)
    wg.wait_for(lambda: wg.http(port, "/", host="app.test")[0] == 200)

    st, rh, data, _ = h2req(port, "app.test", "/x?y=1")
    j = json.loads(data)
    check(st == 200 and j["path"].startswith("/x"), "h2c prior knowledge to an HTTP/1.1 backend: %s" % st)
    body = os.urandom(300000)
    st, rh, data, _ = h2req(port, "app.test", "/up", "POST", [("content-type", "x/y")], body)
    check(st == 200 and json.loads(data)["method"] == "POST", "h2c POST of 300 kB: %s" % st)
    # The HTTP/1.1 backend is down while the client is still uploading: the
    # stream gets an error answer and the rest of its body is dropped.
    st = h2req(port, "gone.test", "/up", "POST", [("content-type", "x/y")], body)[0]
    check(st in (502, 503) and gw.proc.poll() is None,
          "h2c upload to a backend that is down: %s, gateway alive" % st)
    wg.wait_for(lambda: h2req(tport, "a.example.com", tls_name="a.example.com")[0] == 200)
    st, rh, data, _ = h2req(tport, "a.example.com", "/t", tls_name="a.example.com")
    j = json.loads(data)
    check(st == 200 and j["headers"].get("X-Forwarded-Proto") == ["https"],
          "ALPN h2 over TLS, X-Forwarded-Proto https: %s %s" % (st, j["headers"].get("X-Forwarded-Proto")))
    st, _, _, _ = h2req(tport, "b.example.com", "/t", tls_name="a.example.com")
    check(st == 421, "h2: :authority of another listener than the SNI gets 421: %s" % st)

    st, rh, data, _ = h2req(port, "h2c.test", "/h2")
    check(st == 200 and json.loads(data).get("proto") == "HTTP/2.0",
          "appProtocol h2c: the backend is reached over HTTP/2: %s" % st)

    g = [("content-type", "application/grpc"), ("te", "trailers")]
    msg = b"\x00\x00\x00\x00\x05hello"
    st, rh, data, tr = h2req(port, "grpc.test", "/pkg.Echo/Call", "POST", g, msg)
    check(st == 200 and data == msg and tr.get("grpc-status") == "0",
          "gRPC: message echoed, grpc-status 0 in trailers: %s %r" % (st, tr))
    st, rh, data, tr = h2req(port, "grpc.test", "/pkg.Echo/Call", "POST",
                             g + [("x-grpc-status", "7")], msg)
    check(tr.get("grpc-status") == "7", "gRPC: the backend's grpc-status passed through: %r" % tr)
    st, rh, data, tr = h2req(port, "grpc.test", "/pkg.Echo/Nope", "POST", g, msg)
    code = tr.get("grpc-status") or rh.get("grpc-status")
    check(st == 200 and rh.get("content-type") == "application/grpc" and code == "12",
          "gRPC: no route -> UNIMPLEMENTED (12), not HTML: %s %s" % (st, code))
    st, rh, data, tr = h2req(port, "grpc.test", "/pkg.Echo/Down", "POST", g, msg)
    code = tr.get("grpc-status") or rh.get("grpc-status")
    check(st == 200 and code == "14", "gRPC: backend down -> UNAVAILABLE (14): %s %s" % (st, code))
    gw.stop()
    print("%d failures" % len(failures))
    sys.exit(1 if failures else 0)


main()
