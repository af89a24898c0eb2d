"""Compatibility name: the error type lives in the shared kernel, `obsplan.errors`."""

from obsplan.errors import EXIT_FAILED, EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, ObsplanError

__all__ = ["EXIT_FAILED", "EXIT_INTERNAL", "EXIT_INTERRUPTED", "EXIT_OK", "EXIT_USAGE", "ObsplanError"]
