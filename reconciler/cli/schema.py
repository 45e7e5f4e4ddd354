"""`schema [DTYPE]` and `schema pull`: the manifest schema for editors, and schemas from a server."""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from reconciler import redact
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
    from reconciler import schema_pull as sp

from reconciler.render import JSON_VERSION  # one version for every command's JSON


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
    help="The folder to refresh: <dtype>.json, datasets/<dtype>.json, policies/<type>.json.",
)
@click.option("--dry-run", is_flag=True, help="Only show what would change; write nothing.")
@server_options
@output_option("text", "json")
def schema_pull(schemas_dir: Path, dry_run: bool, output: str, **kw: Any) -> None:
    """Refresh the model, dataset and policy type schemas from the server and show what changed."""
    from reconciler import editor_schema
    from reconciler import schema_pull as sp
    from reconciler.kinds_client import KindsClient

    settings = settings_from(kw)
    if not schemas_dir.is_dir():
        raise ReconcilerError(f"{schemas_dir} is not a folder; create it or pass --schemas-dir")
    existing = {kind: _read_texts(_folder(schemas_dir, kind)) for kind in sp.KINDS}
    with connect(settings) as client:
        kinds = KindsClient(client)
        served: dict[sp.Kind, list[Any] | None] = {
            sp.MODELS: client.list_types(),
            sp.DATASETS: kinds.types_if_served(sp.DATASETS.name),
            sp.POLICIES: kinds.types_if_served(sp.POLICIES.name),
        }
        where = describe_target(client)
    pulled = {
        kind: None if types is None else sp.pull(types, existing[kind], kind)
        for kind, types in served.items()
    }
    editor_path = schemas_dir.joinpath(*editor_schema.EDITOR_SCHEMA_PATH)
    editor_text = _changed(editor_path, _editor_text(existing, pulled))
    if not dry_run:
        _write_updates(schemas_dir, pulled)
        if editor_text is not None:
            _write(editor_path, editor_text)
    report = _Report(pulled, schemas_dir=schemas_dir, where=where, dry_run=dry_run)
    editor = editor_path if editor_text is not None else None
    if output == "json":
        emit_json(report.json(editor))
    else:
        for warning in report.warnings():
            click.echo(warning, err=True)
        click.echo(report.text(editor), nl=False)


def _folder(schemas_dir: Path, kind: sp.Kind) -> Path:
    return schemas_dir / kind.folder if kind.folder else schemas_dir


def _read_texts(directory: Path) -> dict[str, str]:
    """name → text of the folder's *.json files; none for a folder that does not exist yet."""
    texts = {}
    for path in sorted(directory.glob("*.json")):
        try:
            texts[path.stem] = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ReconcilerError(f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}") from exc
    return texts


def _changed(path: Path, text: str | None) -> str | None:
    """`text` if the file does not hold it already, else None."""
    if text is None or (path.is_file() and path.read_text(encoding="utf-8") == text):
        return None
    return text


def _write_updates(schemas_dir: Path, pulled: Mapping[sp.Kind, Sequence[sp.SchemaUpdate] | None]) -> None:
    """Each pulled schema with new text to its kind's folder."""
    for kind, updates in pulled.items():
        for update in updates or ():
            if update.text is not None:
                _write(_folder(schemas_dir, kind) / f"{update.dtype}.json", update.text)


def _write(path: Path, text: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise ReconcilerError(f"cannot write {path}: {exc.strerror or exc}") from exc


def _editor_text(
    existing: Mapping[sp.Kind, dict[str, str]],
    pulled: Mapping[sp.Kind, Sequence[sp.SchemaUpdate] | None],
) -> str | None:
    """The editor schema for the folder as it is after the pull; None if a file there is broken."""
    from reconciler import editor_schema
    from reconciler import schema_pull as sp
    from reconciler.schemas import SchemaRegistry

    registries = {}
    try:
        for kind, texts in existing.items():
            after = {**texts, **{u.dtype: u.text for u in pulled[kind] or () if u.text is not None}}
            registries[kind] = SchemaRegistry({name: json.loads(text) for name, text in after.items()})
    except Exception as exc:  # any broken file: keep the editor schema, say why
        click.echo(
            f"warning: editor schema not regenerated: {type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else ''}",
            err=True,
        )
        return None
    return editor_schema.dumps(
        editor_schema.manifest_schema(
            registries[sp.MODELS], datasets=registries[sp.DATASETS], policies=registries[sp.POLICIES]
        )
    )


_STATUS_WORDS = {
    "new": "new",
    "changed": "changed",
    "unchanged": "unchanged",
    "not_offered": "not offered by the server; kept",
    "skipped": "skipped",
}
_COUNTED = ("new", "changed", "unchanged")


class _Report:
    """What `schema pull` prints: per kind, per type; as text or as the JSON document."""

    def __init__(
        self,
        pulled: Mapping[sp.Kind, Sequence[sp.SchemaUpdate] | None],
        *,
        schemas_dir: Path,
        where: str,
        dry_run: bool,
    ) -> None:
        self.pulled, self.schemas_dir, self.where, self.dry_run = pulled, schemas_dir, where, dry_run

    def _file(self, kind: sp.Kind, update: sp.SchemaUpdate) -> Path | None:
        return _folder(self.schemas_dir, kind) / f"{update.dtype}.json" if update.text is not None else None

    def _missing(self, kind: sp.Kind) -> str:
        where = _folder(self.schemas_dir, kind)
        return f"not pulled: the server answers 404 to GET {kind.route} (it predates {kind.name}); {where} left as it is"

    def json(self, editor: Path | None) -> dict[str, Any]:
        from reconciler import schema_pull as sp

        def item(kind: sp.Kind, u: sp.SchemaUpdate, key: str) -> dict[str, Any]:
            file = self._file(kind, u)
            return {
                key: u.dtype,
                "status": u.status,
                "changes": list(u.lines),
                "file": str(file) if file else None,
                "note": u.note,
            }

        models = self.pulled[sp.MODELS] or ()
        return {
            "version": JSON_VERSION,
            "server": self.where,
            "schemas_dir": str(self.schemas_dir),
            "dry_run": self.dry_run,
            "dtypes": [item(sp.MODELS, u, "dtype") for u in models],  # the model types, as before kinds
            "kinds": {
                kind.name: {
                    "route": kind.route,
                    "folder": str(_folder(self.schemas_dir, kind)),
                    "served": updates is not None,
                    "note": None if updates is not None else self._missing(kind),
                    "types": [item(kind, u, "name") for u in updates or ()],
                }
                for kind, updates in self.pulled.items()
            },
            "editor_schema": str(editor) if editor else None,
            "error": None,
        }

    def warnings(self) -> list[str]:
        """One line per type that could not become a file (stderr)."""
        return [
            redact.neutralise(f"warning: skipped {kind.noun} {u.dtype!r}: {u.note}", line=True)
            for kind, updates in self.pulled.items()
            for u in updates or ()
            if u.status == "skipped"
        ]

    def text(self, editor: Path | None) -> str:
        verb = "would write" if self.dry_run else "wrote"
        lines: list[str] = []
        for kind, updates in self.pulled.items():
            title = f"{kind.noun.capitalize()}s"
            if updates is None:
                lines.append(f"{title}: {self._missing(kind)}")
                continue
            lines.append(f"{title}:" if updates else f"{title}: none offered and none in the folder")
            for update in updates:
                if update.status == "skipped":
                    continue
                line = f"  {update.dtype}: {_STATUS_WORDS[update.status]}"
                if update.note and update.status != "not_offered":
                    line += f" ({update.note})"
                file = self._file(kind, update)
                if file is not None:
                    line += f"; {verb} {file}"
                lines.append(line)
                lines.extend(f"    {change}" for change in update.lines)
        if editor is not None:
            lines.append(f"editor schema: {verb} {editor}")
        lines.append(self._summary())
        return "".join(redact.neutralise(line, line=True) + "\n" for line in lines)

    def _summary(self) -> str:
        served = [(kind, updates) for kind, updates in self.pulled.items() if updates is not None]
        per_kind = [
            f"{sum(1 for u in updates if u.status in _COUNTED)} {kind.noun}(s)" for kind, updates in served
        ]
        counts = {s: sum(1 for _, ups in served for u in ups if u.status == s) for s in _COUNTED}
        summary = (
            f"Pulled {', '.join(per_kind)} from {self.where}: {counts['new']} new, "
            f"{counts['changed']} changed, {counts['unchanged']} unchanged."
        )
        return summary + (" Dry run: nothing was written." if self.dry_run else "")
