"""Fixtures for the sandbox's own tests: a plain HTTP client on the session's sandbox."""

import httpx
import pytest


@pytest.fixture(scope="session")
def _session_http(sandbox_server):
    # One client for the session: building an httpx.Client (its SSL context) costs ~50 ms.
    with httpx.Client(base_url=sandbox_server.url, timeout=10) as client:
        yield client


@pytest.fixture
def http(sandbox, _session_http):
    """httpx on the freshly reset sandbox's root URL; redirects are not followed (307s stay visible)."""
    return _session_http
