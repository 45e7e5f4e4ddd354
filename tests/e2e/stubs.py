"""Tiny loopback HTTP servers for cases the sandbox must not imitate (hostile or odd servers)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Route = Callable[[BaseHTTPRequestHandler, Any], tuple[int, Any, dict[str, str]]]


@contextmanager
def stub_server(
    route: Route, *, host: str = "127.0.0.1", ssl_context: Any = None
) -> Iterator[tuple[str, list]]:
    """Serve `route(handler, body) -> (status, json body, headers)`; yields (url, seen requests)."""
    seen: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length)) if length else None
            seen.append({"method": self.command, "path": self.path, "headers": dict(self.headers)})
            status, payload, headers = route(self, body)
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for key, value in headers.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PATCH = do_DELETE = _handle

    server = ThreadingHTTPServer((host, 0), Handler)
    scheme = "http"
    if ssl_context is not None:
        server.socket = ssl_context.wrap_socket(server.socket, server_side=True)
        scheme = "https"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"{scheme}://{host}:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


def empty_space(handler: BaseHTTPRequestHandler, body: Any) -> tuple[int, Any, dict[str, str]]:
    """A server with the openai type and no models, that creates whatever it is sent."""
    if handler.path == "/api/v1/models/types/":
        return (
            200,
            [{"name": "openai", "description": "", "config_schema": {}, "icon": "", "enabled": True}],
            {},
        )
    if handler.command == "POST":
        return (
            201,
            {**body, "id": "00000000-0000-0000-0000-000000000001", "created_at": "2026-11-26T00:00:00"},
            {},
        )
    return 200, [], {}
