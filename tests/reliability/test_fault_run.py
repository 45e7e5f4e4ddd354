"""The 2,000-create fault run of issue 6, at full size: CI runs it (about 20 s).

It runs benchmarks/fault_run.py as a script (tests import nothing from benchmarks/)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "fault_run.py"


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_two_thousand_creates_with_a_fifth_of_requests_failing_converge_once():
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--models", "2000", "--seed", "1", "--json"],
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    figures = json.loads(done.stdout.splitlines()[-1])
    assert figures["fault_share"] >= 0.20, figures
    assert all(figures["faults_injected"][kind] > 0 for kind in ("503", "429", "reset", "slow", "dropped"))
    assert figures["converged"] == 2000 and figures["missing"] == 0
    assert figures["duplicates"] == 0
    assert figures["first_run_exit"] == 0, "a fault must never need a second run"
    assert figures["retried_models"] > 0 and figures["stderr_tracebacks"] == 0
