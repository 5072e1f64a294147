#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Every credential kind a kubeconfig can carry, against the fake API server:
token, tokenFile (rotated while running), client certificates (EC files,
RSA inline data), exec plugins (token cached, run again after a 401; client
certificate from the plugin), and the User-Agent sent."""
import base64
import os
import sys
import time

sys.dont_write_bytecode = True  # noqa: E402 (keep the source tree clean)
from kubetest import Debug, check, server

api = server(tokens=("tok-1",))
d = api.dir
api.store.put("namespaces", {"metadata": {"name": "team-a"}})


def synced_with(user, what, expect_auth):
    kc = api.kubeconfig(os.path.join(d, "kc-%s.json" % what), user=user)
    n0 = len(api.log)
    dbg = Debug(kc)
    st = dbg.synced()
    check("team-a" in "".join(st["objects"]), "%s: synced the namespaces" % what)
    auths = {r["auth"] for r in api.log[n0:] if r["verb"] != "tls-failed"}
    check(auths == {expect_auth}, "%s: every request authenticated as %s (%s)" %
          (what, expect_auth, auths))
    return dbg


# token, and the User-Agent
dbg = synced_with({"token": "tok-1"}, "token", "token:tok-1")
uas = {r["ua"] for r in api.log}
check(uas == {"waygate/kube-debug"}, "User-Agent names waygate (%s)" % uas)
dbg.quit()

# a wrong token: 401, never synced, the error is reported
kc = api.kubeconfig(os.path.join(d, "kc-bad.json"), user={"token": "nope"})
dbg = Debug(kc)
st = dbg.poll(lambda s: s["health"]["errors"] > 0, what="errors after 401")
check(not st["synced"] and "401" in st["health"]["last_error"],
      "wrong token: not synced, last_error says 401 (%s)" % st["health"]["last_error"])
dbg.quit()

# tokenFile, rotated: the old token is refused, the file is re-read
tf = os.path.join(d, "token")
with open(tf, "w") as f:
    f.write("tok-file-a\n")
api.tokens.add("tok-file-a")
dbg = synced_with({"tokenFile": "token"}, "tokenFile", "token:tok-file-a")  # relative path
with open(tf + ".new", "w") as f:
    f.write("tok-file-b")
os.rename(tf + ".new", tf)
api.tokens.discard("tok-file-a")
api.tokens.add("tok-file-b")
n0 = len(api.log)
time.sleep(1.1)  # the file is looked at no more than once a second
api.drop_watches()
dbg.poll(lambda s: s["health"]["open_watches"] == 15 and
         any(r["auth"] == "token:tok-file-b" and r["verb"] == "watch" for r in api.log[n0:]),
         what="watches resumed with the rotated token")
check(not any(r["verb"] == "list" for r in api.log[n0:]),
      "tokenFile rotation: resumed without relisting")
dbg.quit()

# client certificate (EC key), files
dbg = synced_with({"client-certificate": api.certs["client.pem"],
                   "client-key": api.certs["client.key"]}, "client-cert-ec", "cert:waygate-ec")
dbg.quit()


# client certificate (RSA key), inline data
def b64(path):
    with open(path, "rb") as f:
        return base64.b64encode(f.read()).decode()


dbg = synced_with({"client-certificate-data": b64(api.certs["client-rsa.pem"]),
                   "client-key-data": b64(api.certs["client-rsa.key"])},
                  "client-cert-rsa-data", "cert:waygate-rsa")
dbg.quit()

# exec plugin: a token, cached (one run for every request), run again after a 401
plugin = os.path.join(d, "plugin.sh")
with open(plugin, "w") as f:
    f.write("""#!/bin/sh
# test credential plugin: counts its runs, prints the token in $TOKEN_FILE
n=$(cat "$COUNT_FILE" 2>/dev/null || echo 0); echo $((n + 1)) > "$COUNT_FILE"
[ -n "$KUBERNETES_EXEC_INFO" ] || exit 3
printf '{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential",'
printf '"status":{"token":"%s","expirationTimestamp":"2099-01-01T00:00:00Z"}}' "$(cat "$TOKEN_FILE")"
""")
os.chmod(plugin, 0o755)
count = os.path.join(d, "count")
etok = os.path.join(d, "exec-token")
with open(etok, "w") as f:
    f.write("exec-1")
api.tokens.add("exec-1")
user = {"exec": {"apiVersion": "client.authentication.k8s.io/v1", "command": "./plugin.sh",
                 "args": ["--flag"],
                 "env": [{"name": "COUNT_FILE", "value": count},
                         {"name": "TOKEN_FILE", "value": etok}]}}
dbg = synced_with(user, "exec", "token:exec-1")
with open(count) as f:
    check(f.read().strip() == "1", "exec: the plugin ran once for every request (cached)")
with open(etok, "w") as f:
    f.write("exec-2")
api.tokens.discard("exec-1")
api.tokens.add("exec-2")
n0 = len(api.log)
api.drop_watches()
dbg.poll(lambda s: s["health"]["open_watches"] == 15 and
         any(r["auth"] == "token:exec-2" for r in api.log[n0:]),
         what="watches resumed with the refreshed exec token")
with open(count) as f:
    check(f.read().strip() == "2", "exec: run again after the 401, once")
check(any(r["code"] == 401 for r in api.log[n0:]), "exec: the old token got a 401 first")
dbg.quit()

# exec plugin whose token expires: used until expirationTimestamp, then run again
plugin3 = os.path.join(d, "plugin-exp.sh")
with open(plugin3, "w") as f:
    f.write("""#!/bin/sh
n=$(cat "$COUNT_FILE" 2>/dev/null || echo 0); echo $((n + 1)) > "$COUNT_FILE"
exp=$(date -u -d @$(( $(date +%s) + 8 )) +%Y-%m-%dT%H:%M:%SZ)
printf '{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential",'
printf '"status":{"token":"exec-exp","expirationTimestamp":"%s"}}' "$exp"
""")
os.chmod(plugin3, 0o755)
count3 = os.path.join(d, "count3")
api.tokens.add("exec-exp")
dbg = synced_with({"exec": {"apiVersion": "client.authentication.k8s.io/v1", "command": plugin3,
                            "env": [{"name": "COUNT_FILE", "value": count3}]}},
                  "exec-expiring", "token:exec-exp")
with open(count3) as f:
    check(f.read().strip() == "1", "exec with expiry: one run while the token is valid")
time.sleep(4)  # the token is considered expired 5 s before its expirationTimestamp
api.drop_watches()
dbg.poll(lambda s: s["health"]["open_watches"] == 15, what="watches back after expiry")
with open(count3) as f:
    n = int(f.read().strip())
check(n >= 2, "exec with expiry: run again once the token expired (%d runs)" % n)
check(not any(r["code"] == 401 for r in api.log if r["auth"] == "token:exec-exp"),
      "exec with expiry: refreshed before the server refused it")
dbg.quit()

# exec plugin handing out a client certificate
plugin2 = os.path.join(d, "plugin-cert.py")
with open(api.certs["client-rsa.pem"]) as f:
    cert = f.read()
with open(api.certs["client-rsa.key"]) as f:
    key = f.read()
with open(plugin2, "w") as f:
    f.write("#!/usr/bin/env python3\nimport json\nprint(json.dumps(%r))\n" % {
        "apiVersion": "client.authentication.k8s.io/v1beta1", "kind": "ExecCredential",
        "status": {"clientCertificateData": cert, "clientKeyData": key}})
os.chmod(plugin2, 0o755)
dbg = synced_with({"exec": {"apiVersion": "client.authentication.k8s.io/v1beta1",
                            "command": plugin2}}, "exec-cert", "cert:waygate-rsa")
dbg.quit()

# a failing plugin: reported, not synced
dbg = Debug(api.kubeconfig(os.path.join(d, "kc-exec-fail.json"), user={
    "exec": {"apiVersion": "client.authentication.k8s.io/v1", "command": "false"}}))
st = dbg.poll(lambda s: s["health"]["errors"] > 0, what="exec failure reported")
check("exec plugin false" in st["health"]["last_error"] and not st["synced"],
      "exec failure named in last_error (%s)" % st["health"]["last_error"])
dbg.quit()
print("PASS")
