"""The executor: apply a reviewed lock to a host, crash-safely, with automatic rollback.

Subpackages by concern: `apply` (one run around the steps), `stages` (one step's stages and its runner), `services`
(service managers and the version switch), `state` (`state.db`), `host` (paths, probes, facts, hand changes),
`artifacts` (fetch, verify, safe extraction), `checks` (config verdict, rehearsal, post-step PromQL), `recovery`
(rollback points, rollback, retention), `bundle` (air-gapped bundles); beside them `queries` (status, history),
`doctor` and `reporters` (events, reporters, audit log). The executor imports nothing of the compiler: only the lock
contract (`obsplan.lock`) and the kernel packages.
"""
