import json

import httpx
import pytest

from reconciler.apply import ApplyOptions, Executor
from reconciler.backoff import Backoff
from reconciler.client import SpaceClient
from reconciler.errors import AuthError
from reconciler.graph_apply import run_plans
from reconciler.model import OWNER_TAG, Manifest, Op, Result
from reconciler.plan import plan
from reconciler.schemas import DtypeFacts


class MockSpace:
    """An in-memory models API with scripted failures, behind httpx.MockTransport."""

    def __init__(self):
        self.models = {}
        self.script = []  # (method, response-or-callable) consumed in order when the method matches
        self.calls = []

    def handler(self, request):
        method = request.method
        self.calls.append(method)
        for i, (m, action) in enumerate(self.script):
            if m == method:
                del self.script[i]
                result = action(request) if callable(action) else action
                if result is not None:
                    return result
                break
        name = request.url.path.rsplit("/", 1)[-1]
        if method == "POST":
            body = json.loads(request.content)
            if body["name"] in self.models:
                return httpx.Response(409, json={"detail": f"Model '{body['name']}' already exists"})
            self.models[body["name"]] = body
            return httpx.Response(201, json=body)
        if method == "GET" and name:
            model = self.models.get(name)
            return httpx.Response(200, json=model) if model else httpx.Response(404, json={"detail": "nf"})
        if method == "GET":
            return httpx.Response(200, json=list(self.models.values()))
        if method == "PATCH":
            self.models[name].update(json.loads(request.content))
            return httpx.Response(200, json=self.models[name])
        if method == "DELETE":
            return (
                httpx.Response(200, json={"message": "ok"})
                if self.models.pop(name, None)
                else httpx.Response(404)
            )
        raise AssertionError(method)

    def client(self):
        return SpaceClient(
            "http://127.0.0.1:1",
            transport=httpx.MockTransport(self.handler),
            retry=Backoff(delays=(0.0,), jitter=0),
            sleep=lambda s: None,
        )


def m(name, model="gpt-4o", summary=""):
    return Manifest(
        name, "openai", {"api_key": "k", "model": model}, summary, (), sensitive=frozenset({"api_key"})
    )


def run(space, desired, **options):
    client = space.client()
    observed = {x.name: x for x in client.list_models()}
    the_plan = plan(desired, observed, facts=DtypeFacts({"openai": frozenset({"api_key"})}))
    return run_plans(
        Executor(client, ApplyOptions(parallelism=options.pop("parallelism", 1), **options)), the_plan
    )


def results(report):
    return {o.name: o.result for o in report.outcomes}


@pytest.mark.parametrize("parallelism", [1, 4])
def test_creates_then_second_run_is_a_noop(parallelism):
    space = MockSpace()
    report = run(space, [m("a"), m("b"), m("c")], parallelism=parallelism)
    assert results(report) == {"a": Result.CREATED, "b": Result.CREATED, "c": Result.CREATED}
    assert space.models["a"]["tags"] == OWNER_TAG
    space.calls.clear()
    report = run(space, [m("a"), m("b"), m("c")], parallelism=parallelism)
    assert report.outcomes == () and report.in_sync == 3 and space.calls == ["GET"]


def test_409_with_equal_content_is_success():
    space = MockSpace()
    space.script.append(("POST", lambda r: (space.models.__setitem__("a", json.loads(r.content)), None)[1]))
    report = run(space, [m("a")])
    assert results(report) == {"a": Result.PRESENT}
    assert space.calls == ["GET", "POST", "GET"]


def test_409_with_different_content_is_a_conflict():
    space = MockSpace()

    def racer(request):
        space.models["a"] = {**json.loads(request.content), "configuration": {"model": "other"}}

    space.script.append(("POST", racer))
    report = run(space, [m("a")])
    assert results(report) == {"a": Result.CONFLICT}
    assert report.outcomes[0].error_kind == "conflict"


def test_lost_response_after_commit_is_looked_up_not_duplicated():
    space = MockSpace()

    def commit_then_drop(request):
        space.models["a"] = json.loads(request.content)
        raise httpx.RemoteProtocolError("peer closed connection", request=request)

    space.script.append(("POST", commit_then_drop))
    report = run(space, [m("a")])
    assert results(report) == {"a": Result.CREATED}
    assert space.calls.count("POST") == 1 and len(space.models) == 1


def test_500_then_absent_retries_the_post():
    space = MockSpace()
    space.script.append(("POST", httpx.Response(500, text="Internal Server Error")))
    report = run(space, [m("a")])
    assert results(report) == {"a": Result.CREATED}
    assert report.outcomes[0].attempts == 2 and space.calls == ["GET", "POST", "GET", "POST"]


def test_422_is_not_retried_and_other_models_continue():
    space = MockSpace()
    space.script.append(("POST", httpx.Response(422, json={"detail": [{"loc": ["body"], "msg": "bad"}]})))
    report = run(space, [m("a"), m("b")])
    assert results(report) == {"a": Result.FAILED, "b": Result.CREATED}
    assert not report.ok


def test_fail_fast_stops_submitting():
    space = MockSpace()
    space.script.append(("POST", httpx.Response(422, json={"detail": "bad"})))
    report = run(space, [m("a"), m("b")], fail_fast=True)
    assert results(report) == {"a": Result.FAILED, "b": Result.SKIPPED}


def test_auth_error_stops_all_writes():
    space = MockSpace()
    space.script.append(("POST", httpx.Response(401, json={"detail": "Admin API key required"})))
    with pytest.raises(AuthError):
        run(space, [m("a"), m("b"), m("c")])
    assert space.calls.count("POST") == 1 and space.models == {}


def test_update_patches_summary_and_keeps_owner_tag():
    space = MockSpace()
    run(space, [m("a")])
    report = run(space, [m("a", summary="new")])
    assert results(report) == {"a": Result.UPDATED}
    assert space.models["a"]["summary"] == "new" and space.models["a"]["tags"] == OWNER_TAG


def test_replace_only_when_asked():
    space = MockSpace()
    run(space, [m("a")])
    report = run(space, [m("a", model="gpt-4.1")])
    assert results(report) == {"a": Result.SKIPPED}
    assert "pass --replace a" in report.outcomes[0].message
    assert space.models["a"]["configuration"]["model"] == "gpt-4o"
    report = run(space, [m("a", model="gpt-4.1")], replace=frozenset({"a"}))
    assert results(report) == {"a": Result.REPLACED} and report.outcomes[0].op is Op.REPLACE
    assert space.models["a"]["configuration"]["model"] == "gpt-4.1"


def test_429_on_create_waits_as_told_and_retries_without_a_look_up():
    space = MockSpace()
    space.script.append(
        ("POST", httpx.Response(429, headers={"Retry-After": "2"}, json={"detail": "slow down"}))
    )
    sleeps = []
    client = space.client()
    client.sleep = sleeps.append
    the_plan = plan([m("a")], {}, facts=DtypeFacts({"openai": frozenset({"api_key"})}))
    report = run_plans(Executor(client, ApplyOptions(parallelism=1)), the_plan)
    assert results(report) == {"a": Result.CREATED} and report.outcomes[0].attempts == 2
    assert space.calls == ["POST", "POST"] and sleeps == [2.0]
