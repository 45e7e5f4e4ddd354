"""Many spaces in one process against one multi-tenant sandbox, beside a shell loop of processes.

    python benchmarks/spaces.py [--spaces 100] [--models 20] [--saves 10] [--spaces-parallelism 4]

The sandbox (`sandbox serve --multi-tenancy`) runs in its own process on loopback with one tenant
per space. Part 1 times `apply --config` over all spaces in one process (the first apply, then a
no-op apply), with the process's peak RSS; beside it, the same work as one `apply` process per
space in a shell loop, against a fresh sandbox. Part 2 starts `watch --config` over all spaces,
reads the wall time of a resync round over all of them from the daemon's JSON log (first round
start to last round end), saves new manifests into one space at a time and times each until the
server answers for it, and reads the daemon's peak RSS (VmHWM). Targets (issue 17): ≥ 5x faster
than the loop, no-op round over all ≤ 2 s, peak RSS ≤ 200 MB, median change→server ≤ 0.5 s.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

import httpx

# the same manifest text, free port and polling as the single-space watch benchmark beside it
from watch_latency import free_port, model_yaml, wait_until

PY = sys.executable
TOKEN = "bench-admin-key"


ENV = {**os.environ, "OPENAI_API_KEY": "sk-benchmark", "SPACE_TOKEN": TOKEN}


class Sandbox:
    def __init__(self, work: Path, tenants: list[str]) -> None:
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        command = ["sandbox", "serve", "--port", str(port), "--db", ":memory:", "--multi-tenancy"]
        self.proc = subprocess.Popen(
            [PY, "-m", "reconciler", *command, "--token", TOKEN],
            cwd=work,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.http = httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {TOKEN}"})

        def up() -> bool:
            try:
                return self.http.get("/api/v1/health").status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(up, 30, "the sandbox", interval=0.05)
        for name in tenants:
            created = self.http.post("/api/v1/tenants", json={"name": name, "display_name": name})
            if created.status_code != 201:
                raise SystemExit(f"cannot create tenant {name}: {created.text}")

    def models(self, tenant: str) -> list[str]:
        answer = self.http.get("/api/v1/models/", headers={"X-Tenant-Name": tenant}, follow_redirects=True)
        return [m["name"] for m in answer.json()]

    def has(self, tenant: str, name: str) -> bool:
        path = f"/api/v1/models/{name}"
        return self.http.get(path, headers={"X-Tenant-Name": tenant}).status_code == 200

    def stop(self) -> None:
        self.http.close()
        self.proc.terminate()
        self.proc.wait(60)


def write_spaces(root: Path, url: str, names: list[str], models: int) -> Path:
    lines = ["owner: bench", "spaces:"]
    for name in names:
        folder = root / "spaces" / name
        folder.mkdir(parents=True)
        for i in range(models):
            (folder / f"m{i:03}.yaml").write_text(model_yaml(f"{name}-m{i:03}"))
        lines.append(
            f"  - {{name: {name}, server: '{url}', tenant: {name}, token: '${{SPACE_TOKEN}}', "
            f"paths: [spaces/{name}]}}"
        )
    config = root / "syft-reconciler.yaml"
    config.write_text("\n".join(lines) + "\n")
    return config


def timed(command: list[str], cwd: Path) -> tuple[float, int, int]:
    """Wall seconds, exit code and peak RSS (KiB) of one child process."""
    start = time.perf_counter()
    proc = subprocess.Popen(command, cwd=cwd, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert proc.stderr is not None
    err = threading.Thread(target=proc.stderr.read, daemon=True)
    err.start()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return time.perf_counter() - start, proc.returncode, usage.ru_maxrss


def one_process(work: Path, names: list[str], models: int, parallelism: int) -> dict[str, float]:
    sandbox = Sandbox(work, names)
    root = work / "one"
    config = write_spaces(root, sandbox.url, names, models)
    command = [PY, "-m", "reconciler", "apply", "--config", str(config), "--auto-approve"]
    command += ["--spaces-parallelism", str(parallelism)]
    try:
        first, code, rss = timed(command, root)
        if code != 0:
            raise SystemExit(f"the first apply over all spaces exited {code}")
        if any(len(sandbox.models(n)) != models for n in names):
            raise SystemExit("the first apply did not converge every tenant")
        noop, code, rss2 = timed(command, root)
        if code != 0:
            raise SystemExit(f"the no-op apply exited {code}")
        return {"first": first, "noop": noop, "rss_mb": max(rss, rss2) / 1024}
    finally:
        sandbox.stop()


def shell_loop(work: Path, names: list[str], models: int) -> dict[str, float]:
    sandbox = Sandbox(work, names)
    root = work / "loop"
    write_spaces(root, sandbox.url, names, models)
    tenants = " ".join(shlex.quote(n) for n in names)
    script = (
        f"for t in {tenants}; do {shlex.quote(PY)} -m reconciler apply spaces/$t --server {sandbox.url} "
        '--tenant "$t" --token "$SPACE_TOKEN" --owner bench --auto-approve > /dev/null || exit 1; done'
    )
    try:
        # each process runs beside the project file; --config would turn on `spaces:`, so move it
        (root / "syft-reconciler.yaml").rename(root / "spaces.yaml")
        first, code, _ = timed(["bash", "-c", script], root)
        if code != 0:
            raise SystemExit(f"the shell loop exited {code}")
        if any(len(sandbox.models(n)) != models for n in names):
            raise SystemExit("the shell loop did not converge every tenant")
        noop, code, _ = timed(["bash", "-c", script], root)
        return {"first": first, "noop": noop}
    finally:
        sandbox.stop()


def watch(
    work: Path, names: list[str], models: int, saves: int, parallelism: int, resync: float
) -> dict[str, object]:
    sandbox = Sandbox(work, names)
    root = work / "watch"
    config = write_spaces(root, sandbox.url, names, models)
    command = [PY, "-m", "reconciler", "watch", "--config", str(config), "--log-format", "json"]
    command += ["--resync-interval", str(resync), "--spaces-parallelism", str(parallelism)]
    proc = subprocess.Popen(
        command, cwd=root, env={**ENV, "SPACE_TOKEN": TOKEN}, stderr=subprocess.PIPE, text=True
    )
    events: list[dict] = []

    def read() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            try:
                events.append(json.loads(line))
            except ValueError:
                pass

    threading.Thread(target=read, daemon=True).start()

    def rounds(trigger: str) -> list[dict]:
        return [e for e in events if e.get("event") == "round" and e.get("trigger") == trigger]

    try:
        start = time.perf_counter()
        wait_until(lambda: len(rounds("startup")) >= len(names), 600, "every space's first round")
        first_all = time.perf_counter() - start
        failed = [e for e in rounds("startup") if e["status"] != "ok"]
        if failed:
            raise SystemExit(f"first rounds failed: {failed[:3]}")
        latencies = []
        for i in range(saves):
            name = names[(i * 37) % len(names)]
            model = f"{name}-new{i:03}"
            folder = root / "spaces" / name
            tmp = folder / f".{model}.yaml.tmp"
            tmp.write_text(model_yaml(model))
            began = time.perf_counter()
            os.replace(tmp, folder / f"{model}.yaml")
            wait_until(lambda t=name, m=model: sandbox.has(t, m), 30, model)
            latencies.append(time.perf_counter() - began)
        # the watcher's first tick is a resync that overlaps the first rounds: time the second
        n = len(names)
        resyncs = wait_until(
            lambda: len(r := rounds("resync")) >= 2 * n and r, 120, "a resync round over all"
        )
        spans = [
            (datetime.fromisoformat(e["ts"].replace("Z", "+00:00")).timestamp(), float(e["duration_s"]))
            for e in resyncs[n : 2 * n]
        ]
        resync_all = max(end for end, _ in spans) - min(end - d for end, d in spans)
        status = Path(f"/proc/{proc.pid}/status").read_text()
        hwm = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:"))
        return {
            "first_all": first_all,
            "resync_all": resync_all,
            "latencies": latencies,
            "rss_mb": hwm / 1024,
        }
    finally:
        proc.terminate()
        proc.wait(60)
        sandbox.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--spaces", type=int, default=100)
    parser.add_argument("--models", type=int, default=20)
    parser.add_argument("--saves", type=int, default=10)
    parser.add_argument("--spaces-parallelism", type=int, default=4)
    parser.add_argument("--skip-loop", action="store_true", help="Skip the shell loop baseline.")
    parser.add_argument("--resync", type=float, default=15.0, help="The watch's --resync-interval.")
    args = parser.parse_args()
    names = [f"t{i:03}" for i in range(args.spaces)]
    size = f"{args.spaces} spaces x {args.models} models"
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        one = one_process(work, names, args.models, args.spaces_parallelism)
        print(f"{size}, one process (--spaces-parallelism {args.spaces_parallelism}):")
        print(f"  first apply over all spaces: {one['first']:.2f} s (process wall time)")
        print(f"  no-op apply over all spaces: {one['noop']:.2f} s (process wall time)")
        print(f"  peak RSS of the apply process: {one['rss_mb']:.0f} MB")
        if not args.skip_loop:
            loop = shell_loop(work, names, args.models)
            print(f"{size}, a shell loop of {args.spaces} `apply` processes:")
            print(
                f"  first apply: {loop['first']:.2f} s ({loop['first'] / one['first']:.1f}x the one process)"
            )
            print(f"  no-op apply: {loop['noop']:.2f} s ({loop['noop'] / one['noop']:.1f}x the one process)")
        w = watch(work, names, args.models, args.saves, args.spaces_parallelism, args.resync)
        lat = sorted(w["latencies"])  # type: ignore[arg-type]
        print(f"{size}, one `watch` process:")
        print(f"  first rounds over all spaces: {w['first_all']:.2f} s")
        print(f"  no-op resync round over all spaces: {w['resync_all']:.2f} s (target ≤ 2 s)")
        print(
            f"  change → server in one space, {len(lat)} saves: median {statistics.median(lat) * 1000:.0f} ms, "
            f"max {lat[-1] * 1000:.0f} ms (target: median ≤ 500 ms)"
        )
        print(f"  peak RSS of the watch process (VmHWM): {w['rss_mb']:.0f} MB (target ≤ 200 MB)")


if __name__ == "__main__":
    main()
