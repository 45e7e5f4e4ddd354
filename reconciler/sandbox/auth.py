"""The admin key, checked before routing and before tenants, as the real server's middleware does.

Only the exact `Authorization: Bearer <key>` passes. Public without a key: the static paths
(`/docs*`, `/redoc*`, `/openapi.json*`, `/frontend*`, exactly `/`) and the public routes, matched
per method (`HEAD /api/v1/health` is not public). See syft-space-api.md, "Auth".
"""

from __future__ import annotations

import re

from starlette.routing import compile_path
from starlette.types import ASGIApp, Receive, Scope, Send

from reconciler.sandbox.state import SandboxState

_STATIC_PREFIXES = ("/docs", "/redoc", "/openapi.json", "/frontend")
_PUBLIC_ROUTES: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (method, compile_path(path)[0])
    for method, path in (
        ("GET", "/api/v1/health"),
        ("GET", "/api/v1/models/{name}/health"),
        ("GET", "/api/v1/datasets/{name}/health"),
        ("POST", "/api/v1/endpoints/{slug}/query"),
    )
)
_DENIED = b'{"detail":"Admin API key required"}'


def is_public(method: str, path: str) -> bool:
    if path == "/" or path.startswith(_STATIC_PREFIXES):
        return True
    return any(method == m and pattern.match(path) for m, pattern in _PUBLIC_ROUTES)


def header(scope: Scope, name: bytes) -> str | None:
    """The first value of a request header, decoded as Starlette does (latin-1)."""
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


class AdminKeyMiddleware:
    """401 `Admin API key required` unless public or the exact bearer key (no WWW-Authenticate)."""

    def __init__(self, app: ASGIApp, *, state: SandboxState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        token = self.state.config.token
        if (
            scope["type"] != "http"
            or token is None
            or is_public(scope["method"], scope["path"])
            or header(scope, b"authorization") == f"Bearer {token}"
        ):
            await self.app(scope, receive, send)
            return
        await send(
            {
                "type": "http.response.start",
                "status": 401,
                "headers": [
                    (b"content-length", str(len(_DENIED)).encode()),
                    (b"content-type", b"application/json"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": _DENIED})
