"""The plan is the contract: it always renders, marks what apply would skip or refuse, and says the
same facts in text, markdown and JSON. Through the real CLI against the sandbox."""

import json

import pytest

from reconciler import render
from reconciler.kinds.values import EndpointManifest, PolicySpec
from reconciler.model import Change, FieldDiff, Manifest, Op, Plan, SourceLocation
from reconciler.ownership import Claim, Ownership

from .conftest import model_yaml
from .test_kinds import DATASET, KEY, WEAVIATE, endpoint_yaml


@pytest.fixture(autouse=True)
def _keys(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("WEAVIATE_KEY", WEAVIATE)


FILES = {
    "m.yaml": model_yaml("gpt-4o"),
    "other.yaml": model_yaml("other"),
    "d.yaml": DATASET,
    "e.yaml": endpoint_yaml(),
}
REMOVED = {
    "model": ("other.yaml", "model other"),
    "dataset": None,
    "endpoint": ("e.yaml", "endpoint support-bot"),
}


@pytest.mark.parametrize("kind", ["model", "endpoint"])
def test_a_removed_manifest_is_a_pending_deletion_that_needs_prune_in_every_format(
    cli, manifest_dir, sandbox, api, kind
):
    root = manifest_dir(FILES)
    args = ("--server", sandbox.url, "--owner", "team")
    assert cli("apply", root, *args).code == 0
    file, label = REMOVED[kind]
    (root / file).unlink()
    run = cli("plan", root, *args, "--detailed-exitcode")
    assert run.code == 2, run.all  # the space differs from git
    assert f"  - delete {label}  [needs --prune]" in run.out and "No changes" not in run.out
    assert "to destroy with --prune" in run.out.splitlines()[0]
    data = json.loads(cli("plan", root, *args, "-o", "json").out)
    assert not data["in_sync"] and data["summary"]["held"] >= 1
    assert any(
        c.get("needs") == "--prune" and f"{c['kind'].lower()} {c['name']}" == label for c in data["changes"]
    )
    markdown = cli("plan", root, *args, "-o", "markdown").out
    assert "**needs --prune**" in markdown and "No changes" not in markdown
    # apply without --prune deletes nothing; with it, the object goes
    assert cli("apply", root, *args).code == 0
    assert cli("apply", root, *args, "--prune", "--auto-approve", "--max-delete", "unlimited").code == 0
    assert cli("plan", root, *args, "--detailed-exitcode").code == 0


def test_a_blocked_replace_is_shown_marked_and_plan_fails_where_apply_would(cli, manifest_dir, sandbox, api):
    """The model's configuration changed and the endpoint that uses it was removed from git: the
    plan renders in full, marks the replace as blocked (naming --prune), and exits 11 as apply does."""
    root = manifest_dir(FILES)
    args = ("--server", sandbox.url, "--owner", "team")
    assert cli("apply", root, *args).code == 0
    (root / "m.yaml").write_text(model_yaml("gpt-4o", model="gpt-4o-mini"))
    (root / "e.yaml").unlink()
    for output in ("text", "json", "markdown"):
        run = cli("plan", root, *args, "--replace", "gpt-4o", "-o", output)
        assert run.code == 11, run.all
        assert "blocked" in run.out and "--prune" in run.out, run.out
    run = cli("apply", root, *args, "--replace", "gpt-4o", "--auto-approve")
    assert run.code == 11 and "only --prune deletes it" in run.err
    run = cli(
        "apply", root, *args, "--replace", "gpt-4o", "--prune", "--auto-approve", "--max-delete", "unlimited"
    )
    assert run.code == 0, run.all


def test_the_markdown_marks_a_held_replace_and_the_deletion_limit_as_text_and_json_do(
    cli, manifest_dir, sandbox
):
    root = manifest_dir(FILES)
    args = ("--server", sandbox.url, "--owner", "team")
    assert cli("apply", root, *args).code == 0
    (root / "m.yaml").write_text(model_yaml("gpt-4o", model="gpt-4o-mini"))
    markdown = cli("plan", root, *args, "-o", "markdown").out
    assert "**needs --replace gpt-4o**" in markdown
    run = cli("plan", root, *args, "--replace", "gpt-4o", "--max-delete", "0", "-o", "markdown")
    assert run.code == 11 and "> **Apply would refuse this plan:** refusing to delete" in run.out
    assert "> **Deletes 1 model, 1 endpoint, 2 policies:**" in run.out and "(replace)" in run.out
    data = json.loads(cli("plan", root, *args, "--replace", "gpt-4o", "--max-delete", "0", "-o", "json").out)
    assert data["refused"].startswith("refusing to delete 1 model, 1 endpoint, 2 policies")


def _every_line() -> Plan:
    source = SourceLocation("m/x.yaml", 1, 1)
    model = Manifest("a", "openai", {"model": "m"}, source=source)
    theirs = Ownership(Claim.OTHER, ("other",))
    ep = EndpointManifest("bot", "Bot", model="a", source=source)
    return Plan(
        (
            Change(Op.CREATE, "a", desired=model),
            Change(Op.UPDATE, "b", desired=model, diffs=(FieldDiff(("summary",), "x", "y"),)),
            Change(Op.REPLACE, "c", desired=model, diffs=(FieldDiff(("dtype",), "x", "y"),)),
            Change(
                Op.REPLACE,
                "d",
                desired=model,
                diffs=(FieldDiff(("dtype",), "x", "y"),),
                blocked="endpoint `e` uses it",
            ),
            Change(Op.DELETE, "gone", held="--prune", kind="Dataset"),
            Change(Op.DELETE, "pruned", kind="Dataset"),
            Change(Op.CONFLICT, "mine", desired=model, ownership=theirs, reason="owned by `other`"),
            Change(Op.UNMANAGED, "stray", ownership=theirs),
            Change(
                Op.REPLACE,
                "bot",
                desired=ep,
                cascade="model `c` is replaced",
                cascade_approved=True,
                kind="Endpoint",
            ),
            Change(Op.CREATE, "bot/p", desired=PolicySpec("p", "access", {}), kind="Policy", endpoint="bot"),
        )
    )


def test_one_plan_says_the_same_in_text_markdown_and_json_item_by_item():
    plan = _every_line()
    allowed = frozenset({"d"})
    text = render.plan_text(plan, target="T", replace_allowed=allowed).splitlines()
    markdown = render.plan_markdown(plan, target="T", replace_allowed=allowed).splitlines()
    data = render.plan_json(plan, target="T", tenant=None, replace_allowed=allowed)
    assert [(c["kind"], c["name"]) for c in data["changes"]] == [(c.kind, c.name) for c in plan.changes]
    for change, entry in zip(plan.changes, data["changes"], strict=True):
        line = next(
            t
            for t in text
            if t.startswith(f"  {render.SYMBOL[change.op]} {render.WORD[change.op]} {change.label}")
        )
        rows = [
            r
            for r in markdown
            if r.startswith(f"| {render.SYMBOL[change.op]} ") and f"| {change.kind} | `{change.name}` |" in r
        ]
        if change.op is not Op.NOOP:
            assert len(rows) == 1, (change, markdown)
        needs = render.needs(change, allowed)
        assert entry.get("needs", "") == needs
        if needs:
            assert needs in line and needs in rows[0]
        if change.blocked:
            assert entry["blocked"] == change.blocked and "[blocked: " in line and "**blocked:**" in rows[0]
        if change.cascade:
            assert entry["cascade"] == change.cascade and change.cascade in line and change.cascade in rows[0]
    summary = render.summary_line(plan)
    assert text[0] == f"Plan for T: {summary}." and f"**{summary}.**" in markdown
    assert data["summary"] == plan.counts()


def test_a_saved_plan_made_in_one_folder_applies_from_another(
    cli, manifest_dir, sandbox, tmp_path, monkeypatch
):
    """File names are shown relative to the working directory; what a saved plan binds is what the
    manifests say, not where the run stood."""
    root = manifest_dir(FILES)
    saved = tmp_path / "plan.json"
    monkeypatch.chdir(root.parent)
    assert cli("plan", root, "--server", sandbox.url, "--owner", "team", "--out", saved).code == 0
    assert '"source": "manifests/' in saved.read_text()
    monkeypatch.chdir(root)
    run = cli("apply", saved, "--server", sandbox.url)
    assert run.code == 0, run.all
