"""export, schema, schema pull, the pre-commit hook and the CI recipe, through the real CLI."""

import json
import re
import shlex
import shutil
from pathlib import Path

import click
import pytest
import yaml

from reconciler.cli import cli as cli_group
from reconciler.model import OWNER_TAG
from reconciler.sandbox import SandboxConfig
from reconciler.schemas import bundled_schema_dir

from .conftest import model_yaml
from .stubs import stub_server

ROOT = Path(__file__).resolve().parents[2]
SCHEMAS = bundled_schema_dir()

# name → (dtype, configuration, summary, tags, lifecycle); each secret is a canary that must never be written
SPACE = {
    "gpt-4o": ("openai", {"api_key": "sk-canary-one-1111", "model": "gpt-4o"}, "chat", "openai,chat"),
    "GPT-4o": (
        "openai",
        {
            "api_key": "sk-canary-two-2222",
            "model": "gpt-4o",
            "system_prompt": "Be brief.\nCite ${SOURCES} verbatim.\n",
        },
        "yes",
        "true,1.0",
    ),
    "Claude Sonnet ☀": (
        "anthropic",
        {
            "api_key": "sk-canary-three-3333",
            "model": "claude-sonnet-4-5",
            "max_tokens": 4096,
            "temperature": 0.3,
        },
        "null",
        "anthropic",
    ),
    "100% ready?": ("ollama", {"model": "llama3.2", "num_ctx": 8192}, "", ""),
    "qwen vllm": (
        "vllm",
        {
            "base_url": "http://vllm:8000/v1",
            "model": "Qwen/Qwen2.5-7B-Instruct",
            "api_key": "sk-canary-four-4444",
        },
        "",
        "local",
    ),
    " padded ": ("ollama", {"model": "m"}, "  ", ""),
}
CANARIES = [c["api_key"] for _, c, _, _ in SPACE.values() if "api_key" in c]


def seed(api, space=SPACE, *, owned=("gpt-4o",)):
    for name, (dtype, config, summary, tags) in space.items():
        all_tags = ",".join(t for t in (tags, OWNER_TAG if name in owned else "") if t)
        response = api.post(
            "/models/",
            json={
                "name": name,
                "dtype": dtype,
                "configuration": config,
                "summary": summary,
                "tags": all_tags,
            },
        )
        assert response.status_code == 201, response.text


def exported_texts(folder):
    return {p.name: p.read_text(encoding="utf-8") for p in sorted(folder.iterdir())}


def assert_no_canary(*texts):
    for text in texts:
        for canary in CANARIES:
            assert canary not in text


def set_env_from(run_json, monkeypatch, space=SPACE):
    """Set each exported reference to the server's value: what a user does with their secrets."""
    for item in json.loads(run_json)["files"]:
        _, config, _, _ = space[item["name"]]
        for var in item["env"]:
            field = next(k for k in config if var.endswith("_" + k.upper()))
            monkeypatch.setenv(var, config[field])


# -- export ----------------------------------------------------------------------------------


def test_export_then_plan_is_in_sync(cli, sandbox, api, tmp_path, monkeypatch):
    seed(api)
    api.post("/models/", json={"name": "a/b", "dtype": "ollama", "configuration": {"model": "m"}})
    out_dir = tmp_path / "exported"
    before = sandbox.stats()
    run = cli("export", "--server", sandbox.url, "--output-dir", out_dir)
    assert run.code == 0, run.all
    assert [k for k, v in sandbox.stats().items() if not k.startswith("GET") and v != before.get(k, 0)] == []
    files = exported_texts(out_dir)
    assert len(files) == 6 and "gpt-4o.yaml" in files
    lines = run.out.splitlines()
    assert sorted(lines[:-1]) == sorted(
        f"wrote {out_dir / name} (model {yaml.safe_load(text)['name']!r})" for name, text in files.items()
    )
    assert lines[-1].startswith(
        f"Exported 6 models (6 of 7 object(s)) from {sandbox.url} to {out_dir}/. Before plan/apply, set: "
    )
    assert run.err.splitlines() == [
        "warning: skipped 'a/b': the name must not contain `/` (the server could never read, patch or "
        "delete it)",
    ]
    assert_no_canary(run.all, *files.values())
    # `gpt-4o` and `GPT-4o` would share GPT_4O_API_KEY: both get their name's hash
    assert re.search(r"\n  api_key: \$\{GPT_4O_[0-9A-F]{6}_API_KEY\}\n", files["gpt-4o.yaml"])
    assert "tags: [openai, chat]\n" in files["gpt-4o.yaml"]  # the ownership marker is not exported
    assert "Cite $${SOURCES} verbatim." in "".join(files.values())  # a literal ${ stays literal

    run = cli("validate", out_dir)
    assert run.code == 0 and run.out == "OK: 6 manifest(s) in 6 file(s) are valid.\n"
    assert "padded" in run.err  # surrounding spaces: validate's own warning

    json_run = cli("export", "--server", sandbox.url, "--output-dir", tmp_path / "again", "-o", "json")
    assert_no_canary(json_run.all)
    set_env_from(json_run.out, monkeypatch)
    run = cli("plan", out_dir, "--server", sandbox.url, "--detailed-exitcode")
    assert run.code == 0, run.all
    assert run.out.splitlines()[0] == (
        f"Plan for {sandbox.url}: 0 to add, 0 to change, 0 to replace, 0 to destroy, 1 unmanaged."
    )
    assert_no_canary(run.all)


def test_export_with_a_redacting_server_still_writes_references(cli, sandbox, api, tmp_path, monkeypatch):
    sandbox.reset(SandboxConfig(redact_secrets=True))
    space = {k: v for k, v in SPACE.items() if k in ("gpt-4o", "qwen vllm")}
    seed(api, space)
    run = cli("export", "--server", sandbox.url, "-d", tmp_path / "out")
    assert run.code == 0, run.all
    files = exported_texts(tmp_path / "out")
    assert "  api_key: ${GPT_4O_API_KEY}\n" in files["gpt-4o.yaml"]
    assert run.err == (
        "warning: model `qwen vllm`: optional secret `api_key` is not in the server's answer (never set, or "
        "redacted by the server): left out; add `api_key: ${QWEN_VLLM_API_KEY}` if it has one\n"
    )
    assert run.out.splitlines()[-1] == (
        f"Exported 2 models (2 of 2 object(s)) from {sandbox.url} to {tmp_path / 'out'}/. Before plan/apply, set: "
        "GPT_4O_API_KEY."
    )
    monkeypatch.setenv("GPT_4O_API_KEY", "anything: the server cannot compare it")
    run = cli("plan", tmp_path / "out", "--server", sandbox.url, "--detailed-exitcode")
    assert run.code == 0, run.all


def test_export_refuses_to_overwrite_without_force(cli, sandbox, api, tmp_path):
    seed(api, {"gpt-4o": SPACE["gpt-4o"]})
    out_dir = tmp_path / "out"
    assert cli("export", "--server", sandbox.url, "-d", out_dir).code == 0
    (out_dir / "gpt-4o.yaml").write_text("edited by hand\n")
    run = cli("export", "--server", sandbox.url, "-d", out_dir)
    assert (run.code, run.out) == (1, "")
    assert run.err == (
        f"error: {out_dir / 'gpt-4o.yaml'} already exists; pass --force to overwrite (nothing was written)\n"
    )
    assert (out_dir / "gpt-4o.yaml").read_text() == "edited by hand\n"
    run = cli("export", "--server", sandbox.url, "-d", out_dir, "--force")
    assert run.code == 0 and "kind: Model" in (out_dir / "gpt-4o.yaml").read_text()
    assert "Traceback" not in run.all


def test_export_selectors(cli, sandbox, api, tmp_path):
    seed(api)
    run = cli(
        "export",
        "--server",
        sandbox.url,
        "-d",
        tmp_path / "a",
        "--selector",
        "dtype=openai",
        "--selector",
        "tag=chat",
        "-o",
        "json",
    )
    assert run.code == 0, run.all
    data = json.loads(run.out)
    assert [f["name"] for f in data["files"]] == ["gpt-4o"]
    assert data["env"] == ["GPT_4O_API_KEY"] and data["version"] == 3 and data["error"] is None

    run = cli("export", "--server", sandbox.url, "-d", tmp_path / "b", "-l", "name=nothing*")
    assert run.code == 0
    assert run.out == f"Nothing to export from {sandbox.url} (0 of 6 matched); nothing was written.\n"
    assert not (tmp_path / "b").exists()

    run = cli("export", "--server", sandbox.url, "-l", "owner=me")
    assert run.code == 64 and run.out == ""
    assert run.err.splitlines()[-1] == (
        "Error: Invalid value for '--selector' / '-l': `owner=me` is not KEY=GLOB with KEY one of name, "
        "dtype, tag"
    )


def test_export_of_a_dtype_without_bundled_schema(cli, tmp_path):
    def mystery_space(handler, body):
        if "/models/" not in handler.path:  # an older server: no datasets or endpoints routes
            return 404, {"detail": "Not Found"}, {}
        return (
            200,
            [
                {
                    "id": "1",
                    "name": "gem",
                    "dtype": "gemini",
                    "summary": "",
                    "tags": "",
                    "configuration": {"access_token": "sk-canary-one-1111", "model": "g"},
                    "created_at": "2026-11-26T00:00:00",
                    "connected_endpoints": [],
                }
            ],
            {},
        )

    with stub_server(mystery_space) as (url, _):
        run = cli("export", "--server", url, "-d", tmp_path / "out")
    assert run.code == 0, run.all
    assert run.err == (
        "warning: model `gem`: dtype `gemini` has no bundled schema, so secrets are recognised by name only "
        "(api_key, password, *_token, *_secret…); review the file before you commit it\n"
    )
    text = (tmp_path / "out" / "gem.yaml").read_text()
    assert "  access_token: ${GEM_ACCESS_TOKEN}\n  model: g\n" in text
    assert_no_canary(run.all, text)


def test_export_errors_are_one_line(cli, tmp_path):
    run = cli("export", "--server", "http://127.0.0.1:9", "--retries", "0", "-d", tmp_path)
    assert run.code == 4 and run.err.startswith("error: cannot connect to http://127.0.0.1:9")
    assert len(run.err.splitlines()) == 1 and "Traceback" not in run.all


# -- schema ----------------------------------------------------------------------------------


def test_schema_prints_the_committed_editor_schema(cli):
    run = cli("schema")
    assert run.code == 0 and run.err == ""
    assert run.out == (SCHEMAS / "editor" / "manifest.schema.json").read_text(encoding="utf-8")


def test_schema_for_one_dtype(cli):
    run = cli("schema", "ollama")
    assert run.code == 0
    schema = json.loads(run.out)
    assert schema["properties"]["dtype"] == {
        "description": "The model type: one of the bundled schemas/<dtype>.json.",
        "const": "ollama",
    }
    assert cli("schema", "--dtype", "ollama").out == run.out


def test_schema_of_an_unknown_dtype(cli):
    run = cli("schema", "opena")
    assert (run.code, run.out) == (1, "")
    assert run.err == (
        "error: unknown dtype `opena`; did you mean `openai`? (known: anthropic, ollama, openai, vllm)\n"
    )
    run = cli("schema", "--dtype", "pull")
    assert run.code == 1 and run.err.startswith("error: unknown dtype `pull`")
    run = cli("schema", "--dtype", "openai", "ollama")
    assert run.code == 64 and run.err.splitlines()[-1] == (
        "Error: give the dtype either as --dtype or as the argument, not both"
    )


@pytest.fixture
def schemas_copy(tmp_path):
    target = tmp_path / "schemas"
    shutil.copytree(SCHEMAS, target)
    return target


# What a pull from the sandbox says of the bundled dataset and policy types: the sandbox publishes
# them as the real server does (no client libraries installed: every dataset type disabled).
KINDS_UNCHANGED = [
    "Dataset types:",
    "  local_file: unchanged (disabled on the server)",
    "  remote_weaviate: unchanged (disabled on the server)",
    "  wordpress: unchanged (disabled on the server)",
    "Policy types:",
    "  access: unchanged",
    "  rate_limit: unchanged",
]


def tree(folder):
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_schema_pull_reproduces_the_bundled_schemas(cli, sandbox, schemas_copy):
    sandbox.reset(SandboxConfig(types=("openai",)))
    before = tree(schemas_copy)
    run = cli("schema", "pull", "--schemas-dir", schemas_copy, "--server", sandbox.url)
    assert run.code == 0, run.all
    assert run.out.splitlines() == [
        "Model types:",
        "  anthropic: not offered by the server; kept",
        "  ollama: not offered by the server; kept",
        "  openai: unchanged",
        "  vllm: not offered by the server; kept",
        *KINDS_UNCHANGED,
        f"Pulled 1 model type(s), 3 dataset type(s), 2 policy type(s) from {sandbox.url}: "
        "0 new, 0 changed, 6 unchanged.",
    ]
    assert tree(schemas_copy) == before

    sandbox.reset(SandboxConfig())
    run = cli("schema", "pull", "--schemas-dir", schemas_copy, "--server", sandbox.url, "-o", "json")
    data = json.loads(run.out)
    assert [(d["dtype"], d["status"]) for d in data["dtypes"]] == [
        ("anthropic", "unchanged"),
        ("ollama", "unchanged"),
        ("openai", "unchanged"),
        ("vllm", "unchanged"),
    ]
    assert data["editor_schema"] is None and tree(schemas_copy) == before


def test_schema_pull_reports_and_rewrites_a_modified_schema(cli, sandbox, schemas_copy):
    sandbox.reset(SandboxConfig(types=("openai",)))
    path = schemas_copy / "openai.json"
    bundled = path.read_text(encoding="utf-8")
    local = json.loads(bundled)
    del local["properties"]["system_prompt"]
    local["properties"]["model"]["default"] = "gpt-4o"
    local["properties"]["organization"] = {"type": "string"}
    path.write_text(json.dumps(local, indent=2) + "\n")
    (schemas_copy / "editor" / "manifest.schema.json").write_text("{}\n")
    modified = path.read_text()

    run = cli("schema", "pull", "--schemas-dir", schemas_copy, "--server", sandbox.url, "--dry-run")
    assert run.code == 0, run.all
    expected = [
        "Model types:",
        "  anthropic: not offered by the server; kept",
        "  ollama: not offered by the server; kept",
        f"  openai: changed; would write {path}",
        "    + system_prompt (string)",
        "    - organization",
        '    ~ model.default: "gpt-4o" → "gpt-3.5-turbo"',
        "  vllm: not offered by the server; kept",
        *KINDS_UNCHANGED,
        f"editor schema: would write {schemas_copy / 'editor' / 'manifest.schema.json'}",
        f"Pulled 1 model type(s), 3 dataset type(s), 2 policy type(s) from {sandbox.url}: "
        "0 new, 1 changed, 5 unchanged. Dry run: nothing was written.",
    ]
    assert run.out.splitlines() == expected
    assert path.read_text() == modified

    run = cli("schema", "pull", "--schemas-dir", schemas_copy, "--server", sandbox.url)
    assert run.code == 0
    assert run.out.splitlines() == [line.replace("would write", "wrote") for line in expected[:-1]] + [
        f"Pulled 1 model type(s), 3 dataset type(s), 2 policy type(s) from {sandbox.url}: "
        "0 new, 1 changed, 5 unchanged."
    ]
    assert path.read_text() == bundled
    assert (schemas_copy / "editor" / "manifest.schema.json").read_bytes() == (
        SCHEMAS / "editor" / "manifest.schema.json"
    ).read_bytes()


def test_schema_pull_adds_a_new_dtype(cli, sandbox, schemas_copy):
    (schemas_copy / "vllm.json").unlink()
    run = cli("schema", "pull", "--schemas-dir", schemas_copy, "--server", sandbox.url)
    assert run.code == 0, run.all
    assert f"  vllm: new; wrote {schemas_copy / 'vllm.json'}" in run.out.splitlines()
    assert "    + api_key (string, secret)" in run.out.splitlines()
    pulled = json.loads((schemas_copy / "vllm.json").read_text())
    bundled = json.loads((SCHEMAS / "vllm.json").read_text())
    assert pulled["properties"] == bundled["properties"] and pulled["additionalProperties"] is False
    assert pulled["title"] == "vllm"
    # the folder is a valid schemas/ again: validate with it reads the new dtype
    assert "vllm" in json.loads((schemas_copy / "editor" / "manifest.schema.json").read_text())["definitions"]


def test_schema_pull_needs_a_folder(cli, sandbox, tmp_path):
    run = cli("schema", "pull", "--schemas-dir", tmp_path / "nope", "--server", sandbox.url)
    assert run.code == 1
    assert run.err == f"error: {tmp_path / 'nope'} is not a folder; create it or pass --schemas-dir\n"


# -- the pre-commit hook and the CI recipe cannot rot ---------------------------------------


def parses(command_line):
    """Parse `syft-reconciler SUB ARGS…` with the real click commands (nothing runs)."""
    words = shlex.split(command_line.split(">")[0])
    assert words[0] == "syft-reconciler", command_line
    group = cli_group
    ctx = click.Context(group, info_name="syft-reconciler")
    args = words[1:]
    command = group.get_command(ctx, args[0])
    assert command is not None and not isinstance(command, click.Group), command_line
    command.make_context(args[0], args[1:], parent=ctx)  # raises on an unknown option or bad value
    return args[0]


def test_pre_commit_hook_runs_an_existing_command():
    hooks = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    (hook,) = hooks
    assert hook["id"] == "syft-reconciler-validate" and hook["language"] == "python"
    assert hook["pass_filenames"] is False and hook["files"] == r"\.(ya?ml)$"
    assert parses(hook["entry"] + " " + " ".join(hook.get("args", []))) == "validate"
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert 'syft-reconciler = "reconciler.cli:run"' in pyproject  # the entry's executable


def workflow_commands():
    workflow = yaml.safe_load((ROOT / "examples" / "ci" / "github-actions.yaml").read_text())
    commands = []
    for job in workflow["jobs"].values():
        for step in job["steps"]:
            commands += [
                line.strip()
                for line in step.get("run", "").splitlines()
                if line.strip().startswith("syft-reconciler")
            ]
    return commands


def test_the_ci_recipe_runs_the_readme_commands_and_they_parse():
    commands = workflow_commands()
    assert [parses(c) for c in commands] == ["validate", "plan", "apply"]
    assert "--output markdown" in commands[1] and "--out plan.json" in commands[1]
    assert commands[2] == "syft-reconciler apply plan.json"  # exactly the reviewed plan, or nothing
    readme = (ROOT / "README.md").read_text()
    for command in commands:
        assert command in readme, f"README does not show `{command}`"


def test_the_ci_recipe_runs_on_push_pull_request_and_merge():
    workflow = yaml.safe_load((ROOT / "examples" / "ci" / "github-actions.yaml").read_text())
    triggers = workflow[True]  # YAML 1.1 reads the key `on` as true
    assert set(triggers) == {"push", "pull_request"}
    assert "closed" in triggers["pull_request"]["types"]
    jobs = workflow["jobs"]
    assert jobs["validate"]["if"] == "github.event_name == 'push'"
    assert jobs["plan"]["if"] == "github.event_name == 'pull_request' && github.event.action != 'closed'"
    assert jobs["apply"]["if"] == (
        "github.event_name == 'pull_request' && github.event.action == 'closed' && github.event.pull_request.merged"
    )
    # the artifact the plan job uploads is the one the apply job downloads
    uploaded = next(
        s for s in jobs["plan"]["steps"] if s.get("uses", "").startswith("actions/upload-artifact")
    )
    downloaded = next(s for s in jobs["apply"]["steps"] if "download-artifact" in s.get("uses", ""))
    assert uploaded["with"]["name"] == downloaded["with"]["name"] and uploaded["with"]["path"] == "plan.json"
    # ... from the run that uploaded it (GitHub's own actions and the runner's gh only)
    (finder,) = [s for s in jobs["apply"]["steps"] if s.get("id") == "planned"]
    assert (
        finder["env"]["PLAN"] == uploaded["with"]["name"] and "actions/artifacts?name=$PLAN" in finder["run"]
    )
    assert downloaded["with"]["run-id"] == "${{ steps.planned.outputs.run-id }}"
    # a plan apply would refuse fails the pull request's check (plan exits 11), and is still posted,
    # as one comment edited on each push
    (comment,) = [s for s in jobs["plan"]["steps"] if "gh pr comment" in s.get("run", "")]
    assert comment["if"] == "always()"
    assert comment["run"].split() == [
        "gh",
        "pr",
        "comment",
        '"$PR"',
        "--body-file",
        "plan.md",
        "--edit-last",
        "--create-if-none",
    ]


def test_the_recipes_plan_step_fails_where_its_apply_would(
    cli, manifest_dir, sandbox, api, tmp_path, monkeypatch
):
    """The plan job's own command, on a plan that apply would refuse: the markdown is written whole
    and the step fails (exit 11); on a plan apply would carry out it passes."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-recipe")
    root = manifest_dir({f"m{i}.yaml": model_yaml(f"m{i}") for i in range(3)})
    assert cli("apply", root, "--server", sandbox.url, "--owner", "team").code == 0
    for i in range(3):
        (root / f"m{i}.yaml").write_text(model_yaml(f"m{i}", model="gpt-4o-mini"))
    args = ("--server", sandbox.url, "--owner", "team", "--out", "plan.json", "--output", "markdown")
    run = cli("plan", root, *args, "--replace-all")
    assert run.code == 11 and "Apply would refuse this plan" in run.out and (tmp_path / "plan.json").exists()
    run = cli("plan", root, *args, "--replace-all", "--max-delete", "3")
    assert run.code == 0, run.all
