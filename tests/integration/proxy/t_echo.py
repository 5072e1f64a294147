#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""`waygate echo` on its own: the JSON shape of the conformance echo-basic
image (path, host, method, proto, canonical headers without Host, pod
context from --name and the environment), /status/NNN, X-Echo-Set-Header,
HEAD, keep-alive and pipelining with bodies in both framings, a 400 for a
malformed request, usage errors (exit 2), and SIGTERM (exit 0)."""
import json
import os
import signal
import socket
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import wg  # noqa: E402
from wg import check, failures  # noqa: E402


PORT = wg.free_port()
env = dict(os.environ, NAMESPACE="ns1", SERVICE_NAME="svc1", INGRESS_NAME="gw1")
p = wg.spawn([wg.BIN, "echo", "--listen", "127.0.0.1:%d" % PORT, "--name", "pod-a"], env=env)
wg.wait_port(PORT, proc=p)

st, h, body = wg.http(PORT, "/a/b?c=d", host="h.example", headers={"x-multi": "1"})
j = json.loads(body)
check(st == 200 and h.get("content-type") == "application/json", "200 with JSON")
check(j["path"] == "/a/b?c=d" and j["host"] == "h.example" and j["method"] == "GET",
      "path (with query), host and method")
check(j["proto"] == "HTTP/1.1", "proto")
check(j["pod"] == "pod-a" and j["namespace"] == "ns1" and j["service"] == "svc1" and
      j["ingress"] == "gw1", "pod context from --name and the environment")
check("Host" not in j["headers"] and j["headers"].get("X-Multi") == ["1"],
      "canonical header names, lists of values, no Host")
check(j["httpPort"] == str(PORT) and j["tls"] is None, "httpPort and tls")

st, _, _ = wg.http(PORT, "/status/418")
check(st == 418, "/status/418 answers 418")
st, h, _ = wg.http(PORT, "/", headers={"X-Echo-Set-Header": "X-One:1, X-Two: two"})
check(h.get("x-one") == "1" and h.get("x-two") == "two", "X-Echo-Set-Header sets response headers")
st, h, body = wg.http(PORT, "/", method="HEAD")
check(st == 200 and body == b"" and int(h.get("content-length", "0")) > 0,
      "HEAD: the length without the body")

s = socket.create_connection(("127.0.0.1", PORT), timeout=5)
s.sendall(b"POST /1 HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc"
          b"POST /2 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nxy\r\n0\r\n\r\n"
          b"GET /3 HTTP/1.1\r\nHost: a\r\nA: 1\r\nA: 2\r\nConnection: close\r\n\r\n")
out = wg.recv_until_close(s)
check(out.count(b"HTTP/1.1 200 OK") == 3, "three pipelined requests answered")
check(out.find(b'"path":"/1"') < out.find(b'"path":"/2"') < out.find(b'"path":"/3"'), "in order")
check(b'"A":["1","2"]' in out, "repeated fields become one list")

s = socket.create_connection(("127.0.0.1", PORT), timeout=5)
s.sendall(b"GET / HTTP/1.1\r\nHost: a\r\nBad Name: x\r\n\r\n")
out = s.recv(65536)
s.close()
check(out.startswith(b"HTTP/1.1 400"), "a malformed request gets 400")

r = subprocess.run([wg.BIN, "echo"], capture_output=True, timeout=10)
check(r.returncode == 2 and b"--listen" in r.stderr, "missing --listen: exit 2 with a message")
r = subprocess.run([wg.BIN, "echo", "--listen", "nowhere"], capture_output=True, timeout=10)
check(r.returncode == 2, "invalid --listen: exit 2")

p.send_signal(signal.SIGTERM)
check(p.wait(timeout=10) == 0, "SIGTERM: exit 0")
if failures:
    print("%d failed" % len(failures))
    sys.exit(1)
print("all passed")
