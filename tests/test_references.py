from pathlib import Path

import pytest

from reconciler.references import EnvRef, FileRef, has_ref, placeholder, resolve, scan


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("plain", "plain"),
        ("${A}", EnvRef(((True, "A"),))),
        ("x ${A} y", EnvRef(((False, "x "), (True, "A"), (False, " y")))),
        ("$${A}", "${A}"),
        ("cost $5", "cost $5"),
    ],
)
def test_scan_strings(text, expected):
    assert scan(text) == (expected, [])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("${", "unclosed `${`: write ${NAME}, or $${ for a literal ${"),
        ("${a-b}", "`${a-b}` is not a valid variable name (letters, digits, _)"),
    ],
)
def test_scan_bad_references(text, message):
    assert scan(text, ("k",))[1] == [(("k",), message)]


def test_file_reference_and_nesting():
    value, problems = scan({"a": {"file": "/s"}, "b": ["${Z}", 1]})
    assert value == {"a": FileRef("/s"), "b": [EnvRef(((True, "Z"),)), 1]}
    assert problems == [] and has_ref(value)
    assert placeholder(value) == {"a": "", "b": ["", 1]}


def test_resolve_env_and_files(tmp_path: Path):
    (tmp_path / "key").write_text("s3cret\n")
    value, _ = scan({"k": "Bearer ${T}", "f": {"file": "key"}, "e": "$${T}"})
    out, problems = resolve(value, env={"T": "tok"}, base_dir=tmp_path)
    assert out == {"k": "Bearer tok", "f": "s3cret", "e": "${T}"}
    assert problems == []


def test_resolve_reports_missing_without_values(tmp_path: Path):
    value, _ = scan({"k": "${NOPE}", "f": {"file": "gone"}})
    _, problems = resolve(value, env={}, base_dir=tmp_path)
    assert problems[0] == (("k",), "environment variable NOPE is not set; export it before plan/apply")
    assert problems[1][0] == ("f",) and "cannot read secret file" in problems[1][1]
