"""Trust, but verify the server: a success that answers with another model, a list that names a
model twice, names that would fool a terminal or a markdown table."""

import json
import re

import pytest

from reconciler import redact
from reconciler.render import md_code

from .misbehaving import answer

GOOD = "kind: Model\nname: {name}\ndtype: ollama\nconfiguration:\n  model: llama3\n"


LIES = {
    "another-name": {"name": "other", "dtype": "ollama", "configuration": {"model": "llama3"}},
    "another-dtype": {"name": "ok", "dtype": "openai", "configuration": {"model": "llama3"}},
    "name-case": {"name": "OK", "dtype": "ollama", "configuration": {"model": "llama3"}},
    "name-space": {"name": "ok ", "dtype": "ollama", "configuration": {"model": "llama3"}},
    "empty-name": {"name": "", "dtype": "ollama"},
}


@pytest.mark.parametrize("status", [200, 201, 202])
@pytest.mark.parametrize("case", sorted(LIES))
def test_a_create_answered_with_another_model_is_not_created(case, status, cli, manifest_dir, space):
    space.script("POST", "/api/v1/models/", answer(status, LIES[case]))
    root = manifest_dir({"ok.yaml": GOOD.format(name="ok")})
    run = cli("apply", root, "--server", space.url, "-o", "json")
    assert run.code == 1, run.all
    [result] = json.loads(run.out)["results"]
    assert result["result"] == "failed"
    assert "not counted as done" in result["message"] and f"answered {status} with model" in result["message"]


def test_a_patch_answered_with_another_model_is_a_failure(cli, manifest_dir, space):
    space.models = [
        {
            "name": "ok",
            "dtype": "ollama",
            "configuration": {"model": "llama3"},
            "summary": "old",
            "tags": "managed-by:syft-reconciler",
        }
    ]
    space.script("PATCH", "/api/v1/models/ok", answer(200, {"name": "other", "dtype": "ollama"}))
    root = manifest_dir({"ok.yaml": GOOD.format(name="ok") + "summary: new\n"})
    run = cli("apply", root, "--server", space.url)
    assert run.code == 1 and "failed   model ok" in run.out and "not counted as done" in run.out, run.all


@pytest.mark.parametrize(
    "names",
    [["a", "a"], ["a", "b", "a"], ["x", "x", "x"], ["a", "a", "b", "b"], [f"m{i}" for i in range(10)] * 2],
)
@pytest.mark.parametrize("command", ["plan", "apply", "export"])
def test_duplicate_names_in_the_list_are_reported(names, command, cli, manifest_dir, space, tmp_path):
    space.models = [
        {"name": n, "dtype": "ollama", "configuration": {"model": "llama3"}, "tags": ""} for n in names
    ]
    root = manifest_dir({"a.yaml": GOOD.format(name="a")})
    args = ["-d", tmp_path / "out"] if command == "export" else [root]
    run = cli(command, *args, "--server", space.url)
    assert run.code == 6, run.all
    assert "more than once; refusing to plan against an inconsistent answer" in run.err
    assert "No changes" not in run.out
    assert [r[0] for r in space.requests if r[0] != "GET"] == []


BAD_CHARS = [
    "\x1b",
    "\x07",
    "\r",
    "\x7f",
    "\x85",
    "\x9b",
    "\x9d",
    "\u061c",
    "\u200e",
    "\u200f",
    "\u202a",
    "\u202b",
    "\u202c",
    "\u202d",
    "\u202e",
    "\u2066",
    "\u2067",
    "\u2068",
    "\u2069",
    "\u2028",
    "\u2029",
    "\x00",
    "\x0b",
    "\x0c",
]


@pytest.mark.parametrize("char", BAD_CHARS, ids=lambda c: f"U+{ord(c):04X}")
def test_names_with_control_or_bidi_characters_are_refused(char, cli, manifest_dir):
    escaped = json.dumps(f"a{char}b")  # a YAML double-quoted string takes JSON escapes
    root = manifest_dir({"m.yaml": GOOD.format(name=escaped) + f"tags: [{json.dumps('t' + char)}]\n"})
    run = cli("validate", root)
    assert run.code == 1, run.all
    assert (
        f"name: must not contain control, bidi or line-separator characters (U+{ord(char):04X} at position 2)"
        in run.err
    )
    assert "tags.0: a tag must not contain control" in run.err
    assert not redact.UNSAFE.search(run.err)


HOSTILE_NAMES = [
    "red\x1b[31mX\x1b[0m",
    "clear\x1b[2J",
    "csi\x9b2J",
    "osc\x1b]0;title\x07",
    "rtl\u202egnp.exe",
    "iso\u2066x\u2069",
    "pipe|name",
    "tick`name",
    "```",
    "a|b|c`d`",
    "new\nline",
    "cr\rreturn",
    "nel\x85x",
    "ls\u2028x",
    "tab\tx",
    "bell\x07",
    "del\x7f",
    "| --- |",
    "<script>",
    "*bold*",
]


@pytest.mark.parametrize(
    "char",
    ["\u200b", "\u200c", "\u2060", "\ufeff", "\u00ad", "\u180e", "\u2062", "\U000e0001"],
    ids=lambda c: f"U+{ord(c):04X}",
)
def test_names_with_invisible_characters_are_refused(char, cli, manifest_dir):
    root = manifest_dir({"m.yaml": GOOD.format(name=json.dumps(f"a{char}b", ensure_ascii=False))})
    run = cli("validate", root)
    assert run.code == 1, run.all
    assert f"name: must not contain invisible format characters (U+{ord(char):04X})" in run.err


def test_emoji_sequences_stay_valid_names(cli, manifest_dir):
    root = manifest_dir(
        {
            "m.yaml": GOOD.format(
                name=json.dumps("team-\U0001f468\u200d\U0001f469\u200d\U0001f467", ensure_ascii=False)
            )
        }
    )
    assert cli("validate", root).code == 0


@pytest.mark.parametrize("fmt", ["text", "json", "markdown"])
def test_server_names_are_escaped_in_every_format(fmt, cli, manifest_dir, space, tmp_path):
    space.models = [
        {
            "name": n,
            "dtype": "ollama",
            "configuration": {"model": n},
            "summary": n,
            "tags": n.replace(",", ""),
        }
        for n in HOSTILE_NAMES
    ]
    space.models.append(
        {
            "name": "ok",
            "dtype": "ollama",
            "configuration": {"model": "|`x\x1b"},
            "summary": "s",
            "tags": "managed-by:syft-reconciler",
        }
    )
    root = manifest_dir({"ok.yaml": GOOD.format(name="ok")})
    run = cli("plan", root, "--server", space.url, "-o", fmt)
    assert run.code == 0, run.all
    for raw in "\x1b\x9b\x07\r\x85\u202e\u2066\u2028\x7f":
        assert raw not in run.out + run.err
    if fmt == "json":
        names = {c["name"] for c in json.loads(run.out)["changes"]}
        assert names == {*HOSTILE_NAMES, "ok"}  # escaped on the wire, exact when parsed
    if fmt == "markdown":
        rows = [line for line in run.out.splitlines() if line.startswith("| ")]
        assert rows[0] == "| | kind | name | changes | source |"
        for row in rows:  # every row has exactly its 6 cell borders: no pipe escaped its code span
            assert len(re.findall(r"(?<!\\)\|", row)) == 6, row


@pytest.mark.parametrize(
    "text", ["a", "a|b", "`", "``", "a`b``c", " lead", "trail ", "|", "\n", "\x1b[2J", ""]
)
def test_md_code_spans_hold_any_text(text):
    span = md_code(text)
    fence = re.match(r"`+", span).group(0)
    assert span.endswith(fence) and fence not in span[len(fence) : -len(fence)]
    assert not re.search(r"(?<!\\)\|", span) and "\n" not in span and "\x1b" not in span


def test_export_and_apply_lines_escape_server_names(cli, space, tmp_path):
    space.models = [
        {"name": n, "dtype": "ollama", "configuration": {"model": "x"}, "tags": ""} for n in HOSTILE_NAMES
    ]
    run = cli("export", "--server", space.url, "-d", tmp_path / "out")
    assert run.code == 0, run.all
    for raw in "\x1b\x9b\x07\r\x85\u202e\u2066\u2028\x7f":
        assert raw not in run.out + run.err
        for path in (tmp_path / "out").glob("*.yaml"):
            assert raw not in path.read_text()
