"""Hostile or malformed configuration: one line naming file (and key), exit 2, no lock written, no file changed."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.reliability.corpus import MINIMAL_VERSIONS, one_error_line, run, tree

NE = "components:\n  node_exporter:\n"
BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
    for p, c in zip("abcdefgh", "bcdefghi", strict=True)
)

# case → (file, content, substring of the error, key named in the error or None)
CASES: dict[str, tuple[str, bytes | str, str, str | None]] = {
    "non-utf8": ("versions.yaml", NE.encode() + b"    strategy: \xff\xfe\n", "UTF-8", None),
    "utf16": ("versions.yaml", MINIMAL_VERSIONS.encode("utf-16"), "UTF-16", None),
    "nul-bytes": ("versions.yaml", MINIMAL_VERSIONS.encode() + b"\0", "UTF-16", None),
    "alias-bomb": ("versions.yaml", BOMB + MINIMAL_VERSIONS, "alias", None),
    "recursive-alias": ("versions.yaml", "x: &a [*a]\n" + MINIMAL_VERSIONS, "itself", None),
    "deep-nesting": ("versions.yaml", "x: " + "[" * 500 + "]" * 500 + "\n" + MINIMAL_VERSIONS, "deeper", None),
    "huge-document": ("versions.yaml", MINIMAL_VERSIONS + "#" * (2 * 1024 * 1024) + "\n", "bytes", None),
    "data-dir-traversal": (
        "versions.yaml",
        NE + "    runtime: {data_dir: /../../../X}\n",
        "'..'",
        "components.node_exporter.runtime.data_dir",
    ),
    "data-dir-relative": (
        "versions.yaml",
        NE + "    runtime: {data_dir: var/X}\n",
        "absolute",
        "components.node_exporter.runtime.data_dir",
    ),
    "config-file-dotdot": (
        "versions.yaml",
        NE + "    runtime: {config_file: /etc/./x.yml}\n",
        "normalised",
        "components.node_exporter.runtime.config_file",
    ),
    "binaries-key-traversal": (
        "versions.yaml",
        NE + '    runtime: {binaries: {"../../../../X": "*/x"}}\n',
        "binary name",
        "components.node_exporter.runtime.binaries",
    ),
    "binaries-glob-absolute": (
        "versions.yaml",
        NE + '    runtime: {binaries: {x: "/etc/*"}}\n',
        "relative",
        "components.node_exporter.runtime.binaries.x",
    ),
    "service-binary-slash": (
        "versions.yaml",
        NE + "    runtime: {service_binary: a/b}\n",
        "binary name",
        "components.node_exporter.runtime.service_binary",
    ),
    "artifact-traversal": (
        "versions.yaml",
        NE + '    artifact: "../../../tmp/X-{version}.tar.gz"\n',
        "base name",
        "components.node_exporter.artifact",
    ),
    "artifact-unknown-field": (
        "versions.yaml",
        NE + '    artifact: "x-{nope}-{version}.tar.gz"\n',
        "{nope}",
        "components.node_exporter.artifact",
    ),
    "artifact-positional": (
        "versions.yaml",
        NE + '    artifact: "x-{0}-{version}.tar.gz"\n',
        "{0}",
        "components.node_exporter.artifact",
    ),
    "artifact-format-spec": (
        "versions.yaml",
        NE + '    artifact: "x-{version:>99999999}.tar.gz"\n',
        "format specs",
        "components.node_exporter.artifact",
    ),
    "artifact-conversion": (
        "versions.yaml",
        NE + '    artifact: "x-{version!r}.tar.gz"\n',
        "conversions",
        "components.node_exporter.artifact",
    ),
    "artifact-attribute": (
        "versions.yaml",
        NE + '    artifact: "x-{version.real}.tar.gz"\n',
        "unknown field",
        "components.node_exporter.artifact",
    ),
    "artifact-index": (
        "versions.yaml",
        NE + '    artifact: "x-{version[0]}.tar.gz"\n',
        "unknown field",
        "components.node_exporter.artifact",
    ),
    "artifact-unbalanced": (
        "versions.yaml",
        NE + '    artifact: "x-{version.tar.gz"\n',
        "malformed",
        "components.node_exporter.artifact",
    ),
    "artifact-stray-brace": (
        "versions.yaml",
        NE + '    artifact: "x}-{version}.tar.gz"\n',
        "malformed",
        "components.node_exporter.artifact",
    ),
    "download-url-scheme": (
        "versions.yaml",
        NE + '    download_url: "ftp://x/{asset}"\n',
        "https",
        "components.node_exporter.download_url",
    ),
    "download-url-unparsable": (
        "versions.yaml",
        NE + '    download_url: "http://[::1/{asset}"\n',
        "parse",
        "components.node_exporter.download_url",
    ),
    "download-url-field": (
        "versions.yaml",
        NE + '    download_url: "https://x/{os}/{asset}"\n',
        "{os}",
        "components.node_exporter.download_url",
    ),
    "checksums-slash": (
        "versions.yaml",
        NE + '    checksums: "../sums-{version}.txt"\n',
        "base name",
        "components.node_exporter.checksums",
    ),
    "artifact-url-no-filename": (
        "versions.yaml",
        NE + '    artifact_urls: {"1.7.0": {linux-amd64: "https://x/"}}\n',
        "base name",
        "components.node_exporter.artifact_urls",
    ),
    "artifact-url-bad": (
        "versions.yaml",
        NE + '    artifact_urls: {"1.7.0": {linux-amd64: "http://[::1"}}\n',
        "parse",
        "components.node_exporter.artifact_urls.1.7.0.linux-amd64",
    ),
    "name-too-long": ("versions.yaml", f"components:\n  {'a' * 300}: {{}}\n", "1-64", "components"),
    "arch-map-slash": (
        "versions.yaml",
        NE + "    arch_map: {amd64: ../x}\n",
        "pattern",
        "components.node_exporter.arch_map.amd64",
    ),
    "min-age-overflow": (
        "upgrade-policy.yaml",
        "minimum_release_age_days: 1000000000\n",
        "less than or equal",
        "minimum_release_age_days",
    ),
    "keep-versions-huge": (
        "upgrade-policy.yaml",
        "rollback: {keep_versions: 99999999999999999999}\n",
        "less than",
        "rollback.keep_versions",
    ),
    "matrix-file-directory": ("upgrade-policy.yaml", "matrix_file: adir\n", "directory", "matrix_file"),
    "matrix-file-too-long": ("upgrade-policy.yaml", f"matrix_file: {'m' * 5000}.yaml\n", "relative", "matrix_file"),
    "matrix-file-part-too-long": (
        "upgrade-policy.yaml",
        f"matrix_file: {'m' * 300}.yaml\n",
        "over-long",
        "matrix_file",
    ),
    "matrix-file-escape": ("upgrade-policy.yaml", "matrix_file: ../../etc/passwd\n", "inside", "matrix_file"),
    "matrix-file-absolute": ("upgrade-policy.yaml", "matrix_file: /etc/passwd\n", "relative", "matrix_file"),
    "osv-url-bad": ("upgrade-policy.yaml", "osv_api: {url: 'http://[::1'}\n", "parse", "osv_api.url"),
    "policy-utf16": ("upgrade-policy.yaml", "allow: []\n".encode("utf-16"), "UTF-16", None),
    "support-end-not-a-date": (
        "matrix.yaml",
        "support:\n  prometheus:\n    - {line: '2.53', end: soon}\n",
        "YYYY-MM-DD",
        "support.prometheus.0.end",
    ),
    "support-end-impossible": (
        "matrix.yaml",
        "support:\n  prometheus:\n    - {line: '2.53', end: '2025-13-45'}\n",
        "YYYY-MM-DD",
        "support.prometheus.0.end",
    ),
    "matrix-alias-bomb": ("matrix.yaml", BOMB, "alias", None),
}


def _write(cfg: Path, filename: str, content: bytes | str) -> None:
    data = content.encode() if isinstance(content, str) else content
    (cfg / filename).write_bytes(data)


@pytest.mark.parametrize("case", sorted(CASES))
def test_hostile_config_refused(case: str, tmp_path: Path) -> None:
    filename, content, expected, key = CASES[case]
    cfg = tmp_path / "config"
    cfg.mkdir()
    (cfg / "adir").mkdir()
    if filename != "versions.yaml":
        _write(cfg, "versions.yaml", MINIMAL_VERSIONS)
    _write(cfg, filename, content)
    before = tree(tmp_path)
    result = run(["plan", "--config-dir", str(cfg), "--offline", "-o", str(tmp_path / "out" / "x.lock")], tmp_path)
    assert result.exit_code == 2, (result.output, result.stderr)
    line = one_error_line(result)
    assert filename in line and expected in line and "hint:" in line, line
    if key is not None:
        assert f": {key}" in line, line
    after = tree(tmp_path)
    assert {k: v for k, v in after.items() if not k.startswith("cache")} == before  # no lock, nothing changed


ACCEPTED = {
    "merge-anchors": "components:\n  node_exporter: &base\n    strategy: latest\n"
    "  alertmanager:\n    <<: *base\n    fallback_version: '0.27.0'\n",
    "utf8-bom": "\ufeff" + MINIMAL_VERSIONS,
    "all-fields-template": "components:\n  blackbox_exporter:\n    github_repo: prometheus/blackbox_exporter\n"
    '    artifact: "{name}-{version}.{os}-{arch}.tar.gz"\n    checksums: "sha256sums-{version}.txt"\n'
    '    download_url: "https://github.com/{repo}/releases/download/{tag}/{asset}"\n'
    "    runtime: {port: 9115, data_dir: /var/lib/blackbox, binaries: {blackbox_exporter: '*/blackbox_exporter'}}\n",
}


@pytest.mark.parametrize("case", sorted(ACCEPTED))
def test_benign_config_accepted(case: str, tmp_path: Path) -> None:
    """The policy refuses what is hostile, not what is merely unusual: anchors, a BOM, every allowed field."""
    cfg = tmp_path / "config"
    cfg.mkdir()
    (cfg / "versions.yaml").write_text(ACCEPTED[case])
    before = (cfg / "versions.yaml").read_bytes()
    out = tmp_path / "out" / "x.lock"
    result = run(["plan", "--config-dir", str(cfg), "--offline", "-o", str(out)], tmp_path)
    assert result.exit_code in (0, 1), (result.output, result.stderr)
    assert (cfg / "versions.yaml").read_bytes() == before
    assert out.exists() == (result.exit_code == 0)


ADVISORIES = {
    "non-utf8": (b'{"id": "GO-1", "x": "\xff"}', "UTF-8"),
    "deep": (b'{"id": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "nested"),
    "duplicate-keys": (b'{"id": "GO-1", "id": "GO-2"}', "twice"),
}


@pytest.mark.parametrize("case", sorted(ADVISORIES))
def test_hostile_advisory_file_refused(case: str, tmp_path: Path) -> None:
    data, expected = ADVISORIES[case]
    cfg = tmp_path / "config"
    (cfg / "adv").mkdir(parents=True)
    (cfg / "versions.yaml").write_text(MINIMAL_VERSIONS)
    (cfg / "adv" / "GO-1.json").write_bytes(data)
    before = tree(tmp_path)
    args = [
        "plan",
        "--config-dir",
        str(cfg),
        "--offline",
        "-o",
        str(tmp_path / "x.lock"),
        "--advisories",
        str(cfg / "adv"),
    ]
    result = run(args, tmp_path)
    assert result.exit_code == 2, (result.output, result.stderr)
    line = one_error_line(result)
    assert "GO-1.json" in line and expected in line, line
    assert {k: v for k, v in tree(tmp_path).items() if not k.startswith("cache")} == before
