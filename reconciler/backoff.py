"""How long to wait before trying again: one policy for the client's retries and the daemon's rounds.

The n-th failure waits `delays[n]` (the last one repeats), capped at `cap`, then jittered by
±`jitter` of it so that clients or daemons that lost the same server do not come back in the same
second. A server's Retry-After is honoured, but never beyond MAX_RETRY_AFTER: a hostile or broken
server must not park us for an hour (pure; the random source can be passed in).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

MAX_RETRY_AFTER = 30.0
"""The longest wait a server's Retry-After can ask for."""


@dataclass(frozen=True)
class Backoff:
    delays: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0, 4.0)
    jitter: float = 0.5
    cap: float = 10.0

    @classmethod
    def with_retries(cls, retries: int) -> Backoff:
        """`retries` retries after the first attempt, doubling from 0.25 s up to 4 s."""
        return cls(delays=tuple(min(0.25 * 2**i, 4.0) for i in range(retries)))

    def delay(
        self, attempt: int, retry_after: float | None = None, *, rng: random.Random | None = None
    ) -> float:
        """Seconds to wait after failure number `attempt` (from 0)."""
        if not self.delays:
            return 0.0
        base = min(self.cap, self.delays[min(attempt, len(self.delays) - 1)])
        base *= 1 + (rng or random).uniform(-self.jitter, self.jitter)
        if retry_after is not None and not math.isnan(retry_after):
            base = max(base, min(max(retry_after, 0.0), MAX_RETRY_AFTER))
        return max(0.0, base)


DAEMON_BACKOFF = Backoff(delays=(1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 60.0), jitter=0.25, cap=60.0)
"""Between watch rounds that failed against the server: 1 s doubling to a minute."""
