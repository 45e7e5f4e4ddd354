"""Hostile and broken input: one clear message naming file, line and field; no traceback; no write.

Each case is applied against the sandbox, so "no write" is checked on the server, not assumed.
"""

import os

import pytest

GOOD = "kind: Model\nname: ok\ndtype: ollama\nconfiguration:\n  model: llama3\n"


def bomb() -> str:
    lines = ["a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for i in range(1, 10):
        lines.append(f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]")
    return "\n".join(lines) + "\n"


# name → (files, first stderr line expected (after the folder prefix), severity)
CASES = {
    "malformed": (
        {"m.yaml": "kind: Model\nname: [unclosed\n"},
        "m.yaml:3:1: YAML syntax error: did not find expected ',' or ']'",
    ),
    "tabs": (
        {"m.yaml": "kind: Model\nconfiguration:\n\tmodel: x\n"},
        "m.yaml:3:1: YAML syntax error: found character that cannot start any token; indent with spaces, not tabs",
    ),
    "duplicate-keys": (
        {"m.yaml": GOOD + "name: again\n"},
        "m.yaml:6:1: name: duplicate key (first at line 2); YAML would keep only the last",
    ),
    "billion-laughs": (
        {"m.yaml": bomb()},
        "m.yaml:1:1: document expands to more than 10000 values (YAML aliases used as a bomb?)",
    ),
    "python-tag": (
        {"m.yaml": "kind: !!python/object/apply:os.system ['echo pwned']\n"},
        "m.yaml:1:7: kind: unsupported YAML tag 'tag:yaml.org,2002:python/object/apply:os.system'",
    ),
    "not-utf8": (
        {"m.yaml": b"kind: Model\nname: caf\xe9\n"},
        "m.yaml:2:10: not UTF-8 (byte 0xe9); save the file as UTF-8",
    ),
    "list-document": (
        {"m.yaml": "- kind: Model\n- name: x\n"},
        "m.yaml:1:1: a manifest must be a mapping (kind, name, dtype, configuration…), got a list",
    ),
    "scalar-document": (
        {"m.yaml": "just a string\n"},
        "m.yaml:1:1: a manifest must be a mapping (kind, name, dtype, configuration…), got the scalar 'just a string'",
    ),
    "wrong-type-configuration": (
        {"m.yaml": GOOD.replace("configuration:\n  model: llama3", "configuration: [a]")},
        "m.yaml:4:16: configuration: must be a mapping of settings, got a list",
    ),
    "wrong-type-tags": (
        {"m.yaml": GOOD + "tags: 5\n"},
        "m.yaml:6:7: tags: must be a list of strings or one comma-separated string, got an integer",
    ),
    "unknown-dtype": (
        {"m.yaml": GOOD.replace("ollama", "olama")},
        "m.yaml:3:8: dtype: unknown dtype `olama`; did you mean `ollama`?",
    ),
    "unknown-field": (
        {"m.yaml": GOOD + "sumary: x\n"},
        "m.yaml:6:1: sumary: unknown field; did you mean `summary`?",
    ),
    "name-slash": (
        {"m.yaml": GOOD.replace("name: ok", "name: a/b")},
        "m.yaml:2:7: name: must not contain `/`",
    ),
    "name-too-long": (
        {"m.yaml": GOOD.replace("name: ok", "name: " + "x" * 300)},
        "m.yaml:2:7: name: is 300 characters long; keep names at most 255",
    ),
    "name-control-char": (
        {"m.yaml": GOOD.replace("name: ok", 'name: "a\\tb"')},
        "m.yaml:2:7: name: must not contain control, bidi or line-separator characters (U+0009 at position 2)",
    ),
    "same-name-two-files": ({"a.yaml": GOOD, "b.yaml": GOOD}, "b.yaml:2:7: name: `ok` is also defined at"),
    "merge-key": (
        {"m.yaml": "base: &b {model: x}\nconfiguration:\n  <<: *b\n"},
        "m.yaml:3:3: configuration: keys must be plain strings (no merge keys or complex keys)",
    ),
}


@pytest.fixture(autouse=True)
def _no_secrets(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)


@pytest.mark.parametrize("case", sorted(CASES))
def test_case(case, cli, manifest_dir, sandbox):
    files, expected = CASES[case]
    root = manifest_dir({})
    for rel, content in files.items():
        path = root / rel
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
    run = cli("apply", root, "--server", sandbox.url)
    assert run.code == 1, run.all
    first = run.err.splitlines()[0]
    assert first.startswith(f"{root}/{expected}"), first
    assert run.err.splitlines()[-1].startswith("error: ") and "nothing was written" in run.err
    assert "Traceback" not in run.all
    assert sandbox.stats() == {}, "an invalid manifest set must not even reach the server"


def test_fifty_megabyte_file_is_refused_without_reading_it(cli, manifest_dir, sandbox):
    root = manifest_dir({})
    big = root / "big.yaml"
    with big.open("wb") as f:  # sparse: the size is real, the disk and the test stay cheap
        f.truncate(50 * 1024 * 1024)
    run = cli("apply", root, "--server", sandbox.url)
    assert run.code == 1
    assert run.err.splitlines()[0] == f"{big}:1:1: file is 50.0 MiB; the limit is 10 MiB — split it"
    assert sandbox.stats() == {}


def test_bom_and_empty_files_are_fine(cli, manifest_dir, sandbox):
    root = manifest_dir({"empty.yaml": "", "comments.yml": "# nothing yet\n"})
    (root / "bom.yaml").write_bytes(b"\xef\xbb\xbf" + GOOD.encode())
    run = cli("validate", root)
    assert run.code == 0 and "OK: 1 manifest(s) in 3 file(s) are valid." in run.out


def test_missing_env_var_and_secret_file(cli, manifest_dir, sandbox):
    root = manifest_dir(
        {
            "a.yaml": "kind: Model\nname: a\ndtype: openai\nconfiguration:\n  api_key: ${NOPE_KEY}\n",
            "b.yaml": "kind: Model\nname: b\ndtype: openai\nconfiguration:\n  api_key: {file: gone.key}\n",
        }
    )
    run = cli("apply", root, "--server", sandbox.url)
    assert run.code == 1
    lines = run.err.splitlines()
    assert lines[0] == (
        f"{root}/a.yaml:5:12: configuration.api_key: environment variable NOPE_KEY is not set; "
        "export it before plan/apply (model `a`)"
    )
    assert lines[1].startswith(
        f"{root}/b.yaml:5:12: configuration.api_key: cannot read secret file {root}/gone.key"
    )
    assert sandbox.stats() == {}


def test_symlink_loop_and_escape(cli, manifest_dir, sandbox, tmp_path):
    root = manifest_dir({"ok.yaml": GOOD})
    (tmp_path / "secret.yaml").write_text(GOOD.replace("name: ok", "name: outside"))
    (root / "escape.yaml").symlink_to(tmp_path / "secret.yaml")
    (root / "loop").symlink_to(root, target_is_directory=True)
    (root / "self.yaml").symlink_to(root / "self.yaml")
    run = cli("apply", root, "--server", sandbox.url)
    assert run.code == 1
    assert run.err.splitlines()[:2] == [
        f"{root}/escape.yaml:1:1: symlink leads outside {root} (to {tmp_path}/secret.yaml); not followed",
        f"{root}/self.yaml:1:1: broken or looping symlink; fix or remove it",
    ]
    assert sandbox.stats() == {}


def test_fifo_is_not_read(cli, manifest_dir, sandbox):
    root = manifest_dir({"a.yaml": GOOD})
    os.mkfifo(root / "pipe.yaml")  # reading it would block forever
    run = cli("apply", root, "--server", sandbox.url)
    assert run.code == 1
    assert run.err.splitlines()[0] == f"{root}/pipe.yaml:1:1: not a regular file; not read"
    assert sandbox.stats() == {}
