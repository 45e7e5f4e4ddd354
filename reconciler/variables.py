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

from reconciler.tree import DESCEND, FieldPath, rebuild

_VAR = re.compile(r"(?<!\$)\$\{var:([^}]*)\}")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def substitute(
    value: Any, variables: Mapping[str, Any], path: FieldPath = ()
) -> tuple[Any, list[tuple[FieldPath, str]]]:
    """The value with every `${var:NAME}` replaced; problems for unknown or malformed names."""
    problems: list[tuple[FieldPath, str]] = []

    def visit(node: Any, where: FieldPath) -> Any:
        if not isinstance(node, str):
            return DESCEND
        if "${var:" not in node:
            return node
        whole = _VAR.fullmatch(node)
        if whole and whole.group(1) in variables:
            return variables[whole.group(1)]

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if not _NAME.match(name):
                problems.append((where, f"`${{var:{name}}}` is not a valid variable name"))
            elif name not in variables:
                known = ", ".join(sorted(variables)) or "none: pass --var-file FILE"
                problems.append((where, f"unknown variable `{name}` (defined: {known})"))
            else:
                return str(variables[name])
            return match.group(0)

        return _VAR.sub(replace, node)

    return rebuild(value, visit, path), problems
