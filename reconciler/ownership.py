"""Who owns a model on the server: the one place that reads and writes the ownership tag (pure).

Every reconciler instance (a set of manifests driving a space) has an owner name, from `--owner`,
`SYFT_RECONCILER_OWNER` or `owner:` in `syft-reconciler.yaml`. Models it creates carry the tag
`managed-by:syft-reconciler/<owner>`. Prune, replace, self-heal and in-sync adoption touch only
models whose claim is MINE; everything else is left alone or reported as a conflict.

Before owners existed every instance wrote the bare tag `managed-by:syft-reconciler`. An instance
without an owner still does, and owns exactly those models (LEGACY mode). An instance with an owner
sees a bare-tagged model as LEGACY: no named owner, so `--adopt` may take it over (by name, like an
unowned model), and prune never deletes it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum

TAG_PREFIX = "managed-by:syft-reconciler"
"""The bare tag of models created before owners existed; `TAG_PREFIX/<owner>` names an owner."""

OWNER_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}\Z")


def check_owner(name: str) -> str | None:
    """Why `name` cannot be an owner, or None. Owners go into a comma-separated tag string."""
    if not OWNER_PATTERN.match(name):
        return (
            f"owner `{name}` must be 1-63 ASCII letters, digits, `.`, `_` or `-`, "
            "starting with a letter or digit"
        )
    return None


def owner_tag(owner: str | None) -> str:
    """The tag a model created by `owner` carries (None: the bare, pre-owner tag)."""
    return TAG_PREFIX if owner is None else f"{TAG_PREFIX}/{owner}"


def is_ownership_tag(tag: str) -> bool:
    return tag == TAG_PREFIX or tag.startswith(TAG_PREFIX + "/")


class Claim(str, Enum):
    """A model's ownership as seen by one instance."""

    MINE = "mine"  # ours: prune, replace and self-heal may touch it
    UNOWNED = "unowned"  # no ownership tag: made by hand, or by another tool
    LEGACY = "legacy"  # the bare pre-owner tag, seen by an instance that has an owner
    OTHER = "other"  # another owner's (or several owners': a tag edited by hand)


@dataclass(frozen=True)
class Ownership:
    claim: Claim
    owners: tuple[str, ...] = ()
    """The named owners on the model (empty for the bare tag and for unowned models)."""

    @property
    def mine(self) -> bool:
        return self.claim is Claim.MINE

    def describe(self) -> str:
        """For messages, after "it": who the model belongs to."""
        if self.claim is Claim.MINE:
            return "is owned by this repository's owner"
        if self.claim is Claim.UNOWNED:
            return "was not created by the reconciler"
        if self.claim is Claim.LEGACY:
            return "was created by a reconciler with no owner set (the bare legacy tag)"
        names = ", ".join(f"`{o}`" for o in self.owners)
        return f"is owned by {'owners' if len(self.owners) > 1 else 'owner'} {names}"


def ownership(tags: Iterable[str], me: str | None) -> Ownership:
    """How the instance owned by `me` (None: no owner set) sees a model with these tags."""
    named: list[str] = []
    bare = False
    for tag in tags:
        if tag == TAG_PREFIX:
            bare = True
        elif tag.startswith(TAG_PREFIX + "/"):
            owner = tag[len(TAG_PREFIX) + 1 :]
            if owner not in named:
                named.append(owner)
    if not named and not bare:
        return Ownership(Claim.UNOWNED)
    if not named:  # only the bare tag
        return Ownership(Claim.MINE if me is None else Claim.LEGACY)
    if named == [me]:  # a bare tag beside ours is left over from a migration: still ours
        return Ownership(Claim.MINE, tuple(named))
    return Ownership(Claim.OTHER, tuple(sorted(named)))


def may_take(owned: Ownership, *, adopt: bool, adopt_from: frozenset[str]) -> bool:
    """Whether this run may take the model over (adoption writes our tag in place of theirs)."""
    if owned.claim in (Claim.UNOWNED, Claim.LEGACY):
        return adopt
    if owned.claim is Claim.OTHER:
        return bool(owned.owners) and set(owned.owners) <= adopt_from
    return True
