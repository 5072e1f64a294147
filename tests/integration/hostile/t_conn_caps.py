#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Connection caps, counted for the whole box. One Gateway, four listeners:

    A  HTTP  port A max-client-connections 4
    B  HTTP  port B max-connections 2
    C  HTTP  no entry: the default per-address cap (256)
    T  TCP   port T max-client-connections 2

A client address over its cap gets 503 and a close on HTTP, while another
address is still served; a listener over its own cap refuses every new
client; releasing a connection makes room again; C takes 256 connections
from one address and answers the 257th with 503; the TCP listener closes
the connection over the cap without a byte. Refusals are logged at most
once a second, with the count of those left out."""
import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hostile as H  # noqa: E402

REC = H.Recorder()
A, B, C, T = (H.wg.free_port() for _ in range(4))
yaml = H.config([("a", "HTTP", A), ("b", "HTTP", B), ("c", "HTTP", C), ("t", "TCP", T)],
                ["  - backendRefs: [{name: rec, port: 80}]"], {"rec": REC.port},
                extra="""---
apiVersion: gateway.networking.k8s.io/v1alpha2
kind: TCPRoute
metadata: {name: t, namespace: default}
spec:
  parentRefs: [{name: gw, sectionName: t}]
  rules:
  - backendRefs: [{name: rec, port: 80}]
""")
gw = H.gateway(yaml, A, limits="port %d max-client-connections 4\nport %d max-connections 2\n"
               "port %d max-client-connections 2" % (A, B, T))
for p in (A, B, C, T):
    H.wg.wait_port(p, proc=gw.proc)
H.wg.wait_for(lambda: H.raw(A, b"GET /ready HTTP/1.1\r\nHost: a\r\n\r\n")[0]
              .startswith(b"HTTP/1.1 200"), timeout=10)
GET = b"GET /x HTTP/1.1\r\nHost: a\r\n\r\n"


def hold(port, n, src="127.0.0.1"):
    """n idle connections from src, accepted by the gateway."""
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.bind((src, 0))
        s.connect(("127.0.0.1", port))
        socks.append(s)
    time.sleep(0.3)  # accepted (and counted) by the workers
    return socks


def answer(port, src="127.0.0.1", data=GET):
    """The status of one request on a new connection from src, and whether
    the gateway closed it after (None: no response at all)."""
    s = socket.socket()
    s.settimeout(3)
    s.bind((src, 0))
    s.connect(("127.0.0.1", port))
    out = b""
    closed = False
    try:
        s.sendall(data)
        while True:
            d = s.recv(65536)
            if not d:
                closed = True
                break
            out += d
            if out.endswith(b"/x"):  # the recorder's whole answer: kept alive
                break
    except socket.timeout:
        pass
    except ConnectionResetError:
        closed = True
    s.close()
    st = H.statuses(out)
    return (st[0] if st else None), closed


# A: 4 per address
held = hold(A, 4)
st, closed = answer(A)
H.check(st == 503 and closed, "A: the 5th connection from one address -> 503, closed (%r)" % st)
st, _ = answer(A, src="127.0.0.2")
H.check(st == 200, "A: another address is still served (%r)" % st)
held.pop().close()
time.sleep(0.3)
st, _ = answer(A)
H.check(st == 200, "A: a released connection makes room again (%r)" % st)
for s in held:
    s.close()

# B: 2 in all, whatever the address
held = hold(B, 1, "127.0.0.3") + hold(B, 1, "127.0.0.4")
st, closed = answer(B, src="127.0.0.5")
H.check(st == 503 and closed, "B: the listener's 3rd connection -> 503, closed (%r)" % st)
st, _ = answer(A, src="127.0.0.5")
H.check(st == 200, "B's cap does not touch A (%r)" % st)
for s in held:
    s.close()

# C: the default, 256 per address
held = hold(C, 256)
st, closed = answer(C)
H.check(st == 503 and closed, "C: the 257th connection from one address (default cap) -> 503 "
        "(%r)" % st)
st, _ = answer(C, src="127.0.0.6")
H.check(st == 200, "C: another address is still served (%r)" % st)
for s in held:
    s.close()

# T: L4, 2 per address: closed without a byte
held = hold(T, 2)
t0 = time.time()
st, closed = answer(T)
H.check(st is None and closed and time.time() - t0 < 2,
        "T (TCP): the 3rd connection from one address is closed at once (%r, %s)" % (st, closed))
for s in held:
    s.close()
time.sleep(0.3)
st, _ = answer(T)
H.check(st == 200, "T (TCP): served again once below the cap (%r)" % st)

# a burst of refusals: at most one log line a second
held = hold(A, 4)
t0 = time.time()
refused = sum(answer(A)[0] == 503 for _ in range(30))
dt = time.time() - t0
for s in held:
    s.close()
time.sleep(1.1)
held = hold(A, 4, "127.0.0.9")
st, _ = answer(A, src="127.0.0.9")  # a refusal after a quiet second: logged, with the count
H.check(st == 503, "A: refused again after a quiet second (%r)" % st)
lines = [ln for ln in gw.logtext().splitlines() if "event=conn_refused" in ln]
unlogged = sum(int(ln.split("refused_unlogged=")[1].split()[0]) for ln in lines)
total = 1 + 1 + 1 + 1 + refused + 1  # A, B, C, T, the burst, the last one
H.check(refused == 30, "30 refusals in a burst (%d in %.1f s)" % (refused, dt))
H.check(len(lines) <= 6 + dt and len(lines) + unlogged == total,
        "refusals logged at most once a second: %d lines for %d refusals, %d counted as "
        "left out" % (len(lines), total, unlogged))
H.check(gw.proc.poll() is None, "gateway alive")
gw.stop()
H.finish()
