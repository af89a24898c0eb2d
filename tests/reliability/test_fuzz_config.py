"""Hypothesis fuzzing of versions.yaml, upgrade-policy.yaml and matrix.yaml, compiled in-process offline.

Each document must end in exit 0, 1 or 2 (never 3, never a hang), a refusal is one line, the configuration
files are unchanged, and nothing appears outside the example's temp directory except the lock it asked for.
Budget: OBSPLAN_FUZZ_EXAMPLES documents in all (default 50 in the normal test run; 1000+ in the dedicated run),
split over the three files.
"""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.reliability.conftest import FUZZ_EXAMPLES, Record, no_hang
from tests.reliability.corpus import MINIMAL_VERSIONS, run, tree

PER_FILE = max(1, -(-FUZZ_EXAMPLES // 3))
SETTINGS = settings(
    max_examples=PER_FILE, deadline=None, database=None, derandomize=False, suppress_health_check=list(HealthCheck)
)

NASTY = [
    "../../../x",
    "/../../X",
    "/var/lib/x",
    "{version}",
    "{nope}",
    "{0}",
    "{version:>99999999}",
    "{version!r}",
    "{",
    "}",
    "{version.x}",
    "{tag[0]}",
    "x-{version}.{os}-{arch}.tar.gz",
    "1.7.0",
    "1.6.0",
    "0.27.0",
    "3.0.0",
    ">=1.0.0 <2.0.0",
    ">=one",
    "latest",
    "pinned",
    "range",
    "lts",
    "2025-13-45",
    "2024-01-01",
    "http://[::1",
    "https://example.invalid/a.tar.gz",
    "file:///etc/passwd",
    "\u0000",
    "é",
    "x" * 300,
    "0.0.0.0",
    "::",
    "linux-amd64",
    "linux-arm64",
    "windows-386",
    "prometheus/node_exporter",
    "a/b/c",
    "",
    " ",
    "~",
    "*",
    "*/x",
    "low",
    "high",
    "node_exporter",
    "prometheus",
    "grafana",
    "core",
    "exporters",
    "required_hop",
    "breaking",
    "2.55",
    "3.x",
    "matrix.yaml",
    "adir",
    "/",
    ".",
    "..",
]
COMPONENTS = [
    "node_exporter",
    "prometheus",
    "alertmanager",
    "grafana",
    "loki",
    "promtail",
    "blackbox_exporter",
    "Bad Name",
    "../x",
    "x" * 80,
]

scalar = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True),
    st.sampled_from(NASTY),
    st.text(max_size=12),
)
junk = st.recursive(
    scalar,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)


def keyed(keys: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[dict[str, Any]]:
    """A mapping of some of `keys` (each with its own value strategy, or junk), sometimes with an unknown key."""
    names = sorted(keys)
    return st.lists(st.sampled_from([*names, "unknown_key"]), max_size=len(names), unique=True).flatmap(
        lambda chosen: st.fixed_dictionaries(
            {k: st.one_of(keys[k], keys[k], keys[k], junk) if k in keys else junk for k in chosen}
        )
    )


def versions_of(strat: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.lists(strat, max_size=3)


S = st.sampled_from(NASTY)
VERSION = st.sampled_from(["1.7.0", "1.8.2", "0.27.0", "2.55.1", "3.0.0"]) | S
runtime = keyed(
    {
        "binaries": st.dictionaries(S, S, max_size=2),
        "service_binary": S,
        "port": st.integers(-5, 70000),
        "health_path": S,
        "data_dir": S,
        "config_file": S,
        "listen_address": S,
        "version_args": st.lists(S),
    }
)
component = keyed(
    {
        "strategy": st.sampled_from(["latest", "pinned", "range", "lts"]) | S,
        "version": VERSION,
        "version_range": st.sampled_from([">=1.0.0 <2.0.0", ">=0.1.0"]) | S,
        "github_repo": S,
        "fallback_version": VERSION,
        "exclude": versions_of(VERSION),
        "include_prereleases": st.booleans(),
        "tag_prefix": S,
        "artifact": S,
        "checksums": S,
        "download_url": S,
        "arch_map": st.dictionaries(S, S, max_size=2),
        "phase": S,
        "artifact_urls": st.dictionaries(S, st.dictionaries(S, S, max_size=1), max_size=1),
        "runtime": runtime,
    }
)
environment = keyed(
    {
        "default_strategy": S,
        "offline_mode": st.booleans(),
        "platforms": versions_of(S),
        "current": st.dictionaries(st.sampled_from(COMPONENTS), VERSION, max_size=2),
        "component_overrides": st.dictionaries(st.sampled_from(COMPONENTS), component, max_size=2),
        "disabled_components": versions_of(st.sampled_from(COMPONENTS)),
    }
)
versions_doc = keyed(
    {
        "global": keyed({"default_strategy": S, "offline_mode": st.booleans(), "platforms": versions_of(S)}),
        "components": st.dictionaries(st.sampled_from(COMPONENTS), component, max_size=3),
        "environments": st.dictionaries(st.sampled_from(["default", "prod", "../x"]), environment, max_size=2),
    }
)
# near-valid documents: built-in components with one or two fields drawn from their own (mostly bad) values,
# so that many documents get past validation and exercise resolution, the matrix and the lock
BUILTIN = st.sampled_from(["node_exporter", "prometheus", "alertmanager", "grafana", "loki", "promtail"])
near_component = st.dictionaries(
    st.sampled_from(["strategy", "version", "version_range", "fallback_version", "exclude", "runtime", "artifact"]),
    st.just("latest"),
    max_size=0,
) | st.builds(
    lambda k, v: {k: v},
    st.sampled_from(["strategy", "version", "version_range", "fallback_version"]),
    VERSION | st.sampled_from(["latest", "pinned", "range", "lts", ">=1.0.0 <3.0.0"]),
)
near_env = st.fixed_dictionaries(
    {}, optional={"current": st.dictionaries(BUILTIN, VERSION, max_size=2), "default_strategy": S}
)
near_versions_doc = st.fixed_dictionaries(
    {"components": st.dictionaries(BUILTIN, near_component, min_size=1, max_size=3)},
    optional={"environments": st.fixed_dictionaries({"default": near_env})},
)
any_versions_doc = st.one_of(versions_doc, near_versions_doc)
policy_doc = keyed(
    {
        "safety": keyed({"max_parallel_upgrades": st.integers(-1, 10**12), "require_health_check": st.booleans()}),
        "auto_upgrade": keyed({"enabled": st.booleans(), "allowed_risk_levels": versions_of(S)}),
        "rollback": keyed({"keep_versions": st.integers(-1, 10**12), "retention_days": scalar}),
        "minimum_release_age_days": st.integers(-(2**40), 2**40),
        "phases": st.lists(keyed({"name": S, "components": versions_of(st.sampled_from(COMPONENTS))}), max_size=3),
        "allow": versions_of(S),
        "approvals": versions_of(S),
        "advisories": versions_of(S),
        "osv_api": keyed({"enabled": st.just(False), "url": S}),
        "matrix_file": S,
    }
)
rule = keyed(
    {
        "id": S,
        "kind": S,
        "component": st.sampled_from(COMPONENTS),
        "components": versions_of(S),
        "from": S,
        "to": S,
        "via_line": S,
        "floor": S,
        "requires": keyed({"component": S, "version": S}),
        "versions": S,
        "severity": S,
        "gate": st.booleans(),
        "reason": S,
        "hint": S,
    }
)
matrix_doc = keyed(
    {
        "rules": st.lists(rule, max_size=3),
        "support": st.dictionaries(
            st.sampled_from(COMPONENTS),
            st.lists(keyed({"line": S, "start": S, "end": S, "lts": st.booleans()}), max_size=2),
            max_size=2,
        ),
    }
)

MUTATIONS = ["none", "none", "none", "truncate", "insert", "utf16", "latin1", "bomb", "deep", "tabs"]


def render(doc: Any, mutation: str, pos: int, char: str) -> bytes:
    """The document as YAML, then (sometimes) damaged the way files get damaged or crafted."""
    text = yaml.safe_dump(doc, allow_unicode=True, sort_keys=False)
    pos = pos % (len(text) + 1)
    if mutation == "truncate":
        text = text[:pos]
    elif mutation == "insert":
        text = text[:pos] + char + text[pos:]
    elif mutation == "bomb":
        text = (
            "a: &a [x, x, x, x, x, x, x, x]\n"
            + "".join(
                f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
                for p, c in zip("abcdefg", "bcdefgh", strict=True)
            )
            + text
        )
    elif mutation == "deep":
        text += "deep: " + "[" * 200 + "]" * 200 + "\n"
    elif mutation == "tabs":
        text = text.replace("  ", "\t")
    if mutation == "utf16":
        return text.encode("utf-16")
    if mutation == "latin1":
        return text.encode("utf-8") + b"\nx: \xe9\xff\n"
    return text.encode("utf-8", errors="surrogatepass")


REPO = Path(__file__).resolve().parents[2]


def _outside_state() -> tuple[str, list[str]]:
    """What a stray write would change: the repository's working tree and the default release cache."""
    status = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=all"], cwd=REPO, capture_output=True, text=True, check=False
    ).stdout
    cache = Path.home() / ".cache" / "obsplan"
    return status, sorted(str(p) for p in cache.rglob("*")) if cache.is_dir() else []


@pytest.fixture(scope="module", autouse=True)
def nothing_written_outside() -> Iterator[None]:
    before = _outside_state()
    yield
    assert _outside_state() == before, "the fuzzed compiles wrote outside their temp directories"


def compile_once(filename: str, data: bytes, record: Record, case: str) -> None:
    with tempfile.TemporaryDirectory(prefix="obsplan-fuzz-") as tmp:
        base = Path(tmp)
        cfg = base / "config"
        cfg.mkdir()
        (cfg / "adir").mkdir()
        if filename != "versions.yaml":
            (cfg / "versions.yaml").write_text(MINIMAL_VERSIONS)
        (cfg / filename).write_bytes(data)
        before = tree(base)
        out = base / "out" / "fuzz.lock"
        with no_hang(120):
            result = run(["plan", "--config-dir", str(cfg), "--offline", "-o", str(out)], base)
        code = result.exit_code
        ok = code in (0, 1, 2) and result.exception is None or isinstance(result.exception, SystemExit)
        record(case, code, ok and code != 3)
        assert code in (0, 1, 2), (code, result.output, result.stderr, data[:2000])
        if code == 2:
            lines = result.stderr.strip().splitlines()
            assert len(lines) == 1 and lines[0].startswith("error: "), lines
        after = {k: v for k, v in tree(base).items() if not k.startswith("cache")}
        created = set(after) - set(before)
        assert all(after[k] == v for k, v in before.items()), "a configuration file changed"
        allowed = {"out", "out/fuzz.lock", "out/fuzz.md"} if code == 0 else set()
        assert created <= allowed, created


@SETTINGS
@given(doc=any_versions_doc, mutation=st.sampled_from(MUTATIONS), pos=st.integers(0, 10**6), char=st.characters())
def test_fuzz_versions_yaml(outcomes: Record, doc: Any, mutation: str, pos: int, char: str) -> None:
    compile_once("versions.yaml", render(doc, mutation, pos, char), outcomes, "fuzz versions.yaml (documents)")


@SETTINGS
@given(doc=policy_doc, mutation=st.sampled_from(MUTATIONS), pos=st.integers(0, 10**6), char=st.characters())
def test_fuzz_upgrade_policy_yaml(outcomes: Record, doc: Any, mutation: str, pos: int, char: str) -> None:
    compile_once(
        "upgrade-policy.yaml", render(doc, mutation, pos, char), outcomes, "fuzz upgrade-policy.yaml (documents)"
    )


@SETTINGS
@given(doc=matrix_doc, mutation=st.sampled_from(MUTATIONS), pos=st.integers(0, 10**6), char=st.characters())
def test_fuzz_matrix_yaml(outcomes: Record, doc: Any, mutation: str, pos: int, char: str) -> None:
    compile_once("matrix.yaml", render(doc, mutation, pos, char), outcomes, "fuzz matrix.yaml (documents)")
