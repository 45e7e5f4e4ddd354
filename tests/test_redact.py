"""The scrubber and the terminal/markdown escaping (reconciler/redact.py), and the layering rule."""

import io
import json
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler import redact
from reconciler.schemas import bundled_schema_dir
from tests.secret_keys import MARK, PLAIN_KEYS, bundled_properties, secret_keys, secret_values


@pytest.mark.parametrize(
    ("key", "secret"),
    [
        ("api_key", True),
        ("API_KEY", True),
        ("apiKey", True),
        ("api-key", True),
        ("apikey", True),
        ("x-api-key", True),
        ("password", True),
        ("db_password", True),
        ("passwd", True),
        ("secret", True),
        ("client_secret", True),
        ("secret_key", True),
        ("secretKey", True),
        ("access_key", True),
        ("private_key", True),
        ("token", True),
        ("access_token", True),
        ("authToken", True),
        ("Authorization", True),
        ("proxy-authorization", True),
        ("credentials", True),
        ("Cookie", True),
        ("max_tokens", False),
        ("tokenizer", False),
        ("model", False),
        ("base_url", False),
        ("keywords", False),
        ("secretary", False),
        ("passwords_allowed", False),
        ("temperature", False),
        ("key_id", False),
        (3, False),
    ],
)
def test_secret_looking_keys(key, secret):
    assert redact.looks_secret_key(key) is secret


def test_redact_keys_at_any_depth():
    value = {
        "a": 1,
        "auth": {"Authorization": "Bearer x", "Accept": "json"},
        "headers": {"X-Custom": "c", "Accept": "json"},  # every header may carry a credential
        "list": [{"password": "p"}],
        "token": None,
    }
    assert redact.redact_keys(value) == {
        "a": 1,
        "auth": {"Authorization": "(sensitive)", "Accept": "json"},
        "headers": "(sensitive)",
        "list": [{"password": "(sensitive)"}],
        "token": None,
    }


@given(secret_keys())
@settings(max_examples=500, deadline=None)
def test_every_spelling_of_a_secret_name_looks_secret(key):
    """The class, not a list: any prefix, secret word, naming style, acronym and number."""
    assert redact.looks_secret_key(key), key


@given(st.sampled_from(PLAIN_KEYS))
def test_plain_names_stay_readable(key):
    assert not redact.looks_secret_key(key)


@pytest.mark.parametrize(("where", "fields"), sorted(bundled_properties().items()))
def test_the_key_rule_agrees_with_every_bundled_schema(where, fields):
    """A field a bundled schema marks writeOnly looks secret by its name alone (what a server
    sends is judged by its keys), and no other field of any kind's schema does."""
    assert {k for k in fields if redact.looks_secret_key(k)} == {k for k, w in fields.items() if w}


@given(st.dictionaries(secret_keys(), secret_values(), min_size=1), st.lists(st.sampled_from(PLAIN_KEYS)))
@settings(max_examples=200, deadline=None)
def test_redact_keys_leaves_no_value_under_a_secret_name_at_any_depth(secrets, path):
    value: object = secrets
    for key in path:
        value = {key: [value]}
    assert MARK not in json.dumps(redact.redact_keys(value))


_no_mask = st.characters(exclude_characters="(redacted)")  # else a mask next to text can spell it again


@given(st.text(_no_mask, min_size=redact.MIN_SECRET, max_size=20), st.text(max_size=20), st.text(max_size=20))
@settings(max_examples=300, deadline=None)
def test_a_registered_secret_never_survives_in_any_form(secret, before, after):
    scrubber = redact.Scrubber()
    scrubber.register(secret)
    for form in (
        secret,
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
        repr(secret)[1:-1],
    ):
        assert secret not in scrubber.scrub(before + form + after)


@pytest.mark.parametrize(
    "text",
    [
        "https://user:pw@host/x",
        "http://u@h",
        "HTTPS://a:b@c",
        "see ftp://anon:x@ftp.example.org:21/",
        '"url": "https://k:v@h"',
        "git+ssh://git:tok@github.com/x",
    ],
)
def test_url_userinfo_is_cut(text):
    out = redact.Scrubber().scrub(text)
    assert "@" in out and "***@" in out
    assert not any(part in out for part in ("user:pw", "a:b", "anon:x", "k:v", "git:tok"))


@pytest.mark.parametrize(
    "text", ["Authorization: Bearer abc.def-ghi", "bearer   0123456789", "Basic dXNlcjpwdw=="]
)
def test_bearer_and_basic_credentials_are_cut(text):
    assert redact.Scrubber().scrub(text).endswith(redact.MASK)


@given(st.text())
@settings(max_examples=300, deadline=None)
def test_neutralised_text_is_terminal_safe_and_json_safe_text_is_the_same_json(text):
    assert not redact.UNSAFE.search(redact.neutralise(text))
    assert "\n" not in redact.neutralise(text, line=True)
    encoded = redact.json_safe(json.dumps({"v": text}, ensure_ascii=False))
    assert not redact.UNSAFE.search(encoded) and json.loads(encoded) == {"v": text}


def test_the_stream_scrubs_and_neutralises_every_write_but_the_terminal_layers_styling():
    inner = io.StringIO()
    scrubber = redact.Scrubber()
    scrubber.register("hunter2-secret")
    stream = redact.ScrubbingStream(inner, scrubber)
    stream.write("key hunter2-secret \x1b[31mred\u202e\n")
    stream.write("\r\x1b[K[3/10]")  # a plain write: no escape passes, not even ours
    assert inner.getvalue() == "key (redacted) \\x1b[31mred\\u202e\n\\x0d\\x1b[K[3/10]"
    inner.seek(0)
    inner.truncate()
    # styled: colour, clear-line, cursor and \r pass; OSC (title, hyperlink), bidi, BEL and the
    # secret do not
    stream.write_styled("\r\x1b[2K\x1b[1A\x1b[?25l\x1b[32;1m+ hunter2-secret\x1b[0m\u202e")
    stream.write_styled("\x1b]0;title\x07\x1b]8;;http://x\x1b\\")
    assert inner.getvalue() == (
        "\r\x1b[2K\x1b[1A\x1b[?25l\x1b[32;1m+ (redacted)\x1b[0m\\u202e"
        "\\x1b]0;title\\x07\\x1b]8;;http://x\\x1b\\"
    )
    with pytest.raises(TypeError):
        stream.write(b"bytes")  # type: ignore[arg-type]


def test_an_ascii_terminal_gets_escapes_not_a_crash():
    raw = io.BytesIO()
    inner = io.TextIOWrapper(raw, encoding="ascii", errors="strict")
    stream = redact.ScrubbingStream(inner, redact.Scrubber())
    stream.write("café \udcff\n")
    stream.flush()
    assert raw.getvalue() == b"caf\\xe9 \\udcff\n"


CORE = (
    "errors",
    "model",
    "manifests",
    "schemas",
    "validate",
    "plan",
    "render",
    "redact",
    "references",
    "saved_plan",
    "variables",
    "export",
)


def test_core_modules_import_no_shell_library():
    code = (
        "import sys\n"
        + "".join(f"import reconciler.{m}\n" for m in CORE)
        + "print(sorted(m for m in ('httpx', 'httpcore', 'click', 'watchfiles') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@given(st.dictionaries(secret_keys(), secret_values(), min_size=1), st.lists(st.sampled_from(PLAIN_KEYS)))
@settings(max_examples=300, deadline=None)
def test_text_quoting_a_mapping_keeps_no_value_under_a_secret_name(secrets, path):
    """A validation message or a server's error body that quotes a configuration is cut by shape:
    nothing the scrubber holds is needed. A Python repr (jsonschema's and pydantic's messages) loses
    every value under a secret name; JSON text its string values (a JSON document such as a schema
    holds mappings under such names that are no secret: `"api_key": {"type": "string"}`)."""
    value: object = secrets
    for key in path:
        value = {key: [value]}
    strings = {k: v for k, v in secrets.items() if isinstance(v, str)}
    for text in (f"{value!r} is not of type 'string'", json.dumps(strings), json.dumps(json.dumps(strings))):
        assert MARK not in redact.Scrubber().scrub(text), text


@pytest.mark.parametrize("path", sorted(bundled_schema_dir().rglob("*.json")), ids=lambda p: p.stem)
def test_json_documents_and_plain_pairs_pass_the_shape_rules_unchanged(path):
    text = path.read_text(encoding="utf-8")  # `"api_key": {"type": "string", …}` is no secret
    assert redact.Scrubber().scrub(text) == text
    plain = {"model": "gpt-4o", "max_tokens": "5", "token": "(sensitive)", "api_key": "(redacted)"}
    assert redact.Scrubber().scrub(repr(plain) + json.dumps(plain)) == repr(plain) + json.dumps(plain)


@pytest.mark.parametrize(
    "text",
    [
        "WordPress user_login or display name (used for Basic Auth)",
        "send a Bearer token",
        "basic authentication",
    ],
)
def test_prose_naming_the_schemes_is_left_alone(text):
    assert redact.Scrubber().scrub(text) == text
