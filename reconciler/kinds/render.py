"""Datasets, endpoints and policies in plans: text, JSON and markdown lines (pure).

Same symbols and redaction as the models' (render.py); a cascade names what forces it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from reconciler.kinds.plan import KindChange, KindsPlan
from reconciler.kinds.values import EndpointManifest
from reconciler.model import FieldDiff, Manifest, Op
from reconciler.redact import looks_secret_key, neutralise, redact_keys
from reconciler.render import _SYMBOL, _WORD, SENSITIVE, _clip, _show, create_diffs, md_code, md_text


def _value(change: KindChange, path: tuple[str, ...], value: Any) -> Any:
    desired = change.desired
    secret = path[:1] == ("configuration",) and (
        looks_secret_key(path[-1]) or (isinstance(desired, Manifest) and path[-1] in desired.sensitive)
    )
    if secret:
        return SENSITIVE if value is not None else None
    return redact_keys(value)


def shown_fields(change: KindChange) -> tuple[FieldDiff, ...]:
    """What a change shows field by field: its diffs, or for a create every field it sets (as a
    model's create shows them), so that a review sees what a new dataset, endpoint or policy is."""
    desired = change.desired
    if change.op is not Op.CREATE or desired is None:
        return change.diffs
    if isinstance(desired, Manifest):  # a dataset: dtype, configuration, summary, tags
        return create_diffs(desired)
    if isinstance(desired, EndpointManifest):
        values: list[tuple[tuple[str, ...], Any]] = [
            (("name",), desired.name),
            (("model",), desired.model),
            (("dataset",), desired.dataset),
            (("response_type",), desired.response_type),
            (("summary",), desired.summary),
            (("description",), desired.description),
            (("system_prompt",), desired.system_prompt),
            (("published",), desired.published or None),
            (("tags",), list(desired.tags)),
        ]
    else:  # a policy
        values = [(("policy_type",), desired.policy_type)]
        values += [(("configuration", key), value) for key, value in desired.configuration.items()]
    return tuple(FieldDiff(path, None, value) for path, value in values if value not in (None, "", []))


def kinds_text(kinds: KindsPlan, *, names: frozenset[str] | bool = False) -> list[str]:
    """Lines for the plan text: deletions first, then the rest, in graph order."""
    every = names is True
    allowed = names if isinstance(names, frozenset) else frozenset()
    lines: list[str] = []
    destructive = [c for c in kinds.changes if c.op in (Op.DELETE, Op.REPLACE)]
    rest = [c for c in kinds.changes if c.op not in (Op.DELETE, Op.REPLACE)]
    for change in destructive + rest:
        if change.op is Op.NOOP and not change.reason and not change.not_comparable:
            continue
        head = f"  {_SYMBOL[change.op]} {_WORD[change.op]} {neutralise(change.label, line=True)}"
        if change.op is Op.REPLACE and not change.approved(names=allowed, every=every):
            head += f"  [needs --replace {change.key}]"
        if change.cascade:
            head += f"  [cascade: {neutralise(change.cascade)}]"
        if change.adopt:
            head += "  [adopt]"
        lines.append(head)
        for diff in shown_fields(change):
            old = _show(_value(change, diff.path, diff.old))
            new = _show(_value(change, diff.path, diff.new))
            shown = new if change.op is Op.CREATE else f"{old} -> {new}"
            lines.append(neutralise(f"      {diff.dotted}: {shown}"))
        if change.not_comparable:
            fields = ", ".join(f"configuration.{k}" for k in change.not_comparable)
            lines.append(f"      {fields}: not comparable (the server does not echo it)")
        if change.reason:
            lines.append(f"      {neutralise(change.reason)}")
    return lines


def kinds_summary(kinds: KindsPlan) -> str:
    c = kinds.counts()
    return (
        f"datasets/endpoints/policies: {c['create']} to create, {c['update']} to update, "
        f"{c['replace']} to replace, {c['delete']} to delete, {c['noop']} in sync"
        + (f", {c['conflict']} in conflict" if c["conflict"] else "")
        + (f", {c['unmanaged']} unmanaged" if c["unmanaged"] else "")
    )


def kinds_json(kinds: KindsPlan) -> list[dict[str, Any]]:
    return [
        {
            "kind": c.kind,
            "key": c.key,
            "op": c.op.value,
            **({"cascade": c.cascade} if c.cascade else {}),
            **({"reason": c.reason} if c.reason else {}),
            "diffs": [
                {"field": d.dotted, "old": _value(c, d.path, d.old), "new": _value(c, d.path, d.new)}
                for d in shown_fields(c)
            ],
        }
        for c in kinds.changes
    ]


def labels(changes: Sequence[KindChange]) -> str:
    """`endpoint bot (replace), dataset d` for a DELETIONS line."""
    return ", ".join(
        neutralise(c.label, line=True) + (" (replace)" if c.op is Op.REPLACE else "") for c in changes
    )


def kinds_markdown(kinds: KindsPlan) -> list[str]:
    """Rows for the PR comment: every pending change of datasets, endpoints and policies, deletions
    first, each field with its old and new value (secrets as (sensitive))."""
    pending = sorted(kinds.pending, key=lambda c: c.op not in (Op.DELETE, Op.REPLACE))
    if not pending:
        return []
    rows = ["", "| | kind | key | changes |", "| --- | --- | --- | --- |"]
    for c in pending:
        parts = []
        for d in shown_fields(c):
            new = md_code(_clip(_show(_value(c, d.path, d.new))))
            old = md_code(_clip(_show(_value(c, d.path, d.old))))
            parts.append(
                f"{md_code(d.dotted)}: {new}" if c.op is Op.CREATE else f"{md_code(d.dotted)}: {old} → {new}"
            )
        if c.cascade:
            parts.append(f"cascade: {md_text(c.cascade)}")
        rows.append(f"| {_SYMBOL[c.op]} {_WORD[c.op]} | {c.kind} | {md_code(c.key)} | {'<br>'.join(parts)} |")
    return rows
