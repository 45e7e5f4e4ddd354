"""Many spaces and the daemon's world, through the real CLI and the real daemon against the
sandbox: two spaces that would prune each other, a project file another user left above the
working folder, and spaces that cannot start yet (retried, named by /readyz, and /livez failing
while nothing applies). Polls with deadlines."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import httpx
import pytest

from reconciler.ownership import owner_tag

from .conftest import model_yaml

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
