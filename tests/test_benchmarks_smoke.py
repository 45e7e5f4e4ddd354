"""The benchmark script runs at tiny N, so it cannot rot. It asserts no timings."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.timeout(300)
def test_benchmark_table_runs_quick():
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "run.py"), "--quick"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("Machine: ")
    for what in (
        "validate N=20",
        "no-op plan N=20",
        "sandbox raw POST ceiling",
        "apply N=20 p=1 latency=0ms",
        "baseline: sequential script latency=0ms",
        "apply p=4 as a share of the raw ceiling",
    ):
        assert any(line.strip().startswith(what) for line in lines), what
    assert any("2 HTTP requests" in line for line in lines)  # one list + one types, whatever N


@pytest.mark.timeout(300)
def test_watch_footprint_runs_at_tiny_n():
    """benchmarks/watch_footprint.py sizes deploy/'s resources; it must keep running."""
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "watch_footprint.py"),
            "--models",
            "20",
            "--rounds",
            "1",
            "--resync",
            "0.5",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = [line.strip() for line in done.stdout.splitlines()]
    assert lines[2] == "20 models"
    for what in (
        "RSS at start",
        "first round (create all)",
        "no-op resync round",
        "idle between rounds",
        "average CPU at the default 60 s resync",
        "one edited file",
    ):
        assert any(line.startswith(what) for line in lines), what


TINY_SPACES = ("--spaces", "3", "--models", "2", "--saves", "2", "--resync", "1")


@pytest.mark.timeout(120)
def test_spaces_benchmark_runs_at_tiny_n():
    """benchmarks/spaces.py (issue 17's figures) must keep running; it asserts no timings."""
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "spaces.py"), *TINY_SPACES],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    for what in (
        "first apply over all spaces:",
        "no-op apply over all spaces:",
        "peak RSS of the apply process:",
        "first apply:",
        "no-op resync round over all spaces:",
        "change → server in one space, 2 saves: median",
        "peak RSS of the watch process (VmHWM):",
    ):
        assert any(line.strip().startswith(what) for line in done.stdout.splitlines()), what


@pytest.mark.timeout(120)
def test_apply_output_benchmark_runs_at_tiny_n():
    """benchmarks/apply_output.py (issue 16's before/after figures) must keep running."""
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "apply_output.py"), "--models", "60"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "apply of 60 new models through a pipe: exit 0" in out
    assert "apply of 60 new models on a terminal: exit 0" in out and "colour (SGR escapes): yes" in out
    assert "Ctrl-C once 3 of 60 models exist (latency 20 ms, -p 2): exit 130" in out


@pytest.mark.timeout(120)
def test_space_kinds_benchmark_runs_at_tiny_n_and_counts_requests_per_route():
    """benchmarks/space_kinds.py (a whole space) must keep running; its counts are exact."""
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "space_kinds.py"), "--scale", "0.02", "--latency-ms", "0"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = [line.split() for line in done.stdout.splitlines()]
    # 4 models, 1 dataset, 4 endpoints, 8 policies: their creates, one list per kind and the types
    routes = {f"{line[0]} {line[1]}": int(line[2]) for line in lines if len(line) == 3 and line[1][0] == "/"}
    assert routes == {
        "GET /datasets/": 1,
        "POST /datasets/": 1,
        "GET /endpoints/": 1,
        "POST /endpoints/": 4,
        "GET /models/": 1,
        "POST /models/": 4,
        "GET /models/types/": 1,
        "GET /policies/": 1,
        "POST /policies/": 8,
    }
    assert [
        "requests",
        "of",
        "that",
        "apply:",
        "22",
        "(sequential",
        "script:",
        "17,",
        "one",
        "POST",
        "each)",
    ] in lines
    assert any(line[:3] == ["ours", "vs", "sequential:"] for line in lines)
