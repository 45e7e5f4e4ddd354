"""What a person sees: colour on a terminal, plain text elsewhere, and the live progress of an apply.

- Colour is decided per stream (`colour_on`): `--no-color`, then NO_COLOR (no-color.org), then
  FORCE_COLOR (force-color.org: any non-empty value), then whether the stream is a terminal whose
  TERM is not `dumb`.
- Without colour, text is written exactly as render.py made it: byte-identical through a pipe.
- With colour, the same text is styled line by line from its leading symbol or word (rich); the
  characters do not change, only their colour. Styled writes pass the scrubber's `write_styled`,
  which lets colour and redraw sequences through and nothing else.
- An apply's progress (`ApplyProgress`): on a terminal a live bar on stderr with count, rate and
  ETA, lines printed above it; elsewhere (CI) one line on stderr every few seconds
  (SYFT_RECONCILER_PROGRESS_SECONDS, default 5). Per-model lines: failures and conflicts always,
  changes when the plan was shown in full (or --verbose), the rest only with --verbose.
"""

from __future__ import annotations

import math
import os
import re
import signal
import sys
import threading
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import click

from reconciler import render
from reconciler.cli.options import current
from reconciler.model import Outcome
from reconciler.redact import neutralise

if TYPE_CHECKING:  # rich is imported when colour or a bar is drawn: a pipe never pays for it
    from rich.console import Console
    from rich.progress import Progress
    from rich.text import Text

PROGRESS_SECONDS = 5.0
BAR_FROM = 10
"""Fewer writes than this finish before a bar could say anything: no bar."""


def colour_on(stream: Any, *, no_color: bool = False, environ: Mapping[str, str] | None = None) -> bool:
    env = os.environ if environ is None else environ
    if no_color or env.get("NO_COLOR"):
        return False
    if env.get("FORCE_COLOR"):
        return True
    try:
        tty = bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        tty = False
    return tty and env.get("TERM") != "dumb"


def _stream(err: bool) -> Any:
    return sys.stderr if err else sys.stdout


def wants_colour(err: bool = False) -> bool:
    return colour_on(_stream(err), no_color=current().no_color)


# -- styling: a line's look follows from its first symbol or word ------------------------------

OP_STYLES = {
    "+": "green",
    "~": "yellow",
    "-/+": "red",
    "-": "red",
    "!": "magenta",
    "?": "dim",
    "=": "dim",
}
RESULT_STYLES = {
    "created": "green",
    "updated": "yellow",
    "replaced": "red",
    "deleted": "red",
    "present": "dim",
    "skipped": "dim",
    "conflict": "magenta",
    "failed": "bold red",
}
_HEAD = re.compile(r"^( +)(-/\+|[+~!?=-]) (create|update|replace|delete|conflict|unmanaged|in sync)\b")
_RESULT = re.compile(r"^(" + "|".join(RESULT_STYLES) + r")\b")
_PROBLEM = re.compile(r"^(\S.*?:\d+:\d+): (?:(warning:)|([\w.\[\]-]+:) )?")
_SUMMARY = {
    "Apply complete": "bold green",
    "Apply finished with conflicts": "bold yellow",
    "Apply finished with failures": "bold red",
    "Apply interrupted": "bold red",
    "No changes:": "green",
    "Plan for ": "bold",
    "  DELETIONS": "bold red",
    "warning:": "yellow",
    "error:": "bold red",
}


def style_line(line: str) -> Text:
    """One rendered line with its colours: the characters a plain write would show (the scrubbing
    stream neutralises control characters in plain writes; here it is done before styling)."""
    from rich.text import Text

    line = neutralise(line)
    text = Text(line)
    head = _HEAD.match(line)
    if head:
        style = OP_STYLES[head.group(2)]
        text.stylize(f"bold {style}", head.start(2), head.end(3))
        return text
    result = _RESULT.match(line)
    if result:
        text.stylize(RESULT_STYLES[result.group(1)], 0, result.end(1))
        return text
    problem = _PROBLEM.match(line)
    if problem:  # file:line:col: [warning: ]field: message, as compilers print them
        text.stylize("bold", 0, problem.end(1))
        if problem.group(2):
            text.stylize("yellow", problem.start(2), problem.end(2))
        elif problem.group(3):
            text.stylize("red", problem.start(3), problem.end(3))
        return text
    for prefix, style in _SUMMARY.items():
        if line.startswith(prefix):
            end = len(line) if prefix[0].isupper() or prefix.startswith("  ") else len(prefix)
            text.stylize(style, 0, end)
            break
    return text


class _StyledFile:
    """rich writes here; the scrubbing stream lets only colour and redraw sequences through."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream

    def write(self, text: str) -> int:
        styled = getattr(self.stream, "write_styled", None)
        return int(styled(text) if styled is not None else self.stream.write(text))

    def flush(self) -> None:
        self.stream.flush()

    def isatty(self) -> bool:
        return True

    def fileno(self) -> int:
        return int(self.stream.fileno())

    @property
    def encoding(self) -> str:
        return str(getattr(self.stream, "encoding", None) or "utf-8")


def console(err: bool = False, *, colour: bool = True) -> Console:
    from rich.console import Console

    return Console(
        file=_StyledFile(_stream(err)),  # type: ignore[arg-type]
        force_terminal=True,
        no_color=not colour,
        color_system="standard",  # green, yellow, red, magenta, bold, dim: every terminal has them
        highlight=False,
        markup=False,
        emoji=False,
        soft_wrap=True,
    )


def echo(text: str, *, err: bool = False) -> None:
    """Rendered text: plain as it is, or styled when this stream shows colour. While a progress bar
    is live on the terminal, the text goes above it."""
    live = current().live
    if live is not None and live.owns(err):
        live.print(text, err=err)
    elif wants_colour(err):
        out = console(err)
        for line in text.split("\n"):
            out.print(style_line(line))
    else:
        click.echo(text, err=err)


# -- progress of an apply ------------------------------------------------------------------------


def _rate_and_eta() -> tuple[Any, Any]:
    """Two bar columns: models per second, and the time left (rich's own show other units)."""
    from rich.progress import ProgressColumn, Task
    from rich.text import Text

    class Rate(ProgressColumn):
        def render(self, task: Task) -> Text:
            speed = task.finished_speed or task.speed
            return Text(f"{speed:,.0f}/s" if speed else "?/s", style="cyan")

    class Left(ProgressColumn):
        def render(self, task: Task) -> Text:
            remaining = task.time_remaining
            return Text(f"ETA {duration(remaining)}" if remaining is not None else "ETA ?", style="cyan")

    return Rate(), Left()


def duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def progress_seconds(environ: Mapping[str, str] | None = None) -> tuple[float, str | None]:
    """SYFT_RECONCILER_PROGRESS_SECONDS, and what is wrong with it (then the default is used)."""
    raw = (os.environ if environ is None else environ).get("SYFT_RECONCILER_PROGRESS_SECONDS", "")
    if not raw:
        return PROGRESS_SECONDS, None
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not 0 < value <= 86400:  # NaN fails too; an infinite wait cannot be scheduled
        return PROGRESS_SECONDS, (
            f"warning: SYFT_RECONCILER_PROGRESS_SECONDS={raw!a} is not a number of seconds between 0 "
            f"and 86400; progress is said every {PROGRESS_SECONDS:g} s"
        )
    return value, None


class ApplyProgress:
    """Counts an apply's outcomes and shows them: a bar on a terminal, a line every few seconds
    elsewhere, and the per-model lines that matter (module docstring)."""

    def __init__(
        self,
        total: int,
        *,
        enabled: bool,
        quiet: bool = False,
        verbose: bool = False,
        changes: bool = True,
    ) -> None:
        self.total = total
        self.seen = 0
        self.enabled = enabled
        self.quiet = quiet
        self.verbose = verbose
        self.changes = changes
        self.started = time.monotonic()
        self._lock = threading.Lock()
        self._bar: Progress | None = None
        self._task: Any = None
        self._ticker: threading.Thread | None = None
        self._stop = threading.Event()
        self._stdout_tty = False
        show = enabled and not quiet and total > 0
        if show and sys.stderr.isatty() and total >= BAR_FROM:
            self._start_bar()
        elif show and not sys.stderr.isatty():
            self._ticker = threading.Thread(target=self._tick, name="progress", daemon=True)
            self._ticker.start()

    # -- what is shown per model

    def wanted(self, outcome: Outcome) -> bool:
        return render.outcome_listed(outcome, quiet=self.quiet, verbose=self.verbose, changes=self.changes)

    def outcome(self, outcome: Outcome) -> None:
        with self._lock:
            self.seen += 1
            if self._bar is not None:
                self._bar.update(self._task, completed=self.seen)
        if self.enabled and self.wanted(outcome):
            echo(render.outcome_line(outcome))

    def stopping(self, signum: int) -> None:
        """The first Ctrl-C or SIGTERM: say what happens now, once (as Terraform does)."""
        if self.enabled:
            what = "Interrupt" if signum == signal.SIGINT else "SIGTERM"
            echo(
                f"{what} received: sending nothing new; the requests in flight finish and are "
                "reported (Ctrl-C again to stop waiting).",
                err=True,
            )

    # -- a terminal: the bar

    def _start_bar(self) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        colour = wants_colour(err=True)
        bar_console = console(err=True, colour=colour)
        self._bar = Progress(
            TextColumn("Applying"),
            BarColumn(),
            MofNCompleteColumn(),
            *_rate_and_eta(),
            console=bar_console,
            transient=True,
            redirect_stdout=False,
            redirect_stderr=False,
            refresh_per_second=8,
        )
        self._task = self._bar.add_task("apply", total=self.total)
        self._stdout_tty = bool(sys.stdout.isatty())
        self._bar.start()
        current().live = self

    def owns(self, err: bool) -> bool:
        """Whether text for this stream is printed through the bar (stdout only when it is the
        terminal too: through a pipe it stays on stdout)."""
        return self._bar is not None and (err or self._stdout_tty)

    def print(self, text: str, *, err: bool = False) -> None:
        from rich.text import Text

        assert self._bar is not None
        colour = wants_colour(err)
        for line in text.split("\n"):
            self._bar.console.print(style_line(line) if colour else Text(neutralise(line)))

    # -- elsewhere: a line every few seconds

    def _tick(self) -> None:
        every, problem = progress_seconds()
        if problem:
            click.echo(problem, err=True)
        while not self._stop.wait(every):
            click.echo(self.status(), err=True)

    def status(self) -> str:
        elapsed = max(time.monotonic() - self.started, 1e-6)
        done = self.seen
        rate = done / elapsed
        share = 100 * done // self.total if self.total else 100
        left = f", about {duration((self.total - done) / rate)} left" if rate > 0 else ""
        return f"progress: {done:,}/{self.total:,} ({share}%), {rate:,.0f}/s{left}"

    def done(self) -> None:
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join()
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
            current().live = None
