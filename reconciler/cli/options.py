"""What the commands share: the run's state, paths, the output, server, instance and plan options,
and connecting to a server (or to the embedded sandbox)."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from reconciler import render
from reconciler.cli.completion import complete_targets
from reconciler.errors import BadSetting
from reconciler.lock import STATE_DIR

DEFAULT_PATHS = (Path("manifests"),)
SANDBOX_DB = Path(STATE_DIR) / "sandbox.db"


@dataclass
class RunState:
    """What the error handler needs to know about the command that failed: the click context's
    object (`main()` makes one per run; no global state)."""

    output: str = "text"
    debug: bool = False
    no_color: bool = False
    live: Any = None
    """The apply progress bar while it is on the terminal (cli/terminal.py): text goes above it."""


def current() -> RunState:
    """This run's state (a fresh one outside a click context, e.g. in a unit test)."""
    ctx = click.get_current_context(silent=True)
    found = ctx.find_object(RunState) if ctx is not None else None
    return found if found is not None else RunState()


def emit_json(data: Any) -> None:
    """One JSON document on stdout: scrubbed, and inert on a terminal (redact.py)."""
    from reconciler import redact

    text = json.dumps(redact.scrub_obj(data), indent=2, ensure_ascii=False, default=str)
    click.echo(redact.json_safe(text))


def paths_or_default(paths: Sequence[str]) -> list[Path]:
    return [Path(p) for p in paths] if paths else list(DEFAULT_PATHS)


def sandbox_db(db: str | Path = SANDBOX_DB) -> str:
    """The sandbox's database, its folder made first: the state folder `.syft-space/` (with its
    `.gitignore`, lock.state_dir) when it is the default, any other folder as it is."""
    from reconciler.lock import state_dir

    path = Path(db)
    if str(db) == ":memory:":
        return str(db)
    try:
        if path.parent.name == STATE_DIR:
            state_dir(path.parent.parent)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BadSetting(f"cannot make the sandbox's folder {path.parent}: {exc.strerror or exc}") from None
    return str(db)


def bundled_registry() -> Any:
    from reconciler.schemas import SchemaRegistry

    return SchemaRegistry.load()


# -- server options -------------------------------------------------------------------------


def _remember_no_color(ctx: click.Context, param: click.Parameter, value: bool) -> bool:
    if value:
        current().no_color = True
    return value


def _remember_output(ctx: click.Context, param: click.Parameter, value: str) -> str:
    current().output = value  # so that an error is reported in the format asked for
    return value


def output_option(*choices: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """--output, and --no-color beside it on every command that prints (cli/terminal.py)."""

    def decorate(f: Callable[..., Any]) -> Callable[..., Any]:
        f = click.option(
            "--no-color",
            "--no-colour",
            "no_color",
            is_flag=True,
            expose_value=False,
            callback=_remember_no_color,
            is_eager=True,
            help="Plain text even on a terminal (also NO_COLOR=1; FORCE_COLOR=1 forces colour).",
        )(f)
        return click.option(
            "--output",
            "-o",
            type=click.Choice(choices),
            default="text",
            show_default=True,
            callback=_remember_output,
            is_eager=True,
            help='Output format; json has a top-level "version": 3.',
        )(f)

    return decorate


def server_options(f: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.option(
            "--server",
            envvar="SYFT_SPACE_URL",
            metavar="URL",
            help="Syft Space base URL [env SYFT_SPACE_URL].",
        ),
        click.option(
            "--token",
            envvar="SYFT_SPACE_TOKEN",
            metavar="TOKEN",
            show_default=False,
            help="Admin API key [env SYFT_SPACE_TOKEN]; never printed.",
        ),
        click.option(
            "--token-file",
            type=click.Path(dir_okay=False, path_type=Path),
            help="Read the admin API key from a file.",
        ),
        click.option(
            "--tenant",
            envvar="SYFT_SPACE_TENANT",
            help="Tenant (X-Tenant-Name); checked to exist first [env SYFT_SPACE_TENANT].",
        ),
        click.option(
            "--timeout",
            type=float,
            default=10.0,
            show_default=True,
            help="Seconds to wait for each response.",
        ),
        click.option(
            "--retries",
            type=click.IntRange(0, 20),
            default=5,
            show_default=True,
            help="Retries per request on connect errors, timeouts, 429 and 502/503/504.",
        ),
        click.option(
            "--insecure", is_flag=True, help="Allow sending the token over plain http to a non-loopback host."
        ),
        click.option(
            "--ca-cert",
            type=click.Path(exists=True, dir_okay=False),
            help="CA bundle for a server with a private CA (TLS is always verified).",
        ),
        click.option(
            "--sandbox", is_flag=True, help=f"Use the embedded local sandbox server (state in {SANDBOX_DB})."
        ),
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


def settings_from(kw: dict[str, Any]) -> ServerSettings:
    keys = ("server", "token", "token_file", "tenant", "timeout", "retries", "insecure", "ca_cert", "sandbox")
    return ServerSettings(**{k: kw.pop(k) for k in keys})


MAX_TOKEN_FILE = 64 * 1024


def _read_token_file(path: Path) -> str:
    from reconciler.references import read_secret_file

    try:
        return read_secret_file(path, limit=MAX_TOKEN_FILE)
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or "not UTF-8 text"
        raise BadSetting(f"cannot read --token-file {path}: {reason}") from None


def check_token(token: str | None) -> str | None:
    """The token as it goes into `Authorization: Bearer`, registered with the scrubber first.

    Surrounding whitespace (a CI secret saved with its line end) is stripped, as for --token-file;
    whitespace, control or non-ASCII characters inside are refused: an HTTP library would otherwise
    quote the whole header in its error. The message never shows the token.
    """
    from reconciler import redact

    if token is None:
        return None
    redact.register(token, token.strip())
    token = token.strip()
    if not token:
        raise BadSetting("the token (--token / SYFT_SPACE_TOKEN / --token-file) is empty")
    bad = next((i for i, c in enumerate(token) if not "!" <= c <= "~"), None)
    if bad is not None:
        what = (
            "whitespace"
            if token[bad].isspace()
            else "a control character"
            if ord(token[bad]) < 128
            else "a non-ASCII character"
        )
        raise BadSetting(
            f"the token contains {what} at position {bad + 1} of {len(token)}; an API key is printable "
            "ASCII (check how the secret was saved)"
        )
    return token


def check_tenant_name(tenant: str | None) -> None:
    """X-Tenant-Name is an HTTP header: printable ASCII only."""
    if tenant is None:
        return
    if tenant == "" or any(not " " <= c <= "~" for c in tenant) or tenant != tenant.strip():
        raise click.UsageError(
            f"tenant name {tenant!a} cannot be sent as the X-Tenant-Name header: use printable ASCII "
            "without surrounding spaces"
        )


@contextlib.contextmanager
def connect(
    settings: ServerSettings,
    *,
    parallelism: int = 8,
    sleep: Callable[[float], Any] | None = None,
    on_wait: Callable[[Any], None] | None = None,
) -> Iterator[Any]:
    """A SpaceClient for the configured server, or for the embedded sandbox started here.

    `sleep` waits between retries (the watch daemon passes its stop event's wait, so that a stop
    cuts a retry's wait short)."""
    import time

    from reconciler.backoff import Backoff
    from reconciler.client import SpaceClient

    token = settings.token
    if settings.token_file:
        token = _read_token_file(settings.token_file)
    token = check_token(token)
    check_tenant_name(settings.tenant)
    if settings.sandbox and settings.server:
        raise click.UsageError(
            "--sandbox and --server (or SYFT_SPACE_URL) both name a server: keep one "
            "(unset SYFT_SPACE_URL to use the sandbox)"
        )
    with contextlib.ExitStack() as stack:
        if settings.sandbox:
            from reconciler.cli.embedded import sandbox_module

            sandbox = sandbox_module()
            server = stack.enter_context(
                sandbox.SandboxServer(sandbox.SandboxConfig(token=token), db=sandbox_db())
            )
            url = server.url
            print(f"Using the local sandbox at {url} (state in {SANDBOX_DB})", file=sys.stderr)
        elif settings.server:
            url = settings.server
        else:
            raise click.UsageError(
                "no server: set SYFT_SPACE_URL, pass --server URL, or --sandbox for the local sandbox"
            )
        client = SpaceClient(
            url,
            token=token,
            tenant=settings.tenant,
            timeout=settings.timeout,
            retry=Backoff.with_retries(settings.retries),
            insecure=settings.insecure,
            ca_cert=settings.ca_cert,
            max_connections=max(parallelism, 4),
            sleep=sleep or time.sleep,
            on_wait=on_wait or _say_once(),
        )
        stack.callback(client.close)
        yield client


def _say_once() -> Callable[[Any], None]:
    """Waiting is visible: the first wait for a busy or unreachable server is said on stderr, with
    the next attempt's time; later ones are not (the end result is reported either way)."""
    said = False

    def say(waiting: Any) -> None:
        nonlocal said
        if not said:
            said = True
            _say(f"warning: {waiting}")

    return say


def describe_target(client: Any) -> str:
    return str(client.base_url) + (f" (tenant {client.tenant})" if client.tenant else "")


def warn(problems: Sequence[Any], *, verbose: bool = False) -> None:
    """Warnings on stderr, repeated ones folded unless `verbose` (fold_warnings); JSON output
    keeps every one (it is for machines)."""
    for line in render.fold_warnings(problems, verbose=verbose):
        _say(line)


def _say(text: str) -> None:
    """A line on stderr, above the progress bar if one is live."""
    from reconciler.cli.terminal import echo

    echo(text, err=True)


# -- the instance: owner, project file, selection ----------------------------------------------


def instance_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """--owner and --config: who this run acts for (project.py)."""
    f = click.option(
        "--config",
        "config",
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        help="The project file (default: syft-reconciler.yaml at or above the manifests).",
    )(f)
    return click.option(
        "--owner",
        envvar="SYFT_RECONCILER_OWNER",
        metavar="NAME",
        help="This repository's owner name: the tag on the objects it creates; prune, "
        "replace and self-heal touch only its objects [env SYFT_RECONCILER_OWNER; "
        "default: owner: in syft-reconciler.yaml].",
    )(f)


def instance_from(paths: Sequence[str], kw: dict[str, Any]) -> Any:
    """The run's Instance from PATHS, --owner and --config (popped from `kw`); a saved plan among
    PATHS is a usage error (it would be read as a manifest with twenty unknown fields)."""
    from reconciler.project import resolve_instance

    for path in paths:
        if is_saved_plan(Path(path)):
            raise BadSetting(f"{path} is a saved plan: apply it alone (syft-reconciler apply {path})")
    return resolve_instance(paths, owner=kw.pop("owner"), config=kw.pop("config"))


def is_saved_plan(path: Path) -> bool:
    """Whether `path` is a file that `plan --out` wrote, whatever its name (saved_plan.py)."""
    from reconciler.saved_plan import KIND, MAX_FILE

    try:
        if not path.is_file() or path.stat().st_size > MAX_FILE:
            return False
        data = path.read_bytes()
    except OSError:
        return False
    if KIND.encode() not in data:  # a manifest: not parsed as JSON
        return False
    try:
        parsed = json.loads(data)
    except (ValueError, RecursionError):
        return False
    return isinstance(parsed, dict) and parsed.get("kind") == KIND


class MaxDeleteType(click.ParamType):  # type: ignore[type-arg]
    """`--max-delete N` or `--max-delete unlimited`."""

    name = "N|unlimited"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, int) or value == "unlimited":
            return value
        try:
            number = int(value)
        except ValueError:
            self.fail(f"{value!r} is not a whole number or `unlimited`", param, ctx)
        if number < 0:
            self.fail(f"{number} is negative", param, ctx)
        return number


def selection_from(selectors: Sequence[str], targets: Sequence[str]) -> Any:
    from reconciler.selection import Selection

    try:
        return Selection.from_options(selectors, targets)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="'--selector' / '-l'") from exc


def lock_for(instance: Any, settings: ServerSettings, *, command: str, shared: bool) -> Any:
    """The instance's lock on the target space (lock.py), as a context manager."""
    from reconciler.lock import space_lock
    from reconciler.project import lock_key

    target = f"sandbox:{SANDBOX_DB.resolve()}" if settings.sandbox else (settings.server or "")
    return space_lock(instance.home, lock_key(target, settings.tenant), command=command, shared=shared)


def var_file_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--var-file",
        "var_files",
        multiple=True,
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        help="YAML file of NAME: value for ${var:NAME} in manifests (repeatable; later files win).",
    )(f)


# -- plan options: what a run plans and may do --------------------------------------------------


def plan_options(f: Any) -> Any:
    """The options that change what is planned: shared by plan, apply and watch."""
    for option in reversed(
        [
            click.option(
                "--adopt",
                is_flag=True,
                help="Take over same-named objects (models, datasets, endpoints) not created by the reconciler "
                "(or with the legacy tag).",
            ),
            click.option(
                "--adopt-from",
                "adopt_from",
                multiple=True,
                metavar="OWNER",
                help="Also take over same-named objects of this other owner (repeatable).",
            ),
            click.option(
                "--prune",
                is_flag=True,
                help="Delete this owner's objects that are no longer in the manifests (needs an owner).",
            ),
            click.option(
                "--replace",
                "replace",
                multiple=True,
                metavar="NAME",
                help="Recreate this model, dataset or endpoint (delete + create) if a field that cannot change "
                "in place changed.",
            ),
            click.option(
                "--replace-all",
                is_flag=True,
                help="Recreate every object whose change cannot be made in place.",
            ),
            click.option(
                "--selector",
                "-l",
                "selectors",
                multiple=True,
                metavar="KEY=GLOB",
                help="Act only on objects whose name (an endpoint's slug), dtype or a tag matches (name=gpt-*, "
                "dtype=openai, tag=prod; repeatable, all must match).",
            ),
            click.option(
                "--target",
                "targets",
                multiple=True,
                metavar="NAME",
                shell_complete=complete_targets,
                help="Act only on the object of this name (a model, a dataset, an endpoint slug; repeatable); "
                "nothing else is created, changed or deleted.",
            ),
            click.option(
                "--max-delete",
                type=MaxDeleteType(),
                default=None,
                help="Deletions (prune and replace) allowed in one run; default: at most 10 and at "
                "most half of this owner's models. `unlimited` lifts the limit.",
            ),
            click.option("--allow-empty", is_flag=True, help="With --prune: allow an empty manifest set."),
        ]
    ):
        f = option(f)
    return f


PLAN_OPTION_KEYS = (
    "adopt",
    "adopt_from",
    "prune",
    "replace",
    "replace_all",
    "selectors",
    "targets",
    "max_delete",
    "allow_empty",
)


def plan_options_from(kw: dict[str, Any]) -> Any:
    """The PlanOptions value from the options plan_options added (popped from `kw`)."""
    from reconciler.plan import PlanOptions

    values = {k: kw.pop(k) for k in PLAN_OPTION_KEYS}
    selection_from(values["selectors"], values["targets"])  # a malformed selector is a usage error
    for key in ("adopt_from", "replace", "selectors", "targets"):
        values[key] = tuple(values[key])
    return PlanOptions(**values)
