"""The exception tree. Every error a user can meet is one of these, with a one-line message.

    ReconcilerError                 exit_code, kind (the JSON error kind), one-line message
    ├── InvalidManifests            problems: every problem found, file:line:col: field: message
    ├── ServerUnreachable           connect errors and timeouts that outlived the retries
    │   └── UncertainWrite          a write whose answer was lost: it may have landed, look it up
    ├── AuthError                   401 / 403: stop writing at once
    ├── TenantNotFound              --tenant names a tenant the server does not have
    ├── LockHeld                    another apply/watch holds the instance's lock on the space
    ├── Refused                     a safety guard: too many deletions, prune over part of the set
    ├── StalePlan                   a saved plan no longer matches the manifests or the server
    ├── WrongTarget                 a saved plan applied to another server or tenant (exit 64)
    ├── BadSetting                  a token, tenant or option that can never work (exit 64, one line)
    └── ServerError                 any other refusal: status, method, path, trimmed detail
        └── RetryableServerError    429 / 502 / 503 / 504, with the server's Retry-After if any

Every exception the package raises to its callers lives here. `client.py` is the only place that
turns httpx errors and statuses into these (`raise … from`), and `cli/app.py` the only place that
turns these into text and exit codes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from reconciler.model import Problem

# Exit codes: documented in README.md ("Exit codes"); scripts branch on them.
EXIT_OK = 0
EXIT_FAILED = 1  # invalid manifests, or some changes failed
EXIT_CHANGES = 2  # plan --detailed-exitcode: changes are pending (Terraform's code)
EXIT_USAGE = 64  # usage errors (BSD sysexits' EX_USAGE), never confused with "changes pending"
EXIT_UNEXPECTED = 3
EXIT_UNREACHABLE = 4
EXIT_AUTH = 5
EXIT_SERVER = 6
EXIT_CONFLICT = 7  # apply: a model on the server differs and is not ours (a per-model outcome)
EXIT_TENANT = 8
EXIT_LOCKED = 9
EXIT_STALE_PLAN = 10  # saved_plan.StalePlan
EXIT_REFUSED = 11  # a safety guard refused the run before any write

MAX_DETAIL = 256  # the server's words are trimmed, like kopf's cap on API messages


class ReconcilerError(Exception):
    """Base of everything the CLI reports as a handled error."""

    exit_code = EXIT_FAILED
    kind = "error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class InvalidManifests(ReconcilerError):
    kind = "invalid_manifests"

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = tuple(problems)
        errors = sum(1 for p in self.problems if p.severity == "error")
        super().__init__(f"{errors} problem(s) in the manifests; nothing was written")


class ServerUnreachable(ReconcilerError):
    exit_code = EXIT_UNREACHABLE
    kind = "unreachable"


class UncertainWrite(ServerUnreachable):
    """The request may have reached the server (a timeout or dropped response): look it up."""


class AuthError(ReconcilerError):
    exit_code = EXIT_AUTH
    kind = "auth"


class TenantNotFound(ReconcilerError):
    exit_code = EXIT_TENANT
    kind = "tenant_not_found"


class LockHeld(ReconcilerError):
    exit_code = EXIT_LOCKED
    kind = "locked"


class Refused(ReconcilerError):
    """A safety guard refused the whole run before any write (blast radius, prune scope, owner)."""

    exit_code = EXIT_REFUSED
    kind = "refused"


class StalePlan(ReconcilerError):
    """The saved plan no longer matches the manifests or the server: plan again."""

    exit_code = EXIT_STALE_PLAN
    kind = "stale_plan"


class WrongTarget(ReconcilerError):
    """The saved plan was made for another server or tenant."""

    exit_code = EXIT_USAGE
    kind = "wrong_target"


class BadSetting(ReconcilerError):
    """A setting refused before any request: one line (and the JSON error), unlike click's usage text."""

    exit_code = EXIT_USAGE
    kind = "usage"


class ServerError(ReconcilerError):
    exit_code = EXIT_SERVER
    kind = "server_error"

    def __init__(self, message: str, *, status: int | None = None, detail: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.detail = detail[:MAX_DETAIL]


class RetryableServerError(ServerError):
    """429 / 502 / 503 / 504: worth another attempt, after the server's Retry-After if it gave one."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        detail: str = "",
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, status=status, detail=detail)
        self.retry_after = retry_after
