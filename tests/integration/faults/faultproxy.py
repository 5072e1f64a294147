# SPDX-License-Identifier: MIT
"""A TCP forwarder on 127.0.0.1 that stands between waygate and the fake
API server and makes the network misbehave. Modes (set .mode at any time):
  "pass"   forward both ways
  "reset"  accept and reset at once: the server is unreachable
           (every attempt is counted, which a closed port would not allow)
  "hole"   accept and never answer: a black-holed WAN
  "slow"   forward, each chunk delayed by .delay seconds
cut() ends every open connection (an outage begins). .attempts counts
accepted connections; .attempts_in(mode) per mode."""
import socket
import threading
import time


class FaultProxy:
    def __init__(self, target_port):
        self.target = ("127.0.0.1", target_port)
        self.mode = "pass"
        self.delay = 2.0
        self.lock = threading.Lock()
        self.attempts = 0
        self.by_mode = {}
        self.open = set()
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(256)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self):
        return "https://127.0.0.1:%d" % self.port

    def attempts_in(self, mode):
        with self.lock:
            return self.by_mode.get(mode, 0)

    def cut(self):
        with self.lock:
            socks = list(self.open)
        for s in socks:
            try:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            mode = self.mode
            with self.lock:
                self.attempts += 1
                self.by_mode[mode] = self.by_mode.get(mode, 0) + 1
            if mode == "reset":
                c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")
                c.close()
                continue
            with self.lock:
                self.open.add(c)
            if mode == "hole":
                continue  # held open, never read or answered; cut() ends it
            try:
                u = socket.create_connection(self.target, timeout=5)
            except OSError:
                c.close()
                continue
            with self.lock:
                self.open.add(u)
            threading.Thread(target=self._pipe, args=(c, u), daemon=True).start()
            threading.Thread(target=self._pipe, args=(u, c), daemon=True).start()

    def _pipe(self, a, b):
        try:
            while True:
                d = a.recv(65536)
                if not d:
                    break
                if self.mode == "slow":
                    time.sleep(self.delay)
                elif self.mode in ("reset", "hole"):
                    break
                b.sendall(d)
        except OSError:
            pass
        for s in (a, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        with self.lock:
            self.open.discard(a)
            self.open.discard(b)
