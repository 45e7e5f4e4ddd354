"""A dataset's selection answers as ../shared/syft-space-api-selections.md records it: the four
routes, the create field, ordering, identity, idempotency, paging, the lifecycle and tenancy."""

import sqlite3
from urllib.parse import quote

import httpx
import pytest

from reconciler.sandbox import SandboxServer
from tests.sandbox.kinds import DATASETS, ENDPOINTS, WEAVIATE, dataset, detail, endpoint

TENANT_REQUIRED = "X-Tenant-Name header is required for this endpoint when multi-tenancy is enabled"


def sel(name):
    return DATASETS + quote(name, safe="") + "/selection"


def add(http, name, *items, headers=None):
    body = {"items": [i if isinstance(i, dict) else {"item_id": i} for i in items]}
    return http.post(sel(name), json=body, headers=headers)


def remove(http, name, *ids, headers=None):
    return http.request("DELETE", sel(name), json={"item_ids": list(ids)}, headers=headers)


def ids(http, name, headers=None):
    return http.get(sel(name) + "/ids", headers=headers).json()["item_ids"]


def described(items):
    return [(i["item_id"], i["description"]) for i in items]


def error(response):
    """(status, [(type, loc)]) of a 422, to compare with the recorded ones."""
    return response.status_code, [(e["type"], e["loc"]) for e in response.json()["detail"]]


# -- the routes and their answers ---------------------------------------------------------------


def test_add_answers_200_with_the_whole_selection(http):
    dataset(http, "hb", selected_items=[{"item_id": "/data/a.txt", "description": "A"}])
    response = add(http, "hb", {"item_id": "/data/b.txt", "description": "B"}, "/data/c.txt")
    assert response.status_code == 200  # not 201
    body = response.json()
    assert list(body) == ["selected_items"]
    assert described(body["selected_items"]) == [
        ("/data/a.txt", "A"),
        ("/data/b.txt", "B"),
        ("/data/c.txt", None),
    ]
    assert all(list(i) == ["item_id", "description", "added_at"] for i in body["selected_items"])
    page = http.get(sel("hb")).json()
    assert page == {"items": body["selected_items"], "total": 3}
    assert ids(http, "hb") == ["/data/a.txt", "/data/b.txt", "/data/c.txt"]


def test_remove_answers_200_with_what_remains_and_is_idempotent(http):
    dataset(http, "hb", selected_items=[{"item_id": i} for i in "abc"])
    response = remove(http, "hb", "b", "b", "unknown")  # twice, and an id never picked: fine
    assert response.status_code == 200
    assert [i["item_id"] for i in response.json()["selected_items"]] == ["a", "c"]
    again = remove(http, "hb", "b")
    assert (again.status_code, again.json()) == (200, response.json())
    assert remove(http, "hb", "").status_code == 200  # "" cannot be added, but may be removed
    assert ids(http, "hb") == ["a", "c"]


def test_timestamps_are_naive_and_the_dataset_does_not_move(http):
    made = dataset(http, "hb")
    for _ in range(6):
        assert add(http, "hb", "x", "y").status_code == 200
    for _ in range(5):
        assert remove(http, "hb", "x").status_code == 200
    after = http.get(DATASETS + "hb").json()
    assert after["updated_at"] == made["updated_at"]  # 11 answered changes, no move
    assert "selected_items" not in after and "selected_items_count" not in after  # no selection field
    (item,) = http.get(sel("hb")).json()["items"]
    assert item["item_id"] == "y" and "+" not in item["added_at"] and not item["added_at"].endswith("Z")


@pytest.mark.parametrize("method", ["GET", "POST", "DELETE"])
def test_unknown_dataset_is_404(http, method):
    body = {"GET": None, "POST": {"items": [{"item_id": "a"}]}, "DELETE": {"item_ids": ["a"]}}[method]
    response = http.request(method, sel("nope"), json=body)
    assert (response.status_code, detail(response)) == (404, "Dataset 'nope' not found")
    assert http.get(sel("nope") + "/ids").status_code == 404


def test_a_trailing_slash_is_a_307_to_the_selection(http):
    dataset(http, "hb")
    response = http.get(sel("hb") + "/")
    assert response.status_code == 307
    assert response.headers["location"] == str(http.base_url).rstrip("/") + sel("hb")


def test_without_the_key_it_is_401(sandbox_factory, http):
    sandbox_factory(token="t")
    response = add(http, "hb", "a")
    assert (response.status_code, detail(response)) == (401, "Admin API key required")


# -- bodies and their 422s (checked before the dataset exists) ------------------------------------


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({}, [("missing", ["body", "items"])]),
        ({"items": []}, [("too_short", ["body", "items"])]),
        ({"items": ["a"]}, [("model_attributes_type", ["body", "items", 0])]),
        ({"items": [{"item_id": ""}]}, [("string_too_short", ["body", "items", 0, "item_id"])]),
        ({"items": [{}]}, [("missing", ["body", "items", 0, "item_id"])]),
        ({"item_ids": ["a"]}, [("missing", ["body", "items"])]),  # the remove shape
        (
            {"items": [{"item_id": "a"}, {"item_id": ""}]},
            [("string_too_short", ["body", "items", 1, "item_id"])],
        ),
    ],
)
def test_add_bodies_are_checked_before_the_dataset(http, body, expected):
    assert error(http.post(sel("nope"), json=body)) == (422, expected)


def test_one_bad_item_rejects_the_whole_add(http):
    dataset(http, "hb")
    assert add(http, "hb", "good", {"item_id": ""}).status_code == 422
    assert ids(http, "hb") == []


def test_invalid_json_is_a_json_invalid_422(http):
    response = http.post(sel("nope"), content=b"{", headers={"content-type": "application/json"})
    assert error(response) == (422, [("json_invalid", ["body", 1])])


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (None, [("missing", ["body"])]),
        ({}, [("missing", ["body", "item_ids"])]),
        ({"item_ids": []}, [("too_short", ["body", "item_ids"])]),
        ({"item_ids": [1]}, [("string_type", ["body", "item_ids", 0])]),
    ],
)
def test_remove_bodies_are_checked_before_the_dataset(http, body, expected):
    assert error(http.request("DELETE", sel("nope"), json=body)) == (422, expected)


# -- paging --------------------------------------------------------------------------------------


def test_pages_default_to_50_of_the_total_and_ids_are_unpaged(http):
    dataset(http, "hb", selected_items=[{"item_id": f"i{n:02}"} for n in range(20)])
    answer = add(http, "hb", *(f"i{n:02}" for n in range(20, 57))).json()
    assert len(answer["selected_items"]) == 57  # POST answers are unpaged too
    page = http.get(sel("hb")).json()
    assert (len(page["items"]), page["total"]) == (50, 57)
    assert [i["item_id"] for i in page["items"]] == [f"i{n:02}" for n in range(50)]
    assert len(ids(http, "hb")) == 57
    assert http.get(sel("hb"), params={"limit": 200}).json()["items"] == answer["selected_items"]
    assert http.get(sel("hb"), params={"offset": 60}).json() == {"items": [], "total": 57}
    one = http.get(sel("hb"), params={"limit": 1, "offset": 1}).json()
    assert ([i["item_id"] for i in one["items"]], one["total"]) == (["i01"], 57)


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"limit": 201}, ("less_than_equal", ["query", "limit"])),
        ({"limit": 0}, ("greater_than_equal", ["query", "limit"])),
        ({"offset": -1}, ("greater_than_equal", ["query", "offset"])),
    ],
)
def test_page_bounds(http, params, expected):
    dataset(http, "hb")
    assert error(http.get(sel("hb"), params=params)) == (422, [expected])


# -- ordering, identity, duplicates --------------------------------------------------------------


def test_order_is_oldest_first_and_a_new_description_moves_an_item_to_the_end(http):
    dataset(http, "hb", selected_items=[{"item_id": i, "description": i.upper()} for i in "cab"])
    assert ids(http, "hb") == ["c", "a", "b"]  # create: request order
    add(http, "hb", "z", "d")
    assert ids(http, "hb") == ["c", "a", "b", "z", "d"]  # add: appended in request order
    remove(http, "hb", "a")
    answer = add(http, "hb", {"item_id": "a", "description": "A changed"}).json()["selected_items"]
    assert described(answer)[-1] == ("a", "A changed")  # remove + add: at the end
    assert [i["item_id"] for i in answer] == ["c", "b", "z", "d", "a"]
    stamps = [i["added_at"] for i in answer]
    assert stamps == sorted(stamps) and stamps[-1] > stamps[0]
    listed = http.get(DATASETS).json()[0]
    assert (listed["selected_items_count"], listed["selected_items_preview"]) == (5, answer[:3])


def test_the_stored_description_wins_and_the_first_occurrence_within_a_request(http):
    dataset(http, "hb", selected_items=[{"item_id": "/data/c.txt", "description": "C"}])
    again = add(http, "hb", {"item_id": "/data/c.txt", "description": "C changed"})
    assert (again.status_code, described(again.json()["selected_items"])) == (200, [("/data/c.txt", "C")])
    answer = add(
        http, "hb", {"item_id": "n", "description": "first"}, {"item_id": "n", "description": "second"}
    )
    assert described(answer.json()["selected_items"]) == [("/data/c.txt", "C"), ("n", "first")]
    dataset(http, "dup", selected_items=[{"item_id": "d", "description": "one"}, {"item_id": "d"}])
    assert described(http.get(sel("dup")).json()["items"]) == [("d", "one")]


def test_empty_and_null_descriptions_are_distinct(http):
    dataset(
        http,
        "hb",
        selected_items=[{"item_id": "e", "description": ""}, {"item_id": "n", "description": None}],
    )
    assert described(http.get(sel("hb")).json()["items"]) == [("e", ""), ("n", None)]


def test_identity_is_the_exact_string(http):
    variants = ["/data/c.txt", "/DATA/C.TXT", "/data/c.txt ", "/data/dir/", " ", "/data/DIR/"]
    dataset(http, "hb", selected_items=[{"item_id": "/data/c.txt"}])
    add(http, "hb", *variants)
    assert ids(http, "hb") == variants  # nothing trimmed, lower-cased or normalised
    remove(http, "hb", "/data/DIR/")
    assert "/data/dir/" in ids(http, "hb") and "/data/DIR/" not in ids(http, "hb")


@pytest.mark.parametrize("dtype", ["remote_weaviate", "local_file", "wordpress"])
def test_every_dtype_stores_and_serves_picks_unchecked(http, dtype):
    dataset(http, "ds", dtype, selected_items=[{"item_id": "post:999999"}])
    add(http, "ds", "not-a-wp-id", "post:abc")
    assert ids(http, "ds") == ["post:999999", "not-a-wp-id", "post:abc"]


# -- what is echoed where ------------------------------------------------------------------------


def test_list_items_count_and_preview_the_first_three_endpoints_the_count_only(http):
    made = dataset(http, "hb", selected_items=[{"item_id": f"p{n}", "description": str(n)} for n in range(6)])
    (listed,) = http.get(DATASETS).json()
    assert listed["selected_items_count"] == 6
    assert described(listed["selected_items_preview"]) == [("p0", "0"), ("p1", "1"), ("p2", "2")]
    assert listed["selected_items_preview"] == http.get(sel("hb"), params={"limit": 3}).json()["items"]
    bot = endpoint(http, "bot", dataset_id=made["id"])
    assert http.get(ENDPOINTS + "bot").json()["dataset"]["selected_items_count"] == 6
    assert http.get(ENDPOINTS).json()[0]["dataset"]["selected_items_count"] == 6
    assert "selected_items_preview" not in http.get(ENDPOINTS + "bot").json()["dataset"]
    assert bot["dataset_id"] == made["id"]
    assert "selected_items" not in made


# -- the create field, PATCH, and the dataset's lifecycle ----------------------------------------


@pytest.mark.parametrize(
    ("picks", "expected"),
    [
        (None, [("list_type", ["body", "selected_items"])]),
        (["a"], [("model_attributes_type", ["body", "selected_items", 0])]),
        ([{"item_id": ""}], [("string_too_short", ["body", "selected_items", 0, "item_id"])]),
    ],
)
def test_create_refuses_bad_picks(http, picks, expected):
    body = {"name": "hb", "dtype": "remote_weaviate", "configuration": WEAVIATE, "selected_items": picks}
    assert error(http.post(DATASETS, json=body)) == (422, expected)
    assert http.get(DATASETS).json() == []


def test_create_without_picks_starts_empty(http):
    dataset(http, "hb")
    assert http.get(sel("hb")).json() == {"items": [], "total": 0}
    assert http.get(DATASETS).json()[0]["selected_items_preview"] == []


def test_a_409_create_stores_none_of_its_picks(http):
    dataset(http, "hb", selected_items=[{"item_id": "kept"}])
    body = {
        "name": "hb",
        "dtype": "remote_weaviate",
        "configuration": WEAVIATE,
        "selected_items": [{"item_id": "x"}],
    }
    assert http.post(DATASETS, json=body).status_code == 409
    assert ids(http, "hb") == ["kept"]


def test_patch_takes_no_selection(http):
    dataset(http, "hb", selected_items=[{"item_id": "a"}])
    alone = http.patch(DATASETS + "hb", json={"selected_items": [{"item_id": "b"}]})
    assert (alone.status_code, alone.json()["detail"][0]["msg"]) == (
        422,
        "Value error, At least one field (name, summary, or tags) must be provided",
    )
    beside = http.patch(DATASETS + "hb", json={"summary": "s", "selected_items": [{"item_id": "b"}]})
    assert beside.status_code == 200 and "selected_items" not in beside.json()
    assert ids(http, "hb") == ["a"]


def test_rename_keeps_the_picks_and_delete_drops_them(http):
    made = dataset(http, "hb", selected_items=[{"item_id": "a"}])
    assert http.patch(DATASETS + "hb", json={"name": "handbook"}).status_code == 200
    assert ids(http, "handbook") == ["a"]
    assert http.get(sel("hb")).status_code == 404
    bot = endpoint(http, "bot", dataset_id=made["id"])
    assert http.delete(DATASETS + "handbook").status_code == 409  # used: refused, picks intact
    assert ids(http, "handbook") == ["a"]
    assert http.delete(ENDPOINTS + bot["slug"]).status_code == 200
    assert http.delete(DATASETS + "handbook").status_code == 200
    dataset(http, "handbook")
    assert ids(http, "handbook") == []  # a recreate starts empty


# -- tenancy -------------------------------------------------------------------------------------


def tenants(http, *names):
    for name in names:
        assert http.post("/api/v1/tenants", json={"name": name, "display_name": name}).status_code == 201
    return {name: {"X-Tenant-Name": name} for name in names}


def test_selections_belong_to_the_tenants_dataset(sandbox_factory, http):
    sandbox_factory(multi_tenancy=True)
    h = tenants(http, "acme", "beta")
    dataset(http, "shared", headers=h["acme"], selected_items=[{"item_id": "a-1"}])
    dataset(http, "shared", headers=h["beta"], selected_items=[{"item_id": "b-1"}, {"item_id": "b-2"}])
    add(http, "shared", "b-1", headers=h["acme"])
    remove(http, "shared", "b-2", headers=h["acme"])
    assert ids(http, "shared", h["acme"]) == ["a-1", "b-1"]
    assert ids(http, "shared", h["beta"]) == ["b-1", "b-2"]
    counts = {t: http.get(DATASETS, headers=h[t]).json()[0]["selected_items_count"] for t in h}
    assert counts == {"acme": 2, "beta": 2}


def test_another_tenants_dataset_is_404_and_left_intact(sandbox_factory, http):
    sandbox_factory(multi_tenancy=True)
    h = tenants(http, "acme", "beta")
    dataset(http, "only-a", headers=h["acme"], selected_items=[{"item_id": "x"}])
    for response in (
        http.get(sel("only-a"), headers=h["beta"]),
        add(http, "only-a", "y", headers=h["beta"]),
        remove(http, "only-a", "x", headers=h["beta"]),
        http.get(sel("only-a"), headers={"X-Tenant-Name": "root"}),
    ):
        assert (response.status_code, detail(response)) == (404, "Dataset 'only-a' not found")
    assert ids(http, "only-a", h["acme"]) == ["x"]


def test_the_tenant_is_checked_before_the_body(sandbox_factory, http):
    sandbox_factory(multi_tenancy=True)
    response = http.post(sel("any"), json={"items": []})
    assert (response.status_code, detail(response)) == (400, TENANT_REQUIRED)
    unknown = http.post(sel("any"), json={"items": []}, headers={"X-Tenant-Name": "nope"})
    assert (unknown.status_code, detail(unknown)) == (404, "Tenant 'nope' not found")


# -- counted by route template -------------------------------------------------------------------


def test_selection_requests_are_counted_by_route_template(sandbox, http):
    dataset(http, "hb")
    add(http, "hb", "a")
    add(http, "hb", "a")
    remove(http, "hb", "a")
    http.get(sel("hb"))
    http.get(sel("hb") + "/ids")
    http.get(sel("hb") + "/")
    stats = sandbox.stats(by_status=True)
    assert {k: v for k, v in stats.items() if "selection" in k} == {
        "POST /api/v1/datasets/{name}/selection 200": 2,
        "DELETE /api/v1/datasets/{name}/selection 200": 1,
        "GET /api/v1/datasets/{name}/selection 200": 1,
        "GET /api/v1/datasets/{name}/selection/ids 200": 1,
        "GET /api/v1/datasets/hb/selection/ 307": 1,
    }


# -- a file database ------------------------------------------------------------------------------


def test_picks_persist_in_a_file_db_and_an_older_file_gains_the_order_index(tmp_path):
    db = tmp_path / "sandbox.db"
    with SandboxServer(db=db) as server, httpx.Client(base_url=server.url) as client:
        dataset(client, "hb", selected_items=[{"item_id": "b"}, {"item_id": "a"}])
        add(client, "hb", "c")
    conn = sqlite3.connect(db)
    conn.execute("DROP INDEX dataset_items_order")  # a file written before the index existed
    conn.commit()
    conn.close()
    with SandboxServer(db=db) as server, httpx.Client(base_url=server.url) as client:
        assert ids(client, "hb") == ["b", "a", "c"]
    conn = sqlite3.connect(db)
    try:
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    finally:
        conn.close()
    assert "dataset_items_order" in names
