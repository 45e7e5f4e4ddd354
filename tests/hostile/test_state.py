"""State and signals: saved plans bound to server and tenant, watch comparing against what the server
was last known to match, SIGTERM during apply, exports that read back exactly, metrics clients that
reset their connection."""

import json
import os
import signal
import socket
import struct
import subprocess
import sys
import time

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler import manifests as manifest_files
from reconciler.apply import ApplyOptions
from reconciler.backoff import Backoff
from reconciler.client import SpaceClient
from reconciler.export import to_yaml
from reconciler.loading import load
from reconciler.metrics import DaemonMetrics, MetricsServer
from reconciler.sandbox import SandboxConfig
from reconciler.schemas import SchemaRegistry
from reconciler.watch import RoundStatus, Trigger, WatchSettings
from reconciler.watch_round import Reconciler
from tests.e2e.conftest import model_yaml

from .misbehaving import answer, hang, reset

GOOD = "kind: Model\nname: {name}\ndtype: ollama\nconfiguration:\n  model: llama3\nsummary: {summary}\n"


# -- saved plans are bound to their server and tenant ---------------------------------------


@pytest.mark.parametrize(
    ("made_for", "applied_to", "ok"),
    [
        ("acme", "acme", True),
        ("acme", "beta", False),
        ("acme", None, False),
        (None, "acme", False),
        ("beta", "acme", False),
        ("root", "acme", False),
        ("acme", "root", False),
    ],
)
def test_a_saved_plan_is_bound_to_its_tenant(
    made_for, applied_to, ok, cli, manifest_dir, sandbox_factory, tmp_path
):
    sandbox = sandbox_factory(multi_tenancy=True)
    for tenant in ("acme", "beta"):
        assert (
            httpx.post(
                f"{sandbox.url}/api/v1/tenants", json={"name": tenant, "display_name": tenant}
            ).status_code
            == 201
        )
    root = manifest_dir({"a.yaml": GOOD.format(name="a", summary="s")})
    saved = tmp_path / "plan.json"
    tenant_args = lambda t: ["--tenant", t] if t else []  # noqa: E731
    made = cli("plan", root, "--server", sandbox.url, *tenant_args(made_for), "--out", saved)
    if made.code != 0:  # a multi-tenant server needs a tenant: nothing to apply anywhere
        assert made_for is None
        return
    run = cli("apply", saved, "--server", sandbox.url, *tenant_args(applied_to), "-o", "json")
    if ok:
        assert run.code == 0, run.all
    else:
        assert run.code == 64, run.all
        error = json.loads(run.out)["error"]
        assert error["kind"] == "wrong_target" and "was made for" in error["message"]


def test_a_saved_plan_is_bound_to_its_server(cli, manifest_dir, space, sandbox, tmp_path):
    root = manifest_dir({"a.yaml": GOOD.format(name="a", summary="s")})
    saved = tmp_path / "plan.json"
    assert cli("plan", root, "--server", sandbox.url, "--out", saved).code == 0
    run = cli("apply", saved, "--server", space.url)
    assert run.code == 64 and f"was made for {sandbox.url}, not {space.url}" in run.err
    assert [r for r in space.requests if r[0] != "GET"] == []


# -- watch: the server's known state, not the last attempt ----------------------------------

FAILURES = {
    "create-refused-400": ("POST", "/api/v1/models/", answer(400, {"detail": "no"})),
    "create-500": ("POST", "/api/v1/models/", answer(500, {"detail": "boom"})),
    "create-reset": ("POST", "/api/v1/models/", reset),
    "create-silent": ("POST", "/api/v1/models/", hang),
}


@pytest.mark.parametrize("failure", sorted(FAILURES))
def test_watch_applies_a_revert_after_a_half_failed_round(failure, manifest_dir, space):
    registry = SchemaRegistry.load()
    root = manifest_dir({"m.yaml": GOOD.format(name="m", summary="a")})
    client = SpaceClient(space.url, timeout=0.5, retry=Backoff(delays=()))
    metrics = DaemonMetrics()
    reconciler = Reconciler(
        lambda: (load([root], registry), None),
        client,
        registry,
        options=ApplyOptions(parallelism=1, max_create_attempts=1),
        settings=WatchSettings(),
    )

    def round_(trigger):
        result = reconciler(trigger)
        metrics.observe(result)
        return result

    assert round_(Trigger.STARTUP).ok
    # half way: m is patched to "b", n cannot be created
    space.script(*FAILURES[failure])
    manifest_dir({"m.yaml": GOOD.format(name="m", summary="b"), "n.yaml": GOOD.format(name="n", summary="n")})
    assert round_(Trigger.FILES).status is RoundStatus.FAILED
    assert [m["summary"] for m in space.models if m["name"] == "m"] == ["b"]
    assert metrics.health()[0] == 503
    # the revert: back to exactly the state applied in round 1
    (root / "n.yaml").unlink()
    manifest_dir({"m.yaml": GOOD.format(name="m", summary="a")})
    result = round_(Trigger.FILES)
    assert result.ok, result.message
    assert [m["summary"] for m in space.models if m["name"] == "m"] == ["a"]
    assert metrics.health()[0] == 200
    # and from then on, a difference on the server is drift again, not rewritten
    space.models[0]["summary"] = "edited"
    assert round_(Trigger.RESYNC).ok and space.models[0]["summary"] == "edited"
    client.close()


# -- SIGTERM during apply ---------------------------------------------------------------------


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_during_apply_finishes_in_flight_calls_and_reports(signum, manifest_dir, sandbox):
    sandbox.reset(SandboxConfig(latency_ms=20))
    root = manifest_dir({f"m{i:03}.yaml": model_yaml(f"m{i:03}", dtype="ollama") for i in range(100)})
    command = [sys.executable, "-m", "reconciler", "apply", str(root), "--server", sandbox.url, "-p", "4"]
    proc = subprocess.Popen(
        command, env=os.environ, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 30
    while sandbox.model_count() < 10 and time.monotonic() < deadline:
        time.sleep(0.005)
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 128 + signum, err
    # counts, not a line per model (a 100-model plan is shown in short, without per-model lines)
    summary = out.splitlines()[-1]
    created = int(summary.removeprefix("Apply interrupted: ").split(" created, ")[0])
    assert created == sandbox.model_count() < 100
    assert summary.endswith(f"{100 - created} not attempted, 0 in sync."), summary
    assert not any(line.startswith(("skipped", "created")) for line in out.splitlines())
    assert "Traceback" not in err


# -- exports read back exactly ------------------------------------------------------------

SEPARATORS = ["\x85", "\u2028", "\u2029", "\r", "\r\n", "\n", "\t", "\x1b", "\u202e", "\x00", "\ufeff", " "]
_text = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs",))
    | st.sampled_from([s for s in SEPARATORS if len(s) == 1]),
    max_size=30,
)
_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | _text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_text, inner, max_size=3),
    max_leaves=8,
)


@given(st.dictionaries(_text, _values, max_size=5), _text)
@settings(max_examples=300, deadline=None)
def test_exported_yaml_reads_back_exactly(configuration, summary):
    document = {"configuration": configuration, "summary": summary, summary: summary}
    text = to_yaml(document)
    documents, problems = manifest_files.parse(text, "x.yaml")
    assert not problems, (text, problems)
    assert documents[0].value == document


@pytest.mark.parametrize("sep", SEPARATORS, ids=lambda s: f"U+{ord(s[0]):04X}")
def test_export_then_plan_is_in_sync(sep, cli, sandbox, api, tmp_path):
    value = f"a{sep}b{sep}"
    api.post(
        "/models/",
        json={
            "name": "m",
            "dtype": "ollama",
            "summary": value,
            "tags": "",
            "configuration": {"model": value, "base_url": f"http://h/{sep}"},
        },
    )
    out = tmp_path / "exported"
    assert cli("export", "--server", sandbox.url, "-d", out).code == 0
    run = cli("plan", out, "--server", sandbox.url, "-o", "json")
    assert run.code == 0, run.all
    assert json.loads(run.out)["in_sync"] is True, run.out


# -- a metrics client that resets its connection --------------------------------------------


def _rst(sock):
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


RESETS = {
    "at-once": b"",
    "mid-request-line": b"GET /metr",
    "after-headers": b"GET /metrics HTTP/1.1\r\nHost: x\r\n",
    "before-reading-metrics": b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n",
    "before-reading-healthz": b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
    "garbage": b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\xff" * 64,
}


@pytest.mark.parametrize("case", sorted(RESETS))
def test_a_reset_metrics_client_prints_no_traceback(case, capfd):
    with MetricsServer(DaemonMetrics(), port=0) as server:
        port = int(server.url.rsplit(":", 1)[1])
        for _ in range(3):
            sock = socket.create_connection(("127.0.0.1", port))
            if RESETS[case]:
                sock.sendall(RESETS[case])
            _rst(sock)
        assert httpx.get(server.url + "/healthz").status_code == 503  # still serving
    err = capfd.readouterr().err
    assert "Traceback" not in err and "Exception" not in err, err


def test_watch_json_logs_stay_json_when_a_metrics_client_resets(manifest_dir, sandbox, tmp_path):
    from tests.e2e.conftest import Daemon

    root = manifest_dir({"a.yaml": model_yaml("a", dtype="ollama")})
    daemon = Daemon(root, "--server", sandbox.url, "--metrics-port", "0", cwd=tmp_path)
    try:
        url = daemon.wait_for("metrics", event="metrics_listening")["url"]
        daemon.wait_for("first round", event="round")
        port = int(url.rsplit(":", 1)[1])
        for payload in RESETS.values():
            sock = socket.create_connection(("127.0.0.1", port))
            if payload:
                sock.sendall(payload)
            _rst(sock)
        assert httpx.get(url + "/healthz").status_code == 200
        code = daemon.terminate()
    finally:
        daemon.kill()
    assert code == 0
    for line in daemon.lines:
        json.loads(line)
    assert "Traceback" not in daemon.log
