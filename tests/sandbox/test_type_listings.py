"""The dataset and policy type listings are the recorded server's (../shared/syft-space-types/), and
the bundled schemas/datasets/ and schemas/policies/ agree with them: each file's `properties` and
`required` are the published ones, its `allOf` and `$defs` add only what the server checks beyond
them, and offline validation accepts and refuses what the sandbox (the server's checks) does."""

import json
from pathlib import Path

import pytest

from reconciler.kinds.validate import dataset_registry, policy_registry
from reconciler.sandbox import bundled
from reconciler.schemas import bundled_schema_dir
from tests.sandbox.kinds import DATASETS, POLICIES, WEAVIATE, WORDPRESS, endpoint

RECORDED = Path(__file__).resolve().parents[2].parent / "shared" / "syft-space-types"
LISTINGS = [("datasets", "datasets-types.json"), ("policies", "policies-types.json")]


def recorded(file):
    path = RECORDED / file
    if not path.is_file():  # the facts live beside the checkout (../shared), as in CI
        pytest.skip(f"{path} is not there")
    return json.loads(path.read_text(encoding="utf-8"))


def wire(body):
    """The bytes a FastAPI server sends for this body (JSONResponse's own dumps)."""
    return json.dumps(body, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":")).encode()


@pytest.mark.parametrize(("kind", "file"), LISTINGS)
def test_the_listing_is_the_recorded_one_byte_for_byte(http, kind, file):
    expected = recorded(file)
    response = http.get(f"/api/v1/{kind}/types/")
    assert response.status_code == 200
    assert response.content == wire(expected)  # order of types, of keys and of properties too
    for item in expected:
        assert http.get(f"/api/v1/{kind}/types/{item['name']}").content == wire(item)
        assert http.get(f"/api/v1/{kind}/types/{item['name']}/schema").content == wire(item["config_schema"])


def test_the_openai_model_type_publishes_the_recorded_schema(http):
    (expected,) = recorded("models-types.json")
    served = http.get("/api/v1/models/types/openai").json()
    assert wire(served["config_schema"]) == wire(expected["config_schema"])
    assert served["icon"] == expected["icon"]


# -- how a bundled file relates to its listing --------------------------------------------------

OURS = {"$schema", "$id", "title", "description", "type", "additionalProperties", "$defs", "allOf"}


@pytest.mark.parametrize(("kind", "file"), LISTINGS)
def test_each_file_is_its_listing_plus_our_keywords(kind, file):
    for item in recorded(file):
        schema = json.loads(
            (bundled_schema_dir() / kind / f"{item['name']}.json").read_text(encoding="utf-8")
        )
        assert bundled.published_kind_schema(schema) == item["config_schema"]
        assert set(schema) - {"properties", "required"} <= OURS
        assert (schema["type"], schema["additionalProperties"]) == ("object", False)
        for part in schema.get("allOf", []):
            # a server's check of a published field: a type repeated, a pattern, a default it fills in
            assert set(part) <= {"description", "properties"} and part["description"]
            for name, extra in part["properties"].items():
                assert name in schema["properties"] and set(extra) <= {"type", "pattern", "default"}
                assert extra.get("type", schema["properties"][name].get("type")) == schema["properties"][
                    name
                ].get("type")


def test_every_published_ref_resolves_in_the_files_defs():
    schema = json.loads((bundled_schema_dir() / "datasets" / "remote_weaviate.json").read_text())
    refs = [b["$ref"] for b in schema["properties"]["filters"]["anyOf"][0]["oneOf"]]
    assert refs == ["#/$defs/FilterCondition", "#/$defs/FilterGroup"]
    assert [r.removeprefix("#/$defs/") for r in refs] == list(schema["$defs"])


# -- offline validation and the server's checks agree -------------------------------------------

W, P = WEAVIATE, WORDPRESS
DATASET_CASES = [
    ("remote_weaviate", W, True),
    ("remote_weaviate", {k: v for k, v in W.items() if k != "api_key"}, False),
    ("remote_weaviate", {**W, "http_url": "not a url"}, False),
    ("remote_weaviate", {**W, "http_url": ""}, False),
    ("remote_weaviate", {**W, "grpc_url": "grpc://weaviate.invalid:50051"}, False),
    ("remote_weaviate", {**W, "headers": {"X-OpenAI-Api-Key": "k"}}, True),
    ("remote_weaviate", {**W, "headers": None}, True),
    ("remote_weaviate", {**W, "headers": {"X": 1}}, False),
    ("remote_weaviate", {**W, "default_similarity_threshold": 0.7}, True),
    ("remote_weaviate", {**W, "default_similarity_threshold": "high"}, False),
    ("remote_weaviate", {**W, "content_property": None, "metadata_properties": ["title"]}, True),
    ("remote_weaviate", {**W, "content_property": 5}, False),
    ("remote_weaviate", {**W, "metadata_properties": "title"}, False),
    ("remote_weaviate", {**W, "filters": {"type": "condition", "path": ["x"], "operator": "Equal"}}, True),
    ("remote_weaviate", {**W, "filters": {"type": "group", "operator": "And", "filters": []}}, True),
    ("remote_weaviate", {**W, "filters": None}, True),
    ("remote_weaviate", {**W, "filters": {"type": "bogus"}}, False),
    ("remote_weaviate", {**W, "filters": {"path": ["x"]}}, False),
    ("remote_weaviate", {**W, "filters": 5}, False),
    ("local_file", {"collectionName": "docs_2"}, True),
    ("local_file", {"collectionName": "docs", "ingestFileTypeOptions": [".pdf"], "httpPort": 9999}, True),
    ("local_file", {"collectionName": "a-b"}, False),
    ("local_file", {"collectionName": 5}, False),
    ("local_file", {"collectionName": "docs", "httpPort": "x"}, False),
    ("local_file", {"collectionName": "docs", "ingestFileTypeOptions": ".pdf"}, False),
    ("wordpress", P, True),
    ("wordpress", {**P, "pollIntervalSeconds": 10, "userAgent": "bot/1"}, True),
    ("wordpress", {k: v for k, v in P.items() if k != "username"}, False),
    ("wordpress", {**P, "pollIntervalSeconds": 0}, False),
    ("wordpress", {**P, "userAgent": 5}, False),
    ("wordpress", {**P, "collectionName": "my blog"}, False),
]


def offline_ok(registry, name, configuration):
    return not list(registry.get(name).errors(configuration))


@pytest.mark.parametrize(("dtype", "configuration", "accepted"), DATASET_CASES)
def test_datasets_offline_and_server_agree(http, dtype, configuration, accepted):
    assert offline_ok(dataset_registry(), dtype, configuration) is accepted
    response = http.post(DATASETS, json={"name": "d", "dtype": dtype, "configuration": configuration})
    assert response.status_code == (201 if accepted else 400), response.text
    if not accepted:
        assert response.json()["detail"].startswith("Invalid configuration: Invalid configuration: ")


POLICY_CASES = [
    ("access", {}, True),
    ("access", {"allowed_users": ["*@company.com"], "denied_users": ["banned@*"]}, True),
    ("access", {"allowed_users": "*"}, False),
    ("access", {"denied_users": [1]}, False),
    ("rate_limit", {"limit": "5/m"}, True),
    ("rate_limit", {"limit": "1000/h", "scope": "global", "applied_to": ["a@b.c"]}, True),
    ("rate_limit", {}, False),
    ("rate_limit", {"limit": "5/x"}, False),
    ("rate_limit", {"limit": "0/s"}, False),
    ("rate_limit", {"limit": "5/m", "scope": "both"}, False),
    ("rate_limit", {"limit": "5/m", "applied_to": "*"}, False),
]


@pytest.mark.parametrize(("policy_type", "configuration", "accepted"), POLICY_CASES)
def test_policies_offline_and_server_agree(http, policy_type, configuration, accepted):
    assert offline_ok(policy_registry(), policy_type, configuration) is accepted
    body = {
        "name": "p",
        "policy_type": policy_type,
        "configuration": configuration,
        "endpoint_id": endpoint(http)["id"],
    }
    response = http.post(POLICIES, json=body)
    assert response.status_code == (201 if accepted else 400), response.text


def test_what_the_server_fills_in_is_what_the_files_allof_says(http):
    bot = endpoint(http)["id"]
    made = {
        t: http.post(
            POLICIES, json={"name": t, "policy_type": t, "configuration": c, "endpoint_id": bot}
        ).json()["configuration"]
        for t, c in (("access", {}), ("rate_limit", {"limit": "5/m"}))
    }
    assert made == {
        "access": {"allowed_users": [], "denied_users": []},
        "rate_limit": {"limit": "5/m", "scope": "per_user", "applied_to": ["*"]},
    }


@pytest.mark.parametrize(
    ("dtype", "configuration", "offline", "server"),
    [
        # Where offline validation is stricter than the server, on purpose:
        ("local_file", {}, False, True),  # required as published; the server makes a name up
        ("local_file", {"collectionName": "d", "typo": 1}, False, True),  # closed: typos caught
        ("wordpress", {**P, "httpPort": "8100"}, False, True),  # no lax "8100" -> 8100 offline
    ],
)
def test_the_deliberate_differences(http, dtype, configuration, offline, server):
    assert offline_ok(dataset_registry(), dtype, configuration) is offline
    response = http.post(DATASETS, json={"name": "d", "dtype": dtype, "configuration": configuration})
    assert (response.status_code == 201) is server
