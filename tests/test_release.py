"""The release: one version (`obsplan.__version__`) read by the build, `--version` and every lock; the wheel
`python -m build` makes holds the whole tool and, installed on its own, runs the README's first command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import obsplan

ROOT = Path(__file__).resolve().parents[1]


def test_version_is_single_sourced_and_read_without_package_metadata() -> None:
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert 'dynamic = ["version"]' in pyproject and 'version = { attr = "obsplan.__version__" }' in pyproject
    code = (
        "import sys\nfrom obsplan.cli.main import main\ntry:\n    main(['--version'])\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in sys.modules if m.startswith(('importlib.metadata', 'importlib_metadata', "
        "'pkg_resources'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.splitlines() == [f"obsplan, version {obsplan.__version__}", "[]"]
    assert f"\n## {obsplan.__version__}\n" in (ROOT / "CHANGELOG.md").read_text()


@pytest.mark.e2e
def test_release_wheel_installs_alone_and_runs_the_readme_command(tmp_path: Path) -> None:
    dist, site, work = tmp_path / "dist", tmp_path / "site", tmp_path / "work"
    build = [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(dist), str(ROOT)]
    subprocess.run(build, check=True, capture_output=True, cwd=tmp_path)
    wheel = dist / f"obsplan-{obsplan.__version__}-py3-none-any.whl"
    assert wheel.is_file() and (dist / f"obsplan-{obsplan.__version__}.tar.gz").is_file()
    names = set(zipfile.ZipFile(wheel).namelist())
    for needed in ("obsplan/lock/formats.py", "obsplan/compiler/run.py", "obsplan/executor/apply/engine.py"):
        assert needed in names
    assert any(n.startswith("obsplan/policies/") and n.endswith(".yaml") for n in names)
    assert any(n.startswith("obsplan/templates/") and n.endswith(".j2") for n in names)
    pip = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-compile", "--target", str(site), str(wheel)]
    subprocess.run(pip, check=True, capture_output=True)
    work.mkdir()
    subprocess.run(["cp", "-r", str(ROOT / "examples"), str(work / "examples")], check=True)
    env = {**os.environ, "PYTHONPATH": str(site), "OBSPLAN_CACHE_DIR": str(tmp_path / "cache")}
    where = subprocess.run(
        [sys.executable, "-c", "import obsplan; print(obsplan.__file__)"], env=env, cwd=work, capture_output=True
    )
    assert where.stdout.decode().startswith(str(site)), where  # the installed wheel, not this checkout
    readme = ["plan", "--config-dir", "examples", "--env", "staging", "--offline", "-o", "demo/staging.lock"]
    proc = subprocess.run([sys.executable, "-m", "obsplan", *readme], env=env, cwd=work, capture_output=True)
    assert proc.returncode == 0, proc.stderr.decode()
    lock = json.loads((work / "demo" / "staging.lock").read_text())
    assert (lock["obsplan_version"], lock["format_version"]) == (obsplan.__version__, 2)
