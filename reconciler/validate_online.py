"""Manifests against the server they go to (`validate --online`, and every plan): the server's own
list of model types is the authority there, its published config schemas are applied as well as
ours (errors), and where our bundled schemas differ from the server's that is reported as skew
(warnings: run `schema pull`). Offline checks are in validate.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from reconciler import references
from reconciler.errors import InvalidManifests
from reconciler.model import Manifest, Problem
from reconciler.schemas import SchemaRegistry, server_config_schema


def check_types(manifests: Sequence[Manifest], offered: Sequence[str], server: str) -> None:
    """The server's own list of types is the authority for that server (API facts, model types)."""
    available = set(offered)
    problems = [
        Problem(
            m.source.path,
            *m.positions.get("dtype", (m.source.line, m.source.column)),
            "dtype",
            f"the server {server} does not offer dtype `{m.dtype}` (it offers: "
            f"{', '.join(sorted(available)) or 'none'})",
        )
        for m in manifests
        if m.dtype not in available
    ]
    if problems:
        raise InvalidManifests(problems)


def _server_validator(schema: Any) -> Any:
    """A validator for a server's config_schema, or why there is none (a string)."""
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import SchemaError

    if not isinstance(schema, dict):
        return "is not a JSON object"
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        return f"is not valid JSON Schema ({str(exc.message)[:120]})"
    except RecursionError:
        return "nests too deep"
    return Draft202012Validator(schema, format_checker=None)


def check_online(
    manifests: Sequence[Manifest], types: Sequence[Any], registry: SchemaRegistry, server: str
) -> tuple[list[Problem], list[str]]:
    """Manifests against the server's published types (errors), and schema skew (warnings).

    `types` are the server's ModelType values. The server's schemas carry no `additionalProperties`, so
    unknown settings pass there; our bundled schemas (offline validate) still refuse them.
    """
    published = {t.name: t for t in types}
    validators: dict[str, Any] = {}
    problems: list[Problem] = []
    for manifest in manifests:
        problems += _against_the_server(manifest, published, validators, server)
    return problems, schema_skew(published, registry)


def _against_the_server(
    manifest: Manifest, published: dict[str, Any], validators: dict[str, Any], server: str
) -> list[Problem]:
    where = manifest.positions.get("dtype", (manifest.source.line, manifest.source.column))

    def note(message: str, severity: Literal["error", "warning"] = "error") -> Problem:
        return Problem(manifest.source.path, *where, "dtype", message, severity)

    info = published.get(manifest.dtype)
    if info is None:
        offered = ", ".join(sorted(published)) or "none"
        return [note(f"the server {server} does not offer dtype `{manifest.dtype}` (it offers: {offered})")]
    problems = []
    if not info.enabled:
        problems.append(
            note(
                f"dtype `{manifest.dtype}` is disabled on {server} (its provider library is missing there)",
                "warning",
            )
        )
    if manifest.dtype not in validators:
        validators[manifest.dtype] = _server_validator(info.config_schema)
    validator = validators[manifest.dtype]
    if isinstance(validator, str):
        return [
            *problems,
            note(
                f"the server's `{manifest.dtype}` schema {validator}; configuration not checked against it",
                "warning",
            ),
        ]
    config = references.placeholder(dict(manifest.configuration))
    try:
        errors = list(validator.iter_errors(config))
    except Exception as exc:  # a schema check_schema let through (e.g. a regex Python cannot compile)
        return [
            *problems,
            note(
                f"the server's `{manifest.dtype}` schema cannot be applied ({type(exc).__name__}); "
                "configuration not checked against it",
                "warning",
            ),
        ]
    for error in errors:
        path = tuple(str(p) for p in error.absolute_path)
        field = ".".join(("configuration", *path))
        line, column = manifest.positions.get(field, where)
        sensitive = bool(path) and path[0] in manifest.sensitive
        shown = f"invalid ({error.validator})" if sensitive else error.message
        problems.append(
            Problem(
                manifest.source.path,
                line,
                column,
                field,
                f"the server's `{manifest.dtype}` schema says: {shown}",
            )
        )
    return problems


def schema_skew(published: dict[str, Any], registry: SchemaRegistry) -> list[str]:
    """Where a bundled schema differs from the server's published one, per dtype, field by field."""
    skew: list[str] = []
    for name in sorted(published):
        bundled = registry.get(name)
        if bundled is None:
            skew.append(f"the server offers dtype `{name}`, which has no bundled schema (run `schema pull`)")
            continue
        ours = server_config_schema(bundled.schema)
        theirs = published[name].config_schema
        if ours == theirs:
            continue
        if not isinstance(theirs, dict):
            skew.append(f"the server's `{name}` config_schema is not a JSON object; not compared")
            continue
        ours_props, theirs_props = ours.get("properties", {}), theirs.get("properties", {})
        if not isinstance(theirs_props, dict):
            theirs_props = {}
        details = [f"server adds `{k}`" for k in sorted(set(theirs_props) - set(ours_props))]
        details += [f"server lacks `{k}`" for k in sorted(set(ours_props) - set(theirs_props))]
        details += [
            f"`{k}` differs"
            for k in sorted(set(ours_props) & set(theirs_props))
            if ours_props[k] != theirs_props[k]
        ]
        if ours.get("required") != theirs.get("required"):
            details.append(f"required: ours {ours.get('required')}, server {theirs.get('required')}")
        skew.append(
            f"schemas/{name}.json differs from the server's `{name}`: "
            f"{'; '.join(details) or 'other keywords differ'} (run `schema pull`)"
        )
    return skew
