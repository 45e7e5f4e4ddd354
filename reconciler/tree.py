"""The one walk over JSON-like values (dicts, lists, scalars) that every other module uses (pure).

`rebuild()` copies a value, letting a callback replace any node (a reference, a string to
substitute, a secret to scrub) or let the walk descend into it; `nodes()` visits every node with
its path. Field paths are tuples of keys and indexes, as problems and positions name them.
Inputs are at most manifests.MAX_DEPTH deep, so plain recursion is safe.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

FieldPath = tuple[str | int, ...]


class _Descend:
    """The callback's answer "not this node: walk into it" (for scalars: keep it as it is)."""


DESCEND: Any = _Descend()


def rebuild(value: Any, visit: Callable[[Any, FieldPath], Any], path: FieldPath = ()) -> Any:
    """A copy of `value` where `visit(node, path)` replaced the nodes it did not answer DESCEND."""
    replaced = visit(value, path)
    if replaced is not DESCEND:
        return replaced
    if isinstance(value, dict):
        return {key: rebuild(item, visit, (*path, key)) for key, item in value.items()}
    if isinstance(value, list):
        return [rebuild(item, visit, (*path, index)) for index, item in enumerate(value)]
    return value


def nodes(value: Any, path: FieldPath = ()) -> Iterator[tuple[FieldPath, Any]]:
    """Every node with its path, parents before their children."""
    yield path, value
    if isinstance(value, dict):
        for key, item in value.items():
            yield from nodes(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from nodes(item, (*path, index))
