"""`schema [DTYPE]` and `schema pull`: the manifest schema for editors, and schemas from a server."""

from __future__ import annotations

import difflib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

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
from reconciler.errors import ReconcilerError

if TYPE_CHECKING:  # imported inside the commands: every other command would pay for it
    from reconciler import editor_schema

JSON_VERSION = 1


class _SchemaGroup(click.Group):
    """`schema pull` is the action; any other word is a dtype whose manifest schema is printed."""

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        found = super().get_command(ctx, cmd_name)
        if found is not None:
            return found
        return click.Command(
            cmd_name,
            callback=lambda: _print_schema(cmd_name),
            help=f"Print the manifest schema for dtype `{cmd_name}`.",
        )


def _print_schema(dtype: str | None) -> None:
    from reconciler import editor_schema

    registry = bundled_registry()
    try:
        schema = editor_schema.manifest_schema(registry, dtype)
    except KeyError:
        assert dtype is not None
        close = difflib.get_close_matches(dtype, registry.dtypes, n=1)
        hint = f"; did you mean `{close[0]}`?" if close else ""
        raise ReconcilerError(
            f"unknown dtype `{dtype}`{hint} (known: {', '.join(registry.dtypes)})"
        ) from None
    click.echo(editor_schema.dumps(schema), nl=False)


@cli.group(cls=_SchemaGroup, invoke_without_command=True, subcommand_metavar="[DTYPE | pull [OPTIONS]]")
@click.option("--dtype", metavar="DTYPE", help="Same as the DTYPE argument; use it for a dtype named `pull`.")
@click.pass_context
def schema(ctx: click.Context, dtype: str | None) -> None:
    """Print the JSON Schema of manifests (all dtypes, or one), or `pull` schemas from a server.

    The printed schema is what schemas/editor/manifest.schema.json holds; point
    yaml-language-server at it with `# yaml-language-server: $schema=PATH`.
    """
    if ctx.invoked_subcommand is None:
        _print_schema(dtype)
    elif dtype is not None:
        raise click.UsageError("give the dtype either as --dtype or as the argument, not both")


@schema.command("pull")
@click.option(
    "--schemas-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("schemas"),
    show_default=True,
    help="The folder of <dtype>.json files to refresh.",
)
@click.option("--dry-run", is_flag=True, help="Only show what would change; write nothing.")
@server_options
@output_option("text", "json")
def schema_pull(schemas_dir: Path, dry_run: bool, output: str, **kw: Any) -> None:
    """Refresh schemas/<dtype>.json from the server's model types and show what changed."""
    from reconciler import editor_schema

    settings = settings_from(kw)
    if not schemas_dir.is_dir():
        raise ReconcilerError(f"{schemas_dir} is not a folder; create it or pass --schemas-dir")
    existing = _read_texts(schemas_dir)
    with connect(settings) as client:
        types = client.list_types()
        where = describe_target(client)
    updates = editor_schema.pull(types, existing)
    editor_path = schemas_dir.joinpath(*editor_schema.EDITOR_SCHEMA_PATH)
    editor_text = _editor_text(existing, updates)
    editor_changed = editor_text is not None and (
        not editor_path.is_file() or editor_path.read_text(encoding="utf-8") != editor_text
    )
    if not dry_run:
        for update in updates:
            if update.text is not None:
                (schemas_dir / f"{update.dtype}.json").write_text(update.text, encoding="utf-8")
        if editor_changed and editor_text is not None:
            editor_path.parent.mkdir(parents=True, exist_ok=True)
            editor_path.write_text(editor_text, encoding="utf-8")
    _report_pull(
        updates,
        schemas_dir=schemas_dir,
        where=where,
        dry_run=dry_run,
        output=output,
        editor=editor_path if editor_changed else None,
    )


def _read_texts(directory: Path) -> dict[str, str]:
    texts = {}
    for path in sorted(directory.glob("*.json")):
        try:
            texts[path.stem] = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ReconcilerError(f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}") from exc
    return texts


def _editor_text(existing: dict[str, str], updates: Sequence[editor_schema.SchemaUpdate]) -> str | None:
    """The editor schema for the folder as it is after the pull; None if a file there is broken."""
    from reconciler import editor_schema
    from reconciler.schemas import SchemaRegistry

    texts = {**existing, **{u.dtype: u.text for u in updates if u.text is not None}}
    try:
        registry = SchemaRegistry({dtype: json.loads(text) for dtype, text in texts.items()})
    except Exception as exc:  # any broken file: keep the editor schema, say why
        click.echo(
            f"warning: editor schema not regenerated: {type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else ''}",
            err=True,
        )
        return None
    return editor_schema.dumps(editor_schema.manifest_schema(registry))


_STATUS_WORDS = {
    "new": "new",
    "changed": "changed",
    "unchanged": "unchanged",
    "not_offered": "not offered by the server; kept",
    "skipped": "skipped",
}


def _report_pull(
    updates: Sequence[editor_schema.SchemaUpdate],
    *,
    schemas_dir: Path,
    where: str,
    dry_run: bool,
    output: str,
    editor: Path | None,
) -> None:
    verb = "would write" if dry_run else "wrote"
    if output == "json":
        emit_json(
            {
                "version": JSON_VERSION,
                "server": where,
                "schemas_dir": str(schemas_dir),
                "dry_run": dry_run,
                "dtypes": [
                    {
                        "dtype": u.dtype,
                        "status": u.status,
                        "changes": list(u.lines),
                        "file": str(schemas_dir / f"{u.dtype}.json") if u.text is not None else None,
                        "note": u.note,
                    }
                    for u in updates
                ],
                "editor_schema": str(editor) if editor else None,
                "error": None,
            }
        )
        return
    for update in updates:
        if update.status == "skipped":
            click.echo(f"warning: skipped model type {update.dtype!r}: {update.note}", err=True)
            continue
        line = f"{update.dtype}: {_STATUS_WORDS[update.status]}"
        if update.note and update.status != "not_offered":
            line += f" ({update.note})"
        if update.text is not None:
            line += f"; {verb} {schemas_dir / (update.dtype + '.json')}"
        click.echo(line)
        for change in update.lines:
            click.echo(f"  {change}")
    if editor is not None:
        click.echo(f"editor schema: {verb} {editor}")
    counts = {s: sum(1 for u in updates if u.status == s) for s in ("new", "changed", "unchanged")}
    offered = counts["new"] + counts["changed"] + counts["unchanged"]
    summary = (
        f"Pulled {offered} model type(s) from {where}: {counts['new']} new, "
        f"{counts['changed']} changed, {counts['unchanged']} unchanged."
    )
    if dry_run:
        summary += " Dry run: nothing was written."
    click.echo(summary)
