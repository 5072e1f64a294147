#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Traffic per route for L4 routes: connections through a TCPRoute, a
TCPRoute whose only endpoint refuses, TLSRoutes on a Terminate and a
Passthrough listener sharing a port, and sessions through UDPRoutes (one
backend answers, one port is closed) are counted per route (rule 0) by the
data plane, over two workers, and /api/routes and /metrics (parsed by the
Prometheus client library) report them: a connection or a session is a
request, bytes both ways, 2xx for a connection that reached a backend and
ended, 5xx and an upstream error for one whose backend refused, an
upstream error for an ICMP refusal, and a UDP session stays active until
it ends."""
import os
import socket
import socketserver
import ssl
import sys
import tempfile
import threading

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import wg  # noqa: E402
from wg import check  # noqa: E402


class TCPEcho(socketserver.ThreadingTCPServer):
    """Echoes what it reads; closes once the client has ended its side."""
    allow_reuse_address = True
    daemon_threads = True

    def __init__(self, port):
        super().__init__(("127.0.0.1", port), TCPEchoHandler)
        threading.Thread(target=self.serve_forever, daemon=True).start()


class TCPEchoHandler(socketserver.BaseRequestHandler):
    def handle(self):
        try:
            while True:
                d = self.request.recv(65536)
                if not d:
                    break
                self.request.sendall(d)
            self.request.shutdown(socket.SHUT_WR)
        except OSError:
            pass


class UDPEcho(socketserver.ThreadingUDPServer):
    daemon_threads = True

    def __init__(self, port):
        super().__init__(("127.0.0.1", port), UDPEchoHandler)
        threading.Thread(target=self.serve_forever, daemon=True).start()


class UDPEchoHandler(socketserver.BaseRequestHandler):
    def handle(self):
        data, sock = self.request
        sock.sendto(b"echo:" + data, self.client_address)


def recv_all(s, timeout=5):
    s.settimeout(timeout)
    out = b""
    while True:
        d = s.recv(65536)
        if not d:
            return out
        out += d


work = tempfile.mkdtemp(prefix="wg-l4-traffic-")
conf = os.path.join(work, "config")
os.makedirs(conf)
TCP, DEAD, TLS, UDP, UDP_DEAD, ui_port = (wg.free_port() for _ in range(6))
tcp_be, udp_be, nobody = wg.free_port(), wg.free_port(), wg.free_port()  # nobody listens
TCPEcho(tcp_be)
UDPEcho(udp_be)

LISTENERS = """
  - {name: tcp, protocol: TCP, port: %(tcp)d}
  - {name: dead, protocol: TCP, port: %(dead)d}
  - name: term
    protocol: TLS
    port: %(tls)d
    hostname: term.example.test
    tls: {mode: Terminate, certificateRefs: [{kind: Secret, name: term-cert}]}
  - name: pass
    protocol: TLS
    port: %(tls)d
    hostname: pass.example.test
    tls: {mode: Passthrough}
  - {name: udp, protocol: UDP, port: %(udp)d}
  - {name: udp-dead, protocol: UDP, port: %(udpdead)d}""" % {
    "tcp": TCP, "dead": DEAD, "tls": TLS, "udp": UDP, "udpdead": UDP_DEAD}


def service(name, port, proto="TCP"):
    return wg.backend_yaml(name, port, svc_port=9000, protocol=proto)


ROUTES = wg.self_signed_secret_yaml("term-cert", "term.example.test") + """---
apiVersion: gateway.networking.k8s.io/v1alpha2
kind: TCPRoute
metadata: {name: tcp, namespace: default}
spec:
  parentRefs: [{name: gw, sectionName: tcp}]
  rules: [{backendRefs: [{name: tcpbe, port: 9000}]}]
---
apiVersion: gateway.networking.k8s.io/v1alpha2
kind: TCPRoute
metadata: {name: dead, namespace: default}
spec:
  parentRefs: [{name: gw, sectionName: dead}]
  rules: [{backendRefs: [{name: nobody, port: 9000}]}]
---
apiVersion: gateway.networking.k8s.io/v1alpha2
kind: TLSRoute
metadata: {name: term, namespace: default}
spec:
  parentRefs: [{name: gw, sectionName: term}]
  hostnames: [term.example.test]
  rules: [{backendRefs: [{name: tcpbe, port: 9000}]}]
---
apiVersion: gateway.networking.k8s.io/v1alpha2
kind: TLSRoute
metadata: {name: pass, namespace: default}
spec:
  parentRefs: [{name: gw, sectionName: pass}]
  hostnames: [pass.example.test]
  rules: [{backendRefs: [{name: tcpbe, port: 9000}]}]
---
apiVersion: gateway.networking.k8s.io/v1alpha2
kind: UDPRoute
metadata: {name: udp, namespace: default}
spec:
  parentRefs: [{name: gw, sectionName: udp}]
  rules: [{backendRefs: [{name: udpbe, port: 9000}]}]
---
apiVersion: gateway.networking.k8s.io/v1alpha2
kind: UDPRoute
metadata: {name: udpdead, namespace: default}
spec:
  parentRefs: [{name: gw, sectionName: udp-dead}]
  rules: [{backendRefs: [{name: nobodyudp, port: 9000}]}]
"""
with open(os.path.join(conf, "10-l4.yaml"), "w") as f:
    f.write(wg.gateway_yaml(0, listeners=LISTENERS) + service("tcpbe", tcp_be) +
            service("nobody", nobody) + service("udpbe", udp_be, "UDP") +
            service("nobodyudp", nobody, "UDP") + ROUTES)
gw = wg.Gateway(conf, ui="127.0.0.1:%d" % ui_port, extra=["--workers", "2"])
for p in (TCP, DEAD, TLS):
    wg.wait_port(p, proc=gw.proc)
ui = wg.Ui(ui_port, gw)


def routes():
    return {r["name"]: r for r in ui.get("/api/routes")["routes"]}


NAMES = ("default/tcp", "default/dead", "default/term", "default/udp")


def settled():
    r = routes()
    return all(n in r and r[n].get("traffic", {}).get("active", 0) == 0 for n in NAMES) and r


# the probes that saw the ports open count too (a TCP connection routed and
# closed): what follows is measured from here
r = wg.wait_for(settled, timeout=10)
base = {n: r[n].get("traffic", {}) for n in NAMES}


def delta(t, name, key):
    return t.get(key, 0) - base[name].get(key, 0)


def delta_classes(t, name):
    b = base[name].get("responses_by_class", [0] * 6)
    return [x - y for x, y in zip(t["responses_by_class"], b)]


# N TCP connections, each a small exchange ended by the client's FIN (the
# backend then closes too): every one reached a backend and ended normally
N, MSG = 7, b"ping through the tcp route\n"
for i in range(N):
    s = socket.create_connection(("127.0.0.1", TCP), timeout=5)
    s.sendall(MSG)
    s.shutdown(socket.SHUT_WR)
    got = recv_all(s)
    s.close()
    check(got == MSG, "tcp connection %d echoed (%r)" % (i, got))

# connections to a route whose only endpoint refuses: reset by the gateway
N_DEAD = 3
for _ in range(N_DEAD):
    try:
        # the reset may already be there when connect() looks (accepted, then reset)
        s = socket.create_connection(("127.0.0.1", DEAD), timeout=5)
    except ConnectionResetError:
        continue
    try:
        recv_all(s)
    except OSError:
        pass
    s.close()

# K TLS connections terminated by the gateway, forwarded as plain TCP
K = 2
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
for i in range(K):
    raw = socket.create_connection(("127.0.0.1", TLS), timeout=5)
    s = ctx.wrap_socket(raw, server_hostname="term.example.test")
    s.sendall(MSG)
    got = b""
    while len(got) < len(MSG):
        d = s.recv(65536)
        if not d:
            break
        got += d
    check(got == MSG, "tls connection %d echoed through Terminate (%r)" % (i, got))
    try:
        s.unwrap()
    except (OSError, ssl.SSLError):
        pass
    raw.close()

# one TLS Passthrough connection: the plain echo backend returns the
# ClientHello it was passed, untouched
bio_in, bio_out = ssl.MemoryBIO(), ssl.MemoryBIO()
try:
    ctx.wrap_bio(bio_in, bio_out, server_hostname="pass.example.test").do_handshake()
except ssl.SSLWantReadError:
    pass
hello = bio_out.read()
s = socket.create_connection(("127.0.0.1", TLS), timeout=5)
s.sendall(hello)
s.shutdown(socket.SHUT_WR)
got = recv_all(s)
s.close()
check(got == hello, "tls passthrough: the ClientHello came back (%d bytes)" % len(got))

# M UDP exchanges, each from its own client socket: M sessions
M = 5
for i in range(M):
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.settimeout(5)
    u.sendto(b"hi %d" % i, ("127.0.0.1", UDP))
    d, _ = u.recvfrom(65536)
    u.close()
    check(d == b"echo:hi %d" % i, "udp exchange %d answered (%r)" % (i, d))

# a UDP session whose backend port is closed: the ICMP refusal comes back
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.settimeout(0.5)
u.sendto(b"anyone?", ("127.0.0.1", UDP_DEAD))
try:
    u.recvfrom(65536)
    check(False, "udp: no answer from a closed backend port")
except socket.timeout:
    pass
u.close()


def done():
    r = routes()
    t = [r[n].get("traffic", {}) for n in NAMES]
    return (all(x.get("active") == 0 for x in t[:3]) and
            delta(t[0], NAMES[0], "requests") == N and
            r["default/pass"].get("traffic", {}).get("active") == 0 and r)


r = wg.wait_for(done, timeout=10)
tcp, dead, term = (r[n]["traffic"] for n in ("default/tcp", "default/dead", "default/term"))
udp = r["default/udp"].get("traffic", {})
check(r["default/tcp"]["kind"] == "TCPRoute" and r["default/udp"]["kind"] == "UDPRoute",
      "API: kinds of the L4 routes")
check(delta(tcp, "default/tcp", "requests") == N and
      delta_classes(tcp, "default/tcp") == [0, 0, N, 0, 0, 0],
      "API: default/tcp counts %d connections, all 2xx: %s (before: %s)" %
      (N, tcp, base["default/tcp"]))
check(delta(tcp, "default/tcp", "bytes_in") == N * len(MSG) and
      delta(tcp, "default/tcp", "bytes_out") == N * len(MSG),
      "API: default/tcp bytes both ways (%d in, %d out)" % (tcp["bytes_in"], tcp["bytes_out"]))
check(tcp["upstream_errors"] == 0, "API: no upstream errors for default/tcp")
check(r["default/tcp"]["rules"][0].get("traffic", {}).get("requests") == tcp["requests"],
      "API: the TCPRoute's rule 0 carries the same count: %s" % r["default/tcp"]["rules"])
check(delta(dead, "default/dead", "requests") == N_DEAD and
      delta(dead, "default/dead", "responses_5xx") == N_DEAD and
      delta(dead, "default/dead", "upstream_errors") >= N_DEAD and
      dead["responses_5xx"] == dead["requests"],
      "API: default/dead: %d refused connections are 5xx and upstream errors: %s" %
      (N_DEAD, dead))
check(term["requests"] == K and term["responses_by_class"][2] == K and
      term["bytes_in"] == K * len(MSG) and term["bytes_out"] == K * len(MSG),
      "API: default/term (TLS Terminate) counts %d, plain bytes: %s" % (K, term))
pas = r["default/pass"].get("traffic", {})
check(pas.get("requests") == 1 and pas.get("bytes_in") == len(hello) and
      pas.get("bytes_out") == len(hello) and pas.get("responses_by_class", [])[2:3] == [1],
      "API: default/pass (TLS Passthrough) counts its connection: %s" % pas)
check(udp.get("requests") == M and udp.get("bytes_in", 0) > 0 and udp.get("bytes_out", 0) > 0,
      "API: default/udp counts %d sessions and their datagram bytes: %s" % (M, udp))
check(udp.get("active") == M and udp.get("responses_5xx") == 0,
      "API: the UDP sessions are open until they end (active %s)" % udp.get("active"))
udpdead = wg.wait_for(lambda: (lambda t: t.get("upstream_errors") and t)(
    routes()["default/udpdead"].get("traffic", {})), timeout=5)
check(udpdead["requests"] == 1 and udpdead["upstream_errors"] >= 1 and udpdead["bytes_out"] == 0,
      "API: default/udpdead: a session whose backend refuses counts upstream errors: %s" % udpdead)

fams = ui.metrics()


def sample(fam, name, **labels):
    vals = [s.value for s in fams[fam].samples
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())]
    return vals[0] if len(vals) == 1 else None


check(sample("waygate_route_requests", "waygate_route_requests_total",
             route="default/tcp", rule="0") == tcp["requests"],
      "metrics: requests of default/tcp")
check(sample("waygate_route_requests", "waygate_route_requests_total",
             route="default/udp", rule="0") == M, "metrics: requests (sessions) of default/udp")
check(sample("waygate_route_requests", "waygate_route_requests_total",
             route="default/term", rule="0") == K, "metrics: requests of default/term")
check(sample("waygate_route_responses", "waygate_route_responses_total",
             route="default/dead", rule="0", code="5xx") == dead["requests"],
      "metrics: 5xx of default/dead")
check(sample("waygate_route_received_bytes", "waygate_route_received_bytes_total",
             route="default/tcp", rule="0") == tcp["bytes_in"],
      "metrics: bytes received on default/tcp")
check(sample("waygate_route_request_duration_seconds",
             "waygate_route_request_duration_seconds_count", route="default/tcp",
             rule="0") == tcp["requests"],
      "metrics: the duration histogram of default/tcp counts its connections")
check(sample("waygate_route_active_requests", "waygate_route_active_requests",
             route="default/udp", rule="0") == M, "metrics: open UDP sessions of default/udp")

gw.stop()
wg.finish(gw.logtext())
