"""The plan as a dependency graph (pure): one Step per request group, with what it waits for.

Create models and datasets, then endpoints, then policies; delete in reverse: an endpoint's
policies before it (else they are orphaned and GET /policies/ fails), endpoints before their
dataset (else a 409) and before a model they use is deleted or replaced. A replace is a delete
step and a create step. An unapproved replace becomes one skipped step, and so does every
cascade that waits on it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from reconciler.kinds.values import EndpointManifest, RemoteEndpoint
from reconciler.model import KIND, Change, Op, Plan


@dataclass(frozen=True)
class Step:
    key: str
    """`<kind>:<name>:delete` or `<kind>:<name>:write`."""
    phase: str  # "delete", "write" or "skip"
    deps: frozenset[str]
    change: Change


def _key(kind: str, name: str, phase: str) -> str:
    return f"{kind}:{name}:{phase}"


def build(
    model_plan: Plan, kinds: Plan, *, names: frozenset[str] = frozenset(), every: bool = False
) -> list[Step]:
    """Every write of both plans as steps, dependencies included."""
    builder = _Builder(model_plan, kinds, names, every)
    for mc in model_plan.changes:
        if mc.writes:
            builder.model(mc)
    for change in kinds.changes:
        if change.writes:
            builder.kind(change)
    steps = builder.steps
    # a skipped replace: the policy deletes and creates of that endpoint wait on nothing that runs
    for key, step in list(steps.items()):
        held = step.change
        if held.kind == "Policy" and held.endpoint in builder.skipped:
            steps[key] = Step(key, "skip", frozenset(), change=held)
    return [steps[k] for k in sorted(steps, key=_order)]


class _Builder:
    """Who uses what, on the server (what is deleted first) and in the manifests (what is
    created first), and the steps made so far."""

    def __init__(self, model_plan: Plan, kinds: Plan, names: frozenset[str], every: bool) -> None:
        self.kinds, self.names, self.every = kinds, names, every
        self.steps: dict[str, Step] = {}
        self.skipped: set[str] = set()
        self.deleted_users: dict[str, list[str]] = {}  # "model:x" -> endpoints deleted or replaced
        self.endpoint_writes: set[str] = set()  # endpoints created (or recreated): their policies wait
        self.writes: set[str] = set()  # model and dataset creates that will run: their endpoints wait
        for c in kinds.changes:
            if c.kind == "Endpoint":
                self._note_endpoint(c)
            approved = c.op is Op.REPLACE and c.approved(names=names, every=every)
            if c.kind == "Dataset" and _creates(c.op, approved):
                self.writes.add(_key("dataset", c.name, "write"))
        for mc in model_plan.changes:
            if _creates(mc.op, mc.op is Op.REPLACE and self._model_approved(mc)):
                self.writes.add(_key("model", mc.name, "write"))

    def _note_endpoint(self, c: Change) -> None:
        """What an endpoint change means for the others: the model and dataset it used are in
        use until it is deleted; its policies are created after it."""
        if c.op in (Op.DELETE, Op.REPLACE) and c.writes and isinstance(c.observed, RemoteEndpoint):
            for kind, ref in (("model", c.observed.model), ("dataset", c.observed.dataset)):
                if ref is not None:
                    self.deleted_users.setdefault(f"{kind}:{ref.name}", []).append(c.name)
        if c.op in (Op.CREATE, Op.REPLACE):
            self.endpoint_writes.add(c.name)

    def _model_approved(self, change: Change) -> bool:
        return change.approved(names=self.names, every=self.every)

    def _add(self, kind: str, name: str, phase: str, deps: set[str], **kw: Any) -> None:
        key = _key(kind, name, "write" if phase == "skip" else phase)
        self.steps[key] = Step(key, phase, frozenset(deps), **kw)

    def model(self, mc: Change) -> None:
        deps: set[str] = set()
        if mc.op in (Op.DELETE, Op.REPLACE):  # after the endpoints that use it are gone
            deps = {_key("endpoint", s, "delete") for s in self.deleted_users.get(f"model:{mc.name}", [])}
        skip = mc.op is Op.REPLACE and not self._model_approved(mc)
        self._add("model", mc.name, "skip" if skip else "write", deps, change=mc)

    def kind(self, c: Change) -> None:
        kind = c.kind.lower()
        if c.op is Op.REPLACE and not c.approved(names=self.names, every=self.every):
            self._add(kind, c.name, "skip", set(), change=c)
            self.skipped.add(c.name)
            return
        if c.op in (Op.DELETE, Op.REPLACE):
            self._add(kind, c.name, "delete", self._delete_deps(c), change=c)
        if c.op is not Op.DELETE:
            self._add(kind, c.name, "write", self._write_deps(c), change=c)

    def _delete_deps(self, c: Change) -> set[str]:
        if c.kind == "Endpoint":  # its policies first: never orphaned
            return {
                _key("policy", p.name, "delete")
                for p in self.kinds.changes
                if p.kind == "Policy" and p.endpoint == c.name and p.op is Op.DELETE
            }
        if c.kind == "Dataset":  # the endpoints that use it first: else a 409
            return {_key("endpoint", s, "delete") for s in self.deleted_users.get(f"dataset:{c.name}", [])}
        return set()

    def _write_deps(self, c: Change) -> set[str]:
        deps = {_key(c.kind.lower(), c.name, "delete")} if c.op is Op.REPLACE else set()
        if c.kind == "Endpoint" and isinstance(c.desired, EndpointManifest):
            for ref_kind, wanted in (("model", c.desired.model), ("dataset", c.desired.dataset)):
                if wanted is not None and _key(ref_kind, wanted, "write") in self.writes:
                    deps.add(_key(ref_kind, wanted, "write"))
        if c.kind == "Policy" and c.endpoint in self.endpoint_writes:
            deps.add(_key("endpoint", c.endpoint, "write"))
        return deps


def _creates(op: Op, approved_replace: bool) -> bool:
    """Whether a write step creates the object (a new id that what uses it must wait for)."""
    return op is Op.CREATE or (op is Op.REPLACE and approved_replace)


def _order(key: str) -> tuple[int, str]:
    """Submission order (the dependencies decide when a step may start): deletes by each kind's
    delete rank, then writes by its write rank (model.Kind)."""
    word, phase = key.split(":", 1)[0], key.rsplit(":", 1)[1]
    kind = KIND[word.capitalize()]
    return (kind.delete_rank if phase == "delete" else 10 + kind.write_rank), key


def topological(steps: Sequence[Step]) -> list[str]:
    """One order that respects every dependency (a dependency not in `steps` is already met)."""
    keys = {s.key for s in steps}
    done: list[str] = []
    left = {s.key: {d for d in s.deps if d in keys} for s in steps}
    while left:
        ready = sorted(k for k, deps in left.items() if not deps)
        if not ready:
            raise ValueError(f"dependency cycle among {sorted(left)}")
        for key in ready:
            done.append(key)
            del left[key]
        for deps in left.values():
            deps.difference_update(ready)
    return done
