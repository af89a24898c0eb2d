"""Compiler commands (plan, check-upgrades, list-versions, diff, snapshot)."""

from __future__ import annotations

import click


def register(group: click.Group) -> None:
    """Attach the compiler commands to the main group."""
