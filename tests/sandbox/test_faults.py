"""Each fault knob, made deterministic with rate 1.0 (or a seed); latency; secret redaction."""

import logging
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

MODELS = "/api/v1/models/"


def body(name="m", dtype="openai", **configuration):
    return {"name": name, "dtype": dtype, "configuration": configuration or {"api_key": "sk-1", "model": "x"}}


# -- 503 and 429: before anything else, on /api/v1/models* only ------------------------------


@pytest.mark.parametrize(
    ("method", "path", "route"),
    [
        ("GET", MODELS, MODELS),
        ("POST", MODELS, MODELS),
        ("GET", "/api/v1/models/m", "/api/v1/models/{name}"),
        ("GET", "/api/v1/models/types/", "/api/v1/models/types/"),
    ],
)
def test_503_answers_models_routes_before_auth_and_writes(sandbox_factory, http, method, path, route):
    server = sandbox_factory(fail_503_rate=1.0, token="t")
    response = http.request(method, path, json=body() if method == "POST" else None)
    assert (response.status_code, response.json()) == (503, {"detail": "Service Unavailable"})
    assert server.model_count() == 0
    assert server.stats(by_status=True) == {f"{method} {route} 503": 1}


def test_503_leaves_other_routes_alone(sandbox_factory, http):
    sandbox_factory(fail_503_rate=1.0)
    assert http.get("/api/v1/health").status_code == 200
    assert http.get("/api/v1/tenants").status_code == 200


@pytest.mark.parametrize(("retry_after_s", "header"), [(1, "1"), (0.25, "0.25"), (0, "0")])
def test_429_carries_retry_after(sandbox_factory, http, retry_after_s, header):
    server = sandbox_factory(fail_429_rate=1.0, retry_after_s=retry_after_s)
    response = http.post(MODELS, json=body())
    assert response.status_code == 429
    assert response.headers["retry-after"] == header
    assert response.json() == {"detail": "Too Many Requests"}
    assert server.model_count() == 0


def test_fault_draws_repeat_with_the_seed(sandbox_factory, http):
    def statuses(seed):
        sandbox_factory(fail_503_rate=0.5, fail_429_rate=0.5, seed=seed)
        return [http.get(MODELS).status_code for _ in range(40)]

    first = statuses(7)
    assert set(first) == {200, 429, 503}
    assert statuses(7) == first
    assert statuses(8) != first


# -- responses lost after the write committed ------------------------------------------------


def summary_of(http, name):
    response = http.get(f"/api/v1/models/{name}")
    return response.json()["summary"] if response.status_code == 200 else None


@pytest.mark.parametrize(
    ("method", "path", "sent", "name", "summary"),
    [
        ("POST", MODELS, {**body("new"), "summary": "n"}, "new", "n"),
        ("PATCH", "/api/v1/models/m", {"summary": "s"}, "m", "s"),
        ("DELETE", "/api/v1/models/m", None, "m", None),
    ],
)
def test_a_dropped_response_closes_the_connection_after_the_commit(
    sandbox_factory, http, caplog, capfd, method, path, sent, name, summary
):
    server = sandbox_factory(drop_after_commit_rate=1.0)
    with caplog.at_level(logging.DEBUG):
        with pytest.raises(httpx.RemoteProtocolError):
            http.post(MODELS, json=body("m"))
        with pytest.raises(httpx.RemoteProtocolError):
            http.request(method, path, json=sent)
    assert summary_of(http, name) == summary  # the write committed all the same
    route = MODELS if method == "POST" else "/api/v1/models/{name}"
    assert server.stats(by_status=True)[f"{method} {route} dropped"] >= 1
    # Intended aborts stay quiet: no uvicorn error record, no traceback on the terminal.
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert "Traceback" not in capfd.readouterr().err


def test_failed_writes_and_reads_are_not_dropped(sandbox_factory, http):
    server = sandbox_factory(drop_after_commit_rate=1.0)
    with pytest.raises(httpx.RemoteProtocolError):
        http.post(MODELS, json=body("m"))
    assert http.post(MODELS, json=body("m")).status_code == 409
    assert http.post(MODELS, json={}).status_code == 422
    assert http.get(MODELS).status_code == 200
    assert server.model_count() == 1


# -- the real server's 500 on a create race --------------------------------------------------


def test_a_create_losing_on_a_taken_name_can_be_a_plain_500(sandbox_factory, http):
    server = sandbox_factory(race_500_rate=1.0)
    assert http.post(MODELS, json=body("m")).status_code == 201
    response = http.post(MODELS, json=body("m"))
    assert response.status_code == 500
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert response.text == "Internal Server Error"
    assert server.model_count() == 1


def test_racing_creates_give_one_201_and_500s(sandbox_factory, http):
    server = sandbox_factory(race_500_rate=1.0)
    with ThreadPoolExecutor(20) as pool:
        statuses = sorted(pool.map(lambda _: http.post(MODELS, json=body("same")).status_code, range(20)))
    assert statuses == [201] + [500] * 19
    assert server.model_count() == 1


# -- latency ---------------------------------------------------------------------------------


def test_latency_delays_every_response_without_blocking_others(sandbox_factory, http):
    latency_s, count = 0.3, 20
    sandbox_factory(latency_ms=int(latency_s * 1000))
    start = time.monotonic()
    with ThreadPoolExecutor(count) as pool:
        responses = list(pool.map(lambda i: http.post(MODELS, json=body(f"m{i}")), range(count)))
    elapsed = time.monotonic() - start
    assert {r.status_code for r in responses} == {201}
    assert elapsed >= latency_s
    # Served one after another they would take count * latency = 6 s; concurrently, ~0.3 s.
    assert elapsed < count * latency_s / 3


# -- redaction -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("dtype", "configuration", "shown"),
    [
        ("openai", {"api_key": "sk-1", "model": "gpt-4o"}, {"model": "gpt-4o"}),
        ("anthropic", {"api_key": "sk-ant", "max_tokens": 5}, {"max_tokens": 5}),
        (
            "vllm",
            {"api_key": "v", "base_url": "http://v", "model": "m"},
            {"base_url": "http://v", "model": "m"},
        ),
        (
            "ollama",
            {"model": "llama3.2", "base_url": "http://o"},
            {"model": "llama3.2", "base_url": "http://o"},
        ),
    ],
)
def test_redaction_drops_the_write_only_fields_everywhere(sandbox_factory, http, dtype, configuration, shown):
    sandbox_factory(redact_secrets=True)
    created = http.post(MODELS, json={"name": "m", "dtype": dtype, "configuration": configuration})
    assert created.status_code == 201
    assert created.json()["configuration"] == shown
    assert http.get("/api/v1/models/m").json()["configuration"] == shown
    assert http.get(MODELS).json()[0]["configuration"] == shown
    assert http.patch("/api/v1/models/m", json={"summary": "s"}).json()["configuration"] == shown


def test_without_redaction_secrets_are_echoed(http):
    created = http.post(MODELS, json=body())
    assert created.json()["configuration"]["api_key"] == "sk-1"
    assert http.get(MODELS).json()[0]["configuration"]["api_key"] == "sk-1"


# -- connections reset before processing, and answers too slow for the client ----------------


def test_a_reset_closes_the_connection_before_anything_is_processed(sandbox_factory, http):
    server = sandbox_factory(reset_rate=1.0)
    # closed without an answer: seen as a protocol error, or (the RST first, under load) a read error
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        http.post(MODELS, json=body("never"))
    assert server.model_count() == 0
    assert server.stats(by_status=True)["POST /api/v1/models/ reset"] == 1


def test_a_slow_answer_times_out_the_client_but_the_write_committed(sandbox_factory, http):
    server = sandbox_factory(slow_rate=1.0, slow_ms=2000)
    with pytest.raises(httpx.ReadTimeout):
        http.post(MODELS, json=body("late"), timeout=0.2)
    deadline = time.monotonic() + 5
    while server.model_count() == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.model_count() == 1


@pytest.mark.parametrize("path", ["/api/v1/datasets/", "/api/v1/endpoints/x", "/api/v1/policies/types/"])
def test_faults_hit_the_other_kinds_routes_too(sandbox_factory, http, path):
    sandbox_factory(fail_503_rate=1.0)
    response = http.get(path)
    assert (response.status_code, response.json()) == (503, {"detail": "Service Unavailable"})
