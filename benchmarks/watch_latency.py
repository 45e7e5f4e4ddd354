"""The watch daemon's latency, file save → model on the server, and the cost of a resync round.

    python benchmarks/watch_latency.py [--saves 30] [--manifests 10000] [--base 10000]

Everything runs as it would in production: the sandbox (`sandbox serve`) and the daemon
(`watch`, default debounce) are separate processes on loopback; this script only writes files and
polls the server. Part 1 saves N new manifests one at a time (an editor's atomic save: temp file +
rename) into a folder that already holds --base converged manifests (the first round created
them) and times each until `GET /models/{name}` answers 200; it also reports the daemon's RSS. Part 2 starts a daemon on M
manifests, lets the first round create them, and reads the wall time of the resync rounds that
follow (nothing changed) from the daemon's JSON log.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

PY = sys.executable


def model_yaml(name: str) -> str:
    return (
        f"kind: Model\nname: {name}\ndtype: openai\nconfiguration:\n  api_key: ${{OPENAI_API_KEY}}\n"
        f"  model: gpt-4o\nsummary: benchmark model {name}\ntags: [bench]\n"
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(check, timeout: float, what: str, interval: float = 0.005):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(interval)
    raise SystemExit(f"timed out after {timeout}s waiting for {what}")


class Process:
    """A child process whose stderr lines are collected (and parsed when they are JSON)."""

    def __init__(self, args: list[str], cwd: Path) -> None:
        env = {**os.environ, "OPENAI_API_KEY": "sk-benchmark"}
        self.proc = subprocess.Popen(
            [PY, "-m", "reconciler", *args],
            cwd=cwd,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.events: list[dict] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            try:
                self.events.append(json.loads(line))
            except ValueError:
                pass

    def rounds(self, **match: str) -> list[dict]:
        return [
            e
            for e in self.events
            if e.get("event") == "round" and all(e.get(k) == v for k, v in match.items())
        ]

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(60)


def start_sandbox(work: Path, *extra: str) -> tuple[Process, str]:
    """The sandbox in its own process on a free port (`extra`: more `sandbox serve` options)."""
    port = free_port()
    sandbox = Process(["sandbox", "serve", "--port", str(port), "--db", ":memory:", *extra], work)
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            return httpx.get(url + "/api/v1/health").status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(up, 30, "the sandbox", interval=0.05)
    return sandbox, url


def rss_mb(pid: int) -> float:
    """The process's resident set (Linux /proc), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def latency(work: Path, saves: int, base: int) -> tuple[list[float], float]:
    sandbox, url = start_sandbox(work)
    root = work / "latency"
    root.mkdir()
    for i in range(base):
        (root / f"m{i:05}.yaml").write_text(model_yaml(f"m{i:05}"))
    daemon = Process(["watch", str(root), "--server", url, "--log-format", "json"], work)
    try:
        first = wait_until(lambda: daemon.rounds(trigger="startup"), 600, "the daemon's first round")[0]
        if first["status"] != "ok":
            raise SystemExit(f"the first round failed: {first['msg']}")
        wait_until(lambda: daemon.rounds(trigger="resync"), 30, "the watcher")  # the first tick: it is live
        out = []
        with httpx.Client(base_url=url + "/api/v1") as http:
            for i in range(saves):
                name = f"bench-{i:03}"
                tmp = root / f".{name}.yaml.tmp"
                tmp.write_text(model_yaml(name))
                start = time.perf_counter()
                os.replace(tmp, root / f"{name}.yaml")
                wait_until(lambda n=name: http.get(f"/models/{n}").status_code == 200, 30, name)
                out.append(time.perf_counter() - start)
        rounds = [r["duration_s"] for r in daemon.rounds(trigger="files")]
        print(
            f"  the daemon's own files rounds: median {statistics.median(rounds) * 1000:.0f} ms "
            f"({sum(1 for r in daemon.rounds(trigger='files') if r.get('kept_view'))} of {len(rounds)} "
            "planned against the kept view)"
        )
        return out, rss_mb(daemon.proc.pid)
    finally:
        daemon.stop()
        sandbox.stop()


def resync_cost(work: Path, count: int, rounds: int) -> tuple[float, list[float]]:
    sandbox, url = start_sandbox(work)
    root = work / "resync"
    root.mkdir()
    for i in range(count):
        (root / f"m{i:05}.yaml").write_text(model_yaml(f"m{i:05}"))
    daemon = Process(
        ["watch", str(root), "--server", url, "--log-format", "json", "--resync-interval", "2"], work
    )
    try:
        first = wait_until(lambda: daemon.rounds(trigger="startup"), 600, "the first round")[0]
        if first["status"] != "ok":
            raise SystemExit(f"the first round failed: {first['msg']}")
        resyncs = wait_until(
            lambda: (r := daemon.rounds(trigger="resync")) and len(r) >= rounds and r,
            60 + 5 * rounds,
            f"{rounds} resync rounds",
        )
        return float(first["duration_s"]), [float(r["duration_s"]) for r in resyncs[:rounds]]
    finally:
        daemon.stop()
        sandbox.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--saves", type=int, default=30)
    parser.add_argument("--manifests", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5, help="resync rounds to time")
    parser.add_argument(
        "--base", type=int, default=10_000, help="converged manifests in the folder the saves land in"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        found, rss = latency(work, args.saves, args.base)
        times = sorted(found)
        p95 = times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]
        print(
            f"save → model on server among {args.base} converged manifests, {len(times)} saves: "
            f"median {statistics.median(times) * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms, "
            f"max {times[-1] * 1000:.0f} ms (target: median ≤ 300 ms); daemon RSS {rss:.0f} MB "
            "(target ≤ 200 MB)"
        )
        first, resyncs = resync_cost(work, args.manifests, args.rounds)
        print(f"first round over {args.manifests} new manifests (parse, validate, create all): {first:.2f} s")
        median = statistics.median(resyncs)
        print(
            f"resync round over {args.manifests} unchanged manifests: median {median:.2f} s "
            f"(rounds: {', '.join(f'{d:.2f}' for d in resyncs)} s)"
        )


if __name__ == "__main__":
    main()
