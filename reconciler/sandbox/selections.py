"""A dataset's selection (`/api/v1/datasets/{name}/selection`): the picked items, as the real
server keeps and answers them.

../shared/syft-space-api-selections.md is the reference: identity is `(dataset, item_id)` by exact
string; an add is idempotent per item and the stored description wins (within one request, the
first occurrence); a remove is idempotent and ignores unknown ids; every view is oldest `added_at`
first (ties: the order the picks were stored in, which is request order); the page is 50 by default
and at most 200, the ids unpaged, and POST/DELETE answer the whole selection with a 200. Selection
changes never touch the dataset row (its `updated_at` stays). Owns the `dataset_items` table.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Annotated, Any

from fastapi import Depends, Query
from fastapi.responses import Response

from reconciler.sandbox.kind_bodies import (
    AddSelectionRequest,
    RemoveSelectionRequest,
    SelectedItemRequest,
    SelectionIds,
    SelectionPage,
    SelectionResponse,
)
from reconciler.sandbox.routing import Routes, send_json
from reconciler.sandbox.store import Tenant
from reconciler.sandbox.tables import now, rows
from reconciler.sandbox.tenancy import current_tenant

_TenantDep = Annotated[Tenant, Depends(current_tenant)]

PREVIEW = 3  # a list item's `selected_items_preview`: the first three picks
PAGE_DEFAULT = 50
PAGE_MAX = 200
_ITEM = "SELECT item_id, description, added_at FROM dataset_items WHERE dataset_id = ?"
_ORDER = " ORDER BY added_at, rowid"


def picks(conn: Any, dataset_id: str, *, limit: int = -1, offset: int = 0) -> list[dict[str, Any]]:
    """`[{item_id, description, added_at}]`, oldest first; `limit` -1 is all of them."""
    return rows(conn.execute(_ITEM + _ORDER + " LIMIT ? OFFSET ?", (dataset_id, limit, offset)))


def count(conn: Any, dataset_id: str) -> int:
    """`selected_items_count`."""
    return int(
        conn.execute("SELECT count(*) FROM dataset_items WHERE dataset_id = ?", (dataset_id,)).fetchone()[0]
    )


def add(conn: Any, dataset_id: str, items: Iterable[SelectedItemRequest], stamp: str | None = None) -> None:
    """Store new picks at the end, in request order; a pick already stored keeps its row (and so
    its description and place), and a repeated id keeps its first occurrence."""
    stamp = now() if stamp is None else stamp
    conn.executemany(
        "INSERT OR IGNORE INTO dataset_items (dataset_id, item_id, description, added_at)"
        " VALUES (?, ?, ?, ?)",
        [(dataset_id, item.item_id, item.description, stamp) for item in items],
    )


def remove(conn: Any, dataset_id: str, item_ids: Iterable[str]) -> None:
    """Drop the picks with exactly these ids; unknown ids are ignored."""
    conn.executemany(
        "DELETE FROM dataset_items WHERE dataset_id = ? AND item_id = ?",
        [(dataset_id, item_id) for item_id in item_ids],
    )


def drop_all(conn: Any, dataset_id: str) -> None:
    """The dataset is gone: its picks go with it (a recreate starts empty)."""
    conn.execute("DELETE FROM dataset_items WHERE dataset_id = ?", (dataset_id,))


def register(router: Routes, conn: Callable[[], Any], found_or_404: Callable[[Tenant, str], Any]) -> None:
    """Add the four selection routes under the datasets router (the 307 on a trailing slash is
    the router's own)."""

    def whole(dataset_id: str) -> Response:
        return send_json({"selected_items": picks(conn(), dataset_id)})

    @router.get("/{name}/selection", response_model=SelectionPage)
    async def get_selection(
        name: str,
        tenant: _TenantDep,
        limit: Annotated[int, Query(ge=1, le=PAGE_MAX)] = PAGE_DEFAULT,
        offset: Annotated[int, Query(ge=0)] = 0,
    ) -> Response:
        dataset_id = found_or_404(tenant, name)["id"]
        page = picks(conn(), dataset_id, limit=limit, offset=offset)
        return send_json({"items": page, "total": count(conn(), dataset_id)})

    @router.get("/{name}/selection/ids", response_model=SelectionIds)
    async def get_selection_ids(name: str, tenant: _TenantDep) -> Response:
        dataset_id = found_or_404(tenant, name)["id"]
        found = conn().execute(
            "SELECT item_id FROM dataset_items WHERE dataset_id = ?" + _ORDER, (dataset_id,)
        )
        return send_json({"item_ids": [r[0] for r in found]})

    # The body is checked before the dataset (422 before 404), the tenant before the body.
    @router.post("/{name}/selection", response_model=SelectionResponse)
    async def add_selection(name: str, request: AddSelectionRequest, tenant: _TenantDep) -> Response:
        dataset_id = found_or_404(tenant, name)["id"]
        add(conn(), dataset_id, request.items)
        return whole(dataset_id)

    @router.delete("/{name}/selection", response_model=SelectionResponse)
    async def remove_selection(name: str, request: RemoveSelectionRequest, tenant: _TenantDep) -> Response:
        dataset_id = found_or_404(tenant, name)["id"]
        remove(conn(), dataset_id, request.item_ids)
        return whole(dataset_id)
