#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Limits, each answered with its status while everyone else is still
served: 400 (malformed, or a length no box could carry), 408 (head not
complete within 10 s), 413 (Content-Length over the default 64 MiB body
cap), 414 (request line over 8 KiB), 431 (head over 16 KiB; more than 100
header fields), 417 (unknown expectation), 501 (unknown transfer coding),
503 (no ready endpoint). Each refused connection is closed; a request just
under each limit is served; a normal request after every case shows the
worker lives. Chunked bodies over the cap and limits set per listener:
t_listener_limits.py."""
import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hostile as H  # noqa: E402

REC = H.Recorder()
HTTP = H.wg.free_port()
yaml = H.config([("http", "HTTP", HTTP)],
                ["  - matches: [{path: {type: PathPrefix, value: /empty}}]",
                 "    backendRefs: [{name: empty, port: 80}]",
                 "  - backendRefs: [{name: rec, port: 80}]"], {"rec": REC.port},
                extra="""---
apiVersion: v1
kind: Service
metadata: {name: empty, namespace: default}
spec: {ports: [{name: http, port: 80, targetPort: 9}]}
""")
gw = H.gateway(yaml, HTTP)
H.wg.wait_for(lambda: H.raw(HTTP, b"GET /ready HTTP/1.1\r\nHost: a\r\n\r\n")[0]
              .startswith(b"HTTP/1.1 200"), timeout=10)


def alive():
    return H.raw(HTTP, b"GET /alive HTTP/1.1\r\nHost: a\r\n\r\n")[0].startswith(b"HTTP/1.1 200")


def expect(name, data, status, closed_wanted=True, timeout=3.0):
    out, closed = H.raw(HTTP, data, timeout=timeout, shut=False)
    st = H.statuses(out)
    H.check(st[:1] == [status] and (closed or not closed_wanted) and alive(),
            "%s -> %d%s (got %r, closed=%s)" % (name, status, ", closed" if closed_wanted else "",
                                               st, closed))


# 414 / request line
line_ok = b"GET /" + b"a" * (8192 - 200) + b" HTTP/1.1\r\nHost: a\r\n\r\n"
expect("request line just under 8 KiB", line_ok, 200, closed_wanted=False, timeout=1.5)
expect("request line of 9 KiB", b"GET /" + b"a" * 9216 + b" HTTP/1.1\r\nHost: a\r\n\r\n", 414)
expect("request line of 1 MiB", b"GET /" + b"a" * (1 << 20) + b" HTTP/1.1\r\nHost: a\r\n\r\n", 414)
# 431 / head size and field count
expect("head of 15 KiB", b"GET / HTTP/1.1\r\nHost: a\r\nX: " + b"a" * (15 * 1024) + b"\r\n\r\n",
       200, closed_wanted=False, timeout=1.5)
expect("head of 17 KiB", b"GET / HTTP/1.1\r\nHost: a\r\nX: " + b"a" * (17 * 1024) + b"\r\n\r\n", 431)
expect("head of 17 KiB in many fields",
       b"GET / HTTP/1.1\r\nHost: a\r\n" + b"".join(b"X-%d: %s\r\n" % (i, b"a" * 200)
                                                 for i in range(85)) + b"\r\n", 431)
expect("99 fields", b"GET / HTTP/1.1\r\nHost: a\r\n" +
       b"".join(b"X-%d: 1\r\n" % i for i in range(98)) + b"\r\n", 200, closed_wanted=False,
       timeout=1.5)
expect("101 fields", b"GET / HTTP/1.1\r\nHost: a\r\n" +
       b"".join(b"X-%d: 1\r\n" % i for i in range(100)) + b"\r\n", 431)
expect("10,000 fields", b"GET / HTTP/1.1\r\nHost: a\r\n" + b"X: 1\r\n" * 10000 + b"\r\n", 431)
# 400
expect("garbage", b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" + b"\x00" * 64 + b"\r\n\r\n", 400)
expect("lone LF head", b"GET / HTTP/1.1\nHost: a\n\n", 400)
# A length no box could carry is a framing error (400); one over the body
# cap is refused from the head alone (413).
expect("Content-Length of 2^64", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: "
       b"18446744073709551616\r\n\r\n", 400)
expect("chunk size of 2^64", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
       b"10000000000000000\r\n", 400)
expect("Content-Length of 64 MiB + 1", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n"
       % ((64 << 20) + 1), 413)
# 417, 501
expect("Expect: something", b"GET / HTTP/1.1\r\nHost: a\r\nExpect: x\r\n\r\n", 417, closed_wanted=False)
expect("unknown transfer coding", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: br\r\n\r\n", 501)
# 503: a Service with no ready endpoint
expect("no endpoints", b"GET /empty HTTP/1.1\r\nHost: a\r\n\r\n", 503, closed_wanted=False,
       timeout=1.5)
# 408: a head not finished within the head timeout (10 s), trickled
s = socket.create_connection(("127.0.0.1", HTTP), timeout=20)
t0 = time.time()
s.sendall(b"GET / HTTP/1.1\r\n")
out = b""
s.settimeout(1.0)
while time.time() - t0 < 16:
    try:
        s.sendall(b"X")  # one byte a second: never a whole head
    except OSError:
        pass
    try:
        d = s.recv(4096)
    except socket.timeout:
        continue
    except OSError:
        break
    if not d:
        break
    out += d
dt = time.time() - t0
s.close()
H.check(H.statuses(out)[:1] == [408] and 9.0 <= dt <= 13.0,
        "trickled head -> 408 after %.1f s (head timeout 10 s): %r" % (dt, out[:40]))
H.check(alive(), "worker alive after every limit")
H.check(gw.proc.poll() is None, "gateway alive")
gw.stop()
H.finish()
