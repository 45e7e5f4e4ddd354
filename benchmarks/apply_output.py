"""What a person sees of a large apply: lines and bytes, through a pipe, on a terminal, and on Ctrl-C.

    python benchmarks/apply_output.py [--models 2000] [--excerpt 6]

The sandbox runs in its own process on loopback (`--db :memory:`), a fresh one per run. Three runs
of `syft-reconciler apply` over N new models:
  1. through a pipe (CI): stdout and stderr lines and bytes, with the first and last lines;
  2. on a pseudo-terminal (a person): bytes and lines the terminal receives, and whether colour and
     a redrawn progress bar are in them;
  3. on a pseudo-terminal against a slow sandbox (--latency-ms 20), Ctrl-C once 100 models exist (a twentieth at small N):
     lines printed after the interrupt.
Issue 16 asks for these figures before and after; nothing here asserts a number.
"""

from __future__ import annotations

import argparse
import os
import pty
import re
import select
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

# the same manifest text, free port and polling as the watch benchmark beside it
from watch_latency import Process, model_yaml, start_sandbox

PY = sys.executable
ENV = {**os.environ, "OPENAI_API_KEY": "sk-benchmark", "NO_COLOR": "", "FORCE_COLOR": ""}
for _name in ("NO_COLOR", "FORCE_COLOR", "SYFT_SPACE_URL", "SYFT_SPACE_TOKEN"):
    ENV.pop(_name, None)


def sandbox(latency_ms: int = 0) -> tuple[Process, str]:
    return start_sandbox(
        Path(tempfile.gettempdir()), *(["--latency-ms", str(latency_ms)] if latency_ms else [])
    )


def model_count(url: str) -> int:
    try:
        return len(httpx.get(url + "/api/v1/models", timeout=5, follow_redirects=True).json())
    except (httpx.HTTPError, ValueError):
        return 0


def on_pty(args: list[str], env: dict[str, str], interrupt_when=None) -> tuple[bytes, int, bytes]:
    """Run on a pseudo-terminal (stdin, stdout, stderr all the terminal); returns what the terminal
    received, the exit code, and what it received after the interrupt (if one was sent)."""
    main, child = pty.openpty()
    proc = subprocess.Popen(args, stdin=child, stdout=child, stderr=child, env=env, close_fds=True)
    os.close(child)
    seen = bytearray()
    after = -1
    while True:
        if after < 0 and interrupt_when is not None and interrupt_when():
            after = len(seen)
            proc.send_signal(signal.SIGINT)
        ready, _, _ = select.select([main], [], [], 0.05)
        if ready:
            try:
                chunk = os.read(main, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            seen += chunk
        elif proc.poll() is not None:
            break
    code = proc.wait(60)
    os.close(main)
    return bytes(seen), code, bytes(seen[after:]) if after >= 0 else b""


SGR = re.compile(r"\x1b\[[0-9;]*m")
CLEAR = re.compile(r"\x1b\[2?K")
ESCAPE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def visible(text: str) -> str:
    """Roughly what stays on the screen: a line cleared and redrawn counts once, escapes dropped."""
    lines: list[str] = []
    for raw in text.replace("\r\n", "\n").split("\n"):
        if CLEAR.search(raw) and lines and "\x1b[1A" in raw:
            lines.pop()  # cursor up and clear: the bar's line is replaced
        lines.append(ESCAPE.sub("", raw.rsplit("\r", 1)[-1]))
    return "\n".join(line for line in lines if line.strip())


def shape(text: str) -> str:
    return f"{text.count(chr(10)):,} lines, {len(text.encode()):,} bytes"


def excerpt(text: str, n: int) -> str:
    lines = text.splitlines()
    if len(lines) <= 2 * n:
        return "\n".join("    | " + line for line in lines)
    head = ["    | " + line for line in lines[:n]]
    tail = ["    | " + line for line in lines[-n:]]
    return "\n".join([*head, f"    | … {len(lines) - 2 * n:,} more lines …", *tail])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", type=int, default=2000)
    parser.add_argument("--excerpt", type=int, default=6)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        manifests = Path(tmp) / "manifests"
        manifests.mkdir()
        for i in range(args.models):
            (manifests / f"m{i:05d}.yaml").write_text(model_yaml(f"m{i:05d}"))
        command = [PY, "-m", "reconciler", "apply", str(manifests), "--token", "bench"]

        proc, url = sandbox()
        try:
            start = time.perf_counter()
            done = subprocess.run(
                [*command, "--server", url], capture_output=True, text=True, env=ENV, cwd=tmp
            )
            took = time.perf_counter() - start
        finally:
            proc.stop()
        print(f"apply of {args.models:,} new models through a pipe: exit {done.returncode}, {took:.1f} s")
        print(f"  stdout: {shape(done.stdout)}")
        print(excerpt(done.stdout, args.excerpt))
        print(f"  stderr: {shape(done.stderr)}")
        print(excerpt(done.stderr, args.excerpt))

        proc, url = sandbox()
        try:
            seen, code, _ = on_pty([*command, "--server", url], {**ENV, "TERM": "xterm-256color"})
        finally:
            proc.stop()
        text = seen.decode(errors="replace")
        print(f"apply of {args.models:,} new models on a terminal: exit {code}")
        print(f"  the terminal received {shape(text)}")
        print(f"  colour (SGR escapes): {'yes' if SGR.search(text) else 'no'}")
        print(f"  line redraws (clear-line escapes): {len(CLEAR.findall(text)):,}")
        print(f"  visible lines once redrawn: {len(visible(text).splitlines()):,}")

        stop_at = min(100, max(1, args.models // 20))
        proc, url = sandbox(latency_ms=20)
        try:
            seen, code, after = on_pty(
                [*command, "--server", url, "-p", "2"],
                {**ENV, "TERM": "xterm-256color"},
                interrupt_when=lambda: model_count(url) >= stop_at,
            )
        finally:
            proc.stop()
        tail = after.decode(errors="replace")
        print(f"Ctrl-C once {stop_at} of {args.models:,} models exist (latency 20 ms, -p 2): exit {code}")
        print(f"  after the interrupt the terminal received {shape(tail)}")
        print(excerpt(visible(tail), 3))


if __name__ == "__main__":
    main()
