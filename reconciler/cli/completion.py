"""Shell completion: `syft-reconciler completion bash|zsh|fish` prints the script, and the values
of `--target` (the names of the manifests) and `--space` (the project file's spaces) complete.

Click's own protocol does the work: the script calls the program back with
`_SYFT_RECONCILER_COMPLETE=<shell>_complete` and the words typed so far. The value callbacks read
only local files (the manifests under the command line's PATHS, else the project's `paths:` and
its spaces' paths, else `manifests/`; the project file found as every command finds it, or
`--config`), never a server. They run on every Tab press, so they never raise and never print:
a broken manifest or project file completes nothing of itself, and the rest still completes.
"""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import click
from click.shell_completion import CompletionItem, get_completion_class, split_arg_string

PROG = "syft-reconciler"
COMPLETE_VAR = "_SYFT_RECONCILER_COMPLETE"
SHELLS = ("bash", "zsh", "fish")
IDENTITY = {"Model": "name", "Dataset": "name", "Endpoint": "slug"}
"""The field `--target` matches, per kind (selection.py: a model's or dataset's name, an
endpoint's slug)."""


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Nothing a completion reads may reach the shell's screen (a library's warning included)."""
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        yield


def _typed_words() -> list[str]:
    """The words before the one being completed, from click's protocol (COMP_WORDS, and
    COMP_CWORD: bash and zsh give its index, fish the word itself)."""
    words = split_arg_string(os.environ.get("COMP_WORDS", ""))
    where = os.environ.get("COMP_CWORD", "")
    if where.isdigit():
        return words[1 : int(where)]
    return words[1:-1] if where and words and words[-1] == where else words[1:]


def _params(ctx: click.Context) -> dict[str, Any]:
    """The command's options and PATHS typed so far. Click parses the line without the option
    whose value is being completed, so that `plan dir --target <Tab>` leaves PATHS out of
    `ctx.params`; parse the words again without it."""
    if ctx.params.get("paths") or ctx.params.get("config") or ctx.info_name is None:
        return ctx.params
    args = _typed_words()
    if args and args[-1].startswith("-"):
        args = args[:-1]
    if ctx.info_name in args:
        args = args[args.index(ctx.info_name) + 1 :]
    try:
        with ctx.command.make_context(
            ctx.info_name, args, parent=ctx.parent, resilient_parsing=True
        ) as again:
            return dict(again.params)
    except Exception:  # a line click cannot parse even resiliently: what it parsed before
        return ctx.params


def _project(ctx: click.Context) -> Any:
    """The run's project file as a command would find it, or None (also when it is broken)."""
    from reconciler.project import find_project, load_project

    params = _params(ctx)
    config = params.get("config")
    paths = [Path(p) for p in params.get("paths") or ()]
    file = Path(config) if config else find_project(paths)
    return load_project(file) if file is not None else None


def _roots(ctx: click.Context) -> list[Path]:
    """Where the manifests are: PATHS, else the project's paths and its spaces', else manifests/."""
    from reconciler.project import DEFAULT_PATHS

    given = [Path(p) for p in _params(ctx).get("paths") or ()]
    if given:
        return given
    try:
        project = _project(ctx)
    except Exception:  # a broken project file: the default folder still completes
        project = None
    if project is None:
        return list(DEFAULT_PATHS)
    roots = list(project.paths)
    for spec in project.spaces:
        roots += [p for p in spec.paths if p not in roots]
    return roots or [project.folder / p for p in DEFAULT_PATHS]


def manifest_names(roots: Sequence[Path]) -> list[str]:
    """The names `--target` takes, from every readable manifest below `roots`: a model's or
    dataset's name, an endpoint's slug; sorted, once each. Unreadable files and documents are
    skipped, and so are names still holding a `${var:…}` (only a run knows their value)."""
    from reconciler.manifests import read_paths

    documents, _ = read_paths(roots)
    names: set[str] = set()
    for doc in documents:
        value = doc.value if isinstance(doc.value, dict) else {}
        field = IDENTITY.get(str(value.get("kind")))
        name = value.get(field) if field else None
        if isinstance(name, str) and name and "${" not in name:
            names.add(name)
    return sorted(names)


def _matching(words: Sequence[str], incomplete: str) -> list[CompletionItem]:
    return [CompletionItem(w) for w in words if w.startswith(incomplete)]


def complete_targets(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    """`--target`: the manifests' names."""
    try:
        with _quiet():
            return _matching(manifest_names(_roots(ctx)), incomplete)
    except Exception:  # never a traceback on a Tab press
        return []


def complete_spaces(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    """`--space`: the names of the project file's spaces."""
    try:
        with _quiet():
            project = _project(ctx)
            names = sorted(spec.name for spec in project.spaces) if project is not None else []
            return _matching(names, incomplete)
    except Exception:  # never a traceback on a Tab press
        return []


def script(shell: str, command: click.Command) -> str:
    """The completion script of `shell` for `command`, as `eval "$(…)"` would use it."""
    complete = get_completion_class(shell)
    if complete is None:  # pragma: no cover - SHELLS are click's own
        raise click.UsageError(f"no completion for {shell}")
    return complete(command, {}, PROG, COMPLETE_VAR).source()


@click.command("completion")
@click.argument("shell", type=click.Choice(SHELLS))
@click.pass_context
def completion(ctx: click.Context, shell: str) -> None:
    """Print the shell completion script for SHELL.

    \b
    bash:  eval "$(syft-reconciler completion bash)"        # in ~/.bashrc
    zsh:   eval "$(syft-reconciler completion zsh)"         # in ~/.zshrc
    fish:  syft-reconciler completion fish > ~/.config/fish/completions/syft-reconciler.fish
    """
    try:
        text = script(shell, ctx.find_root().command)
    except RuntimeError as exc:  # click's: no bash to ask for its version
        raise click.ClickException(f"cannot make the {shell} script: {exc}") from None
    click.echo(text)
