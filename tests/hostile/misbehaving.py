"""A misbehaving Syft Space for tests: slow, trickling, endless, echoing, lying, resetting.

`Misbehaving()` is a loopback HTTP/1.1 server with a tiny in-memory space (list, get, create,
patch, delete, types, tenants) that behaves, until a test scripts a route otherwise:

    with Misbehaving() as space:
        space.script("GET", "/api/v1/models/", trickle(b"[]", every=0.2))
        run = cli("plan", root, "--server", space.url, "--timeout", "1")

A script is `action(handler, body_bytes)`; the helpers below write raw bytes to the socket, so a
server can break the protocol in ways a framework would not let it. Every slow action gives up
after `MAX_STALL_S`, or as soon as the client is gone, so a test never leaves a thread behind.

`Misbehaving(upstream=sandbox.url)` passes every request that is not scripted to that server
instead (the sandbox: every kind, as the real server has them), so a test scripts only the lie:

    with Misbehaving(upstream=sandbox.url) as space:
        space.script("POST", "/api/v1/datasets/", answer(201, {"id": "1", "name": "other", ...}))
"""

from __future__ import annotations

import json
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

MAX_STALL_S = 20.0
Action = Callable[[BaseHTTPRequestHandler, bytes], None]

OPENAI_TYPE = {
    "name": "openai",
    "description": "",
    "icon": "",
    "enabled": True,
    "config_schema": {
        "type": "object",
        "properties": {"api_key": {"type": "string"}, "model": {"type": "string"}},
        "required": ["api_key", "model"],
    },
}
OLLAMA_TYPE = {
    "name": "ollama",
    "description": "",
    "icon": "",
    "enabled": True,
    "config_schema": {"type": "object", "properties": {"model": {"type": "string"}}},
}


def send(
    handler: BaseHTTPRequestHandler,
    status: int,
    body: bytes,
    *,
    content_type: str = "application/json",
    headers: dict[str, str] | None = None,
) -> None:
    handler.send_response(status)
    handler.send_header("Content-Type", content_type)
    handler.send_header("Content-Length", str(len(body)))
    for key, value in (headers or {}).items():
        handler.send_header(key, value)
    handler.end_headers()
    handler.wfile.write(body)


def answer(status: int, data: Any, **headers: str) -> Action:
    """A JSON answer (`data` may be bytes, sent as is)."""
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    return lambda handler, body: send(
        handler, status, raw, headers={k.replace("_", "-"): v for k, v in headers.items()}
    )


def text(status: int, body: str) -> Action:
    return lambda handler, _: send(handler, status, body.encode(), content_type="text/plain")


def _stopped(handler: BaseHTTPRequestHandler) -> bool:
    return bool(getattr(handler.server, "stopping", False))


def trickle(body: bytes, *, every: float = 0.2, headers_too: bool = False) -> Action:
    """Announce the whole length, then send one byte per `every` seconds (headers too, if asked)."""

    def act(handler: BaseHTTPRequestHandler, _: bytes) -> None:
        head = f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode()
        data = head + body if headers_too else body
        if not headers_too:
            handler.wfile.write(head)
        deadline = time.monotonic() + MAX_STALL_S
        for i in range(len(data)):
            if time.monotonic() > deadline or _stopped(handler):
                break
            try:
                handler.wfile.write(data[i : i + 1])
                handler.wfile.flush()
            except OSError:
                return
            time.sleep(every)
        handler.close_connection = True

    return act


def endless(item: dict[str, Any] | None = None) -> Action:
    """A chunked JSON list that never ends (until the client hangs up, or MAX_STALL_S)."""
    piece = (json.dumps(item or {"name": "x", "dtype": "openai", "configuration": {}}) + ",").encode() * 512

    def act(handler: BaseHTTPRequestHandler, _: bytes) -> None:
        handler.wfile.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        chunk = f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
        try:
            handler.wfile.write(b"1\r\n[\r\n")
            deadline = time.monotonic() + MAX_STALL_S
            while time.monotonic() < deadline and not _stopped(handler):
                handler.wfile.write(chunk)
        except OSError:
            pass
        handler.close_connection = True

    return act


def hang(handler: BaseHTTPRequestHandler, _: bytes) -> None:
    """Read the request, answer nothing until the client gives up."""
    handler.connection.settimeout(0.2)
    deadline = time.monotonic() + MAX_STALL_S
    while time.monotonic() < deadline and not _stopped(handler):
        try:
            if handler.connection.recv(1, socket.MSG_PEEK) == b"":
                break
        except TimeoutError:
            continue
        except OSError:
            break
    handler.close_connection = True


def reset(handler: BaseHTTPRequestHandler, _: bytes) -> None:
    """Drop the connection with a TCP RST instead of an answer."""
    handler.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    handler.close_connection = True
    handler.connection.close()


def echo(status: int = 500, *, as_json: bool = False) -> Action:
    """An error page that quotes the request back: headers (the token) and body (the api_key)."""

    def act(handler: BaseHTTPRequestHandler, body: bytes) -> None:
        # on one line, body first: a client that shows only the first line still shows it all
        headers = "; ".join(f"{k}: {v}" for k, v in handler.headers.items())
        quoted = f"{body.decode(errors='replace')} {handler.command} {handler.path} {headers}"
        if as_json:
            send(handler, status, json.dumps({"detail": quoted}).encode())
        else:
            send(handler, status, quoted.encode(), content_type="text/plain")

    return act


def redirect_to(path: str, status: int = 307) -> Action:
    return lambda handler, _: send(handler, status, b"", headers={"Location": path})


def deep_json(depth: int) -> bytes:
    return (
        b'[{"name": "deep", "dtype": "openai", "configuration": {"x": ' + b"[" * depth + b"]" * depth + b"}}]"
    )


class Misbehaving:
    """The server; use as a context manager. `requests` records (method, path, headers, body)."""

    def __init__(self, *, host: str = "127.0.0.1", upstream: str | None = None) -> None:
        owner = self
        self.upstream = httpx.Client(base_url=upstream, timeout=MAX_STALL_S) if upstream else None
        self.models: list[dict[str, Any]] = []
        self.types: list[Any] = [OPENAI_TYPE, OLLAMA_TYPE]
        self.requests: list[tuple[str, str, dict[str, str], bytes]] = []
        self._scripts: dict[tuple[str, str], Action] = {}
        self._lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                with owner._lock:
                    owner.requests.append((self.command, self.path, dict(self.headers), body))
                    action = owner._scripts.get((self.command, self.path))
                unscripted = owner.forward if owner.upstream is not None else owner._normal
                try:
                    (action or unscripted)(self, body)
                except OSError:
                    self.close_connection = True

            do_GET = do_POST = do_PATCH = do_DELETE = _handle

        self._server = ThreadingHTTPServer((host, 0), Handler)
        self._server.daemon_threads = True
        self._server.stopping = False  # type: ignore[attr-defined]
        self.url = f"http://{host}:{self._server.server_address[1]}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    def script(self, method: str, path: str, action: Action) -> None:
        with self._lock:
            self._scripts[(method, path)] = action

    def forward(self, handler: BaseHTTPRequestHandler, body: bytes) -> None:
        """Pass the request to the upstream server and its answer back (with `upstream`)."""
        assert self.upstream is not None
        headers = {
            k: v
            for k, v in handler.headers.items()
            if k.lower() not in ("host", "content-length", "connection")
        }
        got = self.upstream.request(handler.command, handler.path, headers=headers, content=body)
        content_type = got.headers.get("content-type", "application/json")
        send(handler, got.status_code, got.content, content_type=content_type)

    def _normal(self, handler: BaseHTTPRequestHandler, body: bytes) -> None:
        path, method = handler.path, handler.command
        if path == "/api/v1/models/types/":
            return send(handler, 200, json.dumps(self.types).encode())
        if path == "/api/v1/models/" and method == "GET":
            return send(handler, 200, json.dumps(self.models).encode())
        if path.startswith("/api/v1/tenants/"):
            return send(
                handler, 200, json.dumps({"name": path.rsplit("/", 1)[1], "is_active": True}).encode()
            )
        if path == "/api/v1/models/" and method == "POST":
            data = json.loads(body)
            self.models.append(data)
            return send(handler, 201, json.dumps({**data, "id": str(len(self.models))}).encode())
        name = path.rsplit("/", 1)[1]
        found = [m for m in self.models if m["name"] == name]
        if not found:
            return send(handler, 404, b'{"detail": "Model not found"}')
        if method == "DELETE":
            self.models.remove(found[0])
            return send(handler, 200, b'{"message": "deleted"}')
        if method == "PATCH":
            found[0].update(json.loads(body))
        return send(handler, 200, json.dumps(found[0]).encode())

    def __enter__(self) -> Misbehaving:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.stopping = True  # type: ignore[attr-defined]
        self._server.shutdown()
        self._server.server_close()
        if self.upstream is not None:
            self.upstream.close()


def serve() -> Iterator[Misbehaving]:
    """The pytest fixture body (tests/hostile/conftest.py)."""
    with Misbehaving() as space:
        yield space
