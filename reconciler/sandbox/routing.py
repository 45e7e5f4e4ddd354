"""How the sandbox registers routes and sends bodies, shared by every noun's module."""

from __future__ import annotations

import json
from collections.abc import Callable
from enum import Enum
from typing import Any, TypeVar

from fastapi import FastAPI
from fastapi.responses import PlainTextResponse, Response

_F = TypeVar("_F", bound=Callable[..., Any])

# The real server declares an HTTPBearer(auto_error=False) dependency on every /api/v1 route for
# its /openapi.json; the middleware does the checking. Running that no-op dependency costs ~9% of
# a request here, so we only declare it (`_SECURITY`, and the scheme in app.py).
_SECURITY: dict[str, Any] = {"security": [{"HTTPBearer": []}]}


def crash() -> Response:
    """The real server's unhandled error: 500 `Internal Server Error` as text, connection closed.

    (syft-space-api-kinds.md, "Races": after an unhandled 500 the server closes the keep-alive
    connection.) Uvicorn closes it after a response that says `Connection: close`.
    """
    return PlainTextResponse("Internal Server Error", status_code=500, headers={"connection": "close"})


def send_json(content: Any, status_code: int = 200) -> Response:
    text = (
        content
        if isinstance(content, str)
        else json.dumps(content, ensure_ascii=False, separators=(",", ":"))
    )
    return Response(text, status_code=status_code, media_type="application/json")


class Routes:
    """Registers routes straight on the app under a prefix, each declaring the bearer scheme.

    Not an APIRouter: newer FastAPI keeps included routers nested, and matching through them
    costs more than the rest of a request.
    """

    def __init__(self, app: FastAPI, prefix: str, *, tags: list[str]) -> None:
        self.app = app
        self.prefix = prefix
        self.tags: list[str | Enum] = list(tags)

    def _add(self, method: str, path: str, **kwargs: Any) -> Callable[[_F], _F]:
        def register(endpoint: _F) -> _F:
            self.app.add_api_route(
                self.prefix + path,
                endpoint,
                methods=[method],
                tags=self.tags,
                openapi_extra=_SECURITY,
                **kwargs,
            )
            return endpoint

        return register

    def get(self, path: str, **kwargs: Any) -> Callable[[_F], _F]:
        return self._add("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> Callable[[_F], _F]:
        return self._add("POST", path, **kwargs)

    def patch(self, path: str, **kwargs: Any) -> Callable[[_F], _F]:
        return self._add("PATCH", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> Callable[[_F], _F]:
        return self._add("DELETE", path, **kwargs)
