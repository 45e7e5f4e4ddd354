"""export.py: remote models → manifest texts, with literals only."""

import re

import pytest

from reconciler import manifests
from reconciler.export import env_prefix, export, file_stem, to_yaml
from reconciler.kinds.export import export_endpoints
from reconciler.kinds.values import RemoteEndpoint
from reconciler.model import OWNER_TAG, RemoteModel
from reconciler.references import resolve_manifests as resolve
from reconciler.schemas import SchemaRegistry, bundled_schema_dir
from reconciler.selection import Selector, parse_selector
from reconciler.validate import validate, validate_space

REGISTRY = SchemaRegistry.load()


def remote(name, dtype="openai", configuration=None, summary="", tags=""):
    if configuration is None:
        configuration = {"api_key": "sk-secret-1", "model": "gpt-4o"}
    return RemoteModel(name=name, dtype=dtype, configuration=configuration, summary=summary, tags=tags)


def read_back(text, env, path="exported/x.yaml"):
    """The exported text through the real manifest pipeline: parse, validate, resolve."""
    docs, problems = manifests.parse(text, path)
    assert problems == []
    found, problems = validate(docs, REGISTRY)
    assert [p for p in problems if p.severity == "error"] == []
    resolved, problems = resolve(found, env=env)
    assert problems == []
    return resolved[0]


@pytest.mark.parametrize(
    ("name", "stem"),
    [
        ("gpt-4o", "gpt-4o"),
        ("llama_3.1", "llama_3.1"),
        ("GPT-4o", "gpt-4o-"),
        ("my model", "my-model-"),
        ("100% ready?", "100-ready-"),
        ("модель", "model-"),
        ("Ünïcødé", "unic-de-"),  # NFKD keeps what has an ASCII base letter
        (".hidden", "hidden-"),
        ("con", "con-"),
        (" padded ", "padded-"),
        ("---", "model-"),
    ],
)
def test_file_stem_is_safe_and_keeps_safe_names(name, stem):
    got = file_stem(name)
    if stem.endswith("-"):
        assert got.startswith(stem) and re.fullmatch(r"[0-9a-f]{8}", got[len(stem) :])
    else:
        assert got == stem
    assert re.fullmatch(r"[a-z0-9][a-z0-9._-]*", got)


def test_file_stems_are_unique_case_insensitively_and_deterministic():
    names = ["a", "A", "a ", "a?", "a%", "ä", "gpt 4o", "gpt-4o", "GPT-4o", "x" * 255, "x" * 254]
    stems = [file_stem(n) for n in names]
    assert len({s.casefold() for s in stems}) == len(names)
    assert stems == [file_stem(n) for n in names]
    assert max(len(s) for s in stems) <= 89


@pytest.mark.parametrize(
    ("name", "prefix"),
    [
        ("gpt-4o", "GPT_4O"),
        ("my model", "MY_MODEL"),
        ("4o", "MODEL_4O"),
        ("модель", "MODEL"),
        ("a--b", "A_B"),
    ],
)
def test_env_prefix(name, prefix):
    assert env_prefix(name) == prefix


def test_selectors():
    model = remote("gpt-4o", tags=f"prod,chat,{OWNER_TAG}")
    assert parse_selector("tag=prod") == Selector("tag", "prod")
    assert parse_selector("name=gpt-*").matches(model.name, model.dtype, model.user_tags)
    assert parse_selector("dtype=open*").matches(model.name, model.dtype, model.user_tags)
    assert parse_selector("tag=ch*").matches(model.name, model.dtype, model.user_tags)
    assert not parse_selector("tag=managed-by:*").matches(
        model.name, model.dtype, model.user_tags
    )  # the owner tag is not a user tag
    assert not parse_selector("name=GPT-*").matches(
        model.name, model.dtype, model.user_tags
    )  # case-sensitive, like names
    with pytest.raises(ValueError, match=r"^`owner=me` is not KEY=GLOB with KEY one of name, dtype, tag$"):
        parse_selector("owner=me")
    with pytest.raises(ValueError, match="not KEY=GLOB"):
        parse_selector("prod")


def test_selectors_are_anded():
    models = [
        remote("a", tags="prod"),
        remote("c", tags="dev"),
        remote("b", tags="prod", dtype="ollama", configuration={"model": "m"}),
    ]
    result = export(models, REGISTRY, selectors=[Selector("tag", "prod"), Selector("dtype", "openai")])
    assert [f.name for f in result.files] == ["a"]
    assert (result.matched, result.total) == (1, 3)


def test_secret_becomes_a_reference_and_the_rest_round_trips():
    model = remote(
        "gpt-4o",
        summary="GPT-4o for chat",
        tags=f"openai,chat,{OWNER_TAG}",
        configuration={"api_key": "sk-secret-1", "model": "gpt-4o"},
    )
    result = export([model], REGISTRY)
    (file,) = result.files
    assert file.file_name == "gpt-4o.yaml" and file.env == ("GPT_4O_API_KEY",)
    assert file.text == (
        "# Exported by `syft-reconciler export`. Set GPT_4O_API_KEY in the environment before plan/apply.\n"
        "kind: Model\n"
        "name: gpt-4o\n"
        "dtype: openai\n"
        "configuration:\n"
        "  api_key: ${GPT_4O_API_KEY}\n"
        "  model: gpt-4o\n"
        "summary: GPT-4o for chat\n"
        "tags: [openai, chat]\n"
    )
    back = read_back(file.text, {"GPT_4O_API_KEY": "sk-secret-1"})
    assert (back.name, back.dtype, dict(back.configuration), back.summary, back.tags) == (
        "gpt-4o",
        "openai",
        {"api_key": "sk-secret-1", "model": "gpt-4o"},
        "GPT-4o for chat",
        ("openai", "chat"),
    )
    assert result.warnings == ()


def test_a_redacted_required_secret_is_still_a_reference():
    result = export([remote("gpt", configuration={"model": "gpt-4o"})], REGISTRY)
    assert "  api_key: ${GPT_API_KEY}\n" in result.files[0].text
    assert result.warnings == ()


def test_masked_secrets_are_references_too():
    result = export([remote("gpt", configuration={"api_key": "sk-…abcd", "model": "m"})], REGISTRY)
    assert "sk-" not in result.files[0].text


def test_an_absent_optional_secret_is_left_out_with_a_warning():
    model = remote("qwen", dtype="vllm", configuration={"base_url": "http://vllm:8000/v1", "model": "q"})
    result = export([model], REGISTRY)
    assert "api_key" not in result.files[0].text
    assert result.warnings == (
        "model `qwen`: optional secret `api_key` is not in the server's answer (never set, or redacted "
        "by the server): left out; add `api_key: ${QWEN_API_KEY}` if it has one",
    )


def test_unknown_dtype_is_exported_with_secrets_recognised_by_name():
    model = remote("m", dtype="mystery", configuration={"access_token": "tok-1", "max_tokens": 5, "url": "u"})
    result = export([model], REGISTRY)
    text = result.files[0].text
    assert "tok-1" not in text and "access_token: ${M_ACCESS_TOKEN}" in text and "max_tokens: 5" in text
    assert result.warnings == (
        "model `m`: dtype `mystery` has no bundled schema, so secrets are recognised by name only "
        "(api_key, password, *_token, *_secret…); review the file before you commit it",
    )


def test_unknown_keys_that_look_secret_are_references_for_known_dtypes_too():
    model = remote("m", configuration={"api_key": "k", "model": "x", "client_secret": "s3"})
    text = export([model], REGISTRY).files[0].text
    assert "s3" not in text and "client_secret: ${M_CLIENT_SECRET}" in text


def test_colliding_env_prefixes_get_a_hash():
    result = export([remote("gpt-4o"), remote("gpt 4o"), remote("other")], REGISTRY)
    envs = sorted(v for f in result.files for v in f.env)
    assert len(set(envs)) == 3 and "OTHER_API_KEY" in envs
    assert all(re.fullmatch(r"GPT_4O_[0-9A-F]{6}_API_KEY", v) for v in envs if v != "OTHER_API_KEY")


def test_names_no_manifest_can_hold_are_skipped():
    result = export([remote(""), remote("a/b"), remote("\ud800x"), remote(" ok ")], REGISTRY)
    assert [f.name for f in result.files] == [" ok "]
    assert result.skipped == (
        ("", "the name must not be empty (the server could never read, patch or delete it)"),
        ("a/b", "the name must not contain `/` (the server could never read, patch or delete it)"),
        ("\ud800x", "the name is not valid Unicode text (a lone surrogate)"),
    )


AWKWARD = [
    "yes",
    "no",
    "on",
    "null",
    "~",
    "",
    "1.0",
    "0x1F",
    "1_000",
    "2024-01-01",
    "- item",
    "#hash",
    "a: b",
    "*alias",
    "&anchor",
    "!tag",
    "%x",
    "@x",
    "`x",
    "'quoted'",
    '"dq"',
    " lead",
    "trail ",
    "tab\there",
    "multi\nline\n",
    "multi\nline no end",
    "trailing  \nspaces\n",
    "\n",
    "ünïcødé ☀",
    "${NOT_A_REF}",
    "$${twice}",
    "$",
    "{file: x}",
    "[a]",
    "=",
]


@pytest.mark.parametrize("value", AWKWARD)
def test_awkward_values_round_trip_exactly(value):
    name = (f"m {value}".strip() or "m") if value.isprintable() else "m"
    model = remote(
        name,
        summary=value,
        tags=[value] if value.strip() and "," not in value else [],
        configuration={"api_key": "k", "model": value, "system_prompt": value},
    )
    (file,) = export([model], REGISTRY).files
    var = file.env[0]
    back = read_back(file.text, {var: "k"})
    assert back.name == name
    assert back.summary == value
    assert dict(back.configuration) == {"api_key": "k", "model": value, "system_prompt": value}
    assert back.tags == model.user_tags


def test_numbers_and_booleans_keep_their_types():
    config = {"api_key": "k", "max_tokens": 4096, "temperature": 0.3, "model": "1", "system_prompt": "true"}
    model = remote("c", dtype="anthropic", configuration=config)
    (file,) = export([model], REGISTRY).files
    back = read_back(file.text, {"C_API_KEY": "k"})
    assert dict(back.configuration) == config
    assert [type(back.configuration[k]) for k in config] == [str, int, float, str, str]


def test_a_literal_file_mapping_is_warned_about():
    model = remote("m", dtype="mystery", configuration={"nested": {"file": "/etc/x"}})
    assert export([model], REGISTRY).warnings[-1] == (
        "model `m`: configuration.nested is a mapping with only `file`, which a manifest reads as a "
        "secret file reference; edit it by hand"
    )


def test_to_yaml_uses_blocks_for_multi_line_strings():
    assert to_yaml({"a": "one\ntwo\n"}) == "a: |\n  one\n  two\n"


# -- secrets of every kind, at any depth ------------------------------------------------------------

DATASETS = SchemaRegistry.load(bundled_schema_dir() / "datasets")


def read_back_dataset(text, env):
    docs, problems = manifests.parse(text, "exported/d.yaml")
    assert problems == []
    space, problems = validate_space(docs, REGISTRY)
    assert [p for p in problems if p.severity == "error"] == []
    resolved, problems = resolve(space.datasets, env=env)
    assert problems == []
    return dict(resolved[0].configuration)


def referenced(text):
    return re.findall(r"\$\{(\w+)\}", text)


WEAVIATE = {
    "http_url": "http://w:8080",
    "grpc_url": "http://w:50051",
    "api_key": "wv-key-1",
    "collection_name": "C",
    "headers": {"X-Custom": "h-1", "x_custom": "h-2", "Authorization": "Bearer h-3"},
    "filters": {
        "type": "group",
        "filters": [{"auth_token": "f-1"}, {"credentials": {"user": "u", "pin": "f-2"}}],
    },
}


def test_a_secret_map_is_a_map_of_references_that_reads_back_to_the_servers_values():
    result = export([remote("wv", "remote_weaviate", WEAVIATE)], DATASETS, kind="Dataset")
    (file,) = result.files
    for value in ("wv-key-1", "h-1", "h-2", "h-3", "f-1", "f-2", '"u"', ": u\n"):
        assert value not in file.text
    assert file.env == tuple(referenced(file.text)) and len(set(file.env)) == len(file.env) == 7
    assert "DATASET_WV_HEADERS_X_CUSTOM" in file.env and "DATASET_WV_HEADERS_X_CUSTOM_2" in file.env
    server = {
        "DATASET_WV_API_KEY": "wv-key-1",
        "DATASET_WV_HEADERS_X_CUSTOM": "h-1",
        "DATASET_WV_HEADERS_X_CUSTOM_2": "h-2",
        "DATASET_WV_HEADERS_AUTHORIZATION": "Bearer h-3",
        "DATASET_WV_FILTERS_FILTERS_0_AUTH_TOKEN": "f-1",
        "DATASET_WV_FILTERS_FILTERS_1_CREDENTIALS_USER": "u",
        "DATASET_WV_FILTERS_FILTERS_1_CREDENTIALS_PIN": "f-2",
    }
    assert read_back_dataset(file.text, server) == WEAVIATE


def test_a_list_under_a_secret_name_is_a_list_of_references_and_null_stays_null():
    filters = {"type": "condition", "api_keys": ["k-1", "k-2"], "token": None}  # tagged, as the server wants
    config = {**WEAVIATE, "headers": None, "filters": filters}
    (file,) = export([remote("wv", "remote_weaviate", config)], DATASETS, kind="Dataset").files
    assert "k-1" not in file.text and "k-2" not in file.text
    assert "headers: null" in file.text and "token: null" in file.text
    env = {
        "DATASET_WV_API_KEY": "wv-key-1",
        "DATASET_WV_FILTERS_API_KEYS_0": "k-1",
        "DATASET_WV_FILTERS_API_KEYS_1": "k-2",
    }
    assert read_back_dataset(file.text, env) == config


def test_no_variable_names_two_values_across_the_files_of_one_export():
    """`a` with header `API-KEY` and `a-headers` with `api_key` spell one name: the later gets `_2`."""
    theirs = {**WEAVIATE, "headers": None}
    result = export(
        [
            remote("a", "remote_weaviate", {**WEAVIATE, "headers": {"API-KEY": "h"}}),
            remote("a-headers", "remote_weaviate", theirs),
        ],
        DATASETS,
        kind="Dataset",
    )
    names = [v for f in result.files for v in f.env]
    assert len(names) == len(set(names)) and "DATASET_A_HEADERS_API_KEY_2" in names


def test_a_policys_secret_looking_fields_are_references_in_the_endpoint_file():
    endpoint = RemoteEndpoint(
        id="e1",
        slug="bot",
        name="Bot",
        model={"id": "m1", "name": "m"},
        policies=(
            {"id": "p1", "name": "pay", "policy_type": "stripe_per_request",
             "configuration": {"price": 1, "secret_key": "sk-1", "hooks": [{"webhook_secret": "wh-1"}],
                               "headers": {"X-Custom": "h-1"}}},
            {"id": "p2", "name": "per-user", "policy_type": "rate_limit",
             "configuration": {"limit": "10/m", "scope": "per_user", "applied_to": ["*"]}},
        ),
    )  # fmt: skip
    (file,), skipped = export_endpoints([endpoint])
    assert skipped == []
    for value in ("sk-1", "wh-1", "h-1"):
        assert value not in file.text
    assert file.env == (
        "ENDPOINT_BOT_PAY_SECRET_KEY",
        "ENDPOINT_BOT_PAY_HOOKS_0_WEBHOOK_SECRET",
        "ENDPOINT_BOT_PAY_HEADERS_X_CUSTOM",
    )
    assert file.text.startswith(f"# Exported by `syft-reconciler export`. Set {', '.join(file.env)} in")
    assert "price: 1" in file.text and "limit: 10/m" in file.text


def test_a_missing_optional_secret_map_is_named_as_a_map_of_references():
    config = {k: v for k, v in WEAVIATE.items() if k != "headers"}
    result = export([remote("wv", "remote_weaviate", config)], DATASETS, kind="Dataset")
    assert result.warnings == (
        "dataset `wv`: optional secret `headers` is not in the server's answer (never set, or redacted "
        "by the server): left out; add `headers: {NAME: ${DATASET_WV_HEADERS_NAME}}` if it has one",
    )
