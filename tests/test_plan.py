import pytest

from reconciler.model import OWNER_TAG, FieldDiff, Manifest, Op, RemoteModel
from reconciler.plan import looks_masked, plan, same
from reconciler.schemas import DtypeFacts

SECRETS = {"openai": frozenset({"api_key"})}
DEFAULTS = {"openai": {"model": "gpt-3.5-turbo", "system_prompt": ""}}


def manifest(name="m", **kw):
    base = {
        "dtype": "openai",
        "configuration": {"api_key": "k", "model": "gpt-4o"},
        "summary": "s",
        "tags": ("a",),
        "sensitive": frozenset({"api_key"}),
    }
    base.update(kw)
    return Manifest(name=name, **base)


def remote(name="m", **kw):
    base = {
        "dtype": "openai",
        "configuration": {"api_key": "k", "model": "gpt-4o"},
        "summary": "s",
        "tags": f"a,{OWNER_TAG}",
    }
    base.update(kw)
    return RemoteModel(name=name, **base)


def run(desired, observed, **kw):
    return plan(desired, {r.name: r for r in observed}, facts=DtypeFacts(SECRETS, DEFAULTS), **kw)


def test_create_noop_unmanaged_sorted():
    p = run([manifest("b"), manifest("a")], [remote("b"), remote("z", tags="")])
    assert [(c.op, c.name) for c in p.changes] == [(Op.CREATE, "a"), (Op.NOOP, "b"), (Op.UNMANAGED, "z")]
    assert p.counts()["create"] == 1 and not p.is_empty


def test_in_sync_is_empty():
    p = run([manifest()], [remote()])
    assert p.is_empty and p.changes[0].op is Op.NOOP


def test_summary_and_tags_are_an_update():
    p = run([manifest(summary="new", tags=("b", "a"))], [remote()])
    (c,) = p.changes
    assert c.op is Op.UPDATE
    assert c.diffs == (FieldDiff(("summary",), "s", "new"), FieldDiff(("tags",), ["a"], ["b", "a"]))


def test_tag_order_and_owner_tag_do_not_count():
    assert run([manifest(tags=("b", "a"))], [remote(tags=f"{OWNER_TAG},a,b")]).is_empty


@pytest.mark.parametrize(
    ("observed", "diff"),
    [
        ({"dtype": "anthropic"}, FieldDiff(("dtype",), "anthropic", "openai")),
        (
            {"configuration": {"api_key": "k", "model": "gpt-4"}},
            FieldDiff(("configuration", "model"), "gpt-4", "gpt-4o"),
        ),
        (
            {"configuration": {"api_key": "other", "model": "gpt-4o"}},
            FieldDiff(("configuration", "api_key"), "other", "k", sensitive=True),
        ),
        (
            {"configuration": {"api_key": "k", "model": "gpt-4o", "base_url": "http://x"}},
            FieldDiff(("configuration", "base_url"), "http://x", None),
        ),
    ],
)
def test_dtype_or_configuration_is_a_replace(observed, diff):
    (c,) = run([manifest()], [remote(**observed)]).changes
    assert c.op is Op.REPLACE and c.diffs == (diff,)


@pytest.mark.parametrize("masked", [None, "********", "sk-***abcd", "sk-…abcd"])
def test_missing_or_masked_secret_is_not_comparable(masked):
    config = {"model": "gpt-4o"} if masked is None else {"api_key": masked, "model": "gpt-4o"}
    (c,) = run([manifest()], [remote(configuration=config)]).changes
    assert c.op is Op.NOOP and c.not_comparable == ("api_key",)


def test_schema_default_on_one_side_is_no_change():
    desired = manifest(configuration={"api_key": "k", "model": "gpt-4o", "system_prompt": ""})
    assert run([desired], [remote()]).is_empty


def test_unowned_same_name_is_a_conflict_unless_adopted():
    (c,) = run([manifest()], [remote(tags="a", summary="other")]).changes
    assert c.op is Op.CONFLICT and "--adopt" in c.reason
    (c,) = run([manifest()], [remote(tags="a", summary="other")], adopt=True).changes
    assert c.op is Op.UPDATE and c.adopt and c.diffs == (FieldDiff(("summary",), "other", "s"),)


def test_unowned_equal_is_in_sync_but_marked():
    (c,) = run([manifest()], [remote(tags="a")]).changes
    assert c.op is Op.NOOP and "apply --adopt" in c.reason
    (c,) = run([manifest()], [remote(tags="a")], adopt=True).changes
    assert c.op is Op.UPDATE and c.adopt and c.diffs == ()


def test_same_keeps_bool_and_int_apart():
    assert same(1, 1.0) and not same(True, 1) and same({"a": [1]}, {"a": [1.0]})
    assert not looks_masked("sk-real") and looks_masked("****")
