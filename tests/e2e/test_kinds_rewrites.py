"""What the server rewrites never makes a change: the chroma types' `httpPort` (overwritten with the
provisioner's), a generated `collectionName`, the defaults a policy type fills in, a secret the
server drops (WordPress's `applicationPassword`). For any such manifest (Hypothesis): the second
apply writes nothing (counted on the sandbox's request stats), `plan --detailed-exitcode` exits 0,
and export, then plan, is in sync. Through the real CLI against the sandbox, which rewrites as the
recorded server does (../shared/syft-space-api-kinds.md)."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler.sandbox import SandboxConfig

from .test_kinds import writes

pytestmark = pytest.mark.timeout(300)

SETTINGS = settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
OWNER = ("--owner", "team")

ports = st.integers(1, 65535)
collection_names = st.from_regex(r"[A-Za-z0-9_]{1,24}", fullmatch=True)
extensions = st.lists(
    st.sampled_from([".pdf", ".txt", ".md", ".csv", ".xlsx", ".html"]), max_size=4, unique=True
)


def optional(**fields: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({}, optional=fields)


def local_file() -> st.SearchStrategy[dict[str, Any]]:
    return st.builds(
        lambda name, rest: {"collectionName": name, **rest},
        collection_names,
        optional(httpPort=ports, ingestFileTypeOptions=extensions),
    )


def wordpress() -> st.SearchStrategy[dict[str, Any]]:
    fixed = {"siteUrl": "http://wp.example", "username": "editor", "applicationPassword": "${WP_PASSWORD}"}
    return st.builds(
        lambda name, rest: {**fixed, "collectionName": name, **rest},
        collection_names,
        optional(
            httpPort=ports,
            pollIntervalSeconds=st.integers(1, 86400),
            userAgent=st.sampled_from(["curl/8.7.1", "syft-bot/1"]),
        ),
    )


users = st.lists(st.sampled_from(["*", "*@example.org", "admin-*@*", "ann@example.org"]), max_size=3)


def policies() -> st.SearchStrategy[list[dict[str, Any]]]:
    """Configurations of both rebuilt types with any of their keys left out (the server fills the
    type's defaults in)."""
    rate = optional(
        limit=st.from_regex(r"[1-9][0-9]{0,3}/[smh]", fullmatch=True),
        scope=st.sampled_from(["per_user", "global"]),
        applied_to=users,
    ).filter(lambda c: "limit" in c)
    access = optional(allowed_users=users, denied_users=users)
    return st.tuples(rate, access).map(
        lambda pair: [
            {"name": "per-user", "policy_type": "rate_limit", "configuration": pair[0]},
            {"name": "staff", "policy_type": "access", "configuration": pair[1]},
        ]
    )


def space(files: dict[str, Any], site: dict[str, Any], rules: list[dict[str, Any]]) -> str:
    docs = [
        {"kind": "Dataset", "name": "files", "dtype": "local_file", "configuration": files},
        {"kind": "Dataset", "name": "site", "dtype": "wordpress", "configuration": site},
        {"kind": "Endpoint", "slug": "bot", "name": "Bot", "dataset": "files", "policies": rules},
    ]
    return yaml.safe_dump_all(docs, sort_keys=False)


def in_sync(cli, root, url, *extra) -> None:
    run = cli("plan", root, "--server", url, "--detailed-exitcode", *extra)
    assert run.code == 0, run.all
    assert "No changes: the server matches the manifests." in run.out


def apply_writes_nothing(cli, root, sandbox, *extra) -> None:
    before = writes(sandbox)
    run = cli("apply", root, "--server", sandbox.url, "--auto-approve", *extra)
    assert run.code == 0, run.all
    assert writes(sandbox) == before, run.all


def export_then_plan(cli, sandbox, folder: Path, monkeypatch, *extra) -> None:
    run = cli("export", "--server", sandbox.url, "-d", folder)
    assert run.code == 0, run.all
    for var in ("DATASET_SITE_APPLICATIONPASSWORD",):  # dropped by the server: any value plans in sync
        monkeypatch.setenv(var, "whatever-was-set")
    assert cli("validate", folder).code == 0
    in_sync(cli, folder, sandbox.url, *extra)
    apply_writes_nothing(cli, folder, sandbox, *extra)


@given(
    first=st.tuples(local_file(), wordpress(), policies()),
    second=st.tuples(ports | st.none(), ports | st.none(), policies()),
)
@SETTINGS
def test_what_the_server_rewrites_never_makes_a_change(
    first, second, cli, manifest_dir, sandbox, tmp_path, monkeypatch
):
    """Apply a space, then the same space with other ports (or none) and other policy
    configurations: the ports change nothing, the policies are PATCHed once, and from then on
    apply writes nothing and plan is in sync; export, then plan, is in sync too."""
    sandbox.reset(SandboxConfig())
    monkeypatch.setenv("WP_PASSWORD", "wp-app-password-1")
    files, site, rules = first
    root = manifest_dir({"space.yaml": space(files, site, rules)})
    assert cli("apply", root, "--server", sandbox.url, "--auto-approve", *OWNER).code == 0
    apply_writes_nothing(cli, root, sandbox, *OWNER)
    in_sync(cli, root, sandbox.url, *OWNER)

    files_port, site_port, rules = second
    for config, port in ((files, files_port), (site, site_port)):
        config.pop("httpPort", None)
        if port is not None:
            config["httpPort"] = port
    (root / "space.yaml").write_text(space(files, site, rules))
    before = writes(sandbox)
    run = cli("apply", root, "--server", sandbox.url, "--auto-approve", *OWNER)
    assert run.code == 0, run.all
    after = writes(sandbox)
    changed = {route for route, n in after.items() if n != before.get(route, 0)}
    assert changed <= {"PATCH /api/v1/policies/{policy_id}"}, run.all  # no dataset replaced
    apply_writes_nothing(cli, root, sandbox, *OWNER)
    in_sync(cli, root, sandbox.url, *OWNER)
    export_then_plan(cli, sandbox, Path(tempfile.mkdtemp(dir=tmp_path)), monkeypatch, *OWNER)


@given(files=st.lists(optional(httpPort=ports, ingestFileTypeOptions=extensions), min_size=1, max_size=3))
@SETTINGS
def test_a_generated_collection_name_exports_and_plans_in_sync(
    files, cli, sandbox, api, tmp_path, monkeypatch
):
    """Datasets another person created without a collectionName (the server made one up) and with
    any port: export writes what the server holds, and those files are in sync and write nothing."""
    sandbox.reset(SandboxConfig())
    for i, config in enumerate(files):
        response = api.post(
            "/datasets/", json={"name": f"files-{i}", "dtype": "local_file", "configuration": config}
        )
        assert response.status_code == 201, response.text
        assert len(response.json()["configuration"]["collectionName"]) == 32
    export_then_plan(cli, sandbox, Path(tempfile.mkdtemp(dir=tmp_path)), monkeypatch)


# The recorded server's policy type listing (../shared/syft-space-types/policies-types.json): its
# models fill `applied_to: ["*"]` and the access lists `[]` in, but it publishes no default for them.
RECORDED_POLICY_SCHEMAS = {
    "access": {
        "properties": {
            "allowed_users": {"items": {"type": "string"}, "title": "Allowed Users", "type": "array"},
            "denied_users": {"items": {"type": "string"}, "title": "Denied Users", "type": "array"},
        },
        "required": [],
    },
    "rate_limit": {
        "properties": {
            "limit": {"examples": ["50/m", "1000/h", "100/s"], "title": "Limit", "type": "string"},
            "scope": {
                "enum": ["per_user", "global"],
                "title": "LimitScope",
                "type": "string",
                "default": "per_user",
            },
            "applied_to": {"items": {"type": "string"}, "title": "Applied To", "type": "array"},
        },
        "required": ["limit"],
    },
}


@pytest.fixture
def pulled_policy_schemas(monkeypatch):
    """The policy schemas as `schema pull` writes them from the recorded server, for planning."""
    from reconciler.kinds import plan as kinds_plan
    from reconciler.schema_pull import pulled_schema
    from reconciler.schemas import SchemaRegistry, bundled_schema_dir

    folder = bundled_schema_dir() / "policies"
    pulled = {
        name: pulled_schema(name, served, existing=json.loads((folder / f"{name}.json").read_text()))
        for name, served in RECORDED_POLICY_SCHEMAS.items()
    }
    assert "default" not in pulled["rate_limit"]["properties"]["applied_to"]
    registry = SchemaRegistry(pulled)
    monkeypatch.setattr(kinds_plan, "policy_registry", lambda: registry)


@given(rules=policies())
@SETTINGS
def test_policy_defaults_the_server_fills_in_without_publishing_them_make_no_change(
    rules, cli, manifest_dir, sandbox, tmp_path, monkeypatch, pulled_policy_schemas
):
    sandbox.reset(SandboxConfig())
    model = {"kind": "Model", "name": "llama", "dtype": "ollama", "configuration": {"model": "llama3"}}
    endpoint = {"kind": "Endpoint", "slug": "bot", "name": "Bot", "model": "llama", "policies": rules}
    root = manifest_dir({"space.yaml": yaml.safe_dump_all([model, endpoint], sort_keys=False)})
    assert cli("apply", root, "--server", sandbox.url, "--auto-approve", *OWNER).code == 0
    apply_writes_nothing(cli, root, sandbox, *OWNER)
    in_sync(cli, root, sandbox.url, *OWNER)
    export_then_plan(cli, sandbox, Path(tempfile.mkdtemp(dir=tmp_path)), monkeypatch, *OWNER)
