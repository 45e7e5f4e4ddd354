"""Plans, problems and apply reports as text, JSON or markdown (pure: returns strings).

Secrets are redacted here: a value is printed only when its field is neither marked writeOnly by
the dtype schema, nor filled from a ${…}/file reference, nor named like a secret (`password`,
`api-key`, `headers.Authorization`… at any depth: what a server sends is judged by its keys).
The scrubber (redact.py) then catches any registered value wherever it still shows. Server-sent
text is escaped for each format: terminal escapes and bidi characters in text, pipes and
backticks in markdown tables. The JSON shapes are a contract: top-level `"version"` (JSON_VERSION).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from reconciler.errors import InvalidManifests, ReconcilerError
from reconciler.model import (
    KIND,
    KINDS,
    ApplyReport,
    Change,
    FieldDiff,
    Manifest,
    Op,
    Outcome,
    Plan,
    Problem,
    Result,
    plural,
)
from reconciler.plan import counted, counts_as_deletion
from reconciler.redact import looks_secret_key, neutralise, redact_keys

SENSITIVE = "(sensitive)"
JSON_VERSION = 3
"""The JSON shapes' version: 2 since one plan holds every kind (`changes[]` each with its `kind`)."""

SYMBOL = {
    Op.CREATE: "+",
    Op.UPDATE: "~",
    Op.REPLACE: "-/+",
    Op.CONFLICT: "!",
    Op.UNMANAGED: "?",
    Op.NOOP: "=",
    Op.DELETE: "-",
}
WORD = {
    Op.CREATE: "create",
    Op.UPDATE: "update",
    Op.REPLACE: "replace",
    Op.CONFLICT: "conflict",
    Op.UNMANAGED: "unmanaged",
    Op.NOOP: "in sync",
    Op.DELETE: "delete",
}


def _sensitive(change: Change, diff: FieldDiff) -> bool:
    """A value never shown: marked so (writeOnly, from a reference), or under a key named like a
    secret anywhere on its path (`configuration.headers.X-Custom`), for every kind."""
    if diff.sensitive:
        return True
    if diff.path[:1] != ("configuration",) or len(diff.path) < 2:
        return False
    held: frozenset[str] = getattr(change.desired, "sensitive", frozenset())
    return diff.path[1] in held or any(looks_secret_key(key) for key in diff.path[1:])


def _value(value: Any, *, sensitive: bool) -> Any:
    return (SENSITIVE if value is not None else None) if sensitive else redact_keys(value)


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
    """A model's or dataset's create shown as a diff from nothing, field by field."""
    diffs = [FieldDiff(("dtype",), None, manifest.dtype)]
    for key, value in manifest.configuration.items():
        diffs.append(FieldDiff(("configuration", key), None, value, sensitive=key in manifest.sensitive))
    if manifest.summary:
        diffs.append(FieldDiff(("summary",), None, manifest.summary))
    if manifest.tags:
        diffs.append(FieldDiff(("tags",), None, list(manifest.tags)))
    for item_id, description in manifest.selected_items or ():
        diffs.append(FieldDiff(("selected_items", item_id), None, description, pick="add"))
    return tuple(diffs)


PICK_SIGN = {"add": "+", "remove": "-", "describe": "~"}


def pick_text(diff: FieldDiff) -> str:
    """One pick of a dataset's selection: `+ selected_items "id": "description"`, `- … "id"`, or
    `~ … "id": "old" -> "new"` (a new description: remove + add on the server)."""
    head = f"{PICK_SIGN[diff.pick]} selected_items {_show(diff.path[1])}"
    if diff.pick == "remove":
        return head
    if diff.pick == "add":
        return f"{head}: {_show(diff.new)}"
    return f"{head}: {_show(diff.old)} -> {_show(diff.new)}"


def _endpoint_fields(desired: Any) -> list[tuple[tuple[str, ...], Any]]:
    values = {name: getattr(desired, name) for name in KIND["Endpoint"].shown}
    values["published"] = values["published"] or None  # the default is not worth a line
    values["tags"] = list(values["tags"])
    return [((name,), value) for name, value in values.items()]


def shown_fields(change: Change) -> tuple[FieldDiff, ...]:
    """What a change shows field by field: its diffs, or for a create every field it sets, so that
    a review sees what a new model, dataset, endpoint or policy is."""
    desired = change.desired
    if change.op is not Op.CREATE or desired is None:
        return change.diffs
    if isinstance(desired, Manifest):  # a model or a dataset
        return create_diffs(desired)
    if change.kind == "Endpoint":
        values = _endpoint_fields(desired)
    else:  # a policy
        values = [(("policy_type",), desired.policy_type)]
        values += [(("configuration", key), value) for key, value in desired.configuration.items()]
    return tuple(FieldDiff(path, None, value) for path, value in values if value not in (None, "", []))


def _source(change: Change) -> str | None:
    source = getattr(change.desired, "source", None)
    return str(source) if source is not None else None


def _diff_dicts(change: Change) -> list[dict[str, Any]]:
    out = []
    for d in shown_fields(change):
        if d.pick:
            out.append(
                {"field": "selected_items", "item_id": d.path[1], "pick": d.pick, "old": d.old, "new": d.new}
            )
            continue
        hidden = _sensitive(change, d)
        row = {
            "field": d.dotted,
            "old": _value(d.old, sensitive=hidden),
            "new": _value(d.new, sensitive=hidden),
        }
        out.append({**row, "sensitive": True} if hidden else row)
    return out


def change_dict(change: Change, *, replace_allowed: bool | None = None) -> dict[str, Any]:
    """One change of any kind, as JSON (plans, saved plans, conflicts)."""
    out: dict[str, Any] = {"kind": change.kind, "op": change.op.value, "name": change.name}
    if (source := _source(change)) is not None:
        out["source"] = source
    out["diffs"] = _diff_dicts(change)
    optional = {
        "not_comparable": [f"configuration.{k}" for k in change.not_comparable],
        "adopt": change.adopt,
        "cascade": change.cascade,
        "endpoint": change.endpoint,
        "reason": change.reason,
        "needs": needs(change, replace_allowed if replace_allowed is not None else False),
        "blocked": change.blocked,
    }
    out.update({k: v for k, v in optional.items() if v})
    if change.ownership is not None and change.op in (Op.UNMANAGED, Op.CONFLICT, Op.DELETE):
        out["owned"] = change.ownership.mine
        out["ownership"] = {"claim": change.ownership.claim.value, "owners": list(change.ownership.owners)}
    if replace_allowed is not None and change.op is Op.REPLACE:
        out["replace_allowed"] = replace_allowed
    return out


_TERRAFORM = (
    ("create", "to add"),
    ("update", "to change"),
    ("replace", "to replace"),
    ("delete", "to destroy"),
)


def summary_line(plan: Plan) -> str:
    """`3 to add, 1 to change, 0 to replace, 1 to destroy` over every kind (Terraform's words), then
    conflicts and unmanaged objects when there are any."""
    c = plan.counts()
    parts = [f"{c[op]:,} {words}" for op, words in _TERRAFORM]
    if c["held"]:
        parts.append(f"{c['held']:,} to destroy with --prune")
    if c["conflict"]:
        parts.append(f"{c['conflict']:,} in conflict")
    if c["unmanaged"]:
        parts.append(f"{c['unmanaged']:,} unmanaged")
    return ", ".join(parts)


_BREAKDOWN = (
    *_TERRAFORM,
    ("held", "to destroy with --prune"),
    ("conflict", "in conflict"),
    ("unmanaged", "unmanaged"),
    ("noop", "in sync"),
)


def kinds_line(plan: Plan) -> str:
    """Per kind of change, how many of each kind: `1 model, 2 policies to add; 3 models in sync.`"""
    by_kind = plan.counts_by_kind()
    parts = []
    for op, words in _BREAKDOWN:
        counted = [plural(kind, counts[op]) for kind, counts in by_kind.items() if counts[op]]
        if counted:
            parts.append(f"{', '.join(counted)} {words}")
    return "; ".join(parts) + "." if parts else ""


def _header(plan: Plan, target: str) -> list[str]:
    lines = [f"Plan for {target}: {summary_line(plan)}."]
    if line := kinds_line(plan):
        lines.append(f"  {line}")
    return lines


def deletion_kinds(going: Sequence[Change]) -> str:
    """`2 models, 1 endpoint (1 pruned, 2 replaced)`."""
    deletes = sum(1 for c in going if c.op is Op.DELETE)
    parts = [f"{deletes} pruned"] if deletes else []
    if len(going) > deletes:
        parts.append(f"{len(going) - deletes} replaced")
    return f"{counted(going)} ({', '.join(parts)})"


def labels(changes: Sequence[Change]) -> str:
    """`model a (replace), endpoint bot` for a DELETIONS line."""
    return ", ".join(
        neutralise(c.label, line=True) + (" (replace)" if c.op is Op.REPLACE else "") for c in changes
    )


def deletions_line(going: Sequence[Change]) -> str:
    """What a run deletes (prunes, and replaces that will run), shown before anything else."""
    return f"  DELETIONS ({len(going)}): {labels(going)}"


_DESTRUCTIVE = (Op.DELETE, Op.REPLACE)


def needs(change: Change, replace_allowed: frozenset[str] | bool) -> str:
    """What apply needs before it makes this change, or "" (it will): `--prune`, `--replace x`, or
    nothing at all when the manifest says `lifecycle.replace: never`."""
    if change.held:
        return change.held
    if change.op is Op.REPLACE and not _allowed(change, replace_allowed):
        return "lifecycle.replace: never" if change.replace_policy == "never" else f"--replace {change.name}"
    return ""


def _markers(change: Change, replace_allowed: frozenset[str] | bool) -> str:
    """What apply will not do as shown, and why: `[needs --replace x]`, `[needs --prune]`,
    `[lifecycle.replace: never]`, `[blocked: …]` (the whole run is refused)."""
    wanted = needs(change, replace_allowed)
    marks = f"  [{wanted}]" if wanted.startswith("lifecycle") else (f"  [needs {wanted}]" if wanted else "")
    if change.blocked:
        marks += f"  [blocked: {neutralise(change.blocked, line=True)}]"
    if change.cascade:
        marks += f"  [cascade: {neutralise(change.cascade)}]"
    if change.adopt:
        marks += "  [adopt]"
    return marks


def _change_lines(change: Change, replace_allowed: frozenset[str] | bool) -> list[str]:
    source = _source(change)
    where = f"  ({neutralise(source)})" if source is not None else ""
    head = f"  {SYMBOL[change.op]} {WORD[change.op]} {neutralise(change.label, line=True)}{where}"
    lines = [head + _markers(change, replace_allowed)]
    for diff in shown_fields(change):
        if diff.pick:
            lines.append(neutralise(f"      {pick_text(diff)}"))
            continue
        hidden = _sensitive(change, diff)
        old, new = _show(_value(diff.old, sensitive=hidden)), _show(_value(diff.new, sensitive=hidden))
        arrow = new if change.op is Op.CREATE else f"{old} -> {new}"
        lines.append(neutralise(f"      {diff.dotted}: {arrow}"))
    if change.not_comparable:
        fields = ", ".join(f"configuration.{k}" for k in change.not_comparable)
        lines.append(f"      {fields}: not comparable (the server does not echo it)")
    if change.op is Op.UNMANAGED and change.kind != "Policy":
        owner = change.ownership.describe() if change.ownership else "was not created by the reconciler"
        lines.append(f"      on the server, not in the manifests (it {owner}); left alone")
    if change.reason:
        lines.append(f"      {neutralise(change.reason)}")
    return lines


def _going(plan: Plan, allowed: frozenset[str] | bool) -> list[Change]:
    names = allowed if isinstance(allowed, frozenset) else frozenset()
    return [c for c in plan.changes if counts_as_deletion(c, names=names, every=allowed is True)]


def plan_text(plan: Plan, *, target: str, replace_allowed: frozenset[str] | bool = False) -> str:
    """Every kind's changes: the summary, the deletions, then what deletes first, then the rest."""
    lines = _header(plan, target)
    if going := _going(plan, replace_allowed):
        lines.append(deletions_line(going))
    ordered = [c for c in plan.changes if c.op in _DESTRUCTIVE] + [
        c for c in plan.changes if c.op not in _DESTRUCTIVE
    ]
    for change in ordered:
        if _listed(change):
            lines += _change_lines(change, replace_allowed)
    if plan.is_empty:
        lines.append("No changes: the server matches the manifests.")
    return "\n".join(lines)


COMPACT_OVER = 20
"""`apply` shows a plan with more changes than this in short: grouped counts and the first names."""
COMPACT_NAMES = 5


def _listed(change: Change) -> bool:
    """Whether the plan text lists this change."""
    return change.op is not Op.NOOP or bool(change.not_comparable or change.reason)


def listed_count(plan: Plan) -> int:
    return sum(1 for c in plan.changes if _listed(c))


def space_plan_text(
    plan: Plan, *, target: str, replace_allowed: frozenset[str] | bool = False, compact: bool = False
) -> str:
    """The plan text of `plan` and `apply`. `compact` (apply, over COMPACT_OVER changes, no
    --verbose): every deletion still named, then per kind of change its count and first names."""
    if compact:
        return _compact(plan, target=target, allowed=replace_allowed)
    return plan_text(plan, target=target, replace_allowed=replace_allowed)


_GROUP_ORDER = (Op.REPLACE, Op.DELETE, Op.CREATE, Op.UPDATE, Op.CONFLICT, Op.UNMANAGED, Op.NOOP)


def _group_line(op: Op, changes: Sequence[Change], kind: str, allowed: frozenset[str] | bool) -> str:
    names = [c.name for c in changes]
    shown = ", ".join(neutralise(n, line=True) for n in names[:COMPACT_NAMES])
    more = f", … and {len(names) - COMPACT_NAMES:,} more" if len(names) > COMPACT_NAMES else ""
    held = sum(1 for c in changes if op is Op.REPLACE and not _allowed(c, allowed))
    extra = f" ({held} need --replace)" if held else ""
    return f"  {SYMBOL[op]} {WORD[op]} {plural(kind, len(names))}{extra}: {shown}{more}"


def _compact(plan: Plan, *, target: str, allowed: frozenset[str] | bool) -> str:
    lines = _header(plan, target)
    if going := _going(plan, allowed):
        lines.append(deletions_line(going))
    for op in _GROUP_ORDER:
        for kind in KINDS:
            changes = [c for c in plan.changes if c.op is op and c.kind == kind and _listed(c)]
            if changes:
                lines.append(_group_line(op, changes, kind, allowed))
    shown = listed_count(plan)
    lines.append(f"  ({shown:,} changes in short: `plan`, or `apply --verbose`, lists each with its fields)")
    return "\n".join(lines)


def _allowed(change: Change, replace_allowed: frozenset[str] | bool) -> bool:
    if isinstance(replace_allowed, bool):
        return change.approved(every=replace_allowed)
    return change.approved(names=replace_allowed)


def plan_json(
    plan: Plan,
    *,
    target: str,
    tenant: str | None,
    replace_allowed: frozenset[str] | bool = False,
    warnings: Sequence[Problem] = (),
    owner: str | None = None,
    refused: str | None = None,
) -> dict[str, Any]:
    """The JSON plan of `plan --output json`, saved plans and multi-space runs: every kind."""
    return {
        "version": JSON_VERSION,
        "server": target,
        "tenant": tenant,
        "owner": owner,
        "summary": plan.counts(),
        "summary_by_kind": plan.counts_by_kind(),
        "in_sync": plan.is_empty,
        "deletes": [{"kind": c.kind, "name": c.name} for c in plan.deletes],
        "changes": [change_dict(c, replace_allowed=_allowed(c, replace_allowed)) for c in plan.changes],
        "refused": refused,
        "warnings": [p.as_dict() for p in warnings],
        "error": None,
    }


MD_DETAILS_OVER = 20
"""A plan with more changed rows than this folds its table into a <details> block in the PR comment."""
MD_VALUE_CHARS = 80


def _clip(text: str) -> str:
    """About MD_VALUE_CHARS, never cutting a `(sensitive)` mark: it is kept whole with its closing
    quote (half a mark, or none, after a secret-looking key reads as a value to the scrubber)."""
    if len(text) <= MD_VALUE_CHARS:
        return text
    end = MD_VALUE_CHARS - 1
    mark = text.find(SENSITIVE, max(0, end - len(SENSITIVE)))
    if mark != -1 and mark <= end + 3:  # cut in it, or between a key's `: "` and it
        end = mark + len(SENSITIVE) + 1
    return text[:end] + "…"


def _md_changes(change: Change, allowed: frozenset[str] | bool) -> str:
    """What apply needs or refuses first, then field by field, old → new (a create shows the new
    values); secrets as (sensitive)."""
    parts = []
    wanted = needs(change, allowed)
    if wanted:
        parts.append(f"**{md_text(wanted if wanted.startswith('lifecycle') else 'needs ' + wanted)}**")
    if change.blocked:
        parts.append(f"**blocked:** {md_text(change.blocked)}")
    for diff in shown_fields(change):
        if diff.pick:
            parts.append(md_code(_clip(pick_text(diff))))
            continue
        sensitive = _sensitive(change, diff)
        new = md_code(_clip(_show(_value(diff.new, sensitive=sensitive))))
        if change.op is Op.CREATE:
            parts.append(f"{md_code(diff.dotted)}: {new}")
        else:
            old = md_code(_clip(_show(_value(diff.old, sensitive=sensitive))))
            parts.append(f"{md_code(diff.dotted)}: {old} → {new}")
    if change.cascade:
        parts.append(f"cascade: {md_text(change.cascade)}")
    if change.op is Op.DELETE:
        parts.append("no manifest names it any more")
    if change.reason:
        parts.append(md_text(change.reason))
    return "<br>".join(parts)


def plan_markdown(
    plan: Plan, *, target: str, replace_allowed: frozenset[str] | bool = False, refused: str | None = None
) -> str:
    """The plan for a pull request comment: what apply would refuse, the deletions (replaces and
    cascades included), every field with its old and new value, a large table folded away, and
    names escaped so that none can break the table."""
    lines = [f"### Syft Space plan for {md_code(target)}", "", f"**{summary_line(plan)}.**", ""]
    if line := kinds_line(plan):
        lines += [line, ""]
    if refused:
        lines += [f"> **Apply would refuse this plan:** {md_text(refused)}", ""]
    if going := _going(plan, replace_allowed):
        names = ", ".join(
            f"{c.kind.lower()} {md_code(c.name)}" + (" (replace)" if c.op is Op.REPLACE else "")
            for c in going
        )
        lines += [f"> **Deletes {counted(going)}:** {names}", ""]
    if plan.is_empty:
        lines.append("No changes: the server matches the manifests.")
        return "\n".join(lines)
    return "\n".join(lines + _md_table(plan, replace_allowed))


def _md_table(plan: Plan, allowed: frozenset[str] | bool) -> list[str]:
    shown = [c for c in plan.changes if c.op in _DESTRUCTIVE] + [
        c for c in plan.changes if c.op not in _DESTRUCTIVE and c.op is not Op.NOOP
    ]
    table = ["| | kind | name | changes | source |", "| --- | --- | --- | --- | --- |"]
    for change in shown:
        source = _source(change)
        table.append(
            f"| {SYMBOL[change.op]} {WORD[change.op]} | {change.kind} | {md_code(change.name)} | "
            f"{_md_changes(change, allowed)} | {md_code(source) if source else ''} |"
        )
    if len(shown) <= MD_DETAILS_OVER:
        return table
    return [
        f"<details><summary>{len(shown)} changes (deletions first)</summary>",
        "",
        *table,
        "",
        "</details>",
    ]


def conflict_lines(conflicts: Sequence[Change]) -> list[str]:
    """After an apply, a line for each object it left alone because it is not ours (every kind)."""
    return [neutralise(f"conflict {c.label}: {c.reason}") for c in conflicts]


def fold_warnings(problems: Sequence[Any], *, verbose: bool = False) -> list[str]:
    """The lines for these warnings, as Terraform prints them: the first of each kind in full, then
    one line for the others of its kind. A kind is a problem's message (the file, line and field
    may differ), or a note's whole text. `verbose`: every one in full, in order."""
    if verbose:
        return [str(p) for p in problems]
    kinds: dict[Any, list[Any]] = {}
    for problem in problems:
        kind = (problem.severity, problem.message) if hasattr(problem, "message") else str(problem)
        kinds.setdefault(kind, []).append(problem)
    lines = []
    for same in kinds.values():
        lines.append(str(same[0]))
        if len(same) > 1:
            lines.append(f"warning: … and {len(same) - 1:,} more like it (--verbose shows each)")
    return lines


def problems_text(problems: Sequence[Problem]) -> str:
    return "\n".join(str(p) for p in problems)


def error_json(error: ReconcilerError) -> dict[str, Any]:
    body: dict[str, Any] = {"kind": error.kind, "message": error.message}
    if isinstance(error, InvalidManifests):
        body["problems"] = [p.as_dict() for p in error.problems]
    return {"version": JSON_VERSION, "error": body}


RESULT_WORD = {
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


def outcome_line(outcome: Outcome) -> str:
    retried = f" (after {outcome.attempts} attempts)" if outcome.attempts > 1 else ""
    message = f": {outcome.message}" if outcome.message else ""
    return neutralise(f"{RESULT_WORD[outcome.result]:<9}{outcome.label}{retried}{message}")


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


def apply_json(
    report: ApplyReport, conflicts: Sequence[Change], *, target: str, tenant: str | None, owner: str | None
) -> dict[str, Any]:
    """`apply --output json`: the report, every kind's conflicts, and the owner."""
    return {
        **report_json(report, target=target, tenant=tenant),
        "conflicts": [change_dict(c) for c in conflicts],
        "owner": owner,
    }


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
                "kind": o.kind,
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
