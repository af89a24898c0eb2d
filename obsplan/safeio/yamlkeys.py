"""Duplicate mapping keys refused: YAML lets a later key silently replace an earlier one (a second `components:`
block would drop the first from the plan), so obsplan refuses any mapping that names a key twice, naming the
file, the line of the second one and the key path."""

from __future__ import annotations

import yaml

from obsplan.kernel.errors import ObsplanError

_MERGE_TAG = "tag:yaml.org,2002:merge"


def check_duplicate_keys(root: yaml.Node, name: str) -> None:
    """Raise ObsplanError (exit 2) at the first mapping key written twice in the same mapping."""
    seen: set[int] = set()  # a subtree repeated by aliases is checked once
    stack: list[tuple[yaml.Node, str]] = [(root, "")]
    while stack:
        node, path = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, yaml.SequenceNode):
            stack.extend((child, f"{path}.{i}" if path else str(i)) for i, child in enumerate(node.value))
        elif isinstance(node, yaml.MappingNode):
            _check_mapping(node, path, name)
            stack.extend((v, _join(path, k)) for k, v in node.value)


def _check_mapping(node: yaml.MappingNode, path: str, name: str) -> None:
    first: dict[tuple[str, str], tuple[yaml.Node, yaml.Node]] = {}
    for key, value in node.value:
        if not isinstance(key, yaml.ScalarNode) or key.tag == _MERGE_TAG:
            continue  # `<<: *anchor` merges may override keys: that is what they are for
        ident = (key.tag, key.value)
        if ident not in first:
            first[ident] = (key, value)
            continue
        earlier_key, earlier_value = first[ident]
        both_blocks = isinstance(earlier_value, yaml.MappingNode) and isinstance(value, yaml.MappingNode)
        hint = (
            f"merge the two `{key.value}:` blocks into one"
            if both_blocks
            else f"keep one `{key.value}:` (YAML would silently take the last one)"
        )
        raise ObsplanError(
            f"line {key.start_mark.line + 1}: duplicate key {key.value!r} "
            f"(already set at line {earlier_key.start_mark.line + 1})",
            file=name,
            key=_join(path, key),
            hint=hint,
        )


def _join(path: str, key: yaml.Node) -> str:
    part = key.value if isinstance(key, yaml.ScalarNode) else "?"
    return f"{path}.{part}" if path else str(part)
