"""Many spaces from one project file, through the CLI, against one multi-tenant sandbox."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import httpx
import pytest

from reconciler.spaces import shard_of

from .conftest import Daemon, git, model_yaml, poll

TOKEN = "admin-key"
TENANTS = [f"team-{i:02d}" for i in range(9)]


@pytest.fixture
def tenants(sandbox_factory):
    """A multi-tenant sandbox (admin key TOKEN) with the tenants TENANTS."""
    server = sandbox_factory(token=TOKEN, multi_tenancy=True)
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {TOKEN}"}) as http:
        for name in TENANTS:
            assert http.post("/api/v1/tenants", json={"name": name, "display_name": name}).status_code == 201
    return server


def tenant_models(server, tenant: str) -> list[str]:
    headers = {"Authorization": f"Bearer {TOKEN}", "X-Tenant-Name": tenant}
    with httpx.Client(base_url=server.url, headers=headers, follow_redirects=True) as http:
        return sorted(m["name"] for m in http.get("/api/v1/models/").json())


def seed_endpoint(server, tenant: str) -> None:
    """An endpoint (on a dataset) in the tenant that no manifest names."""
    headers = {"Authorization": f"Bearer {TOKEN}", "X-Tenant-Name": tenant}
    config = {
        "http_url": "http://w:8080",
        "grpc_url": "http://w:50051",
        "api_key": "k",
        "collection_name": "C",
    }
    with httpx.Client(base_url=server.url + "/api/v1", headers=headers) as http:
        dataset = http.post(
            "/datasets/", json={"name": "d", "dtype": "remote_weaviate", "configuration": config}
        )
        assert dataset.status_code == 201, dataset.text
        endpoint = {"name": "bot", "slug": "bot", "dataset_id": dataset.json()["id"]}
        assert http.post("/endpoints/", json=endpoint).status_code == 201


def write_project(root: Path, server_url: str, names: list[str], *, dead: str | None = None) -> Path:
    """Each tenant's own folder spaces/<tenant>/ with two models named after it."""
    lines = ["owner: platform", "spaces:"]
    for name in names:
        folder = root / "spaces" / name
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(2):
            (folder / f"m{i}.yaml").write_text(model_yaml(f"{name}-m{i}", key="sk-test"))
        url = _dead_url() if name == dead else server_url
        lines.append(
            f"  - {{name: {name}, server: '{url}', tenant: {name}, token: '${{SPACE_TOKEN}}', "
            f"paths: [spaces/{name}]}}"
        )
    file = root / "syft-reconciler.yaml"
    file.write_text("\n".join(lines) + "\n")
    return file


def _dead_url() -> str:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


@pytest.fixture
def daemon_of():
    started: list[Daemon] = []

    def start(*args, **kwargs):
        started.append(Daemon(*args, **kwargs))
        return started[-1]

    yield start
    for daemon in started:
        daemon.kill()


@pytest.fixture
def env(monkeypatch):
    monkeypatch.setenv("SPACE_TOKEN", TOKEN)


def test_apply_converges_each_tenant_to_its_own_folder(cli, tenants, tmp_path, env):
    config = write_project(tmp_path, tenants.url, TENANTS)
    run = cli("apply", "--config", config, "--auto-approve", "-o", "json")
    assert run.code == 0, run.all
    data = json.loads(run.out)
    assert data["version"] == 3 and data["exit_code"] == 0
    assert [s["name"] for s in data["spaces"]] == TENANTS
    for tenant in TENANTS:
        assert tenant_models(tenants, tenant) == [f"{tenant}-m0", f"{tenant}-m1"]
    again = cli("plan", "--config", config, "--detailed-exitcode")
    assert again.code == 0, again.all
    assert again.out.count("== space ") == len(TENANTS)
    assert f"{len(TENANTS)} of {len(TENANTS)} space(s) succeeded." in again.out


def test_a_dead_server_fails_its_space_alone(cli, tenants, tmp_path, env):
    config = write_project(tmp_path, tenants.url, TENANTS[:4], dead=TENANTS[1])
    run = cli("apply", "--config", config, "--retries", "0", "--timeout", "2", "-o", "json")
    assert run.code == 4, run.all  # all failing spaces failed the same way: unreachable
    data = json.loads(run.out)
    codes = {s["name"]: s["exit_code"] for s in data["spaces"]}
    assert codes == {TENANTS[0]: 0, TENANTS[1]: 4, TENANTS[2]: 0, TENANTS[3]: 0}
    assert data["spaces"][1]["error"]["kind"] == "unreachable"
    for tenant in (TENANTS[0], TENANTS[2], TENANTS[3]):
        assert tenant_models(tenants, tenant) == [f"{tenant}-m0", f"{tenant}-m1"]
    assert tenant_models(tenants, TENANTS[1]) == []
    text = cli("plan", "--config", config, "--retries", "0", "--timeout", "2")
    assert f"failed: {TENANTS[1]} (4)" in text.out
    assert "Traceback" not in text.all


def test_shards_cover_every_space_exactly_once(cli, tenants, tmp_path, env):
    config = write_project(tmp_path, tenants.url, TENANTS)
    seen: list[str] = []
    for i in (1, 2, 3):
        run = cli("apply", "--config", config, "--shard", f"{i}/3", "-o", "json")
        assert run.code == 0, run.all
        names = [s["name"] for s in json.loads(run.out)["spaces"]]
        assert all(shard_of(n, 3) == i for n in names)
        seen += names
    assert sorted(seen) == TENANTS
    for tenant in TENANTS:
        assert tenant_models(tenants, tenant) == [f"{tenant}-m0", f"{tenant}-m1"]


def test_shard_from_the_pod_host_name(cli, tenants, tmp_path, env, monkeypatch):
    config = write_project(tmp_path, tenants.url, TENANTS)
    monkeypatch.setenv("HOSTNAME", "syft-reconciler-1")
    run = cli("validate", "--config", config, "--shards", "3", "-o", "json")
    assert run.code == 0, run.all
    data = json.loads(run.out)
    assert data["shard"] == "2/3"
    assert [s["name"] for s in data["spaces"]] == [n for n in TENANTS if shard_of(n, 3) == 2]
    monkeypatch.setenv("HOSTNAME", "laptop")
    bad = cli("validate", "--config", config, "--shards", "3")
    assert bad.code == 64 and "cannot read a replica ordinal from host name 'laptop'" in bad.err


def test_space_globs_select_and_a_glob_matching_nothing_is_refused(cli, tenants, tmp_path, env):
    config = write_project(tmp_path, tenants.url, TENANTS)
    run = cli("plan", "--config", config, "--space", "team-0[12]", "--space", "team-08", "-o", "json")
    assert run.code == 0, run.all
    assert [s["name"] for s in json.loads(run.out)["spaces"]] == ["team-01", "team-02", "team-08"]
    typo = cli("plan", "--config", config, "--space", "tema-*")
    assert typo.code == 64 and "--space 'tema-*' matches no space" in typo.err


def test_a_missing_token_fails_its_space_and_mixed_failures_exit_1(cli, tenants, tmp_path, env):
    config = write_project(tmp_path, tenants.url, TENANTS[:3], dead=TENANTS[2])
    text = config.read_text().replace("${SPACE_TOKEN}", "${NO_SUCH_TOKEN}", 1)
    config.write_text(text)
    run = cli("apply", "--config", config, "--retries", "0", "--timeout", "2", "-o", "json")
    data = json.loads(run.out)
    assert [s["exit_code"] for s in data["spaces"]] == [64, 0, 4]
    assert run.code == 1 == data["exit_code"]  # failed in different ways
    assert "environment variable NO_SUCH_TOKEN is not set" in data["spaces"][0]["error"]["message"]


def test_validate_and_export_per_space(cli, tenants, tmp_path, env):
    config = write_project(tmp_path, tenants.url, TENANTS[:2])
    assert cli("apply", "--config", config).code == 0
    valid = cli("validate", "--config", config)
    assert valid.code == 0 and valid.out.count("OK: 2 manifest(s)") == 2
    out = tmp_path / "exported"
    run = cli("export", "--config", config, "-d", out)
    assert run.code == 0, run.all
    for tenant in TENANTS[:2]:
        assert sorted(p.name for p in (out / tenant).iterdir()) == [f"{tenant}-m0.yaml", f"{tenant}-m1.yaml"]


def test_one_space_options_are_refused_with_spaces(cli, tenants, tmp_path, env):
    config = write_project(tmp_path, tenants.url, TENANTS[:2])
    run = cli("plan", "--config", config, "--server", tenants.url)
    assert run.code == 64 and "--server: with `spaces:`" in run.err
    paths = cli("plan", "--config", config, str(tmp_path / "spaces"))
    assert paths.code == 64 and "drop PATHS" in paths.err


def test_space_options_without_spaces_are_a_usage_error(cli, tenants, tmp_path, manifest_dir):
    root = manifest_dir({"a.yaml": model_yaml("a")})
    run = cli("validate", str(root), "--space", "x")
    assert run.code == 64 and "--space and --shard need `spaces:`" in run.err


def test_a_literal_token_in_the_project_file_is_refused(cli, tmp_path):
    config = tmp_path / "syft-reconciler.yaml"
    config.write_text("spaces:\n  - name: a\n    server: http://127.0.0.1:1\n    token: sk-live-123\n")
    run = cli("validate", "--config", config)
    assert run.code == 1
    assert f"{config}:4:12: spaces[0].token: a token is never written in the project file" in run.err
    assert "sk-live-123" not in run.all


@pytest.mark.timeout(60)
def test_watch_over_many_spaces_picks_up_a_change_in_one(tenants, tmp_path, env, daemon_of):
    names = TENANTS[:6]
    config = write_project(tmp_path, tenants.url, names, dead=names[5])
    with config.open("a") as f:  # spaces that cannot start: a token not set, a folder missing
        f.write(
            f"  - {{name: ghost, server: '{tenants.url}', token: '${{NO_SUCH_TOKEN}}', paths: [spaces], "
            "owner: ghost}\n"
            f"  - {{name: lost, server: '{tenants.url}', token: '${{SPACE_TOKEN}}', paths: [nowhere], "
            "owner: lost}\n"
        )
    seed_endpoint(tenants, names[1])
    daemon = daemon_of(
        "--config",
        config,
        "--resync-interval",
        "30",
        "--metrics-port",
        "0",
        "--retries",
        "0",
        "--timeout",
        "2",
        "--spaces-parallelism",
        "2",
        cwd=tmp_path,
        env={"SPACE_TOKEN": TOKEN},
    )
    url = daemon.wait_for("the metrics address", event="metrics_listening")["url"]
    for name in names[:5]:
        daemon.wait_for(f"{name}'s first round", event="round", trigger="startup", status="ok", space=name)
        assert tenant_models(tenants, name) == [f"{name}-m0", f"{name}-m1"]
    daemon.wait_for("the dead space's round", event="round", status="unreachable", space=names[5])
    mark = daemon.mark()
    (tmp_path / "spaces" / names[2] / "m2.yaml").write_text(model_yaml(f"{names[2]}-m2", key="sk-test"))
    poll(lambda: f"{names[2]}-m2" in tenant_models(tenants, names[2]), "the new model in its tenant")
    files = daemon.wait_for("the files round", since=mark, event="round", trigger="files", status="ok")
    assert files["space"] == names[2]
    others = [e for e in daemon.events[mark:] if e.get("trigger") == "files" and e.get("space") != names[2]]
    assert others == []  # only the space whose folder changed ran a round
    assert tenant_models(tenants, names[1]) == [f"{names[1]}-m0", f"{names[1]}-m1"]

    ready = httpx.get(url + "/readyz")
    assert ready.status_code == 503
    body = ready.json()
    assert sorted(body["not_ready"]) == ["ghost", "lost", names[5]] and body["ready_spaces"] == 5
    assert "no such file or directory" in body["not_ready"]["lost"]["reason"]
    assert body["not_ready"][names[5]]["status"] == "unreachable"
    assert "NO_SUCH_TOKEN is not set" in body["not_ready"]["ghost"]["reason"]
    assert httpx.get(url + "/livez").status_code == 200
    metrics = httpx.get(url + "/metrics").text.splitlines()
    assert f'syft_reconciler_models{{space="{names[2]}",state="in_sync"}} 3.0' in metrics
    assert f'syft_reconciler_objects{{kind="model",space="{names[2]}",state="in_sync"}} 3.0' in metrics
    # every kind is counted in each space's own tenant: the endpoint seeded in one, none in another
    seeded = f'syft_reconciler_objects{{kind="endpoint",space="{names[1]}",state="unmanaged"}} 1.0'
    poll(lambda: seeded in httpx.get(url + "/metrics").text.splitlines(), "the seeded endpoint counted")
    assert f'syft_reconciler_objects{{kind="endpoint",space="{names[2]}",state="unmanaged"}} 0.0' in metrics
    assert f'syft_reconciler_rounds_total{{space="{names[2]}",status="ok",trigger="files"}} 1.0' in metrics
    assert daemon.terminate() == 0
    assert TOKEN not in daemon.log and "Traceback" not in daemon.log


def test_var_files_and_a_bad_owner_are_refused_with_spaces(cli, tenants, tmp_path, env):
    config = write_project(tmp_path, tenants.url, TENANTS[:1])
    vars_file = tmp_path / "vars.yaml"
    vars_file.write_text("A: 1\n")
    run = cli("validate", "--config", config, "--var-file", vars_file)
    assert run.code == 64 and "--var-file: with `spaces:`" in run.err
    bad = cli("plan", "--config", config, "--owner", "not ok!")
    assert bad.code == 64 and "--owner:" in bad.err


ONE_AT_A_TIME = ("--spaces-parallelism", "1", "--parallelism", "1")


@pytest.mark.timeout(60)
def test_sigterm_finishes_the_spaces_in_flight_and_starts_no_more(sandbox_factory, tmp_path):
    import os
    import signal
    import subprocess
    import sys

    server = sandbox_factory(token=TOKEN, multi_tenancy=True, latency_ms=100)
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {TOKEN}"}) as http:
        for name in TENANTS:
            assert http.post("/api/v1/tenants", json={"name": name, "display_name": name}).status_code == 201
    config = write_project(tmp_path, server.url, TENANTS)
    for i in range(2, 30):  # the first space takes ~3 s at 100 ms per request, one at a time
        (tmp_path / "spaces" / TENANTS[0] / f"m{i}.yaml").write_text(model_yaml(f"x{i}", key="sk-test"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "reconciler", "apply", "--config", str(config), "-o", "json", *ONE_AT_A_TIME],
        env={**os.environ, "SPACE_TOKEN": TOKEN},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        poll(lambda: tenant_models(server, TENANTS[0]), "the first space's first model")
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 143, out + err
    data = json.loads(out)
    assert data["spaces"][0]["exit_code"] == 143  # stopped submitting; its report stands
    assert 0 < len(tenant_models(server, TENANTS[0])) < 30
    assert data["spaces"][-1]["error"] == {"kind": "interrupted", "message": "not attempted (run stopped)"}
    assert tenant_models(server, TENANTS[-1]) == []
    assert "Traceback" not in err


def test_validate_online_strict_and_refusals_per_space(cli, tenants, tmp_path, env):
    config = write_project(tmp_path, tenants.url, TENANTS[:2])
    online = cli("validate", "--config", config, "--online", "-o", "json")
    assert online.code == 0, online.all
    assert [s["result"]["valid"] for s in json.loads(online.out)["spaces"]] == [True, True]
    strict = cli("validate", "--config", config, "--strict")  # the literal keys are warnings
    assert strict.code == 1 and strict.err.count("a literal secret is committed to git") >= 2
    assert cli("apply", "--config", config).code == 0
    for name in TENANTS[:2]:
        for f in (tmp_path / "spaces" / name).iterdir():
            f.unlink()
    # an empty set with --prune is refused in every space, before any write
    pruned = cli("apply", "--config", config, "--prune", "--auto-approve", "-o", "json")
    assert pruned.code == 11, pruned.all
    assert all(s["error"]["kind"] == "refused" for s in json.loads(pruned.out)["spaces"])
    plan = cli("plan", "--config", config, "--prune", "--allow-empty", "--max-delete", "1")
    assert plan.code == 11 and plan.err.count("error: apply would refuse this plan") == 2
    assert all(tenant_models(tenants, n) == [f"{n}-m0", f"{n}-m1"] for n in TENANTS[:2])


@pytest.mark.timeout(60)
def test_watch_over_many_spaces_at_git_head_applies_a_commit_to_its_space(tenants, tmp_path, env, daemon_of):
    names = TENANTS[:3]
    config = write_project(tmp_path, tenants.url, names)
    git(tmp_path, "init", "-q")
    git(tmp_path, "add", "-A")
    git(tmp_path, "commit", "-qm", "spaces")
    daemon = daemon_of(
        "--config", config, "--git", "--resync-interval", "30", cwd=tmp_path, env={"SPACE_TOKEN": TOKEN}
    )
    for name in names:
        daemon.wait_for(f"{name}'s first round", event="round", trigger="startup", status="ok", space=name)
    new = tmp_path / "spaces" / names[1] / "m9.yaml"
    new.write_text(model_yaml(f"{names[1]}-m9", key="sk-test"))
    mark = daemon.mark()
    git(tmp_path, "add", "-A")
    git(tmp_path, "commit", "-qm", "one more")
    head = git(tmp_path, "rev-parse", "HEAD")
    poll(lambda: f"{names[1]}-m9" in tenant_models(tenants, names[1]), "the committed model in its tenant")
    daemon.wait_for("the commit recorded", since=mark, event="applied_commit", commit=head, space=names[1])
    assert tenant_models(tenants, names[0]) == [f"{names[0]}-m0", f"{names[0]}-m1"]
    assert daemon.terminate() == 0


def test_every_kind_converges_in_each_space(cli, tenants, tmp_path, env, monkeypatch):
    from .test_kinds import DATASET, endpoint_yaml

    monkeypatch.setenv("WEAVIATE_KEY", "wk-canary-spaces-31f")
    names = TENANTS[:2]
    config = write_project(tmp_path, tenants.url, names)
    for name in names:
        folder = tmp_path / "spaces" / name
        (folder / "model.yaml").write_text(model_yaml("gpt-4o", key="sk-test"))
        (folder / "data.yaml").write_text(DATASET)
        (folder / "ep.yaml").write_text(endpoint_yaml(f"{name}-bot"))
    plan = cli("plan", "--config", config, "-o", "json")
    assert plan.code == 0, plan.all
    for section in json.loads(plan.out)["spaces"]:
        assert {c["op"] for c in section["result"]["changes"]} == {"create"}
    run = cli("apply", "--config", config)
    assert run.code == 0, run.all
    again = cli("plan", "--config", config, "--detailed-exitcode")
    assert again.code == 0, again.all  # every kind in sync in every space
    for name in names:
        headers = {"Authorization": f"Bearer {TOKEN}", "X-Tenant-Name": name}
        with httpx.Client(base_url=tenants.url, headers=headers, follow_redirects=True) as http:
            assert [e["slug"] for e in http.get("/api/v1/endpoints/").json()] == [f"{name}-bot"]
            assert len(http.get("/api/v1/policies/").json()) == 2
    assert "wk-canary-spaces-31f" not in plan.all + run.all + again.all


def test_validate_online_over_many_spaces_checks_every_kinds_types(cli, tenants, tmp_path, env, monkeypatch):
    """As one space does: datasets against the server's dataset types, policies against its
    policy types, in each space."""
    from .test_kinds import DATASET

    monkeypatch.setenv("WEAVIATE_KEY", "wk-canary-spaces-31f")
    names = TENANTS[:2]
    config = write_project(tmp_path, tenants.url, names)
    for name in names:
        (tmp_path / "spaces" / name / "data.yaml").write_text(DATASET)
    run = cli("validate", "--config", config, "--online")
    assert run.code == 0, run.all
    assert run.err.count("dtype `remote_weaviate` is disabled") == 2, run.err
    assert run.out.count("OK: 3 manifest(s)") == 2, run.out


def test_a_multi_space_markdown_plan_has_one_section_per_space(cli, tenants, tmp_path, env):
    """For the pull request comment of a project with spaces: one section per space (and one space
    picked with --space); --out, which binds one server and tenant, says it is not for spaces."""
    names = TENANTS[:2]
    config = write_project(tmp_path, tenants.url, names)
    run = cli("plan", "--config", config, "-o", "markdown")
    assert run.code == 0, run.all
    for name in names:
        assert f"## Space `{name}`" in run.out
        assert f"| + create | Model | `{name}-m0` |" in run.out
    assert run.out.count("### Syft Space plan for ") == 2
    one = cli("plan", "--config", config, "--space", names[0], "-o", "markdown")
    assert one.code == 0 and one.out.count("### Syft Space plan for ") == 1 and f"`{names[0]}-m0`" in one.out
    saved = cli("plan", "--config", config, "--out", tmp_path / "p.json")
    assert saved.code == 64 and "pick it with --space NAME" in saved.err


def test_a_saved_plan_of_one_space_applies_exactly_there(cli, tenants, tmp_path, env):
    """`plan --space NAME --out FILE`, reviewed, then `apply FILE`: that space's server, tenant and
    token come from the project file; the other spaces are not touched; a changed server is stale."""
    names = TENANTS[:2]
    config = write_project(tmp_path, tenants.url, names)
    saved = tmp_path / "p.json"
    run = cli("plan", "--config", config, "--space", names[0], "--out", saved)
    assert run.code == 0 and saved.exists(), run.all
    assert '"space": "team-00"' in saved.read_text() and TOKEN not in saved.read_text()
    run = cli("apply", saved, "--config", config)
    assert run.code == 0, run.all
    assert tenant_models(tenants, names[0]) == [f"{names[0]}-m0", f"{names[0]}-m1"]
    assert tenant_models(tenants, names[1]) == []
    # planned again, then the server changes before the apply: exactly that plan, or nothing
    (tmp_path / "spaces" / names[0] / "m0.yaml").write_text(
        model_yaml(f"{names[0]}-m0", key="sk-test", summary="new")
    )
    assert cli("plan", "--config", config, "--space", names[0], "--out", saved).code == 0
    headers = {"Authorization": f"Bearer {TOKEN}", "X-Tenant-Name": names[0]}
    with httpx.Client(base_url=tenants.url + "/api/v1", headers=headers, follow_redirects=True) as http:
        assert http.patch(f"/models/{names[0]}-m1", json={"summary": "by hand"}).status_code == 200
    run = cli("apply", saved, "--config", config)
    assert run.code == 10, run.all
    assert cli("apply", saved, "--config", config, "--prune").code == 64  # its options are the plan's


def test_repeated_warnings_fold_in_each_space_too(cli, tenants, tmp_path, env):
    names = TENANTS[:2]
    config = write_project(tmp_path, tenants.url, names)  # two literal keys in each space
    run = cli("plan", "--config", config)
    assert run.code == 0, run.all
    assert run.err.count("a literal secret is committed to git") == 2, run.err  # one a space
    assert run.err.count("and 1 more like it (--verbose shows each)") == 2
