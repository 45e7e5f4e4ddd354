"""Request and response bodies of the models, types and tenants routes.

Names, fields and types follow the real server's pydantic models, so that FastAPI derives the same
422 errors and the same `/openapi.json` (`../shared/syft-space-openapi.json`). Responses are built
as JSON by the store; these response models only document them.
"""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Any
from uuid import UUID

from pydantic import BaseModel, model_validator


class CreateModelRequest(BaseModel):
    name: str
    dtype: str
    configuration: dict[str, Any]
    summary: str = ""
    tags: str = ""


class UpdateModelRequest(BaseModel):
    name: str | None = None
    summary: str | None = None
    tags: str | None = None

    @model_validator(mode="after")
    def _at_least_one_field(self) -> UpdateModelRequest:
        # The real server's exact message (syft-space-api.md, "PATCH").
        if self.name is None and self.summary is None and self.tags is None:
            raise ValueError("At least one field (name, summary, or tags) must be provided")
        return self


class EndpointListItem(BaseModel):
    id: UUID
    name: str
    slug: str


class ModelResponse(BaseModel):
    id: UUID
    name: str
    dtype: str
    configuration: dict[str, Any]
    summary: str
    tags: str
    created_at: datetime
    updated_at: datetime


class ModelResponseWithEndpoints(ModelResponse):
    connected_endpoints: list[EndpointListItem]


class ModelListItem(BaseModel):
    id: UUID
    name: str
    dtype: str
    configuration: dict[str, Any]
    summary: str
    tags: str
    created_at: datetime
    connected_endpoints: list[EndpointListItem]


class ModelTypeInfoResponse(BaseModel):
    name: str
    description: str
    config_schema: dict[str, Any]
    icon: str
    enabled: bool


class HealthcheckStatus(str, Enum):
    HEALTHY = "healthy"
    UNHEALTHY = "unhealthy"


class HealthcheckResponse(BaseModel):
    status: HealthcheckStatus
    message: str


class CreateTenantRequest(BaseModel):
    name: str
    display_name: str
    domain: str | None = None
    meta: dict[str, Any] = {}


class TenantResponse(BaseModel):
    id: UUID
    name: str
    display_name: str
    domain: str | None
    is_active: bool
    meta: dict[str, Any]
    created_at: datetime
    updated_at: datetime
