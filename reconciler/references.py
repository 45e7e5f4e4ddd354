"""Secret references in configuration values, so secrets never live in git.

    api_key: ${OPENAI_API_KEY}            an environment variable (may sit inside a longer string)
    api_key: {file: /run/secrets/openai}  a file's content, trailing newline dropped; a relative
                                          path is relative to the manifest's folder
    prompt: "costs $${PRICE}"             `$${` is a literal `${`

`scan()` parses them offline (validate needs no secrets); `resolve()` replaces them when requests
are built. Pure: the environment and the file reader are passed in.
"""

from __future__ import annotations

import errno
import os
import re
import stat
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_TOKEN = re.compile(r"\$\$\{|\$\{([^}]*)\}|\$\{")

FieldPath = tuple[str | int, ...]


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
    if isinstance(value, str):
        out, problem = _scan_string(value)
        if problem:
            problems.append((path, problem))
        return out, problems
    if isinstance(value, dict):
        if "file" in value and len(value) == 1:
            target = value["file"]
            if not isinstance(target, str) or not target:
                problems.append(((*path, "file"), "a file reference needs a path: {file: /run/secrets/NAME}"))
                return value, problems
            return FileRef(target), problems
        result = {}
        for key, item in value.items():
            result[key], sub = scan(item, (*path, key))
            problems.extend(sub)
        return result, problems
    if isinstance(value, list):
        items = []
        for index, item in enumerate(value):
            scanned, sub = scan(item, (*path, index))
            items.append(scanned)
            problems.extend(sub)
        return items, problems
    return value, problems


def placeholder(value: Any) -> Any:
    """The value with each reference replaced by a string, for offline schema checks."""
    if isinstance(value, (EnvRef, FileRef)):
        return ""
    if isinstance(value, dict):
        return {k: placeholder(v) for k, v in value.items()}
    if isinstance(value, list):
        return [placeholder(v) for v in value]
    return value


def has_ref(value: Any) -> bool:
    if isinstance(value, (EnvRef, FileRef)):
        return True
    if isinstance(value, dict):
        return any(has_ref(v) for v in value.values())
    if isinstance(value, list):
        return any(has_ref(v) for v in value)
    return False


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
) -> tuple[Any, list[tuple[FieldPath, str]]]:
    """Replace references by their values; problems name the variable or file, never a value."""
    problems: list[tuple[FieldPath, str]] = []
    if isinstance(value, EnvRef):
        out: list[str] = []
        for is_var, text in value.parts:
            if not is_var:
                out.append(text)
            elif text in env:
                if not _utf8(env[text]):
                    problems.append((path, f"environment variable {text} is not valid UTF-8 text"))
                    continue
                out.append(env[text])
            else:
                problems.append((path, f"environment variable {text} is not set; export it before plan/apply"))
        return "".join(out), problems
    if isinstance(value, FileRef):
        target = Path(value.path).expanduser()
        if not target.is_absolute():
            target = Path(os.path.normpath(Path(base_dir) / target))
        try:
            return read(target).removesuffix("\n"), problems
        except (OSError, UnicodeDecodeError) as exc:
            reason = getattr(exc, "strerror", None) or type(exc).__name__
            problems.append((path, f"cannot read secret file {target}: {reason}"))
            return "", problems
    if isinstance(value, dict):
        result = {}
        for key, item in value.items():
            result[key], sub = resolve(item, env=env, base_dir=base_dir, read=read, path=(*path, key))
            problems.extend(sub)
        return result, problems
    if isinstance(value, list):
        items = []
        for index, item in enumerate(value):
            resolved, sub = resolve(item, env=env, base_dir=base_dir, read=read, path=(*path, index))
            items.append(resolved)
            problems.extend(sub)
        return items, problems
    return value, problems
