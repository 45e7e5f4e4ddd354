"""Property tests: arbitrary YAML values and arbitrary server answers through validate, plan and
every render format. Whatever comes in: never exit 3, never a canary, never a raw terminal escape."""

import json

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler import redact

ENV = "sk-canary-prop-env-3f2e1d"
FILE = "sk-canary-prop-file-9a8b7c"
TOKEN = "tok-canary-prop-5d4c3b"
SERVER = "srv-canary-prop-1a2b3c"
CANARIES = (ENV, FILE, TOKEN, SERVER)
SETTINGS = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

_chars = st.characters(codec="utf-8", exclude_categories=("Cs",)) | st.sampled_from(
    ["\x1b", "\x9b", "\u202e", "\u2028", "\x85", "\r", "\n", "|", "`", ",", "$", "{", "}", ":", "#"]
)
_text = st.text(_chars, max_size=12)
_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats()
    | _text
    | st.sampled_from(["${OPENAI_API_KEY}", "${NOPE}", "$${x}", "${", "${var:X}", "{file: ../key}"])
)
_values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_text, inner, max_size=3),
    max_leaves=10,
)


@st.composite
def manifest_documents(draw):
    """A manifest where any field may hold any YAML value (or be missing, or be a reference)."""
    doc = {
        "kind": draw(st.sampled_from(["Model", "model", None]) | _values),
        "name": draw(st.sampled_from(["m0", "m1", "a b", ""]) | _text | _values),
        "dtype": draw(st.sampled_from(["openai", "ollama", "vllm", "nope"]) | _values),
        "configuration": draw(
            st.fixed_dictionaries(
                {"model": st.sampled_from(["gpt-4o", "llama3"]) | _values},
                optional={
                    "api_key": st.sampled_from(["${OPENAI_API_KEY}", "{file: ../key}"]) | _values,
                    "base_url": _values,
                    "temperature": _values,
                    "headers": _values,
                },
            )
            | _values
        ),
        "summary": draw(_text | _values),
        "tags": draw(st.lists(_text, max_size=4) | _text | _values),
    }
    keep = draw(st.sets(st.sampled_from(sorted(doc)), min_size=2))
    return {k: v for k, v in doc.items() if k in keep}


def _yaml(doc):
    text = yaml.safe_dump(doc, allow_unicode=True, sort_keys=False)
    return text.replace("'{file: ../key}'", "{file: ../key}")  # a real file reference, not its text


def _assert_clean(run, *, fmt="text"):
    assert run.code != 3, run.all
    for canary in CANARIES:
        assert canary not in run.all, f"{canary} leaked:\n{run.all}"
    assert "Traceback" not in run.all
    assert not redact.UNSAFE.search(run.all), run.all  # piped: no escape at all, not even ours
    if fmt == "json" and run.out:
        json.loads(run.out)


@pytest.fixture
def canaries(monkeypatch, manifest_dir, tmp_path):
    monkeypatch.setenv("OPENAI_API_KEY", ENV)
    (tmp_path / "key").write_text(FILE)
    return manifest_dir({})


@given(
    docs=st.lists(manifest_documents(), min_size=1, max_size=3),
    fmt=st.sampled_from(["text", "json", "markdown"]),
)
@SETTINGS
def test_arbitrary_manifests_never_crash_or_leak(docs, fmt, cli, canaries, space):
    root = canaries
    for old in root.glob("*.yaml"):
        old.unlink()
    (root / "all.yaml").write_text("---\n".join(_yaml(d) for d in docs), encoding="utf-8")
    _assert_clean(cli("validate", root, "-o", "json" if fmt == "json" else "text"), fmt=fmt)
    _assert_clean(cli("plan", root, "--server", space.url, "--token", TOKEN, "-o", fmt), fmt=fmt)


@given(text=st.text(_chars, max_size=200))
@SETTINGS
def test_arbitrary_yaml_text_never_crashes(text, cli, canaries):
    (canaries / "raw.yaml").write_text(text, encoding="utf-8")
    _assert_clean(cli("validate", canaries))


_TAGS = [
    "!!int",
    "!!float",
    "!!bool",
    "!!null",
    "!!str",
    "!!seq",
    "!!map",
    "!!binary",
    "!!timestamp",
    "!!set",
    "!!omap",
    "!!python/none",
    "!local",
    "",
]
_snippets = st.one_of(
    st.builds(lambda tag, body: f"{tag} {json.dumps(body)}", st.sampled_from(_TAGS), _text),
    st.builds(
        lambda tag, body: f"{tag} {body}",
        st.sampled_from(_TAGS),
        st.sampled_from([".nan", ".inf", "-.Inf", "0x", "1e999", "9" * 5000, "[]", "{}", "~", "yes", "0o9"]),
    ),
    st.builds(
        lambda n, open_, close: open_ * n + close * n, st.integers(1, 3000), st.just("["), st.just("]")
    ),
    st.builds(lambda n: "{a: " * n + "1" + "}" * n, st.integers(1, 300)),
)


@given(
    field=st.sampled_from(["name", "dtype", "model", "extra", "summary", "tags", "kind"]), snippet=_snippets
)
@SETTINGS
def test_explicit_tags_special_floats_and_deep_nesting_anywhere(field, snippet, cli, canaries, space):
    lines = {"kind": "Model", "name": "m0", "dtype": "ollama", "summary": "s", "tags": "[a]"}
    lines[field] = snippet
    text = "".join(f"{k}: {v}\n" for k, v in lines.items() if k not in ("model", "extra"))
    text += "configuration:\n" + (f"  model: {snippet}\n" if field == "model" else "  model: llama3\n")
    text += f"  extra: {snippet}\n" if field == "extra" else ""
    (canaries / "m.yaml").write_text(text, encoding="utf-8")
    for command in ("validate", "apply"):
        run = cli(command, canaries, "--server", space.url, "--token", TOKEN)
        _assert_clean(run)
        assert run.code in (0, 1), run.all


SECRET_KEYS = [
    "api_key",
    "password",
    "secret_key",
    "api-key",
    "apiKey",
    "token",
    "client_secret",
    "Authorization",
]


@st.composite
def server_models(draw):
    """A list answer: mostly model-shaped items with hostile strings, secrets under secret keys."""

    def config():
        plain = draw(
            st.dictionaries(_text.filter(lambda k: not redact.looks_secret_key(k)), _values, max_size=3)
        )
        secret = {k: SERVER for k in draw(st.sets(st.sampled_from(SECRET_KEYS), max_size=3))}
        nested = draw(
            st.sampled_from(
                [{}, {"headers": {"Authorization": f"Bearer {SERVER}"}}, {"extra": [{"password": SERVER}]}]
            )
        )
        return {**plain, **secret, **nested}

    items = []
    for _ in range(draw(st.integers(0, 5))):
        item = {
            "name": draw(st.sampled_from(["m0", "m1"]) | _text),
            "dtype": draw(st.sampled_from(["openai", "ollama", "custom"]) | _text),
            "configuration": config(),
            "summary": draw(_text),
            "tags": draw(st.sampled_from(["", "managed-by:syft-reconciler", "a,b"]) | _text),
        }
        items.append(
            draw(st.just(item) | st.sampled_from([None, 1, "x", []]) | st.just({"name": item["name"]}))
        )
    unique = {}
    for item in items:  # duplicates have their own test; here each name once
        key = item.get("name") if isinstance(item, dict) else repr(item)
        unique.setdefault(key, item)
    return list(unique.values())


@given(models=server_models(), fmt=st.sampled_from(["text", "json", "markdown"]), adopt=st.booleans())
@SETTINGS
def test_arbitrary_server_answers_never_crash_or_leak(models, fmt, adopt, cli, canaries, space, tmp_path):
    root = canaries
    (root / "m0.yaml").write_text(
        "kind: Model\nname: m0\ndtype: openai\nconfiguration:\n"
        "  api_key: ${OPENAI_API_KEY}\n  model: gpt-4o\n"
    )
    (root / "m1.yaml").write_text("kind: Model\nname: m1\ndtype: ollama\nconfiguration:\n  model: llama3\n")
    space.models = models
    space.types = [{"name": t, "config_schema": {}} for t in ("openai", "ollama", "custom")]
    saved = tmp_path / "plan.json"
    run = cli(
        "plan",
        root,
        "--server",
        space.url,
        "--token",
        TOKEN,
        "-o",
        fmt,
        "--out",
        saved,
        *(["--adopt"] if adopt else []),
    )
    _assert_clean(run, fmt=fmt)
    if saved.exists():
        text = saved.read_text()
        assert not any(c in text for c in CANARIES) and not redact.UNSAFE.search(text)
    export = cli(
        "export",
        "--server",
        space.url,
        "--token",
        TOKEN,
        "-d",
        tmp_path / "out",
        "--force",
        "-o",
        "json" if fmt == "json" else "text",
    )
    _assert_clean(export, fmt=fmt)
    for path in (tmp_path / "out").glob("*.yaml") if (tmp_path / "out").exists() else ():
        text = path.read_text()
        assert not any(c in text for c in CANARIES), text


_schema_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-3, 3)
    | st.sampled_from(
        [
            "object",
            "string",
            "integer",
            "[",
            "(a",
            "^x$",
            "#",
            "#/properties",
            "https://example.invalid/s.json",
            "regex",
            "date-time",
            "$ref",
        ]
    ),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.sampled_from(
                [
                    "type",
                    "properties",
                    "required",
                    "pattern",
                    "$ref",
                    "enum",
                    "items",
                    "format",
                    "minimum",
                    "allOf",
                    "additionalProperties",
                    "model",
                    "api_key",
                    "not",
                    "$defs",
                    "patternProperties",
                    "const",
                ]
            ),
            inner,
            max_size=4,
        )
    ),
    max_leaves=12,
)


@given(
    types=st.lists(
        st.fixed_dictionaries(
            {"name": st.sampled_from(["ollama", "openai", "x/y", ""]) | _text},
            optional={"config_schema": _schema_values, "enabled": _schema_values},
        ),
        max_size=4,
    )
    | _schema_values
)
@SETTINGS
def test_arbitrary_type_lists_never_crash(types, cli, canaries, space, tmp_path):
    (canaries / "m1.yaml").write_text(
        "kind: Model\nname: m1\ndtype: ollama\nconfiguration:\n  model: llama3\n"
    )
    space.types = types
    for args in (
        ["validate", canaries, "--online"],
        ["plan", canaries],
        ["schema", "pull", "--schemas-dir", tmp_path / "s", "--dry-run"],
    ):
        run = cli(*args, "--server", space.url, "--token", TOKEN)
        _assert_clean(run)
