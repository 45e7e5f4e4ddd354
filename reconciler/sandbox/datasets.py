"""Datasets (`/api/v1/datasets`), addressed by name, and their types, as the real server answers.

syft-space-api-kinds.md, "Datasets", is the reference for every status, body and order of checks.
`remote_weaviate` contacts nothing, as on the real server. `local_file` and `wordpress` share a
chroma provisioner that is only imitated (`SandboxConfig.provisioner`: `ok` or `missing`), and
WordPress's site is never contacted: every site counts as reachable.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException
from fastapi.responses import Response

from reconciler.sandbox import selections
from reconciler.sandbox.catalog import ConfigurationInvalid, KindType
from reconciler.sandbox.kind_bodies import (
    CreateDatasetRequest,
    DatasetHealthResponse,
    DatasetListItem,
    DatasetResponse,
    DatasetTypeInfoResponse,
    UpdateDatasetRequest,
)
from reconciler.sandbox.routing import Routes, crash, send_json
from reconciler.sandbox.state import SandboxState
from reconciler.sandbox.store import Tenant
from reconciler.sandbox.tables import dump, now, rows
from reconciler.sandbox.tenancy import current_tenant

_TenantDep = Annotated[Tenant, Depends(current_tenant)]

# The chroma types and their one shared provisioner (port 8100 on the recorded server).
CHROMA_TYPES = frozenset({"local_file", "wordpress"})
PROVISIONER = "chromadb_local"
PROVISIONER_PORT = 8100
_NO_CHROMA = f"Failed to start provisioner for '{PROVISIONER}': [Errno 2] No such file or directory: 'chroma'"
# Server paths and a PID, as the real provisioner state exposes them; these ones are made up.
_PROVISIONER_STATE = {
    "pid": 4242,
    "pid_file": f"/var/lib/syft-space/provisioners/{PROVISIONER}/chroma.pid",
    "data_path": f"/var/lib/syft-space/provisioners/{PROVISIONER}/data",
    "httpPort": PROVISIONER_PORT,
}
_COLUMNS = "id, name, dtype, configuration, summary, tags, created_at, updated_at"


def provisioner_state(state: SandboxState, dtype: str) -> dict[str, Any] | None:
    """The embedded `provisioner_state` of a dataset of this type (None: no provisioner)."""
    if dtype not in CHROMA_TYPES:
        return None
    if state.config.provisioner == "missing":
        return {"status": "error", "state": {}, "started_at": None, "stopped_at": None, "error": _NO_CHROMA}
    return {
        "status": "running",
        "state": dict(_PROVISIONER_STATE),
        "started_at": state.provisioner_started_at,
        "stopped_at": None,
        "error": None,
    }


def output_configuration(kind: KindType | None, configuration: Mapping[str, Any]) -> dict[str, Any]:
    """The configuration as sent back: stored, minus the fields the type never echoes."""
    dropped = kind.dropped if kind is not None else frozenset()
    return {k: v for k, v in configuration.items() if k not in dropped}


def connected_endpoints(conn: Any, column: str, row_id: str) -> list[dict[str, Any]]:
    """`[{id, name, slug}]` of the endpoints whose `column` is `row_id`, by slug."""
    return rows(
        conn.execute(f"SELECT id, name, slug FROM endpoints WHERE {column} = ? ORDER BY slug", (row_id,))
    )


class Datasets:
    """The datasets table, answered in the server's three shapes (object, list item, embedded)."""

    def __init__(self, state: SandboxState) -> None:
        self.state = state

    @property
    def conn(self) -> Any:
        return self.state.store.conn

    def find(self, tenant_id: str, name: str) -> dict[str, Any] | None:
        found = rows(
            self.conn.execute(
                f"SELECT {_COLUMNS} FROM datasets WHERE tenant_id = ? AND name = ?", (tenant_id, name)
            )
        )
        return found[0] if found else None

    def by_id(self, tenant_id: str, dataset_id: str) -> dict[str, Any] | None:
        found = rows(
            self.conn.execute(
                f"SELECT {_COLUMNS} FROM datasets WHERE tenant_id = ? AND id = ?", (tenant_id, dataset_id)
            )
        )
        return found[0] if found else None

    def configuration(self, row: Mapping[str, Any]) -> dict[str, Any]:
        return output_configuration(self.state.dataset_types.get(row["dtype"]), row["configuration"])

    def body(self, row: Mapping[str, Any]) -> dict[str, Any]:
        """DatasetResponse: POST, GET one, PATCH."""
        return {
            "id": row["id"],
            "name": row["name"],
            "dtype": row["dtype"],
            "configuration": self.configuration(row),
            "summary": row["summary"],
            "tags": row["tags"],
            "provisioner_state": provisioner_state(self.state, row["dtype"]),
            "created_at": row["created_at"],
            "updated_at": row["updated_at"],
            "connected_endpoints": connected_endpoints(self.conn, "dataset_id", row["id"]),
        }

    def list_item(self, row: Mapping[str, Any]) -> dict[str, Any]:
        provisioner = provisioner_state(self.state, row["dtype"])
        return {
            "id": row["id"],
            "name": row["name"],
            "dtype": row["dtype"],
            "summary": row["summary"],
            "tags": row["tags"],
            "created_at": row["created_at"],
            "connected_endpoints": connected_endpoints(self.conn, "dataset_id", row["id"]),
            "provisioner_status": (
                None
                if provisioner is None
                else {"status": provisioner["status"], "error": provisioner["error"]}
            ),
            "configuration": self.configuration(row),
            "selected_items_count": selections.count(self.conn, row["id"]),
            "selected_items_preview": selections.picks(self.conn, row["id"], limit=selections.PREVIEW),
        }

    def embedded(self, row: Mapping[str, Any]) -> dict[str, Any]:
        """The `dataset` inside an endpoint's detail and list item."""
        return {
            "id": row["id"],
            "name": row["name"],
            "summary": row["summary"],
            "dtype": row["dtype"],
            "configuration": self.configuration(row),
            "selected_items_count": selections.count(self.conn, row["id"]),
        }

    def in_tenant(self, tenant_id: str) -> list[dict[str, Any]]:
        return rows(
            self.conn.execute(
                f"SELECT {_COLUMNS} FROM datasets WHERE tenant_id = ? ORDER BY name", (tenant_id,)
            )
        )

    def insert(
        self, tenant_id: str, request: CreateDatasetRequest, configuration: Mapping[str, Any]
    ) -> dict[str, Any]:
        stamp = now()
        dataset_id = str(uuid.uuid4())
        self.conn.execute(
            "INSERT INTO datasets (id, tenant_id, name, dtype, configuration, summary, tags, created_at,"
            " updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                dataset_id,
                tenant_id,
                request.name,
                request.dtype,
                dump(configuration),
                request.summary,
                request.tags,
                stamp,
                stamp,
            ),
        )
        # In request order, one stamp; duplicates collapse (the first occurrence stays).
        selections.add(self.conn, dataset_id, request.selected_items, stamp)
        found = self.by_id(tenant_id, dataset_id)
        assert found is not None
        return found

    def users(self, dataset_id: str) -> list[str]:
        """Display names of the endpoints using a dataset, in creation order."""
        return [
            r[0]
            for r in self.conn.execute(
                "SELECT name FROM endpoints WHERE dataset_id = ? ORDER BY rowid", (dataset_id,)
            )
        ]


def _checked_configuration(state: SandboxState, kind: KindType, sent: Mapping[str, Any]) -> dict[str, Any]:
    """The configuration to store: as sent, with the chroma types' `collectionName` generated."""
    configuration = dict(sent)
    if kind.name in CHROMA_TYPES and "collectionName" not in configuration:
        configuration["collectionName"] = uuid.uuid4().hex
    kind.validate(configuration)  # remote_weaviate: validated, stored as sent
    return configuration


def _type_routes(app: FastAPI, state: SandboxState) -> None:
    router = Routes(app, "/api/v1/datasets", tags=["datasets"])

    def type_or_404(name: str) -> KindType:
        found = state.dataset_types.get(name)
        if found is None:
            raise HTTPException(status_code=404, detail=f"Dataset type '{name}' not found")
        return found

    @router.get("/types/", response_model=list[DatasetTypeInfoResponse])
    async def list_dataset_types() -> Response:
        return send_json([t.info() for t in state.dataset_types.values()])

    @router.get("/types/{name}", response_model=DatasetTypeInfoResponse)
    async def get_dataset_type(name: str) -> Response:
        return send_json(type_or_404(name).info())

    @router.get("/types/{name}/schema", response_model=dict[str, Any])
    async def get_dataset_type_schema(name: str) -> Response:
        return send_json(type_or_404(name).config_schema)


def _create(state: SandboxState, table: Datasets, tenant: Tenant, request: CreateDatasetRequest) -> Response:
    # Order: body → dtype → configuration → name → provisioner.
    kind = state.dataset_types.get(request.dtype)
    if kind is None:
        raise HTTPException(status_code=400, detail=f"Dataset type '{request.dtype}' not found")
    try:
        configuration = _checked_configuration(state, kind, request.configuration)
    except ConfigurationInvalid as exc:
        raise HTTPException(status_code=400, detail=str(exc)) from None
    if table.find(tenant.id, request.name) is not None:
        if state.draw(state.config.race_500_rate):
            return crash()
        raise HTTPException(status_code=409, detail=f"Dataset '{request.name}' already exists")
    if kind.name in CHROMA_TYPES:
        if state.config.provisioner == "missing":
            raise HTTPException(status_code=500, detail=_NO_CHROMA)  # nothing stored
        if state.provisioner_started_at is None:
            state.provisioner_started_at = now()
        configuration["httpPort"] = PROVISIONER_PORT  # overwritten, whatever was sent
    return send_json(table.body(table.insert(tenant.id, request, configuration)), 201)


def _update(
    table: Datasets, tenant: Tenant, row: Mapping[str, Any], request: UpdateDatasetRequest
) -> Response:
    new_name = request.name
    if new_name is not None and new_name != row["name"] and table.find(tenant.id, new_name) is not None:
        raise HTTPException(status_code=409, detail=f"Dataset '{new_name}' already exists for this tenant")
    changes = {"name": new_name, "summary": request.summary, "tags": request.tags}
    sets = [(k, v) for k, v in changes.items() if v is not None]
    table.conn.execute(
        f"UPDATE datasets SET {', '.join(f'{k} = ?' for k, _ in sets)}, updated_at = ? WHERE id = ?",
        (*(v for _, v in sets), now(), row["id"]),
    )
    updated = table.by_id(tenant.id, row["id"])
    assert updated is not None
    return send_json(table.body(updated))


def _delete(table: Datasets, row: Mapping[str, Any]) -> Response:
    name = row["name"]
    users = table.users(row["id"])
    if users:
        names = ", ".join(f"'{u}'" for u in users)
        raise HTTPException(
            status_code=409,
            detail=f"Cannot delete data source '{name}': it is used by {len(users)} API(s): {names}."
            " Remove it from those APIs first.",
        )
    selections.drop_all(table.conn, row["id"])
    table.conn.execute("DELETE FROM datasets WHERE id = ?", (row["id"],))
    return send_json({"message": f"Successfully deleted dataset '{name}'"})


def register(app: FastAPI, state: SandboxState) -> Datasets:
    """Add the datasets routes (types first: `/datasets/types` alone is the dataset `types`)."""
    _type_routes(app, state)
    table = Datasets(state)
    router = Routes(app, "/api/v1/datasets", tags=["datasets"])

    def found_or_404(tenant: Tenant, name: str) -> dict[str, Any]:
        found = table.find(tenant.id, name)
        if found is None:
            raise HTTPException(status_code=404, detail=f"Dataset '{name}' not found")
        return found

    @router.get("/", response_model=list[DatasetListItem])
    async def list_datasets(tenant: _TenantDep) -> Response:
        return send_json([table.list_item(r) for r in table.in_tenant(tenant.id)])

    @router.post("/", response_model=DatasetResponse, status_code=201)
    async def create_dataset(request: CreateDatasetRequest, tenant: _TenantDep) -> Response:
        return _create(state, table, tenant, request)

    @router.get("/{name}", response_model=DatasetResponse)
    async def get_dataset(name: str, tenant: _TenantDep) -> Response:
        return send_json(table.body(found_or_404(tenant, name)))

    @router.patch("/{name}", response_model=DatasetResponse)
    async def update_dataset(name: str, request: UpdateDatasetRequest, tenant: _TenantDep) -> Response:
        return _update(table, tenant, found_or_404(tenant, name), request)

    @router.delete("/{name}", response_model=dict[str, str])
    async def delete_dataset(name: str, tenant: _TenantDep) -> Response:
        return _delete(table, found_or_404(tenant, name))

    _item_routes(router, state, table, found_or_404)
    return table


def _item_routes(router: Routes, state: SandboxState, table: Datasets, found_or_404: Any) -> None:
    @router.get("/{name}/health", response_model=DatasetHealthResponse)
    async def dataset_health(name: str, tenant: _TenantDep) -> Response:
        # Public, like the models' health. No client libraries: the type check is unhealthy.
        row = found_or_404(tenant, name)
        provisioner = provisioner_state(state, row["dtype"])
        library = "Weaviate" if row["dtype"] == "remote_weaviate" else "ChromaDB"
        return send_json(
            {
                "dataset_type_status": "unhealthy",
                "provisioner_status": None if provisioner is None else provisioner["status"],
                "message": f"Dataset type healthcheck: {library} dependencies not installed. ",
            }
        )

    selections.register(router, lambda: table.conn, found_or_404)
