"""Issue 19 item 10, the configuration side: a component entry naming an old phase (`phase: core`) lands in the
phase that name is now an alias of, and a policy naming an alias twice is refused (exit 2, file and key)."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from obsplan.cli.main import main


def _plan(cfg: Path) -> tuple[int, str, Path]:
    lock = cfg / "out.lock"
    res = CliRunner().invoke(main, ["plan", "--config-dir", str(cfg), "--env", "default", "--offline", "-o", str(lock)])
    return res.exit_code, res.output, lock


def test_an_old_phase_name_in_a_component_entry_is_its_alias(tmp_path: Path) -> None:
    (tmp_path / "versions.yaml").write_text("components:\n  node_exporter: {strategy: latest, phase: core}\n")
    code, out, lock = _plan(tmp_path)
    assert code == 0, out
    data = json.loads(lock.read_text())
    assert [s["phase"] for s in data["plan"]["steps"]] == ["prometheus"]
    assert data["plan"]["phases"] == ["exporters", "prometheus", "loki", "dashboards"]


def test_an_alias_given_twice_is_refused(tmp_path: Path) -> None:
    (tmp_path / "versions.yaml").write_text("components:\n  node_exporter: {strategy: latest}\n")
    (tmp_path / "upgrade-policy.yaml").write_text(
        "phases:\n  - {name: first, components: [node_exporter], aliases: [early]}\n"
        "  - {name: second, components: [prometheus], aliases: [early]}\n"
    )
    code, out, lock = _plan(tmp_path)
    assert code == 2 and "upgrade-policy.yaml: phases.0.aliases" in out and "'early'" in out
    assert not lock.exists()
