"""Bounded: a whole response within --timeout, a body size cap, capped waits, a time budget per
model, secret files that are regular and small, validation without quadratic steps.

No timed assertions: a bound is proven by the message that only the bound produces (a trickled
answer would have completed, an endless one never ends), and pytest-timeout guards against a hang.
"""

import math
import os
import stat

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler.apply import ApplyOptions, Executor
from reconciler.backoff import MAX_RETRY_AFTER, Backoff
from reconciler.client import SpaceClient
from reconciler.errors import RetryableServerError
from reconciler.graph_apply import run_plans
from reconciler.model import Manifest, normalise_tags
from reconciler.plan import plan as make_plan
from reconciler.references import MAX_SECRET_FILE
from tests.e2e.test_secrets import tls_files as tls_files  # the fixture

from .misbehaving import deep_json, endless, hang, redirect_to, send, trickle

GOOD = "kind: Model\nname: ok\ndtype: ollama\nconfiguration:\n  model: llama3\n"
SLOW = {
    # route scripted, the message that shows the bound (not the server's own end) stopped it
    "trickled-body": (("GET", "/api/v1/models/"), trickle(b"[" + b" " * 400 + b"]", every=0.05)),
    "trickled-headers": (("GET", "/api/v1/models/"), trickle(b"[]", every=0.05, headers_too=True)),
    "trickled-types": (("GET", "/api/v1/models/types/"), trickle(b"[" + b" " * 400 + b"]", every=0.05)),
    "silent-list": (("GET", "/api/v1/models/"), hang),
    "silent-tenant": (("GET", "/api/v1/tenants/t"), hang),
    "redirect-then-silence": (("GET", "/api/v1/models/"), redirect_to("/api/v1/models")),
}


@pytest.mark.parametrize("case", sorted(SLOW))
@pytest.mark.timeout(30)
def test_timeout_bounds_a_whole_response(case, cli, manifest_dir, space):
    (method, path), action = SLOW[case]
    space.script(method, path, action)
    space.script("GET", "/api/v1/models", hang)  # where the same-origin redirect leads
    root = manifest_dir({"a.yaml": GOOD})
    run = cli("plan", root, "--server", space.url, "--timeout", "0.5", "--retries", "0", "--tenant", "t")
    assert run.code == 4, run.all
    assert "no complete answer from" in run.err and "within 0.5s" in run.err, run.err
    assert "Traceback" not in run.all


@pytest.mark.timeout(60)
def test_an_endless_body_stops_at_the_size_cap(cli, manifest_dir, space):
    space.script("GET", "/api/v1/models/", endless())
    run = cli("plan", manifest_dir({"a.yaml": GOOD}), "--server", space.url, "--timeout", "60")
    assert run.code == 6, run.all
    assert (
        run.err.strip().splitlines()[-1]
        == "error: GET /api/v1/models/: the answer is larger than 64 MiB; stopped reading"
    )


@pytest.mark.parametrize("depth", [65, 100, 500, 5000, 100_000])
def test_deep_json_answers_are_refused(cli, manifest_dir, space, depth):
    space.script("GET", "/api/v1/models/", lambda handler, body: send(handler, 200, deep_json(depth)))
    run = cli("plan", manifest_dir({"a.yaml": GOOD}), "--server", space.url)
    assert run.code == 6, run.all
    assert "nests deeper than 64 levels" in run.err


def test_a_small_body_cap_holds_for_error_bodies_too(space):
    space.script("GET", "/api/v1/models/", endless())
    with SpaceClient(space.url, timeout=30, max_body=100_000, retry=Backoff(delays=())) as client:
        with pytest.raises(Exception, match="larger than 1 MiB"):
            client.list_models()


@given(st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.none()), st.integers(0, 30))
@settings(max_examples=200, deadline=None)
def test_retry_after_is_capped(retry_after, attempt):
    delay = Backoff().delay(
        attempt, retry_after if retry_after is None or retry_after == retry_after else None
    )
    assert 0 <= delay <= MAX_RETRY_AFTER


@pytest.mark.parametrize(
    "header", ["1e9", "inf", "nan", "-5", "Wed, 21 Oct 2099 07:28:00 GMT", "", "9" * 400]
)
def test_retry_after_header_values_are_capped(header):
    from reconciler.client import _retry_after

    value = _retry_after(httpx.Response(429, headers={"retry-after": header}))
    delay = Backoff().delay(0, value)
    assert 0 <= delay <= MAX_RETRY_AFTER and not math.isnan(delay)


class _AlwaysBusy:
    """A client whose creates are refused with 429 and a long Retry-After, forever."""

    def __init__(self):
        self.retry = Backoff()
        self.slept = []
        self.posts = 0

    def sleep(self, seconds):
        self.slept.append(seconds)

    def create_model(self, body):
        self.posts += 1
        raise RetryableServerError("POST: busy (429)", status=429, retry_after=1e9)


def test_one_model_has_a_time_budget():
    client = _AlwaysBusy()
    manifest = Manifest("m", "ollama", {"model": "x"})
    options = ApplyOptions(parallelism=1, max_create_attempts=1000, model_budget=0.0)
    report = run_plans(Executor(client, options), make_plan([manifest], {}))
    [outcome] = report.outcomes
    assert outcome.result.value == "failed" and client.posts == 1
    assert "the limit per model is 0s" in outcome.message
    assert client.slept == []  # no budget left: no wait


def test_waits_inside_the_budget_are_capped_by_retry_after_cap():
    client = _AlwaysBusy()
    options = ApplyOptions(parallelism=1, max_create_attempts=4, model_budget=3600.0)
    run_plans(Executor(client, options), make_plan([Manifest("m", "ollama", {"model": "x"})], {}))
    assert client.posts == 4 and client.slept and max(client.slept) <= MAX_RETRY_AFTER


SECRET = "kind: Model\nname: a\ndtype: openai\nconfiguration:\n  api_key: {file: %s}\n  model: gpt-4o\n"


def _special_files(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    big = tmp_path / "big"
    with big.open("wb") as f:
        f.truncate(MAX_SECRET_FILE + 1)
    link = tmp_path / "zero-link"
    link.symlink_to("/dev/zero")
    return {
        "/dev/zero": "not a regular file",
        "/dev/urandom": "not a regular file",
        "/dev/null": "not a regular file",
        str(fifo): "not a regular file",
        str(tmp_path): "not a regular file",
        str(link): "not a regular file",
        str(big): "larger than 1024 KiB",
    }


@pytest.mark.timeout(30)
@pytest.mark.parametrize("command", ["plan", "apply"])
def test_secret_files_are_regular_and_small(command, cli, manifest_dir, space, tmp_path):
    files = _special_files(tmp_path)
    root = manifest_dir(
        {f"m{i}.yaml": (SECRET % path).replace("name: a", f"name: m{i}") for i, path in enumerate(files)}
    )
    run = cli(command, root, "--server", space.url)
    assert run.code == 1 and space.requests == [], run.all
    for i, (path, reason) in enumerate(files.items()):
        line = next(line for line in run.err.splitlines() if f"m{i}.yaml" in line)
        assert f"cannot read secret file {path}" in line and reason in line, line


def test_a_secret_file_on_the_sandbox_is_read_the_same_careful_way(cli, manifest_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    root = manifest_dir({"a.yaml": SECRET % "/dev/zero"})
    run = cli("plan", root, "--sandbox")
    assert run.code == 0, run.all
    assert "secret file /dev/zero is not available" in run.err


@pytest.mark.timeout(60)
@pytest.mark.parametrize("count", [10_000, 100_000])
def test_many_tags_validate_in_linear_time(cli, manifest_dir, count):
    tags = ",".join(f"t{i % (count // 2)}" for i in range(count))  # half of them repeated
    root = manifest_dir({"a.yaml": GOOD + f'tags: "{tags}"\n'})
    run = cli("validate", root)
    assert run.code == 0, run.all


def test_a_tag_list_past_the_node_budget_is_refused(cli, manifest_dir):
    root = manifest_dir({"a.yaml": GOOD + "tags: [" + ",".join(f"t{i}" for i in range(100_000)) + "]\n"})
    run = cli("validate", root)
    assert run.code == 1 and "document expands to more than 10000 values" in run.err


@given(st.lists(st.text(alphabet="ab ,", max_size=4), max_size=30) | st.text(alphabet="ab ,", max_size=60))
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_normalise_tags_is_the_ordered_unique_trimmed_list(tags):
    items = tags.split(",") if isinstance(tags, str) else tags
    expected = []
    for item in items:
        if item.strip() and item.strip() not in expected:
            expected.append(item.strip())
    assert normalise_tags(tags) == tuple(expected)


@pytest.mark.timeout(30)
def test_token_file_is_read_the_careful_way(cli, manifest_dir, space, tmp_path):
    root = manifest_dir({"a.yaml": GOOD})
    os.mkfifo(tmp_path / "fifo")
    for target in ("/dev/zero", tmp_path / "fifo"):
        run = cli("plan", root, "--server", space.url, "--token-file", target)
        assert run.code == 64 and "cannot read --token-file" in run.all and "not a regular file" in run.all
    assert stat.S_ISCHR(os.stat("/dev/zero").st_mode) and space.requests == []


@pytest.mark.timeout(30)
def test_a_slow_resolver_is_inside_the_deadline(cli, manifest_dir, monkeypatch):
    import socket
    import threading

    release = threading.Event()
    real = socket.getaddrinfo

    def slow(host, *args, **kwargs):
        if host == "slow-dns.example":
            release.wait(20)
        return real("127.0.0.1", *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", slow)
    try:
        run = cli(
            "plan",
            manifest_dir({"a.yaml": GOOD}),
            "--server",
            "https://slow-dns.example",
            "--timeout",
            "0.5",
            "--retries",
            "0",
        )
    finally:
        release.set()
    assert run.code == 4, run.all
    assert run.err.strip().splitlines()[-1] == "error: cannot connect to https://slow-dns.example: timed out"


@pytest.fixture
def trickling_tls(tls_files):
    """A TLS server behind a proxy that passes the server's bytes on one every 20 ms."""
    import socket
    import ssl
    import threading

    from tests.e2e.stubs import empty_space, stub_server

    cert, key = tls_files
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    stop = threading.Event()
    with stub_server(empty_space, ssl_context=context) as (url, _):
        upstream = int(url.rsplit(":", 1)[1])
        listener = socket.create_server(("127.0.0.1", 0))
        listener.settimeout(0.05)

        def pipe(src, dst, slow):
            src.settimeout(0.05)
            while not stop.is_set():
                try:
                    data = src.recv(1 if slow else 65536)
                except TimeoutError:
                    continue
                except OSError:
                    break
                if not data:
                    break
                try:
                    dst.sendall(data)
                except OSError:
                    break
                if slow:
                    stop.wait(0.02)
            for sock in (src, dst):  # the TLS server's handshake then ends, and so can the server
                sock.close()

        threads = []

        def accept():
            while not stop.is_set():
                try:
                    client, _ = listener.accept()
                except TimeoutError:
                    continue
                server = socket.create_connection(("127.0.0.1", upstream))
                for args in ((client, server, False), (server, client, True)):
                    threads.append(threading.Thread(target=pipe, args=args, daemon=True))
                    threads[-1].start()

        acceptor = threading.Thread(target=accept, daemon=True)
        acceptor.start()
        try:
            yield f"https://127.0.0.1:{listener.getsockname()[1]}", cert
        finally:
            stop.set()
            acceptor.join(5)
            for thread in threads:  # each closes its sockets: the TLS server's handshake ends
                thread.join(5)
            listener.close()


@pytest.mark.timeout(60)
def test_a_trickled_tls_handshake_is_inside_the_deadline(cli, manifest_dir, trickling_tls):
    url, cert = trickling_tls
    run = cli(
        "plan",
        manifest_dir({"a.yaml": GOOD}),
        "--server",
        url,
        "--ca-cert",
        cert,
        "--timeout",
        "1",
        "--retries",
        "0",
    )
    assert run.code == 4, run.all
    assert run.err.strip().splitlines()[-1] == f"error: cannot connect to {url}: timed out"


def _gzip_bomb(decoded_mib: int) -> bytes:
    import zlib

    packer = zlib.compressobj(9, zlib.DEFLATED, 31)  # gzip framing
    block = b"[" + b" " * (1024 * 1024 - 1)
    data = packer.compress(block) + b"".join(
        packer.compress(b" " * (1024 * 1024)) for _ in range(decoded_mib)
    )
    return data + packer.flush()


@pytest.mark.timeout(60)
def test_a_compressed_bomb_stops_at_the_size_cap(cli, manifest_dir, space):
    bomb = _gzip_bomb(200)  # ~200 KB on the wire, 200 MiB decoded
    space.script(
        "GET",
        "/api/v1/models/",
        lambda handler, body: send(handler, 200, bomb, headers={"Content-Encoding": "gzip"}),
    )
    run = cli("plan", manifest_dir({"a.yaml": GOOD}), "--server", space.url, "--timeout", "60")
    assert run.code == 6, run.all
    assert "the answer is larger than 64 MiB; stopped reading" in run.err
