"""What both loopback services share: a threaded server on 127.0.0.1, its lifecycle, and a
route table that maps (method, path) to a function of the request.

A client that stops reading (a test's deadline, Ctrl-C in ``invoke demo``) makes the handler's
next write fail with ``BrokenPipeError`` or ``ConnectionResetError``; ``socketserver`` would
print that as a traceback in the middle of the demo's output.  It is not an error of the
server's, so it is dropped; anything else is still printed.
"""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

# (status, a JSON-able body or bytes, extra headers); a route may leave the headers out.
Answer = tuple[int, Any, dict[str, str]] | tuple[int, Any]


@dataclass(frozen=True)
class Request:
    method: str
    target: str  # the path with its query, as sent
    path: str
    query: dict[str, list[str]]
    headers: Any  # http.client.HTTPMessage
    body: bytes


Route = Callable[[Request], Answer]


class LoopbackHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    """Hands every request to its service's ``serve``; made per service by ``LoopbackService``."""

    protocol_version = "HTTP/1.1"
    service: LoopbackService

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self.service.serve(self, "GET")

    def do_POST(self) -> None:
        self.service.serve(self, "POST")

    def do_PATCH(self) -> None:
        self.service.serve(self, "PATCH")

    def do_DELETE(self) -> None:
        self.service.serve(self, "DELETE")


def reply(handler: BaseHTTPRequestHandler, answer: Answer) -> None:
    """Send ``answer``: bytes as they are, anything else as JSON; a client gone is not an error."""
    status, body = answer[0], answer[1]
    headers = answer[2] if len(answer) > 2 else {}  # type: ignore[misc]
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    try:
        handler.send_response(status)
        if "Content-Type" not in headers:
            handler.send_header("Content-Type", "text/plain" if isinstance(body, bytes) else "application/json")
        handler.send_header("Content-Length", str(len(data)))
        for key, value in headers.items():
            handler.send_header(key, value)
        handler.end_headers()
        handler.wfile.write(data)
    except OSError:
        return


class LoopbackService:
    """A service on 127.0.0.1: ``start()``, ``stop()``, ``root`` (http://127.0.0.1:PORT).

    Subclasses give ``routes()``; one that must stream (the GitHub server's uploads and
    downloads) overrides ``serve`` and reads the request itself.
    """

    def __init__(self) -> None:
        self._server: ThreadingHTTPServer | None = None
        self.root = ""
        self.requests: list[tuple[str, str]] = []

    def routes(self) -> dict[tuple[str, str], Route]:
        return {}

    def serve(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        parts = urlsplit(handler.path)
        self.requests.append((method, parts.path))
        length = int(handler.headers.get("Content-Length") or 0)
        request = Request(
            method, handler.path, parts.path, parse_qs(parts.query), handler.headers, handler.rfile.read(length)
        )
        route = self.routes().get((method, parts.path))
        if route is None:
            reply(handler, (404, {"message": "not found"}))
            return
        try:
            answer = route(request)
        except (ValueError, KeyError, TypeError, OSError) as exc:
            answer = (400, {"message": f"bad request: {exc}"})
        reply(handler, answer)

    def start(self) -> Any:
        handler = type(f"{type(self).__name__}Handler", (_Handler,), {"service": self})
        server = LoopbackHTTPServer(("127.0.0.1", 0), handler)
        self.root = f"http://127.0.0.1:{server.server_address[1]}"
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self._server = server  # only a running server is ever shut down (shutdown() waits for its loop)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        self.stopped()

    def stopped(self) -> None:
        """Called once the server is down: release what the service holds (temp files)."""
