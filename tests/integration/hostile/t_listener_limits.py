#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Request body limit and limits per listener. One Gateway, two HTTP
listeners, one limits file (`--limits`):

    max-body-bytes 100K            # the box: every listener
    port A max-body-bytes 1K       # listener A only
    port A max-head-bytes 2K
    port A max-request-line 1K
    port A max-header-fields 10
    port A route-timeout 1s
    port A head-timeout 1s

The same requests get different answers on A and B: a Content-Length over
the cap gets 413 and a close before a byte reaches the backend; a chunked
body that grows past it is cut (413, the backend's connection ends inside
the body, so it is never reused); heads, request lines and field counts
over A's limits get 431/414/431 on A and 200 on B; a stalled backend
gives 504 after 1 s on A and nothing yet on B; an unfinished head 408 after
1 s on A, while B still waits. A bad limits file exits 2 naming the line."""
import os
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hostile as H  # noqa: E402

REC = H.Recorder()
STALL = H.Stall()
A = H.wg.free_port()
B = H.wg.free_port()
yaml = H.config([("a", "HTTP", A), ("b", "HTTP", B)],
                ["  - matches: [{path: {type: PathPrefix, value: /stall}}]",
                 "    backendRefs: [{name: stall, port: 80}]",
                 "  - backendRefs: [{name: rec, port: 80}]"],
                {"rec": REC.port, "stall": STALL.port})
LIMITS = """max-body-bytes 100K
port %(a)d max-body-bytes 1K
port %(a)d max-head-bytes 2K
port %(a)d max-request-line 1K
port %(a)d max-header-fields 10   # a comment
port %(a)d route-timeout 1s
port %(a)d head-timeout 1s""" % {"a": A}
gw = H.gateway(yaml, A, limits=LIMITS, extra=("--drain-timeout", "300"))
H.wg.wait_port(B, proc=gw.proc)
for p in (A, B):
    H.wg.wait_for(lambda: H.raw(p, b"GET /ready HTTP/1.1\r\nHost: a\r\n\r\n")[0]
                  .startswith(b"HTTP/1.1 200"), timeout=10)


def status(port, data, timeout=3.0):
    """Sends data, reads the first response (framed by Content-Length);
    returns its status (None if none) and whether the connection was closed
    right after it."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    out = b""
    try:
        s.sendall(data)
    except OSError:
        pass  # refused while still sending: the answer may be there anyway
    closed = False
    try:
        while True:
            i = out.find(b"\r\n\r\n")
            if i >= 0:
                n = 0
                for ln in out[:i].lower().split(b"\r\n"):
                    if ln.startswith(b"content-length:"):
                        n = int(ln.split(b":")[1])
                if len(out) >= i + 4 + n:
                    if not out.startswith(b"HTTP/1.1 2"):  # refusals must close
                        s.settimeout(1.0)
                        closed = s.recv(1) == b""
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
    s.close()
    st = H.statuses(out)
    return (st[0] if st else None), closed


def post_cl(path, n):
    return b"POST %s HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n" % (path, n) + b"x" * n


def at_backend(path):
    return [r for r in REC.for_id(path) if r["path"] == path]


# --- Content-Length against the cap -----------------------------------------
for port, name, n, want in ((A, "A", 1024, 200), (A, "A", 1025, 413), (B, "B", 1025, 200),
                            (B, "B", 100 * 1024, 200), (B, "B", 100 * 1024 + 1, 413)):
    path = b"/cl-%s-%d" % (name.encode(), n)
    st, closed = status(port, post_cl(path, n))
    seen = at_backend(path.decode())
    if want == 413:
        H.check(st == 413 and closed and not seen,
                "%s: Content-Length %d -> 413, closed, nothing at the backend (got %r, closed=%s, "
                "backend %d)" % (name, n, st, closed, len(seen)))
    else:
        H.check(st == 200 and len(seen) == 1 and len(seen[0]["body"]) == n,
                "%s: Content-Length %d -> 200, body forwarded whole (got %r)" % (name, n, st))
# the head alone is refused: the client need not send the body
st, closed = status(A, b"POST /huge HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999\r\n\r\n")
H.check(st == 413 and closed and not at_backend("/huge"),
        "A: a huge Content-Length is refused from the head alone (got %r)" % st)


# --- chunked bodies growing past the cap ------------------------------------
def chunked(path, sizes):
    return (b"POST %s HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n" % path +
            b"".join(b"%x\r\n" % n + b"c" * n + b"\r\n" for n in sizes) + b"0\r\n\r\n")


st, _ = status(A, chunked(b"/ch-ok", [500, 524]))
seen = at_backend("/ch-ok")
H.check(st == 200 and len(seen) == 1 and len(seen[0]["body"]) == 1024,
        "A: chunked body of exactly 1 KiB -> 200 (got %r)" % st)
st, closed = status(A, chunked(b"/ch-big", [512, 512, 512]))
deadline = time.time() + 3
while not at_backend("/ch-big") and time.time() < deadline:
    time.sleep(0.05)  # the backend records the request when its connection ends
seen = at_backend("/ch-big")
H.check(st == 413 and closed, "A: chunked body growing past 1 KiB -> 413, closed (got %r, %s)"
        % (st, closed))
# "eof": the backend saw its connection end inside the body, so the
# proxy dropped it rather than pool it
H.check(len(seen) == 1 and seen[0]["bad"] == "eof" and len(seen[0]["body"]) <= 1024,
        "A: the backend got at most 1 KiB and its connection ended inside the body (%r)" %
        [(r["bad"], len(r["body"])) for r in seen])
st, _ = status(A, b"GET /after-ch HTTP/1.1\r\nHost: a\r\n\r\n")
H.check(st == 200, "A: the next request is served (%r)" % st)
st, _ = status(A, b"POST /ch-one HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"100000\r\n" + b"z" * 100)
deadline = time.time() + 3
while not at_backend("/ch-one") and time.time() < deadline:
    time.sleep(0.05)
seen = at_backend("/ch-one")
H.check(st == 413 and len(seen) == 1 and seen[0]["body"] == b"",
        "A: one chunk announcing 1 MiB -> 413 before any byte of it moves (got %r, backend %r)" %
        (st, [(r["bad"], len(r["body"])) for r in seen]))
st, _ = status(B, chunked(b"/ch-b", [512, 512, 512]))
H.check(st == 200 and len(at_backend("/ch-b")[0]["body"]) == 1536,
        "B: the same chunked body -> 200 (got %r)" % st)

# --- head limits -------------------------------------------------------------
cases = [
    ("head of 3 KiB", b"GET /h HTTP/1.1\r\nHost: a\r\nX: " + b"a" * 3072 + b"\r\n\r\n", 431),
    ("request line of 1.5 KiB", b"GET /" + b"l" * 1536 + b" HTTP/1.1\r\nHost: a\r\n\r\n", 414),
    ("20 fields", b"GET /f HTTP/1.1\r\nHost: a\r\n" +
     b"".join(b"X-%d: 1\r\n" % i for i in range(19)) + b"\r\n", 431),
]
for name, data, want in cases:
    sa, ca = status(A, data)
    sb, _ = status(B, data)
    H.check(sa == want and ca and sb == 200, "%s: A -> %d, closed; B -> 200 (got %r, %r)" %
            (name, want, sa, sb))

# --- timeouts ----------------------------------------------------------------
sa, _, _, da = H.request(A, b"GET /stall HTTP/1.1\r\nHost: a\r\n\r\n", timeout=5)
H.check(sa == 504 and 0.8 <= da <= 3.0, "A: stalled backend -> %r after %.1f s (1 s)" % (sa, da))
sb, _, _, db = H.request(B, b"GET /stall HTTP/1.1\r\nHost: a\r\n\r\n", timeout=2.0)
H.check(sb is None and db >= 1.9, "B: stalled backend, no answer yet at 2 s "
        "(route timeout 15 s; got %r)" % sb)


def unfinished_head(port, wait):
    s = socket.create_connection(("127.0.0.1", port), timeout=wait)
    s.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n")
    t0 = time.time()
    try:
        out = s.recv(4096)
    except socket.timeout:
        out = None
    s.close()
    return out, time.time() - t0


out, dt = unfinished_head(A, 5)
H.check(out is not None and H.statuses(out)[:1] == [408] and 0.8 <= dt <= 3.0,
        "A: unfinished head -> 408 after %.1f s (1 s)" % dt)
out, dt = unfinished_head(B, 2.0)
H.check(out is None, "B: unfinished head still waited for at 2 s (head timeout 10 s)")
H.check(gw.proc.poll() is None, "gateway alive")
gw.stop()

# --- a bad limits file -----------------------------------------------------------
bad = tempfile.mkstemp(suffix=".conf")[1]
with open(bad, "w") as f:
    f.write("max-body-bytes 1M\nport 8080 head-timeout 5\n")
p = subprocess.run([H.wg.BIN, "run", "--config", "/nonexistent", "--limits", bad,
                    "--state-dir", tempfile.mkdtemp(), "--ui-listen", "off"],
                   capture_output=True, text=True, timeout=20)
H.check(p.returncode == 2 and "%s:2" % bad in p.stderr and "head-timeout" in p.stderr,
        "a duration without its unit: exit 2 naming file:line and the limit (%d, %r)" %
        (p.returncode, p.stderr.strip()[:200]))
H.finish()
