# SPDX-License-Identifier: MIT
"""Shared set-up of the cluster fault cases: the fake API server
(tests/integration/kube/fakeapi.py) behind a FaultProxy, a small cluster
(GatewayClass, Gateway with one HTTP listener, an HTTPRoute to one of two
`waygate echo` backends), `waygate run --kubeconfig` against it, and a
client that measures the share of requests served."""
import json
import os
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
sys.path.insert(0, os.path.join(HERE, "..", "kube"))
sys.path.insert(0, HERE)
import wg  # noqa: E402
from wg import check, failures  # noqa: E402
import kubetest  # noqa: E402
from faultproxy import FaultProxy  # noqa: E402

GW = "gateway.networking.k8s.io/v1"


def _excepthook(t, v, tb, _orig=sys.excepthook):
    _dump_logs()
    _orig(t, v, tb)


sys.excepthook = _excepthook
TOKEN = "tok-1"


_clusters = []


def _dump_logs():
    for c in _clusters:
        text = c.logtext()
        if text:
            print("--- waygate log (last 40 lines) ---")
            print("\n".join(text.splitlines()[-40:]))


def finish():
    """Ends the case: stops what it started, then exits at once (daemon
    server threads must not race the interpreter's shutdown)."""
    if failures:
        _dump_logs()
    code = 1 if failures else 0
    print("%d failed" % len(failures) if failures else "all passed", flush=True)
    wg._cleanup()
    kubetest._cleanup()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def route(svc):
    return {"apiVersion": GW, "kind": "HTTPRoute", "metadata": {"name": "r", "namespace": "default"},
            "spec": {"parentRefs": [{"name": "gw"}], "hostnames": ["app.test"],
                     "rules": [{"backendRefs": [{"name": svc, "port": 80}]}]}}


class Cluster:
    def __init__(self, tokens=(TOKEN,), ca=None, start=True):
        self.port = wg.free_port()
        self.b1, self.b2 = wg.free_port(), wg.free_port()
        wg.echo("one", self.b1)
        wg.echo("two", self.b2)
        self.api = kubetest.server(tokens=tokens)
        st = self.api.store
        st.put("gatewayclasses", {"apiVersion": GW, "kind": "GatewayClass",
                                  "metadata": {"name": "wg"},
                                  "spec": {"controllerName": "waygate.dev/gateway-controller"}})
        st.put("namespaces", {"apiVersion": "v1", "kind": "Namespace",
                              "metadata": {"name": "default"}})
        st.put("gateways", {"apiVersion": GW, "kind": "Gateway",
                            "metadata": {"name": "gw", "namespace": "default"},
                            "spec": {"gatewayClassName": "wg", "listeners": [
                                {"name": "http", "protocol": "HTTP", "port": self.port}]}})
        for name, bport in (("one", self.b1), ("two", self.b2)):
            st.put("services", {"apiVersion": "v1", "kind": "Service",
                                "metadata": {"name": name, "namespace": "default"},
                                "spec": {"ports": [{"name": "http", "port": 80,
                                                    "targetPort": bport}]}})
            st.put("endpointslices", {
                "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                "metadata": {"name": name + "-1", "namespace": "default",
                             "labels": {"kubernetes.io/service-name": name}},
                "addressType": "IPv4", "ports": [{"name": "http", "port": bport}],
                "endpoints": [{"addresses": ["127.0.0.1"], "conditions": {"ready": True}}]})
        st.put("httproutes", route("one"))
        self.proxy = FaultProxy(self.api.port)
        extra = {"server": self.proxy.url}
        if ca:
            extra["certificate-authority"] = ca
        self.kubeconfig = self.api.kubeconfig(os.path.join(self.api.dir, "kubeconfig"),
                                              cluster_extra=extra)
        self.state = os.path.join(self.api.dir, "state")
        os.makedirs(self.state, mode=0o700)
        self.log = os.path.join(self.state, "waygate.log")
        self.proc = None
        _clusters.append(self)
        if start:
            self.start()

    def start(self, ui_port=None):
        self.ui_port = ui_port
        self.proc = wg.spawn([wg.BIN, "run", "--kubeconfig", self.kubeconfig, "--state-dir",
                              self.state, "--ui-listen",
                              "127.0.0.1:%d" % ui_port if ui_port else "off"], log=self.log)

    def set_password(self, password):
        r = subprocess.run([wg.BIN, "passwd", "--state-dir", self.state],
                           input=(password + "\n").encode(), capture_output=True, timeout=30)
        self.password = password
        return r.returncode == 0

    def overview(self):
        """The UI's /api/overview (logged in with the password given to
        set_password), or {} when the UI does not answer."""
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        base = "https://127.0.0.1:%d" % self.ui_port
        try:
            if not getattr(self, "cookie", None):
                req = urllib.request.Request(base + "/api/login", method="POST", data=json.dumps(
                    {"user": "admin", "password": self.password}).encode())
                req.add_header("Origin", base)
                req.add_header("Content-Type", "application/json")
                r = urllib.request.urlopen(req, context=ctx, timeout=10)
                self.cookie = r.headers.get("Set-Cookie", "").split(";", 1)[0]
            req = urllib.request.Request(base + "/api/overview")
            req.add_header("Cookie", self.cookie)
            return json.loads(urllib.request.urlopen(req, context=ctx, timeout=10).read())
        except (OSError, ValueError, urllib.error.URLError):
            self.cookie = None
            return {}

    def logtext(self):
        try:
            with open(self.log, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def pod(self, timeout=3):
        code, _, body = wg.http(self.port, "/", host="app.test", timeout=timeout)
        return wg.echo_pod(body) if code == 200 else code

    def set_route(self, svc):
        self.api.store.put("httproutes", route(svc))

    def wait_pod(self, want, timeout):
        t0 = time.time()
        try:
            wg.wait_for(lambda: self.pod() == want, timeout=timeout, interval=0.2)
            return time.time() - t0
        except AssertionError:
            return None


class Traffic:
    """A client asking the gateway every interval seconds in a thread;
    .share() is the percentage answered 200 by the expected backend."""

    def __init__(self, cluster, want, interval=0.05):
        self.c, self.want, self.interval = cluster, want, interval
        self.ok = self.fail = 0
        self.errors = []
        self.stop_ = False
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _run(self):
        while not self.stop_:
            try:
                p = self.c.pod(timeout=3)
            except Exception as e:  # a refused or cut connection counts as not served
                p = repr(e)
            if p == self.want:
                self.ok += 1
            else:
                self.fail += 1
                if len(self.errors) < 5:
                    self.errors.append(p)
            time.sleep(self.interval)

    def stop(self):
        self.stop_ = True
        self.t.join(timeout=10)
        return self.share()

    def share(self):
        n = self.ok + self.fail
        return 100.0 * self.ok / n if n else 0.0

    def line(self):
        return "%d/%d served (%.2f%%)%s" % (self.ok, self.ok + self.fail, self.share(),
                                            " errors %r" % self.errors if self.errors else "")
