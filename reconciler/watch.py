"""The watch daemon: change batches in, one whole reconcile round per batch (level-triggered).

The values a round reports (Trigger, RoundStatus, RoundResult) and the daemon's settings, then the
loop. `run()` is the loop and the seam: any iterable of change batches, a `reconcile_once` callable
and a `threading.Event` to stop (tests pass a list, production `change_batches()` over watchfiles).
What one round does lives in watch_round.py (`Reconciler`); the loop's heartbeat in liveness.py.
The only `import watchfiles`.
"""

from __future__ import annotations

import gc
import logging
import math
import os
import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, Protocol, TypeVar

import watchfiles

from reconciler.backoff import DAEMON_BACKOFF, Backoff
from reconciler.errors import ReconcilerError
from reconciler.liveness import Heartbeat
from reconciler.plan import PlanOptions

log = logging.getLogger(__name__)

T = TypeVar("T")


def event(name: str, /, **fields: Any) -> dict[str, Any]:
    """`extra=` for a log call: the event name and fields of a structured (--log-format json) line
    (`name` is positional only: an object's event has a field `name`)."""
    return {"event": name, "fields": fields}


# -- values ---------------------------------------------------------------------------------


class Trigger(str, Enum):
    STARTUP = "startup"
    FILES = "files"  # a batch of manifest (or, with --git, ref) changes
    RESYNC = "resync"  # the resync interval passed without one
    RETRY = "retry"  # the round before failed against the server


class RoundStatus(str, Enum):
    OK = "ok"
    INVALID = "invalid"  # manifests (or secrets) are wrong: nothing written, wait for a change
    UNREACHABLE = "unreachable"
    AUTH = "auth"
    FAILED = "failed"  # the server refused something, or some writes failed
    ERROR = "error"  # a bug: logged, and the daemon goes on

    @property
    def retry(self) -> bool:
        """Worth another round after a backoff (an invalid round waits for a file change)."""
        return self not in (RoundStatus.OK, RoundStatus.INVALID)


@dataclass(frozen=True)
class RoundResult:
    trigger: Trigger
    status: RoundStatus
    duration: float
    message: str = ""
    models: Mapping[str, int] = field(default_factory=dict)
    """Models by state (states.STATES) after the round; empty when the round did not reach the server."""
    commit: str | None = None
    """With --git: the commit this round read."""
    objects: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    """kind → state → count (states.py; its "model" is `models`); only the kinds the round counted."""

    @property
    def ok(self) -> bool:
        return self.status is RoundStatus.OK


class ReconcileOnce(Protocol):
    def __call__(self, trigger: Trigger) -> RoundResult: ...


@dataclass(frozen=True)
class WatchSettings:
    resync_interval: float = 60.0
    """Seconds between rounds when no file changes: they catch changes made on the server."""
    self_heal: bool = False
    """Also undo drift (models deleted or edited on the server) when the manifests did not change."""
    plan: PlanOptions = field(default_factory=PlanOptions)
    """What rounds plan and may do: adopt, prune (within the blast-radius limit), replace, selection."""
    owner: str | None = None
    """This instance's owner: rounds touch only its models (ownership.py)."""
    placeholders: bool = False
    """Missing secrets become placeholders: only for the embedded sandbox."""
    count_kinds: bool = False
    """Count datasets, endpoints and policies in every round (for /metrics), reading them even when
    the round itself has no need to (manifests with models only): read and planned, never written."""
    debug: bool = False


def request_budget(*, timeout: float, retries: int, retry_after_cap: float = 30.0) -> float:
    """The longest a healthy round may go without starting a request: one request with all its
    retries, each attempt taking up to `timeout` and each wait up to the Retry-After cap."""
    return timeout * (retries + 1) + retry_after_cap * retries


# -- the loop -------------------------------------------------------------------------------


def run(
    batches: Iterable[Iterable[str]],
    reconcile_once: ReconcileOnce,
    stop: threading.Event,
    *,
    backoff: Backoff = DAEMON_BACKOFF,
    on_round: Callable[[RoundResult], None] = lambda result: None,
    wait: Callable[[float], bool] | None = None,
    rng: random.Random | None = None,
    heartbeat: Heartbeat | None = None,
    round_silence: float = 300.0,
    idle_silence: float = 5.0,
) -> int:
    """A round at start, then one per batch (an empty batch is a resync), until `stop` or the end.

    A round that failed against the server is retried after a backoff (`wait`, by default
    `stop.wait`, so a stop cuts it short); an invalid round waits for the next batch. Returns the
    number of rounds run. The loop beats `heartbeat` before every round (promising to start a
    request within `round_silence`), before every backoff, and after every round (the change
    source then beats on its ticks, `idle_silence` apart at most); it stops it when it ends.
    """
    wait = wait or stop.wait
    rng = rng or random.Random()
    beat = heartbeat or Heartbeat()
    rounds = 0

    def settle(trigger: Trigger) -> None:
        nonlocal rounds
        failures = 0
        while not stop.is_set():
            beat.beat("round", round_silence)
            result = reconcile_once(trigger)
            rounds += 1
            on_round(result)
            if not result.status.retry:
                beat.beat("waiting", idle_silence)
                return
            delay = backoff.delay(failures, rng=rng)
            failures += 1
            log.info(
                "next attempt in %.1fs",
                delay,
                extra=event("backoff", delay_s=round(delay, 3), failures=failures),
            )
            beat.beat("backoff", delay)
            if wait(delay):
                return
            trigger = Trigger.RETRY

    try:
        settle(Trigger.STARTUP)
        for batch in batches:
            if stop.is_set():
                break
            settle(Trigger.FILES if batch else Trigger.RESYNC)
    finally:
        beat.stopped()
    return rounds


def settled(on_round: Callable[[RoundResult], None]) -> Callable[[RoundResult], None]:
    """`on_round`, after the daemon's heap is settled: what survives a round lives long (the kept
    manifests, checks and server view, watch_cache.py), so it is put out of the cyclic GC's sight
    (`gc.freeze`), or each full collection walks 10,000 manifests' objects again (a resync took
    2 s instead of 0.7 s with them in sight). Young garbage is collected first; the objects hold
    no cycles (loading.py pauses the GC for the same reason). Only for the daemon's process."""

    def call(result: RoundResult) -> None:
        gc.collect(1)
        gc.freeze()
        on_round(result)

    return call


def start(
    open_: Callable[[], T],
    stop: threading.Event,
    *,
    backoff: Backoff = DAEMON_BACKOFF,
    on_failure: Callable[[str, float, int], None] = lambda message, delay, failures: None,
    heartbeat: Heartbeat | None = None,
    wait: Callable[[float], bool] | None = None,
    rng: random.Random | None = None,
) -> T | None:
    """What a loop needs to start (a space's folder, lock, token and client), tried until it
    opens or `stop`: None when stopped first.

    A failure is never the end: it is reported (`on_failure(message, delay, failures)`), the
    heartbeat says the loop cannot start yet (liveness.Heartbeat.cannot_start), and the next
    attempt comes after a backoff, as a round that failed against the server does. A lock held
    by an apply, a token file mounted late or a folder restored by the next commit start the
    space then, not never.
    """
    wait = wait or stop.wait
    rng = rng or random.Random()
    beat = heartbeat or Heartbeat()
    failures = 0
    while not stop.is_set():
        try:
            return open_()
        except ReconcilerError as exc:
            message = exc.message
        except Exception as exc:  # a bug, or the OS: this space waits and tries again, like a round
            log.debug("unexpected error starting", exc_info=True)
            message = f"unexpected error: {type(exc).__name__}: {exc}"
        delay = backoff.delay(failures, rng=rng)
        failures += 1
        on_failure(message, delay, failures)
        beat.cannot_start(delay)
        if wait(delay):
            break
    return None


def change_batches(
    paths: Sequence[Path],
    *,
    keep: Callable[[str], bool],
    stop: threading.Event,
    resync_interval: float,
    debounce_ms: int = 1600,
    step_ms: int = 50,
    clock: Callable[[], float] = time.monotonic,
    on_tick: Callable[[], None] = lambda: None,
) -> Iterator[set[str]]:
    """Changed paths that `keep` wants, and an empty set whenever a resync is due.

    watchfiles gathers changes until `step_ms` pass without a new one (at most `debounce_ms`), so an
    editor's atomic save or a `git pull` is one batch. Filtering happens here rather than in
    watchfiles, and its timeout ticks every second, so noise (editor swap files, .git objects)
    cannot hold off a resync. The first tick after start is a resync: it covers any change made
    while the first round ran, before the watcher existed. `on_tick` runs on every tick.

    A path through a symlink that is flipped to another folder (git-sync publishes each commit as
    a new worktree behind its link) is a change: inotify watches the folder the link pointed to
    when the watch began, so the batch names the path and the watch starts again on the new one.
    """
    tick_ms = max(1, int(min(resync_interval, 1.0) * 1000))
    last = -math.inf
    while True:
        targets = [os.path.realpath(p) for p in paths]
        raw = watchfiles.watch(
            *paths,
            watch_filter=None,
            debounce=debounce_ms,
            step=step_ms,
            stop_event=stop,
            rust_timeout=tick_ms,
            yield_on_timeout=True,
            raise_interrupt=False,
        )
        relinked: list[str] = []
        try:
            for changes in raw:
                on_tick()
                wanted = {path for _, path in changes if keep(path)}
                relinked = [str(p) for p, t in zip(paths, targets, strict=True) if os.path.realpath(p) != t]
                wanted.update(relinked)
                now = clock()
                if wanted or now - last >= resync_interval:
                    last = now
                    yield wanted
                if relinked:
                    break
        finally:
            raw.close()
        if not relinked or stop.is_set():
            return
