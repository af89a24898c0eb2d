"""The CI integration users copy: .pre-commit-hooks.yaml and examples/ci/obsplan.yml. Their commands run here,
as pre-commit and the Actions runner would run them, against a real git repository with a base branch and a
pull-request branch (the steps that need GitHub itself, installing from PyPI and posting the comment, are not)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.conftest import NOW, write_config
from tests.ghserver import FakeGitHub

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW = ROOT / "examples" / "ci" / "obsplan.yml"
HOOKS = ROOT / ".pre-commit-hooks.yaml"
CONTEXT = {"github.base_ref": "main"}


def sh(cwd: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run(args, cwd=cwd, env=env, check=check, capture_output=True, text=True)


def plan(work: Path, env: str) -> None:
    sh(work, "obsplan", "plan", "--config-dir", "config", "--env", env, "-o", f"plans/{env}.lock")


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Built once per module: origin with main holding both locks; a clone on branch `pr` that pins staging's
    mysqld_exporter. The local GitHub server and the environment stay up for the module's tests."""
    base = tmp_path_factory.mktemp("ci")
    with FakeGitHub() as gh, pytest.MonkeyPatch.context() as mp:
        mp.setenv("GITHUB_API_URL", gh.api_url)
        mp.setenv("GRAFANA_COM_API_URL", gh.grafana_com_url)
        mp.setenv("OBSPLAN_CACHE_DIR", str(base / "cache"))
        mp.setenv("OBSPLAN_NOW", NOW)
        mp.delenv("GITHUB_TOKEN", raising=False)
        origin, work = base / "origin.git", base / "work"
        sh(base, "git", "init", "-q", "--bare", "-b", "main", str(origin))
        sh(base, "git", "init", "-q", "-b", "main", str(work))
        for key, value in (("user.email", "ci@example.com"), ("user.name", "ci")):
            sh(work, "git", "config", key, value)
        versions = write_config(work / "config", "seed", gh) / "versions.yaml"
        data = yaml.safe_load(versions.read_text())
        data["environments"]["production"]["offline_mode"] = False  # CI checks locks planned online (with sha256)
        versions.write_text(yaml.safe_dump(data, sort_keys=False))
        plan(work, "staging")
        plan(work, "production")
        sh(work, "git", "add", "-A")
        sh(work, "git", "commit", "-q", "-m", "locks")
        sh(work, "git", "push", "-q", str(origin), "main")
        sh(work, "git", "checkout", "-q", "-b", "pr")
        data["environments"]["staging"]["component_overrides"] = {"mysqld_exporter": {"version": "0.17.2"}}
        versions.write_text(yaml.safe_dump(data, sort_keys=False))
        plan(work, "staging")
        plan(work, "production")  # versions.yaml is an input of every environment's lock
        sh(work, "git", "commit", "-q", "-am", "hold mysqld_exporter at 0.17.2 in staging")
        yield base


@pytest.fixture
def repo(built: Path, tmp_path: Path) -> Path:
    """A fresh copy of the built repository (and its origin) for one test."""
    shutil.copytree(built / "origin.git", tmp_path / "origin.git")
    work = shutil.copytree(built / "work", tmp_path / "work")
    sh(work, "git", "remote", "add", "origin", str(tmp_path / "origin.git"))
    return work


def _expand(value: str) -> str:
    def sub(m: re.Match[str]) -> str:
        assert m.group(1) in CONTEXT, f"the test has no value for ${{{{ {m.group(1)} }}}}"
        return CONTEXT[m.group(1)]

    return re.sub(r"\$\{\{\s*([\w.]+)\s*\}\}", sub, str(value))


def run_workflow(work: Path, summary: Path) -> dict[str, subprocess.CompletedProcess[str]]:
    """Run every `run:` step that needs neither GitHub (GH_TOKEN) nor PyPI, in order, as the runner would."""
    doc = yaml.safe_load(WORKFLOW.read_text())
    (job,) = doc["jobs"].values()
    results = {}
    for step in job["steps"]:
        if "run" not in step or "GH_TOKEN" in step.get("env", {}) or "pip install" in step["run"]:
            continue
        env = {k: _expand(v) for k, v in {**doc.get("env", {}), **step.get("env", {})}.items()}
        env = {**os.environ, **env, "GITHUB_STEP_SUMMARY": str(summary)}
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
        results[step["name"]] = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
        )
    return results


def test_workflow_checks_and_renders_the_pr_diff(repo: Path, tmp_path: Path) -> None:
    summary = tmp_path / "step-summary.md"
    results = run_workflow(repo, summary)
    assert list(results) == ["Check every lock matches its inputs", "Render the plan diff against the base branch"]
    for name, done in results.items():
        assert done.returncode == 0, (name, done.stdout, done.stderr)
    comment = (repo / "obsplan-comment.md").read_text()
    assert comment.startswith("<!-- obsplan-plan-diff -->\n### obsplan diff: `origin/main:plans/staging.lock`")
    # the previous target is assumed applied (issue: plans follow the host), so the PR starts from 0.20.0
    assert (
        "| mysqld_exporter | 0.20.0 | 0.17.2 | version; installed 0.15.1 → 0.20.0; strategy latest → pinned;" in comment
    )
    assert "removed `mysqld_exporter@0.20.0`; added `mysqld_exporter@0.17.2`" in comment
    assert "### obsplan diff: `origin/main:plans/production.lock` → `plans/production.lock`" in comment
    assert "**No reviewable change** in 9 component(s)" in comment
    assert len(comment) < 65_536 and summary.read_text() == comment


def test_workflow_check_fails_on_a_hand_edited_lock(repo: Path, tmp_path: Path) -> None:
    lock = repo / "plans" / "production.lock"
    lock.write_text(lock.read_text().replace('"0.15.1"', '"0.15.2"', 1))
    results = run_workflow(repo, tmp_path / "summary.md")
    check = results["Check every lock matches its inputs"]
    assert check.returncode == 1 and "content_sha256 does not match" in check.stdout
    assert results["Render the plan diff against the base branch"].returncode != 0  # the edited lock is refused


def hook_argv(hook_id: str, args: list[str], files: list[str]) -> list[str]:
    (hook,) = [h for h in yaml.safe_load(HOOKS.read_text()) if h["id"] == hook_id]
    assert hook["language"] == "python"
    matching = [f for f in files if re.search(hook["files"], f)]
    return [*hook["entry"].split(), *args, *(matching if hook.get("pass_filenames", True) else [])]


def test_pre_commit_hooks(repo: Path) -> None:
    ids = [h["id"] for h in yaml.safe_load(HOOKS.read_text())]
    assert ids == ["obsplan-check", "obsplan-plan", "obsplan-report"]
    files = ["config/versions.yaml", "plans/staging.lock", "plans/production.lock", "README.md"]
    args = ["--config-dir", "config", "--env", "staging", "-o", "plans/staging.lock"]
    assert sh(repo, *hook_argv("obsplan-check", args, files), check=False).returncode == 0
    sh(repo, *hook_argv("obsplan-plan", args, files))
    (repo / "plans" / "production.md").write_text("stale\n")
    sh(repo, *hook_argv("obsplan-report", [], files))
    assert sh(repo, "git", "status", "--porcelain").stdout == ""  # regenerated = committed, byte for byte
    (repo / "config" / "versions.yaml").write_text(
        (repo / "config" / "versions.yaml").read_text().replace("0.17.2", "0.18.0")
    )
    failed = sh(repo, *hook_argv("obsplan-check", args, files), check=False)
    assert failed.returncode == 1 and "input versions.yaml changed" in failed.stdout
