"""apply --prune with its guards, and plan --out / apply plan.json, through the CLI."""

import json

import pytest

from .conftest import model_yaml, names, seed_model

KEY = "sk-canary-prune-31c4"


@pytest.fixture(autouse=True)
def _key(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("SYFT_RECONCILER_OWNER", "team-a")  # prune needs an owner


def test_prune_deletes_only_what_we_own(cli, manifest_dir, sandbox, api):
    root = manifest_dir({"a.yaml": model_yaml("a"), "b.yaml": model_yaml("b")})
    assert cli("apply", root, "--server", sandbox.url).code == 0
    seed_model(api, "by-hand", owned=False)
    (root / "b.yaml").unlink()
    run = cli("plan", root, "--server", sandbox.url, "--prune")
    assert run.out.splitlines()[:3] == [
        f"Plan for {sandbox.url}: 0 to add, 0 to change, 0 to replace, 1 to destroy, 1 unmanaged.",
        "  1 model to destroy; 1 model unmanaged; 1 model in sync.",
        "  DELETIONS (1): model b",
    ]
    assert names(api) == ["a", "b", "by-hand"]
    run = cli("apply", root, "--server", sandbox.url)  # no --prune: nothing deleted
    assert run.code == 0 and names(api) == ["a", "b", "by-hand"]
    run = cli("apply", root, "--server", sandbox.url, "--prune")
    assert run.code == 0 and "deleted  model b" in run.out
    assert names(api) == ["a", "by-hand"]


def test_prune_guards(cli, manifest_dir, sandbox, api):
    root = manifest_dir({f"m{i}.yaml": model_yaml(f"m{i}") for i in range(3)})
    assert cli("apply", root, "--server", sandbox.url).code == 0
    for i in range(3):
        (root / f"m{i}.yaml").unlink()
    run = cli("apply", root, "--server", sandbox.url, "--prune")
    assert run.code == 11 and run.err.strip() == (
        "error: refusing to prune with no manifests: it would delete all 3 object(s) (3 models) this owner manages; "
        "check the path, or pass --allow-empty; nothing was written"
    )
    (root / "m0.yaml").write_text(model_yaml("m0"))
    run = cli("apply", root, "--server", sandbox.url, "--prune")  # the default limit: half of 3 is 1
    assert (
        run.code == 11
        and "refusing to delete 2 models (2 pruned): more than the default limit of 1" in run.err
    )
    run = cli("apply", root, "--server", sandbox.url, "--prune", "--max-delete", "1")
    assert run.code == 11 and "more than the limit set by --max-delete 1" in run.err
    assert names(api) == ["m0", "m1", "m2"]
    run = cli("apply", root, "--server", sandbox.url, "--prune", "--max-delete", "2", "-o", "json")
    assert run.code == 0 and json.loads(run.out)["summary"]["deleted"] == 2
    (root / "m0.yaml").unlink()
    assert cli("apply", root, "--server", sandbox.url, "--prune", "--allow-empty").code == 0
    assert names(api) == []


def test_saved_plan_executes_exactly_and_refuses_when_stale(cli, manifest_dir, sandbox, api, tmp_path):
    root = manifest_dir({"a.yaml": model_yaml("a"), "b.yaml": model_yaml("b")})
    saved = tmp_path / "plan.json"
    run = cli("plan", root, "--server", sandbox.url, "--out", saved)
    assert run.code == 0 and f"Saved the plan to {saved}" in run.out
    content = saved.read_text()
    assert KEY not in content and json.loads(content)["kind"] == "syft-reconciler-plan"

    seed_model(api, "b", key=KEY)  # the server changes under the plan
    run = cli("apply", saved, "--server", sandbox.url)
    assert run.code == 10 and "the server changed since the plan was saved; run plan again" in run.err
    assert names(api) == ["b"]

    api.delete("/models/b")
    run = cli("apply", saved, "--server", sandbox.url)
    assert run.code == 0 and run.out.splitlines()[-1] == "Apply complete: 2 created, 0 in sync."
    assert names(api) == ["a", "b"]

    run = cli("plan", root, "--server", sandbox.url, "--out", saved)
    (root / "a.yaml").write_text(model_yaml("a", summary="edited after planning"))
    run = cli("apply", saved, "--server", sandbox.url)
    assert run.code == 10 and "the manifests changed since the plan was saved" in run.err
    run = cli("apply", saved, "--server", sandbox.url, "--prune")
    assert run.code == 64 and "a saved plan carries its own plan options" in run.err


def test_saved_plan_refuses_when_a_secret_changed(cli, manifest_dir, sandbox, monkeypatch, tmp_path):
    root = manifest_dir({"a.yaml": model_yaml("a")})
    assert cli("apply", root, "--server", sandbox.url).code == 0
    saved = tmp_path / "plan.json"
    assert cli("plan", root, "--server", sandbox.url, "--out", saved).code == 0
    monkeypatch.setenv("OPENAI_API_KEY", KEY + "-rotated")
    run = cli("apply", saved, "--server", sandbox.url)
    assert run.code == 10 and "the plan would differ now (a secret changed?)" in run.err
    assert KEY not in saved.read_text()


def test_not_a_plan_file(cli, sandbox, tmp_path):
    bogus = tmp_path / "x.json"
    bogus.write_text('{"hello": 1}')
    run = cli("apply", bogus, "--server", sandbox.url)
    assert run.code == 1 and run.err.strip() == (
        f"error: {bogus}: not a saved plan (write one with `plan --out {bogus}`)"
    )
