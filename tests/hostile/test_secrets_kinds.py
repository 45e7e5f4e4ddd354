"""No secret of a dataset or a policy in any output, for the class and not an example: secret-looking
fields (any spelling: tests/secret_keys.py) at any depth (a `headers` map, a mapping under a free-form
field, a list of mappings), whose values come from a `${VAR}` reference, a literal in the manifest,
or only from the server (a value another person set). Every canary starts with `CNRY`; plan text,
`--output json`, `-o markdown`, saved plans, apply and export files are grepped for it, and for
`(redacted)`: a secret must be hidden by the redaction (`(sensitive)`, a reference), never only
caught by the scrubber behind it. Exported files are then set up with the server's values and
`validate` and `plan` in sync. Through the real CLI against the sandbox (policies behind a proxy
that adds what a newer server or a type the sandbox does not rebuild would hold)."""

from __future__ import annotations

import json
import re
import tempfile
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler.model import OWNER_TAG
from reconciler.sandbox import SandboxConfig
from tests.secret_keys import MARK, canaries, header_maps, secret_keys, secret_trees, secret_values

from .misbehaving import Misbehaving, send

pytestmark = pytest.mark.timeout(300)

SETTINGS = settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
WEAVIATE_FIELDS = frozenset(
    {"http_url", "grpc_url", "api_key", "collection_name", "headers", "default_similarity_threshold",
     "content_property", "metadata_properties", "filters"}
)  # fmt: skip
RATE_LIMIT_FIELDS = frozenset({"limit", "scope", "applied_to"})
REFERENCE = re.compile(r"\$\{(\w+)\}\Z")


@st.composite
def weaviate(draw: st.DrawFn) -> dict[str, Any]:
    """A remote_weaviate configuration with canaries in every secret place its schema allows."""
    config: dict[str, Any] = {
        "http_url": "http://weaviate.internal:8080",
        "grpc_url": "http://weaviate.internal:50051",
        "api_key": draw(canaries()),
        "collection_name": draw(st.sampled_from(["Handbook", "Docs"])),
    }
    if draw(st.booleans()):
        config["headers"] = draw(header_maps())
    if draw(st.booleans()):
        # a condition or a group, as the server's discriminated union demands
        config["filters"] = {**draw(secret_trees()), "type": draw(st.sampled_from(["condition", "group"]))}
    return config


def server_only() -> st.SearchStrategy[dict[str, Any]]:
    """Top-level keys another person stored (remote_weaviate keeps unknown keys as sent)."""
    keys = secret_keys().filter(lambda k: k not in WEAVIATE_FIELDS)
    return st.dictionaries(keys, secret_values(), max_size=2)


def with_references(draw: st.DrawFn, value: Any, env: dict[str, str]) -> Any:
    """Each canary either stays a literal or becomes a `${VAR}` whose value `env` holds."""
    if isinstance(value, dict):
        return {k: with_references(draw, v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [with_references(draw, v, env) for v in value]
    if isinstance(value, str) and value.startswith(MARK) and draw(st.booleans()):
        var = f"CANARY_{len(env)}"
        env[var] = value
        return f"${{{var}}}"
    return value


def dataset_yaml(name: str, config: dict[str, Any]) -> str:
    doc = {"kind": "Dataset", "name": name, "dtype": "remote_weaviate", "configuration": config}
    return yaml.safe_dump(doc, sort_keys=False)


def seed_dataset(api: httpx.Client, name: str, config: dict[str, Any], *, owned: bool) -> None:
    body = {
        "name": name,
        "dtype": "remote_weaviate",
        "configuration": config,
        "tags": OWNER_TAG if owned else "",
    }
    response = api.post("/datasets/", json=body)
    assert response.status_code == 201, response.text


def hidden(*texts: str) -> None:
    for text in texts:
        assert MARK not in text, f"a canary leaked:\n{text}"
        assert "(redacted)" not in text, f"a secret reached the scrubber:\n{text}"
        assert "Traceback" not in text, text


def plan_outputs(cli, root, url, saved, *extra) -> list[str]:
    """Every plan format, and a saved plan, as text."""
    texts = []
    for fmt in ("text", "json", "markdown"):
        run = cli("plan", root, "--server", url, "-o", fmt, *extra)
        assert run.code == 0, run.all
        texts += [run.out, run.err]
    run = cli("plan", root, "--server", url, "--out", saved, *extra)
    assert run.code == 0, run.all
    return [*texts, run.out, run.err, saved.read_text()]


def fresh(tmp_path: Path) -> Path:
    """A folder of its own for one Hypothesis example (they share the test's tmp_path)."""
    return Path(tempfile.mkdtemp(dir=tmp_path))


def export_texts(cli, url, folder) -> tuple[list[str], dict[str, Any]]:
    """(every output and file of an export, its JSON answer)."""
    run = cli("export", "--server", url, "-d", folder, "-o", "json")
    assert run.code == 0, run.all
    return [run.out, run.err, *(p.read_text() for p in sorted(folder.iterdir()))], json.loads(run.out)


@given(
    ours=weaviate(),
    before=weaviate(),
    theirs=weaviate(),
    extra=server_only(),
    data=st.data(),
)
@SETTINGS
def test_dataset_secrets_from_a_reference_a_literal_or_the_server_never_show(
    ours, before, theirs, extra, data, cli, manifest_dir, sandbox, api, tmp_path, monkeypatch
):
    """`ours` (this owner's, to be replaced) and `theirs` (another person's, a conflict) hold the
    server's canaries; the manifests hold other canaries, as literals or references."""
    sandbox.reset(SandboxConfig())
    seed_dataset(api, "ours", before, owned=True)
    seed_dataset(api, "theirs", {**theirs, **extra}, owned=False)
    env: dict[str, str] = {}
    wanted = with_references(data.draw, ours, env)
    for var, value in env.items():
        monkeypatch.setenv(var, value)
    plain = {"http_url": "http://w:8080", "grpc_url": "http://w:50051", "api_key": "${THEIR_KEY}"}
    monkeypatch.setenv("THEIR_KEY", "not-their-key")
    root = manifest_dir(
        {
            "ours.yaml": dataset_yaml("ours", wanted),
            "theirs.yaml": dataset_yaml("theirs", {**plain, "collection_name": "Mine"}),
        }
    )
    folder = fresh(tmp_path)
    texts = plan_outputs(cli, root, sandbox.url, folder / "plan.json", "--replace", "ours")
    run = cli("apply", root, "--server", sandbox.url, "--replace", "ours", "--auto-approve")
    assert run.code == 7, run.all  # `theirs` is another person's: a conflict, left alone
    exported, _ = export_texts(cli, sandbox.url, folder / "exported")
    hidden(*texts, run.out, run.err, *exported)


def _at(value: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        value = value[key]
    return value


def _references(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[str, tuple[Any, ...]]]:
    """(variable, where) of every `${VAR}` in an exported configuration."""
    if isinstance(value, dict):
        return [r for k, v in value.items() for r in _references(v, (*path, k))]
    if isinstance(value, list):
        return [r for i, v in enumerate(value) for r in _references(v, (*path, i))]
    match = REFERENCE.match(value) if isinstance(value, str) else None
    return [(match.group(1), path)] if match else []


@given(configs=st.lists(weaviate(), min_size=1, max_size=3))
@SETTINGS
def test_exported_dataset_secrets_are_references_that_plan_in_sync(
    configs, cli, sandbox, api, tmp_path, monkeypatch
):
    """Datasets another person set up: export writes each secret leaf as a reference (a `headers`
    map stays a map), the files validate, and with the server's values set, plan is in sync."""
    sandbox.reset(SandboxConfig())
    for i, config in enumerate(configs):
        seed_dataset(api, f"data-{i}", config, owned=False)
    folder = fresh(tmp_path) / "exported"
    texts, answer = export_texts(cli, sandbox.url, folder)
    hidden(*texts)
    server = {d["name"]: d["configuration"] for d in api.get("/datasets/").json()}
    env: dict[str, str] = {}
    for path in folder.glob("dataset-*.yaml"):
        doc = yaml.safe_load(path.read_text())
        for var, where in _references(doc["configuration"]):
            assert var not in env, f"{var} names two values"
            env[var] = _at(server[doc["name"]], where)
    assert sorted(env) == sorted(answer["env"])
    for var, value in env.items():
        monkeypatch.setenv(var, value)
    run = cli("validate", folder)
    assert run.code == 0, run.all
    run = cli("plan", folder, "--server", sandbox.url, "--detailed-exitcode")
    assert run.code == 0, run.all
    hidden(run.out, run.err)


# -- policies: what a newer server, or a type the sandbox does not rebuild, holds -----------------------

ENDPOINT = """kind: Model
name: llama
dtype: ollama
configuration: {model: llama3}
---
kind: Endpoint
slug: bot
name: Bot
model: llama
policies:
  - {name: per-user, policy_type: rate_limit, configuration: {limit: 10/m}}
"""


def _with_server_secrets(upstream: httpx.Client, extra: dict[str, Any], other: dict[str, Any]):
    """The endpoint detail as upstream answers it, plus secrets in `per-user`'s configuration and a
    `stripe_per_request` policy (a type of the real server the sandbox does not rebuild)."""

    def act(handler, body):
        detail = upstream.get("/api/v1/endpoints/bot").json()
        for policy in detail["policies"]:
            policy["configuration"].update(extra)
        detail["policies"].append(
            {
                "id": str(uuid.UUID(int=7)),
                "name": "pay",
                "policy_type": "stripe_per_request",
                "configuration": other,
                "wallet_id": None,
            }
        )
        send(handler, 200, json.dumps(detail).encode())

    return act


@given(
    extra=st.dictionaries(
        secret_keys().filter(lambda k: k not in RATE_LIMIT_FIELDS), secret_values(), min_size=1
    )
    | secret_trees(),
    other=secret_trees(),
)
@SETTINGS
def test_policy_secrets_the_server_holds_never_show(extra, other, cli, manifest_dir, sandbox, tmp_path):
    sandbox.reset(SandboxConfig())
    root = manifest_dir({"bot.yaml": ENDPOINT})
    assert cli("apply", root, "--server", sandbox.url, "--owner", "team", "--auto-approve").code == 0
    with Misbehaving(upstream=sandbox.url) as proxy:
        proxy.script("GET", "/api/v1/endpoints/bot", _with_server_secrets(proxy.upstream, extra, other))
        folder = fresh(tmp_path)
        texts = plan_outputs(cli, root, proxy.url, folder / "plan.json", "--owner", "team")
        texts += plan_outputs(cli, root, proxy.url, folder / "pruned.json", "--owner", "team", "--prune")
        exported, answer = export_texts(cli, proxy.url, folder / "exported")
    hidden(*texts, *exported)
    endpoint = (folder / "exported" / "endpoint-bot.yaml").read_text()
    assert all(f"${{{var}}}" in endpoint for var in answer["env"] if var.startswith("ENDPOINT_BOT_"))
    assert any(var.startswith("ENDPOINT_BOT_PAY_") for var in answer["env"])


# -- a literal in a policy's configuration that its schema refuses ------------------------------------


@st.composite
def misplaced_secrets(draw: st.DrawFn) -> dict[str, Any]:
    """A mapping of secrets where a policy type wants a string or a list of strings, sometimes behind
    a long plain field, so that the message quoting it is cut short (at 200 characters)."""
    secrets = draw(st.dictionaries(secret_keys(), secret_values(), min_size=1, max_size=2))
    if draw(st.booleans()):
        secrets = {"description": "x" * draw(st.integers(150, 190)), **secrets}
    return secrets


@given(
    where=st.sampled_from(["limit", "applied_to", "allowed_users", "denied_users"]),
    secrets=misplaced_secrets(),
)
@SETTINGS
def test_a_refused_policy_configuration_is_never_quoted_with_its_secrets(
    where, secrets, cli, manifest_dir, sandbox
):
    policy_type = "rate_limit" if where in ("limit", "applied_to") else "access"
    value = secrets if where == "limit" else [secrets]
    configuration = {"limit": "10/m", where: value} if policy_type == "rate_limit" else {where: value}
    doc = {
        "kind": "Endpoint",
        "slug": "bot",
        "name": "Bot",
        "model": "llama",
        "policies": [{"name": "p", "policy_type": policy_type, "configuration": configuration}],
    }
    root = manifest_dir({"bot.yaml": yaml.safe_dump(doc, sort_keys=False)})
    runs = [cli("validate", root), cli("validate", root, "-o", "json")]
    runs += [cli("plan", root, "--server", sandbox.url, "-o", fmt) for fmt in ("text", "json", "markdown")]
    for run in runs:
        assert run.code == 1 and "policies.0.configuration" in run.all, run.all
        assert MARK not in run.all, run.all
