import pytest

from tests.hostile.misbehaving import serve


@pytest.fixture
def space():
    """A misbehaving server (tests/hostile/misbehaving.py), well-behaved until scripted."""
    yield from serve()
