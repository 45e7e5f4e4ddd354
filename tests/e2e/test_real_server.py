"""The real server's quirks (../shared/syft-space-api.md), met through the CLI against the sandbox."""

import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from reconciler.sandbox import SandboxConfig

from .conftest import model_yaml, seed_model

KEY = "sk-canary-quirks-77aa"


@pytest.fixture(autouse=True)
def _key(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)


def writes(sandbox):
    return {k: v for k, v in sandbox.stats().items() if not k.startswith("GET")}


def test_foreign_tenant_on_single_tenant_server_is_refused(cli, manifest_dir, sandbox):
    root = manifest_dir({"a.yaml": model_yaml("a")})
    run = cli("apply", root, "--server", sandbox.url, "--tenant", "acme")
    assert run.code == 8
    assert run.err.strip() == f"error: tenant 'acme' does not exist on {sandbox.url}; nothing was written"
    run = cli("plan", root, "--server", sandbox.url, "--tenant", "acme", "-o", "json")
    assert json.loads(run.out)["error"]["kind"] == "tenant_not_found"
    assert writes(sandbox) == {}
    assert cli("apply", root, "--server", sandbox.url, "--tenant", "root").code == 0


def test_multi_tenant_writes_only_into_the_named_tenant(cli, manifest_dir, sandbox, api):
    sandbox.reset(SandboxConfig(multi_tenancy=True))
    assert api.post("/tenants", json={"name": "acme", "display_name": "Acme"}).status_code == 201
    root = manifest_dir({"a.yaml": model_yaml("a")})
    run = cli("apply", root, "--server", sandbox.url, "--tenant", "acme")
    assert run.code == 0, run.all
    acme = api.get("/models/", headers={"X-Tenant-Name": "acme"}).json()
    root_models = api.get("/models/", headers={"X-Tenant-Name": "root"}).json()
    assert [m["name"] for m in acme] == ["a"] and root_models == []
    run = cli("plan", root, "--server", sandbox.url, "--tenant", "acme", "--detailed-exitcode")
    assert run.code == 0


def test_two_applies_racing_with_500s_converge_without_duplicates(manifest_dir, sandbox, api):
    # Latency makes each apply take long enough that both list before the other has finished
    # creating, so names really race: each loser gets the real server's 409 or 500.
    # 60 models at 60 ms over 2 connections keep each apply busy ~2 s: wider than any start-up skew.
    sandbox.reset(SandboxConfig(race_500_rate=0.5, latency_ms=60, seed=7))
    count = 60
    root = manifest_dir({f"m{i:02}.yaml": model_yaml(f"m{i:02}") for i in range(count)})
    env = {**os.environ, "OPENAI_API_KEY": KEY}
    command = [sys.executable, "-m", "reconciler", "apply", str(root), "--server", sandbox.url, "-p", "2"]
    procs = [
        subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    results = [p.communicate(timeout=120) for p in procs]
    for proc, (out, err) in zip(procs, results, strict=True):
        assert proc.returncode == 0, out + err
        assert "Traceback" not in err
    names = [m["name"] for m in api.get("/models/").json()]
    assert sorted(names) == [f"m{i:02}" for i in range(count)]
    by_status = sandbox.stats(by_status=True)
    assert by_status.get("POST /api/v1/models/ 500", 0) > 0, by_status  # the race really happened


def test_names_round_trip_percent_encoded(cli, manifest_dir, sandbox, api):
    name = "ünï code 50%?#"
    root = manifest_dir({"a.yaml": model_yaml(json.dumps(name))})
    assert cli("apply", root, "--server", sandbox.url).code == 0
    (root / "a.yaml").write_text(model_yaml(json.dumps(name), summary="patched"))
    run = cli("apply", root, "--server", sandbox.url)
    assert run.code == 0 and f"updated  model {name}" in run.out
    stored = [m for m in api.get("/models/").json() if m["name"] == name]
    assert stored and stored[0]["summary"] == "patched"


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ('"a/b"', "must not contain `/` (the server could never read, patch or delete it)"),
        ('""', "must not be empty (the server could never read, patch or delete it)"),
    ],
)
def test_unaddressable_names_are_refused(cli, manifest_dir, sandbox, name, message):
    root = manifest_dir({"a.yaml": model_yaml(name)})
    run = cli("apply", root, "--server", sandbox.url)
    assert run.code == 1 and f"a.yaml:2:7: name: {message}" in run.err
    assert writes(sandbox) == {}


def test_surrounding_spaces_are_a_warning(cli, manifest_dir, sandbox):
    root = manifest_dir({"a.yaml": model_yaml('" padded "')})
    run = cli("validate", root)
    assert run.code == 0 and "warning: name: has leading or trailing spaces" in run.err
    assert cli("validate", root, "--strict").code == 1


def test_redacted_secret_is_not_comparable_not_drift(cli, manifest_dir, sandbox, api):
    sandbox.reset(SandboxConfig(redact_secrets=True))
    root = manifest_dir({"a.yaml": model_yaml("a")})
    assert cli("apply", root, "--server", sandbox.url).code == 0
    assert "api_key" not in api.get("/models/a").json()["configuration"]
    run = cli("plan", root, "--server", sandbox.url, "--detailed-exitcode")
    assert run.code == 0, run.out
    assert "configuration.api_key: not comparable (the server does not echo it)" in run.out
    data = json.loads(cli("plan", root, "--server", sandbox.url, "-o", "json").out)
    assert data["changes"][0]["op"] == "noop" and data["changes"][0]["not_comparable"] == [
        "configuration.api_key"
    ]


def test_dtype_the_server_does_not_offer_fails_before_any_write(cli, manifest_dir, sandbox):
    sandbox.reset(SandboxConfig(types=("openai",)))
    root = manifest_dir(
        {
            "a.yaml": model_yaml("a"),
            "c.yaml": "kind: Model\nname: c\ndtype: anthropic\nconfiguration:\n  api_key: ${OPENAI_API_KEY}\n",
        }
    )
    run = cli("apply", root, "--server", sandbox.url)
    assert run.code == 1
    assert run.err.splitlines()[0] == (
        f"{root}/c.yaml:3:8: dtype: the server {sandbox.url} does not offer dtype `anthropic` (it offers: openai)"
    )
    assert writes(sandbox) == {}


def test_timestamps_with_and_without_z(cli, manifest_dir, sandbox, api):
    seed_model(api, "a", key=KEY)
    root = manifest_dir({"a.yaml": model_yaml("a")})
    assert cli("plan", root, "--server", sandbox.url, "--detailed-exitcode").code == 0
    assert not api.get("/models/a").json()["created_at"].endswith("Z")


class _Echo422(BaseHTTPRequestHandler):
    """A server that answers every create like the real one does for a bad body: 422 echoing it."""

    def log_message(self, *args):
        pass

    def _send(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path == "/api/v1/models/types/":
            self._send(
                200, [{"name": "openai", "description": "", "config_schema": {}, "icon": "", "enabled": True}]
            )
        else:
            self._send(200, [])

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self._send(
            422,
            {
                "detail": [
                    {
                        "type": "string_type",
                        "loc": ["body", "summary"],
                        "msg": "Input should be a valid string",
                        "input": body,
                    }
                ]
            },
        )


@pytest.fixture
def echo_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Echo422)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("output", ["text", "json"])
def test_422_echo_never_shows_the_secret(cli, manifest_dir, echo_server, output):
    root = manifest_dir({"a.yaml": model_yaml("a")})
    run = cli("--debug", "apply", root, "--server", echo_server, "-o", output)
    assert run.code == 1
    assert KEY not in run.all
    assert "422 body.summary: Input should be a valid string" in run.all
    httpx.get(echo_server + "/")  # the stub is still up: nothing crashed
