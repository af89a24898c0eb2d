"""The JSON schema of the lock models, as recorded beside the golden locks of the format this obsplan writes
(tests/fixtures/locks/format-N/schema.json). `python -m tests.lock_schema` prints it; scripts/lock-format-refresh
records it."""

from __future__ import annotations

import json

from obsplan.lock.lockfile import Lock


def lock_schema() -> str:
    return json.dumps(Lock.model_json_schema(), indent=1, sort_keys=True, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    print(lock_schema(), end="")
