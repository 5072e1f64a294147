#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Cluster faults while traffic flows: `waygate run --kubeconfig` against
the fake API server behind a FaultProxy. One after the other, for
FAULT_SECONDS each (default 4):
  unreachable   every connection reset, open ones cut
  black-hole    connections accepted and never answered
  slow          every chunk delayed 2 s
  410 Gone      history compacted and watches dropped: relists
  429           throttled with Retry-After, watches dropped
  500           server errors, watches dropped
  expired token the token no longer accepted (401), watches dropped
During each, a client keeps asking the gateway: the share served by the
last-known-good configuration is printed (target 100.00%). After each, the
cluster heals and a route change must be served again (within 40 s: the
backoff is capped at 30 s; 120 s after a black hole: its connections are
only given up at the 30 s request timeout, and while the server cannot be
reached one shared probe stands for every watch). The recovery times are printed.
The UI's overview shows the problem while the cluster is unreachable and
while the token is refused, and shows it connected again afterwards.
The token never appears in the log."""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cluster as C  # noqa: E402

SECS = float(os.environ.get("FAULT_SECONDS", "4"))
c = C.Cluster(start=False)
C.check(c.set_password("faults-ui-password"), "UI password set")
c.start(ui_port=C.wg.free_port())
C.wg.wait_for(lambda: c.pod() == "one", timeout=30)
C.check(True, "the cluster's route is served")
api, proxy = c.api, c.proxy
want = ["one"]
ui = {}


def heal_and_change(name, bound):
    proxy.mode = "pass"
    api.faults.clear()
    api.tokens = {C.TOKEN}
    nxt = "two" if want[0] == "one" else "one"
    c.set_route(nxt)
    dt = c.wait_pod(nxt, timeout=bound)
    C.check(dt is not None, "after %s: a route change served again%s" %
            (name, " in %.1f s" % dt if dt is not None else ""))
    if dt is not None:
        want[0] = nxt


def fault(name, start, bound=40):
    tr = C.Traffic(c, want[0])
    start()
    time.sleep(SECS)
    cl = c.overview().get("cluster", {})
    ui[name] = (cl.get("connected"), cl.get("last_error") or "")
    tr.stop()
    print("%-14s UI: connected=%s last_error=%r" % (name, ui[name][0], ui[name][1][:100]))
    print("%-14s %s" % (name, tr.line()), flush=True)
    C.check(tr.fail == 0 and tr.ok > 0, "%s: traffic on the last-known-good configuration: %.2f%%"
            % (name, tr.share()))
    C.check(c.proc.poll() is None, "%s: gateway alive" % name)
    heal_and_change(name, bound)


def unreachable():
    proxy.mode = "reset"
    proxy.cut()


def hole():
    proxy.mode = "hole"
    proxy.cut()


def slow():
    proxy.mode = "slow"
    proxy.cut()


def gone():
    api.store.compact()
    api.fail(3, 410, verb="watch")
    api.drop_watches(abrupt=True)


def throttled():
    api.fail(20, 429, retry_after=2)
    api.drop_watches()


def errors():
    api.fail(20, 500)
    api.drop_watches(abrupt=True)


def expired():
    api.tokens = {"rotated-elsewhere"}
    api.drop_watches()


# Bounds for the recovery: a black-holed connection is only given up at its
# request timeout (30 s), then backs off (up to 30 s); the others fail fast.
for name, fn, bound in [("unreachable", unreachable, 40), ("black-hole", hole, 120),
                        ("slow", slow, 40), ("410 Gone", gone, 40), ("429", throttled, 40),
                        ("500", errors, 40), ("expired token", expired, 40)]:
    fault(name, fn, bound)

# The UI shows the problem while the cluster cannot be reached or refuses
# the token (the others are over within a retry or two).
for name in ("unreachable", "expired token"):
    conn, err = ui.get(name, (None, ""))
    C.check(conn is False and err != "", "the UI showed the %s problem (connected=%s, %r)" %
            (name, conn, err[:80]))

def connected_again():
    return c.overview().get("cluster", {}).get("connected") is True


try:
    C.wg.wait_for(connected_again, timeout=15, interval=0.5)
    ok = True
except AssertionError:
    ok = False
C.check(ok, "the UI shows the cluster connected again")
log = c.logtext()
C.check(C.TOKEN not in log, "the token never appears in the log")
C.finish()
