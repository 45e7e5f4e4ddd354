"""scripts/complexity.py: radon's cyclomatic complexity (boolean operators count) of every function,
method and closure against a limit; over the limit is one line each and exit 1."""

import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("radon")  # the `check` extra

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "complexity.py"

SIMPLE = """\
def simple(a):
    if a:
        return 1
    return 2
"""

# 1 + 3 ifs + 4 boolean operators (`a and c and d` is 2) = 8; mccabe would say 4
BRANCHY = """\
class Box:
    def method(self, a, b, c, d):
        if a and b:
            return 1
        if c or d:
            return 2
        if a and c and d:
            return 3
        return 4
"""

NESTED = """\
def outer(x):
    def inner(a, b, c, d, e):
        return a and b and c and d and e
    class Local:
        def hidden(self, a, b, c):
            return a or b or c or a or b or c
    return inner
"""


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=60, cwd=ROOT
    )


def test_a_function_over_the_limit_is_reported_with_its_place_and_the_exit_is_1(tmp_path):
    (tmp_path / "simple.py").write_text(SIMPLE)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "branchy.py").write_text(BRANCHY)
    done = run("--max", "5", str(tmp_path))
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stdout.splitlines() == [
        f"{tmp_path / 'sub' / 'branchy.py'}:2: Box.method: complexity 8 (limit 5)"
    ]


def test_all_under_the_limit_is_one_line_and_exit_0(tmp_path):
    (tmp_path / "simple.py").write_text(SIMPLE)
    (tmp_path / "branchy.py").write_text(BRANCHY)
    done = run("--max", "8", str(tmp_path))
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout == "complexity: 2 functions, all <= 8\n"


def test_closures_and_methods_of_a_class_inside_a_function_are_measured(tmp_path):
    (tmp_path / "nested.py").write_text(NESTED)
    done = run("--max", "4", str(tmp_path / "nested.py"))
    assert done.returncode == 1
    assert done.stdout.splitlines() == [
        f"{tmp_path / 'nested.py'}:2: outer.inner: complexity 5 (limit 4)",
        f"{tmp_path / 'nested.py'}:5: Local.hidden: complexity 6 (limit 4)",
    ]
    assert run("--max", "6", str(tmp_path / "nested.py")).stdout == "complexity: 3 functions, all <= 6\n"


def test_the_default_is_the_package_with_limit_15():
    done = run()
    assert done.returncode in (0, 1), done.stderr
    assert "(limit 15)" in done.stdout or done.stdout.endswith("all <= 15\n")
    assert all(line.startswith("reconciler") for line in done.stdout.splitlines() if "(limit" in line)
