"""The plan compiler: configuration and release data in, a deterministic lock and plan out.

Nothing in this package touches a host, imports the executor, doit, subprocess or the CLI library.
"""
