"""`SandboxState`: everything a running sandbox holds (config, offered types, store, fault dice,
request counts), shared by its middleware and routes.

Its methods run on the server's event loop (or any single thread when no server is running), so
the store's one connection is never used concurrently. The request counts alone are read from
other threads, under a lock.
"""

from __future__ import annotations

import asyncio
import random
import threading
from collections import Counter
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

from reconciler.sandbox import bundled
from reconciler.sandbox.catalog import Catalog, KindType, dataset_types, policy_types
from reconciler.sandbox.config import SandboxConfig
from reconciler.sandbox.store import Store

EPOCH_KEY = "sandbox.epoch"  # in the ASGI scope: the state's epoch when the request arrived


class SandboxState:
    """The live state behind one sandbox app."""

    def __init__(self, config: SandboxConfig, store: Store) -> None:
        self.model_schemas = bundled.load()
        self.dataset_types: dict[str, KindType] = dataset_types()
        self.policy_types: dict[str, KindType] = policy_types()
        self.provisioner_started_at: str | None = None
        self.store = store
        # Bumped by every reset: a request that arrived before it (stale) must not touch the
        # fresh state nor be counted in it (see `TrafficMiddleware`, `stale`).
        self.epoch = 0
        self.loop: asyncio.AbstractEventLoop | None = None
        self._counts: Counter[str] = Counter()
        self._outcomes: Counter[str] = Counter()
        self._counts_lock = threading.Lock()
        self.configure(config)

    def configure(self, config: SandboxConfig) -> None:
        catalog = Catalog(self.model_schemas, config.types)  # raises before anything changes
        self.config = config
        self.catalog = catalog
        self.rng = random.Random(config.seed)
        self.store.set_redaction(catalog.secret_fields if config.redact_secrets else {})

    def reset(self, config: SandboxConfig | None = None) -> None:
        """Wipe every kind and the tenants (root stays), stop the imitated provisioner, zero the
        counts, reseed; maybe a new config."""
        self.configure(self.config if config is None else config)
        self.epoch += 1
        self.store.reset()
        self.provisioner_started_at = None
        with self._counts_lock:
            self._counts.clear()
            self._outcomes.clear()

    def stale(self, scope: Mapping[str, Any]) -> bool:
        """Whether this request arrived before the last reset (it belongs to an earlier test)."""
        return bool(scope.get(EPOCH_KEY, self.epoch) != self.epoch)

    def draw(self, rate: float) -> bool:
        """True with probability `rate`; rate 0 never touches the dice, so draws stay aligned."""
        return rate > 0 and (rate >= 1 or self.rng.random() < rate)

    def count_request(self, key: str) -> None:
        with self._counts_lock:
            self._counts[key] += 1

    def count_outcome(self, key: str, outcome: str) -> None:
        with self._counts_lock:
            self._outcomes[f"{key} {outcome}"] += 1

    def stats(self, *, by_status: bool = False) -> dict[str, int]:
        """Requests by "METHOD /route/{template}"; with by_status, by "... STATUS" as well.

        The outcome is the status code sent, or "dropped" for a response lost on purpose.
        """
        with self._counts_lock:
            return dict(self._outcomes if by_status else self._counts)

    @asynccontextmanager
    async def lifespan(self, _app: Any) -> AsyncIterator[None]:
        """Remember the serving loop, so other threads can hand work to it."""
        self.loop = asyncio.get_running_loop()
        try:
            yield
        finally:
            self.loop = None
