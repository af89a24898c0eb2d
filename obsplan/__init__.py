"""obsplan: compile reviewed upgrade plans for an observability stack, then apply them safely."""

__version__ = "0.1.0"
