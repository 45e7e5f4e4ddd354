"""Policies (`/api/v1/policies`), addressed by UUID, and their types, as the real server answers.

syft-space-api-kinds.md, "Policies": configuration normalised (defaults filled in, unknown keys
dropped), PATCH a shallow merge, and the server's unhandled 500s (connection closed after them)
for a duplicate name on one endpoint, an unknown `endpoint_id`, a rename onto a sibling's name
and any read of an orphaned policy. `endpoint_id` is not checked against the tenant: a policy can
hang on another tenant's endpoint, as on the real server.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException
from fastapi.responses import Response

from reconciler.sandbox.catalog import ConfigurationInvalid, KindType
from reconciler.sandbox.kind_bodies import (
    CreatePolicyRequest,
    PolicyListItem,
    PolicyResponse,
    PolicyTypeInfoResponse,
    UpdatePolicyRequest,
)
from reconciler.sandbox.routing import Routes, crash, send_json
from reconciler.sandbox.state import SandboxState
from reconciler.sandbox.store import Tenant
from reconciler.sandbox.tables import dump, now, rows
from reconciler.sandbox.tenancy import current_tenant

_TenantDep = Annotated[Tenant, Depends(current_tenant)]
_COLUMNS = "id, name, policy_type, configuration, endpoint_id, wallet_id, created_at, updated_at"


class _Orphaned(Exception):
    """A policy whose endpoint is gone: the server cannot serialise it (a 500)."""


def _body(row: Mapping[str, Any]) -> dict[str, Any]:
    if row["endpoint_id"] is None:
        raise _Orphaned(row["id"])
    return {k: row[k] for k in _COLUMNS.split(", ")}


def _list_item(row: Mapping[str, Any]) -> dict[str, Any]:
    body = _body(row)
    del body["configuration"], body["updated_at"]
    return body


def _type_routes(app: FastAPI, state: SandboxState) -> None:
    router = Routes(app, "/api/v1/policies", tags=["policies"])

    def type_or_404(name: str) -> KindType:
        found = state.policy_types.get(name)
        if found is None:
            raise HTTPException(status_code=404, detail=f"Policy type '{name}' not found")
        return found

    @router.get("/types/", response_model=list[PolicyTypeInfoResponse])
    async def list_policy_types() -> Response:
        return send_json([t.info() for t in state.policy_types.values()])

    @router.get("/types/{name}", response_model=PolicyTypeInfoResponse)
    async def get_policy_type(name: str) -> Response:
        return send_json(type_or_404(name).info())

    @router.get("/types/{name}/schema", response_model=dict[str, Any])
    async def get_policy_type_schema(name: str) -> Response:
        return send_json(type_or_404(name).config_schema)


class Policies:
    """The policies table: reads, and the writes whose checks run in the server's order."""

    def __init__(self, state: SandboxState) -> None:
        self.state = state

    @property
    def conn(self) -> Any:
        return self.state.store.conn

    def found_or_404(self, tenant: Tenant, policy_id: uuid.UUID) -> dict[str, Any]:
        found = rows(
            self.conn.execute(
                f"SELECT {_COLUMNS} FROM policies WHERE tenant_id = ? AND id = ?", (tenant.id, str(policy_id))
            )
        )
        if not found:
            raise HTTPException(status_code=404, detail=f"Policy '{policy_id}' not found")
        return found[0]

    def name_taken(self, endpoint_id: str, name: str, *, other_than: str | None = None) -> bool:
        return (
            self.conn.execute(
                "SELECT 1 FROM policies WHERE endpoint_id = ? AND name = ? AND id IS NOT ?",
                (endpoint_id, name, other_than),
            ).fetchone()
            is not None
        )

    def list_all(self, tenant: Tenant) -> Response:
        found = rows(
            self.conn.execute(
                f"SELECT {_COLUMNS} FROM policies WHERE tenant_id = ? ORDER BY rowid", (tenant.id,)
            )
        )
        try:
            return send_json([_list_item(r) for r in found])
        except _Orphaned:
            return crash()  # one orphan breaks the whole tenant's list

    def create(self, tenant: Tenant, request: CreatePolicyRequest) -> Response:
        # Order: body → type → configuration → wallet rule → database.
        kind = self.state.policy_types.get(request.policy_type)
        if kind is None:
            raise HTTPException(status_code=400, detail=f"Policy type '{request.policy_type}' not found")
        try:
            configuration = kind.normalised(request.configuration)
        except ConfigurationInvalid as exc:
            raise HTTPException(status_code=400, detail=str(exc)) from None
        if request.wallet_id is not None:  # none of the rebuilt types takes a wallet
            raise HTTPException(
                status_code=400, detail=f"wallet_id is not applicable for {kind.name} policies"
            )
        endpoint_id = str(request.endpoint_id)
        # Any tenant's endpoint will do (the real server's hole); an unknown one, or a name
        # taken on that endpoint, is an unhandled database error.
        if self.conn.execute("SELECT 1 FROM endpoints WHERE id = ?", (endpoint_id,)).fetchone() is None:
            return crash()
        if self.name_taken(endpoint_id, request.name):
            return crash()
        stamp = now()
        policy_id = uuid.uuid4()
        self.conn.execute(
            f"INSERT INTO policies (tenant_id, {_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                tenant.id,
                str(policy_id),
                request.name,
                kind.name,
                dump(configuration),
                endpoint_id,
                None,
                stamp,
                stamp,
            ),
        )
        return send_json(_body(self.found_or_404(tenant, policy_id)), 201)

    def update(self, tenant: Tenant, policy_id: uuid.UUID, request: UpdatePolicyRequest) -> Response:
        # policy_type, endpoint_id and wallet_id are not fields here: ignored.
        row = self.found_or_404(tenant, policy_id)
        if row["endpoint_id"] is None:
            return crash()
        configuration = row["configuration"]
        if request.configuration is not None:
            kind = self.state.policy_types.get(row["policy_type"])
            merged = {**configuration, **request.configuration}  # shallow: keys cannot be removed
            try:
                configuration = kind.normalised(merged) if kind is not None else merged
            except ConfigurationInvalid as exc:
                raise HTTPException(status_code=400, detail=str(exc)) from None
        name = row["name"] if request.name is None else request.name
        if self.name_taken(row["endpoint_id"], name, other_than=row["id"]):
            return crash()
        self.conn.execute(
            "UPDATE policies SET name = ?, configuration = ?, updated_at = ? WHERE id = ?",
            (name, dump(configuration), now(), row["id"]),
        )
        return send_json(_body(self.found_or_404(tenant, policy_id)))


def register(app: FastAPI, state: SandboxState) -> None:
    """Add the policies routes (types first: `/policies/types` alone is a policy id, a 422)."""
    _type_routes(app, state)
    table = Policies(state)
    router = Routes(app, "/api/v1/policies", tags=["policies"])

    @router.get("/", response_model=list[PolicyListItem])
    async def list_policies(tenant: _TenantDep) -> Response:
        return table.list_all(tenant)

    @router.post("/", response_model=PolicyResponse, status_code=201)
    async def create_policy(request: CreatePolicyRequest, tenant: _TenantDep) -> Response:
        return table.create(tenant, request)

    @router.get("/{policy_id}", response_model=PolicyResponse)
    async def get_policy(policy_id: uuid.UUID, tenant: _TenantDep) -> Response:
        try:
            return send_json(_body(table.found_or_404(tenant, policy_id)))
        except _Orphaned:
            return crash()

    @router.patch("/{policy_id}", response_model=PolicyResponse)
    async def update_policy(
        policy_id: uuid.UUID, request: UpdatePolicyRequest, tenant: _TenantDep
    ) -> Response:
        return table.update(tenant, policy_id, request)

    @router.delete("/{policy_id}", response_model=dict[str, str])
    async def delete_policy(policy_id: uuid.UUID, tenant: _TenantDep) -> Response:
        row = table.found_or_404(tenant, policy_id)  # orphans too: the way out of the broken list
        table.conn.execute("DELETE FROM policies WHERE id = ?", (row["id"],))
        return send_json({"message": f"Successfully deleted policy '{policy_id}'"})
