"""The multi-space options (--space, --shard, --shards, --spaces-parallelism) and the dispatch at
the top of validate, plan, apply, watch and export: a project file with `spaces:` runs the command
on each selected space (spaces.py) and prints a section per space."""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from click.core import ParameterSource

from reconciler.cli.completion import complete_spaces
from reconciler.cli.options import emit_json

if TYPE_CHECKING:
    from reconciler.project import Project
    from reconciler.spaces import Shard

ONE_SPACE_OPTIONS = ("server", "token", "token_file", "tenant", "sandbox", "var_files")
"""Options naming the one target of a run without `spaces:`; with spaces each space names its own
(its server, tenant, token and var_files)."""


def spaces_options(f: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.option(
            "--space",
            "space_globs",
            multiple=True,
            metavar="GLOB",
            shell_complete=complete_spaces,
            help="With `spaces:` in the project file: only the spaces whose name matches (repeatable).",
        ),
        click.option(
            "--shard",
            metavar="I/N",
            envvar="SYFT_RECONCILER_SHARD",
            help="Take only the spaces whose name hashes into shard I of N [env SYFT_RECONCILER_SHARD].",
        ),
        click.option(
            "--shards",
            type=click.IntRange(1, 10_000),
            envvar="SYFT_RECONCILER_SHARDS",
            metavar="N",
            help="Shard by replica: N shards, this process's from its host name NAME-<ordinal> "
            "(a StatefulSet pod) [env SYFT_RECONCILER_SHARDS]; --shard wins.",
        ),
        click.option(
            "--spaces-parallelism",
            type=click.IntRange(1, 256),
            default=4,
            show_default=True,
            help="Spaces worked on at once (each with its own --parallelism requests).",
        ),
    ]
    for option in reversed(options):
        f = option(f)
    return f


@dataclass(frozen=True)
class MultiSpace:
    """A run over the project file's spaces: what they share, and which ones it takes."""

    run: Any  # space_tasks.Run
    specs: tuple[Any, ...]
    shard: Any
    parallelism: int

    def finish(self, command: str, output: str, task: Any, interrupt: Any = None) -> None:
        """Run `task` on every selected space, print each one's section, exit with the summary.
        The first SIGINT/SIGTERM starts no more spaces (`interrupt`, spaces.Interrupt)."""
        from reconciler import spaces
        from reconciler.signals import graceful

        interrupt = interrupt or spaces.Interrupt()
        with graceful(interrupt, then="previous"):
            results = spaces.run_each(self.specs, task, parallelism=self.parallelism, interrupt=interrupt)
        code = spaces.summary_exit([r.exit_code for r in results])
        if output == "json":
            emit_json(spaces.run_json(command, results, shard=self.shard))
        else:
            from reconciler.cli.terminal import echo

            for result in results:
                echo(result.header() if output != "markdown" else f"## Space `{result.spec.name}`\n")
                for note in result.notes:
                    echo(note, err=True)
                if result.lines:
                    echo("\n".join(result.lines))
            failed = [r for r in results if r.exit_code != 0]
            echo(
                f"{len(results) - len(failed)} of {len(results)} space(s) succeeded"
                + (
                    f"; failed: {', '.join(f'{r.spec.name} ({r.exit_code})' for r in failed)}"
                    if failed
                    else ""
                )
                + "."
            )
        sys.exit(code)


def spaces_from(
    paths: Sequence[str], kw: dict[str, Any], *, parallelism: int = 8, one_space: bool = False
) -> MultiSpace | None:
    """The multi-space run when the project file has `spaces:`, else None (a one-space run as
    ever). Pops the multi-space options from `kw`; leaves the rest for the one-space path."""
    globs, shard_text, shards, spaces_parallelism = (
        tuple(kw.pop("space_globs")),
        kw.pop("shard"),
        kw.pop("shards"),
        kw.pop("spaces_parallelism"),
    )
    project = None if one_space else _project(paths, kw)  # a saved plan: its own single target
    if project is None or not project.spaces:
        if globs or shard_text:
            raise click.UsageError(
                "--space and --shard need `spaces:` in the project file (syft-reconciler.yaml or --config)"
            )
        return None
    if paths:
        raise click.UsageError(
            f"{project.file} declares spaces: each takes its manifests from its `paths:`; drop PATHS"
        )
    from reconciler import space_tasks, spaces  # httpx and more: only for a multi-space run

    _refuse_one_space_options(project.file)
    owner = kw.get("owner")
    if owner is not None:
        _check_one_owner(project, owner)
    shard = _shard(shard_text, shards)
    run = space_tasks.Run(
        project,
        spaces.Connection(
            timeout=kw["timeout"],
            retries=kw["retries"],
            insecure=kw["insecure"],
            ca_cert=kw["ca_cert"],
            parallelism=parallelism,
        ),
        owner=owner,
    )
    return MultiSpace(run, spaces.select(project.spaces, globs, shard), shard, spaces_parallelism)


def _project(paths: Sequence[str], kw: dict[str, Any]) -> Project | None:
    """The project file: --config's, else the one found at or above
    the paths; None without one."""
    from reconciler.project import find_project, load_project

    file = kw["config"] if kw.get("config") is not None else find_project([Path(p) for p in paths])
    return load_project(file) if file is not None else None


def _check_one_owner(project: Project, owner: str) -> None:
    """--owner (or SYFT_RECONCILER_OWNER) gives every space one owner: a usage error when two of
    the project's spaces drive the same space, which would then prune each other's objects."""
    from reconciler.ownership import check_owner
    from reconciler.project import describe_space, same_space

    if why := check_owner(owner):
        raise click.UsageError(f"--owner: {why}")
    pair = same_space(project.spaces)
    if pair is not None:
        a, b = pair
        raise click.UsageError(
            f"--owner {owner} (or SYFT_RECONCILER_OWNER) gives every space one owner, but {a.name} "
            f"({a.where}) and {b.name} ({b.where}) drive the same space, "
            f"{describe_space(a.server, a.tenant)}: each would take the other's objects for its "
            f"own, and --prune in one would delete them; drop --owner and give each space its own "
            f"`owner:` in {project.file}"
        )


def _refuse_one_space_options(project_file: Path) -> None:
    """A usage error for --server, --token… given on the command line: each space names its own."""
    ctx = click.get_current_context()
    given = [
        name for name in ONE_SPACE_OPTIONS if ctx.get_parameter_source(name) is ParameterSource.COMMANDLINE
    ]
    if given:
        opts = {p.name: p.opts[0] for p in ctx.command.params}
        flags = ", ".join(opts.get(g, g) for g in given)
        raise click.UsageError(
            f"{flags}: with `spaces:` in {project_file}, each space names its own server, tenant, "
            "token and var_files"
        )


def _shard(shard_text: str | None, shards: int | None) -> Shard | None:
    """This process's shard: --shard I/N, else from the host name with --shards N;
    None for all spaces."""
    from reconciler import spaces

    if shard_text:
        return spaces.Shard.parse(shard_text)
    if shards:
        return spaces.Shard.from_hostname(os.environ.get("HOSTNAME") or socket.gethostname(), shards)
    return None
