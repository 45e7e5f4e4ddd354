"""The instance a run belongs to: the project file `syft-reconciler.yaml`, its owner and its roots.

A reconciler *instance* is a set of manifests driving a space. Its identity is its owner (the
ownership tag on the models it creates, ownership.py) and its manifest roots. Both can live in a
project file found at or above the manifests, as `.pre-commit-config.yaml` is:

    owner: team-search          # overridden by --owner / SYFT_RECONCILER_OWNER
    paths: [manifests]          # the instance's roots, relative to this file
    var_files: [envs/prod.yaml] # ${var:…} values, relative to this file; --var-file replaces them
    spaces:                     # optional: many spaces from one repository (spaces.py runs them)
      - {name: acme, server: https://space.example, tenant: acme, token: ${ACME_TOKEN}}

`check_prune_scope` is the guard that prune sees the whole set or nothing; `lock_home` and
`lock_key` give the folder lock one key however the roots are spelled.

Two hostile conditions are refused here. Two `spaces:` entries that drive one space (the same
server however its URL is spelled, the same tenant or none) with one owner would prune each
other's objects: the project file is refused, naming both. And a project file found by the search
outside a git checkout is used only when it and its folder belong to the user running (or to
root): another user's file in a parent folder (/tmp, a shared home) must not choose the server,
the token or the owner of a run; `--config FILE` uses any file on purpose (git's safe.directory).
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from reconciler import manifests as manifest_files
from reconciler.errors import BadSetting, InvalidManifests, Refused
from reconciler.model import Problem
from reconciler.ownership import check_owner
from reconciler.references import EnvRef, FileRef, scan

FILE_NAME = "syft-reconciler.yaml"
FIELDS = ("owner", "paths", "var_files", "spaces")
SPACE_FIELDS = ("name", "server", "tenant", "token", "paths", "var_files", "owner")
_SPACE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}\Z")
DEFAULT_PATHS = (Path("manifests"),)


@dataclass(frozen=True)
class Project:
    """A parsed project file."""

    file: Path
    owner: str | None = None
    paths: tuple[Path, ...] = ()
    """The declared roots, absolute (relative entries are taken from the file's folder)."""
    spaces: tuple[SpaceSpec, ...] = ()
    """The `spaces:` list: empty for a one-space project (the command line names the server)."""
    var_files: tuple[Path, ...] = ()
    """The `var_files:` (absolute, as `paths`): a one-space run's unless `--var-file` is given, and
    every space's that does not name its own."""

    @property
    def folder(self) -> Path:
        return self.file.parent


@dataclass(frozen=True)
class SpaceSpec:
    """One entry of `spaces:`: a target space and what drives it. Paths and owner default to
    the project's; the token is a reference (`${ENV}` or `{file: …}`), resolved only when the
    space is connected to, so that one missing secret fails that space alone."""

    name: str
    server: str
    token: EnvRef | FileRef
    tenant: str | None = None
    paths: tuple[Path, ...] = ()
    var_files: tuple[Path, ...] = ()
    owner: str | None = None
    where: str = ""
    """file:line:col of the entry, for messages."""
    index: int = 0
    """Its position in `spaces:`, for messages."""


def load_project(file: Path) -> Project:
    """Read and check a project file; raise InvalidManifests with every problem (file:line:col).

    The file keeps its spelling (made absolute, symlinks not resolved), and so do the paths in it:
    `--config /git/repo/syft-reconciler.yaml` under a link that git-sync flips to each new commit
    reads the new commit's manifests and token files through the link, and the watch follows it.
    """
    file = file if file.is_absolute() else Path.cwd() / file
    label = str(file)
    docs, problems = manifest_files.read_file(file)
    if not problems and (len(docs) != 1 or not isinstance(docs[0].value, dict)):
        problems.append(
            Problem(label, 1, 1, "", f"a project file is one YAML mapping with {', '.join(FIELDS)}")
        )
    if problems:
        raise InvalidManifests(problems)
    doc = docs[0]
    value = doc.value
    owner = value.get("owner")
    for key in value:
        if key not in FIELDS:
            line, column = doc.where((key,), key=True)
            problems.append(
                Problem(
                    label, line, column, str(key), f"unknown field (a project file has: {', '.join(FIELDS)})"
                )
            )
    why = _owner_problem(owner)
    if why:
        problems.append(Problem(label, *doc.where(("owner",)), "owner", why))
    folder = file.parent
    paths = _top_list(doc, "paths", "must be a list of folders or files, relative to this file", problems)
    var_files = _top_list(doc, "var_files", "must be a list of YAML files, relative to this file", problems)
    defaults = tuple(folder / p for p in var_files)
    spaces = _spaces(doc, value.get("spaces"), folder, problems, defaults) if "spaces" in value else ()
    if not problems:
        problems += _shared_owners(doc, spaces, owner)
    if problems:
        raise InvalidManifests(sorted(problems, key=lambda p: (p.line, p.column)))
    return Project(file, owner, tuple(folder / p for p in paths), spaces, defaults)


def _top_list(doc: manifest_files.Document, field: str, message: str, problems: list[Problem]) -> list[str]:
    """A top-level list of paths (`paths:`, `var_files:`); empty, and a problem, if it is not one."""
    items = _path_list(doc.value.get(field, []))
    if items is None:
        problems.append(Problem(doc.path, *doc.where((field,)), field, message))
        return []
    return items


def _spaces(
    doc: manifest_files.Document,
    value: object,
    folder: Path,
    problems: list[Problem],
    var_files: tuple[Path, ...] = (),
) -> tuple[SpaceSpec, ...]:
    """The `spaces:` list, every problem collected (file:line:col: spaces[i].field: message)."""
    if not isinstance(value, list) or not value:
        problems.append(
            Problem(doc.path, *doc.where(("spaces",)), "spaces", "must be a non-empty list of spaces")
        )
        return ()
    found: list[SpaceSpec] = []
    seen: dict[str, int] = {}
    for i, entry in enumerate(value):
        before = len(problems)

        def bad(field: str, message: str, *, key: bool = False, _i: int = i) -> None:
            at = doc.where(("spaces", _i, field) if field else ("spaces", _i), key=key)
            problems.append(Problem(doc.path, *at, f"spaces[{_i}]{'.' + field if field else ''}", message))

        if not isinstance(entry, dict):
            bad("", "a space is a mapping with " + ", ".join(SPACE_FIELDS))
            continue
        name = entry.get("name")
        if isinstance(name, str) and name in seen:
            bad("name", f"space {name!r} is already declared (spaces[{seen[name]}])")
        elif isinstance(name, str):
            seen[name] = i
        space = _space(entry, bad, folder, var_files)
        if len(problems) == before and space is not None:
            line, column = doc.where(("spaces", i))
            found.append(dataclasses.replace(space, where=f"{doc.path}:{line}:{column}", index=i))
    return tuple(found)


def _shared_owners(
    doc: manifest_files.Document, spaces: Sequence[SpaceSpec], project_owner: object
) -> list[Problem]:
    """A problem for each space that drives the same space as an earlier one with the same owner:
    prune in one would delete the other's objects (each space's own `owner:` is the fix)."""
    problems: list[Problem] = []
    first: dict[tuple[tuple[str, str | None], object], SpaceSpec] = {}
    for spec in spaces:
        owner = spec.owner if spec.owner is not None else project_owner
        earlier = first.setdefault((space_target(spec.server, spec.tenant), owner), spec)
        if earlier is spec:
            continue
        field = ("spaces", spec.index, "owner") if spec.owner is not None else ("spaces", spec.index)
        if owner is None:
            whose = "no owner at all"
        elif spec.owner is None or earlier.owner is None:
            whose = f"the same owner `{owner}` (inherited from the project's `owner:`)"
        else:
            whose = f"the same owner `{owner}`"
        problems.append(
            Problem(
                doc.path,
                *doc.where(field),
                f"spaces[{spec.index}].owner",
                f"spaces[{spec.index}] ({spec.name}) and spaces[{earlier.index}] ({earlier.name}) drive "
                f"the same space, {describe_space(spec.server, spec.tenant)}, with {whose}: each would "
                "take the other's objects for its own, and --prune in one would delete them; give each "
                "space its own `owner:`",
            )
        )
    return problems


def same_space(spaces: Sequence[SpaceSpec]) -> tuple[SpaceSpec, SpaceSpec] | None:
    """The first two spaces that drive the same space (whatever their owners), if any."""
    first: dict[tuple[str, str | None], SpaceSpec] = {}
    for spec in spaces:
        earlier = first.setdefault(space_target(spec.server, spec.tenant), spec)
        if earlier is not spec:
            return earlier, spec
    return None


def normal_server(server: str) -> str:
    """A server URL as one space is named however it is spelled: scheme and host in lower case,
    no default port (80, 443), no credentials, no trailing slash or dot; the path as written.
    Anything else (the sandbox's `sandbox:<database>`) as written, without a trailing slash."""
    try:
        parts = urlsplit(server.strip())
        port = parts.port
    except ValueError:
        return server.rstrip("/")
    scheme, host = parts.scheme.lower(), (parts.hostname or "").rstrip(".")
    if scheme not in ("http", "https") or not host:
        return server.rstrip("/")
    host = f"[{host}]" if ":" in host else host
    netloc = host if port in (None, {"http": 80, "https": 443}[scheme]) else f"{host}:{port}"
    return f"{scheme}://{netloc}{parts.path.rstrip('/')}"


def space_target(server: str, tenant: str | None) -> tuple[str, str | None]:
    """The space a server and tenant name: two spellings of one server are one space; a tenant
    is its own space, and no tenant is the server's default one."""
    return normal_server(server), tenant or None


def describe_space(server: str, tenant: str | None) -> str:
    return f"{normal_server(server)} ({f'tenant {tenant}' if tenant else 'no tenant'})"


def _owner_problem(owner: object) -> str | None:
    """What is wrong with an `owner:` value, if it is given and wrong."""
    if owner is None:
        return None
    return check_owner(owner) if isinstance(owner, str) else "owner must be a string"


def _path_list(value: object) -> list[str] | None:
    """A `paths:`-like value as a list of non-empty strings (one string is a list of one); None
    if it is not that."""
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(p, str) and p for p in items):
        return None
    return items


def _is_space_name(name: object) -> bool:
    return isinstance(name, str) and _SPACE_NAME.match(name) is not None


def _is_url(server: object) -> bool:
    return isinstance(server, str) and server.startswith(("http://", "https://"))


def _is_tenant(tenant: object) -> bool:
    """A tenant name: printable ASCII, not empty, no surrounding spaces."""
    return (
        isinstance(tenant, str)
        and tenant != ""
        and tenant == tenant.strip()
        and tenant.isprintable()
        and tenant.isascii()
    )


def _check_space_fields(entry: dict[Any, Any], bad: Callable[..., None]) -> None:
    """Unknown fields, then missing required ones."""
    for key in entry:
        if key not in SPACE_FIELDS:
            bad(str(key), f"unknown field (a space has: {', '.join(SPACE_FIELDS)})", key=True)
    for required in ("name", "server", "token"):
        if required not in entry:
            bad("", f"`{required}` is required")


def _space_paths(
    entry: dict[Any, Any], field: str, bad: Callable[..., None], folder: Path
) -> tuple[Path, ...]:
    """A space's `paths:` or `var_files:`, absolute (as spelled under the file's folder); empty
    (and a problem) if it is not a list of paths."""
    items = _path_list(entry.get(field, []))
    if items is None:
        bad(field, "must be a list of paths, relative to this file")
        items = []
    return tuple(folder / p for p in items)


def _space(
    entry: dict[Any, Any], bad: Callable[..., None], folder: Path, var_files: tuple[Path, ...] = ()
) -> SpaceSpec | None:
    """One entry; its `var_files:`, when it names none (not even `[]`), are the project's."""
    _check_space_fields(entry, bad)
    name, server, tenant, owner = (entry.get(k) for k in ("name", "server", "tenant", "owner"))
    if "name" in entry and not _is_space_name(name):
        bad("name", "must be 1-63 letters, digits, `.`, `_` or `-`, starting with a letter or digit")
    if "server" in entry and not _is_url(server):
        bad("server", "must be an http:// or https:// URL")
    if tenant is not None and not _is_tenant(tenant):
        bad("tenant", "must be a tenant name (printable ASCII, no surrounding spaces)")
    token = _token(entry.get("token"), bad) if "token" in entry else None
    why = _owner_problem(owner)
    if why:
        bad("owner", why)
    lists = {field: _space_paths(entry, field, bad, folder) for field in ("paths", "var_files")}
    if token is None:
        return None
    return SpaceSpec(
        name=str(name),
        server=str(server),
        token=token,
        tenant=tenant or None,
        paths=lists["paths"],
        var_files=lists["var_files"] if "var_files" in entry else var_files,
        owner=owner,
    )


def _token(value: object, bad: Callable[[str, str], None]) -> EnvRef | FileRef | None:
    """`${ENV}` or `{file: PATH}`; a literal token in git is refused."""
    scanned, problems = scan(value)
    if problems:
        bad("token", problems[0][1])
        return None
    if isinstance(scanned, FileRef):
        return scanned
    if isinstance(scanned, EnvRef) and scanned.variables:
        return scanned
    bad(
        "token",
        "a token is never written in the project file: use ${ENV_VAR} or {file: /run/secrets/NAME}",
    )
    return None


def find_project(starts: Sequence[Path]) -> Path | None:
    """The project file at or above each start (a path, or the working directory when none).

    The search stops at a folder holding `.git` (the repository's top) or at the file system's root.
    Two starts that find two different files are an error: one run is one instance.
    """
    found: set[Path] = set()
    for start in starts or [Path.cwd()]:
        hit = _search_up(_absolute(start))
        if hit is not None:
            found.add(hit)
    if len(found) > 1:
        names = ", ".join(str(f) for f in sorted(found))
        raise Refused(f"the paths belong to different projects ({names}); run each project on its own")
    return found.pop() if found else None


def _search_up(start: Path) -> Path | None:
    folder = start if start.is_dir() else start.parent
    while True:
        candidate = folder / FILE_NAME
        if candidate.is_file():
            found = candidate.resolve()
            _check_trusted(candidate, found)
            return found
        if (folder / ".git").exists() or folder.parent == folder:
            return None
        folder = folder.parent


def _in_checkout(folder: Path) -> bool:
    return any((f / ".git").exists() for f in (folder, *folder.parents))


def _check_trusted(candidate: Path, found: Path) -> None:
    """Refuse a project file found outside a git checkout unless the user running owns it and its
    folder (root's are trusted too). Inside a checkout the repository's own files are the user's
    choice to run, whoever owns them (a git-sync checkout belongs to git-sync's user)."""
    if _in_checkout(candidate.parent):
        return
    me = os.geteuid()
    for what, path in (("file", found), ("folder", candidate.parent), ("folder", found.parent)):
        try:
            uid = path.stat().st_uid
        except OSError as exc:
            raise Refused(f"cannot check who owns the project file's {what} {path}: {exc.strerror}") from None
        if uid not in (me, 0):
            raise Refused(
                f"refusing the project file {candidate}: it was found outside any git checkout, and "
                f"{'it' if what == 'file' else f'its folder {path}'} belongs to another user (uid {uid}; "
                f"you are uid {me}), who must not choose the server, the token or the owner of this run. "
                f"To use it on purpose, pass --config {candidate}; otherwise put your own {FILE_NAME} "
                "in your folder, or run inside your git checkout; nothing was read from it"
            )


def _absolute(path: Path) -> Path:
    """Canonical spelling: absolute, symlinks and `..` resolved (missing tails kept as written)."""
    return Path(os.path.realpath(path))


@dataclass(frozen=True)
class Instance:
    """What a run acts for: its owner, the roots it loads, and those its project declares."""

    owner: str | None
    roots: tuple[Path, ...]
    """The paths to load: the command line's, else the project's, else `manifests/`."""
    declared: tuple[Path, ...] = ()
    """The project file's `paths:` (absolute), when it declares them."""
    project: Project | None = None

    def var_files(self, given: Sequence[Path] = ()) -> tuple[Path, ...]:
        """The variable files of a run: `--var-file`'s when given (they replace the project's, as
        --owner replaces `owner:`), else the project file's `var_files:`."""
        if given:
            return tuple(given)
        return self.project.var_files if self.project is not None else ()

    @property
    def home(self) -> Path:
        """Where the lock lives: the project's folder, else the git checkout's top, else the
        folder of the first root."""
        if self.project is not None:
            return self.project.folder
        first = _absolute(self.roots[0]) if self.roots else _absolute(Path.cwd())
        folder = first if first.is_dir() else first.parent
        probe = folder
        while True:
            if (probe / ".git").exists():
                return probe
            if probe.parent == probe:
                return folder
            probe = probe.parent


def resolve_instance(
    paths: Sequence[str | Path], *, owner: str | None = None, config: Path | None = None
) -> Instance:
    """The instance for a command line: `owner` from --owner/SYFT_RECONCILER_OWNER wins over the
    project file's; `config` (--config) names the project file instead of searching for it."""
    given = [Path(p) for p in paths]
    file = config if config is not None else find_project(given)
    project = load_project(file) if file is not None else None
    if owner is not None:
        why = check_owner(owner)
        if why:
            raise BadSetting(f"--owner: {why}")
    chosen = owner if owner is not None else (project.owner if project else None)
    declared = project.paths if project else ()
    roots = tuple(given) if given else (declared or DEFAULT_PATHS)
    return Instance(chosen, roots, declared, project)


def check_prune_scope(instance: Instance, *, what: str = "--prune") -> None:
    """Prune sees the whole set or nothing: refuse it over part of the instance's manifests.

    With declared roots (`paths:` in the project file) the run's paths must cover every one of
    them. Without, a single file cannot be the whole set: it would delete every model declared
    beside it. And prune needs an owner, so that it can tell this repository's models from
    those of another repository driving the same space.
    """
    if instance.owner is None:
        raise Refused(
            f"{what} needs an owner, so that it deletes only this repository's models: set --owner NAME, "
            f"SYFT_RECONCILER_OWNER, or `owner:` in {FILE_NAME}; nothing was written"
        )
    given = [_absolute(r) for r in instance.roots]
    if instance.declared:
        missing = [
            d
            for d in instance.declared
            if not any((real := _absolute(d)) == g or (g.is_dir() and real.is_relative_to(g)) for g in given)
        ]
        if missing:
            shown = ", ".join(str(m) for m in missing)
            raise Refused(
                f"{what} needs the whole set: the paths given do not cover {shown}, declared in "
                f"{instance.project.file if instance.project else FILE_NAME}; run without paths (or with "
                "all of them), or drop --prune; nothing was written"
            )
        return
    files = [str(r) for r, g in zip(instance.roots, given, strict=True) if g.is_file()]
    if files:
        raise Refused(
            f"{what} over a single file ({', '.join(files)}) would delete every model declared beside it: "
            f"prune over the folder, or declare the instance's `paths:` in {FILE_NAME}; nothing was written"
        )


def lock_key(server: str, tenant: str | None) -> str:
    """A short stable key for the target space, so that one folder can drive several spaces."""
    text = f"{normal_server(server)}|{tenant or ''}"
    return hashlib.sha256(text.encode()).hexdigest()[:12]
