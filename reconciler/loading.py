"""Files → validated manifests: the Shell's loading step, with its two speed tricks in one place.

`load()` walks the roots (manifests.find_files), parses every file, substitutes `${var:…}`
(variables.py) and validates (validate.py), raising InvalidManifests with every problem at once.
At 10,000 manifests this is CPU-bound Python, so two tricks live here and nowhere else:
- the cyclic GC is paused while loading (the objects hold no cycles; it rescanned them again
  and again, a third of the time);
- at PARALLEL_MIN_FILES files or more, the second half is loaded in a forked child on the other
  core (forked.py), and its result merged with the cross-half name clashes a single pass finds.
"""

from __future__ import annotations

import dataclasses
import gc
import os
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reconciler import forked
from reconciler import manifests as manifest_files
from reconciler.errors import InvalidManifests
from reconciler.kinds.validate import check_set
from reconciler.kinds.values import EndpointManifest
from reconciler.model import Manifest, Problem
from reconciler.schemas import SchemaRegistry
from reconciler.validate import Checked, Space, assemble, check_document, validate_space
from reconciler.variables import substitute


@dataclass(frozen=True)
class Loaded:
    manifests: tuple[Manifest, ...]
    """The models."""
    warnings: tuple[Problem, ...]
    files: int
    datasets: tuple[Manifest, ...] = ()
    endpoints: tuple[EndpointManifest, ...] = ()

    @property
    def count(self) -> int:
        """Manifests of every kind."""
        return len(self.manifests) + len(self.datasets) + len(self.endpoints)

    def valid_json(self, warnings: Sequence[Problem], skew: Sequence[str]) -> dict[str, Any]:
        """What `validate --output json` says of a valid set, of one space or each of many."""
        return {
            "valid": True,
            "files": self.files,
            "models": [m.name for m in self.manifests],
            "datasets": [d.name for d in self.datasets],
            "endpoints": [e.slug for e in self.endpoints],
            "warnings": [w.as_dict() for w in warnings],
            "schema_skew": list(skew),
        }


def load_variables(var_files: Sequence[Path]) -> dict[str, Any]:
    """Merge the `--var-file`s in order (later files win); raise with every problem."""
    merged: dict[str, Any] = {}
    problems: list[Problem] = []
    for path in var_files:
        found, more = manifest_files.read_variables(path)
        merged.update(found)
        problems.extend(more)
    if problems:
        raise InvalidManifests(problems)
    return merged


def load(
    paths: Sequence[Path],
    registry: SchemaRegistry,
    *,
    variables: Mapping[str, Any] | None = None,
    find: Callable[[Sequence[Path]], tuple[list[Path], list[Problem]]] = manifest_files.find_files,
    read: Callable[[Path], tuple[list[manifest_files.Document], list[Problem]]] = manifest_files.read_file,
    parallel: bool = True,
) -> Loaded:
    """Read and validate every manifest below `paths`; raise with every problem if any is wrong.

    `find` and `read` default to the file system; the watch daemon passes its parse cache, or
    the files committed at git HEAD (and `parallel=False`: a cache filled in a forked child would
    be lost with the child).
    """
    # Loading builds many small objects that all stay alive; the cyclic GC would rescan them again
    # and again (a third of the time at 10,000 manifests). They hold no cycles: pause it.
    enabled = gc.isenabled()
    gc.disable()
    try:
        return _load(paths, registry, variables or {}, find, read, parallel=parallel)
    finally:
        if enabled:
            gc.enable()


PARALLEL_MIN_FILES = 2000  # below this a fork costs more than it saves


def _load(
    paths: Sequence[Path],
    registry: SchemaRegistry,
    variables: Mapping[str, Any],
    find: Callable[[Sequence[Path]], tuple[list[Path], list[Problem]]],
    read: Callable[[Path], tuple[list[manifest_files.Document], list[Problem]]],
    *,
    parallel: bool,
) -> Loaded:
    files, problems = find(paths)
    prefix = _working_prefix()
    problems = [_relabel(p, _shown(p.path, prefix)) for p in problems]
    if parallel and len(files) >= PARALLEL_MIN_FILES and forked.can_fork():
        # The second half in a child on the other core (files are sorted, so halves keep order).
        half = len(files) // 2
        child = forked.Forked(lambda: _read_and_validate(files[half:], registry, variables, read))
        first = _read_and_validate(files[:half], registry, variables, read)
        second = child.result() or _read_and_validate(files[half:], registry, variables, read)
        space, more = _merge(first, second)
    else:
        space, more = _read_and_validate(files, registry, variables, read)
    problems.extend(more)
    return _loaded(space, problems, len(files))


def _read_and_validate(
    files: Sequence[Path],
    registry: SchemaRegistry,
    variables: Mapping[str, Any],
    read: Callable[[Path], tuple[list[manifest_files.Document], list[Problem]]],
) -> tuple[Space, list[Problem]]:
    problems: list[Problem] = []
    prefix = _working_prefix()
    documents = [doc for path in files for doc in _documents(path, variables, read, prefix, problems)]
    space, more = validate_space(documents, registry)
    return space, problems + more


@dataclass(frozen=True)
class FileChecked:
    """One file read, its variables substituted and each document validated on its own."""

    problems: tuple[Problem, ...]
    """Reading and substitution problems."""
    checked: tuple[Checked, ...]


Reader = Callable[[Path], tuple[list[manifest_files.Document], list[Problem]]]


PATCH_MAX = 64
"""Files changed or gone since a clean load that a load patches in (more: loads the whole set)."""


@dataclass
class _Clean:
    """The last load that found no problem at all, as dictionaries a few changed files can patch:
    the files and their versions, which file names each (kind, name), and the manifests."""

    files: tuple[Path, ...]
    versions: tuple[Hashable, ...]
    named: dict[tuple[str, str], Path]
    models: dict[str, Manifest]
    datasets: dict[str, Manifest]
    endpoints: dict[Path, tuple[EndpointManifest, ...]]

    def drop(self, path: Path, checked: FileChecked) -> None:
        """Forget what `path` defined."""
        for _, item, _ in checked.checked:
            if isinstance(item, Manifest) and self.named.get((item.kind, item.name)) == path:
                del self.named[(item.kind, item.name)]
                del (self.datasets if item.kind == "Dataset" else self.models)[item.name]
        self.endpoints.pop(path, None)

    def add(self, path: Path, checked: FileChecked) -> bool:
        """Take in what `path` defines; False when it has a problem or a name another file has."""
        if checked.problems:
            return False
        for _, item, problems in checked.checked:
            if problems or item is None:
                return False
            if isinstance(item, EndpointManifest):
                self.endpoints[path] = (*self.endpoints.get(path, ()), item)
                continue
            if (item.kind, item.name) in self.named:
                return False
            self.named[(item.kind, item.name)] = path
            (self.datasets if item.kind == "Dataset" else self.models)[item.name] = item
        return True

    def loaded(self) -> Loaded:
        endpoints = tuple(e for defined in self.endpoints.values() for e in defined)
        return Loaded(
            tuple(self.models.values()), (), len(self.files), tuple(self.datasets.values()), endpoints
        )


def _clean_of(files: Sequence[Path], versions: Sequence[Hashable], results: Sequence[FileChecked]) -> _Clean:
    clean = _Clean(tuple(files), tuple(versions), {}, {}, {}, {})
    for path, result in zip(files, results, strict=True):
        clean.add(path, result)
    return clean


def _delta(
    clean: _Clean, files: Sequence[Path], versions: Sequence[Hashable]
) -> tuple[list[tuple[Path, Hashable]], list[Path]] | None:
    """(the files added or changed with their versions, the files gone) since `clean`; None when
    more than PATCH_MAX."""
    if tuple(files) == clean.files:
        pairs = zip(files, versions, clean.versions, strict=True)
        changed = [(p, v) for p, v, old in pairs if v is None or (v is not old and v != old)]
        gone: list[Path] = []
    else:
        before = dict(zip(clean.files, clean.versions, strict=True))
        changed = [(p, v) for p, v in zip(files, versions, strict=True) if v is None or before.get(p) != v]
        gone = list(before.keys() - set(files))
    return (changed, gone) if len(changed) + len(gone) <= PATCH_MAX else None


class FileChecks:
    """The watch daemon's incremental load: path → (version, FileChecked), so that a round reads
    and validates only the files whose version (stat, content hash or blob id: sources.py)
    changed. After a load that found no problem, a few changed files are patched into its
    result: their old manifests out, their new ones in, as long as none has a problem or a name
    another file has, and the endpoints' checks across the set pass; otherwise the checks across
    files (unique names, endpoints) run over the whole set. The whole cache is dropped when the
    variables or the working directory change. A file's documents are kept as checked, whatever
    their fields say: the cache never looks inside a manifest."""

    def __init__(self, registry: SchemaRegistry) -> None:
        self.registry = registry
        self._files: dict[Path, tuple[Hashable, FileChecked]] = {}
        self._context: tuple[str, str | None] | None = None
        self._clean: _Clean | None = None
        self.checked = 0
        """Files read and validated so far (cache misses)."""
        self.patched = 0
        """Loads that patched the last clean one (the others checked across the whole set)."""

    def load(
        self,
        files: Sequence[Path],
        versions: Sequence[Hashable],
        found: Sequence[Problem],
        variables: tuple[Mapping[str, Any], str],
        read: Reader,
    ) -> Loaded:
        """What load() returns for these files (raising as it does), reusing unchanged files."""
        prefix = _working_prefix()
        if self._context != (variables[1], prefix):
            self._files.clear()
            self._clean = None
            self._context = (variables[1], prefix)
        if self._clean is not None and not found:
            loaded = self._patch(files, versions, variables[0], read, prefix)
            if loaded is not None:
                self.patched += 1
                return loaded
        self._clean = None
        enabled = gc.isenabled()
        gc.disable()  # as load(): many small objects that hold no cycles
        try:
            results = self._check(files, versions, variables[0], read, prefix)
        finally:
            if enabled:
                gc.enable()
        problems = [_relabel(p, _shown(p.path, prefix)) for p in found]
        problems.extend(p for r in results for p in r.problems)
        space, more = assemble(c for r in results for c in r.checked)
        problems.extend(more)
        loaded = _loaded(space, problems, len(files))
        if not problems:
            self._clean = _clean_of(files, versions, results)
        return loaded

    def _patch(
        self,
        files: Sequence[Path],
        versions: Sequence[Hashable],
        variables: Mapping[str, Any],
        read: Reader,
        prefix: str | None,
    ) -> Loaded | None:
        """The last clean load with the changed files patched in; None when it cannot be."""
        assert self._clean is not None
        delta = _delta(self._clean, files, versions)
        if delta is None:
            return None
        changed, gone = delta
        old = self._clean
        clean = _Clean(
            tuple(files),
            tuple(versions),
            dict(old.named),
            dict(old.models),
            dict(old.datasets),
            dict(old.endpoints),
        )
        for path in [*gone, *(p for p, _ in changed)]:
            entry = self._files.pop(path, None)
            if entry is not None:
                clean.drop(path, entry[1])
        fits = True
        for path, version in changed:
            result = _check_file(path, self.registry, variables, read, prefix)
            self.checked += 1
            if version is not None:
                self._files[path] = (version, result)
            fits = clean.add(path, result) and fits
        endpoints = [e for defined in clean.endpoints.values() for e in defined]
        if not fits or check_set([], endpoints, []):
            return None
        self._clean = clean
        return clean.loaded()

    def _check(
        self,
        files: Sequence[Path],
        versions: Sequence[Hashable],
        variables: Mapping[str, Any],
        read: Reader,
        prefix: str | None,
    ) -> list[FileChecked]:
        kept: dict[Path, tuple[Hashable, FileChecked]] = {}
        results = []
        for path, version in zip(files, versions, strict=True):
            entry = self._files.get(path)
            if entry is None or version is None or entry[0] != version:
                entry = (version, _check_file(path, self.registry, variables, read, prefix))
                self.checked += 1
            if version is not None:
                kept[path] = entry
            results.append(entry[1])
        self._files = kept
        return results


def _check_file(
    path: Path, registry: SchemaRegistry, variables: Mapping[str, Any], read: Reader, prefix: str | None
) -> FileChecked:
    problems: list[Problem] = []
    documents = _documents(path, variables, read, prefix, problems)
    return FileChecked(tuple(problems), tuple(check_document(doc, registry) for doc in documents))


def _documents(
    path: Path, variables: Mapping[str, Any], read: Reader, prefix: str | None, problems: list[Problem]
) -> list[manifest_files.Document]:
    """One file's documents as every output names them, with their variables substituted; the
    problems of reading and substituting go to `problems`."""
    docs, file_problems = read(path)
    label = _shown(str(path), prefix)
    if label != str(path):  # what every output shows; the file was read by its own path
        docs = [dataclasses.replace(doc, path=label) for doc in docs]
        file_problems = [_relabel(p, label) for p in file_problems]
    problems.extend(file_problems)
    documents = []
    for doc in docs:
        if not doc.has_variables:  # most documents: nothing to substitute, skip the walk
            documents.append(doc)
            continue
        value, var_problems = substitute(doc.value, variables)
        for field_path, message in var_problems:
            line, column = doc.where(field_path)
            problems.append(Problem(doc.path, line, column, ".".join(map(str, field_path)), message))
        if not var_problems:
            documents.append(dataclasses.replace(doc, value=value))
    return documents


def _loaded(space: Space, problems: list[Problem], files: int) -> Loaded:
    """The valid set, or InvalidManifests with every problem, sorted."""
    errors = [p for p in problems if p.severity == "error"]
    warnings = tuple(p for p in problems if p.severity == "warning")
    if errors:
        raise InvalidManifests(sorted(problems, key=lambda p: (p.path, p.line, p.column)))
    return Loaded(tuple(space.models), warnings, files, tuple(space.datasets), tuple(space.endpoints))


def _working_prefix() -> str | None:
    """The working directory and a separator; None at the file system's root, or when it is gone."""
    try:
        cwd = os.getcwd()
    except OSError:
        return None
    return None if cwd == os.sep else cwd + os.sep


def _shown(label: str, prefix: str | None) -> str:
    """A file as every output names it (plan text, markdown, JSON, problems): relative to the
    working directory when it is below it (a project file's roots are absolute), else as found.
    Still a path from the working directory, so a `{file: …}` reference beside a manifest
    resolves as ever."""
    if prefix is None or not label.startswith(prefix) or len(label) == len(prefix):
        return label
    return label[len(prefix) :]


def _relabel(problem: Problem, label: str) -> Problem:
    return problem if problem.path == label else dataclasses.replace(problem, path=label)


def _merge(
    first: tuple[Space, list[Problem]], second: tuple[Space, list[Problem]]
) -> tuple[Space, list[Problem]]:
    """Both halves as one, with the cross-half name clashes a single pass would have found."""
    space = Space(list(first[0].models), list(first[0].datasets), list(first[0].endpoints))
    problems = first[1] + second[1]
    for mine, theirs in ((space.models, second[0].models), (space.datasets, second[0].datasets)):
        seen = {m.name: m for m in mine}
        for manifest in theirs:
            other = seen.get(manifest.name)
            if other is None:
                mine.append(manifest)
                continue
            line, column = manifest.positions.get("name", (manifest.source.line, manifest.source.column))
            problems.append(
                Problem(
                    manifest.source.path,
                    line,
                    column,
                    "name",
                    f"`{manifest.name}` is also defined at {other.source}; names must be unique",
                )
            )
    slugs = {e.slug: e for e in space.endpoints}
    for endpoint in second[0].endpoints:
        if endpoint.slug in slugs:
            where = endpoint.where("slug")
            problems.append(
                Problem(
                    where.path,
                    where.line,
                    where.column,
                    "slug",
                    f"endpoint `{endpoint.slug}` is also defined at {slugs[endpoint.slug].source}; "
                    "slugs must be unique",
                )
            )
        else:
            space.endpoints.append(endpoint)
    return space, problems
