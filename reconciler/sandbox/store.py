"""The sandbox's state in SQLite: tenants and models (answered as ready-made JSON), and the tables
of datasets, endpoints and policies (their own modules read and write them).

One connection, used only from the server's event loop (async handlers call it directly, so each
call is atomic with respect to other requests). UNIQUE(tenant_id, name) holds at the database
level as well. Responses are built by SQLite's JSON functions: no per-row Python objects, which
keeps a list of 10,000 models cheap. Knows nothing of HTTP.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reconciler.sandbox.tables import SCHEMA, dump, now, open_db_file

ROOT_TENANT = "root"


# The three shapes of a model on the wire (syft-space-api.md, "Model object").
_RESPONSE = "response"  # POST and PATCH: no connected_endpoints
_WITH_ENDPOINTS = "with_endpoints"  # GET one
_LIST_ITEM = "list_item"  # GET all: no updated_at


class NameTaken(Exception):
    """A model or tenant with that name (or domain) already exists."""


@dataclass(frozen=True)
class Tenant:
    """What the tenancy checks need of a tenant."""

    id: str
    name: str
    is_active: bool


def _sql_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _configuration_sql(redact: Mapping[str, frozenset[str]]) -> str:
    """SQL for the configuration as sent back: stored JSON, minus the dtype's secret fields."""
    cases = []
    for dtype, fields in sorted(redact.items()):
        if not fields:
            continue
        paths = ", ".join(_sql_literal('$."' + f.replace('"', '\\"') + '"') for f in sorted(fields))
        cases.append(f"WHEN {_sql_literal(dtype)} THEN json_remove(configuration, {paths})")
    if not cases:
        return "json(configuration)"
    return f"CASE dtype {' '.join(cases)} ELSE json(configuration) END"


def _model_sql(shape: str, configuration: str) -> str:
    fields = [
        "'id', id",
        "'name', name",
        "'dtype', dtype",
        f"'configuration', {configuration}",
        "'summary', summary",
        "'tags', tags",
        "'created_at', created_at",
    ]
    if shape != _LIST_ITEM:
        fields.append("'updated_at', updated_at")
    if shape != _RESPONSE:
        fields.append(f"'connected_endpoints', {CONNECTED_ENDPOINTS_SQL.format(column='model_id')}")
    return "json_object(" + ", ".join(fields) + ")"


# `connected_endpoints: [{id, name, slug}]` of a model or dataset row, by slug; `{column}` is the
# endpoints' reference column (syft-space-api-kinds.md, "Dataset object").
CONNECTED_ENDPOINTS_SQL = (
    "(SELECT json_group_array(json(e)) FROM (SELECT json_object('id', id, 'name', name, 'slug', slug)"
    " AS e FROM endpoints WHERE endpoints.{column} = outer_row.id ORDER BY slug))"
)


class Store:
    """Tenants and models in one SQLite database; `:memory:` or a file."""

    def __init__(self, db: str | Path = ":memory:") -> None:
        self.db = str(db)
        if self.db != ":memory:":
            open_db_file(self.db)
        # Created in the caller's thread, used from the server's loop thread; never concurrently.
        self._conn = sqlite3.connect(self.db, isolation_level=None, check_same_thread=False)
        if self.db != ":memory:":
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.executescript(SCHEMA)
        self._ensure_root()
        self.set_redaction({})

    def close(self) -> None:
        self._conn.close()

    @property
    def conn(self) -> sqlite3.Connection:
        """The one connection, for the other nouns' tables (datasets.py, endpoints.py, policies.py)."""
        return self._conn

    def set_redaction(self, redact: Mapping[str, frozenset[str]]) -> None:
        """Which fields of which dtype to leave out of responses from now on."""
        configuration = _configuration_sql(redact)
        self._sql = {
            shape: f"SELECT {_model_sql(shape, configuration)} FROM models AS outer_row"
            for shape in (_RESPONSE, _WITH_ENDPOINTS, _LIST_ITEM)
        }

    def reset(self) -> None:
        """All models gone, and the tenants back to just an active root."""
        with self._transaction():
            for table in ("models", "datasets", "dataset_items", "endpoints", "policies"):
                self._conn.execute(f"DELETE FROM {table}")
            self._conn.execute("DELETE FROM tenants WHERE name != ?", (ROOT_TENANT,))
            self._conn.execute("UPDATE tenants SET is_active = 1 WHERE name = ?", (ROOT_TENANT,))

    # -- tenants ---------------------------------------------------------------------------

    def tenant(self, name: str) -> Tenant | None:
        row = self._conn.execute("SELECT id, name, is_active FROM tenants WHERE name = ?", (name,)).fetchone()
        return Tenant(row[0], row[1], bool(row[2])) if row else None

    def tenant_json(self, name: str) -> str | None:
        row = self._conn.execute(f"SELECT {_TENANT_JSON} FROM tenants WHERE name = ?", (name,)).fetchone()
        return row[0] if row else None

    def tenants_json(self) -> str:
        rows = self._conn.execute(f"SELECT {_TENANT_JSON} FROM tenants ORDER BY created_at, name").fetchall()
        return "[" + ",".join(r[0] for r in rows) + "]"

    def create_tenant(
        self,
        name: str,
        display_name: str,
        *,
        domain: str | None = None,
        meta: Mapping[str, Any] | None = None,
        is_active: bool = True,
    ) -> str:
        """Insert a tenant and return its JSON; NameTaken names the field that clashed."""
        if self.tenant(name) is not None:
            raise NameTaken(f"Tenant '{name}' already exists")
        if domain and self._conn.execute("SELECT 1 FROM tenants WHERE domain = ?", (domain,)).fetchone():
            raise NameTaken(f"Domain '{domain}' already in use")
        stamp = now()
        try:
            self._conn.execute(
                "INSERT INTO tenants VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    str(uuid.uuid4()),
                    name,
                    display_name,
                    domain,
                    int(is_active),
                    dump(dict(meta or {})),
                    stamp,
                    stamp,
                ),
            )
        except sqlite3.IntegrityError as exc:
            raise NameTaken(f"Tenant '{name}' already exists") from exc
        found = self.tenant_json(name)
        assert found is not None
        return found

    def set_tenant_active(self, name: str, active: bool) -> bool:
        """Activate or deactivate a tenant (the real API has no way to); False if unknown."""
        cur = self._conn.execute(
            "UPDATE tenants SET is_active = ?, updated_at = ? WHERE name = ?",
            (int(active), now(), name),
        )
        return cur.rowcount > 0

    def _ensure_root(self) -> None:
        if self.tenant(ROOT_TENANT) is None:
            # As the real server seeds it at startup (main.py, _setup_tenant_and_settings).
            self.create_tenant(ROOT_TENANT, "Root Tenant", meta={"description": "Default root tenant"})

    # -- models ----------------------------------------------------------------------------

    def create_model(
        self,
        tenant_id: str,
        *,
        name: str,
        dtype: str,
        configuration: Mapping[str, Any],
        summary: str,
        tags: str,
    ) -> str:
        """Insert a model and return it as ModelResponse JSON; NameTaken if the name is taken."""
        stamp = now()
        try:
            cur = self._conn.execute(
                "INSERT INTO models VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    str(uuid.uuid4()),
                    tenant_id,
                    name,
                    dtype,
                    dump(configuration),
                    summary,
                    tags,
                    stamp,
                    stamp,
                ),
            )
        except sqlite3.IntegrityError as exc:
            raise NameTaken(f"Model '{name}' already exists") from exc
        row = self._conn.execute(self._sql[_RESPONSE] + " WHERE rowid = ?", (cur.lastrowid,)).fetchone()
        return str(row[0])

    def model_dtype(self, tenant_id: str, name: str) -> str | None:
        row = self._conn.execute(
            "SELECT dtype FROM models WHERE tenant_id = ? AND name = ?", (tenant_id, name)
        ).fetchone()
        return row[0] if row else None

    def model_json(self, tenant_id: str, name: str) -> str | None:
        """One model as ModelResponseWithEndpoints JSON, or None."""
        row = self._conn.execute(
            self._sql[_WITH_ENDPOINTS] + " WHERE tenant_id = ? AND name = ?",
            (tenant_id, name),
        ).fetchone()
        return row[0] if row else None

    def models_json(self, tenant_id: str) -> str:
        """All of a tenant's models as a JSON array of ModelListItem, by name."""
        rows = self._conn.execute(
            self._sql[_LIST_ITEM] + " WHERE tenant_id = ? ORDER BY name", (tenant_id,)
        ).fetchall()
        return "[" + ",".join(r[0] for r in rows) + "]"

    def count_models(self) -> int:
        return int(self._conn.execute("SELECT count(*) FROM models").fetchone()[0])

    def update_model(
        self,
        tenant_id: str,
        name: str,
        *,
        new_name: str | None,
        summary: str | None,
        tags: str | None,
    ) -> str | None:
        """Rename and/or change summary and tags; ModelResponse JSON, None if absent.

        Raises NameTaken when renaming onto another model's name.
        """
        sets = ["updated_at = ?"]
        args: list[Any] = [now()]
        for column, value in (("name", new_name), ("summary", summary), ("tags", tags)):
            if value is not None:
                sets.append(f"{column} = ?")
                args.append(value)
        try:
            cur = self._conn.execute(
                f"UPDATE models SET {', '.join(sets)} WHERE tenant_id = ? AND name = ?",
                (*args, tenant_id, name),
            )
        except sqlite3.IntegrityError as exc:
            raise NameTaken(f"Model '{new_name}' already exists for this tenant") from exc
        if cur.rowcount == 0:
            return None
        row = self._conn.execute(
            self._sql[_RESPONSE] + " WHERE tenant_id = ? AND name = ?",
            (tenant_id, name if new_name is None else new_name),
        ).fetchone()
        return str(row[0])

    def delete_model(self, tenant_id: str, name: str) -> bool:
        """Delete a model; the endpoints using it live on with no model, never re-linked.

        (syft-space-api-kinds.md, "References and what deletes do".)
        """
        with self._transaction():
            row = self._conn.execute(
                "DELETE FROM models WHERE tenant_id = ? AND name = ? RETURNING id", (tenant_id, name)
            ).fetchone()
            if row is not None:
                self._conn.execute("UPDATE endpoints SET model_id = NULL WHERE model_id = ?", (row[0],))
        return row is not None

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        self._conn.execute("BEGIN")
        try:
            yield
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")


# TenantResponse (syft-space-api.md, "Tenancy"); the list uses the same shape.
_TENANT_JSON = (
    "json_object('id', id, 'name', name, 'display_name', display_name, 'domain', domain,"
    " 'is_active', json(CASE is_active WHEN 1 THEN 'true' ELSE 'false' END),"
    " 'meta', json(meta), 'created_at', created_at, 'updated_at', updated_at)"
)
