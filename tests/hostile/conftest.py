import pytest

from tests.e2e.conftest import api, cli, manifest_dir  # noqa: F401  (shared fixtures)
from tests.hostile.misbehaving import serve


@pytest.fixture
def space():
    """A misbehaving server (tests/hostile/misbehaving.py), well-behaved until scripted."""
    yield from serve()
