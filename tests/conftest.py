"""Shared fixtures: one sandbox server per session, reset before each test that asks for it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

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
