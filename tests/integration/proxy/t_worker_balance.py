#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Connections are balanced over the workers: SO_REUSEPORT hashes them
onto the workers' sockets, and a worker that already holds more
connections than another hands a new one over. 3 workers, 30 kept-open
connections opened one after the other: each worker serves 10 (the close
log names the worker). By the hash alone an even split is unlikely (about
1 in 40 per round; two rounds are checked)."""
import collections
import os
import re
import socket
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import wg  # noqa: E402
from wg import check  # noqa: E402

ECHO_PORT = wg.free_port()
wg.echo("echo", ECHO_PORT)
ROUTE = wg.route_yaml("echo")


def one_round(port, n):
    """n connections, each answered once and kept open; then all closed."""
    socks = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        got = b""
        while b"\r\n\r\n" not in got:
            got += s.recv(4096)
        socks.append(s)
    for s in socks:
        s.close()


port = wg.free_port()
cfg = tempfile.mkdtemp(prefix="wg-bal-")
with open(os.path.join(cfg, "gw.yaml"), "w") as f:
    f.write(wg.gateway_yaml(port) + wg.backend_yaml("echo", ECHO_PORT) + ROUTE)
gw = wg.Gateway(cfg, extra=["--workers", "3", "--log-level", "debug"])
wg.wait_port(port, proc=gw.proc)
wg.wait_for(lambda: wg.http(port, "/")[0] == 200)


def n_closed():
    return len(re.findall(r"event=conn_close worker=", gw.logtext()))


# the warm-up connections' closes are logged a moment after their answers:
# count from once they are all in, or a round's slice would take one of them
wg.wait_for(lambda: n_closed() >= 1)
base = n_closed()
while True:
    time.sleep(0.3)
    if n_closed() == base:
        break
    base = n_closed()

for rnd in (1, 2):
    one_round(port, 30)
    want = base + 30 * rnd
    wg.wait_for(lambda: n_closed() >= want)
    closes = re.findall(r"event=conn_close worker=(\d+)", gw.logtext())[base + 30 * (rnd - 1):want]
    per = collections.Counter(closes)
    check(len(closes) == 30 and sorted(per.values()) == [10, 10, 10],
          "round %d: 30 connections, 10 on each of 3 workers: %r" % (rnd, dict(per)))
check(gw.stop() == 0, "gateway exits 0")
wg.finish(gw.logtext())
print("all passed")
