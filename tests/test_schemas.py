"""Configuration schemas: draft 2020-12 as declared, no defaults written into the checked value."""

import copy

import pytest

from reconciler.schemas import SchemaRegistry, server_config_schema

REGISTRY = SchemaRegistry.load()
CASES = [
    {},
    {"api_key": "k"},
    {"api_key": 1},
    {"api_key": "k", "model": "m"},
    {"model": "m"},
    {"model": "m", "base_url": "u"},
    {"api_key": "k", "unknown": 1},
    {"model": "m", "num_ctx": 0},
    {"model": "m", "num_ctx": 2048},
    {"model": "m", "num_ctx": "2048"},
    {"api_key": "k", "max_tokens": 1.5},
    {"api_key": "k", "temperature": 3},
    {"api_key": "k", "temperature": 0.5},
    {"model": "m", "temperature": True},
    {"base_url": "u", "model": "m", "api_key": None},
    [],
    "text",
    None,
]


@pytest.mark.parametrize("dtype", REGISTRY.dtypes)
@pytest.mark.parametrize("case", CASES, ids=[repr(c)[:30] for c in CASES])
def test_checking_never_fills_in_defaults(dtype, case):
    schema = REGISTRY.get(dtype)
    before = copy.deepcopy(case)
    list(schema.errors(case))
    assert case == before


# What `schema pull` may write: 2020-12 keywords a draft-07 fast path ignored ("valid", two errors missed)
PULLED = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "properties": {
        "pair": {"type": "array", "prefixItems": [{"type": "string"}, {"type": "integer"}]},
        "user": {"type": "string"},
        "password": {"type": "string", "writeOnly": True},
    },
    "dependentRequired": {"user": ["password"]},
}


def test_draft_2020_12_keywords_are_checked():
    registry = SchemaRegistry({"pulled": PULLED})
    errors = list(registry.get("pulled").errors({"pair": ["a", "b"], "user": "u"}))
    assert sorted(e.validator for e in errors) == ["dependentRequired", "type"]
    assert not list(registry.get("pulled").errors({"pair": ["a", 1], "user": "u", "password": "p"}))


def test_every_bundled_schema_declares_draft_2020_12():
    for dtype in REGISTRY.dtypes:
        assert REGISTRY.get(dtype).schema.get("$schema") == "https://json-schema.org/draft/2020-12/schema", (
            dtype
        )


def test_secret_fields_and_server_shape():
    assert REGISTRY.secret_fields("openai") == frozenset({"api_key"})
    assert REGISTRY.secret_fields("ollama") == frozenset()
    published = server_config_schema(REGISTRY.get("openai").schema)
    assert set(published) == {"type", "properties", "required", "order"}
    assert published["required"] == ["api_key"]
    assert "writeOnly" not in published["properties"]["api_key"]


@pytest.mark.parametrize("dtype", REGISTRY.dtypes)
def test_bundled_schemas_are_valid_json_schema(dtype):
    from jsonschema import Draft202012Validator

    Draft202012Validator.check_schema(REGISTRY.get(dtype).schema)
