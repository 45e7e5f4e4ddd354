"""The daemon loop's liveness (/livez): when the loop was last heard from, and how long it promised
to stay silent. The loop (watch.py) beats; metrics.py reads the status; a multi-space watch
(cli/watch.py) joins its loops' heartbeats into one. No I/O: a clock and a lock.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

STALL_SLACK_S = 30.0
"""Added to every promise of the loop: a busy machine (GC, two cores shared) is not a stuck loop."""

NOT_STARTED = "not_started"
"""The phase of a loop whose last attempt to start failed, waiting to try again."""


@dataclass(frozen=True)
class Liveness:
    alive: bool
    phase: str
    """starting, waiting (for file changes), round, backoff, not_started or stopped."""
    silent_s: float
    """Seconds since the loop was last heard from (a beat, or a request it started in a round)."""
    allowed_s: float
    """How long it may stay silent in this phase (its promise plus STALL_SLACK_S)."""


class Heartbeat:
    """When the daemon's loop was last heard from, and how long it promised to stay silent (/livez).

    The loop beats with a promise at each step: waiting for changes, it beats on every tick of
    the watcher (at most a tick plus the debounce apart); before a backoff, the delay; before a
    round, `round_silence` (the longest one request may take with its retries). During a round,
    every request it starts (`progress`, a counter) renews the promise, so a long apply of many
    models stays alive while a hung one does not. A loop that ended is not alive.
    """

    def __init__(
        self, *, progress: Callable[[], int] = lambda: 0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._progress = progress
        self._clock = clock
        self._lock = threading.Lock()
        self._phase = "starting"
        self._at = clock()
        self._allowed = STALL_SLACK_S
        self._seen = progress()
        self._cannot_start = False

    def beat(self, phase: str, within: float) -> None:
        """The loop is in `phase` and will be heard from again within `within` seconds."""
        with self._lock:
            self._phase, self._at, self._allowed = phase, self._clock(), within + STALL_SLACK_S
            self._seen = self._progress()
            self._cannot_start = False

    def cannot_start(self, within: float) -> None:
        """The loop could not start (a space's lock held, its token or folder missing) and tries
        again within `within` seconds; until it beats as started, it applies nothing."""
        with self._lock:
            self._phase, self._at, self._allowed = NOT_STARTED, self._clock(), within + STALL_SLACK_S
            self._cannot_start = True

    @property
    def applies(self) -> bool:
        """False while the loop's last attempt to start failed (it is alive, retrying, but
        reconciles nothing)."""
        with self._lock:
            return not self._cannot_start

    def stopped(self) -> None:
        with self._lock:
            self._phase, self._at, self._allowed = "stopped", self._clock(), 0.0

    def status(self) -> Liveness:
        with self._lock:
            now, seen = self._clock(), self._progress()
            if seen != self._seen and self._phase == "round":  # a request started since: progress
                self._seen, self._at = seen, now
            silent = now - self._at
            alive = self._phase != "stopped" and silent <= self._allowed
            return Liveness(alive, self._phase, silent, self._allowed)


class Heartbeats(Heartbeat):
    """Many loops as one (a watch over many spaces): alive while every one keeps its promise and
    at least one of them applies; the status is the first that does not keep it, else the
    change source's own. A daemon whose every space failed to start (each retrying) applies
    nothing: it is not alive (phase not_started), so that a supervisor sees it and restarts it."""

    def __init__(self, source: Heartbeat, loops: Sequence[Heartbeat]) -> None:
        super().__init__()
        self.source = source
        self.loops = tuple(loops)

    def beat(self, phase: str, within: float) -> None:
        self.source.beat(phase, within)

    def stopped(self) -> None:
        self.source.stopped()

    def status(self) -> Liveness:
        statuses = [self.source.status(), *(h.status() for h in self.loops)]
        stuck = next((s for s in statuses if not s.alive), None)
        if stuck is not None:
            return stuck
        if self.loops and not any(h.applies for h in self.loops):
            return dataclasses.replace(statuses[0], alive=False, phase=NOT_STARTED)
        return statuses[0]
