"""`rollout --bootstrap`: obsplan brought to hosts that lack it (the controller's side and the host's)."""
