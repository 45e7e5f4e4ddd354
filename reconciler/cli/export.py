"""`export`: the server's models as manifests, one file each; secrets become ${…} references."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from reconciler.cli.app import cli
from reconciler.cli.options import (
    bundled_registry,
    connect,
    describe_target,
    emit_json,
    output_option,
    server_options,
    settings_from,
)
from reconciler.cli.spaces import spaces_from, spaces_options
from reconciler.render import JSON_VERSION  # one version for every command's JSON


def _selectors(ctx: click.Context, param: click.Parameter, values: Sequence[str]) -> list[Any]:
    from reconciler.selection import parse_selector

    try:
        return [parse_selector(v) for v in values]
    except ValueError as exc:
        raise click.BadParameter(str(exc), ctx=ctx, param=param) from exc


@cli.command()
@click.option(
    "--output-dir",
    "-d",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("exported"),
    show_default=True,
    help="Folder to write the manifests into.",
)
@click.option(
    "--selector",
    "-l",
    "selectors",
    multiple=True,
    metavar="KEY=GLOB",
    callback=_selectors,
    help="Only objects whose name, dtype or one tag matches, e.g. tag=prod, name='gpt-*'. "
    "Repeat to narrow (all must match).",
)
@click.option("--force", is_flag=True, help="Overwrite files that already exist.")
@server_options
@output_option("text", "json")
@click.option(
    "--config",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A project file with `spaces:`: export each space into OUTPUT_DIR/<space>/.",
)
@spaces_options
def export(output_dir: Path, selectors: list[Any], force: bool, output: str, **kw: Any) -> None:
    """Write the server's models, datasets and endpoints as manifests, one file each; secrets become
    ${…} references."""
    from reconciler.export import exported_counts
    from reconciler.round import export_to

    multi = spaces_from((), kw)
    if multi is not None:
        from reconciler.space_tasks import export_task

        task = export_task(
            multi.run, bundled_registry(), selectors=selectors, output_dir=output_dir, force=force
        )
        return multi.finish("export", output, task)
    kw.pop("config")
    settings = settings_from(kw)
    with connect(settings) as client:
        result, targets = export_to(client, bundled_registry(), selectors, output_dir, force=force)
        where = describe_target(client)
    env = [var for f in result.files for var in f.env]
    notes = [f"skipped {name!r}: {reason}" for name, reason in result.skipped] + list(result.warnings)
    if output == "json":
        emit_json(
            {
                "version": JSON_VERSION,
                "server": where,
                "output_dir": str(output_dir),
                "files": [
                    {"file": str(t), "kind": f.kind, "name": f.name, "dtype": f.dtype, "env": list(f.env)}
                    for t, f in zip(targets, result.files, strict=True)
                ],
                "skipped": [{"name": n, "reason": r} for n, r in result.skipped],
                "env": env,
                "warnings": notes,
                "error": None,
            }
        )
        return
    for note in notes:
        click.echo(f"warning: {note}", err=True)
    for target, exported in zip(targets, result.files, strict=True):
        click.echo(f"wrote {target} ({exported.kind.lower()} {exported.name!r})")
    if not result.files:
        click.echo(
            f"Nothing to export from {where} ({result.matched} of {result.total} matched); "
            "nothing was written."
        )
        return
    summary = (
        f"Exported {exported_counts(result.files)} ({len(result.files)} of {result.total} object(s)) "
        f"from {where} to {output_dir}/."
    )
    if env:
        summary += f" Before plan/apply, set: {', '.join(env)}."
    click.echo(summary)
