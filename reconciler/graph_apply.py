"""Run the dependency graph (kinds/graph.py) of a whole space with bounded parallelism.

A step starts as soon as every step it needs has succeeded; a step whose dependency failed or
was skipped is skipped. Model steps are the models' Executor's own; datasets, endpoints and
policies go through the same safeguards (Executor.create, .guarded, one Budget per object):
after a 409, 500, timeout or reset the object is looked up and compared before anything is sent
again (../shared/syft-space-api-kinds.md, "Races": the server answers 500 to a losing create and
closes the connection; httpx reconnects); a create or PATCH answered with another object is a
failure (kinds_client.py); a PATCH answered 404 (deleted since we listed it) is a create.
References resolve name → id here, from this tenant's own reads and answers only, so a policy
is never attached to another tenant's endpoint: the ids of what this run creates come from the
create answers (or the look-up after a failed create), never from a read per object.
"""

from __future__ import annotations

import dataclasses
import heapq
import threading
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any, TypeVar

from reconciler.apply import Budget, Executor
from reconciler.errors import ReconcilerError, ServerError
from reconciler.kinds.graph import Step, build
from reconciler.kinds.plan import Observed, normalise_policy
from reconciler.kinds.values import EndpointManifest, PolicySpec, RemoteDataset, RemoteEndpoint, RemotePolicy
from reconciler.kinds_client import KindsClient
from reconciler.model import (
    STOPPED,
    ApplyReport,
    Change,
    FieldDiff,
    Manifest,
    Op,
    Outcome,
    Pick,
    Plan,
    Result,
)
from reconciler.ownership import owner_tag, ownership
from reconciler.plan import same, stray_tags
from reconciler.signals import graceful

T = TypeVar("T")

NOT_ATTEMPTED = "not attempted: something it needs failed or was skipped"


class GraphExecutor:
    """The models' Executor plus the other kinds, over one dependency graph."""

    def __init__(self, executor: Executor, observed: Observed) -> None:
        self.executor = executor
        self.kinds = KindsClient(executor.client)
        self.options = executor.options
        self._lock = threading.Lock()
        self._ids: dict[tuple[str, str], str] = {
            ("model", n): m.id for n, m in observed.models.items() if m.id
        }
        self._ids.update({("dataset", n): d.id for n, d in observed.datasets.items()})
        self._ids.update({("endpoint", s): e.id for s, e in observed.endpoints.items()})
        self._carried: dict[str, tuple[Pick, ...]] = {}
        """A replaced dataset's picks, read just before its delete, when no manifest manages them."""

    def run(self, plan: Plan, kinds: Plan) -> ApplyReport:
        steps = build(plan, kinds, names=self.options.replace, every=self.options.replace_all)
        self._forget_recreated(plan, kinds)
        schedule = Schedule(steps, self.executor, self._step)
        try:
            with graceful(self.executor.interrupt, then="previous"):
                schedule.run(max(1, self.options.parallelism))
        except KeyboardInterrupt:  # a second Ctrl-C: stop waiting
            self.executor.interrupted = True
        if self.executor.auth_error is not None:
            raise self.executor.auth_error
        in_sync = sum(1 for c in plan.changes if c.op is Op.NOOP) + sum(
            1 for c in kinds.changes if c.op is Op.NOOP
        )
        shown = [schedule.outcomes[s.key] for s in steps if not _replaced_half(s, schedule.outcomes[s.key])]
        return ApplyReport(tuple(shown), in_sync=in_sync, interrupted=self.executor.interrupted)

    def _forget_recreated(self, plan: Plan, kinds: Plan) -> None:
        """What this run recreates gets a new id: its create's answer gives it, never the old one."""
        for mc in plan.changes:
            if mc.op in (Op.CREATE, Op.REPLACE):
                self._ids.pop(("model", mc.name), None)
        for kc in kinds.changes:
            if kc.op in (Op.CREATE, Op.REPLACE) and kc.kind != "Policy":
                self._ids.pop((kc.kind.lower(), kc.name), None)

    # -- one step ---------------------------------------------------------------------------------

    def _step(self, step: Step) -> Outcome:
        if step.change.kind == "Model":
            return self._model_step(step.change)
        change = step.change
        if step.phase == "skip":
            return _unapproved(change)
        if step.phase == "delete":
            return self.executor.guarded(change.label, change.op, lambda: self._delete(change))
        budget = self.executor.budget()  # this object's time budget runs from here
        return self.executor.guarded(change.label, change.op, lambda: self._write(change, budget))

    def _model_step(self, change: Change) -> Outcome:
        """The models' Executor's own step (an unapproved replace: the reason it is skipped)."""
        outcome = self.executor.carry_out(change)
        created = self.executor.created_id(change.name) if outcome.ok else None
        if created is not None:
            self._remember("model", change.name, created)
        return outcome

    def _delete(self, change: Change) -> Outcome:
        """Delete what the plan saw (Executor.delete_seen); an endpoint's policies as they are now
        go first, so that none is orphaned, also one another run added since the plan."""
        if change.kind == "Policy":
            assert isinstance(change.observed, RemotePolicy)
            gone = self.kinds.delete_policy(change.observed.id)
            return Outcome(change.label, change.op, Result.DELETED, "" if gone else "already gone")
        if change.kind == "Endpoint":
            return self.executor.delete_seen(change, self.kinds.get_endpoint, self._delete_endpoint)
        return self.executor.delete_seen(
            change, self.kinds.get_dataset, lambda _: self._delete_dataset(change)
        )

    def _delete_dataset(self, change: Change) -> bool:
        """A dataset's delete; for a replace whose manifest does not manage `selected_items`, the
        picks as they are now are kept first, for the create to send (its picks go with it)."""
        manifest = change.desired
        if change.op is Op.REPLACE and isinstance(manifest, Manifest) and manifest.selected_items is None:
            picks = self.kinds.selection(change.name)
            with self._lock:
                self._carried[change.name] = tuple((p.item_id, p.description) for p in picks)
        return self.kinds.delete_dataset(change.name)

    def _delete_endpoint(self, endpoint: RemoteEndpoint) -> bool:
        for policy in endpoint.policies or ():
            self.kinds.delete_policy(policy.id)
        return self.kinds.delete_endpoint(endpoint.slug)

    def _write(self, change: Change, budget: Budget) -> Outcome:
        if change.kind == "Dataset":
            return self._write_dataset(change, budget)
        if change.kind == "Endpoint":
            return self._write_endpoint(change, budget)
        return self._write_policy(change, budget)

    def _write_dataset(self, change: Change, budget: Budget) -> Outcome:
        manifest = change.desired
        assert isinstance(manifest, Manifest)
        if change.op is Op.UPDATE and self._update_dataset(change, manifest):
            return Outcome(change.label, change.op, Result.UPDATED, _update_detail(change))
        if manifest.selected_items is None and manifest.name in self._carried:
            # not managed here: the picks made on the server survive the recreate
            manifest = dataclasses.replace(manifest, selected_items=self._carried[manifest.name])
        body = manifest.create_body(owner=self.options.owner)
        return self._create(
            change,
            budget,
            send=lambda: self._remember("dataset", manifest.name, self.kinds.create_dataset(body).id),
            look=lambda: self.kinds.get_dataset(manifest.name),
            equal=lambda d: d.dtype == manifest.dtype and ownership(d.tags, self.options.owner).mine,
            keep=lambda d: self._remember("dataset", d.name, d.id),
        )

    def _update_dataset(self, change: Change, manifest: Manifest) -> bool:
        """PATCH summary and tags when they (or the owner tag) change, then converge the selection
        with at most one DELETE and one POST (each restarts the dataset's ingestion). False when
        the dataset is gone (deleted since the list): create it instead, picks and all."""
        picks = [d for d in change.diffs if d.pick]
        observed = change.observed
        stray = isinstance(observed, RemoteDataset) and stray_tags(observed.tags, self.options.owner)
        if change.adopt or stray or len(picks) < len(change.diffs):
            tags = ",".join((*manifest.tags, owner_tag(self.options.owner)))
            patch = {"summary": manifest.summary, "tags": tags}
            if not _patched(lambda: self.kinds.patch_dataset(manifest.name, patch)):
                return False
        if picks:
            return self._converge_picks(manifest.name, picks)
        return True

    def _converge_picks(self, name: str, picks: list[FieldDiff]) -> bool:
        """One DELETE (removed and re-described ids), one POST (added and re-described picks); the
        POST's answer (the whole selection) must then hold every pick as the manifest says."""
        drop = [d.path[1] for d in picks if d.pick != "add"]
        add = [(d.path[1], d.new) for d in picks if d.pick != "remove"]
        try:
            if drop:
                self.kinds.remove_picks(name, drop)
            if add:
                after = {p.item_id: p.description for p in self.kinds.add_picks(name, add)}
                wrong = [item_id for item_id, description in add if after.get(item_id, ...) != description]
                if wrong:
                    raise ServerError(
                        f"POST {KindsClient.dataset_path(name)}/selection: the server keeps another "
                        f"description for {', '.join(repr(i) for i in wrong[:3])} (changed since the plan?)"
                    )
        except ServerError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    def _write_endpoint(self, change: Change, budget: Budget) -> Outcome:
        endpoint = change.desired
        assert isinstance(endpoint, EndpointManifest)
        if change.op is Op.UPDATE and _patched(
            lambda: self.kinds.patch_endpoint(endpoint.slug, _endpoint_patch(change))
        ):
            return Outcome(change.label, change.op, Result.UPDATED)
        body = endpoint.create_body(
            owner=self.options.owner,
            model_id=self._id("model", endpoint.model),
            dataset_id=self._id("dataset", endpoint.dataset),
        )
        return self._create(
            change,
            budget,
            send=lambda: self._keep_endpoint(self.kinds.create_endpoint(body)),
            look=lambda: self.kinds.get_endpoint(endpoint.slug),
            equal=lambda e: (
                ownership(e.tags, self.options.owner).mine
                and _ref_name(e.model) == endpoint.model
                and _ref_name(e.dataset) == endpoint.dataset
            ),
            keep=self._keep_endpoint,
        )

    def _write_policy(self, change: Change, budget: Budget) -> Outcome:
        spec = change.desired
        assert isinstance(spec, PolicySpec)
        if change.op is Op.UPDATE:
            observed = change.observed
            assert isinstance(observed, RemotePolicy)
            patch = {"configuration": normalise_policy(spec)}
            if _patched(
                lambda: self.kinds.patch_policy(
                    observed.id, patch, name=spec.name, policy_type=spec.policy_type
                )
            ):
                return Outcome(change.label, change.op, Result.UPDATED)
        body = {
            "name": spec.name,
            "policy_type": spec.policy_type,
            "configuration": dict(spec.configuration),
            "endpoint_id": self._id("endpoint", change.endpoint),
        }
        return self._create(
            change,
            budget,
            send=lambda: self.kinds.create_policy(body),
            look=lambda: self._find_policy(change.endpoint, spec.name),
            equal=lambda p: (
                p.policy_type == spec.policy_type and same(p.configuration or {}, normalise_policy(spec))
            ),
        )

    def _create(
        self,
        change: Change,
        budget: Budget,
        *,
        send: Callable[[], object],
        look: Callable[[], T | None],
        equal: Callable[[T], bool],
        keep: Callable[[T], object] = lambda found: None,
    ) -> Outcome:
        """Executor.create with this kind's look-up: the object found after a failed create is
        success when `equal` (then `keep` records it), else a conflict."""
        done = {Op.REPLACE: Result.REPLACED, Op.UPDATE: Result.UPDATED}.get(change.op, Result.CREATED)

        def look_up(last: ReconcilerError, attempts: int) -> Outcome | None:
            found = look()
            if found is None:
                return None
            if not equal(found):
                return Outcome(
                    change.label,
                    change.op,
                    Result.CONFLICT,
                    "created concurrently with other content or another owner",
                    attempts=attempts,
                    error_kind="conflict",
                )
            keep(found)
            result = done if attempts > 1 or done is not Result.CREATED else Result.PRESENT
            return Outcome(
                change.label,
                change.op,
                result,
                "confirmed present after a failed response",
                attempts=attempts,
            )

        return self.executor.create(change.label, change.op, done, send=send, look_up=look_up, budget=budget)

    # -- references ---------------------------------------------------------------------------------

    def _id(self, kind: str, name: str | None) -> str | None:
        """The id of what an endpoint or policy references: listed, or created by this run (its
        create step finished first: kinds/graph.py). A read only when neither gave one."""
        if name is None:
            return None
        with self._lock:
            known = self._ids.get((kind, name))
        if known is not None:
            return known
        found: Any
        if kind == "model":
            found = self.executor.client.get_model(name)
        elif kind == "dataset":
            found = self.kinds.get_dataset(name)
        else:
            found = self.kinds.get_endpoint(name)
        if found is None or not found.id:
            raise ReconcilerError(
                f"{kind} `{name}` is not on the server (in this tenant); cannot reference it"
            )
        return self._remember(kind, name, str(found.id))

    def _remember(self, kind: str, name: str, object_id: str) -> str:
        with self._lock:
            self._ids[(kind, name)] = object_id
        return object_id

    def _keep_endpoint(self, endpoint: RemoteEndpoint) -> RemoteEndpoint:
        self._remember("endpoint", endpoint.slug, endpoint.id)
        return endpoint

    def _find_policy(self, slug: str, name: str) -> RemotePolicy | None:
        detail = self.kinds.get_endpoint(slug)
        return next((p for p in (detail.policies or ()) if p.name == name), None) if detail else None


def _priority(step: Step) -> int:
    """Which ready step starts first. Deletes before writes (they free names); among writes an
    endpoint's policies, access first, start as soon as their endpoint exists, before any other
    work, so that a published endpoint is never left open longer than one request."""
    change = step.change
    kind = change.kind
    if step.phase == "delete":
        return {"Policy": 0, "Endpoint": 1}.get(kind, 2)
    if kind == "Policy":
        return 3 if getattr(change.desired, "policy_type", "") == "access" else 4
    return 6 if kind == "Endpoint" else 5


class Schedule:
    """The steps' progress, in time linear in the steps and their dependencies: a heap of the
    ready steps, and for each step how many of its dependencies are still to finish."""

    def __init__(self, steps: list[Step], executor: Executor, carry_out: Callable[[Step], Outcome]) -> None:
        self.steps = steps
        self.executor = executor
        self.carry_out = carry_out
        self.by_key = {s.key: s for s in steps}
        self.outcomes: dict[str, Outcome] = {}
        self.running: dict[Future[Outcome], Step] = {}
        self.waiting: dict[str, int] = {}
        self.dependants: dict[str, list[str]] = {}
        self.ready: list[tuple[int, int, str]] = []
        for index, step in enumerate(steps):
            deps = {d for d in step.deps if d in self.by_key}  # one not in the plan is met
            self.waiting[step.key] = len(deps)
            for dep in deps:
                self.dependants.setdefault(dep, []).append(step.key)
            if not deps:
                heapq.heappush(self.ready, (_priority(step), index, step.key))
        self.order = {s.key: i for i, s in enumerate(steps)}

    def run(self, parallelism: int) -> None:
        """Start the ready steps as slots free up, until none is ready or running; then what never
        ran is reported, not dropped."""
        pool = ThreadPoolExecutor(max_workers=parallelism, thread_name_prefix="apply")
        try:
            while self.ready or self.running:
                self._start_ready(pool, parallelism)
                if self.running:
                    self._collect()
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            for step in self.steps:
                self.outcomes.setdefault(step.key, _named(step, _skip(step, STOPPED)))

    def _start_ready(self, pool: ThreadPoolExecutor, parallelism: int) -> None:
        while self.ready and len(self.running) < parallelism:
            step = self.by_key[heapq.heappop(self.ready)[2]]
            if self.executor.stop.is_set():
                self._finish(step, _skip(step, STOPPED), report=False)
            else:
                self.running[pool.submit(self.carry_out, step)] = step

    def _collect(self) -> None:
        done, _ = wait(self.running, return_when=FIRST_COMPLETED)
        for future in done:
            self._finish(self.running.pop(future), future.result(), report=True)

    def _finish(self, step: Step, outcome: Outcome, *, report: bool) -> None:
        """Record a step's outcome; its dependants become ready, or (it failed) are skipped."""
        outcome = _named(step, outcome)
        self.outcomes[step.key] = outcome
        if report:
            self.executor.on_outcome(outcome)
        for key in self.dependants.get(step.key, ()):
            if key in self.outcomes:
                continue
            dependant = self.by_key[key]
            if not outcome.ok:  # stopped: its dependants too; failed or skipped: they are not attempted
                why = STOPPED if outcome.stopped else NOT_ATTEMPTED
                self._finish(dependant, _skip(dependant, why), report=report)
                continue
            self.waiting[key] -= 1
            if self.waiting[key] == 0:
                heapq.heappush(self.ready, (_priority(dependant), self.order[key], key))


def _patched(patch: Callable[[], object]) -> bool:
    """Send a PATCH: False when the object is gone (deleted since we listed it: create it instead)."""
    try:
        patch()
    except ServerError as exc:
        if exc.status == 404:
            return False
        raise
    return True


def _update_detail(change: Change) -> str:
    """What an update of a dataset did beyond its fields: adopted, and the picks it changed."""
    counts = {word: sum(1 for d in change.diffs if d.pick == word) for word in ("add", "remove", "describe")}
    picks = ", ".join(
        f"{n} {word}"
        for word, n in (
            ("added", counts["add"]),
            ("removed", counts["remove"]),
            ("re-described", counts["describe"]),
        )
        if n
    )
    parts = (["adopted"] if change.adopt else []) + ([f"picks {picks}"] if picks else [])
    return "; ".join(parts)


def _endpoint_patch(change: Change) -> dict[str, Any]:
    """The PATCH body of an endpoint's in-place change: its changed fields."""
    body: dict[str, Any] = {d.path[0]: d.new for d in change.diffs}
    if "system_prompt" in body and body["system_prompt"] is None:
        body["system_prompt"] = ""  # "" clears it; null means "unchanged"
    return body


def _unapproved(change: Change) -> Outcome:
    """A replace (or its cascade) that was not approved: skipped, saying how to approve it."""
    how = (
        f"pass --replace {change.name} (or --replace-all)"
        if not change.cascade
        else f"{change.cascade}, which is not approved"
    )
    fields = ", ".join(d.dotted for d in change.diffs) or change.cascade
    return Outcome(change.label, change.op, Result.SKIPPED, f"{fields}: needs delete + create: {how}")


def _replaced_half(step: Step, outcome: Outcome) -> bool:
    """The delete half of a replace that went through: its create's outcome tells it."""
    return step.phase == "delete" and step.change.op is Op.REPLACE and outcome.ok


def _ref_name(ref: Any) -> str | None:
    return ref.name if ref is not None else None


def _named(step: Step, outcome: Outcome) -> Outcome:
    """An outcome named as its plan names the object: its kind and its name (one rule for all)."""
    change = step.change
    return dataclasses.replace(outcome, name=change.name, kind=change.kind)


def _skip(step: Step, message: str) -> Outcome:
    label, op = step.change.name, step.change.op
    return Outcome(label, op, Result.SKIPPED, message)


def run_plans(
    executor: Executor, plan: Plan, kinds: Plan | None = None, space: Observed | None = None
) -> ApplyReport:
    """The one way a plan is carried out: every kind's writes as one dependency graph (a
    models-only plan is a graph without edges), with the executor's safeguards for each."""
    return GraphExecutor(executor, space or Observed({}, {}, (), {})).run(plan, kinds or Plan())
