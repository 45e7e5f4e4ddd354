"""What a person sees (issue 16): colour and a live bar on a terminal, stable plain text through a
pipe, the plan before an apply, counts on Ctrl-C. The CLI runs as a subprocess, on a
pseudo-terminal or through pipes, against the sandbox."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from reconciler.sandbox import SandboxConfig

from .conftest import SGR, model_yaml, on_pty, seed_model

KEY = "sk-canary-terminal-3b7e"
ESC = "\x1b"


@pytest.fixture(autouse=True)
def _key(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)


@pytest.fixture
def env():
    base = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR", "SYFT_SPACE_URL")}
    return {**base, "OPENAI_API_KEY": KEY, "TERM": "xterm-256color"}


def piped(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "reconciler", *args], env=env, capture_output=True, text=True, timeout=60
    )


@pytest.fixture
def mixed(manifest_dir, api):
    """A plan with every colour: a create, an update, a held replace and an unmanaged model."""
    seed_model(api, "upd", summary="old")
    seed_model(api, "rep", model="gpt-4o")
    seed_model(api, "stray", owned=False)
    return manifest_dir(
        {
            "new.yaml": model_yaml("new"),
            "upd.yaml": model_yaml("upd", summary="new", key="sk-test"),
            "rep.yaml": model_yaml("rep", model="gpt-4.1", key="sk-test"),
        }
    )


def test_a_plan_is_coloured_on_a_terminal_and_the_same_text_through_a_pipe(mixed, sandbox, env):
    args = ["plan", str(mixed), "--server", sandbox.url]
    screen = on_pty(args, env)
    assert screen.code == 0, screen.raw
    # the symbols and words in their colours: + green, ~ yellow, -/+ red, ? dim
    assert f"{ESC}[1;32m+ create{ESC}[0m" in screen.raw
    assert f"{ESC}[1;33m~ update{ESC}[0m" in screen.raw
    assert f"{ESC}[1;31m-/+ replace{ESC}[0m" in screen.raw
    assert f"{ESC}[1;2m? unmanaged{ESC}[0m" in screen.raw
    pipe = piped(args, env)
    assert pipe.returncode == 0 and ESC not in pipe.stdout + pipe.stderr
    # byte for byte the same characters: colour changes no word, no space, no line
    assert screen.plain == pipe.stderr + pipe.stdout
    assert KEY not in screen.raw + pipe.stdout


@pytest.mark.parametrize(
    ("extra", "variables", "coloured"),
    [
        (["--no-color"], {}, False),
        (["--no-colour"], {}, False),
        ([], {"NO_COLOR": "1"}, False),
        ([], {"TERM": "dumb"}, False),
        ([], {"NO_COLOR": "1", "FORCE_COLOR": "1"}, False),  # NO_COLOR wins
        ([], {"NO_COLOR": ""}, True),  # no-color.org: only a non-empty value counts
    ],
)
def test_no_color_on_a_terminal(mixed, sandbox, env, extra, variables, coloured):
    screen = on_pty(["plan", str(mixed), "--server", sandbox.url, *extra], {**env, **variables})
    assert screen.code == 0
    assert bool(SGR.search(screen.raw)) is coloured, screen.raw


def test_force_color_colours_a_pipe_and_changes_no_character(mixed, sandbox, env):
    args = ["plan", str(mixed), "--server", sandbox.url]
    forced = piped(args, {**env, "FORCE_COLOR": "1"})
    plain = piped(args, env)
    assert SGR.search(forced.stdout) and not SGR.search(plain.stdout)
    assert SGR.sub("", forced.stdout) == plain.stdout


def test_piped_output_is_stable_text(manifest_dir, sandbox, env):
    """Two runs through a pipe print the same bytes, apart from the port; no escape anywhere."""
    root = manifest_dir({f"m{i}.yaml": model_yaml(f"m{i}") for i in range(30)})
    outputs = []
    for _ in range(2):
        sandbox.reset()
        run = piped(["apply", str(root), "--server", sandbox.url], env)
        assert run.returncode == 0, run.stderr
        assert ESC not in run.stdout + run.stderr and "\r" not in run.stdout + run.stderr
        outputs.append(run.stdout)
    assert outputs[0] == outputs[1]
    assert outputs[0].splitlines() == [
        f"Plan for {sandbox.url}: 30 to add, 0 to change, 0 to replace, 0 to destroy.",
        "  30 models to add.",
        "  + create 30 models: m0, m1, m10, m11, m12, … and 25 more",
        "  (30 changes in short: `plan`, or `apply --verbose`, lists each with its fields)",
        "Apply complete: 30 created, 0 in sync.",
    ]


def test_a_server_sent_escape_stays_visible_text_on_a_coloured_terminal(sandbox, api, env, manifest_dir):
    """Colour sequences pass; a name the server sends with its own escape does not."""
    api.post(
        "/models/",
        json={"name": "evil\x1b[2J\x1b]0;pwned\x07", "dtype": "ollama", "configuration": {"model": "m"}},
    )
    root = manifest_dir({"a.yaml": model_yaml("a")})
    screen = on_pty(["plan", str(root), "--server", sandbox.url], env)
    assert SGR.search(screen.raw)
    assert "evil\\x1b[2J\\x1b]0;pwned\\x07" in screen.raw
    assert "\x1b[2J" not in screen.raw and "\x1b]" not in screen.raw and "\x07" not in screen.raw


def test_apply_on_a_terminal_shows_the_plan_then_a_live_bar_then_the_summary(
    manifest_dir, sandbox_factory, env
):
    server = sandbox_factory(SandboxConfig(latency_ms=25))
    root = manifest_dir({f"m{i:02}.yaml": model_yaml(f"m{i:02}") for i in range(48)})
    screen = on_pty(["apply", str(root), "--server", server.url, "-p", "2"], env)
    assert screen.code == 0, screen.raw
    assert screen.raw.index("Plan for") < screen.raw.index("Applying") < screen.raw.index("Apply complete")
    frames = re.findall(r"Applying .*? (\d+)/48", SGR.sub("", screen.raw))
    assert len(frames) >= 2 and int(frames[-1]) > int(frames[0]), frames  # redrawn as it moves
    assert re.search(r"\d+/s", screen.plain) and "ETA" in screen.plain
    assert "\x1b[2K" in screen.raw  # the bar's line is cleared and redrawn in place
    assert "created  model m" not in screen.plain  # a large plan: the bar, not 48 lines
    assert screen.plain.splitlines()[-1].endswith("Apply complete: 48 created, 0 in sync.")


def test_apply_in_ci_prints_a_progress_line_every_few_seconds_on_stderr(manifest_dir, sandbox_factory, env):
    server = sandbox_factory(SandboxConfig(latency_ms=25))
    root = manifest_dir({f"m{i:02}.yaml": model_yaml(f"m{i:02}") for i in range(40)})
    run = piped(
        ["apply", str(root), "--server", server.url, "-p", "1"],
        {**env, "SYFT_RECONCILER_PROGRESS_SECONDS": "0.2"},
    )
    assert run.returncode == 0, run.stderr
    ticks = [line for line in run.stderr.splitlines() if line.startswith("progress: ")]
    assert len(ticks) >= 2, run.stderr
    assert re.fullmatch(r"progress: \d+/40 \(\d+%\), \d+/s(, about \d+ s left)?", ticks[0]), ticks
    assert "progress" not in run.stdout  # stdout stays the plan, the problems and the summary
    server.reset(SandboxConfig())  # a bad setting: one warning line, the default, no traceback
    run = piped(
        ["apply", str(root), "--server", server.url], {**env, "SYFT_RECONCILER_PROGRESS_SECONDS": "inf"}
    )
    assert run.returncode == 0 and "Traceback" not in run.stderr
    assert "warning: SYFT_RECONCILER_PROGRESS_SECONDS='inf' is not a number of seconds" in run.stderr


def test_small_applies_list_each_model_and_verbose_lists_every_model_of_a_large_one(
    cli, manifest_dir, sandbox
):
    small = manifest_dir({"a.yaml": model_yaml("a"), "b.yaml": model_yaml("b")})
    run = cli("apply", small, "--server", sandbox.url)
    assert sorted(line for line in run.out.splitlines() if line.startswith("created")) == [
        "created  model a",
        "created  model b",
    ]
    assert "      configuration.api_key: (sensitive)" in run.out  # a small plan in full, fields too
    sandbox.reset()
    big = {f"m{i:02}.yaml": model_yaml(f"m{i:02}") for i in range(25)}
    root = manifest_dir(big)
    run = cli("apply", root, "--server", sandbox.url, "--verbose")
    assert run.code == 0
    assert len([line for line in run.out.splitlines() if line.startswith("created  ")]) == 27  # a, b too
    assert run.out.count("  + create ") == 27 and "in short" not in run.out


def test_ctrl_c_on_a_terminal_reports_counts_not_a_line_per_model(manifest_dir, sandbox_factory, env):
    server = sandbox_factory(SandboxConfig(latency_ms=30))
    root = manifest_dir({f"m{i:03}.yaml": model_yaml(f"m{i:03}") for i in range(200)})
    screen = on_pty(
        ["apply", str(root), "--server", server.url, "-p", "2"],
        env,
        interrupt_when=lambda: server.model_count() >= 10,
    )
    assert screen.code == 130, screen.raw
    text = screen.plain
    assert "skipped" not in text and "not attempted (run stopped)" not in text
    said = "Interrupt received: sending nothing new; the requests in flight finish and are reported"
    assert text.count(said) == 1, text
    summary = [line for line in text.splitlines() if "Apply interrupted" in line]
    created = server.model_count()
    assert summary and summary[-1].split("Apply interrupted: ")[1] == (
        f"{created} created, {200 - created} not attempted, 0 in sync."
    )


def test_force_color_never_colours_markdown_json_or_a_saved_plan(mixed, sandbox, env, tmp_path):
    """The CI recipe sets FORCE_COLOR for readable logs; what it posts or saves stays plain."""
    forced = {**env, "FORCE_COLOR": "1"}
    for output in ("markdown", "json"):
        run = piped(["plan", str(mixed), "--server", sandbox.url, "--output", output], forced)
        assert run.returncode == 0 and ESC not in run.stdout, run.stdout
    saved = tmp_path / "plan.json"
    run = piped(["plan", str(mixed), "--server", sandbox.url, "--out", str(saved)], forced)
    assert SGR.search(run.stdout) and ESC not in saved.read_text()
