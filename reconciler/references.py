"""Secret references in configuration values, so secrets never live in git.

    api_key: ${OPENAI_API_KEY}            an environment variable (may sit inside a longer string)
    api_key: {file: /run/secrets/openai}  a file's content, trailing newline dropped; a relative
                                          path is relative to the manifest's folder
    prompt: "costs $${PRICE}"             `$${` is a literal `${`

`scan()` parses them offline (validate needs no secrets); `resolve()` replaces them when requests
are built, `resolve_manifests()` for every manifest, and `resolve_secrets()` is the one call the
Shell makes (with placeholders for the embedded sandbox). Pure: the environment and the file reader
are passed in.
"""

from __future__ import annotations

import dataclasses
import errno
import os
import re
import stat
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reconciler import redact
from reconciler.errors import InvalidManifests
from reconciler.model import Manifest, Problem
from reconciler.tree import DESCEND, FieldPath, nodes, rebuild

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_TOKEN = re.compile(r"\$\$\{|\$\{([^}]*)\}|\$\{")


@dataclass(frozen=True)
class EnvRef:
    """A string made of literal parts and environment variable names."""

    parts: tuple[tuple[bool, str], ...]  # (is_variable, text)

    @property
    def variables(self) -> tuple[str, ...]:
        return tuple(text for is_var, text in self.parts if is_var)

    def __str__(self) -> str:
        return "".join(f"${{{t}}}" if v else t.replace("${", "$${") for v, t in self.parts)


@dataclass(frozen=True)
class FileRef:
    path: str

    def __str__(self) -> str:
        return f"{{file: {self.path}}}"


Ref = EnvRef | FileRef


def _scan_string(text: str) -> tuple[str | EnvRef, str | None]:
    if "$" not in text:
        return text, None
    parts: list[tuple[bool, str]] = []
    literal: list[str] = []
    pos = 0
    for match in _TOKEN.finditer(text):
        literal.append(text[pos : match.start()])
        pos = match.end()
        token = match.group(0)
        if token == "$${":
            literal.append("${")
            continue
        if token == "${" or match.group(1) is None:
            return text, "unclosed `${`: write ${NAME}, or $${ for a literal ${"
        name = match.group(1)
        if not _NAME.match(name):
            return text, f"`${{{name}}}` is not a valid variable name (letters, digits, _)"
        parts.append((False, "".join(literal)))
        literal = []
        parts.append((True, name))
    literal.append(text[pos:])
    rest = "".join(literal)
    if not any(is_var for is_var, _ in parts):
        return rest, None  # only escapes: a plain string
    parts.append((False, rest))
    return EnvRef(tuple(p for p in parts if p[0] or p[1])), None


def scan(value: Any, path: FieldPath = ()) -> tuple[Any, list[tuple[FieldPath, str]]]:
    """Replace reference syntax by EnvRef/FileRef values; report malformed references."""
    problems: list[tuple[FieldPath, str]] = []

    def visit(node: Any, where: FieldPath) -> Any:
        if isinstance(node, str):
            out, problem = _scan_string(node)
            if problem:
                problems.append((where, problem))
            return out
        if isinstance(node, dict) and "file" in node and len(node) == 1:
            target = node["file"]
            if not isinstance(target, str) or not target:
                problems.append(
                    ((*where, "file"), "a file reference needs a path: {file: /run/secrets/NAME}")
                )
                return node
            return FileRef(target)
        return DESCEND

    return rebuild(value, visit, path), problems


def placeholder(value: Any) -> Any:
    """The value with each reference replaced by a string, for offline schema checks."""
    return rebuild(value, lambda node, _: "" if isinstance(node, (EnvRef, FileRef)) else DESCEND)


def has_ref(value: Any) -> bool:
    return any(isinstance(node, (EnvRef, FileRef)) for _, node in nodes(value))


ReadFile = Callable[[Path], str]


MAX_SECRET_FILE = 1024 * 1024
"""A secret is a key or a certificate, not data: bigger files are refused unread."""


def read_secret_file(path: Path, *, limit: int = MAX_SECRET_FILE) -> str:
    """A regular file's text, at most `limit` bytes: never a FIFO (it would block), a device
    (`/dev/zero` never ends) or a directory."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise OSError(errno.EINVAL, "not a regular file (a FIFO, device or directory is never read)")
        if info.st_size > limit:
            raise OSError(errno.EFBIG, f"larger than {limit // 1024} KiB; a secret file holds one secret")
        chunks: list[bytes] = []
        size = 0
        while size <= limit:
            chunk = os.read(fd, min(65536, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > limit:
            raise OSError(errno.EFBIG, f"larger than {limit // 1024} KiB; a secret file holds one secret")
    finally:
        os.close(fd)
    return b"".join(chunks).decode("utf-8")


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # os.environ keeps undecodable bytes as lone surrogates
        return False
    return True


def resolve(
    value: Any,
    *,
    env: Mapping[str, str],
    base_dir: Path | str,
    read: ReadFile = read_secret_file,
    path: FieldPath = (),
    secrets: list[str] | None = None,
) -> tuple[Any, list[tuple[FieldPath, str]]]:
    """Replace references by their values; problems name the variable or file, never a value.
    `secrets` (when given) collects what the references gave: each variable's and file's value."""
    problems: list[tuple[FieldPath, str]] = []
    given: list[str] = [] if secrets is None else secrets

    def visit(node: Any, where: FieldPath) -> Any:
        if isinstance(node, EnvRef):
            out: list[str] = []
            for is_var, text in node.parts:
                if not is_var:
                    out.append(text)
                elif text in env:
                    if not _utf8(env[text]):
                        problems.append((where, f"environment variable {text} is not valid UTF-8 text"))
                        continue
                    out.append(env[text])
                    given.append(env[text])
                else:
                    problems.append(
                        (where, f"environment variable {text} is not set; export it before plan/apply")
                    )
            return "".join(out)
        if isinstance(node, FileRef):
            target = Path(node.path).expanduser()
            if not target.is_absolute():
                target = Path(os.path.normpath(Path(base_dir) / target))
            try:
                content = read(target).removesuffix("\n")
                given.append(content)
                return content
            except (OSError, UnicodeDecodeError) as exc:
                reason = getattr(exc, "strerror", None) or type(exc).__name__
                problems.append((where, f"cannot read secret file {target}: {reason}"))
                return ""
        return DESCEND

    return rebuild(value, visit, path), problems


def resolve_manifests(
    manifests: Sequence[Manifest],
    *,
    env: Mapping[str, str],
    read: ReadFile = read_secret_file,
) -> tuple[list[Manifest], list[Problem]]:
    """Each manifest with its references replaced; a missing variable or file is a problem."""
    out: list[Manifest] = []
    problems: list[Problem] = []
    for manifest in manifests:
        if manifest.resolved:
            out.append(manifest)
            continue
        base = os.path.dirname(manifest.source.path)  # a Path only if a file reference needs it
        given: list[str] = []
        configuration, errors = resolve(
            dict(manifest.configuration),
            env=env,
            base_dir=base,
            read=read,
            path=("configuration",),
            secrets=given,
        )
        redact.SCRUBBER.register(*given)
        for path, message in errors:
            field = ".".join(str(p) for p in path)
            top = ".".join(str(p) for p in path[:2])
            line, column = manifest.positions.get(top, (manifest.source.line, manifest.source.column))
            problems.append(
                Problem(
                    manifest.source.path,
                    line,
                    column,
                    field,
                    f"{message} ({manifest.kind.lower()} `{manifest.name}`)",
                )
            )
        resolved = dataclasses.replace(manifest, configuration=configuration, resolved=True)
        register_secrets([resolved], referenced=[k for k, v in manifest.configuration.items() if has_ref(v)])
        out.append(resolved)
    return out, problems


PLACEHOLDER = "sandbox-placeholder"


class _Placeholders(dict[str, str]):
    """An environment where every missing variable is a placeholder, and is remembered."""

    def __init__(self, env: Mapping[str, str]) -> None:
        super().__init__(env)
        self.missing: set[str] = set()

    def __contains__(self, key: object) -> bool:
        return True

    def __missing__(self, key: str) -> str:
        self.missing.add(f"environment variable {key}")
        return PLACEHOLDER


def resolve_secrets(
    manifests: Sequence[Manifest], env: Mapping[str, str], *, placeholders: bool = False
) -> tuple[tuple[Manifest, ...], tuple[str, ...]]:
    """Replace ${…} and file references; a missing variable or file stops everything.

    With `placeholders` (only for the embedded sandbox, which never calls a provider) a missing
    variable or file becomes a placeholder instead, and is named in the returned notes.
    """
    base = dict(env)
    if not placeholders:
        resolved, problems = resolve_manifests(manifests, env=base)
        if problems:
            raise InvalidManifests(problems)
        return tuple(resolved), ()
    fake = _Placeholders(base)

    def read(path: Path) -> str:
        try:
            return read_secret_file(path)
        except (OSError, UnicodeDecodeError):
            fake.missing.add(f"secret file {path}")
            return PLACEHOLDER

    resolved, problems = resolve_manifests(manifests, env=fake, read=read)
    if problems:
        raise InvalidManifests(problems)
    notes = tuple(
        f"warning: {what} is not available: the local sandbox gets a placeholder "
        "(a real server would refuse to plan)"
        for what in sorted(fake.missing)
    )
    return tuple(resolved), notes


def register_secrets(manifests: Sequence[Manifest], *, referenced: Sequence[str] = ()) -> None:
    """Every resolved secret value goes to the scrubber before anything is printed or sent: what
    references gave (resolve_manifests registers it as it resolves), writeOnly fields whole, and
    keys named like secrets at any depth. A field that is sensitive only because a reference sits
    somewhere inside it (`referenced`) is still never printed, but its literal siblings (a
    filter's `type: condition`) are not secrets, so they are not registered: else every
    `condition` in every output would read `(redacted)`."""
    for manifest in manifests:
        for path, node in nodes(dict(manifest.configuration)):
            if not path:
                continue
            key = path[-1]
            whole = len(path) == 1 and key in manifest.sensitive and key not in referenced
            if whole or (isinstance(key, str) and redact.looks_secret_key(key)):
                redact.SCRUBBER.register_tree(node)
