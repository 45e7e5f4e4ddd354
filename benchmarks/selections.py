"""Dataset selections: what converging 100 datasets x 50 picks costs, in selection requests.

    python benchmarks/selections.py [--datasets 100] [--picks 50] [--changed 0.1]

Applies the datasets with their picks (the create bodies carry them), then changes `--changed` of
the picks (re-described, dropped and added in equal parts) in two shapes: spread over every dataset,
and clustered in that share of the datasets; then a no-op apply. Prints each apply's selection
requests per route (the sandbox's traffic accounting) and wall time. The rule it shows: at most one
DELETE and one POST per changed dataset, and none for a dataset whose picks are in sync (each
selection write restarts the dataset's ingestion on the real server).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import yaml

from reconciler.sandbox import SandboxConfig, SandboxServer

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run
from run import run_cli

ENV_KEY = {"WEAVIATE_KEY": "wv-bench"}


def picks_of(dataset: int, picks: int) -> list[dict[str, str]]:
    return [{"item_id": f"/data/{dataset:03}/{i:03}.txt", "description": f"item {i}"} for i in range(picks)]


def write(folder: Path, selections: list[list[dict[str, str]]]) -> None:
    for i, picks in enumerate(selections):
        document = {
            "kind": "Dataset",
            "name": f"data-{i:03}",
            "dtype": "remote_weaviate",
            "configuration": {
                "http_url": "http://w:8080",
                "grpc_url": "http://w:50051",
                "api_key": "${WEAVIATE_KEY}",
                "collection_name": f"C{i}",
            },
            "selected_items": picks,
        }
        (folder / f"data-{i:03}.yaml").write_text(yaml.safe_dump(document, sort_keys=False))


def change(picks: list[dict[str, str]], count: int, tag: str) -> list[dict[str, str]]:
    """`count` picks changed: a third re-described, a third dropped, a third added."""
    third = max(1, count // 3)
    out = [dict(p, description=p["description"] + " (new)") if i < third else p for i, p in enumerate(picks)]
    out = out[: len(out) - third]
    return out + [
        {"item_id": f"/data/new/{tag}/{i}.txt", "description": "new"} for i in range(count - 2 * third)
    ]


def selection_requests(server: SandboxServer, before: dict[str, int]) -> dict[str, int]:
    now = server.stats()
    return {k: v - before.get(k, 0) for k, v in now.items() if "/selection" in k and v - before.get(k, 0)}


def apply(server: SandboxServer, folder: Path, label: str) -> None:
    before = server.stats()
    wall, done = run_cli(
        "apply", str(folder), "--server", server.url, "--owner", "bench", "--parallelism", "8"
    )
    if done.returncode != 0:
        sys.exit(f"{label}: apply failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    counts = selection_requests(server, before)
    writes = sum(v for k, v in counts.items() if not k.startswith("GET"))
    shown = ", ".join(f"{k} x{v}" for k, v in sorted(counts.items())) or "none"
    print(f"{label:<44} {wall:6.2f} s  {writes:4} selection writes  ({shown})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", type=int, default=100)
    parser.add_argument("--picks", type=int, default=50)
    parser.add_argument("--changed", type=float, default=0.1)
    args = parser.parse_args()
    run.ENV.update(ENV_KEY)
    n, k = args.datasets, args.picks
    changed = max(1, round(n * k * args.changed))
    print(f"{n} datasets x {k} picks; {changed} picks changed ({args.changed:.0%})")
    base = [picks_of(i, k) for i in range(n)]
    with SandboxServer(SandboxConfig()) as server, tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        write(folder, base)
        apply(server, folder, "create (picks in the create bodies)")
        apply(server, folder, "no-op")
        per = max(1, changed // n)
        write(folder, [change(p, per, f"s{i}") for i, p in enumerate(base)])
        apply(server, folder, f"spread: {per} changed in each of {n} datasets")
        apply(server, folder, "no-op")
        write(folder, base)
        apply(server, folder, "back to the base")
        clustered = max(1, round(n * args.changed))
        write(
            folder,
            [
                change(p, min(k, changed // clustered), f"c{i}") if i < clustered else p
                for i, p in enumerate(base)
            ],
        )
        apply(server, folder, f"clustered: {changed // clustered} changed in {clustered} datasets")
        apply(server, folder, "no-op")


if __name__ == "__main__":
    main()
