"""`schema pull` of dataset and policy types (schemas/datasets/, schemas/policies/), through the real CLI."""

import json
import shutil

import pytest

from reconciler.schemas import SchemaRegistry, bundled_schema_dir, server_config_schema

from .stubs import stub_server

SCHEMAS = bundled_schema_dir()
DATASET_TYPES = ("local_file", "remote_weaviate", "wordpress")
POLICY_TYPES = ("access", "rate_limit")


@pytest.fixture
def schemas_copy(tmp_path):
    target = tmp_path / "schemas"
    shutil.copytree(SCHEMAS, target)
    return target


def tree(folder):
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def bundled(folder, name):
    return json.loads((SCHEMAS / folder / f"{name}.json").read_text(encoding="utf-8"))


def test_pull_into_an_empty_folder_writes_the_dataset_and_policy_files(cli, sandbox, tmp_path):
    target = tmp_path / "fresh"
    target.mkdir()
    run = cli("schema", "pull", "--schemas-dir", target, "--server", sandbox.url)
    assert run.code == 0, run.all
    out = run.out.splitlines()
    assert out[out.index("Dataset types:") + 1 :][:3] == [
        f"  local_file: new (disabled on the server); wrote {target / 'datasets' / 'local_file.json'}",
        "    + collectionName (string)",
        "    + httpPort (integer)",
    ]
    assert f"  rate_limit: new; wrote {target / 'policies' / 'rate_limit.json'}" in out
    # `headers` is published as `anyOf` (object or null): no single type to name
    assert "    + headers (any, secret)" in out and "    + applicationPassword (string, secret)" in out
    assert out[-1] == (
        f"Pulled 4 model type(s), 3 dataset type(s), 2 policy type(s) from {sandbox.url}: "
        "9 new, 0 changed, 0 unchanged."
    )
    for folder, names in (("datasets", DATASET_TYPES), ("policies", POLICY_TYPES)):
        assert sorted(p.stem for p in (target / folder).glob("*.json")) == list(names)
        for name in names:
            pulled, ours = json.loads((target / folder / f"{name}.json").read_text()), bundled(folder, name)
            # the bundled shape, but for the words only a human writes (title, description) and
            # what only the bundled file knows: the server's own checks (allOf) and the filter
            # definitions its published `$ref`s point to ($defs; without them the refs are dropped)
            ours_only = ("title", "description", "allOf", "$defs")
            if "$defs" in ours:
                pulled["properties"].pop("filters"), ours["properties"].pop("filters")
            assert {k: v for k, v in pulled.items() if k not in ours_only} == {
                k: v for k, v in ours.items() if k not in ours_only
            }
            assert pulled["title"] == name and pulled["$id"].endswith(f"/schemas/{folder}/{name}.json")
    editor = json.loads((target / "editor" / "manifest.schema.json").read_text())
    assert {"dataset.wordpress", "policy.rate_limit"} <= set(editor["definitions"])

    before = tree(target)
    run = cli("schema", "pull", "--schemas-dir", target, "--server", sandbox.url)
    assert run.code == 0 and "editor schema" not in run.out and "0 new, 0 changed, 9 unchanged." in run.out
    assert tree(target) == before


def test_pull_over_the_bundled_schemas_leaves_every_file_unchanged(cli, sandbox, schemas_copy):
    before = tree(schemas_copy)
    run = cli("schema", "pull", "--schemas-dir", schemas_copy, "--server", sandbox.url, "-o", "json")
    assert run.code == 0, run.all
    data = json.loads(run.out)
    assert data["version"] == 3 and data["editor_schema"] is None and data["error"] is None
    assert [d["dtype"] for d in data["dtypes"]] == ["anthropic", "ollama", "openai", "vllm"]
    assert list(data["kinds"]) == ["models", "datasets", "policies"]
    assert data["kinds"]["models"]["types"] == [
        {"name": d["dtype"], **{k: v for k, v in d.items() if k != "dtype"}} for d in data["dtypes"]
    ]
    datasets, policies = data["kinds"]["datasets"], data["kinds"]["policies"]
    assert (datasets["route"], datasets["folder"], datasets["served"], datasets["note"]) == (
        "/api/v1/datasets/types/",
        str(schemas_copy / "datasets"),
        True,
        None,
    )
    assert [(t["name"], t["status"], t["note"], t["file"]) for t in datasets["types"]] == [
        (name, "unchanged", "disabled on the server", None) for name in DATASET_TYPES
    ]
    assert [(t["name"], t["status"], t["note"]) for t in policies["types"]] == [
        (name, "unchanged", "") for name in POLICY_TYPES
    ]
    assert tree(schemas_copy) == before


def test_a_changed_server_schema_is_reported_with_field_lines_and_rewritten(cli, sandbox, schemas_copy):
    weaviate = schemas_copy / "datasets" / "remote_weaviate.json"
    local = json.loads(weaviate.read_text())
    del local["properties"]["filters"]
    local["properties"]["timeout"] = {"type": "integer"}
    local["properties"]["default_similarity_threshold"]["default"] = 0.7
    weaviate.write_text(json.dumps(local, indent=2) + "\n")
    rate = schemas_copy / "policies" / "rate_limit.json"
    local = json.loads(rate.read_text())
    local["required"] = []
    rate.write_text(json.dumps(local, indent=2) + "\n")

    run = cli("schema", "pull", "--schemas-dir", schemas_copy, "--server", sandbox.url, "--dry-run")
    assert run.code == 0, run.all
    out = run.out.splitlines()
    at = out.index("Dataset types:")
    assert out[at:] == [
        "Dataset types:",
        "  local_file: unchanged (disabled on the server)",
        f"  remote_weaviate: changed (disabled on the server); would write {weaviate}",
        "    + filters (any)",
        "    - timeout",
        "    ~ default_similarity_threshold.default: 0.7 → 0.5",
        "  wordpress: unchanged (disabled on the server)",
        "Policy types:",
        "  access: unchanged",
        f"  rate_limit: changed; would write {rate}",
        '    ~ required: [] → ["limit"]',
        # the editor schema already matches the folder as the pull leaves it: the bundled one
        f"Pulled 4 model type(s), 3 dataset type(s), 2 policy type(s) from {sandbox.url}: "
        "0 new, 2 changed, 7 unchanged. Dry run: nothing was written.",
    ]

    run = cli("schema", "pull", "--schemas-dir", schemas_copy, "--server", sandbox.url)
    assert (
        run.code == 0 and f"  remote_weaviate: changed (disabled on the server); wrote {weaviate}" in run.out
    )
    assert tree(schemas_copy) == tree(SCHEMAS)  # the editor schema too


def test_types_only_in_the_files_are_kept(cli, sandbox, schemas_copy):
    extra = {"type": "object", "properties": {"price": {"type": "number"}}, "additionalProperties": False}
    (schemas_copy / "policies" / "pii_filter.json").write_text(json.dumps(extra) + "\n")
    (schemas_copy / "datasets" / "s3.json").write_text(json.dumps(extra) + "\n")
    before = tree(schemas_copy)
    run = cli("schema", "pull", "--schemas-dir", schemas_copy, "--server", sandbox.url)
    assert run.code == 0, run.all
    out = run.out.splitlines()
    assert "  pii_filter: not offered by the server; kept" in out[out.index("Policy types:") :]
    assert (
        "  s3: not offered by the server; kept"
        in out[out.index("Dataset types:") : out.index("Policy types:")]
    )
    editor = "editor/manifest.schema.json"
    after = tree(schemas_copy)
    assert {k: v for k, v in after.items() if k != editor} == {k: v for k, v in before.items() if k != editor}
    # the editor schema is the folder's: the kept types are in it
    assert {"dataset.s3", "policy.pii_filter"} <= set(json.loads(after[editor])["definitions"])
    assert f"editor schema: wrote {schemas_copy / editor}" in out


def older_server(handler, body):
    """A server from before datasets and policies: model types only, a 404 for every other route."""
    if handler.path == "/api/v1/models/types/":
        return 200, [{"name": "openai", "config_schema": server_config_schema(bundled("", "openai"))}], {}
    return 404, {"detail": "Not Found"}, {}


def test_an_older_server_without_the_kind_routes_is_one_line_each(cli, schemas_copy):
    before = tree(schemas_copy)
    with stub_server(older_server) as (url, seen):
        run = cli("schema", "pull", "--schemas-dir", schemas_copy, "--server", url)
        assert run.code == 0, run.all
        assert run.err == ""
        out = run.out.splitlines()
        assert out[-3:] == [
            "Dataset types: not pulled: the server answers 404 to GET /api/v1/datasets/types/ "
            f"(it predates datasets); {schemas_copy / 'datasets'} left as it is",
            "Policy types: not pulled: the server answers 404 to GET /api/v1/policies/types/ "
            f"(it predates policies); {schemas_copy / 'policies'} left as it is",
            f"Pulled 1 model type(s) from {url}: 0 new, 0 changed, 1 unchanged.",
        ]
        assert "  openai: unchanged" in out
        run = cli("schema", "pull", "--schemas-dir", schemas_copy, "--server", url, "-o", "json")
        assert run.code == 0
        kinds = json.loads(run.out)["kinds"]
        assert (kinds["datasets"]["served"], kinds["datasets"]["types"]) == (False, [])
        assert kinds["policies"]["note"].startswith(
            "not pulled: the server answers 404 to GET /api/v1/policies/"
        )
    assert [r["path"] for r in seen[:3]] == [
        "/api/v1/models/types/",
        "/api/v1/datasets/types/",
        "/api/v1/policies/types/",
    ]
    assert tree(schemas_copy) == before


TOKEN = "admin-key-canary-4242"
SECRET_DEFAULT = "sk-default-canary-7777"
# As the real server publishes them (syft-space-api-kinds.md, "Dataset types"): only `properties`
# and `required`, `enabled: false`, `"secret": true`, `format: password`, `$ref`s to missing `$defs`;
# and a policy type of the real server that the sandbox does not rebuild.
REAL_DATASET_TYPES = [
    {
        "name": "remote_weaviate",
        "description": "Remote Weaviate dataset type.",
        "enabled": False,
        "icon": "",
        "browsable": False,
        "config_schema": {
            "properties": {
                "http_url": {"type": "string", "format": "uri"},
                "api_key": {"type": "string", "default": SECRET_DEFAULT},
                "headers": {
                    "anyOf": [
                        {"type": "object", "additionalProperties": {"type": "string"}},
                        {"type": "null"},
                    ],
                    "secret": True,
                },
                "filters": {
                    "anyOf": [
                        {"$ref": "#/$defs/FilterCondition"},
                        {"$ref": "#/$defs/FilterGroup"},
                        {"type": "null"},
                    ],
                    "default": None,
                },
            },
            "required": ["http_url", "api_key"],
        },
    },
    {
        "name": "wordpress",
        "description": "WordPress dataset type.",
        "enabled": False,
        "config_schema": {
            "properties": {"applicationPassword": {"type": "string", "format": "password"}},
            "required": ["applicationPassword"],
        },
    },
]
REAL_POLICY_TYPES = [
    {"name": "../evil", "config_schema": {"properties": {}}},
    {
        "name": "pii_filter",
        "description": "PII filter.\n\nDetails.",
        "config_schema": {"properties": {}, "required": []},
    },
]


def real_like_server(handler, body):
    if handler.headers.get("Authorization") != f"Bearer {TOKEN}":
        return 401, {"detail": "Not authenticated"}, {}
    return {
        "/api/v1/models/types/": (200, [], {}),
        "/api/v1/datasets/types/": (200, REAL_DATASET_TYPES, {}),
        "/api/v1/policies/types/": (200, REAL_POLICY_TYPES, {}),
    }.get(handler.path, (404, {"detail": "Not Found"}, {}))


def test_real_server_quirks_pull_into_valid_schemas_and_print_no_secret(cli, schemas_copy):
    weaviate = schemas_copy / "datasets" / "remote_weaviate.json"
    local = json.loads(weaviate.read_text())
    local["properties"]["api_key"]["default"] = "sk-old-default-canary-5555"
    weaviate.write_text(json.dumps(local, indent=2) + "\n")
    with stub_server(real_like_server) as (url, _):
        runs = [
            cli("schema", "pull", "--schemas-dir", schemas_copy, "--server", url, "--token", TOKEN, *extra)
            for extra in (("--dry-run", "-o", "json"), ("--dry-run",), ())
        ]
    for run in runs:
        assert run.code == 0, run.all
        for canary in (TOKEN, SECRET_DEFAULT, "sk-old-default-canary-5555"):
            assert canary not in run.all
    assert (
        runs[1].err == "warning: skipped policy type '../evil': its name cannot be a file name in schemas/\n"
    )
    assert "../evil" not in runs[1].out and not (schemas_copy.parent / "evil.json").exists()
    out = runs[2].out.splitlines()
    assert (
        # the server's `$ref`s resolve in the existing file's `$defs`: kept, so nothing to note
        f"  remote_weaviate: changed (disabled on the server); wrote {weaviate}"
    ) in out
    assert "    ~ api_key.default: (hidden) → (hidden)" in out
    assert f"  pii_filter: new; wrote {schemas_copy / 'policies' / 'pii_filter.json'}" in out
    # every written schema compiles (no dangling $ref left) and keeps the secrets write-only
    datasets = SchemaRegistry.load(schemas_copy / "datasets")
    assert datasets.secret_fields("remote_weaviate") == {"api_key", "headers"}
    assert datasets.secret_fields("wordpress") == {"applicationPassword"}
    assert not list(
        datasets.get("remote_weaviate").errors(
            {"http_url": "http://w", "api_key": "k", "filters": {"type": "group"}}
        )
    )
    assert list(
        datasets.get("remote_weaviate").errors({"http_url": "http://w", "api_key": "k", "filters": {}})
    )
    pii = json.loads((schemas_copy / "policies" / "pii_filter.json").read_text())
    assert (pii["description"], pii["properties"], pii["additionalProperties"]) == ("PII filter.", {}, False)
    editor = json.loads((schemas_copy / "editor" / "manifest.schema.json").read_text())
    assert "policy.pii_filter" in editor["definitions"]


def test_junk_on_a_kind_route_is_one_error_and_writes_nothing(cli, schemas_copy):
    def junk(handler, body):
        if handler.path == "/api/v1/policies/types/":
            return 200, {"types": []}, {}
        return real_like_server(handler, body)

    before = tree(schemas_copy)
    with stub_server(junk) as (url, _):
        run = cli("schema", "pull", "--schemas-dir", schemas_copy, "--server", url, "--token", TOKEN)
    assert run.code == 6, run.all
    assert run.out == "" and run.err == "error: GET /api/v1/policies/types/: expected a list of types\n"
    assert tree(schemas_copy) == before
