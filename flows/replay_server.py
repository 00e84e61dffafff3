"""A loopback HTTP server that replays the bundled demo snapshot in each source's real format.

`census demo` points every source's base URL at it, so the demo exercises the same clients, over
the same HTTP, as a nightly run against the live services. It binds 127.0.0.1 only.

Static files under the snapshot folder are served as they are (with ETag and Last-Modified, and
304 for conditional requests, as a CDN would). A source whose API answers depend on the query
registers a route: a path prefix and a function that turns the request into a response.
"""

from __future__ import annotations

import hashlib
import mimetypes
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import formatdate
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Self
from urllib.parse import parse_qs, urlsplit

DEMO_SNAPSHOT = Path(__file__).resolve().parent.parent / "demo" / "snapshot"
LOOPBACK = "127.0.0.1"


@dataclass
class Reply:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Request:
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    base_url: str


Route = Callable[[Request], Reply]


class LoopbackServer:
    """A threaded HTTP server on an ephemeral 127.0.0.1 port while the `with` block runs.

    Subclasses say how a request is answered (`handler_class`); this one only starts and stops.
    """

    thread_name = "loopback-server"

    def __init__(self) -> None:
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def handler_class(self) -> type[BaseHTTPRequestHandler]:
        raise NotImplementedError

    @property
    def url(self) -> str:
        assert self._server is not None, "the server is not running"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> Self:
        self._server = ThreadingHTTPServer((LOOPBACK, 0), self.handler_class())
        self._server.daemon_threads = True  # a handler sleeping past a client's timeout must not block shutdown
        self._thread = threading.Thread(target=self._server.serve_forever, name=self.thread_name, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        assert self._server is not None and self._thread is not None
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


class ReplayServer(LoopbackServer):
    """Serves `root` on an ephemeral loopback port while the `with` block runs."""

    thread_name = "replay-server"

    def __init__(self, root: Path = DEMO_SNAPSHOT, routes: dict[str, Route] | None = None) -> None:
        super().__init__()
        self.root = root.resolve()
        self.routes = dict(routes or {})

    def handler_class(self) -> type[BaseHTTPRequestHandler]:
        return _handler_for(self)

    def reply(self, request: Request) -> Reply:
        for prefix, route in sorted(self.routes.items(), key=lambda item: -len(item[0])):
            if request.path.startswith(prefix):
                return route(request)
        return self._static(request)

    def _static(self, request: Request) -> Reply:
        path = (self.root / request.path.lstrip("/")).resolve()
        if not path.is_relative_to(self.root) or not path.is_file():
            return Reply(HTTPStatus.NOT_FOUND, b"not found\n", {"Content-Type": "text/plain"})
        body = path.read_bytes()
        etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
        headers = {
            "ETag": etag,
            "Last-Modified": formatdate(path.stat().st_mtime, usegmt=True),
            "Content-Type": mimetypes.guess_type(path.name)[0] or "application/octet-stream",
        }
        if request.headers.get("if-none-match") == etag:
            return Reply(HTTPStatus.NOT_MODIFIED, b"", headers)
        return Reply(HTTPStatus.OK, body, headers)


def _handler_for(server: ReplayServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
            parts = urlsplit(self.path)
            request = Request(
                path=parts.path,
                query=parse_qs(parts.query),
                headers={key.lower(): value for key, value in self.headers.items()},
                base_url=server.url,
            )
            reply = server.reply(request)
            self.send_response(reply.status)
            for key, value in reply.headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(reply.body)

        # The Hub's file protocol asks HEAD first (commit and ETag), then GET: same headers, no body.
        do_HEAD = do_GET  # noqa: N815 (the stdlib's name)

        def log_message(self, format: str, *args: object) -> None:
            """Quiet: the pipeline's own log says what was fetched."""

    return Handler
