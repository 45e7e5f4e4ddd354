"""Hypothesis strategies for the class "a field named like a secret", shared by the unit tests of the
key rule (test_redact.py) and the end-to-end secret tests of datasets and policies.

A secret-looking name is any prefix of ordinary words followed by a secret word (`api key`,
`password`, `client secret`, `headers`…), spelled the ways configurations spell names: snake,
kebab, UPPER, camelCase and PascalCase (acronyms kept: `OpenAIApiKey`, `myAPIKey`), an HTTP header
(`X-Api-Key`), dotted, with an optional number (`api_key_2`). Canary values all start with
`CNRY`, so that a test can grep any output for that one marker, a clipped value included.
"""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import strategies as st

MARK = "CNRY"

SECRET_WORDS: tuple[tuple[str, ...], ...] = (
    ("api", "key"),
    ("apikey",),
    ("api", "keys"),
    ("password",),
    ("passwd",),
    ("pwd",),
    ("passphrase",),
    ("secret",),
    ("secrets",),
    ("secret", "key"),
    ("client", "secret"),
    ("webhook", "secret"),
    ("signing", "secret"),
    ("token",),
    ("access", "token"),
    ("refresh", "token"),
    ("auth", "token"),
    ("bearer", "token"),
    ("access", "key"),
    ("secret", "access", "key"),
    ("private", "key"),
    ("authorization",),
    ("proxy", "authorization"),
    ("credentials",),
    ("credential",),
    ("cookie",),
    ("cookies",),
    ("headers",),
    ("application", "password"),
)
PREFIX_WORDS = (
    "x", "my", "db", "stripe", "openai", "cohere", "webhook", "service", "admin", "primary", "backup",
    "hf", "site", "upstream", "aws", "oauth", "wp", "smtp",
)  # fmt: skip
ACRONYMS = frozenset({"hf", "aws", "wp", "smtp", "api"})


def _cap(word: str, *, acronym: bool) -> str:
    return word.upper() if acronym and word in ACRONYMS else word.capitalize()


def spell(words: list[str], style: str, *, acronyms: bool, number: str) -> str:
    """`words` in one naming style."""
    if style == "snake":
        name = "_".join(words)
    elif style == "kebab":
        name = "-".join(words)
    elif style == "upper":
        name = "_".join(w.upper() for w in words)
    elif style == "dotted":
        name = ".".join(words)
    elif style == "header":
        name = "-".join(_cap(w, acronym=acronyms) for w in words)
    else:  # camel, pascal: two capitals runs side by side (`HFAPIKey`, `XAPIKey`) cannot be told apart
        caps: list[str] = []
        for i, w in enumerate(words):
            after_capitals = i > 0 and caps[-1].isupper()
            caps.append(_cap(w, acronym=acronyms and not after_capitals))
        name = (words[0] if style == "camel" else caps[0]) + "".join(caps[1:])
    return name + number


STYLES = ("snake", "kebab", "upper", "dotted", "header", "camel", "pascal")


@st.composite
def secret_keys(draw: st.DrawFn) -> str:
    """A field name that must be treated as a secret."""
    prefix = draw(st.lists(st.sampled_from(PREFIX_WORDS), max_size=2))
    words = [*prefix, *draw(st.sampled_from(SECRET_WORDS))]
    style = draw(st.sampled_from(STYLES))
    number = draw(st.sampled_from(["", "", "", "2", "_2", "10"]))
    if style in ("kebab", "dotted", "header") and number.startswith("_"):
        number = number[1:]
    return spell(words, style, acronyms=draw(st.booleans()), number=number)


# Names that are not secrets, whatever they hold (the key rule must leave them readable).
PLAIN_KEYS = (
    "type", "property", "operator", "value", "filters", "extra", "config", "options", "conditions",
    "name", "model", "max_tokens", "tokenizer", "keywords", "secretary", "key_id", "passwords_allowed",
    "secret_name", "header_count", "collectionName", "http_url", "user",
)  # fmt: skip
HEADER_NAMES = ("X-Custom", "X-Trace-Id", "Accept", "User-Agent", "X-Tenant", "x_custom", "Forwarded")


def canaries() -> st.SearchStrategy[str]:
    return st.text("0123456789abcdef", min_size=8, max_size=12).map(lambda s: f"{MARK}{s}")


def plain_keys() -> st.SearchStrategy[str]:
    return st.sampled_from(PLAIN_KEYS)


def header_maps() -> st.SearchStrategy[dict[str, str]]:
    """What a `headers` field holds: any header names, each value a secret."""
    names = st.sampled_from(HEADER_NAMES) | secret_keys()
    return st.dictionaries(names, canaries(), min_size=1, max_size=3)


def secret_values() -> st.SearchStrategy[object]:
    """What sits under a secret-looking key: a string, a list of them, or a mapping of any names."""
    return (
        canaries()
        | st.lists(canaries(), min_size=1, max_size=2)
        | st.dictionaries(st.sampled_from(PLAIN_KEYS) | secret_keys(), canaries(), min_size=1, max_size=2)
    )


def secret_trees(max_leaves: int = 6) -> st.SearchStrategy[dict[str, object]]:
    """A free-form mapping (a Weaviate `filters`, a policy's configuration) whose secrets sit at
    any depth: under secret-looking keys, in a `headers` map, in a list of mappings. Every canary
    is under a secret-looking key; the plain values are not canaries."""
    secret_entry = st.dictionaries(secret_keys(), secret_values(), min_size=1, max_size=2)
    headers = header_maps().map(lambda h: {"headers": h})
    base = secret_entry | headers
    return st.recursive(
        base,
        lambda inner: st.builds(
            lambda key, child, plain: {**plain, key: child},
            plain_keys(),
            inner | st.lists(inner, min_size=1, max_size=2),
            st.dictionaries(plain_keys(), st.sampled_from(["v", "eq", "title", 1, True]), max_size=2),
        ),
        max_leaves=max_leaves,
    )


def bundled_properties() -> dict[str, dict[str, bool]]:
    """`kind/dtype` → field → writeOnly, for every bundled schema (models, datasets, policies)."""
    root = Path(__file__).resolve().parents[1] / "schemas"
    out = {}
    for path in sorted([*root.glob("*.json"), *root.glob("datasets/*.json"), *root.glob("policies/*.json")]):
        schema = json.loads(path.read_text(encoding="utf-8"))
        out[f"{path.parent.name}/{path.stem}"] = {
            k: bool(v.get("writeOnly")) for k, v in schema.get("properties", {}).items()
        }
    return out
