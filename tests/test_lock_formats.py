"""Golden locks of every format (tests/fixtures/locks/format-N/, byte for byte as written) against today's
obsplan: `diff`, `report`, `bundle --verify` and `apply --dry-run` read each; a changed value anywhere is
refused as edited, whitespace and key order are not; a newer format is refused naming both versions; an old
format lacking what a command needs is refused naming the format, its writer and the fix, never "edited"."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from hypothesis import given, settings
from hypothesis import strategies as st

from obsplan import __version__
from obsplan.cli.main import main
from obsplan.kernel.errors import ObsplanError
from obsplan.lock.formats import FORMAT_1_ABSENT, FORMAT_VERSION, FORMATS
from obsplan.lock.lockfile import content_digest, load_lock, parse_lock
from tests.lock_schema import lock_schema

FIXTURES = Path(__file__).parent / "fixtures" / "locks"
GOLDEN = sorted(FIXTURES.glob("format-*/*.lock"))
TODAY = FIXTURES / f"format-{FORMAT_VERSION}" / "staging.lock"


def _cli(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def _doc(path: Path) -> dict:
    return json.loads(path.read_bytes())


def _lacks_services(path: Path) -> bool:
    return any("service" not in c["runtime"] for c in _doc(path)["components"].values())


def test_every_format_has_golden_locks_and_a_reader() -> None:
    assert sorted(FORMATS) == list(range(1, FORMAT_VERSION + 1))
    for version in FORMATS:
        locks = sorted((FIXTURES / f"format-{version}").glob("*.lock"))
        assert locks, f"no golden lock of format {version}"
        assert {_doc(p)["format_version"] for p in locks} == {version}
    assert any(_lacks_services(p) for p in GOLDEN) and not all(_lacks_services(p) for p in GOLDEN)


@pytest.mark.parametrize("path", GOLDEN, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_golden_lock_is_read_with_its_hash_as_written(path: Path) -> None:
    lock = load_lock(path)
    assert lock.content_sha256 == content_digest(_doc(path)) and lock.is_intact()
    assert lock.format_version == _doc(path)["format_version"]


@pytest.mark.parametrize("path", GOLDEN, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_diff_report_and_bundle_verify_read_every_golden_lock(path: Path, tmp_path: Path) -> None:
    for args in (("diff", str(path), str(TODAY)), ("diff", str(TODAY), str(path)), ("report", str(path))):
        result = _cli(*args)
        assert result.exit_code == 0, (args, result.output)
    assert f"(lock format {_doc(path)['format_version']})" in _cli("report", str(path)).output
    first = _cli("diff", str(path), str(TODAY)).output.splitlines()[0]
    if _doc(path)["format_version"] != FORMAT_VERSION:  # the formats are named above the table
        assert first.startswith(f"lock format {_doc(path)['format_version']} (obsplan 0.1.0) → {FORMAT_VERSION} ")
        assert ("has no service definitions: apply refuses it" in first) == _lacks_services(path)
    else:
        assert first.startswith("component ")
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "obsplan.lock").write_bytes(path.read_bytes())
    result = _cli("bundle", "--verify", str(bundle), "--json")
    assert result.exit_code == 1, result.output  # the lock is read; its artifacts are not in this bundle
    verified = json.loads(result.output)
    assert verified["lock_sha256"] == _doc(path)["content_sha256"]
    assert {p["problem"] for p in verified["problems"]} == {"missing"} and verified["files_checked"] == 0


@pytest.mark.parametrize("path", GOLDEN, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_apply_dry_run_of_every_golden_lock(path: Path, tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "etc" / "obsplan").mkdir(parents=True)
    (root / "etc" / "obsplan" / "mysql.pw").write_text("secret\n")  # the mysqld_exporter's password file
    result = _cli("apply", str(path), "--dry-run", "--root", str(root), "--allow-unverified", "--json")
    if _lacks_services(path):  # an early format-1 lock: refused naming the format, its writer and the fix
        assert result.exit_code == 2
        error = json.loads(result.output.strip().splitlines()[-1])
        assert (
            error["error"] == "lock format 1 (written by obsplan 0.1.0) has no service definitions, which apply needs"
        )
        assert "'obsplan plan' again" in error["hint"] and f"format {FORMAT_VERSION} lock" in error["hint"]
        assert "edited" not in result.output
        return
    assert result.exit_code == 0, result.output
    started = json.loads(result.output.splitlines()[0])
    assert started["event"] == "run_started" and started["metadata"]["dry_run"] is True
    assert started["metadata"]["lock_sha256"] == _doc(path)["content_sha256"]
    assert sorted(p.name for p in root.rglob("*")) == ["etc", "mysql.pw", "obsplan"]  # nothing written


@pytest.mark.parametrize("path", GOLDEN, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_a_changed_value_anywhere_is_refused_as_edited(path: Path, tmp_path: Path) -> None:
    doc = _doc(path)
    name = sorted(doc["components"])[-1]
    edits = {
        "version": lambda d: d["components"][name].update(version="99.0.0"),
        "url": lambda d: d["plan"]["steps"][0]["artifacts"]["linux-amd64"].update(url="https://evil.example/x.tgz"),
        "writer": lambda d: d.update(obsplan_version="0.0.9"),
        "added": lambda d: d["components"][name].update(warnings=[*d["components"][name]["warnings"], "x"]),
    }
    for what, change in edits.items():
        edited = json.loads(path.read_bytes())
        change(edited)
        forged = tmp_path / f"{what}.lock"
        forged.write_text(json.dumps(edited, indent=2, sort_keys=True))
        for args in (("diff", str(forged), str(TODAY)), ("report", str(forged))):
            result = _cli(*args)
            assert result.exit_code == 2 and "lock was edited after it was generated" in result.output, (what, args)


@pytest.mark.parametrize("path", GOLDEN, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_whitespace_and_key_order_carry_no_meaning(path: Path, tmp_path: Path) -> None:
    doc = _doc(path)
    compact = tmp_path / "compact.lock"
    compact.write_text(json.dumps(dict(reversed(list(doc.items()))), separators=(",", ":")))
    assert load_lock(compact).content_sha256 == doc["content_sha256"]


def test_a_newer_format_is_refused_naming_both_versions(tmp_path: Path) -> None:
    doc = _doc(TODAY)
    doc.update(format_version=FORMAT_VERSION + 1, obsplan_version="9.1.0", field_of_the_future=True)
    doc["content_sha256"] = content_digest(doc)
    future = tmp_path / "future.lock"
    future.write_text(json.dumps(doc))
    expected = (
        f"format_version: lock format {FORMAT_VERSION + 1} (written by obsplan 9.1.0) is newer than this "
        f"obsplan {__version__} reads (formats 1 to {FORMAT_VERSION})"
    )
    root = tmp_path / "root"
    for args in (
        ("diff", str(future), str(TODAY)),
        ("report", str(future)),
        ("apply", str(future), "--dry-run", "--root", str(root)),
        ("status", "--root", str(root), "--lock", str(future)),
    ):
        result = _cli(*args)
        assert result.exit_code == 2 and expected in result.output, (args, result.output)
        assert "upgrade obsplan on this machine to 9.1.0 or later" in result.output
    assert not root.exists()


def test_format_1_reader_states_every_field_it_fills(tmp_path: Path) -> None:
    """Read into today's model, a format-1 lock holds every field as written or as FORMAT_1_ABSENT states it:
    a field added to the models without a stated format-1 meaning fails here."""
    for path in sorted((FIXTURES / "format-1").glob("*.lock")):
        document, _ = FORMATS[1].read(_doc(path))
        assert load_lock(path).model_dump(mode="json") == document, (
            f"{path.name}: today's model fills a field format 1 lacks: state it in FORMAT_1_ABSENT"
        )
    assert all(a.meaning for a in FORMAT_1_ABSENT.values())


def test_lock_models_match_the_recorded_schema_of_their_format() -> None:
    """The lock models are the format: a field added, removed or retyped changes the schema. While format
    FORMAT_VERSION is unreleased, `scripts/lock-format-refresh` records the change (golden locks + schema);
    after its release, a change needs a new FORMAT_VERSION, its reader and fixtures (docs/lock-format.md)."""
    recorded = (FIXTURES / f"format-{FORMAT_VERSION}" / "schema.json").read_text(encoding="utf-8")
    assert lock_schema() == recorded, (
        f"the lock models changed but format {FORMAT_VERSION}'s recorded schema did not: run "
        "scripts/lock-format-refresh while the format is unreleased, else add format "
        f"{FORMAT_VERSION + 1} (obsplan/lock/formats.py) with its golden locks"
    )


def test_the_documented_format_table_holds_every_format_and_default() -> None:
    doc = (Path(__file__).parents[1] / "docs" / "lock-format.md").read_text()
    for version, fmt in FORMATS.items():
        assert f"| {version} | {fmt.written_by}" in doc
    for path in FORMAT_1_ABSENT:
        head, _, last = path.rpartition(".")
        assert f"`{path}`" in doc or f"`{head}.{last}`" in doc or f".{last}`" in doc, path


@pytest.mark.parametrize("name", ["74e17e8-staging.lock", "main-22f1fa2-staging.lock"])
def test_a_host_that_applied_a_format_1_lock_keeps_status_and_rollback_names_the_format(
    name: str, tmp_path: Path
) -> None:
    """After upgrading obsplan on a host, the lock the previous obsplan applied is still read."""
    golden = FIXTURES / "format-1" / name
    state = tmp_path / "root" / "var" / "lib" / "obsplan"
    state.mkdir(parents=True)
    (state / "applied-lock.json").write_bytes(golden.read_bytes())
    status = _cli("status", "--root", str(tmp_path / "root"), "--json")
    assert status.exit_code == 0, status.output
    targets = {row["component"]: row["target_version"] for row in json.loads(status.output)}
    assert targets == {c: v["version"] for c, v in _doc(golden)["components"].items()}
    rollback = _cli("rollback", "prometheus", "--root", str(tmp_path / "root"))
    assert "edited" not in rollback.output and rollback.exit_code in (1, 2), rollback.output
    if _lacks_services(golden):
        assert "lock format 1 (written by obsplan 0.1.0) has no service definitions, which rollback needs" in (
            rollback.output
        )


def test_plan_check_reads_a_format_1_lock(tmp_path: Path) -> None:
    """`plan --check` of a committed format-1 lock reports what no longer matches, never an edit or a format: the
    lock of 74e17e8 was planned from other inputs (1 problem); the one of 22f1fa2 decides what these inputs
    decide, so it passes whatever obsplan and format wrote it."""
    import shutil

    shutil.copytree(Path(__file__).parents[1] / "examples", tmp_path / "examples")
    for name, code in (("74e17e8-staging.lock", 1), ("main-22f1fa2-staging.lock", 0)):
        lock = tmp_path / name
        lock.write_bytes((FIXTURES / "format-1" / name).read_bytes())
        args = ["plan", "--config-dir", str(tmp_path / "examples"), "--env", "staging", "--offline", "--check"]
        result = CliRunner().invoke(
            main,
            [*args, "-o", str(lock)],
            env={"OBSPLAN_NOW": "2026-11-22T00:00:00+00:00", "OBSPLAN_CACHE_DIR": str(tmp_path / "cache")},
        )
        assert result.exit_code == code, result.output
        assert ("problem(s)" if code else "up to date") in result.output, result.output
        assert (
            "edited" not in result.output
            and "format_version" not in result.output
            and "lock format" not in result.output
        )


def _leaves(node: object, path: tuple = ()) -> list[tuple]:
    if isinstance(node, dict):
        return [leaf for k, v in node.items() if k != "content_sha256" for leaf in _leaves(v, (*path, k))]
    if isinstance(node, list):
        return [leaf for i, v in enumerate(node) for leaf in _leaves(v, (*path, i))]
    return [path]


_GOLDEN_DOCS = {p.name: (p, _doc(p)) for p in GOLDEN}
_GOLDEN_LEAVES = {name: _leaves(doc) for name, (_, doc) in _GOLDEN_DOCS.items()}


@settings(max_examples=25, deadline=None)
@given(
    name=st.sampled_from(sorted(_GOLDEN_DOCS)),
    pick=st.integers(min_value=0),
    value=st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=20)),
    indent=st.sampled_from([None, 0, 1, 4]),
)
def test_any_changed_value_of_any_format_is_edited_and_layout_is_not(
    name: str, pick: int, value: object, indent: int | None
) -> None:
    path, doc = _GOLDEN_DOCS[name]
    leaves = _GOLDEN_LEAVES[name]
    where = leaves[pick % len(leaves)]
    edited = json.loads(path.read_bytes())
    node = edited
    for part in where[:-1]:
        node = node[part]
    changed = node[where[-1]] != value or type(node[where[-1]]) is not type(value)
    node[where[-1]] = value
    relaid = json.dumps(doc, indent=indent, sort_keys=indent is None).encode()
    assert parse_lock(relaid, "relaid").content_sha256 == doc["content_sha256"]
    if changed and where != ("format_version",):
        with pytest.raises(ObsplanError) as caught:
            parse_lock(json.dumps(edited).encode(), "edited")
        assert caught.value.key == "content_sha256", (where, caught.value)
