"""Saved plans: `plan --out plan.json`, then `apply plan.json` executes exactly that plan.

The file holds no secret: only the redacted change list, a digest of the manifests as written
(references unresolved) and a fingerprint of the server state the plan was made against. `apply`
reloads the manifests, re-reads the server and recomputes the plan (planning is pure), and refuses
unless the manifests, the server state and the change list are what was saved. Pure.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from reconciler.errors import ReconcilerError, StalePlan
from reconciler.model import Manifest, RemoteModel

KIND = "syft-reconciler-plan"
VERSION = 1


def _digest(items: Iterable[Any]) -> str:
    h = hashlib.sha256()
    for item in items:
        h.update(json.dumps(item, sort_keys=True, ensure_ascii=False, default=str).encode())
        h.update(b"\n")
    return "sha256:" + h.hexdigest()


def state_fingerprint(observed: Mapping[str, RemoteModel]) -> str:
    """A hash of everything the plan was computed from on the server side."""
    return _digest(
        [m.name, m.dtype, m.configuration, m.summary, sorted(m.tags)]
        for m in sorted(observed.values(), key=lambda m: m.name)
    )


def manifests_digest(manifests: Sequence[Manifest]) -> str:
    """A hash of the manifests as written: references stay references, so no secret goes in."""
    return _digest(
        [m.name, m.dtype, {k: str(v) if not isinstance(v, (str, int, float, bool, type(None), list, dict)) else v
                           for k, v in m.configuration.items()}, m.summary, list(m.tags)]
        for m in sorted(manifests, key=lambda m: m.name)
    )


@dataclass(frozen=True)
class SavedPlan:
    paths: tuple[str, ...]
    server: str
    tenant: str | None
    options: dict[str, Any]
    fingerprint: str
    digest: str
    changes: list[dict[str, Any]]

    def to_json(self, plan_json: dict[str, Any]) -> dict[str, Any]:
        return {
            **plan_json,
            "kind": KIND,
            "paths": list(self.paths),
            "options": self.options,
            "state_fingerprint": self.fingerprint,
            "manifests_digest": self.digest,
        }

    @classmethod
    def from_json(cls, text: str, source: str) -> SavedPlan:
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise ReconcilerError(f"{source}: not a saved plan (invalid JSON: {exc})") from exc
        if not isinstance(data, dict) or data.get("kind") != KIND:
            raise ReconcilerError(f"{source}: not a saved plan (write one with `plan --out {source}`)")
        if data.get("version") != VERSION:
            raise ReconcilerError(f"{source}: saved plan version {data.get('version')!r}; this tool reads {VERSION}")
        return cls(
            paths=tuple(data["paths"]), server=data["server"], tenant=data.get("tenant"),
            options=dict(data.get("options", {})), fingerprint=data["state_fingerprint"],
            digest=data["manifests_digest"], changes=list(data["changes"]),
        )

    def check(self, *, digest: str, fingerprint: str, changes: list[dict[str, Any]], source: str) -> None:
        """Refuse unless the recomputed inputs and plan are exactly the saved ones."""
        if digest != self.digest:
            raise StalePlan(f"{source}: the manifests changed since the plan was saved; run plan again")
        if fingerprint != self.fingerprint:
            raise StalePlan(f"{source}: the server changed since the plan was saved; run plan again")
        if changes != self.changes:
            raise StalePlan(f"{source}: the plan would differ now (a secret changed?); run plan again")
