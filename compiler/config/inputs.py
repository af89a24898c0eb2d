"""Load the compiler's inputs from a configuration directory: versions.yaml, the shipped policy under the
user's upgrade-policy.yaml, the shipped matrix extended by the user's, module manifests; each file's sha256."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from obsplan.compiler.config.matrix import MatrixFile
from obsplan.compiler.config.model_errors import M, parse_yaml, validate
from obsplan.compiler.config.policy import PolicyFile
from obsplan.compiler.config.seed_safety import with_seed_safety
from obsplan.compiler.config.versions_file import VersionsFile

import obsplan.safeio.yamlload as yamlload
from obsplan.kernel.errors import ObsplanError
from obsplan.kernel.versions import Version
from obsplan.safeio.inputfile import read_regular


def read_policy_yaml(model: type[M], filename: str, path: str | Path | None = None) -> M:
    """A YAML data file validated by `model`: the packaged `policies/<filename>`, or `path` when given."""
    if path is None:
        text, name = resources.files("obsplan.policies").joinpath(filename).read_text(), f"policies/{filename}"
    else:
        text, name = _read_text(Path(path)), str(path)
    return validate(model, parse_yaml(text, name), name)


@dataclass(frozen=True)
class Inputs:
    """Everything the compiler reads from disk, validated, with the sha256 of each file's bytes."""

    config_dir: Path
    versions: VersionsFile
    policy: PolicyFile
    matrix: MatrixFile
    digests: dict[str, str]
    module_versions: dict[str, Version]


def _shipped(name: str) -> str:
    return resources.files("obsplan.policies").joinpath(name).read_text()


def load_inputs(config_dir: Path) -> Inputs:
    versions_path = config_dir / "versions.yaml"
    versions_text = _read_text(versions_path)
    versions = validate(VersionsFile, parse_yaml(versions_text, str(versions_path)), str(versions_path))
    digests = {"versions.yaml": _sha(versions_text)}
    policy_path = config_dir / "upgrade-policy.yaml"
    policy = _load_policy(policy_path, digests)
    matrix = _load_matrix(config_dir, policy, str(policy_path), digests)
    modules = _load_modules(config_dir, digests)
    policy = with_seed_safety(policy, versions.global_.safety)
    _check_phases(policy, str(policy_path))
    return Inputs(config_dir, versions, policy, matrix, dict(sorted(digests.items())), modules)


def _load_policy(policy_path: Path, digests: dict[str, str]) -> PolicyFile:
    """The shipped policy with the user's top-level keys over it (each file validated on its own)."""
    policy_data = parse_yaml(_shipped("upgrade-policy.yaml"), "policies/upgrade-policy.yaml (shipped)") or {}
    if policy_path.exists():
        user_text = _read_text(policy_path)
        user = parse_yaml(user_text, str(policy_path)) or {}
        if not isinstance(user, dict):
            raise ObsplanError("expected a mapping at the top level", file=str(policy_path))
        validate(PolicyFile, user, str(policy_path))
        policy_data = {**policy_data, **user}
        digests["upgrade-policy.yaml"] = _sha(user_text)
    return validate(PolicyFile, policy_data, str(policy_path))


def _load_matrix(config_dir: Path, policy: PolicyFile, policy_file: str, digests: dict[str, str]) -> MatrixFile:
    """The shipped matrix, extended by the user's (`matrix_file`, else matrix.yaml when present)."""
    matrix_text = _shipped("matrix.yaml")
    matrix = validate(MatrixFile, parse_yaml(matrix_text, "policies/matrix.yaml (shipped)"), "policies/matrix.yaml")
    digests["matrix.yaml (shipped)"] = _sha(matrix_text)
    user_matrix = (config_dir / policy.matrix_file) if policy.matrix_file else config_dir / "matrix.yaml"
    if policy.matrix_file and user_matrix.is_dir():
        raise ObsplanError("names a directory", file=policy_file, key="matrix_file", hint="name a YAML file")
    if user_matrix.exists():
        text = _read_text(user_matrix)
        extra = validate(MatrixFile, parse_yaml(text, str(user_matrix)), str(user_matrix))
        digests[user_matrix.name] = _sha(text)
        return merge_matrix(matrix, extra)
    if policy.matrix_file:
        raise ObsplanError(
            "matrix file not found", file=policy_file, key="matrix_file", hint=f"create {user_matrix} or remove the key"
        )
    return matrix


def _load_modules(config_dir: Path, digests: dict[str, str]) -> dict[str, Version]:
    """modules/*/module.yaml: the shell-script era's manifests; only `version` is read from them."""
    modules: dict[str, Version] = {}
    for manifest in sorted(config_dir.glob("modules/*/module.yaml")):
        text = _read_text(manifest)
        data = parse_yaml(text, str(manifest))
        if not isinstance(data, dict) or "version" not in data:
            raise ObsplanError(
                "module manifest has no 'version'", file=str(manifest), key="version", hint='add version: "X.Y.Z"'
            )
        try:
            modules[manifest.parent.name] = Version.parse(str(data["version"]))
        except ValueError as exc:
            raise ObsplanError(str(exc), file=str(manifest), key="version", hint="use X.Y.Z") from None
        digests[f"modules/{manifest.parent.name}/module.yaml"] = _sha(text)
    return modules


def merge_matrix(base: MatrixFile, extra: MatrixFile) -> MatrixFile:
    rules = {r.id: r for r in base.rules}
    rules.update({r.id: r for r in extra.rules})
    support = {k: {s.line: s for s in v} for k, v in base.support.items()}
    for comp, lines in extra.support.items():
        support.setdefault(comp, {}).update({s.line: s for s in lines})
    return MatrixFile(rules=list(rules.values()), support={k: list(v.values()) for k, v in support.items()})


def _check_phases(policy: PolicyFile, name: str) -> None:
    seen: dict[str, str] = {}
    for i, phase in enumerate(policy.phases):
        for comp in phase.components:
            if comp in seen:
                raise ObsplanError(
                    f"component {comp!r} is in phases {seen[comp]!r} and {phase.name!r}",
                    file=name,
                    key=f"phases.{i}.components",
                    hint="list each component once",
                )
            seen[comp] = phase.name
    names = [p.name for p in policy.phases]
    for i, phase in enumerate(policy.phases):
        for alias in phase.aliases:
            if alias in names or sum(alias in p.aliases for p in policy.phases) > 1:
                raise ObsplanError(
                    f"phase alias {alias!r} is already a phase name or another phase's alias",
                    file=name,
                    key=f"phases.{i}.aliases",
                    hint="give each phase name and alias once",
                )


def _read_text(path: Path) -> str:
    """A configuration file's text: UTF-8, size-capped; a directory or unreadable path is one line, exit 2."""
    try:
        if path.is_dir():
            raise ObsplanError("is a directory, not a file", file=str(path), hint="name a YAML file")
        data = read_regular(path, yamlload.MAX_BYTES)  # a FIFO or device: refused, never waited on
    except FileNotFoundError:
        raise ObsplanError("file not found", file=str(path), hint="check --config-dir") from None
    except OSError as exc:
        raise ObsplanError(f"cannot read: {exc.strerror or exc}", file=str(path), hint="check the path") from None
    return yamlload.decode(data, str(path))


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()
