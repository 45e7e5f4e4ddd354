import json
import re

import pytest

from reconciler import render
from reconciler.model import OWNER_TAG, Manifest, RemoteModel, SourceLocation
from reconciler.plan import plan
from reconciler.schemas import DtypeFacts

CANARY = "sk-canary-0123456789"


def sample_plan():
    desired = [
        Manifest(
            "new",
            "openai",
            {"api_key": CANARY, "model": "gpt-4o"},
            "s",
            ("a",),
            SourceLocation("m/new.yaml", 1, 1),
            frozenset({"api_key"}),
        ),
        Manifest(
            "changed",
            "openai",
            {"api_key": CANARY, "model": "gpt-4o"},
            "new summary",
            (),
            SourceLocation("m/c.yaml", 3, 1),
            frozenset({"api_key"}),
        ),
    ]
    observed = {
        "changed": RemoteModel(
            name="changed",
            dtype="openai",
            configuration={"api_key": "sk-old-secret", "model": "gpt-4"},
            summary="old",
            tags=OWNER_TAG,
        )
    }
    return plan(desired, observed, facts=DtypeFacts({"openai": frozenset({"api_key"})}))


def test_text_plan_redacts_and_shows_diffs():
    text = render.plan_text(sample_plan(), target="http://x")
    assert CANARY not in text and "sk-old-secret" not in text
    assert text.splitlines() == [
        "Plan for http://x: 1 to add, 0 to change, 1 to replace, 0 to destroy.",
        "  1 model to add; 1 model to replace.",
        "  -/+ replace model changed  (m/c.yaml:3:1)  [needs --replace changed]",
        "      configuration.api_key: (sensitive) -> (sensitive)",
        '      configuration.model: "gpt-4" -> "gpt-4o"',
        '      summary: "old" -> "new summary"',
        "  + create model new  (m/new.yaml:1:1)",
        '      dtype: "openai"',
        "      configuration.api_key: (sensitive)",
        '      configuration.model: "gpt-4o"',
        '      summary: "s"',
        '      tags: ["a"]',
    ]


def test_json_plan_is_versioned_and_redacted():
    data = render.plan_json(sample_plan(), target="http://x", tenant=None)
    dumped = json.dumps(data)
    assert data["version"] == 3 and data["error"] is None
    assert CANARY not in dumped and "sk-old-secret" not in dumped
    assert data["summary"]["create"] == 1 and data["changes"][0]["op"] == "replace"
    assert data["changes"][0]["kind"] == "Model" and data["summary_by_kind"]["Model"]["replace"] == 1
    assert data["changes"][0]["replace_allowed"] is False


def test_markdown_plan_shows_old_and_new_values_but_never_a_secret():
    md = render.plan_markdown(sample_plan(), target="http://x")
    assert "| -/+ replace | Model | `changed` |" in md and CANARY not in md and "sk-old-secret" not in md
    assert "(sensitive)" in md
    rows = [line for line in md.splitlines() if line.startswith("| ")]
    assert all(" → " in row for row in rows if "~ update" in row or "-/+ replace" in row)


def test_markdown_puts_deletions_first_escapes_values_and_folds_a_large_plan():
    from reconciler.model import Change, FieldDiff, Op, Plan

    pipe = "a|b`c"
    changes = [
        Change(Op.UPDATE, f"m{i:02}", diffs=(FieldDiff(("summary",), pipe, "new"),)) for i in range(25)
    ]
    changes.append(Change(Op.DELETE, "zz-gone"))
    md = render.plan_markdown(Plan(tuple(sorted(changes, key=lambda c: c.name))), target="http://x")
    rows = [line for line in md.splitlines() if line.startswith("| ")]
    assert rows[2].startswith("| - delete | Model | `zz-gone` |")  # after the header rows, before any update
    assert "<details><summary>26 changes (deletions first)</summary>" in md and md.rstrip().endswith(
        "</details>"
    )
    for row in rows:  # a value with a pipe or a backtick cannot add a cell
        assert len(re.findall(r"(?<!\\)\|", row)) == 6, row
    assert '`summary`: ``"a\\|b`c"`` → `"new"`' in md


def test_a_value_below_a_secret_name_is_hidden_whatever_its_own_key_and_kind():
    """A diff deeper than the top level (`configuration.auth.token.value`, a policy's
    `configuration.headers.X-Custom`) is hidden when any key on its path looks secret."""
    from reconciler.kinds.values import PolicySpec
    from reconciler.model import Change, FieldDiff, Op, Plan

    spec = PolicySpec("pay", "stripe_per_request", {})
    changes = [
        Change(
            Op.UPDATE,
            "bot/pay",
            desired=spec,
            diffs=(
                FieldDiff(("configuration", "headers", "X-Custom"), "srv-h-1", "new-h-1"),
                FieldDiff(("configuration", "auth_token", "value"), "srv-t-1", "new-t-1"),
                FieldDiff(("configuration", "price"), 1, 2),
            ),
            kind="Policy",
            endpoint="bot",
        )
    ]
    plan_ = Plan(tuple(changes))
    outputs = [
        render.plan_text(plan_, target="t"),
        json.dumps(render.plan_json(plan_, target="t", tenant=None)),
        render.plan_markdown(plan_, target="t"),
    ]
    for out in outputs:
        assert not re.search(r"(srv|new)-[ht]-1", out), out
        assert "(sensitive)" in out and "2" in out


def test_a_saved_plan_carries_the_plan_json_of_its_version():
    from reconciler import render, saved_plan

    assert saved_plan.VERSION == render.JSON_VERSION


@pytest.mark.parametrize("at", range(60, 90))
def test_a_clipped_markdown_value_never_cuts_the_sensitive_mark(at):
    from reconciler.redact import scrub
    from reconciler.render import MD_VALUE_CHARS, SENSITIVE, _clip

    text = "x" * at + f'"api_key": "{SENSITIVE}", ' + "y" * 40
    clipped = _clip(text)
    assert len(clipped) <= MD_VALUE_CHARS + len(SENSITIVE) + 5
    body = clipped.removesuffix("…")
    assert not any(body.endswith(SENSITIVE[:k]) for k in range(1, len(SENSITIVE)))
    assert not body.endswith('"api_key": "') and scrub(clipped) == clipped
