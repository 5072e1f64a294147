#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The request body cap over HTTP/2 (cleartext, prior knowledge), on a
listener whose limits file entry says `max-body-bytes 1K`: a body of
exactly 1 KiB is forwarded whole, a larger one gets 413 both towards an
HTTP/1.1 backend (the direct HTTP/2-to-HTTP/1.1 path) and towards an h2c
backend (kubernetes.io/h2c), both checked in the HTTP/2 code, and the connection goes
on serving. Needs python3-h2 (the system Python)."""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hostile as H  # noqa: E402

try:
    import h2.config
    import h2.connection
    import h2.events
except ImportError:
    print("skip: python3-h2 is not installed")
    sys.exit(0)
import socket  # noqa: E402


def h2req(port, authority, path, body=b""):
    """One request on a new h2c connection: (status, body)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    c = h2.connection.H2Connection(h2.config.H2Configuration(header_encoding="utf-8"))
    c.initiate_connection()
    sid = c.get_next_available_stream_id()
    c.send_headers(sid, [(":method", "POST" if body else "GET"), (":scheme", "http"),
                         (":authority", authority), (":path", path)], end_stream=not body)
    s.sendall(c.data_to_send())
    sent, status, data, done = 0, None, b"", False
    while not done:
        while sent < len(body) and c.local_flow_control_window(sid) > 0:
            n = min(len(body) - sent, c.local_flow_control_window(sid), c.max_outbound_frame_size)
            try:
                c.send_data(sid, body[sent:sent + n], end_stream=sent + n == len(body))
            except h2.exceptions.StreamClosedError:
                sent = len(body)
                break
            sent += n
        s.sendall(c.data_to_send())
        d = s.recv(65536)
        if not d:
            break
        for ev in c.receive_data(d):
            if isinstance(ev, h2.events.ResponseReceived):
                status = int(dict(ev.headers)[":status"])
            elif isinstance(ev, h2.events.DataReceived):
                data += ev.data
                c.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
            elif isinstance(ev, (h2.events.StreamEnded, h2.events.StreamReset)):
                done = True
        s.sendall(c.data_to_send())
    s.close()
    return status, data


HTTP = H.wg.free_port()
REC = H.Recorder()
H2BE = H.wg.free_port()
be = H.wg.spawn(["/usr/bin/python3", os.path.join(os.path.dirname(__file__), "..", "h2",
                                                   "h2echo.py"), str(H2BE), "h2be"])
H.wg.wait_port(H2BE, proc=be)
yaml = H.config([("http", "HTTP", HTTP)], [
    "  - matches: [{headers: [{name: x-be, value: h2c}]}]",
    "    backendRefs: [{name: h2be, port: 80}]",
    "  - backendRefs: [{name: rec, port: 80}]"], {"rec": REC.port}, extra=H.wg.backend_yaml("h2be", H2BE, app_protocol="kubernetes.io/h2c"))
# the h2c route is chosen by a header (to_h2c below)
gw = H.gateway(yaml, HTTP, limits="port %d max-body-bytes 1K" % HTTP)
H.wg.wait_for(lambda: H.raw(HTTP, b"GET /ready HTTP/1.1\r\nHost: a\r\n\r\n")[0]
              .startswith(b"HTTP/1.1 200"), timeout=10)

_orig_send_headers = h2.connection.H2Connection.send_headers


def to_h2c(on):
    """Adds x-be: h2c to every request while on."""
    def send_headers(self, sid, headers, **kw):
        return _orig_send_headers(self, sid, list(headers) + ([("x-be", "h2c")] if on else []),
                                  **kw)
    h2.connection.H2Connection.send_headers = send_headers


for backend in ("HTTP/1.1", "h2c"):
    to_h2c(backend == "h2c")
    path = "/ok-" + backend
    st, data = h2req(HTTP, "a", path, b"k" * 1024)
    if backend == "h2c":
        try:
            got = json.loads(data).get("body_len")
        except ValueError:
            got = None
    else:
        seen = [r for r in REC.for_id(path) if r["path"] == path]
        got = len(seen[0]["body"]) if len(seen) == 1 else None
    H.check(st == 200 and got == 1024, "%s backend: a body of exactly 1 KiB -> 200, forwarded "
            "whole (%r, %r)" % (backend, st, got))
    st, data = h2req(HTTP, "a", "/big", b"b" * 4096)
    H.check(st == 413, "%s backend: a body of 4 KiB -> 413 (%r %r)" % (backend, st, data[:40]))
    st, _ = h2req(HTTP, "a", "/after")
    H.check(st == 200, "%s backend: served after (%r)" % (backend, st))
H.check(gw.proc.poll() is None, "gateway alive")
gw.stop()
H.finish()
