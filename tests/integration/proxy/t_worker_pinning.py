#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Worker placement: with exactly one worker per CPU of the process's
affinity mask, each worker thread is pinned to its own CPU of that mask
(the control thread keeps the whole mask) and the start line says
pinned=true; with more workers than CPUs nothing is pinned. Traffic is
served either way."""
import os
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import wg  # noqa: E402
from wg import check  # noqa: E402

ECHO_PORT = wg.free_port()
wg.echo("echo", ECHO_PORT)

ROUTE = wg.route_yaml("echo")

mask = sorted(os.sched_getaffinity(0))
if len(mask) < 2:
    print("skipped: the process may run on one CPU only")
    sys.exit(0)
cpus = mask[:2]


def thread_cpus(pid):
    """{tid: set of CPUs} for every thread of pid."""
    out = {}
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            out[int(tid)] = os.sched_getaffinity(int(tid))
        except OSError:
            pass
    return out


def run(workers):
    port = wg.free_port()
    cfg = tempfile.mkdtemp(prefix="wg-pin-")
    with open(os.path.join(cfg, "gw.yaml"), "w") as f:
        f.write(wg.gateway_yaml(port) + wg.backend_yaml("echo", ECHO_PORT) + ROUTE)
    state = tempfile.mkdtemp(prefix="wg-state-")
    log = os.path.join(state, "waygate.log")
    # taskset gives the gateway exactly two CPUs
    p = wg.spawn(["taskset", "-c", ",".join(map(str, cpus)), wg.BIN, "run", "--config", cfg,
                  "--state-dir", state, "--ui-listen", "off", "--workers", str(workers)], log=log)
    wg.wait_for(lambda: wg.http(port, "/")[0] == 200)
    placement = thread_cpus(p.pid)
    p.terminate()
    p.wait(timeout=15)
    with open(log) as f:
        return placement, f.read()


placement, text = run(2)
single = sorted(next(iter(c)) for c in placement.values() if len(c) == 1)
check(single == cpus, "2 workers on 2 CPUs: one worker pinned to each CPU (got %r)" % single)
check(placement[min(placement)] == set(cpus), "the control thread keeps the whole mask")
check("event=proxy_started workers=2 pinned=true" in text, "start line says pinned=true")

placement3, text3 = run(3)
check(all(c == set(cpus) for c in placement3.values()),
      "3 workers on 2 CPUs: no thread pinned (got %r)" % placement3)
check("event=proxy_started workers=3 pinned=false" in text3, "start line says pinned=false")

wg.finish(text, text3)
print("all passed")
