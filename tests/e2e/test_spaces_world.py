"""Many spaces and the daemon's world, through the real CLI and the real daemon against the
sandbox: two spaces that would prune each other, a project file another user left above the
working folder, and spaces that cannot start yet (retried, named by /readyz, and /livez failing
while nothing applies). Polls with deadlines."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
from pathlib import Path

import httpx
import pytest

from reconciler.lock import space_lock
from reconciler.ownership import owner_tag
from reconciler.project import lock_key
from reconciler.sandbox import SandboxConfig, SandboxServer

from .conftest import model_yaml, poll

TOKEN = "tok-spaces-world-4d2e"
FOREIGN_UID = 12345
QUOTED_TOKEN = "'${SPACE_TOKEN}'"


@pytest.fixture
def tenants(sandbox_factory):
    """A multi-tenant sandbox (admin key TOKEN) with the tenants acme and globex."""
    server = sandbox_factory(token=TOKEN, multi_tenancy=True)
    for name in ("acme", "globex"):
        created = httpx.post(
            server.url + "/api/v1/tenants",
            json={"name": name, "display_name": name},
            headers={"Authorization": f"Bearer {TOKEN}"},
        )
        assert created.status_code == 201
    return server


def _http(server_url: str, tenant: str | None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {TOKEN}", **({"X-Tenant-Name": tenant} if tenant else {})}
    return httpx.Client(base_url=server_url + "/api/v1", headers=headers, follow_redirects=True)


def models(server_url: str, tenant: str | None = None) -> list[str]:
    with _http(server_url, tenant) as http:
        return sorted(m["name"] for m in http.get("/models/").json())


def seed(server_url: str, tenant: str | None, name: str, owner: str) -> None:
    body = {"name": name, "dtype": "ollama", "configuration": {"model": "llama3"}, "tags": owner_tag(owner)}
    with _http(server_url, tenant) as http:
        assert http.post("/models/", json=body).status_code == 201


def ollama(name: str) -> str:
    return model_yaml(name, dtype="ollama", model="llama3")


def entry(name: str, server: str, *, tenant: str | None = None, owner: str | None = None, token=None) -> str:
    fields = [f"name: {name}", f"server: '{server}'"]
    fields += [f"tenant: {tenant}"] if tenant else []
    fields += [f"owner: {owner}"] if owner else []
    fields += [f"token: {token or QUOTED_TOKEN}", f"paths: [spaces/{name}]"]
    return "  - {" + ", ".join(fields) + "}"


def write_project(root: Path, entries: list[str], *, owner: str | None = "platform") -> Path:
    """The project file, and a folder spaces/<name>/ holding the model <name>-m for each space."""
    for line in entries:
        name = line.split("name: ", 1)[1].split(",", 1)[0]
        folder = root / "spaces" / name
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "m.yaml").write_text(ollama(f"{name}-m"))
    head = [f"owner: {owner}"] if owner else []
    config = root / "syft-reconciler.yaml"
    config.write_text("\n".join([*head, "spaces:", *entries]) + "\n")
    return config


# -- 1. owners must not collide across spaces ---------------------------------------------------

COLLIDING = {
    "inherited project owner": lambda url: [
        entry("a", url, tenant="acme"),
        entry("b", url, tenant="acme"),
    ],
    "the same explicit owner": lambda url: [
        entry("a", url, tenant="acme", owner="team"),
        entry("b", url, tenant="acme", owner="team"),
    ],
    "one explicit, one inherited": lambda url: [
        entry("a", url, tenant="acme", owner="platform"),
        entry("b", url, tenant="acme"),
    ],
    "host case and trailing slash": lambda url: [
        entry("a", url.replace("127.0.0.1", "localhost"), tenant="acme"),
        entry("b", url.replace("127.0.0.1", "LocalHost") + "/", tenant="acme"),
    ],
    "default port and host case": lambda url: [
        entry("a", "https://space.example.org", tenant="acme"),
        entry("b", "https://Space.Example.org:443/", tenant="acme"),
    ],
    "no tenant in either": lambda url: [entry("a", url), entry("b", url)],
}


@pytest.mark.parametrize("member", sorted(COLLIDING))
def test_two_spaces_with_one_owner_on_one_space_are_refused_by_every_command(
    member, cli, tenants, tmp_path, monkeypatch
):
    monkeypatch.setenv("SPACE_TOKEN", TOKEN)
    config = write_project(tmp_path, COLLIDING[member](tenants.url))
    seed(tenants.url, "acme", "b-m", "platform")  # b's, on the server already
    seed(tenants.url, "acme", "b-old", "team")
    commands = [
        ["validate"],
        ["plan", "--prune"],
        ["apply", "--prune", "--auto-approve", "--max-delete", "unlimited"],
        ["export", "-d", tmp_path / "out"],
        ["watch"],
    ]
    for command in commands:
        run = cli(*command, "--config", config)
        assert run.code == 1, (command, run.all)
        [problem] = [line for line in run.err.splitlines() if "spaces[1].owner" in line]
        assert problem.startswith(f"{config}:4:"), problem
        assert "spaces[1] (b) and spaces[0] (a) drive the same space" in problem
        assert problem.endswith("give each space its own `owner:`")
    assert models(tenants.url, "acme") == ["b-m", "b-old"]  # nothing pruned, nothing created


def test_an_owner_on_the_command_line_cannot_merge_two_spaces_on_one_space(
    cli, tenants, tmp_path, monkeypatch
):
    monkeypatch.setenv("SPACE_TOKEN", TOKEN)
    config = write_project(
        tmp_path,
        [
            entry("a", tenants.url, tenant="acme", owner="team-a"),
            entry("b", tenants.url, tenant="acme", owner="team-b"),
        ],
    )
    run = cli("apply", "--config", config, "--owner", "one", "--prune", "--auto-approve")
    assert run.code == 64 and "a (" in run.err and "b (" in run.err and "drive the same space" in run.err
    monkeypatch.setenv("SYFT_RECONCILER_OWNER", "one")
    env = cli("plan", "--config", config)
    assert env.code == 64 and "drop --owner and give each space its own `owner:`" in env.err
    assert models(tenants.url, "acme") == []


def test_spaces_that_do_not_share_a_space_or_an_owner_prune_their_own(cli, tenants, tmp_path, monkeypatch):
    """Different tenants with one owner; one tenant with two owners; a tenant and none."""
    monkeypatch.setenv("SPACE_TOKEN", TOKEN)
    config = write_project(
        tmp_path,
        [
            entry("a", tenants.url, tenant="acme"),
            entry("b", tenants.url, tenant="globex"),
            entry("c", tenants.url, tenant="globex", owner="team-c"),
        ],
    )
    seed(tenants.url, "acme", "stale", "platform")  # a's own leftover: a prunes it
    run = cli("apply", "--config", config, "--prune", "--auto-approve", "-o", "json")
    assert run.code == 0, run.all
    assert models(tenants.url, "acme") == ["a-m"]
    assert models(tenants.url, "globex") == ["b-m", "c-m"]  # b and c leave each other's alone
    again = cli("plan", "--config", config, "--prune", "--detailed-exitcode")
    assert again.code == 0, again.all
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    tenant_and_none = write_project(mixed, [entry("x", tenants.url, tenant="acme"), entry("y", tenants.url)])
    assert cli("validate", "--config", tenant_and_none).code == 0


# -- 2. a project file is trusted only from the repository or a folder the user owns ----------


@pytest.fixture
def shared_folder(tmp_path):
    """tmp/shared/ (a folder others can write to) holding the user's own work/manifests/."""
    if os.geteuid() != 0:
        pytest.skip("needs root to give files to another user")
    shared = tmp_path / "shared"
    manifests = shared / "work" / "manifests"
    manifests.mkdir(parents=True)
    (manifests / "mine.yaml").write_text(ollama("mine"))
    return shared


def plant(shared: Path, text: str, foreign: str) -> Path:
    planted = shared / "syft-reconciler.yaml"
    planted.write_text(text)
    if foreign in ("file", "both"):
        os.chown(planted, FOREIGN_UID, FOREIGN_UID)
    if foreign in ("folder", "both"):
        os.chown(shared, FOREIGN_UID, FOREIGN_UID)
    return planted


@pytest.mark.parametrize("foreign", ["file", "folder", "both"])
@pytest.mark.parametrize("command", ["validate", "plan", "apply"])
def test_a_project_file_of_another_user_above_the_folder_is_refused(
    command, foreign, cli, sandbox_factory, shared_folder, monkeypatch
):
    """It names a server of its choosing and asks for the user's token: it gets neither."""
    server = sandbox_factory(token=TOKEN)
    planted = plant(
        shared_folder,
        f"spaces:\n  - {{name: x, server: '{server.url}', token: '${{SYFT_SPACE_TOKEN}}', "
        "paths: [work/manifests]}\n",
        foreign,
    )
    monkeypatch.setenv("SYFT_SPACE_TOKEN", TOKEN)
    monkeypatch.chdir(shared_folder / "work")
    run = cli(command)
    assert run.code == 11, run.all
    assert f"refusing the project file {planted}" in run.err and f"--config {planted}" in run.err
    assert "belongs to another user (uid 12345" in run.err
    assert models(server.url) == []  # the token never went there


@pytest.mark.parametrize("foreign", ["file", "folder"])
def test_another_users_owner_above_the_folder_cannot_steer_a_prune(
    foreign, cli, sandbox_factory, shared_folder, monkeypatch
):
    server = sandbox_factory()
    seed(server.url, None, "theirs", "team-b")
    plant(shared_folder, "owner: team-b\n", foreign)
    manifests = shared_folder / "work" / "manifests"
    run = cli("apply", manifests, "--server", server.url, "--prune", "--auto-approve")
    assert run.code == 11 and "refusing the project file" in run.err, run.all
    assert models(server.url) == ["theirs"]
    monkeypatch.chdir(manifests)
    assert cli("watch", "--server", server.url).code == 11  # the daemon finds it the same way


def test_config_names_a_foreign_file_on_purpose(cli, sandbox_factory, shared_folder):
    server = sandbox_factory(token=TOKEN)
    planted = plant(shared_folder, "owner: team-b\npaths: [work/manifests]\n", "both")
    run = cli("apply", "--config", planted, "--server", server.url, "--token", TOKEN)
    assert run.code == 0, run.all
    assert models(server.url) == ["mine"]


def test_inside_a_checkout_its_own_project_file_is_trusted_whoever_owns_it(cli, sandbox, tmp_path):
    """As git-sync's checkout, owned by git-sync's user and read by the daemon's."""
    if os.geteuid() != 0:
        pytest.skip("needs root to give files to another user")
    repo = tmp_path / "repo"
    (repo / "manifests").mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    (repo / "manifests" / "m.yaml").write_text(ollama("m"))
    (repo / "syft-reconciler.yaml").write_text("owner: team-r\npaths: [manifests]\n")
    for path in [repo, *repo.rglob("*")]:
        os.chown(path, FOREIGN_UID, FOREIGN_UID, follow_symlinks=False)
    run = cli("apply", repo / "manifests", "--server", sandbox.url)
    assert run.code == 0, run.all
    with _http(sandbox.url, None) as http:
        assert owner_tag("team-r") in http.get("/models/m").json()["tags"].split(",")


# -- 3. the daemon's world: spaces that cannot start are retried ------------------------------


SPACES = {"a": "acme", "b": "globex"}


def only_not_ready(url: str, names: list[str]) -> dict | None:
    """/readyz's `not_ready` once it names exactly `names` (a round's result is observed just
    after its log line)."""
    not_ready = httpx.get(url + "/readyz").json()["not_ready"]
    return not_ready if sorted(not_ready) == names else None


class Break:
    """Why a space cannot start (what /readyz says), and how the test takes it away."""

    def __init__(self, reason, undo):
        self.reason, self.undo = reason, undo


def break_space(kind: str, root: Path, name: str, url: str) -> Break:
    if kind == "token":  # the token file is not there (yet): a Secret mounted late
        token = root / "secrets" / name
        return Break("cannot read", lambda: token.write_text(TOKEN + "\n"))
    if kind == "lock":  # an apply holds the space's lock
        held = contextlib.ExitStack()
        held.enter_context(space_lock(root, lock_key(url, SPACES[name]), command="apply", shared=True))
        return Break("holds the lock", held.close)
    folder = root / "spaces" / name  # the folder is missing
    (folder / "m.yaml").unlink()
    folder.rmdir()

    def restore():
        folder.mkdir()
        (folder / "m.yaml").write_text(ollama(f"{name}-m"))

    return Break("no such file or directory", restore)


@pytest.mark.parametrize(
    "breaks", [("token", "token"), ("lock", "lock"), ("folder", "token"), ("token", "folder")]
)
@pytest.mark.timeout(90)
def test_spaces_that_cannot_start_are_retried_and_a_daemon_applying_nothing_is_not_alive(
    breaks, tenants, tmp_path, daemons
):
    (tmp_path / "secrets").mkdir()
    lines = [
        entry(
            name, tenants.url, tenant=tenant, token=f"{{file: secrets/{name}}}" if kind == "token" else None
        )
        for (name, tenant), kind in zip(SPACES.items(), breaks, strict=True)
    ]
    config = write_project(tmp_path, lines)
    made = {
        name: break_space(kind, tmp_path, name, tenants.url)
        for name, kind in zip(SPACES, breaks, strict=True)
    }
    try:
        daemon = daemons(
            "--config",
            config,
            "--metrics-port",
            "0",
            "--resync-interval",
            "1",
            cwd=tmp_path,
            env={"SPACE_TOKEN": TOKEN},
        )
        url = daemon.wait_for("the metrics address", event="metrics_listening")["url"]
        for name in SPACES:
            daemon.wait_for(f"{name} failing to start", event="space_failed", space=name)

        def livez():
            answer = httpx.get(url + "/livez")
            return answer.status_code == 503 and answer.json()["phase"] == "not_started"

        poll(livez, "/livez failing while no space applies")
        ready = httpx.get(url + "/readyz")
        assert ready.status_code == 503
        not_ready = ready.json()["not_ready"]
        for name in SPACES:
            assert not_ready[name]["status"] == "not_started"
            assert made[name].reason in not_ready[name]["reason"], not_ready
        assert 'syft_reconciler_space_started{space="a"} 0.0' in httpx.get(url + "/metrics").text.splitlines()

        made["a"].undo()  # the first space can start now; the other still cannot
        daemon.wait_for("a's first round", event="round", trigger="startup", status="ok", space="a")
        assert models(tenants.url, "acme") == ["a-m"]
        poll(lambda: httpx.get(url + "/livez").status_code == 200, "/livez alive: a space applies")
        not_ready = poll(lambda: only_not_ready(url, ["b"]), "only b not ready")
        assert made["b"].reason in not_ready["b"]["reason"]
        daemon.wait_for("b tried again", since=daemon.mark(), event="space_failed", space="b")
        failed = [e for e in daemon.events if e.get("event") == "space_failed" and e.get("space") == "b"]
        assert [e["failures"] for e in failed[:2]] == [1, 2]
        assert all(0.75 <= e["delay_s"] <= 1.25 for e in failed)  # backoff, capped by the resync

        made["b"].undo()
        daemon.wait_for("b's first round", event="round", trigger="startup", status="ok", space="b")
        assert models(tenants.url, "globex") == ["b-m"]
        poll(lambda: httpx.get(url + "/readyz").status_code == 200, "every space ready")
        metrics = httpx.get(url + "/metrics").text.splitlines()
        assert 'syft_reconciler_space_started{space="b"} 1.0' in metrics
        assert daemon.terminate() == 0
    finally:
        for broken in made.values():
            with contextlib.suppress(OSError):
                broken.undo()
    assert TOKEN not in daemon.log and "Traceback" not in daemon.log


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.timeout(60)
def test_a_space_whose_server_is_down_at_start_converges_when_it_comes_up(tenants, tmp_path, daemons):
    port = _free_port()
    late = f"http://127.0.0.1:{port}"
    config = write_project(tmp_path, [entry("a", tenants.url, tenant="acme"), entry("b", late)])
    daemon = daemons(
        "--config",
        config,
        "--metrics-port",
        "0",
        "--resync-interval",
        "1",
        "--retries",
        "0",
        cwd=tmp_path,
        env={"SPACE_TOKEN": TOKEN},
    )
    url = daemon.wait_for("the metrics address", event="metrics_listening")["url"]
    daemon.wait_for("a's first round", event="round", trigger="startup", status="ok", space="a")
    daemon.wait_for("b unreachable", event="round", status="unreachable", space="b")
    not_ready = poll(lambda: only_not_ready(url, ["b"]), "only b not ready")
    assert not_ready["b"]["status"] == "unreachable"
    assert httpx.get(url + "/livez").status_code == 200  # a restart would not bring the server up
    with SandboxServer(SandboxConfig(token=TOKEN), port=port) as server:
        daemon.wait_for("b's round once it is up", event="round", status="ok", space="b")
        assert models(server.url) == ["b-m"]
        poll(lambda: httpx.get(url + "/readyz").status_code == 200, "every space ready")
        assert daemon.terminate() == 0
    assert json.dumps(TOKEN) not in daemon.log
