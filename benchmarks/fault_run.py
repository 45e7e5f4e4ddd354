"""2,000 creates through `syft-reconciler apply` with over 20 % of requests failing, then the count.

    .venv/bin/python benchmarks/fault_run.py [--models 2000] [--seed 1] [--json]

The sandbox (in this process) answers a share of requests with 503, 429 + Retry-After, a connection
closed before processing, an answer too slow for the client's timeout (after the write committed),
or a response lost after the write committed. `apply` runs as a subprocess; the figures say what
was attempted, what was injected, what converged, and how many duplicates there are (must be 0).
tests/reliability/test_fault_run.py runs this script with --json and asserts on the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

from reconciler.sandbox import SandboxConfig, SandboxServer

FAULTS = {
    "fail_503_rate": 0.06,
    "fail_429_rate": 0.05,
    "reset_rate": 0.04,
    "slow_rate": 0.02,
    "drop_after_commit_rate": 0.05,
}


def manifests(folder: Path, n: int) -> Path:
    for i in range(n):
        (folder / f"m{i:05}.yaml").write_text(
            f"kind: Model\nname: m{i:05}\ndtype: ollama\nconfiguration:\n  model: llama3.2\n"
        )
    return folder


def fault_run(n: int = 2000, seed: int = 1, *, parallelism: int = 16) -> dict[str, Any]:
    config = SandboxConfig(seed=seed, retry_after_s=0.1, slow_ms=1500, **FAULTS)
    with tempfile.TemporaryDirectory() as tmp, SandboxServer(config) as server:
        folder = manifests(Path(tmp), n)
        command = [
            sys.executable,
            "-m",
            "reconciler",
            "apply",
            str(folder),
            "--server",
            server.url,
            "-p",
            str(parallelism),
            "--timeout",
            "0.5",
            "--retries",
            "8",
            "-o",
            "json",
        ]
        runs = []
        for _ in range(2):  # the run, and a re-run if the first one did not converge
            done = subprocess.run(command, capture_output=True, text=True, timeout=600, env=os.environ)
            runs.append(done)
            if done.returncode == 0:
                break
        report = json.loads(runs[0].stdout)
        stats = server.stats(by_status=True)
        totals = server.stats()
        with httpx.Client(base_url=server.url) as client:
            for _ in range(100):  # the faults are still on: this look can draw one too
                try:
                    listing = client.get("/api/v1/models/", timeout=5)
                except httpx.HTTPError:
                    continue
                if listing.status_code == 200:
                    break
            names = Counter(m["name"] for m in listing.json())
    requests = sum(totals.values())
    injected = {
        kind: sum(v for k, v in stats.items() if k.endswith(f" {kind}"))
        for kind in ("503", "429", "reset", "slow", "dropped")
    }
    return {
        "models": n,
        "requests": requests,
        "creates_attempted": totals.get("POST /api/v1/models/", 0),
        "faults_injected": injected,
        "fault_share": sum(injected.values()) / requests,
        "retried_models": sum(1 for r in report["results"] if r["attempts"] > 1),
        "first_run_exit": runs[0].returncode,
        "runs": len(runs),
        "final_exit": runs[-1].returncode,
        "converged": len(names),
        "duplicates": sum(c - 1 for c in names.values()),
        "missing": n - len(names),
        "stderr_tracebacks": sum("Traceback" in r.stderr for r in runs),
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--models", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", action="store_true", help="Print the figures as one JSON object.")
    args = parser.parse_args()
    figures = fault_run(args.models, args.seed)
    if args.json:
        print(json.dumps(figures))
        return 0
    for key, value in figures.items():
        print(f"{key:>18}: {value:.1%}" if key == "fault_share" else f"{key:>18}: {value}")
    return 0 if figures["duplicates"] == 0 and figures["missing"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
