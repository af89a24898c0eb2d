"""Fetch real Prometheus-project binaries from Debian and repack them as upstream-layout release tarballs.

Nothing is installed: `apt-get download` fetches the .deb, `dpkg-deb -x` unpacks it into a scratch
directory, and the binary is repacked as `<name>-<version>.linux-<arch>.tar.gz` holding
`<name>-<version>.linux-<arch>/<name>` (+ LICENSE/NOTICE placeholders), the promu layout.
bookworm (this machine's release) comes from the system apt sources; trixie and sid (forky) from a private,
throw-away apt configuration per suite under the cache directory, so the system sources are never modified.
From trixie on `promtool` is its own Debian package: it is packed next to `prometheus`, as upstream ships them.
Downloads are cached outside the checkout, in `OBSPLAN_TEST_DEBS` (default ~/.cache/obsplan-tests/debs, like
the bootstrap tests' wheel cache), so reruns and fresh clones do not download again; one session builds at a
time (a lock file in the cache).

Usage (also from .ci/run):  python tests/executor/fetch_debs.py [--cache DIR]
"""

from __future__ import annotations

import argparse
import fcntl
import gzip
import io
import os
import platform
import re
import subprocess
import sys
import tarfile
from pathlib import Path

from obsplan.executor.artifacts.store import sha256_file

DEFAULT_CACHE = Path(os.environ.get("OBSPLAN_TEST_DEBS", Path.home() / ".cache" / "obsplan-tests" / "debs"))
ARCH = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), "amd64")

# (suite, Debian package, upstream name, {exposed binary name: path inside the .deb})
_AM = {"alertmanager": "usr/bin/prometheus-alertmanager", "amtool": "usr/bin/amtool"}
_NGINX = {"nginx-prometheus-exporter": "usr/bin/prometheus-nginx-exporter"}
RELEASES = [
    ("bookworm", "prometheus-node-exporter", "node_exporter", {"node_exporter": "usr/bin/prometheus-node-exporter"}),
    ("trixie", "prometheus-node-exporter", "node_exporter", {"node_exporter": "usr/bin/prometheus-node-exporter"}),
    ("bookworm", "prometheus", "prometheus", {"prometheus": "usr/bin/prometheus", "promtool": "usr/bin/promtool"}),
    ("trixie", "prometheus", "prometheus", {"prometheus": "usr/bin/prometheus", "promtool": "usr/bin/promtool"}),
    ("bookworm", "prometheus-alertmanager", "alertmanager", _AM),
    ("trixie", "prometheus-alertmanager", "alertmanager", _AM),
    (
        "bookworm",
        "prometheus-mysqld-exporter",
        "mysqld_exporter",
        {"mysqld_exporter": "usr/bin/prometheus-mysqld-exporter"},
    ),
    (
        "trixie",
        "prometheus-mysqld-exporter",
        "mysqld_exporter",
        {"mysqld_exporter": "usr/bin/prometheus-mysqld-exporter"},
    ),
    ("bookworm", "prometheus-nginx-exporter", "nginx_exporter", _NGINX),
    ("trixie", "prometheus-nginx-exporter", "nginx_exporter", _NGINX),
    ("sid", "prometheus-node-exporter", "node_exporter", {"node_exporter": "usr/bin/prometheus-node-exporter"}),
    ("sid", "prometheus", "prometheus", {"prometheus": "usr/bin/prometheus", "promtool": "usr/bin/promtool"}),
    ("sid", "prometheus-alertmanager", "alertmanager", _AM),
    ("sid", "prometheus-mysqld-exporter", "mysqld_exporter", {"mysqld_exporter": "usr/bin/prometheus-mysqld-exporter"}),
    ("sid", "prometheus-nginx-exporter", "nginx_exporter", _NGINX),
]
# binaries Debian moved into packages of their own: {(suite, package): (extra package, [binary names])}
EXTRA_PACKAGES = {
    ("trixie", "prometheus"): ("promtool", ["promtool"]),
    ("sid", "prometheus"): ("promtool", ["promtool"]),
}
# GoReleaser projects: `<archive prefix>_<version>_linux_<arch>.tar.gz`, the binary at the archive root
GORELEASER = {"nginx_exporter": "nginx-prometheus-exporter"}
# Debian's alertmanager reads its notification template from here (upstream builds embed it)
ALERTMANAGER_TEMPLATE = "usr/share/prometheus/alertmanager/default.tmpl"

_VERSION_RE = re.compile(r"^(\S+), version (\S+) \(branch: ([^,]*), revision: ([^)]*)\)")
_NGINX_0X_RE = re.compile(r"^NGINX Prometheus Exporter version=(\S+)")
_DEBIAN_RE = re.compile(r"^(\d+\.\d+\.\d+)(?:\+ds\d*)?(?:-\d+(?:\+[a-z0-9.]+)?)?$")


def _run(cmd: list[str], cwd: Path | None = None) -> str:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")
    return proc.stdout


def _private_apt_opts(cache: Path, suite: str) -> list[str]:
    base = cache / f"apt-{suite}"
    for sub in ("lists/partial", "archives/partial", "etc/sources.list.d", "etc/preferences.d"):
        (base / sub).mkdir(parents=True, exist_ok=True)
    sources = base / "etc" / "sources.list"
    sources.write_text(f"deb http://deb.debian.org/debian {suite} main\n")
    return [
        "-o",
        f"Dir::State={base}",
        "-o",
        f"Dir::State::Lists={base / 'lists'}",
        "-o",
        f"Dir::State::status={base / 'status'}",
        "-o",
        f"Dir::Cache={base}",
        "-o",
        f"Dir::Cache::archives={base / 'archives'}",
        "-o",
        f"Dir::Etc::sourcelist={sources}",
        "-o",
        f"Dir::Etc::sourceparts={base / 'etc' / 'sources.list.d'}",
        "-o",
        f"Dir::Etc::preferencesparts={base / 'etc' / 'preferences.d'}",
        "-o",
        f"APT::Architecture={ARCH}",
        "-o",
        "APT::Get::List-Cleanup=0",
    ]


def _system_suite() -> str:
    text = Path("/etc/os-release").read_text()
    m = re.search(r"^VERSION_CODENAME=(\S+)", text, re.M)
    return m.group(1) if m else "bookworm"


def fetch_deb(cache: Path, suite: str, package: str) -> Path:
    """Return the cached .deb of `package` from `suite`, downloading it once."""
    dest = cache / "debs" / suite
    dest.mkdir(parents=True, exist_ok=True)
    found = sorted(dest.glob(f"{package}_*_{ARCH}.deb"))
    if found:
        return found[-1]
    if suite == _system_suite():
        _run(["apt-get", "download", package], cwd=dest)
    else:
        opts = _private_apt_opts(cache, suite)
        status = cache / f"apt-{suite}" / "status"
        status.touch()
        if not any((cache / f"apt-{suite}" / "lists").glob("*Packages*")):
            _run(["apt-get", *opts, "update"])
        _run(["apt-get", *opts, "download", package], cwd=dest)
    found = sorted(dest.glob(f"{package}_*_{ARCH}.deb"))
    if not found:
        raise RuntimeError(f"apt-get download {package} ({suite}) produced no .deb in {dest}")
    return found[-1]


def binary_version(binary: Path) -> str:
    """Version printed by `<binary> --version` (first line, stdout or stderr), Debian suffixes
    (`+ds`, `-1+b4`) stripped; nginx exporter 0.x prints `NGINX Prometheus Exporter version=0.11.0-1+b4`."""
    proc = subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=30, check=False)
    for text in (proc.stdout, proc.stderr):
        m = _VERSION_RE.match(text.strip()) or _NGINX_0X_RE.match(text.strip())
        if m:
            raw = m.group(2) if m.re is _VERSION_RE else m.group(1)
            d = _DEBIAN_RE.match(raw)
            return d.group(1) if d else raw
    raise RuntimeError(f"cannot read the version of {binary}: {proc.stdout!r} {proc.stderr!r}")


def _cached_version(extracted: Path, rel: str) -> str:
    """`binary_version` of a binary of an unpacked .deb, noted beside the unpacked tree after the first run."""
    note = extracted.with_name(extracted.name + ".version")
    if note.is_file():
        return note.read_text().strip()
    version = binary_version(extracted / rel)
    note.write_text(version + "\n")
    return version


def tarball_name(name: str, version: str) -> str:
    """The upstream archive name: promu `<name>-<version>.linux-<arch>.tar.gz` or GoReleaser's."""
    if name in GORELEASER:
        return f"{GORELEASER[name]}_{version}_linux_{ARCH}.tar.gz"
    return f"{name}-{version}.linux-{ARCH}.tar.gz"


def make_tarball(
    out: Path, name: str, version: str, files: dict[str, bytes | Path], flat: bool = False, level: int = 9
) -> Path:
    """Write a deterministic upstream-layout tarball into `out`: promu's holds one top directory
    `<name>-<version>.linux-<arch>/`, GoReleaser's (and a `flat` one) has the files at its root. `level`: gzip's
    (1 for an archive a single test builds from a large binary: 9 costs ~14 s of CPU for Prometheus)."""
    top = "" if flat or name in GORELEASER else f"{name}-{version}.linux-{ARCH}"
    path = out / tarball_name(name, version)
    out.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        if top:
            d = tarfile.TarInfo(top)
            d.type, d.mode, d.mtime = tarfile.DIRTYPE, 0o755, 0
            tar.addfile(d)
        for rel, content in sorted(files.items()):
            data = content.read_bytes() if isinstance(content, Path) else content
            info = tarfile.TarInfo(f"{top}/{rel}" if top else rel)
            info.size, info.mtime = len(data), 0
            info.mode = 0o755 if rel not in ("LICENSE", "NOTICE") else 0o644
            tar.addfile(info, io.BytesIO(data))
    with (
        open(path, "wb") as raw,
        gzip.GzipFile(filename="", fileobj=raw, mode="wb", compresslevel=level, mtime=0) as gz,
    ):
        gz.write(buf.getvalue())
    return path


def _extract(cache: Path, deb: Path) -> Path:
    root = cache / "extract" / deb.stem
    if not root.exists():
        tmp = root.with_name(root.name + ".tmp")
        _run(["rm", "-rf", str(tmp)])
        tmp.mkdir(parents=True)
        _run(["dpkg-deb", "-x", str(deb), str(tmp)])
        tmp.rename(root)
    return root


def _members(tarball: Path) -> set[str]:
    """The file names a cached tarball holds: from its `.members` note (written when packed), else read from
    the archive itself (decompressing all of it, about 1 s each) and noted for the next session."""
    note = tarball.with_name(tarball.name + ".members")
    if note.is_file():
        return set(note.read_text().split())
    with tarfile.open(tarball) as tar:
        names = {Path(m.name).name for m in tar.getmembers() if m.isfile()}
    _note_members(tarball, names)
    return names


def _note_members(tarball: Path, names: set[str]) -> None:
    tmp = tarball.with_name(f".{tarball.name}.members.tmp")
    tmp.write_text("".join(f"{n}\n" for n in sorted(names)))
    os.replace(tmp, tarball.with_name(tarball.name + ".members"))


def _build_one(cache: Path, suite: str, package: str, name: str, binaries: dict[str, str]) -> tuple[str, Path]:
    deb = fetch_deb(cache, suite, package)
    roots = {e: _extract(cache, deb) for e in binaries}
    if (suite, package) in EXTRA_PACKAGES:
        extra, names = EXTRA_PACKAGES[(suite, package)]
        extra_root = _extract(cache, fetch_deb(cache, suite, extra))
        roots.update({e: extra_root for e in names})
    version = _cached_version(roots[next(iter(binaries))], next(iter(binaries.values())))
    files: dict[str, bytes | Path] = {e: roots[e] / rel for e, rel in binaries.items() if (roots[e] / rel).exists()}
    files["LICENSE"] = b"Apache License 2.0 (placeholder; repacked from Debian for obsplan tests)\n"
    files["NOTICE"] = f"repacked from Debian {deb.name}\n".encode()
    tarball = cache / "releases" / tarball_name(name, version)
    # an older cache packed trixie's prometheus without its separate promtool: repack when members differ
    if not tarball.exists() or _members(tarball) != set(files):
        scratch = cache / "releases" / f".{suite}-{package}.tmp"
        made = make_tarball(scratch, name, version, files)
        os.replace(made, tarball)
        _note_members(tarball, set(files))
    return version, tarball


def _build(cache: Path) -> dict[tuple[str, str], Path]:
    result: dict[tuple[str, str], Path] = {}
    for suite, package, name, binaries in RELEASES:
        version, tarball = _build_one(cache, suite, package, name, binaries)
        result[(name, version)] = tarball
    return result


def extracted_file(suite: str, package: str, rel: str, cache: Path = DEFAULT_CACHE) -> Path:
    """A file of an unpacked .deb (after `build_releases`), e.g. Debian's alertmanager `default.tmpl`."""
    return cache / "extract" / fetch_deb(cache, suite, package).stem / rel


def build_releases(cache: Path = DEFAULT_CACHE) -> dict[tuple[str, str], Path]:
    """Fetch every deb in RELEASES and repack it; returns {(upstream name, version): tarball}."""
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / ".lock", "w") as lock:  # test sessions of other checkouts share the cache
        fcntl.flock(lock, fcntl.LOCK_EX)
        result = _build(cache)
        out = cache / "releases"
        sums = "".join(f"{sha256_file(p)}  {p.name}\n" for p in sorted(result.values()))
        (out / "sha256sums.txt").write_text(sums)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    args = parser.parse_args(argv)
    for (name, version), path in sorted(build_releases(args.cache).items()):
        print(f"{name} {version} {sha256_file(path)} {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
