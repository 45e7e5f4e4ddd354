"""The sandbox's /openapi.json matches the real server's for the models and types routes.

The reference is ../shared/syft-space-openapi.json beside the repository (CI clones it there);
without it these tests skip.
"""

import json
from pathlib import Path

import pytest

REFERENCE = Path(__file__).resolve().parents[2].parent / "shared" / "syft-space-openapi.json"
COMPONENTS = [
    "CreateModelRequest",
    "UpdateModelRequest",
    "ModelResponse",
    "ModelResponseWithEndpoints",
    "ModelListItem",
    "EndpointListItem",
    "ModelTypeInfoResponse",
    "HealthcheckResponse",
    "HealthcheckStatus",
    "HTTPValidationError",
]
PROSE = {"description", "summary"}


@pytest.fixture(scope="module")
def reference():
    if not REFERENCE.is_file():
        pytest.skip(f"{REFERENCE} is absent")
    return json.loads(REFERENCE.read_text(encoding="utf-8"))


@pytest.fixture
def ours(http):
    response = http.get("/openapi.json")
    assert response.status_code == 200
    return response.json()


def without_prose(node, *, in_properties=False):
    """Drop prose keys (the reference has none), but not properties that happen to be named so."""
    if isinstance(node, dict):
        return {
            key: without_prose(value, in_properties=key == "properties")
            for key, value in node.items()
            if in_properties or key not in PROSE
        }
    if isinstance(node, list):
        return [without_prose(value) for value in node]
    return node


def test_title_and_version(reference, ours):
    assert ours["info"]["title"] == reference["info"]["title"]
    assert ours["info"]["version"] == reference["info"]["version"]


def test_the_same_paths_and_methods(reference, ours):
    for path, operations in reference["paths"].items():
        assert path in ours["paths"], path
        assert set(ours["paths"][path]) == set(operations), path


def test_each_operation_matches(reference, ours):
    for path, operations in reference["paths"].items():
        for method, expected in operations.items():
            actual = without_prose(ours["paths"][path][method])
            # operationId, parameters, requestBody (refs, required), response schemas, security
            assert actual == expected, f"{method.upper()} {path}"


@pytest.mark.parametrize("name", COMPONENTS)
def test_component_schemas_match(reference, ours, name):
    expected = reference["components"]["schemas"][name]
    actual = without_prose(ours["components"]["schemas"][name])
    assert actual.get("properties") == expected.get("properties")
    assert actual.get("required") == expected.get("required")
    assert actual == expected


def test_validation_errors_keep_the_reference_fields(reference, ours):
    # Newer FastAPI documents `input` and `ctx` too; the real server sends them as well.
    expected = reference["components"]["schemas"]["ValidationError"]
    actual = ours["components"]["schemas"]["ValidationError"]
    assert expected["properties"].items() <= actual["properties"].items()
    assert actual["required"] == expected["required"]


def test_bearer_is_declared_as_the_security_scheme(ours):
    assert ours["components"]["securitySchemes"]["HTTPBearer"] == {"type": "http", "scheme": "bearer"}
