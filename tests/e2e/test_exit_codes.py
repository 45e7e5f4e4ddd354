"""One test per exit code in the README table, through the CLI: scripts branch on these."""

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from reconciler.sandbox import SandboxConfig

from .conftest import model_yaml, seed_model

ROOT = Path(__file__).resolve().parents[2]
KEY = "sk-canary-exit-codes-8e2a"


@pytest.fixture(autouse=True)
def _key(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)


def readme_codes():
    table = ROOT.joinpath("README.md").read_text().split("### Exit codes", 1)[1].split("###", 1)[0]
    return sorted(int(m) for m in re.findall(r"^\| (\d+) \|", table, re.M))


def test_the_readme_table_is_the_set_tested_here():
    assert readme_codes() == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 64, 130, 143]


def test_0_1_2_and_the_summary_line(cli, manifest_dir, sandbox):
    root = manifest_dir({"a.yaml": model_yaml("a")})
    run = cli("plan", root, "--server", sandbox.url, "--detailed-exitcode")
    assert run.code == 2  # changes pending
    run = cli("apply", root, "--server", sandbox.url)
    assert run.code == 0 and run.out.splitlines()[-1] == "Apply complete: 1 created, 0 in sync."
    assert cli("plan", root, "--server", sandbox.url, "--detailed-exitcode").code == 0
    (root / "b.yaml").write_text("kind: Model\nname: b\n")
    assert cli("validate", root).code == 1


def test_3_an_unexpected_error_is_one_line(cli, manifest_dir, sandbox, monkeypatch):
    from reconciler import round

    def boom(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(round, "plan_against", boom)
    run = cli("plan", manifest_dir({"a.yaml": model_yaml("a")}), "--server", sandbox.url)
    assert run.code == 3 and "unexpected error: RuntimeError: a bug" in run.err and "Traceback" not in run.all


def test_4_unreachable(cli, manifest_dir):
    run = cli(
        "plan", manifest_dir({"a.yaml": model_yaml("a")}), "--server", "http://127.0.0.1:9", "--retries", "0"
    )
    assert run.code == 4


def test_5_auth_and_8_tenant(cli, manifest_dir, sandbox_factory):
    server = sandbox_factory(token="right", multi_tenancy=True)
    root = manifest_dir({"a.yaml": model_yaml("a")})
    assert cli("plan", root, "--server", server.url, "--token", "wrong", "--tenant", "root").code == 5
    assert cli("plan", root, "--server", server.url, "--token", "right", "--tenant", "nobody").code == 8


def test_6_server_error(cli, manifest_dir, sandbox_factory):
    server = sandbox_factory(SandboxConfig(fail_503_rate=1.0))
    run = cli("plan", manifest_dir({"a.yaml": model_yaml("a")}), "--server", server.url, "--retries", "0")
    assert run.code in (4, 6) and "503" in run.err  # 503 after the retries: a server error, or unavailable
    assert run.code == 6


def test_7_conflict_and_the_summary_does_not_say_complete(cli, manifest_dir, sandbox, api):
    seed_model(api, "a", owned=False, summary="by hand", key=KEY)
    run = cli("apply", manifest_dir({"a.yaml": model_yaml("a")}), "--server", sandbox.url)
    assert run.code == 7
    assert run.out.splitlines()[-1] == "Apply finished with conflicts: 0 in sync, 1 in conflict, not touched."


def test_9_locked_10_stale_and_11_refused(cli, manifest_dir, sandbox, tmp_path):
    from reconciler.lock import space_lock
    from reconciler.project import lock_key, resolve_instance

    root = manifest_dir({"a.yaml": model_yaml("a")})
    with space_lock(resolve_instance([root]).home, lock_key(sandbox.url, None), command="watch"):
        assert cli("apply", root, "--server", sandbox.url).code == 9
    saved = tmp_path / "plan.json"
    assert cli("plan", root, "--server", sandbox.url, "--out", saved).code == 0
    (root / "a.yaml").write_text(model_yaml("a", summary="changed"))
    assert cli("apply", saved, "--server", sandbox.url).code == 10
    assert cli("apply", root / "a.yaml", "--server", sandbox.url, "--prune", "--owner", "o").code == 11


@pytest.mark.parametrize(
    "args",
    [
        ["plan", "--bogus"],
        ["plan", "--detailed-exitcode", "--bogus"],  # never 2, the code for "changes pending"
        ["apply", "--sandbox", "--server", "http://127.0.0.1:9"],
        ["plan", "--max-delete", "lots"],
    ],
)
def test_64_usage(cli, manifest_dir, args):
    run = cli(*args[:1], manifest_dir({"a.yaml": model_yaml("a")}), *args[1:])
    assert run.code == 64, run.all


def test_130_and_143_interrupted(manifest_dir, sandbox_factory):
    server = sandbox_factory(SandboxConfig(latency_ms=200))
    root = manifest_dir({f"m{i}.yaml": model_yaml(f"m{i}") for i in range(40)})
    env = {"OPENAI_API_KEY": KEY, "PATH": "/usr/bin:/bin"}
    for sig, code in ((signal.SIGINT, 130), (signal.SIGTERM, 143)):
        before = server.model_count()
        proc = subprocess.Popen(
            [sys.executable, "-m", "reconciler", "apply", str(root), "--server", server.url, "-p", "1"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout.readline().startswith("Plan for")
        deadline = time.monotonic() + 20
        while server.model_count() <= before and time.monotonic() < deadline:  # under way
            time.sleep(0.01)
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=25)
        assert proc.returncode == code, out + err
        assert "Apply interrupted" in out


def test_every_problem_in_one_run_each_once(cli, manifest_dir):
    root = manifest_dir(
        {
            "a.yaml": """kind: model
name: "a/b"
dtype: opneai
configuration:
  model: x
---
kind: Model
name: two-unknown
dtype: openai
configuration:
  api_key: ${OPENAI API KEY}
  model: gpt-4o
  colour: red
  flavour: sweet
tags: 5
"""
        }
    )
    run = cli("validate", root)
    lines = [line.removeprefix(f"{root}/") for line in run.err.splitlines()]
    assert run.code == 1 and lines == [
        "a.yaml:1:7: kind: must be `Model`, `Dataset` or `Endpoint`, got 'model'; did you mean `Model`? "
        "(kinds are case-sensitive)",
        "a.yaml:2:7: name: must not contain `/` (the server could never read, patch or delete it)",
        "a.yaml:3:8: dtype: unknown dtype `opneai`; did you mean `openai`? (known: anthropic, ollama, openai, vllm)",
        "a.yaml:11:12: configuration.api_key: `${OPENAI API KEY}` is not a valid variable name (letters, digits, _)",
        "a.yaml:13:3: configuration.colour: unknown setting (known: api_key, base_url, model, system_prompt)",
        "a.yaml:14:3: configuration.flavour: unknown setting (known: api_key, base_url, model, system_prompt)",
        "a.yaml:15:7: tags: must be a list of strings or one comma-separated string, got an integer",
        "error: 7 problem(s) in the manifests; nothing was written",
    ]  # no duplicate, and the malformed reference is not also "a literal secret"


def test_quiet_prints_only_problems_and_the_summary(cli, manifest_dir, sandbox, api):
    seed_model(api, "taken", owned=False, summary="by hand", key=KEY)
    root = manifest_dir(
        {"a.yaml": model_yaml("a"), "b.yaml": model_yaml("b"), "taken.yaml": model_yaml("taken")}
    )
    run = cli("apply", root, "--server", sandbox.url, "--quiet")
    assert run.code == 7
    assert run.out.splitlines() == [
        "conflict model taken: exists on the server, differs, and was not created by the reconciler; "
        "pass --adopt to take it over",
        "Apply finished with conflicts: 2 created, 0 in sync, 1 in conflict, not touched.",
    ]
