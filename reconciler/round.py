"""Observe the server and plan: the step that plan, apply and watch share after loading.

Everything that can be refused is refused before the first write: an unknown tenant and a dtype
the target server does not offer here; invalid manifests and missing secrets before (loading.py,
references.py); the blast-radius limit after (plan.check_deletions). Then the executor runs.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reconciler import redact, render
from reconciler.errors import BadSetting, ReconcilerError, Refused, ServerError
from reconciler.export import Export, export
from reconciler.kinds.export import export_endpoints
from reconciler.kinds.plan import Observed as SpaceObserved
from reconciler.kinds.plan import mark_blocked, plan_kinds
from reconciler.kinds.validate import check_policy_types, dataset_registry
from reconciler.kinds.values import EndpointManifest, RemoteDataset
from reconciler.loading import Loaded, load, load_variables
from reconciler.model import (
    ApplyReport,
    Change,
    Manifest,
    Op,
    Outcome,
    Pick,
    Plan,
    Problem,
    RemoteModel,
    SourceLocation,
)
from reconciler.plan import PlanOptions, Scope, deletions
from reconciler.plan import plan as make_plan
from reconciler.project import Instance, check_prune_scope, resolve_instance
from reconciler.references import resolve_secrets
from reconciler.saved_plan import SavedPlan, manifests_digest, state_fingerprint
from reconciler.schemas import SchemaRegistry
from reconciler.selection import Selector, nothing_matches
from reconciler.validate_online import check_online, check_types

if TYPE_CHECKING:  # httpx costs ~100 ms to import; validate never needs it
    from reconciler.apply import Executor
    from reconciler.client import SpaceClient
    from reconciler.kinds_client import KindsClient


@dataclass(frozen=True)
class Observed:
    plan: Plan
    models: Mapping[str, RemoteModel]
    kinds: Plan = field(default_factory=Plan)
    """Datasets, endpoints and policies (empty when neither the manifests nor the plan need them)."""
    space: SpaceObserved | None = None
    offered: tuple[str, ...] | None = None
    """The model types the server offers, when read (the dtype check)."""

    @property
    def whole(self) -> Plan:
        """Every kind's changes: models, then datasets, endpoints and policies."""
        return self.plan + self.kinds


DETAIL_READS = 8
"""Endpoint details read at once while observing."""


def observe_kinds(
    client: SpaceClient,
    datasets: Sequence[Manifest],
    endpoints: Sequence[EndpointManifest],
    models: Mapping[str, RemoteModel],
) -> SpaceObserved:
    """One list of each collection, plus the detail of each endpoint a manifest names that exists
    (its description and its policies' configurations are in no list)."""
    from reconciler.kinds_client import KindsClient

    kinds = KindsClient(client)
    listed = {e.slug: e for e in kinds.list_endpoints()}
    policies = kinds.list_policies()  # a 500 here: orphans (OrphanedPolicies says how to recover)
    endpoints_seen = dict(listed)
    wanted = [e.slug for e in endpoints if e.slug in listed]
    # the details are independent reads: in parallel, like apply's writes (httpx.Client is shared)
    with ThreadPoolExecutor(max_workers=DETAIL_READS, thread_name_prefix="observe") as pool:
        for slug, detail in zip(wanted, pool.map(kinds.get_endpoint, wanted), strict=True):
            if detail is not None:
                endpoints_seen[slug] = detail
    listed_datasets = {d.name: d for d in kinds.list_datasets()}
    # a managed selection is compared whole
    managed = [d.name for d in datasets if d.selected_items is not None]
    datasets_seen = with_selections(kinds, listed_datasets, managed)
    return SpaceObserved(datasets_seen, endpoints_seen, policies, models)


def with_selections(
    kinds: KindsClient, datasets: Mapping[str, RemoteDataset], names: Sequence[str]
) -> dict[str, RemoteDataset]:
    """`datasets` with the whole selection of each one `names` names that the list's three-pick
    preview does not hold whole, read in parallel (observe and export alike)."""
    out = dict(datasets)
    unread = [name for name in names if name in out and out[name].known_selection is None]
    with ThreadPoolExecutor(max_workers=DETAIL_READS, thread_name_prefix="selections") as pool:
        for name, picks in zip(unread, pool.map(kinds.selection, unread), strict=True):
            out[name] = out[name].model_copy(update={"selection": picks})
    return out


def observe_and_plan(
    client: SpaceClient,
    manifests: Sequence[Manifest],
    registry: SchemaRegistry,
    *,
    adopt: bool = False,
    prune: bool = False,
    scope: Scope | None = None,
    check_server_types: bool = True,
    datasets: Sequence[Manifest] = (),
    endpoints: Sequence[EndpointManifest] = (),
    replace_names: frozenset[str] = frozenset(),
    replace_all: bool = False,
    kept: tuple[Mapping[str, RemoteModel], tuple[str, ...] | None] | None = None,
    planner: Callable[..., Plan] = make_plan,
) -> Observed:
    """Verify the tenant and dtypes, read the server's state in one list call, and plan.

    `kept` (the watch daemon's FILES rounds only, watch_cache.py): the models and types a
    previous round read, planned against instead of reading them again; the other kinds are
    read as ever. `planner`: plan.plan, or what plans as it does (watch_cache.ModelPlans)."""
    observed, offered = _read_models(client, manifests, check_server_types=check_server_types, kept=kept)
    scope = scope or Scope(adopt=adopt, prune=prune)
    check_selected(client, scope, [*manifests, *datasets], endpoints, observed)
    the_plan = planner(manifests, observed, facts=registry.facts, scope=scope)
    # datasets, endpoints and policies are read when manifests name some, when a model delete or
    # replace must be guarded, and with --prune: the last dataset or endpoint manifest removed is a
    # prune of what this owner has on the server, not nothing to do
    if not datasets and not endpoints and not _guarded(the_plan) and not scope.prune:
        return Observed(the_plan, observed, offered=offered)
    try:
        space = observe_kinds(client, datasets, endpoints, observed)
    except ServerError as exc:
        # read only to guard or prune: a server without these routes has no datasets or endpoints
        if datasets or endpoints or exc.status not in (404, 405):
            raise
        return Observed(the_plan, observed, offered=offered)
    kinds = plan_kinds(
        datasets,
        endpoints,
        space,
        the_plan,
        scope=scope,
        replace_names=replace_names,
        replace_all=replace_all,
    )
    the_plan, kinds = mark_blocked(the_plan, kinds, space, names=replace_names, every=replace_all)
    return Observed(the_plan, observed, kinds, space, offered)


def _read_models(
    client: SpaceClient,
    manifests: Sequence[Manifest],
    *,
    check_server_types: bool,
    kept: tuple[Mapping[str, RemoteModel], tuple[str, ...] | None] | None,
) -> tuple[Mapping[str, RemoteModel], tuple[str, ...] | None]:
    """(the models by name, the types offered when read): the tenant checked and the dtypes
    checked, then the models listed; what was kept is not read again."""
    if kept is None:
        client.check_tenant()
    offered = kept[1] if kept is not None else None
    if check_server_types and manifests:
        if offered is None:
            offered = tuple(t.name for t in client.list_types())
        check_types(manifests, list(offered), client.base_url)
    observed = kept[0] if kept is not None else {m.name: m for m in client.list_models()}
    return observed, offered


def _guarded(plan: Plan) -> bool:
    """A model delete or replace this run makes: the endpoints that use it must be read."""
    return any(c.op in (Op.DELETE, Op.REPLACE) and c.writes for c in plan.changes)


def check_selected(
    client: SpaceClient,
    scope: Scope,
    manifests: Sequence[Manifest],
    endpoints: Sequence[EndpointManifest],
    models: Mapping[str, RemoteModel],
) -> None:
    """Each --target and -l selects a manifest of some kind or an object on the server, or the run
    stops before planning (BadSetting, exit 64) naming each that does not: a typo must not plan
    nothing and say "No changes". The datasets and endpoints on the server are read only then."""
    selection = scope.selection
    if selection.everything:
        return
    known = [(m.name, m.dtype, m.tags) for m in manifests]
    known += [(e.slug, "endpoint", e.tags) for e in endpoints]
    known += [(m.name, m.dtype, m.user_tags) for m in models.values()]
    if not selection.unmatched(known):
        return
    from reconciler.kinds_client import KindsClient

    kinds = KindsClient(client)
    try:
        known += [(d.name, d.dtype, d.user_tags) for d in kinds.list_datasets()]
        known += [(e.slug, "endpoint", e.user_tags) for e in kinds.list_endpoints()]
    except ServerError as exc:
        if exc.status not in (404, 405):  # a server without these routes has none of them
            raise
    missing = selection.unmatched(known)
    if missing:
        raise BadSetting(nothing_matches(missing))


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
    datasets: tuple[Manifest, ...] = ()
    """With their secrets resolved, like the models."""
    """Warnings about placeholders used for missing secrets (sandbox only)."""


def desire(request: Request, registry: SchemaRegistry, env: Mapping[str, str]) -> Desired:
    """Everything that needs no server, refused before any connection: the prune scope, invalid
    manifests and missing secrets."""
    if request.options.prune:
        check_prune_scope(request.instance)
    loaded = load(request.instance.roots, registry, variables=load_variables(request.var_files))
    manifests, notes = resolve_secrets(loaded.manifests, env, placeholders=request.placeholders)
    datasets, more = resolve_secrets(loaded.datasets, env, placeholders=request.placeholders)
    return Desired(loaded, manifests, notes + more, datasets)


@dataclass(frozen=True)
class Planned:
    """A plan against one server, with what the blast-radius limit says of it."""

    observed: Observed
    refused: str | None
    """Why apply would refuse this plan (check_deletions), or None."""
    going: tuple[Change, ...]
    """The changes that delete an object, every kind: prunes and replaces that will run."""

    @property
    def plan(self) -> Plan:
        """The models' changes (the executor's own part)."""
        return self.observed.plan

    @property
    def whole(self) -> Plan:
        return self.observed.whole


def plan_against(
    client: SpaceClient, desired: Desired, registry: SchemaRegistry, options: PlanOptions, owner: str | None
) -> Planned:
    """Observe the server, plan, and check the blast-radius limit (refusing is apply's to do)."""
    scope = options.scope(owner)
    observed = observe_and_plan(
        client,
        desired.manifests,
        registry,
        scope=scope,
        datasets=desired.datasets,
        endpoints=desired.loaded.endpoints,
        replace_names=frozenset(options.replace),
        replace_all=options.replace_all,
    )
    whole = observed.whole
    selected = selected_count(scope, desired.manifests, desired.datasets, desired.loaded.endpoints)
    try:
        options.check(whole, manifest_count=selected)
        refused = None
    except Refused as exc:
        refused = exc.message
    going = deletions(whole, names=frozenset(options.replace), every=options.replace_all)
    return Planned(observed, refused, going)


@dataclass(frozen=True)
class Applied:
    """What an apply of one space did: its report, the conflicts it left alone, and how it ended."""

    report: ApplyReport
    conflicts: tuple[Change, ...]
    exit_code: int
    stopped: bool
    """Told to stop (a signal, a refused credential, --fail-fast) before it ran out of work."""


def carry_out(
    client: SpaceClient,
    planned: Planned,
    registry: SchemaRegistry,
    options: PlanOptions,
    owner: str | None,
    *,
    parallelism: int,
    retries: int,
    fail_fast: bool,
    on_outcome: Callable[[Outcome], None] | None = None,
    on_stop: Callable[[int], None] | None = None,
    track: Callable[[Executor], AbstractContextManager[Any]] | None = None,
) -> Applied:
    """Apply a plan that passed its guards: the one apply step of `apply`, of each space of many,
    with the executor's safeguards (graph_apply.run_plans). `track` lets a caller stop it."""
    from reconciler.apply import ApplyOptions, Executor, exit_code
    from reconciler.graph_apply import run_plans

    apply_options = ApplyOptions(
        parallelism=parallelism,
        fail_fast=fail_fast,
        replace=frozenset(options.replace),
        max_create_attempts=retries + 1,
        replace_all=options.replace_all,
        facts=registry.facts,
        owner=owner,
    )
    executor = Executor(client, apply_options, on_outcome=on_outcome, on_stop=on_stop)
    with track(executor) if track is not None else contextlib.nullcontext():
        report = run_plans(executor, planned.plan, planned.observed.kinds, planned.observed.space)
    conflicts = planned.whole.conflicts
    code = exit_code(report, conflicts=bool(conflicts), signum=executor.signum)
    return Applied(report, conflicts, code, executor.stop.is_set())


def selected_count(
    scope: Scope,
    models: Sequence[Manifest],
    datasets: Sequence[Manifest],
    endpoints: Sequence[EndpointManifest],
) -> int:
    """How many manifests of every kind the run's selection takes (0: the empty-set guard)."""
    if scope.selection.everything:
        return len(models) + len(datasets) + len(endpoints)
    chosen = sum(1 for m in (*models, *datasets) if scope.selection.selects(m.name, m.dtype, m.tags))
    return chosen + sum(1 for e in endpoints if scope.selection.selects(e.slug, "endpoint", e.tags))


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
        fingerprint=_fingerprint(planned.observed),
        digest=_digest(desired),
        changes=list(data["changes"]),
    )


def write_saved(
    request: Request,
    desired: Desired,
    planned: Planned,
    data: Mapping[str, Any],
    out: Path,
    *,
    server: str,
    tenant: str | None,
    space: str | None = None,
) -> None:
    """`plan --out FILE`: the saved plan, scrubbed, written to `out` (one space's of many names it,
    so that `apply FILE` finds that space's server, tenant and token in the project file)."""
    import json

    saved = saved_plan(request, desired, planned, data, server=server, tenant=tenant)
    if space is not None:
        saved.options["space"] = space
    text = json.dumps(redact.scrub_obj(saved.to_json(dict(data))), indent=2, ensure_ascii=False) + "\n"
    try:  # a path from undecodable file-name bytes: a \udcxx escape, still JSON
        out.write_text(redact.json_safe(text), encoding="utf-8", errors="backslashreplace")
    except OSError as exc:
        raise ReconcilerError(f"cannot write the plan to {out}: {exc.strerror or exc}") from None


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


def plan_bound(
    client: SpaceClient,
    desired: Desired,
    registry: SchemaRegistry,
    options: PlanOptions,
    owner: str | None,
    saved: tuple[SavedPlan, Path] | None,
    *,
    any_server: bool = False,
) -> Planned:
    """The plan an apply carries out: made now; with a saved plan (and its file), bound to the saved
    plan's server and tenant before the first request, then refused as stale unless it is exactly
    the saved one. The one step of `apply` for one space and for each space of many."""
    if saved is not None:
        saved[0].check_target(
            server=client.base_url, tenant=client.tenant, source=str(saved[1]), any_server=any_server
        )
    planned = plan_against(client, desired, registry, options, owner)
    if saved is not None:
        verify_saved(
            saved[0],
            desired,
            planned,
            options,
            server=client.base_url,
            tenant=client.tenant,
            source=str(saved[1]),
        )
    return planned


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
    data = render.plan_json(
        planned.whole, target=server, tenant=tenant, replace_allowed=options.replace_allowed
    )
    changes = redact.scrub_obj(data["changes"])
    saved.check(
        digest=_digest(desired),
        fingerprint=_fingerprint(planned.observed),
        changes=changes,
        source=source,
    )


def _digest(desired: Desired) -> str:
    """The manifests as written, every kind (a models-only set hashes as it always did)."""
    loaded = desired.loaded
    models = manifests_digest(loaded.manifests)
    if not loaded.datasets and not loaded.endpoints:
        return models
    # what the endpoints say, not where they are written (a plan applied from another folder binds)
    written = sorted(repr(dataclasses.replace(e, source=SourceLocation("-"))) for e in loaded.endpoints)
    endpoints = hashlib.sha256(repr(written).encode()).hexdigest()
    return f"{manifests_digest([*loaded.manifests, *loaded.datasets])}:{endpoints}"


def _fingerprint(observed: Observed) -> str:
    """The server state the plan was computed from, every kind that was read."""
    models = state_fingerprint(observed.models)
    space = observed.space
    if space is None or not (space.datasets or space.endpoints or space.policies):
        return models  # nothing else on the server: as a models-only plan always hashed
    parts = [
        sorted(d.model_dump_json() for d in space.datasets.values()),
        sorted(e.model_dump_json() for e in space.endpoints.values()),
        sorted(p.model_dump_json() for p in space.policies),
    ]
    return f"{models}:{hashlib.sha256(repr(parts).encode()).hexdigest()}"


def _selections(kinds: KindsClient, datasets: Sequence[RemoteDataset]) -> dict[str, tuple[Pick, ...]]:
    """Every dataset's picks (with_selections reads what the list's preview does not hold)."""
    read = with_selections(kinds, {d.name: d for d in datasets}, [d.name for d in datasets])
    return {
        name: tuple((p.item_id, p.description) for p in d.known_selection or ()) for name, d in read.items()
    }


def export_space(client: SpaceClient, selectors: Sequence[Selector]) -> Export:
    """Datasets and endpoints (with their policies) as manifests; a server without these routes
    has none."""
    from reconciler.kinds_client import KindsClient

    kinds = KindsClient(client)
    try:
        datasets = kinds.list_datasets()
        listed = kinds.list_endpoints()
    except ServerError as exc:
        if exc.status in (404, 405):
            return Export((), (), (), 0, 0)
        raise
    as_models = [
        RemoteModel(name=d.name, dtype=d.dtype, configuration=d.configuration, summary=d.summary, tags=d.tags)
        for d in datasets
    ]
    data = export(
        as_models,
        dataset_registry(),
        selectors=selectors,
        kind="Dataset",
        selections=_selections(kinds, datasets),
    )
    slugs = [e.slug for e in listed]
    with ThreadPoolExecutor(max_workers=DETAIL_READS, thread_name_prefix="export") as pool:
        details = [d for d in pool.map(kinds.get_endpoint, slugs) if d is not None]
    files, skipped = export_endpoints(details, selectors=selectors)
    return Export(
        data.files + tuple(files),
        data.skipped + tuple(skipped),
        data.warnings,
        data.matched + len(files) + len(skipped),
        data.total + len(listed),
    )


def check_online_space(
    client: SpaceClient, loaded: Loaded, registry: SchemaRegistry
) -> tuple[list[Problem], list[str]]:
    """`validate --online` for one space, every kind: (warnings, schema skew lines); raises
    InvalidManifests (with the offline warnings) when the server's types refuse a manifest. The one
    check of one space and of each space of many."""
    from reconciler.errors import InvalidManifests

    client.check_tenant()
    problems, skew = check_online(loaded.manifests, client.list_types(), registry, client.base_url)
    if loaded.datasets or loaded.endpoints:
        more, more_skew = online_kinds(client, loaded)
        problems += more
        skew += more_skew
    if any(p.severity == "error" for p in problems):
        raise InvalidManifests(problems + list(loaded.warnings))
    return [p for p in problems if p.severity == "warning"], skew


def online_kinds(client: SpaceClient, loaded: Loaded) -> tuple[list[Problem], list[str]]:
    """`validate --online` for datasets (their types and schemas) and policies (their types)."""
    from reconciler.kinds_client import KindsClient

    kinds = KindsClient(client)
    problems: list[Problem] = []
    skew: list[str] = []
    if loaded.datasets:
        problems, skew = check_online(
            loaded.datasets, kinds.dataset_types(), dataset_registry(), client.base_url
        )
    if any(e.policies for e in loaded.endpoints):
        offered = [t.name for t in kinds.policy_types()]
        problems += check_policy_types(loaded.endpoints, offered, client.base_url)
    return problems, skew


def export_to(
    client: SpaceClient, registry: SchemaRegistry, selectors: Sequence[Selector], folder: Path, *, force: bool
) -> tuple[Export, list[Path]]:
    """Every kind on the server as manifest files in `folder`: refused whole (nothing written) when a
    file exists, unless `force`. The one export step for `export` and for each space of many."""
    from reconciler.export import merge

    client.check_tenant()
    result = merge(
        export(client.list_models(), registry, selectors=selectors), export_space(client, selectors)
    )
    targets = [folder / f.file_name for f in result.files]
    taken = [t for t in targets if t.exists() or t.is_symlink()]
    if taken and not force:
        more = f" (and {len(taken) - 1} more)" if len(taken) > 1 else ""
        raise ReconcilerError(
            f"{taken[0]} already exists{more}; pass --force to overwrite (nothing was written)"
        )
    if result.files:
        folder.mkdir(parents=True, exist_ok=True)
    for target, exported in zip(targets, result.files, strict=True):
        target.write_text(exported.text, encoding="utf-8")
    return result, targets
