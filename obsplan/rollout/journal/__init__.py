"""The rollout journal (`rollouts.db`): what a rollout decided and did, its checks, and `--resume`."""
