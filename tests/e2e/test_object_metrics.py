"""`watch --metrics-port` as a process over a whole space: `syft_reconciler_objects{kind,state}`
scraped over HTTP after each kind of round. Every wait polls with a deadline."""

import httpx
from prometheus_client.parser import text_string_to_metric_families

from reconciler.states import KINDS, STATES

from .conftest import model_yaml, poll, seed_model
from .test_kinds import DATASET, endpoint_yaml

WEAVIATE = "wv-canary-objects-5e1a"
FAQ = DATASET.replace("name: handbook", "name: faq").replace("Handbook", "Faq")


def scrape(url):
    """{"objects": {kind: {state: n}}, "models": {state: n}} as /metrics serves them now."""
    found = {"objects": {}, "models": {}}
    for family in text_string_to_metric_families(httpx.get(url + "/metrics").text):
        for sample in family.samples:
            if sample.name == "syft_reconciler_objects":
                kind, state = sample.labels["kind"], sample.labels["state"]
                found["objects"].setdefault(kind, {})[state] = int(sample.value)
            elif sample.name == "syft_reconciler_models":
                found["models"][sample.labels["state"]] = int(sample.value)
    return found


def counts(**kinds):
    """Every (kind, state) pair: the ones given, 0 for the rest."""
    return {kind: {state: kinds.get(kind, {}).get(state, 0) for state in STATES} for kind in KINDS}


def until(url, expected, what):
    """Poll /metrics until the objects equal `expected` (a round logs before it is observed)."""
    last = {}

    def check():
        nonlocal last
        last = scrape(url)
        return last["objects"] == expected

    try:
        poll(check, what)
    except AssertionError:
        raise AssertionError(f"{what}: /metrics shows {last['objects']}, expected {expected}") from None
    assert last["models"] == expected["model"]  # the models gauge is the objects gauge's model kind
    return last


def seed_endpoint(api, slug, **refs):
    response = api.post("/endpoints/", json={"name": slug, "slug": slug, "tags": "", **refs})
    assert response.status_code == 201, response.text
    return response.json()["id"]


def test_objects_are_counted_by_kind_and_state_after_every_round(
    tmp_path, manifest_dir, sandbox, api, daemons
):
    seed_model(api, "legacy", owned=False)  # on the server, in no manifest
    seed_model(api, "shared", owned=False, model="gpt-3.5-turbo")  # named by a manifest, not ours
    endpoint_id = seed_endpoint(api, "legacy-bot", model_id=api.get("/models/legacy").json()["id"])
    policy = {"name": "p", "policy_type": "rate_limit", "configuration": {"limit": "5/m"}}
    assert api.post("/policies/", json={**policy, "endpoint_id": endpoint_id}).status_code == 201
    root = manifest_dir(
        {
            "models.yaml": model_yaml("gpt-4o") + "---\n" + model_yaml("shared"),
            "data.yaml": DATASET,
            "faq.yaml": FAQ,
            "ep.yaml": endpoint_yaml(),
        }
    )
    daemon = daemons(
        root,
        "--server",
        sandbox.url,
        "--owner",
        "team",
        "--resync-interval",
        "1",
        "--metrics-port",
        "0",
        cwd=tmp_path,
        env={"WEAVIATE_KEY": WEAVIATE},
    )
    url = daemon.wait_for("the metrics address", event="metrics_listening")["url"]
    daemon.wait_for("the first round", event="round", trigger="startup", status="ok")
    # the policy of the unmanaged endpoint belongs to it: not counted on its own
    first = counts(
        model={"in_sync": 1, "conflict": 1, "unmanaged": 1},
        dataset={"in_sync": 2},
        endpoint={"in_sync": 1, "unmanaged": 1},
        policy={"in_sync": 2},
    )
    until(url, first, "every kind in sync after the first round")
    assert sorted(p["name"] for p in api.get("/endpoints/support-bot").json()["policies"]) == [
        "per-user",
        "staff-only",
    ]

    mark = daemon.mark()
    (root / "faq.yaml").write_text(FAQ.replace("collection_name: Faq", "collection_name: Faq2"))
    daemon.wait_for("the files round", since=mark, event="round", trigger="files", status="ok")
    replace = counts(**{**first, "dataset": {"in_sync": 1, "replace_needed": 1}})
    until(url, replace, "a dataset that needs --replace")

    assert api.delete("/datasets/faq").status_code == 200  # by hand: drift, not undone
    drift = counts(**{**first, "dataset": {"in_sync": 1, "pending": 1}})
    until(url, drift, "a dataset missing on the server")

    assert daemon.terminate() == 0
    assert WEAVIATE not in daemon.log and "Traceback" not in daemon.log


def test_a_models_only_watch_still_counts_the_other_kinds_on_the_server(
    tmp_path, manifest_dir, sandbox, api, daemons
):
    dataset = {
        "name": "legacy-data",
        "dtype": "remote_weaviate",
        "summary": "",
        "tags": "",
        "configuration": {
            "http_url": "http://w:8080",
            "grpc_url": "http://w:50051",
            "api_key": "k",
            "collection_name": "Legacy",
        },
    }
    response = api.post("/datasets/", json=dataset)
    assert response.status_code == 201, response.text
    seed_endpoint(api, "legacy-bot", dataset_id=response.json()["id"])
    root = manifest_dir({"a.yaml": model_yaml("a")})
    daemon = daemons(
        root, "--server", sandbox.url, "--resync-interval", "1", "--metrics-port", "0", cwd=tmp_path
    )
    url = daemon.wait_for("the metrics address", event="metrics_listening")["url"]
    daemon.wait_for("the first round", event="round", trigger="startup", status="ok")
    expected = counts(model={"in_sync": 1}, dataset={"unmanaged": 1}, endpoint={"unmanaged": 1})
    until(url, expected, "the unmanaged dataset and endpoint")
    # read to be counted, never written: the server keeps them as they were
    assert [e["slug"] for e in api.get("/endpoints/").json()] == ["legacy-bot"]
    assert [d["name"] for d in api.get("/datasets/").json()] == ["legacy-data"]
    assert daemon.terminate() == 0
    assert "Traceback" not in daemon.log
