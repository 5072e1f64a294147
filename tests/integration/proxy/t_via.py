#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The Via field (RFC 9110 §7.6.3) through the real binary: a request
forwarded to a backend gets `Via: 1.1 waygate` after the client's own Via
fields (`1.0` for an HTTP/1.0 client, `2` for a request that came over
HTTP/2), a response forwarded to the client gets one after the backend's,
answers made by waygate itself carry none, `--via off` adds none, and a
bad `--via` value is refused with exit 2."""
import json
import os
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "h2"))
import h2raw  # noqa: E402
import wg  # noqa: E402
from wg import check  # noqa: E402

ECHO = wg.free_port()
wg.echo("echo", ECHO)

ROUTE = wg.route_yaml("echo")


def start(extra=()):
    port = wg.free_port()
    cfg = tempfile.mkdtemp(prefix="wg-via-")
    with open(os.path.join(cfg, "gw.yaml"), "w") as f:
        f.write(wg.gateway_yaml(port) + wg.backend_yaml("echo", ECHO) + ROUTE)
    gw = wg.Gateway(cfg, extra=extra)
    wg.wait_for(lambda: wg.http(port, "/")[0] == 200)
    return gw, port


def raw(port, request):
    """Sends request bytes on a new connection; returns the response head
    (lines) and the body, read until the server closes."""
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(request)
    out = wg.recv_until_close(s)
    head, _, body = out.partition(b"\r\n\r\n")
    return head.decode("latin-1").split("\r\n"), body


def vias(head_lines):
    return [ln.split(":", 1)[1].strip() for ln in head_lines if ln.lower().startswith("via:")]


def h2_request_headers(port):
    """The backend's view of one GET that came over cleartext HTTP/2."""
    s = h2raw.connect(port)
    s.sendall(h2raw.frame(h2raw.HEADERS, h2raw.END_STREAM | h2raw.END_HEADERS, 1,
                          h2raw.request_block("/h2", "app.test")))
    r = h2raw.Reader(s)
    deadline = time.time() + 5
    body = b""
    while time.time() < deadline:
        f = r.next(deadline)
        if f is None or f[0] == "closed":
            break
        ftype, flags, sid, payload = f
        if ftype == h2raw.SETTINGS and not flags & h2raw.ACK:
            s.sendall(h2raw.frame(h2raw.SETTINGS, h2raw.ACK, 0))
        if sid == 1 and ftype == h2raw.DATA:
            body += payload
        if sid == 1 and flags & h2raw.END_STREAM:
            break
    s.close()
    return json.loads(body)["headers"] if body else {}


gw, port = start()

# requests towards the backend: ours comes after the client's own Via
head, body = raw(port, b"GET /a HTTP/1.1\r\nHost: x\r\nVia: 1.0 fred, 1.1 p.example\r\n"
                       b"Connection: close\r\n\r\n")
j = json.loads(body)
check(j["headers"].get("Via") == ["1.0 fred, 1.1 p.example", "1.1 waygate"],
      "request: Via 1.1 waygate appended after the client's (got %r)" % j["headers"].get("Via"))
check(vias(head) == ["1.1 waygate"], "response: Via 1.1 waygate (got %r)" % vias(head))

head, body = raw(port, b"GET /b HTTP/1.0\r\nHost: x\r\n\r\n")
j = json.loads(body)
check(j["headers"].get("Via") == ["1.0 waygate"],
      "HTTP/1.0 request: received protocol 1.0 (got %r)" % j["headers"].get("Via"))

# responses towards the client: ours comes after the backend's
head, _ = raw(port, b"GET /c HTTP/1.1\r\nHost: x\r\nX-Echo-Set-Header: Via: 1.1 origin\r\n"
                    b"Connection: close\r\n\r\n")
check(vias(head) == ["1.1 origin", "1.1 waygate"],
      "response: Via appended after the backend's (got %r)" % vias(head))

# a request that came over HTTP/2 was received as "2"
hv = h2_request_headers(port)
check(hv.get("Via") == ["2 waygate"], "HTTP/2 request: Via 2 waygate (got %r)" % hv.get("Via"))

# an answer made here was not forwarded: no Via
head, _ = raw(port, b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n"
                    b"Transfer-Encoding: chunked\r\n\r\n")
check(head[0].startswith("HTTP/1.1 400") and vias(head) == [],
      "a local error answer carries no Via (got %r %r)" % (head[0], vias(head)))
gw.stop()

# --via off: nothing added either way
gw2, port2 = start(["--via", "off"])
head, body = raw(port2, b"GET /d HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
check("Via" not in json.loads(body)["headers"] and vias(head) == [],
      "--via off: no Via on the request or the response")
gw2.stop()

r = subprocess.run([wg.BIN, "run", "--config", "/nonexistent", "--via", "maybe"],
                   capture_output=True, timeout=10)
check(r.returncode == 2 and b"--via" in r.stderr, "--via maybe: exit 2 naming the flag")

wg.finish(gw.logtext(), gw2.logtext())
print("all passed")
