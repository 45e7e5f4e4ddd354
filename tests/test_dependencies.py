"""Dependencies that hold: every third-party import is declared, and the CLI works without the
sandbox's server stack (the `[sandbox]` extra), which the watch daemon's image leaves out."""

from __future__ import annotations

import ast
import subprocess
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")  # Python 3.11+
ROOT = Path(__file__).resolve().parent.parent
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
SERVER_STACK = ("fastapi", "starlette", "uvicorn", "httptools", "uvloop")


def _name(requirement: str) -> str:
    for stop in "<>=!~[; ":
        requirement = requirement.split(stop)[0]
    return requirement.strip().lower().replace("_", "-")


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return {name for name in found if name not in sys.stdlib_module_names and name != "reconciler"}


def _distribution(module: str) -> str:
    [dist, *_] = packages_distributions()[module]
    return dist.lower().replace("_", "-")


@pytest.mark.parametrize(
    "path", sorted((ROOT / "reconciler").rglob("*.py")), ids=lambda p: str(p.relative_to(ROOT))
)
def test_every_import_is_declared(path):
    declared = {_name(r) for r in PROJECT["dependencies"]}
    if "sandbox" in path.relative_to(ROOT / "reconciler").parts:
        declared |= {_name(r) for r in PROJECT["optional-dependencies"]["sandbox"]}
    for module in _imports(path):
        assert _distribution(module) in declared, (
            f"{path.name} imports {module}, which pyproject does not declare"
        )


def test_the_server_stack_is_an_extra_that_test_includes():
    runtime = {_name(r) for r in PROJECT["dependencies"]}
    assert not runtime & set(SERVER_STACK) and "fastjsonschema" not in runtime
    assert {"fastapi", "uvicorn"} <= {_name(r) for r in PROJECT["optional-dependencies"]["sandbox"]}
    assert "syft-space-reconciler[sandbox]" in PROJECT["optional-dependencies"]["test"]


# A run as in the daemon's image: the server stack cannot be imported.
WITHOUT_STACK = f"""
import sys
class Blocked:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {SERVER_STACK!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
sys.meta_path.insert(0, Blocked())
from reconciler.cli import main
code = main(sys.argv[1:])
loaded = sorted(m for m in sys.modules if m.split(".")[0] in {SERVER_STACK!r} + ("reconciler.sandbox",))
print("loaded:", loaded, file=sys.stderr)
sys.exit(code)
"""


def _without_stack(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", WITHOUT_STACK, *args], cwd=cwd, capture_output=True, text=True, timeout=60
    )


def test_plan_apply_and_watch_need_no_server_stack(tmp_path, sandbox):
    (tmp_path / "m.yaml").write_text(
        "kind: Model\nname: local\ndtype: ollama\nconfiguration: {model: llama3}\n"
    )
    checked = _without_stack("validate", str(tmp_path), cwd=tmp_path)
    applied = _without_stack("apply", str(tmp_path), "--server", sandbox.url, cwd=tmp_path)
    helped = _without_stack("watch", "--help", cwd=tmp_path)
    for run in (checked, applied, helped):
        assert run.returncode == 0, run.stderr
        assert "loaded: []" in run.stderr and "Traceback" not in run.stderr
    assert "created  model local" in applied.stdout


@pytest.mark.parametrize("args", [["plan", ".", "--sandbox"], ["sandbox", "serve", "--port", "0"]])
def test_the_sandbox_without_its_extra_says_what_to_install(tmp_path, args):
    (tmp_path / "m.yaml").write_text(
        "kind: Model\nname: local\ndtype: ollama\nconfiguration: {model: llama3}\n"
    )
    run = _without_stack(*args, cwd=tmp_path)
    assert run.returncode != 0 and "Traceback" not in run.stderr
    assert "pip install 'syft-space-reconciler[sandbox]'" in run.stderr, run.stderr
