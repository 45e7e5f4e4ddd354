"""Run one function in a forked child while the parent works, and get its result back.

Loading 10,000 manifests is CPU-bound Python; a second core halves it. `fork` shares the loaded
modules and compiled schemas for free, and the result comes back pickled through a pipe. Used
only where it is safe: no other thread alive (a fork copies locks held by threads that do not
exist in the child), POSIX. Any failure in the child gives `None`, and the caller does the work
itself, so this can only make things faster, never different.
"""

from __future__ import annotations

import os
import pickle
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


def can_fork() -> bool:
    return hasattr(os, "fork") and (os.cpu_count() or 1) > 1 and threading.active_count() == 1


class Forked(Generic[T]):
    """`work()` started in a child process; `result()` waits for it (None if it failed)."""

    def __init__(self, work: Callable[[], T]) -> None:
        read_end, write_end = os.pipe()
        self._pid = os.fork()
        if self._pid == 0:  # the child: do the work, send it, leave without any clean-up
            os.close(read_end)
            code = 0
            try:
                data = pickle.dumps(work(), protocol=pickle.HIGHEST_PROTOCOL)
                with os.fdopen(write_end, "wb") as out:
                    out.write(data)
            except BaseException:
                code = 1
            os._exit(code)
        os.close(write_end)
        self._read_end = read_end

    def result(self) -> T | None:
        with os.fdopen(self._read_end, "rb") as source:
            data = source.read()
        _, status = os.waitpid(self._pid, 0)
        if not os.WIFEXITED(status) or os.WEXITSTATUS(status) != 0 or not data:
            return None
        try:
            value: T = pickle.loads(data)
        except Exception:
            return None
        return value
