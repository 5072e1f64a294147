#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Regression: a request whose body arrives together with the client's
half-close (FIN in the same segment, as `nc -N` or a shutdown() after the
last write does) is forwarded whole and answered 200; only a body that
really ends early gets 400. Before the fix, the proxy saw EOF before it
pumped the buffered body and answered 400 with a truncated request at the
backend."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hostile as H  # noqa: E402

REC = H.Recorder()
HTTP = H.wg.free_port()
gw = H.gateway(H.config([("http", "HTTP", HTTP)],
                        ["  - backendRefs: [{name: rec, port: 80}]"], {"rec": REC.port}), HTTP)
H.wg.wait_for(lambda: H.raw(HTTP, b"GET /ready HTTP/1.1\r\nHost: a\r\n\r\n")[0]
              .startswith(b"HTTP/1.1 200"), timeout=10)

ok = 0
N = 40
for i in range(N):
    body = b"x" * (i * 97 % 3000 + 1)
    for te in (False, True):
        path = "/hc%d%s" % (i, "t" if te else "c")
        if te:
            req = (b"POST %s HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n"
                   % (path.encode(), len(body)) + body + b"\r\n0\r\n\r\n")
        else:
            req = b"POST %s HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n" % (
                path.encode(), len(body)) + body
        out, _ = H.raw(HTTP, req, timeout=3)
        got = [r for r in REC.for_id(path) if r["path"] == path]
        if H.statuses(out)[:1] == [200] and len(got) == 1 and got[0]["body"] == body:
            ok += 1
H.check(ok == 2 * N, "body + half-close forwarded whole and answered 200: %d/%d" % (ok, 2 * N))

out, closed = H.raw(HTTP, b"POST /short HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc")
H.check(H.statuses(out)[:1] == [400] and closed, "a body cut short by the half-close gets 400")
out, closed = H.raw(HTTP, b"POST /shortc HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                    b"a\r\nabc")
H.check(H.statuses(out)[:1] == [400] and closed, "a chunked body cut short gets 400")
gw.stop()
H.finish()
