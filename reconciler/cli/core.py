"""validate, plan and apply: the commands a pull request and a CI job run."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from reconciler import redact, render
from reconciler.cli.app import cli
from reconciler.cli.common import (
    bundled_registry,
    connect,
    describe_target,
    emit_json,
    output_option,
    paths_or_default,
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
    ReconcilerError,
)
from reconciler.model import ApplyReport, Outcome, Result


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path())
@var_file_option
@output_option("text", "json")
@click.option("--strict", is_flag=True, help="Treat warnings as errors.")
@click.option("--online", is_flag=True,
              help="Also check dtypes and configuration against the server's published types.")
@server_options
def validate(paths: tuple[str, ...], output: str, strict: bool, online: bool, var_files: tuple[Path, ...],
             **kw: Any) -> None:
    """Check manifests against the dtype schemas: offline by default (no server, no secrets)."""
    from reconciler.reconcile import check_online, load, load_variables

    state.output = output
    schemas = bundled_registry()
    loaded = load(paths_or_default(paths), schemas, variables=load_variables(var_files))
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
    """The options that change what is planned: shared by plan and apply (and watch)."""
    for option in reversed([
        click.option("--adopt", is_flag=True,
                     help="Take over same-named models not created by the reconciler."),
        click.option("--prune", is_flag=True,
                     help="Delete models we created that are no longer in the manifests."),
        click.option("--replace", "replace", multiple=True, metavar="NAME",
                     help="Recreate this model (delete + create) if its dtype/configuration changed."),
        click.option("--replace-all", is_flag=True,
                     help="Recreate every model whose dtype/configuration changed."),
    ]):
        f = option(f)
    return f


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path())
@var_file_option
@server_options
@output_option("text", "json", "markdown")
@plan_options
@click.option("--detailed-exitcode", is_flag=True,
              help="Exit 0 when in sync, 2 when changes are pending, 1 on error (like Terraform).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="Save the plan; `apply FILE` then executes exactly it.")
def plan(paths: tuple[str, ...], output: str, detailed_exitcode: bool, out: Path | None, adopt: bool,
         prune: bool, replace: tuple[str, ...], replace_all: bool, var_files: tuple[Path, ...],
         **kw: Any) -> None:
    """Show what apply would change on the server (read-only)."""
    from reconciler.reconcile import load, load_variables, observe_and_plan, resolve_secrets
    from reconciler.saved_plan import SavedPlan, manifests_digest, state_fingerprint

    state.output = output
    settings = settings_from(kw)
    schemas = bundled_registry()
    roots = paths_or_default(paths)
    variables = load_variables(var_files)
    loaded = load(roots, schemas, variables=variables)
    manifests, notes = resolve_secrets(loaded, placeholders=settings.sandbox)
    warn(notes)
    with connect(settings) as client:
        observed = observe_and_plan(client, manifests, schemas, adopt=adopt, prune=prune)
        where = describe_target(client)
    the_plan = observed.plan
    allowed = True if replace_all else frozenset(replace)
    data = render.plan_json(the_plan, target=client.base_url, tenant=client.tenant,
                            replace_allowed=allowed, warnings=loaded.warnings)
    if out is not None:
        saved = SavedPlan(
            paths=tuple(str(p) for p in roots), server=client.base_url, tenant=client.tenant,
            options={"adopt": adopt, "prune": prune, "replace": sorted(replace), "replace_all": replace_all,
                     "var_files": [str(p) for p in var_files]},
            fingerprint=state_fingerprint(observed.models), digest=manifests_digest(loaded.manifests),
            changes=data["changes"],
        )
        text = json.dumps(redact.scrub_obj(saved.to_json(data)), indent=2, ensure_ascii=False) + "\n"
        try:  # a path from undecodable file-name bytes: a \udcxx escape, still JSON
            out.write_text(redact.json_safe(text), encoding="utf-8", errors="backslashreplace")
        except OSError as exc:
            raise ReconcilerError(f"cannot write the plan to {out}: {exc.strerror or exc}") from None
    if output == "json":
        emit_json(data)
    elif output == "markdown":
        click.echo(render.plan_markdown(the_plan, target=where))
    else:
        warn(loaded.warnings)
        click.echo(render.plan_text(the_plan, target=where, replace_allowed=allowed))
        if out is not None:
            click.echo(f"Saved the plan to {out}; run `syft-reconciler apply {out}` to execute exactly it.")
    if detailed_exitcode and not the_plan.is_empty:
        sys.exit(2)


def _saved_plan(paths: tuple[str, ...]) -> tuple[Any, Path] | None:
    """`apply plan.json`: a single existing .json file argument is a saved plan."""
    from reconciler.saved_plan import SavedPlan

    if len(paths) == 1 and paths[0].endswith(".json") and Path(paths[0]).is_file():
        path = Path(paths[0])
        return SavedPlan.load(path), path
    return None


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path())
@var_file_option
@server_options
@output_option("text", "json")
@plan_options
@click.option("--parallelism", "-p", type=click.IntRange(1, 256), default=8, show_default=True,
              help="Requests in flight at once.")
@click.option("--fail-fast", is_flag=True, help="Stop after the first failed model.")
@click.option("--max-delete", type=click.IntRange(0), default=None,
              help="With --prune: refuse to delete more than N models.")
@click.option("--allow-empty", is_flag=True, help="With --prune: allow an empty manifest set.")
@click.option("--auto-approve", is_flag=True, help="Do not ask before deleting (asked only on a terminal).")
def apply(paths: tuple[str, ...], output: str, parallelism: int, fail_fast: bool, adopt: bool, prune: bool,
          replace: tuple[str, ...], replace_all: bool, max_delete: int | None, allow_empty: bool,
          auto_approve: bool, var_files: tuple[Path, ...], **kw: Any) -> None:
    """Bring the server in line with the manifests, or execute a saved plan (`apply plan.json`)."""
    from reconciler.apply import ApplyOptions, Executor
    from reconciler.lock import folder_lock
    from reconciler.reconcile import (
        check_prune,
        load,
        load_variables,
        observe_and_plan,
        registry_facts,
        resolve_secrets,
    )
    from reconciler.saved_plan import manifests_digest, state_fingerprint

    state.output = output
    settings = settings_from(kw)
    saved = _saved_plan(paths)
    if saved is not None:
        if adopt or prune or replace or replace_all or var_files:
            raise click.UsageError(
                "a saved plan carries its own --adopt/--prune/--replace/--var-file; give them to `plan`"
            )
        plan_file, plan_path = saved
        paths = plan_file.paths
        adopt, prune = plan_file.options["adopt"], plan_file.options["prune"]
        replace, replace_all = tuple(plan_file.options["replace"]), plan_file.options["replace_all"]
        var_files = tuple(Path(p) for p in plan_file.options.get("var_files", ()))
    # never beside a watch on the same folder (applies share the lock); held until the end
    lock = folder_lock(paths_or_default(paths), command="apply", shared=True)
    click.get_current_context().with_resource(lock)
    schemas = bundled_registry()
    loaded = load(paths_or_default(paths), schemas, variables=load_variables(var_files))
    manifests, notes = resolve_secrets(loaded, placeholders=settings.sandbox)
    warn(notes)
    secrets, defaults = registry_facts(schemas)
    options = ApplyOptions(parallelism=parallelism, fail_fast=fail_fast, replace=frozenset(replace),
                           max_create_attempts=settings.retries + 1,
                           replace_all=replace_all, secret_fields=secrets, defaults=defaults)
    with connect(settings, parallelism=parallelism) as client:
        if saved is not None:  # before the first request: the plan may be for another server
            plan_file.check_target(server=client.base_url, tenant=client.tenant, source=str(plan_path),
                                   any_server=settings.sandbox)
        observed = observe_and_plan(client, manifests, schemas, adopt=adopt, prune=prune)
        the_plan = observed.plan
        if saved is not None:
            allowed = True if replace_all else frozenset(replace)
            plan_file.check(
                digest=manifests_digest(loaded.manifests), fingerprint=state_fingerprint(observed.models),
                changes=redact.scrub_obj(render.plan_json(the_plan, target=client.base_url, tenant=client.tenant,
                                                          replace_allowed=allowed)["changes"]),
                source=str(plan_path),
            )
        check_prune(the_plan, manifest_count=len(manifests), max_delete=max_delete, allow_empty=allow_empty)
        if output == "text":
            warn(loaded.warnings)
            click.echo(f"Plan for {describe_target(client)}: {render.summary_line(the_plan)}.")
        if the_plan.deletes:
            names = ", ".join(c.name for c in the_plan.deletes)
            if output == "text":
                click.echo(f"  DELETIONS ({len(the_plan.deletes)}): {names}")
            if not auto_approve and sys.stdin.isatty():
                click.confirm(f"Delete {len(the_plan.deletes)} model(s) from the server?", abort=True, err=True)
        progress = _Progress(len([c for c in the_plan.changes if c.writes]), enabled=output == "text")
        executor = Executor(client, options, on_outcome=progress.outcome)
        report = executor.run(the_plan)
        progress.done()
    conflicts = [c for c in the_plan.changes if c.op.value == "conflict"]
    if output == "json":
        data = render.report_json(report, target=client.base_url, tenant=client.tenant)
        data["conflicts"] = [render.change_dict(c) for c in conflicts]
        emit_json(data)
    else:
        for change in conflicts:
            click.echo(f"conflict {change.name}: {change.reason}")
        click.echo(render.report_summary(report))
    sys.exit(_apply_exit(report, conflicts=bool(conflicts), signum=executor.signum))


def _apply_exit(report: ApplyReport, *, conflicts: bool, signum: int | None = None) -> int:
    if report.interrupted:
        return 128 + (signum or 2)  # 130 after Ctrl-C, 143 after SIGTERM
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


