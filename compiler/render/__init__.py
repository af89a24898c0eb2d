"""Renderings of a lock: the Markdown report, the diff of two locks, the snapshot-test view."""
