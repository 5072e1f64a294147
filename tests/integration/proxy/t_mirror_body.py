#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""RequestMirror for HTTP/1.1 requests with a body: each mirror gets the
request with the whole body, framed as the client framed it (a length, or
chunked), streamed as it goes to the main backend; two mirrors each get
theirs; a mirror that does not read is dropped without holding the client
back; a body the client cuts short never reaches a mirror as a whole
request; bodiless requests are mirrored as before."""
import hashlib
import http.server
import os
import socket
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import wg  # noqa: E402
from wg import check  # noqa: E402

lock = threading.Lock()
seen = {"main": [], "m1": [], "m2": [], "stuck": []}


def handler(name, stall=0.0):
    class H(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def answer(self):
            if stall:  # reads nothing for a while: its window fills up
                time.sleep(stall)
            try:
                body, framing = wg.read_request_body(self)
            except (OSError, ValueError):
                body, framing = None, "error"
            digest = hashlib.sha256(body).hexdigest() if body is not None else None
            with lock:
                seen[name].append((self.command, self.path, framing, digest,
                                   len(body) if body is not None else -1))
            out = ("%s %s\n" % (name, digest)).encode()
            try:
                self.send_response(200)
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)
            except OSError:
                pass

        do_GET = do_POST = do_PUT = answer

        def log_message(self, *a):
            pass
    return H


def serve(name, stall=0.0):
    port = wg.free_port()
    s = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler(name, stall))
    s.daemon_threads = True
    threading.Thread(target=s.serve_forever, daemon=True).start()
    return port


def route(name, host, mirrors):
    filters = "".join("""
    - type: RequestMirror
      requestMirror: {backendRef: {name: %s, port: 80}}""" % m for m in mirrors)
    return wg.host_route_yaml(name, host, "filters:%s\n    backendRefs: [{name: main, port: 80}]"
                              % filters)


def post(port, host, body, chunks=None, timeout=10):
    """One POST on a new connection; chunks: send the body chunked in that
    many pieces. Returns (status, body)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    if chunks:
        head = ("POST /up HTTP/1.1\r\nHost: %s\r\nTransfer-Encoding: chunked\r\n"
                "Connection: close\r\n\r\n" % host).encode()
        step = (len(body) + chunks - 1) // chunks
        data = b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + step]), body[i:i + step])
                        for i in range(0, len(body), step)) + b"0\r\n\r\n"
        s.sendall(head + data)
    else:
        s.sendall(("POST /up HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n"
                   "Connection: close\r\n\r\n" % (host, len(body))).encode() + body)
    out = wg.recv_until_close(s)
    head, _, rest = out.partition(b"\r\n\r\n")
    status = int(head.split(b" ")[1]) if head.startswith(b"HTTP/1.1 ") else 0
    return status, rest


def last(name, path="/up"):
    with lock:
        hits = [x for x in seen[name] if x[1] == path]
    return hits[-1] if hits else None


def main():
    ports = {n: serve(n) for n in ("main", "m1", "m2")}
    ports["stuck"] = serve("stuck", stall=3.0)
    port = wg.free_port()
    cfg = wg.gateway_yaml(port)
    for n, p in ports.items():
        cfg += wg.backend_yaml(n, p)
    cfg += route("one", "one.test", ["m1"])
    cfg += route("two", "two.test", ["m1", "m2"])
    cfg += route("stuck", "stuck.test", ["stuck"])
    cfgdir = tempfile.mkdtemp(prefix="wg-mirror-body-")
    with open(os.path.join(cfgdir, "gw.yaml"), "w") as f:
        f.write(cfg)
    gw = wg.Gateway(cfgdir)
    wg.wait_port(port, proc=gw.proc)
    wg.wait_for(lambda: wg.http(port, "/ready", host="one.test")[0] == 200)

    # a body with a length, larger than a buffer: the mirror gets it whole
    body = os.urandom(300 * 1024)
    want = hashlib.sha256(body).hexdigest()
    st, rb = post(port, "one.test", body)
    check(st == 200 and rb == ("main %s\n" % want).encode(),
          "mirror body: the main backend got the body whole: %r" % ((st, rb[:80]),))
    got = wg.wait_for(lambda: last("m1"), timeout=5)
    check(got == ("POST", "/up", "length %d" % len(body), want, len(body)),
          "mirror body: the mirror got the same POST, framed by its length: %r" % (got,))

    # chunked: the mirror gets the body chunked, the same bytes
    with lock:
        seen["m1"].clear()
    body = os.urandom(100 * 1024 + 7)
    want = hashlib.sha256(body).hexdigest()
    st, rb = post(port, "one.test", body, chunks=9)
    check(st == 200 and rb == ("main %s\n" % want).encode(),
          "mirror chunked body: main answer %r" % st)
    got = wg.wait_for(lambda: last("m1"), timeout=5)
    check(got == ("POST", "/up", "chunked", want, len(body)),
          "mirror chunked body: the mirror got it chunked and whole: %r" % (got,))

    # two mirrors: each gets its own copy
    with lock:
        seen["m1"].clear()
        seen["m2"].clear()
    body = b"x" * 5000
    want = hashlib.sha256(body).hexdigest()
    st, _ = post(port, "two.test", body)
    check(st == 200, "two mirrors: main answer %r" % st)
    check(wg.wait_for(lambda: last("m1") and last("m2"), timeout=5) and
          last("m1")[3] == want and last("m2")[3] == want,
          "two mirrors: each got the body: %r %r" % (last("m1"), last("m2")))

    # a mirror that reads nothing for 3 s: a large body (more than the sockets hold) is not held back
    body = os.urandom(32 * 1024 * 1024)
    want = hashlib.sha256(body).hexdigest()
    t = time.time()
    st, rb = post(port, "stuck.test", body, timeout=20)
    took = time.time() - t
    check(st == 200 and rb == ("main %s\n" % want).encode() and took < 2.5,
          "stuck mirror: the client's 32 MiB went through in %.2f s (status %r)" % (took, st))
    got = wg.wait_for(lambda: last("stuck"), timeout=8)
    check(got[3] is None,
          "stuck mirror: dropped, so it never saw a whole request: %r" % (got,))

    # the client cuts its body short: no mirror gets a whole request
    with lock:
        seen["m1"].clear()
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(b"POST /up HTTP/1.1\r\nHost: one.test\r\nContent-Length: 10000\r\n\r\n" +
              b"y" * 4000)
    time.sleep(0.3)
    s.close()
    got = wg.wait_for(lambda: last("m1"), timeout=5)
    check(got[3] is None and got[4] == -1,
          "cut body: the mirror's request ended short, not whole: %r" % (got,))

    # bodiless requests are still mirrored, keep-alive pipelines too
    with lock:
        seen["m1"].clear()
    st, _, _ = wg.http(port, "/plain", host="one.test")
    check(st == 200 and wg.wait_for(lambda: last("m1", "/plain"), timeout=5)[2] == "length 0",
          "bodiless GET still mirrored")

    check(gw.stop() == 0, "gateway exits 0")
    wg.finish(gw.logtext())
    print("0 failures")


if __name__ == "__main__":
    main()
