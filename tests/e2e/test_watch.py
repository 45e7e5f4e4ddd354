"""`syft-reconciler watch` as a real subprocess against the sandbox: files in, models on the server.

Nothing here sleeps a fixed time: every wait polls the daemon's JSON log or the server with a deadline.
"""

from pathlib import Path

import httpx

from reconciler.project import lock_key
from reconciler.sandbox import SandboxConfig, SandboxServer

from .conftest import DAEMON_KEY, git, model_yaml, poll, server_names

KEY = DAEMON_KEY
TOKEN = "tok-canary-watch-e2e-0c4a"


def test_a_new_file_reaches_the_server_health_and_metrics_answer_the_lock_holds_and_sigterm_exits_0(
    tmp_path, manifest_dir, sandbox_factory, cli, daemons, monkeypatch
):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)  # so that only the lock can stop the apply below
    sandbox = sandbox_factory(token=TOKEN)
    root = manifest_dir({"a.yaml": model_yaml("a")})
    daemon = daemons(
        root,
        "--server",
        sandbox.url,
        "--resync-interval",
        "1",
        "--metrics-port",
        "0",
        cwd=tmp_path,
        env={"SYFT_SPACE_TOKEN": TOKEN},
    )
    url = daemon.wait_for("the metrics address", event="metrics_listening")["url"]
    daemon.wait_for("the first round", event="round", trigger="startup", status="ok")
    health = httpx.get(url + "/healthz")
    assert health.status_code == 200 and health.json()["status"] == "ok"
    assert server_names(sandbox.url, TOKEN) == ["a"]

    (root / "b.yaml").write_text(model_yaml("b"))
    poll(lambda: server_names(sandbox.url, TOKEN) == ["a", "b"], "b on the server")
    daemon.wait_for("the files round", event="round", trigger="files", status="ok")
    metrics = httpx.get(url + "/metrics").text.splitlines()
    assert 'syft_reconciler_rounds_total{status="ok",trigger="files"} 1.0' in metrics
    assert 'syft_reconciler_models{state="in_sync"} 2.0' in metrics

    run = cli("apply", root, "--server", sandbox.url, "--token", TOKEN)
    assert run.code == 9 and run.out == ""
    assert run.err.splitlines() == [
        f"error: another syft-reconciler (watch, pid {daemon.proc.pid}) holds the lock on {root} "
        f"({root}/.syft-space/syft-reconciler-{lock_key(sandbox.url, None)}.lock); a watch and an apply of the "
        "same manifests on the same space never run at once"
    ]

    assert daemon.terminate() == 0
    assert daemon.events[-1]["event"] == "stop"
    assert len(daemon.events) == len(daemon.lines)  # every line is one JSON object
    assert KEY not in daemon.log and TOKEN not in daemon.log and "Traceback" not in daemon.log


def test_an_invalid_edit_changes_nothing_and_the_daemon_lives_on(tmp_path, manifest_dir, sandbox, daemons):
    root = manifest_dir({"a.yaml": model_yaml("a", summary="first")})
    daemon = daemons(
        root, "--server", sandbox.url, "--resync-interval", "1", "--metrics-port", "0", cwd=tmp_path
    )
    url = daemon.wait_for("the metrics address", event="metrics_listening")["url"]
    daemon.wait_for("the first round", event="round", trigger="startup", status="ok")
    before = {k: v for k, v in sandbox.stats().items() if not k.startswith("GET")}

    mark = daemon.mark()
    (root / "a.yaml").write_text(model_yaml("a", summary="second").replace("configuration:", "configuraton:"))
    problem = daemon.wait_for("the problem", since=mark, event="problem")
    # the daemon runs in tmp_path: the file is named from there, as in every output
    assert problem["msg"].startswith("manifests/a.yaml:4:1: configuraton: unknown field")
    assert (problem["file"], problem["line"], problem["level"]) == ("manifests/a.yaml", 4, "error")
    daemon.wait_for("the invalid round", since=mark, event="round", status="invalid")
    assert httpx.get(url + "/healthz").status_code == 503
    daemon.wait_for("a resync after it", since=daemon.mark(), event="round", trigger="resync")
    assert daemon.proc.poll() is None
    assert {k: v for k, v in sandbox.stats().items() if not k.startswith("GET")} == before

    (root / "a.yaml").write_text(model_yaml("a", summary="second"))
    poll(lambda: httpx.get(sandbox.url + "/api/v1/models/a").json()["summary"] == "second", "the fixed edit")
    poll(lambda: httpx.get(url + "/healthz").status_code == 200, "healthy again")
    assert daemon.terminate() == 0


def test_the_daemon_rides_out_a_server_restart_and_converges_after_it(tmp_path, manifest_dir, daemons):
    db = tmp_path / "space.db"
    first = SandboxServer(SandboxConfig(), db=db)
    first.start()
    port = int(first.url.rsplit(":", 1)[1])
    root = manifest_dir({"a.yaml": model_yaml("a")})
    daemon = daemons(
        root,
        "--server",
        first.url,
        "--retries",
        "0",
        "--timeout",
        "2",
        "--resync-interval",
        "1",
        cwd=tmp_path,
    )
    try:
        daemon.wait_for("the first round", event="round", trigger="startup", status="ok")
    finally:
        first.stop()

    mark = daemon.mark()
    (root / "b.yaml").write_text(model_yaml("b"))
    daemon.wait_for("a failed round", since=mark, event="round", status="unreachable")
    daemon.wait_for("a backoff", since=mark, event="backoff")
    assert daemon.proc.poll() is None

    with SandboxServer(SandboxConfig(), db=db, port=port) as second:
        poll(lambda: server_names(second.url) == ["a", "b"], "b on the restarted server")
        daemon.wait_for("a good round", since=mark, event="round", status="ok")
        assert daemon.terminate() == 0


def test_git_mode_applies_commits_not_edits_and_records_the_commit(tmp_path, sandbox, daemons):
    repo = tmp_path / "repo"
    root = repo / "manifests"
    root.mkdir(parents=True)
    git(repo, "init", "-q")
    (root / "a.yaml").write_text(model_yaml("a"))
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "a")
    first = git(repo, "rev-parse", "HEAD")

    daemon = daemons(
        Path("manifests"),
        "--git",
        "--server",
        sandbox.url,
        "--resync-interval",
        "0.5",
        "--metrics-port",
        "0",
        cwd=repo,
    )
    url = daemon.wait_for("the metrics address", event="metrics_listening")["url"]
    assert daemon.wait_for("the first round", event="round", status="ok")["commit"] == first
    assert httpx.get(url + "/healthz").json()["applied_commit"] == first

    (root / "b.yaml").write_text(model_yaml("b"))  # saved, not committed
    daemon.wait_for(
        "a round after the edit", since=daemon.mark(), event="round", trigger="resync", status="ok"
    )
    assert server_names(sandbox.url) == ["a"]

    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "b")
    second = git(repo, "rev-parse", "HEAD")
    assert daemon.wait_for("the commit applied", event="applied_commit", commit=second)
    assert server_names(sandbox.url) == ["a", "b"]
    poll(lambda: httpx.get(url + "/healthz").json()["applied_commit"] == second, "the commit in /healthz")
    assert f'syft_reconciler_applied_commit_info{{commit="{second}"}} 1.0' in httpx.get(url + "/metrics").text
    assert daemon.terminate() == 0
