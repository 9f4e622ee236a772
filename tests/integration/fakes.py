# SPDX-License-Identifier: MIT
"""Scriptable fakes of the services outbound jobs talk to (stdlib only).

FakeHTTP is an HTTP/1.1 server on 127.0.0.1 and a free port. Each path gets a
script of responses, answered in order (the last one repeats); every request
is recorded with its arrival time, headers and body:

    fake = FakeHTTP()
    fake.script("/hook", Reply(503, headers={"Retry-After": "2"}), Reply(200, body={"ok": True}))
    ...
    reqs = fake.wait_requests("/hook", 2)
    reqs[1].time - reqs[0].time >= 2
    fake.close()

A Reply can also wait (delay), hang until the client goes away (hang), reset
the connection (reset: RST instead of an answer), or be a 200 with an error
body (Reply(200, body={"error": {...}})). Paths without a script get 200 {}.
"""
import json
import select
import socket
import struct
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Reply:
    """One scripted answer. body: bytes, str, or anything JSON-serialisable."""

    def __init__(self, status=200, headers=None, body=b"", delay=0.0, hang=False, reset=False):
        self.status = status
        self.headers = dict(headers or {})
        if isinstance(body, (bytes, bytearray)):
            self.body = bytes(body)
        elif isinstance(body, str):
            self.body = body.encode()
        else:
            self.body = json.dumps(body).encode()
            self.headers.setdefault("Content-Type", "application/json")
        self.delay = delay
        self.hang = hang
        self.reset = reset


class Request:
    """What the fake received: time (time.monotonic() when the request was
    read), wall (time.time()), method, path, headers (a dict with lower-case
    names), body (bytes); closed: when the client closed the connection while
    the fake hung (monotonic), else None."""

    def __init__(self, method, path, headers, body):
        self.time = time.monotonic()
        self.wall = time.time()
        self.method = method
        self.path = path
        self.headers = {k.lower(): v for k, v in headers.items()}
        self.body = body
        self.closed = None

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return f"Request({self.method} {self.path} at {self.time:.3f}, {len(self.body)} bytes)"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as libcurl reuses connections

    def log_message(self, format, *args):  # quiet: the fake's log is its request list
        pass

    def _serve(self):
        fake = self.server.fake
        path = self.path.split("?", 1)[0]
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n > 0 else b""
        req = Request(self.command, path, self.headers, body)
        reply = fake._next(path, req)
        if reply.delay:
            fake._stopping.wait(reply.delay)
        if reply.reset:
            # SO_LINGER with a zero timeout: close() sends RST, not FIN.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
            self.close_connection = True
            return
        if reply.hang:
            self._hang(req)
            self.close_connection = True
            return
        self.send_response(reply.status)
        for k, v in reply.headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(reply.body)

    def _hang(self, req):
        """Answers nothing until the client closes the connection (or the fake stops)."""
        sock = self.connection
        while not self.server.fake._stopping.is_set():
            r, _, _ = select.select([sock], [], [], 0.05)
            if r:
                try:
                    data = sock.recv(4096)
                except OSError:
                    data = b""
                if not data:
                    req.closed = time.monotonic()
                    self.server.fake._changed()
                    return

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _serve


class FakeHTTP:
    """A scriptable HTTP server on 127.0.0.1 (see the module comment)."""

    def __init__(self):
        self._lock = threading.Condition()
        self._scripts = {}
        self._requests = []
        self._stopping = threading.Event()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.server.daemon_threads = True
        self.server.fake = self
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()

    def url(self, path="/"):
        return f"http://127.0.0.1:{self.port}{path}"

    def script(self, path, *replies):
        """Answers requests to path with replies in order; the last one repeats."""
        with self._lock:
            self._scripts[path] = list(replies) or [Reply()]

    def _next(self, path, req):
        with self._lock:
            self._requests.append(req)
            script = self._scripts.get(path)
            reply = (script.pop(0) if len(script) > 1 else script[0]) if script else Reply(body={})
            self._lock.notify_all()
        return reply

    def _changed(self):
        with self._lock:
            self._lock.notify_all()

    def requests(self, path=None):
        """The requests received so far (to path, or all), oldest first."""
        with self._lock:
            return [r for r in self._requests if path is None or r.path == path]

    def wait_requests(self, path, n, timeout=10.0):
        """Waits until path has received at least n requests; returns them all."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                got = [r for r in self._requests if r.path == path]
                if len(got) >= n:
                    return got
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"timed out after {timeout}s waiting for {n} requests to {path} "
                                         f"(got {len(got)})")
                self._lock.wait(left)

    def wait_closed(self, req, timeout=10.0):
        """Waits until the client closed the connection of a hanging request; returns when (monotonic)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while req.closed is None:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"timed out after {timeout}s waiting for the client to close {req}")
                self._lock.wait(left)
            return req.closed

    def close(self):
        self._stopping.set()
        self.server.shutdown()
        self.server.server_close()
