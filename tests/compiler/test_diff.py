"""`obsplan diff OLD NEW`: lock files or REV:PATH through git; what a reviewer needs, data-source noise hidden."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner
from obsplan.compiler.render.fit_limit import COMMENT_LIMIT

from obsplan.cli.main import main
from obsplan.lock.lockfile import AdvisoryEntry, Lock, load_lock

ROOT = Path(__file__).resolve().parents[2]


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


def with_sha(lock: Lock, component: str, sha: str) -> Lock:
    c = lock.components[component]
    arts = {p: a.model_copy(update={"sha256": sha}) for p, a in c.artifacts.items()}
    return lock.model_copy(
        update={"components": {**lock.components, component: c.model_copy(update={"artifacts": arts})}}
    )


def changed_lock(old: Lock) -> Lock:
    """The PR's lock: mysqld_exporter held back, a re-published prometheus checksum, an approval, a new advisory,
    and node_exporter's data now from the cache (a data-source-only difference)."""
    comps = dict(with_sha(old, "prometheus", "b" * 64).components)
    comps["mysqld_exporter"] = comps["mysqld_exporter"].model_copy(update={"version": "0.15.1"})
    node = comps["node_exporter"]
    comps["node_exporter"] = node.model_copy(update={"source": node.source.model_copy(update={"kind": "cache"})})
    adv = AdvisoryEntry(
        id="GO-TEST-1",
        aliases=[],
        summary="x",
        severity=None,
        affects_current=True,
        affects_target=True,
        fixed_in=None,
        affected_hops=[],
        source=["GO-TEST-1.json"],
    )
    comps["loki"] = comps["loki"].model_copy(update={"advisories": [*comps["loki"].advisories, adv]})
    steps = []
    for s in old.plan.steps:
        if s.component == "mysqld_exporter":
            continue
        update: dict[str, object] = {"requires": [r for r in s.requires if not r.startswith("mysqld_exporter@")]}
        if s.component == "node_exporter":
            update["approval"] = "listed in the policy's approvals"
        steps.append(s.model_copy(update=update))
    plan = old.plan.model_copy(update={"steps": steps})
    return old.model_copy(update={"components": comps, "plan": plan}).sealed()


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A git repository whose main branch has plans/prod.lock; the working tree has the PR's version of it."""
    work = tmp_path / "repo"
    (work / "plans").mkdir(parents=True)
    git(work, "init", "-q", "-b", "main")
    git(work, "config", "user.email", "t@example.com")
    git(work, "config", "user.name", "t")
    old = with_sha(load_lock(ROOT / "plans" / "staging.lock"), "prometheus", "a" * 64).sealed()
    (work / "plans" / "prod.lock").write_text(old.to_json())
    git(work, "add", "-A")
    git(work, "commit", "-q", "-m", "lock on main")
    (work / "plans" / "prod.lock").write_text(changed_lock(old).to_json())
    monkeypatch.chdir(work / "plans")  # REV:PATH is from the repository root, wherever we are
    return work


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_rev_path_against_the_working_tree(repo: Path) -> None:
    code, out, err = run("diff", "main:plans/prod.lock", "prod.lock", "--format", "json")
    assert code == 0, err
    doc = json.loads(out)
    rows = {r["component"]: r for r in doc["components"]}
    assert rows["mysqld_exporter"]["a"] == "0.20.0" and rows["mysqld_exporter"]["b"] == "0.15.1"
    assert [s["change"] for s in rows["mysqld_exporter"]["steps"]] == ["removed"]
    kinds = {c["kind"] for c in rows["prometheus"]["details"]}
    assert "checksum" in kinds and any("CHANGED" in c["detail"] for c in rows["prometheus"]["details"])
    (node_step,) = rows["node_exporter"]["steps"]
    assert (
        node_step["change"] == "changed"
        and "approval pending → listed in the policy's approvals" in node_step["details"]
    )
    assert "GO-TEST-1 new" in rows["loki"]["changes"]
    assert doc["summary"]["approval"] == 1 and doc["summary"]["checksum"] == 2
    # node_exporter differs only in where its release data came from (and its approval): no source noise.
    assert not any(c["kind"] == "source" for c in rows["node_exporter"]["details"])
    assert rows["fail2ban_exporter"]["same"]


def test_data_source_only_differences_need_all(tmp_path: Path) -> None:
    old = load_lock(ROOT / "plans" / "staging.lock")
    comps = dict(old.components)
    node = comps["node_exporter"]
    comps["node_exporter"] = node.model_copy(update={"source": node.source.model_copy(update={"kind": "cache"})})
    (tmp_path / "a.lock").write_text(old.to_json())
    (tmp_path / "b.lock").write_text(old.model_copy(update={"components": comps}).sealed().to_json())
    a, b = str(tmp_path / "a.lock"), str(tmp_path / "b.lock")
    code, out, _ = run("diff", a, b)
    assert code == 0 and "= node_exporter" in out and out.endswith("0 of 9 components differ\n")
    code, out, _ = run("diff", a, b, "--all")
    assert "≠ node_exporter" in out and "source snapshot → cache" in out
    code, out, _ = run("diff", a, b, "--format", "markdown")
    assert "**No reviewable change** in 9 component(s) (data-source differences hidden; `--all` shows them)" in out


def test_markdown_is_the_pr_comment(repo: Path) -> None:
    code, out, err = run("diff", "main:plans/prod.lock", "prod.lock", "--format", "markdown")
    assert code == 0, err
    assert out.startswith("### obsplan diff: `main:plans/prod.lock` → `prod.lock`\n")
    first = out.split("\n\n")[1]
    # 4, not 5: Alertmanager's step does not require the exporters' steps (the phase order is not a requirement),
    # so pinning mysqld_exporter back changes nothing of it
    assert first.startswith("**4 of 9 components change**") and "1 step(s) removed · 1 step(s) changed" in first
    assert "1 approval change(s)" in first and "2 checksum change(s)" in first and "1 advisory change(s)" in first
    assert "[!WARNING]" in out and "prometheus 3.14.0: linux-amd64 sha256 CHANGED for the same file" in out
    assert "| mysqld_exporter | 0.20.0 | 0.15.1 | version; warnings; removed `mysqld_exporter@0.20.0` |" in out
    assert "`alertmanager@0.34.0`" not in out
    assert "| `node_exporter@1.12.1` | changed |" in out and "approval pending → listed" in out
    assert "data-source differences hidden" in out
    assert len(out) < COMMENT_LIMIT


def test_bad_revision_is_a_clear_input_error(repo: Path) -> None:
    code, _, err = run("diff", "nosuch:plans/prod.lock", "prod.lock")
    assert code == 2 and err.startswith("error: nosuch:plans/prod.lock: cannot read plans/prod.lock at revision nosuch")
    code, _, err = run("diff", "main:plans/missing.lock", "prod.lock", "--json")
    assert code == 2 and json.loads(err)["file"] == "main:plans/missing.lock"


def test_a_lock_edited_on_the_branch_is_refused_through_git(repo: Path) -> None:
    path = repo / "plans" / "prod.lock"
    path.write_text(path.read_text().replace('"0.15.1"', '"0.15.2"', 1))
    git(repo, "commit", "-qam", "hand edit")
    code, _, err = run("diff", "HEAD:plans/prod.lock", "main:plans/prod.lock")
    assert code == 2 and "HEAD:plans/prod.lock: content_sha256: lock was edited" in err
