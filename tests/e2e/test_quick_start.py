"""README's quick start, word for word, in a fresh clone: the example space of manifests/ (models,
a dataset, two endpoints with their policies) applied to the sandbox through the real CLI in a
subprocess, in sync on the second run, and nothing of the tool's state left for `git add -A`."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def quick_start_commands() -> list[str]:
    """The commands of README's quick start block, comments cut."""
    text = (REPO / "README.md").read_text()
    section = text.split("## Quick start", 1)[1]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block is not None
    return [line.split("#", 1)[0].strip() for line in block.group(1).splitlines() if line.strip()]


def git(clone: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=clone, capture_output=True, text=True, timeout=30, check=True)
    return done.stdout


def fresh_clone(tmp_path: Path) -> Path:
    """A git repository holding a copy of manifests/ and README.md, committed."""
    clone = tmp_path / "clone"
    clone.mkdir()
    shutil.copytree(REPO / "manifests", clone / "manifests")
    shutil.copy(REPO / "README.md", clone / "README.md")
    git(clone, "init", "-q")
    git(clone, "add", "-A")
    git(clone, "-c", "user.name=t", "-c", "user.email=t@example.org", "commit", "-q", "-m", "clone")
    return clone


def run(clone: Path, command: str) -> subprocess.CompletedProcess[str]:
    """`syft-reconciler …` as `python -m reconciler …`, without any key or server in the environment."""
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY") and not k.startswith("SYFT_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH", "")]))  # this checkout
    words = command.split()
    assert words[0] == "syft-reconciler"
    argv = [sys.executable, "-m", "reconciler", *words[1:]]
    return subprocess.run(argv, cwd=clone, env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.timeout(90)  # three CLI processes, each starting the sandbox (about 1.2 s each when idle)
def test_the_quick_start_applies_the_whole_example_space_and_leaves_git_clean(tmp_path):
    commands = quick_start_commands()
    assert commands == ["pip install -e '.[test]'", "syft-reconciler apply manifests/ --sandbox"]
    clone = fresh_clone(tmp_path)

    first = run(clone, commands[1])
    assert first.returncode == 0, first.stderr
    for line in (
        "created  model gpt-4o",
        "created  dataset handbook",
        "created  endpoint support-bot",
        "created  endpoint handbook-search",
        "created  policy support-bot/staff-only",
        "created  policy support-bot/per-user",
        "created  policy handbook-search/staff-only",
        "created  policy handbook-search/shared-limit",
    ):
        assert line in first.stdout.splitlines()
    assert first.stdout.splitlines()[-1] == "Apply complete: 13 created, 0 in sync."
    assert "Traceback" not in first.stderr and "error" not in first.stderr

    second = run(clone, commands[1])
    assert second.returncode == 0 and second.stdout.splitlines()[-1] == "Apply complete: 13 in sync."
    plan = run(clone, "syft-reconciler plan manifests/ --sandbox --output json --detailed-exitcode")
    assert plan.returncode == 0, plan.stderr
    data = json.loads(plan.stdout)
    assert data["in_sync"] is True
    assert {kind: counts["noop"] for kind, counts in data["summary_by_kind"].items()} == {
        "Model": 6,
        "Dataset": 1,
        "Endpoint": 2,
        "Policy": 4,
    }

    # The tool's state is in .syft-space/, which ignores itself: git sees nothing new.
    state = clone / ".syft-space"
    assert (state / ".gitignore").read_text().splitlines()[-1] == "*"
    assert oct((state / "sandbox.db").stat().st_mode & 0o777) == "0o600"
    assert [p.name for p in state.glob("syft-reconciler-*.lock")] != []
    assert [p.name for p in clone.glob(".syft-reconciler*")] == []
    assert git(clone, "status", "--porcelain", "--untracked-files=all") == ""
    git(clone, "add", "-A")
    assert git(clone, "diff", "--cached", "--name-only") == ""
