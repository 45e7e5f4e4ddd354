"""The plan is the contract, on what goes in: a selection that names nothing, a saved plan in the
wrong place, repeated warnings and absolute paths must not hide what a run will do (through the
real CLI against the sandbox)."""

import json

import pytest

from .conftest import model_yaml, names
from .test_kinds import DATASET, KEY, WEAVIATE, endpoint_yaml


@pytest.fixture(autouse=True)
def _keys(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("WEAVIATE_KEY", WEAVIATE)


def writes(sandbox):
    return {k: v for k, v in sandbox.stats().items() if not k.startswith("GET")}


def converged(cli, manifest_dir, sandbox):
    """A model (tagged prod), a dataset and an endpoint (tagged support), applied by owner team."""
    root = manifest_dir(
        {"models.yaml": model_yaml("gpt-4o", tags="[prod]"), "data.yaml": DATASET, "ep.yaml": endpoint_yaml()}
    )
    assert cli("apply", root, "--server", sandbox.url, "--owner", "team").code == 0
    return root


# -- 1. a selector or target that matches nothing is an error that names it ---------------------


NOTHING = "matches no manifest and no object on the server"


@pytest.mark.parametrize("command", ["plan", "apply"])
def test_a_mistyped_target_is_a_usage_error_naming_it_and_nothing_is_written(
    cli, manifest_dir, sandbox, command
):
    root = converged(cli, manifest_dir, sandbox)
    (root / "models.yaml").write_text(model_yaml("gpt-4o", summary="changed"))
    before = writes(sandbox)
    run = cli(command, root, "--server", sandbox.url, "--owner", "team", "--target", "gpt-4")
    assert run.code == 64, run.all
    assert run.err.splitlines() == [f"error: --target 'gpt-4' {NOTHING} (did you mean 'gpt-4o'?)"]
    assert run.out == ""
    assert writes(sandbox) == before
    run = cli(command, root, "--server", sandbox.url, "--owner", "team", "--target", "gpt-4", "-o", "json")
    assert run.code == 64 and json.loads(run.out)["error"] == {
        "kind": "usage",
        "message": f"--target 'gpt-4' {NOTHING} (did you mean 'gpt-4o'?)",
    }


@pytest.mark.parametrize(
    "selection",
    [("-l", "name=gpt-5*"), ("-l", "tag=nope"), ("-l", "dtype=anthropic"), ("--selector", "name=gpt-5*")],
    ids=lambda s: " ".join(s),
)
def test_a_selector_that_matches_nothing_is_a_usage_error_naming_it(cli, manifest_dir, sandbox, selection):
    root = converged(cli, manifest_dir, sandbox)
    run = cli("plan", root, "--server", sandbox.url, "--owner", "team", *selection)
    assert run.code == 64, run.all
    assert run.err.splitlines() == [f"error: -l {selection[1]!r} {NOTHING}"]


def test_two_targets_one_of_which_matches_names_only_the_other(cli, manifest_dir, sandbox):
    root = converged(cli, manifest_dir, sandbox)
    before = writes(sandbox)
    args = ("--server", sandbox.url, "--owner", "team", "--target", "handbook", "--target", "suport-bot")
    run = cli("apply", root, *args, "-l", "tag=nope")
    assert run.code == 64, run.all
    assert run.err.splitlines() == [
        "error: --target 'suport-bot' (did you mean 'support-bot'?) and -l 'tag=nope' match no manifest "
        "and no object on the server"
    ]
    assert writes(sandbox) == before


def test_what_matches_a_manifest_or_an_object_on_the_server_is_planned_as_before(
    cli, manifest_dir, sandbox, api
):
    """A target of a deleted object that no manifest names is on the server: fine. So is a
    selector matching only an endpoint's tag, or only what the server has."""
    root = converged(cli, manifest_dir, sandbox)
    (root / "extra.yaml").write_text(model_yaml("old", tags="[prod]"))
    assert cli("apply", root, "--server", sandbox.url, "--owner", "team").code == 0
    (root / "extra.yaml").unlink()
    args = ("--server", sandbox.url, "--owner", "team")
    run = cli("plan", root, *args, "--target", "old", "--prune", "--allow-empty", "-o", "json")
    assert run.code == 0, run.all
    assert [(c["name"], c["op"]) for c in json.loads(run.out)["changes"]] == [("old", "delete")]
    for selection in (("-l", "tag=support"), ("-l", "dtype=endpoint"), ("-l", "name=ol*")):
        run = cli("plan", root, *args, *selection)
        assert run.code == 0, (selection, run.all)
    # models only in the manifests now: the datasets and endpoints on the server still count
    (root / "ep.yaml").unlink()
    (root / "data.yaml").unlink()
    for target in ("support-bot", "handbook"):
        run = cli("plan", root, *args, "--target", target)
        assert run.code == 0, (target, run.all)
    assert api.get("/endpoints/support-bot").status_code == 200


def test_watch_says_so_in_its_first_round_and_writes_nothing(tmp_path, manifest_dir, sandbox, api, daemons):
    root = manifest_dir({"a.yaml": model_yaml("gpt-4o")})
    daemon = daemons(root, "--server", sandbox.url, "--target", "gpt-4", cwd=tmp_path)
    first = daemon.wait_for("the first round", event="round", trigger="startup")
    assert first["status"] == "failed", daemon.log
    assert f"--target 'gpt-4' {NOTHING} (did you mean 'gpt-4o'?)" in first["msg"]
    assert names(api) == []
    assert daemon.terminate() == 0


# -- 2. a saved plan where manifests are expected, or missing -------------------------------------


def test_a_saved_plan_given_with_manifests_or_to_plan_is_one_line(cli, manifest_dir, sandbox, api, tmp_path):
    root = manifest_dir({"a.yaml": model_yaml("a")})
    saved = tmp_path / "plan.json"
    assert cli("plan", root, "--server", sandbox.url, "--out", saved).code == 0
    before = writes(sandbox)
    expected = [f"error: {saved} is a saved plan: apply it alone (syft-reconciler apply {saved})"]
    for args in (
        ("apply", saved, root),
        ("apply", root, saved),
        ("plan", saved),
        ("plan", root, saved),
        ("validate", saved),
    ):
        run = cli(*args, "--server", sandbox.url) if args[0] != "validate" else cli(*args)
        assert run.code == 64, (args, run.all)
        assert run.err.splitlines() == expected, args
    assert writes(sandbox) == before and names(api) == []


def test_a_missing_saved_plan_says_how_to_make_one(cli, sandbox, tmp_path):
    missing = tmp_path / "plan2.json"
    run = cli("apply", missing, "--server", sandbox.url)
    assert run.code == 64, run.all
    assert run.err.splitlines() == [
        f"error: {missing}: no such saved plan (make one with syft-reconciler plan --out {missing})"
    ]
    run = cli("apply", missing, "--server", sandbox.url, "-o", "json")
    assert run.code == 64 and json.loads(run.out)["error"]["kind"] == "usage"


def test_a_saved_plan_under_another_name_is_still_a_saved_plan(cli, manifest_dir, sandbox, tmp_path):
    root = manifest_dir({"a.yaml": model_yaml("a")})
    saved = tmp_path / "reviewed.plan"
    assert cli("plan", root, "--server", sandbox.url, "--out", saved).code == 0
    run = cli("apply", saved, "--server", sandbox.url)
    assert run.code == 0, run.all
    assert run.out.splitlines()[-1] == "Apply complete: 1 created, 0 in sync."


def test_a_json_manifest_beside_others_is_still_a_manifest(cli, manifest_dir, sandbox, api, tmp_path):
    root = manifest_dir({"a.yaml": model_yaml("a")})
    extra = tmp_path / "b.json"
    extra.write_text(json.dumps({"kind": "Model", "name": "b", "dtype": "openai",
                                 "configuration": {"api_key": "${OPENAI_API_KEY}", "model": "gpt-4o"}}))  # fmt: skip
    run = cli("apply", root, extra, "--server", sandbox.url)
    assert run.code == 0, run.all
    assert names(api) == ["a", "b"]


# -- 3. repeated warnings are folded ----------------------------------------------------------------

LITERAL = "a literal secret is committed to git; use ${ENV_VAR} or {file: /run/secrets/NAME}"


def noisy(manifest_dir, count=3):
    """`count` models with a literal key, and two whose names end in a space."""
    files = {f"m{i}.yaml": model_yaml(f"m{i}", key="sk-literal-key-0042") for i in range(count)}
    files["s1.yaml"] = model_yaml("'s1 '")
    files["s2.yaml"] = model_yaml("'s2 '")
    return manifest_dir(files)


SPACES = "name: has leading or trailing spaces; the server keeps them, so `a` and ` a` are two models"


def folded(root):
    return [
        f"{root}/m0.yaml:5:12: warning: configuration.api_key: {LITERAL}",
        "warning: … and 2 more like it (--verbose shows each)",
        f"{root}/s1.yaml:2:7: warning: {SPACES}",
        "warning: … and 1 more like it (--verbose shows each)",
    ]


def every(root):
    return [f"{root}/m{i}.yaml:5:12: warning: configuration.api_key: {LITERAL}" for i in range(3)] + [
        f"{root}/s{i}.yaml:2:7: warning: {SPACES}" for i in (1, 2)
    ]


def warning_lines(err):
    return [line for line in err.splitlines() if "warning" in line]


def test_repeated_warnings_are_folded_in_text_and_kept_whole_in_json(cli, manifest_dir, sandbox):
    root = noisy(manifest_dir)
    for command in ("validate", "plan", "apply"):
        args = (command, root) if command == "validate" else (command, root, "--server", sandbox.url)
        run = cli(*args)
        assert run.code == 0, run.all
        assert warning_lines(run.err) == folded(root), command
        for verbose in ("--verbose", "-v"):
            run = cli(*args, verbose)
            assert warning_lines(run.err) == every(root), (command, verbose)
    for command in ("validate", "plan"):
        args = (command, root) if command == "validate" else (command, root, "--server", sandbox.url)
        run = cli(*args, "-o", "json")
        assert len(json.loads(run.out)["warnings"]) == 5 and "more like it" not in run.all


def test_two_thousand_like_warnings_are_two_lines(cli, manifest_dir):
    text = "---\n".join(model_yaml(f"m{i:04d}", key="sk-literal-key-0042") for i in range(2000))
    root = manifest_dir({"all.yaml": text})
    run = cli("validate", root)
    assert run.code == 0, run.all
    assert run.err.splitlines() == [
        f"{root}/all.yaml:5:12: warning: configuration.api_key: {LITERAL}",
        "warning: … and 1,999 more like it (--verbose shows each)",
    ]


# -- 4. paths relative to the project (or working) directory ------------------------------------------


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A project folder with syft-reconciler.yaml (owner team, paths: [manifests]) and a space in
    manifests/, the working directory."""
    folder = tmp_path / "repo"
    manifests = folder / "manifests"
    manifests.mkdir(parents=True)
    (folder / "syft-reconciler.yaml").write_text("owner: team\npaths: [manifests]\n")
    (manifests / "models.yaml").write_text(model_yaml("gpt-4o"))
    (manifests / "data.yaml").write_text(DATASET)
    (manifests / "ep.yaml").write_text(endpoint_yaml())
    monkeypatch.chdir(folder)
    return folder


def test_sources_are_relative_to_the_project_in_every_format(cli, project, sandbox):
    for config in ((), ("--config", "syft-reconciler.yaml"), ("--config", project / "syft-reconciler.yaml")):
        run = cli("plan", "--server", sandbox.url, *config)
        assert run.code == 0, run.all
        assert "  + create model gpt-4o  (manifests/models.yaml:1:1)" in run.out.splitlines(), run.out
        assert "  + create endpoint support-bot  (manifests/ep.yaml:1:1)" in run.out.splitlines()
        assert str(project) not in run.all
        run = cli("plan", "--server", sandbox.url, *config, "-o", "json")
        sources = {c["name"]: c.get("source") for c in json.loads(run.out)["changes"]}
        assert sources["gpt-4o"] == "manifests/models.yaml:1:1"
        assert sources["handbook"] == "manifests/data.yaml:1:1"
        run = cli("plan", "--server", sandbox.url, *config, "-o", "markdown")
        assert "`manifests/data.yaml:1:1`" in run.out and str(project) not in run.out


def test_problems_and_warnings_are_relative_too(cli, project, sandbox):
    (project / "manifests" / "bad.yaml").write_text(
        model_yaml("bad", key="sk-literal-key-0042") + "colour: red\n"
    )
    run = cli("validate")
    assert run.code == 1
    assert "manifests/bad.yaml:9:1: colour: unknown field" in run.err
    assert "manifests/bad.yaml:5:12: warning: configuration.api_key" in run.err
    assert str(project) not in run.all
    run = cli("validate", "-o", "json")
    assert {p["file"] for p in json.loads(run.out)["error"]["problems"]} == {"manifests/bad.yaml"}


def test_outside_the_working_directory_a_source_stays_absolute(cli, project, sandbox, tmp_path, monkeypatch):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    run = cli("plan", "--server", sandbox.url, "--config", project / "syft-reconciler.yaml", "-o", "json")
    assert run.code == 0, run.all
    sources = {c["name"]: c.get("source") for c in json.loads(run.out)["changes"]}
    assert sources["gpt-4o"] == f"{project}/manifests/models.yaml:1:1"


def test_a_saved_plan_from_the_project_verifies_and_a_secret_file_next_to_a_manifest_is_read(
    cli, project, sandbox, api, tmp_path, monkeypatch
):
    (project / "manifests" / "key.txt").write_text(KEY + "\n")
    (project / "manifests" / "models.yaml").write_text(model_yaml("gpt-4o", key="{file: key.txt}"))
    saved = tmp_path / "plan.json"
    run = cli("plan", "--server", sandbox.url, "--out", saved)
    assert run.code == 0, run.all
    assert '"manifests/ep.yaml:1:1"' in saved.read_text()
    run = cli("apply", saved, "--server", sandbox.url)
    assert run.code == 0, run.all
    assert api.get("/endpoints/support-bot").status_code == 200
    # from a folder below the project (found upwards): relative to the working directory, and
    # the secret file still read beside its manifest
    monkeypatch.chdir(project / "manifests")
    run = cli("plan", "--server", sandbox.url, "-o", "json")
    assert run.code == 0, run.all
    changes = json.loads(run.out)["changes"]
    assert {c["name"]: (c["op"], c.get("source")) for c in changes}["gpt-4o"] == ("noop", "models.yaml:1:1")
