"""Trust, but verify the server, for datasets, endpoints and policies as for models (test_trust.py):
a create answered with another object, a list that names one twice, a PATCH of an object deleted
since the list, and the time budget of one object. Through the real CLI against the sandbox,
behind a proxy (misbehaving.py's `upstream`) that tells only the scripted lie."""

import json

import pytest

from reconciler.apply import ApplyOptions, Executor
from reconciler.backoff import Backoff
from reconciler.client import SpaceClient
from reconciler.graph_apply import run_plans
from reconciler.kinds.plan import Observed
from reconciler.model import Change, Manifest, Op, Plan
from tests.e2e.conftest import model_yaml
from tests.e2e.test_kinds import DATASET, KEY, WEAVIATE, endpoint_yaml

from .misbehaving import Misbehaving, answer

ENDPOINT = endpoint_yaml(policies=False)
ONE_POLICY = ENDPOINT + (
    "policies:\n  - name: per-user\n    policy_type: rate_limit\n    configuration: {limit: 10/m}\n"
)


@pytest.fixture(autouse=True)
def _keys(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("WEAVIATE_KEY", WEAVIATE)


@pytest.fixture
def proxy(sandbox):
    with Misbehaving(upstream=sandbox.url) as server:
        yield server


def files(endpoint=ONE_POLICY):
    return {"models.yaml": model_yaml("gpt-4o"), "data.yaml": DATASET, "ep.yaml": endpoint}


def apply(cli, root, url, *extra):
    return cli("apply", root, "--server", url, "--owner", "team", *extra)


def writes(server):
    return [(method, path) for method, path, _, _ in server.requests if method != "GET"]


# -- a create answered with another object ----------------------------------------------------------

OTHER = {
    "dataset": (
        "/api/v1/datasets/",
        {"id": "d1", "name": "other", "dtype": "remote_weaviate"},
        "dataset handbook",
        "with dataset `other` (remote_weaviate), not `handbook` (remote_weaviate)",
    ),
    "dataset-dtype": (
        "/api/v1/datasets/",
        {"id": "d1", "name": "handbook", "dtype": "local_file"},
        "dataset handbook",
        "with dataset `handbook` (local_file), not `handbook` (remote_weaviate)",
    ),
    "endpoint": (
        "/api/v1/endpoints/",
        {"id": "e1", "slug": "other-bot", "name": "Support bot"},
        "endpoint support-bot",
        "with endpoint `other-bot`, not `support-bot`",
    ),
    "policy": (
        "/api/v1/policies/",
        {"id": "p1", "name": "other", "policy_type": "rate_limit"},
        "policy support-bot/per-user",
        "with policy `other` (rate_limit), not `per-user` (rate_limit)",
    ),
    "policy-type": (
        "/api/v1/policies/",
        {"id": "p1", "name": "per-user", "policy_type": "access"},
        "policy support-bot/per-user",
        "with policy `per-user` (access), not `per-user` (rate_limit)",
    ),
}


@pytest.mark.parametrize("status", [200, 201])
@pytest.mark.parametrize("case", sorted(OTHER))
def test_a_create_answered_with_another_object_is_a_failure(case, status, cli, manifest_dir, proxy):
    path, lie, label, said = OTHER[case]
    proxy.script("POST", path, answer(status, lie))
    run = apply(cli, manifest_dir(files()), proxy.url)
    assert run.code == 1, run.all
    [line] = [line for line in run.all.splitlines() if "not counted as done" in line]
    assert line == f"failed   {label}: POST {path}: the server answered {status} {said}; not counted as done"
    assert "Traceback" not in run.all and "created  " + label not in run.out


# -- a list that names one object twice ---------------------------------------------------------------

TWICE = {
    "dataset": (
        "/api/v1/datasets/",
        [{"id": f"d{i}", "name": "handbook", "dtype": "remote_weaviate"} for i in (1, 2)],
        "dataset `handbook`",
    ),
    "endpoint": (
        "/api/v1/endpoints/",
        [{"id": f"e{i}", "slug": "support-bot", "name": "x"} for i in (1, 2)],
        "endpoint `support-bot`",
    ),
    "policy": (
        "/api/v1/policies/",
        [
            {"id": f"p{i}", "name": "per-user", "policy_type": "rate_limit", "endpoint_id": "e1"}
            for i in (1, 2)
        ],
        "policy `e1/per-user`",
    ),
}


@pytest.mark.parametrize("command", ["plan", "apply"])
@pytest.mark.parametrize("case", sorted(TWICE))
def test_a_list_naming_one_object_twice_is_an_error(case, command, cli, manifest_dir, proxy):
    path, listed, shown = TWICE[case]
    proxy.script("GET", path, answer(200, listed))
    run = cli(command, manifest_dir(files()), "--server", proxy.url, "--owner", "team")
    assert run.code == 6, run.all
    assert run.err.strip().splitlines()[-1] == (
        f"error: GET {path}: the server lists {shown} more than once; "
        "refusing to plan against an inconsistent answer"
    )
    assert writes(proxy) == [] and "Traceback" not in run.all


# -- a PATCH of an object deleted since the list ------------------------------------------------------


def deleted_first(server, path):
    """The object at `path` is deleted (by someone else) just before our request reaches it."""

    def act(handler, body):
        assert server.upstream.delete(path).status_code == 200
        server.forward(handler, body)

    return act


def test_patch_404_creates_a_dataset_deleted_since_the_list(cli, manifest_dir, proxy, api):
    root = manifest_dir({"data.yaml": DATASET})  # no endpoint uses it: it may be deleted
    assert apply(cli, root, proxy.url).code == 0
    (root / "data.yaml").write_text(DATASET.replace("the handbook", "the new handbook"))
    proxy.script("PATCH", "/api/v1/datasets/handbook", deleted_first(proxy, "/api/v1/datasets/handbook"))
    run = apply(cli, root, proxy.url)
    assert run.code == 0 and "updated  dataset handbook" in run.out, run.all
    assert api.get("/datasets/handbook").json()["summary"] == "the new handbook"
    assert ("POST", "/api/v1/datasets/") in writes(proxy)[-1:]


def test_patch_404_creates_an_endpoint_deleted_since_the_list(cli, manifest_dir, proxy, api):
    root = manifest_dir(files(ENDPOINT))  # no policies: deleting it orphans none
    assert apply(cli, root, proxy.url).code == 0
    (root / "ep.yaml").write_text(endpoint_yaml(policies=False, summary="now"))
    path = "/api/v1/endpoints/support-bot"
    proxy.script("PATCH", path, deleted_first(proxy, path))
    run = apply(cli, root, proxy.url)
    assert run.code == 0 and "updated  endpoint support-bot" in run.out, run.all
    detail = api.get("/endpoints/support-bot").json()
    assert detail["summary"] == "now" and detail["model"]["name"] == "gpt-4o"
    assert detail["dataset"]["name"] == "handbook" and "managed-by:syft-reconciler/team" in detail["tags"]


def test_patch_404_creates_a_policy_deleted_since_the_list(cli, manifest_dir, proxy, api):
    root = manifest_dir(files())
    assert apply(cli, root, proxy.url).code == 0
    [policy] = api.get("/endpoints/support-bot").json()["policies"]
    (root / "ep.yaml").write_text(ONE_POLICY.replace("10/m", "20/m"))
    path = f"/api/v1/policies/{policy['id']}"
    proxy.script("PATCH", path, deleted_first(proxy, path))
    run = apply(cli, root, proxy.url)
    assert run.code == 0 and "updated  policy support-bot/per-user" in run.out, run.all
    [now] = api.get("/endpoints/support-bot").json()["policies"]
    assert now["id"] != policy["id"] and now["configuration"]["limit"] == "20/m"


# -- one object's time budget -------------------------------------------------------------------------


def dataset_create():
    manifest = Manifest(
        "handbook",
        "remote_weaviate",
        {"http_url": "http://w:8080", "grpc_url": "http://w:50051", "collection_name": "H"},
        kind="Dataset",
    )
    kinds = Plan((Change(Op.CREATE, "handbook", desired=manifest, kind="Dataset"),))
    return kinds, Observed(datasets={}, endpoints={}, policies=(), models={})


@pytest.mark.parametrize(("budget", "posts"), [(0.0, 1), (3600.0, 4)])
def test_one_dataset_create_has_the_time_budget_of_one_object(budget, posts, sandbox_factory):
    """Always busy, with a Retry-After of an hour: the budget, not the attempts, ends it; and no
    wait is longer than what is left of it (none at all when nothing is)."""
    server = sandbox_factory(fail_429_rate=1.0, retry_after_s=3600)
    slept = []
    kinds, observed = dataset_create()
    options = ApplyOptions(parallelism=1, max_create_attempts=4, model_budget=budget)
    with SpaceClient(server.url, sleep=slept.append, retry=Backoff()) as client:
        report = run_plans(Executor(client, options), Plan(()), kinds, observed)
    [outcome] = report.outcomes
    assert outcome.result.value == "failed" and outcome.label == "dataset handbook"
    assert server.stats() == {"POST /api/v1/datasets/": posts}
    if budget == 0:
        assert "gave up after 1 attempts in 0s (the limit per object is 0s)" in outcome.message
        assert slept == []
    else:
        assert outcome.message.startswith("gave up after 4 attempts: ")
        assert len(slept) == 3 and 0 < max(slept) <= budget


# -- odd list items of every kind: checked, one clear line, never exit 3 ----------------------------

ODD_LISTS = {
    "dataset-tags-a-number": (
        "/api/v1/datasets/",
        [{"id": "d1", "name": "handbook", "dtype": "remote_weaviate", "tags": 5}],
    ),
    "dataset-config-a-list": (
        "/api/v1/datasets/",
        [{"id": "d1", "name": "handbook", "dtype": "remote_weaviate", "configuration": [1]}],
    ),
    "datasets-not-a-list": ("/api/v1/datasets/", {"datasets": []}),
    "datasets-junk-items": ("/api/v1/datasets/", [1, "x", None]),
    "endpoint-tags-a-list-of-numbers": (
        "/api/v1/endpoints/",
        [{"id": "e1", "slug": "support-bot", "name": "S", "tags": [1, 2]}],
    ),
    "endpoint-model-a-string": (
        "/api/v1/endpoints/",
        [{"id": "e1", "slug": "support-bot", "name": "S", "model": "gpt-4o"}],
    ),
    "endpoint-no-slug": ("/api/v1/endpoints/", [{"id": "e1", "name": "S"}]),
    "policies-not-a-list": ("/api/v1/policies/", "policies"),
    "policy-no-endpoint": (
        "/api/v1/policies/",
        [{"id": "p1", "name": "x", "policy_type": "access", "endpoint_id": 7}],
    ),
}


@pytest.mark.parametrize("case", sorted(ODD_LISTS))
@pytest.mark.parametrize("command", [["plan"], ["plan", "-o", "json"], ["plan", "-o", "markdown"], ["apply"]])
def test_odd_list_items_of_every_kind_are_one_clear_error(case, command, cli, manifest_dir, proxy):
    path, body = ODD_LISTS[case]
    proxy.script("GET", path, answer(200, body))
    root = manifest_dir(files())
    run = cli(*command, root, "--server", proxy.url, "--owner", "team")
    assert run.code in (1, 6), run.all
    assert "Traceback" not in run.all and "unexpected error" not in run.all
    if "json" in command:
        errors = [json.loads(run.out)["error"]["message"]]
    else:
        errors = [line for line in run.err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and path.rstrip("/").rsplit("/", 1)[-1] in errors[0], run.all
    assert writes(proxy) == [], writes(proxy)
