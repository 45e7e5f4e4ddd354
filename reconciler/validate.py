"""Documents + schema registry → manifests, or every problem at once (pure).

The envelope is checked by pydantic, `configuration` by the dtype's JSON Schema, names for what the
server can address again (../shared/syft-space-api.md, "No validation of names"), and names for
uniqueness across the whole set. Messages never quote a value of a sensitive field.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from reconciler import redact, references
from reconciler.kinds.validate import check_set, dataset_registry, validate_endpoint
from reconciler.kinds.values import EndpointManifest
from reconciler.manifests import Document
from reconciler.model import Manifest, Problem, SourceLocation, normalise_tags
from reconciler.ownership import is_ownership_tag
from reconciler.schemas import DtypeSchema, SchemaRegistry

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
MAX_NAME = 255  # the server takes longer names; URLs and UIs do not all cope
ENVELOPE_FIELDS = ("kind", "name", "dtype", "configuration", "summary", "tags", "lifecycle", "selected_items")
LIFECYCLE_FIELDS = ("replace",)
PICK_FIELDS = ("item_id", "description")


class Lifecycle(BaseModel):
    """`lifecycle:` what the reconciler may do to the model on its own (README, "Replace")."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    replace: Literal["manual", "allow", "never"] = "manual"


class PickIn(BaseModel):
    """One item of a dataset's `selected_items`, the create body's shape."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    item_id: str
    description: str | None = None


class Envelope(BaseModel):
    """The manifest's top level: the API's create body plus `kind`."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    kind: Literal["Model", "Dataset"]
    name: str
    dtype: str
    configuration: dict[str, Any]
    summary: str = ""
    tags: list[str] | str = []
    lifecycle: Lifecycle = Lifecycle()
    selected_items: list[PickIn] | None = None


_TYPE_NAMES = {
    str: "a string",
    int: "an integer",
    float: "a number",
    bool: "a boolean",
    list: "a list",
    dict: "a mapping",
    type(None): "null",
}


_SCHEMA_TYPES = {
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "a boolean",
    "array": "a list",
    "object": "a mapping",
    "null": "null",
}


def _type_name(value: Any) -> str:
    return _TYPE_NAMES.get(type(value), type(value).__name__)


def _suggest(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f"; did you mean `{close[0]}`?" if close else ""


def _envelope_message(error: Any, doc: Document) -> tuple[tuple[str | int, ...], str, bool]:
    loc = tuple(error["loc"])
    kind = error["type"]
    field = str(loc[0]) if loc else ""
    if kind == "extra_forbidden":
        return loc, _unknown_field_message(loc, field, doc.value.get("kind")), True
    if kind == "missing":
        hint = " — add `kind: Model`" if field == "kind" else ""
        return loc, f"required field is missing{hint}", False
    if kind == "literal_error" and field == "kind":
        return loc, _kind_message(doc.value.get("kind")), False
    if kind == "literal_error":
        return loc, f"must be one of {error['ctx']['expected']}, got {error['input']!r}"[:200], False
    value = _value_at(doc.value, loc)
    if field == "tags":
        return (
            loc[:2] if len(loc) > 1 and isinstance(loc[1], int) else loc[:1],
            (f"must be a list of strings or one comma-separated string, got {_type_name(value)}"),
            False,
        )
    expected = _ENVELOPE_TYPES.get(kind, error["msg"].lower())
    return loc, f"must be {expected}, got {_type_name(value)}", False


_ENVELOPE_TYPES = {
    "string_type": "a string",
    "dict_type": "a mapping of settings",
    "list_type": "a list",
    "model_type": "a mapping (item_id, description)",
}


def _unknown_field_message(loc: tuple[str | int, ...], field: str, kind: Any) -> str:
    """A field the envelope (or its `lifecycle:`) does not have, with the closest one it has."""
    if field == "lifecycle" and len(loc) > 1:
        return (
            f"unknown setting{_suggest(str(loc[1]), LIFECYCLE_FIELDS)} (lifecycle has: "
            f"{', '.join(LIFECYCLE_FIELDS)})"
        )
    if field == "selected_items" and len(loc) > 2:
        return f"unknown field{_suggest(str(loc[2]), PICK_FIELDS)} (a pick has: {', '.join(PICK_FIELDS)})"
    fields = ENVELOPE_FIELDS if kind == "Dataset" else ENVELOPE_FIELDS[:-1]  # picks: a dataset's only
    what = "a dataset" if kind == "Dataset" else "a manifest"
    return f"unknown field{_suggest(field, fields)} ({what} has: {', '.join(fields)})"


def _kind_message(got: Any) -> str:
    """A `kind:` that is none of ours; one that differs only in case says so."""
    close = next(
        (k for k in ("Model", "Dataset", "Endpoint") if isinstance(got, str) and got.lower() == k.lower()),
        None,
    )
    hint = f"; did you mean `{close}`? (kinds are case-sensitive)" if close else ""
    return f"must be `Model`, `Dataset` or `Endpoint`, got {got!r}"[:200] + hint


def _value_at(value: Any, loc: tuple[str | int, ...]) -> Any:
    """The value at a pydantic error's loc, as far as it leads into the document."""
    for part in loc:  # pydantic puts union member names (`list[str]`) into loc: stop at those
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and isinstance(part, int) and part < len(value):
            value = value[part]
        else:
            break
    return value


_BOUNDS = {
    "minimum": "at least",
    "maximum": "at most",
    "exclusiveMinimum": "more than",
    "exclusiveMaximum": "less than",
}


def _schema_message(error: Any, *, sensitive: bool) -> tuple[tuple[str | int, ...], str, bool]:
    path = tuple(error.absolute_path)
    rule = error.validator
    instance = error.instance
    shown = "(sensitive)" if sensitive else repr(instance)
    if rule == "additionalProperties":
        known = sorted(error.schema.get("properties", {}))
        extra = _first_extra(instance, known)
        return (*path, extra), (f"unknown setting{_suggest(extra, known)} (known: {', '.join(known)})"), True
    if rule == "required":
        missing = error.message.split("'")[1] if "'" in error.message else "?"
        return (*path, missing), "required setting is missing", False
    if rule == "type":
        return path, f"must be {_type_names(error.validator_value)}, got {_type_name(instance)}", False
    if rule in _BOUNDS:
        return path, f"must be {_BOUNDS[rule]} {error.validator_value}, got {shown}", False
    if rule == "enum":
        options = ", ".join(repr(v) for v in error.validator_value)
        return path, f"must be one of {options}, got {shown}", False
    if sensitive:
        return path, f"invalid value ({rule})", False
    return path, error.message, False


def _first_extra(instance: Any, known: list[str]) -> str:
    """The first key of a mapping that the schema does not know; `?` if none can be named."""
    extras = [k for k in instance if k not in known] if isinstance(instance, dict) else []
    return extras[0] if extras else "?"


def _type_names(expected: str | list[str]) -> str:
    """A schema's `type` (one name or a list) in words: `a string or null`."""
    names = [_SCHEMA_TYPES.get(t, t) for t in ([expected] if isinstance(expected, str) else expected)]
    return " or ".join(names)


def check_name(name: str) -> tuple[str, Literal["error", "warning"]] | None:
    """Names the server accepts but can never address again are refused (API facts, names)."""
    if name == "":
        return "must not be empty (the server could never read, patch or delete it)", "error"
    if "/" in name:
        return "must not contain `/` (the server could never read, patch or delete it)", "error"
    if name in (".", ".."):
        return "must not be `.` or `..` (URL paths cannot address it)", "error"
    bad = redact.UNSAFE.search(name) or _CONTROL.search(name)
    if bad:
        return (
            f"must not contain control, bidi or line-separator characters (U+{ord(bad.group(0)):04X} at "
            f"position {bad.start() + 1}): a terminal or a review would show another name"
        ), "error"
    if any("\ud800" <= c <= "\udfff" for c in name):
        return "is not valid Unicode text (a lone surrogate)", "error"
    invisible = next((c for c in name if c != "\u200d" and unicodedata.category(c) == "Cf"), None)
    if invisible is not None:  # zero-width space, soft hyphen, BOM…: `a\u200bb` would pass for `ab`
        return (
            f"must not contain invisible format characters (U+{ord(invisible):04X}): it would "
            "look like another name"
        ), "error"
    if len(name) > MAX_NAME:
        return f"is {len(name)} characters long; keep names at most {MAX_NAME}", "error"
    if name != name.strip():
        return (
            "has leading or trailing spaces; the server keeps them, so `a` and ` a` are two models",
            "warning",
        )
    return None


def validate(documents: Sequence[Document], registry: SchemaRegistry) -> tuple[list[Manifest], list[Problem]]:
    """Every Model document as a Manifest (references unresolved), and every problem found."""
    space, problems = validate_space(documents, registry)
    return space.models, problems


@dataclass(frozen=True)
class Space:
    """The manifests of every kind, validated (references unresolved)."""

    models: list[Manifest] = field(default_factory=list)
    datasets: list[Manifest] = field(default_factory=list)
    endpoints: list[EndpointManifest] = field(default_factory=list)


Checked = tuple[Document, "Manifest | EndpointManifest | None", tuple[Problem, ...]]
"""One document validated on its own: the document, what it is (None when invalid), its problems."""


def check_document(doc: Document, registry: SchemaRegistry) -> Checked:
    """One document of any kind, on its own: the part of validate_space a cache may keep per file."""
    if isinstance(doc.value, dict) and doc.value.get("kind") == "Endpoint":
        endpoint, endpoint_problems = validate_endpoint(doc)
        return doc, endpoint, tuple(endpoint_problems)
    manifest, doc_problems = _validate_one(doc, registry)
    return doc, manifest, tuple(doc_problems)


def validate_space(documents: Sequence[Document], registry: SchemaRegistry) -> tuple[Space, list[Problem]]:
    """Every document of every kind, and every problem found (names unique per kind)."""
    return assemble(check_document(doc, registry) for doc in documents)


def assemble(checked: Iterable[Checked]) -> tuple[Space, list[Problem]]:
    """Documents checked one by one (check_document) as one space: names unique per kind, and
    the endpoints' checks across the set."""
    space = Space()
    problems: list[Problem] = []
    first_seen: dict[tuple[str, str], Manifest] = {}
    for doc, item, doc_problems in checked:
        problems.extend(doc_problems)
        if item is None:
            continue
        if isinstance(item, EndpointManifest):
            space.endpoints.append(item)
            continue
        if (item.kind, item.name) in first_seen:
            other = first_seen[(item.kind, item.name)]
            line, column = doc.where(("name",))
            problems.append(
                Problem(
                    doc.path,
                    line,
                    column,
                    "name",
                    f"`{item.name}` is also defined at {other.source}; names must be unique",
                )
            )
            continue
        first_seen[(item.kind, item.name)] = item
        (space.datasets if item.kind == "Dataset" else space.models).append(item)
    problems.extend(check_set([], space.endpoints, []))
    return space, problems


def _problem(
    doc: Document,
    path: tuple[str | int, ...],
    message: str,
    *,
    key: bool = False,
    severity: Literal["error", "warning"] = "error",
) -> Problem:
    line, column = doc.where(path, key=key)
    return Problem(doc.path, line, column, ".".join(str(p) for p in path), message, severity)


def _unknown_settings(doc: Document, error: Any) -> list[Problem]:
    """One problem per key the schema does not know, each with its own suggestion."""
    known = sorted(error.schema.get("properties", {}))
    base = tuple(error.absolute_path)
    return [
        _problem(
            doc,
            ("configuration", *base, extra),
            f"unknown setting{_suggest(extra, known)} (known: {', '.join(known)})",
            key=True,
        )
        for extra in error.instance
        if extra not in known
    ]


def _check_configuration(
    doc: Document, raw: dict[str, Any], schema: DtypeSchema
) -> tuple[dict[str, Any], frozenset[str], list[Problem]]:
    """References parsed, the dtype schema applied, literal secrets flagged; never quoting a secret."""
    configuration, ref_problems = references.scan(raw, ("configuration",))
    problems = [_problem(doc, path, message) for path, message in ref_problems]
    secret_fields = schema.secret_fields
    sensitive = frozenset(k for k, v in configuration.items() if k in secret_fields or references.has_ref(v))
    problems += _schema_problems(doc, configuration, schema, sensitive)
    malformed = {path[1] for path, _ in ref_problems if len(path) > 1}  # a bad ${…} is reported as that
    problems += _literal_secrets(doc, configuration, sorted(secret_fields - malformed))
    return configuration, sensitive, problems


def _schema_problems(
    doc: Document, configuration: dict[Any, Any], schema: DtypeSchema, sensitive: frozenset[str]
) -> list[Problem]:
    """The dtype schema's complaints about a configuration (references standing in as strings)."""
    problems: list[Problem] = []
    for error in schema.errors(references.placeholder(configuration)):
        top = error.absolute_path[0] if error.absolute_path else None
        if error.validator == "additionalProperties" and isinstance(error.instance, dict):
            problems += _unknown_settings(doc, error)  # every unknown key, not just the first
            continue
        path, message, key = _schema_message(error, sensitive=top in sensitive)
        if error.validator == "type" and top is not None and references.has_ref(configuration.get(top)):
            message += " (a ${…} or file reference always gives a string)"
        problems.append(_problem(doc, ("configuration", *path), message, key=key))
    return problems


def _literal_secrets(doc: Document, configuration: dict[str, Any], secret_fields: list[str]) -> list[Problem]:
    """A warning for each secret field given as a plain, non-empty string rather than a reference."""
    return [
        _problem(
            doc,
            ("configuration", secret),
            "a literal secret is committed to git; use ${ENV_VAR} or {file: /run/secrets/NAME}",
            severity="warning",
        )
        for secret in secret_fields
        if isinstance(configuration.get(secret), str) and configuration[secret]
    ]


_OWNERSHIP_TAG = (
    "the ownership tag is the reconciler's own (it is set from --owner / owner: in "
    "syft-reconciler.yaml); remove it from the manifest's tags"
)


def _check_picks(doc: Document) -> list[Problem]:
    """`selected_items`: a dataset's only; `[]` or a list of picks with non-empty, distinct ids
    (the server keeps the first of two and drops the other's description without a word). Read
    from the document, so these are said beside the envelope's own type errors, in one run."""
    if not isinstance(doc.value, dict) or "selected_items" not in doc.value:
        return []
    picks = doc.value["selected_items"]
    if picks is None:
        message = "is null: write `[]` for no picks, or leave the field out to leave the server's picks alone"
        return [_problem(doc, ("selected_items",), message)]
    if doc.value.get("kind") == "Model":
        return [_problem(doc, ("selected_items",), "only a Dataset has selected_items", key=True)]
    problems: list[Problem] = []
    first: dict[str, int] = {}
    for index, pick in enumerate(picks if isinstance(picks, list) else ()):
        item_id = pick.get("item_id") if isinstance(pick, dict) else None
        if not isinstance(item_id, str):
            continue  # the envelope says what is wrong with it
        if not item_id:
            problems.append(_problem(doc, ("selected_items", index, "item_id"), "must be a non-empty string"))
        elif item_id in first:
            line = doc.where(("selected_items", first[item_id]))[0]
            message = f"{item_id!r} is already picked at line {line}; an item is picked once"
            problems.append(_problem(doc, ("selected_items", index, "item_id"), message))
        else:
            first[item_id] = index
    return problems


def _check_tags(doc: Document, tags: list[str] | str) -> list[Problem]:
    """Commas (the API joins tags with them), unsafe characters, and our own ownership tag."""
    if isinstance(tags, str):
        if redact.UNSAFE.search(tags):
            return [
                _problem(doc, ("tags",), "tags must not contain control, bidi or line-separator characters")
            ]
        if any(is_ownership_tag(t) for t in normalise_tags(tags)):
            return [_problem(doc, ("tags",), _OWNERSHIP_TAG)]
        return []
    problems: list[Problem] = []
    for index, tag in enumerate(tags):
        if "," in tag:
            message = "a tag must not contain `,` (the API joins tags with commas)"
        elif redact.UNSAFE.search(tag):
            message = "a tag must not contain control, bidi or line-separator characters"
        elif is_ownership_tag(tag.strip()):
            message = _OWNERSHIP_TAG
        else:
            continue
        problems.append(_problem(doc, ("tags", index), message))
    return problems


def _unknown_dtype(dtype: str, types: SchemaRegistry, *, datasets: bool) -> str:
    """A `dtype:` the registry does not know, with the closest it knows and the whole list."""
    return (
        f"unknown {'dataset type' if datasets else 'dtype'} `{dtype}`"
        f"{_suggest(dtype, types.dtypes)} (known: {', '.join(types.dtypes)})"
    )


def _beside_a_bad_envelope(doc: Document, registry: SchemaRegistry, errors: Sequence[Any]) -> list[Problem]:
    """The name and dtype checks, even when the envelope failed (a wrong `kind` must not hide a bad
    name or a misspelt dtype until it is fixed); only for fields the envelope did not already fault."""
    value = doc.value
    faulted = {str(e["loc"][0]) for e in errors if e["loc"]}
    problems: list[Problem] = []
    name = value.get("name")
    if "name" not in faulted and isinstance(name, str):
        found = check_name(name)
        if found:
            problems.append(_problem(doc, ("name",), found[0], severity=found[1]))
    dtype = value.get("dtype")
    datasets = value.get("kind") == "Dataset"
    types = dataset_registry() if datasets else registry
    if "dtype" not in faulted and isinstance(dtype, str) and types.get(dtype) is None:
        problems.append(_problem(doc, ("dtype",), _unknown_dtype(dtype, types, datasets=datasets)))
    schema = types.get(dtype) if isinstance(dtype, str) else None
    configuration = value.get("configuration")
    if schema is not None and "configuration" not in faulted and isinstance(configuration, dict):
        problems += _check_configuration(doc, configuration, schema)[2]
    return problems


def _envelope_problems(doc: Document, errors: Sequence[Any]) -> list[Problem]:
    """The envelope's validation errors as problems, each said once."""
    # A typo such as `configuraton` is one problem, not also "configuration is missing".
    suggested = {
        s
        for e in errors
        if e["type"] == "extra_forbidden"
        for s in difflib.get_close_matches(str(e["loc"][0]), ENVELOPE_FIELDS, n=1)
    }
    problems: list[Problem] = []
    for error in errors:
        if error["type"] == "missing" and error["loc"] and error["loc"][0] in suggested:
            continue
        path, message, key = _envelope_message(error, doc)
        problem = _problem(doc, path, message, key=key)
        if problem not in problems:  # a union (`tags`) fails once per member: say it once
            problems.append(problem)
    return problems


def _validate_one(doc: Document, registry: SchemaRegistry) -> tuple[Manifest | None, list[Problem]]:
    if not isinstance(doc.value, dict):
        what = "a list" if isinstance(doc.value, list) else f"the scalar {doc.value!r}"[:60]
        return None, [
            _problem(doc, (), f"a manifest must be a mapping (kind, name, dtype, configuration…), got {what}")
        ]
    try:
        envelope = Envelope.model_validate(doc.value)
    except ValidationError as exc:
        errors = exc.errors()
        return None, [
            *_envelope_problems(doc, errors),
            *_beside_a_bad_envelope(doc, registry, errors),
            *_check_picks(doc),
        ]

    problems: list[Problem] = []
    name_check = check_name(envelope.name)
    if name_check:
        message, severity = name_check
        problems.append(_problem(doc, ("name",), message, severity=severity))

    problems.extend(_check_tags(doc, envelope.tags))
    problems.extend(_check_picks(doc))

    datasets = envelope.kind == "Dataset"
    if datasets:
        registry = dataset_registry()
    schema = registry.get(envelope.dtype)
    if schema is None:
        problems.append(
            _problem(doc, ("dtype",), _unknown_dtype(envelope.dtype, registry, datasets=datasets))
        )
        return None, problems

    configuration, sensitive, config_problems = _check_configuration(doc, envelope.configuration, schema)
    problems.extend(config_problems)

    if any(p.severity == "error" for p in problems):
        return None, problems
    return _manifest(doc, envelope, configuration, sensitive), problems


def _manifest(
    doc: Document, envelope: Envelope, configuration: dict[str, Any], sensitive: frozenset[str]
) -> Manifest:
    """A valid document as a Manifest, with where its name, dtype and settings stand."""
    line, column = doc.where(())
    return Manifest(
        name=envelope.name,
        dtype=envelope.dtype,
        configuration=configuration,
        summary=envelope.summary,
        tags=normalise_tags(envelope.tags),
        source=SourceLocation(doc.path, line, column),
        sensitive=sensitive,
        resolved=not any(references.has_ref(v) for v in configuration.values()),
        replace_policy=envelope.lifecycle.replace,
        kind=envelope.kind,
        selected_items=(
            None
            if envelope.selected_items is None
            else tuple((p.item_id, p.description) for p in envelope.selected_items)
        ),
        positions={
            ".".join(map(str, p)): doc.where(p)
            for p in [("name",), ("dtype",), *[("configuration", k) for k in configuration]]
        },
    )
