"""README's Kinds section is the user's contract for every kind: each field the validators take is
documented, each field says in place or replace as model.KIND does, and its examples validate."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from reconciler.kinds.validate import ENDPOINT_FIELDS, POLICY_FIELDS
from reconciler.model import KIND
from reconciler.validate import ENVELOPE_FIELDS

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
SECTION = README.split("### Kinds: fields, routes, in place or replace", 1)[1].split("\n### ", 1)[0]


def table(kind: str) -> dict[str, str]:
    """Field -> its "a change" cell, from the table after **Kind**."""
    after = SECTION.split(f"**{kind}**", 1)[1]
    rows = re.findall(r"^\| (.+?) \|.*\| (.+?) \|$", after.split("\n\n", 2)[1], re.M)
    out: dict[str, str] = {}
    for names, change in rows[2:] if rows[0][0] == "field" else rows:
        for name in re.findall(r"`([a-z_]+)`", names):
            out[name] = change
    return out


@pytest.mark.parametrize("kind", ["Model", "Dataset", "Endpoint", "Policy"])
def test_every_field_is_documented_as_in_place_or_replace_like_the_kind_descriptor(kind):
    rows = table(kind)
    fields = {
        "Model": tuple(f for f in ENVELOPE_FIELDS if f != "selected_items"),  # a dataset's only
        "Dataset": ENVELOPE_FIELDS,
        "Endpoint": ENDPOINT_FIELDS,
        "Policy": POLICY_FIELDS,
    }[kind]
    assert set(rows) == set(fields) - {"kind", "lifecycle"}
    descriptor = KIND[kind]
    for field in descriptor.in_place:
        assert rows[field].startswith("in place"), (kind, field)
    for field in descriptor.replace:
        assert rows[field].startswith(("replace", "deletes and recreates")), (kind, field)
    assert rows[descriptor.identity.split("/")[-1]].startswith("is another")


def test_the_sections_examples_validate(cli, tmp_path):
    blocks = re.findall(r"```yaml\n(.*?)```", SECTION, re.S)
    assert len(blocks) == 2
    model = "kind: Model\nname: gpt-4o\ndtype: openai\nconfiguration: {api_key: k, model: gpt-4o}\n"
    (tmp_path / "model.yaml").write_text(model)
    for i, block in enumerate(blocks):
        (tmp_path / f"{i}.yaml").write_text(block)
    run = cli("validate", tmp_path)
    assert run.code == 0, run.all


def test_the_readme_stays_inside_the_repository():
    assert "../shared" not in README and "(issue " not in README
    for target in re.findall(r"\]\((?!https?://|#)([^)]+)\)", README):
        assert (ROOT / target).exists(), target
