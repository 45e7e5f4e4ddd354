"""The server's models as manifest files (pure: remote models in, file names and YAML texts out).

Secrets never leave as values: every secret field becomes a `${MODEL_FIELD}` reference, also when
the server echoes the value and also when it drops it (newer servers redact; the reference is
written anyway). Secret fields are the dtype schema's `writeOnly` ones, plus keys that look secret
by name (all we have for a dtype without a bundled schema). File names are safe, unique and a
function of the model name alone. The YAML reads back to exactly the server's values.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from reconciler import redact
from reconciler.model import KINDS, Pick, RemoteModel, plural
from reconciler.redact import looks_secret_key as looks_secret
from reconciler.schemas import SchemaRegistry
from reconciler.selection import Selector
from reconciler.tree import DESCEND, nodes, rebuild
from reconciler.validate import check_name

MAX_STEM = 80  # leaves room for the hash and the suffix within any file system's 255 bytes
# Names Windows will not create as files, whatever the extension.
_RESERVED = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(10)), *(f"lpt{i}" for i in range(10))}


def file_stem(name: str) -> str:
    """A safe file name (without `.yaml`) that depends on `name` only.

    Names that are already safe (lower-case ASCII letters, digits, `-`, `_`, `.`) keep their
    spelling; any other name gets a readable slug plus 8 hex digits of its hash, so that `GPT`
    and `gpt` stay apart on case-insensitive file systems too.
    """
    bare = "".join(c for c in unicodedata.normalize("NFKD", name) if not unicodedata.combining(c))
    slug = re.sub(r"[^a-z0-9._-]+", "-", bare.lower())
    slug = re.sub(r"-{2,}", "-", slug).strip("-.")[:MAX_STEM].rstrip("-.") or "model"
    if slug == name and slug not in _RESERVED:
        return slug
    digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"{slug}-{digest}"


def env_prefix(name: str) -> str:
    """`gpt-4o` → `GPT_4O`: upper-cased, anything but ASCII letters and digits → `_`."""
    base = re.sub(r"[^A-Z0-9]+", "_", name.upper()).strip("_")
    if not base or base[0].isdigit():
        base = f"MODEL_{base}".rstrip("_")
    return base


@dataclass(frozen=True)
class ExportedFile:
    """One manifest to write: `<stem>.yaml` with `text`; `env` names the variables it references."""

    file_name: str
    name: str
    dtype: str
    text: str
    env: tuple[str, ...]
    kind: str = "Model"


def exported_counts(files: Sequence[ExportedFile]) -> str:
    """`2 models, 1 dataset`: what an export wrote, per kind."""
    by_kind: dict[str, int] = {}
    for exported in files:
        by_kind[exported.kind] = by_kind.get(exported.kind, 0) + 1
    return ", ".join(plural(kind, by_kind[kind]) for kind in KINDS if kind in by_kind)


@dataclass(frozen=True)
class Export:
    files: tuple[ExportedFile, ...]
    skipped: tuple[tuple[str, str], ...]  # (name, reason): objects no manifest can describe
    warnings: tuple[str, ...]
    matched: int  # models the selectors matched (exported or skipped)
    total: int  # models on the server


class _Dumper(yaml.SafeDumper):  # type: ignore[misc,unused-ignore]  # no stubs: Any
    """safe_dump, with multi-line strings as `|` blocks and the tag list in flow style."""


class FlowList(list[str]):
    """A list of strings that `to_yaml` writes in flow style: `tags: [a, b]`."""


def _represent_str(dumper: yaml.SafeDumper, data: str) -> yaml.Node:
    # PyYAML falls back to a quoted style by itself where a block cannot hold the string exactly,
    # but a block or plain scalar turns U+0085/U+2028/U+2029 and CR into line breaks on reading:
    # those, and anything a terminal would act on, go double-quoted with escapes (see to_yaml).
    if redact.UNSAFE.search(data) or "\x85" in data:
        style: str | None = '"'
    else:
        style = "|" if "\n" in data else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


def _represent_flow(dumper: yaml.SafeDumper, data: FlowList) -> yaml.Node:
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=True)


_Dumper.add_representer(str, _represent_str)
_Dumper.add_representer(FlowList, _represent_flow)


def to_yaml(document: Mapping[str, Any]) -> str:
    """One document as YAML that reads back to the same values (strings that look like
    numbers, booleans or null are quoted by the dumper)."""
    text = str(
        yaml.dump(
            dict(document),
            Dumper=_Dumper,
            sort_keys=False,
            allow_unicode=True,
            default_flow_style=False,
            width=4096,
        )
    )
    # PyYAML writes bidi controls raw even inside double quotes (they are "printable"); such strings
    # are double-quoted (_represent_str), where a \uXXXX escape reads back as the same character.
    return redact.json_safe(text)


def escape_references(value: Any) -> Any:
    """Plain values (any nesting) as the reference syntax reads them back: a literal `${` is
    written `$${`."""
    return rebuild(value, lambda node, _: node.replace("${", "$${") if isinstance(node, str) else DESCEND)


def _file_like(value: Any, path: str) -> Iterable[str]:
    """Mappings that would read back as a `{file: …}` reference."""
    for where, node in nodes(value):
        if isinstance(node, dict) and list(node) == ["file"]:
            yield ".".join((path, *map(str, where)))


def _secret_fields(
    model: RemoteModel, registry: SchemaRegistry, prefix: str, kind: str = "Model"
) -> tuple[list[str], list[str]]:
    """(secret fields to write as references, warnings)."""
    what = f"{kind.lower()} `{model.name}`"
    schema = registry.get(model.dtype)
    config = model.configuration
    if schema is None:
        found = sorted(k for k in config if looks_secret(k))
        return found, [
            f"{what}: dtype `{model.dtype}` has no bundled schema, so secrets are "
            "recognised by name only (api_key, password, *_token, *_secret…); review "
            "the file before you commit it"
        ]
    props = schema.schema.get("properties", {})
    required = set(schema.schema.get("required", ()))
    marked = schema.secret_fields
    fields = [k for k in props if k in marked and (k in config or k in required)]
    fields += sorted(k for k in config if k not in props and looks_secret(k))
    warnings = [
        f"{what}: optional secret `{k}` is not in the server's answer (never set, "
        f"or redacted by the server): left out; add `{k}: {_reference_hint(props[k], f'{prefix}_{env_prefix(k)}')}` "
        "if it has one"
        for k in props
        if k in marked and k not in config and k not in required
    ]
    return fields, warnings


def _reference_hint(prop: Mapping[str, Any], name: str) -> str:
    """How a manifest writes a secret field as references: one, or one per entry of a map."""
    kinds = prop.get("type", "string")
    kinds = [kinds] if isinstance(kinds, str) else list(kinds)
    # the real server publishes an optional map as `anyOf: [{type: object, …}, {type: null}]`
    kinds += [branch.get("type") for branch in prop.get("anyOf", ()) if isinstance(branch, dict)]
    if "object" in kinds:
        return f"{{NAME: ${{{name}_NAME}}}}"
    return f"${{{name}}}"


class Variables:
    """The environment variables of one export: each named after its place (`GPT_4O_API_KEY`,
    `DATASET_WV_HEADERS_X_CUSTOM`), never one name for two values (`X-Custom` and `x_custom`
    under one map, or two objects whose places spell alike: the later gets `_2`, `_3`…).
    `names` lists what one file references, in order; `taken` is shared by the files."""

    def __init__(self, taken: set[str] | None = None) -> None:
        self.taken: set[str] = set() if taken is None else taken
        self.names: list[str] = []

    def for_file(self) -> Variables:
        return Variables(self.taken)

    def reference(self, base: str) -> str:
        name, n = base, 1
        while name in self.taken:
            n += 1
            name = f"{base}_{n}"
        self.taken.add(name)
        self.names.append(name)
        return f"${{{name}}}"


def secret_references(value: Any, name: str, env: Variables) -> Any:
    """A secret field's value with every leaf a reference: a map (`headers`) stays a map and a list
    a list, so the file validates and reads back to the same shape. Null and booleans hold no secret."""
    if isinstance(value, dict):
        return {k: secret_references(v, f"{name}_{env_prefix(str(k))}", env) for k, v in value.items()}
    if isinstance(value, list):
        return [secret_references(v, f"{name}_{i}", env) for i, v in enumerate(value)]
    if value is None or isinstance(value, bool):
        return value
    return env.reference(name)


def nested_references(value: Any, prefix: str, env: Variables) -> Any:
    """Everything under a secret-looking key at any depth (`headers`, `filters.auth_token`,
    `nested[0].password`) as references; the rest as written, `${` escaped."""
    if isinstance(value, dict):
        return {
            key: (secret_references if looks_secret(key) else nested_references)(
                item, f"{prefix}_{env_prefix(str(key))}", env
            )
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [nested_references(item, f"{prefix}_{i}", env) for i, item in enumerate(value)]
    return escape_references(value)


def _document(
    model: RemoteModel, secret: Sequence[str], env: Variables, *, prefix: str, kind: str = "Model"
) -> dict[str, Any]:
    configuration = {
        k: (secret_references if k in secret else nested_references)(v, f"{prefix}_{env_prefix(k)}", env)
        for k, v in model.configuration.items()
    }
    for field in secret:  # required, but not in the server's answer (redacted): a reference all the same
        if field not in configuration:
            configuration[field] = env.reference(f"{prefix}_{env_prefix(field)}")
    return {
        "kind": kind,
        "name": model.name,
        "dtype": model.dtype,
        "configuration": configuration,
        "summary": model.summary,
        "tags": FlowList(model.user_tags),
    }


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _prefixes(names: Sequence[str]) -> dict[str, str]:
    """Per model, the env prefix; models whose prefixes collide get their name's hash appended."""
    base = {name: env_prefix(name) for name in names}
    taken = Counter(base.values())
    return {
        name: prefix
        if taken[prefix] == 1
        else f"{prefix}_{hashlib.sha256(name.encode('utf-8', 'surrogatepass')).hexdigest()[:6].upper()}"
        for name, prefix in base.items()
    }


def export(
    models: Sequence[RemoteModel],
    registry: SchemaRegistry,
    *,
    selectors: Sequence[Selector] = (),
    kind: str = "Model",
    selections: Mapping[str, Sequence[Pick]] | None = None,
) -> Export:
    """Manifests for the models (or, with `kind="Dataset"`, the datasets as RemoteModel values)
    every selector matches, sorted by file name; a dataset in `selections` gets its picks as
    `selected_items` (`[]` when it has none: the exported repository manages them)."""
    matched = [m for m in models if all(s.matches(m.name, m.dtype, m.user_tags) for s in selectors)]
    exportable, skipped = _exportable(matched)
    prefixes = _prefixes([m.name for m in exportable])
    if kind != "Model":  # a dataset's variables never collide with a same-named model's
        prefixes = {name: f"{kind.upper()}_{prefix}" for name, prefix in prefixes.items()}
    files: list[ExportedFile] = []
    warnings: list[str] = []
    stems: set[str] = set()
    variables = Variables()
    for model in exportable:
        text, env, notes = _manifest_text(
            model,
            registry,
            variables.for_file(),
            prefix=prefixes[model.name],
            kind=kind,
            picks=(selections or {}).get(model.name),
        )
        warnings.extend(notes)
        stem = _unique_stem(model.name, kind, stems)
        files.append(ExportedFile(f"{stem}.yaml", model.name, model.dtype, text, env, kind))
    files.sort(key=lambda f: f.file_name)
    return Export(tuple(files), tuple(skipped), tuple(warnings), len(matched), len(models))


def _exportable(models: Sequence[RemoteModel]) -> tuple[list[RemoteModel], list[tuple[str, str]]]:
    """(the models a manifest can name, (name, reason) for those it cannot)."""
    exportable: list[RemoteModel] = []
    skipped: list[tuple[str, str]] = []
    for model in models:
        name_check = check_name(model.name)
        if name_check and name_check[1] == "error":
            skipped.append((model.name, f"the name {name_check[0]}"))
        elif not _encodable(model.name):
            skipped.append((model.name, "the name is not valid Unicode text (a lone surrogate)"))
        else:
            exportable.append(model)
    return exportable, skipped


def _manifest_text(
    model: RemoteModel,
    registry: SchemaRegistry,
    variables: Variables,
    *,
    prefix: str,
    kind: str,
    picks: Sequence[Pick] | None = None,
) -> tuple[str, tuple[str, ...], list[str]]:
    """(the manifest's text, the variables it references, warnings) for one model."""
    fields, warnings = _secret_fields(model, registry, prefix, kind)
    document = _document(model, fields, variables, prefix=prefix, kind=kind)
    if picks is not None:
        document["selected_items"] = [
            {"item_id": item_id} if description is None else {"item_id": item_id, "description": description}
            for item_id, description in picks
        ]
    for path in _file_like(document["configuration"], "configuration"):
        warnings.append(
            f"{kind.lower()} `{model.name}`: {path} is a mapping with only `file`, which a "
            "manifest reads as a secret file reference; edit it by hand"
        )
    env = tuple(variables.names)
    return redact.scrub(f"{exported_header(env)}\n{to_yaml(document)}"), env, warnings


def exported_header(env: Sequence[str]) -> str:
    """The first line of an exported file: what to set before plan/apply."""
    header = "# Exported by `syft-reconciler export`."
    if env:
        header += f" Set {', '.join(env)} in the environment before plan/apply."
    return header


def _unique_stem(name: str, kind: str, stems: set[str]) -> str:
    """The file stem for a model (or `<kind>-` one), unique among `stems` (case-insensitively)."""
    stem = file_stem(name) if kind == "Model" else f"{kind.lower()}-{file_stem(name)}"
    if stem.casefold() in stems:  # a safe name that equals another's slug and hash: not in practice
        stem = f"{stem}-{hashlib.sha256(name.encode()).hexdigest()}"
    stems.add(stem.casefold())
    return stem


def merge(first: Export, second: Export) -> Export:
    """Two exports (models, then the other kinds) as one."""
    return Export(
        first.files + second.files,
        first.skipped + second.skipped,
        first.warnings + second.warnings,
        first.matched + second.matched,
        first.total + second.total,
    )
