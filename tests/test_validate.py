import pytest

from reconciler.manifests import parse
from reconciler.model import normalise_tags
from reconciler.references import resolve_manifests as resolve
from reconciler.schemas import SchemaRegistry
from reconciler.validate import check_name, validate

REGISTRY = SchemaRegistry.load()
GOOD = """kind: Model
name: gpt
dtype: openai
configuration:
  api_key: ${KEY}
  model: gpt-4o
summary: s
tags: [a, " b ", a]
"""


def run(text: str, path: str = "m.yaml"):
    docs, problems = parse(text, path)
    manifests, more = validate(docs, REGISTRY)
    return manifests, [str(p) for p in problems + more]


def test_good_manifest():
    manifests, problems = run(GOOD)
    assert problems == []
    (m,) = manifests
    assert (m.name, m.dtype, m.summary, m.tags) == ("gpt", "openai", "s", ("a", "b"))
    assert m.sensitive == frozenset({"api_key"}) and not m.resolved


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (
            ("configuration:", "configuraton:"),
            "m.yaml:4:1: configuraton: unknown field; did you mean `configuration`? "
            "(a manifest has: kind, name, dtype, configuration, summary, tags, lifecycle)",
        ),
        (
            ("dtype: openai", "dtype: opena1"),
            "m.yaml:3:8: dtype: unknown dtype `opena1`; did you mean `openai`? "
            "(known: anthropic, ollama, openai, vllm)",
        ),
        (
            ("  model: gpt-4o", "  modle: gpt-4o"),
            "m.yaml:6:3: configuration.modle: unknown setting; did you mean `model`? "
            "(known: api_key, base_url, model, system_prompt)",
        ),
        (("name: gpt", "name: 12"), "m.yaml:2:7: name: must be a string, got an integer"),
        (
            ("name: gpt", "name: a/b"),
            "m.yaml:2:7: name: must not contain `/` (the server could never read, patch or delete it)",
        ),
        (
            ("name: gpt", 'name: ""'),
            "m.yaml:2:7: name: must not be empty (the server could never read, patch or delete it)",
        ),
        (
            ("kind: Model", "kind: Service"),
            "m.yaml:1:7: kind: must be `Model`, `Dataset` or `Endpoint`, got 'Service'",
        ),
        (
            ('tags: [a, " b ", a]', "tags: [a, 'x,y']"),
            "m.yaml:8:11: tags.1: a tag must not contain `,` (the API joins tags with commas)",
        ),
        (("summary: s", "summary:"), "m.yaml:7:9: summary: must be a string, got null"),
    ],
)
def test_one_problem_each(edit, expected):
    _, problems = run(GOOD.replace(*edit))
    assert problems == [expected]


def test_literal_secret_is_a_warning_and_never_quoted():
    manifests, problems = run(GOOD.replace("${KEY}", "sk-canary-literal"))
    assert len(manifests) == 1
    assert problems == [
        "m.yaml:5:12: warning: configuration.api_key: a literal secret is committed to git; "
        "use ${ENV_VAR} or {file: /run/secrets/NAME}"
    ]


def test_wrong_type_in_secret_does_not_echo_it():
    _, problems = run(GOOD.replace("${KEY}", "123456789"))
    assert problems == ["m.yaml:5:12: configuration.api_key: must be a string, got an integer"]


def test_reference_in_integer_field_explains_strings():
    text = "kind: Model\nname: o\ndtype: ollama\nconfiguration:\n  model: m\n  num_ctx: ${CTX}\n"
    _, problems = run(text)
    assert problems == [
        "m.yaml:6:12: configuration.num_ctx: must be an integer, got a string "
        "(a ${…} or file reference always gives a string)"
    ]


def test_all_problems_in_one_run_and_duplicate_names():
    text = GOOD + "---\n" + GOOD + "---\n" + GOOD.replace("dtype: openai", "dtype: nope").replace("gpt", "x")
    _, problems = run(text)
    assert problems[0].startswith("m.yaml:11:7: name: `gpt` is also defined at m.yaml:1:1")
    assert problems[1].startswith("m.yaml:21:8: dtype: unknown dtype `nope`")


def test_document_must_be_a_mapping():
    _, problems = run("- a\n- b\n")
    assert problems == [
        "m.yaml:1:1: a manifest must be a mapping (kind, name, dtype, configuration…), got a list"
    ]


@pytest.mark.parametrize(
    ("name", "expected"),
    [("ok", None), (" pad", "warning"), ("..", "error"), ("a\nb", "error"), ("ünï cødé ?%", None)],
)
def test_check_name(name, expected):
    result = check_name(name)
    assert (result[1] if result else None) == expected


def test_resolve_replaces_references_and_names_the_manifest():
    manifests, _ = run(GOOD)
    resolved, problems = resolve(manifests, env={"KEY": "sk-x"})
    assert resolved[0].configuration["api_key"] == "sk-x" and problems == []
    _, problems = resolve(manifests, env={})
    assert [str(p) for p in problems] == [
        "m.yaml:5:12: configuration.api_key: environment variable KEY is not set; "
        "export it before plan/apply (model `gpt`)"
    ]


def test_tags_normalised():
    assert normalise_tags("a, b,,a ,c") == ("a", "b", "c")
    assert normalise_tags(["x", " y "]) == ("x", "y")
