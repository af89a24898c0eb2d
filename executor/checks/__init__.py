"""A step's checks beyond health: the target's own verdict on the config, rehearsal, post-step PromQL."""
