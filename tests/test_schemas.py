"""The fast check and jsonschema must agree on every bundled schema (the fast one decides validity)."""

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
def test_fast_and_full_agree_and_do_not_mutate(dtype, case):
    schema = REGISTRY.get(dtype)
    before = copy.deepcopy(case)
    fast_valid = not list(schema.errors(case))
    full_valid = not list(schema.validator.iter_errors(case))
    assert fast_valid == full_valid
    assert case == before  # fastjsonschema must not fill in defaults


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
