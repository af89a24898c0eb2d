"""Day two: re-planning follows the host (previous lock, host facts, a fleet of facts) with no hand-written
`current:`."""

from __future__ import annotations

import json
from pathlib import Path

from obsplan.lock.hostfacts import from_state_hint
from tests.compiler.test_scenarios import run
from tests.ghserver import FakeGitHub


def _pin(cfg: Path, version: str) -> None:
    cfg.mkdir(exist_ok=True)
    (cfg / "versions.yaml").write_text(
        f"components:\n  node_exporter: {{strategy: pinned, version: '{version}'}}\nenvironments:\n  lab: {{}}\n"
    )


def _steps(lock: Path) -> list[tuple[str, str | None, str]]:
    data = json.loads(lock.read_text())
    return [(s["id"], s["from_version"], s["to_version"]) for s in data["plan"]["steps"]]


def _facts(path: Path, **served: str | None) -> Path:
    comps = {
        name: {
            "installed": v,
            "linked": None,
            "served": v,
            "observed": {"installed": "/usr/local/bin/node_exporter --version", "linked": None, "served": "build_info"},
            "managed": False,
        }
        for name, v in served.items()
    }
    doc = {
        "format": 1,
        "obsplan_version": "0.1.0",
        "platform": "linux-amd64",
        "root": "/",
        "collected_at": "2026-11-22T12:00:00+00:00",
        "components": comps,
    }
    path.write_text(json.dumps(doc))
    return path


def test_replan_after_apply_starts_from_the_previous_target(gh: FakeGitHub, obsplan_env: Path, tmp_path: Path) -> None:
    cfg, lock = tmp_path / "cfg", tmp_path / "lab.lock"
    _pin(cfg, "1.5.0")
    code, _, err = run("plan", "--config-dir", str(cfg), "--env", "lab", "-o", str(lock))
    assert code == 0, err
    assert _steps(lock) == [("node_exporter@1.5.0", None, "1.5.0")]
    # the same inputs again: the same plan (an unchanged target keeps its from-state), and --check agrees
    code, _, err = run("plan", "--config-dir", str(cfg), "--env", "lab", "-o", str(lock))
    assert code == 0, err
    assert _steps(lock) == [("node_exporter@1.5.0", None, "1.5.0")]
    code, out, err = run("plan", "--config-dir", str(cfg), "--env", "lab", "-o", str(lock), "--check")
    assert code == 0, out + err
    # re-pin: the previous target (1.5.0) is assumed applied
    _pin(cfg, "1.9.0")
    code, _, err = run("plan", "--config-dir", str(cfg), "--env", "lab", "-o", str(lock))
    assert code == 0, err
    assert _steps(lock) == [("node_exporter@1.9.0", "1.5.0", "1.9.0")]
    assert json.loads(lock.read_text())["components"]["node_exporter"]["current"] == "1.5.0"
    code, out, err = run("plan", "--config-dir", str(cfg), "--env", "lab", "-o", str(lock), "--check")
    assert code == 0, out + err


def test_plan_from_host_facts_records_the_file(gh: FakeGitHub, obsplan_env: Path, tmp_path: Path) -> None:
    cfg, lock = tmp_path / "cfg", tmp_path / "lab.lock"
    _pin(cfg, "1.9.0")
    facts = _facts(tmp_path / "host.json", node_exporter="1.7.0")
    code, _, err = run("plan", "--config-dir", str(cfg), "--env", "lab", "-o", str(lock), "--facts", str(facts))
    assert code == 0, err
    assert _steps(lock) == [("node_exporter@1.9.0", "1.7.0", "1.9.0")]
    inputs = json.loads(lock.read_text())["inputs"]
    assert len(inputs["facts:host.json"]) == 64
    # facts beat the previous lock's inference (which would say 1.5.0 → ... ), and beat a stale current:
    code, out, err = run("plan", "--config-dir", str(cfg), "--env", "lab", "-o", str(lock), "--check")
    assert code == 0, out + err
    # nothing installed on the host: a fresh install, whatever the previous lock assumed
    _facts(facts, node_exporter=None)
    code, _, err = run("plan", "--config-dir", str(cfg), "--env", "lab", "-o", str(lock), "--facts", str(facts))
    assert code == 0, err
    assert _steps(lock) == [("node_exporter@1.9.0", None, "1.9.0")]


def test_fleet_of_facts_plans_from_the_lowest_version(gh: FakeGitHub, obsplan_env: Path, tmp_path: Path) -> None:
    cfg, lock, fleet = tmp_path / "cfg", tmp_path / "lab.lock", tmp_path / "fleet"
    fleet.mkdir()
    _pin(cfg, "1.9.0")
    _facts(fleet / "web1.json", node_exporter="1.8.2")
    _facts(fleet / "web2.json", node_exporter="1.6.1")
    _facts(fleet / "db1.json", node_exporter=None)
    code, _, err = run("plan", "--config-dir", str(cfg), "--env", "lab", "-o", str(lock), "--facts", str(fleet))
    assert code == 0, err
    assert _steps(lock) == [("node_exporter@1.9.0", "1.6.1", "1.9.0")]
    data = json.loads(lock.read_text())
    assert [k for k in sorted(data["inputs"]) if k.startswith("facts:")] == [
        "facts:db1.json",
        "facts:web1.json",
        "facts:web2.json",
    ]
    note = " ".join(data["components"]["node_exporter"]["warnings"])
    assert "lowest of 3 hosts' facts (web2.json)" in note and "some hosts have none" in note


def test_bad_facts_file_is_exit_2_naming_the_key(gh: FakeGitHub, obsplan_env: Path, tmp_path: Path) -> None:
    cfg = tmp_path / "cfg"
    _pin(cfg, "1.9.0")
    facts = _facts(tmp_path / "host.json", node_exporter="1.7.0")
    doc = json.loads(facts.read_text())
    doc["components"]["node_exporter"]["servd"] = "1.7.0"
    facts.write_text(json.dumps(doc))
    code, _, err = run("plan", "--config-dir", str(cfg), "--env", "lab", "--facts", str(facts))
    assert code == 2 and "components.node_exporter.servd" in err and "host.json" in err
    assert not (tmp_path / "plans").exists()
    doc["components"]["node_exporter"] = {"served": "1.7.0"}
    doc["platform"] = "linux-riscv64"
    facts.write_text(json.dumps(doc))
    code, _, err = run("plan", "--config-dir", str(cfg), "--env", "lab", "--facts", str(facts))
    assert code == 2 and "linux-riscv64 host" in err and "global.platforms" in err
    doc["platform"] = "linux-amd64"
    doc["components"]["node_exporter"] = {"served": "latest"}
    facts.write_text(json.dumps(doc))
    code, _, err = run("plan", "--config-dir", str(cfg), "--env", "lab", "--facts", str(facts))
    assert code == 2 and "components.node_exporter.served" in err


def test_the_off_path_hint_is_a_valid_current_line(gh: FakeGitHub, obsplan_env: Path, tmp_path: Path) -> None:
    """The executor's off_plan_path hint pastes into versions.yaml and plans, for a host with nothing too."""
    cfg = tmp_path / "cfg"
    cfg.mkdir()
    for host, first in (
        (None, ("node_exporter@1.9.0", None, "1.9.0")),
        ("1.8.2", ("node_exporter@1.9.0", "1.8.2", "1.9.0")),
    ):
        line = from_state_hint("node_exporter", host)
        (cfg / "versions.yaml").write_text(
            f"components:\n  node_exporter: {{strategy: pinned, version: '1.9.0'}}\nenvironments:\n  lab:\n    {line}\n"
        )
        code, _, err = run("plan", "--config-dir", str(cfg), "--env", "lab", "-o", str(tmp_path / "x.lock"))
        assert code == 0, line + err
        assert _steps(tmp_path / "x.lock") == [first]
        (tmp_path / "x.lock").unlink()


def test_a_standing_current_statement_does_not_undo_the_loop(gh: FakeGitHub, obsplan_env: Path, tmp_path: Path) -> None:
    """`current:` written once stays in versions.yaml; re-pinning twice still starts from each previous target,
    and `--check` agrees; editing `current:` is news and wins."""
    cfg, lock = tmp_path / "cfg", tmp_path / "lab.lock"
    cfg.mkdir()

    def pin(version: str, current: str = "1.5.0") -> None:
        (cfg / "versions.yaml").write_text(
            f"components:\n  node_exporter: {{strategy: pinned, version: '{version}'}}\n"
            f"environments:\n  lab:\n    current: {{node_exporter: '{current}'}}\n"
        )

    for version, from_version in (("1.6.1", "1.5.0"), ("1.8.2", "1.6.1"), ("1.9.0", "1.8.2")):
        pin(version)
        code, _, err = run("plan", "--config-dir", str(cfg), "--env", "lab", "-o", str(lock))
        assert code == 0, err
        assert _steps(lock) == [(f"node_exporter@{version}", from_version, version)]
        code, out, err = run("plan", "--config-dir", str(cfg), "--env", "lab", "-o", str(lock), "--check")
        assert code == 0, out + err
    assert json.loads(lock.read_text())["components"]["node_exporter"]["stated_current"] == "1.5.0"
    pin("1.9.0", current="1.7.0")  # the operator says what the host runs: that beats the lock's inference
    code, _, err = run("plan", "--config-dir", str(cfg), "--env", "lab", "-o", str(lock))
    assert code == 0, err
    assert _steps(lock) == [("node_exporter@1.9.0", "1.7.0", "1.9.0")]
