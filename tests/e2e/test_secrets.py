"""No secret value leaks through any channel; the token goes only to the configured server."""

import json
import shutil
import ssl
import subprocess

import pytest

from reconciler.sandbox import SandboxConfig

from .conftest import model_yaml, seed_model
from .stubs import empty_space, stub_server

ENV_CANARY = "sk-canary-env-5e1f9a2b"
FILE_CANARY = "sk-canary-file-77c3d0e4"
TOKEN_CANARY = "tok-canary-9d8c7b6a"
CANARIES = (ENV_CANARY, FILE_CANARY, TOKEN_CANARY)


@pytest.fixture
def secret_manifests(manifest_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", ENV_CANARY)
    (tmp_path / "key").write_text(FILE_CANARY + "\n")
    return manifest_dir(
        {
            "env.yaml": model_yaml("env"),
            "file.yaml": model_yaml("file", key="{file: ../key}"),
            "inline.yaml": model_yaml("inline", key="Bearer-${OPENAI_API_KEY}"),
        }
    )


def assert_clean(*outputs):
    for text in outputs:
        for canary in CANARIES:
            assert canary not in text, f"{canary} leaked"


def test_no_canary_in_any_output_channel(cli, secret_manifests, sandbox, api, caplog):
    caplog.set_level("DEBUG")
    sandbox.reset(SandboxConfig(token=TOKEN_CANARY))
    root = secret_manifests
    server = ["--server", sandbox.url, "--token", TOKEN_CANARY]
    runs = [
        cli("validate", root),
        cli("validate", root, "-o", "json"),
        cli("--debug", "plan", root, *server),
        cli("plan", root, *server, "-o", "json"),
        cli("plan", root, *server, "-o", "markdown"),
        cli("--debug", "apply", root, *server),
        cli("apply", root, *server, "-o", "json"),
    ]
    assert runs[-2].code == 0 and json.loads(runs[-1].out)["summary"]["in_sync"] == 3
    # drift on a secret: the diff says a secret changed, never what it was or is
    api.headers["Authorization"] = f"Bearer {TOKEN_CANARY}"
    api.delete("/models/env")
    seed_model(api, "env", key="sk-server-side-value")
    runs += [cli("--debug", "plan", root, *server), cli("plan", root, *server, "-o", "json")]
    assert "configuration.api_key: (sensitive) -> (sensitive)" in runs[-2].out
    assert "sk-server-side-value" not in runs[-2].out + runs[-1].out
    # failures: wrong token, unreachable server, a server error mid-apply
    runs += [cli("--debug", "apply", root, "--server", sandbox.url, "--token", TOKEN_CANARY + "x")]
    runs += [
        cli(
            "--debug",
            "plan",
            root,
            "--server",
            "http://127.0.0.1:9",
            "--token",
            TOKEN_CANARY,
            "--retries",
            "0",
        )
    ]
    sandbox.reset(SandboxConfig(token=TOKEN_CANARY, fail_503_rate=1.0, seed=3))
    runs += [cli("--debug", "apply", root, *server, "--retries", "1", "-o", "json")]
    assert runs[-1].code != 0
    assert_clean(*(r.out + r.err for r in runs), caplog.text)


def test_token_from_env_is_not_in_repr_or_help(cli, monkeypatch):
    monkeypatch.setenv("SYFT_SPACE_TOKEN", TOKEN_CANARY)
    run = cli("apply", "--help")
    assert TOKEN_CANARY not in run.out
    from reconciler.cli.options import ServerSettings

    settings = ServerSettings("http://x", TOKEN_CANARY, None, None, 1.0, 0, False, None, False)
    assert TOKEN_CANARY not in repr(settings)


def test_token_is_not_sent_to_a_redirect_on_another_host(cli, manifest_dir, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", ENV_CANARY)
    root = manifest_dir({"a.yaml": model_yaml("a")})
    # 127.0.0.2 is loopback too, but another host: the token must not follow a redirect there
    with stub_server(empty_space, host="127.0.0.2") as (elsewhere, seen_elsewhere):

        def redirect(handler, body):
            return 307, {}, {"Location": elsewhere + handler.path}

        with stub_server(redirect) as (url, seen):
            run = cli("plan", root, "--server", url, "--token", TOKEN_CANARY)
    assert run.code == 6
    assert (
        "redirected to http://127.0.0.2; not following (the token is only sent to the configured server)"
        in run.err
    )
    assert seen_elsewhere == []
    assert seen[0]["headers"]["Authorization"] == f"Bearer {TOKEN_CANARY}"


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory):
    if shutil.which("openssl") is None:  # pragma: no cover - Debian base images have it
        pytest.skip("openssl not installed")
    folder = tmp_path_factory.mktemp("tls")
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(folder / "key.pem"),
            "-out",
            str(folder / "cert.pem"),
        ],
        check=True,
        capture_output=True,
    )
    return folder / "cert.pem", folder / "key.pem"


def test_tls_is_verified_and_ca_cert_trusts_a_private_ca(cli, manifest_dir, monkeypatch, tls_files):
    monkeypatch.setenv("OPENAI_API_KEY", ENV_CANARY)
    cert, key = tls_files
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    root = manifest_dir({"a.yaml": model_yaml("a")})
    with stub_server(empty_space, ssl_context=context) as (url, _):
        refused = cli("plan", root, "--server", url, "--retries", "0")
        trusted = cli("plan", root, "--server", url, "--ca-cert", cert)
    assert refused.code == 4 and "CERTIFICATE_VERIFY_FAILED" in refused.err
    assert len(refused.err.strip().splitlines()) == 1
    assert trusted.code == 0 and "1 to add" in trusted.out
