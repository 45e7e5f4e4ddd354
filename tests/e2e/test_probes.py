"""`syft-reconciler watch --metrics-port` as a process: /livez, /readyz and /healthz in the good state,
after an invalid manifest, and with the server unreachable. Every wait polls with a deadline."""

import socket

import httpx

from .conftest import model_yaml, poll


def probes(url):
    return {path: httpx.get(url + path) for path in ("/livez", "/readyz", "/healthz")}


def codes(responses):
    return {path: r.status_code for path, r in responses.items()}


def test_probes_in_the_good_state_and_after_an_invalid_manifest(tmp_path, manifest_dir, sandbox, daemons):
    root = manifest_dir({"a.yaml": model_yaml("a")})
    daemon = daemons(
        root, "--server", sandbox.url, "--resync-interval", "1", "--metrics-port", "0", cwd=tmp_path
    )
    url = daemon.wait_for("the metrics address", event="metrics_listening")["url"]
    daemon.wait_for("the first round", event="round", trigger="startup", status="ok")
    good = probes(url)
    assert codes(good) == {"/livez": 200, "/readyz": 200, "/healthz": 200}
    assert good["/livez"].json()["alive"] is True
    assert good["/readyz"].json() == {
        "ready": True,
        "status": "ok",
        "reason": "",
        "last_success": good["/healthz"].json()["last_success"],
    }

    mark = daemon.mark()
    (root / "a.yaml").write_text(model_yaml("a").replace("name: a", "name: a\nnmae: typo"))
    daemon.wait_for("the invalid round", since=mark, event="round", status="invalid")
    bad = probes(url)
    # a typo in git is no reason to restart the pod: alive, but not ready, and it says why
    assert codes(bad) == {"/livez": 200, "/readyz": 503, "/healthz": 503}
    ready = bad["/readyz"].json()
    assert ready["ready"] is False and ready["status"] == "invalid"
    assert ready["reason"].startswith("the manifests are invalid; nothing was written")
    daemon.wait_for("a resync after it", since=daemon.mark(), event="round", trigger="resync")
    assert httpx.get(url + "/livez").status_code == 200

    (root / "a.yaml").write_text(model_yaml("a"))
    poll(lambda: httpx.get(url + "/readyz").status_code == 200, "ready again")
    assert daemon.terminate() == 0


def test_probes_with_the_server_unreachable(tmp_path, manifest_dir, daemons):
    with socket.socket() as s:  # a port that nothing listens on
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    root = manifest_dir({"a.yaml": model_yaml("a")})
    daemon = daemons(
        root,
        "--server",
        dead,
        "--retries",
        "0",
        "--timeout",
        "1",
        "--resync-interval",
        "1",
        "--metrics-port",
        "0",
        cwd=tmp_path,
    )
    url = daemon.wait_for("the metrics address", event="metrics_listening")["url"]
    daemon.wait_for("a failed round", event="round", status="unreachable")
    daemon.wait_for("a second failed round", since=daemon.mark(), event="round", status="unreachable")
    now = probes(url)
    assert codes(now) == {"/livez": 200, "/readyz": 503, "/healthz": 503}
    assert now["/livez"].json()["phase"] in ("backoff", "round")
    ready = now["/readyz"].json()
    assert (ready["ready"], ready["status"], ready["last_success"]) == (False, "unreachable", None)
    assert ready["reason"].startswith(
        "the server is unreachable or busy; retrying with backoff: cannot connect"
    )
    assert daemon.proc.poll() is None
    assert daemon.terminate() == 0
