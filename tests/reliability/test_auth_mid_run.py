"""401 in the middle of an apply: stop writing at once, exit with the auth kind, claim nothing missing."""

import json
import os
import subprocess
import sys
import time

from reconciler.sandbox import SandboxConfig
from tests.e2e.conftest import model_yaml

COUNT = 80
PARALLELISM = 4


def test_key_rotated_mid_run_stops_writes_and_exits_auth(manifest_dir, sandbox):
    sandbox.reset(SandboxConfig(token="old", latency_ms=20))
    root = manifest_dir({f"m{i:03}.yaml": model_yaml(f"m{i:03}") for i in range(COUNT)})
    env = {**os.environ, "OPENAI_API_KEY": "sk-auth", "SYFT_SPACE_TOKEN": "old"}
    command = [
        sys.executable,
        "-m",
        "reconciler",
        "apply",
        str(root),
        "--server",
        sandbox.url,
        "-p",
        str(PARALLELISM),
        "-o",
        "json",
    ]
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while sandbox.model_count() < 10 and time.monotonic() < deadline:
        time.sleep(0.005)
    sandbox.reconfigure(SandboxConfig(token="rotated", latency_ms=20))
    at_rotation = sandbox.model_count()
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 5, out + err
    assert json.loads(out)["error"]["kind"] == "auth"
    assert "401 Admin API key required" in json.loads(out)["error"]["message"]
    # only requests already past auth when the key changed may still land
    assert sandbox.model_count() - at_rotation <= PARALLELISM
    # after the first 401 nothing new is sent: only what was already in flight meets the new key
    assert sandbox.stats(by_status=True).get("POST /api/v1/models/ 401", 0) <= PARALLELISM
    assert at_rotation < COUNT and "Traceback" not in err
    assert "missing" not in out + err
