"""obsplan: compile reviewed upgrade plans for an observability stack, then apply them safely."""

__version__ = "0.2.0"
"""The release: single source of the package version (pyproject.toml reads it), `obsplan --version` and every
lock's `obsplan_version`. The CLI and the lock format are the public interface (semantic versioning)."""
