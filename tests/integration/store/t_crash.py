#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Power-cut test of the store with the real binary: 200 configuration
changes (local mode, SIGHUP), with kill -9 at random moments; after every
kill the box restarts on the same state directory and must (1) open the
store without recovery (the integrity check passes), (2) serve at once the
newest revision it had committed before the kill, before reading any file.
CRASH_CHANGES overrides the number of changes."""
import os
import random
import re
import signal
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import wg  # noqa: E402

CHANGES = int(os.environ.get("CRASH_CHANGES", "200"))
random.seed(int(os.environ.get("CRASH_SEED", "7")))
failures = []


def check(cond, what):
    if not cond:
        print("FAIL " + what, flush=True)
        failures.append(what)


work = tempfile.mkdtemp(prefix="wg-crash-")
cfgdir = os.path.join(work, "config")
os.mkdir(cfgdir)
state = os.path.join(work, "state")
os.makedirs(state, mode=0o700)
port, backend = wg.free_port(), wg.free_port()
wg.echo("b", backend)

ROUTE = """---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r, namespace: default}
spec:
  parentRefs: [{name: gw}]
  rules:
  - filters:
    - type: RequestHeaderModifier
      requestHeaderModifier: {set: [{name: x-version, value: "%d"}]}
    backendRefs: [{name: b, port: 80}]
"""


def write(version):
    p = os.path.join(cfgdir, "c.yaml")
    with open(p + ".tmp", "w") as f:
        f.write(wg.gateway_yaml(port) + ROUTE % version + wg.backend_yaml("b", backend))
    os.rename(p + ".tmp", p)


def version_served():
    import json
    st, _, body = wg.http(port, "/", timeout=2)
    return int(json.loads(body)["headers"]["X-Version"][0]) if st == 200 else None


log_n = [0]


def start():
    log_n[0] += 1
    log = os.path.join(work, "run-%03d.log" % log_n[0])
    p = wg.spawn([wg.BIN, "run", "--config", cfgdir, "--state-dir", state, "--ui-listen", "off"],
                 log=log)
    return p, log


write(0)
proc, log = start()
wg.wait_port(port, proc=proc, timeout=15)
kills = 0
restore_ms = []
for v in range(1, CHANGES + 1):
    write(v)
    proc.send_signal(signal.SIGHUP)
    time.sleep(random.uniform(0, 0.03))
    if random.random() < 0.12 or v == CHANGES:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        kills += 1
        text = open(log, errors="replace").read()
        # a run killed before its first commit (a slow start, as under
        # ASan) still has the revision it restored as its last one
        commits = [int(x) for x in re.findall(r"event=(?:store_commit rev|restored revision)=(\d+)",
                                             text)]
        last = max(commits) if commits else 0
        t0 = time.time()
        proc, log = start()
        wg.wait_for(lambda: "event=restored" in open(log, errors="replace").read()
                    or proc.poll() is not None, timeout=15, interval=0.005)
        restore_ms.append((time.time() - t0) * 1000)
        text = open(log, errors="replace").read()
        check("recovered=no" in text, "kill %d: the store opened without recovery" % kills)
        m = re.search(r"event=restored revision=(\d+)", text)
        got = int(m.group(1)) if m else -1
        # A kill between the commit and its log line leaves one more.
        check(got in (last, last + 1),
              "kill %d: restored revision %d, last committed %d" % (kills, got, last))
        wg.wait_port(port, proc=proc, timeout=15)
# After the last restart the file's newest version is served.
wg.wait_for(lambda: version_served() == CHANGES, timeout=10)
proc.send_signal(signal.SIGTERM)
proc.wait(timeout=15)
restore_ms.sort()
print("changes %d, kills %d, restart to restored: median %.0f ms, max %.0f ms" %
      (CHANGES, kills, restore_ms[len(restore_ms) // 2], restore_ms[-1]))
if failures:
    sys.exit(1)
print("ok   every restart passed the integrity check and served the last committed revision")
