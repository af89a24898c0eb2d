"""Under --json every command reports an error as one JSON object on stderr (error, file, key, hint, exit_code)."""

from __future__ import annotations

import json
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from obsplan.cli.edge import guarded, json_option
from obsplan.cli.main import main
from tests.ghserver import FakeGitHub

KEYS = {"error", "file", "key", "hint", "exit_code"}

# command path → (arguments with {tmp} for a fresh directory, expected exit code, a word the error names)
CASES: dict[str, tuple[list[str], int, str]] = {
    "plan": (["--config-dir", "{tmp}/cfg"], 2, "versions.yaml"),
    "check-upgrades": (["--config-dir", "{tmp}/cfg"], 2, "versions.yaml"),
    "list-versions": (["nosuch", "--offline", "--config-dir", "{tmp}/cfg"], 2, "nosuch"),
    "diff": (["{tmp}/a.lock", "{tmp}/b.lock"], 2, "a.lock"),
    "report": (["{tmp}/a.lock"], 2, "a.lock"),
    "snapshot refresh": (["-o", "{tmp}/snap.json"], 2, "rate limit"),
    "apply": (["{tmp}/a.lock", "--root", "{tmp}/root"], 2, "a.lock"),
    "resume": (["--root", "{tmp}/root"], 2, "LOCK"),
    "approve": (["x@1", "--root", "{tmp}/root"], 2, "--lock"),
    "status": (["--root", "{tmp}/root", "--lock", "{tmp}/a.lock"], 2, "a.lock"),
    "history": (["--root", "{tmp}/root", "--limit", "many"], 2, "--limit"),
    "rollback": (["nosuch", "--root", "{tmp}/root"], 2, "nosuch"),
    "adopt": (["nosuch", "--root", "{tmp}/root"], 2, "nosuch"),
    "bundle": ([], 2, "--verify"),
    "sign": (["{tmp}/a.lock"], 2, "a.lock"),
    "facts": (["--root", "{tmp}/root", "--lock", "{tmp}/a.lock"], 2, "a.lock"),
    "doctor": (["--root", "{tmp}/root", "--service-manager", "bogus"], 2, "bogus"),
    "rollout": (["{tmp}/a.lock", "--inventory", "{tmp}/hosts.yaml"], 2, "a.lock"),
    "export ansible": (["{tmp}/a.lock", "-o", "{tmp}/out"], 2, "a.lock"),
}


def _leaf_commands(group: click.Group, prefix: str = "") -> list[str]:
    ctx = click.Context(group)
    out = []
    for name in group.list_commands(ctx):
        cmd = group.get_command(ctx, name)
        if isinstance(cmd, click.Group):
            out += _leaf_commands(cmd, f"{prefix}{name} ")
        else:
            out.append(prefix + name)
    return out


def test_every_command_takes_json_and_has_a_case() -> None:
    ctx = click.Context(main)
    for path in _leaf_commands(main):
        cmd: click.Command = main
        for part in path.split():
            cmd = cmd.get_command(ctx, part)  # type: ignore[attr-defined]
        assert "as_json" in {p.name for p in cmd.params}, f"{path} has no --json"
    assert sorted(CASES) == sorted(_leaf_commands(main))


def _one_json_error(stderr: str) -> dict[str, object]:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    obj = json.loads(lines[0])
    assert set(obj) >= KEYS, obj
    return obj


@pytest.mark.parametrize("command", sorted(CASES))
def test_json_error(command: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, gh: FakeGitHub) -> None:
    args, code, word = CASES[command]
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OBSPLAN_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("GITHUB_API_URL", gh.api_url)
    monkeypatch.setenv("GRAFANA_COM_API_URL", gh.grafana_com_url)
    gh.rate_limit(True)
    argv = [*command.split(), *(a.replace("{tmp}", str(tmp_path)) for a in args), "--json"]
    result = CliRunner().invoke(main, argv)
    assert result.exit_code == code, result.output
    obj = _one_json_error(result.stderr)
    assert obj["exit_code"] == code
    assert word in json.dumps(obj), obj
    assert result.stdout == ""
    assert not (tmp_path / "root").exists() and not (tmp_path / "snap.json").exists()


def test_without_json_errors_stay_one_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["diff", str(tmp_path / "a.lock"), str(tmp_path / "b.lock")])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ") and "a.lock: lock file not found (hint:" in result.stderr


def test_usage_error_under_json_names_the_option() -> None:
    result = CliRunner().invoke(main, ["plan", "--bogus", "--json"])
    assert result.exit_code == 2
    obj = _one_json_error(result.stderr)
    assert obj["key"] == "--bogus" and "No such option" in str(obj["error"])


def test_refused_plan_under_json(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OBSPLAN_CACHE_DIR", str(tmp_path / "cache"))
    (tmp_path / "versions.yaml").write_text(
        "components:\n  prometheus:\n    strategy: pinned\n    version: '2.40.0'\n"
        "environments:\n  prod:\n    current: {prometheus: '3.1.0'}\n"
    )
    result = CliRunner().invoke(main, ["plan", "--env", "prod", "--offline", "--json"])
    assert result.exit_code == 1, result.output
    obj = _one_json_error(result.stderr)
    assert obj["exit_code"] == 1 and "refused" in str(obj["error"]) and obj["refusals"]
    assert not (tmp_path / "plans").exists()


@click.command()
@json_option
@guarded
def _crashing(as_json: bool) -> None:
    raise ValueError("a bug")


def test_internal_error_under_json_points_at_the_traceback() -> None:
    result = CliRunner().invoke(_crashing, ["--json"])
    assert result.exit_code == 3
    obj = _one_json_error(result.stderr)
    saved = Path(str(obj["file"]))
    try:
        assert "ValueError: a bug" in saved.read_text() and "internal error" in str(obj["error"])
    finally:
        saved.unlink()
