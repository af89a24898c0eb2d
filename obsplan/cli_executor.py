"""Executor commands (apply, status, history, rollback, resume)."""

from __future__ import annotations

import click


def register(group: click.Group) -> None:
    """Attach the executor commands to the main group."""
