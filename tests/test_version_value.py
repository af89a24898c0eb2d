"""Versions parsed once, at the edge (obsplan/kernel/version_types.py): `VersionValue` round-trips its text and
orders as the kernel's `Version`; and a version is parsed from text only in the modules where text comes in."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import semver
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from obsplan.kernel.version_types import RangeValue, VersionValue
from obsplan.kernel.versions import Version, VersionRange, parse_tag

REPO = Path(__file__).resolve().parent.parent

# Where version text comes in, and so where it may be parsed: the kernel's own types, configuration and data files
# (compiler/config, the advisory mappings), release tags and release data (compiler/sources), upstream changelogs
# and advisory records, the lock and host facts (obsplan/lock), the host itself (probes, facts, state.db) and
# facts gathered from a fleet, and the command line. Anything else compares values it was given.
EDGES = {
    "obsplan/kernel/versions.py",
    "obsplan/kernel/version_types.py",
    "compiler/config/inputs.py",
    "compiler/config/matrix.py",
    "compiler/config/versions_file.py",
    "compiler/sources/releases.py",
    "compiler/intel/changelog_parse.py",
    "compiler/intel/advisory_versions.py",
    "compiler/intel/breaking_changes.py",
    "obsplan/lock/lockfile.py",
    "obsplan/lock/hostfacts.py",
    "obsplan/lock/service_def.py",
    "executor/host/facts_collect.py",
    "executor/apply/binding.py",
    "executor/recovery/rollback.py",
    "executor/doctor.py",
    "obsplan/rollout/fleet_facts.py",
    "compiler/sources/release_list.py",  # tags from the release source, as `list-versions` shows them
}

_PARSERS = {"parse_tag", "version_or_none", "version_value_or_none", "VersionValue", "RangeValue"}


def parse_calls(tree: ast.AST) -> list[int]:
    """Lines that parse a version or range from text: `Version.parse(...)` (also semver's and `VersionRange`'s),
    `parse_tag`, `version_or_none`, and constructing a `VersionValue`/`RangeValue`."""
    lines = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        f = node.func
        dotted = isinstance(f, ast.Attribute) and f.attr == "parse" and _names_version(f.value)
        if dotted or (isinstance(f, ast.Name) and f.id in _PARSERS):
            lines.append(node.lineno)
    return lines


def _names_version(node: ast.expr) -> bool:
    name = node.attr if isinstance(node, ast.Attribute) else node.id if isinstance(node, ast.Name) else ""
    return name in {"Version", "VersionRange"}


def parse_sites(root: Path) -> dict[str, list[int]]:
    """Every module of the package (compiler/, executor/, obsplan/) → the lines where it parses a version."""
    out = {}
    for top in ("compiler", "executor", "obsplan"):
        for path in sorted((root / top).rglob("*.py")):
            lines = parse_calls(ast.parse(path.read_text(), str(path)))
            if lines:
                out[path.relative_to(root).as_posix()] = lines
    return out


def test_versions_are_parsed_only_at_the_edges() -> None:
    outside = {p: lines for p, lines in parse_sites(REPO).items() if p not in EDGES}
    assert not outside, (
        f"versions parsed from text outside the edge modules: {outside}; take a VersionValue/RangeValue (or a "
        "Version) from the model that read the text, or add the module to EDGES if text really comes in there"
    )


def test_every_edge_module_exists() -> None:
    assert sorted(p for p in EDGES if not (REPO / p).is_file()) == []


def test_the_scan_sees_a_parse_in_the_middle() -> None:
    tree = ast.parse("v = Version.parse(text)\nr = VersionRange.parse(t)\nok = v.parse\nw = VersionValue('1.0.0')\n")
    assert parse_calls(tree) == [1, 2, 4]


_CORE = st.tuples(*(st.integers(0, 999),) * 3).map(lambda t: ".".join(map(str, t)))
_PRE = st.sampled_from(["", "-rc.0", "-rc1", "-beta.2", "-alpha", "-preview", "rc0"])
_BUILD = st.sampled_from(["", "+security-01", "+security-12"])
VERSION_TEXT = st.tuples(st.sampled_from(["", "v"]), _CORE, _PRE, _BUILD).map("".join)


@given(VERSION_TEXT)
def test_parse_then_str_round_trips(text: str) -> None:
    value = VersionValue(text)
    assert str(value) == text and value.version == Version.parse(text)
    assert str(VersionValue(str(value.version)).version) == str(value.version)


@given(VERSION_TEXT, VERSION_TEXT)
def test_ordering_agrees_with_the_kernel(a: str, b: str) -> None:
    va, vb, ka, kb = VersionValue(a), VersionValue(b), Version.parse(a), Version.parse(b)
    assert (va < vb, va <= vb, va == vb, va > vb, va >= vb) == (ka < kb, ka <= kb, ka == kb, ka > kb, ka >= kb)
    assert (va == kb) == (ka == kb) and (va < kb) == (ka < kb)
    assert (hash(va) == hash(vb)) or va != vb


@given(VERSION_TEXT, VERSION_TEXT)
def test_a_range_contains_what_the_kernel_range_does(bound: str, probe: str) -> None:
    text = f">={bound} <99999.0.0"
    assert RangeValue(text).contains(VersionValue(probe)) == VersionRange.parse(text).contains(Version.parse(probe))


class _Pins(BaseModel):
    version: VersionValue
    current: VersionValue | None = None
    allowed: RangeValue | None = None


@given(VERSION_TEXT)
def test_a_model_validates_from_and_serialises_to_the_same_text(text: str) -> None:
    doc = {"version": text, "current": None, "allowed": "~1.2.3"}
    pins = _Pins.model_validate(doc)
    assert isinstance(pins.version, VersionValue) and isinstance(pins.allowed, RangeValue)
    assert pins.model_dump() == doc and pins.model_dump(mode="json") == doc
    assert _Pins.model_validate_json(pins.model_dump_json()) == pins


def test_the_json_schema_is_a_plain_string() -> None:
    props = _Pins.model_json_schema()["properties"]
    assert props["version"] == {"title": "Version", "type": "string"}
    assert props["allowed"]["anyOf"] == [{"type": "string"}, {"type": "null"}]


@pytest.mark.parametrize("bad", ["1.2", "latest", "", "v1.2.3.4"])
def test_a_bad_version_says_what_is_expected(bad: str) -> None:
    with pytest.raises(ValidationError, match="is not a release version"):
        _Pins.model_validate({"version": bad})


def test_a_number_is_not_a_version() -> None:
    with pytest.raises(ValidationError, match="must be a string"):
        _Pins.model_validate({"version": 1.7})


NUMBER = st.one_of(st.integers(0, 10**12).map(str), st.from_regex(r"\A0[0-9]{1,3}\Z"))


@given(NUMBER, NUMBER, NUMBER, st.sampled_from(["", "v"]), st.sampled_from(["", "+security-01", "+stringlabels"]))
def test_a_plain_tag_reads_as_semver_reads_it(major: str, minor: str, patch: str, v: str, build: str) -> None:
    """`parse_tag` reads MAJOR.MINOR.PATCH without semver's parser (the common case, ~1,500 tags a plan); it must
    agree with that parser: the same numbers, and no version where semver refuses one (a leading zero)."""
    got = parse_tag(f"{v}{major}.{minor}.{patch}{build}")
    try:
        want: semver.Version | None = semver.Version.parse(f"{major}.{minor}.{patch}")
    except ValueError:
        want = None
    if want is None or build == "+stringlabels":
        assert got is None
    else:
        assert got is not None and got.sem == want and got.security == (1 if build else 0)
        assert str(got) == f"{want}" + build
