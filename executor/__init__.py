"""The executor: apply a reviewed lock to a host, crash-safely, with automatic rollback.

One idea per module: `layout` (host paths under `--root`), `state`/`statecheck` (SQLite state, journal, schema),
`report` (events, reporters, audit log), `facts` (versions and health observed on the host), `artifacts` and
`extract` (fetch, verify, extraction that cannot escape), `services` and `service_render` (systemd /
supervisord, service definitions from the lock), `steps` (one upgrade step's stages), `engine` (one apply run),
`doit_bridge` (steps as doit tasks), `hostlock` (one apply at a time), `plan_queries`, `approvals`, `binding`
(host drift judged by the lock's rules), `adopt`, `drift`, `phases`, `soak`, `queries` (status, history),
`rollback`, `lastrun`, `doctor`/`integrity`, `hostfacts_collect`, `metrics` (node_exporter textfile metrics).
The executor imports from the compiler nothing: only the lock contract (`obsplan.lockfile`) and the kernel.
"""
