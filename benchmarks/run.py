"""The reconciler side by side with what users would run instead, in one run, on one sandbox.

    .venv/bin/python benchmarks/run.py                # the full table (a few minutes)
    .venv/bin/python benchmarks/run.py --quick        # tiny N, no Ansible: the smoke test runs this

The sandbox runs in its own process (`syft-reconciler sandbox serve`), as a real server would, so
the reconciler and the server do not share a GIL. Each apply starts from an empty server. Figures:

- validate: wall time and peak RSS of `syft-reconciler validate` (a subprocess, so startup counts).
- no-op plan: wall time of `syft-reconciler plan` with all N models on the server, and the HTTP
  requests it makes (must not grow with N: the API has no pagination, so one list).
- apply of N missing models at parallelism 1/4/16 and 0/20 ms server latency: models/s and the
  p95 of a request, measured in-process around each HTTP request.
- baselines against the same server: a sequential script (GET by name, POST if missing), and an
  Ansible playbook looping ansible.builtin.uri (ansible-core installed by this script into its own
  venv under benchmarks/.ansible-venv, not a dependency of the project).
- the sandbox's ceiling: raw POST/s from a minimal 16-thread httpx client.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
ENV = {**os.environ, "OPENAI_API_KEY": "sk-bench", "ANTHROPIC_API_KEY": "sk-ant-bench", "VLLM_API_KEY": "vk"}
DTYPES = [
    ("openai", "  api_key: ${OPENAI_API_KEY}\n  model: gpt-4o\n"),
    ("anthropic", "  api_key: ${ANTHROPIC_API_KEY}\n  model: claude-sonnet-4-5\n  max_tokens: 1024\n"),
    ("ollama", "  model: llama3.2\n  base_url: http://ollama:11434\n  num_ctx: 8192\n"),
    ("vllm", "  base_url: http://vllm:8000/v1\n  model: qwen\n  api_key: ${VLLM_API_KEY}\n"),
]


# -- set-up -------------------------------------------------------------------------------------


def generate(folder: Path, n: int) -> Path:
    """N manifests across all dtypes, 500 per sub-folder, one per file."""
    for i in range(n):
        dtype, config = DTYPES[i % len(DTYPES)]
        sub = folder / f"g{i // 500:03}"
        sub.mkdir(parents=True, exist_ok=True)
        (sub / f"model-{i:05}.yaml").write_text(
            f"kind: Model\nname: model-{i:05}\ndtype: {dtype}\nconfiguration:\n{config}"
            f"summary: benchmark model {i}\ntags: [bench, {dtype}]\n"
        )
    return folder


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def sandbox(latency_ms: int = 0) -> Iterator[str]:
    """A fresh in-memory sandbox in its own process; yields its URL."""
    port = free_port()
    command = [
        PY,
        "-m",
        "reconciler",
        "sandbox",
        "serve",
        "--port",
        str(port),
        "--db",
        ":memory:",
        "--latency-ms",
        str(latency_ms),
    ]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(url + "/api/v1/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("the sandbox did not start")
            time.sleep(0.05)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def run_cli(*args: str) -> tuple[float, subprocess.CompletedProcess[str]]:
    """(wall seconds, result) of one CLI run as a subprocess, startup included."""
    start = time.perf_counter()
    done = subprocess.run([PY, "-m", "reconciler", *args], env=ENV, cwd=ROOT, text=True, capture_output=True)
    return time.perf_counter() - start, done


def measure_rss(*args: str) -> tuple[float, int, subprocess.CompletedProcess[str]]:
    """Like run_cli, but the peak RSS of exactly this child (through a wrapper that reports it)."""
    wrapper = (
        "import os, resource, sys\n"
        "from reconciler.cli import main\n"
        "code = main(sys.argv[1:])\n"
        "sys.stdout.flush()\n"
        "sys.stderr.write('\\nRSS_KB=%d\\n' % resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n"
        "sys.stderr.flush()\n"
        "os._exit(code)  # as the console script does (reconciler.cli.app.run)\n"
    )
    start = time.perf_counter()
    done = subprocess.run([PY, "-c", wrapper, *args], env=ENV, cwd=ROOT, text=True, capture_output=True)
    wall = time.perf_counter() - start
    rss = int(done.stderr.rsplit("RSS_KB=", 1)[1].split()[0]) // 1024
    return wall, rss, done


# -- the reconciler, in-process, with a timer around every request --------------------------------


def apply_in_process(folder: Path, url: str, parallelism: int) -> tuple[float, float, int]:
    """(models per second, p95 ms per request, requests) of one full apply."""
    from reconciler.apply import ApplyOptions, Executor
    from reconciler.client import SpaceClient
    from reconciler.graph_apply import run_plans
    from reconciler.loading import load
    from reconciler.references import resolve_secrets
    from reconciler.round import observe_and_plan
    from reconciler.schemas import SchemaRegistry

    timings: list[float] = []
    lock = threading.Lock()
    start = time.perf_counter()
    registry = SchemaRegistry.load()
    loaded = load([folder], registry)
    manifests, _ = resolve_secrets(loaded.manifests, ENV)
    client = SpaceClient(url, max_connections=max(parallelism, 4))
    send = client._send

    def timed(method: str, path: str, body: Any = None) -> httpx.Response:
        t0 = time.perf_counter()
        try:
            return send(method, path, body)
        finally:
            with lock:
                timings.append(time.perf_counter() - t0)

    client._send = timed  # type: ignore[method-assign]
    plan = observe_and_plan(client, manifests, registry).plan
    report = run_plans(Executor(client, ApplyOptions(parallelism=parallelism, facts=registry.facts)), plan)
    elapsed = time.perf_counter() - start
    client.close()
    assert report.ok and len(report.outcomes) == len(manifests), report.counts()
    return len(manifests) / elapsed, _p95(timings) * 1000, len(timings)


def _p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[-1] if len(values) >= 2 else (values[0] if values else 0.0)


def noop_plan(folder: Path, url: str) -> tuple[float, int]:
    """(wall seconds of the CLI, HTTP requests the plan makes), all models already present."""
    from reconciler.client import SpaceClient
    from reconciler.loading import load
    from reconciler.references import resolve_secrets
    from reconciler.round import observe_and_plan
    from reconciler.schemas import SchemaRegistry

    wall, done = run_cli("plan", str(folder), "--server", url, "--detailed-exitcode")
    assert done.returncode == 0, done.stdout[-500:] + done.stderr[-500:]
    registry = SchemaRegistry.load()
    manifests, _ = resolve_secrets(load([folder], registry).manifests, ENV)
    with SpaceClient(url) as client:
        assert observe_and_plan(client, manifests, registry).plan.is_empty
        return wall, client.requests


# -- baselines ----------------------------------------------------------------------------------


def bodies(n: int) -> list[dict[str, Any]]:
    out = []
    for i in range(n):
        dtype, _ = DTYPES[i % len(DTYPES)]
        out.append(
            {
                "name": f"model-{i:05}",
                "dtype": dtype,
                "summary": f"benchmark model {i}",
                "tags": f"bench,{dtype}",
                "configuration": {"api_key": "sk-bench", "model": "m"},
            }
        )
    return out


def sequential_script(url: str, n: int) -> float:
    """What a user writes first: for each model, GET by name, POST if missing. Models/s."""
    start = time.perf_counter()
    with httpx.Client(base_url=url) as client:
        for body in bodies(n):
            if client.get(f"/api/v1/models/{body['name']}").status_code == 404:
                assert client.post("/api/v1/models/", json=body).status_code == 201
    return n / (time.perf_counter() - start)


ANSIBLE_VENV = ROOT / "benchmarks" / ".ansible-venv"
PLAYBOOK = """- hosts: localhost
  connection: local
  gather_facts: false
  vars:
    models: "{{ lookup('file', models_file) | from_json }}"
  tasks:
    - name: create models
      ansible.builtin.uri:
        url: "{{ server }}/api/v1/models/"
        method: POST
        body_format: json
        body: "{{ item }}"
        status_code: [201, 409]
      loop: "{{ models }}"
"""


def ansible_available() -> Path | None:
    """ansible-playbook from the benchmark's own venv, installed on first use (PyPI)."""
    playbook = ANSIBLE_VENV / "bin" / "ansible-playbook"
    if playbook.exists():
        return playbook
    try:
        subprocess.run([PY, "-m", "venv", str(ANSIBLE_VENV)], check=True, capture_output=True)
        subprocess.run(
            [str(ANSIBLE_VENV / "bin" / "pip"), "install", "-q", "ansible-core"],
            check=True,
            capture_output=True,
            timeout=600,
        )
    except (subprocess.SubprocessError, OSError) as exc:
        print(f"(Ansible baseline skipped: could not install ansible-core: {exc})", file=sys.stderr)
        shutil.rmtree(ANSIBLE_VENV, ignore_errors=True)
        return None
    return playbook


def ansible_loop(url: str, n: int, playbook_bin: Path) -> float:
    """An Ansible playbook looping ansible.builtin.uri over the models. Models/s."""
    with tempfile.TemporaryDirectory() as tmp:
        models = Path(tmp) / "models.json"
        models.write_text(json.dumps(bodies(n)))
        book = Path(tmp) / "create.yaml"
        book.write_text(PLAYBOOK)
        env = {
            **os.environ,
            "ANSIBLE_LOCALHOST_WARNING": "False",
            "ANSIBLE_INVENTORY_UNPARSED_WARNING": "False",
        }
        start = time.perf_counter()
        done = subprocess.run(
            [str(playbook_bin), str(book), "-e", f"server={url}", "-e", f"models_file={models}"],
            capture_output=True,
            text=True,
            env=env,
        )
        elapsed = time.perf_counter() - start
    assert done.returncode == 0, done.stdout[-2000:]
    return n / elapsed


def raw_ceiling(url: str, n: int, threads: int = 16) -> float:
    """The sandbox's own limit: bare POSTs from a minimal concurrent client. Creates/s."""
    items = bodies(n)
    with httpx.Client(base_url=url, limits=httpx.Limits(max_connections=threads)) as client:
        start = time.perf_counter()
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(lambda b: client.post("/api/v1/models/", json=b), items))
        return n / (time.perf_counter() - start)


# -- the table ----------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="tiny N, no Ansible (the smoke test)")
    parser.add_argument("--sizes", default="1000,10000", help="N for validate and no-op plan")
    parser.add_argument("--apply-n", type=int, default=1000, help="N for the apply matrix and baselines")
    parser.add_argument("--ansible-n", type=int, default=200, help="N for the Ansible loop (it is slow)")
    parser.add_argument("--no-ansible", action="store_true")
    args = parser.parse_args(argv)
    sizes = [20] if args.quick else [int(s) for s in args.sizes.split(",")]
    apply_n = 20 if args.quick else args.apply_n
    parallelisms = (1, 4) if args.quick else (1, 4, 16)
    latencies = (0,) if args.quick else (0, 20)
    rows: list[tuple[str, str, str]] = []

    def row(what: str, figure: str, note: str = "") -> None:
        rows.append((what, figure, note))
        print(f"  {what:<52} {figure:>16}  {note}", flush=True)

    print(f"Machine: {platform.platform()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            folder = generate(Path(tmp) / f"m{n}", n)
            wall, rss, done = measure_rss("validate", str(folder))
            assert done.returncode == 0, done.stderr[-500:]
            row(f"validate N={n}", f"{wall:.2f} s", f"peak RSS {rss} MB")
            with sandbox() as url:
                apply_in_process(folder, url, 16)
                wall, requests = noop_plan(folder, url)
                row(f"no-op plan N={n}", f"{wall:.2f} s", f"{requests} HTTP requests")

        folder = generate(Path(tmp) / "apply", apply_n)
        ceiling = 0.0
        with sandbox() as url:
            ceiling = raw_ceiling(url, apply_n)
        row(f"sandbox raw POST ceiling, 16 threads, N={apply_n}", f"{ceiling:.0f} /s")
        ansible_bin = None if (args.quick or args.no_ansible) else ansible_available()
        for latency in latencies:
            ours: dict[int, float] = {}
            for p in parallelisms:
                with sandbox(latency) as url:
                    rate, p95, _ = apply_in_process(folder, url, p)
                ours[p] = rate
                row(
                    f"apply N={apply_n} p={p} latency={latency}ms",
                    f"{rate:.0f} models/s",
                    f"p95 {p95:.1f} ms/request",
                )
            with sandbox(latency) as url:
                script = sequential_script(url, apply_n)
            best = max(ours.values())
            row(
                f"baseline: sequential script latency={latency}ms",
                f"{script:.0f} models/s",
                f"ours (best p) is {best / script:.1f}x faster",
            )
            if ansible_bin is not None:
                with sandbox(latency) as url:
                    loop = ansible_loop(url, args.ansible_n, ansible_bin)
                row(
                    f"baseline: Ansible uri loop latency={latency}ms N={args.ansible_n}",
                    f"{loop:.1f} models/s",
                    f"ours is {best / loop:.0f}x faster",
                )
            if latency == 0:
                top = max(parallelisms)
                row(f"apply p={top} as a share of the raw ceiling", f"{ours[top] / ceiling:.0%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
