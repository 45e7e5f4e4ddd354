"""Saved plans: `plan --out plan.json`, then `apply plan.json` executes exactly that plan.

The file holds no secret: only the redacted (and scrubbed: redact.py) change list, a digest of the
manifests as written (references unresolved) and a fingerprint of the server state the plan was
made against. `apply`
reloads the manifests, re-reads the server and recomputes the plan (planning is pure), and refuses
unless the server and tenant, the manifests, the server state and the change list are what was
saved. A file edited by hand into another shape is refused with one line. Pure but `load()`.
"""

from __future__ import annotations

import hashlib
import json
import stat
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reconciler.errors import ReconcilerError, StalePlan, WrongTarget
from reconciler.model import Manifest, RemoteModel

KIND = "syft-reconciler-plan"
VERSION = 3  # the plan JSON it carries is render.JSON_VERSION (tests/test_render.py checks they agree)


MAX_FILE = 64 * 1024 * 1024
_OPTIONS = (
    ("adopt", bool, "true or false"),
    ("prune", bool, "true or false"),
    ("replace", list, "a list of names"),
    ("replace_all", bool, "true or false"),
    ("var_files", list, "a list of paths"),
)


def _digest(items: Iterable[Any]) -> str:
    h = hashlib.sha256()
    for item in items:
        h.update(
            json.dumps(item, sort_keys=True, ensure_ascii=False, default=str).encode("utf-8", "surrogatepass")
        )
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
        [
            m.name,
            m.dtype,
            {
                k: str(v) if not isinstance(v, (str, int, float, bool, type(None), list, dict)) else v
                for k, v in m.configuration.items()
            },
            m.summary,
            list(m.tags),
            m.replace_policy,  # lifecycle binds too: a reviewed held replace never turns into one
            # a dataset's picks, when managed (a model's digest is as it was)
            *([[list(p) for p in m.selected_items]] if m.selected_items is not None else []),
        ]
        for m in sorted(manifests, key=lambda m: (m.kind, m.name))
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
    def load(cls, path: Path) -> SavedPlan:
        """Read `path` (a regular file of at most MAX_FILE bytes) as a saved plan."""
        source = str(path)
        try:
            if not stat.S_ISREG(path.stat().st_mode):
                raise ReconcilerError(f"{source}: not a regular file")
            with path.open("rb") as f:
                data = f.read(MAX_FILE + 1)
        except OSError as exc:
            raise ReconcilerError(f"{source}: cannot read the saved plan: {exc.strerror or exc}") from None
        if len(data) > MAX_FILE:
            raise ReconcilerError(f"{source}: larger than {MAX_FILE // 1048576} MiB; not a saved plan")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise ReconcilerError(f"{source}: not a saved plan (not UTF-8 text)") from None
        return cls.from_json(text, source)

    @classmethod
    def from_json(cls, text: str, source: str) -> SavedPlan:
        """Parse a saved plan; anything tampered with or truncated is one clear error."""
        data = _saved_plan_object(text, source)

        def field(key: str, kind: type | tuple[type, ...], what: str) -> Any:
            value = data.get(key)
            if not isinstance(value, kind):
                raise ReconcilerError(
                    f"{source}: not a valid saved plan: `{key}` must be {what} "
                    "(edited by hand? run plan --out again)"
                )
            return value

        paths = field("paths", list, "a list of paths")
        options = field("options", dict, "a mapping")
        changes = field("changes", list, "a list of changes")
        if not all(isinstance(p, str) for p in paths) or not all(isinstance(c, dict) for c in changes):
            raise ReconcilerError(
                f"{source}: not a valid saved plan: `paths` and `changes` are malformed "
                "(edited by hand? run plan --out again)"
            )
        _check_options(options, source)
        return cls(
            paths=tuple(paths),
            server=field("server", str, "a URL"),
            tenant=field("tenant", (str, type(None)), "a name or null"),
            options=options,
            fingerprint=field("state_fingerprint", str, "a digest"),
            digest=field("manifests_digest", str, "a digest"),
            changes=changes,
        )

    def check_target(self, *, server: str, tenant: str | None, source: str, any_server: bool = False) -> None:
        """A saved plan is bound to the server and the tenant it was made against."""
        if server != self.server and not any_server:
            raise WrongTarget(f"{source} was made for {self.server}, not {server}; nothing was written")
        if tenant != self.tenant:
            made, now = (f"tenant {t!r}" if t else "no tenant" for t in (self.tenant, tenant))
            raise WrongTarget(f"{source} was made for {made}, not {now}; nothing was written")

    def check(self, *, digest: str, fingerprint: str, changes: list[dict[str, Any]], source: str) -> None:
        """Refuse unless the recomputed inputs and plan are exactly the saved ones."""
        if digest != self.digest:
            raise StalePlan(f"{source}: the manifests changed since the plan was saved; run plan again")
        if fingerprint != self.fingerprint:
            raise StalePlan(f"{source}: the server changed since the plan was saved; run plan again")
        if _what(changes) != _what(self.changes):
            raise StalePlan(f"{source}: the plan would differ now (a secret changed?); run plan again")


def _what(changes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The changes without where their manifests are written (a file name is relative to the working
    directory: a plan made in one folder and applied from another is the same plan)."""
    return [{k: v for k, v in c.items() if k != "source"} for c in changes]


def _saved_plan_object(text: str, source: str) -> dict[str, Any]:
    """The JSON object of a saved plan of this version; anything else is one clear error."""
    try:
        data = json.loads(text)
    except RecursionError:
        raise ReconcilerError(f"{source}: not a saved plan (nested too deep)") from None
    except ValueError as exc:
        raise ReconcilerError(f"{source}: not a saved plan (invalid JSON: {exc})") from exc
    if not isinstance(data, dict) or data.get("kind") != KIND:
        raise ReconcilerError(f"{source}: not a saved plan (write one with `plan --out {source}`)")
    if data.get("version") != VERSION:
        raise ReconcilerError(
            f"{source}: saved plan version {data.get('version')!r}; this tool reads {VERSION}"
        )
    return data


def _check_options(options: dict[str, Any], source: str) -> None:
    """Every option the plan was made with is there, with its type (lists of strings)."""
    for key, kind, what in _OPTIONS:
        if key not in options:
            raise ReconcilerError(f"{source}: not a valid saved plan: option `{key}` is missing")
        if not (
            isinstance(options[key], kind)
            and all(isinstance(i, str) for i in (options[key] if kind is list else ()))
        ):
            raise ReconcilerError(f"{source}: not a valid saved plan: option `{key}` must be {what}")
