"""The one path policy: what a name, version, file name, host path, URL or template may look like.

Enforced twice with the same functions: by the compiler when it reads the configuration (versions.yaml,
upgrade-policy.yaml) and by every command that reads a lock or a bundle (a lock is input too: anyone who can
write it can recompute its content hash). Every check raises `ValueError` with a message that says what is
allowed, so pydantic validators and plain callers can both use it.
"""

from __future__ import annotations

import posixpath
import re
import string
from urllib.parse import urlsplit

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_\-]{0,63}$")
VERSION_RE = re.compile(r"^[0-9A-Za-z][0-9A-Za-z.+_\-]{0,127}$")
BINARY_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-]{0,127}$")
PLATFORM_RE = re.compile(r"^[a-z0-9]+-[a-z0-9]+$")
URL_SCHEMES = ("https", "http", "file")
MAX_PATH = 1024
MAX_PART = 255
MAX_URL = 4096

# Fields each user-writable template may use: exactly what compiler/config/catalog.py renders it with.
TEMPLATE_FIELDS: dict[str, frozenset[str]] = {
    "artifact": frozenset({"version", "os", "arch", "tag", "name"}),
    "download_url": frozenset({"version", "tag", "repo", "asset"}),
    "checksums": frozenset({"version", "name", "project", "url"}),
}


def check_name(value: str, what: str = "component") -> str:
    """A component or environment name: lowercase letters, digits, '_' and '-' (a single path part)."""
    if not isinstance(value, str) or not NAME_RE.match(value):
        raise ValueError(
            f"{what} name {value!r} must be 1-64 lowercase letters, digits, '_' or '-' (no '/', '..' or spaces)"
        )
    return value


def check_version_text(value: str, what: str = "version") -> str:
    """A version as it appears in a path part: letters, digits, '.', '+', '_' and '-', not starting with '.'."""
    if not isinstance(value, str) or not VERSION_RE.match(value) or ".." in value:
        raise ValueError(f"{what} {value!r} must look like 1.2.3 (letters, digits, '.', '+', '-'; no '/' or '..')")
    return value


def check_binary_name(value: str) -> str:
    """The name a binary is exposed as in /usr/local/bin: one path part."""
    if not isinstance(value, str) or not BINARY_RE.match(value) or ".." in value:
        raise ValueError(
            f"binary name {value!r} must be one file name (letters, digits, '.', '_', '-'; no '/' or '..')"
        )
    return value


def check_filename(value: str, what: str = "file name") -> str:
    """A base name: no directory separator, not '.' or '..', no NUL, not hidden, at most 255 bytes."""
    bad = (
        not isinstance(value, str)
        or value in ("", ".", "..")
        or value.startswith(".")
        or any(c in value for c in "/\\\0")
        or len(value.encode()) > MAX_PART
    )
    if bad:
        raise ValueError(f"{what} {value!r} must be a base name (no '/', not '.' or '..', not hidden)")
    return value


def check_host_path(value: str, what: str = "path") -> str:
    """An absolute, normalised host path without '..' parts (it is placed under --root as it is)."""
    if not isinstance(value, str) or not value.startswith("/") or "\0" in value or len(value) > MAX_PATH:
        raise ValueError(f"{what} {value!r} must be an absolute path such as /var/lib/NAME")
    parts = value.split("/")[1:]
    if ".." in parts or "." in parts or posixpath.normpath(value) != value or value.startswith("//"):
        raise ValueError(f"{what} {value!r} must be normalised: no '..', '.', '//' or trailing '/'")
    if any(len(p.encode()) > MAX_PART for p in parts):
        raise ValueError(f"{what} {value!r} has a part longer than {MAX_PART} bytes")
    return value


def check_relative_file(value: str, what: str = "file") -> str:
    """A relative path inside a directory (e.g. `matrix_file` inside --config-dir): no '..', not absolute."""
    if not isinstance(value, str) or not value or value.startswith("/") or "\0" in value or len(value) > MAX_PATH:
        raise ValueError(f"{what} {value!r} must be a relative file name inside the config directory")
    parts = value.split("/")
    if any(p in ("", ".", "..") for p in parts) or any(len(p.encode()) > MAX_PART for p in parts):
        raise ValueError(f"{what} {value!r} must stay inside the config directory (no '..', empty or over-long parts)")
    return value


def check_glob(value: str, what: str = "binary glob") -> str:
    """A glob inside an extracted archive: relative, no '..' parts."""
    if not isinstance(value, str) or not value or value.startswith("/") or "\0" in value or len(value) > MAX_PATH:
        raise ValueError(f"{what} {value!r} must be a relative pattern such as '*/prometheus'")
    if any(p in ("..", "") for p in value.split("/")):
        raise ValueError(f"{what} {value!r} must not contain '..' or empty parts")
    return value


def check_url(value: str, what: str = "URL") -> str:
    """An absolute URL with scheme https, http or file, that parses (a host for http/https)."""
    if not isinstance(value, str) or len(value) > MAX_URL or any(c in value for c in "\0\r\n\t "):
        raise ValueError(f"{what} {value!r} is not a URL")
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError as exc:
        raise ValueError(f"{what} {value!r} does not parse: {exc}") from None
    if parts.scheme not in URL_SCHEMES:
        raise ValueError(f"{what} {value!r} must use {', '.join(URL_SCHEMES)}")
    if parts.scheme != "file" and not parts.hostname:
        raise ValueError(f"{what} {value!r} has no host")
    return value


def check_template(value: str, kind: str) -> str:
    """A user template: literal text and `{field}` for the fields `kind` renders; nothing else.

    No format specs (`{version:>99}`), conversions (`{version!r}`), positional (`{0}`) or attribute/index
    access (`{version.x}`, `{x[0]}`), no unbalanced braces (a literal brace is written `{{` / `}}`)."""
    allowed = TEMPLATE_FIELDS[kind]
    hint = f"{kind} may use only {', '.join('{' + f + '}' for f in sorted(allowed))} and literal text"
    if not isinstance(value, str) or len(value) > MAX_URL or "\0" in value:
        raise ValueError(f"{kind} template must be text of at most {MAX_URL} characters")
    try:
        parsed = list(string.Formatter().parse(value))
    except ValueError as exc:
        raise ValueError(f"{kind} template {value!r} is malformed ({exc}); {hint}") from None
    for _literal, field, spec, conversion in parsed:
        if field is None:
            continue
        if spec or conversion:
            raise ValueError(f"{kind} template {value!r}: no format specs or conversions allowed; {hint}")
        if field not in allowed:
            raise ValueError(f"{kind} template {value!r}: unknown field {{{field}}}; {hint}")
    return value


def literal_text(template: str) -> str:
    """The template with every field removed (for checks on what the user wrote literally)."""
    return "".join(lit for lit, _f, _s, _c in string.Formatter().parse(template))


def check_date(value: str, what: str = "date") -> str:
    """An ISO date (YYYY-MM-DD)."""
    from datetime import date

    try:
        date.fromisoformat(str(value))
    except ValueError:
        raise ValueError(f"{what} {value!r} must be a date written YYYY-MM-DD") from None
    return str(value)


def sample_render(template: str, kind: str) -> str:
    """The template rendered with harmless sample values (to check what it gives before any real use)."""
    sample = {
        "version": "1.2.3",
        "os": "linux",
        "arch": "amd64",
        "tag": "v1.2.3",
        "name": "x",
        "repo": "o/r",
        "asset": "x-1.2.3.tar.gz",
        "project": "x",
        "url": "https://example.invalid/x",
    }
    return template.format(**{k: sample[k] for k in TEMPLATE_FIELDS[kind]})


def platform_error(value: str) -> str:
    raise ValueError(f"platform {value!r} must look like 'linux-amd64'")
