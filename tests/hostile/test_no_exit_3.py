"""Every bad input is a handled error with one clear line, never "unexpected error" (exit 3), and
nothing is written: manifests and environment at validation, settings and server answers at the
client boundary, saved plans at load."""

import json
import os

import pytest

from .misbehaving import answer, hang, redirect_to, send, text

GOOD = "kind: Model\nname: ok\ndtype: ollama\nconfiguration:\n  model: llama3\n"
OPENAI = "kind: Model\nname: k\ndtype: openai\nconfiguration:\n  api_key: ${KEY}\n  model: gpt-4o\n"


def handled(run, *, codes=(1, 2, 4, 5, 6, 8, 10, 64)):
    assert run.code in codes, run.all
    assert "Traceback" not in run.all and "unexpected error" not in run.all
    errors = [line for line in run.err.splitlines() if line.startswith("error:")]
    assert len(errors) <= 1, run.err


# -- manifests: YAML that cannot become a manifest, caught by validate, before any write ------

YAML_VALUES = {
    "int-tag-on-text": '!!int "abc"',
    "int-tag-empty": '!!int ""',
    "int-tag-hex-junk": "!!int 0xZZ",
    "float-tag-on-text": "!!float abc",
    "bool-tag-maybe": "!!bool maybe",
    "bool-tag-number": "!!bool 2",
    "int-tag-on-list": "!!int [1]",
    "str-tag-on-map": "!!str {a: 1}",
    "map-tag-on-scalar": "!!map x",
    "seq-tag-on-scalar": "!!seq x",
    "timestamp": "2024-01-01",
    "timestamp-tag": "!!timestamp x",
    "binary": "!!binary aGk=",
    "set": "!!set {a}",
    "omap": "!!omap [a: 1]",
    "pairs": "!!pairs [a: 1]",
    "python-tag": "!!python/none ''",
    "local-tag": "!custom 1",
    "nan": ".nan",
    "NaN": ".NaN",
    "inf": ".inf",
    "minus-inf": "-.inf",
    "Inf": "+.Inf",
    "float-tag-nan": "!!float .nan",
    "huge-int": "1" * 5000,
    "deep-list-40": "[" * 40 + "]" * 40,
    "deep-list-500": "[" * 500 + "]" * 500,
    "deep-list-5000": "[" * 5000 + "]" * 5000,
    "deep-map-100": "{a: " * 100 + "1" + "}" * 100,
    "nan-in-list": "[1, .nan]",
    "inf-in-map": "{a: .inf}",
}


@pytest.mark.parametrize("field", ["configuration.model", "configuration.extra", "summary", "tags", "name"])
@pytest.mark.parametrize("case", sorted(YAML_VALUES))
def test_yaml_values_that_cannot_apply_are_problems(case, field, cli, manifest_dir, space):
    value = YAML_VALUES[case]
    lines = GOOD.replace("name: ok", "name: ok" if field != "name" else f"name: {value}")
    if field == "configuration.model":
        lines = lines.replace("model: llama3", f"model: {value}")
    elif field == "configuration.extra":
        lines += f"  extra: {value}\n"
    elif field in ("summary", "tags"):
        lines += f"{field}: {value}\n"
    root = manifest_dir({"m.yaml": lines})
    for command in ("validate", "apply"):
        run = cli(command, root, "--server", space.url)
        handled(run, codes=(1,))
        assert run.err.startswith(f"{root}/m.yaml:"), run.err
    assert space.requests == []


@pytest.mark.parametrize("value", [b"caf\xe9", b"\xff\xfe", b"ok\x80", b"\xed\xa0\x80"])
def test_environment_values_that_are_not_utf8_are_problems_before_any_write(
    value, cli, manifest_dir, space, monkeypatch
):
    monkeypatch.setenv("KEY", os.fsdecode(value))
    root = manifest_dir({"a.yaml": GOOD, "k.yaml": OPENAI})
    run = cli("apply", root, "--server", space.url)
    handled(run, codes=(1,))
    assert "environment variable KEY is not valid UTF-8 text" in run.err
    assert space.requests == []  # not half an apply


@pytest.mark.parametrize("value", ["caf\udce9", "\udcff"])
def test_non_utf8_settings_from_the_environment_are_handled(value, cli, manifest_dir, space, monkeypatch):
    root = manifest_dir({"a.yaml": GOOD})
    for var, extra in (
        ("SYFT_SPACE_URL", []),
        ("SYFT_SPACE_TOKEN", ["--server", space.url]),
        ("SYFT_SPACE_TENANT", ["--server", space.url]),
    ):
        monkeypatch.setenv(var, value)
        handled(cli("plan", root, *extra), codes=(1, 64))
        monkeypatch.delenv(var)


# -- settings: refused up front with one line ----------------------------------------------

BAD_SETTINGS = {
    "url-unclosed-ipv6": ["--server", "http://[::1"],
    "url-ftp": ["--server", "ftp://example.org"],
    "url-no-host": ["--server", "http://"],
    "url-space": ["--server", "http://exa mple.org"],
    "url-port-too-big": ["--server", "http://127.0.0.1:99999"],
    "url-words": ["--server", "not a url"],
    "url-bad-idna": ["--server", "http://xn--a.example"],
    "url-control": ["--server", "http://h\x00st"],
    "url-empty": ["--server", ""],
    "tenant-non-ascii": ["--tenant", "tenänt"],
    "tenant-newline": ["--tenant", "a\nb"],
    "tenant-empty": ["--tenant", ""],
    "tenant-spaces": ["--tenant", " a "],
    "token-non-ascii": ["--token", "clé"],
    "token-inner-space": ["--token", "a b"],
    "timeout-zero": ["--timeout", "0"],
    "timeout-negative": ["--timeout", "-1"],
    "timeout-nan": ["--timeout", "nan"],
    "timeout-inf": ["--timeout", "inf"],
    "ca-cert-garbage": ["--ca-cert", "{garbage}"],
    "ca-cert-empty": ["--ca-cert", "{empty}"],
    "ca-cert-directory": ["--ca-cert", "{dir}"],
    "ca-cert-missing": ["--ca-cert", "{dir}/nope.pem"],
    "ca-cert-fifo": ["--ca-cert", "{dir}/fifo.pem"],
    "ca-cert-dev-zero": ["--ca-cert", "/dev/zero"],
}


@pytest.mark.timeout(30)
@pytest.mark.parametrize("case", sorted(BAD_SETTINGS))
@pytest.mark.parametrize("command", ["plan", "apply", "export", "validate"])
def test_bad_settings_are_one_line(case, command, cli, manifest_dir, space, tmp_path):
    (tmp_path / "garbage.pem").write_text(
        "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n"
    )
    (tmp_path / "empty.pem").write_text("")
    os.mkfifo(tmp_path / "fifo.pem")
    args = [
        a.format(garbage=tmp_path / "garbage.pem", empty=tmp_path / "empty.pem", dir=tmp_path)
        for a in BAD_SETTINGS[case]
    ]
    if "--server" not in args:
        args += [
            "--server",
            space.url.replace("http://127.0.0.1", "https://127.0.0.1") if "--ca-cert" in args else space.url,
        ]
    root = manifest_dir({"a.yaml": GOOD})
    paths = [] if command == "export" else [root]
    extra = ["--online"] if command == "validate" else ["-d", tmp_path / "out"] if command == "export" else []
    run = cli(command, *paths, *args, *extra, "--retries", "0")
    handled(run, codes=(1, 4, 64))
    assert space.requests == []


# -- server answers that are not what the API promises ---------------------------------------

ANSWERS = {
    "types-schema-a-string": (
        "GET",
        "/api/v1/models/types/",
        answer(200, [{"name": "ollama", "config_schema": "x"}]),
    ),
    "types-schema-a-list": (
        "GET",
        "/api/v1/models/types/",
        answer(200, [{"name": "ollama", "config_schema": [1]}]),
    ),
    "types-schema-a-number": (
        "GET",
        "/api/v1/models/types/",
        answer(200, [{"name": "ollama", "config_schema": 5}]),
    ),
    "types-schema-bad-regex": (
        "GET",
        "/api/v1/models/types/",
        answer(
            200,
            [
                {
                    "name": "ollama",
                    "config_schema": {
                        "type": "object",
                        "properties": {"model": {"type": "string", "pattern": "(unclosed"}},
                    },
                }
            ],
        ),
    ),
    "types-schema-bad-type": (
        "GET",
        "/api/v1/models/types/",
        answer(200, [{"name": "ollama", "config_schema": {"type": 5}}]),
    ),
    "types-schema-properties-list": (
        "GET",
        "/api/v1/models/types/",
        answer(200, [{"name": "ollama", "config_schema": {"properties": [1]}}]),
    ),
    "types-schema-deep": (
        "GET",
        "/api/v1/models/types/",
        answer(
            200, b'[{"name": "ollama", "config_schema": ' + b'{"not": ' * 300 + b"{}" + b"}" * 300 + b"}]"
        ),
    ),
    "types-not-a-list": ("GET", "/api/v1/models/types/", answer(200, {"types": []})),
    "types-items-junk": ("GET", "/api/v1/models/types/", answer(200, [1, "x", None, {"name": None}])),
    "list-not-json": ("GET", "/api/v1/models/", text(200, "<html>")),
    "list-not-a-list": ("GET", "/api/v1/models/", answer(200, {"models": []})),
    "list-items-junk": ("GET", "/api/v1/models/", answer(200, [1, "x"])),
    "list-tags-a-number": (
        "GET",
        "/api/v1/models/",
        answer(200, [{"name": "ok", "dtype": "ollama", "tags": 5}]),
    ),
    "list-config-a-list": (
        "GET",
        "/api/v1/models/",
        answer(200, [{"name": "ok", "dtype": "ollama", "configuration": [1]}]),
    ),
    "list-deep": ("GET", "/api/v1/models/", answer(200, b"[" * 100_000 + b"]" * 100_000)),
    "list-not-utf8": ("GET", "/api/v1/models/", answer(200, b'[{"name": "caf\xe9"}]')),
    "list-nan": (
        "GET",
        "/api/v1/models/",
        answer(200, b'[{"name": "ok", "dtype": "ollama", "configuration": {"a": NaN}}]'),
    ),
    "list-huge-number": (
        "GET",
        "/api/v1/models/",
        answer(200, b'[{"name": "ok", "dtype": "ollama", "configuration": {"a": 1' + b"0" * 5000 + b"}}]"),
    ),
    "list-422-detail-junk": ("GET", "/api/v1/models/", answer(422, {"detail": [{"loc": 5, "msg": None}, 7]})),
    "list-500-deep-detail": (
        "GET",
        "/api/v1/models/",
        answer(500, b'{"detail": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"),
    ),
    "list-lone-surrogates": (
        "GET",
        "/api/v1/models/",
        answer(
            200,
            b'[{"name": "a\\ud800", "dtype": "ollama", '
            b'"configuration": {"m": "\\udcff"}, "tags": '
            b'"t\\ud800,managed-by:syft-reconciler"}]',
        ),
    ),
    "tenant-junk": ("GET", "/api/v1/tenants/t", answer(200, [1, 2])),
    "redirect-same-origin-hangs": ("GET", "/api/v1/models/", redirect_to("/api/v1/models")),
    "redirect-bad-location": ("GET", "/api/v1/models/", redirect_to("http://[::1")),
    "redirect-no-location": ("GET", "/api/v1/models/", lambda h, b: send(h, 302, b"")),
    "redirect-loop": ("GET", "/api/v1/models/", redirect_to("/api/v1/models/")),
    "create-not-json": ("POST", "/api/v1/models/", text(201, "ok")),
    "create-other-shape": ("POST", "/api/v1/models/", answer(201, {"id": 1})),
    "create-deep": ("POST", "/api/v1/models/", answer(201, b"{" + b'"a": {' * 200 + b"}" * 201)),
}


@pytest.mark.parametrize("case", sorted(ANSWERS))
@pytest.mark.parametrize(
    "command",
    [
        ["plan"],
        ["apply"],
        ["validate", "--online"],
        ["plan", "-o", "json"],
        ["apply", "--prune", "--owner", "hostile", "--auto-approve", "-o", "json"],
        ["plan", "-o", "markdown"],
        ["plan", "--out", "{tmp}/plan.json"],
        ["plan", "--out", "{tmp}/no/such/dir.json"],
    ],
)
def test_server_answers_are_handled(case, command, cli, manifest_dir, space, tmp_path):
    command = [c.replace("{tmp}", str(tmp_path)) for c in command]
    method, path, action = ANSWERS[case]
    space.script(method, path, action)
    space.script("GET", "/api/v1/models", hang)
    root = manifest_dir({"a.yaml": GOOD})
    run = cli(*command, root, "--server", space.url, "--timeout", "0.5", "--retries", "0", "--tenant", "t")
    handled(run, codes=(0, 1, 4, 6, 7, 8))
    if "json" in command:
        json.loads(run.out)


def test_schema_pull_survives_junk_types(cli, space, tmp_path):
    for case in sorted(k for k in ANSWERS if k.startswith("types-")):
        space.script(*ANSWERS[case])
        run = cli("schema", "pull", "--server", space.url, "--schemas-dir", tmp_path / case, "--dry-run")
        handled(run, codes=(0, 1, 6))


# -- saved plans edited by hand --------------------------------------------------------------


def _tampered(good):
    out = {"empty": "", "not-json": "{", "a-list": "[]", "not-utf8": b"\xff\xfe{}", "deep": "[" * 100_000}
    for key in (
        "paths",
        "server",
        "tenant",
        "options",
        "state_fingerprint",
        "manifests_digest",
        "changes",
        "kind",
        "version",
    ):
        out[f"without-{key}"] = {k: v for k, v in good.items() if k != key}
        for junk_name, junk in (("null", None), ("int", 5), ("list", [1]), ("map", {"a": 1}), ("str", "x")):
            out[f"{key}-{junk_name}"] = {**good, key: junk}
    for option in ("adopt", "prune", "replace", "replace_all", "var_files"):
        out[f"option-{option}-junk"] = {**good, "options": {**good["options"], option: {"x": 1}}}
    out["paths-junk-items"] = {**good, "paths": [1, None]}
    out["changes-junk-items"] = {**good, "changes": [1]}
    out["var-file-missing"] = {
        **good,
        "options": {**good["options"], "var_files": ["/nonexistent/vars.yaml"]},
    }
    out["paths-missing"] = {**good, "paths": ["/nonexistent/manifests"]}
    return out


def test_tampered_saved_plans_are_refused_with_one_line(cli, manifest_dir, space, tmp_path):
    root = manifest_dir({"a.yaml": GOOD})
    saved = tmp_path / "plan.json"
    assert cli("plan", root, "--server", space.url, "--out", saved).code == 0
    good = json.loads(saved.read_text())
    cases = _tampered(good)
    del cases["tenant-null"], cases["without-tenant"]  # the same plan: no tenant
    assert len(cases) > 50
    for name, content in cases.items():
        path = tmp_path / f"{name}.json"
        path.write_bytes(
            content
            if isinstance(content, bytes)
            else (content if isinstance(content, str) else json.dumps(content)).encode()
        )
        run = cli("apply", path, "--server", space.url)
        assert run.code != 0, (name, run.all)
        handled(run, codes=(0, 1, 10, 64))
    assert not [r for r in space.requests if r[0] != "GET"]
