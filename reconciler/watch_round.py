"""One watch round: `Reconciler` loads (through sources.py: a parse cache, or the files at git
HEAD) → validates → resolves → observes → plans → applies, or only reports drift, and logs it all.

Rounds are incremental (watch_cache.py): only changed files are read and validated again, only
their manifests resolved again, and a FILES round plans against the server view the round before
kept (updated by this daemon's own writes) instead of listing the server; every other round lists
it afresh. The invariant, named there: the kept view is never trusted across a resync, a failed
write, an error, a restart or a change of server, tenant, owner or variables.

The loop that calls it, and the values it returns (RoundResult, RoundStatus, Trigger), are in
watch.py.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from reconciler import render
from reconciler.apply import ApplyOptions, Executor
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
from reconciler.kinds.plan import plan_kinds
from reconciler.loading import Loaded
from reconciler.model import ApplyReport, Change, Manifest, Op, Outcome, Plan, Result
from reconciler.plan import PlanOptions, Scope
from reconciler.round import Observed, observe_and_plan, observe_kinds, selected_count
from reconciler.schemas import SchemaRegistry
from reconciler.states import STATES, object_states
from reconciler.watch import RoundResult, RoundStatus, Trigger, WatchSettings, event
from reconciler.watch_cache import REFRESH_MAX, Context, KeptView, ModelPlans, Resolved, set_digest

# The daemon's one logger, as before this module was split from watch.py (cli/watch.py logs under
# it too): whoever configures or filters the daemon's logs by name keeps seeing every round line.
log = logging.getLogger("reconciler.watch")


@dataclass(frozen=True)
class Desired:
    """What a round wants: the manifests as loaded, the models and datasets with their secrets
    resolved, the digest of all that would be sent, and (with --git) the commit read."""

    loaded: Loaded
    manifests: tuple[Manifest, ...]
    datasets: tuple[Manifest, ...]
    digest: str
    commit: str | None


def drift_line(change: Change, *, approved: bool) -> str | None:
    """The drift line's text (after `drift: `) of any kind's change, or None when its op is no drift.
    `approved`: a replace may run (--replace, --replace-all, lifecycle, a cascade). A model's line
    keeps its documented shape: ``drift: `a` is missing on the server; …``."""
    why = ", ".join(d.dotted for d in change.diffs) or change.cascade
    differs = f"differs on the server{f' ({why})' if why else ''}"
    if change.op is Op.CREATE:
        verb, what = "is ", "missing on the server; not recreated (--self-heal would)"
    elif change.op is Op.UPDATE:
        verb, what = "", f"{differs}; not reverted (--self-heal would)"
    elif change.op is Op.REPLACE:
        undo = (
            "not replaced (--self-heal would)"
            if approved
            else f"needs --replace {change.name} and --self-heal"
        )
        verb, what = "", f"{differs}; {undo}"
    elif change.op is Op.DELETE:
        undo = f"needs {change.held}" if change.held else "--self-heal would"
        verb, what = "is ", f"ours and in no manifest; not pruned ({undo})"
    else:
        return None
    return f"`{change.name}` {verb}{what}" if change.kind == "Model" else f"{change.label}: {what}"


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
        self._resolved = (Resolved(), Resolved())  # models, datasets
        self._view: KeptView | None = None
        self.plans = ModelPlans()
        """The server as the last round left it (watch_cache.py: when it may be trusted)."""
        self.listed = 0
        """Rounds that listed the server (the others planned against the kept view)."""
        self._on_view = False

    def __call__(self, trigger: Trigger) -> RoundResult:
        start = time.monotonic()
        objects: dict[str, dict[str, int]] = {}
        commit: str | None = None
        self._on_view = False
        try:
            status, message, objects, commit = self._round(trigger)
        except InvalidManifests as exc:
            for p in exc.problems:
                level = logging.WARNING if p.severity == "warning" else logging.ERROR
                log.log(level, "%s", p, extra=event("problem", **p.as_dict()))
            status, message = RoundStatus.INVALID, exc.message
        except AuthError as exc:
            log.error("credentials refused, nothing written: %s", exc, extra=event("auth_refused"))
            status, message = RoundStatus.AUTH, str(exc)
        except (ServerUnreachable, RetryableServerError) as exc:
            log.warning("server unavailable: %s", exc, extra=event("unreachable"))
            status, message = RoundStatus.UNREACHABLE, str(exc)
        except ReconcilerError as exc:
            log.error("%s", exc, extra=event("round_error", error_kind=exc.kind))
            status, message = RoundStatus.FAILED, str(exc)
        except Exception as exc:  # a bug must not end the daemon; the next round may well work
            log.error(
                "unexpected error: %s: %s%s",
                type(exc).__name__,
                exc,
                "" if self.settings.debug else " (run with --debug for the traceback)",
                exc_info=self.settings.debug,
                extra=event("unexpected_error"),
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
            extra=event(
                "round",
                trigger=trigger.value,
                status=status.value,
                duration_s=round(result.duration, 4),
                models=dict(models),
                objects={kind: dict(states) for kind, states in objects.items()},
                commit=commit,
                kept_view=self._on_view,
            ),
        )
        return result

    def _round(self, trigger: Trigger) -> tuple[RoundStatus, str, dict[str, dict[str, int]], str | None]:
        desired = self._desired()
        s = self.settings
        scope = s.plan.scope(s.owner)
        kept = self._trusted(trigger)
        observed = observe_and_plan(
            self.client,
            desired.manifests,
            self.registry,
            scope=scope,
            datasets=desired.datasets,
            endpoints=desired.loaded.endpoints,
            replace_names=frozenset(s.plan.replace),
            replace_all=s.plan.replace_all,
            kept=None if kept is None else (kept.models, kept.offered),
            planner=self.plans,
        )
        self.listed += kept is None
        self._on_view = kept is not None
        whole = observed.whole
        write = desired.digest != self.applied or s.self_heal
        report = self._write(desired, observed, scope) if write else None
        _log_changes(whole, s.plan, drift=not write)
        failed = self._settle(desired, report) if write else 0
        objects = self._count(observed, scope, report)
        summary = _summary(objects, report, drift_left=not write and any(c.writes for c in whole.changes))
        if failed:
            return RoundStatus.FAILED, f"{failed} write(s) failed: {summary}", objects, desired.commit
        self._view = self._kept(observed, report)
        return RoundStatus.OK, summary, objects, desired.commit

    def _context(self) -> Context:
        variables = getattr(self.loader, "variables_key", None)
        return (self.client.base_url, self.client.tenant, self.settings.owner, variables)

    def _trusted(self, trigger: Trigger) -> KeptView | None:
        """The kept view, when this round may plan against it (THE INVARIANT, watch_cache.py):
        only a FILES round, under the same server, tenant, owner and variables. It is taken
        either way: only a round that ends well keeps a view again."""
        view, self._view = self._view, None
        if trigger is not Trigger.FILES or view is None or view.context != self._context():
            return None
        return view

    def _kept(self, observed: Observed, report: ApplyReport | None) -> KeptView | None:
        """The view the next FILES round may plan against: what this round saw, with each model it
        wrote read back by name; None when the apply was interrupted or wrote too many to read."""
        models = dict(observed.models)
        if report is not None:
            if report.interrupted:
                return None
            written = {
                o.name for o in report.outcomes if o.kind == "Model" and o.result is not Result.SKIPPED
            }
            if len(written) > REFRESH_MAX:
                return None
            for name in sorted(written):
                remote = self.client.get_model(name)
                if remote is None:
                    models.pop(name, None)
                else:
                    models[name] = remote
        return KeptView(self._context(), models, observed.offered)

    def _settle(self, desired: Desired, report: ApplyReport | None) -> int:
        """After a writing round: the server matches `desired` unless a write failed or the apply
        was interrupted. Returns the number of failed writes."""
        failed = sum(1 for o in report.outcomes if o.result is Result.FAILED) if report else 0
        if failed or (report is not None and report.interrupted):
            return failed
        self.applied, self.applied_commit = desired.digest, desired.commit
        if desired.commit:
            log.info(
                "applied commit %s", desired.commit, extra=event("applied_commit", commit=desired.commit)
            )
        return 0

    def _desired(self) -> Desired:
        """The manifests with their secrets resolved, and the digest of what would be sent; a
        desired state's warnings and notes are logged once, not every round."""
        loaded, commit = self.loader()
        placeholders = self.settings.placeholders
        models, datasets = self._resolved
        manifests, notes, digests = models(loaded.manifests, os.environ, placeholders=placeholders)
        resolved, more, more_digests = datasets(loaded.datasets, os.environ, placeholders=placeholders)
        digest = set_digest({**digests, **more_digests})
        if loaded.endpoints:  # every kind counts
            digest += repr(sorted(map(repr, loaded.endpoints)))
        if digest != self._announced:
            self._announced = digest
            for p in loaded.warnings:
                log.warning("%s", p, extra=event("problem", **p.as_dict()))
            for note in (*notes, *more):
                log.warning("%s", note, extra=event("note"))
        return Desired(loaded, manifests, resolved, digest, commit)

    def _write(self, desired: Desired, observed: Observed, scope: Scope) -> ApplyReport | None:
        """Apply every kind's plan, within the deletion limits; None when nothing needs a write."""
        if not any(c.writes for c in observed.whole.changes):
            return None
        s = self.settings
        selected = selected_count(scope, desired.manifests, desired.datasets, desired.loaded.endpoints)
        s.plan.check(observed.whole, manifest_count=selected)
        # From the first write on, the server matches no known desired state until this apply
        # succeeds: a round that fails half way (or raises) leaves `applied` unknown, so the
        # next round writes whatever the manifests say, a revert to the old state included.
        self.applied = None
        executor = Executor(self.client, self.options, on_outcome=_log_outcome)
        return run_plans(executor, observed.plan, observed.kinds, observed.space)

    def _count(
        self, observed: Observed, scope: Scope, report: ApplyReport | None
    ) -> dict[str, dict[str, int]]:
        """kind → state → count after the round (states.py): only models when the other kinds
        were not read and are not to be counted, or could not be (their series keep what they
        last showed)."""
        counted: Plan | None = observed.kinds
        if observed.space is None:
            counted = self._unplanned_kinds(observed, scope) if self.settings.count_kinds else None
        objects = object_states(observed.plan, counted or Plan(), report)
        return objects if counted is not None else {"model": objects["model"]}

    def _unplanned_kinds(self, observed: Observed, scope: Scope) -> Plan | None:
        """The datasets, endpoints and policies of a round that had no need to read them (manifests
        with models only, no model deleted or replaced): read and planned as `apply` would if it
        read them, to be counted, never run. A server without those routes has none of them;
        any other failure leaves them uncounted (None) and the round goes on."""
        try:
            space = observe_kinds(self.client, (), (), observed.models)
            return plan_kinds((), (), space, observed.plan, scope=scope)
        except ServerError as exc:
            if exc.status in (404, 405):
                return Plan()
            error: ReconcilerError = exc
        except ReconcilerError as exc:
            error = exc
        log.warning(
            "datasets, endpoints and policies not counted this round: %s",
            error,
            extra=event("count_failed", error_kind=error.kind),
        )
        return None


def log_wait(waiting: Any) -> None:
    """One log line per attempt while the server does not answer (event `retry`)."""
    log.info(
        "%s",
        waiting,
        extra=event(
            "retry", attempt=waiting.attempt, attempts=waiting.attempts, delay_s=round(waiting.delay, 3)
        ),
    )


def _log_outcome(outcome: Outcome) -> None:
    """One line per write, named by kind (`created  dataset handbook`, event `object`)."""
    log.log(
        logging.INFO if outcome.ok else logging.WARNING,
        "%s",
        render.outcome_line(outcome).strip(),
        extra=event(
            "object",
            kind=outcome.kind.lower(),
            name=outcome.name,
            op=outcome.op.value,
            result=outcome.result.value,
            attempts=outcome.attempts,
        ),
    )


def _log_changes(whole: Plan, options: PlanOptions, *, drift: bool) -> None:
    """The round's objects that need a person or a write: drift first (only when the round does
    not write: a writing round undoes it), then conflicts (in every round)."""
    names, every = frozenset(options.replace), options.replace_all
    if drift:
        for change in whole.changes:
            _log_drift(
                change, approved=change.op is not Op.REPLACE or change.approved(names=names, every=every)
            )
    for change in whole.conflicts:
        _log_conflict(change)


def _log_drift(change: Change, *, approved: bool) -> None:
    """A difference on the server in a round that does not write: what it is, and what would undo it."""
    what = drift_line(change, approved=approved)
    if what is None:
        return
    differs = [d.dotted for d in change.diffs]
    log.warning(
        "drift: %s",
        what,
        extra=event("drift", kind=change.kind.lower(), name=change.name, op=change.op.value, differs=differs),
    )


def _log_conflict(change: Change) -> None:
    """An object of the manifests that is on the server and not this owner's to change: a decision
    for a person (--adopt, --adopt-from), reported in every round, written or not."""
    reason = change.reason or "pass --adopt to take it over"
    differs = [d.dotted for d in change.diffs]
    log.warning(
        "conflict: %s: %s",
        change.label,
        reason,
        extra=event("conflict", kind=change.kind.lower(), name=change.name, reason=reason, differs=differs),
    )


def _summary(
    objects: Mapping[str, Mapping[str, int]], report: ApplyReport | None, *, drift_left: bool
) -> str:
    """The round's line: what it wrote, then the objects of every kind counted by state."""
    totals = {state: sum(counts.get(state, 0) for counts in objects.values()) for state in STATES}
    summary = ", ".join(f"{n} {state.replace('_', ' ')}" for state, n in totals.items() if n) or "no objects"
    if report is not None:
        done = ", ".join(f"{n} {result}" for result, n in report.counts().items() if n)
        return f"{done}; now {summary}" if done else summary
    return f"{summary} (drift reported, not undone)" if drift_left else summary
