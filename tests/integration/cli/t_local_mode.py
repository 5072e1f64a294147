#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Local mode end to end: SIGHUP reloads a changed configuration without
dropping a kept-alive connection; a broken file is reported (naming the
file) and the previous configuration keeps serving; a restart with the
broken file still serves the last-known-good revision from the store; a
broken file with an empty store exits 2 naming the file; `waygate check`
reports and exits 0/2; usage errors exit 2 naming the flag."""
import http.client
import os
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import wg  # noqa: E402

check = wg.check

ROUTE = """---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r, namespace: default}
spec:
  parentRefs: [{name: gw}]
  hostnames: [app.test]
  rules:
  - matches: [{path: {type: PathPrefix, value: %(prefix)s}}]
    backendRefs: [{name: %(svc)s, port: 80}]
"""

work = tempfile.mkdtemp(prefix="wg-local-")
cfgdir = os.path.join(work, "config")
os.mkdir(cfgdir)
cfgfile = os.path.join(cfgdir, "app.yaml")
port, one, two = wg.free_port(), wg.free_port(), wg.free_port()
params = {"port": port, "one": one, "two": two, "prefix": "/", "svc": "one"}


def write(**kw):
    p = dict(params, **kw)
    with open(cfgfile + ".tmp", "w") as f:
        f.write(wg.gateway_yaml(p["port"], cls="waygate") + ROUTE % p +
                wg.backend_yaml("one", p["one"]) + wg.backend_yaml("two", p["two"]))
    os.rename(cfgfile + ".tmp", cfgfile)


wg.echo("one", one)
wg.echo("two", two)
write()
state = os.path.join(work, "state")
gw = wg.Gateway(cfgdir, state=state)
wg.wait_port(port, proc=gw.proc)


def pod(conn=None):
    if conn is None:
        st, _, body = wg.http(port, "/x", host="app.test")
    else:
        conn.request("GET", "/x", headers={"Host": "app.test"})
        r = conn.getresponse()
        st, body = r.status, r.read()
    return wg.echo_pod(body) if st == 200 else st


check(pod() == "one", "served by backend one")
keep = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
check(pod(keep) == "one", "kept-alive connection served")

write(svc="two")
gw.proc.send_signal(signal.SIGHUP)
wg.wait_for(lambda: pod() == "two", timeout=5)
check(True, "SIGHUP: changed route served")
check(pod(keep) == "two", "kept-alive connection survives the reload and sees the new route")
served = [l for l in gw.logtext().splitlines() if "event=change_served" in l]
check(served and "pass=whole" in served[-1],
      "local mode reconciles the whole set (keeps no state for it): %r" % served[-1:])

with open(os.path.join(cfgdir, "broken.yaml"), "w") as f:
    f.write("apiVersion: v1\nkind: Service\nmetadata: {name: [unclosed\n")
gw.proc.send_signal(signal.SIGHUP)
wg.wait_for(lambda: "config_rejected" in gw.logtext(), timeout=5)
check("broken.yaml" in gw.logtext(), "broken file named in the log")
check(pod() == "two", "previous configuration keeps serving after a broken reload")
check(gw.stop() == 0, "SIGTERM exits 0")

# Restart with the broken file: the store's last-known-good revision serves.
gw2 = wg.Gateway(cfgdir, state=state)
wg.wait_port(port, proc=gw2.proc)
check(pod() == "two", "restart with a broken file serves the last-known-good revision")
check("event=restored" in gw2.logtext(), "restored from the store logged")
gw2.stop()

# Fresh state and a broken file: exit 2, naming the file.
r = subprocess.run([wg.BIN, "run", "--config", cfgdir, "--state-dir",
                    os.path.join(work, "fresh"), "--ui-listen", "off"],
                   capture_output=True, text=True, timeout=20)
check(r.returncode == 2, "broken config with an empty store exits 2 (got %d)" % r.returncode)
check("broken.yaml" in r.stderr, "the message names the file: %r" % r.stderr[-300:])

r = subprocess.run([wg.BIN, "check", "--config", cfgdir], capture_output=True, text=True, timeout=20)
check(r.returncode == 2 and "broken.yaml" in r.stderr, "check: broken config exits 2 naming the file")
os.remove(os.path.join(cfgdir, "broken.yaml"))
r = subprocess.run([wg.BIN, "check", "--config", cfgdir], capture_output=True, text=True, timeout=20)
check(r.returncode == 0 and "default/r" in r.stdout and "app.test" in r.stdout,
      "check: valid config exits 0 and lists the route: %r" % r.stdout[-400:])

r = subprocess.run([wg.BIN, "run"], capture_output=True, text=True, timeout=10)
check(r.returncode == 2 and "--kubeconfig" in r.stderr, "run without a source exits 2")
r = subprocess.run([wg.BIN, "run", "--config", cfgdir, "--workers", "lots"],
                   capture_output=True, text=True, timeout=10)
check(r.returncode == 2 and "--workers" in r.stderr, "a bad flag value exits 2 naming the flag")
r = subprocess.run([wg.BIN, "run", "--config", cfgdir, "--frobnicate"],
                   capture_output=True, text=True, timeout=10)
check(r.returncode == 2 and "frobnicate" in r.stderr, "an unknown flag exits 2 naming it")
r = subprocess.run([wg.BIN, "bogus"], capture_output=True, text=True, timeout=10)
check(r.returncode == 2, "an unknown command exits 2")

wg.finish(gw.logtext())
