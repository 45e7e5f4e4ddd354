"""`apply`: bring the server in line with the manifests, or execute a saved plan (`apply plan.json`)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import click

from reconciler import render
from reconciler.cli.app import cli
from reconciler.cli.options import (
    bundled_registry,
    connect,
    describe_target,
    emit_json,
    instance_from,
    instance_options,
    is_saved_plan,
    lock_for,
    output_option,
    plan_options,
    plan_options_from,
    server_options,
    settings_from,
    var_file_option,
    warn,
)
from reconciler.cli.spaces import MultiSpace, spaces_from, spaces_options
from reconciler.cli.terminal import ApplyProgress, echo
from reconciler.errors import BadSetting, Refused
from reconciler.model import Change


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path())
@var_file_option
@server_options
@instance_options
@output_option("text", "json")
@plan_options
@click.option(
    "--parallelism",
    "-p",
    type=click.IntRange(1, 256),
    default=8,
    show_default=True,
    help="Requests in flight at once.",
)
@click.option("--fail-fast", is_flag=True, help="Stop after the first failed write.")
@click.option(
    "--auto-approve", is_flag=True, help="Do not ask before deleting or replacing (asked only on a terminal)."
)
@click.option(
    "--quiet", "-q", is_flag=True, help="Print only problems (failed or conflicting objects) and the summary."
)
@click.option(
    "--verbose",
    "-v",
    is_flag=True,
    help=f"The whole plan however large (over {render.COMPACT_OVER} changes it is shown in short), and a "
    "line for every object, and every warning in full (repeated ones are otherwise folded).",
)
@spaces_options
def apply(
    paths: tuple[str, ...],
    output: str,
    parallelism: int,
    fail_fast: bool,
    auto_approve: bool,
    quiet: bool,
    verbose: bool,
    var_files: tuple[Path, ...],
    **kw: Any,
) -> None:
    """Bring the server in line with the manifests, or execute a saved plan (`apply plan.json`)."""
    from reconciler import round

    options = plan_options_from(kw)
    saved = _saved_plan(paths)
    multi = _spaces(paths, saved, kw, parallelism=parallelism)
    if multi is not None:
        if saved is not None and (options.any_set or var_files):
            raise click.UsageError(
                "a saved plan carries its own plan options (--adopt, --prune, --replace, --selector, "
                "--max-delete, --var-file, …); give them to `plan`"
            )
        from reconciler.space_tasks import apply_task
        from reconciler.spaces import Interrupt

        may_delete = auto_approve or not sys.stdin.isatty()
        stop = Interrupt()
        task = apply_task(
            multi.run,
            bundled_registry(),
            options,
            fail_fast=fail_fast,
            may_delete=may_delete,
            interrupt=stop,
            quiet=quiet,
            verbose=verbose,
            saved=saved,
        )
        return multi.finish("apply", output, task, stop)
    settings = settings_from(kw)  # leaves --owner and --config in kw
    request = _request(paths, saved, options, var_files, kw, settings)
    options, instance = request.options, request.instance
    # never beside a watch of the same instance on the same space (applies share the lock)
    click.get_current_context().with_resource(lock_for(instance, settings, command="apply", shared=True))
    schemas = bundled_registry()
    desired = round.desire(request, schemas, os.environ)
    warn(desired.notes, verbose=verbose)
    with connect(settings, parallelism=parallelism) as client:
        planned = round.plan_bound(
            client, desired, schemas, options, instance.owner, saved, any_server=settings.sandbox
        )
        if planned.refused:
            raise Refused(planned.refused)
        whole = planned.whole
        compact = not verbose and render.listed_count(whole) > render.COMPACT_OVER
        if output == "text":
            warn(desired.loaded.warnings, verbose=verbose)
            if not quiet:  # the plan it is about to carry out, as `plan` shows it
                target = describe_target(client)
                allowed = options.replace_allowed
                echo(render.space_plan_text(whole, target=target, replace_allowed=allowed, compact=compact))
        _confirm(planned.going, auto_approve=auto_approve)
        writes = sum(1 for c in whole.changes if c.writes)
        progress = ApplyProgress(
            writes, enabled=output == "text", quiet=quiet, verbose=verbose, changes=not compact
        )
        try:
            applied = round.carry_out(
                client,
                planned,
                schemas,
                options,
                instance.owner,
                parallelism=parallelism,
                retries=settings.retries,
                fail_fast=fail_fast,
                on_outcome=progress.outcome,
                on_stop=progress.stopping,
            )
        finally:
            progress.done()
    _report(output, applied, target=client.base_url, tenant=client.tenant, owner=instance.owner)
    sys.exit(applied.exit_code)


def _request(
    paths: tuple[str, ...],
    saved: tuple[Any, Path] | None,
    options: Any,
    var_files: tuple[Path, ...],
    kw: dict[str, Any],
    settings: Any,
) -> Any:
    """What to apply: the manifests with these options, or what a saved plan was made with."""
    from reconciler import round

    if saved is None:
        instance = instance_from(paths, kw)
        return round.Request(instance, options, instance.var_files(var_files), placeholders=settings.sandbox)
    if options.any_set or var_files:
        raise click.UsageError(
            "a saved plan carries its own plan options (--adopt, --prune, --replace, --selector, "
            "--max-delete, --var-file, …); give them to `plan`"
        )
    return round.replay_request(
        saved[0], owner=kw["owner"], config=kw["config"], placeholders=settings.sandbox
    )


def _report(output: str, applied: Any, *, target: str, tenant: str | None, owner: str | None) -> None:
    """After the writes: every kind's conflicts, then the summary (or one JSON document)."""
    if output == "json":
        emit_json(
            render.apply_json(applied.report, applied.conflicts, target=target, tenant=tenant, owner=owner)
        )
        return
    for line in render.conflict_lines(applied.conflicts):
        echo(line)
    echo(render.report_summary(applied.report, conflicts=len(applied.conflicts)))


def _spaces(
    paths: tuple[str, ...], saved: tuple[Any, Path] | None, kw: dict[str, Any], *, parallelism: int
) -> MultiSpace | None:
    """The multi-space run: of the project's spaces, or of the one space a saved plan names
    (`plan --space NAME --out FILE`); None for one space (a saved plan of a server and tenant)."""
    space = saved[0].options.get("space") if saved is not None else None
    if space is None:
        return spaces_from(paths, kw, parallelism=parallelism, one_space=saved is not None)
    kw["space_globs"] = (space,)
    multi = spaces_from((), kw, parallelism=parallelism)
    if multi is None:
        raise click.UsageError(
            f"{saved[1] if saved else ''} is the plan of space `{space}`: run apply where its project file is, "
            "or name it with --config"
        )
    return multi


def _saved_plan(paths: tuple[str, ...]) -> tuple[Any, Path] | None:
    """`apply plan.json`: a single existing .json file argument is a saved plan, and so is a single
    file that `plan --out` wrote under any name; a single .json that does not exist is a missing
    saved plan (exit 64), not a manifest folder."""
    from reconciler.saved_plan import SavedPlan

    if len(paths) != 1:
        return None  # a saved plan among manifests: refused with the manifests (instance_from)
    path = Path(paths[0])
    if path.suffix == ".json" and not path.exists() and not path.is_symlink():
        raise BadSetting(f"{path}: no such saved plan (make one with syft-reconciler plan --out {path})")
    if (path.suffix == ".json" and path.is_file()) or is_saved_plan(path):
        return SavedPlan.load(path), path
    return None


def _confirm(going: tuple[Change, ...], *, auto_approve: bool) -> None:
    """On a terminal, deletions (prune and replace, every kind) are asked for; CI has no terminal."""
    if going and not auto_approve and sys.stdin.isatty():
        click.confirm(f"Delete {render.deletion_kinds(going)} from the server?", abort=True, err=True)
