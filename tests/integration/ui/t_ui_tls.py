#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The UI's TLS listener negotiates as the data plane's HTTPS listeners do:
with the board's cipher preference (`waygate version` says which). A
client offering AES-GCM first (OpenSSL's TLS 1.3 order, and a TLS 1.2 list
with AES first) gets ChaCha20-Poly1305 from both on a board that prefers
it, AES-GCM from both otherwise. Run it against a board build to check a
ChaCha20 board: WAYGATE_BIN=build/x86_64-generic/waygate."""
import os
import socket
import ssl
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import wg  # noqa: E402
from wg import check  # noqa: E402

version = subprocess.run([wg.BIN, "version"], capture_output=True, text=True, timeout=10).stdout
chacha_first = "ChaCha20-Poly1305 first" in version
check(chacha_first or "AES-GCM first" in version,
      "waygate version names the board's preference (%s)" %
      ("ChaCha20" if chacha_first else "AES-GCM"))

port, tport, b1, ui_port = wg.free_port(), wg.free_port(), wg.free_port(), wg.free_port()
wg.echo("one", b1)
conf = tempfile.mkdtemp(prefix="wg-ui-tls-")
with open(os.path.join(conf, "gw.yaml"), "w") as f:
    f.write(wg.gateway_yaml(port, listeners="""
  - {name: http, protocol: HTTP, port: %d}
  - {name: https, protocol: HTTPS, port: %d, tls: {certificateRefs: [{name: cert}]}}""" % (
        port, tport)) + wg.backend_yaml("one", b1) + \
        wg.self_signed_secret_yaml("cert", "*.example.com") + """---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: web, namespace: default}
spec:
  parentRefs: [{name: gw}]
  rules: [{backendRefs: [{name: one, port: 80}]}]
""")
gw = wg.Gateway(conf, ui="127.0.0.1:%d" % ui_port)
wg.wait_for(lambda: wg.http(tport, "/", host="a.example.com", tls_name="a.example.com")[0] == 200,
            timeout=15)
wg.wait_port(ui_port, proc=gw.proc)


def suite(p, tls12=False):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if tls12:
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        ctx.set_ciphers("ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
                        "ECDHE-ECDSA-CHACHA20-POLY1305")
    with socket.create_connection(("127.0.0.1", p), timeout=5) as s:
        with ctx.wrap_socket(s, server_hostname="a.example.com") as t:
            return t.cipher()[0]


for tls12 in (False, True):
    what = "TLS 1.2" if tls12 else "TLS 1.3"
    ui_suite, dp_suite = suite(ui_port, tls12), suite(tport, tls12)
    check(ui_suite == dp_suite, "%s: the UI negotiates as the data plane does (%s, %s)" %
          (what, ui_suite, dp_suite))
    check(("CHACHA20" in ui_suite) == chacha_first,
          "%s: the UI follows the board's preference (%s)" % (what, ui_suite))

gw.stop()
wg.finish(gw.logtext())
