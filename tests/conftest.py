"""Shared fixtures: one sandbox server per session, reset before each test that asks for it; the CLI
run in-process (`cli`), a manifest folder builder (`manifest_dir`) and a plain client on the
sandbox (`api`)."""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from reconciler.cli import main
from reconciler.sandbox import SandboxConfig, SandboxServer


@pytest.fixture(scope="session")
def sandbox_server() -> Iterator[SandboxServer]:
    """The session's sandbox on 127.0.0.1 (ephemeral port, in-memory db). Prefer `sandbox`."""
    with SandboxServer() as server:
        yield server


@pytest.fixture
def sandbox(sandbox_server: SandboxServer) -> SandboxServer:
    """The session's sandbox, wiped and back to the default config (no key, single tenant)."""
    sandbox_server.reset(SandboxConfig())
    return sandbox_server


@pytest.fixture
def sandbox_factory(sandbox: SandboxServer) -> Callable[..., SandboxServer]:
    """`sandbox_factory(token="t", multi_tenancy=True)` (or a SandboxConfig): the session's
    sandbox, wiped and running that config until the next test resets it."""

    def configure(config: SandboxConfig | None = None, **fields: Any) -> SandboxServer:
        if config is not None and fields:
            raise TypeError("pass a SandboxConfig or its fields, not both")
        sandbox.reset(config if config is not None else SandboxConfig(**fields))
        return sandbox

    return configure


@dataclass
class Run:
    code: int
    out: str
    err: str

    @property
    def all(self) -> str:
        return self.out + self.err


@pytest.fixture
def cli(capsys, monkeypatch):
    """Run `syft-reconciler ARGS` in-process; returns exit code, stdout and stderr."""
    for var in ("SYFT_SPACE_URL", "SYFT_SPACE_TOKEN", "SYFT_SPACE_TENANT", "NO_COLOR", "FORCE_COLOR"):
        monkeypatch.delenv(var, raising=False)

    def run(*args: str) -> Run:
        capsys.readouterr()
        code = main([str(a) for a in args])
        captured = capsys.readouterr()
        return Run(code, captured.out, captured.err)

    return run


@pytest.fixture
def manifest_dir(tmp_path: Path):
    """Write {relative path: yaml text} under a fresh folder and return it."""
    root = tmp_path / "manifests"
    root.mkdir()

    def write(files: dict[str, str]) -> Path:
        for rel, text in files.items():
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(text) if text.startswith("\n") else text)
        return root

    return write


@pytest.fixture
def api(sandbox):
    """A plain httpx client on the sandbox, for arranging and inspecting server state."""
    with httpx.Client(base_url=sandbox.url + "/api/v1") as client:
        yield client
