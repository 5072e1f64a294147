#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The bench's bytes-only forwarder (tests/bench/floor.c, through
tests/bench/floor-target) in both of its I/O modes: kept-alive requests
and parallel connections reach the backend and come back whole, and a
backend that refuses the connection closes the client's instead of leaving
it hanging. (What it measures only means something if it forwards.) The
io_uring mode is skipped where the kernel refuses io_uring."""
import http.client
import os
import socket
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import wg  # noqa: E402

check = wg.check
TARGET = os.path.join(wg.ROOT, "tests", "bench", "floor-target")
work = tempfile.mkdtemp(prefix="wg-floor-")
backend = wg.free_port()
wg.echo("origin", backend)


def start(mode, backend_port):
    port = wg.free_port()
    log = os.path.join(work, "floor-%s-%d.log" % (mode, port))
    env = dict(os.environ, PROXY_HTTP_PORT=str(port),
               BENCH_BACKEND_HTTP="127.0.0.1:%d" % backend_port, FLOOR_WORKERS="2")
    p = wg.spawn([TARGET, mode], log=log, env=env)
    deadline = time.time() + 60  # the first start compiles the tool
    while time.time() < deadline and p.poll() is None:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return p, port, log
        except OSError:
            time.sleep(0.1)
    return p, None, log


def log_text(log):
    with open(log, errors="replace") as f:
        return f.read()


for mode in ("epoll", "uring"):
    p, port, log = start(mode, backend)
    if port is None and mode == "uring" and "io_uring_setup" in log_text(log):
        print("skip uring: the kernel refuses io_uring here: " + log_text(log).strip())
        continue
    if not check(port is not None, "%s: the forwarder listens" % mode):
        wg.finish(log_text(log))

    c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    statuses, named = [], 0
    for i in range(20):
        c.request("GET", "/k/%d" % i, headers={"Host": "floor.test"})
        r = c.getresponse()
        body = r.read()
        statuses.append(r.status)
        named += b"origin" in body
    c.close()
    check(statuses == [200] * 20 and named == 20,
          "%s: 20 requests on one kept-alive connection come back from the backend" % mode)

    conns = [http.client.HTTPConnection("127.0.0.1", port, timeout=5) for _ in range(8)]
    for i, c in enumerate(conns):
        c.request("POST", "/p/%d" % i, body=b"x" * 40000, headers={"Host": "floor.test"})
    ok = 0
    for c in conns:
        r = c.getresponse()
        ok += r.status == 200 and b"origin" in r.read()
        c.close()
    check(ok == 8, "%s: 8 parallel connections with 40 KB bodies all answered" % mode)

    p.terminate()
    p.wait()

    # A backend that refuses: the client's connection is closed, not left open.
    p, port, log = start(mode, wg.free_port())
    if check(port is not None, "%s: starts with a refusing backend" % mode):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.sendall(b"GET / HTTP/1.1\r\nHost: floor.test\r\n\r\n")
        try:
            closed = s.recv(100) == b""
        except (socket.timeout, ConnectionResetError) as e:
            closed = isinstance(e, ConnectionResetError)
        s.close()
        check(closed, "%s: a refused backend connection closes the client's" % mode)
    p.terminate()
    p.wait()

wg.finish()
