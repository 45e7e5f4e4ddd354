"""The desired and observed values of datasets, endpoints and policies (Core: no I/O).

A Dataset is a `model.Manifest` with `kind="Dataset"` (same envelope: name, dtype, configuration,
summary, tags), so secrets resolve and redact through the same code as models. Endpoints and
their policies have their own values. What the server reports is parsed into the Remote* models
at the client boundary (../shared/syft-space-api-kinds.md gives every shape).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, field_validator

from reconciler.model import Manifest, ReplacePolicy, SourceLocation, normalise_tags
from reconciler.ownership import is_ownership_tag, owner_tag

ResponseType = Literal["raw", "summary", "both"]
RESPONSE_TYPES: tuple[str, ...] = ("raw", "summary", "both")


@dataclass(frozen=True)
class PolicySpec:
    """One policy of an endpoint; identity is (endpoint slug, name)."""

    name: str
    policy_type: str
    configuration: Mapping[str, Any]
    line: int = 1
    column: int = 1


@dataclass(frozen=True)
class EndpointManifest:
    """One validated desired endpoint. `model`/`dataset` are names, resolved to ids at apply time."""

    slug: str
    name: str
    model: str | None = None
    dataset: str | None = None
    summary: str = ""
    description: str = ""
    response_type: str = "both"
    published: bool = False
    tags: tuple[str, ...] = ()
    system_prompt: str | None = None
    policies: tuple[PolicySpec, ...] = ()
    source: SourceLocation = field(default_factory=lambda: SourceLocation("<memory>"))
    replace_policy: ReplacePolicy = "manual"
    positions: Mapping[str, tuple[int, int]] = field(default_factory=dict, compare=False, repr=False)

    def create_body(
        self, *, owner: str | None, model_id: str | None, dataset_id: str | None
    ) -> dict[str, Any]:
        """The POST /api/v1/endpoints/ body; the owner tag is set here, once (tags cannot be PATCHed)."""
        return {
            "slug": self.slug,
            "name": self.name,
            "summary": self.summary,
            "description": self.description,
            "response_type": self.response_type,
            "published": self.published,
            "tags": ",".join((*self.tags, owner_tag(owner))),
            "system_prompt": self.system_prompt,
            "model_id": model_id,
            "dataset_id": dataset_id,
        }

    def where(self, key: str) -> SourceLocation:
        line, column = self.positions.get(key, (self.source.line, self.source.column))
        return SourceLocation(self.source.path, line, column)


def dataset_body(manifest: Manifest, *, owner: str | None) -> dict[str, Any]:
    """The POST /api/v1/datasets/ body (a dataset's envelope is a model's)."""
    return manifest.create_body(owner=owner)


def _tags(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str) or (
        isinstance(value, (list, tuple)) and all(isinstance(t, str) for t in value)
    ):
        return normalise_tags(value)
    raise ValueError("tags must be a string or a list of strings")


class _Remote(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class RemotePick(_Remote):
    """One item of a dataset's selection as the server lists it (`added_at` is not compared)."""

    item_id: str
    description: str | None = None


class RemoteDataset(_Remote):
    id: str
    name: str
    dtype: str
    configuration: dict[str, Any] = {}
    summary: str = ""
    tags: tuple[str, ...] = ()
    selected_items_count: int | None = None
    """In list items only (None: a detail, or a server without selections)."""
    selected_items_preview: tuple[RemotePick, ...] = ()
    """The first three picks, in list items."""
    selection: tuple[RemotePick, ...] | None = None
    """Every pick, oldest first, when read (round.observe_kinds reads it for the datasets whose
    manifest manages `selected_items`; the preview is the whole selection up to three)."""

    _split = field_validator("tags", mode="before")(classmethod(lambda cls, v: _tags(v)))

    @property
    def known_selection(self) -> tuple[RemotePick, ...] | None:
        """The whole selection, if this answer shows it: read, or wholly in the preview."""
        if self.selection is not None:
            return self.selection
        count = self.selected_items_count
        if count is not None and count <= len(self.selected_items_preview):
            return self.selected_items_preview
        return None

    @property
    def user_tags(self) -> tuple[str, ...]:
        return tuple(t for t in self.tags if not is_ownership_tag(t))


class Ref(_Remote):
    """An embedded model or dataset of an endpoint: its id and name."""

    id: str
    name: str


class RemotePolicy(_Remote):
    id: str
    name: str
    policy_type: str
    endpoint_id: str | None = None
    configuration: dict[str, Any] | None = None  # the list leaves it out; the endpoint detail has it


class RemoteEndpoint(_Remote):
    """A list item or a detail (then `description` and `policies` are known)."""

    id: str
    slug: str
    name: str = ""
    summary: str = ""
    description: str | None = None
    response_type: str = "both"
    published: bool = False
    tags: tuple[str, ...] = ()
    system_prompt: str | None = None
    model: Ref | None = None
    dataset: Ref | None = None
    policies: tuple[RemotePolicy, ...] | None = None

    _split = field_validator("tags", mode="before")(classmethod(lambda cls, v: _tags(v)))

    @property
    def user_tags(self) -> tuple[str, ...]:
        return tuple(t for t in self.tags if not is_ownership_tag(t))
