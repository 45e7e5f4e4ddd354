"""The watch daemon's operations endpoints: `/healthz`, `/livez`, `/readyz` and Prometheus `/metrics`.

`DaemonMetrics.observe()` takes each round's result; `MetricsServer` serves the routes from a small
threaded WSGI server on an opt-in port (loopback unless told otherwise). Health and readiness are
200 while the last round succeeded and 503 otherwise, including before the first round has
finished; liveness follows the loop's `Heartbeat` only, so bad manifests never restart a pod.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info, make_wsgi_app

from reconciler import redact
from reconciler.liveness import Heartbeat
from reconciler.states import KINDS, STATES
from reconciler.watch import RoundResult, RoundStatus

log = logging.getLogger(__name__)

StartResponse = Callable[[str, list[tuple[str, str]]], Any]

DURATION_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)


def _iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="seconds")


class DaemonMetrics:
    """Prometheus series and the health snapshot, updated after every round (thread-safe).

    With `spaces` (a watch over many spaces) every series carries a `space` label, `observe`
    takes the space's name, and /readyz is ready only when every space's last round succeeded,
    naming the spaces that are not.
    """

    def __init__(self, spaces: Sequence[str] = ()) -> None:
        self.registry = CollectorRegistry()
        self.spaces = tuple(spaces)
        r = self.registry
        extra = ["space"] if self.spaces else []
        self.rounds = Counter(
            "syft_reconciler_rounds",
            "Reconcile rounds run, by trigger and outcome.",
            ["trigger", "status", *extra],
            registry=r,
        )
        self.failures = Counter(
            "syft_reconciler_round_failures",
            "Rounds that did not succeed, by outcome.",
            ["status", *extra],
            registry=r,
        )
        self.last_success = Gauge(
            "syft_reconciler_last_success_timestamp_seconds",
            "Unix time the last successful round finished.",
            extra,
            registry=r,
        )
        self.duration = Histogram(
            "syft_reconciler_round_duration_seconds",
            "Wall time of one round.",
            extra,
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self.models = Gauge(
            "syft_reconciler_models",
            "Models by state after the last round that read the server.",
            ["state", *extra],
            registry=r,
        )
        self.objects = Gauge(
            "syft_reconciler_objects",
            "Models, datasets, endpoints and policies by kind and state after the last round that "
            'read the server (kind="model" equals syft_reconciler_models).',
            ["kind", "state", *extra],
            registry=r,
        )
        self.commit = Info(
            "syft_reconciler_applied_commit",
            "The git commit last applied in full (--git).",
            extra,
            registry=r,
        )
        self.started = Gauge(
            "syft_reconciler_space_started",
            "1 once the space's loop runs; 0 while it cannot start (its lock held, its token or "
            "folder missing) and is retried with backoff.",
            extra,
            registry=r,
        )
        for space in self.spaces:
            self.started.labels(space).set(0)
        for space in self.spaces or ("",):  # every series from the start: alerts never see a gap
            for state in STATES:
                self.models.labels(state, *self._space(space)).set(0)
                for kind in KINDS:
                    self.objects.labels(kind, state, *self._space(space)).set(0)
        self._lock = threading.Lock()
        self._state: dict[str, _SpaceState] = {space: _SpaceState() for space in self.spaces or ("",)}

    def _space(self, space: str) -> tuple[str, ...]:
        return (space,) if self.spaces else ()

    def observer(self, space: str) -> Callable[[RoundResult], None]:
        """`observe` for one space of a multi-space watch."""
        return lambda result: self.observe(result, space=space)

    def observe(self, result: RoundResult, *, space: str = "") -> None:
        now = time.time()
        label = self._space(space)
        self.rounds.labels(result.trigger.value, result.status.value, *label).inc()
        (self.duration.labels(*label) if label else self.duration).observe(result.duration)
        if result.ok:
            (self.last_success.labels(*label) if label else self.last_success).set(now)
            if result.commit:
                (self.commit.labels(*label) if label else self.commit).info({"commit": result.commit})
        else:
            self.failures.labels(result.status.value, *label).inc()
        for state, count in result.models.items():
            self.models.labels(state, *label).set(count)
        for kind, counts in result.objects.items():
            for state, count in counts.items():
                self.objects.labels(kind, state, *label).set(count)
        with self._lock:
            seen = self._state.setdefault(space, _SpaceState())
            seen.last, seen.last_at = result, now
            if result.ok:
                seen.success_at = now
                seen.applied_commit = result.commit or seen.applied_commit

    def cannot_start(self, space: str, message: str) -> None:
        """A space of a multi-space watch could not start (it is tried again): /readyz names it
        with `message`."""
        with self._lock:
            self._state.setdefault(space, _SpaceState()).cannot_start = message or "unknown reason"

    def space_started(self, space: str) -> None:
        """The space's loop runs: its readiness is its rounds' again."""
        self.started.labels(space).set(1)
        with self._lock:
            self._state.setdefault(space, _SpaceState()).cannot_start = None

    def health(self) -> tuple[int, dict[str, Any]]:
        """(HTTP status, body) for /healthz."""
        if self.spaces:
            return self._many(detail=True)
        with self._lock:
            seen = self._state[""]
            last, last_at, success_at, commit = seen.last, seen.last_at, seen.success_at, seen.applied_commit
        body: dict[str, Any] = {
            "status": last.status.value if last else "starting",
            "last_round": None,
            "last_success": _iso(success_at),
            "applied_commit": commit,
        }
        if last is not None:
            body["last_round"] = {
                "trigger": last.trigger.value,
                "finished_at": _iso(last_at),
                "duration_s": round(last.duration, 4),
                "message": last.message,
                "models": dict(last.models),
            }
        return (200 if last is not None and last.ok else 503), body

    def readiness(self) -> tuple[int, dict[str, Any]]:
        """(HTTP status, body) for /readyz: ready when the last round succeeded, else why not."""
        if self.spaces:
            return self._many(detail=False)
        with self._lock:
            seen = self._state[""]
            last, success_at = seen.last, seen.success_at
        return _readiness(last, success_at)

    def _many(self, *, detail: bool) -> tuple[int, dict[str, Any]]:
        """Every space's readiness: ready when all are; `not_ready` names the others and why."""
        with self._lock:
            states = {
                name: (s.last, s.success_at, s.applied_commit, s.cannot_start)
                for name, s in self._state.items()
            }
        not_ready: dict[str, Any] = {}
        every: dict[str, Any] = {}
        for name, (last, success_at, commit, cannot_start) in states.items():
            code, body = _readiness(last, success_at)
            if cannot_start is not None:
                code, body = 503, _not_started(cannot_start, success_at)
            body["applied_commit"] = commit
            every[name] = body
            if code != 200:
                not_ready[name] = {k: body[k] for k in ("status", "reason", "last_success")}
        body = {
            "ready": not not_ready,
            "spaces": len(states),
            "ready_spaces": len(states) - len(not_ready),
            "not_ready": not_ready,
        }
        if detail:
            body["status"] = "ok" if not not_ready else "degraded"
            body["by_space"] = every
        return (200 if not not_ready else 503), body


@dataclass
class _SpaceState:
    last: RoundResult | None = None
    last_at: float | None = None
    success_at: float | None = None
    applied_commit: str | None = None
    cannot_start: str | None = None
    """Why the space's last attempt to start failed, while it waits to try again."""


def _not_started(message: str, success_at: float | None) -> dict[str, Any]:
    return {
        "ready": False,
        "status": "not_started",
        "reason": f"the space cannot start (tried again with backoff): {message}",
        "last_success": _iso(success_at),
    }


def _readiness(last: RoundResult | None, success_at: float | None) -> tuple[int, dict[str, Any]]:
    if last is not None and last.ok:
        return 200, {"ready": True, "status": "ok", "reason": "", "last_success": _iso(success_at)}
    status = last.status.value if last else "starting"
    reason = _NOT_READY.get(last.status if last else None, "")
    detail = last.message if last else ""
    return 503, {
        "ready": False,
        "status": status,
        "reason": f"{reason}: {detail}" if detail else reason,
        "last_success": _iso(success_at),
    }


_NOT_READY: dict[RoundStatus | None, str] = {
    None: "the first round has not finished yet",
    RoundStatus.INVALID: (
        "the manifests are invalid; nothing was written and the server keeps the last good state"
    ),
    RoundStatus.UNREACHABLE: "the server is unreachable or busy; retrying with backoff",
    RoundStatus.AUTH: "the server refused the credentials; nothing was written",
    RoundStatus.FAILED: "the last round failed against the server",
    RoundStatus.ERROR: "the last round hit an unexpected error",
}


def liveness(heartbeat: Heartbeat) -> tuple[int, dict[str, Any]]:
    """(HTTP status, body) for /livez: 200 while the loop keeps its promise to be heard from."""
    now = heartbeat.status()
    body = {
        "alive": now.alive,
        "phase": now.phase,
        "silent_s": round(now.silent_s, 3),
        "allowed_s": round(now.allowed_s, 3),
    }
    return (200 if now.alive else 503), body


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that resets or drops its connection is its own business: one debug line, no
        traceback on the daemon's stderr (which may be carrying --log-format json)."""
        error = sys.exc_info()[1]
        log.debug(
            "metrics client %s: %s",
            client_address,
            type(error).__name__,
            extra={"event": "metrics_client_error", "fields": {"error": type(error).__name__}},
        )


class _LogStream:
    """wsgiref's handler writes tracebacks of failed responses here: to the log, one line."""

    def write(self, text: str) -> None:
        line = text.strip().splitlines()[-1] if text.strip() else ""
        if line:
            log.debug(
                "metrics response failed: %s",
                line[:200],
                extra={"event": "metrics_client_error", "fields": {}},
            )

    def flush(self) -> None:
        pass


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # access logs would drown the daemon's own
        pass

    def get_stderr(self) -> Any:
        return _LogStream()


class MetricsServer:
    """`/healthz`, `/livez`, `/readyz` and `/metrics` on host:port (port 0: any free one) in a
    background thread. Without a heartbeat, /livez answers 200 while the server runs."""

    def __init__(
        self,
        metrics: DaemonMetrics,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        heartbeat: Heartbeat | None = None,
    ) -> None:
        self.metrics = metrics
        self.heartbeat = heartbeat
        self._prometheus = make_wsgi_app(metrics.registry)
        self._server = make_server(host, port, self._app, server_class=_Server, handler_class=_QuietHandler)
        self.url = f"http://{host}:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="metrics", daemon=True)

    def _app(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/metrics":
            return self._prometheus(environ, start_response)  # type: ignore[no-any-return]
        probes: dict[str, Callable[[], tuple[int, dict[str, Any]]]] = {
            "/healthz": self.metrics.health,
            "/readyz": self.metrics.readiness,
            "/livez": lambda: liveness(self.heartbeat) if self.heartbeat else (200, {"alive": True}),
        }
        if path in probes:
            code, body = probes[path]()
            data = json.dumps(redact.scrub_obj(body)).encode()  # unauthenticated: nothing secret
            status = "200 OK" if code == 200 else "503 Service Unavailable"
            start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
            return [data]
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found: try /healthz, /livez, /readyz or /metrics\n"]

    def __enter__(self) -> MetricsServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)
