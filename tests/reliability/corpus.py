"""Helpers that build the hostile corpus in a temp directory: configurations, forged re-sealed locks, and a
snapshot of a directory tree to prove what stayed unchanged."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result

from obsplan.cli.main import main
from obsplan.lock.lockfile import content_digest

NOW = "2026-11-22T12:00:00+00:00"
MINIMAL_VERSIONS = "components:\n  node_exporter: {}\n"


def run(args: list[str], cwd: Path) -> Result:
    """The CLI in-process, offline, with cache and working directory inside `cwd`."""
    env = {
        "OBSPLAN_CACHE_DIR": str(cwd / "cache"),
        "OBSPLAN_NOW": NOW,
        "GITHUB_API_URL": "http://127.0.0.1:9",
        "GRAFANA_COM_API_URL": "http://127.0.0.1:9",
    }
    old = Path.cwd()
    os.chdir(cwd)
    try:
        return CliRunner().invoke(main, args, env=env, catch_exceptions=True)
    finally:
        os.chdir(old)


def tree(path: Path) -> dict[str, str]:
    """Every entry under `path` → sha256 of a file / link target / 'dir' (missing path: empty)."""
    out: dict[str, str] = {}
    if not path.exists() and not path.is_symlink():
        return out
    for dirpath, dirnames, filenames in os.walk(path):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            rel = str(p.relative_to(path))
            if p.is_symlink():
                out[rel] = "link:" + os.readlink(p)
            elif p.is_dir():
                out[rel] = "dir"
            else:
                out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def one_error_line(result: Result) -> str:
    """The single `error: ...` line a refusal prints (asserted to be exactly one line)."""
    lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert lines[0].startswith("error: "), lines[0]
    return lines[0]


def good_lock(workdir: Path) -> dict[str, Any]:
    """A real lock compiled offline from a two-component configuration, as a JSON object."""
    cfg = workdir / "good-config"
    cfg.mkdir(parents=True, exist_ok=True)
    (cfg / "versions.yaml").write_text(
        "components:\n  node_exporter:\n    runtime: {data_dir: /var/lib/node_exporter}\n  alertmanager: {}\n"
        "environments:\n  default:\n    current: {node_exporter: '1.6.0', alertmanager: '0.27.0'}\n"
    )
    result = run(["plan", "--config-dir", str(cfg), "--offline", "-o", str(workdir / "good.lock")], workdir)
    assert result.exit_code == 0, result.output
    return json.loads((workdir / "good.lock").read_text())


def reseal(data: dict[str, Any]) -> bytes:
    """A forged lock: the content hash recomputed over the edited content, as anyone can."""
    body = {k: v for k, v in data.items() if k != "content_sha256"}
    return (json.dumps({**body, "content_sha256": content_digest(body)}, indent=2, sort_keys=True) + "\n").encode()
