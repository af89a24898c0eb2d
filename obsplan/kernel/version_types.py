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


class _ParsedText:
    """What both values share: the text they were read from (their `str`), and their pydantic schema (validated
    from a string, serialised to that text, a plain string in a JSON schema)."""

    __slots__ = ("text",)
    EXAMPLE = ""  # shown when a model is given something that is not a string

    def __init__(self, text: str) -> None:
        self.text = text

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.text!r})"

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        return _text_schema(cls)

    @classmethod
    def __get_pydantic_json_schema__(
        cls, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return {"type": "string"}


class VersionValue(_ParsedText):
    """A release version parsed from `text` (raises ValueError); ordered and hashed as its `Version`."""

    __slots__ = ("version",)
    EXAMPLE = "'1.7.0'"

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.version = Version.parse(text)

    @classmethod
    def of(cls, v: Version) -> VersionValue:
        """`v` as a value written in its normal form (built, not parsed)."""
        out = cls.__new__(cls)
        out.text, out.version = str(v), v
        return out

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


class RangeValue(_ParsedText):
    """A version constraint (`>=2.9.0 <3.0.0`, `~3.6`) parsed from `text` once (raises ValueError)."""

    __slots__ = ("range",)
    EXAMPLE = "'>=2.9.0 <3.0.0'"

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.range = VersionRange.parse(text)

    @classmethod
    def above(cls, v: Version) -> RangeValue:
        """`>v`: every version newer than `v` (built, not parsed)."""
        out = cls.__new__(cls)
        out.text, out.range = f">{v}", VersionRange(f">{v}", ((">", v),))
        return out

    def contains(self, v: Version | VersionValue) -> bool:
        return self.range.contains(v.version if isinstance(v, VersionValue) else v)

    def __hash__(self) -> int:
        return hash(self.text)

    def __eq__(self, other: object) -> bool:
        return self.text == other.text if isinstance(other, RangeValue) else NotImplemented


def _version_of(other: object) -> Version | None:
    if isinstance(other, VersionValue):
        return other.version
    return other if isinstance(other, Version) else None


def _text_schema(cls: type[_ParsedText]) -> core_schema.CoreSchema:
    """Validate from a string (or an instance), serialise to the text it was read from, in every mode."""

    def validate(value: Any) -> _ParsedText:
        if isinstance(value, cls):
            return value
        if not isinstance(value, str):
            raise ValueError(f"{value!r} must be a string, e.g. {cls.EXAMPLE}")
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
