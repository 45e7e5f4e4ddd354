"""What a watch daemon keeps from one round to the next, so that a round after one saved file costs
that file, not the repository: the manifests' resolved secrets and digests (`Resolved`), the
models' plan (`ModelPlans`), and the view of the server (`KeptView`).

THE INVARIANT: the kept view is never trusted across a resync, a startup, a retry, a failed or
interrupted write, an error, or a change of server, tenant, owner or variables (the project file
and --var-files). Only a FILES round (a batch of changed paths) plans against it; every other
round lists the server afresh and replaces it. It holds the models as last listed, updated by
this daemon's own writes (each written model read back by name); the other kinds are listed
afresh by any round that needs them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from reconciler.model import Change, Manifest, Plan, RemoteModel
from reconciler.plan import Scope
from reconciler.plan import plan as make_plan
from reconciler.references import FileRef, resolve_secrets
from reconciler.schemas import DtypeFacts
from reconciler.tree import nodes

Context = tuple[str, str | None, str | None, str | None]
"""(server, tenant, owner, variables): what a kept view was taken under."""


@dataclass(frozen=True)
class KeptView:
    """The server as the last round left it: the models by name, and the model types offered
    (None: not read), under `context`."""

    context: Context
    models: Mapping[str, RemoteModel]
    offered: tuple[str, ...] | None


REFRESH_MAX = 64
"""Models written in one round that are read back into the kept view; more (a large commit):
the view is dropped, and the next round lists the server afresh."""


def body_digest(manifest: Manifest) -> str:
    """What would be sent for one manifest, and its lifecycle; compared, never shown."""
    body = {**manifest.create_body(), "kind": manifest.kind, "lifecycle": manifest.replace_policy}
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()


def set_digest(digests: Mapping[int, str]) -> str:
    """The digest of a whole desired set from each manifest's own (id → body_digest, which covers
    its kind and name): a change of any manifest, or of the set, changes it."""
    return hashlib.sha256("".join(sorted(digests.values())).encode()).hexdigest()


def _reads_files(manifest: Manifest) -> bool:
    """A manifest with a `{file: …}` reference: its secret may change with no manifest change."""
    return any(isinstance(node, FileRef) for _, node in nodes(dict(manifest.configuration)))


class Resolved:
    """resolve_secrets, manifest by manifest: a manifest loaded unchanged (the same object:
    loading.FileChecks keeps it) is not resolved again while the environment is the same, unless
    it reads a secret file (read every round, as ever). With placeholders (the embedded sandbox)
    every round resolves everything: the notes name what is missing."""

    def __init__(self) -> None:
        self._env: dict[str, str] | None = None
        self._done: dict[int, tuple[Manifest, Manifest, str]] = {}
        self.resolved = 0
        """Manifests resolved so far (cache misses)."""

    def __call__(
        self, manifests: Sequence[Manifest], env: Mapping[str, str], *, placeholders: bool
    ) -> tuple[tuple[Manifest, ...], tuple[str, ...], dict[int, str]]:
        """(the manifests resolved, in order; the placeholder notes; id(resolved) → body_digest)."""
        if placeholders:
            resolved, notes = resolve_secrets(manifests, env, placeholders=True)
            self.resolved += len(resolved)
            return resolved, notes, {id(m): body_digest(m) for m in resolved}
        snapshot = dict(env)
        if snapshot != self._env:
            self._done.clear()
            self._env = snapshot
        fresh = [m for m in manifests if self._done.get(id(m), (None,))[0] is not m]
        done, _ = resolve_secrets(fresh, snapshot)  # raises, naming every missing secret
        self.resolved += len(done)
        now = {id(m): (m, r, body_digest(r)) for m, r in zip(fresh, done, strict=True)}
        entries = [now.get(id(m)) or self._done[id(m)] for m in manifests]
        self._done = {id(e[0]): e for e in entries if id(e[0]) not in now or not _reads_files(e[0])}
        return tuple(e[1] for e in entries), (), {id(e[1]): e[2] for e in entries}


class ModelPlans:
    """plan.plan() for the models, name by name: a name whose manifest and server object are the
    very objects the last call planned (an unchanged file, a model not read again) keeps its
    change; only the others are planned, and the plan is the same as planning all. The plan of
    one name depends only on its manifest, its server object, whether any manifest names it,
    the facts and the scope, so the whole memory is dropped when the facts or the scope change."""

    def __init__(self) -> None:
        self._under: tuple[DtypeFacts, Scope] | None = None
        self._desired: dict[str, Manifest] = {}
        self._observed: Mapping[str, RemoteModel] = {}
        self._changes: dict[str, Change] = {}
        self.planned = 0
        """Names planned so far (memory misses)."""

    def __call__(
        self,
        desired: Sequence[Manifest],
        observed: Mapping[str, RemoteModel],
        *,
        facts: DtypeFacts,
        scope: Scope,
    ) -> Plan:
        wanted = {m.name: m for m in desired}
        if self._under is None or self._under[0] is not facts or self._under[1] != scope:
            self._under, self._desired, self._observed, self._changes = (facts, scope), {}, {}, {}
        dirty = _changed(self._desired, wanted) | _changed(self._observed, observed)
        fresh = make_plan(
            [wanted[n] for n in dirty if n in wanted],
            {n: observed[n] for n in dirty if n in observed},
            facts=facts,
            scope=scope,
        )
        self.planned += len(dirty)
        changes = {n: c for n, c in self._changes.items() if n not in dirty}
        changes.update((c.name, c) for c in fresh.changes)
        self._desired, self._observed, self._changes = wanted, dict(observed), changes
        return Plan(tuple(sorted(changes.values(), key=lambda c: c.name)))


def _changed(before: Mapping[str, object], now: Mapping[str, object]) -> set[str]:
    """The names whose object is not the very one it was (added, gone or another)."""
    names = {n for n, item in now.items() if before.get(n) is not item}
    names.update(before.keys() - now.keys())
    return names
