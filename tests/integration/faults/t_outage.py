#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A long cluster outage: the API server unreachable (every connection
reset) for OUTAGE_SECONDS (default 30 in `make test`; 600 for the full
10-minute case: OUTAGE_SECONDS=600 tests/integration/faults/t_outage.py).
Counts every connection waygate opens towards the cluster during the
outage, and requires at most MAX_ATTEMPTS (default 20) of them: the bound
the edge box must hold over 10 minutes, so a shorter outage must stay
under it as well. Traffic keeps flowing on the last-known-good
configuration throughout (share served printed, target 100.00%), and when
the cluster is back a route change is served again (within the probe's
period then: at most 90 s after a long outage)."""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cluster as C  # noqa: E402

SECS = float(os.environ.get("OUTAGE_SECONDS", "30"))
MAX = int(os.environ.get("MAX_ATTEMPTS", "20"))
c = C.Cluster()
C.wg.wait_for(lambda: c.pod() == "one", timeout=30)
C.check(True, "the cluster's route is served")
time.sleep(1)

tr = C.Traffic(c, "one", interval=0.1)
before = c.proxy.attempts_in("reset")
c.proxy.mode = "reset"
c.proxy.cut()
t0 = time.time()
marks = []
while time.time() - t0 < SECS:
    time.sleep(min(10.0, SECS - (time.time() - t0)))
    marks.append((time.time() - t0, c.proxy.attempts_in("reset") - before))
    print("  outage %5.0f s: %d connection attempts" % marks[-1], flush=True)
attempts = c.proxy.attempts_in("reset") - before
tr.stop()
print("outage of %.0f s: %d connection attempts towards the cluster (bound %d); traffic %s" %
      (SECS, attempts, MAX, tr.line()))
C.check(tr.fail == 0 and tr.ok > 0, "traffic kept flowing during the outage: %.2f%%" % tr.share())
C.check(attempts <= MAX, "at most %d reconnect attempts in a %.0f s outage (%d)" %
        (MAX, SECS, attempts))
C.check(c.proc.poll() is None, "gateway alive")

c.proxy.mode = "pass"
c.set_route("two")
# The box notices the cluster at its next probe: after a long outage the
# probe's period has grown to its longest (3 x the 30 s back-off, with
# jitter), the price of at most 20 attempts in 10 minutes.
dt = c.wait_pod("two", timeout=45 if SECS <= 60 else 100)
C.check(dt is not None, "cluster back: a route change served%s" %
        (" in %.1f s" % dt if dt is not None else ""))
C.finish()
