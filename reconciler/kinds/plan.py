"""Datasets, endpoints and policies: desired + observed → changes, with references and cascades
(pure). The executor order is kinds/graph.py's. They are `model.Change`s like a model's, with their
kind; ownership follows the one rule of plan.py (`foreign`).

Per kind, straight from ../shared/syft-space-api-kinds.md:
- Dataset: summary/tags PATCH in place; dtype/configuration need delete + create (PATCH ignores
  them). The chroma types' `httpPort` (overwritten: on both sides) and a generated
  `collectionName` are ignored;
  a secret the server drops (wordpress `applicationPassword`) is not comparable.
- Endpoint: name/summary/description/system_prompt PATCH in place; slug (identity), model,
  dataset, response_type, published and tags need delete + create (PATCH silently ignores them).
  A replaced model or dataset replaces the endpoints that use it (the cascade), and so does a
  model deleted under it (the server leaves `model: null`, never re-linked).
- Policy: identity (endpoint slug, name); configuration PATCHes in place (compared with the
  type's defaults filled in, as the server normalises it); a changed policy_type is delete + create
  of that policy alone. Policies belong to their endpoint and its owner.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from reconciler.errors import InvalidManifests
from reconciler.kinds.validate import dataset_registry, policy_registry
from reconciler.kinds.values import (
    EndpointManifest,
    PolicySpec,
    RemoteDataset,
    RemoteEndpoint,
    RemotePick,
    RemotePolicy,
)
from reconciler.model import KIND, Change, FieldDiff, Manifest, Op, Pick, Plan, Problem, RemoteModel
from reconciler.ownership import Ownership, may_take, ownership
from reconciler.plan import (
    Scope,
    counts_as_deletion,
    decide,
    diff_configuration,
    envelope_updates,
    foreign,
    same,
    unnamed,
)

CHROMA_TYPES = frozenset({"local_file", "wordpress"})

Gone = Mapping[tuple[str, str], bool]
"""What goes away or is recreated under an endpoint: ("model", name) → whether that may run."""


@dataclass(frozen=True)
class Observed:
    datasets: Mapping[str, RemoteDataset]
    endpoints: Mapping[str, RemoteEndpoint]
    """List items, replaced by details for the endpoints the manifests name."""
    policies: Sequence[RemotePolicy]
    models: Mapping[str, RemoteModel]


SERVER_FILLED: Mapping[str, Mapping[str, Any]] = {
    "access": {"allowed_users": [], "denied_users": []},
    "rate_limit": {"scope": "per_user", "applied_to": ["*"]},
}
"""What the recorded server's policy models fill in (`{}` -> `{"allowed_users": [], "denied_users":
[]}`, `{"limit": "5/m"}` -> `+ scope, applied_to`: syft-space-api-kinds.md, "Policies") that its
type listing does not all publish (../shared/syft-space-types/policies-types.json has no default for
`applied_to` or the access lists): schemas pulled from such a server lack them, and a manifest that
leaves them out must still be in sync."""


def policy_defaults() -> Mapping[str, Mapping[str, Any]]:
    return policy_registry().facts.defaults


def normalise_policy(spec: PolicySpec) -> dict[str, Any]:
    """The configuration as the server stores it: what it fills in (the type's schema defaults over
    SERVER_FILLED), then the manifest's own values."""
    filled = {**SERVER_FILLED.get(spec.policy_type, {}), **policy_defaults().get(spec.policy_type, {})}
    return {**filled, **spec.configuration}


def plan_kinds(
    datasets: Sequence[Manifest],
    endpoints: Sequence[EndpointManifest],
    observed: Observed,
    model_plan: Plan,
    *,
    scope: Scope,
    replace_names: frozenset[str] = frozenset(),
    replace_all: bool = False,
) -> Plan:
    """The changes to datasets, endpoints and policies; raises InvalidManifests for an unknown
    reference and Refused for a delete or replace under an endpoint this run does not own."""
    _check_references(endpoints, datasets, observed, model_plan, scope)
    changes = _plan_datasets(datasets, observed, scope)
    gone = _gone((*model_plan.changes, *changes), names=replace_names, every=replace_all)
    for endpoint in endpoints:
        if scope.selection.selects(endpoint.slug, "endpoint", endpoint.tags):
            changes.extend(_plan_endpoint(endpoint, observed, scope, gone))
    changes.extend(_unnamed_endpoints(endpoints, observed, scope))
    return Plan(tuple(changes))


def _gone(changes: Sequence[Change], *, names: frozenset[str], every: bool) -> dict[tuple[str, str], bool]:
    gone: dict[tuple[str, str], bool] = {}
    for change in changes:
        if change.kind not in ("Model", "Dataset"):
            continue
        if change.op is Op.DELETE and not change.held:
            gone[(change.kind.lower(), change.name)] = True
        elif change.op is Op.REPLACE:
            gone[(change.kind.lower(), change.name)] = change.approved(names=names, every=every)
    return gone


def _unnamed_endpoints(
    endpoints: Sequence[EndpointManifest], observed: Observed, scope: Scope
) -> list[Change]:
    """The endpoints on the server that no manifest names: pruned when ours (their policies
    first), else unmanaged."""
    wanted = {e.slug for e in endpoints}
    out: list[Change] = []
    for slug, remote in sorted(observed.endpoints.items()):
        if slug in wanted or not scope.selection.selects(slug, "endpoint", remote.user_tags):
            continue
        owned = ownership(remote.tags, scope.owner)
        change = unnamed(Change(Op.UNMANAGED, slug, observed=remote, kind="Endpoint"), owned, scope)
        if change.writes:  # its policies first: never orphaned
            out.extend(_policy_deletes(remote, observed.policies, owned))
        out.append(change)
    return out


def mark_blocked(
    model_plan: Plan, kinds: Plan, observed: Observed, *, names: frozenset[str], every: bool
) -> tuple[Plan, Plan]:
    """Nothing this run deletes or replaces may go from under an endpoint that stays: every
    endpoint on the server (selected or not, ours or not) that uses such a model or dataset must
    be deleted or replaced by this run too. Otherwise that model's or dataset's change is marked
    `blocked` (the plan shows it; apply refuses the whole run before any write): the server would
    leave the endpoint with `model: null`, or refuse the dataset's delete. A selection narrows what
    may be deleted; it never widens it."""
    gone = _gone((*model_plan.changes, *kinds.changes), names=names, every=every)
    planned = {c.name: c for c in kinds.changes if c.kind == "Endpoint"}
    blocks: dict[tuple[str, str], str] = {}
    for slug, remote in sorted(observed.endpoints.items()):
        change = planned.get(slug)
        if change is not None and counts_as_deletion(change, names=names, every=every):
            continue
        for use in (("model", _ref(remote.model)), ("dataset", _ref(remote.dataset))):
            if use[1] is not None and gone.get((use[0], use[1])):
                blocks.setdefault((use[0], use[1]), f"endpoint `{slug}` uses it and {_why_it_stays(change)}")

    def marked(plan: Plan) -> Plan:
        return Plan(
            tuple(
                dataclasses.replace(c, blocked=blocks[(c.kind.lower(), c.name)])
                if (c.kind.lower(), c.name) in blocks
                else c
                for c in plan.changes
            )
        )

    return (marked(model_plan), marked(kinds)) if blocks else (model_plan, kinds)


def _why_it_stays(change: Change | None) -> str:
    if change is None:
        return "is outside this run's selection (-l/--target)"
    owned = change.ownership
    if owned is not None and not owned.mine and not change.adopt:
        return f"{owned.describe()}; this run does not manage it"
    if change.op is Op.REPLACE:
        never = change.replace_policy == "never"
        return (
            "its manifest says `lifecycle.replace: never`"
            if never
            else f"its replace needs --replace {change.name}"
        )
    if change.held:
        return f"is in no manifest and only {change.held} deletes it (pass {change.held} to delete both)"
    return "is not replaced by this run"


def _ref(ref: Any) -> str | None:
    return ref.name if ref is not None else None


def _check_references(
    endpoints: Sequence[EndpointManifest],
    datasets: Sequence[Manifest],
    observed: Observed,
    model_plan: Plan,
    scope: Scope,
) -> None:
    known = {
        "model": {c.name for c in model_plan.changes if c.desired is not None} | set(observed.models),
        "dataset": {d.name for d in datasets} | set(observed.datasets),
    }
    pruned = _pruned(datasets, observed, model_plan, scope)
    problems: list[Problem] = []
    for endpoint in endpoints:
        for field_name in ("model", "dataset"):
            value = getattr(endpoint, field_name)
            if value is None:
                continue
            if value not in known[field_name]:
                message = f"no {field_name} `{value}` in the manifests or on the server"
            elif (field_name, value) in pruned:
                message = f"{field_name} `{value}` is pruned by this run (--prune) but this endpoint uses it"
            else:
                continue
            where = endpoint.where(field_name)
            problems.append(Problem(where.path, where.line, where.column, field_name, message))
    if problems:
        raise InvalidManifests(problems)


def _pruned(
    datasets: Sequence[Manifest], observed: Observed, model_plan: Plan, scope: Scope
) -> set[tuple[str, str]]:
    """The models and datasets this run prunes."""
    pruned = {("model", c.name) for c in model_plan.deletes}
    if scope.prune:
        wanted = {d.name for d in datasets}
        pruned |= {
            ("dataset", n)
            for n, d in observed.datasets.items()
            if n not in wanted and ownership(d.tags, scope.owner).mine
        }
    return pruned


def _plan_datasets(datasets: Sequence[Manifest], observed: Observed, scope: Scope) -> list[Change]:
    out: list[Change] = []
    for manifest in datasets:
        if not scope.selection.selects(manifest.name, manifest.dtype, manifest.tags):
            continue
        remote = observed.datasets.get(manifest.name)
        if remote is None:
            out.append(Change(Op.CREATE, manifest.name, desired=manifest, kind="Dataset"))
            continue
        replace, not_comparable = _dataset_replace_diffs(manifest, remote)
        update = envelope_updates(manifest, remote.summary, remote.user_tags)
        if not replace and manifest.selected_items is not None:  # a recreate sends its picks
            update += pick_diffs(manifest.selected_items, remote.known_selection or ())
        owned = ownership(remote.tags, scope.owner)
        base = Change(
            Op.NOOP,
            manifest.name,
            manifest,
            remote,
            not_comparable=not_comparable,
            ownership=owned,
            kind="Dataset",
        )
        out.append(decide(base, owned, scope, replace, update, tags=remote.tags))
    wanted = {d.name for d in datasets}
    for name, remote in sorted(observed.datasets.items()):
        if name in wanted or not scope.selection.selects(name, remote.dtype, remote.user_tags):
            continue
        owned = ownership(remote.tags, scope.owner)
        out.append(unnamed(Change(Op.UNMANAGED, name, observed=remote, kind="Dataset"), owned, scope))
    return out


def pick_diffs(wanted: Sequence[Pick], have: Sequence[RemotePick]) -> tuple[FieldDiff, ...]:
    """A managed selection against the server's, compared as a map item_id → description (exact
    strings; order is the server's `added_at`, never compared): the picks to add (manifest order),
    to re-describe (remove + add: the server keeps a stored description), then to remove."""
    old = {p.item_id: p.description for p in have}
    new = dict(wanted)
    diffs = [
        FieldDiff(
            ("selected_items", item_id),
            old.get(item_id),
            description,
            pick="describe" if item_id in old else "add",
        )
        for item_id, description in wanted
        if item_id not in old or old[item_id] != description
    ]
    diffs += [
        FieldDiff(("selected_items", p.item_id), p.description, None, pick="remove")
        for p in have
        if p.item_id not in new
    ]
    return tuple(diffs)


def _dataset_replace_diffs(
    manifest: Manifest, remote: RemoteDataset
) -> tuple[tuple[FieldDiff, ...], tuple[str, ...]]:
    """What only delete + create can change: the dtype, or the configuration as the server keeps it."""
    if manifest.dtype != remote.dtype:
        return (FieldDiff(("dtype",), remote.dtype, manifest.dtype),), ()
    facts = dataset_registry().facts
    config = dict(remote.configuration)
    defaults = facts.defaults_of(manifest.dtype)
    if manifest.dtype in CHROMA_TYPES:  # the server generates/overwrites these
        # `httpPort` is the provisioner's whatever was sent (9999 sent -> 8100 stored), so it is
        # compared on neither side: a manifest that names one would otherwise replace on every apply.
        config.pop("httpPort", None)
        wanted = {k: v for k, v in manifest.configuration.items() if k != "httpPort"}
        manifest = dataclasses.replace(manifest, configuration=wanted)
        defaults = {k: v for k, v in defaults.items() if k != "httpPort"}
        if "collectionName" not in manifest.configuration:
            config.pop("collectionName", None)
    return diff_configuration(
        manifest, config, secret_fields=facts.secrets_of(manifest.dtype), defaults=defaults
    )


def _plan_endpoint(endpoint: EndpointManifest, observed: Observed, scope: Scope, gone: Gone) -> list[Change]:
    remote = observed.endpoints.get(endpoint.slug)
    creates = [_policy(Op.CREATE, endpoint.slug, p.name, desired=p) for p in endpoint.policies]
    if remote is None:
        return [Change(Op.CREATE, endpoint.slug, desired=endpoint, kind="Endpoint"), *creates]
    replace = _endpoint_replace_diffs(endpoint, remote)
    cascade, cascade_ok = _cascade(endpoint, replace, gone)
    update = _endpoint_updates(endpoint, remote)
    owned = ownership(remote.tags, scope.owner)
    takeover = not owned.mine and may_take(owned, adopt=scope.adopt, adopt_from=scope.adopt_from)
    base = Change(Op.NOOP, endpoint.slug, endpoint, remote, ownership=owned, kind="Endpoint")
    policies = _plan_policies(endpoint, remote, scope)
    if not owned.mine and not takeover:
        return [_foreign_endpoint(owned, base, replace + update, policies)]
    if replace or cascade or takeover:
        if takeover and not replace and not cascade:
            cascade = "adopted: the owner tag can only be set at create"
        recreate = dataclasses.replace(
            base,
            op=Op.REPLACE,
            diffs=replace + update,
            cascade=cascade,
            cascade_approved=bool(cascade) and cascade_ok,
            adopt=takeover,
        )
        return [*_policy_deletes(remote, observed.policies, owned), recreate, *creates]
    if update:
        return [dataclasses.replace(base, op=Op.UPDATE, diffs=update), *policies]
    return [base, *policies]


def _foreign_endpoint(
    owned: Ownership, base: Change, diffs: tuple[FieldDiff, ...], policies: Sequence[Change]
) -> Change:
    """An endpoint this run may not take over (plan.foreign): an endpoint's tags cannot change in
    place, so adopting one is a replace."""
    change = foreign(owned, diffs, base, differs=any(p.op is not Op.NOOP for p in policies))
    if change.op is Op.CONFLICT and change.reason.endswith("pass --adopt to take it over"):
        change = dataclasses.replace(
            change, reason=change.reason + " (a replace: an endpoint's tags cannot change in place)"
        )
    return change


def _endpoint_replace_diffs(endpoint: EndpointManifest, remote: RemoteEndpoint) -> tuple[FieldDiff, ...]:
    """What PATCH silently ignores (Kind.replace): a reference by the name it points at, tags as a
    set of the user's tags."""
    replace: list[FieldDiff] = []
    for name in KIND["Endpoint"].replace:
        new, old = getattr(endpoint, name), getattr(remote, name)
        if name in KIND["Endpoint"].references:
            old = _ref(old)
            differs = new != old
        elif name == "tags":
            new, old = list(new), list(remote.user_tags)
            differs = set(new) != set(old)
        else:
            differs = not same(new, old)
        if differs:
            replace.append(FieldDiff((name,), old, new))
    return tuple(replace)


def _cascade(endpoint: EndpointManifest, replace: Sequence[FieldDiff], gone: Gone) -> tuple[str, bool]:
    """(`model x is replaced`, whether that replace may run) when what the endpoint uses goes."""
    cascade, approved = "", True
    for name in KIND["Endpoint"].references:
        used = getattr(endpoint, name)
        if used is not None and (name, used) in gone and not any(d.path == (name,) for d in replace):
            cascade, approved = f"{name} `{used}` is replaced", gone[(name, used)]
    return cascade, approved


def _endpoint_updates(endpoint: EndpointManifest, remote: RemoteEndpoint) -> tuple[FieldDiff, ...]:
    """What PATCH changes in place (Kind.in_place); a description the server keeps as null is ""."""
    update: list[FieldDiff] = []
    for name in KIND["Endpoint"].in_place:
        new, old = getattr(endpoint, name), getattr(remote, name)
        if name == "description" and old is None:
            old = ""
        if not same(new, old):
            update.append(FieldDiff((name,), old, new))
    return tuple(update)


def _policy(op: Op, slug: str, name: str, **kw: Any) -> Change:
    return Change(op, f"{slug}/{name}", kind="Policy", endpoint=slug, **kw)


def _plan_policies(endpoint: EndpointManifest, remote: RemoteEndpoint, scope: Scope) -> list[Change]:
    """An endpoint's policies: they belong to it and its owner (their ownership is the endpoint's)."""
    have = {p.name: p for p in remote.policies or ()}
    owned = ownership(remote.tags, scope.owner)
    out: list[Change] = []
    for spec in endpoint.policies:
        found = have.get(spec.name)
        if found is None:
            out.append(_policy(Op.CREATE, endpoint.slug, spec.name, desired=spec))
            continue
        if found.policy_type != spec.policy_type:
            diffs: tuple[FieldDiff, ...] = (FieldDiff(("policy_type",), found.policy_type, spec.policy_type),)
            op = Op.REPLACE
        else:
            wanted, old = normalise_policy(spec), found.configuration or {}
            diffs = tuple(
                FieldDiff(("configuration", k), old.get(k), wanted.get(k))
                for k in sorted(set(wanted) | set(old))
                if not same(wanted.get(k), old.get(k))
            )
            op = Op.UPDATE if diffs else Op.NOOP
        out.append(
            _policy(op, endpoint.slug, spec.name, desired=spec, observed=found, diffs=diffs, ownership=owned)
        )
    named = {s.name for s in endpoint.policies}
    for name, found in sorted(have.items()):
        if name not in named:
            out.append(unnamed(_policy(Op.UNMANAGED, endpoint.slug, name, observed=found), owned, scope))
    return out


def _policy_deletes(
    remote: RemoteEndpoint, policies: Sequence[RemotePolicy], owned: Ownership
) -> list[Change]:
    """Every policy of an endpoint that goes away, deleted before it (else they are orphaned and
    GET /policies/ fails for the whole tenant)."""
    return [
        _policy(Op.DELETE, remote.slug, p.name, observed=p, ownership=owned)
        for p in policies
        if p.endpoint_id == remote.id
    ]
