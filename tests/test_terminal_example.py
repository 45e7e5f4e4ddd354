"""The README's terminal picture is made by the tool (scripts/terminal_example.py): it must keep
running, and what it draws must be the tool's coloured plan and apply."""

import html
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.timeout(120)
def test_the_readme_picture_is_drawn_from_a_real_plan_and_apply(tmp_path):
    out = tmp_path / "terminal.svg"
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "terminal_example.py"), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=110,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    svg = out.read_text()
    shown = [html.unescape(t).replace("\xa0", " ") for t in re.findall(r">([^<>]+)</text>", svg)]
    for expected in (
        "+ create",
        "~ update",
        "-/+ replace",
        "  DELETIONS (1): model llama (replace)",
        "created",
    ):
        assert expected in shown, shown
    assert any(t.startswith("Apply complete: 1 created, 1 updated, 1 replaced") for t in shown), shown
    fills = set(re.findall(r"fill: (#[0-9a-f]{6})", svg))
    assert {"#98a84b", "#d0b344", "#cc555a"} <= fills  # rich's green, yellow and red: + ~ -/+
    assert "sk-example" not in svg and "sk-ant-example" not in svg
    assert "docs/terminal.svg" in (ROOT / "README.md").read_text()
