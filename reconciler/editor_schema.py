"""The manifest schema for editors (yaml-language-server), generated from the schema registries.

The envelope mirrors `validate.Envelope` and its name/tag rules; `configuration` is the dtype's own
bundled schema, inlined per dtype with `if`/`then`. Secret references stay valid: `${VAR}` is a
string anyway, and a `{file: …}` mapping is allowed wherever the dtype expects a string.
Draft-07, because yaml-language-server validates draft-07 (redhat-developer/yaml-language-server#856).
`schemas/editor/manifest.schema.json` is this output, committed; `schema pull` (schema_pull.py)
regenerates it for the folder it refreshed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from reconciler.kinds.editor import kind_definitions
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
    out = {key: _subschemas_allowing_references(key, value) for key, value in schema.items()}
    return _string_or_reference(out) if _accepts_string(out) else out


def _subschemas_allowing_references(key: str, value: Any) -> Any:
    """The value of one keyword, with `allow_references` applied to the subschemas it holds, if any."""
    if key in _SUBSCHEMA_MAPS and isinstance(value, dict):
        return {name: allow_references(sub) for name, sub in value.items()}
    if key in _SUBSCHEMA_LISTS and isinstance(value, list):
        return [allow_references(sub) for sub in value]
    if key in _SUBSCHEMA_ONE and isinstance(value, dict):
        return allow_references(value)
    return value


def _string_or_reference(schema: dict[str, Any]) -> dict[str, Any]:
    """A string field as `anyOf` its constraints or a reference; its annotations stay on the field."""
    field = {k: v for k, v in schema.items() if k in _ANNOTATIONS}
    constraint = {k: v for k, v in schema.items() if k not in _ANNOTATIONS}
    branches = [constraint, {"$ref": "#/definitions/fileReference"}]
    if set(constraint) - {"type"}:  # e.g. a pattern or enum: `${VAR}` must still pass
        branches.insert(1, {"$ref": "#/definitions/envReference"})
    return {**field, "anyOf": branches}


def _inline_defs(node: Any, defs: Mapping[str, Any]) -> Any:
    """`{"$ref": "#/$defs/X"}` replaced by X itself (its siblings kept), at any depth."""
    if isinstance(node, list):
        return [_inline_defs(v, defs) for v in node]
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/") and ref[8:] in defs:
        rest = {k: v for k, v in node.items() if k != "$ref"}
        return _inline_defs({**defs[ref[8:]], **rest}, defs)
    return {k: _inline_defs(v, defs) for k, v in node.items()}


def _configuration(dtype_schema: Mapping[str, Any]) -> dict[str, Any]:
    # `$id` inside a subschema would change the base of `#/definitions/…`; `$schema` is the file's.
    # Inlined here, a `#/$defs/…` would point at the editor schema's root: its definitions go inline.
    content = {k: v for k, v in dtype_schema.items() if k not in ("$schema", "$id", "$defs")}
    return dict(allow_references(_inline_defs(content, dtype_schema.get("$defs") or {})))


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


def manifest_schema(
    registry: SchemaRegistry,
    dtype: str | None = None,
    *,
    datasets: SchemaRegistry | None = None,
    policies: SchemaRegistry | None = None,
) -> dict[str, Any]:
    """The JSON Schema of one manifest document: every bundled dtype, or only `dtype`.

    `datasets` and `policies` default to the bundled ones (a pulled folder passes its own).
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
        return _every_kind(schema, dtypes, datasets, policies)
    return schema


def _every_kind(
    model: dict[str, Any],
    dtypes: list[str],
    datasets: SchemaRegistry | None,
    policies: SchemaRegistry | None,
) -> dict[str, Any]:
    """The Model schema as one branch beside Dataset and Endpoint, chosen by `kind`."""
    definitions = model.pop("definitions")
    head = {k: model.pop(k) for k in ("$schema", "title", "description")}
    head["title"] = "Syft Space manifest (Model, Dataset, Endpoint)"
    model["properties"]["kind"] = {"const": "Model"}
    definitions.update(kind_definitions(_envelope(dtypes), _configuration, datasets, policies))
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
