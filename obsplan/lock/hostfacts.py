"""Host facts: what a host runs, as `obsplan facts` writes it and `obsplan plan --facts` reads it.

The file is the contract between the executor (which observes a host) and the compiler (which plans from
it). One component's from-state is the version it serves, else the one `current` links, else the one found
installed. A fleet (several files) plans from the lowest installed version of each component: its required
hops cover every host, and a host without the component installs the target directly.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

import obsplan.safeio.jsonload as jsonload
from obsplan.kernel.errors import ObsplanError
from obsplan.kernel.versions import Version
from obsplan.safeio.inputfile import read_regular

FORMAT = 1


class _Strict(BaseModel):
    # built on first use: only `plan --facts` and `obsplan facts` read host facts
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


def _version(v: str | None) -> str | None:
    if v is not None:
        Version.parse(v)
    return v


class Observed(_Strict):
    """How each version was learned (free text, e.g. `build_info on 127.0.0.1:9100`)."""

    installed: str | None = None
    linked: str | None = None
    served: str | None = None


class ComponentFacts(_Strict):
    installed: str | None = None
    linked: str | None = None
    served: str | None = None
    observed: Observed = Observed()
    managed: bool = False

    @field_validator("installed", "linked", "served")
    @classmethod
    def _versions(cls, v: str | None) -> str | None:
        return _version(v)

    def from_state(self) -> Version | None:
        """Served, else linked, else installed."""
        raw = self.served or self.linked or self.installed
        return Version.parse(raw) if raw else None


class HostFacts(_Strict):
    format: Literal[1]
    obsplan_version: str
    platform: str
    root: str
    collected_at: str
    components: dict[str, ComponentFacts]


@dataclass(frozen=True)
class FactsInput:
    """The facts the compiler plans from: per component the from-state, and which file(s) said so."""

    versions: dict[str, Version | None]
    digests: dict[str, str]  # "facts:<file name>" → sha256 of its bytes, recorded in the lock's inputs
    notes: dict[str, str]  # component → why this from-state (lowest of a fleet)
    platforms: dict[str, str]  # facts file name → the host's platform


_FACTS_HINT = "write it with 'obsplan facts -o FILE'"


def load_facts(path: Path) -> HostFacts:
    """Read and validate one facts file (ObsplanError naming the file and key on any problem)."""
    return read_facts(path)[0]


def read_facts(path: Path) -> tuple[HostFacts, bytes]:
    """The validated facts of one file and the bytes they were parsed from (read once)."""
    try:
        data = read_regular(path, jsonload.MAX_BYTES)  # a FIFO or device: refused, never waited on
    except FileNotFoundError:
        raise ObsplanError("facts file not found", file=str(path), hint=_FACTS_HINT) from None
    except OSError as exc:
        raise ObsplanError(f"not a facts file ({exc.strerror or exc})", file=str(path), hint=_FACTS_HINT) from None
    raw = jsonload.loads(data, str(path), "facts file", _FACTS_HINT)  # size, depth, UTF-8, duplicate keys
    try:
        return HostFacts.model_validate(raw), data
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(p) for p in err["loc"]) or None
        msg = err["msg"].removeprefix("Value error, ")
        raise ObsplanError(msg, file=str(path), key=key, hint="re-collect it with 'obsplan facts -o FILE'") from None


def facts_files(paths: tuple[Path, ...]) -> list[Path]:
    """Each path as given, a folder as its `*.json` files (sorted)."""
    out: list[Path] = []
    for p in paths:
        if p.is_dir():
            found = sorted(p.glob("*.json"))
            if not found:
                raise ObsplanError("no *.json facts files in this folder", file=str(p), key="--facts")
            out += found
        else:
            out.append(p)
    return out


def read_fleet(paths: tuple[Path, ...]) -> FactsInput | None:
    """The from-state of every component named by the facts files: a fleet plans from its lowest version."""
    files = facts_files(paths)
    if not files:
        return None
    per: dict[str, list[tuple[Version | None, str]]] = {}
    digests: dict[str, str] = {}
    platforms: dict[str, str] = {}
    for f in files:
        facts, data = read_facts(f)
        platforms[f.name] = facts.platform
        digests[f"facts:{f.name}"] = hashlib.sha256(data).hexdigest()
        for name, comp in facts.components.items():
            per.setdefault(name, []).append((comp.from_state(), f.name))
    versions: dict[str, Version | None] = {}
    notes: dict[str, str] = {}
    for name, seen in sorted(per.items()):
        installed = sorted((v, f) for v, f in seen if v is not None)
        versions[name] = installed[0][0] if installed else None
        if len(files) > 1 and installed:
            distinct = sorted({str(v) for v, _ in installed})
            notes[name] = (
                f"from-state {installed[0][0]} is the lowest of {len(files)} hosts' facts ({installed[0][1]}); "
                f"seen: {', '.join(distinct)}" + ("; some hosts have none" if len(installed) < len(seen) else "")
            )
    return FactsInput(versions, dict(sorted(digests.items())), notes, platforms)


def from_state_hint(component: str, host_version: str | None) -> str:
    """A versions.yaml line an operator can paste to state what a host runs (YAML `null`: nothing installed)."""
    value = f'"{host_version}"' if host_version else "null"
    return f"current: {{{component}: {value}}}"
