"""The sandbox answers as the real server does, row by row of ../shared/syft-space-api.md.

Real HTTP on loopback, status and body per case: models, names, trailing slashes, 405s, 422s,
model types, auth, both tenancy modes, and concurrent creates.
"""

import json
import re
import uuid
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import quote

import pytest

MODELS = "/api/v1/models/"
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?$")  # naive, no offset
TENANT_KEYS = {"id", "name", "display_name", "domain", "is_active", "meta", "created_at", "updated_at"}
MODEL_KEYS = {"id", "name", "dtype", "configuration", "summary", "tags", "created_at", "updated_at"}
OPENAI_CONFIG_SCHEMA = {
    "type": "object",
    "properties": {
        "api_key": {"type": "string", "title": "OpenAI API Key", "description": "Your OpenAI API key"},
        "model": {
            "type": "string",
            "title": "Model",
            "description": "Model to use for chat completions",
            "default": "gpt-3.5-turbo",
        },
        "base_url": {
            "type": "string",
            "title": "Base URL",
            "description": "Custom base URL for OpenAI-compatible APIs (optional)",
            "default": "https://api.openai.com/v1",
        },
        "system_prompt": {
            "type": "string",
            "title": "System Prompt",
            "description": "System prompt to use for chat completions",
            "default": "",
        },
    },
    "required": ["api_key"],
    "order": ["api_key", "model", "base_url"],
}


def item(name):
    # Dots too: httpx resolves "." and ".." path segments away before sending (RFC 3986).
    return MODELS + quote(name, safe="").replace(".", "%2E")


def body(name="m", **fields):
    return {
        "name": name,
        "dtype": "openai",
        "configuration": {"api_key": "sk-1", "model": "gpt-4o"},
        **fields,
    }


def create(http, name="m", headers=None, **fields):
    response = http.post(MODELS, json=body(name, **fields), headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


def detail(response):
    return response.json()["detail"]


# -- models: create, read, list -------------------------------------------------------------


def test_create_answers_201_with_the_model(http):
    response = http.post(MODELS, json=body("gpt", summary="s", tags="a,b"))
    assert response.status_code == 201
    assert response.headers["content-type"] == "application/json"
    model = response.json()
    assert set(model) == MODEL_KEYS  # no connected_endpoints on POST
    assert uuid.UUID(model["id"]).version == 4
    assert TIMESTAMP.match(model["created_at"]) and TIMESTAMP.match(model["updated_at"])
    assert {k: model[k] for k in ("name", "dtype", "summary", "tags")} == {
        "name": "gpt",
        "dtype": "openai",
        "summary": "s",
        "tags": "a,b",
    }
    # Secrets are echoed verbatim (the probed version); configuration is not validated.
    assert model["configuration"] == {"api_key": "sk-1", "model": "gpt-4o"}


def test_get_adds_connected_endpoints_and_list_drops_updated_at(http):
    created = create(http, "gpt")
    got = http.get(item("gpt"))
    assert got.status_code == 200
    assert got.json() == {**created, "connected_endpoints": []}
    listed = http.get(MODELS)
    assert listed.status_code == 200
    expected = {k: v for k, v in created.items() if k != "updated_at"}
    assert listed.json() == [{**expected, "connected_endpoints": []}]


def test_list_is_ordered_by_name_and_ignores_query_parameters(http):
    for name in ("b", "a", "C", "c"):
        create(http, name)
    names = [m["name"] for m in http.get(MODELS, params={"limit": 1, "offset": 2, "name": "a"}).json()]
    assert names == ["C", "a", "b", "c"]


@pytest.mark.parametrize(
    "configuration",
    [{}, {"api_key": 5, "unknown": [1, {"x": None}]}, {"nested": {"deep": "ünï"}, "n": 1.5e300}],
)
def test_configuration_is_stored_and_echoed_as_sent(http, configuration):
    response = http.post(MODELS, json={"name": "m", "dtype": "openai", "configuration": configuration})
    assert response.status_code == 201
    assert response.json()["configuration"] == configuration
    assert http.get(item("m")).json()["configuration"] == configuration


def test_unknown_top_level_fields_are_ignored(http):
    response = http.post(MODELS, json=body(id="not-a-uuid", extra=1, updated_at="x"))
    assert response.status_code == 201
    assert set(response.json()) == MODEL_KEYS and response.json()["id"] != "not-a-uuid"


def test_a_body_without_content_type_is_parsed_as_json(http):
    response = http.post(MODELS, content=json.dumps(body()).encode())
    assert response.status_code == 201


def test_unknown_type_is_400_and_checked_before_the_name(http):
    create(http, "taken")
    response = http.post(MODELS, json={**body("taken"), "dtype": "nope"})
    assert (response.status_code, detail(response)) == (400, "Model type 'nope' not found")


def test_a_taken_name_is_409(http):
    create(http, "m")
    response = http.post(MODELS, json=body("m"))
    assert (response.status_code, detail(response)) == (409, "Model 'm' already exists")


def test_get_of_an_unknown_model_is_404(http):
    response = http.get(item("nope"))
    assert (response.status_code, detail(response)) == (404, "Model 'nope' not found")


# -- 422: FastAPI's shapes, input echoed (api_key included) ----------------------------------


def missing(field, given):
    return {"type": "missing", "loc": ["body", field], "msg": "Field required", "input": given}


def not_a_string(field, given):
    return {
        "type": "string_type",
        "loc": ["body", field],
        "msg": "Input should be a valid string",
        "input": given,
    }


@pytest.mark.parametrize(
    ("sent", "errors"),
    [
        pytest.param(
            {},
            [missing("name", {}), missing("dtype", {}), missing("configuration", {})],
            id="empty-object",
        ),
        pytest.param({**body(), "summary": None}, [not_a_string("summary", None)], id="null-summary"),
        pytest.param({**body(), "tags": None}, [not_a_string("tags", None)], id="null-tags"),
        pytest.param({**body(), "name": 5}, [not_a_string("name", 5)], id="name-not-a-string"),
        pytest.param(
            {**body(), "configuration": "sk-1"},
            [
                {
                    "type": "dict_type",
                    "loc": ["body", "configuration"],
                    "msg": "Input should be a valid dictionary",
                    "input": "sk-1",
                }
            ],
            id="configuration-not-an-object",
        ),
    ],
)
def test_invalid_create_bodies_are_422(http, sent, errors):
    response = http.post(MODELS, json=sent)
    assert response.status_code == 422
    assert detail(response) == errors


def test_a_422_echoes_the_whole_body_with_its_api_key(http):
    sent = {"dtype": "openai", "configuration": {"api_key": "sk-secret"}}
    response = http.post(MODELS, json=sent)
    assert detail(response) == [missing("name", sent)]


def test_invalid_json_points_at_the_character_offset(http):
    response = http.post(MODELS, content=b'{"name": "m",', headers={"content-type": "application/json"})
    assert response.status_code == 422
    (error,) = detail(response)
    assert (error["type"], error["loc"], error["msg"]) == ("json_invalid", ["body", 13], "JSON decode error")


@pytest.mark.parametrize(
    "request_kwargs",
    [
        pytest.param({"content": json.dumps(body()), "headers": {"content-type": "text/plain"}}, id="text"),
        pytest.param({"data": {"name": "m", "dtype": "openai"}}, id="form"),
    ],
)
def test_text_and_form_bodies_are_422(http, request_kwargs):
    response = http.post(MODELS, **request_kwargs)
    assert response.status_code == 422
    (error,) = detail(response)
    assert error["type"] == "model_attributes_type" and error["loc"] == ["body"]
    assert http.get(MODELS).json() == []


# -- PATCH ---------------------------------------------------------------------------------

AT_LEAST_ONE = "Value error, At least one field (name, summary, or tags) must be provided"


@pytest.mark.parametrize(
    "change",
    [
        {"summary": "new"},
        {"tags": "x,y"},
        {"name": "renamed"},
        {"name": "m"},
        {"summary": "new", "dtype": "nope"},
    ],
)
def test_patch_changes_name_summary_tags_only(http, change):
    created = create(http, "m")
    response = http.patch(item("m"), json=change)
    assert response.status_code == 200
    patched = response.json()
    assert set(patched) == MODEL_KEYS  # no connected_endpoints on PATCH
    expected = {**created, **{k: v for k, v in change.items() if k != "dtype"}}
    assert {k: v for k, v in patched.items() if k != "updated_at"} == {
        k: v for k, v in expected.items() if k != "updated_at"
    }
    assert patched["updated_at"] >= created["updated_at"]
    assert http.get(item(patched["name"])).status_code == 200


@pytest.mark.parametrize(
    "change",
    [{}, {"dtype": "anthropic"}, {"configuration": {"api_key": "sk-2"}}, {"name": None, "summary": None}],
)
def test_patch_without_name_summary_or_tags_is_422_before_lookup(http, change):
    response = http.patch(item("does-not-exist"), json=change)
    assert response.status_code == 422
    assert detail(response) == [
        {"type": "value_error", "loc": ["body"], "msg": AT_LEAST_ONE, "input": change, "ctx": {"error": {}}}
    ]


def test_patch_of_an_unknown_model_is_404(http):
    response = http.patch(item("nope"), json={"summary": "s"})
    assert (response.status_code, detail(response)) == (404, "Model 'nope' not found")


def test_renaming_onto_a_taken_name_is_409(http):
    create(http, "a")
    create(http, "b")
    response = http.patch(item("a"), json={"name": "b"})
    assert (response.status_code, detail(response)) == (409, "Model 'b' already exists for this tenant")


# -- DELETE, health, 405 ---------------------------------------------------------------------


def test_delete_answers_a_message_then_404(http):
    create(http, "m")
    response = http.delete(item("m"))
    assert (response.status_code, response.json()) == (200, {"message": "Successfully deleted model 'm'"})
    again = http.delete(item("m"))
    assert (again.status_code, detail(again)) == (404, "Model 'm' not found")


def test_health_is_healthy_without_contacting_a_provider(http):
    create(http, "m", configuration={"api_key": "sk-1", "base_url": "http://127.0.0.1:1"})
    response = http.get(item("m") + "/health")
    assert response.status_code == 200
    assert response.json() == {"status": "healthy", "message": "OpenAI API is accessible"}
    missing_model = http.get(item("nope") + "/health")
    assert (missing_model.status_code, detail(missing_model)) == (404, "Model 'nope' not found")


@pytest.mark.parametrize(
    ("method", "path"),
    [("PUT", "/api/v1/models/m"), ("HEAD", "/api/v1/models/m"), ("DELETE", MODELS), ("HEAD", MODELS)],
)
def test_unsupported_methods_are_405_with_allow(http, method, path):
    create(http, "m")
    response = http.request(method, path)
    assert response.status_code == 405
    assert response.headers["allow"] and method not in response.headers["allow"]
    if method != "HEAD":
        assert detail(response) == "Method Not Allowed"


# -- names: no validation, case-sensitive, percent-encoded round trips -----------------------

ROUND_TRIP_NAMES = [
    " padded ",
    "with space",
    "ünïcødé ✓",
    "50%",
    "what?",
    "hash#tag",
    "x" * 300,
    "a.b",
    ".",
    "..",
]


@pytest.mark.parametrize("name", ROUND_TRIP_NAMES)
def test_names_round_trip_percent_encoded(http, name):
    assert create(http, name)["name"] == name  # not trimmed, not validated
    assert http.get(item(name)).json()["name"] == name
    assert http.patch(item(name), json={"summary": "s"}).status_code == 200
    assert http.get(item(name) + "/health").status_code == 200
    assert http.delete(item(name)).status_code == 200
    assert http.get(MODELS).json() == []


def test_names_are_case_sensitive(http):
    create(http, "A")
    create(http, "a")
    assert [m["name"] for m in http.get(MODELS).json()] == ["A", "a"]
    assert http.get(item("A")).json()["name"] == "A"


@pytest.mark.parametrize(("name", "get_status", "delete_status"), [("a/b", 404, 404), ("", 200, 405)])
def test_names_with_a_slash_or_empty_are_created_but_unreachable(http, name, get_status, delete_status):
    assert create(http, name)["name"] == name
    got = http.get(item(name))
    assert got.status_code == get_status
    if get_status == 404:
        assert detail(got) == "Not Found"  # no route, not "Model ... not found"
    else:
        assert isinstance(got.json(), list)  # the empty name addresses the list
    assert http.delete(item(name)).status_code == delete_status
    assert http.patch(item(name), json={"summary": "s"}).status_code == delete_status
    assert [m["name"] for m in http.get(MODELS).json()] == [name]


# -- trailing slashes ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "target"),
    [
        ("GET", "/api/v1/models", "/api/v1/models/"),
        ("POST", "/api/v1/models", "/api/v1/models/"),
        ("GET", "/api/v1/models/m/", "/api/v1/models/m"),
        ("PATCH", "/api/v1/models/m/", "/api/v1/models/m"),
        ("DELETE", "/api/v1/models/m/", "/api/v1/models/m"),
        ("GET", "/api/v1/models/types/openai/", "/api/v1/models/types/openai"),
        ("GET", "/api/v1/tenants/", "/api/v1/tenants"),
        ("POST", "/api/v1/tenants/", "/api/v1/tenants"),
    ],
)
def test_the_other_slash_form_is_a_307_to_an_absolute_location(http, sandbox, method, path, target):
    create(http, "m")
    response = http.request(method, path, json=body("new") if method == "POST" else {"summary": "s"})
    assert response.status_code == 307
    assert response.headers["location"] == sandbox.url + target
    # Nothing was done: the body must be sent again.
    assert [m["name"] for m in http.get(MODELS).json()] == ["m"]
    assert http.get(item("m")).json()["summary"] == ""


def test_types_without_slash_is_the_model_named_types(http):
    response = http.get("/api/v1/models/types")
    assert (response.status_code, detail(response)) == (404, "Model 'types' not found")
    create(http, "types")
    assert http.get("/api/v1/models/types").json()["name"] == "types"
    assert http.patch("/api/v1/models/types", json={"summary": "s"}).status_code == 200
    # ... but its health route is the types route for a type named "health".
    health = http.get("/api/v1/models/types/health")
    assert (health.status_code, detail(health)) == (404, "Model type 'health' not found")


def test_unknown_paths_are_404(http):
    response = http.get("/api/v1/nothing")
    assert (response.status_code, detail(response)) == (404, "Not Found")


def test_root_redirects_to_docs(http):
    response = http.get("/")
    assert (response.status_code, response.headers["location"]) == (307, "/docs")


# -- model types ----------------------------------------------------------------------------


def test_types_list_the_bundled_dtypes_with_the_real_openai_schema(http):
    response = http.get("/api/v1/models/types/")
    assert response.status_code == 200
    types = response.json()
    assert [t["name"] for t in types] == ["anthropic", "ollama", "openai", "vllm"]
    for info in types:
        assert set(info) == {"name", "description", "config_schema", "icon", "enabled"}
        assert info["enabled"] is True and info["description"] and info["icon"]
        # Our own keywords (writeOnly, $schema, additionalProperties...) stay out, as the real server's.
        text = json.dumps(info["config_schema"])
        assert "writeOnly" not in text and "$schema" not in text and "additionalProperties" not in text
    openai = next(t for t in types if t["name"] == "openai")
    assert openai["config_schema"] == OPENAI_CONFIG_SCHEMA
    assert openai["icon"] == "🤖"


def test_one_type_and_its_bare_schema(http):
    info = http.get("/api/v1/models/types/openai")
    assert info.status_code == 200 and info.json()["name"] == "openai"
    schema = http.get("/api/v1/models/types/openai/schema")
    assert (schema.status_code, schema.json()) == (200, OPENAI_CONFIG_SCHEMA)


@pytest.mark.parametrize("path", ["/api/v1/models/types/OpenAI", "/api/v1/models/types/nope/schema"])
def test_unknown_types_are_404_case_sensitive(http, path):
    name = path.split("/")[5]
    response = http.get(path)
    assert (response.status_code, detail(response)) == (404, f"Model type '{name}' not found")


def test_type_actions_are_not_available(http):
    unknown_type = http.post("/api/v1/models/types/nope/actions/fetch_available_models", json={})
    assert (unknown_type.status_code, detail(unknown_type)) == (404, "Model type 'nope' not found")
    unknown_action = http.post("/api/v1/models/types/openai/actions/fetch_available_models")
    assert unknown_action.status_code == 404
    assert detail(unknown_action) == "Action 'fetch_available_models' not found for model type 'openai'"


def test_a_server_offers_only_its_types(sandbox_factory, http):
    sandbox_factory(types=("openai",))
    assert [t["name"] for t in http.get("/api/v1/models/types/").json()] == ["openai"]
    assert http.get("/api/v1/models/types/anthropic").status_code == 404
    response = http.post(MODELS, json={**body(), "dtype": "anthropic"})
    assert (response.status_code, detail(response)) == (400, "Model type 'anthropic' not found")


# -- auth -----------------------------------------------------------------------------------

TOKEN = "s3cret-admin-key"


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": f"bearer {TOKEN}"},
        {"Authorization": f"Bearer  {TOKEN}"},
        {"Authorization": TOKEN},
        {"Authorization": f"Bearer {TOKEN}x"},
        {"Authorization": f"Basic {TOKEN}"},
        {"X-API-Key": TOKEN},
    ],
    ids=["none", "lowercase", "double-space", "raw", "wrong", "basic", "x-api-key"],
)
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", MODELS),
        ("POST", MODELS),
        ("GET", "/api/v1/models"),  # 401 comes before the 307
        ("GET", "/api/v1/nothing"),  # and before the 404
        ("GET", "/api/v1/models/types/"),
        ("GET", "/api/v1/tenants"),
        ("HEAD", "/api/v1/health"),  # public matching is per method
    ],
)
def test_without_the_exact_bearer_key_is_401(sandbox_factory, http, headers, method, path):
    sandbox_factory(token=TOKEN)
    response = http.request(method, path, headers=headers, json=body() if method == "POST" else None)
    assert response.status_code == 401
    assert "www-authenticate" not in response.headers
    if method != "HEAD":
        assert response.json() == {"detail": "Admin API key required"}


def test_the_exact_bearer_key_passes(sandbox_factory, http):
    sandbox_factory(token=TOKEN)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    assert http.post(MODELS, json=body(), headers=auth).status_code == 201
    assert http.get(MODELS, headers=auth).status_code == 200
    redirect = http.get("/api/v1/models", headers=auth)
    assert redirect.status_code == 307


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/api/v1/health", 200),
        ("GET", "/api/v1/models/m/health", 200),
        ("GET", "/api/v1/models/nope/health", 404),
        ("GET", "/openapi.json", 200),
        ("GET", "/docs", 200),
        ("GET", "/redoc", 200),
        ("GET", "/", 307),
    ],
)
def test_public_routes_need_no_key(sandbox_factory, http, method, path, status):
    sandbox_factory(token=TOKEN)
    assert http.post(MODELS, json=body(), headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 201
    assert http.request(method, path).status_code == status


def test_health_answers_status_and_version(http):
    response = http.get("/api/v1/health")
    assert response.json() == {"status": "healthy", "version": "0.1.0"}


def test_cors_preflights_need_no_key(sandbox_factory, http):
    sandbox_factory(token=TOKEN)
    preflight = {"Origin": "http://localhost:5173", "Access-Control-Request-Method": "POST"}
    assert http.options(MODELS, headers=preflight).status_code == 200
    assert http.options(MODELS).status_code == 401  # a bare OPTIONS is no preflight


def test_a_server_without_key_lets_any_authorization_through(http):
    assert http.get(MODELS, headers={"Authorization": "Bearer whatever"}).status_code == 200


# -- tenancy off (default) ------------------------------------------------------------------


def test_single_tenant_ignores_the_tenant_header(http):
    create(http, "m", headers={"X-Tenant-Name": "acme"})
    assert [m["name"] for m in http.get(MODELS).json()] == ["m"]
    assert [m["name"] for m in http.get(MODELS, headers={"X-Tenant-Name": "other"}).json()] == ["m"]


def test_single_tenant_lists_root_and_refuses_new_tenants(http):
    tenants = http.get("/api/v1/tenants")
    assert tenants.status_code == 200
    (root,) = tenants.json()
    assert set(root) == TENANT_KEYS
    assert (root["name"], root["is_active"], root["domain"]) == ("root", True, None)
    assert http.get("/api/v1/tenants/root").json() == root
    refused = http.post("/api/v1/tenants", json={"name": "acme", "display_name": "Acme"})
    assert refused.status_code == 403
    assert detail(refused) == "Multi-tenancy is disabled. Cannot create new tenants."
    unknown = http.get("/api/v1/tenants/acme")
    assert (unknown.status_code, detail(unknown)) == (404, "Tenant 'acme' not found")


# -- tenancy on -----------------------------------------------------------------------------

HEADER_REQUIRED = "X-Tenant-Name header is required for this endpoint when multi-tenancy is enabled"
TENANT_ROUTES = [
    ("GET", MODELS),
    ("POST", MODELS),
    ("GET", "/api/v1/models/m"),
    ("PATCH", "/api/v1/models/m"),
    ("DELETE", "/api/v1/models/m"),
    ("GET", "/api/v1/models/m/health"),
]


@pytest.fixture
def multi(sandbox_factory, http):
    """A multi-tenant sandbox with tenants acme (active) and old (inactive)."""
    server = sandbox_factory(multi_tenancy=True)
    for name in ("acme", "old"):
        created = http.post("/api/v1/tenants", json={"name": name, "display_name": name.title()})
        assert created.status_code == 201
    server.set_tenant_active("old", False)
    return server


@pytest.mark.parametrize(("method", "path"), TENANT_ROUTES)
@pytest.mark.parametrize(
    ("headers", "status", "message"),
    [
        ({}, 400, HEADER_REQUIRED),
        ({"X-Tenant-Name": ""}, 400, HEADER_REQUIRED),
        ({"X-Tenant-Name": "nope"}, 404, "Tenant 'nope' not found"),
        ({"X-Tenant-Name": "ACME"}, 404, "Tenant 'ACME' not found"),
        ({"X-Tenant-Name": "old"}, 403, "Tenant 'old' is not active"),
    ],
    ids=["missing", "empty", "unknown", "other-case", "inactive"],
)
def test_models_routes_demand_a_valid_active_tenant(multi, http, method, path, headers, status, message):
    sent = body() if method == "POST" else {"summary": "s"} if method == "PATCH" else None
    response = http.request(method, path, headers=headers, json=sent)
    assert (response.status_code, detail(response)) == (status, message)


def test_tenant_checks_come_before_body_validation_but_after_json_parsing(multi, http):
    assert http.post(MODELS, json={}).status_code == 400
    bad_json = http.post(MODELS, content=b"{", headers={"content-type": "application/json"})
    assert bad_json.status_code == 422
    json_type = {"content-type": "application/json"}
    unknown = http.post(MODELS, content=b"{", headers={**json_type, "X-Tenant-Name": "x"})
    assert unknown.status_code == 404


def test_unknown_tenant_comes_before_the_307_and_missing_header_after(multi, http):
    assert http.get("/api/v1/models", headers={"X-Tenant-Name": "nope"}).status_code == 404
    assert http.get("/api/v1/models").status_code == 307


def test_each_tenant_sees_only_its_own_models(multi, http):
    acme, root = {"X-Tenant-Name": "acme"}, {"X-Tenant-Name": "root"}
    a = create(http, "m", headers=acme, summary="acme's")
    r = create(http, "m", headers=root, summary="root's")  # names are unique per tenant only
    assert a["id"] != r["id"]
    assert [m["summary"] for m in http.get(MODELS, headers=acme).json()] == ["acme's"]
    assert http.get(item("m"), headers=root).json()["summary"] == "root's"
    assert http.delete(item("m"), headers=acme).status_code == 200
    assert http.get(item("m"), headers=acme).status_code == 404
    assert http.get(item("m"), headers=root).status_code == 200


def test_types_routes_need_no_tenant(multi, http):
    assert http.get("/api/v1/models/types/").status_code == 200
    assert http.get("/api/v1/models/types/openai/schema").status_code == 200


def test_tenants_api(multi, http):
    created = http.post(
        "/api/v1/tenants",
        json={"name": "beta", "display_name": "Beta", "domain": "beta.example.org", "meta": {"plan": "x"}},
    )
    assert created.status_code == 201
    tenant = created.json()
    assert uuid.UUID(tenant["id"]).version == 4
    assert TIMESTAMP.match(tenant["created_at"]) and TIMESTAMP.match(tenant["updated_at"])
    assert {k: v for k, v in tenant.items() if k not in ("id", "created_at", "updated_at")} == {
        "name": "beta",
        "display_name": "Beta",
        "domain": "beta.example.org",
        "is_active": True,
        "meta": {"plan": "x"},
    }
    assert http.get("/api/v1/tenants/beta").json() == tenant
    assert [t["name"] for t in http.get("/api/v1/tenants").json()] == ["root", "acme", "old", "beta"]
    taken = http.post("/api/v1/tenants", json={"name": "beta", "display_name": "B"})
    assert (taken.status_code, detail(taken)) == (409, "Tenant 'beta' already exists")
    same_domain = {"name": "gamma", "display_name": "G", "domain": "beta.example.org"}
    domain = http.post("/api/v1/tenants", json=same_domain)
    assert (domain.status_code, detail(domain)) == (409, "Domain 'beta.example.org' already in use")
    invalid = http.post("/api/v1/tenants", json={"name": "delta"})
    assert invalid.status_code == 422
    assert http.get("/api/v1/models/", headers={"X-Tenant-Name": "beta"}).json() == []


def test_set_tenant_active_of_an_unknown_tenant_is_a_key_error(multi):
    with pytest.raises(KeyError):
        multi.set_tenant_active("nope", False)


# -- auth and tenants together ----------------------------------------------------------------


def test_auth_comes_before_the_tenant(sandbox_factory, http):
    sandbox_factory(token=TOKEN, multi_tenancy=True)
    response = http.get(MODELS, headers={"X-Tenant-Name": "nope"})
    assert (response.status_code, detail(response)) == (401, "Admin API key required")
    auth = {"Authorization": f"Bearer {TOKEN}"}
    response = http.get(MODELS, headers={**auth, "X-Tenant-Name": "nope"})
    assert (response.status_code, detail(response)) == (404, "Tenant 'nope' not found")
    assert http.get(MODELS, headers={**auth, "X-Tenant-Name": "root"}).status_code == 200
    # The public health route is public but still needs its tenant.
    health = http.get(item("m") + "/health")
    assert (health.status_code, detail(health)) == (400, HEADER_REQUIRED)


# -- concurrency ----------------------------------------------------------------------------


def race(http, count, send):
    """`count` requests at once, each on its own connection (the client's pool holds 100)."""
    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(lambda i: send(http, i), range(count)))


def test_concurrent_creates_of_one_name_give_one_201_and_one_row(sandbox, http):
    responses = race(http, 20, lambda client, _: client.post(MODELS, json=body("same")))
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201] + [409] * 19
    assert {detail(r) for r in responses if r.status_code == 409} == {"Model 'same' already exists"}
    assert [m["name"] for m in http.get(MODELS).json()] == ["same"]
    assert sandbox.model_count() == 1


def test_concurrent_renames_onto_one_name_give_one_200(sandbox, http):
    for i in range(10):
        create(http, f"m{i}")
    responses = race(http, 10, lambda client, i: client.patch(item(f"m{i}"), json={"name": "target"}))
    assert sorted(r.status_code for r in responses) == [200] + [409] * 9
    assert sandbox.model_count() == 10


def test_concurrent_creates_of_distinct_names_all_land(sandbox, http):
    responses = race(http, 16, lambda client, i: client.post(MODELS, json=body(f"m{i:02}")))
    assert {r.status_code for r in responses} == {201}
    assert sandbox.model_count() == 16


# -- odd but valid JSON --------------------------------------------------------------------


def post_raw(http, raw):
    return http.post(MODELS, content=raw, headers={"content-type": "application/json"})


def test_non_finite_numbers_come_back_as_null(http):
    raw = b'{"name": "m", "dtype": "openai", "configuration": {"t": NaN, "l": [-Infinity]}}'
    created = post_raw(http, raw)
    assert created.status_code == 201
    assert created.json()["configuration"] == {"t": None, "l": [None]}
    assert http.get(MODELS).json()[0]["configuration"] == {"t": None, "l": [None]}


def test_nul_characters_round_trip(http):
    created = post_raw(http, b'{"name": "a\\u0000b", "dtype": "openai", "configuration": {"k": "\\u0000"}}')
    assert created.status_code == 201
    assert http.get(item("a\x00b")).json()["configuration"] == {"k": "\x00"}


def test_a_lone_surrogate_cannot_be_stored_and_is_a_plain_500(http, caplog):
    response = post_raw(http, b'{"name": "\\ud800", "dtype": "openai", "configuration": {}}')
    assert (response.status_code, response.text) == (500, "Internal Server Error")
    assert not [r for r in caplog.records if r.levelno >= 40]
    assert http.get(MODELS).json() == []
