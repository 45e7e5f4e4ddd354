"""kill -9 of `apply` at random points, then a re-run: nothing duplicated, nothing missing."""

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest

from reconciler.sandbox import SandboxConfig
from tests.e2e.conftest import model_yaml

COUNT = 120


def wait_until(predicate, *, timeout=30.0, interval=0.005):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return False


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_kill_minus_nine_then_rerun_converges(seed, manifest_dir, sandbox, api):
    # Latency stretches the run so the kill lands mid-flight, with requests in the air.
    sandbox.reset(SandboxConfig(latency_ms=15))
    root = manifest_dir({f"m{i:03}.yaml": model_yaml(f"m{i:03}") for i in range(COUNT)})
    env = {**os.environ, "OPENAI_API_KEY": "sk-crash"}
    command = [sys.executable, "-m", "reconciler", "apply", str(root), "--server", sandbox.url, "-p", "4"]
    kill_at = random.Random(seed).randrange(1, COUNT - 10)

    victim = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert wait_until(lambda: sandbox.model_count() >= kill_at), "apply never got going"
        victim.send_signal(signal.SIGKILL)
    finally:
        victim.wait(timeout=30)
    assert victim.returncode == -signal.SIGKILL
    partial = sandbox.model_count()
    assert kill_at <= partial < COUNT, "the kill was meant to land half way"

    rerun = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    last = rerun.stdout.splitlines()[-1]
    assert last == f"Apply complete: {COUNT - partial} created, {partial} in sync.", last
    names = Counter(m["name"] for m in api.get("/models/").json())
    assert sorted(names) == [f"m{i:03}" for i in range(COUNT)]
    assert max(names.values()) == 1
