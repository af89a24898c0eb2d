"""The executor's state: `state.db`, its schema, and the metrics derived from it (its checks are shared with
the rollout journal: `obsplan.safeio.sqlite_check`)."""
