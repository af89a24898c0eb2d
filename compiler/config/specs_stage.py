"""The specs stage: each component's versions.yaml entry merged with the environment's override, the strategy
it plans with, its definition (built-in catalog + entry), and the platforms the plan is for."""

from __future__ import annotations

from dataclasses import dataclass

from obsplan.compiler.config.catalog import ComponentDef, builtin_definitions, resolve_definition
from obsplan.compiler.config.inputs import Inputs
from obsplan.compiler.config.versions_file import ComponentSpec, EnvironmentSpec, Strategy

from obsplan.kernel.errors import ObsplanError


@dataclass(frozen=True)
class Specs:
    file: str  # versions.yaml, as errors name it
    entries: dict[str, tuple[ComponentSpec, Strategy]]
    defs: dict[str, ComponentDef]
    platforms: list[str]
    env: EnvironmentSpec | None

    def repos(self) -> list[str]:
        return sorted({d.github_repo for d in self.defs.values()})


def load_specs(inputs: Inputs, env: str) -> Specs:
    entries, platforms, _ = effective_specs(inputs, env)
    file = str(inputs.config_dir / "versions.yaml")
    builtins = builtin_definitions()
    defs = {n: resolve_definition(n, s, builtins, file) for n, (s, _) in entries.items()}
    return Specs(file, entries, defs, platforms, inputs.versions.environments.get(env))


def effective_specs(inputs: Inputs, env: str) -> tuple[dict[str, tuple[ComponentSpec, Strategy]], list[str], bool]:
    """Merge base entries with the environment's overrides; decide each strategy (`decide_strategy`).

    Returns (component → (merged entry, strategy), platforms, offline_mode)."""
    vf = inputs.versions
    file = str(inputs.config_dir / "versions.yaml")
    if env not in vf.environments and env != "default":
        known = ", ".join(sorted(vf.environments)) or "none"
        raise ObsplanError(f"unknown environment {env!r}", file=file, key="environments", hint=f"use one of: {known}")
    espec = vf.environments.get(env)
    for name in espec.component_overrides if espec else {}:
        if name not in vf.components:
            raise ObsplanError(
                f"override for unknown component {name!r}",
                file=file,
                key=f"environments.{env}.component_overrides.{name}",
                hint="add it under components: first",
            )
    out: dict[str, tuple[ComponentSpec, Strategy]] = {}
    for name, base in vf.components.items():
        if espec and name in espec.disabled_components:
            continue
        override = espec.component_overrides.get(name) if espec else None
        update = {k: getattr(override, k) for k in override.model_fields_set} if override else {}
        merged = base.model_copy(update=update) if override else base
        env_default = espec.default_strategy if espec else None
        out[name] = (merged, decide_strategy(base, override, env_default, vf.global_.default_strategy))
    platforms = (espec.platforms if espec and espec.platforms else None) or vf.global_.platforms
    offline = bool(espec.offline_mode) if espec and espec.offline_mode is not None else vf.global_.offline_mode
    return out, platforms, offline


def decide_strategy(
    base: ComponentSpec, override: ComponentSpec | None, env_default: Strategy | None, global_default: Strategy
) -> Strategy:
    """Precedence (as the README says): the override's strategy > an override that sets `version` without a
    strategy (pinned: the environment holds that exact version, whatever the entry's strategy) > the entry's
    strategy > the environment's default_strategy > global.default_strategy."""
    if override and override.strategy:
        return override.strategy
    if override and override.version:
        return "pinned"
    return base.strategy or env_default or global_default
