"""What happens around the real work of a request: counting, latency and injected faults.

The outermost middleware of the sandbox. It counts each request by method and route template,
stamps it with the state's reset epoch (a request from before a reset answers 503 and changes
nothing: tenancy.py's dependency checks again right before the handler),
sleeps `latency_ms` without blocking the loop, answers 503/429 on the models, datasets,
endpoints and policies routes before anything else, and loses the response of a committed
write by closing the connection after the headers. Uvicorn logs that abort as an error; a filter
on its logger keeps it quiet.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from starlette.routing import BaseRoute, compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from reconciler.sandbox.state import EPOCH_KEY, SandboxState

# The routes faults hit: the four kinds a reconciler writes (not /health, not the tenants).
FAULT_PREFIXES = (
    "/api/v1/models",
    "/api/v1/datasets",
    "/api/v1/endpoints",
    "/api/v1/policies",
)
_WRITES = frozenset({"POST", "PATCH", "DELETE"})


class ResponseDropped(Exception):
    """Raised on purpose after the headers went out, so that uvicorn closes the connection."""


class _QuietDrops(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, ResponseDropped)


def quiet_uvicorn_errors() -> None:
    """Keep intended aborts out of uvicorn's error log (no traceback on the terminal)."""
    logger = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _QuietDrops) for f in logger.filters):
        logger.addFilter(_QuietDrops())


@dataclass(frozen=True)
class RouteTemplate:
    """One route as the request counts name it: "/api/v1/models/{name}"."""

    template: str
    pattern: re.Pattern[str]
    methods: frozenset[str]


def route_templates(routes: Sequence[BaseRoute]) -> tuple[RouteTemplate, ...]:
    """The app's routes, flattened (newer FastAPI nests included routers), in matching order."""
    try:
        from fastapi.routing import iter_route_contexts
    except ImportError:  # older FastAPI flattens included routers itself
        flat: Iterable[Any] = routes
    else:
        flat = iter_route_contexts(routes)
    found = []
    for route in flat:
        path = getattr(route, "path", None)
        if isinstance(path, str):
            methods = frozenset(getattr(route, "methods", None) or ())
            found.append(RouteTemplate(path, compile_path(path)[0], methods))
    return tuple(found)


def route_template(templates: Sequence[RouteTemplate], method: str, path: str) -> str:
    """The template of the route a request is for, as the router picks it; else the bare path."""
    partial = None
    for route in templates:
        if route.pattern.match(path):
            if method in route.methods:
                return route.template
            if partial is None:
                partial = route.template
    return partial or path


async def send_body(
    send: Send, status: int, content: bytes, headers: Sequence[tuple[bytes, bytes]] = ()
) -> None:
    """A whole JSON response straight on the ASGI channel (for middleware that answers itself)."""
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-length", str(len(content)).encode()),
                (b"content-type", b"application/json"),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": content})


async def _send_json(
    send: Send, status: int, body: dict[str, str], headers: list[tuple[bytes, bytes]]
) -> None:
    await send_body(send, status, json.dumps(body, separators=(",", ":")).encode(), headers)


class TrafficMiddleware:
    """Counting, latency and faults around the whole app (see the module docstring)."""

    def __init__(self, app: ASGIApp, *, state: SandboxState, routes: Sequence[BaseRoute]) -> None:
        self.app = app
        self.state = state
        # Built on the first request: the stack is built after all routes are in place.
        self.templates = route_templates(routes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = self.state
        config = state.config
        method = scope["method"]
        key = f"{method} {route_template(self.templates, method, scope['path'])}"
        scope[EPOCH_KEY] = state.epoch
        state.count_request(key)
        if config.latency_ms:
            await asyncio.sleep(config.latency_ms / 1000)
            if state.stale(scope):
                # Reset while it waited (a killed client's request, a test gone): it must not
                # write into the next test's state, nor count there.
                await _send_json(send, 503, {"detail": "Service Unavailable"}, [])
                return

        faulty = scope["path"].startswith(FAULT_PREFIXES)
        if faulty and state.draw(config.fail_503_rate):
            state.count_outcome(key, "503")
            await _send_json(send, 503, {"detail": "Service Unavailable"}, [])
            return
        if faulty and state.draw(config.fail_429_rate):
            state.count_outcome(key, "429")
            retry_after = f"{config.retry_after_s:g}".encode()
            await _send_json(send, 429, {"detail": "Too Many Requests"}, [(b"retry-after", retry_after)])
            return
        if faulty and state.draw(config.reset_rate):
            state.count_outcome(key, "reset")
            # Nothing was processed: a status line promising a body, then the connection closes.
            await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"1")]})
            raise ResponseDropped(key)
        may_drop = faulty and method in _WRITES and config.drop_after_commit_rate > 0
        slow = faulty and state.draw(config.slow_rate)

        async def watched_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                status = message["status"]
                if slow:  # the work is done and committed; only the answer is late
                    state.count_outcome(key, "slow")
                    await asyncio.sleep(config.slow_ms / 1000)
                if may_drop and 200 <= status < 300 and state.draw(config.drop_after_commit_rate):
                    state.count_outcome(key, "dropped")
                    # Headers (with Content-Length) go out, the body never does: the client
                    # sees the connection close mid-response, after the write committed.
                    await send(message)
                    raise ResponseDropped(key)
                if not state.stale(scope):
                    state.count_outcome(key, str(status))
            await send(message)

        await self.app(scope, receive, watched_send)
