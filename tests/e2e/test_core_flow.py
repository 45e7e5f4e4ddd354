"""validate → plan → apply through the real CLI against the sandbox on 127.0.0.1."""

import json

import pytest

from reconciler.sandbox import SandboxConfig

from .conftest import model_yaml, names, seed_model

KEY = "sk-canary-e2e-4f1d2c"


@pytest.fixture(autouse=True)
def _key(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)


def posts(sandbox):
    return sandbox.stats().get("POST /api/v1/models/", 0)


def test_validate_ok_and_bad(cli, manifest_dir):
    root = manifest_dir({"a.yaml": model_yaml("a"), "b.yml": model_yaml("b")})
    run = cli("validate", root)
    assert run.code == 0 and "OK: 2 manifest(s) in 2 file(s) are valid." in run.out
    (root / "b.yml").write_text(model_yaml("b").replace("configuration:", "configuraton:"))
    run = cli("validate", root)
    assert run.code == 1
    assert run.err.splitlines() == [
        f"{root}/b.yml:4:1: configuraton: unknown field; did you mean `configuration`? "
        "(a manifest has: kind, name, dtype, configuration, summary, tags, lifecycle)",
        "error: 1 problem(s) in the manifests; nothing was written",
    ]
    assert "Traceback" not in run.all


def test_plan_apply_then_noop(cli, manifest_dir, sandbox, api):
    root = manifest_dir(
        {
            "a.yaml": model_yaml("a", summary="first", tags="[x, y]"),
            "more.yaml": model_yaml("b") + "---\n" + model_yaml("c", dtype="ollama", model="llama3"),
        }
    )
    planned = run = cli("plan", root, "--server", sandbox.url, "--detailed-exitcode")
    assert run.code == 2
    assert (
        run.out.splitlines()[0]
        == f"Plan for {sandbox.url}: 3 to add, 0 to change, 0 to replace, 0 to destroy."
    )
    assert "configuration.api_key: (sensitive)" in run.out and KEY not in run.all
    assert posts(sandbox) == 0

    run = cli("apply", root, "--server", sandbox.url)
    assert run.code == 0, run.all
    # apply first shows the plan it carries out, as `plan` shows it, then a line per model
    shown = run.out.splitlines()
    assert shown[: len(planned.out.splitlines())] == planned.out.splitlines()
    assert sorted(shown[len(planned.out.splitlines()) : -1]) == [
        "created  model a",
        "created  model b",
        "created  model c",
    ]
    assert run.out.splitlines()[-1] == "Apply complete: 3 created, 0 in sync."
    assert names(api) == ["a", "b", "c"]
    stored = api.get("/models/a").json()
    assert stored["configuration"] == {"api_key": KEY, "model": "gpt-4o"}
    assert stored["tags"] == "x,y,managed-by:syft-reconciler" and stored["summary"] == "first"

    before = sandbox.stats()
    run = cli("apply", root, "--server", sandbox.url)
    assert run.code == 0 and run.out.splitlines()[-1] == "Apply complete: 3 in sync."
    after = sandbox.stats()
    writes = [k for k in after if not k.startswith("GET") and after[k] != before.get(k, 0)]
    assert writes == []
    run = cli("plan", root, "--server", sandbox.url, "--detailed-exitcode")
    assert run.code == 0 and "No changes" in run.out


def test_noop_plan_reads_the_list_once_not_once_per_model(cli, manifest_dir, sandbox, api):
    root = manifest_dir({f"m{i}.yaml": model_yaml(f"m{i}") for i in range(40)})
    for i in range(40):
        seed_model(api, f"m{i}", key=KEY)
    base = sandbox.stats()
    run = cli("plan", root, "--server", sandbox.url, "-o", "json")
    assert run.code == 0 and json.loads(run.out)["in_sync"] is True
    stats = {k: v - base.get(k, 0) for k, v in sandbox.stats().items() if v - base.get(k, 0)}
    assert stats == {"GET /api/v1/models/": 1, "GET /api/v1/models/types/": 1}


def test_partial_run_converges(cli, manifest_dir, sandbox, api):
    root = manifest_dir({f"m{i}.yaml": model_yaml(f"m{i}") for i in range(6)})
    for i in (0, 2, 4):  # as if an earlier apply was killed half way
        seed_model(api, f"m{i}", key=KEY)
    run = cli("apply", root, "--server", sandbox.url)
    assert run.code == 0
    assert run.out.splitlines()[-1] == "Apply complete: 3 created, 3 in sync."
    assert names(api) == [f"m{i}" for i in range(6)] and posts(sandbox) == 6


def test_lost_responses_do_not_duplicate(cli, manifest_dir, sandbox, api):
    sandbox.reset(SandboxConfig(drop_after_commit_rate=1.0, seed=1))
    root = manifest_dir({f"m{i}.yaml": model_yaml(f"m{i}") for i in range(3)})
    run = cli("apply", root, "--server", sandbox.url)
    assert run.code == 0, run.all
    assert names(api) == ["m0", "m1", "m2"] and posts(sandbox) == 3


def test_json_output_and_error_kinds(cli, manifest_dir, sandbox):
    root = manifest_dir({"a.yaml": model_yaml("a")})
    data = json.loads(cli("plan", root, "--server", sandbox.url, "-o", "json").out)
    assert data["version"] == 3 and data["summary"]["create"] == 1
    assert data["changes"][0]["diffs"][1] == {
        "field": "configuration.api_key",
        "old": None,
        "new": "(sensitive)",
        "sensitive": True,
    }
    (root / "a.yaml").write_text("kind: Model\n")
    run = cli("plan", root, "--server", sandbox.url, "-o", "json")
    data = json.loads(run.out)
    assert run.code == 1 and data["error"]["kind"] == "invalid_manifests"
    assert {p["field"] for p in data["error"]["problems"]} == {"name", "dtype", "configuration"}


def test_invalid_manifests_write_nothing(cli, manifest_dir, sandbox, api):
    root = manifest_dir(
        {"good.yaml": model_yaml("good"), "bad.yaml": model_yaml("bad").replace("model: gpt-4o", "model: 4")}
    )
    run = cli("apply", root, "--server", sandbox.url)
    assert run.code == 1
    assert (
        run.err.splitlines()[0]
        == f"{root}/bad.yaml:6:10: configuration.model: must be a string, got an integer"
    )
    assert sandbox.stats() == {} and names(api) == []


def test_missing_secret_names_the_manifest_and_writes_nothing(cli, manifest_dir, sandbox, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY")
    root = manifest_dir({"a.yaml": model_yaml("a")})
    run = cli("apply", root, "--server", sandbox.url)
    assert run.code == 1
    assert run.err.splitlines()[0] == (
        f"{root}/a.yaml:5:12: configuration.api_key: environment variable OPENAI_API_KEY is not set; "
        "export it before plan/apply (model `a`)"
    )
    assert sandbox.stats() == {}


def test_update_and_replace(cli, manifest_dir, sandbox, api):
    root = manifest_dir({"a.yaml": model_yaml("a")})
    assert cli("apply", root, "--server", sandbox.url).code == 0
    (root / "a.yaml").write_text(model_yaml("a", summary="better", tags="[t]"))
    run = cli("plan", root, "--server", sandbox.url)
    assert "  ~ update model a" in run.out and 'summary: "" -> "better"' in run.out
    assert cli("apply", root, "--server", sandbox.url).code == 0
    assert api.get("/models/a").json()["summary"] == "better"

    (root / "a.yaml").write_text(model_yaml("a", model="gpt-4.1", summary="better", tags="[t]"))
    run = cli("apply", root, "--server", sandbox.url)
    assert run.code == 1
    assert (
        "skipped  model a: configuration.model changed; the API cannot change them in place: pass --replace a"
        in run.out
    )
    assert api.get("/models/a").json()["configuration"]["model"] == "gpt-4o"
    run = cli("apply", root, "--server", sandbox.url, "--replace", "a")
    assert run.code == 0 and "replaced model a" in run.out
    assert api.get("/models/a").json()["configuration"]["model"] == "gpt-4.1"


def test_unowned_model_is_a_conflict_until_adopted(cli, manifest_dir, sandbox, api):
    seed_model(api, "a", owned=False, key=KEY, summary="made by hand")
    seed_model(api, "same", owned=False, key=KEY)
    seed_model(api, "stray", owned=False)
    root = manifest_dir({"a.yaml": model_yaml("a"), "same.yaml": model_yaml("same")})
    run = cli("apply", root, "--server", sandbox.url)
    assert run.code == 7
    assert "conflict model a: exists on the server, differs, and was not created by the reconciler" in run.out
    run = cli("plan", root, "--server", sandbox.url)
    assert "  ? unmanaged model stray" in run.out
    assert "  = in sync model same" in run.out and "apply --adopt to manage it" in run.out
    run = cli("apply", root, "--server", sandbox.url, "--adopt")
    assert (
        run.code == 0 and "updated  model a: adopted" in run.out and "updated  model same: adopted" in run.out
    )
    assert "managed-by:syft-reconciler" in api.get("/models/a").json()["tags"]
    assert api.get("/models/a").json()["summary"] == ""
    assert cli("plan", root, "--server", sandbox.url, "--detailed-exitcode").code == 0


def test_server_errors_are_one_line(cli, manifest_dir, sandbox, tmp_path):
    root = manifest_dir({"a.yaml": model_yaml("a")})
    run = cli("plan", root, "--server", "http://127.0.0.1:9", "--retries", "0")
    assert run.code == 4 and run.err.startswith("error: cannot connect to http://127.0.0.1:9")
    assert len(run.err.strip().splitlines()) == 1

    sandbox.reset(SandboxConfig(token="right"))
    run = cli("apply", root, "--server", sandbox.url, "--token", "wrong")
    assert run.code == 5 and "401 Admin API key required" in run.err
    token_file = tmp_path / "token"
    token_file.write_text("right\n")
    assert cli("apply", root, "--server", sandbox.url, "--token-file", token_file).code == 0

    run = cli("plan", root)
    assert run.code == 64 and "no server: set SYFT_SPACE_URL" in run.err
    run = cli("plan", root, "--server", "http://space.example.org", "--token", "t")
    assert run.code == 1 and "refusing to send the token over plain http" in run.err
    assert "Traceback" not in run.all
