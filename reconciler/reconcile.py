"""One reconcile round, as plan, apply and watch share it: load → validate → resolve → observe → plan.

Everything that can be refused is refused before the first write: invalid manifests, missing
secrets, an unknown tenant, a dtype the target server does not offer. Then the executor runs.
"""

from __future__ import annotations

import dataclasses
import gc
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reconciler import forked, redact, references
from reconciler import manifests as manifest_files
from reconciler.errors import InvalidManifests, ReconcilerError
from reconciler.model import Manifest, Plan, Problem, RemoteModel
from reconciler.plan import plan as make_plan
from reconciler.schemas import SchemaRegistry
from reconciler.validate import resolve, validate
from reconciler.variables import substitute

if TYPE_CHECKING:  # httpx costs ~100 ms to import; validate never needs it
    from reconciler.client import SpaceClient


@dataclass(frozen=True)
class Loaded:
    manifests: tuple[Manifest, ...]
    warnings: tuple[Problem, ...]
    files: int


def load_variables(var_files: Sequence[Path]) -> dict[str, Any]:
    """Merge the `--var-file`s in order (later files win); raise with every problem."""
    merged: dict[str, Any] = {}
    problems: list[Problem] = []
    for path in var_files:
        found, more = manifest_files.read_variables(path)
        merged.update(found)
        problems.extend(more)
    if problems:
        raise InvalidManifests(problems)
    return merged


def load(
    paths: Sequence[Path], registry: SchemaRegistry, *, variables: Mapping[str, Any] | None = None,
    find: Callable[[Sequence[Path]], tuple[list[Path], list[Problem]]] = manifest_files.find_files,
    read: Callable[[Path], tuple[list[manifest_files.Document], list[Problem]]] = manifest_files.read_file,
) -> Loaded:
    """Read and validate every manifest below `paths`; raise with every problem if any is wrong.

    `find` and `read` default to the file system; the watch daemon passes its parse cache, or
    the files committed at git HEAD.
    """
    # Loading builds many small objects that all stay alive; the cyclic GC would rescan them again
    # and again (a third of the time at 10,000 manifests). They hold no cycles: pause it.
    enabled = gc.isenabled()
    gc.disable()
    try:
        return _load(paths, registry, variables or {}, find, read)
    finally:
        if enabled:
            gc.enable()


PARALLEL_MIN_FILES = 2000  # below this a fork costs more than it saves


def _load(
    paths: Sequence[Path], registry: SchemaRegistry, variables: Mapping[str, Any],
    find: Callable[[Sequence[Path]], tuple[list[Path], list[Problem]]],
    read: Callable[[Path], tuple[list[manifest_files.Document], list[Problem]]],
) -> Loaded:
    files, problems = find(paths)
    if read is manifest_files.read_file and len(files) >= PARALLEL_MIN_FILES and forked.can_fork():
        # The second half in a child on the other core (files are sorted, so halves keep order).
        half = len(files) // 2
        child = forked.Forked(lambda: _read_and_validate(files[half:], registry, variables, read))
        first = _read_and_validate(files[:half], registry, variables, read)
        second = child.result() or _read_and_validate(files[half:], registry, variables, read)
        manifests, more = _merge(first, second)
    else:
        manifests, more = _read_and_validate(files, registry, variables, read)
    problems.extend(more)
    errors = [p for p in problems if p.severity == "error"]
    warnings = tuple(p for p in problems if p.severity == "warning")
    if errors:
        raise InvalidManifests(sorted(problems, key=lambda p: (p.path, p.line, p.column)))
    return Loaded(tuple(manifests), warnings, len(files))


def _read_and_validate(
    files: Sequence[Path], registry: SchemaRegistry, variables: Mapping[str, Any],
    read: Callable[[Path], tuple[list[manifest_files.Document], list[Problem]]],
) -> tuple[list[Manifest], list[Problem]]:
    problems: list[Problem] = []
    documents = []
    for path in files:
        docs, file_problems = read(path)
        problems.extend(file_problems)
        for doc in docs:
            if not doc.has_variables:  # most documents: nothing to substitute, skip the walk
                documents.append(doc)
                continue
            value, var_problems = substitute(doc.value, variables)
            for field_path, message in var_problems:
                line, column = doc.where(field_path)
                problems.append(Problem(doc.path, line, column, ".".join(map(str, field_path)), message))
            if not var_problems:
                documents.append(dataclasses.replace(doc, value=value))
    manifests, more = validate(documents, registry)
    return manifests, problems + more


def _merge(
    first: tuple[list[Manifest], list[Problem]], second: tuple[list[Manifest], list[Problem]]
) -> tuple[list[Manifest], list[Problem]]:
    """Both halves as one, with the cross-half name clashes a single pass would have found."""
    manifests, problems = list(first[0]), first[1] + second[1]
    seen = {m.name: m for m in manifests}
    for manifest in second[0]:
        other = seen.get(manifest.name)
        if other is None:
            manifests.append(manifest)
            continue
        line, column = manifest.positions.get("name", (manifest.source.line, manifest.source.column))
        problems.append(Problem(manifest.source.path, line, column, "name",
                                f"`{manifest.name}` is also defined at {other.source}; names must be unique"))
    return manifests, problems


PLACEHOLDER = "sandbox-placeholder"


class _Placeholders(dict[str, str]):
    """An environment where every missing variable is a placeholder, and is remembered."""

    def __init__(self, env: Mapping[str, str]) -> None:
        super().__init__(env)
        self.missing: set[str] = set()

    def __contains__(self, key: object) -> bool:
        return True

    def __missing__(self, key: str) -> str:
        self.missing.add(f"environment variable {key}")
        return PLACEHOLDER


def resolve_secrets(
    loaded: Loaded, env: Mapping[str, str] | None = None, *, placeholders: bool = False
) -> tuple[tuple[Manifest, ...], tuple[str, ...]]:
    """Replace ${…} and file references; a missing variable or file stops everything.

    With `placeholders` (only for the embedded sandbox, which never calls a provider) a missing
    variable or file becomes a placeholder instead, and is named in the returned notes.
    """
    base = dict(os.environ if env is None else env)
    if not placeholders:
        resolved, problems = resolve(loaded.manifests, env=base)
        if problems:
            raise InvalidManifests(problems)
        register_secrets(resolved)
        return tuple(resolved), ()
    fake = _Placeholders(base)

    def read(path: Path) -> str:
        try:
            return references.read_secret_file(path)
        except (OSError, UnicodeDecodeError):
            fake.missing.add(f"secret file {path}")
            return PLACEHOLDER

    resolved, problems = resolve(loaded.manifests, env=fake, read=read)
    if problems:
        raise InvalidManifests(problems)
    register_secrets(resolved)
    notes = tuple(
        f"warning: {what} is not available: the local sandbox gets a placeholder "
        "(a real server would refuse to plan)"
        for what in sorted(fake.missing)
    )
    return tuple(resolved), notes


def register_secrets(manifests: Sequence[Manifest]) -> None:
    """Every resolved secret value goes to the scrubber before anything is printed or sent:
    fields filled from a reference, writeOnly fields, and keys named like secrets at any depth."""
    for manifest in manifests:
        for key, value in manifest.configuration.items():
            if key in manifest.sensitive or redact.looks_secret_key(key):
                redact.SCRUBBER.register_tree(value)
            elif isinstance(value, (dict, list)):
                _register_nested(value)


def _register_nested(value: Any) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            if redact.looks_secret_key(key):
                redact.SCRUBBER.register_tree(item)
            else:
                _register_nested(item)
    elif isinstance(value, list):
        for item in value:
            _register_nested(item)


def check_types(manifests: Sequence[Manifest], offered: Sequence[str], server: str) -> None:
    """The server's own list of types is the authority for that server (API facts, model types)."""
    available = set(offered)
    problems = [
        Problem(
            m.source.path, *m.positions.get("dtype", (m.source.line, m.source.column)), "dtype",
            f"the server {server} does not offer dtype `{m.dtype}` (it offers: "
            f"{', '.join(sorted(available)) or 'none'})",
        )
        for m in manifests
        if m.dtype not in available
    ]
    if problems:
        raise InvalidManifests(problems)


def registry_facts(registry: SchemaRegistry) -> tuple[dict[str, frozenset[str]], dict[str, dict[str, Any]]]:
    """Per dtype: secret fields, and schema defaults (a default on one side only is no change)."""
    secrets = {d: registry.secret_fields(d) for d in registry.dtypes}
    defaults: dict[str, dict[str, Any]] = {}
    for dtype in registry.dtypes:
        schema = registry.get(dtype)
        props = schema.schema.get("properties", {}) if schema else {}
        defaults[dtype] = {k: v["default"] for k, v in props.items() if "default" in v}
    return secrets, defaults


@dataclass(frozen=True)
class Observed:
    plan: Plan
    models: Mapping[str, RemoteModel]


def observe_and_plan(
    client: SpaceClient,
    manifests: Sequence[Manifest],
    registry: SchemaRegistry,
    *,
    adopt: bool = False,
    prune: bool = False,
    check_server_types: bool = True,
) -> Observed:
    """Verify the tenant and dtypes, read the server's state in one list call, and plan."""
    client.check_tenant()
    if check_server_types and manifests:
        offered = [t.name for t in client.list_types()]
        check_types(manifests, offered, client.base_url)
    observed = {m.name: m for m in client.list_models()}
    secrets, defaults = registry_facts(registry)
    the_plan = make_plan(manifests, observed, secret_fields=secrets, defaults=defaults, adopt=adopt, prune=prune)
    return Observed(the_plan, observed)


def check_prune(plan: Plan, *, manifest_count: int, max_delete: int | None, allow_empty: bool) -> None:
    """Refuse a prune that looks like an accident, before any write."""
    deletes = len(plan.deletes)
    if not deletes:
        return
    if manifest_count == 0 and not allow_empty:
        raise ReconcilerError(
            f"refusing to prune with no manifests: it would delete all {deletes} model(s) we manage; "
            "check the path, or pass --allow-empty"
        )
    if max_delete is not None and deletes > max_delete:
        raise ReconcilerError(
            f"refusing to delete {deletes} model(s): more than --max-delete {max_delete}; nothing was written"
        )


def _server_validator(schema: Any) -> Any:
    """A validator for a server's config_schema, or why there is none (a string)."""
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import SchemaError

    if not isinstance(schema, dict):
        return "is not a JSON object"
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        return f"is not valid JSON Schema ({str(exc.message)[:120]})"
    except RecursionError:
        return "nests too deep"
    return Draft202012Validator(schema, format_checker=None)


def check_online(
    manifests: Sequence[Manifest], types: Sequence[Any], registry: SchemaRegistry, server: str
) -> tuple[list[Problem], list[str]]:
    """Manifests against the server's published types (errors), and schema skew (warnings).

    `types` are client.TypeInfo values. The server's schemas carry no `additionalProperties`, so
    unknown settings pass there; our bundled schemas (offline validate) still refuse them.
    """
    from reconciler.schemas import server_config_schema

    published = {t.name: t for t in types}
    problems: list[Problem] = []
    validators: dict[str, Any] = {}
    for manifest in manifests:
        where = manifest.positions.get("dtype", (manifest.source.line, manifest.source.column))
        info = published.get(manifest.dtype)
        if info is None:
            problems.append(Problem(
                manifest.source.path, *where, "dtype",
                f"the server {server} does not offer dtype `{manifest.dtype}` "
                f"(it offers: {', '.join(sorted(published)) or 'none'})",
            ))
            continue
        if not info.enabled:
            problems.append(Problem(
                manifest.source.path, *where, "dtype",
                f"dtype `{manifest.dtype}` is disabled on {server} (its provider library is missing there)",
                "warning",
            ))
        if manifest.dtype not in validators:
            validators[manifest.dtype] = _server_validator(info.config_schema)
        validator = validators[manifest.dtype]
        if isinstance(validator, str):
            problems.append(Problem(manifest.source.path, *where, "dtype",
                                    f"the server's `{manifest.dtype}` schema {validator}; "
                                    "configuration not checked against it", "warning"))
            continue
        config = references.placeholder(dict(manifest.configuration))
        try:
            errors = list(validator.iter_errors(config))
        except Exception as exc:  # a schema check_schema let through (e.g. a regex Python cannot compile)
            problems.append(Problem(manifest.source.path, *where, "dtype",
                                    f"the server's `{manifest.dtype}` schema cannot be applied "
                                    f"({type(exc).__name__}); configuration not checked against it", "warning"))
            continue
        for error in errors:
            path = tuple(str(p) for p in error.absolute_path)
            field = ".".join(("configuration", *path))
            line, column = manifest.positions.get(field, manifest.positions.get("dtype", where))
            shown = error.message if not (path and path[0] in manifest.sensitive) else f"invalid ({error.validator})"
            problems.append(Problem(manifest.source.path, line, column, field,
                                    f"the server's `{manifest.dtype}` schema says: {shown}"))
    skew: list[str] = []
    for name in sorted(published):
        bundled = registry.get(name)
        if bundled is None:
            skew.append(f"the server offers dtype `{name}`, which has no bundled schema (run `schema pull`)")
            continue
        ours = server_config_schema(bundled.schema)
        theirs = published[name].config_schema
        if ours == theirs:
            continue
        if not isinstance(theirs, dict):
            skew.append(f"the server's `{name}` config_schema is not a JSON object; not compared")
            continue
        ours_props, theirs_props = ours.get("properties", {}), theirs.get("properties", {})
        if not isinstance(theirs_props, dict):
            theirs_props = {}
        details = [f"server adds `{k}`" for k in sorted(set(theirs_props) - set(ours_props))]
        details += [f"server lacks `{k}`" for k in sorted(set(ours_props) - set(theirs_props))]
        details += [f"`{k}` differs" for k in sorted(set(ours_props) & set(theirs_props))
                    if ours_props[k] != theirs_props[k]]
        if ours.get("required") != theirs.get("required"):
            details.append(f"required: ours {ours.get('required')}, server {theirs.get('required')}")
        skew.append(f"schemas/{name}.json differs from the server's `{name}`: "
                    f"{'; '.join(details) or 'other keywords differ'} (run `schema pull`)")
    return problems, skew
