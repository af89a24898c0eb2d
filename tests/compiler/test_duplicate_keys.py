"""Issue 19 item 5: a key written twice in any YAML obsplan reads is refused (exit 2, file, line, key), never
silently replaced by the last one; seed 000's two `global:` snippets pasted one after the other are the
classic case."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from obsplan.cli.main import main

REPO = Path(__file__).resolve().parents[2]

SEED_000_PASTED = """\
global:
  default_strategy: latest

components:
  node_exporter:
    strategy: latest
    github_repo: prometheus/node_exporter
    fallback_version: "1.7.0"

global:
  safety:
    compatibility_check: true
    security_advisory_check: true
"""


def _plan(config: Path, *extra: str) -> tuple[int, str]:
    out = config / "out.lock"
    res = CliRunner().invoke(
        main, ["plan", "--config-dir", str(config), "--env", "default", "--offline", "-o", str(out), *extra]
    )
    assert not out.exists(), "a refused configuration writes no lock"
    return res.exit_code, res.output


def test_seed_000_global_snippets_pasted_twice_are_refused_with_the_merge_hint(tmp_path: Path) -> None:
    (tmp_path / "versions.yaml").write_text(SEED_000_PASTED)
    code, out = _plan(tmp_path)
    assert code == 2, out
    assert "versions.yaml" in out and "line 10" in out and "duplicate key 'global'" in out
    assert "already set at line 1" in out
    assert "merge the two `global:` blocks" in out
    # once merged into one block, the same configuration plans
    (tmp_path / "versions.yaml").write_text(
        "global:\n  default_strategy: latest\n  safety:\n    compatibility_check: true\n"
        "components:\n  node_exporter:\n    strategy: latest\n"
    )
    res = CliRunner().invoke(
        main, ["plan", "--config-dir", str(tmp_path), "--env", "default", "--offline", "-o", str(tmp_path / "ok.lock")]
    )
    assert res.exit_code == 0, res.output


def test_a_second_components_block_no_longer_drops_the_first(tmp_path: Path) -> None:
    (tmp_path / "versions.yaml").write_text(
        "components:\n  node_exporter: {strategy: latest}\ncomponents:\n  prometheus: {strategy: latest}\n"
    )
    code, out = _plan(tmp_path)
    assert code == 2 and "line 3" in out and "components" in out and "merge the two `components:` blocks" in out


@pytest.mark.parametrize(
    ("filename", "text", "key", "line"),
    [
        (
            "upgrade-policy.yaml",
            "minimum_release_age_days: 3\nallow: []\nminimum_release_age_days: 0\n",
            "minimum_release_age_days",
            3,
        ),
        ("matrix.yaml", "rules: []\nrules: []\n", "rules", 2),
        ("modules/node_exporter/module.yaml", "version: 1.6.0\nversion: 1.7.0\n", "version", 2),
        (
            "versions.yaml",
            "components:\n  node_exporter:\n    strategy: latest\n    strategy: pinned\n",
            "components.node_exporter.strategy",
            4,
        ),
    ],
)
def test_every_configuration_file_refuses_a_key_written_twice(
    tmp_path: Path, filename: str, text: str, key: str, line: int
) -> None:
    (tmp_path / "versions.yaml").write_text("components:\n  node_exporter: {strategy: latest}\n")
    target = tmp_path / filename
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)
    code, out = _plan(tmp_path)
    assert code == 2, out
    assert filename.rsplit("/", 1)[-1] in out and f"{key}: line {line}: duplicate key" in out
    assert "keep one" in out  # a scalar written twice: keep one of them


def test_merge_keys_still_override_what_they_merge(tmp_path: Path) -> None:
    (tmp_path / "versions.yaml").write_text(
        "components:\n  node_exporter: &base {strategy: latest, fallback_version: '1.7.0'}\n"
        "  nginx_exporter:\n    <<: *base\n    strategy: pinned\n    version: 1.4.1\n"
    )
    res = CliRunner().invoke(
        main, ["plan", "--config-dir", str(tmp_path), "--env", "default", "--offline", "-o", str(tmp_path / "a.lock")]
    )
    assert res.exit_code == 0, res.output
    assert "nginx_exporter: (none) → 1.4.1" in res.output


def test_a_rollout_inventory_naming_a_host_twice_is_refused(tmp_path: Path) -> None:
    inv = tmp_path / "hosts.yaml"
    inv.write_text("hosts:\n  web1: {address: 10.0.0.1}\n  web1: {address: 10.0.0.2}\n")
    res = CliRunner().invoke(
        main, ["rollout", str(REPO / "plans" / "staging.lock"), "--inventory", str(inv), "--dry-run"]
    )
    assert res.exit_code == 2, res.output
    assert "hosts.yaml" in res.output and "hosts.web1: line 3: duplicate key 'web1'" in res.output
