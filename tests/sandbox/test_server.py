"""Running the sandbox: SandboxServer's lifecycle, reset and stats, file databases, serve()."""

import asyncio
import os
import signal
import socket
import sqlite3
import stat
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from reconciler.sandbox import SandboxConfig, SandboxServer, create_app

MODELS = "/api/v1/models/"


def body(name="m"):
    return {"name": name, "dtype": "openai", "configuration": {"api_key": "sk-1"}}


# -- reset and stats -------------------------------------------------------------------------


def test_stats_count_requests_by_method_and_route_template(sandbox, http):
    http.post(MODELS, json=body("a"))
    http.post(MODELS, json=body("a"))
    http.get(MODELS)
    http.get("/api/v1/models/a")
    http.get("/api/v1/models/b/health")
    http.put("/api/v1/models/a")
    http.get("/api/v1/models")  # a 307: no route, so the bare path
    http.get("/nowhere")
    assert sandbox.stats() == {
        "POST /api/v1/models/": 2,
        "GET /api/v1/models/": 1,
        "GET /api/v1/models/{name}": 1,
        "GET /api/v1/models/{name}/health": 1,
        "PUT /api/v1/models/{name}": 1,
        "GET /api/v1/models": 1,
        "GET /nowhere": 1,
    }
    assert sandbox.stats(by_status=True) == {
        "POST /api/v1/models/ 201": 1,
        "POST /api/v1/models/ 409": 1,
        "GET /api/v1/models/ 200": 1,
        "GET /api/v1/models/{name} 200": 1,
        "GET /api/v1/models/{name}/health 404": 1,
        "PUT /api/v1/models/{name} 405": 1,
        "GET /api/v1/models 307": 1,
        "GET /nowhere 404": 1,
    }


@pytest.mark.parametrize("method", ["POST", "DELETE"])
def test_a_request_in_flight_across_a_reset_changes_nothing_and_is_not_counted(sandbox_factory, http, method):
    """The flake of the test above (two POSTs of one name, both 201): a request of an earlier test
    (a killed client's, still sleeping its latency) ran after the next test's reset, into its state,
    counted before the reset and so in no stats. Now it is refused: 503, nothing written or counted."""
    server = sandbox_factory(latency_ms=300)
    if method == "DELETE":
        assert http.post(MODELS, json=body("a")).status_code == 201
    key = f"{method} /api/v1/models/" + ("" if method == "POST" else "{name}")
    with ThreadPoolExecutor(1) as pool:
        url = MODELS if method == "POST" else MODELS + "a"
        pending = pool.submit(http.request, method, url, json=body("a") if method == "POST" else None)
        deadline = time.monotonic() + 10
        while key not in server.stats() and time.monotonic() < deadline:  # arrived, now waiting
            time.sleep(0.005)
        server.reset(SandboxConfig())  # the next test begins
        if method == "DELETE":
            assert http.post(MODELS, json=body("a")).status_code == 201  # the next test's model
        assert pending.result().status_code == 503
    assert server.model_count() == (1 if method == "DELETE" else 0)
    expected = {"POST /api/v1/models/ 201": 1} if method == "DELETE" else {}
    assert server.stats(by_status=True) == expected


def test_a_request_whose_body_comes_in_after_a_reset_is_refused_too(sandbox, http):
    reset_done = threading.Event()

    def slow_body():
        yield b'{"name": "late", '
        reset_done.wait(10)
        yield b'"dtype": "openai", "configuration": {}}'

    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(
            http.post, MODELS, content=slow_body(), headers={"content-type": "application/json"}
        )
        deadline = time.monotonic() + 10
        while "POST /api/v1/models/" not in sandbox.stats() and time.monotonic() < deadline:
            time.sleep(0.005)
        sandbox.reset()
        reset_done.set()
        response = pending.result()
    assert (response.status_code, response.json()) == (503, {"detail": "Service Unavailable"})
    assert sandbox.model_count() == 0 and sandbox.stats(by_status=True) == {}


def test_requests_refused_by_auth_are_counted_too(sandbox_factory, http):
    server = sandbox_factory(token="t")
    http.get(MODELS)
    assert server.stats(by_status=True) == {"GET /api/v1/models/ 401": 1}


def test_reset_wipes_models_tenants_and_stats(sandbox_factory, http):
    server = sandbox_factory(multi_tenancy=True)
    assert http.post("/api/v1/tenants", json={"name": "acme", "display_name": "Acme"}).status_code == 201
    assert http.post(MODELS, json=body(), headers={"X-Tenant-Name": "acme"}).status_code == 201
    assert http.post(MODELS, json=body(), headers={"X-Tenant-Name": "root"}).status_code == 201
    server.set_tenant_active("root", False)
    server.reset()
    assert server.config.multi_tenancy  # reset() without a config keeps it
    assert server.stats() == {} and server.model_count() == 0
    assert [t["name"] for t in http.get("/api/v1/tenants").json()] == ["root"]
    assert http.get(MODELS, headers={"X-Tenant-Name": "root"}).json() == []  # root active again


def test_reset_swaps_the_config(sandbox, http):
    sandbox.reset(SandboxConfig(token="t"))
    assert http.get(MODELS).status_code == 401
    sandbox.reset(SandboxConfig())
    assert http.get(MODELS).status_code == 200


def test_a_bad_config_is_refused_and_changes_nothing(sandbox, http):
    assert http.post(MODELS, json=body()).status_code == 201
    with pytest.raises(ValueError, match="unknown model types"):
        sandbox.reset(SandboxConfig(types=("openai", "gpt5")))
    assert sandbox.model_count() == 1 and sandbox.config == SandboxConfig()


@pytest.mark.parametrize(
    "fields",
    [{"fail_503_rate": 1.5}, {"race_500_rate": -0.1}, {"latency_ms": -1}, {"retry_after_s": -1}],
)
def test_config_values_are_checked(fields):
    with pytest.raises(ValueError):
        SandboxConfig(**fields)


def test_config_repr_hides_the_token():
    assert "s3cret" not in repr(SandboxConfig(token="s3cret"))


def test_types_given_as_a_list_become_a_tuple():
    assert SandboxConfig(types=["openai"]).types == ("openai",)  # type: ignore[arg-type]


# -- lifecycle -------------------------------------------------------------------------------


def test_the_url_is_known_before_start_and_servers_run_side_by_side():
    first, second = SandboxServer(), SandboxServer()
    assert first.url != second.url and first.url.startswith("http://127.0.0.1:")
    with first, second:
        for server in (first, second):
            assert httpx.get(server.url + "/api/v1/health").status_code == 200


def test_after_stop_the_port_refuses_connections():
    with SandboxServer() as server:
        url = server.url
    with pytest.raises(httpx.ConnectError):
        httpx.get(url + "/api/v1/health")


def test_create_app_serves_without_a_server():
    app = create_app(SandboxConfig(token="t"))

    async def scenario():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://sandbox") as client:
            assert (await client.get(MODELS)).status_code == 401
            response = await client.post(MODELS, json=body(), headers={"Authorization": "Bearer t"})
            assert response.status_code == 201

    try:
        asyncio.run(scenario())
    finally:
        app.state.sandbox.store.close()


# -- file databases --------------------------------------------------------------------------


def test_a_file_db_is_created_owner_only_and_persists(tmp_path):
    db = tmp_path / "nested" / ".syft-space" / "sandbox.db"
    with SandboxServer(db=db) as server:
        assert httpx.post(server.url + MODELS, json=body("kept")).status_code == 201
    assert stat.S_IMODE(db.stat().st_mode) == 0o600
    with SandboxServer(SandboxConfig(types=("openai",)), db=db) as server:
        assert [m["name"] for m in httpx.get(server.url + MODELS).json()] == ["kept"]
        server.reset()
        assert httpx.get(server.url + MODELS).json() == []


def test_a_file_db_runs_in_wal_mode(tmp_path):
    db = tmp_path / "sandbox.db"
    with SandboxServer(db=db):
        pass
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        conn.close()


# -- serve(): the foreground server ----------------------------------------------------------


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_up(url, proc, deadline_s=15.0):
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        try:
            return httpx.get(url + "/api/v1/health", timeout=1)
        except httpx.TransportError:
            time.sleep(0.02)
    raise AssertionError("serve() did not come up")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_serve_runs_in_the_foreground_and_stops_cleanly_on_signals(tmp_path, sig):
    port = free_port()
    db = tmp_path / "serve.db"
    code = (
        "from reconciler.sandbox import SandboxConfig, serve;"
        f"serve(SandboxConfig(token='t'), db={str(db)!r}, port={port})"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        url = f"http://127.0.0.1:{port}"
        assert wait_until_up(url, proc).status_code == 200
        assert httpx.get(url + MODELS).status_code == 401
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    assert stat.S_IMODE(db.stat().st_mode) == 0o600
    assert os.path.exists(db)
