"""Helpers for the end-to-end tests: manifest texts and server state (the fixtures `cli`,
`manifest_dir` and `api` live in tests/conftest.py)."""

from __future__ import annotations

import httpx

from reconciler.model import OWNER_TAG


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
