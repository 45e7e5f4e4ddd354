"""Published endpoints fail closed: an endpoint's policies (access first) start right after it, before
any other work, so an interrupted apply leaves at most the endpoints in flight without their access
policy, and a rerun restores those first."""

import os
import signal
import subprocess
import sys
import threading
import time

from reconciler.apply import ApplyOptions, Executor
from reconciler.graph_apply import Schedule
from reconciler.kinds.graph import build
from reconciler.kinds.values import EndpointManifest, PolicySpec
from reconciler.model import Change, Op, Outcome, Plan, Result
from reconciler.sandbox import SandboxConfig

from .conftest import model_yaml

ACCESS = PolicySpec("staff", "access", {"allowed_users": ["*@example.org"]})
RATE = PolicySpec("per-user", "rate_limit", {"limit": "10/m"})


def _endpoint_plan(count: int) -> Plan:
    changes: list[Change] = []
    for i in range(count):
        slug = f"ep{i:02}"
        desired = EndpointManifest(slug, slug, model="m", policies=(RATE, ACCESS))
        changes.append(Change(Op.CREATE, slug, desired=desired, kind="Endpoint"))
        changes += [
            Change(Op.CREATE, f"{slug}/{p.name}", desired=p, kind="Policy", endpoint=slug)
            for p in (RATE, ACCESS)
        ]
    return Plan(tuple(changes))


def test_an_endpoints_policies_start_right_after_it_access_first():
    started: list[str] = []
    lock = threading.Lock()

    def carry_out(step):
        with lock:
            started.append(step.key)
        return Outcome("x", Op.CREATE, Result.CREATED)

    steps = build(Plan(), _endpoint_plan(5))
    Schedule(steps, Executor(None, ApplyOptions(parallelism=1)), carry_out).run(1)  # type: ignore[arg-type]
    expected = []
    for i in range(5):
        slug = f"ep{i:02}"
        expected += [f"endpoint:{slug}:write", f"policy:{slug}/staff:write", f"policy:{slug}/per-user:write"]
    assert started == expected


def _endpoints_yaml(count: int) -> dict[str, str]:
    files = {"m.yaml": model_yaml("m", dtype="ollama")}
    for i in range(count):
        files[f"ep{i:02}.yaml"] = (
            f"kind: Endpoint\nslug: ep{i:02}\nname: E{i}\nmodel: m\npublished: true\npolicies:\n"
            "  - {name: per-user, policy_type: rate_limit, configuration: {limit: 10/m}}\n"
            "  - {name: staff, policy_type: access, configuration: {allowed_users: ['*@example.org']}}\n"
        )
    return files


def _open_endpoints(api) -> list[str]:
    """Endpoints on the server without their access policy."""
    guarded = {p["endpoint_id"] for p in api.get("/policies/").json() if p["policy_type"] == "access"}
    return [e["slug"] for e in api.get("/endpoints/").json() if e["id"] not in guarded]


def test_an_interrupted_apply_leaves_at_most_the_endpoints_in_flight_open_and_a_rerun_closes_them(
    manifest_dir, sandbox, sandbox_factory, api, cli
):
    sandbox_factory(SandboxConfig(latency_ms=20))
    root = manifest_dir(_endpoints_yaml(40))
    command = [sys.executable, "-m", "reconciler", "apply", str(root), "--server", sandbox.url, "-p", "4"]
    proc = subprocess.Popen(
        command, env=os.environ, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 30
    while len(api.get("/endpoints/").json()) < 12 and time.monotonic() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    created = len(api.get("/endpoints/").json())
    assert 12 <= created < 40, out
    assert len(_open_endpoints(api)) <= 4, _open_endpoints(api)  # at most one per request in flight
    run = cli("apply", root, "--server", sandbox.url)
    assert run.code == 0, run.all
    assert _open_endpoints(api) == [] and len(api.get("/endpoints/").json()) == 40
