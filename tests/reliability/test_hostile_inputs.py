"""Input files that are not what they claim (issue 18): YAML tags with impossible values (`!!bool maybe`,
`!!int ""`, `!!timestamp garbage`, any text under any scalar tag) and FIFOs or devices given as any input file
(versions.yaml, upgrade-policy.yaml, matrix.yaml, an advisory, a `--facts` file): exit 2 with one line naming
the file, never an internal error, never a wait."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import obsplan.safeio.yamlload as yamlload
from obsplan.kernel.errors import ObsplanError
from tests.reliability.conftest import FUZZ_EXAMPLES, Record, no_hang
from tests.reliability.corpus import MINIMAL_VERSIONS, one_error_line, run

TAGGED = [
    "!!bool maybe",
    '!!int ""',
    "!!timestamp garbage",
    "!!float abc",
    "!!null 5",
    "!!int 0x",
    "!!timestamp 2026-13-45",
    "!!bool ''",
    '!!float ""',
    "!!timestamp ''",
]


@pytest.mark.parametrize("value", TAGGED)
def test_impossible_tagged_value_is_exit_2(tmp_path: Path, value: str, outcomes: Record) -> None:
    cfg = tmp_path / "cfg"
    cfg.mkdir()
    (cfg / "versions.yaml").write_text(f"components:\n  node_exporter:\n    runtime: {{data_dir: {value}}}\n")
    with no_hang(60):
        result = run(["plan", "--config-dir", str(cfg), "--offline", "-o", str(tmp_path / "o.lock")], tmp_path)
    outcomes("yaml tags::plan", result.exit_code, result.exit_code == 2)
    assert result.exit_code == 2, result.output
    assert "versions.yaml" in one_error_line(result)


@settings(max_examples=FUZZ_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    tag=st.sampled_from(["bool", "int", "float", "timestamp", "null", "str", "binary", "merge", "value"]),
    text=st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=20),
)
def test_any_text_under_any_scalar_tag_is_a_value_or_exit_2(tag: str, text: str, outcomes: Record) -> None:
    quoted = "'" + text.replace("'", "''") + "'"
    try:
        yamlload.load(f"k: !!{tag} {quoted}\n", "fuzz.yaml")
        code = 0
    except ObsplanError as exc:
        code = exc.exit_code
    except Exception:  # noqa: BLE001 - counted as the internal error it would be
        code = 3
    outcomes("yaml tags::fuzzed", code, code in (0, 2))
    assert code in (0, 2)


def test_sound_tagged_values_still_load() -> None:
    got = yamlload.load("a: !!bool yes\nb: !!int 0x1F\nc: !!float .inf\nd: !!null ~\ne: !!timestamp 2026-01-02\n", "x")
    assert got["a"] is True and got["b"] == 31 and got["c"] == float("inf") and got["d"] is None
    assert str(got["e"]) == "2026-01-02"


def _fifo(p: Path) -> None:
    os.mkfifo(p)


def _device(p: Path) -> None:
    os.symlink("/dev/zero", p)


SPECIAL: dict[str, Callable[[Path], None]] = {"fifo": _fifo, "dev-zero": _device}
INPUTS = ["versions.yaml", "upgrade-policy.yaml", "matrix.yaml", "advisory", "facts", "facts-in-folder"]


@pytest.mark.parametrize("kind", list(SPECIAL))
@pytest.mark.parametrize("which", INPUTS)
def test_special_file_as_input_is_exit_2_never_a_wait(tmp_path: Path, which: str, kind: str, outcomes: Record) -> None:
    cfg = tmp_path / "cfg"
    cfg.mkdir()
    args = ["plan", "--config-dir", str(cfg), "--offline", "-o", str(tmp_path / "o.lock")]
    if which != "versions.yaml":
        (cfg / "versions.yaml").write_text(MINIMAL_VERSIONS)
    target = {
        "versions.yaml": cfg / "versions.yaml",
        "upgrade-policy.yaml": cfg / "upgrade-policy.yaml",
        "matrix.yaml": cfg / "matrix.yaml",
        "advisory": tmp_path / "adv" / "a.json",
        "facts": tmp_path / "host.json",
        "facts-in-folder": tmp_path / "facts" / "host.json",
    }[which]
    target.parent.mkdir(exist_ok=True)
    SPECIAL[kind](target)
    if which == "advisory":
        args += ["--advisories", str(target.parent)]
    elif which.startswith("facts"):
        args += ["--facts", str(target if which == "facts" else target.parent)]
    with no_hang(60):
        result = run(args, tmp_path)
    outcomes(f"special input::{which}", result.exit_code, result.exit_code == 2)
    assert result.exit_code == 2, result.output
    assert "not a regular file" in one_error_line(result)


LOCK = Path(__file__).resolve().parents[2] / "plans" / "production.lock"


def _directory_options() -> list[tuple[list[str], str]]:
    """Every (command, option) of the `obsplan` group whose value is a directory, with the arguments it needs."""
    import click

    from obsplan.cli.main import main
    from obsplan.cli.shared_options import DIRECTORY

    needs = {"lock": str(LOCK), "component": "node_exporter", "step_id": "node_exporter@1.9.0"}
    ctx = click.Context(main)
    found: list[tuple[list[str], str]] = []
    groups: list[tuple[list[str], click.Group]] = [([], main)]
    while groups:
        prefix, group = groups.pop()
        for name in group.list_commands(ctx):
            cmd = group.get_command(ctx, name)
            if isinstance(cmd, click.Group):
                groups.append(([*prefix, name], cmd))
                continue
            options = [p.opts[-1] for p in cmd.params if p.type is DIRECTORY]
            args = [needs[p.name] for p in cmd.params if options and isinstance(p, click.Argument) and p.required]
            found += [([*prefix, name, *args], option) for option in options]
    return sorted(found)


@pytest.mark.parametrize("kind", list(SPECIAL))
@pytest.mark.parametrize(
    ("command", "option"), _directory_options(), ids=lambda x: "-".join(x) if isinstance(x, list) else x
)
def test_special_file_as_a_directory_is_exit_2(
    tmp_path: Path, command: list[str], option: str, kind: str, outcomes: Record
) -> None:
    """`apply --root /dev/null` was an internal error (NotADirectoryError): a device, a FIFO or a link to one
    given where a directory belongs is a usage error naming the option, for every command."""
    target = tmp_path / "not-a-dir"
    SPECIAL[kind](target)
    with no_hang(60):
        result = run([*command, option, str(target)], tmp_path)
    outcomes(f"special directory::{command[0]} {option}", result.exit_code, result.exit_code == 2)
    assert result.exit_code == 2, result.output
    assert "Invalid value for " in result.output and f"'{option}'" in result.output, result.output
    assert "exists and is not a directory" in result.output, result.output
