"""`obsplan bundle` and the refusals of `apply --bundle`, with real release files over a real local HTTP server.

No service is started here: every refusal happens before a step touches the host, which these tests prove by
comparing the --root tree (minus obsplan's own state and logs) before and after."""

from __future__ import annotations

import io
import json
import os
import shutil
import tarfile
from pathlib import Path

import pytest
from obsplan.executor.bundle.files import TMP_MARK
from obsplan.executor.host.layout import Layout

from tests.executor.conftest import node_runtime

from .conftest import OTHER, PLATFORM, Hop, Upstream, cli, host_snapshot, make_lock, reseal, sha256_file


def _two_hop_lock(up: Upstream, releases: dict, path: Path, **kw: object) -> Path:
    hops = [
        Hop(None, "1.5.0", releases[("node_exporter", "1.5.0")]),
        Hop("1.5.0", "1.9.0", releases[("node_exporter", "1.9.0")]),
    ]
    return make_lock(path, up, {"node_exporter": (node_runtime(19111), "exporters", hops)}, **kw)  # type: ignore[arg-type]


def _upgrade_lock(up: Upstream, releases: dict, path: Path, **kw: object) -> Path:
    """The plan assumes the host runs node_exporter 1.5.0 and upgrades it to 1.9.0."""
    hop = Hop("1.5.0", "1.9.0", releases[("node_exporter", "1.9.0")], **kw)  # type: ignore[arg-type]
    return make_lock(path, up, {"node_exporter": (node_runtime(19112), "exporters", [hop])})


def _bundle(lock: Path, out: Path, *extra: str) -> dict:
    proc = cli("bundle", str(lock), "-o", str(out), "--json", *extra)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(proc.stdout)


def _files(directory: Path) -> set[str]:
    return {p.relative_to(directory).as_posix() for p in directory.rglob("*") if p.is_file()}


def _artifact(directory: Path, name: str) -> Path:
    (found,) = [p for p in directory.rglob(name) if p.is_file() and "artifacts" in p.parts]
    return found


# -- building ----------------------------------------------------------------------------------------------------
def test_bundle_holds_exactly_the_lock(upstream: Upstream, releases: dict, tmp_path: Path) -> None:
    lock = _two_hop_lock(upstream, releases, tmp_path / "prod.lock")
    # a release published after the lock was reviewed is never bundled (hashicorp/terraform#28274)
    upstream.publish("prometheus/node_exporter", "1.10.0", f"node_exporter-1.10.0.{PLATFORM}.tar.gz", b"not reviewed")
    out = tmp_path / "b"
    first = _bundle(lock, out)
    files = _files(out)
    assert {"obsplan.lock", "manifest.json"} <= files
    arts = sorted(f for f in files if f.startswith("artifacts/"))
    sums = sorted(f for f in files if f.startswith("checksums/"))
    assert len(arts) == 4 and len(sums) == 2  # 2 versions x 2 platforms, one sha256sums.txt per release
    assert not any("1.10.0" in f for f in files)
    assert (out / "obsplan.lock").read_bytes() == lock.read_bytes()
    assert first["downloaded"] == 6 and first["present"] == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["platforms"] == sorted([PLATFORM, OTHER])
    entry = manifest["files"][next(a for a in arts if "1.9.0" in a and PLATFORM in a)]
    assert entry["sha256"] == sha256_file(releases[("node_exporter", "1.9.0")])
    assert entry["size"] == releases[("node_exporter", "1.9.0")].stat().st_size
    assert entry["needed_by"] == [f"component node_exporter {PLATFORM}", f"step node_exporter@1.9.0 {PLATFORM}"]
    assert entry["verified"] is True and entry["checksum_file"] in sums
    assert manifest["unverified"] == []

    # re-run: everything is re-hashed, nothing is fetched again, the manifest is byte-identical
    seen = len(upstream.requests)
    manifest_bytes = (out / "manifest.json").read_bytes()
    again = _bundle(lock, out)
    assert again["downloaded"] == 0 and again["present"] == 6
    assert len(upstream.requests) == seen
    assert (out / "manifest.json").read_bytes() == manifest_bytes
    # deterministic: another directory gets the same manifest bytes
    _bundle(lock, tmp_path / "b2")
    assert (tmp_path / "b2" / "manifest.json").read_bytes() == manifest_bytes
    ok = cli("bundle", "--verify", str(out))
    assert ok.returncode == 0 and ok.stdout.startswith("ok:"), ok.stdout + ok.stderr


def test_rerun_fetches_only_missing_or_corrupt(upstream: Upstream, releases: dict, tmp_path: Path) -> None:
    lock = _two_hop_lock(upstream, releases, tmp_path / "prod.lock")
    out = tmp_path / "b"
    _bundle(lock, out)
    missing = _artifact(out, releases[("node_exporter", "1.5.0")].name)
    corrupt = _artifact(out, releases[("node_exporter", "1.9.0")].name)
    missing.unlink()
    data = bytearray(corrupt.read_bytes())
    data[1000] ^= 0xFF
    corrupt.write_bytes(bytes(data))
    left = corrupt.with_name(f".{corrupt.name}{TMP_MARK}999999-dead")  # a killed build's temp file
    left.write_bytes(b"half")
    seen = len(upstream.requests)
    result = _bundle(lock, out)
    status = {f["path"]: f["status"] for f in result["files"]}
    assert status[missing.relative_to(out).as_posix()] == "downloaded"
    assert status[corrupt.relative_to(out).as_posix()] == "replaced"
    assert status[left.relative_to(out).as_posix()] == "removed"
    assert sorted(Path(r).name for r in upstream.requests[seen:]) == sorted([missing.name, corrupt.name])
    assert not left.exists()
    assert cli("bundle", "--verify", str(out)).returncode == 0


def test_platform_selection(upstream: Upstream, releases: dict, tmp_path: Path) -> None:
    lock = _two_hop_lock(upstream, releases, tmp_path / "prod.lock")
    out = tmp_path / "b"
    _bundle(lock, out, "--platform", OTHER)
    arts = [f for f in _files(out) if f.startswith("artifacts/")]
    assert len(arts) == 2 and all(OTHER in f for f in arts)
    assert cli("bundle", "--verify", str(out)).returncode == 0
    # this host cannot apply a bundle without its platform: refused by name
    proc = cli("apply", str(lock), "--bundle", str(out), "--root", str(tmp_path / "root"))
    assert proc.returncode == 2 and f"no artifacts for this host's platform {PLATFORM}" in proc.stderr
    bad = cli("bundle", str(lock), "-o", str(tmp_path / "c"), "--platform", "linux-s390x")
    assert bad.returncode == 2 and "linux-s390x" in bad.stderr and not (tmp_path / "c").exists()


def test_unverified_refused_unless_allowed(upstream: Upstream, releases: dict, tmp_path: Path) -> None:
    lock = _upgrade_lock(upstream, releases, tmp_path / "prod.lock", null_sha=True)
    refused = cli("bundle", str(lock), "-o", str(tmp_path / "b"))
    assert refused.returncode == 1 and "no sha256" in refused.stderr and "--allow-unverified" in refused.stderr
    assert not (tmp_path / "b").exists()
    allowed = cli("bundle", str(lock), "-o", str(tmp_path / "b"), "--allow-unverified", "--json")
    assert allowed.returncode == 0, allowed.stderr
    assert allowed.stderr.count("WARNING: UNVERIFIED") == 2  # one line per artifact (both platforms)
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert len(manifest["unverified"]) == 2
    assert all(manifest["files"][p]["verified"] is False for p in manifest["unverified"])
    verify = cli("bundle", "--verify", str(tmp_path / "b"))
    assert verify.returncode == 0 and "UNVERIFIED" in verify.stderr


def test_checksum_file_or_bytes_disagreeing_with_lock(upstream: Upstream, releases: dict, tmp_path: Path) -> None:
    lock = _upgrade_lock(upstream, releases, tmp_path / "prod.lock")
    name = releases[("node_exporter", "1.9.0")].name
    sums = next(upstream.directory.rglob("v1.9.0/sha256sums.txt"))
    original = sums.read_text()
    sums.write_text(original.replace(sha256_file(releases[("node_exporter", "1.9.0")]), "f" * 64))
    proc = cli("bundle", str(lock), "-o", str(tmp_path / "b"))
    assert proc.returncode == 1 and "disagrees with the lock" in proc.stderr and name in proc.stderr
    assert not (tmp_path / "b" / "manifest.json").exists()
    # the release file itself was replaced upstream after review
    sums.write_text(original)
    published = next(upstream.directory.rglob(name))
    published.write_bytes(published.read_bytes()[:-10] + b"0123456789")
    proc = cli("bundle", str(lock), "-o", str(tmp_path / "c"))
    assert proc.returncode == 1 and "sha256 mismatch" in proc.stderr
    assert not list((tmp_path / "c").rglob(name)) and not (tmp_path / "c" / "manifest.json").exists()


# -- verify ------------------------------------------------------------------------------------------------------
def _mutate(kind: str, directory: Path, name: str) -> str:
    target = _artifact(directory, name)
    rel = target.relative_to(directory).as_posix()
    if kind == "altered":
        data = bytearray(target.read_bytes())
        data[len(data) // 2] ^= 0xFF
        target.write_bytes(bytes(data))
    elif kind == "missing":
        target.unlink()
    elif kind == "truncated":
        target.write_bytes(target.read_bytes()[: target.stat().st_size // 2])
    elif kind == "extra":
        extra = target.with_name("node_exporter-1.10.0.tar.gz")
        extra.write_bytes(b"smuggled")
        rel = extra.relative_to(directory).as_posix()
    elif kind == "manifest":
        data = json.loads((directory / "manifest.json").read_text())
        data["files"][rel]["needed_by"] = []
        (directory / "manifest.json").write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
        rel = "manifest.json"
        kind = "altered"
    return f"{kind}:{rel}"


@pytest.mark.parametrize("kind", ["altered", "missing", "truncated", "extra", "manifest"])
def test_verify_names_every_problem(upstream: Upstream, releases: dict, tmp_path: Path, kind: str) -> None:
    lock = _two_hop_lock(upstream, releases, tmp_path / "prod.lock")
    out = tmp_path / "b"
    _bundle(lock, out)
    expected = _mutate(kind, out, releases[("node_exporter", "1.9.0")].name)
    proc = cli("bundle", "--verify", str(out), "--json")
    assert proc.returncode == 1, proc.stdout
    problems = json.loads(proc.stdout)["problems"]
    assert [f"{p['problem']}:{p['path']}" for p in problems] == [expected]
    text = cli("bundle", "--verify", str(out))
    assert text.returncode == 1 and expected.split(":", 1)[1] in text.stdout


def test_edited_or_foreign_format_lock_refused_with_exit_2(upstream: Upstream, releases: dict, tmp_path: Path) -> None:
    lock = _two_hop_lock(upstream, releases, tmp_path / "prod.lock")
    out = tmp_path / "b"
    _bundle(lock, out)
    edited = tmp_path / "edited.lock"
    edited.write_text(lock.read_text().replace('"1.9.0"', '"1.9.9"'))
    for args in (
        ("bundle", str(edited), "-o", str(tmp_path / "c")),
        ("apply", str(edited), "--bundle", str(out), "--root", str(tmp_path / "root")),
    ):
        proc = cli(*args)
        assert proc.returncode == 2 and "edited after it was generated" in proc.stderr, proc.stderr
    (out / "obsplan.lock").write_text(edited.read_text())  # the lock inside the bundle edited by hand
    proc = cli("bundle", "--verify", str(out))
    assert proc.returncode == 2 and "edited after it was generated" in proc.stderr
    future = tmp_path / "future.lock"
    future.write_text(lock.read_text().replace('"format_version": 2', '"format_version": 3'))
    proc = cli("bundle", str(future), "-o", str(tmp_path / "d"))
    assert proc.returncode == 2 and "lock format 3 (written by obsplan " in proc.stderr, proc.stderr
    assert "reads (formats 1 to 2)" in proc.stderr and "edited after" not in proc.stderr
    assert not (tmp_path / "c").exists() and not (tmp_path / "d").exists() and not (tmp_path / "root").exists()


# -- tar ---------------------------------------------------------------------------------------------------------
def test_tar_is_deterministic_resumable_and_extracts(upstream: Upstream, releases: dict, tmp_path: Path) -> None:
    lock = _two_hop_lock(upstream, releases, tmp_path / "prod.lock")
    a, b = tmp_path / "x" / "prod.tar", tmp_path / "y" / "prod.tar"
    _bundle(lock, a)
    _bundle(lock, b)
    assert a.read_bytes() == b.read_bytes()
    with tarfile.open(a) as tar:
        members = tar.getmembers()
    names = [m.name for m in members]
    assert names[:2] == ["obsplan.lock", "manifest.json"] and names[2:] == sorted(names[2:])
    assert {m.mtime for m in members} == {0} and all(m.isfile() and m.uid == 0 for m in members)
    assert not [p for p in a.parent.iterdir() if p != a]  # no staging directory left behind
    upstream.stop()  # a re-run starts from the tar's own content: nothing to download
    again = _bundle(lock, a)
    assert again["downloaded"] == 0 and a.read_bytes() == b.read_bytes()
    out = tmp_path / "extracted"
    proc = cli("bundle", "--extract", str(a), "-o", str(out))
    assert proc.returncode == 0 and proc.stdout.startswith("ok:"), proc.stdout + proc.stderr
    assert (out / "obsplan.lock").read_bytes() == lock.read_bytes()
    again = cli("bundle", "--extract", str(a), "-o", str(out))
    assert again.returncode == 2 and "not an empty directory" in again.stderr


def test_bundle_members_get_plain_modes_whatever_the_header_says(tmp_path: Path) -> None:
    """Members are written by obsplan (no tarfile filter: Debian bookworm's Python 3.11.2 has none): a setuid,
    world-writable header still gives a 0644 file."""
    path, lock = tmp_path / "b.tar", (Path(__file__).resolve().parents[2] / "plans/production.lock").read_bytes()
    with tarfile.open(path, "w") as tar:
        info = tarfile.TarInfo("obsplan.lock")
        info.size, info.mode = len(lock), 0o4777
        tar.addfile(info, io.BytesIO(lock))
    out = tmp_path / "out"
    proc = cli("bundle", "--extract", str(path), "-o", str(out))
    assert proc.returncode == 1 and "must not be applied" in proc.stderr, proc.stderr  # its artifacts are missing
    assert (out / "obsplan.lock").stat().st_mode & 0o7777 == 0o644


def _evil_tar(path: Path, kind: str) -> Path:
    with tarfile.open(path, "w") as tar:
        info = tarfile.TarInfo("obsplan.lock")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"{}"))
        bad = tarfile.TarInfo({"absolute": "/tmp/evil", "dotdot": "artifacts/../../evil"}.get(kind, "artifacts/x"))
        if kind == "symlink":
            bad.type, bad.linkname = tarfile.SYMTYPE, "/etc/passwd"
        elif kind == "hardlink":
            bad.type, bad.linkname = tarfile.LNKTYPE, "obsplan.lock"
        elif kind == "device":
            bad.type = tarfile.CHRTYPE
        elif kind in ("duplicate", "file-then-dir"):
            first = tarfile.TarInfo("artifacts/x")
            first.size = 4
            tar.addfile(first, io.BytesIO(b"good"))
            if kind == "file-then-dir":
                bad = tarfile.TarInfo("artifacts/x/y")
        if bad.isfile():
            bad.size = 4
            tar.addfile(bad, io.BytesIO(b"evil"))
        else:
            tar.addfile(bad)
    return path


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("absolute", "absolute path"),
        ("dotdot", "escapes"),
        ("symlink", "link"),
        ("hardlink", "link"),
        ("device", "device"),
        ("duplicate", "collides with another member"),
        ("file-then-dir", "collides with another member"),
    ],
)
def test_unsafe_tar_refused(upstream: Upstream, releases: dict, tmp_path: Path, kind: str, message: str) -> None:
    evil = _evil_tar(tmp_path / "evil.tar", kind)
    out = tmp_path / "out"
    proc = cli("bundle", "--extract", str(evil), "-o", str(out))
    assert proc.returncode == 1 and message in proc.stderr, proc.stderr
    assert not out.exists() and not (tmp_path / "evil").exists() and not Path("/tmp/evil").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["evil.tar"]  # no temp directory left either
    lock = _upgrade_lock(upstream, releases, tmp_path / "prod.lock")
    proc = cli("apply", str(lock), "--bundle", str(evil), "--root", str(tmp_path / "root"))
    assert proc.returncode == 1 and message in proc.stderr and not (tmp_path / "root").exists()


# -- apply --bundle refusals: each names its fact, and nothing on the host changes ------------------------------
def _host_at(root: Path, version: str) -> None:
    layout = Layout(root)
    layout.version_dir("node_exporter", version).mkdir(parents=True)
    os.symlink(version, layout.current_link("node_exporter"))
    (root / "etc").mkdir()
    (root / "etc/keep.conf").write_text("unchanged\n")


CASES = {
    "altered": (1, "altered"),
    "missing": (1, "missing"),
    "truncated": (1, "truncated"),
    "extra": (1, "extra (not named by the lock)"),
    "other_lock": (2, "the bundle was built from another lock: content_sha256"),
    "edited_lock": (2, "edited after it was generated"),
    "reencoded_lock": (2, "same content, different bytes (line endings"),
    "off_path": (1, "host runs node_exporter 1.7.0 (current_link), but the plan assumed 1.5.0"),
    "no_checksum": (1, "the lock has no sha256 for it"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_apply_bundle_refusals_change_nothing(upstream: Upstream, releases: dict, tmp_path: Path, case: str) -> None:
    lock = _upgrade_lock(upstream, releases, tmp_path / "prod.lock", null_sha=case == "no_checksum")
    out = tmp_path / "b"
    _bundle(lock, out, *(["--allow-unverified"] if case == "no_checksum" else []))
    upstream.stop()
    root = tmp_path / "root"
    _host_at(root, "1.7.0" if case == "off_path" else "1.5.0")
    name = releases[("node_exporter", "1.9.0")].name
    if case in ("altered", "missing", "truncated", "extra"):
        _mutate(case, out, name)
    elif case == "other_lock":  # re-planned after the bundle was built: another lock, validly sealed
        reseal(lock, lambda d: d.update(environment="staging"))
    elif case == "edited_lock":
        lock.write_text(lock.read_text().replace('"risk": "low"', '"risk": "high"'))
    elif case == "reencoded_lock":  # e.g. a CRLF checkout: valid, same content hash, but not the reviewed bytes
        lock.write_bytes(lock.read_bytes().replace(b"\n", b"\r\n"))
    before = host_snapshot(root)
    proc = cli("apply", str(lock), "--bundle", str(out), "--root", str(root))
    code, message = CASES[case]
    assert proc.returncode == code, proc.stdout + proc.stderr
    assert message in proc.stdout + proc.stderr, proc.stdout + proc.stderr
    if case == "other_lock":
        assert (
            "environment staging (bundle)" not in proc.stderr and "environment prod (bundle) vs staging" in proc.stderr
        )
    if case == "off_path":
        assert "--force" in proc.stdout and "Re-run 'obsplan plan'" in proc.stdout
    if case == "no_checksum":
        assert "--allow-unverified" in proc.stdout
    assert host_snapshot(root) == before
    assert not (root / "var/cache").exists()  # not even the download cache was written
    if code == 2 or case in ("altered", "missing", "truncated", "extra"):  # refused before the state was opened
        assert not (root / "var/lib/obsplan").exists()


def test_verify_cli_usage_errors(tmp_path: Path) -> None:
    proc = cli("bundle")
    assert proc.returncode == 2 and "exactly one of" in proc.stderr
    proc = cli("bundle", "--verify", str(tmp_path / "nope"))
    assert proc.returncode == 2
    empty = tmp_path / "empty"
    empty.mkdir()
    proc = cli("bundle", "--verify", str(empty), "--json")
    assert proc.returncode == 1 and json.loads(proc.stdout)["problems"][0]["path"] == "obsplan.lock"
    shutil.rmtree(empty)


def test_wheelhouse_options_need_with_obsplan(tmp_path: Path) -> None:
    lock = Path(__file__).resolve().parents[2] / "plans" / "production.lock"
    for args, key in (
        (["--python-version", "3.11"], "--python-version"),
        (["--python-platform", "manylinux2014_x86_64"], "--python-platform"),
        (["--with-obsplan", "--python-version", "3"], "--python-version"),
        (["--with-obsplan", "--no-index"], "--no-index"),
    ):
        proc = cli("bundle", str(lock), "-o", str(tmp_path / "b.tar"), *args)
        assert proc.returncode == 2 and key in proc.stderr, (args, proc.stderr)
        assert not (tmp_path / "b.tar").exists()
