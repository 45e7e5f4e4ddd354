"""`schema pull`: a server's model, dataset and policy types as our schema files, and what changed.

Each kind has its folder below schemas/: model types `<dtype>.json`, dataset types
`datasets/<dtype>.json`, policy types `policies/<type>.json`. `pulled_schema()` is the inverse of
what a server publishes (the sandbox's `published_*` functions): our keywords kept from the
existing file, secrets marked `writeOnly`. `pull()` compares one kind's types with the existing
texts of its folder and says per type what changed. Pure: the CLI reads and writes the files.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import unquote

from reconciler.editor_schema import dumps
from reconciler.model import ModelType
from reconciler.tree import DESCEND, FieldPath, nodes, rebuild

DRAFT_2020_12 = "https://json-schema.org/draft/2020-12/schema"
ID_BASE = "https://github.com/OpenMined/syft-space-reconciler/schemas/"
# Fields the real server does not mark as secret but that are (the API facts: `api_key` has no marker).
_SECRET_NAME = re.compile(r"(?:^|_)(?:api_?key|password|passwd|secret|token)$", re.IGNORECASE)
_DTYPE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}\Z")
# Keywords whose values are data, not subschemas: a `$ref` key inside them is no reference.
_DATA_KEYWORDS = ("default", "examples", "const", "enum")
_NAMED_SUBSCHEMAS = ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas")
_KEPT_FROM_FILE = ("$defs", "allOf")


@dataclass(frozen=True)
class Kind:
    """One kind of type a server publishes: `GET /api/v1/<name>/types/`, files in `schemas/<folder>`."""

    name: str  # "models", "datasets", "policies": the route's collection and the JSON report's key
    noun: str  # "model type"
    folder: str  # below schemas/; "" for model types

    @property
    def route(self) -> str:
        return f"/api/v1/{self.name}/types/"


MODELS = Kind("models", "model type", "")
DATASETS = Kind("datasets", "dataset type", "datasets")
POLICIES = Kind("policies", "policy type", "policies")
KINDS = (MODELS, DATASETS, POLICIES)


def looks_secret(field: str) -> bool:
    """`api_key`, `password`, `access_token`, `client_secret`…, but not `max_tokens`."""
    return bool(_SECRET_NAME.search(field))


def _marked_secret(field: str, prop: Mapping[str, Any], old_props: Mapping[str, Any]) -> bool:
    """What we mark `writeOnly`: fields marked so before, named like secrets, or that the server
    itself marks (`"secret": true` on Weaviate's `headers`, `format: password` on WordPress's)."""
    before = old_props.get(field)
    return (
        (isinstance(before, dict) and bool(before.get("writeOnly")))
        or looks_secret(field)
        or prop.get("secret") is True
        or prop.get("format") == "password"
    )


Status = Literal["new", "changed", "unchanged", "not_offered", "skipped"]


@dataclass(frozen=True)
class SchemaUpdate:
    """What pulling did to one type: `text` is the file's new content when new or changed."""

    dtype: str
    status: Status
    lines: tuple[str, ...] = ()
    text: str | None = None
    note: str = ""


def _first_paragraph(text: str) -> str:
    return " ".join(text.strip().split("\n\n")[0].split())


def _resolves(document: Any, ref: str) -> bool:
    """Whether `ref` is local (`#`, `#/$defs/X`, `#anchor`) and resolves inside `document`."""
    if not ref.startswith("#"):
        return False  # another document: never fetched, so it cannot resolve offline
    fragment = unquote(ref[1:])
    if fragment and not fragment.startswith("/"):
        return any(isinstance(n, dict) and n.get("$anchor") == fragment for _, n in nodes(document))
    node = document
    for part in fragment.split("/")[1:]:
        key = part.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and key in node:
            node = node[key]
        elif isinstance(node, list) and key.isdigit() and int(key) < len(node):
            node = node[int(key)]
        else:
            return False
    return True


def without_dangling_refs(schema: Mapping[str, Any]) -> tuple[dict[str, Any], tuple[str, ...]]:
    """The schema with every `$ref` that points nowhere dropped (its siblings stay), and those refs.

    The real server's Weaviate `filters` refers to `#/$defs/…` that its published schema lacks:
    kept, such a schema fails to compile in every validator. Without the `$ref` that part accepts
    any value, which is all the published schema can tell.
    """
    dangling: list[str] = []

    def visit(node: Any, path: FieldPath) -> Any:
        if path and path[-1] in _DATA_KEYWORDS and (len(path) < 2 or path[-2] not in _NAMED_SUBSCHEMAS):
            return node  # a value, not a subschema (but a field may be named `default`)
        ref = node.get("$ref") if isinstance(node, dict) else None
        if isinstance(ref, str) and not _resolves(schema, ref):
            dangling.append(ref)
            return rebuild({k: v for k, v in node.items() if k != "$ref"}, visit, path)
        if isinstance(node, dict) and "anyOf" not in node and _dangles_in(node.get("oneOf")):
            # Emptied, two `oneOf` branches both match anything, so `oneOf` would refuse every
            # value (the real Weaviate `filters`): `anyOf` accepts what either branch could.
            return rebuild({"anyOf" if k == "oneOf" else k: v for k, v in node.items()}, visit, path)
        return DESCEND

    def _dangles_in(branches: Any) -> bool:
        return isinstance(branches, list) and any(
            isinstance(b, dict) and isinstance(b.get("$ref"), str) and not _resolves(schema, b["$ref"])
            for b in branches
        )

    cleaned = rebuild(dict(schema), visit)
    return cleaned, tuple(dict.fromkeys(dangling))


def pulled_schema(
    name: str,
    config_schema: Mapping[str, Any],
    *,
    existing: Mapping[str, Any] | None = None,
    description: str = "",
    kind: Kind = MODELS,
) -> dict[str, Any]:
    """The server's `config_schema` in our conventions, the inverse of what a server publishes.

    Ours are kept from the existing file, else made up: `$schema` (2020-12), `$id`, `title`
    (the schema's, else the type's name), `description` (the schema's, else the type's first
    paragraph); `type: object` when the server leaves it out (dataset and policy types publish
    only `properties` and `required`); `writeOnly: true` on secret fields (`_marked_secret`);
    `additionalProperties: false` right after `required`, unless the server sets it itself or
    names no `properties` (then it would refuse every field).
    """
    old = existing or {}
    head = _head(name, config_schema, old, description, kind)
    old_props = _properties(old)
    body: dict[str, Any] = {} if "type" in config_schema else {"type": "object"}
    for key, value in config_schema.items():
        if key in head:
            continue
        if key == "properties" and isinstance(value, dict):
            value = _secrets_marked(value, old_props)
        body[key] = value
    if "additionalProperties" not in body and isinstance(body.get("properties"), dict):
        body = _closed(body)
    # What the server checks or fills beyond what it publishes, and the definitions its published
    # `$ref`s point to: ours, kept from the existing file (schemas/datasets/, schemas/policies/).
    kept = {k: old[k] for k in _KEPT_FROM_FILE if k in old and k not in body}
    return {**head, **body, **kept}


def _head(
    name: str, config_schema: Mapping[str, Any], old: Mapping[str, Any], description: str, kind: Kind
) -> dict[str, Any]:
    """`$schema`, `$id`, `title` and `description`: the existing file's, else made up."""
    folder = f"{kind.folder}/" if kind.folder else ""
    return {
        "$schema": old.get("$schema", DRAFT_2020_12),
        "$id": old.get("$id", f"{ID_BASE}{folder}{name}.json"),
        "title": old.get("title", config_schema.get("title", name)),
        "description": old.get(
            "description",
            config_schema.get("description")
            or _first_paragraph(description)
            or f"The `{name}` {kind.noun}, as a Syft Space server publishes it.",
        ),
    }


def _properties(schema: Mapping[str, Any]) -> dict[str, Any]:
    """A schema's `properties`, or {} when it has none (or something else under that key)."""
    props = schema.get("properties")
    return props if isinstance(props, dict) else {}


def _secrets_marked(props: dict[str, Any], old_props: Mapping[str, Any]) -> dict[str, Any]:
    """The properties with `writeOnly: true` on each secret field the server did not mark itself."""
    return {
        field: {**prop, "writeOnly": True}
        if isinstance(prop, dict) and "writeOnly" not in prop and _marked_secret(field, prop, old_props)
        else prop
        for field, prop in props.items()
    }


def _closed(body: dict[str, Any]) -> dict[str, Any]:
    """`additionalProperties: false` inserted right after `required`, else after `properties`."""
    keys = list(body)
    at = keys.index("required" if "required" in body else "properties") + 1
    return {
        **{k: body[k] for k in keys[:at]},
        "additionalProperties": False,
        **{k: body[k] for k in keys[at:]},
    }


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


def _secret(prop: Any) -> bool:
    return isinstance(prop, dict) and bool(prop.get("writeOnly"))


def _show(prop: Mapping[str, Any], key: str, hide: bool) -> str:
    if key not in prop:
        return "(none)"
    return "(hidden)" if hide and key in _DATA_KEYWORDS else _short(prop[key])


def schema_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> tuple[str, ...]:
    """Diff-like lines: `+ field (type)`, `- field`, `~ field.keyword: old → new`, `~ keyword: …`.

    The values of a secret field's default, examples, const and enum are not printed: `(hidden)`.
    """
    old_props, new_props = _properties(old), _properties(new)
    lines = [f"+ {field}{_describe(new_props[field])}" for field in new_props if field not in old_props]
    lines += [f"- {field}" for field in old_props if field not in new_props]
    for field in new_props:
        if field in old_props and old_props[field] != new_props[field]:
            lines += _field_changes(field, old_props[field], new_props[field])
    lines += _keyword_changes(old, new)
    return tuple(lines)


def _field_changes(field: str, before: Any, after: Any) -> list[str]:
    """`~ field.keyword: old → new` per keyword that differs; a field that is not a mapping as a whole."""
    if not (isinstance(before, dict) and isinstance(after, dict)):
        return [f"~ {field}: {_short(before)} → {_short(after)}"]
    hide = _secret(before) or _secret(after)
    return [
        f"~ {field}.{key}: {_show(before, key, hide)} → {_show(after, key, hide)}"
        for key in [*after, *(k for k in before if k not in after)]
        if before.get(key) != after.get(key)
    ]


def _keyword_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """`~ keyword: old → new` for each top-level keyword but `properties` that differs."""
    return [
        f"~ {key}: {_short(old[key]) if key in old else '(none)'}"
        f" → {_short(new[key]) if key in new else '(none)'}"
        for key in [*new, *(k for k in old if k not in new)]
        if key != "properties" and old.get(key) != new.get(key)
    ]


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


def _notes(server_type: ModelType, dangling: Sequence[str]) -> str:
    notes = [] if server_type.enabled else ["disabled on the server"]
    if dangling:
        refs = ", ".join(dangling)
        notes.append(f"$ref {refs} not in the server's schema: that part accepts any value")
    return "; ".join(notes)


def _with_file_defs(config_schema: Mapping[str, Any], old: Mapping[str, Any] | None) -> dict[str, Any]:
    """The served schema, its `$ref`s resolved against the existing file's `$defs` when it has none
    itself (the real server publishes refs to definitions it leaves out: Weaviate's `filters`)."""
    if old is None or "$defs" in config_schema or not isinstance(old.get("$defs"), dict):
        return dict(config_schema)
    return {**config_schema, "$defs": old["$defs"]}


def pull(
    types: Sequence[ModelType], existing: Mapping[str, str], kind: Kind = MODELS
) -> tuple[SchemaUpdate, ...]:
    """Per type, sorted: the server's types of one kind against the existing texts of its folder.

    Files of types the server does not offer are kept (status `not_offered`): another server
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
        served, dangling = without_dangling_refs(_with_file_defs(server_type.config_schema, old))
        new = pulled_schema(
            server_type.name, served, existing=old, description=server_type.description, kind=kind
        )
        note = _notes(server_type, dangling)
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
