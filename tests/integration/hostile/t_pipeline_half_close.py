#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Regression: several pipelined requests sent together with the client's
half-close (shutdown(SHUT_WR) right after the last one) are all answered,
in order, and then the connection is closed. Before the fix the EOF seen
while reading ahead marked the connection for closing after the first
response, and the rest were dropped. A trailing incomplete request is not
answered; a request with a body in the middle of the pipeline is served
too; the same holds when the half-close comes after a pause."""
import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hostile as H  # noqa: E402

REC = H.Recorder()
HTTP = H.wg.free_port()
gw = H.gateway(H.config([("http", "HTTP", HTTP)],
                        ["  - backendRefs: [{name: rec, port: 80}]"], {"rec": REC.port}), HTTP)
H.wg.wait_for(lambda: H.raw(HTTP, b"GET /ready HTTP/1.1\r\nHost: a\r\n\r\n")[0]
              .startswith(b"HTTP/1.1 200"), timeout=10)


def bodies(out):
    """(status, body) of each response in out, framed by Content-Length."""
    res = []
    while out.startswith(b"HTTP/1."):
        i = out.find(b"\r\n\r\n")
        if i < 0:
            break
        n = 0
        for ln in out[:i].lower().split(b"\r\n"):
            if ln.startswith(b"content-length:"):
                n = int(ln.split(b":")[1])
        res.append((int(out[9:12]), out[i + 4:i + 4 + n]))
        out = out[i + 4 + n:]
    return res


def get(path):
    return b"GET %s HTTP/1.1\r\nHost: a\r\n\r\n" % path


for n in (2, 5, 20):
    paths = [b"/p%d-%d" % (n, i) for i in range(n)]
    out, closed = H.raw(HTTP, b"".join(get(p) for p in paths), timeout=5)
    got = bodies(out)
    H.check(got == [(200, p) for p in paths] and closed,
            "%d pipelined GETs + half-close: %d answered in order, closed=%s" %
            (n, len(got), closed))

data = (get(b"/b1") + b"POST /b2 HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello" +
        b"POST /b3 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n" +
        get(b"/b4"))
out, closed = H.raw(HTTP, data, timeout=5)
H.check(bodies(out) == [(200, b"/b1"), (200, b"/b2"), (200, b"/b3"), (200, b"/b4")] and closed,
        "GET, POST (length), POST (chunked), GET + half-close: all answered in order (%r)" %
        [s for s, _ in bodies(out)])
b2 = [r for r in REC.for_id("/b2") if r["path"] == "/b2"]
b3 = [r for r in REC.for_id("/b3") if r["path"] == "/b3"]
H.check(len(b2) == 1 and b2[0]["body"] == b"hello" and len(b3) == 1 and b3[0]["body"] == b"abc",
        "the bodies in the pipeline reached the backend whole")

out, closed = H.raw(HTTP, get(b"/c1") + get(b"/c2") + b"GET /c3 HTTP/1.1\r\nHost:", timeout=5)
H.check(bodies(out) == [(200, b"/c1"), (200, b"/c2")] and closed,
        "a trailing incomplete request: the complete ones answered, then closed (%r)" %
        [s for s, _ in bodies(out)])
H.check(not REC.for_id("/c3"), "the incomplete request never reached the backend")

# the half-close arrives on its own, after the requests were read
s = socket.create_connection(("127.0.0.1", HTTP), timeout=5)
s.sendall(get(b"/d1") + get(b"/d2") + get(b"/d3"))
time.sleep(0.2)
s.shutdown(socket.SHUT_WR)
out = H.wg.recv_until_close(s)
H.check(bodies(out) == [(200, b"/d1"), (200, b"/d2"), (200, b"/d3")],
        "half-close after a pause: every request answered (%r)" % [s for s, _ in bodies(out)])
H.check(gw.proc.poll() is None, "gateway alive")
gw.stop()
H.finish()
