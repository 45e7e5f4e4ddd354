"""The real daemon's incremental rounds come out as full rounds: seeded random edits (the same
`Edits` as tests/test_watch_incremental.py) go to a `watch` subprocess on one sandbox and, step
by step, through `apply` (a full round) on a second one; the two servers must then hold the same
objects. Nothing sleeps a fixed time: each step polls the two servers until they agree."""

import time

import pytest

from reconciler.sandbox import SandboxConfig, SandboxServer
from tests.test_watch_incremental import KEY, WEAVIATE, Edits, server_state

from .conftest import DEADLINE_S

STEPS = 8


@pytest.fixture
def second_sandbox():
    with SandboxServer() as server:
        server.reset(SandboxConfig())
        yield server


def disagree(first: str, second: str) -> str:
    """'' once the two servers hold the same objects; what differs at the deadline."""
    deadline = time.monotonic() + DEADLINE_S
    while True:
        mine, theirs = server_state(first), server_state(second)
        if mine == theirs:
            return ""
        if time.monotonic() > deadline:
            return "\n".join(f"{k}:\n  {mine[k]}\n  {theirs[k]}" for k in mine if mine[k] != theirs[k])
        time.sleep(0.05)


@pytest.mark.parametrize("seed", [101, 202])
def test_the_daemon_leaves_the_server_as_apply_does_after_every_edit(
    seed, tmp_path, sandbox, second_sandbox, cli, daemons, monkeypatch
):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("WEAVIATE_KEY", WEAVIATE)
    root, var_file = tmp_path / "space", tmp_path / "vars.yaml"
    root.mkdir()
    edits = Edits(root, var_file, seed)
    flags = ["--owner", "team-a", "--prune", "--replace-all", "--var-file", str(var_file)]
    daemon = daemons(
        root,
        "--server",
        sandbox.url,
        "--resync-interval",
        "600",
        *flags,
        cwd=tmp_path,
        env={"OPENAI_API_KEY": KEY, "WEAVIATE_KEY": WEAVIATE},
    )
    daemon.wait_for("the first round", event="round", trigger="startup", status="ok")
    daemon.wait_for("the watcher", event="round", trigger="resync")
    assert cli("apply", root, "--server", second_sandbox.url, *flags).code == 0
    for step in range(STEPS):
        edits.step()
        cli("apply", root, "--server", second_sandbox.url, *flags)
        differs = disagree(sandbox.url, second_sandbox.url)
        assert not differs, f"seed {seed}, step {step}:\n{differs}\n{daemon.log}"
    files = [e for e in daemon.events if e.get("event") == "round" and e.get("trigger") == "files"]
    assert files and any(e["kept_view"] for e in files)  # planned without listing the server
    assert KEY not in daemon.log and WEAVIATE not in daemon.log and "Traceback" not in daemon.log
