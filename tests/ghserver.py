"""A real, GitHub-API-compatible HTTP server for tests, serving the vendored upstream release histories.

    with FakeGitHub() as gh:
        httpx.get(f"{gh.url}/repos/prometheus/prometheus/releases", params={"per_page": 100})

Data comes from ``tests/fixtures/upstream/<owner>__<repo>/tags.tsv`` (vendored by ``scripts/vendor_fixtures.py``)
and the artifact naming conventions in ``policies/components.yaml``. Everything is deterministic: ids are hashes,
asset bytes are ``f"{owner}/{repo} {tag} {asset}\\n"`` unless registered with :meth:`FakeGitHub.add_asset`, and
checksum files are computed from the other assets' bytes.

URL shapes (``{server}`` = :attr:`FakeGitHub.url`):

- ``GET {server}/repos/{owner}/{repo}/releases?per_page=N&page=P``  (also ``/releases/latest``, ``/releases/tags/{tag}``)
- ``GET {server}/repos/{owner}/{repo}/tags?per_page=N&page=P``
- ``GET {server}/repos/{owner}/{repo}/contents/CHANGELOG.md[?ref=release-3.5]`` (raw, with ETag)
- ``GET {server}/rate_limit``
- ``GET {server}/download/{owner}/{repo}/{tag}/{asset}``           (= ``browser_download_url``; tag URL-quoted)
- ``GET {server}/gitlab/{owner}/{repo}/-/releases/{tag}/downloads/{asset}``   (fail2ban exporter, GitLab-style)
- ``GET {server}/dl/grafana/oss/release/grafana-{version}.{os}-{arch}.tar.gz[.sha256]``
- ``GET {server}/dl/grafana/grafana/release/{version}/{file}[.sha256]``
- ``GET {server}/grafana-com/api/downloads/grafana/versions``        (grafana.com: ``items[]`` version, releaseDate,
  stable, channels; newest date first)
- ``GET {server}/grafana-com/api/downloads/grafana/versions/{version}/packages/{arch}/linux``  (``.url``, ``.sha256``;
  up to 12.2 the legacy ``oss/release`` name, from 12.3 ``grafana_{v}_{build id}_linux_{arch}.tar.gz``)

Run standalone: ``python -m tests.ghserver --port 8080``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

import yaml

FIXTURES_DIR = Path(__file__).resolve().parent / "fixtures" / "upstream"
COMPONENTS_YAML = Path(__file__).resolve().parents[1] / "policies" / "components.yaml"

#: Platforms for which release assets are synthesized (``platforms_supported`` in components.yaml narrows them).
PLATFORMS = ("linux-amd64", "linux-arm64", "linux-armv7")
#: Repositories that publish no GitHub releases at all (mirrors).
NO_RELEASE_REPOS = frozenset({"hectorjsmith/fail2ban-prometheus-exporter"})
#: Repositories whose ``v0.N.P`` tags with N >= 35 are Go-module twins of ``vX.Y.Z`` (tags only, never releases).
GO_MODULE_TWIN_REPOS = frozenset({"prometheus/prometheus"})
#: Repositories whose release tags must carry a ``v`` prefix (Loki has a stray unprefixed ``2.8.3`` tag).
V_PREFIX_ONLY_REPOS = frozenset({"grafana/loki"})
#: Last version that still carries a component's assets (Promtail was removed from Loki releases after 3.6.11).
COMPONENT_MAX_VERSION = {"promtail": (3, 6, 11)}
GRAFANA_REPO = "grafana/grafana"

RATE_LIMIT = 5000
VERSION_RE = re.compile(
    r"^(?P<v>v?)(?P<major>\d+)\.(?P<minor>\d+)\.(?P<patch>\d+)"
    r"(?P<pre>-?[0-9A-Za-z][0-9A-Za-z.-]*)?(?:\+(?P<build>[0-9A-Za-z.-]+))?$"
)


# --------------------------------------------------------------------------------------------------------------------
# Pure helpers


def parse_version(tag: str) -> tuple[int, int, int, str, str] | None:
    """``(major, minor, patch, pre, build)`` of a version-looking tag, else None. ``pre`` keeps no leading ``-``."""
    m = VERSION_RE.match(tag)
    if not m:
        return None
    pre = (m["pre"] or "").lstrip("-")
    return int(m["major"]), int(m["minor"]), int(m["patch"]), pre, m["build"] or ""


def version_key(tag: str) -> tuple:
    """Sort key: semver-ish precedence (pre-release before release), non-version tags lowest."""
    v = parse_version(tag)
    if v is None:
        return (-1, -1, -1, -1, "", "")
    major, minor, patch, pre, build = v
    return (major, minor, patch, 0 if pre else 1, pre, build)


def is_prerelease(tag: str) -> bool:
    v = parse_version(tag)
    return bool(v and v[3])


def is_release_tag(repo: str, tag: str) -> bool:
    """Whether upstream published a GitHub release for this tag (the main product's real version tags)."""
    if repo in NO_RELEASE_REPOS:
        return False
    v = parse_version(tag)
    if v is None:
        return False  # dev, checkout, helm-loki-*, operator/*, pkg/..., ...
    major, minor, _patch, pre, _build = v
    if "retract" in pre:
        return False
    if repo in V_PREFIX_ONLY_REPOS and not tag.startswith("v"):
        return False
    return not (repo in GO_MODULE_TWIN_REPOS and tag.startswith("v") and major == 0 and minor >= 35)


def is_checksum_name(name: str) -> bool:
    low = name.lower()
    return low in {"sha256sums.txt", "sha256sums", "checksums.txt"} or low.endswith("_checksums.txt")


def default_bytes(repo: str, tag: str, name: str) -> bytes:
    return f"{repo} {tag} {name}\n".encode()


def content_type_for(name: str) -> str:
    if name.endswith((".tar.gz", ".tgz")):
        return "application/gzip"
    if name.endswith(".zip"):
        return "application/zip"
    if name.endswith(".json"):
        return "application/json"
    if name.endswith(".txt") or name.isupper() or name.endswith(".sha256"):
        return "text/plain"
    return "application/octet-stream"


def stable_id(*parts: str) -> int:
    return int(hashlib.sha256("\0".join(parts).encode()).hexdigest()[:8], 16)


def iso_z(date: str) -> str:
    """``2022-05-24`` or ``2019-06-03T20:50:59Z`` → ``YYYY-MM-DDTHH:MM:SSZ``."""
    date = date.strip()
    if len(date) == 10:
        return f"{date}T00:00:00Z"
    dt = datetime.fromisoformat(date.replace("Z", "+00:00"))
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _repo_dir_name(repo: str) -> str:
    return repo.replace("/", "__")


# --------------------------------------------------------------------------------------------------------------------
# Data model


@dataclass(frozen=True)
class Tag:
    name: str
    date: str  # ISO 8601 Z
    sha: str


@dataclass
class Release:
    tag: str
    created_at: str
    target_commitish: str
    assets: list[str] = field(default_factory=list)
    draft: bool = False
    prerelease: bool = False
    name: str | None = None
    body: str | None = None
    published_at: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # passed through (overrides) in the JSON


@dataclass
class RecordedRequest:
    method: str
    path: str  # path with query string, as sent
    headers: dict[str, str]  # lower-cased keys
    status: int


@dataclass
class _Repo:
    name: str
    tags: list[Tag]  # newest first
    releases: list[Release]  # newest first
    gitlab_assets: dict[str, list[str]] = field(default_factory=dict)  # tag -> asset names (GitLab downloads)


def _sort_newest_first(items: list, date_of, tag_of) -> list:
    return sorted(items, key=lambda x: (date_of(x), version_key(tag_of(x)), tag_of(x)), reverse=True)


def load_tags(repo: str, fixtures_dir: Path = FIXTURES_DIR) -> list[Tag] | None:
    """Tags of a vendored repository, newest first; None if the repository is not vendored."""
    path = fixtures_dir / _repo_dir_name(repo) / "tags.tsv"
    if not path.is_file():
        return None
    rows = [line.split("\t") for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    tags: list[Tag] = []
    if repo == GRAFANA_REPO:
        # Columns: version, date (YYYY-MM-DD, may be empty), source. The git tag is "v" + version.
        dated = {r[0]: r[1] for r in rows if r[1].strip()}
        for version, date, *_ in rows:
            if not date.strip():
                # Undated pre-release heading: place it one day before the next dated version above it.
                later = sorted((v for v in dated if version_key(v) > version_key(version)), key=version_key)
                nxt = later[0] if later else max(dated.values())
                date = (datetime.fromisoformat(dated.get(nxt, nxt)) - timedelta(days=1)).strftime("%Y-%m-%d")
            name = f"v{version}"
            tags.append(Tag(name, iso_z(date), hashlib.sha1(name.encode()).hexdigest()))
    else:
        for name, date, sha, *_ in rows:
            tags.append(Tag(name, iso_z(date), sha))
    return _sort_newest_first(tags, lambda t: t.date, lambda t: t.name)


class _Components:
    """The artifact conventions from policies/components.yaml, grouped by GitHub repository."""

    def __init__(self, path: Path):
        data = yaml.safe_load(path.read_text(encoding="utf-8")) if path.is_file() else {}
        self.by_repo: dict[str, list[tuple[str, dict]]] = {}
        for key, comp in (data or {}).get("components", {}).items():
            if isinstance(comp, dict) and comp.get("github_repo"):
                self.by_repo.setdefault(comp["github_repo"], []).append((key, comp))

    @staticmethod
    def _assets_for(key: str, comp: dict, version: str) -> list[str]:
        template = comp.get("artifact")
        if not template:
            return []
        limit = COMPONENT_MAX_VERSION.get(key)
        if limit is not None and version_key(version) > (*limit, 1, "", ""):
            return []
        project = template.split("_{version}")[0] if "_{version}" in template else key
        supported = comp.get("platforms_supported") or PLATFORMS
        arch_map = comp.get("arch_map") or {}
        names = []
        for platform in PLATFORMS:
            if platform not in supported:
                continue
            os_, arch = platform.split("-", 1)
            arch = arch_map.get(arch, arch)
            names.append(template.format(name=key, version=version, os=os_, arch=arch, project=project))
        checksums = comp.get("checksums")
        if checksums and "{url}" not in checksums:
            names.append(checksums.format(project=project, version=version, name=key))
        return names

    def assets(self, repo: str, tag: str, host: str) -> list[str]:
        """Asset names of ``tag`` for components of ``repo`` whose download_url is on ``host`` (e.g. github.com)."""
        version = tag[1:] if tag.startswith("v") else tag
        names: list[str] = []
        for key, comp in self.by_repo.get(repo, []):
            if not str(comp.get("download_url", "")).startswith(f"https://{host}/"):
                continue
            min_version = comp.get("min_version")
            if min_version and version_key(version) < version_key(str(min_version)):
                continue
            for name in self._assets_for(key, comp, version):
                if name not in names:
                    names.append(name)
        return sorted(names, key=lambda n: (is_checksum_name(n), n))

    def publishes_on_github(self, repo: str) -> bool:
        """False when every component of ``repo`` downloads from elsewhere (dl.grafana.com, GitLab)."""
        comps = self.by_repo.get(repo)
        return not comps or any(str(c.get("download_url", "")).startswith("https://github.com/") for _, c in comps)


# --------------------------------------------------------------------------------------------------------------------
# Server


class _Handler(BaseHTTPRequestHandler):
    server_version = "FakeGitHub/1.0"
    sys_version = ""
    protocol_version = "HTTP/1.1"
    timeout = 10
    disable_nagle_algorithm = True  # headers and body go out in separate writes; avoid 40 ms delayed-ACK stalls
    gh: FakeGitHub  # set on the subclass created per server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet
        pass

    def do_GET(self) -> None:
        self._serve(head=False)

    def do_HEAD(self) -> None:
        self._serve(head=True)

    def _serve(self, head: bool) -> None:
        headers = {k.lower(): v for k, v in self.headers.items()}
        try:
            status, resp_headers, body = self.gh._handle(self.command, self.path, headers)
        except Exception as exc:  # pragma: no cover - a bug in the fake should be visible, not a hang
            status, resp_headers, body = 500, {"Content-Type": "text/plain"}, f"fake server error: {exc!r}".encode()
        # Record before answering so a client that got the response always finds its request in gh.requests.
        self.gh._record(RecordedRequest(self.command, self.path, headers, status))
        self.send_response(status)
        for k, v in resp_headers.items():
            self.send_header(k, v)
        if status != 304:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head and status != 304 and body:
            self.wfile.write(body)


class _QuietServer(ThreadingHTTPServer):
    """A client that hangs up mid-response (a cancelled request, a closed client) is normal here: no traceback on
    stderr, where it would mix with the output of the command under test."""

    request_queue_size = 128  # a plan sends its requests at once; the default backlog (5) would refuse some

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class FakeGitHub:
    """A GitHub REST API look-alike on 127.0.0.1 serving the vendored upstream release histories."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        require_token: str | None = None,
        fixtures_dir: Path | str = FIXTURES_DIR,
        components_yaml: Path | str = COMPONENTS_YAML,
    ):
        self.host, self.port = host, port
        self.require_token = require_token
        self.fixtures_dir = Path(fixtures_dir)
        self._components = _Components(Path(components_yaml))
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._repos: dict[str, _Repo | None] = {}
        self._custom_repos: set[str] = set()
        self._blobs: dict[tuple[str, str, str], bytes] = {}
        self._requests: list[RecordedRequest] = []
        self._remaining = RATE_LIMIT
        self._reset_at = int(time.time()) + 3600
        self._rate_limited: int | None = None
        self._fails: list[list[Any]] = []  # [compiled regex, status, remaining times or None]
        self._delay = 0.0
        self._delay_re: re.Pattern[str] | None = None
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ---- lifecycle -------------------------------------------------------------------------------------------------

    def start(self) -> FakeGitHub:
        if self._server is not None:
            return self
        handler = type("Handler", (_Handler,), {"gh": self})
        server = _QuietServer((self.host, self.port), handler)
        server.daemon_threads = True
        self._server = server
        self.port = server.server_address[1]
        self._stopping.clear()
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.name = f"FakeGitHub:{self.port}"
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FakeGitHub:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:40123`` (use as the GitHub API base)."""
        return f"http://{self.host}:{self.port}"

    @property
    def api_url(self) -> str:
        return self.url

    @property
    def gitlab_url(self) -> str:
        """Replaces ``https://gitlab.com``."""
        return f"{self.url}/gitlab"

    @property
    def grafana_dl_url(self) -> str:
        """Replaces ``https://dl.grafana.com``."""
        return f"{self.url}/dl/grafana"

    @property
    def grafana_com_url(self) -> str:
        """Replaces ``https://grafana.com`` (the downloads API)."""
        return f"{self.url}/grafana-com"

    def plan_env(self, cache_dir: Path, now: str = "2026-11-22") -> dict[str, str]:
        """The environment an `obsplan plan` subprocess needs to read release data from this server only."""
        return {
            "GITHUB_API_URL": self.api_url,
            "GRAFANA_COM_API_URL": self.grafana_com_url,
            "OBSPLAN_CACHE_DIR": str(cache_dir),
            "OBSPLAN_NOW": now,
        }

    def download_url(self, repo: str, tag: str, asset: str) -> str:
        return f"{self.url}/download/{repo}/{quote(tag, safe='')}/{quote(asset, safe='')}"

    # ---- observability ---------------------------------------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        """Snapshot of the requests answered so far (method, path with query, lower-cased headers, status)."""
        with self._lock:
            return list(self._requests)

    def count(self, path_prefix: str = "/", method: str | None = None) -> int:
        with self._lock:
            return sum(
                1 for r in self._requests if r.path.startswith(path_prefix) and (method is None or r.method == method)
            )

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    def _record(self, req: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(req)

    # ---- fault injection -------------------------------------------------------------------------------------------

    def rate_limit(self, on: bool = True, status: int = 403) -> None:
        """While on, every API request answers ``status`` (403 like GitHub's primary limit, or 429)."""
        with self._lock:
            self._rate_limited = status if on else None

    def fail(self, path_regex: str, status: int = 500, times: int | None = 1) -> None:
        """The next ``times`` requests whose path (with query) matches ``re.search(path_regex)`` get ``status``.
        ``times=None`` fails until :meth:`reset_faults`. Applies to downloads too."""
        with self._lock:
            self._fails.append([re.compile(path_regex), status, times])

    def delay(self, seconds: float, path_regex: str | None = None) -> None:
        """Sleep ``seconds`` before answering API requests (or paths matching ``path_regex``); 0 turns it off."""
        with self._lock:
            self._delay = max(0.0, float(seconds))
            self._delay_re = re.compile(path_regex) if path_regex else None

    def reset_faults(self) -> None:
        with self._lock:
            self._rate_limited = None
            self._fails.clear()
            self._delay = 0.0
            self._delay_re = None

    # ---- data customisation ----------------------------------------------------------------------------------------

    def add_repo(
        self,
        repo: str,
        tags: list[tuple[str, ...]],
        assets_template: list[str] | None = None,
        *,
        releases: bool = True,
    ) -> None:
        """Add (or replace) a custom repository. ``tags``: ``(tag, date[, sha])`` with date ``YYYY-MM-DD`` or ISO.
        ``assets_template``: asset names with ``{version}``, ``{tag}``, ``{name}`` (repo name); a name with
        ``{os}``/``{arch}`` expands over :data:`PLATFORMS`, e.g.
        ``["blackbox_exporter-{version}.{os}-{arch}.tar.gz", "sha256sums.txt"]``. Releases are created for the
        release-worthy tags unless ``releases=False``."""
        tag_objs = []
        for t in tags:
            name, date = t[0], t[1]
            sha = t[2] if len(t) > 2 else hashlib.sha1(f"{repo}@{name}".encode()).hexdigest()
            tag_objs.append(Tag(name, iso_z(date), sha))
        tag_objs = _sort_newest_first(tag_objs, lambda t: t.date, lambda t: t.name)
        rels = []
        if releases:
            short = repo.split("/", 1)[1]
            for t in tag_objs:
                if not is_release_tag(repo, t.name):
                    continue
                version = t.name[1:] if t.name.startswith("v") else t.name
                names: list[str] = []
                for tmpl in assets_template or []:
                    platforms = PLATFORMS if ("{os}" in tmpl or "{arch}" in tmpl) else ("-",)
                    for p in platforms:
                        os_, arch = p.split("-", 1)
                        n = tmpl.format(version=version, tag=t.name, name=short, os=os_, arch=arch)
                        if n not in names:
                            names.append(n)
                rels.append(Release(t.name, t.date, t.sha, names, prerelease=is_prerelease(t.name)))
        with self._lock:
            self._repos[repo] = _Repo(repo, tag_objs, rels)
            self._custom_repos.add(repo)

    def set_releases(self, repo: str, releases: list[dict[str, Any]]) -> None:
        """Replace a repository's releases (the repository is created if unknown; its tags then follow the releases).
        Each dict needs ``tag_name``; optional ``created_at``, ``published_at``, ``draft``, ``prerelease``, ``name``,
        ``body``, ``target_commitish`` and ``assets`` (names, or dicts with ``name`` and optional ``data`` bytes);
        any other key is passed through verbatim. Missing ``created_at`` → the tag's date, else one day apart in
        list order (first = newest)."""
        with self._lock:
            existing = self._repo(repo)
        tag_dates = {t.name: t for t in existing.tags} if existing else {}
        base = datetime(2026, 1, 1, tzinfo=UTC)
        rels: list[Release] = []
        known = {"tag_name", "created_at", "published_at", "draft", "prerelease", "name", "body", "target_commitish"}
        for i, d in enumerate(releases):
            tag = d["tag_name"]
            t = tag_dates.get(tag)
            created = d.get("created_at") or (
                t.date if t else (base - timedelta(days=i)).strftime("%Y-%m-%dT%H:%M:%SZ")
            )
            names = []
            for a in d.get("assets", []):
                if isinstance(a, dict):
                    names.append(a["name"])
                    if a.get("data") is not None:
                        with self._lock:
                            self._blobs[(repo, tag, a["name"])] = bytes(a["data"])
                else:
                    names.append(str(a))
            draft = bool(d.get("draft", False))
            rel = Release(
                tag,
                created,
                d.get("target_commitish") or (t.sha if t else "main"),
                names,
                draft=draft,
                prerelease=bool(d.get("prerelease", is_prerelease(tag))),
                name=d.get("name"),
                body=d.get("body"),
                published_at=d.get("published_at", None if draft else created),
                extra={k: v for k, v in d.items() if k not in known and k != "assets"},
            )
            rels.append(rel)
        rels = _sort_newest_first(rels, lambda r: r.created_at, lambda r: r.tag)
        with self._lock:
            if existing is None:
                tags = [Tag(r.tag, r.created_at, hashlib.sha1(f"{repo}@{r.tag}".encode()).hexdigest()) for r in rels]
                existing = _Repo(repo, _sort_newest_first(tags, lambda t: t.date, lambda t: t.name), [])
                self._repos[repo] = existing
                self._custom_repos.add(repo)
            existing.releases = rels

    def add_asset(self, repo: str, tag: str, name: str, data: bytes) -> None:
        """Serve ``data`` for this asset (GitHub download, GitLab download or dl.grafana.com file of that tag) and
        add it to the GitHub release's asset list if missing. Checksum files of the release follow automatically."""
        with self._lock:
            self._blobs[(repo, tag, name)] = bytes(data)
            r = self._repo(repo)
            if r is None or not self._components.publishes_on_github(repo):
                return  # e.g. grafana/grafana: tarballs live on dl.grafana.com, its releases carry no assets
            for rel in r.releases:
                if rel.tag == tag and name not in rel.assets:
                    rel.assets.append(name)

    def releases(self, repo: str) -> list[dict[str, Any]]:
        """The release objects the server would return for ``repo`` (all pages), newest first."""
        with self._lock:
            r = self._repo(repo)
            return [self._release_json(repo, rel) for rel in r.releases] if r else []

    def tags(self, repo: str) -> list[str]:
        with self._lock:
            r = self._repo(repo)
            return [t.name for t in r.tags] if r else []

    def asset_bytes(self, repo: str, tag: str, name: str) -> bytes:
        with self._lock:
            r = self._repo(repo)
            names = self._asset_names(r, tag) if r else []
            return self._bytes(repo, tag, name, names)

    # ---- internals: data -------------------------------------------------------------------------------------------

    def _repo(self, repo: str) -> _Repo | None:
        with self._lock:
            if repo in self._repos:
                return self._repos[repo]
            tags = load_tags(repo, self.fixtures_dir)
            if tags is None:
                # Do not cache misses: a custom repo may be added later.
                return None
            rels = []
            if repo not in NO_RELEASE_REPOS:
                for t in tags:
                    if is_release_tag(repo, t.name):
                        assets = self._components.assets(repo, t.name, "github.com")
                        rels.append(Release(t.name, t.date, t.sha, assets, prerelease=is_prerelease(t.name)))
            gitlab = {}
            for t in tags:
                names = self._components.assets(repo, t.name, "gitlab.com")
                if names and parse_version(t.name):
                    gitlab[t.name] = names
            r = _Repo(repo, tags, rels, gitlab)
            self._repos[repo] = r
            return r

    @staticmethod
    def _find_release(r: _Repo, tag: str) -> Release | None:
        return next((rel for rel in r.releases if rel.tag == tag), None)

    def _asset_names(self, r: _Repo, tag: str) -> list[str]:
        rel = self._find_release(r, tag)
        if rel is not None:
            return rel.assets
        return r.gitlab_assets.get(tag, [])

    def _bytes(self, repo: str, tag: str, name: str, siblings: list[str]) -> bytes:
        blob = self._blobs.get((repo, tag, name))
        if blob is not None:
            return blob
        if is_checksum_name(name):
            lines = []
            for other in sorted(set(siblings)):
                if other == name or is_checksum_name(other):
                    continue
                digest = hashlib.sha256(self._bytes(repo, tag, other, siblings)).hexdigest()
                lines.append(f"{digest}  {other}\n")
            return "".join(lines).encode()
        return default_bytes(repo, tag, name)

    def _release_json(self, repo: str, rel: Release) -> dict[str, Any]:
        base = self.url
        rid = stable_id("release", repo, rel.tag)
        version = rel.tag[1:] if rel.tag.startswith("v") else rel.tag
        if rel.name is not None:
            name = rel.name
        elif repo.startswith("prometheus/"):
            name = f"{version} / {rel.created_at[:10]}"  # how promu-published releases are titled
        else:
            name = rel.tag
        assets = []
        for a in rel.assets:
            data = self._bytes(repo, rel.tag, a, rel.assets)
            assets.append(
                {
                    "url": f"{base}/repos/{repo}/releases/assets/{stable_id('asset', repo, rel.tag, a)}",
                    "id": stable_id("asset", repo, rel.tag, a),
                    "name": a,
                    "label": "",
                    "state": "uploaded",
                    "content_type": content_type_for(a),
                    "size": len(data),
                    "download_count": 0,
                    "created_at": rel.created_at,
                    "updated_at": rel.created_at,
                    "browser_download_url": self.download_url(repo, rel.tag, a),
                }
            )
        obj: dict[str, Any] = {
            "url": f"{base}/repos/{repo}/releases/{rid}",
            "assets_url": f"{base}/repos/{repo}/releases/{rid}/assets",
            "html_url": f"https://github.com/{repo}/releases/tag/{rel.tag}",
            "id": rid,
            "author": {"login": "github-actions[bot]", "id": 41898282, "type": "Bot"},
            "tag_name": rel.tag,
            "target_commitish": rel.target_commitish,
            "name": name,
            "draft": rel.draft,
            "prerelease": rel.prerelease,
            "created_at": rel.created_at,
            "published_at": rel.published_at if rel.published_at is not None or rel.draft else rel.created_at,
            "assets": assets,
            "tarball_url": f"{base}/repos/{repo}/tarball/{quote(rel.tag, safe='')}",
            "zipball_url": f"{base}/repos/{repo}/zipball/{quote(rel.tag, safe='')}",
            "body": rel.body if rel.body is not None else f"Release {rel.tag} of {repo}.\n\nSee the CHANGELOG.",
        }
        obj.update(rel.extra)
        return obj

    def _tag_json(self, repo: str, t: Tag) -> dict[str, Any]:
        base = self.url
        return {
            "name": t.name,
            "zipball_url": f"{base}/repos/{repo}/zipball/refs/tags/{quote(t.name, safe='/')}",
            "tarball_url": f"{base}/repos/{repo}/tarball/refs/tags/{quote(t.name, safe='/')}",
            "commit": {"sha": t.sha, "url": f"{base}/repos/{repo}/commits/{t.sha}"},
            "node_id": f"REF_{stable_id('tag', repo, t.name):x}",
        }

    # ---- internals: HTTP -------------------------------------------------------------------------------------------

    def _rate_headers(self, count: bool) -> dict[str, str]:
        with self._lock:
            if count and self._remaining > 0:
                self._remaining -= 1
            remaining = 0 if self._rate_limited else self._remaining
            return {
                "X-RateLimit-Limit": str(RATE_LIMIT),
                "X-RateLimit-Remaining": str(remaining),
                "X-RateLimit-Reset": str(self._reset_at),
                "X-RateLimit-Used": str(RATE_LIMIT - remaining),
                "X-RateLimit-Resource": "core",
            }

    def _json(
        self, status: int, obj: Any, req_headers: dict[str, str], extra: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        body = json.dumps(obj, separators=(",", ":")).encode()
        etag = f'"{hashlib.sha256(body).hexdigest()}"'
        headers = {"Content-Type": "application/json; charset=utf-8", "ETag": etag, **(extra or {})}
        inm = req_headers.get("if-none-match")
        if status == 200 and inm:
            candidates = {c.strip().removeprefix("W/") for c in inm.split(",")}
            if etag in candidates or "*" in candidates:
                # Conditional hits do not count against GitHub's rate limit.
                return 304, {"ETag": etag, **self._rate_headers(count=False), **(extra or {})}, b""
        return status, {**headers, **self._rate_headers(count=True)}, body

    def _error(
        self, status: int, message: str, req_headers: dict[str, str], extra: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        return self._json(
            status, {"message": message, "documentation_url": "https://docs.github.com/rest"}, req_headers, extra
        )

    def _paginate(self, path: str, query: str, items: list[Any]) -> tuple[list[Any], dict[str, str]]:
        params = parse_qsl(query, keep_blank_values=True)
        q = dict(params)
        try:
            per_page = min(100, max(1, int(q.get("per_page", 30))))
        except ValueError:
            per_page = 30
        try:
            page = max(1, int(q.get("page", 1)))
        except ValueError:
            page = 1
        last = max(1, -(-len(items) // per_page))
        chunk = items[(page - 1) * per_page : page * per_page]
        if len(items) <= per_page and page == 1:
            return chunk, {}

        def link(p: int) -> str:
            new = [(k, v) for k, v in params if k != "page"]
            new.append(("page", str(p)))
            return f"<{self.url}{path}?{urlencode(new)}>"

        rels = []
        if page > 1:
            rels.append(f'{link(page - 1)}; rel="prev"')
        if page < last:
            rels.append(f'{link(page + 1)}; rel="next"')
            rels.append(f'{link(last)}; rel="last"')
        if page > 1:
            rels.append(f'{link(1)}; rel="first"')
        return chunk, {"Link": ", ".join(rels)}

    def _sleep(self, seconds: float) -> None:
        self._stopping.wait(seconds)  # interruptible by stop()

    def _handle(self, method: str, raw_path: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        split = urlsplit(raw_path)
        path, query = split.path, split.query
        is_api = path.startswith("/repos/") or path == "/rate_limit"

        with self._lock:
            delay, delay_re = self._delay, self._delay_re
        if delay and ((delay_re is None and is_api) or (delay_re is not None and delay_re.search(raw_path))):
            self._sleep(delay)

        if is_api and self.require_token is not None:
            auth = headers.get("authorization", "")
            if auth not in (f"Bearer {self.require_token}", f"token {self.require_token}"):
                return self._error(401, "Bad credentials", headers)

        with self._lock:
            limited = self._rate_limited
            injected = None
            for f in self._fails:
                if f[2] != 0 and f[0].search(raw_path):
                    if f[2] is not None:
                        f[2] -= 1
                    injected = f[1]
                    break
        if is_api and limited:
            return self._error(
                limited,
                "API rate limit exceeded for 127.0.0.1. (But here's the good news: Authenticated requests get a "
                "higher rate limit. Check out the documentation for more details.)",
                headers,
            )
        if injected is not None:
            phrase = HTTPStatus(injected).phrase if injected in HTTPStatus._value2member_map_ else "Error"
            return self._error(injected, phrase, headers)

        parts = [unquote(p) for p in path.split("/")[1:]]
        if path == "/rate_limit":
            with self._lock:
                core = {"limit": RATE_LIMIT, "remaining": self._remaining, "reset": self._reset_at}
                core["used"] = RATE_LIMIT - core["remaining"]
            return self._json(200, {"resources": {"core": core}, "rate": core}, headers)
        if parts[0] == "repos" and len(parts) >= 4:
            return self._api(parts, path, query, headers)
        if parts[0] == "download" and len(parts) == 5:
            return self._download(f"{parts[1]}/{parts[2]}", parts[3], parts[4], gitlab=False)
        if parts[0] == "gitlab" and len(parts) == 8 and parts[3:5] == ["-", "releases"] and parts[6] == "downloads":
            return self._download(f"{parts[1]}/{parts[2]}", parts[5], parts[7], gitlab=True)
        if parts[:4] == ["grafana-com", "api", "downloads", "grafana"] and parts[4:5] == ["versions"]:
            return self._grafana_com(parts[5:], headers)
        if parts[:4] == ["dl", "grafana", "oss", "release"] and len(parts) == 5:
            return self._grafana(parts[4], None)
        if parts[:4] == ["dl", "grafana", "grafana", "release"] and len(parts) == 6:
            return self._grafana(parts[5], parts[4])
        return self._error(404, "Not Found", headers)

    def _api(
        self, parts: list[str], path: str, query: str, headers: dict[str, str]
    ) -> tuple[int, dict[str, str], bytes]:
        repo = f"{parts[1]}/{parts[2]}"
        with self._lock:
            r = self._repo(repo)
            if r is None:
                return self._error(404, "Not Found", headers)
            rest = parts[3:]
            if rest == ["releases"]:
                page, extra = self._paginate(path, query, r.releases)
                return self._json(200, [self._release_json(repo, rel) for rel in page], headers, extra)
            if rest == ["tags"]:
                page, extra = self._paginate(path, query, r.tags)
                return self._json(200, [self._tag_json(repo, t) for t in page], headers, extra)
            if rest == ["releases", "latest"]:
                rel = next((x for x in r.releases if not x.draft and not x.prerelease), None)
                if rel is None:
                    return self._error(404, "Not Found", headers)
                return self._json(200, self._release_json(repo, rel), headers)
            if len(rest) >= 2 and rest[0] == "contents":
                return self._contents(repo, "/".join(rest[1:]), dict(parse_qsl(query)).get("ref"), headers)
            if len(rest) >= 3 and rest[:2] == ["releases", "tags"]:
                rel = self._find_release(r, "/".join(rest[2:]))
                if rel is None:
                    return self._error(404, "Not Found", headers)
                return self._json(200, self._release_json(repo, rel), headers)
        return self._error(404, "Not Found", headers)

    def _contents(
        self, repo: str, path: str, ref: str | None, headers: dict[str, str]
    ) -> tuple[int, dict[str, str], bytes]:
        """`GET /repos/{o}/{r}/contents/{path}?ref=` with the raw media type: the vendored CHANGELOGs (the
        Prometheus 3.5 LTS branch file as `CHANGELOG.md` at `ref=release-3.5`, Grafana's excerpt as CHANGELOG.md)."""
        folder = self.fixtures_dir / _repo_dir_name(repo)
        name = path
        if path == "CHANGELOG.md" and ref and ref.startswith("release-"):
            name = f"CHANGELOG.{ref}-LTS.md"
        elif path == "CHANGELOG.md" and repo == "grafana/grafana":
            name = "CHANGELOG-excerpt.md"
        file = folder / name
        if "/" in name or not file.is_file():
            return self._error(404, "Not Found", headers)
        body = file.read_bytes()
        etag = f'"{hashlib.sha256(body).hexdigest()}"'
        inm = headers.get("if-none-match")
        if inm and etag in {c.strip().removeprefix("W/") for c in inm.split(",")}:
            return 304, {"ETag": etag, **self._rate_headers(count=False)}, b""
        return 200, {"Content-Type": "application/vnd.github.raw", "ETag": etag, **self._rate_headers(count=True)}, body

    def _download(self, repo: str, tag: str, name: str, gitlab: bool) -> tuple[int, dict[str, str], bytes]:
        with self._lock:
            r = self._repo(repo)
            if r is not None:
                if gitlab:
                    names = r.gitlab_assets.get(tag, [])
                else:
                    rel = self._find_release(r, tag)
                    names = rel.assets if rel else []
                if name in names or (repo, tag, name) in self._blobs:
                    data = self._bytes(repo, tag, name, names)
                    return 200, {"Content-Type": "application/octet-stream", **self._dl_headers(name)}, data
        return 404, {"Content-Type": "text/plain; charset=utf-8"}, b"Not Found"

    @staticmethod
    def _dl_headers(name: str) -> dict[str, str]:
        return {"Content-Disposition": f"attachment; filename={quote(name)}"}

    def _grafana_com(self, rest: list[str], headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        """grafana.com's downloads API over the vendored Grafana versions (packages point at the dl emulation)."""
        with self._lock:
            r = self._repo(GRAFANA_REPO)
            tags = list(r.tags) if r else []
        if not rest:
            items = [
                {
                    "version": t.name[1:],
                    "releaseDate": t.date,
                    "stable": not is_prerelease(t.name),
                    "channels": {"stable": not is_prerelease(t.name)},
                }
                for t in tags
            ]
            return self._json(200, {"items": items}, headers)
        versions = {t.name[1:] for t in tags}
        if len(rest) != 4 or rest[1] != "packages" or rest[0] not in versions or rest[3] != "linux":
            return self._error(404, "Not Found", headers)
        version, arch = rest[0], rest[2]
        if arch not in ("amd64", "arm64", "armv7"):
            return self._error(404, "Not Found", headers)
        major_minor = tuple(int(x) for x in version.split(".")[:2])
        if major_minor <= (12, 2):
            name = f"grafana-{version}.linux-{arch}.tar.gz"
            url = f"{self.grafana_dl_url}/oss/release/{quote(name)}"
        else:
            name = f"grafana_{version}_{stable_id('grafana-build', version)}_linux_{arch}.tar.gz"
            url = f"{self.grafana_dl_url}/grafana/release/{quote(version)}/{quote(name)}"
        with self._lock:
            data = self._bytes(GRAFANA_REPO, f"v{version}", name, [])
        body = {"os": "linux", "arch": arch, "url": url, "sha256": hashlib.sha256(data).hexdigest()}
        return self._json(200, body, headers)

    def _grafana(self, file: str, version: str | None) -> tuple[int, dict[str, str], bytes]:
        sidecar = file.endswith(".sha256")
        target = file.removesuffix(".sha256")
        with self._lock:
            r = self._repo(GRAFANA_REPO)
            versions = {t.name[1:] for t in r.tags} if r else set()
            if version is None:
                # grafana-{version}.{os}-{arch}.tar.gz: pick the longest known version the name starts with
                matches = [v for v in versions if target.startswith(f"grafana-{v}.") and target != f"grafana-{v}."]
                version = max(matches, key=len) if matches else None
            if version is None or version not in versions:
                return 404, {"Content-Type": "application/xml"}, b"<Error><Code>NoSuchKey</Code></Error>"
            data = self._bytes(GRAFANA_REPO, f"v{version}", target, [])
        if sidecar:
            return 200, {"Content-Type": "text/plain"}, (hashlib.sha256(data).hexdigest() + "\n").encode()
        return 200, {"Content-Type": content_type_for(target)}, data


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Serve the vendored upstream release histories GitHub-style.")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8080)
    ap.add_argument("--token", default=None, help="require 'Authorization: Bearer TOKEN' on API requests")
    args = ap.parse_args(argv)
    gh = FakeGitHub(args.host, args.port, require_token=args.token).start()
    print(f"FakeGitHub serving on {gh.url}  (GitLab: {gh.gitlab_url}, dl.grafana.com: {gh.grafana_dl_url})", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        gh.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
