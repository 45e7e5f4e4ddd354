"""No secret in any output: canaries planted in the token, the URL, env and file references and the
server's answers, then every output channel and error path we can reach is searched for them."""

import json
import logging
import os

import httpx
import pytest

from reconciler import redact
from reconciler.cli.watch import JsonFormatter
from reconciler.metrics import DaemonMetrics, MetricsServer
from reconciler.watch import RoundResult, RoundStatus, Trigger

from .misbehaving import answer, echo, endless, hang, redirect_to, reset, text, trickle

ENV = "sk-canary-env-0a1b2c3d"
FILE = "sk-canary-file-4e5f6a7b"
TOKEN = "tok-canary-8c9d0e1f"
URLPW = "pw-canary-2a3b4c5d"
SERVER = "srv-canary-6e7f8a9b"  # a value the server holds under a secret-looking key
CANARIES = (ENV, FILE, TOKEN, URLPW, SERVER)

MANIFEST = """kind: Model
name: {name}
dtype: openai
configuration:
  api_key: {key}
  model: gpt-4o
"""


def clean(*texts, debug=False):
    for output in texts:
        for canary in CANARIES:
            assert canary not in output, f"{canary} leaked in:\n{output}"
        assert debug or "Traceback" not in output


@pytest.fixture
def root(manifest_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", ENV)
    (tmp_path / "key").write_text(FILE + "\n")
    return manifest_dir(
        {
            "env.yaml": MANIFEST.format(name="env", key="${OPENAI_API_KEY}"),
            "file.yaml": MANIFEST.format(name="file", key="{file: ../key}"),
            "mixed.yaml": MANIFEST.format(name="mixed", key="Bearer-${OPENAI_API_KEY}-x"),
        }
    )


def server_args(space, *, password=True):
    url = space.url.replace("http://", f"http://admin:{URLPW}@") if password else space.url
    return ["--server", url, "--token", TOKEN, "--retries", "0"]


# Each: (setup(space), command args after the manifest folder). The server echoes, fails or lies.
ERROR_PATHS = {
    "plain": (lambda s: None, ["plan"]),
    "plain-json": (lambda s: None, ["plan", "-o", "json"]),
    "plain-markdown": (lambda s: None, ["plan", "-o", "markdown"]),
    "apply": (lambda s: None, ["apply"]),
    "apply-json": (lambda s: None, ["apply", "-o", "json"]),
    "echo-500-text-on-create": (lambda s: s.script("POST", "/api/v1/models/", echo(500)), ["apply"]),
    "echo-500-json-on-create": (
        lambda s: s.script("POST", "/api/v1/models/", echo(500, as_json=True)),
        ["apply", "-o", "json"],
    ),
    "echo-422-on-create": (lambda s: s.script("POST", "/api/v1/models/", echo(422, as_json=True)), ["apply"]),
    "echo-400-text-on-create": (
        lambda s: s.script("POST", "/api/v1/models/", echo(400)),
        ["--debug", "apply"],
    ),
    "echo-on-list": (lambda s: s.script("GET", "/api/v1/models/", echo(500)), ["plan"]),
    "echo-on-list-json": (
        lambda s: s.script("GET", "/api/v1/models/", echo(500, as_json=True)),
        ["plan", "-o", "json"],
    ),
    "echo-401": (lambda s: s.script("GET", "/api/v1/models/", echo(401, as_json=True)), ["plan"]),
    "echo-503-retried": (lambda s: s.script("GET", "/api/v1/models/", echo(503)), ["--debug", "plan"]),
    "echo-on-types": (lambda s: s.script("GET", "/api/v1/models/types/", echo(500)), ["plan"]),
    "echo-on-tenant": (lambda s: s.script("GET", "/api/v1/tenants/t", echo(500)), ["plan", "--tenant", "t"]),
    "token-in-detail-first-line": (
        lambda s: s.script("POST", "/api/v1/models/", text(500, f"Authorization: Bearer {TOKEN} key={ENV}")),
        ["apply"],
    ),
    "bearer-of-someone-else": (
        lambda s: s.script("POST", "/api/v1/models/", text(500, "bad header Bearer abcdefghijkl")),
        ["apply"],
    ),
    "lying-201": (
        lambda s: s.script(
            "POST",
            "/api/v1/models/",
            answer(201, {"name": "other", "dtype": "openai", "configuration": {"api_key": SERVER}}),
        ),
        ["apply"],
    ),
    "trickle": (
        lambda s: s.script("GET", "/api/v1/models/", trickle(b"[]" * 40, every=0.1)),
        ["plan", "--timeout", "0.5"],
    ),
    "endless": (lambda s: s.script("GET", "/api/v1/models/", endless()), ["plan"]),
    "hang-on-create": (lambda s: s.script("POST", "/api/v1/models/", hang), ["apply", "--timeout", "0.5"]),
    "reset-on-create": (lambda s: s.script("POST", "/api/v1/models/", reset), ["--debug", "apply"]),
    "redirect-elsewhere": (
        lambda s: s.script("GET", "/api/v1/models/", redirect_to(f"http://u:{URLPW}@10.9.9.9/")),
        ["plan"],
    ),
    "save-plan": (lambda s: None, ["plan", "--out", "{tmp}/plan.json"]),
}


@pytest.mark.parametrize("case", sorted(ERROR_PATHS))
def test_no_canary_on_any_path(case, cli, root, space, tmp_path):
    setup, args = ERROR_PATHS[case]
    setup(space)
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    run = cli(*args, root, *server_args(space))
    assert run.code != 3, run.all
    written = [p.read_text(errors="replace") for p in tmp_path.glob("*.json")]
    clean(run.out, run.err, *written, debug="--debug" in args)


def test_the_token_and_password_reach_only_the_configured_server(cli, root, space):
    run = cli("apply", root, *server_args(space))
    assert run.code == 0, run.all
    headers = space.requests[0][2]
    assert headers["Authorization"] == f"Bearer {TOKEN}"
    clean(run.out, run.err)


SECRET_LOOKING = {
    "api_key": SERVER,
    "password": SERVER,
    "secret_key": SERVER,
    "api-key": SERVER,
    "apiKey": SERVER,
    "x_token": SERVER,
    "client_secret": SERVER,
    "access_key": SERVER,
    "private_key": SERVER,
    "headers": {"Authorization": f"Bearer {SERVER}", "X-Api-Key": SERVER, "Cookie": SERVER},
    "nested": [{"credentials": {"user": "u", "password": SERVER}}],
    "base_url": f"https://user:{SERVER}@llm.example.org/v1",
}


@pytest.mark.parametrize("owned", [True, False])
@pytest.mark.parametrize("fmt", ["text", "json", "markdown"])
def test_server_side_secrets_are_redacted_by_key_name(
    cli, manifest_dir, space, tmp_path, fmt, owned, monkeypatch
):
    monkeypatch.setenv("OPENAI_API_KEY", ENV)
    tags = "managed-by:syft-reconciler" if owned else ""
    space.models = [
        {"name": "env", "dtype": "openai", "configuration": {"model": "old", **SECRET_LOOKING}, "tags": tags},
        {"name": "odd", "dtype": "custom", "configuration": SECRET_LOOKING, "tags": tags},
    ]
    root = manifest_dir({"env.yaml": MANIFEST.format(name="env", key="${OPENAI_API_KEY}")})
    run = cli("plan", root, "--server", space.url, "-o", fmt, "--out", tmp_path / "plan.json")
    assert run.code == 0, run.all
    assert "(sensitive)" in run.out or fmt == "markdown"
    clean(run.out, run.err, (tmp_path / "plan.json").read_text())


def test_export_writes_references_for_secret_looking_keys_at_any_depth(cli, space, tmp_path):
    space.models = [
        {"name": "m", "dtype": "custom", "configuration": SECRET_LOOKING, "tags": ""},
        {"name": "o", "dtype": "openai", "configuration": {"model": "x", **SECRET_LOOKING}, "tags": ""},
    ]
    for fmt in ("text", "json"):
        out = tmp_path / fmt
        run = cli("export", "--server", space.url, "-d", out, "-o", fmt)
        assert run.code == 0, run.all
        files = [p.read_text() for p in out.iterdir()]
        assert len(files) == 2 and all("${" in f for f in files)
        clean(run.out, run.err, *files)


@pytest.mark.parametrize(
    "token",
    [
        f"{TOKEN}\n",
        f" {TOKEN} ",
        f"\t{TOKEN}\r\n",  # stripped: work
    ],
)
def test_tokens_with_surrounding_whitespace_are_stripped(cli, root, space, token):
    run = cli("plan", root, "--server", space.url, "--token", token)
    assert run.code == 0, run.all
    assert space.requests[-1][2]["Authorization"] == f"Bearer {TOKEN}"
    clean(run.out, run.err)


@pytest.mark.parametrize(
    "token",
    [
        f"{TOKEN} x",
        f"{TOKEN}\nx",
        f"{TOKEN}\x00",
        f"{TOKEN}é",
        f"{TOKEN}\u2028x",
        f"{TOKEN}\x7f",
        f"{TOKEN}\tx",
        f"{TOKEN}\udcff",
        f"ключ{TOKEN}",
        f"{TOKEN}\x1b[2J",
    ],
)
@pytest.mark.parametrize("how", ["flag", "env", "file"])
def test_tokens_that_cannot_be_a_header_are_refused_without_showing_them(
    cli, root, space, token, how, monkeypatch, tmp_path
):
    args = ["plan", root, "--server", space.url, "-o", "json"]
    if how == "env" and "\x00" in token:
        pytest.skip("an environment cannot hold a NUL")
    if how == "flag":
        args += ["--token", token]
    elif how == "env":
        monkeypatch.setenv("SYFT_SPACE_TOKEN", token)
    else:
        (tmp_path / "tok").write_bytes(token.encode("utf-8", "surrogateescape"))
        args += ["--token-file", tmp_path / "tok"]
    run = cli(*args)
    assert run.code == 64, run.all
    assert json.loads(run.out)["error"]["kind"] == "usage"
    assert "the token contains" in run.out or "cannot read --token-file" in run.out
    assert space.requests == []
    clean(run.out, run.err)


@pytest.mark.parametrize("proxy_var", ["HTTP_PROXY", "http_proxy", "ALL_PROXY", "HTTPS_PROXY"])
def test_a_proxy_never_carries_a_loopback_request(cli, root, space, monkeypatch, proxy_var):
    from .misbehaving import Misbehaving

    with Misbehaving() as proxy:
        monkeypatch.setenv(proxy_var, proxy.url)
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        run = cli("plan", root, "--server", space.url, "--token", TOKEN)
    assert run.code == 0, run.all
    assert proxy.requests == []
    assert space.requests and space.requests[0][2]["Authorization"] == f"Bearer {TOKEN}"


def test_url_password_is_never_printed(cli, root, space):
    runs = [
        cli("plan", root, *server_args(space)),
        cli("plan", root, "--server", f"http://u:{URLPW}@127.0.0.1:9", "--retries", "0"),
        cli("plan", root, "--server", f"http://u:{URLPW}@[::1", "-o", "json"),
        cli("plan", root, "--server", f"ftp://u:{URLPW}@host/"),
        cli("--debug", "plan", root, "--server", f"https://u:{URLPW}@127.0.0.1:9", "--retries", "0"),
    ]
    assert runs[0].code == 0 and all(r.code != 3 for r in runs), [r.all for r in runs]
    clean(*(r.out + r.err for r in runs), debug=True)


def test_healthz_and_json_logs_pass_through_the_scrubber(caplog):
    redact.SCRUBBER.clear()
    redact.register(ENV, TOKEN)
    metrics = DaemonMetrics()
    metrics.observe(
        RoundResult(Trigger.STARTUP, RoundStatus.FAILED, 0.1, f"POST x: 500 {ENV} Bearer {TOKEN}")
    )
    with MetricsServer(metrics, port=0) as server:
        body = httpx.get(server.url + "/healthz").text
    assert "(redacted)" in body
    record = logging.LogRecord(
        "reconciler.watch", logging.ERROR, __file__, 1, "failed: %s", (f"{ENV}\x1b[2J",), None
    )
    record.event, record.fields = "round", {"message": f"https://u:{URLPW}@h", "token": TOKEN}
    line = JsonFormatter().format(record)
    assert json.loads(line)["event"] == "round" and "\x1b" not in line
    clean(body, line)
    redact.SCRUBBER.clear()


def test_scrubber_catches_every_form_of_a_registered_secret():
    scrubber = redact.Scrubber()
    secret = 'sk-"quoted"\\back/slash é'
    scrubber.register(secret)
    for form in (
        secret,
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
        repr(secret)[1:-1],
        httpx.URL("http://h/", params={"k": secret}).query.decode()[2:],
    ):
        assert scrubber.scrub(f"before {form} after") == "before (redacted) after", form


def test_no_canary_in_a_debug_traceback(cli, root, space, monkeypatch):
    """Even the last line of defence: an unexpected error's --debug traceback is scrubbed."""
    from reconciler import plan as planning

    def boom(*args, **kwargs):
        raise RuntimeError(f"bug while holding {os.environ['OPENAI_API_KEY']}")

    monkeypatch.setattr(planning, "diff_model", boom)
    space.models = [{"name": "env", "dtype": "openai", "configuration": {"model": "x"}, "tags": ""}]
    run = cli("--debug", "plan", root, "--server", space.url)
    assert run.code == 3
    assert "(redacted)" in run.err
    for canary in CANARIES:
        assert canary not in run.all


def test_watch_logs_and_healthz_hold_no_canary(root, space, tmp_path):
    """A watch daemon (a real subprocess, JSON logs) against a server that echoes every create."""
    from tests.e2e.conftest import Daemon

    space.script("POST", "/api/v1/models/", echo(500, as_json=True))
    url = space.url.replace("http://", f"http://admin:{URLPW}@")
    daemon = Daemon(
        root,
        "--server",
        url,
        "--token",
        TOKEN,
        "--metrics-port",
        "0",
        "--retries",
        "0",
        "--resync-interval",
        "0.2",
        cwd=tmp_path,
        env={"OPENAI_API_KEY": ENV},
    )
    try:
        metrics = daemon.wait_for("metrics", event="metrics_listening")["url"]
        daemon.wait_for("a failed round", event="round", status="failed")
        health = httpx.get(metrics + "/healthz")
        assert health.status_code == 503
        daemon.terminate()
    finally:
        daemon.kill()
    assert any(r[0] == "POST" and ENV.encode() in r[3] for r in space.requests)  # the secret was sent...
    clean(daemon.log, health.text)  # ...and never shown
    for line in daemon.lines:
        json.loads(line)


def test_a_proxy_from_the_environment_carries_a_remote_request_and_never_shows_its_password(
    cli, root, monkeypatch
):
    """Proxies are chosen by transport.proxy_for (httpx's own environment handling is off): a remote
    server goes through HTTP_PROXY, with the proxy's credentials never printed; NO_PROXY is honoured."""
    from .misbehaving import Misbehaving

    args = ["--server", "http://space.example.test", "--token", TOKEN, "--insecure", "--retries", "0"]
    with Misbehaving() as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url.replace("http://", f"http://u:{URLPW}@"))
        monkeypatch.delenv("http_proxy", raising=False)
        monkeypatch.setenv("NO_PROXY", "other.example.test")
        via_proxy = cli("plan", root, *args, "--timeout", "3")
        seen = len(proxy.requests)
        monkeypatch.setenv("NO_PROXY", "space.example.test")
        bypassed = cli("plan", root, *args, "--timeout", "3")
    assert via_proxy.code != 0 and bypassed.code != 0  # the misbehaving proxy knows no absolute-form paths
    [first, *_] = proxy.requests
    _, target, headers, _ = first
    assert target.startswith("http://space.example.test/api/v1/"), target
    assert headers["Authorization"] == f"Bearer {TOKEN}" and headers["Proxy-Authorization"].startswith(
        "Basic "
    )
    assert seen and all(r[1].startswith("http://space.example.test/") for r in proxy.requests)
    assert len(proxy.requests) == seen  # the second run went around the proxy
    clean(via_proxy.all, bypassed.all)
