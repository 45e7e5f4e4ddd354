"""The embedded sandbox, loaded on demand: its web server stack (FastAPI, uvicorn) is the optional
extra `syft-space-reconciler[sandbox]`, so that the watch daemon's image carries no web framework it
never runs. Without the extra, `--sandbox` and `sandbox serve` say what to install."""

from __future__ import annotations

from types import ModuleType

from reconciler.errors import ReconcilerError

SERVER_STACK = frozenset({"fastapi", "starlette", "uvicorn", "httptools", "uvloop"})
INSTALL_HINT = "pip install 'syft-space-reconciler[sandbox]'"


def sandbox_module() -> ModuleType:
    """`reconciler.sandbox`, or one clear error naming the extra to install."""
    try:
        import reconciler.sandbox as sandbox
    except ModuleNotFoundError as exc:
        missing = (exc.name or "").split(".")[0]
        if missing not in SERVER_STACK:
            raise
        raise ReconcilerError(
            f"the local sandbox needs its web server stack ({missing} is not installed): {INSTALL_HINT}"
        ) from None
    return sandbox
