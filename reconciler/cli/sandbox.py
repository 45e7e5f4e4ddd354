"""`sandbox serve`: the local Syft Space stand-in in the foreground."""

from __future__ import annotations

import click

from reconciler.cli.app import cli
from reconciler.cli.options import SANDBOX_DB, bundled_registry, sandbox_db


@cli.group()
def sandbox() -> None:
    """The local Syft Space sandbox server."""


@sandbox.command("serve")
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on (loopback by default: the sandbox has no TLS).",
)
@click.option(
    "--port", type=int, default=8080, show_default=True, help="Port to listen on (0: any free one)."
)
@click.option("--token", envvar="SYFT_SANDBOX_TOKEN", help="Admin API key the sandbox requires.")
@click.option("--db", default=str(SANDBOX_DB), show_default=True, help="SQLite file, or :memory:.")
@click.option(
    "--latency-ms", type=click.IntRange(0), default=0, help="Delay every response (not blocking others)."
)
@click.option("--multi-tenancy", is_flag=True, help="Require X-Tenant-Name, like SYFT_ENABLE_MULTI_TENANCY.")
@click.option(
    "--types", "types", default=None, help="Comma-separated dtypes to offer (default: all bundled)."
)
@click.option(
    "--redact-secrets", is_flag=True, help="Omit secret fields from responses, as newer servers do."
)
@click.option(
    "--provisioner",
    type=click.Choice(["ok", "missing"]),
    default="ok",
    show_default=True,
    help="Imitate a server with or without the chroma process of local_file/wordpress datasets.",
)
@click.option(
    "--fail-503-rate", type=click.FloatRange(0, 1), default=0.0, help="Share of requests answered 503."
)
@click.option(
    "--fail-429-rate", type=click.FloatRange(0, 1), default=0.0, help="Share answered 429 + Retry-After."
)
@click.option(
    "--drop-after-commit-rate",
    type=click.FloatRange(0, 1),
    default=0.0,
    help="Share of writes whose response is lost after the write committed.",
)
@click.option(
    "--race-500-rate",
    type=click.FloatRange(0, 1),
    default=0.0,
    help="Share of creates of a taken name answered 500 text/plain (the real server's race).",
)
@click.option(
    "--reset-rate",
    type=click.FloatRange(0, 1),
    default=0.0,
    help="Share of requests whose connection closes before they are processed.",
)
@click.option(
    "--slow-rate",
    type=click.FloatRange(0, 1),
    default=0.0,
    help="Share of requests answered --slow-ms late (after their write committed).",
)
@click.option(
    "--slow-ms",
    type=click.IntRange(0),
    default=5000,
    show_default=True,
    help="How late a --slow-rate answer comes (after its write committed).",
)
@click.option("--seed", type=int, default=None, help="Seed for the fault draws.")
def sandbox_serve(
    host: str,
    port: int,
    token: str | None,
    db: str,
    latency_ms: int,
    multi_tenancy: bool,
    types: str | None,
    redact_secrets: bool,
    provisioner: str,
    fail_503_rate: float,
    fail_429_rate: float,
    drop_after_commit_rate: float,
    race_500_rate: float,
    reset_rate: float,
    slow_rate: float,
    slow_ms: int,
    seed: int | None,
) -> None:
    """Run the sandbox in the foreground until Ctrl-C."""
    from reconciler.cli.embedded import sandbox_module

    stack = sandbox_module()
    schemas = bundled_registry()
    chosen = tuple(t.strip() for t in types.split(",") if t.strip()) if types else None
    unknown = [t for t in chosen or () if t not in schemas.dtypes]
    if unknown:
        raise click.BadParameter(
            f"unknown type(s) {', '.join(unknown)}; bundled: {', '.join(schemas.dtypes)}",
            param_hint="--types",
        )
    config = stack.SandboxConfig(
        token=token,
        multi_tenancy=multi_tenancy,
        types=chosen,
        redact_secrets=redact_secrets,
        provisioner=provisioner,
        latency_ms=latency_ms,
        fail_503_rate=fail_503_rate,
        fail_429_rate=fail_429_rate,
        drop_after_commit_rate=drop_after_commit_rate,
        race_500_rate=race_500_rate,
        reset_rate=reset_rate,
        slow_rate=slow_rate,
        slow_ms=slow_ms,
        seed=seed,
    )
    click.echo(f"Syft Space sandbox on http://{host}:{port} (db {db}); Ctrl-C stops it.", err=True)
    stack.serve(config, db=sandbox_db(db), host=host, port=port)
