"""Artifacts on the host: fetched, verified before anything else, extracted safely."""
