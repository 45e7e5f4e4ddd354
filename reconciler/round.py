"""Observe the server and plan: the step that plan, apply and watch share after loading.

Everything that can be refused is refused before the first write: an unknown tenant and a dtype
the target server does not offer here; invalid manifests and missing secrets before (loading.py,
references.py); the blast-radius limit after (plan.check_deletions). Then the executor runs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from reconciler.model import Manifest, Plan, RemoteModel
from reconciler.plan import Scope
from reconciler.plan import plan as make_plan
from reconciler.schemas import SchemaRegistry
from reconciler.validate import check_types

if TYPE_CHECKING:  # httpx costs ~100 ms to import; validate never needs it
    from reconciler.client import SpaceClient


@dataclass(frozen=True)
class Observed:
    plan: Plan
    models: Mapping[str, RemoteModel]


def observe_and_plan(
    client: SpaceClient,
    manifests: Sequence[Manifest],
    registry: SchemaRegistry,
    *,
    adopt: bool = False,
    prune: bool = False,
    scope: Scope | None = None,
    check_server_types: bool = True,
) -> Observed:
    """Verify the tenant and dtypes, read the server's state in one list call, and plan."""
    client.check_tenant()
    if check_server_types and manifests:
        offered = [t.name for t in client.list_types()]
        check_types(manifests, offered, client.base_url)
    observed = {m.name: m for m in client.list_models()}
    the_plan = make_plan(manifests, observed, facts=registry.facts, scope=scope or Scope(adopt=adopt, prune=prune))
    return Observed(the_plan, observed)
