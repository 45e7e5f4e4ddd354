"""Find manifest files and parse YAML keeping a line/column for every field.

PyYAML's loaders drop positions and keep the last of duplicate keys silently (yaml/pyyaml#165), so
we compose nodes with the libyaml C parser and build plain values ourselves, recording where each
field stands. `parse()` is pure; `read_paths()` is the only place that touches the file system.
This is the only module that imports yaml.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from reconciler.model import Problem

try:  # the C parser is ~10x faster; PyYAML wheels ship it
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]

MAX_FILE_BYTES = 10 * 1024 * 1024  # a manifest folder is config, not data
MAX_NODES_PER_DOCUMENT = 10_000  # bounds alias expansion ("billion laughs")
SUFFIXES = (".yaml", ".yml")

_STR = "tag:yaml.org,2002:str"
_SCALAR_TAGS = {
    _STR,
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:null",
}
_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"
_constructor = yaml.constructor.SafeConstructor()

FieldPath = tuple[str | int, ...]


@dataclass(frozen=True)
class Document:
    """One YAML document: its value and where each field path stands (line, column; 1-based)."""

    path: str
    index: int  # position of the document in its file, from 0
    value: Any
    positions: dict[FieldPath, tuple[int, int]]
    key_positions: dict[FieldPath, tuple[int, int]]

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


class _Builder:
    """Turns one composed node tree into plain values, recording positions."""

    def __init__(self) -> None:
        self.positions: dict[FieldPath, tuple[int, int]] = {}
        self.key_positions: dict[FieldPath, tuple[int, int]] = {}
        self.count = 0

    def build(self, node: yaml.Node, path: FieldPath) -> Any:
        self.count += 1
        if self.count > MAX_NODES_PER_DOCUMENT:
            raise _TooBig()
        self.positions[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path)
        if isinstance(node, yaml.SequenceNode):
            if node.tag != _SEQ:
                raise _Bad(node, _dotted(path), f"unsupported YAML tag {node.tag!r}")
            return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
        if node.tag not in _SCALAR_TAGS:
            raise _Bad(
                node,
                _dotted(path),
                f"unsupported YAML tag {node.tag!r}: manifests hold plain strings, "
                "numbers, booleans, lists and mappings",
            )
        if node.tag == _STR:
            return node.value
        return _constructor.construct_object(node, deep=True)

    def _mapping(self, node: yaml.MappingNode, path: FieldPath) -> dict[str, Any]:
        if node.tag != _MAP:
            raise _Bad(node, _dotted(path), f"unsupported YAML tag {node.tag!r}")
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
                raise _Bad(
                    key_node, _dotted(path), "keys must be plain strings (no merge keys or complex keys)"
                )
            key = key_node.value
            child = (*path, key)
            if key in out:
                first = self.key_positions[child]
                raise _Bad(
                    key_node,
                    _dotted(child),
                    f"duplicate key (first at line {first[0]}); YAML would keep only the last",
                )
            self.key_positions[child] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            out[key] = self.build(value_node, child)
        return out


def parse(text: str, path: str) -> tuple[list[Document], list[Problem]]:
    """Parse one file's text into documents; a file with a syntax error yields only problems."""
    documents: list[Document] = []
    try:
        nodes = list(yaml.compose_all(text, Loader=_Loader))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        what = exc.problem or exc.context or "invalid YAML"
        lines = text.splitlines()
        bad_line = lines[line - 1] if 0 < line <= len(lines) else ""
        hint = "; indent with spaces, not tabs" if "\t" in bad_line else ""
        return [], [Problem(path, line, column, "", f"YAML syntax error: {what}{hint}")]
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
            problems.append(Problem(
                path, node.start_mark.line + 1, node.start_mark.column + 1, "",
                f"document expands to more than {MAX_NODES_PER_DOCUMENT} values "
                "(YAML aliases used as a bomb?); keep manifests small and alias-free",
            ))
            continue
        except yaml.YAMLError as exc:  # a scalar the safe constructor refuses
            problems.append(Problem(path, node.start_mark.line + 1, 1, "", f"YAML error: {exc}"))
            continue
        if value is None:  # an empty document (`---` with nothing after)
            continue
        documents.append(Document(path, index, value, builder.positions, builder.key_positions))
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
    """`*.yaml`/`*.yml` below each root, sorted; symlinks may not lead outside their root."""
    found: list[Path] = []
    problems: list[Problem] = []
    for root in roots:
        if not root.exists():
            problems.append(Problem(str(root), 1, 1, "", "no such file or directory"))
            continue
        if root.is_file():
            found.append(root)
            continue
        real_root = root.resolve()
        for candidate in _walk(root):
            try:
                target = candidate.resolve(strict=True)
            except (OSError, RuntimeError):
                problems.append(Problem(str(candidate), 1, 1, "", "broken or looping symlink"))
                continue
            if candidate.is_symlink() and not target.is_relative_to(real_root):
                problems.append(
                    Problem(str(candidate), 1, 1, "", f"symlink leads outside {root} (to {target}); not followed")
                )
                continue
            found.append(candidate)
    unique = sorted(set(found))
    return unique, problems


def _walk(root: Path) -> Iterator[Path]:
    # Directory symlinks are not followed, so symlink loops cannot trap us.
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if name.endswith(SUFFIXES) and not name.startswith("."):
                yield Path(dirpath) / name


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
                Problem(label, 1, 1, "", f"file is {size / 1048576:.1f} MiB; the limit is {MAX_FILE_BYTES // 1048576} MiB — split it")
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
            problems.append(Problem(str(path), line, column, key, "a variable must be a string, number or boolean"))
        else:
            out[key] = value
    return out, problems
