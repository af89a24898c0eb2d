"""The path policy's functions and the root containment of host paths, directly."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from obsplan.executor.host.layout import Layout

import obsplan.kernel.pathpolicy as pp
from obsplan.kernel.errors import ObsplanError

ACCEPT: list[tuple[Callable[[str], str], str]] = [
    (pp.check_name, "node_exporter"),
    (pp.check_version_text, "1.2.3-rc.1+build.5"),
    (pp.check_binary_name, "nginx-prometheus-exporter"),
    (pp.check_filename, "loki-linux-amd64.zip"),
    (pp.check_host_path, "/var/lib/prometheus"),
    (pp.check_glob, "*/bin/grafana"),
    (pp.check_url, "https://github.com/o/r/releases/download/v1/x.tar.gz"),
    (pp.check_url, "file:///srv/mirror/x.tar.gz"),
    (pp.check_relative_file, "matrices/extra.yaml"),
    (lambda v: pp.check_template(v, "artifact"), "{name}-{version}.{os}-{arch}{{literal}}.tar.gz"),
    (lambda v: pp.check_template(v, "checksums"), "{url}.sha256"),
]
REFUSE: list[tuple[Callable[[str], str], str]] = [
    (pp.check_name, "../x"),
    (pp.check_name, "A"),
    (pp.check_version_text, "../../x"),
    (pp.check_version_text, "/tmp/x"),
    (pp.check_version_text, ".hidden"),
    (pp.check_binary_name, "a/b"),
    (pp.check_filename, ".."),
    (pp.check_filename, "a/b"),
    (pp.check_filename, "a\\b"),
    (pp.check_filename, "x" * 300),
    (pp.check_host_path, "/a/../b"),
    (pp.check_host_path, "/a/"),
    (pp.check_host_path, "//a"),
    (pp.check_host_path, "relative"),
    (pp.check_glob, "../*"),
    (pp.check_url, "http://[::1"),
    (pp.check_url, "javascript:alert(1)"),
    (pp.check_url, "https:///nohost"),
    (pp.check_url, "http://x:99999/"),
    (pp.check_relative_file, "a//b"),
    (lambda v: pp.check_template(v, "artifact"), "{version:>99999999}"),
    (lambda v: pp.check_template(v, "artifact"), "{"),
    (lambda v: pp.check_template(v, "download_url"), "{arch}"),
]


@pytest.mark.parametrize(("check", "value"), ACCEPT, ids=[v for _c, v in ACCEPT])
def test_policy_accepts(check: Callable[[str], str], value: str) -> None:
    assert check(value) == value


@pytest.mark.parametrize(("check", "value"), REFUSE, ids=[v[:40] for _c, v in REFUSE])
def test_policy_refuses(check: Callable[[str], str], value: str) -> None:
    with pytest.raises(ValueError):
        check(value)


def test_host_paths_stay_inside_root(tmp_path: Path) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "var").mkdir(parents=True)
    outside.mkdir()
    layout = Layout(root)
    assert layout.host("/var/lib/x") == root / "var/lib/x"
    assert layout.version_dir("node_exporter", "1.2.3") == root / "opt/obsplan/node_exporter/1.2.3"
    os.symlink(outside, root / "var" / "lib")  # a link under the root that leads out of it
    (root / "opt").symlink_to("/")
    for attempt in (
        lambda: layout.host("/var/lib/x"),
        lambda: layout.host("/../x"),
        lambda: layout.host("/a/./b"),
        lambda: layout.version_dir("node_exporter", ".."),
        lambda: layout.component_dir("../../etc"),
        lambda: layout.version_dir("node_exporter", "1.2.3"),
    ):
        with pytest.raises(ObsplanError) as info:
            attempt()
        assert info.value.exit_code == 2
    assert list(outside.iterdir()) == []
    assert sorted(p.name for p in root.iterdir()) == ["opt", "var"]


def test_apply_refuses_a_root_whose_links_lead_outside(tmp_path: Path) -> None:
    """A link planted under --root (/opt → elsewhere) stops apply with exit 2 before anything is written there."""
    from tests.reliability.corpus import good_lock, one_error_line, reseal, run, tree

    lock = tmp_path / "ok.lock"
    lock.write_bytes(reseal(good_lock(tmp_path / "work")))
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (outside / "sentinel").write_text("unchanged")
    (root / "opt").symlink_to(outside)
    result = run(["apply", str(lock), "--root", str(root), "--allow-unverified"], tmp_path)
    assert result.exit_code == 2, (result.output, result.stderr)
    assert "outside the root" in one_error_line(result)
    assert set(tree(outside)) == {"sentinel"} and (outside / "sentinel").read_text() == "unchanged"
