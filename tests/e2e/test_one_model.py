"""One resource model: the same rule, wording and count for every kind (model, dataset, endpoint),
through the real CLI against the sandbox. Each case is parametrised over kind, so a rule that holds
for models and not for another kind fails here."""

import json
import re

import pytest

from reconciler.ownership import owner_tag

from .conftest import model_yaml
from .test_kinds import DATASET, KEY, endpoint_yaml

WEAVIATE_CONFIG = {
    "http_url": "http://w:8080",
    "grpc_url": "http://w:50051",
    "api_key": "wv-canary-kinds-91c4d",
    "collection_name": "Handbook",
}

KINDS = ("model", "dataset", "endpoint")


@pytest.fixture(autouse=True)
def _keys(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("WEAVIATE_KEY", WEAVIATE_CONFIG["api_key"])


def _manifests(manifest_dir, kind):
    """The manifests of one object of `kind` (with what it needs, seeded on the server)."""
    if kind == "model":
        return manifest_dir({"m.yaml": model_yaml("gpt-4o")})
    if kind == "dataset":
        return manifest_dir({"d.yaml": DATASET})
    return manifest_dir({"e.yaml": endpoint_yaml(policies=False).replace("dataset: handbook\n", "")})


def _seed(api, kind, *, tags, differs=False):
    """The object a manifest of `kind` names, created by someone else with `tags`."""
    if kind == "model":
        body = {
            "name": "gpt-4o",
            "dtype": "openai",
            "configuration": {"api_key": KEY, "model": "gpt-4o"},
            "summary": "other" if differs else "",
            "tags": tags,
        }
        assert api.post("/models/", json=body).status_code == 201
        return
    if kind == "dataset":
        body = {
            "name": "handbook",
            "dtype": "remote_weaviate",
            "configuration": WEAVIATE_CONFIG,
            "summary": "other" if differs else "the handbook",
            "tags": tags,
        }
        assert api.post("/datasets/", json=body).status_code == 201
        return
    model = {
        "name": "gpt-4o",
        "dtype": "openai",
        "configuration": {"api_key": KEY, "model": "gpt-4o"},
        "tags": "",
    }
    model_id = api.post("/models/", json=model).json()["id"]
    body = {
        "slug": "support-bot",
        "name": "Support bot",
        "summary": "other" if differs else "helps",
        "description": "",
        "response_type": "both",
        "published": False,
        "tags": ",".join(t for t in ("support", tags) if t),
        "model_id": model_id,
        "dataset_id": None,
    }
    assert api.post("/endpoints/", json=body).status_code in (200, 201)


def _label(kind):
    return {"model": "gpt-4o", "dataset": "handbook", "endpoint": "support-bot"}[kind]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("differs", [False, True], ids=["equal", "different"])
def test_another_owners_object_is_a_conflict_exit_7_naming_adopt_from(
    cli, manifest_dir, sandbox, api, kind, differs
):
    """Another owner's object is a conflict even when equal, its hint is --adopt-from OWNER (the
    option that takes it over), and apply exits 7 for every kind."""
    root = _manifests(manifest_dir, kind)
    _seed(api, kind, tags=owner_tag("other"), differs=differs)
    run = cli("plan", root, "--server", sandbox.url, "--owner", "team", "--detailed-exitcode")
    assert run.code == 2, run.all
    assert f"! conflict {kind} {_label(kind)}" in run.out, run.out
    assert "--adopt-from other" in run.out and "pass --adopt " not in run.out
    run = cli("apply", root, "--server", sandbox.url, "--owner", "team")
    assert run.code == 7, run.all
    assert "Apply complete" not in run.out and "in conflict" in run.out
    data = json.loads(cli("apply", root, "--server", sandbox.url, "--owner", "team", "-o", "json").out)
    assert [(c["kind"], c["name"]) for c in data["conflicts"]] == [(kind.capitalize(), _label(kind))]


@pytest.mark.parametrize("kind", KINDS)
def test_adopt_from_takes_another_owners_object_over(cli, manifest_dir, sandbox, api, kind):
    root = _manifests(manifest_dir, kind)
    _seed(api, kind, tags=owner_tag("other"), differs=True)
    args = ("--server", sandbox.url, "--owner", "team", "--adopt-from", "other", "--auto-approve")
    run = cli("apply", root, *args)
    assert run.code == 0, run.all
    run = cli("plan", root, "--server", sandbox.url, "--owner", "team", "--detailed-exitcode")
    assert run.code == 0, run.all


@pytest.mark.parametrize("kind", KINDS)
def test_an_unowned_different_object_hints_adopt(cli, manifest_dir, sandbox, api, kind):
    root = _manifests(manifest_dir, kind)
    _seed(api, kind, tags="", differs=True)
    run = cli("apply", root, "--server", sandbox.url, "--owner", "team")
    assert run.code == 7, run.all
    assert "--adopt" in run.out and "--adopt-from" not in run.out


def test_one_summary_over_every_kind_in_text_json_and_markdown(cli, manifest_dir, sandbox):
    root = manifest_dir({"m.yaml": model_yaml("gpt-4o"), "d.yaml": DATASET, "e.yaml": endpoint_yaml()})
    text = cli("plan", root, "--server", sandbox.url).out
    lines = text.splitlines()
    assert lines[0].startswith("Plan for ") and lines[0].endswith(
        ": 5 to add, 0 to change, 0 to replace, 0 to destroy."
    ), lines[0]
    assert "  1 model, 1 dataset, 1 endpoint, 2 policies to add." in lines
    assert sum(1 for line in lines if " to add" in line) == 2  # no second summary of its own
    data = json.loads(cli("plan", root, "--server", sandbox.url, "-o", "json").out)
    assert data["version"] == 3
    assert data["summary"]["create"] == 5
    assert data["summary_by_kind"]["Policy"]["create"] == 2
    assert sorted({c["kind"] for c in data["changes"]}) == ["Dataset", "Endpoint", "Model", "Policy"]
    assert "kinds" not in data
    markdown = cli("plan", root, "--server", sandbox.url, "-o", "markdown").out
    assert "**5 to add, 0 to change, 0 to replace, 0 to destroy.**" in markdown
    assert "| + create | Model | `gpt-4o` |" in markdown
    assert "| + create | Policy | `support-bot/per-user` |" in markdown


def test_a_policy_change_is_counted_in_every_format(cli, manifest_dir, sandbox):
    """A PR header once read "1 to update" while a policy changed too: every kind is counted."""
    root = manifest_dir({"m.yaml": model_yaml("gpt-4o"), "d.yaml": DATASET, "e.yaml": endpoint_yaml()})
    assert cli("apply", root, "--server", sandbox.url).code == 0
    (root / "e.yaml").write_text(endpoint_yaml().replace("10/m", "20/m"))
    (root / "m.yaml").write_text(model_yaml("gpt-4o", summary="new"))
    text = cli("plan", root, "--server", sandbox.url).out
    assert text.splitlines()[0].endswith(": 0 to add, 2 to change, 0 to replace, 0 to destroy."), text
    markdown = cli("plan", root, "--server", sandbox.url, "-o", "markdown").out
    assert "**0 to add, 2 to change, 0 to replace, 0 to destroy.**" in markdown
    data = json.loads(cli("plan", root, "--server", sandbox.url, "-o", "json").out)
    assert data["summary"]["update"] == 2 and not data["in_sync"]


def test_help_and_export_words_are_kind_aware(cli, manifest_dir, sandbox, tmp_path):
    help_text = cli("apply", "--help").out
    assert "Act only on this model" not in help_text
    root = manifest_dir({"d.yaml": DATASET})
    assert cli("apply", root, "--server", sandbox.url).code == 0
    run = cli("export", "--server", sandbox.url, "--output-dir", str(tmp_path / "out"))
    assert run.code == 0, run.all
    assert "model(s)" not in run.out and "1 dataset" in run.out, run.out


SELECTIONS = (("--target", "gpt-4o"), ("-l", "name=gpt-*"), ("-l", "dtype=openai"))


@pytest.mark.parametrize("selection", SELECTIONS, ids=lambda s: " ".join(s))
def test_a_selection_never_replaces_a_model_from_under_an_unselected_endpoint(
    cli, manifest_dir, sandbox, api, selection
):
    """Without the selection the model's replace cascades to its endpoint; with it, the endpoint
    is not selected, so the replace is refused before any write (never `model: null`)."""
    root = manifest_dir({"m.yaml": model_yaml("gpt-4o"), "d.yaml": DATASET, "e.yaml": endpoint_yaml()})
    args = ("--server", sandbox.url, "--owner", "team")
    assert cli("apply", root, *args).code == 0
    (root / "m.yaml").write_text(model_yaml("gpt-4o", model="gpt-4o-mini"))
    before = api.get("/endpoints/support-bot").json()
    run = cli(
        "apply", root, *args, *selection, "--replace", "gpt-4o", "--auto-approve", "--max-delete", "unlimited"
    )
    assert run.code == 11, run.all
    assert "endpoint `support-bot` uses it and is outside this run's selection" in run.err
    after = api.get("/endpoints/support-bot").json()
    assert after["id"] == before["id"] and after["model"]["name"] == "gpt-4o"


@pytest.mark.parametrize("selection", [(), *SELECTIONS], ids=lambda s: " ".join(s) or "none")
def test_a_prune_never_deletes_a_model_another_owners_endpoint_uses(
    cli, manifest_dir, sandbox, api, selection
):
    root = manifest_dir({"m.yaml": model_yaml("gpt-4o"), "keep.yaml": model_yaml("keep")})
    args = ("--server", sandbox.url, "--owner", "team")
    assert cli("apply", root, *args).code == 0
    model_id = api.get("/models/gpt-4o").json()["id"]
    body = {"slug": "theirs", "name": "T", "summary": "", "description": "", "response_type": "both",
            "published": False, "tags": owner_tag("other"), "model_id": model_id, "dataset_id": None}  # fmt: skip
    assert api.post("/endpoints/", json=body).status_code in (200, 201)
    (root / "m.yaml").unlink()
    run = cli("apply", root, *args, *selection, "--prune", "--auto-approve", "--max-delete", "unlimited")
    assert run.code == 11, run.all
    assert "endpoint `theirs` uses it" in run.err
    assert api.get("/endpoints/theirs").json()["model"]["name"] == "gpt-4o"
    assert api.get("/models/gpt-4o").status_code == 200


def test_a_policy_is_a_deletion_counted_listed_and_limited(cli, manifest_dir, sandbox, api):
    """An access policy is a security control: removing one counts against --max-delete (0 too),
    is named in DELETIONS, and the advice names the number that passes."""
    root = manifest_dir({"m.yaml": model_yaml("gpt-4o"), "d.yaml": DATASET, "e.yaml": endpoint_yaml()})
    args = ("--server", sandbox.url, "--owner", "team")
    assert cli("apply", root, *args).code == 0
    (root / "e.yaml").write_text(endpoint_yaml().split("  - name: staff-only")[0])
    run = cli("plan", root, *args, "--prune")
    assert "  DELETIONS (1): policy support-bot/staff-only" in run.out.splitlines(), run.out
    run = cli("apply", root, *args, "--prune", "--max-delete", "0", "--auto-approve")
    assert run.code == 11 and "refusing to delete 1 policy (1 pruned)" in run.err, run.all
    assert len(api.get("/endpoints/support-bot").json()["policies"]) == 2
    assert cli("apply", root, *args, "--prune", "--max-delete", "1", "--auto-approve").code == 0
    assert [p["name"] for p in api.get("/endpoints/support-bot").json()["policies"]] == ["per-user"]


def test_the_deletion_limit_advice_is_the_number_that_passes(cli, manifest_dir, sandbox, api):
    root = manifest_dir({"m.yaml": model_yaml("gpt-4o"), "d.yaml": DATASET, "e.yaml": endpoint_yaml()})
    args = ("--server", sandbox.url, "--owner", "team", "--replace-all", "--auto-approve")
    assert cli("apply", root, *args).code == 0
    (root / "m.yaml").write_text(model_yaml("gpt-4o", model="gpt-4o-mini"))
    run = cli("apply", root, *args)
    assert run.code == 11, run.all
    advice = re.search(r"--max-delete (\d+) \(or", run.err)
    assert advice and "1 model, 1 endpoint, 2 policies" in run.err, run.err
    run = cli("apply", root, *args, "--max-delete", advice.group(1))
    assert run.code == 0, run.all
    assert api.get("/endpoints/support-bot").json()["model"]["name"] == "gpt-4o"


@pytest.mark.parametrize("kind", ["model", "dataset"])
def test_a_saved_plan_binds_the_lifecycle_a_held_replace_stays_held(
    cli, manifest_dir, sandbox, api, tmp_path, kind
):
    """Reviewed with the replace held (lifecycle manual), applied after the manifest was changed to
    `lifecycle: {replace: allow}`: stale, never a replace nobody reviewed."""
    files = {"m.yaml": model_yaml("gpt-4o"), "d.yaml": DATASET}
    root = manifest_dir(files)
    args = ("--server", sandbox.url, "--owner", "team")
    assert cli("apply", root, *args).code == 0
    name, file = ("gpt-4o", "m.yaml") if kind == "model" else ("handbook", "d.yaml")
    before = api.get(f"/{kind}s/{name}").json()["id"]
    changed = (
        model_yaml("gpt-4o", model="gpt-4o-mini")
        if kind == "model"
        else DATASET.replace("collection_name: Handbook", "collection_name: Other")
    )
    (root / file).write_text(changed)
    saved = tmp_path / "plan.json"
    run = cli("plan", root, *args, "--out", saved)
    assert run.code == 0 and f"[needs --replace {name}]" in run.out, run.all
    (root / file).write_text(changed + "lifecycle: {replace: allow}\n")
    run = cli("apply", saved, "--server", sandbox.url)
    assert run.code == 10, run.all
    assert api.get(f"/{kind}s/{name}").json()["id"] == before


def test_a_pending_replace_nobody_asked_for_blocks_nothing_else(cli, manifest_dir, sandbox, api):
    """Another owner's endpoint uses our model, whose configuration changed: the replace waits for
    --replace (and would be refused then), but the plan is shown and the rest of the run goes on."""
    root = manifest_dir({"m.yaml": model_yaml("gpt-4o")})
    args = ("--server", sandbox.url, "--owner", "team")
    assert cli("apply", root, *args).code == 0
    model_id = api.get("/models/gpt-4o").json()["id"]
    body = {"slug": "theirs", "name": "T", "summary": "", "description": "", "response_type": "both",
            "published": False, "tags": owner_tag("other"), "model_id": model_id, "dataset_id": None}  # fmt: skip
    assert api.post("/endpoints/", json=body).status_code in (200, 201)
    (root / "m.yaml").write_text(model_yaml("gpt-4o", model="gpt-4o-mini"))
    (root / "new.yaml").write_text(model_yaml("new"))
    run = cli("plan", root, *args, "--detailed-exitcode")
    assert run.code == 2 and "[needs --replace gpt-4o]" in run.out and "+ create model new" in run.out, (
        run.all
    )
    run = cli("apply", root, *args)
    assert run.code == 1 and "created  model new" in run.out and "skipped  model gpt-4o" in run.out, run.all
    assert api.get("/models/gpt-4o").json()["id"] == model_id
    run = cli("apply", root, *args, "--replace", "gpt-4o", "--auto-approve")
    assert run.code == 11 and "endpoint `theirs` uses it" in run.err, run.all


def test_lifecycle_never_holds_against_a_cascade_and_against_adopt(cli, manifest_dir, sandbox, api):
    never = endpoint_yaml() + "lifecycle: {replace: never}\n"
    root = manifest_dir({"m.yaml": model_yaml("gpt-4o"), "d.yaml": DATASET, "e.yaml": never})
    assert cli("apply", root, "--server", sandbox.url).code == 0  # no owner: the bare tag
    endpoint_id = api.get("/endpoints/support-bot").json()["id"]
    # a cascade: the model's replace would recreate the endpoint, which says never
    (root / "m.yaml").write_text(model_yaml("gpt-4o", model="gpt-4o-mini"))
    args = ("--server", sandbox.url, "--replace-all", "--auto-approve", "--max-delete", "unlimited")
    run = cli("apply", root, *args)
    assert run.code == 11 and "its manifest says `lifecycle.replace: never`" in run.err, run.all
    assert api.get("/endpoints/support-bot").json()["id"] == endpoint_id
    # --adopt of the endpoint (a replace: its owner tag is set only at create) is held, not made
    (root / "m.yaml").write_text(model_yaml("gpt-4o"))
    run = cli(
        "apply",
        root,
        "--server",
        sandbox.url,
        "--owner",
        "team",
        "--adopt",
        "--auto-approve",
        "--max-delete",
        "unlimited",
    )
    assert "[lifecycle.replace: never]" in run.out and run.code == 1, run.all
    assert api.get("/endpoints/support-bot").json()["id"] == endpoint_id
