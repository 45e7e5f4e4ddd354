"""schema_pull.py: a server's model, dataset and policy types as our schema files (pure)."""

import json

import jsonschema
import pytest

from reconciler.editor_schema import dumps
from reconciler.model import ModelType
from reconciler.sandbox import bundled
from reconciler.schema_pull import (
    DATASETS,
    POLICIES,
    SchemaUpdate,
    looks_secret,
    pull,
    pulled_schema,
    schema_changes,
    without_dangling_refs,
)
from reconciler.schemas import SchemaRegistry, bundled_schema_dir, server_config_schema


@pytest.mark.parametrize(
    ("field", "secret"),
    [
        ("api_key", True),
        ("apikey", True),
        ("openai_api_key", True),
        ("access_token", True),
        ("token", True),
        ("client_secret", True),
        ("password", True),
        ("max_tokens", False),
        ("model", False),
        ("keep_alive", False),
        ("secret_name", False),
    ],
)
def test_looks_secret(field, secret):
    assert looks_secret(field) is secret


@pytest.mark.parametrize("path", sorted(bundled_schema_dir().glob("*.json")), ids=lambda p: p.stem)
def test_pulling_what_a_server_publishes_gives_back_the_bundled_file(path):
    text = path.read_text(encoding="utf-8")
    served = server_config_schema(json.loads(text))
    assert dumps(pulled_schema(path.stem, served, existing=json.loads(text))) == text
    assert pull([ModelType(path.stem, served)], {path.stem: text}) == (SchemaUpdate(path.stem, "unchanged"),)


OPENAI = (bundled_schema_dir() / "openai.json").read_text(encoding="utf-8")


def test_pull_reports_property_changes_and_rewrites():
    served = server_config_schema(json.loads(OPENAI))
    served["properties"]["model"]["default"] = "gpt-4o"
    served["properties"]["temperature"] = {"type": "number", "maximum": 2}
    del served["properties"]["system_prompt"]
    served["required"] = ["api_key", "model"]
    (update,) = pull([ModelType("openai", served)], {"openai": OPENAI})
    assert (update.dtype, update.status) == ("openai", "changed")
    assert update.lines == (
        "+ temperature (number)",
        "- system_prompt",
        '~ model.default: "gpt-3.5-turbo" → "gpt-4o"',
        '~ required: ["api_key"] → ["api_key", "model"]',
    )
    new = json.loads(update.text)
    assert new["title"] == "OpenAI" and new["properties"]["api_key"]["writeOnly"] is True
    assert list(new) == [
        "$schema",
        "$id",
        "title",
        "description",
        "type",
        "properties",
        "required",
        "additionalProperties",
        "order",
    ]


def test_pull_of_a_new_dtype_follows_our_conventions():
    served = {
        "type": "object",
        "properties": {
            "url": {"type": "string"},
            "access_token": {"type": "string"},
            "max_tokens": {"type": "integer"},
        },
    }
    (update,) = pull([ModelType("gemini", served, description="Gemini model type.\n\nMore text.")], {})
    assert (update.status, update.lines) == (
        "new",
        ("+ url (string)", "+ access_token (string, secret)", "+ max_tokens (integer)"),
    )
    assert json.loads(update.text) == {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://github.com/OpenMined/syft-space-reconciler/schemas/gemini.json",
        "title": "gemini",
        "description": "Gemini model type.",
        "type": "object",
        "properties": {
            "url": {"type": "string"},
            "access_token": {"type": "string", "writeOnly": True},
            "max_tokens": {"type": "integer"},
        },
        "additionalProperties": False,
    }


def test_pull_keeps_files_of_types_not_offered_and_skips_unusable_types():
    updates = pull(
        [
            ModelType("../evil", {"type": "object"}),
            ModelType("broken", {"type": 5}),
            ModelType("listy", ["not", "a", "schema"]),
            ModelType("off", {"type": "object"}, enabled=False),
        ],
        {"openai": OPENAI},
    )
    assert [(u.dtype, u.status, u.note) for u in updates] == [
        ("../evil", "skipped", "its name cannot be a file name in schemas/"),
        (
            "broken",
            "skipped",
            "its config_schema is not a valid JSON Schema (5 is not valid under any of the given schemas)",
        ),
        ("listy", "skipped", "its config_schema is not a JSON object"),
        ("off", "new", "disabled on the server"),
        ("openai", "not_offered", "not offered by the server; kept"),
    ]


def test_pull_rewrites_a_broken_or_reformatted_file():
    served = server_config_schema(json.loads(OPENAI))
    (update,) = pull([ModelType("openai", served)], {"openai": "{not json"})
    assert update.lines == ("~ the existing file is not a JSON object; rewritten from the server",)
    (update,) = pull([ModelType("openai", served)], {"openai": json.dumps(json.loads(OPENAI))})
    assert (update.status, update.lines) == ("changed", ("~ formatting or key order only",))
    assert update.text == OPENAI


def test_schema_changes_on_keyword_removal_and_top_level():
    old = {"properties": {"a": {"type": "string", "default": "x"}}, "order": ["a"]}
    new = {"properties": {"a": {"type": "string"}}}
    assert schema_changes(old, new) == ('~ a.default: "x" → (none)', '~ order: ["a"] → (none)')


# -- dataset and policy types ----------------------------------------------------------------

KIND_FILES = [
    (kind, path)
    for kind in (DATASETS, POLICIES)
    for path in sorted((bundled_schema_dir() / kind.folder).glob("*.json"))
]


@pytest.mark.parametrize(("kind", "path"), KIND_FILES, ids=lambda v: getattr(v, "stem", None) or v.name)
def test_pulling_a_published_kind_type_gives_back_the_bundled_file(kind, path):
    # what the sandbox (and the real server) publishes: `properties` without writeOnly, `required`
    text = path.read_text(encoding="utf-8")
    served = bundled.published_kind_schema(json.loads(text))
    assert set(served) == {"properties", "required"}
    assert dumps(pulled_schema(path.stem, served, existing=json.loads(text), kind=kind)) == text
    off = ModelType(path.stem, served, enabled=False)
    assert pull([off], {path.stem: text}, kind) == (
        SchemaUpdate(path.stem, "unchanged", note="disabled on the server"),
    )


def test_a_new_kind_type_gets_our_conventions_and_its_folder_in_the_id():
    served = {
        "properties": {
            "siteUrl": {"type": "string"},
            "applicationPassword": {"type": "string", "format": "password"},
            "headers": {"type": ["object", "null"], "secret": True},
            "api_key": {"type": "string"},
        },
        "required": ["siteUrl"],
    }
    (update,) = pull([ModelType("blog", served, description="Blog dataset type.\n\nMore.")], {}, DATASETS)
    assert update.lines == (
        "+ siteUrl (string)",
        "+ applicationPassword (string, secret)",
        "+ headers (object/null, secret)",
        "+ api_key (string, secret)",
    )
    new = json.loads(update.text)
    assert list(new) == [
        "$schema",
        "$id",
        "title",
        "description",
        "type",
        "properties",
        "required",
        "additionalProperties",
    ]
    assert new["$id"].endswith("/schemas/datasets/blog.json")
    assert (new["title"], new["description"], new["type"]) == ("blog", "Blog dataset type.", "object")
    assert [f for f, p in new["properties"].items() if p.get("writeOnly")] == [
        "applicationPassword",
        "headers",
        "api_key",
    ]
    (update,) = pull([ModelType("wallet", {})], {}, POLICIES)
    assert json.loads(update.text) == {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://github.com/OpenMined/syft-space-reconciler/schemas/policies/wallet.json",
        "title": "wallet",
        "description": "The `wallet` policy type, as a Syft Space server publishes it.",
        # no properties published: `additionalProperties: false` would refuse every field
        "type": "object",
    }


# Weaviate's `filters` as the real server publishes it: its `$defs` are not in the schema.
FILTERS = {
    "anyOf": [{"$ref": "#/$defs/FilterCondition"}, {"$ref": "#/$defs/FilterGroup"}, {"type": "null"}],
    "default": None,
    "title": "Filters",
}


def test_dangling_refs_are_dropped_and_named_and_the_rest_resolves():
    served = {
        "properties": {
            "filters": FILTERS,
            "copy": {"$ref": "#/properties/name", "description": "kept"},
            "name": {"type": "string", "default": {"$ref": "#/nowhere"}},  # a value, not a schema
            "anchored": {"$ref": "#here"},
            "lost": {"$ref": "#lost"},
            "remote": {"$ref": "https://example.org/schema.json"},
            "tilde": {"$ref": "#/$defs/a~1b/items/0"},
        },
        "$defs": {"a/b": {"items": [{"$anchor": "here"}]}},
        "required": [],
    }
    cleaned, dangling = without_dangling_refs(served)
    assert dangling == (
        "#/$defs/FilterCondition",
        "#/$defs/FilterGroup",
        "#lost",
        "https://example.org/schema.json",
    )
    props = cleaned["properties"]
    assert props["filters"] == {"anyOf": [{}, {}, {"type": "null"}], "default": None, "title": "Filters"}
    assert props["copy"] == served["properties"]["copy"] and props["tilde"] == served["properties"]["tilde"]
    assert props["name"] == served["properties"]["name"] and props["anchored"] == {"$ref": "#here"}
    assert props["lost"] == {} and props["remote"] == {}

    (update,) = pull([ModelType("remote_weaviate", {"properties": {"filters": FILTERS}})], {}, DATASETS)
    assert update.note == (
        "$ref #/$defs/FilterCondition, #/$defs/FilterGroup not in the server's schema: "
        "that part accepts any value"
    )
    schema = json.loads(update.text)
    jsonschema.Draft202012Validator.check_schema(schema)
    registry = SchemaRegistry({"remote_weaviate": schema})  # compiles: nothing left to resolve
    assert not list(registry.get("remote_weaviate").errors({"filters": {"path": ["x"], "operator": "Equal"}}))
    assert list(registry.get("remote_weaviate").errors({"filters": 5})) == []


def test_a_secret_fields_values_are_hidden_in_change_lines():
    old = {"properties": {"pw": {"type": "string", "default": "hunter2-default", "writeOnly": True}}}
    new = {"properties": {"pw": {"type": "string", "default": "s3cret-default", "enum": ["s3cret-default"]}}}
    lines = schema_changes(old, new)
    assert lines == (
        "~ pw.default: (hidden) → (hidden)",
        "~ pw.enum: (none) → (hidden)",
        "~ pw.writeOnly: true → (none)",
    )


def test_a_pulled_one_of_of_dangling_refs_still_accepts_what_either_branch_could():
    # The real server's Weaviate `filters`: a discriminated `oneOf` of two `$ref`s to `$defs` it
    # does not publish. Emptied, both branches match anything and `oneOf` would refuse every value.
    refs = [{"$ref": "#/$defs/FilterCondition"}, {"$ref": "#/$defs/FilterGroup"}]
    tagged = {"discriminator": {"propertyName": "type"}, "oneOf": refs}
    filters = {"anyOf": [tagged, {"type": "null"}], "default": None}
    (update,) = pull([ModelType("w", {"properties": {"filters": filters}})], {}, DATASETS)
    schema = json.loads(update.text)
    assert schema["properties"]["filters"]["anyOf"][0] == {
        "discriminator": {"propertyName": "type"},
        "anyOf": [{}, {}],
    }
    registry = SchemaRegistry({"w": schema})
    assert not list(registry.get("w").errors({"filters": {"type": "condition"}}))
    assert not list(registry.get("w").errors({"filters": None}))
