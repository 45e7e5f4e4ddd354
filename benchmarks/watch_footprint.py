"""What the watch daemon costs to run: memory and CPU at 1,000 and 10,000 models (sizes deploy/).

    python benchmarks/watch_footprint.py [--models 1000 10000] [--rounds 5]

Like production: the sandbox (`sandbox serve`, in memory) and the daemon (`watch --metrics-port`)
are separate processes on loopback; this script writes the manifests, then reads the daemon's
/proc/<pid> (RSS sampled every 20 ms, VmHWM, utime + stime) around each phase:

- the first round, which parses, validates and creates every model;
- `--rounds` resync rounds with nothing changed (the daemon's steady state, one per
  --resync-interval: 60 s by default, `--resync` s here to save time), and the CPU it spends
  idle between them (the watcher's ticks);
- one edited file, and the files round it triggers.

The daemon's average CPU at the default 60 s resync is its CPU per no-op round / 60 plus its idle
rate. CPU per round is read from samples at the round's start and end (its log line's time and
duration). Linux only (/proc).
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from watch_latency import Process, model_yaml, start_sandbox, wait_until

TICK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/statm") as f:
        return int(f.read().split()[1]) * PAGE / 2**20


def hwm_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def cpu_s(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime


class Sampler:
    """The peak RSS of a process since the last `reset()`, and (wall time, CPU seconds) samples,
    every 20 ms."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak, self._stop = pid, 0.0, threading.Event()
        self.cpu: list[tuple[float, float]] = []
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            try:
                self.peak = max(self.peak, rss_mb(self.pid))
                self.cpu.append((time.time(), cpu_s(self.pid)))
            except OSError:
                return

    def idle_rate(self, busy: list[tuple[float, float]], since: float) -> float:
        """CPU seconds per second over the samples after `since` that lie outside every busy window."""
        cpu = wall = 0.0
        samples = [s for s in self.cpu if s[0] >= since]
        for (t0, c0), (t1, c1) in itertools.pairwise(samples):
            if all(t1 <= start - 0.05 or t0 >= end + 0.05 for start, end in busy):
                cpu, wall = cpu + (c1 - c0), wall + (t1 - t0)
        return cpu / wall if wall else 0.0

    def reset(self) -> None:
        self.peak = 0.0

    def stop(self) -> None:
        self._stop.set()


def when(event: dict) -> float:
    """The Unix time of a JSON log line (`ts`, ISO 8601 in UTC with a Z)."""
    from datetime import datetime

    return datetime.fromisoformat(event["ts"].replace("Z", "+00:00")).timestamp()


def at(samples: list[tuple[float, float]], t: float) -> float:
    """The CPU seconds of the last sample at or before `t` (the first one if none is)."""
    before = [c for when_, c in samples if when_ <= t]
    return before[-1] if before else samples[0][1]


def measure(work: Path, count: int, rounds: int, resync: float) -> dict[str, float]:
    sandbox, url = start_sandbox(work)
    root = work / f"m{count}"
    root.mkdir()
    for i in range(count):
        (root / f"m{i:05}.yaml").write_text(model_yaml(f"m{i:05}"))
    daemon = Process(
        [
            "watch",
            str(root),
            "--server",
            url,
            "--log-format",
            "json",
            "--metrics-port",
            "0",
            "--resync-interval",
            str(resync),
        ],
        work,
    )
    pid = daemon.proc.pid
    sampler = Sampler(pid)
    out: dict[str, float] = {}
    try:
        wait_until(lambda: [e for e in daemon.events if e.get("event") == "start"], 60, "the daemon's start")
        out["rss_start"] = rss_mb(pid)
        first = wait_until(lambda: daemon.rounds(trigger="startup"), 900, "the first round")[0]
        if first["status"] != "ok":
            raise SystemExit(f"the first round failed: {first['msg']}")
        out["first_wall"], out["first_cpu"] = float(first["duration_s"]), cpu_s(pid)
        out["first_peak"] = sampler.peak

        sampler.reset()
        seen, since = len(daemon.rounds(trigger="resync")), time.time()
        wanted = seen + rounds + 1  # the first one may have started before `since`
        resyncs = wait_until(
            lambda: (r := daemon.rounds(trigger="resync")) and len(r) >= wanted and r,
            120 + rounds * (resync + 30),
            f"{rounds} resync rounds",
        )[seen + 1 : wanted]
        windows = [(end - float(r["duration_s"]), end) for r in resyncs for end in [when(r)]]
        costs = [at(sampler.cpu, end) - at(sampler.cpu, start) for start, end in windows]
        out["resync_wall"] = statistics.median(float(r["duration_s"]) for r in resyncs)
        out["resync_cpu"] = statistics.median(costs)
        out["idle_cpu_per_s"] = sampler.idle_rate(windows, since)
        out["steady_rss"], out["steady_peak"] = rss_mb(pid), sampler.peak

        sampler.reset()
        mark, cpu2 = len(daemon.rounds(trigger="files")), cpu_s(pid)
        (root / "m00000.yaml").write_text(model_yaml("m00000").replace("benchmark model", "edited model"))
        edit = wait_until(
            lambda: (r := daemon.rounds(trigger="files")) and len(r) > mark and r[mark],
            120,
            "the files round",
        )
        out["edit_wall"], out["edit_cpu"] = float(edit["duration_s"]), cpu_s(pid) - cpu2
        out["edit_peak"] = sampler.peak
        out["hwm"] = hwm_mb(pid)
        return out
    finally:
        sampler.stop()
        daemon.stop()
        sandbox.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", type=int, nargs="+", default=[1000, 10_000])
    parser.add_argument("--rounds", type=int, default=5, help="resync rounds to measure")
    parser.add_argument("--resync", type=float, default=5.0, help="--resync-interval for the measurement")
    args = parser.parse_args()
    print(
        f"watch footprint (Python {sys.version.split()[0]}, {os.cpu_count()} cores); "
        f"sandbox and daemon are separate processes; resync every {args.resync:g} s here"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for count in args.models:
            m = measure(Path(tmp), count, args.rounds, args.resync)
            at60 = m["resync_cpu"] / 60 + m["idle_cpu_per_s"]
            print(f"\n{count} models")
            print(
                f"  RSS at start {m['rss_start']:.0f} MB; "
                f"peak during the first round {m['first_peak']:.0f} MB; "
                f"high-water mark (VmHWM) {m['hwm']:.0f} MB"
            )
            print(
                f"  first round (create all): {m['first_wall']:.2f} s wall; "
                f"CPU since the process started (imports too): {m['first_cpu']:.2f} s"
            )
            print(
                f"  no-op resync round: {m['resync_wall']:.2f} s wall, {m['resync_cpu']:.2f} s CPU "
                f"(medians of {args.rounds}); "
                f"RSS after them {m['steady_rss']:.0f} MB, peak during them {m['steady_peak']:.0f} MB"
            )
            print(f"  idle between rounds: {m['idle_cpu_per_s'] * 1000:.1f} millicores")
            print(f"  average CPU at the default 60 s resync: ~{at60 * 1000:.0f} millicores")
            print(
                f"  one edited file: files round {m['edit_wall']:.2f} s wall, {m['edit_cpu']:.2f} s CPU, "
                f"peak RSS {m['edit_peak']:.0f} MB"
            )


if __name__ == "__main__":
    main()
