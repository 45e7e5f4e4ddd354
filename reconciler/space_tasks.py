"""The commands over many spaces, one space each: validate, plan, apply and export as tasks for
`spaces.run_each`. Each reuses the one-space steps (loading, round, the executor, export) and
fills a SpaceResult instead of printing; `Run` is what the spaces of one run share.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reconciler import render
from reconciler.client import SpaceClient
from reconciler.errors import EXIT_CHANGES, EXIT_REFUSED, Refused
from reconciler.project import Instance, Project, SpaceSpec
from reconciler.spaces import Connection, Interrupt, SpaceResult, Task, connect, instance_for, lock_of


@dataclass(frozen=True)
class Run:
    """What every space of one multi-space run shares."""

    project: Project
    connection: Connection
    owner: str | None = None
    """--owner: wins over the spaces' and the project's owner."""
    env: Mapping[str, str] = field(default_factory=lambda: os.environ)

    def instance(self, spec: SpaceSpec) -> Instance:
        return instance_for(spec, self.project, owner=self.owner)

    def connect(self, spec: SpaceSpec, **kw: Any) -> SpaceClient:
        return connect(spec, self.connection, self.env, folder=self.project.folder, **kw)


def validate_task(run: Run, registry: Any, *, online: bool, strict: bool) -> Task:
    from reconciler.errors import InvalidManifests
    from reconciler.loading import load, load_variables
    from reconciler.round import check_online_space

    def task(spec: SpaceSpec, result: SpaceResult) -> None:
        loaded = load(run.instance(spec).roots, registry, variables=load_variables(spec.var_files))
        warnings = list(loaded.warnings)
        skew: list[str] = []
        if online:  # every kind, as one space checks it
            with run.connect(spec) as client:
                online_warnings, skew = check_online_space(client, loaded, registry)
            warnings += online_warnings
        if strict and warnings:
            raise InvalidManifests(warnings)
        result.data = loaded.valid_json(warnings, skew)
        result.notes += [str(w) for w in warnings] + [f"warning: {line}" for line in skew]
        where = " (and against the server's types)" if online else ""
        result.lines.append(f"OK: {loaded.count} manifest(s) in {loaded.files} file(s) are valid{where}.")

    return task


def plan_task(
    run: Run,
    registry: Any,
    options: Any,
    *,
    detailed_exitcode: bool,
    markdown: bool = False,
    out: Path | None = None,
) -> Task:
    from reconciler import round

    def task(spec: SpaceSpec, result: SpaceResult) -> None:
        instance = run.instance(spec)
        request = round.Request(instance, options, spec.var_files)
        desired = round.desire(request, registry, run.env)
        with run.connect(spec) as client:
            planned = round.plan_against(client, desired, registry, options, instance.owner)
        whole = planned.whole
        result.data = render.plan_json(  # as single-space plan shows it
            whole,
            target=client.base_url,
            tenant=client.tenant,
            replace_allowed=options.replace_allowed,
            warnings=desired.loaded.warnings,
            owner=instance.owner,
            refused=planned.refused,
        )
        result.notes += render.fold_warnings(desired.loaded.warnings)
        if out is not None:  # `apply FILE` finds the space by its name in the project file
            round.write_saved(
                request,
                desired,
                planned,
                result.data,
                out,
                server=client.base_url,
                tenant=client.tenant,
                space=spec.name,
            )
            result.notes.append(
                f"Saved the plan to {out}; run `syft-reconciler apply {out}` to execute exactly it."
            )
        where = client.base_url + (f" (tenant {client.tenant})" if client.tenant else "")
        allowed = options.replace_allowed
        shown = (
            render.plan_markdown(whole, target=where, replace_allowed=allowed, refused=planned.refused)
            if markdown
            else render.space_plan_text(whole, target=where, replace_allowed=allowed)
        )
        result.lines += shown.splitlines()
        if planned.refused:  # shown whole, then failed, as one space's plan does
            result.notes.append(f"error: apply would refuse this plan: {planned.refused}")
            result.exit_code = EXIT_REFUSED
        elif detailed_exitcode and not whole.is_empty:
            result.exit_code = EXIT_CHANGES  # Terraform's -detailed-exitcode: changes are pending

    return task


def apply_task(
    run: Run,
    registry: Any,
    options: Any,
    *,
    fail_fast: bool,
    may_delete: bool,
    interrupt: Interrupt | None = None,
    quiet: bool = False,
    verbose: bool = False,
    saved: tuple[Any, Path] | None = None,
) -> Task:
    """`apply` per space; with `saved` (a plan file of one space, `plan --space NAME --out FILE`),
    exactly that plan or nothing, as one space's `apply FILE` does."""
    from reconciler import round

    def task(spec: SpaceSpec, result: SpaceResult) -> None:
        instance = run.instance(spec)
        request = _apply_request(instance, spec, options, saved)
        options_now = request.options
        with lock_of(spec, run.project, command="apply", shared=True):
            desired = round.desire(request, registry, run.env)
            with run.connect(spec) as client:
                planned = round.plan_bound(client, desired, registry, options_now, instance.owner, saved)
                if planned.refused:
                    raise Refused(planned.refused)
                if planned.going and not may_delete:
                    raise Refused(
                        f"deletions planned: {render.deletion_kinds(planned.going)}; "
                        "over many spaces nobody is asked: pass --auto-approve; nothing was written"
                    )
                applied = round.carry_out(
                    client,
                    planned,
                    registry,
                    options_now,
                    instance.owner,
                    parallelism=run.connection.parallelism,
                    retries=run.connection.retries,
                    fail_fast=fail_fast,
                    track=interrupt.track if interrupt else None,
                )
        where = client.base_url + (f" (tenant {client.tenant})" if client.tenant else "")
        result.data = render.apply_json(
            applied.report,
            applied.conflicts,
            target=client.base_url,
            tenant=client.tenant,
            owner=instance.owner,
        )
        result.notes += render.fold_warnings(desired.loaded.warnings, verbose=verbose)
        result.lines += _applied_lines(
            applied, planned.whole, where, options_now, quiet=quiet, verbose=verbose
        )
        result.exit_code = applied.exit_code
        if interrupt is not None and interrupt.signum is not None and applied.stopped:
            # told to stop (perhaps before its run began, which resets `interrupted`)
            result.exit_code = 128 + interrupt.signum

    return task


def _apply_request(instance: Instance, spec: SpaceSpec, options: Any, saved: tuple[Any, Path] | None) -> Any:
    """What to apply in this space: the manifests with these options, or what its saved plan was
    made with (another owner's plan is refused)."""
    from reconciler import round
    from reconciler.plan import PlanOptions

    if saved is None:
        return round.Request(instance, options, spec.var_files)
    plan_file = saved[0]
    planned_owner = plan_file.options.get("owner")
    if planned_owner != instance.owner:
        raise Refused(
            f"the saved plan was made for owner {planned_owner!r}, not {instance.owner!r}; nothing was written"
        )
    var_files = tuple(Path(p) for p in plan_file.options.get("var_files", ()))
    return round.Request(instance, PlanOptions.from_json(plan_file.options), var_files)


def _applied_lines(
    applied: Any, whole: Any, where: str, options: Any, *, quiet: bool, verbose: bool
) -> list[str]:
    """What a single-space apply prints, as lines: the plan it carried out, the per-object lines
    render.outcome_listed picks, the conflicts and the summary."""
    compact = not verbose and render.listed_count(whole) > render.COMPACT_OVER
    lines: list[str] = []
    if not quiet:
        text = render.space_plan_text(
            whole, target=where, replace_allowed=options.replace_allowed, compact=compact
        )
        lines += text.splitlines()
    report = applied.report
    listed = [
        o
        for o in report.outcomes
        if render.outcome_listed(o, quiet=quiet, verbose=verbose, changes=not compact)
    ]
    lines += [render.outcome_line(o) for o in listed]
    lines += render.conflict_lines(applied.conflicts)
    lines.append(render.report_summary(report, conflicts=len(applied.conflicts)))
    return lines


def export_task(run: Run, registry: Any, *, selectors: Sequence[Any], output_dir: Path, force: bool) -> Task:
    """`export` per space, every kind: into OUTPUT_DIR/<space name>/."""
    from reconciler.export import exported_counts
    from reconciler.round import export_to

    def task(spec: SpaceSpec, result: SpaceResult) -> None:
        folder = output_dir / spec.name
        with run.connect(spec) as client:
            exported, targets = export_to(client, registry, selectors, folder, force=force)
        env_vars = [var for f in exported.files for var in f.env]
        notes = [f"skipped {n!r}: {r}" for n, r in exported.skipped] + list(exported.warnings)
        result.data = {
            "output_dir": str(folder),
            "files": [
                {"file": str(t), "kind": f.kind, "name": f.name, "dtype": f.dtype, "env": list(f.env)}
                for t, f in zip(targets, exported.files, strict=True)
            ],
            "skipped": [{"name": n, "reason": r} for n, r in exported.skipped],
            "env": env_vars,
            "warnings": notes,
        }
        result.notes += [f"warning: {n}" for n in notes]
        result.lines += [
            f"wrote {t} ({f.kind.lower()} {f.name!r})" for t, f in zip(targets, exported.files, strict=True)
        ]
        result.lines.append(
            f"Exported {exported_counts(exported.files)} ({len(exported.files)} of {exported.total} object(s)) "
            f"to {folder}/." + (f" Before plan/apply, set: {', '.join(env_vars)}." if env_vars else "")
        )

    return task
