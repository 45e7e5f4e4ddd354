"""Acting on part of the set: `-l/--selector KEY=GLOB` and `--target NAME` (pure).

The same grammar serves `export` and `plan`/`apply`/`watch`. A selection is applied to both sides:
only selected manifests are planned, and only selected models on the server can be deleted,
replaced or reported, so nothing outside the selection is ever touched (Terraform's `-target`,
decK's `select_tags`).
"""

from __future__ import annotations

import difflib
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


def _closest(name: str, names: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, sorted(names), n=1)
    return close[0] if close else ""


def nothing_matches(missing: Sequence[tuple[str, str]]) -> str:
    """The one-line error for the parts of a selection that select nothing (`unmatched`)."""
    hints = [f" (did you mean {close!r}?)" if close else "" for _, close in missing]
    if len(missing) == 1:
        return f"{missing[0][0]} matches no manifest and no object on the server{hints[0]}"
    spelled = [what + hint for (what, _), hint in zip(missing, hints, strict=True)]
    return f"{', '.join(spelled[:-1])} and {spelled[-1]} match no manifest and no object on the server"


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

    def unmatched(self, candidates: Iterable[tuple[str, str, Iterable[str]]]) -> list[tuple[str, str]]:
        """Each target and selector that selects none of `candidates` (the name, dtype and tags of
        every manifest and of every object on the server), each judged on its own: as the command
        line spells it, with the closest name there is for a mistyped target (else "")."""
        targets = set(self.targets)
        selectors = list(self.selectors)
        names: set[str] = set()
        for name, dtype, tags in candidates:
            names.add(name)
            targets.discard(name)
            if selectors:
                tags = tuple(tags)
                selectors = [s for s in selectors if not s.matches(name, dtype, tags)]
        missing = [(f"--target {t!r}", _closest(t, names)) for t in sorted(targets)]
        return missing + [(f"-l {str(s)!r}", "") for s in selectors]

    def describe(self) -> str:
        parts = [str(s) for s in self.selectors] + [f"target={t}" for t in sorted(self.targets)]
        return " ".join(parts) or "everything"

    def as_json(self) -> dict[str, list[str]]:
        return {"selectors": [str(s) for s in self.selectors], "targets": sorted(self.targets)}

    @classmethod
    def from_options(cls, selectors: Sequence[str], targets: Sequence[str]) -> Selection:
        """From the command line (raises ValueError on a malformed selector)."""
        return cls(tuple(parse_selector(s) for s in selectors), frozenset(targets))
