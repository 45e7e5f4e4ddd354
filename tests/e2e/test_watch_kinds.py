"""`syft-reconciler watch` logs every kind alike: a model, dataset or endpoint in conflict is a
`conflict` in every round (a writing one and a read-only resync), never drift; JSON events name the
object by `kind` and `name`; text lines say the kind. Real daemons against the sandbox; every wait
polls with a deadline."""

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from reconciler.ownership import owner_tag

from .conftest import model_yaml, poll, seed_model
from .test_kinds import DATASET, endpoint_yaml

WEAVIATE = "wv-canary-watch-kinds-3f0d"
OTHER = owner_tag("other")
WEAVIATE_CONFIG = {
    "http_url": "http://w:8080",
    "grpc_url": "http://w:50051",
    "api_key": "k",
    "collection_name": "Handbook",
}


def seed_other_owners(api, kind):
    """Another owner's object named as a manifest names it, and different from it."""
    if kind == "model":
        seed_model(api, "shared", owned=False, tags=OTHER, model="gpt-3.5-turbo")
        return "shared"
    if kind == "dataset":
        body = {
            "name": "handbook",
            "dtype": "remote_weaviate",
            "summary": "theirs",
            "tags": OTHER,
            "configuration": WEAVIATE_CONFIG,
        }
        assert api.post("/datasets/", json=body).status_code == 201
        return "handbook"
    seed_model(api, "legacy", owned=False)  # an endpoint needs a model or a dataset
    legacy = api.get("/models/legacy").json()["id"]
    body = {"name": "Theirs", "slug": "support-bot", "summary": "theirs", "tags": OTHER, "model_id": legacy}
    response = api.post("/endpoints/", json=body)
    assert response.status_code == 201, response.text
    return "support-bot"


def whole_space(manifest_dir):
    return manifest_dir(
        {
            "models.yaml": model_yaml("gpt-4o") + "---\n" + model_yaml("shared"),
            "data.yaml": DATASET,
            "ep.yaml": endpoint_yaml(),
        }
    )


def watch(daemons, root, sandbox, tmp_path, *args, log_format="json"):
    return daemons(
        root,
        "--server",
        sandbox.url,
        "--owner",
        "team",
        "--resync-interval",
        "0.5",
        *args,
        cwd=tmp_path,
        env={"WEAVIATE_KEY": WEAVIATE},
        log_format=log_format,
    )


def round_events(daemon, trigger, *, since=0):
    """The events of the first round with `trigger` after `since`, its own `round` event last,
    and the index after it."""
    ended = daemon.wait_for(f"a {trigger} round", since=since, event="round", trigger=trigger)
    end = next(i for i in range(since, len(daemon.events)) if daemon.events[i] is ended)
    return daemon.events[since : end + 1], end + 1


def conflict_gauge(url, kind):
    for family in text_string_to_metric_families(httpx.get(url + "/metrics").text):
        for sample in family.samples:
            if sample.name == "syft_reconciler_objects" and sample.labels == {
                "kind": kind,
                "state": "conflict",
            }:
                return int(sample.value)
    raise AssertionError(f"no syft_reconciler_objects{{kind={kind!r},state='conflict'}}")


@pytest.mark.parametrize("kind", ["model", "dataset", "endpoint"])
def test_a_conflict_of_every_kind_is_logged_in_writing_and_read_only_rounds_never_as_drift(
    kind, tmp_path, manifest_dir, sandbox, api, daemons
):
    name = seed_other_owners(api, kind)
    daemon = watch(daemons, whole_space(manifest_dir), sandbox, tmp_path, "--metrics-port", "0")
    url = daemon.wait_for("the metrics address", event="metrics_listening")["url"]

    startup, after = round_events(daemon, "startup")  # writes: the other objects are created
    resync, _ = round_events(daemon, "resync", since=after)  # writes nothing: no file changed
    for events in (startup, resync):
        conflicts = [e for e in events if e["event"] == "conflict"]
        assert [(e.get("kind"), e.get("name"), e["level"]) for e in conflicts] == [(kind, name, "warning")], (
            conflicts
        )
        assert conflicts[0]["msg"].startswith(f"conflict: {kind} {name}: exists on the server")
        assert "--adopt" in conflicts[0]["reason"] and "model" not in conflicts[0]
        assert not [e for e in events if e["event"] == "drift"]
        assert events[-1]["objects"][kind]["conflict"] == 1
    assert startup[-1]["status"] == "ok" and any(e["event"] == "object" for e in startup)
    assert resync[-1]["status"] == "ok" and not any(e["event"] == "object" for e in resync)
    assert resync[-1]["models"] == resync[-1]["objects"]["model"]
    poll(lambda: conflict_gauge(url, kind) == 1, f"the {kind} counted as a conflict in /metrics")
    assert daemon.terminate() == 0
    assert WEAVIATE not in daemon.log and "Traceback" not in daemon.log


def test_json_events_name_every_object_by_kind_and_name(tmp_path, manifest_dir, sandbox, api, daemons):
    root = manifest_dir(
        {"models.yaml": model_yaml("gpt-4o"), "data.yaml": DATASET, "ep.yaml": endpoint_yaml()}
    )
    daemon = watch(daemons, root, sandbox, tmp_path)
    startup, after = round_events(daemon, "startup")
    written = {(e["kind"], e["name"], e["op"], e["result"]) for e in startup if e["event"] == "object"}
    assert written == {
        ("model", "gpt-4o", "create", "created"),
        ("dataset", "handbook", "create", "created"),
        ("endpoint", "support-bot", "create", "created"),
        ("policy", "support-bot/per-user", "create", "created"),
        ("policy", "support-bot/staff-only", "create", "created"),
    }
    assert all("model" not in e for e in startup if e["event"] == "object")
    line = next(e for e in startup if e["event"] == "object" and e["kind"] == "dataset")
    assert line["msg"] == "created  dataset handbook"
    assert startup[-1]["objects"] == {
        kind: {**dict.fromkeys(startup[-1]["models"], 0), "in_sync": n}
        for kind, n in (("model", 1), ("dataset", 1), ("endpoint", 1), ("policy", 2))
    }

    # the first resync comes when the watcher is live: an edit before it would be that round's
    _, after = round_events(daemon, "resync", since=after)
    (root / "ep.yaml").write_text(endpoint_yaml(summary="edited"))
    files, after = round_events(daemon, "files", since=after)
    updated = [e for e in files if e["event"] == "object"]
    assert [(e["kind"], e["name"], e["op"], e["result"]) for e in updated] == [
        ("endpoint", "support-bot", "update", "updated")
    ]

    # drift, in a round that does not write: kind and name, and the fields that differ
    assert api.patch("/endpoints/support-bot", json={"summary": "by hand"}).status_code == 200
    mark = after
    drift = daemon.wait_for("the drift", since=mark, event="drift")
    assert {k: drift[k] for k in ("kind", "name", "op", "differs")} == {
        "kind": "endpoint",
        "name": "support-bot",
        "op": "update",
        "differs": ["summary"],
    }
    assert drift["msg"] == (
        "drift: endpoint support-bot: differs on the server (summary); not reverted (--self-heal would)"
    )
    assert not [e for e in daemon.events if e.get("model") in ("dataset handbook", "endpoint support-bot")]
    assert daemon.terminate() == 0
    assert WEAVIATE not in daemon.log


def test_text_lines_say_the_kind_of_a_conflict_in_every_round(tmp_path, manifest_dir, sandbox, api, daemons):
    seed_other_owners(api, "dataset")
    daemon = watch(daemons, whole_space(manifest_dir), sandbox, tmp_path, log_format="text")
    first = daemon.wait_line("the startup round", "round ok (startup")
    start = daemon.lines.index(first)
    resync = daemon.wait_line("a resync round", "round ok (resync", since=start + 1)
    end = daemon.lines.index(resync)
    for lines in (daemon.lines[:start], daemon.lines[start + 1 : end]):
        conflicts = [line for line in lines if "conflict: " in line]
        assert (
            len(conflicts) == 1 and "WARNING conflict: dataset handbook: exists on the server" in conflicts[0]
        )
        assert not [line for line in lines if "drift" in line]
    assert "created  endpoint support-bot" in "".join(daemon.lines[:start])
    assert "created  model gpt-4o" in "".join(daemon.lines[:start])
    assert daemon.terminate() == 0
