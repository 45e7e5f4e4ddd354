"""How fast the sandbox creates and lists datasets, endpoints and policies (plain httpx, same process).

    .venv/bin/python benchmarks/sandbox_kinds.py [--endpoints 500] [--policies 400]

Creates one model per endpoint and 50 `remote_weaviate` datasets, then the endpoints (each with a
model and a dataset) and policies on the first endpoints, two each, one at a time; then the median
of 20 reads of each list and of one endpoint's detail. The real server does 72-80 endpoint and
162-191 policy creates/s, lists 500 endpoints in ~23 ms (median) and 200 policies in ~7 ms
(syft-space-api-kinds.md, "Speed"); the sandbox must stay well above it.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import httpx

from reconciler.sandbox import SandboxServer

DATASETS = 50
READS = 20


def _post(client: httpx.Client, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post(path, json=body)
    if response.status_code != 201:
        raise RuntimeError(f"POST {path}: {response.status_code} {response.text[:200]}")
    created: dict[str, Any] = response.json()
    return created


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--endpoints", type=int, default=500)
    parser.add_argument("--policies", type=int, default=400)
    args = parser.parse_args()
    weaviate = {
        "http_url": "http://w:8080",
        "grpc_url": "http://w:50051",
        "api_key": "k",
        "collection_name": "c",
    }
    with SandboxServer() as server, httpx.Client(base_url=server.url) as client:
        models = [
            _post(
                client,
                "/api/v1/models/",
                {"name": f"m{i}", "dtype": "openai", "configuration": {"api_key": "k"}},
            )
            for i in range(args.endpoints)
        ]
        datasets = [
            _post(
                client,
                "/api/v1/datasets/",
                {"name": f"d{i}", "dtype": "remote_weaviate", "configuration": weaviate},
            )
            for i in range(DATASETS)
        ]
        start = time.perf_counter()
        endpoints = [
            _post(
                client,
                "/api/v1/endpoints/",
                {
                    "name": f"E{i}",
                    "slug": f"ep-{i}",
                    "model_id": models[i]["id"],
                    "dataset_id": datasets[i % DATASETS]["id"],
                },
            )
            for i in range(args.endpoints)
        ]
        endpoint_rate = args.endpoints / (time.perf_counter() - start)
        start = time.perf_counter()
        for i in range(args.policies):
            body = {
                "name": f"p{i % 2}",
                "policy_type": "rate_limit",
                "configuration": {"limit": "5/m"},
                "endpoint_id": endpoints[i // 2]["id"],
            }
            _post(client, "/api/v1/policies/", body)
        policy_rate = args.policies / (time.perf_counter() - start)
        print(f"creates/s: endpoints {endpoint_rate:.0f}, policies {policy_rate:.0f}")
        for path in (
            "/api/v1/endpoints/",
            "/api/v1/policies/",
            "/api/v1/datasets/",
            "/api/v1/endpoints/ep-1",
        ):
            times = []
            for _ in range(READS):
                began = time.perf_counter()
                response = client.get(path)
                times.append(time.perf_counter() - began)
            median_ms = statistics.median(times) * 1000
            print(f"GET {path}: {len(response.content):,} bytes, median {median_ms:.1f} ms")


if __name__ == "__main__":
    main()
