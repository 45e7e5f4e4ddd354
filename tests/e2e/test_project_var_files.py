"""A top-level `var_files:` in the project file: a one-space run's variables unless --var-file is
given, and every space's that names none of its own; paths are relative to the project file."""

from __future__ import annotations

import json

import httpx

from reconciler.project import load_project

from .test_environments import MANIFEST

TOKEN = "admin-key"


def project(tmp_path, text: str):
    repo = tmp_path / "repo"
    (repo / "manifests").mkdir(parents=True)
    (repo / "manifests" / "chat.yaml").write_text(MANIFEST)
    (repo / "envs").mkdir()
    (repo / "envs" / "staging.yaml").write_text("ENV: staging\nOLLAMA_URL: http://o:11434\nCTX: 4096\n")
    (repo / "envs" / "prod.yaml").write_text("ENV: prod\nOLLAMA_URL: http://o:11434\nCTX: 8192\n")
    (repo / "syft-reconciler.yaml").write_text(text)
    return repo


def test_one_space_takes_the_project_var_files_and_var_file_replaces_them(
    cli, sandbox, api, tmp_path, monkeypatch
):
    repo = project(tmp_path, "owner: team\npaths: [manifests]\nvar_files: [envs/staging.yaml]\n")
    monkeypatch.chdir(tmp_path)  # not the project's folder: its paths are relative to the file
    config = str(repo / "syft-reconciler.yaml")
    assert cli("validate", "--config", config).code == 0
    run = cli("apply", "--config", config, "--server", sandbox.url)
    assert run.code == 0, run.all
    assert [m["name"] for m in api.get("/models/").json()] == ["chat-staging"]
    assert api.get("/models/chat-staging").json()["configuration"]["num_ctx"] == 4096

    prod = cli("plan", "--config", config, "--server", sandbox.url, "--var-file", repo / "envs" / "prod.yaml")
    assert prod.code == 0 and "+ create model chat-prod" in prod.out and "num_ctx: 8192" in prod.out
    assert "4096" not in prod.out  # the project's file is replaced, not merged

    (repo / "envs" / "staging.yaml").unlink()
    run = cli("validate", "--config", config)
    assert run.code == 1 and f"{repo}/envs/staging.yaml" in run.err and "Traceback" not in run.all


def test_spaces_inherit_the_project_var_files_unless_they_name_their_own(
    cli, sandbox_factory, tmp_path, monkeypatch
):
    server = sandbox_factory(token=TOKEN, multi_tenancy=True)
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {TOKEN}"}) as http:
        for name in ("a", "b", "c"):
            assert http.post("/api/v1/tenants", json={"name": name, "display_name": name}).status_code == 201
    text = "owner: team\npaths: [manifests]\nvar_files: [envs/staging.yaml]\nspaces:\n"
    for name, own in (("a", ""), ("b", "    var_files: [envs/prod.yaml]\n"), ("c", "    var_files: []\n")):
        text += f"  - name: {name}\n    server: {server.url}\n    tenant: {name}\n    token: ${{SPACE_TOKEN}}\n{own}"
    repo = project(tmp_path, text)
    specs = {s.name: s for s in load_project(repo / "syft-reconciler.yaml").spaces}
    assert specs["a"].var_files == (repo / "envs" / "staging.yaml",)
    assert specs["b"].var_files == (repo / "envs" / "prod.yaml",)
    assert specs["c"].var_files == ()

    monkeypatch.setenv("SPACE_TOKEN", TOKEN)
    run = cli("plan", "--config", repo / "syft-reconciler.yaml", "--output", "json")
    result = {s["name"]: s for s in json.loads(run.out)["spaces"]}
    assert [c["name"] for c in result["a"]["result"]["changes"]] == ["chat-staging"]
    assert [c["name"] for c in result["b"]["result"]["changes"]] == ["chat-prod"]
    assert result["c"]["exit_code"] == 1 and result["c"]["error"]["kind"] == "invalid_manifests"
    assert "unknown variable `ENV`" in json.dumps(result["c"])  # `var_files: []` is its own: none


def test_a_bad_top_level_var_files_is_one_problem_with_its_line(cli, tmp_path):
    repo = project(tmp_path, "owner: team\nvar_files: {staging: envs/staging.yaml}\n")
    run = cli("validate", "--config", repo / "syft-reconciler.yaml")
    assert run.code == 1
    assert run.err.splitlines()[0] == (
        f"{repo}/syft-reconciler.yaml:2:12: var_files: must be a list of YAML files, relative to this file"
    )
