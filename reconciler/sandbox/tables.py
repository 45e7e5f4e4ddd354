"""The sandbox's SQLite tables, and JSON in and out of their columns.

Tenants and models (read back as ready-made JSON by store.py), datasets with their selected
items, endpoints and policies (read by their own modules). No foreign keys: what a delete does to
the rows that point at it is the server's quirk to imitate, in code (store.py, endpoints.py).
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS tenants (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL UNIQUE,
    display_name TEXT NOT NULL,
    domain       TEXT UNIQUE,
    is_active    INTEGER NOT NULL DEFAULT 1,
    meta         TEXT NOT NULL DEFAULT '{}',
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS models (
    id            TEXT PRIMARY KEY,
    tenant_id     TEXT NOT NULL REFERENCES tenants(id),
    name          TEXT NOT NULL,
    dtype         TEXT NOT NULL,
    configuration TEXT NOT NULL,
    summary       TEXT NOT NULL,
    tags          TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL,
    UNIQUE (tenant_id, name)
);
CREATE TABLE IF NOT EXISTS datasets (
    id            TEXT PRIMARY KEY,
    tenant_id     TEXT NOT NULL REFERENCES tenants(id),
    name          TEXT NOT NULL,
    dtype         TEXT NOT NULL,
    configuration TEXT NOT NULL,
    summary       TEXT NOT NULL,
    tags          TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL,
    UNIQUE (tenant_id, name)
);
CREATE TABLE IF NOT EXISTS dataset_items (
    dataset_id  TEXT NOT NULL,
    item_id     TEXT NOT NULL,
    description TEXT,
    added_at    TEXT NOT NULL,
    PRIMARY KEY (dataset_id, item_id)
);
-- Every view of a selection is oldest first (selections.py); an older file gains it on open.
CREATE INDEX IF NOT EXISTS dataset_items_order ON dataset_items (dataset_id, added_at);
CREATE TABLE IF NOT EXISTS endpoints (
    id            TEXT PRIMARY KEY,
    tenant_id     TEXT NOT NULL REFERENCES tenants(id),
    name          TEXT NOT NULL,
    slug          TEXT NOT NULL,
    description   TEXT NOT NULL,
    summary       TEXT NOT NULL,
    response_type TEXT NOT NULL,
    published     INTEGER NOT NULL,
    tags          TEXT NOT NULL,
    system_prompt TEXT,
    model_id      TEXT,
    dataset_id    TEXT,
    archived      INTEGER NOT NULL DEFAULT 0,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL,
    UNIQUE (tenant_id, slug)
);
CREATE INDEX IF NOT EXISTS endpoints_model ON endpoints (model_id);
CREATE INDEX IF NOT EXISTS endpoints_dataset ON endpoints (dataset_id);
CREATE TABLE IF NOT EXISTS policies (
    id            TEXT PRIMARY KEY,
    tenant_id     TEXT NOT NULL REFERENCES tenants(id),
    name          TEXT NOT NULL,
    policy_type   TEXT NOT NULL,
    configuration TEXT NOT NULL,
    endpoint_id   TEXT,
    wallet_id     TEXT,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL,
    UNIQUE (endpoint_id, name)
);
CREATE INDEX IF NOT EXISTS policies_tenant ON policies (tenant_id);
"""


def now() -> str:
    """A naive ISO 8601 timestamp in UTC, as the real server sends (`2026-11-26T18:14:33.508858`)."""
    return datetime.now(timezone.utc).replace(tzinfo=None).isoformat()


def open_db_file(path: str | Path) -> None:
    """Create the parent folder and an owner-only (0600) file before SQLite opens it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
    os.close(fd)


def _finite(value: Any) -> Any:
    """NaN and ±Infinity as null: what the real server's pydantic serializer sends back for them."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def _dump(value: Any) -> str:
    try:
        return json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    except ValueError:
        return json.dumps(_finite(value), ensure_ascii=False, separators=(",", ":"))


def dump(value: Any) -> str:
    """JSON text to store, as compact as the responses (non-finite numbers become null)."""
    return _dump(value)


_JSON_COLUMNS = frozenset({"configuration"})


def rows(cursor: sqlite3.Cursor) -> list[dict[str, Any]]:
    """A query's rows as dicts by column name, JSON columns decoded."""
    names = [d[0] for d in cursor.description]
    return [
        {
            n: json.loads(v) if n in _JSON_COLUMNS and v is not None else v
            for n, v in zip(names, row, strict=True)
        }
        for row in cursor
    ]
