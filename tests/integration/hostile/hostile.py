# SPDX-License-Identifier: MIT
"""Helpers for the hostile-input cases: a gateway in local mode in front of
a recording backend (a small HTTP/1.1 server in this process that keeps the
exact bytes of every request it parsed, so a test can say what reached the
backend) and misbehaving backends (refuse, reset mid-response, stall,
black-hole). Everything binds 127.0.0.1 and stops when the case ends."""
import os
import socket
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import wg  # noqa: E402,F401
from wg import check, failures  # noqa: E402


def finish():
    """Ends the case: stops what it started, then exits at once (daemon
    server threads must not race the interpreter's shutdown)."""
    code = 1 if failures else 0
    print("%d failed" % len(failures) if failures else "all passed", flush=True)
    wg._cleanup()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


class _Server:
    """A threaded TCP server calling handler(sock) per connection."""

    def __init__(self, handler, backlog=128):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(backlog)
        self.port = self.sock.getsockname()[1]
        self.handler = handler
        self.conns = 0
        threading.Thread(target=self._loop, daemon=True).start()

    def _loop(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.conns += 1
            threading.Thread(target=self._run, args=(c,), daemon=True).start()

    def _run(self, c):
        try:
            self.handler(c)
        except OSError:
            pass
        finally:
            try:
                c.close()
            except OSError:
                pass


def _read_until(c, buf, token, limit=1 << 20):
    while token not in buf:
        d = c.recv(65536)
        if not d:
            return buf, False
        buf += d
        if len(buf) > limit:
            return buf, False
    return buf, True


def _read_n(c, buf, n):
    while len(buf) < n:
        d = c.recv(65536)
        if not d:
            return buf, False
        buf += d
    return buf, True


class Recorder(_Server):
    """A strict-enough HTTP/1.1 backend. Every request parsed is appended
    to .requests as dict(method, path, headers (list of (name, value)),
    body, raw, bad); a head it cannot frame is recorded as path None; bad
    is False, "eof" (the connection ended inside the body) or True (bytes
    that break the framing). Answers
    200 with the path as the body, keep-alive."""

    def __init__(self):
        self.requests = []
        self.lock = threading.Lock()
        super().__init__(self._handle)

    def _record(self, r):
        with self.lock:
            self.requests.append(r)

    def for_id(self, cid):
        with self.lock:
            return [r for r in self.requests if r["path"] is None or cid in (r["path"] or "")]

    def _handle(self, c):
        buf = b""
        while True:
            buf, ok = _read_until(c, buf, b"\r\n\r\n")
            if not ok:
                if buf.strip():
                    self._record(dict(method=None, path=None, headers=[], body=b"", raw=buf))
                return
            i = buf.index(b"\r\n\r\n")
            head, buf = buf[:i], buf[i + 4:]
            lines = head.split(b"\r\n")
            try:
                method, path, _ = lines[0].decode("latin-1").split(" ")
            except ValueError:
                self._record(dict(method=None, path=None, headers=[], body=b"", raw=head))
                return
            hdrs = []
            for ln in lines[1:]:
                k, _, v = ln.partition(b":")
                hdrs.append((k.decode("latin-1").lower(), v.strip().decode("latin-1")))
            names = [k for k, _ in hdrs]
            body = b""
            bad = False
            if "transfer-encoding" in names:
                if "content-length" in names or names.count("transfer-encoding") != 1 or \
                        dict(hdrs)["transfer-encoding"].lower() != "chunked":
                    bad = True
                while not bad:
                    buf, ok = _read_until(c, buf, b"\r\n")
                    if not ok:
                        bad = "eof"
                        break
                    j = buf.index(b"\r\n")
                    size_s = buf[:j].split(b";")[0]
                    buf = buf[j + 2:]
                    try:
                        size = int(size_s, 16)
                    except ValueError:
                        bad = True
                        break
                    if size == 0:
                        # trailers until the empty line
                        while True:
                            buf, ok = _read_until(c, buf, b"\r\n")
                            if not ok:
                                bad = "eof"
                                break
                            j = buf.index(b"\r\n")
                            line, buf = buf[:j], buf[j + 2:]
                            if not line:
                                break
                        break
                    buf, ok = _read_n(c, buf, size + 2)
                    if not ok:
                        bad = "eof"
                        break
                    if buf[size:size + 2] != b"\r\n":
                        bad = True
                        break
                    body += buf[:size]
                    buf = buf[size + 2:]
            elif "content-length" in names:
                if names.count("content-length") != 1:
                    bad = True
                else:
                    try:
                        n = int(dict(hdrs)["content-length"])
                        buf, ok = _read_n(c, buf, n)
                        body, buf = buf[:n], buf[n:]
                        bad = False if ok else "eof"
                    except ValueError:
                        bad = True
            self._record(dict(method=method, path=path, headers=hdrs, body=body, raw=head,
                              bad=bad))
            if bad:
                return
            out = path.encode("latin-1")
            if path.startswith("/big"):
                out = b"b" * (1 << 20)  # for slow readers
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nContent-Type: text/plain\r\n\r\n"
                      % len(out) + out)


def refusing_port():
    """A port on which nothing listens (connect is refused)."""
    return wg.free_port()


class Reset(_Server):
    """Reads the head, sends half a response (status line, headers with a
    Content-Length of 1000, 10 bytes of body), then resets the connection."""

    def __init__(self):
        super().__init__(self._h)

    def _h(self, c):
        _read_until(c, b"", b"\r\n\r\n")
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n0123456789")
        time.sleep(0.05)
        c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")


class ResetBeforeHead(_Server):
    """Reads the head, then resets the connection without a byte."""

    def __init__(self):
        super().__init__(self._h)

    def _h(self, c):
        _read_until(c, b"", b"\r\n\r\n")
        c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")


class Stall(_Server):
    """Accepts and reads, never answers (until the case ends)."""

    def __init__(self):
        super().__init__(self._h)

    def _h(self, c):
        c.settimeout(120)
        while c.recv(65536):
            pass


class BlackHole:
    """A listening socket whose accept queue is full and never drained:
    the kernel drops further SYNs, so connects hang until they time out."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(0)
        self.port = self.sock.getsockname()[1]
        self.fillers = []
        for _ in range(4):  # fill the (backlog + 1) queue
            s = socket.socket()
            s.setblocking(False)
            try:
                s.connect(("127.0.0.1", self.port))
            except BlockingIOError:
                pass
            self.fillers.append(s)
        time.sleep(0.2)


def config(listeners, routes, services, extra=""):
    """Local-mode YAML. listeners: list of (name, protocol, port[, extra
    YAML]); routes: list of YAML rule texts (each '- ...' rule of one
    HTTPRoute); services: dict name -> backend port (one endpoint on
    127.0.0.1)."""
    y = [wg.gateway_yaml(0, cls="waygate", listeners="\n" + "\n".join(
        "  - {name: %s, protocol: %s, port: %d%s}" % (ln[0], ln[1], ln[2], ln[3] if len(ln) > 3 else "")
        for ln in listeners)).rstrip("\n")]
    y.append("""---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r, namespace: default}
spec:
  parentRefs: [{name: gw}]
  rules:""")
    y.extend(routes)
    for name, port in services.items():
        y.append(wg.backend_yaml(name, port).rstrip("\n"))
    return "\n".join(y) + "\n" + extra


def gateway(yaml_text, http_port, extra=(), ui="off", limits=None):
    """waygate in local mode on yaml_text; limits: the text of a limits
    file (`--limits`), e.g. "max-body-bytes 1K\nport 8080 head-timeout 2s"."""
    d = tempfile.mkdtemp(prefix="wg-hostile-")
    with open(os.path.join(d, "gw.yaml"), "w") as f:
        f.write(yaml_text)
    if limits is not None:
        lf = tempfile.mkstemp(prefix="wg-limits-", suffix=".conf")[1]
        with open(lf, "w") as f:
            f.write(limits + "\n")
        extra = tuple(extra) + ("--limits", lf)
    gw = wg.Gateway(d, ui=ui, extra=extra)
    wg.wait_port(http_port, timeout=20, proc=gw.proc)
    return gw


def raw(port, data, timeout=2.0, shut=True):
    """Sends data on a new connection, half-closes, reads until close.
    Returns (bytes, closed_by_peer)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    out = b""
    closed = False
    try:
        s.sendall(data)
        if shut:
            s.shutdown(socket.SHUT_WR)
        while True:
            d = s.recv(65536)
            if not d:
                closed = True
                break
            out += d
    except socket.timeout:
        pass
    except ConnectionResetError:
        closed = True
    s.close()
    return out, closed


def request(port, data, timeout=10.0):
    """Sends one request on a new connection and reads one response (framed
    by Content-Length, or up to the close). Returns (status or None, whole
    bytes, closed_by_peer, seconds until the response was complete)."""
    t0 = time.time()
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    out = b""
    closed = False
    try:
        s.sendall(data)
        while True:
            i = out.find(b"\r\n\r\n")
            if i >= 0:
                n = 0
                for ln in out[:i].lower().split(b"\r\n"):
                    if ln.startswith(b"content-length:"):
                        n = int(ln.split(b":")[1])
                if len(out) >= i + 4 + n:
                    break
            d = s.recv(65536)
            if not d:
                closed = True
                break
            out += d
    except socket.timeout:
        pass
    except ConnectionResetError:
        closed = True
    dt = time.time() - t0
    s.close()
    st = statuses(out)
    return (st[0] if st else None), out, closed, dt


def statuses(out):
    """Statuses of the responses in out, in order (parses framing by
    Content-Length, which is what waygate and the Recorder send)."""
    res = []
    while out.startswith(b"HTTP/1."):
        try:
            st = int(out[9:12])
        except ValueError:
            break
        i = out.find(b"\r\n\r\n")
        if i < 0:
            res.append(st)
            break
        head = out[:i].lower()
        n = 0
        for ln in head.split(b"\r\n"):
            if ln.startswith(b"content-length:"):
                n = int(ln.split(b":")[1])
        res.append(st)
        out = out[i + 4 + n:]
    return res
