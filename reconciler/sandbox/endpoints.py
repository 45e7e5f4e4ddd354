"""Endpoints (`/api/v1/endpoints`), addressed by slug, as the real server answers.

syft-space-api-kinds.md, "Endpoints" and "References and what deletes do": slugs lower-cased at
create but looked up exactly, `response_type` not validated, PATCH limited to name, summary,
description and system_prompt (the rest silently ignored), the embedded model without `api_key`,
and a delete that leaves the endpoint's policies behind with no endpoint. No marketplace exists
here: publishing and querying answer the server's 400/404s for that case.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException
from fastapi.responses import Response

from reconciler.sandbox.datasets import Datasets
from reconciler.sandbox.kind_bodies import (
    CreateEndpointRequest,
    EndpointCreateResponse,
    EndpointDetailResponse,
    EndpointListEntry,
    PublishEndpointRequest,
    UpdateEndpointRequest,
    ValidateSlugRequest,
    ValidateSlugResponse,
)
from reconciler.sandbox.routing import Routes, crash, send_json
from reconciler.sandbox.state import SandboxState
from reconciler.sandbox.store import Tenant
from reconciler.sandbox.tables import now, rows
from reconciler.sandbox.tenancy import current_tenant

_TenantDep = Annotated[Tenant, Depends(current_tenant)]
_COLUMNS = (
    "id, name, slug, description, summary, response_type, published, tags, system_prompt,"
    " created_at, updated_at, model_id, dataset_id, archived"
)
# The embedded model never carries its key (syft-space-api-kinds.md, "Secrets").
_MODEL_KEY = "api_key"


class Endpoints:
    """The endpoints table, answered in the server's three shapes (create, detail, list item)."""

    def __init__(self, state: SandboxState, datasets: Datasets) -> None:
        self.state = state
        self.datasets = datasets

    @property
    def conn(self) -> Any:
        return self.state.store.conn

    def find(self, tenant_id: str, slug: str) -> dict[str, Any] | None:
        found = rows(
            self.conn.execute(
                f"SELECT {_COLUMNS} FROM endpoints WHERE tenant_id = ? AND slug = ?", (tenant_id, slug)
            )
        )
        return found[0] if found else None

    def _model(self, model_id: str | None) -> dict[str, Any] | None:
        if model_id is None:
            return None
        found = rows(
            self.conn.execute("SELECT id, name, dtype, configuration FROM models WHERE id = ?", (model_id,))
        )
        if not found:
            return None
        model = found[0]
        hidden = {_MODEL_KEY}
        if self.state.config.redact_secrets:
            hidden |= self.state.catalog.secret_fields.get(model["dtype"], frozenset())
        model["configuration"] = {k: v for k, v in model["configuration"].items() if k not in hidden}
        return model

    def _dataset(self, dataset_id: str | None) -> dict[str, Any] | None:
        if dataset_id is None:
            return None
        found = rows(
            self.conn.execute(
                "SELECT id, name, summary, dtype, configuration FROM datasets WHERE id = ?", (dataset_id,)
            )
        )
        return self.datasets.embedded(found[0]) if found else None

    @staticmethod
    def _common(row: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "id": row["id"],
            "name": row["name"],
            "slug": row["slug"],
            "description": row["description"],
            "summary": row["summary"],
            "response_type": row["response_type"],
            "published": bool(row["published"]),
            "tags": row["tags"],
            "system_prompt": row["system_prompt"],
            "created_at": row["created_at"],
            "updated_at": row["updated_at"],
        }

    def created(self, row: Mapping[str, Any]) -> dict[str, Any]:
        """EndpointCreateResponse: the ids, not the objects."""
        return {**self._common(row), "model_id": row["model_id"], "dataset_id": row["dataset_id"]}

    def detail(self, row: Mapping[str, Any]) -> dict[str, Any]:
        """EndpointDetailResponse: GET one, PATCH, archive. Policies of any tenant attached here."""
        policies = rows(
            self.conn.execute(
                "SELECT id, name, policy_type, configuration, wallet_id FROM policies"
                " WHERE endpoint_id = ? ORDER BY rowid",
                (row["id"],),
            )
        )
        return {
            **self._common(row),
            "model": self._model(row["model_id"]),
            "dataset": self._dataset(row["dataset_id"]),
            "policies": policies,
        }

    def list_item(self, row: Mapping[str, Any]) -> dict[str, Any]:
        common = self._common(row)
        del common["description"], common["updated_at"]
        return {**common, "model": self._model(row["model_id"]), "dataset": self._dataset(row["dataset_id"])}

    def insert(self, tenant_id: str, request: CreateEndpointRequest) -> dict[str, Any]:
        stamp = now()
        endpoint_id = str(uuid.uuid4())
        self.conn.execute(
            f"INSERT INTO endpoints (tenant_id, {_COLUMNS})"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0)",
            (
                tenant_id,
                endpoint_id,
                request.name,
                request.slug,
                request.description,
                request.summary,
                request.response_type,
                int(request.published),
                request.tags,
                request.system_prompt,
                stamp,
                stamp,
                _text(request.model_id),
                _text(request.dataset_id),
            ),
        )
        found = self.find(tenant_id, request.slug)
        assert found is not None
        return found


def _text(value: uuid.UUID | None) -> str | None:
    return None if value is None else str(value)


def _create(
    state: SandboxState, table: Endpoints, tenant: Tenant, request: CreateEndpointRequest
) -> Response:
    # Order: body → neither reference → slug → dataset → model.
    if request.dataset_id is None and request.model_id is None:
        raise HTTPException(status_code=400, detail="At least one of dataset_id or model_id must be provided")
    if table.find(tenant.id, request.slug) is not None:
        if state.draw(state.config.race_500_rate):
            return crash()
        raise HTTPException(status_code=409, detail=f"Endpoint slug '{request.slug}' already exists")
    if request.dataset_id is not None and table.datasets.by_id(tenant.id, str(request.dataset_id)) is None:
        raise HTTPException(status_code=404, detail=f"Dataset '{request.dataset_id}' not found")
    if (
        request.model_id is not None
        and not table.conn.execute(
            "SELECT 1 FROM models WHERE tenant_id = ? AND id = ?", (tenant.id, str(request.model_id))
        ).fetchone()
    ):
        raise HTTPException(status_code=404, detail=f"Model '{request.model_id}' not found")
    return send_json(table.created(table.insert(tenant.id, request)), 201)


def _update(table: Endpoints, row: Mapping[str, Any], request: UpdateEndpointRequest) -> None:
    # slug, response_type, tags, published and the references are not fields here: ignored.
    changes: dict[str, Any] = {
        k: v
        for k, v in (
            ("name", request.name),
            ("summary", request.summary),
            ("description", request.description),
        )
        if v is not None
    }
    if request.system_prompt is not None:
        changes["system_prompt"] = request.system_prompt or None  # "" clears it
    changes["updated_at"] = now()
    table.conn.execute(
        f"UPDATE endpoints SET {', '.join(f'{k} = ?' for k in changes)} WHERE id = ?",
        (*changes.values(), row["id"]),
    )


def register(app: FastAPI, state: SandboxState, datasets: Datasets) -> Endpoints:
    """Add the endpoints routes."""
    table = Endpoints(state, datasets)
    router = Routes(app, "/api/v1/endpoints", tags=["endpoints"])

    def found_or_404(tenant: Tenant, slug: str) -> dict[str, Any]:
        # Exact match: `E-One` was stored as `e-one` and is not found by `E-One`.
        found = table.find(tenant.id, slug)
        if found is None:
            raise HTTPException(status_code=404, detail=f"Endpoint '{slug}' not found")
        return found

    @router.post("/validate-slug", response_model=ValidateSlugResponse)
    async def validate_slug(request: ValidateSlugRequest, tenant: _TenantDep) -> Response:
        # Neither validated nor lower-cased; no marketplace is known here.
        marketplaces: list[dict[str, Any]] | None = None
        if request.check_all_marketplaces:
            marketplaces = []
        elif request.marketplace_ids is not None:
            marketplaces = [
                {"marketplace_id": str(m), "available": None, "error": "Marketplace not found"}
                for m in request.marketplace_ids
            ]
        free = table.find(tenant.id, request.slug) is None
        return send_json({"slug": request.slug, "local_available": free, "marketplaces": marketplaces})

    @router.get("/", response_model=list[EndpointListEntry])
    async def list_endpoints(tenant: _TenantDep) -> Response:
        found = rows(
            table.conn.execute(
                f"SELECT {_COLUMNS} FROM endpoints WHERE tenant_id = ? ORDER BY slug", (tenant.id,)
            )
        )
        return send_json([table.list_item(r) for r in found])

    @router.post("/", response_model=EndpointCreateResponse, status_code=201)
    async def create_endpoint(request: CreateEndpointRequest, tenant: _TenantDep) -> Response:
        return _create(state, table, tenant, request)

    @router.get("/{slug}", response_model=EndpointDetailResponse)
    async def get_endpoint(slug: str, tenant: _TenantDep) -> Response:
        return send_json(table.detail(found_or_404(tenant, slug)))

    @router.patch("/{slug}", response_model=EndpointDetailResponse)
    async def update_endpoint(slug: str, request: UpdateEndpointRequest, tenant: _TenantDep) -> Response:
        _update(table, found_or_404(tenant, slug), request)
        return send_json(table.detail(found_or_404(tenant, slug)))

    @router.delete("/{slug}", response_model=dict[str, str])
    async def delete_endpoint(slug: str, tenant: _TenantDep) -> Response:
        row = found_or_404(tenant, slug)
        # The policies stay, orphaned: from now on their tenant's GET /policies/ is a 500.
        table.conn.execute("UPDATE policies SET endpoint_id = NULL WHERE endpoint_id = ?", (row["id"],))
        table.conn.execute("DELETE FROM endpoints WHERE id = ?", (row["id"],))
        return send_json({"message": f"Successfully deleted endpoint '{slug}'"})

    _action_routes(router, table, found_or_404)
    return table


def _action_routes(router: Routes, table: Endpoints, found_or_404: Any) -> None:
    async def set_archived(slug: str, tenant: Tenant, archived: bool) -> Response:
        row = found_or_404(tenant, slug)
        if bool(row["archived"]) == archived:
            raise HTTPException(
                status_code=400,
                detail="Endpoint is already archived" if archived else "Endpoint is not archived",
            )
        table.conn.execute(
            "UPDATE endpoints SET archived = ?, updated_at = ? WHERE id = ?",
            (int(archived), now(), row["id"]),
        )
        return send_json(table.detail(found_or_404(tenant, slug)))

    @router.post("/{slug}/archive", response_model=EndpointDetailResponse)
    async def archive_endpoint(slug: str, tenant: _TenantDep) -> Response:
        return await set_archived(slug, tenant, True)

    @router.post("/{slug}/unarchive", response_model=EndpointDetailResponse)
    async def unarchive_endpoint(slug: str, tenant: _TenantDep) -> Response:
        return await set_archived(slug, tenant, False)

    @router.post("/{slug}/publish", response_model=dict[str, Any])
    async def publish_endpoint(slug: str, request: PublishEndpointRequest, tenant: _TenantDep) -> Response:
        if not request.publish_to_all_marketplaces and not request.marketplace_ids:
            raise HTTPException(
                status_code=400,
                detail="Either marketplace_ids or publish_to_all_marketplaces must be provided",
            )
        found_or_404(tenant, slug)
        if request.publish_to_all_marketplaces:
            raise HTTPException(status_code=400, detail="No active marketplaces found")
        unknown = [str(m) for m in request.marketplace_ids or ()]
        raise HTTPException(status_code=404, detail=f"Marketplaces not found: {unknown}")

    @router.delete("/{slug}/unpublish", response_model=dict[str, Any])
    async def unpublish_endpoint(slug: str, tenant: _TenantDep) -> Response:
        found_or_404(tenant, slug)
        raise HTTPException(status_code=400, detail="Endpoint is not published")  # no marketplace here

    @router.post("/{slug}/query", response_model=dict[str, Any])
    async def query_endpoint(slug: str) -> Response:
        raise HTTPException(status_code=400, detail="No marketplace configured")
