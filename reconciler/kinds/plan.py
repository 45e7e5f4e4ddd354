"""Datasets, endpoints and policies: desired + observed → changes, with references and cascades
(pure). The executor order is kinds/graph.py's.

Per kind, straight from ../shared/syft-space-api-kinds.md:
- Dataset: summary/tags PATCH in place; dtype/configuration need delete + create (PATCH ignores
  them). The chroma types' `httpPort` (overwritten) and a generated `collectionName` are ignored;
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

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from reconciler.errors import InvalidManifests, Refused
from reconciler.kinds.validate import dataset_registry, policy_registry
from reconciler.kinds.values import EndpointManifest, PolicySpec, RemoteDataset, RemoteEndpoint, RemotePolicy
from reconciler.model import FieldDiff, Manifest, Op, Plan, Problem, RemoteModel
from reconciler.ownership import may_take, ownership
from reconciler.plan import Scope, diff_configuration, replace_approved, same

CHROMA_TYPES = frozenset({"local_file", "wordpress"})


@dataclass(frozen=True)
class KindChange:
    """One change to a dataset, an endpoint or a policy. `key` is the name, the slug, or
    `slug/policy-name`; `cascade` says which replaced or deleted dependency forces a replace."""

    kind: str
    key: str
    op: Op
    desired: Manifest | EndpointManifest | PolicySpec | None = None
    observed: RemoteDataset | RemoteEndpoint | RemotePolicy | None = None
    diffs: tuple[FieldDiff, ...] = ()
    not_comparable: tuple[str, ...] = ()
    reason: str = ""
    cascade: str = ""
    adopt: bool = False
    endpoint: str = ""
    """For a policy: its endpoint's slug."""

    @property
    def label(self) -> str:
        return f"{self.kind.lower()} {self.key}"

    @property
    def writes(self) -> bool:
        return self.op in (Op.CREATE, Op.UPDATE, Op.REPLACE, Op.DELETE)

    def approved(self, *, names: frozenset[str], every: bool) -> bool:
        """Whether a replace may run: the endpoint's own approval, or its cascade's."""
        if self.kind == "Policy" or self.cascade_approved:
            return True
        policy = getattr(self.desired, "replace_policy", "manual")
        if policy == "never":
            return False
        return every or self.key in names or policy == "allow"

    cascade_approved: bool = False


@dataclass(frozen=True)
class Observed:
    datasets: Mapping[str, RemoteDataset]
    endpoints: Mapping[str, RemoteEndpoint]
    """List items, replaced by details for the endpoints the manifests name."""
    policies: Sequence[RemotePolicy]
    models: Mapping[str, RemoteModel]


@dataclass(frozen=True)
class KindsPlan:
    changes: tuple[KindChange, ...] = ()

    @property
    def pending(self) -> tuple[KindChange, ...]:
        return tuple(c for c in self.changes if c.writes or c.op is Op.CONFLICT)

    def counts(self) -> dict[str, int]:
        out = {op.value: 0 for op in Op}
        for change in self.changes:
            out[change.op.value] += 1
        return out


def policy_defaults() -> Mapping[str, Mapping[str, Any]]:
    return policy_registry().facts.defaults


def normalise_policy(spec: PolicySpec) -> dict[str, Any]:
    """The configuration as the server stores it: defaults filled in."""
    return {**policy_defaults().get(spec.policy_type, {}), **spec.configuration}


def plan_kinds(
    datasets: Sequence[Manifest],
    endpoints: Sequence[EndpointManifest],
    observed: Observed,
    model_plan: Plan,
    *,
    scope: Scope,
    replace_names: frozenset[str] = frozenset(),
    replace_all: bool = False,
) -> KindsPlan:
    """The changes to datasets, endpoints and policies; raises InvalidManifests for an unknown
    reference and Refused for a delete or replace under an endpoint this run does not own."""
    _check_references(endpoints, datasets, observed, model_plan, scope)
    changes: list[KindChange] = []
    sel = scope.selection
    ds_changes = _plan_datasets(datasets, observed, scope)
    changes.extend(ds_changes)
    # what goes away or is recreated under an endpoint: "model x" / "dataset y" → approved?
    gone: dict[tuple[str, str], bool] = {}
    for mc in model_plan.changes:
        if mc.op is Op.DELETE:
            gone[("model", mc.name)] = True
        elif mc.op is Op.REPLACE:
            gone[("model", mc.name)] = replace_approved(mc, names=replace_names, every=replace_all)
    for dc in ds_changes:
        if dc.op is Op.DELETE:
            gone[("dataset", dc.key)] = True
        elif dc.op is Op.REPLACE:
            gone[("dataset", dc.key)] = dc.approved(names=replace_names, every=replace_all)
    wanted = {e.slug: e for e in endpoints}
    for endpoint in endpoints:
        if sel.selects(endpoint.slug, "endpoint", endpoint.tags):
            changes.extend(_plan_endpoint(endpoint, observed, scope, gone))
    for slug, remote in sorted(observed.endpoints.items()):
        if slug in wanted or not sel.selects(slug, "endpoint", remote.user_tags):
            continue
        owned = ownership(remote.tags, scope.owner)
        uses = [(k, n) for k, n in (("model", _ref(remote.model)), ("dataset", _ref(remote.dataset))) if n]
        if scope.prune and owned.mine:
            changes.extend(_policy_deletes(remote, observed.policies))
            changes.append(KindChange("Endpoint", slug, Op.DELETE, observed=remote))
            continue
        changes.append(KindChange("Endpoint", slug, Op.UNMANAGED, observed=remote))
        for use in uses:
            if use in gone:
                raise Refused(
                    f"refusing to delete or replace {use[0]} `{use[1]}`: endpoint `{slug}` uses it and "
                    f"{owned.describe() if not owned.mine else 'is in no manifest'}; this run does not manage "
                    "that endpoint. Nothing was written"
                )
    return KindsPlan(tuple(changes))


def _ref(ref: Any) -> str | None:
    return ref.name if ref is not None else None


def _check_references(
    endpoints: Sequence[EndpointManifest],
    datasets: Sequence[Manifest],
    observed: Observed,
    model_plan: Plan,
    scope: Scope,
) -> None:
    models = {c.name for c in model_plan.changes if c.desired is not None} | set(observed.models)
    pruned = {("model", c.name) for c in model_plan.changes if c.op is Op.DELETE}
    names = {d.name for d in datasets} | set(observed.datasets)
    if scope.prune:
        wanted = {d.name for d in datasets}
        pruned |= {
            ("dataset", n)
            for n, d in observed.datasets.items()
            if n not in wanted and ownership(d.tags, scope.owner).mine
        }
    problems: list[Problem] = []
    for endpoint in endpoints:
        for field_name, value, known in (
            ("model", endpoint.model, models),
            ("dataset", endpoint.dataset, names),
        ):
            if value is None:
                continue
            where = endpoint.where(field_name)
            if value not in known:
                message = f"no {field_name} `{value}` in the manifests or on the server"
            elif (field_name, value) in pruned:
                message = f"{field_name} `{value}` is pruned by this run (--prune) but this endpoint uses it"
            else:
                continue
            problems.append(Problem(where.path, where.line, where.column, field_name, message))
    if problems:
        raise InvalidManifests(problems)


def _plan_datasets(datasets: Sequence[Manifest], observed: Observed, scope: Scope) -> list[KindChange]:
    facts = dataset_registry().facts
    out: list[KindChange] = []
    wanted = {d.name for d in datasets}
    for manifest in datasets:
        if not scope.selection.selects(manifest.name, manifest.dtype, manifest.tags):
            continue
        remote = observed.datasets.get(manifest.name)
        if remote is None:
            out.append(KindChange("Dataset", manifest.name, Op.CREATE, desired=manifest))
            continue
        replace: list[FieldDiff] = []
        not_comparable: tuple[str, ...] = ()
        if manifest.dtype != remote.dtype:
            replace.append(FieldDiff(("dtype",), remote.dtype, manifest.dtype))
        else:
            config = dict(remote.configuration)
            if manifest.dtype in CHROMA_TYPES:  # the server generates/overwrites these
                config.pop("httpPort", None)
                if "collectionName" not in manifest.configuration:
                    config.pop("collectionName", None)
            diffs, not_comparable = diff_configuration(
                manifest,
                config,
                secret_fields=facts.secrets_of(manifest.dtype),
                defaults={k: v for k, v in facts.defaults_of(manifest.dtype).items() if k != "httpPort"},
            )
            replace.extend(diffs)
        update: list[FieldDiff] = []
        if manifest.summary != remote.summary:
            update.append(FieldDiff(("summary",), remote.summary, manifest.summary))
        if set(manifest.tags) != set(remote.user_tags):
            update.append(FieldDiff(("tags",), list(remote.user_tags), list(manifest.tags)))
        owned = ownership(remote.tags, scope.owner)
        takeover = not owned.mine and may_take(owned, adopt=scope.adopt, adopt_from=scope.adopt_from)
        base = KindChange("Dataset", manifest.name, Op.NOOP, manifest, remote, not_comparable=not_comparable)
        if not owned.mine and not takeover:
            diffs = tuple(replace + update)
            op = Op.CONFLICT if diffs else Op.NOOP
            reason = (
                f"exists on the server, differs, and {owned.describe()}; pass --adopt to take it over"
                if diffs
                else f"in sync, but it {owned.describe()}: apply --adopt to manage it"
            )
            out.append(_with(base, op=op, diffs=diffs, reason=reason))
        elif replace:
            out.append(_with(base, op=Op.REPLACE, diffs=tuple(replace + update), adopt=takeover))
        elif update or takeover:
            out.append(_with(base, op=Op.UPDATE, diffs=tuple(update), adopt=takeover))
        else:
            out.append(base)
    for name, remote in sorted(observed.datasets.items()):
        if name in wanted or not scope.selection.selects(name, remote.dtype, remote.user_tags):
            continue
        op = Op.DELETE if scope.prune and ownership(remote.tags, scope.owner).mine else Op.UNMANAGED
        out.append(KindChange("Dataset", name, op, observed=remote))
    return out


def _with(change: KindChange, **kw: Any) -> KindChange:
    import dataclasses

    return dataclasses.replace(change, **kw)


def _plan_endpoint(  # noqa: C901
    endpoint: EndpointManifest, observed: Observed, scope: Scope, gone: Mapping[tuple[str, str], bool]
) -> list[KindChange]:
    remote = observed.endpoints.get(endpoint.slug)
    creates = [
        KindChange("Policy", f"{endpoint.slug}/{p.name}", Op.CREATE, desired=p, endpoint=endpoint.slug)
        for p in endpoint.policies
    ]
    if remote is None:
        return [KindChange("Endpoint", endpoint.slug, Op.CREATE, desired=endpoint), *creates]
    replace: list[FieldDiff] = []
    for name in ("response_type", "published"):
        if not same(getattr(endpoint, name), getattr(remote, name)):
            replace.append(FieldDiff((name,), getattr(remote, name), getattr(endpoint, name)))
    if set(endpoint.tags) != set(remote.user_tags):
        replace.append(FieldDiff(("tags",), list(remote.user_tags), list(endpoint.tags)))
    for name in ("model", "dataset"):
        if getattr(endpoint, name) != _ref(getattr(remote, name)):
            replace.append(FieldDiff((name,), _ref(getattr(remote, name)), getattr(endpoint, name)))
    cascade, cascade_ok = "", True
    for name in ("model", "dataset"):
        used = getattr(endpoint, name)
        if used is not None and (name, used) in gone and not any(d.path == (name,) for d in replace):
            cascade = f"{name} `{used}` is replaced"
            cascade_ok = gone[(name, used)]
    update: list[FieldDiff] = []
    for name in ("name", "summary", "description", "system_prompt"):
        new, old = getattr(endpoint, name), getattr(remote, name)
        if name == "description" and old is None:
            old = ""
        if not same(new, old):
            update.append(FieldDiff((name,), old, new))
    owned = ownership(remote.tags, scope.owner)
    takeover = not owned.mine and may_take(owned, adopt=scope.adopt, adopt_from=scope.adopt_from)
    base = KindChange("Endpoint", endpoint.slug, Op.NOOP, endpoint, remote)
    policies = _plan_policies(endpoint, remote, scope)
    if not owned.mine and not takeover:
        if cascade:  # the model/dataset under it would go: never behind another owner's back
            raise Refused(
                f"refusing to delete or replace the {cascade.split(' is ')[0]}: endpoint `{endpoint.slug}` uses "
                f"it and {owned.describe()}; this run does not manage that endpoint (--adopt takes it over). "
                "Nothing was written"
            )
        diffs = tuple(replace + update)
        differs = bool(diffs) or any(p.op is not Op.NOOP for p in policies)
        return [
            _with(
                base,
                op=Op.CONFLICT if differs else Op.NOOP,
                diffs=diffs,
                reason=(
                    f"exists on the server, differs, and {owned.describe()}; pass --adopt to take it over "
                    "(a replace: an endpoint's tags cannot change in place)"
                    if differs
                    else f"in sync, but it {owned.describe()}: apply --adopt to manage it"
                ),
            )
        ]
    if replace or cascade or takeover:
        if takeover and not replace and not cascade:
            cascade = "adopted: the owner tag can only be set at create"
        return [
            *_policy_deletes(remote, observed.policies),
            _with(
                base,
                op=Op.REPLACE,
                diffs=tuple(replace + update),
                cascade=cascade,
                cascade_approved=bool(cascade) and cascade_ok,
                adopt=takeover,
            ),
            *creates,
        ]
    if update:
        return [_with(base, op=Op.UPDATE, diffs=tuple(update)), *policies]
    return [base, *policies]


def _plan_policies(endpoint: EndpointManifest, remote: RemoteEndpoint, scope: Scope) -> list[KindChange]:
    have = {p.name: p for p in remote.policies or ()}
    out: list[KindChange] = []
    for spec in endpoint.policies:
        key = f"{endpoint.slug}/{spec.name}"
        found = have.get(spec.name)
        if found is None:
            out.append(KindChange("Policy", key, Op.CREATE, desired=spec, endpoint=endpoint.slug))
            continue
        if found.policy_type != spec.policy_type:
            diff = FieldDiff(("policy_type",), found.policy_type, spec.policy_type)
            out.append(KindChange("Policy", key, Op.REPLACE, spec, found, (diff,), endpoint=endpoint.slug))
            continue
        wanted, old = normalise_policy(spec), found.configuration or {}
        diffs = tuple(
            FieldDiff(("configuration", k), old.get(k), wanted.get(k))
            for k in sorted(set(wanted) | set(old))
            if not same(wanted.get(k), old.get(k))
        )
        op = Op.UPDATE if diffs else Op.NOOP
        out.append(KindChange("Policy", key, op, spec, found, diffs, endpoint=endpoint.slug))
    for name, found in sorted(have.items()):
        if any(s.name == name for s in endpoint.policies):
            continue
        op = Op.DELETE if scope.prune else Op.UNMANAGED
        out.append(
            KindChange("Policy", f"{endpoint.slug}/{name}", op, observed=found, endpoint=endpoint.slug)
        )
    return out


def _policy_deletes(remote: RemoteEndpoint, policies: Sequence[RemotePolicy]) -> list[KindChange]:
    """Every policy of an endpoint that goes away, deleted before it (else they are orphaned and
    GET /policies/ fails for the whole tenant)."""
    return [
        KindChange("Policy", f"{remote.slug}/{p.name}", Op.DELETE, observed=p, endpoint=remote.slug)
        for p in policies
        if p.endpoint_id == remote.id
    ]


def kinds_deletions(kinds: KindsPlan, *, names: frozenset[str], every: bool) -> tuple[KindChange, ...]:
    """Datasets and endpoints a run deletes: prunes, and replaces that will run (cascades too).
    Policies go with their endpoint and are not counted on their own."""
    return tuple(
        c
        for c in kinds.changes
        if c.kind != "Policy"
        and (c.op is Op.DELETE or (c.op is Op.REPLACE and c.approved(names=names, every=every)))
    )


def owned_kinds(kinds: KindsPlan, owner: str | None) -> int:
    """This owner's datasets and endpoints on the server within the plan."""
    return sum(
        1
        for c in kinds.changes
        if c.kind != "Policy"
        and isinstance(c.observed, (RemoteDataset, RemoteEndpoint))
        and ownership(c.observed.tags, owner).mine
    )
