"""One repository, two spaces: --var-file per environment, through the CLI."""

MANIFEST = """kind: Model
name: chat-${var:ENV}
dtype: ollama
configuration:
  model: llama3.2
  base_url: ${var:OLLAMA_URL}
  num_ctx: ${var:CTX}
summary: chat for ${var:ENV}
"""


def test_staging_and_production_from_one_folder(cli, manifest_dir, sandbox, api, tmp_path):
    root = manifest_dir({"chat.yaml": MANIFEST})
    staging = tmp_path / "staging.yaml"
    staging.write_text("ENV: staging\nOLLAMA_URL: http://ollama-staging:11434\nCTX: 4096\n")
    production = tmp_path / "production.yaml"
    production.write_text("ENV: production\nOLLAMA_URL: http://ollama:11434\nCTX: 16384\n")
    assert cli("validate", root, "--var-file", staging).code == 0
    # one server for both here: each environment its own owner, so neither is the other's to prune
    assert cli("apply", root, "--var-file", staging, "--server", sandbox.url, "--owner", "staging").code == 0
    assert (
        cli("apply", root, "--var-file", production, "--server", sandbox.url, "--owner", "production").code
        == 0
    )
    models = {m["name"]: m for m in api.get("/models/").json()}
    assert sorted(models) == ["chat-production", "chat-staging"]
    assert models["chat-staging"]["configuration"]["num_ctx"] == 4096  # typed, not "4096"
    assert models["chat-production"]["summary"] == "chat for production"
    run = cli(
        "plan",
        root,
        "--var-file",
        staging,
        "--server",
        sandbox.url,
        "--owner",
        "staging",
        "--detailed-exitcode",
    )
    assert run.code == 0, run.all


def test_missing_variable_and_bad_var_file(cli, manifest_dir, tmp_path):
    root = manifest_dir({"chat.yaml": MANIFEST})
    run = cli("validate", root)
    assert run.code == 1
    assert run.err.splitlines()[0] == (
        f"{root}/chat.yaml:2:7: name: unknown variable `ENV` (defined: none: pass --var-file FILE)"
    )
    bad = tmp_path / "bad.yaml"
    bad.write_text("ENV: [a, b]\n")
    run = cli("validate", root, "--var-file", bad)
    assert run.code == 1
    assert run.err.splitlines()[0] == f"{bad}:1:6: ENV: a variable must be a string, number or boolean"
