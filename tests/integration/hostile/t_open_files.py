#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The box's connection cap follows the open file limit. Started with at
most 600 open files (soft = hard, so it cannot raise them), waygate lowers
its cap from 16,384 to (600 - 256) / 2 = 172 and says so in the log; the
173rd connection is refused with 503 rather than left in the listen queue
by a failing accept(), and the box keeps serving once one closes."""
import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hostile as H  # noqa: E402

REC = H.Recorder()
HTTP = H.wg.free_port()
yaml = H.config([("http", "HTTP", HTTP)], ["  - backendRefs: [{name: rec, port: 80}]"],
                {"rec": REC.port})
cfg = H.tempfile.mkdtemp(prefix="wg-nofile-")
with open(os.path.join(cfg, "gw.yaml"), "w") as f:
    f.write(yaml)

state = H.tempfile.mkdtemp(prefix="wg-state-")
log = os.path.join(state, "waygate.log")
# prlimit sets the limit on itself, then execs waygate (same PID)
proc = H.wg.spawn(["prlimit", "--nofile=600:600", H.wg.BIN, "run", "--config", cfg,
                   "--state-dir", state, "--ui-listen", "off"], log=log)


def logtext():
    with open(log, errors="replace") as f:
        return f.read()


H.wg.wait_port(HTTP, proc=proc)
H.wg.wait_for(lambda: "event=limits_adjusted" in logtext(), timeout=5)
H.check("limit=max-connections from=16384 to=172" in logtext(),
        "cap lowered to 172 for 600 open files, logged: %r" %
        [ln for ln in logtext().splitlines() if "limits_adjusted" in ln])

held = []
for i in range(172):
    s = socket.socket()
    s.bind(("127.0.0.%d" % (2 + i // 100), 0))  # under the per-address cap
    s.connect(("127.0.0.1", HTTP))
    held.append(s)
time.sleep(0.3)
st, _, closed, _ = H.request(HTTP, b"GET /over HTTP/1.1\r\nHost: a\r\n\r\n", timeout=3)
H.check(st == 503, "the 173rd connection -> 503 (%r)" % st)
held.pop().close()
time.sleep(0.3)
st, _, _, _ = H.request(HTTP, b"GET /room HTTP/1.1\r\nHost: a\r\n\r\n", timeout=3)
H.check(st == 200, "one closed: served again (%r)" % st)
for s in held:
    s.close()
H.check(proc.poll() is None, "gateway alive")
proc.terminate()
H.check(proc.wait(timeout=15) == 0, "drains and exits 0")
H.finish()
