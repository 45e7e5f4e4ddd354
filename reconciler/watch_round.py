"""One watch round: `Reconciler` loads (through sources.py: a parse cache, or the files at git
HEAD) → validates → resolves → observes → plans → applies, or only reports drift, and logs it all.

The loop that calls it, and the values it returns (RoundResult, RoundStatus, Trigger), are in
watch.py.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Callable, Sequence
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
from reconciler.model import ApplyReport, Manifest, Op, Outcome, Plan, Result
from reconciler.plan import Scope
from reconciler.references import resolve_secrets
from reconciler.round import Observed, observe_and_plan, observe_kinds, selected_count
from reconciler.schemas import SchemaRegistry
from reconciler.states import object_states
from reconciler.watch import RoundResult, RoundStatus, Trigger, WatchSettings, event

# The daemon's one logger, as before this module was split from watch.py (cli/watch.py logs under
# it too): whoever configures or filters the daemon's logs by name keeps seeing every round line.
log = logging.getLogger("reconciler.watch")


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
                log.log(level, "%s", p, extra=event("problem", **p.as_dict()))
            status, message = RoundStatus.INVALID, exc.message
        except AuthError as exc:
            log.error("credentials refused, nothing written: %s", exc, extra=event("auth_refused"))
            status, message = RoundStatus.AUTH, str(exc)
        except (ServerUnreachable, RetryableServerError) as exc:
            log.warning("server unavailable: %s", exc, extra=event("unreachable"))
            status, message = RoundStatus.UNREACHABLE, str(exc)
        except ReconcilerError as exc:
            log.error("%s", exc, extra=event("round_error", kind=exc.kind))
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
                log.warning("%s", p, extra=event("problem", **p.as_dict()))
            for note in notes:
                log.warning("%s", note, extra=event("note"))
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
            selected = selected_count(scope, manifests, datasets, loaded.endpoints)
            s.plan.check(observed.whole, manifest_count=selected)
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
                    extra=event("conflict", model=change.name),
                )
        failed = [o for o in report.outcomes if o.result is Result.FAILED] if report else []
        if write and not failed and not (report is not None and report.interrupted):
            self.applied, self.applied_commit = digest, commit
            if commit:
                log.info("applied commit %s", commit, extra=event("applied_commit", commit=commit))
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
            extra=event("count_failed", kind=error.kind),
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
    level = logging.INFO if outcome.ok else logging.WARNING
    log.log(
        level,
        "%s",
        render.outcome_line(outcome).strip(),
        extra=event(
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
            extra=event(
                "drift", model=change.name, op=change.op.value, differs=[d.dotted for d in change.diffs]
            ),
        )


def _report_kind_drift(kinds: Plan) -> None:
    """Datasets, endpoints and policies that differ on the server in a round that does not write."""
    for change in kinds.pending:
        fields = ", ".join(d.dotted for d in change.diffs)
        log.warning(
            "drift: %s: %s on the server%s; not undone (--self-heal would)",
            change.label,
            change.op.value,
            f" ({fields})" if fields else "",
            extra=event("drift", model=change.label, op=change.op.value),
        )
