"""Executor: the safeguards of every write, for every kind; graph_apply.run_plans carries a plan out
through them (the one way a plan is applied).

Creates are not idempotent on the wire: after a 409, a 500, a timeout or a lost response the model
may exist (../shared/syft-space-api.md, "Create races"), so we look the name up and compare before
trying again — equal means success, different means conflict. That is what makes "kill it half way
and run it again" safe. An auth error stops every further write at once.

The same loop (`Executor.create`, within one `Budget` per object), failure handling
(`Executor.guarded`) and signal handling (`Executor.interrupt`) serve the other kinds too
(graph_apply.py), which is why they are public.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from reconciler.client import SpaceClient
from reconciler.errors import (
    EXIT_AUTH,
    EXIT_CONFLICT,
    EXIT_FAILED,
    EXIT_OK,
    AuthError,
    ReconcilerError,
    RetryableServerError,
    ServerError,
    ServerUnreachable,
    UncertainWrite,
)
from reconciler.model import STOPPED, ApplyReport, Change, Manifest, Op, Outcome, RemoteModel, Result
from reconciler.ownership import owner_tag, ownership
from reconciler.plan import diff_model
from reconciler.schemas import DtypeFacts

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ApplyOptions:
    parallelism: int = 8
    """How many requests are in flight at once."""
    fail_fast: bool = False
    """Stop submitting after the first failure."""
    replace: frozenset[str] = frozenset()
    """Models whose dtype/configuration change may be carried out as delete + create."""
    replace_all: bool = False
    max_create_attempts: int = 6
    """POST attempts per model (each after a look-up that found nothing): --retries + 1."""
    facts: DtypeFacts = field(default_factory=DtypeFacts)
    """The dtypes' secret fields and defaults, to compare a model found after a failed create."""
    owner: str | None = None
    """The owner whose tag created and adopted models carry (ownership.py)."""
    model_budget: float = 300.0
    """Seconds one object (a model, dataset, endpoint or policy) may take in all (attempts,
    look-ups, waits): then it is reported failed."""

    def may_replace(self, change: Change) -> bool:
        return change.approved(names=self.replace, every=self.replace_all)


class Next(Enum):
    """What a failed create calls for."""

    BACKOFF = "backoff"  # refused before processing (429) or never sent (not connected): wait, send again
    LOOK_UP = "look up"  # 409, 5xx, timeout, lost answer: it may exist now, so look before sending again
    RAISE = "raise"  # 401/403, 400/422 and friends: sending the same body again cannot help


def classify(error: ReconcilerError) -> Next:
    """The one place that decides how a failed create goes on (../shared/syft-space-api.md, races)."""
    if isinstance(error, AuthError):
        return Next.RAISE
    if isinstance(error, RetryableServerError) and error.status == 429:
        return Next.BACKOFF
    if isinstance(error, UncertainWrite):
        return Next.LOOK_UP
    if isinstance(error, ServerUnreachable):
        return Next.BACKOFF
    if isinstance(
        error, ServerError
    ):  # 502/503/504: a proxy may have given up on a request that went through
        return (
            Next.RAISE
            if error.status is not None and error.status != 409 and error.status < 500
            else Next.LOOK_UP
        )
    return Next.RAISE


class Budget:
    """The time one object may take in all (attempts, look-ups and waits), from its first request."""

    def __init__(self, seconds: float, *, what: str = "object") -> None:
        self.seconds = seconds
        self.what = what
        """What the limit is per, in the give-up message ("model", or "object" for the other kinds)."""
        self.started = time.monotonic()

    def spent(self) -> float:
        return time.monotonic() - self.started

    def left(self) -> float:
        return self.seconds - self.spent()

    def gave_up(self, attempts: int, last: ReconcilerError) -> str:
        """Why a create stopped: the attempts ran out, or the time did."""
        within = (
            f" in {self.spent():.0f}s (the limit per {self.what} is {self.seconds:g}s)"
            if self.left() <= 0
            else ""
        )
        return f"gave up after {attempts} attempts{within}: {last}"


class Executor:
    """Carries out a plan's writes against one server."""

    def __init__(
        self,
        client: SpaceClient,
        options: ApplyOptions,
        *,
        on_outcome: Callable[[Outcome], None] | None = None,
        on_stop: Callable[[int], None] | None = None,
    ) -> None:
        self.client = client
        self.options = options
        self.on_outcome = on_outcome or (lambda outcome: None)
        self.on_stop = on_stop
        """Told once, at the first Ctrl-C or SIGTERM (the CLI says what happens next)."""
        self.stop = threading.Event()
        self.auth_error: AuthError | None = None
        self.interrupted = False
        self.signum: int | None = None
        """The signal that interrupted the run (SIGINT or SIGTERM), for the exit code 128 + n."""
        self._ids_lock = threading.Lock()
        self._created_ids: dict[str, str] = {}

    # -- the run ----------------------------------------------------------------------------

    def interrupt(self, signum: int) -> None:
        """The first Ctrl-C or SIGTERM: submit nothing more; in-flight calls finish and are reported."""
        self.interrupted = True
        first = self.signum is None
        self.signum = self.signum or signum
        self.stop.set()
        if first and self.on_stop is not None:
            self.on_stop(signum)

    def carry_out(self, change: Change) -> Outcome:
        """One model change, within its budget; a failure is its outcome (auth stops every write)."""
        if self.stop.is_set():
            return Outcome(change.name, change.op, Result.SKIPPED, STOPPED)
        budget = self.budget(what="model")  # the per-model budget runs from here
        return self.guarded(change.name, change.op, lambda: self._change(change, budget))

    def _change(self, change: Change, budget: Budget) -> Outcome:
        if change.op is Op.CREATE:
            assert change.desired is not None
            return self._create(change.desired, change.op, budget)
        if change.op is Op.UPDATE:
            return self._update(change, budget)
        if change.op is Op.DELETE:
            return self.delete_seen(
                change, self.client.get_model, lambda _: self.client.delete_model(change.name)
            )
        return self._replace(change, budget)

    def delete_seen(
        self,
        change: Change,
        read: Callable[[str], Any],
        delete: Callable[[Any], bool],
    ) -> Outcome:
        """Delete the object this run saw at plan time, and nothing else: read it again first; gone
        is done, another one in its place (another run recreated it since) is a conflict, never
        deleted. `delete` gets what was read (an endpoint takes its current policies with it)."""
        current = read(change.name)
        if current is None:
            return Outcome(change.name, change.op, Result.DELETED, "already gone", kind=change.kind)
        seen = getattr(change.observed, "id", None)
        if seen is not None and getattr(current, "id", None) != seen:
            return Outcome(
                change.name,
                change.op,
                Result.CONFLICT,
                "another one was created in its place since the plan (by another run?); not deleted: plan again",
                error_kind="conflict",
                kind=change.kind,
            )
        gone = delete(current)
        return Outcome(
            change.name, change.op, Result.DELETED, "" if gone else "already gone", kind=change.kind
        )

    def guarded(self, label: str, op: Op, work: Callable[[], Outcome]) -> Outcome:
        """`work`'s outcome, or its error as a failed one. Refused credentials stop every further
        write; with --fail-fast, so does any outcome that is not ok."""
        try:
            outcome = work()
        except AuthError as exc:
            self.auth_error = exc
            self.stop.set()
            return Outcome(label, op, Result.FAILED, str(exc), error_kind=exc.kind)
        except ReconcilerError as exc:
            outcome = Outcome(label, op, Result.FAILED, str(exc), error_kind=exc.kind)
        if not outcome.ok and self.options.fail_fast:
            self.stop.set()
        return outcome

    def budget(self, *, what: str = "object") -> Budget:
        """A new per-object time budget (ApplyOptions.model_budget), starting now."""
        return Budget(self.options.model_budget, what=what)

    def created_id(self, name: str) -> str | None:
        """The id of model `name` as this executor created it, or found it after a failed create
        (an endpoint created in the same run references it by that id)."""
        with self._ids_lock:
            return self._created_ids.get(name)

    def _created(self, remote: RemoteModel) -> RemoteModel:
        if remote.id:
            with self._ids_lock:
                self._created_ids[remote.name] = remote.id
        return remote

    def create(
        self,
        label: str,
        op: Op,
        done: Result,
        *,
        send: Callable[[], object],
        look_up: Callable[[ReconcilerError, int], Outcome | None],
        budget: Budget,
    ) -> Outcome:
        """Send a create until it lands: `done` when it does. After a failure that may have landed
        (409, 5xx, timeout, lost answer), `look_up(error, attempts)` first: its outcome when the
        object is there, None to send again. At most max_create_attempts, within `budget`."""
        attempts = 0
        last: ReconcilerError | None = None
        while attempts < self.options.max_create_attempts:
            if attempts and budget.left() <= 0:
                break
            attempts += 1
            try:
                send()
                return Outcome(label, op, done, attempts=attempts)
            except ReconcilerError as exc:
                last, step = exc, classify(exc)
            if step is Next.RAISE:
                raise last
            if step is Next.LOOK_UP:
                found = look_up(last, attempts)
                if found is not None:
                    return found
            self._backoff(attempts, getattr(last, "retry_after", None), budget)
        assert last is not None
        return Outcome(
            label, op, Result.FAILED, budget.gave_up(attempts, last), attempts=attempts, error_kind=last.kind
        )

    # -- one change -------------------------------------------------------------------------

    def _same(self, manifest: Manifest, remote: RemoteModel) -> bool:
        replace, update, _ = diff_model(manifest, remote, self.options.facts)
        return not replace and not update

    def _create(
        self, manifest: Manifest, op: Op, budget: Budget, *, done: Result = Result.CREATED
    ) -> Outcome:
        body = manifest.create_body(owner=self.options.owner)
        return self.create(
            manifest.name,
            op,
            done,
            send=lambda: self._created(self.client.create_model(body)),
            look_up=lambda last, attempts: self._look_up(
                manifest, op, done=done, last=last, attempts=attempts
            ),
            budget=budget,
        )

    def _look_up(
        self, manifest: Manifest, op: Op, *, done: Result, last: ReconcilerError, attempts: int
    ) -> Outcome | None:
        """After a 409, 5xx, timeout or lost answer the model may exist now: equal and ours is
        success, anything else a conflict; None when it is not there (send again)."""
        remote = self.client.get_model(manifest.name)
        if remote is None:
            return None
        owned = ownership(remote.tags, self.options.owner)
        if not owned.mine:
            return Outcome(
                manifest.name,
                op,
                Result.CONFLICT,
                f"created concurrently, {owned.describe()}",
                attempts=attempts,
                error_kind="conflict",
            )
        if not self._same(manifest, remote):
            return Outcome(
                manifest.name,
                op,
                Result.CONFLICT,
                "created concurrently by someone else with different content",
                attempts=attempts,
                error_kind="conflict",
            )
        self._created(remote)
        note = "" if attempts == 1 and done is Result.CREATED else "confirmed present after a failed response"
        result = Result.PRESENT if isinstance(last, ServerError) and last.status == 409 else done
        return Outcome(manifest.name, op, result, note, attempts=attempts)

    def _backoff(self, attempt: int, retry_after: float | None, budget: Budget) -> None:
        if attempt < self.options.max_create_attempts and self.client.retry.delays:
            delay = min(self.client.retry.delay(attempt - 1, retry_after), max(0.0, budget.left()))
            if not self.stop.is_set() and delay > 0:
                self.client.sleep(delay)

    def _update(self, change: Change, budget: Budget) -> Outcome:
        assert change.desired is not None
        manifest = change.desired
        body = {
            "summary": manifest.summary,
            "tags": ",".join((*manifest.tags, owner_tag(self.options.owner))),
        }
        try:
            self.client.patch_model(manifest.name, body)
        except ServerError as exc:
            if exc.status == 404:  # deleted since we listed: create it instead
                return self._create(manifest, Op.UPDATE, budget, done=Result.UPDATED)
            if exc.status == 405:
                raise ServerError(
                    f"{exc.message} — this server has no PATCH (older Syft Space); "
                    f"use --replace {manifest.name} to recreate the model",
                    status=405,
                ) from exc
            raise
        return Outcome(manifest.name, change.op, Result.UPDATED, "adopted" if change.adopt else "")

    def _replace(self, change: Change, budget: Budget) -> Outcome:
        assert change.desired is not None
        if not self.options.may_replace(change):
            fields = ", ".join(d.dotted for d in change.diffs if d.path[0] in ("dtype", "configuration"))
            how = (
                "its manifest says `lifecycle.replace: never`"
                if change.desired.replace_policy == "never"
                else f"pass --replace {change.name} (delete + create), or allow it in the manifest "
                "with `lifecycle: {replace: allow}`"
            )
            return Outcome(
                change.name,
                change.op,
                Result.SKIPPED,
                f"{fields} changed; the API cannot change them in place: {how}",
            )
        deleted = self.delete_seen(
            change, self.client.get_model, lambda _: self.client.delete_model(change.name)
        )
        if deleted.result is Result.CONFLICT:
            return dataclasses.replace(deleted, op=change.op)
        return self._create(change.desired, change.op, budget, done=Result.REPLACED)


def exit_code(report: ApplyReport, *, conflicts: bool, signum: int | None = None) -> int:
    """An apply's exit code: 128 + signal when interrupted, 5 when credentials were refused, 7 when
    only conflicts stood in the way, 1 when writes failed, else 0."""
    if report.interrupted:
        return 128 + (signum or 2)  # 130 after Ctrl-C, 143 after SIGTERM
    failed = [o for o in report.outcomes if not o.ok]
    if not failed and not conflicts:
        return EXIT_OK
    if any(o.error_kind == "auth" for o in failed):
        return EXIT_AUTH
    if (conflicts or failed) and all(o.result is Result.CONFLICT for o in failed):
        return EXIT_CONFLICT
    return EXIT_FAILED
