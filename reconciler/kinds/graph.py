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

from reconciler.kinds.plan import KindChange, KindsPlan
from reconciler.kinds.values import EndpointManifest, RemoteEndpoint
from reconciler.model import Change, Op, Plan
from reconciler.plan import replace_approved


@dataclass(frozen=True)
class Step:
    key: str
    """`<kind>:<name>:delete` or `<kind>:<name>:write`."""
    phase: str  # "delete", "write" or "skip"
    deps: frozenset[str]
    model: Change | None = None
    change: KindChange | None = None


def _key(kind: str, name: str, phase: str) -> str:
    return f"{kind}:{name}:{phase}"


def build(  # noqa: C901 - one pass per kind; split planned (README: left to do)
    model_plan: Plan, kinds: KindsPlan, *, names: frozenset[str] = frozenset(), every: bool = False
) -> list[Step]:
    """Every write of both plans as steps, dependencies included."""
    steps: dict[str, Step] = {}
    # who uses what, on the server (what gets deleted) and in the manifests (what gets created)
    ep_deleted: dict[str, list[str]] = {}  # "model:x" -> endpoint slugs deleted/replaced
    ep_creates: dict[str, KindChange] = {}
    writes: set[str] = set()
    for c in kinds.changes:
        if (
            c.kind == "Endpoint"
            and c.op in (Op.DELETE, Op.REPLACE)
            and isinstance(c.observed, RemoteEndpoint)
        ):
            for kind, ref in (("model", c.observed.model), ("dataset", c.observed.dataset)):
                if ref is not None:
                    ep_deleted.setdefault(f"{kind}:{ref.name}", []).append(c.key)
        if c.kind == "Endpoint" and c.op in (Op.CREATE, Op.REPLACE):
            ep_creates[c.key] = c
    for mc in model_plan.changes:
        if mc.op in (Op.CREATE, Op.REPLACE) and (
            mc.op is Op.CREATE or replace_approved(mc, names=names, every=every)
        ):
            writes.add(_key("model", mc.name, "write"))
    for c in kinds.changes:
        if c.kind == "Dataset" and c.op in (Op.CREATE, Op.REPLACE):
            writes.add(_key("dataset", c.key, "write"))
    skipped: set[str] = set()
    for mc in model_plan.changes:
        if not mc.writes:
            continue
        model_deps: set[str] = set()
        if mc.op in (Op.DELETE, Op.REPLACE):
            model_deps = {_key("endpoint", s, "delete") for s in ep_deleted.get(f"model:{mc.name}", [])}
        phase = (
            "skip" if mc.op is Op.REPLACE and not replace_approved(mc, names=names, every=every) else "write"
        )
        key = _key("model", mc.name, "write")
        steps[key] = Step(key, phase, frozenset(model_deps), model=mc)
    for c in kinds.changes:
        if not c.writes:
            continue
        kind = c.kind.lower()
        if c.op is Op.REPLACE and not c.approved(names=names, every=every):
            key = _key(kind, c.key, "write")
            steps[key] = Step(key, "skip", frozenset(), change=c)
            skipped.add(c.key)
            continue
        if c.op in (Op.DELETE, Op.REPLACE):
            deps: set[str] = set()
            if kind == "endpoint":
                deps = {
                    _key("policy", p.key, "delete")
                    for p in kinds.changes
                    if p.kind == "Policy" and p.endpoint == c.key and p.op is Op.DELETE
                }
            elif kind == "dataset":
                deps = {_key("endpoint", s, "delete") for s in ep_deleted.get(f"dataset:{c.key}", [])}
            key = _key(kind, c.key, "delete")
            steps[key] = Step(key, "delete", frozenset(deps), change=c)
        if c.op is Op.DELETE:
            continue
        deps = {_key(kind, c.key, "delete")} if c.op is Op.REPLACE else set()
        if kind == "endpoint" and isinstance(c.desired, EndpointManifest):
            for ref_kind, wanted in (("model", c.desired.model), ("dataset", c.desired.dataset)):
                if wanted is not None and _key(ref_kind, wanted, "write") in writes:
                    deps.add(_key(ref_kind, wanted, "write"))
        if kind == "policy" and c.endpoint in ep_creates:
            deps.add(_key("endpoint", c.endpoint, "write"))
        key = _key(kind, c.key, "write")
        steps[key] = Step(key, "write", frozenset(deps), change=c)
    # a skipped replace: the policy deletes and creates of that endpoint wait on nothing that runs
    for key, step in list(steps.items()):
        held = step.change
        if held is not None and held.kind == "Policy" and held.endpoint in skipped:
            steps[key] = Step(key, "skip", frozenset(), change=held)
    return [steps[k] for k in sorted(steps, key=_order)]


_RANK = {
    "delete": {"policy": 0, "endpoint": 1, "dataset": 2},
    "write": {"model": 3, "dataset": 3, "endpoint": 4, "policy": 5},
}


def _order(key: str) -> tuple[int, str]:
    """Submission order (the dependencies decide when a step may start)."""
    kind, phase = key.split(":", 1)[0], key.rsplit(":", 1)[1]
    return _RANK.get(phase, {}).get(kind, 6), key


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
