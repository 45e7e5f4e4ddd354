"""The watch daemon in pieces: the loop over fake batches, the watchfiles wrapper, the sources and
their caches, one round against the sandbox, the lock, and the health/metrics endpoints."""

import json
import logging
import os
import queue
import random
import threading
import types
from pathlib import Path

import httpx
import pytest
import watchfiles

from reconciler import watch
from reconciler.apply import ApplyOptions
from reconciler.backoff import Backoff
from reconciler.cli.watch import JsonFormatter
from reconciler.client import SpaceClient
from reconciler.errors import InvalidManifests, LockHeld, ServerError
from reconciler.lock import space_lock
from reconciler.metrics import DaemonMetrics, MetricsServer
from reconciler.model import Change, FieldDiff, Op, Outcome, Plan, Result
from reconciler.ownership import owner_tag
from reconciler.plan import PlanOptions
from reconciler.project import lock_key, resolve_instance
from reconciler.sandbox import SandboxConfig
from reconciler.schemas import SchemaRegistry
from reconciler.sources import GitHead, ManifestLoader, WorkTree, manifest_filter
from reconciler.watch import (
    RoundResult,
    RoundStatus,
    Trigger,
    WatchSettings,
    change_batches,
    run,
)
from reconciler.watch_round import Reconciler, drift_line
from tests.e2e.conftest import git

KEY = "sk-canary-watch-9b1e"
STARTUP, FILES, RESYNC, RETRY = Trigger.STARTUP, Trigger.FILES, Trigger.RESYNC, Trigger.RETRY
OK, INVALID, UNREACHABLE, AUTH, FAILED = (
    RoundStatus.OK,
    RoundStatus.INVALID,
    RoundStatus.UNREACHABLE,
    RoundStatus.AUTH,
    RoundStatus.FAILED,
)


def model(name, *, summary="", model_name="gpt-4o"):
    return (
        f"kind: Model\nname: {name}\ndtype: openai\nconfiguration:\n  api_key: ${{OPENAI_API_KEY}}\n"
        f"  model: {model_name}\nsummary: {summary!r}\n"
    )


class Script:
    """A reconcile_once that records its triggers and answers with the given statuses, then OK."""

    def __init__(self, *statuses, on_call=None):
        self.statuses = list(statuses)
        self.triggers = []
        self.on_call = on_call

    def __call__(self, trigger):
        self.triggers.append(trigger)
        if self.on_call:
            self.on_call(trigger)
        return RoundResult(trigger, self.statuses.pop(0) if self.statuses else OK, 0.0)


# -- the loop -------------------------------------------------------------------------------


def test_a_round_at_start_then_one_per_batch_and_an_empty_batch_is_a_resync():
    once = Script()
    seen = []
    rounds = run([{"a.yaml"}, set(), {"b.yaml", "c.yaml"}], once, threading.Event(), on_round=seen.append)
    assert once.triggers == [STARTUP, FILES, RESYNC, FILES]
    assert rounds == 4 and [r.trigger for r in seen] == once.triggers


def test_the_stop_event_ends_the_loop_after_the_current_round():
    stop = threading.Event()
    batches = iter([{"a"}, {"b"}, {"c"}])
    once = Script(on_call=lambda trigger: trigger is FILES and stop.set())
    run(batches, once, stop)
    assert once.triggers == [STARTUP, FILES]
    assert list(batches) == [{"c"}]  # {"b"} was taken by the for loop, then the stop was seen


def test_server_failures_are_retried_with_a_capped_jittered_backoff_then_recover():
    once = Script(UNREACHABLE, UNREACHABLE, AUTH, FAILED, RoundStatus.ERROR, UNREACHABLE, UNREACHABLE)
    waits = []
    rounds = run(
        [],
        once,
        threading.Event(),
        backoff=Backoff(delays=(1, 2, 4, 8), jitter=0.25, cap=5),
        wait=lambda delay: waits.append(delay) or False,
        rng=random.Random(7),
    )
    assert rounds == 8 and once.triggers == [STARTUP] + [RETRY] * 7
    for delay, base in zip(waits, [1, 2, 4, 8, 8, 8, 8], strict=True):
        assert min(5, base) * 0.75 <= delay <= min(5, base) * 1.25
    assert len(set(waits)) == len(waits)  # jittered, so a fleet of daemons does not retry in step


def test_the_backoff_starts_over_after_a_success():
    once = Script(UNREACHABLE, UNREACHABLE, OK, UNREACHABLE)
    waits = []
    run(
        [{"a.yaml"}],
        once,
        threading.Event(),
        backoff=Backoff(delays=(1, 10), jitter=0),
        wait=lambda delay: waits.append(delay) or False,
    )
    assert waits == [1, 10, 1]


def test_an_invalid_round_waits_for_the_next_batch_without_a_backoff():
    once = Script(INVALID, INVALID, OK)
    waits = []
    run([{"a.yaml"}, {"a.yaml"}], once, threading.Event(), wait=lambda delay: waits.append(delay) or False)
    assert waits == [] and once.triggers == [STARTUP, FILES, FILES]


def test_a_stop_during_the_backoff_ends_the_loop():
    stop = threading.Event()
    once = Script(*[UNREACHABLE] * 5)

    def wait(delay):
        stop.set()
        return True

    run([{"a.yaml"}], once, stop, wait=wait)
    assert once.triggers == [STARTUP]


# -- change batches -------------------------------------------------------------------------


def test_batches_keep_manifests_only_and_yield_a_resync_when_it_is_due(monkeypatch):
    added, modified = watchfiles.Change.added, watchfiles.Change.modified
    raw = [
        set(),
        {(modified, "/m/a.yaml")},
        {(modified, "/m/.a.yaml.swp"), (added, "/m/notes.txt")},
        set(),
        set(),
        {(added, "/m/b.yml")},
    ]
    calls = []

    def fake_watch(*paths, **kwargs):
        calls.append((paths, kwargs))
        yield from raw

    monkeypatch.setattr(watchfiles, "watch", fake_watch)
    clock = iter([0.0, 1.0, 2.0, 3.0, 12.0, 13.0])
    stop = threading.Event()
    out = list(
        change_batches(
            [Path("/m")], keep=manifest_filter, stop=stop, resync_interval=10, clock=lambda: next(clock)
        )
    )
    # the first tick is a resync; noise (t=2) and a tick before the interval (t=3) are not
    assert out == [set(), {"/m/a.yaml"}, set(), {"/m/b.yml"}]
    ((paths, kwargs),) = calls
    assert paths == (Path("/m"),) and kwargs["stop_event"] is stop and kwargs["yield_on_timeout"]
    assert kwargs["rust_timeout"] == 1000 and kwargs["watch_filter"] is None


def first_manifest_batch(root, change, *, step_ms=300):
    """Run `change` once the real watcher is live; return the first batch that names a manifest."""
    stop = threading.Event()
    got = queue.Queue()

    def consume():
        for batch in change_batches(
            [root], keep=manifest_filter, stop=stop, resync_interval=0.2, step_ms=step_ms, debounce_ms=5000
        ):
            got.put(batch)

    thread = threading.Thread(target=consume)
    thread.start()
    try:
        assert got.get(timeout=10) == set()  # the first tick: the watcher is live from here on
        change()
        while not (batch := got.get(timeout=10)):
            pass
        return batch
    finally:
        stop.set()
        thread.join(10)


def test_an_atomic_save_is_one_batch_with_the_manifest_only(tmp_path):
    def save():
        (tmp_path / ".a.yaml.tmp").write_text(model("a"))
        os.replace(tmp_path / ".a.yaml.tmp", tmp_path / "a.yaml")

    assert first_manifest_batch(tmp_path, save) == {str(tmp_path / "a.yaml")}


def test_a_pull_of_500_files_is_one_batch(tmp_path):
    def pull():
        for i in range(500):
            (tmp_path / f"m{i:03}.yaml").write_text(model(f"m{i}"))

    assert len(first_manifest_batch(tmp_path, pull)) == 500


# -- sources and their caches ---------------------------------------------------------------


@pytest.fixture
def registry():
    return SchemaRegistry.load()


def test_unchanged_files_are_not_parsed_again_and_an_unchanged_folder_is_not_validated_again(
    tmp_path, registry
):
    for name in "abc":
        (tmp_path / f"{name}.yaml").write_text(model(name))
    tree = WorkTree()
    loader = ManifestLoader([tmp_path], registry, tree)
    loaded, commit = loader()
    assert [m.name for m in loaded.manifests] == ["a", "b", "c"] and commit is None
    assert tree.parsed == 3 and loader.checks.checked == 3
    assert loader()[0] is loaded and tree.parsed == 3 and loader.checks.checked == 3

    (tmp_path / "b.yaml").write_text(model("b", summary="new and longer"))
    loaded = loader()[0]
    assert tree.parsed == 4 and loader.checks.checked == 4  # only b is read and validated again
    assert loader.checks.patched == 1  # into the last load: no check across the whole set
    assert sorted((m.name, m.summary) for m in loaded.manifests) == [
        ("a", ""),
        ("b", "new and longer"),
        ("c", ""),
    ]
    (tmp_path / "c.yaml").unlink()
    assert [m.name for m in loader()[0].manifests] == ["a", "b"] and tree.parsed == 4
    assert loader.checks.checked == 4
    (tmp_path / "d.yaml").write_text(model("a"))  # a clash across files is found with one file read
    with pytest.raises(InvalidManifests) as raised:
        loader()
    assert "names must be unique" in str(raised.value.problems[0]) and loader.checks.checked == 5


def fake_stat(size):
    return types.SimpleNamespace(st_mtime_ns=5_000_000_000, st_ctime_ns=5_000_000_000, st_size=size, st_ino=1)


def test_a_rewrite_hidden_behind_an_equal_stat_is_caught_by_the_hash_when_racy(tmp_path, registry):
    path = tmp_path / "a.yaml"
    path.write_text(model("a", summary="one"))
    size = path.stat().st_size
    tree = WorkTree(stat=lambda p: fake_stat(size), clock=lambda: 5_500_000_000)  # read 0.5 s after mtime
    loader = ManifestLoader([tmp_path], registry, tree)
    assert loader()[0].manifests[0].summary == "one"
    path.write_text(model("a", summary="two"))  # same size, same (fake) stat: same clock tick
    assert loader()[0].manifests[0].summary == "two" and tree.parsed == 2


def test_outside_the_racy_window_the_stat_is_trusted_without_reading(tmp_path, registry, monkeypatch):
    path = tmp_path / "a.yaml"
    path.write_text(model("a", summary="one"))
    size = path.stat().st_size
    tree = WorkTree(stat=lambda p: fake_stat(size), clock=lambda: 60_000_000_000)  # a minute later
    loader = ManifestLoader([tmp_path], registry, tree)
    loader()
    reads = []
    monkeypatch.setattr(Path, "read_bytes", lambda self: reads.append(self) or b"")
    loader()
    assert reads == [] and tree.parsed == 1


def test_git_head_reads_only_committed_manifests_and_names_the_commit(tmp_path, registry):
    repo = tmp_path / "repo"
    root = repo / "manifests"
    root.mkdir(parents=True)
    git(repo, "init", "-q")
    (root / "a.yaml").write_text(model("a", summary="committed"))
    (root / ".hidden.yaml").write_text("not: a manifest")
    (root / "README.md").write_text("# hi")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "one")
    first = git(repo, "rev-parse", "HEAD")

    source = GitHead.open([root])
    loader = ManifestLoader([root], registry, source)
    loaded, commit = loader()
    assert commit == first and [(m.name, m.summary) for m in loaded.manifests] == [("a", "committed")]
    assert loaded.manifests[0].source.path == str(root / "a.yaml")

    (root / "a.yaml").write_text(model("a", summary="edited, not committed"))
    (root / "b.yaml").write_text(model("b"))
    loaded, commit = loader()
    assert commit == first and [m.summary for m in loaded.manifests] == ["committed"]

    git(root, "add", "b.yaml")
    git(repo, "commit", "-qm", "two")
    loaded, commit = loader()
    assert commit == git(repo, "rev-parse", "HEAD") != first
    assert [(m.name, m.summary) for m in loaded.manifests] == [("a", "committed"), ("b", "")]
    assert source.parsed == 2  # a's blob was parsed once

    git_dir = Path(git(repo, "rev-parse", "--absolute-git-dir"))
    assert source.watch_paths([root]) == [git_dir]
    assert source.keep(str(git_dir / "HEAD")) and source.keep(str(git_dir / "refs" / "heads" / "main"))
    assert not source.keep(str(git_dir / "objects" / "ab" / "cdef")) and not source.keep(str(root / "a.yaml"))


# -- one round against the sandbox ----------------------------------------------------------


@pytest.fixture
def make_round(registry, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    clients = []

    def make(root, url, *, token=None, **settings):
        client = SpaceClient(url, token=token, retry=Backoff(delays=()))
        clients.append(client)
        options = ApplyOptions(facts=registry.facts, max_create_attempts=1)
        return Reconciler(
            ManifestLoader([root], registry, WorkTree()),
            client,
            registry,
            options=options,
            settings=WatchSettings(**settings),
        )

    yield make
    for client in clients:
        client.close()


def writes(sandbox):
    return {k: v for k, v in sandbox.stats().items() if not k.startswith("GET")}


def names(sandbox):
    return sorted(m["name"] for m in httpx.get(sandbox.url + "/api/v1/models/").json())


def test_a_changed_folder_is_applied_and_drift_on_the_server_is_only_reported(
    tmp_path, sandbox, make_round, caplog
):
    caplog.set_level(logging.INFO)
    (tmp_path / "a.yaml").write_text(model("a"))
    (tmp_path / "b.yaml").write_text(model("b"))
    once = make_round(tmp_path, sandbox.url)
    result = once(STARTUP)
    assert result.ok and result.models["in_sync"] == 2 and names(sandbox) == ["a", "b"]

    httpx.delete(sandbox.url + "/api/v1/models/a")
    before = writes(sandbox)
    result = once(RESYNC)
    assert result.ok and result.models["pending"] == 1 and writes(sandbox) == before
    assert "drift: `a` is missing on the server; not recreated (--self-heal would)" in caplog.text
    assert result.message == "1 in sync, 1 pending (drift reported, not undone)"

    (tmp_path / "b.yaml").write_text(model("b", summary="edited"))
    result = once(FILES)  # the manifests changed: the whole folder is applied, a included
    assert result.ok and result.models == {
        "in_sync": 2,
        "pending": 0,
        "replace_needed": 0,
        "conflict": 0,
        "unmanaged": 0,
    }
    assert names(sandbox) == ["a", "b"] and result.message == "1 created, 1 updated; now 2 in sync"
    assert KEY not in caplog.text


def kinds_reads(sandbox):
    kinds = ("GET /api/v1/datasets", "GET /api/v1/endpoints", "GET /api/v1/policies")
    return {k: v for k, v in sandbox.stats().items() if k.startswith(kinds)}


def test_a_models_only_round_reads_the_other_kinds_only_to_count_them_and_never_fails_for_them(
    tmp_path, sandbox, make_round, api, caplog
):
    (tmp_path / "a.yaml").write_text(model("a"))
    config = {"api_key": "k", "model": "x"}
    model_id = api.post("/models/", json={"name": "m", "dtype": "openai", "configuration": config}).json()[
        "id"
    ]
    endpoint = api.post("/endpoints/", json={"name": "bot", "slug": "bot", "model_id": model_id}).json()
    policy = {"name": "p", "policy_type": "rate_limit", "configuration": {"limit": "5/m"}}
    assert api.post("/policies/", json={**policy, "endpoint_id": endpoint["id"]}).status_code == 201

    result = make_round(tmp_path, sandbox.url)(STARTUP)  # not asked to count them: not read
    assert result.ok and list(result.objects) == ["model"] and kinds_reads(sandbox) == {}
    assert result.objects["model"] == result.models and result.models["unmanaged"] == 1

    once = make_round(tmp_path, sandbox.url, count_kinds=True)
    result = once(RESYNC)
    assert result.ok and result.objects["endpoint"]["unmanaged"] == 1
    assert sum(result.objects["policy"].values()) == 0  # the unmanaged endpoint's own
    assert kinds_reads(sandbox) == {
        "GET /api/v1/datasets/": 1,
        "GET /api/v1/endpoints/": 1,
        "GET /api/v1/policies/": 1,
    }

    # with --prune, this owner's dataset that no manifest names is pruned, though no manifest names
    # a dataset any more (round.observe_and_plan reads the other kinds for --prune)
    weaviate = {
        "http_url": "http://w:8080",
        "grpc_url": "http://w:50051",
        "api_key": "k",
        "collection_name": "C",
    }
    old = {"name": "old", "dtype": "remote_weaviate", "configuration": weaviate, "tags": owner_tag("team")}
    assert api.post("/datasets/", json=old).status_code == 201
    pruning = make_round(tmp_path, sandbox.url, count_kinds=True, owner="team", plan=PlanOptions(prune=True))
    result = pruning(RESYNC)
    assert result.ok and result.objects["dataset"]["pending"] == 0, result
    assert api.get("/datasets/").json() == []

    assert api.delete("/endpoints/bot").status_code == 200  # orphans its policy: GET /policies/ is a 500
    caplog.set_level(logging.WARNING)
    result = once(RESYNC)
    assert result.ok and list(result.objects) == ["model"]  # the others keep what they last showed
    assert "datasets, endpoints and policies not counted this round: " in caplog.text
    assert "policies whose endpoint was deleted" in caplog.text
    failed = next(r for r in caplog.records if getattr(r, "event", None) == "count_failed")
    assert list(failed.fields) == ["error_kind"]  # `kind` is an object's kind in the daemon's events


def test_a_server_without_the_other_kinds_counts_none_of_them(tmp_path, sandbox, registry, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    (tmp_path / "a.yaml").write_text(model("a"))
    real = httpx.Client(base_url=sandbox.url)

    def older_server(request):
        if request.url.path.startswith(("/api/v1/datasets", "/api/v1/endpoints", "/api/v1/policies")):
            return httpx.Response(404, json={"detail": "Not Found"})
        answer = real.request(
            request.method, request.url.path, content=request.content, headers=request.headers
        )
        return httpx.Response(answer.status_code, headers=answer.headers, content=answer.content)

    client = SpaceClient(sandbox.url, transport=httpx.MockTransport(older_server), retry=Backoff(delays=()))
    with client, real:
        once = Reconciler(
            ManifestLoader([tmp_path], registry, WorkTree()),
            client,
            registry,
            options=ApplyOptions(facts=registry.facts, max_create_attempts=1),
            settings=WatchSettings(count_kinds=True),
        )
        result = once(STARTUP)
    assert result.ok and result.objects["model"]["in_sync"] == 1
    assert {kind: sum(states.values()) for kind, states in result.objects.items()} == {
        "model": 1,
        "dataset": 0,
        "endpoint": 0,
        "policy": 0,
    }


def test_self_heal_recreates_a_model_deleted_on_the_server(tmp_path, sandbox, make_round):
    (tmp_path / "a.yaml").write_text(model("a"))
    once = make_round(tmp_path, sandbox.url, self_heal=True)
    assert once(STARTUP).ok
    httpx.delete(sandbox.url + "/api/v1/models/a")
    assert once(RESYNC).ok and names(sandbox) == ["a"]


def test_an_invalid_round_writes_nothing_logs_every_problem_and_the_next_good_one_applies(
    tmp_path, sandbox, make_round, caplog
):
    (tmp_path / "a.yaml").write_text(model("a"))
    once = make_round(tmp_path, sandbox.url)
    assert once(STARTUP).ok
    before = writes(sandbox)
    (tmp_path / "a.yaml").write_text(model("a").replace("configuration:", "configuraton:"))
    (tmp_path / "b.yaml").write_text(model("b").replace("dtype: openai", "dtype: openia"))
    (tmp_path / "c.yaml").write_text(model("c"))
    caplog.clear()
    result = once(FILES)
    assert result.status is INVALID and result.message == "2 problem(s) in the manifests; nothing was written"
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert errors[0].startswith(f"{tmp_path}/a.yaml:4:1: configuraton: unknown field")
    assert errors[1].startswith(f"{tmp_path}/b.yaml:3:8: dtype: unknown dtype `openia`")
    assert writes(sandbox) == before and names(sandbox) == ["a"]

    (tmp_path / "a.yaml").write_text(model("a"))
    (tmp_path / "b.yaml").unlink()
    assert once(FILES).ok and names(sandbox) == ["a", "c"]


def test_failed_writes_are_tried_again_by_the_next_round(tmp_path, sandbox, make_round):
    (tmp_path / "a.yaml").write_text(model("a"))
    once = make_round(tmp_path, sandbox.url)

    def refuse(body):
        raise ServerError("POST /api/v1/models/: 422 nope", status=422)

    once.client.create_model = refuse
    result = once(STARTUP)
    assert result.status is FAILED and result.message == "1 write(s) failed: 1 failed; now 1 pending"
    del once.client.create_model
    assert once(RETRY).ok and names(sandbox) == ["a"]  # not mistaken for drift: the last apply failed


def test_an_unreachable_server_and_refused_credentials_are_their_own_statuses(
    tmp_path, sandbox, make_round, caplog
):
    (tmp_path / "a.yaml").write_text(model("a"))
    assert make_round(tmp_path, "http://127.0.0.1:9")(STARTUP).status is UNREACHABLE

    sandbox.reset(SandboxConfig(token="right"))
    result = make_round(tmp_path, sandbox.url, token="wrong-token")(STARTUP)
    assert result.status is AUTH and writes(sandbox) == {}
    assert any(r.levelno == logging.ERROR and "credentials refused" in r.getMessage() for r in caplog.records)
    assert "wrong-token" not in caplog.text


# -- lock -------------------------------------------------------------------------------------


def folder_lock(paths, *, command, shared=False, server="http://127.0.0.1:1"):
    """The lock as the CLI takes it: the instance's home, keyed by the target space."""
    instance = resolve_instance(paths)
    return space_lock(instance.home, lock_key(server, None), command=command, shared=shared)


def test_the_folder_lock_refuses_a_second_holder_until_released(tmp_path):
    (tmp_path / "sub").mkdir()
    with folder_lock([tmp_path], command="watch") as path:
        assert (
            path == tmp_path / ".syft-space" / f"syft-reconciler-{lock_key('http://127.0.0.1:1', None)}.lock"
        )
        # however the set is spelled: a file in it, a subfolder, a trailing slash, a `..` detour
        for spelling in (
            [tmp_path / "a.yaml"],
            [tmp_path / "sub"],
            [f"{tmp_path}/"],
            [tmp_path / "sub" / ".."],
            [tmp_path / "sub", tmp_path],
        ):
            (tmp_path / ".git").mkdir(exist_ok=True)  # the checkout's top is the home
            with pytest.raises(LockHeld) as caught, folder_lock(spelling, command="apply", shared=True):
                pass
            assert caught.value.exit_code == 9
        assert str(caught.value) == (
            f"another syft-reconciler (watch, pid {os.getpid()}) holds the lock on {tmp_path} ({path}); "
            "a watch and an apply of the same manifests on the same space never run at once"
        )
        # another space is another lock: one repository may drive staging and production at once
        with folder_lock([tmp_path], command="apply", server="https://prod.example.org"):
            pass
    with folder_lock([tmp_path], command="apply"):
        pass


def test_a_project_file_is_the_home_of_the_lock(tmp_path):
    (tmp_path / "syft-reconciler.yaml").write_text("owner: team-a\npaths: [manifests]\n")
    (tmp_path / "manifests" / "deep").mkdir(parents=True)
    with folder_lock([tmp_path / "manifests" / "deep"], command="watch") as path:
        assert path.parent == tmp_path / ".syft-space"
        with pytest.raises(LockHeld), folder_lock([tmp_path / "manifests"], command="apply", shared=True):
            pass


def test_applies_share_the_lock_but_never_with_a_watch(tmp_path):
    with (
        folder_lock([tmp_path], command="apply", shared=True),
        folder_lock([tmp_path], command="apply", shared=True),
    ):
        with pytest.raises(LockHeld), folder_lock([tmp_path], command="watch"):
            pass
    with folder_lock([tmp_path], command="watch"):
        with pytest.raises(LockHeld), folder_lock([tmp_path], command="apply", shared=True):
            pass


def test_a_read_only_folder_is_locked_in_the_temp_dir(tmp_path, monkeypatch):
    import errno

    from reconciler import lock

    real_open = os.open

    def read_only(path, *args):
        if Path(path).is_relative_to(tmp_path):
            raise OSError(errno.EROFS, "Read-only file system")
        return real_open(path, *args)

    monkeypatch.setattr(lock.os, "open", read_only)
    with folder_lock([tmp_path], command="watch") as path:
        assert not path.is_relative_to(tmp_path)
        with pytest.raises(LockHeld), folder_lock([tmp_path], command="apply"):
            pass


# -- health, metrics and logs --------------------------------------------------------------


def test_healthz_follows_the_last_round_and_metrics_count_rounds():
    metrics = DaemonMetrics()
    with MetricsServer(metrics, port=0) as server, httpx.Client(base_url=server.url) as http:
        response = http.get("/healthz")
        assert response.status_code == 503 and response.json()["status"] == "starting"

        models = {"in_sync": 2, "pending": 1, "replace_needed": 0, "conflict": 0, "unmanaged": 3}
        metrics.observe(RoundResult(STARTUP, OK, 0.2, "fine", models, commit="abc123"))
        response = http.get("/healthz")
        body = response.json()
        assert response.status_code == 200 and body["status"] == "ok" and body["applied_commit"] == "abc123"
        assert body["last_round"]["models"] == models and body["last_success"]

        metrics.observe(RoundResult(RETRY, UNREACHABLE, 0.01, "cannot connect"))
        response = http.get("/healthz")
        assert response.status_code == 503 and response.json()["last_round"]["message"] == "cannot connect"

        text = http.get("/metrics").text
        for line in [
            'syft_reconciler_rounds_total{status="ok",trigger="startup"} 1.0',
            'syft_reconciler_rounds_total{status="unreachable",trigger="retry"} 1.0',
            'syft_reconciler_round_failures_total{status="unreachable"} 1.0',
            'syft_reconciler_models{state="in_sync"} 2.0',
            'syft_reconciler_models{state="unmanaged"} 3.0',
            'syft_reconciler_applied_commit_info{commit="abc123"} 1.0',
            "syft_reconciler_round_duration_seconds_count 2.0",
        ]:
            assert line in text.splitlines(), line
        assert "syft_reconciler_last_success_timestamp_seconds " in text
        assert http.get("/nope").status_code == 404


def test_json_logs_are_one_object_per_line_with_the_event_and_its_fields():
    record = logging.LogRecord("reconciler.watch", logging.WARNING, __file__, 1, "drift: `%s`", ("a",), None)
    record.event, record.fields = "drift", {"kind": "model", "name": "a", "op": "create"}
    line = JsonFormatter().format(record)
    data = json.loads(line)
    assert "\n" not in line and data["ts"].endswith("Z")
    assert {k: data[k] for k in ("level", "event", "msg", "kind", "name", "op")} == {
        "level": "warning",
        "event": "drift",
        "msg": "drift: `a`",
        "kind": "model",
        "name": "a",
        "op": "create",
    }
    other = logging.LogRecord("httpx", logging.INFO, __file__, 1, "hi", (), None)
    plain = json.loads(JsonFormatter().format(other))
    assert plain["event"] == "log" and plain["logger"] == "httpx"


# -- how a round names its objects -----------------------------------------------------------


def test_every_kind_is_named_by_kind_and_name_and_drift_says_what_would_undo_it():
    summary = (FieldDiff(("summary",), "old", "new"),)
    plan = Plan((Change(Op.CREATE, "a"), Change(Op.REPLACE, "b", diffs=summary), Change(Op.CONFLICT, "c")))
    kinds = Plan(
        (
            Change(Op.CREATE, "faq", kind="Dataset"),
            Change(Op.UPDATE, "bot", diffs=summary, kind="Endpoint"),
            Change(Op.DELETE, "old-bot", kind="Endpoint"),
            Change(
                Op.REPLACE, "kept", cascade="model `b` is replaced", cascade_approved=True, kind="Endpoint"
            ),
            Change(Op.REPLACE, "bot/per-user", diffs=summary, kind="Policy"),
            Change(Op.CONFLICT, "theirs", reason="exists on the server, differs", kind="Dataset"),
        )
    )
    found = (plan + kinds).changes
    assert [c.label for c in found] == [
        "model a",
        "model b",
        "model c",
        "dataset faq",
        "endpoint bot",
        "endpoint old-bot",
        "endpoint kept",
        "policy bot/per-user",
        "dataset theirs",
    ]
    assert [drift_line(c, approved=c.name != "b") for c in found] == [
        "`a` is missing on the server; not recreated (--self-heal would)",  # README quotes it
        "`b` differs on the server (summary); needs --replace b and --self-heal",
        None,  # a conflict is never drift
        "dataset faq: missing on the server; not recreated (--self-heal would)",
        "endpoint bot: differs on the server (summary); not reverted (--self-heal would)",
        "endpoint old-bot: ours and in no manifest; not pruned (--self-heal would)",
        "endpoint kept: differs on the server (model `b` is replaced); not replaced (--self-heal would)",
        "policy bot/per-user: differs on the server (summary); not replaced (--self-heal would)",
        None,
    ]
    assert (
        drift_line(found[1], approved=True)
        == "`b` differs on the server (summary); not replaced (--self-heal would)"
    )
    # an outcome names its object as the plan does
    assert Outcome("bot/x", Op.DELETE, Result.DELETED, kind="Policy").label == "policy bot/x"
    assert Outcome("m", Op.CREATE, Result.CREATED).label == "model m"


def test_after_each_round_the_daemon_puts_what_survived_out_of_the_collectors_sight():
    import gc

    seen = []
    on_round = watch.settled(seen.append)
    try:
        on_round(RoundResult(FILES, OK, 0.0))
        assert seen == [RoundResult(FILES, OK, 0.0)] and gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
