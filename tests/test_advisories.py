"""OSV advisories on the 24 vendored records (tests/fixtures/advisories, byte-for-byte copies)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from obsplan.compiler.intel.advisories import AdvisoryDB, Assessment, load_advisories, osv_queries
from obsplan.compiler.intel.advisory_versions import load_mappings, module_to_release, release_to_module
from obsplan.compiler.intel.osv_records import parse_osv_response

from obsplan.kernel.errors import ObsplanError
from obsplan.kernel.versions import Version

FIXTURES = Path(__file__).parent / "fixtures" / "advisories"
V = Version.parse


@pytest.fixture(scope="module")
def db() -> AdvisoryDB:
    return load_advisories([FIXTURES])


def assess(db: AdvisoryDB, component: str, current: str | None, target: str, hops=()) -> dict[str, Assessment]:
    cur = V(current) if current else None
    return {a.id: a for a in db.assess(component, cur, V(target), [V(h) for h in hops])}


def by_alias(result: dict[str, Assessment], alias: str) -> Assessment:
    return next(a for a in result.values() if alias == a.id or alias in a.aliases)


def test_dedupe_by_aliases_and_withdrawn(db):
    assert len(list(FIXTURES.glob("*.json"))) == 24
    assert db.withdrawn == ["GHSA-3m87-5598-2v4f"]
    assert len(db.vulnerabilities) == 24 - 1 - 4
    merged = {v.id: v for v in db.vulnerabilities if len(v.source) == 2}
    assert sorted(merged) == [
        "GHSA-5mxf-42f5-j782",
        "GHSA-7rg2-cxvp-9p7p",
        "GHSA-hh8p-374f-qgr5",
        "GHSA-v86x-5fm3-5p7j",
    ]
    toolkit = merged["GHSA-7rg2-cxvp-9p7p"]
    assert toolkit.aliases == ["CVE-2022-46146", "GO-2022-1130"]
    assert toolkit.source == ["GHSA-7rg2-cxvp-9p7p.json", "GO-2022-1130.json"]
    assert toolkit.severity == "MODERATE"
    assert [v.id for v in db.vulnerabilities] == sorted(v.id for v in db.vulnerabilities)
    assert not any("CVE-2019-3826" in v.aliases for v in db.vulnerabilities)


def test_for_component(db):
    assert [v.id for v in db.for_component("prometheus")] == [
        "GHSA-4v48-4q5m-8vx4",
        "GO-2026-5264",
        "GO-2026-5662",
    ]
    assert [v.id for v in db.for_component("alertmanager")] == ["GHSA-v86x-5fm3-5p7j"]
    assert [v.id for v in db.for_component("node_exporter")] == ["GHSA-7rg2-cxvp-9p7p"]
    assert len(db.for_component("grafana")) == 12
    assert db.for_component("phpfpm_exporter") == []


def test_prometheus_custom_ranges(db):
    a = assess(db, "prometheus", "3.11.1", "3.14.0")["GO-2026-5662"]
    assert (a.affects_current, a.affects_target, a.fixed_in) == (True, False, "3.11.2")
    assert a.aliases == ["CVE-2026-40179", "GHSA-vffh-x6r8-xx99"]
    lts = assess(db, "prometheus", "3.5.1", "3.5.5")["GO-2026-5662"]
    assert (lts.affects_current, lts.affects_target, lts.fixed_in) == (True, False, "3.5.2")
    # The SEMVER range ends at a pseudo-version; the custom ranges decide: 2.x is outside [3.0.0, 3.5.2).
    assert assess(db, "prometheus", "2.53.0", "2.53.0")["GO-2026-5662"].affects_target is False


def test_prometheus_module_versions_translated(db):
    prom = load_mappings().components["prometheus"].modules[0]
    assert str(module_to_release("0.305.2", prom)) == "3.5.2"
    assert str(module_to_release("0.311.3", prom)) == "3.11.3"
    assert str(module_to_release("0.55.1", prom)) == "2.55.1"
    assert module_to_release("0.311.2-0.20260410083055-07c6232d159b", prom) is None
    assert str(release_to_module(V("3.6.0"), prom)) == "0.306.0"
    assert str(release_to_module(V("2.20.0"), prom)) == "2.20.0"  # before the v0 scheme
    result = assess(db, "prometheus", "3.11.2", "3.11.2")["GO-2026-5264"]
    assert (result.affects_current, result.fixed_in) == (True, "3.11.3")
    lts = assess(db, "prometheus", "3.5.1", "3.5.5")["GO-2026-5264"]
    assert (lts.affects_current, lts.affects_target, lts.fixed_in) == (True, False, "3.5.2")
    # `introduced: 1.0.0-rc.0` re-opens the range for the old v1/v2 tags, not for 3.14.0 (module v0.314.0).
    assert assess(db, "prometheus", None, "3.14.0")["GO-2026-5264"].affects_target is False
    assert assess(db, "prometheus", None, "2.20.0")["GO-2026-5264"].affects_target is True


def test_prometheus_ghsa_release_numbers_and_hops(db):
    a = assess(db, "prometheus", "2.40.3", "2.40.3")["GHSA-4v48-4q5m-8vx4"]
    assert (a.affects_current, a.fixed_in, a.severity) == (True, "2.40.4", "HIGH")
    assert assess(db, "prometheus", "2.40.4", "2.40.4")["GHSA-4v48-4q5m-8vx4"].affects_current is False
    seed = assess(db, "prometheus", "2.48.1", "3.14.0", hops=["2.55.1"])["GO-2026-5264"]
    assert seed.affected_hops == ["2.55.1"]
    assert seed.affects_target is False


def test_alertmanager(db):
    assert assess(db, "alertmanager", "0.25.0", "0.25.1")["GHSA-v86x-5fm3-5p7j"].affects_current is True
    a = assess(db, "alertmanager", "0.25.1", "0.27.0")["GHSA-v86x-5fm3-5p7j"]
    assert (a.affects_current, a.affects_target, a.fixed_in) == (False, False, None)


def test_exporters_through_exporter_toolkit(db):
    a = assess(db, "node_exporter", "1.4.0", "1.5.0")["GHSA-7rg2-cxvp-9p7p"]
    assert (a.affects_current, a.affects_target, a.fixed_in) == (True, False, "1.5.0")  # fix on the target's line
    assert assess(db, "node_exporter", "1.4.0", "1.4.1")["GHSA-7rg2-cxvp-9p7p"].fixed_in == "1.4.1"
    assert assess(db, "node_exporter", "1.4.1", "1.4.1")["GHSA-7rg2-cxvp-9p7p"].affects_current is False
    assert assess(db, "mysqld_exporter", "0.14.0", "0.15.0")["GHSA-7rg2-cxvp-9p7p"].affects_current is True
    unknown = assess(db, "node_exporter", "1.7.0", "1.12.1")["GHSA-7rg2-cxvp-9p7p"]
    assert (unknown.affects_current, unknown.affects_target) == (None, None)
    nginx = assess(db, "nginx_exporter", "0.11.0", "1.5.3")["GHSA-7rg2-cxvp-9p7p"]
    assert (nginx.affects_current, nginx.affects_target) == (False, None)  # no toolkit in 0.11.0


def test_grafana(db):
    g = assess(db, "grafana", "11.1.0", "11.1.0")
    hh8p = by_alias(g, "CVE-2024-6322")
    assert (hh8p.affects_current, hh8p.fixed_in) == (True, "11.1.1")
    assert by_alias(g, "GO-2025-3704").affects_current is None  # custom range ends at a pseudo-version only
    assert by_alias(assess(db, "grafana", "11.1.2", "11.1.2"), "CVE-2024-6322").affects_current is True
    assert by_alias(assess(db, "grafana", "11.1.1", "11.1.1"), "CVE-2024-6322").affects_current is False
    # `+security-NN` re-releases sort after their base: 11.0.6 is affected, 11.0.6+security-01 is the fix.
    sec = by_alias(assess(db, "grafana", "11.0.6", "11.0.6+security-01"), "CVE-2024-9264")
    assert (sec.affects_current, sec.affects_target, sec.fixed_in) == (True, False, "11.0.6+security-01")
    # Open-ended custom range (introduced 12.4.0, no fix) next to a pseudo-version interval.
    assert by_alias(assess(db, "grafana", None, "12.4.1"), "CVE-2026-27877").affects_target is True


def test_loki_major_version_module_paths(db):
    a = assess(db, "loki", "3.6.3", "3.7.6")["GO-2026-5115"]
    assert (a.affects_current, a.affects_target, a.fixed_in) == (True, False, "3.6.4")
    # github.com/grafana/loki (2.x) has `introduced: 0` and no fix: every 2.x release is affected.
    assert assess(db, "loki", "2.9.3", "2.9.17")["GO-2026-5115"].affects_target is True
    assert assess(db, "promtail", "3.6.3", "3.6.4")["GO-2026-5115"].affects_current is True


def _write(tmp_path: Path, name: str, record: dict) -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(record), encoding="utf-8")
    return path


def _synthetic(events: list[dict], versions: list[str] | None = None) -> dict:
    affected: dict = {
        "package": {"ecosystem": "Go", "name": "github.com/prometheus/alertmanager"},
        "ranges": [{"type": "SEMVER", "events": events}],
    }
    if versions:
        affected["versions"] = versions
    return {"id": "TEST-0001", "summary": "synthetic", "affected": [affected]}


def test_synthetic_introduced_fixed_and_last_affected(tmp_path):
    """Synthetic records: none of the 24 real ones uses `last_affected` (shared/advisories/README.md)."""
    fixed = load_advisories([_write(tmp_path, "a.json", _synthetic([{"introduced": "0.20.0"}, {"fixed": "0.21.0"}]))])
    assert assess(fixed, "alertmanager", "0.19.0", "0.20.0")["TEST-0001"].affects_current is False
    assert assess(fixed, "alertmanager", "0.19.0", "0.20.0")["TEST-0001"].affects_target is True
    assert assess(fixed, "alertmanager", "0.20.5", "0.21.0")["TEST-0001"].fixed_in == "0.21.0"
    last = load_advisories([_write(tmp_path, "b.json", _synthetic([{"introduced": "0"}, {"last_affected": "0.22.0"}]))])
    a = assess(last, "alertmanager", "0.22.0", "0.22.1")["TEST-0001"]
    assert (a.affects_current, a.affects_target, a.fixed_in) == (True, False, None)
    listed = load_advisories([_write(tmp_path, "c.json", _synthetic([], versions=["0.23.0"]))])
    assert assess(listed, "alertmanager", None, "0.23.0")["TEST-0001"].affects_target is True


def test_invalid_json_names_the_file(tmp_path):
    bad = tmp_path / "sub" / "GO-9999-0001.json"
    bad.parent.mkdir()
    bad.write_text('{"id": "GO-9999-0001", "affected": [', encoding="utf-8")
    with pytest.raises(ObsplanError) as exc:
        load_advisories([tmp_path])
    assert exc.value.file == str(bad)
    assert "not valid JSON" in str(exc.value)
    _write(tmp_path / "sub", "GO-9999-0001.json", {"affected": []})
    with pytest.raises(ObsplanError, match="not an OSV record"):
        load_advisories([tmp_path])


def test_osv_query_body_and_response(db):
    bodies = osv_queries(db.mappings, "prometheus", V("3.11.2"))
    assert bodies == [
        {"package": {"name": "github.com/prometheus/prometheus", "ecosystem": "Go"}, "version": "v0.311.2"}
    ]
    assert osv_queries(db.mappings, "loki", V("3.6.3"))[0]["package"]["name"] == "github.com/grafana/loki/v3"
    payload = {"vulns": [json.loads((FIXTURES / "GO-2026-5662.json").read_text(encoding="utf-8"))]}
    records = parse_osv_response(payload)
    assert [r.id for r in records] == ["GO-2026-5662"]
    online = AdvisoryDB(records, db.mappings)
    assert assess(online, "prometheus", "3.11.1", "3.11.2")["GO-2026-5662"].affects_current is True
    assert parse_osv_response({}) == []


@pytest.mark.parametrize(
    ("field", "value"),
    [("id", "GO 2024 1"), ("aliases", ["CVE-2024-1", "see GHSA"]), ("severity", "HIGH | 9.8")],
)
def test_record_refused_where_read_when_the_lock_could_not_hold_it(tmp_path, field, value):
    """Ids are one word and a severity holds no `|` in the lock (obsplan.lock.lockfile.AdvisoryEntry); a record that
    breaks that is refused when read, naming the file (exit 2), not when the lock is written (exit 3)."""
    record = {"id": "GO-9999-0002", "aliases": [], "affected": [], "database_specific": {"severity": "LOW"}}
    if field == "severity":
        record["database_specific"] = {"severity": value}
    else:
        record[field] = value
    path = _write(tmp_path, "GO-9999-0002.json", record)
    with pytest.raises(ObsplanError) as exc:
        load_advisories([path])
    assert exc.value.exit_code == 2 and exc.value.file == path.name
    assert f"not an OSV record ({field}" in str(exc.value)


def test_cvss_vector_severity_is_kept():
    """Without GitHub's level, the first OSV severity score (a CVSS vector) is the severity the lock records."""
    record = json.loads((FIXTURES / "GHSA-4v48-4q5m-8vx4.json").read_text(encoding="utf-8"))
    del record["database_specific"]["severity"]
    [parsed] = parse_osv_response({"vulns": [record]})
    assert parsed.severity == "CVSS:3.1/AV:N/AC:L/PR:H/UI:N/S:U/C:H/I:H/A:H"
