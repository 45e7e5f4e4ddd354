"""SpaceClient: the Syft Space models API over one pooled httpx.Client (with transport.py, the
bounded wire under it, the only httpx code).

Every foreign error and status becomes one of ours here (`raise … from`). Reads and PATCH/DELETE
retry with jittered backoff on connect errors, timeouts, 429 (Retry-After honoured) and 502/503/504;
POST never retries here: a create that may have landed needs a look-up first (apply.py).
Collection routes end with `/` and item routes do not, so the server never needs to redirect
(../shared/syft-space-api.md, "Trailing slashes"); a redirect to another origin is refused, so the
token never leaves the configured server.

Bounded (transport.py): `timeout` bounds a whole exchange (connect, send, every read of headers and
body) through a deadline the network layer checks on each read, so a server trickling bytes cannot
hold a call; a body has a size cap and a nesting cap. Proxies from the environment are never used for a
loopback server (the token would travel in clear to the proxy); a URL password and the token are
registered with the scrubber (redact.py), and no message built from an httpx error quotes a header.
What the server answers is checked: a create or update that answers with another model, a list
with a name twice, a non-object `config_schema` are errors, not quiet successes.
"""

from __future__ import annotations

import errno
import json
import logging
import math
import os
import ssl
import stat
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpcore
import httpx
from pydantic import ValidationError

from reconciler import redact
from reconciler import transport as wire
from reconciler.backoff import Backoff
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
MAX_CA_FILE = 10 * 1024 * 1024


@dataclass(frozen=True)
class Waiting:
    """The client is about to wait before trying a request again."""

    attempt: int
    """The attempt that comes next (2 for the first retry)."""
    attempts: int
    delay: float
    reason: str

    def __str__(self) -> str:
        return (
            f"the server did not answer ({self.reason}); trying again in {self.delay:.1f}s "
            f"(attempt {self.attempt} of {self.attempts})"
        )


def _detail(response: httpx.Response) -> str:
    """The server's words, without anything it echoed back (422 `input` carries the api_key)."""
    try:
        body = response.json()
    except (ValueError, RecursionError):
        text = response.text.strip().splitlines()
        return redact.scrub(text[0][:200]) if text else response.reason_phrase
    detail = body.get("detail") if isinstance(body, dict) else None
    if isinstance(detail, str):
        return redact.scrub(detail.strip().splitlines()[0][:200] if detail.strip() else detail)
    if isinstance(detail, list):
        parts = []
        for item in detail:
            if isinstance(item, dict):
                raw_loc = item.get("loc")
                loc = ".".join(str(p) for p in raw_loc) if isinstance(raw_loc, list) else ""
                parts.append(f"{loc}: {item.get('msg', '')}".strip(": "))
        return redact.scrub("; ".join(parts)[:500])
    return response.reason_phrase


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def _headers(token: str | None, tenant: str | None) -> dict[str, str]:
    """What every request carries: the token and the tenant, when given."""
    headers = {"Accept": "application/json", "User-Agent": "syft-space-reconciler"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if tenant:
        headers["X-Tenant-Name"] = tenant
    return headers


def _verify(ca_cert: str | None) -> ssl.SSLContext:
    """The TLS verification of --ca-cert: a context trusting that bundle, else httpx's default
    (certifi's bundle, or SSL_CERT_FILE/SSL_CERT_DIR when set)."""
    if not ca_cert:
        return httpx.create_ssl_context()
    try:
        info = os.stat(ca_cert)
        if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_CA_FILE:
            # OpenSSL would read /dev/zero or a FIFO until memory or patience runs out
            raise OSError(errno.EINVAL, "not a regular file of at most 10 MiB")
        return ssl.create_default_context(cafile=ca_cert)
    except (OSError, ssl.SSLError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or getattr(exc, "reason", None) or "not a PEM CA bundle"
        raise ReconcilerError(f"cannot use --ca-cert {ca_cert}: {reason}") from None


def _http_client(
    url: httpx.URL,
    *,
    headers: dict[str, str],
    timeout: float,
    transport: httpx.BaseTransport | None,
    verify: ssl.SSLContext,
    max_connections: int,
) -> httpx.Client:
    """The pooled httpx.Client over transport.DeadlineTransport (a test may pass its own), never
    following redirects itself (SpaceClient._redirect does). The proxy is chosen once, by
    transport.proxy_for: an HTTP(S)_PROXY would carry a loopback request (and its token) to another
    host, in clear for http://, and a proxy cannot reach our loopback anyway."""
    try:
        if transport is None:
            transport = wire.DeadlineTransport(
                ssl_context=verify, proxy=wire.proxy_for(url), max_connections=max_connections
            )
        return httpx.Client(
            # URL credentials would replace the bearer token (httpx sends them as Basic auth);
            # the API's one credential is the token, so they are dropped (and never printed)
            base_url=str(url.copy_with(username=None, password=None)),
            headers=headers,
            timeout=timeout,
            follow_redirects=False,
            transport=transport,
            trust_env=False,
        )
    except (ValueError, TypeError, httpx.InvalidURL) as exc:  # a malformed *_PROXY variable, a header
        raise ReconcilerError(f"cannot set up the HTTP client: {wire.reason(exc)}") from None


_ENCODING_HEADERS = (b"content-encoding", b"content-length", b"transfer-encoding")


def _answered(streamed: httpx.Response, body: bytes) -> httpx.Response:
    """The answer with its whole (decoded) body in hand, as a plain Response: status, headers
    without the encoding ones (the body is decoded already), request and reason phrase."""
    headers = [(k, v) for k, v in streamed.headers.raw if k.lower() not in _ENCODING_HEADERS]
    return httpx.Response(
        streamed.status_code,
        headers=headers,
        content=body,
        request=streamed.request,
        extensions=streamed.extensions,
    )


@dataclass(frozen=True)
class JsonAnswer:
    """A successful answer's status and its JSON body (bounded: transport.bounded_json)."""

    status: int
    data: Any


class SpaceClient:
    """A Syft Space server (one tenant of it), shared safely across executor threads."""

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        tenant: str | None = None,
        timeout: float = 10.0,
        retry: Backoff | None = None,
        insecure: bool = False,
        ca_cert: str | None = None,
        transport: httpx.BaseTransport | None = None,
        max_connections: int = 32,
        sleep: Callable[[float], None] = time.sleep,
        max_body: int = wire.MAX_BODY,
        on_wait: Callable[[Waiting], None] | None = None,
    ) -> None:
        url = wire.parse_url(base_url)
        loopback = wire.is_loopback(url.host)
        if url.scheme == "http" and token and not insecure and not loopback:
            raise ReconcilerError(
                f"refusing to send the token over plain http to {url.host}; "
                "use https://, or pass --insecure if you really mean it"
            )
        verify = _verify(ca_cert)
        if not (timeout > 0 and math.isfinite(timeout)):
            raise ReconcilerError(f"--timeout must be a positive number of seconds, got {timeout}")
        self.base_url = redact.url_without_userinfo(str(url))
        self.tenant = tenant
        self.retry = retry or Backoff()
        self.sleep = sleep
        self.on_wait = on_wait or (lambda waiting: None)
        """Told before every wait between attempts, so that waiting is visible (the CLI says it once,
        the daemon logs each)."""
        self._origin = (url.scheme, url.host, url.port)
        self._http = _http_client(
            url,
            headers=_headers(token, tenant),
            timeout=timeout,
            transport=transport,
            verify=verify,
            max_connections=max_connections,
        )
        self._count_lock = threading.Lock()
        self.requests = 0
        self.timeout = timeout
        self.max_body = max_body

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> SpaceClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- one request ------------------------------------------------------------------------

    def _send(self, method: str, path: str, body: Any = None) -> httpx.Response:
        response = self._exchange(method, path, path, body)
        if response.is_redirect:
            return self._redirect(method, path, body, response)
        return response

    def _exchange(self, method: str, path: str, target: str | httpx.URL, body: Any) -> httpx.Response:
        """One request and its whole body within `timeout`, every httpx error translated."""
        with self._count_lock:
            self.requests += 1
        try:
            request = self._http.build_request(method, target, json=body)
        except (ValueError, TypeError, UnicodeError) as exc:  # NaN, a lone surrogate: never sent
            raise ReconcilerError(
                f"{method} {path}: the request body cannot be sent as JSON ({type(exc).__name__})"
            ) from None
        try:
            with wire.deadline(self.timeout):
                streamed = self._http.send(request, stream=True)
                try:
                    response = _answered(streamed, self._read_body(method, path, streamed))
                finally:
                    streamed.close()
        except httpx.ConnectTimeout as exc:
            raise ServerUnreachable(f"cannot connect to {self.base_url}: timed out") from exc
        except httpx.ConnectError as exc:
            raise ServerUnreachable(f"cannot connect to {self.base_url}: {wire.reason(exc)}") from exc
        except httpx.TimeoutException as exc:
            raise UncertainWrite(
                f"{method} {path}: no complete answer from {self.base_url} within {self.timeout:g}s"
            ) from exc
        except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError) as exc:
            raise UncertainWrite(f"{method} {path}: connection lost ({wire.reason(exc)})") from exc
        except httpx.HTTPError as exc:
            raise ServerUnreachable(f"{method} {path}: {wire.reason(exc)}") from exc
        except (httpcore.TimeoutException, TimeoutError) as exc:  # pragma: no cover - httpx maps these
            raise UncertainWrite(f"{method} {path}: no complete answer within {self.timeout:g}s") from exc
        return response

    def _read_body(self, method: str, path: str, response: httpx.Response) -> bytes:
        """The body, decoded, at most `max_body` bytes, before the deadline (a mock transport too)."""
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_bytes():
            size += len(chunk)
            if size > self.max_body:
                raise ServerError(
                    f"{method} {path}: the answer is larger than {self.max_body // 1048576 or 1} MiB; "
                    "stopped reading",
                    status=response.status_code,
                )
            chunks.append(chunk)
            wire.check_deadline()
        return b"".join(chunks)

    def _redirect(self, method: str, path: str, body: Any, response: httpx.Response) -> httpx.Response:
        try:
            target = response.url.join(response.headers.get("location", ""))
        except (httpx.InvalidURL, ValueError, UnicodeError):
            raise ServerError(
                f"{method} {path}: the server redirected to an invalid URL", status=response.status_code
            ) from None
        if (target.scheme, target.host, target.port) != self._origin:
            raise ServerError(
                f"{method} {path}: the server redirected to {target.scheme}://{target.host}; "
                "not following (the token is only sent to the configured server)",
                status=response.status_code,
            )
        second = self._exchange(method, path, target, body)
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
                status=status,
                detail=detail,
                retry_after=_retry_after(response),
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
                    log.debug("attempt %d/%d failed; giving up: %s", attempt + 1, attempts, exc)
                    raise  # reported once, by whoever catches it
                delay = self.retry.delay(attempt, getattr(exc, "retry_after", None))
                log.debug("attempt %d/%d failed; will retry in %.2fs: %s", attempt + 1, attempts, delay, exc)
                self.on_wait(Waiting(attempt + 2, attempts, delay, str(exc)))
                self.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    @staticmethod
    def _json(method: str, path: str, response: httpx.Response) -> Any:
        try:
            data = json.loads(response.content)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ServerError(
                f"{method} {path}: the server answered {response.status_code} with a body that is not JSON",
                status=response.status_code,
            ) from exc
        except RecursionError:
            data = None
        else:
            bounded = wire.bounded_json(data, response.content)
            if bounded is not None or data is None:
                return bounded
        raise ServerError(
            f"{method} {path}: the answer nests deeper than {wire.MAX_DEPTH} levels; not read",
            status=response.status_code,
        )

    def request_json(self, method: str, path: str, body: Any = None, *, retry: bool = True) -> JsonAnswer:
        """One call of the API and its JSON answer; every failure is one of our errors.

        With `retry`, connect errors, timeouts, 429 and 502/503/504 are tried again with backoff;
        a create passes retry=False, since one that may have landed needs a look-up first (apply.py).
        """
        response = self._request(method, path, body, retry=retry)
        return JsonAnswer(response.status_code, self._json(method, path, response))

    def delete(self, path: str) -> bool:
        """DELETE an item; False when it was already gone (a 200 does not prove this call removed it)."""
        try:
            self._request("DELETE", path)
        except ServerError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    @staticmethod
    def _model(method: str, path: str, answer: JsonAnswer) -> RemoteModel:
        try:
            return RemoteModel.model_validate(answer.data)
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
        data = self.request_json("GET", path).data
        if not isinstance(data, list):
            raise ServerError(f"GET {path}: expected a list of models")
        try:
            models = [RemoteModel.model_validate(item) for item in data]
        except ValidationError as exc:
            raise ServerError(f"GET {path}: unexpected model shape from the server") from exc
        refuse_duplicates(path, [m.name for m in models])
        return models

    def get_model(self, name: str) -> RemoteModel | None:
        path = self.item(name)
        try:
            answer = self.request_json("GET", path)
        except ServerError as exc:
            if exc.status == 404:
                return None
            raise
        return self._model("GET", path, answer)

    def create_model(self, body: dict[str, Any]) -> RemoteModel:
        """One POST, no retry: the caller decides what a failure means (apply.py).

        A success that answers with another model is not a success: the server's word is checked.
        """
        path = f"{API}/models/"
        answer = self.request_json("POST", path, body, retry=False)
        model = self._model("POST", path, answer)
        check_answer(
            "POST", path, answer.status, "model", model, {"name": body["name"], "dtype": body.get("dtype")}
        )
        return model

    def patch_model(self, name: str, body: dict[str, Any]) -> RemoteModel:
        path = self.item(name)
        answer = self.request_json("PATCH", path, body)
        model = self._model("PATCH", path, answer)
        check_answer("PATCH", path, answer.status, "model", model, {"name": name})
        return model

    def delete_model(self, name: str) -> bool:
        """Delete; False when it was already gone (a 200 does not prove this call removed it)."""
        return self.delete(self.item(name))

    def list_types(self) -> list[ModelType]:
        path = f"{API}/models/types/"
        return parse_types(path, self.request_json("GET", path).data, what="model types")

    def check_tenant(self) -> None:
        """A single-tenant server ignores X-Tenant-Name and would write into `root`: ask first."""
        if not self.tenant:
            return
        path = f"{API}/tenants/{quote(self.tenant, safe='')}"
        try:
            data = self.request_json("GET", path).data
        except ServerError as exc:
            if exc.status == 404:
                raise TenantNotFound(
                    f"tenant {self.tenant!r} does not exist on {self.base_url}; nothing was written"
                ) from exc
            raise
        if isinstance(data, dict) and data.get("is_active") is False:
            raise TenantNotFound(
                f"tenant {self.tenant!r} on {self.base_url} is not active; nothing was written"
            )

    def tenant_names(self) -> Sequence[str]:
        path = f"{API}/tenants"
        data = self.request_json("GET", path).data
        return [str(t.get("name")) for t in data if isinstance(t, dict)] if isinstance(data, list) else []


def parse_types(path: str, data: Any, *, what: str = "types") -> list[ModelType]:
    """A types list (models, datasets or policies: the same item shape) as ModelType values."""
    if not isinstance(data, list):
        raise ServerError(f"GET {path}: expected a list of {what}")
    return [
        ModelType(
            str(t.get("name")),
            t["config_schema"] if t.get("config_schema") is not None else {},
            str(t.get("description") or ""),
            t.get("enabled", True) is not False,
        )
        for t in data
        if isinstance(t, dict)
    ]


def check_answer(
    method: str, path: str, status: int, what: str, answer: object, want: Mapping[str, str | None]
) -> None:
    """A create or update that answers with another object is a failure, not a success.

    `want` names the fields that identify the object written (its name first, then what must not
    change, like a dtype): each one that is not None must be the answer's. The ServerError carries
    the 2xx status, so that apply counts the write as failed and never looks it up as a race."""
    got = {key: getattr(answer, key, None) for key in want}
    if all(value is None or got[key] == value for key, value in want.items()):
        return
    raise ServerError(
        f"{method} {path}: the server answered {status} with {what} {_shown(got)}, "
        f"not {_shown(want)}; not counted as done",
        status=status,
    )


def _shown(fields: Mapping[str, Any]) -> str:
    """`name` (dtype): the first field, then the others that are known."""
    first, *rest = fields.values()
    extra = ", ".join(str(v) for v in rest if v is not None)
    return f"`{first}`" + (f" ({extra})" if extra else "")


def refuse_duplicates(path: str, keys: Sequence[str], *, what: str = "") -> None:
    """A list that names the same object twice is an inconsistent answer: planning against one of
    the two could delete, replace or adopt the wrong one, so it is an error (exit 6)."""
    counts = Counter(keys)
    twice = sorted(key for key, n in counts.items() if n > 1)
    if not twice:
        return
    shown = ", ".join(f"`{n}`" for n in twice[:5])
    shown += f" and {len(twice) - 5} more" if len(twice) > 5 else ""
    raise ServerError(
        f"GET {path}: the server lists {what + ' ' if what else ''}{shown} more than once; "
        "refusing to plan against an inconsistent answer"
    )
