"""Versions and ranges parsed once, at the edge: `VersionValue` and `RangeValue` are what config, lock and host-fact
models hold, so the compiler and the executor compare values instead of parsing strings again.

Each keeps the text it was read from: a model validates it from a string and serialises it back to that same
string (a lock's bytes do not change), and its JSON schema is a plain `{"type": "string"}`.
"""

from __future__ import annotations

from typing import Any

from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import core_schema

from obsplan.kernel.versions import Version, VersionRange


class VersionValue:
    """A release version parsed from `text` (raises ValueError); ordered and hashed as its `Version`."""

    __slots__ = ("text", "version")

    def __init__(self, text: str) -> None:
        self.text = text
        self.version = Version.parse(text)

    @classmethod
    def of(cls, v: Version) -> VersionValue:
        """`v` as a value written in its normal form (built, not parsed)."""
        out = cls.__new__(cls)
        out.text, out.version = str(v), v
        return out

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return f"VersionValue({self.text!r})"

    def __hash__(self) -> int:
        return hash(self.version)

    def __eq__(self, other: object) -> bool:
        theirs = _version_of(other)
        return NotImplemented if theirs is None else self.version == theirs

    def __lt__(self, other: object) -> bool:
        theirs = _version_of(other)
        return NotImplemented if theirs is None else self.version < theirs

    def __le__(self, other: object) -> bool:
        theirs = _version_of(other)
        return NotImplemented if theirs is None else self.version <= theirs

    def __gt__(self, other: object) -> bool:
        theirs = _version_of(other)
        return NotImplemented if theirs is None else self.version > theirs

    def __ge__(self, other: object) -> bool:
        theirs = _version_of(other)
        return NotImplemented if theirs is None else self.version >= theirs

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        return _text_schema(cls)

    @classmethod
    def __get_pydantic_json_schema__(
        cls, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return {"type": "string"}


class RangeValue:
    """A version constraint (`>=2.9.0 <3.0.0`, `~3.6`) parsed from `text` once (raises ValueError)."""

    __slots__ = ("text", "range")

    def __init__(self, text: str) -> None:
        self.text = text
        self.range = VersionRange.parse(text)

    @classmethod
    def above(cls, v: Version) -> RangeValue:
        """`>v`: every version newer than `v` (built, not parsed)."""
        out = cls.__new__(cls)
        out.text, out.range = f">{v}", VersionRange(f">{v}", ((">", v),))
        return out

    def contains(self, v: Version | VersionValue) -> bool:
        return self.range.contains(v.version if isinstance(v, VersionValue) else v)

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return f"RangeValue({self.text!r})"

    def __hash__(self) -> int:
        return hash(self.text)

    def __eq__(self, other: object) -> bool:
        return self.text == other.text if isinstance(other, RangeValue) else NotImplemented

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        return _text_schema(cls)

    @classmethod
    def __get_pydantic_json_schema__(
        cls, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return {"type": "string"}


def _version_of(other: object) -> Version | None:
    if isinstance(other, VersionValue):
        return other.version
    return other if isinstance(other, Version) else None


def _text_schema(cls: type[VersionValue] | type[RangeValue]) -> core_schema.CoreSchema:
    """Validate from a string (or an instance), serialise to the text it was read from, in every mode."""

    def validate(value: Any) -> VersionValue | RangeValue:
        if isinstance(value, cls):
            return value
        if not isinstance(value, str):
            example = "'1.7.0'" if cls is VersionValue else "'>=2.9.0 <3.0.0'"
            raise ValueError(f"{value!r} must be a string, e.g. {example}")
        return cls(value)

    return core_schema.no_info_plain_validator_function(
        validate, serialization=core_schema.plain_serializer_function_ser_schema(str)
    )


def version_value_or_none(text: str | None) -> VersionValue | None:
    """`VersionValue(text)`, or None when `text` is None, empty or not a release version (read from a host)."""
    if not text:
        return None
    try:
        return VersionValue(text)
    except ValueError:
        return None
