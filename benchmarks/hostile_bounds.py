"""Bounds under hostile conditions, as wall time of the real CLI (a separate process each).

    python benchmarks/hostile_bounds.py

1. `validate` of one manifest with 100,000 comma-separated tags (was 32 s: a quadratic de-dup).
2. `plan --timeout 2 --retries 0` against a server that trickles its answer one byte every 0.1 s
   (the answer would take ~40 s; the deadline ends it).
3. `plan` against a server whose list never ends (stops at the 64 MiB body cap).
The misbehaving server is the test fixture (tests/hostile/misbehaving.py), run in this process.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.hostile.misbehaving import Misbehaving, endless, trickle

GOOD = "kind: Model\nname: ok\ndtype: ollama\nconfiguration:\n  model: llama3\n"


def timed(*args: str) -> tuple[float, int, str]:
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "reconciler", *args], capture_output=True, text=True)
    return (
        time.perf_counter() - start,
        proc.returncode,
        proc.stderr.strip().splitlines()[-1] if proc.stderr else "",
    )


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "m"
        root.mkdir()
        tags = ",".join(f"t{i}" for i in range(100_000))
        (root / "a.yaml").write_text(GOOD + f'tags: "{tags}"\n')
        seconds, code, _ = timed("validate", str(root))
        print(f"validate, 100,000 tags: {seconds:.2f} s (exit {code})")
        (root / "a.yaml").write_text(GOOD)
        with Misbehaving() as space:
            space.script("GET", "/api/v1/models/", trickle(b"[" + b" " * 400 + b"]", every=0.1))
            seconds, code, last = timed(
                "plan", str(root), "--server", space.url, "--timeout", "2", "--retries", "0"
            )
            print(f"plan --timeout 2 vs a trickling server: {seconds:.2f} s (exit {code}: {last})")
            space.script("GET", "/api/v1/models/", endless())
            seconds, code, last = timed("plan", str(root), "--server", space.url, "--timeout", "60")
            print(f"plan vs an endless list: {seconds:.2f} s (exit {code}: {last})")


if __name__ == "__main__":
    main()
