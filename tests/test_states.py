"""The one rule from a planned op and an apply outcome to the state /metrics counts, for every kind."""

import pytest

from reconciler.metrics import DaemonMetrics
from reconciler.model import ApplyReport, Change, Op, Outcome, Plan, Result
from reconciler.states import KINDS, STATES, object_states, state
from reconciler.watch import RoundResult, RoundStatus, Trigger


@pytest.mark.parametrize(
    ("op", "result", "expected"),
    [
        (Op.NOOP, None, "in_sync"),
        (Op.CREATE, Result.CREATED, "in_sync"),
        (Op.CREATE, Result.PRESENT, "in_sync"),
        (Op.UPDATE, Result.UPDATED, "in_sync"),
        (Op.REPLACE, Result.REPLACED, "in_sync"),
        (Op.DELETE, Result.DELETED, "in_sync"),
        (Op.CREATE, None, "pending"),  # drift in a round that does not write
        (Op.UPDATE, None, "pending"),
        (Op.DELETE, None, "pending"),
        (Op.CREATE, Result.FAILED, "pending"),
        (Op.UPDATE, Result.SKIPPED, "pending"),  # stopped, or its dependency failed
        (Op.REPLACE, None, "replace_needed"),
        (Op.REPLACE, Result.SKIPPED, "replace_needed"),  # not approved
        (Op.REPLACE, Result.FAILED, "replace_needed"),
        (Op.CONFLICT, None, "conflict"),
        (Op.CREATE, Result.CONFLICT, "conflict"),  # lost a race to other content
        (Op.REPLACE, Result.CONFLICT, "conflict"),
        (Op.UNMANAGED, None, "unmanaged"),
    ],
)
def test_the_state_of_one_change(op, result, expected):
    outcome = None if result is None else Outcome("x", op, result)
    assert state(op, outcome) == expected


def test_every_kind_is_counted_by_the_same_rule_and_every_pair_is_present():
    plan = Plan(
        (
            Change(Op.CREATE, "a"),
            Change(Op.NOOP, "b"),
            Change(Op.UNMANAGED, "legacy"),
            Change(Op.REPLACE, "c"),
        )
    )
    kinds = Plan(
        (
            Change(Op.CREATE, "handbook", kind="Dataset"),
            Change(Op.CREATE, "faq", kind="Dataset"),
            Change(Op.UPDATE, "a", kind="Dataset"),  # the same name as model `a`: its own outcome
            Change(Op.CONFLICT, "bot", kind="Endpoint"),
            Change(Op.UNMANAGED, "old-bot", kind="Endpoint"),
            Change(Op.UPDATE, "bot/per-user", endpoint="bot", kind="Policy"),
            Change(Op.REPLACE, "bot/staff", endpoint="bot", kind="Policy"),
            # a replaced endpoint deletes its policy and creates it again: one policy
            Change(Op.DELETE, "new-bot/p", endpoint="new-bot", kind="Policy"),
            Change(Op.REPLACE, "new-bot", kind="Endpoint"),
            Change(Op.CREATE, "new-bot/p", endpoint="new-bot", kind="Policy"),
        )
    )
    report = ApplyReport(
        (
            Outcome("a", Op.CREATE, Result.CREATED),
            Outcome("c", Op.REPLACE, Result.SKIPPED, "needs --replace c"),
            Outcome("handbook", Op.CREATE, Result.CREATED, kind="Dataset"),
            Outcome("faq", Op.CREATE, Result.FAILED, "500", kind="Dataset"),
            Outcome("a", Op.UPDATE, Result.FAILED, "500", kind="Dataset"),
            Outcome("bot/per-user", Op.UPDATE, Result.UPDATED, kind="Policy"),
            Outcome("bot/staff", Op.REPLACE, Result.CONFLICT, kind="Policy"),
            Outcome("new-bot/p", Op.DELETE, Result.DELETED, kind="Policy"),
            Outcome("new-bot", Op.REPLACE, Result.REPLACED, kind="Endpoint"),
            Outcome("new-bot/p", Op.CREATE, Result.CREATED, kind="Policy"),
        )
    )
    counts = object_states(plan, kinds, report)
    zero = dict.fromkeys(STATES, 0)
    assert counts == {
        "model": {**zero, "in_sync": 2, "replace_needed": 1, "unmanaged": 1},
        "dataset": {**zero, "in_sync": 1, "pending": 2},
        "endpoint": {**zero, "in_sync": 1, "conflict": 1, "unmanaged": 1},
        "policy": {**zero, "in_sync": 2, "conflict": 1},
    }
    assert list(counts) == list(KINDS) and all(list(c) == list(STATES) for c in counts.values())
    # without a report (a round that only reports drift) every planned state stands
    assert object_states(plan, kinds, None)["dataset"] == {**zero, "pending": 3}
    assert object_states(plan, kinds, None)["policy"] == {**zero, "pending": 2, "replace_needed": 1}
    assert object_states(Plan(()), Plan(), None) == {kind: zero for kind in KINDS}


def scrape(metrics):
    from prometheus_client import generate_latest

    return generate_latest(metrics.registry).decode().splitlines()


def test_the_objects_gauge_has_every_pair_from_the_start_and_keeps_kinds_a_round_did_not_count():
    metrics = DaemonMetrics()
    lines = scrape(metrics)
    for kind in KINDS:
        for s in STATES:
            assert f'syft_reconciler_objects{{kind="{kind}",state="{s}"}} 0.0' in lines
    counts = object_states(
        Plan((Change(Op.NOOP, "a"),)), Plan((Change(Op.UNMANAGED, "bot", kind="Endpoint"),)), None
    )
    metrics.observe(RoundResult(Trigger.STARTUP, RoundStatus.OK, 0.1, "", counts["model"], objects=counts))
    lines = scrape(metrics)
    assert 'syft_reconciler_objects{kind="model",state="in_sync"} 1.0' in lines
    assert 'syft_reconciler_models{state="in_sync"} 1.0' in lines
    assert 'syft_reconciler_objects{kind="endpoint",state="unmanaged"} 1.0' in lines
    # a round that counted models only (the other kinds could not be read) leaves them be
    models = {**counts["model"], "in_sync": 0, "pending": 1}
    metrics.observe(RoundResult(Trigger.RESYNC, RoundStatus.OK, 0.1, "", models, objects={"model": models}))
    lines = scrape(metrics)
    assert 'syft_reconciler_objects{kind="model",state="pending"} 1.0' in lines
    assert 'syft_reconciler_objects{kind="model",state="in_sync"} 0.0' in lines
    assert 'syft_reconciler_objects{kind="endpoint",state="unmanaged"} 1.0' in lines


def test_many_spaces_label_the_objects_gauge_by_space_like_the_models_gauge():
    metrics = DaemonMetrics(["acme", "globex"])
    counts = object_states(Plan(()), Plan((Change(Op.CREATE, "faq", kind="Dataset"),)), None)
    metrics.observer("globex")(
        RoundResult(Trigger.STARTUP, RoundStatus.OK, 0.1, "", counts["model"], objects=counts)
    )
    lines = scrape(metrics)
    assert 'syft_reconciler_objects{kind="dataset",space="globex",state="pending"} 1.0' in lines
    assert 'syft_reconciler_objects{kind="dataset",space="acme",state="pending"} 0.0' in lines
    assert 'syft_reconciler_models{space="acme",state="in_sync"} 0.0' in lines
    assert sum(1 for line in lines if line.startswith("syft_reconciler_objects{")) == 2 * 4 * 5
