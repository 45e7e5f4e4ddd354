"""The bounded wire under SpaceClient (client.py): with it, the only httpx/httpcore code.

- A deadline per request (`timeout` bounds the whole exchange): the network backend checks it on
  every connect, read and write, and name resolution runs under it, so neither a slow resolver nor
  a server trickling bytes can stretch a call. `DeadlineTransport` is an httpx transport over an
  httpcore pool given that backend, built from both libraries' public API only (httpx's own
  transport keeps its pool private); the trickle tests fail if the deadline stops being checked.
- Proxies: from the environment (HTTP(S)_PROXY, ALL_PROXY, NO_PROXY, as urllib reads them), never
  for loopback; chosen once per client, which talks to one origin.
- Answers are capped: MAX_BODY bytes (decoded), MAX_DEPTH levels of JSON; lone surrogates become
  U+FFFD.
- URLs: only http(s) with a host; a password in one is registered with the scrubber; loopback is
  recognised (no proxy, plain http allowed). Error texts never quote a header.
"""

from __future__ import annotations

import contextlib
import ipaddress
import re
import socket
import ssl
import threading
import time
import urllib.request
from collections.abc import Iterable, Iterator
from typing import Any

import httpcore
import httpx

from reconciler import redact
from reconciler.errors import ReconcilerError

MAX_BODY = 64 * 1024 * 1024  # 10,000 models list in ~5 MB; an endless body stops here
MAX_DEPTH = 64  # JSON nesting; a model's configuration is a few levels deep


# -- the deadline: one per request, checked by every network read and write -------------------

_deadline = threading.local()


def _left(timeout: float | None, error: type[Exception]) -> float | None:
    end: float | None = getattr(_deadline, "end", None)
    if end is None:
        return timeout
    left = end - time.monotonic()
    if left <= 0:
        raise error("the whole-response deadline passed")
    return left if timeout is None else min(timeout, left)


class _DeadlineStream(httpcore.NetworkStream):
    """A socket whose every read and write waits at most until the request's deadline."""

    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, _left(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, _left(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        # CPython's ssl turns a socket timeout into one deadline for the whole handshake, so a
        # trickled handshake ends with the request's deadline too (tests/hostile/test_bounded.py)
        return _DeadlineStream(
            self._inner.start_tls(ssl_context, server_hostname, _left(timeout, httpcore.ConnectTimeout))
        )

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _DeadlineBackend(httpcore.NetworkBackend):
    def __init__(self, inner: httpcore.NetworkBackend) -> None:
        self._inner = inner

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore.NetworkStream:
        left = _left(timeout, httpcore.ConnectTimeout)
        if left is None or _is_ip(host):
            return _DeadlineStream(self._inner.connect_tcp(host, port, left, local_address, socket_options))
        # getaddrinfo takes no timeout: a slow resolver would hold the request past any deadline
        last: Exception = httpcore.ConnectError(f"{host} has no address")
        for address in _resolve(host, port, left):
            try:
                return _DeadlineStream(
                    self._inner.connect_tcp(
                        address, port, _left(timeout, httpcore.ConnectTimeout), local_address, socket_options
                    )
                )
            except httpcore.ConnectError as exc:  # the next address, as socket.create_connection does
                last = exc
        raise last

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Any = None
    ) -> httpcore.NetworkStream:  # pragma: no cover
        return _DeadlineStream(
            self._inner.connect_unix_socket(path, _left(timeout, httpcore.ConnectTimeout), socket_options)
        )

    def sleep(self, seconds: float) -> None:  # pragma: no cover - unused by sync pools
        self._inner.sleep(seconds)


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def _resolve(host: str, port: int, timeout: float) -> list[str]:
    """getaddrinfo in a daemon thread, waited for at most `timeout` seconds."""
    done = threading.Event()
    result: list[Any] = []

    def lookup() -> None:
        try:
            result.append(socket.getaddrinfo(host, port, type=socket.SOCK_STREAM))
        except (OSError, UnicodeError) as exc:
            result.append(exc)
        done.set()

    threading.Thread(target=lookup, name="resolve", daemon=True).start()
    if not done.wait(timeout):
        raise httpcore.ConnectTimeout(f"resolving {host} took longer than the deadline")
    if isinstance(result[0], Exception):
        raise httpcore.ConnectError(str(result[0]))
    return list(dict.fromkeys(str(info[4][0]) for info in result[0]))


# -- the transport: httpx requests over an httpcore pool with the deadline backend ----------------

# httpcore's errors as httpx's (the client catches httpx's), most specific first
_ERRORS: tuple[tuple[type[Exception], type[httpx.HTTPError]], ...] = (
    (httpcore.ConnectTimeout, httpx.ConnectTimeout),
    (httpcore.ReadTimeout, httpx.ReadTimeout),
    (httpcore.WriteTimeout, httpx.WriteTimeout),
    (httpcore.PoolTimeout, httpx.PoolTimeout),
    (httpcore.TimeoutException, httpx.TimeoutException),
    (httpcore.ConnectError, httpx.ConnectError),
    (httpcore.ReadError, httpx.ReadError),
    (httpcore.WriteError, httpx.WriteError),
    (httpcore.NetworkError, httpx.NetworkError),
    (httpcore.ProxyError, httpx.ProxyError),
    (httpcore.UnsupportedProtocol, httpx.UnsupportedProtocol),
    (httpcore.RemoteProtocolError, httpx.RemoteProtocolError),
    (httpcore.LocalProtocolError, httpx.LocalProtocolError),
    (httpcore.ProtocolError, httpx.ProtocolError),
)


@contextlib.contextmanager
def _as_httpx(request: httpx.Request) -> Iterator[None]:
    try:
        yield
    except Exception as exc:
        for theirs, ours in _ERRORS:
            if isinstance(exc, theirs):
                raise ours(str(exc), request=request) from exc  # type: ignore[call-arg]
        raise


class _Body(httpx.SyncByteStream):
    def __init__(self, stream: Iterable[bytes], request: httpx.Request) -> None:
        self._stream = stream
        self._request = request

    def __iter__(self) -> Iterator[bytes]:
        with _as_httpx(self._request):
            yield from self._stream

    def close(self) -> None:
        close = getattr(self._stream, "close", None)
        if close is not None:
            close()


def _core_url(url: httpx.URL) -> httpcore.URL:
    return httpcore.URL(scheme=url.raw_scheme, host=url.raw_host, port=url.port, target=url.raw_path)


class DeadlineTransport(httpx.BaseTransport):
    """HTTP/1.1 over a pool whose every connect, read and write stops at the request's deadline."""

    def __init__(
        self, *, ssl_context: ssl.SSLContext, proxy: httpx.Proxy | None = None, max_connections: int = 32
    ) -> None:
        self._pool = httpcore.ConnectionPool(
            ssl_context=ssl_context,
            proxy=_core_proxy(proxy) if proxy else None,
            max_connections=max_connections,
            max_keepalive_connections=max_connections,
            network_backend=_DeadlineBackend(httpcore.SyncBackend()),
        )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        assert isinstance(request.stream, Iterable)
        core = httpcore.Request(
            method=request.method,
            url=_core_url(request.url),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        with _as_httpx(request):
            answer = self._pool.handle_request(core)
        assert isinstance(answer.stream, Iterable)
        return httpx.Response(
            status_code=answer.status,
            headers=answer.headers,
            stream=_Body(answer.stream, request),
            extensions=answer.extensions,
        )

    def close(self) -> None:
        self._pool.close()


def _core_proxy(proxy: httpx.Proxy) -> httpcore.Proxy:
    if proxy.url.password:
        redact.register(proxy.url.password, f"{proxy.url.username}:{proxy.url.password}")
    return httpcore.Proxy(
        url=_core_url(proxy.url),
        auth=proxy.raw_auth,
        headers=proxy.headers.raw,
        ssl_context=proxy.ssl_context,
    )


def proxy_for(url: httpx.URL) -> httpx.Proxy | None:
    """The proxy the environment names for `url` (none for loopback, or a host NO_PROXY lists)."""
    if is_loopback(url.host):
        return None
    proxies = urllib.request.getproxies_environment()
    chosen = proxies.get(url.scheme) or proxies.get("all")
    if not chosen or urllib.request.proxy_bypass(url.host):
        return None
    try:
        return httpx.Proxy(chosen if "://" in chosen else f"http://{chosen}")
    except (ValueError, httpx.InvalidURL) as exc:
        raise ReconcilerError(
            f"the {url.scheme} proxy named by the environment is not a usable URL: {reason(exc)}"
        ) from None


_LONE_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89abAB]")  # JSON pairs them up; a lone one stays
_SURROGATE = re.compile("[\ud800-\udfff]")


def _valid_unicode(value: Any) -> Any:
    """Lone surrogates (`"\\ud800"` in the JSON) become U+FFFD: no URL, file or terminal can carry them."""
    if isinstance(value, str):
        return _SURROGATE.sub("\ufffd", value)
    if isinstance(value, dict):
        return {_valid_unicode(k): _valid_unicode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_valid_unicode(v) for v in value]
    return value


def _depth(value: Any) -> int:
    """Nesting depth of parsed JSON, without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, (dict, list)):
            deepest = max(deepest, level)
            if level > MAX_DEPTH:
                return level
            stack.extend((v, level + 1) for v in (item.values() if isinstance(item, dict) else item))
    return deepest


def is_loopback(host: str) -> bool:
    if host in ("localhost", "localhost.localdomain") or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def reason(exc: Exception) -> str:
    """An httpx error in one line, never quoting a header: h11 puts the offending header's value
    into its message (a token with a newline once printed the whole `Authorization`)."""
    text = str(exc) or type(exc).__name__
    if "header" in text.lower() or isinstance(exc, (httpx.LocalProtocolError, httpcore.LocalProtocolError)):
        return f"{type(exc).__name__}: the request could not be sent (an invalid header value)"
    return redact.scrub(text.splitlines()[0][:200])


def parse_url(base_url: str) -> httpx.URL:
    shown = redact.url_without_userinfo(base_url)
    try:
        url = httpx.URL(base_url.rstrip("/"))
        host = url.host
    except (httpx.InvalidURL, ValueError, UnicodeError, TypeError):
        url, host = None, ""
    if url is None or url.scheme not in ("http", "https") or not host:
        raise ReconcilerError(f"server URL {shown!a} must look like https://space.example.org")
    if url.password:
        redact.register(url.password, f"{url.username}:{url.password}")
    return url


@contextlib.contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Within the block, this thread's network reads and writes stop `seconds` from now."""
    _deadline.end = time.monotonic() + seconds
    try:
        yield
    finally:
        _deadline.end = None


def check_deadline() -> None:
    """Raise httpcore.ReadTimeout if this thread's deadline has passed (between body chunks)."""
    _left(None, httpcore.ReadTimeout)


def bounded_json(data: Any, raw: bytes) -> Any | None:
    """Parsed JSON within MAX_DEPTH (else None), lone surrogates replaced when `raw` has any."""
    if _depth(data) > MAX_DEPTH:
        return None
    return _valid_unicode(data) if _LONE_SURROGATE_ESCAPE.search(raw) else data
