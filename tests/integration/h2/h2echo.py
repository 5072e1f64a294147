#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A small h2c (prior knowledge) backend for integration cases: answers
every request with JSON naming the protocol, method, path and headers it
saw and the body length; for content-type application/grpc it answers a
gRPC message echoing the request body, with grpc-status 0 in trailers (or
the status named by the request header x-grpc-status). Path /hang is never
answered; /flaky answers 503 to every other request (counted over all
connections); /via answers with a Via field of its own.
Usage: h2echo.py PORT NAME"""
import json
import socket
import sys
import threading

import h2.config
import h2.connection
import h2.events


def serve(conn_sock, name):
    cfg = h2.config.H2Configuration(client_side=False, header_encoding="utf-8")
    c = h2.connection.H2Connection(config=cfg)
    c.initiate_connection()
    conn_sock.sendall(c.data_to_send())
    reqs = {}
    while True:
        data = conn_sock.recv(65536)
        if not data:
            return
        for ev in c.receive_data(data):
            if isinstance(ev, h2.events.RequestReceived):
                reqs[ev.stream_id] = [dict(ev.headers), b""]
                if ev.stream_ended:
                    respond(c, ev.stream_id, reqs.pop(ev.stream_id), name)
            elif isinstance(ev, h2.events.DataReceived):
                reqs[ev.stream_id][1] += ev.data
                c.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
            elif isinstance(ev, h2.events.StreamEnded):
                if ev.stream_id in reqs:
                    respond(c, ev.stream_id, reqs.pop(ev.stream_id), name)
        conn_sock.sendall(c.data_to_send())


flaky = [0]


def respond(c, sid, req, name):
    hdrs, body = req
    path = hdrs.get(":path", "")
    if path == "/hang":
        return
    if path == "/flaky":
        flaky[0] += 1
        if flaky[0] % 2:
            c.send_headers(sid, [(":status", "503"), ("content-length", "0")], end_stream=True)
            return
    if hdrs.get("content-type", "").startswith("application/grpc"):
        code = hdrs.get("x-grpc-status", "0")
        c.send_headers(sid, [(":status", "200"), ("content-type", "application/grpc"),
                             ("x-backend", name)])
        c.send_data(sid, body)
        c.send_headers(sid, [("grpc-status", code), ("grpc-message", "ok")], end_stream=True)
        return
    out = json.dumps({"proto": "HTTP/2.0", "pod": name, "method": hdrs.get(":method"),
                      "path": hdrs.get(":path"), "headers": hdrs,
                      "body_len": len(body)}).encode()
    extra = [("via", "2 upstream-proxy")] if path == "/via" else []
    c.send_headers(sid, [(":status", "200"), ("content-type", "application/json"),
                         ("content-length", str(len(out)))] + extra)
    c.send_data(sid, out, end_stream=True)


def main():
    port, name = int(sys.argv[1]), sys.argv[2]
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", port))
    ls.listen(64)
    while True:
        s, _ = ls.accept()
        threading.Thread(target=serve, args=(s, name), daemon=True).start()


main()
