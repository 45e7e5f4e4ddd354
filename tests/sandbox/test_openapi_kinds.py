"""The sandbox's /openapi.json for the datasets, endpoints and policies routes: every recorded route is
there, and what each route sends validates against the schema it declares."""

import jsonschema
import pytest

from tests.sandbox.kinds import DATASETS, ENDPOINTS, POLICIES, dataset, endpoint, model, policy

# Every route of syft-space-api-kinds.md the sandbox serves, with its method.
ROUTES = [
    ("get", "/api/v1/datasets/"),
    ("post", "/api/v1/datasets/"),
    ("get", "/api/v1/datasets/{name}"),
    ("patch", "/api/v1/datasets/{name}"),
    ("delete", "/api/v1/datasets/{name}"),
    ("get", "/api/v1/datasets/{name}/health"),
    ("get", "/api/v1/datasets/{name}/selection"),
    ("get", "/api/v1/datasets/{name}/selection/ids"),
    ("post", "/api/v1/datasets/{name}/selection"),
    ("delete", "/api/v1/datasets/{name}/selection"),
    ("get", "/api/v1/datasets/types/"),
    ("get", "/api/v1/datasets/types/{name}"),
    ("get", "/api/v1/datasets/types/{name}/schema"),
    ("get", "/api/v1/endpoints/"),
    ("post", "/api/v1/endpoints/"),
    ("get", "/api/v1/endpoints/{slug}"),
    ("patch", "/api/v1/endpoints/{slug}"),
    ("delete", "/api/v1/endpoints/{slug}"),
    ("post", "/api/v1/endpoints/{slug}/archive"),
    ("post", "/api/v1/endpoints/{slug}/unarchive"),
    ("post", "/api/v1/endpoints/{slug}/publish"),
    ("delete", "/api/v1/endpoints/{slug}/unpublish"),
    ("post", "/api/v1/endpoints/validate-slug"),
    ("post", "/api/v1/endpoints/{slug}/query"),
    ("get", "/api/v1/policies/"),
    ("post", "/api/v1/policies/"),
    ("get", "/api/v1/policies/{policy_id}"),
    ("patch", "/api/v1/policies/{policy_id}"),
    ("delete", "/api/v1/policies/{policy_id}"),
    ("get", "/api/v1/policies/types/"),
    ("get", "/api/v1/policies/types/{name}"),
    ("get", "/api/v1/policies/types/{name}/schema"),
]


@pytest.fixture
def spec(http):
    return http.get("/openapi.json").json()


def operation(spec, method, path):
    return spec["paths"][path][method]


def response_validator(spec, method, path, status):
    declared = operation(spec, method, path)["responses"][str(status)]["content"]["application/json"][
        "schema"
    ]
    # Refs are "#/components/schemas/X": resolvable with the components at the root.
    return jsonschema.Draft202012Validator({**declared, "components": spec["components"]})


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_every_recorded_route_is_declared_with_the_bearer_scheme(spec, method, path):
    declared = operation(spec, method, path)
    assert declared["security"] == [{"HTTPBearer": []}]
    assert declared["tags"] == [path.split("/")[3]]


@pytest.mark.parametrize(
    ("path", "request_body", "created"),
    [
        ("/api/v1/datasets/", "CreateDatasetRequest", "DatasetResponse"),
        ("/api/v1/endpoints/", "CreateEndpointRequest", "EndpointCreateResponse"),
        ("/api/v1/policies/", "CreatePolicyRequest", "PolicyResponse"),
    ],
)
def test_creates_declare_their_body_and_a_201(spec, path, request_body, created):
    declared = operation(spec, "post", path)
    assert declared["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": f"#/components/schemas/{request_body}"
    }
    assert declared["responses"]["201"]["content"]["application/json"]["schema"] == {
        "$ref": f"#/components/schemas/{created}"
    }


def test_policy_ids_are_declared_as_uuids(spec):
    (parameter,) = operation(spec, "get", "/api/v1/policies/{policy_id}")["parameters"]
    assert parameter["schema"]["format"] == "uuid"


def test_the_models_connected_endpoint_item_keeps_its_name(spec):
    # The endpoints' own list item is EndpointListEntry, so the models routes' component is untouched.
    assert set(spec["components"]["schemas"]["EndpointListItem"]["properties"]) == {"id", "name", "slug"}
    assert all("__" not in name for name in spec["components"]["schemas"])


def test_what_each_route_sends_validates_against_what_it_declares(http, spec):
    gpt = model(http)
    hb = dataset(http, "hb", selected_items=[{"item_id": "a"}])
    dataset(http, "files", "local_file")
    bot = endpoint(http, "bot", model_id=gpt["id"], dataset_id=hb["id"])
    rule = policy(http, bot["id"])
    calls = [
        ("get", "/api/v1/datasets/", DATASETS, None, 200),
        ("get", "/api/v1/datasets/{name}", DATASETS + "files", None, 200),
        ("patch", "/api/v1/datasets/{name}", DATASETS + "hb", {"summary": "s"}, 200),
        ("get", "/api/v1/datasets/{name}/health", DATASETS + "files/health", None, 200),
        ("get", "/api/v1/datasets/{name}/selection", DATASETS + "hb/selection", None, 200),
        ("get", "/api/v1/datasets/{name}/selection/ids", DATASETS + "hb/selection/ids", None, 200),
        (
            "post",
            "/api/v1/datasets/{name}/selection",
            DATASETS + "hb/selection",
            {"items": [{"item_id": "b"}]},
            200,
        ),
        ("delete", "/api/v1/datasets/{name}/selection", DATASETS + "hb/selection", {"item_ids": ["a"]}, 200),
        ("get", "/api/v1/datasets/types/", DATASETS + "types/", None, 200),
        ("get", "/api/v1/endpoints/", ENDPOINTS, None, 200),
        ("get", "/api/v1/endpoints/{slug}", ENDPOINTS + "bot", None, 200),
        ("patch", "/api/v1/endpoints/{slug}", ENDPOINTS + "bot", {"system_prompt": "p"}, 200),
        ("post", "/api/v1/endpoints/{slug}/archive", ENDPOINTS + "bot/archive", None, 200),
        ("post", "/api/v1/endpoints/validate-slug", ENDPOINTS + "validate-slug", {"slug": "x"}, 200),
        ("get", "/api/v1/policies/", POLICIES, None, 200),
        ("get", "/api/v1/policies/{policy_id}", POLICIES + rule["id"], None, 200),
        ("patch", "/api/v1/policies/{policy_id}", POLICIES + rule["id"], {"name": "n"}, 200),
        ("get", "/api/v1/policies/types/", POLICIES + "types/", None, 200),
        ("delete", "/api/v1/policies/{policy_id}", POLICIES + rule["id"], None, 200),
        ("delete", "/api/v1/endpoints/{slug}", ENDPOINTS + "bot", None, 200),
        ("delete", "/api/v1/datasets/{name}", DATASETS + "hb", None, 200),
    ]
    for method, template, url, body, status in calls:
        response = http.request(method, url, json=body)
        assert response.status_code == status, (method, url, response.text)
        errors = list(response_validator(spec, method, template, status).iter_errors(response.json()))
        assert errors == [], (method, url, [e.message for e in errors])
    sent = {"dataset": bot, "policy": rule}
    for path, name in (("/api/v1/endpoints/", "dataset"), ("/api/v1/policies/", "policy")):
        validator = response_validator(spec, "post", path, 201)
        assert list(validator.iter_errors(sent[name])) == []
