"""The README's terminal picture, made by the tool itself: docs/terminal.svg.

    python scripts/terminal_example.py [--out docs/terminal.svg]

Starts the sandbox in its own process, applies three models, edits the manifests (a new model, a
changed summary, a changed configuration), then runs `plan` and `apply --replace llama --auto-approve` on a
pseudo-terminal, as a person would, and renders exactly what the terminal received (colours
included) as an SVG with rich. Nothing is drawn by hand: change the output, run this again.
"""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from rich.console import Console
from rich.text import Text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
from apply_output import ESCAPE, SGR, on_pty, sandbox  # noqa: E402  (the benchmark's pty and sandbox)

PY = sys.executable

MODELS = {
    "gpt-4o": "dtype: openai\nconfiguration:\n  api_key: ${OPENAI_API_KEY}\n  model: gpt-4o\n",
    "claude": "dtype: anthropic\nconfiguration:\n  api_key: ${ANTHROPIC_API_KEY}\n  model: claude-sonnet-4\n",
    "llama": "dtype: ollama\nconfiguration:\n  model: llama3\n",
}


def write(manifests: Path, name: str, body: str, summary: str) -> None:
    (manifests / f"{name}.yaml").write_text(f"kind: Model\nname: {name}\n{body}summary: {summary}\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "terminal.svg")
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR")}
    env.update(OPENAI_API_KEY="sk-example", ANTHROPIC_API_KEY="sk-ant-example", TERM="xterm-256color")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        manifests = work / "manifests"
        manifests.mkdir()
        for name, body in MODELS.items():
            write(manifests, name, body, f"{name} for the support team")
        proc, url = sandbox()
        try:
            env["SYFT_SPACE_URL"] = url
            first = subprocess.run(
                [PY, "-m", "reconciler", "apply", "manifests/"], cwd=work, env=env, capture_output=True
            )
            if first.returncode != 0:
                raise SystemExit(first.stderr.decode())
            write(
                manifests,
                "mistral",
                "dtype: ollama\nconfiguration:\n  model: mistral\n",
                "a small local model",
            )
            write(manifests, "claude", MODELS["claude"], "claude for support and sales")
            write(
                manifests,
                "llama",
                MODELS["llama"].replace("llama3", "llama3.1"),
                "llama for the support team",
            )
            shots = []
            for command in (
                ["plan", "manifests/"],
                ["apply", "manifests/", "--replace", "llama", "--auto-approve"],
            ):
                cwd = os.getcwd()
                os.chdir(work)
                try:
                    seen, code, _ = on_pty([PY, "-m", "reconciler", *command], env)
                finally:
                    os.chdir(cwd)
                shots.append((command, seen.decode(), code))
        finally:
            proc.stop()
    record = Console(record=True, width=104, file=io.StringIO(), force_terminal=True)
    for command, text, code in shots:
        record.print(Text("$ ", style="bold") + Text("syft-reconciler " + " ".join(command), style="bold"))
        cleaned = text.replace("\r\n", "\n").replace(url, "https://space.example.org")
        cleaned = ESCAPE.sub(lambda m: m.group(0) if SGR.fullmatch(m.group(0)) else "", cleaned)
        record.print(Text.from_ansi(cleaned.rstrip("\n")))
        if code:
            record.print(Text(f"(exit {code})", style="dim"))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    record.save_svg(str(args.out), title="syft-reconciler")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
