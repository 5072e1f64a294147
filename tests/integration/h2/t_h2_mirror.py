#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""RequestMirror for requests that arrive over HTTP/2: each mirror backend
gets a copy of the request (the rewritten path, the filtered fields; a
body framed by its length, or chunked when the request announced none),
a percentage is respected, two mirrors each get theirs, and the client
gets the main backend's answer without waiting for a slow mirror.
The stream is served on the direct path: the gateway holds no in-process
socket pair while the client connection stays open. Needs python3-h2."""
import hashlib
import http.server
import os
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
sys.path.insert(0, os.path.dirname(__file__))
import wg  # noqa: E402

try:
    import h2.config
    import h2.connection
    import h2.events
except ImportError:
    print("skip: python3-h2 is not installed")
    sys.exit(0)

from t_h2_h1 import Backend, Server, h2req, route  # noqa: E402

check = wg.check
seen = {"m1": [], "m2": []}
bodies = {"m1": [], "m2": []}
lock = threading.Lock()


def mirror_handler(name, delay):
    class H(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):
            with lock:
                seen[name].append((self.path, {k.lower(): v for k, v in self.headers.items()}))
            if self.command == "POST":
                body, framing = wg.read_request_body(self)
                with lock:
                    bodies[name].append((self.path, framing,
                                         body and hashlib.sha256(body).hexdigest()))
            time.sleep(delay)  # the client must not wait for this
            body = b"from the mirror\n"
            self.send_response(299)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("X-Mirror", name)
            self.end_headers()
            self.wfile.write(body)

        do_POST = do_GET

        def log_message(self, *a):
            pass
    return H


def unix_sockets(pid):
    """How many AF_UNIX sockets the process holds (a socket pair shows as two)."""
    with open("/proc/net/unix") as f:
        inodes = {line.split()[6] for line in f.readlines()[1:]}
    n = 0
    fds = "/proc/%d/fd" % pid
    for fd in os.listdir(fds):
        try:
            link = os.readlink(os.path.join(fds, fd))
        except OSError:
            continue
        if link.startswith("socket:[") and link[8:-1] in inodes:
            n += 1
    return n


def main():
    port, bport, m1port, m2port = (wg.free_port() for _ in range(4))
    srv = Server(("127.0.0.1", bport), Backend)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    for name, p, delay in (("m1", m1port, 2.0), ("m2", m2port, 0.0)):
        m = http.server.ThreadingHTTPServer(("127.0.0.1", p), mirror_handler(name, delay))
        m.daemon_threads = True
        threading.Thread(target=m.serve_forever, daemon=True).start()

    be = "backendRefs: [{name: be, port: 80}]"
    cfg = wg.gateway_yaml(port) + wg.backend_yaml("be", bport)
    cfg += wg.backend_yaml("m1", m1port) + wg.backend_yaml("m2", m2port)
    cfg += route("one", "one.test", """matches: [{path: {type: PathPrefix, value: /old}}]
    filters:
    - type: URLRewrite
      urlRewrite: {path: {type: ReplacePrefixMatch, replacePrefixMatch: /new}}
    - type: RequestHeaderModifier
      requestHeaderModifier: {add: [{name: x-added, value: "yes"}]}
    - type: RequestMirror
      requestMirror: {backendRef: {name: m1, port: 80}}
    """ + be)
    cfg += route("two", "two.test", """filters:
    - type: RequestMirror
      requestMirror: {backendRef: {name: m1, port: 80}}
    - type: RequestMirror
      requestMirror: {backendRef: {name: m2, port: 80}}
    """ + be)
    cfg += route("half", "half.test", """filters:
    - type: RequestMirror
      requestMirror: {backendRef: {name: m2, port: 80}, percent: 50}
    """ + be)
    cfgdir = wg.tempfile.mkdtemp(prefix="wg-h2mirror-")
    with open(os.path.join(cfgdir, "gw.yaml"), "w") as f:
        f.write(cfg)
    gw = wg.Gateway(cfgdir)
    wg.wait_port(port, proc=gw.proc)
    wg.wait_for(lambda: h2req(port, "two.test", "/ready")[0] == 200)
    wg.wait_for(lambda: len(seen["m1"]) >= 1 and len(seen["m2"]) >= 1, timeout=5)
    with lock:
        seen["m1"].clear()
        seen["m2"].clear()

    # one mirror, 2 s slow: the client has the main answer long before
    t = time.time()
    st, rh, body = h2req(port, "one.test", "/old/x?q=1", headers=[("x-client", "c")])
    took = time.time() - t
    check(st == 200 and b'"target": "/new/x?q=1"' in body and took < 1.0,
          "h2 mirror: the main backend's answer, without waiting: %r in %.2fs" % (st, took))
    check("x-mirror" not in dict(rh), "h2 mirror: nothing of the mirror's answer reaches the client")
    check(wg.wait_for(lambda: len(seen["m1"]) == 1, timeout=3), "h2 mirror: the mirror got a copy")
    path, hd = seen["m1"][0]
    check(path == "/new/x?q=1" and hd.get("x-added") == "yes" and hd.get("x-client") == "c"
          and hd.get("host") == "one.test" and hd.get("via") == "2 waygate"
          and hd.get("x-forwarded-for") == "127.0.0.1",
          "h2 mirror: the copy is the filtered request: %r %r" % (path, hd))

    # two mirrors: one copy each
    st = h2req(port, "two.test", "/both")[0]
    check(st == 200, "h2 mirrors: main answer %r" % st)
    check(wg.wait_for(lambda: [p for p, _ in seen["m1"]].count("/both") == 1 and
                      [p for p, _ in seen["m2"]].count("/both") == 1, timeout=4),
          "h2 mirrors: each of two mirrors got one copy")

    # bodies: with a content-length, each mirror gets it by length; without
    # one, chunked; both whole
    big = os.urandom(200 * 1024)
    want = hashlib.sha256(big).hexdigest()
    st = h2req(port, "two.test", "/post", method="POST", body=big,
               headers=[("content-length", str(len(big)))])[0]
    check(st == 200, "h2 mirrors, body: main answer %r" % st)
    check(wg.wait_for(lambda: ("/post", "length %d" % len(big), want) in bodies["m1"] and
                      ("/post", "length %d" % len(big), want) in bodies["m2"], timeout=5),
          "h2 mirrors, body with a length: each mirror got it whole: %r" %
          [b[:2] for b in bodies["m1"] + bodies["m2"]])
    small = os.urandom(50 * 1024 + 3)
    want = hashlib.sha256(small).hexdigest()
    st = h2req(port, "two.test", "/chunks", method="POST", body=small)[0]
    check(st == 200, "h2 mirrors, body without a length: main answer %r" % st)
    check(wg.wait_for(lambda: ("/chunks", "chunked", want) in bodies["m2"], timeout=5),
          "h2 mirror, body without a length: the mirror got it chunked and whole: %r" %
          [b[:2] for b in bodies["m2"]])

    # percent 50: about half the requests are mirrored
    with lock:
        seen["m2"].clear()
    sts = [h2req(port, "half.test", "/h")[0] for _ in range(100)]
    check(sts == [200] * 100, "h2 mirror 50%%: every request answered: %r" % set(sts))
    time.sleep(0.5)
    n = len(seen["m2"])
    check(25 <= n <= 75, "h2 mirror 50%%: about half mirrored: %d of 100" % n)

    # served on the direct path: no socket pair while the connection is open
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    c = h2.connection.H2Connection(h2.config.H2Configuration(header_encoding="utf-8"))
    c.initiate_connection()
    c.send_headers(1, [(":method", "GET"), (":scheme", "http"), (":authority", "two.test"),
                       (":path", "/open")], end_stream=True)
    s.sendall(c.data_to_send())
    ended = False
    while not ended:
        d = s.recv(65536)
        if not d:
            break
        for ev in c.receive_data(d):
            ended = ended or isinstance(ev, h2.events.StreamEnded)
    check(ended, "h2 mirror: answered on a kept connection")
    n = unix_sockets(gw.proc.pid)
    check(n == 0, "h2 mirror: no in-process socket pair in the gateway: %d unix sockets" % n)
    s.close()

    check(gw.stop() == 0, "gateway exits 0")
    wg.finish(gw.logtext())
    print("0 failures")


if __name__ == "__main__":
    main()
