"""The folder lock: a `watch` and an `apply` on the same manifests folder never run at once.

An advisory `fcntl.flock` on `<folder>/.syft-reconciler.lock` (the folder of the first path; the
lock falls back to the temp dir, keyed by the folder's real path, when the folder is read-only or
missing). `watch` holds it exclusively for its whole life; `apply` holds it shared, so applies may
still run side by side (creates are safe under races, apply.py) but never beside a watch. The
kernel drops the lock when its holder exits, however it exits, so a crash never leaves a stale
lock behind; the file itself stays on purpose (deleting a lock file races with its next user).
POSIX only.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import os
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

from reconciler.errors import LockHeld

LOCK_NAME = ".syft-reconciler.lock"


def lock_file(paths: Sequence[Path]) -> Path:
    """Where the lock for these paths lives: in the folder of the first one."""
    first = paths[0] if paths else Path("manifests")
    return (first if first.is_dir() else first.parent) / LOCK_NAME


def _fallback(folder: Path) -> Path:
    key = hashlib.sha256(str(folder.resolve()).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"syft-reconciler-{key}.lock"


def _open(path: Path) -> tuple[int, Path]:
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT, 0o644), path
    except OSError as exc:
        if exc.errno not in (errno.EACCES, errno.EROFS, errno.EPERM, errno.ENOENT):
            raise
        fallback = _fallback(path.parent)
        return os.open(fallback, os.O_RDWR | os.O_CREAT, 0o644), fallback


def _holder(fd: int) -> str:
    try:
        text = os.pread(fd, 200, 0).decode("utf-8", "replace").split()
    except OSError:  # pragma: no cover - a lock file we just opened is readable
        return ""
    return f" ({text[1]}, pid {text[0]})" if len(text) >= 2 else ""


@contextlib.contextmanager
def folder_lock(paths: Sequence[Path], *, command: str, shared: bool = False) -> Iterator[Path]:
    """Hold the folder's lock for the block; raise LockHeld at once if it is taken (exclusively,
    or at all when we want it exclusively)."""
    folder = lock_file(paths).parent
    fd, path = _open(lock_file(paths))
    try:
        try:
            fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
        except BlockingIOError:
            raise LockHeld(
                f"another syft-reconciler{_holder(fd)} holds the lock on {folder} ({path}); "
                "a watch and an apply on the same folder never run at once"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()} {command}\n".encode(), 0)
        yield path
    finally:
        os.close(fd)  # closing the descriptor releases the lock
