"""Plans, problems and apply reports as text, JSON or markdown (pure: returns strings).

Secrets are redacted here: a value is printed only when its field is neither marked writeOnly by
the dtype schema, nor filled from a ${…}/file reference, nor named like a secret (`password`,
`api-key`, `headers.Authorization`… at any depth: what a server sends is judged by its keys).
The scrubber (redact.py) then catches any registered value wherever it still shows. Server-sent
text is escaped for each format: terminal escapes and bidi characters in text, pipes and
backticks in markdown tables. The JSON shapes are a contract: top-level `"version": 1`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from reconciler.errors import InvalidManifests, ReconcilerError
from reconciler.model import ApplyReport, Change, FieldDiff, Manifest, Op, Outcome, Plan, Problem, Result
from reconciler.plan import replace_approved
from reconciler.redact import looks_secret_key, neutralise, redact_keys

SENSITIVE = "(sensitive)"
JSON_VERSION = 1

_SYMBOL = {
    Op.CREATE: "+",
    Op.UPDATE: "~",
    Op.REPLACE: "-/+",
    Op.CONFLICT: "!",
    Op.UNMANAGED: "?",
    Op.NOOP: "=",
    Op.DELETE: "-",
}
_WORD = {
    Op.CREATE: "create",
    Op.UPDATE: "update",
    Op.REPLACE: "replace",
    Op.CONFLICT: "conflict",
    Op.UNMANAGED: "unmanaged",
    Op.NOOP: "in sync",
    Op.DELETE: "delete",
}


def _value(value: Any, *, sensitive: bool) -> Any:
    return (SENSITIVE if value is not None else None) if sensitive else redact_keys(value)


def _sensitive(diff: FieldDiff) -> bool:
    return diff.sensitive or (diff.path[:1] == ("configuration",) and looks_secret_key(diff.path[-1]))


def md_code(text: str) -> str:
    """`text` as a markdown code span that survives a table cell: pipes escaped, fenced with more
    backticks than it holds, on one line, terminal-safe."""
    text = neutralise(text, line=True).replace("|", "\\|")
    longest = run = 0
    for char in text:
        run = run + 1 if char == "`" else 0
        longest = max(longest, run)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith(("`", " ")) or text.endswith(("`", " ")) or not text else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def md_text(text: str) -> str:
    """Plain text for a markdown table cell."""
    return neutralise(text, line=True).replace("|", "\\|")


def _show(value: Any) -> str:
    return SENSITIVE if value == SENSITIVE else json.dumps(value, ensure_ascii=False)


def create_diffs(manifest: Manifest) -> tuple[FieldDiff, ...]:
    """A create shown as a diff from nothing, field by field."""
    diffs = [FieldDiff(("dtype",), None, manifest.dtype)]
    for key, value in manifest.configuration.items():
        diffs.append(FieldDiff(("configuration", key), None, value, sensitive=key in manifest.sensitive))
    if manifest.summary:
        diffs.append(FieldDiff(("summary",), None, manifest.summary))
    if manifest.tags:
        diffs.append(FieldDiff(("tags",), None, list(manifest.tags)))
    return tuple(diffs)


def _diffs(change: Change) -> tuple[FieldDiff, ...]:
    if change.op is Op.CREATE and change.desired is not None:
        return create_diffs(change.desired)
    return change.diffs


def change_dict(change: Change, *, replace_allowed: bool | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"op": change.op.value, "name": change.name}
    if change.desired is not None:
        out["source"] = str(change.desired.source)
    out["diffs"] = [
        {
            "field": d.dotted,
            "old": _value(d.old, sensitive=_sensitive(d)),
            "new": _value(d.new, sensitive=_sensitive(d)),
            **({"sensitive": True} if _sensitive(d) else {}),
        }
        for d in _diffs(change)
    ]
    if change.not_comparable:
        out["not_comparable"] = [f"configuration.{k}" for k in change.not_comparable]
    if change.adopt:
        out["adopt"] = True
    if change.ownership is not None and change.op in (Op.UNMANAGED, Op.CONFLICT, Op.DELETE):
        out["owned"] = change.ownership.mine
        out["ownership"] = {"claim": change.ownership.claim.value, "owners": list(change.ownership.owners)}
    if change.reason:
        out["reason"] = change.reason
    if replace_allowed is not None and change.op is Op.REPLACE:
        out["replace_allowed"] = replace_allowed
    return out


def summary_line(plan: Plan) -> str:
    c = plan.counts()
    parts = [
        f"{c['create']} to create",
        f"{c['update']} to update",
        f"{c['replace']} to replace",
        f"{c['noop']} in sync",
    ]
    if c["delete"]:
        parts.insert(3, f"{c['delete']} to delete")
    if c["conflict"]:
        parts.append(f"{c['conflict']} in conflict")
    if c["unmanaged"]:
        parts.append(f"{c['unmanaged']} unmanaged")
    return ", ".join(parts)


def _not_comparable_note(change: Change) -> str:
    fields = ", ".join(f"configuration.{k}" for k in change.not_comparable)
    return f"      {fields}: not comparable (the server does not echo it)"


def deletion_kinds(going: Sequence[Change]) -> str:
    deletes = sum(1 for c in going if c.op is Op.DELETE)
    parts = [f"{deletes} pruned"] if deletes else []
    if len(going) > deletes:
        parts.append(f"{len(going) - deletes} replaced")
    return ", ".join(parts)


def deletions_line(going: Sequence[Change]) -> str:
    """The models a run deletes (prunes, and replaces that will run), shown before anything else."""
    names = ", ".join(
        neutralise(c.name, line=True) + (" (replace)" if c.op is Op.REPLACE else "") for c in going
    )
    return f"  DELETIONS ({len(going)}): {names}"


_DESTRUCTIVE = (Op.DELETE, Op.REPLACE)


def plan_text(plan: Plan, *, target: str, replace_allowed: frozenset[str] | bool = False) -> str:
    lines = [f"Plan for {target}: {summary_line(plan)}."]
    going = [
        c for c in plan.changes if c.op is Op.DELETE or (c.op is Op.REPLACE and _allowed(c, replace_allowed))
    ]
    if going:
        lines.append(deletions_line(going))
    # what deletes comes first, then the rest, each part sorted by name
    ordered = [c for c in plan.changes if c.op in _DESTRUCTIVE] + [
        c for c in plan.changes if c.op not in _DESTRUCTIVE
    ]
    for change in ordered:
        if change.op is Op.NOOP and not change.not_comparable and not change.reason:
            continue
        where = f"  ({neutralise(str(change.desired.source))})" if change.desired is not None else ""
        head = f"  {_SYMBOL[change.op]} {_WORD[change.op]} {neutralise(change.name, line=True)}{where}"
        if change.op is Op.REPLACE and not _allowed(change, replace_allowed):
            never = change.desired is not None and change.desired.replace_policy == "never"
            head += "  [lifecycle.replace: never]" if never else f"  [needs --replace {change.name}]"
        if change.adopt:
            head += "  [adopt]"
        lines.append(head)
        for diff in _diffs(change):
            old = _show(_value(diff.old, sensitive=_sensitive(diff)))
            new = _show(_value(diff.new, sensitive=_sensitive(diff)))
            arrow = new if change.op is Op.CREATE else f"{old} -> {new}"
            lines.append(neutralise(f"      {diff.dotted}: {arrow}"))
        if change.not_comparable:
            lines.append(_not_comparable_note(change))
        if change.op is Op.UNMANAGED:
            owner = change.ownership.describe() if change.ownership else "was not created by the reconciler"
            lines.append(f"      on the server, not in the manifests (it {owner}); left alone")
        if change.reason:
            lines.append(f"      {neutralise(change.reason)}")
    if plan.is_empty:
        lines.append("No changes: the server matches the manifests.")
    return "\n".join(lines)


COMPACT_OVER = 20
"""`apply` shows a plan with more changes than this in short: grouped counts and the first names."""
COMPACT_NAMES = 5


def _listed(change: Any) -> bool:
    """Whether the plan text lists this change (models and datasets/endpoints/policies alike)."""
    return change.op is not Op.NOOP or bool(change.not_comparable or change.reason)


def listed_count(plan: Plan, kinds: Any = None) -> int:
    return sum(1 for c in plan.changes if _listed(c)) + sum(
        1 for c in (kinds.changes if kinds is not None else ()) if _listed(c)
    )


def space_plan_text(
    plan: Plan,
    kinds: Any = None,
    *,
    target: str,
    replace_allowed: frozenset[str] | bool = False,
    compact: bool = False,
) -> str:
    """The plan text of `plan` and `apply`: models, then datasets/endpoints/policies. `compact`
    (apply, over COMPACT_OVER changes, no --verbose): every deletion still named, then per kind of
    change its count and first names."""
    from reconciler.kinds.render import kinds_summary, kinds_text, labels  # kinds.render imports us

    pending_kinds = kinds is not None and bool(kinds.changes)
    if compact:
        return _compact(plan, kinds if pending_kinds else None, target=target, allowed=replace_allowed)
    lines = plan_text(plan, target=target, replace_allowed=replace_allowed).split("\n")
    if pending_kinds:
        done = lines[-1].startswith("No changes")
        lines = lines[:-1] if done else lines
        lines.insert(1, f"  {kinds_summary(kinds)}.")
        going = _kinds_going(kinds, replace_allowed)
        if going:
            at = 3 if len(lines) > 2 and lines[2].startswith("  DELETIONS") else 2
            lines.insert(at, f"  DELETIONS of datasets/endpoints ({len(going)}): {labels(going)}")
        lines += kinds_text(kinds, names=replace_allowed)
        if done and not kinds.pending:
            lines.append("No changes: the server matches the manifests.")
    return "\n".join(lines)


def _kinds_going(kinds: Any, allowed: frozenset[str] | bool) -> Sequence[Any]:
    from reconciler.kinds.plan import kinds_deletions

    names = allowed if isinstance(allowed, frozenset) else frozenset()
    return kinds_deletions(kinds, names=names, every=allowed is True)


_GROUP_ORDER = (Op.REPLACE, Op.DELETE, Op.CREATE, Op.UPDATE, Op.CONFLICT, Op.UNMANAGED, Op.NOOP)


def _group_line(op: Op, names: Sequence[str], what: str, extra: str = "") -> str:
    shown = ", ".join(neutralise(n, line=True) for n in names[:COMPACT_NAMES])
    more = f", … and {len(names) - COMPACT_NAMES:,} more" if len(names) > COMPACT_NAMES else ""
    return f"  {_SYMBOL[op]} {_WORD[op]} {len(names):,} {what}{extra}: {shown}{more}"


def _compact(plan: Plan, kinds: Any, *, target: str, allowed: frozenset[str] | bool) -> str:
    from reconciler.kinds.render import kinds_summary, labels

    lines = [f"Plan for {target}: {summary_line(plan)}."]
    if kinds is not None:
        lines.append(f"  {kinds_summary(kinds)}.")
    going = [c for c in plan.changes if c.op is Op.DELETE or (c.op is Op.REPLACE and _allowed(c, allowed))]
    if going:
        lines.append(deletions_line(going))
    going_kinds = _kinds_going(kinds, allowed) if kinds is not None else ()
    if going_kinds:
        lines.append(f"  DELETIONS of datasets/endpoints ({len(going_kinds)}): {labels(going_kinds)}")
    for op in _GROUP_ORDER:
        changes = [c for c in plan.changes if c.op is op and _listed(c)]
        if changes:
            held = sum(1 for c in changes if op is Op.REPLACE and not _allowed(c, allowed))
            extra = f" ({held} need --replace)" if held else ""
            lines.append(_group_line(op, [c.name for c in changes], "models", extra))
        kind_changes = [c for c in (kinds.changes if kinds is not None else ()) if c.op is op and _listed(c)]
        if kind_changes:
            what = "datasets/endpoints/policies"
            lines.append(_group_line(op, [c.label for c in kind_changes], what))
    shown = listed_count(plan, kinds)
    lines.append(f"  ({shown:,} changes in short: `plan`, or `apply --verbose`, lists each with its fields)")
    return "\n".join(lines)


def _allowed(change: Change, replace_allowed: frozenset[str] | bool) -> bool:
    if isinstance(replace_allowed, bool):
        return replace_approved(change, every=replace_allowed)
    return replace_approved(change, names=replace_allowed)


def plan_json(
    plan: Plan,
    *,
    target: str,
    tenant: str | None,
    replace_allowed: frozenset[str] | bool = False,
    warnings: Sequence[Problem] = (),
) -> dict[str, Any]:
    return {
        "version": JSON_VERSION,
        "server": target,
        "tenant": tenant,
        "summary": plan.counts(),
        "in_sync": plan.is_empty,
        "deletes": [c.name for c in plan.deletes],
        "changes": [change_dict(c, replace_allowed=_allowed(c, replace_allowed)) for c in plan.changes],
        "warnings": [p.as_dict() for p in warnings],
        "error": None,
    }


def space_plan_json(
    plan: Plan,
    kinds: Any = None,
    *,
    target: str,
    tenant: str | None,
    replace_allowed: frozenset[str] | bool = False,
    warnings: Sequence[Problem] = (),
    owner: str | None = None,
    refused: str | None = None,
) -> dict[str, Any]:
    """The JSON plan of `plan --output json`, saved plans and multi-space runs: the models' plan,
    with datasets, endpoints and policies under "kinds" when there are any."""
    from reconciler.kinds.render import kinds_json  # kinds.render imports us

    data = plan_json(plan, target=target, tenant=tenant, replace_allowed=replace_allowed, warnings=warnings)
    data["owner"] = owner
    data["refused"] = refused
    if kinds is not None and kinds.changes:
        data["kinds"] = kinds_json(kinds)
        data["in_sync"] = data["in_sync"] and not kinds.pending
    return data


MD_DETAILS_OVER = 20
"""A plan with more changed rows than this folds its table into a <details> block in the PR comment."""
MD_VALUE_CHARS = 80


def _clip(text: str) -> str:
    return text if len(text) <= MD_VALUE_CHARS else text[: MD_VALUE_CHARS - 1] + "…"


def _md_changes(change: Change) -> str:
    """Field by field, old → new (a create shows the new values); secrets as (sensitive)."""
    parts = []
    for diff in _diffs(change):
        sensitive = _sensitive(diff)
        new = md_code(_clip(_show(_value(diff.new, sensitive=sensitive))))
        if change.op is Op.CREATE:
            parts.append(f"{md_code(diff.dotted)}: {new}")
        else:
            old = md_code(_clip(_show(_value(diff.old, sensitive=sensitive))))
            parts.append(f"{md_code(diff.dotted)}: {old} → {new}")
    if change.op is Op.DELETE:
        parts.append("no manifest names it any more")
    if change.reason:
        parts.append(md_text(change.reason))
    return "<br>".join(parts)


def plan_markdown(plan: Plan, *, target: str) -> str:
    """The plan for a pull request comment: deletions first, every field with its old and new value,
    a large table folded away, and names escaped so that none can break the table."""
    lines = [f"### Syft Space plan for {md_code(target)}", "", f"**{summary_line(plan)}**", ""]
    if plan.deletes:
        names = ", ".join(md_code(c.name) for c in plan.deletes)
        lines += [f"> **Deletes {len(plan.deletes)} model(s):** {names}", ""]
    if plan.is_empty:
        lines.append("No changes: the server matches the manifests.")
        return "\n".join(lines)
    shown = [c for c in plan.changes if c.op in _DESTRUCTIVE] + [
        c for c in plan.changes if c.op not in _DESTRUCTIVE and c.op is not Op.NOOP
    ]
    table = ["| | model | source | changes |", "| --- | --- | --- | --- |"]
    for change in shown:
        source = md_code(str(change.desired.source)) if change.desired else ""
        table.append(
            f"| {_SYMBOL[change.op]} {_WORD[change.op]} | {md_code(change.name)} | {source} | "
            f"{_md_changes(change)} |"
        )
    if len(shown) > MD_DETAILS_OVER:
        table = [
            f"<details><summary>{len(shown)} changes (deletions first)</summary>",
            "",
            *table,
            "",
            "</details>",
        ]
    return "\n".join(lines + table)


def problems_text(problems: Sequence[Problem]) -> str:
    return "\n".join(str(p) for p in problems)


def error_json(error: ReconcilerError) -> dict[str, Any]:
    body: dict[str, Any] = {"kind": error.kind, "message": error.message}
    if isinstance(error, InvalidManifests):
        body["problems"] = [p.as_dict() for p in error.problems]
    return {"version": JSON_VERSION, "error": body}


_RESULT_WORD = {
    Result.CREATED: "created",
    Result.UPDATED: "updated",
    Result.REPLACED: "replaced",
    Result.DELETED: "deleted",
    Result.PRESENT: "present",
    Result.SKIPPED: "skipped",
    Result.CONFLICT: "conflict",
    Result.FAILED: "failed",
}


def outcome_listed(
    outcome: Outcome, *, quiet: bool = False, verbose: bool = False, changes: bool = True
) -> bool:
    """Whether an apply prints this model's line: failures and conflicts always; with --quiet
    nothing else; with --verbose everything; else changes when the plan was shown in full
    (`changes`) and a skip that explains exit 1, never a model Ctrl-C left unattempted."""
    if outcome.result in (Result.FAILED, Result.CONFLICT):
        return True
    if quiet:
        return False
    if verbose:
        return True
    if outcome.stopped:  # Ctrl-C: counted in the summary, not listed one by one
        return False
    return changes or outcome.result is Result.SKIPPED


def outcome_line(outcome: Any) -> str:
    retried = f" (after {outcome.attempts} attempts)" if outcome.attempts > 1 else ""
    message = f": {outcome.message}" if outcome.message else ""
    return neutralise(f"{_RESULT_WORD[outcome.result]:<9}{outcome.name}{retried}{message}")


def report_summary(report: ApplyReport, *, conflicts: int = 0) -> str:
    """The last line of an apply; it says "complete" only when the exit code is 0."""
    c = report.counts()
    stopped = sum(1 for o in report.outcomes if o.stopped)
    c[Result.SKIPPED.value] -= stopped
    parts = [f"{c[r.value]} {r.value}" for r in Result if c[r.value]]
    if stopped:  # Ctrl-C: a count, not a line per model
        parts.append(f"{stopped} not attempted")
    parts.append(f"{report.in_sync} in sync")
    if conflicts:
        parts.append(f"{conflicts} in conflict, not touched")
    head = (
        "Apply interrupted"
        if report.interrupted
        else "Apply finished with failures"
        if not report.ok
        else "Apply finished with conflicts"
        if conflicts
        else "Apply complete"
    )
    return f"{head}: {', '.join(parts)}."


def report_json(report: ApplyReport, *, target: str, tenant: str | None) -> dict[str, Any]:
    return {
        "version": JSON_VERSION,
        "server": target,
        "tenant": tenant,
        "summary": {**report.counts(), "in_sync": report.in_sync},
        "ok": report.ok,
        "interrupted": report.interrupted,
        "results": [
            {
                "name": o.name,
                "op": o.op.value,
                "result": o.result.value,
                "attempts": o.attempts,
                **({"message": o.message} if o.message else {}),
                **({"error_kind": o.error_kind} if o.error_kind else {}),
            }
            for o in report.outcomes
        ],
        "error": None,
    }
