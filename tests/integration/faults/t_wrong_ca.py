#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A wrong CA never receives the token. `waygate run --kubeconfig` with a
kubeconfig whose certificate-authority did not sign the API server's
certificate: the TLS handshake is refused by waygate, the server records
handshake failures and not one HTTP request (so no Authorization header
ever crossed), the connection attempts back off, the log names the
verification problem and never the token. Then the same box with the right
CA: the token is sent and the routes are served (the case is not vacuous)."""
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cluster as C  # noqa: E402

c = C.Cluster(start=False)
c.kubeconfig = c.api.kubeconfig(os.path.join(c.api.dir, "kubeconfig-wrong-ca"),
                                cluster_extra={"server": c.proxy.url,
                                               "certificate-authority": c.api.certs["otherca.pem"]})
c.start()
time.sleep(8)
reqs = c.api.requests()
tls_failed = [r for r in reqs if r["verb"] == "tls-failed"]
http_reqs = [r for r in reqs if r["verb"] != "tls-failed"]
with_token = [r for r in reqs if C.TOKEN in (r.get("auth") or "")]
print("wrong CA: %d connection attempts, %d handshakes failed, %d HTTP requests, %d with the token"
      % (c.proxy.attempts, len(tls_failed), len(http_reqs), len(with_token)))
C.check(len(tls_failed) >= 1, "the handshake failed at the server (%d)" % len(tls_failed))
C.check(not http_reqs and not with_token, "no HTTP request, no token reached the server")
C.check(c.proxy.attempts <= 20, "attempts back off (%d in 8 s)" % c.proxy.attempts)
log = c.logtext()
C.check(re.search(r"verif|certificate|x509|tls", log, re.I) is not None,
        "the log names the TLS verification problem")
C.check(C.TOKEN not in log, "the token is not in the log")
c.proc.terminate()
c.proc.wait(timeout=15)

# the right CA: now the token is used and routes are served
c.kubeconfig = c.api.kubeconfig(os.path.join(c.api.dir, "kubeconfig"),
                                cluster_extra={"server": c.proxy.url})
c.start()
C.check(c.wait_pod("one", timeout=30) is not None, "with the right CA the routes are served")
C.check(any(C.TOKEN in (r.get("auth") or "") for r in c.api.requests()),
        "with the right CA the token is sent")
C.finish()
