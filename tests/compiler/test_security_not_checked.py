"""Issue 19 item 8, as the user meets it: the report's decision summary never says "Security fixes: none" when
advisories were not checked; it says **not checked** and why, and with the shipped records it names the fixes."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from obsplan.cli.main import main

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _security_line(config: Path, out: Path) -> str:
    res = CliRunner().invoke(
        main, ["plan", "--config-dir", str(config), "--env", "staging", "--offline", "-o", str(out / "s.lock")]
    )
    assert res.exit_code == 0, res.output
    [line] = [x for x in (out / "s.md").read_text().splitlines() if x.startswith("- **Security fixes:**")]
    return line


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (None, "fixes GO-2026-5264"),
        (("security_advisory_check: true ", "security_advisory_check: false"), "**not checked** (safety."),
        (("advisories: [advisories]", "advisories: []"), "**not checked** (no advisory data"),
    ],
    ids=["checked", "scanning-off", "no-records"],
)
def test_the_report_says_not_checked_and_why(tmp_path: Path, edit: tuple[str, str] | None, expected: str) -> None:
    config = tmp_path / "examples"
    shutil.copytree(EXAMPLES, config)
    policy = config / "upgrade-policy.yaml"
    if edit is not None:
        text = policy.read_text()
        assert edit[0] in text
        policy.write_text(text.replace(edit[0], edit[1]))
    line = _security_line(config, tmp_path)
    assert expected in line, line
    if edit is not None:
        assert "none" not in line.split("**not checked**")[0]
