"""Fleet rollout: canary and cumulative batches of hosts over SSH (pyinfra), metric gates read from
Prometheus between batches, a SQLite journal that makes a halted or killed rollout resumable."""
