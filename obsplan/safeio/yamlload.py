"""YAML that cannot hurt: size, nesting depth and alias expansion are capped before anything is built, and a
key written twice in one mapping is refused (obsplan/safeio/yamlkeys.py). The one loader for every YAML obsplan reads:
configuration, matrix, policy, service definitions, inventories.

A "billion laughs" document is small on disk and enormous once its aliases are expanded; obsplan counts the
nodes the document stands for (each alias counted as the full subtree it repeats) and refuses it beyond a
budget that the shipped files (which use `<<: *anchor` merges) stay far below.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from obsplan.kernel.errors import ObsplanError
from obsplan.safeio.yamlkeys import check_duplicate_keys
from obsplan.safeio.yamltags import checked_loader

MAX_BYTES = 1024 * 1024  # 1 MiB: the shipped files are under 20 KiB
MAX_DEPTH = 64  # nesting of mappings/sequences
MAX_NODES = 200_000  # nodes after alias expansion
MAX_ALIASES = 1_000

_LOADER = checked_loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # tagged scalars checked (yamltags)
_HINT_SIZE = "a configuration file is small; split or simplify it"


def decode(data: bytes, name: str) -> str:
    """UTF-8 text (a UTF-8 byte-order mark is allowed); anything else is refused with one line."""
    if len(data) > MAX_BYTES:
        raise ObsplanError(f"file is {len(data)} bytes, more than the {MAX_BYTES} allowed", file=name, hint=_HINT_SIZE)
    if data.startswith((b"\xff\xfe", b"\xfe\xff")) or b"\0" in data:
        raise ObsplanError("file is UTF-16 or UTF-32 (or holds NUL bytes)", file=name, hint="save it as UTF-8")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ObsplanError(
            f"not valid UTF-8 (byte {exc.start}: {data[exc.start : exc.start + 1]!r})",
            file=name,
            hint="save it as UTF-8",
        ) from None


def load_file(path: Path, name: str | None = None) -> Any:
    """Read, decode and parse one YAML file (size-capped before it is read whole); exit 2 naming it if unreadable."""
    where = name or str(path)
    try:
        with path.open("rb") as fh:
            data = fh.read(MAX_BYTES + 1)
    except FileNotFoundError:
        raise ObsplanError("file not found", file=where, hint="check the path") from None
    except OSError as exc:
        raise ObsplanError(f"cannot read: {exc.strerror or exc}", file=where, hint="check the path") from None
    return load(decode(data, where), where)


def load(text: str, name: str) -> Any:
    """Parse one YAML document with a safe loader after checking size, depth and alias expansion."""
    if len(text) > MAX_BYTES:
        raise ObsplanError(f"document is longer than {MAX_BYTES} characters", file=name, hint=_HINT_SIZE)
    try:
        _check_events(text, name)
        return _construct(text, name)
    except yaml.YAMLError as exc:
        raise _syntax_error(exc, name) from None
    # a scalar a constructor cannot build (the Key/Index/AttributeErrors: PyYAML constructors on text that
    # escaped yamltags' checks)
    except (ValueError, TypeError, OverflowError, RecursionError, KeyError, IndexError, AttributeError) as exc:
        raise ObsplanError(f"malformed YAML value: {exc}", file=name, hint="quote the value") from None


def _construct(text: str, name: str) -> Any:
    """Compose the node tree once, check its alias expansion, then build the values from that same tree."""
    loader = _LOADER(text)  # a safe loader (libyaml's when available)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_expansion(node, name)
        check_duplicate_keys(node, name)
        return loader.construct_document(node)
    finally:
        loader.dispose()


def _check_events(text: str, name: str) -> None:
    """Depth and alias count from the event stream (no tree is built, so a deep document cannot recurse)."""
    try:
        _count_events(text, name)
    except yaml.YAMLError as exc:  # libyaml of PyYAML >= 6.0.4 stops a deep document itself, before our count
        if "maximum nesting depth" in str(exc):
            raise _too_deep(name) from None
        raise


def _too_deep(name: str) -> ObsplanError:
    return ObsplanError(f"nested deeper than {MAX_DEPTH} levels", file=name, hint=_HINT_SIZE)


def _count_events(text: str, name: str) -> None:
    depth = aliases = 0
    for event in yaml.parse(text, Loader=_LOADER):
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                raise _too_deep(name)
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1
        elif isinstance(event, yaml.AliasEvent):
            aliases += 1
            if aliases > MAX_ALIASES:
                raise ObsplanError(
                    f"more than {MAX_ALIASES} aliases (*name)", file=name, hint="write the values out instead"
                )


def _check_expansion(root: yaml.Node, name: str) -> None:
    sizes: dict[int, int] = {}
    visiting: set[int] = set()

    def size(node: yaml.Node) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in visiting:
            raise ObsplanError("an alias refers to itself (recursive anchor)", file=name, hint="remove the cycle")
        visiting.add(key)
        total = 1
        if isinstance(node, yaml.SequenceNode):
            total += sum(size(child) for child in node.value)
        elif isinstance(node, yaml.MappingNode):
            total += sum(size(k) + size(v) for k, v in node.value)
        visiting.discard(key)
        sizes[key] = total
        if total > MAX_NODES:
            raise ObsplanError(
                f"aliases expand to more than {MAX_NODES} values (an alias bomb?)",
                file=name,
                hint="write the values out instead of nesting aliases",
            )
        return total

    size(root)


def _syntax_error(exc: yaml.YAMLError, name: str) -> ObsplanError:
    mark = getattr(exc, "problem_mark", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    return ObsplanError(
        f"malformed YAML: {where}{problem}", file=name, hint="fix the YAML syntax (indentation, quotes, colons)"
    )
