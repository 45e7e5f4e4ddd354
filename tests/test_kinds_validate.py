"""kinds/validate.py and kinds/plan.py: Dataset and Endpoint manifests offline, and the per-kind
diff rules (pure)."""

from pathlib import Path

import jsonschema
import pytest

from reconciler import manifests
from reconciler.editor_schema import manifest_schema
from reconciler.kinds.plan import Observed, mark_blocked, plan_kinds
from reconciler.kinds.values import (
    EndpointManifest,
    PolicySpec,
    Ref,
    RemoteDataset,
    RemoteEndpoint,
    RemotePolicy,
)
from reconciler.model import Manifest, Op, Plan
from reconciler.plan import Scope
from reconciler.schemas import SchemaRegistry
from reconciler.validate import validate_space

REGISTRY = SchemaRegistry.load()
OWNED = "managed-by:syft-reconciler/team"

ENDPOINT = """kind: Endpoint
slug: support-bot
name: Support bot
model: gpt-4o
policies:
  - {name: per-user, policy_type: rate_limit, configuration: {limit: 10/m}}
"""
DATASET = """kind: Dataset
name: handbook
dtype: remote_weaviate
configuration: {http_url: "http://w", grpc_url: "http://w:1", api_key: "${K}", collection_name: H}
"""


def check(text):
    docs, problems = manifests.parse(text, Path("m.yaml"))
    assert problems == []
    space, found = validate_space(docs, REGISTRY)
    return space, [str(p) for p in found]


def test_a_valid_space():
    space, problems = check(DATASET + "---\n" + ENDPOINT)
    assert problems == []
    assert [d.kind for d in space.datasets] == ["Dataset"] and space.datasets[0].sensitive == {"api_key"}
    assert space.endpoints[0].policies == (PolicySpec("per-user", "rate_limit", {"limit": "10/m"}, 11, 5),)


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (
            ("slug: support-bot", "slug: Support-Bot"),
            "m.yaml:2:7: slug: must be lower-case (the server lower-cases it at create, then looks it up exactly): write `support-bot`",
        ),
        (("slug: support-bot", "slug: ab"), "m.yaml:2:7: slug: must be at least 3 characters long"),
        (
            ("slug: support-bot", "slug: a--b"),
            "m.yaml:2:7: slug: must contain only lowercase letters, numbers, and hyphens (no leading/trailing/consecutive hyphens)",
        ),
        (
            ("model: gpt-4o", "response_type: bogus"),
            "m.yaml:1:1: an endpoint needs at least one of `model` and `dataset`",
        ),
        (
            ("policy_type: rate_limit", "policy_type: stripe_per_request"),
            "m.yaml:6:35: policies.0.policy_type: `stripe_per_request` needs a wallet; wallet policy types are not supported yet (configure it on the server)",
        ),
        (
            ("policy_type: rate_limit", "policy_type: nope"),
            "m.yaml:6:35: policies.0.policy_type: unknown policy type `nope` (known: access, rate_limit)",
        ),
        (
            ("limit: 10/m", "limit: 0/m"),
            "m.yaml:6:70: policies.0.configuration.limit: '0/m' does not match '^0*[1-9][0-9]*/(s|m|h)$'",
        ),
        (
            ("name: Support bot", "name: Support bot\nsumary: x"),
            "m.yaml:4:1: sumary: unknown field (did you mean `summary`?) (allowed: kind, slug, name, model, dataset, summary, description, response_type, published, tags, system_prompt, policies, lifecycle)",
        ),
    ],
)
def test_one_problem_each(edit, expected):
    _, problems = check(ENDPOINT.replace(*edit))
    assert expected in problems


def test_response_type_is_checked_here_since_the_server_does_not():
    _, problems = check(ENDPOINT.replace("model: gpt-4o", "model: gpt-4o\nresponse_type: bogus"))
    assert problems == ["m.yaml:5:16: response_type: must be one of raw, summary, both, got 'bogus'"]


def test_every_problem_in_one_run_and_duplicates_named():
    _, problems = check(
        ENDPOINT + "---\n" + ENDPOINT.replace("slug: support-bot", "slug: ab") + "---\n" + ENDPOINT
    )
    assert len(problems) == 2 and any("is also defined at m.yaml:1:1" in p for p in problems)


def test_an_unknown_dataset_type_lists_the_dataset_types():
    _, problems = check(DATASET.replace("remote_weaviate", "weaviate"))
    assert problems == [
        "m.yaml:3:8: dtype: unknown dataset type `weaviate`; did you mean `remote_weaviate`? (known: local_file, remote_weaviate, wordpress)"
    ]


def test_the_editor_schema_takes_every_kind():
    validator = jsonschema.Draft7Validator(manifest_schema(REGISTRY))
    for text in (DATASET, ENDPOINT):
        docs, _ = manifests.parse(text, Path("m.yaml"))
        assert list(validator.iter_errors(docs[0].value)) == []
    bad, _ = manifests.parse(ENDPOINT.replace("support-bot", "Support_Bot"), Path("m.yaml"))
    assert list(validator.iter_errors(bad[0].value))


# -- the planner's per-kind rules ------------------------------------------------------------------


def remote_endpoint(**kw):
    base = dict(id="e1", slug="bot", name="Bot", summary="s", description="", response_type="both",
                tags=("support", OWNED), model=Ref(id="m1", name="gpt-4o"),
                policies=(RemotePolicy(id="p1", name="per-user", policy_type="rate_limit", endpoint_id="e1",
                                       configuration={"limit": "10/m", "scope": "per_user", "applied_to": ["*"]}),))  # fmt: skip
    return RemoteEndpoint(**{**base, **kw})


def desired_endpoint(**kw):
    base = dict(slug="bot", name="Bot", model="gpt-4o", summary="s", tags=("support",),
                policies=(PolicySpec("per-user", "rate_limit", {"limit": "10/m"}),))  # fmt: skip
    return EndpointManifest(**{**base, **kw})


EMPTY = Plan(())


def plan_one(
    desired, remote, *, models=EMPTY, prune=False, datasets=(), remote_datasets=None, replace_all=False
):
    from reconciler.model import RemoteModel

    observed = Observed(remote_datasets or {}, {remote.slug: remote} if remote else {},
                        list(remote.policies or ()) if remote else [],
                        {"gpt-4o": RemoteModel(name="gpt-4o", dtype="openai", id="m1")})  # fmt: skip
    kinds = plan_kinds(
        datasets,
        [desired] if desired else [],
        observed,
        models,
        scope=Scope(owner="team", prune=prune),
        replace_all=replace_all,
    )
    return kinds


def refusal(desired, remote, **kw):
    """The refusal apply would make of this plan (plan.check_deletions over every kind), or None."""
    from reconciler.errors import Refused
    from reconciler.plan import check_deletions

    models = kw.get("models", EMPTY)
    kinds = plan_one(desired, remote, **kw)
    observed = Observed(kw.get("remote_datasets") or {}, {remote.slug: remote} if remote else {}, [], {})
    models, kinds = mark_blocked(
        models, kinds, observed, names=frozenset(), every=kw.get("replace_all", False)
    )
    try:
        check_deletions(
            models + kinds, manifest_count=1, max_delete="unlimited", every=kw.get("replace_all", False)
        )
    except Refused as exc:
        return exc.message
    return None


def ops(kinds):
    return [(c.kind, c.name, c.op) for c in kinds.changes]


def test_in_sync_with_policy_defaults_filled_in():
    assert ops(plan_one(desired_endpoint(), remote_endpoint())) == [
        ("Endpoint", "bot", Op.NOOP),
        ("Policy", "bot/per-user", Op.NOOP),
    ]


@pytest.mark.parametrize(
    ("change", "op"),
    [
        ({"summary": "new"}, Op.UPDATE),
        ({"description": "# hi"}, Op.UPDATE),
        ({"system_prompt": "be kind"}, Op.UPDATE),
        ({"response_type": "raw"}, Op.REPLACE),
        ({"published": True}, Op.REPLACE),
        ({"tags": ("other",)}, Op.REPLACE),
    ],
)
def test_what_patches_and_what_replaces(change, op):
    kinds = plan_one(desired_endpoint(**change), remote_endpoint())
    assert next(c for c in kinds.changes if c.kind == "Endpoint").op is op


def test_a_policy_configuration_change_is_a_patch_and_a_type_change_its_own_replace():
    kinds = plan_one(
        desired_endpoint(policies=(PolicySpec("per-user", "rate_limit", {"limit": "5/m"}),)),
        remote_endpoint(),
    )
    assert ops(kinds)[1] == ("Policy", "bot/per-user", Op.UPDATE)
    kinds = plan_one(desired_endpoint(policies=(PolicySpec("per-user", "access", {}),)), remote_endpoint())
    assert ops(kinds)[1] == ("Policy", "bot/per-user", Op.REPLACE)


def test_a_pruned_endpoint_takes_its_policies_with_it_first():
    kinds = plan_one(None, remote_endpoint(), prune=True)
    assert ops(kinds) == [("Policy", "bot/per-user", Op.DELETE), ("Endpoint", "bot", Op.DELETE)]


def test_a_model_deleted_under_an_endpoint_is_a_replace_that_relinks_it():
    kinds = plan_one(desired_endpoint(), remote_endpoint(model=None))
    change = next(c for c in kinds.changes if c.kind == "Endpoint")
    assert change.op is Op.REPLACE and change.diffs[0].path == ("model",)


def test_replacing_a_dataset_an_unmanaged_endpoint_uses_is_refused():

    dataset = Manifest(
        "d",
        "remote_weaviate",
        {"http_url": "x", "grpc_url": "y", "api_key": "k", "collection_name": "B"},
        kind="Dataset",
    )
    remote = RemoteDataset(id="d1", name="d", dtype="remote_weaviate", tags=(OWNED,),
                           configuration={"http_url": "x", "grpc_url": "y", "api_key": "k", "collection_name": "A"})  # fmt: skip
    theirs = remote_endpoint(slug="theirs", tags=(), dataset=Ref(id="d1", name="d"))
    assert refusal(None, theirs, datasets=[dataset], remote_datasets={"d": remote}) is None  # held
    refused = refusal(None, theirs, datasets=[dataset], remote_datasets={"d": remote}, replace_all=True)
    assert "endpoint `theirs` uses it and was not created by the reconciler" in refused


def test_replacing_a_model_a_foreign_manifest_endpoint_uses_is_refused():
    from reconciler.model import Change, RemoteModel

    model = Change(Op.REPLACE, "gpt-4o", desired=Manifest("gpt-4o", "openai", {}, replace_policy="allow"),
                   observed=RemoteModel(name="gpt-4o", dtype="openai", id="m1"))  # fmt: skip
    refused = refusal(
        desired_endpoint(), remote_endpoint(tags=("managed-by:syft-reconciler/other",)), models=Plan((model,))
    )
    assert "endpoint `bot` uses it and is owned by owner `other`; this run does not" in refused


def test_an_endpoint_on_a_dataset_the_run_prunes_is_an_error_naming_it():
    from reconciler.errors import InvalidManifests

    remote = RemoteDataset(id="d1", name="d", dtype="remote_weaviate", tags=(OWNED,))
    with pytest.raises(InvalidManifests) as caught:
        plan_one(desired_endpoint(dataset="d"), remote_endpoint(), prune=True, remote_datasets={"d": remote})
    assert "dataset: dataset `d` is pruned by this run (--prune) but this endpoint uses it" in str(
        caught.value.problems[0]
    )
