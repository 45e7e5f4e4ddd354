"""The editor schema's Dataset and Endpoint branches (pure): generated from
schemas/datasets/*.json and schemas/policies/*.json like the Model branch from schemas/*.json."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from reconciler.kinds.validate import dataset_registry, policy_registry
from reconciler.kinds.values import RESPONSE_TYPES
from reconciler.schemas import SchemaRegistry


def kind_definitions(
    envelope: Mapping[str, Any],
    configuration: Callable[[Mapping[str, Any]], dict[str, Any]],
    datasets: SchemaRegistry | None = None,
    policies: SchemaRegistry | None = None,
) -> dict[str, Any]:
    """`Dataset` (a Model's envelope over the dataset types), `Endpoint`, and each type's
    configuration as `dataset.<dtype>` / `policy.<type>`; the bundled types unless given."""
    datasets = dataset_registry() if datasets is None else datasets
    policies = policy_registry() if policies is None else policies
    defs: dict[str, Any] = {}
    for dtype in datasets.dtypes:
        found = datasets.get(dtype)
        assert found is not None
        defs[f"dataset.{dtype}"] = configuration(found.schema)
    for kind in policies.dtypes:
        found = policies.get(kind)
        assert found is not None
        defs[f"policy.{kind}"] = configuration(found.schema)
    defs["Dataset"] = {
        "type": "object",
        "properties": {
            **envelope,
            "kind": {"const": "Dataset"},
            "dtype": {"description": "The dataset type.", "enum": list(datasets.dtypes)},
            "selected_items": {
                "description": "The items of the source this dataset serves (exact ids). Leave it out "
                "to leave the picks on the server alone; [] means none.",
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "item_id": {"type": "string", "minLength": 1},
                        "description": {"type": ["string", "null"]},
                    },
                    "required": ["item_id"],
                    "additionalProperties": False,
                },
            },
        },
        "required": ["kind", "name", "dtype", "configuration"],
        "additionalProperties": False,
        "allOf": [
            {
                "if": {"properties": {"dtype": {"const": d}}, "required": ["dtype"]},
                "then": {"properties": {"configuration": {"$ref": f"#/definitions/dataset.{d}"}}},
            }
            for d in datasets.dtypes
        ],
    }
    policy = {
        "type": "object",
        "properties": {
            "name": {"type": "string", "minLength": 1, "description": "Unique per endpoint."},
            "policy_type": {"enum": list(policies.dtypes)},
            "configuration": {"type": "object"},
        },
        "required": ["name", "policy_type"],
        "additionalProperties": False,
        "allOf": [
            {
                "if": {"properties": {"policy_type": {"const": p}}, "required": ["policy_type"]},
                "then": {"properties": {"configuration": {"$ref": f"#/definitions/policy.{p}"}}},
            }
            for p in policies.dtypes
        ],
    }
    text = {"type": "string"}
    defs["Endpoint"] = {
        "type": "object",
        "properties": {
            "kind": {"const": "Endpoint"},
            "slug": {
                "type": "string",
                "description": "The endpoint's identity, lower-case.",
                "pattern": "^[a-z0-9]+(-[a-z0-9]+)*$",
                "minLength": 3,
                "maxLength": 64,
            },
            "name": {**text, "description": "The display name."},
            "model": {**text, "description": "A Model's name."},
            "dataset": {**text, "description": "A Dataset's name."},
            "summary": text,
            "description": {**text, "description": "Markdown."},
            "response_type": {"enum": list(RESPONSE_TYPES), "default": "both"},
            "published": {"type": "boolean", "default": False, "description": "Set at create only."},
            "tags": envelope["tags"],
            "system_prompt": {"type": ["string", "null"]},
            "policies": {"type": "array", "items": policy},
            "lifecycle": envelope["lifecycle"],
        },
        "required": ["kind", "slug", "name"],
        "anyOf": [{"required": ["model"]}, {"required": ["dataset"]}],
        "additionalProperties": False,
    }
    return defs
