#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The HTTP data plane through the real binary: `waygate run --config` in
local mode in front of `waygate echo` backends, on loopback ports picked
free. Checks routing by host (exact, wildcard, none -> 404) and path,
header matches, weights, redirects, rewrites, header modifiers, forwarded
headers, keep-alive and pipelining, streaming bodies in both framings, the
refusal of ambiguous framings (400/501 and close, nothing forwarded),
HTTPS by SNI with 421 for a misdirected Host, and a route change served
on SIGHUP without dropping a kept-alive connection."""
import collections
import json
import os
import signal
import socket
import ssl
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import wg  # noqa: E402
from wg import check, failures  # noqa: E402


HTTP, HTTPS = wg.free_port(), wg.free_port()
V1, V2 = wg.free_port(), wg.free_port()
wg.echo("echo-v1", V1)
wg.echo("echo-v2", V2)

work = tempfile.mkdtemp(prefix="wg-proxy-")
cfg = os.path.join(work, "config")
os.makedirs(cfg)

COMMON = """
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
  - name: http
    protocol: HTTP
    port: %(http)d
    allowedRoutes: {namespaces: {from: Same}}
  - name: https
    protocol: HTTPS
    port: %(https)d
    hostname: "*.example.test"
    tls:
      mode: Terminate
      certificateRefs: [{kind: Secret, name: cert}]
    allowedRoutes: {namespaces: {from: Same}}
---
apiVersion: v1
kind: Secret
metadata:
  name: cert
  namespace: default
  annotations: {waygate.dev/generate-self-signed: "*.example.test"}
type: kubernetes.io/tls
""" % {"http": HTTP, "https": HTTPS}

for name, port in (("v1", V1), ("v2", V2)):
    COMMON += wg.backend_yaml(name, port)

ROUTES = """
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: app, namespace: default}
spec:
  parentRefs: [{name: gw}]
  hostnames: [app.example.test]
  rules:
  - matches: [{headers: [{name: env, value: canary}]}]
    backendRefs: [{name: v2, port: 80}]
  - matches: [{path: {type: PathPrefix, value: /v1}}]
    backendRefs: [{name: %(v1name)s, port: 80}]
  - matches: [{path: {type: PathPrefix, value: /split}}]
    backendRefs: [{name: v1, port: 80, weight: 50}, {name: v2, port: 80, weight: 50}]
  - matches: [{path: {type: Exact, value: /redirect}}]
    filters:
    - type: RequestRedirect
      requestRedirect: {scheme: https, statusCode: 301}
  - matches: [{path: {type: PathPrefix, value: /rewrite}}]
    filters:
    - type: URLRewrite
      urlRewrite:
        hostname: rewritten.example.test
        path: {type: ReplacePrefixMatch, replacePrefixMatch: /new}
    - type: RequestHeaderModifier
      requestHeaderModifier:
        set: [{name: X-Set, value: "yes"}]
        add: [{name: X-Add, value: added}]
        remove: [X-Drop]
    - type: ResponseHeaderModifier
      responseHeaderModifier:
        add: [{name: X-Resp, value: r}]
    backendRefs: [{name: v1, port: 80}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: wild, namespace: default}
spec:
  parentRefs: [{name: gw}]
  hostnames: ["*.wild.example.test"]
  rules:
  - backendRefs: [{name: v2, port: 80}]
"""

open(os.path.join(cfg, "00-common.yaml"), "w").write(COMMON)


def write_routes(v1name):
    p = os.path.join(cfg, "10-routes.yaml")
    open(p + ".new", "w").write(ROUTES % {"v1name": v1name})
    os.rename(p + ".new", p)


write_routes("v1")
gw = wg.Gateway(cfg)
wg.wait_port(HTTP, timeout=20, proc=gw.proc)


def raw(data, port=HTTP, timeout=5.0):
    """Sends bytes on a new connection, reads until the peer closes."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.sendall(data)
    out = b""
    try:
        while True:
            d = s.recv(65536)
            if not d:
                break
            out += d
    except socket.timeout:
        out += b"<timeout>"
    s.close()
    return out


def req(path, host="app.example.test", headers=None, method="GET", body=None):
    return wg.http(HTTP, path, host=host, method=method, headers=headers, body=body)


def pod(path, **kw):
    st, _, body = req(path, **kw)
    return st, (json.loads(body) if st == 200 else None)


# ---- routing ----
st, j = pod("/v1/x?q=1")
check(st == 200 and j["pod"] == "echo-v1", "path prefix /v1 reaches echo-v1")
check(j and j["path"] == "/v1/x?q=1", "path and query forwarded as sent")
check(j and j["headers"].get("X-Forwarded-For") == ["127.0.0.1"], "X-Forwarded-For set")
check(j and j["headers"].get("X-Forwarded-Proto") == ["http"], "X-Forwarded-Proto set")
st, j = pod("/other", headers={"env": "canary"})
check(st == 200 and j["pod"] == "echo-v2", "header match")
st, j = pod("/v1", headers={"env": "canary"})
check(st == 200 and j["pod"] == "echo-v1", "a longer path prefix beats a header match")
st, j = pod("/anything", host="a.b.wild.example.test")
check(st == 200 and j["pod"] == "echo-v2", "wildcard hostname route")
st, _, _ = req("/v1", host="unknown.example.test")
check(st == 404, "unknown host -> 404")
st, _, _ = req("/nomatch")
check(st == 404, "no matching path -> 404")

c = collections.Counter()
for _ in range(200):
    st, j = pod("/split")
    c[j["pod"] if j else st] += 1
check(abs(c["echo-v1"] - 100) < 40 and c["echo-v1"] + c["echo-v2"] == 200,
      "50/50 weights split (got %s)" % dict(c))

# ---- filters ----
st, h, _ = req("/redirect?a=b")
check(st == 301 and h.get("location") == "https://app.example.test/redirect?a=b",
      "redirect to https without port (got %s %s)" % (st, h.get("location")))
st, h, body = req("/rewrite/deep?k=v", headers={"X-Drop": "d", "X-Set": "client", "X-Add": "c"})
j = json.loads(body) if st == 200 else {}
check(j.get("path") == "/new/deep?k=v", "prefix rewrite keeps the rest and the query")
check(j.get("host") == "rewritten.example.test", "hostname rewrite")
check(j.get("headers", {}).get("X-Set") == ["yes"], "set overwrites")
check(j.get("headers", {}).get("X-Add") == ["c,added"], "add appends")
check("X-Drop" not in j.get("headers", {}), "remove drops")
check(h.get("x-resp") == "r", "response header added")

# ---- keep-alive, pipelining, bodies ----
out = raw(b"GET /v1/1 HTTP/1.1\r\nHost: app.example.test\r\n\r\n"
          b"POST /v1/2 HTTP/1.1\r\nHost: app.example.test\r\nContent-Length: 5\r\n\r\nhello"
          b"POST /v1/3 HTTP/1.1\r\nHost: app.example.test\r\nTransfer-Encoding: chunked\r\n\r\n"
          b"3\r\nabc\r\n0\r\n\r\n"
          b"GET /v1/4 HTTP/1.1\r\nHost: app.example.test\r\nConnection: close\r\n\r\n")
check(out.count(b"HTTP/1.1 200 OK") == 4, "four pipelined requests answered in order")
i1, i2, i3, i4 = (out.find(b'"path":"/v1/%d"' % k) for k in (1, 2, 3, 4))
check(0 < i1 < i2 < i3 < i4, "answers in request order")

big = b"x" * 1000000
st, _, body = req("/v1/big", method="PUT", body=big)
check(st == 200, "1 MB request body streamed")

# ---- WebSocket through the gateway (upgrade, then a tunnel) ----
def ws_frame(opcode, payload, mask=b"\x01\x02\x03\x04"):
    n = len(payload)
    head = bytes([0x80 | opcode])
    if n < 126:
        head += bytes([0x80 | n])
    else:
        head += bytes([0x80 | 126]) + n.to_bytes(2, "big")
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def ws_read(sock, buf):
    while True:
        if len(buf) >= 2:
            n = buf[1] & 0x7f
            hl = 2
            if n == 126 and len(buf) >= 4:
                n, hl = int.from_bytes(buf[2:4], "big"), 4
            if len(buf) >= hl + n:
                return buf[0] & 0x0f, buf[hl:hl + n], buf[hl + n:]
        buf += sock.recv(65536)


ws = socket.create_connection(("127.0.0.1", HTTP), timeout=5)
ws.sendall(b"GET /v1/ws HTTP/1.1\r\nHost: app.example.test\r\nConnection: Upgrade\r\n"
           b"Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
           b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
hs = b""
while b"\r\n\r\n" not in hs:
    hs += ws.recv(4096)
head, rest = hs.split(b"\r\n\r\n", 1)
check(head.startswith(b"HTTP/1.1 101") and b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" in head,
      "WebSocket upgrade answered 101 with the RFC 6455 accept key")
ok = True
for msg in (b"hello", b"x" * 300, b"third"):
    ws.sendall(ws_frame(1, msg))
    op, data, rest = ws_read(ws, rest)
    ok = ok and op == 1 and data == msg
check(ok, "WebSocket messages echoed through the tunnel")
ws.sendall(ws_frame(9, b"p"))
op, data, rest = ws_read(ws, rest)
check(op == 10 and data == b"p", "ping answered with pong")
ws.sendall(ws_frame(8, b"\x03\xe8"))
op, data, rest = ws_read(ws, rest)
check(op == 8, "close answered")
ws.close()

# ---- smuggling and framing refusals ----
SMUGGLE = [
    b"POST /v1 HTTP/1.1\r\nHost: app.example.test\r\nContent-Length: 4\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /v1/smuggled HTTP/1.1\r\nHost: app.example.test\r\n\r\n",
    b"POST /v1 HTTP/1.1\r\nHost: app.example.test\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
    b"POST /v1 HTTP/1.1\r\nHost: app.example.test\r\nTransfer-Encoding: chunked\r\n"
    b"Transfer-Encoding: identity\r\n\r\n0\r\n\r\n",
    b"POST /v1 HTTP/1.1\r\nHost: app.example.test\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n",
    b"POST /v1 HTTP/1.1\r\nHost: app.example.test\r\nX: y\r\n Transfer-Encoding: chunked\r\n\r\n",
    b"GET /v1 HTTP/1.1\r\nHost: app.example.test\nX: y\r\n\r\n",
    b"GET /v1\r\n\r\n",
    b"POST /v1 HTTP/1.1\r\nHost: app.example.test\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"5 \r\nhello\r\n0\r\n\r\nGET /v1/smuggled HTTP/1.1\r\nHost: app.example.test\r\n\r\n",
]
for k, s in enumerate(SMUGGLE):
    out = raw(s)
    ok = (out.startswith(b"HTTP/1.1 400") or out.startswith(b"HTTP/1.1 501")) and \
        out.count(b"HTTP/1.1 ") == 1 and b"smuggled" not in out and not out.endswith(b"<timeout>")
    check(ok, "ambiguous framing #%d refused and closed (%r)" % (k, out[:40]))

# ---- limits ----
out = raw(b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: app.example.test\r\n\r\n")
check(out.startswith(b"HTTP/1.1 414"), "request line over 8 KiB -> 414")
out = raw(b"GET / HTTP/1.1\r\nHost: app.example.test\r\nX: " + b"b" * 17000 + b"\r\n\r\n")
check(out.startswith(b"HTTP/1.1 431"), "head over 16 KiB -> 431")

# ---- HTTPS: SNI and 421 ----
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE


def tls_raw(sni, data):
    s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", HTTPS), timeout=5),
                        server_hostname=sni)
    s.sendall(data)
    out = b""
    try:
        while True:
            d = s.recv(65536)
            if not d:
                break
            out += d
    except (socket.timeout, ssl.SSLError):
        pass
    s.close()
    return out


wg.wait_port(HTTPS, timeout=10, proc=gw.proc)
out = tls_raw("app.example.test",
              b"GET /v1/tls HTTP/1.1\r\nHost: app.example.test\r\nConnection: close\r\n\r\n")
check(out.startswith(b"HTTP/1.1 200") and b'"X-Forwarded-Proto":["https"]' in out,
      "HTTPS request by SNI reaches the route")
out = tls_raw("app.example.test",
              b"GET /v1/tls HTTP/1.1\r\nHost: other.test\r\nConnection: close\r\n\r\n")
check(out.startswith(b"HTTP/1.1 421"), "Host outside the SNI's listener -> 421")
big = b"y" * 2000000
out = tls_raw("app.example.test",
              b"PUT /v1/tlsbig HTTP/1.1\r\nHost: app.example.test\r\nContent-Length: %d\r\n\r\n"
              % len(big) + big +
              b"GET /v1/after HTTP/1.1\r\nHost: app.example.test\r\nConnection: close\r\n\r\n")
check(out.count(b"HTTP/1.1 200") == 2 and b'"path":"/v1/after"' in out,
      "2 MB upload over TLS, then a pipelined request on the same connection")

# ---- SIGHUP: a route change on a kept-alive connection ----
s = socket.create_connection(("127.0.0.1", HTTP), timeout=5)


def ka_get(path):
    s.sendall(b"GET " + path + b" HTTP/1.1\r\nHost: app.example.test\r\n\r\n")
    buf = b""
    while b"\r\n\r\n" not in buf:
        buf += s.recv(65536)
    head, rest = buf.split(b"\r\n\r\n", 1)
    n = int([l for l in head.split(b"\r\n") if l.lower().startswith(b"content-length:")][0]
            .split(b":")[1])
    while len(rest) < n:
        rest += s.recv(65536)
    return json.loads(rest[:n])


check(ka_get(b"/v1/ka")["pod"] == "echo-v1", "kept-alive connection before the change")
write_routes("v2")
gw.proc.send_signal(signal.SIGHUP)
deadline = time.time() + 10
pod_after = None
while time.time() < deadline:
    pod_after = ka_get(b"/v1/ka")["pod"]
    if pod_after == "echo-v2":
        break
    time.sleep(0.05)
check(pod_after == "echo-v2", "route change served on the same kept-alive connection")
s.close()

rc = gw.stop()
check(rc == 0, "SIGTERM drains and exits 0 (rc=%s)" % rc)
if failures:
    print("--- waygate log (tail) ---")
    print(gw.logtext()[-3000:])
    print("%d failed" % len(failures))
    sys.exit(1)
print("all passed")
