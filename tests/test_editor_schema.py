"""editor_schema.py: the manifest schema for editors (pure)."""

from pathlib import Path

import jsonschema
import pytest

from reconciler import manifests
from reconciler.editor_schema import EDITOR_SCHEMA_PATH, allow_references, dumps, manifest_schema
from reconciler.schemas import SchemaRegistry, bundled_schema_dir
from reconciler.validate import validate

ROOT = Path(__file__).resolve().parent.parent
REGISTRY = SchemaRegistry.load()
SCHEMA = manifest_schema(REGISTRY)
VALIDATOR = jsonschema.Draft7Validator(SCHEMA)


def test_the_committed_editor_schema_is_the_generated_one():
    committed = bundled_schema_dir().joinpath(*EDITOR_SCHEMA_PATH).read_text(encoding="utf-8")
    assert committed == dumps(SCHEMA), (
        "schemas/editor/manifest.schema.json is stale: "
        "run `syft-reconciler schema > schemas/editor/manifest.schema.json`"
    )


def test_the_editor_schema_is_valid_draft_07_and_not_read_as_a_dtype():
    assert jsonschema.validators.validator_for(SCHEMA) is jsonschema.Draft7Validator
    jsonschema.Draft7Validator.check_schema(SCHEMA)
    assert "editor" not in REGISTRY.dtypes and "manifest.schema" not in REGISTRY.dtypes


def example_documents():
    docs, problems = manifests.read_paths([ROOT / "manifests"])
    assert problems == []
    return docs


@pytest.mark.parametrize("doc", example_documents(), ids=lambda d: f"{Path(d.path).name}#{d.index}")
def test_every_example_manifest_passes_the_editor_schema(doc):
    assert [e.message for e in VALIDATOR.iter_errors(doc.value)] == []


def test_the_example_points_its_editor_at_the_schema():
    example = ROOT / "manifests" / "openai" / "gpt-4o.yaml"
    first = example.read_text(encoding="utf-8").splitlines()[0]
    assert first == "# yaml-language-server: $schema=../../schemas/editor/manifest.schema.json"
    assert (example.parent / first.split("$schema=")[1]).resolve() == (
        ROOT / "schemas" / "editor" / "manifest.schema.json"
    )


BASE = {"kind": "Model", "name": "m", "dtype": "openai", "configuration": {"api_key": "${K}", "model": "x"}}


def case(**changes):
    doc = {**BASE, **changes}
    return {k: v for k, v in doc.items() if v is not None}


# (document, valid?) — the editor schema and `validate` must agree on each.
CASES = [
    (case(), True),
    (case(configuration={"api_key": {"file": "/run/secrets/k"}}), True),
    (case(tags="a,b", summary="s"), True),
    (case(tags=["a", "b"]), True),
    (case(dtype="anthropic", configuration={"api_key": "${K}", "temperature": 0.5, "max_tokens": 10}), True),
    (case(dtype="ollama", configuration={"model": "llama3"}), True),
    (case(kind=None), False),
    (case(kind="Deployment"), False),
    (case(configuration=None), False),
    (case(configuraton={}), False),
    (case(name=""), False),
    (case(name="a/b"), False),
    (case(name=".."), False),
    (case(name="tab\there"), False),
    (case(name="x" * 256), False),
    (case(dtype="mystery"), False),
    (case(tags=["a,b"]), False),
    (case(tags=[1]), False),
    (case(summary=3), False),
    (case(configuration={"api_key": "${K}", "modle": "x"}), False),
    (case(configuration={"model": "x"}), False),
    (case(configuration={"api_key": {"file": ""}}), False),
    (case(configuration={"api_key": {"path": "x"}}), False),
    (case(configuration={"api_key": 5}), False),
    (case(dtype="anthropic", configuration={"api_key": "k", "temperature": 1.5}), False),
    (case(dtype="ollama", configuration={"model": "m", "num_ctx": {"file": "x"}}), False),
]


@pytest.mark.parametrize(("doc", "valid"), CASES)
def test_the_editor_schema_agrees_with_validate(doc, valid):
    assert VALIDATOR.is_valid(doc) is valid
    _, problems = validate([manifests.Document("m.yaml", 0, doc, {}, {})], REGISTRY)
    assert (not [p for p in problems if p.severity == "error"]) is valid


def test_one_dtype_only():
    schema = manifest_schema(REGISTRY, "ollama")
    validator = jsonschema.Draft7Validator(schema)
    assert schema["properties"]["dtype"]["const"] == "ollama" and list(schema["definitions"]) == [
        "ollama",
        "fileReference",
        "envReference",
    ]
    assert validator.is_valid(case(dtype="ollama", configuration={"model": "m"}))
    assert not validator.is_valid(case())
    assert not validator.is_valid(case(dtype="ollama", configuration={"model": "m", "api_key": "k"}))
    with pytest.raises(KeyError):
        manifest_schema(REGISTRY, "mystery")


def test_allow_references_keeps_annotations_and_adds_env_branch_only_for_constrained_strings():
    assert allow_references({"type": "string", "title": "T", "default": "d"}) == {
        "title": "T",
        "default": "d",
        "anyOf": [{"type": "string"}, {"$ref": "#/definitions/fileReference"}],
    }
    constrained = allow_references({"type": "string", "enum": ["a"]})
    assert constrained["anyOf"][1] == {"$ref": "#/definitions/envReference"}
    array = {"type": "array", "items": {"type": "string"}}
    nested = allow_references({"type": "object", "properties": {"x": array}})
    assert nested["properties"]["x"]["items"]["anyOf"][1] == {"$ref": "#/definitions/fileReference"}
    assert allow_references({"type": "integer", "minimum": 1}) == {"type": "integer", "minimum": 1}
