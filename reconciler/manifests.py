"""Find manifest files and parse YAML keeping a line/column for every field.

PyYAML's loaders drop positions and keep the last of duplicate keys silently (yaml/pyyaml#165), so
we compose nodes with the libyaml C parser and build plain values ourselves, recording where each
field stands. `parse()` is pure; `read_paths()` is the only place that touches the file system.
This is the only module that imports yaml.
"""

from __future__ import annotations

import math
import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import yaml

from reconciler.model import Problem
from reconciler.tree import FieldPath


class _Resolver(yaml.resolver.Resolver):
    """The safe resolver, minus its unused path resolvers, with plain scalars' tags memoised.

    Even with the C parser, PyYAML calls back into Python to resolve every scalar; manifests repeat
    the same keys and values, so a small cache removes most of that cost.
    """

    _cache: ClassVar[dict[str, str]] = {}

    def descend_resolver(self, current_node: Any, current_index: Any) -> None:
        pass

    def ascend_resolver(self) -> None:
        pass

    def resolve(self, kind: Any, value: Any, implicit: Any) -> str:
        if kind is yaml.ScalarNode and implicit[0]:
            tag = self._cache.get(value)
            if tag is None:
                tag = str(super().resolve(kind, value, implicit))  # type: ignore[no-untyped-call]
                if len(self._cache) > 100_000:
                    self._cache.clear()
                self._cache[value] = tag
            return tag
        return str(super().resolve(kind, value, implicit))  # type: ignore[no-untyped-call]


try:  # the C parser is ~10x faster; PyYAML wheels ship it
    from yaml._yaml import CParser

    class _Loader(CParser, _Resolver):
        def __init__(self, stream: str) -> None:
            CParser.__init__(self, stream)
            _Resolver.__init__(self)

except ImportError:  # pragma: no cover - a PyYAML built without libyaml

    class _Loader(yaml.SafeLoader, _Resolver):  # type: ignore[no-redef]
        pass


MAX_FILE_BYTES = 10 * 1024 * 1024  # a manifest folder is config, not data
MAX_NODES_PER_DOCUMENT = 10_000  # bounds alias expansion ("billion laughs")
MAX_DEPTH = 32  # nesting; deeper input would exhaust the recursion of every walker after this one
SUFFIXES = (".yaml", ".yml")

_STR = "tag:yaml.org,2002:str"
_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"
_constructor = yaml.constructor.SafeConstructor()


@dataclass(frozen=True)
class Document:
    """One YAML document: its value and where each field path stands (line, column; 1-based)."""

    path: str
    index: int  # position of the document in its file, from 0
    value: Any
    positions: dict[FieldPath, tuple[int, int]]
    key_positions: dict[FieldPath, tuple[int, int]]
    has_variables: bool = False  # its file mentions ${var:…} (variables.py), so substitute

    def where(self, field_path: Iterable[str | int], *, key: bool = False) -> tuple[int, int]:
        """The closest known position of a field: itself, else its nearest parent."""
        path = tuple(field_path)
        table = self.key_positions if key else self.positions
        while path:
            if path in table:
                return table[path]
            if key and path in self.positions:
                return self.positions[path]
            path = path[:-1]
        return self.positions.get((), (1, 1))


class _Bad(Exception):
    def __init__(self, node: yaml.Node, field: str, message: str) -> None:
        super().__init__(message)
        self.line = node.start_mark.line + 1
        self.column = node.start_mark.column + 1
        self.field = field
        self.message = message


class _TooBig(Exception):
    """The document expands past MAX_NODES_PER_DOCUMENT values; reported at its start."""


def _dotted(path: FieldPath) -> str:
    return ".".join(str(p) for p in path)


_SCALAR_CONSTRUCTORS = {
    "tag:yaml.org,2002:int": _constructor.construct_yaml_int,
    "tag:yaml.org,2002:float": _constructor.construct_yaml_float,
    "tag:yaml.org,2002:bool": _constructor.construct_yaml_bool,
    "tag:yaml.org,2002:null": _constructor.construct_yaml_null,
}
_MERGE = "tag:yaml.org,2002:merge"


class _Builder:
    """Turns one composed node tree into plain values, recording positions.

    The hot path of `validate` on large folders: one call per node, no per-node allocations but
    the position tuples. Scalars are built by the safe constructor's per-tag functions directly
    (its `construct_object` caches every node it sees, which would grow without bound here).
    """

    def __init__(self) -> None:
        self.positions: dict[FieldPath, tuple[int, int]] = {}
        self.key_positions: dict[FieldPath, tuple[int, int]] = {}
        self.budget = MAX_NODES_PER_DOCUMENT

    def build(self, node: yaml.Node, path: FieldPath) -> Any:
        self.budget -= 1
        if self.budget < 0:
            raise _TooBig()
        if len(path) > MAX_DEPTH:
            raise _Bad(
                node,
                _dotted(path[:MAX_DEPTH]) + ".…",
                f"nested deeper than {MAX_DEPTH} levels; a manifest is a few levels deep",
            )
        mark = node.start_mark
        self.positions[path] = (mark.line + 1, mark.column + 1)
        tag = node.tag
        if tag == _STR:
            if node.__class__ is yaml.ScalarNode:
                return node.value
        elif tag == _MAP:
            if node.__class__ is yaml.MappingNode:
                return self._mapping(node, path)
        elif tag == _SEQ:
            if node.__class__ is yaml.SequenceNode:
                return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
        elif tag in _SCALAR_CONSTRUCTORS and node.__class__ is yaml.ScalarNode:
            return _scalar(node, tag, path)
        raise _Bad(
            node,
            _dotted(path),
            f"unsupported YAML tag {tag!r}: manifests hold plain strings, "
            "numbers, booleans, lists and mappings",
        )

    def _mapping(self, node: yaml.MappingNode, path: FieldPath) -> dict[str, Any]:
        out: dict[str, Any] = {}
        key_positions = self.key_positions
        for key_node, value_node in node.value:
            if key_node.__class__ is not yaml.ScalarNode or key_node.tag == _MERGE:
                raise _Bad(
                    key_node, _dotted(path), "keys must be plain strings (no merge keys or complex keys)"
                )
            key = key_node.value
            child = (*path, key)
            if key in out:
                first = key_positions[child]
                raise _Bad(
                    key_node,
                    _dotted(child),
                    f"duplicate key (first at line {first[0]}); YAML would keep only the last",
                )
            mark = key_node.start_mark
            key_positions[child] = (mark.line + 1, mark.column + 1)
            out[key] = self.build(value_node, child)
        return out


def _scalar(node: yaml.ScalarNode, tag: str, path: FieldPath) -> Any:
    """An int, float, bool or null scalar; one that does not convert, or is not finite, is `_Bad`."""
    try:
        value = _SCALAR_CONSTRUCTORS[tag](node)
    # `!!int "abc"`, `!!int ""`, `!!bool maybe`: the constructors raise anything
    except (ValueError, KeyError, IndexError, TypeError, OverflowError):
        shown = repr(node.value) if len(node.value) <= 40 else repr(node.value[:40] + "…")
        raise _Bad(node, _dotted(path), f"{shown} is not a valid {tag.rsplit(':', 1)[-1]}") from None
    if value.__class__ is float and not math.isfinite(value):
        raise _Bad(
            node,
            _dotted(path),
            f"{node.value} is not a finite number; JSON (and the server) cannot carry it",
        )
    return value


def _syntax_problem(exc: yaml.MarkedYAMLError, text: str, path: str) -> Problem:
    """A YAML syntax error at its line and column, with a hint when that line holds a tab."""
    mark = exc.problem_mark or exc.context_mark
    line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
    what = exc.problem or exc.context or "invalid YAML"
    lines = text.splitlines()
    bad_line = lines[line - 1] if 0 < line <= len(lines) else ""
    hint = "; indent with spaces, not tabs" if "\t" in bad_line else ""
    return Problem(path, line, column, "", f"YAML syntax error: {what}{hint}")


def parse(text: str, path: str) -> tuple[list[Document], list[Problem]]:
    """Parse one file's text into documents; a file with a syntax error yields only problems."""
    documents: list[Document] = []
    try:
        nodes = list(yaml.compose_all(text, Loader=_Loader))  # type: ignore[arg-type]  # a CParser subclass
    except RecursionError:  # libyaml stops at 1,000 levels, PyYAML's composer recurses before that
        return [], [Problem(path, 1, 1, "", f"YAML nested too deep (more than {MAX_DEPTH} levels)")]
    except yaml.MarkedYAMLError as exc:
        return [], [_syntax_problem(exc, text, path)]
    except yaml.YAMLError as exc:
        return [], [Problem(path, 1, 1, "", f"YAML error: {exc}")]
    problems: list[Problem] = []
    for index, node in enumerate(nodes):
        if node is None:
            continue
        builder = _Builder()
        try:
            value = builder.build(node, ())
        except _Bad as bad:
            problems.append(Problem(path, bad.line, bad.column, bad.field, bad.message))
            continue
        except _TooBig:
            problems.append(
                Problem(
                    path,
                    node.start_mark.line + 1,
                    node.start_mark.column + 1,
                    "",
                    f"document expands to more than {MAX_NODES_PER_DOCUMENT} values "
                    "(YAML aliases used as a bomb?); keep manifests small and alias-free",
                )
            )
            continue
        except yaml.YAMLError as exc:  # a scalar the safe constructor refuses
            problems.append(Problem(path, node.start_mark.line + 1, 1, "", f"YAML error: {exc}"))
            continue
        if value is None:  # an empty document (`---` with nothing after)
            continue
        documents.append(
            Document(path, index, value, builder.positions, builder.key_positions, "${var:" in text)
        )
    return documents, problems


def decode(data: bytes, path: str) -> tuple[str | None, Problem | None]:
    """Bytes to text: UTF-8, with or without a BOM; anything else is a problem with its line."""
    try:
        return data.decode("utf-8-sig"), None
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        return None, Problem(
            path, line, column, "", f"not UTF-8 (byte 0x{data[exc.start]:02x}); save the file as UTF-8"
        )


def find_files(roots: Iterable[Path]) -> tuple[list[Path], list[Problem]]:
    """`*.yaml`/`*.yml` below each root, sorted, and a problem for everything that could not be read.

    Nothing under a root is skipped quietly (a folder prune never saw would be pruned): a folder
    that cannot be listed, a broken symlink, or a symlink that leads outside its root is a problem
    that stops the run. Symlinks to files and folders inside the root are followed, each real folder
    once (loops end there). Dot-files and dot-folders are skipped, as documented.
    """
    found: list[str] = []  # sorted as strings: Path comparisons cost 0.3 s at 10,000 files
    problems: list[Problem] = []
    for root in roots:
        if not root.exists():
            kind = "broken symlink" if root.is_symlink() else "no such file or directory"
            problems.append(Problem(str(root), 1, 1, "", kind))
            continue
        if root.is_file():
            found.append(str(root))
            continue
        _walk(str(root), root.resolve(), set(), found, problems)
    return [Path(p) for p in sorted(set(found))], problems


def _walk(folder: str, real_root: Path, seen: set[str], found: list[str], problems: list[Problem]) -> None:
    """Manifest files below `folder` into `found`; what cannot be read into `problems`.

    Each real folder is walked once, however many symlinks lead to it: a loop ends there."""
    real = os.path.realpath(folder)
    if real in seen:
        return
    seen.add(real)
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError as exc:
        problems.append(
            Problem(
                folder,
                1,
                1,
                "",
                f"cannot read this folder: {exc.strerror or exc}; "
                "fix its permissions (a folder that is not read cannot be pruned safely)",
            )
        )
        return
    for entry in entries:
        if entry.name.startswith("."):
            continue
        if not entry.is_symlink():
            try:
                is_dir = entry.is_dir(follow_symlinks=False)
            except OSError:  # pragma: no cover - scandir already knows the type on Linux
                is_dir = False
            if is_dir:
                _walk(entry.path, real_root, seen, found, problems)
            elif entry.name.endswith(SUFFIXES):
                found.append(entry.path)
            continue
        try:
            target = Path(entry.path).resolve(strict=True)
        except (OSError, RuntimeError):
            problems.append(Problem(entry.path, 1, 1, "", "broken or looping symlink; fix or remove it"))
            continue
        if target.is_dir():
            if not target.is_relative_to(real_root):
                problems.append(
                    Problem(
                        entry.path,
                        1,
                        1,
                        "",
                        f"symlink to a folder outside {real_root} (to {target}); "
                        "not followed: move the manifests inside, or list the folder as a path",
                    )
                )
            else:
                _walk(entry.path, real_root, seen, found, problems)
            continue
        if not entry.name.endswith(SUFFIXES):
            continue
        if not target.is_relative_to(real_root):
            problems.append(
                Problem(
                    entry.path, 1, 1, "", f"symlink leads outside {real_root} (to {target}); not followed"
                )
            )
            continue
        found.append(entry.path)


def read_file(path: Path) -> tuple[list[Document], list[Problem]]:
    """Read, decode and parse one file, within the size limit."""
    label = str(path)
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):  # a FIFO or device would block or never end
            return [], [Problem(label, 1, 1, "", "not a regular file; not read")]
        size = info.st_size
        if size > MAX_FILE_BYTES:
            return [], [
                Problem(
                    label,
                    1,
                    1,
                    "",
                    f"file is {size / 1048576:.1f} MiB; the limit is {MAX_FILE_BYTES // 1048576} MiB — split it",
                )
            ]
        data = path.read_bytes()
    except OSError as exc:
        return [], [Problem(label, 1, 1, "", f"cannot read: {exc.strerror or exc}")]
    text, problem = decode(data, label)
    if problem:
        return [], [problem]
    assert text is not None
    return parse(text, label)


def read_paths(roots: Iterable[Path]) -> tuple[list[Document], list[Problem]]:
    """Every document below the roots, and every problem met on the way."""
    files, problems = find_files(roots)
    documents: list[Document] = []
    for path in files:
        docs, file_problems = read_file(path)
        documents.extend(docs)
        problems.extend(file_problems)
    return documents, problems


def read_variables(path: Path) -> tuple[dict[str, Any], list[Problem]]:
    """A `--var-file`: one YAML mapping of names to strings, numbers or booleans."""
    documents, problems = read_file(path)
    if problems:
        return {}, problems
    if len(documents) != 1 or not isinstance(documents[0].value, dict):
        return {}, [Problem(str(path), 1, 1, "", "a var file is one YAML mapping of NAME: value")]
    doc = documents[0]
    out: dict[str, Any] = {}
    for key, value in doc.value.items():
        line, column = doc.where((key,))
        if isinstance(value, (dict, list)) or value is None:
            problems.append(
                Problem(str(path), line, column, key, "a variable must be a string, number or boolean")
            )
        else:
            out[key] = value
    return out, problems
