"""Strict config models, and every PyYAML/pydantic problem translated into one `ObsplanError` naming the file,
the key and the fix."""

from __future__ import annotations

import types
import typing
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

import obsplan.safeio.yamlload as yamlload
from obsplan.kernel.errors import ObsplanError

M = TypeVar("M", bound=BaseModel)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def parse_yaml(text: str, name: str) -> Any:
    """One YAML document, parsed safely (size, depth and alias expansion capped, duplicate keys refused: obsplan/safeio/yamlload.py)."""
    return yamlload.load(text, name)


def validate(model: type[M], data: Any, name: str) -> M:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ObsplanError("expected a mapping at the top level", file=name, hint="see the README for the format")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = [str(p) for p in err["loc"]]
        key = ".".join(loc)
        etype = err["type"]
        if etype == "extra_forbidden":
            parent = _model_at(model, loc[:-1])
            allowed = sorted((f.alias or n) for n, f in parent.model_fields.items()) if parent else []
            raise ObsplanError(
                f"unknown key {loc[-1]!r}",
                file=name,
                key=key,
                hint=f"allowed keys here: {', '.join(allowed)}" if allowed else "remove it",
            ) from None
        if etype == "literal_error":
            raise ObsplanError(
                f"invalid value {err.get('input')!r}", file=name, key=key, hint=f"expected {err['ctx']['expected']}"
            ) from None
        if etype == "missing":
            raise ObsplanError("required key is missing", file=name, key=key, hint="add it") from None
        msg = err["msg"].removeprefix("Value error, ")
        raise ObsplanError(msg, file=name, key=key or None, hint="fix the value") from None


def _model_at(model: type[BaseModel], loc: list[str]) -> type[BaseModel] | None:
    """The model class that owns the key at `loc` (a dict key or list index after a container field is skipped)."""
    current: Any = model
    skip_next = False
    for part in loc:
        if skip_next:
            skip_next = False
            continue
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return None
        field = next((f for n, f in current.model_fields.items() if part in (n, f.alias)), None)
        if field is None:
            return None
        current, skip_next = _unwrap(field.annotation)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _unwrap(tp: Any) -> tuple[Any, bool]:
    """`X | None` → X; `dict[str, X]` / `list[X]` → X, saying that a key or index comes next in an error location."""
    container = False
    while True:
        origin = typing.get_origin(tp)
        if origin in (typing.Union, types.UnionType):
            tp = next(a for a in typing.get_args(tp) if a is not type(None))
        elif origin in (dict, list):
            tp, container = typing.get_args(tp)[-1], True
        else:
            return tp, container
