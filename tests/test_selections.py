"""A dataset's `selected_items`: validated offline, compared as a map, converged with at most one
DELETE and one POST, shown the same in every format (the wire: tests/e2e/test_selections.py)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.kinds.plan import pick_diffs
from reconciler.kinds.values import RemotePick
from reconciler.model import Change, Manifest, Op, Plan
from reconciler.render import plan_json, plan_markdown, plan_text

IDS = st.sampled_from(["/a", "/b", "/B", "/b ", "/c", "", " ", "post:1", "/dir/", "é"])
DESCRIPTIONS = st.one_of(st.none(), st.sampled_from(["", "A", "B", "a b"]))
PICKS = st.lists(st.tuples(IDS.filter(bool), DESCRIPTIONS), unique_by=lambda p: p[0], max_size=8)
SERVER = st.lists(st.tuples(IDS, DESCRIPTIONS), unique_by=lambda p: p[0], max_size=8)


class RecordedServer:
    """The selection as ../shared/syft-space-api-selections.md records it: remove drops exact ids
    (unknown ones ignored); add appends new ids in request order and keeps a stored description."""

    def __init__(self, picks):
        self.picks = list(picks)
        self.writes = []

    def remove(self, ids):
        self.writes.append("DELETE")
        self.picks = [p for p in self.picks if p[0] not in ids]

    def add(self, picks):
        self.writes.append("POST")
        have = {p[0] for p in self.picks}
        for item_id, description in picks:
            if item_id not in have:
                self.picks.append((item_id, description))
                have.add(item_id)


def converge(server, diffs):
    """What graph_apply does with the diffs: one DELETE, then one POST."""
    drop = [d.path[1] for d in diffs if d.pick != "add"]
    add = [(d.path[1], d.new) for d in diffs if d.pick != "remove"]
    if drop:
        server.remove(drop)
    if add:
        server.add(add)


def remote(picks):
    return tuple(RemotePick(item_id=i, description=d) for i, d in picks)


@settings(max_examples=300, deadline=None)
@given(wanted=PICKS, have=SERVER)
def test_one_delete_and_one_post_converge_any_selection(wanted, have):
    diffs = pick_diffs(wanted, remote(have))
    server = RecordedServer(have)
    converge(server, diffs)
    assert dict(server.picks) == dict(wanted)
    assert server.writes in ([], ["DELETE"], ["POST"], ["DELETE", "POST"])
    assert not pick_diffs(wanted, remote(server.picks))  # a second run writes nothing
    assert bool(diffs) == (dict(wanted) != dict(have))  # nothing when nothing differs


@given(wanted=PICKS, have=SERVER, data=st.data())
def test_order_never_matters(wanted, have, data):
    shuffled = data.draw(st.permutations(have))
    assert {(d.path, d.pick) for d in pick_diffs(wanted, remote(have))} == {
        (d.path, d.pick) for d in pick_diffs(wanted, remote(shuffled))
    }


def dataset(picks):
    return Manifest("handbook", "remote_weaviate", {}, kind="Dataset", selected_items=picks)


def test_every_format_shows_the_picks_added_removed_and_redescribed():
    have = remote([("/keep", "K"), ("/drop", None), ("/c.txt", "C")])
    wanted = (("/keep", "K"), ("/c.txt", "C changed"), ("/new", ""))
    diffs = pick_diffs(wanted, have)
    change = Change(Op.UPDATE, "handbook", dataset(wanted), None, diffs=diffs, kind="Dataset")
    plan = Plan((change,))
    text = plan_text(plan, target="http://space")
    assert '      ~ selected_items "/c.txt": "C" -> "C changed"' in text
    assert '      + selected_items "/new": ""' in text
    assert '      - selected_items "/drop"' in text and "/keep" not in text
    markdown = plan_markdown(plan, target="http://space")
    assert (
        '`~ selected_items "/c.txt": "C" -> "C changed"`' in markdown
        and '`- selected_items "/drop"`' in markdown
    )
    [row] = plan_json(plan, target="http://space", tenant=None)["changes"]
    assert row["diffs"] == [
        {"field": "selected_items", "item_id": "/c.txt", "pick": "describe", "old": "C", "new": "C changed"},
        {"field": "selected_items", "item_id": "/new", "pick": "add", "old": None, "new": ""},
        {"field": "selected_items", "item_id": "/drop", "pick": "remove", "old": None, "new": None},
    ]


def test_a_create_shows_and_sends_its_picks_in_order():
    manifest = dataset((("/b", "B"), ("/a", None)))
    body = manifest.create_body(owner="team")
    assert body["selected_items"] == [
        {"item_id": "/b", "description": "B"},
        {"item_id": "/a", "description": None},
    ]
    assert (
        "selected_items" not in dataset(()).create_body()
        and "selected_items" not in dataset(None).create_body()
    )
    text = plan_text(Plan((Change(Op.CREATE, "handbook", manifest, kind="Dataset"),)), target="t")
    assert text.index('+ selected_items "/b": "B"') < text.index('+ selected_items "/a": null')
