# SPDX-License-Identifier: MIT
"""Helpers for the kube/ integration cases: a fake API server (fakeapi.py)
and `waygate kube-debug` driven through its stdin/stdout JSON lines. Every
case is bounded in time and stops what it started."""
import atexit
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
BIN = os.environ.get("WAYGATE_BIN", os.path.join(ROOT, "build", "waygate"))
sys.path.insert(0, HERE)
import fakeapi  # noqa: E402

_cleanups = []


def _probe():
    """The cases drive `waygate kube-debug`; say so clearly when the binary
    does not dispatch it."""
    try:
        r = subprocess.run([BIN, "kube-debug", "--help"], capture_output=True, timeout=10)
    except OSError as e:
        print("FAIL: cannot run %s: %s" % (BIN, e))
        sys.exit(1)
    if r.returncode != 0:
        print("FAIL: %s does not run `kube-debug` (exit %d): %s" %
              (BIN, r.returncode, r.stderr.decode(errors="replace").strip()[:300]))
        sys.exit(1)


_probe()


def _cleanup():
    for fn in reversed(_cleanups):
        try:
            fn()
        except Exception:
            pass


atexit.register(_cleanup)


def workdir():
    d = tempfile.mkdtemp(prefix="wg-kube-")
    _cleanups.append(lambda: shutil.rmtree(d, ignore_errors=True))
    return d


def server(**kw):
    d = workdir()
    api = fakeapi.Api(os.path.join(d, "certs"), **kw).start()
    _cleanups.append(api.stop)
    api.dir = d
    return api


def fail(msg):
    print("FAIL:", msg, flush=True)
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)
    print("ok:", msg, flush=True)


class Debug:
    """waygate kube-debug; states are the JSON lines it prints."""

    def __init__(self, kubeconfig, *args, env=None):
        self.lines = queue.Queue()
        self.log = os.path.join(os.path.dirname(kubeconfig), "kube-debug-%d.log" % id(self))
        e = dict(os.environ)
        e.update(env or {})
        self.p = subprocess.Popen(
            [BIN, "kube-debug", "--kubeconfig", kubeconfig, "--backoff-min-ms", "100",
             "--backoff-max-ms", "800", *args],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=open(self.log, "wb"),
            start_new_session=True, env=e)
        _cleanups.append(self.kill)
        threading.Thread(target=self._read, daemon=True).start()
        self.last = None
        self.events = []  # every event name seen, in order

    def _read(self):
        for line in self.p.stdout:
            try:
                st = json.loads(line)
            except ValueError:
                continue
            self.events.append(st.get("event"))
            self.lines.put(st)
        self.lines.put(None)

    def kill(self):
        if self.p.poll() is None:
            try:
                os.killpg(self.p.pid, signal.SIGKILL)
            except OSError:
                pass
            self.p.wait(timeout=5)

    def cmd(self, obj):
        self.p.stdin.write((json.dumps(obj) + "\n").encode())
        self.p.stdin.flush()

    def wait(self, pred, timeout=10, what="condition"):
        end = time.monotonic() + timeout
        while True:
            left = end - time.monotonic()
            if left <= 0:
                self.dump_log()
                fail("timed out waiting for " + what + "; last state: " +
                     json.dumps(self.last)[:2000])
            try:
                st = self.lines.get(timeout=min(left, 0.5))
            except queue.Empty:
                continue
            if st is None:
                self.dump_log()
                fail("kube-debug exited (rc %s) waiting for %s" % (self.p.wait(), what))
            self.last = st
            if pred(st):
                return st

    def state(self, timeout=5):
        self.cmd({"op": "dump"})
        return self.wait(lambda s: s["event"] == "dump", timeout, "dump")

    def poll(self, pred, timeout=10, what="condition"):
        """Asks for a dump until pred(state) holds."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            st = self.state()
            if pred(st):
                return st
            time.sleep(0.2)
        self.dump_log()
        fail("timed out waiting for " + what + "; last state: " + json.dumps(self.last)[:2000])

    def synced(self, timeout=15):
        return self.wait(lambda s: s["synced"], timeout, "sync")

    def quit(self):
        try:
            self.cmd({"op": "quit"})
            self.p.wait(timeout=5)
        except Exception:
            self.kill()

    def dump_log(self, n=40):
        try:
            with open(self.log, errors="replace") as f:
                lines = f.readlines()[-n:]
            sys.stdout.write("--- kube-debug log (last %d lines) ---\n%s" % (n, "".join(lines)))
        except OSError:
            pass


def objects(state, kind):
    """{"ns/name": rv} of a kind in a state line."""
    out = {}
    for o in state["objects"]:
        s = o["id"] if isinstance(o, dict) else o
        k, rest = s.split(" ", 1)
        if k == kind:
            key, rv = rest.rsplit("@", 1)
            out[key] = rv
    return out


def ns_obj(name):
    return {"metadata": {"name": name}}
