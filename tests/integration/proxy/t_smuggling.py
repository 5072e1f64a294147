#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Request smuggling through the real binary: every byte value placed in and
around the framing fields (inside and after Content-Length and
Transfer-Encoding values, before their colon, at the start of their line),
each request followed by a second, "smuggled" request. Every sequence must
be either refused (400 or 501, connection closed, nothing further parsed)
or read in exactly one clean framing, in which case the backend sees the
first request's body as a body and the smuggled request, if answered at all,
as a request of its own after the first answer. The backend is
`waygate echo`, which reports every request it parsed."""
import json
import os
import socket
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import wg  # noqa: E402

HTTP, BE = wg.free_port(), wg.free_port()
wg.echo("be", BE)
cfg = tempfile.mkdtemp(prefix="wg-smuggle-")
open(os.path.join(cfg, "all.yaml"), "w").write(wg.gateway_yaml(HTTP, cls="waygate") + """---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r, namespace: default}
spec:
  parentRefs: [{name: gw}]
  rules:
  - backendRefs: [{name: be, port: 80}]
""" + wg.backend_yaml("be", BE))
gw = wg.Gateway(cfg)
wg.wait_port(HTTP, timeout=20, proc=gw.proc)
wg.wait_for(lambda: wg.http(HTTP, "/ready")[0] == 200, timeout=10)

SMUGGLED = b"GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n"


def send(data):
    s = socket.create_connection(("127.0.0.1", HTTP), timeout=2)
    s.sendall(data)
    s.shutdown(socket.SHUT_WR)  # nothing more comes: a short body ends here
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


def answers(out):
    """(status, echoed path) of every answer on the connection."""
    res = []
    for part in out.split(b"HTTP/1.1 ")[1:]:
        st = int(part[:3])
        path = None
        i = part.find(b"\r\n\r\n")
        if st == 200 and i >= 0:
            try:
                path = json.loads(part[i + 4:].split(b"\n")[0])["path"]
            except Exception:
                path = "?"
        res.append((st, path))
    return res


TEMPLATES = [
    # (name, head fields with @ for the byte, body)
    ("in CL value", b"Content-Length: 5@", b"hello"),
    ("before CL colon", b"Content-Length@: 5", b"hello"),
    ("start of CL line", b"@Content-Length: 5", b"hello"),
    ("after chunked", b"Transfer-Encoding: chunked@", b"5\r\nhello\r\n0\r\n\r\n"),
    ("inside chunked", b"Transfer-Encoding: chun@ked", b"5\r\nhello\r\n0\r\n\r\n"),
    ("before TE colon", b"Transfer-Encoding@: chunked", b"5\r\nhello\r\n0\r\n\r\n"),
    ("CL and TE", b"Content-Length: 3\r\nTransfer-Encoding: chunked@", b"0\r\n\r\n"),
    ("chunk size", b"Transfer-Encoding: chunked", b"5@\r\nhello\r\n0\r\n\r\n"),
]

bad = []
total = refused = clean = 0
for name, field, body in TEMPLATES:
    for b in range(256):
        byte = bytes([b])
        req = (b"POST /first HTTP/1.1\r\nHost: a\r\n" + field.replace(b"@", byte) + b"\r\n\r\n" +
               body.replace(b"@", byte) + SMUGGLED)
        out = send(req)
        total += 1
        a = answers(out)
        if out.endswith(b"<timeout>"):
            # waiting for more body is a clean reading only when the first
            # request was accepted with a longer Content-Length than sent
            if a and a[0][0] not in (400, 501):
                bad.append((name, b, "timeout after %r" % (a,)))
            continue
        if a and a[0][0] in (400, 501):
            refused += 1
            if len(a) != 1:
                bad.append((name, b, "refused but more answers: %r" % (a,)))
            continue
        # accepted: first the first request, and the smuggled one only after it
        if not a or a[0] != (200, "/first"):
            bad.append((name, b, "first answer %r" % (a[:1],)))
            continue
        if any(p == "/smuggled" for _, p in a[:1]):
            bad.append((name, b, "smuggled answered first"))
        clean += 1

print("%d sequences: %d refused, %d read in one clean framing" % (total, refused, clean))
for x in bad[:20]:
    print("FAIL %s byte 0x%02x: %s" % x)
gw.stop()
if bad:
    print("%d failed" % len(bad))
    sys.exit(1)
print("all passed")
