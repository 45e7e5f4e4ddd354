"""`watch`: the daemon. Options → lock, server, sources, logging, metrics → `watch.run()` until a signal."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import logging
import sys
import threading
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

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
from reconciler.cli.spaces import MultiSpace, spaces_from, spaces_options
from reconciler.signals import graceful

if TYPE_CHECKING:
    from reconciler.client import SpaceClient
    from reconciler.project import Instance, SpaceSpec
    from reconciler.schemas import SchemaRegistry
    from reconciler.sources import Source
    from reconciler.space_tasks import Run
    from reconciler.watch import WatchSettings
    from reconciler.watch_round import Reconciler

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
@spaces_options
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
    from reconciler.liveness import Heartbeat
    from reconciler.project import check_prune_scope
    from reconciler.sources import GitHead, ManifestLoader, WorkTree, noted
    from reconciler.watch_round import Reconciler, log_wait

    options = plan_options_from(kw)
    multi = spaces_from(paths, kw, parallelism=parallelism)
    if multi is not None:
        return _watch_many(
            multi,
            options,
            self_heal=self_heal,
            resync_interval=resync_interval,
            debounce_ms=debounce_ms,
            step_ms=step_ms,
            use_git=use_git,
            log_format=log_format,
            metrics=(metrics_host, metrics_port),
        )
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
        count_kinds=metrics_port is not None,
    )
    source: Source = GitHead.open(roots) if use_git else WorkTree()
    # the watcher ticks at least every second; a batch of changes takes up to the debounce
    idle_silence = min(resync_interval, 1.0) + (debounce_ms + step_ms) / 1000
    stop = threading.Event()
    with contextlib.ExitStack() as stack:
        stack.enter_context(lock_for(instance, settings, command="watch", shared=False))
        # client retries end early on a stop, so the round ends soon
        client = stack.enter_context(
            connect(settings, parallelism=parallelism, sleep=stop.wait, on_wait=log_wait)
        )
        heartbeat = Heartbeat(progress=lambda: client.requests)
        on_round = stack.enter_context(_metrics(metrics_host, metrics_port, heartbeat))
        # the first SIGTERM/SIGINT lets the current round finish; a second one interrupts it
        stack.enter_context(graceful(lambda signum: stop.set(), then="interrupt"))
        reconciler = Reconciler(
            ManifestLoader(roots, schemas, source, var_files=instance.var_files(var_files)),
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
        batches = noted(source, batches)  # a round after a batch stats only its files
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
            on_round=daemon.settled(on_round),
            heartbeat=heartbeat,
            round_silence=daemon.request_budget(timeout=settings.timeout, retries=settings.retries),
            idle_silence=idle_silence,
        )
    log.info("stopped", extra={"event": "stop", "fields": {}})


def _watch_many(
    multi: MultiSpace,
    options: Any,
    *,
    self_heal: bool,
    resync_interval: float,
    debounce_ms: int,
    step_ms: int,
    use_git: bool,
    log_format: str,
    metrics: tuple[str, int | None],
) -> None:
    """`watch` over the project file's spaces: one change source, one loop per space (its own
    rounds, backoff, lock and client), at most --spaces-parallelism rounds at once. A space that
    cannot start (a missing token or folder, its lock held) is logged, reported not ready and
    tried again with backoff in its own thread; the others run meanwhile."""
    from reconciler import spaces
    from reconciler import watch as daemon
    from reconciler.liveness import Heartbeat, Heartbeats
    from reconciler.sources import GitHead, WorkTree

    debug = current().debug
    _configure_logging(log_format, debug=debug)
    run, specs = multi.run, multi.specs
    if not specs:
        raise click.UsageError(f"no space selected (shard {multi.shard}); nothing to watch")
    stop = threading.Event()
    idle_silence = min(resync_interval, 1.0) + (debounce_ms + step_ms) / 1000
    all_roots = _existing_roots(run, specs)
    # the change source is one; each space reads through its own Source (their parse caches are
    # not shared between threads)
    source: Source = GitHead.open(all_roots) if use_git else WorkTree()
    with contextlib.ExitStack() as stack:
        daemon_metrics, server = stack.enter_context(_metrics_many(*metrics, [s.name for s in specs]))
        shared = _Shared(
            run=run,
            options=options,
            stop=stop,
            metrics=daemon_metrics,
            schemas=bundled_registry(),
            semaphore=threading.Semaphore(multi.parallelism),
            backoff=dataclasses.replace(
                DAEMON_BACKOFF, cap=min(DAEMON_BACKOFF.cap, max(resync_interval, 1.0))
            ),
            round_silence=daemon.request_budget(
                timeout=run.connection.timeout, retries=run.connection.retries
            ),
            idle_silence=idle_silence,
            use_git=use_git,
            settings=daemon.WatchSettings(
                resync_interval=resync_interval,
                self_heal=self_heal,
                plan=options,
                debug=debug,
                count_kinds=metrics[1] is not None,
            ),
        )
        loops = [_SpaceLoop(shared, spec) for spec in specs]
        heartbeat = Heartbeats(Heartbeat(), [loop.heartbeat for loop in loops])
        if server is not None:  # /livez: the change source and every space's loop
            server.heartbeat = heartbeat
        stack.enter_context(graceful(lambda signum: stop.set(), then="interrupt"))
        batches = daemon.change_batches(
            source.watch_paths(all_roots),
            keep=source.keep,
            stop=stop,
            resync_interval=resync_interval,
            debounce_ms=debounce_ms,
            step_ms=step_ms,
            on_tick=lambda: heartbeat.beat("waiting", idle_silence),
        )
        log.info(
            "watching %d space(s)%s: %s",
            len(loops),
            f" (shard {multi.shard})" if multi.shard else "",
            ", ".join(s.name for s in specs),
            extra={"event": "start", "fields": {"spaces": [s.name for s in specs], "git": use_git}},
        )
        spaces.watch_all([loop.watched() for loop in loops], batches, stop)
    log.info("stopped", extra={"event": "stop", "fields": {}})


@dataclasses.dataclass(frozen=True)
class _Shared:
    """What the loops of one multi-space watch share."""

    run: Run
    options: Any
    stop: threading.Event
    metrics: Any  # metrics.DaemonMetrics
    schemas: SchemaRegistry
    semaphore: threading.Semaphore
    backoff: Any  # backoff.Backoff
    round_silence: float
    idle_silence: float
    use_git: bool
    settings: WatchSettings


class _SpaceLoop:
    """One space of a multi-space watch, in its own thread: started (its folder, its own Source,
    lock and client), tried again with backoff until it can, then its loop of rounds."""

    def __init__(self, shared: _Shared, spec: SpaceSpec) -> None:
        from reconciler.liveness import Heartbeat

        self.shared, self.spec = shared, spec
        self.client: SpaceClient | None = None
        self.heartbeat = Heartbeat(progress=lambda: self.client.requests if self.client else 0)
        self.started = threading.Event()

    def watched(self) -> Any:
        from reconciler import spaces

        instance = self.shared.run.instance(self.spec)
        return spaces.WatchedSpace(
            self.spec.name,
            () if self.shared.use_git else instance.roots,  # a commit may touch any space
            self,
            on_idle=functools.partial(self.heartbeat.beat, "waiting", self.shared.idle_silence),
            takes_batches=self.started.is_set,
        )

    def __call__(self, batches: Iterator[set[str]]) -> None:
        from reconciler import spaces
        from reconciler import watch as daemon
        from reconciler.sources import noted

        shared, name = self.shared, self.spec.name
        opened = daemon.start(
            functools.partial(
                _open_space,
                shared.run,
                self.spec,
                shared.stop,
                prune=shared.options.prune,
                use_git=shared.use_git,
            ),
            shared.stop,
            backoff=shared.backoff,
            on_failure=self._failed,
            heartbeat=self.heartbeat,
        )
        if opened is None:  # stopped before it could start
            self.heartbeat.stopped()
            return
        held, instance, source, self.client = opened
        with held:
            shared.metrics.space_started(name)
            log.info("space %s started", name, extra=_space_ev(name, "space_started"))
            self.started.set()
            reconciler = _space_reconciler(
                shared.run,
                self.spec,
                instance,
                source,
                self.client,
                shared.options,
                schemas=shared.schemas,
                settings=dataclasses.replace(shared.settings, owner=instance.owner),
            )
            daemon.run(
                noted(source, batches),  # its own Source: a round after a batch stats only its files
                reconcile_once=spaces.bounded(shared.semaphore, reconciler),
                stop=shared.stop,
                backoff=shared.backoff,
                on_round=daemon.settled(shared.metrics.observer(name)),
                heartbeat=self.heartbeat,
                round_silence=shared.round_silence,
                idle_silence=shared.idle_silence,
            )

    def _failed(self, message: str, delay: float, failures: int) -> None:
        name = self.spec.name
        self.shared.metrics.cannot_start(name, message)
        log.error(
            "space %s cannot start: %s; next attempt in %.1fs",
            name,
            message,
            delay,
            extra={
                "event": "space_failed",
                "fields": {"space": name, "delay_s": round(delay, 3), "failures": failures},
            },
        )


def _existing_roots(run: Run, specs: tuple[SpaceSpec, ...]) -> list[Path]:
    """Every space's manifest roots that exist, sorted; a usage error when none does. Only folders
    that exist are watched: a space whose folder is missing fails alone (`_open_space`) until
    it exists, and then sees its changes at each resync."""
    roots = sorted({r for spec in specs for r in run.instance(spec).roots if r.exists()})
    if not roots:
        raise click.UsageError("none of the spaces' manifest folders exists; nothing to watch")
    return roots


def _open_space(
    run: Run, spec: SpaceSpec, stop: threading.Event, *, prune: bool, use_git: bool
) -> tuple[contextlib.ExitStack[Any], Instance, Source, SpaceClient]:
    """(what to release, instance, its own Source, client) for one space: its folders exist,
    its prune is whole, its lock is held and its client is made (the token read); ReconcilerError
    (nothing held) when it cannot start yet."""
    from reconciler import spaces
    from reconciler.errors import ReconcilerError
    from reconciler.project import check_prune_scope
    from reconciler.sources import GitHead, WorkTree

    instance = run.instance(spec)
    missing = [str(r) for r in instance.roots if not r.exists()]
    if missing:
        raise ReconcilerError(f"no such file or directory: {', '.join(missing)}")
    if prune:
        check_prune_scope(instance)
    own_source: Source = GitHead.open(instance.roots) if use_git else WorkTree()
    with contextlib.ExitStack() as stack:
        stack.enter_context(spaces.lock_of(spec, run.project, command="watch", shared=False))
        client = run.connect(spec, sleep=stop.wait)
        stack.callback(client.close)
        return stack.pop_all(), instance, own_source, client


def _space_reconciler(
    run: Run,
    spec: SpaceSpec,
    instance: Instance,
    source: Source,
    client: SpaceClient,
    options: Any,
    *,
    schemas: SchemaRegistry,
    settings: WatchSettings,
) -> Reconciler:
    """One space's watch_round.Reconciler: its manifests through its own Source, its own client."""
    from reconciler.apply import ApplyOptions
    from reconciler.sources import ManifestLoader
    from reconciler.watch_round import Reconciler

    return Reconciler(
        ManifestLoader(instance.roots, schemas, source, var_files=spec.var_files),
        client,
        schemas,
        options=ApplyOptions(
            parallelism=run.connection.parallelism,
            replace=frozenset(options.replace),
            replace_all=options.replace_all,
            max_create_attempts=run.connection.retries + 1,
            facts=schemas.facts,
            owner=instance.owner,
        ),
        settings=settings,
    )


def _space_ev(space: str, event: str) -> dict[str, Any]:
    return {"event": event, "fields": {"space": space}}


@contextlib.contextmanager
def _metrics_many(host: str, port: int | None, names: list[str]) -> Iterator[Any]:
    """(the spaces' DaemonMetrics, the metrics server or None); the server starts at once and is
    given the liveness source when the loops exist."""
    from reconciler.metrics import DaemonMetrics, MetricsServer

    metrics = DaemonMetrics(names)
    if port is None:
        yield metrics, None
        return
    try:
        server = MetricsServer(metrics, host=host, port=port)
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
        yield metrics, server


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


class _SpaceFilter(logging.Filter):
    """Tags a record logged by a space's loop (thread `space-NAME`, spaces.watch_all) with the
    space: a `space` field in JSON, a `[NAME] ` prefix in text."""

    def filter(self, record: logging.LogRecord) -> bool:
        name = threading.current_thread().name
        space = name[len("space-") :] if name.startswith("space-") else ""
        record.space_prefix = f"[{space}] " if space else ""
        if space:
            record.fields = {"space": space, **getattr(record, "fields", {})}
        return True


def _configure_logging(fmt: str, *, debug: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_SpaceFilter())
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(space_prefix)s%(message)s"))
    root = logging.getLogger()
    for old in root.handlers[:]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if debug else logging.INFO)
    # one line per HTTP request or file event would bury the rounds; --debug shows them
    for noisy in ("httpx", "httpcore", "watchfiles", "uvicorn", "uvicorn.error"):
        logging.getLogger(noisy).setLevel(logging.DEBUG if debug else logging.WARNING)
