"""Incremental watch rounds come out exactly as full rounds: the same seeded random edits (new,
changed, moved, deleted and duplicate files, broken YAML, a changed var file, an endpoint whose
model changes or goes) go through one long-lived Reconciler (FILES rounds, each told the batch's
paths as the daemon tells its WorkTree) and, on a second server, through a fresh Reconciler per
step (a full round: everything read, listed and planned afresh); both servers must then hold the
same objects, and both rounds end the same way. Seeds are fixed: a failure names its seed."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import httpx
import pytest

from reconciler import loading, watch_round
from reconciler.apply import ApplyOptions
from reconciler.backoff import Backoff
from reconciler.client import SpaceClient
from reconciler.errors import ServerUnreachable
from reconciler.plan import PlanOptions
from reconciler.references import PLACEHOLDER
from reconciler.sandbox import SandboxConfig, SandboxServer
from reconciler.schemas import SchemaRegistry
from reconciler.sources import ManifestLoader, WorkTree
from reconciler.watch import RoundStatus, Trigger, WatchSettings
from reconciler.watch_cache import Resolved
from reconciler.watch_round import Reconciler

KEY = "sk-canary-incremental-5e3a"
WEAVIATE = "wv-canary-incremental-2b7f"
VOLATILE = {"id", "created_at", "updated_at"}
SEEDS = range(6)
STEPS = 25
OWNER = "team-a"

DATASET = """kind: Dataset
name: {prefix}handbook
dtype: remote_weaviate
configuration: {{http_url: "http://w:8080", grpc_url: "http://w:50051", api_key: "${{WEAVIATE_KEY}}", collection_name: Handbook}}
summary: {summary}
"""

ENDPOINT = """kind: Endpoint
slug: {prefix}bot
name: Bot
model: {model}
dataset: {prefix}handbook
summary: {summary}
response_type: both
tags: [support]
policies:
  - name: per-user
    policy_type: rate_limit
    configuration: {{limit: {limit}/m}}
"""


def model_text(rng: random.Random, name: str) -> str:
    summary = rng.choice(["one", "two", "${var:TEAM} model"])
    tags = rng.choice(["[]", "[a]", "[a, b]"])
    return (
        f"kind: Model\nname: {name}\ndtype: openai\nconfiguration:\n  api_key: ${{OPENAI_API_KEY}}\n"
        f"  model: {rng.choice(['gpt-4o', 'gpt-4o-mini'])}\nsummary: {summary}\ntags: {tags}\n"
    )


def strip(value: Any) -> Any:
    """A server object without what differs between two servers holding the same thing."""
    if isinstance(value, dict):
        return {k: strip(v) for k, v in sorted(value.items()) if k not in VOLATILE and not k.endswith("_id")}
    if isinstance(value, list):
        return sorted((strip(v) for v in value), key=repr)
    return value


def server_state(url: str) -> dict[str, Any]:
    with httpx.Client(base_url=url + "/api/v1") as http:
        state = {what: strip(http.get(f"/{what}/").json()) for what in ("models", "datasets", "policies")}
        slugs = sorted(e["slug"] for e in http.get("/endpoints/").json())
        state["endpoints"] = [strip(http.get(f"/endpoints/{slug}").json()) for slug in slugs]
    return state


class Edits:
    """A manifest folder and one seeded random edit after another; `step()` returns the paths it
    touched (what watchfiles would report)."""

    def __init__(self, root: Path, var_file: Path, seed: int, prefix: str = "m") -> None:
        self.root, self.var_file, self.rng, self.prefix = root, var_file, random.Random(seed), prefix
        var_file.write_text("TEAM: red\n")
        self.dataset()
        for i in range(6):
            self.write(root / f"{prefix}{i}.yaml", model_text(self.rng, f"{prefix}{i}"))

    def write(self, path: Path, text: str) -> list[Path]:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return [path]

    def models(self) -> list[Path]:
        return sorted(p for p in self.root.rglob(f"{self.prefix}[0-9].y*ml"))

    def step(self) -> list[Path]:
        ops = [self.save, self.save, self.save, self.delete, self.move, self.var, self.endpoint]
        ops += [self.endpoint, self.dataset, self.touch, self.rng.choice([self.broken, self.duplicate])]
        touched: list[Path] = []
        for bad in (self.root / "broken.yaml", self.root / "copy.yaml"):  # most rounds are valid
            if bad.exists() and self.rng.random() < 0.8:
                bad.unlink()
                touched.append(bad)
        for _ in range(self.rng.choice([1, 1, 2, 3])):
            touched += self.rng.choice(ops)()
        return touched

    def save(self) -> list[Path]:
        name = f"{self.prefix}{self.rng.randrange(9)}"
        folder = self.rng.choice([self.root, self.root, self.root / "sub"])
        existing = [p for p in self.models() if p.stem == name]
        path = existing[0] if existing else folder / f"{name}.yaml"
        return self.write(path, model_text(self.rng, name))

    def delete(self) -> list[Path]:
        files = self.models()
        if not files:
            return []
        path = self.rng.choice(files)
        path.unlink()
        return [path]

    def move(self) -> list[Path]:
        files = self.models()
        if not files:
            return []
        path = self.rng.choice(files)
        target = self.rng.choice([self.root, self.root / "sub"]) / f"{path.stem}.yml"
        if target.exists():
            return []
        target.parent.mkdir(exist_ok=True)
        path.rename(target)
        return [path, target]

    def var(self) -> list[Path]:
        self.var_file.write_text(f"TEAM: {self.rng.choice(['red', 'blue'])}\n")
        return []  # not below the root: the round reads the var files anyway

    def broken(self) -> list[Path]:
        return self.write(self.root / "broken.yaml", "kind: Model\nname: [\n")

    def duplicate(self) -> list[Path]:
        files = self.models()
        return self.write(self.root / "copy.yaml", self.rng.choice(files).read_text()) if files else []

    def endpoint(self) -> list[Path]:
        path = self.root / "bot.yaml"
        if path.exists() and self.rng.random() < 0.3:
            path.unlink()
            return [path]
        models = [p.stem for p in self.models()]  # its model's file may change, move or go later
        model = self.rng.choice(models) if models and self.rng.random() < 0.8 else f"{self.prefix}8"
        text = ENDPOINT.format(
            prefix=self.prefix,
            model=model,
            summary=self.rng.choice(["a", "b"]),
            limit=self.rng.choice([5, 10]),
        )
        return self.write(path, text)

    def dataset(self) -> list[Path]:
        summary = self.rng.choice(["the handbook", "the new handbook"])
        return self.write(self.root / "handbook.yaml", DATASET.format(prefix=self.prefix, summary=summary))

    def touch(self) -> list[Path]:
        files = self.models()
        if not files:
            return []
        path = self.rng.choice(files)
        return self.write(path, path.read_text())


@pytest.fixture(scope="module")
def second_server():
    with SandboxServer() as server:
        yield server


@pytest.fixture
def second_sandbox(second_server):
    second_server.reset(SandboxConfig())
    return second_server


@pytest.fixture
def registry():
    return SchemaRegistry.load()


@pytest.fixture
def keys(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("WEAVIATE_KEY", WEAVIATE)


def reconciler(
    root: Path, var_file: Path, client: SpaceClient, registry, source: WorkTree, owner: str = OWNER
) -> Reconciler:
    return Reconciler(
        ManifestLoader([root], registry, source, var_files=[var_file]),
        client,
        registry,
        options=ApplyOptions(facts=registry.facts, max_create_attempts=1, replace_all=True, owner=owner),
        settings=WatchSettings(plan=PlanOptions(prune=True, replace_all=True), owner=owner),
    )


@pytest.mark.parametrize("seed", SEEDS)
def test_incremental_rounds_leave_the_server_as_full_rounds_do(
    seed, tmp_path, registry, sandbox, second_sandbox, keys
):
    root, var_file = tmp_path / "space", tmp_path / "vars.yaml"
    root.mkdir()
    edits = Edits(root, var_file, seed)
    tree = WorkTree()
    client = SpaceClient(sandbox.url, retry=Backoff(delays=()))
    other = SpaceClient(second_sandbox.url, retry=Backoff(delays=()))
    incremental = reconciler(root, var_file, client, registry, tree)
    try:
        assert incremental(Trigger.STARTUP).ok
        assert reconciler(root, var_file, other, registry, WorkTree())(Trigger.STARTUP).ok
        listed, statuses = incremental.listed, []
        for step in range(STEPS):
            touched = edits.step()
            tree.note(str(p.absolute()) for p in touched)
            mine = incremental(Trigger.FILES)
            full = reconciler(root, var_file, other, registry, WorkTree())(Trigger.STARTUP)
            where = f"seed {seed}, step {step}"
            assert (mine.status, mine.models) == (full.status, full.models), where
            assert server_state(sandbox.url) == server_state(second_sandbox.url), where
            statuses.append(mine.status)
    finally:
        client.close()
        other.close()
    # most rounds wrote something valid, most planned against the kept view, and some stat'ed
    # only their files (a file gone walks the folder)
    assert statuses.count(RoundStatus.OK) > STEPS // 3
    assert incremental.listed - listed < STEPS // 2 and tree.walks < STEPS


@pytest.mark.parametrize("seed", [7, 8])
def test_many_spaces_in_one_process_each_keep_their_own_view(
    seed, tmp_path, registry, sandbox, second_sandbox, keys
):
    """Three spaces (owners) on one server, each its own Reconciler, WorkTree and kept view, as
    a multi-space watch runs them: a step edits one space, and only that space gets a round."""
    client = SpaceClient(sandbox.url, retry=Backoff(delays=()))
    other = SpaceClient(second_sandbox.url, retry=Backoff(delays=()))
    spaces = []
    for prefix in ("x", "y", "z"):
        root, var_file = tmp_path / prefix, tmp_path / f"{prefix}-vars.yaml"
        root.mkdir()
        edits, tree = Edits(root, var_file, seed, prefix=prefix), WorkTree()
        space = (edits, tree, reconciler(root, var_file, client, registry, tree, owner=f"team-{prefix}"))
        spaces.append(space)
    rng = random.Random(seed)

    def full() -> None:
        for edits, _, _ in spaces:
            once = reconciler(edits.root, edits.var_file, other, registry, WorkTree(), f"team-{edits.prefix}")
            once(Trigger.STARTUP)

    try:
        assert all(once(Trigger.STARTUP).ok for _, _, once in spaces)
        full()
        for step in range(STEPS):
            edits, tree, once = rng.choice(spaces)
            tree.note(str(p.absolute()) for p in edits.step())
            once(Trigger.FILES)
            full()
            assert server_state(sandbox.url) == server_state(second_sandbox.url), f"seed {seed}, step {step}"
        assert all(once.listed < STEPS // 3 for _, _, once in spaces)
    finally:
        client.close()
        other.close()


# -- the invariant: when the kept view is trusted ---------------------------------------------


def test_only_files_rounds_plan_against_the_kept_view_and_a_resync_a_failure_or_new_variables_list_afresh(
    tmp_path, registry, sandbox, keys, monkeypatch
):
    root, var_file = tmp_path / "space", tmp_path / "vars.yaml"
    root.mkdir()
    var_file.write_text("TEAM: red\n")
    (root / "a.yaml").write_text(model_text(random.Random(1), "a"))
    tree = WorkTree()
    client = SpaceClient(sandbox.url, retry=Backoff(delays=()))
    once = reconciler(root, var_file, client, registry, tree)

    def save(name: str, trigger: Trigger = Trigger.FILES) -> Any:
        path = root / f"{name}.yaml"
        path.write_text(model_text(random.Random(2), name))
        tree.note([str(path)])
        return once(trigger)

    try:
        assert once(Trigger.STARTUP).ok and once.listed == 1
        assert save("b").ok and once.listed == 1 and tree.walks == 1  # the kept view, one stat
        assert once(Trigger.RESYNC).ok and once.listed == 2 and tree.walks == 2
        var_file.write_text("TEAM: blue\n")
        assert save("c").ok and once.listed == 3  # other variables: listed afresh
        assert save("d").ok and once.listed == 3

        real = client.create_model
        monkeypatch.setattr(
            client, "create_model", lambda body: (_ for _ in ()).throw(ServerUnreachable("down"))
        )
        assert save("e").status is RoundStatus.FAILED and once.listed == 3
        monkeypatch.setattr(client, "create_model", real)
        assert save("f").ok and once.listed == 4  # not trusted after a failed write
        assert once.listed == 4 and save("g").ok and once.listed == 4

        client.delete_model("a")  # someone else's change: a FILES round does not see it ...
        assert save("h").ok and "a" not in server_names(sandbox.url)
        assert once(Trigger.RESYNC).ok and once.listed == 5  # ... a resync does (drift, reported)
        (root / "broken.yaml").write_text("kind: [\n")
        tree.note([str(root / "broken.yaml")])
        assert once(Trigger.FILES).status is RoundStatus.INVALID
        (root / "broken.yaml").unlink()
        assert once(Trigger.FILES).ok and once.listed == 5  # nothing was read: still trusted
    finally:
        client.close()


def server_names(url: str) -> list[str]:
    with httpx.Client(base_url=url + "/api/v1") as http:
        return sorted(m["name"] for m in http.get("/models/").json())


def plain(name: str) -> str:
    return (
        f"kind: Model\nname: {name}\ndtype: openai\nconfiguration:\n  api_key: ${{OPENAI_API_KEY}}\n"
        "  model: gpt-4o\n"
    )


def test_many_files_changed_at_once_are_checked_across_the_whole_set(tmp_path, registry, monkeypatch):
    monkeypatch.setattr(loading, "PATCH_MAX", 1)
    for name in "abc":
        (tmp_path / f"{name}.yaml").write_text(plain(name))
    loader = ManifestLoader([tmp_path], registry, WorkTree())
    loader()
    (tmp_path / "a.yaml").write_text(plain("a2"))
    assert sorted(m.name for m in loader()[0].manifests) == ["a2", "b", "c"]
    assert loader.checks.patched == 1
    (tmp_path / "b.yaml").unlink()
    (tmp_path / "c.yaml").write_text(plain("c2"))
    assert sorted(m.name for m in loader()[0].manifests) == ["a2", "c2"]
    assert loader.checks.patched == 1 and loader.checks.checked == 5


def test_a_round_that_wrote_more_models_than_it_reads_back_drops_the_view(
    tmp_path, registry, sandbox, keys, monkeypatch
):
    monkeypatch.setattr(watch_round, "REFRESH_MAX", 1)
    root, var_file = tmp_path / "space", tmp_path / "vars.yaml"
    root.mkdir()
    var_file.write_text("TEAM: red\n")
    tree = WorkTree()
    client = SpaceClient(sandbox.url, retry=Backoff(delays=()))
    once = reconciler(root, var_file, client, registry, tree)
    try:
        assert once(Trigger.STARTUP).ok and once.listed == 1
        for name in ("a", "b"):
            (root / f"{name}.yaml").write_text(plain(name))
        tree.note([str(root / "a.yaml"), str(root / "b.yaml")])
        assert once(Trigger.FILES).ok and once.listed == 1  # two writes: not read back
        (root / "c.yaml").write_text(plain("c"))
        tree.note([str(root / "c.yaml")])
        assert once(Trigger.FILES).ok and once.listed == 2
        assert server_names(sandbox.url) == ["a", "b", "c"]
    finally:
        client.close()


def test_with_placeholders_every_round_resolves_everything_and_names_what_is_missing(tmp_path, registry):
    (tmp_path / "a.yaml").write_text(plain("a"))
    loaded, _ = ManifestLoader([tmp_path], registry, WorkTree())()
    resolve = Resolved()
    for _ in range(2):
        resolved, notes, digests = resolve(loaded.manifests, {}, placeholders=True)
        assert resolved[0].configuration["api_key"] == PLACEHOLDER and set(digests) == {id(resolved[0])}
        assert notes and "OPENAI_API_KEY" in notes[0]
    assert resolve.resolved == 2
    resolve(loaded.manifests, {"OPENAI_API_KEY": KEY}, placeholders=False)
    resolve(loaded.manifests, {"OPENAI_API_KEY": KEY}, placeholders=False)
    assert resolve.resolved == 3  # the same manifest under the same environment: once
    resolve(loaded.manifests, {"OPENAI_API_KEY": "sk-other-canary"}, placeholders=False)
    assert resolve.resolved == 4  # another environment: again
