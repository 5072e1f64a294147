#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The L4 data plane through the real binary: `waygate run --config` in local
mode with a TCP listener, a TLS port shared by a Passthrough listener and a
Terminate listener (TLSRouteModeMixed), and a UDP listener, in front of small
Python TCP, TLS and UDP echo servers started here, on loopback ports picked
free. Checks: TCP relay both ways, half-close (the client's shutdown(SHUT_WR)
reaches the backend, which still answers), a large transfer intact (splice),
weights across TCP connections; TLS passthrough by SNI (exact beats wildcard,
the backend terminates TLS end to end), no route / no SNI / not TLS -> the
connection is closed without a byte; Terminate with the listener's
certificate forwarding plain bytes; UDP sessions (one client socket sticks to
one backend, replies come from the listener's port), weights across sessions;
and that a route change (SIGHUP) keeps an established TCP stream alive."""
import hashlib
import os
import signal
import socket
import socketserver
import ssl
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import wg  # noqa: E402
from wg import check, failures  # noqa: E402


# ---- backends ----

class TCPEcho(socketserver.ThreadingTCPServer):
    """Greets with 'hello NAME', echoes, and after the client's EOF answers
    'bye NAME <bytes received> <sha256>' before closing: proves half-close."""
    allow_reuse_address = True
    daemon_threads = True

    def __init__(self, name, port, tls_ctx=None):
        self.name = name
        self.tls_ctx = tls_ctx
        super().__init__(("127.0.0.1", port), TCPEchoHandler)
        threading.Thread(target=self.serve_forever, daemon=True).start()


class TCPEchoHandler(socketserver.BaseRequestHandler):
    def handle(self):
        s = self.request
        srv = self.server
        try:
            if srv.tls_ctx:
                s = srv.tls_ctx.wrap_socket(s, server_side=True)
            s.sendall(b"hello " + srv.name.encode() + b"\n")
            h = hashlib.sha256()
            n = 0
            while True:
                d = s.recv(65536)
                if not d:
                    break
                n += len(d)
                h.update(d)
                if n < 4096:
                    s.sendall(d)
            s.sendall(b"bye %s %d %s\n" % (srv.name.encode(), n, h.hexdigest().encode()))
            if srv.tls_ctx:
                s.unwrap()
            else:
                s.shutdown(socket.SHUT_WR)
        except (OSError, ssl.SSLError):
            pass


class UDPEcho(socketserver.ThreadingUDPServer):
    daemon_threads = True
    max_packet_size = 65536

    def __init__(self, name, port):
        self.name = name
        super().__init__(("127.0.0.1", port), UDPEchoHandler)
        threading.Thread(target=self.serve_forever, daemon=True).start()


class UDPEchoHandler(socketserver.BaseRequestHandler):
    def handle(self):
        data, sock = self.request
        sock.sendto(self.server.name.encode() + b":" + data, self.client_address)


def recv_line(s, timeout=5):
    s.settimeout(timeout)
    buf = b""
    while not buf.endswith(b"\n"):
        d = s.recv(1)
        if not d:
            break
        buf += d
    return buf.decode(errors="replace").strip()


def recv_all(s, timeout=10):
    s.settimeout(timeout)
    out = b""
    while True:
        d = s.recv(65536)
        if not d:
            return out
        out += d


# ---- setup ----

work = tempfile.mkdtemp(prefix="wg-l4-")
cfg = os.path.join(work, "config")
os.makedirs(cfg)

# a certificate for the TLS backends behind passthrough
bcert, bkey = os.path.join(work, "backend.crt"), os.path.join(work, "backend.key")
subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                "-nodes", "-keyout", bkey, "-out", bcert, "-days", "2", "-subj", "/CN=l4 test",
                "-addext", "subjectAltName=DNS:a.example.test,DNS:*.example.test,DNS:*.y.example.test"],
               check=True, capture_output=True)
bctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
bctx.load_cert_chain(bcert, bkey)

TCP, TLS, UDP = wg.free_port(), wg.free_port(), wg.free_port()
FLAKY, DEAD, NOBODY = wg.free_port(), wg.free_port(), wg.free_port()  # NOBODY: nothing listens
ports = {n: wg.free_port() for n in ("t1", "t2", "pa", "pw", "plain", "u1", "u2", "web")}
TCPEcho("t1", ports["t1"])
TCPEcho("t2", ports["t2"])
TCPEcho("pass-exact", ports["pa"], bctx)
TCPEcho("pass-wild", ports["pw"], bctx)
TCPEcho("plain", ports["plain"])
UDPEcho("u1", ports["u1"])
UDPEcho("u2", ports["u2"])
wg.echo("web", ports["web"])

GATEWAY = """
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
  - name: tcp
    protocol: TCP
    port: %(tcp)d
    allowedRoutes: {namespaces: {from: Same}}
  - name: tcp-flaky
    protocol: TCP
    port: %(flaky)d
    allowedRoutes: {namespaces: {from: Same}}
  - name: tcp-dead
    protocol: TCP
    port: %(dead)d
    allowedRoutes: {namespaces: {from: Same}}
  - name: tls-pass
    protocol: TLS
    port: %(tls)d
    tls: {mode: Passthrough}
    allowedRoutes: {namespaces: {from: Same}}
  - name: tls-term
    protocol: TLS
    port: %(tls)d
    hostname: term.example.test
    tls:
      mode: Terminate
      certificateRefs: [{kind: Secret, name: term-cert}]
    allowedRoutes: {namespaces: {from: Same}}
  - name: https
    protocol: HTTPS
    port: %(tls)d
    hostname: web.example.test
    tls:
      mode: Terminate
      certificateRefs: [{kind: Secret, name: web-cert}]
    allowedRoutes: {namespaces: {from: Same}}
  - name: udp
    protocol: UDP
    port: %(udp)d
    allowedRoutes: {namespaces: {from: Same}}
---
apiVersion: v1
kind: Secret
metadata:
  name: term-cert
  namespace: default
  annotations: {waygate.dev/generate-self-signed: "term.example.test"}
type: kubernetes.io/tls
---
apiVersion: v1
kind: Secret
metadata:
  name: web-cert
  namespace: default
  annotations: {waygate.dev/generate-self-signed: "web.example.test"}
type: kubernetes.io/tls
""" % {"tcp": TCP, "tls": TLS, "udp": UDP, "flaky": FLAKY, "dead": DEAD}

BACKENDS = ""
for name, port in ports.items():
    BACKENDS += wg.backend_yaml(name, port, svc_port=9000,
                                protocol="UDP" if name.startswith("u") else "TCP")

# flaky: one endpoint refuses, the other answers; dead: the only endpoint refuses
BACKENDS += """---
apiVersion: v1
kind: Service
metadata: {name: flaky, namespace: default}
spec:
  ports: [{name: p, port: 9000, targetPort: 9000}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: flaky-a
  namespace: default
  labels: {kubernetes.io/service-name: flaky}
addressType: IPv4
ports: [{name: p, port: %(nobody)d, protocol: TCP}]
endpoints:
- addresses: [127.0.0.1]
  conditions: {ready: true}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: flaky-b
  namespace: default
  labels: {kubernetes.io/service-name: flaky}
addressType: IPv4
ports: [{name: p, port: %(t1)d, protocol: TCP}]
endpoints:
- addresses: [127.0.0.1]
  conditions: {ready: true}
""" % {"nobody": NOBODY, "t1": ports["t1"]}
BACKENDS += wg.backend_yaml("dead", NOBODY, svc_port=9000)

ROUTES = """
apiVersion: gateway.networking.k8s.io/v1
kind: TCPRoute
metadata: {name: flaky, namespace: default}
spec:
  parentRefs: [{name: gw, sectionName: tcp-flaky}]
  rules:
  - backendRefs: [{name: flaky, port: 9000}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: TCPRoute
metadata: {name: dead, namespace: default}
spec:
  parentRefs: [{name: gw, sectionName: tcp-dead}]
  rules:
  - backendRefs: [{name: dead, port: 9000}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: TCPRoute
metadata: {name: tcp, namespace: default}
spec:
  parentRefs: [{name: gw, sectionName: tcp}]
  rules:
  - backendRefs: [{name: t1, port: 9000, weight: %(w1)d}, {name: t2, port: 9000, weight: %(w2)d}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: TLSRoute
metadata: {name: pass-exact, namespace: default}
spec:
  parentRefs: [{name: gw, sectionName: tls-pass}]
  hostnames: [a.example.test]
  rules:
  - backendRefs: [{name: pa, port: 9000}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: TLSRoute
metadata: {name: pass-wild, namespace: default}
spec:
  parentRefs: [{name: gw, sectionName: tls-pass}]
  hostnames: ["*.example.test"]
  rules:
  - backendRefs: [{name: pw, port: 9000}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: TLSRoute
metadata: {name: term, namespace: default}
spec:
  parentRefs: [{name: gw, sectionName: tls-term}]
  hostnames: [term.example.test]
  rules:
  - backendRefs: [{name: plain, port: 9000}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: UDPRoute
metadata: {name: udp, namespace: default}
spec:
  parentRefs: [{name: gw, sectionName: udp}]
  rules:
  - backendRefs: [{name: u1, port: 9000}, {name: u2, port: 9000, weight: %(uw2)d}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: web, namespace: default}
spec:
  parentRefs: [{name: gw, sectionName: https}]
  rules:
  - backendRefs: [{name: web, port: 9000}]
"""


def write_config(w1, w2, uw2=1):
    with open(os.path.join(cfg, "00-gateway.yaml"), "w") as f:
        f.write(GATEWAY)
    with open(os.path.join(cfg, "10-backends.yaml"), "w") as f:
        f.write(BACKENDS)
    with open(os.path.join(cfg, "20-routes.yaml"), "w") as f:
        f.write(ROUTES % {"w1": w1, "w2": w2, "uw2": uw2})


write_config(1, 3)
gw = wg.Gateway(cfg, extra=["--workers", "2", "--log-level", "debug"])
try:
    wg.wait_port(TCP, proc=gw.proc)
    wg.wait_port(TLS, proc=gw.proc)
except RuntimeError as e:
    print(gw.logtext()[-3000:])
    raise

# ---- TCP ----

s = socket.create_connection(("127.0.0.1", TCP), timeout=5)
hello = recv_line(s)
check(hello in ("hello t1", "hello t2"), "tcp: greeting from a backend (%s)" % hello)
s.sendall(b"ping\n")
check(recv_line(s) == "ping", "tcp: bytes echoed back")
s.shutdown(socket.SHUT_WR)
rest = recv_all(s).decode()
check(rest.startswith("bye ") and " 5 " in rest,
      "tcp: half-close reaches the backend, which still answers (%r)" % rest.strip())
s.close()

# large transfer through splice, checked end to end
blob = os.urandom(8 << 20)
s = socket.create_connection(("127.0.0.1", TCP), timeout=10)
recv_line(s)
t0 = time.time()


def sender():
    s.sendall(blob)
    s.shutdown(socket.SHUT_WR)


th = threading.Thread(target=sender)
th.start()
out = recv_all(s, timeout=30)
th.join()
digest = hashlib.sha256(blob).hexdigest()
check(out.decode(errors="replace").strip().endswith("%d %s" % (len(blob), digest)),
      "tcp: 8 MiB sent intact (%.2fs)" % (time.time() - t0))
s.close()

# weights 1:3 over 200 connections
counts = {"t1": 0, "t2": 0}
for _ in range(200):
    c = socket.create_connection(("127.0.0.1", TCP), timeout=5)
    name = recv_line(c).split()[-1]
    counts[name] = counts.get(name, 0) + 1
    c.close()
share = counts["t2"] / 200.0
check(0.62 <= share <= 0.88, "tcp: weights 1:3 -> t2 share %.2f (%r)" % (share, counts))

# a refusing endpoint is skipped (and ejected); with none left the client is reset
greets = set()
for _ in range(20):
    c = socket.create_connection(("127.0.0.1", FLAKY), timeout=5)
    greets.add(recv_line(c))
    c.close()
check(greets == {"hello t1"}, "tcp: a refusing endpoint is retried elsewhere (%s)" % greets)
try:  # the reset may come before connect() returns
    c = socket.create_connection(("127.0.0.1", DEAD), timeout=5)
    got = recv_all(c, timeout=5)
    c.close()
except ConnectionResetError:
    got = b""
check(got == b"", "tcp: no reachable endpoint -> the client is closed without a byte")

# ---- TLS passthrough ----


def tls_dial(sni, verify=True):
    ctx = ssl.create_default_context()
    if verify:
        ctx.load_verify_locations(bcert)
    else:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    raw = socket.create_connection(("127.0.0.1", TLS), timeout=5)
    return ctx.wrap_socket(raw, server_hostname=sni)


for sni, want in (("a.example.test", "pass-exact"), ("b.example.test", "pass-wild"),
                  ("x.y.example.test", "pass-wild")):
    try:
        t = tls_dial(sni)
        got = recv_line(t)
        t.sendall(b"over tls\n")
        echoed = recv_line(t)
        t.close()
        check(got == "hello " + want and echoed == "over tls",
              "tls passthrough: SNI %s -> %s, verified end to end (%s)" % (sni, want, got))
    except (OSError, ssl.SSLError) as e:
        check(False, "tls passthrough: SNI %s -> %s (%r)" % (sni, want, e))


def rejected(fn):
    try:
        fn()
    except (OSError, ssl.SSLError):
        return True
    return False


def no_route():
    t = tls_dial("nobody.other.test", verify=False)
    recv_line(t)


def no_sni():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    raw = socket.create_connection(("127.0.0.1", TLS), timeout=5)
    ctx.wrap_socket(raw, server_hostname=None)


check(rejected(no_route), "tls: an SNI no route serves is closed during the handshake")
check(rejected(no_sni), "tls: a ClientHello without SNI is closed")
raw = socket.create_connection(("127.0.0.1", TLS), timeout=5)
raw.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
try:
    plain_answer = recv_all(raw, timeout=5)
except ConnectionResetError:
    plain_answer = b""
check(plain_answer == b"", "tls: plain text on a TLS port is closed without a byte back")
raw.close()

# a ClientHello that trickles in byte by byte still routes
ctx = ssl.create_default_context()
ctx.load_verify_locations(bcert)
inc, outb = ssl.MemoryBIO(), ssl.MemoryBIO()
obj = ctx.wrap_bio(inc, outb, server_hostname="a.example.test")
try:
    obj.do_handshake()
except ssl.SSLWantReadError:
    pass
hello_bytes = outb.read()
raw = socket.create_connection(("127.0.0.1", TLS), timeout=5)
raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
for i in range(0, len(hello_bytes), 7):
    raw.sendall(hello_bytes[i:i + 7])
    time.sleep(0.002)
raw.settimeout(5)
got = raw.recv(5)
check(len(got) == 5 and got[0] == 0x16, "tls passthrough: a ClientHello in 7-byte pieces routes")
raw.close()

# ---- TLS terminate on the same port ----

try:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    raw = socket.create_connection(("127.0.0.1", TLS), timeout=5)
    t = ctx.wrap_socket(raw, server_hostname="term.example.test")
    cert = t.getpeercert(binary_form=True)
    got = recv_line(t)
    t.sendall(b"decrypted\n")
    echoed = recv_line(t)
    t.sendall(b"x" * 100)
    # the client's close_notify is a half-close towards the backend
    tail = b""
    try:
        t2 = t.unwrap()
        tail = recv_all(t2)
    except (OSError, ssl.SSLError):
        pass
    check(got == "hello plain" and echoed == "decrypted" and cert is not None,
          "tls terminate: listener certificate, plain bytes to the backend (%s)" % got)
    t.close()
except (OSError, ssl.SSLError) as e:
    check(False, "tls terminate: (%r)" % e)

# ---- HTTPS on the same port: handed to the HTTP code after the peek ----

try:
    st, _, body = wg.http(TLS, "/", host="web.example.test", tls_name="web.example.test")
    check(st == 200 and wg.echo_pod(body) == "web",
          "https listener sharing the TLS port still serves HTTP (%s)" % st)
except (OSError, ssl.SSLError, ValueError) as e:
    check(False, "https listener sharing the TLS port still serves HTTP (%r)" % e)

# ---- UDP ----


def udp_ask(sock, msg):
    sock.sendto(msg, ("127.0.0.1", UDP))
    sock.settimeout(3)
    data, addr = sock.recvfrom(65536)
    return data.decode(), addr


u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
first, addr = udp_ask(u, b"one")
names = set()
for i in range(10):
    d, a = udp_ask(u, b"n%d" % i)
    names.add(d.split(":")[0])
check(addr == ("127.0.0.1", UDP), "udp: replies come from the listener's address and port")
check(len(names) == 1 and first.split(":")[0] in names and first.endswith(":one"),
      "udp: one client socket keeps its backend (%s)" % names)
# find a client socket pinned to u2, kept across the route change below
sticky = u
for _ in range(50):
    if udp_ask(sticky, b"which")[0].startswith("u2:"):
        break
    sticky.close()
    sticky = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)

seen = {"u1": 0, "u2": 0}
for i in range(100):
    c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        d, _ = udp_ask(c, b"w")
        seen[d.split(":")[0]] += 1
    except OSError:
        pass
    c.close()
check(sum(seen.values()) == 100, "udp: 100 sessions answered (%r)" % seen)
check(25 <= seen["u1"] <= 75, "udp: weights 1:1 across sessions (%r)" % seen)

# a large datagram passes whole
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
d, _ = udp_ask(u, b"z" * 30000)
check(len(d) == 30003, "udp: a 30000-byte datagram passes whole")
u.close()

# ---- a route change keeps a stream ----

s = socket.create_connection(("127.0.0.1", TCP), timeout=5)
first = recv_line(s)
write_config(1, 0, 0)
gw.proc.send_signal(signal.SIGHUP)


def only_t1():
    c = socket.create_connection(("127.0.0.1", TCP), timeout=5)
    n = recv_line(c)
    c.close()
    return n == "hello t1" and all(
        recv_line(socket.create_connection(("127.0.0.1", TCP), timeout=5)) == "hello t1"
        for _ in range(10))


try:
    wg.wait_for(only_t1, timeout=10)
    check(True, "tcp: a weight change is served after SIGHUP")
except AssertionError as e:
    check(False, "tcp: a weight change is served after SIGHUP (%s)" % e)
s.sendall(b"still here\n")
check(recv_line(s) == "still here", "tcp: an established stream survives the route change")
s.close()
moved = udp_ask(sticky, b"after")[0]
check(moved == "u1:after", "udp: a session whose backend left the route moves (%s)" % moved)
sticky.close()

rc = gw.stop()
check(rc == 0, "gateway drained and exited 0 (%s)" % rc)
log = gw.logtext()
check("level=error" not in log, "no error in the gateway log")
if failures:
    print("\n".join(l for l in log.splitlines()
                    if "udp_session" not in l and ("l4" in l or "udp" in l))[-4000:])
    print("%d failed" % len(failures))
    sys.exit(1)
print("all passed")
