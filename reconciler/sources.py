"""Where a watch round's manifests come from, and how to avoid parsing them again.

`WorkTree` is the folder, with a parse cache keyed by path + stat (+ content hash when the stat
cannot be trusted); `GitHead` is the files committed at HEAD (`--git`), cached by blob id.
`ManifestLoader` loads over either as `loading.load()` would, reading and validating again only
the files that changed (loading.FileChecks), and reuses the whole result while nothing changed, so
a resync over 10,000 unchanged manifests costs a directory walk and a stat per file, and a round
after one saved file also validates that one file.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import os
import stat as stat_mode
import subprocess
import time
from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Protocol

from reconciler import manifests as manifest_files
from reconciler.errors import InvalidManifests, ReconcilerError
from reconciler.loading import FileChecks, Loaded, load_variables
from reconciler.manifests import Document
from reconciler.model import Problem
from reconciler.schemas import SchemaRegistry

Parsed = tuple[list[Document], list[Problem]]


def manifest_filter(path: str) -> bool:
    name = os.path.basename(path)
    return name.endswith(manifest_files.SUFFIXES) and not name.startswith(".")


@dataclass(frozen=True)
class Listing:
    files: tuple[Path, ...]
    problems: tuple[Problem, ...]
    versions: tuple[Hashable, ...]
    commit: str | None = None


class Source(Protocol):
    def scan(self, roots: Sequence[Path]) -> Listing: ...
    def read(self, path: Path) -> Parsed: ...
    def watch_paths(self, roots: Sequence[Path]) -> list[Path]: ...
    def keep(self, path: str) -> bool: ...
    def note(self, paths: Iterable[str]) -> None: ...


def noted(source: Source, batches: Iterable[set[str]]) -> Iterator[set[str]]:
    """The change batches, each told to `source` first (WorkTree.note) as the round's scan needs it."""
    for batch in batches:
        source.note(batch)
        yield batch


RACY_NS = 2_000_000_000  # within this of a file's mtime/ctime we do not trust stat alone (coarse clocks)


@dataclass
class _Entry:
    stat: tuple[int, int, int, int]  # mtime_ns, ctime_ns, size, inode
    digest: bytes
    checked_ns: int  # wall clock just before the content was last read
    parsed: Parsed


class WorkTree:
    """The working tree, with a parse cache: a file is parsed again only when it changed.

    Changed means another (mtime, ctime, size, inode); when the file was modified within RACY_NS
    of our last read, a second write in the same clock tick could hide behind an equal stat, so the
    content hash decides (git's "racily clean" entries).
    """

    def __init__(
        self, *, stat: Callable[[Path], os.stat_result] = os.stat, clock: Callable[[], int] = time.time_ns
    ) -> None:
        self._stat = stat
        self._clock = clock
        self._entries: dict[Path, _Entry] = {}
        self._seen: dict[Path, tuple[int, int, int, int] | None] = {}
        self._versions: dict[Path, Hashable] = {}
        self._noted: set[str] = set()
        self._last: tuple[tuple[Path, ...], Listing, set[str], list[str]] | None = None
        """(roots, the last listing, its folders, its files as text) when a noted batch may
        update it in place."""
        self.parsed = 0
        """Files parsed so far (cache misses)."""
        self.walks = 0
        """Full scans (a walk of every folder and a stat of every file) so far."""

    def note(self, paths: Iterable[str]) -> None:
        """Changed paths (a watch batch): the next scan re-stats only them when it can."""
        self._noted.update(paths)

    def scan(self, roots: Sequence[Path]) -> Listing:
        """Every manifest below `roots`, with its version. After a noted batch of manifest files
        that are there, in folders the last walk listed (no symlink, no dot-path, no new folder,
        nothing gone), only those files are stat'ed again, and the listing is what a walk would
        find; anything else walks it all."""
        noted, self._noted = self._noted, set()
        last = self._last
        if noted and last is not None and last[0] == tuple(roots):
            placed = [_placed(path, roots, last[2]) for path in sorted(noted)]
            if all(label is not None for label in placed):
                return self._rescan(last, [label for label in placed if label is not None])
        return self._walk(roots)

    def _walk(self, roots: Sequence[Path]) -> Listing:
        self.walks += 1
        files, problems = manifest_files.find_files(roots)
        self._seen = {path: self._stat_key(path) for path in files}
        for gone in self._entries.keys() - self._seen.keys():
            del self._entries[gone]
        self._versions = {path: self._version(path, key) for path, key in self._seen.items()}
        listing = Listing(tuple(files), tuple(problems), tuple(self._versions.values()))
        labels = [str(path) for path in files]
        # a listing is updated in place only when it has no problem and is in the order a walk sorts
        trusted = not problems and labels == sorted(labels)
        folders = {os.path.dirname(x) for x in labels}
        self._last = (tuple(roots), listing, folders, labels) if trusted else None
        return listing

    def _rescan(
        self, last: tuple[tuple[Path, ...], Listing, set[str], list[str]], labels: list[str]
    ) -> Listing:
        """The last listing with the noted files stat'ed again: added, changed or gone."""
        files, names, versions = list(last[1].files), list(last[3]), list(last[1].versions)
        for label in labels:
            at = bisect.bisect_left(names, label)
            present = at < len(names) and names[at] == label
            path = files[at] if present else Path(label)
            if os.path.lexists(label):
                key = self._stat_key(path)
                self._seen[path] = key
                self._versions[path] = version = self._version(path, key)
                if present:
                    versions[at] = version
                else:
                    names.insert(at, label)
                    files.insert(at, path)
                    versions.insert(at, version)
            elif present:
                del names[at], files[at], versions[at]
                self._seen.pop(path, None)
                self._versions.pop(path, None)
                self._entries.pop(path, None)
        fresh = Listing(tuple(files), (), tuple(versions))
        self._last = (last[0], fresh, last[2], names)
        return fresh

    def _stat_key(self, path: Path) -> tuple[int, int, int, int] | None:
        try:
            st = self._stat(path)
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_ctime_ns, st.st_size, st.st_ino)

    def _version(self, path: Path, key: tuple[int, int, int, int] | None) -> Hashable:
        entry = self._entries.get(path)
        if key is None or entry is None or entry.stat != key:
            return key
        if max(key[0], key[1]) < entry.checked_ns - RACY_NS:
            return key
        now = self._clock()
        try:
            digest = hashlib.sha256(path.read_bytes()).digest()
        except OSError:
            return None
        if digest != entry.digest:
            del self._entries[path]  # same stat, other content: parse it again
            return (key, digest)
        entry.checked_ns = now
        return key

    def read(self, path: Path) -> Parsed:
        key = self._seen.get(path)
        entry = self._entries.get(path)
        if entry is not None and key is not None and entry.stat == key:
            return entry.parsed
        now = self._clock()
        try:  # hash before parsing: a write in between then shows up as a changed hash
            digest = hashlib.sha256(path.read_bytes()).digest()
        except OSError:
            digest = b""
        parsed = manifest_files.read_file(path)
        self.parsed += 1
        if key is not None and digest:
            self._entries[path] = _Entry(key, digest, now, parsed)
        return parsed

    def watch_paths(self, roots: Sequence[Path]) -> list[Path]:
        return list(roots)

    def keep(self, path: str) -> bool:
        return manifest_filter(path)


def _placed(path: str, roots: Sequence[Path], folders: set[str]) -> str | None:
    """A noted path as a walk of `roots` names it, when a scan may stat it alone: a manifest file
    that is there, in a folder the last walk listed, below a folder root, with no dot in its way
    and no symlink; otherwise None (walk it all).

    A path that is gone walks it all: it may be a file moved into a folder made in the same
    instant, whose own event the watcher can miss (it watches a new folder only once it exists),
    and only a walk finds it there."""
    if not manifest_filter(path):
        return None
    absolute = os.path.abspath(path)
    for root in roots:
        base = os.path.abspath(root)
        if not absolute.startswith(base + os.sep):
            continue
        rel = absolute[len(base) + 1 :]
        if any(part.startswith(".") for part in rel.split(os.sep)):
            return None
        label = str(root / rel)
        if os.path.dirname(label) not in folders:
            return None
        try:
            mode = os.lstat(label).st_mode
        except OSError:
            return None
        return label if stat_mode.S_ISREG(mode) else None
    return None


class GitHead:
    """The manifests as committed at HEAD of the checkout (`git ls-tree`, `git cat-file`).

    Blobs are parsed once per (path, blob id). Working-tree edits do not count until committed; the
    daemon watches the git dir's HEAD and refs instead of the files.
    """

    def __init__(self, top: Path, git_dirs: Sequence[Path]) -> None:
        self.top = top
        self.git_dirs = tuple(git_dirs)
        self._parsed: dict[tuple[Path, str], Parsed] = {}
        self._seen: dict[Path, str] = {}
        self.parsed = 0

    @classmethod
    def open(cls, roots: Sequence[Path]) -> GitHead:
        """The checkout that holds the first root; ReconcilerError when there is none."""
        first = roots[0]
        where = first if first.is_dir() else first.parent
        top = Path(_git(where, "rev-parse", "--show-toplevel"))
        dirs = {Path(_git(where, "rev-parse", "--absolute-git-dir"))}
        common = Path(_git(where, "rev-parse", "--git-common-dir"))
        dirs.add(common if common.is_absolute() else (where / common).resolve())
        return cls(top, sorted(dirs))

    def scan(self, roots: Sequence[Path]) -> Listing:
        commit = _git(self.top, "rev-parse", "--verify", "HEAD^{commit}")
        found: dict[Path, str] = {}
        problems: list[Problem] = []
        for root in roots:
            self._scan_root(root, commit, found, problems)
        self._seen = dict(sorted(found.items()))
        self._fetch([(p, s) for p, s in self._seen.items() if (p, s) not in self._parsed])
        keep = set(self._seen.items())
        self._parsed = {k: v for k, v in self._parsed.items() if k in keep}
        return Listing(tuple(self._seen), tuple(problems), tuple(self._seen.values()), commit)

    def _scan_root(self, root: Path, commit: str, found: dict[Path, str], problems: list[Problem]) -> None:
        """The manifest blobs below one root at `commit` into `found` (label: blob id)."""
        try:
            rel = PurePosixPath(root.resolve().relative_to(self.top.resolve()).as_posix())
        except ValueError:
            problems.append(Problem(str(root), 1, 1, "", f"not inside the git checkout {self.top}"))
            return
        spec = str(rel) if rel.parts else "."
        listing = _git(self.top, "ls-tree", "-r", "-z", "--full-name", commit, "--", spec)
        entries = [e for e in listing.split("\0") if e]
        if not entries:
            message = f"nothing here at HEAD ({commit[:12]}); commit it first"
            problems.append(Problem(str(root), 1, 1, "", message))
        for entry in entries:
            _add_tree_entry(entry, root, rel, found, problems)

    def _fetch(self, wanted: list[tuple[Path, str]]) -> None:
        if not wanted:
            return
        batch = "".join(f"{sha}\n" for _, sha in wanted).encode()
        data = _git_bytes(self.top, "cat-file", "--batch", stdin=batch)
        pos = 0
        for label, _ in wanted:
            end = data.index(b"\n", pos)
            header = data[pos:end].split()
            size = int(header[2])
            blob = data[end + 1 : end + 1 + size]
            pos = end + 1 + size + 1
            self._parsed[(label, header[0].decode())] = self._parse(label, blob)

    def _parse(self, label: Path, blob: bytes) -> Parsed:
        self.parsed += 1
        if len(blob) > manifest_files.MAX_FILE_BYTES:
            return [], [Problem(str(label), 1, 1, "", "file is over the manifest size limit; split it")]
        text, problem = manifest_files.decode(blob, str(label))
        if problem is not None or text is None:
            return [], [problem] if problem else []
        return manifest_files.parse(text, str(label))

    def read(self, path: Path) -> Parsed:
        return self._parsed[(path, self._seen[path])]

    def note(self, paths: Iterable[str]) -> None:
        """A commit is read whole (its blobs are cached by id): nothing to note."""

    def watch_paths(self, roots: Sequence[Path]) -> list[Path]:
        return list(self.git_dirs)

    def keep(self, path: str) -> bool:
        for git_dir in self.git_dirs:
            try:
                parts = Path(path).relative_to(git_dir).parts
            except ValueError:
                continue
            if parts in (("HEAD",), ("packed-refs",)) or (parts and parts[0] == "refs"):
                return True
        return False


def _add_tree_entry(
    entry: str, root: Path, rel: PurePosixPath, found: dict[Path, str], problems: list[Problem]
) -> None:
    """One `git ls-tree` line below `root` (at `rel` in the repository): a manifest blob into `found`;
    other files and dot-paths skipped, a symlink a warning."""
    meta, name = entry.split("\t", 1)
    mode, kind, sha = meta.split()
    inside = PurePosixPath(name).relative_to(rel) if rel.parts else PurePosixPath(name)
    label = root / inside if inside.parts else root
    if kind != "blob" or not label.name.endswith(manifest_files.SUFFIXES):
        return
    if any(part.startswith(".") for part in inside.parts):
        return
    if mode == "120000":
        message = "a symlink in git; --git does not follow it"
        problems.append(Problem(str(label), 1, 1, "", message, "warning"))
        return
    found[label] = sha


def _git_bytes(cwd: Path, *args: str, stdin: bytes | None = None) -> bytes:
    try:
        done = subprocess.run(["git", *args], cwd=cwd, input=stdin, capture_output=True, check=False)
    except FileNotFoundError as exc:
        raise ReconcilerError("--git needs the `git` command, and it is not on PATH") from exc
    if done.returncode != 0:
        reason = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise ReconcilerError(f"git {args[0]} in {cwd}: {reason[0] if reason else f'exit {done.returncode}'}")
    return done.stdout


def _git(cwd: Path, *args: str) -> str:
    return _git_bytes(cwd, *args).decode("utf-8", "surrogateescape").strip()


class ManifestLoader:
    """`loading.load()` over a Source, file by file (loading.FileChecks): a file is read and
    validated again only when its version changed; while no file changed, the last result is
    reused whole.

    The --var-files are read again every round (they are small), so editing one is a change too
    (and drops every file's checks: `variables_key` tells the round it changed).
    """

    def __init__(
        self,
        roots: Sequence[Path],
        registry: SchemaRegistry,
        source: Source,
        *,
        var_files: Sequence[Path] = (),
    ) -> None:
        self.roots = list(roots)
        self.registry = registry
        self.source = source
        self.var_files = list(var_files)
        self.checks = FileChecks(registry)
        self.variables_key: str | None = None
        """The variables of the last call (JSON): a round's kept server view names them."""
        self._last: tuple[Hashable, Loaded | InvalidManifests] | None = None

    def __call__(self) -> tuple[Loaded, str | None]:
        variables = load_variables(self.var_files)
        listing = self.source.scan(self.roots)
        var_key = json.dumps(variables, sort_keys=True, default=str)
        self.variables_key = var_key
        key = (listing.files, listing.versions, listing.problems, var_key)
        if self._last is None or self._last[0] != key:
            try:
                result: Loaded | InvalidManifests = self.checks.load(
                    listing.files, listing.versions, listing.problems, (variables, var_key), self.source.read
                )
            except InvalidManifests as exc:
                result = exc
            self._last = (key, result)
        result = self._last[1]
        if isinstance(result, InvalidManifests):
            raise InvalidManifests(result.problems)
        return result, listing.commit
