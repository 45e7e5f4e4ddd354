#!/usr/bin/env python3
"""Radon's cyclomatic complexity of every function, method and closure, against a limit.

Radon's measure counts boolean operators (`a and b or c` is +2), unlike ruff's mccabe (C901), so a
long condition counts as the branches it hides.

    python scripts/complexity.py                  # reconciler/, limit 15
    python scripts/complexity.py --max 10 a.py b/

Prints `path:line: name: complexity N (limit M)` for each function over the limit and exits 1; else
prints `complexity: N functions, all <= M` and exits 0. A file that does not parse exits 2.
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from radon.complexity import cc_visit, cc_visit_ast
from radon.visitors import Class, Function


@dataclass(frozen=True)
class Measured:
    path: str
    line: int
    name: str
    complexity: int


def _flatten(blocks: Iterable[Function | Class], prefix: str = "") -> Iterator[tuple[str, Function]]:
    """Every function in radon's blocks with its dotted name: methods, closures, inner classes' methods."""
    for block in blocks:
        if isinstance(block, Class):
            yield from _flatten([*block.methods, *block.inner_classes], f"{prefix}{block.name}.")
        else:
            yield f"{prefix}{block.name}", block
            yield from _flatten(block.closures, f"{prefix}{block.name}.")


def measure(source: str, path: str) -> list[Measured]:
    """Each function of one file, once, in line order.

    Radon's blocks list a class's methods both on their own and under the class, and leave out a
    class defined inside a function body; every ClassDef is visited on its own to bring those in,
    and a function met twice (same line and column) is kept once, under its first, fullest name.
    """
    tree = ast.parse(source, path)
    found: dict[tuple[int, int], Measured] = {}
    roots = [b for b in cc_visit(source) if isinstance(b, Class) or not b.is_method]
    nested_classes = [cc_visit_ast(node) for node in ast.walk(tree) if isinstance(node, ast.ClassDef)]
    for blocks in [roots, *([b for b in bs if isinstance(b, Class)] for bs in nested_classes)]:
        for name, function in _flatten(blocks):
            key = (function.lineno, function.col_offset)
            found.setdefault(key, Measured(path, function.lineno, name, function.complexity))
    return sorted(found.values(), key=lambda m: m.line)


def python_files(paths: Iterable[str]) -> list[Path]:
    """The `.py` files named, and those below the folders named, sorted."""
    files: set[Path] = set()
    for name in paths:
        path = Path(name)
        files.update(path.rglob("*.py") if path.is_dir() else [path])
    return sorted(files)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max", type=int, default=15, help="the highest complexity allowed (default 15)")
    parser.add_argument(
        "paths", nargs="*", default=["reconciler"], help="files or folders (default reconciler)"
    )
    args = parser.parse_args(argv)
    measured: list[Measured] = []
    for path in python_files(args.paths):
        try:
            measured.extend(measure(path.read_text(encoding="utf-8"), str(path)))
        except (OSError, SyntaxError, ValueError) as exc:
            print(f"{path}: cannot measure: {exc}", file=sys.stderr)
            return 2
    over = [m for m in measured if m.complexity > args.max]
    for m in over:
        print(f"{m.path}:{m.line}: {m.name}: complexity {m.complexity} (limit {args.max})")
    if over:
        return 1
    print(f"complexity: {len(measured)} functions, all <= {args.max}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
