"""A proxy in front of moto's EMR that fails the way AWS does, on request.

moto answers every call at once and never throttles; AWS throttles, refuses calls IAM does
not allow, and sometimes answers 500 to a request it did carry out. The DAG must survive
all three. ``inject(operation, fault)`` queues a fault for the next call of an operation:

- ``throttle``: 400 ThrottlingException; the call does not reach moto;
- ``deny``: 400 AccessDeniedException; the call does not reach moto;
- ``error-after``: the call reaches moto (a cluster is created, say), the caller gets a 500;
- ``hang-after``: the call reaches moto, the answer is held until ``release()``.
"""

from __future__ import annotations

import http.client
import json
import threading
from collections import Counter, defaultdict, deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

FAULTS = ("throttle", "deny", "error-after", "hang-after")
_ERRORS = {
    "throttle": (400, "ThrottlingException", "Rate exceeded"),
    "deny": (400, "AccessDeniedException", "User is not authorized to perform: {action}"),
    "error-after": (500, "InternalServerError", "We encountered an internal error"),
}


class FaultProxy:
    def __init__(self, target: str) -> None:
        parts = urlsplit(target)
        self._target = (parts.hostname, parts.port)
        self._faults: dict[str, deque[str]] = defaultdict(deque)
        self._lock = threading.Lock()
        self.calls: Counter[str] = Counter()
        self.faulted: list[tuple[str, str]] = []
        self.hanging = threading.Event()  # set while a hang-after answer is held
        self._release = threading.Event()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # quiet
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                operation = self.headers.get("X-Amz-Target", ".").rsplit(".", 1)[-1]
                fault = proxy._next_fault(operation)
                if fault in ("throttle", "deny"):
                    self._error(fault, operation)
                    return
                status, headers, answer = proxy._forward(
                    self.command, self.path, self.headers, body
                )
                if fault == "error-after":
                    self._error(fault, operation)
                    return
                if fault == "hang-after":
                    proxy.hanging.set()
                    proxy._release.wait(timeout=600)
                self.send_response(status)
                for name, value in headers:
                    if name.lower() not in ("content-length", "transfer-encoding", "connection"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def _error(self, fault: str, operation: str) -> None:
                status, code, message = _ERRORS[fault]
                text = message.format(action=f"elasticmapreduce:{operation}")
                payload = json.dumps({"__type": code, "message": text}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/x-amz-json-1.1")
                self.send_header("x-amzn-ErrorType", code)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FaultProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._release.set()
        self._server.shutdown()
        self._server.server_close()

    def inject(self, operation: str, fault: str, times: int = 1) -> None:
        assert fault in FAULTS, fault
        with self._lock:
            self._faults[operation].extend([fault] * times)

    def release(self) -> None:
        self._release.set()

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()
            self.calls.clear()
            self.faulted.clear()
        self.hanging.clear()
        self._release.clear()

    def _next_fault(self, operation: str) -> str | None:
        with self._lock:
            self.calls[operation] += 1
            queue = self._faults.get(operation)
            fault = queue.popleft() if queue else None
            if fault:
                self.faulted.append((operation, fault))
            return fault

    def _forward(self, method: str, path: str, headers, body: bytes):
        connection = http.client.HTTPConnection(*self._target, timeout=60)
        try:
            connection.request(method, path, body=body, headers=dict(headers.items()))
            response = connection.getresponse()
            return response.status, response.getheaders(), response.read()
        finally:
            connection.close()
