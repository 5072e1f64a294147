#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""HTTP/2 streams to HTTP/1.1 backends, the direct path: filters (request
and response header modifiers, URL rewrite, redirect, CORS), cookies joined,
bodies both ways (Content-Length and chunked), a backend behind verified
TLS (BackendTLSPolicy), pooled upstream connections reused across streams, pooled connections the backend closed left out, the
route's request timeout and backend request timeout
(504), retries on status for bodiless requests only, a dead endpoint
skipped at connect and ejected (passive health); then a graceful drain:
SIGTERM sends GOAWAY naming the last stream, the in-flight stream still
gets its whole answer, and the gateway exits 0. Needs python3-h2."""
import json
import os
import signal
import socket
import socketserver
import ssl
import struct
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
sys.path.insert(0, os.path.dirname(__file__))
import h2raw as H  # noqa: E402
import wg  # noqa: E402

try:
    import h2.config
    import h2.connection
    import h2.events
except ImportError:
    print("skip: python3-h2 is not installed")
    sys.exit(0)

check = wg.check

# ---- an HTTP/1.1 backend whose behaviour depends on the path ----

state = {"conns": 0, "flaky": 0, "lock": threading.Lock()}


class Backend(socketserver.BaseRequestHandler):
    def handle(self):
        with state["lock"]:
            state["conns"] += 1
            conn_id = state["conns"]
        f = self.request.makefile("rb")
        while True:
            line = f.readline()
            if not line:
                return
            method, target, _ = line.decode().split(" ", 2)
            headers = []
            while True:
                h = f.readline().decode()
                if h in ("\r\n", ""):
                    break
                k, v = h.split(":", 1)
                headers.append((k.strip().lower(), v.strip()))
            hd = dict(headers)
            body = b""
            if "content-length" in hd:
                body = f.read(int(hd["content-length"]))
            elif hd.get("transfer-encoding") == "chunked":
                while True:
                    n = int(f.readline().split(b";")[0], 16)
                    if n == 0:
                        f.readline()
                        break
                    body += f.read(n)
                    f.readline()
            path = target.split("?")[0]
            if path == "/hang":
                time.sleep(3)
                return
            if path == "/slow":
                time.sleep(0.8)
            if path == "/bigcontinue":
                # an interim answer, then a final head that with it
                # overflows the proxy's buffer: the head must still be read
                self.request.sendall(b"HTTP/1.1 100 Continue\r\nX-Pad: " + b"p" * 3500 +
                                     b"\r\n\r\nHTTP/1.1 200 OK\r\nX-Big: " + b"b" * 15000 +
                                     b"\r\nContent-Length: 2\r\n\r\nok")
                continue
            if path == "/flaky":
                with state["lock"]:
                    state["flaky"] += 1
                    n = state["flaky"]
                if n % 2:
                    self.send(503, b"busy\n")
                    continue
            out = json.dumps({"method": method, "target": target, "headers": headers,
                              "body": body.decode(errors="replace"), "conn": conn_id}).encode()
            if path == "/chunked":
                self.request.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
                                     b"Content-Type: application/json\r\n\r\n")
                for i in range(0, len(out), 7):
                    piece = out[i:i + 7]
                    self.request.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
                self.request.sendall(b"0\r\n\r\n")
            else:
                self.send(200, out, [("Set-Cookie", "a=1"), ("X-Backend", "yes")])
            if path == "/closeidle":
                time.sleep(0.05)
                return  # closes the kept-alive connection without a word

    def send(self, status, body, extra=()):
        head = "HTTP/1.1 %d X\r\nContent-Length: %d\r\n" % (status, len(body))
        for k, v in extra:
            head += "%s: %s\r\n" % (k, v)
        self.request.sendall(head.encode() + b"\r\n" + body)


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


def make_certs(d):
    """A CA and a certificate for be.test it signed: (ca.crt, be.crt, be.key)."""
    def run(*args):
        subprocess.run(["openssl"] + list(args), cwd=d, check=True, capture_output=True)
    run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", "ca.key", "-out", "ca.crt", "-subj", "/CN=test-ca", "-days", "2")
    run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", "be.key", "-out", "be.csr", "-subj", "/CN=be.test")
    with open(os.path.join(d, "ext"), "w") as f:
        f.write("subjectAltName=DNS:be.test\n")
    run("x509", "-req", "-in", "be.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", "be.crt", "-days", "2", "-extfile", "ext")
    return [os.path.join(d, n) for n in ("ca.crt", "be.crt", "be.key")]


route = wg.host_route_yaml


def h2req(port, authority, path="/", method="GET", headers=(), body=b"", timeout=5,
          trailers=()):
    """One request on a new cleartext HTTP/2 connection: (status, headers, body).
    trailers: sent after the body, ending the stream."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    c = h2.connection.H2Connection(h2.config.H2Configuration(header_encoding="utf-8"))
    c.initiate_connection()
    sid = c.get_next_available_stream_id()
    c.send_headers(sid, [(":method", method), (":scheme", "http"), (":authority", authority),
                         (":path", path)] + list(headers), end_stream=not body)
    s.sendall(c.data_to_send())
    status, rh, data, done, sent = None, [], b"", False, 0
    while not done:
        while body and sent < len(body) and c.local_flow_control_window(sid) > 0:
            n = min(len(body) - sent, c.local_flow_control_window(sid), c.max_outbound_frame_size)
            last = sent + n == len(body)
            c.send_data(sid, body[sent:sent + n], end_stream=last and not trailers)
            sent += n
            if last and trailers:
                c.send_headers(sid, list(trailers), end_stream=True)
        s.sendall(c.data_to_send())
        try:
            d = s.recv(65536)
        except socket.timeout:
            break
        if not d:
            break
        for ev in c.receive_data(d):
            if isinstance(ev, h2.events.ResponseReceived):
                rh = ev.headers
                status = int(dict(rh)[":status"])
            elif isinstance(ev, h2.events.DataReceived):
                data += ev.data
                c.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
            elif isinstance(ev, (h2.events.StreamEnded, h2.events.StreamReset)):
                done = True
        s.sendall(c.data_to_send())
    s.close()
    return status, rh, data


def batches(port, authority, paths_per_batch, pause=0.0):
    """Batches of requests on one connection (so on one worker): the
    streams of a batch are concurrent, a batch starts when the one before
    it is answered. Returns the statuses, batch by batch."""
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    c = h2.connection.H2Connection(h2.config.H2Configuration(header_encoding="utf-8"))
    c.initiate_connection()
    out = []
    for paths in paths_per_batch:
        sids = []
        for path in paths:
            sid = c.get_next_available_stream_id()
            c.send_headers(sid, [(":method", "GET"), (":scheme", "http"),
                                 (":authority", authority), (":path", path)], end_stream=True)
            sids.append(sid)
        s.sendall(c.data_to_send())
        st, ended = {}, set()
        while len(ended) < len(sids):
            d = s.recv(65536)
            if not d:
                break
            for ev in c.receive_data(d):
                if isinstance(ev, h2.events.ResponseReceived):
                    st[ev.stream_id] = int(dict(ev.headers)[":status"])
                elif isinstance(ev, h2.events.DataReceived):
                    c.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                elif isinstance(ev, (h2.events.StreamEnded, h2.events.StreamReset)):
                    ended.add(ev.stream_id)
            s.sendall(c.data_to_send())
        out.append([st.get(sid) for sid in sids])
        time.sleep(pause)
    s.close()
    return out


def main():
    port, bport, dead = wg.free_port(), wg.free_port(), wg.free_port()
    srv = Server(("127.0.0.1", bport), Backend)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    # the same backend behind TLS (BackendTLSPolicy)
    tport = wg.free_port()
    ca, crt, key = make_certs(wg.tempfile.mkdtemp(prefix="wg-h2h1-certs-"))
    tctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tctx.load_cert_chain(crt, key)
    tsrv = Server(("127.0.0.1", tport), Backend)
    tsrv.socket = tctx.wrap_socket(tsrv.socket, server_side=True)
    threading.Thread(target=tsrv.serve_forever, daemon=True).start()

    be = "backendRefs: [{name: be, port: 80}]"
    cfg = wg.gateway_yaml(port) + wg.backend_yaml("be", bport)
    cfg += """---
apiVersion: v1
kind: Service
metadata: {name: pair, namespace: default}
spec: {ports: [{name: http, port: 80, targetPort: %(p)d}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: pair-1, namespace: default, labels: {kubernetes.io/service-name: pair}}
addressType: IPv4
ports: [{name: http, port: %(p)d}]
endpoints:
- {addresses: [127.0.0.1], conditions: {ready: true}}
- {addresses: [127.0.0.2], conditions: {ready: true}}
""" % {"p": bport}
    cfg += route("app", "app.test", """filters:
    - type: RequestHeaderModifier
      requestHeaderModifier: {add: [{name: x-added, value: "yes"}], remove: [x-drop]}
    - type: ResponseHeaderModifier
      responseHeaderModifier: {set: [{name: x-resp, value: set}], remove: [x-backend]}
    """ + be)
    cfg += route("rw", "rw.test", """matches: [{path: {type: PathPrefix, value: /old}}]
    filters:
    - type: URLRewrite
      urlRewrite: {hostname: inner.test, path: {type: ReplacePrefixMatch, replacePrefixMatch: /new}}
    """ + be)
    cfg += route("redir", "redir.test", """filters:
    - type: RequestRedirect
      requestRedirect: {hostname: other.test, statusCode: 301}""")
    cfg += route("cors", "cors.test", """filters:
    - type: CORS
      cors: {allowOrigins: ["https://a.example"], allowMethods: [GET, PUT],
             allowHeaders: [x-h], exposeHeaders: [x-e], maxAge: 60}
    """ + be)
    cfg += wg.backend_yaml("tlsbe", tport)
    with open(ca) as f:
        pem = "".join("    " + line for line in f)
    cfg += """---
apiVersion: v1
kind: ConfigMap
metadata: {name: ca, namespace: default}
data:
  ca.crt: |
%s---
apiVersion: gateway.networking.k8s.io/v1
kind: BackendTLSPolicy
metadata: {name: tlsbe, namespace: default}
spec:
  targetRefs: [{group: "", kind: Service, name: tlsbe}]
  validation:
    caCertificateRefs: [{group: "", kind: ConfigMap, name: ca}]
    hostname: be.test
""" % pem
    cfg += route("tls", "tls.test", "backendRefs: [{name: tlsbe, port: 80}]")
    cfg += wg.backend_yaml("tlsbad", tport) + """---
apiVersion: gateway.networking.k8s.io/v1
kind: BackendTLSPolicy
metadata: {name: tlsbad, namespace: default}
spec:
  targetRefs: [{group: "", kind: Service, name: tlsbad}]
  validation:
    caCertificateRefs: [{group: "", kind: ConfigMap, name: ca}]
    hostname: other.test
"""
    cfg += route("tlsbad", "tlsbad.test", "backendRefs: [{name: tlsbad, port: 80}]")
    cfg += route("to", "to.test", "timeouts: {request: 300ms}\n    " + be)
    cfg += route("bto", "bto.test", "timeouts: {request: 5s, backendRequest: 200ms}\n    " + be)
    cfg += route("retry", "retry.test",
                 "retry: {codes: [503], attempts: 2, backoff: 10ms}\n    " + be)
    cfg += route("pair", "pair.test", "backendRefs: [{name: pair, port: 80}]")
    cfgdir = wg.tempfile.mkdtemp(prefix="wg-h2h1-")
    with open(os.path.join(cfgdir, "gw.yaml"), "w") as f:
        f.write(cfg)
    access = os.path.join(cfgdir, "access.log")
    gw = wg.Gateway(cfgdir, extra=["--access-log", access])
    wg.wait_port(port, proc=gw.proc)
    wg.wait_for(lambda: wg.http(port, "/", host="app.test")[0] == 200)

    # filters and fields
    st, rh, body = h2req(port, "app.test", "/p?q=1",
                         headers=[("x-drop", "1"), ("cookie", "a=1"), ("cookie", "b=2"),
                                  ("x-keep", "k")])
    rhd = dict(rh)
    got = json.loads(body) if st == 200 else {}
    hd = dict(got.get("headers", []))
    check(st == 200 and got.get("target") == "/p?q=1", "GET through the direct path: %r" % st)
    check(hd.get("x-added") == "yes" and "x-drop" not in hd and hd.get("x-keep") == "k",
          "request header modifier applied: %r" % hd)
    check(hd.get("cookie") == "a=1; b=2", "cookies joined into one field: %r" % hd.get("cookie"))
    check(hd.get("host") == "app.test" and hd.get("x-forwarded-proto") == "http" and
          hd.get("x-forwarded-for") == "127.0.0.1",
          "Host and X-Forwarded-* set: %r" % hd)
    check(rhd.get("x-resp") == "set" and "x-backend" not in rhd and rhd.get("set-cookie") == "a=1",
          "response header modifier applied: %r" % rhd)
    st, _, body = h2req(port, "rw.test", "/old/x")
    got = json.loads(body) if st == 200 else {}
    check(st == 200 and got.get("target") == "/new/x" and
          dict(got.get("headers", [])).get("host") == "inner.test",
          "URL rewrite (path prefix, hostname): %r" % got.get("target"))
    st, rh, _ = h2req(port, "redir.test", "/a")
    check(st == 301 and dict(rh).get("location") == "http://other.test:%d/a" % port,
          "redirect answered on the stream: %r %r" % (st, dict(rh).get("location")))

    # CORS: the preflight answered here, the answer's headers added
    st, rh, _ = h2req(port, "cors.test", "/c", method="OPTIONS",
                      headers=[("origin", "https://a.example"),
                               ("access-control-request-method", "PUT")])
    rhd = dict(rh)
    check(st == 200 and rhd.get("access-control-allow-origin") == "https://a.example" and
          "PUT" in rhd.get("access-control-allow-methods", "") and
          rhd.get("access-control-max-age") == "60",
          "CORS preflight answered on the stream: %r %r" % (st, rhd))
    st, rh, body = h2req(port, "cors.test", "/c", headers=[("origin", "https://a.example")])
    rhd = dict(rh)
    check(st == 200 and rhd.get("access-control-allow-origin") == "https://a.example" and
          rhd.get("access-control-expose-headers") == "x-e" and b'"/c"' in body,
          "CORS headers on a proxied answer: %r" % rhd)

    # bodies both ways
    st, _, body = h2req(port, "app.test", "/up", method="POST", body=b"x" * 70000,
                        headers=[("content-length", "70000")])
    got = json.loads(body) if st == 200 else {}
    check(st == 200 and len(got.get("body", "")) == 70000, "POST with Content-Length: %r" % st)
    st, _, body = h2req(port, "app.test", "/up", method="POST", body=b"y" * 5000)
    got = json.loads(body) if st == 200 else {}
    check(st == 200 and got.get("body") == "y" * 5000 and
          dict(got.get("headers", [])).get("transfer-encoding") == "chunked",
          "POST without Content-Length goes chunked: %r" % st)
    st, _, body = h2req(port, "app.test", "/up", method="POST", body=b"t" * 3000,
                        trailers=[("x-checksum", "1")], timeout=3)
    got = json.loads(body) if st == 200 else {}
    check(st == 200 and got.get("body") == "t" * 3000,
          "request trailers end the body (dropped on the way): %r" % st)
    st, rh, body = h2req(port, "app.test", "/bigcontinue", timeout=3)
    check(st == 200 and body == b"ok" and len(dict(rh).get("x-big", "")) == 15000,
          "a final head after an interim answer, across a full buffer: %r" % st)
    st, _, body = h2req(port, "app.test", "/chunked")
    check(st == 200 and json.loads(body).get("target") == "/chunked",
          "chunked response decoded: %d bytes" % len(body))

    # pooled connections: 20 concurrent streams, three times, on one worker
    c0 = state["conns"]
    got = batches(port, "app.test", [["/"] * 20] * 3)
    used = state["conns"] - c0
    check(got == [[200] * 20] * 3, "60 streams answered, 20 at a time")
    check(used <= 20, "backend connections reused across streams: %d for 60 requests" % used)

    # a backend over verified TLS, its connections pooled per policy
    c0 = state["conns"]
    got = batches(port, "tls.test", [["/"] * 10] * 3)
    st, _, body = h2req(port, "tls.test", "/t", method="POST", body=b"s" * 40000)
    check(got == [[200] * 10] * 3 and st == 200 and
          json.loads(body).get("body") == "s" * 40000,
          "HTTP/1.1 backend over TLS: %r, POST %r" % (got, st))
    check(state["conns"] - c0 <= 12, "TLS connections reused: %d for 31 requests"
          % (state["conns"] - c0))
    # streams served by the direct path are logged by the HTTP/2 code
    # ("proto":"h2"); through the socket pair they would be conn.c's lines
    with open(access) as f:
        direct = [json.loads(line) for line in f if '"tls.test"' in line]
    n_h2 = len([e for e in direct if e.get("proto") == "h2" and e.get("status") == 200])
    check(len(direct) == 31 and n_h2 == 31,
          "TLS backend streams took the direct path: %d of %d logged as h2" % (n_h2, len(direct)))
    st = h2req(port, "tlsbad.test", "/")[0]
    check(st == 503, "a backend whose certificate does not name the policy's host: %r" % st)

    # pooled connections the backend closed are dropped, not used
    got = batches(port, "app.test", [["/closeidle"] * 20, ["/"] * 20], pause=0.2)
    check(got == [[200] * 20] * 2,
          "requests after the backend closed its pooled connections: %r" % got[1])

    # timeouts
    t = time.time()
    st = h2req(port, "to.test", "/hang")[0]
    check(st == 504 and time.time() - t < 2.5, "request timeout -> 504: %r in %.2fs"
          % (st, time.time() - t))
    t = time.time()
    st = h2req(port, "bto.test", "/hang")[0]
    check(st == 504 and time.time() - t < 2.5, "backend request timeout -> 504: %r in %.2fs"
          % (st, time.time() - t))

    # retries: bodiless requests only
    state["flaky"] = 0
    st = h2req(port, "retry.test", "/flaky")[0]
    check(st == 200 and state["flaky"] == 2, "503 retried for a GET: %r after %d tries"
          % (st, state["flaky"]))
    state["flaky"] = 0
    st = h2req(port, "retry.test", "/flaky", method="POST", body=b"z")[0]
    check(st == 503 and state["flaky"] == 1, "a request with a body is not retried: %r" % st)

    # passive health: the dead endpoint is skipped, then ejected
    sts = [h2req(port, "pair.test", "/")[0] for _ in range(8)]
    check(sts == [200] * 8, "dead endpoint skipped at connect: %r" % sts)
    check(wg.wait_for(lambda: "event=endpoint_ejected" in gw.logtext() and
                      "127.0.0.2" in gw.logtext(), timeout=5),
          "the dead endpoint is ejected")

    # graceful drain: GOAWAY with the last stream, which still completes
    s = H.connect(port)
    r = H.Reader(s)
    s.sendall(H.frame(H.HEADERS, H.END_STREAM | H.END_HEADERS, 1,
                      H.request_block("/slow", "app.test")))
    time.sleep(0.3)
    gw.proc.send_signal(signal.SIGTERM)
    goaway, status, data, end = None, None, b"", False
    deadline = time.time() + 5
    while time.time() < deadline and not end:
        f = r.next(deadline)
        if f is None or f[0] == "closed":
            break
        ftype, flags, fsid, payload = f
        if ftype == H.GOAWAY:
            goaway = struct.unpack(">II", payload[:8])
            # a stream opened after the GOAWAY is not served
            s.sendall(H.frame(H.HEADERS, H.END_STREAM | H.END_HEADERS, 3,
                              H.request_block("/", "app.test")))
        elif ftype == H.HEADERS and fsid == 1:
            status = payload[0] == 0x88
            end = bool(flags & H.END_STREAM)
        elif ftype == H.DATA and fsid == 1:
            data += payload
            end = bool(flags & H.END_STREAM)
        elif fsid == 3 and ftype in (H.HEADERS, H.DATA):
            check(False, "stream 3, opened after GOAWAY, was answered")
    check(goaway == (1, 0), "drain: GOAWAY NO_ERROR naming stream 1: %r" % (goaway,))
    check(status and end and json.loads(data).get("target") == "/slow",
          "drain: the in-flight stream finishes with its whole body")
    rc = gw.proc.wait(timeout=10)
    check(rc == 0, "drain: the gateway exits 0 (%r)" % rc)
    s.close()
    srv.shutdown()
    wg.finish(gw.logtext())
    print("0 failures")


if __name__ == "__main__":
    main()
