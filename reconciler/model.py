"""Domain values: what the user wrote (Manifest), what the server has (RemoteModel), and the Plan
between them. Immutable, boring types; behaviour lives in the modules that take and return them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, field_validator

from reconciler.ownership import TAG_PREFIX, Ownership, is_ownership_tag, owner_tag

# The bare ownership tag (no owner set); ownership.py reads and writes every form of it.
OWNER_TAG = TAG_PREFIX

Severity = Literal["error", "warning"]
ReplacePolicy = Literal["manual", "allow", "never"]
"""A manifest's `lifecycle.replace`: manual (only with --replace), allow (a plain apply may), never."""


@dataclass(frozen=True)
class SourceLocation:
    path: str
    line: int = 1
    column: int = 1

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.column}"


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the input, compiler-style: `path:line:col: field: message`."""

    path: str
    line: int
    column: int
    field: str
    message: str
    severity: Severity = "error"

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}:{self.column}"
        prefix = "warning: " if self.severity == "warning" else ""
        subject = f"{self.field}: " if self.field else ""
        return f"{where}: {prefix}{subject}{self.message}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "file": self.path,
            "line": self.line,
            "column": self.column,
            "field": self.field,
            "message": self.message,
            "severity": self.severity,
        }


def normalise_tags(tags: str | list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """The API keeps tags as one comma-separated string; we keep a tuple, trimmed, no empties."""
    items = tags.split(",") if isinstance(tags, str) else list(tags)
    # dict.fromkeys keeps the first of duplicates in linear time (100k tags: a list scan was 32 s)
    return tuple(dict.fromkeys(tag for item in items if (tag := item.strip())))


Pick = tuple[str, str | None]
"""One item of a dataset's selection: its id (an exact string) and its description."""


def pick_bodies(picks: Sequence[Pick]) -> list[dict[str, Any]]:
    """Picks as the server's create and add bodies take them."""
    return [{"item_id": item_id, "description": description} for item_id, description in picks]


@dataclass(frozen=True)
class Manifest:
    """One validated desired model.

    `configuration` may still hold secret references (see references.py) until `resolve()` has
    replaced them; `sensitive` names the configuration keys whose values are never printed
    (fields the dtype schema marks writeOnly, and every value that came from a reference).
    """

    name: str
    dtype: str
    configuration: Mapping[str, Any]
    summary: str = ""
    tags: tuple[str, ...] = ()
    source: SourceLocation = field(default_factory=lambda: SourceLocation("<memory>"))
    sensitive: frozenset[str] = frozenset()
    resolved: bool = True
    # "configuration.api_key" → (line, column), so later problems can point at the field
    positions: Mapping[str, tuple[int, int]] = field(default_factory=dict, compare=False, repr=False)
    replace_policy: ReplacePolicy = "manual"
    kind: str = "Model"
    """`Model`, or `Dataset` (the same envelope; kinds/values.py)."""
    selected_items: tuple[Pick, ...] | None = None
    """A dataset's picks `(item_id, description)` in manifest order; None: not managed (the picks
    on the server, made in the UI or by curl, are left alone). Never set on a model."""

    def create_body(self, *, owner: str | None = None) -> dict[str, Any]:
        """The POST /api/v1/models/ body, with `owner`'s tag. Only call on a resolved manifest."""
        assert self.resolved, "secret references must be resolved before a request is built"
        tags = (*self.tags, owner_tag(owner))
        body: dict[str, Any] = {
            "name": self.name,
            "dtype": self.dtype,
            "configuration": dict(self.configuration),
            "summary": self.summary,
            "tags": ",".join(tags),
        }
        if self.selected_items:  # never null (a 422); none is the server's default
            body["selected_items"] = pick_bodies(self.selected_items)
        return body


class RemoteModel(BaseModel):
    """A model as the server reports it (list item, GET, POST or PATCH response).

    Server-added fields (id, timestamps, connected_endpoints) are kept only as far as needed;
    anything else the server adds is ignored.
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    name: str
    dtype: str
    configuration: dict[str, Any] = {}
    summary: str = ""
    tags: tuple[str, ...] = ()
    id: str | None = None
    created_at: str | None = None

    @field_validator("tags", mode="before")
    @classmethod
    def _split_tags(cls, value: Any) -> tuple[str, ...]:
        if value is None:
            return ()
        if isinstance(value, str) or (
            isinstance(value, (list, tuple)) and all(isinstance(t, str) for t in value)
        ):
            return normalise_tags(value)
        raise ValueError("tags must be a string or a list of strings")

    @property
    def user_tags(self) -> tuple[str, ...]:
        """The tags a manifest can hold: every form of the ownership tag left out."""
        return tuple(t for t in self.tags if not is_ownership_tag(t))


@dataclass(frozen=True)
class ModelType:
    """One model type as a server publishes it (`GET /api/v1/models/types/`): the authority for
    that server (`validate --online`, `schema pull`)."""

    name: str
    config_schema: Any
    description: str = ""
    enabled: bool = True


class Op(str, Enum):
    """What the plan does with one model."""

    CREATE = "create"
    NOOP = "noop"  # in sync
    UPDATE = "update"  # summary/tags: PATCH in place
    REPLACE = "replace"  # dtype/configuration changed: delete + create, only when asked
    CONFLICT = "conflict"  # same name on the server, not ours: needs --adopt
    UNMANAGED = "unmanaged"  # on the server, not in the manifests: reported only
    DELETE = "delete"  # ours, on the server, not in the manifests, and --prune was asked for


WRITE_OPS = (Op.CREATE, Op.UPDATE, Op.REPLACE, Op.DELETE)


@dataclass(frozen=True)
class FieldDiff:
    """One field-level difference; `old`/`new` are never printed when `sensitive`."""

    path: tuple[str, ...]
    old: Any
    new: Any
    sensitive: bool = False
    pick: str = ""
    """For a dataset's selection (path `("selected_items", item_id)`, old/new its description):
    `add`, `remove`, or `describe` (a new description: remove + add on the server)."""

    @property
    def dotted(self) -> str:
        return ".".join(self.path)


@dataclass(frozen=True)
class Kind:
    """What a kind of object is, in one place (../shared/syft-space-api*.md): how it is named, which
    fields PATCH changes in place and which only a delete + create can change, which fields name
    another kind, in what order a create shows its fields, and where it goes in the dependency
    order (deletes before the writes; lower first). Planner, renderer, graph and executor read it."""

    name: str
    identity: str
    """The field that names it: `name`, an endpoint's `slug`, a policy's `<slug>/<name>`."""
    in_place: tuple[str, ...]
    replace: tuple[str, ...]
    references: tuple[str, ...] = ()
    shown: tuple[str, ...] = ()
    """A create's fields, in the order a plan shows them."""
    delete_rank: int = 2
    write_rank: int = 3

    @property
    def word(self) -> str:
        return self.name.lower()


KIND: Mapping[str, Kind] = {
    kind.name: kind
    for kind in (
        Kind("Model", "name", in_place=("summary", "tags"), replace=("dtype", "configuration")),
        Kind("Dataset", "name", in_place=("summary", "tags"), replace=("dtype", "configuration")),
        Kind(
            "Endpoint",
            "slug",
            in_place=("name", "summary", "description", "system_prompt"),
            replace=("response_type", "published", "tags", "model", "dataset"),
            references=("model", "dataset"),
            shown=(
                "name",
                "model",
                "dataset",
                "response_type",
                "summary",
                "description",
                "system_prompt",
                "published",
                "tags",
            ),
            delete_rank=1,
            write_rank=4,
        ),
        Kind(
            "Policy",
            "endpoint/name",
            in_place=("configuration",),
            replace=("policy_type",),
            delete_rank=0,
            write_rank=5,
        ),
    )
}
KINDS = tuple(KIND)
"""Every kind a space holds, in the order plans list and count them."""


def plural(kind: str, count: int) -> str:
    """`1 model`, `2 policies`: a kind counted in words."""
    word = kind.lower()
    if count == 1:
        return f"1 {word}"
    return f"{count:,} {word[:-1] + 'ies' if word.endswith('y') else word + 's'}"


@dataclass(frozen=True)
class Change:
    """One change to one object of any kind: a model or dataset (by name), an endpoint (by slug) or
    a policy (`slug/policy-name`). `desired` is a Manifest (models, datasets), an EndpointManifest
    or a PolicySpec (kinds/values.py); `observed` what the server reported."""

    op: Op
    name: str
    desired: Any = None
    observed: Any = None
    diffs: tuple[FieldDiff, ...] = ()
    # secret fields whose server value is missing or masked: "not comparable", never "changed"
    not_comparable: tuple[str, ...] = ()
    adopt: bool = False  # the object is not ours yet; the write adds the ownership tag
    reason: str = ""
    ownership: Ownership | None = None  # of the object on the server, as this run's owner sees it
    kind: str = "Model"
    cascade: str = ""
    """Which replaced or deleted dependency forces this replace (an endpoint's model or dataset)."""
    cascade_approved: bool = False
    endpoint: str = ""
    """For a policy: its endpoint's slug."""
    held: str = ""
    """The option apply needs before it makes this change (`--prune`): pending, shown, not written."""
    blocked: str = ""
    """Why apply refuses the whole run because of this change (an endpoint that stays uses it)."""

    @property
    def writes(self) -> bool:
        return self.op in WRITE_OPS and not self.held

    @property
    def bucket(self) -> str:
        """What a plan counts it as: its op, or `held` while it waits for an option (--prune)."""
        return "held" if self.held else self.op.value

    @property
    def label(self) -> str:
        """`model gpt-4o`, `endpoint support-bot`, `policy support-bot/per-user`."""
        return f"{self.kind.lower()} {self.name}"

    @property
    def replace_policy(self) -> ReplacePolicy:
        policy: ReplacePolicy = getattr(self.desired, "replace_policy", "manual")
        return policy

    def approved(self, *, names: frozenset[str] = frozenset(), every: bool = False) -> bool:
        """Whether a replace may run: `--replace NAME`/`--replace-all`, the manifest's
        `lifecycle.replace: allow`, or (an endpoint) its approved cascade. `lifecycle.replace:
        never` refuses all of these; a policy goes with its endpoint."""
        if self.kind == "Policy":
            return True
        if self.replace_policy == "never":
            return False
        return self.cascade_approved or every or self.name in names or self.replace_policy == "allow"


@dataclass(frozen=True)
class Plan:
    """An ordered, immutable set of changes, sorted by name so output is stable in review."""

    changes: tuple[Change, ...] = ()

    def counts(self) -> dict[str, int]:
        """How many changes of each op; a deletion held for --prune counts as `held`, not `delete`."""
        out = {**{op.value: 0 for op in Op}, "held": 0}
        for change in self.changes:
            out[change.bucket] += 1
        return out

    def counts_by_kind(self) -> dict[str, dict[str, int]]:
        """Per kind present in the plan, its counts (as `counts`)."""
        out: dict[str, dict[str, int]] = {}
        for change in self.changes:
            out.setdefault(change.kind, {**{op.value: 0 for op in Op}, "held": 0})[change.bucket] += 1
        return {kind: out[kind] for kind in KINDS if kind in out}

    @property
    def pending(self) -> tuple[Change, ...]:
        """Changes that need a write (or a decision) for the server to match the manifests."""
        return tuple(c for c in self.changes if c.op in (*WRITE_OPS, Op.CONFLICT))

    @property
    def is_empty(self) -> bool:
        return not self.pending

    @property
    def deletes(self) -> tuple[Change, ...]:
        """The prunes this run makes (not those held for --prune)."""
        return tuple(c for c in self.changes if c.op is Op.DELETE and not c.held)

    @property
    def held(self) -> tuple[Change, ...]:
        """Pending changes apply makes only with an option (an owned object no manifest names: --prune)."""
        return tuple(c for c in self.changes if c.held)

    @property
    def blocked(self) -> tuple[Change, ...]:
        return tuple(c for c in self.changes if c.blocked)

    @property
    def conflicts(self) -> tuple[Change, ...]:
        return tuple(c for c in self.changes if c.op is Op.CONFLICT)

    def of(self, kind: str) -> tuple[Change, ...]:
        return tuple(c for c in self.changes if c.kind == kind)

    def __add__(self, other: Plan) -> Plan:
        return Plan(self.changes + other.changes)


class Result(str, Enum):
    """What applying one change did."""

    CREATED = "created"
    UPDATED = "updated"
    REPLACED = "replaced"
    DELETED = "deleted"
    PRESENT = "present"  # already there and equal (e.g. a 409 or a retried create that had landed)
    SKIPPED = "skipped"  # not attempted: a replace without --replace, or stopped early
    CONFLICT = "conflict"
    FAILED = "failed"


STOPPED = "not attempted (run stopped)"
"""The message of a SKIPPED outcome that a Ctrl-C or SIGTERM left unattempted (counted, not listed)."""


@dataclass(frozen=True)
class Outcome:
    name: str
    op: Op
    result: Result
    message: str = ""
    attempts: int = 1
    error_kind: str | None = None
    kind: str = "Model"

    @property
    def label(self) -> str:
        """`model gpt-4o`, `policy support-bot/per-user`: as the plan names the object."""
        return f"{self.kind.lower()} {self.name}"

    @property
    def stopped(self) -> bool:
        return self.result is Result.SKIPPED and self.message == STOPPED

    @property
    def ok(self) -> bool:
        return self.result in (
            Result.CREATED,
            Result.UPDATED,
            Result.REPLACED,
            Result.DELETED,
            Result.PRESENT,
        )


@dataclass(frozen=True)
class ApplyReport:
    """One outcome per change that needed a write, in plan order."""

    outcomes: tuple[Outcome, ...]
    in_sync: int = 0
    interrupted: bool = False

    def counts(self) -> dict[str, int]:
        out = {r.value: 0 for r in Result}
        for outcome in self.outcomes:
            out[outcome.result.value] += 1
        return out

    @property
    def ok(self) -> bool:
        return not self.interrupted and all(o.ok for o in self.outcomes)

    @property
    def retried(self) -> tuple[Outcome, ...]:
        return tuple(o for o in self.outcomes if o.attempts > 1)
