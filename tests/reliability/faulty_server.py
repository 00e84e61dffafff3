"""A loopback HTTP server that misbehaves on purpose, one scripted reply per request.

Each path gets a script: a list of `Fault`s answered in order, the last one repeated for every
request after it. A fault can be a status with headers and body, a delay before answering (to
outlast the client's timeout), a connection reset after part of the body, or a redirect. Routes
(a function of the request) cover APIs whose answer depends on the query. It binds 127.0.0.1 only
and records every request, so a test can count retries and check what a client sent.
"""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlsplit

from flows.replay_server import LoopbackServer


@dataclass(frozen=True)
class Fault:
    """One reply: what a misbehaving server sends back to one request."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay_seconds: float = 0.0
    """Sleep this long before the status line: longer than the client's timeout means a read timeout."""
    reset_after_bytes: int | None = None
    """Send the headers (announcing the whole body) and this many body bytes, then reset the connection."""
    content_length: bool = True
    """False: no Content-Length and the connection closes after the body, so a cut body looks complete."""


@dataclass(frozen=True)
class Seen:
    """A request the server received."""

    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    method: str = "GET"


Route = Callable[[Seen], Fault]


def ok(body: bytes, content_type: str = "application/octet-stream", **headers: str) -> Fault:
    return Fault(200, body, {"Content-Type": content_type, **headers})


def redirect(location: str, status: int = 302) -> Fault:
    return Fault(status, b"", {"Location": location})


class FaultyServer(LoopbackServer):
    """Serves scripted faults on an ephemeral loopback port while the `with` block runs."""

    thread_name = "faulty-server"

    def __init__(self) -> None:
        super().__init__()
        self._scripts: dict[str, list[Fault]] = {}
        self._routes: dict[str, Route] = {}
        self._lock = threading.Lock()
        self.seen: list[Seen] = []

    def handler_class(self) -> type[BaseHTTPRequestHandler]:
        return _handler_for(self)

    def script(self, path: str, *faults: Fault) -> str:
        """Answer `path` with these faults in turn (the last one repeats); returns the full URL."""
        assert faults, "a script needs at least one reply"
        with self._lock:
            self._scripts[path] = list(faults)
        return self.url + path

    def route(self, prefix: str, route: Route) -> None:
        """Answer every path under `prefix` with `route(request)`."""
        with self._lock:
            self._routes[prefix] = route

    def requests_to(self, path: str) -> int:
        return sum(1 for seen in self.seen if seen.path == path)

    def next_fault(self, request: Seen) -> Fault:
        with self._lock:
            self.seen.append(request)
            script = self._scripts.get(request.path)
            if script:
                return script.pop(0) if len(script) > 1 else script[0]
            route = next(
                (route for prefix, route in sorted(self._routes.items(), key=lambda item: -len(item[0]))
                 if request.path.startswith(prefix)),
                None,
            )
        if route is not None:
            return route(request)
        return Fault(404, b"not found\n", {"Content-Type": "text/plain"})


def _handler_for(server: FaultyServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
            self.answer("GET")

        def do_HEAD(self) -> None:  # noqa: N802
            """As GET, without the body: `hf_hub_download` asks HEAD first for the commit and size."""
            self.answer("HEAD")

        def answer(self, method: str) -> None:
            parts = urlsplit(self.path)
            fault = server.next_fault(
                Seen(parts.path, parse_qs(parts.query), {key.lower(): value for key, value in self.headers.items()}, method)
            )
            if method == "HEAD":
                fault = replace(fault, body=b"", headers={"Content-Length": str(len(fault.body)), **fault.headers},
                                content_length=False, reset_after_bytes=None)
            if fault.delay_seconds:
                time.sleep(fault.delay_seconds)
            try:
                self.send_response(fault.status)
                for key, value in fault.headers.items():
                    self.send_header(key, value)
                if fault.content_length:
                    self.send_header("Content-Length", str(len(fault.body)))
                else:
                    self.send_header("Connection", "close")
                    self.close_connection = True
                self.end_headers()
                if fault.reset_after_bytes is None:
                    self.wfile.write(fault.body)
                    return
                self.wfile.write(fault.body[: fault.reset_after_bytes])
                self.wfile.flush()
                # SO_LINGER with a zero timeout turns close() into a TCP reset, not an orderly FIN.
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.connection.close()
                self.close_connection = True
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True  # the client gave up first (its timeout): nothing to answer

        def log_message(self, format: str, *args: object) -> None:
            """Quiet: tests assert on `server.seen`, not on a log."""

    return Handler
