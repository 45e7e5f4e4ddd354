"""The bundled JSON Schemas as a server sees them: read from disk, published, and made validators.

The sandbox reads `schemas/*.json` (model types), `schemas/datasets/*.json` and
`schemas/policies/*.json` itself (the wheel carries them as `reconciler/_schemas`), and shares
nothing with the client's view of them. A real server validates configurations with pydantic
models and publishes their JSON Schema; here it goes the other way round: each bundled schema
becomes a pydantic model, so that error texts have pydantic's shape, as the server's do.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, HttpUrl, create_model
from pydantic_core import PydanticCustomError

# Keywords of ours that a server never publishes (syft-space-api.md, "Model types").
_OURS = ("$schema", "$id", "title", "description", "additionalProperties")


def schema_dir() -> Path:
    """The checkout's `schemas/`, or the wheel's copy (pyproject.toml force-includes it)."""
    source = Path(__file__).resolve().parents[2] / "schemas"
    if source.is_dir():
        return source
    return Path(__file__).resolve().parents[1] / "_schemas"


def load(folder: str | None = None) -> dict[str, dict[str, Any]]:
    """name → schema of `schemas/[folder/]*.json`, by name (not recursive)."""
    directory = schema_dir() if folder is None else schema_dir() / folder
    return {
        path.stem: json.loads(path.read_text(encoding="utf-8")) for path in sorted(directory.glob("*.json"))
    }


def _published_properties(schema: Mapping[str, Any]) -> dict[str, Any]:
    return {
        name: {k: v for k, v in prop.items() if k != "writeOnly"}
        for name, prop in schema.get("properties", {}).items()
    }


def published_model_schema(schema: Mapping[str, Any]) -> dict[str, Any]:
    """A model type's config_schema as the real server publishes it: ours minus our keywords."""
    out = {k: v for k, v in schema.items() if k not in _OURS}
    if isinstance(out.get("properties"), dict):
        out["properties"] = _published_properties(schema)
    return out


def published_kind_schema(schema: Mapping[str, Any]) -> dict[str, Any]:
    """A dataset or policy type's config_schema as published: `properties` and `required` only.

    (syft-space-api-kinds.md, "Dataset types": no `type`, no `$defs`.)
    """
    return {"properties": _published_properties(schema), "required": list(schema.get("required", []))}


def write_only(schema: Mapping[str, Any]) -> frozenset[str]:
    """The fields our schema marks secret (`writeOnly`)."""
    return frozenset(k for k, v in schema.get("properties", {}).items() if v.get("writeOnly"))


def dropped_on_output(schema: Mapping[str, Any]) -> frozenset[str]:
    """The fields a server stores but never sends back: those it marks `format: password`.

    (syft-space-api-kinds.md, "Secrets": WordPress's `applicationPassword`; the Weaviate
    `api_key` and `headers` are echoed.)
    """
    return frozenset(k for k, v in schema.get("properties", {}).items() if v.get("format") == "password")


_SCALARS: dict[str, Any] = {
    "string": str,
    "integer": int,
    "number": float,
    "boolean": bool,
    "object": dict,
    "null": type(None),
}


def merged_properties(schema: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Each property with what the schema's `allOf` adds to it: the server's own checks and fills
    that its published schema does not show (a `pattern`, a `default`)."""
    props = {name: dict(prop) for name, prop in schema.get("properties", {}).items()}
    for part in schema.get("allOf", []):
        for name, extra in part.get("properties", {}).items():
            if name in props:
                props[name].update(extra)
    return props


def _tagged(discriminator: Mapping[str, Any]) -> Any:
    """A pydantic discriminated union of models we do not know: an object whose tag is one of the
    mapping's, with pydantic's own errors for a missing or unknown tag."""
    key = discriminator["propertyName"]
    tags = tuple(discriminator.get("mapping", {}))
    context = {"discriminator": f"'{key}'", "expected_tags": ", ".join(f"'{t}'" for t in tags)}

    def check(value: dict[str, Any]) -> dict[str, Any]:
        if key not in value:
            raise PydanticCustomError(
                "union_tag_not_found", "Unable to extract tag using discriminator {discriminator}", context
            )
        if value[key] not in tags:
            raise PydanticCustomError(
                "union_tag_invalid",
                "Input tag '{tag}' found using {discriminator} does not match any of the expected tags:"
                " {expected_tags}",
                {**context, "tag": str(value[key])},
            )
        return value

    return Annotated[dict[str, Any], AfterValidator(check)]


def _annotation(prop: Mapping[str, Any]) -> Any:
    if "anyOf" in prop:
        return Union[tuple(_annotation(branch) for branch in prop["anyOf"])]  # noqa: UP007
    if "oneOf" in prop and "discriminator" in prop:
        return _tagged(prop["discriminator"])
    if "enum" in prop:
        return Literal[tuple(prop["enum"])]
    kinds = prop.get("type", "string")
    kinds = [kinds] if isinstance(kinds, str) else list(kinds)
    nullable = "null" in kinds and len(kinds) > 1
    (kind,) = [k for k in kinds if k != "null"] or ["null"]
    annotation = _typed(kind, prop)
    return annotation | None if nullable else annotation


def _typed(kind: str, prop: Mapping[str, Any]) -> Any:
    if kind == "string" and prop.get("format") == "uri":
        return HttpUrl
    if kind == "array":
        return list[_annotation(prop.get("items", {"type": "string"}))]  # type: ignore[misc]
    if kind == "object" and isinstance(prop.get("additionalProperties"), dict):
        return dict[str, _annotation(prop["additionalProperties"])]  # type: ignore[misc]
    if kind == "object":
        return dict[str, Any]
    return _SCALARS[kind]


def _field(prop: Mapping[str, Any], *, required: bool) -> Any:
    constraints: dict[str, Any] = {}
    if "pattern" in prop and prop.get("format") != "uri":  # HttpUrl checks URLs itself
        constraints["pattern"] = prop["pattern"]
    if "exclusiveMinimum" in prop:
        constraints["gt"] = prop["exclusiveMinimum"]
    if "minimum" in prop:
        constraints["ge"] = prop["minimum"]
    if "maximum" in prop:
        constraints["le"] = prop["maximum"]
    if required:
        return Field(..., **constraints)
    default = prop.get("default")
    if isinstance(default, (list, dict)):
        return Field(default_factory=lambda d=default: json.loads(json.dumps(d)), **constraints)
    return Field(default=default, **constraints)


def config_model(class_name: str, schema: Mapping[str, Any]) -> type[BaseModel]:
    """A pydantic model checking a configuration as the server's does (unknown keys ignored):
    the published properties with the `allOf` additions.

    `class_name` is the server's, since it heads pydantic's error text.
    """
    required = set(schema.get("required", []))
    fields = {
        name: (_annotation(prop), _field(prop, required=name in required))
        for name, prop in merged_properties(schema).items()
    }
    model: type[BaseModel] = create_model(  # type: ignore[call-overload]
        class_name, __config__=ConfigDict(extra="ignore"), **fields
    )
    return model
