"""Stopping gracefully on SIGINT and SIGTERM: the one signal handler that apply and watch share.

A KeyboardInterrupt could land anywhere, even between a request that committed and its report
line, so the first signal only calls `first(signum)` (apply stops submitting, the daemon ends
after its round). What a second signal does depends on who asks:
- `then="previous"` (apply): the handler that was there before takes over, and hears of the first
  signal too, so a daemon running an apply in its round stops after that round;
- `then="interrupt"` (watch): a KeyboardInterrupt, which cuts the round short.
Only the main thread can install handlers; elsewhere nothing is installed.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any, Literal

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def graceful(first: Callable[[int], None], *, then: Literal["previous", "interrupt"]) -> Iterator[None]:
    """Within the block, SIGINT/SIGTERM call `first(signum)`; a second one acts as `then` says."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous: dict[int, Any] = {int(sig): signal.getsignal(sig) for sig in STOP_SIGNALS}
    seen: set[int] = set()

    def handle(signum: int, frame: FrameType | None) -> None:
        if then == "interrupt" and seen:
            raise KeyboardInterrupt
        seen.add(signum)
        first(signum)
        if then == "previous":
            before = previous[signum]
            signal.signal(signum, before if before is not None else signal.SIG_DFL)
            if callable(before) and before is not signal.default_int_handler:
                before(signum, frame)

    for stop_signal in STOP_SIGNALS:
        signal.signal(stop_signal, handle)
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler if handler is not None else signal.SIG_DFL)
