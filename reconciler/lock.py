"""The lock: a `watch` and an `apply` of the same instance on the same space never run at once.

An advisory `fcntl.flock` on `<home>/.syft-space/syft-reconciler-<key>.lock`. The home is the instance's
folder however its paths are spelled (project.Instance.home: the project file's folder, else the
git checkout's top, else the first path's folder), so `apply manifests/sub`, `apply ./manifests/`
or reordered paths meet a `watch manifests`; the key is the target space (server and tenant,
project.lock_key), so one repository can drive several spaces at once. `.syft-space/` is the
tool's state folder (the sandbox's database lives there too): `state_dir` makes it with a
`.gitignore` of `*`, as pytest does for `.pytest_cache`, so that `git add -A` never commits it. The
lock falls back to the temp dir, keyed by the file's real path, when the home is read-only or
missing. `watch` holds it
exclusively for its whole life; `apply` holds it shared, so applies may still run side by side
(creates are safe under races, apply.py) but never beside a watch. The
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
from collections.abc import Iterator
from pathlib import Path

from reconciler.errors import LockHeld

STATE_DIR = ".syft-space"
GITIGNORE = "# Made by syft-reconciler: its local state (lock files, the sandbox's database).\n*\n"


def state_dir(home: Path) -> Path:
    """`<home>/.syft-space`, made (with its `.gitignore`) if it is not there yet; OSError when the
    home cannot hold it (read-only, missing)."""
    folder = home / STATE_DIR
    folder.mkdir(exist_ok=True)
    ignore = folder / ".gitignore"
    if not ignore.exists():
        # written whole under another name, then renamed: a reader never sees half a file
        partial = folder / f".gitignore.{os.getpid()}.tmp"
        partial.write_text(GITIGNORE)
        partial.replace(ignore)
    return folder


def lock_file(home: Path, key: str) -> Path:
    """Where the lock of the instance at `home` on the space `key` lives."""
    return home / STATE_DIR / f"syft-reconciler-{key}.lock"


def _fallback(path: Path) -> Path:
    key = hashlib.sha256(str(path.parent.resolve() / path.name).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"syft-reconciler-{key}.lock"


def _open(path: Path) -> tuple[int, Path]:
    try:
        state_dir(path.parent.parent)
        return os.open(path, os.O_RDWR | os.O_CREAT, 0o644), path
    except OSError as exc:
        if exc.errno not in (
            errno.EACCES,
            errno.EROFS,
            errno.EPERM,
            errno.ENOENT,
            errno.ENOTDIR,
            errno.EEXIST,
        ):
            raise
        fallback = _fallback(path)
        return os.open(fallback, os.O_RDWR | os.O_CREAT, 0o644), fallback


def _holder(fd: int) -> str:
    try:
        text = os.pread(fd, 200, 0).decode("utf-8", "replace").split()
    except OSError:  # pragma: no cover - a lock file we just opened is readable
        return ""
    return f" ({text[1]}, pid {text[0]})" if len(text) >= 2 else ""


@contextlib.contextmanager
def space_lock(home: Path, key: str, *, command: str, shared: bool = False) -> Iterator[Path]:
    """Hold the instance's lock on one space for the block; raise LockHeld at once if it is taken
    (exclusively, or at all when we want it exclusively)."""
    folder = home
    fd, path = _open(lock_file(home, key))
    try:
        try:
            fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
        except BlockingIOError:
            raise LockHeld(
                f"another syft-reconciler{_holder(fd)} holds the lock on {folder} ({path}); "
                "a watch and an apply of the same manifests on the same space never run at once"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()} {command}\n".encode(), 0)
        yield path
    finally:
        os.close(fd)  # closing the descriptor releases the lock
