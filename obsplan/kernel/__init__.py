"""The shared kernel: the one error type, versions, the path policy, checksum files, escaping, templating, the clock.
Imports nothing of obsplan but itself."""
