"""Desired manifests + observed models → Plan (pure: no clock, no environment, no network).

Per model: create, noop (in sync), update (summary/tags: the API's PATCH), replace (dtype or
configuration changed: the API cannot change them in place, ../shared/syft-space-api.md "PATCH"),
conflict (same name, not ours, different content, no --adopt), unmanaged (on the server only;
reported) and delete (on the server only, ours, with --prune). Ownership (ownership.py) decides
what may be touched, the selection what is looked at, and `check_deletions` is the blast-radius
limit that apply and watch enforce before any write.
Secret fields the server does not echo, or echoes masked, are "not comparable", never "changed".
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from reconciler.errors import Refused
from reconciler.model import KINDS, Change, FieldDiff, Manifest, Op, Plan, RemoteModel, plural
from reconciler.ownership import TAG_PREFIX, Claim, Ownership, may_take, ownership
from reconciler.schemas import DtypeFacts
from reconciler.selection import Selection

_MISSING: Any = object()
NO_FACTS = DtypeFacts()


def looks_masked(value: Any) -> bool:
    """A secret a server will not echo: absent, null, or masked like `sk-…abcd` / `********`."""
    if value is None:
        return True
    if isinstance(value, str):
        return (
            "***" in value
            or "…" in value
            or (bool(value) and set(value) <= {"*", "•", "x", "X"} and len(value) >= 4)
        )
    return False


def same(a: Any, b: Any) -> bool:
    """JSON equality that keeps `true` and `1` apart but lets `1` equal `1.0`."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def diff_configuration(
    desired: Manifest,
    observed: Mapping[str, Any],
    *,
    secret_fields: frozenset[str] = frozenset(),
    defaults: Mapping[str, Any] | None = None,
) -> tuple[tuple[FieldDiff, ...], tuple[str, ...]]:
    """Field-level differences of `configuration`, and the secret fields that cannot be compared."""
    defaults = defaults or {}
    diffs: list[FieldDiff] = []
    not_comparable: list[str] = []
    wanted = desired.configuration
    for key in sorted(set(wanted) | set(observed)):
        new = wanted.get(key, _MISSING)
        old = observed.get(key, _MISSING)
        sensitive = key in desired.sensitive or key in secret_fields
        if sensitive and new is not _MISSING and (old is _MISSING or looks_masked(old)):
            not_comparable.append(key)
        elif _differs(new, old, defaults.get(key, _MISSING)):
            diffs.append(FieldDiff(("configuration", key), _none(old), _none(new), sensitive=sensitive))
    return tuple(diffs), tuple(not_comparable)


def _differs(new: Any, old: Any, default: Any) -> bool:
    """A value missing on one side and equal to the schema default on the other is no change."""
    if old is _MISSING and new is not _MISSING:
        return default is _MISSING or not same(new, default)
    if new is _MISSING and old is not _MISSING:
        return default is _MISSING or not same(old, default)
    return not same(new, old)


def _none(value: Any) -> Any:
    return None if value is _MISSING else value


def diff_model(
    desired: Manifest, observed: RemoteModel, facts: DtypeFacts = NO_FACTS
) -> tuple[tuple[FieldDiff, ...], tuple[FieldDiff, ...], tuple[str, ...]]:
    """(replace-diffs: dtype/configuration, update-diffs: summary/tags, not-comparable secrets)."""
    if desired.dtype != observed.dtype:
        replace: tuple[FieldDiff, ...] = (FieldDiff(("dtype",), observed.dtype, desired.dtype),)
        not_comparable: tuple[str, ...] = ()
    else:
        replace, not_comparable = diff_configuration(
            desired,
            observed.configuration,
            secret_fields=facts.secrets_of(desired.dtype),
            defaults=facts.defaults_of(desired.dtype),
        )
    return replace, envelope_updates(desired, observed.summary, observed.user_tags), not_comparable


def envelope_updates(desired: Manifest, summary: str, user_tags: Sequence[str]) -> tuple[FieldDiff, ...]:
    """What PATCH changes in place on a model or a dataset: summary, and tags as a set."""
    update: list[FieldDiff] = []
    if desired.summary != summary:
        update.append(FieldDiff(("summary",), summary, desired.summary))
    if set(desired.tags) != set(user_tags):
        update.append(FieldDiff(("tags",), list(user_tags), list(desired.tags)))
    return tuple(update)


@dataclass(frozen=True)
class Scope:
    """What one run may touch: its owner, what it may take over, and the selected part of the set."""

    owner: str | None = None
    """This instance's owner (None: no owner set; the bare pre-owner tag is then ours)."""
    adopt: bool = False
    """Take over unowned (and legacy-tagged) models that a manifest names."""
    adopt_from: frozenset[str] = frozenset()
    """Also take over models of these other owners that a manifest names."""
    prune: bool = False
    selection: Selection = field(default_factory=Selection)


def plan(
    desired: Sequence[Manifest],
    observed: Mapping[str, RemoteModel],
    *,
    facts: DtypeFacts = NO_FACTS,
    adopt: bool = False,
    prune: bool = False,
    scope: Scope | None = None,
) -> Plan:
    """The changes that bring `observed` in line with `desired`, sorted by name.

    Only what `scope.selection` selects is planned, on both sides. Models this run's owner does
    not own are never updated, replaced or deleted: a same-named one is a conflict naming its
    owner (or, unowned and equal, in sync) unless the scope may take it over. With `prune`, the
    owner's selected models that no manifest names are deleted.

    `facts` are the dtypes' secret fields and schema defaults (schemas.DtypeFacts).
    """
    scope = scope or Scope(adopt=adopt, prune=prune)
    selection = scope.selection
    changes: list[Change] = []
    chosen = [m for m in desired if selection.selects(m.name, m.dtype, m.tags)]
    wanted = {m.name: m for m in desired}
    for manifest in chosen:
        remote = observed.get(manifest.name)
        if remote is None:
            changes.append(Change(Op.CREATE, manifest.name, desired=manifest))
            continue
        replace, update, not_comparable = diff_model(manifest, remote, facts)
        owned = ownership(remote.tags, scope.owner)
        common = Change(
            Op.NOOP,
            manifest.name,
            desired=manifest,
            observed=remote,
            not_comparable=not_comparable,
            ownership=owned,
        )
        changes.append(decide(common, owned, scope, replace, update, tags=remote.tags))
    for name, remote in observed.items():
        if name in wanted or not selection.selects(remote.name, remote.dtype, remote.user_tags):
            continue
        changes.append(
            unnamed(Change(Op.UNMANAGED, name, observed=remote), ownership(remote.tags, scope.owner), scope)
        )
    changes.sort(key=lambda c: c.name)
    return Plan(tuple(changes))


def unnamed(change: Change, owned: Ownership, scope: Scope) -> Change:
    """An object on the server that no manifest names, of any kind: this owner's is a deletion,
    made with --prune and otherwise pending and shown as needing it (Argo CD's "requires pruning");
    anyone else's is unmanaged, left alone."""
    if not owned.mine:
        return dataclasses.replace(change, op=Op.UNMANAGED, ownership=owned)
    return dataclasses.replace(change, op=Op.DELETE, ownership=owned, held="" if scope.prune else "--prune")


def foreign(
    owned: Ownership, diffs: tuple[FieldDiff, ...], common: Change, *, differs: bool = False
) -> Change:
    """An object of any kind that a manifest names but this run may not take over: another owner's
    is always a conflict naming that owner (its hint: --adopt-from); an unowned or legacy-tagged one
    is in sync when equal (as right after `export`), else a conflict (its hint: --adopt).
    `differs`: something beside `diffs` differs (an endpoint's policies)."""
    if owned.claim is Claim.OTHER:
        return dataclasses.replace(
            common,
            op=Op.CONFLICT,
            diffs=diffs,
            reason=(
                f"exists on the server and {owned.describe()}, not by this repository's owner; another "
                f"repository manages it (take it over only on purpose: "
                f"--adopt-from {' --adopt-from '.join(owned.owners)})"
            ),
        )
    if diffs or differs:
        return dataclasses.replace(
            common,
            op=Op.CONFLICT,
            diffs=diffs,
            reason=f"exists on the server, differs, and {owned.describe()}; pass --adopt to take it over",
        )
    # equal content: in sync (e.g. right after `export`), but not ours to prune or replace
    return dataclasses.replace(
        common, reason=f"in sync, but it {owned.describe()}: apply --adopt to manage it"
    )


def decide(
    common: Change,
    owned: Ownership,
    scope: Scope,
    replace: tuple[FieldDiff, ...],
    update: tuple[FieldDiff, ...],
    *,
    tags: Sequence[str],
) -> Change:
    """The one rule for a model or a dataset that a manifest names and the server has: another's
    (foreign), a replace, an update (adopting, or tidying our legacy tag), or in sync."""
    takeover = not owned.mine and may_take(owned, adopt=scope.adopt, adopt_from=scope.adopt_from)
    if not owned.mine and not takeover:
        return foreign(owned, replace + update, common)
    if replace:
        return dataclasses.replace(common, op=Op.REPLACE, diffs=replace + update, adopt=takeover)
    if update or takeover or stray_tags(tags, scope.owner):
        return dataclasses.replace(common, op=Op.UPDATE, diffs=update, adopt=takeover)
    return common


def stray_tags(tags: Sequence[str], owner: str | None) -> bool:
    """Our object still carries the bare pre-owner tag beside our own: one PATCH tidies it."""
    return owner is not None and TAG_PREFIX in tags


UNLIMITED = "unlimited"
DEFAULT_MAX_DELETE = 10
"""Without --max-delete a run deletes at most this many models, and at most half of the owner's."""

MaxDelete = int | str | None  # a count, UNLIMITED, or None for the default limit


def delete_limit(max_delete: MaxDelete, owned: int) -> int | None:
    """The number of deletions a run may make (None: no limit)."""
    if max_delete == UNLIMITED:
        return None
    if isinstance(max_delete, int):
        return max_delete
    return min(DEFAULT_MAX_DELETE, max(1, owned // 2))


def counts_as_deletion(change: Change, *, names: frozenset[str] = frozenset(), every: bool = False) -> bool:
    """Whether a change deletes an object on the server: a prune, or a replace that will run
    (cascades too). A policy is a security control (an endpoint without its access policy lets
    everyone in): deleting or recreating one counts like any other object, also when it goes with
    its endpoint."""
    if change.held:
        return False
    return change.op is Op.DELETE or (change.op is Op.REPLACE and change.approved(names=names, every=every))


def deletions(plan: Plan, *, names: frozenset[str] = frozenset(), every: bool = False) -> tuple[Change, ...]:
    """The changes that delete an object on the server: prunes, and replaces that will run."""
    return tuple(c for c in plan.changes if counts_as_deletion(c, names=names, every=every))


def owned_count(plan: Plan) -> int:
    """This owner's objects on the server within the plan's selection (a policy is its endpoint's)."""
    return sum(
        1 for c in plan.changes if c.observed is not None and c.ownership is not None and c.ownership.mine
    )


def check_deletions(
    plan: Plan,
    *,
    manifest_count: int,
    max_delete: MaxDelete = None,
    allow_empty: bool = False,
    names: frozenset[str] = frozenset(),
    every: bool = False,
) -> None:
    """Refuse, before any write, deletions that look like an accident (the blast-radius limit):
    every kind's prunes and replaces (cascades too) together, against all this owner has.

    Raises Refused; `plan` calls it only to warn, `apply` and `watch` to stop.
    """
    for change in plan.blocked:
        raise Refused(
            f"refusing to delete or replace {change.label}: {change.blocked}, so it would be left without "
            "it. Nothing was written"
        )
    going = deletions(plan, names=names, every=every)
    if not going:
        return
    pruned = plan.deletes
    if manifest_count == 0 and pruned and not allow_empty:
        raise Refused(
            f"refusing to prune with no manifests: it would delete all {len(pruned)} object(s) "
            f"({counted(pruned)}) this owner manages; check the path, or pass --allow-empty; nothing was written"
        )
    owned = owned_count(plan)
    limit = delete_limit(max_delete, owned)
    if limit is not None and len(going) > limit:
        how = (
            f"the limit set by --max-delete {max_delete}"
            if isinstance(max_delete, int)
            else f"the default limit of {limit} (at most {DEFAULT_MAX_DELETE}, and at most half of the "
            f"{owned} object(s) this owner has here)"
        )
        raise Refused(
            f"refusing to delete {counted(going)} ({_how_deleted(going)}): more than {how}; "
            f"nothing was written. Check the plan, then raise the limit with --max-delete "
            f"{len(going)} (or --max-delete {UNLIMITED})"
        )


def counted(changes: Sequence[Change]) -> str:
    """`2 models, 1 endpoint`: how many objects of each kind."""
    by_kind: dict[str, int] = {}
    for change in changes:
        by_kind[change.kind] = by_kind.get(change.kind, 0) + 1
    return ", ".join(plural(kind, by_kind[kind]) for kind in KINDS if kind in by_kind)


def _how_deleted(going: Sequence[Change]) -> str:
    """`2 pruned, 1 replaced, 1 of them by cascade, 2 policies with their endpoint`."""
    along = _with_their_endpoint(going)
    counts = {
        "pruned": sum(1 for c in going if c.op is Op.DELETE) - len(along),
        "replaced": sum(1 for c in going if c.op is Op.REPLACE),
        "of them by cascade": sum(1 for c in going if c.cascade),
    }
    parts = [f"{n} {how}" for how, n in counts.items() if n]
    return ", ".join(parts + ([f"{plural('Policy', len(along))} with their endpoint"] if along else []))


def _with_their_endpoint(going: Sequence[Change]) -> list[Change]:
    """The policy deletes that go with their endpoint's delete or replace."""
    endpoints = {c.name for c in going if c.kind == "Endpoint"}
    return [c for c in going if c.kind == "Policy" and c.op is Op.DELETE and c.endpoint in endpoints]


@dataclass(frozen=True)
class PlanOptions:
    """The options that decide what a run plans and may do: one value for plan, apply and watch,
    and what a saved plan carries (`plan --out`)."""

    adopt: bool = False
    adopt_from: tuple[str, ...] = ()
    prune: bool = False
    replace: tuple[str, ...] = ()
    replace_all: bool = False
    selectors: tuple[str, ...] = ()
    targets: tuple[str, ...] = ()
    max_delete: MaxDelete = None
    allow_empty: bool = False

    def scope(self, owner: str | None) -> Scope:
        return Scope(
            owner=owner,
            adopt=self.adopt,
            adopt_from=frozenset(self.adopt_from),
            prune=self.prune,
            selection=Selection.from_options(self.selectors, self.targets),
        )

    @property
    def replace_allowed(self) -> frozenset[str] | bool:
        """For render: every replace (--replace-all), or these names."""
        return True if self.replace_all else frozenset(self.replace)

    def check(self, plan: Plan, *, manifest_count: int) -> None:
        """The blast-radius limit (check_deletions) with these options; raises Refused."""
        check_deletions(
            plan,
            manifest_count=manifest_count,
            max_delete=self.max_delete,
            allow_empty=self.allow_empty,
            names=frozenset(self.replace),
            every=self.replace_all,
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "adopt": self.adopt,
            "adopt_from": sorted(self.adopt_from),
            "prune": self.prune,
            "replace": sorted(self.replace),
            "replace_all": self.replace_all,
            "selectors": list(self.selectors),
            "targets": sorted(self.targets),
            "max_delete": self.max_delete,
            "allow_empty": self.allow_empty,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PlanOptions:
        """From a saved plan (older plans lack the newer keys: their defaults apply)."""
        return cls(
            adopt=bool(data.get("adopt", False)),
            adopt_from=tuple(data.get("adopt_from", ())),
            prune=bool(data.get("prune", False)),
            replace=tuple(data.get("replace", ())),
            replace_all=bool(data.get("replace_all", False)),
            selectors=tuple(data.get("selectors", ())),
            targets=tuple(data.get("targets", ())),
            max_delete=data.get("max_delete"),
            allow_empty=bool(data.get("allow_empty", False)),
        )

    @property
    def any_set(self) -> bool:
        return self != PlanOptions()
