"""JSON that cannot hurt: size and depth capped, UTF-8 only, duplicate keys and NaN/Infinity refused.

Used for every JSON document a command reads from outside (locks, bundle manifests); any problem is one
`ObsplanError` (exit 2) naming the file.
"""

from __future__ import annotations

import json
import re
from itertools import accumulate
from pathlib import Path
from typing import Any

from obsplan.kernel.errors import ObsplanError
from obsplan.safeio.inputfile import read_regular

MAX_BYTES = 16 * 1024 * 1024  # a lock of the whole stack is ~100 KiB
MAX_DEPTH = 32
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)  # a JSON string (unrolled: no per-character branch)
_BRACKET = re.compile(r"[\[\]{}]")


def read(path: Path, what: str = "file", hint: str | None = None) -> Any:
    """Read and parse `path` (a missing file raises FileNotFoundError for the caller to word)."""
    try:
        if path.is_dir():
            raise ObsplanError(f"{what} is a directory", file=str(path), hint=hint)
        data = read_regular(path, MAX_BYTES)  # a FIFO or device: refused, never waited on
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise ObsplanError(f"cannot read {what}: {exc.strerror or exc}", file=str(path), hint=hint) from None
    return loads(data, str(path), what, hint)


def loads(data: bytes, name: str, what: str = "file", hint: str | None = None) -> Any:
    if len(data) > MAX_BYTES:
        raise ObsplanError(f"{what} is larger than {MAX_BYTES} bytes", file=name, hint=hint)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ObsplanError(f"{what} is not valid UTF-8 (byte {exc.start})", file=name, hint=hint) from None
    depth = _depth(text)
    if depth > MAX_DEPTH:
        raise ObsplanError(f"{what} is nested {depth} levels deep (at most {MAX_DEPTH})", file=name, hint=hint)
    try:
        return json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
    except _Refused as exc:
        raise ObsplanError(f"{what} {exc}", file=name, hint=hint) from None
    except json.JSONDecodeError as exc:
        raise ObsplanError(f"{what} is not valid JSON ({exc.msg} at line {exc.lineno})", file=name, hint=hint) from None
    except (ValueError, RecursionError) as exc:  # e.g. an integer with more digits than Python converts
        raise ObsplanError(f"{what} is not valid JSON ({exc})", file=name, hint=hint) from None


class _Refused(ValueError):
    pass


def _depth(text: str) -> int:
    """Deepest nesting of objects/arrays, brackets inside strings ignored (an unterminated string counts as text)."""
    brackets = _BRACKET.findall(_STRING.sub('""', text))
    return max(accumulate(1 if b in "[{" else -1 for b in brackets), default=0)


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _Refused(f"has the key {key!r} twice in one object")
        result[key] = value
    return result


def _no_constant(name: str) -> Any:
    raise _Refused(f"holds {name}, which is not JSON")
