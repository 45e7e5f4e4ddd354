"""The sandbox shares nothing with the client's view of the API: it imports nothing from `reconciler`
outside `reconciler.sandbox`, and reads the bundled schemas itself."""

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

from reconciler.sandbox import SandboxConfig, bundled

SANDBOX = Path(__file__).resolve().parents[2] / "reconciler" / "sandbox"


def imported_modules(path):
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path.name}: relative import"
            yield node.module or ""


@pytest.mark.parametrize("path", sorted(SANDBOX.glob("*.py")), ids=lambda p: p.name)
def test_no_module_of_the_sandbox_imports_the_rest_of_reconciler(path):
    foreign = [
        m
        for m in imported_modules(path)
        if (m == "reconciler" or m.startswith("reconciler.")) and not m.startswith("reconciler.sandbox")
    ]
    assert foreign == []


def test_importing_and_building_the_sandbox_loads_no_other_reconciler_module():
    code = (
        "import sys\n"
        "from reconciler.sandbox import create_app\n"
        "create_app()\n"
        "print('\\n'.join(sorted(m for m in sys.modules if m.startswith('reconciler'))))\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = run.stdout.split()
    assert "reconciler.sandbox.app" in loaded
    assert [m for m in loaded if m != "reconciler" and not m.startswith("reconciler.sandbox")] == []


def test_the_bundled_kind_schemas_are_read_from_their_folders():
    assert sorted(bundled.load("datasets")) == ["local_file", "remote_weaviate", "wordpress"]
    assert sorted(bundled.load("policies")) == ["access", "rate_limit"]
    # The model types are the top-level files only: the kinds' folders are not model dtypes.
    assert sorted(bundled.load()) == ["anthropic", "ollama", "openai", "vllm"]
    folder = bundled.schema_dir()
    for path in sorted(folder.glob("datasets/*.json")) + sorted(folder.glob("policies/*.json")):
        schema = json.loads(path.read_text(encoding="utf-8"))
        assert schema["additionalProperties"] is False and schema["type"] == "object"


def test_the_provisioner_setting_takes_ok_or_missing():
    assert SandboxConfig().provisioner == "ok"
    with pytest.raises(ValueError, match="provisioner must be 'ok' or 'missing'"):
        SandboxConfig(provisioner="maybe")


def test_the_serve_command_refuses_another_provisioner_value():
    from click.testing import CliRunner

    from reconciler.cli import cli

    result = CliRunner().invoke(cli, ["sandbox", "serve", "--provisioner", "maybe"])
    assert result.exit_code == 2
    assert "'maybe' is not one of 'ok', 'missing'" in result.output
