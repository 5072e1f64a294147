# SPDX-License-Identifier: MIT
"""Raw HTTP/2 frames for integration cases: just enough framing and HPACK
(literal fields, no Huffman) to write well-formed and hostile clients
without a library."""
import socket
import ssl
import struct
import time

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = range(10)
END_STREAM, ACK, END_HEADERS = 0x1, 0x1, 0x4


def frame(ftype, flags, sid, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + struct.pack(">I", sid) + payload


def lit(name, value, index=False):
    """A literal header field (without indexing, or with incremental indexing)."""
    n, v = name.encode(), value.encode() if isinstance(value, str) else value
    return bytes([0x40 if index else 0x00]) + _int7(len(n)) + n + _int7(len(v)) + v


def _int7(n):
    if n < 127:
        return bytes([n])
    out = [127]
    n -= 127
    while n >= 128:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def request_block(path="/", authority="app.test", method="GET", extra=()):
    b = lit(":method", method) + lit(":scheme", "http") + lit(":path", path) + lit(":authority", authority)
    for k, v in extra:
        b += lit(k, v)
    return b


def connect(port, tls=False, host="127.0.0.1", timeout=5):
    s = socket.create_connection((host, port), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if tls:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.set_alpn_protocols(["h2"])
        s = ctx.wrap_socket(s, server_hostname="app.test")
    s.sendall(PREFACE + frame(SETTINGS, 0, 0))
    return s


class Reader:
    def __init__(self, s):
        self.s, self.buf = s, b""

    def next(self, deadline):
        while len(self.buf) < 9 or len(self.buf) < 9 + int.from_bytes(self.buf[:3], "big"):
            self.s.settimeout(max(0.01, deadline - time.time()))
            try:
                d = self.s.recv(65536)
            except (socket.timeout, ssl.SSLError, BlockingIOError):
                return None
            except OSError:
                return ("closed", 0, 0, b"")
            if not d:
                return ("closed", 0, 0, b"")
            self.buf += d
        n = int.from_bytes(self.buf[:3], "big")
        f = (self.buf[3], self.buf[4], int.from_bytes(self.buf[5:9], "big") & 0x7FFFFFFF, self.buf[9:9 + n])
        self.buf = self.buf[9 + n:]
        return f


def wait_goaway(s, timeout=5.0):
    """Reads until GOAWAY or close; returns the GOAWAY error code, "closed" or None."""
    r = Reader(s)
    deadline = time.time() + timeout
    while time.time() < deadline:
        f = r.next(deadline)
        if f is None:
            return None
        if f[0] == "closed":
            return "closed"
        if f[0] == GOAWAY:
            return int.from_bytes(f[3][4:8], "big")
    return None


def get(s, sid, path="/", authority="app.test", timeout=5.0):
    """One GET on stream sid of an open connection; returns the status (int) or None."""
    s.sendall(frame(HEADERS, END_STREAM | END_HEADERS, sid, request_block(path, authority)))
    r = Reader(s)
    deadline = time.time() + timeout
    status = None
    while time.time() < deadline:
        f = r.next(deadline)
        if f is None or f[0] == "closed":
            return None
        ftype, flags, fsid, payload = f
        if ftype == SETTINGS and not flags & ACK:
            s.sendall(frame(SETTINGS, ACK, 0))
        if fsid != sid:
            continue
        if ftype == HEADERS and status is None:
            # the server answers with ":status" as an indexed static entry
            # (0x88 = 200) or a literal: enough for these tests
            b = payload[0]
            status = {0x88: 200, 0x89: 204, 0x8a: 206, 0x8b: 304, 0x8c: 400, 0x8d: 404, 0x8e: 500}.get(b, -1)
        if ftype in (HEADERS, DATA) and flags & END_STREAM:
            if ftype == DATA and payload:
                s.sendall(frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", len(payload))))
            return status
        if ftype == DATA and payload:
            s.sendall(frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", len(payload))))
        if ftype == RST_STREAM:
            return None
    return None
