"""validate --online: the server's own types are the authority; skew with schemas/ is reported."""

import json

from reconciler.sandbox import SandboxConfig

from .conftest import model_yaml

OLLAMA = "kind: Model\nname: local\ndtype: ollama\nconfiguration:\n  model: llama3\n"


def test_online_refuses_types_the_server_lacks(cli, manifest_dir, sandbox):
    sandbox.reset(SandboxConfig(types=("openai",)))
    root = manifest_dir({"a.yaml": model_yaml("a"), "local.yaml": OLLAMA})
    assert cli("validate", root).code == 0  # offline: the bundled schemas know ollama
    run = cli("validate", root, "--online", "--server", sandbox.url)
    assert run.code == 1
    assert run.err.splitlines()[0] == (
        f"{root}/local.yaml:3:8: dtype: the server {sandbox.url} does not offer dtype `ollama` (it offers: openai)"
    )
    assert sandbox.stats() == {"GET /api/v1/models/types/": 1}


def test_online_ok_and_no_skew_against_the_sandbox(cli, manifest_dir, sandbox):
    root = manifest_dir({"a.yaml": model_yaml("a")})
    run = cli("validate", root, "--online", "--server", sandbox.url, "-o", "json")
    assert run.code == 0, run.all
    data = json.loads(run.out)
    assert data["valid"] is True and data["schema_skew"] == []
    run = cli("validate", root, "--online", "--server", sandbox.url)
    assert "are valid (and against the server's types)." in run.out


def test_online_reports_skew(cli, manifest_dir, sandbox, monkeypatch):
    from reconciler.sandbox import bundled

    # The server publishes a newer openai type: our bundled copy lacks a field it has.
    real = bundled.published_model_schema

    def newer(schema):
        out = real(schema)
        if schema.get("title") == "OpenAI":
            out = {**out, "properties": {**out["properties"], "organization": {"type": "string"}}}
        return out

    monkeypatch.setattr("reconciler.sandbox.bundled.published_model_schema", newer)
    sandbox.reset(SandboxConfig(types=("openai",)))
    root = manifest_dir({"a.yaml": model_yaml("a")})
    run = cli("validate", root, "--online", "--server", sandbox.url)
    assert run.code == 0
    assert (
        "warning: schemas/openai.json differs from the server's `openai`: server adds `organization` "
        "(run `schema pull`)"
    ) in run.err
