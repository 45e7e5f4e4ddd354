"""The watch daemon: change batches in, one whole reconcile round per batch (level-triggered).

`run()` is the loop and the seam: any iterable of change batches, a `reconcile_once` callable and a
`threading.Event` to stop (tests pass a list, production `change_batches()` over watchfiles). A
`Reconciler` is one round: load (through sources.py: a parse cache, or the files at git HEAD) →
validate → resolve → observe → plan → apply, or only report drift. The only `import watchfiles`.
"""

from __future__ import annotations

import hashlib
import json
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
from typing import Any, Protocol

import watchfiles

from reconciler import render
from reconciler.apply import ApplyOptions, Executor
from reconciler.backoff import DAEMON_BACKOFF, Backoff
from reconciler.client import SpaceClient
from reconciler.errors import (
    AuthError,
    InvalidManifests,
    ReconcilerError,
    RetryableServerError,
    ServerError,
    ServerUnreachable,
)
from reconciler.graph_apply import run_plans
from reconciler.kinds.plan import KindsPlan, plan_kinds
from reconciler.loading import Loaded
from reconciler.model import ApplyReport, Manifest, Op, Outcome, Plan, Result
from reconciler.plan import PlanOptions, Scope
from reconciler.references import resolve_secrets
from reconciler.round import Observed, check_space_deletions, observe_and_plan, observe_kinds
from reconciler.schemas import SchemaRegistry
from reconciler.states import object_states

log = logging.getLogger(__name__)


def _ev(event: str, **fields: Any) -> dict[str, Any]:
    """`extra=` for a log call: the event name and fields of a structured (--log-format json) line."""
    return {"event": event, "fields": fields}


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


# -- liveness -------------------------------------------------------------------------------


STALL_SLACK_S = 30.0
"""Added to every promise of the loop: a busy machine (GC, two cores shared) is not a stuck loop."""


@dataclass(frozen=True)
class Liveness:
    alive: bool
    phase: str
    """starting, waiting (for file changes), round, backoff or stopped."""
    silent_s: float
    """Seconds since the loop was last heard from (a beat, or a request it started in a round)."""
    allowed_s: float
    """How long it may stay silent in this phase (its promise plus STALL_SLACK_S)."""


class Heartbeat:
    """When the daemon's loop was last heard from, and how long it promised to stay silent (/livez).

    The loop beats with a promise at each step: waiting for changes, it beats on every tick of
    the watcher (at most a tick plus the debounce apart); before a backoff, the delay; before a
    round, `round_silence` (the longest one request may take with its retries). During a round,
    every request it starts (`progress`, a counter) renews the promise, so a long apply of many
    models stays alive while a hung one does not. A loop that ended is not alive.
    """

    def __init__(
        self, *, progress: Callable[[], int] = lambda: 0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._progress = progress
        self._clock = clock
        self._lock = threading.Lock()
        self._phase = "starting"
        self._at = clock()
        self._allowed = STALL_SLACK_S
        self._seen = progress()

    def beat(self, phase: str, within: float) -> None:
        """The loop is in `phase` and will be heard from again within `within` seconds."""
        with self._lock:
            self._phase, self._at, self._allowed = phase, self._clock(), within + STALL_SLACK_S
            self._seen = self._progress()

    def stopped(self) -> None:
        with self._lock:
            self._phase, self._at, self._allowed = "stopped", self._clock(), 0.0

    def status(self) -> Liveness:
        with self._lock:
            now, seen = self._clock(), self._progress()
            if seen != self._seen and self._phase == "round":  # a request started since: progress
                self._seen, self._at = seen, now
            silent = now - self._at
            alive = self._phase != "stopped" and silent <= self._allowed
            return Liveness(alive, self._phase, silent, self._allowed)


class Heartbeats(Heartbeat):
    """Many loops as one (a watch over many spaces): alive while every one keeps its promise;
    the status is the first that does not, else the change source's own."""

    def __init__(self, source: Heartbeat, loops: Sequence[Heartbeat]) -> None:
        super().__init__()
        self.source = source
        self.loops = tuple(loops)

    def beat(self, phase: str, within: float) -> None:
        self.source.beat(phase, within)

    def stopped(self) -> None:
        self.source.stopped()

    def status(self) -> Liveness:
        statuses = [self.source.status(), *(h.status() for h in self.loops)]
        return next((s for s in statuses if not s.alive), statuses[0])


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
                extra=_ev("backoff", delay_s=round(delay, 3), failures=failures),
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


# -- one round ------------------------------------------------------------------------------


def desired_digest(manifests: Sequence[Manifest]) -> str:
    """What would be sent to the server; compared, never shown (it covers resolved secrets)."""
    bodies = sorted((m.create_body() for m in manifests), key=lambda b: str(b["name"]))
    return hashlib.sha256(json.dumps(bodies, sort_keys=True, default=str).encode()).hexdigest()


class Reconciler:
    """One whole round per call. It writes only when the desired state differs from the one last
    applied in full (a file changed, or the last apply failed), or with self-heal; otherwise a
    difference on the server is drift, and is reported."""

    def __init__(
        self,
        loader: Callable[[], tuple[Loaded, str | None]],
        client: SpaceClient,
        registry: SchemaRegistry,
        *,
        options: ApplyOptions,
        settings: WatchSettings,
    ) -> None:
        self.loader = loader
        self.client = client
        self.registry = registry
        self.options = options
        self.settings = settings
        self.applied: str | None = None
        """Digest of the desired state the server was last known to match (None: unknown)."""
        self.applied_commit: str | None = None
        self._announced: str | None = None

    def __call__(self, trigger: Trigger) -> RoundResult:
        start = time.monotonic()
        objects: dict[str, dict[str, int]] = {}
        commit: str | None = None
        try:
            status, message, objects, commit = self._round()
        except InvalidManifests as exc:
            for p in exc.problems:
                level = logging.WARNING if p.severity == "warning" else logging.ERROR
                log.log(level, "%s", p, extra=_ev("problem", **p.as_dict()))
            status, message = RoundStatus.INVALID, exc.message
        except AuthError as exc:
            log.error("credentials refused, nothing written: %s", exc, extra=_ev("auth_refused"))
            status, message = RoundStatus.AUTH, str(exc)
        except (ServerUnreachable, RetryableServerError) as exc:
            log.warning("server unavailable: %s", exc, extra=_ev("unreachable"))
            status, message = RoundStatus.UNREACHABLE, str(exc)
        except ReconcilerError as exc:
            log.error("%s", exc, extra=_ev("round_error", kind=exc.kind))
            status, message = RoundStatus.FAILED, str(exc)
        except Exception as exc:  # a bug must not end the daemon; the next round may well work
            log.error(
                "unexpected error: %s: %s%s",
                type(exc).__name__,
                exc,
                "" if self.settings.debug else " (run with --debug for the traceback)",
                exc_info=self.settings.debug,
                extra=_ev("unexpected_error"),
            )
            status, message = RoundStatus.ERROR, f"{type(exc).__name__}: {exc}"
        models = objects.get("model", {})
        result = RoundResult(trigger, status, time.monotonic() - start, message, models, commit, objects)
        where = f" at {commit[:12]}" if commit else ""
        log.log(
            logging.INFO if result.ok else logging.WARNING,
            "round %s (%s%s, %.2fs)%s",
            status.value,
            trigger.value,
            where,
            result.duration,
            f": {message}" if message else "",
            extra=_ev(
                "round",
                trigger=trigger.value,
                status=status.value,
                duration_s=round(result.duration, 4),
                models=dict(models),
                commit=commit,
            ),
        )
        return result

    def _round(self) -> tuple[RoundStatus, str, dict[str, dict[str, int]], str | None]:
        loaded, commit = self.loader()
        manifests, notes = resolve_secrets(
            loaded.manifests, os.environ, placeholders=self.settings.placeholders
        )
        datasets, more = resolve_secrets(loaded.datasets, os.environ, placeholders=self.settings.placeholders)
        notes += more
        digest = desired_digest(manifests)
        if datasets or loaded.endpoints:  # every kind counts; a models-only digest is unchanged
            digest = desired_digest([*manifests, *datasets]) + repr(sorted(map(repr, loaded.endpoints)))
        if digest != self._announced:  # say a desired state's warnings once, not every round
            self._announced = digest
            for p in loaded.warnings:
                log.warning("%s", p, extra=_ev("problem", **p.as_dict()))
            for note in notes:
                log.warning("%s", note, extra=_ev("note"))
        s = self.settings
        scope = s.plan.scope(s.owner)
        observed = observe_and_plan(
            self.client,
            manifests,
            self.registry,
            scope=scope,
            datasets=datasets,
            endpoints=loaded.endpoints,
            replace_names=frozenset(s.plan.replace),
            replace_all=s.plan.replace_all,
        )
        plan, kinds = observed.plan, observed.kinds
        write = digest != self.applied or s.self_heal
        report = None
        if not write:
            _report_drift(plan)
            _report_kind_drift(kinds)
        elif any(c.writes for c in plan.changes) or any(c.writes for c in kinds.changes):
            selected = sum(1 for m in manifests if scope.selection.selects(m.name, m.dtype, m.tags))
            s.plan.check(plan, manifest_count=selected)
            check_space_deletions(observed, s.plan, s.owner)
            # From the first write on, the server matches no known desired state until this apply
            # succeeds: a round that fails half way (or raises) leaves `applied` unknown, so the
            # next round writes whatever the manifests say, a revert to the old state included.
            self.applied = None
            executor = Executor(self.client, self.options, on_outcome=_log_outcome)
            report = run_plans(executor, plan, kinds, observed.space)
        for change in plan.changes:
            if change.op is Op.CONFLICT:
                log.warning(
                    "conflict: `%s` is on the server and was not created by the reconciler: %s",
                    change.name,
                    change.reason or "pass --adopt to take it over",
                    extra=_ev("conflict", model=change.name),
                )
        failed = [o for o in report.outcomes if o.result is Result.FAILED] if report else []
        if write and not failed and not (report is not None and report.interrupted):
            self.applied, self.applied_commit = digest, commit
            if commit:
                log.info("applied commit %s", commit, extra=_ev("applied_commit", commit=commit))
        objects = self._count(observed, scope, report)
        models = objects["model"]
        summary = ", ".join(f"{n} {state.replace('_', ' ')}" for state, n in models.items() if n)
        summary = summary or "no models"
        if report is not None:
            done = ", ".join(f"{n} {result}" for result, n in report.counts().items() if n)
            summary = f"{done}; now {summary}" if done else summary
        elif not write and any(c.writes for c in plan.changes):
            summary += " (drift reported, not undone)"
        if failed:
            return RoundStatus.FAILED, f"{len(failed)} write(s) failed: {summary}", objects, commit
        return RoundStatus.OK, summary, objects, commit

    def _count(
        self, observed: Observed, scope: Scope, report: ApplyReport | None
    ) -> dict[str, dict[str, int]]:
        """kind → state → count after the round (states.py): only models when the other kinds
        were not read and are not to be counted, or could not be (their series keep what they
        last showed)."""
        counted: KindsPlan | None = observed.kinds
        if observed.space is None:
            counted = self._unplanned_kinds(observed, scope) if self.settings.count_kinds else None
        objects = object_states(observed.plan, counted or KindsPlan(), report)
        return objects if counted is not None else {"model": objects["model"]}

    def _unplanned_kinds(self, observed: Observed, scope: Scope) -> KindsPlan | None:
        """The datasets, endpoints and policies of a round that had no need to read them (manifests
        with models only, no model deleted or replaced): read and planned as `apply` would if it
        read them, to be counted, never run. A server without those routes has none of them;
        any other failure leaves them uncounted (None) and the round goes on."""
        try:
            space = observe_kinds(self.client, (), (), observed.models)
            return plan_kinds((), (), space, observed.plan, scope=scope)
        except ServerError as exc:
            if exc.status in (404, 405):
                return KindsPlan()
            error: ReconcilerError = exc
        except ReconcilerError as exc:
            error = exc
        log.warning(
            "datasets, endpoints and policies not counted this round: %s",
            error,
            extra=_ev("count_failed", kind=error.kind),
        )
        return None


def log_wait(waiting: Any) -> None:
    """One log line per attempt while the server does not answer (event `retry`)."""
    log.info(
        "%s",
        waiting,
        extra=_ev(
            "retry", attempt=waiting.attempt, attempts=waiting.attempts, delay_s=round(waiting.delay, 3)
        ),
    )


def _log_outcome(outcome: Outcome) -> None:
    level = logging.INFO if outcome.ok else logging.WARNING
    log.log(
        level,
        "%s",
        render.outcome_line(outcome).strip(),
        extra=_ev(
            "model",
            model=outcome.name,
            op=outcome.op.value,
            result=outcome.result.value,
            attempts=outcome.attempts,
        ),
    )


def _report_drift(plan: Plan) -> None:
    for change in plan.changes:
        if change.op is Op.CREATE:
            what = "is missing on the server; not recreated (--self-heal would)"
        elif change.op is Op.UPDATE:
            what = (
                f"differs on the server ({', '.join(d.dotted for d in change.diffs)}); "
                "not reverted (--self-heal would)"
            )
        elif change.op is Op.REPLACE:
            what = (
                f"differs on the server ({', '.join(d.dotted for d in change.diffs)}); "
                f"needs --replace {change.name} and --self-heal"
            )
        elif change.op is Op.DELETE:
            what = "is ours and in no manifest; not pruned (--self-heal would)"
        else:
            continue
        log.warning(
            "drift: `%s` %s",
            change.name,
            what,
            extra=_ev(
                "drift", model=change.name, op=change.op.value, differs=[d.dotted for d in change.diffs]
            ),
        )


def _report_kind_drift(kinds: KindsPlan) -> None:
    """Datasets, endpoints and policies that differ on the server in a round that does not write."""
    for change in kinds.pending:
        fields = ", ".join(d.dotted for d in change.diffs)
        log.warning(
            "drift: %s: %s on the server%s; not undone (--self-heal would)",
            change.label,
            change.op.value,
            f" ({fields})" if fields else "",
            extra=_ev("drift", model=change.label, op=change.op.value),
        )
