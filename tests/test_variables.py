import pytest

from reconciler.variables import substitute

VARS = {"ENV": "staging", "CTX": 8192, "ON": True}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("gpt-${var:ENV}", "gpt-staging"),
        ("${var:CTX}", 8192),
        ("ctx=${var:CTX}", "ctx=8192"),
        ("${var:ON}", True),
        ("$${var:ENV}", "$${var:ENV}"),  # left for the reference pass to unescape
        ({"a": ["${var:ENV}", 1]}, {"a": ["staging", 1]}),
        ("${OPENAI_API_KEY}", "${OPENAI_API_KEY}"),  # secrets are not variables
    ],
)
def test_substitute(value, expected):
    assert substitute(value, VARS) == (expected, [])


def test_unknown_and_malformed():
    _, problems = substitute({"name": "x-${var:NOPE}", "b": "${var:1x}"}, VARS)
    assert problems == [
        (("name",), "unknown variable `NOPE` (defined: CTX, ENV, ON)"),
        (("b",), "`${var:1x}` is not a valid variable name"),
    ]
    assert substitute("${var:X}", {})[1] == [
        ((), "unknown variable `X` (defined: none: pass --var-file FILE)")
    ]
