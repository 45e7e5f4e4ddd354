"""The graph planner: the executor order never deletes a dependency before its dependents and
never creates a dependent before what it needs (Hypothesis over random spaces)."""

from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.kinds.graph import build, topological
from reconciler.kinds.values import (
    EndpointManifest,
    PolicySpec,
    Ref,
    RemoteDataset,
    RemoteEndpoint,
    RemotePolicy,
)
from reconciler.model import Change, Manifest, Op, Plan, RemoteModel

MODELS = ["m0", "m1", "m2"]


@st.composite
def spaces(draw):
    model_ops = {m: draw(st.sampled_from([Op.CREATE, Op.REPLACE, Op.DELETE, Op.NOOP])) for m in MODELS}
    model_changes = []
    for name, op in model_ops.items():
        desired = None if op is Op.DELETE else Manifest(name, "openai", {}, replace_policy="allow")
        observed = None if op is Op.CREATE else RemoteModel(name=name, dtype="openai", id=f"id-{name}")
        model_changes.append(Change(op, name, desired=desired, observed=observed))
    kinds = []
    for i in range(draw(st.integers(0, 5))):
        slug = f"ep-{i}"
        model = draw(st.sampled_from(MODELS))
        op = draw(st.sampled_from([Op.CREATE, Op.REPLACE, Op.DELETE, Op.UPDATE]))
        if model_ops[model] in (Op.REPLACE, Op.DELETE) and op is Op.UPDATE:
            op = Op.REPLACE  # the planner's cascade
        if model_ops[model] is Op.DELETE and op is not Op.DELETE:
            op = Op.DELETE
        policies = [PolicySpec(f"p{j}", "access", {}) for j in range(draw(st.integers(0, 2)))]
        remote = RemoteEndpoint(id=f"e{i}", slug=slug, model=Ref(id=f"id-{model}", name=model))
        desired = EndpointManifest(slug, "x", model=model, policies=tuple(policies))
        if op in (Op.DELETE, Op.REPLACE):
            kinds += [
                Change(
                    Op.DELETE,
                    f"{slug}/{p.name}",
                    observed=RemotePolicy(
                        id=f"{slug}{p.name}", name=p.name, policy_type="access", endpoint_id=f"e{i}"
                    ),
                    endpoint=slug,
                    kind="Policy",
                )
                for p in policies
            ]
        kinds.append(
            Change(
                op,
                slug,
                desired=None if op is Op.DELETE else desired,
                observed=None if op is Op.CREATE else remote,
                cascade_approved=True,
                kind="Endpoint",
            )
        )
        if op in (Op.CREATE, Op.REPLACE):
            kinds += [
                Change(Op.CREATE, f"{slug}/{p.name}", desired=p, endpoint=slug, kind="Policy")
                for p in policies
            ]
    return Plan(tuple(model_changes)), Plan(tuple(kinds))


@settings(max_examples=200, deadline=None)
@given(spaces())
def test_order_respects_every_dependency(space):
    model_plan, kinds = space
    steps = build(model_plan, kinds, every=True)
    order = {key: i for i, key in enumerate(topological(steps))}
    for change in kinds.changes:
        if change.kind == "Endpoint" and change.op in (Op.DELETE, Op.REPLACE):
            gone = order[f"endpoint:{change.name}:delete"]
            for p in kinds.changes:  # its policies first: never orphaned
                if p.kind == "Policy" and p.endpoint == change.name and p.op is Op.DELETE:
                    assert order[f"policy:{p.name}:delete"] < gone
            used = change.observed.model.name
            model_step = f"model:{used}:write"
            if model_step in order and next(c for c in model_plan.changes if c.name == used).op in (
                Op.DELETE,
                Op.REPLACE,
            ):
                assert gone < order[model_step]  # the endpoint goes before its model
        if change.kind == "Endpoint" and change.op in (Op.CREATE, Op.REPLACE):
            made = order[f"endpoint:{change.name}:write"]
            model_step = f"model:{change.desired.model}:write"
            if next(c for c in model_plan.changes if c.name == change.desired.model).op in (
                Op.CREATE,
                Op.REPLACE,
            ):
                assert order[model_step] < made  # what it needs exists first
            for p in kinds.changes:
                if p.kind == "Policy" and p.endpoint == change.name and p.op is Op.CREATE:
                    assert made < order[f"policy:{p.name}:write"]


def test_an_unapproved_replace_is_one_skipped_step_and_its_policies_wait():
    remote = RemoteEndpoint(id="e", slug="bot", model=Ref(id="m", name="m0"))
    desired = EndpointManifest("bot", "x", model="m0", response_type="raw")
    kinds = Plan(
        (
            Change(
                Op.DELETE,
                "bot/p",
                observed=RemotePolicy(id="p", name="p", policy_type="access", endpoint_id="e"),
                endpoint="bot",
                kind="Policy",
            ),
            Change(Op.REPLACE, "bot", desired=desired, observed=remote, kind="Endpoint"),
            Change(Op.CREATE, "bot/p", desired=PolicySpec("p", "access", {}), endpoint="bot", kind="Policy"),
        )
    )
    steps = build(Plan(()), kinds)
    assert {s.phase for s in steps} == {"skip"}
    assert [s.phase for s in build(Plan(()), kinds, names=frozenset({"bot"}))] == [
        "delete",
        "delete",
        "write",
        "write",
    ]


def test_an_endpoint_waits_for_the_create_of_its_dataset_and_model_and_its_policies_for_it():
    """Plain creates need no approval: the endpoint still waits for them (it references their ids)."""
    dataset = Manifest("docs", "remote_weaviate", {}, kind="Dataset")
    desired = EndpointManifest("bot", "x", model="m0", dataset="docs")
    kinds = Plan(
        (
            Change(Op.CREATE, "docs", desired=dataset, kind="Dataset"),
            Change(Op.CREATE, "bot", desired=desired, kind="Endpoint"),
            Change(Op.CREATE, "bot/p", desired=PolicySpec("p", "access", {}), endpoint="bot", kind="Policy"),
        )
    )
    model = Change(Op.CREATE, "m0", desired=Manifest("m0", "openai", {}))
    deps = {s.key: s.deps for s in build(Plan((model,)), kinds)}
    assert deps["endpoint:bot:write"] == {"dataset:docs:write", "model:m0:write"}
    assert deps["policy:bot/p:write"] == {"endpoint:bot:write"}


def test_an_endpoint_waits_for_an_approved_replace_of_its_dataset_only():
    remote = RemoteDataset(id="d", name="docs", dtype="remote_weaviate")
    dataset = Manifest("docs", "remote_weaviate", {"x": 1}, kind="Dataset")
    endpoint = EndpointManifest("bot", "x", dataset="docs")
    observed = RemoteEndpoint(id="e", slug="bot", dataset=Ref(id="d", name="docs"))
    kinds = Plan(
        (
            Change(Op.REPLACE, "docs", desired=dataset, observed=remote, kind="Dataset"),
            Change(
                Op.REPLACE, "bot", desired=endpoint, observed=observed, cascade_approved=True, kind="Endpoint"
            ),
        )
    )
    approved = {s.key: s.deps for s in build(Plan(()), kinds, names=frozenset({"docs"}))}
    assert approved["endpoint:bot:write"] == {"endpoint:bot:delete", "dataset:docs:write"}
    assert approved["dataset:docs:delete"] == {"endpoint:bot:delete"}
    unapproved = {s.key: s for s in build(Plan(()), kinds)}
    assert unapproved["dataset:docs:write"].phase == "skip"
