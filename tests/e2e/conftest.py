"""Fixtures for driving the real CLI against the sandbox over loopback HTTP."""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from reconciler.cli import main
from reconciler.model import OWNER_TAG


@dataclass
class Run:
    code: int
    out: str
    err: str

    @property
    def all(self) -> str:
        return self.out + self.err


@pytest.fixture
def cli(capsys, monkeypatch):
    """Run `syft-reconciler ARGS` in-process; returns exit code, stdout and stderr."""
    for var in ("SYFT_SPACE_URL", "SYFT_SPACE_TOKEN", "SYFT_SPACE_TENANT"):
        monkeypatch.delenv(var, raising=False)

    def run(*args: str) -> Run:
        capsys.readouterr()
        code = main([str(a) for a in args])
        captured = capsys.readouterr()
        return Run(code, captured.out, captured.err)

    return run


def model_yaml(
    name: str,
    *,
    dtype: str = "openai",
    model: str = "gpt-4o",
    key: str = "${OPENAI_API_KEY}",
    summary: str = "",
    tags: str = "[]",
) -> str:
    if dtype == "ollama":
        config = f"  model: {model}\n"
    else:
        config = f"  api_key: {key}\n  model: {model}\n"
    return f"kind: Model\nname: {name}\ndtype: {dtype}\nconfiguration:\n{config}summary: {summary!r}\ntags: {tags}\n"


@pytest.fixture
def manifest_dir(tmp_path: Path):
    """Write {relative path: yaml text} under a fresh folder and return it."""
    root = tmp_path / "manifests"
    root.mkdir()

    def write(files: dict[str, str]) -> Path:
        for rel, text in files.items():
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(text) if text.startswith("\n") else text)
        return root

    return write


@pytest.fixture
def api(sandbox):
    """A plain httpx client on the sandbox, for arranging and inspecting server state."""
    with httpx.Client(base_url=sandbox.url + "/api/v1") as client:
        yield client


def seed_model(
    api: httpx.Client,
    name: str,
    *,
    owned: bool = True,
    model: str = "gpt-4o",
    key: str = "sk-test",
    summary: str = "",
    tags: str = "",
) -> None:
    all_tags = ",".join(t for t in (tags, OWNER_TAG if owned else "") if t)
    response = api.post(
        "/models/",
        json={
            "name": name,
            "dtype": "openai",
            "summary": summary,
            "tags": all_tags,
            "configuration": {"api_key": key, "model": model},
        },
    )
    assert response.status_code == 201, response.text


def names(api: httpx.Client) -> list[str]:
    """The model names on the server, sorted."""
    return sorted(m["name"] for m in api.get("/models/").json())
