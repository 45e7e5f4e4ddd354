"""Dataset and Endpoint documents → values, or every problem at once (pure).

A Dataset's envelope is a Model's (validate.py checks it) with `schemas/datasets/<dtype>.json` as
its configuration schema. An Endpoint is checked here: its slug like the server does it, but
lower-case only (the server lower-cases at create and then looks up exactly, so a mixed-case slug
could never be found again: ../shared/syft-space-api-kinds.md, "Slug"), `response_type` (the
server stores anything), at least one of model/dataset, and each policy against
`schemas/policies/<policy_type>.json`. Cross-manifest checks (unique slugs and names) are
`check_set`; references to the server are checked at plan time.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from functools import cache
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from reconciler.kinds.values import RESPONSE_TYPES, EndpointManifest, PolicySpec
from reconciler.manifests import Document
from reconciler.model import Manifest, Problem, SourceLocation, normalise_tags
from reconciler.schemas import SchemaRegistry, bundled_schema_dir

SLUG = re.compile(r"[a-z0-9]+(-[a-z0-9]+)*\Z")
ENDPOINT_FIELDS = (
    "kind", "slug", "name", "model", "dataset", "summary", "description", "response_type",
    "published", "tags", "system_prompt", "policies", "lifecycle",
)  # fmt: skip
POLICY_FIELDS = ("name", "policy_type", "configuration")
# The recorded server also registers these; their wallet rules were never observed, so they are
# refused rather than guessed (../shared/syft-space-api-kinds.md, "Types rebuilt here").
WALLET_TYPES = frozenset(
    {"mpp_per_request", "mpp_per_document", "xendit_per_request", "xendit_per_document",
     "stripe_per_request", "stripe_per_document", "cluster_per_request", "cluster_per_document"}
)  # fmt: skip


@cache
def dataset_registry() -> SchemaRegistry:
    return SchemaRegistry.load(bundled_schema_dir() / "datasets")


@cache
def policy_registry() -> SchemaRegistry:
    return SchemaRegistry.load(bundled_schema_dir() / "policies")


class _Lifecycle(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)
    replace: Literal["manual", "allow", "never"] = "manual"


class _Policy(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)
    name: str
    policy_type: str
    configuration: dict[str, Any] = {}


class _Endpoint(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)
    kind: Literal["Endpoint"]
    slug: str
    name: str
    model: str | None = None
    dataset: str | None = None
    summary: str = ""
    description: str = ""
    response_type: str = "both"
    published: bool = False
    tags: list[str] | str = []
    system_prompt: str | None = None
    policies: list[_Policy] = []
    lifecycle: _Lifecycle = _Lifecycle()


def _problem(doc: Document, path: tuple[str | int, ...], message: str, *, key: bool = False) -> Problem:
    line, column = doc.where(path, key=key)
    return Problem(doc.path, line, column, ".".join(str(p) for p in path), message)


def slug_problem(slug: str) -> str | None:
    """The server's slug rule (3..64 of `^[a-z0-9]+(-[a-z0-9]+)*$`), lower-case required here."""
    if slug != slug.lower() and SLUG.match(slug.lower()):
        return f"must be lower-case (the server lower-cases it at create, then looks it up exactly): write `{slug.lower()}`"
    if len(slug) < 3:
        return "must be at least 3 characters long"
    if len(slug) > 64:
        return "must be at most 64 characters long"
    if not SLUG.match(slug):
        return "must contain only lowercase letters, numbers, and hyphens (no leading/trailing/consecutive hyphens)"
    return None


def _envelope_problems(doc: Document, exc: ValidationError) -> list[Problem]:
    problems = []
    for error in exc.errors():
        loc = tuple(p for p in error["loc"] if isinstance(p, (str, int)) and p not in ("list[str]", "str"))
        if error["type"] == "extra_forbidden":
            field = str(loc[-1])
            known = POLICY_FIELDS if "policies" in loc else ENDPOINT_FIELDS
            close = difflib.get_close_matches(field, known, n=1)
            hint = f" (did you mean `{close[0]}`?)" if close else ""
            problems.append(
                _problem(doc, loc, f"unknown field{hint} (allowed: {', '.join(known)})", key=True)
            )
        elif error["type"] == "missing":
            problems.append(_problem(doc, loc, "required field is missing"))
        else:
            problems.append(_problem(doc, loc, error["msg"].lower()[:200]))
    return problems


def validate_endpoint(doc: Document) -> tuple[EndpointManifest | None, list[Problem]]:
    """One `kind: Endpoint` document."""
    try:
        raw = _Endpoint.model_validate(doc.value)
    except ValidationError as exc:
        return None, _envelope_problems(doc, exc)
    problems: list[Problem] = []
    if (message := slug_problem(raw.slug)) is not None:
        problems.append(_problem(doc, ("slug",), message))
    if raw.response_type not in RESPONSE_TYPES:
        problems.append(
            _problem(
                doc,
                ("response_type",),
                f"must be one of {', '.join(RESPONSE_TYPES)}, got {raw.response_type!r}"[:200],
            )
        )
    if raw.model is None and raw.dataset is None:
        problems.append(_problem(doc, (), "an endpoint needs at least one of `model` and `dataset`"))
    tags = normalise_tags(raw.tags)
    from reconciler.ownership import is_ownership_tag

    if any("," in t for t in (raw.tags if isinstance(raw.tags, list) else [])) or any(
        map(is_ownership_tag, tags)
    ):
        problems.append(
            _problem(doc, ("tags",), "tags must not contain `,` or the reconciler's ownership tag")
        )
    policies, policy_problems = _policies(doc, raw.policies)
    problems.extend(policy_problems)
    if problems:
        return None, problems
    line, column = doc.where(())
    fields = ("slug", "model", "dataset", "response_type", "name")
    return (
        EndpointManifest(
            slug=raw.slug,
            name=raw.name,
            model=raw.model,
            dataset=raw.dataset,
            summary=raw.summary,
            description=raw.description,
            response_type=raw.response_type,
            published=raw.published,
            tags=tags,
            system_prompt=raw.system_prompt,
            policies=policies,
            source=SourceLocation(doc.path, line, column),
            replace_policy=raw.lifecycle.replace,
            positions={f: doc.where((f,)) for f in fields},
        ),
        [],
    )


def _policies(doc: Document, raw: Sequence[_Policy]) -> tuple[tuple[PolicySpec, ...], list[Problem]]:
    registry = policy_registry()
    problems: list[Problem] = []
    out: list[PolicySpec] = []
    seen: dict[str, int] = {}
    for index, policy in enumerate(raw):
        where: tuple[str | int, ...] = ("policies", index)
        if not policy.name.strip():
            problems.append(
                _problem(doc, (*where, "name"), "a policy needs a name (its identity on the endpoint)")
            )
        elif policy.name in seen:
            problems.append(
                _problem(
                    doc,
                    (*where, "name"),
                    f"`{policy.name}` is also policies[{seen[policy.name]}]; names must be unique per endpoint",
                )
            )
        seen.setdefault(policy.name, index)
        schema = registry.get(policy.policy_type)
        if policy.policy_type in WALLET_TYPES:
            problems.append(
                _problem(
                    doc,
                    (*where, "policy_type"),
                    f"`{policy.policy_type}` needs a wallet; wallet policy types are not supported yet (configure it on the server)",
                )
            )
            continue
        if schema is None:
            problems.append(
                _problem(
                    doc,
                    (*where, "policy_type"),
                    f"unknown policy type `{policy.policy_type}` (known: {', '.join(registry.dtypes)})",
                )
            )
            continue
        for error in schema.errors(policy.configuration):
            path = tuple(error.absolute_path)
            text = error.message if not path else f"{error.message}"
            problems.append(_problem(doc, (*where, "configuration", *path), text[:200]))
        line, column = doc.where(where)
        out.append(PolicySpec(policy.name, policy.policy_type, dict(policy.configuration), line, column))
    return tuple(out), problems


def check_set(
    datasets: Sequence[Manifest], endpoints: Sequence[EndpointManifest], models: Sequence[Manifest]
) -> list[Problem]:
    """Unique dataset names and slugs across files; references to a manifest of the right kind are
    fine, anything else is checked against the server at plan time."""
    problems: list[Problem] = []
    first: dict[str, SourceLocation] = {}
    for dataset in datasets:
        if dataset.name in first:
            problems.append(
                _set_problem(
                    dataset.source,
                    "name",
                    f"dataset `{dataset.name}` is also defined at {first[dataset.name]}; names must be unique",
                )
            )
        first.setdefault(dataset.name, dataset.source)
    slugs: dict[str, SourceLocation] = {}
    for endpoint in endpoints:
        if endpoint.slug in slugs:
            problems.append(
                _set_problem(
                    endpoint.where("slug"),
                    "slug",
                    f"endpoint `{endpoint.slug}` is also defined at {slugs[endpoint.slug]}; slugs must be unique",
                )
            )
        slugs.setdefault(endpoint.slug, endpoint.source)
    return problems


def _set_problem(where: SourceLocation, field: str, message: str) -> Problem:
    return Problem(where.path, where.line, where.column, field, message)


def check_policy_types(
    endpoints: Sequence[EndpointManifest], offered: Sequence[str], server: str
) -> list[Problem]:
    """Every policy's type against the server's own list (`validate --online`)."""
    problems = []
    for endpoint in endpoints:
        for policy in endpoint.policies:
            if policy.policy_type not in offered:
                problems.append(
                    Problem(
                        endpoint.source.path,
                        policy.line,
                        policy.column,
                        "policy_type",
                        f"the server {server} does not offer policy type `{policy.policy_type}` "
                        f"(it offers: {', '.join(sorted(offered)) or 'none'})",
                    )
                )
    return problems
