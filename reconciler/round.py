"""Observe the server and plan: the step that plan, apply and watch share after loading.

Everything that can be refused is refused before the first write: an unknown tenant and a dtype
the target server does not offer here; invalid manifests and missing secrets before (loading.py,
references.py); the blast-radius limit after (plan.check_deletions). Then the executor runs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reconciler import redact, render
from reconciler.errors import Refused
from reconciler.loading import Loaded, load, load_variables
from reconciler.model import Change, Manifest, Plan, RemoteModel
from reconciler.plan import PlanOptions, Scope, deletions
from reconciler.plan import plan as make_plan
from reconciler.project import Instance, check_prune_scope, resolve_instance
from reconciler.references import resolve_secrets
from reconciler.saved_plan import SavedPlan, manifests_digest, state_fingerprint
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
    the_plan = make_plan(
        manifests, observed, facts=registry.facts, scope=scope or Scope(adopt=adopt, prune=prune)
    )
    return Observed(the_plan, observed)


# -- the run that plan, apply and watch share -------------------------------------------------


@dataclass(frozen=True)
class Request:
    """What a plan or apply run was asked for, before anything is read."""

    instance: Instance
    options: PlanOptions
    var_files: tuple[Path, ...] = ()
    placeholders: bool = False
    """Missing secrets become placeholders: only for the embedded sandbox."""


@dataclass(frozen=True)
class Desired:
    """The manifests, loaded, validated and with their secrets resolved."""

    loaded: Loaded
    manifests: tuple[Manifest, ...]
    notes: tuple[str, ...]
    """Warnings about placeholders used for missing secrets (sandbox only)."""


def desire(request: Request, registry: SchemaRegistry, env: Mapping[str, str]) -> Desired:
    """Everything that needs no server, refused before any connection: the prune scope, invalid
    manifests and missing secrets."""
    if request.options.prune:
        check_prune_scope(request.instance)
    loaded = load(request.instance.roots, registry, variables=load_variables(request.var_files))
    manifests, notes = resolve_secrets(loaded.manifests, env, placeholders=request.placeholders)
    return Desired(loaded, manifests, notes)


@dataclass(frozen=True)
class Planned:
    """A plan against one server, with what the blast-radius limit says of it."""

    observed: Observed
    refused: str | None
    """Why apply would refuse this plan (check_deletions), or None."""
    going: tuple[Change, ...]
    """The changes that delete a model: prunes and replaces that will run."""

    @property
    def plan(self) -> Plan:
        return self.observed.plan


def plan_against(
    client: SpaceClient, desired: Desired, registry: SchemaRegistry, options: PlanOptions, owner: str | None
) -> Planned:
    """Observe the server, plan, and check the blast-radius limit (refusing is apply's to do)."""
    scope = options.scope(owner)
    observed = observe_and_plan(client, desired.manifests, registry, scope=scope)
    selected = sum(1 for m in desired.manifests if scope.selection.selects(m.name, m.dtype, m.tags))
    try:
        options.check(observed.plan, manifest_count=selected)
        refused = None
    except Refused as exc:
        refused = exc.message
    going = deletions(observed.plan, names=frozenset(options.replace), every=options.replace_all)
    return Planned(observed, refused, going)


# -- saved plans: `plan --out FILE`, then `apply FILE` -----------------------------------------


def saved_plan(
    request: Request,
    desired: Desired,
    planned: Planned,
    data: Mapping[str, Any],
    *,
    server: str,
    tenant: str | None,
) -> SavedPlan:
    """The plan to save: its changes, what it was made from, and the options to replay it with."""
    return SavedPlan(
        paths=tuple(str(p) for p in request.instance.roots),
        server=server,
        tenant=tenant,
        options={
            **request.options.as_json(),
            "var_files": [str(p) for p in request.var_files],
            "owner": request.instance.owner,
        },
        fingerprint=state_fingerprint(planned.observed.models),
        digest=manifests_digest(desired.loaded.manifests),
        changes=list(data["changes"]),
    )


def replay_request(
    saved: SavedPlan, *, owner: str | None, config: Path | None, placeholders: bool
) -> Request:
    """The request a saved plan was made with (`apply FILE`); another owner is refused."""
    planned_owner = saved.options.get("owner")
    if owner is not None and owner != planned_owner:
        raise Refused(
            f"the saved plan was made for owner {planned_owner!r}, not {owner!r}; nothing was written"
        )
    instance = resolve_instance(saved.paths, owner=planned_owner, config=config)
    return Request(
        instance,
        PlanOptions.from_json(saved.options),
        tuple(Path(p) for p in saved.options.get("var_files", ())),
        placeholders,
    )


def verify_saved(
    saved: SavedPlan,
    desired: Desired,
    planned: Planned,
    options: PlanOptions,
    *,
    server: str,
    tenant: str | None,
    source: str,
) -> None:
    """Refuse (StalePlan) unless the plan made now is exactly the saved one."""
    changes = redact.scrub_obj(
        render.plan_json(planned.plan, target=server, tenant=tenant, replace_allowed=options.replace_allowed)[
            "changes"
        ]
    )
    saved.check(
        digest=manifests_digest(desired.loaded.manifests),
        fingerprint=state_fingerprint(planned.observed.models),
        changes=changes,
        source=source,
    )
