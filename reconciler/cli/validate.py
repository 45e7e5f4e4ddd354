"""`validate`: manifests against the dtype schemas, offline by default (no server, no secrets)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from reconciler import render
from reconciler.cli.app import cli
from reconciler.cli.options import (
    bundled_registry,
    connect,
    emit_json,
    instance_from,
    instance_options,
    output_option,
    server_options,
    settings_from,
    var_file_option,
    warn,
)
from reconciler.cli.spaces import spaces_from, spaces_options
from reconciler.errors import InvalidManifests

if TYPE_CHECKING:
    from reconciler.loading import Loaded
    from reconciler.model import Problem
    from reconciler.schemas import SchemaRegistry


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path())
@var_file_option
@output_option("text", "json")
@click.option("--strict", is_flag=True, help="Treat warnings as errors.")
@click.option(
    "--verbose",
    "-v",
    is_flag=True,
    help="Every warning in full (repeated ones are otherwise folded into one line).",
)
@click.option(
    "--online", is_flag=True, help="Also check dtypes and configuration against the server's published types."
)
@server_options
@instance_options
@spaces_options
def validate(
    paths: tuple[str, ...],
    output: str,
    strict: bool,
    verbose: bool,
    online: bool,
    var_files: tuple[Path, ...],
    **kw: Any,
) -> None:
    """Check manifests against the dtype schemas: offline by default (no server, no secrets)."""
    from reconciler.loading import load, load_variables

    multi = spaces_from(paths, kw)
    if multi is not None:
        from reconciler.space_tasks import validate_task

        task = validate_task(multi.run, bundled_registry(), online=online, strict=strict)
        return multi.finish("validate", output, task)
    instance = instance_from(paths, kw)
    schemas = bundled_registry()
    loaded = load(instance.roots, schemas, variables=load_variables(instance.var_files(var_files)))
    warnings = list(loaded.warnings)
    skew: list[str] = []
    if online:
        online_warnings, skew = _check_online(loaded, schemas, kw)
        warnings += online_warnings
    if strict and warnings:
        raise InvalidManifests(warnings)
    if output == "json":
        emit_json(_json_result(loaded, warnings, skew))
        return
    warn(warnings, verbose=verbose)
    for line in skew:
        click.echo(f"warning: {line}", err=True)
    where = " (and against the server's types)" if online else ""
    click.echo(f"OK: {loaded.count} manifest(s) in {loaded.files} file(s) are valid{where}.")


def _check_online(
    loaded: Loaded, schemas: SchemaRegistry, kw: dict[str, Any]
) -> tuple[list[Problem], list[str]]:
    """(warnings, schema skew lines) from checking every kind against the server's published
    types; InvalidManifests (with the offline warnings) if that finds an error."""
    from reconciler.round import check_online_space

    with connect(settings_from(kw)) as client:
        return check_online_space(client, loaded, schemas)


def _json_result(loaded: Loaded, warnings: list[Problem], skew: list[str]) -> dict[str, Any]:
    """`validate --output json` for a valid set."""
    return {"version": render.JSON_VERSION, **loaded.valid_json(warnings, skew), "error": None}
