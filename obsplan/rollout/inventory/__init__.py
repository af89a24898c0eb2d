"""Inventories: obsplan's YAML, Ansible's YAML and INI forms, read from a hostile file."""
