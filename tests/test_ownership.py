"""The ownership invariant, tried on many inputs: a run never deletes, replaces or updates a model it
does not own, unless it was told to take that very model over; nothing outside the selection is
touched; and the blast-radius limit holds whatever the plan."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler.errors import Refused
from reconciler.model import Manifest, Op, RemoteModel
from reconciler.ownership import TAG_PREFIX, Claim, check_owner, is_ownership_tag, owner_tag, ownership
from reconciler.plan import (
    DEFAULT_MAX_DELETE,
    UNLIMITED,
    Scope,
    check_deletions,
    delete_limit,
    deletions,
    plan,
)
from reconciler.selection import Selection, Selector

OWNERS = ["team-a", "team-b", "x.y_z-1"]
NAMES = [f"m{i}" for i in range(12)]
TAG_SETS = st.lists(
    st.sampled_from(["", TAG_PREFIX, *(owner_tag(o) for o in OWNERS), "prod", "dev", f"{TAG_PREFIX}x"]),
    max_size=3,
)


def remote(name, tags, *, model="gpt-4o", summary=""):
    return RemoteModel(
        name=name,
        dtype="openai",
        configuration={"api_key": "k", "model": model},
        summary=summary,
        tags=",".join(t for t in tags if t),
    )


def manifest(name, *, model="gpt-4o", summary="", tags=(), policy="manual"):
    return Manifest(
        name=name,
        dtype="openai",
        configuration={"api_key": "k", "model": model},
        summary=summary,
        tags=tuple(tags),
        replace_policy=policy,
    )


servers = st.dictionaries(
    st.sampled_from(NAMES),
    st.tuples(TAG_SETS, st.sampled_from(["gpt-4o", "gpt-4.1"]), st.sampled_from(["", "s"])),
    max_size=12,
)
desired_sets = st.dictionaries(
    st.sampled_from(NAMES),
    st.tuples(
        st.sampled_from(["gpt-4o", "gpt-4.1"]),
        st.sampled_from(["", "s"]),
        st.lists(st.sampled_from(["prod", "dev"]), max_size=2, unique=True),
        st.sampled_from(["manual", "allow", "never"]),
    ),
    max_size=12,
)
scopes = st.builds(
    Scope,
    owner=st.sampled_from([None, *OWNERS]),
    adopt=st.booleans(),
    adopt_from=st.frozensets(st.sampled_from(OWNERS), max_size=2),
    prune=st.booleans(),
    selection=st.builds(
        Selection,
        selectors=st.lists(
            st.builds(
                Selector,
                key=st.sampled_from(["name", "tag", "dtype"]),
                pattern=st.sampled_from(["*", "m1*", "prod", "openai", "none"]),
            ),
            max_size=2,
        ).map(tuple),
        targets=st.frozensets(st.sampled_from(NAMES), max_size=3),
    ),
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(server=servers, wanted=desired_sets, scope=scopes)
def test_a_plan_touches_only_what_it_owns_or_was_told_to_take(server, wanted, scope):
    observed = {
        n: remote(n, tags, model=model, summary=summary) for n, (tags, model, summary) in server.items()
    }
    desired = [
        manifest(n, model=model, summary=summary, tags=tags, policy=policy)
        for n, (model, summary, tags, policy) in wanted.items()
    ]
    result = plan(desired, observed, scope=scope)
    seen = set()
    for change in result.changes:
        seen.add(change.name)
        if change.op is Op.NOOP and change.desired is None:
            pytest.fail("a no-op without a manifest")
        model = observed.get(change.name)
        picked = change.desired or model
        tags = picked.tags if change.desired else model.user_tags  # the ownership tag is not selectable
        assert scope.selection.selects(picked.name, picked.dtype, tags), "outside the selection"
        if model is None:
            assert change.op is Op.CREATE
            continue
        owned = ownership(model.tags, scope.owner)
        if change.op is Op.DELETE:  # ours only; without --prune shown as pending, never written
            assert owned.claim is Claim.MINE and change.name not in wanted
            assert change.writes == scope.prune and change.held == ("" if scope.prune else "--prune")
        if change.op in (Op.UPDATE, Op.REPLACE):
            took = (owned.claim in (Claim.UNOWNED, Claim.LEGACY) and scope.adopt) or (
                owned.claim is Claim.OTHER and set(owned.owners) <= scope.adopt_from
            )
            assert owned.mine or (took and change.adopt), (change, owned)
        if owned.claim is Claim.OTHER and not set(owned.owners) <= scope.adopt_from:
            assert change.op in (Op.CONFLICT, Op.UNMANAGED)
    # and nothing selected is left out of the plan
    for name, model in observed.items():
        mine = next((m for m in desired if m.name == name), None)
        tags = mine.tags if mine else model.user_tags
        if scope.selection.selects(name, "openai", tags):
            assert name in seen


@settings(max_examples=300, deadline=None)
@given(
    server=servers,
    wanted=desired_sets,
    scope=scopes,
    max_delete=st.one_of(st.none(), st.integers(0, 15), st.just(UNLIMITED)),
    every=st.booleans(),
)
def test_the_blast_radius_limit_holds_for_any_plan(server, wanted, scope, max_delete, every):
    observed = {n: remote(n, tags, model=model) for n, (tags, model, _) in server.items()}
    desired = [manifest(n, model=model, policy=policy) for n, (model, _, _, policy) in wanted.items()]
    result = plan(desired, observed, scope=scope)
    going = deletions(result, every=every)
    owned = sum(1 for c in result.changes if c.ownership and c.ownership.mine and c.observed)
    try:
        check_deletions(result, manifest_count=len(desired), max_delete=max_delete, every=every)
    except Refused as exc:
        assert going and "nothing was written" in exc.message
        return
    if max_delete is None and going:
        assert len(going) <= min(DEFAULT_MAX_DELETE, max(1, owned // 2))
    elif isinstance(max_delete, int):
        assert len(going) <= max_delete
    assert all(c.op is Op.DELETE or c.desired.replace_policy != "never" for c in going)


@pytest.mark.parametrize(("owned", "limit"), [(0, 1), (1, 1), (2, 1), (3, 1), (9, 4), (20, 10), (2000, 10)])
def test_the_default_limit(owned, limit):
    assert delete_limit(None, owned) == limit
    assert delete_limit(3, owned) == 3
    assert delete_limit(UNLIMITED, owned) is None


@pytest.mark.parametrize(
    "tags, me, claim, owners",
    [
        ((), "a", Claim.UNOWNED, ()),
        (("prod",), None, Claim.UNOWNED, ()),
        ((TAG_PREFIX,), None, Claim.MINE, ()),
        ((TAG_PREFIX,), "a", Claim.LEGACY, ()),
        ((owner_tag("a"),), "a", Claim.MINE, ("a",)),
        ((owner_tag("a"), TAG_PREFIX), "a", Claim.MINE, ("a",)),  # left over from a migration
        ((owner_tag("a"),), "b", Claim.OTHER, ("a",)),
        ((owner_tag("a"),), None, Claim.OTHER, ("a",)),
        ((owner_tag("b"), owner_tag("a")), "a", Claim.OTHER, ("a", "b")),  # two claims: nobody's alone
        ((f"{TAG_PREFIX}x",), None, Claim.UNOWNED, ()),  # only the exact prefix and prefix/ count
    ],
)
def test_claims(tags, me, claim, owners):
    assert ownership(tags, me).claim is claim and ownership(tags, me).owners == owners


@given(st.text(max_size=70))
def test_owner_names_fit_in_a_tag(name):
    if check_owner(name) is None:
        tag = owner_tag(name)
        assert "," not in tag and is_ownership_tag(tag) and ownership([tag], name).mine
        assert name.strip() == name and name.isascii()
