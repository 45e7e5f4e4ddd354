"""The sandbox's endpoints answer as ../shared/syft-space-api-kinds.md records, "Endpoints" and
"References and what deletes do"."""

import uuid

import pytest

from tests.sandbox.kinds import (
    ENDPOINTS,
    MODELS,
    created,
    dataset,
    detail,
    endpoint,
    model,
    policy,
    race,
    without,
)

COMMON = [
    "id",
    "name",
    "slug",
    "description",
    "summary",
    "response_type",
    "published",
    "tags",
    "system_prompt",
    "created_at",
    "updated_at",
]
CREATE_KEYS = [*COMMON, "model_id", "dataset_id"]
DETAIL_KEYS = [*COMMON, "model", "dataset", "policies"]
LIST_KEYS = [
    "id",
    "name",
    "slug",
    "summary",
    "response_type",
    "published",
    "tags",
    "system_prompt",
    "created_at",
    "model",
    "dataset",
]


def post(http, **body):
    return http.post(ENDPOINTS, json=body)


# -- create --------------------------------------------------------------------------------------


def test_create_answers_201_with_ids_and_defaults(http):
    gpt = model(http)
    response = post(http, name="Support bot", slug="support-bot", model_id=gpt["id"])
    assert response.status_code == 201
    body = response.json()
    assert list(body) == CREATE_KEYS
    assert without(body, "id", "created_at", "updated_at") == {
        "name": "Support bot",
        "slug": "support-bot",
        "description": "",
        "summary": "",
        "response_type": "both",
        "published": False,
        "tags": "",
        "system_prompt": None,
        "model_id": gpt["id"],
        "dataset_id": None,
    }


def test_unknown_fields_are_ignored_and_published_is_set_at_create(http):
    gpt = model(http)
    body = post(
        http,
        name="B",
        slug="bot",
        model_id=gpt["id"],
        id="x",
        archived=True,
        published_to=["m"],
        published=True,
    ).json()
    assert body["id"] != "x" and body["published"] is True
    assert "archived" not in body and "published_to" not in body


def test_slugs_are_lower_cased_at_create_but_looked_up_exactly(http):
    gpt = model(http)
    assert created(post(http, name="E", slug="E-One", model_id=gpt["id"]))["slug"] == "e-one"
    again = post(http, name="E", slug="E-ONE", model_id=gpt["id"])
    assert (again.status_code, detail(again)) == (409, "Endpoint slug 'e-one' already exists")
    for method in ("GET", "PATCH", "DELETE"):
        response = http.request(
            method, ENDPOINTS + "E-One", json={"summary": "s"} if method == "PATCH" else None
        )
        assert (response.status_code, detail(response)) == (404, "Endpoint 'E-One' not found")
    assert http.get(ENDPOINTS + "e-one").status_code == 200


SLUG_PATTERN = (
    "Value error, Slug must contain only lowercase letters, numbers, and hyphens "
    "(no leading/trailing/consecutive hyphens)"
)


@pytest.mark.parametrize(
    ("slug", "message"),
    [
        ("ab", "Value error, Slug must be at least 3 characters long"),
        ("a" * 65, "Value error, Slug must be at most 64 characters long"),
        ("with space", SLUG_PATTERN),
        ("snake_case", SLUG_PATTERN),
        ("-lead", SLUG_PATTERN),
        ("double--hyphen", SLUG_PATTERN),
        ("trailing ", SLUG_PATTERN),
        (5, "Value error, Slug must be a string"),
        ("", "Value error, Slug is required"),
    ],
)
def test_invalid_slugs_are_422_with_the_servers_messages(http, slug, message):
    response = post(http, name="B", slug=slug, model_id=str(uuid.uuid4()))
    assert response.status_code == 422
    (error,) = detail(response)
    assert (error["loc"], error["msg"], error["type"]) == (["body", "slug"], message, "value_error")


def test_a_reference_by_name_is_a_uuid_parsing_422(http):
    response = post(http, name="B", slug="bot", model_id="gpt-4o")
    (error,) = detail(response)
    assert (response.status_code, error["type"], error["loc"]) == (422, "uuid_parsing", ["body", "model_id"])


def test_create_errors_come_in_the_servers_order(http):
    gpt = model(http)
    endpoint(http, "taken", model_id=gpt["id"])
    unknown = str(uuid.uuid4())
    neither = post(http, name="B", slug="taken")  # before the slug
    assert (neither.status_code, detail(neither)) == (
        400,
        "At least one of dataset_id or model_id must be provided",
    )
    slug_first = post(http, name="B", slug="taken", dataset_id=unknown)  # the slug before the dataset
    assert slug_first.status_code == 409
    both = post(http, name="B", slug="new", dataset_id=unknown, model_id=unknown)  # dataset before model
    assert (both.status_code, detail(both)) == (404, f"Dataset '{unknown}' not found")
    only_model = post(http, name="B", slug="new", model_id=unknown)
    assert (only_model.status_code, detail(only_model)) == (404, f"Model '{unknown}' not found")


def test_response_type_is_not_validated(http):
    gpt = model(http)
    assert endpoint(http, "bogus", model_id=gpt["id"], response_type="bogus")["response_type"] == "bogus"
    assert endpoint(http, "raw-only", model_id=gpt["id"], response_type="raw")["response_type"] == "raw"
    assert http.get(ENDPOINTS + "bogus").json()["response_type"] == "bogus"


# -- detail and list ------------------------------------------------------------------------------


def test_detail_embeds_the_model_without_its_key_the_dataset_and_the_policies(http):
    gpt = model(http)
    hb = dataset(http, "hb", selected_items=[{"item_id": "a"}], summary="handbook")
    made = endpoint(http, "bot", model_id=gpt["id"], dataset_id=hb["id"], system_prompt="be brief")
    rule = policy(http, made["id"])
    got = http.get(ENDPOINTS + "bot").json()
    assert list(got) == DETAIL_KEYS
    assert without(got, "model", "dataset", "policies") == without(made, "model_id", "dataset_id")
    assert got["model"] == {
        "id": gpt["id"],
        "name": "gpt",
        "dtype": "openai",
        "configuration": {"model": "gpt-4o"},
    }
    assert http.get(MODELS + "gpt").json()["configuration"]["api_key"] == "sk-canary"  # still echoed there
    assert got["dataset"] == {
        "id": hb["id"],
        "name": "hb",
        "summary": "handbook",
        "dtype": "remote_weaviate",
        "configuration": hb["configuration"],
        "selected_items_count": 1,
    }
    assert got["policies"] == [
        {k: rule[k] for k in ("id", "name", "policy_type", "configuration", "wallet_id")}
    ]


def test_list_items_are_ordered_by_slug_without_description_or_policies(http):
    gpt = model(http)
    endpoint(http, "zeta", model_id=gpt["id"])
    made = endpoint(http, "alpha", model_id=gpt["id"], description="# Long")
    listed = http.get(ENDPOINTS).json()
    assert [e["slug"] for e in listed] == ["alpha", "zeta"]
    assert list(listed[0]) == LIST_KEYS
    assert without(listed[0], "model", "dataset") == without(
        made, "description", "updated_at", "model_id", "dataset_id"
    )
    assert listed[0]["model"]["id"] == gpt["id"] and listed[0]["dataset"] is None
    assert [e["slug"] for e in http.get(MODELS + "gpt").json()["connected_endpoints"]] == ["alpha", "zeta"]


# -- PATCH ----------------------------------------------------------------------------------------

AT_LEAST_ONE = (
    "Value error, At least one field (name, summary, description, or system_prompt) must be provided"
)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"name": ""}, {"name": ""}),
        ({"summary": "s"}, {"summary": "s"}),
        ({"description": "# d"}, {"description": "# d"}),
        ({"system_prompt": "new"}, {"system_prompt": "new"}),
        ({"system_prompt": ""}, {"system_prompt": None}),
        ({"summary": "s", "system_prompt": None}, {"summary": "s"}),
        (
            {
                "summary": "s",
                "slug": "other",
                "response_type": "raw",
                "tags": "t",
                "published": True,
                "model_id": str(uuid.uuid4()),
                "dataset_id": None,
            },
            {"summary": "s"},
        ),
    ],
)
def test_patch_changes_four_fields_and_silently_ignores_the_rest(http, change, expected):
    made = endpoint(http, "bot", system_prompt="old")
    response = http.patch(ENDPOINTS + "bot", json=change)
    assert response.status_code == 200
    patched = response.json()
    assert list(patched) == DETAIL_KEYS
    before = without(made, "model_id", "dataset_id", "updated_at")
    assert without(patched, "model", "dataset", "policies", "updated_at") == {**before, **expected}
    assert patched["model"]["id"] == made["model_id"]


@pytest.mark.parametrize(
    "change",
    [
        {},
        {"slug": "x"},
        {"response_type": "raw"},
        {"tags": "t"},
        {"published": True},
        {"model_id": str(uuid.uuid4())},
        {"system_prompt": None},
    ],
)
def test_patch_of_ignored_fields_alone_is_422_before_lookup(http, change):
    response = http.patch(ENDPOINTS + "nope", json=change)
    assert response.status_code == 422
    assert [e["msg"] for e in detail(response)] == [AT_LEAST_ONE]


def test_patch_of_an_unknown_endpoint_is_404(http):
    response = http.patch(ENDPOINTS + "nope", json={"summary": "s"})
    assert (response.status_code, detail(response)) == (404, "Endpoint 'nope' not found")


# -- DELETE and what deletes do --------------------------------------------------------------------


def test_delete_answers_a_message_and_the_slug_is_free_at_once(http):
    made = endpoint(http, "bot")
    policy(http, made["id"])
    response = http.delete(ENDPOINTS + "bot")
    assert (response.status_code, response.json()) == (
        200,
        {"message": "Successfully deleted endpoint 'bot'"},
    )
    again = http.delete(ENDPOINTS + "bot")
    assert (again.status_code, detail(again)) == (404, "Endpoint 'bot' not found")
    reborn = endpoint(http, "bot", model_id=made["model_id"])
    assert http.get(ENDPOINTS + "bot").json()["policies"] == []
    assert reborn["id"] != made["id"]


def test_deleting_a_used_model_leaves_the_endpoint_with_no_model_never_relinked(http):
    gpt = model(http)
    hb = dataset(http, "hb")
    endpoint(http, "both", model_id=gpt["id"], dataset_id=hb["id"])
    only = endpoint(http, "only-model", model_id=gpt["id"])
    rule = policy(http, only["id"])
    assert http.delete(MODELS + "gpt").status_code == 200
    got = http.get(ENDPOINTS + "only-model").json()
    assert (got["model"], got["dataset"]) == (None, None)  # neither, and still alive
    assert [p["id"] for p in got["policies"]] == [rule["id"]]
    assert [e["model"] for e in http.get(ENDPOINTS).json()] == [None, None]
    model(http)  # the same name again
    assert http.get(ENDPOINTS + "both").json()["model"] is None
    assert http.get(MODELS + "gpt").json()["connected_endpoints"] == []


# -- archive, publish, query, validate-slug ---------------------------------------------------------


def test_archive_and_unarchive_answer_the_detail_and_400_when_repeated(http):
    made = endpoint(http, "bot")
    archived = http.post(ENDPOINTS + "bot/archive")
    assert archived.status_code == 200 and "archived" not in archived.json()
    assert archived.json()["id"] == made["id"]
    twice = http.post(ENDPOINTS + "bot/archive")
    assert (twice.status_code, detail(twice)) == (400, "Endpoint is already archived")
    assert http.post(ENDPOINTS + "bot/unarchive").status_code == 200
    again = http.post(ENDPOINTS + "bot/unarchive")
    assert (again.status_code, detail(again)) == (400, "Endpoint is not archived")
    assert http.post(ENDPOINTS + "nope/archive").status_code == 404


def test_publish_without_marketplaces(http):
    endpoint(http, "bot")
    either = "Either marketplace_ids or publish_to_all_marketplaces must be provided"
    for body in ({}, {"marketplace_ids": []}):
        response = http.post(ENDPOINTS + "nope/publish", json=body)  # before existence
        assert (response.status_code, detail(response)) == (400, either)
    assert http.post(ENDPOINTS + "bot/publish").status_code == 422
    unknown_slug = http.post(ENDPOINTS + "nope/publish", json={"publish_to_all_marketplaces": True})
    assert unknown_slug.status_code == 404
    to_all = http.post(ENDPOINTS + "bot/publish", json={"publish_to_all_marketplaces": True})
    assert (to_all.status_code, detail(to_all)) == (400, "No active marketplaces found")
    market = str(uuid.uuid4())
    to_one = http.post(ENDPOINTS + "bot/publish", json={"marketplace_ids": [market]})
    assert (to_one.status_code, detail(to_one)) == (404, f"Marketplaces not found: ['{market}']")
    unpublish = http.delete(ENDPOINTS + "bot/unpublish")
    assert (unpublish.status_code, detail(unpublish)) == (400, "Endpoint is not published")
    assert http.delete(ENDPOINTS + "nope/unpublish").status_code == 404


def test_query_is_public_and_needs_a_marketplace(sandbox_factory, http):
    sandbox_factory(token="t")
    for headers in ({}, {"Authorization": "Bearer t"}):
        response = http.post(ENDPOINTS + "anything/query", json={"messages": "hi"}, headers=headers)
        assert (response.status_code, detail(response)) == (400, "No marketplace configured")


def test_validate_slug_is_exact_and_knows_no_marketplace(http):
    endpoint(http, "bot")
    check = http.post(ENDPOINTS + "validate-slug", json={"slug": "bot"}).json()
    assert check == {"slug": "bot", "local_available": False, "marketplaces": None}
    upper = http.post(
        ENDPOINTS + "validate-slug", json={"slug": "BOT", "check_all_marketplaces": True}
    ).json()
    assert upper == {"slug": "BOT", "local_available": True, "marketplaces": []}
    market = str(uuid.uuid4())
    one = http.post(ENDPOINTS + "validate-slug", json={"slug": "x y", "marketplace_ids": [market]}).json()
    assert one["marketplaces"] == [
        {"marketplace_id": market, "available": None, "error": "Marketplace not found"}
    ]


# -- routing, tenancy, races ----------------------------------------------------------------------


def test_delete_on_the_collection_is_405_and_the_other_slash_form_307(http, sandbox):
    assert http.delete(ENDPOINTS).status_code == 405
    assert http.put(ENDPOINTS + "bot", json={}).status_code == 405
    redirect = http.get("/api/v1/endpoints")
    assert (redirect.status_code, redirect.headers["location"]) == (307, sandbox.url + ENDPOINTS)
    item = http.get(ENDPOINTS + "bot/")
    assert (item.status_code, item.headers["location"]) == (307, sandbox.url + ENDPOINTS + "bot")


def test_an_endpoint_cannot_reference_another_tenants_model_or_dataset(sandbox_factory, http):
    sandbox_factory(multi_tenancy=True)
    assert http.post("/api/v1/tenants", json={"name": "acme", "display_name": "Acme"}).status_code == 201
    acme, root = {"X-Tenant-Name": "acme"}, {"X-Tenant-Name": "root"}
    theirs = model(http, headers=acme)
    their_data = dataset(http, headers=acme)
    response = http.post(ENDPOINTS, json={"name": "B", "slug": "bot", "model_id": theirs["id"]}, headers=root)
    assert (response.status_code, detail(response)) == (404, f"Model '{theirs['id']}' not found")
    data = http.post(
        ENDPOINTS, json={"name": "B", "slug": "bot", "dataset_id": their_data["id"]}, headers=root
    )
    assert (data.status_code, detail(data)) == (404, f"Dataset '{their_data['id']}' not found")
    endpoint(http, "bot", headers=acme)
    endpoint(http, "bot", headers=root)  # slugs are unique per tenant only
    assert http.get(ENDPOINTS).status_code == 400


def test_concurrent_creates_of_one_slug_store_one_row(sandbox_factory, http):
    gpt = model(http)
    body = {"name": "B", "slug": "same", "model_id": gpt["id"]}
    responses = race(http, 8, lambda client, _: client.post(ENDPOINTS, json=body))
    assert sorted(r.status_code for r in responses) == [201] + [409] * 7
    sandbox_factory(race_500_rate=1.0)
    gpt = model(http)
    endpoint(http, "same", model_id=gpt["id"])
    losers = race(http, 4, lambda client, _: client.post(ENDPOINTS, json={**body, "model_id": gpt["id"]}))
    assert {(r.status_code, r.text) for r in losers} == {(500, "Internal Server Error")}
    assert len(http.get(ENDPOINTS).json()) == 1
