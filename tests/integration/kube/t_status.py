#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Status write-back: another controller's parents/ancestors entries are
preserved, ours replaced; nothing is written when the server already has
it; a 409 (stale cache) re-reads and retries; deleted objects and stale
generations are skipped; writes are rate-limited; whole statuses for
Gateways."""
import copy
import os
import sys
import time

sys.dont_write_bytecode = True  # noqa: E402 (keep the source tree clean)
from kubetest import Debug, check, objects, server

OURS = "waygate.dev/gateway-controller"
OTHER = "other.example/ctl"
api = server(tokens=("tok-1",))
d = api.dir
S = api.store
S.put("namespaces", {"metadata": {"name": "a"}})


def entry(ctl, gw, reason="Accepted"):
    return {"parentRef": {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": gw},
            "controllerName": ctl,
            "conditions": [{"type": "Accepted", "status": "True", "reason": reason,
                            "message": "", "observedGeneration": 1,
                            "lastTransitionTime": "2026-01-01T00:00:00Z"}]}


route = S.put("httproutes", {"metadata": {"name": "shared", "namespace": "a"},
                             "spec": {"parentRefs": [{"name": "gw"}, {"name": "theirs"}]}})
route["status"] = {"parents": [entry(OTHER, "theirs")]}
S.put("httproutes", route, bump_generation=False)
for i in range(30):
    S.put("httproutes", {"metadata": {"name": "bulk%02d" % i, "namespace": "a"}, "spec": {}})
S.put("gateways", {"metadata": {"name": "gw", "namespace": "a"}, "spec": {}})
S.put("backendtlspolicies", {"metadata": {"name": "p", "namespace": "a"}, "spec": {},
                             "status": {"ancestors": [entry(OTHER, "theirs")]}})

dbg = Debug(api.kubeconfig(os.path.join(d, "kc.json")), "--status-rate", "10")
dbg.synced()


def submit(items):
    dbg.cmd({"op": "status", "items": items})
    dbg.cmd({"op": "wait_status"})
    return dbg.wait(lambda s: s["event"] == "status_done", 20, "status queue drained")


def writes():
    return [r for r in api.requests("patch-status") if r["code"] == 200]


ours = {"kind": "HTTPRoute", "namespace": "a", "name": "shared", "generation": 1,
        "status": {"parents": [entry(OURS, "gw")]}}
submit([ours])
st = S.objs[("httproutes", "a", "shared")]["status"]
check([p["controllerName"] for p in st["parents"]] == [OTHER, OURS],
      "route: the other controller's entry kept, ours added")
check(st["parents"][1] == ours["status"]["parents"][0], "route: our entry as submitted")

# the same status again: nothing written (after the watch caught up)
dbg.poll(lambda s: objects(s, "HTTPRoute")["a/shared"] ==
         S.objs[("httproutes", "a", "shared")]["metadata"]["resourceVersion"], what="cache")
n0 = len(api.requests("patch-status"))
submit([ours])
check(len(api.requests("patch-status")) == n0, "unchanged status: no write")

# ours changes: replaced, theirs untouched
ours2 = copy.deepcopy(ours)
ours2["status"]["parents"][0]["conditions"][0]["reason"] = "Changed"
changes = dbg.events.count("change")
api.silent = True  # the answer to the write comes first, then the watch event
submit([ours2])
api.silent = False
dbg.poll(lambda s: objects(s, "HTTPRoute")["a/shared"] ==
         S.objs[("httproutes", "a", "shared")]["metadata"]["resourceVersion"], what="cache")
time.sleep(1.5)  # the watch event of our own write arrives
check(dbg.events.count("change") == changes,
      "our own status write does not notify (no reconcile of what it just computed)")
st = S.objs[("httproutes", "a", "shared")]["status"]
check(len(st["parents"]) == 2 and st["parents"][0] == entry(OTHER, "theirs") and
      st["parents"][1]["conditions"][0]["reason"] == "Changed", "route: ours replaced in place")

# a stale cache: the other controller writes while our watch is silent -> 409, re-read, merged
api.silent = True
cur = copy.deepcopy(S.objs[("httproutes", "a", "shared")])
cur["status"]["parents"][0] = entry(OTHER, "theirs", reason="TheirNews")
S.put("httproutes", cur, bump_generation=False)
ours3 = copy.deepcopy(ours)
ours3["status"]["parents"][0]["conditions"][0]["reason"] = "Third"
n409 = len([r for r in api.requests("patch-status") if r["code"] == 409])
submit([ours3])
api.silent = False
st = S.objs[("httproutes", "a", "shared")]["status"]
check(len([r for r in api.requests("patch-status") if r["code"] == 409]) == n409 + 1,
      "stale cache: the write got a 409")
check(st["parents"][0]["conditions"][0]["reason"] == "TheirNews" and
      st["parents"][1]["conditions"][0]["reason"] == "Third",
      "after the 409: their newer entry preserved, ours written")

# BackendTLSPolicy: ancestors merged the same way
submit([{"kind": "BackendTLSPolicy", "namespace": "a", "name": "p", "generation": 1,
         "status": {"ancestors": [entry(OURS, "gw")]}}])
anc = S.objs[("backendtlspolicies", "a", "p")]["status"]["ancestors"]
check([x["controllerName"] for x in anc] == [OTHER, OURS], "BackendTLSPolicy: ancestors merged")

# Gateway: the whole status is ours
gst = {"conditions": [{"type": "Programmed", "status": "True", "reason": "Programmed",
                       "message": "", "observedGeneration": 1,
                       "lastTransitionTime": "2026-01-01T00:00:00Z"}],
       "addresses": [{"type": "IPAddress", "value": "127.0.1.1"}]}
submit([{"kind": "Gateway", "namespace": "a", "name": "gw", "generation": 1, "status": gst}])
check(S.objs[("gateways", "a", "gw")]["status"] == gst, "Gateway: the whole status written")
gst2 = {"conditions": gst["conditions"]}
dbg.poll(lambda s: objects(s, "Gateway")["a/gw"] ==
         S.objs[("gateways", "a", "gw")]["metadata"]["resourceVersion"], what="gateway cache")
submit([{"kind": "Gateway", "namespace": "a", "name": "gw", "generation": 1, "status": gst2}])
check(S.objs[("gateways", "a", "gw")]["status"] == gst2,
      "Gateway: a field left out of the new status is removed")

# deleted object and stale generation: skipped
n0 = len(api.requests("patch-status"))
submit([{"kind": "HTTPRoute", "namespace": "a", "name": "nosuch", "generation": 1,
         "status": {"parents": [entry(OURS, "gw")]}},
        {"kind": "HTTPRoute", "namespace": "a", "name": "bulk00", "generation": 7,
         "status": {"parents": [entry(OURS, "gw")]}}])
check(len(api.requests("patch-status")) == n0, "deleted object / stale generation: no write")

# rate limit: 30 writes at 10/s take about 2 s (burst of 10 first)
t0 = time.monotonic()
submit([{"kind": "HTTPRoute", "namespace": "a", "name": "bulk%02d" % i, "generation": 1,
         "status": {"parents": [entry(OURS, "gw")]}} for i in range(30)])
took = time.monotonic() - t0
check(len(writes()) >= 30 + 4, "30 more statuses written")
check(took >= 1.5, "rate limit: 30 writes took %.1f s at 10/s" % took)
st = dbg.state()
check(st["health"]["status_writes"] >= 34, "health counts status writes")
dbg.quit()
print("PASS")
