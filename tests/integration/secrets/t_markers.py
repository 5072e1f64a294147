#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Secrets never leak. Unique marker strings are placed in every secret the
box handles: the kubeconfig's bearer token, the TLS private key of an HTTPS
listener (its PEM body, and the Secret's base64 of it), an extra data key in
that Secret, the UI admin password (set with `waygate passwd`), and a wrong
password tried at the login. Then the box is exercised in cluster mode
(HTTPS traffic, the token rejected once and restored, UI login, every page
and API endpoint including the Secret's object view, `waygate check`), and
every log line (at debug level), the access log, every UI page and API
response, and check's output are searched: each marker must appear zero
times. Finally every file in the state dir is 0600 or stricter and every
folder 0700."""
import base64
import json
import os
import re
import secrets
import ssl
import stat
import subprocess
import sys
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "faults"))
import cluster as C  # noqa: E402

wg = C.wg
tag = secrets.token_hex(6)
TOKEN = "wgmarkertoken" + tag
PASSWORD = "wgmarkerpassword" + tag
WRONG = "wgmarkerwrong" + tag
DATA = "wgmarkerdata" + tag

c = C.Cluster(tokens=(TOKEN,), start=False)
api = c.api
work = api.dir
subprocess.run(["openssl", "req", "-x509", "-nodes", "-newkey", "ec", "-pkeyopt",
                "ec_paramgen_curve:prime256v1", "-keyout", "tls.key", "-out", "tls.crt",
                "-days", "2", "-subj", "/CN=app.test", "-addext", "subjectAltName=DNS:app.test"],
               cwd=work, check=True, capture_output=True)
key_pem = open(os.path.join(work, "tls.key"), "rb").read()
crt_pem = open(os.path.join(work, "tls.crt"), "rb").read()
key_body = b"".join(key_pem.split(b"\n")[1:-2]).decode()
key_b64 = base64.b64encode(key_pem).decode()
MARKERS = {
    "token": TOKEN,
    "password": PASSWORD,
    "wrong password": WRONG,
    "secret data": DATA,
    "secret data (base64)": base64.b64encode(DATA.encode()).decode()[:16],
    "private key (PEM body)": key_body[8:48],
    "private key (Secret base64)": key_b64[40:80],
}
HTTPS = wg.free_port()
st = api.store
st.put("secrets", {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
                   "metadata": {"name": "tls", "namespace": "default"},
                   "data": {"tls.crt": base64.b64encode(crt_pem).decode(), "tls.key": key_b64,
                            "marker": base64.b64encode(DATA.encode()).decode()}})
st.put("gateways", {"apiVersion": C.GW, "kind": "Gateway",
                    "metadata": {"name": "gw", "namespace": "default"},
                    "spec": {"gatewayClassName": "wg", "listeners": [
                        {"name": "http", "protocol": "HTTP", "port": c.port},
                        {"name": "https", "protocol": "HTTPS", "port": HTTPS,
                         "tls": {"certificateRefs": [{"name": "tls"}]}}]}})
c.kubeconfig = api.kubeconfig(os.path.join(work, "kubeconfig"), user={"token": TOKEN},
                              cluster_extra={"server": c.proxy.url})
os.chmod(c.kubeconfig, 0o600)

# the UI password, set before the first start
r = subprocess.run([wg.BIN, "passwd", "--state-dir", c.state], input=(PASSWORD + "\n").encode(),
                   capture_output=True, timeout=30)
outputs = {"passwd": r.stdout + r.stderr}
C.check(r.returncode == 0, "waygate passwd sets the UI password (exit %d)" % r.returncode)

UI = wg.free_port()
access = os.path.join(work, "access.log")
c.proc = wg.spawn([wg.BIN, "run", "--kubeconfig", c.kubeconfig, "--state-dir", c.state,
                   "--ui-listen", "127.0.0.1:%d" % UI, "--log-level", "debug",
                   "--access-log", access], log=c.log)
wg.wait_for(lambda: c.pod() == "one", timeout=30)
C.check(True, "cluster route served")
wg.wait_for(lambda: wg.http(HTTPS, "/", host="app.test", tls_name="app.test")[0] == 200,
            timeout=15)
C.check(True, "HTTPS listener serves with the Secret's key")
for i in range(5):
    wg.http(HTTPS, "/x%d?token=%d" % (i, i), host="app.test", tls_name="app.test")
    wg.http(c.port, "/y%d" % i, host="app.test")

# the token rejected for a while (401s logged), then accepted again
api.tokens = {"someone-else"}
api.drop_watches()
time.sleep(3)
api.tokens = {TOKEN}
c.set_route("two")
C.check(c.wait_pod("two", timeout=40) is not None, "token accepted again, route change served")

# the UI
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
base = "https://127.0.0.1:%d" % UI
cookies = {}
pages = {}


def call(method, path, body=None, csrf=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base + path, data=data, method=method)
    req.add_header("Origin", base)
    req.add_header("Content-Type", "application/json")
    if cookies:
        req.add_header("Cookie", "; ".join("%s=%s" % kv for kv in cookies.items()))
    if csrf:
        req.add_header("X-CSRF-Token", csrf)
    try:
        r = urllib.request.urlopen(req, context=ctx, timeout=30)
        code, hdrs, text = r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        code, hdrs, text = e.code, e.headers, e.read()
    for ck in hdrs.get_all("Set-Cookie") or []:
        k, v = ck.split(";", 1)[0].split("=", 1)
        cookies[k] = v
    pages["%s %s" % (method, path)] = str(hdrs).encode() + text
    return code, text


wg.wait_port(UI, proc=c.proc)
code, _ = call("POST", "/api/login", {"user": "admin", "password": WRONG})
C.check(code in (401, 403), "a wrong password is refused (%d)" % code)
code, text = call("POST", "/api/login", {"user": "admin", "password": PASSWORD})
C.check(code == 200, "UI login with the password set by waygate passwd (%d)" % code)
csrf = json.loads(text or b"{}").get("csrf")
for p in ["/", "/login", "/overview", "/gateways", "/routes", "/backends", "/traffic",
          "/revisions", "/settings", "/events", "/metrics", "/app.js", "/api/session",
          "/api/overview", "/api/gateways", "/api/routes", "/api/backends", "/api/traffic",
          "/api/revisions", "/api/revision", "/api/settings", "/api/events",
          "/api/object?kind=Secret&namespace=default&name=tls",
          "/api/object?kind=Gateway&namespace=default&name=gw"]:
    call("GET", p)
code, text = call("GET", "/api/revisions")
try:
    revs = json.loads(text)
    revs = revs.get("revisions", revs) if isinstance(revs, dict) else revs
    for rv in [x.get("revision", x.get("id")) for x in revs if isinstance(x, dict)][:3]:
        call("GET", "/api/revision?revision=%s" % rv)
        call("GET", "/api/revision?id=%s" % rv)
        call("GET", "/api/diff?from=1&to=%s" % rv)
        call("GET", "/api/object?kind=Secret&namespace=default&name=tls&revision=%s" % rv)
except (ValueError, AttributeError, TypeError):
    pass
call("POST", "/api/settings/password", {"current": WRONG, "password": WRONG + "x"}, csrf)
C.check(len(pages) > 20, "%d UI pages and API responses fetched" % len(pages))

r = subprocess.run([wg.BIN, "check", "--kubeconfig", c.kubeconfig], capture_output=True,
                   timeout=60)
outputs["check"] = r.stdout + r.stderr
time.sleep(0.5)

texts = {"log": open(c.log, "rb").read()}
if os.path.exists(access):
    texts["access log"] = open(access, "rb").read()
texts.update(("page " + k, v) for k, v in pages.items())
texts.update(("output of " + k, v) for k, v in outputs.items())
# positive controls: the search would find each marker where it really is
control = open(c.kubeconfig, "rb").read() + key_pem + json.dumps(
    st.objs[("secrets", "default", "tls")]).encode() + PASSWORD.encode() + WRONG.encode() + \
    DATA.encode()  # (the Secret holds DATA base64-encoded; the box decodes it)
missing = [k for k, m in MARKERS.items() if m.encode() not in control]
C.check(not missing, "every marker is findable in its source (kubeconfig, key file, Secret)%s"
        % (": not " + ", ".join(missing) if missing else ""))
for what, m in MARKERS.items():
    hits = [k for k, t in texts.items() if m.encode() in t]
    C.check(not hits, "%s marker: 0 occurrences (%s)" % (what, ", ".join(hits) or "none"))
C.check(len(texts["log"].splitlines()) > 50, "the debug log was searched (%d lines)" %
        len(texts["log"].splitlines()))

# permissions in the state dir
badperm = []
nfiles = 0
for root, dirs, files in os.walk(c.state):
    for d in dirs:
        m = stat.S_IMODE(os.lstat(os.path.join(root, d)).st_mode)
        if m & 0o077 or m != 0o700:
            badperm.append("%s %o" % (os.path.join(root, d), m))
    for f in files:
        p = os.path.join(root, f)
        if p == c.log:
            continue  # the test's own capture of stderr, not the box's
        nfiles += 1
        m = stat.S_IMODE(os.lstat(p).st_mode)
        if m & 0o077:
            badperm.append("%s %o" % (p, m))
m = stat.S_IMODE(os.stat(c.state).st_mode)
if m != 0o700:
    badperm.append("%s %o" % (c.state, m))
C.check(not badperm and nfiles > 0, "state dir: %d files 0600 or stricter, folders 0700%s" %
        (nfiles, (": " + ", ".join(badperm)) if badperm else ""))
C.finish()
