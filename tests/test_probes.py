"""The daemon's probes: the Heartbeat behind /livez, /readyz's reasons, and a watch that follows a
flipped symlink (git-sync's way of publishing a commit). Clocks are fakes; nothing sleeps."""

import os
import queue
import threading
from pathlib import Path

import httpx
import pytest

from reconciler.liveness import STALL_SLACK_S, Heartbeat
from reconciler.metrics import DaemonMetrics, MetricsServer
from reconciler.sources import manifest_filter
from reconciler.watch import (
    RoundResult,
    RoundStatus,
    Trigger,
    change_batches,
    request_budget,
    run,
)


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_a_heartbeat_is_alive_while_the_loop_keeps_its_promise_and_dead_once_stopped():
    clock, requests = Clock(), [0]
    beat = Heartbeat(progress=lambda: requests[0], clock=clock)
    assert beat.status().alive and beat.status().phase == "starting"

    beat.beat("waiting", 2.6)
    clock.now += 2.6 + STALL_SLACK_S
    assert beat.status().alive
    clock.now += 0.1
    late = beat.status()
    assert (late.alive, late.phase, late.allowed_s) == (False, "waiting", 2.6 + STALL_SLACK_S)

    beat.beat("round", 60)
    clock.now += 60 + STALL_SLACK_S + 1
    assert not beat.status().alive  # a round that started no request for too long is stuck
    requests[0] += 1
    assert beat.status().alive  # ... but one that makes requests is working, however long it takes
    assert beat.status().silent_s == 0
    clock.now += 60 + STALL_SLACK_S + 1
    assert not beat.status().alive

    beat.beat("waiting", 2.6)
    requests[0] += 5  # requests count as progress only inside a round
    clock.now += 2.6 + STALL_SLACK_S + 1
    assert not beat.status().alive

    beat.beat("waiting", 2.6)
    beat.stopped()
    assert beat.status().phase == "stopped" and not beat.status().alive


def test_the_round_budget_covers_one_request_with_all_its_retries():
    assert request_budget(timeout=10, retries=5) == 10 * 6 + 30 * 5
    assert request_budget(timeout=2, retries=0) == 2


def test_the_loop_beats_before_rounds_and_backoffs_and_livez_sees_a_stuck_round():
    clock, requests = Clock(), [0]
    beat = Heartbeat(progress=lambda: requests[0], clock=clock)
    stop, release, entered = threading.Event(), threading.Event(), threading.Event()
    statuses = iter([RoundStatus.UNREACHABLE, RoundStatus.OK, RoundStatus.OK])
    phases = []

    def once(trigger):
        phases.append(beat.status().phase)
        if trigger is Trigger.FILES:
            entered.set()
            release.wait(10)
        return RoundResult(trigger, next(statuses), 0.0)

    def wait(delay):
        phases.append(beat.status().phase)
        return False

    batches = queue.Queue()
    loop = threading.Thread(
        target=run,
        args=(iter(batches.get, None), once, stop),
        kwargs={"heartbeat": beat, "round_silence": 100, "idle_silence": 3, "wait": wait},
    )
    metrics = DaemonMetrics()
    with MetricsServer(metrics, port=0, heartbeat=beat) as server, httpx.Client(base_url=server.url) as http:
        loop.start()
        try:
            batches.put({"a.yaml"})
            assert entered.wait(10)  # inside the files round, which hangs until released
            assert http.get("/livez").json()["phase"] == "round"
            clock.now += 100 + STALL_SLACK_S + 1
            stuck = http.get("/livez")
            assert stuck.status_code == 503
            assert stuck.json() == {"alive": False, "phase": "round", "silent_s": 131.0, "allowed_s": 130.0}
            requests[0] += 1
            assert http.get("/livez").status_code == 200
        finally:
            release.set()
            batches.put(None)
            loop.join(10)
        assert phases == ["round", "backoff", "round", "round"]
        assert http.get("/livez").json()["phase"] == "stopped"
        assert http.get("/livez").status_code == 503  # the loop ended: not alive


def test_livez_without_a_heartbeat_only_says_the_server_runs():
    with MetricsServer(DaemonMetrics(), port=0) as server:
        response = httpx.get(server.url + "/livez")
        assert response.status_code == 200 and response.json() == {"alive": True}


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        (
            RoundStatus.INVALID,
            "the manifests are invalid; nothing was written and the server keeps the last "
            "good state: 2 problems",
        ),
        (RoundStatus.UNREACHABLE, "the server is unreachable or busy; retrying with backoff: 2 problems"),
        (RoundStatus.AUTH, "the server refused the credentials; nothing was written: 2 problems"),
        (RoundStatus.FAILED, "the last round failed against the server: 2 problems"),
        (RoundStatus.ERROR, "the last round hit an unexpected error: 2 problems"),
    ],
)
def test_readyz_says_why_it_is_not_ready(status, reason):
    metrics = DaemonMetrics()
    with MetricsServer(metrics, port=0) as server, httpx.Client(base_url=server.url) as http:
        first = http.get("/readyz")
        assert first.status_code == 503
        assert first.json() == {
            "ready": False,
            "status": "starting",
            "last_success": None,
            "reason": "the first round has not finished yet",
        }
        metrics.observe(RoundResult(Trigger.STARTUP, RoundStatus.OK, 0.1, "fine"))
        ok = http.get("/readyz")
        assert ok.status_code == 200 and ok.json()["ready"] is True and ok.json()["last_success"]
        metrics.observe(RoundResult(Trigger.FILES, status, 0.1, "2 problems"))
        response = http.get("/readyz")
        body = response.json()
        assert response.status_code == 503 and body["status"] == status.value and body["reason"] == reason
        assert body["last_success"] == ok.json()["last_success"]


def test_a_flipped_symlink_is_a_change_and_the_watch_follows_it(tmp_path):
    """git-sync publishes a commit as a new worktree and flips its link; the old one is deleted."""
    for tree in ("a", "b"):
        (tmp_path / ".worktrees" / tree / "m").mkdir(parents=True)
    (tmp_path / ".worktrees" / "a" / "m" / "x.yaml").write_text("x")
    link = tmp_path / "repo"
    link.symlink_to(".worktrees/a")
    root = link / "m"
    stop, got = threading.Event(), queue.Queue()
    ticks = []

    def consume():
        for batch in change_batches(
            [root], keep=manifest_filter, stop=stop, resync_interval=0.2, on_tick=lambda: ticks.append(1)
        ):
            got.put(batch)

    thread = threading.Thread(target=consume)
    thread.start()
    try:
        assert got.get(timeout=10) == set()  # the watcher is live
        (tmp_path / "tmp-link").symlink_to(".worktrees/b")
        os.replace(tmp_path / "tmp-link", link)
        while not (batch := got.get(timeout=10)):
            pass
        assert batch == {str(root)}
        while got.get(timeout=10):  # a tick with nothing new: the new watch is live
            pass
        (tmp_path / ".worktrees" / "b" / "m" / "y.yaml").write_text("y")
        while not (batch := got.get(timeout=10)):
            pass
        assert batch == {str(root / "y.yaml")}
        assert ticks
    finally:
        stop.set()
        thread.join(10)
    assert not thread.is_alive()


def test_without_a_flip_the_watch_is_started_once(tmp_path, monkeypatch):
    import watchfiles

    calls = []

    def fake_watch(*paths, **kwargs):
        calls.append(paths)
        yield set()

    monkeypatch.setattr(watchfiles, "watch", fake_watch)
    out = list(
        change_batches([Path(tmp_path)], keep=manifest_filter, stop=threading.Event(), resync_interval=1)
    )
    assert out == [set()] and len(calls) == 1
