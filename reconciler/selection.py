"""Acting on part of the set: `-l/--selector KEY=GLOB` and `--target NAME` (pure).

The same grammar serves `export` and `plan`/`apply`/`watch`. A selection is applied to both sides:
only selected manifests are planned, and only selected models on the server can be deleted,
replaced or reported, so nothing outside the selection is ever touched (Terraform's `-target`,
decK's `select_tags`).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

SelectorKey = Literal["name", "dtype", "tag"]
SELECTOR_KEYS: tuple[SelectorKey, ...] = ("name", "dtype", "tag")


@dataclass(frozen=True)
class Selector:
    """`KEY=GLOB`: name, dtype or any one user tag matches the glob (shell-style, case-sensitive)."""

    key: SelectorKey
    pattern: str

    def matches(self, name: str, dtype: str, tags: Iterable[str]) -> bool:
        if self.key == "tag":
            return any(fnmatch.fnmatchcase(tag, self.pattern) for tag in tags)
        return fnmatch.fnmatchcase(name if self.key == "name" else dtype, self.pattern)

    def __str__(self) -> str:
        return f"{self.key}={self.pattern}"


def parse_selector(text: str) -> Selector:
    """`name=gpt-*`, `dtype=openai`, `tag=prod`; raises ValueError with a one-line reason."""
    key, sep, pattern = text.partition("=")
    key = key.strip()
    if not sep or key not in SELECTOR_KEYS:
        raise ValueError(f"`{text}` is not KEY=GLOB with KEY one of {', '.join(SELECTOR_KEYS)}")
    return Selector(next(k for k in SELECTOR_KEYS if k == key), pattern)


@dataclass(frozen=True)
class Selection:
    """Every selector must match, and when targets are given the name must be one of them."""

    selectors: tuple[Selector, ...] = ()
    targets: frozenset[str] = frozenset()

    @property
    def everything(self) -> bool:
        return not self.selectors and not self.targets

    def selects(self, name: str, dtype: str, tags: Iterable[str]) -> bool:
        if self.targets and name not in self.targets:
            return False
        tags = tuple(tags)
        return all(s.matches(name, dtype, tags) for s in self.selectors)

    def describe(self) -> str:
        parts = [str(s) for s in self.selectors] + [f"target={t}" for t in sorted(self.targets)]
        return " ".join(parts) or "everything"

    def as_json(self) -> dict[str, list[str]]:
        return {"selectors": [str(s) for s in self.selectors], "targets": sorted(self.targets)}

    @classmethod
    def from_options(cls, selectors: Sequence[str], targets: Sequence[str]) -> Selection:
        """From the command line (raises ValueError on a malformed selector)."""
        return cls(tuple(parse_selector(s) for s in selectors), frozenset(targets))
