"""The executor: apply a reviewed lock to a host, crash-safely, with automatic rollback.

Modules, one per external system behind a small interface:
`layout` (host paths under `--root`), `state` (SQLite state + journal), `report` (events, reporters,
audit log), `facts` (versions and health observed on the host), `artifacts` (fetch, verify, safe extract),
`services` (systemd / supervisord), `steps` (one upgrade step), `engine` (doit orchestration, apply lock,
status/history/rollback), `metrics` (node_exporter textfile metrics).
The executor imports from the compiler only `lock`, `errors` and `versions.Version`.
"""
