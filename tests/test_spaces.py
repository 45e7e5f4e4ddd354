"""The project file's `spaces:`, selection, sharding and the summary exit code (no server)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.errors import BadSetting, InvalidManifests
from reconciler.project import load_project
from reconciler.references import EnvRef, FileRef
from reconciler.spaces import (
    Shard,
    SpaceResult,
    instance_for,
    resolve_token,
    run_each,
    select,
    shard_of,
    summary_exit,
)


def project(tmp_path: Path, text: str):
    file = tmp_path / "syft-reconciler.yaml"
    file.write_text(textwrap.dedent(text))
    return load_project(file)


def problems(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(InvalidManifests) as caught:
        project(tmp_path, text)
    return [str(p).removeprefix(str(tmp_path.resolve()) + "/") for p in caught.value.problems]


def test_spaces_parse_with_defaults_from_the_project(tmp_path):
    p = project(
        tmp_path,
        """
        owner: platform
        paths: [manifests]
        spaces:
          - {name: dev, server: 'http://a', token: '${DEV_TOKEN}'}
          - name: prod
            server: https://b
            tenant: acme
            token: {file: secrets/prod}
            paths: [prod]
            var_files: [prod.vars.yaml]
            owner: prod-team
        """,
    )
    dev, prod = p.spaces
    assert (dev.name, dev.server, dev.tenant, dev.token) == (
        "dev",
        "http://a",
        None,
        EnvRef(((True, "DEV_TOKEN"),)),
    )
    assert prod.token == FileRef("secrets/prod") and prod.tenant == "acme"
    assert prod.paths == (tmp_path.resolve() / "prod",)
    assert prod.var_files == (tmp_path.resolve() / "prod.vars.yaml",)
    assert dev.where == f"{p.file}:5:5"
    assert instance_for(dev, p).roots == (tmp_path.resolve() / "manifests",)
    assert instance_for(dev, p).owner == "platform"
    assert instance_for(prod, p).owner == "prod-team"
    assert instance_for(prod, p, owner="cli").owner == "cli"
    assert instance_for(prod, p).roots == prod.paths


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ("{name: a, server: 'http://x', token: sk-123}", "4:42: spaces[0].token: a token is never written"),
        ("{name: a, server: 'http://x', token: 'sk-${X'}", "4:42: spaces[0].token: unclosed `${`"),
        (
            "{name: a, server: 'http://x', token: {file: ''}}",
            "4:42: spaces[0].token: a file reference needs a path",
        ),
        ("{name: a, server: 'http://x', token: 42}", "4:42: spaces[0].token: a token is never written"),
        ("{name: 'a b', server: 'http://x', token: '${T}'}", "4:12: spaces[0].name: must be 1-63 letters"),
        (
            "{name: a, server: x.example, token: '${T}'}",
            "4:23: spaces[0].server: must be an http:// or https://",
        ),
        (
            "{name: a, server: 'http://x', token: '${T}', tenant: ''}",
            "spaces[0].tenant: must be a tenant name",
        ),
        ("{name: a, server: 'http://x', token: '${T}', owner: 'Bad Owner!'}", "spaces[0].owner:"),
        (
            "{name: a, server: 'http://x', token: '${T}', paths: 3}",
            "spaces[0].paths: must be a list of paths",
        ),
        ("{name: a, server: 'http://x', token: '${T}', colour: red}", "spaces[0].colour: unknown field"),
        ("{name: a, server: 'http://x'}", "4:5: spaces[0]: `token` is required"),
        ("just-a-name", "4:5: spaces[0]: a space is a mapping"),
    ],
)
def test_a_bad_space_is_one_clear_problem(tmp_path, entry, expected):
    found = problems(tmp_path, f"\nowner: o\nspaces:\n  - {entry}\n")
    assert len(found) == 1 and expected in found[0], found


def test_duplicate_names_and_an_empty_list_are_refused(tmp_path):
    found = problems(
        tmp_path,
        "spaces:\n  - {name: a, server: 'http://x', token: '${T}'}\n  - {name: a, server: 'http://y', token: '${T}'}\n",
    )
    assert found == ["syft-reconciler.yaml:3:12: spaces[1].name: space 'a' is already declared (spaces[0])"]
    assert "spaces: must be a non-empty list" in problems(tmp_path, "spaces: []\n")[0]


def test_a_project_without_spaces_has_none(tmp_path):
    assert project(tmp_path, "owner: o\n").spaces == ()


def test_tokens_resolve_from_the_environment_or_a_file(tmp_path):
    p = project(
        tmp_path,
        """
        spaces:
          - {name: a, server: 'http://x', token: 'Bearer-${T}'}
          - {name: b, server: 'http://y', token: {file: tok}}
        """,
    )
    a, b = p.spaces
    assert resolve_token(a, {"T": "xyz"}, folder=p.folder) == "Bearer-xyz"
    with pytest.raises(BadSetting, match="environment variable T is not set"):
        resolve_token(a, {}, folder=p.folder)
    with pytest.raises(BadSetting, match="cannot read"):
        resolve_token(b, {}, folder=p.folder)
    (tmp_path / "tok").write_text("from-file\n")
    assert resolve_token(b, {}, folder=p.folder) == "from-file"
    with pytest.raises(BadSetting, match="empty or not printable"):
        resolve_token(a, {"T": "has space"}, folder=p.folder)


@pytest.mark.parametrize(
    ("text", "expected"), [("1/3", Shard(1, 3)), (" 3 / 3 ", Shard(3, 3)), ("1/1", Shard(1, 1))]
)
def test_shard_parses(text, expected):
    assert Shard.parse(text) == expected


@pytest.mark.parametrize("text", ["0/3", "4/3", "1/0", "a/b", "1", "-1/2"])
def test_a_bad_shard_is_refused(text):
    with pytest.raises(BadSetting, match="--shard"):
        Shard.parse(text)


@pytest.mark.parametrize(
    ("host", "count", "expected"),
    [("syft-reconciler-0", 3, Shard(1, 3)), ("a-b-2", 3, Shard(3, 3)), ("web-10", 11, Shard(11, 11))],
)
def test_shard_from_a_statefulset_host_name(host, count, expected):
    assert Shard.from_hostname(host, count) == expected


@pytest.mark.parametrize(("host", "message"), [("laptop", "cannot read"), ("sr-3", "only 3 shard")])
def test_a_host_name_that_is_no_replica_is_refused(host, message):
    with pytest.raises(BadSetting, match=message):
        Shard.from_hostname(host, 3)


names = st.lists(st.from_regex(r"[a-z0-9][a-z0-9._-]{0,20}", fullmatch=True), unique=True, max_size=60)


@settings(max_examples=200, deadline=None)
@given(names=names, count=st.integers(1, 12))
def test_shards_partition_the_spaces(names, count):
    p_specs = [_spec(n) for n in names]
    taken = [s.name for i in range(1, count + 1) for s in select(p_specs, (), Shard(i, count))]
    assert sorted(taken) == sorted(names)  # every space exactly once
    assert all(1 <= shard_of(n, count) <= count for n in names)


def test_shard_of_is_stable_across_processes():
    # sha256, not the salted hash(): these values are the same on every run and machine
    assert [shard_of(n, 3) for n in ("team-00", "team-01", "team-02", "prod")] == [
        shard_of(n, 3) for n in ("team-00", "team-01", "team-02", "prod")
    ]
    assert shard_of("team-00", 1) == 1
    assert {shard_of(f"s{i}", 4) for i in range(200)} == {1, 2, 3, 4}


def test_space_globs_select_in_declared_order():
    specs = [_spec(n) for n in ("prod-eu", "dev", "prod-us")]
    assert [s.name for s in select(specs, ["prod-*"])] == ["prod-eu", "prod-us"]
    assert [s.name for s in select(specs, ["dev", "prod-us"])] == ["dev", "prod-us"]
    with pytest.raises(BadSetting, match="matches no space"):
        select(specs, ["staging"])


@pytest.mark.parametrize(
    ("codes", "expected"),
    [([], 0), ([0, 0], 0), ([0, 4, 4], 4), ([2, 0], 2), ([4, 5], 1), ([0, 2, 4], 1), ([3], 3)],
)
def test_summary_exit(codes, expected):
    assert summary_exit(codes) == expected


def test_run_each_isolates_failures_and_keeps_order():
    specs = [_spec(n) for n in ("a", "b", "c", "d")]

    def task(spec, result: SpaceResult):
        if spec.name == "b":
            raise BadSetting("b is broken")
        if spec.name == "c":
            raise RuntimeError("a bug")
        result.lines.append(spec.name)

    for parallelism in (1, 3):
        results = run_each(specs, task, parallelism=parallelism)
        assert [r.spec.name for r in results] == ["a", "b", "c", "d"]
        assert [r.exit_code for r in results] == [0, 64, 3, 0]
        assert results[1].error == {"kind": "usage", "message": "b is broken"}
        assert (
            results[2].error["kind"] == "unexpected" and "RuntimeError: a bug" in results[2].error["message"]
        )
        assert results[3].lines == ["d"]


def _spec(name: str):
    from reconciler.project import SpaceSpec

    return SpaceSpec(name=name, server="http://x", token=EnvRef(((True, "T"),)))


def test_watch_all_routes_batches_to_the_spaces_whose_roots_changed(tmp_path):
    import threading
    import time

    from reconciler.spaces import WatchedSpace, watch_all

    got: dict[str, list[set[str]]] = {"a": [], "b": [], "all": []}

    def loop(name):
        def run(batches):
            for batch in batches:
                got[name].append(batch)

        return run

    spaces = [
        WatchedSpace("a", (tmp_path / "a",), loop("a")),
        WatchedSpace("b", (tmp_path / "b",), loop("b")),
        WatchedSpace("all", (), loop("all")),
    ]

    def seen(a, b, every):  # wait until the loops took what was sent (no coalescing in between)
        deadline = time.monotonic() + 10
        while [len(got["a"]), len(got["b"]), len(got["all"])] != [a, b, every]:
            assert time.monotonic() < deadline, got
            time.sleep(0.01)

    def batches():
        yield {str(tmp_path / "a" / "x.yaml")}
        seen(1, 0, 1)
        yield set()  # a resync: everyone
        seen(2, 1, 2)
        yield {str(tmp_path / "elsewhere.yaml")}
        seen(2, 1, 3)

    stop = threading.Event()
    watch_all(spaces, batches(), stop)
    assert got["a"] == [{str(tmp_path / "a" / "x.yaml")}, set()]
    assert got["b"] == [set()]
    assert got["all"][2] == {str(tmp_path / "elsewhere.yaml")}  # no roots (git HEAD): every batch
    assert stop.is_set()


def test_metrics_over_many_spaces_label_each_series_and_name_the_spaces_not_ready():
    from reconciler.metrics import DaemonMetrics
    from reconciler.watch import RoundResult, RoundStatus, Trigger

    metrics = DaemonMetrics(["a", "b", "c"])
    metrics.observer("a")(RoundResult(Trigger.STARTUP, RoundStatus.OK, 0.1, "", {"in_sync": 2}))
    metrics.observer("b")(RoundResult(Trigger.STARTUP, RoundStatus.UNREACHABLE, 0.1, "refused"))
    code, body = metrics.readiness()
    assert code == 503 and body["ready_spaces"] == 1 and body["spaces"] == 3
    assert body["not_ready"]["b"]["status"] == "unreachable"
    assert body["not_ready"]["c"]["status"] == "starting"
    assert "a" not in body["not_ready"]
    assert metrics.health()[1]["status"] == "degraded"
    metrics.observer("b")(RoundResult(Trigger.RETRY, RoundStatus.OK, 0.1, "", {}))
    metrics.observer("c")(RoundResult(Trigger.STARTUP, RoundStatus.OK, 0.1, "", {}, "abc"))
    assert metrics.readiness() == (200, {"ready": True, "spaces": 3, "ready_spaces": 3, "not_ready": {}})
    from prometheus_client import generate_latest

    text = generate_latest(metrics.registry).decode().splitlines()
    assert 'syft_reconciler_models{space="a",state="in_sync"} 2.0' in text
    assert 'syft_reconciler_rounds_total{space="b",status="unreachable",trigger="startup"} 1.0' in text
    assert 'syft_reconciler_applied_commit_info{commit="abc",space="c"} 1.0' in text


def test_heartbeats_are_alive_while_every_loop_is():
    from reconciler.liveness import Heartbeat, Heartbeats

    now = [0.0]
    source, a, b = (Heartbeat(clock=lambda: now[0]) for _ in range(3))
    group = Heartbeats(source, [a, b])
    group.beat("waiting", 100.0)
    a.beat("round", 1.0)
    b.beat("waiting", 100.0)
    now[0] = 40.0  # past a's promise (1 s + 30 s slack)
    status = group.status()
    assert not status.alive and status.phase == "round"
    a.beat("waiting", 100.0)
    assert group.status().alive
    group.stopped()
    assert not group.status().alive


def test_an_interrupt_stops_the_spaces_not_started_and_the_applies_in_flight():
    import signal

    from reconciler.spaces import Interrupt

    interrupt = Interrupt()
    stopped = []

    class FakeExecutor:
        def interrupt(self, signum):
            stopped.append(signum)

    def task(spec, result):
        if spec.name == "a":
            with interrupt.track(FakeExecutor()):
                interrupt(signal.SIGTERM)  # arrives while a's apply runs
        result.lines.append("ran")

    results = run_each([_spec(n) for n in ("a", "b", "c")], task, parallelism=1, interrupt=interrupt)
    assert stopped == [signal.SIGTERM]
    assert [r.exit_code for r in results] == [0, 143, 143]
    assert results[1].error == {"kind": "interrupted", "message": "not attempted (run stopped)"}
    assert summary_exit([r.exit_code for r in results]) == 143
    late = FakeExecutor()
    with interrupt.track(late):  # an apply that starts after the signal stops at once
        pass
    assert stopped == [signal.SIGTERM, signal.SIGTERM]


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("https://space.example.org", "https://Space.Example.ORG:443/"),
        ("http://space.example.org", "http://space.example.org:80"),
        ("http://127.0.0.1:8080/api", "http://127.0.0.1:8080/api/"),
        ("https://space.example.org", "https://user:pw@space.example.org."),
    ],
)
def test_one_server_spelled_two_ways_is_one_space_and_one_lock(tmp_path, a, b):
    from reconciler.project import lock_key, normal_server

    assert normal_server(a) == normal_server(b) and lock_key(a, "t") == lock_key(b, "t")
    found = problems(
        tmp_path,
        f"owner: o\nspaces:\n  - {{name: a, server: '{a}', tenant: t, token: '${{T}}'}}\n"
        f"  - {{name: b, server: '{b}', tenant: t, token: '${{T}}'}}\n",
    )
    assert len(found) == 1 and found[0].startswith("syft-reconciler.yaml:4:5: spaces[1].owner: spaces[1] (b)")


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("https://space.example.org", "http://space.example.org"),  # another scheme, another port
        ("https://space.example.org", "https://space.example.org:8443"),
        ("https://space.example.org/a", "https://space.example.org/b"),
        ("https://space.example.org/a", "https://space.example.org/A"),  # a path is case-sensitive
    ],
)
def test_other_servers_are_other_spaces(tmp_path, a, b):
    from reconciler.project import lock_key

    assert lock_key(a, None) != lock_key(b, None)
    assert (
        len(
            project(
                tmp_path,
                f"owner: o\nspaces:\n  - {{name: a, server: '{a}', token: '${{T}}'}}\n"
                f"  - {{name: b, server: '{b}', token: '${{T}}'}}\n",
            ).spaces
        )
        == 2
    )


def test_a_shared_space_is_one_problem_per_later_space_at_its_owner(tmp_path):
    found = problems(
        tmp_path,
        """
        spaces:
          - {name: a, server: 'http://x', token: '${T}', owner: team}
          - {name: b, server: 'http://x', token: '${T}', owner: team}
          - {name: c, server: 'http://x', token: '${T}', owner: team}
          - {name: d, server: 'http://x', token: '${T}', owner: other}
          - {name: e, server: 'http://x', tenant: t, token: '${T}', owner: team}
          - {name: f, server: 'http://y', token: '${T}'}
          - {name: g, server: 'http://y', token: '${T}'}
        """,
    )
    assert [p.split(": ", 2)[:2] for p in found] == [
        ["syft-reconciler.yaml:4:57", "spaces[1].owner"],
        ["syft-reconciler.yaml:5:57", "spaces[2].owner"],
        ["syft-reconciler.yaml:9:5", "spaces[6].owner"],
    ]
    assert (
        "spaces[2] (c) and spaces[0] (a) drive the same space, http://x (no tenant), with the same owner `team`"
        in found[1]
    )
    assert "with no owner at all" in found[2]


def test_a_space_that_cannot_start_is_tried_again_with_backoff_until_it_opens():
    import random
    import threading

    from reconciler.backoff import Backoff
    from reconciler.errors import LockHeld
    from reconciler.liveness import Heartbeat
    from reconciler.watch import start

    attempts = iter([LockHeld("held"), OSError("token file"), "opened"])

    def open_():
        outcome = next(attempts)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    failures, waits = [], []
    beat = Heartbeat()
    opened = start(
        open_,
        threading.Event(),
        backoff=Backoff(delays=(1.0, 2.0), jitter=0.0, cap=60.0),
        on_failure=lambda message, delay, n: failures.append((message, delay, n, beat.applies)),
        heartbeat=beat,
        wait=lambda delay: waits.append(delay) or False,
        rng=random.Random(1),
    )
    assert opened == "opened" and waits == [1.0, 2.0]
    assert failures == [("held", 1.0, 1, True), ("unexpected error: OSError: token file", 2.0, 2, False)]
    assert not beat.applies and beat.status().phase == "not_started"
    beat.beat("round", 10.0)  # the loop runs: it applies again
    assert beat.applies


def test_a_stop_while_a_space_cannot_start_ends_the_attempts():
    import threading

    from reconciler.errors import LockHeld
    from reconciler.watch import start

    stop = threading.Event()
    calls = []

    def open_():
        calls.append(1)
        raise LockHeld("held")

    assert start(open_, stop, wait=lambda delay: stop.set() or True) is None
    assert calls == [1]
    stop.clear()
    stop.set()
    assert start(open_, stop) is None and calls == [1]  # stopped before the first attempt


def test_heartbeats_are_not_alive_while_no_space_applies():
    from reconciler.liveness import Heartbeat, Heartbeats

    now = [0.0]
    source, a, b = (Heartbeat(clock=lambda: now[0]) for _ in range(3))
    group = Heartbeats(source, [a, b])
    group.beat("waiting", 100.0)
    assert group.status().alive  # both still on their first attempt
    a.cannot_start(1.0)
    assert group.status().alive  # b may still start
    b.cannot_start(1.0)
    status = group.status()
    assert not status.alive and status.phase == "not_started"
    a.beat("waiting", 1000.0)  # a started
    assert group.status().alive
    group.beat("waiting", 1000.0)
    now[0] = 100.0  # b never tried again: its promise (1 s + slack) is broken, a stuck loop
    assert group.status().phase == "not_started" and not group.status().alive


def test_readiness_names_a_space_that_cannot_start_and_why_until_it_starts():
    from prometheus_client import generate_latest

    from reconciler.metrics import DaemonMetrics
    from reconciler.watch import RoundResult, RoundStatus, Trigger

    metrics = DaemonMetrics(["a", "b"])
    metrics.observer("a")(RoundResult(Trigger.STARTUP, RoundStatus.OK, 0.1))
    metrics.space_started("a")
    metrics.cannot_start("b", "another syft-reconciler holds the lock")
    code, body = metrics.readiness()
    assert code == 503 and list(body["not_ready"]) == ["b"]
    assert body["not_ready"]["b"]["status"] == "not_started"
    assert body["not_ready"]["b"]["reason"].endswith("another syft-reconciler holds the lock")
    text = generate_latest(metrics.registry).decode().splitlines()
    assert 'syft_reconciler_space_started{space="a"} 1.0' in text
    assert 'syft_reconciler_space_started{space="b"} 0.0' in text
    metrics.space_started("b")
    assert metrics.readiness()[1]["not_ready"]["b"]["status"] == "starting"  # its first round is due
    metrics.observer("b")(RoundResult(Trigger.STARTUP, RoundStatus.OK, 0.1))
    assert metrics.readiness()[0] == 200


def test_watch_all_sends_no_batch_to_a_space_not_started_yet(tmp_path):
    import threading
    import time

    from reconciler.spaces import WatchedSpace, watch_all

    started = threading.Event()
    got: list[set[str]] = []

    def run(batches):
        started.wait(10)
        got.extend(batches)

    def batches():
        yield {str(tmp_path / "a" / "x.yaml")}  # before the space started: its first round reads it
        started.set()
        yield set()
        deadline = time.monotonic() + 10
        while got != [set()]:
            assert time.monotonic() < deadline, got
            time.sleep(0.01)

    space = WatchedSpace("a", (tmp_path / "a",), run, takes_batches=started.is_set)
    watch_all([space], batches(), threading.Event())
    assert got == [set()]
