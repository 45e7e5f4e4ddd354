"""Never delete what this repository does not own: owners, prune scope, the blast-radius limit,
replace policy, selection and symlinked or unreadable folders, through the real CLI against the
sandbox. Every test asserts the server's model list afterwards."""

import json
import os
import pty
import subprocess
import sys

import pytest

from reconciler.ownership import owner_tag

from .conftest import DEADLINE_S, Daemon, model_yaml, names, poll, seed_model

KEY = "sk-canary-owners-5e1b"


@pytest.fixture(autouse=True)
def _env(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.delenv("SYFT_RECONCILER_OWNER", raising=False)


def project(root, owner, models, *, paths="[manifests]"):
    """A repository: syft-reconciler.yaml and one manifest per model under manifests/."""
    (root / "manifests").mkdir(parents=True, exist_ok=True)
    (root / "syft-reconciler.yaml").write_text(f"owner: {owner}\npaths: {paths}\n")
    for name, text in models.items():
        (root / "manifests" / f"{name}.yaml").write_text(
            text if text.startswith("kind") else model_yaml(name)
        )
    return root


def tags_of(api, name):
    return api.get(f"/models/{name}").json()["tags"].split(",")


def test_two_owners_share_a_space_without_touching_each_other(cli, sandbox, api, tmp_path):
    a = project(tmp_path / "team-a", "team-a", {"a1": "", "a2": "", "shared": ""})
    b = project(tmp_path / "team-b", "team-b", {"b1": "", "b2": ""})
    assert cli("apply", a / "manifests", "--server", sandbox.url).code == 0
    assert cli("apply", b / "manifests", "--server", sandbox.url).code == 0
    assert names(api) == ["a1", "a2", "b1", "b2", "shared"]
    assert owner_tag("team-a") in tags_of(api, "a1") and owner_tag("team-b") in tags_of(api, "b1")

    # b prunes: only its own model goes, team-a's are reported as theirs
    (b / "manifests" / "b2.yaml").unlink()
    run = cli(
        "plan", "--config", b / "syft-reconciler.yaml", "--server", sandbox.url, "--prune", "-o", "json"
    )
    plan = json.loads(run.out)
    assert (
        run.code == 0 and plan["deletes"] == [{"kind": "Model", "name": "b2"}] and plan["owner"] == "team-b"
    )
    theirs = {c["name"]: c for c in plan["changes"] if c["op"] == "unmanaged"}
    assert theirs["a1"]["ownership"] == {"claim": "other", "owners": ["team-a"]}
    os.chdir(b)  # the project file is found from the working directory too
    assert cli("apply", "--server", sandbox.url, "--prune").code == 0
    assert names(api) == ["a1", "a2", "b1", "shared"]

    # the same name in both repositories is a conflict naming the owner; nothing changes
    (b / "manifests" / "shared.yaml").write_text(model_yaml("shared", summary="b's version"))
    run = cli("apply", "--server", sandbox.url, "--prune")
    assert (
        run.code == 7
        and "conflict model shared: exists on the server and is owned by owner `team-a`" in run.out
    )
    assert "--adopt-from team-a" in run.out
    assert api.get("/models/shared").json()["summary"] == "" and owner_tag("team-a") in tags_of(api, "shared")
    run = cli("apply", "--server", sandbox.url, "--adopt")  # --adopt alone takes only unowned models
    assert run.code == 7 and owner_tag("team-a") in tags_of(api, "shared")
    run = cli("apply", "--server", sandbox.url, "--adopt-from", "team-a")  # on purpose
    assert run.code == 0 and tags_of(api, "shared") == [owner_tag("team-b")]
    assert api.get("/models/shared").json()["summary"] == "b's version"
    assert names(api) == ["a1", "a2", "b1", "shared"]


def test_self_heal_restores_only_its_own_models(sandbox, api, tmp_path, cli):
    a = project(tmp_path / "team-a", "team-a", {"a1": ""})
    b = project(tmp_path / "team-b", "team-b", {"b1": ""})
    assert cli("apply", a / "manifests", "--server", sandbox.url).code == 0
    daemon = Daemon(
        b / "manifests", "--server", sandbox.url, "--self-heal", "--prune", "--resync-interval", "0.2", cwd=b
    )
    try:
        daemon.wait_for("the first round", event="round", status="ok")
        assert names(api) == ["a1", "b1"]
        api.patch("/models/a1", json={"summary": "edited by hand"})
        api.delete("/models/b1")
        seed_model(api, "stray-legacy")  # the bare pre-owner tag: never pruned by an owner
        poll(lambda: "b1" in names(api), "b1 recreated by self-heal")
        mark = daemon.mark()
        daemon.wait_for("a later round", since=mark, event="round", status="ok")
        assert api.get("/models/a1").json()["summary"] == "edited by hand"
        assert names(api) == ["a1", "b1", "stray-legacy"]
        # the lock covers the instance however its paths are spelled
        for spelling in (f"{b}/manifests/../manifests/", b / "manifests" / "b1.yaml"):
            run = cli("apply", spelling, "--server", sandbox.url)
            assert run.code == 9 and "holds the lock on" in run.err
        assert daemon.terminate() == 0
    finally:
        daemon.kill()


def test_one_file_or_one_subfolder_never_prunes_the_rest(cli, sandbox, api, tmp_path, manifest_dir):
    root = manifest_dir(
        {"m0.yaml": model_yaml("m0"), "sub/m1.yaml": model_yaml("m1"), "sub/m2.yaml": model_yaml("m2")}
    )
    assert cli("apply", root, "--server", sandbox.url, "--owner", "ops").code == 0
    run = cli("apply", root / "m0.yaml", "--server", sandbox.url, "--owner", "ops", "--prune")
    assert run.code == 11 and "--prune over a single file" in run.err and "nothing was written" in run.err
    assert names(api) == ["m0", "m1", "m2"]

    (tmp_path / "syft-reconciler.yaml").write_text("owner: ops\npaths: [manifests]\n")
    for spelling in (root / "sub", root / "m0.yaml", f"{root}/sub/../sub"):
        run = cli("apply", spelling, "--server", sandbox.url, "--prune")
        assert run.code == 11 and f"the paths given do not cover {root}" in run.err, run.err
    assert names(api) == ["m0", "m1", "m2"]
    # the whole set, however spelled, may prune (nothing is missing here, so nothing goes)
    for spelling in ([root], [f"{root}/"], [root / "sub", root], []):
        os.chdir(tmp_path)
        assert cli("apply", *spelling, "--server", sandbox.url, "--prune").code == 0
    assert names(api) == ["m0", "m1", "m2"]

    # validate and plan read the project's paths too; a bad project file is one clear line each
    os.chdir(tmp_path)
    run = cli("validate")
    assert run.code == 0 and "OK: 3 manifest(s) in 3 file(s) are valid." in run.out
    (tmp_path / "syft-reconciler.yaml").write_text("owner: no way\npath: [manifests]\n")
    run = cli("validate")
    assert run.code == 1 and run.err.splitlines()[:2] == [
        f"{tmp_path}/syft-reconciler.yaml:1:8: owner: owner `no way` must be 1-63 ASCII letters, digits, "
        "`.`, `_` or `-`, starting with a letter or digit",
        f"{tmp_path}/syft-reconciler.yaml:2:1: path: unknown field (a project file has: owner, paths, var_files, spaces)",
    ]
    (tmp_path / "syft-reconciler.yaml").write_text("owner: ops\npaths: [manifests]\n")
    run = cli("plan", root, "--server", sandbox.url, "--owner", "bad,owner")
    assert run.code == 64 and "--owner: owner `bad,owner` must be" in run.err

    # without an owner, prune cannot tell this repository's models from another's
    (tmp_path / "syft-reconciler.yaml").write_text("paths: [manifests]\n")
    run = cli("apply", "--server", sandbox.url, "--prune")
    assert run.code == 11 and "--prune needs an owner" in run.err
    assert names(api) == ["m0", "m1", "m2"]


def test_unreadable_and_symlinked_folders_are_never_pruned(
    cli, sandbox, api, tmp_path, manifest_dir, monkeypatch
):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "x.yaml").write_text(model_yaml("x"))
    root = manifest_dir(
        {"a.yaml": model_yaml("a"), "real/b.yaml": model_yaml("b"), "locked/c.yaml": model_yaml("c")}
    )
    assert cli("apply", root, "--server", sandbox.url, "--owner", "ops").code == 0
    assert names(api) == ["a", "b", "c"]

    # a folder that cannot be listed stops the run (as root, permissions do not stop us: fake it)
    from reconciler import manifests

    real_scandir = os.scandir

    def scandir(path):
        if str(path).endswith("locked"):
            raise PermissionError(13, "Permission denied")
        return real_scandir(path)

    monkeypatch.setattr(manifests.os, "scandir", scandir)
    run = cli("apply", root, "--server", sandbox.url, "--owner", "ops", "--prune")
    assert run.code == 1 and f"{root}/locked:1:1: cannot read this folder: Permission denied" in run.err
    assert cli("validate", root).code == 1
    assert names(api) == ["a", "b", "c"]
    monkeypatch.setattr(manifests.os, "scandir", real_scandir)

    # a symlink to a folder inside the root is followed (loops end), one outside stops the run
    (root / "real" / "loop").symlink_to(root, target_is_directory=True)
    (root / "alias").symlink_to(root / "locked", target_is_directory=True)
    (root / "locked" / "c.yaml").rename(root / "locked" / "c-moved.yaml")
    run = cli("apply", root, "--server", sandbox.url, "--owner", "ops", "--prune")
    assert run.code == 0, run.err
    assert names(api) == ["a", "b", "c"]
    (root / "out").symlink_to(outside, target_is_directory=True)
    run = cli("apply", root, "--server", sandbox.url, "--owner", "ops", "--prune")
    assert run.code == 1 and f"{root}/out:1:1: symlink to a folder outside" in run.err
    (root / "dangling").symlink_to(tmp_path / "gone")
    run = cli("validate", root)
    assert run.code == 1 and f"{root}/dangling:1:1: broken or looping symlink" in run.err
    assert names(api) == ["a", "b", "c"]


def test_a_mass_deletion_is_refused_without_max_delete(cli, sandbox, api, manifest_dir):
    root = manifest_dir({f"m{i:02}.yaml": model_yaml(f"m{i:02}") for i in range(50)})
    assert cli("apply", root, "--server", sandbox.url, "--owner", "ops").code == 0
    for i in range(10, 50):
        (root / f"m{i:02}.yaml").unlink()
    run = cli("apply", root, "--server", sandbox.url, "--owner", "ops", "--prune")
    assert run.code == 11 and run.out == ""
    assert "refusing to delete 40 models (40 pruned): more than the default limit of 10" in run.err
    assert "--max-delete 40" in run.err and "nothing was written" in run.err
    assert len(names(api)) == 50
    run = cli("plan", root, "--server", sandbox.url, "--owner", "ops", "--prune")
    assert run.code == 11 and "error: apply would refuse this plan: refusing to delete 40" in run.err
    assert run.out.splitlines()[2].startswith("  DELETIONS (40): model m10, model m11")  # the deletions first
    run = cli("apply", root, "--server", sandbox.url, "--owner", "ops", "--prune", "--max-delete", "40")
    assert run.code == 0 and len(names(api)) == 10


def test_a_manifest_may_allow_its_own_replacement(cli, sandbox, api, manifest_dir):
    allow = model_yaml("r", model="gpt-4o") + "lifecycle:\n  replace: allow\n"
    root = manifest_dir(
        {
            "r.yaml": allow,
            "n.yaml": model_yaml("n") + "lifecycle: {replace: never}\n",
            "m.yaml": model_yaml("m"),
        }
    )
    assert cli("apply", root, "--server", sandbox.url, "--owner", "ops").code == 0
    first = api.get("/models/r").json()["id"]
    (root / "r.yaml").write_text(allow.replace("model: gpt-4o", "model: gpt-4.1"))
    run = cli("plan", root, "--server", sandbox.url, "--owner", "ops")
    assert "  DELETIONS (1): model r (replace)" in run.out and "-/+ replace model r" in run.out
    run = cli("apply", root, "--server", sandbox.url, "--owner", "ops")
    assert run.code == 0 and "replaced model r" in run.out.splitlines()
    after = api.get("/models/r").json()
    assert after["id"] != first and after["configuration"]["model"] == "gpt-4.1"

    (root / "n.yaml").write_text(model_yaml("n", model="gpt-4.1") + "lifecycle: {replace: never}\n")
    run = cli("apply", root, "--server", sandbox.url, "--owner", "ops", "--replace-all")
    assert run.code == 1 and "its manifest says `lifecycle.replace: never`" in run.out
    assert api.get("/models/n").json()["configuration"]["model"] == "gpt-4o"
    (root / "m.yaml").write_text(model_yaml("m") + "lifecycle: {replace: sometimes, prune: no}\n")
    run = cli("validate", root)
    assert run.code == 1
    assert (
        "m.yaml:9:22: lifecycle.replace: must be one of 'manual', 'allow' or 'never', got 'sometimes'"
        in run.err
    )
    assert "lifecycle.prune: unknown setting (lifecycle has: replace)" in run.err
    assert sorted(names(api)) == ["m", "n", "r"]


def test_replace_asks_on_a_terminal(sandbox, api, manifest_dir, tmp_path):
    root = manifest_dir({"r.yaml": model_yaml("r")})
    env = {**os.environ, "OPENAI_API_KEY": KEY, "SYFT_RECONCILER_OWNER": "ops"}
    command = [sys.executable, "-m", "reconciler", "apply", str(root), "--server", sandbox.url]
    assert subprocess.run(command, env=env, capture_output=True, timeout=DEADLINE_S).returncode == 0
    (root / "r.yaml").write_text(model_yaml("r", model="gpt-4.1"))
    first = api.get("/models/r").json()["id"]
    primary, secondary = pty.openpty()
    try:
        proc = subprocess.Popen(
            [*command, "--replace", "r"],
            env=env,
            stdin=secondary,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        os.write(primary, b"n\n")
        _, err = proc.communicate(timeout=DEADLINE_S)
    finally:
        os.close(primary)
        os.close(secondary)
    assert b"Delete 1 model (1 replaced) from the server?" in err and proc.returncode == 130
    assert api.get("/models/r").json()["id"] == first
    proc = subprocess.run(
        [*command, "--replace", "r", "--auto-approve"],
        env=env,
        capture_output=True,
        stdin=subprocess.DEVNULL,
        timeout=DEADLINE_S,
    )
    assert proc.returncode == 0 and api.get("/models/r").json()["id"] != first


def test_selection_plans_and_applies_only_what_it_selects(cli, sandbox, api, manifest_dir):
    root = manifest_dir(
        {
            "p1.yaml": model_yaml("p1", tags="[prod]"),
            "p2.yaml": model_yaml("p2", tags="[prod, chat]"),
            "d1.yaml": model_yaml("d1", tags="[dev]"),
            "old-p.yaml": model_yaml("old-p", tags="[prod]"),
            "old-d.yaml": model_yaml("old-d", tags="[dev]"),
        }
    )
    assert (
        cli(
            "apply", root, "--server", sandbox.url, "--owner", "ops", "--target", "old-p", "--target", "old-d"
        ).code
        == 0
    )
    assert names(api) == ["old-d", "old-p"]
    for gone in ("old-p", "old-d"):
        (root / f"{gone}.yaml").unlink()
    run = cli(
        "plan", root, "--server", sandbox.url, "--owner", "ops", "-l", "tag=prod", "--prune", "-o", "json"
    )
    plan = json.loads(run.out)
    assert {c["name"]: c["op"] for c in plan["changes"]} == {
        "p1": "create",
        "p2": "create",
        "old-p": "delete",
    }
    run = cli("apply", root, "--server", sandbox.url, "--owner", "ops", "-l", "tag=prod", "--prune")
    assert run.code == 0 and names(api) == ["old-d", "p1", "p2"]
    run = cli(
        "apply", root, "--server", sandbox.url, "--owner", "ops", "-l", "tag=prod", "-l", "name=*2", "--prune"
    )
    assert run.code == 0 and "0 to add" in run.out and names(api) == ["old-d", "p1", "p2"]
    run = cli("apply", root, "--server", sandbox.url, "--owner", "ops", "--target", "d1")
    assert run.code == 0 and names(api) == ["d1", "old-d", "p1", "p2"]
    run = cli("plan", root, "--server", sandbox.url, "-l", "colour=red")
    assert run.code == 64 and "`colour=red` is not KEY=GLOB" in run.err
    # a selection that matches no manifest must not prune the rest of what it matches
    run = cli(
        "apply",
        root,
        "--server",
        sandbox.url,
        "--owner",
        "ops",
        "-l",
        "tag=dev",
        "-l",
        "name=old*",
        "--prune",
    )
    assert run.code == 11 and "refusing to prune with no manifests" in run.err
    assert names(api) == ["d1", "old-d", "p1", "p2"]
