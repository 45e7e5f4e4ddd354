"""`watch`: the daemon. Options → lock, server, sources, logging, metrics → `watch.run()` until a signal."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import sys
import threading
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import click

from reconciler import redact
from reconciler.backoff import DAEMON_BACKOFF
from reconciler.cli.app import cli
from reconciler.cli.options import (
    bundled_registry,
    connect,
    current,
    describe_target,
    instance_from,
    instance_options,
    lock_for,
    plan_options,
    plan_options_from,
    server_options,
    settings_from,
    var_file_option,
)
from reconciler.signals import graceful

log = logging.getLogger("reconciler.watch")


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path())
@server_options
@instance_options
@plan_options
@var_file_option
@click.option(
    "--parallelism",
    "-p",
    type=click.IntRange(1, 256),
    default=8,
    show_default=True,
    help="Requests in flight at once.",
)
@click.option(
    "--self-heal",
    is_flag=True,
    help="Also undo changes made on the server (recreate, revert) while the manifests stand still.",
)
@click.option(
    "--resync-interval",
    type=click.FloatRange(min=0.1),
    default=60.0,
    show_default=True,
    metavar="SECONDS",
    help="A round at least this often, to catch changes made on the server.",
)
@click.option(
    "--debounce-ms",
    type=click.IntRange(1),
    default=1600,
    show_default=True,
    help="Longest time to gather file changes into one round.",
)
@click.option(
    "--step-ms",
    type=click.IntRange(1),
    default=50,
    show_default=True,
    help="A batch of file changes ends after this long without a new one.",
)
@click.option(
    "--git",
    "use_git",
    is_flag=True,
    help="Reconcile the files committed at HEAD (not the working tree); record the commit.",
)
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="json: one object per line on stderr (ts, level, event, msg, fields).",
)
@click.option(
    "--metrics-port",
    type=click.IntRange(0, 65535),
    default=None,
    help="Serve /healthz, /livez, /readyz and Prometheus /metrics on this port (0: any free one).",
)
@click.option("--metrics-host", default="127.0.0.1", show_default=True, help="Address for --metrics-port.")
def watch(
    paths: tuple[str, ...],
    var_files: tuple[Path, ...],
    parallelism: int,
    self_heal: bool,
    resync_interval: float,
    debounce_ms: int,
    step_ms: int,
    use_git: bool,
    log_format: str,
    metrics_port: int | None,
    metrics_host: str,
    **kw: Any,
) -> None:
    """Keep the server converged with the manifests: a round on every change, and every resync interval.

    Rounds write when the manifests changed (or the last round's writes failed); otherwise they
    report drift on the server, and undo it only with --self-heal. SIGTERM/SIGINT finish the
    current round and exit 0.
    """
    from reconciler import watch as daemon
    from reconciler.apply import ApplyOptions
    from reconciler.project import check_prune_scope
    from reconciler.sources import GitHead, ManifestLoader, Source, WorkTree

    options = plan_options_from(kw)
    instance = instance_from(paths, kw)
    settings = settings_from(kw)
    roots = list(instance.roots)
    missing = [str(r) for r in roots if not r.exists()]
    if missing:
        raise click.BadParameter(f"no such file or directory: {', '.join(missing)}", param_hint="PATHS")
    if options.prune:
        check_prune_scope(instance)
    debug = current().debug
    _configure_logging(log_format, debug=debug)
    schemas = bundled_registry()
    apply_options = ApplyOptions(
        parallelism=parallelism,
        replace=frozenset(options.replace),
        replace_all=options.replace_all,
        max_create_attempts=settings.retries + 1,
        facts=schemas.facts,
        owner=instance.owner,
    )
    config = daemon.WatchSettings(
        resync_interval=resync_interval,
        self_heal=self_heal,
        plan=options,
        owner=instance.owner,
        placeholders=settings.sandbox,
        debug=debug,
    )
    source: Source = GitHead.open(roots) if use_git else WorkTree()
    # the watcher ticks at least every second; a batch of changes takes up to the debounce
    idle_silence = min(resync_interval, 1.0) + (debounce_ms + step_ms) / 1000
    stop = threading.Event()
    with contextlib.ExitStack() as stack:
        stack.enter_context(lock_for(instance, settings, command="watch", shared=False))
        # client retries end early on a stop, so the round ends soon
        client = stack.enter_context(
            connect(settings, parallelism=parallelism, sleep=stop.wait, on_wait=daemon.log_wait)
        )
        heartbeat = daemon.Heartbeat(progress=lambda: client.requests)
        on_round = stack.enter_context(_metrics(metrics_host, metrics_port, heartbeat))
        # the first SIGTERM/SIGINT lets the current round finish; a second one interrupts it
        stack.enter_context(graceful(lambda signum: stop.set(), then="interrupt"))
        reconciler = daemon.Reconciler(
            ManifestLoader(roots, schemas, source, var_files=var_files),
            client,
            schemas,
            options=apply_options,
            settings=config,
        )
        batches = daemon.change_batches(
            source.watch_paths(roots),
            keep=source.keep,
            stop=stop,
            resync_interval=resync_interval,
            debounce_ms=debounce_ms,
            step_ms=step_ms,
            on_tick=lambda: heartbeat.beat("waiting", idle_silence),
        )
        watched = ", ".join(str(p) for p in roots) + (" (at git HEAD)" if use_git else "")
        log.info(
            "watching %s for %s",
            watched,
            describe_target(client),
            extra={
                "event": "start",
                "fields": {
                    "paths": [str(p) for p in roots],
                    "git": use_git,
                    "server": client.base_url,
                    "owner": instance.owner,
                },
            },
        )
        backoff = dataclasses.replace(DAEMON_BACKOFF, cap=min(DAEMON_BACKOFF.cap, max(resync_interval, 1.0)))
        daemon.run(
            batches,
            reconciler,
            stop,
            backoff=backoff,
            on_round=on_round,
            heartbeat=heartbeat,
            round_silence=daemon.request_budget(timeout=settings.timeout, retries=settings.retries),
            idle_silence=idle_silence,
        )
    log.info("stopped", extra={"event": "stop", "fields": {}})


@contextlib.contextmanager
def _metrics(host: str, port: int | None, heartbeat: Any) -> Iterator[Any]:
    if port is None:
        yield lambda result: None
        return
    from reconciler.metrics import DaemonMetrics, MetricsServer

    metrics = DaemonMetrics()
    try:
        server = MetricsServer(metrics, host=host, port=port, heartbeat=heartbeat)
    except OSError as exc:
        raise click.BadParameter(
            f"cannot listen on {host}:{port}: {exc.strerror}", param_hint="--metrics-port"
        ) from exc
    with server:
        log.info(
            "serving %s/healthz, /livez, /readyz and /metrics",
            server.url,
            extra={"event": "metrics_listening", "fields": {"url": server.url}},
        )
        yield metrics.observe


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, event, msg and the event's fields."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, timezone.utc)
            .isoformat(timespec="milliseconds")
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
