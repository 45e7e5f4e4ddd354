"""Ctrl-C during apply: in-flight calls finish, the report matches the server, exit 130."""

import os
import signal
import subprocess
import sys
import time

from reconciler.sandbox import SandboxConfig
from tests.e2e.conftest import model_yaml


def test_sigint_finishes_in_flight_calls_and_reports(manifest_dir, sandbox):
    sandbox.reset(SandboxConfig(latency_ms=20))
    root = manifest_dir({f"m{i:03}.yaml": model_yaml(f"m{i:03}", dtype="ollama") for i in range(100)})
    command = [sys.executable, "-m", "reconciler", "apply", str(root), "--server", sandbox.url, "-p", "4"]
    proc = subprocess.Popen(
        command, env=os.environ, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 30
    while sandbox.model_count() < 10 and time.monotonic() < deadline:
        time.sleep(0.005)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130
    summary = out.splitlines()[-1]
    created = int(summary.removeprefix("Apply interrupted: ").split(" created, ")[0])
    assert created == sandbox.model_count() < 100  # what it says it did is what the server has
    assert summary.endswith(f"{100 - created} not attempted, 0 in sync."), summary
    assert "Traceback" not in err
