"""Run the dependency graph (kinds/graph.py) of a whole space with bounded parallelism.

A step starts as soon as every step it needs has succeeded; a step whose dependency failed or
was skipped is skipped. Model steps are the models' Executor's own; datasets, endpoints and
policies are created like models: after a 409, 500, timeout or reset the object is looked up
and compared before anything is sent again (../shared/syft-space-api-kinds.md, "Races": the
server answers 500 to a losing create and closes the connection; httpx reconnects).
References resolve name → id here, from this tenant's own reads and answers only, so a policy
is never attached to another tenant's endpoint.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any, TypeVar

from reconciler.apply import Executor, Next, classify
from reconciler.errors import AuthError, ReconcilerError
from reconciler.kinds.graph import Step, build
from reconciler.kinds.plan import Observed, normalise_policy
from reconciler.kinds.values import EndpointManifest, PolicySpec, RemoteEndpoint, RemotePolicy
from reconciler.kinds_client import KindsClient
from reconciler.model import STOPPED, ApplyReport, Change, Manifest, Op, Outcome, Plan, Result
from reconciler.ownership import owner_tag, ownership
from reconciler.plan import same
from reconciler.signals import graceful

T = TypeVar("T")


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

    def run(self, plan: Plan, kinds: Plan) -> ApplyReport:
        steps = build(plan, kinds, names=self.options.replace, every=self.options.replace_all)
        # what this run recreates gets a new id: read it after its create, never the old one
        for mc in plan.changes:
            if mc.op in (Op.CREATE, Op.REPLACE):
                self._ids.pop(("model", mc.name), None)
        for kc in kinds.changes:
            if kc.op in (Op.CREATE, Op.REPLACE) and kc.kind != "Policy":
                self._ids.pop((kc.kind.lower(), kc.name), None)
        outcomes: dict[str, Outcome] = {}
        state: dict[str, bool] = {}
        pool = ThreadPoolExecutor(max_workers=max(1, self.options.parallelism), thread_name_prefix="apply")
        running: dict[Future[Outcome], Step] = {}
        started: set[str] = set()
        try:
            with graceful(self.executor._on_signal, then="previous"):
                self._loop(steps, state, outcomes, running, started, pool)
        except KeyboardInterrupt:  # a second Ctrl-C: stop waiting
            self.executor.interrupted = True
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        for step in steps:  # what never ran is reported, not dropped
            outcomes.setdefault(step.key, _skip(step, STOPPED))
        if self.executor.auth_error is not None:
            raise self.executor.auth_error
        in_sync = sum(1 for c in plan.changes if c.op is Op.NOOP) + sum(
            1 for c in kinds.changes if c.op is Op.NOOP
        )
        shown = [
            outcomes[s.key]
            for s in steps
            if not (s.phase == "delete" and s.change and s.change.op is Op.REPLACE and outcomes[s.key].ok)
        ]
        return ApplyReport(tuple(shown), in_sync=in_sync, interrupted=self.executor.interrupted)

    def _loop(
        self,
        steps: list[Step],
        state: dict[str, bool],
        outcomes: dict[str, Outcome],
        running: dict[Future[Outcome], Step],
        started: set[str],
        pool: ThreadPoolExecutor,
    ) -> None:
        """Start every step whose dependencies succeeded, as slots free up, until all are done."""
        by_key = {s.key: s for s in steps}
        while len(state) < len(steps):
            for step in steps:
                if step.key in started:
                    continue
                if self.executor.stop.is_set():
                    state[step.key] = False
                    started.add(step.key)
                    outcomes[step.key] = _skip(step, STOPPED)
                    continue
                deps = [d for d in step.deps if d in by_key]
                if any(d in state and not state[d] for d in deps):
                    state[step.key] = False
                    started.add(step.key)
                    outcomes[step.key] = _skip(
                        step, "not attempted: something it needs failed or was skipped"
                    )
                    self.executor.on_outcome(outcomes[step.key])
                    continue
                if all(state.get(d) for d in deps) and len(running) < self.options.parallelism:
                    started.add(step.key)
                    running[pool.submit(self._one, step)] = step
            if not running:
                continue
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                step = running.pop(future)
                outcome = future.result()
                state[step.key] = outcome.ok
                outcomes[step.key] = outcome
                self.executor.on_outcome(outcome)

    # -- one step ---------------------------------------------------------------------------------

    def _one(self, step: Step) -> Outcome:
        if step.model is not None:
            if step.phase == "skip":
                return self.executor._replace(step.model)  # reports why it was skipped
            return self.executor._one(step.model)
        change = step.change
        assert change is not None
        name = change.label
        if step.phase == "skip":
            how = (
                f"pass --replace {change.name} (or --replace-all)"
                if not change.cascade
                else f"{change.cascade}, which is not approved"
            )
            fields = ", ".join(d.dotted for d in change.diffs) or change.cascade
            return Outcome(name, change.op, Result.SKIPPED, f"{fields}: needs delete + create: {how}")
        try:
            if step.phase == "delete":
                return self._delete(change)
            return self._write(change)
        except AuthError as exc:
            self.executor.auth_error = exc
            self.executor.stop.set()
            return Outcome(name, change.op, Result.FAILED, str(exc), error_kind=exc.kind)
        except ReconcilerError as exc:
            if self.options.fail_fast:
                self.executor.stop.set()
            return Outcome(name, change.op, Result.FAILED, str(exc), error_kind=exc.kind)

    def _delete(self, change: Change) -> Outcome:
        observed = change.observed
        if change.kind == "Policy":
            assert isinstance(observed, RemotePolicy)
            gone = self.kinds.delete_policy(observed.id)
        elif change.kind == "Endpoint":
            gone = self.kinds.delete_endpoint(change.name)
        else:
            gone = self.kinds.delete_dataset(change.name)
        return Outcome(change.label, change.op, Result.DELETED, "" if gone else "already gone")

    def _write(self, change: Change) -> Outcome:
        done = Result.REPLACED if change.op is Op.REPLACE else Result.CREATED
        if change.kind == "Dataset":
            manifest = change.desired
            assert isinstance(manifest, Manifest)
            if change.op is Op.UPDATE:
                self.kinds.patch_dataset(
                    manifest.name,
                    {
                        "summary": manifest.summary,
                        "tags": ",".join((*manifest.tags, owner_tag(self.options.owner))),
                    },
                )
                return Outcome(change.label, change.op, Result.UPDATED, "adopted" if change.adopt else "")
            ds_body = manifest.create_body(owner=self.options.owner)
            found = self._create(
                change,
                done,
                lambda: self.kinds.create_dataset(ds_body),
                lambda: self.kinds.get_dataset(manifest.name),
                lambda d: d.dtype == manifest.dtype and ownership(d.tags, self.options.owner).mine,
            )
            return found
        if change.kind == "Endpoint":
            endpoint = change.desired
            assert isinstance(endpoint, EndpointManifest)
            if change.op is Op.UPDATE:
                body: dict[str, Any] = {d.path[0]: d.new for d in change.diffs}
                if "system_prompt" in body and body["system_prompt"] is None:
                    body["system_prompt"] = ""  # "" clears it; null means "unchanged"
                self.kinds.patch_endpoint(endpoint.slug, body)
                return Outcome(change.label, change.op, Result.UPDATED)
            ep_body = endpoint.create_body(
                owner=self.options.owner,
                model_id=self._id("model", endpoint.model),
                dataset_id=self._id("dataset", endpoint.dataset),
            )
            return self._create(
                change,
                done,
                lambda: self._remember(self.kinds.create_endpoint(ep_body)),
                lambda: self._remember_opt(self.kinds.get_endpoint(endpoint.slug)),
                lambda e: (
                    ownership(e.tags, self.options.owner).mine
                    and _ref_name(e.model) == endpoint.model
                    and _ref_name(e.dataset) == endpoint.dataset
                ),
            )
        spec = change.desired
        assert isinstance(spec, PolicySpec)
        if change.op is Op.UPDATE:
            assert isinstance(change.observed, RemotePolicy)
            self.kinds.patch_policy(change.observed.id, {"configuration": normalise_policy(spec)})
            return Outcome(change.label, change.op, Result.UPDATED)
        endpoint_id = self._id("endpoint", change.endpoint)
        p_body = {
            "name": spec.name,
            "policy_type": spec.policy_type,
            "configuration": dict(spec.configuration),
            "endpoint_id": endpoint_id,
        }
        return self._create(
            change,
            done,
            lambda: self.kinds.create_policy(p_body),
            lambda: self._find_policy(change.endpoint, spec.name),
            lambda p: (
                p.policy_type == spec.policy_type and same(p.configuration or {}, normalise_policy(spec))
            ),
        )

    def _create(
        self,
        change: Change,
        done: Result,
        send: Callable[[], T],
        look: Callable[[], T | None],
        equal: Callable[[T], bool],
    ) -> Outcome:
        last: ReconcilerError | None = None
        attempts = 0
        while attempts < self.options.max_create_attempts:
            attempts += 1
            try:
                send()
                return Outcome(change.label, change.op, done, attempts=attempts)
            except ReconcilerError as exc:
                last, step = exc, classify(exc)
            if step is Next.RAISE:
                raise last
            if step is Next.LOOK_UP:
                found = look()
                if found is not None:
                    if equal(found):
                        return Outcome(
                            change.label,
                            change.op,
                            done if attempts > 1 or done is Result.REPLACED else Result.PRESENT,
                            "confirmed present after a failed response",
                            attempts=attempts,
                        )
                    return Outcome(
                        change.label,
                        change.op,
                        Result.CONFLICT,
                        "created concurrently with other content or another owner",
                        attempts=attempts,
                        error_kind="conflict",
                    )
            self.executor._backoff(attempts, getattr(last, "retry_after", None))
        assert last is not None
        return Outcome(
            change.label,
            change.op,
            Result.FAILED,
            f"gave up after {attempts} attempts: {last}",
            attempts=attempts,
            error_kind=last.kind,
        )

    # -- references ---------------------------------------------------------------------------------

    def _id(self, kind: str, name: str | None) -> str | None:
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
        with self._lock:
            self._ids[(kind, name)] = found.id
        return str(found.id)

    def _remember(self, endpoint: RemoteEndpoint) -> RemoteEndpoint:
        with self._lock:
            self._ids[("endpoint", endpoint.slug)] = endpoint.id
        return endpoint

    def _remember_opt(self, endpoint: RemoteEndpoint | None) -> RemoteEndpoint | None:
        return self._remember(endpoint) if endpoint is not None else None

    def _find_policy(self, slug: str, name: str) -> RemotePolicy | None:
        detail = self.kinds.get_endpoint(slug)
        return next((p for p in (detail.policies or ()) if p.name == name), None) if detail else None


def _ref_name(ref: Any) -> str | None:
    return ref.name if ref is not None else None


def _skip(step: Step, message: str) -> Outcome:
    label = step.change.label if step.change is not None else (step.model.name if step.model else step.key)
    op = step.change.op if step.change is not None else (step.model.op if step.model else Op.CREATE)
    return Outcome(label, op, Result.SKIPPED, message)


def run_plans(executor: Executor, plan: Plan, kinds: Plan, space: Observed | None) -> ApplyReport:
    """The models' plan alone as always, or with the other kinds as one graph."""
    if kinds.changes and space is not None:
        return GraphExecutor(executor, space).run(plan, kinds)
    return executor.run(plan)
