"""`watch`: the daemon. Options → lock, server, sources, logging, metrics → `watch.run()` until a signal."""

from __future__ import annotations

import contextlib
import json
import logging
import signal
import sys
import threading
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from types import FrameType
from typing import Any

import click

from reconciler import redact
from reconciler.cli.app import cli
from reconciler.cli.common import (
    bundled_registry,
    connect,
    describe_target,
    paths_or_default,
    server_options,
    settings_from,
    state,
    var_file_option,
)
from reconciler.cli.core import plan_options

log = logging.getLogger("reconciler.watch")


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path())
@server_options
@plan_options
@var_file_option
@click.option("--parallelism", "-p", type=click.IntRange(1, 256), default=8, show_default=True,
              help="Requests in flight at once.")
@click.option("--max-delete", type=click.IntRange(0), default=None,
              help="With --prune: refuse a round that would delete more than N models.")
@click.option("--allow-empty", is_flag=True, help="With --prune: allow an empty manifest set.")
@click.option("--self-heal", is_flag=True,
              help="Also undo changes made on the server (recreate, revert) while the manifests stand still.")
@click.option("--resync-interval", type=click.FloatRange(min=0.1), default=60.0, show_default=True,
              metavar="SECONDS", help="A round at least this often, to catch changes made on the server.")
@click.option("--debounce-ms", type=click.IntRange(1), default=1600, show_default=True,
              help="Longest time to gather file changes into one round.")
@click.option("--step-ms", type=click.IntRange(1), default=50, show_default=True,
              help="A batch of file changes ends after this long without a new one.")
@click.option("--git", "use_git", is_flag=True,
              help="Reconcile the files committed at HEAD (not the working tree); record the commit.")
@click.option("--log-format", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="json: one object per line on stderr (ts, level, event, msg, fields).")
@click.option("--metrics-port", type=click.IntRange(0, 65535), default=None,
              help="Serve /healthz and Prometheus /metrics on this port (0: any free one).")
@click.option("--metrics-host", default="127.0.0.1", show_default=True, help="Address for --metrics-port.")
def watch(paths: tuple[str, ...], adopt: bool, prune: bool, replace: tuple[str, ...], replace_all: bool,
          var_files: tuple[Path, ...], parallelism: int, max_delete: int | None, allow_empty: bool,
          self_heal: bool, resync_interval: float, debounce_ms: int, step_ms: int, use_git: bool,
          log_format: str, metrics_port: int | None, metrics_host: str, **kw: Any) -> None:
    """Keep the server converged with the manifests: a round on every change, and every resync interval.

    Rounds write when the manifests changed (or the last round's writes failed); otherwise they
    report drift on the server, and undo it only with --self-heal. SIGTERM/SIGINT finish the
    current round and exit 0.
    """
    from reconciler import watch as daemon
    from reconciler.apply import ApplyOptions
    from reconciler.lock import folder_lock
    from reconciler.reconcile import registry_facts
    from reconciler.sources import GitHead, ManifestLoader, Source, WorkTree

    settings = settings_from(kw)
    roots = paths_or_default(paths)
    missing = [str(r) for r in roots if not r.exists()]
    if missing:
        raise click.BadParameter(f"no such file or directory: {', '.join(missing)}", param_hint="PATHS")
    _configure_logging(log_format, debug=state.debug)
    schemas = bundled_registry()
    secrets, defaults = registry_facts(schemas)
    options = ApplyOptions(parallelism=parallelism, replace=frozenset(replace), replace_all=replace_all,
                           max_create_attempts=settings.retries + 1, secret_fields=secrets, defaults=defaults)
    config = daemon.WatchSettings(
        resync_interval=resync_interval, self_heal=self_heal, adopt=adopt, prune=prune, max_delete=max_delete,
        allow_empty=allow_empty, placeholders=settings.sandbox, debug=state.debug,
    )
    source: Source = GitHead.open(roots) if use_git else WorkTree()
    stop = threading.Event()
    with contextlib.ExitStack() as stack:
        stack.enter_context(folder_lock(roots, command="watch"))
        client = stack.enter_context(connect(settings, parallelism=parallelism))
        client.sleep = stop.wait  # client retries end early on a stop, so the round ends soon
        on_round = stack.enter_context(_metrics(metrics_host, metrics_port))
        stack.enter_context(_stop_on_signals(stop))
        reconciler = daemon.Reconciler(ManifestLoader(roots, schemas, source, var_files=var_files), client,
                                       schemas, options=options, settings=config)
        batches = daemon.change_batches(source.watch_paths(roots), keep=source.keep, stop=stop,
                                        resync_interval=resync_interval, debounce_ms=debounce_ms,
                                        step_ms=step_ms)
        watched = ", ".join(str(p) for p in roots) + (" (at git HEAD)" if use_git else "")
        log.info("watching %s for %s", watched, describe_target(client),
                 extra={"event": "start", "fields": {"paths": [str(p) for p in roots], "git": use_git,
                                                     "server": client.base_url}})
        backoff = daemon.Backoff(cap=min(daemon.Backoff.cap, max(resync_interval, 1.0)))
        daemon.run(batches, reconciler, stop, backoff=backoff, on_round=on_round)
    log.info("stopped", extra={"event": "stop", "fields": {}})


@contextlib.contextmanager
def _metrics(host: str, port: int | None) -> Iterator[Any]:
    if port is None:
        yield lambda result: None
        return
    from reconciler.metrics import DaemonMetrics, MetricsServer

    metrics = DaemonMetrics()
    try:
        server = MetricsServer(metrics, host=host, port=port)
    except OSError as exc:
        raise click.BadParameter(f"cannot listen on {host}:{port}: {exc.strerror}",
                                 param_hint="--metrics-port") from exc
    with server:
        log.info("serving %s/healthz and %s/metrics", server.url, server.url,
                 extra={"event": "metrics_listening", "fields": {"url": server.url}})
        yield metrics.observe


@contextlib.contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """The first SIGTERM/SIGINT lets the current round finish; a second one interrupts it."""

    def handle(signum: int, frame: FrameType | None) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()

    previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, event, msg and the event's fields."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "event": getattr(record, "event", "log"),
            "msg": record.getMessage(),
        }
        if not hasattr(record, "event"):
            data["logger"] = record.name
        for key, value in getattr(record, "fields", {}).items():
            data.setdefault(key, value)
        if record.exc_info:
            data["exc"] = self.formatException(record.exc_info)
        # scrubbed here too, so the JSON stays JSON (the stream's own pass then finds nothing)
        return redact.json_safe(json.dumps(redact.scrub_obj(data), ensure_ascii=False, default=str))


def _configure_logging(fmt: str, *, debug: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(message)s"))
    root = logging.getLogger()
    for old in root.handlers[:]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if debug else logging.INFO)
    # one line per HTTP request or file event would bury the rounds; --debug shows them
    for noisy in ("httpx", "httpcore", "watchfiles", "uvicorn", "uvicorn.error"):
        logging.getLogger(noisy).setLevel(logging.DEBUG if debug else logging.WARNING)
