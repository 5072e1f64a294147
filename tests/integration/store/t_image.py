#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Restart from the committed snapshot image: a box that served a
configuration (HTTP and HTTPS with a generated certificate, a header
filter) restarts with its cluster unreachable and serves that revision from
the image stored with it, without loading the objects or reconciling. When
the image is missing (its bytes are written after serving) or damaged
(bytes that no longer match their hash, or bytes that match but do not
decode) the box says so in the log, rebuilds the revision
from its objects and serves the same answers."""
import json
import os
import re
import sqlite3
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import wg  # noqa: E402

work = tempfile.mkdtemp(prefix="wg-image-")
state = os.path.join(work, "state")
os.makedirs(state, mode=0o700)
port, tport, backend, dead = wg.free_port(), wg.free_port(), wg.free_port(), wg.free_port()
wg.echo("b", backend)
cfg = os.path.join(work, "c.yaml")
listeners = ("[{name: http, protocol: HTTP, port: %d}, {name: https, protocol: HTTPS, port: %d,"
             " tls: {certificateRefs: [{name: cert}]}}]" % (port, tport))
with open(cfg, "w") as f:
    f.write(wg.gateway_yaml(port, listeners=listeners) +
            wg.self_signed_secret_yaml("cert", "*.example.test") + """---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r, namespace: default}
spec:
  parentRefs: [{name: gw}]
  hostnames: [a.example.test]
  rules:
  - filters:
    - type: RequestHeaderModifier
      requestHeaderModifier: {set: [{name: x-version, value: "7"}]}
    backendRefs: [{name: b, port: 80}]
""" + wg.backend_yaml("b", backend))
# A cluster that never answers: nothing listens on that port.
kc = os.path.join(work, "kc")
with open(kc, "w") as f:
    f.write("""apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:%d", insecure-skip-tls-verify: true}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
""" % dead)


def answers():
    """X-Version seen over HTTP and over HTTPS (None where it failed)."""
    out = []
    for tls in (None, "a.example.test"):
        try:
            st, _, body = wg.http(tport if tls else port, "/", host="a.example.test",
                                  tls_name=tls, timeout=2)
            out.append(json.loads(body)["headers"]["X-Version"][0] if st == 200 else st)
        except (OSError, ValueError, KeyError):
            out.append(None)
    return out


def run(args, name):
    log = os.path.join(work, name + ".log")
    p = wg.spawn([wg.BIN, "run", "--state-dir", state, "--ui-listen", "off"] + args, log=log)
    wg.wait_for(lambda: answers() == ["7", "7"] or p.poll() is not None, timeout=20)
    got = answers()
    p.terminate()
    p.wait(timeout=15)
    return got, open(log, errors="replace").read()


got, first = run(["--config", cfg], "local")
wg.check(got == ["7", "7"], "local mode serves HTTP and HTTPS: %s" % got)

got, text = run(["--kubeconfig", kc], "offline")
wg.check(got == ["7", "7"], "offline restart serves the same answers: %s" % got)
wg.check(re.search(r"event=snapshot_image_served revision=1 ", text) is not None,
         "offline restart served revision 1 from its image")
wg.check("event=store_load " not in text and "event=reconciled" not in text,
         "offline restart neither loaded the objects nor reconciled")

db = sqlite3.connect(os.path.join(state, "waygate.db"))
image = db.execute("SELECT image FROM snapshot_images WHERE rev = 1").fetchone()[0]
# The image's bytes are written after it is served: a box that lost them
# (power cut right after serving) rebuilds the revision from its objects.
db.execute("UPDATE snapshot_images SET image = NULL WHERE rev = 1")
db.commit()
got, text = run(["--kubeconfig", kc], "missing")
wg.check(got == ["7", "7"], "an image never written: the rebuilt revision answers: %s" % got)
wg.check("event=snapshot_image_missing revision=1 action=rebuild" in text
         and "event=restored revision=1" in text,
         "the log says the image is missing and the revision is rebuilt")
db.execute("UPDATE snapshot_images SET image = ? WHERE rev = 1", (image,))
db.commit()
damaged = bytearray(image)
damaged[len(damaged) // 2] ^= 0x55
db.execute("UPDATE snapshot_images SET image = ? WHERE rev = 1", (bytes(damaged),))
db.commit()
got, text = run(["--kubeconfig", kc], "hash")
wg.check(got == ["7", "7"], "an image that fails its hash: the rebuilt revision answers: %s" % got)
wg.check(re.search(r"level=warn event=snapshot_image_unusable revision=1 error=\"stored bytes "
                   r"do not match their hash\" action=rebuild", text) is not None,
         "the log says the image failed its hash and the revision is rebuilt")
wg.check("event=restored revision=1" in text, "the rebuilt revision 1 is served")



M64 = (1 << 64) - 1


def hash_wide(b):
    """hash_wide of src/core/hash.c."""
    h = (0x9e3779b97f4a7c15 ^ len(b)) & M64
    full = len(b) // 8 * 8
    for i in range(0, full, 8):
        h = ((h ^ int.from_bytes(b[i:i + 8], "little")) * 0xff51afd7ed558ccd) & M64
        h ^= h >> 29
    h = ((h ^ int.from_bytes(b[full:], "little")) * 0xc4ceb9fe1a85ec53) & M64
    h ^= h >> 33
    h = (h * 0xff51afd7ed558ccd) & M64
    h ^= h >> 33
    return h


def fold(h, d):
    h = ((h ^ d) * 0xff51afd7ed558ccd) & M64
    return h ^ (h >> 31)


def digest(b):
    """The store's image digest (gw_image_digest of src/gwapi/snapimage.c,
    8 bytes LE): over the header, a fold of the hashes of the records; for
    bytes that are no image of the format, hash_wide of them."""
    flat = hash_wide(b).to_bytes(8, "little")
    if len(b) < 16 or b[:12] != bytes.fromhex("5747534902000000" "04030201"):
        return flat
    n = int.from_bytes(b[12:16], "little")
    h, off = hash_wide(b[:16]), 16
    for _ in range(n):
        if len(b) - off < 4:
            return flat
        size = int.from_bytes(b[off:off + 4], "little")
        off += 4
        if size > len(b) - off:
            return flat
        h = fold(h, hash_wide(b[off:off + size]))
        off += size
    return h.to_bytes(8, "little") if off == len(b) else flat


# The digest is the one the store computes: the first image passes it.
wg.check(db.execute("SELECT hash FROM snapshot_images WHERE rev = 1").fetchone()[0]
         == digest(image), "the stored digest is the image's")
# Bytes that match their digest but are no image of this format.
junk = b"not an image" + bytes(64)
db.execute("UPDATE snapshot_images SET image = ?, hash = ? WHERE rev = 1",
           (junk, digest(junk)))
db.commit()
db.close()
got, text = run(["--kubeconfig", kc], "junk")
wg.check(got == ["7", "7"], "an image that does not decode: the rebuilt revision answers: %s" % got)
wg.check(re.search(r"level=warn event=snapshot_image_unusable revision=1 error=\"[^\"]+\" "
                   r"action=rebuild", text) is not None,
         "the log says the image could not be decoded and the revision is rebuilt")

# A damaged page elsewhere in the file: the image is served first, then the
# page check finds the damage, the file is recovered and the box serves
# what the recovered store holds (the same revision, rebuilt).
db = sqlite3.connect(os.path.join(state, "waygate.db"))
root = db.execute("SELECT rootpage FROM sqlite_schema WHERE name = 'audit'").fetchone()[0]
page = db.execute("PRAGMA page_size").fetchone()[0]
db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
db.close()
with open(os.path.join(state, "waygate.db"), "r+b") as f:
    f.seek((root - 1) * page)
    f.write(bytes((0xa5 ^ (i * 31)) & 0xff for i in range(page)))
got, text = run(["--kubeconfig", kc], "damaged")
wg.check(got == ["7", "7"], "a damaged file: the recovered revision answers: %s" % got)
wg.check("checked=later" in text and "event=store_recovered" in text
         and "event=restored_after_recovery revision=1 was=1" in text,
         "the check after serving found the damage and the recovered revision is served")
wg.finish(first, text)
