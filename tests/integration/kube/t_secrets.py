#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Secrets and ConfigMaps: only those a Gateway, ListenerSet or
BackendTLSPolicy references are held; a reference that appears later makes
the client fetch the object (a GET, not a relist); a reference that goes
away drops it; a referenced Secret created or deleted later follows."""
import os
import sys
import time

sys.dont_write_bytecode = True  # noqa: E402 (keep the source tree clean)
from kubetest import Debug, check, objects, server

api = server(tokens=("tok-1",))
d = api.dir
S = api.store
S.put("namespaces", {"metadata": {"name": "a"}})
for n in ("cert", "other", "unused"):
    S.put("secrets", {"metadata": {"name": n, "namespace": "a"}, "type": "kubernetes.io/tls",
                      "data": {"tls.crt": "eA==", "tls.key": "eA=="}})
S.put("secrets", {"metadata": {"name": "sh.helm.release.v1.app.v1", "namespace": "a"},
                  "type": "helm.sh/release.v1", "data": {"release": "eA=="}})
S.put("configmaps", {"metadata": {"name": "ca", "namespace": "a"}, "data": {"ca.crt": "x"}})
S.put("configmaps", {"metadata": {"name": "cm-unused", "namespace": "a"}, "data": {}})


def gateway(*certs):
    return {"metadata": {"name": "gw", "namespace": "a"},
            "spec": {"gatewayClassName": "c", "listeners": [
                {"name": "l%d" % i, "port": 443 + i, "protocol": "HTTPS",
                 "tls": {"certificateRefs": [{"name": c}]}} for i, c in enumerate(certs)]}}


S.put("gateways", gateway("cert"))
S.put("backendtlspolicies", {"metadata": {"name": "p", "namespace": "a"}, "spec": {
    "targetRefs": [{"group": "", "kind": "Service", "name": "s"}],
    "validation": {"hostname": "s.example", "caCertificateRefs": [
        {"group": "", "kind": "ConfigMap", "name": "ca"}]}}})
dbg = Debug(api.kubeconfig(os.path.join(d, "kc.json")))
st = dbg.synced()
check(set(objects(st, "Secret")) == {"a/cert"}, "only the referenced Secret is held (%s)" %
      objects(st, "Secret"))
check(set(objects(st, "ConfigMap")) == {"a/ca"}, "only the referenced ConfigMap is held")
check(not api.requests("get", "secrets") and not api.requests("get", "configmaps"),
      "listed after what references them: no GET needed at start")
sl = api.requests("list", "secrets") + api.requests("watch", "secrets")
check(sl and all("helm.sh/release.v1" in r["query"].get("fieldSelector", "") for r in sl),
      "Secrets listed and watched without Helm releases (field selector)")
check(all(int(r["query"]["limit"]) <= 32 for r in api.requests("list", "secrets")),
      "Secrets listed in small pages")

# a new reference to a Secret the client already saw: fetched with a GET
lists0 = len(api.requests("list", "secrets"))
S.put("gateways", gateway("cert", "other"))
st = dbg.poll(lambda s: set(objects(s, "Secret")) == {"a/cert", "a/other"},
              what="newly referenced Secret fetched")
gets = [r for r in api.requests("get", "secrets") if r["path"].endswith("/secrets/other")]
check(gets and len(api.requests("list", "secrets")) == lists0,
      "new reference: one GET of the Secret, no relist")

# the reference goes away: the Secret leaves the set
S.put("gateways", gateway("other"))
dbg.poll(lambda s: set(objects(s, "Secret")) == {"a/other"}, what="unreferenced Secret dropped")
check(True, "reference removed: the Secret is dropped")

# a reference to a Secret that does not exist yet; then it is created
S.put("gateways", gateway("other", "later"))
S.put("secrets", {"metadata": {"name": "later", "namespace": "a"}, "type": "kubernetes.io/tls",
                  "data": {"tls.crt": "eA==", "tls.key": "eA=="}})
dbg.poll(lambda s: "a/later" in objects(s, "Secret"), what="Secret created after the reference")
check(True, "Secret created after its reference: held")

# an update of a referenced Secret is followed; one of an unreferenced one is not held
S.put("secrets", {"metadata": {"name": "later", "namespace": "a"}, "type": "kubernetes.io/tls",
                  "data": {"tls.crt": "eQ==", "tls.key": "eQ=="}})
S.put("secrets", {"metadata": {"name": "unused", "namespace": "a"}, "type": "Opaque",
                  "data": {}})
rv = S.objs[("secrets", "a", "later")]["metadata"]["resourceVersion"]
st = dbg.poll(lambda s: objects(s, "Secret").get("a/later") == rv, what="Secret update")
check("a/unused" not in objects(st, "Secret"), "updated unreferenced Secret: still not held")

# a Secret of an excluded type is never seen, even when referenced
S.put("gateways", gateway("other", "later", "sh.helm.release.v1.app.v1"))
time.sleep(1)
st = dbg.state()
check("a/sh.helm.release.v1.app.v1" not in objects(st, "Secret"),
      "a Helm release Secret is not held even when referenced")

# deletion
S.delete("secrets", "a", "later")
dbg.poll(lambda s: "a/later" not in objects(s, "Secret"), what="Secret deletion")
check(True, "referenced Secret deleted: gone from the set")
dbg.quit()
print("PASS")
