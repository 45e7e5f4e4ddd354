"""Endpoints (with their policies) as manifests, references by name (pure).

Datasets go through export.py like models (`kind="Dataset"`). An endpoint is written from its
detail (description and policy configurations are in no list); one that no manifest can hold
(neither a model nor a dataset left, or a `response_type` the server stored unvalidated) is
skipped with a reason. A policy's secret-looking fields are written as references, like a
dataset's.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from reconciler import redact
from reconciler.export import (
    ExportedFile,
    FlowList,
    Variables,
    env_prefix,
    escape_references,
    exported_header,
    file_stem,
    nested_references,
    to_yaml,
)
from reconciler.kinds.validate import slug_problem
from reconciler.kinds.values import RESPONSE_TYPES, RemoteEndpoint
from reconciler.selection import Selector


def endpoint_document(endpoint: RemoteEndpoint, env: Variables | None = None) -> dict[str, Any]:
    """The endpoint as a manifest; what its policies hold under secret-looking keys (a type or a
    server newer than ours may have them) becomes `${ENDPOINT_<SLUG>_<POLICY>_<FIELD>}` references."""
    env = Variables() if env is None else env
    document: dict[str, Any] = {
        "kind": "Endpoint",
        "slug": endpoint.slug,
        "name": escape_references(endpoint.name),
    }
    if endpoint.model is not None:
        document["model"] = escape_references(endpoint.model.name)
    if endpoint.dataset is not None:
        document["dataset"] = escape_references(endpoint.dataset.name)
    document.update(
        {
            "summary": escape_references(endpoint.summary),
            "description": escape_references(endpoint.description or ""),
            "response_type": endpoint.response_type,
            "published": endpoint.published,
            "tags": FlowList(endpoint.user_tags),
        }
    )
    if endpoint.system_prompt is not None:
        document["system_prompt"] = escape_references(endpoint.system_prompt)
    if endpoint.policies:
        document["policies"] = [
            {
                "name": escape_references(p.name),
                "policy_type": p.policy_type,
                "configuration": nested_references(
                    p.configuration or {}, f"ENDPOINT_{env_prefix(endpoint.slug)}_{env_prefix(p.name)}", env
                ),
            }
            for p in sorted(endpoint.policies, key=lambda p: p.name)
        ]
    return document


def export_endpoints(
    endpoints: Sequence[RemoteEndpoint], *, selectors: Sequence[Selector] = ()
) -> tuple[list[ExportedFile], list[tuple[str, str]]]:
    """(files, skipped (slug, reason)) for the endpoints every selector matches."""
    files: list[ExportedFile] = []
    skipped: list[tuple[str, str]] = []
    variables = Variables()
    for endpoint in endpoints:
        if not all(s.matches(endpoint.slug, "endpoint", endpoint.user_tags) for s in selectors):
            continue
        if endpoint.model is None and endpoint.dataset is None:
            skipped.append(
                (f"endpoint {endpoint.slug}", "it has neither a model nor a dataset (its model was deleted)")
            )
            continue
        if endpoint.response_type not in RESPONSE_TYPES:
            skipped.append(
                (
                    f"endpoint {endpoint.slug}",
                    f"its response_type {endpoint.response_type!r} is not one of raw, summary, both",
                )
            )
            continue
        if slug_problem(endpoint.slug) is not None:
            skipped.append((f"endpoint {endpoint.slug}", "its slug is not one a manifest can hold"))
            continue
        env = variables.for_file()
        document = endpoint_document(endpoint, env)
        text = redact.scrub(f"{exported_header(env.names)}\n{to_yaml(document)}")
        files.append(
            ExportedFile(
                f"endpoint-{file_stem(endpoint.slug)}.yaml",
                endpoint.slug,
                "endpoint",
                text,
                tuple(env.names),
                "Endpoint",
            )
        )
    return files, skipped
