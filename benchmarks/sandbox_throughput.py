"""How fast the sandbox creates and lists models, with a plain httpx client in the same process.

    .venv/bin/python benchmarks/sandbox_throughput.py [--models 10000] [--threads 16]

For an in-memory and a file database: the first 1,000 creates one at a time, the rest from
`--threads` threads, then a list of all models at 1,000 and at `--models`. "server µs" is the
serving thread's CPU per create; the rest of a create's cost is the client's (same process, one
GIL), so creates/s is a floor for the server. The real server does 80-110 creates/s and lists
1,000 models in 50-80 ms (syft-space-api.md).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from reconciler.sandbox import SandboxServer

MODELS = "/api/v1/models/"
FIRST = 1_000


def _body(i: int) -> dict[str, object]:
    return {
        "name": f"model-{i:05}",
        "dtype": "openai",
        "configuration": {
            "api_key": f"sk-{i:040}",
            "model": "gpt-4o",
            "base_url": "https://api.openai.com/v1",
        },
        "summary": "benchmark model",
        "tags": "bench,openai",
    }


def _create(client: httpx.Client, i: int) -> None:
    response = client.post(MODELS, json=_body(i))
    if response.status_code != 201:
        raise RuntimeError(f"create {i}: {response.status_code} {response.text[:200]}")


def _creates(server: SandboxServer, client: httpx.Client, ids: range, threads: int) -> tuple[float, float]:
    """(creates per second, server CPU µs per create) for creating `ids`."""
    cpu = server.cpu_seconds()
    start = time.perf_counter()
    if threads == 1:
        for i in ids:
            _create(client, i)
    else:
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(lambda i: _create(client, i), ids))
    elapsed = time.perf_counter() - start
    return len(ids) / elapsed, (server.cpu_seconds() - cpu) / len(ids) * 1e6


def _list_ms(client: httpx.Client, expected: int, repeats: int) -> tuple[float, int]:
    """(median ms of a full list, its size in bytes)."""
    times, size = [], 0
    for _ in range(repeats):
        start = time.perf_counter()
        response = client.get(MODELS)
        times.append((time.perf_counter() - start) * 1000)
        size = len(response.content)
    if len(response.json()) != expected:
        raise RuntimeError(f"listed {len(response.json())} models, expected {expected}")
    return statistics.median(times), size


def run(label: str, db: str | Path, *, models: int, threads: int, out: Callable[[str], None]) -> None:
    with SandboxServer(db=db) as server:
        limits = httpx.Limits(max_connections=threads, max_keepalive_connections=threads)
        with httpx.Client(base_url=server.url, limits=limits, timeout=60) as client:
            client.get("/api/v1/health")  # connect and warm up outside the timings
            seq_rate, seq_cpu = _creates(server, client, range(FIRST), 1)
            list_1k, size_1k = _list_ms(client, FIRST, repeats=9)
            par_rate, par_cpu = _creates(server, client, range(FIRST, models), threads)
            list_all, size_all = _list_ms(client, models, repeats=5)
    out(
        f"| {label:<8} | {seq_rate:>7.0f} | {seq_cpu:>6.0f} | {par_rate:>7.0f} | {par_cpu:>6.0f} "
        f"| {list_1k:>6.1f} ({size_1k / 1e3:.0f} KB) | {list_all:>7.1f} ({size_all / 1e6:.1f} MB) |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=10_000, help="models in the big list (> 1000)")
    parser.add_argument("--threads", type=int, default=16, help="client threads after the first 1,000")
    args = parser.parse_args()
    if args.models <= FIRST:
        parser.error(f"--models must be above {FIRST}")

    print(
        f"| db       | seq c/s | srv µs | {args.threads:>2}x c/s | srv µs "
        f"| list {FIRST:,} ms   | list {args.models:,} ms    |"
    )
    print("| -------- | ------- | ------ | ------- | ------ | ---------------- | ------------------ |")
    run(":memory:", ":memory:", models=args.models, threads=args.threads, out=print)
    with tempfile.TemporaryDirectory() as folder:
        run("file", Path(folder) / "sandbox.db", models=args.models, threads=args.threads, out=print)


if __name__ == "__main__":
    main()
