"""validate, plan and apply: the commands a pull request and a CI job run."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import click

from reconciler import render
from reconciler.cli.app import cli
from reconciler.cli.common import (
    MaxDeleteType,
    bundled_registry,
    connect,
    describe_target,
    emit_json,
    instance_from,
    instance_options,
    lock_for,
    output_option,
    selection_from,
    server_options,
    settings_from,
    state,
    var_file_option,
    warn,
)
from reconciler.errors import (
    EXIT_AUTH,
    EXIT_CONFLICT,
    EXIT_FAILED,
    EXIT_OK,
    InvalidManifests,
)
from reconciler.model import ApplyReport, Op, Outcome, Result


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path())
@var_file_option
@output_option("text", "json")
@click.option("--strict", is_flag=True, help="Treat warnings as errors.")
@click.option("--online", is_flag=True,
              help="Also check dtypes and configuration against the server's published types.")
@server_options
@instance_options
def validate(paths: tuple[str, ...], output: str, strict: bool, online: bool, var_files: tuple[Path, ...],
             **kw: Any) -> None:
    """Check manifests against the dtype schemas: offline by default (no server, no secrets)."""
    from reconciler.loading import load, load_variables
    from reconciler.validate import check_online

    state.output = output
    instance = instance_from(paths, kw)
    schemas = bundled_registry()
    loaded = load(instance.roots, schemas, variables=load_variables(var_files))
    warnings = list(loaded.warnings)
    skew: list[str] = []
    if online:
        settings = settings_from(kw)
        with connect(settings) as client:
            client.check_tenant()
            problems, skew = check_online(loaded.manifests, client.list_types(), schemas, client.base_url)
        warnings += [p for p in problems if p.severity == "warning"]
        if any(p.severity == "error" for p in problems):
            raise InvalidManifests(problems + list(loaded.warnings))
    if strict and warnings:
        raise InvalidManifests(warnings)
    if output == "json":
        emit_json({
            "version": render.JSON_VERSION, "valid": True, "files": loaded.files,
            "models": [m.name for m in loaded.manifests],
            "warnings": [w.as_dict() for w in warnings], "schema_skew": skew, "error": None,
        })
        return
    warn(warnings)
    for line in skew:
        click.echo(f"warning: {line}", err=True)
    where = " (and against the server's types)" if online else ""
    click.echo(f"OK: {len(loaded.manifests)} manifest(s) in {loaded.files} file(s) are valid{where}.")


def plan_options(f: Any) -> Any:
    """The options that change what is planned: shared by plan, apply and watch."""
    for option in reversed([
        click.option("--adopt", is_flag=True,
                     help="Take over same-named models not created by the reconciler (or with the legacy tag)."),
        click.option("--adopt-from", "adopt_from", multiple=True, metavar="OWNER",
                     help="Also take over same-named models of this other owner (repeatable)."),
        click.option("--prune", is_flag=True,
                     help="Delete this owner's models that are no longer in the manifests (needs an owner)."),
        click.option("--replace", "replace", multiple=True, metavar="NAME",
                     help="Recreate this model (delete + create) if its dtype/configuration changed."),
        click.option("--replace-all", is_flag=True,
                     help="Recreate every model whose dtype/configuration changed."),
        click.option("--selector", "-l", "selectors", multiple=True, metavar="KEY=GLOB",
                     help="Act only on models whose name, dtype or a tag matches (name=gpt-*, dtype=openai, "
                     "tag=prod; repeatable, all must match)."),
        click.option("--target", "targets", multiple=True, metavar="NAME",
                     help="Act only on this model (repeatable); nothing else is created, changed or deleted."),
        click.option("--max-delete", type=MaxDeleteType(), default=None,
                     help="Deletions (prune and replace) allowed in one run; default: at most 10 and at "
                     "most half of this owner's models. `unlimited` lifts the limit."),
        click.option("--allow-empty", is_flag=True, help="With --prune: allow an empty manifest set."),
    ]):
        f = option(f)
    return f


PLAN_OPTION_KEYS = ("adopt", "adopt_from", "prune", "replace", "replace_all", "selectors", "targets",
                    "max_delete", "allow_empty")


def plan_options_from(kw: dict[str, Any]) -> Any:
    """The PlanOptions value from the options plan_options added (popped from `kw`)."""
    from reconciler.plan import PlanOptions

    values = {k: kw.pop(k) for k in PLAN_OPTION_KEYS}
    selection_from(values["selectors"], values["targets"])  # a malformed selector is a usage error
    for key in ("adopt_from", "replace", "selectors", "targets"):
        values[key] = tuple(values[key])
    return PlanOptions(**values)


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path())
@var_file_option
@server_options
@instance_options
@output_option("text", "json", "markdown")
@plan_options
@click.option("--detailed-exitcode", is_flag=True,
              help="Exit 0 when in sync, 2 when changes are pending, 1 on error (like Terraform).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="Save the plan; `apply FILE` then executes exactly it.")
def plan(paths: tuple[str, ...], output: str, detailed_exitcode: bool, out: Path | None,
         var_files: tuple[Path, ...], **kw: Any) -> None:
    """Show what apply would change on the server (read-only)."""
    from reconciler.errors import Refused
    from reconciler.loading import load, load_variables
    from reconciler.project import check_prune_scope
    from reconciler.references import resolve_secrets
    from reconciler.round import observe_and_plan
    from reconciler.saved_plan import SavedPlan, manifests_digest, state_fingerprint

    state.output = output
    options = plan_options_from(kw)
    instance = instance_from(paths, kw)
    settings = settings_from(kw)
    if options.prune:
        check_prune_scope(instance)
    schemas = bundled_registry()
    variables = load_variables(var_files)
    loaded = load(instance.roots, schemas, variables=variables)
    manifests, notes = resolve_secrets(loaded.manifests, os.environ, placeholders=settings.sandbox)
    warn(notes)
    scope = options.scope(instance.owner)
    with connect(settings) as client:
        observed = observe_and_plan(client, manifests, schemas, scope=scope)
        where = describe_target(client)
    the_plan = observed.plan
    refused = None
    try:
        options.check(the_plan, manifest_count=_selected(manifests, scope))
    except Refused as exc:
        refused = exc.message
    data = render.plan_json(the_plan, target=client.base_url, tenant=client.tenant,
                            replace_allowed=options.replace_allowed, warnings=loaded.warnings)
    data["owner"] = instance.owner
    data["refused"] = refused
    if out is not None:
        saved = SavedPlan(
            paths=tuple(str(p) for p in instance.roots), server=client.base_url, tenant=client.tenant,
            options={**options.as_json(), "var_files": [str(p) for p in var_files], "owner": instance.owner},
            fingerprint=state_fingerprint(observed.models), digest=manifests_digest(loaded.manifests),
            changes=data["changes"],
        )
        out.write_text(json.dumps(saved.to_json(data), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    if output == "json":
        emit_json(data)
    elif output == "markdown":
        click.echo(render.plan_markdown(the_plan, target=where))
    else:
        warn(loaded.warnings)
        click.echo(render.plan_text(the_plan, target=where, replace_allowed=options.replace_allowed))
        if refused:
            click.echo(f"warning: apply would refuse this plan: {refused}", err=True)
        if out is not None:
            click.echo(f"Saved the plan to {out}; run `syft-reconciler apply {out}` to execute exactly it.")
    if detailed_exitcode and not the_plan.is_empty:
        sys.exit(2)


def _selected(manifests: Any, scope: Any) -> int:
    """How many manifests the run's selection keeps (the empty-set guard counts these)."""
    return sum(1 for m in manifests if scope.selection.selects(m.name, m.dtype, m.tags))


def _saved_plan(paths: tuple[str, ...]) -> tuple[Any, Path] | None:
    """`apply plan.json`: a single existing .json file argument is a saved plan."""
    from reconciler.saved_plan import SavedPlan

    if len(paths) == 1 and paths[0].endswith(".json") and Path(paths[0]).is_file():
        path = Path(paths[0])
        return SavedPlan.from_json(path.read_text(encoding="utf-8"), str(path)), path
    return None


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path())
@var_file_option
@server_options
@instance_options
@output_option("text", "json")
@plan_options
@click.option("--parallelism", "-p", type=click.IntRange(1, 256), default=8, show_default=True,
              help="Requests in flight at once.")
@click.option("--fail-fast", is_flag=True, help="Stop after the first failed model.")
@click.option("--auto-approve", is_flag=True,
              help="Do not ask before deleting or replacing (asked only on a terminal).")
def apply(paths: tuple[str, ...], output: str, parallelism: int, fail_fast: bool, auto_approve: bool,
          var_files: tuple[Path, ...], **kw: Any) -> None:
    """Bring the server in line with the manifests, or execute a saved plan (`apply plan.json`)."""
    from reconciler.apply import ApplyOptions, Executor
    from reconciler.loading import load, load_variables
    from reconciler.plan import PlanOptions, deletions
    from reconciler.project import check_prune_scope
    from reconciler.references import resolve_secrets
    from reconciler.round import observe_and_plan
    from reconciler.saved_plan import manifests_digest, state_fingerprint

    state.output = output
    options = plan_options_from(kw)
    saved = _saved_plan(paths)
    if saved is not None:
        plan_file, plan_path = saved
        if options.any_set or var_files:
            raise click.UsageError(
                "a saved plan carries its own plan options (--adopt, --prune, --replace, --selector, "
                "--max-delete, --var-file, …); give them to `plan`"
            )
        planned_owner = plan_file.options.get("owner")
        if kw.get("owner") is not None and kw["owner"] != planned_owner:
            raise click.UsageError(f"{plan_path} was made for owner {planned_owner!r}, not {kw['owner']!r}")
        paths = plan_file.paths
        options = PlanOptions.from_json(plan_file.options)
        kw["owner"] = planned_owner
        var_files = tuple(Path(p) for p in plan_file.options.get("var_files", ()))
    instance = instance_from(paths, kw)
    settings = settings_from(kw)
    if options.prune:
        check_prune_scope(instance)
    # never beside a watch of the same instance on the same space (applies share the lock)
    click.get_current_context().with_resource(
        lock_for(instance, settings, command="apply", shared=True))
    schemas = bundled_registry()
    loaded = load(instance.roots, schemas, variables=load_variables(var_files))
    manifests, notes = resolve_secrets(loaded.manifests, os.environ, placeholders=settings.sandbox)
    warn(notes)
    apply_options = ApplyOptions(
        parallelism=parallelism, fail_fast=fail_fast, replace=frozenset(options.replace),
        max_create_attempts=settings.retries + 1, replace_all=options.replace_all,
        facts=schemas.facts, owner=instance.owner,
    )
    scope = options.scope(instance.owner)
    with connect(settings, parallelism=parallelism) as client:
        observed = observe_and_plan(client, manifests, schemas, scope=scope)
        the_plan = observed.plan
        if saved is not None:
            if client.base_url != plan_file.server and not settings.sandbox:
                raise click.UsageError(f"{plan_path} was made for {plan_file.server}, not {client.base_url}")
            plan_file.check(
                digest=manifests_digest(loaded.manifests), fingerprint=state_fingerprint(observed.models),
                changes=render.plan_json(the_plan, target=client.base_url, tenant=client.tenant,
                                         replace_allowed=options.replace_allowed)["changes"],
                source=str(plan_path),
            )
        options.check(the_plan, manifest_count=_selected(manifests, scope))
        going = deletions(the_plan, names=frozenset(options.replace), every=options.replace_all)
        if output == "text":
            warn(loaded.warnings)
            click.echo(f"Plan for {describe_target(client)}: {render.summary_line(the_plan)}.")
            if going:
                click.echo(render.deletions_line(going))
        if going and not auto_approve and sys.stdin.isatty():
            click.confirm(f"Delete {len(going)} model(s) from the server ({render.deletion_kinds(going)})?",
                          abort=True, err=True)
        progress = _Progress(len([c for c in the_plan.changes if c.writes]), enabled=output == "text")
        executor = Executor(client, apply_options, on_outcome=progress.outcome)
        report = executor.run(the_plan)
        progress.done()
    conflicts = [c for c in the_plan.changes if c.op is Op.CONFLICT]
    if output == "json":
        data = render.report_json(report, target=client.base_url, tenant=client.tenant)
        data["conflicts"] = [render.change_dict(c) for c in conflicts]
        data["owner"] = instance.owner
        emit_json(data)
    else:
        for change in conflicts:
            click.echo(f"conflict {change.name}: {change.reason}")
        click.echo(render.report_summary(report))
    sys.exit(_apply_exit(report, conflicts=bool(conflicts)))


def _apply_exit(report: ApplyReport, *, conflicts: bool) -> int:
    if report.interrupted:
        return 130
    failed = [o for o in report.outcomes if not o.ok]
    if not failed and not conflicts:
        return EXIT_OK
    if any(o.error_kind == "auth" for o in failed):
        return EXIT_AUTH
    if (conflicts or failed) and all(o.result is Result.CONFLICT for o in failed):
        return EXIT_CONFLICT
    return EXIT_FAILED


class _Progress:
    """One line per model on stdout; on a terminal also a counter on stderr."""

    def __init__(self, total: int, *, enabled: bool) -> None:
        self.total = total
        self.seen = 0
        self.enabled = enabled
        self.tty = enabled and sys.stderr.isatty() and total >= 20

    def outcome(self, outcome: Outcome) -> None:
        self.seen += 1
        if not self.enabled:
            return
        if self.tty:
            click.echo("\r\033[K", nl=False, err=True)
        click.echo(render.outcome_line(outcome))
        if self.tty:
            click.echo(f"[{self.seen}/{self.total}]", nl=False, err=True)

    def done(self) -> None:
        if self.tty:
            click.echo("\r\033[K", nl=False, err=True)


