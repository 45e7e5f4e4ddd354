"""`watch` on a git-sync checkout, as in deploy/kubernetes: each commit is a new worktree behind a
link that is flipped atomically, then the old worktree is deleted. Polls with deadlines."""

import os
import shutil

import httpx

from .conftest import model_yaml, poll, server_names


def publish(root, commit, files):
    """What git-sync does for a new commit: a worktree, the link flipped, the old one removed."""
    tree = root / ".worktrees" / commit / "manifests"
    tree.mkdir(parents=True)
    for name, text in files.items():
        (tree / name).write_text(text)
    link = root / "repo"
    old = os.path.realpath(link) if link.is_symlink() else None
    (root / "tmp-link").symlink_to(f".worktrees/{commit}")
    os.replace(root / "tmp-link", link)
    if old:
        shutil.rmtree(old)


def test_every_published_commit_reaches_the_server(tmp_path, sandbox, daemons):
    git = tmp_path / "git"
    publish(git, "c1", {"a.yaml": model_yaml("a")})
    daemon = daemons(
        git / "repo" / "manifests",
        "--server",
        sandbox.url,
        "--metrics-port",
        "0",
        "--resync-interval",
        "600",
        cwd=tmp_path,
    )  # no resync: only the watch can see it
    url = daemon.wait_for("the metrics address", event="metrics_listening")["url"]
    daemon.wait_for("the first round", event="round", trigger="startup", status="ok")
    daemon.wait_for("the watcher", event="round", trigger="resync")  # the first tick: it is live
    for n, names in enumerate((["a", "b"], ["a", "b", "c"], ["a", "c"]), start=2):
        publish(git, f"c{n}", {f"{name}.yaml": model_yaml(name) for name in names})
        mark = daemon.mark()
        daemon.wait_for(f"the round for commit {n}", since=mark, event="round", trigger="files", status="ok")
        # without --prune, b stays on the server after its manifest goes
        poll(lambda want=set(names): want <= set(server_names(sandbox.url)), f"commit {n} on the server")
    assert server_names(sandbox.url) == ["a", "b", "c"]
    assert httpx.get(url + "/readyz").status_code == 200
    assert daemon.terminate() == 0


def project_file(spaces, server, token_file):
    """A project file for the spaces {name: tenant}, each with its folder spaces/<name>."""
    lines = ["spaces:"]
    for name, tenant in spaces.items():
        lines.append(
            f"  - {{name: {name}, server: '{server}', tenant: {tenant}, owner: {name}, "
            f"token: {{file: {token_file}}}, paths: [spaces/{name}]}}"
        )
    return "\n".join(lines) + "\n"


def test_many_spaces_with_config_under_the_link_follow_every_commit(tmp_path, sandbox_factory, daemons):
    """deploy/kubernetes/overlays/spaces: `watch --config=/git/repo/syft-reconciler.yaml` while
    git-sync publishes each commit as a new worktree and deletes the old one."""
    token = "tok-git-sync-spaces-81c"
    server = sandbox_factory(token=token, multi_tenancy=True)
    admin = {"Authorization": f"Bearer {token}"}
    tenants = {"acme": "acme", "globex": "globex", "initech": "initech"}
    for tenant in tenants.values():
        created = httpx.post(
            server.url + "/api/v1/tenants", json={"name": tenant, "display_name": tenant}, headers=admin
        )
        assert created.status_code == 201

    def models(tenant):
        headers = {**admin, "X-Tenant-Name": tenant}
        return sorted(m["name"] for m in httpx.get(server.url + "/api/v1/models/", headers=headers).json())

    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "token").write_text(token + "\n")
    git = tmp_path / "git"

    def commit(n, wanted):
        files = {"syft-reconciler.yaml": project_file(tenants, server.url, tmp_path / "secrets" / "token")}
        for space in tenants:
            for name in wanted.get(space, ()):
                files[f"spaces/{space}/{name}.yaml"] = model_yaml(name, dtype="ollama", model="llama3")
            files.setdefault(f"spaces/{space}/.keep", "")
        tree = git / ".worktrees" / f"c{n}"
        for rel, text in files.items():
            (tree / rel).parent.mkdir(parents=True, exist_ok=True)
            (tree / rel).write_text(text)
        link = git / "repo"
        old = os.path.realpath(link) if link.is_symlink() else None
        (git / "tmp-link").symlink_to(f".worktrees/c{n}")
        os.replace(git / "tmp-link", link)
        if old:
            shutil.rmtree(old)

    commit(1, {"acme": ["a1"], "globex": ["g1"], "initech": ["i0"]})
    daemon = daemons(
        "--config",
        git / "repo" / "syft-reconciler.yaml",
        "--prune",  # the whole set of each space, read through the link
        "--max-delete",
        "unlimited",
        "--metrics-port",
        "0",
        "--resync-interval",
        "600",
        cwd=tmp_path,
    )
    url = daemon.wait_for("the metrics address", event="metrics_listening")["url"]
    for space in tenants:
        daemon.wait_for(f"{space}'s first round", event="round", trigger="startup", status="ok", space=space)
    daemon.wait_for("the watcher", event="round", trigger="resync")
    commits = [
        {"acme": ["a1", "a2"], "globex": ["g1"], "initech": ["i1"]},
        {"acme": ["a2", "a3"], "globex": ["g1", "g2"], "initech": ["i1"]},
        {"acme": ["a3"], "globex": ["g2", "g3"], "initech": ["i1", "i2"]},
    ]
    for n, wanted in enumerate(commits, start=2):
        commit(n, wanted)
        for space, names in wanted.items():
            want = sorted(names)
            poll(lambda s=space, w=want: models(s) == w, f"commit {n} in {space}")
    poll(lambda: httpx.get(url + "/readyz").status_code == 200, "every space ready")
    assert daemon.terminate() == 0
