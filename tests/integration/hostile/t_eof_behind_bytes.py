#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""An EOF that arrives together with the last bytes is seen. Under
edge-triggered epoll the event that reports the bytes also reports the FIN
behind them and no other event follows, so a short read must not be taken
for "nothing more" (an edge-triggered attempt, reverted, failed 3 and 13 of
40 here before it learnt that); level-triggered, the FIN is reported again.
  client side    a request and the half-close in one go: answered, then the
                 proxy closes (it would wait for the keep-alive timeout)
  backend side   a response whose body ends with the backend's close, sent
                 together with its FIN: the client gets the whole body and
                 the end of the chunked framing (it would hang)"""
import os
import socket
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hostile as H  # noqa: E402

BODY = b"close-delimited body\n"


class CloseDelimited(H._Server):
    """Reads the head, then sends a response without Content-Length and its
    FIN back to back."""

    def __init__(self):
        super().__init__(self._h)

    def _h(self, c):
        H._read_until(c, b"", b"\r\n\r\n")
        c.sendall(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + BODY)
        c.shutdown(socket.SHUT_WR)


REC, EOFB = H.Recorder(), CloseDelimited()
HTTP = H.wg.free_port()
yaml = H.config([("http", "HTTP", HTTP)],
                ["  - matches: [{path: {type: PathPrefix, value: /eof}}]\n"
                 "    backendRefs: [{name: eofb, port: 80}]",
                 "  - backendRefs: [{name: rec, port: 80}]"],
                {"rec": REC.port, "eofb": EOFB.port})
gw = H.gateway(yaml, HTTP)
H.wg.wait_for(lambda: H.raw(HTTP, b"GET /ready HTTP/1.1\r\nHost: a\r\n\r\n")[0]
              .startswith(b"HTTP/1.1 200"), timeout=10)

N = 40
ok = 0
for i in range(N):
    out, closed = H.raw(HTTP, b"GET /c%d HTTP/1.1\r\nHost: a\r\n\r\n" % i, timeout=3)
    ok += H.statuses(out) == [200] and closed
H.check(ok == N, "request + half-close: answered and closed: %d/%d" % (ok, N))

ok = 0
for i in range(N):
    out, closed = H.raw(HTTP, b"GET /eof/%d HTTP/1.1\r\nHost: a\r\n\r\n" % i, timeout=3)
    ok += (H.statuses(out) == [200] and BODY in out and out.endswith(b"0\r\n\r\n")
           and closed)
H.check(ok == N, "close-delimited response with its FIN: whole and ended: %d/%d" % (ok, N))
gw.stop()
H.finish()
