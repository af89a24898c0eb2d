"""The one jinja2 environment for obsplan's shipped templates (plan reports, service definitions).

Strict (an undefined name is an error, never an empty string), no autoescaping (the outputs are Markdown,
INI and unit files, not HTML), whitespace as written in the template files.
"""

from __future__ import annotations

from importlib import resources

import jinja2


def _shipped(name: str) -> str:
    return resources.files("obsplan.templates").joinpath(name).read_text()


def shipped_templates() -> jinja2.Environment:
    """An environment loading from `obsplan/templates/` (callers may add filters to their own copy)."""
    return jinja2.Environment(
        loader=jinja2.FunctionLoader(_shipped),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
