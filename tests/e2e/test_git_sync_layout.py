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
