"""The `syft-reconciler` command (the only click imports live in this package).

Each command: options → one call into loading/round/apply/watch → render → exit code.
"""

from reconciler.cli import apply, export, plan, sandbox, schema, validate, watch  # noqa: F401  (register the commands)
from reconciler.cli.app import cli, main, run

__all__ = ["cli", "main", "run"]
