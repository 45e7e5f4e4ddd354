"""SpaceClient: the Syft Space models API over one pooled httpx.Client (the only httpx import).

Every foreign error and status becomes one of ours here (`raise … from`). Reads and PATCH/DELETE
retry with jittered backoff on connect errors, timeouts, 429 (Retry-After honoured) and 502/503/504;
POST never retries here: a create that may have landed needs a look-up first (apply.py).
Collection routes end with `/` and item routes do not, so the server never needs to redirect
(../shared/syft-space-api.md, "Trailing slashes"); a redirect to another origin is refused, so the
token never leaves the configured server.
"""

from __future__ import annotations

import ipaddress
import logging
import random
import ssl
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
from pydantic import ValidationError

from reconciler.errors import (
    AuthError,
    ReconcilerError,
    RetryableServerError,
    ServerError,
    ServerUnreachable,
    TenantNotFound,
    UncertainWrite,
)
from reconciler.model import ModelType, RemoteModel

log = logging.getLogger(__name__)

API = "/api/v1"
RETRYABLE_STATUS = (429, 502, 503, 504)
MAX_RETRY_AFTER = 30.0


@dataclass(frozen=True)
class RetryPolicy:
    """Backoff between attempts; len(delays) + 1 attempts in all. Jitter is ±`jitter` of each."""

    delays: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0, 4.0)
    jitter: float = 0.5
    max_delay: float = 10.0

    @classmethod
    def with_retries(cls, retries: int) -> RetryPolicy:
        """`retries` retries after the first attempt, doubling from 0.25 s up to 4 s."""
        return cls(delays=tuple(min(0.25 * 2**i, 4.0) for i in range(retries)))

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        if not self.delays:
            return 0.0
        base = self.delays[min(attempt, len(self.delays) - 1)]
        base *= 1 + random.uniform(-self.jitter, self.jitter)
        if retry_after is not None:
            base = max(base, min(retry_after, MAX_RETRY_AFTER))
        return min(base, max(self.max_delay, retry_after or 0.0))


def is_loopback(host: str) -> bool:
    if host in ("localhost", "localhost.localdomain") or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _detail(response: httpx.Response) -> str:
    """The server's words, without anything it echoed back (422 `input` carries the api_key)."""
    try:
        body = response.json()
    except ValueError:
        text = response.text.strip().splitlines()
        return text[0][:200] if text else response.reason_phrase
    detail = body.get("detail") if isinstance(body, dict) else None
    if isinstance(detail, str):
        return detail
    if isinstance(detail, list):
        parts = []
        for item in detail:
            if isinstance(item, dict):
                loc = ".".join(str(p) for p in item.get("loc", ()))
                parts.append(f"{loc}: {item.get('msg', '')}".strip(": "))
        return "; ".join(parts)
    return response.reason_phrase


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


class SpaceClient:
    """A Syft Space server (one tenant of it), shared safely across executor threads."""

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        tenant: str | None = None,
        timeout: float = 10.0,
        retry: RetryPolicy | None = None,
        insecure: bool = False,
        ca_cert: str | None = None,
        transport: httpx.BaseTransport | None = None,
        max_connections: int = 32,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        url = httpx.URL(base_url.rstrip("/"))
        if url.scheme not in ("http", "https") or not url.host:
            raise ReconcilerError(f"server URL {base_url!r} must look like https://space.example.org")
        if url.scheme == "http" and token and not insecure and not is_loopback(url.host):
            raise ReconcilerError(
                f"refusing to send the token over plain http to {url.host}; "
                "use https://, or pass --insecure if you really mean it"
            )
        self.base_url = str(url)
        self.tenant = tenant
        self.retry = retry or RetryPolicy()
        self.sleep = sleep
        self._origin = (url.scheme, url.host, url.port)
        headers = {"Accept": "application/json", "User-Agent": "syft-space-reconciler"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if tenant:
            headers["X-Tenant-Name"] = tenant
        verify: ssl.SSLContext | bool = True
        if ca_cert:
            verify = ssl.create_default_context(cafile=ca_cert)
        self._http = httpx.Client(
            base_url=self.base_url,
            headers=headers,
            timeout=timeout,
            follow_redirects=False,
            transport=transport,
            verify=verify,
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
        )
        self._count_lock = threading.Lock()
        self.requests = 0
        self.timeout = timeout

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> SpaceClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- one request ------------------------------------------------------------------------

    def _send(self, method: str, path: str, body: Any = None) -> httpx.Response:
        with self._count_lock:
            self.requests += 1
        try:
            response = self._http.request(method, path, json=body)
        except httpx.ConnectTimeout as exc:
            raise ServerUnreachable(f"cannot connect to {self.base_url}: timed out") from exc
        except httpx.ConnectError as exc:
            raise ServerUnreachable(f"cannot connect to {self.base_url}: {_reason(exc)}") from exc
        except httpx.TimeoutException as exc:
            raise UncertainWrite(
                f"{method} {path}: no answer from {self.base_url} within {self.timeout:g}s"
            ) from exc
        except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError) as exc:
            raise UncertainWrite(f"{method} {path}: connection lost ({_reason(exc)})") from exc
        except httpx.HTTPError as exc:
            raise ServerUnreachable(f"{method} {path}: {_reason(exc)}") from exc
        if response.is_redirect:
            return self._redirect(method, path, body, response)
        return response

    def _redirect(self, method: str, path: str, body: Any, response: httpx.Response) -> httpx.Response:
        target = response.url.join(response.headers.get("location", ""))
        if (target.scheme, target.host, target.port) != self._origin:
            raise ServerError(
                f"{method} {path}: the server redirected to {target.scheme}://{target.host}; "
                "not following (the token is only sent to the configured server)",
                status=response.status_code,
            )
        with self._count_lock:
            self.requests += 1
        second = self._http.request(method, target, json=body)
        if second.is_redirect:
            raise ServerError(f"{method} {path}: redirect loop", status=second.status_code)
        return second

    def _check(self, method: str, path: str, response: httpx.Response) -> httpx.Response:
        status = response.status_code
        if status < 400:
            return response
        detail = _detail(response)
        where = f"{method} {path}"
        if status in (401, 403) and "tenant" not in detail.lower():
            raise AuthError(
                f"{where}: the server refused our credentials ({status} {detail}); "
                "check SYFT_SPACE_TOKEN / --token"
            )
        if status in RETRYABLE_STATUS:
            raise RetryableServerError(
                f"{where}: server busy ({status} {detail})",
                status=status, detail=detail, retry_after=_retry_after(response),
            )
        raise ServerError(f"{where}: {status} {detail}", status=status, detail=detail)

    def _request(self, method: str, path: str, body: Any = None, *, retry: bool = True) -> httpx.Response:
        attempts = len(self.retry.delays) + 1 if retry else 1
        for attempt in range(attempts):
            try:
                return self._check(method, path, self._send(method, path, body))
            except (ServerUnreachable, RetryableServerError) as exc:
                if not retry:
                    raise  # the caller retries (creates: apply.py looks the name up first)
                if attempt + 1 >= attempts:
                    log.warning("attempt %d/%d failed; giving up: %s", attempt + 1, attempts, exc)
                    raise
                delay = self.retry.delay(attempt, getattr(exc, "retry_after", None))
                log.info("attempt %d/%d failed; will retry in %.2fs: %s", attempt + 1, attempts, delay, exc)
                self.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    @staticmethod
    def _json(method: str, path: str, response: httpx.Response) -> Any:
        try:
            return response.json()
        except ValueError as exc:
            raise ServerError(
                f"{method} {path}: the server answered {response.status_code} with a body that is not JSON",
                status=response.status_code,
            ) from exc

    def _model(self, method: str, path: str, response: httpx.Response) -> RemoteModel:
        data = self._json(method, path, response)
        try:
            return RemoteModel.model_validate(data)
        except ValidationError as exc:
            raise ServerError(f"{method} {path}: unexpected model shape from the server") from exc

    # -- the API ----------------------------------------------------------------------------

    @staticmethod
    def item(name: str) -> str:
        """Item path; every name is percent-encoded (spaces, %, ?, unicode round-trip)."""
        return f"{API}/models/{quote(name, safe='')}"

    def list_models(self) -> list[RemoteModel]:
        """All models, in one request: the real server does not paginate (API facts, List)."""
        path = f"{API}/models/"
        data = self._json("GET", path, self._request("GET", path))
        if not isinstance(data, list):
            raise ServerError(f"GET {path}: expected a list of models")
        try:
            return [RemoteModel.model_validate(item) for item in data]
        except ValidationError as exc:
            raise ServerError(f"GET {path}: unexpected model shape from the server") from exc

    def get_model(self, name: str) -> RemoteModel | None:
        path = self.item(name)
        try:
            response = self._request("GET", path)
        except ServerError as exc:
            if exc.status == 404:
                return None
            raise
        return self._model("GET", path, response)

    def create_model(self, body: dict[str, Any]) -> RemoteModel:
        """One POST, no retry: the caller decides what a failure means (apply.py)."""
        path = f"{API}/models/"
        return self._model("POST", path, self._request("POST", path, body, retry=False))

    def patch_model(self, name: str, body: dict[str, Any]) -> RemoteModel:
        path = self.item(name)
        return self._model("PATCH", path, self._request("PATCH", path, body))

    def delete_model(self, name: str) -> bool:
        """Delete; False when it was already gone (a 200 does not prove this call removed it)."""
        path = self.item(name)
        try:
            self._request("DELETE", path)
        except ServerError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    def list_types(self) -> list[ModelType]:
        path = f"{API}/models/types/"
        data = self._json("GET", path, self._request("GET", path))
        if not isinstance(data, list):
            raise ServerError(f"GET {path}: expected a list of model types")
        return [
            ModelType(str(t.get("name")), dict(t.get("config_schema") or {}), str(t.get("description") or ""),
                      bool(t.get("enabled", True)))
            for t in data
            if isinstance(t, dict)
        ]

    def check_tenant(self) -> None:
        """A single-tenant server ignores X-Tenant-Name and would write into `root`: ask first."""
        if not self.tenant:
            return
        path = f"{API}/tenants/{quote(self.tenant, safe='')}"
        try:
            response = self._request("GET", path)
        except ServerError as exc:
            if exc.status == 404:
                raise TenantNotFound(
                    f"tenant {self.tenant!r} does not exist on {self.base_url}; nothing was written"
                ) from exc
            raise
        data = self._json("GET", path, response)
        if isinstance(data, dict) and data.get("is_active") is False:
            raise TenantNotFound(f"tenant {self.tenant!r} on {self.base_url} is not active; nothing was written")

    def tenant_names(self) -> Sequence[str]:
        path = f"{API}/tenants"
        data = self._json("GET", path, self._request("GET", path))
        return [str(t.get("name")) for t in data if isinstance(t, dict)] if isinstance(data, list) else []


def _reason(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0][:200]
