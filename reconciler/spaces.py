"""Many spaces from one project file: which ones a run takes, and running a command on each.

`select()` applies `--space GLOB` and the shard (`--shard I/N`, or the replica's ordinal in a
StatefulSet); `run_each()` runs one task per space on a bounded pool, each failure isolated and
turned into that space's exit code; `summary_exit()` folds those into the run's one exit code.
The per-space tasks (validate, plan, apply, export) live in space_tasks.py; the watch daemon's
fan-out over many spaces is `watch_all()`. Shell: no click, no printing.
"""

from __future__ import annotations

import contextlib
import fnmatch
import hashlib
import logging
import os
import queue
import re
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reconciler import render
from reconciler.backoff import Backoff
from reconciler.client import SpaceClient
from reconciler.errors import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_UNEXPECTED,
    BadSetting,
    ReconcilerError,
)
from reconciler.project import DEFAULT_PATHS, Instance, Project, SpaceSpec, lock_key
from reconciler.references import EnvRef, read_secret_file

log = logging.getLogger(__name__)

DEFAULT_PARALLELISM = 4
"""Spaces worked on at once (`--spaces-parallelism`); each also has its own request parallelism."""


# -- which spaces: --space and --shard ---------------------------------------------------------


@dataclass(frozen=True)
class Shard:
    """Shard `index` of `count` (1-based, as written: `--shard 2/3`)."""

    index: int
    count: int

    @classmethod
    def parse(cls, text: str) -> Shard:
        match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
        if not match:
            raise BadSetting(f"--shard {text!r}: write I/N, e.g. 2/3 (shard 2 of 3)")
        index, count = int(match[1]), int(match[2])
        if not 1 <= index <= count:
            raise BadSetting(f"--shard {text!r}: I must be between 1 and N")
        return cls(index, count)

    @classmethod
    def from_hostname(cls, hostname: str, count: int) -> Shard:
        """A StatefulSet replica's shard: pod `name-<ordinal>` takes shard ordinal+1 of `count`."""
        match = re.fullmatch(r".+-(\d+)", hostname)
        if not match:
            raise BadSetting(
                f"cannot read a replica ordinal from host name {hostname!r} (expected NAME-<ordinal>, "
                "as a StatefulSet's pods are named); pass --shard I/N"
            )
        ordinal = int(match[1])
        if ordinal >= count:
            raise BadSetting(
                f"host name {hostname!r} is replica {ordinal}, but there are only {count} shard(s): "
                "set the shard count to the StatefulSet's replicas"
            )
        return cls(ordinal + 1, count)

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def shard_of(name: str, count: int) -> int:
    """The shard (1-based) a space belongs to: a stable hash of its name, the same in every
    process and on every machine (never Python's salted `hash()`)."""
    digest = hashlib.sha256(name.encode()).digest()
    return int.from_bytes(digest[:8], "big") % count + 1


def select(
    specs: Sequence[SpaceSpec], patterns: Sequence[str] = (), shard: Shard | None = None
) -> tuple[SpaceSpec, ...]:
    """The spaces matching any `--space` glob (all when none) that fall in `shard`.

    A glob that matches no declared space is refused: a typo must not silently do nothing.
    """
    for pattern in patterns:
        if not any(fnmatch.fnmatchcase(s.name, pattern) for s in specs):
            known = ", ".join(s.name for s in specs[:10]) + (" …" if len(specs) > 10 else "")
            raise BadSetting(f"--space {pattern!r} matches no space in the project file (spaces: {known})")
    chosen = [s for s in specs if not patterns or any(fnmatch.fnmatchcase(s.name, p) for p in patterns)]
    if shard is not None:
        chosen = [s for s in chosen if shard_of(s.name, shard.count) == shard.index]
    return tuple(chosen)


# -- one space's connection and instance -------------------------------------------------------


@dataclass(frozen=True)
class Connection:
    """The connection settings all spaces share (the command line's --timeout, --retries, …)."""

    timeout: float = 10.0
    retries: int = 5
    insecure: bool = False
    ca_cert: str | None = None
    parallelism: int = 8


def resolve_token(spec: SpaceSpec, env: Mapping[str, str], *, folder: Path) -> str:
    """The space's token from its reference; a missing variable or file fails this space only."""
    from reconciler import redact

    token = spec.token
    if isinstance(token, EnvRef):
        missing = [v for v in token.variables if v not in env]
        if missing:
            raise BadSetting(f"{spec.where}: spaces.token: environment variable {missing[0]} is not set")
        value = "".join(env[t] if is_var else t for is_var, t in token.parts)
    else:
        path = Path(token.path) if Path(token.path).is_absolute() else folder / token.path
        try:
            value = read_secret_file(path, limit=64 * 1024)
        except (OSError, UnicodeDecodeError) as exc:
            reason = getattr(exc, "strerror", None) or "not UTF-8 text"
            raise BadSetting(f"{spec.where}: spaces.token: cannot read {path}: {reason}") from None
    redact.register(value, value.strip())
    value = value.strip()
    if not value or any(not "!" <= c <= "~" for c in value):
        raise BadSetting(f"{spec.where}: spaces.token: the token is empty or not printable ASCII")
    return value


def connect(
    spec: SpaceSpec,
    connection: Connection,
    env: Mapping[str, str],
    *,
    folder: Path,
    sleep: Callable[[float], Any] | None = None,
) -> SpaceClient:
    import time

    return SpaceClient(
        spec.server,
        token=resolve_token(spec, env, folder=folder),
        tenant=spec.tenant,
        timeout=connection.timeout,
        retry=Backoff.with_retries(connection.retries),
        insecure=connection.insecure,
        ca_cert=connection.ca_cert,
        max_connections=max(connection.parallelism, 4),
        sleep=sleep or time.sleep,
    )


def instance_for(spec: SpaceSpec, project: Project, *, owner: str | None = None) -> Instance:
    """The space's instance: --owner, else the space's owner, else the project's; its paths, else
    the project's, else `manifests/` beside the project file."""
    declared = spec.paths or project.paths
    roots = declared or tuple(project.folder / p for p in DEFAULT_PATHS)
    chosen = owner if owner is not None else (spec.owner if spec.owner is not None else project.owner)
    return Instance(chosen, roots, declared, project)


def lock_of(spec: SpaceSpec, project: Project, *, command: str, shared: bool) -> Any:
    from reconciler.lock import space_lock

    return space_lock(project.folder, lock_key(spec.server, spec.tenant), command=command, shared=shared)


# -- running a command on each ------------------------------------------------------------------


@dataclass
class SpaceResult:
    """One space's part of a run: its exit code, its JSON section and its text lines."""

    spec: SpaceSpec
    exit_code: int = EXIT_OK
    data: dict[str, Any] = field(default_factory=dict)
    lines: list[str] = field(default_factory=list)
    """stdout lines of the space's section."""
    notes: list[str] = field(default_factory=list)
    """Warnings and errors (stderr in text output)."""
    error: dict[str, Any] | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.spec.name,
            "server": self.spec.server,
            "tenant": self.spec.tenant,
            "exit_code": self.exit_code,
            "result": self.data or None,
            "error": self.error,
        }

    def header(self) -> str:
        tenant = f" (tenant {self.spec.tenant})" if self.spec.tenant else ""
        return f"== space {self.spec.name}: {self.spec.server}{tenant} =="


Task = Callable[[SpaceSpec, SpaceResult], None]


class Interrupt:
    """The first SIGINT/SIGTERM of a multi-space run: spaces not started are not started, and
    the applies in flight stop submitting (their in-flight requests finish and are reported),
    as one `apply` does."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._lock = threading.Lock()
        self._executors: set[Any] = set()

    def __call__(self, signum: int) -> None:
        with self._lock:
            self.signum = self.signum or signum
            running = list(self._executors)
        for executor in running:
            executor.interrupt(signum)

    @property
    def stopped(self) -> bool:
        return self.signum is not None

    @contextlib.contextmanager
    def track(self, executor: Any) -> Iterator[None]:
        with self._lock:
            self._executors.add(executor)
            signum = self.signum
        if signum is not None:
            executor.interrupt(signum)
        try:
            yield
        finally:
            with self._lock:
                self._executors.discard(executor)


def run_each(
    specs: Sequence[SpaceSpec],
    task: Task,
    *,
    parallelism: int = DEFAULT_PARALLELISM,
    interrupt: Interrupt | None = None,
) -> list[SpaceResult]:
    """Run `task` on every space, `parallelism` at a time; results in the spaces' order.

    One space's error (an unreachable server, a missing token, invalid manifests, a bug) becomes
    that space's exit code and error; the others carry on. After `interrupt` fired, the spaces
    not started yet are reported as not attempted (exit 128 + the signal).
    """

    def one(spec: SpaceSpec) -> SpaceResult:
        result = SpaceResult(spec)
        if interrupt is not None and interrupt.signum is not None:
            result.exit_code = 128 + interrupt.signum
            result.error = {"kind": "interrupted", "message": "not attempted (run stopped)"}
            result.notes.append("error: not attempted (run stopped)")
            return result
        try:
            task(spec, result)
        except ReconcilerError as exc:
            result.exit_code = exc.exit_code
            result.error = render.error_json(exc)["error"]
            problems = getattr(exc, "problems", ())
            result.notes += [str(p) for p in problems] + [f"error: {exc.message}"]
        except Exception as exc:  # a bug in one space must not take the others down
            log.debug("space %s: unexpected error", spec.name, exc_info=True)
            result.exit_code = EXIT_UNEXPECTED
            message = f"unexpected error: {type(exc).__name__}: {exc}"
            result.error = {"kind": "unexpected", "message": message}
            result.notes.append(f"error: {message} (run with --debug for the traceback)")
        return result

    if parallelism <= 1 or len(specs) <= 1:
        return [one(s) for s in specs]
    with ThreadPoolExecutor(max_workers=parallelism, thread_name_prefix="space") as pool:
        return list(pool.map(one, specs))


def summary_exit(codes: Sequence[int]) -> int:
    """The run's exit code: 0 when every space succeeded; the code the failing spaces share when
    they all failed the same way (4: unreachable, 2: changes pending with --detailed-exitcode, …);
    1 when they failed in different ways (each space's own code is in the output)."""
    failed = {c for c in codes if c != EXIT_OK}
    if not failed:
        return EXIT_OK
    return failed.pop() if len(failed) == 1 else EXIT_FAILED


def run_json(command: str, results: Sequence[SpaceResult], *, shard: Shard | None) -> dict[str, Any]:
    """The JSON document of a multi-space run: a section per space, and the summary code."""
    return {
        "version": render.JSON_VERSION,
        "command": command,
        "shard": str(shard) if shard else None,
        "exit_code": summary_exit([r.exit_code for r in results]),
        "spaces": [r.as_json() for r in results],
    }


# -- watch: many spaces in one process ----------------------------------------------------------


def _queued(
    inbox: queue.Queue[set[str] | None], stop: threading.Event, on_idle: Callable[[], None]
) -> Iterator[set[str]]:
    """A space's change batches from its inbox; batches queued during a round become one.
    `on_idle` runs while it waits (the space's loop is alive, just idle)."""
    while not stop.is_set():
        on_idle()
        try:
            batch = inbox.get(timeout=0.5)
        except queue.Empty:
            continue
        if batch is None:
            return
        merged = set(batch)
        resync = not batch
        while True:
            try:
                more = inbox.get_nowait()
            except queue.Empty:
                break
            if more is None:
                return
            resync = resync or not more
            merged |= more
        yield set() if resync and not merged else merged


def _covers(roots: Sequence[Path], path: str) -> bool:
    real = Path(os.path.realpath(path))
    for root in roots:
        target = Path(os.path.realpath(root))
        if real == target or real.is_relative_to(target) or Path(path).is_relative_to(root):
            return True
    return False


@dataclass
class WatchedSpace:
    """One space of a multi-space watch: its roots and the round to run on a change."""

    name: str
    roots: tuple[Path, ...]
    run: Callable[[Iterator[set[str]]], Any]
    """Runs the space's loop over its change batches until they end (watch.run, bound)."""
    on_idle: Callable[[], None] = lambda: None
    """Called while the loop waits for a batch (its heartbeat)."""
    inbox: queue.Queue[set[str] | None] = field(default_factory=queue.Queue)
    takes_batches: Callable[[], bool] = lambda: True
    """False while the space is not started yet (its `run` retries that first): it is sent no
    batch meanwhile, since its first round reads everything anyway."""


def watch_all(spaces: Sequence[WatchedSpace], batches: Iterator[set[str]], stop: threading.Event) -> None:
    """One change source for every space, one loop per space (its rounds, backoff and state).

    A batch goes to the started spaces whose roots hold a changed path (every batch to a space
    without roots, e.g. at git HEAD, where any commit may concern it); an empty batch (a resync)
    to all of them. A space's `run` first starts it (retried with backoff until it can), then
    runs its loop.
    Each space's loop runs in its own thread, so a space waiting out a backoff or a slow server
    holds up no other; the rounds themselves are bounded by the caller (a semaphore in `run`).
    """
    threads = [
        threading.Thread(
            target=s.run, args=(_queued(s.inbox, stop, s.on_idle),), name=f"space-{s.name}", daemon=True
        )
        for s in spaces
    ]
    for thread in threads:
        thread.start()
    try:
        for batch in batches:
            if stop.is_set():
                break
            for space in spaces:
                if not space.takes_batches():
                    continue
                if not batch:
                    space.inbox.put(set())
                    continue
                mine = {p for p in batch if not space.roots or _covers(space.roots, p)}
                if mine:
                    space.inbox.put(mine)
    finally:
        stop.set()
        for space in spaces:
            space.inbox.put(None)
        for thread in threads:
            thread.join()


def bounded(semaphore: threading.Semaphore, fn: Callable[..., Any]) -> Callable[..., Any]:
    """`fn` run at most as many at once as the semaphore allows (--spaces-parallelism)."""

    def call(*args: Any, **kwargs: Any) -> Any:
        with semaphore:
            return fn(*args, **kwargs)

    return call
