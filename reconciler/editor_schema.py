"""The schema files we generate: the manifest schema for editors, and dtype schemas pulled from a server.

The manifest schema (for yaml-language-server) is generated from the registry.

The envelope mirrors `validate.Envelope` and its name/tag rules; `configuration` is the dtype's own
bundled schema, inlined per dtype with `if`/`then`. Secret references stay valid: `${VAR}` is a
string anyway, and a `{file: …}` mapping is allowed wherever the dtype expects a string.
Draft-07, because yaml-language-server validates draft-07 (redhat-developer/yaml-language-server#856).
`schemas/editor/manifest.schema.json` is this output, committed.

`pull()` turns a server's model types into `schemas/<dtype>.json` texts in our conventions and says
what changed per dtype. Pure: the CLI reads and writes the files.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from reconciler.kinds.editor import kind_definitions
from reconciler.model import ModelType
from reconciler.schemas import SchemaRegistry
from reconciler.validate import MAX_NAME

DRAFT_07 = "http://json-schema.org/draft-07/schema#"
EDITOR_SCHEMA_PATH = ("editor", "manifest.schema.json")  # below schemas/

FILE_REFERENCE: dict[str, Any] = {
    "type": "object",
    "description": "A secret read from this file when plan/apply build requests "
    "(relative paths are relative to the manifest).",
    "properties": {"file": {"type": "string", "minLength": 1}},
    "required": ["file"],
    "additionalProperties": False,
}
# A string made only of references, for string fields whose own constraints a ${VAR} would fail.
ENV_REFERENCE: dict[str, Any] = {"type": "string", "pattern": r"\$\{[A-Za-z_][A-Za-z0-9_]*\}"}

# Keywords that describe a field rather than constrain it: they stay on the field so that hovers
# and completions show them, while the constraints move into the `anyOf` branches.
_ANNOTATIONS = ("title", "description", "default", "examples", "writeOnly", "readOnly", "deprecated")
_SUBSCHEMA_MAPS = ("properties", "patternProperties", "definitions", "$defs")
_SUBSCHEMA_LISTS = ("anyOf", "oneOf", "allOf", "prefixItems")
_SUBSCHEMA_ONE = ("items", "additionalProperties", "not", "if", "then", "else", "contains")


def _accepts_string(schema: Mapping[str, Any]) -> bool:
    kind = schema.get("type")
    return kind == "string" or (isinstance(kind, list) and "string" in kind)


def allow_references(schema: Any) -> Any:
    """The schema with a `{file: …}` mapping accepted wherever a string is (any depth)."""
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in _SUBSCHEMA_MAPS and isinstance(value, dict):
            out[key] = {name: allow_references(sub) for name, sub in value.items()}
        elif key in _SUBSCHEMA_LISTS and isinstance(value, list):
            out[key] = [allow_references(sub) for sub in value]
        elif key in _SUBSCHEMA_ONE and isinstance(value, dict):
            out[key] = allow_references(value)
        else:
            out[key] = value
    if not _accepts_string(out):
        return out
    field = {k: v for k, v in out.items() if k in _ANNOTATIONS}
    constraint = {k: v for k, v in out.items() if k not in _ANNOTATIONS}
    branches = [constraint, {"$ref": "#/definitions/fileReference"}]
    if set(constraint) - {"type"}:  # e.g. a pattern or enum: `${VAR}` must still pass
        branches.insert(1, {"$ref": "#/definitions/envReference"})
    return {**field, "anyOf": branches}


def _configuration(dtype_schema: Mapping[str, Any]) -> dict[str, Any]:
    # `$id` inside a subschema would change the base of `#/definitions/…`; `$schema` is the file's.
    content = {k: v for k, v in dtype_schema.items() if k not in ("$schema", "$id")}
    return dict(allow_references(content))


def _envelope(dtypes: list[str]) -> dict[str, Any]:
    dtype: dict[str, Any] = {
        "description": "The model type: one of the bundled schemas/<dtype>.json.",
        "enum": dtypes,
    }
    if len(dtypes) == 1:
        dtype = {"description": dtype["description"], "const": dtypes[0]}
    return {
        "kind": {"description": "Always `Model`.", "const": "Model"},
        "name": {
            "type": "string",
            "description": "The model's name on the server; unique across all manifests.",
            "minLength": 1,
            "maxLength": MAX_NAME,
            # what the server could never address again (validate.check_name)
            "pattern": "^[^/\\u0000-\\u001f\\u007f]*$",
            "not": {"enum": [".", ".."]},
        },
        "dtype": dtype,
        "configuration": {
            "type": "object",
            "description": "Settings checked against the dtype's schema; secrets as ${ENV_VAR} "
            "or {file: PATH}.",
        },
        "summary": {"type": "string", "description": 'Optional, default "".', "default": ""},
        "tags": {
            "description": "A list of tags, or the API's one comma-separated string.",
            "anyOf": [
                {"type": "array", "items": {"type": "string", "pattern": "^[^,]*$"}},
                {"type": "string"},
            ],
            "default": [],
        },
        "lifecycle": {
            "type": "object",
            "description": "What the reconciler may do to this model on its own.",
            "additionalProperties": False,
            "properties": {
                "replace": {
                    "description": "manual: replace (delete + create) only with --replace NAME; allow: a "
                    "plain apply may replace it; never: refuse even --replace.",
                    "enum": ["manual", "allow", "never"],
                    "default": "manual",
                },
            },
        },
    }


def manifest_schema(registry: SchemaRegistry, dtype: str | None = None) -> dict[str, Any]:
    """The JSON Schema of one manifest document: every bundled dtype, or only `dtype`.

    Raises KeyError for a dtype the registry does not know.
    """
    dtypes = list(registry.dtypes) if dtype is None else [dtype]
    definitions: dict[str, Any] = {}
    for name in dtypes:
        found = registry.get(name)
        if found is None:
            raise KeyError(name)
        definitions[name] = _configuration(found.schema)
    title = "Syft Space model manifest" + (f" ({dtype})" if dtype else "")
    schema: dict[str, Any] = {
        "$schema": DRAFT_07,
        "title": title,
        "description": "A manifest of syft-space-reconciler: generated by `syft-reconciler schema`"
        " from schemas/<dtype>.json; do not edit by hand.",
        "type": "object",
        "properties": _envelope(dtypes),
        "required": ["kind", "name", "dtype", "configuration"],
        "additionalProperties": False,
    }
    if dtype is not None:
        # draft-07 ignores the siblings of a `$ref`, hence the `allOf`
        schema["properties"]["configuration"] = {
            **schema["properties"]["configuration"],
            "allOf": [{"$ref": f"#/definitions/{dtype}"}],
        }
    else:
        schema["allOf"] = [
            {
                "if": {"properties": {"dtype": {"const": name}}, "required": ["dtype"]},
                "then": {"properties": {"configuration": {"$ref": f"#/definitions/{name}"}}},
            }
            for name in dtypes
        ]
    schema["definitions"] = {
        **definitions,
        "fileReference": FILE_REFERENCE,
        "envReference": ENV_REFERENCE,
    }
    if dtype is None:
        return _every_kind(schema, dtypes)
    return schema


def _every_kind(model: dict[str, Any], dtypes: list[str]) -> dict[str, Any]:
    """The Model schema as one branch beside Dataset and Endpoint, chosen by `kind`."""
    definitions = model.pop("definitions")
    head = {k: model.pop(k) for k in ("$schema", "title", "description")}
    head["title"] = "Syft Space manifest (Model, Dataset, Endpoint)"
    model["properties"]["kind"] = {"const": "Model"}
    definitions.update(kind_definitions(_envelope(dtypes), _configuration))
    definitions["Model"] = model
    kinds = ("Model", "Dataset", "Endpoint")
    return {
        **head,
        "type": "object",
        "properties": {"kind": {"description": "Model, Dataset or Endpoint.", "enum": list(kinds)}},
        "required": ["kind"],
        "allOf": [
            {
                "if": {"properties": {"kind": {"const": kind}}, "required": ["kind"]},
                "then": {"$ref": f"#/definitions/{kind}"},
            }
            for kind in kinds
        ],
        "definitions": definitions,
    }


def dumps(schema: Mapping[str, Any]) -> str:
    """The committed file's format: 2-space JSON, UTF-8 as is, one trailing newline."""
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


# -- schema pull -----------------------------------------------------------------------------

DRAFT_2020_12 = "https://json-schema.org/draft/2020-12/schema"
ID_BASE = "https://github.com/OpenMined/syft-space-reconciler/schemas/"
# Fields the real server does not mark as secret but that are (the API facts: `api_key` has no marker).
_SECRET_NAME = re.compile(r"(?:^|_)(?:api_?key|password|passwd|secret|token)$", re.IGNORECASE)
_DTYPE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}\Z")


def looks_secret(field: str) -> bool:
    """`api_key`, `password`, `access_token`, `client_secret`…, but not `max_tokens`."""
    return bool(_SECRET_NAME.search(field))


Status = Literal["new", "changed", "unchanged", "not_offered", "skipped"]


@dataclass(frozen=True)
class SchemaUpdate:
    """What pulling did to one dtype: `text` is the file's new content when new or changed."""

    dtype: str
    status: Status
    lines: tuple[str, ...] = ()
    text: str | None = None
    note: str = ""


def _first_paragraph(text: str) -> str:
    return " ".join(text.strip().split("\n\n")[0].split())


def pulled_schema(
    name: str,
    config_schema: Mapping[str, Any],
    *,
    existing: Mapping[str, Any] | None = None,
    description: str = "",
) -> dict[str, Any]:
    """The server's `config_schema` in our conventions, the inverse of `server_config_schema`.

    Ours are kept from the existing file, else made up: `$schema` (2020-12), `$id`, `title`
    (the schema's, else the dtype name), `description` (the schema's, else the type's first
    paragraph); `writeOnly: true` on fields the existing file marked or whose name looks secret;
    `additionalProperties: false` right after `required`, unless the server sets it itself.
    """
    old = existing or {}
    head = {
        "$schema": old.get("$schema", DRAFT_2020_12),
        "$id": old.get("$id", f"{ID_BASE}{name}.json"),
        "title": old.get("title", config_schema.get("title", name)),
        "description": old.get(
            "description",
            config_schema.get("description")
            or _first_paragraph(description)
            or f"The `{name}` model type, as a Syft Space server publishes it.",
        ),
    }
    old_props = old.get("properties", {}) if isinstance(old.get("properties"), dict) else {}
    body: dict[str, Any] = {}
    for key, value in config_schema.items():
        if key in head:
            continue
        if key == "properties" and isinstance(value, dict):
            value = {
                field: {**prop, "writeOnly": True}
                if isinstance(prop, dict)
                and "writeOnly" not in prop
                and (looks_secret(field) or bool(old_props.get(field, {}).get("writeOnly")))
                else prop
                for field, prop in value.items()
            }
        body[key] = value
    if "additionalProperties" not in body:
        keys = list(body)
        anchor = "required" if "required" in body else "properties"
        at = keys.index(anchor) + 1 if anchor in body else len(keys)
        body = {
            **{k: body[k] for k in keys[:at]},
            "additionalProperties": False,
            **{k: body[k] for k in keys[at:]},
        }
    return {**head, **body}


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 60 else text[:57] + "..."


def _describe(prop: Any) -> str:
    if not isinstance(prop, dict):
        return ""
    kind = prop.get("type", "any")
    words = ["/".join(kind) if isinstance(kind, list) else str(kind)]
    if prop.get("writeOnly"):
        words.append("secret")
    return f" ({', '.join(words)})"


def schema_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> tuple[str, ...]:
    """Diff-like lines: `+ field (type)`, `- field`, `~ field.keyword: old → new`, `~ keyword: …`."""
    lines: list[str] = []
    old_props = old.get("properties") if isinstance(old.get("properties"), dict) else {}
    new_props = new.get("properties") if isinstance(new.get("properties"), dict) else {}
    assert isinstance(old_props, dict) and isinstance(new_props, dict)
    for field in new_props:
        if field not in old_props:
            lines.append(f"+ {field}{_describe(new_props[field])}")
    for field in old_props:
        if field not in new_props:
            lines.append(f"- {field}")
    for field in new_props:
        before, after = old_props.get(field), new_props[field]
        if field not in old_props or before == after:
            continue
        if not (isinstance(before, dict) and isinstance(after, dict)):
            lines.append(f"~ {field}: {_short(before)} → {_short(after)}")
            continue
        for key in [*after, *(k for k in before if k not in after)]:
            if before.get(key) != after.get(key):
                lines.append(
                    f"~ {field}.{key}: {_short(before.get(key)) if key in before else '(none)'}"
                    f" → {_short(after.get(key)) if key in after else '(none)'}"
                )
    for key in [*new, *(k for k in old if k not in new)]:
        if key != "properties" and old.get(key) != new.get(key):
            lines.append(
                f"~ {key}: {_short(old[key]) if key in old else '(none)'}"
                f" → {_short(new[key]) if key in new else '(none)'}"
            )
    return tuple(lines)


def _check_type(server_type: ModelType) -> str | None:
    if not _DTYPE_NAME.match(server_type.name) or server_type.name in (".", ".."):
        return "its name cannot be a file name in schemas/"
    if not isinstance(server_type.config_schema, dict):
        return "its config_schema is not a JSON object"
    # imported here, not at the top: every command would pay ~70 ms for it
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import SchemaError

    try:
        Draft202012Validator.check_schema(server_type.config_schema)
    except SchemaError as exc:
        return f"its config_schema is not a valid JSON Schema ({exc.message})"
    return None


def _parse(text: str) -> dict[str, Any] | None:
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def pull(types: Sequence[ModelType], existing: Mapping[str, str]) -> tuple[SchemaUpdate, ...]:
    """Per dtype, sorted: the server's types against the existing `schemas/<dtype>.json` texts.

    Files of dtypes the server does not offer are kept (status `not_offered`): another server
    may offer them, and deleting is a decision for a human.
    """
    updates: list[SchemaUpdate] = []
    offered = set()
    for server_type in sorted(types, key=lambda t: t.name):
        offered.add(server_type.name)
        problem = _check_type(server_type)
        if problem:
            updates.append(SchemaUpdate(server_type.name, "skipped", note=problem))
            continue
        old_text = existing.get(server_type.name)
        old = None if old_text is None else _parse(old_text)
        new = pulled_schema(
            server_type.name, server_type.config_schema, existing=old, description=server_type.description
        )
        note = "" if server_type.enabled else "disabled on the server"
        text = dumps(new)
        if old_text is None:
            props = new.get("properties", {})
            lines = tuple(f"+ {p}{_describe(props[p])}" for p in props)
            updates.append(SchemaUpdate(server_type.name, "new", lines, text, note))
        elif old_text == text:
            updates.append(SchemaUpdate(server_type.name, "unchanged", note=note))
        elif old is None:
            lines = ("~ the existing file is not a JSON object; rewritten from the server",)
            updates.append(SchemaUpdate(server_type.name, "changed", lines, text, note))
        else:
            lines = schema_changes(old, new) or ("~ formatting or key order only",)
            updates.append(SchemaUpdate(server_type.name, "changed", lines, text, note))
    for dtype in sorted(set(existing) - offered):
        updates.append(SchemaUpdate(dtype, "not_offered", note="not offered by the server; kept"))
    return tuple(sorted(updates, key=lambda u: u.dtype))
