"""The executor's own cost per write: the dependency schedule of N creates run with a no-op step, so
only its bookkeeping is measured (CPU seconds), at growing N: linear means N x 3 costs about x 3.

    python benchmarks/schedule_cost.py [--sizes 2000,6001,18000]
"""

from __future__ import annotations

import argparse
import time

from reconciler.apply import ApplyOptions, Executor
from reconciler.graph_apply import Schedule
from reconciler.kinds.graph import build
from reconciler.model import Change, Manifest, Op, Outcome, Plan, Result


def cost(n: int) -> float:
    plan = Plan(
        tuple(Change(Op.CREATE, f"m{i:06}", desired=Manifest(f"m{i:06}", "openai", {})) for i in range(n))
    )
    steps = build(plan, Plan())
    executor = Executor(None, ApplyOptions(parallelism=8))  # type: ignore[arg-type]  # no request is sent
    start = time.process_time()
    Schedule(steps, executor, lambda step: Outcome(step.change.name, Op.CREATE, Result.CREATED)).run(8)
    return time.process_time() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="2000,6001,18000")
    for n in (int(s) for s in parser.parse_args().sizes.split(",")):
        spent = cost(n)
        print(f"{n:>7,} writes: {spent:.2f} s CPU in the schedule ({spent / n * 1e6:.0f} us a write)")


if __name__ == "__main__":
    main()
