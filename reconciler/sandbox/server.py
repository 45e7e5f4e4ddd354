"""Running the sandbox: `SandboxServer` (uvicorn in a background thread, for tests and benchmarks)
and `serve` (in the foreground, for `syft-reconciler sandbox serve`).

The socket is bound before uvicorn starts, so `url` is known at once; starting waits for uvicorn
with a deadline, never a fixed sleep. Work on the state from other threads (reset, stats) is
handed to the server's event loop, which owns the SQLite connection.
"""

from __future__ import annotations

import asyncio
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import TypeVar

import uvicorn

from reconciler.sandbox.app import create_app
from reconciler.sandbox.config import DEFAULT_CONFIG, SandboxConfig
from reconciler.sandbox.state import SandboxState

_T = TypeVar("_T")

START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 10.0


def _uvicorn_config(app: object, *, log_level: str, **kwargs: object) -> uvicorn.Config:
    return uvicorn.Config(
        app,  # type: ignore[arg-type]
        log_level=log_level,
        access_log=False,
        lifespan="on",
        # Idle keep-alive connections must not hold up a stop.
        timeout_graceful_shutdown=1,
        **kwargs,  # type: ignore[arg-type]
    )


class SandboxServer:
    """A sandbox on `host:port` (port 0: any free one) in a background thread.

    ```python
    with SandboxServer(SandboxConfig(token="t")) as server:
        httpx.get(server.url + "/api/v1/health")
        server.reset()
    ```
    """

    def __init__(
        self,
        config: SandboxConfig = DEFAULT_CONFIG,
        *,
        db: str | Path = ":memory:",
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.app = create_app(config, db)
        self.state: SandboxState = self.app.state.sandbox
        # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets that say they are TCP,
        # and without it every response waits ~40 ms on Nagle and delayed ACKs.
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self._socket.bind((host, port))
        except OSError:
            self._socket.close()
            self.state.store.close()
            raise
        bound_host, bound_port = self._socket.getsockname()[:2]
        self.url = f"http://{bound_host}:{bound_port}"
        # log_config=None: leave the host process's logging alone (pytest captures it).
        self._server = uvicorn.Server(_uvicorn_config(self.app, log_level="warning", log_config=None))
        self._thread: threading.Thread | None = None

    @property
    def config(self) -> SandboxConfig:
        return self.state.config

    def start(self) -> None:
        """Start serving and return once uvicorn accepts connections."""
        if self._thread is not None:
            raise RuntimeError("the sandbox server is already running")
        self._thread = threading.Thread(
            target=self._server.run,
            kwargs={"sockets": [self._socket]},
            name=f"sandbox {self.url}",
            daemon=True,
        )
        self._thread.start()
        deadline = time.monotonic() + START_TIMEOUT_S
        while not (self._server.started and self.state.loop is not None):
            if not self._thread.is_alive():
                raise RuntimeError("the sandbox server failed to start")
            if time.monotonic() > deadline:
                raise TimeoutError(f"the sandbox server did not start in {START_TIMEOUT_S}s")
            time.sleep(0.005)

    def stop(self) -> None:
        """Stop serving, join the thread and close the database."""
        if self._thread is not None:
            self._server.should_exit = True
            self._thread.join(STOP_TIMEOUT_S)
            self._thread = None
        self._socket.close()
        self.state.store.close()

    def __enter__(self) -> SandboxServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def reset(self, config: SandboxConfig | None = None) -> None:
        """Wipe all state (every kind; tenants back to just root), zero stats; maybe swap the config."""
        self._on_loop(lambda: self.state.reset(config))

    def reconfigure(self, config: SandboxConfig) -> None:
        """Swap the config live, keeping all state: e.g. the admin key rotated in mid-run."""
        self._on_loop(lambda: self.state.configure(config))

    def stats(self, *, by_status: bool = False) -> dict[str, int]:
        """Requests so far by "METHOD /route/{template}" (by_status: "... STATUS" too)."""
        return self.state.stats(by_status=by_status)

    def set_tenant_active(self, name: str, active: bool) -> None:
        """Make a tenant (in)active; the real API has no way to, tests need one."""
        if not self._on_loop(lambda: self.state.store.set_tenant_active(name, active)):
            raise KeyError(f"no tenant named {name!r}")

    def cpu_seconds(self) -> float:
        """CPU time the serving thread has used so far (for benchmarks)."""
        return self._on_loop(time.thread_time)

    def model_count(self) -> int:
        """Rows in the models table, over all tenants."""
        return self._on_loop(self.state.store.count_models)

    def _on_loop(self, work: Callable[[], _T]) -> _T:
        loop = self.state.loop
        if loop is None:  # not serving: no other thread touches the store
            return work()

        async def run() -> _T:
            return work()

        return asyncio.run_coroutine_threadsafe(run(), loop).result(STOP_TIMEOUT_S)


def serve(
    config: SandboxConfig,
    *,
    db: str | Path,
    host: str = "127.0.0.1",
    port: int,
    log_level: str = "warning",
) -> None:
    """Serve in the foreground; return after a clean stop on Ctrl-C or SIGTERM."""
    app = create_app(config, db)
    state: SandboxState = app.state.sandbox
    try:
        with _signals_end_quietly():
            uvicorn.Server(_uvicorn_config(app, log_level=log_level, host=host, port=port)).run()
    finally:
        state.store.close()


@contextmanager
def _signals_end_quietly() -> Iterator[None]:
    """Uvicorn stops gracefully on SIGINT/SIGTERM, then raises the signal again for the handler
    it found; a no-op one turns that into a plain return (no KeyboardInterrupt, no kill)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    stop_signals = (signal.SIGINT, signal.SIGTERM)
    previous = {sig: signal.signal(sig, lambda *_: None) for sig in stop_signals}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
