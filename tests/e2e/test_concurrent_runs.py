"""Two runs on one space: a run never deletes an object it did not see at plan time, and deleting an
endpoint never leaves policies behind (the real server then answers 500 to every GET /policies/ of
the tenant). Each case plans against the sandbox, lets "another run" change the server, then applies
that plan through the one executor."""

import pytest

from reconciler.apply import ApplyOptions, Executor
from reconciler.client import SpaceClient
from reconciler.graph_apply import run_plans
from reconciler.plan import Scope
from reconciler.round import observe_and_plan
from reconciler.schemas import SchemaRegistry

from .conftest import seed_model
from .test_kinds import WEAVIATE

CONFIG = {
    "http_url": "http://w:8080",
    "grpc_url": "http://w:50051",
    "api_key": WEAVIATE,
    "collection_name": "C",
}


def _endpoint(api, slug, *, dataset_id=None, model_id=None, policies=("staff",)):
    body = {
        "slug": slug,
        "name": slug,
        "model_id": model_id,
        "dataset_id": dataset_id,
        "tags": "managed-by:syft-reconciler",
    }
    endpoint = api.post("/endpoints/", json=body)
    assert endpoint.status_code in (200, 201), endpoint.text
    for name in policies:
        policy = {
            "name": name,
            "policy_type": "access",
            "configuration": {},
            "endpoint_id": endpoint.json()["id"],
        }
        assert api.post("/policies/", json=policy).status_code in (200, 201)
    return endpoint.json()["id"]


@pytest.fixture
def client(sandbox):
    with SpaceClient(sandbox.url) as client:
        yield client


def _planned_prune(client):
    """A plan (no owner: the bare tag is ours) that prunes everything on the server."""
    return observe_and_plan(
        client, (), SchemaRegistry.load(), scope=Scope(prune=True), endpoints=(), datasets=()
    )


def _apply(client, observed):
    executor = Executor(client, ApplyOptions(parallelism=2))
    return run_plans(executor, observed.plan, observed.kinds, observed.space)


@pytest.mark.parametrize("what", ["endpoint", "dataset", "model"])
def test_an_object_recreated_by_another_run_since_the_plan_is_not_deleted(client, api, what):
    model_id = None
    if what == "model":
        seed_model(api, "m")
    elif what == "dataset":
        body = {
            "name": "d",
            "dtype": "remote_weaviate",
            "configuration": CONFIG,
            "tags": "managed-by:syft-reconciler",
        }
        assert api.post("/datasets/", json=body).status_code == 201
    else:
        seed_model(api, "m")
        model_id = api.get("/models/m").json()["id"]
        _endpoint(api, "bot", model_id=model_id)
    observed = _planned_prune(client)
    # another run deletes it and creates its own in its place
    if what == "model":
        assert api.delete("/models/m").status_code == 200
        seed_model(api, "m")
        path = "/models/m"
    elif what == "dataset":
        assert api.delete("/datasets/d").status_code == 200
        body = {
            "name": "d",
            "dtype": "remote_weaviate",
            "configuration": CONFIG,
            "tags": "managed-by:syft-reconciler",
        }
        assert api.post("/datasets/", json=body).status_code == 201
        path = "/datasets/d"
    else:
        for policy in api.get("/endpoints/bot").json()["policies"]:
            assert api.delete(f"/policies/{policy['id']}").status_code == 200
        assert api.delete("/endpoints/bot").status_code == 200
        _endpoint(api, "bot", model_id=model_id)
        path = "/endpoints/bot"
    theirs = api.get(path).json()["id"]
    report = _apply(client, observed)
    outcome = next(o for o in report.outcomes if o.kind.lower() == what)
    assert outcome.result.value == "conflict" and "created in its place" in outcome.message
    assert api.get(path).json()["id"] == theirs
    assert api.get("/policies/").status_code == 200


def test_deleting_an_endpoint_takes_policies_added_since_the_plan_with_it(client, api):
    seed_model(api, "m")
    _endpoint(api, "bot", model_id=api.get("/models/m").json()["id"], policies=("staff",))
    observed = _planned_prune(client)
    endpoint_id = api.get("/endpoints/bot").json()["id"]
    # another run adds a policy after the plan was made
    late = {"name": "late", "policy_type": "access", "configuration": {}, "endpoint_id": endpoint_id}
    assert api.post("/policies/", json=late).status_code in (200, 201)
    report = _apply(client, observed)
    assert all(o.ok for o in report.outcomes), report.outcomes
    assert api.get("/endpoints/bot").status_code == 404
    listed = api.get("/policies/")
    assert listed.status_code == 200 and listed.json() == []  # nothing orphaned
