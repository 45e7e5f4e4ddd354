"""Environment variables of the non-secret kind: `${var:NAME}` from `--var-file` files.

One repository drives a staging and a production space with a var file each:

    name: gpt-4o-${var:ENV}              → gpt-4o-staging
    base_url: ${var:OPENAI_BASE_URL}
    num_ctx: ${var:CTX}                  → an integer when the var file says 8192

Substituted in whole documents before validation, so every field may use them. A value that is
exactly one `${var:NAME}` keeps the variable's YAML type; inside a longer string it is text.
`$${var:X}` is left for the reference pass, which turns `$${` into a literal `${`. Pure.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

_VAR = re.compile(r"(?<!\$)\$\{var:([^}]*)\}")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")

FieldPath = tuple[str | int, ...]


def substitute(
    value: Any, variables: Mapping[str, Any], path: FieldPath = ()
) -> tuple[Any, list[tuple[FieldPath, str]]]:
    """The value with every `${var:NAME}` replaced; problems for unknown or malformed names."""
    problems: list[tuple[FieldPath, str]] = []
    if isinstance(value, str):
        if "${var:" not in value:
            return value, problems
        whole = _VAR.fullmatch(value)
        if whole and whole.group(1) in variables:
            return variables[whole.group(1)], problems

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if not _NAME.match(name):
                problems.append((path, f"`${{var:{name}}}` is not a valid variable name"))
            elif name not in variables:
                known = ", ".join(sorted(variables)) or "none: pass --var-file FILE"
                problems.append((path, f"unknown variable `{name}` (defined: {known})"))
            else:
                return str(variables[name])
            return match.group(0)

        return _VAR.sub(replace, value), problems
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            out[key], sub = substitute(item, variables, (*path, key))
            problems.extend(sub)
        return out, problems
    if isinstance(value, list):
        items = []
        for index, item in enumerate(value):
            new, sub = substitute(item, variables, (*path, index))
            items.append(new)
            problems.extend(sub)
        return items, problems
    return value, problems
