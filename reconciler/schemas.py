"""The per-dtype configuration schemas: `schemas/<dtype>.json` is the one source of truth.

`SchemaRegistry` loads them once, compiles one validator per dtype and answers which fields are
secret (`writeOnly: true`). The same files are served by the sandbox and printed by `schema`.
Pure: reads files only when asked to load a folder.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # jsonschema is imported when the first configuration is checked, not at start-up
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import ValidationError

# Our additions to the server's own config_schema: stripped again where we must answer exactly like
# the real server (the sandbox's model-types routes).
OUR_KEYWORDS = ("$schema", "$id", "title", "description", "additionalProperties")


def bundled_schema_dir() -> Path:
    """Where the bundled schemas live: the checkout's `schemas/`, or the wheel's copy."""
    source = Path(__file__).resolve().parent.parent / "schemas"
    if source.is_dir():
        return source
    return Path(__file__).resolve().parent / "_schemas"


def server_config_schema(schema: Mapping[str, Any]) -> dict[str, Any]:
    """The schema as a Syft Space server publishes it: without our keywords and secret markers."""
    out = {k: v for k, v in schema.items() if k not in OUR_KEYWORDS}
    props = out.get("properties")
    if isinstance(props, dict):
        out["properties"] = {
            name: {k: v for k, v in prop.items() if k != "writeOnly"} for name, prop in props.items()
        }
    return out


@dataclass(frozen=True)
class DtypeSchema:
    """One dtype's JSON Schema and its validator: jsonschema's Draft202012Validator, the draft every
    bundled schema declares. It alone decides (a compiled "fast path" that does not implement
    2020-12, such as fastjsonschema, answered "valid" for `prefixItems`/`dependentRequired` errors).
    """

    dtype: str
    schema: Mapping[str, Any]

    @cached_property
    def validator(self) -> Draft202012Validator:
        from jsonschema import Draft202012Validator

        return Draft202012Validator(self.schema)

    @cached_property
    def secret_fields(self) -> frozenset[str]:
        props = self.schema.get("properties", {})
        return frozenset(k for k, v in props.items() if v.get("writeOnly"))

    def errors(self, configuration: Any) -> Iterator[ValidationError]:
        return self.validator.iter_errors(configuration)


@dataclass(frozen=True)
class DtypeFacts:
    """What planning needs of each dtype, as one value passed once: its secret fields (never
    printed; "not comparable" when the server drops them) and its schema defaults (a field missing
    on one side and equal to its default on the other is no change)."""

    secret_fields: Mapping[str, frozenset[str]] = field(default_factory=dict)
    defaults: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def secrets_of(self, dtype: str) -> frozenset[str]:
        return self.secret_fields.get(dtype, frozenset())

    def defaults_of(self, dtype: str) -> Mapping[str, Any]:
        return self.defaults.get(dtype, {})


class SchemaRegistry:
    """dtype → DtypeSchema, loaded once."""

    def __init__(self, schemas: Mapping[str, Mapping[str, Any]]) -> None:
        # tests/test_schemas.py checks every bundled schema against the metaschema
        self._by_dtype: dict[str, DtypeSchema] = {
            dtype: DtypeSchema(dtype, schema) for dtype, schema in schemas.items()
        }

    @classmethod
    def load(cls, directory: Path | None = None) -> SchemaRegistry:
        directory = directory or bundled_schema_dir()
        schemas = {
            p.stem: json.loads(p.read_text(encoding="utf-8")) for p in sorted(directory.glob("*.json"))
        }
        return cls(schemas)

    @property
    def dtypes(self) -> tuple[str, ...]:
        return tuple(sorted(self._by_dtype))

    def get(self, dtype: str) -> DtypeSchema | None:
        return self._by_dtype.get(dtype)

    def secret_fields(self, dtype: str) -> frozenset[str]:
        found = self._by_dtype.get(dtype)
        return found.secret_fields if found else frozenset()

    @cached_property
    def facts(self) -> DtypeFacts:
        """Every dtype's secret fields and schema defaults."""
        defaults = {
            dtype: {k: v["default"] for k, v in s.schema.get("properties", {}).items() if "default" in v}
            for dtype, s in self._by_dtype.items()
        }
        return DtypeFacts({d: s.secret_fields for d, s in self._by_dtype.items()}, defaults)
