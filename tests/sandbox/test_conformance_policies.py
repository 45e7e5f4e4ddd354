"""The sandbox's policies answer as ../shared/syft-space-api-kinds.md records, "Policies", "References
and what deletes do", "Tenancy" and "Races"."""

import json
import socket
import uuid

import pytest

from tests.sandbox.kinds import ENDPOINTS, POLICIES, detail, endpoint, policy, race, without

OBJECT_KEYS = [
    "id",
    "name",
    "policy_type",
    "configuration",
    "endpoint_id",
    "wallet_id",
    "created_at",
    "updated_at",
]
LIST_KEYS = ["id", "name", "policy_type", "endpoint_id", "wallet_id", "created_at"]


def post(http, endpoint_id, **fields):
    body = {
        "name": "p",
        "policy_type": "rate_limit",
        "configuration": {"limit": "5/m"},
        "endpoint_id": endpoint_id,
    }
    return http.post(POLICIES, json={**body, **fields})


def assert_crash(response):
    """The real server's unhandled error: plain text, and the connection closed after it."""
    assert (response.status_code, response.text) == (500, "Internal Server Error")
    assert response.headers["content-type"].startswith("text/plain")
    assert response.headers["connection"] == "close"


# -- create ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("policy_type", "sent", "stored"),
    [
        ("rate_limit", {"limit": "5/m"}, {"limit": "5/m", "scope": "per_user", "applied_to": ["*"]}),
        (
            "rate_limit",
            {"limit": "1/h", "scope": "global", "junk": 1},
            {"limit": "1/h", "scope": "global", "applied_to": ["*"]},
        ),
        ("access", {}, {"allowed_users": [], "denied_users": []}),
        (
            "access",
            {"allowed_users": ["*@example.org"], "extra": True},
            {"allowed_users": ["*@example.org"], "denied_users": []},
        ),
    ],
)
def test_create_normalises_the_configuration(http, policy_type, sent, stored):
    bot = endpoint(http)
    response = post(http, bot["id"], policy_type=policy_type, configuration=sent)
    assert response.status_code == 201
    body = response.json()
    assert list(body) == OBJECT_KEYS
    assert (body["configuration"], body["endpoint_id"], body["wallet_id"]) == (stored, bot["id"], None)
    assert http.get(POLICIES + body["id"]).json() == body


def test_the_list_has_no_configuration(http):
    bot = endpoint(http)
    first = policy(http, bot["id"], "b-first")
    second = policy(http, bot["id"], "a-second", "access", {})
    listed = http.get(POLICIES).json()
    assert [p["id"] for p in listed] == [first["id"], second["id"]]
    assert list(listed[0]) == LIST_KEYS
    assert listed[0] == without(first, "configuration", "updated_at")


def test_names_are_free_text_and_unique_per_endpoint_only(http):
    one, two = endpoint(http, "one"), endpoint(http, "two")
    assert policy(http, one["id"], "")["name"] == ""
    policy(http, one["id"], "same")
    policy(http, two["id"], "same")
    assert len(http.get(POLICIES).json()) == 3


def test_create_errors_come_in_the_servers_order(http):
    bot = endpoint(http)
    unknown_type = post(http, str(uuid.uuid4()), policy_type="Rate_limit", configuration={"limit": "0/m"})
    assert (unknown_type.status_code, detail(unknown_type)) == (400, "Policy type 'Rate_limit' not found")
    wallet = str(uuid.uuid4())
    config_first = post(http, bot["id"], configuration={"limit": "0/m"}, wallet_id=wallet)
    assert config_first.status_code == 400
    assert detail(config_first).startswith(
        "Invalid rate limit config: 1 validation error for RateLimitConfig"
    )
    wallet_rule = post(http, str(uuid.uuid4()), wallet_id=wallet)  # before the database
    assert (wallet_rule.status_code, detail(wallet_rule)) == (
        400,
        "wallet_id is not applicable for rate_limit policies",
    )
    access = post(http, bot["id"], policy_type="access", configuration={"allowed_users": "*"})
    assert access.status_code == 400
    assert detail(access).startswith(
        "Invalid access policy config: 1 validation error for AccessPolicyConfig"
    )


@pytest.mark.parametrize("limit", ["0/m", "5/d", "5 per minute", "-1/s", 5])
def test_rate_limits_must_be_n_per_unit_with_n_above_zero(http, limit):
    response = post(http, endpoint(http)["id"], configuration={"limit": limit})
    assert response.status_code == 400 and "limit" in detail(response)


def test_a_name_for_endpoint_id_is_422(http):
    response = post(http, "bot")
    (error,) = detail(response)
    assert (response.status_code, error["type"], error["loc"]) == (
        422,
        "uuid_parsing",
        ["body", "endpoint_id"],
    )


def test_an_unknown_endpoint_is_a_plain_500(http):
    assert_crash(post(http, str(uuid.uuid4())))
    assert http.get(POLICIES).json() == []


def test_a_duplicate_name_on_one_endpoint_is_a_plain_500(http):
    bot = endpoint(http)
    policy(http, bot["id"], "p")
    assert_crash(post(http, bot["id"], name="p", policy_type="access", configuration={}))
    assert len(http.get(POLICIES).json()) == 1


def test_the_server_closes_the_connection_after_a_500(http, sandbox):
    endpoint(http)
    host, port = sandbox.url.removeprefix("http://").split(":")
    body = json.dumps(
        {"name": "p", "policy_type": "access", "configuration": {}, "endpoint_id": str(uuid.uuid4())}
    )
    request = (
        f"POST {POLICIES} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n{body}"
    ).encode()
    crash_response = b"Internal Server Error"
    with socket.create_connection((host, int(port)), timeout=10) as conn:  # a deadline, not a wait
        conn.sendall(request)
        received = b""
        while not received.endswith(crash_response):
            chunk = conn.recv(65536)
            assert chunk, received
            received += chunk
        assert received.startswith(b"HTTP/1.1 500 ")
        # A keep-alive connection would answer this second request; this one was closed.
        try:
            conn.sendall(f"GET {POLICIES} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            after = conn.recv(65536)
        except ConnectionError:
            after = b""
    assert after == b""


# -- read, PATCH, DELETE -----------------------------------------------------------------------------


def test_get_422_for_a_non_uuid_and_404_for_an_unknown_one(http):
    unknown = str(uuid.uuid4())
    missing = http.get(POLICIES + unknown)
    assert (missing.status_code, detail(missing)) == (404, f"Policy '{unknown}' not found")
    assert http.get(POLICIES + "per-user").status_code == 422
    assert http.get("/api/v1/policies/types").status_code == 422  # a policy id, not the types


def test_an_empty_patch_only_moves_updated_at(http):
    made = policy(http, endpoint(http)["id"])
    response = http.patch(POLICIES + made["id"], json={})
    assert response.status_code == 200
    assert without(response.json(), "updated_at") == without(made, "updated_at")
    assert response.json()["updated_at"] >= made["updated_at"]


def test_patch_merges_the_configuration_shallowly_and_renormalises(http):
    made = policy(http, endpoint(http)["id"], configuration={"limit": "5/m", "applied_to": ["a@x.org"]})
    merged = http.patch(POLICIES + made["id"], json={"configuration": {"scope": "global", "junk": 1}}).json()
    assert merged["configuration"] == {"limit": "5/m", "scope": "global", "applied_to": ["a@x.org"]}
    # A key cannot be removed, only reset by sending its default.
    reset = http.patch(POLICIES + made["id"], json={"configuration": {"applied_to": ["*"]}}).json()
    assert reset["configuration"]["applied_to"] == ["*"]
    invalid = http.patch(POLICIES + made["id"], json={"configuration": {"limit": "0/s"}})
    assert invalid.status_code == 400 and detail(invalid).startswith("Invalid rate limit config: ")
    assert http.get(POLICIES + made["id"]).json()["configuration"] == reset["configuration"]


def test_patch_renames_and_ignores_type_endpoint_and_wallet(http):
    one, two = endpoint(http, "one"), endpoint(http, "two")
    made = policy(http, one["id"])
    change = {
        "name": "renamed",
        "policy_type": "access",
        "endpoint_id": two["id"],
        "wallet_id": str(uuid.uuid4()),
    }
    patched = http.patch(POLICIES + made["id"], json=change).json()
    assert (patched["name"], patched["policy_type"], patched["endpoint_id"], patched["wallet_id"]) == (
        "renamed",
        "rate_limit",
        one["id"],
        None,
    )


def test_renaming_onto_a_siblings_name_is_a_plain_500(http):
    bot = endpoint(http)
    policy(http, bot["id"], "a")
    b = policy(http, bot["id"], "b")
    assert_crash(http.patch(POLICIES + b["id"], json={"name": "a"}))
    assert http.get(POLICIES + b["id"]).json()["name"] == "b"
    unknown = http.patch(POLICIES + str(uuid.uuid4()), json={})
    assert unknown.status_code == 404


def test_delete_answers_a_message_then_404(http):
    made = policy(http, endpoint(http)["id"])
    response = http.delete(POLICIES + made["id"])
    assert (response.status_code, response.json()) == (
        200,
        {"message": f"Successfully deleted policy '{made['id']}'"},
    )
    assert http.delete(POLICIES + made["id"]).status_code == 404
    assert http.delete(POLICIES + "nope").status_code == 422
    assert http.get(ENDPOINTS + "bot").json()["policies"] == []


@pytest.mark.parametrize("method", ["PUT", "POST"])
def test_put_and_post_on_an_item_are_405(http, method):
    made = policy(http, endpoint(http)["id"])
    assert http.request(method, POLICIES + made["id"], json={}).status_code == 405


# -- orphans: deleting an endpoint that has policies ---------------------------------------------------


def test_deleting_an_endpoint_orphans_its_policies_and_breaks_the_list(http):
    bot, other = endpoint(http, "bot"), endpoint(http, "other")
    orphan = policy(http, bot["id"], "orphan")
    kept = policy(http, other["id"], "kept")
    assert http.delete(ENDPOINTS + "bot").status_code == 200
    assert_crash(http.get(POLICIES))
    assert_crash(http.get(POLICIES + orphan["id"]))
    assert_crash(http.patch(POLICIES + orphan["id"], json={"name": "x"}))
    assert http.get(POLICIES + kept["id"]).status_code == 200  # others still read
    assert http.get(ENDPOINTS + "other").json()["policies"][0]["id"] == kept["id"]
    # Deleting the orphan is the way out.
    assert http.delete(POLICIES + orphan["id"]).status_code == 200
    assert [p["id"] for p in http.get(POLICIES).json()] == [kept["id"]]


# -- tenancy: the cross-tenant hole ----------------------------------------------------------------


def test_a_policy_can_hang_on_another_tenants_endpoint(sandbox_factory, http):
    sandbox_factory(multi_tenancy=True)
    assert http.post("/api/v1/tenants", json={"name": "b", "display_name": "B"}).status_code == 201
    a, b = {"X-Tenant-Name": "root"}, {"X-Tenant-Name": "b"}
    theirs = endpoint(http, "theirs", headers=b)
    hole = policy(http, theirs["id"], headers=a)
    assert [p["id"] for p in http.get(POLICIES, headers=a).json()] == [hole["id"]]
    assert [p["id"] for p in http.get(ENDPOINTS + "theirs", headers=b).json()["policies"]] == [hole["id"]]
    assert http.get(POLICIES, headers=b).json() == []
    assert http.get(POLICIES + hole["id"], headers=b).status_code == 404
    assert http.delete(ENDPOINTS + "theirs", headers=b).status_code == 200
    assert_crash(http.get(POLICIES, headers=a))  # B's delete broke A's list
    assert http.get(POLICIES, headers=b).status_code == 200
    missing = http.get(POLICIES)
    assert missing.status_code == 400


# -- races ---------------------------------------------------------------------------------------------


def test_racing_creates_of_one_policy_give_one_201_and_500s(http):
    bot = endpoint(http)
    responses = race(http, 8, lambda client, _: post(client, bot["id"], name="same"))
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201] + [500] * 7  # there is no 409 path for policies
    assert len(http.get(POLICIES).json()) == 1


# -- types -----------------------------------------------------------------------------------------


def test_the_rebuilt_types_with_bare_schemas(http):
    types = http.get(POLICIES + "types/").json()
    assert [t["name"] for t in types] == ["access", "rate_limit"]
    for info in types:
        assert list(info) == ["name", "description", "config_schema", "icon", "enabled"]
        assert info["enabled"] is True and list(info["config_schema"]) == ["properties", "required"]
        assert "writeOnly" not in json.dumps(info) and "additionalProperties" not in json.dumps(info)
    rate = types[1]["config_schema"]
    assert rate["required"] == ["limit"]
    assert rate["properties"]["scope"]["default"] == "per_user"
    # Published without a default, although the server fills ["*"] in (policies-types.json).
    assert "default" not in rate["properties"]["applied_to"]
    assert http.get(POLICIES + "types/access/schema").json() == types[0]["config_schema"]
    assert http.get(POLICIES + "types/access").json() == types[0]


@pytest.mark.parametrize("name", ["Access", "mpp_per_request", "pii_filter"])
def test_other_types_are_404_and_refused_at_create(http, name):
    response = http.get(POLICIES + f"types/{name}")
    assert (response.status_code, detail(response)) == (404, f"Policy type '{name}' not found")
    refused = post(http, endpoint(http)["id"], policy_type=name)
    assert (refused.status_code, detail(refused)) == (400, f"Policy type '{name}' not found")
