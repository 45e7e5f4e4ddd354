"""The click group and the one error handler: our exceptions become one line and an exit code;
a traceback only with --debug. Command modules register themselves on `cli`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import traceback
from collections.abc import Sequence

import click

from reconciler import __version__, redact, render
from reconciler.cli.completion import completion
from reconciler.cli.options import RunState, current, emit_json
from reconciler.errors import (
    EXIT_OK,
    EXIT_UNEXPECTED,
    EXIT_USAGE,
    InvalidManifests,
    ReconcilerError,
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="syft-reconciler")
@click.option("--debug", is_flag=True, help="Show tracebacks and debug logs.")
def cli(debug: bool) -> None:
    """GitOps for Syft Space: keep a space's models, datasets, endpoints and policies in git and converge
    the server to them."""
    current().debug = debug
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


cli.add_command(completion)


# -- the one error handler ------------------------------------------------------------------


def _report_error(error: ReconcilerError, state: RunState) -> None:
    if state.output == "json":
        emit_json(render.error_json(error))
        return
    from reconciler.cli.terminal import echo

    if isinstance(error, InvalidManifests):
        for problem in error.problems:
            echo(str(problem), err=True)
    echo(f"error: {error.message}", err=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (tests call this in-process).

    stdout and stderr pass through the scrubber for the whole run (redact.py): results, errors,
    logs and --debug tracebacks alike never carry a registered secret, a URL password or a raw
    terminal escape sequence.
    """
    if os.environ.get("_SYFT_RECONCILER_COMPLETE"):  # shell completion: click's own script, no secret
        return _main(argv, RunState())
    redact.SCRUBBER.clear()  # one run's secrets; in-process callers (tests) run many
    streams = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = redact.ScrubbingStream(streams[0]), redact.ScrubbingStream(streams[1])
    try:
        return _main(argv, RunState())  # the commands' click context object: no global state
    finally:
        with contextlib.suppress(OSError, ValueError):
            sys.stdout.flush()
            sys.stderr.flush()
        sys.stdout, sys.stderr = streams


def _main(argv: Sequence[str] | None, state: RunState) -> int:
    try:
        cli.main(
            args=list(argv) if argv is not None else None,
            prog_name="syft-reconciler",
            standalone_mode=False,
            obj=state,
        )
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.UsageError as exc:  # bad options or arguments: their own code, never 2
        exc.show()
        return EXIT_USAGE
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code if exc.exit_code else EXIT_USAGE
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return 130
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except ReconcilerError as exc:
        if state.debug:
            traceback.print_exc()
        _report_error(exc, state)
        return exc.exit_code
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        return 130
    except Exception as exc:  # the last line of defence: one line, no traceback without --debug
        if state.debug:
            traceback.print_exc()
        click.echo(
            f"unexpected error: {type(exc).__name__}: {exc} (run with --debug for the traceback)", err=True
        )
        return EXIT_UNEXPECTED
    return EXIT_OK


def run() -> None:
    """The console entry point: `main()`, then exit without tearing the heap down.

    Freeing every object of a large run one by one takes longer than the run's own validation
    (0.6 s after loading 10,000 manifests), and the OS reclaims it all at once anyway. Every
    command has returned, closed its clients and stopped its threads by now; logs and standard
    streams are flushed before leaving. Tests and embedders call `main()`, which returns.
    """
    code = main()
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe: nothing more can be said anyway
            pass
    os._exit(code)
