"""The model types a sandbox offers: the bundled schemas, published as a real server would.

`config_schema` comes from `reconciler.schemas.server_config_schema`, so for `openai` it is the
real server's schema byte for byte. Descriptions and icons of `openai` are the real server's;
the others are ours, in the same style.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from reconciler.schemas import SchemaRegistry, server_config_schema

# The real server's `openai` type publishes its class docstring as description and this icon
# (OpenMined/syft-space backend/syft_space/components/model_types/openai/openai_type.py).
_PRESENTATION: dict[str, tuple[str, str, str]] = {
    # dtype: (description, icon, the healthy message of its health check)
    "openai": (
        "OpenAI model type for interacting with OpenAI's API.\n\n"
        "Supports OpenAI's chat completion API and compatible endpoints.\n"
        "Can be configured with API key, model selection, and custom base URL.\n\n"
        "Reference: https://platform.openai.com/docs/api-reference\n",
        "🤖",
        "OpenAI API is accessible",
    ),
    "anthropic": (
        "Anthropic model type for interacting with Anthropic's Messages API.\n\n"
        "Can be configured with API key, model selection, and custom base URL.\n",
        "🧠",
        "Anthropic API is accessible",
    ),
    "ollama": (
        "Ollama model type for a local or remote Ollama server.\n\n"
        "Can be configured with the server URL and model selection.\n",
        "🦙",
        "Ollama server is accessible",
    ),
    "vllm": (
        "vLLM model type for a vLLM server's OpenAI-compatible API.\n\n"
        "Can be configured with the server URL and model selection.\n",
        "⚡",
        "vLLM server is accessible",
    ),
}


@dataclass(frozen=True)
class ModelType:
    """One offered dtype, as `GET /models/types/{name}` shows it."""

    name: str
    description: str
    config_schema: Mapping[str, Any]
    icon: str
    healthy_message: str

    def info(self) -> dict[str, Any]:
        """The body of `ModelTypeInfoResponse`."""
        return {
            "name": self.name,
            "description": self.description,
            "config_schema": self.config_schema,
            "icon": self.icon,
            "enabled": True,
        }


class Catalog:
    """dtype → ModelType for the offered types, plus the secret fields of every bundled type."""

    def __init__(self, registry: SchemaRegistry, offered: Iterable[str] | None) -> None:
        bundled = registry.dtypes
        names = tuple(bundled if offered is None else offered)
        unknown = sorted(set(names) - set(bundled))
        if unknown:
            raise ValueError(f"unknown model types {unknown}; the bundled ones are {list(bundled)}")
        self._types: dict[str, ModelType] = {}
        for name in sorted(names):
            found = registry.get(name)
            assert found is not None
            description, icon, healthy = _PRESENTATION.get(
                name, (f"{name} model type.\n", "🤖", f"{name} is accessible")
            )
            self._types[name] = ModelType(
                name, description, server_config_schema(found.schema), icon, healthy
            )
        # Redaction follows the stored model's dtype, offered or not: a file db can outlive a
        # narrower `types` setting.
        self.secret_fields: dict[str, frozenset[str]] = {
            dtype: registry.secret_fields(dtype) for dtype in bundled
        }

    def get(self, name: str) -> ModelType | None:
        return self._types.get(name)

    def __iter__(self) -> Iterator[ModelType]:
        return iter(self._types.values())
