# SPDX-License-Identifier: MIT
"""A small Kubernetes API server for waygate's kube/ integration tests.

HTTPS on 127.0.0.1 with a CA generated at test time (openssl CLI); bearer
tokens and client certificates; discovery (served versions configurable per
resource, resources can be absent); LIST with limit/continue; WATCH with
resourceVersion replay, bookmarks, timeoutSeconds and 410 after compaction;
GET, PUT (with the resourceVersion precondition) and PUT .../status; POST
(create), DELETE (uid/resourceVersion preconditions) and merge-patch of
metadata labels/annotations/ownerReferences and spec; fault
injection (next N matching requests fail with a code, optional Retry-After),
watch faults (drop, split events over several chunks, silent streams), and a
request log the tests assert on. Imported by the t_*.py cases; `python3
fakeapi.py DIR` runs one by hand and writes DIR/kubeconfig.
"""
import bisect
import base64
import copy
import http.server
import json
import os
import socket
import socketserver
import ssl
import subprocess
import sys
import threading
import time
import urllib.parse

GW = "gateway.networking.k8s.io"

# resource -> (group, kind, namespaced)
RESOURCES = {
    "namespaces": ("", "Namespace", False),
    "services": ("", "Service", True),
    "secrets": ("", "Secret", True),
    "configmaps": ("", "ConfigMap", True),
    "endpointslices": ("discovery.k8s.io", "EndpointSlice", True),
    "gatewayclasses": (GW, "GatewayClass", False),
    "gateways": (GW, "Gateway", True),
    "httproutes": (GW, "HTTPRoute", True),
    "grpcroutes": (GW, "GRPCRoute", True),
    "tlsroutes": (GW, "TLSRoute", True),
    "tcproutes": (GW, "TCPRoute", True),
    "udproutes": (GW, "UDPRoute", True),
    "referencegrants": (GW, "ReferenceGrant", True),
    "backendtlspolicies": (GW, "BackendTLSPolicy", True),
    "listenersets": (GW, "ListenerSet", True),
}
STATUS_RESOURCES = {"gatewayclasses", "gateways", "httproutes", "grpcroutes", "tlsroutes",
                    "tcproutes", "udproutes", "backendtlspolicies", "listenersets"}


def run(cmd, cwd):
    subprocess.run(cmd, cwd=cwd, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)


def make_certs(d, ec=True):
    """CA, server cert (127.0.0.1, localhost), client certs (EC and RSA), and
    an unrelated CA for mismatch tests. Returns a dict of paths."""
    os.makedirs(d, exist_ok=True)
    key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"]
    for ca in ("ca", "otherca"):
        run(["openssl", "req", "-x509", "-nodes", *key, "-keyout", ca + ".key", "-out",
             ca + ".pem", "-days", "2", "-subj", "/CN=fake-" + ca], d)
    with open(os.path.join(d, "server.ext"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kube.test\n"
                "extendedKeyUsage=serverAuth\n")
    with open(os.path.join(d, "client.ext"), "w") as f:
        f.write("extendedKeyUsage=clientAuth\n")
    specs = [("server", key, "server.ext", "/CN=fake-apiserver"),
             ("client", key, "client.ext", "/CN=waygate-ec/O=system:masters"),
             ("client-rsa", ["-newkey", "rsa:2048"], "client.ext", "/CN=waygate-rsa")]
    for name, k, ext, subj in specs:
        run(["openssl", "req", "-nodes", *k, "-keyout", name + ".key", "-out", name + ".csr",
             "-subj", subj], d)
        run(["openssl", "x509", "-req", "-in", name + ".csr", "-CA", "ca.pem", "-CAkey",
             "ca.key", "-CAcreateserial", "-out", name + ".pem", "-days", "2", "-extfile",
             ext], d)
    return {n: os.path.join(d, n) for n in
            ("ca.pem", "otherca.pem", "server.pem", "server.key", "client.pem", "client.key",
             "client-rsa.pem", "client-rsa.key")}


def merge_patch(target, patch):
    """RFC 7386."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = copy.deepcopy(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge_patch(out.get(k), v)
    return out


def status(code, reason, message):
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "code": code}


def field_selector(q):
    """fieldSelector -> predicate (=, ==, != on metadata.name, metadata.namespace and type)."""
    sel = q.get("fieldSelector")
    if not sel:
        return lambda o: True
    tests = []
    for req in sel.split(","):
        for op in ("!=", "==", "="):
            if op in req:
                k, v = req.split(op, 1)
                break
        else:
            raise ValueError(req)
        path = k.strip().split(".")

        def get(o, path=path):
            for p in path:
                o = o.get(p) if isinstance(o, dict) else None
            return "" if o is None else str(o)
        tests.append((get, op == "!=", v.strip()))
    return lambda o: all((g(o) != v) if neg else (g(o) == v) for g, neg, v in tests)


class Store:
    def __init__(self):
        self.cond = threading.Condition()
        self.rv = 0
        self.objs = {}     # (resource, ns, name) -> obj
        self.events = []   # (rv, type, resource, obj)
        self.compacted = 0

    def _bump(self):
        self.rv += 1
        return str(self.rv)

    def put(self, resource, obj, bump_generation=True):
        with self.cond:
            md = obj.setdefault("metadata", {})
            group, kind, namespaced = RESOURCES[resource]
            ns = md.get("namespace", "default") if namespaced else ""
            if namespaced:
                md["namespace"] = ns
            key = (resource, ns, md["name"])
            old = self.objs.get(key)
            md.setdefault("uid", "uid-%s-%s-%s" % key)
            md.setdefault("creationTimestamp", "2026-01-01T00:00:00Z")
            if group == GW and bump_generation:
                md["generation"] = (old or {}).get("metadata", {}).get("generation", 0) + 1
            md["resourceVersion"] = self._bump()
            self.objs[key] = obj
            self.events.append((self.rv, "MODIFIED" if old else "ADDED", resource,
                                copy.deepcopy(obj)))
            self.cond.notify_all()
            return obj

    def delete(self, resource, ns, name):
        with self.cond:
            obj = self.objs.pop((resource, ns, name), None)
            if obj is None:
                return None
            obj = copy.deepcopy(obj)
            obj["metadata"]["resourceVersion"] = self._bump()
            self.events.append((self.rv, "DELETED", resource, obj))
            self.cond.notify_all()
            return obj

    def compact(self):
        with self.cond:
            self.compacted = self.rv
            self.events = []
            self.cond.notify_all()


class Api:
    """The server: call start(), then use .store, .faults, .log, ..."""

    def __init__(self, certdir, tokens=("tok-1",), versions=None, absent=(),
                 bookmark_interval=1.0):
        self.certs = make_certs(certdir)
        self.store = Store()
        self.tokens = set(tokens)
        self.versions = versions or {}
        self.absent = set(absent)
        self.bookmark_interval = bookmark_interval
        self.lock = threading.Lock()
        self.faults = []          # dicts: count, code, verb, resource, retry_after
        self.log = []             # dicts: verb, resource, ns, query, ua, auth, code
        self.split = False
        self.silent = False
        self.down = False         # an outage: every connection is cut at once
        self.watch_socks = set()
        self.httpd = None
        self.port = None

    # ---- configuration helpers ----
    def served(self, resource):
        group = RESOURCES[resource][0]
        if resource in self.absent:
            return []
        if group != GW:
            return ["v1"]
        return self.versions.get(resource, ["v1"])

    def fail(self, count, code, verb=None, resource=None, retry_after=None):
        with self.lock:
            self.faults.append(dict(count=count, code=code, verb=verb, resource=resource,
                                    retry_after=retry_after))

    def requests(self, verb=None, resource=None):
        with self.lock:
            return [r for r in self.log if (verb is None or r["verb"] == verb) and
                    (resource is None or r["resource"] == resource)]

    def drop_watches(self, abrupt=False):
        with self.lock:
            socks = list(self.watch_socks)
        for s in socks:
            try:
                if abrupt:
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        with self.store.cond:
            self.store.cond.notify_all()

    def open_watches(self):
        with self.lock:
            return len(self.watch_socks)

    # ---- lifecycle ----
    def start(self):
        api = self

        class Handler(ApiHandler):
            pass
        Handler.api = api
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.certs["server.pem"], self.certs["server.key"])
        ctx.load_verify_locations(self.certs["ca.pem"])
        ctx.verify_mode = ssl.CERT_OPTIONAL

        class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
            daemon_threads = True
            allow_reuse_address = True

            def get_request(self):
                sock, addr = self.socket.accept()
                if api.down:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")
                    sock.close()
                    raise OSError("down")
                sock.settimeout(30)
                try:
                    return ctx.wrap_socket(sock, server_side=True), addr
                except (ssl.SSLError, OSError) as e:
                    with api.lock:
                        api.log.append(dict(verb="tls-failed", resource="", ns="", query={},
                                            ua="", auth="", code=0, error=str(e),
                                            t=time.monotonic()))
                    sock.close()
                    raise OSError("handshake failed")

        self.httpd = Server(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def stop(self):
        if self.httpd:
            self.httpd.shutdown()
            self.drop_watches()
            self.httpd.server_close()

    @property
    def url(self):
        return "https://127.0.0.1:%d" % self.port

    def kubeconfig(self, path, user=None, cluster_extra=None, ca=None):
        """Writes a kubeconfig (YAML) for this server; user is the dict
        under users[].user (default: the first token)."""
        cluster = {"server": self.url,
                   "certificate-authority": ca or self.certs["ca.pem"]}
        cluster.update(cluster_extra or {})
        if user is None:
            user = {"token": sorted(self.tokens)[0]}
        cfg = {"apiVersion": "v1", "kind": "Config", "current-context": "test",
               "clusters": [{"name": "fake", "cluster": cluster}],
               "users": [{"name": "u", "user": user}],
               "contexts": [{"name": "test", "context": {"cluster": "fake", "user": "u"}}]}
        with open(path, "w") as f:
            json.dump(cfg, f, indent=1)   # JSON is YAML
        return path


class ApiHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    api = None

    def log_message(self, *args):
        pass

    # ---- plumbing ----
    def send_json(self, code, obj, extra=None):
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)
        self.record["code"] = code

    def auth(self):
        h = self.headers.get("Authorization", "")
        if h.startswith("Bearer "):
            tok = h[7:]
            self.record["auth"] = "token:" + tok
            return tok in self.api.tokens
        cert = self.connection.getpeercert()
        if cert:
            cn = [v for rdn in cert.get("subject", ()) for k, v in rdn if k == "commonName"]
            self.record["auth"] = "cert:" + (cn[0] if cn else "?")
            return True
        self.record["auth"] = "none"
        return False

    def parse(self):
        u = urllib.parse.urlsplit(self.path)
        q = {k: v[0] for k, v in urllib.parse.parse_qs(u.query).items()}
        parts = [p for p in u.path.split("/") if p]
        return parts, q

    def route(self, parts):
        """-> (kind of path, group, version, resource, ns, name, sub)"""
        if parts[:1] == ["api"]:
            group, rest = "", parts[1:]
        elif parts[:1] == ["apis"]:
            if len(parts) < 2:
                return ("apis",)
            group, rest = parts[1], parts[2:]
        else:
            return ("other",)
        if not rest:
            return ("group", group)
        version, rest = rest[0], rest[1:]
        if not rest:
            return ("groupversion", group, version)
        ns = None
        if rest[0] == "namespaces" and len(rest) >= 3:
            ns, rest = rest[1], rest[2:]
        resource, rest = rest[0], rest[1:]
        name = rest[0] if rest else None
        sub = rest[1] if len(rest) > 1 else None
        return ("res", group, version, resource, ns, name, sub)

    def fault(self, verb, resource):
        api = self.api
        with api.lock:
            for f in api.faults:
                if f["count"] > 0 and (not f["verb"] or f["verb"] == verb) and \
                        (not f["resource"] or f["resource"] == resource):
                    f["count"] -= 1
                    return f
        return None

    # ---- handlers ----
    def do_GET(self):
        self.handle_req("GET")

    def do_PUT(self):
        self.handle_req("PUT")

    def do_PATCH(self):
        self.handle_req("PATCH")

    def do_POST(self):
        self.handle_req("POST")

    def do_DELETE(self):
        self.handle_req("DELETE")

    def handle_req(self, method):
        api = self.api
        parts, q = self.parse()
        r = self.route(parts)
        verb = "get"
        resource = ""
        if r[0] == "res":
            resource = r[3]
            if method in ("PUT", "PATCH"):
                verb = ("update" if method == "PUT" else "patch") + \
                    ("-status" if r[6] == "status" else "")
            elif method in ("POST", "DELETE"):
                verb = "create" if method == "POST" else "delete"
            elif r[5] is None:
                verb = "watch" if q.get("watch") in ("1", "true") else "list"
        elif r[0] in ("group", "groupversion", "apis"):
            verb = "discovery"
        self.record = dict(verb=verb, resource=resource, ns=r[4] if r[0] == "res" else "",
                           query=q, ua=self.headers.get("User-Agent", ""), auth="", code=0,
                           path=self.path, t=time.monotonic())
        with api.lock:
            api.log.append(self.record)
        body = None
        self.ctype = self.headers.get("Content-Type", "")
        if method in ("PUT", "PATCH", "POST", "DELETE"):
            n = int(self.headers.get("Content-Length", "0"))
            body = json.loads(self.rfile.read(n) or b"{}")
            self.record["body"] = body
        if not self.auth():
            return self.send_json(401, status(401, "Unauthorized", "Unauthorized"))
        f = self.fault(verb, resource)
        if f:
            extra = {"Retry-After": str(f["retry_after"])} if f.get("retry_after") else None
            return self.send_json(f["code"], status(f["code"], "Injected", "injected fault"),
                                  extra)
        if r[0] == "apis":
            return self.send_json(200, {"kind": "APIGroupList", "groups": []})
        if r[0] == "group":
            return self.discovery_group(r[1])
        if r[0] == "groupversion":
            return self.discovery_gv(r[1], r[2])
        if r[0] != "res":
            return self.send_json(404, status(404, "NotFound", "not found"))
        _, group, version, resource, ns, name, sub = r
        if resource not in RESOURCES or RESOURCES[resource][0] != group or \
                version not in api.served(resource):
            return self.send_json(404, status(404, "NotFound", "the server could not find "
                                              "the requested resource"))
        if method == "PUT":
            return self.put(resource, ns, name, sub, body)
        if method == "PATCH":
            return self.patch(resource, ns, name, sub, body)
        if method == "POST":
            return self.create(resource, ns, body)
        if method == "DELETE":
            return self.remove(resource, ns, name, body)
        if name:
            with api.store.cond:
                obj = api.store.objs.get((resource, ns or "", name))
                obj = copy.deepcopy(obj)
            if obj is None:
                return self.send_json(404, status(404, "NotFound", "not found"))
            return self.send_json(200, self.decorate(obj, resource, version, True))
        if verb == "watch":
            return self.watch(resource, version, ns, q)
        return self.list(resource, version, ns, q)

    def discovery_group(self, group):
        vs = []
        for res, (g, _, _) in RESOURCES.items():
            if g == group:
                for v in self.api.served(res):
                    if v not in vs:
                        vs.append(v)
        if group == "" or not vs:
            return self.send_json(404, status(404, "NotFound", "not found"))
        order = ["v1", "v1beta1", "v1alpha3", "v1alpha2"]
        vs.sort(key=lambda v: order.index(v) if v in order else 99)
        return self.send_json(200, {
            "kind": "APIGroup", "name": group,
            "versions": [{"groupVersion": group + "/" + v, "version": v} for v in vs],
            "preferredVersion": {"groupVersion": group + "/" + vs[0], "version": vs[0]}})

    def discovery_gv(self, group, version):
        res = []
        for name, (g, kind, nsd) in RESOURCES.items():
            if g == group and version in self.api.served(name):
                res.append({"name": name, "namespaced": nsd, "kind": kind,
                            "verbs": ["get", "list", "watch"]})
                if name in STATUS_RESOURCES:
                    res.append({"name": name + "/status", "namespaced": nsd, "kind": kind})
        if not res:
            return self.send_json(404, status(404, "NotFound", "not found"))
        return self.send_json(200, {"kind": "APIResourceList",
                                    "groupVersion": (group + "/" if group else "") + version,
                                    "resources": res})

    def decorate(self, obj, resource, version, with_kind):
        group, kind, _ = RESOURCES[resource]
        if with_kind:
            obj["apiVersion"] = (group + "/" if group else "") + version
            obj["kind"] = kind
        else:
            obj.pop("apiVersion", None)
            obj.pop("kind", None)
        return obj

    def list(self, resource, version, ns, q):
        api = self.api
        st = api.store
        limit = int(q.get("limit", "0") or 0)
        start = 0
        with st.cond:
            rv = st.rv
            if q.get("continue"):
                tok = json.loads(base64.b64decode(q["continue"]))
                if tok["rv"] < st.compacted:
                    return self.send_json(410, status(410, "Expired",
                                                      "continue token expired"))
                rv, start = tok["rv"], tok["start"]
            sel = field_selector(q)
            items = sorted(((k, copy.deepcopy(o)) for k, o in st.objs.items()
                            if k[0] == resource and (ns is None or k[1] == ns) and sel(o)),
                           key=lambda x: (x[0][1], x[0][2]))
        items = [o for _, o in items]
        builtin = RESOURCES[resource][0] != GW
        page = items[start:start + limit] if limit else items[start:]
        md = {"resourceVersion": str(rv)}
        if limit and start + limit < len(items):
            md["continue"] = base64.b64encode(json.dumps(
                {"rv": rv, "start": start + limit}).encode()).decode()
            md["remainingItemCount"] = len(items) - start - limit
        group, kind, _ = RESOURCES[resource]
        return self.send_json(200, {
            "kind": kind + "List", "apiVersion": (group + "/" if group else "") + version,
            "metadata": md,
            "items": [self.decorate(o, resource, version, not builtin) for o in page]})

    def chunk(self, data):
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def send_event(self, ev):
        data = (json.dumps(ev) + "\n").encode()
        if self.api.split and len(data) > 8:
            third = len(data) // 3
            for part in (data[:third], data[third:2 * third], data[2 * third:]):
                self.chunk(part)
                time.sleep(0.01)
        else:
            self.chunk(data)

    def watch(self, resource, version, ns, q):
        api, st = self.api, self.api.store
        rv = int(q.get("resourceVersion", "0") or 0)
        bookmarks = q.get("allowWatchBookmarks") in ("true", "1")
        timeout = float(q.get("timeoutSeconds", "0") or 0) or 3600
        deadline = time.monotonic() + timeout
        sel = field_selector(q)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.record["code"] = 200
        with api.lock:
            api.watch_socks.add(self.connection)
        try:
            if rv and rv < st.compacted:
                self.send_event({"type": "ERROR", "object": status(
                    410, "Expired", "too old resource version: %d (%d)" % (rv, st.compacted))})
                self.chunk(b"")
                return
            last = rv
            next_bm = time.monotonic() + api.bookmark_interval
            while time.monotonic() < deadline:
                with st.cond:
                    # events are in rv order: look only past the last one
                    # sent (a scan from the start costs every watcher the
                    # whole history on each write)
                    first = bisect.bisect_right(st.events, last, key=lambda e: e[0])
                    evs = [e for e in st.events[first:] if e[2] == resource and
                           (ns is None or e[3]["metadata"].get("namespace") == ns) and
                           sel(e[3])]
                    if st.events and st.events[-1][0] > last:
                        newest = st.events[-1][0]
                    else:
                        newest = last
                    if not evs:
                        st.cond.wait(0.1)
                if self.connection not in api.watch_socks:
                    return
                if api.silent:
                    time.sleep(0.05)
                    continue
                for e in evs:
                    obj = self.decorate(copy.deepcopy(e[3]), resource, version, True)
                    self.send_event({"type": e[1], "object": obj})
                last = max(newest, last)
                if bookmarks and time.monotonic() >= next_bm:
                    group, kind, _ = RESOURCES[resource]
                    self.send_event({"type": "BOOKMARK", "object": {
                        "kind": kind, "apiVersion": (group + "/" if group else "") + version,
                        "metadata": {"resourceVersion": str(max(last, st.rv))}}})
                    next_bm = time.monotonic() + api.bookmark_interval
            self.chunk(b"")
        except OSError:
            self.close_connection = True
        finally:
            with api.lock:
                api.watch_socks.discard(self.connection)

    def patch(self, resource, ns, name, sub, body):
        st = self.api.store
        if self.ctype != "application/merge-patch+json":
            return self.send_json(415, status(415, "UnsupportedMediaType", self.ctype))
        with st.cond:
            key = (resource, ns or "", name)
            cur = st.objs.get(key)
            if cur is None:
                return self.send_json(404, status(404, "NotFound", "not found"))
            want = (body.get("metadata") or {}).get("resourceVersion")
            if want is not None and want != cur["metadata"]["resourceVersion"]:
                return self.send_json(409, status(
                    409, "Conflict", "Precondition failed: ResourceVersion in precondition: "
                    "%s, ResourceVersion in meta: %s" % (want, cur["metadata"]["resourceVersion"])))
            new = copy.deepcopy(cur)
            if sub == "status":
                new["status"] = merge_patch(cur.get("status"), body.get("status", {}))
                if new.get("status") != cur.get("status"):
                    st.put(resource, new, bump_generation=False)
            else:
                md = body.get("metadata") or {}
                for k in ("labels", "annotations", "ownerReferences"):
                    if k in md:
                        v = merge_patch(new["metadata"].get(k), md[k])
                        if v is None or v == {}:
                            new["metadata"].pop(k, None)
                        else:
                            new["metadata"][k] = v
                if "spec" in body:
                    new["spec"] = merge_patch(cur.get("spec"), body["spec"])
                if new != cur:  # a no-op patch makes no new resourceVersion
                    st.put(resource, new)
            out = copy.deepcopy(st.objs[key])
        parts = self.parse()[0]
        version = parts[2] if parts[0] == "apis" else "v1"
        return self.send_json(200, self.decorate(out, resource, version, True))

    def create(self, resource, ns, body):
        st = self.api.store
        group, kind, namespaced = RESOURCES[resource]
        md = body.setdefault("metadata", {})
        if not md.get("name"):
            return self.send_json(422, status(422, "Invalid", "metadata.name: Required value"))
        if namespaced:
            md["namespace"] = ns or md.get("namespace") or "default"
        for k in ("resourceVersion", "uid", "creationTimestamp", "generation"):
            md.pop(k, None)
        with st.cond:
            if (resource, md.get("namespace", ""), md["name"]) in st.objs:
                return self.send_json(409, status(409, "AlreadyExists", '%s "%s" already exists'
                                                  % (resource, md["name"])))
            out = copy.deepcopy(st.put(resource, body))
        version = self.parse()[0][2] if self.parse()[0][0] == "apis" else "v1"
        return self.send_json(201, self.decorate(out, resource, version, True))

    def remove(self, resource, ns, name, body):
        st = self.api.store
        with st.cond:
            cur = st.objs.get((resource, ns or "", name))
            if cur is None:
                return self.send_json(404, status(404, "NotFound", "not found"))
            pre = (body or {}).get("preconditions") or {}
            for k in ("uid", "resourceVersion"):
                if pre.get(k) and pre[k] != cur["metadata"].get(k):
                    return self.send_json(409, status(409, "Conflict", "Precondition failed: "
                                                      "%s in precondition: %s" % (k, pre[k])))
            out = st.delete(resource, ns or "", name)
        version = self.parse()[0][2] if self.parse()[0][0] == "apis" else "v1"
        return self.send_json(200, self.decorate(out, resource, version, True))

    def put(self, resource, ns, name, sub, body):
        st = self.api.store
        with st.cond:
            key = (resource, ns or "", name)
            cur = st.objs.get(key)
            if cur is None:
                return self.send_json(404, status(404, "NotFound", "not found"))
            want = body.get("metadata", {}).get("resourceVersion")
            if want != cur["metadata"]["resourceVersion"]:
                return self.send_json(409, status(
                    409, "Conflict", "the object has been modified; please apply your "
                    "changes to the latest version and try again"))
            new = copy.deepcopy(cur)
            if sub == "status":
                if new.get("status") == body.get("status"):
                    return self.send_json(200, self.decorate(new, resource, "v1", True))
                new["status"] = body.get("status")
                st.put(resource, new, bump_generation=False)
            else:
                new["spec"] = body.get("spec")
                new["metadata"]["labels"] = body.get("metadata", {}).get("labels")
                st.put(resource, new)
            out = copy.deepcopy(new)
        version = self.parse()[0][2] if self.parse()[0][0] == "apis" else "v1"
        return self.send_json(200, self.decorate(out, resource, version, True))


if __name__ == "__main__":
    d = sys.argv[1] if len(sys.argv) > 1 else "/tmp/fakeapi"
    api = Api(os.path.join(d, "certs")).start()
    print(api.kubeconfig(os.path.join(d, "kubeconfig")), api.url, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        api.stop()
