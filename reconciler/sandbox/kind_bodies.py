"""Request and response bodies of the datasets, endpoints and policies routes.

Fields, defaults and types follow syft-space-api-kinds.md, so that FastAPI derives the same 422s
(`uuid_parsing` for a name given as `model_id`, the slug's value errors) and a sensible
`/openapi.json`. Responses are built as dicts by each noun's module; these models document them.
Class names that would clash with the models routes' (`EndpointListItem` is the connected-endpoint
item there) carry a prefix.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, Field, field_validator, model_validator

from reconciler.sandbox.bodies import EndpointListItem, HealthcheckStatus

# -- datasets ----------------------------------------------------------------------------------


class SelectedItemRequest(BaseModel):
    item_id: str = Field(min_length=1)
    description: str | None = None


class CreateDatasetRequest(BaseModel):
    name: str
    dtype: str
    configuration: dict[str, Any]
    summary: str = ""
    tags: str = ""
    selected_items: list[SelectedItemRequest] = []


class UpdateDatasetRequest(BaseModel):
    name: str | None = None
    summary: str | None = None
    tags: str | None = None

    @model_validator(mode="after")
    def _at_least_one_field(self) -> UpdateDatasetRequest:
        if self.name is None and self.summary is None and self.tags is None:
            raise ValueError("At least one field (name, summary, or tags) must be provided")
        return self


class ProvisionerStatus(BaseModel):
    status: str
    error: str | None


class ProvisionerState(ProvisionerStatus):
    state: dict[str, Any]
    started_at: datetime | None
    stopped_at: datetime | None


class SelectedItemResponse(BaseModel):
    item_id: str
    description: str | None
    added_at: datetime


class DatasetResponse(BaseModel):
    id: UUID
    name: str
    dtype: str
    configuration: dict[str, Any]
    summary: str
    tags: str
    provisioner_state: ProvisionerState | None
    created_at: datetime
    updated_at: datetime
    connected_endpoints: list[EndpointListItem]


class DatasetListItem(BaseModel):
    id: UUID
    name: str
    dtype: str
    summary: str
    tags: str
    created_at: datetime
    connected_endpoints: list[EndpointListItem]
    provisioner_status: ProvisionerStatus | None
    configuration: dict[str, Any]
    selected_items_count: int
    selected_items_preview: list[SelectedItemResponse]


class DatasetTypeInfoResponse(BaseModel):
    name: str
    description: str
    config_schema: dict[str, Any]
    icon: str
    enabled: bool
    browse_schema: dict[str, Any] | None
    browsable: bool


class DatasetHealthResponse(BaseModel):
    dataset_type_status: HealthcheckStatus
    provisioner_status: str | None
    message: str


class SelectionPage(BaseModel):
    items: list[SelectedItemResponse]
    total: int


class SelectionIds(BaseModel):
    item_ids: list[str]


class AddSelectionRequest(BaseModel):
    items: list[SelectedItemRequest] = Field(min_length=1)


class RemoveSelectionRequest(BaseModel):
    # At least one id; "" is accepted here although it cannot be added.
    item_ids: list[str] = Field(min_length=1)


class SelectionResponse(BaseModel):
    selected_items: list[SelectedItemResponse]


# -- endpoints ---------------------------------------------------------------------------------

_SLUG = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")


class CreateEndpointRequest(BaseModel):
    name: str
    slug: str
    description: str = ""
    summary: str = ""
    dataset_id: UUID | None = None
    model_id: UUID | None = None
    # Not validated: "bogus" is stored and echoed (syft-space-api-kinds.md, "Endpoints").
    response_type: str = "both"
    published: bool = False
    tags: str = ""
    system_prompt: str | None = None

    @field_validator("slug", mode="before")
    @classmethod
    def _slug(cls, value: Any) -> str:
        # Lower-cased first, then checked; the server's exact messages.
        if not isinstance(value, str):
            raise ValueError("Slug must be a string")
        if not value:
            raise ValueError("Slug is required")
        slug = value.lower()
        if len(slug) < 3:
            raise ValueError("Slug must be at least 3 characters long")
        if len(slug) > 64:
            raise ValueError("Slug must be at most 64 characters long")
        if not _SLUG.match(slug):
            raise ValueError(
                "Slug must contain only lowercase letters, numbers, and hyphens "
                "(no leading/trailing/consecutive hyphens)"
            )
        return slug


class UpdateEndpointRequest(BaseModel):
    name: str | None = None
    summary: str | None = None
    description: str | None = None
    system_prompt: str | None = None

    @model_validator(mode="after")
    def _at_least_one_field(self) -> UpdateEndpointRequest:
        fields = (self.name, self.summary, self.description, self.system_prompt)
        if all(value is None for value in fields):
            raise ValueError(
                "At least one field (name, summary, description, or system_prompt) must be provided"
            )
        return self


class PublishEndpointRequest(BaseModel):
    marketplace_ids: list[UUID] | None = None
    publish_to_all_marketplaces: bool = False


class ValidateSlugRequest(BaseModel):
    slug: str
    marketplace_ids: list[UUID] | None = None
    check_all_marketplaces: bool = False


class MarketplaceSlugCheck(BaseModel):
    marketplace_id: UUID
    available: bool | None
    error: str | None = None


class ValidateSlugResponse(BaseModel):
    slug: str
    local_available: bool
    marketplaces: list[MarketplaceSlugCheck] | None


class AttachedModel(BaseModel):
    id: UUID
    name: str
    dtype: str
    configuration: dict[str, Any]


class AttachedDataset(BaseModel):
    id: UUID
    name: str
    summary: str
    dtype: str
    configuration: dict[str, Any]
    selected_items_count: int


class AttachedPolicy(BaseModel):
    id: UUID
    name: str
    policy_type: str
    configuration: dict[str, Any]
    wallet_id: UUID | None


class EndpointResponse(BaseModel):
    id: UUID
    name: str
    slug: str
    description: str
    summary: str
    response_type: str
    published: bool
    tags: str
    system_prompt: str | None
    created_at: datetime
    updated_at: datetime


class EndpointCreateResponse(EndpointResponse):
    model_id: UUID | None
    dataset_id: UUID | None


class EndpointDetailResponse(EndpointResponse):
    model: AttachedModel | None
    dataset: AttachedDataset | None
    policies: list[AttachedPolicy]


class EndpointListEntry(BaseModel):
    id: UUID
    name: str
    slug: str
    summary: str
    response_type: str
    published: bool
    tags: str
    system_prompt: str | None
    created_at: datetime
    model: AttachedModel | None
    dataset: AttachedDataset | None


# -- policies ----------------------------------------------------------------------------------


class CreatePolicyRequest(BaseModel):
    name: str
    policy_type: str
    configuration: dict[str, Any]
    endpoint_id: UUID
    wallet_id: UUID | None = None


class UpdatePolicyRequest(BaseModel):
    name: str | None = None
    configuration: dict[str, Any] | None = None


class PolicyResponse(BaseModel):
    id: UUID
    name: str
    policy_type: str
    configuration: dict[str, Any]
    endpoint_id: UUID
    wallet_id: UUID | None
    created_at: datetime
    updated_at: datetime


class PolicyListItem(BaseModel):
    id: UUID
    name: str
    policy_type: str
    endpoint_id: UUID
    wallet_id: UUID | None
    created_at: datetime


class PolicyTypeInfoResponse(BaseModel):
    name: str
    description: str
    config_schema: dict[str, Any]
    icon: str
    enabled: bool
