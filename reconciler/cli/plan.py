"""`plan`: what apply would change on the server (read-only); `--out` saves it for `apply FILE`."""

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
    output_option,
    plan_options,
    plan_options_from,
    server_options,
    settings_from,
    var_file_option,
    warn,
)
from reconciler.cli.spaces import spaces_from, spaces_options
from reconciler.cli.terminal import echo
from reconciler.errors import EXIT_CHANGES, EXIT_REFUSED


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path())
@var_file_option
@server_options
@instance_options
@output_option("text", "json", "markdown")
@plan_options
@click.option(
    "--detailed-exitcode",
    is_flag=True,
    help="Exit 2 when changes are pending, 0 when in sync (like Terraform); errors keep their own "
    "codes (1 invalid, 4 unreachable, 5 auth, 64 usage…: README, Exit codes).",
)
@click.option(
    "--verbose",
    "-v",
    is_flag=True,
    help="Every warning in full (repeated ones are otherwise folded into one line).",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Save the plan; `apply FILE` then executes exactly it.",
)
@spaces_options
def plan(
    paths: tuple[str, ...],
    output: str,
    detailed_exitcode: bool,
    out: Path | None,
    verbose: bool,
    var_files: tuple[Path, ...],
    **kw: Any,
) -> None:
    """Show what apply would change on the server (read-only)."""
    from reconciler import round

    options = plan_options_from(kw)
    multi = spaces_from(paths, kw)
    if multi is not None:
        if out is not None and len(multi.specs) != 1:
            raise click.UsageError(
                f"--out saves the plan of one space ({len(multi.specs)} selected): pick it with --space NAME"
            )
        from reconciler.space_tasks import plan_task

        task = plan_task(
            multi.run,
            bundled_registry(),
            options,
            detailed_exitcode=detailed_exitcode,
            markdown=output == "markdown",
            out=out,
        )
        return multi.finish("plan", output, task)
    instance = instance_from(paths, kw)
    settings = settings_from(kw)
    schemas = bundled_registry()
    request = round.Request(instance, options, instance.var_files(var_files), placeholders=settings.sandbox)
    desired = round.desire(request, schemas, os.environ)
    warn(desired.notes, verbose=verbose)
    with connect(settings) as client:
        planned = round.plan_against(client, desired, schemas, options, instance.owner)
        where = describe_target(client)
    whole = planned.whole
    data = render.plan_json(
        whole,
        target=client.base_url,
        tenant=client.tenant,
        replace_allowed=options.replace_allowed,
        warnings=desired.loaded.warnings,
        owner=instance.owner,
        refused=planned.refused,
    )
    if out is not None:
        round.write_saved(request, desired, planned, data, out, server=client.base_url, tenant=client.tenant)
    if output == "json":
        emit_json(data)
    elif output == "markdown":
        click.echo(
            render.plan_markdown(
                whole, target=where, replace_allowed=options.replace_allowed, refused=planned.refused
            )
        )
    else:
        warn(desired.loaded.warnings, verbose=verbose)
        echo(render.space_plan_text(whole, target=where, replace_allowed=options.replace_allowed))
        if planned.refused:
            echo(f"error: apply would refuse this plan: {planned.refused}", err=True)
        if out is not None:
            click.echo(f"Saved the plan to {out}; run `syft-reconciler apply {out}` to execute exactly it.")
    if planned.refused:  # shown whole, then failed: the pull request fails where the merge would
        sys.exit(EXIT_REFUSED)
    if detailed_exitcode and not whole.is_empty:
        sys.exit(EXIT_CHANGES)  # Terraform's -detailed-exitcode: 2 means changes are pending
