"""`SandboxConfig`: how one sandbox server behaves, as one immutable value.

The defaults give the real server's default behaviour (no key, one tenant, secrets echoed) with no
faults. Everything here is read per request, so `SandboxServer.reset(config)` can swap it live.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class SandboxConfig:
    """Settings of one sandbox server. All fault rates are shares in [0, 1]."""

    token: str | None = field(default=None, repr=False)
    """The admin key (`SYFT_ADMIN_API_KEY`); `None` is a server with no key: everything passes."""

    multi_tenancy: bool = False
    """Like `SYFT_ENABLE_MULTI_TENANCY`: `X-Tenant-Name` required on the tenant-scoped routes."""

    types: tuple[str, ...] | None = None
    """The bundled dtypes this server offers; `None` offers all of them."""

    redact_secrets: bool = False
    """Drop every `writeOnly` field of the dtype's schema from responses, as newer servers do."""

    provisioner: str = "ok"
    """`ok`: the shared chroma process of `local_file` and `wordpress` datasets starts (imitated,
    never run); `missing`: no `chroma` CLI, so creating such a dataset is the real server's 500."""

    latency_ms: int = 0
    """Delay of every response, without blocking other requests."""

    fail_503_rate: float = 0.0
    """Share of requests to the models, datasets, endpoints and policies routes
    answered 503 before anything else happens."""

    fail_429_rate: float = 0.0
    """Share of requests to the models, datasets, endpoints and policies routes
    answered 429 with `Retry-After`."""

    retry_after_s: float = 1
    """The `Retry-After` of those 429s, in seconds."""

    drop_after_commit_rate: float = 0.0
    """Share of successful writes (of those four kinds) whose response is lost after the write committed."""

    race_500_rate: float = 0.0
    """Share of creates losing on a taken name answered 500 text/plain, as the real server's race."""

    reset_rate: float = 0.0
    """Share of requests to the models, datasets, endpoints and policies routes
    whose connection closes before they are processed."""

    slow_rate: float = 0.0
    """Share of requests to the models, datasets, endpoints and policies routes
    answered `slow_ms` late, after their work committed."""

    slow_ms: int = 5000
    """How late those slow answers come: past the client's timeout, in the fault runs."""

    seed: int | None = None
    """Seed of the fault draws, so that they repeat."""

    def __post_init__(self) -> None:
        rates = {
            "fail_503_rate": self.fail_503_rate,
            "fail_429_rate": self.fail_429_rate,
            "drop_after_commit_rate": self.drop_after_commit_rate,
            "race_500_rate": self.race_500_rate,
            "reset_rate": self.reset_rate,
            "slow_rate": self.slow_rate,
        }
        for name, rate in rates.items():
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"{name} must be within [0, 1], got {rate}")
        if self.provisioner not in ("ok", "missing"):
            raise ValueError(f"provisioner must be 'ok' or 'missing', got {self.provisioner!r}")
        if self.slow_ms < 0:
            raise ValueError(f"slow_ms must not be negative, got {self.slow_ms}")
        if self.latency_ms < 0:
            raise ValueError(f"latency_ms must not be negative, got {self.latency_ms}")
        if self.retry_after_s < 0:
            raise ValueError(f"retry_after_s must not be negative, got {self.retry_after_s}")
        if self.types is not None and not isinstance(self.types, tuple):
            # a list would make the value unhashable and mutable behind our back
            object.__setattr__(self, "types", tuple(self.types))


DEFAULT_CONFIG = SandboxConfig()
