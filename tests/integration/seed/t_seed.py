#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The seed scenario end to end (issue 2): the bundled configuration in
rootfs/etc/waygate/config served by the real binary with its echo backends.
Ports are moved to free ones so the case can run beside anything else.
Checks: foo's three paths reach their three backends; bar splits 90/10
within a few percent over 1,000 requests; the canary header always reaches
bar-v2; HTTPS on the generated *.example.com certificate by SNI."""
import os
import re
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import wg  # noqa: E402

src = os.path.join(wg.ROOT, "rootfs", "etc", "waygate")
work = tempfile.mkdtemp(prefix="wg-seed-")
cfg = os.path.join(work, "config")
shutil.copytree(os.path.join(src, "config"), cfg)

http_port, https_port = wg.free_port(), wg.free_port()
backends = {}
for line in open(os.path.join(src, "backends.conf")):
    line = line.strip()
    if not line or line.startswith("#"):
        continue
    name, addr = line.split()
    backends[name] = (int(addr.rsplit(":", 1)[1]), wg.free_port())

for f in os.listdir(cfg):
    p = os.path.join(cfg, f)
    text = open(p).read()
    text = re.sub(r"\bport: 8080\b", "port: %d" % http_port, text)
    text = re.sub(r"\bport: 8443\b", "port: %d" % https_port, text)
    for name, (old, new) in backends.items():
        text = re.sub(r"\b%d\b" % old, str(new), text)
    open(p, "w").write(text)

for name, (_, port) in backends.items():
    wg.echo(name, port)
gw = wg.Gateway(cfg, state=os.path.join(work, "state"))
wg.wait_port(http_port, timeout=15, proc=gw.proc)


def pod(path, host, headers=None, port=None, tls=None):
    st, _, body = wg.http(port or http_port, path, host=host, headers=headers, tls_name=tls)
    assert st == 200, "%s%s -> %d %r" % (host, path, st, body[:200])
    return wg.echo_pod(body)


check = wg.check

check(pod("/login", "foo.example.com") == "foo-auth", "foo /login -> foo-auth")
check(pod("/login/x", "foo.example.com") == "foo-auth", "foo /login/x -> foo-auth")
check(pod("/home", "foo.example.com") == "foo-home", "foo /home -> foo-home")
check(pod("/elsewhere", "foo.example.com") == "foo-404", "foo /elsewhere -> foo-404")
check(pod("/loginx", "foo.example.com") == "foo-404", "foo /loginx (not a segment) -> foo-404")

counts = {"bar-v1": 0, "bar-v2": 0}
for _ in range(1000):
    counts[pod("/", "bar.example.com")] += 1
share = counts["bar-v2"] / 10.0
print("bar split over 1000: %r (bar-v2 %.1f%%)" % (counts, share))
check(6.0 <= share <= 14.0, "bar 90/10 split within a few percent (bar-v2 %.1f%%)" % share)
canary = [pod("/", "bar.example.com", headers={"env": "canary"}) for _ in range(100)]
check(all(p == "bar-v2" for p in canary), "env: canary always -> bar-v2")

st, _, _ = wg.http(http_port, "/", host="nothing.example.org")
check(st == 404, "unknown host -> 404 (got %d)" % st)

wg.wait_port(https_port, timeout=10, proc=gw.proc)
check(pod("/home", "foo.example.com", port=https_port, tls="foo.example.com") == "foo-home",
      "HTTPS by SNI foo.example.com /home -> foo-home")
check(pod("/", "bar.example.com", port=https_port, tls="bar.example.com",
          headers={"env": "canary"}) == "bar-v2", "HTTPS bar canary -> bar-v2")

rc = gw.stop()
check(rc == 0, "SIGTERM drains and exits 0 (got %s)" % rc)
wg.finish(gw.logtext())
