# SPDX-License-Identifier: MIT
"""Helpers for integration cases: start the real binary (backends, the
gateway) on loopback, wait for ports, send requests, and always clean up.
Every process is started in its own process group and killed at exit."""
import atexit
import json
import os
import signal
import socket
import ssl
import subprocess
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
BIN = os.environ.get("WAYGATE_BIN", os.path.join(ROOT, "build", "waygate"))
_procs = []


def _cleanup():
    for p in _procs:
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except OSError:
                pass
    for p in _procs:
        try:
            p.wait(timeout=5)
        except Exception:
            pass


atexit.register(_cleanup)


def free_port():
    """A TCP port another process (the gateway, a backend) can listen on.
    Drawn below the kernel's ephemeral range: a port the kernel hands out
    can meanwhile become the local end of some outgoing connection, and a
    listener then fails with EADDRINUSE. Bench ports (18xxx, 28xxx, 29xxx)
    stay out."""
    import random
    lo = 20000
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            hi = min(int(f.read().split()[0]) - 1, 27999)
    except (OSError, ValueError, IndexError):
        hi = 27999
    for _ in range(200):
        port = random.randint(lo, hi)
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("0.0.0.0", port))
            return port
        except OSError:
            continue
        finally:
            s.close()
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def spawn(args, log=None, env=None):
    out = open(log, "ab") if log else subprocess.DEVNULL
    p = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT if log else out,
                         start_new_session=True, env=env)
    _procs.append(p)
    return p


def wait_port(port, host="127.0.0.1", timeout=10.0, proc=None):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError("process exited with %s" % proc.returncode)
        try:
            socket.create_connection((host, port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("port %s:%d did not open" % (host, port))


def echo(name, port):
    p = spawn([BIN, "echo", "--listen", "127.0.0.1:%d" % port, "--name", name])
    wait_port(port, proc=p)
    return p


class Gateway:
    """waygate run --config DIR with its own state dir and log."""

    def __init__(self, config, state=None, ui="off", extra=()):
        self.state = state or tempfile.mkdtemp(prefix="wg-state-")
        os.makedirs(self.state, mode=0o700, exist_ok=True)
        self.log = os.path.join(self.state, "waygate.log")
        args = [BIN, "run", "--config", config, "--state-dir", self.state, "--ui-listen", ui]
        self.proc = spawn(args + list(extra), log=self.log)

    def logtext(self):
        try:
            with open(self.log, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def stop(self, sig=signal.SIGTERM, timeout=15):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            return self.proc.wait(timeout=timeout)
        return self.proc.returncode


def http(port, path="/", host=None, method="GET", headers=None, body=None, timeout=5,
         tls_name=None, addr="127.0.0.1"):
    """One request on a new connection; returns (status, headers dict, body bytes)."""
    import http.client
    if tls_name is not None:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        conn = http.client.HTTPSConnection(addr, port, timeout=timeout, context=ctx)
        # SNI is taken from the host given to the connection: set it explicitly
        conn._context = ctx
        sock = socket.create_connection((addr, port), timeout=timeout)
        conn.sock = ctx.wrap_socket(sock, server_hostname=tls_name)
    else:
        conn = http.client.HTTPConnection(addr, port, timeout=timeout)
    h = dict(headers or {})
    if host:
        h["Host"] = host
    conn.request(method, path, body=body, headers=h)
    r = conn.getresponse()
    data = r.read()
    conn.close()
    return r.status, {k.lower(): v for k, v in r.getheaders()}, data


def recv_until_close(s):
    """Everything the peer sends on socket s until it closes; closes s."""
    out = b""
    while True:
        d = s.recv(65536)
        if not d:
            break
        out += d
    s.close()
    return out


def read_request_body(h):
    """The body of the request an http.server handler h is serving, as its
    client framed it, and the framing ("length N" or "chunked"); (None,
    framing) when the connection ended before the body did."""
    if h.headers.get("Transfer-Encoding", "").lower() == "chunked":
        out = b""
        while True:
            line = h.rfile.readline()
            if not line.endswith(b"\r\n"):
                return None, "chunked"
            size = int(line.split(b";")[0], 16)
            if size == 0:
                h.rfile.readline()
                return out, "chunked"
            data = h.rfile.read(size + 2)
            if len(data) != size + 2:
                return None, "chunked"
            out += data[:-2]
    n = int(h.headers.get("Content-Length", "0"))
    data = h.rfile.read(n) if n else b""
    return (data if len(data) == n else None), "length %d" % n


def echo_pod(body):
    """The backend name an echo response came from."""
    return json.loads(body).get("pod")


def wait_for(fn, timeout=10.0, interval=0.05):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        try:
            v = fn()
            if v:
                return v
        except Exception as e:  # keep polling until the deadline
            last = e
        time.sleep(interval)
    raise AssertionError("condition not met in %.1fs (last error: %r)" % (timeout, last))


# ---- outcome of a case ----

failures = []


def check(cond, what):
    """Prints ok/FAIL for one expectation and remembers a failure; the case
    goes on so that one run shows every broken expectation."""
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)
    return cond


def finish(*logs):
    """Exits 1 (after printing the tails of the given log texts) when any
    check failed."""
    if failures:
        for text in logs:
            print(text[-3000:])
        raise SystemExit(1)


# ---- local configurations ----

def gateway_yaml(port, name="gw", cls="wg", listeners=None):
    """A GatewayClass owned by waygate and a Gateway in `default` with one
    HTTP listener on port (or the given listener YAML flow list)."""
    return """apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: %(cls)s}
spec: {controllerName: waygate.dev/gateway-controller}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: %(name)s, namespace: default}
spec:
  gatewayClassName: %(cls)s
  listeners: %(listeners)s
""" % {"cls": cls, "name": name,
       "listeners": listeners or "[{name: http, protocol: HTTP, port: %d}]" % port}


def _httproute_yaml(name, parent, spec_rest):
    return """---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: %s, namespace: default}
spec:
  parentRefs: [{name: %s}]
%s""" % (name, parent, spec_rest)


def route_yaml(backend, name="r", parent="gw"):
    """An HTTPRoute in `default` sending everything on parent to backend:80."""
    return _httproute_yaml(name, parent,
                           "  rules: [{backendRefs: [{name: %s, port: 80}]}]\n" % backend)


def host_route_yaml(name, host, rule_yaml, parent="gw"):
    """An HTTPRoute in `default` for one hostname with one rule (YAML of the
    rule's fields, indented for the list item)."""
    return _httproute_yaml(name, parent, "  hostnames: [%s]\n  rules:\n  - %s\n" % (host, rule_yaml))


def backend_yaml(name, port, ns="default", app_protocol=None, svc_port=80, protocol="TCP"):
    """A Service without a selector and its EndpointSlice: one ready endpoint
    at 127.0.0.1:port, reached as NAME:svc_port; app_protocol (for example
    "kubernetes.io/h2c") goes on both ports; protocol TCP or UDP."""
    ap = ", appProtocol: %s" % app_protocol if app_protocol else ""
    return """---
apiVersion: v1
kind: Service
metadata: {name: %(n)s, namespace: %(ns)s}
spec: {ports: [{name: http, port: %(sp)d, targetPort: %(p)d, protocol: %(pr)s%(ap)s}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: %(n)s-1, namespace: %(ns)s, labels: {kubernetes.io/service-name: %(n)s}}
addressType: IPv4
ports: [{name: http, port: %(p)d, protocol: %(pr)s%(ap)s}]
endpoints: [{addresses: [127.0.0.1], conditions: {ready: true}}]
""" % {"n": name, "p": port, "ns": ns, "ap": ap, "sp": svc_port, "pr": protocol}


def self_signed_secret_yaml(name, hosts, ns="default"):
    """A kubernetes.io/tls Secret that waygate fills with a self-signed
    certificate for hosts (its generate-self-signed annotation)."""
    return """---
apiVersion: v1
kind: Secret
metadata:
  name: %s
  namespace: %s
  annotations: {waygate.dev/generate-self-signed: "%s"}
type: kubernetes.io/tls
""" % (name, ns, hosts)


# ---- the admin UI ----

class Ui:
    """A client of the UI on 127.0.0.1:port: logs in as admin (with the
    first-start password from the gateway's log unless one is given), keeps
    the session cookie and CSRF token, and scrapes /metrics with the token
    from the state dir."""

    def __init__(self, port, gateway=None, password=None, state=None):
        import re
        self.base = "https://127.0.0.1:%d" % port
        self.ctx = ssl.create_default_context()
        self.ctx.check_hostname = False
        self.ctx.verify_mode = ssl.CERT_NONE
        self.cookies = {}
        self.csrf = None
        self.state = state or (gateway.state if gateway else None)
        if password is None:
            password = wait_for(lambda: (re.findall(r"password=(\S+)", gateway.logtext())
                                         or [None])[0])
        wait_port(port, proc=gateway.proc if gateway else None)
        code, body = self.call("POST", "/api/login", {"user": "admin", "password": password})
        if code != 200:
            raise AssertionError("UI login failed: %d %r" % (code, body))
        self.csrf = body.get("csrf")

    def call(self, method, path, body=None, headers=None):
        """(status, decoded JSON or text)"""
        import urllib.error
        import urllib.request
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method)
        req.add_header("Origin", self.base)
        req.add_header("Content-Type", "application/json")
        if self.cookies:
            req.add_header("Cookie", "; ".join("%s=%s" % kv for kv in self.cookies.items()))
        if self.csrf and method == "POST":
            req.add_header("X-CSRF-Token", self.csrf)
        for k, v in (headers or {}).items():
            req.add_header(k, v)
        try:
            r = urllib.request.urlopen(req, context=self.ctx, timeout=30)
            code, hdrs, text = r.status, r.headers, r.read()
        except urllib.error.HTTPError as e:
            code, hdrs, text = e.code, e.headers, e.read()
        for c in hdrs.get_all("Set-Cookie") or []:
            k, v = c.split(";", 1)[0].split("=", 1)
            self.cookies[k] = v
        try:
            return code, json.loads(text or b"{}")
        except ValueError:
            return code, text.decode("utf-8", "replace")

    def get(self, path):
        code, body = self.call("GET", path)
        if code != 200:
            raise AssertionError("GET %s: %d %r" % (path, code, body))
        return body

    def metrics(self):
        """The /metrics text, parsed by the Prometheus client library:
        {family name: family} (counter names lose their _total)."""
        from prometheus_client.parser import text_string_to_metric_families
        with open(os.path.join(self.state, "ui-metrics.token")) as f:
            token = f.read().strip()
        code, text = self.call("GET", "/metrics", headers={"Authorization": "Bearer " + token})
        if code != 200:
            raise AssertionError("/metrics: %d" % code)
        return {f.name: f for f in text_string_to_metric_families(text)}
