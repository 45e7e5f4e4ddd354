"""A whole space: 200 models, 50 datasets, 200 endpoints, 400 policies, applied against the
sandbox (20 ms latency per request), beside a sequential script that makes the same calls in
dependency order (models, datasets, endpoints with the ids, then policies).

    python benchmarks/space_kinds.py [--latency-ms 20] [--parallelism 8] [--scale 1.0]

Prints wall times, objects/s, the apply's requests per route (method and route template, as the
sandbox's traffic accounting counts them) and the request count of the no-op plan that follows.
The apply runs as a CLI process against a sandbox served by a thread of this process (idle but
for the server while the CLI runs), so that its counts can be read; the sequential script runs
in this process, so its sandbox runs in its own process (`syft-reconciler sandbox serve`).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import httpx

from reconciler.sandbox import SandboxConfig, SandboxServer

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run
from run import run_cli, sandbox

ENV_KEY = {"OPENAI_API_KEY": "sk-bench", "WEAVIATE_KEY": "wv-bench"}


def sizes(scale: float) -> tuple[int, int, int]:
    return max(1, int(200 * scale)), max(1, int(50 * scale)), max(1, int(200 * scale))


def generate(folder: Path, models: int, datasets: int, endpoints: int) -> None:
    for i in range(models):
        (folder / f"model-{i:04}.yaml").write_text(
            f"kind: Model\nname: model-{i:04}\ndtype: openai\nconfiguration:\n"
            f"  api_key: ${{OPENAI_API_KEY}}\n  model: gpt-4o\nsummary: m{i}\n"
        )
    for i in range(datasets):
        (folder / f"dataset-{i:04}.yaml").write_text(
            f"kind: Dataset\nname: data-{i:04}\ndtype: remote_weaviate\nconfiguration:\n"
            f"  http_url: http://w:8080\n  grpc_url: http://w:50051\n  api_key: ${{WEAVIATE_KEY}}\n"
            f"  collection_name: C{i}\n"
        )
    for i in range(endpoints):
        (folder / f"endpoint-{i:04}.yaml").write_text(
            f"kind: Endpoint\nslug: ep-{i:04}\nname: Endpoint {i}\nmodel: model-{i % models:04}\n"
            f"dataset: data-{i % datasets:04}\nsummary: e{i}\npolicies:\n"
            f"  - {{name: per-user, policy_type: rate_limit, configuration: {{limit: 10/m}}}}\n"
            f"  - {{name: staff, policy_type: access, configuration: {{allowed_users: ['*@example.org']}}}}\n"
        )


def sequential(url: str, models: int, datasets: int, endpoints: int) -> float:
    """The same creates, one request at a time, in dependency order."""
    start = time.perf_counter()
    with httpx.Client(base_url=url + "/api/v1", timeout=30) as c:
        model_ids = []
        for i in range(models):
            body = {"name": f"model-{i:04}", "dtype": "openai", "summary": f"m{i}", "tags": "",
                    "configuration": {"api_key": "sk-bench", "model": "gpt-4o"}}  # fmt: skip
            model_ids.append(c.post("/models/", json=body).json()["id"])
        dataset_ids = []
        for i in range(datasets):
            config = {"http_url": "http://w:8080", "grpc_url": "http://w:50051", "api_key": "wv-bench",
                      "collection_name": f"C{i}"}  # fmt: skip
            body = {"name": f"data-{i:04}", "dtype": "remote_weaviate", "configuration": config}
            dataset_ids.append(c.post("/datasets/", json=body).json()["id"])
        for i in range(endpoints):
            body = {"slug": f"ep-{i:04}", "name": f"Endpoint {i}", "summary": f"e{i}",
                    "model_id": model_ids[i % models], "dataset_id": dataset_ids[i % datasets]}  # fmt: skip
            endpoint_id = c.post("/endpoints/", json=body).json()["id"]
            c.post("/policies/", json={"name": "per-user", "policy_type": "rate_limit",
                                       "configuration": {"limit": "10/m"}, "endpoint_id": endpoint_id})  # fmt: skip
            c.post("/policies/", json={"name": "staff", "policy_type": "access",
                                       "configuration": {"allowed_users": ["*@example.org"]},
                                       "endpoint_id": endpoint_id})  # fmt: skip
    return time.perf_counter() - start


def noop_requests(folder: Path, url: str) -> int:
    """HTTP requests of the no-op plan's observe step (models, datasets, endpoints, policies)."""
    from reconciler.client import SpaceClient
    from reconciler.loading import load
    from reconciler.plan import Scope
    from reconciler.references import resolve_secrets
    from reconciler.round import observe_and_plan
    from reconciler.schemas import SchemaRegistry

    registry = SchemaRegistry.load()
    loaded = load([folder], registry)
    manifests, _ = resolve_secrets(loaded.manifests, ENV_KEY)
    datasets, _ = resolve_secrets(loaded.datasets, ENV_KEY)
    with SpaceClient(url) as client:
        observed = observe_and_plan(
            client,
            manifests,
            registry,
            scope=Scope(owner="bench"),
            datasets=datasets,
            endpoints=loaded.endpoints,
        )
        pending = [c.name for c in observed.plan.pending] + [c.label for c in observed.kinds.pending]
        assert not pending, [(c.op, c.diffs, c.reason) for c in observed.plan.pending][:2]
        return client.requests


def by_route(stats: dict[str, int]) -> list[str]:
    """The sandbox's counts ("POST /api/v1/models/": 100) as lines, the API prefix dropped."""
    rows = sorted(stats.items(), key=lambda kv: (kv[0].split(" ", 1)[1], kv[0]))
    return [f"  {key.replace(' /api/v1/', ' /'):<32} {count:>5}" for key, count in rows]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--latency-ms", type=int, default=20)
    parser.add_argument("--parallelism", type=int, default=8)
    parser.add_argument("--scale", type=float, default=1.0)
    args = parser.parse_args()
    os.environ.update(ENV_KEY)
    run.ENV.update(ENV_KEY)
    models, datasets, endpoints = sizes(args.scale)
    objects = models + datasets + endpoints * 3
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        generate(folder, models, datasets, endpoints)
        with SandboxServer(SandboxConfig(latency_ms=args.latency_ms)) as server:
            url = server.url
            wall, done = run_cli(
                "apply", str(folder), "--server", url, "-p", str(args.parallelism), "--owner", "bench"
            )
            if done.returncode != 0:
                print(done.stdout[-2000:], done.stderr[-2000:])
                return 1
            routes = server.stats()
            again, noop = run_cli("apply", str(folder), "--server", url, "--owner", "bench")
            assert noop.returncode == 0 and "created" not in noop.stdout.replace("0 created", ""), noop.stdout
            plan_wall, plan_run = run_cli(
                "plan", str(folder), "--server", url, "--owner", "bench", "--detailed-exitcode"
            )
            assert plan_run.returncode == 0, plan_run.stdout[-500:] + plan_run.stderr[-500:]
            requests = noop_requests(folder, url)
        with sandbox(args.latency_ms) as url:
            seq = sequential(url, models, datasets, endpoints)
    print(f"space: {models} models, {datasets} datasets, {endpoints} endpoints, {endpoints * 2} policies "
          f"({objects} objects), sandbox latency {args.latency_ms} ms")  # fmt: skip
    print(
        f"apply -p {args.parallelism} (CLI, startup included): {wall:.2f} s, {objects / wall:.0f} objects/s"
    )
    print(f"requests of that apply: {sum(routes.values())} (sequential script: {objects}, one POST each)")
    print("\n".join(by_route(routes)))
    print(f"second apply (no-op, CLI):               {again:.2f} s")
    print(f"no-op plan (CLI):                        {plan_wall:.2f} s, {requests} HTTP requests "
          f"(5 lists + 1 detail per endpoint of the manifests: {endpoints})")  # fmt: skip
    print(f"sequential script, dependency order:     {seq:.2f} s, {objects / seq:.0f} objects/s")
    print(f"ours vs sequential:                      {seq / wall:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
