"""A dataset's `selected_items` and an endpoint's `published` flag, through the real CLI against
the sandbox (which answers as ../shared/syft-space-api-selections.md records the real server)."""

from __future__ import annotations

import pytest
import yaml

from .conftest import model_yaml
from .test_kinds import KEY, WEAVIATE, endpoint_yaml

SELECTION = "/api/v1/datasets/{name}/selection"


@pytest.fixture(autouse=True)
def _keys(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("WEAVIATE_KEY", WEAVIATE)


def dataset(picks=None, *, name="handbook", summary="the handbook", http_url="http://w:8080"):
    text = f"""kind: Dataset
name: {name}
dtype: remote_weaviate
configuration: {{http_url: "{http_url}", grpc_url: "http://w:50051", api_key: "${{WEAVIATE_KEY}}", collection_name: Handbook}}
summary: {summary}
"""
    if picks is not None:
        text += yaml.safe_dump({"selected_items": picks}, sort_keys=False)
    return text


PICKS = [
    {"item_id": "/data/a.txt", "description": "A"},
    {"item_id": "/data/b.txt", "description": "B"},
    {"item_id": "/data/c.txt", "description": "C"},
    {"item_id": "/data/d.txt"},
    {"item_id": "/DATA/D.TXT", "description": ""},
]


def apply(cli, root, sandbox, *extra):
    return cli("apply", root, "--server", sandbox.url, "--owner", "team", *extra)


def picks_on(api, name="handbook"):
    page = api.get(f"/datasets/{name}/selection", params={"limit": 200}).json()
    return {p["item_id"]: p["description"] for p in page["items"]}


def selection_writes(sandbox):
    return {k: v for k, v in sandbox.stats().items() if "/selection" in k and not k.startswith("GET")}


def test_declared_picks_converge_and_a_second_apply_writes_nothing(cli, manifest_dir, sandbox, api):
    root = manifest_dir({"data.yaml": dataset(PICKS)})
    run = apply(cli, root, sandbox)
    assert run.code == 0, run.all
    assert picks_on(api) == {p["item_id"]: p.get("description") for p in PICKS}
    assert selection_writes(sandbox) == {}  # the create body carried them
    before = {k: v for k, v in sandbox.stats().items() if not k.startswith("GET")}
    again = apply(cli, root, sandbox)
    assert again.code == 0 and "in sync" in again.out, again.all
    assert {k: v for k, v in sandbox.stats().items() if not k.startswith("GET")} == before


def test_a_redescribe_a_drop_and_an_add_are_one_delete_and_one_post(cli, manifest_dir, sandbox, api):
    root = manifest_dir({"data.yaml": dataset(PICKS)})
    assert apply(cli, root, sandbox).code == 0
    changed = [
        {"item_id": "/data/a.txt", "description": "A changed"},
        *PICKS[1:2],
        *PICKS[3:],
        {"item_id": "/data/e.txt", "description": "E"},
    ]
    (root / "data.yaml").write_text(dataset(changed))
    plan = cli("plan", root, "--server", sandbox.url, "--owner", "team")
    assert plan.code == 0, plan.all
    assert '~ selected_items "/data/a.txt": "A" -> "A changed"' in plan.out
    assert '- selected_items "/data/c.txt"' in plan.out and '+ selected_items "/data/e.txt": "E"' in plan.out
    assert "1 to change" in plan.out and "to destroy" in plan.out and "0 to destroy" in plan.out
    run = apply(cli, root, sandbox)
    assert run.code == 0, run.all
    assert "updated  dataset handbook" in run.out
    assert selection_writes(sandbox) == {
        "DELETE /api/v1/datasets/{name}/selection": 1,
        "POST /api/v1/datasets/{name}/selection": 1,
    }
    assert picks_on(api) == {p["item_id"]: p.get("description") for p in changed}
    assert apply(cli, root, sandbox).code == 0
    assert sum(selection_writes(sandbox).values()) == 2


def test_a_manifest_without_selected_items_leaves_ui_picks_alone(cli, manifest_dir, sandbox, api):
    root = manifest_dir({"data.yaml": dataset()})
    assert apply(cli, root, sandbox).code == 0
    made_in_the_ui = [{"item_id": f"/ui/{i}", "description": f"ui {i}"} for i in range(5)]
    assert api.post("/datasets/handbook/selection", json={"items": made_in_the_ui}).status_code == 200
    (root / "data.yaml").write_text(dataset(summary="renamed summary"))
    run = apply(cli, root, sandbox)
    assert run.code == 0 and "updated  dataset handbook" in run.out, run.all
    assert picks_on(api) == {p["item_id"]: p["description"] for p in made_in_the_ui}
    assert selection_writes(sandbox) == {"POST /api/v1/datasets/{name}/selection": 1}  # the UI's own


def test_an_empty_list_means_none(cli, manifest_dir, sandbox, api):
    root = manifest_dir({"data.yaml": dataset()})
    assert apply(cli, root, sandbox).code == 0
    api.post("/datasets/handbook/selection", json={"items": [{"item_id": "/ui/1"}]})
    (root / "data.yaml").write_text(dataset([]))
    run = apply(cli, root, sandbox)
    assert run.code == 0 and "picks 1 removed" in run.out, run.all
    assert picks_on(api) == {}


@pytest.mark.parametrize("managed", [True, False])
def test_a_replace_keeps_the_picks(cli, manifest_dir, sandbox, api, managed):
    root = manifest_dir({"data.yaml": dataset(PICKS if managed else None)})
    assert apply(cli, root, sandbox).code == 0
    if not managed:  # picks made in the UI, many (beyond the list's preview of three)
        assert api.post("/datasets/handbook/selection", json={"items": PICKS}).status_code == 200
    (root / "data.yaml").write_text(dataset(PICKS if managed else None, http_url="http://w2:8080"))
    run = apply(cli, root, sandbox, "--replace", "handbook")
    assert run.code == 0 and "replaced dataset handbook" in run.out, run.all
    assert api.get("/datasets/handbook").json()["configuration"]["http_url"] == "http://w2:8080"
    assert picks_on(api) == {p["item_id"]: p.get("description") for p in PICKS}


def test_export_writes_the_picks_and_export_then_plan_is_in_sync(
    cli, manifest_dir, sandbox, api, tmp_path, monkeypatch
):
    many = [{"item_id": f"/data/{i:03}.txt", "description": f"item {i}"} for i in range(260)]  # two pages
    root = manifest_dir({"data.yaml": dataset(many), "bare.yaml": dataset(name="bare")})
    assert apply(cli, root, sandbox).code == 0
    out = tmp_path / "exported"
    run = cli("export", "-d", out, "--server", sandbox.url)
    assert run.code == 0, run.all
    written = yaml.safe_load((out / "dataset-handbook.yaml").read_text())
    assert written["selected_items"] == many
    assert yaml.safe_load((out / "dataset-bare.yaml").read_text())["selected_items"] == []
    for name in ("BARE", "HANDBOOK"):
        monkeypatch.setenv(f"DATASET_{name}_API_KEY", WEAVIATE)
    plan = cli("plan", out, "--server", sandbox.url, "--owner", "team")
    assert plan.code == 0 and "in sync" in plan.out.lower(), plan.all


def test_picks_of_another_owners_dataset_are_a_conflict_and_never_written(cli, manifest_dir, sandbox, api):
    root = manifest_dir({"data.yaml": dataset(PICKS[:2])})
    assert cli("apply", root, "--server", sandbox.url, "--owner", "other").code == 0
    (root / "data.yaml").write_text(dataset(PICKS[2:]))
    run = apply(cli, root, sandbox)
    assert run.code == 7 and "conflict" in run.all.lower(), run.all
    assert selection_writes(sandbox) == {} and set(picks_on(api)) == {"/data/a.txt", "/data/b.txt"}


def test_selection_by_label_leaves_other_datasets_picks_alone(cli, manifest_dir, sandbox, api):
    root = manifest_dir({"a.yaml": dataset(PICKS[:1], name="a"), "b.yaml": dataset(PICKS[:1], name="b")})
    assert apply(cli, root, sandbox).code == 0
    root.joinpath("a.yaml").write_text(dataset(PICKS[1:2], name="a"))
    root.joinpath("b.yaml").write_text(dataset(PICKS[1:2], name="b"))
    run = apply(cli, root, sandbox, "--target", "a")
    assert run.code == 0, run.all
    assert set(picks_on(api, "a")) == {"/data/b.txt"} and set(picks_on(api, "b")) == {"/data/a.txt"}


def test_a_saved_plan_is_stale_when_the_picks_change_on_the_server(cli, manifest_dir, sandbox, api, tmp_path):
    root = manifest_dir({"data.yaml": dataset(PICKS[:1])})
    assert apply(cli, root, sandbox).code == 0
    root.joinpath("data.yaml").write_text(dataset(PICKS[:2]))
    saved = tmp_path / "plan.json"
    assert cli("plan", root, "--server", sandbox.url, "--owner", "team", "--out", saved).code == 0
    api.post("/datasets/handbook/selection", json={"items": [{"item_id": "/ui/x"}]})
    run = cli("apply", saved, "--server", sandbox.url, "--owner", "team")
    assert run.code == 10, run.all
    assert "/ui/x" in picks_on(api) and "/data/b.txt" not in picks_on(api)


def test_invalid_picks_are_refused_with_every_problem_and_nothing_written(cli, manifest_dir, sandbox):
    bad = [{"item_id": "/a"}, {"item_id": ""}, {"item_id": "/a", "description": "again"}, "/c"]
    root = manifest_dir({"data.yaml": dataset(bad), "m.yaml": model_yaml("gpt-4o")})
    run = apply(cli, root, sandbox)
    assert run.code == 1, run.all
    assert "selected_items.1.item_id: must be a non-empty string" in run.err
    assert "selected_items.2.item_id: '/a' is already picked at line" in run.err
    assert "selected_items.3: must be a mapping (item_id, description), got a string" in run.err
    assert {k for k in sandbox.stats() if not k.startswith("GET")} == set()


def test_a_published_flip_is_a_replace_with_the_policies_deleted_first(cli, manifest_dir, sandbox, api):
    files = {
        "models.yaml": model_yaml("gpt-4o"),
        "data.yaml": dataset(),
        "ep.yaml": endpoint_yaml() + "published: true\n",
    }
    root = manifest_dir(files)
    assert apply(cli, root, sandbox).code == 0
    assert api.get("/endpoints/support-bot").json()["published"] is True
    root.joinpath("ep.yaml").write_text(endpoint_yaml() + "published: false\n")
    plan = cli("plan", root, "--server", sandbox.url, "--owner", "team")
    assert "-/+ replace endpoint support-bot" in plan.out and "[needs --replace support-bot]" in plan.out, (
        plan.out
    )
    assert "published: true -> false" in plan.out
    held = apply(cli, root, sandbox)
    assert api.get("/endpoints/support-bot").json()["published"] is True, held.all
    run = apply(cli, root, sandbox, "--replace", "support-bot", "--max-delete", "3")
    assert run.code == 0, run.all
    detail = api.get("/endpoints/support-bot").json()
    assert detail["published"] is False and sorted(p["name"] for p in detail["policies"]) == [
        "per-user",
        "staff-only",
    ]
    assert api.get("/policies/").status_code == 200  # no orphan: the old policies went first
    assert "replaced endpoint support-bot" in run.out and run.out.count("deleted  policy support-bot/") == 2


def test_the_watch_daemon_converges_declared_picks_and_never_wipes_ui_picks(
    cli, manifest_dir, sandbox, api, daemons, tmp_path
):
    from .conftest import poll
    from .test_watch_kinds import round_events

    root = manifest_dir({"data.yaml": dataset(PICKS[:2]), "bare.yaml": dataset(name="bare")})
    daemon = daemons(
        root, "--server", sandbox.url, "--owner", "team", "--resync-interval", "0.5",
        cwd=tmp_path, env={"WEAVIATE_KEY": WEAVIATE},
    )  # fmt: skip
    round_events(daemon, "startup")
    ui = [{"item_id": "/ui/1", "description": "made in the UI"}]
    assert api.post("/datasets/bare/selection", json={"items": ui}).status_code == 200
    (root / "data.yaml").write_text(dataset(PICKS[1:4]))
    poll(lambda: set(picks_on(api)) == {"/data/b.txt", "/data/c.txt", "/data/d.txt"}, "the saved picks")
    round_events(daemon, "resync", since=daemon.mark())  # a whole round after the UI's pick
    assert picks_on(api, "bare") == {"/ui/1": "made in the UI"}
    assert selection_writes(sandbox) == {
        "POST /api/v1/datasets/{name}/selection": 2,  # the UI's, then the daemon's one add
        "DELETE /api/v1/datasets/{name}/selection": 1,
    }
    assert daemon.terminate() == 0 and "Traceback" not in daemon.log
