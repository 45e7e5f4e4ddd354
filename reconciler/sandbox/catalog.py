"""The types a sandbox offers (models, datasets, policies): the bundled schemas, published as a
real server would, with the checks the server runs on a configuration.

For `openai` the published `config_schema` is the real server's byte for byte, and so are the
dataset and policy type listings (../shared/syft-space-types/: `properties` and `required` from
schemas/datasets/ and schemas/policies/, the rest below). Model type descriptions and icons are the
real server's where syft-space recorded them; the others are ours, in the same style.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from reconciler.sandbox import bundled

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

    def __init__(self, schemas: Mapping[str, Mapping[str, Any]], offered: Iterable[str] | None) -> None:
        names = tuple(sorted(schemas) if offered is None else offered)
        unknown = sorted(set(names) - set(schemas))
        if unknown:
            raise ValueError(f"unknown model types {unknown}; the bundled ones are {sorted(schemas)}")
        self._types: dict[str, ModelType] = {}
        for name in sorted(names):
            description, icon, healthy = _PRESENTATION.get(
                name, (f"{name} model type.\n", "🤖", f"{name} is accessible")
            )
            self._types[name] = ModelType(
                name, description, bundled.published_model_schema(schemas[name]), icon, healthy
            )
        # Redaction follows the stored model's dtype, offered or not: a file db can outlive a
        # narrower `types` setting.
        self.secret_fields: dict[str, frozenset[str]] = {
            dtype: bundled.write_only(schema) for dtype, schema in schemas.items()
        }

    def get(self, name: str) -> ModelType | None:
        return self._types.get(name)

    def __iter__(self) -> Iterator[ModelType]:
        return iter(self._types.values())


class ConfigurationInvalid(ValueError):
    """A configuration the type's check refused; the message is the server's 400 detail."""


# name: (description, icon, the server's class name of its configuration, info fields, the
# prefix of its 400). The descriptions, icons, browse schemas and `browsable` are the real server's
# (../shared/syft-space-types/), as are the 400 prefixes (syft-space-api-kinds.md).
_SITE_URL = "Base URL of the WordPress site (e.g. https://example.com)"
_BROWSE_WORDPRESS: dict[str, Any] = {
    "properties": {
        "siteUrl": {"description": _SITE_URL, "title": "Siteurl", "type": "string"},
        "username": {
            "description": "WordPress user_login or display name — used for Basic Auth",
            "title": "Username",
            "type": "string",
        },
        "applicationPassword": {
            "description": "WordPress Application Password (24 chars; generate under Users → Profile → "
            "Application Passwords in wp-admin)",
            "format": "password",
            "title": "Applicationpassword",
            "type": "string",
        },
        "userAgent": {
            "default": "curl/8.7.1",
            "description": "HTTP User-Agent header — override when a site WAF expects a specific "
            "allowlisted value",
            "title": "Useragent",
            "type": "string",
        },
    },
    "required": ["siteUrl", "username", "applicationPassword"],
}
_BROWSE_LOCAL_FILE: dict[str, Any] = {
    "properties": {
        "showHidden": {
            "default": False,
            "description": "Whether the picker includes dotfiles. Ingestion ignores hidden paths regardless.",
            "title": "Showhidden",
            "type": "boolean",
        }
    },
    "required": [],
}
_DATASET_TYPES: dict[str, tuple[str, str, str, dict[str, Any]]] = {
    "local_file": (
        "Local files indexed in an embedded ChromaDB instance.",
        "🎨",
        "LocalFileConfiguration",
        {"browse_schema": _BROWSE_LOCAL_FILE, "browsable": True},
    ),
    "remote_weaviate": (
        "Remote Weaviate dataset type that allows you to query your data from a remote "
        "Weaviate server.\n\nIt uses the Weaviate vector database to query your data from a "
        "remote server.",
        "🌐",
        "RemoteWeaviateConfiguration",
        {"browse_schema": {"type": "object", "properties": {}}, "browsable": False},
    ),
    "wordpress": (
        "WordPress posts and pages indexed in an embedded ChromaDB instance.",
        "📰",
        "WordPressConfiguration",
        {"browse_schema": _BROWSE_WORDPRESS, "browsable": True},
    ),
}
_DATASET_INVALID = "Invalid configuration: Invalid configuration: "
_POLICY_TYPES: dict[str, tuple[str, str, str, str]] = {
    "access": (
        "Control access to endpoints using whitelist and blacklist rules. "
        "Denied users are always blocked, even if in the allowed list.",
        "🔐",
        "AccessPolicyConfig",
        "Invalid access policy config: ",
    ),
    "rate_limit": (
        "Limit the number of requests that can be made within a time window. "
        "Supports per-user rate limiting and selective application to specific users.",
        "⏱️",
        "RateLimitConfig",
        "Invalid rate limit config: ",
    ),
}


@dataclass(frozen=True)
class KindType:
    """One dataset or policy type: its types-route body and the server's configuration check."""

    name: str
    description: str
    icon: str
    config_schema: Mapping[str, Any]
    check: type[BaseModel]
    invalid_prefix: str
    enabled: bool
    dropped: frozenset[str] = frozenset()
    extra: Mapping[str, Any] | None = None

    def info(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "config_schema": self.config_schema,
            "icon": self.icon,
            "enabled": self.enabled,
            **(self.extra or {}),
        }

    def validate(self, configuration: Mapping[str, Any]) -> BaseModel:
        """The checked configuration; ConfigurationInvalid with the server's 400 text if not."""
        try:
            return self.check.model_validate(dict(configuration))
        except ValueError as exc:  # pydantic's ValidationError
            raise ConfigurationInvalid(f"{self.invalid_prefix}{exc}") from None

    def normalised(self, configuration: Mapping[str, Any]) -> dict[str, Any]:
        """Checked and re-dumped with defaults, unknown keys dropped (policies)."""
        dumped: dict[str, Any] = self.validate(configuration).model_dump(mode="json")
        return dumped


def _kind_types(folder: str, presentation: Mapping[str, tuple[Any, ...]]) -> dict[str, KindType]:
    schemas = bundled.load(folder)
    missing = sorted(set(presentation) - set(schemas))
    if missing:
        raise RuntimeError(f"bundled schemas/{folder}/ lacks {missing}")
    found = {}
    for name in sorted(presentation):
        schema = schemas[name]
        if folder == "datasets":
            description, icon, class_name, extra = presentation[name]
            prefix, enabled = _DATASET_INVALID, False  # no client libraries: all false, as recorded
        else:
            description, icon, class_name, prefix = presentation[name]
            extra, enabled = None, True
        found[name] = KindType(
            name=name,
            description=description,
            icon=icon,
            config_schema=bundled.published_kind_schema(schema),
            check=bundled.config_model(class_name, schema),
            invalid_prefix=prefix,
            enabled=enabled,
            dropped=bundled.dropped_on_output(schema),
            extra=extra,
        )
    return found


def dataset_types() -> dict[str, KindType]:
    """The three dataset types of the recorded server, by name."""
    return _kind_types("datasets", _DATASET_TYPES)


def policy_types() -> dict[str, KindType]:
    """The policy types of the recorded server (the wallet types were not rebuilt), by name."""
    return _kind_types("policies", _POLICY_TYPES)
