"""The `syft-reconciler` command (the only click import, and the only writer to the terminal).

Each command: options → one call into reconcile/apply → render → exit code. One error handler
(`main`) turns our exceptions into one line and an exit code; a traceback only with --debug.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from reconciler import __version__, render
from reconciler.errors import (
    EXIT_AUTH,
    EXIT_CONFLICT,
    EXIT_FAILED,
    EXIT_OK,
    EXIT_UNEXPECTED,
    EXIT_USAGE,
    InvalidManifests,
    ReconcilerError,
)
from reconciler.model import ApplyReport, Outcome, Result

DEFAULT_PATHS = (Path("manifests"),)
SANDBOX_DB = Path(".syft-space") / "sandbox.db"
log = logging.getLogger("reconciler")


@dataclass
class _Run:
    """What the error handler needs to know about the command that failed."""

    output: str = "text"
    debug: bool = False


_run = _Run()


def _emit_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def _paths(paths: Sequence[str]) -> list[Path]:
    return [Path(p) for p in paths] if paths else list(DEFAULT_PATHS)


def _registry() -> Any:
    from reconciler.schemas import SchemaRegistry

    return SchemaRegistry.load()


# -- shared options -------------------------------------------------------------------------


def output_option(*choices: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def decorate(f: Callable[..., Any]) -> Callable[..., Any]:
        return click.option(
            "--output", "-o", type=click.Choice(choices), default="text", show_default=True,
            help="Output format; json has a top-level \"version\": 1.",
        )(f)
    return decorate


def server_options(f: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.option("--server", envvar="SYFT_SPACE_URL", metavar="URL",
                     help="Syft Space base URL [env SYFT_SPACE_URL]."),
        click.option("--token", envvar="SYFT_SPACE_TOKEN", metavar="TOKEN", show_default=False,
                     help="Admin API key [env SYFT_SPACE_TOKEN]; never printed."),
        click.option("--token-file", type=click.Path(dir_okay=False, path_type=Path),
                     help="Read the admin API key from a file."),
        click.option("--tenant", envvar="SYFT_SPACE_TENANT",
                     help="Tenant (X-Tenant-Name); checked to exist first [env SYFT_SPACE_TENANT]."),
        click.option("--timeout", type=float, default=10.0, show_default=True,
                     help="Seconds to wait for each response."),
        click.option("--retries", type=click.IntRange(0, 20), default=5, show_default=True,
                     help="Retries per request on connect errors, timeouts, 429 and 502/503/504."),
        click.option("--insecure", is_flag=True,
                     help="Allow sending the token over plain http to a non-loopback host."),
        click.option("--ca-cert", type=click.Path(exists=True, dir_okay=False),
                     help="CA bundle for a server with a private CA (TLS is always verified)."),
        click.option("--sandbox", is_flag=True,
                     help=f"Use the embedded local sandbox server (state in {SANDBOX_DB})."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


@dataclass(frozen=True)
class ServerSettings:
    server: str | None
    token: str | None
    token_file: Path | None
    tenant: str | None
    timeout: float
    retries: int
    insecure: bool
    ca_cert: str | None
    sandbox: bool

    def __repr__(self) -> str:  # the token never reaches a log or a traceback
        return f"ServerSettings(server={self.server!r}, tenant={self.tenant!r}, sandbox={self.sandbox})"


def _settings(kw: dict[str, Any]) -> ServerSettings:
    keys = ("server", "token", "token_file", "tenant", "timeout", "retries", "insecure", "ca_cert",
            "sandbox")
    return ServerSettings(**{k: kw.pop(k) for k in keys})


@contextlib.contextmanager
def connect(settings: ServerSettings, *, parallelism: int = 8) -> Iterator[Any]:
    """A SpaceClient for the configured server, or for the embedded sandbox started here."""
    from reconciler.client import RetryPolicy, SpaceClient

    token = settings.token
    if settings.token_file:
        try:
            token = settings.token_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise click.UsageError(f"cannot read --token-file {settings.token_file}: {exc.strerror}") from exc
    with contextlib.ExitStack() as stack:
        if settings.sandbox:
            from reconciler.sandbox import SandboxConfig, SandboxServer

            server = stack.enter_context(SandboxServer(SandboxConfig(token=token), db=SANDBOX_DB))
            url = server.url
            print(f"Using the local sandbox at {url} (state in {SANDBOX_DB})", file=sys.stderr)
        elif settings.server:
            url = settings.server
        else:
            raise click.UsageError(
                "no server: set SYFT_SPACE_URL, pass --server URL, or --sandbox for the local sandbox"
            )
        client = SpaceClient(
            url, token=token, tenant=settings.tenant, timeout=settings.timeout,
            retry=RetryPolicy.with_retries(settings.retries),
            insecure=settings.insecure, ca_cert=settings.ca_cert, max_connections=max(parallelism, 4),
        )
        stack.callback(client.close)
        yield client


def _target(client: Any) -> str:
    return client.base_url + (f" (tenant {client.tenant})" if client.tenant else "")


def _warn(problems: Sequence[Any]) -> None:
    for problem in problems:
        click.echo(str(problem), err=True)


# -- commands -------------------------------------------------------------------------------


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="syft-reconciler")
@click.option("--debug", is_flag=True, help="Show tracebacks and debug logs.")
def cli(debug: bool) -> None:
    """GitOps for Syft Space: keep a space's models in git and converge the server to them."""
    _run.debug = debug
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path())
@output_option("text", "json")
@click.option("--strict", is_flag=True, help="Treat warnings as errors.")
def validate(paths: tuple[str, ...], output: str, strict: bool) -> None:
    """Check manifests offline against the bundled dtype schemas (no server, no secrets)."""
    from reconciler.reconcile import load

    _run.output = output
    loaded = load(_paths(paths), _registry())
    if strict and loaded.warnings:
        raise InvalidManifests(loaded.warnings)
    if output == "json":
        _emit_json({
            "version": render.JSON_VERSION, "valid": True, "files": loaded.files,
            "models": [m.name for m in loaded.manifests],
            "warnings": [w.as_dict() for w in loaded.warnings], "error": None,
        })
        return
    _warn(loaded.warnings)
    click.echo(f"OK: {len(loaded.manifests)} manifest(s) in {loaded.files} file(s) are valid.")


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path())
@server_options
@output_option("text", "json", "markdown")
@click.option("--detailed-exitcode", is_flag=True,
              help="Exit 0 when in sync, 2 when changes are pending, 1 on error (like Terraform).")
@click.option("--adopt", is_flag=True, help="Plan to take over same-named models not created by us.")
@click.option("--replace", "replace", multiple=True, metavar="NAME",
              help="Mark a model whose dtype/configuration changed as allowed to be recreated.")
@click.option("--replace-all", is_flag=True, help="Allow every needed replace.")
def plan(paths: tuple[str, ...], output: str, detailed_exitcode: bool, adopt: bool,
         replace: tuple[str, ...], replace_all: bool, **kw: Any) -> None:
    """Show what apply would change on the server (read-only)."""
    from reconciler.reconcile import load, observe_and_plan, resolve_secrets

    _run.output = output
    settings = _settings(kw)
    registry = _registry()
    loaded = load(_paths(paths), registry)
    manifests, notes = resolve_secrets(loaded, placeholders=settings.sandbox)
    _warn(notes)
    with connect(settings) as client:
        observed = observe_and_plan(client, manifests, registry, adopt=adopt)
        target = _target(client)
    the_plan = observed.plan
    allowed = True if replace_all else frozenset(replace)
    if output == "json":
        _emit_json(render.plan_json(the_plan, target=client.base_url, tenant=client.tenant,
                                    replace_allowed=allowed, warnings=loaded.warnings))
    elif output == "markdown":
        click.echo(render.plan_markdown(the_plan, target=target))
    else:
        _warn(loaded.warnings)
        click.echo(render.plan_text(the_plan, target=target, replace_allowed=allowed))
    if detailed_exitcode and not the_plan.is_empty:
        sys.exit(2)


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path())
@server_options
@output_option("text", "json")
@click.option("--parallelism", "-p", type=click.IntRange(1, 256), default=8, show_default=True,
              help="Requests in flight at once.")
@click.option("--fail-fast", is_flag=True, help="Stop after the first failed model.")
@click.option("--adopt", is_flag=True, help="Take over same-named models not created by the reconciler.")
@click.option("--replace", "replace", multiple=True, metavar="NAME",
              help="Recreate this model (delete + create) if its dtype/configuration changed.")
@click.option("--replace-all", is_flag=True, help="Recreate every model whose dtype/configuration changed.")
def apply(paths: tuple[str, ...], output: str, parallelism: int, fail_fast: bool, adopt: bool,
          replace: tuple[str, ...], replace_all: bool, **kw: Any) -> None:
    """Bring the server in line with the manifests (creates, updates; replaces when asked)."""
    from reconciler.apply import ApplyOptions, Executor
    from reconciler.reconcile import load, observe_and_plan, registry_facts, resolve_secrets

    _run.output = output
    settings = _settings(kw)
    registry = _registry()
    loaded = load(_paths(paths), registry)
    manifests, notes = resolve_secrets(loaded, placeholders=settings.sandbox)
    _warn(notes)
    secrets, defaults = registry_facts(registry)
    options = ApplyOptions(parallelism=parallelism, fail_fast=fail_fast, replace=frozenset(replace),
                           max_create_attempts=settings.retries + 1,
                           replace_all=replace_all, secret_fields=secrets, defaults=defaults)
    with connect(settings, parallelism=parallelism) as client:
        observed = observe_and_plan(client, manifests, registry, adopt=adopt)
        if output == "text":
            _warn(loaded.warnings)
            click.echo(f"Plan for {_target(client)}: {render.summary_line(observed.plan)}.")
        progress = _Progress(len([c for c in observed.plan.changes if c.writes]), enabled=output == "text")
        executor = Executor(client, options, on_outcome=progress.outcome)
        report = executor.run(observed.plan)
        progress.done()
    conflicts = [c for c in observed.plan.changes if c.op.value == "conflict"]
    if output == "json":
        data = render.report_json(report, target=client.base_url, tenant=client.tenant)
        data["conflicts"] = [render.change_dict(c) for c in conflicts]
        _emit_json(data)
    else:
        for change in conflicts:
            click.echo(f"conflict {change.name}: {change.reason}")
        click.echo(render.report_summary(report))
    sys.exit(_apply_exit(report, conflicts=bool(conflicts)))


def _apply_exit(report: ApplyReport, *, conflicts: bool) -> int:
    if report.interrupted:
        return 130
    failed = [o for o in report.outcomes if not o.ok]
    if not failed and not conflicts:
        return EXIT_OK
    if any(o.error_kind == "auth" for o in failed):
        return EXIT_AUTH
    if (conflicts or failed) and all(o.result is Result.CONFLICT for o in failed):
        return EXIT_CONFLICT
    return EXIT_FAILED


class _Progress:
    """One line per model on stdout; on a terminal also a counter on stderr."""

    def __init__(self, total: int, *, enabled: bool) -> None:
        self.total = total
        self.seen = 0
        self.enabled = enabled
        self.tty = enabled and sys.stderr.isatty() and total >= 20

    def outcome(self, outcome: Outcome) -> None:
        self.seen += 1
        if not self.enabled:
            return
        if self.tty:
            click.echo("\r\033[K", nl=False, err=True)
        click.echo(render.outcome_line(outcome))
        if self.tty:
            click.echo(f"[{self.seen}/{self.total}]", nl=False, err=True)

    def done(self) -> None:
        if self.tty:
            click.echo("\r\033[K", nl=False, err=True)


@cli.group()
def sandbox() -> None:
    """The local Syft Space sandbox server."""


@sandbox.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=8080, show_default=True)
@click.option("--token", envvar="SYFT_SANDBOX_TOKEN", help="Admin API key the sandbox requires.")
@click.option("--db", default=str(SANDBOX_DB), show_default=True, help="SQLite file, or :memory:.")
@click.option("--latency-ms", type=click.IntRange(0), default=0, help="Delay every response (not blocking others).")
@click.option("--multi-tenancy", is_flag=True, help="Require X-Tenant-Name, like SYFT_ENABLE_MULTI_TENANCY.")
@click.option("--types", "types", default=None, help="Comma-separated dtypes to offer (default: all bundled).")
@click.option("--redact-secrets", is_flag=True, help="Omit secret fields from responses, as newer servers do.")
@click.option("--fail-503-rate", type=click.FloatRange(0, 1), default=0.0, help="Share of requests answered 503.")
@click.option("--fail-429-rate", type=click.FloatRange(0, 1), default=0.0, help="Share answered 429 + Retry-After.")
@click.option("--drop-after-commit-rate", type=click.FloatRange(0, 1), default=0.0,
              help="Share of writes whose response is lost after the write committed.")
@click.option("--race-500-rate", type=click.FloatRange(0, 1), default=0.0,
              help="Share of creates of a taken name answered 500 text/plain (the real server's race).")
@click.option("--seed", type=int, default=None, help="Seed for the fault draws.")
def sandbox_serve(host: str, port: int, token: str | None, db: str, latency_ms: int, multi_tenancy: bool,
                  types: str | None, redact_secrets: bool, fail_503_rate: float, fail_429_rate: float,
                  drop_after_commit_rate: float, race_500_rate: float, seed: int | None) -> None:
    """Run the sandbox in the foreground until Ctrl-C."""
    from reconciler.sandbox import SandboxConfig, serve

    registry = _registry()
    chosen = tuple(t.strip() for t in types.split(",") if t.strip()) if types else None
    unknown = [t for t in chosen or () if t not in registry.dtypes]
    if unknown:
        raise click.BadParameter(f"unknown type(s) {', '.join(unknown)}; bundled: {', '.join(registry.dtypes)}",
                                 param_hint="--types")
    config = SandboxConfig(
        token=token, multi_tenancy=multi_tenancy, types=chosen, redact_secrets=redact_secrets,
        latency_ms=latency_ms, fail_503_rate=fail_503_rate, fail_429_rate=fail_429_rate,
        drop_after_commit_rate=drop_after_commit_rate, race_500_rate=race_500_rate, seed=seed,
    )
    click.echo(f"Syft Space sandbox on http://{host}:{port} (db {db}); Ctrl-C stops it.", err=True)
    serve(config, db=db, host=host, port=port)


# -- the one error handler ------------------------------------------------------------------


def _report_error(error: ReconcilerError) -> None:
    if _run.output == "json":
        _emit_json(render.error_json(error))
        return
    if isinstance(error, InvalidManifests):
        for problem in error.problems:
            click.echo(str(problem), err=True)
    click.echo(f"error: {error.message}", err=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (tests call this in-process)."""
    global _run
    _run = _Run()
    try:
        cli.main(args=list(argv) if argv is not None else None, prog_name="syft-reconciler",
                 standalone_mode=False)
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code if exc.exit_code else EXIT_USAGE
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return 130
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except ReconcilerError as exc:
        if _run.debug:
            traceback.print_exc()
        _report_error(exc)
        return exc.exit_code
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        return 130
    except Exception as exc:  # the last line of defence: one line, no traceback without --debug
        if _run.debug:
            traceback.print_exc()
        click.echo(f"unexpected error: {type(exc).__name__}: {exc} (run with --debug for the traceback)",
                   err=True)
        return EXIT_UNEXPECTED
    return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

_ = (EXIT_CONFLICT, os)  # re-exported names used by tests and watch
