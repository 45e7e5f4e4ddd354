"""A whole space (models, datasets, endpoints, policies) through the real CLI against the sandbox."""

import json
import re

import pytest

from reconciler.model import OWNER_TAG
from reconciler.ownership import owner_tag

from .conftest import model_yaml

KEY = "sk-canary-kinds-7b2e"
WEAVIATE = "wv-canary-kinds-91c4d"


@pytest.fixture(autouse=True)
def _keys(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("WEAVIATE_KEY", WEAVIATE)


DATASET = """kind: Dataset
name: handbook
dtype: remote_weaviate
configuration: {http_url: "http://w:8080", grpc_url: "http://w:50051", api_key: "${WEAVIATE_KEY}", collection_name: Handbook}
summary: the handbook
"""


def endpoint_yaml(
    slug="support-bot", *, model="gpt-4o", summary="helps", response_type="both", policies=True
):
    text = f"""kind: Endpoint
slug: {slug}
name: Support bot
model: {model}
dataset: handbook
summary: {summary}
response_type: {response_type}
tags: [support]
"""
    if policies:
        text += """policies:
  - name: per-user
    policy_type: rate_limit
    configuration: {limit: 10/m}
  - name: staff-only
    policy_type: access
    configuration: {allowed_users: ["*@example.org"]}
"""
    return text


def space(manifest_dir, **kw):
    return manifest_dir(
        {"models.yaml": model_yaml("gpt-4o"), "data.yaml": DATASET, "ep.yaml": endpoint_yaml(**kw)}
    )


def writes(sandbox):
    return {k: v for k, v in sandbox.stats().items() if not k.startswith("GET")}


def test_space_converges_in_one_apply_and_second_writes_nothing(cli, manifest_dir, sandbox, api):
    root = space(manifest_dir)
    run = cli("apply", root, "--server", sandbox.url, "--owner", "team")
    assert run.code == 0, run.all
    assert "created  policy support-bot/per-user" in run.out
    detail = api.get("/endpoints/support-bot").json()
    assert detail["model"]["name"] == "gpt-4o" and detail["dataset"]["name"] == "handbook"
    assert sorted(p["name"] for p in detail["policies"]) == ["per-user", "staff-only"]
    before = writes(sandbox)
    run = cli("apply", root, "--server", sandbox.url, "--owner", "team")
    assert run.code == 0 and "0 created" not in run.out and "in sync" in run.out
    assert writes(sandbox) == before
    assert KEY not in run.all and WEAVIATE not in run.all


def test_a_whole_space_apply_sends_its_creates_and_one_list_per_kind_and_no_read_per_object(
    cli, manifest_dir, sandbox, api
):
    """The ids of what it creates come from the create answers: no GET of a model, dataset or
    endpoint after its create, whatever the parallelism (each endpoint waits for its model's and
    dataset's creates, each policy for its endpoint's)."""
    files = {f"m{i}.yaml": model_yaml(f"model-{i}") for i in range(2)}
    files.update({f"d{i}.yaml": DATASET.replace("handbook", f"data-{i}") for i in range(2)})
    for i in range(3):
        ep = endpoint_yaml(f"bot-{i}", model=f"model-{i % 2}").replace("handbook", f"data-{i % 2}")
        files[f"ep{i}.yaml"] = ep
    root = manifest_dir(files)
    run = cli("apply", root, "--server", sandbox.url, "--owner", "team", "-p", "4")
    assert run.code == 0, run.all
    assert sandbox.stats() == {
        "GET /api/v1/models/types/": 1,
        "GET /api/v1/models/": 1,
        "GET /api/v1/datasets/": 1,
        "GET /api/v1/endpoints/": 1,
        "GET /api/v1/policies/": 1,
        "POST /api/v1/models/": 2,
        "POST /api/v1/datasets/": 2,
        "POST /api/v1/endpoints/": 3,
        "POST /api/v1/policies/": 6,
    }
    for i in range(3):  # and the ids are the right ones
        detail = api.get(f"/endpoints/bot-{i}").json()
        assert detail["model"]["id"] == api.get(f"/models/model-{i % 2}").json()["id"]
        assert detail["dataset"]["id"] == api.get(f"/datasets/data-{i % 2}").json()["id"]
        assert len(detail["policies"]) == 2


def test_summary_is_a_patch_and_response_type_a_replace(cli, manifest_dir, sandbox, api):
    root = space(manifest_dir)
    assert cli("apply", root, "--server", sandbox.url, "--owner", "team").code == 0
    first_id = api.get("/endpoints/support-bot").json()["id"]
    (root / "ep.yaml").write_text(endpoint_yaml(summary="changed"))
    run = cli("apply", root, "--server", sandbox.url, "--owner", "team")
    assert run.code == 0 and "updated  endpoint support-bot" in run.out
    assert api.get("/endpoints/support-bot").json()["id"] == first_id
    (root / "ep.yaml").write_text(endpoint_yaml(summary="changed", response_type="raw"))
    run = cli("plan", root, "--server", sandbox.url, "--owner", "team")
    assert re.search(
        r"-/\+ replace endpoint support-bot  \(.*ep.yaml:1:1\)  \[needs --replace support-bot\]", run.out
    )
    run = cli(
        "apply",
        root,
        "--server",
        sandbox.url,
        "--owner",
        "team",
        "--replace",
        "support-bot",
        "--auto-approve",
        "--max-delete",
        "3",  # the endpoint and its two policies: a policy is counted like any object
    )
    assert run.code == 0, run.all
    detail = api.get("/endpoints/support-bot").json()
    assert detail["id"] != first_id and detail["response_type"] == "raw" and len(detail["policies"]) == 2
    assert api.get("/policies/").status_code == 200


def test_prune_deletes_policies_before_their_endpoint(cli, manifest_dir, sandbox, api):
    root = space(manifest_dir)
    assert cli("apply", root, "--server", sandbox.url, "--owner", "team").code == 0
    (root / "ep.yaml").unlink()
    run = cli("apply", root, "--server", sandbox.url, "--owner", "team", "--prune", "--auto-approve")
    assert (
        run.code == 11 and "refusing to delete 1 endpoint, 2 policies (1 pruned, 2 policies with" in run.err
    )
    run = cli(
        "apply",
        root,
        "--server",
        sandbox.url,
        "--owner",
        "team",
        "--prune",
        "--auto-approve",
        "--max-delete",
        "3",
    )
    assert run.code == 0, run.all
    assert run.out.index("deleted  policy support-bot/per-user") < run.out.index(
        "deleted  endpoint support-bot"
    )
    assert api.get("/endpoints/").json() == []
    listed = api.get("/policies/")
    assert listed.status_code == 200 and listed.json() == []


def test_a_create_shows_every_field_it_sets_in_text_markdown_and_json(cli, manifest_dir, sandbox):
    """A review sees what a new dataset, endpoint or policy is, as it does for a model; secrets
    as (sensitive)."""
    root = space(manifest_dir)
    text = cli("plan", root, "--server", sandbox.url).out
    for line in (
        "  + create dataset handbook",
        '      dtype: "remote_weaviate"',
        "      configuration.api_key: (sensitive)",
        '      configuration.collection_name: "Handbook"',
        "  + create endpoint support-bot",
        '      model: "gpt-4o"',
        '      dataset: "handbook"',
        '      tags: ["support"]',
        "  + create policy support-bot/per-user",
        '      policy_type: "rate_limit"',
        '      configuration.limit: "10/m"',
        '      configuration.allowed_users: ["*@example.org"]',
    ):
        assert any(shown == line or shown.startswith(line + "  (") for shown in text.splitlines()), line
    markdown = cli("plan", root, "--server", sandbox.url, "--output", "markdown").out
    assert '| + create | Endpoint | `support-bot` | `name`: `"Support bot"`<br>' in markdown
    assert "`configuration.api_key`: `(sensitive)`" in markdown
    data = json.loads(cli("plan", root, "--server", sandbox.url, "--output", "json").out)
    dataset = next(c for c in data["changes"] if c["kind"] == "Dataset")
    assert {
        "field": "configuration.api_key",
        "old": None,
        "new": "(sensitive)",
        "sensitive": True,
    } in dataset["diffs"]
    assert WEAVIATE not in text + markdown + json.dumps(data)


def test_prune_after_the_last_dataset_and_endpoint_manifests_are_gone(cli, manifest_dir, sandbox, api):
    """A repository back to models only still prunes its own datasets and endpoints (and only
    with --prune: without it they are left alone, as before)."""
    root = space(manifest_dir)
    assert cli("apply", root, "--server", sandbox.url, "--owner", "team").code == 0
    weaviate = {
        "http_url": "http://w:8080",
        "grpc_url": "http://w:50051",
        "api_key": "k",
        "collection_name": "C",
    }
    for name, tags in (("theirs", owner_tag("other")), ("nobodys", ""), ("bare", OWNER_TAG)):
        body = {"name": name, "dtype": "remote_weaviate", "configuration": weaviate, "tags": tags}
        assert api.post("/datasets/", json=body).status_code == 201
    (root / "ep.yaml").unlink()
    (root / "data.yaml").unlink()
    run = cli("apply", root, "--server", sandbox.url, "--owner", "team")
    assert run.code == 0 and [e["slug"] for e in api.get("/endpoints/").json()] == ["support-bot"]
    run = cli("plan", root, "--server", sandbox.url, "--owner", "team", "--prune")
    assert "  - delete endpoint support-bot" in run.out and "  - delete dataset handbook" in run.out
    run = cli("apply", root, "--server", sandbox.url, "--owner", "team", "--prune", "--auto-approve")
    assert (
        run.code == 11
        and "refusing to delete 1 dataset, 1 endpoint, 2 policies (2 pruned, 2 policies with their endpoint): more than "
        "the default limit of 2"
        in run.err
    )  # the blast-radius limit holds
    args = ("--owner", "team", "--prune", "--auto-approve", "--max-delete", "4")
    run = cli("apply", root, "--server", sandbox.url, *args)
    assert run.code == 0, run.all
    assert api.get("/endpoints/").json() == []
    # only this owner's: another owner's, an unowned and a bare-tagged dataset stay
    assert sorted(d["name"] for d in api.get("/datasets/").json()) == ["bare", "nobodys", "theirs"]
    assert [m["name"] for m in api.get("/models/").json()] == ["gpt-4o"]


def test_replacing_a_model_recreates_the_endpoint_on_the_new_model(cli, manifest_dir, sandbox, api):
    root = space(manifest_dir)
    assert cli("apply", root, "--server", sandbox.url, "--owner", "team").code == 0
    old_model = api.get("/models/gpt-4o").json()["id"]
    (root / "models.yaml").write_text(model_yaml("gpt-4o", model="gpt-4o-mini"))
    run = cli("plan", root, "--server", sandbox.url, "--owner", "team", "--replace", "gpt-4o")
    assert "[cascade: model `gpt-4o` is replaced]" in run.out
    args = (
        "apply",
        root,
        "--server",
        sandbox.url,
        "--owner",
        "team",
        "--replace",
        "gpt-4o",
        "--auto-approve",
    )
    run = cli(*args)  # the cascade counts against the deletion limit (half of 3 owned objects)
    assert (
        run.code == 11
        and "refusing to delete 1 model, 1 endpoint, 2 policies (2 replaced, 1 of them by cascade, 2 policies with "
        "their endpoint)"
        in run.err
    )
    run = cli(*args, "--max-delete", "4")
    assert run.code == 0, run.all
    new_model = api.get("/models/gpt-4o").json()["id"]
    detail = api.get("/endpoints/support-bot").json()
    assert new_model != old_model and detail["model"]["id"] == new_model and len(detail["policies"]) == 2
    assert cli("apply", root, "--server", sandbox.url, "--owner", "team").out.count("created") == 0


def test_racing_applies_leave_no_duplicate(cli, manifest_dir, sandbox_factory, api):
    """Three processes apply the same space at once against a server whose losing creates are
    500s (the recorded endpoint and policy races): one object each, and all three converge."""
    import os
    import subprocess
    import sys

    server = sandbox_factory(race_500_rate=1.0)
    root = space(manifest_dir)
    for i in range(3):
        (root / f"ep{i}.yaml").write_text(endpoint_yaml(slug=f"bot-{i}"))
    env = {**os.environ, "OPENAI_API_KEY": KEY, "WEAVIATE_KEY": WEAVIATE}
    command = [
        sys.executable,
        "-m",
        "reconciler",
        "apply",
        str(root),
        "--server",
        server.url,
        "--owner",
        "team",
    ]
    procs = [
        subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(3)
    ]
    outputs = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], outputs
    assert [e["slug"] for e in api.get("/endpoints/").json()] == ["bot-0", "bot-1", "bot-2", "support-bot"]
    assert [d["name"] for d in api.get("/datasets/").json()] == ["handbook"]
    assert [m["name"] for m in api.get("/models/").json()] == ["gpt-4o"]
    policies = [(p["endpoint_id"], p["name"]) for p in api.get("/policies/").json()]
    assert len(policies) == 8 and len(set(policies)) == 8
    for out, err in outputs:
        assert KEY.encode() not in out + err and WEAVIATE.encode() not in out + err
    assert cli("apply", root, "--server", server.url, "--owner", "team").code == 0


def test_unknown_reference_is_an_error_before_any_write(cli, manifest_dir, sandbox):
    root = manifest_dir({"data.yaml": DATASET, "ep.yaml": endpoint_yaml(model="nope")})
    run = cli("apply", root, "--server", sandbox.url, "--owner", "team")
    assert (
        run.code == 1
        and f"{root}/ep.yaml:4:8: model: no model `nope` in the manifests or on the server" in run.err
    )
    assert writes(sandbox) == {}


def test_orphaned_policies_give_one_clear_error(cli, manifest_dir, sandbox, api):
    root = space(manifest_dir)
    assert cli("apply", root, "--server", sandbox.url, "--owner", "team").code == 0
    assert api.delete("/endpoints/support-bot").status_code == 200  # by hand: orphans its policies
    run = cli("plan", root, "--server", sandbox.url, "--owner", "team")
    assert run.code == 6 and "policies whose endpoint was deleted" in run.err and "Traceback" not in run.all


def test_watch_rounds_converge_every_kind_and_log_no_secret(tmp_path, sandbox, caplog):
    import logging

    from reconciler.apply import ApplyOptions
    from reconciler.backoff import Backoff
    from reconciler.client import SpaceClient
    from reconciler.schemas import SchemaRegistry
    from reconciler.sources import ManifestLoader, WorkTree
    from reconciler.watch import Trigger, WatchSettings
    from reconciler.watch_round import Reconciler

    caplog.set_level(logging.INFO)
    root = tmp_path / "m"
    root.mkdir()
    (root / "models.yaml").write_text(model_yaml("gpt-4o"))
    (root / "data.yaml").write_text(DATASET)
    (root / "ep.yaml").write_text(endpoint_yaml())
    registry = SchemaRegistry.load()
    with SpaceClient(sandbox.url, retry=Backoff(delays=())) as client:
        once = Reconciler(
            ManifestLoader([root], registry, WorkTree()),
            client,
            registry,
            options=ApplyOptions(facts=registry.facts, max_create_attempts=1, owner="team"),
            settings=WatchSettings(owner="team"),
        )
        assert once(Trigger.STARTUP).ok
        before = writes(sandbox)
        assert once(Trigger.RESYNC).ok and writes(sandbox) == before
        httpx_patch(sandbox, "/endpoints/support-bot", {"summary": "by hand"})
        before = writes(sandbox)
        assert once(Trigger.RESYNC).ok and writes(sandbox) == before  # drift: reported, not undone
        assert "drift: endpoint support-bot: differs on the server (summary); not reverted" in caplog.text
        (root / "ep.yaml").write_text(endpoint_yaml(summary="from the watch"))
        assert once(Trigger.FILES).ok
    assert httpx_get(sandbox, "/endpoints/support-bot")["summary"] == "from the watch"
    assert KEY not in caplog.text and WEAVIATE not in caplog.text


def httpx_patch(sandbox, path, body):
    import httpx

    assert httpx.patch(sandbox.url + "/api/v1" + path, json=body).status_code == 200


def httpx_get(sandbox, path):
    import httpx

    return httpx.get(sandbox.url + "/api/v1" + path).json()


def test_every_output_format_hides_the_dataset_secret(cli, manifest_dir, sandbox, tmp_path):
    root = space(manifest_dir)
    outputs = [
        cli("plan", root, "--server", sandbox.url, "--owner", "team", "-o", fmt).all
        for fmt in ("text", "json", "markdown")
    ]
    outputs.append(cli("apply", root, "--server", sandbox.url, "--owner", "team", "-o", "json").all)
    (root / "data.yaml").write_text(DATASET.replace("Handbook", "Other"))
    saved = tmp_path / "plan.json"
    outputs.append(
        cli(
            "plan", root, "--server", sandbox.url, "--owner", "team", "--replace", "handbook", "--out", saved
        ).all
    )
    outputs.append(saved.read_text())
    outputs.append(cli("apply", saved, "--server", sandbox.url, "--auto-approve").all)
    outputs.append(cli("export", "--server", sandbox.url, "-d", tmp_path / "exported").all)
    for path in (tmp_path / "exported").rglob("*.yaml"):
        outputs.append(path.read_text())
    for text in outputs:
        assert WEAVIATE not in text and KEY not in text
    assert "(sensitive)" in outputs[0] or "configuration.api_key" not in outputs[0]


def test_export_writes_every_kind_and_plan_is_in_sync(cli, manifest_dir, sandbox, tmp_path, monkeypatch):
    root = space(manifest_dir)
    assert cli("apply", root, "--server", sandbox.url).code == 0  # no owner: bare-tagged, still in sync
    out = tmp_path / "exported"
    run = cli("export", "--server", sandbox.url, "-d", out)
    assert run.code == 0, run.all
    names = sorted(p.name for p in out.iterdir())
    assert names == ["dataset-handbook.yaml", "endpoint-support-bot.yaml", "gpt-4o.yaml"]
    endpoint = (out / "endpoint-support-bot.yaml").read_text()
    assert (
        "model: gpt-4o" in endpoint
        and "dataset: handbook" in endpoint
        and "policy_type: rate_limit" in endpoint
    )
    assert "${DATASET_HANDBOOK_API_KEY}" in (out / "dataset-handbook.yaml").read_text()
    monkeypatch.setenv("DATASET_HANDBOOK_API_KEY", WEAVIATE)
    monkeypatch.setenv("GPT_4O_API_KEY", KEY)
    run = cli("plan", out, "--server", sandbox.url, "--detailed-exitcode")
    assert run.code == 0, run.all
    assert "No changes: the server matches the manifests." in run.out
    assert WEAVIATE not in run.all + endpoint


def test_lost_answers_resets_and_503s_still_converge_once(cli, manifest_dir, sandbox_factory, api):
    server = sandbox_factory(drop_after_commit_rate=0.3, reset_rate=0.1, fail_503_rate=0.1, seed=7)
    root = space(manifest_dir)
    for i in range(3):  # more endpoints, more chances to lose an answer
        (root / f"ep{i}.yaml").write_text(endpoint_yaml(slug=f"bot-{i}"))
    run = cli("apply", root, "--server", server.url, "--owner", "team", "--retries", "8")
    assert run.code == 0, run.all
    assert "after" in run.out  # some creates were confirmed after a failed response
    from reconciler.sandbox import SandboxConfig

    server.reconfigure(SandboxConfig())  # faults off, state kept
    slugs = [e["slug"] for e in api.get("/endpoints/").json()]
    assert slugs == sorted(set(slugs)) and len(slugs) == 4
    assert sorted(d["name"] for d in api.get("/datasets/").json()) == ["handbook"]
    assert len(api.get("/policies/").json()) == 8
    assert "created" not in cli("apply", root, "--server", server.url, "--owner", "team").out


def test_a_retried_create_after_a_lost_answer_is_confirmed_not_duplicated(
    cli, manifest_dir, sandbox_factory, api
):
    server = sandbox_factory(drop_after_commit_rate=1.0)
    root = space(manifest_dir)
    run = cli("apply", root, "--server", server.url, "--owner", "team", "--retries", "2")
    assert "confirmed present after a failed response" in run.out, run.all
    assert [e["slug"] for e in api.get("/endpoints/").json()] == ["support-bot"]
    assert sorted(p["name"] for p in api.get("/policies/").json()) == ["per-user", "staff-only"]


def test_the_ids_found_by_the_look_up_after_a_lost_answer_are_used_without_another_read(
    cli, manifest_dir, sandbox_factory, api
):
    server = sandbox_factory(drop_after_commit_rate=1.0)
    run = cli("apply", space(manifest_dir, policies=False), "--server", server.url, "--owner", "team")
    assert run.code == 0, run.all
    reads = {k: v for k, v in server.stats().items() if k.startswith("GET") and "{" in k}
    # one look-up each after its lost answer, and the endpoint's ids are the ones it found
    assert reads == {
        "GET /api/v1/models/{name}": 1,
        "GET /api/v1/datasets/{name}": 1,
        "GET /api/v1/endpoints/{slug}": 1,
    }
    detail = api.get("/endpoints/support-bot").json()
    assert detail["model"]["id"] == api.get("/models/gpt-4o").json()["id"]
    assert detail["dataset"]["id"] == api.get("/datasets/handbook").json()["id"]


def test_validate_online_checks_dataset_and_policy_types_against_the_server(cli, manifest_dir, sandbox):
    root = space(manifest_dir)
    run = cli("validate", "--online", "--server", sandbox.url, root)
    assert run.code == 0 and "OK: 3 manifest(s)" in run.out, run.all
    assert "dtype `remote_weaviate` is disabled" in run.err  # as the recorded server reports it
    (root / "data.yaml").write_text(DATASET.replace("collection_name: Handbook", "collection_name: 5"))
    (root / "ep.yaml").write_text(
        endpoint_yaml().replace("policy_type: access", "policy_type: access\n    x: 1")
    )
    run = cli("validate", root)
    assert run.code == 1 and "ep.yaml:15:5: policies.1.x: unknown field" in run.err
    assert "data.yaml:4:117: configuration.collection_name: must be a string" in run.err


def test_adopt_patches_a_dataset_and_replaces_an_endpoint(cli, manifest_dir, sandbox, api):
    root = space(manifest_dir)
    assert cli("apply", root, "--server", sandbox.url).code == 0  # no owner: the bare tag
    dataset_id = api.get("/datasets/handbook").json()["id"]
    endpoint_id = api.get("/endpoints/support-bot").json()["id"]
    run = cli("plan", root, "--server", sandbox.url, "--owner", "team", "--adopt")
    assert re.search(r"~ update dataset handbook  \(.*\)  \[adopt\]", run.out)
    assert "-/+ replace endpoint support-bot" in run.out and "owner tag can only be set at create" in run.out
    run = cli(
        "apply",
        root,
        "--server",
        sandbox.url,
        "--owner",
        "team",
        "--adopt",
        "--auto-approve",
        "--max-delete",
        "3",
    )
    assert run.code == 0, run.all
    assert api.get("/datasets/handbook").json()["id"] == dataset_id  # adopted in place
    endpoint = api.get("/endpoints/support-bot").json()
    assert endpoint["id"] != endpoint_id and "managed-by:syft-reconciler/team" in endpoint["tags"]
    assert "created" not in cli("apply", root, "--server", sandbox.url, "--owner", "team").out


def test_selection_plans_only_the_selected_endpoint(cli, manifest_dir, sandbox, api):
    root = space(manifest_dir)
    (root / "ep2.yaml").write_text(endpoint_yaml(slug="other-bot"))
    run = cli("apply", root, "--server", sandbox.url, "--owner", "team", "--target", "support-bot",
              "--target", "gpt-4o", "--target", "handbook")  # fmt: skip
    assert run.code == 0, run.all
    assert [e["slug"] for e in api.get("/endpoints/").json()] == ["support-bot"]
    run = cli("plan", root, "--server", sandbox.url, "--owner", "team", "-l", "name=other-*", "-o", "json")
    kinds = json.loads(run.out)["changes"]
    assert [(k["kind"], k["name"], k["op"]) for k in kinds if k["op"] != "noop"] == [
        ("Endpoint", "other-bot", "create"),
        ("Policy", "other-bot/per-user", "create"),
        ("Policy", "other-bot/staff-only", "create"),
    ]


def test_a_saved_plan_executes_every_kind_and_goes_stale_when_an_endpoint_changes(
    cli, manifest_dir, sandbox, api, tmp_path
):
    root = space(manifest_dir)
    saved = tmp_path / "plan.json"
    assert cli("plan", root, "--server", sandbox.url, "--owner", "team", "--out", saved).code == 0
    assert '"Endpoint"' in saved.read_text() and WEAVIATE not in saved.read_text()
    run = cli("apply", saved, "--server", sandbox.url, "-o", "json")
    assert run.code == 0, run.all
    results = {(r["kind"], r["name"]): r["result"] for r in json.loads(run.out)["results"]}
    assert results[("Endpoint", "support-bot")] == results[("Policy", "support-bot/per-user")] == "created"
    assert cli("plan", root, "--server", sandbox.url, "--owner", "team", "--out", saved).code == 0
    assert api.patch("/endpoints/support-bot", json={"summary": "by hand"}).status_code == 200
    run = cli("apply", saved, "--server", sandbox.url)
    assert run.code == 10 and "the server changed since the plan was saved" in run.err
