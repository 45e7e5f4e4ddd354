"""The sandbox's datasets answer as ../shared/syft-space-api-kinds.md records, "Datasets"."""

import json
import re
from urllib.parse import quote

import pytest

from tests.sandbox.kinds import DATASETS, WEAVIATE, WORDPRESS, dataset, detail, endpoint, race, without

OBJECT_KEYS = [
    "id",
    "name",
    "dtype",
    "configuration",
    "summary",
    "tags",
    "provisioner_state",
    "created_at",
    "updated_at",
    "connected_endpoints",
]
LIST_KEYS = [
    "id",
    "name",
    "dtype",
    "summary",
    "tags",
    "created_at",
    "connected_endpoints",
    "provisioner_status",
    "configuration",
    "selected_items_count",
    "selected_items_preview",
]


def item(name):
    return DATASETS + quote(name, safe="")


# -- create, read, list -------------------------------------------------------------------------


def test_create_stores_a_weaviate_configuration_as_sent_and_echoes_its_secrets(http):
    sent = {**WEAVIATE, "headers": {"X-OpenAI-Api-Key": "hdr-canary"}, "unknown": [1]}
    response = http.post(DATASETS, json={"name": "hb", "dtype": "remote_weaviate", "configuration": sent})
    assert response.status_code == 201
    body = response.json()
    assert list(body) == OBJECT_KEYS
    # Unknown keys kept, defaults (default_similarity_threshold) not filled, secrets echoed.
    assert body["configuration"] == sent
    assert (body["summary"], body["tags"], body["provisioner_state"], body["connected_endpoints"]) == (
        "",
        "",
        None,
        [],
    )
    assert http.get(item("hb")).json() == body


def test_list_items_have_their_own_shape_ordered_by_name(http):
    picks = [
        {"item_id": "a", "description": "first"},
        {"item_id": "a"},
        {"item_id": "b"},
        {"item_id": "c"},
        {"item_id": "d"},
    ]
    dataset(http, "zeta")
    made = dataset(http, "Alpha", selected_items=picks, summary="s", tags="x,y")
    listed = http.get(DATASETS).json()
    assert [d["name"] for d in listed] == ["Alpha", "zeta"]
    first = listed[0]
    assert list(first) == LIST_KEYS  # no updated_at, no provisioner_state
    assert without(
        first, "connected_endpoints", "provisioner_status", "selected_items_count", "selected_items_preview"
    ) == without(made, "updated_at", "provisioner_state", "connected_endpoints")
    assert first["provisioner_status"] is None
    # Duplicates collapse (the first pick stays); the preview is the first three picks.
    assert first["selected_items_count"] == 4
    preview = first["selected_items_preview"]
    assert [(p["item_id"], p["description"]) for p in preview] == [("a", "first"), ("b", None), ("c", None)]


def test_names_are_not_validated_and_are_case_sensitive(http):
    for name in ("My Data Set", "my data set", " padded ", "x" * 300):
        dataset(http, name)
    assert http.get(item("My Data Set")).json()["name"] == "My Data Set"
    assert len(http.get(DATASETS).json()) == 4


def test_unknown_top_level_fields_are_ignored(http):
    body = {"name": "hb", "dtype": "remote_weaviate", "configuration": WEAVIATE, "id": "x", "created_at": "y"}
    made = http.post(DATASETS, json=body).json()
    assert made["id"] != "x" and made["created_at"] != "y"


# -- create errors, in the server's order -------------------------------------------------------


def test_an_unknown_type_is_400_case_sensitive_and_checked_before_the_configuration(http):
    response = http.post(DATASETS, json={"name": "hb", "dtype": "Remote_weaviate", "configuration": {}})
    assert (response.status_code, detail(response)) == (400, "Dataset type 'Remote_weaviate' not found")


def test_an_invalid_configuration_is_400_quoting_the_value(http):
    sent = {**WEAVIATE, "api_key": 12345}
    response = http.post(DATASETS, json={"name": "hb", "dtype": "remote_weaviate", "configuration": sent})
    assert response.status_code == 400
    message = detail(response)
    assert message.startswith("Invalid configuration: Invalid configuration: 1 validation error for ")
    assert "api_key" in message and "input_value=12345" in message


def test_a_missing_field_quotes_the_whole_configuration(http):
    sent = without(WEAVIATE, "collection_name")
    response = http.post(DATASETS, json={"name": "hb", "dtype": "remote_weaviate", "configuration": sent})
    assert response.status_code == 400
    assert "collection_name\n  Field required" in detail(response)
    assert "wv-secret-canary" in detail(response)  # why a client must never print these bodies


def test_the_configuration_is_checked_before_the_name(http):
    dataset(http, "hb")
    response = http.post(DATASETS, json={"name": "hb", "dtype": "remote_weaviate", "configuration": {}})
    assert response.status_code == 400


def test_a_taken_name_is_409(http):
    dataset(http, "hb")
    response = http.post(DATASETS, json={"name": "hb", "dtype": "remote_weaviate", "configuration": WEAVIATE})
    assert (response.status_code, detail(response)) == (409, "Dataset 'hb' already exists")


@pytest.mark.parametrize(
    ("field", "value", "error_type"),
    [
        ("summary", None, "string_type"),
        ("tags", None, "string_type"),
        ("selected_items", [{"item_id": ""}], "string_too_short"),
        ("configuration", "x", "dict_type"),
    ],
)
def test_invalid_create_bodies_are_422(http, field, value, error_type):
    body = {"name": "hb", "dtype": "remote_weaviate", "configuration": WEAVIATE, field: value}
    response = http.post(DATASETS, json=body)
    assert response.status_code == 422
    (error,) = detail(response)
    assert error["type"] == error_type and error["loc"][:2] == ["body", field]


# -- PATCH ----------------------------------------------------------------------------------------

AT_LEAST_ONE = "Value error, At least one field (name, summary, or tags) must be provided"


@pytest.mark.parametrize(
    "change",
    [
        {"summary": "new"},
        {"tags": "a,b"},
        {"name": "renamed"},
        {"name": "hb"},
        {"summary": "new", "configuration": {"api_key": "other"}, "dtype": "wordpress"},
    ],
)
def test_patch_changes_name_summary_tags_only(http, change):
    made = dataset(http, "hb")
    response = http.patch(item("hb"), json=change)
    assert response.status_code == 200
    patched = response.json()
    assert list(patched) == OBJECT_KEYS
    kept = {k: v for k, v in change.items() if k in ("name", "summary", "tags")}
    assert without(patched, "updated_at") == {**without(made, "updated_at"), **kept}
    assert patched["updated_at"] >= made["updated_at"]


@pytest.mark.parametrize("change", [{}, {"configuration": {}}, {"dtype": "wordpress"}, {"summary": None}])
def test_patch_without_name_summary_or_tags_is_422_before_lookup(http, change):
    response = http.patch(item("nope"), json=change)
    assert response.status_code == 422
    assert [e["msg"] for e in detail(response)] == [AT_LEAST_ONE]


def test_patch_of_an_unknown_dataset_is_404_and_a_taken_name_409(http):
    response = http.patch(item("nope"), json={"summary": "s"})
    assert (response.status_code, detail(response)) == (404, "Dataset 'nope' not found")
    dataset(http, "a")
    dataset(http, "b")
    taken = http.patch(item("a"), json={"name": "b"})
    assert (taken.status_code, detail(taken)) == (409, "Dataset 'b' already exists for this tenant")


# -- DELETE ---------------------------------------------------------------------------------------


def test_delete_answers_a_message_then_404(http):
    dataset(http, "hb")
    response = http.delete(item("hb"))
    assert (response.status_code, response.json()) == (200, {"message": "Successfully deleted dataset 'hb'"})
    again = http.delete(item("hb"))
    assert (again.status_code, detail(again)) == (404, "Dataset 'hb' not found")


def test_deleting_a_used_dataset_is_409_naming_the_endpoints_display_names(http):
    used = dataset(http, "d1")
    endpoint(http, "first", dataset_id=used["id"], name="N")
    endpoint(http, "second", dataset_id=used["id"], name="Second on d1")
    response = http.delete(item("d1"))
    assert response.status_code == 409
    assert detail(response) == (
        "Cannot delete data source 'd1': it is used by 2 API(s): 'N', 'Second on d1'. "
        "Remove it from those APIs first."
    )
    got = http.get(item("d1")).json()
    assert [e["slug"] for e in got["connected_endpoints"]] == ["first", "second"]
    assert http.delete("/api/v1/endpoints/first").status_code == 200
    assert http.delete("/api/v1/endpoints/second").status_code == 200
    assert http.delete(item("d1")).status_code == 200


# -- the chroma types: local_file and wordpress ---------------------------------------------------


def test_local_file_gets_a_generated_collection_name_and_the_provisioners_port(http):
    made = dataset(http, "files", "local_file", {"httpPort": 9999, "filePaths": ["/old/way"]})
    configuration = made["configuration"]
    assert re.fullmatch(r"[0-9a-f]{32}", configuration["collectionName"])
    assert configuration["httpPort"] == 8100  # 9999 sent, overwritten
    assert configuration["filePaths"] == ["/old/way"]  # stored, not checked
    state = made["provisioner_state"]
    assert list(state) == ["status", "state", "started_at", "stopped_at", "error"]
    assert state["status"] == "running" and state["error"] is None
    assert set(state["state"]) == {"pid", "pid_file", "data_path", "httpPort"}
    assert state["state"]["httpPort"] == 8100
    listed = http.get(DATASETS).json()[0]
    assert listed["provisioner_status"] == {"status": "running", "error": None}
    # Deleted with a 200, although the real server's vector-store clean-up fails.
    assert http.delete(item("files")).status_code == 200


def test_a_sent_collection_name_is_kept_and_checked(http):
    assert dataset(http, "files", "local_file", {"collectionName": "docs_1"})["configuration"] == {
        "collectionName": "docs_1",
        "httpPort": 8100,
    }
    bad = http.post(
        DATASETS, json={"name": "x", "dtype": "local_file", "configuration": {"collectionName": "a-b"}}
    )
    assert bad.status_code == 400 and "collectionName" in detail(bad)


def test_wordpress_password_is_stored_but_never_sent_back(http):
    made = dataset(http, "blog", "wordpress")
    assert made["configuration"] == {**without(WORDPRESS, "applicationPassword"), "httpPort": 8100}
    assert "applicationPassword" not in http.get(item("blog")).json()["configuration"]
    assert "wp-secret-canary" not in http.get(DATASETS).text
    bot = endpoint(http, "bot", dataset_id=made["id"])
    assert "wp-secret-canary" not in http.get("/api/v1/endpoints/bot").text
    assert "wp-secret-canary" not in http.get("/api/v1/endpoints/").text
    assert bot["dataset_id"] == made["id"]


def test_wordpress_requires_its_fields(http):
    sent = without(WORDPRESS, "username")
    response = http.post(DATASETS, json={"name": "blog", "dtype": "wordpress", "configuration": sent})
    assert response.status_code == 400 and "username\n  Field required" in detail(response)


NO_CHROMA = "Failed to start provisioner for 'chromadb_local': [Errno 2] No such file or directory: 'chroma'"


@pytest.mark.parametrize(("dtype", "configuration"), [("local_file", {}), ("wordpress", WORDPRESS)])
def test_without_chroma_the_chroma_types_are_500_and_nothing_is_stored(
    sandbox_factory, http, dtype, configuration
):
    sandbox_factory(provisioner="missing")
    body = {"name": "d", "dtype": dtype, "configuration": configuration}
    for _ in range(2):  # retrying gives the same 500
        response = http.post(DATASETS, json=body)
        assert (response.status_code, detail(response)) == (500, NO_CHROMA)
    assert http.get(DATASETS).json() == []
    # Validation still comes first, and remote_weaviate needs no provisioner.
    invalid = http.post(DATASETS, json={**body, "configuration": {"collectionName": "a b"}})
    assert invalid.status_code == 400
    assert dataset(http, "hb")["provisioner_state"] is None


# -- types ----------------------------------------------------------------------------------------


def test_three_types_ordered_by_name_with_bare_schemas(http):
    types = http.get(DATASETS + "types/").json()
    assert [t["name"] for t in types] == ["local_file", "remote_weaviate", "wordpress"]
    for info in types:
        assert list(info) == [
            "name",
            "description",
            "config_schema",
            "icon",
            "enabled",
            "browse_schema",
            "browsable",
        ]
        assert info["enabled"] is False  # the recorded server had no client libraries
        assert list(info["config_schema"]) == ["properties", "required"]
        assert "writeOnly" not in json.dumps(info)
    weaviate = types[1]
    assert weaviate["browsable"] is False
    assert weaviate["config_schema"]["required"] == ["http_url", "grpc_url", "api_key", "collection_name"]
    assert weaviate["config_schema"]["properties"]["headers"]["secret"] is True
    assert weaviate["config_schema"]["properties"]["default_similarity_threshold"]["default"] == 0.5
    wordpress = types[2]["config_schema"]
    assert wordpress["properties"]["applicationPassword"]["format"] == "password"
    assert wordpress["properties"]["pollIntervalSeconds"]["default"] == 300
    assert wordpress["properties"]["userAgent"]["default"] == "curl/8.7.1"
    assert "filePaths" not in types[0]["config_schema"]["properties"]


def test_one_type_its_schema_and_404s(http):
    one = http.get(DATASETS + "types/wordpress")
    assert one.status_code == 200 and one.json()["name"] == "wordpress"
    schema = http.get(DATASETS + "types/wordpress/schema")
    assert schema.json() == one.json()["config_schema"]
    for path in ("types/chromadb_local", "types/Wordpress/schema"):
        name = path.split("/")[1]
        missing = http.get(DATASETS + path)
        assert (missing.status_code, detail(missing)) == (404, f"Dataset type '{name}' not found")
    # Without the slash it is the dataset named `types`.
    named = http.get("/api/v1/datasets/types")
    assert (named.status_code, detail(named)) == (404, "Dataset 'types' not found")


# -- health, selection ------------------------------------------------------------------------------


def test_health_is_public_and_contacts_nothing(sandbox_factory, http):
    sandbox_factory(token="t")
    auth = {"Authorization": "Bearer t"}
    dataset(http, "hb", headers=auth)
    response = http.get(item("hb") + "/health")
    assert response.status_code == 200
    assert response.json() == {
        "dataset_type_status": "unhealthy",
        "provisioner_status": None,
        "message": "Dataset type healthcheck: Weaviate dependencies not installed. ",
    }
    missing = http.get(item("nope") + "/health")
    assert (missing.status_code, detail(missing)) == (404, "Dataset 'nope' not found")


def test_selection_pages_and_ids(http):
    dataset(http, "hb", selected_items=[{"item_id": i} for i in "abcd"])
    page = http.get(item("hb") + "/selection", params={"limit": 2, "offset": 1}).json()
    assert ([i["item_id"] for i in page["items"]], page["total"]) == (["b", "c"], 4)
    assert http.get(item("hb") + "/selection/ids").json() == {"item_ids": ["a", "b", "c", "d"]}
    assert http.get(item("hb") + "/selection", params={"limit": 0}).status_code == 422
    assert http.get(item("nope") + "/selection/ids").status_code == 404


# -- routing, tenancy, races ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "target"),
    [
        ("GET", "/api/v1/datasets", "/api/v1/datasets/"),
        ("POST", "/api/v1/datasets", "/api/v1/datasets/"),
        ("GET", "/api/v1/datasets/hb/", "/api/v1/datasets/hb"),
        ("GET", DATASETS + "types", None),
    ],
)
def test_the_other_slash_form_is_a_307(http, sandbox, method, path, target):
    response = http.request(method, path, json={})
    if target is None:
        assert response.status_code == 404  # the dataset named types
    else:
        assert (response.status_code, response.headers["location"]) == (307, sandbox.url + target)


def test_put_on_an_item_is_405(http):
    dataset(http, "hb")
    assert http.put(item("hb"), json={}).status_code == 405


def test_datasets_are_tenant_scoped(sandbox_factory, http):
    sandbox_factory(multi_tenancy=True)
    assert http.post("/api/v1/tenants", json={"name": "acme", "display_name": "Acme"}).status_code == 201
    missing = http.get(DATASETS)
    assert (missing.status_code, detail(missing)) == (
        400,
        "X-Tenant-Name header is required for this endpoint when multi-tenancy is enabled",
    )
    unknown = http.get(DATASETS, headers={"X-Tenant-Name": "nope"})
    assert (unknown.status_code, detail(unknown)) == (404, "Tenant 'nope' not found")
    acme, root = {"X-Tenant-Name": "acme"}, {"X-Tenant-Name": "root"}
    dataset(http, "hb", headers=acme)
    dataset(http, "hb", headers=root)  # unique per tenant only
    assert http.delete(item("hb"), headers=acme).status_code == 200
    assert [d["name"] for d in http.get(DATASETS, headers=root).json()] == ["hb"]
    assert http.get(DATASETS + "types/", headers={}).status_code == 200  # types need no tenant


def test_concurrent_creates_of_one_name_store_one_row(http):
    body = {"name": "same", "dtype": "remote_weaviate", "configuration": WEAVIATE}
    responses = race(http, 8, lambda client, _: client.post(DATASETS, json=body))
    assert sorted(r.status_code for r in responses) == [201] + [409] * 7
    assert len(http.get(DATASETS).json()) == 1


def test_the_race_knob_makes_losers_plain_500s(sandbox_factory, http):
    sandbox_factory(race_500_rate=1.0)
    dataset(http, "hb")
    response = http.post(DATASETS, json={"name": "hb", "dtype": "remote_weaviate", "configuration": WEAVIATE})
    assert (response.status_code, response.text) == (500, "Internal Server Error")
    assert response.headers["connection"] == "close"
