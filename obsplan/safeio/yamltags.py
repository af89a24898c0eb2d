"""Explicit YAML tags hold only values of their type: `!!bool maybe`, `!!int ""`, `!!timestamp garbage`,
`!!null 5` are refused (one line, exit 2) instead of reaching PyYAML's constructors, which assume the text
matched the type's pattern (and fail with KeyError/IndexError/AttributeError, or silently build `None`).

The pattern of each type is the one YAML 1.1 uses to resolve an untagged scalar to it (PyYAML's implicit
resolvers), so a tagged value is accepted exactly when the same text, untagged, would have been that type.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

_CHECKED = ("bool", "int", "float", "timestamp", "null")
_PREFIX = "tag:yaml.org,2002:"


def _patterns() -> dict[str, list[re.Pattern[str]]]:
    out: dict[str, list[re.Pattern[str]]] = {}
    for entries in yaml.resolver.Resolver.yaml_implicit_resolvers.values():
        for tag, regexp in entries:
            out.setdefault(tag, []).append(regexp)
    return out


_PATTERNS = _patterns()


class BadTaggedValue(ValueError):
    """A scalar whose explicit tag its text does not fit."""


def _checked(tag: str, original: Any) -> Any:
    def construct(loader: Any, node: yaml.Node) -> Any:
        if isinstance(node, yaml.ScalarNode) and not any(p.match(node.value) for p in _PATTERNS.get(tag, [])):
            line = node.start_mark.line + 1 if node.start_mark else "?"
            short = tag.removeprefix(_PREFIX)
            raise BadTaggedValue(f"line {line}: {node.value[:40]!r} is not a valid !!{short}")
        return original(loader, node)

    return construct


def checked_loader(base: type[Any]) -> type[Any]:
    """`base` (a safe loader) with the standard scalar tags checked against their patterns."""
    loader: Any = type(f"Checked{base.__name__}", (base,), {})
    for short in _CHECKED:
        tag = _PREFIX + short
        loader.add_constructor(tag, _checked(tag, base.yaml_constructors[tag]))
    return loader
