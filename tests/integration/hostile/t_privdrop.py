#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Privilege drop: `waygate run --user nobody` started as root becomes
nobody (every uid and gid of /proc/PID/status, supplementary groups) once
its first sockets are bound. Only the control thread keeps one capability,
CAP_NET_BIND_SERVICE, so that a listener added later on a port below 1024
is still bound; the workers and the UI thread keep none. The state folder
is handed over first (files nobody, 0600; folders 0700), so the store goes
on committing revisions. Started as nobody, the flag is a no-op with a log
line; an unknown user exits 2 before anything is served."""
import os
import pwd
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hostile as H  # noqa: E402

if os.geteuid() != 0:
    print("SKIP: needs root to drop from")
    H.finish()
NOBODY = pwd.getpwnam("nobody")
CAP_NET_BIND_SERVICE = 1 << 10


def status_fields(path):
    with open(path) as f:
        return dict(ln.rstrip("\n").split(":\t", 1) for ln in f if ":\t" in ln)


def low_port():
    """A free port below 1024 (only root, or the capability, may bind it)."""
    for port in range(900, 1000):
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
        finally:
            s.close()
    raise RuntimeError("no free port below 1024")


REC = H.Recorder()
HTTP = H.wg.free_port()
LOW = low_port()
state = tempfile.mkdtemp(prefix="wg-privdrop-")
os.chmod(state, 0o755)
# something root left there, too open: handed over and tightened
with open(os.path.join(state, "old-note"), "w") as f:
    f.write("x")
os.chmod(os.path.join(state, "old-note"), 0o644)
cfg = tempfile.mkdtemp(prefix="wg-privdrop-cfg-")
os.chmod(cfg, 0o755)  # re-read on SIGHUP by nobody: readable, as /etc/waygate/config is
rules = ["  - backendRefs: [{name: rec, port: 80}]"]
with open(os.path.join(cfg, "gw.yaml"), "w") as f:
    f.write(H.config([("http", "HTTP", HTTP)], rules, {"rec": REC.port}))
gw = H.wg.Gateway(cfg, state=state, ui="127.0.0.1:0", extra=("--user", "nobody"))
H.wg.wait_port(HTTP, proc=gw.proc)
H.wg.wait_for(lambda: "event=privileges_dropped" in gw.logtext(), timeout=10)

st = status_fields("/proc/%d/status" % gw.proc.pid)
want = "\t".join([str(NOBODY.pw_uid)] * 4)
H.check(st["Uid"] == want and st["Gid"] == "\t".join([str(NOBODY.pw_gid)] * 4),
        "every uid and gid is nobody's (Uid %r, Gid %r)" % (st["Uid"], st["Gid"]))
H.check(st["Groups"].split() == [str(NOBODY.pw_gid)], "groups: %r" % st["Groups"])
caps = {}
for tid in os.listdir("/proc/%d/task" % gw.proc.pid):
    t = status_fields("/proc/%d/task/%s/status" % (gw.proc.pid, tid))
    caps[int(tid)] = (int(t["CapEff"], 16), int(t["CapPrm"], 16))
H.check(caps[gw.proc.pid] == (CAP_NET_BIND_SERVICE, CAP_NET_BIND_SERVICE),
        "control thread keeps CAP_NET_BIND_SERVICE alone (%x)" % caps[gw.proc.pid][0])
others = [c for tid, c in caps.items() if tid != gw.proc.pid]
H.check(len(others) >= 2 and all(c == (0, 0) for c in others),
        "%d other threads keep no capability (%r)" % (len(others), others))

st, _, body = H.wg.http(HTTP, "/served")
H.check(st == 200 and body == b"/served", "still serves (%r)" % st)

# a listener below 1024 added after the drop, and a new revision committed
with open(os.path.join(cfg, "gw.yaml"), "w") as f:
    f.write(H.config([("http", "HTTP", HTTP), ("low", "HTTP", LOW)], rules, {"rec": REC.port}))
gw.proc.send_signal(signal.SIGHUP)
try:
    H.wg.wait_port(LOW, timeout=10, proc=gw.proc)
    st, _, body = H.wg.http(LOW, "/low")
except Exception as e:  # noqa: BLE001
    st, body = repr(e), b""
H.check(st == 200 and body == b"/low", "port %d, added after the drop, is bound and served (%r)"
        % (LOW, st))
H.check("event=store_commit rev=2" in gw.logtext() and "store_commit_failed" not in gw.logtext(),
        "the store commits the new revision as nobody")

bad = []
for root, dirs, files in os.walk(state):
    for n in dirs + files:
        p = os.path.join(root, n)
        s = os.lstat(p)
        mode = stat.S_IMODE(s.st_mode)
        ok = s.st_uid == NOBODY.pw_uid and (mode == 0o700 if stat.S_ISDIR(s.st_mode)
                                            else mode & 0o077 == 0)
        if not ok:
            bad.append("%s %o uid %d" % (p, mode, s.st_uid))
s = os.stat(state)
H.check(not bad and s.st_uid == NOBODY.pw_uid and stat.S_IMODE(s.st_mode) == 0o700,
        "state folder and everything in it: nobody's, files 0600, folders 0700 (%r)" % bad[:5])
H.check(gw.stop() == 0, "drains and exits 0")

# started as nobody: nothing to drop
state2 = tempfile.mkdtemp(prefix="wg-privdrop2-")
os.chown(state2, NOBODY.pw_uid, NOBODY.pw_gid)
HTTP2 = H.wg.free_port()
with open(os.path.join(cfg, "gw.yaml"), "w") as f:
    f.write(H.config([("http", "HTTP", HTTP2)], rules, {"rec": REC.port}))
log2 = os.path.join(state2, "log")
p = subprocess.Popen([H.wg.BIN, "run", "--config", cfg, "--state-dir", state2, "--ui-listen",
                      "off", "--user", "nobody"], stdout=open(log2, "w"), stderr=subprocess.STDOUT,
                     preexec_fn=lambda: (os.setgroups([]), os.setgid(NOBODY.pw_gid),
                                         os.setuid(NOBODY.pw_uid)))
H.wg._procs.append(p)
H.wg.wait_port(HTTP2, proc=p)
st, _, _ = H.wg.http(HTTP2, "/as-nobody")
H.wg.wait_for(lambda: "event=privileges_kept" in open(log2).read(), timeout=5)
text = open(log2).read()
H.check(st == 200 and "event=privileges_kept" in text and "not running as root" in text,
        "started as nobody: serves, logs that there was nothing to drop (%r)" % st)
p.send_signal(signal.SIGTERM)
p.wait(timeout=15)

r = subprocess.run([H.wg.BIN, "run", "--config", cfg, "--state-dir", tempfile.mkdtemp(),
                    "--ui-listen", "off", "--user", "no-such-user-wg"],
                   capture_output=True, text=True, timeout=20)
H.check(r.returncode == 2 and "no-such-user-wg" in r.stderr and "--user" in r.stderr,
        "an unknown user exits 2 naming it (%d, %r)" % (r.returncode, r.stderr.strip()[-120:]))
H.finish()
