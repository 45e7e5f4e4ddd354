"""Every object's state after a round, by kind: what the watch daemon's /metrics counts (pure).

One rule turns a change's planned op and its apply outcome into a state, for models
(`syft_reconciler_models`) and for every kind alike (`syft_reconciler_objects`), so the two
series can never disagree about a model. It knows nothing of Prometheus or of the server.
"""

from __future__ import annotations

from reconciler.model import ApplyReport, Op, Outcome, Plan, Result

STATES = ("in_sync", "pending", "replace_needed", "conflict", "unmanaged")
"""in_sync: matches the manifests (or was just written); pending: a write is due (a create,
update or delete not done yet: drift without --self-heal, a failed write); replace_needed: needs
delete + create that was not approved; conflict: not ours, or lost a race to other content;
unmanaged: on the server and in no manifest, left alone."""

KINDS = ("model", "dataset", "endpoint", "policy")


def state(op: Op, outcome: Outcome | None) -> str:
    """The planned state of one change, moved to in_sync by a successful write (and to conflict
    by a write that found other content in its place)."""
    if op is Op.NOOP or (outcome is not None and outcome.ok):
        return "in_sync"
    if op is Op.UNMANAGED:
        return "unmanaged"
    if op is Op.CONFLICT or (outcome is not None and outcome.result is Result.CONFLICT):
        return "conflict"
    if op is Op.REPLACE:
        return "replace_needed"
    return "pending"


def object_states(plan: Plan, kinds: Plan, report: ApplyReport | None) -> dict[str, dict[str, int]]:
    """kind → state → count over the round's plans, every kind and state present (0 when none).

    Outcomes are matched by kind and name, as the plan names the object. An object is counted once: a policy
    that a replaced endpoint deletes and creates again is in the state of the create, its last
    change (and last outcome). Policies of an endpoint outside the manifests are not in the plan
    and not counted: they belong to that (unmanaged) endpoint.
    """
    outcomes = {(o.kind, o.name): o for o in report.outcomes} if report else {}
    found: dict[tuple[str, str], str] = {}
    for change in plan.changes:
        found["model", change.name] = state(change.op, outcomes.get((change.kind, change.name)))
    for kc in kinds.changes:
        found[kc.kind.lower(), kc.name] = state(kc.op, outcomes.get((kc.kind, kc.name)))
    counts = {kind: dict.fromkeys(STATES, 0) for kind in KINDS}
    for (kind, _), now in found.items():
        counts[kind][now] += 1
    return counts
