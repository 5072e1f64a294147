#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The API server is verified before anything is sent: a CA that did not
sign it is refused (and the token never reaches it), a tls-server-name that
its certificate does not carry is refused; tls-server-name that it carries,
insecure-skip-tls-verify (reported as insecure) and an HTTP CONNECT proxy
(proxy-url) work."""
import json
import os
import socket
import sys
import threading
import time

sys.dont_write_bytecode = True  # noqa: E402 (keep the source tree clean)
from kubetest import Debug, check, server

api = server(tokens=("tok-1",))
d = api.dir
api.store.put("namespaces", {"metadata": {"name": "team-a"}})

# CA mismatch
n0 = len(api.log)
dbg = Debug(api.kubeconfig(os.path.join(d, "kc-otherca.json"), ca=api.certs["otherca.pem"]))
st = dbg.poll(lambda s: s["health"]["errors"] > 0, what="TLS failure reported")
check(not st["synced"] and "tls" in st["health"]["last_error"],
      "CA mismatch: refused, reported (%s)" % st["health"]["last_error"])
# the server logs the failed handshake when it reads the client's alert,
# which may come a moment after the client reported the failure
deadline = time.monotonic() + 5
while len(api.log) == n0 and time.monotonic() < deadline:
    time.sleep(0.05)
seen = api.log[n0:]
check(seen and all(r["verb"] == "tls-failed" for r in seen),
      "CA mismatch: no request reached the server (%d handshakes failed)" % len(seen))
check(not any(r["auth"] for r in seen), "CA mismatch: the token was never sent")
dbg.quit()

# tls-server-name the certificate carries, on an IP URL
dbg = Debug(api.kubeconfig(os.path.join(d, "kc-sni.json"),
                           cluster_extra={"tls-server-name": "kube.test"}))
dbg.synced()
check(True, "tls-server-name kube.test: verified and synced")
dbg.quit()

# tls-server-name the certificate does not carry
n0 = len(api.log)
dbg = Debug(api.kubeconfig(os.path.join(d, "kc-badsni.json"),
                           cluster_extra={"tls-server-name": "other.test"}))
st = dbg.poll(lambda s: s["health"]["errors"] > 0, what="name mismatch reported")
check(not st["synced"] and all(r["verb"] == "tls-failed" for r in api.log[n0:]),
      "tls-server-name mismatch: refused (%s)" % st["health"]["last_error"])
dbg.quit()

# a host name (resolved off the loop) rather than an IP literal
kc = api.kubeconfig(os.path.join(d, "kc-name.json"))
with open(kc) as f:
    cfg = json.load(f)
cfg["clusters"][0]["cluster"]["server"] = "https://localhost:%d" % api.port
with open(kc, "w") as f:
    json.dump(cfg, f)
dbg = Debug(kc)
dbg.synced()
check(True, "server given by name (localhost): resolved, verified, synced")
dbg.quit()

# a name that does not resolve: reported, and the loop keeps answering
cfg["clusters"][0]["cluster"]["server"] = "https://no-such-host.invalid:%d" % api.port
with open(kc, "w") as f:
    json.dump(cfg, f)
dbg = Debug(kc, "--request-timeout-ms", "4000")
t0 = time.monotonic()
st = dbg.state()
check(time.monotonic() - t0 < 2, "unresolvable name: the loop answers at once (%.2f s)" %
      (time.monotonic() - t0))
st = dbg.poll(lambda s: s["health"]["errors"] > 0, timeout=20, what="resolution failure")
check(not st["synced"] and ("resolve" in st["health"]["last_error"] or
                            "timed out" in st["health"]["last_error"]),
      "unresolvable name reported (%s)" % st["health"]["last_error"])
dbg.quit()

# insecure-skip-tls-verify: works, flagged
kc = api.kubeconfig(os.path.join(d, "kc-insecure.json"),
                    cluster_extra={"insecure-skip-tls-verify": True})
with open(kc) as f:
    cfg = json.load(f)
del cfg["clusters"][0]["cluster"]["certificate-authority"]
with open(kc, "w") as f:
    json.dump(cfg, f)
dbg = Debug(kc)
st = dbg.synced()
check(st["health"]["insecure"], "insecure-skip-tls-verify: synced, health says insecure")
dbg.quit()
with open(dbg.log) as f:
    check("not verified" in f.read(), "insecure-skip-tls-verify: a warning is printed")

# proxy-url: an HTTP CONNECT proxy with basic auth
connects = []


def pipe(a, b):
    try:
        while True:
            data = a.recv(65536)
            if not data:
                break
            b.sendall(data)
    except OSError:
        pass
    finally:
        for s in (a, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def proxy_conn(c):
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = c.recv(4096)
        if not chunk:
            return
        head += chunk
    line = head.split(b"\r\n")[0].decode()
    connects.append(head.decode())
    if "Proxy-Authorization: Basic dXNlcjpwYXNz" not in head.decode():
        c.sendall(b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n")
        c.close()
        return
    host, port = line.split()[1].rsplit(":", 1)
    u = socket.create_connection((host.strip("[]"), int(port)))
    c.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
    threading.Thread(target=pipe, args=(c, u), daemon=True).start()
    threading.Thread(target=pipe, args=(u, c), daemon=True).start()


lsock = socket.socket()
lsock.bind(("127.0.0.1", 0))
lsock.listen(64)


def accept_loop():
    while True:
        try:
            c, _ = lsock.accept()
        except OSError:
            return
        threading.Thread(target=proxy_conn, args=(c,), daemon=True).start()


threading.Thread(target=accept_loop, daemon=True).start()
dbg = Debug(api.kubeconfig(os.path.join(d, "kc-proxy.json"), cluster_extra={
    "proxy-url": "http://user:pass@127.0.0.1:%d" % lsock.getsockname()[1]}))
dbg.synced()
check(connects and all(c.startswith("CONNECT 127.0.0.1:%d " % api.port) for c in connects),
      "proxy-url: every connection went through CONNECT (%d)" % len(connects))
dbg.quit()
lsock.close()
print("PASS")
