"""Desired manifests + observed models → Plan (pure: no clock, no environment, no network).

Per model: create, noop (in sync), update (summary/tags: the API's PATCH), replace (dtype or
configuration changed: the API cannot change them in place, ../shared/syft-space-api.md "PATCH"),
conflict (same name, not ours, different content, no --adopt), unmanaged (on the server only;
reported) and delete (on the server only, ours, with --prune).
Secret fields the server does not echo, or echoes masked, are "not comparable", never "changed".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from reconciler.model import Change, FieldDiff, Manifest, Op, Plan, RemoteModel

_MISSING: Any = object()


def looks_masked(value: Any) -> bool:
    """A secret a server will not echo: absent, null, or masked like `sk-…abcd` / `********`."""
    if value is None:
        return True
    if isinstance(value, str):
        return "***" in value or "…" in value or (bool(value) and set(value) <= {"*", "•", "x", "X"} and len(value) >= 4)
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
            continue
        if old is _MISSING and key in defaults and same(new, defaults[key]):
            continue
        if new is _MISSING and key in defaults and same(old, defaults[key]):
            continue
        if new is _MISSING or old is _MISSING or not same(new, old):
            diffs.append(FieldDiff(
                ("configuration", key),
                None if old is _MISSING else old,
                None if new is _MISSING else new,
                sensitive=sensitive,
            ))
    return tuple(diffs), tuple(not_comparable)


def diff_model(
    desired: Manifest,
    observed: RemoteModel,
    *,
    secret_fields: frozenset[str] = frozenset(),
    defaults: Mapping[str, Any] | None = None,
) -> tuple[tuple[FieldDiff, ...], tuple[FieldDiff, ...], tuple[str, ...]]:
    """(replace-diffs: dtype/configuration, update-diffs: summary/tags, not-comparable secrets)."""
    replace: list[FieldDiff] = []
    if desired.dtype != observed.dtype:
        replace.append(FieldDiff(("dtype",), observed.dtype, desired.dtype))
        not_comparable: tuple[str, ...] = ()
    else:
        config_diffs, not_comparable = diff_configuration(
            desired, observed.configuration, secret_fields=secret_fields, defaults=defaults
        )
        replace.extend(config_diffs)
    update: list[FieldDiff] = []
    if desired.summary != observed.summary:
        update.append(FieldDiff(("summary",), observed.summary, desired.summary))
    if set(desired.tags) != set(observed.user_tags):
        update.append(FieldDiff(("tags",), list(observed.user_tags), list(desired.tags)))
    return tuple(replace), tuple(update), not_comparable


def plan(
    desired: Sequence[Manifest],
    observed: Mapping[str, RemoteModel],
    *,
    secret_fields: Mapping[str, frozenset[str]] | None = None,
    defaults: Mapping[str, Mapping[str, Any]] | None = None,
    adopt: bool = False,
    prune: bool = False,
) -> Plan:
    """The changes that bring `observed` in line with `desired`, sorted by name.

    With `prune`, models on the server that carry our ownership tag and have no manifest are
    deleted; models we did not create are never deleted, only reported.

    `secret_fields` and `defaults` are per dtype (from the schema registry): a field missing on
    one side and equal to its schema default on the other is not a difference.
    """
    secret_fields = secret_fields or {}
    defaults = defaults or {}
    changes: list[Change] = []
    wanted = {m.name: m for m in desired}
    for manifest in desired:
        remote = observed.get(manifest.name)
        if remote is None:
            changes.append(Change(Op.CREATE, manifest.name, desired=manifest))
            continue
        replace, update, not_comparable = diff_model(
            manifest,
            remote,
            secret_fields=secret_fields.get(manifest.dtype, frozenset()),
            defaults=defaults.get(manifest.dtype, {}),
        )
        common = {"name": manifest.name, "desired": manifest, "observed": remote,
                  "not_comparable": not_comparable}
        if not remote.owned and not adopt:
            if replace or update:
                changes.append(Change(
                    Op.CONFLICT, diffs=replace + update, adopt=False,
                    reason="exists on the server, differs, and was not created by the reconciler; "
                    "pass --adopt to take it over",
                    **common,
                ))
            else:  # equal content: in sync (e.g. right after `export`), but not ours to prune
                changes.append(Change(Op.NOOP, reason="not managed by the reconciler: "
                                      "apply --adopt to manage it", **common))
        elif replace:
            changes.append(Change(Op.REPLACE, diffs=replace + update, adopt=not remote.owned, **common))
        elif update or not remote.owned:
            changes.append(Change(Op.UPDATE, diffs=update, adopt=not remote.owned, **common))
        else:
            changes.append(Change(Op.NOOP, **common))
    for name, remote in observed.items():
        if name not in wanted:
            op = Op.DELETE if prune and remote.owned else Op.UNMANAGED
            changes.append(Change(op, name, observed=remote))
    changes.sort(key=lambda c: c.name)
    return Plan(tuple(changes))
