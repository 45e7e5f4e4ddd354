"""validate, plan and apply: the commands a pull request and a CI job run."""

from __future__ import annotations

import sys
from typing import Any

import click

from reconciler import render
from reconciler.cli.app import cli
from reconciler.cli.common import (
    bundled_registry,
    connect,
    describe_target,
    emit_json,
    output_option,
    paths_or_default,
    server_options,
    settings_from,
    state,
    warn,
)
from reconciler.errors import (
    EXIT_AUTH,
    EXIT_CONFLICT,
    EXIT_FAILED,
    EXIT_OK,
    InvalidManifests,
)
from reconciler.model import ApplyReport, Outcome, Result


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path())
@output_option("text", "json")
@click.option("--strict", is_flag=True, help="Treat warnings as errors.")
def validate(paths: tuple[str, ...], output: str, strict: bool) -> None:
    """Check manifests offline against the bundled dtype schemas (no server, no secrets)."""
    from reconciler.reconcile import load

    state.output = output
    loaded = load(paths_or_default(paths), bundled_registry())
    if strict and loaded.warnings:
        raise InvalidManifests(loaded.warnings)
    if output == "json":
        emit_json({
            "version": render.JSON_VERSION, "valid": True, "files": loaded.files,
            "models": [m.name for m in loaded.manifests],
            "warnings": [w.as_dict() for w in loaded.warnings], "error": None,
        })
        return
    warn(loaded.warnings)
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

    state.output = output
    settings = settings_from(kw)
    schemas = bundled_registry()
    loaded = load(paths_or_default(paths), schemas)
    manifests, notes = resolve_secrets(loaded, placeholders=settings.sandbox)
    warn(notes)
    with connect(settings) as client:
        observed = observe_and_plan(client, manifests, schemas, adopt=adopt)
        where = describe_target(client)
    the_plan = observed.plan
    allowed = True if replace_all else frozenset(replace)
    if output == "json":
        emit_json(render.plan_json(the_plan, target=client.base_url, tenant=client.tenant,
                                    replace_allowed=allowed, warnings=loaded.warnings))
    elif output == "markdown":
        click.echo(render.plan_markdown(the_plan, target=where))
    else:
        warn(loaded.warnings)
        click.echo(render.plan_text(the_plan, target=where, replace_allowed=allowed))
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
    from reconciler.reconcile import (
        load,
        observe_and_plan,
        registry_facts,
        resolve_secrets,
    )

    state.output = output
    settings = settings_from(kw)
    schemas = bundled_registry()
    loaded = load(paths_or_default(paths), schemas)
    manifests, notes = resolve_secrets(loaded, placeholders=settings.sandbox)
    warn(notes)
    secrets, defaults = registry_facts(schemas)
    options = ApplyOptions(parallelism=parallelism, fail_fast=fail_fast, replace=frozenset(replace),
                           max_create_attempts=settings.retries + 1,
                           replace_all=replace_all, secret_fields=secrets, defaults=defaults)
    with connect(settings, parallelism=parallelism) as client:
        observed = observe_and_plan(client, manifests, schemas, adopt=adopt)
        if output == "text":
            warn(loaded.warnings)
            click.echo(f"Plan for {describe_target(client)}: {render.summary_line(observed.plan)}.")
        progress = _Progress(len([c for c in observed.plan.changes if c.writes]), enabled=output == "text")
        executor = Executor(client, options, on_outcome=progress.outcome)
        report = executor.run(observed.plan)
        progress.done()
    conflicts = [c for c in observed.plan.changes if c.op.value == "conflict"]
    if output == "json":
        data = render.report_json(report, target=client.base_url, tenant=client.tenant)
        data["conflicts"] = [render.change_dict(c) for c in conflicts]
        emit_json(data)
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


