"""Shell completion through click's real protocol, in subprocesses: `completion SHELL` prints the
script; `--target` completes the manifests' names and `--space` the project file's spaces, from
local files only, and a broken manifest or project file never makes a Tab press print anything."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def program(tmp_path: Path) -> Path:
    """A `syft-reconciler` on PATH that runs this checkout's code."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    exe = bin_dir / "syft-reconciler"
    exe.write_text(f'#!/bin/sh\nexec {sys.executable} -m reconciler "$@"\n')
    exe.chmod(0o755)
    return bin_dir


def environment(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SYFT_", "_SYFT"))}
    env["PATH"] = f"{program(tmp_path)}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH", "")]))
    env.update(extra)
    return env


def complete(cwd: Path, tmp_path: Path, *words: str, shell: str = "bash") -> subprocess.CompletedProcess[str]:
    """One Tab press after `words` (the last one is the word being typed), as the script asks."""
    line = ["syft-reconciler", *words]
    env = environment(
        tmp_path,
        _SYFT_RECONCILER_COMPLETE=f"{shell}_complete",
        COMP_WORDS=" ".join(line),
        COMP_CWORD=str(len(line) - 1),
    )
    argv = [sys.executable, "-m", "reconciler"]
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=60)


def values(done: subprocess.CompletedProcess[str]) -> list[str]:
    assert done.returncode == 0 and done.stderr == "", done.stderr
    return [line.split(",", 1)[1] for line in done.stdout.splitlines() if line]


@pytest.fixture
def repo(tmp_path):
    """A checkout with two spaces, one manifest folder each, a broken manifest and a listening port
    as both spaces' server (to see that completion never connects)."""
    root = tmp_path / "repo"
    (root / ".git").mkdir(parents=True)
    (root / "acme").mkdir()
    (root / "globex").mkdir()
    (root / "acme" / "m.yaml").write_text(
        "kind: Model\nname: gpt-4o\ndtype: openai\nconfiguration: {model: gpt-4o}\n---\n"
        "kind: Endpoint\nslug: support-bot\nname: Bot\nmodel: gpt-4o\n---\n"
        "kind: Model\nname: chat-${var:ENV}\ndtype: openai\n"
    )
    (root / "globex" / "d.yaml").write_text("kind: Dataset\nname: handbook\ndtype: local_file\n")
    (root / "globex" / "broken.yaml").write_text("kind: Model\nname: [unclosed\n")
    listener = socket.create_server(("127.0.0.1", 0))
    listener.setblocking(False)
    url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    (root / "syft-reconciler.yaml").write_text(
        "owner: team\nspaces:\n"
        f"  - name: acme-prod\n    server: {url}\n    tenant: acme\n    token: ${{T}}\n    paths: [acme]\n"
        f"  - name: globex\n    server: {url}\n    tenant: globex\n    token: ${{T}}\n    paths: [globex]\n"
    )
    yield root
    with pytest.raises(BlockingIOError):
        listener.accept()  # nobody connected
    listener.close()


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_the_completion_command_prints_the_script(tmp_path, shell):
    done = subprocess.run(
        [sys.executable, "-m", "reconciler", "completion", shell],
        env=environment(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert f"_SYFT_RECONCILER_COMPLETE={shell}_complete" in done.stdout
    assert "Traceback" not in done.stderr


def test_an_unknown_shell_is_a_usage_error(cli):
    run = cli("completion", "zsh")
    assert run.code == 0 and "#compdef syft-reconciler" in run.out
    run = cli("completion", "tcsh")
    assert run.code == 64 and "'tcsh' is not one of 'bash', 'zsh', 'fish'" in run.err


def test_target_completes_the_manifest_names_of_every_space(repo, tmp_path):
    assert values(complete(repo, tmp_path, "plan", "--target", "")) == ["gpt-4o", "handbook", "support-bot"]
    assert values(complete(repo / "acme", tmp_path, "apply", "--target", "s")) == ["support-bot"]
    assert values(complete(repo, tmp_path, "watch", "--target", "zz")) == []
    # PATHS on the command line are the manifests
    assert values(complete(tmp_path, tmp_path, "plan", str(repo / "globex"), "--target", "")) == ["handbook"]
    # fish passes the word being completed itself as COMP_CWORD
    env = environment(
        tmp_path,
        _SYFT_RECONCILER_COMPLETE="fish_complete",
        COMP_WORDS=f"syft-reconciler plan {repo / 'acme'} --target g",
        COMP_CWORD="g",
    )
    fish = subprocess.run(
        [sys.executable, "-m", "reconciler"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert fish.returncode == 0 and fish.stdout.splitlines() == ["plain,gpt-4o"], fish.stderr
    # zsh speaks another format over the same protocol
    zsh = complete(repo, tmp_path, "plan", "--target", "h", shell="zsh")
    assert zsh.returncode == 0 and zsh.stdout.splitlines() == ["plain", "handbook", "_"]


def test_space_completes_the_project_file_spaces(repo, tmp_path):
    assert values(complete(repo, tmp_path, "apply", "--space", "")) == ["acme-prod", "globex"]
    assert values(complete(repo, tmp_path, "plan", "--space", "g")) == ["globex"]
    config = repo / "syft-reconciler.yaml"
    assert values(complete(tmp_path, tmp_path, "validate", "--config", str(config), "--space", "a")) == [
        "acme-prod"
    ]


def test_a_broken_project_file_completes_nothing_and_says_nothing(repo, tmp_path):
    (repo / "syft-reconciler.yaml").write_text("owner: team\nspaces: [{name: x, token: literal}]\nbogus: 1\n")
    assert values(complete(repo, tmp_path, "apply", "--space", "")) == []
    (repo / "manifests").mkdir()
    (repo / "manifests" / "m.yaml").write_text("kind: Model\nname: fallback\n")
    assert values(complete(repo, tmp_path, "apply", "--target", "")) == ["fallback"]
    (repo / "syft-reconciler.yaml").write_bytes(b"\xff\xfe not yaml")
    assert values(complete(repo, tmp_path, "apply", "--space", "")) == []


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash is not installed")
def test_bash_itself_completes_through_the_printed_script(repo, tmp_path):
    script = (
        "source <(syft-reconciler completion bash); COMP_WORDS=(syft-reconciler plan --target g); "
        'COMP_CWORD=3; _syft_reconciler_completion syft-reconciler; printf "%s\\n" "${COMPREPLY[@]}"'
    )
    done = subprocess.run(
        ["bash", "-c", script],
        cwd=repo,
        env=environment(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0 and done.stderr == "", done.stderr
    assert done.stdout.split() == ["gpt-4o"]


def test_the_same_protocol_in_process(repo, tmp_path, monkeypatch, capsys):
    """The callbacks measured where coverage sees them: click's protocol through `main()`."""
    from reconciler.cli import main

    def tab(*words: str, shell: str = "bash", where: str | None = None) -> list[str]:
        line = ["syft-reconciler", *words]
        monkeypatch.setenv("_SYFT_RECONCILER_COMPLETE", f"{shell}_complete")
        monkeypatch.setenv("COMP_WORDS", " ".join(line))
        monkeypatch.setenv("COMP_CWORD", where if where is not None else str(len(line) - 1))
        assert main([]) == 0
        out, err = capsys.readouterr()
        assert err == ""
        return [w.split(",", 1)[1] for w in out.splitlines() if w]

    monkeypatch.chdir(repo)
    assert tab("plan", "--target", "") == ["gpt-4o", "handbook", "support-bot"]
    assert tab("--debug", "apply", str(repo / "acme"), "--target", "") == ["gpt-4o", "support-bot"]
    assert tab("plan", str(repo / "globex"), "--target", "h", shell="fish", where="h") == ["handbook"]
    assert tab("apply", "--space", "") == ["acme-prod", "globex"]
    monkeypatch.chdir(tmp_path)
    assert tab("plan", "--config", str(repo / "syft-reconciler.yaml"), "--space", "g") == ["globex"]
    assert tab("plan", "--target", "") == []  # no project, no manifests/ here
    (repo / "syft-reconciler.yaml").write_text("spaces: 3\n")
    assert tab("plan", "--config", str(repo / "syft-reconciler.yaml"), "--target", "") == []
    assert tab("plan", "--config", str(repo / "syft-reconciler.yaml"), "--space", "") == []
    assert tab("plan", "--max-delete", "x", "--target", "") == []
