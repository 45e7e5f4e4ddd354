"""The terminal layer's rules, in-process (cli/terminal.py); the runs on a pseudo-terminal are in
tests/e2e/test_terminal.py."""

from __future__ import annotations

import io

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reconciler import render
from reconciler.cli import terminal
from reconciler.model import STOPPED, Change, Manifest, Op, Outcome, Plan, Result, SourceLocation
from reconciler.redact import neutralise


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(
    ("tty", "flag", "env", "expected"),
    [
        (True, False, {"TERM": "xterm-256color"}, True),
        (False, False, {"TERM": "xterm-256color"}, False),
        (True, True, {}, False),  # --no-color
        (True, False, {"NO_COLOR": "1"}, False),
        (True, False, {"NO_COLOR": ""}, True),  # only a non-empty NO_COLOR counts
        (False, False, {"FORCE_COLOR": "1"}, True),
        (False, False, {"FORCE_COLOR": ""}, False),
        (False, True, {"FORCE_COLOR": "1"}, False),  # the flag wins over everything
        (True, False, {"NO_COLOR": "1", "FORCE_COLOR": "1"}, False),
        (True, False, {"TERM": "dumb"}, False),
        (False, False, {"TERM": "dumb", "FORCE_COLOR": "3"}, True),
    ],
)
def test_when_colour_is_on(tty, flag, env, expected):
    stream = Tty() if tty else io.StringIO()
    assert terminal.colour_on(stream, no_color=flag, environ=env) is expected


def test_a_closed_or_odd_stream_is_not_a_terminal():
    closed = io.StringIO()
    closed.close()
    assert terminal.colour_on(closed, environ={}) is False
    assert terminal.colour_on(object(), environ={}) is False


def test_every_symbol_and_result_word_render_prints_has_a_colour():
    assert set(render.SYMBOL.values()) == set(terminal.OP_STYLES)
    assert set(render.RESULT_WORD.values()) == set(terminal.RESULT_STYLES)


@given(st.text())
def test_styling_changes_no_character_a_plain_write_would_show(line):
    assert terminal.style_line(line).plain == neutralise(line)


@pytest.mark.parametrize(
    ("line", "style", "span"),
    [
        ("  + create a  (m.yaml:1:1)", "bold green", "+ create"),
        ("  ~ update a", "bold yellow", "~ update"),
        ("  -/+ replace a", "bold red", "-/+ replace"),
        ("  - delete a", "bold red", "- delete"),
        ("  ! conflict a", "bold magenta", "! conflict"),
        ("  + create 2,000 models: a, b", "bold green", "+ create"),
        ("created  a", "green", "created"),
        ("failed   a: 500", "bold red", "failed"),
        ("Apply complete: 1 created, 0 in sync.", "bold green", "Apply complete: 1 created, 0 in sync."),
        ("Apply interrupted: 1 created, 3 not attempted, 0 in sync.", "bold red", None),
        ("  DELETIONS (1): a", "bold red", "  DELETIONS (1): a"),
        ("warning: slow", "yellow", "warning:"),
        ("error: no", "bold red", "error:"),
    ],
)
def test_a_lines_colour_follows_its_symbol_or_word(line, style, span):
    text = terminal.style_line(line)
    assert len(text.spans) == 1
    (found,) = text.spans
    assert str(found.style) == style
    assert line[found.start : found.end] == (span if span is not None else line)


def test_a_problem_line_reads_like_a_compilers():
    error = terminal.style_line("m/a.yaml:3:8: dtype: unknown dtype `opnai`")
    assert [(s.start, s.end, str(s.style)) for s in error.spans] == [(0, 12, "bold"), (14, 20, "red")]
    warning = terminal.style_line("m/a.yaml:5:12: warning: configuration.api_key: a literal secret")
    assert [(s.start, s.end, str(s.style)) for s in warning.spans] == [(0, 13, "bold"), (15, 23, "yellow")]


def test_attribute_lines_and_names_stay_plain():
    for line in (
        '      summary: "a" -> "b"',
        "  1 model, 2 policies to add; 3 models in sync.",
        "x + create",
    ):
        assert terminal.style_line(line).spans == []


def _manifest(name: str) -> Manifest:
    return Manifest(
        name=name, dtype="openai", configuration={"model": "m"}, source=SourceLocation(f"{name}.yaml")
    )


def _plan(creates: int, deletes: int = 0, updates: int = 0) -> Plan:
    changes = [Change(Op.CREATE, f"c{i:03}", desired=_manifest(f"c{i:03}")) for i in range(creates)]
    changes += [Change(Op.DELETE, f"d{i:03}") for i in range(deletes)]
    changes += [Change(Op.UPDATE, f"u{i}", desired=_manifest(f"u{i}")) for i in range(updates)]
    changes += [Change(Op.NOOP, "same", desired=_manifest("same"))]
    return Plan(tuple(changes))


def test_a_large_plan_in_short_names_every_deletion_and_counts_the_rest():
    text = render.space_plan_text(_plan(40, deletes=12, updates=2), target="T", compact=True)
    lines = text.splitlines()
    assert lines[0] == "Plan for T: 40 to add, 2 to change, 0 to replace, 12 to destroy."
    assert lines[1] == "  40 models to add; 2 models to change; 12 models to destroy; 1 model in sync."
    assert lines[2] == "  DELETIONS (12): " + ", ".join(f"model d{i:03}" for i in range(12))  # all, always
    assert lines[3] == "  - delete 12 models: d000, d001, d002, d003, d004, … and 7 more"
    assert lines[4] == "  + create 40 models: c000, c001, c002, c003, c004, … and 35 more"
    assert lines[5] == "  ~ update 2 models: u0, u1"
    assert lines[6] == "  (54 changes in short: `plan`, or `apply --verbose`, lists each with its fields)"
    assert len(lines) == 7


def test_a_large_plan_in_short_groups_each_kind_on_its_own_line():
    plan = _plan(30) + Plan(
        tuple(Change(Op.CREATE, f"ep{i}/p", kind="Policy", endpoint=f"ep{i}") for i in range(7))
    )
    lines = render.space_plan_text(plan, target="T", compact=True).splitlines()
    assert lines[0] == "Plan for T: 37 to add, 0 to change, 0 to replace, 0 to destroy."
    assert "  + create 7 policies: ep0/p, ep1/p, ep2/p, ep3/p, ep4/p, … and 2 more" in lines


def test_one_plan_text_lists_every_kind_in_one_order():
    plan = _plan(2) + Plan((Change(Op.CREATE, "docs", kind="Dataset"),))
    full = render.space_plan_text(plan, target="T").splitlines()
    assert full[0] == "Plan for T: 3 to add, 0 to change, 0 to replace, 0 to destroy."
    assert full[1] == "  2 models, 1 dataset to add; 1 model in sync."
    assert full[-1] == "  + create dataset docs"
    assert render.listed_count(plan) == 3


def _outcome(result: Result, message: str = "") -> Outcome:
    return Outcome("m", Op.CREATE, result, message)


@pytest.mark.parametrize(
    ("result", "message", "quiet", "verbose", "changes", "shown"),
    [
        (Result.FAILED, "", True, False, False, True),  # failures always
        (Result.CONFLICT, "", True, False, False, True),
        (Result.CREATED, "", True, False, True, False),  # --quiet: problems only
        (Result.CREATED, "", False, False, True, True),  # a plan shown in full: each change
        (Result.CREATED, "", False, False, False, False),  # a plan in short: the bar, not each
        (Result.CREATED, "", False, True, False, True),  # --verbose: everything
        (Result.SKIPPED, STOPPED, False, False, True, False),  # Ctrl-C: counted, not listed
        (Result.SKIPPED, STOPPED, False, True, True, True),
        (Result.SKIPPED, "needs --replace m", False, False, False, True),  # why it exits 1
    ],
)
def test_which_models_get_a_line(result, message, quiet, verbose, changes, shown):
    progress = terminal.ApplyProgress(0, enabled=False, quiet=quiet, verbose=verbose, changes=changes)
    assert progress.wanted(_outcome(result, message)) is shown


def test_the_ci_progress_line():
    progress = terminal.ApplyProgress(2000, enabled=False)
    progress.started -= 4.0
    progress.seen = 488
    assert progress.status() == "progress: 488/2,000 (24%), 122/s, about 12 s left"
    progress.seen = 0
    assert progress.status() == "progress: 0/2,000 (0%), 0/s"


@pytest.mark.parametrize(
    ("seconds", "said"), [(0, "0 s"), (59.4, "59 s"), (61, "1 min 01 s"), (3725, "1 h 02 min"), (-3, "0 s")]
)
def test_durations(seconds, said):
    assert terminal.duration(seconds) == said


@pytest.mark.parametrize(
    ("raw", "seconds", "bad"),
    [
        (None, 5.0, False),
        ("", 5.0, False),
        ("0.5", 0.5, False),
        ("soon", 5.0, True),
        ("0", 5.0, True),
        ("-1", 5.0, True),
        ("nan", 5.0, True),
        ("inf", 5.0, True),  # Event.wait(inf) would end the ticker thread with a traceback
        ("1e9", 5.0, True),
    ],
)
def test_the_progress_interval_setting(raw, seconds, bad):
    env = {} if raw is None else {"SYFT_RECONCILER_PROGRESS_SECONDS": raw}
    value, problem = terminal.progress_seconds(env)
    assert value == seconds and bool(problem) is bad
    if bad:
        assert problem == (
            f"warning: SYFT_RECONCILER_PROGRESS_SECONDS={raw!a} is not a number of seconds between 0 "
            "and 86400; progress is said every 5 s"
        )


def test_the_bar_in_process_prints_lines_above_itself_and_goes_away(monkeypatch):
    """The bar's life in one process (the pty tests run it in a child): lines printed while it is
    live go through it, coloured; done() removes it and text is written plainly again."""
    import click

    from reconciler.cli.app import cli
    from reconciler.cli.options import RunState, current

    err, out = Tty(), Tty()
    monkeypatch.setattr("sys.stderr", err)
    monkeypatch.setattr("sys.stdout", out)
    monkeypatch.setenv("TERM", "xterm-256color")
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    with click.Context(cli, obj=RunState()):
        progress = terminal.ApplyProgress(12, enabled=True, changes=False)
        assert current().live is progress and progress.owns(err=False) and progress.owns(err=True)
        for i in range(12):
            progress.outcome(Outcome(f"m{i}", Op.CREATE, Result.CREATED if i else Result.FAILED, "boom"))
        terminal.echo("warning: slow", err=True)
        progress.done()
        assert current().live is None
        terminal.echo("Apply complete: 11 created, 0 in sync.")
    shown = err.getvalue()
    assert "Applying" in shown and "12/12" in shown
    assert "\x1b[1;31mfailed\x1b[0m   model m0: boom" in shown  # above the bar, in colour
    assert "\x1b[33mwarning:\x1b[0m slow" in shown
    assert "created  model m1" not in shown + out.getvalue()  # a plan in short: no line per change
    assert out.getvalue() == "\x1b[1;32mApply complete: 11 created, 0 in sync.\x1b[0m\n"


def test_with_no_color_text_above_the_bar_is_neutralised_too(monkeypatch):
    """NO_COLOR keeps the bar (a bar is not colour) and its styled channel: a server-sent escape in
    a line printed above it must still arrive as visible text, not as a sequence the terminal runs."""
    import click

    from reconciler import redact
    from reconciler.cli.app import cli
    from reconciler.cli.options import RunState

    err = Tty()
    monkeypatch.setattr("sys.stderr", redact.ScrubbingStream(err, redact.Scrubber()))
    monkeypatch.setattr("sys.stdout", redact.ScrubbingStream(Tty(), redact.Scrubber()))
    monkeypatch.setenv("NO_COLOR", "1")
    with click.Context(cli, obj=RunState()):
        progress = terminal.ApplyProgress(12, enabled=True)
        terminal.echo("conflict evil\x1b[2J: taken", err=True)
        progress.done()
    shown = err.getvalue()
    assert "Applying" in shown and "conflict evil\\x1b[2J: taken" in shown
    assert "\x1b[2J" not in shown and "\x1b[1;" not in shown  # no colour either


def test_an_offline_validate_through_a_pipe_imports_neither_rich_nor_httpx(tmp_path):
    """Colour and the bar are drawn with rich, requests sent with httpx (which imports rich too when
    it is there); a PR job's `validate` needs neither: 0.20 s before, 0.15 s after, per run."""
    import subprocess
    import sys

    (tmp_path / "a.yaml").write_text("kind: Model\nname: a\ndtype: ollama\nconfiguration: {model: m}\n")
    code = (
        "import sys\nfrom reconciler.cli.app import main\n"
        f"code = main(['validate', {str(tmp_path)!r}])\n"
        "print('rich' in sys.modules, 'httpx' in sys.modules, code, file=sys.stderr)"
    )
    env = {"PATH": "/usr/bin:/bin", "TERM": "xterm-256color"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=30)
    assert done.stderr.strip().splitlines()[-1] == "False False 0", done.stderr
